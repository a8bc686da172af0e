/* cmd_trace: `faultline trace`: on the bundled VM it is `run --trace`; with
 * --gdb it is capture on a QEMU the user started (halted or running), at
 * the entry only, each fault stepped back to user mode here before the
 * detach lets the guest run on. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/trace.h"

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

/* The format and view o asks for; the worksheet's trace (md) is the
 * narrative unless --view says otherwise. */
static void trace_format_view(const cli_options *o, enum trace_format *fmt, enum trace_view *view)
{
    *fmt = TRACE_FMT_TEXT;
    *view = TRACE_VIEW_LINE;
    trace_parse_format(o->format, fmt);
    if (o->view)
        trace_parse_view(o->view, view);
    else if (*fmt == TRACE_FMT_MD)
        *view = TRACE_VIEW_EXPLAIN;
}

/* What the traced fault did, from the trace itself (not for the files that
 * hold the trace alone). */
static void trace_outcome(cmd_capture_ctx *c, const trace_result *tr)
{
    static out_fault of; /* large: not on the stack */
    if (!c->vm->os || !c->report || out_from_trace(c->vm->os, tr, &of, NULL) < 0)
        return;
    report_outcome(c->out, c->fmt, &of);
    cmd_tally_outcome(c->sum, &of);
}

int cmd_trace_fault(const cli_options *o, cmd_capture_ctx *c, fl_error *err)
{
    enum trace_format fmt;
    enum trace_view view;
    trace_format_view(o, &fmt, &view);
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
        .explain = view == TRACE_VIEW_EXPLAIN,
    };
    trace_report_options ro = { .function = o->function, .depth = o->depth };
    trace_result *tr = NULL;
    int rc = trace_run(c->vm->t, c->vm->k, &topt, &tr, err);
    if (pl.drawn)
        fprintf(stderr, "\r%-70s\r", "");
    if (tr) {
        trace_report_opt(c->out, fmt, view, tr, &ro);
        trace_outcome(c, tr);
        trace_result_free(tr);
    }
    if (rc < 0)
        fl_error_prefix(err, "tracing the fault");
    return rc;
}

int cmd_trace(const cli_options *o)
{
    return o->gdb ? cmd_capture(o) : cmd_run(o);
}
