/* target layer against a scripted fake of QEMU 7.2's gdbstub: the target
 * description (xi:include, chunked, escaped), registers by name from one `g`
 * per stop, memory cache, breakpoints and the resume-on-breakpoint quirk,
 * KVM's refused Z1, stop replies, timeouts and hang-ups. */
#include "check.h"
#include "fakestub.h"
#include "faultline/target.h"
#include "faultline/util.h"

#include <stdlib.h>

/* QEMU 7.2's target.xml verbatim, and a trimmed i386-64bit.xml (core regs as
 * QEMU numbers them, then one x87, one xmm and mxcsr to check wide ones). */
static const char TARGET_XML[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target>"
    "<architecture>i386:x86-64</architecture><xi:include href=\"i386-64bit.xml\"/></target>";
static const char CORE_XML[] =
    "<?xml version=\"1.0\"?>\n<!-- x86_64 64bit: trimmed; a '*' and a '#' to exercise escapes -->\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "  <flags id=\"x64_eflags\" size=\"4\"><field name=\"IF\" start=\"9\" end=\"9\"/></flags>\n"
    "  <reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n"
    "  <reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "  <reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n  <reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "  <reg name=\"eflags\" bitsize=\"32\" type=\"x64_eflags\"/>\n"
    "  <reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n  <reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "  <reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n  <reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "  <reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n  <reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "  <!--reg name=\"cs_base\" bitsize=\"64\" type=\"int64\"/-->\n"
    "  <reg name=\"fs_base\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"gs_base\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"k_gs_base\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"cr0\" bitsize=\"64\" type=\"x64_cr0\"/>\n  <reg name=\"cr2\" bitsize=\"64\" type=\"int64\"/>\n"
    "  <reg name=\"cr3\" bitsize=\"64\" type=\"x64_cr3\"/>\n  <reg name=\"cr4\" bitsize=\"64\" type=\"x64_cr4\"/>\n"
    "  <reg name=\"cr8\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"efer\" bitsize=\"64\" type=\"x64_efer\"/>\n"
    "  <reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "  <reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/>\n"
    "  <reg name=\"mxcsr\" bitsize=\"32\" type=\"x64_mxcsr\" group=\"vector\"/>\n"
    "</feature>\n";
#define G_SIZE 266

typedef struct doc {
    const char *annex, *xml;
} doc;
typedef struct docs {
    const doc *d;
    int fetches;
} docs;

static int mem_fetch(void *ctx, const char *annex, char **xml, size_t *len, fl_error *err)
{
    docs *ds = ctx;
    ds->fetches++;
    for (const doc *d = ds->d; d->annex; d++)
        if (strcmp(d->annex, annex) == 0) {
            *xml = strdup(d->xml);
            *len = strlen(d->xml);
            return 0;
        }
    return fl_fail(err, FL_ENOTFOUND, "no annex %s", annex);
}

static int parse_docs(const doc *d, tgt_regmap *m, fl_error *e)
{
    docs ds = {d, 0};
    return tgt_tdesc_parse(mem_fetch, &ds, m, e);
}

static void test_tdesc(void)
{
    tgt_regmap m;
    fl_error e = {0};
    const doc qemu[] = {{"target.xml", TARGET_XML}, {"i386-64bit.xml", CORE_XML}, {NULL, NULL}};
    CHECK(parse_docs(qemu, &m, &e) == 0);
    CHECK_STR(m.arch, "i386:x86-64");
    CHECK(m.count == 36);
    CHECK(m.g_size == G_SIZE);
    const tgt_reg *r;
    CHECK((r = tgt_regmap_find(&m, "rip")) && r->regnum == 16 && r->offset == 128 && r->size == 8);
    CHECK((r = tgt_regmap_find(&m, "eflags")) && r->regnum == 17 && r->offset == 136 && r->size == 4);
    CHECK((r = tgt_regmap_find(&m, "cs")) && r->regnum == 18 && r->offset == 140 && r->size == 4);
    CHECK((r = tgt_regmap_find(&m, "fs_base")) && r->regnum == 24 && r->offset == 164);
    CHECK((r = tgt_regmap_find(&m, "k_gs_base")) && r->regnum == 26 && r->offset == 180);
    CHECK((r = tgt_regmap_find(&m, "cr2")) && r->regnum == 28 && r->offset == 196);
    CHECK((r = tgt_regmap_find(&m, "efer")) && r->regnum == 32 && r->offset == 228);
    CHECK((r = tgt_regmap_find(&m, "st0")) && r->size == 10 && r->offset == 236);
    CHECK((r = tgt_regmap_find(&m, "mxcsr")) && r->offset == 262 && r->size == 4);
    CHECK(tgt_regmap_find(&m, "cs_base") == NULL);  /* commented out */
    const tgt_field *fl;
    size_t nf;
    CHECK(tgt_regmap_fields(&m, "eflags", &fl, &nf, &e) == 0 && nf == 1 && strcmp(fl[0].name, "IF") == 0 &&
          fl[0].start == 9 && fl[0].end == 9);
    CHECK(tgt_regmap_fields(&m, "rax", &fl, &nf, &e) == 0 && nf == 0);
    CHECK(tgt_regmap_fields(&m, "nope", &fl, &nf, &e) == -1 && e.code == FL_ENOTFOUND);
    tgt_regmap_free(&m);

    /* regnum attributes: `g` is in number order, not document order. */
    const doc order[] = {{"target.xml",
                          "<target><feature name='x'><reg name='hi' bitsize='32' regnum='2'/>"
                          "<reg name='hi2' bitsize='64'/><reg name='lo' bitsize='16' regnum='0'/></feature></target>"},
                         {NULL, NULL}};
    CHECK(parse_docs(order, &m, &e) == 0);
    CHECK((r = tgt_regmap_find(&m, "lo")) && r->offset == 0 && r->regnum == 0);
    CHECK((r = tgt_regmap_find(&m, "hi")) && r->offset == 2 && r->regnum == 2);
    CHECK((r = tgt_regmap_find(&m, "hi2")) && r->offset == 6 && r->regnum == 3);
    CHECK(m.g_size == 14);
    tgt_regmap_free(&m);

    /* Refusals, each FL_EPROTO (or the fetch's own error). */
    const doc bad_xml[] = {{"target.xml", "<target><reg name='a' bitsize='8'></target>"}, {NULL, NULL}};
    fl_error_clear(&e);
    CHECK(parse_docs(bad_xml, &m, &e) == -1 && e.code == FL_EPROTO && strstr(e.msg, "well-formed"));
    const doc cycle[] = {{"target.xml", "<target><xi:include href='target.xml'/></target>"}, {NULL, NULL}};
    fl_error_clear(&e);
    CHECK(parse_docs(cycle, &m, &e) == -1 && e.code == FL_EPROTO);
    const doc bits[] = {{"target.xml", "<target><reg name='a' bitsize='7'/></target>"}, {NULL, NULL}};
    CHECK(parse_docs(bits, &m, &e) == -1 && e.code == FL_EPROTO && strstr(e.msg, "bitsize"));
    const doc dup[] = {{"target.xml", "<target><reg name='a' bitsize='8' regnum='1'/><reg name='b' bitsize='8' regnum='1'/></target>"},
                       {NULL, NULL}};
    CHECK(parse_docs(dup, &m, &e) == -1 && e.code == FL_EPROTO && strstr(e.msg, "same number"));
    const doc missing[] = {{"target.xml", "<target><xi:include href='nope.xml'/></target>"}, {NULL, NULL}};
    fl_error_clear(&e);
    CHECK(parse_docs(missing, &m, &e) == -1 && e.code == FL_ENOTFOUND);
    const doc empty[] = {{"target.xml", "<target/>"}, {NULL, NULL}};
    CHECK(parse_docs(empty, &m, &e) == -1 && e.code == FL_EPROTO);
}

static void test_stop(void)
{
    tgt_stop s;
    fl_error e = {0};
#define STOP(str) tgt_parse_stop(str, strlen(str), &s, &e)
    CHECK(STOP("S05") == 0 && s.kind == TGT_STOP_SIGNAL && s.code == 5 && s.thread == -1);
    CHECK(STOP("T05thread:p01.01;") == 0 && s.code == 5 && s.process == 1 && s.thread == 1 && !s.has_watch);
    CHECK(STOP("T02thread:01;") == 0 && s.code == 2 && s.process == -1 && s.thread == 1);
    CHECK(STOP("T05thread:p2.-1;") == 0 && s.process == 2 && s.thread == -1);
    CHECK(STOP("T05thread:p01.01;watch:ffff888000001000;") == 0 && s.has_watch &&
          s.watch_addr == 0xffff888000001000ULL && s.thread == 1);
    CHECK(STOP("T05awatch:1000;thread:p01.02") == 0 && s.has_watch && s.watch_addr == 0x1000 && s.thread == 2);
    CHECK(STOP("T0506:0000000000000000;thread:p01.01;core:0;") == 0 && s.thread == 1);
    CHECK(STOP("W00") == 0 && s.kind == TGT_STOP_EXITED && s.code == 0);
    CHECK(STOP("W01;process:2a") == 0 && s.kind == TGT_STOP_EXITED && s.code == 1 && s.process == 42);
    CHECK(STOP("X09") == 0 && s.kind == TGT_STOP_KILLED && s.code == 9);
    const char *bad[] = {"", "T5", "S0", "S05x", "Z05", "T05thread:pzz;", "T05nocolon;", "T05watch:;",
                         "W", "Wzz", "W00;bogus:1", "X100", "T05thread:p1.123456789abcdef0;", "E22"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fl_error_clear(&e);
        int rc = STOP(bad[i]);
        CHECK(rc == -1 && e.code == FL_EPROTO);
        if (rc == 0)
            fprintf(stderr, "accepted bad stop reply \"%s\"\n", bad[i]);
    }
#undef STOP
}

/* A `g` reply with chosen values at the trimmed map's offsets. */
static void put(char *g, size_t off, size_t size, uint64_t v)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        g[2 * (off + i)] = hx[b >> 4];
        g[2 * (off + i) + 1] = hx[b & 0xf];
    }
}

static void make_g(char *g, uint64_t rip)
{
    memset(g, '0', 2 * G_SIZE);
    g[2 * G_SIZE] = '\0';
    put(g, 0, 8, 0x1111);                    /* rax */
    put(g, 128, 8, rip);                     /* rip */
    put(g, 136, 4, 0x246);                   /* eflags */
    put(g, 140, 4, 0x10);                    /* cs */
    put(g, 144, 4, 0x18);                    /* ss */
    put(g, 172, 8, 0xffff88800f800000ULL);   /* gs_base */
    put(g, 180, 8, 0x00007f0000001000ULL);   /* k_gs_base */
    put(g, 188, 8, 0x80050033);              /* cr0 */
    put(g, 196, 8, 0x00007ffff7ff1000ULL);   /* cr2 */
}

#define CONNECT_STEPS(psize)                                                                         \
    {FS_RECV, "qSupported:*", 0, NULL},                                                             \
    {FS_SEND, "PacketSize=" psize ";qXfer:features:read+;vContSupported+;multiprocess+", 0, NULL}, \
    {FS_XFER, "target.xml", 0, TARGET_XML},                                                         \
    {FS_XFER, "i386-64bit.xml", 0, CORE_XML},                                                       \
    {FS_RECV, "vCont?", 0, NULL},                                                                   \
    {FS_SEND, "vCont;c;C;s;S", 0, NULL},                                                            \
    {FS_RECV, "?", 0, NULL},                                                                        \
    {FS_SEND, "T05thread:p01.01;", 0, NULL}

static size_t count_lines(const char *log, const char *line)
{
    size_t n = 0, l = strlen(line);
    for (const char *p = log; (p = strstr(p, line)); p += l)
        if ((p == log || p[-1] == '\n') && p[l] == '\n')
            n++;
    return n;
}

static void test_session(void)
{
    static char g1[2 * G_SIZE + 1], g2[2 * G_SIZE + 1], g3[2 * G_SIZE + 1];
    make_g(g1, 0xffffffff81000000ULL);
    make_g(g2, 0xffffffff81000004ULL);
    make_g(g3, 0xffffffff81000000ULL);
    const fs_step script[] = {
        /* Small PacketSize so i386-64bit.xml comes in several 'm' chunks. */
        CONNECT_STEPS("400"),
        {FS_RECV, "g", 0, NULL}, {FS_SEND, g1, 0, NULL},
        {FS_RECV, "mffff888000001000,100", 0, NULL},
        {FS_SEND, "0102030405060708" "0*~0*~0*~0*~0*~000000", 0, NULL},  /* 8 bytes + 248 RLE zeros */
        {FS_RECV, "m1000,100", 0, NULL}, {FS_SEND, "E14", 0, NULL},
        {FS_RECV, "m1000,8", 0, NULL}, {FS_SEND, "E14", 0, NULL},
        {FS_RECV, "P1c=0010000000000000", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "Z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "Z1,ffffffff81000100,1", 0, NULL}, {FS_SEND, "E22", 0, NULL},
        {FS_RECV, "Z3,ffff888000002000,8", 0, NULL}, {FS_SEND, "", 0, NULL},
        /* Step while sitting on the inserted Z1: remove, step, re-insert. */
        {FS_RECV, "z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "vCont;s:p1.1", 0, NULL}, {FS_SEND, "T05thread:p01.01;", 0, NULL},
        {FS_RECV, "Z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "g", 0, NULL}, {FS_SEND, g2, 0, NULL},
        /* Plain step (PC not on a breakpoint): one vCont;s, one g. */
        {FS_RECV, "vCont;s:p1.1", 0, NULL}, {FS_SEND, "T05thread:p01.01;", 0, NULL},
        {FS_RECV, "g", 0, NULL}, {FS_SEND, g3, 0, NULL},
        /* Continue from the breakpoint: step-off first, then vCont;c. */
        {FS_RECV, "z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "vCont;s:p1.1", 0, NULL}, {FS_SEND, "T05thread:p01.01;", 0, NULL},
        {FS_RECV, "Z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        {FS_RECV, "vCont;c", 0, NULL},
        {FS_SLEEP, NULL, 50, NULL},
        {FS_SEND, "T05thread:p01.01;watch:ffff888000002000;", 0, NULL},
        {FS_RECV, "z1,ffffffff81000000,1", 0, NULL}, {FS_SEND, "OK", 0, NULL},
        /* Continue that does not stop in time: interrupt, then T02. */
        {FS_RECV, "vCont;c", 0, NULL},
        {FS_INT, NULL, 0, NULL}, {FS_SEND, "T02thread:p01.01;", 0, NULL},
        /* Two-phase resume; nothing may be sent while it runs. */
        {FS_RECV, "vCont;c", 0, NULL},
        {FS_SLEEP, NULL, 150, NULL},
        {FS_SEND, "T05thread:p01.01;", 0, NULL},
        {FS_RECV, "qqemu.sstepbits", 0, NULL}, {FS_SEND, "ENABLE=1,NOIRQ=2,NOTIMER=4", 0, NULL},
        /* The guest exits. */
        {FS_RECV, "vCont;c", 0, NULL}, {FS_SEND, "W00", 0, NULL},
        {FS_END, NULL, 0, NULL},
    };
    fakestub f;
    int fd = fakestub_start(&f, script);
    tgt *t = NULL;
    fl_error e = {0};
    CHECK(tgt_connect_fd(&t, fd, 2000, &e) == 0);
    if (!t) {
        fprintf(stderr, "connect: %s\n", e.msg);
        fakestub_join(&f);
        return;
    }
    CHECK(tgt_packet_size(t) == 0x400);
    CHECK(tgt_regs(t)->g_size == G_SIZE);
    uint64_t v;
    /* Registers by name, one `g` for all of them. */
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0 && v == 0xffffffff81000000ULL);
    CHECK(tgt_reg_read(t, "eflags", &v, &e) == 0 && v == 0x246);
    CHECK(tgt_reg_read(t, "cs", &v, &e) == 0 && v == 0x10);
    CHECK(tgt_reg_read(t, "cr2", &v, &e) == 0 && v == 0x00007ffff7ff1000ULL);
    CHECK(tgt_reg_read(t, "gs_base", &v, &e) == 0 && v == 0xffff88800f800000ULL);
    CHECK(tgt_reg_read(t, "k_gs_base", &v, &e) == 0 && v == 0x00007f0000001000ULL);
    CHECK(tgt_reg_read(t, "cr0", &v, &e) == 0 && (v & 1));
    fl_error_clear(&e);
    CHECK(tgt_reg_read(t, "xmm0", &v, &e) == -1 && e.code == FL_EUSAGE);
    CHECK(tgt_reg_read(t, "zmm99", &v, &e) == -1 && e.code == FL_ENOTFOUND);
    const uint8_t *raw;
    size_t rawlen;
    CHECK(tgt_regs_raw(t, &raw, &rawlen, &e) == 0 && rawlen == G_SIZE && raw[0] == 0x11);

    /* Memory: one `m` per cache line per stop. */
    uint64_t q;
    CHECK(tgt_read_u64(t, 0xffff888000001000ULL, &q, &e) == 0 && q == 0x0807060504030201ULL);
    uint8_t b4[4];
    CHECK(tgt_mem_read(t, 0xffff888000001002ULL, b4, 4, &e) == 0 && b4[0] == 3 && b4[3] == 6);
    CHECK(tgt_mem_read(t, 0xffff888000001010ULL, b4, 4, &e) == 0 && b4[0] == 0);
    fl_error_clear(&e);
    CHECK(tgt_read_u64(t, 0x1000, &q, &e) == -1 && e.code == FL_EIO && strstr(e.msg, "0x1000"));

    /* P updates the cached `g` (cr2 is regnum 0x1c). */
    CHECK(tgt_reg_write(t, "cr2", 0x1000, &e) == 0);
    CHECK(tgt_reg_read(t, "cr2", &v, &e) == 0 && v == 0x1000);

    /* Breakpoints. */
    CHECK(tgt_bp_insert(t, TGT_BP_HW, 0xffffffff81000000ULL, 1, &e) == 0);
    fl_error_clear(&e);
    CHECK(tgt_bp_insert(t, TGT_BP_HW, 0xffffffff81000100ULL, 1, &e) == -1 && e.code == FL_ENOSLOT);
    fl_error_clear(&e);
    CHECK(tgt_bp_insert(t, TGT_WP_READ, 0xffff888000002000ULL, 8, &e) == -1 && e.code == FL_EPROTO &&
          strstr(e.msg, "Z3"));

    tgt_stop s;
    CHECK(tgt_step(t, &s, 1000, &e) == 0 && s.kind == TGT_STOP_SIGNAL && s.code == 5);
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0 && v == 0xffffffff81000004ULL);
    CHECK(tgt_step(t, &s, 1000, &e) == 0);
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0 && v == 0xffffffff81000000ULL);
    CHECK(tgt_continue(t, &s, 1000, &e) == 0 && s.has_watch && s.watch_addr == 0xffff888000002000ULL);
    CHECK(tgt_bp_remove(t, TGT_BP_HW, 0xffffffff81000000ULL, 1, &e) == 0);

    fl_error_clear(&e);
    CHECK(tgt_continue(t, &s, 100, &e) == -1 && e.code == FL_ETIMEOUT);
    CHECK(!tgt_running(t));

    CHECK(tgt_resume(t, &e) == 0 && tgt_running(t));
    fl_error_clear(&e);
    CHECK(tgt_reg_read(t, "rip", &v, &e) == -1 && e.code == FL_EUSAGE);  /* nothing sent */
    CHECK(tgt_step(t, &s, 100, &e) == -1 && e.code == FL_EUSAGE);
    CHECK(tgt_poll_stop(t, &s, 10, &e) == 0);
    int got = 0;
    for (int i = 0; i < 100 && got == 0; i++)
        got = tgt_poll_stop(t, &s, 20, &e);
    CHECK(got == 1 && s.code == 5 && !tgt_running(t));

    char reply[64];
    CHECK(tgt_query(t, "qqemu.sstepbits", reply, sizeof reply, &e) == 0);
    CHECK_STR(reply, "ENABLE=1,NOIRQ=2,NOTIMER=4");
    fl_error_clear(&e);
    CHECK(tgt_query(t, "?", reply, sizeof reply, &e) == -1 && e.code == FL_EUSAGE);

    CHECK(tgt_continue(t, &s, 1000, &e) == 0 && s.kind == TGT_STOP_EXITED && s.code == 0);
    tgt_close(t);
    CHECK(fakestub_join(&f) == 0);

    /* On the wire: `?` exactly once; exactly three `g` (one per stop, the
     * first stop read once despite many register reads); the interrupt. */
    CHECK(count_lines(f.log, "?") == 1);
    /* multiprocess+: the detach names the process (QEMU ignores a bare D) */
    CHECK(count_lines(f.log, "D;1") == 1);
    CHECK(count_lines(f.log, "D") == 0);
    CHECK(count_lines(f.log, "g") == 3);
    CHECK(strstr(f.log, "z1,ffffffff81000000,1\nvCont;s:p1.1\nZ1,ffffffff81000000,1\n") != NULL);
    CHECK(strstr(f.log, "vCont;c\n<INT>\n") != NULL);
    CHECK(f.acks > 20);  /* every reply acknowledged */
}

/* A stub that goes silent during a step, and one that hangs up. */
static void test_silent_and_closed(void)
{
    const fs_step script[] = {
        CONNECT_STEPS("1000"),
        {FS_RECV, "vCont;s:p1.1", 0, NULL},
        {FS_INT, NULL, 0, NULL},  /* the client gives up and interrupts */
        {FS_SEND, "T02thread:p01.01;", 0, NULL},
        {FS_RECV, "g", 0, NULL},
        {FS_CLOSE, NULL, 0, NULL},
        {FS_END, NULL, 0, NULL},
    };
    fakestub f;
    int fd = fakestub_start(&f, script);
    tgt *t = NULL;
    fl_error e = {0};
    CHECK(tgt_connect_fd(&t, fd, 2000, &e) == 0);
    if (t) {
        CHECK(tgt_packet_size(t) == 4096);
        tgt_stop s;
        CHECK(tgt_step(t, &s, 100, &e) == -1 && e.code == FL_ETIMEOUT);
        CHECK(!tgt_running(t));
        fl_error_clear(&e);
        uint64_t v;
        CHECK(tgt_reg_read(t, "rip", &v, &e) == -1 && e.code == FL_ECLOSED);
        tgt_close(t);
    }
    CHECK(fakestub_join(&f) == 0);

    /* No target description offered: refused at connect with a clear error. */
    const fs_step noxml[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000", 0, NULL}, {FS_END, NULL, 0, NULL},
    };
    fd = fakestub_start(&f, noxml);
    fl_error_clear(&e);
    CHECK(tgt_connect_fd(&t, fd, 1000, &e) == -1 && e.code == FL_EPROTO && strstr(e.msg, "qXfer"));
    CHECK(fakestub_join(&f) == 0);

    /* Malformed reply during connect: FL_EPROTO with the bytes. */
    const fs_step garbage[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "garbage!", 0, NULL}, {FS_END, NULL, 0, NULL},
    };
    fd = fakestub_start(&f, garbage);
    fl_error_clear(&e);
    CHECK(tgt_connect_fd(&t, fd, 1000, &e) == -1 && e.code == FL_EPROTO && strstr(e.msg, "garbage!"));
    CHECK(fakestub_join(&f) == 0);

    /* Attaching to a running guest: QEMU stops it and says so with a stop
     * reply before it reads our first packet. Connect must take that as a
     * notice, not as qSupported's answer. */
    static char gr[2 * G_SIZE + 1];
    make_g(gr, 0xffffffff81000040ULL);
    const fs_step running[] = {
        {FS_SEND, "T02thread:01;", 0, NULL},
        CONNECT_STEPS("1000"),
        {FS_RECV, "g", 0, NULL}, {FS_SEND, gr, 0, NULL},
        {FS_END, NULL, 0, NULL},
    };
    fd = fakestub_start(&f, running);
    fl_error_clear(&e);
    int rc = tgt_connect_fd(&t, fd, 1000, &e);
    CHECK(rc == 0);
    if (rc == 0) {
        uint64_t v = 0;
        CHECK(tgt_reg_read(t, "rip", &v, &e) == 0);
        CHECK_EQ_U64(v, 0xffffffff81000040ULL);
        tgt_close(t);
    } else {
        fprintf(stderr, "connect to a running guest: %s\n", e.msg);
    }
    CHECK(fakestub_join(&f) == 0);
}

/* Issue 13: the KVM personality of the fake (tests/fakestub.h, fs_kvm:
 * four debug-register slots, a fifth Z1 refused with E22, Z0 accepted but
 * never trapping, `p` stale until `g`). A run-like planner arms stations in
 * order while slots last and arms the next one as each fires and is
 * removed; all six stations are hit, in path order. Guards target.c's
 * remembered slot limit (tgt_bp_slots) and the one-`g`-per-stop rule. */
static void test_kvm(void)
{
    static const uint64_t st[6] = {0xffffffff81001000ULL, 0xffffffff81002000ULL, 0xffffffff81003000ULL,
                                   0xffffffff81004000ULL, 0xffffffff81005000ULL, 0xffffffff81006000ULL};
    static char g[2 * G_SIZE + 1];
    make_g(g, 0xffffffff81000000ULL);
    const fs_step script[] = {
        CONNECT_STEPS("1000"),
        {FS_KVM, "ffffffff81000500,ffffffff81001000,ffffffff81002000,ffffffff81003000,ffffffff81000500,"
                 "ffffffff81004000,ffffffff81005000,ffffffff81006000", 128, g},
        {FS_END, NULL, 0, NULL},
    };
    fakestub f;
    int fd = fakestub_start(&f, script);
    tgt *t = NULL;
    fl_error e = {0};
    CHECK(tgt_connect_fd(&t, fd, 2000, &e) == 0);
    if (!t) {
        fprintf(stderr, "connect: %s\n", e.msg);
        fakestub_join(&f);
        return;
    }
    CHECK(tgt_bp_slots(t) == 0);  /* no limit known yet */
    /* Z0 is accepted, and never traps (the path passes it twice). */
    CHECK(tgt_bp_insert(t, TGT_BP_SW, 0xffffffff81000500ULL, 1, &e) == 0);
    size_t next = 0;
    while (next < 6 && tgt_bp_insert(t, TGT_BP_HW, st[next], 1, &e) == 0)
        next++;
    CHECK(next == 4 && e.code == FL_ENOSLOT && strstr(e.msg, "E22") != NULL);
    CHECK(tgt_bp_slots(t) == 4 && tgt_bp_hw_in_use(t) == 4);
    size_t hits = 0;
    for (int round = 0; round < 8 && hits < 6; round++) {
        tgt_stop s;
        uint64_t rip = 0, stale = 0;
        if (tgt_continue(t, &s, 1000, &e) < 0) {
            fprintf(stderr, "kvm: continue: %s\n", e.msg);
            break;
        }
        char reply[32];
        /* The stub's `p` still answers the previous stop's pc ... */
        if (hits > 0 && tgt_query(t, "p10", reply, sizeof reply, &e) == 0)
            fl_parse_hex(reply, 2, &stale);
        /* ... while registers come from this stop's `g`. */
        CHECK(tgt_reg_read(t, "rip", &rip, &e) == 0);
        CHECK_EQ_U64(rip, st[hits]);
        if (hits > 0)
            CHECK_EQ_U64(stale, st[hits - 1] & 0xff);
        CHECK(tgt_bp_remove(t, TGT_BP_HW, rip, 1, &e) == 0);
        hits++;
        while (next < 6 && tgt_bp_hw_in_use(t) < tgt_bp_slots(t))
            CHECK(tgt_bp_insert(t, TGT_BP_HW, st[next++], 1, &e) == 0);
    }
    CHECK(hits == 6);
    /* Nothing left on the path: it runs until interrupted. */
    tgt_stop s;
    fl_error_clear(&e);
    CHECK(tgt_continue(t, &s, 300, &e) == -1 && e.code == FL_ETIMEOUT);
    CHECK(tgt_bp_remove(t, TGT_BP_SW, 0xffffffff81000500ULL, 1, &e) == 0);
    tgt_close(t);
    CHECK(fakestub_join(&f) == 0);
    CHECK(count_lines(f.log, "Z1,ffffffff81005000,1") == 2);  /* refused once, armed later */
}

int main(void)
{
    test_tdesc();
    test_stop();
    test_session();
    test_silent_and_closed();
    test_kvm();
    return check_summary("test_target");
}
