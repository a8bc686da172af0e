/* Unit tests of the kernel layer on build/fixtures/kfix (tests/fixtures/kfix.c,
 * DWARF 5): layouts are compared with sizeof/offsetof of the same definitions
 * (tests/fixtures/kfix.h) compiled into this test; symbols with nm, lines with
 * addr2line, variable locations with gdb's `info scope` (skipped if gdb is
 * missing); then the bad inputs, each with its code and sentence. */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "faultline/kernel.h"
#include "fixtures/kfix.h"

static const char *FIX = "build/fixtures/kfix";

/* ---- fake stopped CPU ---- */
typedef struct fake {
    uint64_t regs[17];
    uint32_t asked;   /* bit n: register n was read */
} fake;

static int fake_reg(void *ctx, int regno, uint64_t *v, fl_error *err)
{
    fake *f = ctx;
    if (regno < 0 || regno > 16)
        return fl_fail(err, FL_ENOTFOUND, "fake frame has no register %d", regno);
    f->asked |= 1u << regno;
    *v = f->regs[regno];
    return 0;
}

/* Memory of this very process: kern_current walks real structs. */
static int fake_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    (void)ctx;
    if (addr < 4096)
        return fl_fail(err, FL_EIO, "fake memory: unmapped 0x%llx", (unsigned long long)addr);
    memcpy(buf, (const void *)(uintptr_t)addr, len);
    return 0;
}

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 17; i++)
        f->regs[i] = 0x1000 + (uint64_t)i;
}

static uint64_t nm_addr(const char *name)
{
    char cmd[256], line[256];
    snprintf(cmd, sizeof cmd, "nm %s 2>/dev/null", FIX);
    FILE *p = popen(cmd, "r");
    uint64_t a = 0;
    if (!p)
        return 0;
    while (fgets(line, sizeof line, p)) {
        char nm[200], t;
        unsigned long long v;
        if (sscanf(line, "%llx %c %199s", &v, &t, nm) == 3 && strcmp(nm, name) == 0)
            a = v;
    }
    pclose(p);
    return a;
}

static int dwarf_regno(const char *gdbname)
{
    static const char *const n[] = { "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15" };
    for (int i = 0; i < 16; i++)
        if (strcmp(n[i], gdbname) == 0)
            return i;
    return -1;
}

static void test_symbols(kern *k)
{
    CHECK_STR(kern_banner(k), "Linux version 0.0-kfix (test fixture) #1");
    const char *names[] = { "kf_alpha", "kf_beta", "kf_work", "kf_frame", "main", "pcpu_hot", "kf_task" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        uint64_t a = 0;
        fl_error e = { 0 };
        CHECK(kern_sym_addr(k, names[i], &a, &e) == 0);
        CHECK_EQ_U64(a, nm_addr(names[i]));
    }
    uint64_t a = 0, sz = 0, lo, hi;
    const char *n = NULL;
    uint64_t off = 0;
    CHECK(kern_sym_addr(k, "kf_work", &a, NULL) == 0);
    CHECK(kern_sym_size(k, "kf_work", &sz, NULL) == 0 && sz > 8);
    CHECK(kern_sym_at(k, a + 5, &n, &off));
    CHECK_STR(n, "kf_work");
    CHECK_EQ_U64(off, 5);
    CHECK(kern_sym_at(k, a + sz - 1, &n, &off) && strcmp(n, "kf_work") == 0);
    CHECK(kern_func_range(k, "kf_work", &lo, &hi, NULL) == 0);
    CHECK_EQ_U64(lo, a);
    CHECK_EQ_U64(hi, a + sz);
    CHECK(!kern_sym_at(k, 0x10, &n, &off));
    CHECK(kern_sym_at(k, nm_addr("kf_task") + 4, &n, &off) && strcmp(n, "kf_task") == 0);

    fl_error e = { 0 };
    CHECK(kern_sym_addr(k, "kf_no_such_symbol", &a, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "kf_no_such_symbol"));
    /* always_inline: no symbol of its own. */
    CHECK(kern_sym_addr(k, "kf_step", &a, NULL) == -1);
}

static void check_member(kern *k, const char *path, size_t off, size_t size, const char *type)
{
    kern_member m;
    fl_error e = { 0 };
    int r = kern_member_get(k, path, &m, &e);
    CHECK(r == 0);
    if (r != 0) {
        fprintf(stderr, "  %s: %s\n", path, e.msg);
        return;
    }
    if (m.offset != off || m.size != size)
        fprintf(stderr, "  member %s:\n", path);
    CHECK_EQ_U64(m.offset, off);
    CHECK_EQ_U64(m.size, size);
    if (type)
        CHECK_STR(m.type, type);
}

static void test_types(kern *k)
{
    uint64_t sz = 0;
    CHECK(kern_type_size(k, "struct kf_fault", &sz, NULL) == 0);
    CHECK_EQ_U64(sz, sizeof(struct kf_fault));
    CHECK(kern_type_size(k, "kf_regs", &sz, NULL) == 0);
    CHECK_EQ_U64(sz, sizeof(struct kf_regs));
    CHECK(kern_type_size(k, "task_struct", &sz, NULL) == 0);
    CHECK_EQ_U64(sz, sizeof(struct task_struct));
    CHECK(kern_type_size(k, "struct pcpu_hot", &sz, NULL) == 0);
    CHECK_EQ_U64(sz, sizeof(struct pcpu_hot));

    struct kf_fault *F = NULL;
    (void)F;
    check_member(k, "kf_fault.vma", offsetof(struct kf_fault, vma), sizeof F->vma, "struct kf_vma *");
    check_member(k, "kf_fault.gfp_mask", offsetof(struct kf_fault, gfp_mask), 4, "unsigned int");
    check_member(k, "kf_fault.pgoff", offsetof(struct kf_fault, pgoff), 8, "long unsigned int");
    check_member(k, "kf_fault.address", offsetof(struct kf_fault, address), 8, "long unsigned int");
    check_member(k, "kf_fault.flags", offsetof(struct kf_fault, flags), sizeof F->flags, "enum kf_fault_flag");
    check_member(k, "kf_fault.as_int", offsetof(struct kf_fault, as_int), 4, "int");
    check_member(k, "kf_fault.as_long", offsetof(struct kf_fault, as_long), 8, "long int");
    check_member(k, "kf_fault.comm", offsetof(struct kf_fault, comm), 16, "char[16]");
    check_member(k, "kf_fault.inner", offsetof(struct kf_fault, inner), sizeof F->inner, "struct kf_inner");
    check_member(k, "kf_fault.inner.y", offsetof(struct kf_fault, inner) + offsetof(struct kf_inner, y), 8, "long int");
    check_member(k, "struct kf_fault.regs", offsetof(struct kf_fault, regs), 8, "struct kf_regs *");
    check_member(k, "kf_regs.cs", offsetof(struct kf_regs, cs), 2, "short unsigned int");
    check_member(k, "kf_regs.ip", offsetof(struct kf_regs, ip), 8, NULL);
    check_member(k, "pcpu_hot.current_task", offsetof(struct pcpu_hot, current_task), 8, "struct task_struct *");
    check_member(k, "task_struct.pid", offsetof(struct task_struct, pid), 4, "int");
    check_member(k, "task_struct.comm", offsetof(struct task_struct, comm), 16, NULL);

    kern_member m;
    CHECK(kern_member_get(k, "kf_fault.regs", &m, NULL) == 0 && m.is_pointer && !m.is_signed);
    CHECK(kern_member_get(k, "kf_fault.as_int", &m, NULL) == 0 && m.is_signed && !m.is_pointer);
    CHECK(kern_member_get(k, "kf_fault.small", &m, NULL) == 0 && m.bit_size == 3);
    CHECK(kern_member_get(k, "kf_fault.more", &m, NULL) == 0 && m.bit_size == 5);

    kern_member *list = NULL;
    size_t n = 0;
    CHECK(kern_struct_members(k, "kf_fault", &list, &n, NULL) == 0);
    const char *want[] = { "vma", "gfp_mask", "pgoff", "address", "flags", "as_int", "as_long",
                           "small", "more", "comm", "inner", "regs" };
    CHECK_EQ_U64(n, sizeof want / sizeof *want);
    for (size_t i = 0; i < n && i < sizeof want / sizeof *want; i++)
        CHECK_STR(list[i].name, want[i]);
    if (n >= 4)
        CHECK_EQ_U64(list[3].offset, offsetof(struct kf_fault, address));
    free(list);

    fl_error e = { 0 };
    CHECK(kern_member_get(k, "kf_fault.no_such_field", &m, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "no_such_field") && strstr(e.msg, "kf_fault"));
    CHECK(kern_member_get(k, "kf_no_such_struct.x", &m, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "kf_no_such_struct"));
    CHECK(kern_type_size(k, "struct kf_nothing", &sz, &e) == -1 && e.code == FL_ENOTFOUND);
    CHECK(kern_member_get(k, "kf_fault", &m, &e) == -1 && e.code == FL_EUSAGE);
    CHECK(kern_member_get(k, "kf_fault.address.x", &m, &e) == -1 && e.code == FL_EUSAGE);
}

static void test_enums(kern *k)
{
    kern_enumerator *v = NULL;
    size_t n = 0;
    CHECK(kern_enum_list(k, "kf_fault_flag", &v, &n, NULL) == 0);
    CHECK_EQ_U64(n, 3);
    if (n == 3) {
        CHECK_STR(v[0].name, "KF_FLAG_WRITE");
        CHECK_EQ_U64(v[0].value, KF_FLAG_WRITE);
        CHECK_STR(v[2].name, "KF_FLAG_VMA_LOCK");
        CHECK_EQ_U64(v[2].value, KF_FLAG_VMA_LOCK);
    }
    free(v);
    int64_t x = 0;
    CHECK(kern_enum_value(k, "kf_fault_flag", "KF_FLAG_USER", &x, NULL) == 0 && x == KF_FLAG_USER);
    CHECK(kern_enum_value(k, "enum kf_signed", "KF_NEG", &x, NULL) == 0 && x == KF_NEG);
    CHECK(kern_enum_value(k, "kf_signed", "KF_BIG", &x, NULL) == 0 && x == KF_BIG);
    fl_error e = { 0 };
    CHECK(kern_enum_value(k, "kf_fault_flag", "KF_FLAG_NOPE", &x, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "KF_FLAG_NOPE"));
    CHECK(kern_enum_list(k, "kf_no_enum", &v, &n, &e) == -1 && e.code == FL_ENOTFOUND && strstr(e.msg, "kf_no_enum"));
}

static void test_lines(kern *k)
{
    const char *funcs[] = { "kf_alpha", "kf_beta", "kf_work", "kf_frame", "main" };
    int compared = 0;
    for (size_t f = 0; f < sizeof funcs / sizeof *funcs; f++) {
        uint64_t lo, hi;
        if (kern_func_range(k, funcs[f], &lo, &hi, NULL) != 0) {
            CHECK(0);
            continue;
        }
        for (int j = 0; j < 3; j++) {
            uint64_t pc = lo + (hi - lo) * (uint64_t)j / 3;
            kern_line l;
            fl_error e = { 0 };
            CHECK(kern_line_at(k, pc, &l, &e) == 0);
            char cmd[256], out[512] = "";
            snprintf(cmd, sizeof cmd, "addr2line -e %s 0x%llx", FIX, (unsigned long long)pc);
            FILE *p = popen(cmd, "r");
            if (!p || !fgets(out, sizeof out, p)) {
                if (p)
                    pclose(p);
                continue;
            }
            pclose(p);
            char *colon = strrchr(out, ':');
            if (!colon || !l.file)
                continue;
            *colon = '\0';
            int want_line = atoi(colon + 1);
            const char *b1 = strrchr(out, '/'), *b2 = strrchr(l.file, '/');
            CHECK_STR(b2 ? b2 + 1 : l.file, b1 ? b1 + 1 : out);
            CHECK_EQ_U64(l.line, want_line);
            compared++;
        }
    }
    CHECK(compared >= 10);
    /* source text of a known line (the fixture's first function body line) */
    kern_line l;
    uint64_t a;
    CHECK(kern_sym_addr(k, "kf_frame", &a, NULL) == 0 && kern_line_at(k, a, &l, NULL) == 0);
    CHECK_STR(l.function, "kf_frame");
    const char *txt = kern_source_text(k, l.file, l.line);
    char want[256] = "";
    FILE *src = fopen(l.file, "r");
    for (int i = 0; src && i < l.line && fgets(want, sizeof want, src); i++)
        ;
    if (src)
        fclose(src);
    want[strcspn(want, "\n")] = '\0';
    CHECK(want[0] != '\0');
    CHECK_STR(txt, want);
    const char *prev = kern_source_text(k, l.file, l.line - 1);
    CHECK(prev && strstr(prev, "kf_frame(int seed)"));
    CHECK(kern_source_text(k, "/nonexistent/file.c", 3) == NULL);
    CHECK(kern_source_text(k, l.file, 100000) == NULL);
    fl_error e = { 0 };
    CHECK(kern_line_at(k, 0x10, &l, &e) == -1 && e.code == FL_ENOTFOUND);
}

static void test_inlined(kern *k)
{
    uint64_t *pcs = NULL;
    size_t n = 0;
    fl_error e = { 0 };
    CHECK(kern_inlined_entries(k, "kf_step", &pcs, &n, &e) == 0);
    CHECK(n >= 3);   /* once in kf_alpha, twice in kf_beta */
    uint64_t alo, ahi, blo, bhi;
    CHECK(kern_func_range(k, "kf_alpha", &alo, &ahi, NULL) == 0);
    CHECK(kern_func_range(k, "kf_beta", &blo, &bhi, NULL) == 0);
    int in_a = 0, in_b = 0;
    for (size_t i = 0; i < n; i++) {
        in_a += pcs[i] >= alo && pcs[i] < ahi;
        in_b += pcs[i] >= blo && pcs[i] < bhi;
        kern_line l;
        CHECK(kern_line_at(k, pcs[i], &l, NULL) == 0);
        CHECK_STR(l.function, "kf_step");
    }
    CHECK(in_a >= 1);
    CHECK(in_b >= 2);
    CHECK_EQ_U64(in_a + in_b, n);
    free(pcs);
    CHECK(kern_inlined_entries(k, "kf_no_func", &pcs, &n, &e) == -1 && e.code == FL_ENOTFOUND);
    /* kf_work is never inlined: zero instances is FL_ENOTFOUND */
    CHECK(kern_inlined_entries(k, "kf_work", &pcs, &n, &e) == -1 && e.code == FL_ENOTFOUND);
}

/* Each "Range A-B: a variable in $reg" / "the constant C" from gdb's
 * `info scope FUNC` for VAR is checked at A and B-1. */
static int check_against_gdb(kern *k, const char *func, const char *var)
{
    char cmd[256], line[512];
    snprintf(cmd, sizeof cmd, "gdb -batch -nx -ex 'info scope %s' %s 2>/dev/null", func, FIX);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    int checked = 0;
    bool in_var = false;
    while (fgets(line, sizeof line, p)) {
        char sym[64];
        if (sscanf(line, "Symbol %63s", sym) == 1) {
            in_var = strcmp(sym, var) == 0;
            if (!in_var)
                continue;
        }
        if (!in_var)
            continue;
        char *r = strstr(line, "Range 0x");
        if (!r)
            continue;
        unsigned long long lo, hi;
        char rest[128] = "";
        if (sscanf(r, "Range %llx-%llx: %127[^\n]", &lo, &hi, rest) != 3)
            continue;
        uint64_t pcs[2] = { lo, hi - 1 };
        for (int i = 0; i < 2; i++) {
            fake fk;
            fake_init(&fk);
            kern_frame fr = { fake_reg, fake_mem, &fk };
            uint64_t v = 0;
            fl_error e = { 0 };
            char reg[16];
            long long c;
            int rc = kern_var_value(k, func, var, pcs[i], &fr, &v, &e);
            if (sscanf(rest, "a variable in $%15s", reg) == 1 && dwarf_regno(reg) >= 0) {
                CHECK(rc == 0);
                CHECK_EQ_U64(v, 0x1000 + (uint64_t)dwarf_regno(reg));
                checked++;
            } else if (sscanf(rest, "the constant %lld", &c) == 1) {
                CHECK(rc == 0);
                CHECK_EQ_U64(v, (uint64_t)c);
                checked++;
            }
            if (rc != 0)
                fprintf(stderr, "  %s/%s at 0x%llx: %s\n", func, var, (unsigned long long)pcs[i], e.msg);
        }
    }
    pclose(p);
    return checked;
}

static void test_vars(kern *k)
{
    uint64_t entry;
    CHECK(kern_sym_addr(k, "kf_work", &entry, NULL) == 0);
    fake fk;
    fake_init(&fk);
    kern_frame fr = { fake_reg, fake_mem, &fk };
    uint64_t v = 0;
    fl_error e = { 0 };
    /* psABI: at entry f is in rdi (5), n in rsi (4). */
    CHECK(kern_var_value(k, "kf_work", "f", entry, &fr, &v, &e) == 0);
    CHECK_EQ_U64(v, 0x1000 + 5);
    CHECK(kern_var_value(k, "kf_work", "n", entry, &fr, &v, &e) == 0);
    CHECK_EQ_U64(v, 0x1000 + 4);

    bool have_gdb = access("/usr/bin/gdb", X_OK) == 0;
    if (have_gdb) {
        CHECK(check_against_gdb(k, "kf_work", "n") >= 4);   /* a real location list */
        CHECK(check_against_gdb(k, "kf_work", "f") >= 2);
        check_against_gdb(k, "kf_frame", "seed");
    }

    /* buf: DW_OP_fbreg off DW_OP_call_frame_cfa; at entry CFA = rsp + 8. */
    uint64_t fentry, a1 = 0, a2 = 0;
    CHECK(kern_sym_addr(k, "kf_frame", &fentry, NULL) == 0);
    fake_init(&fk);
    fk.regs[7] = 0x7ff000;
    CHECK(kern_var_addr(k, "kf_frame", "buf", fentry, &fr, &a1, &e) == 0);
    CHECK(fk.asked & (1u << 7));
    fk.regs[7] = 0x7ff100;
    CHECK(kern_var_addr(k, "kf_frame", "buf", fentry, &fr, &a2, &e) == 0);
    CHECK_EQ_U64(a2 - a1, 0x100);
    if (have_gdb) {
        FILE *p = popen("gdb -batch -nx -ex 'info scope kf_frame' build/fixtures/kfix 2>/dev/null", "r");
        char line[256];
        long fb = 1;
        while (p && fgets(line, sizeof line, p)) {
            char *s = strstr(line, "DW_OP_fbreg ");
            if (s)
                fb = strtol(s + 12, NULL, 10);
        }
        if (p)
            pclose(p);
        CHECK(fb != 1);
        CHECK_EQ_U64(a1, 0x7ff000 + 8 + (uint64_t)fb);
    }
    /* buf is 48 bytes: not a scalar */
    CHECK(kern_var_value(k, "kf_frame", "buf", fentry, &fr, &v, &e) == -1 && e.code == FL_EUSAGE);
    /* in a register: no address */
    CHECK(kern_var_addr(k, "kf_work", "n", entry, &fr, &v, &e) == -1 && e.code == FL_ENOTFOUND);

    /* inside an inlined instance */
    uint64_t *pcs;
    size_t n;
    if (kern_inlined_entries(k, "kf_step", &pcs, &n, NULL) == 0) {
        fake_init(&fk);
        int ok = 0;
        for (size_t i = 0; i < n; i++) {
            fl_error e2 = { 0 };
            if (kern_var_value(k, "kf_step", "f", pcs[i], &fr, &v, &e2) == 0)
                ok++;
            else
                fprintf(stderr, "  kf_step/f at 0x%llx: %s\n", (unsigned long long)pcs[i], e2.msg);
        }
        CHECK(ok >= 1);
        free(pcs);
    }

    CHECK(kern_var_value(k, "kf_work", "nosuchvar", entry, &fr, &v, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "nosuchvar"));
    CHECK(kern_var_value(k, "kf_alpha", "n", entry, &fr, &v, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "kf_alpha"));
}

/* Resolve once, evaluate at many stops: the same answers as
 * kern_var_value / kern_var_addr, whatever the registers are. */
static void test_varloc(kern *k)
{
    uint64_t entry, fentry, v = 0, a = 0, want = 0;
    CHECK(kern_sym_addr(k, "kf_work", &entry, NULL) == 0);
    CHECK(kern_sym_addr(k, "kf_frame", &fentry, NULL) == 0);
    fake fk;
    fake_init(&fk);
    kern_frame fr = { fake_reg, fake_mem, &fk };
    fl_error e = { 0 };
    kern_varloc *n = NULL, *buf = NULL, *none = (kern_varloc *)1;
    CHECK(kern_var_locate(k, "kf_work", "n", entry, &n, &e) == 0 && n);
    CHECK(kern_var_locate(k, "kf_frame", "buf", fentry, &buf, &e) == 0 && buf);
    for (uint64_t base = 0x2000; base < 0x2300 && n && buf; base += 0x100) {
        for (int i = 0; i < 17; i++)
            fk.regs[i] = base + (uint64_t)i;
        fk.regs[7] = 0x7ff000 + base;
        CHECK(kern_varloc_eval(n, &fr, &v, &e) == 0);
        CHECK(kern_var_value(k, "kf_work", "n", entry, &fr, &want, &e) == 0);
        CHECK_EQ_U64(v, want);
        CHECK_EQ_U64(v, base + 4);   /* rsi at entry */
        CHECK(kern_varloc_addr(buf, &fr, &a, &e) == 0);
        CHECK(kern_var_addr(k, "kf_frame", "buf", fentry, &fr, &want, &e) == 0);
        CHECK_EQ_U64(a, want);
        CHECK(kern_varloc_addr(n, &fr, &a, &e) == -1 && e.code == FL_ENOTFOUND);
        CHECK(kern_varloc_eval(buf, &fr, &v, &e) == -1 && e.code == FL_EUSAGE);
    }
    kern_varloc_free(n);
    kern_varloc_free(buf);
    kern_varloc_free(NULL);
    CHECK(kern_var_locate(k, "kf_work", "nosuchvar", entry, &none, &e) == -1 && none == NULL);
    CHECK(e.code == FL_ENOTFOUND && strstr(e.msg, "nosuchvar"));
}

static void test_current(kern *k)
{
    static struct mm_struct mm = { 0x1234 };
    static struct task_struct task = { .pid = 4242, .comm = "mm_exercise_use", .mm = &mm };
    static struct pcpu_hot hot;
    hot.current_task = &task;
    uint64_t sym;
    CHECK(kern_sym_addr(k, "pcpu_hot", &sym, NULL) == 0);
    fake fk;
    fake_init(&fk);
    kern_frame fr = { fake_reg, fake_mem, &fk };
    kern_task t;
    fl_error e = { 0 };
    /* per-cpu base chosen so that base + &pcpu_hot lands on our `hot` */
    uint64_t base = (uint64_t)(uintptr_t)&hot - sym;
    CHECK(kern_current(k, base, &fr, &t, &e) == 0);
    CHECK_EQ_U64(t.task, (uintptr_t)&task);
    CHECK_EQ_U64(t.pid, 4242);
    CHECK_STR(t.comm, "mm_exercise_use");
    CHECK_EQ_U64(t.mm, (uintptr_t)&mm);
    hot.current_task = NULL;
    CHECK(kern_current(k, base, &fr, &t, &e) == -1 && e.code == FL_ENOTFOUND);
}

static void expect_open_fail(const char *path, enum fl_errcode code, const char *needle)
{
    kern *k = (kern *)1;
    fl_error e = { 0 };
    CHECK(kern_open(&k, path, NULL, &e) == -1);
    CHECK(k == NULL);
    CHECK(e.code == code);
    CHECK(strstr(e.msg, needle) != NULL);
    if (e.code != code || !strstr(e.msg, needle))
        fprintf(stderr, "  open %s: [%s] %s\n", path, fl_errcode_name(e.code), e.msg);
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

static void test_bad_input(void)
{
    char dir[] = "/tmp/test_kernel.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char p[256], cmd[600];
    expect_open_fail("/nonexistent/vmlinux", FL_ENOTFOUND, "does not exist");

    snprintf(p, sizeof p, "%s/text", dir);
    write_file(p, "this is not an ELF file\n", 24);
    expect_open_fail(p, FL_EFORMAT, "not an ELF");

    /* A minimal ELF32 header (no cc -m32 needed). */
    unsigned char h32[52] = { 0x7f, 'E', 'L', 'F', 1, 1, 1 };
    h32[16] = 2;  /* ET_EXEC */
    h32[18] = 3;  /* EM_386 */
    h32[20] = 1;  /* EV_CURRENT */
    h32[40] = 52; /* e_ehsize */
    snprintf(p, sizeof p, "%s/elf32", dir);
    write_file(p, h32, sizeof h32);
    expect_open_fail(p, FL_EFORMAT, "32-bit");

    unsigned char h64[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
    h64[16] = 2;
    h64[18] = 183; /* EM_AARCH64 */
    h64[20] = 1;
    h64[52] = 64;
    snprintf(p, sizeof p, "%s/arm64", dir);
    write_file(p, h64, sizeof h64);
    expect_open_fail(p, FL_EFORMAT, "not an x86-64");

    snprintf(p, sizeof p, "%s/stripped", dir);
    snprintf(cmd, sizeof cmd, "strip -o %s %s", p, FIX);
    CHECK(system(cmd) == 0);
    expect_open_fail(p, FL_EFORMAT, ".symtab");

    snprintf(p, sizeof p, "%s/nodebug", dir);
    snprintf(cmd, sizeof cmd, "objcopy --strip-debug %s %s", FIX, p);
    CHECK(system(cmd) == 0);
    expect_open_fail(p, FL_EFORMAT, "CONFIG_DEBUG_INFO");

    expect_open_fail(dir, FL_EFORMAT, "not a regular file");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* ---- source of a kernel built elsewhere ---- */

/* The fixture's first line of kf_frame, found through a DWARF path that
 * does not exist here: only the source directory can resolve it. */
static void test_source_dir(kern *k)
{
    uint64_t a;
    kern_line l;
    CHECK(kern_sym_addr(k, "kf_frame", &a, NULL) == 0 && kern_line_at(k, a, &l, NULL) == 0);
    const char *want = kern_source_text(k, l.file, l.line);
    CHECK(want != NULL);
    char wantc[256];
    snprintf(wantc, sizeof wantc, "%s", want ? want : "");
    const char *moved[] = { "/build/reproducible-path/linux-6.1.176/tests/fixtures/kfix.c",
                            "debian/build/build_amd64_none_cloud-amd64/tests/fixtures/kfix.c" };
    for (int i = 0; i < 2; i++)
        CHECK(kern_source_text(k, moved[i], l.line) == NULL);
    char cwd[1024];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    fl_error e = { 0 };
    CHECK(kern_set_source_dir(k, cwd, &e) == 0);
    CHECK_STR(kern_source_dir(k), cwd);
    for (int i = 0; i < 2; i++)
        CHECK_STR(kern_source_text(k, moved[i], l.line), wantc);
    CHECK(kern_source_text(k, "/build/linux/no/such/file.c", 1) == NULL);
    CHECK(kern_set_source_dir(k, "/nonexistent/src", &e) == -1 && e.code == FL_ENOTFOUND &&
          strstr(e.msg, "/nonexistent/src"));
    CHECK(kern_set_source_dir(k, NULL, &e) == 0 && kern_source_dir(k) == NULL);
    CHECK(kern_source_text(k, moved[0], l.line) == NULL);
}

static void write_status(const char *path, const char *pkg, const char *status, const char *ver)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "Package: linux-image-amd64\nStatus: install ok installed\nVersion: 9.9-1\n\n"
               "Package: %s\nStatus: %s\nPriority: optional\nVersion: %s\n\n", pkg, status, ver);
    fclose(f);
}

/* A fake Debian: linux-source-0.0 (the fixture's banner says 0.0-kfix) as a
 * tarball of this tree's tests/fixtures, a dpkg status file, a cache. */
static void test_debian_source(kern *k, const char *dir)
{
    char rel[64], cmd[1400], status[300], usr[300], cache[300];
    CHECK_STR(kern_release(k, rel, sizeof rel), "0.0-kfix");
    snprintf(usr, sizeof usr, "%s/usr-src", dir);
    snprintf(status, sizeof status, "%s/status", dir);
    snprintf(cache, sizeof cache, "%s/cache/faultline", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/pkg/linux-source-0.0/tests %s && cp -r tests/fixtures %s/pkg/"
             "linux-source-0.0/tests/ && tar -cJf %s/linux-source-0.0.tar.xz -C %s/pkg linux-source-0.0",
             dir, usr, dir, usr, dir);
    CHECK(system(cmd) == 0);
    kern_source_paths p = { .usr_src = usr, .dpkg_status = status, .cache_dir = cache };
    fl_error e = { 0 };
    write_status(status, "linux-source-0.0", "install ok installed", "0.1-1");
    CHECK(kern_use_debian_source(k, &p, &e) == -1 && e.code == FL_ENOTFOUND && strstr(e.msg, "0.1-1"));
    write_status(status, "linux-source-0.0", "deinstall ok config-files", "0.0-1");
    CHECK(kern_use_debian_source(k, &p, &e) == -1 && e.code == FL_ENOTFOUND &&
          strstr(e.msg, "apt-get install linux-source-0.0"));
    write_status(status, "linux-source-0.0", "install ok installed", "0.0-1");
    CHECK(kern_use_debian_source(k, &p, &e) == 0);
    char want[400], stamp[400];
    snprintf(want, sizeof want, "%s/source-0.0-1/linux-source-0.0", cache);
    snprintf(stamp, sizeof stamp, "%s/source-0.0-1/.faultline-unpacked", cache);
    CHECK_STR(kern_source_dir(k), want);
    CHECK(access(stamp, F_OK) == 0);
    uint64_t a;
    kern_line l;
    CHECK(kern_sym_addr(k, "kf_frame", &a, NULL) == 0 && kern_line_at(k, a, &l, NULL) == 0);
    const char *t = kern_source_text(k, "/build/reproducible-path/linux-0.0/tests/fixtures/kfix.c", l.line - 1);
    CHECK(t && strstr(t, "kf_frame(int seed)"));
    /* Once: with the stamp there, the tarball is not needed again. */
    snprintf(cmd, sizeof cmd, "rm %s/linux-source-0.0.tar.xz && touch %s/linux-source-0.0.tar.xz", usr, usr);
    CHECK(system(cmd) == 0);
    CHECK(kern_use_debian_source(k, &p, &e) == 0);
    kern_set_source_dir(k, NULL, NULL);
}

/* Offset and size of a section of the fixture, by name. */
static bool section_at(const char *path, const char *name, uint64_t *off, uint64_t *size)
{
    int fd = open(path, O_RDONLY);
    elf_version(EV_CURRENT);
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    size_t shstr;
    bool found = false;
    if (e && elf_getshdrstrndx(e, &shstr) == 0) {
        for (Elf_Scn *s = elf_nextscn(e, NULL); s && !found; s = elf_nextscn(e, s)) {
            GElf_Shdr sh;
            const char *n = gelf_getshdr(s, &sh) ? elf_strptr(e, shstr, sh.sh_name) : NULL;
            if (n && strcmp(n, name) == 0) {
                *off = sh.sh_offset;
                *size = sh.sh_size;
                found = true;
            }
        }
    }
    if (e)
        elf_end(e);
    if (fd >= 0)
        close(fd);
    return found;
}

/* Bad files that are ELF: truncated, corrupt .debug_info, compressed DWARF. */
static void test_damaged(const char *dir)
{
    char p[300], cmd[700];
    struct stat st;
    CHECK(stat(FIX, &st) == 0);
    snprintf(p, sizeof p, "%s/truncated", dir);
    snprintf(cmd, sizeof cmd, "head -c %lld %s > %s", (long long)st.st_size / 2, FIX, p);
    CHECK(system(cmd) == 0);
    expect_open_fail(p, FL_EFORMAT, "truncated");

    uint64_t off = 0, size = 0;
    CHECK(section_at(FIX, ".debug_info", &off, &size) && size > 64);
    snprintf(p, sizeof p, "%s/corrupt", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", FIX, p);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(p, "r+b");
    unsigned char junk[48];
    memset(junk, 0xff, sizeof junk);
    if (f) {   /* DIEs of the first CU, past its 12-byte DWARF 5 header */
        fseek(f, (long)(off + 16), SEEK_SET);
        fwrite(junk, 1, sizeof junk, f);
        fclose(f);
    }
    kern *k = NULL;
    fl_error e = { 0 };
    CHECK(kern_open(&k, p, NULL, &e) == 0);
    if (k) {
        uint64_t *pcs = NULL;
        size_t n = 0;
        kern_member m;
        CHECK(kern_inlined_entries(k, "kf_step", &pcs, &n, &e) == -1 && pcs == NULL);
        CHECK(e.code == FL_EFORMAT && strstr(e.msg, "corrupt DWARF in .debug_info: DW_DLE_"));
        if (e.code != FL_EFORMAT)
            fprintf(stderr, "  corrupt: [%s] %s\n", fl_errcode_name(e.code), e.msg);
        CHECK(kern_member_get(k, "kf_fault.address", &m, &e) == -1 && e.code == FL_EFORMAT &&
              strstr(e.msg, "corrupt DWARF"));
        kern_close(k);
    }

    /* SHF_COMPRESSED DWARF (objcopy --compress-debug-sections): decompressed
     * once, same answers. */
    snprintf(p, sizeof p, "%s/zdebug", dir);
    snprintf(cmd, sizeof cmd, "objcopy --compress-debug-sections=zlib %s %s", FIX, p);
    CHECK(system(cmd) == 0);
    k = NULL;
    CHECK(kern_open(&k, p, NULL, &e) == 0);
    if (k) {
        uint64_t sz = 0, a = 0;
        kern_line l;
        CHECK(kern_type_size(k, "struct kf_fault", &sz, &e) == 0 && sz == sizeof(struct kf_fault));
        CHECK(kern_sym_addr(k, "kf_frame", &a, NULL) == 0 && kern_line_at(k, a, &l, &e) == 0);
        CHECK_STR(l.function, "kf_frame");
        kern_close(k);
    }
}

int main(void)
{
    if (access(FIX, R_OK) != 0) {
        fprintf(stderr, "test_kernel: %s is missing: run `make %s` first\n", FIX, FIX);
        CHECK(0);
        return check_summary("test_kernel");
    }
    kern *k = NULL;
    fl_error e = { 0 };
    int r = kern_open(&k, FIX, NULL, &e);
    CHECK(r == 0);
    if (r != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        return check_summary("test_kernel");
    }
    test_symbols(k);
    test_types(k);
    test_enums(k);
    test_lines(k);
    test_inlined(k);
    test_vars(k);
    test_varloc(k);
    test_current(k);
    test_source_dir(k);
    char dir[] = "/tmp/test_kernel.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_debian_source(k, dir);
    kern_close(k);
    test_bad_input();
    test_damaged(dir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_summary("test_kernel");
}
