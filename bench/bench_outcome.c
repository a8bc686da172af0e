/* What the outcome costs: `run --scenario write` done by hand, with and
 * without the outcome, alternating, in the same invocation. Each run opens
 * vmlinux afresh (as a faultline process does), boots the guest, captures
 * the write fault at all six stations, then (with the outcome) walks CR2,
 * runs the fault to its end on the candidates' breakpoints and walks again,
 * then lets the guest finish and QEMU exit. Prints the medians, their ratio
 * (the aim: within 1.10) and the outcome's own parts. A program: it never
 * fails on slowness, only on errors. Usage: bench_outcome [RUNS] (default 3). */
#include "faultline/capture.h"
#include "faultline/kernel.h"
#include "faultline/outcome.h"
#include "faultline/util.h"
#include "faultline/vm.h"
#include "../tests/qemu_guest.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct timing {
    double total, open, finish;
} timing;

static int one_run(const char *kernel, const char *initrd, bool outcome, timing *t, fl_error *err)
{
    double t0 = fl_now_s();
    kern *k = NULL;
    guest g;
    static cap_fault f;
    static out_fault o;
    out_session *os = NULL;
    int rc = -1;
    memset(&g, 0, sizeof g);
    if (kern_open(&k, kernel, NULL, err) < 0 ||
        guest_to_fault(&g, k, kernel, initrd, "faultline.scenario=write", 0, &f, err) < 0)
        goto out;
    if (outcome) {
        double a = fl_now_s();
        out_options oo = { .timeout_ms = 60000 };
        if (out_session_open(&os, k, g.t, &oo, err) < 0)
            goto out;
        double b = fl_now_s();
        if (out_finish(os, &f, &o, err) < 0)
            goto out;
        t->open = b - a;
        t->finish = fl_now_s() - b;
        if (out_checks_failed(&o) || strncmp(o.classification, "anonymous first write", 21) != 0) {
            fl_fail(err, FL_EPROTO, "the outcome is wrong: %s", o.classification);
            goto out;
        }
    }
    char line[256];
    int status;
    if (tgt_resume(g.t, err) < 0 ||
        vm_console_wait_prefix(g.v, VM_DONE_PREFIX, line, sizeof line, 60000, err) < 0 ||
        vm_wait_exit(g.v, 30000, &status, err) < 0)
        goto out;
    t->total = fl_now_s() - t0;
    rc = 0;
out:
    out_session_close(os);
    guest_stop(&g);
    kern_close(k);
    return rc;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    const char *kernel = guest_kernel(), *initrd = guest_initrd();
    if (runs < 1 || runs > 50 || !kernel || !initrd) {
        fprintf(stderr, "usage: bench_outcome [RUNS 1-50]; needs the guest (make vm)\n");
        return 2;
    }
    vm_install_cleanup();
    double with[50], without[50], open[50], finish[50];
    fl_error err = { 0 };
    timing warm;
    if (one_run(kernel, initrd, true, &warm, &err) < 0) { /* page cache, not counted */
        fprintf(stderr, "bench_outcome: %s\n", err.msg);
        return 2;
    }
    for (int i = 0; i < runs; i++) {
        timing a = { 0 }, b = { 0 };
        if (one_run(kernel, initrd, false, &a, &err) < 0 || one_run(kernel, initrd, true, &b, &err) < 0) {
            fprintf(stderr, "bench_outcome: %s\n", err.msg);
            return 2;
        }
        without[i] = a.total;
        with[i] = b.total;
        open[i] = b.open;
        finish[i] = b.finish;
        printf("run %d: without %.3f s, with %.3f s (outcome: open %.3f s, finish %.3f s)\n", i + 1, a.total,
               b.total, b.open, b.finish);
    }
    double mw = median(with, runs), mo = median(without, runs);
    printf("median run --scenario write: without the outcome %.3f s, with it %.3f s: ratio %.3f (aim <= 1.10)\n", mo,
           mw, mw / mo);
    printf("median outcome parts: session open %.3f s, finish (run to the end, walks, checks) %.3f s\n",
           median(open, runs), median(finish, runs));
    return 0;
}
