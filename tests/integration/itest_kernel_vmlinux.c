/* Integration checks of the kernel layer on the real vmlinux
 * ($FAULTLINE_KERNEL): layouts and constants the capture depends on, symbol
 * addresses against nm, member offsets against gdb, lines against addr2line,
 * inlined instances of handle_pte_fault, the location of its `vmf`, and
 * source text from the tree beside vmlinux. Skips (exit 77) without vmlinux. */
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "faultline/kernel.h"

static const char *VM;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct fake { uint64_t regs[17]; } fake;
static int fake_reg(void *ctx, int regno, uint64_t *v, fl_error *err)
{
    fake *f = ctx;
    if (regno < 0 || regno > 16)
        return fl_fail(err, FL_ENOTFOUND, "no register %d", regno);
    *v = f->regs[regno];
    return 0;
}
/* Guest memory is not there: return a recognisable pattern. */
static int fake_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    (void)ctx;
    (void)err;
    memset(buf, 0, len);
    uint64_t pat = 0xffff888000000000ull | (addr & 0xfff8);
    memcpy(buf, &pat, len < 8 ? len : 8);
    return 0;
}

static void test_constants(kern *k)
{
    CHECK(strncmp(kern_banner(k), "Linux version 6.12", 18) == 0);
    printf("banner: %s\n", kern_banner(k));
    uint64_t sz = 0;
    fl_error e = { 0 };
    CHECK(kern_type_size(k, "struct pt_regs", &sz, &e) == 0);
    CHECK_EQ_U64(sz, 168);
    kern_member *m = NULL;
    size_t n = 0;
    CHECK(kern_struct_members(k, "pt_regs", &m, &n, &e) == 0);
    bool has_ip = false, has_orig = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, "ip") == 0)
            has_ip = m[i].offset == 128 && m[i].size == 8;
        if (strcmp(m[i].name, "orig_ax") == 0)
            has_orig = m[i].offset == 120;
    }
    CHECK(has_ip);
    CHECK(has_orig);
    free(m);

    struct { const char *name; int64_t v; } ff[] = {
        { "FAULT_FLAG_WRITE", 1 }, { "FAULT_FLAG_ALLOW_RETRY", 4 }, { "FAULT_FLAG_KILLABLE", 0x10 },
        { "FAULT_FLAG_USER", 0x40 }, { "FAULT_FLAG_INSTRUCTION", 0x100 }, { "FAULT_FLAG_INTERRUPTIBLE", 0x200 },
        { "FAULT_FLAG_VMA_LOCK", 0x1000 },
    };
    for (size_t i = 0; i < sizeof ff / sizeof *ff; i++) {
        int64_t v = -1;
        CHECK(kern_enum_value(k, "fault_flag", ff[i].name, &v, &e) == 0);
        CHECK_EQ_U64(v, ff[i].v);
    }
    int64_t v = 0;
    CHECK(kern_enum_value(k, "x86_pf_error_code", "X86_PF_WRITE", &v, &e) == 0);
    CHECK_EQ_U64(v, 2);
    CHECK(kern_enum_value(k, "x86_pf_error_code", "X86_PF_USER", &v, &e) == 0);
    CHECK_EQ_U64(v, 4);
    CHECK(kern_enum_value(k, "x86_pf_error_code", "X86_PF_PROT", &v, &e) == 0);
    CHECK_EQ_U64(v, 1);
    kern_enumerator *en;
    CHECK(kern_enum_list(k, "fault_flag", &en, &n, &e) == 0 && n >= 13);
    free(en);

    kern_member mm;
    CHECK(kern_member_get(k, "pcpu_hot.current_task", &mm, &e) == 0 && mm.is_pointer);
    CHECK(kern_member_get(k, "task_struct.pid", &mm, &e) == 0 && mm.size == 4 && mm.is_signed);
    CHECK(kern_member_get(k, "task_struct.comm", &mm, &e) == 0 && mm.size == 16);
    CHECK(kern_member_get(k, "task_struct.mm", &mm, &e) == 0 && mm.is_pointer);
    CHECK(kern_member_get(k, "vm_fault.vma", &mm, &e) == 0 && strcmp(mm.type, "struct vm_area_struct *") == 0);
    CHECK(kern_member_get(k, "vm_fault.no_such", &mm, &e) == -1 && e.code == FL_ENOTFOUND);
    CHECK(kern_enum_value(k, "fault_flag", "FAULT_FLAG_NOPE", &v, &e) == -1 && e.code == FL_ENOTFOUND);
}

static void test_symbols(kern *k)
{
    uint64_t a = 0;
    CHECK(kern_sym_addr(k, "exc_page_fault", &a, NULL) == 0);
    char cmd[600], line[256];
    snprintf(cmd, sizeof cmd, "nm '%s' | grep -E ' (exc_page_fault|do_user_addr_fault)$'", VM);
    FILE *p = popen(cmd, "r");
    int seen = 0;
    while (p && fgets(line, sizeof line, p)) {
        unsigned long long v;
        char t, name[128];
        if (sscanf(line, "%llx %c %127s", &v, &t, name) != 3)
            continue;
        uint64_t ours = 0;
        CHECK(kern_sym_addr(k, name, &ours, NULL) == 0);
        CHECK_EQ_U64(ours, v);
        seen++;
    }
    if (p)
        pclose(p);
    CHECK_EQ_U64(seen, 2);
    const char *n;
    uint64_t off;
    CHECK(kern_sym_at(k, a + 5, &n, &off) && strcmp(n, "exc_page_fault") == 0 && off == 5);
    CHECK(kern_sym_addr(k, "handle_pte_fault", &a, NULL) == -1);   /* inlined in this build */
}

static void test_offsets_vs_gdb(kern *k)
{
    const char *mem[] = { "address", "flags", "pgoff", "vma", "pmd", "orig_pte" };
    char cmd[1400];
    int len = snprintf(cmd, sizeof cmd, "gdb -batch -nx");
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++)
        len += snprintf(cmd + len, sizeof cmd - len, " -ex 'print/x (unsigned long)&((struct vm_fault*)0)->%s'", mem[i]);
    snprintf(cmd + len, sizeof cmd - len, " '%s' 2>/dev/null", VM);
    FILE *p = popen(cmd, "r");
    char line[256];
    size_t i = 0;
    while (p && fgets(line, sizeof line, p) && i < sizeof mem / sizeof *mem) {
        unsigned long long v;
        if (sscanf(line, "$%*d = 0x%llx", &v) != 1)
            continue;
        char path[64];
        snprintf(path, sizeof path, "vm_fault.%s", mem[i]);
        kern_member m;
        fl_error e = { 0 };
        CHECK(kern_member_get(k, path, &m, &e) == 0);
        CHECK_EQ_U64(m.offset, v);
        i++;
    }
    if (p)
        pclose(p);
    CHECK_EQ_U64(i, sizeof mem / sizeof *mem);
}

static void test_lines(kern *k)
{
    const char *funcs[] = { "exc_page_fault", "do_user_addr_fault", "handle_mm_fault", "__handle_mm_fault",
                            "lock_vma_under_rcu" };
    uint64_t pcs[20];
    size_t np = 0;
    for (size_t f = 0; f < 5; f++) {
        uint64_t lo, hi;
        CHECK(kern_func_range(k, funcs[f], &lo, &hi, NULL) == 0);
        for (int j = 0; j < 4; j++)
            pcs[np++] = lo + (hi - lo) * (uint64_t)j / 4 + (j ? 1 : 0);
    }
    char cmd[2000];
    int len = snprintf(cmd, sizeof cmd, "addr2line -e '%s'", VM);
    for (size_t i = 0; i < np; i++)
        len += snprintf(cmd + len, sizeof cmd - len, " 0x%" PRIx64, pcs[i]);
    FILE *p = popen(cmd, "r");
    char line[512];
    size_t i = 0;
    int agree = 0;
    while (p && i < np && fgets(line, sizeof line, p)) {
        line[strcspn(line, " \n")] = '\0';   /* drop " (discriminator N)" */
        char *colon = strrchr(line, ':');
        kern_line l;
        fl_error e = { 0 };
        int r = kern_line_at(k, pcs[i], &l, &e);
        CHECK(r == 0);
        if (colon && r == 0) {
            *colon = '\0';
            const char *b1 = strrchr(line, '/'), *b2 = strrchr(l.file, '/');
            bool same = strcmp(b1 ? b1 + 1 : line, b2 ? b2 + 1 : l.file) == 0 && atoi(colon + 1) == l.line;
            CHECK(same);
            if (!same)
                fprintf(stderr, "  0x%" PRIx64 ": addr2line %s:%s, ours %s:%d\n", pcs[i], line, colon + 1, l.file, l.line);
            agree += same;
        }
        i++;
    }
    if (p)
        pclose(p);
    CHECK_EQ_U64(i, np);
    printf("lines: %d of %zu agree with addr2line\n", agree, np);

    /* Source text of mm/memory.c from the tree beside vmlinux. */
    uint64_t lo, hi;
    kern_line l;
    CHECK(kern_func_range(k, "__handle_mm_fault", &lo, &hi, NULL) == 0);
    CHECK(kern_line_at(k, lo, &l, NULL) == 0);
    CHECK(l.file && strstr(l.file, "mm/memory.c"));
    const char *t = kern_source_text(k, l.file, l.line);
    CHECK(t != NULL);
    char want[512] = "";
    FILE *src = fopen(l.file, "r");
    for (int i = 0; src && i < l.line && fgets(want, sizeof want, src); i++)
        ;
    if (src)
        fclose(src);
    want[strcspn(want, "\n")] = '\0';
    CHECK_STR(t, want);
    /* the function's first row is its opening brace; its name is just above */
    bool named = false;
    for (int d = 0; d <= 3 && l.line - d >= 1; d++) {
        const char *s = kern_source_text(k, l.file, l.line - d);
        named |= s && strstr(s, "__handle_mm_fault") != NULL;
    }
    CHECK(named);
    printf("source %s:%d: %s\n", l.file, l.line, t ? t : "(null)");
}

static void test_inlined(kern *k)
{
    uint64_t *pcs = NULL;
    size_t n = 0;
    fl_error e = { 0 };
    CHECK(kern_inlined_entries(k, "handle_pte_fault", &pcs, &n, &e) == 0);
    CHECK(n >= 1);
    uint64_t lo, hi;
    CHECK(kern_func_range(k, "__handle_mm_fault", &lo, &hi, NULL) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(pcs[i] >= lo && pcs[i] < hi);
        kern_line l;
        CHECK(kern_line_at(k, pcs[i], &l, NULL) == 0);
        printf("handle_pte_fault inlined at 0x%" PRIx64 " (%s:%d, in %s)\n", pcs[i], l.file, l.line,
               l.function ? l.function : "?");
        fake f;
        for (int r = 0; r < 17; r++)
            f.regs[r] = 0xffffc90000010000ull + (uint64_t)r * 0x100;
        kern_frame fr = { fake_reg, fake_mem, &f };
        uint64_t v = 0;
        fl_error e2 = { 0 };
        int rc = kern_var_value(k, "handle_pte_fault", "vmf", pcs[i], &fr, &v, &e2);
        CHECK(rc == 0 || e2.code != FL_ENOTFOUND);
        if (rc == 0)
            printf("  vmf = 0x%" PRIx64 " (fake registers)\n", v);
        else
            printf("  vmf: [%s] %s\n", fl_errcode_name(e2.code), e2.msg);
        /* the same at __handle_mm_fault's own local */
        rc = kern_var_addr(k, "__handle_mm_fault", "vmf", pcs[i], &fr, &v, &e2);
        if (rc == 0)
            printf("  &__handle_mm_fault.vmf = 0x%" PRIx64 "\n", v);
        else
            printf("  &__handle_mm_fault.vmf: [%s] %s\n", fl_errcode_name(e2.code), e2.msg);
    }
    free(pcs);
}

static void test_current(kern *k)
{
    fake f = { { 0 } };
    kern_frame fr = { fake_reg, fake_mem, &f };
    kern_task t;
    fl_error e = { 0 };
    uint64_t base = 0xffff88800f800000ull, hot = 0;
    kern_member m;
    CHECK(kern_sym_addr(k, "pcpu_hot", &hot, NULL) == 0);
    CHECK(kern_member_get(k, "pcpu_hot.current_task", &m, NULL) == 0);
    CHECK(kern_current(k, base, &fr, &t, &e) == 0);
    /* fake_mem answers every read with a pattern made from the address */
    CHECK_EQ_U64(t.task, 0xffff888000000000ull | ((base + hot + m.offset) & 0xfff8));
    CHECK(t.mm != 0);
}

/* A distribution vmlinux (Debian's -dbg package) names its sources
 * "debian/build/build_amd64_none_cloud-amd64/mm/memory.c": with the source
 * directory set to a tree of the same version (the bundled kernel's, when
 * both are 6.12.N), the line at handle_mm_fault's entry is its declaration.
 * Skipped (said, not failed) without such a vmlinux or tree. */
static void test_distro_source(void)
{
    glob_t g;
    char tree[4200];
    const char *dir = strrchr(VM, '/');
    snprintf(tree, sizeof tree, "%.*s/kernel-src", dir ? (int)(dir - VM) : 1, dir ? VM : ".");
    if (glob("/usr/lib/debug/boot/vmlinux-*", 0, NULL, &g) != 0) {
        printf("distribution source: no /usr/lib/debug/boot/vmlinux-* (linux-image-*-dbg); not checked\n");
        return;
    }
    kern *k = NULL;
    fl_error e = { 0 };
    CHECK(kern_open(&k, g.gl_pathv[0], NULL, &e) == 0);
    char rel[128], mine[128];
    kern *b = NULL;
    if (k && kern_open(&b, VM, NULL, &e) == 0) {
        kern_release(k, rel, sizeof rel);
        kern_release(b, mine, sizeof mine);
        size_t n = strspn(rel, "0123456789.");
        uint64_t a = 0;
        kern_line l;
        if (n == strspn(mine, "0123456789.") && strncmp(rel, mine, n) == 0 && access(tree, R_OK) == 0) {
            CHECK(kern_sym_addr(k, "handle_mm_fault", &a, &e) == 0 && kern_line_at(k, a, &l, &e) == 0);
            CHECK(kern_set_source_dir(k, tree, &e) == 0);
            /* The entry's line is the opening brace; the name is just above. */
            const char *t = kern_source_text(k, l.file, l.line), *decl = NULL;
            for (int i = 1; i <= 4 && !decl; i++) {
                const char *u = kern_source_text(k, l.file, l.line - i);
                decl = u && strstr(u, "handle_mm_fault(") ? u : NULL;
            }
            printf("distribution source: %s:%d via %s: %s / %s\n", l.file, l.line, tree, t ? t : "(none)",
                   decl ? decl : "(no declaration above)");
            CHECK(t != NULL);
            CHECK(decl != NULL);
        } else {
            printf("distribution source: %s is %s, the bundled tree %s; not checked\n", g.gl_pathv[0], rel, mine);
        }
        kern_close(b);
    }
    kern_close(k);
    globfree(&g);
}

int main(void)
{
    VM = getenv("FAULTLINE_KERNEL");
    if (!VM || access(VM, R_OK) != 0) {
        printf("itest_kernel_vmlinux: skipped: %s%s is not readable; build the guest with "
               "scripts/build-vm.sh build/vm (tests/run.sh sets FAULTLINE_KERNEL from it)\n",
               VM ? "the vmlinux at $FAULTLINE_KERNEL " : "$FAULTLINE_KERNEL is unset, so the vmlinux ",
               VM ? VM : "");
        return 77;
    }
    double t0 = now();
    kern *k = NULL;
    fl_error e = { 0 };
    CHECK(kern_open(&k, VM, NULL, &e) == 0);
    if (!k) {
        fprintf(stderr, "open: %s\n", e.msg);
        return check_summary("itest_kernel_vmlinux");
    }
    test_constants(k);
    test_symbols(k);
    test_offsets_vs_gdb(k);
    test_lines(k);
    test_inlined(k);
    test_current(k);
    double t1 = now();
    uint64_t sz;
    CHECK(kern_type_size(k, "struct faultline_no_such_type", &sz, &e) == -1 && e.code == FL_ENOTFOUND);
    printf("a missing type (full index of every CU): %.0f ms; %s\n", (now() - t1) * 1e3, e.msg);
    kern_close(k);
    test_distro_source();
    printf("elapsed %.2f s (including nm, gdb and addr2line)\n", now() - t0);
    return check_summary("itest_kernel_vmlinux");
}
