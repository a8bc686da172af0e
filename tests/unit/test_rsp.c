/* rsp layer: the pure decoder/encoder, then the wire behaviour over a
 * socketpair (acks, retransmits, timeouts, hang-ups) and the transports. */
#include "check.h"
#include "fakestub.h"
#include "faultline/rsp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dec(const char *raw, char *out, size_t cap, size_t *outlen, size_t *consumed, fl_error *e)
{
    return rsp_decode(raw, strlen(raw), out, cap, outlen, consumed, e);
}

static void test_decode(void)
{
    char out[256];
    size_t ol, used;
    fl_error e = {0};

    CHECK(dec("$OK#9a", out, sizeof out, &ol, &used, &e) == RSP_DEC_PACKET);
    CHECK(ol == 2 && used == 6);
    CHECK_STR(out, "OK");

    /* Run-length: '0' then '*' ' ' (32-29 = 3 more) = "0000". */
    char pkt[32];
    unsigned sum = '0' + '*' + ' ';
    snprintf(pkt, sizeof pkt, "$0* #%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == RSP_DEC_PACKET);
    CHECK_STR(out, "0000");
    /* RLE of the maximal count '~' (126-29 = 97 repeats) */
    sum = 'f' + '*' + '~';
    snprintf(pkt, sizeof pkt, "$f*~#%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == RSP_DEC_PACKET);
    CHECK(ol == 98);

    /* Escapes: "}]" is '}' (0x5d ^ 0x20 = 0x7d), "}\x03" is '#'. */
    sum = 'a' + '}' + ']' + '}' + 0x03 + 'b';
    snprintf(pkt, sizeof pkt, "$a}]}\x03" "b#%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == RSP_DEC_PACKET);
    CHECK(ol == 4 && memcmp(out, "a}#b", 4) == 0);
    /* An escaped byte followed by RLE repeats the unescaped byte. */
    sum = '}' + ']' + '*' + ' ';
    snprintf(pkt, sizeof pkt, "$}]* #%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == RSP_DEC_PACKET);
    CHECK(ol == 4 && memcmp(out, "}}}}", 4) == 0);

    /* Incomplete: nothing consumed. */
    CHECK(dec("$OK#9", out, sizeof out, &ol, &used, &e) == RSP_DEC_MORE);
    CHECK(used == 0);
    CHECK(dec("$OK", out, sizeof out, &ol, &used, &e) == RSP_DEC_MORE);

    /* Bad checksum: consumed, reported as such (the caller NAKs it). */
    CHECK(dec("$OK#00", out, sizeof out, &ol, &used, &e) == RSP_DEC_BADSUM);
    CHECK(used == 6);

    /* Malformed: -1, FL_EPROTO, with the bytes in the sentence. */
    fl_error_clear(&e);
    CHECK(dec("$OK#zz", out, sizeof out, &ol, &used, &e) == -1);
    CHECK(e.code == FL_EPROTO && strstr(e.msg, "$OK#zz"));
    fl_error_clear(&e);
    CHECK(dec("$tru$OK#9a", out, sizeof out, &ol, &used, &e) == -1);
    CHECK(e.code == FL_EPROTO && used == 4 && strstr(e.msg, "$tru"));
    sum = '*' + ' ';
    snprintf(pkt, sizeof pkt, "$* #%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == -1);
    sum = 'a' + '}';
    snprintf(pkt, sizeof pkt, "$a}#%02x", sum & 0xff);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == -1);
    sum = 'a' + '*' + 0x10;
    snprintf(pkt, sizeof pkt, "$a*\x10#%02x", sum & 0xff);
    fl_error_clear(&e);
    CHECK(dec(pkt, out, sizeof out, &ol, &used, &e) == -1);
    CHECK(strstr(e.msg, "\\x10") != NULL);  /* non-printables shown escaped */
    CHECK(dec("xOK#9a", out, sizeof out, &ol, &used, &e) == -1);
    /* Output larger than cap is refused, not overflowed. */
    sum = 'f' + '*' + '~';
    snprintf(pkt, sizeof pkt, "$f*~#%02x", sum & 0xff);
    CHECK(dec(pkt, out, 50, &ol, &used, &e) == -1);
}

static void test_encode(void)
{
    char out[64], back[64];
    const char in[] = "a#b$c}d*e";
    size_t n = rsp_encode(in, sizeof in - 1, out, sizeof out);
    CHECK(n > 0);
    CHECK(memchr(out + 1, '#', n - 4) == NULL);  /* only the trailing '#' */
    size_t ol, used;
    CHECK(rsp_decode(out, n, back, sizeof back, &ol, &used, NULL) == RSP_DEC_PACKET);
    CHECK(ol == sizeof in - 1 && memcmp(back, in, ol) == 0);
    CHECK(rsp_encode("g", 1, out, sizeof out) == 5 && memcmp(out, "$g#67", 5) == 0);
    CHECK(rsp_encode("abcdef", 6, out, 6) == 0);  /* does not fit */

    char msg[32];
    rsp_escape_for_msg("ab\x01\\", 4, 10, msg, sizeof msg);
    CHECK_STR(msg, "ab\\x01\\\\");
    rsp_escape_for_msg("abcdefgh", 8, 3, msg, sizeof msg);
    CHECK_STR(msg, "abc...");
}

/* Read everything the peer has within ~100 ms. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n + 1 < cap && poll(&p, 1, 100) > 0) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static void test_wire(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rsp *r;
    fl_error e = {0};
    CHECK(rsp_open_fd(&r, sv[0], &e) == 0);
    const char *p;
    size_t len;
    char buf[512];

    /* Normal exchange: '+' then the reply; the client acks the reply. */
    write(sv[1], "+$OK#9a", 7);
    CHECK(rsp_exchange(r, "g", 1, &p, &len, 1000, &e) == 0);
    CHECK(len == 2 && memcmp(p, "OK", 2) == 0);
    drain(sv[1], buf, sizeof buf);
    CHECK_STR(buf, "$g#67+");

    /* Bad checksum: the client asks for a retransmit with '-'. */
    write(sv[1], "$OK#00$OK#9a", 12);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == 0);
    CHECK(len == 2 && memcmp(p, "OK", 2) == 0);
    drain(sv[1], buf, sizeof buf);
    CHECK_STR(buf, "-+");

    /* Bounded: four bad ones in a row is a protocol error. */
    write(sv[1], "$OK#00$OK#00$OK#00$OK#00", 24);
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == -1);
    CHECK(e.code == FL_EPROTO && strstr(e.msg, "checksum"));
    drain(sv[1], buf, sizeof buf);
    CHECK_STR(buf, "---");

    /* The stub NAKs our packet: we retransmit it, once per '-'. */
    write(sv[1], "-+", 2);
    CHECK(rsp_send(r, "m0,4", 4, 1000, &e) == 0);
    drain(sv[1], buf, sizeof buf);
    CHECK_STR(buf, "$m0,4#fd$m0,4#fd");

    /* Stray bytes: FL_EPROTO naming them; the link then resynchronises. */
    write(sv[1], "xyz\x01$OK#9a", 10);
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == -1);
    CHECK(e.code == FL_EPROTO && strstr(e.msg, "xyz\\x01"));
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == 0 && len == 2);
    drain(sv[1], buf, sizeof buf);

    /* Truncated packet, then silence: FL_ETIMEOUT in about the time asked;
     * the partial bytes survive and the rest completes the packet later. */
    write(sv[1], "$O", 2);
    int64_t t0 = ms_now();
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 150, &e) == -1);
    int64_t dt = ms_now() - t0;
    CHECK(e.code == FL_ETIMEOUT);
    CHECK(dt >= 140 && dt < 1000);
    CHECK(rsp_pending(r));
    write(sv[1], "K#9a", 4);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == 0 && len == 2 && memcmp(p, "OK", 2) == 0);
    drain(sv[1], buf, sizeof buf);

    /* Silent stub on the ack wait too. */
    fl_error_clear(&e);
    CHECK(rsp_send(r, "?", 1, 100, &e) == -1 && e.code == FL_ETIMEOUT);
    drain(sv[1], buf, sizeof buf);

    /* RLE + escaped binary over the wire (a qXfer chunk with '}' and '#'). */
    unsigned sum = 0;
    const char body[] = "l<}]}\x03>0* ";
    for (size_t i = 0; i < sizeof body - 1; i++)
        sum += (unsigned char)body[i];
    char pkt[64];
    int n = snprintf(pkt, sizeof pkt, "$%s#%02x", body, sum & 0xff);
    write(sv[1], pkt, (size_t)n);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == 0);
    CHECK(len == 9 && memcmp(p, "l<}#>0000", 9) == 0);
    drain(sv[1], buf, sizeof buf);

    /* Interrupt is one raw byte. */
    CHECK(rsp_interrupt(r, &e) == 0);
    drain(sv[1], buf, sizeof buf);
    CHECK(buf[0] == 3 && buf[1] == 0);

    /* No-ack mode: no '+' either way. */
    rsp_set_noack(r, true);
    write(sv[1], "$OK#9a", 6);
    CHECK(rsp_exchange(r, "g", 1, &p, &len, 1000, &e) == 0 && len == 2);
    drain(sv[1], buf, sizeof buf);
    CHECK_STR(buf, "$g#67");
    rsp_set_noack(r, false);

    /* Hang-up: FL_ECLOSED, both on receive and on send. */
    close(sv[1]);
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 1000, &e) == -1 && e.code == FL_ECLOSED);
    fl_error_clear(&e);
    CHECK(rsp_exchange(r, "g", 1, &p, &len, 1000, &e) == -1 && e.code == FL_ECLOSED);
    rsp_close(r);
}

/* A connection reset (RST, not FIN): SO_LINGER 0 on TCP. */
static void test_tcp_and_reset(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(listen(ls, 1) == 0);
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    rsp *r = NULL;
    fl_error e = {0};
    CHECK(rsp_open(&r, addr, 1000, &e) == 0);
    int peer = accept(ls, NULL, NULL);
    CHECK(peer >= 0);
    write(peer, "+$OK#9a", 7);
    const char *p;
    size_t len;
    CHECK(r && rsp_exchange(r, "g", 1, &p, &len, 1000, &e) == 0 && len == 2);
    struct linger lg = {1, 0};
    setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(peer);
    fl_error_clear(&e);
    CHECK(r && rsp_recv(r, &p, &len, 1000, &e) == -1);
    CHECK(e.code == FL_ECLOSED);
    rsp_close(r);
    /* Nobody listening any more: a clear FL_EIO, not a hang. */
    close(ls);
    fl_error_clear(&e);
    CHECK(rsp_open(&r, addr, 1000, &e) == -1 && e.code == FL_EIO && strstr(e.msg, addr));
    CHECK(rsp_open(&r, "nonsense", 1000, &e) == -1 && e.code == FL_EUSAGE);
    CHECK(rsp_open(&r, "unix:", 1000, &e) == -1 && e.code == FL_EUSAGE);
}

static void test_unix(void)
{
    char dir[] = "/tmp/fl-test-rsp-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], addr[140];
    snprintf(path, sizeof path, "%s/gdb.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
    CHECK(bind(ls, (struct sockaddr *)&su, sizeof su) == 0 && listen(ls, 1) == 0);
    rsp *r = NULL;
    fl_error e = {0};
    CHECK(rsp_open(&r, addr, 1000, &e) == 0);
    int peer = accept(ls, NULL, NULL);
    write(peer, "+$T05thread:p01.01;#06", 22);
    const char *p;
    size_t len;
    fl_error_clear(&e);
    int rc = r ? rsp_exchange(r, "?", 1, &p, &len, 1000, &e) : -1;
    if (rc < 0)
        fprintf(stderr, "unix exchange: %s\n", e.msg);
    CHECK(rc == 0 && len == 17 && memcmp(p, "T05thread:p01.01;", 17) == 0);
    rsp_close(r);
    close(peer);
    close(ls);
    unlink(path);
    rmdir(dir);
    CHECK(rsp_open(&r, addr, 500, &e) == -1 && e.code == FL_EIO);
}

/* The threaded fake: a scripted exchange with a retransmit in the middle. */
static void test_fake(void)
{
    const fs_step script[] = {
        {FS_RECV, "qSupported*", 0, NULL},
        {FS_RAW, "$PacketSize=1000#00", 0, NULL},  /* bad checksum */
        {FS_NAK, NULL, 0, NULL},
        {FS_SEND, "PacketSize=1000", 0, NULL},
        {FS_RECV, "?", 0, NULL},
        {FS_SLEEP, NULL, 300, NULL},               /* silent longer than the client waits */
        {FS_CLOSE, NULL, 0, NULL},
        {FS_END, NULL, 0, NULL},
    };
    fakestub f;
    int fd = fakestub_start(&f, script);
    CHECK(fd >= 0);
    rsp *r;
    fl_error e = {0};
    CHECK(rsp_open_fd(&r, fd, &e) == 0);
    const char *p;
    size_t len;
    CHECK(rsp_exchange(r, "qSupported:x", 12, &p, &len, 1000, &e) == 0);
    CHECK(len == 15 && memcmp(p, "PacketSize=1000", 15) == 0);
    fl_error_clear(&e);
    CHECK(rsp_exchange(r, "?", 1, &p, &len, 100, &e) == -1 && e.code == FL_ETIMEOUT);
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 2000, &e) == -1 && e.code == FL_ECLOSED);
    rsp_close(r);
    CHECK(fakestub_join(&f) == 0);
    CHECK(strstr(f.log, "<NAK>") != NULL);
}

static int cancel_after;  /* calls of the hook before it says "cancelled" */
static int cancel_hook(void *ctx)
{
    (void)ctx;
    return --cancel_after < 0;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* The cancellation hook (issue 16): a silent peer, a 10 s receive; the hook
 * turns true on its third check, so the wait ends with FL_EINTR after two
 * 100 ms slices, not 10 s. Cleared, the same wait times out normally.
 * Guards rsp.c:wait_fd's slicing and its check before every slice. */
static void test_cancel(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    rsp *r;
    fl_error e = {0};
    CHECK(rsp_open_fd(&r, sv[0], &e) == 0);
    rsp_set_cancel(r, cancel_hook, NULL);
    cancel_after = 2;
    const char *p;
    size_t len;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(rsp_recv(r, &p, &len, 10000, &e) == -1 && e.code == FL_EINTR);
    long el = ms_since(&t0);
    CHECK(el >= 150 && el < 1000);
    rsp_set_cancel(r, NULL, NULL);
    fl_error_clear(&e);
    CHECK(rsp_recv(r, &p, &len, 150, &e) == -1 && e.code == FL_ETIMEOUT);
    rsp_close(r);
    close(sv[1]);
}

int main(void)
{
    test_decode();
    test_encode();
    test_wire();
    test_tcp_and_reset();
    test_unix();
    test_fake();
    test_cancel();
    return check_summary("test_rsp");
}
