/* kernel layer, ELF side: open/close, .symtab symbols, the banner.
 * DWARF is only initialised here (libdwarf reads section headers); nothing
 * in .debug_info is parsed until a question needs it. */
#include "kernel_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static Elf_Scn *find_section(Elf *elf, const char *want, GElf_Shdr *sh_out)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(s, &sh))
            continue;
        const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
        if (n && strcmp(n, want) == 0) {
            if (sh_out)
                *sh_out = sh;
            return s;
        }
    }
    return NULL;
}

static int sym_rank(unsigned char t)
{
    /* At one address prefer a function, then an object, then a bare label. */
    return t == STT_FUNC ? 0 : t == STT_OBJECT ? 1 : 2;
}

static int cmp_sym_addr(const void *a, const void *b)
{
    const ksym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    int rx = sym_rank(x->type), ry = sym_rank(y->type);
    if (rx != ry)
        return rx > ry ? -1 : 1;   /* best last: sym_at scans backwards */
    return strcmp(x->name, y->name);
}

/* qsort has no context argument in C11: sort indices via a small struct. */
typedef struct { const char *name; uint32_t idx; } name_idx;
static int cmp_name_idx(const void *a, const void *b)
{
    const name_idx *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int load_symbols(kern *k, fl_error *err)
{
    GElf_Shdr sh;
    Elf_Scn *scn = find_section(k->elf, ".symtab", &sh);
    if (!scn || sh.sh_type != SHT_SYMTAB)
        return fl_fail(err, FL_EFORMAT,
                       "%s has no symbol table (.symtab): it was stripped; use the unstripped vmlinux "
                       "from the kernel build tree", k->path);
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || sh.sh_entsize == 0)
        return fl_fail(err, FL_EFORMAT, "cannot read .symtab of %s: %s; the file may be truncated",
                       k->path, elf_errmsg(-1));
    size_t n = sh.sh_size / sh.sh_entsize;
    k->syms = calloc(n ? n : 1, sizeof *k->syms);
    if (!k->syms)
        return fl_fail(err, FL_EIO, "out of memory reading %zu symbols of %s", n, k->path);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s))
            continue;
        unsigned t = GELF_ST_TYPE(s.st_info);
        if (t != STT_FUNC && t != STT_OBJECT && t != STT_NOTYPE)
            continue;
        if (s.st_shndx == SHN_UNDEF || s.st_name == 0)
            continue;
        const char *nm = elf_strptr(k->elf, sh.sh_link, s.st_name);
        if (!nm || !*nm)
            continue;
        k->syms[m++] = (ksym){ .addr = s.st_value, .size = s.st_size, .name = nm, .type = (unsigned char)t };
    }
    k->nsyms = m;
    qsort(k->syms, m, sizeof *k->syms, cmp_sym_addr);
    name_idx *tmp = malloc((m ? m : 1) * sizeof *tmp);
    k->by_name = malloc((m ? m : 1) * sizeof *k->by_name);
    if (!tmp || !k->by_name) {
        free(tmp);
        return fl_fail(err, FL_EIO, "out of memory indexing symbols of %s", k->path);
    }
    for (size_t i = 0; i < m; i++)
        tmp[i] = (name_idx){ k->syms[i].name, (uint32_t)i };
    qsort(tmp, m, sizeof *tmp, cmp_name_idx);
    for (size_t i = 0; i < m; i++)
        k->by_name[i] = tmp[i].idx;
    free(tmp);
    return 0;
}

static const ksym *sym_by_name(kern *k, const char *name)
{
    size_t lo = 0, hi = k->nsyms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(k->syms[k->by_name[mid]].name, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < k->nsyms && strcmp(k->syms[k->by_name[lo]].name, name) == 0) {
        /* Prefer a sized function/object over a label of the same name. */
        const ksym *best = &k->syms[k->by_name[lo]];
        for (size_t i = lo + 1; i < k->nsyms && strcmp(k->syms[k->by_name[i]].name, name) == 0; i++) {
            const ksym *s = &k->syms[k->by_name[i]];
            if (sym_rank(s->type) < sym_rank(best->type))
                best = s;
        }
        return best;
    }
    return NULL;
}

/* Bytes of the file backing virtual address [addr, addr+len), or NULL. */
static const void *vaddr_bytes(kern *k, uint64_t addr, size_t len)
{
    for (Elf_Scn *s = elf_nextscn(k->elf, NULL); s; s = elf_nextscn(k->elf, s)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_ALLOC))
            continue;
        if (addr < sh.sh_addr || addr - sh.sh_addr + len > sh.sh_size)
            continue;
        Elf_Data *d = elf_getdata(s, NULL);
        if (!d || !d->d_buf || addr - sh.sh_addr + len > d->d_size)
            return NULL;
        return (const char *)d->d_buf + (addr - sh.sh_addr);
    }
    return NULL;
}

static void load_banner(kern *k)
{
    const ksym *s = sym_by_name(k, "linux_banner");
    if (!s || s->size == 0)
        return;
    size_t len = s->size < sizeof k->banner ? (size_t)s->size : sizeof k->banner - 1;
    const char *p = vaddr_bytes(k, s->addr, len);
    if (!p)
        return;
    memcpy(k->banner, p, len);
    k->banner[len] = '\0';
    size_t l = strlen(k->banner);
    while (l && (k->banner[l - 1] == '\n' || k->banner[l - 1] == '\r'))
        k->banner[--l] = '\0';
}

int kern_open(kern **out, const char *vmlinux, const char *src_root, fl_error *err)
{
    *out = NULL;
    if (!vmlinux || !*vmlinux)
        return fl_fail(err, FL_EUSAGE, "no vmlinux path given; pass the kernel's vmlinux (ELF with DWARF)");
    kern *k = calloc(1, sizeof *k);
    if (!k)
        return fl_fail(err, FL_EIO, "out of memory opening %s", vmlinux);
    k->fd = k->dfd = -1;
    k->path = strdup(vmlinux);
    k->src_root = src_root ? strdup(src_root) : NULL;
    {
        /* vmlinux is linked at the top of its build tree, whose absolute
         * path prefixes every source path in DWARF. */
        char *copy = strdup(vmlinux), *real = copy ? realpath(copy, NULL) : NULL;
        char *slash = real ? strrchr(real, '/') : NULL;
        if (slash)
            *slash = '\0';
        k->tree_root = real;
        free(copy);
    }
    if (!k->path || (src_root && !k->src_root)) {
        kern_close(k);
        return fl_fail(err, FL_EIO, "out of memory opening %s", vmlinux);
    }
    k->fd = open(vmlinux, O_RDONLY | O_CLOEXEC);
    if (k->fd < 0) {
        int e = errno;
        kern_close(k);
        if (e == ENOENT)
            return fl_fail(err, FL_ENOTFOUND, "kernel image %s does not exist; build the kernel "
                           "(make vm) or point FAULTLINE_KERNEL at its vmlinux", vmlinux);
        return fl_fail(err, FL_EIO, "cannot open kernel image %s: %s", vmlinux, strerror(e));
    }
    struct stat st;
    if (fstat(k->fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "%s is not a regular file; pass the path of vmlinux itself", vmlinux);
    }
    if (elf_version(EV_CURRENT) == EV_NONE) {
        kern_close(k);
        return fl_fail(err, FL_EIO, "libelf refuses to initialise (%s)", elf_errmsg(-1));
    }
    /* MMAP: section data is used in place, so the 52 MB file costs page
     * cache, not heap. */
    k->elf = elf_begin(k->fd, ELF_C_READ_MMAP, NULL);
    if (!k->elf || elf_kind(k->elf) != ELF_K_ELF) {
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "%s is not an ELF file; pass the uncompressed vmlinux, "
                       "not bzImage or a compressed image", vmlinux);
    }
    if (gelf_getclass(k->elf) != ELFCLASS64) {
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "%s is a 32-bit ELF file; faultline needs the 64-bit "
                       "x86-64 vmlinux", vmlinux);
    }
    GElf_Ehdr eh;
    if (!gelf_getehdr(k->elf, &eh) || eh.e_machine != EM_X86_64) {
        int machine = gelf_getehdr(k->elf, &eh) ? eh.e_machine : -1;
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "%s is not an x86-64 ELF file (e_machine %d); faultline "
                       "needs the x86-64 vmlinux the guest runs", vmlinux, machine);
    }
    if (load_symbols(k, err) != 0) {
        kern_close(k);
        return -1;
    }
    if (!find_section(k->elf, ".debug_info", NULL)) {
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "%s has no DWARF (.debug_info section): rebuild the kernel with "
                       "CONFIG_DEBUG_INFO=y (CONFIG_DEBUG_INFO_DWARF5) and do not strip it", vmlinux);
    }
    /* libdwarf reads through its own fd (its ELF reader, not our Elf*). */
    k->dfd = open(vmlinux, O_RDONLY | O_CLOEXEC);
    Dwarf_Error de = NULL;
    if (k->dfd < 0 || dwarf_init_b(k->dfd, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &k->dbg, &de) != DW_DLV_OK) {
        char m[200];
        kd_errmsg(k, de, m, sizeof m);
        k->dbg = NULL;
        kern_close(k);
        return fl_fail(err, FL_EFORMAT, "libdwarf cannot read the DWARF of %s (%s); rebuild with "
                       "CONFIG_DEBUG_INFO_DWARF5=y", vmlinux, m);
    }
    load_banner(k);
    *out = k;
    return 0;
}

void kern_close(kern *k)
{
    if (!k)
        return;
    kl_free(k);
    if (k->dbg) {
        if (k->aranges) {
            for (Dwarf_Signed i = 0; i < k->naranges; i++)
                dwarf_dealloc(k->dbg, k->aranges[i], DW_DLA_ARANGE);
            dwarf_dealloc(k->dbg, k->aranges, DW_DLA_LIST);
        }
        if (k->fdes || k->cies)
            dwarf_fde_cie_list_dealloc(k->dbg, k->cies, k->ncies, k->fdes, k->nfdes);
        dwarf_finish(k->dbg, NULL);
    }
    if (k->elf)
        elf_end(k->elf);
    if (k->fd >= 0)
        close(k->fd);
    if (k->dfd >= 0)
        close(k->dfd);
    free(k->syms);
    free(k->by_name);
    free(k->cus);
    free(k->ix);
    free(k->path);
    free(k->src_root);
    free(k->tree_root);
    free(k);
}

const char *kern_banner(kern *k)
{
    return k ? k->banner : "";
}

int kern_sym_addr(kern *k, const char *name, uint64_t *addr, fl_error *err)
{
    const ksym *s = sym_by_name(k, name);
    if (!s)
        return fl_fail(err, FL_ENOTFOUND, "symbol '%s' is not in the symbol table of %s; check the "
                       "name (it may be inlined: try its inlined instances)", name, k->path);
    *addr = s->addr;
    return 0;
}

int kern_sym_size(kern *k, const char *name, uint64_t *size, fl_error *err)
{
    const ksym *s = sym_by_name(k, name);
    if (!s)
        return fl_fail(err, FL_ENOTFOUND, "symbol '%s' is not in the symbol table of %s; check the name",
                       name, k->path);
    *size = s->size;
    return 0;
}

bool kern_sym_at(kern *k, uint64_t addr, const char **name, uint64_t *offset)
{
    if (!k || k->nsyms == 0)
        return false;
    size_t lo = 0, hi = k->nsyms;   /* first symbol with addr > target */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (k->syms[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    /* The nearest sized symbol that covers addr wins; else the nearest
     * label (asm entry points are often NOTYPE with size 0). Looking back a
     * bounded number of entries keeps this O(log n). */
    const ksym *label = NULL;
    for (size_t i = lo, steps = 0; i > 0 && steps < 64; i--, steps++) {
        const ksym *s = &k->syms[i - 1];
        if (s->size && addr < s->addr + s->size) {
            *name = s->name;
            *offset = addr - s->addr;
            return true;
        }
        if (!s->size && !label)
            label = s;
        if (s->size && !label)
            break;  /* a sized symbol ends before addr: the gap belongs to nobody */
    }
    if (label && label->type != STT_OBJECT) {
        *name = label->name;
        *offset = addr - label->addr;
        return true;
    }
    return false;
}

int kern_func_range(kern *k, const char *func, uint64_t *lo, uint64_t *hi, fl_error *err)
{
    const ksym *s = sym_by_name(k, func);
    if (!s)
        return fl_fail(err, FL_ENOTFOUND, "function '%s' has no symbol in %s; if it is inlined, "
                       "use its inlined instances", func, k->path);
    *lo = s->addr;
    *hi = s->addr + (s->size ? s->size : 1);
    return 0;
}

/* Mirrors kernel/kprobes.c: populate_kprobe_blacklist() adds each function
 * named by NOKPROBE_SYMBOL (the _kprobe_blacklist array, expanded to the
 * function's size), the __kprobes and noinstr text, and on x86 the entry
 * text; within_kprobe_blacklist() refuses any address in them (-EINVAL). */
bool kern_kprobe_refusal(kern *k, uint64_t addr, char *why, size_t cap)
{
    static const struct { const char *start, *end, *what; } areas[] = {
        { "__kprobes_text_start", "__kprobes_text_end", "in .kprobes.text (marked __kprobes)" },
        { "__noinstr_text_start", "__noinstr_text_end", "in .noinstr.text (marked noinstr)" },
        { "__entry_text_start", "__entry_text_end", "in .entry.text (x86 entry code)" },
    };
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        const ksym *lo = sym_by_name(k, areas[i].start), *hi = sym_by_name(k, areas[i].end);
        if (lo && hi && addr >= lo->addr && addr < hi->addr) {
            snprintf(why, cap, "%s", areas[i].what);
            return true;
        }
    }
    const ksym *b = sym_by_name(k, "__start_kprobe_blacklist"), *e = sym_by_name(k, "__stop_kprobe_blacklist");
    if (!b || !e || e->addr <= b->addr)
        return false;
    size_t n = (size_t)(e->addr - b->addr) / sizeof(uint64_t);
    const unsigned char *list = vaddr_bytes(k, b->addr, n * sizeof(uint64_t));
    for (size_t i = 0; list && i < n; i++) {
        uint64_t fn;
        memcpy(&fn, list + i * sizeof fn, sizeof fn);
        const char *name;
        uint64_t off, size = 0;
        if (addr < fn || !kern_sym_at(k, fn, &name, &off) || off != 0 ||
            kern_sym_size(k, name, &size, NULL) < 0 || addr >= fn + (size ? size : 1))
            continue;
        snprintf(why, cap, "NOKPROBE_SYMBOL(%s)", name);
        return true;
    }
    return false;
}
