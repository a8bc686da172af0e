/* faultline: the command line. Finds the command's row, parses its options
 * from the tables (src/cli_table.c), installs the stop signals and runs the
 * command's handler (src/cmd_*.c). Exit status: 0 every check held, 1 a
 * check failed, 2 usage or environment error, 128+N a signal. */
#include <stdio.h>
#include <string.h>

#include "faultline/cli.h"
#include "faultline/cmd.h"

#ifndef FAULTLINE_SRCDIR
#define FAULTLINE_SRCDIR "."
#endif
#define FAULTLINE_VERSION "0.1.0"

static int version(void)
{
    printf("faultline %s\ntested with QEMU 7.2 (Debian 12) and Linux 6.12 (Debian's linux-source-6.12)\n",
           FAULTLINE_VERSION);
    return 0;
}

static const cli_command *command_or_complain(const char *name)
{
    const cli_command *c = name ? cli_command_find(name) : NULL;
    if (!c)
        fprintf(stderr, "faultline: unknown command '%s' (see 'faultline --help')\n", name ? name : "");
    return c;
}

/* The listings the bash completion and test_help_options.sh read:
 *   --list-commands | --list-options CMD | --list-values CMD OPTION */
static int listing(int argc, char **argv)
{
    if (strcmp(argv[1], "--list-commands") == 0) {
        cli_list_commands(stdout);
        return 0;
    }
    const cli_command *c = command_or_complain(argc > 2 ? argv[2] : NULL);
    if (!c)
        return CMD_EXIT_ENV;
    if (strcmp(argv[1], "--list-options") == 0) {
        cli_list_options(stdout, c);
        return 0;
    }
    if (argc < 4 || cli_list_values(stdout, c, argv[3]) < 0) {
        fprintf(stderr, "faultline: %s takes no value option '%s'\n", c->name, argc < 4 ? "" : argv[3]);
        return CMD_EXIT_ENV;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return CMD_EXIT_ENV;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        cli_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0)
        return version();
    if (strncmp(name, "--list-", 7) == 0)
        return listing(argc, argv);
    const cli_command *cmd = command_or_complain(name);
    if (!cmd)
        return CMD_EXIT_ENV;
    cli_options o;
    fl_error err = { 0 };
    int p = cli_parse(cmd, argc - 1, argv + 1, &o, &err);
    if (p == 1) {
        cli_help(stdout, cmd);
        return 0;
    }
    if (p < 0) {
        fprintf(stderr, "faultline %s: %s\n", cmd->name, err.msg);
        return CMD_EXIT_ENV;
    }
    if (!cmd->run)
        return version();
#ifdef FAULTLINE_DATADIR
    cmd_set_guest_dir(FAULTLINE_DATADIR); /* an installed binary */
#else
    cmd_set_guest_dir(FAULTLINE_SRCDIR "/build/vm");
#endif
    /* QEMU must never outlive us: the stop signals and exit() kill it. */
    cmd_install_signals();
    return cmd->run(&o);
}
