/* cmd: the commands behind the option tables (src/cmd_*.c) and what they
 * share: the stop signals, the report file, the guest's files and console.
 * Only the command line uses these; it alone owns the terminal and the
 * signal handlers (library modules report through callbacks and fl_error). */
#ifndef FAULTLINE_CMD_H
#define FAULTLINE_CMD_H
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include "faultline/capture.h"
#include "faultline/cli.h"
#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/outcome.h"
#include "faultline/report.h"
#include "faultline/target.h"
#include "faultline/vm.h"

enum { CMD_EXIT_CHECKS = 1, CMD_EXIT_ENV = 2 };

/* The handlers of cli_command_rows (return the exit status). */
int cmd_run(const cli_options *o);     /* run, and trace on the bundled VM */
int cmd_trace(const cli_options *o);   /* trace: cmd_run, or attached with --gdb */
int cmd_capture(const cli_options *o);
int cmd_boot(const cli_options *o);
int cmd_diff(const cli_options *o);    /* cmd_diff.c */
int cmd_matrix(const cli_options *o);  /* cmd_matrix.c */
/* Compare two JSON Lines files, write the diff (enum diff_format as int) to
 * out; 0 the same, 1 different, 2 unreadable (said on stderr). */
int cmd_diff_files(const char *a, const char *b, int format, FILE *out);

/* ---- stop signals (cmd_signal.c) ---- */
/* The signal that asked us to stop (0: none). The first INT/TERM/HUP/QUIT
 * makes every wait give up so the report is still written; a second one
 * kills QEMU and exits 128+N at once. */
extern volatile sig_atomic_t cmd_stop_signal;
void cmd_install_signals(void);
/* Non-zero once a stop signal arrived (a cancel/idle callback). */
int cmd_check_stop(void *ctx);
/* FL_EINTR naming the signal, or 0 if none arrived. */
int cmd_stopped_by_signal(fl_error *err);

/* ---- outcome (cmd_common.c) ---- */
/* Exit status and the one sentence on stderr for how a command ended: a
 * stop signal wins over the error it caused on the way out. */
int cmd_conclude(int rc, fl_error *err, report_summary *sum);
void cmd_tally(report_summary *sum, const cap_fault *f);
/* The outcome's checks added to the summary. */
void cmd_tally_outcome(report_summary *sum, const out_fault *of);
/* --probes LIST (already checked by the parser) -> station mask; 0: all. */
unsigned cmd_probe_mask(const char *list);

/* ---- the report's destination (cmd_output.c) ---- */
typedef struct cmd_output {
    FILE *f;                 /* the stream to write the report to */
    int fd;
    const char *given;       /* as the user named it, for messages */
    char path[4096];         /* the file itself (a symbolic link resolved) */
    char tmp[4096];          /* the temporary file beside it until renamed, else "" */
    double grace_deadline;   /* after a stop signal: when writes give up */
} cmd_output;
/* Standard output, or -o FILE (see cmd_output.c for how it is kept safe).
 * inputs: {option, path} pairs the output must not be, ended by {NULL}. */
int cmd_output_open(cmd_output *out, const cli_options *o, const char *const inputs[][2], fl_error *err);
/* Close. A file that nothing was written to replaces the target only if rc
 * is 0 or 1, or a signal's with report_written (else the old file stays).
 * A report that could not be written turns 0/1 into 2. */
int cmd_output_close(cmd_output *out, int rc, bool report_written);

/* ---- the bundled guest (cmd_guest.c) ---- */
/* Where the guest's files are when neither an option nor the environment
 * names them (main.c sets it: the source tree's build/vm or PKGDATADIR). */
void cmd_set_guest_dir(const char *dir);
const char *cmd_guest_file(const char *given, const char *env, const char *name, char *buf, size_t cap);
void cmd_kernel_version(const char *vmlinux, kern *k, char *buf, size_t cap);
/* Source lines for a kernel built elsewhere: --source-dir when given (an
 * error if it is not a directory); else, when the paths its DWARF records
 * do not resolve, Debian's matching linux-source-X unpacked once into the
 * cache, or one note on stderr saying why there will be no source text. */
int cmd_kernel_source(kern *k, const char *source_dir, fl_error *err);
/* Can the guest run this program (a static x86-64 ELF executable)? One
 * sentence with the fix if not. */
int cmd_check_program(const char *program, fl_error *err);

typedef struct cmd_vm {
    kern *k;
    vm *v;
    tgt *t;
    cap_session *cs;
    out_session *os;       /* what each fault did (outcome.h); NULL: none */
    double deadline;       /* fl_now_s() at which waits give up (0: none) */
    const char *idle_stop; /* why an idle callback ended a wait, or NULL */
    char program_cpio[4096];
} cmd_vm;
/* Start the guest (with o->program appended), connect, let it run. */
int cmd_boot_vm(const cli_options *o, cmd_vm *r, char *append, size_t acap, double *t0, fl_error *err);
void cmd_vm_cleanup(cmd_vm *r);

/* ---- a QEMU the user started (cmd_capture.c) ---- */
/* Open --vmlinux, connect to --gdb (which stops the guest) and open a
 * capture session for these stations with the filters of o. Its waits give
 * up on a stop signal or at r->deadline. */
int cmd_attach(const cli_options *o, cmd_vm *r, unsigned stations, fl_error *err);
/* Open r->os on r's kernel and target and make it the capture session's
 * stop hook. Optional: when it cannot open, r->os stays NULL and stderr
 * says the report has no outcome. */
void cmd_outcome_open(cmd_vm *r, const out_options *oo);

/* ---- which faults (cmd_select.c) ---- */
/* Does o ask for more than the capture's own filter (pid, comm, address)? */
bool cmd_selects_more(const cli_options *o);
/* Capture faults until one passes --range and --fault-mode (and --addr
 * when select_addr: the capture's own filter then leaves it out, so every
 * fault of the process reaches here and is counted in *seen) and is at
 * least the --nth that did (*matched counts them across calls); the others
 * are added to *passed_over. The guest is left stopped as cap_fault_capture
 * leaves it; on -1, *f holds what the last capture read. */
int cmd_capture_selected(cap_session *cs, const cli_options *o, bool select_addr, cap_fault *f, unsigned *seen,
                         unsigned *matched, unsigned *passed_over, fl_error *err);
/* --count 0 with the entry station alone (or the exception log): one table
 * row per fault instead of the station-by-station report. */
bool cmd_fault_table(const cli_options *o);

/* What the capture loop writes to and counts in. */
typedef struct cmd_capture_ctx {
    cmd_vm *vm;                   /* its session, target, kernel and outcome */
    FILE *out;
    enum report_format fmt;
    bool report;                  /* write the fault's records (not for chrome,
                                     folded, svg: the trace alone) */
    const report_trigger *trigger;
    const scenario_def *scenario; /* whose promises the outcome checks, or NULL */
    report_summary *sum;
    /* Called after each capture, before its report (may be NULL): what
     * only the captured fault tells (run --reproducible: the trigger). */
    void (*on_fault)(void *ctx, const cap_fault *f, report_trigger *rt);
    void *on_fault_ctx;
    bool select_addr;             /* --addr is the selection's, not the capture
                                     filter's (run -- PROGRAM: see cmd_capture_selected) */
    bool table;                   /* one row per fault (cmd_fault_table) */
    unsigned rows;                /* the table's rows written so far */
} cmd_capture_ctx;
/* --count faults, each selected (cmd_capture_selected), written and
 * flushed as it is captured, followed to its end by the outcome session
 * (vm->os) when there is one, and traced when o->trace (the trace then
 * gives the outcome: out_from_trace). --count 0 ends
 * normally when an idle callback ends the wait (vm->idle_stop says why:
 * the deadline, the program's end), on the capture's timeout or the
 * guest's end; --count N that an idle callback cuts short is an error
 * saying how many of N were captured. */
int cmd_capture_loop(const cli_options *o, cmd_capture_ctx *c, fl_error *err);
/* An exclog_fault_fn (exclog.h) with a cmd_capture_ctx: a fault read from
 * QEMU's exception log, written (with c->trigger) and counted. */
int cmd_log_fault(void *ctx, const cap_fault *f);

/* ---- tracing (cmd_trace.c) ---- */
/* Single-step the fault from where the capture left the guest (the entry
 * station) back to user mode, with o's mode, limits, view, --function and
 * --depth, and write the trace to c->out in o's format; what was stepped is
 * written even when the trace ends early. With c->vm->os and c->report the
 * outcome read from the trace follows it, its checks counted in c->sum. */
int cmd_trace_fault(const cli_options *o, cmd_capture_ctx *c, fl_error *err);

/* ---- the guest's serial console while it runs (cmd_console.c) ---- */
#define CMD_PENDING_MAX 16
typedef struct cmd_console {
    vm *v;
    char pending[CMD_PENDING_MAX][256]; /* announcements and DONE lines not consumed yet */
    int npending;
    bool panic;
    char panic_line[256];
    int kprobes_listed[CAP_ST_COUNT]; /* from FAULTLINE-KPROBES lines: 1, 0, -1 unknown */
} cmd_console;
void cmd_console_init(cmd_console *c, vm *v);
/* Ask the guest's init to report its kprobe blacklist for every station. */
void cmd_append_kprobes(char *append, size_t cap);
/* An idle callback: read what the console has; -1 on a stop signal, EOF
 * or a kernel panic. */
int cmd_console_drain(void *ctx);
/* The stub went away: name a panic if the console's last words hold one. */
void cmd_console_explain(cmd_console *c, fl_error *err);
/* Wait (guest running) for a console line starting with prefix. */
int cmd_console_wait(cmd_console *c, tgt *t, const char *prefix, char *out, size_t cap, int timeout_ms, fl_error *err);

/* ---- run --reproducible (cmd_repro.c: why it arms before the boot) ---- */
/* run --expect FILE / --update-expect (cmd_expect.c): `run` is the command
 * itself, called with JSON output to a temporary file. */
int cmd_expect(const cli_options *o, int (*run)(const cli_options *o));
int cmd_repro_check(const cli_options *o, fl_error *err);
bool cmd_repro_supports(const char *scenario); /* its target known in advance */
void cmd_repro_append(char *append, size_t cap);          /* faultline.go=auto */
const char *cmd_repro_scenario(const cli_options *o, int index);
void cmd_repro_filter(const cli_options *o, int index, cap_filter *f);
void cmd_repro_trigger(const cli_options *o, int index, const cap_fault *f, report_trigger *rt);
int cmd_repro_wait_comm(cmd_vm *r, cmd_console *con, const char *comm, int timeout_ms, fl_error *err);
int cmd_repro_verify(cmd_console *con, const cli_options *o, const int *pids, int n, fl_error *err);
typedef struct cmd_repro_idle_ctx {
    cmd_console *con;
    cap_session **cs;
} cmd_repro_idle_ctx;
int cmd_repro_idle(void *ctx);
/* After the report's header: what may still differ between runs, and why. */
void cmd_repro_note(FILE *out, enum report_format fmt);

#endif
