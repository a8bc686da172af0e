/* cli_help: the texts generated from the rows: `faultline --help`,
 * `faultline CMD --help`, and the listings the bash completion and
 * test_help_options.sh read. */
#include "faultline/cli.h"

#include <string.h>

enum { HELP_COLUMN = 19 }; /* where help text starts, after two spaces */

void cli_usage(FILE *out)
{
    fputs("usage: faultline COMMAND [OPTIONS]\n"
          "\n"
          "Watch the Linux kernel handle a page fault, from the hardware up, with live values.\n"
          "\n"
          "commands:\n",
          out);
    for (const cli_command *c = cli_command_rows; c->name; c++)
        fprintf(out, "  %-9s %s\n", c->name, c->summary);
    fputs("\n"
          "'faultline COMMAND --help' lists a command's options.\n"
          "exit status: 0 every check held, 1 a check failed (or the guest's program\n"
          "reported a failure), 2 usage or environment error, 128+N a signal.\n",
          out);
}

/* "-o, --output FILE" or "--timeout SEC" */
static void option_label(const cli_option *r, char *buf, size_t cap)
{
    size_t n = 0;
    if (r->short_name)
        n = (size_t)snprintf(buf, cap, "-%c, ", r->short_name);
    snprintf(buf + n, cap - n, "--%s%s%s", r->name, r->kind == CLI_FLAG ? "" : " ", r->kind == CLI_FLAG ? "" : r->metavar);
}

/* The help text, continuation lines indented under the first. */
static void print_help_text(FILE *out, const char *label, const char *help)
{
    fprintf(out, "  %-*s", HELP_COLUMN, label);
    if ((int)strlen(label) >= HELP_COLUMN)
        fprintf(out, "\n  %-*s", HELP_COLUMN, "");
    for (const char *p = help;;) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "%.*s\n", (int)n, p);
        if (!p[n])
            break;
        p += n + 1;
        fprintf(out, "  %-*s", HELP_COLUMN, "");
    }
}

void cli_help(FILE *out, const cli_command *cmd)
{
    fprintf(out, "usage: faultline %s %s\n\n%s\n\n", cmd->name, cmd->synopsis, cmd->description);
    bool any = false;
    for (const cli_option *r = cli_option_rows; r->name; r++) {
        if (!cli_row_applies(cmd, r))
            continue;
        if (!any)
            fputs("options:\n", out);
        any = true;
        char label[64];
        option_label(r, label, sizeof label);
        print_help_text(out, label, r->help);
    }
    if (cmd->takes_program)
        print_help_text(out, "-- PROGRAM [ARGS]", "run PROGRAM (a static x86-64 ELF binary) in the guest instead of a scenario");
    print_help_text(out, "--help", "print this help and exit");
}

void cli_list_commands(FILE *out)
{
    for (const cli_command *c = cli_command_rows; c->name; c++)
        fprintf(out, "%s\n", c->name);
}

void cli_list_options(FILE *out, const cli_command *cmd)
{
    for (const cli_option *r = cli_option_rows; r->name; r++) {
        if (!cli_row_applies(cmd, r))
            continue;
        if (r->short_name)
            fprintf(out, "-%c\n", r->short_name);
        fprintf(out, "--%s\n", r->name);
    }
}

int cli_list_values(FILE *out, const cli_command *cmd, const char *option)
{
    const cli_option *r = cli_option_find(cmd, option);
    if (!r || r->kind == CLI_FLAG)
        return -1;
    static const char *const kinds[] = {
        [CLI_STRING] = "none", [CLI_PATH] = "files", [CLI_WORD] = "words", [CLI_LIST] = "list",
        [CLI_INT] = "none",    [CLI_ADDR] = "none",  [CLI_ENDPOINT] = "endpoint", [CLI_RANGE] = "none",
        [CLI_PATHS] = "files",
    };
    fprintf(out, "%s\n", kinds[r->kind]);
    const char *w;
    for (int i = 0; r->words && (w = r->words[i]); i++)
        fprintf(out, "%s\n", w);
    for (int i = 0; r->word_at && (w = r->word_at(i)); i++)
        fprintf(out, "%s\n", w);
    return 0;
}
