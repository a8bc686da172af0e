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

int cmd_trace(const cli_options *o)
{
    return o->gdb ? cmd_capture(o) : cmd_run(o);
}
