/* cli_table: every command and every option of faultline, one row each.
 * How to add one: the top of include/faultline/cli.h. */
#include "faultline/cli.h"

#include <limits.h>
#include <string.h>

#include "faultline/capture.h"
#include "faultline/cmd.h"
#include "faultline/report.h"
#include "faultline/trace.h"

static const char *const scenarios[] = { "write", "read", "kernel-write", "write-forked", "cow", "file-read", "exec",
                                         "segv-write", "null", "kernel-fixup", "stack-grow", "all", NULL };
static const char *const accels[] = { "tcg", "kvm", "auto", NULL };
static const char *const report_formats[] = { "text", "md", "json", NULL };
static const char *const trace_formats[] = { "text", "md", "json", "chrome", "folded", "svg", NULL };
static const char *const trace_modes[] = { "single", "fast", NULL };
static const char *const trace_views[] = { "line", "insn", "tree", "explain", NULL };
static const char *const fault_modes[] = { "user", "kernel", NULL };

static const char *station_at(int i)
{
    return i >= 0 && i < CAP_ST_COUNT ? cap_station_function((enum cap_station_id)i) : NULL;
}

/* --format: run takes chrome only with --trace (the trace alone is a
 * Chrome trace-event file). */
static int check_format(const cli_options *o, const char *v, fl_error *err)
{
    enum report_format rf;
    enum trace_format tf;
    if (o->trace ? trace_parse_format(v, &tf) == 0 : report_parse_format(v, &rf) == 0)
        return 0;
    return fl_fail(err, FL_EUSAGE, "--format must be %s, not '%s'",
                   o->trace ? "text, md, json, chrome, folded or svg" : "text, md or json", v);
}

/* A Chrome trace-event file and an SVG flame chart are one document each:
 * one trace. */
static int check_chrome(const cli_options *o, fl_error *err)
{
    bool one = o->format && (strcmp(o->format, "chrome") == 0 || strcmp(o->format, "svg") == 0);
    if (one && (o->count != 1 || strcmp(o->scenario, "all") == 0))
        return fl_fail(err, FL_EUSAGE, "--format %s holds one trace: use it with --count 1 and one scenario", o->format);
    return 0;
}

/* The exception log gives the entry station only. */
static int check_entry_only(const cli_options *o, const char *v, fl_error *err)
{
    (void)v;
    if (o->probes && cmd_probe_mask(o->probes) != 1u << CAP_ST_ENTRY)
        return fl_fail(err, FL_EUSAGE, "QEMU's exception log gives the entry station only: leave out --probes "
                       "or give --probes asm_exc_page_fault");
    if (cmd_selects_more(o))
        return fl_fail(err, FL_EUSAGE, "QEMU's exception log is filtered by process and address only: --range, "
                       "--fault-mode and --nth do not apply");
    return 0;
}

static int check_run(cli_options *o, fl_error *err)
{
    if (o->entry_log && (o->trace || check_entry_only(o, "", err) < 0))
        return o->trace ? fl_fail(err, FL_EUSAGE, "--entry-log does not trace: leave out --trace") : -1;
    if (!o->trace && (o->until || o->over || o->mode || o->view || o->max_steps || o->function || o->depth))
        return fl_fail(err, FL_EUSAGE, "--until, --over, --mode, --view, --max-steps, --function and --depth "
                       "need --trace");
    return check_chrome(o, err);
}

static int check_capture(cli_options *o, fl_error *err)
{
    if (!o->gdb || !o->kernel)
        return fl_fail(err, FL_EUSAGE, "--gdb and --vmlinux are both required (see 'faultline capture --help')");
    return 0;
}

/* trace is run with --trace set; --gdb chooses between the bundled VM and
 * a QEMU the user started, and each takes its own options. */
static int check_trace(cli_options *o, fl_error *err)
{
    static const char *const bundled[] = { "scenario", "accel", "kernel", "initrd", "reproducible", "expect",
                                           "update-expect", NULL };
    static const char *const attached[] = { "vmlinux", NULL };
    o->trace = true;
    const char *const *wrong = o->gdb ? bundled : attached;
    for (int i = 0; wrong[i]; i++)
        if (cli_given(o, wrong[i]))
            return fl_fail(err, FL_EUSAGE, "--%s %s", wrong[i],
                           o->gdb ? "is for the bundled VM, not with --gdb" : "goes with --gdb (a QEMU you started)");
    if (o->gdb && !o->kernel)
        return fl_fail(err, FL_EUSAGE, "--gdb needs --vmlinux, the guest's kernel with DWARF");
    if (o->gdb && o->nprogram)
        return fl_fail(err, FL_EUSAGE, "with --gdb there is no program to run: filter with --comm, --pid or --addr");
    return check_chrome(o, err);
}

/* diff takes exactly two files. */
static int check_diff(cli_options *o, fl_error *err)
{
    if (o->noperands != 2)
        return fl_fail(err, FL_EUSAGE, "diff compares two files: 'faultline diff A.json B.json' (%d given)", o->noperands);
    return 0;
}

/* --update-expect rewrites the file --expect names. */
static int check_expect(cli_options *o, fl_error *err)
{
    if (o->update_expect && !o->expect)
        return fl_fail(err, FL_EUSAGE, "--update-expect needs --expect FILE (the file to rewrite)");
    enum report_format diff_format;
    if (o->expect && o->format && report_parse_format(o->format, &diff_format) < 0)
        return fl_fail(err, FL_EUSAGE, "--expect compares JSON Lines and prints the diff as text, md or json: "
                       "--format %s does not apply", o->format);
    if (o->expect)
        o->reproducible = true;
    return 0;
}

static int check_run_all(cli_options *o, fl_error *err)
{
    return check_run(o, err) < 0 ? -1 : check_expect(o, err);
}

static int check_trace_all(cli_options *o, fl_error *err)
{
    return check_trace(o, err) < 0 ? -1 : check_expect(o, err);
}

#define GUEST (CLI_RUN | CLI_TRACE | CLI_BOOT)
#define TRACING (CLI_RUN | CLI_TRACE)
/* Which faults: one set of filters shared by every command that captures. */
#define FILTERS (CLI_RUN | CLI_TRACE | CLI_CAPTURE)

const cli_option cli_option_rows[] = {
    { .name = "gdb", .kind = CLI_ENDPOINT, .metavar = "ADDR", .at = CLI_AT(gdb), .commands = CLI_CAPTURE,
      .help = "the stub: unix:/path/to/socket or host:port" },
    { .name = "gdb", .kind = CLI_ENDPOINT, .metavar = "ADDR", .at = CLI_AT(gdb), .commands = CLI_TRACE,
      .help = "trace a QEMU you started instead of the bundled VM: its stub,\n"
              "unix:/path/to/socket or host:port (needs --vmlinux; detaches at the end)" },
    { .name = "vmlinux", .kind = CLI_PATH, .metavar = "PATH", .at = CLI_AT(kernel), .commands = CLI_CAPTURE | CLI_TRACE,
      .help = "the guest's kernel, with DWARF (CONFIG_DEBUG_INFO)" },
    { .name = "source-dir", .kind = CLI_PATH, .metavar = "DIR", .at = CLI_AT(source_dir),
      .commands = CLI_RUN | CLI_CAPTURE | CLI_TRACE,
      .help = "the kernel's source tree, for a kernel built elsewhere: a source\n"
              "path of its DWARF is looked up here by its tail (default: the\n"
              "paths as recorded, else Debian's matching linux-source-X)" },
    { .name = "scenario", .kind = CLI_WORD, .metavar = "S", .at = CLI_AT(scenario), .commands = GUEST,
      .words = scenarios, .def = "write",
      .help = "write (default), read, kernel-write, write-forked (a forked child\n"
              "faults on the same address first: it must be passed over), cow,\n"
              "file-read, exec, segv-write, null, kernel-fixup, stack-grow (the\n"
              "outcome's catalog: docs/how-it-works.md), or all (every one, in one boot)" },
    { .name = "accel", .kind = CLI_WORD, .metavar = "A", .at = CLI_AT(accel), .commands = GUEST, .words = accels,
      .def = "tcg", .help = "tcg (default), kvm, or auto (kvm only if a bounded probe boots)" },
    { .name = "format", .kind = CLI_WORD, .metavar = "F", .at = CLI_AT(format), .commands = CLI_TRACE,
      .words = trace_formats, .def = "text",
      .help = "text (default), md (the worksheet's trace, explained), json\n"
              "(JSON Lines, \"step\" records), chrome (trace-event JSON for\n"
              "Perfetto), folded (\"a;b;c count\" stacks for flame-graph tools),\n"
              "svg (a self-contained flame chart)" },
    { .name = "format", .kind = CLI_WORD, .metavar = "F", .at = CLI_AT(format), .commands = CLI_RUN,
      .words = report_formats, .def = "text", .check = check_format,
      .help = "text (default), md (the worksheet), json (JSON Lines);\n"
              "with --trace also chrome, folded and svg (as for 'faultline trace')" },
    { .name = "format", .kind = CLI_WORD, .metavar = "F", .at = CLI_AT(format), .commands = CLI_CAPTURE,
      .words = report_formats, .def = "text", .help = "text (default), md (the worksheet), json (JSON Lines)" },
    { .name = "format", .kind = CLI_WORD, .metavar = "F", .at = CLI_AT(format), .commands = CLI_DIFF,
      .words = report_formats, .def = "text", .help = "text (default), md (Markdown), json (JSON Lines)" },
    { .name = "output", .short_name = 'o', .kind = CLI_PATH, .metavar = "FILE", .at = CLI_AT(output),
      .commands = CLI_RUN | CLI_TRACE | CLI_CAPTURE | CLI_DIFF, .help = "write the report to FILE instead of standard output" },
    { .name = "comm", .kind = CLI_STRING, .metavar = "NAME", .at = CLI_AT(comm), .commands = FILTERS, .max = 15,
      .what = "a task's comm", .help = "only faults of tasks with this comm" },
    { .name = "pid", .kind = CLI_INT, .metavar = "N", .at = CLI_AT(pid), .commands = FILTERS, .min = 1,
      .max = 4194304, .what = "a process id", .help = "only faults of this pid" },
    { .name = "addr", .kind = CLI_ADDR, .metavar = "VA", .at = CLI_AT(addr), .commands = FILTERS,
      .help = "only faults on this address (with --page: on its 4 KiB page)" },
    { .name = "page", .kind = CLI_FLAG, .at = CLI_AT(addr_page), .commands = FILTERS,
      .help = "with --addr: any fault on the same 4 KiB page" },
    { .name = "range", .kind = CLI_RANGE, .metavar = "LO-HI", .at = CLI_AT(range), .commands = FILTERS,
      .help = "only faults on an address from LO up to (not including) HI" },
    { .name = "fault-mode", .kind = CLI_WORD, .metavar = "M", .at = CLI_AT(fault_mode), .commands = FILTERS,
      .words = fault_modes, .help = "only user-mode or only kernel-mode faults (the error code's\nX86_PF_USER bit)" },
    { .name = "nth", .kind = CLI_INT, .metavar = "N", .at = CLI_AT(nth), .commands = FILTERS, .min = 1,
      .max = INT_MAX, .help = "skip the first N-1 faults that pass the filters" },
    { .name = "probes", .kind = CLI_LIST, .metavar = "LIST", .at = CLI_AT(probes), .commands = CLI_RUN | CLI_CAPTURE,
      .word_at = station_at, .noun = "station",
      .help = "stations to stop at, comma-separated function names (default: all)" },
    { .name = "count", .kind = CLI_INT, .metavar = "N", .at = CLI_AT(count), .commands = FILTERS, .min = 0,
      .max = INT_MAX, .def = "1",
      .help = "faults to capture (default 1); 0: every matching fault until\n"
              "the program ends, --timeout or a signal, each written as soon\n"
              "as it is captured" },
    { .name = "timeout", .kind = CLI_INT, .metavar = "SEC", .at = CLI_AT(timeout_s), .commands = CLI_BOOT, .min = 1,
      .max = 3600, .def = "60", .what = "seconds",
      .help = "how long the announcement and the guest's end may take (default 60)" },
    { .name = "timeout", .kind = CLI_INT, .metavar = "SEC", .at = CLI_AT(timeout_s), .commands = TRACING | CLI_CAPTURE,
      .min = 1, .max = 3600, .def = "60", .what = "seconds",
      .help = "how long one fault may take to appear and pass (default 60)" },
    { .name = "trace", .kind = CLI_FLAG, .at = CLI_AT(trace), .commands = CLI_TRACE,
      .help = "accepted; this command always traces" },
    { .name = "trace", .kind = CLI_FLAG, .at = CLI_AT(trace), .commands = CLI_RUN,
      .help = "capture at the entry only, then single-step the fault back to\n"
              "user mode (--mode, --until, --max-steps, --over and --view\n"
              "are as for 'faultline trace')" },
    { .name = "mode", .kind = CLI_WORD, .metavar = "M", .at = CLI_AT(mode), .commands = TRACING, .words = trace_modes,
      .help = "single (default: every instruction stops) or fast (runs from\n"
              "branch to branch; the same instruction sequence)" },
    { .name = "until", .kind = CLI_STRING, .metavar = "SYMBOL", .at = CLI_AT(until), .commands = TRACING,
      .help = "stop when the pc reaches SYMBOL instead of user mode" },
    { .name = "max-steps", .kind = CLI_INT, .metavar = "N", .at = CLI_AT(max_steps), .commands = TRACING, .min = 1,
      .max = 100000000, .help = "stop after N instructions (default 1000000)" },
    { .name = "over", .kind = CLI_STRING, .metavar = "LIST", .at = CLI_AT(over), .commands = TRACING,
      .help = "run through these callees at full speed (comma-separated)" },
    { .name = "view", .kind = CLI_WORD, .metavar = "V", .at = CLI_AT(view), .commands = TRACING, .words = trace_views,
      .help = "line (default: one entry per source line, t=0, t=1, ...),\n"
              "insn (every instruction), tree (calls with counts) or explain\n"
              "(per source line the C variables that changed, branches, calls\n"
              "with arguments and returns; the default for --format md)" },
    { .name = "function", .kind = CLI_STRING, .metavar = "NAME", .at = CLI_AT(function), .commands = TRACING,
      .max = 127, .help = "explain, folded, svg: only NAME's calls and what they call" },
    { .name = "depth", .kind = CLI_INT, .metavar = "N", .at = CLI_AT(depth), .commands = TRACING, .min = 1,
      .max = 1000, .what = "a call depth",
      .help = "explain, folded, svg: calls deeper than N below --function\n"
              "(or the start) are summarised" },
    { .name = "kernel", .kind = CLI_PATH, .metavar = "PATH", .at = CLI_AT(kernel), .commands = GUEST,
      .help = "vmlinux to boot (default $FAULTLINE_KERNEL or build/vm/vmlinux)" },
    { .name = "reproducible", .kind = CLI_FLAG, .at = CLI_AT(reproducible), .commands = TRACING,
      .help = "deterministic TCG run: the same values and the same trace\n"
              "run after run (see docs/ci.md; the default with --expect)" },
    { .name = "expect", .kind = CLI_PATH, .metavar = "FILE", .at = CLI_AT(expect), .commands = TRACING,
      .help = "compare the run (reproducible, JSON Lines) with FILE, print\n"
              "the diff, exit 1 if the path or a value changed" },
    { .name = "update-expect", .kind = CLI_FLAG, .at = CLI_AT(update_expect), .commands = TRACING,
      .help = "with --expect: write the run to FILE instead of comparing" },
    { .name = "scenarios", .kind = CLI_STRING, .metavar = "LIST", .at = CLI_AT(scenarios), .commands = CLI_MATRIX,
      .def = "all", .help = "all (default: every bundled scenario) or a comma-separated\n"
                            "list; cells run reproducibly where the scenario allows it" },
    { .name = "kernel", .kind = CLI_PATHS, .metavar = "PATH", .at = CLI_AT(kernels), .commands = CLI_MATRIX,
      .help = "a vmlinux to run every scenario on; repeat for more kernels\n"
              "(default $FAULTLINE_KERNEL or build/vm/vmlinux)" },
    { .name = "accel", .kind = CLI_STRING, .metavar = "LIST", .at = CLI_AT(accels), .commands = CLI_MATRIX,
      .def = "tcg", .help = "accelerators, comma-separated: tcg (default), kvm; a kvm\n"
                            "cell is skipped, with the reason, where KVM does not boot" },
    { .name = "jobs", .short_name = 'j', .kind = CLI_INT, .metavar = "N", .at = CLI_AT(jobs), .commands = CLI_MATRIX,
      .min = 1, .max = 256, .help = "cells run at once (default: the number of cores)" },
    { .name = "out", .kind = CLI_PATH, .metavar = "DIR", .at = CLI_AT(out_dir), .commands = CLI_MATRIX,
      .help = "keep each cell's report (JSON Lines) and log in DIR\n"
              "(default: a new directory faultline-matrix-XXXXXX here)" },
    { .name = "junit", .kind = CLI_PATH, .metavar = "FILE", .at = CLI_AT(junit), .commands = CLI_MATRIX,
      .help = "write JUnit XML (one testcase per cell) to FILE" },
    { .name = "shard", .kind = CLI_STRING, .metavar = "K/N", .at = CLI_AT(shard), .commands = CLI_MATRIX, .max = 16,
      .help = "run only the K-th of N slices of the cells (1 <= K <= N)" },
    { .name = "merge", .kind = CLI_FLAG, .at = CLI_AT(merge), .commands = CLI_MATRIX,
      .help = "run nothing: merge the results of the DIRs given as\n"
              "arguments (each a shard's --out) into one table and --junit" },
    { .name = "timeout", .kind = CLI_INT, .metavar = "SEC", .at = CLI_AT(timeout_s), .commands = CLI_MATRIX, .min = 1,
      .max = 86400, .def = "600", .what = "seconds", .help = "how long one cell may take (default 600)" },
    { .name = "trace", .kind = CLI_FLAG, .at = CLI_AT(trace), .commands = CLI_MATRIX,
      .help = "each cell also traces the fault (run --trace)" },
    { .name = "initrd", .kind = CLI_PATH, .metavar = "PATH", .at = CLI_AT(initrd), .commands = GUEST | CLI_MATRIX,
      .help = "initramfs (default $FAULTLINE_INITRD or build/vm/initramfs.cpio.gz)" },
    { .name = "exception-log", .kind = CLI_PATH, .metavar = "FILE", .at = CLI_AT(exception_log),
      .commands = CLI_CAPTURE, .check = check_entry_only,
      .help = "read the entry station of each fault from QEMU's exception\n"
              "log FILE (QEMU under TCG logging 'int' into FILE) instead of\n"
              "stopping at each fault: one stop finds the process's CR3" },
    { .name = "follow-fork", .kind = CLI_FLAG, .at = CLI_AT(follow_fork), .commands = TRACING,
      .help = "with -- PROGRAM: its children's faults too (the filter is\n"
              "the program's name instead of its pid)" },
    { .name = "entry-log", .kind = CLI_FLAG, .at = CLI_AT(entry_log), .commands = CLI_RUN,
      .help = "report the entry station of every fault of the trigger or\n"
              "PROGRAM (--count N: the first N) from QEMU's exception log\n"
              "(TCG) instead of stopping at each fault (no current, no checks)" },
    { .name = NULL },
};

const cli_command cli_command_rows[] = {
    { .name = "run", .bit = CLI_RUN, .run = cmd_run, .check = check_run_all, .takes_program = true,
      .synopsis = "[OPTIONS] [-- PROGRAM [ARGS]]",
      .summary = "boot the bundled VM, fault, capture, print the verified report",
      .description = "Boots the bundled VM, runs the scenario's trigger (or PROGRAM, a static x86-64\n"
                     "binary, filtered by its own process), stops at each station of the fault path,\n"
                     "and prints the report." },
    { .name = "trace", .bit = CLI_TRACE, .run = cmd_trace, .check = check_trace_all, .takes_program = true,
      .synopsis = "[OPTIONS] [-- PROGRAM [ARGS]]\n"
                  "       faultline trace --gdb ADDR --vmlinux PATH [--comm NAME|--pid N|--addr VA ...] [OPTIONS]",
      .summary = "the same, then single-step the fault path back to user mode",
      .description = "Boots the bundled VM, captures the fault at asm_exc_page_fault (CR2, the\n"
                     "hardware frame) and single-steps it until it is back in user mode, with each\n"
                     "instruction's file:line, source, disassembly and the registers it changed.\n"
                     "Same as 'faultline run --trace'. With --gdb, the same against a QEMU you\n"
                     "started (halted or running): the first fault that passes the filters is\n"
                     "traced, then faultline detaches and the guest runs on." },
    { .name = "capture", .bit = CLI_CAPTURE, .run = cmd_capture, .check = check_capture,
      .synopsis = "--gdb unix:PATH|HOST:PORT --vmlinux PATH [OPTIONS]",
      .summary = "the same capture against a QEMU you started (-s / -gdb)",
      .description = "Attaches to a QEMU gdbstub you started, captures COUNT filtered faults, detaches." },
    { .name = "boot", .bit = CLI_BOOT, .run = cmd_boot, .synopsis = "[OPTIONS]",
      .summary = "boot the bundled VM and print the trigger's announcement (smoke test)",
      .description = "Boots the bundled VM, prints the trigger's announcement and the boot time, lets\n"
                     "the trigger fault without stopping it, and exits when the guest is done." },
    { .name = "diff", .bit = CLI_DIFF, .run = cmd_diff, .check = check_diff, .max_operands = 2,
      .synopsis = "[OPTIONS] A.json B.json",
      .summary = "compare two JSON Lines reports: values per station, paths by source line",
      .description = "Compares two outputs of run, capture or trace (--format json): per station the\n"
                     "values that changed and those that did not, the checks, and for traces the two\n"
                     "paths aligned by function and source line: the first divergence, the branches\n"
                     "the differing bits decide, functions only on one side, instructions per\n"
                     "function. Fields that vary from run to run are not compared (docs/ci.md).\n"
                     "Exit 0: the same; 1: different; 2: unreadable input." },
    { .name = "matrix", .bit = CLI_MATRIX, .run = cmd_matrix, .max_operands = CLI_OPERANDS_MAX,
      .synopsis = "[OPTIONS] | --merge DIR... [--junit FILE]",
      .summary = "run scenarios x kernels x accelerators in parallel VMs; table and JUnit XML",
      .description = "Runs every cell (scenario x kernel x accelerator) as its own reproducible\n"
                     "'faultline run' in parallel, keeps each cell's report in --out, prints one\n"
                     "table (pass, fail, skipped with the reason) and writes JUnit XML.\n"
                     "Exit 0: every cell passed or was skipped; 1: a cell failed; 2: the matrix\n"
                     "could not run." },
    { .name = "version", .bit = CLI_VERSION, .run = NULL, .synopsis = "",
      .summary = "print the version and what it was tested against",
      .description = "Prints the version and the QEMU and kernel versions it was tested against." },
    { .name = NULL },
};
