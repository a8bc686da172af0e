/* diff: Myers' alignment against a dynamic-programming edit distance on
 * random sequences; captures and traces compared from JSON Lines written
 * here (values changed and the same, the decoded bits only one side has,
 * variable fields ignored, the first divergence, functions only on one
 * side, the lines that test the differing bits, alignment by source text
 * across kernels); the three output formats; bad input. */
#include <jansson.h>
#include <stdlib.h>

#include "check.h"
#include "faultline/diff.h"

static diff_doc *doc(const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    diff_doc *d = NULL;
    fl_error e = { 0 };
    if (diff_doc_read(&d, f, "test", &e) < 0)
        fprintf(stderr, "doc: %s\n", e.msg);
    fclose(f);
    return d;
}

/* Edit distance with insertions and deletions only: n + m - 2 LCS. */
static long dp_distance(const int *a, size_t na, const int *b, size_t nb)
{
    long *t = calloc((na + 1) * (nb + 1), sizeof *t);
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++)
            t[i * (nb + 1) + j] = a[i - 1] == b[j - 1] ? t[(i - 1) * (nb + 1) + j - 1] + 1
                                  : t[(i - 1) * (nb + 1) + j] > t[i * (nb + 1) + j - 1] ? t[(i - 1) * (nb + 1) + j]
                                                                                      : t[i * (nb + 1) + j - 1];
    long lcs = t[na * (nb + 1) + nb];
    free(t);
    return (long)(na + nb) - 2 * lcs;
}

/* The ops must turn a into b, and D must be minimal. */
static void check_myers(const int *a, size_t na, const int *b, size_t nb)
{
    char *ops = NULL;
    size_t nops = 0;
    fl_error e = { 0 };
    long d = diff_myers(a, na, b, nb, 0, &ops, &nops, &e);
    CHECK(d == dp_distance(a, na, b, nb));
    size_t ia = 0, ib = 0, edits = 0;
    bool ok = ops != NULL;
    for (size_t i = 0; ok && i < nops; i++) {
        if (ops[i] == '=')
            ok = ia < na && ib < nb && a[ia++] == b[ib++];
        else if (ops[i] == '-')
            ok = ia++ < na, edits++;
        else
            ok = ib++ < nb, edits++;
    }
    CHECK(ok && ia == na && ib == nb && (long)edits == d);
    free(ops);
}

static void test_myers(void)
{
    int a[] = { 1, 2, 3, 4, 5 }, b[] = { 1, 3, 4, 6, 5 };
    check_myers(a, 5, b, 5);
    check_myers(a, 0, b, 5);
    check_myers(a, 5, b, 0);
    check_myers(a, 5, a, 5);
    srand(7);
    for (int round = 0; round < 200; round++) {
        int x[60], y[60];
        size_t nx = (size_t)(rand() % 60), ny = (size_t)(rand() % 60);
        for (size_t i = 0; i < nx; i++)
            x[i] = rand() % 4;
        for (size_t i = 0; i < ny; i++)
            y[i] = rand() % 4;
        check_myers(x, nx, y, ny);
    }
    char *ops = NULL;
    size_t nops;
    fl_error e = { 0 };
    int z[] = { 9, 9, 9, 9 };
    CHECK(diff_myers(a, 5, z, 4, 3, &ops, &nops, &e) == -1 && e.code == FL_EUSAGE && ops == NULL);
}

#define VM(k) "{\"type\":\"vm\",\"kernel\":\"" k "\",\"gdb\":\"unix:/tmp/x\",\"boot_seconds\":1.5}\n"
#define TRIG(s) "{\"type\":\"trigger\",\"scenario\":\"" s "\",\"pid\":40,\"comm\":\"fl-" s "\"}\n"
#define PROBE1(ec, dec) "{\"type\":\"probe\",\"station\":1,\"function\":\"asm_exc_page_fault\",\"hit\":true,\"source\":\"x\"," \
    "\"values\":{\"cr2\":{\"value\":\"0x7f0000000100\"},\"frame.error_code\":{\"value\":\"" ec "\",\"decoded\":\"" dec "\"}}}\n"
#define PROBE5(fl, dec) "{\"type\":\"probe\",\"station\":5,\"function\":\"handle_mm_fault\",\"hit\":true," \
    "\"values\":{\"flags\":{\"value\":\"" fl "\",\"decoded\":\"" dec "\"}}}\n"
#define CHK(ok) "{\"type\":\"check\",\"name\":\"write-bit-agrees\",\"ok\":" ok ",\"claim\":\"c\",\"expected\":\"e\",\"actual\":\"a\"}\n"
#define SUM(secs) "{\"type\":\"summary\",\"faults\":1,\"checks\":1,\"failed\":0,\"seconds\":" secs "}\n"

static const char write_doc[] = VM("6.12") TRIG("write") PROBE1("0x6", "X86_PF_WRITE|X86_PF_USER")
    PROBE5("0x1255", "FAULT_FLAG_WRITE|FAULT_FLAG_USER") CHK("true") SUM("2.0");
static const char read_doc[] = VM("6.12") TRIG("read") PROBE1("0x4", "X86_PF_USER")
    PROBE5("0x1254", "FAULT_FLAG_USER") CHK("true") SUM("2.0");
/* The write run again: only fields that vary differ (times, socket). */
static const char write_again[] = "{\"type\":\"vm\",\"kernel\":\"6.12\",\"gdb\":\"unix:/tmp/y\",\"boot_seconds\":9}\n"
    TRIG("write") PROBE1("0x6", "X86_PF_WRITE|X86_PF_USER") PROBE5("0x1255", "FAULT_FLAG_WRITE|FAULT_FLAG_USER")
    CHK("true") SUM("7.5");

static json_t *as_json(diff_result *r, size_t *nlines)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fl_error e = { 0 };
    CHECK(diff_write(f, DIFF_JSON, r, &e) == 0);
    fclose(f);
    json_t *all = json_array();
    *nlines = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        CHECK(json_is_object(j));
        json_array_append_new(all, j);
        (*nlines)++;
    }
    free(buf);
    return all;
}

static char *as_text(diff_result *r, enum diff_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fl_error e = { 0 };
    CHECK(diff_write(f, fmt, r, &e) == 0);
    fclose(f);
    return buf;
}

static void test_captures(void)
{
    diff_doc *w = doc(write_doc), *r = doc(read_doc), *w2 = doc(write_again);
    CHECK(w && r && w2 && diff_doc_faults(w) == 1);
    diff_result *res = NULL;
    fl_error e = { 0 };
    CHECK(diff_compare(w, r, NULL, &res, &e) == 0 && diff_result_differs(res));
    size_t n;
    json_t *all = as_json(res, &n);
    CHECK(n == 2);
    json_t *st1 = json_array_get(json_object_get(json_array_get(all, 1), "stations"), 0);
    json_t *ch = json_array_get(json_object_get(st1, "values_changed"), 0);
    CHECK_STR(json_string_value(json_object_get(ch, "name")), "frame.error_code");
    CHECK_STR(json_string_value(json_array_get(json_object_get(ch, "bits_only_a"), 0)), "X86_PF_WRITE");
    CHECK(json_array_size(json_object_get(ch, "bits_only_b")) == 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(st1, "values_same"), 0)), "cr2");
    json_t *st5 = json_array_get(json_object_get(json_array_get(all, 1), "stations"), 1);
    ch = json_array_get(json_object_get(st5, "values_changed"), 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(ch, "bits_only_a"), 0)), "FAULT_FLAG_WRITE");
    json_decref(all);
    char *text = as_text(res, DIFF_TEXT), *md = as_text(res, DIFF_MD);
    CHECK(strstr(text, "only A: X86_PF_WRITE") && strstr(text, "only A: FAULT_FLAG_WRITE") &&
          strstr(text, "result: DIFFERENT"));
    CHECK(strstr(md, "| `frame.error_code` | 0x6 |") && strstr(md, "**Result**"));
    free(text);
    free(md);
    diff_result_free(res);
    CHECK(diff_compare(w, w2, NULL, &res, &e) == 0 && !diff_result_differs(res));
    diff_result_free(res);
    diff_doc_free(w);
    diff_doc_free(r);
    diff_doc_free(w2);
}

#define TRACE "{\"type\":\"trace\",\"mode\":\"single\",\"stop\":\"user\",\"steps\":9,\"seconds\":1}\n"
#define LINE(t, fn, line, src) "{\"type\":\"line\",\"t\":" #t ",\"count\":2,\"depth\":1,\"sym\":\"" fn ".constprop.0\"," \
    "\"function\":\"" fn "\",\"file\":\"f.c\",\"line\":" #line ",\"source\":\"" src "\"}\n"

static const char trace_a[] = VM("6.12") TRIG("write") PROBE1("0x6", "X86_PF_WRITE|X86_PF_USER") TRACE
    LINE(0, "entry", 1, "{") LINE(1, "access_error", 5, "if (error_code & X86_PF_WRITE) {")
    LINE(2, "access_error", 6, "check_write();") LINE(3, "wp", 10, "copy();") LINE(4, "entry", 2, "}") SUM("1");
static const char trace_b[] = VM("6.12") TRIG("read") PROBE1("0x4", "X86_PF_USER") TRACE
    LINE(0, "entry", 1, "{") LINE(1, "access_error", 5, "if (error_code & X86_PF_WRITE) {")
    LINE(2, "access_error", 8, "check_read();") LINE(3, "zero", 20, "map_zero();") LINE(4, "entry", 2, "}") SUM("1");
/* trace_a on another kernel: every line number moved by 100. */
static const char trace_c[] = VM("6.1") TRIG("write") PROBE1("0x6", "X86_PF_WRITE|X86_PF_USER") TRACE
    LINE(0, "entry", 101, "{") LINE(1, "access_error", 105, "if (error_code & X86_PF_WRITE) {")
    LINE(2, "access_error", 106, "check_write();") LINE(3, "wp", 110, "copy();") LINE(4, "entry", 102, "}") SUM("1");

static void test_traces(void)
{
    diff_doc *a = doc(trace_a), *b = doc(trace_b), *c = doc(trace_c);
    diff_result *res = NULL;
    fl_error e = { 0 };
    CHECK(diff_compare(a, b, NULL, &res, &e) == 0 && diff_result_differs(res));
    size_t n;
    json_t *all = as_json(res, &n);
    json_t *f = json_array_get(all, 1), *t = json_object_get(f, "trace");
    json_t *fd = json_object_get(t, "first_divergence");
    CHECK(json_integer_value(json_object_get(fd, "a_index")) == 2);
    CHECK(json_integer_value(json_object_get(json_object_get(fd, "a"), "line")) == 6);
    CHECK(json_integer_value(json_object_get(json_object_get(fd, "b"), "line")) == 8);
    CHECK(json_integer_value(json_object_get(json_object_get(fd, "after"), "line")) == 5);
    CHECK_STR(json_string_value(json_array_get(json_object_get(t, "functions_only_a"), 0)), "wp");
    CHECK_STR(json_string_value(json_array_get(json_object_get(t, "functions_only_b"), 0)), "zero");
    CHECK(json_integer_value(json_object_get(t, "lines_changed")) == 4);
    json_t *bl = json_array_get(json_object_get(f, "bit_lines"), 0);
    CHECK(bl && json_integer_value(json_object_get(bl, "line")) == 5 && json_is_true(json_object_get(bl, "differs")));
    json_decref(all);
    char *text = as_text(res, DIFF_TEXT);
    CHECK(strstr(text, "BRANCH DIFFERS access_error f.c:5") != NULL);
    free(text);
    diff_result_free(res);
    /* Another kernel: the same code at other line numbers aligns by text. */
    CHECK(diff_compare(a, c, NULL, &res, &e) == 0);
    all = as_json(res, &n);
    t = json_object_get(json_array_get(all, 1), "trace");
    CHECK(json_integer_value(json_object_get(t, "lines_changed")) == 0);
    CHECK_STR(json_string_value(json_object_get(t, "aligned_by")), "function and source text");
    json_decref(all);
    diff_result_free(res);
    diff_options byline = { .align = DIFF_ALIGN_LINE, .context = 3 };
    CHECK(diff_compare(a, c, &byline, &res, &e) == 0 && diff_result_differs(res));
    diff_result_free(res);
    diff_doc_free(a);
    diff_doc_free(b);
    diff_doc_free(c);
}

static void test_bad_input(void)
{
    diff_doc *d = NULL;
    fl_error e = { 0 };
    FILE *f = fmemopen((void *)"not json\n", 9, "r");
    CHECK(diff_doc_read(&d, f, "bad", &e) == -1 && e.code == FL_EFORMAT && strstr(e.msg, "bad line 1") && !d);
    fclose(f);
    f = fmemopen((void *)"\n\n", 2, "r");
    CHECK(diff_doc_read(&d, f, "empty", &e) == -1 && e.code == FL_EFORMAT);
    fclose(f);
    f = fmemopen((void *)"[1,2]\n", 6, "r");
    CHECK(diff_doc_read(&d, f, "array", &e) == -1 && e.code == FL_EFORMAT);
    fclose(f);
    CHECK(diff_doc_load(&d, "/nonexistent/x.json", &e) == -1 && e.code == FL_ENOTFOUND);
    enum diff_format fmt;
    CHECK(diff_parse_format("md", &fmt) == 0 && fmt == DIFF_MD && diff_parse_format("xml", &fmt) == -1);
    CHECK(diff_variable_reason("summary.seconds") != NULL && diff_variable_reason("probe.values") == NULL);
}

int main(void)
{
    test_myers();
    test_captures();
    test_traces();
    test_bad_input();
    return check_summary("test_diff");
}
