/* An in-process fake GDB stub for the unit tests: a thread on one end of a
 * socketpair replays a script (expect this packet, send that reply, send raw
 * bytes, go silent, hang up) and logs everything the client sent, one item a
 * line: packet payloads, "<NAK>" for '-', "<INT>" for 0x03 ('+' acks are
 * counted, not logged). Every read of the fake is bounded (2 s).
 *
 * For fault injection (tests/unit/test_faults.c): FS_RESET (hang up with
 * the client's bytes unread, so the client sees ECONNRESET, not EOF), FS_BADSUM_FOREVER (answer every packet and every
 * '-' with a packet whose checksum is wrong), FS_NAK_FOREVER ('-' every packet
 * the client sends), FS_FLOOD (send n bytes of a's text, over and over),
 * FS_IGNORE_FOREVER (read and log everything, answer nothing: a stub that never
 * stops, not even for 0x03), FS_E_FOREVER (answer "E14" to every packet),
 * FS_AUTO (a small QEMU look-alike for a whole capture session: OK to Z/z,
 * the `g` in b to g, zeros to m, nothing to vCont;c/c, T02 to 0x03, OK to D/k),
 * FS_AUTO_CONSOLE (the same, but while the guest runs it sends an `O`
 * console-output packet every n ms, for ever), FS_DRIP (send a as one
 * packet, one byte every n ms), FS_XFER_SLOW (like FS_XFER, but 1-byte
 * chunks, each after n ms), FS_KVM (QEMU under KVM, see fs_kvm below).
 * Every read is still bounded (2 s of silence ends a *_FOREVER op, 10 s an
 * FS_AUTO* session).
 */
#ifndef FAULTLINE_TESTS_FAKESTUB_H
#define FAULTLINE_TESTS_FAKESTUB_H

#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum fs_op {
    FS_END = 0,
    FS_RECV,    /* read one client packet; it must equal a (or start with a if a ends in '*') */
    FS_SEND,    /* send a as a framed packet */
    FS_RAW,     /* send a verbatim (n bytes, or strlen(a) if n == 0) */
    FS_NAK,     /* read bytes until a '-' (skipping '+'); anything else fails */
    FS_INT,     /* read bytes until 0x03 (skipping '+') */
    FS_SLEEP,   /* sleep n ms */
    FS_CLOSE,   /* hang up now */
    FS_RESET,          /* wait for client bytes (<= 2 s), hang up without reading them */
    FS_BADSUM_FOREVER, /* answer everything with "$<a>#00" (a wrong checksum) until hangup */
    FS_NAK_FOREVER,    /* answer every client packet with '-' until hangup */
    FS_FLOOD,          /* send a's text repeatedly, n bytes in all (stops when refused) */
    FS_IGNORE_FOREVER, /* read and log everything, answer nothing, until hangup */
    FS_E_FOREVER,      /* answer "E14" to every client packet until hangup */
    FS_AUTO,           /* QEMU look-alike, see above; b is the `g` reply */
    FS_XFER,    /* serve qXfer:features:read:<a>:OFF,LEN requests from document b
                   ('m'/'l' chunks, escaped as QEMU does) until the last chunk */
    FS_AUTO_CONSOLE,   /* FS_AUTO + an O packet every n ms while running */
    FS_DRIP,           /* send a as a packet, one byte every n ms */
    FS_XFER_SLOW,      /* FS_XFER with 1-byte chunks, each after n ms */
    FS_KVM,            /* KVM personality: a = the guest's path (pcs, see fs_kvm),
                          b = the `g` reply, n = byte offset of rip in it */
};

typedef struct fs_step {
    enum fs_op op;
    const char *a;
    size_t n;
    const char *b;
} fs_step;

typedef struct fakestub {
    int fd;
    pthread_t th;
    const fs_step *script;
    char log[65536];
    size_t loglen;
    int acks;
    int failures;
    char why[512];
    char in[65536];
    size_t inlen;
    char rep[70000];
    int fill_ms;   /* bound of one read; 0: 2000 */
    bool eof;      /* the client hung up (not just silence) */
} fakestub;

static void fs_log(fakestub *f, const char *s, size_t n)
{
    if (f->loglen + n + 2 >= sizeof f->log)
        return;
    memcpy(f->log + f->loglen, s, n);
    f->loglen += n;
    f->log[f->loglen++] = '\n';
    f->log[f->loglen] = '\0';
}

static void fs_failf(fakestub *f, const char *what, const char *detail)
{
    if (!f->failures)
        snprintf(f->why, sizeof f->why, "%s: %s", what, detail ? detail : "");
    f->failures++;
}

/* Fill at least one more byte; 0 on timeout/EOF. */
static int fs_fill(fakestub *f)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    if (poll(&p, 1, f->fill_ms > 0 ? f->fill_ms : 2000) <= 0)
        return 0;
    ssize_t n = read(f->fd, f->in + f->inlen, sizeof f->in - f->inlen);
    if (n <= 0) {
        f->eof = true;
        return 0;
    }
    f->inlen += (size_t)n;
    return 1;
}

static void fs_drop(fakestub *f, size_t n)
{
    memmove(f->in, f->in + n, f->inlen - n);
    f->inlen -= n;
}

/* $payload#checksum into buf (cut to fit); returns its length. */
static size_t fs_frame(const char *payload, char *buf, size_t cap)
{
    unsigned sum = 0;
    size_t n = strlen(payload), o = 0;
    buf[o++] = '$';
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        buf[o++] = payload[i];
        sum += (unsigned char)payload[i];
    }
    return o + (size_t)snprintf(buf + o, cap - o, "#%02x", sum & 0xff);
}

static void fs_send_packet(fakestub *f, const char *payload)
{
    char buf[70000];
    size_t o = fs_frame(payload, buf, sizeof buf);
    if (send(f->fd, buf, o, MSG_NOSIGNAL) != (ssize_t)o)
        fs_failf(f, "send failed", payload);
}

/* Read one packet: skip/log acks, NAKs and interrupts. Returns its payload
 * (static buffer in f->in after the call's drop) or NULL. */
static int fs_recv_packet(fakestub *f, char *out, size_t cap)
{
    for (;;) {
        while (f->inlen > 0 && f->in[0] != '$') {
            if (f->in[0] == '+')
                f->acks++;
            else if (f->in[0] == '-')
                fs_log(f, "<NAK>", 5);
            else if (f->in[0] == 3)
                fs_log(f, "<INT>", 5);
            else
                fs_log(f, "<JUNK>", 6);
            fs_drop(f, 1);
        }
        char *hash = f->inlen ? memchr(f->in, '#', f->inlen) : NULL;
        if (hash && (size_t)(hash - f->in) + 3 <= f->inlen) {
            size_t plen = (size_t)(hash - f->in) - 1;
            unsigned sum = 0;
            for (size_t i = 0; i < plen; i++)
                sum += (unsigned char)f->in[1 + i];
            char cs[3];
            snprintf(cs, sizeof cs, "%02x", sum & 0xff);
            if (memcmp(cs, hash + 1, 2) != 0)
                fs_failf(f, "client sent a bad checksum", f->in);
            size_t n = plen < cap - 1 ? plen : cap - 1;
            memcpy(out, f->in + 1, n);
            out[n] = '\0';
            fs_drop(f, plen + 4);
            send(f->fd, "+", 1, MSG_NOSIGNAL);
            return 1;
        }
        if (!fs_fill(f))
            return 0;
    }
}

static int fs_wait_byte(fakestub *f, char want)
{
    for (;;) {
        while (f->inlen > 0) {
            char c = f->in[0];
            fs_drop(f, 1);
            if (c == '+') {
                f->acks++;
                continue;
            }
            fs_log(f, c == '-' ? "<NAK>" : c == 3 ? "<INT>" : "<JUNK>", c == '-' || c == 3 ? 5 : 6);
            return c == want;
        }
        if (!fs_fill(f))
            return 0;
    }
}

static void fs_send_raw(fakestub *f, const char *s, size_t n)
{
    if (f->fd >= 0)
        send(f->fd, s, n, MSG_NOSIGNAL);
}

/* A framed packet whose sending may fail without counting as a failure (the
 * client may have given up on a slow or chatty stub, as it should). */
static void fs_send_raw_packet(fakestub *f, const char *payload)
{
    char buf[4200];
    fs_send_raw(f, buf, fs_frame(payload, buf, sizeof buf));
}

/* Wait until the client has sent something (bounded 2 s), without reading. */
static void fs_wait_readable(fakestub *f)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    poll(&p, 1, 2000);
}

/* One unit of client input: 1 = packet (in out), 2 = a single byte (in *c),
 * 0 = hangup/silence. Acks are counted and skipped. */
static int fs_next(fakestub *f, char *out, size_t cap, char *c)
{
    for (;;) {
        while (f->inlen > 0 && f->in[0] == '+') {
            f->acks++;
            fs_drop(f, 1);
        }
        if (f->inlen > 0 && f->in[0] != '$') {
            *c = f->in[0];
            fs_drop(f, 1);
            fs_log(f, *c == '-' ? "<NAK>" : *c == 3 ? "<INT>" : "<JUNK>", *c == '-' || *c == 3 ? 5 : 6);
            return 2;
        }
        if (f->inlen > 0) {
            char *hash = memchr(f->in, '#', f->inlen);
            if (hash && (size_t)(hash - f->in) + 3 <= f->inlen) {
                size_t plen = (size_t)(hash - f->in) - 1;
                size_t n = plen < cap - 1 ? plen : cap - 1;
                memcpy(out, f->in + 1, n);
                out[n] = '\0';
                fs_drop(f, plen + 4);
                fs_log(f, out, strlen(out));
                return 1;
            }
        }
        if (!fs_fill(f))
            return 0;
    }
}

static void fs_sleep_ms(size_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Zeros for an `m` request, or E01. */
static void fs_mem_reply(fakestub *f, const char *pkt)
{
    unsigned long long addr;
    unsigned long len;
    if (sscanf(pkt + 1, "%llx,%lx", &addr, &len) == 2 && len <= 4096) {
        memset(f->rep, '0', 2 * len);
        f->rep[2 * len] = '\0';
        fs_send_packet(f, f->rep);
    } else {
        fs_send_packet(f, "E01");
    }
}

/* console_ms > 0: while running, an O packet ("faultline\n" in hex) every
 * console_ms, and a read of the client's input bounded by that. */
static void fs_auto(fakestub *f, const char *g, size_t console_ms)
{
    char pkt[65536], c;
    int k;
    bool running = false;
    size_t sent_o = 0;  /* bounded (8 s worth), so a client that never stops still ends */
    for (;;) {
        /* A whole session has pauses (the client reads a vmlinux's DWARF
         * before it arms anything, slowly on a loaded machine): 10 s of
         * silence, not 2, ends it. */
        f->fill_ms = running && console_ms ? (int)console_ms : 10000;
        k = fs_next(f, pkt, sizeof pkt, &c);
        if (k == 0 && running && console_ms && !f->eof && sent_o++ < 8000 / console_ms) {
            fs_send_raw_packet(f, "O6661756c746c696e650a");
            continue;
        }
        if (k == 0)
            break;
        if (k == 2) {
            if (c == 3 && running) {
                running = false;
                fs_send_packet(f, "T02thread:p01.01;");
            }
            continue;
        }
        fs_send_raw(f, "+", 1);
        if (pkt[0] == 'Z' || pkt[0] == 'z' || pkt[0] == 'D' || strcmp(pkt, "k") == 0 || pkt[0] == 'P' ||
            pkt[0] == 'M')
            fs_send_packet(f, "OK");
        else if (strcmp(pkt, "g") == 0)
            fs_send_packet(f, g);
        else if (pkt[0] == 'm')
            fs_mem_reply(f, pkt);
        else if (strncmp(pkt, "vCont;c", 7) == 0 || strcmp(pkt, "c") == 0)
            running = true;  /* never stops by itself */
        else if (strncmp(pkt, "vCont;s", 7) == 0 || strcmp(pkt, "s") == 0)
            fs_send_packet(f, "T05thread:p01.01;");
        else
            fs_send_packet(f, "");
    }
    f->fill_ms = 0;
}

/* QEMU under KVM, as measured-facts.md describes it: four debug-register
 * slots shared by Z1/Z2/Z4 (a fifth is refused with E22), Z3 unsupported
 * (empty reply), Z0 accepted but never trapping, and `p` answering the value
 * of the previous `g` until `g` is read again after a stop. The guest runs
 * along a fixed path of pcs (`path`, comma-separated hex, in order, each
 * passed once): a continue stops at the next pc of the path that holds a
 * Z1, or runs for ever (0x03 -> T02) when none is left. */
#define FS_KVM_SLOTS 4
typedef struct fs_kvm_state {
    unsigned long long path[64], hw[16], sw[16];
    size_t npath, pos, nhw, nsw;
    unsigned long long rip, p_rip;  /* p_rip: what `p` answers (stale) */
    bool running;
} fs_kvm_state;

static bool fs_kvm_del(unsigned long long *set, size_t *n, unsigned long long a)
{
    for (size_t i = 0; i < *n; i++)
        if (set[i] == a) {
            set[i] = set[--*n];
            return true;
        }
    return false;
}

static void fs_kvm_z(fakestub *f, fs_kvm_state *k, const char *pkt)
{
    int type;
    unsigned long long a;
    unsigned kind;
    if (sscanf(pkt + 1, "%d,%llx,%x", &type, &a, &kind) != 3 || type < 0 || type > 4) {
        fs_send_packet(f, "E01");
        return;
    }
    if (type == 3) {
        fs_send_packet(f, "");
        return;
    }
    unsigned long long *set = type == 0 ? k->sw : k->hw;
    size_t *n = type == 0 ? &k->nsw : &k->nhw;
    if (pkt[0] == 'z') {
        fs_kvm_del(set, n, a);
        fs_send_packet(f, "OK");
    } else if (type != 0 && *n >= FS_KVM_SLOTS) {
        fs_send_packet(f, "E22");
    } else {
        if (*n < 16)
            set[(*n)++] = a;
        fs_send_packet(f, "OK");
    }
}

static void fs_kvm_continue(fakestub *f, fs_kvm_state *k)
{
    for (size_t i = k->pos; i < k->npath; i++)
        for (size_t j = 0; j < k->nhw; j++)
            if (k->hw[j] == k->path[i]) {
                k->pos = i + 1;
                k->rip = k->path[i];
                fs_send_packet(f, "T05thread:p01.01;");
                return;
            }
    k->pos = k->npath;
    k->running = true;
}

static void fs_kvm_g(fakestub *f, fs_kvm_state *k, const char *g, size_t rip_off)
{
    static const char hx[] = "0123456789abcdef";
    snprintf(f->rep, sizeof f->rep, "%s", g);
    for (size_t i = 0; i < 8 && 2 * (rip_off + i) + 1 < strlen(f->rep); i++) {
        unsigned b = (unsigned)(k->rip >> (8 * i)) & 0xff;
        f->rep[2 * (rip_off + i)] = hx[b >> 4];
        f->rep[2 * (rip_off + i) + 1] = hx[b & 0xf];
    }
    k->p_rip = k->rip;
    fs_send_packet(f, f->rep);
}

static void fs_kvm_packet(fakestub *f, fs_kvm_state *k, const char *pkt, const char *g, size_t rip_off)
{
    if (pkt[0] == 'Z' || pkt[0] == 'z')
        fs_kvm_z(f, k, pkt);
    else if (strcmp(pkt, "g") == 0)
        fs_kvm_g(f, k, g, rip_off);
    else if (strcmp(pkt, "p10") == 0) {  /* rip, stale until the next g */
        char v[20];
        for (int i = 0; i < 8; i++)
            snprintf(v + 2 * i, 3, "%02x", (unsigned)(k->p_rip >> (8 * i)) & 0xff);
        fs_send_packet(f, v);
    } else if (pkt[0] == 'm')
        fs_mem_reply(f, pkt);
    else if (strncmp(pkt, "vCont;c", 7) == 0 || strcmp(pkt, "c") == 0)
        fs_kvm_continue(f, k);
    else if (strncmp(pkt, "vCont;s", 7) == 0 || strcmp(pkt, "s") == 0) {
        k->rip += 1;
        fs_send_packet(f, "T05thread:p01.01;");
    } else if (pkt[0] == 'D' || strcmp(pkt, "k") == 0 || pkt[0] == 'P' || pkt[0] == 'M')
        fs_send_packet(f, "OK");
    else
        fs_send_packet(f, "");
}

static void fs_kvm(fakestub *f, const char *path, const char *g, size_t rip_off)
{
    fs_kvm_state k;
    memset(&k, 0, sizeof k);
    for (const char *p = path; p && *p && k.npath < 64;) {
        k.path[k.npath++] = strtoull(p, NULL, 16);
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    char pkt[65536], c;
    int n;
    while ((n = fs_next(f, pkt, sizeof pkt, &c)) != 0) {
        if (n == 2) {
            if (c == 3 && k.running) {
                k.running = false;
                fs_send_packet(f, "T02thread:p01.01;");
            }
            continue;
        }
        fs_send_raw(f, "+", 1);
        fs_kvm_packet(f, &k, pkt, g, rip_off);
    }
}

/* Serve qXfer requests for annex from doc; chunk_max > 0 caps each chunk
 * (bytes) and delay_ms sleeps before each reply. 0 on success. */
static int fs_xfer(fakestub *f, const char *annex, const char *doc, size_t chunk_max, size_t delay_ms)
{
    char pkt[65536], prefix[128];
    int pl = snprintf(prefix, sizeof prefix, "qXfer:features:read:%s:", annex);
    size_t doclen = strlen(doc);
    for (;;) {
        if (!fs_recv_packet(f, pkt, sizeof pkt)) {
            if (!delay_ms)  /* a slow stub's client may rightly give up */
                fs_failf(f, "expected a qXfer request, got none", annex);
            return -1;
        }
        fs_log(f, pkt, strlen(pkt));
        unsigned long off, len;
        if (strncmp(pkt, prefix, (size_t)pl) != 0 || sscanf(pkt + pl, "%lx,%lx", &off, &len) != 2) {
            fs_failf(f, "unexpected packet instead of qXfer", pkt);
            return 0;
        }
        if (chunk_max && len > chunk_max)
            len = chunk_max;
        char *rep = f->rep;
        size_t o = 0;
        size_t end = off + len < doclen ? off + len : doclen;
        rep[o++] = end < doclen ? 'm' : 'l';
        for (size_t i = off; i < end && o + 3 < sizeof f->rep; i++) {
            char c = doc[i];
            if (c == '#' || c == '$' || c == '}' || c == '*') {
                rep[o++] = '}';
                c ^= 0x20;
            }
            rep[o++] = c;
        }
        rep[o] = '\0';
        fs_sleep_ms(delay_ms);
        if (delay_ms)
            fs_send_raw_packet(f, rep);
        else
            fs_send_packet(f, rep);
        if (end >= doclen)
            return 0;
    }
}

/* Frame payload and send it one byte every delay_ms (stops if refused). */
static void fs_drip(fakestub *f, const char *payload, size_t delay_ms)
{
    char buf[4096];
    unsigned sum = 0;
    size_t n = strlen(payload), o = 0;
    buf[o++] = '$';
    for (size_t i = 0; i < n && o + 4 < sizeof buf; i++) {
        buf[o++] = payload[i];
        sum += (unsigned char)payload[i];
    }
    o += (size_t)snprintf(buf + o, sizeof buf - o, "#%02x", sum & 0xff);
    for (size_t i = 0; i < o; i++) {
        if (send(f->fd, buf + i, 1, MSG_NOSIGNAL) != 1)
            return;
        fs_sleep_ms(delay_ms);
    }
}

static void *fs_thread(void *arg)
{
    fakestub *f = arg;
    char pkt[65536];
    for (const fs_step *s = f->script; s->op != FS_END; s++) {
        switch (s->op) {
        case FS_RECV: {
            if (!fs_recv_packet(f, pkt, sizeof pkt)) {
                fs_failf(f, "expected a packet, got none", s->a);
                goto out;
            }
            fs_log(f, pkt, strlen(pkt));
            size_t al = strlen(s->a);
            bool ok = (al > 0 && s->a[al - 1] == '*') ? strncmp(pkt, s->a, al - 1) == 0 : strcmp(pkt, s->a) == 0;
            if (!ok) {
                char d[400];
                snprintf(d, sizeof d, "expected \"%s\", got \"%.200s\"", s->a, pkt);
                fs_failf(f, "unexpected packet", d);
            }
            break;
        }
        case FS_SEND:
            fs_send_packet(f, s->a);
            break;
        case FS_RAW:
            send(f->fd, s->a, s->n ? s->n : strlen(s->a), MSG_NOSIGNAL);
            break;
        case FS_NAK:
            if (!fs_wait_byte(f, '-'))
                fs_failf(f, "expected a '-' from the client", NULL);
            break;
        case FS_INT:
            if (!fs_wait_byte(f, 3))
                fs_failf(f, "expected 0x03 from the client", NULL);
            break;
        case FS_SLEEP:
            fs_sleep_ms(s->n);
            break;
        case FS_CLOSE:
            goto out;
        case FS_XFER:
            if (fs_xfer(f, s->a, s->b, 0, 0) < 0)
                goto out;
            break;
        case FS_XFER_SLOW:
            if (fs_xfer(f, s->a, s->b, 1, s->n) < 0)
                goto out;
            break;
        case FS_DRIP:
            fs_drip(f, s->a, s->n);
            break;
        case FS_AUTO_CONSOLE:
            fs_auto(f, s->b, s->n ? s->n : 50);
            goto out;
        case FS_KVM:
            fs_kvm(f, s->a, s->b, s->n);
            goto out;
        case FS_RESET:
            fs_wait_readable(f);
            goto out;
        case FS_BADSUM_FOREVER: {
            char buf[512], c;
            int k;
            snprintf(buf, sizeof buf, "$%s#00", s->a ? s->a : "OK");
            fs_send_raw(f, buf, strlen(buf));
            while ((k = fs_next(f, pkt, sizeof pkt, &c)) != 0)
                if (k == 1 || c == '-')
                    fs_send_raw(f, buf, strlen(buf));
            goto out;
        }
        case FS_NAK_FOREVER: {
            char c;
            int k;
            while ((k = fs_next(f, pkt, sizeof pkt, &c)) != 0)
                if (k == 1)
                    fs_send_raw(f, "-", 1);
            goto out;
        }
        case FS_FLOOD: {
            size_t al = strlen(s->a), sent = 0;
            while (sent < s->n) {
                ssize_t w = send(f->fd, s->a, al, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0) {
                    struct pollfd p = {.fd = f->fd, .events = POLLOUT};
                    if (poll(&p, 1, 2000) <= 0 || (p.revents & (POLLERR | POLLHUP)))
                        break;
                    continue;
                }
                sent += (size_t)w;
            }
            break;
        }
        case FS_IGNORE_FOREVER: {
            char c;
            while (fs_next(f, pkt, sizeof pkt, &c) != 0) {
            }
            goto out;
        }
        case FS_E_FOREVER: {
            char c;
            int k;
            while ((k = fs_next(f, pkt, sizeof pkt, &c)) != 0)
                if (k == 1) {
                    fs_send_raw(f, "+", 1);
                    fs_send_packet(f, "E14");
                }
            goto out;
        }
        case FS_AUTO:
            fs_auto(f, s->b, 0);
            goto out;
        case FS_END:
            break;
        }
    }
    /* Script done: log whatever else the client sends until it hangs up. */
    while (fs_recv_packet(f, pkt, sizeof pkt)) {
        fs_log(f, pkt, strlen(pkt));
        if (strcmp(pkt, "D") == 0 || strcmp(pkt, "k") == 0)
            fs_send_packet(f, "OK");
    }
out:
    close(f->fd);
    f->fd = -1;
    return NULL;
}

/* Start the fake; returns the client's end of the socketpair (or -1). */
static int fakestub_start(fakestub *f, const fs_step *script)
{
    memset(f, 0, sizeof *f);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    f->fd = sv[1];
    f->script = script;
    if (pthread_create(&f->th, NULL, fs_thread, f) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return sv[0];
}

/* Wait for the script to end; returns the number of failures (why says). */
static int fakestub_join(fakestub *f)
{
    pthread_join(f->th, NULL);
    if (f->failures)
        fprintf(stderr, "fakestub: %s\nfakestub log:\n%s\n", f->why, f->log);
    return f->failures;
}

#endif
