/* Entry-only capture past the stop floor (issue 13): page faults per second
 * of one guest program (tests/touch_guest.h: PAGES fresh pages, one write
 * each) read three ways in the same invocation, each on a fresh VM:
 *  - log: exclog_capture: QEMU's exception log (-d int), tailed as QEMU
 *    writes it and attributed by CR3; the CR3 comes from one breakpoint stop
 *    at the program's first fault, then the guest runs with no breakpoint
 *    per fault (one at exit_mmap: a stop per mm teardown);
 *  - gdb: GDB 13, `hbreak *asm_exc_page_fault if $cr2 >= A && $cr2 < B`
 *    and a Python stop handler that reads CR2 and the 48-byte frame;
 *  - breakpoint: faultline's capture at the entry station only (filter:
 *    the program's pid and comm), one cap_fault_capture per fault.
 * Rates are over the program's faults on its pages. GDB's and the
 * breakpoint path's run from the first fault seen to the last (their set-up
 * left out). The log's runs from "go" to the last record read, so it
 * includes its own set-up (the CR3 stop, the program's start): its records
 * are read from a backlog in bursts, and first-to-last there would time the
 * parser, not the guest. A program, not a test: it never fails on
 * slowness. Usage: bench_exclog [PAGES] (default 1000). */
#include "../tests/touch_guest.h"

#include <inttypes.h>

typedef struct span {
    int n;
    double first, last, start;
} span;

static void span_add(span *s)
{
    double t = fl_now_s();
    if (s->n++ == 0)
        s->first = t;
    s->last = t;
}

static double span_rate(const span *s)
{
    return s->n > 1 && s->last > s->first ? (s->n - 1) / (s->last - s->first) : 0;
}

static double span_rate_from_start(const span *s)
{
    return s->n > 0 && s->last > s->start ? s->n / (s->last - s->start) : 0;
}

/* Boot, stop at the announcement, open an entry-only session, say "go". */
static int start_program(guest *g, const touch_prog *tp, kern *k, int pages, bool log, fl_error *e)
{
    return touch_boot(g, tp, pages, log, false, e) < 0 || touch_to_announcement(g, e) < 0 ||
                   touch_session(g, k, e) < 0 || vm_console_write(g->v, "go\n", e) < 0
               ? -1
               : 0;
}

typedef struct log_count {
    span *s;
    int pages;
} log_count;

static int count_fault(void *ctx, const cap_fault *f)
{
    log_count *c = ctx;
    if (touch_in_range(cap_value_get(f, CAP_ST_ENTRY, "cr2")->value, c->pages))
        span_add(c->s);
    return c->s->n >= c->pages;
}

/* exclog_capture, as faultline runs it: one stop for the CR3, then the log. */
static int run_log(const touch_prog *tp, kern *k, int pages, span *s, fl_error *e)
{
    guest g;
    int rc = -1;
    unsigned got = 0;
    log_count c = {s, pages};
    if (start_program(&g, tp, k, pages, true, e) < 0)
        goto out;
    s->start = fl_now_s();
    exclog_capture_options o = {.log_path = vm_exception_log(g.v), .timeout_ms = 300000};
    if (exclog_capture(g.cs, k, g.t, &o, count_fault, &c, &got, e) < 0)
        goto out;
    rc = s->n == pages ? 0 : fl_fail(e, FL_EIO, "the log showed %d of %d faults on the pages", s->n, pages);
out:
    guest_stop(&g);
    return rc;
}

static int run_breakpoint(const touch_prog *tp, kern *k, int pages, span *s, fl_error *e)
{
    guest g;
    cap_fault *f = malloc(sizeof *f);
    int rc = -1;
    if (!f || start_program(&g, tp, k, pages, false, e) < 0)
        goto out;
    s->start = fl_now_s();
    while (s->n < pages) {
        if (cap_fault_capture(g.cs, f, e) < 0)
            goto out;
        if (touch_in_range(cap_value_get(f, CAP_ST_ENTRY, "cr2")->value, pages))
            span_add(s);
    }
    rc = 0;
out:
    free(f);
    guest_stop(&g);
    return rc;
}

/* GDB on its own VM (the program runs at once: GDB arms before the guest
 * starts); its Python loop prints its own first-to-last time. */
static int run_gdb(const touch_prog *tp, const char *kernel, int pages, span *s, fl_error *e)
{
    uint64_t entry = guest_symbol(kernel, "asm_exc_page_fault");
    if (!entry)
        return fl_fail(e, FL_ENOTFOUND, "no asm_exc_page_fault in %s", kernel);
    guest g;
    if (touch_boot(&g, tp, pages, false, true, e) < 0)
        return -1;
    char script[256], cmd[512];
    snprintf(script, sizeof script, "%s/bench.gdb", tp->dir);
    FILE *f = fopen(script, "w");
    if (!f) {
        guest_stop(&g);
        return fl_fail(e, FL_EIO, "cannot write %s", script);
    }
    fprintf(f,
            "set pagination off\nset confirm off\ntarget remote %s\n"
            "hbreak *0x%" PRIx64 " if $cr2 >= 0x%llx && $cr2 < 0x%llx\n"
            "python\nimport time\nseen = []\n"
            "def on_stop(ev):\n"
            "    cr2 = int(gdb.parse_and_eval('$cr2'))\n"
            "    rsp = int(gdb.parse_and_eval('$rsp'))\n"
            "    frame = gdb.selected_inferior().read_memory(rsp, 48)\n"
            "    seen.append((time.monotonic(), cr2, bytes(frame)[0]))\n"
            "gdb.events.stop.connect(on_stop)\n"
            "while len(seen) < %d:\n    gdb.execute('continue', to_string=True)\n"
            "print('gdb-bench: %%d %%.6f' %% (len(seen), seen[-1][0] - seen[0][0]))\nend\nkill\n",
            g.address + 5, entry, TOUCH_BASE, TOUCH_BASE + (unsigned long long)pages * 4096, pages);
    fclose(f);
    snprintf(cmd, sizeof cmd, "timeout 600 gdb -batch -nx -x '%s' </dev/null 2>&1", script);
    FILE *p = popen(cmd, "r");
    char line[512];
    int n = 0;
    double secs = 0;
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "gdb-bench: %d %lf", &n, &secs) == 2)
            break;
    while (p && fgets(line, sizeof line, p))
        ;
    if (p)
        pclose(p);
    guest_stop(&g);
    if (n != pages)
        return fl_fail(e, FL_EIO, "GDB saw %d of %d faults", n, pages);
    *s = (span){.n = n, .first = 0, .last = secs};
    return 0;
}

int main(int argc, char **argv)
{
    int pages = argc > 1 ? atoi(argv[1]) : 1000;
    if (pages < 2 || pages > 100000) {
        fprintf(stderr, "usage: bench_exclog [PAGES from 2 to 100000]\n");
        return 2;
    }
    const char *kernel = guest_kernel();
    touch_prog tp;
    char why[256];
    if (!kernel || !guest_initrd() || touch_build(&tp, why, sizeof why) < 0) {
        printf("bench_exclog: skipped: %s\n", kernel && guest_initrd() ? why : "no guest (run 'make vm')");
        return 0;
    }
    kern *k = NULL;
    fl_error e = {0};
    span lg = {0}, gd = {0}, bp = {0};
    int status = 1;
    printf("bench_exclog: %d pages, one write each, QEMU TCG, each way on a fresh VM\n", pages);
    if (kern_open(&k, kernel, NULL, &e) < 0 || run_log(&tp, k, pages, &lg, &e) < 0) {
        printf("bench_exclog: log: %s\n", e.msg);
        goto out;
    }
    double log_rate = span_rate_from_start(&lg);
    printf("log:        %6.0f faults/s (%d faults, %.3f s from go to the last record read, CR3 stop included)\n",
           log_rate, lg.n, lg.last - lg.start);
    if (run_gdb(&tp, kernel, pages, &gd, &e) < 0) {
        printf("bench_exclog: gdb: %s\n", e.msg);
        goto out;
    }
    printf("gdb:        %6.0f faults/s (%d faults, %.3f s first to last)\n", span_rate(&gd), gd.n, gd.last - gd.first);
    if (run_breakpoint(&tp, k, pages, &bp, &e) < 0) {
        printf("bench_exclog: breakpoint: %s\n", e.msg);
        goto out;
    }
    printf("breakpoint: %6.0f faults/s (%d faults, %.3f s first to last)\n", span_rate(&bp), bp.n,
           bp.last - bp.first);
    printf("ratio: log/gdb %.1f (aim: at least 5), log/breakpoint %.1f, breakpoint/gdb %.2f\n",
           log_rate / span_rate(&gd), log_rate / span_rate(&bp), span_rate(&bp) / span_rate(&gd));
    status = 0;
out:
    kern_close(k);
    touch_cleanup(&tp);
    return status;
}
