/* cli: the option tables and the generic parser: defaults, both value
 * spellings, ranges, words, lists, flags, options of other commands, the
 * program after "--", cross-option checks, and the texts generated from the
 * rows (help, listings) agreeing with the rows. */
#include "check.h"
#include "faultline/cli.h"
#include "faultline/cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parse a NULL-terminated argument list for command `name`. */
static int parse(cli_options *o, fl_error *e, const char *name, ...)
{
    static char *argv[64]; /* o.program points into it after the call */
    int argc = 0;
    va_list ap;
    va_start(ap, name);
    argv[argc++] = (char *)name;
    for (char *a; (a = va_arg(ap, char *)) && argc < 63;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fl_error_clear(e);
    return cli_parse(cli_command_find(name), argc, argv, o, e);
}

static bool has(const char *text, const char *part)
{
    return strstr(text, part) != NULL;
}

static void test_defaults_and_values(void)
{
    cli_options o;
    fl_error e;
    CHECK(parse(&o, &e, "run", NULL) == 0);
    CHECK_STR(o.scenario, "write");
    CHECK_STR(o.accel, "tcg");
    CHECK_STR(o.format, "text");
    CHECK_EQ_U64(o.timeout_s, 60);
    CHECK(!o.trace && !o.output && o.nprogram == 0);
    CHECK(parse(&o, &e, "run", "--scenario=read", "--timeout", "0x10", "-o", "r.txt", "--trace", NULL) == 0);
    CHECK_STR(o.scenario, "read");
    CHECK_EQ_U64(o.timeout_s, 16);
    CHECK_STR(o.output, "r.txt");
    CHECK(o.trace);
    CHECK(parse(&o, &e, "run", "-or.txt", NULL) == 0);
    CHECK_STR(o.output, "r.txt");
    CHECK(parse(&o, &e, "capture", "--gdb", "unix:/s", "--vmlinux", "v", "--addr", "0x7f0000000100", "--page",
                "--pid", "27", "--comm", "fl-write", NULL) == 0);
    CHECK_EQ_U64(o.addr, 0x7f0000000100);
    CHECK(o.addr_page);
    CHECK_EQ_U64(o.pid, 27);
    CHECK_STR(o.comm, "fl-write");
    CHECK_STR(o.kernel, "v");
    CHECK(parse(&o, &e, "trace", NULL) == 0);
    CHECK(o.trace); /* trace implies it */
}

static void test_errors(void)
{
    cli_options o;
    fl_error e;
    CHECK(parse(&o, &e, "run", "--frob", NULL) < 0 && has(e.msg, "unknown option --frob"));
    CHECK(parse(&o, &e, "run", "--gdb", "unix:/x", NULL) < 0 && has(e.msg, "does not apply"));
    CHECK(parse(&o, &e, "run", "--scenario", "nope", NULL) < 0 && has(e.msg, "--scenario must be write, read"));
    CHECK(parse(&o, &e, "run", "--timeout", "0", NULL) < 0 && has(e.msg, "--timeout needs seconds from 1 to 3600"));
    CHECK(parse(&o, &e, "run", "--timeout", "-5", NULL) < 0);
    CHECK(parse(&o, &e, "run", "--timeout", "99999999999999999999", NULL) < 0);
    CHECK(parse(&o, &e, "run", "--timeout", NULL) < 0 && has(e.msg, "needs a value"));
    CHECK(parse(&o, &e, "run", "--trace=1", NULL) < 0 && has(e.msg, "takes no value"));
    CHECK(parse(&o, &e, "run", "--probes", "", NULL) < 0 && has(e.msg, "at least one station"));
    CHECK(parse(&o, &e, "run", "--probes", "handle_mm_fault,,x", NULL) < 0 && has(e.msg, "is not a station"));
    CHECK(parse(&o, &e, "run", "--probes", "do_exit", NULL) < 0 && has(e.msg, "'do_exit' is not a station"));
    CHECK(parse(&o, &e, "run", "--probes", "exc_page_fault,handle_mm_fault", NULL) == 0);
    CHECK(parse(&o, &e, "run", "--format", "chrome", NULL) < 0 && has(e.msg, "--format must be text, md or json"));
    CHECK(parse(&o, &e, "run", "--trace", "--format", "chrome", NULL) == 0);
    CHECK(parse(&o, &e, "trace", "--format", "chrome", "--count", "2", NULL) < 0 && has(e.msg, "one trace"));
    CHECK(parse(&o, &e, "trace", "--format", "chrome", "--scenario", "all", NULL) < 0 && has(e.msg, "one trace"));
    CHECK(parse(&o, &e, "trace", "--format", "svg", "--count", "0", NULL) < 0 && has(e.msg, "--format svg holds one"));
    CHECK(parse(&o, &e, "trace", "--format", "folded", "--scenario", "all", NULL) == 0);
    CHECK(parse(&o, &e, "run", "--function", "handle_mm_fault", NULL) < 0 && has(e.msg, "need --trace"));
    CHECK(parse(&o, &e, "trace", "--view", "explain", "--function", "handle_mm_fault", "--depth", "2", NULL) == 0 &&
          o.depth == 2);
    CHECK(parse(&o, &e, "trace", "--expect", "g.jsonl", "--format", "folded", NULL) < 0 &&
          has(e.msg, "--format folded does not apply"));
    CHECK(parse(&o, &e, "run", "--expect", "g.jsonl", "--format", "md", NULL) == 0 && o.reproducible);
    CHECK(parse(&o, &e, "run", "--until", "x", NULL) < 0 && has(e.msg, "need --trace"));
    CHECK(parse(&o, &e, "capture", "--vmlinux", "v", NULL) < 0 && has(e.msg, "both required"));
    CHECK(parse(&o, &e, "capture", "--comm", "abcdefghijklmnop", "--gdb", "a:1", "--vmlinux", "v", NULL) < 0 &&
          has(e.msg, "--comm"));
    CHECK(parse(&o, &e, "capture", "--addr", "0", NULL) < 0 && has(e.msg, "--addr needs"));
    CHECK(parse(&o, &e, "capture", "--pid", "abc", NULL) < 0 && has(e.msg, "--pid needs a process id"));
    CHECK(parse(&o, &e, "run", "stray", NULL) < 0 && has(e.msg, "after '--'"));
    CHECK(parse(&o, &e, "boot", "--", "prog", NULL) < 0 && has(e.msg, "runs no program"));
    CHECK(parse(&o, &e, "run", "--help", "--frob", NULL) == 1);
}

static void test_filters(void)
{
    cli_options o;
    fl_error e;
    CHECK(parse(&o, &e, "run", "--range", "0x1000-0x2000", "--fault-mode", "user", "--nth", "3", "--count", "0",
                NULL) == 0);
    CHECK_EQ_U64(o.range.lo, 0x1000);
    CHECK_EQ_U64(o.range.hi, 0x2000);
    CHECK_STR(o.fault_mode, "user");
    CHECK_EQ_U64(o.nth, 3);
    CHECK_EQ_U64(o.count, 0);
    CHECK(cli_given(&o, "range") && cli_given(&o, "count") && !cli_given(&o, "timeout"));
    CHECK(parse(&o, &e, "capture", "--range", "0x2000-0x1000", NULL) < 0 && has(e.msg, "LO below HI"));
    CHECK(parse(&o, &e, "capture", "--range", "0x2000", NULL) < 0 && has(e.msg, "--range needs"));
    CHECK(parse(&o, &e, "capture", "--range", "1--2", NULL) < 0);
    CHECK(parse(&o, &e, "capture", "--range", "-1-2", NULL) < 0);
    CHECK(parse(&o, &e, "capture", "--range", "1-2x", NULL) < 0);
    CHECK(parse(&o, &e, "capture", "--fault-mode", "both", NULL) < 0 && has(e.msg, "--fault-mode must be user or kernel"));
    CHECK(parse(&o, &e, "capture", "--nth", "0", NULL) < 0 && has(e.msg, "--nth needs a number from 1"));
    CHECK(parse(&o, &e, "capture", "--count", "-1", NULL) < 0);
    CHECK(parse(&o, &e, "capture", "--count", "100000", "--gdb", "a:1", "--vmlinux", "v", NULL) == 0);
    /* trace: the bundled VM's options and --gdb's do not mix */
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", "--vmlinux", "v", "--pid", "5", NULL) == 0 && o.trace);
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", NULL) < 0 && has(e.msg, "needs --vmlinux"));
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", "--vmlinux", "v", "--scenario", "read", NULL) < 0 &&
          has(e.msg, "--scenario is for the bundled VM"));
    CHECK(parse(&o, &e, "trace", "--vmlinux", "v", NULL) < 0 && has(e.msg, "--vmlinux goes with --gdb"));
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", "--vmlinux", "v", "--", "prog", NULL) < 0);
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", "--vmlinux", "v", "--expect", "g.jsonl", NULL) < 0 &&
          has(e.msg, "--expect is for the bundled VM"));
    CHECK(parse(&o, &e, "trace", "--gdb", "a:1", "--vmlinux", "v", "--reproducible", NULL) < 0 &&
          has(e.msg, "--reproducible is for the bundled VM"));
    CHECK(parse(&o, &e, "diff", "a.json", "b.json", "-o", "d.txt", NULL) == 0 && o.noperands == 2);
    /* the exception log: entry only, filtered by process and address */
    CHECK(parse(&o, &e, "run", "--entry-log", "--count", "0", "--addr", "0x1000", NULL) == 0 && o.entry_log);
    CHECK(parse(&o, &e, "run", "--entry-log", "--nth", "2", NULL) < 0 && has(e.msg, "--nth do not apply"));
    CHECK(parse(&o, &e, "run", "--entry-log", "--trace", NULL) < 0 && has(e.msg, "does not trace"));
    CHECK(parse(&o, &e, "run", "--follow-fork", "--", "/bin/true", NULL) == 0 && o.follow_fork && o.nprogram == 1);
    CHECK(parse(&o, &e, "capture", "--gdb", "a:1", "--vmlinux", "v", "--exception-log", "l", "--range", "1-2",
                NULL) < 0 && has(e.msg, "--range"));
    /* --reproducible chooses its faults before the guest runs: no filters */
    CHECK(parse(&o, &e, "run", "--reproducible", NULL) == 0 && cmd_repro_check(&o, &e) == 0);
    CHECK(parse(&o, &e, "run", "--reproducible", "--count", "2", NULL) == 0 && cmd_repro_check(&o, &e) < 0 &&
          has(e.msg, "do not apply"));
    CHECK(parse(&o, &e, "trace", "--expect", "g.jsonl", "--fault-mode", "user", NULL) == 0 &&
          cmd_repro_check(&o, &e) < 0 && has(e.msg, "--reproducible captures each trigger's own fault"));
}

static void test_program(void)
{
    cli_options o;
    fl_error e;
    CHECK(parse(&o, &e, "run", "--timeout", "5", "--", "./prog", "--timeout", "x", NULL) == 0);
    CHECK_EQ_U64(o.nprogram, 3);
    CHECK_STR(o.program[0], "./prog");
    CHECK_STR(o.program[1], "--timeout"); /* the program's, not ours */
    CHECK_EQ_U64(o.timeout_s, 5);
}

/* Every row is consistent: a value kind has a metavar and a field, a number
 * a range, a word kind its words; every command takes --help implicitly and
 * lists exactly the rows that name it. */
static void test_rows(void)
{
    for (const cli_option *r = cli_option_rows; r->name; r++) {
        CHECK(r->help && *r->help);
        CHECK(r->commands != 0);
        CHECK(r->kind == CLI_FLAG || (r->metavar && *r->metavar));
        CHECK(r->kind != CLI_INT || r->min <= r->max);
        CHECK(r->kind != CLI_WORD || r->words);
        CHECK(r->kind != CLI_LIST || (r->word_at && r->noun));
        CHECK(!r->check || (r->kind != CLI_FLAG && r->kind != CLI_INT && r->kind != CLI_ADDR && r->kind != CLI_RANGE));
        CHECK(r->at + (r->kind == CLI_FLAG ? sizeof(bool) : sizeof(int)) <= sizeof(cli_options));
    }
    size_t nrows = 0;
    while (cli_option_rows[nrows].name)
        nrows++;
    CHECK(nrows <= CLI_MAX_ROWS); /* cli_options.given has a flag per row */
    for (const cli_command *c = cli_command_rows; c->name; c++) {
        CHECK(cli_command_find(c->name) == c);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cli_help(f, c);
        fclose(f);
        for (const cli_option *r = cli_option_rows; r->name; r++) {
            char want[64];
            snprintf(want, sizeof want, "--%s", r->name);
            if (r->commands & c->bit)
                CHECK(has(buf, want));
        }
        free(buf);
    }
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static size_t temporaries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c faultline-", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return (size_t)n;
}

/* -o: written beside the target, renamed at the first write or at a
 * successful end; an old file survives a run that wrote nothing; inputs
 * and directories refused; a FIFO with no reader gives way to a signal. */
static void test_output(void)
{
    char dir[] = "/tmp/test_cli-XXXXXX", path[256], in[256], buf[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/report.txt", dir);
    snprintf(in, sizeof in, "%s/input", dir);
    cli_options o = { .output = path };
    const char *const none[][2] = { { NULL, NULL } };
    cmd_output out;
    fl_error e;
    CHECK(cmd_output_open(&out, &o, none, &e) == 0);
    CHECK(access(path, F_OK) != 0); /* nothing there until the report begins */
    fputs("one\n", out.f);
    CHECK(cmd_output_close(&out, 0, true) == 0);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "one\n");
    CHECK_EQ_U64(temporaries(dir), 0);
    /* a run that fails before writing leaves the old report */
    CHECK(cmd_output_open(&out, &o, none, &e) == 0);
    CHECK(cmd_output_close(&out, CMD_EXIT_ENV, false) == CMD_EXIT_ENV);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "one\n");
    CHECK_EQ_U64(temporaries(dir), 0);
    /* once written, the report replaces it even if the run then fails */
    CHECK(cmd_output_open(&out, &o, none, &e) == 0);
    fputs("two\n", out.f);
    fflush(out.f);
    slurp(path, buf, sizeof buf);
    CHECK_STR(buf, "two\n"); /* it grows in place */
    CHECK(cmd_output_close(&out, CMD_EXIT_ENV, true) == CMD_EXIT_ENV);
    /* inputs: by path and by hard link */
    FILE *f = fopen(in, "w");
    fputs("input\n", f);
    fclose(f);
    const char *const inputs[][2] = { { "--kernel", in }, { NULL, NULL } };
    o.output = in;
    CHECK(cmd_output_open(&out, &o, inputs, &e) < 0 && has(e.msg, "same file as --kernel"));
    snprintf(path, sizeof path, "%s/link", dir);
    CHECK(link(in, path) == 0);
    o.output = path;
    CHECK(cmd_output_open(&out, &o, inputs, &e) < 0 && has(e.msg, "same file as --kernel"));
    slurp(in, buf, sizeof buf);
    CHECK_STR(buf, "input\n");
    o.output = dir;
    CHECK(cmd_output_open(&out, &o, none, &e) < 0 && has(e.msg, "directory"));
    /* a FIFO nobody reads: the wait for a reader ends on a stop signal */
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK(mkfifo(path, 0600) == 0);
    o.output = path;
    cmd_stop_signal = SIGINT;
    CHECK(cmd_output_open(&out, &o, none, &e) < 0 && e.code == FL_EINTR);
    cmd_stop_signal = 0;
    char rm[300];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    CHECK(system(rm) == 0);
}

int main(void)
{
    test_defaults_and_values();
    test_errors();
    test_filters();
    test_program();
    test_rows();
    test_output();
    return check_summary("test_cli");
}
