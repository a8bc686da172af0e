/* cmd_run: `faultline run` and `faultline trace`: boot the bundled VM, let
 * each announced trigger (or the user's program) fault, capture it at every
 * station (or, tracing, at the entry, then single-step it back to user
 * mode), and write the report. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/outcome.h"
#include "faultline/scenario.h"
#include "faultline/exclog.h"
#include "faultline/trace.h"
#include "faultline/util.h"

typedef struct run_ctx {
    const cli_options *o;
    cmd_vm r;
    cmd_console con;
    FILE *out;
    bool chrome; /* chrome, folded and svg files hold the trace alone */
    enum report_format fmt;
    enum trace_format tfmt;
    enum trace_view tview;
    bool begun;
    report_meta meta;
    report_summary sum;
    out_session *os; /* what each fault did (not while tracing) */
    double t0;
    char version[256], qemu[128], kbuf[PATH_MAX];
    fl_error err;
    int index;                /* which fault of the run (scenario all: 0-2) */
    int pids[64];             /* --reproducible: the pid captured per fault */
    cmd_repro_idle_ctx ridle; /* --reproducible: the capture's idle hook */
} run_ctx;

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

/* Single-step the fault from where the capture left the guest (the entry
 * station) and write the trace; what was stepped is written even when the
 * trace ends early. */
static int run_trace(run_ctx *c)
{
    const cli_options *o = c->o;
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
        .explain = c->tview == TRACE_VIEW_EXPLAIN,
    };
    trace_report_options ro = { .function = o->function, .depth = o->depth };
    trace_result *tr = NULL;
    int rc = trace_run(c->r.t, c->r.k, &topt, &tr, &c->err);
    if (pl.drawn)
        fprintf(stderr, "\r%-70s\r", "");
    if (tr) {
        trace_report_opt(c->out, c->tfmt, c->tview, tr, &ro);
        static out_fault of; /* what the traced fault did, from the trace */
        if (c->os && !c->chrome && out_from_trace(c->os, tr, &of, NULL) == 0) {
            report_outcome(c->out, c->fmt, &of);
            c->sum.checks += (unsigned)of.nchecks;
            c->sum.failed += (unsigned)out_checks_failed(&of);
        }
        trace_result_free(tr);
    }
    if (rc < 0)
        fl_error_prefix(&c->err, "tracing the fault");
    return rc;
}

/* The filter is the trigger's own announcement: its pid, its comm (for a
 * user program the shell that announced it execs it, and only the exec
 * gives the task the program's comm: faults of the shell before that are
 * not the program's) and its target address (a program announces none). */
static int open_session(run_ctx *c)
{
    if (c->r.cs)
        return 0;
    cap_options co = { .stations = c->o->trace || c->o->entry_log ? 1u << CAP_ST_ENTRY
                                                                  : cmd_probe_mask(c->o->probes),
                       .explicit_stations = c->o->probes != NULL, .timeout_ms = c->o->timeout_s * 1000,
                       .max_slots = strcmp(vm_accel(c->r.v), "kvm") == 0 ? 4 : 0,
                       .idle = cmd_console_drain, .idle_ctx = &c->con };
    if (c->o->reproducible) {
        c->ridle = (cmd_repro_idle_ctx){ .con = &c->con, .cs = &c->r.cs };
        co.idle = cmd_repro_idle;
        co.idle_ctx = &c->ridle;
    }
    if (cap_session_open(&c->r.cs, c->r.k, c->r.t, &co, &c->err) < 0)
        return -1;
    if (c->o->entry_log)
        return 0; /* the log gives the entry alone: nothing to follow the fault with */
    /* What each fault did (outcome.h): optional, said when it cannot be. */
    out_options oo = { .timeout_ms = co.timeout_ms, .max_slots = co.max_slots, .idle = co.idle,
                       .idle_ctx = co.idle_ctx };
    fl_error oe = { 0 };
    if (out_session_open(&c->os, c->r.k, c->r.t, &oo, &oe) < 0)
        fprintf(stderr, "faultline: no outcome in this report: %s\n", oe.msg);
    if (c->os)
        cap_session_on_stop(c->r.cs, out_on_stop, c->os);
    return 0;
}

/* --reproducible: the filter is known before the guest runs (cmd_repro.c). */
static int arm_reproducible(run_ctx *c)
{
    if (open_session(c) < 0)
        return -1;
    cap_filter filter;
    cmd_repro_filter(c->o, c->index, &filter);
    cap_session_set_filter(c->r.cs, &filter, cmd_repro_scenario(c->o, c->index));
    return cmd_repro_wait_comm(&c->r, &c->con, filter.comm, c->o->timeout_s * 1000, &c->err);
}

static int arm_for(run_ctx *c, const vm_trigger *trig)
{
    tgt_stop stop;
    if (tgt_interrupt(c->r.t, &stop, 5000, &c->err) < 0)
        return -1;
    if (open_session(c) < 0)
        return -1;
    cap_filter filter = { .pid = trig->pid, .addr = trig->target };
    snprintf(filter.comm, sizeof filter.comm, "%s", trig->comm);
    cap_session_set_filter(c->r.cs, &filter, c->o->nprogram ? NULL : trig->scenario);
    cap_session_set_kprobe_live(c->r.cs, c->con.kprobes_listed);
    return vm_console_write(c->r.v, "go\n", &c->err);
}

/* --entry-log: every fault of the trigger (or program) from QEMU's
 * exception log, until its mm is torn down or the guest ends. */
typedef struct run_log_sink {
    run_ctx *c;
    report_trigger rt;
} run_log_sink;

static int report_log_fault(void *ctx, const cap_fault *f)
{
    run_log_sink *k = ctx;
    report_fault(k->c->out, k->c->fmt, &k->rt, f, k->c->r.cs);
    fflush(k->c->out);
    cmd_tally(&k->c->sum, f);
    k->c->sum.faults++; /* a fault read from the log carries no checks */
    return 0;
}

static int run_entry_log(run_ctx *c, const vm_trigger *trig)
{
    run_log_sink k = { c, { .have = true, .scenario = trig->scenario, .pid = trig->pid, .comm = trig->comm,
                            .page = trig->page, .target = trig->target } };
    exclog_capture_options lo = { .log_path = vm_exception_log(c->r.v), .timeout_ms = c->o->timeout_s * 1000,
                                  .addr = trig->target, .stop = cmd_console_drain, .stop_ctx = &c->con };
    unsigned got;
    if (exclog_capture(c->r.cs, c->r.k, c->r.t, &lo, report_log_fault, &k, &got, &c->err) < 0)
        return -1;
    return tgt_running(c->r.t) ? 0 : tgt_resume(c->r.t, &c->err);
}

/* One announced trigger: arm, let it fault, report (and trace) it. */
static int run_one(run_ctx *c)
{
    char line[256];
    vm_trigger trig;
    if (c->o->reproducible ? arm_reproducible(c) < 0
                           : (cmd_console_wait(&c->con, c->r.t, VM_ANNOUNCE_PREFIX, line, sizeof line,
                                               c->o->timeout_s * 1000, &c->err) < 0 ||
                              vm_parse_announcement(line, &trig, &c->err) < 0))
        return -1;
    if (!c->begun) {
        c->meta.boot_seconds = fl_now_s() - c->t0;
        if (!c->chrome)
            report_begin(c->out, c->fmt, &c->meta);
        if (!c->chrome && c->o->reproducible)
            cmd_repro_note(c->out, c->fmt);
        c->begun = true;
    }
    if (!c->o->reproducible && arm_for(c, &trig) < 0)
        return -1;
    if (c->o->entry_log)
        return run_entry_log(c, &trig);
    cap_fault f;
    int crc = cap_fault_capture(c->r.cs, &f, &c->err);
    static out_fault of;
    fl_error oe = { 0 };
    /* Tracing, the trace itself runs the fault to its end (run_trace). */
    bool follow = crc == 0 && c->os && !c->o->trace;
    int orc = follow ? out_finish(c->os, &f, &of, &oe) : 0;
    if (follow)
        out_check_scenario(&of, c->o->nprogram ? NULL
                                : scenario_find(c->o->reproducible ? cmd_repro_scenario(c->o, c->index) : trig.scenario));
    report_trigger rt = { .have = true, .scenario = trig.scenario, .pid = trig.pid, .comm = trig.comm,
                          .page = trig.page, .target = trig.target };
    if (c->o->reproducible) {
        cmd_repro_trigger(c->o, c->index, &f, &rt);
        if (c->index < (int)(sizeof c->pids / sizeof c->pids[0]))
            c->pids[c->index] = f.task.pid;
    }
    rt.outcome = follow ? of.classification : NULL;
    if ((f.st[0].hit || f.nchecks) && !c->chrome) {
        report_fault(c->out, c->fmt, &rt, &f, c->r.cs);
        if (follow)
            report_outcome(c->out, c->fmt, &of);
        fflush(c->out); /* each fault's records as soon as they exist */
    }
    cmd_tally(&c->sum, &f);
    if (follow) {
        c->sum.checks += (unsigned)of.nchecks;
        c->sum.failed += (unsigned)out_checks_failed(&of);
    }
    if (orc < 0 && (oe.code == FL_EINTR || oe.code == FL_ECLOSED)) {
        c->err = oe; /* a signal or QEMU gone: the run ends; anything else is a failed check */
        crc = -1;
    }
    if (crc < 0) {
        if (c->err.code != FL_EINTR && c->err.code != FL_ETIMEOUT)
            cmd_console_explain(&c->con, &c->err);
        return -1;
    }
    if (c->o->trace && run_trace(c) < 0)
        return -1;
    /* Reproducible: the next fault's filter is set before the guest runs on. */
    if (c->o->reproducible && cmd_repro_scenario(c->o, c->index + 1))
        return 0;
    return tgt_resume(c->r.t, &c->err);
}

/* The trigger (or the user's program) checks its own data after the
 * fault; init reports its exit status. */
static int run_end(run_ctx *c)
{
    char line[256];
    if (cmd_console_wait(&c->con, c->r.t, VM_DONE_PREFIX, line, sizeof line, c->o->timeout_s * 1000, &c->err) < 0)
        return CMD_EXIT_ENV;
    int npids = c->index < 64 ? c->index : 64;
    if (c->o->reproducible && cmd_repro_verify(&c->con, c->o, c->pids, npids, &c->err) < 0)
        return CMD_EXIT_ENV;
    int rc = c->sum.failed ? CMD_EXIT_CHECKS : 0;
    const char *st = strstr(line, " status=");
    if (!st || strcmp(st, " status=0") != 0) {
        fprintf(stderr, "faultline: the guest's program did not end well (%s)\n", line);
        rc = CMD_EXIT_CHECKS;
    }
    return rc;
}

/* Open the kernel and boot; the guest runs to its first announcement. */
static int run_boot(run_ctx *c)
{
    const cli_options *o = c->o;
    char append[1024] = "";
    if (!o->nprogram)
        snprintf(append, sizeof append, "faultline.scenario=%s", o->scenario);
    cmd_append_kprobes(append, sizeof append);
    if (o->reproducible)
        cmd_repro_append(append, sizeof append);
    if (kern_open(&c->r.k, c->meta.vmlinux, NULL, &c->err) < 0)
        return -1;
    cmd_kernel_version(c->meta.vmlinux, c->r.k, c->version, sizeof c->version);
    vm_qemu_version(NULL, c->qemu, sizeof c->qemu, NULL);
    if (cmd_boot_vm(o, &c->r, append, sizeof append, &c->t0, &c->err) < 0)
        return -1;
    c->meta.accel = vm_accel(c->r.v);
    c->meta.gdb = vm_gdb_address(c->r.v);
    cmd_console_init(&c->con, c->r.v);
    return 0;
}

static void run_init(run_ctx *c, const cli_options *o)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->chrome = o->trace && (strcmp(o->format, "chrome") == 0 || strcmp(o->format, "folded") == 0 ||
                             strcmp(o->format, "svg") == 0);
    if (!c->chrome)
        report_parse_format(o->format, &c->fmt);
    if (o->trace) {
        trace_parse_format(o->format, &c->tfmt);
        if (o->view)
            trace_parse_view(o->view, &c->tview);
        else if (c->tfmt == TRACE_FMT_MD)
            c->tview = TRACE_VIEW_EXPLAIN;  /* the worksheet's trace is the narrative */
    }
    c->meta.kernel = c->version;
    c->meta.qemu = c->qemu;
    c->meta.vmlinux = cmd_guest_file(o->kernel, "FAULTLINE_KERNEL", "vmlinux", c->kbuf, sizeof c->kbuf);
}

static int run_command(const cli_options *o)
{
    static run_ctx c; /* large (paths, the console's lines): not on the stack */
    run_init(&c, o);
    if ((o->nprogram && cmd_check_program(o->program[0], &c.err) < 0) || cmd_repro_check(o, &c.err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &c.err, NULL);
    if (cmd_open_output(o, &c.out) < 0)
        return CMD_EXIT_ENV;
    double start = fl_now_s();
    int rc = CMD_EXIT_ENV;
    if (run_boot(&c) == 0) {
        int expect = 1;
        if (!o->nprogram && strcmp(o->scenario, "all") == 0) {
            expect = (int)scenario_count();
            if (o->reproducible) /* its own list (cmd_repro.c) */
                for (expect = 0; cmd_repro_scenario(o, expect); expect++)
                    ;
        }
        int i = 0;
        while (i < expect && (c.index = i, run_one(&c) == 0))
            i++;
        c.index = i;
        if (i == expect)
            rc = run_end(&c);
    }
    c.sum.seconds = fl_now_s() - start;
    rc = cmd_conclude(rc, &c.err, &c.sum);
    /* Once the kernel is known the report is always whole: header, what was
     * captured, and a summary naming what ended the run. */
    if (!c.begun && c.r.k && !c.chrome) {
        report_begin(c.out, c.fmt, &c.meta);
        c.begun = true;
    }
    if (c.begun && !c.chrome)
        report_end(c.out, c.fmt, &c.sum);
    rc = cmd_close_output(c.out, o, rc);
    out_session_close(c.os);
    cmd_vm_cleanup(&c.r);
    return rc;
}

int cmd_run(const cli_options *o)
{
    return o->expect ? cmd_expect(o, run_command) : run_command(o);
}
