/* cmd_capture: the capture against a QEMU the user started (capture, and
 * trace --gdb): connect (which stops the guest), arm, capture --count
 * filtered faults (tracing each for trace), detach so the guest runs on. */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/exclog.h"
#include "faultline/outcome.h"
#include "faultline/util.h"

/* The capture's idle callback: a stop signal, or the overall deadline. */
static int attached_idle(void *ctx)
{
    cmd_vm *r = ctx;
    if (r->deadline && fl_now_s() > r->deadline)
        r->idle_stop = "--timeout ended it";
    return cmd_stop_signal || r->idle_stop;
}

void cmd_outcome_open(cmd_vm *r, const out_options *oo)
{
    fl_error e = { 0 };
    if (out_session_open(&r->os, r->k, r->t, oo, &e) < 0) {
        fprintf(stderr, "faultline: no outcome in this report: %s\n", e.msg);
        r->os = NULL;
        return;
    }
    cap_session_on_stop(r->cs, out_on_stop, r->os);
}

int cmd_attach(const cli_options *o, cmd_vm *r, unsigned stations, fl_error *err)
{
    if (kern_open(&r->k, o->kernel, NULL, err) < 0 || cmd_kernel_source(r->k, o->source_dir, err) < 0)
        return -1;
    if (tgt_connect(&r->t, o->gdb, 10000, err) < 0)
        return -1; /* the sentence names the address already */
    /* Whether the user's QEMU runs TCG is not said on the wire: stepping
     * over a breakpoint in place is checked at the first pass-over, and a
     * stub that re-reports it (or refuses a fifth debug register: KVM) gets
     * remove-step-reinsert. */
    tgt_set_step_over(r->t, TGT_STEP_OVER_KEEP);
    cap_options copt = { .filter = { .pid = o->pid, .addr = o->addr, .addr_page = o->addr_page },
                         .stations = stations, .explicit_stations = o->probes != NULL,
                         .timeout_ms = o->timeout_s * 1000, .idle = attached_idle, .idle_ctx = r };
    if (o->comm)
        snprintf(copt.filter.comm, sizeof copt.filter.comm, "%s", o->comm);
    if (cap_session_open(&r->cs, r->k, r->t, &copt, err) < 0)
        return -1;
    if (o->exception_log)
        return 0; /* the log gives the entry alone: nothing to follow the fault with */
    out_options oo = { .timeout_ms = copt.timeout_ms, .idle = attached_idle, .idle_ctx = r };
    cmd_outcome_open(r, &oo);
    return 0;
}

/* The capture loop ended early without a stop signal: the normal end of
 * --count 0 (said on stderr, err cleared), else an error saying so. */
static bool ended_early(const cli_options *o, const cmd_capture_ctx *c, int captured, fl_error *err)
{
    const char *why = c->vm->idle_stop;
    if (cmd_stop_signal || (err->code != FL_ETIMEOUT && err->code != FL_EINTR && err->code != FL_ECLOSED))
        return false;
    if (o->count != 0) {
        if (why)
            fl_fail(err, FL_ETIMEOUT, "%s after %d of the %d faults asked for", why, captured, o->count);
        return false;
    }
    fprintf(stderr, "faultline: --count 0: %d fault%s captured (%s)\n", captured, captured == 1 ? "" : "s",
            err->code == FL_ECLOSED ? err->msg : why ? why : "--timeout ended it");
    fl_error_clear(err);
    return true;
}

/* A fault's records, or its row of the table (json: its records). */
static void write_fault(cmd_capture_ctx *c, const report_trigger *rt, const cap_fault *f, const out_fault *of)
{
    if (c->table && c->fmt != REPORT_JSON) {
        if (c->rows++ == 0)
            report_table_head(c->out, c->fmt);
        report_table_row(c->out, c->fmt, c->rows, rt, f, of);
        return;
    }
    report_fault(c->out, c->fmt, rt, f, c->vm->cs);
    if (of)
        report_outcome(c->out, c->fmt, of);
}

/* Write a fault's records (what a failed capture read too) and count
 * them; a captured one (crc 0) is followed to its end first, unless it is
 * traced (the trace runs it). Returns crc, or -1 when the outcome ended the
 * run (a signal, the guest gone): anything else it could not read is a
 * failed check in its report. */
static int report_captured(const cli_options *o, cmd_capture_ctx *c, const cap_fault *f, int crc, fl_error *err)
{
    static out_fault of; /* large: not on the stack */
    report_trigger rt = *c->trigger;
    if (c->on_fault)
        c->on_fault(c->on_fault_ctx, f, &rt);
    bool follow = crc == 0 && c->vm->os && !o->trace;
    fl_error oe = { 0 };
    int orc = follow ? out_finish(c->vm->os, f, &of, &oe) : 0;
    if (follow) {
        out_check_scenario(&of, c->scenario);
        rt.outcome = of.classification;
    }
    if ((f->st[0].hit || f->nchecks) && c->report) {
        write_fault(c, &rt, f, follow ? &of : NULL);
        fflush(c->out); /* each fault's records as soon as they exist */
    }
    cmd_tally(c->sum, f);
    if (follow)
        cmd_tally_outcome(c->sum, &of);
    if (orc < 0 && (oe.code == FL_EINTR || oe.code == FL_ECLOSED)) {
        *err = oe;
        return -1;
    }
    return crc;
}

int cmd_capture_loop(const cli_options *o, cmd_capture_ctx *c, fl_error *err)
{
    unsigned matched = 0;
    cmd_vm *vm = c->vm;
    vm->idle_stop = NULL;
    for (int i = 0; o->count == 0 || i < o->count; i++) {
        cap_fault f;
        unsigned skipped = 0, before = matched;
        int crc = cmd_capture_selected(vm->cs, o, c->select_addr, &f, &c->sum->program_faults, &matched, &skipped,
                                       err);
        c->sum->passed_over += skipped;
        c->sum->matched += matched - before;
        int rrc = report_captured(o, c, &f, crc, err);
        i += crc == 0 && rrc < 0; /* written before the outcome ended the run */
        if (rrc < 0 && ended_early(o, c, i, err))
            break;
        if (rrc < 0)
            return -1;
        if (o->trace && cmd_trace_fault(o, c, err) < 0)
            return -1;
    }
    return 0;
}

int cmd_log_fault(void *ctx, const cap_fault *f)
{
    cmd_capture_ctx *c = ctx;
    write_fault(c, c->trigger, f, NULL);
    fflush(c->out);
    cmd_tally(c->sum, f);
    c->sum->faults++; /* a fault read from the log carries no checks */
    c->sum->program_faults++; /* the log's reader applied --addr already */
    c->sum->matched++;
    return 0;
}

/* --exception-log: each fault of the log is reported as it is read. */
static int capture_via_log(const cli_options *o, cmd_capture_ctx *c, fl_error *err)
{
    exclog_capture_options lo = { .log_path = o->exception_log, .count = (unsigned)o->count,
                                  .timeout_ms = o->timeout_s * 1000, .addr = o->addr, .addr_page = o->addr_page,
                                  .cancelled = cmd_check_stop };
    unsigned got;
    return exclog_capture(c->vm->cs, c->vm->k, c->vm->t, &lo, cmd_log_fault, c, &got, err);
}

/* Say on stderr when the guest may fault (it is stopped while we attach). */
static void say_attached(const cli_options *o)
{
    if (o->count)
        fprintf(stderr, "faultline: attached to %s; waiting up to %d s for %d fault%s matching the filter\n", o->gdb,
                o->timeout_s, o->count, o->count == 1 ? "" : "s");
    else
        fprintf(stderr, "faultline: attached to %s; capturing every fault matching the filter for %d s\n", o->gdb,
                o->timeout_s);
}

/* capture, and trace --gdb: attach, capture (and trace) --count faults,
 * detach. A trace captures at the entry only; its Chrome trace-event file
 * holds the trace alone. */
int cmd_capture(const cli_options *o)
{
    enum report_format fmt = REPORT_TEXT;
    bool report = report_parse_format(o->format, &fmt) == 0; /* not chrome */
    fl_error err = { 0 };
    const char *const inputs[][2] = { { "--vmlinux", o->kernel }, { NULL, NULL } };
    static cmd_output output;
    if (o->follow_fork)
        fl_fail(&err, FL_EUSAGE, "--follow-fork follows a program that run or trace starts ('-- PROGRAM'); "
                "attached, filter its children with --comm");
    if (o->follow_fork || cmd_output_open(&output, o, inputs, &err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    cmd_vm r = { 0 };
    report_summary sum = { 0 };
    double start = fl_now_s();
    char version[256];
    int rc = CMD_EXIT_ENV;
    bool begun = false;
    if (o->count == 0)
        r.deadline = start + o->timeout_s;
    if (cmd_attach(o, &r, o->trace || o->exception_log ? 1u << CAP_ST_ENTRY : cmd_probe_mask(o->probes), &err) < 0)
        goto out;
    say_attached(o);
    cmd_kernel_version(o->kernel, r.k, version, sizeof version);
    report_meta meta = { .kernel = version, .vmlinux = o->kernel, .gdb = o->gdb };
    if (report)
        report_begin(output.f, fmt, &meta);
    begun = report;
    report_trigger none = { .have = false };
    cmd_capture_ctx cc = { .vm = &r, .out = output.f, .fmt = fmt, .report = report,
                           .trigger = &none, .sum = &sum, .table = cmd_fault_table(o) };
    if ((o->exception_log ? capture_via_log(o, &cc, &err) : cmd_capture_loop(o, &cc, &err)) == 0)
        rc = sum.failed ? CMD_EXIT_CHECKS : 0;
out:
    sum.seconds = fl_now_s() - start;
    rc = cmd_conclude(rc, &err, &sum);
    if (begun)
        report_end(output.f, fmt, &sum);
    rc = cmd_output_close(&output, rc, begun || !report);
    out_session_close(r.os);
    cap_session_close(r.cs);
    tgt_close(r.t); /* detach: the user's guest runs on */
    kern_close(r.k);
    return rc;
}
