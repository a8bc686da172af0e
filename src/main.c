/* faultline: the command line. Parses options, wires vm, target, kernel,
 * capture and report together, and maps outcomes to exit codes:
 *   0 every check held, 1 a check failed, 2 usage or environment error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faultline/capture.h"
#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/report.h"
#include "faultline/target.h"
#include "faultline/trace.h"
#include "faultline/util.h"
#include "faultline/vm.h"

#ifndef FAULTLINE_SRCDIR
#define FAULTLINE_SRCDIR "."
#endif
#define FAULTLINE_VERSION "0.1.0"

enum { EXIT_CHECKS = 1, EXIT_ENV = 2 };

/* The CLI's options: the program's only global state. */
typedef struct options {
    const char *scenario;
    const char *accel;
    const char *format;
    const char *output;
    const char *kernel;
    const char *initrd;
    const char *gdb;
    const char *comm;
    const char *probes;
    int pid;
    uint64_t addr;
    bool addr_page;
    int count;
    int timeout_s;
    char **program; /* after "--" */
    int nprogram;
    /* trace (faultline trace, or run --trace) */
    bool trace;
    const char *until;
    const char *over;
    const char *mode;
    const char *view;
    int max_steps;
} options;

/* Which signal asked us to stop: the one piece of state a signal handler
 * touches. The first SIGINT/SIGTERM/SIGHUP makes every wait give up, so the
 * report of what was captured is still written; a second one ends at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (stop_signal) {
        vm_kill_all(); /* async-signal-safe: kill + waitpid */
        _exit(128 + sig);
    }
    stop_signal = sig;
}

static void install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: a blocked poll returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static int stopped_by_signal(fl_error *err)
{
    if (!stop_signal)
        return 0;
    const char *abbrev = sigabbrev_np(stop_signal);
    return fl_fail(err, FL_EINTR, "interrupted by SIG%s", abbrev ? abbrev : "?");
}

static void usage(FILE *o)
{
    fputs("usage: faultline COMMAND [OPTIONS]\n"
          "\n"
          "Watch the Linux kernel handle a page fault, from the hardware up, with live values.\n"
          "\n"
          "commands:\n"
          "  run       boot the bundled VM, fault, capture, print the verified report\n"
          "  trace     the same, then single-step the fault path back to user mode\n"
          "  capture   the same capture against a QEMU you started (-s / -gdb)\n"
          "  boot      boot the bundled VM and print the trigger's announcement (smoke test)\n"
          "  version   print the version and what it was tested against\n"
          "\n"
          "'faultline COMMAND --help' lists a command's options.\n"
          "exit status: 0 every check held, 1 a check failed (or the guest's program\n"
          "reported a failure), 2 usage or environment error, 128+N a signal.\n",
          o);
}

static void usage_run(FILE *o)
{
    fputs("usage: faultline run [--scenario write|read|kernel-write|write-forked|all] [--accel auto|tcg|kvm]\n"
          "                     [--format text|md|json] [-o|--output FILE] [--probes LIST] [--timeout SEC]\n"
          "                     [--kernel VMLINUX] [--initrd CPIO] [-- PROGRAM [ARGS]]\n"
          "\n"
          "Boots the bundled VM, runs the scenario's trigger (or PROGRAM, a static x86-64\n"
          "binary, filtered by its own process), stops at each station of the fault path,\n"
          "and prints the report.\n"
          "  --scenario S   write (default), read, kernel-write, write-forked (a forked child\n"
          "                 faults on the same address first: it must be passed over), or all\n"
          "                 (write, read and kernel-write in one boot)\n"
          "  --accel A      tcg (default), kvm, or auto (kvm only if a bounded probe boots)\n"
          "  --format F     text (default), md (the worksheet), json (JSON Lines)\n"
          "  -o, --output FILE  write the report to FILE instead of standard output\n"
          "  --probes LIST  stations to stop at, comma-separated function names (default: all)\n"
          "  --timeout SEC  how long one fault may take to appear and pass (default 60)\n"
          "  --trace        capture at the entry only, then single-step the fault back to\n"
          "                 user mode (see 'faultline trace --help' for --mode, --until,\n"
          "                 --max-steps, --over and --view)\n"
          "  --kernel PATH  vmlinux to boot (default $FAULTLINE_KERNEL or build/vm/vmlinux)\n"
          "  --initrd PATH  initramfs (default $FAULTLINE_INITRD or build/vm/initramfs.cpio.gz)\n",
          o);
}

static void usage_trace(FILE *o)
{
    fputs("usage: faultline trace [--scenario S] [--accel A] [--mode single|fast] [--until SYMBOL]\n"
          "                       [--max-steps N] [--over FUNC,...] [--view line|insn|tree]\n"
          "                       [--format text|md|json|chrome] [-o|--output FILE] [--timeout SEC]\n"
          "                       [--kernel VMLINUX] [--initrd CPIO] [-- PROGRAM [ARGS]]\n"
          "\n"
          "Boots the bundled VM, captures the fault at asm_exc_page_fault (CR2, the\n"
          "hardware frame) and single-steps it until it is back in user mode, with each\n"
          "instruction's file:line, source, disassembly and the registers it changed.\n"
          "Same as 'faultline run --trace'.\n"
          "  --mode M       single (default: every instruction stops) or fast (runs from\n"
          "                 branch to branch; the same instruction sequence)\n"
          "  --until SYMBOL stop when the pc reaches SYMBOL instead of user mode\n"
          "  --max-steps N  stop after N instructions (default 1000000)\n"
          "  --over LIST    run through these callees at full speed (comma-separated)\n"
          "  --view V       line (default: one entry per source line, t=0, t=1, ...),\n"
          "                 insn (every instruction) or tree (calls with counts)\n"
          "  --format F     text (default), md (the worksheet's trace), json (JSON Lines,\n"
          "                 \"step\" records), chrome (trace-event JSON for Perfetto)\n"
          "  -o, --output FILE  write to FILE instead of standard output\n"
          "  --scenario, --accel, --timeout, --kernel, --initrd: as for run\n",
          o);
}

static void usage_capture(FILE *o)
{
    fputs("usage: faultline capture --gdb unix:PATH|HOST:PORT --vmlinux PATH [--comm NAME] [--pid N]\n"
          "                         [--addr VA] [--page] [--probes LIST] [--count N] [--timeout SEC]\n"
          "                         [--format text|md|json] [-o FILE]\n"
          "\n"
          "Attaches to a QEMU gdbstub you started, captures COUNT filtered faults, detaches.\n"
          "  --gdb ADDR     the stub: unix:/path/to/socket or host:port\n"
          "  --vmlinux PATH the guest's kernel, with DWARF (CONFIG_DEBUG_INFO)\n"
          "  --comm NAME    only faults of tasks with this comm\n"
          "  --pid N        only faults of this pid\n"
          "  --addr VA      only faults on this address (with --page: on its 4 KiB page)\n"
          "  --count N      faults to capture (default 1)\n"
          "  --probes, --timeout, --format, -o/--output: as for run\n",
          o);
}

static void usage_boot(FILE *o)
{
    fputs("usage: faultline boot [--scenario S] [--accel A] [--kernel PATH] [--initrd PATH] [--timeout SEC]\n"
          "\n"
          "Boots the bundled VM, prints the trigger's announcement and the boot time, lets\n"
          "the trigger fault without stopping it, and exits when the guest is done.\n",
          o);
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *v)
{
    uint64_t x;
    if (parse_u64(s, &x) < 0 || x < (uint64_t)lo || x > (uint64_t)hi)
        return -1;
    *v = (int)x;
    return 0;
}

static int parse_options(int argc, char **argv, const char *cmd, options *o)
{
    enum { O_SCEN = 256, O_ACCEL, O_FORMAT, O_KERNEL, O_INITRD, O_GDB, O_VMLINUX, O_COMM, O_PID, O_ADDR,
           O_PAGE, O_PROBES, O_COUNT, O_TIMEOUT, O_HELP, O_TRACE, O_UNTIL, O_OVER, O_MODE, O_VIEW, O_MAXSTEPS };
    static const struct option longopts[] = {
        { "scenario", required_argument, 0, O_SCEN }, { "accel", required_argument, 0, O_ACCEL },
        { "format", required_argument, 0, O_FORMAT }, { "output", required_argument, 0, 'o' },
        { "kernel", required_argument, 0, O_KERNEL }, { "initrd", required_argument, 0, O_INITRD },
        { "gdb", required_argument, 0, O_GDB }, { "vmlinux", required_argument, 0, O_VMLINUX },
        { "comm", required_argument, 0, O_COMM }, { "pid", required_argument, 0, O_PID },
        { "addr", required_argument, 0, O_ADDR }, { "page", no_argument, 0, O_PAGE },
        { "probes", required_argument, 0, O_PROBES }, { "count", required_argument, 0, O_COUNT },
        { "timeout", required_argument, 0, O_TIMEOUT }, { "help", no_argument, 0, O_HELP },
        { "trace", no_argument, 0, O_TRACE }, { "until", required_argument, 0, O_UNTIL },
        { "over", required_argument, 0, O_OVER }, { "mode", required_argument, 0, O_MODE },
        { "view", required_argument, 0, O_VIEW }, { "max-steps", required_argument, 0, O_MAXSTEPS },
        { 0, 0, 0, 0 },
    };
    /* Which options each command takes. */
    const char *allowed =
        strcmp(cmd, "run") == 0       ? "scenario accel format output kernel initrd probes timeout help trace until over mode view max-steps"
        : strcmp(cmd, "trace") == 0   ? "scenario accel format output kernel initrd timeout help trace until over mode view max-steps"
        : strcmp(cmd, "capture") == 0 ? "gdb vmlinux comm pid addr page probes count timeout format output help"
                                      : "scenario accel kernel initrd timeout help";
    o->scenario = "write";
    o->accel = "tcg";
    o->format = "text";
    o->count = 1;
    o->timeout_s = 60;
    optind = 1;
    opterr = 0;
    int c, idx;
    while ((c = getopt_long(argc, argv, "+o:", longopts, &idx)) != -1) {
        if (c == '?') {
            fprintf(stderr, "faultline %s: unknown option or missing value: %s (see 'faultline %s --help')\n", cmd,
                    argv[optind - 1], cmd);
            return -1;
        }
        const char *name = c == 'o' ? "output" : NULL;
        for (const struct option *l = longopts; !name && l->name; l++)
            if (l->val == c)
                name = l->name;
        char word[32];
        snprintf(word, sizeof word, "%s", name);
        const char *hit = strstr(allowed, word);
        size_t wl = strlen(word);
        if (!hit || (hit[wl] != ' ' && hit[wl] != '\0')) {
            fprintf(stderr, "faultline %s: option --%s does not apply to this command (see 'faultline %s --help')\n",
                    cmd, word, cmd);
            return -1;
        }
        switch (c) {
        case O_HELP: return 1;
        case O_SCEN: o->scenario = optarg; break;
        case O_ACCEL: o->accel = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case 'o': o->output = optarg; break;
        case O_KERNEL: case O_VMLINUX: o->kernel = optarg; break;
        case O_INITRD: o->initrd = optarg; break;
        case O_GDB: o->gdb = optarg; break;
        case O_COMM:
            if (strlen(optarg) > 15) {
                fprintf(stderr, "faultline: --comm %s is longer than a task's comm (15 characters)\n", optarg);
                return -1;
            }
            o->comm = optarg;
            break;
        case O_PID:
            if (parse_int(optarg, 1, 4194304, &o->pid) < 0) {
                fprintf(stderr, "faultline: --pid needs a process id (1 to 4194304), not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_ADDR:
            if (parse_u64(optarg, &o->addr) < 0 || o->addr == 0) {
                fprintf(stderr, "faultline: --addr needs a non-zero address such as 0x7f0000000100, not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_PAGE: o->addr_page = true; break;
        case O_PROBES: o->probes = optarg; break;
        case O_TRACE: o->trace = true; break;
        case O_UNTIL: o->until = optarg; break;
        case O_OVER: o->over = optarg; break;
        case O_MODE: o->mode = optarg; break;
        case O_VIEW: o->view = optarg; break;
        case O_MAXSTEPS:
            if (parse_int(optarg, 1, 100000000, &o->max_steps) < 0) {
                fprintf(stderr, "faultline: --max-steps needs a number from 1 to 100000000, not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_COUNT:
            if (parse_int(optarg, 1, 1000, &o->count) < 0) {
                fprintf(stderr, "faultline: --count needs a number from 1 to 1000, not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_TIMEOUT:
            if (parse_int(optarg, 1, 3600, &o->timeout_s) < 0) {
                fprintf(stderr, "faultline: --timeout needs seconds from 1 to 3600, not '%s'\n", optarg);
                return -1;
            }
            break;
        }
    }
    if (optind < argc && strcmp(argv[optind - 1], "--") == 0) {
        o->program = argv + optind;
        o->nprogram = argc - optind;
    } else if (optind < argc) {
        fprintf(stderr, "faultline %s: unexpected argument '%s' (a program to run goes after '--')\n", cmd, argv[optind]);
        return -1;
    }
    if (strcmp(cmd, "trace") == 0)
        o->trace = true;
    enum report_format f;
    enum trace_format tf;
    if (o->trace ? trace_parse_format(o->format, &tf) < 0 : report_parse_format(o->format, &f) < 0) {
        fprintf(stderr, "faultline: --format must be %s, not '%s'\n",
                o->trace ? "text, md, json or chrome" : "text, md or json", o->format);
        return -1;
    }
    enum trace_view tv;
    if (o->view && trace_parse_view(o->view, &tv) < 0) {
        fprintf(stderr, "faultline: --view must be line, insn or tree, not '%s'\n", o->view);
        return -1;
    }
    if (o->mode && strcmp(o->mode, "single") && strcmp(o->mode, "fast")) {
        fprintf(stderr, "faultline: --mode must be single or fast, not '%s'\n", o->mode);
        return -1;
    }
    if (!o->trace && (o->until || o->over || o->mode || o->view || o->max_steps)) {
        fprintf(stderr, "faultline: --until, --over, --mode, --view and --max-steps need --trace\n");
        return -1;
    }
    if (strcmp(o->accel, "tcg") && strcmp(o->accel, "kvm") && strcmp(o->accel, "auto")) {
        fprintf(stderr, "faultline: --accel must be tcg, kvm or auto, not '%s'\n", o->accel);
        return -1;
    }
    static const char *const scenarios[] = { "write", "read", "kernel-write", "write-forked", "all" };
    bool known = false;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        known |= strcmp(o->scenario, scenarios[i]) == 0;
    if (!known) {
        fprintf(stderr, "faultline: --scenario must be write, read, kernel-write, write-forked or all, not '%s'\n",
                o->scenario);
        return -1;
    }
    return 0;
}

/* --probes LIST -> station bit mask. */
static int parse_probes(const char *list, unsigned *mask)
{
    *mask = 0;
    if (!list)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int id = cap_station_by_name(tok);
        if (id < 0) {
            fprintf(stderr, "faultline: --probes: '%s' is not a station; the stations are", tok);
            for (int i = 0; i < CAP_ST_COUNT; i++)
                fprintf(stderr, "%s %s", i ? "," : "", cap_station_function(i));
            fputc('\n', stderr);
            return -1;
        }
        *mask |= 1u << id;
    }
    return 0;
}

/* Default guest files: environment, else the tree this binary was built in. */
static const char *guest_file(const char *given, const char *env, const char *name, char *buf, size_t cap)
{
    if (given)
        return given;
    const char *e = getenv(env);
    if (e && *e)
        return e;
#ifdef FAULTLINE_DATADIR
    snprintf(buf, cap, "%s/%s", FAULTLINE_DATADIR, name); /* an installed binary */
#else
    snprintf(buf, cap, "%s/build/vm/%s", FAULTLINE_SRCDIR, name);
#endif
    return buf;
}

static void kernel_version(const char *vmlinux, kern *k, char *buf, size_t cap)
{
    /* build/vm/kernel-version sits beside the vmlinux link: it names the
     * Debian source package the kernel was built from. */
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", vmlinux);
    snprintf(path, sizeof path, "%s/kernel-version", dirname(dir));
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)cap, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
    if (!buf[0] && k)
        snprintf(buf, cap, "%.*s", (int)strcspn(kern_banner(k), "\n"), kern_banner(k));
}

/* ---- the console while the guest runs ---- */

#define PENDING_MAX 16
typedef struct console {
    vm *v;
    char pending[PENDING_MAX][256]; /* announcements and DONE lines not consumed yet */
    int npending;
    bool panic;
    char panic_line[256];
    int kprobes_listed[CAP_ST_COUNT]; /* from FAULTLINE-KPROBES lines: 1, 0, -1 unknown */
} console;

static void console_init(console *c, vm *v)
{
    memset(c, 0, sizeof *c);
    c->v = v;
    for (int i = 0; i < CAP_ST_COUNT; i++)
        c->kprobes_listed[i] = -1;
}

/* "FAULTLINE-KPROBES name=F listed=yes|no", from vm/init. */
static void console_kprobes(console *c, const char *line)
{
    char name[64], listed[8];
    if (sscanf(line, "FAULTLINE-KPROBES name=%63s listed=%7s", name, listed) != 2)
        return;
    int id = cap_station_by_name(name);
    if (id >= 0)
        c->kprobes_listed[id] = strcmp(listed, "yes") == 0;
}

/* Ask the guest's init to report its kprobe blacklist for every station. */
static void append_kprobes(char *append, size_t cap)
{
    size_t used = strlen(append);
    used += (size_t)snprintf(append + used, cap - used, " faultline.kprobes=");
    for (int i = 0; i < CAP_ST_COUNT && used < cap; i++)
        used += (size_t)snprintf(append + used, cap - used, "%s%s", i ? "," : "", cap_station_function(i));
}

static int console_drain(void *ctx)
{
    console *c = ctx;
    if (stop_signal)
        return -1;
    char line[256];
    fl_error e;
    int r;
    while ((r = vm_console_poll_line(c->v, line, sizeof line, &e)) == 1) {
        if (strstr(line, "Kernel panic")) {
            c->panic = true;
            snprintf(c->panic_line, sizeof c->panic_line, "%s", line);
        }
        if (strncmp(line, "FAULTLINE-KPROBES ", 18) == 0)
            console_kprobes(c, line);
        else if ((strncmp(line, VM_ANNOUNCE_PREFIX, strlen(VM_ANNOUNCE_PREFIX)) == 0 ||
                  strncmp(line, VM_DONE_PREFIX, strlen(VM_DONE_PREFIX)) == 0) &&
                 c->npending < PENDING_MAX)
            snprintf(c->pending[c->npending++], sizeof c->pending[0], "%s", line);
    }
    return (r < 0 || c->panic) ? -1 : 0;
}

/* The stub went away or stopped by itself: the console may say why (with
 * panic=-1 QEMU exits at once, often before we read the panic line). Read
 * its last words, at most a second, and name a panic if there was one. */
static void console_explain(console *c, fl_error *err)
{
    double deadline = fl_now_s() + 1.0;
    while (!c->panic && fl_now_s() < deadline) {
        if (console_drain(c) < 0 && !c->panic)
            break; /* QEMU's console ended without a panic line */
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (c->panic)
        fl_fail(err, FL_ECLOSED, "the guest kernel panicked: %s", c->panic_line);
}

/* Wait (guest running) for a console line starting with prefix. */
static int console_wait(console *c, tgt *t, const char *prefix, char *out, size_t cap, int timeout_ms, fl_error *err)
{
    double deadline = fl_now_s() + timeout_ms / 1000.0;
    for (;;) {
        for (int i = 0; i < c->npending; i++) {
            if (strncmp(c->pending[i], prefix, strlen(prefix)) == 0) {
                snprintf(out, cap, "%s", c->pending[i]);
                memmove(c->pending[i], c->pending[i + 1], (size_t)(c->npending - i - 1) * sizeof c->pending[0]);
                c->npending--;
                return 0;
            }
        }
        if (console_drain(c) < 0) {
            if (stop_signal)
                return stopped_by_signal(err);
            if (c->panic)
                return fl_fail(err, FL_ECLOSED, "the guest kernel panicked: %s", c->panic_line);
            return fl_fail(err, FL_ECLOSED, "QEMU exited while waiting for '%s' (console: %s)", prefix,
                           vm_console_tail(c->v, 3));
        }
        tgt_stop stop;
        int r = tgt_poll_stop(t, &stop, 5, err);
        if (r < 0) {
            console_explain(c, err);
            return -1;
        }
        if (r == 1) {
            uint64_t pc = 0;
            tgt_reg_read(t, "rip", &pc, NULL);
            bool kvm = strcmp(vm_accel(c->v), "kvm") == 0;
            /* QEMU's stub reports an accelerator's internal error as SIGABRT (6). */
            fl_fail(err, FL_EPROTO, "the guest stopped by itself (signal %d at pc 0x%" PRIx64 "%s) while waiting for '%s'%s",
                    stop.code, pc, stop.code == 6 ? ", QEMU's sign of an accelerator error" : "", prefix,
                    kvm ? "; KVM does not run this guest here: use --accel tcg" : "");
            console_explain(c, err);
            return -1;
        }
        if (fl_now_s() > deadline)
            return fl_fail(err, FL_ETIMEOUT, "no '%s' line on the console within %d s (last lines: %s)", prefix,
                           timeout_ms / 1000, vm_console_tail(c->v, 3));
    }
}

/* ---- commands ---- */

static void tally(report_summary *sum, const cap_fault *f)
{
    sum->faults += f->nchecks > 0;
    sum->checks += (unsigned)f->nchecks;
    sum->failed += (unsigned)cap_checks_failed(f);
    sum->passed_over += f->passed_over;
}

/* The exit status and the one sentence for how a command ended: a stop
 * signal wins over whatever error it caused on the way out. */
static int conclude(int rc, fl_error *err, report_summary *sum)
{
    if (stop_signal) {
        stopped_by_signal(err);
        rc = 128 + stop_signal;
        fprintf(stderr, "faultline: %s; the report holds what was captured before it\n", err->msg);
    } else if (rc == EXIT_ENV) {
        fprintf(stderr, "faultline: %s\n", err->msg);
    }
    if (sum && rc != 0 && rc != EXIT_CHECKS)
        sum->error = err->msg;
    return rc;
}

static int check_stop(void *ctx)
{
    (void)ctx;
    return stop_signal != 0;
}

static int open_output(const options *o, FILE **out)
{
    *out = stdout;
    if (!o->output)
        return 0;
    *out = fopen(o->output, "w");
    if (!*out) {
        fprintf(stderr, "faultline: cannot write the report to %s: %s\n", o->output, strerror(errno));
        return -1;
    }
    return 0;
}

/* A report that could not be written is a failure, not a success: a full
 * disk or a closed pipe must not end in exit status 0. */
static int close_output(FILE *out, const options *o, int rc)
{
    bool bad = ferror(out) != 0;
    int e = errno;
    if (out != stdout ? fclose(out) != 0 : fflush(out) != 0) {
        bad = true;
        e = errno;
    }
    if (!bad)
        return rc;
    fprintf(stderr, "faultline: cannot write the report to %s: %s\n", o->output ? o->output : "standard output",
            strerror(e ? e : EIO));
    return rc == 0 || rc == EXIT_CHECKS ? EXIT_ENV : rc;
}

/* A user's static program travels as a second cpio appended to the
 * initramfs (the kernel unpacks concatenated archives in order). newc is
 * written here: it is 110 bytes of ASCII header per file and linking
 * libarchive for it would cost more than it saves. */
static int cpio_entry(FILE *f, const char *name, unsigned mode, const void *data, size_t size, unsigned ino)
{
    size_t namesz = strlen(name) + 1;
    if (fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino, mode, 0u, 0u, 1u, 0u, size,
                0u, 0u, 0u, 0u, namesz, 0u) < 0)
        return -1;
    fwrite(name, 1, namesz, f);
    for (size_t pad = (4 - (110 + namesz) % 4) % 4; pad; pad--)
        fputc(0, f);
    if (size)
        fwrite(data, 1, size, f);
    for (size_t pad = (4 - size % 4) % 4; pad; pad--)
        fputc(0, f);
    return ferror(f) ? -1 : 0;
}

static int program_cpio(const char *program, char *path, size_t cap, char *guest_path, size_t gcap, fl_error *err)
{
    FILE *in = fopen(program, "rb");
    if (!in)
        return fl_fail(err, FL_EUSAGE, "cannot read the program %s: %s", program, strerror(errno));
    unsigned char hdr[20] = { 0 };
    size_t got = fread(hdr, 1, sizeof hdr, in);
    if (got < 20 || memcmp(hdr, "\177ELF", 4) != 0 || hdr[4] != 2 || hdr[18] != 62) {
        fclose(in);
        return fl_fail(err, FL_EUSAGE, "%s is not an x86-64 ELF program: build it with 'cc -static' for x86-64", program);
    }
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    rewind(in);
    unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || fread(data, 1, (size_t)size, in) != (size_t)size) {
        free(data);
        fclose(in);
        return fl_fail(err, FL_EIO, "cannot read the program %s", program);
    }
    fclose(in);
    char base[256], tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", program);
    snprintf(base, sizeof base, "%s", basename(tmp));
    snprintf(guest_path, gcap, "/user/%s", base);
    snprintf(path, cap, "/tmp/faultline-program-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        free(data);
        return fl_fail(err, FL_EIO, "cannot create a temporary file for the program's archive: %s", strerror(errno));
    }
    int rc = cpio_entry(f, "user", 040755, NULL, 0, 9001) | cpio_entry(f, guest_path + 1, 0100755, data, (size_t)size, 9002) |
             cpio_entry(f, "TRAILER!!!", 0, NULL, 0, 0);
    free(data);
    if (fclose(f) != 0 || rc) {
        unlink(path);
        return fl_fail(err, FL_EIO, "cannot write the program's archive %s", path);
    }
    return 0;
}

typedef struct run_state {
    kern *k;
    vm *v;
    tgt *t;
    cap_session *cs;
    char program_cpio[PATH_MAX];
} run_state;

static void run_cleanup(run_state *r)
{
    cap_session_close(r->cs);
    if (r->t)
        tgt_kill(r->t);
    vm_stop(r->v);
    kern_close(r->k);
    if (r->program_cpio[0])
        unlink(r->program_cpio);
}

static int boot_vm(const options *o, run_state *r, char *append, size_t acap, double *t0, fl_error *err)
{
    char kbuf[PATH_MAX], ibuf[PATH_MAX];
    const char *kernel = guest_file(o->kernel, "FAULTLINE_KERNEL", "vmlinux", kbuf, sizeof kbuf);
    const char *initrd = guest_file(o->initrd, "FAULTLINE_INITRD", "initramfs.cpio.gz", ibuf, sizeof ibuf);
    struct stat sb;
    if (stat(kernel, &sb) < 0)
        return fl_fail(err, FL_EUSAGE, "no kernel at %s: run 'make vm' (or pass --kernel)", kernel);
    if (stat(initrd, &sb) < 0)
        return fl_fail(err, FL_EUSAGE, "no initramfs at %s: run 'make vm' (or pass --initrd)", initrd);
    vm_config cfg = { .kernel = kernel, .initrd = initrd, .accel = o->accel, .append = append };
    if (strcmp(o->accel, "auto") == 0) {
        /* Decided before the clock starts: the first probe on a machine takes
         * up to 20 s (its verdict is cached), and the user should see why. */
        bool usable = false;
        char why[256] = "";
        if (vm_kvm_usable(&cfg, 20000, &usable, why, sizeof why, err) < 0)
            return -1;
        cfg.accel = usable ? "kvm" : "tcg";
        if (!usable)
            fprintf(stderr, "faultline: --accel auto: using tcg: %s\n", why);
    }
    if (o->nprogram) {
        char guest[300];
        if (program_cpio(o->program[0], r->program_cpio, sizeof r->program_cpio, guest, sizeof guest, err) < 0)
            return -1;
        cfg.extra_initrd = r->program_cpio;
        size_t used = strlen(append);
        used += (size_t)snprintf(append + used, acap - used, " faultline.scenario=program faultline.program=%s", guest);
        for (int i = 1; i < o->nprogram && used < acap; i++)
            used += (size_t)snprintf(append + used, acap - used, "%s%s", i == 1 ? " faultline.args=" : ",", o->program[i]);
    }
    *t0 = fl_now_s();
    if (vm_start(&r->v, &cfg, err) < 0)
        return -1;
    if (tgt_connect(&r->t, vm_gdb_address(r->v), 10000, err) < 0)
        return fl_error_prefix(err, "connecting to the guest's gdbstub");
    return tgt_resume(r->t, err);
}

static int cmd_boot(const options *o)
{
    run_state r = { 0 };
    fl_error err = { 0 };
    char append[1024];
    double t0;
    snprintf(append, sizeof append, "faultline.scenario=%s", o->scenario);
    int rc = EXIT_ENV;
    if (boot_vm(o, &r, append, sizeof append, &t0, &err) < 0)
        goto out;
    console con;
    console_init(&con, r.v);
    char line[256];
    int expect = strcmp(o->scenario, "all") == 0 ? 3 : 1;
    for (int i = 0; i < expect; i++) {
        if (console_wait(&con, r.t, VM_ANNOUNCE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0)
            goto out;
        printf("%s\n", line);
        if (i == 0)
            printf("booted to the trigger in %.2f s (accelerator %s)\n", fl_now_s() - t0, vm_accel(r.v));
        fflush(stdout);
        if (vm_console_write(r.v, "go\n", &err) < 0)
            goto out;
    }
    if (console_wait(&con, r.t, VM_DONE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0)
        goto out;
    printf("%s\n", line);
    rc = strstr(line, "status=0") ? 0 : EXIT_CHECKS;
out:
    rc = conclude(rc, &err, NULL);
    run_cleanup(&r);
    return rc;
}

/* Single-step the fault from where the capture left the guest (the entry
 * station) and write the trace; what was stepped is written even when the
 * trace ends early. */
static int run_trace(const options *o, run_state *r, FILE *out, enum trace_format fmt, enum trace_view view,
                     fl_error *err)
{
    trace_options topt = {
        .mode = o->mode && strcmp(o->mode, "fast") == 0 ? TRACE_FAST : TRACE_SINGLE,
        .until = o->until,
        .max_steps = (size_t)o->max_steps,
        .over = o->over,
        .timeout_ms = o->timeout_s * 1000,
        .progress = true, /* drawn only when stderr is a terminal */
        .cancel = check_stop,
    };
    trace_result *tr = NULL;
    int rc = trace_run(r->t, r->k, &topt, &tr, err);
    if (tr) {
        trace_report(out, fmt, view, tr);
        trace_result_free(tr);
    }
    if (rc < 0)
        fl_error_prefix(err, "tracing the fault");
    return rc;
}

static int cmd_run(const options *o)
{
    run_state r = { 0 };
    fl_error err = { 0 };
    /* With --trace the fault is captured at its entry only (the guest is left
     * stopped there) and then single-stepped; the trace passes every other
     * station. Chrome's trace-event file holds the trace alone. */
    bool chrome = o->trace && strcmp(o->format, "chrome") == 0;
    enum report_format fmt = REPORT_TEXT;
    enum trace_format tfmt = TRACE_FMT_TEXT;
    enum trace_view tview = TRACE_VIEW_LINE;
    if (!chrome)
        report_parse_format(o->format, &fmt);
    if (o->trace) {
        trace_parse_format(o->format, &tfmt);
        if (o->view)
            trace_parse_view(o->view, &tview);
    }
    unsigned mask;
    if (parse_probes(o->probes, &mask) < 0)
        return EXIT_ENV;
    if (o->trace)
        mask = 1u << CAP_ST_ENTRY;
    FILE *out;
    if (open_output(o, &out) < 0)
        return EXIT_ENV;
    char append[1024];
    double t0, start = fl_now_s();
    snprintf(append, sizeof append, "faultline.scenario=%s", o->nprogram ? "program" : o->scenario);
    if (o->nprogram)
        append[0] = '\0';
    append_kprobes(append, sizeof append);
    char kbuf[PATH_MAX], version[256] = "", qemu[128] = "";
    const char *kernel = guest_file(o->kernel, "FAULTLINE_KERNEL", "vmlinux", kbuf, sizeof kbuf);
    report_summary sum = { 0 };
    int rc = EXIT_ENV;
    bool begun = false;
    report_meta meta = { .kernel = version, .qemu = qemu, .vmlinux = kernel };
    if (kern_open(&r.k, kernel, NULL, &err) < 0)
        goto out;
    kernel_version(kernel, r.k, version, sizeof version);
    vm_qemu_version(NULL, qemu, sizeof qemu, NULL);
    if (boot_vm(o, &r, append, sizeof append, &t0, &err) < 0)
        goto out;
    meta.accel = vm_accel(r.v);
    meta.gdb = vm_gdb_address(r.v);
    console con;
    console_init(&con, r.v);
    int expect = (!o->nprogram && strcmp(o->scenario, "all") == 0) ? 3 : 1;
    for (int i = 0; i < expect; i++) {
        char line[256];
        vm_trigger trig;
        if (console_wait(&con, r.t, VM_ANNOUNCE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0 ||
            vm_parse_announcement(line, &trig, &err) < 0)
            goto out;
        if (!begun) {
            meta.boot_seconds = fl_now_s() - t0;
            if (!chrome)
                report_begin(out, fmt, &meta);
            begun = true;
        }
        tgt_stop stop;
        if (tgt_interrupt(r.t, &stop, 5000, &err) < 0)
            goto out;
        if (!r.cs) {
            cap_options co = { .stations = mask, .explicit_stations = o->probes != NULL, .timeout_ms = o->timeout_s * 1000,
                               .max_slots = strcmp(vm_accel(r.v), "kvm") == 0 ? 4 : 0,
                               .idle = console_drain, .idle_ctx = &con };
            if (cap_session_open(&r.cs, r.k, r.t, &co, &err) < 0)
                goto out;
        }
        /* The filter is the trigger's own announcement: its pid, its comm
         * (for a user program the shell that announced it execs it, and only
         * the exec gives the task the program's comm: faults of the shell
         * before that are not the program's) and its target address (a user
         * program announces none: any address). */
        cap_filter filter = { .pid = trig.pid, .addr = trig.target };
        snprintf(filter.comm, sizeof filter.comm, "%s", trig.comm);
        cap_session_set_filter(r.cs, &filter, o->nprogram ? NULL : trig.scenario);
        cap_session_set_kprobe_live(r.cs, con.kprobes_listed);
        if (vm_console_write(r.v, "go\n", &err) < 0)
            goto out;
        cap_fault f;
        int crc = cap_fault_capture(r.cs, &f, &err);
        report_trigger rt = { .have = true, .scenario = trig.scenario, .pid = trig.pid, .comm = trig.comm,
                              .page = trig.page, .target = trig.target };
        if ((f.st[0].hit || f.nchecks) && !chrome) {
            report_fault(out, fmt, &rt, &f, r.cs);
            fflush(out); /* each fault's records as soon as they exist */
        }
        tally(&sum, &f);
        if (crc < 0) {
            if (err.code != FL_EINTR && err.code != FL_ETIMEOUT)
                console_explain(&con, &err);
            goto out;
        }
        if (o->trace && run_trace(o, &r, out, tfmt, tview, &err) < 0)
            goto out;
        if (tgt_resume(r.t, &err) < 0)
            goto out;
    }
    char line[256];
    if (console_wait(&con, r.t, VM_DONE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0)
        goto out;
    rc = sum.failed ? EXIT_CHECKS : 0;
    /* The trigger (or the user's program) checks its own data after the
     * fault; init reports its exit status. */
    const char *st = strstr(line, " status=");
    if (!st || strcmp(st, " status=0") != 0) {
        fprintf(stderr, "faultline: the guest's program did not end well (%s)\n", line);
        rc = EXIT_CHECKS;
    }
out:
    sum.seconds = fl_now_s() - start;
    rc = conclude(rc, &err, &sum);
    /* Once the kernel is known the report is always whole: header, what was
     * captured, and a summary naming what ended the run. */
    if (!begun && r.k && !chrome) {
        report_begin(out, fmt, &meta);
        begun = true;
    }
    if (begun && !chrome)
        report_end(out, fmt, &sum);
    rc = close_output(out, o, rc);
    run_cleanup(&r);
    return rc;
}

static int cmd_capture(const options *o)
{
    if (!o->gdb || !o->kernel) {
        fprintf(stderr, "faultline capture: --gdb and --vmlinux are both required (see 'faultline capture --help')\n");
        return EXIT_ENV;
    }
    unsigned mask;
    if (parse_probes(o->probes, &mask) < 0)
        return EXIT_ENV;
    enum report_format fmt;
    report_parse_format(o->format, &fmt);
    FILE *out;
    if (open_output(o, &out) < 0)
        return EXIT_ENV;
    run_state r = { 0 };
    fl_error err = { 0 };
    report_summary sum = { 0 };
    double start = fl_now_s();
    char version[256];
    int rc = EXIT_ENV;
    bool begun = false;
    if (kern_open(&r.k, o->kernel, NULL, &err) < 0)
        goto out;
    if (tgt_connect(&r.t, o->gdb, 10000, &err) < 0) {
        fl_error_prefix(&err, "connecting to %s", o->gdb);
        goto out;
    }
    cap_options copt = { .filter = { .pid = o->pid, .addr = o->addr, .addr_page = o->addr_page },
                         .stations = mask, .explicit_stations = o->probes != NULL, .timeout_ms = o->timeout_s * 1000,
                         .idle = check_stop };
    if (o->comm)
        snprintf(copt.filter.comm, sizeof copt.filter.comm, "%s", o->comm);
    if (cap_session_open(&r.cs, r.k, r.t, &copt, &err) < 0)
        goto out;
    /* The guest is stopped while we attach; say when it may fault. */
    fprintf(stderr, "faultline: attached to %s; waiting up to %d s for %d fault%s matching the filter\n", o->gdb,
            o->timeout_s, o->count, o->count == 1 ? "" : "s");
    kernel_version(o->kernel, r.k, version, sizeof version);
    report_meta meta = { .kernel = version, .vmlinux = o->kernel, .gdb = o->gdb };
    report_begin(out, fmt, &meta);
    begun = true;
    for (int i = 0; i < o->count; i++) {
        cap_fault f;
        int crc = cap_fault_capture(r.cs, &f, &err);
        report_trigger rt = { .have = false };
        if (f.st[0].hit || f.nchecks) {
            report_fault(out, fmt, &rt, &f, r.cs);
            fflush(out);
        }
        tally(&sum, &f);
        if (crc < 0)
            goto out;
    }
    rc = sum.failed ? EXIT_CHECKS : 0;
out:
    sum.seconds = fl_now_s() - start;
    rc = conclude(rc, &err, &sum);
    if (begun)
        report_end(out, fmt, &sum);
    rc = close_output(out, o, rc);
    cap_session_close(r.cs);
    tgt_close(r.t); /* detach: the user's guest runs on */
    kern_close(r.k);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_ENV;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("faultline %s\ntested with QEMU 7.2 (Debian 12) and Linux 6.12 (Debian's linux-source-6.12)\n",
               FAULTLINE_VERSION);
        return 0;
    }
    int (*fn)(const options *) = NULL;
    void (*help)(FILE *) = NULL;
    if (strcmp(cmd, "run") == 0)
        fn = cmd_run, help = usage_run;
    else if (strcmp(cmd, "trace") == 0)
        fn = cmd_run, help = usage_trace;
    else if (strcmp(cmd, "capture") == 0)
        fn = cmd_capture, help = usage_capture;
    else if (strcmp(cmd, "boot") == 0)
        fn = cmd_boot, help = usage_boot;
    if (!fn) {
        fprintf(stderr, "faultline: unknown command '%s' (commands: run, trace, capture, boot, version)\n", cmd);
        return EXIT_ENV;
    }
    options o = { 0 };
    int p = parse_options(argc - 1, argv + 1, cmd, &o);
    if (p == 1) {
        help(stdout);
        return 0;
    }
    if (p < 0)
        return EXIT_ENV;
    /* QEMU must never outlive us: SIGINT/SIGTERM/SIGHUP and exit() kill it. */
    vm_install_cleanup();
    install_stop_handlers();
    signal(SIGPIPE, SIG_IGN);
    return fn(&o);
}
