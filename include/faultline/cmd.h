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
#include "faultline/report.h"
#include "faultline/target.h"
#include "faultline/vm.h"

enum { CMD_EXIT_CHECKS = 1, CMD_EXIT_ENV = 2 };

/* The handlers of cli_command_rows (return the exit status). */
int cmd_run(const cli_options *o);     /* run and trace */
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
/* --probes LIST (already checked by the parser) -> station mask; 0: all. */
unsigned cmd_probe_mask(const char *list);
/* The report stream: stdout, or -o FILE. */
int cmd_open_output(const cli_options *o, FILE **out);
/* Close it; a report that could not be written turns success into 2. */
int cmd_close_output(FILE *out, const cli_options *o, int rc);

/* ---- the bundled guest (cmd_guest.c) ---- */
/* Where the guest's files are when neither an option nor the environment
 * names them (main.c sets it: the source tree's build/vm or PKGDATADIR). */
void cmd_set_guest_dir(const char *dir);
const char *cmd_guest_file(const char *given, const char *env, const char *name, char *buf, size_t cap);
void cmd_kernel_version(const char *vmlinux, kern *k, char *buf, size_t cap);
/* Can the guest run this program (a static x86-64 ELF executable)? One
 * sentence with the fix if not. */
int cmd_check_program(const char *program, fl_error *err);

typedef struct cmd_vm {
    kern *k;
    vm *v;
    tgt *t;
    cap_session *cs;
    char program_cpio[4096];
} cmd_vm;
/* Start the guest (with o->program appended), connect, let it run. */
int cmd_boot_vm(const cli_options *o, cmd_vm *r, char *append, size_t acap, double *t0, fl_error *err);
void cmd_vm_cleanup(cmd_vm *r);

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
