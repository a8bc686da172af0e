/* trace: classification, call depth, line grouping, call tree and the
 * output formats, on synthetic step records (no guest). */
#include "check.h"
#include "faultline/trace.h"

#include <stdlib.h>

static enum trace_kind kind_of(const uint8_t *code, size_t len, trace_insn *in)
{
    memset(in, 0, sizeof *in);
    if (trace_decode(code, len, 0xffffffff81000000ull, in, NULL) < 0)
        return TRACE_K_COUNT;
    return in->kind;
}

static void test_classify(void)
{
    trace_insn in;
    static const uint8_t call[] = { 0xe8, 0x10, 0, 0, 0 }, ret[] = { 0xc3 }, iretq[] = { 0x48, 0xcf },
                         syscall[] = { 0x0f, 0x05 }, sysret[] = { 0x48, 0x0f, 0x07 }, je[] = { 0x74, 0x05 },
                         jmp[] = { 0xeb, 0xfe }, callrax[] = { 0xff, 0xd0 }, jmpmem[] = { 0xff, 0x24, 0xc5, 0, 0, 0, 0 },
                         repstos[] = { 0xf3, 0x48, 0xab }, cli[] = { 0xfa }, stac[] = { 0x0f, 0x01, 0xcb },
                         movcr3[] = { 0x0f, 0x22, 0xd8 }, subrsp[] = { 0x48, 0x83, 0xec, 0x10 },
                         push[] = { 0x55 }, pop[] = { 0x5d }, movrsp[] = { 0x48, 0x89, 0xec }, leave[] = { 0xc9 },
                         pushf[] = { 0x9c }, int3[] = { 0xcc }, retimm[] = { 0xc2, 0x10, 0x00 },
                         lea[] = { 0x48, 0x8d, 0x64, 0x24, 0x08 }, mov[] = { 0x48, 0x8b, 0x47, 0x08 };
    CHECK(kind_of(call, sizeof call, &in) == TRACE_K_CALL);
    CHECK_EQ_U64(in.target, 0xffffffff81000015ull);
    CHECK(in.rsp_delta == -8 && in.len == 5);
    CHECK(kind_of(ret, sizeof ret, &in) == TRACE_K_RET && in.rsp_delta == 8);
    CHECK(kind_of(retimm, sizeof retimm, &in) == TRACE_K_RET && in.rsp_delta == 24);
    CHECK(kind_of(iretq, sizeof iretq, &in) == TRACE_K_IRET);
    CHECK(kind_of(syscall, sizeof syscall, &in) == TRACE_K_INT);
    CHECK(kind_of(sysret, sizeof sysret, &in) == TRACE_K_SYSRET);
    CHECK(kind_of(int3, sizeof int3, &in) == TRACE_K_INT);
    CHECK(kind_of(je, sizeof je, &in) == TRACE_K_JCC);
    CHECK_EQ_U64(in.target, 0xffffffff81000007ull);
    CHECK(kind_of(jmp, sizeof jmp, &in) == TRACE_K_JMP);
    CHECK_EQ_U64(in.target, 0xffffffff81000000ull);
    CHECK(kind_of(callrax, sizeof callrax, &in) == TRACE_K_CALL_IND);
    CHECK(kind_of(jmpmem, sizeof jmpmem, &in) == TRACE_K_JMP_IND);
    /* rep string ops on kernel memory are plain (fast mode runs them in a
     * block; code touching user memory runs with AC set and is stepped) */
    CHECK(kind_of(repstos, sizeof repstos, &in) == TRACE_K_PLAIN);
    CHECK(strncmp(in.text, "rep stosq", 9) == 0);
    CHECK(kind_of(cli, sizeof cli, &in) == TRACE_K_SPECIAL);
    CHECK(kind_of(stac, sizeof stac, &in) == TRACE_K_SPECIAL);
    CHECK(kind_of(movcr3, sizeof movcr3, &in) == TRACE_K_SPECIAL);
    CHECK(kind_of(pushf, sizeof pushf, &in) == TRACE_K_SPECIAL);
    CHECK(kind_of(subrsp, sizeof subrsp, &in) == TRACE_K_PLAIN && in.rsp_known && in.rsp_delta == -16);
    CHECK(kind_of(push, sizeof push, &in) == TRACE_K_PLAIN && in.rsp_delta == -8);
    CHECK(kind_of(pop, sizeof pop, &in) == TRACE_K_PLAIN && in.rsp_delta == 8);
    CHECK(kind_of(lea, sizeof lea, &in) == TRACE_K_PLAIN && in.rsp_known && in.rsp_delta == 8);
    CHECK(kind_of(mov, sizeof mov, &in) == TRACE_K_PLAIN && in.rsp_delta == 0);
    CHECK(kind_of(movrsp, sizeof movrsp, &in) == TRACE_K_SPECIAL && !in.rsp_known);
    CHECK(kind_of(leave, sizeof leave, &in) == TRACE_K_SPECIAL);
    static const uint8_t junk[] = { 0x0f, 0xff };
    CHECK(trace_decode(junk, 1, 0, &in, NULL) < 0);
    CHECK_STR(trace_kind_name(TRACE_K_JCC), "jcc");
}

static void test_depth(void)
{
    CHECK(trace_depth_after(TRACE_K_CALL, 2) == 3);
    CHECK(trace_depth_after(TRACE_K_CALL_IND, 0) == 1);
    CHECK(trace_depth_after(TRACE_K_INT, 0) == 1);
    CHECK(trace_depth_after(TRACE_K_RET, 3) == 2);
    CHECK(trace_depth_after(TRACE_K_IRET, 0) == -1);
    CHECK(trace_depth_after(TRACE_K_SYSRET, 1) == 0);
    CHECK(trace_depth_after(TRACE_K_JMP, 1) == 1);
    CHECK(trace_depth_after(TRACE_K_PLAIN, 1) == 1);
}

/* A synthetic trace: entry (2 insns, 1 line) calls f (3 insns, 2 lines:
 * one of them inlined g), f returns, entry does iretq. */
static trace_result *synth(void)
{
    static const char *const regs[] = { "rax", "rsp", "rip" };
    trace_result *r = trace_result_new(regs, 3);
    if (!r)
        return NULL;
    trace_pc p[6] = {
        { .pc = 0x1000, .sym = "entry", .file = "arch/x86/entry/entry_64.S", .line = 10, .function = "entry",
          .source = "\tpush %rax", .text = "push rax", .kind = TRACE_K_PLAIN, .len = 1 },
        { .pc = 0x1001, .sym = "entry", .sym_off = 1, .file = "arch/x86/entry/entry_64.S", .line = 10,
          .function = "entry", .text = "call 0x2000", .kind = TRACE_K_CALL, .len = 5 },
        { .pc = 0x2000, .sym = "f", .file = "mm/f.c", .line = 5, .function = "f", .source = "x = \"q\\\";",
          .text = "mov rax, 1", .kind = TRACE_K_PLAIN, .len = 7 },
        { .pc = 0x2007, .sym = "f", .sym_off = 7, .file = "mm/f.c", .line = 5, .function = "g",
          .text = "nop", .kind = TRACE_K_PLAIN, .len = 1 },
        { .pc = 0x2008, .sym = "f", .sym_off = 8, .file = "mm/f.c", .line = 5, .function = "g", .text = "ret",
          .kind = TRACE_K_RET, .len = 1 },
        { .pc = 0x1006, .sym = "entry", .sym_off = 6, .text = "iretq", .kind = TRACE_K_IRET, .len = 2 },
    };
    uint32_t idx[6];
    for (int i = 0; i < 6; i++)
        if (trace_result_add_pc(r, &p[i], &idx[i]) < 0)
            return NULL;
    trace_change c1 = { .reg = 1, .before = 0x100, .after = 0xf8 };
    trace_change c2 = { .reg = 1, .before = 0xf8, .after = 0xf0 };
    trace_change c3 = { .reg = 0, .before = 0, .after = 1 };
    int d = 0;
    int rc = trace_result_add_step(r, idx[0], d, &c1, 1, 0);
    rc |= trace_result_add_step(r, idx[1], d, &c2, 1, 0);
    d = trace_depth_after(TRACE_K_CALL, d);
    rc |= trace_result_add_step(r, idx[2], d, &c3, 1, 0);
    rc |= trace_result_add_step(r, idx[3], d, NULL, 0, TRACE_F_INFER);
    rc |= trace_result_add_step(r, idx[4], d, &c1, 1, TRACE_F_NET);
    d = trace_depth_after(TRACE_K_RET, d);
    rc |= trace_result_add_step(r, idx[5], d, NULL, 0, 0);
    r->stop = TRACE_STOP_USER;
    r->final_cs = 0x33;
    return rc ? NULL : r;
}

static void test_lines_tree(void)
{
    trace_result *r = synth();
    CHECK(r != NULL);
    if (!r)
        return;
    /* strings are interned: one copy per distinct text */
    CHECK(r->pcs[0].file == r->pcs[1].file);
    trace_line *l;
    size_t nl;
    CHECK(trace_lines(r, &l, &nl) == 0);
    CHECK(nl == 4);  /* entry:10, f.c:5 (f), f.c:5 (g, inlined), entry+6 */
    if (nl == 4) {
        CHECK(l[0].t == 0 && l[0].first == 0 && l[0].count == 2);
        CHECK(l[1].first == 2 && l[1].count == 1 && l[1].depth == 1);
        CHECK(l[2].first == 3 && l[2].count == 2);
        CHECK(l[3].first == 5 && l[3].count == 1 && l[3].depth == 0);
    }
    free(l);
    trace_call *c;
    size_t nc;
    CHECK(trace_calltree(r, &c, &nc) == 0);
    CHECK(nc == 2);
    if (nc == 2) {
        CHECK_STR(c[0].function, "entry");
        CHECK(c[0].parent == -1 && c[0].total == 6 && c[0].self == 3);
        CHECK_STR(c[1].function, "f");
        CHECK(c[1].parent == 0 && c[1].first == 2 && c[1].total == 3 && c[1].self == 3 && c[1].depth == 1);
    }
    free(c);
    trace_result_free(r);
}

static char *render(const trace_result *r, enum trace_format f, enum trace_view v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    CHECK(trace_report(m, f, v, r) == 0);
    fclose(m);
    return buf;
}

static void test_formats(void)
{
    trace_result *r = synth();
    if (!r)
        return;
    char *md = render(r, TRACE_FMT_MD, TRACE_VIEW_LINE);
    CHECK(md && strstr(md, "### entry (t=0, arch/x86/entry/entry_64.S:10)"));
    CHECK(md && strstr(md, "### g (t=2, mm/f.c:5)"));
    CHECK(md && strstr(md, "rsp = 0xf0 (was 0x100)"));  /* net over the line */
    free(md);
    char *js = render(r, TRACE_FMT_JSON, TRACE_VIEW_LINE);
    const char *head = "{\"type\":\"trace\",\"mode\":\"single\",\"stop\":\"user\",\"steps\":6,\"lines\":4,";
    CHECK(js && strncmp(js, head, strlen(head)) == 0);
    CHECK(js && strstr(js, "{\"type\":\"step\",\"i\":2,\"pc\":\"0x2000\",\"sym\":\"f\""));
    CHECK(js && strstr(js, "\"source\":\"x = \\\"q\\\\\\\";\""));  /* escaped quote and backslash */
    CHECK(js && strstr(js, "\"changed\":{\"rax\":\"0x1\"}"));
    CHECK(js && strstr(js, "{\"type\":\"line\",\"t\":3"));
    /* JSON Lines: every line is one object */
    size_t lines = 0;
    for (const char *p = js; p && *p; p++)
        lines += *p == '\n';
    CHECK(lines == 1 + 6 + 4);
    free(js);
    char *ch = render(r, TRACE_FMT_CHROME, TRACE_VIEW_TREE);
    CHECK(ch && strstr(ch, "\"traceEvents\":["));
    CHECK(ch && strstr(ch, "{\"name\":\"f\",\"cat\":\"call\",\"ph\":\"X\",\"ts\":2,\"dur\":3,"));
    CHECK(ch && strstr(ch, "{\"name\":\"entry\",\"cat\":\"call\",\"ph\":\"X\",\"ts\":0,\"dur\":6,"));
    free(ch);
    char *tx = render(r, TRACE_FMT_TEXT, TRACE_VIEW_INSN);
    CHECK(tx && strstr(tx, "call 0x2000"));
    free(tx);
    char *tr = render(r, TRACE_FMT_TEXT, TRACE_VIEW_TREE);
    CHECK(tr && strstr(tr, "  f  total 3  self 3"));
    free(tr);
    trace_result_free(r);
}

static void test_over_tree(void)
{
    static const char *const regs[] = { "rax" };
    trace_result *r = trace_result_new(regs, 1);
    trace_pc call = { .pc = 0x10, .sym = "a", .text = "call 0x40", .kind = TRACE_K_CALL, .len = 5 };
    trace_pc nop = { .pc = 0x15, .sym = "a", .sym_off = 5, .text = "nop", .kind = TRACE_K_PLAIN, .len = 1 };
    uint32_t i0, i1;
    CHECK(r && trace_result_add_pc(r, &call, &i0) == 0 && trace_result_add_pc(r, &nop, &i1) == 0);
    CHECK(trace_result_add_step(r, i0, 0, NULL, 0, TRACE_F_OVER) == 0);
    CHECK(trace_result_add_over(r, "handle_mm_fault") == 0);
    CHECK(trace_result_add_step(r, i1, 0, NULL, 0, 0) == 0);
    trace_call *c;
    size_t nc;
    CHECK(trace_calltree(r, &c, &nc) == 0);
    CHECK(nc == 2);
    if (nc == 2) {
        CHECK_STR(c[1].function, "handle_mm_fault");
        CHECK(c[1].over && c[1].parent == 0);
        CHECK(c[0].total == 2 && c[0].self == 2);
    }
    free(c);
    trace_result_free(r);
}

static void test_parse(void)
{
    enum trace_view v;
    enum trace_format f;
    CHECK(trace_parse_view("tree", &v) == 0 && v == TRACE_VIEW_TREE);
    CHECK(trace_parse_view("lines", &v) < 0);
    CHECK(trace_parse_format("chrome", &f) == 0 && f == TRACE_FMT_CHROME);
    CHECK(trace_parse_format("xml", &f) < 0);
    CHECK_STR(trace_stop_name(TRACE_STOP_MAX_STEPS), "max-steps");
}

int main(void)
{
    test_classify();
    test_depth();
    test_lines_tree();
    test_formats();
    test_over_tree();
    test_parse();
    return check_summary("test_trace");
}
