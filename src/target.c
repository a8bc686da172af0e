/* target: one x86-64 CPU behind QEMU's gdbstub (see include/faultline/target.h).
 * Every quirk of the stub lives in this file; rsp.c only moves packets. */
#include "faultline/target.h"
#include "faultline/util.h"
#include "faultline/rsp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory cache: 256-byte aligned lines never straddle a page, so a line is
 * either wholly readable or not; 64 of them cover a few stack frames and
 * the structures a fault handler touches. */
#define MEMC_LINE 256
#define MEMC_LINES 64
/* Reads longer than this bypass the cache and go in the stub's largest chunks. */
#define MEMC_DIRECT (4 * MEMC_LINE)
/* QEMU answers at most 2048 bytes per `m`. */
#define MAX_M_CHUNK 2048
/* Largest target description accepted (QEMU's is ~10 KiB). */
#define MAX_TDESC (1024 * 1024)

typedef struct memline {
    uint64_t addr;
    uint64_t gen;   /* valid only while equal to tgt.gen */
    uint8_t data[MEMC_LINE];
} memline;

typedef struct bp {
    enum tgt_bp_type type;
    uint64_t addr;
    int len;
} bp;

struct tgt {
    rsp *r;
    int op_timeout;            /* bound for every exchange while stopped */
    bool connecting;           /* connect_deadline bounds every exchange */
    int64_t connect_deadline;  /* one budget for the whole connect sequence */
    int connect_budget_ms;
    size_t packet_size;
    bool running;
    bool multiprocess;
    bool vcont_s, vcont_c;
    tgt_regmap map;
    const tgt_reg *pc;
    uint8_t *g;
    uint8_t *g_unavail;        /* per byte of g: 1 if the stub sent "xx" */
    bool g_valid;
    uint64_t gen;              /* stop generation: bumped on every resume */
    memline *mem;
    size_t mem_next;           /* round-robin victim */
    bp *bps;
    size_t nbps, capbps;
    size_t ncode_bps;          /* Z0/Z1 entries: only these need the step-over */
    size_t hw_slots;           /* debug-register slots the stub has (learnt from a
                                  refusal); 0: no limit seen */
    long process, thread;      /* from the last stop reply, -1 unknown */
    enum tgt_step_over step_over;
    bool step_over_verified;   /* TGT_STEP_OVER_KEEP seen to move the pc once */
    char step_pkt[64];
    size_t step_len;
    char *pkt;                 /* scratch for building packets */
    size_t pkt_cap;
};

/* ---- small helpers ---------------------------------------------------- */

static size_t hw_in_use(const tgt *t);

static const char hexdig[] = "0123456789abcdef";

static bool is_error_reply(const char *p, size_t len)
{
    return len == 3 && p[0] == 'E' && fl_hexval(p[1]) >= 0 && fl_hexval(p[2]) >= 0;
}

static void shown(const char *p, size_t len, char *out, size_t cap)
{
    rsp_escape_for_msg(p, len, 48, out, cap);
}

static void invalidate(tgt *t)
{
    t->g_valid = false;
    t->gen++;
}

static int not_running(const tgt *t, const char *what, fl_error *err)
{
    if (t->running)
        return fl_fail(err, FL_EUSAGE, "cannot %s while the guest runs: interrupt or wait for a stop first", what);
    return 0;
}

/* One exchange while stopped. During connect the whole sequence shares one
 * budget, so a stub that answers slowly (a byte at a time, tiny qXfer
 * chunks) cannot stretch it packet by packet. */
static int xchg(tgt *t, const char *p, size_t len, const char **reply, size_t *rlen, fl_error *err)
{
    if (!t->connecting)
        return rsp_exchange(t->r, p, len, reply, rlen, t->op_timeout, err);
    int left = fl_remaining_ms(t->connect_deadline);
    if (left == 0)
        return fl_fail(err, FL_ETIMEOUT, "the connection sequence did not complete within %d ms (the stub answers too slowly)",
                       t->connect_budget_ms);
    if (rsp_exchange(t->r, p, len, reply, rlen, left, err) == 0)
        return 0;
    if (err && err->code == FL_ETIMEOUT)
        fl_fail(err, FL_ETIMEOUT, "the connection sequence did not complete within %d ms (the stub answers too slowly)",
                t->connect_budget_ms);
    return -1;
}

/* ---- stop replies ----------------------------------------------------- */

static int bad_stop(const char *p, size_t len, const char *why, fl_error *err)
{
    char s[160];
    shown(p, len, s, sizeof s);
    return fl_fail(err, FL_EPROTO, "stop reply \"%s\" does not parse: %s", s, why);
}

/* "p1.2", "p1.-1", "2", "-1" */
static bool parse_thread(const char *v, size_t n, long *process, long *thread)
{
    uint64_t x;
    size_t used;
    *process = -1;
    if (n > 0 && v[0] == 'p') {
        const char *dot = memchr(v, '.', n);
        size_t plen = dot ? (size_t)(dot - v) - 1 : n - 1;
        used = fl_parse_hex(v + 1, plen, &x);
        if (used == 0 || used != plen || x > (uint64_t)INT32_MAX)
            return false;
        *process = (long)x;
        if (!dot) {
            *thread = -1;
            return true;
        }
        n -= (size_t)(dot - v) + 1;
        v = dot + 1;
    }
    if (n == 2 && v[0] == '-' && v[1] == '1') {
        *thread = -1;
        return true;
    }
    used = fl_parse_hex(v, n, &x);
    if (used == 0 || used != n || x > (uint64_t)INT32_MAX)
        return false;
    *thread = (long)x;
    return true;
}

int tgt_parse_stop(const char *p, size_t len, tgt_stop *out, fl_error *err)
{
    memset(out, 0, sizeof *out);
    out->thread = -1;
    out->process = -1;
    if (len == 0)
        return bad_stop(p, len, "empty", err);
    uint64_t v;
    switch (p[0]) {
    case 'S':
    case 'T':
        if (len < 3 || fl_hexval(p[1]) < 0 || fl_hexval(p[2]) < 0)
            return bad_stop(p, len, "no two-digit signal number", err);
        out->kind = TGT_STOP_SIGNAL;
        out->code = fl_hexval(p[1]) << 4 | fl_hexval(p[2]);
        if (p[0] == 'S') {
            if (len != 3)
                return bad_stop(p, len, "S takes only a signal number", err);
            return 0;
        }
        for (size_t i = 3; i < len;) {
            const char *semi = memchr(p + i, ';', len - i);
            size_t end = semi ? (size_t)(semi - p) : len;
            const char *colon = memchr(p + i, ':', end - i);
            if (!colon)
                return bad_stop(p, len, "a field has no ':'", err);
            size_t klen = (size_t)(colon - (p + i));
            const char *val = colon + 1;
            size_t vlen = end - (size_t)(val - p);
            if (klen == 6 && memcmp(p + i, "thread", 6) == 0) {
                if (!parse_thread(val, vlen, &out->process, &out->thread))
                    return bad_stop(p, len, "bad thread id", err);
            } else if ((klen == 5 && memcmp(p + i, "watch", 5) == 0) ||
                       (klen == 6 && memcmp(p + i, "rwatch", 6) == 0) ||
                       (klen == 6 && memcmp(p + i, "awatch", 6) == 0)) {
                if (vlen == 0 || fl_parse_hex(val, vlen, &v) != vlen)
                    return bad_stop(p, len, "bad watchpoint address", err);
                out->has_watch = true;
                out->watch_addr = v;
            }
            /* Other fields (registers, core:, swbreak:) are not needed:
             * registers come from one `g` per stop. */
            i = end + 1;
        }
        return 0;
    case 'W':
    case 'X': {
        size_t semi = len;
        const char *s = memchr(p, ';', len);
        if (s)
            semi = (size_t)(s - p);
        if (semi < 2 || fl_parse_hex(p + 1, semi - 1, &v) != semi - 1 || v > 0xff)
            return bad_stop(p, len, "bad exit status", err);
        out->kind = p[0] == 'W' ? TGT_STOP_EXITED : TGT_STOP_KILLED;
        out->code = (int)v;
        if (s) {
            if (len - semi < 9 || memcmp(p + semi, ";process:", 9) != 0)
                return bad_stop(p, len, "unknown field after the status", err);
            size_t vl = len - semi - 9;
            if (vl == 0 || fl_parse_hex(p + semi + 9, vl, &v) != vl || v > (uint64_t)INT32_MAX)
                return bad_stop(p, len, "bad process id", err);
            out->process = (long)v;
        }
        return 0;
    }
    default:
        return bad_stop(p, len, "not an S, T, W or X packet", err);
    }
}

/* Remember the stopped thread so a step resumes only that CPU. */
static void note_stop(tgt *t, const tgt_stop *s)
{
    t->running = false;
    if (s->kind != TGT_STOP_SIGNAL)
        return;
    if (s->thread > 0) {
        t->thread = s->thread;
        t->process = s->process;
    }
    int n;
    if (!t->vcont_s)
        n = snprintf(t->step_pkt, sizeof t->step_pkt, "s");
    else if (t->thread > 0 && t->multiprocess && t->process > 0)
        n = snprintf(t->step_pkt, sizeof t->step_pkt, "vCont;s:p%lx.%lx", t->process, t->thread);
    else if (t->thread > 0)
        n = snprintf(t->step_pkt, sizeof t->step_pkt, "vCont;s:%lx", t->thread);
    else
        n = snprintf(t->step_pkt, sizeof t->step_pkt, "vCont;s");
    t->step_len = (size_t)n;
}

/* Wait for the stop reply of a resume, skipping console output (O) packets.
 * One deadline: every packet, O included, counts against it; none resets it. */
static int wait_stop(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    int64_t deadline = fl_deadline_ms(timeout_ms);
    for (;;) {
        const char *p;
        size_t len;
        if (rsp_recv(t->r, &p, &len, fl_remaining_ms(deadline), err) < 0)
            return -1;
        if (len >= 3 && p[0] == 'O' && len % 2 == 1 && fl_hexval(p[1]) >= 0)
            continue;
        if (is_error_reply(p, len)) {
            t->running = false;  /* a refused resume leaves the guest stopped */
            return fl_fail(err, FL_EPROTO, "the stub refused to resume the guest: %.3s", p);
        }
        if (tgt_parse_stop(p, len, stop, err) < 0)
            return -1;
        note_stop(t, stop);
        return 0;
    }
}

/* After a resume timed out: stop the guest so the caller gets it back stopped. */
static int timeout_interrupt(tgt *t, int timeout_ms, const char *what, fl_error *err)
{
    fl_error e2;
    tgt_stop s;
    if (rsp_interrupt(t->r, &e2) < 0 || wait_stop(t, &s, t->op_timeout, &e2) < 0)
        return fl_fail(err, FL_ETIMEOUT, "%s did not stop within %d ms, and interrupting it failed too: %s",
                       what, timeout_ms, e2.msg);
    return fl_fail(err, FL_ETIMEOUT, "%s did not stop within %d ms; the guest was interrupted", what, timeout_ms);
}

/* ---- connect ---------------------------------------------------------- */

typedef struct fetch_ctx {
    tgt *t;
} fetch_ctx;

static int fetch_annex(void *vctx, const char *annex, char **xml, size_t *len, fl_error *err)
{
    tgt *t = ((fetch_ctx *)vctx)->t;
    *xml = NULL;
    *len = 0;
    for (const char *c = annex; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-' || *c == '_') || c - annex > 100)
            return fl_fail(err, FL_EPROTO, "target description includes an annex with an unsafe name");
    size_t chunk = t->packet_size > 64 ? t->packet_size - 32 : 32;
    char *buf = NULL;
    size_t have = 0, cap = 0;
    for (;;) {
        char q[192];
        int n = snprintf(q, sizeof q, "qXfer:features:read:%s:%zx,%zx", annex, have, chunk);
        const char *p;
        size_t rl;
        if (xchg(t, q, (size_t)n, &p, &rl, err) < 0) {
            free(buf);
            return fl_error_prefix(err, "reading target description %s", annex);
        }
        if (rl == 0 || is_error_reply(p, rl) || (p[0] != 'm' && p[0] != 'l')) {
            char s[96];
            shown(p, rl, s, sizeof s);
            free(buf);
            return fl_fail(err, FL_EPROTO, "the stub did not deliver target description %s (answer \"%s\")", annex, s);
        }
        size_t dl = rl - 1;
        if (have + dl > MAX_TDESC || (p[0] == 'm' && dl == 0)) {
            free(buf);
            return fl_fail(err, FL_EPROTO, "target description %s is empty-chunked or larger than %d bytes", annex, MAX_TDESC);
        }
        if (have + dl + 1 > cap) {
            size_t ncap = (have + dl + 1) * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return fl_fail(err, FL_EIO, "out of memory reading the target description");
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + have, p + 1, dl);
        have += dl;
        buf[have] = '\0';
        if (p[0] == 'l')
            break;
    }
    *xml = buf;
    *len = have;
    return 0;
}

static int parse_supported(tgt *t, const char *p, size_t len, bool *noack)
{
    *noack = false;
    bool xfer = false;
    size_t i = 0;
    while (i < len) {
        const char *semi = memchr(p + i, ';', len - i);
        size_t end = semi ? (size_t)(semi - p) : len;
        const char *f = p + i;
        size_t fl = end - i;
        uint64_t v;
        if (fl > 11 && memcmp(f, "PacketSize=", 11) == 0 && fl_parse_hex(f + 11, fl - 11, &v) == fl - 11 &&
            v >= 64)
            t->packet_size = v > RSP_MAX_PAYLOAD ? RSP_MAX_PAYLOAD : (size_t)v;
        else if (fl == 16 && memcmp(f, "QStartNoAckMode+", 16) == 0)
            *noack = true;
        else if (fl == 20 && memcmp(f, "qXfer:features:read+", 20) == 0)
            xfer = true;
        else if (fl == 13 && memcmp(f, "multiprocess+", 13) == 0)
            t->multiprocess = true;
        i = end + 1;
    }
    return xfer ? 0 : -1;
}

static int connect_seq(tgt *t, fl_error *err)
{
    const char *p;
    size_t len;
    static const char qs[] = "qSupported:multiprocess+;vContSupported+;xmlRegisters=i386";
    if (xchg(t, qs, sizeof qs - 1, &p, &len, err) < 0)
        return fl_error_prefix(err, "qSupported");
    /* A guest that ran when we connected is stopped by QEMU, which says so
     * with a stop reply ("T02thread:01;") sent before it reads our first
     * packet: that is not qSupported's answer, which never starts so. */
    for (int i = 0; i < 4 && len > 0 && (p[0] == 'T' || p[0] == 'S'); i++)
        if (rsp_recv(t->r, &p, &len, fl_remaining_ms(t->connect_deadline), err) < 0)
            return fl_error_prefix(err, "qSupported, after the stub's stop notice");
    t->packet_size = 400;  /* the protocol's default when none is given */
    bool noack;
    if (parse_supported(t, p, len, &noack) < 0) {
        char s[160];
        shown(p, len, s, sizeof s);
        return fl_fail(err, FL_EPROTO, "the stub offers no qXfer:features:read, so registers cannot be named (qSupported: \"%s\")", s);
    }
    if (noack) {
        if (xchg(t, "QStartNoAckMode", 15, &p, &len, err) < 0)
            return fl_error_prefix(err, "QStartNoAckMode");
        if (len == 2 && memcmp(p, "OK", 2) == 0)
            rsp_set_noack(t->r, true);
    }
    /* Read the description before any p/P: QEMU answers them empty until then. */
    fetch_ctx fc = {t};
    if (tgt_tdesc_parse(fetch_annex, &fc, &t->map, err) < 0)
        return -1;
    t->pc = tgt_regmap_find(&t->map, "rip");
    if (!t->pc)
        t->pc = tgt_regmap_find(&t->map, "pc");
    if (!t->pc || t->pc->size > 8)
        return fl_fail(err, FL_EPROTO, "the target description (architecture \"%s\") has no rip or pc register", t->map.arch);
    /* A 64-bit target described with a narrower rip would cut every pc. */
    if (strcmp(t->map.arch, "i386:x86-64") == 0 && t->pc->size != 8)
        return fl_fail(err, FL_EPROTO, "the target description gives %s %zu bits, but x86-64 needs 64", t->pc->name,
                       t->pc->size * 8);
    t->pkt_cap = t->packet_size + 64;
    t->g = malloc(t->map.g_size);
    t->g_unavail = malloc(t->map.g_size);
    t->mem = calloc(MEMC_LINES, sizeof *t->mem);
    t->pkt = malloc(t->pkt_cap);
    if (!t->g || !t->g_unavail || !t->mem || !t->pkt)
        return fl_fail(err, FL_EIO, "out of memory for the register and memory caches");
    t->gen = 1;  /* lines start at gen 0: invalid */

    if (xchg(t, "vCont?", 6, &p, &len, err) < 0)
        return fl_error_prefix(err, "vCont?");
    if (len >= 5 && memcmp(p, "vCont", 5) == 0) {
        for (size_t i = 5; i + 1 < len; i++) {
            if (p[i] == ';' && p[i + 1] == 's' && (i + 2 == len || p[i + 2] == ';'))
                t->vcont_s = true;
            if (p[i] == ';' && p[i + 1] == 'c' && (i + 2 == len || p[i + 2] == ';'))
                t->vcont_c = true;
        }
    }
    /* `?` removes every breakpoint in QEMU: it is sent here and never again. */
    tgt_stop s;
    if (xchg(t, "?", 1, &p, &len, err) < 0)
        return fl_error_prefix(err, "initial stop query");
    if (tgt_parse_stop(p, len, &s, err) < 0)
        return -1;
    note_stop(t, &s);
    if (s.kind != TGT_STOP_SIGNAL)
        return fl_fail(err, FL_ECLOSED, "the target has already exited (stop reply %c%02x)",
                       s.kind == TGT_STOP_EXITED ? 'W' : 'X', s.code);
    return 0;
}

static int connect_common(tgt **out, rsp *r, int timeout_ms, fl_error *err)
{
    tgt *t = calloc(1, sizeof *t);
    if (!t) {
        rsp_close(r);
        return fl_fail(err, FL_EIO, "out of memory for the target");
    }
    t->r = r;
    t->op_timeout = timeout_ms;
    t->process = t->thread = -1;
    t->connecting = true;
    t->connect_budget_ms = timeout_ms;
    t->connect_deadline = fl_deadline_ms(timeout_ms);
    if (connect_seq(t, err) < 0) {
        tgt *tmp = t;
        tmp->running = true;  /* no detach on this half-open link */
        tgt_close(tmp);
        return -1;
    }
    t->connecting = false;
    *out = t;
    return 0;
}

int tgt_connect_cancellable(tgt **out, const char *address, int timeout_ms, tgt_cancel_fn cancelled, void *ctx,
                            fl_error *err)
{
    *out = NULL;
    rsp *r;
    int64_t deadline = fl_deadline_ms(timeout_ms);
    /* rsp_open's sentences name the address already. */
    if (rsp_open_cancellable(&r, address, timeout_ms, cancelled, ctx, err) < 0)
        return -1;
    int left = fl_remaining_ms(deadline);
    if (connect_common(out, r, left == 0 ? 1 : left, err) < 0)
        return fl_error_prefix(err, "connecting to %s", address);
    (*out)->op_timeout = timeout_ms;
    return 0;
}

int tgt_connect(tgt **out, const char *address, int timeout_ms, fl_error *err)
{
    return tgt_connect_cancellable(out, address, timeout_ms, NULL, NULL, err);
}

int tgt_connect_fd_cancellable(tgt **out, int fd, int timeout_ms, tgt_cancel_fn cancelled, void *ctx, fl_error *err)
{
    *out = NULL;
    rsp *r;
    if (rsp_open_fd(&r, fd, err) < 0)
        return -1;
    rsp_set_cancel(r, cancelled, ctx);
    return connect_common(out, r, timeout_ms, err);
}

int tgt_connect_fd(tgt **out, int fd, int timeout_ms, fl_error *err)
{
    return tgt_connect_fd_cancellable(out, fd, timeout_ms, NULL, NULL, err);
}

void tgt_set_cancel(tgt *t, tgt_cancel_fn cancelled, void *ctx)
{
    rsp_set_cancel(t->r, cancelled, ctx);
}

static void tgt_free(tgt *t)
{
    rsp_close(t->r);
    tgt_regmap_free(&t->map);
    free(t->g);
    free(t->g_unavail);
    free(t->mem);
    free(t->pkt);
    free(t->bps);
    free(t);
}

void tgt_close(tgt *t)
{
    if (!t)
        return;
    if (!t->running) {
        /* With multiprocess extensions the detach must name the process:
         * QEMU answers a bare "D" with E22 and leaves the guest stopped. */
        char d[32];
        int n = t->multiprocess ? snprintf(d, sizeof d, "D;%lx", t->process > 0 ? t->process : 1L)
                                : snprintf(d, sizeof d, "D");
        const char *p;
        size_t len;
        xchg(t, d, (size_t)n, &p, &len, NULL);  /* best effort: QEMU resumes the guest */
    }
    tgt_free(t);
}

void tgt_release(tgt *t)
{
    /* QEMU 7.2 does nothing when its gdbstub client goes away: the guest
     * stays exactly as it is, for the next client (GDB, in the cross-check). */
    tgt_free(t);
}

void tgt_kill(tgt *t)
{
    if (!t)
        return;
    if (t->running) {
        tgt_stop s;
        if (rsp_interrupt(t->r, NULL) == 0)
            wait_stop(t, &s, t->op_timeout, NULL);
    }
    rsp_send_noack(t->r, "k", 1, NULL);  /* QEMU exits without acking */
    tgt_free(t);
}

const tgt_regmap *tgt_regs(const tgt *t) { return &t->map; }
size_t tgt_packet_size(const tgt *t) { return t->packet_size; }
bool tgt_running(const tgt *t) { return t->running; }
size_t tgt_bp_slots(const tgt *t) { return t->hw_slots; }
size_t tgt_bp_hw_in_use(const tgt *t) { return hw_in_use(t); }
int tgt_fd(const tgt *t) { return rsp_fd(t->r); }
void tgt_invalidate(tgt *t) { invalidate(t); }

/* ---- registers -------------------------------------------------------- */

static int ensure_g(tgt *t, fl_error *err)
{
    if (t->g_valid)
        return 0;
    if (not_running(t, "read registers", err) < 0)
        return -1;
    const char *p;
    size_t len;
    if (xchg(t, "g", 1, &p, &len, err) < 0)
        return fl_error_prefix(err, "reading registers");
    if (is_error_reply(p, len) || len < 2 * t->map.g_size) {
        char s[96];
        shown(p, len, s, sizeof s);
        return fl_fail(err, FL_EPROTO, "register read (g) answered %zu hex digits, the target description needs %zu: \"%s\"",
                       len, 2 * t->map.g_size, s);
    }
    for (size_t i = 0; i < t->map.g_size; i++) {
        int hi = fl_hexval(p[2 * i]), lo = fl_hexval(p[2 * i + 1]);
        t->g_unavail[i] = 0;
        if (hi < 0 || lo < 0) {
            if (p[2 * i] == 'x' && p[2 * i + 1] == 'x') {  /* unavailable: no value, not 0 */
                t->g[i] = 0;
                t->g_unavail[i] = 1;
                continue;
            }
            return fl_fail(err, FL_EPROTO, "register read (g) has a non-hex digit at byte %zu", i);
        }
        t->g[i] = (uint8_t)(hi << 4 | lo);
    }
    t->g_valid = true;
    return 0;
}

int tgt_reg_read_r(tgt *t, const tgt_reg *reg, uint64_t *value, fl_error *err)
{
    if (reg->size > 8)
        return fl_fail(err, FL_EUSAGE, "register %s is %zu bytes wide; only registers up to 8 bytes can be read as a number",
                       reg->name, reg->size);
    if (ensure_g(t, err) < 0)
        return -1;
    for (size_t i = 0; i < reg->size; i++)
        if (t->g_unavail[reg->offset + i])
            return fl_fail(err, FL_EIO, "register %s is unavailable at this stop (the stub sent \"xx\" for its value)",
                           reg->name);
    uint64_t v = 0;
    for (size_t i = reg->size; i-- > 0;)
        v = v << 8 | t->g[reg->offset + i];
    *value = v;
    return 0;
}

static const tgt_reg *find_reg(tgt *t, const char *name, fl_error *err)
{
    const tgt_reg *r = tgt_regmap_find(&t->map, name);
    if (!r)
        fl_fail(err, FL_ENOTFOUND, "the target description has no register named \"%s\"", name);
    return r;
}

int tgt_reg_read(tgt *t, const char *name, uint64_t *value, fl_error *err)
{
    const tgt_reg *r = find_reg(t, name, err);
    return r ? tgt_reg_read_r(t, r, value, err) : -1;
}

int tgt_regs_raw(tgt *t, const uint8_t **buf, size_t *len, fl_error *err)
{
    if (ensure_g(t, err) < 0)
        return -1;
    *buf = t->g;
    *len = t->map.g_size;
    return 0;
}

int tgt_reg_write(tgt *t, const char *name, uint64_t value, fl_error *err)
{
    const tgt_reg *r = find_reg(t, name, err);
    if (!r)
        return -1;
    if (r->size > 8)
        return fl_fail(err, FL_EUSAGE, "register %s is %zu bytes wide; only registers up to 8 bytes can be written",
                       r->name, r->size);
    if (not_running(t, "write registers", err) < 0)
        return -1;
    char q[64];
    int n = snprintf(q, sizeof q, "P%x=", r->regnum);
    for (size_t i = 0; i < r->size; i++) {
        uint8_t b = (uint8_t)(value >> (8 * i));
        q[n++] = hexdig[b >> 4];
        q[n++] = hexdig[b & 0xf];
    }
    const char *p;
    size_t len;
    if (xchg(t, q, (size_t)n, &p, &len, err) < 0)
        return fl_error_prefix(err, "writing register %s", name);
    if (len != 2 || memcmp(p, "OK", 2) != 0) {
        char s[64];
        shown(p, len, s, sizeof s);
        return fl_fail(err, FL_EPROTO, "the stub refused to write register %s (answer \"%s\")", name, s);
    }
    if (t->g_valid)
        for (size_t i = 0; i < r->size; i++) {
            t->g[r->offset + i] = (uint8_t)(value >> (8 * i));
            t->g_unavail[r->offset + i] = 0;
        }
    return 0;
}

/* ---- memory ----------------------------------------------------------- */

/* One `m`; *got may be less than len if the stub returns a short read. */
static int read_chunk(tgt *t, uint64_t addr, uint8_t *buf, size_t len, size_t *got, fl_error *err)
{
    char q[48];
    int n = snprintf(q, sizeof q, "m%" PRIx64 ",%zx", addr, len);
    const char *p;
    size_t rl;
    if (xchg(t, q, (size_t)n, &p, &rl, err) < 0)
        return fl_error_prefix(err, "reading memory at 0x%" PRIx64, addr);
    if (is_error_reply(p, rl) || rl == 0)
        return fl_fail(err, FL_EIO, "cannot read guest memory at 0x%" PRIx64 " (stub answered \"%.3s\": not mapped?)", addr, p);
    if (rl % 2 != 0 || rl / 2 > len)
        return fl_fail(err, FL_EPROTO, "memory read at 0x%" PRIx64 " answered %zu hex digits for %zu bytes", addr, rl, len);
    for (size_t i = 0; i < rl / 2; i++) {
        int hi = fl_hexval(p[2 * i]), lo = fl_hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fl_fail(err, FL_EPROTO, "memory read at 0x%" PRIx64 " has a non-hex digit", addr);
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    *got = rl / 2;
    return 0;
}

static size_t m_chunk(const tgt *t)
{
    size_t c = t->packet_size / 2;
    return c > MAX_M_CHUNK ? MAX_M_CHUNK : c;
}

static int read_direct(tgt *t, uint64_t addr, uint8_t *buf, size_t len, fl_error *err)
{
    size_t chunk = m_chunk(t);
    while (len > 0) {
        size_t want = len < chunk ? len : chunk, got;
        if (read_chunk(t, addr, buf, want, &got, err) < 0)
            return -1;
        addr += got;
        buf += got;
        len -= got;
    }
    return 0;
}

static memline *line_get(tgt *t, uint64_t base, fl_error *err)
{
    for (size_t i = 0; i < MEMC_LINES; i++)
        if (t->mem[i].gen == t->gen && t->mem[i].addr == base)
            return &t->mem[i];
    memline *l = &t->mem[t->mem_next];
    t->mem_next = (t->mem_next + 1) % MEMC_LINES;
    l->gen = 0;
    if (read_direct(t, base, l->data, MEMC_LINE, err) < 0)
        return NULL;
    l->addr = base;
    l->gen = t->gen;
    return l;
}

int tgt_mem_read(tgt *t, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    if (len == 0)
        return 0;
    if (addr + (len - 1) < addr)
        return fl_fail(err, FL_EUSAGE, "memory read of %zu bytes at 0x%" PRIx64 " wraps around the address space", len, addr);
    if (not_running(t, "read memory", err) < 0)
        return -1;
    if (len > MEMC_DIRECT)
        return read_direct(t, addr, buf, len, err);
    uint8_t *out = buf;
    while (len > 0) {
        uint64_t base = addr & ~(uint64_t)(MEMC_LINE - 1);
        size_t off = (size_t)(addr - base);
        size_t n = MEMC_LINE - off < len ? MEMC_LINE - off : len;
        memline *l = line_get(t, base, err);
        if (!l) {
            /* The line may be unmapped while the bytes asked for are not
             * (cannot happen within one page, but stay exact). */
            fl_error e2;
            if (read_direct(t, addr, out, n, &e2) < 0) {
                if (err)
                    *err = e2;
                return -1;
            }
        } else {
            memcpy(out, l->data + off, n);
        }
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

int tgt_read_u64(tgt *t, uint64_t addr, uint64_t *value, fl_error *err)
{
    uint8_t b[8];
    if (tgt_mem_read(t, addr, b, 8, err) < 0)
        return -1;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    *value = v;
    return 0;
}

int tgt_mem_write(tgt *t, uint64_t addr, const void *buf, size_t len, fl_error *err)
{
    if (len == 0)
        return 0;
    if (addr + (len - 1) < addr)
        return fl_fail(err, FL_EUSAGE, "memory write of %zu bytes at 0x%" PRIx64 " wraps around the address space", len, addr);
    if (not_running(t, "write memory", err) < 0)
        return -1;
    const uint8_t *in = buf;
    size_t chunk = (t->packet_size - 48) / 2;
    uint64_t a = addr;
    size_t left = len;
    while (left > 0) {
        size_t n = left < chunk ? left : chunk;
        int w = snprintf(t->pkt, t->pkt_cap, "M%" PRIx64 ",%zx:", a, n);
        for (size_t i = 0; i < n; i++) {
            t->pkt[w++] = hexdig[in[i] >> 4];
            t->pkt[w++] = hexdig[in[i] & 0xf];
        }
        const char *p;
        size_t rl;
        if (xchg(t, t->pkt, (size_t)w, &p, &rl, err) < 0)
            return fl_error_prefix(err, "writing memory at 0x%" PRIx64, a);
        if (rl != 2 || memcmp(p, "OK", 2) != 0)
            return fl_fail(err, FL_EIO, "cannot write guest memory at 0x%" PRIx64 " (stub answered \"%.3s\")", a, p);
        a += n;
        in += n;
        left -= n;
    }
    /* Drop cached lines the write touched. */
    for (size_t i = 0; i < MEMC_LINES; i++) {
        memline *l = &t->mem[i];
        if (l->gen == t->gen && l->addr <= addr + (len - 1) && addr <= l->addr + (MEMC_LINE - 1))
            l->gen = 0;
    }
    return 0;
}

/* ---- breakpoints ------------------------------------------------------ */

static bool is_code_bp(enum tgt_bp_type type)
{
    return type == TGT_BP_SW || type == TGT_BP_HW;
}

/* Z1/Z2/Z3/Z4 share the CPU's debug registers (under KVM; TCG has no limit). */
static bool is_hw(enum tgt_bp_type type)
{
    return type != TGT_BP_SW;
}

static size_t hw_in_use(const tgt *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nbps; i++)
        n += is_hw(t->bps[i].type);
    return n;
}

/* One Z/z on the wire, without touching the remembered list. */
static int send_z(tgt *t, char op, enum tgt_bp_type type, uint64_t addr, int len, fl_error *err)
{
    char q[64];
    int n = snprintf(q, sizeof q, "%c%d,%" PRIx64 ",%x", op, (int)type, addr, (unsigned)len);
    const char *p;
    size_t rl;
    const char *verb = op == 'Z' ? "insert" : "remove";
    if (xchg(t, q, (size_t)n, &p, &rl, err) < 0)
        return fl_error_prefix(err, "%s breakpoint Z%d at 0x%" PRIx64, verb, (int)type, addr);
    if (rl == 2 && memcmp(p, "OK", 2) == 0)
        return 0;
    if (rl == 0)
        return fl_fail(err, FL_EPROTO, "the stub does not support breakpoint type Z%d (%s at 0x%" PRIx64 ")",
                       (int)type, verb, addr);
    if (op == 'Z' && type != TGT_BP_SW && is_error_reply(p, rl))
        return fl_fail(err, FL_ENOSLOT, "the stub refused hardware breakpoint/watchpoint Z%d at 0x%" PRIx64
                       " (%.3s) with %zu in use: no free debug register (KVM has four)", (int)type, addr, p,
                       hw_in_use(t));
    char s[64];
    shown(p, rl, s, sizeof s);
    return fl_fail(err, FL_EIO, "the stub refused to %s breakpoint Z%d at 0x%" PRIx64 " (answer \"%s\")",
                   verb, (int)type, addr, s);
}

static long bp_index(const tgt *t, enum tgt_bp_type type, uint64_t addr, int len)
{
    for (size_t i = 0; i < t->nbps; i++)
        if (t->bps[i].type == type && t->bps[i].addr == addr && t->bps[i].len == len)
            return (long)i;
    return -1;
}

int tgt_bp_insert(tgt *t, enum tgt_bp_type type, uint64_t addr, int len, fl_error *err)
{
    if ((int)type < 0 || type > TGT_WP_ACCESS || len <= 0)
        return fl_fail(err, FL_EUSAGE, "bad breakpoint type %d or length %d", (int)type, len);
    if (not_running(t, "insert a breakpoint", err) < 0)
        return -1;
    if (bp_index(t, type, addr, len) >= 0)
        return 0;
    if (t->nbps == t->capbps) {
        size_t nc = t->capbps ? t->capbps * 2 : 8;
        bp *nb = realloc(t->bps, nc * sizeof *nb);
        if (!nb)
            return fl_fail(err, FL_EIO, "out of memory for the breakpoint list");
        t->bps = nb;
        t->capbps = nc;
    }
    if (send_z(t, 'Z', type, addr, len, err) < 0) {
        /* Remember the limit so callers can plan (tgt_bp_slots). */
        if (err && err->code == FL_ENOSLOT && hw_in_use(t) > 0)
            t->hw_slots = hw_in_use(t);
        /* A slot limit is KVM's: stepping over a breakpoint in place was
         * never measured there, so remove-step-reinsert. */
        if (err && err->code == FL_ENOSLOT && !t->step_over_verified)
            t->step_over = TGT_STEP_OVER_REMOVE;
        return -1;
    }
    t->bps[t->nbps++] = (bp){type, addr, len};
    if (is_code_bp(type))
        t->ncode_bps++;
    return 0;
}

int tgt_bp_remove(tgt *t, enum tgt_bp_type type, uint64_t addr, int len, fl_error *err)
{
    if (not_running(t, "remove a breakpoint", err) < 0)
        return -1;
    if (send_z(t, 'z', type, addr, len, err) < 0)
        return -1;
    long i = bp_index(t, type, addr, len);
    if (i >= 0) {
        if (is_code_bp(type))
            t->ncode_bps--;
        t->bps[i] = t->bps[--t->nbps];
    }
    return 0;
}

/* ---- execution -------------------------------------------------------- */

static int resume_pkt(tgt *t, const char *p, size_t len, fl_error *err)
{
    invalidate(t);
    if (rsp_send(t->r, p, len, t->op_timeout, err) < 0)
        return -1;
    t->running = true;
    return 0;
}

static int step_raw(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (resume_pkt(t, t->step_pkt, t->step_len, err) < 0)
        return fl_error_prefix(err, "single-step");
    if (wait_stop(t, stop, timeout_ms, err) < 0) {
        if (err && err->code == FL_ETIMEOUT)
            return timeout_interrupt(t, timeout_ms, "a single step", err);
        return fl_error_prefix(err, "single-step");
    }
    return 0;
}

/* One step with the breakpoint at pc left in place. The first time, the pc
 * is read back (one `g`): a stub that re-reported the breakpoint instead of
 * stepping is remembered as one that needs remove-step-reinsert. Returns 0
 * stepped, 1 not stepped (do it the other way), -1 error. */
static int step_in_place(tgt *t, uint64_t pc, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (step_raw(t, stop, timeout_ms, err) < 0)
        return -1;
    if (t->step_over_verified || stop->kind != TGT_STOP_SIGNAL || stop->code != 5 || stop->has_watch)
        return 0;
    uint64_t after;
    if (tgt_reg_read_r(t, t->pc, &after, err) < 0)
        return -1;
    if (after != pc) {
        t->step_over_verified = true;
        return 0;
    }
    t->step_over = TGT_STEP_OVER_REMOVE;
    return 1;
}

void tgt_set_step_over(tgt *t, enum tgt_step_over how)
{
    t->step_over = how;
    t->step_over_verified = false;
}

/* QEMU quirk: resuming from a PC with an inserted breakpoint re-reports the
 * same PC. Only matters with Z0/Z1 inserted; then the PC comes from the `g`
 * of this stop (which the caller usually reads anyway). */
static int step_over_bps(tgt *t, bool *stepped, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    *stepped = false;
    if (t->ncode_bps == 0)
        return 0;
    uint64_t pc;
    if (tgt_reg_read_r(t, t->pc, &pc, err) < 0)
        return -1;
    bool any = false;
    for (size_t i = 0; i < t->nbps; i++)
        if (is_code_bp(t->bps[i].type) && t->bps[i].addr == pc)
            any = true;
    if (!any)
        return 0;
    if (t->step_over == TGT_STEP_OVER_KEEP) {
        int krc = step_in_place(t, pc, stop, timeout_ms, err);
        if (krc <= 0) {
            *stepped = krc == 0;
            return krc;
        }
    }
    for (size_t i = 0; i < t->nbps; i++)
        if (is_code_bp(t->bps[i].type) && t->bps[i].addr == pc &&
            send_z(t, 'z', t->bps[i].type, pc, t->bps[i].len, err) < 0)
            return -1;
    int rc = step_raw(t, stop, timeout_ms, err);
    if (t->running)
        return -1;  /* cannot re-insert; the link is in trouble anyway */
    fl_error e2;
    for (size_t i = 0; i < t->nbps; i++)
        if (is_code_bp(t->bps[i].type) && t->bps[i].addr == pc &&
            send_z(t, 'Z', t->bps[i].type, pc, t->bps[i].len, &e2) < 0) {
            if (rc == 0 && err)
                *err = e2;
            return fl_error_prefix(err, "re-inserting the breakpoint after stepping off it");
        }
    *stepped = true;
    return rc;
}

int tgt_step(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (not_running(t, "step", err) < 0)
        return -1;
    bool stepped;
    if (step_over_bps(t, &stepped, stop, timeout_ms, err) < 0)
        return -1;
    if (stepped)
        return 0;
    return step_raw(t, stop, timeout_ms, err);
}

int tgt_resume(tgt *t, fl_error *err)
{
    if (not_running(t, "continue", err) < 0)
        return -1;
    tgt_stop s;
    bool stepped;
    if (step_over_bps(t, &stepped, &s, t->op_timeout, err) < 0)
        return -1;
    if (stepped && !(s.kind == TGT_STOP_SIGNAL && s.code == 5 && !s.has_watch))
        return fl_fail(err, FL_EUSAGE, "stepping off the breakpoint stopped the guest (signal %d); nothing resumed", s.code);
    const char *c = t->vcont_c ? "vCont;c" : "c";
    if (resume_pkt(t, c, strlen(c), err) < 0)
        return fl_error_prefix(err, "continue");
    return 0;
}

int tgt_poll_stop(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (!t->running)
        return fl_fail(err, FL_EUSAGE, "no stop to wait for: the guest is not running");
    fl_error e;
    if (wait_stop(t, stop, timeout_ms, &e) == 0)
        return 1;
    if (e.code == FL_ETIMEOUT)
        return 0;
    if (err)
        *err = e;
    return -1;
}

int tgt_continue(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (not_running(t, "continue", err) < 0)
        return -1;
    /* A step-off that stopped on something else is that stop. */
    bool stepped;
    if (step_over_bps(t, &stepped, stop, t->op_timeout, err) < 0)
        return -1;
    if (stepped && !(stop->kind == TGT_STOP_SIGNAL && stop->code == 5 && !stop->has_watch))
        return 0;
    const char *c = t->vcont_c ? "vCont;c" : "c";
    if (resume_pkt(t, c, strlen(c), err) < 0)
        return fl_error_prefix(err, "continue");
    if (wait_stop(t, stop, timeout_ms, err) < 0) {
        if (err && err->code == FL_ETIMEOUT)
            return timeout_interrupt(t, timeout_ms, "the guest", err);
        return fl_error_prefix(err, "continue");
    }
    return 0;
}

int tgt_interrupt(tgt *t, tgt_stop *stop, int timeout_ms, fl_error *err)
{
    if (!t->running)
        return fl_fail(err, FL_EUSAGE, "cannot interrupt: the guest is already stopped");
    if (rsp_interrupt(t->r, err) < 0)
        return -1;
    if (wait_stop(t, stop, timeout_ms, err) < 0)
        return fl_error_prefix(err, "waiting for the stop after an interrupt");
    return 0;
}

int tgt_query(tgt *t, const char *payload, char *reply, size_t cap, fl_error *err)
{
    if (not_running(t, "send a query", err) < 0)
        return -1;
    size_t len = strlen(payload);
    /* Packets that change run state or breakpoints would desynchronise this
     * layer's bookkeeping: they have their own calls. */
    static const char *const refused[] = {"?", "c", "C", "s", "S", "vCont", "k", "D", "Z", "z", "R", "r"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (len > 0 && strncmp(payload, refused[i], strlen(refused[i])) == 0 &&
            !(payload[0] == 'v' && strncmp(payload, "vCont?", 6) == 0))
            return fl_fail(err, FL_EUSAGE, "packet \"%.40s\" is not allowed through tgt_query: use the dedicated call", payload);
    const char *p;
    size_t rl;
    if (xchg(t, payload, len, &p, &rl, err) < 0)
        return fl_error_prefix(err, "query %.40s", payload);
    invalidate(t);  /* e.g. Qqemu.PhyMemMode changes what memory means */
    if (rl + 1 > cap)
        return fl_fail(err, FL_EUSAGE, "reply to %.40s is %zu bytes, larger than the %zu-byte buffer", payload, rl, cap);
    memcpy(reply, p, rl);
    reply[rl] = '\0';
    return 0;
}
