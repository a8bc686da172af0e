/* libFuzzer: the command line's option parser (src/cli.c over the rows of
 * src/cli_table.c) on argument vectors built from the input: the first
 * byte picks the command, the rest is split into arguments at NUL bytes.
 * No crash, no over-read, and a parse that succeeds leaves only values the
 * rows allow. The texts generated from the rows are exercised too. */
#include "faultline/cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ARGS = 64 };

static void check_values(const cli_options *o)
{
    /* 0: a command without --timeout (version); a matrix cell may take a day */
    if (o->timeout_s < 0 || o->timeout_s > (o->command == CLI_MATRIX ? 86400 : 3600) || o->count < 0)
        abort();
    if ((o->command & (CLI_RUN | CLI_TRACE | CLI_CAPTURE | CLI_BOOT)) && o->timeout_s < 1)
        abort();
    if (o->comm && strlen(o->comm) > 15)
        abort();
    if (o->probes && !*o->probes)
        abort();
    if (o->range.hi && o->range.lo >= o->range.hi)
        abort();
    if (o->nth < 0 || (o->fault_mode && strcmp(o->fault_mode, "user") && strcmp(o->fault_mode, "kernel")))
        abort();
    if (o->nprogram < 0 || (o->nprogram && !o->program[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (size < 1 || size > 4096)
        return 0;
    size_t ncmd = 0;
    while (cli_command_rows[ncmd].name)
        ncmd++;
    const cli_command *cmd = &cli_command_rows[data[0] % ncmd];
    /* A NUL-terminated copy, split at its NULs into arguments. */
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = (char *)cmd->name;
    for (size_t i = 0; i < size - 1 && argc < MAX_ARGS; i += strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    argv[argc] = NULL;
    cli_options o;
    fl_error err;
    int rc = cli_parse(cmd, argc, argv, &o, &err);
    if (rc == 0)
        check_values(&o);
    else if (rc < 0 && (err.code != FL_EUSAGE || !err.msg[0]))
        abort(); /* every refusal is a usage error with its sentence */
    if (argc > 1 && sink) {
        cli_list_values(sink, cmd, argv[1]);
        if (data[0] & 0x80)
            cli_help(sink, cmd);
    }
    free(buf);
    return 0;
}
