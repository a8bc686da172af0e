/* The reference the benchmarks measure the library against: the raw GDB
 * remote protocol with no library around it, packets framed, checksummed and
 * acknowledged by hand. Shared by bench_step.c and bench_trace.c. */
#ifndef FAULTLINE_BENCH_RAW_RSP_H
#define FAULTLINE_BENCH_RAW_RSP_H

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct raw {
    int fd;
    char buf[8192];
    size_t len;
} raw;

static int raw_send(raw *r, const char *payload)
{
    char pkt[128];
    unsigned sum = 0;
    for (const char *p = payload; *p; p++)
        sum += (unsigned char)*p;
    int n = snprintf(pkt, sizeof pkt, "$%s#%02x", payload, sum & 0xff);
    return write(r->fd, pkt, (size_t)n) == n ? 0 : -1;
}

/* Read the '+' and one packet; ack it; returns payload start/len in buf. */
static int raw_reply(raw *r, const char **payload, size_t *plen)
{
    r->len = 0;
    for (;;) {
        char *d = memchr(r->buf, '$', r->len);
        if (d) {
            char *h = memchr(d, '#', r->len - (size_t)(d - r->buf));
            if (h && (size_t)(h - r->buf) + 3 <= r->len) {
                *payload = d + 1;
                *plen = (size_t)(h - d - 1);
                return write(r->fd, "+", 1) == 1 ? 0 : -1;
            }
        }
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
        if (n <= 0)
            return -1;
        r->len += (size_t)n;
    }
}

static int hv(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

#endif
