/* cmd_trace: `faultline trace`: on the bundled VM it is `run --trace`; with
 * --gdb it attaches to a QEMU the user started (halted or running),
 * captures the first fault that passes the filters at its entry, steps it
 * back to user mode, writes the report and the trace, and detaches so the
 * guest runs on. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/trace.h"
#include "faultline/util.h"

/* The trace's progress line, drawn here (the CLI owns the terminal) and
 * only when stderr is one. */
typedef struct progress_line {
    bool tty, drawn;
} progress_line;

static void draw_progress(void *ctx, size_t steps, const char *function)
{
    progress_line *p = ctx;
    if (!p->tty)
        return;
    fprintf(stderr, "\rtrace: %zu steps  %-48.48s", steps, function ? function : "");
    p->drawn = true;
}

int cmd_trace_fault(tgt *t, kern *k, const cli_options *o, FILE *out, fl_error *err)
{
    enum trace_format fmt = TRACE_FMT_TEXT;
    enum trace_view view = TRACE_VIEW_LINE;
    trace_parse_format(o->format, &fmt);
    if (o->view)
        trace_parse_view(o->view, &view);
    progress_line pl = { .tty = isatty(STDERR_FILENO) };
    trace_options topt = {
        .mode = o->mode && strcmp(o->mode, "fast") == 0 ? TRACE_FAST : TRACE_SINGLE,
        .until = o->until,
        .max_steps = (size_t)o->max_steps,
        .over = o->over,
        .timeout_ms = o->timeout_s * 1000,
        .progress_fn = draw_progress,
        .progress_ctx = &pl,
        .cancel = cmd_check_stop,
    };
    trace_result *tr = NULL;
    int rc = trace_run(t, k, &topt, &tr, err);
    if (pl.drawn)
        fprintf(stderr, "\r%-70s\r", "");
    if (tr) {
        trace_report(out, fmt, view, tr);
        trace_result_free(tr);
    }
    if (rc < 0)
        fl_error_prefix(err, "tracing the fault");
    return rc;
}

/* Attached: capture the filtered fault at its entry, then trace it. The
 * report's header and summary frame the fault's records and the trace
 * (Chrome's trace-event file holds the trace alone). */
static int trace_attached(const cli_options *o, cmd_vm *r, FILE *out, bool *begun, report_summary *sum,
                          fl_error *err)
{
    bool chrome = strcmp(o->format, "chrome") == 0;
    enum report_format fmt = REPORT_TEXT;
    if (!chrome)
        report_parse_format(o->format, &fmt);
    if (cmd_attach(o, r, 1u << CAP_ST_ENTRY, err) < 0)
        return -1;
    fprintf(stderr, "faultline: attached to %s; waiting up to %d s for a fault matching the filter\n", o->gdb,
            o->timeout_s);
    if (o->count == 0)
        r->deadline = fl_now_s() + o->timeout_s;
    char version[256];
    cmd_kernel_version(o->kernel, r->k, version, sizeof version);
    report_meta meta = { .kernel = version, .vmlinux = o->kernel, .gdb = o->gdb };
    if (!chrome)
        report_begin(out, fmt, &meta);
    *begun = !chrome;
    report_trigger none = { .have = false };
    cmd_capture_ctx cc = { .cs = r->cs, .t = r->t, .k = r->k, .out = out, .fmt = fmt, .report = !chrome,
                           .trigger = &none, .sum = sum };
    if (cmd_capture_loop(o, &cc, err) < 0)
        return -1;
    return sum->failed ? CMD_EXIT_CHECKS : 0;
}

int cmd_trace(const cli_options *o)
{
    if (!o->gdb)
        return cmd_run(o);
    fl_error err = { 0 };
    const char *const inputs[][2] = { { "--vmlinux", o->kernel }, { NULL, NULL } };
    static cmd_output output;
    if (cmd_output_open(&output, o, inputs, &err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    cmd_vm r = { 0 };
    report_summary sum = { 0 };
    bool begun = false;
    double start = fl_now_s();
    int rc = trace_attached(o, &r, output.f, &begun, &sum, &err);
    if (rc < 0)
        rc = CMD_EXIT_ENV;
    sum.seconds = fl_now_s() - start;
    rc = cmd_conclude(rc, &err, &sum);
    enum report_format fmt = REPORT_TEXT;
    if (begun && report_parse_format(o->format, &fmt) == 0)
        report_end(output.f, fmt, &sum);
    rc = cmd_output_close(&output, rc, begun);
    cap_session_close(r.cs);
    tgt_close(r.t); /* detach: the user's guest runs on */
    kern_close(r.k);
    return rc;
}
