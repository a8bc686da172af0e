/* trace output: line view, instruction view and call tree, as text,
 * Markdown, JSON Lines or Chrome trace-event JSON. See trace.h. */
#include "faultline/trace.h"
#include "faultline/explain.h"
#include "faultline/flame.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const stop_names[] = { "none", "user", "until", "max-steps", "timeout", "error", "interrupted" };

const char *trace_stop_name(enum trace_stop s)
{
    return (unsigned)s < sizeof stop_names / sizeof stop_names[0] ? stop_names[s] : "?";
}

int trace_parse_view(const char *name, enum trace_view *out)
{
    static const char *const v[] = { "line", "insn", "tree", "explain" };
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, v[i]) == 0) {
            *out = (enum trace_view)i;
            return 0;
        }
    return -1;
}

int trace_parse_format(const char *name, enum trace_format *out)
{
    static const char *const f[] = { "text", "md", "json", "chrome", "folded", "svg" };
    for (int i = 0; i < 6; i++)
        if (name && strcmp(name, f[i]) == 0) {
            *out = (enum trace_format)i;
            return 0;
        }
    return -1;
}

/* ---- derived views ---- */

/* Two steps are on the same source line when file, line and (inlined)
 * function agree; strings are interned, so pointers compare. */
static bool same_line(const trace_pc *a, const trace_pc *b)
{
    if (!a->file || !b->file)
        return !a->file && !b->file && a->sym == b->sym;
    return a->file == b->file && a->line == b->line && a->function == b->function;
}

int trace_lines(const trace_result *r, trace_line **lines, size_t *count)
{
    *lines = NULL;
    *count = 0;
    size_t n = 0;
    for (size_t i = 0; i < r->nsteps; i++)
        if (i == 0 || !same_line(&r->pcs[r->steps[i].pc], &r->pcs[r->steps[i - 1].pc]))
            n++;
    trace_line *l = calloc(n ? n : 1, sizeof *l);
    if (!l)
        return -1;
    size_t j = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        if (i == 0 || !same_line(&r->pcs[r->steps[i].pc], &r->pcs[r->steps[i - 1].pc])) {
            l[j] = (trace_line){ .t = j, .first = i, .pc = r->steps[i].pc, .depth = r->steps[i].depth };
            j++;
        }
        l[j - 1].count++;
    }
    *lines = l;
    *count = n;
    return 0;
}

typedef struct vec {
    trace_call *v;
    size_t n, cap;
} vec;

static long push_call(vec *c, const char *fn, uint64_t pc, long parent, int depth, size_t first)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        trace_call *nv = realloc(c->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n] = (trace_call){ .function = fn, .entry_pc = pc, .parent = parent, .depth = depth, .first = first };
    return (long)c->n++;
}

static const char *over_callee(const trace_result *r, size_t step)
{
    for (size_t i = 0; i < r->nover_calls; i++)
        if (r->over_calls[i].step == step)
            return r->over_calls[i].function;
    return "?";
}

int trace_calltree(const trace_result *r, trace_call **calls, size_t *count)
{
    vec c = { 0 };
    long *stack = calloc(r->nsteps + 2, sizeof *stack);  /* depth <= steps */
    size_t sp = 0;
    *calls = NULL;
    *count = 0;
    if (!stack)
        return -1;
    bool open_next = true;  /* the next step starts a node */
    long parent_next = -1;
    for (size_t i = 0; i < r->nsteps; i++) {
        const trace_step *s = &r->steps[i];
        const trace_pc *p = &r->pcs[s->pc];
        if (open_next) {
            long id = push_call(&c, p->sym, p->pc, parent_next, (int)sp, i);
            if (id < 0)
                goto oom;
            stack[sp++] = id;
            open_next = false;
        }
        trace_call *cur = &c.v[stack[sp - 1]];
        cur->self++;
        if (s->flags & TRACE_F_OVER) {
            long id = push_call(&c, over_callee(r, i), 0, stack[sp - 1], (int)sp, i);
            if (id < 0)
                goto oom;
            c.v[id].total = 1;
            c.v[id].over = true;
            continue;
        }
        switch (p->kind) {
        case TRACE_K_CALL:
        case TRACE_K_CALL_IND:
        case TRACE_K_INT:
            open_next = true;
            parent_next = stack[sp - 1];
            break;
        case TRACE_K_RET:
        case TRACE_K_IRET:
        case TRACE_K_SYSRET: {
            trace_call *done = &c.v[stack[--sp]];
            done->total = i - done->first + 1;
            if (sp == 0) {  /* returned above where we started: a new top node */
                open_next = true;
                parent_next = -1;
            }
            break;
        }
        default:
            break;
        }
    }
    while (sp > 0) {
        trace_call *open = &c.v[stack[--sp]];
        open->total = r->nsteps - open->first;
    }
    free(stack);
    *calls = c.v;
    *count = c.n;
    return 0;
oom:
    free(stack);
    free(c.v);
    return -1;
}

/* ---- helpers ---- */

/* Net change per register over steps [first, first+count): first `before`,
 * last `after`. `seen`/`acc` are nregs long. Returns the number set. */
static size_t net_changes(const trace_result *r, size_t first, size_t count, bool *seen, trace_change *acc)
{
    size_t n = 0;
    memset(seen, 0, r->nregs * sizeof *seen);
    for (size_t i = first; i < first + count; i++) {
        const trace_step *s = &r->steps[i];
        for (size_t j = 0; j < s->nchanges; j++) {
            const trace_change *c = &r->changes[s->change + j];
            if (c->reg >= r->nregs)
                continue;
            if (!seen[c->reg]) {
                seen[c->reg] = true;
                acc[c->reg] = *c;
                n++;
            } else {
                acc[c->reg].after = c->after;
            }
        }
    }
    return n;
}

/* Markdown inline code, verbatim: a longer fence when s holds a backtick;
 * inside a table cell `|` is escaped (the only place Markdown needs it). */
static void md_code(FILE *o, const char *s, bool in_table)
{
    bool tick = s && strchr(s, '`');
    fputs(tick ? "`` " : "`", o);
    for (; s && *s; s++)
        if (in_table && *s == '|')
            fputs("\\|", o);
        else
            fputc(*s, o);
    fputs(tick ? " ``" : "`", o);
}

static const char *trim(const char *s)
{
    while (s && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static void loc(char *buf, size_t cap, const trace_pc *p)
{
    if (p->file)
        snprintf(buf, cap, "%s:%d", p->file, p->line);
    else
        snprintf(buf, cap, "%s+0x%" PRIx64, p->sym, p->sym_off);
}

static void changes_text(FILE *o, const trace_result *r, const bool *seen, const trace_change *acc, bool md)
{
    bool any = false;
    for (size_t i = 0; i < r->nregs; i++) {
        if (!seen[i])
            continue;
        if (md)
            fprintf(o, "%s%s = 0x%" PRIx64 " (was 0x%" PRIx64 ")", any ? ", " : "", r->regnames[i], acc[i].after,
                    acc[i].before);
        else
            fprintf(o, "%s%s=0x%" PRIx64, any ? " " : "", r->regnames[i], acc[i].after);
        any = true;
    }
}

static char *hex(char *buf, uint64_t v)
{
    snprintf(buf, 24, "0x%" PRIx64, v);
    return buf;
}

/* {"reg": "0x..."} of n changes. */
static json_t *changes_json(const trace_result *r, const trace_change *c, size_t n)
{
    json_t *o = json_object();
    char h[24];
    for (size_t j = 0; j < n; j++)
        if (c[j].reg < r->nregs)
            json_object_set_new(o, r->regnames[c[j].reg], json_string(hex(h, c[j].after)));
    return o;
}

/* One JSON Lines record; takes the reference. */
static void emit(FILE *o, json_t *rec)
{
    if (rec && json_dumpf(rec, o, JSON_COMPACT) == 0)
        fputc('\n', o);
    json_decref(rec);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static void summary_line(FILE *o, const trace_result *r, size_t nlines)
{
    fprintf(o, "%zu instructions, %zu line changes, mode %s, %.2f s (%.0f steps/s, %zu stops), stop: %s, "
               "final pc 0x%" PRIx64 " cs 0x%" PRIx64,
            r->nsteps, nlines, r->mode == TRACE_FAST ? "fast" : "single", r->seconds,
            r->seconds > 0 ? r->nsteps / r->seconds : 0.0, r->stops, trace_stop_name(r->stop), r->final_pc,
            r->final_cs);
    if (r->overs)
        fprintf(o, ", %zu calls run through (--over)", r->overs);
    if (r->error[0])
        fprintf(o, ", error: %s", r->error);
}

static int indent(int depth)
{
    return depth < 0 ? 0 : depth > 30 ? 60 : 2 * depth;
}

/* ---- the formats ---- */

static void text_lines(FILE *o, const trace_result *r, const trace_line *l, size_t nl, bool *seen, trace_change *acc)
{
    for (size_t i = 0; i < nl; i++) {
        const trace_pc *p = &r->pcs[l[i].pc];
        char where[256];
        loc(where, sizeof where, p);
        fprintf(o, "t=%-5zu %*s%s  %s  [%zu insn @%zu]\n", l[i].t, indent(l[i].depth), "", p->function, where,
                l[i].count, l[i].first);
        if (p->source)
            fprintf(o, "        %*s| %s\n", indent(l[i].depth), "", trim(p->source));
        if (net_changes(r, l[i].first, l[i].count, seen, acc)) {
            fprintf(o, "        %*s  ", indent(l[i].depth), "");
            changes_text(o, r, seen, acc, false);
            fputc('\n', o);
        }
    }
}

static void md_lines(FILE *o, const trace_result *r, const trace_line *l, size_t nl, bool *seen, trace_change *acc)
{
    for (size_t i = 0; i < nl; i++) {
        const trace_pc *p = &r->pcs[l[i].pc];
        char where[256];
        loc(where, sizeof where, p);
        fprintf(o, "### %s (t=%zu, %s)\n", p->function, l[i].t, where);
        if (p->source) {
            md_code(o, trim(p->source), false);
            fputs("\n\n", o);
        }
        fprintf(o, "pc 0x%" PRIx64 " (%s+0x%" PRIx64 "), %zu instruction%s from step %zu, depth %d",
                p->pc, p->sym, p->sym_off, l[i].count, l[i].count == 1 ? "" : "s", l[i].first, l[i].depth);
        if (net_changes(r, l[i].first, l[i].count, seen, acc)) {
            fputs(". ", o);
            changes_text(o, r, seen, acc, true);
        }
        fputs(".\n\n", o);
    }
}

static void insn_row(FILE *o, enum trace_format fmt, const trace_result *r, size_t i)
{
    const trace_step *s = &r->steps[i];
    const trace_pc *p = &r->pcs[s->pc];
    const trace_change *c = &r->changes[s->change];
    char where[256], sym[192];
    loc(where, sizeof where, p);
    snprintf(sym, sizeof sym, "%s+0x%" PRIx64, p->sym, p->sym_off);
    if (fmt == TRACE_FMT_MD) {
        fprintf(o, "| %zu | %d | 0x%" PRIx64 " | %s | %s | ", i, s->depth, p->pc, sym, where);
        md_code(o, p->text, true);
        fputs(" | ", o);
    } else {
        fprintf(o, "%7zu %*s0x%016" PRIx64 " %-34s %-44s %s%s ", i, indent(s->depth), "", p->pc, sym, p->text,
                where, s->flags & TRACE_F_OVER ? " [over]" : "");
    }
    for (size_t j = 0; j < s->nchanges; j++)
        if (c[j].reg < r->nregs)
            fprintf(o, "%s%s=0x%" PRIx64, j ? " " : "", r->regnames[c[j].reg], c[j].after);
    if (s->flags & TRACE_F_NET && s->nchanges)
        fputs(" (net)", o);
    fputs(fmt == TRACE_FMT_MD ? " |\n" : "\n", o);
}

static void tree(FILE *o, enum trace_format fmt, const trace_call *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fmt == TRACE_FMT_MD)
            fprintf(o, "%*s- `%s` %zu instructions (%zu in itself)%s\n", indent(c[i].depth), "", c[i].function,
                    c[i].total, c[i].self, c[i].over ? ", run through (--over)" : "");
        else
            fprintf(o, "%*s%s  total %zu  self %zu%s\n", indent(c[i].depth), "", c[i].function, c[i].total,
                    c[i].self, c[i].over ? "  [over]" : "");
    }
}

static void json_pc_fields(json_t *o, const trace_pc *p)
{
    char h[24];
    json_object_set_new(o, "pc", json_string(hex(h, p->pc)));
    json_object_set_new(o, "sym", json_string(p->sym));
    json_object_set_new(o, "off", json_integer((json_int_t)p->sym_off));
    json_object_set_new(o, "file", str_or_null(p->file));
    json_object_set_new(o, "line", json_integer(p->line));
    json_object_set_new(o, "function", json_string(p->function));
}

static json_t *json_header(const trace_result *r, size_t nl)
{
    char h[3][24];
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "type", "trace",
                     "mode", r->mode == TRACE_FAST ? "fast" : "single", "stop", trace_stop_name(r->stop),
                     "steps", (json_int_t)r->nsteps, "lines", (json_int_t)nl, "seconds", r->seconds,
                     "start_pc", hex(h[0], r->start_pc), "final_pc", hex(h[1], r->final_pc), "final_cs",
                     hex(h[2], r->final_cs), "stops", (json_int_t)r->stops, "overs", (json_int_t)r->overs,
                     "resyncs", (json_int_t)r->resyncs, "error", r->error[0] ? json_string(r->error) : json_null());
}

static json_t *json_step(const trace_result *r, size_t i)
{
    const trace_step *s = &r->steps[i];
    const trace_pc *p = &r->pcs[s->pc];
    json_t *o = json_pack("{s:s, s:I}", "type", "step", "i", (json_int_t)i);
    json_pc_fields(o, p);
    json_object_set_new(o, "insn", json_string(p->text));
    json_object_set_new(o, "kind", json_string(trace_kind_name(p->kind)));
    json_object_set_new(o, "depth", json_integer(s->depth));
    json_object_set_new(o, "changed", changes_json(r, &r->changes[s->change], s->nchanges));
    json_object_set_new(o, "net", json_boolean(s->flags & TRACE_F_NET));
    json_object_set_new(o, "inferred", json_boolean(s->flags & TRACE_F_INFER));
    json_object_set_new(o, "over", json_boolean(s->flags & TRACE_F_OVER));
    return o;
}

static json_t *json_line(const trace_result *r, const trace_line *l, bool *seen, trace_change *acc)
{
    const trace_pc *p = &r->pcs[l->pc];
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:i}", "type", "line", "t", (json_int_t)l->t, "first",
                          (json_int_t)l->first, "count", (json_int_t)l->count, "depth", l->depth);
    json_pc_fields(o, p);
    json_object_set_new(o, "source", str_or_null(p->source ? trim(p->source) : NULL));
    net_changes(r, l->first, l->count, seen, acc);
    json_t *ch = json_object();
    char h[24];
    for (size_t g = 0; g < r->nregs; g++)
        if (seen[g])
            json_object_set_new(ch, r->regnames[g], json_string(hex(h, acc[g].after)));
    json_object_set_new(o, "changed", ch);
    return o;
}

static json_t *json_call(const trace_call *c)
{
    char h[24];
    return json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:I, s:b}", "type", "call", "function", c->function,
                     "entry", hex(h, c->entry_pc), "parent", (json_int_t)c->parent, "depth", c->depth, "first",
                     (json_int_t)c->first, "total", (json_int_t)c->total, "self", (json_int_t)c->self, "over",
                     c->over);
}

/* Line records (with the explain fields when the trace was explained),
 * then the narrative's checks. */
static int json_lines(FILE *o, const trace_result *r, const trace_line *l, size_t nl, bool *seen,
                      trace_change *acc)
{
    explain_index *ix = r->explained ? explain_index_new(r) : NULL;
    if (r->explained && !ix)
        return -1;
    for (size_t i = 0; i < nl; i++) {
        json_t *rec = json_line(r, &l[i], seen, acc);
        if (ix)
            explain_json_line(rec, r, ix, i);
        emit(o, rec);
    }
    for (size_t i = 0; i < r->nchecks; i++)
        emit(o, explain_json_check(&r->checks[i]));
    explain_index_free(ix);
    return 0;
}

static void json_out(FILE *o, enum trace_view view, const trace_result *r, const trace_line *l, size_t nl,
                     const trace_call *c, size_t nc, bool *seen, trace_change *acc)
{
    emit(o, json_header(r, nl));
    for (size_t i = 0; view != TRACE_VIEW_EXPLAIN && i < r->nsteps; i++)
        emit(o, json_step(r, i));
    if (view == TRACE_VIEW_LINE || view == TRACE_VIEW_EXPLAIN)
        json_lines(o, r, l, nl, seen, acc);
    if (view == TRACE_VIEW_TREE)
        for (size_t i = 0; i < nc; i++)
            emit(o, json_call(&c[i]));
}

static void chrome_out(FILE *o, const trace_result *r, const trace_call *c, size_t nc)
{
    json_t *ev = json_array();
    json_array_append_new(ev, json_pack("{s:s, s:s, s:i, s:i, s:{s:s}}", "name", "process_name", "ph", "M", "pid",
                                        1, "tid", 1, "args", "name", "faultline trace"));
    char h[24];
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(ev, json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:{s:I, s:s, s:I}}", "name",
                                            c[i].function, "cat", c[i].over ? "over" : "call", "ph", "X", "ts",
                                            (json_int_t)c[i].first, "dur", (json_int_t)(c[i].total ? c[i].total : 1),
                                            "pid", 1, "tid", 1, "args", "self", (json_int_t)c[i].self, "entry",
                                            hex(h, c[i].entry_pc), "first_step", (json_int_t)c[i].first));
    json_t *doc = json_pack("{s:s, s:{s:s, s:s, s:I, s:s}, s:o}", "displayTimeUnit", "ns", "otherData", "unit",
                            "ts and dur are instruction counts", "mode", r->mode == TRACE_FAST ? "fast" : "single",
                            "steps", (json_int_t)r->nsteps, "stop", trace_stop_name(r->stop), "traceEvents", ev);
    if (doc && json_dumpf(doc, o, JSON_COMPACT) == 0)
        fputc('\n', o);
    json_decref(doc);
}

int trace_report(FILE *out, enum trace_format fmt, enum trace_view view, const trace_result *r)
{
    return trace_report_opt(out, fmt, view, r, NULL);
}

int trace_report_opt(FILE *out, enum trace_format fmt, enum trace_view view, const trace_result *r,
                     const trace_report_options *o)
{
    if (fmt == TRACE_FMT_FOLDED || fmt == TRACE_FMT_SVG)
        return flame_write(out, fmt == TRACE_FMT_SVG ? FLAME_SVG : FLAME_FOLDED, r, o);
    if (view == TRACE_VIEW_EXPLAIN && (fmt == TRACE_FMT_TEXT || fmt == TRACE_FMT_MD))
        return explain_write(out, fmt, r, o);
    trace_line *l = NULL;
    trace_call *c = NULL;
    size_t nl = 0, nc = 0;
    bool *seen = calloc(r->nregs ? r->nregs : 1, sizeof *seen);
    trace_change *acc = calloc(r->nregs ? r->nregs : 1, sizeof *acc);
    int rc = -1;
    if (!seen || !acc || trace_lines(r, &l, &nl) < 0 || trace_calltree(r, &c, &nc) < 0)
        goto out;
    switch (fmt) {
    case TRACE_FMT_TEXT:
        fputs("trace: ", out);
        summary_line(out, r, nl);
        fputc('\n', out);
        if (view == TRACE_VIEW_LINE)
            text_lines(out, r, l, nl, seen, acc);
        else if (view == TRACE_VIEW_INSN)
            for (size_t i = 0; i < r->nsteps; i++)
                insn_row(out, fmt, r, i);
        else
            tree(out, fmt, c, nc);
        break;
    case TRACE_FMT_MD:
        fprintf(out, "## Complete trace (0x%" PRIx64 " to %s)\n\n", r->start_pc, trace_stop_name(r->stop));
        summary_line(out, r, nl);
        fputs(".\n\n", out);
        if (view == TRACE_VIEW_LINE) {
            md_lines(out, r, l, nl, seen, acc);
        } else if (view == TRACE_VIEW_INSN) {
            fputs("| # | depth | pc | symbol | line | instruction | changed |\n|---|---|---|---|---|---|---|\n", out);
            for (size_t i = 0; i < r->nsteps; i++)
                insn_row(out, fmt, r, i);
        } else {
            tree(out, fmt, c, nc);
        }
        break;
    case TRACE_FMT_JSON:
        json_out(out, view, r, l, nl, c, nc, seen, acc);
        break;
    case TRACE_FMT_CHROME:
        chrome_out(out, r, c, nc);
        break;
    default:
        break;
    }
    rc = ferror(out) ? -1 : 0;
out:
    free(seen);
    free(acc);
    free(l);
    free(c);
    return rc;
}
