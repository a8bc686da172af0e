/* The cost of passing over faults: faultline's filtered capture against a
 * raw RSP loop, on the same guest work. Each way boots the same VM from
 * reset and handles every page fault of the boot (a few hundred: init,
 * busybox, the trigger) until the trigger announces itself:
 *  - raw: a hardware breakpoint at asm_exc_page_fault, then per fault one
 *    `g` (CR2 is in it), one vCont;s and one vCont;c, written by hand;
 *  - faultline, --addr filter: cap_fault_capture with an address no fault
 *    has, so every fault is passed over;
 *  - faultline, --comm filter: the same with a comm no process has, so
 *    `current` is read at every fault.
 * Prints faults/s of each and the ratio to the raw loop (aim: 0.9), then,
 * in separate untimed runs through a counting proxy, the packets faultline
 * sends per passed-over fault (the breakpoint stepped over in place, as under
 * TCG, and removed and re-inserted around the step, as under KVM). A program, not a test: it never fails on
 * slowness. */
#include "faultline/capture.h"
#include "faultline/kernel.h"
#include "faultline/target.h"
#include "faultline/vm.h"
#include "../tests/qemu_guest.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "raw_rsp.h"

#define ROUNDS 3
#define APPEND "faultline.scenario=write"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct result {
    unsigned faults;
    double seconds;
    unsigned long packets;   /* through the counting proxy only */
} result;

/* Drain the console; 1 once the trigger has announced itself. */
static int announced(vm *v)
{
    char line[512];
    fl_error e;
    int r;
    while ((r = vm_console_poll_line(v, line, sizeof line, &e)) == 1)
        if (strncmp(line, VM_ANNOUNCE_PREFIX, strlen(VM_ANNOUNCE_PREFIX)) == 0)
            return 1;
    return r < 0 ? -1 : 0;
}

static int idle_announced(void *ctx)
{
    return announced(ctx) != 0;
}

/* A unix-socket proxy between faultline and QEMU's stub that counts the
 * packets the client sends ('$' starts one; inside a packet it is escaped). */
typedef struct proxy {
    char dir[64], path[108];
    int listen_fd;
    const char *upstream;    /* "unix:/path" of QEMU's stub */
    pthread_t th;
    bool started;
    _Atomic unsigned long packets;
} proxy;

static int pump(int from, int to, _Atomic unsigned long *count)
{
    char buf[8192];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return -1;
    for (ssize_t i = 0; count && i < n; i++)
        *count += buf[i] == '$';
    return send(to, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static void *proxy_thread(void *arg)
{
    proxy *p = arg;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", p->upstream + strlen("unix:"));
    int down = accept(p->listen_fd, NULL, NULL), up = socket(AF_UNIX, SOCK_STREAM, 0);
    if (down >= 0 && up >= 0 && connect(up, (struct sockaddr *)&a, sizeof a) == 0)
        for (;;) {
            struct pollfd fds[2] = { { .fd = down, .events = POLLIN }, { .fd = up, .events = POLLIN } };
            if (poll(fds, 2, 60000) <= 0 || (fds[0].revents && pump(down, up, &p->packets) < 0) ||
                (fds[1].revents && pump(up, down, NULL) < 0))
                break;
        }
    if (down >= 0)
        close(down);
    if (up >= 0)
        close(up);
    return NULL;
}

static int proxy_start(proxy *p, const char *upstream)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(p->dir, sizeof p->dir, "/tmp/fl-bench-proxy-XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    snprintf(p->path, sizeof p->path, "%s/gdb.sock", p->dir);
    snprintf(a.sun_path, sizeof a.sun_path, "%s", p->path);
    p->upstream = upstream;
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(p->listen_fd, 1) < 0)
        return -1;
    p->started = pthread_create(&p->th, NULL, proxy_thread, p) == 0;
    return p->started ? 0 : -1;
}

static void proxy_end(proxy *p)
{
    if (p->listen_fd >= 0)
        shutdown(p->listen_fd, SHUT_RDWR); /* wakes an accept nobody will satisfy */
    if (p->started)
        pthread_join(p->th, NULL);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    unlink(p->path);
    rmdir(p->dir);
}

/* How faultline resumes from its breakpoint: in place, as the commands do
 * under TCG, except in the one proxy run that counts remove-step-reinsert. */
static enum tgt_step_over step_over = TGT_STEP_OVER_KEEP;

/* Boot from reset and connect, directly or through the counting proxy. */
static int boot(guest *g, const char *kernel, const char *initrd, proxy *px, fl_error *err)
{
    memset(g, 0, sizeof *g);
    vm_config cfg = { .kernel = kernel, .initrd = initrd, .accel = "tcg", .append = APPEND };
    if (vm_start(&g->v, &cfg, err) < 0)
        return -1;
    char via[160];
    if (px && proxy_start(px, vm_gdb_address(g->v)) < 0)
        return fl_fail(err, FL_EIO, "cannot start the counting proxy");
    snprintf(via, sizeof via, "unix:%s", px ? px->path : "");
    if (tgt_connect(&g->t, px ? via : vm_gdb_address(g->v), 10000, err) < 0)
        return -1;
    tgt_set_step_over(g->t, step_over);
    return 0;
}

/* Wait for a stop reply while draining the console every 2 ms, as
 * faultline's capture does through its idle hook (a console left undrained
 * slows the guest's serial output, and so the boot): 1 stopped, 0 the
 * trigger announced (the guest is interrupted), -1 error. */
static int raw_wait(raw *r, vm *v)
{
    const char *p;
    size_t n;
    double deadline = now_s() + 60;
    while (now_s() < deadline) {
        struct pollfd fd = { .fd = r->fd, .events = POLLIN };
        int ready = poll(&fd, 1, 2);
        int a = announced(v);
        if (a < 0) {
            printf("  raw: the console closed\n");
            return -1;
        }
        if (a > 0) {
            if (write(r->fd, "\x03", 1) != 1 || raw_reply(r, &p, &n) < 0) {
                printf("  raw: no stop after the interrupt\n");
                return -1;
            }
            return 0;
        }
        if (ready <= 0)
            continue;
        /* the stub acks vCont;c at once ('+'); the stop comes later */
        char peek[64];
        ssize_t got = recv(r->fd, peek, sizeof peek, MSG_PEEK);
        if (got > 0 && !memchr(peek, '$', (size_t)got)) {
            if (read(r->fd, peek, (size_t)got) != got)
                return -1;
            continue;
        }
        if (raw_reply(r, &p, &n) == 0 && n > 0 && p[0] == 'T')
            return 1;
        printf("  raw: not a stop reply: %.*s\n", (int)n, p);
        return -1;
    }
    printf("  raw: no stop and no announcement within 60 s\n");
    return -1;
}

/* A `g` reply's payload with QEMU's run-length encoding expanded ("0*'"
 * repeats '0' ('\'' - 29) more times). */
static size_t unrle(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        if (p[i] == '*' && o > 0 && i + 1 < n) {
            for (int k = p[++i] - 29; k > 0 && o < cap; k--, o++)
                out[o] = out[o - 1];
        } else {
            out[o++] = p[i];
        }
    }
    return o;
}

static int run_raw(const char *kernel, const char *initrd, uint64_t entry, result *out)
{
    guest g;
    fl_error e = { 0 };
    int rc = -1;
    if (boot(&g, kernel, initrd, NULL, &e) < 0 || tgt_bp_insert(g.t, TGT_BP_HW, entry, 1, &e) < 0) {
        printf("  raw: setup failed: %s\n", e.msg);
        guest_stop(&g);
        return -1;
    }
    raw r = { .fd = tgt_fd(g.t) };
    const tgt_reg *cr2 = tgt_regmap_find(tgt_regs(g.t), "cr2");
    const char *p;
    size_t n;
    unsigned matched = 0;
    double t0 = now_s();
    for (;;) {
        if (raw_send(&r, "vCont;c") < 0) {
            printf("  raw: cannot send\n");
            break;
        }
        int w = raw_wait(&r, g.v);
        if (w <= 0) {
            rc = w;
            break;
        }
        out->faults++;
        /* one `g` (CR2 is in it), then step off the breakpoint: QEMU 7.2
         * steps over a breakpoint at the current pc */
        static char regs[8192];
        if (raw_send(&r, "g") < 0 || raw_reply(&r, &p, &n) < 0 || !cr2 ||
            unrle(p, n, regs, sizeof regs) < 2 * (cr2->offset + 8)) {
            printf("  raw: no usable `g` reply\n");
            break;
        }
        uint64_t addr = 0; /* the address filter, as faultline decides it */
        for (int b = 7; b >= 0; b--)
            addr = addr << 8 | (uint64_t)(hv(regs[2 * (cr2->offset + b)]) << 4 | hv(regs[2 * (cr2->offset + b) + 1]));
        matched += addr == 0x1000;
        if (raw_send(&r, "vCont;s:p1.1") < 0 || raw_reply(&r, &p, &n) < 0) {
            printf("  raw: the step off the breakpoint did not stop\n");
            break;
        }
    }
    if (matched)
        printf("  raw: %u faults at 0x1000?\n", matched);
    out->seconds = now_s() - t0;
    tgt_invalidate(g.t);
    guest_stop(&g);
    return rc;
}

static int run_faultline(kern *k, const char *kernel, const char *initrd, bool by_comm, proxy *px, result *out)
{
    guest g;
    fl_error e = { 0 };
    if (boot(&g, kernel, initrd, px, &e) < 0) {
        printf("  faultline: setup failed: %s\n", e.msg);
        guest_stop(&g);
        if (px)
            proxy_end(px);
        return -1;
    }
    cap_options o = { .timeout_ms = 120000, .idle = idle_announced, .idle_ctx = g.v };
    if (by_comm)
        snprintf(o.filter.comm, sizeof o.filter.comm, "fl-nobody");
    else
        o.filter.addr = 0x1000; /* the first page is never mapped: no fault has this address */
    static cap_fault f;
    int rc = cap_session_open(&g.cs, k, g.t, &o, &e);
    unsigned long before = px ? px->packets : 0;
    if (rc == 0 && cap_fault_capture(g.cs, &f, &e) == 0) {
        printf("  faultline: a fault matched the filter (pid %d %s, %u passed over first)\n", f.task.pid,
               f.task.comm, f.passed_over);
        rc = -1; /* not a pass-over measurement */
    }
    else if (rc == 0 && e.code == FL_EINTR)
        rc = 0; /* the trigger announced: every fault of the boot was passed over */
    else
        printf("  faultline: %s\n", e.msg);
    out->faults = f.passed_over;
    out->seconds = f.seconds;
    out->packets = px ? px->packets - before : 0; /* the capture's own: the interrupt at the end included */
    guest_stop(&g);
    if (px)
        proxy_end(px);
    return rc;
}

static void show(const char *what, const result *r, const result *raw)
{
    double rate = r->seconds > 0 ? r->faults / r->seconds : 0;
    double ref = raw->seconds > 0 ? raw->faults / raw->seconds : 0;
    printf("  %-26s %5u faults in %6.3f s: %7.1f faults/s", what, r->faults, r->seconds, rate);
    if (r != raw && ref > 0)
        printf("  ratio to raw %.2f", rate / ref);
    putchar('\n');
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress as it happens, also into a pipe */
    const char *kernel = guest_kernel(), *initrd = guest_initrd();
    uint64_t entry = kernel ? guest_symbol(kernel, "asm_exc_page_fault") : 0;
    if (!kernel || !initrd || !entry) {
        printf("bench_passover: no guest (run 'make vm' or set FAULTLINE_KERNEL/INITRD); skipped\n");
        return 0;
    }
    kern *k = NULL;
    fl_error e = { 0 };
    if (kern_open(&k, kernel, NULL, &e) < 0) {
        printf("bench_passover: %s\n", e.msg);
        return 0;
    }
    result raw_sum = { 0 }, addr_sum = { 0 }, comm_sum = { 0 };
    printf("bench_passover: every fault of the boot up to the trigger's announcement, %d rounds\n", ROUNDS);
    for (int round = 0; round < ROUNDS; round++) {
        result raw = { 0 }, addr = { 0 }, comm = { 0 };
        if (run_raw(kernel, initrd, entry, &raw) < 0 || run_faultline(k, kernel, initrd, false, NULL, &addr) < 0 ||
            run_faultline(k, kernel, initrd, true, NULL, &comm) < 0) {
            printf("bench_passover: round %d failed\n", round + 1);
            break;
        }
        printf(" round %d\n", round + 1);
        show("raw loop (g, s, c)", &raw, &raw);
        show("faultline --addr filter", &addr, &raw);
        show("faultline --comm filter", &comm, &raw);
        raw_sum.faults += raw.faults, raw_sum.seconds += raw.seconds;
        addr_sum.faults += addr.faults, addr_sum.seconds += addr.seconds;
        comm_sum.faults += comm.faults, comm_sum.seconds += comm.seconds;
    }
    printf(" all rounds\n");
    show("raw loop (g, s, c)", &raw_sum, &raw_sum);
    show("faultline --addr filter", &addr_sum, &raw_sum);
    show("faultline --comm filter", &comm_sum, &raw_sum);
    printf(" packets faultline sends per passed-over fault (untimed runs through a counting proxy)\n");
    static const char *const way[] = { "--addr filter", "--comm filter", "--addr, z/Z around the step" };
    for (int run = 0; run < 3; run++) {
        proxy px = { .listen_fd = -1 };
        result r = { 0 };
        step_over = run == 2 ? TGT_STEP_OVER_REMOVE : TGT_STEP_OVER_KEEP;
        int prc = run_faultline(k, kernel, initrd, run == 1, &px, &r);
        if (prc < 0 || !r.faults)
            printf("  faultline %s: no count (%d, %u faults)\n", way[run], prc, r.faults);
        else
            printf("  faultline %-28s %5u faults, %6lu packets: %.2f per fault\n", way[run], r.faults, r.packets,
                   (double)r.packets / r.faults);
    }
    kern_close(k);
    return 0;
}
