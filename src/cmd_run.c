/* cmd_run: `faultline run` and `faultline trace`: boot the bundled VM, let
 * each announced trigger (or the user's program) fault, capture it at every
 * station (or, tracing, at the entry, then single-step it back to user
 * mode), and write the report. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/exclog.h"
#include "faultline/outcome.h"
#include "faultline/scenario.h"
#include "faultline/usersym.h"
#include "faultline/util.h"

typedef struct run_ctx {
    const cli_options *o;
    cmd_vm r;
    cmd_console con;
    FILE *out;
    cmd_output output;
    char ibuf[PATH_MAX];
    bool chrome; /* chrome, folded and svg files hold the trace alone */
    enum report_format fmt;
    bool begun;
    report_meta meta;
    report_summary sum;
    double t0;
    char version[256], qemu[128], kbuf[PATH_MAX];
    fl_error err;
    const char *checked;      /* the scenario whose promises are checked, or NULL */
    int index;                /* which fault of the run (scenario all: 0, 1, ...) */
    int pids[64];             /* --reproducible: the pid captured per fault */
    cmd_repro_idle_ctx ridle; /* --reproducible: the capture's idle hook */
    usersym *syms;            /* the program's function symbols, or NULL */
} run_ctx;

/* The capture's idle callback: read the console; the trigger's (or the
 * program's) faults are over when the console announces the next trigger
 * or init's end. */
static int run_idle(void *ctx)
{
    run_ctx *c = ctx;
    if (cmd_console_drain(&c->con) < 0)
        return -1;
    for (int i = 0; i < c->con.npending; i++)
        if (strncmp(c->con.pending[i], VM_ANNOUNCE_PREFIX, strlen(VM_ANNOUNCE_PREFIX)) == 0 ||
            strncmp(c->con.pending[i], VM_DONE_PREFIX, strlen(VM_DONE_PREFIX)) == 0) {
            c->r.idle_stop = c->o->nprogram ? "the program ended" : "the trigger ended";
            return 1;
        }
    return 0;
}

/* The capture session (at the entry only when tracing) and the outcome
 * session, once. The outcome's waits only read the console: the trigger's
 * end is the capture's business (run_idle). */
static int open_session(run_ctx *c)
{
    const cli_options *o = c->o;
    if (c->r.cs)
        return 0;
    cap_options co = { .stations = o->trace || o->entry_log ? 1u << CAP_ST_ENTRY : cmd_probe_mask(o->probes),
                       .explicit_stations = o->probes != NULL, .timeout_ms = o->timeout_s * 1000,
                       .max_slots = strcmp(vm_accel(c->r.v), "kvm") == 0 ? 4 : 0,
                       .idle = run_idle, .idle_ctx = c };
    out_options oo = { .timeout_ms = co.timeout_ms, .max_slots = co.max_slots, .idle = cmd_console_drain,
                       .idle_ctx = &c->con };
    if (o->reproducible) { /* the trigger announces itself before it faults */
        c->ridle = (cmd_repro_idle_ctx){ .con = &c->con, .cs = &c->r.cs };
        co.idle = oo.idle = cmd_repro_idle;
        co.idle_ctx = oo.idle_ctx = &c->ridle;
    }
    if (cap_session_open(&c->r.cs, c->r.k, c->r.t, &co, &c->err) < 0)
        return -1;
    if (o->entry_log)
        return 0; /* the log gives the entry alone: nothing to follow the fault with */
    cmd_outcome_open(&c->r, &oo);
    return 0;
}

/* --reproducible: the filter is known before the guest runs (cmd_repro.c). */
static int arm_reproducible(run_ctx *c)
{
    if (open_session(c) < 0)
        return -1;
    cap_filter filter;
    cmd_repro_filter(c->o, c->index, &filter);
    c->checked = cmd_repro_scenario(c->o, c->index);
    cap_session_set_filter(c->r.cs, &filter, c->checked);
    return cmd_repro_wait_comm(&c->r, &c->con, filter.comm, c->o->timeout_s * 1000, &c->err);
}

/* The filter is the trigger's own announcement: its pid, its comm (for a
 * user program the shell that announced it execs it, and only the exec
 * gives the task the program's comm: faults of the shell before that are
 * not the program's) and its target address (a program announces none:
 * the user's --addr is applied by the selection, see cmd_capture_selected).
 * --follow-fork leaves the pid out: the program's comm alone takes in the
 * children it forks (a child keeps its parent's comm until it execs).
 * The user's --pid, --comm and --addr replace the announcement's; with any
 * filter of the user's the scenario's own expectations are not checked. */
static int arm_for(run_ctx *c, const vm_trigger *trig)
{
    const cli_options *o = c->o;
    tgt_stop stop;
    if (tgt_interrupt(c->r.t, &stop, 5000, &c->err) < 0 || open_session(c) < 0)
        return -1;
    /* A program's --addr is the selection's (cmd_capture_selected): every
     * fault of the program then reaches it and is counted. */
    cap_filter filter = { .pid = o->pid ? o->pid : o->follow_fork ? 0 : trig->pid,
                          .addr = o->nprogram ? 0 : o->addr ? o->addr : trig->target, .addr_page = o->addr_page };
    snprintf(filter.comm, sizeof filter.comm, "%s", o->comm ? o->comm : trig->comm);
    bool own = o->pid || o->comm || o->addr || cmd_selects_more(o);
    c->checked = o->nprogram || own ? NULL : trig->scenario;
    cap_session_set_filter(c->r.cs, &filter, c->checked);
    cap_session_set_kprobe_live(c->r.cs, c->con.kprobes_listed);
    return vm_console_write(c->r.v, "go\n", &c->err);
}

/* --reproducible: the trigger as the capture saw it (its announcement is
 * checked against the pid at the end, cmd_repro_verify). */
static void repro_fault(void *ctx, const cap_fault *f, report_trigger *rt)
{
    run_ctx *c = ctx;
    cmd_repro_trigger(c->o, c->index, f, rt);
    if (c->index < (int)(sizeof c->pids / sizeof c->pids[0]))
        c->pids[c->index] = f->task.pid;
}

/* --entry-log: every fault of the trigger (or program) from QEMU's
 * exception log (--count N: the first N), until its mm is torn down or the
 * guest ends. */
static int run_entry_log(run_ctx *c, cmd_capture_ctx *cc, const vm_trigger *trig)
{
    const cli_options *o = c->o;
    exclog_capture_options lo = { .log_path = vm_exception_log(c->r.v), .timeout_ms = o->timeout_s * 1000,
                                  .count = cli_given(o, "count") ? (unsigned)o->count : 0,
                                  .addr = o->addr ? o->addr : trig->target, .addr_page = o->addr_page,
                                  .stop = cmd_console_drain, .stop_ctx = &c->con };
    unsigned got;
    if (exclog_capture(c->r.cs, c->r.k, c->r.t, &lo, cmd_log_fault, cc, &got, &c->err) < 0)
        return -1;
    return tgt_running(c->r.t) ? 0 : tgt_resume(c->r.t, &c->err);
}

/* Wait for the next trigger and arm for it (reproducible: armed before it
 * runs, its announcement read at the end). */
static int next_trigger(run_ctx *c, vm_trigger *trig)
{
    char line[256];
    if (c->o->reproducible) {
        memset(trig, 0, sizeof *trig);
        return arm_reproducible(c);
    }
    if (cmd_console_wait(&c->con, c->r.t, VM_ANNOUNCE_PREFIX, line, sizeof line, c->o->timeout_s * 1000, &c->err) < 0 ||
        vm_parse_announcement(line, trig, &c->err) < 0)
        return -1;
    return 0;
}

/* One announced trigger: arm, let it fault, report (and trace) it. */
static int run_one(run_ctx *c)
{
    vm_trigger trig;
    if (next_trigger(c, &trig) < 0)
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
    const cli_options *o = c->o;
    report_trigger rt = { .have = true, .scenario = trig.scenario, .pid = trig.pid, .comm = trig.comm,
                          .page = trig.page, .target = trig.target, .syms = c->syms,
                          .argv = o->nprogram ? (const char *const *)o->program : NULL, .argc = o->nprogram };
    cmd_capture_ctx cc = { .vm = &c->r, .out = c->out, .fmt = c->fmt, .report = !c->chrome, .trigger = &rt,
                           .scenario = c->checked ? scenario_find(c->checked) : NULL, .sum = &c->sum,
                           .on_fault = o->reproducible ? repro_fault : NULL, .on_fault_ctx = c,
                           .select_addr = o->nprogram > 0, .table = cmd_fault_table(o) };
    if (o->entry_log)
        return run_entry_log(c, &cc, &trig);
    if (cmd_capture_loop(o, &cc, &c->err) < 0) {
        if (c->err.code != FL_EINTR && c->err.code != FL_ETIMEOUT)
            cmd_console_explain(&c->con, &c->err);
        return -1;
    }
    /* Reproducible: the next fault's filter is set before the guest runs on. */
    if (o->reproducible && cmd_repro_scenario(o, c->index + 1))
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
    c->sum.exited = st && sscanf(st, " status=%d", &c->sum.exit_status) == 1;
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
    if (kern_open(&c->r.k, c->meta.vmlinux, NULL, &c->err) < 0 ||
        cmd_kernel_source(c->r.k, o->source_dir, &c->err) < 0)
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
    c->meta.kernel = c->version;
    c->meta.qemu = c->qemu;
    c->meta.vmlinux = cmd_guest_file(o->kernel, "FAULTLINE_KERNEL", "vmlinux", c->kbuf, sizeof c->kbuf);
    c->sum.program = o->nprogram > 0;
}

/* The program's symbols, for where in it each fault was; without them
 * the report still names the instruction. */
static void open_program_symbols(run_ctx *c)
{
    fl_error e = { 0 };
    if (c->o->nprogram && usersym_open(&c->syms, c->o->program[0], &e) < 0)
        fprintf(stderr, "faultline: no symbols of the program in this report: %s\n", e.msg);
    else if (c->syms && usersym_count(c->syms) == 0)
        fprintf(stderr, "faultline: %s has no function symbols (stripped?): faults are shown by address only\n",
                c->o->program[0]);
}

/* How many triggers the guest runs: one, or the catalog's (scenario all;
 * --reproducible: its own list, cmd_repro.c). */
static int triggers_expected(const cli_options *o)
{
    int n = 1;
    if (!o->nprogram && strcmp(o->scenario, "all") == 0) {
        n = (int)scenario_count();
        if (o->reproducible)
            for (n = 0; cmd_repro_scenario(o, n); n++)
                ;
    }
    return n;
}

/* What the option table cannot tell alone: --follow-fork needs a program,
 * and the exception log follows one address space. */
static int check_follow_fork(const cli_options *o, fl_error *err)
{
    if (o->follow_fork && !o->nprogram)
        return fl_fail(err, FL_EUSAGE, "--follow-fork follows a program's children: give the program after '--'");
    if (o->follow_fork && o->entry_log)
        return fl_fail(err, FL_EUSAGE, "--follow-fork: the exception log follows the program's own address space "
                       "only; leave out --entry-log");
    return 0;
}

static int run_command(const cli_options *o)
{
    static run_ctx c; /* large (paths, the console's lines): not on the stack */
    run_init(&c, o);
    if (check_follow_fork(o, &c.err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &c.err, NULL);
    if ((o->nprogram && cmd_check_program(o->program[0], &c.err) < 0) || cmd_repro_check(o, &c.err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &c.err, NULL);
    const char *const inputs[][2] = {
        { "--kernel", c.meta.vmlinux },
        { "--initrd", cmd_guest_file(o->initrd, "FAULTLINE_INITRD", "initramfs.cpio.gz", c.ibuf, sizeof c.ibuf) },
        { "the program", o->nprogram ? o->program[0] : NULL },
        { NULL, NULL },
    };
    if (cmd_output_open(&c.output, o, inputs, &c.err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &c.err, NULL);
    open_program_symbols(&c);
    c.out = c.output.f;
    double start = fl_now_s();
    int rc = CMD_EXIT_ENV;
    if (run_boot(&c) == 0) {
        int expect = triggers_expected(o);
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
    rc = cmd_output_close(&c.output, rc, c.begun || c.chrome);
    cmd_vm_cleanup(&c.r);
    usersym_close(c.syms);
    c.syms = NULL;
    return rc;
}

int cmd_run(const cli_options *o)
{
    return o->expect ? cmd_expect(o, run_command) : run_command(o);
}
