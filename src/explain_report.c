/* explain, the writing side: one entry per source line with the variables
 * it changed, its branch, its calls and the values returned to it; long
 * repetitions collapsed; --function/--depth narrowing; the checks. Pure:
 * everything comes from the trace_result. See explain.h. */
#include "faultline/explain.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The longest loop body (in line entries) looked for when collapsing. */
#define MAX_PERIOD 8
/* A repetition is collapsed from this many rounds on. */
#define MIN_ROUNDS 3

typedef struct bucket {
    size_t *v;
    size_t n, cap;
} bucket;

/* Per line entry: the records that belong to it. */
struct explain_index {
    trace_line *l;
    size_t nl;
    size_t *entry_of;      /* step -> line entry */
    bucket *vars, *calls, *rets;
};

static int bucket_add(bucket *b, size_t x)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4;
        size_t *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = x;
    return 0;
}

void explain_index_free(explain_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nl; i++) {
        free(ix->vars[i].v);
        free(ix->calls[i].v);
        free(ix->rets[i].v);
    }
    free(ix->vars);
    free(ix->calls);
    free(ix->rets);
    free(ix->entry_of);
    free(ix->l);
    free(ix);
}

static int index_fill(explain_index *ix, const trace_result *r)
{
    for (size_t i = 0; i < r->nvars; i++)
        if (r->vars[i].step < r->nsteps && bucket_add(&ix->vars[ix->entry_of[r->vars[i].step]], i) < 0)
            return -1;
    for (size_t i = 0; i < r->nfcalls; i++) {
        const trace_fcall *c = &r->fcalls[i];
        if (c->step < r->nsteps && bucket_add(&ix->calls[ix->entry_of[c->step]], i) < 0)
            return -1;
        if (c->has_ret && c->ret_step + 1 < r->nsteps && bucket_add(&ix->rets[ix->entry_of[c->ret_step + 1]], i) < 0)
            return -1;
    }
    return 0;
}

explain_index *explain_index_new(const trace_result *r)
{
    explain_index *ix = calloc(1, sizeof *ix);
    if (!ix || trace_lines(r, &ix->l, &ix->nl) < 0) {
        free(ix);
        return NULL;
    }
    size_t n = ix->nl ? ix->nl : 1;
    ix->entry_of = malloc((r->nsteps ? r->nsteps : 1) * sizeof *ix->entry_of);
    ix->vars = calloc(n, sizeof *ix->vars);
    ix->calls = calloc(n, sizeof *ix->calls);
    ix->rets = calloc(n, sizeof *ix->rets);
    if (!ix->entry_of || !ix->vars || !ix->calls || !ix->rets) {
        explain_index_free(ix);
        return NULL;
    }
    for (size_t e = 0; e < ix->nl; e++)
        for (size_t i = ix->l[e].first; i < ix->l[e].first + ix->l[e].count; i++)
            ix->entry_of[i] = e;
    if (index_fill(ix, r) < 0) {
        explain_index_free(ix);
        return NULL;
    }
    return ix;
}

size_t explain_index_lines(const explain_index *ix, const trace_line **l)
{
    *l = ix->l;
    return ix->nl;
}

/* ---- one entry's facts ---- */

typedef struct branch {
    bool is;
    bool taken;
    const trace_pc *to;
} branch;

static branch branch_of(const trace_result *r, const trace_line *l)
{
    branch b = { 0 };
    size_t last = l->first + l->count - 1;
    const trace_pc *p = &r->pcs[r->steps[last].pc];
    if (p->kind != TRACE_K_JCC || last + 1 >= r->nsteps)
        return b;
    b.is = true;
    b.to = &r->pcs[r->steps[last + 1].pc];
    b.taken = b.to->pc != p->pc + p->len;
    return b;
}

/* One run of a single instruction (rep stosb): its repeat count, else 0. */
static size_t one_insn_run(const trace_result *r, const trace_line *l)
{
    if (l->count < 2)
        return 0;
    for (size_t i = l->first + 1; i < l->first + l->count; i++)
        if (r->steps[i].pc != r->steps[l->first].pc)
            return 0;
    return l->count;
}

static void value_text(FILE *o, const trace_value *v)
{
    if (!v->available)
        fputs("optimized out", o);
    else
        fprintf(o, "0x%" PRIx64, v->value);
    if (v->available && v->decoded)
        fprintf(o, " %s", v->decoded);
}

static void var_text(FILE *o, const trace_var *tv)
{
    const trace_value *v = &tv->v;
    fprintf(o, "%s = ", v->name);
    value_text(o, v);
    if (v->has_was && v->was_available)
        fprintf(o, " (was 0x%" PRIx64 ")", v->was);
    else if (v->has_was)
        fputs(" (was optimized out)", o);
}

static void call_text(FILE *o, const trace_result *r, const trace_fcall *c)
{
    fprintf(o, "%s%s(", c->inlined ? "inlined " : "", c->function);
    for (size_t i = 0; i < c->nargs; i++) {
        const trace_value *a = &r->values[c->arg + i];
        fprintf(o, "%s%s=", i ? ", " : "", a->name);
        value_text(o, a);
    }
    fputc(')', o);
}

static size_t call_insns(const trace_result *r, const trace_fcall *c)
{
    size_t end = c->ret_step == SIZE_MAX ? r->nsteps - 1 : c->ret_step;
    return end >= c->step ? end - c->step + 1 : 0;
}

/* ---- what is narrated ---- */

/* rel[e] = depth of entry e below the narrated function (0 = in it), or -1
 * when the entry is outside what --function/--depth narrate. */
static int *narrated(const trace_result *r, const explain_index *ix, const trace_report_options *o)
{
    int *rel = malloc((ix->nl ? ix->nl : 1) * sizeof *rel);
    if (!rel)
        return NULL;
    const char *fn = o && o->function && *o->function ? o->function : NULL;
    int limit = o ? o->depth : 0, base = 0;
    for (size_t e = 0; e < ix->nl; e++)
        base = ix->l[e].depth < base ? ix->l[e].depth : base;
    for (size_t e = 0; e < ix->nl; e++) {
        rel[e] = fn ? -1 : ix->l[e].depth - base;
        size_t s = ix->l[e].first;
        for (size_t i = 0; fn && i < r->nfcalls; i++) {
            const trace_fcall *c = &r->fcalls[i];
            size_t lo = c->inlined ? c->step : c->step + 1, hi = c->ret_step;
            if (strcmp(c->function, fn) == 0 && s >= lo && s <= hi) {
                int d = ix->l[e].depth - (c->inlined ? c->depth : c->depth + 1);
                if (rel[e] < 0 || d < rel[e])
                    rel[e] = d;
            }
        }
        if (limit > 0 && rel[e] > limit)
            rel[e] = -1;
    }
    return rel;
}

/* Rounds of a loop of `period` entries starting at e (all narrated). */
static size_t rounds_at(const explain_index *ix, const int *rel, size_t e, size_t period)
{
    size_t k = 1;
    for (;; k++) {
        size_t b = e + k * period;
        if (b + period > ix->nl)
            return k;
        for (size_t j = 0; j < period; j++)
            if (rel[b + j] < 0 || rel[e + j] < 0 || ix->l[b + j].pc != ix->l[e + j].pc ||
                ix->l[b + j].count != ix->l[e + j].count)
                return k;
    }
}

/* The loop starting at e: its period and rounds (period 0: none). */
static size_t loop_at(const explain_index *ix, const int *rel, size_t e, size_t *rounds)
{
    for (size_t p = 1; p <= MAX_PERIOD; p++) {
        size_t k = rounds_at(ix, rel, e, p);
        if (k >= MIN_ROUNDS) {
            *rounds = k;
            return p;
        }
    }
    return 0;
}

/* ---- writing ---- */

typedef struct writer {
    FILE *o;
    bool md;
    const trace_result *r;
    const explain_index *ix;
    const int *rel;
} writer;

static const char *trimmed(const char *s)
{
    while (s && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* Inline code holding s verbatim (a longer fence when s has a backtick). */
static void md_code(FILE *o, const char *s)
{
    const char *fence = strchr(s, '`') ? "`` " : "`";
    fprintf(o, "%s%s%s", fence, s, strchr(s, '`') ? " ``" : "`");
}

static void where(char *buf, size_t cap, const trace_pc *p)
{
    if (p->file)
        snprintf(buf, cap, "%s:%d", p->file, p->line);
    else
        snprintf(buf, cap, "%s+0x%" PRIx64, p->sym, p->sym_off);
}

/* The facts of entry e, separated by `sep` (text: new lines; md: "; "). */
static bool facts(const writer *w, size_t e, const char *sep, const char *lead)
{
    const trace_result *r = w->r;
    const trace_line *l = &w->ix->l[e];
    bool any = false;
#define NEXT() (fputs(any ? sep : lead, w->o), any = true)
    for (size_t i = 0; i < w->ix->rets[e].n; i++) {
        const trace_fcall *c = &r->fcalls[w->ix->rets[e].v[i]];
        NEXT();
        fprintf(w->o, "%s returned ", c->function);
        value_text(w->o, &c->ret);
    }
    for (size_t i = 0; i < w->ix->vars[e].n; i++) {
        NEXT();
        var_text(w->o, &r->vars[w->ix->vars[e].v[i]]);
    }
    size_t run = one_insn_run(r, l);
    if (run) {
        NEXT();
        fprintf(w->o, "the instruction %s ran %zu times", r->pcs[l->pc].text, run);
    }
    branch b = branch_of(r, l);
    if (b.is) {
        char to[256];
        where(to, sizeof to, b.to);
        NEXT();
        fprintf(w->o, "branch %s, to %s", b.taken ? "taken" : "not taken", to);
    }
    for (size_t i = 0; i < w->ix->calls[e].n; i++) {
        const trace_fcall *c = &r->fcalls[w->ix->calls[e].v[i]];
        NEXT();
        fputs(c->inlined ? "enters " : "calls ", w->o);
        call_text(w->o, r, c);
        if (!c->inlined)
            fprintf(w->o, ", %zu instructions", call_insns(r, c));
    }
    if (!any && w->md)
        fputs(": no C variable changed", w->o);
#undef NEXT
    return any;
}

static void entry(const writer *w, size_t e)
{
    const trace_line *l = &w->ix->l[e];
    const trace_pc *p = &w->r->pcs[l->pc];
    char at[256];
    where(at, sizeof at, p);
    int ind = w->rel[e] > 30 ? 60 : 2 * w->rel[e];
    if (w->md) {
        fprintf(w->o, "### %s (t=%zu, %s)\n\n", p->function, l->t, at);
        if (p->source)
            md_code(w->o, trimmed(p->source));
        else
            fprintf(w->o, "`%s`", p->text);
        facts(w, e, "; ", ": ");
        fputs(".\n\n", w->o);
        return;
    }
    fprintf(w->o, "t=%-5zu %*s%s  %s  [%zu insn @%zu]\n", l->t, ind, "", p->function, at, l->count, l->first);
    if (p->source)
        fprintf(w->o, "        %*s| %s\n", ind, "", trimmed(p->source));
    char sep[128];
    snprintf(sep, sizeof sep, "\n        %*s  ", ind, "");
    if (facts(w, e, sep, sep + 1))
        fputc('\n', w->o);
}

/* A loop: `period` entries from e, `rounds` times; the variables' values
 * before and after it. */
static void loop(const writer *w, size_t e, size_t period, size_t rounds)
{
    const trace_result *r = w->r;
    const trace_line *l = &w->ix->l[e], *last = &w->ix->l[e + period * rounds - 1];
    const trace_pc *p = &r->pcs[l->pc];
    size_t insns = last->first + last->count - l->first;
    char at[256];
    where(at, sizeof at, p);
    if (w->md)
        fprintf(w->o, "### %s (t=%zu..%zu, %s)\n\n", p->function, l->t, last->t, at);
    else
        fprintf(w->o, "t=%-5zu %s  %s  [loop: %zu line%s x %zu, %zu insn @%zu]\n", l->t, p->function, at, period,
                period == 1 ? "" : "s", rounds, insns, l->first);
    for (size_t j = 0; j < period; j++) {
        const trace_pc *q = &r->pcs[w->ix->l[e + j].pc];
        const char *src = q->source ? trimmed(q->source) : q->text;
        if (w->md) {
            fputs(j ? " then " : "", w->o);
            md_code(w->o, src);
        } else {
            fprintf(w->o, "        | %s\n", src);
        }
    }
    if (w->md)
        fprintf(w->o, ": repeated %zu times (%zu instructions)", rounds, insns);
    /* each variable: its value before the first round and after the last */
    const trace_var *first[32], *lastv[32];
    size_t nv = 0;
    for (size_t a = e; a < e + period * rounds; a++)
        for (size_t i = 0; i < w->ix->vars[a].n; i++) {
            const trace_var *tv = &r->vars[w->ix->vars[a].v[i]];
            size_t k = 0;
            while (k < nv && !(first[k]->function == tv->function && strcmp(first[k]->v.name, tv->v.name) == 0))
                k++;
            if (k == nv && nv < 32)
                first[nv++] = tv;
            if (k < nv)
                lastv[k] = tv;
        }
    for (size_t k = 0; k < nv; k++) {
        fputs(w->md ? "; " : "        ", w->o);
        fprintf(w->o, "%s = ", lastv[k]->v.name);
        value_text(w->o, &lastv[k]->v);
        if (first[k]->v.has_was && first[k]->v.was_available)
            fprintf(w->o, " after the loop, 0x%" PRIx64 " before it", first[k]->v.was);
        else
            fputs(" after the loop", w->o);
        if (!w->md)
            fputc('\n', w->o);
    }
    if (w->md)
        fputs(".\n\n", w->o);
}

/* Entries [from, to) outside --function/--depth: their instruction count
 * and the outermost calls made there, each with its own count. */
static void gap(const writer *w, size_t from, size_t to)
{
    const trace_result *r = w->r;
    size_t insns = 0, lo = w->ix->l[from].first, hi = w->ix->l[to - 1].first + w->ix->l[to - 1].count;
    for (size_t e = from; e < to; e++)
        insns += w->ix->l[e].count;
    fprintf(w->o, w->md ? "*%zu instructions not narrated" : "        ... %zu instructions not narrated", insns);
    int top = 1 << 30;
    for (size_t i = 0; i < r->nfcalls; i++)
        if (!r->fcalls[i].inlined && r->fcalls[i].step >= lo && r->fcalls[i].step < hi && r->fcalls[i].depth < top)
            top = r->fcalls[i].depth;
    size_t shown = 0;
    for (size_t i = 0; i < r->nfcalls && shown < 8; i++) {
        const trace_fcall *c = &r->fcalls[i];
        if (c->inlined || c->step < lo || c->step >= hi || c->depth != top)
            continue;
        fprintf(w->o, "%s%s (%zu)", shown++ ? ", " : "; calls: ", c->function, call_insns(r, c));
    }
    fputs(w->md ? ".*\n\n" : "\n", w->o);
}

static void checks(const writer *w)
{
    const trace_result *r = w->r;
    if (!r->nchecks)
        return;
    if (w->md)
        fputs("## Checks of the narrative\n\n| check | claim | expected | actual | result |\n|---|---|---|---|---|\n",
              w->o);
    else
        fputs("checks:\n", w->o);
    for (size_t i = 0; i < r->nchecks; i++) {
        const trace_check *c = &r->checks[i];
        if (w->md) {
            fprintf(w->o, "| %s | ", c->name);
            for (const char *s = c->claim; *s; s++)
                fputs(*s == '|' ? "\\|" : (char[]){ *s, 0 }, w->o);
            fprintf(w->o, " | %s | %s | %s |\n", c->expected, c->actual, c->pass ? "PASS" : "FAIL");
        } else {
            fprintf(w->o, "  %s %s: %s (expected %s, actual %s)\n", c->pass ? "PASS" : "FAIL", c->name, c->claim,
                    c->expected, c->actual);
        }
    }
    if (w->md)
        fputc('\n', w->o);
}

static void narrative(const writer *w)
{
    size_t e = 0;
    while (e < w->ix->nl) {
        if (w->rel[e] < 0) {
            size_t to = e;
            while (to < w->ix->nl && w->rel[to] < 0)
                to++;
            gap(w, e, to);
            e = to;
            continue;
        }
        size_t rounds = 0, period = loop_at(w->ix, w->rel, e, &rounds);
        if (period) {
            loop(w, e, period, rounds);
            e += period * rounds;
        } else {
            entry(w, e++);
        }
    }
}

int explain_write(FILE *out, enum trace_format fmt, const trace_result *r, const trace_report_options *o)
{
    if (fmt != TRACE_FMT_TEXT && fmt != TRACE_FMT_MD)
        return -1;
    explain_index *ix = explain_index_new(r);
    int *rel = ix ? narrated(r, ix, o) : NULL;
    if (!rel) {
        explain_index_free(ix);
        return -1;
    }
    writer w = { .o = out, .md = fmt == TRACE_FMT_MD, .r = r, .ix = ix, .rel = rel };
    if (w.md)
        fprintf(out, "## Complete trace, explained (0x%" PRIx64 " to %s)\n\n%zu instructions, %zu source-line "
                     "entries%s.\n\n", r->start_pc, trace_stop_name(r->stop), r->nsteps, ix->nl,
                r->explained ? "" : " (traced without --view explain: no variables were read)");
    else
        fprintf(out, "trace explained: %zu instructions, %zu line entries, stop: %s%s\n", r->nsteps, ix->nl,
                trace_stop_name(r->stop), r->explained ? "" : " (no variables: traced without explain)");
    narrative(&w);
    checks(&w);
    free(rel);
    explain_index_free(ix);
    return ferror(out) ? -1 : 0;
}

/* ---- JSON: the line record's explain fields ---- */

static json_t *value_json(const trace_value *v)
{
    char h[24];
    snprintf(h, sizeof h, "0x%" PRIx64, v->value);
    json_t *o = json_pack("{s:s?, s:o}", "type", v->type, "value", v->available ? json_string(h) : json_null());
    if (!v->available)
        json_object_set_new(o, "optimized_out", json_true());
    if (v->has_was) {
        snprintf(h, sizeof h, "0x%" PRIx64, v->was);
        json_object_set_new(o, "was", v->was_available ? json_string(h) : json_null());
    }
    json_object_set_new(o, "decoded", v->available && v->decoded ? json_string(v->decoded) : json_null());
    return o;
}

void explain_json_line(json_t *rec, const trace_result *r, const explain_index *ix, size_t e)
{
    json_t *vars = json_object(), *calls = json_array(), *rets = json_array();
    for (size_t i = 0; i < ix->vars[e].n; i++) {
        const trace_var *tv = &r->vars[ix->vars[e].v[i]];
        char key[160];
        snprintf(key, sizeof key, "%s", tv->v.name);
        if (json_object_get(vars, key))  /* the same name in an inlined frame */
            snprintf(key, sizeof key, "%s:%s", tv->function, tv->v.name);
        json_object_set_new(vars, key, value_json(&tv->v));
    }
    for (size_t i = 0; i < ix->calls[e].n; i++) {
        const trace_fcall *c = &r->fcalls[ix->calls[e].v[i]];
        json_t *args = json_object();
        for (size_t a = 0; a < c->nargs; a++)
            json_object_set_new(args, r->values[c->arg + a].name, value_json(&r->values[c->arg + a]));
        json_array_append_new(calls, json_pack("{s:s, s:b, s:o, s:I}", "function", c->function, "inlined",
                                               c->inlined, "args", args, "instructions",
                                               (json_int_t)(c->inlined ? 0 : call_insns(r, c))));
    }
    for (size_t i = 0; i < ix->rets[e].n; i++) {
        const trace_fcall *c = &r->fcalls[ix->rets[e].v[i]];
        json_t *v = value_json(&c->ret);
        json_object_set_new(v, "function", json_string(c->function));
        json_array_append_new(rets, v);
    }
    json_object_set_new(rec, "vars", vars);
    branch b = branch_of(r, &ix->l[e]);
    json_object_set_new(rec, "branch", b.is ? json_pack("{s:b, s:s?, s:i}", "taken", b.taken, "to_file", b.to->file,
                                                        "to_line", b.to->line)
                                            : json_null());
    json_object_set_new(rec, "call", calls);
    json_object_set_new(rec, "ret", rets);
}

json_t *explain_json_check(const trace_check *c)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s}", "type", "check", "name", c->name, "ok", c->pass,
                     "claim", c->claim, "expected", c->expected, "actual", c->actual, "of", "trace");
}
