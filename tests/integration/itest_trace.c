/* trace on the real guest (TCG, scenario write), three boots:
 *  A single-step from asm_exc_page_fault to user mode: the whole path;
 *  B fast mode on a fresh boot of the same scenario: the same pc sequence;
 *  C single-step with --over handle_mm_fault: no step inside it.
 * Why two boots for A/B: a fault can be traced only once (it changes the
 * page tables), and QEMU's gdbstub cannot rewind. The same vmlinux, initramfs
 * and trigger give the same kernel path under TCG once user address space
 * randomisation is off (norandmaps): with it, the stack sometimes shares the
 * target's top-level page-table entry and sometimes not, and the path
 * allocates a different number of page-table pages. Interrupts cannot make
 * a difference: single steps hold them off, and fast mode holds them off
 * while it runs blocks. The pc sequences are compared in full, instruction
 * by instruction (with the call depth), and the first difference is printed. */
#include "check.h"
#include "qemu_guest.h"
#include "faultline/capture.h"
#include "faultline/kernel.h"
#include "faultline/target.h"
#include "faultline/trace.h"
#include "faultline/vm.h"

#include <signal.h>
#include <stdlib.h>
#include <time.h>

/* The write scenario with fixed mmap addresses, so two boots walk the same path. */
#define WRITE_FIXED "faultline.scenario=write norandmaps"

static bool steps_in(const trace_result *r, const char *sym)
{
    for (size_t i = 0; i < r->nsteps; i++)
        if (strcmp(r->pcs[r->steps[i].pc].sym, sym) == 0)
            return true;
    return false;
}

static uint64_t step_pc(const trace_result *r, size_t i)
{
    return r->pcs[r->steps[i].pc].pc;
}

/* The pc sequence with consecutive repeats of one pc collapsed. */
static uint64_t *collapse(const trace_result *r, size_t *n)
{
    uint64_t *v = malloc((r->nsteps ? r->nsteps : 1) * sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < r->nsteps; i++)
        if (*n == 0 || v[*n - 1] != step_pc(r, i))
            v[(*n)++] = step_pc(r, i);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static trace_result *trace_boot(kern *k, const char *kernel, const char *initrd, const trace_options *o,
                                const char *label)
{
    guest g;
    static cap_fault f;
    fl_error err = { 0 };
    trace_result *r = NULL;
    double t0 = now_s();
    int ok = guest_to_fault(&g, k, kernel, initrd, WRITE_FIXED, 1u << CAP_ST_ENTRY, &f, &err) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s: setup failed: %s\n", label, err.msg);
    if (ok) {
        int rc = trace_run(g.t, k, o, &r, &err);
        CHECK(rc == 0);
        if (rc < 0)
            fprintf(stderr, "%s: trace failed: %s\n", label, err.msg);
        if (r)
            fprintf(stderr, "%s: %zu steps, %zu stops, %.2f s (%.0f steps/s), stop %s, final cs 0x%llx, "
                    "resyncs %zu (boot+trace %.1f s)\n", label, r->nsteps, r->stops, r->seconds,
                    r->seconds > 0 ? r->nsteps / r->seconds : 0.0, trace_stop_name(r->stop),
                    (unsigned long long)r->final_cs, r->resyncs, now_s() - t0);
    }
    pid_t pid = g.v ? vm_pid(g.v) : 0;
    guest_stop(&g);
    CHECK(pid == 0 || kill(pid, 0) == -1);
    /* FL_TRACE_DUMP=DIR keeps each trace's instruction view for a look. */
    const char *dump = getenv("FL_TRACE_DUMP");
    if (r && dump) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.txt", dump, label);
        FILE *f = fopen(path, "w");
        if (f) {
            trace_report(f, TRACE_FMT_TEXT, TRACE_VIEW_INSN, r);
            fclose(f);
        }
    }
    return r;
}

int main(void)
{
    const char *kernel, *initrd;
    if (guest_files(&kernel, &initrd) < 0)
        return 1;
    vm_install_cleanup();
    fl_error err = { 0 };
    kern *k = NULL;
    if (kern_open(&k, kernel, NULL, &err) < 0) {
        fprintf(stderr, "kern_open: %s\n", err.msg);
        return 1;
    }
    uint64_t entry = 0, mm_lo = 0, mm_hi = 0;
    CHECK(kern_sym_addr(k, "asm_exc_page_fault", &entry, NULL) == 0);
    CHECK(kern_func_range(k, "handle_mm_fault", &mm_lo, &mm_hi, NULL) == 0);

    /* A: single-step, the whole path. */
    trace_options so = { .mode = TRACE_SINGLE, .timeout_ms = 60000 };
    trace_result *a = trace_boot(k, kernel, initrd, &so, "single");
    if (a && a->nsteps) {
        CHECK_EQ_U64(a->start_pc, entry);
        CHECK_EQ_U64(step_pc(a, 0), entry);
        CHECK(a->stop == TRACE_STOP_USER);
        CHECK_EQ_U64(a->final_cs, 0x33);
        CHECK(a->pcs[a->steps[a->nsteps - 1].pc].kind == TRACE_K_IRET);
        CHECK(strncmp(a->pcs[a->steps[a->nsteps - 1].pc].text, "iretq", 5) == 0);
        CHECK(a->nsteps >= 1000 && a->nsteps < 100000);
        /* one stop per instruction, plus the steps QEMU reported without
         * executing anything, which are stepped again and not recorded */
        CHECK(a->stops == a->nsteps + a->empty_steps);
        CHECK(a->empty_steps < a->nsteps / 100);
        CHECK(steps_in(a, "exc_page_fault"));
        CHECK(steps_in(a, "handle_mm_fault"));
        /* Hardware entry sequence: the line view starts in the idtentry
         * macro of asm_exc_page_fault, then C entry exc_page_fault. */
        trace_line *l = NULL;
        size_t nl = 0;
        CHECK(trace_lines(a, &l, &nl) == 0);
        CHECK(nl > 100 && nl < a->nsteps);
        if (nl > 2) {
            const trace_pc *p0 = &a->pcs[l[0].pc];
            CHECK_EQ_U64(p0->pc, entry);
            CHECK(p0->file && (strstr(p0->file, "entry_64.S") || strstr(p0->file, "idtentry.h")));
            CHECK(l[0].t == 0 && l[1].t == 1);
            fprintf(stderr, "line view: %zu entries; t=0 %s:%d (%s)\n", nl, p0->file ? p0->file : "?", p0->line,
                    p0->function);
            /* Entry sequence: asm_exc_page_fault calls error_entry (which
             * may call sync_regs), returns, then calls exc_page_fault. */
            size_t ee = nl, epf = nl;
            for (size_t c = 0; c < nl; c++) {
                const char *sym = a->pcs[l[c].pc].sym;
                if (ee == nl && strcmp(sym, "error_entry") == 0)
                    ee = c;
                if (epf == nl && strcmp(sym, "exc_page_fault") == 0)
                    epf = c;
            }
            CHECK(ee < epf && epf < nl);
            for (size_t c = 0; c < epf; c++) {
                const char *sym = a->pcs[l[c].pc].sym;
                CHECK(strcmp(sym, "asm_exc_page_fault") == 0 || strcmp(sym, "error_entry") == 0 ||
                      strcmp(sym, "sync_regs") == 0);
            }
            CHECK(epf < nl && l[epf].depth == 1);
        }
        free(l);
        /* depth: the iretq runs near the level the trace started at (the
         * entry code has a call that returns by jmp, so 0 or 1), and the
         * depth never goes below 0 before it. */
        CHECK(a->steps[a->nsteps - 1].depth >= 0 && a->steps[a->nsteps - 1].depth <= 1);
        int mind = 0;
        for (size_t i = 0; i < a->nsteps; i++)
            mind = a->steps[i].depth < mind ? a->steps[i].depth : mind;
        CHECK(mind == 0);
        /* registers: the first instruction of a fault entry with an error
         * code is a clac or endbr/push: rsp or flags change somewhere early. */
        size_t changed = 0;
        for (size_t i = 0; i < 10 && i < a->nsteps; i++)
            changed += a->steps[i].nchanges;
        CHECK(changed > 0);
        /* every format renders */
        FILE *devnull = fopen("/dev/null", "w");
        for (int f = 0; f < 4; f++)
            for (int v = 0; v < 3; v++)
                CHECK(trace_report(devnull, (enum trace_format)f, (enum trace_view)v, a) == 0);
        fclose(devnull);
    }

    /* B: fast mode, same scenario on a fresh boot: the same pc sequence. */
    trace_options fo = { .mode = TRACE_FAST, .timeout_ms = 60000 };
    trace_result *b = trace_boot(k, kernel, initrd, &fo, "fast");
    if (a && b) {
        CHECK(b->stop == TRACE_STOP_USER);
        CHECK_EQ_U64(b->final_cs, 0x33);
        CHECK(b->stops * 3 < b->nsteps);  /* it really ran blocks */
        /* Collapse runs of one pc: a rep string instruction is one record
         * in fast mode and one per QEMU step (1+ iterations) when stepped. */
        size_t na = 0, nb = 0;
        uint64_t *pa = collapse(a, &na), *pb = collapse(b, &nb);
        CHECK(pa && pb);
        CHECK_EQ_U64(nb, na);
        size_t n = na < nb ? na : nb, diff = n;
        for (size_t i = 0; pa && pb && i < n && diff == n; i++)
            if (pa[i] != pb[i])
                diff = i;
        CHECK(diff == n);
        if (diff < n)
            fprintf(stderr, "first difference at collapsed step %zu: single 0x%llx, fast 0x%llx\n", diff,
                    (unsigned long long)pa[diff], (unsigned long long)pb[diff]);
        fprintf(stderr, "single vs fast: %zu vs %zu records, %zu pcs after collapsing repeats, %zu equal\n",
                a->nsteps, b->nsteps, na, diff);
        free(pa);
        free(pb);
        /* At every stop fast mode saw, its registers agree with the exact
         * trace's: check the final pc and the net change of the last step. */
        CHECK_EQ_U64(b->final_pc, a->final_pc);
    }

    /* C: --over handle_mm_fault. */
    trace_options oo = { .mode = TRACE_SINGLE, .over = "handle_mm_fault", .timeout_ms = 60000 };
    trace_result *c = trace_boot(k, kernel, initrd, &oo, "over");
    if (a && c) {
        CHECK(c->stop == TRACE_STOP_USER);
        CHECK_EQ_U64(c->final_cs, 0x33);
        CHECK(c->overs == 1);
        CHECK(c->nover_calls == 1 && strcmp(c->over_calls[0].function, "handle_mm_fault") == 0);
        size_t inside = 0, over_at = c->nsteps;
        for (size_t i = 0; i < c->nsteps; i++) {
            uint64_t pc = step_pc(c, i);
            inside += pc >= mm_lo && pc < mm_hi;
            if (c->steps[i].flags & TRACE_F_OVER)
                over_at = i;
        }
        CHECK(inside == 0);
        CHECK(c->nsteps + 500 < a->nsteps);
        fprintf(stderr, "over: %zu steps vs %zu without --over\n", c->nsteps, a->nsteps);
        /* stepping resumes right after the call, at the same depth */
        CHECK(over_at + 1 < c->nsteps);
        if (over_at + 1 < c->nsteps) {
            const trace_pc *call = &c->pcs[c->steps[over_at].pc];
            CHECK(call->kind == TRACE_K_CALL || call->kind == TRACE_K_CALL_IND);
            CHECK_EQ_U64(step_pc(c, over_at + 1), call->pc + call->len);
            CHECK(c->steps[over_at + 1].depth == c->steps[over_at].depth);
        }
    }
    trace_result_free(a);
    trace_result_free(b);
    trace_result_free(c);
    kern_close(k);
    return check_summary("itest_trace");
}
