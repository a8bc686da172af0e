/* The explain view's writing side and the flame formats, on a synthetic
 * explained trace (no guest): variables per line, a branch, a call with its
 * argument and return, a loop collapsed, --function narrowing, JSON fields,
 * the checks, folded stacks and the svg. And the kernel layer's scope
 * queries on the fixture build/fixtures/kfix (tests/fixtures/kfix.c):
 * frames and variables at a pc, types, return types, and the compiled
 * locations agreeing with the full DWARF evaluator at every pc. */
#include "check.h"
#include "faultline/explain.h"
#include "faultline/flame.h"
#include "faultline/trace.h"

#include <stdlib.h>
#include <unistd.h>

static const char *FIX = "build/fixtures/kfix";

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
    trace_var i_first = { .step = 7, .function = flags.function,
                          .v = { .name = trace_result_str(r, "i"), .type = trace_result_str(r, "int"), .value = 1,
                                 .was = 0, .available = true, .has_was = true, .was_available = true } };
    rc |= trace_result_add_var(r, &i_first);
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
    CHECK(md && strstr(md, "`i++;` then `while (i < n)`: repeated 4 times (8 instructions); i = 0x4 after the loop, 0x0 before it."));
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

/* Registers with recognisable values; memory is a byte pattern of the address. */
static int fix_reg(void *ctx, int regno, uint64_t *v, fl_error *err)
{
    (void)ctx;
    if (regno < 0 || regno > 16)
        return fl_fail(err, FL_ENOTFOUND, "no register %d", regno);
    *v = 0x7ff0000000ull + (uint64_t)regno * 0x1111;
    return 0;
}

static int fix_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    (void)ctx;
    (void)err;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(addr + i);
    return 0;
}

/* The innermost variable of that name (kf_alpha's `f` and kf_step's `f`). */
static const kern_var *var_named(const kern_scope *sc, const char *name)
{
    for (size_t i = sc->nvars; i-- > 0;)
        if (strcmp(sc->vars[i].name, name) == 0)
            return &sc->vars[i];
    return NULL;
}

/* At every pc of func, every variable in scope: the compiled location and
 * kern_var_value agree (both give the same value, or both none). */
static void locs_agree(kern *k, const char *func, const kern_frame *fr)
{
    uint64_t lo, hi;
    CHECK(kern_func_range(k, func, &lo, &hi, NULL) == 0);
    size_t compared = 0, disagree = 0;
    for (uint64_t pc = lo; pc < hi; pc++) {
        kern_scope sc;
        if (kern_scope_at(k, pc, &sc, NULL) < 0)
            continue;
        for (size_t i = 0; i < sc.nvars; i++) {
            kern_loc *l;
            size_t n;
            uint64_t a = 0, b = 0;
            CHECK(kern_scope_locs(k, &sc.vars[i], &l, &n, NULL) == 0);
            int ra = kern_scope_locs_value(k, &sc.vars[i], l, n, pc, fr, &a, NULL);
            int rb = kern_scope_value(k, &sc.vars[i], pc, fr, &b, NULL);
            compared++;
            if (ra != rb || (ra == 0 && a != b)) {
                disagree++;
                fprintf(stderr, "%s at 0x%llx: %s fast %d/0x%llx slow %d/0x%llx\n", func, (unsigned long long)pc,
                        sc.vars[i].name, ra, (unsigned long long)a, rb, (unsigned long long)b);
            }
            free(l);
        }
        kern_scope_free(&sc);
    }
    CHECK(compared > 0);
    CHECK(disagree == 0);
}

static void test_scope(void)
{
    if (access(FIX, R_OK) != 0) {
        fprintf(stderr, "test_explain: %s missing (make %s): scope checks not run\n", FIX, FIX);
        CHECK(0);
        return;
    }
    kern *k = NULL;
    CHECK(kern_open(&k, FIX, NULL, NULL) == 0);
    if (!k)
        return;
    uint64_t *pcs = NULL;
    size_t n = 0;
    CHECK(kern_inlined_entries(k, "kf_step", &pcs, &n, NULL) == 0 && n >= 1);
    kern_scope sc;
    /* inside an inlined kf_step: its concrete caller, then kf_step */
    CHECK(n && kern_scope_at(k, pcs[0], &sc, NULL) == 0);
    CHECK(sc.nframes >= 2);
    if (sc.nframes >= 2) {
        CHECK(!sc.frames[0].inlined && sc.frames[sc.nframes - 1].inlined);
        CHECK_STR(sc.frames[sc.nframes - 1].function, "kf_step");
        const kern_var *f = var_named(&sc, "f");
        CHECK(f && f->is_param && strcmp(f->function, "kf_step") == 0);
        CHECK(f && f->type.kind == KERN_V_POINTER && strcmp(f->type.name, "struct kf_fault *") == 0);
        const kern_var *x = var_named(&sc, "x");
        CHECK(x && x->type.kind == KERN_V_SIGNED && x->type.size == 8);
        kern_vtype rt;
        CHECK(kern_scope_return_type(k, sc.frames[0].die, &rt, NULL) == 0);
        CHECK(rt.kind == KERN_V_SIGNED && strcmp(rt.name, "long int") == 0);
    }
    kern_scope_free(&sc);
    free(pcs);
    uint64_t use;
    CHECK(kern_sym_addr(k, "kf_use", &use, NULL) == 0);
    CHECK(kern_scope_at(k, use, &sc, NULL) == 0 && sc.nframes == 1);
    kern_vtype vt;
    CHECK(sc.nframes && kern_scope_return_type(k, sc.frames[0].die, &vt, NULL) == 0 && vt.kind == KERN_V_VOID);
    kern_scope_free(&sc);
    kern_frame fr = { fix_reg, fix_mem, NULL };
    locs_agree(k, "kf_work", &fr);
    locs_agree(k, "kf_alpha", &fr);
    locs_agree(k, "kf_beta", &fr);
    locs_agree(k, "kf_frame", &fr);
    kern_close(k);
}

int main(void)
{
    test_scope();
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
