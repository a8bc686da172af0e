/* diff: loading two JSON Lines documents into faults, and comparing them
 * into one jansson result (rendered by diff_report.c). */
#include "faultline/diff.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diff_internal.h"

/* ---- variable fields ------------------------------------------------ */

static const struct {
    const char *field;
    const char *why;
} variable_rows[] = {
    { "vm.*", "the machine: kernel and QEMU version strings, vmlinux path, gdbstub socket, boot time (shown, not compared)" },
    { "summary.seconds", "wall time of the whole run" },
    { "summary.passed_over", "faults of other processes: depends on the boot and the mode, not on the fault path" },
    { "summary.error", "the sentence names paths and times; its presence is compared through the exit status" },
    { "trace.seconds", "wall time of the trace" },
    { "trace.stops", "how often the guest stopped: depends on the mode (fast mode batches)" },
    { "trace.resyncs", "fast mode's resynchronisations: host timing" },
    { "*.source", "source text: present only when the kernel tree is beside vmlinux" },
    { "probe.note", "why a station was not hit, in words (the hit flag is compared)" },
    { "check.claim", "the claim in words (name, verdict and readings are compared)" },
    { NULL, NULL },
};

const char *const diff_variable_fields[] = {
    "vm.*", "summary.seconds", "summary.passed_over", "summary.error", "trace.seconds", "trace.stops",
    "trace.resyncs", "*.source", "probe.note", "check.claim", NULL,
};

const char *diff_variable_reason(const char *field)
{
    for (size_t i = 0; variable_rows[i].field; i++)
        if (strcmp(variable_rows[i].field, field) == 0)
            return variable_rows[i].why;
    return NULL;
}

bool dfi_is_variable(const char *type, const char *field)
{
    char full[96];
    snprintf(full, sizeof full, "%s.%s", type, field);
    for (size_t i = 0; diff_variable_fields[i]; i++) {
        const char *v = diff_variable_fields[i];
        if (strcmp(v, full) == 0)
            return true;
        if (v[0] == '*' && v[1] == '.' && strcmp(v + 2, field) == 0)
            return true;
        size_t n = strlen(v);
        if (n > 2 && strcmp(v + n - 2, ".*") == 0 && strncmp(v, full, n - 1) == 0)
            return true;
    }
    return false;
}

/* ---- loading ---------------------------------------------------------- */

void diff_doc_free(diff_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nfaults; i++) {
        dfi_fault *f = &d->faults[i];
        json_decref(f->trigger);
        json_decref(f->probes);
        json_decref(f->checks);
        json_decref(f->trace);
        json_decref(f->lines);
        json_decref(f->steps);
    }
    free(d->faults);
    json_decref(d->vm);
    json_decref(d->summary);
    free(d);
}

size_t diff_doc_faults(const diff_doc *d)
{
    return d ? d->nfaults : 0;
}

static dfi_fault *new_fault(diff_doc *d, fl_error *err)
{
    if (d->nfaults == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        dfi_fault *n = realloc(d->faults, cap * sizeof *n);
        if (!n) {
            fl_fail(err, FL_EIO, "out of memory reading %s", d->name);
            return NULL;
        }
        d->faults = n;
        d->cap = cap;
    }
    dfi_fault *f = &d->faults[d->nfaults++];
    memset(f, 0, sizeof *f);
    f->probes = json_array();
    f->checks = json_array();
    f->lines = json_array();
    f->steps = json_array();
    if (!f->probes || !f->checks || !f->lines || !f->steps) {
        fl_fail(err, FL_EIO, "out of memory reading %s", d->name);
        return NULL;
    }
    return f;
}

/* A record starts a new fault when it is a trigger, or a probe that cannot
 * belong to the current one (after its checks or trace, or a station not
 * after the last one seen). */
static bool starts_fault(const dfi_fault *cur, const char *type, json_t *rec)
{
    if (!cur)
        return strcmp(type, "trigger") == 0 || strcmp(type, "probe") == 0 || strcmp(type, "check") == 0 ||
               strcmp(type, "trace") == 0 || strcmp(type, "line") == 0 || strcmp(type, "step") == 0;
    if (strcmp(type, "trigger") == 0)
        return true;
    if (strcmp(type, "probe") != 0)
        return false;
    if (json_array_size(cur->checks) || cur->trace || json_array_size(cur->lines) || json_array_size(cur->steps))
        return true;
    size_t n = json_array_size(cur->probes);
    if (!n)
        return false;
    json_int_t last = json_integer_value(json_object_get(json_array_get(cur->probes, n - 1), "station"));
    return json_integer_value(json_object_get(rec, "station")) <= last;
}

static int add_record(diff_doc *d, json_t *rec, size_t lineno, fl_error *err)
{
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (!type)
        return fl_fail(err, FL_EFORMAT, "%s line %zu has no \"type\": is it faultline's JSON Lines output (--format json)?",
                       d->name, lineno);
    if (strcmp(type, "vm") == 0 || strcmp(type, "summary") == 0) {
        json_t **slot = type[0] == 'v' ? &d->vm : &d->summary;
        json_decref(*slot);
        *slot = json_incref(rec);
        return 0;
    }
    dfi_fault *cur = d->nfaults ? &d->faults[d->nfaults - 1] : NULL;
    if (starts_fault(cur, type, rec) && !(cur = new_fault(d, err)))
        return -1;
    if (!cur)
        return 0; /* a record type this version does not know: kept out */
    json_t **one = strcmp(type, "trigger") == 0 ? &cur->trigger : strcmp(type, "trace") == 0 ? &cur->trace : NULL;
    if (one) { /* a second one in a fault (not faultline's output): the last counts */
        json_decref(*one);
        *one = json_incref(rec);
    } else if (strcmp(type, "probe") == 0) {
        json_array_append(cur->probes, rec);
    } else if (strcmp(type, "check") == 0) {
        json_array_append(cur->checks, rec);
    } else if (strcmp(type, "line") == 0) {
        json_array_append(cur->lines, rec);
    } else if (strcmp(type, "step") == 0) {
        json_array_append(cur->steps, rec);
    }
    return 0;
}

int diff_doc_read(diff_doc **out, FILE *in, const char *name, fl_error *err)
{
    *out = NULL;
    diff_doc *d = calloc(1, sizeof *d);
    if (!d)
        return fl_fail(err, FL_EIO, "out of memory reading %s", name);
    snprintf(d->name, sizeof d->name, "%s", name);
    char *buf = NULL;
    size_t cap = 0, lineno = 0, records = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&buf, &cap, in)) >= 0) {
        lineno++;
        if (strspn(buf, " \t\r\n") == (size_t)len)
            continue;
        json_error_t je;
        json_t *rec = json_loadb(buf, (size_t)len, 0, &je);
        if (!json_is_object(rec))
            rc = fl_fail(err, FL_EFORMAT, "%s line %zu is not a JSON object (%s): give faultline's --format json output",
                         name, lineno, rec ? "another JSON value" : je.text);
        else
            rc = add_record(d, rec, lineno, err);
        json_decref(rec);
        records++;
    }
    free(buf);
    if (rc == 0 && ferror(in))
        rc = fl_fail(err, FL_EIO, "cannot read %s: %s", name, strerror(errno));
    if (rc == 0 && !d->vm && !d->nfaults)
        rc = fl_fail(err, FL_EFORMAT, "%s holds no faultline record (%zu lines): give the JSON Lines of run, capture or trace",
                     name, records);
    if (rc < 0) {
        diff_doc_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int diff_doc_load(diff_doc **out, const char *path, fl_error *err)
{
    if (!path || strcmp(path, "-") == 0)
        return diff_doc_read(out, stdin, "standard input", err);
    FILE *f = fopen(path, "r");
    if (!f)
        return fl_fail(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = diff_doc_read(out, f, path, err);
    fclose(f);
    return rc;
}

/* ---- Myers' O(ND) alignment ----------------------------------------- */

static void reverse(char *s, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        char c = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = c;
    }
}

/* Walk back from (na, nb) through the saved V of each round. */
static char *myers_backtrack(int **hist, long D, size_t na, size_t nb, size_t *nops)
{
    char *ops = malloc(na + nb + 1);
    if (!ops)
        return NULL;
    size_t n = 0;
    long x = (long)na, y = (long)nb;
    for (long d = D; d > 0; d--) {
        const int *vp = hist[d - 1]; /* V after round d-1, index k + (d-1) */
        long k = x - y;
        bool down = k == -d || (k != d && vp[k - 1 + d - 1] < vp[k + 1 + d - 1]);
        long pk = down ? k + 1 : k - 1;
        long px = vp[pk + d - 1], py = px - pk;
        while (x > px + (down ? 0 : 1) && y > py + (down ? 1 : 0)) {
            ops[n++] = '=';
            x--, y--;
        }
        ops[n++] = down ? '+' : '-';
        x = px, y = py;
    }
    while (x > 0 && y > 0) {
        ops[n++] = '=';
        x--, y--;
    }
    reverse(ops, n);
    *nops = n;
    return ops;
}

static void free_hist(int **hist, long n)
{
    for (long i = 0; i < n; i++)
        free(hist[i]);
    free(hist);
}

long diff_myers(const int *a, size_t na, const int *b, size_t nb, size_t max_cost, char **ops, size_t *nops,
                fl_error *err)
{
    *ops = NULL;
    *nops = 0;
    long dmax = (long)(na + nb);
    if (max_cost && (long)max_cost < dmax)
        dmax = (long)max_cost;
    int **hist = calloc((size_t)dmax + 1, sizeof *hist);
    int *v = calloc(2 * (size_t)dmax + 3, sizeof *v); /* V[k] at v[k + dmax + 1] */
    if (!hist || !v) {
        free(hist);
        free(v);
        return fl_fail(err, FL_EIO, "out of memory aligning %zu against %zu records", na, nb);
    }
    long off = dmax + 1;
    for (long d = 0; d <= dmax; d++) {
        for (long k = -d; k <= d; k += 2) {
            long x = (k == -d || (k != d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1] : v[off + k - 1] + 1;
            long y = x - k;
            while (x < (long)na && y < (long)nb && a[x] == b[y])
                x++, y++;
            v[off + k] = (int)x;
            if (x >= (long)na && y >= (long)nb) {
                *ops = myers_backtrack(hist, d, na, nb, nops);
                free_hist(hist, d);
                free(v);
                return *ops ? d : fl_fail(err, FL_EIO, "out of memory aligning the paths");
            }
        }
        hist[d] = malloc((2 * (size_t)d + 1) * sizeof(int));
        if (!hist[d]) {
            free_hist(hist, d);
            free(v);
            return fl_fail(err, FL_EIO, "out of memory aligning the paths");
        }
        memcpy(hist[d], v + off - d, (2 * (size_t)d + 1) * sizeof(int));
    }
    free_hist(hist, dmax + 1);
    free(v);
    return fl_fail(err, FL_EUSAGE, "the paths differ in more than %ld places: too different to align", dmax);
}

/* ---- the whole comparison ------------------------------------------- */

static json_t *side_info(const diff_doc *d)
{
    return json_pack("{s:s, s:O?, s:O?, s:I}", "file", d->name, "kernel", json_object_get(d->vm, "kernel"), "accel",
                     json_object_get(d->vm, "accel"), "faults", (json_int_t)d->nfaults);
}

/* The summaries' compared counts (faults, checks, failed). */
static json_t *compare_summary(const diff_doc *a, const diff_doc *b, bool *differs)
{
    json_t *changed = json_array();
    if (!a->summary || !b->summary)
        return changed;
    const char *key;
    json_t *va;
    json_object_foreach(a->summary, key, va) {
        json_t *vb = json_object_get(b->summary, key);
        if (strcmp(key, "type") == 0 || dfi_is_variable("summary", key) || (vb && json_equal(va, vb)))
            continue;
        json_array_append_new(changed, json_pack("{s:s, s:O, s:O?}", "name", key, "a", va, "b", vb));
        *differs = true;
    }
    return changed;
}

static json_t *variable_list(void)
{
    json_t *out = json_array();
    for (size_t i = 0; variable_rows[i].field; i++)
        json_array_append_new(out, json_pack("{s:s, s:s}", "field", variable_rows[i].field, "why", variable_rows[i].why));
    return out;
}

int diff_compare(const diff_doc *a, const diff_doc *b, const diff_options *opt, diff_result **out, fl_error *err)
{
    *out = NULL;
    diff_options o = opt ? *opt : (diff_options){ 0 };
    if (!opt)
        o.context = 3;
    if (!o.max_hunks)
        o.max_hunks = 20;
    if (!o.max_cost)
        o.max_cost = 6000;
    diff_result *r = calloc(1, sizeof *r);
    if (!r || !(r->faults = json_array())) {
        free(r);
        return fl_fail(err, FL_EIO, "out of memory comparing %s and %s", a->name, b->name);
    }
    if (o.align == DIFF_ALIGN_AUTO)
        o.align = json_equal(json_object_get(a->vm, "kernel"), json_object_get(b->vm, "kernel")) ? DIFF_ALIGN_LINE
                                                                                                  : DIFF_ALIGN_SOURCE;
    size_t n = a->nfaults > b->nfaults ? a->nfaults : b->nfaults;
    for (size_t i = 0; i < n; i++) {
        bool differs = false;
        json_t *rec = dfi_compare_fault(i < a->nfaults ? &a->faults[i] : NULL, i < b->nfaults ? &b->faults[i] : NULL,
                                        i, &o, &differs, err);
        if (!rec) {
            diff_result_free(r);
            return -1;
        }
        json_array_append_new(r->faults, rec);
        r->differs |= differs;
    }
    json_t *summary = compare_summary(a, b, &r->differs);
    r->head = json_pack("{s:s, s:o, s:o, s:b, s:o, s:o}", "type", "diff", "a", side_info(a), "b", side_info(b),
                        "differs", r->differs, "summary_changed", summary, "not_compared", variable_list());
    if (!r->head) {
        diff_result_free(r);
        return fl_fail(err, FL_EIO, "out of memory comparing %s and %s", a->name, b->name);
    }
    *out = r;
    return 0;
}

void diff_result_free(diff_result *r)
{
    if (!r)
        return;
    json_decref(r->head);
    json_decref(r->faults);
    free(r);
}

bool diff_result_differs(const diff_result *r)
{
    return r && r->differs;
}

int diff_parse_format(const char *name, enum diff_format *out)
{
    static const struct { const char *name; enum diff_format fmt; } rows[] = {
        { "text", DIFF_TEXT }, { "md", DIFF_MD }, { "json", DIFF_JSON },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (name && strcmp(name, rows[i].name) == 0) {
            *out = rows[i].fmt;
            return 0;
        }
    return -1;
}
