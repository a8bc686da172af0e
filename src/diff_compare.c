/* diff: one fault against another: the trigger, each station's values, the
 * checks. The trace is diff_trace.c's. */
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"

static bool same_json(json_t *a, json_t *b)
{
    return (!a && !b) || (a && b && json_equal(a, b));
}

/* {"name", "a", "b"} for one changed field; absent sides are null. */
static json_t *change(const char *name, json_t *a, json_t *b)
{
    return json_pack("{s:s, s:O?, s:O?}", "name", name, "a", a, "b", b);
}

/* Plain fields of two records of TYPE (not "type", not objects, not the
 * variable ones): {"changed": [...], "same": [names]}. */
static json_t *compare_fields(json_t *a, json_t *b, const char *type, size_t *nchanged)
{
    json_t *changed = json_array(), *same = json_array(), *seen = json_object();
    json_t *sides[2] = { a, b };
    for (int s = 0; s < 2; s++) {
        const char *key;
        json_t *val;
        json_object_foreach(sides[s], key, val) {
            if (strcmp(key, "type") == 0 || json_is_object(val) || json_object_get(seen, key) ||
                dfi_is_variable(type, key))
                continue;
            json_object_set_new(seen, key, json_true());
            json_t *va = json_object_get(a, key), *vb = json_object_get(b, key);
            if (same_json(va, vb)) {
                json_array_append_new(same, json_string(key));
            } else {
                json_array_append_new(changed, change(key, va, vb));
                (*nchanged)++;
            }
        }
    }
    json_decref(seen);
    return json_pack("{s:o, s:o}", "changed", changed, "same", same);
}

/* "X86_PF_WRITE|X86_PF_USER" minus the bits of other: the names only one
 * side has, so a reader sees at once which flag made the difference. */
static json_t *bits_only(const char *one, const char *other)
{
    json_t *out = json_array();
    if (!one)
        return out;
    char *copy = strdup(one), *save = NULL;
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        bool found = false;
        size_t n = strlen(tok);
        for (const char *p = other; p && *p && !found;) {
            const char *end = strchr(p, '|');
            size_t m = end ? (size_t)(end - p) : strlen(p);
            found = m == n && strncmp(p, tok, n) == 0;
            p = end ? end + 1 : NULL;
        }
        if (!found)
            json_array_append_new(out, json_string(tok));
    }
    free(copy);
    return out;
}

static json_t *value_change(const char *name, json_t *va, json_t *vb)
{
    const char *da = json_string_value(json_object_get(va, "decoded"));
    const char *db = json_string_value(json_object_get(vb, "decoded"));
    json_t *c = json_pack("{s:s, s:O?, s:O?}", "name", name, "a", json_object_get(va, "value"), "b",
                          json_object_get(vb, "value"));
    if (da || db) {
        json_object_set_new(c, "a_decoded", da ? json_string(da) : json_null());
        json_object_set_new(c, "b_decoded", db ? json_string(db) : json_null());
        json_object_set_new(c, "bits_only_a", bits_only(da, db));
        json_object_set_new(c, "bits_only_b", bits_only(db, da));
    }
    return c;
}

/* The values objects of two probes: changed, same, only_a, only_b. */
static void compare_values(json_t *out, json_t *a, json_t *b, size_t *nchanged)
{
    json_t *changed = json_array(), *same = json_array(), *only_a = json_array(), *only_b = json_array();
    const char *key;
    json_t *va;
    json_object_foreach(a, key, va) {
        json_t *vb = json_object_get(b, key);
        if (!vb)
            json_array_append_new(only_a, json_string(key));
        else if (same_json(json_object_get(va, "value"), json_object_get(vb, "value")))
            json_array_append_new(same, json_string(key));
        else
            json_array_append_new(changed, value_change(key, va, vb));
    }
    json_t *vb;
    json_object_foreach(b, key, vb) {
        if (!json_object_get(a, key))
            json_array_append_new(only_b, json_string(key));
    }
    *nchanged += json_array_size(changed) + json_array_size(only_a) + json_array_size(only_b);
    json_object_set_new(out, "values_changed", changed);
    json_object_set_new(out, "values_same", same);
    json_object_set_new(out, "values_only_a", only_a);
    json_object_set_new(out, "values_only_b", only_b);
}

static json_t *probe_of(const dfi_fault *f, json_int_t station)
{
    size_t i;
    json_t *p;
    if (!f)
        return NULL;
    json_array_foreach(f->probes, i, p) {
        if (json_integer_value(json_object_get(p, "station")) == station)
            return p;
    }
    return NULL;
}

static json_t *compare_station(json_int_t station, json_t *pa, json_t *pb, size_t *nchanged)
{
    const char *fn = json_string_value(json_object_get(pa ? pa : pb, "function"));
    json_t *st = json_pack("{s:I, s:s}", "station", (json_int_t)station, "function", fn ? fn : "?");
    if (!pa || !pb) {
        json_object_set_new(st, "only", json_string(pa ? "a" : "b"));
        (*nchanged)++;
        return st;
    }
    json_t *fields = compare_fields(pa, pb, "probe", nchanged);
    json_object_set(st, "changed", json_object_get(fields, "changed"));
    json_object_set(st, "same", json_object_get(fields, "same"));
    json_decref(fields);
    compare_values(st, json_object_get(pa, "values"), json_object_get(pb, "values"), nchanged);
    return st;
}

static json_t *compare_stations(const dfi_fault *a, const dfi_fault *b, size_t *nchanged)
{
    json_t *out = json_array();
    for (json_int_t station = 1; station <= 64; station++) {
        json_t *pa = probe_of(a, station), *pb = probe_of(b, station);
        if (pa || pb)
            json_array_append_new(out, compare_station(station, pa, pb, nchanged));
    }
    return out;
}

static json_t *check_of(const dfi_fault *f, const char *name)
{
    size_t i;
    json_t *c;
    if (!f)
        return NULL;
    json_array_foreach(f->checks, i, c) {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (n && strcmp(n, name) == 0)
            return c;
    }
    return NULL;
}

static void compare_check(json_t *out, const char *name, json_t *ca, json_t *cb, size_t *nchanged)
{
    if (!ca || !cb) {
        json_array_append_new(json_object_get(out, ca ? "only_a" : "only_b"), json_string(name));
        (*nchanged)++;
        return;
    }
    size_t n = 0;
    json_t *fields = compare_fields(ca, cb, "check", &n);
    if (n) {
        json_t *c = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "name", name, "a_ok",
                              json_object_get(ca, "ok"), "b_ok", json_object_get(cb, "ok"), "a_expected",
                              json_object_get(ca, "expected"), "b_expected", json_object_get(cb, "expected"),
                              "a_actual", json_object_get(ca, "actual"), "b_actual", json_object_get(cb, "actual"),
                              "claim", json_object_get(ca, "claim"));
        json_array_append_new(json_object_get(out, "changed"), c);
        (*nchanged)++;
    } else {
        json_array_append_new(json_object_get(out, "same"), json_string(name));
    }
    json_decref(fields);
}

static json_t *compare_checks(const dfi_fault *a, const dfi_fault *b, size_t *nchanged)
{
    json_t *out = json_pack("{s:[], s:[], s:[], s:[]}", "changed", "same", "only_a", "only_b");
    const dfi_fault *sides[2] = { a, b };
    for (int s = 0; s < 2; s++) {
        size_t i;
        json_t *c;
        if (!sides[s])
            continue;
        json_array_foreach(sides[s]->checks, i, c) {
            const char *name = json_string_value(json_object_get(c, "name"));
            if (!name || (s == 1 && check_of(a, name)))
                continue;
            compare_check(out, name, check_of(a, name), check_of(b, name), nchanged);
        }
    }
    return out;
}

/* Every decoded bit one side has and the other not, over all stations: the
 * kernel's named constants (X86_PF_WRITE, FAULT_FLAG_WRITE), which source
 * lines test by name; not RFLAGS' two-letter flags or raw 0x remainders. */
static json_t *differing_bits(json_t *stations)
{
    json_t *seen = json_object(), *out = json_array();
    size_t i, j, k;
    json_t *st, *ch, *bit;
    json_array_foreach(stations, i, st) {
        json_array_foreach(json_object_get(st, "values_changed"), j, ch) {
            const char *keys[2] = { "bits_only_a", "bits_only_b" };
            for (int s = 0; s < 2; s++)
                json_array_foreach(json_object_get(ch, keys[s]), k, bit) {
                    const char *name = json_string_value(bit);
                    if (name && strchr(name, '_') && strncmp(name, "0x", 2) != 0 && !json_object_get(seen, name)) {
                        json_object_set_new(seen, name, json_true());
                        json_array_append(out, bit);
                    }
                }
        }
    }
    json_decref(seen);
    return out;
}

json_t *dfi_compare_fault(const dfi_fault *a, const dfi_fault *b, size_t index, const diff_options *opt,
                          bool *differs, fl_error *err)
{
    size_t nchanged = 0;
    json_t *rec = json_pack("{s:s, s:I}", "type", "fault-diff", "fault", (json_int_t)index + 1);
    if (!a || !b) {
        json_object_set_new(rec, "only", json_string(a ? "a" : "b"));
        *differs = true;
        return rec;
    }
    json_t *empty = json_object();
    json_object_set_new(rec, "trigger",
                        compare_fields(a->trigger ? a->trigger : empty, b->trigger ? b->trigger : empty, "trigger",
                                       &nchanged));
    json_decref(empty);
    json_object_set_new(rec, "stations", compare_stations(a, b, &nchanged));
    json_object_set_new(rec, "checks", compare_checks(a, b, &nchanged));
    bool trace_differs = false;
    if (a->trace && b->trace) {
        json_t *bits = differing_bits(json_object_get(rec, "stations"));
        json_object_set_new(rec, "differing_bits", bits);
        json_object_set_new(rec, "bit_lines", dfi_bit_lines(a, b, bits));
    }
    if (a->trace || b->trace) {
        json_t *t = dfi_compare_trace(a, b, opt, &trace_differs, err);
        if (!t) {
            json_decref(rec);
            return NULL;
        }
        json_object_set_new(rec, "trace", t);
    }
    json_object_set_new(rec, "changed", json_integer((json_int_t)nchanged));
    *differs = nchanged > 0 || trace_differs;
    return rec;
}
