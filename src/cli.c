/* cli: the generic parser and the texts generated from the option and
 * command rows (see include/faultline/cli.h; the rows are in cli_table.c). */
#include "faultline/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const cli_command *cli_command_find(const char *name)
{
    for (const cli_command *c = cli_command_rows; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* Does `arg` ("--name", "--name=v", "-o", "-ov") name row r? */
static bool option_matches(const cli_option *r, const char *arg)
{
    if (arg[0] != '-')
        return false;
    if (arg[1] == '-') {
        size_t n = strcspn(arg + 2, "=");
        return strlen(r->name) == n && strncmp(arg + 2, r->name, n) == 0;
    }
    return r->short_name && arg[1] == r->short_name;
}

/* The first row of this name for cmd; with cmd NULL, any row of that name. */
static const cli_option *row_for(const cli_command *cmd, const char *arg)
{
    for (const cli_option *r = cli_option_rows; r->name; r++)
        if (option_matches(r, arg) && (!cmd || (r->commands & cmd->bit)))
            return r;
    return NULL;
}

const cli_option *cli_option_find(const cli_command *cmd, const char *arg)
{
    return row_for(cmd, arg);
}

bool cli_row_applies(const cli_command *cmd, const cli_option *r)
{
    if (!(r->commands & cmd->bit))
        return false;
    for (const cli_option *q = cli_option_rows; q != r; q++)
        if ((q->commands & cmd->bit) && strcmp(q->name, r->name) == 0)
            return false;
    return true;
}

static void *field(cli_options *o, const cli_option *r)
{
    return (char *)o + r->at;
}

/* "a, b or c" of a word list or a LIST row's names. */
static void words_sentence(const cli_option *r, char *buf, size_t cap)
{
    size_t n = 0, used = 0;
    const char *w;
    buf[0] = '\0';
    while ((w = r->words ? r->words[n] : r->word_at(n)))
        n++;
    for (size_t i = 0; i < n && used < cap; i++) {
        w = r->words ? r->words[i] : r->word_at(i);
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", w);
    }
}

static bool word_known(const cli_option *r, const char *v, size_t len)
{
    const char *w;
    for (int i = 0; (w = r->words ? r->words[i] : r->word_at(i)); i++)
        if (strlen(w) == len && strncmp(w, v, len) == 0)
            return true;
    return false;
}

static int parse_number(const cli_option *r, const char *v, cli_options *o, fl_error *err)
{
    char *end;
    errno = 0;
    bool neg = v[0] == '-';
    unsigned long long x = neg ? 0 : strtoull(v, &end, 0);
    if (r->kind == CLI_ADDR) {
        if (neg || errno || end == v || *end || x == 0)
            return fl_fail(err, FL_EUSAGE, "--%s needs %s such as 0x7f0000000100, not '%s'", r->name,
                           r->what ? r->what : "a non-zero address", v);
        *(uint64_t *)field(o, r) = x;
        return 0;
    }
    if (neg || errno || end == v || *end || x < (unsigned long long)r->min || x > (unsigned long long)r->max)
        return fl_fail(err, FL_EUSAGE, "--%s needs %s from %lld to %lld, not '%s'", r->name,
                       r->what ? r->what : "a number", r->min, r->max, v);
    *(int *)field(o, r) = (int)x;
    return 0;
}

/* One address of a range: digits up to `stop`; -1 if not a number. */
static int range_end(const char *s, char stop, unsigned long long *v, const char **rest)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    *v = strtoull(s, &end, 0);
    if (errno || end == s || *end != stop)
        return -1;
    *rest = end;
    return 0;
}

static int parse_range(const cli_option *r, const char *v, cli_options *o, fl_error *err)
{
    unsigned long long lo, hi;
    const char *rest;
    if (range_end(v, '-', &lo, &rest) < 0 || range_end(rest + 1, '\0', &hi, &rest) < 0 || lo >= hi)
        return fl_fail(err, FL_EUSAGE, "--%s needs two addresses LO-HI with LO below HI, such as "
                       "0x7f0000000000-0x7f0000001000, not '%s'", r->name, v);
    *(cli_range *)field(o, r) = (cli_range){ lo, hi };
    return 0;
}

static int parse_list(const cli_option *r, const char *v, fl_error *err)
{
    if (!*v)
        return fl_fail(err, FL_EUSAGE, "--%s needs at least one %s (comma-separated), not an empty list", r->name, r->noun);
    for (const char *p = v;; p++) {
        size_t n = strcspn(p, ",");
        if (!word_known(r, p, n)) {
            char all[512];
            words_sentence(r, all, sizeof all);
            return fl_fail(err, FL_EUSAGE, "--%s: '%.*s' is not a %s; the %ss are %s", r->name, (int)n, p, r->noun,
                           r->noun, all);
        }
        p += n;
        if (!*p)
            return 0;
    }
}

bool cli_given(const cli_options *o, const char *name)
{
    for (const cli_option *r = cli_option_rows; r->name && r - cli_option_rows < CLI_MAX_ROWS; r++)
        if (o->given[r - cli_option_rows] && strcmp(r->name, name) == 0)
            return true;
    return false;
}

/* Store one value (as typed) in the row's field. */
static int set_value(const cli_option *r, const char *v, cli_options *o, fl_error *err)
{
    switch (r->kind) {
    case CLI_FLAG:
        *(bool *)field(o, r) = true;
        return 0;
    case CLI_INT:
    case CLI_ADDR:
        return parse_number(r, v, o, err);
    case CLI_RANGE:
        return parse_range(r, v, o, err);
    case CLI_STRING:
        if (r->max && strlen(v) > (size_t)r->max)
            return fl_fail(err, FL_EUSAGE, "--%s takes at most %lld characters (%s), not '%s'", r->name, r->max,
                           r->what ? r->what : "its limit", v);
        break;
    case CLI_WORD:
        if (!r->check && !word_known(r, v, strlen(v))) {
            char all[256];
            words_sentence(r, all, sizeof all);
            return fl_fail(err, FL_EUSAGE, "--%s must be %s, not '%s'", r->name, all, v);
        }
        break;
    case CLI_LIST:
        if (parse_list(r, v, err) < 0)
            return -1;
        break;
    case CLI_PATH:
    case CLI_ENDPOINT:
        if (!*v)
            return fl_fail(err, FL_EUSAGE, "--%s needs a non-empty %s", r->name, r->metavar);
        break;
    case CLI_PATHS: {
        cli_many *m = field(o, r);
        if (!*v)
            return fl_fail(err, FL_EUSAGE, "--%s needs a non-empty %s", r->name, r->metavar);
        if (m->n == CLI_MANY_MAX)
            return fl_fail(err, FL_EUSAGE, "--%s may be given at most %d times", r->name, CLI_MANY_MAX);
        m->v[m->n++] = v;
        return 0;
    }
    }
    *(const char **)field(o, r) = v;
    return 0;
}

static int apply_defaults(const cli_command *cmd, cli_options *o, fl_error *err)
{
    memset(o, 0, sizeof *o);
    o->command = cmd->bit;
    for (const cli_option *r = cli_option_rows; r->name; r++)
        if (r->def && cli_row_applies(cmd, r) && set_value(r, r->def, o, err) < 0)
            return -1;
    return 0;
}

/* One option word at argv[*i]; its value may be attached or the next word. */
static int parse_one(const cli_command *cmd, int argc, char **argv, int *i, cli_options *o, fl_error *err)
{
    const char *arg = argv[*i];
    const cli_option *r = row_for(cmd, arg);
    if (!r) {
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        const cli_option *other = row_for(NULL, arg);
        if (other)
            return fl_fail(err, FL_EUSAGE, "option --%s does not apply to this command (see 'faultline %s --help')",
                           other->name, cmd->name);
        return fl_fail(err, FL_EUSAGE, "unknown option %.*s (see 'faultline %s --help')", (int)strcspn(arg, "="), arg,
                       cmd->name);
    }
    const char *v = NULL;
    if (arg[1] == '-' && strchr(arg, '='))
        v = strchr(arg, '=') + 1;
    else if (arg[1] != '-' && arg[2])
        v = arg + 2;
    if (r - cli_option_rows < CLI_MAX_ROWS)
        o->given[r - cli_option_rows] = true;
    if (r->kind == CLI_FLAG)
        return v ? fl_fail(err, FL_EUSAGE, "--%s takes no value, not '%s'", r->name, v) : set_value(r, NULL, o, err);
    if (!v) {
        if (*i + 1 >= argc)
            return fl_fail(err, FL_EUSAGE, "--%s needs a value (%s)", r->name, r->metavar);
        v = argv[++*i];
    }
    return set_value(r, v, o, err);
}

static int check_all(const cli_command *cmd, cli_options *o, fl_error *err)
{
    if (cmd->check && cmd->check(o, err) < 0)
        return -1;
    for (const cli_option *r = cli_option_rows; r->name; r++) {
        if (!r->check || !cli_row_applies(cmd, r))
            continue;
        const char *v = *(const char *const *)((const char *)o + r->at);
        if (v && r->check(o, v, err) < 0)
            return -1;
    }
    return 0;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_options *o, fl_error *err)
{
    if (apply_defaults(cmd, o, err) < 0)
        return -1;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if ((a[0] != '-' || a[1] == '\0') && o->noperands < cmd->max_operands) {
            o->operands[o->noperands++] = a;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0')
            return fl_fail(err, FL_EUSAGE, "unexpected argument '%s'%s", a,
                           cmd->takes_program ? " (a program to run goes after '--')" : "");
        int rc = parse_one(cmd, argc, argv, &i, o, err);
        if (rc != 0)
            return rc;
    }
    if (i < argc) {
        if (!cmd->takes_program)
            return fl_fail(err, FL_EUSAGE, "'faultline %s' runs no program: unexpected '%s' after '--'", cmd->name,
                           argv[i]);
        o->program = argv + i;
        o->nprogram = argc - i;
    }
    return check_all(cmd, o, err);
}
