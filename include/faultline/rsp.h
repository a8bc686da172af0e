/* rsp: bytes <-> packets of the GDB remote serial protocol.
 *
 * One connection to a stub over a stream socket ("unix:/path", "HOST:PORT",
 * or an fd the caller already has). Frames "$payload#cc", escapes '}' (0x7d,
 * next byte xor 0x20) both ways, expands run-length '*' on receive, does the
 * +/- acknowledgement with a bounded number of retransmits (until no-ack mode
 * is switched on), sends the 0x03 interrupt. Every wait is bounded by a
 * timeout in milliseconds (poll); a negative timeout waits forever (for
 * interactive use only). Knows nothing of what packets mean: see target.h.
 *
 * Buffers are allocated once at open; sending and receiving do not allocate
 * (the single-step path goes through here thousands of times).
 * All calls return 0 or -1 with `err` filled (see error.h). Not thread-safe.
 */
#ifndef FAULTLINE_RSP_H
#define FAULTLINE_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/error.h"

typedef struct rsp rsp;

/* Largest decoded payload accepted from the stub. QEMU's biggest reply is an
 * `m` of 2048 bytes (4096 hex digits); this leaves room for other stubs. */
#define RSP_MAX_PAYLOAD (64 * 1024)
/* How many times a packet is retransmitted after a '-' (or re-requested after
 * a bad checksum) before the link is declared broken. */
#define RSP_MAX_RETRIES 3

/* Cancellation: a function the caller owns (typically "did a signal arrive?",
 * reading a volatile sig_atomic_t flag). Every blocking wait of this module
 * (connect, read, write) polls in slices of at most 100 ms and checks it
 * before each slice: once it returns non-zero the call in progress fails
 * with FL_EINTR within about 100 ms, and so does every later wait until it
 * returns 0 again (set it to NULL to talk to the stub after a cancellation,
 * e.g. to interrupt the guest and detach; those waits are then bounded by
 * their timeouts only). It must be cheap and must not call back into rsp. */
typedef int (*rsp_cancel_fn)(void *ctx);

/* Connect to "unix:/path" or "HOST:PORT" (IPv4/IPv6/host name), waiting at
 * most timeout_ms for the connection (one budget for every address a host
 * name resolves to). */
int rsp_open(rsp **out, const char *address, int timeout_ms, fl_error *err);
/* The same, cancellable while it waits; the hook stays set on the connection. */
int rsp_open_cancellable(rsp **out, const char *address, int timeout_ms, rsp_cancel_fn cancelled, void *ctx,
                         fl_error *err);
/* Wrap an already-connected stream fd; takes ownership (closed by rsp_close,
 * also when this call fails). */
int rsp_open_fd(rsp **out, int fd, fl_error *err);
/* Close the socket and free. NULL is fine. */
void rsp_close(rsp *r);

int rsp_fd(const rsp *r);
/* After the stub answered OK to QStartNoAckMode: no more +/- either way. */
void rsp_set_noack(rsp *r, bool noack);
/* Set (or clear, with NULL) the cancellation hook; see rsp_cancel_fn. */
void rsp_set_cancel(rsp *r, rsp_cancel_fn cancelled, void *ctx);

/* Send one packet (framed, escaped, checksummed) and, in ack mode, wait for
 * the stub's '+' (retransmitting on '-', at most RSP_MAX_RETRIES times). */
int rsp_send(rsp *r, const char *payload, size_t len, int timeout_ms, fl_error *err);
/* Send a packet without waiting for its acknowledgement (for `k`, after which
 * the stub may be gone before it acks). */
int rsp_send_noack(rsp *r, const char *payload, size_t len, fl_error *err);
/* Receive one packet and acknowledge it ('+', or '-' on a bad checksum, at
 * most RSP_MAX_RETRIES times). *payload points into the connection's buffer,
 * valid until the next call on r, decoded (no escapes, no RLE) and
 * NUL-terminated (binary payloads may also contain NULs: use *len).
 * Timeout: FL_ETIMEOUT, and bytes of a partly received packet are kept for
 * the next call. Peer gone: FL_ECLOSED. Malformed: FL_EPROTO. */
int rsp_recv(rsp *r, const char **payload, size_t *len, int timeout_ms, fl_error *err);
/* rsp_send then rsp_recv, both together bounded by timeout_ms. */
int rsp_exchange(rsp *r, const char *payload, size_t len, const char **reply, size_t *rlen,
                 int timeout_ms, fl_error *err);
/* The out-of-band interrupt byte 0x03 (no framing, no ack). */
int rsp_interrupt(rsp *r, fl_error *err);
/* True if bytes of a not yet complete packet are buffered. */
bool rsp_pending(const rsp *r);

/* Pure decoder (no I/O, fuzzable). `in` must start at the packet's '$'.
 * Returns:
 *   RSP_DEC_MORE    the packet is not complete yet (nothing consumed);
 *   RSP_DEC_PACKET  *consumed bytes form one good packet, decoded into out
 *                   (*outlen bytes, NUL-terminated when room: cap must be
 *                   at least one more than the payload);
 *   RSP_DEC_BADSUM  *consumed bytes form a packet with a wrong checksum;
 *   -1              malformed (FL_EPROTO, the bytes shown in the message);
 *                   *consumed says how many bytes to drop. */
enum { RSP_DEC_MORE = 0, RSP_DEC_PACKET = 1, RSP_DEC_BADSUM = 2 };
int rsp_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen,
               size_t *consumed, fl_error *err);
/* Frame payload into out ("$...#cc", escaping # $ } *). Returns the framed
 * length, or 0 if it does not fit in cap. Pure. */
size_t rsp_encode(const char *payload, size_t len, char *out, size_t cap);
/* Write up to max bytes of data into out as a C string, printable bytes as
 * they are and others as \xNN, with "..." if truncated (for error messages). */
void rsp_escape_for_msg(const char *data, size_t len, size_t max, char *out, size_t cap);

#endif
