/* libFuzzer: the kernel layer on mutated small ELF files (seeded with the
 * fixture build/fixtures/kfix and its compressed-DWARF copy): open, then
 * every kind of lookup the tools make (symbols, types, members, enums,
 * lines, inlined instances, variables, `current`). Anything but a crash, a
 * hang or a leak is fine: bad input must fail with a sentence. */
#include "faultline/kernel.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int reg(void *ctx, int regno, uint64_t *v, fl_error *err)
{
    (void)ctx;
    (void)err;
    *v = 0x7ff000 + (uint64_t)regno * 8;
    return 0;
}

static int mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    (void)ctx;
    (void)addr;
    (void)err;
    memset(buf, 0x5a, len);
    return 0;
}

static void check_sentence(const fl_error *e)
{
    if (e->code == FL_OK || e->msg[0] == '\0')
        abort();   /* a failure must say what failed */
}

static void types(kern *k)
{
    fl_error e = { 0 };
    uint64_t sz;
    kern_member m, *list = NULL;
    kern_enumerator *en = NULL;
    size_t n = 0;
    if (kern_type_size(k, "struct kf_fault", &sz, &e) != 0)
        check_sentence(&e);
    if (kern_member_get(k, "kf_fault.inner.y", &m, &e) != 0)
        check_sentence(&e);
    if (kern_struct_members(k, "kf_fault", &list, &n, &e) == 0)
        free(list);
    if (kern_enum_list(k, "kf_fault_flag", &en, &n, &e) == 0)
        free(en);
    int64_t v;
    kern_enum_value(k, "kf_signed", "KF_NEG", &v, &e);
}

static void code(kern *k)
{
    fl_error e = { 0 };
    kern_frame fr = { reg, mem, NULL };
    const char *funcs[] = { "kf_work", "kf_frame", "kf_alpha", "kf_beta", "main" };
    for (size_t i = 0; i < sizeof funcs / sizeof *funcs; i++) {
        uint64_t lo, hi, v;
        if (kern_func_range(k, funcs[i], &lo, &hi, &e) != 0)
            continue;
        kern_line l;
        if (kern_line_at(k, lo, &l, &e) == 0 && l.file)
            kern_source_text(k, l.file, l.line);
        const char *name;
        uint64_t off;
        char why[128];
        kern_sym_at(k, lo + 1, &name, &off);
        kern_kprobe_refusal(k, lo, why, sizeof why);
        kern_var_value(k, funcs[i], "n", lo, &fr, &v, &e);
        kern_var_addr(k, "kf_frame", "buf", lo, &fr, &v, &e);
    }
    uint64_t *pcs = NULL;
    size_t n = 0;
    if (kern_inlined_entries(k, "kf_step", &pcs, &n, &e) == 0) {
        for (size_t i = 0; i < n && i < 8; i++) {
            kern_varloc *loc = NULL;
            uint64_t v;
            if (kern_var_locate(k, "kf_step", "f", pcs[i], &loc, &e) == 0)
                kern_varloc_eval(loc, &fr, &v, &e);
            kern_varloc_free(loc);
        }
        free(pcs);
    }
    kern_task t;
    kern_current(k, 0x1000, &fr, &t, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_dwarf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    kern *k = NULL;
    fl_error e = { 0 };
    if (kern_open(&k, path, NULL, &e) == 0) {
        kern_banner(k);
        types(k);
        code(k);
        kern_close(k);
    } else {
        check_sentence(&e);
        if (k)
            abort();
    }
    close(fd);
    return 0;
}
