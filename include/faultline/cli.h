/* cli: the command line as data. A command is a row (name, what it does,
 * its handler); an option is a row (name, argument, range or words, help,
 * the commands that take it). One generic parser fills struct cli_options
 * from argv; `faultline CMD --help`, every usage error, the listings the
 * bash completion asks for (`faultline --list-options CMD`, `--list-values
 * CMD OPTION`, `--list-commands`) and the man-page check
 * (tests/integration/test_help_options.sh) all come from the same rows.
 * The pattern is bpftool's `struct cmd` and QEMU gdbstub's GdbCmdParseEntry.
 *
 * HOW TO ADD AN OPTION
 *   1. If it carries a value no existing field holds, add one field to
 *      struct cli_options below (a flag is a bool, a number an int or
 *      uint64_t, anything else a const char *).
 *   2. Add one row to cli_option_rows[] in src/cli_table.c, e.g.
 *        { .name = "expect", .kind = CLI_PATH, .metavar = "FILE",
 *          .at = CLI_AT(expect), .commands = CLI_RUN | CLI_CAPTURE,
 *          .help = "compare the report with FILE" },
 *      A number gives .min/.max (and, optionally, .what: "seconds"); a word
 *      from a fixed set gives .words (NULL-terminated) and kind CLI_WORD; a
 *      default goes in .def as it would be typed ("60"). Two rows may share
 *      a name when commands need different help or words (the first row
 *      whose .commands has the command wins).
 *   3. Document it in docs/man/faultline.1 under each command that takes it
 *      (test_help_options.sh fails until the man page, --help and the
 *      completion agree). The completion needs nothing: it asks the binary.
 *   A new word of an existing option (--view explain) is one more string in
 *   its row's .words array.
 *
 * HOW TO ADD A COMMAND
 *   1. Add a bit to enum cli_command_bit below.
 *   2. Write its handler `int cmd_NAME(const cli_options *o)` (returns the
 *      exit status) in src/cmd_NAME.c, declared in include/faultline/cmd.h.
 *   3. Add one row to cli_command_rows[] in src/cli_table.c (name, bit,
 *      synopsis, one-line summary, description, handler, optional
 *      cross-option check) and add the bit to the .commands of every option
 *      row it takes (--help is implicit).
 *   4. Document it in docs/man/faultline.1 (.SH COMMANDS and .SS NAME).
 *
 * Nothing here prints on its own: help and listings go to the FILE the
 * caller gives, errors into fl_error (see error.h). */
#ifndef FAULTLINE_CLI_H
#define FAULTLINE_CLI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "faultline/error.h"

/* One bit per command: an option row names the commands that take it. */
enum cli_command_bit {
    CLI_RUN = 1u << 0,
    CLI_TRACE = 1u << 1,
    CLI_CAPTURE = 1u << 2,
    CLI_BOOT = 1u << 3,
    CLI_VERSION = 1u << 4,
    CLI_DIFF = 1u << 5,
    CLI_MATRIX = 1u << 6,
};

/* A repeatable option's values (CLI_PATHS: --kernel A --kernel B). */
#define CLI_MANY_MAX 16
typedef struct cli_many {
    const char *v[CLI_MANY_MAX];
    int n;
} cli_many;
#define CLI_OPERANDS_MAX 16

/* Every value any command's options can carry. Filled by cli_parse: first
 * every row's .def, then argv. */
/* An address range, LO inclusive, HI exclusive; hi == 0: none given. */
typedef struct cli_range {
    uint64_t lo, hi;
} cli_range;

#define CLI_MAX_ROWS 128
typedef struct cli_options {
    unsigned command;      /* the cli_command_bit being run */
    bool given[CLI_MAX_ROWS]; /* by row index: typed on the command line */
    const char *scenario;
    const char *accel;
    const char *format;
    const char *output;
    const char *kernel;    /* --kernel (run) or --vmlinux (capture, trace --gdb) */
    const char *initrd;
    const char *source_dir; /* --source-dir: the kernel's source tree (like GDB's substitute-path) */
    const char *gdb;
    const char *comm;
    const char *probes;
    int pid;
    uint64_t addr;
    bool addr_page;
    int count;
    cli_range range;       /* --range LO-HI */
    const char *fault_mode;/* --fault-mode user|kernel */
    int nth;               /* --nth N: the N-th matching fault (0: the first) */
    int timeout_s;
    char **program;        /* after "--" */
    int nprogram;
    /* trace (faultline trace, or run --trace) */
    bool trace;
    const char *until;
    const char *over;
    const char *mode;
    const char *view;
    int max_steps;
    const char *function;  /* --view explain / folded / svg: narrate only this function */
    int depth;             /* ... and calls at most this deep below it */
    /* CI: reproducible runs, golden files, diff, matrix (docs/ci.md) */
    bool reproducible;
    const char *expect;    /* --expect FILE: compare the run with it */
    bool update_expect;    /* --update-expect: rewrite FILE instead */
    const char *operands[CLI_OPERANDS_MAX]; /* words that are not options
                              (diff A B, matrix --merge DIR...) */
    int noperands;
    const char *scenarios; /* matrix: "all" or a list */
    cli_many kernels;      /* matrix: --kernel, repeated */
    const char *accels;    /* matrix: "tcg,kvm" */
    int jobs;              /* matrix: parallel cells (0: the number of cores) */
    const char *out_dir;   /* matrix: --out DIR */
    const char *junit;     /* matrix: --junit FILE */
    const char *shard;     /* matrix: --shard K/N */
    bool merge;            /* matrix --merge DIR...: merge shards' results */
    /* the entry station from QEMU's exception log (exclog.h) */
    const char *exception_log; /* capture --exception-log FILE */
    bool entry_log;            /* run --entry-log */
    bool follow_fork;          /* run/trace -- PROGRAM --follow-fork */
} cli_options;

enum cli_kind {
    CLI_FLAG,      /* no value: sets a bool */
    CLI_STRING,    /* free text (.max: longest length, 0 none) -> const char * */
    CLI_PATH,      /* a file -> const char * (completion offers files) */
    CLI_WORD,      /* one of .words -> const char * */
    CLI_LIST,      /* comma-separated names from .word_at, at least one -> const char * */
    CLI_INT,       /* decimal or 0x number in .min ... .max -> int */
    CLI_ADDR,      /* non-zero 64-bit address -> uint64_t */
    CLI_ENDPOINT,  /* unix:PATH or HOST:PORT -> const char * */
    CLI_RANGE,     /* LO-HI, two addresses, LO < HI -> cli_range */
    CLI_PATHS,     /* a file, repeatable -> cli_many */
};

/* Where a row's value lands in struct cli_options. */
#define CLI_AT(field) offsetof(cli_options, field)

typedef struct cli_option {
    const char *name;          /* long name without "--" */
    char short_name;           /* 'o', or 0 */
    enum cli_kind kind;
    const char *metavar;       /* "SEC", "FILE" (not for CLI_FLAG) */
    size_t at;                 /* CLI_AT(field) */
    unsigned commands;         /* CLI_RUN | CLI_TRACE ... */
    const char *help;          /* '\n' starts an indented continuation line */
    const char *def;           /* default as typed, or NULL */
    long long min, max;        /* CLI_INT range; CLI_STRING: .max length */
    const char *what;          /* CLI_INT/CLI_ADDR: "a number", "seconds" */
    const char *const *words;  /* CLI_WORD: allowed words, NULL-terminated */
    /* CLI_LIST: the i-th allowed name, NULL past the end; .noun names one
     * ("station") in errors. */
    const char *(*word_at)(int i);
    const char *noun;
    /* Optional check of the value once every option is parsed (it may
     * depend on others, e.g. --format chrome needs --trace); for rows whose
     * value is a string (CLI_WORD, CLI_STRING, CLI_PATH, CLI_LIST,
     * CLI_ENDPOINT). A CLI_WORD row with a check leaves the words to it. */
    int (*check)(const cli_options *o, const char *value, fl_error *err);
} cli_option;

typedef struct cli_command {
    const char *name;
    unsigned bit;
    const char *synopsis;      /* after "faultline NAME" in the usage line */
    const char *summary;       /* one line for `faultline --help` */
    const char *description;   /* a paragraph for `faultline NAME --help` */
    bool takes_program;        /* accepts "-- PROGRAM [ARGS]" */
    int max_operands;          /* words that are not options it takes (into
                                  .operands; 0: none) */
    int (*run)(const cli_options *o);
    /* Optional cross-option check after parsing (required options, ...);
     * it may also set what the command implies (trace sets .trace). Runs
     * before the rows' own .check. */
    int (*check)(cli_options *o, fl_error *err);
} cli_command;

/* The tables (src/cli_table.c), each ended by a row with name NULL. */
extern const cli_option cli_option_rows[];
extern const cli_command cli_command_rows[];

const cli_command *cli_command_find(const char *name);
/* The row of option `arg` ("--format", "-o", "--format=x") that applies to
 * command `cmd`, or NULL. */
const cli_option *cli_option_find(const cli_command *cmd, const char *arg);

/* Is r the row cmd uses for its name (it names cmd, and no earlier row of
 * the same name does)? */
bool cli_row_applies(const cli_command *cmd, const cli_option *r);

/* Was option `name` (without "--") typed, as opposed to defaulted? */
bool cli_given(const cli_options *o, const char *name);

/* Parse argv (argv[0] is the command's name) into *o. Returns 0, 1 when
 * --help was asked for, -1 with one sentence in err (FL_EUSAGE). The
 * strings in *o point into argv or the tables. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_options *o, fl_error *err);

/* Texts generated from the rows. */
void cli_usage(FILE *out);                                  /* faultline --help */
void cli_help(FILE *out, const cli_command *cmd);           /* faultline CMD --help */
void cli_list_commands(FILE *out);                          /* one name a line */
void cli_list_options(FILE *out, const cli_command *cmd);   /* "--name" / "-o" a line */
/* What completes the value of `option` for cmd: a first line naming the
 * kind (none, files, words, list, endpoint), then one word a line. -1 if
 * the option is not cmd's or takes no value. */
int cli_list_values(FILE *out, const cli_command *cmd, const char *option);

#endif
