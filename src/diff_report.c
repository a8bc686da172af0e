/* diff: the result as text for a terminal, Markdown, or JSON Lines (the
 * "diff" record, then one "fault-diff" record per fault). Text and Markdown
 * share the walk; only the decorations differ. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"

typedef struct out_ctx {
    FILE *o;
    bool md;
    bool fenced; /* inside a Markdown code block: nothing to escape */
} out_ctx;

static const char *js(json_t *v)
{
    static char buf[8][96];
    static int slot;
    if (!v || json_is_null(v))
        return "-";
    if (json_is_string(v))
        return json_string_value(v);
    char *b = buf[slot++ % 8];
    if (json_is_integer(v))
        snprintf(b, 96, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(b, 96, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(b, 96, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(b, 96, "(value)");
    return b;
}

static const char *get(json_t *o, const char *k)
{
    return js(json_object_get(o, k));
}

/* Markdown table cells: '|' escaped, newlines and backticks kept out. */
static void cell(out_ctx *c, const char *s)
{
    for (; s && *s; s++) {
        if (c->md && !c->fenced && *s == '|')
            fputs("\\|", c->o);
        else
            fputc(*s == '\n' || *s == '\t' ? ' ' : *s, c->o);
    }
}

static void names(out_ctx *c, json_t *arr, size_t limit)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i == limit) {
            fprintf(c->o, " ... (%zu more)", json_array_size(arr) - limit);
            break;
        }
        fprintf(c->o, c->md && !c->fenced ? "%s`%s`" : "%s%s", i ? ", " : "", js(v));
    }
}

static void head(out_ctx *c, const diff_result *r)
{
    json_t *a = json_object_get(r->head, "a"), *b = json_object_get(r->head, "b");
    if (c->md) {
        fprintf(c->o, "# faultline diff\n\n| | file | kernel | accel | faults |\n|---|---|---|---|---|\n");
        fprintf(c->o, "| A | %s | %s | %s | %s |\n", get(a, "file"), get(a, "kernel"), get(a, "accel"), get(a, "faults"));
        fprintf(c->o, "| B | %s | %s | %s | %s |\n\n", get(b, "file"), get(b, "kernel"), get(b, "accel"), get(b, "faults"));
    } else {
        fprintf(c->o, "faultline diff\n  A: %s (%s, %s)\n  B: %s (%s, %s)\n", get(a, "file"), get(a, "kernel"),
                get(a, "accel"), get(b, "file"), get(b, "kernel"), get(b, "accel"));
    }
    json_t *nc = json_object_get(r->head, "not_compared");
    size_t i;
    json_t *row;
    fprintf(c->o, "%snot compared (they vary from run to run): ", c->md ? "" : "  ");
    json_array_foreach(nc, i, row) fprintf(c->o, "%s%s", i ? ", " : "", get(row, "field"));
    fprintf(c->o, "\n\n");
}

static void trigger(out_ctx *c, json_t *t)
{
    json_t *changed = json_object_get(t, "changed");
    if (!t || !json_array_size(changed))
        return;
    fprintf(c->o, c->md ? "**trigger**: " : "  trigger: ");
    size_t i;
    json_t *ch;
    json_array_foreach(changed, i, ch) {
        fprintf(c->o, "%s%s ", i ? "; " : "", get(ch, "name"));
        cell(c, get(ch, "a"));
        fputs(" -> ", c->o);
        cell(c, get(ch, "b"));
    }
    fprintf(c->o, "\n%s", c->md ? "\n" : "");
}

static void decoded(out_ctx *c, const char *d, bool paren)
{
    if (!d)
        return;
    fputs(paren ? " (" : "", c->o);
    cell(c, d);
    fputs(paren ? ")" : "", c->o);
}

static void only_bits(out_ctx *c, json_t *ch)
{
    const char *keys[2][2] = { { "bits_only_a", "only A" }, { "bits_only_b", "only B" } };
    for (int s = 0; s < 2; s++) {
        json_t *arr = json_object_get(ch, keys[s][0]);
        if (!json_array_size(arr))
            continue;
        fprintf(c->o, c->md ? "%s: " : "  [%s: ", keys[s][1]);
        names(c, arr, 20);
        fputs(c->md ? " " : "]", c->o);
    }
}

static void value_line(out_ctx *c, json_t *ch)
{
    const char *da = json_string_value(json_object_get(ch, "a_decoded"));
    const char *db = json_string_value(json_object_get(ch, "b_decoded"));
    if (c->md) {
        fprintf(c->o, "| `%s` | %s | ", get(ch, "name"), get(ch, "a"));
        decoded(c, da, false);
        fprintf(c->o, " | %s | ", get(ch, "b"));
        decoded(c, db, false);
        fputs(" | ", c->o);
        only_bits(c, ch);
        fputs(" |\n", c->o);
        return;
    }
    fprintf(c->o, "      %-22s %s", get(ch, "name"), get(ch, "a"));
    decoded(c, da, true);
    fprintf(c->o, " -> %s", get(ch, "b"));
    decoded(c, db, true);
    only_bits(c, ch);
    fputs("\n", c->o);
}

static void station(out_ctx *c, json_t *st)
{
    const char *only = json_string_value(json_object_get(st, "only"));
    json_t *vc = json_object_get(st, "values_changed"), *fc = json_object_get(st, "changed");
    size_t nv = json_array_size(vc), nsame = json_array_size(json_object_get(st, "values_same"));
    fprintf(c->o, c->md ? "### station %s `%s`\n\n" : "  station %s %s: ", get(st, "station"), get(st, "function"));
    if (only) {
        fprintf(c->o, "only in %s\n%s", only[0] == 'a' ? "A" : "B", c->md ? "\n" : "");
        return;
    }
    fprintf(c->o, "%zu value%s changed, %zu the same\n%s", nv, nv == 1 ? "" : "s", nsame, c->md ? "\n" : "");
    size_t i;
    json_t *ch;
    if (nv && c->md)
        fprintf(c->o, "| value | A | A decoded | B | B decoded | bits only on one side |\n|---|---|---|---|---|---|\n");
    json_array_foreach(vc, i, ch) value_line(c, ch);
    json_array_foreach(fc, i, ch) {
        fprintf(c->o, c->md ? "| %s | " : "      %-22s ", get(ch, "name"));
        cell(c, get(ch, "a"));
        fputs(c->md ? " | | " : " -> ", c->o);
        cell(c, get(ch, "b"));
        fputs(c->md ? " | | |\n" : "\n", c->o);
    }
    const char *sides[2][2] = { { "values_only_a", "only in A" }, { "values_only_b", "only in B" } };
    for (int s = 0; s < 2; s++) {
        json_t *arr = json_object_get(st, sides[s][0]);
        if (json_array_size(arr)) {
            fprintf(c->o, "%s%s: ", c->md ? "\n" : "    ", sides[s][1]);
            names(c, arr, 30);
            fputs("\n", c->o);
        }
    }
    if (nsame) {
        fprintf(c->o, "%ssame: ", c->md ? "\n" : "    ");
        names(c, json_object_get(st, "values_same"), c->md ? 60 : 12);
        fputs(c->md ? "\n\n" : "\n", c->o);
    }
}

static void checks(out_ctx *c, json_t *ck)
{
    json_t *changed = json_object_get(ck, "changed");
    size_t nc = json_array_size(changed), ns = json_array_size(json_object_get(ck, "same"));
    fprintf(c->o, c->md ? "### checks\n\n%zu changed, %zu the same\n\n" : "  checks: %zu changed, %zu the same\n", nc, ns);
    size_t i;
    json_t *ch;
    json_array_foreach(changed, i, ch) {
        fprintf(c->o, c->md ? "- `%s`: " : "      %s: ", get(ch, "name"));
        fprintf(c->o, "%s -> %s; expected ", json_is_true(json_object_get(ch, "a_ok")) ? "ok" : "FAILED",
                json_is_true(json_object_get(ch, "b_ok")) ? "ok" : "FAILED");
        cell(c, get(ch, "a_expected"));
        fputs(" -> ", c->o);
        cell(c, get(ch, "b_expected"));
        fputs("; actual ", c->o);
        cell(c, get(ch, "a_actual"));
        fputs(" -> ", c->o);
        cell(c, get(ch, "b_actual"));
        fputs("\n", c->o);
    }
    const char *sides[2][2] = { { "only_a", "only in A" }, { "only_b", "only in B" } };
    for (int s = 0; s < 2; s++) {
        json_t *arr = json_object_get(ck, sides[s][0]);
        if (json_array_size(arr)) {
            fprintf(c->o, "%s%s: ", c->md ? "- " : "    ", sides[s][1]);
            names(c, arr, 30);
            fputs("\n", c->o);
        }
    }
    if (c->md)
        fputs("\n", c->o);
}

/* "t=312 do_user_addr_fault arch/x86/mm/fault.c:1282  flags |= ..." */
static void path_rec(out_ctx *c, const char *mark, json_t *r)
{
    if (!r || json_is_null(r))
        return;
    fprintf(c->o, "%s%s t=%s %s %s:%s", c->md ? "    " : "      ", mark, get(r, "t"), get(r, "function"),
            get(r, "file"), get(r, "line"));
    const char *src = json_string_value(json_object_get(r, "source"));
    if (src && *src) {
        fputs("   ", c->o);
        for (; *src == ' ' || *src == '\t'; src++)
            ;
        cell(c, src);
    }
    fputs("\n", c->o);
}

static void first_divergence(out_ctx *c, json_t *fd)
{
    if (!fd || json_is_null(fd))
        return;
    fprintf(c->o, c->md ? "**First divergence** (A line %s, B line %s)%s\n\n" : "    first divergence (A line %s, B line %s)%s\n",
            get(fd, "a_index"), get(fd, "b_index"), json_is_null(json_object_get(fd, "after")) ? "" : ", after:");
    if (c->md)
        fputs("```\n", c->o);
    c->fenced = c->md;
    path_rec(c, " ", json_object_get(fd, "after"));
    path_rec(c, "A", json_object_get(fd, "a"));
    path_rec(c, "B", json_object_get(fd, "b"));
    c->fenced = false;
    if (c->md)
        fputs("```\n\n", c->o);
}

static void functions(out_ctx *c, json_t *t)
{
    const char *sides[2][2] = { { "functions_only_a", "functions only in A" }, { "functions_only_b", "functions only in B" } };
    for (int s = 0; s < 2; s++) {
        json_t *arr = json_object_get(t, sides[s][0]);
        fprintf(c->o, c->md ? "**%s**: " : "    %s: ", sides[s][1]);
        if (json_array_size(arr))
            names(c, arr, 40);
        else
            fputs("none", c->o);
        fputs(c->md ? "\n\n" : "\n", c->o);
    }
    json_t *rows = json_object_get(t, "functions");
    if (c->md)
        fputs("| function | A insns | B insns | change |\n|---|---|---|---|\n", c->o);
    else
        fprintf(c->o, "    instructions per function (largest change first):\n      %8s %8s %8s  function\n", "A",
                "B", "change");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (i == (c->md ? 60 : 25)) {
            fprintf(c->o, c->md ? "\n(%zu more)\n" : "      ... %zu more\n", json_array_size(rows) - i);
            break;
        }
        long long a = json_integer_value(json_object_get(row, "a")), b = json_integer_value(json_object_get(row, "b"));
        if (c->md)
            fprintf(c->o, "| `%s` | %lld | %lld | %+lld |\n", get(row, "function"), a, b, b - a);
        else
            fprintf(c->o, "      %8lld %8lld %+8lld  %s\n", a, b, b - a, get(row, "function"));
    }
    if (c->md)
        fputs("\n", c->o);
}

static void hunk(out_ctx *c, json_t *h)
{
    fprintf(c->o, "%s@@ A line %s, B line %s @@\n", c->md ? "" : "    ", get(h, "a_start"), get(h, "b_start"));
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(h, "context"), i, r) path_rec(c, " ", r);
    const char *sides[2][2] = { { "a", "-" }, { "b", "+" } };
    for (int s = 0; s < 2; s++) {
        json_t *arr = json_object_get(h, sides[s][0]);
        json_array_foreach(arr, i, r) {
            if (i == 12) {
                fprintf(c->o, "%s%s ... %zu more\n", c->md ? "    " : "      ", sides[s][1], json_array_size(arr) - i);
                break;
            }
            path_rec(c, sides[s][1], r);
        }
    }
}

static void calls(out_ctx *c, json_t *t)
{
    json_t *arr = json_object_get(t, "calls");
    if (!json_array_size(arr))
        return;
    fprintf(c->o, c->md ? "**Call sequence** (%s -> %s function entries, %s changed; - only A, + only B)\n\n```\n"
                        : "    call sequence (%s -> %s function entries, %s changed; - only A, + only B):\n",
            get(t, "a_calls"), get(t, "b_calls"), get(t, "calls_changed"));
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r) {
        long long depth = json_integer_value(json_object_get(r, "depth"));
        fprintf(c->o, "%s%s %*s%s\n", c->md ? "" : "      ", get(r, "op"), (int)(2 * (depth > 40 ? 40 : depth)), "",
                get(r, "function"));
    }
    if (c->md)
        fputs("```\n\n", c->o);
}

static void trace(out_ctx *c, json_t *t)
{
    if (!t)
        return;
    const char *only = json_string_value(json_object_get(t, "only"));
    fprintf(c->o, c->md ? "### trace\n\n" : "  trace: ");
    if (only) {
        fprintf(c->o, "only in %s\n\n", only[0] == 'a' ? "A" : "B");
        return;
    }
    fprintf(c->o, "%s -> %s instructions, %s -> %s source lines, %s line changes (aligned by %s)\n%s",
            get(t, "a_steps"), get(t, "b_steps"), get(t, "a_lines"), get(t, "b_lines"), get(t, "lines_changed"),
            get(t, "aligned_by"), c->md ? "\n" : "");
    if (json_is_false(json_object_get(t, "aligned")))
        fprintf(c->o, "%snot aligned: %s\n", c->md ? "" : "    ", get(t, "why_not_aligned"));
    first_divergence(c, json_object_get(t, "first_divergence"));
    functions(c, t);
    json_t *hunks = json_object_get(t, "hunks");
    if (json_array_size(hunks)) {
        fprintf(c->o, c->md ? "**Path changes** (%zu of %s shown)\n\n```\n" : "    path changes (%zu of %s shown):\n",
                json_array_size(hunks), get(t, "hunks_total"));
        size_t i;
        json_t *h;
        c->fenced = c->md;
        json_array_foreach(hunks, i, h) hunk(c, h);
        c->fenced = false;
        if (c->md)
            fputs("```\n\n", c->o);
    }
    calls(c, t);
}

static void next_of(out_ctx *c, const char *side, json_t *row)
{
    char key[16];
    snprintf(key, sizeof key, "%s_next", side);
    json_t *n = json_object_get(row, key);
    snprintf(key, sizeof key, "%s_count", side);
    fprintf(c->o, "%s%s x%s", c->md ? "" : "          ", side[0] == 'a' ? "A" : "B", get(row, key));
    if (n && !json_is_null(n)) {
        fprintf(c->o, ", then %s %s:%s", get(n, "function"), get(n, "file"), get(n, "line"));
        const char *src = json_string_value(json_object_get(n, "source"));
        if (src && *src) {
            fputs("   ", c->o);
            cell(c, src);
        }
    }
    fputs(c->md ? "<br>" : "\n", c->o);
}

/* The lines that test the bits that differ, and where each side went. */
static void bit_lines(out_ctx *c, json_t *f)
{
    json_t *rows = json_object_get(f, "bit_lines");
    if (!json_array_size(json_object_get(f, "differing_bits")))
        return;
    fprintf(c->o, c->md ? "### where the path tests the bits that differ (" : "  where the path tests the bits that differ (");
    names(c, json_object_get(f, "differing_bits"), 20);
    fprintf(c->o, c->md ? ")\n\n" : "):\n");
    if (!json_array_size(rows))
        fprintf(c->o, "%sno traced line names them%s\n", c->md ? "" : "    ", " (source text needs the kernel tree beside vmlinux)");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        bool differs = json_is_true(json_object_get(row, "differs"));
        fprintf(c->o, c->md ? "- %s`%s` %s:%s `" : "    %s%s %s:%s   ", differs ? (c->md ? "**branch differs** " : "BRANCH DIFFERS ") : "",
                get(row, "function"), get(row, "file"), get(row, "line"));
        const char *src = json_string_value(json_object_get(row, "source"));
        for (; src && (*src == ' ' || *src == '\t'); src++)
            ;
        cell(c, src);
        fputs(c->md ? "`<br>" : "\n", c->o);
        next_of(c, "a", row);
        next_of(c, "b", row);
        if (c->md)
            fputs("\n", c->o);
    }
    fputs("\n", c->o);
}

static void fault(out_ctx *c, json_t *f)
{
    fprintf(c->o, c->md ? "## fault %s\n\n" : "fault %s: ", get(f, "fault"));
    const char *only = json_string_value(json_object_get(f, "only"));
    if (only) {
        fprintf(c->o, "only in %s\n\n", only[0] == 'a' ? "A" : "B");
        return;
    }
    fprintf(c->o, "%s changes outside the trace\n%s", get(f, "changed"), c->md ? "\n" : "");
    trigger(c, json_object_get(f, "trigger"));
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(f, "stations"), i, st) station(c, st);
    checks(c, json_object_get(f, "checks"));
    bit_lines(c, f);
    trace(c, json_object_get(f, "trace"));
    fputs("\n", c->o);
}

static void verdict(out_ctx *c, const diff_result *r)
{
    json_t *sc = json_object_get(r->head, "summary_changed");
    size_t i;
    json_t *ch;
    json_array_foreach(sc, i, ch) fprintf(c->o, "summary %s: %s -> %s\n", get(ch, "name"), get(ch, "a"), get(ch, "b"));
    fprintf(c->o, "%s%s\n", c->md ? "**Result**: " : "result: ",
            r->differs ? "DIFFERENT: the fault path or a value changed" : "the same (outside the fields not compared)");
}

int diff_write(FILE *o, enum diff_format fmt, const diff_result *r, fl_error *err)
{
    if (fmt == DIFF_JSON) {
        json_dumpf(r->head, o, JSON_COMPACT);
        fputc('\n', o);
        size_t i;
        json_t *f;
        json_array_foreach(r->faults, i, f) {
            json_dumpf(f, o, JSON_COMPACT);
            fputc('\n', o);
        }
    } else {
        out_ctx c = { .o = o, .md = fmt == DIFF_MD };
        head(&c, r);
        size_t i;
        json_t *f;
        json_array_foreach(r->faults, i, f) fault(&c, f);
        verdict(&c, r);
    }
    if (fflush(o) != 0 || ferror(o))
        return fl_fail(err, FL_EIO, "cannot write the diff: %s", strerror(errno));
    return 0;
}
