/* matrix: planning the cells, their result files, the table, JUnit XML. */
#include "faultline/matrix.h"

#include "faultline/scenario.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const accel_words[] = { "tcg", "kvm" };

/* Scenarios by the catalog (scenario.h); a bit per catalog row. */
static int scenario_mask(const char *list, uint64_t *mask, fl_error *err)
{
    *mask = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        if (strcmp(name, "all") == 0) {
            *mask = scenario_count() >= 64 ? ~0ull : (1ull << scenario_count()) - 1;
        } else {
            size_t i = 0;
            while (i < scenario_count() && strcmp(scenario_at(i)->name, name) != 0)
                i++;
            if (i == scenario_count() || i >= 64)
                return fl_fail(err, FL_EUSAGE, "'%s' is not a scenario (all, or one of 'faultline run --help' lists)",
                               name);
            *mask |= 1ull << i;
        }
        p += n + (p[n] == ',');
    }
    return *mask ? 0 : fl_fail(err, FL_EUSAGE, "an empty list of scenarios");
}

static int accel_mask(const char *list, unsigned *mask, fl_error *err)
{
    *mask = 0;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int i = -1;
        for (size_t j = 0; j < 2; j++)
            if (strlen(accel_words[j]) == n && strncmp(accel_words[j], p, n) == 0)
                i = (int)j;
        if (i < 0)
            return fl_fail(err, FL_EUSAGE, "'%.*s' is not an accelerator (tcg, kvm)", (int)n, p);
        *mask |= 1u << i;
        p += n + (p[n] == ',');
    }
    return *mask ? 0 : fl_fail(err, FL_EUSAGE, "an empty list of accelerators");
}

int matrix_parse_shard(const char *s, int *k, int *n, fl_error *err)
{
    *k = *n = 1;
    if (!s)
        return 0;
    char tail;
    if (sscanf(s, "%d/%d%c", k, n, &tail) != 2 || *n < 1 || *n > 1000 || *k < 1 || *k > *n)
        return fl_fail(err, FL_EUSAGE, "--shard needs K/N with 1 <= K <= N <= 1000 (e.g. 2/4), not '%s'", s);
    return 0;
}

/* "linux-6.12.118-1~deb12u1-8bd5967bc1a0" from .../linux-.../src/vmlinux:
 * the path component naming the kernel, else the file's directory name. */
static void kernel_label(const char *path, char *buf, size_t cap)
{
    char real[PATH_MAX];
    const char *p = realpath(path, real) ? real : path;
    const char *best = NULL;
    for (const char *c = p; (c = strstr(c, "/linux-")); c++)
        best = c + 1;
    char tmp[PATH_MAX];
    if (best) {
        snprintf(tmp, sizeof tmp, "%.*s", (int)strcspn(best, "/"), best);
    } else {
        snprintf(tmp, sizeof tmp, "%s", p);
        char *slash = strrchr(tmp, '/');
        if (slash && slash != tmp) {
            *slash = '\0';
            slash = strrchr(tmp, '/');
            memmove(tmp, slash ? slash + 1 : tmp, strlen(slash ? slash + 1 : tmp) + 1);
        }
    }
    size_t n = 0;
    for (const char *c = tmp; *c && n + 1 < cap; c++)
        buf[n++] = (strchr("/ \t\"'<>&", *c) ? '_' : *c);
    buf[n] = '\0';
}

static int add_cell(matrix_plan *p, size_t cap, const char *scenario, bool reproducible, const char *kernel,
                    const char *accel)
{
    if (p->ncells == cap)
        return -1;
    matrix_cell *c = &p->cells[p->ncells++];
    memset(c, 0, sizeof *c);
    snprintf(c->scenario, sizeof c->scenario, "%s", scenario);
    snprintf(c->kernel, sizeof c->kernel, "%s", kernel);
    kernel_label(kernel, c->kernel_label, sizeof c->kernel_label);
    snprintf(c->accel, sizeof c->accel, "%s", accel);
    c->reproducible = reproducible && strcmp(accel, "tcg") == 0;
    c->exit_code = -1;
    return 0;
}

/* Unique names: scenario.kernel.accel, with the kernel's index when two
 * kernels share a label. */
static void name_cells(matrix_plan *p)
{
    for (size_t i = 0; i < p->ncells; i++) {
        matrix_cell *c = &p->cells[i];
        snprintf(c->name, sizeof c->name, "%s.%s.%s", c->scenario, c->kernel_label, c->accel);
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->cells[j].name, c->name) == 0)
                snprintf(c->name, sizeof c->name, "%s.%s-%zu.%s", c->scenario, c->kernel_label, i, c->accel);
    }
}

int matrix_plan_make(matrix_plan *out, const char *scenarios, const char *const *kernels, int nkernels,
                     const char *accels, int shard_k, int shard_n, bool (*reproducible)(const char *scenario),
                     fl_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t smask;
    unsigned amask;
    if (scenario_mask(scenarios ? scenarios : "all", &smask, err) < 0 ||
        accel_mask(accels ? accels : "tcg", &amask, err) < 0)
        return -1;
    if (nkernels < 1)
        return fl_fail(err, FL_EUSAGE, "the matrix needs at least one kernel");
    size_t ns = scenario_count() < 64 ? scenario_count() : 64;
    size_t cap = ns * (size_t)nkernels * 2;
    matrix_plan all = { .cells = calloc(cap ? cap : 1, sizeof(matrix_cell)) };
    if (!all.cells)
        return fl_fail(err, FL_EIO, "out of memory planning the matrix");
    for (size_t s = 0; s < ns; s++)
        for (int k = 0; k < nkernels; k++)
            for (size_t a = 0; a < 2; a++)
                if ((smask & (1ull << s)) && (amask & (1u << a))) {
                    const char *name = scenario_at(s)->name;
                    add_cell(&all, cap, name, reproducible && reproducible(name), kernels[k], accel_words[a]);
                }
    name_cells(&all);
    /* Shard K of N: every N-th cell from the K-th, so each shard gets a mix. */
    size_t kept = 0;
    for (size_t i = 0; i < all.ncells; i++)
        if ((int)(i % (size_t)shard_n) == shard_k - 1)
            all.cells[kept++] = all.cells[i];
    all.ncells = kept;
    *out = all;
    return 0;
}

void matrix_plan_free(matrix_plan *p)
{
    free(p->cells);
    p->cells = NULL;
    p->ncells = 0;
}

const char *matrix_status_name(enum matrix_status s)
{
    static const char *const names[] = { "pending", "pass", "fail", "error", "skipped" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static enum matrix_status status_by_name(const char *s)
{
    for (int i = MATRIX_PENDING; i <= MATRIX_SKIPPED; i++)
        if (s && strcmp(s, matrix_status_name((enum matrix_status)i)) == 0)
            return (enum matrix_status)i;
    return MATRIX_ERROR;
}

void matrix_cell_dir(const char *out_dir, const matrix_cell *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", out_dir, c->name);
}

/* The summary's counts, and the first failed check or the error. */
void matrix_cell_read_report(matrix_cell *c, const char *report_path)
{
    FILE *f = fopen(report_path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    bool have_reason = false;
    while (getline(&line, &cap, f) >= 0) {
        json_t *r = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(r, "type"));
        if (type && strcmp(type, "check") == 0 && json_is_false(json_object_get(r, "ok")) && !have_reason) {
            snprintf(c->reason, sizeof c->reason, "check %s failed: expected %s, got %s",
                     json_string_value(json_object_get(r, "name")), json_string_value(json_object_get(r, "expected")),
                     json_string_value(json_object_get(r, "actual")));
            have_reason = true;
        } else if (type && strcmp(type, "summary") == 0) {
            c->checks = (int)json_integer_value(json_object_get(r, "checks"));
            c->failed = (int)json_integer_value(json_object_get(r, "failed"));
            const char *e = json_string_value(json_object_get(r, "error"));
            if (e && !have_reason)
                snprintf(c->reason, sizeof c->reason, "%s", e);
        }
        json_decref(r);
    }
    free(line);
    fclose(f);
}

int matrix_cell_save(const char *out_dir, const matrix_cell *c, fl_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    matrix_cell_dir(out_dir, c, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:f, s:i, s:i, s:s}", "cell", c->name, "scenario",
                          c->scenario, "kernel", c->kernel, "kernel_label", c->kernel_label, "accel", c->accel,
                          "reproducible", c->reproducible, "status", matrix_status_name(c->status), "exit",
                          c->exit_code, "seconds", c->seconds, "checks", c->checks, "failed", c->failed, "reason",
                          c->reason);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        json_decref(j);
        return fl_fail(err, FL_EIO, "cannot create %s: %s", dir, strerror(errno));
    }
    int rc = j ? json_dump_file(j, path, JSON_COMPACT) : -1;
    json_decref(j);
    return rc == 0 ? 0 : fl_fail(err, FL_EIO, "cannot write %s", path);
}

static int load_one(matrix_plan *p, size_t *cap, const char *path)
{
    json_t *j = json_load_file(path, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    if (p->ncells == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        matrix_cell *n = realloc(p->cells, *cap * sizeof *n);
        if (!n) {
            json_decref(j);
            return -1;
        }
        p->cells = n;
    }
    matrix_cell *c = &p->cells[p->ncells++];
    memset(c, 0, sizeof *c);
#define STR(field, key) snprintf(c->field, sizeof c->field, "%s", json_string_value(json_object_get(j, key)) ? json_string_value(json_object_get(j, key)) : "")
    STR(name, "cell");
    STR(scenario, "scenario");
    STR(kernel, "kernel");
    STR(kernel_label, "kernel_label");
    STR(accel, "accel");
    STR(reason, "reason");
#undef STR
    c->reproducible = json_is_true(json_object_get(j, "reproducible"));
    c->status = status_by_name(json_string_value(json_object_get(j, "status")));
    c->exit_code = (int)json_integer_value(json_object_get(j, "exit"));
    c->seconds = json_number_value(json_object_get(j, "seconds"));
    c->checks = (int)json_integer_value(json_object_get(j, "checks"));
    c->failed = (int)json_integer_value(json_object_get(j, "failed"));
    json_decref(j);
    /* The same cell from two shards: the later one wins. */
    for (size_t i = 0; i + 1 < p->ncells; i++)
        if (strcmp(p->cells[i].name, c->name) == 0) {
            p->cells[i] = *c;
            p->ncells--;
            break;
        }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const matrix_cell *)a)->name, ((const matrix_cell *)b)->name);
}

int matrix_load_results(matrix_plan *out, const char *const *dirs, int ndirs, fl_error *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    for (int d = 0; d < ndirs; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) {
            matrix_plan_free(out);
            return fl_fail(err, FL_EUSAGE, "cannot read the matrix directory %s: %s", dirs[d], strerror(errno));
        }
        struct dirent *e;
        while ((e = readdir(dir))) {
            char path[PATH_MAX];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s/result.json", dirs[d], e->d_name);
            if (access(path, R_OK) == 0 && load_one(out, &cap, path) < 0) {
                closedir(dir);
                matrix_plan_free(out);
                return fl_fail(err, FL_EFORMAT, "%s is not a matrix cell's result", path);
            }
        }
        closedir(dir);
    }
    if (out->ncells)
        qsort(out->cells, out->ncells, sizeof *out->cells, by_name);
    return out->ncells ? 0 : fl_fail(err, FL_EUSAGE, "no matrix results (*/result.json) in the directories given");
}

int matrix_tally(const matrix_plan *p, int *passed, int *failed, int *skipped)
{
    *passed = *failed = *skipped = 0;
    for (size_t i = 0; i < p->ncells; i++) {
        enum matrix_status s = p->cells[i].status;
        if (s == MATRIX_PASS)
            (*passed)++;
        else if (s == MATRIX_SKIPPED)
            (*skipped)++;
        else
            (*failed)++;
    }
    return *failed ? 1 : 0;
}

void matrix_write_table(FILE *out, const matrix_plan *p)
{
    fprintf(out, "  %-14s %-40s %-5s %-8s %8s %7s  %s\n", "scenario", "kernel", "accel", "result", "time", "checks",
            "note");
    for (size_t i = 0; i < p->ncells; i++) {
        const matrix_cell *c = &p->cells[i];
        char checks[24] = "-", secs[24] = "-";
        if (c->checks)
            snprintf(checks, sizeof checks, "%d/%d", c->checks - c->failed, c->checks);
        if (c->status != MATRIX_SKIPPED)
            snprintf(secs, sizeof secs, "%.1fs", c->seconds);
        fprintf(out, "  %-14s %-40.40s %-5s %-8s %8s %7s  %s\n", c->scenario, c->kernel_label, c->accel,
                matrix_status_name(c->status), secs, checks, c->reason);
    }
    int pa, fa, sk;
    matrix_tally(p, &pa, &fa, &sk);
    fprintf(out, "matrix: %d passed, %d failed, %d skipped\n", pa, fa, sk);
}

void matrix_xml_escape(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if (*p >= 0x20 || *p == '\t' || *p == '\n' || *p == '\r')
                fputc(*p, out);
        }
    }
}

static void junit_case(FILE *f, const matrix_cell *c)
{
    fputs("    <testcase classname=\"faultline.", f);
    matrix_xml_escape(f, c->kernel_label);
    fprintf(f, ".%s\" name=\"", c->accel);
    matrix_xml_escape(f, c->scenario);
    fprintf(f, "\" time=\"%.3f\">\n", c->seconds);
    const char *tag = c->status == MATRIX_FAIL ? "failure" : c->status == MATRIX_ERROR ? "error"
                    : c->status == MATRIX_SKIPPED ? "skipped" : NULL;
    if (tag) {
        fprintf(f, "      <%s message=\"", tag);
        matrix_xml_escape(f, c->reason[0] ? c->reason : matrix_status_name(c->status));
        fprintf(f, "\"%s>", c->status == MATRIX_SKIPPED ? "/" : "");
        if (c->status != MATRIX_SKIPPED) {
            fprintf(f, "exit status %d; %d of %d checks failed; ", c->exit_code, c->failed, c->checks);
            matrix_xml_escape(f, c->reason);
            fprintf(f, "</%s>", tag);
        }
        fputs("\n", f);
    }
    fputs("      <system-out>report: ", f);
    matrix_xml_escape(f, c->name);
    fputs("/report.jsonl, log: ", f);
    matrix_xml_escape(f, c->name);
    fputs("/log.txt; kernel ", f);
    matrix_xml_escape(f, c->kernel);
    fprintf(f, "%s</system-out>\n    </testcase>\n", c->reproducible ? "; reproducible" : "");
}

/* One <testsuite> per kernel and accelerator, in the order first seen. */
static void junit_suites(FILE *f, const matrix_plan *p)
{
    bool *done = calloc(p->ncells ? p->ncells : 1, sizeof *done);
    for (size_t i = 0; done && i < p->ncells; i++) {
        if (done[i])
            continue;
        const matrix_cell *c = &p->cells[i];
        int n = 0, fail = 0, errs = 0, skip = 0;
        double t = 0;
        for (size_t j = i; j < p->ncells; j++)
            if (strcmp(p->cells[j].kernel_label, c->kernel_label) == 0 && strcmp(p->cells[j].accel, c->accel) == 0) {
                n++, t += p->cells[j].seconds;
                fail += p->cells[j].status == MATRIX_FAIL;
                errs += p->cells[j].status == MATRIX_ERROR;
                skip += p->cells[j].status == MATRIX_SKIPPED;
            }
        fputs("  <testsuite name=\"faultline.", f);
        matrix_xml_escape(f, c->kernel_label);
        fprintf(f, ".%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\">\n", c->accel, n,
                fail, errs, skip, t);
        for (size_t j = i; j < p->ncells; j++)
            if (strcmp(p->cells[j].kernel_label, c->kernel_label) == 0 && strcmp(p->cells[j].accel, c->accel) == 0) {
                junit_case(f, &p->cells[j]);
                done[j] = true;
            }
        fputs("  </testsuite>\n", f);
    }
    free(done);
}

int matrix_write_junit(const char *path, const matrix_plan *p, fl_error *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return fl_fail(err, FL_EIO, "cannot write the JUnit file %s: %s", tmp, strerror(errno));
    int pa, fa, sk, errs = 0;
    double t = 0;
    matrix_tally(p, &pa, &fa, &sk);
    for (size_t i = 0; i < p->ncells; i++) {
        errs += p->cells[i].status == MATRIX_ERROR;
        t += p->cells[i].seconds;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"faultline matrix\" tests=\"%zu\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" "
               "time=\"%.3f\">\n", p->ncells, fa - errs, errs, sk, t);
    junit_suites(f, p);
    fputs("</testsuites>\n", f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return fl_fail(err, FL_EIO, "cannot write the JUnit file %s: %s", path, strerror(errno));
    }
    return 0;
}
