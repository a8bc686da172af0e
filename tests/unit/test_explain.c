/* The explain view's writing side and the flame formats, on a synthetic
 * explained trace (no guest): variables per line, a branch, a call with its
 * argument and return, a loop collapsed, --function narrowing, JSON fields,
 * the checks, folded stacks and the svg. */
#include "check.h"
#include "faultline/explain.h"
#include "faultline/flame.h"
#include "faultline/trace.h"

#include <stdlib.h>

/* outer: L10, L11 (flags |= A | B), L12 (if: taken to L14), L14 calls
 * inner (L20, L21 ret 0x7), back on L14, then L30/L31 four times, iretq. */
static trace_result *synth(void)
{
    static const char *const regs[] = { "rax" };
    trace_result *r = trace_result_new(regs, 1);
    if (!r)
        return NULL;
    trace_pc p[] = {
        { .pc = 0x100, .sym = "outer", .file = "mm/x.c", .line = 10, .function = "outer",
          .source = "\tunsigned int flags = 0;", .text = "xor eax, eax", .len = 2 },
        { .pc = 0x102, .sym = "outer", .file = "mm/x.c", .line = 11, .function = "outer",
          .source = "\tflags |= A | B;", .text = "or eax, 3", .len = 3 },
        { .pc = 0x105, .sym = "outer", .file = "mm/x.c", .line = 12, .function = "outer", .source = "\tif (x)",
          .text = "je 0x110", .kind = TRACE_K_JCC, .len = 2 },
        { .pc = 0x110, .sym = "outer", .file = "mm/x.c", .line = 14, .function = "outer",
          .source = "\ty = inner(5);", .text = "call 0x200", .kind = TRACE_K_CALL, .len = 5 },
        { .pc = 0x200, .sym = "inner", .file = "mm/y.c", .line = 20, .function = "inner", .source = "\treturn 7;",
          .text = "mov eax, 7", .len = 5 },
        { .pc = 0x205, .sym = "inner", .file = "mm/y.c", .line = 21, .function = "inner", .source = "}",
          .text = "ret", .kind = TRACE_K_RET, .len = 1 },
        { .pc = 0x115, .sym = "outer", .file = "mm/x.c", .line = 14, .function = "outer",
          .source = "\ty = inner(5);", .text = "mov ebx, eax", .len = 2 },
        { .pc = 0x117, .sym = "outer", .file = "mm/x.c", .line = 30, .function = "outer", .source = "\ti++;",
          .text = "inc ecx", .len = 2 },
        { .pc = 0x119, .sym = "outer", .file = "mm/x.c", .line = 31, .function = "outer",
          .source = "\twhile (i < n)", .text = "jne 0x117", .kind = TRACE_K_JCC, .len = 2 },
        { .pc = 0x11b, .sym = "outer", .text = "iretq", .kind = TRACE_K_IRET, .len = 2 },
    };
    uint32_t idx[10];
    for (int i = 0; i < 10; i++)
        if (trace_result_add_pc(r, &p[i], &idx[i]) < 0)
            return NULL;
    int rc = 0;
    static const int order[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 7, 8, 7, 8, 7, 8, 9 };
    static const int depth[] = { 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        rc |= trace_result_add_step(r, idx[order[i]], depth[i], NULL, 0, 0);
    r->explained = true;
    r->stop = TRACE_STOP_USER;
    trace_var flags = { .step = 1, .function = trace_result_str(r, "outer"),
                        .v = { .name = trace_result_str(r, "flags"), .type = trace_result_str(r, "unsigned int"),
                               .value = 3, .was = 0, .available = true, .has_was = true, .was_available = true,
                               .decoded = trace_result_str(r, "A|B") } };
    rc |= trace_result_add_var(r, &flags);
    trace_var i_last = { .step = 13, .function = flags.function,
                         .v = { .name = trace_result_str(r, "i"), .type = trace_result_str(r, "int"), .value = 4,
                                .was = 3, .available = true, .has_was = true, .was_available = true } };
    rc |= trace_result_add_var(r, &i_last);
    trace_value a = { .name = trace_result_str(r, "a"), .type = trace_result_str(r, "int"), .value = 5,
                      .available = true, .decoded = trace_result_str(r, "5") };
    size_t ai;
    rc |= trace_result_add_value(r, &a, &ai);
    trace_fcall c = { .step = 3, .ret_step = 5, .function = trace_result_str(r, "inner"), .depth = 0, .arg = ai,
                      .nargs = 1, .has_ret = true,
                      .ret = { .name = trace_result_str(r, "inner"), .type = trace_result_str(r, "int"), .value = 7,
                               .available = true } };
    rc |= trace_result_add_fcall(r, &c, NULL);
    trace_check ck = { .pass = true };
    snprintf(ck.name, sizeof ck.name, "flags-or-bit");
    snprintf(ck.claim, sizeof ck.claim, "flags |= A | B sets A|B");
    snprintf(ck.expected, sizeof ck.expected, "0x3");
    snprintf(ck.actual, sizeof ck.actual, "0x3");
    rc |= trace_result_add_check(r, &ck);
    return rc ? NULL : r;
}

static char *render(const trace_result *r, enum trace_format f, enum trace_view v, const trace_report_options *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    CHECK(trace_report_opt(m, f, v, r, o) == 0);
    fclose(m);
    return buf;
}

static void test_md_text(const trace_result *r)
{
    char *md = render(r, TRACE_FMT_MD, TRACE_VIEW_EXPLAIN, NULL);
    CHECK(md && strstr(md, "### outer (t=1, mm/x.c:11)\n\n`flags |= A | B;`: flags = 0x3 A|B (was 0x0).\n"));
    CHECK(md && strstr(md, "`if (x)`: branch taken, to mm/x.c:14."));
    CHECK(md && strstr(md, "`y = inner(5);`: calls inner(a=0x5 5), 3 instructions."));
    CHECK(md && strstr(md, "`y = inner(5);`: inner returned 0x7."));
    CHECK(md && strstr(md, "`i++;` then `while (i < n)`: repeated 4 times (8 instructions); i = 0x4 (was 0x3) after"));
    CHECK(md && strstr(md, "| flags-or-bit | flags \\|= A \\| B sets A\\|B | 0x3 | 0x3 | PASS |"));
    free(md);
    char *tx = render(r, TRACE_FMT_TEXT, TRACE_VIEW_EXPLAIN, NULL);
    CHECK(tx && strstr(tx, "| flags |= A | B;\n          flags = 0x3 A|B (was 0x0)\n"));
    CHECK(tx && strstr(tx, "[loop: 2 lines x 4, 8 insn @7]"));
    CHECK(tx && strstr(tx, "PASS flags-or-bit: flags |= A | B sets A|B (expected 0x3, actual 0x3)"));
    free(tx);
    trace_report_options only = { .function = "inner" };
    char *in = render(r, TRACE_FMT_TEXT, TRACE_VIEW_EXPLAIN, &only);
    CHECK(in && strstr(in, "inner  mm/y.c:20"));
    CHECK(in && !strstr(in, "outer  mm/x.c:11"));
    CHECK(in && strstr(in, "... 4 instructions not narrated; calls: inner (3)\n"));
    free(in);
}

static void test_json(const trace_result *r)
{
    char *js = render(r, TRACE_FMT_JSON, TRACE_VIEW_EXPLAIN, NULL);
    CHECK(js && strstr(js, "\"vars\":{\"flags\":{\"type\":\"unsigned int\",\"value\":\"0x3\",\"was\":\"0x0\","
                           "\"decoded\":\"A|B\"}}"));
    CHECK(js && strstr(js, "\"branch\":{\"taken\":true,\"to_file\":\"mm/x.c\",\"to_line\":14}"));
    CHECK(js && strstr(js, "\"call\":[{\"function\":\"inner\",\"inlined\":false,\"args\":{\"a\":{\"type\":\"int\","
                           "\"value\":\"0x5\",\"decoded\":\"5\"}},\"instructions\":3}]"));
    CHECK(js && strstr(js, "\"ret\":[{\"type\":\"int\",\"value\":\"0x7\",\"decoded\":null,\"function\":\"inner\"}]"));
    CHECK(js && strstr(js, "{\"type\":\"check\",\"name\":\"flags-or-bit\",\"ok\":true,"));
    CHECK(js && !strstr(js, "\"type\":\"step\""));
    free(js);
}

static void test_flame(const trace_result *r)
{
    char *fo = render(r, TRACE_FMT_FOLDED, TRACE_VIEW_LINE, NULL);
    CHECK(fo && strstr(fo, "outer 14\n"));
    CHECK(fo && strstr(fo, "outer;inner 2\n"));
    free(fo);
    trace_report_options only = { .function = "inner" };
    fo = render(r, TRACE_FMT_FOLDED, TRACE_VIEW_LINE, &only);
    CHECK(fo && strcmp(fo, "inner 2\n") == 0);
    free(fo);
    char *svg = render(r, TRACE_FMT_SVG, TRACE_VIEW_LINE, NULL);
    CHECK(svg && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"));
    CHECK(svg && strstr(svg, "<title>inner (mm/y.c:20)\n2 instructions, 2 in itself, from step 4</title>"));
    CHECK(svg && !strstr(svg, "<script"));
    free(svg);
}

int main(void)
{
    trace_result *r = synth();
    CHECK(r != NULL);
    if (r) {
        test_md_text(r);
        test_json(r);
        test_flame(r);
    }
    enum trace_view v;
    enum trace_format f;
    CHECK(trace_parse_view("explain", &v) == 0 && v == TRACE_VIEW_EXPLAIN);
    CHECK(trace_parse_format("svg", &f) == 0 && f == TRACE_FMT_SVG);
    CHECK(trace_parse_format("folded", &f) == 0 && f == TRACE_FMT_FOLDED);
    trace_result_free(r);
    return check_summary("test_explain");
}
