/* diff: two traces of a fault aligned by (function, file:line), not by pc:
 * the line sequence and the call sequence, each with Myers' diff; the first
 * divergence; functions only one side entered; instructions per function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"

/* The path as records {t, function, file, line, depth, count, source}: the
 * `line` records, or the `step` records folded by line when only those are
 * there. */
static json_t *path_of(const dfi_fault *f)
{
    if (json_array_size(f->lines))
        return json_incref(f->lines);
    json_t *out = json_array(), *cur = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(f->steps, i, s) {
        json_t *fn = json_object_get(s, "function"), *file = json_object_get(s, "file"),
               *line = json_object_get(s, "line");
        if (cur && json_equal(json_object_get(cur, "function"), fn) && json_equal(json_object_get(cur, "file"), file) &&
            json_equal(json_object_get(cur, "line"), line)) {
            json_object_set_new(cur, "count", json_integer(json_integer_value(json_object_get(cur, "count")) + 1));
            continue;
        }
        cur = json_pack("{s:I, s:O?, s:O?, s:O?, s:O?, s:i}", "t", (json_int_t)json_array_size(out), "function", fn,
                        "file", file, "line", line, "depth", json_object_get(s, "depth"), "count", 1);
        json_array_append_new(out, cur);
    }
    return out;
}

static const char *str(json_t *rec, const char *key)
{
    const char *s = json_string_value(json_object_get(rec, key));
    return s ? s : "?";
}

/* Integer id per distinct key, shared by both sides (a jansson object is the
 * dictionary). */
static int intern(json_t *dict, const char *key)
{
    json_t *id = json_object_get(dict, key);
    if (id)
        return (int)json_integer_value(id);
    int n = (int)json_object_size(dict);
    json_object_set_new(dict, key, json_integer(n));
    return n;
}

/* "  if (x)\t{" -> "if (x) {": the text of a line, blanks collapsed. */
static void squeeze(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    bool blank = false;
    for (; s && *s && n + 1 < cap; s++) {
        bool b = *s == ' ' || *s == '\t';
        if (b && n && !blank)
            out[n++] = ' ';
        else if (!b)
            out[n++] = *s;
        blank = b;
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static int *line_keys(json_t *path, json_t *dict, bool by_source)
{
    size_t n = json_array_size(path), i;
    int *keys = malloc((n ? n : 1) * sizeof *keys);
    json_t *r;
    char key[512], text[400];
    json_array_foreach(path, i, r) {
        const char *src = json_string_value(json_object_get(r, "source"));
        if (by_source && src && *src) {
            squeeze(src, text, sizeof text);
            snprintf(key, sizeof key, "%s\t=%s", str(r, "function"), text);
        } else {
            snprintf(key, sizeof key, "%s\t%s:%lld", str(r, "function"), str(r, "file"),
                     (long long)json_integer_value(json_object_get(r, "line")));
        }
        if (keys)
            keys[i] = intern(dict, key);
    }
    return keys;
}

/* The call sequence: runs of one (depth, symbol), in order. The symbol is
 * the real function the pc is in (inlined helpers fold into their caller),
 * without the compiler's ".constprop.0"-like suffixes, which change from
 * one build to the next. */
static json_t *calls_of(json_t *path)
{
    json_t *out = json_array(), *cur = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(path, i, r) {
        const char *sym = json_string_value(json_object_get(r, "sym"));
        if (!sym)
            sym = str(r, "function");
        json_t *fn = json_stringn(sym, strcspn(sym, ".")), *depth = json_object_get(r, "depth");
        if (cur && json_equal(json_object_get(cur, "function"), fn) && json_equal(json_object_get(cur, "depth"), depth)) {
            json_decref(fn);
            continue;
        }
        cur = json_pack("{s:o, s:O?}", "function", fn, "depth", depth);
        json_array_append_new(out, cur);
    }
    return out;
}

static int *call_keys(json_t *calls, json_t *dict)
{
    size_t n = json_array_size(calls), i;
    int *keys = malloc((n ? n : 1) * sizeof *keys);
    json_t *r;
    char key[300];
    json_array_foreach(calls, i, r) {
        snprintf(key, sizeof key, "%lld\t%s", (long long)json_integer_value(json_object_get(r, "depth")),
                 str(r, "function"));
        if (keys)
            keys[i] = intern(dict, key);
    }
    return keys;
}

/* A path record as the result shows it (no registers). */
static json_t *brief(json_t *r)
{
    if (!r)
        return json_null();
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "t", json_object_get(r, "t"), "function",
                     json_object_get(r, "function"), "file", json_object_get(r, "file"), "line",
                     json_object_get(r, "line"), "depth", json_object_get(r, "depth"), "source",
                     json_object_get(r, "source"));
}

/* Group the ops into hunks: a run of '-'/'+' with up to ctx common records
 * before it. Each hunk: a_start, b_start, context[], a[], b[]. */
static json_t *hunks_of(const char *ops, size_t nops, json_t *pa, json_t *pb, size_t ctx, size_t max_hunks,
                        size_t *total)
{
    json_t *out = json_array();
    size_t ia = 0, ib = 0;
    *total = 0;
    for (size_t i = 0; i < nops;) {
        if (ops[i] == '=') {
            i++, ia++, ib++;
            continue;
        }
        (*total)++;
        json_t *h = json_pack("{s:I, s:I, s:[], s:[], s:[]}", "a_start", (json_int_t)ia, "b_start", (json_int_t)ib,
                              "context", "a", "b");
        for (size_t c = ia > ctx ? ia - ctx : 0; c < ia; c++)
            json_array_append_new(json_object_get(h, "context"), brief(json_array_get(pa, c)));
        for (; i < nops && ops[i] != '='; i++) {
            if (ops[i] == '-')
                json_array_append_new(json_object_get(h, "a"), brief(json_array_get(pa, ia++)));
            else
                json_array_append_new(json_object_get(h, "b"), brief(json_array_get(pb, ib++)));
        }
        if (json_array_size(out) < max_hunks)
            json_array_append_new(out, h);
        else
            json_decref(h);
    }
    return out;
}

/* The call-sequence diff, compact: changed entries with one common entry
 * around each run. */
static json_t *call_changes(const char *ops, size_t nops, json_t *ca, json_t *cb, size_t limit)
{
    json_t *out = json_array();
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < nops && json_array_size(out) < limit; i++) {
        bool near = ops[i] != '=' || (i + 1 < nops && ops[i + 1] != '=') || (i > 0 && ops[i - 1] != '=');
        json_t *r = ops[i] == '+' ? json_array_get(cb, ib) : json_array_get(ca, ia);
        if (near)
            json_array_append_new(out, json_pack("{s:s#, s:O?, s:O?}", "op", &ops[i], (size_t)1, "function",
                                                 json_object_get(r, "function"), "depth", json_object_get(r, "depth")));
        if (ops[i] != '+')
            ia++;
        if (ops[i] != '-')
            ib++;
    }
    return out;
}

/* Instructions per function on each side, largest change first. */
static json_t *functions_of(json_t *pa, json_t *pb, json_t *only_a, json_t *only_b)
{
    json_t *tally = json_object();
    json_t *paths[2] = { pa, pb };
    for (int s = 0; s < 2; s++) {
        size_t i;
        json_t *r;
        json_array_foreach(paths[s], i, r) {
            const char *fn = str(r, "function");
            json_t *row = json_object_get(tally, fn);
            if (!row) {
                row = json_pack("{s:s, s:i, s:i}", "function", fn, "a", 0, "b", 0);
                json_object_set_new(tally, fn, row);
            }
            const char *side = s ? "b" : "a";
            json_int_t n = json_integer_value(json_object_get(r, "count"));
            json_object_set_new(row, side, json_integer(json_integer_value(json_object_get(row, side)) + (n ? n : 1)));
        }
    }
    json_t *rows = json_array();
    const char *fn;
    json_t *row;
    json_object_foreach(tally, fn, row) {
        json_int_t a = json_integer_value(json_object_get(row, "a")), b = json_integer_value(json_object_get(row, "b"));
        if (!b)
            json_array_append_new(only_a, json_string(fn));
        if (!a)
            json_array_append_new(only_b, json_string(fn));
        json_array_append(rows, row);
    }
    json_decref(tally);
    return rows;
}

static int by_change(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    long long da = llabs(json_integer_value(json_object_get(a, "a")) - json_integer_value(json_object_get(a, "b")));
    long long db = llabs(json_integer_value(json_object_get(b, "a")) - json_integer_value(json_object_get(b, "b")));
    if (da != db)
        return da < db ? 1 : -1;
    return strcmp(str(a, "function"), str(b, "function"));
}

static void sort_rows(json_t *rows)
{
    size_t n = json_array_size(rows);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(rows, i));
    qsort(v, n, sizeof *v, by_change);
    json_array_clear(rows);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(rows, v[i]);
    free(v);
}

/* The first divergence: the last common record and the first record of
 * each side in the first hunk. */
static json_t *first_divergence(json_t *hunks, json_t *pa)
{
    json_t *h = json_array_get(hunks, 0);
    if (!h)
        return json_null();
    json_int_t as = json_integer_value(json_object_get(h, "a_start"));
    json_t *a = json_array_get(json_object_get(h, "a"), 0), *b = json_array_get(json_object_get(h, "b"), 0);
    return json_pack("{s:I, s:I, s:o, s:O?, s:O?}", "a_index", as, "b_index",
                     json_integer_value(json_object_get(h, "b_start")), "after",
                     as > 0 ? brief(json_array_get(pa, (size_t)as - 1)) : json_null(), "a", a, "b", b);
}

static json_t *or_null(json_t *v)
{
    return v ? v : json_null();
}

/* The trace headers' compared fields (steps, stop, final pc, ...). */
static void header_fields(json_t *out, const dfi_fault *a, const dfi_fault *b, size_t *nchanged)
{
    static const char *const keys[] = { "mode", "stop", "steps", "lines", "start_pc", "final_pc", "final_cs",
                                        "overs", "error", NULL };
    json_t *changed = json_array();
    for (size_t i = 0; keys[i]; i++) {
        json_t *va = json_object_get(a->trace, keys[i]), *vb = json_object_get(b->trace, keys[i]);
        if (dfi_is_variable("trace", keys[i]) || (!va && !vb) || (va && vb && json_equal(va, vb)))
            continue;
        json_array_append_new(changed, json_pack("{s:s, s:O?, s:O?}", "name", keys[i], "a", va, "b", vb));
        (*nchanged)++;
    }
    json_object_set_new(out, "header_changed", changed);
    json_object_set(out, "a_steps", or_null(json_object_get(a->trace, "steps")));
    json_object_set(out, "b_steps", or_null(json_object_get(b->trace, "steps")));
}

/* The call sequences of both paths, diffed. */
static int compare_calls(json_t *out, json_t *pa, json_t *pb, const diff_options *opt, fl_error *err)
{
    json_t *ca = calls_of(pa), *cb = calls_of(pb), *dict = json_object();
    int *ka = call_keys(ca, dict), *kb = call_keys(cb, dict);
    char *ops = NULL;
    size_t nops = 0;
    long d = -1;
    if (ka && kb)
        d = diff_myers(ka, json_array_size(ca), kb, json_array_size(cb), opt->max_cost, &ops, &nops, err);
    else
        fl_fail(err, FL_EIO, "out of memory aligning the call sequences");
    if (d >= 0) {
        json_object_set_new(out, "a_calls", json_integer((json_int_t)json_array_size(ca)));
        json_object_set_new(out, "b_calls", json_integer((json_int_t)json_array_size(cb)));
        json_object_set_new(out, "calls_changed", json_integer(d));
        json_object_set_new(out, "calls", call_changes(ops, nops, ca, cb, 80));
    }
    free(ops);
    free(ka);
    free(kb);
    json_decref(ca);
    json_decref(cb);
    json_decref(dict);
    return d >= 0 ? 0 : -1;
}

/* The line sequences, diffed: hunks and the first divergence. */
static int compare_lines(json_t *out, json_t *pa, json_t *pb, const diff_options *opt, size_t *nchanged,
                         fl_error *err)
{
    json_t *dict = json_object();
    bool by_source = opt->align == DIFF_ALIGN_SOURCE;
    int *ka = line_keys(pa, dict, by_source), *kb = line_keys(pb, dict, by_source);
    json_object_set_new(out, "aligned_by", json_string(by_source ? "function and source text" : "function and file:line"));
    char *ops = NULL;
    size_t nops = 0, total = 0;
    long d = -1;
    if (ka && kb)
        d = diff_myers(ka, json_array_size(pa), kb, json_array_size(pb), opt->max_cost, &ops, &nops, err);
    else
        fl_fail(err, FL_EIO, "out of memory aligning the paths");
    if (d >= 0) {
        json_t *hunks = hunks_of(ops, nops, pa, pb, opt->context, opt->max_hunks, &total);
        json_object_set_new(out, "lines_changed", json_integer(d));
        json_object_set_new(out, "first_divergence", first_divergence(hunks, pa));
        json_object_set_new(out, "hunks_total", json_integer((json_int_t)total));
        json_object_set_new(out, "hunks", hunks);
        *nchanged += (size_t)d;
    }
    free(ops);
    free(ka);
    free(kb);
    json_decref(dict);
    return d >= 0 ? 0 : -1;
}

json_t *dfi_compare_trace(const dfi_fault *a, const dfi_fault *b, const diff_options *opt, bool *differs,
                          fl_error *err)
{
    json_t *out = json_object();
    if (!a->trace || !b->trace) {
        json_object_set_new(out, "only", json_string(a->trace ? "a" : "b"));
        *differs = true;
        return out;
    }
    size_t nchanged = 0;
    header_fields(out, a, b, &nchanged);
    json_t *pa = path_of(a), *pb = path_of(b);
    json_object_set_new(out, "a_lines", json_integer((json_int_t)json_array_size(pa)));
    json_object_set_new(out, "b_lines", json_integer((json_int_t)json_array_size(pb)));
    fl_error aerr = { 0 };
    if (compare_lines(out, pa, pb, opt, &nchanged, &aerr) < 0 || compare_calls(out, pa, pb, opt, &aerr) < 0) {
        /* Too different to align: still a result, saying so. */
        json_object_set_new(out, "aligned", json_false());
        json_object_set_new(out, "why_not_aligned", json_string(aerr.msg));
        nchanged++;
    } else {
        json_object_set_new(out, "aligned", json_true());
    }
    json_t *only_a = json_array(), *only_b = json_array();
    json_t *rows = functions_of(pa, pb, only_a, only_b);
    sort_rows(rows);
    json_object_set_new(out, "functions", rows);
    json_object_set_new(out, "functions_only_a", only_a);
    json_object_set_new(out, "functions_only_b", only_b);
    json_decref(pa);
    json_decref(pb);
    *differs = nchanged > 0;
    (void)err;
    return out;
}

/* ---- where the path tests the bits that differ ----------------------- */

/* Does the source text name one of the bits (as a whole word)? Returns
 * the bits it names. */
static json_t *bits_named(const char *src, json_t *bits)
{
    json_t *out = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(bits, i, b) {
        const char *name = json_string_value(b);
        size_t n = strlen(name);
        for (const char *p = src; p && (p = strstr(p, name)); p += n) {
            char after = p[n], before = p > src ? p[-1] : ' ';
            bool word = !(after == '_' || (after >= 'A' && after <= 'Z') || (after >= '0' && after <= '9')) &&
                        !(before == '_' || (before >= 'A' && before <= 'Z'));
            if (word) {
                json_array_append(out, b);
                break;
            }
        }
    }
    return out;
}

static void tally_bit_lines(json_t *path, json_t *bits, json_t *rows, json_t *order, const char *side)
{
    size_t i;
    json_t *r;
    char cnt[16], next[16];
    snprintf(cnt, sizeof cnt, "%s_count", side);
    snprintf(next, sizeof next, "%s_next", side);
    json_array_foreach(path, i, r) {
        json_t *named = bits_named(json_string_value(json_object_get(r, "source")), bits);
        if (!json_array_size(named)) {
            json_decref(named);
            continue;
        }
        char key[300];
        snprintf(key, sizeof key, "%s:%lld", str(r, "file"), (long long)json_integer_value(json_object_get(r, "line")));
        json_t *row = json_object_get(rows, key);
        if (!row) {
            row = json_pack("{s:o, s:O?, s:O?, s:O?, s:O?, s:i, s:i}", "bits", json_incref(named), "function",
                            json_object_get(r, "function"), "file", json_object_get(r, "file"), "line",
                            json_object_get(r, "line"), "source", json_object_get(r, "source"), "a_count", 0,
                            "b_count", 0);
            json_object_set_new(rows, key, row);
            json_array_append(order, row);
        }
        json_decref(named);
        json_object_set_new(row, cnt, json_integer(json_integer_value(json_object_get(row, cnt)) + 1));
        if (!json_object_get(row, next))
            json_object_set_new(row, next, brief(json_array_get(path, i + 1)));
    }
}

static bool same_place(json_t *x, json_t *y)
{
    return x && y && json_equal(json_object_get(x, "file"), json_object_get(y, "file")) &&
           json_equal(json_object_get(x, "line"), json_object_get(y, "line"));
}

json_t *dfi_bit_lines(const dfi_fault *a, const dfi_fault *b, json_t *bits)
{
    json_t *rows = json_object(), *order = json_array();
    json_t *pa = path_of(a), *pb = path_of(b);
    tally_bit_lines(pa, bits, rows, order, "a");
    tally_bit_lines(pb, bits, rows, order, "b");
    size_t i;
    json_t *row;
    json_array_foreach(order, i, row) {
        json_t *na = json_object_get(row, "a_next"), *nb = json_object_get(row, "b_next");
        bool differs = json_integer_value(json_object_get(row, "a_count")) != json_integer_value(json_object_get(row, "b_count")) ||
                       (na && nb && !same_place(na, nb));
        json_object_set_new(row, "differs", json_boolean(differs));
    }
    json_decref(rows);
    json_decref(pa);
    json_decref(pb);
    return order;
}
