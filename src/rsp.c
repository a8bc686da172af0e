/* rsp: GDB remote serial protocol framing (see include/faultline/rsp.h).
 * Hand-written: Debian ships no maintained standalone C library for the
 * client side of RSP (GDB's remote.c is not a library, and the small ones on
 * GitHub are unmaintained), and the protocol's framing is ~300 lines. */
#include "faultline/rsp.h"
#include "faultline/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Raw bytes of one packet can be twice the payload (every byte escaped). */
#define RAW_CAP (2 * RSP_MAX_PAYLOAD + 8)

/* Longest single poll: a cancellation is seen within this. */
#define RSP_SLICE_MS 100

struct rsp {
    int fd;
    bool noack;
    rsp_cancel_fn cancelled;  /* NULL: waits end only on data or deadline */
    void *cancel_ctx;
    char *in;        /* raw bytes received, [in_start, in_end) not yet used */
    size_t in_start, in_end;
    char *dec;       /* decoded payload of the last packet received */
    char *out;       /* framed last packet sent (kept for retransmit) */
    size_t out_len;
};

/* ---- waiting ---------------------------------------------------------- */

enum { WAIT_READY = 1, WAIT_TIMEOUT = 0, WAIT_ERROR = -1, WAIT_CANCELLED = -2 };

/* Poll fd for `events` until the deadline, in slices of RSP_SLICE_MS so a
 * cancellation (checked before every slice) ends the wait within one slice.
 * EINTR is retried: a signal handler's flag is seen through `cancelled`. */
static int wait_fd(int fd, short events, int64_t deadline, rsp_cancel_fn cancelled, void *ctx)
{
    for (;;) {
        if (cancelled && cancelled(ctx))
            return WAIT_CANCELLED;
        int left = fl_remaining_ms(deadline);
        bool last = left >= 0 && left <= RSP_SLICE_MS;  /* this slice reaches the deadline */
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, last ? left : RSP_SLICE_MS);
        if (n < 0 && errno != EINTR)
            return WAIT_ERROR;
        if (n > 0)
            return WAIT_READY;
        if (n == 0 && last)
            return WAIT_TIMEOUT;
    }
}

static int cancelled_fail(fl_error *err, const char *what)
{
    return fl_fail(err, FL_EINTR, "%s: interrupted", what);
}

/* ---- pure helpers ----------------------------------------------------- */

void rsp_escape_for_msg(const char *data, size_t len, size_t max, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t o = 0;
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        char tmp[8];
        int w;
        if (c == '\\')
            w = snprintf(tmp, sizeof tmp, "\\\\");
        else if (c >= 0x20 && c < 0x7f)
            w = snprintf(tmp, sizeof tmp, "%c", c);
        else
            w = snprintf(tmp, sizeof tmp, "\\x%02x", c);
        if (o + (size_t)w + 4 >= cap)
            break;
        memcpy(out + o, tmp, (size_t)w);
        o += (size_t)w;
    }
    if (n < len && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int proto_fail(fl_error *err, const char *what, const char *bytes, size_t len)
{
    char shown[160];
    rsp_escape_for_msg(bytes, len, 64, shown, sizeof shown);
    return fl_fail(err, FL_EPROTO, "malformed packet from the stub (%s): \"%s\"", what, shown);
}

int rsp_decode(const char *in, size_t len, char *out, size_t cap, size_t *outlen,
               size_t *consumed, fl_error *err)
{
    *consumed = 0;
    *outlen = 0;
    if (len == 0)
        return RSP_DEC_MORE;
    if (in[0] != '$') {
        *consumed = 1;
        return proto_fail(err, "does not start with '$'", in, len);
    }
    size_t hash = 0;
    for (size_t i = 1; i < len; i++) {
        if (in[i] == '#') {
            hash = i;
            break;
        }
        if (in[i] == '$') {
            /* A new packet starts inside this one: drop the broken head. */
            *consumed = i;
            return proto_fail(err, "truncated: '$' before '#'", in, i);
        }
    }
    if (hash == 0) {
        if (len >= RAW_CAP) {
            *consumed = len;
            return proto_fail(err, "longer than the largest accepted packet", in, len);
        }
        return RSP_DEC_MORE;
    }
    if (len - hash < 3)
        return RSP_DEC_MORE;
    *consumed = hash + 3;
    int h1 = fl_hexval(in[hash + 1]), h2 = fl_hexval(in[hash + 2]);
    if (h1 < 0 || h2 < 0)
        return proto_fail(err, "checksum is not two hex digits", in, hash + 3);
    unsigned sum = 0;
    for (size_t i = 1; i < hash; i++)
        sum += (unsigned char)in[i];
    if ((sum & 0xff) != (unsigned)(h1 << 4 | h2))
        return RSP_DEC_BADSUM;

    size_t o = 0;
    for (size_t i = 1; i < hash; i++) {
        char c = in[i];
        if (c == '}') {
            if (i + 1 >= hash)
                return proto_fail(err, "escape '}' at the end", in, hash + 3);
            c = (char)(in[++i] ^ 0x20);
        } else if (c == '*') {
            /* Run-length: repeat the previous byte (count char - 29) times. */
            if (o == 0)
                return proto_fail(err, "run-length '*' with nothing to repeat", in, hash + 3);
            if (i + 1 >= hash)
                return proto_fail(err, "run-length '*' without a count", in, hash + 3);
            unsigned char n = (unsigned char)in[++i];
            if (n < 29 + 3 || n > 126)
                return proto_fail(err, "run-length count out of range", in, hash + 3);
            size_t rep = (size_t)n - 29;
            if (o + rep + 1 > cap)
                return proto_fail(err, "decoded payload too long", in, hash + 3);
            memset(out + o, out[o - 1], rep);
            o += rep;
            continue;
        }
        if (o + 2 > cap)
            return proto_fail(err, "decoded payload too long", in, hash + 3);
        out[o++] = c;
    }
    if (o < cap)
        out[o] = '\0';
    *outlen = o;
    return RSP_DEC_PACKET;
}

size_t rsp_encode(const char *payload, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    unsigned sum = 0;
    if (cap < 4)
        return 0;
    out[o++] = '$';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)payload[i];
        if (c == '#' || c == '$' || c == '}' || c == '*') {
            if (o + 2 + 3 > cap)
                return 0;
            out[o++] = '}';
            sum += '}';
            c ^= 0x20;
        }
        if (o + 1 + 3 > cap)
            return 0;
        out[o++] = (char)c;
        sum += c;
    }
    static const char hex[] = "0123456789abcdef";
    out[o++] = '#';
    out[o++] = hex[(sum >> 4) & 0xf];
    out[o++] = hex[sum & 0xf];
    return o;
}

/* ---- connection ------------------------------------------------------- */

int rsp_open_fd(rsp **out, int fd, fl_error *err)
{
    *out = NULL;
    rsp *r = calloc(1, sizeof *r);
    if (r) {
        r->in = malloc(RAW_CAP);
        r->dec = malloc(RSP_MAX_PAYLOAD + 1);
        r->out = malloc(RAW_CAP);
    }
    if (!r || !r->in || !r->dec || !r->out) {
        if (r) {
            free(r->in);
            free(r->dec);
            free(r->out);
        }
        free(r);
        close(fd);
        return fl_fail(err, FL_EIO, "out of memory allocating the RSP connection buffers");
    }
    r->fd = fd;
    *out = r;
    return 0;
}

static int connect_bounded(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline, int timeout_ms,
                           const char *address, rsp_cancel_fn cancelled, void *ctx, fl_error *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return fl_fail(err, FL_EIO, "cannot make the socket for %s non-blocking: %s", address, strerror(errno));
    int rc = connect(fd, sa, salen);
    if (rc < 0 && errno != EINPROGRESS && errno != EAGAIN)
        return fl_fail(err, FL_EIO, "cannot connect to the GDB stub at %s: %s", address, strerror(errno));
    if (rc < 0) {
        int w = wait_fd(fd, POLLOUT, deadline, cancelled, ctx);
        if (w == WAIT_CANCELLED)
            return fl_fail(err, FL_EINTR, "connecting to the GDB stub at %s: interrupted", address);
        if (w == WAIT_ERROR)
            return fl_fail(err, FL_EIO, "poll while connecting to %s: %s", address, strerror(errno));
        if (w == WAIT_TIMEOUT)
            return fl_fail(err, FL_ETIMEOUT, "no connection to the GDB stub at %s within %d ms", address, timeout_ms);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr)
            return fl_fail(err, FL_EIO, "cannot connect to the GDB stub at %s: %s", address, strerror(soerr));
    }
    if (fcntl(fd, F_SETFL, fl) < 0)
        return fl_fail(err, FL_EIO, "cannot restore blocking mode on %s: %s", address, strerror(errno));
    return 0;
}

typedef struct open_ctx {
    const char *address;
    int timeout_ms;
    int64_t deadline;       /* one bound for resolving and every address tried */
    rsp_cancel_fn cancelled;
    void *cancel_ctx;
} open_ctx;

static int open_unix(const open_ctx *o, int *out_fd, fl_error *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    const char *path = o->address + 5;
    if (strlen(path) == 0 || strlen(path) >= sizeof sun.sun_path)
        return fl_fail(err, FL_EUSAGE, "unix socket path in \"%s\" is empty or too long", o->address);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fl_fail(err, FL_EIO, "socket(AF_UNIX): %s", strerror(errno));
    if (connect_bounded(fd, (struct sockaddr *)&sun, sizeof sun, o->deadline, o->timeout_ms, o->address,
                        o->cancelled, o->cancel_ctx, err) < 0) {
        close(fd);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host (cap bytes) and the port's text. */
static int split_host_port(const char *address, char *host, size_t cap, const char **port, fl_error *err)
{
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1] || (size_t)(colon - address) >= cap)
        return fl_fail(err, FL_EUSAGE, "GDB stub address \"%s\" is neither unix:/path nor HOST:PORT", address);
    size_t hl = (size_t)(colon - address);
    memcpy(host, address, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {  /* [::1]:1234 */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    /* getaddrinfo would take "99999" and keep its low 16 bits, and
     * service names: only a decimal port 1-65535 names a stub. */
    char *end;
    errno = 0;
    unsigned long pn = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] < '0' || colon[1] > '9' || pn < 1 || pn > 65535)
        return fl_fail(err, FL_EUSAGE, "GDB stub address \"%s\": the port must be a number from 1 to 65535", address);
    *port = colon + 1;
    return 0;
}

static int open_tcp(const open_ctx *o, int *out_fd, fl_error *err)
{
    char host[256];
    const char *port = NULL;
    if (split_host_port(o->address, host, sizeof host, &port, err) < 0)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0)
        return fl_fail(err, FL_EUSAGE, "cannot resolve GDB stub address \"%s\": %s", o->address, gai_strerror(g));
    fl_error last = {0};
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            fl_fail(&last, FL_EIO, "socket: %s", strerror(errno));
            continue;
        }
        if (connect_bounded(fd, a->ai_addr, a->ai_addrlen, o->deadline, o->timeout_ms, o->address, o->cancelled,
                            o->cancel_ctx, &last) == 0)
            break;
        close(fd);
        fd = -1;
        if (last.code == FL_EINTR || last.code == FL_ETIMEOUT)
            break;  /* the one budget is spent: do not try the next address */
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        if (err)
            *err = last;
        return -1;
    }
    /* One small packet per step: Nagle would add a delayed-ACK wait. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out_fd = fd;
    return 0;
}

int rsp_open_cancellable(rsp **out, const char *address, int timeout_ms, rsp_cancel_fn cancelled, void *ctx,
                         fl_error *err)
{
    *out = NULL;
    if (!address || !*address)
        return fl_fail(err, FL_EUSAGE, "empty GDB stub address: use unix:/path or HOST:PORT");
    open_ctx o = {address, timeout_ms, fl_deadline_ms(timeout_ms), cancelled, ctx};
    int fd = -1;
    int rc = strncmp(address, "unix:", 5) == 0 ? open_unix(&o, &fd, err) : open_tcp(&o, &fd, err);
    if (rc < 0)
        return -1;
    if (rsp_open_fd(out, fd, err) < 0)
        return -1;
    rsp_set_cancel(*out, cancelled, ctx);
    return 0;
}

int rsp_open(rsp **out, const char *address, int timeout_ms, fl_error *err)
{
    return rsp_open_cancellable(out, address, timeout_ms, NULL, NULL, err);
}

void rsp_close(rsp *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->in);
    free(r->dec);
    free(r->out);
    free(r);
}

int rsp_fd(const rsp *r) { return r->fd; }
void rsp_set_noack(rsp *r, bool noack) { r->noack = noack; }
void rsp_set_cancel(rsp *r, rsp_cancel_fn cancelled, void *ctx)
{
    r->cancelled = cancelled;
    r->cancel_ctx = ctx;
}
bool rsp_pending(const rsp *r) { return r->in_end > r->in_start; }

/* ---- raw I/O ---------------------------------------------------------- */

static int write_all(rsp *r, const char *buf, size_t len, fl_error *err)
{
    while (len > 0) {
        /* Non-blocking, so a stub that stops reading cannot hold us past a
         * cancellation: EAGAIN waits in wait_fd's slices. */
        ssize_t n = send(r->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = write(r->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The stub reads nothing: wait a bounded, cancellable while. */
                int w = wait_fd(r->fd, POLLOUT, fl_deadline_ms(5000), r->cancelled, r->cancel_ctx);
                if (w == WAIT_CANCELLED)
                    return cancelled_fail(err, "writing to the GDB stub");
                if (w != WAIT_READY)
                    return fl_fail(err, FL_ETIMEOUT, "the GDB stub accepted no data for 5 s");
                continue;
            }
            if (errno == EPIPE || errno == ECONNRESET)
                return fl_fail(err, FL_ECLOSED, "the GDB stub closed the connection (%s)", strerror(errno));
            return fl_fail(err, FL_EIO, "writing to the GDB stub: %s", strerror(errno));
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read whatever is available (at least one byte) before the deadline. */
static int fill(rsp *r, int64_t deadline, int timeout_ms, fl_error *err)
{
    if (r->in_start > 0) {
        memmove(r->in, r->in + r->in_start, r->in_end - r->in_start);
        r->in_end -= r->in_start;
        r->in_start = 0;
    }
    if (r->in_end >= RAW_CAP) {
        r->in_start = r->in_end = 0;
        return fl_fail(err, FL_EPROTO, "the GDB stub sent more than %d bytes without a complete packet", RAW_CAP);
    }
    for (;;) {
        int n = wait_fd(r->fd, POLLIN, deadline, r->cancelled, r->cancel_ctx);
        if (n == WAIT_CANCELLED)
            return cancelled_fail(err, "waiting for the GDB stub");
        if (n == WAIT_ERROR)
            return fl_fail(err, FL_EIO, "poll on the GDB stub connection: %s", strerror(errno));
        if (n == WAIT_TIMEOUT)
            return fl_fail(err, FL_ETIMEOUT, "the GDB stub did not answer within %d ms", timeout_ms);
        ssize_t got = read(r->fd, r->in + r->in_end, RAW_CAP - r->in_end);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0 && errno == ECONNRESET)
            return fl_fail(err, FL_ECLOSED, "the GDB stub reset the connection (QEMU exited?)");
        if (got < 0)
            return fl_fail(err, FL_EIO, "reading from the GDB stub: %s", strerror(errno));
        if (got == 0)
            return fl_fail(err, FL_ECLOSED, "the GDB stub closed the connection (QEMU exited?)");
        r->in_end += (size_t)got;
        return 0;
    }
}

static int retransmit(rsp *r, int *retries, fl_error *err)
{
    if (r->out_len == 0)
        return 0;  /* nothing sent yet: a stray '-' */
    if (++*retries > RSP_MAX_RETRIES)
        return fl_fail(err, FL_EPROTO, "the GDB stub rejected our packet %d times in a row", RSP_MAX_RETRIES + 1);
    return write_all(r, r->out, r->out_len, err);
}

/* Bytes between packets other than acks: report them and drop them. */
static int junk(rsp *r, fl_error *err)
{
    size_t s = r->in_start, e = s;
    while (e < r->in_end && r->in[e] != '$' && r->in[e] != '+' && r->in[e] != '-')
        e++;
    r->in_start = e;
    return proto_fail(err, "stray bytes outside a packet", r->in + s, e - s);
}

/* ---- packets ---------------------------------------------------------- */

int rsp_send_noack(rsp *r, const char *payload, size_t len, fl_error *err)
{
    size_t n = rsp_encode(payload, len, r->out, RAW_CAP);
    if (n == 0)
        return fl_fail(err, FL_EUSAGE, "packet of %zu bytes is too long to send", len);
    r->out_len = n;
    return write_all(r, r->out, n, err);
}

int rsp_send(rsp *r, const char *payload, size_t len, int timeout_ms, fl_error *err)
{
    if (rsp_send_noack(r, payload, len, err) < 0)
        return -1;
    if (r->noack)
        return 0;
    int64_t dl = fl_deadline_ms(timeout_ms);
    int retries = 0;
    for (;;) {
        while (r->in_start < r->in_end) {
            char c = r->in[r->in_start];
            if (c == '+') {
                r->in_start++;
                return 0;
            }
            if (c == '$')
                return 0;  /* a reply without the '+': take it as the ack */
            if (c == '-') {
                r->in_start++;
                if (retransmit(r, &retries, err) < 0)
                    return -1;
                continue;
            }
            return junk(r, err);
        }
        if (fill(r, dl, timeout_ms, err) < 0)
            return fl_error_prefix(err, "waiting for the acknowledgement");
    }
}

int rsp_recv(rsp *r, const char **payload, size_t *len, int timeout_ms, fl_error *err)
{
    int64_t dl = fl_deadline_ms(timeout_ms);
    int bad = 0, retries = 0;
    for (;;) {
        while (r->in_start < r->in_end && r->in[r->in_start] != '$') {
            char c = r->in[r->in_start];
            if (c == '+') {
                r->in_start++;  /* late or duplicate ack */
            } else if (c == '-') {
                r->in_start++;
                if (!r->noack && retransmit(r, &retries, err) < 0)
                    return -1;
            } else {
                return junk(r, err);
            }
        }
        if (r->in_start < r->in_end) {
            size_t consumed = 0, outlen = 0;
            int rc = rsp_decode(r->in + r->in_start, r->in_end - r->in_start, r->dec,
                                RSP_MAX_PAYLOAD + 1, &outlen, &consumed, err);
            r->in_start += consumed;
            if (rc < 0)
                return -1;
            if (rc == RSP_DEC_PACKET) {
                if (!r->noack && write_all(r, "+", 1, err) < 0)
                    return -1;
                *payload = r->dec;
                *len = outlen;
                return 0;
            }
            if (rc == RSP_DEC_BADSUM) {
                if (r->noack || ++bad > RSP_MAX_RETRIES)
                    return proto_fail(err, "bad checksum", r->in + r->in_start - consumed, consumed);
                if (write_all(r, "-", 1, err) < 0)
                    return -1;
                continue;
            }
        }
        if (fill(r, dl, timeout_ms, err) < 0)
            return -1;
    }
}

int rsp_exchange(rsp *r, const char *payload, size_t len, const char **reply, size_t *rlen,
                 int timeout_ms, fl_error *err)
{
    int64_t deadline = fl_deadline_ms(timeout_ms);
    if (rsp_send(r, payload, len, timeout_ms, err) < 0)
        return -1;
    return rsp_recv(r, reply, rlen, fl_remaining_ms(deadline), err);
}

int rsp_interrupt(rsp *r, fl_error *err)
{
    return write_all(r, "\x03", 1, err);
}
