/* exclog: QEMU's -d int exception log as page faults. See exclog.h. */
#include "faultline/exclog.h"
#include "faultline/decode.h"
#include "faultline/target.h"
#include "faultline/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- parsing ---- */

/* "HEX" at p (at most 16 digits) ending at a space, ':' or the end. */
static int hex_at(const char *p, uint64_t *v, const char **end)
{
    size_t n = fl_parse_hex(p, strlen(p), v);
    if (n == 0)
        return -1;
    if (end)
        *end = p + n;
    return p[n] == '\0' || p[n] == ' ' || p[n] == ':' || p[n] == '\n' ? 0 : -1;
}

/* "SEL:HEX" (IP= and SP=). */
static int selector_pair(const char *p, uint16_t *sel, uint64_t *v)
{
    uint64_t s;
    const char *end;
    if (hex_at(p, &s, &end) < 0 || *end != ':' || s > 0xffff)
        return -1;
    *sel = (uint16_t)s;
    return hex_at(end + 1, v, NULL);
}

/* The value after " KEY=" in line (KEY must start a token), or NULL. */
static const char *field(const char *line, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen)
        if ((p == line || p[-1] == ' ') && p[klen] == '=')
            return p + klen + 1;
    return NULL;
}

/* A decimal field no larger than max (a CPL is 2 bits, i= is 0 or 1):
 * anything larger is not a record QEMU wrote. */
static int dec_field(const char *line, const char *key, unsigned max, unsigned *v)
{
    const char *p = field(line, key);
    if (!p || *p < '0' || *p > '9')
        return -1;
    errno = 0;
    unsigned long x = strtoul(p, NULL, 10);
    if (errno || x > max)
        return -1;
    *v = (unsigned)x;
    return 0;
}

int exclog_parse_header(const char *line, exclog_record *r)
{
    const char *p = line;
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    char *end;
    unsigned long long seq = strtoull(p, &end, 10);
    if (end[0] != ':' || end[1] != ' ')
        return 0;
    exclog_record x = {.seq = seq};
    const char *v = field(end, "v"), *e = field(end, "e"), *ip = field(end, "IP"), *sp = field(end, "SP");
    uint64_t vec, ec;
    unsigned is_int = 0;
    if (!v || !e || !ip || !sp || hex_at(v, &vec, NULL) < 0 || vec > 0xff || hex_at(e, &ec, NULL) < 0 ||
        ec > 0xffffffffu || selector_pair(ip, &x.cs, &x.rip) < 0 || selector_pair(sp, &x.ss, &x.rsp) < 0 ||
        dec_field(end, "cpl", 3, &x.cpl) < 0)
        return 0;
    (void)dec_field(end, "i", 1, &is_int);
    x.vector = (unsigned)vec;
    x.error_code = (uint32_t)ec;
    x.is_int = is_int != 0;
    const char *cr2 = field(end, "CR2");
    if (x.vector == EXCLOG_VECTOR_PF && (!cr2 || hex_at(cr2, &x.cr2, NULL) < 0))
        return 0; /* a page fault always states CR2 */
    *r = x;
    return 1;
}

void exclog_parse_dump_line(const char *line, exclog_record *r)
{
    const char *p;
    if (strncmp(line, "RIP=", 4) == 0 || strncmp(line, "EIP=", 4) == 0) {
        p = field(line, line[0] == 'R' ? "RFL" : "EFL");
        if (p && hex_at(p, &r->rflags, NULL) == 0)
            r->have_rflags = true;
    } else if (strncmp(line, "CR0=", 4) == 0) {
        p = field(line, "CR3");
        if (p && hex_at(p, &r->cr3, NULL) == 0)
            r->have_cr3 = true;
    }
}

uint64_t exclog_cr3_space(uint64_t cr3)
{
    return cr3 & ~0xfffull & ~(1ull << 63);
}

/* ---- the tailing reader ---- */

#define EXCLOG_BUF (64 * 1024)

struct exclog_reader {
    int fd;
    bool fifo;
    char path[256];
    int (*cancelled)(void *ctx);
    void *cancel_ctx;
    char buf[EXCLOG_BUF];
    size_t len, pos;       /* unread text is buf[pos..len) */
    exclog_record cur;     /* the record whose dump is being read */
    bool in_record;
    exclog_stats stats;
};

int exclog_open(exclog_reader **out, const char *path, int (*cancelled)(void *ctx), void *cancel_ctx,
                fl_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return fl_fail(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                       "cannot open the exception log %s: %s (QEMU writes it with -d int -D FILE)", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !(S_ISREG(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
        close(fd);
        return fl_fail(err, FL_EUSAGE, "the exception log %s is neither a regular file nor a FIFO", path);
    }
    exclog_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return fl_fail(err, FL_EIO, "out of memory opening the exception log %s", path);
    }
    r->fd = fd;
    r->fifo = S_ISFIFO(sb.st_mode);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->cancelled = cancelled;
    r->cancel_ctx = cancel_ctx;
    *out = r;
    return 0;
}

void exclog_close(exclog_reader *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

exclog_stats exclog_reader_stats(const exclog_reader *r)
{
    return r->stats;
}

void exclog_skip_existing(exclog_reader *r)
{
    if (r->fifo)
        return;
    off_t end = lseek(r->fd, 0, SEEK_END);
    if (end > 0)
        r->stats.bytes += (uint64_t)end;
    r->len = r->pos = 0;
    r->in_record = false; /* the next header starts the first record */
}

/* One line of the log. 1: it completed a page-fault record (in *out). */
static int take_line(exclog_reader *r, const char *line, exclog_record *out)
{
    exclog_record h;
    if (exclog_parse_header(line, &h)) {
        if (r->in_record)
            r->stats.incomplete++;
        r->cur = h;
        r->in_record = true;
        return 0;
    }
    if (!r->in_record)
        return 0; /* "check_exception ...", "Servicing hardware INT=...", a dump of no record */
    exclog_parse_dump_line(line, &r->cur);
    if (!r->cur.have_rflags || !r->cur.have_cr3)
        return 0;
    r->in_record = false;
    r->stats.records++;
    if (r->cur.vector != EXCLOG_VECTOR_PF)
        return 0;
    r->stats.page_faults++;
    *out = r->cur;
    return 1;
}

/* Complete lines already read. 1: a page-fault record in *out. */
static int scan_lines(exclog_reader *r, exclog_record *out)
{
    while (r->pos < r->len) {
        char *start = r->buf + r->pos;
        char *nl = memchr(start, '\n', r->len - r->pos);
        if (!nl)
            break;
        *nl = '\0';
        r->pos = (size_t)(nl - r->buf) + 1;
        if (take_line(r, start, out))
            return 1;
    }
    return 0;
}

/* Read what QEMU has written. 1: got bytes, 0: nothing yet, -1: error. */
static int fill(exclog_reader *r, fl_error *err)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == sizeof r->buf)
        r->len = 0; /* a "line" of 64 KiB is no record of QEMU's: drop it */
    ssize_t n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
    if (n > 0) {
        r->len += (size_t)n;
        r->stats.bytes += (uint64_t)n;
        return 1;
    }
    if (n == 0 || errno == EAGAIN || errno == EINTR)
        return 0;
    return fl_fail(err, FL_EIO, "cannot read the exception log %s: %s", r->path, strerror(errno));
}

/* Wait a little for QEMU to write more: at most 50 ms, at most left ms. */
static void wait_more(exclog_reader *r, int left)
{
    int ms = left < 0 || left > 50 ? 50 : left;
    if (r->fifo) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, ms) > 0 && !(p.revents & POLLHUP))
            return;
        ms = ms > 2 ? 2 : ms; /* no writer (yet, or any more): poll does not wait */
    } else if (ms > 1) {
        ms = 1; /* a regular file is always "readable": look again soon */
    }
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

int exclog_next_fault(exclog_reader *r, exclog_record *out, int timeout_ms, fl_error *err)
{
    int64_t deadline = fl_deadline_ms(timeout_ms);
    for (;;) {
        if (scan_lines(r, out))
            return 1;
        int got = fill(r, err);
        if (got < 0)
            return -1;
        if (got > 0)
            continue;
        if (r->cancelled && r->cancelled(r->cancel_ctx))
            return fl_fail(err, FL_EINTR, "interrupted while reading the exception log %s", r->path);
        int left = fl_remaining_ms(deadline);
        if (left == 0)
            return 0;
        wait_more(r, left);
    }
}

/* ---- the entry station, in the capture's shapes ---- */

static void put_value(cap_station *st, const cap_session *s, const char *name, uint64_t value, unsigned size,
                      enum station_decoder d)
{
    if (st->nvalues >= CAP_MAX_VALUES)
        return;
    cap_value *v = &st->values[st->nvalues++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->value = value;
    v->size = size;
    v->decoder = d;
    if (d == STATION_DEC_SELECTOR) {
        decode_selector_format(value, v->decoded, sizeof v->decoded);
    } else if (s && d != STATION_DEC_NONE) {
        const decode_bits *b = cap_decoder_bits(s, d);
        if (b)
            decode_format(b, value, v->decoded, sizeof v->decoded);
    }
    v->proof = d == STATION_DEC_PF_ERROR;
}

void exclog_fault_from_record(const exclog_record *r, const cap_session *s, cap_fault *out)
{
    memset(out, 0, sizeof *out);
    out->nstations = s ? cap_session_station_count(s) : station_default_count();
    if (out->nstations > CAP_MAX_STATIONS)
        out->nstations = CAP_MAX_STATIONS;
    for (size_t i = 0; i < out->nstations; i++)
        out->st[i].row = s ? cap_session_station(s, (int)i) : station_default(i);
    cap_station *st = &out->st[CAP_ST_ENTRY];
    st->enabled = true;
    st->hit = true;
    snprintf(st->location, sizeof st->location, "QEMU exception log record %" PRIu64, r->seq);
    snprintf(st->note, sizeof st->note,
             "read from QEMU's exception log, no stop: current (pid, comm), the handler's cs, eflags and rsp, "
             "and insn.effective_address are not available");
    put_value(st, s, "cr2", r->cr2, 8, STATION_DEC_NONE);
    put_value(st, s, "cr3", r->cr3, 8, STATION_DEC_NONE);
    put_value(st, s, "frame.error_code", r->error_code, 8, STATION_DEC_PF_ERROR);
    put_value(st, s, "frame.rip", r->rip, 8, STATION_DEC_NONE);
    put_value(st, s, "frame.cs", r->cs, 8, STATION_DEC_SELECTOR);
    put_value(st, s, "frame.rflags", r->rflags, 8, STATION_DEC_EFLAGS);
    put_value(st, s, "frame.rsp", r->rsp, 8, STATION_DEC_NONE);
    put_value(st, s, "frame.ss", r->ss, 8, STATION_DEC_SELECTOR);
    out->fault_ip = r->rip;
}

/* ---- an entry-only capture through the log ---- */

typedef struct log_match {
    uint64_t cr3, cr2, rip; /* of the fault the breakpoint caught */
    uint64_t mm;            /* its task's mm (0: not read: no filter by task) */
    bool started;           /* its record was seen: report from there on */
} log_match;

/* The end of the process's mm: one hardware breakpoint at exit_mmap(mm),
 * which stops the guest only when some mm is torn down (rare), not per
 * fault. At our mm's teardown the guest is stopped, so the log already holds
 * every fault of it; after it the kernel may give the same CR3 to a new mm. */
typedef struct mm_watch {
    uint64_t pc;
    const tgt_reg *rip, *arg0; /* exit_mmap's mm: SysV psABI's first argument, rdi, at its entry */
    bool armed;
} mm_watch;

static int watch_arm(kern *k, tgt *t, const log_match *m, mm_watch *w, fl_error *err)
{
    memset(w, 0, sizeof *w);
    w->rip = tgt_regmap_find(tgt_regs(t), "rip");
    w->arg0 = tgt_regmap_find(tgt_regs(t), "rdi");
    if (!m->mm || !w->rip || !w->arg0 || kern_sym_addr(k, "exit_mmap", &w->pc, NULL) < 0)
        return 0; /* no task or no exit_mmap: read on until count, stop() or the timeout */
    if (tgt_bp_insert(t, TGT_BP_HW, w->pc, 1, err) < 0)
        return -1;
    w->armed = true;
    return 0;
}

/* 1: the guest stopped at our mm's teardown (disarmed, left stopped);
 * 0: still running (another mm's teardown was passed over); -1: error. */
static int watch_poll(tgt *t, const log_match *m, mm_watch *w, fl_error *err)
{
    tgt_stop st;
    int got = w->armed ? tgt_poll_stop(t, &st, 0, err) : 0;
    if (got <= 0)
        return got;
    uint64_t pc = 0, mm = 0;
    if (tgt_reg_read_r(t, w->rip, &pc, err) < 0 || tgt_reg_read_r(t, w->arg0, &mm, err) < 0)
        return -1;
    if (pc == w->pc && mm == m->mm) {
        w->armed = false;
        return tgt_bp_remove(t, TGT_BP_HW, w->pc, 1, err) < 0 ? -1 : 1;
    }
    if (pc == w->pc && (tgt_bp_remove(t, TGT_BP_HW, w->pc, 1, err) < 0 || tgt_step(t, &st, 5000, err) < 0 ||
                        tgt_bp_insert(t, TGT_BP_HW, w->pc, 1, err) < 0))
        return -1;
    return tgt_resume(t, err) < 0 ? -1 : 0;
}

static bool addr_wanted(const exclog_capture_options *o, uint64_t cr2)
{
    if (!o->addr)
        return true;
    return o->addr_page ? (cr2 & ~0xfffull) == (o->addr & ~0xfffull) : cr2 == o->addr;
}

static bool record_wanted(log_match *m, const exclog_capture_options *o, const exclog_record *r)
{
    if (exclog_cr3_space(r->cr3) != exclog_cr3_space(m->cr3))
        return false;
    if (!m->started) {
        if (r->cr2 != m->cr2 || r->rip != m->rip)
            return false; /* the process's faults before the one the filter took */
        m->started = true;
        return true;
    }
    return addr_wanted(o, r->cr2);
}

/* One breakpoint stop at the filtered process's first fault: its CR3 (and
 * its task's mm, when the filter read the task). The guest stays stopped. */
static int first_stop(cap_session *s, log_match *m, fl_error *err)
{
    cap_fault *f = malloc(sizeof *f);
    if (!f)
        return fl_fail(err, FL_EIO, "out of memory capturing the first fault");
    int rc = cap_fault_capture(s, f, err);
    const cap_value *cr3 = cap_value_get(f, CAP_ST_ENTRY, "cr3"), *cr2 = cap_value_get(f, CAP_ST_ENTRY, "cr2"),
                    *rip = cap_value_get(f, CAP_ST_ENTRY, "frame.rip");
    if (rc == 0 && (!cr3 || !cr2 || !rip))
        rc = fl_fail(err, FL_EUSAGE, "a capture through the exception log needs the entry station "
                                     "(asm_exc_page_fault) with cr2, cr3 and frame.rip");
    if (rc == 0)
        *m = (log_match){.cr3 = cr3->value, .cr2 = cr2->value, .rip = rip->value, .mm = f->task.mm};
    free(f);
    return rc;
}

typedef struct log_follow {
    exclog_reader *r;
    cap_session *s;
    tgt *t;
    log_match m;
    mm_watch w;
    const exclog_capture_options *o;
    exclog_fault_fn fn;
    void *ctx;
    unsigned *reported;
    bool stopping; /* the process ended (or stop() said so): read what is written, then end */
    bool mm_ended; /* its mm was torn down */
} log_follow;

/* Nothing new in the log: has the process (or the guest) ended? 1: end now. */
static int follow_idle(log_follow *x, int left, fl_error *err)
{
    if (x->stopping)
        return 1;
    int ended = watch_poll(x->t, &x->m, &x->w, err);
    if (ended < 0)
        return -1;
    if (ended || (x->o->stop && x->o->stop(x->o->stop_ctx))) {
        x->stopping = true;
        x->mm_ended = ended;
        return 0;
    }
    if (left != 0)
        return 0;
    if (x->o->count && !x->m.started)
        return fl_fail(err, FL_ETIMEOUT, "the exception log %s never showed the fault the breakpoint caught "
                       "(CR2 0x%" PRIx64 ", RIP 0x%" PRIx64 "): is it the file this QEMU writes with -d int -D?",
                       x->r->path, x->m.cr2, x->m.rip);
    if (x->o->count)
        return fl_fail(err, FL_ETIMEOUT, "the exception log %s showed %u of %u faults in %d ms", x->r->path,
                       *x->reported, x->o->count, x->o->timeout_ms);
    return 1; /* count 0: until the timeout */
}

/* Read the log until count faults, the process's end, stop() or the deadline. */
static int follow_log(log_follow *x, fl_error *err)
{
    cap_fault *f = malloc(sizeof *f);
    if (!f)
        return fl_fail(err, FL_EIO, "out of memory reading the exception log");
    int64_t deadline = fl_deadline_ms(x->o->timeout_ms);
    int rc = 0;
    while (x->o->count == 0 || *x->reported < x->o->count) {
        exclog_record rec;
        int left = fl_remaining_ms(deadline);
        int got = exclog_next_fault(x->r, &rec, x->stopping ? 0 : left < 0 || left > 20 ? 20 : left, err);
        if (got == 1 && record_wanted(&x->m, x->o, &rec)) {
            exclog_fault_from_record(&rec, x->s, f);
            (*x->reported)++;
            if (x->fn(x->ctx, f))
                break;
        } else if (got == 0 && (rc = follow_idle(x, left, err)) != 0) {
            rc = rc < 0 ? -1 : 0;
            break;
        } else if (got < 0) {
            rc = -1;
            break;
        }
    }
    free(f);
    if (rc == 0 && x->mm_ended && x->o->count && *x->reported < x->o->count)
        rc = fl_fail(err, FL_ECLOSED, "the process's address space was torn down (exit_mmap) after %u of %u faults",
                     *x->reported, x->o->count);
    return rc;
}

int exclog_capture(cap_session *s, kern *k, tgt *t, const exclog_capture_options *o, exclog_fault_fn fn, void *ctx,
                   unsigned *reported, fl_error *err)
{
    *reported = 0;
    log_follow x = {.s = s, .t = t, .o = o, .fn = fn, .ctx = ctx, .reported = reported};
    if (exclog_open(&x.r, o->log_path, o->cancelled, o->cancel_ctx, err) < 0)
        return -1;
    if (x.r->fifo) {
        exclog_close(x.r);
        return fl_fail(err, FL_EUSAGE, "the exception log %s is a FIFO: give QEMU's -D a regular file for a "
                       "capture (a FIFO nobody reads while the guest runs to the first stop stalls QEMU)", o->log_path);
    }
    exclog_skip_existing(x.r);
    int rc = first_stop(s, &x.m, err);
    if (rc == 0)
        rc = watch_arm(k, t, &x.m, &x.w, err);
    if (rc == 0)
        rc = tgt_resume(t, err);
    if (rc == 0)
        rc = follow_log(&x, err);
    /* Leave the guest stopped, as a capture does, and nothing armed. */
    tgt_stop st;
    if (tgt_running(t) && tgt_interrupt(t, &st, 5000, rc == 0 ? err : NULL) < 0 && rc == 0 && !x.stopping)
        rc = -1;
    if (x.w.armed && !tgt_running(t))
        tgt_bp_remove(t, TGT_BP_HW, x.w.pc, 1, NULL);
    exclog_close(x.r);
    return rc;
}
