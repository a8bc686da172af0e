/* kernel layer, ELF side (the bottom layer): the file mapped once through
 * libelf, checked (ELF class, machine, truncation, .symtab, .debug_info),
 * its sections served to libdwarf without a copy, .symtab symbols and the
 * banner. */
#include "kernel_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* By-name index: open addressing over symbol indices + 1 (0 is empty);
 * hashing, not sorting, because sorting 200,000 names was most of the
 * time of opening a distribution vmlinux. */
static int index_names(kern *k)
{
    size_t cap = 1024;
    while (cap < 2 * k->nsyms)
        cap *= 2;
    k->by_name = calloc(cap, sizeof *k->by_name);
    if (!k->by_name)
        return -1;
    k->name_cap = cap;
    for (size_t i = 0; i < k->nsyms; i++) {
        size_t j = str_hash(k->syms[i].name) & (cap - 1);
        while (k->by_name[j])
            j = (j + 1) & (cap - 1);
        k->by_name[j] = (uint32_t)i + 1;
    }
    return 0;
}

static ksec *section_named(kern *k, const char *name)
{
    for (size_t i = 0; i < k->nsecs; i++)
        if (strcmp(k->secs[i].name, name) == 0)
            return &k->secs[i];
    return NULL;
}

static int load_symbols(kern *k, fl_error *err)
{
    ksec *sec = section_named(k, ".symtab");
    if (!sec || sec->sh.sh_type != SHT_SYMTAB)
        return fl_fail(err, FL_EFORMAT,
                       "%s has no symbol table (.symtab): it was stripped; use the unstripped vmlinux "
                       "from the kernel build tree", k->path);
    GElf_Shdr sh = sec->sh;
    Elf_Data *d = elf_getdata(sec->scn, NULL);
    if (!d || sh.sh_entsize == 0)
        return ke_fail_elf(k, err, "cannot read .symtab");
    size_t n = sh.sh_size / sh.sh_entsize;
    k->syms = calloc(n ? n : 1, sizeof *k->syms);
    if (!k->syms)
        return fl_fail(err, FL_ENOMEM, "out of memory reading %zu symbols of %s", n, k->path);
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
    if (index_names(k) != 0)
        return fl_fail(err, FL_ENOMEM, "out of memory indexing symbols of %s", k->path);
    return 0;
}

/* Of several symbols with one name, a sized function/object beats a label,
 * then the lowest address wins. */
static const ksym *sym_by_name(kern *k, const char *name)
{
    if (!k->name_cap)
        return NULL;
    const ksym *best = NULL;
    for (size_t j = str_hash(name) & (k->name_cap - 1); k->by_name[j]; j = (j + 1) & (k->name_cap - 1)) {
        const ksym *s = &k->syms[k->by_name[j] - 1];
        if (strcmp(s->name, name) != 0)
            continue;
        if (!best || sym_rank(s->type) < sym_rank(best->type) ||
            (sym_rank(s->type) == sym_rank(best->type) && s < best))
            best = s;
    }
    return best;
}

/* Bytes of the file backing virtual address [addr, addr+len), or NULL. */
static const void *vaddr_bytes(kern *k, uint64_t addr, size_t len)
{
    for (size_t i = 0; i < k->nsecs; i++) {
        const GElf_Shdr sh = k->secs[i].sh;
        if (sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_ALLOC))
            continue;
        if (addr < sh.sh_addr || addr - sh.sh_addr + len > sh.sh_size)
            continue;
        Elf_Data *d = elf_getdata(k->secs[i].scn, NULL);
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

int ke_fail_elf(kern *k, fl_error *err, const char *what)
{
    return fl_fail(err, FL_EFORMAT, "%s: %s: %s (libelf)", k->path, what, elf_errmsg(-1));
}

static int truncated(kern *k, uint64_t need, fl_error *err)
{
    return fl_fail(err, FL_EFORMAT, "%s is truncated: its ELF headers describe %llu bytes but the file has "
                   "%llu; copy or download it again", k->path, (unsigned long long)need,
                   (unsigned long long)k->file_size);
}

/* The ELF header, checked before libelf sees the file: libelf refuses a
 * file whose section headers are cut off, and that deserves its own name. */
static int check_header(kern *k, fl_error *err)
{
    unsigned char id[EI_NIDENT] = { 0 };
    Elf64_Ehdr eh;
    ssize_t n = pread(k->fd, &eh, sizeof eh, 0);
    if (n >= EI_NIDENT)
        memcpy(id, &eh, EI_NIDENT);
    if (n < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
        return fl_fail(err, FL_EFORMAT, "%s is not an ELF file; pass the uncompressed vmlinux, "
                       "not bzImage or a compressed image", k->path);
    if (id[EI_CLASS] == ELFCLASS32)
        return fl_fail(err, FL_EFORMAT, "%s is a 32-bit ELF file; faultline needs the 64-bit "
                       "x86-64 vmlinux", k->path);
    if (id[EI_CLASS] != ELFCLASS64 || id[EI_DATA] != ELFDATA2LSB)
        return fl_fail(err, FL_EFORMAT, "%s is not a little-endian 64-bit ELF file; faultline needs the "
                       "x86-64 vmlinux", k->path);
    if ((size_t)n < sizeof eh)
        return truncated(k, sizeof eh, err);
    uint64_t need = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
    uint64_t ph = eh.e_phoff + (uint64_t)eh.e_phnum * eh.e_phentsize;
    if (ph > need)
        need = ph;
    if (need > k->file_size)
        return truncated(k, need, err);
    return 0;
}

/* Index every section: DWARF names (".zdebug_x" served as ".debug_x"), and
 * a check that each section's bytes are in the file. */
static int load_sections(kern *k, fl_error *err)
{
    size_t shstrndx, n;
    if (elf_getshdrnum(k->elf, &n) != 0 || elf_getshdrstrndx(k->elf, &shstrndx) != 0)
        return ke_fail_elf(k, err, "cannot read the section headers");
    k->secs = calloc(n ? n : 1, sizeof *k->secs);
    if (!k->secs)
        return fl_fail(err, FL_ENOMEM, "out of memory reading the %zu section headers of %s", n, k->path);
    k->nsecs = n;
    for (size_t i = 0; i < n; i++) {
        ksec *s = &k->secs[i];
        s->scn = elf_getscn(k->elf, i);
        if (!s->scn || !gelf_getshdr(s->scn, &s->sh))
            return ke_fail_elf(k, err, "cannot read a section header");
        if (s->sh.sh_type != SHT_NOBITS && s->sh.sh_offset + s->sh.sh_size > k->file_size)
            return truncated(k, s->sh.sh_offset + s->sh.sh_size, err);
        const char *nm = i ? elf_strptr(k->elf, shstrndx, s->sh.sh_name) : "";
        s->name = nm ? nm : "";
        if (strncmp(s->name, ".zdebug_", 8) == 0) {
            size_t len = strlen(s->name);
            if (!(s->own_name = malloc(len))) /* one byte shorter, plus the NUL */
                return fl_fail(err, FL_ENOMEM, "out of memory reading the section names of %s", k->path);
            snprintf(s->own_name, len, ".%s", s->name + 2);
            s->name = s->own_name;
        }
    }
    return 0;
}

int ke_open(kern *k, fl_error *err)
{
    k->fd = open(k->path, O_RDONLY | O_CLOEXEC);
    if (k->fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return fl_fail(err, FL_ENOTFOUND, "kernel image %s does not exist; build the kernel "
                           "(make vm) or point FAULTLINE_KERNEL at its vmlinux", k->path);
        return fl_fail(err, FL_EIO, "cannot open kernel image %s: %s", k->path, strerror(e));
    }
    struct stat st;
    if (fstat(k->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return fl_fail(err, FL_EFORMAT, "%s is not a regular file; pass the path of vmlinux itself", k->path);
    k->file_size = (uint64_t)st.st_size;
    if (check_header(k, err) != 0)
        return -1;
    if (elf_version(EV_CURRENT) == EV_NONE)
        return fl_fail(err, FL_EIO, "libelf refuses to initialise (%s)", elf_errmsg(-1));
    /* MMAP: section data is used in place, so the file costs page cache
     * (only the pages a lookup touches), not heap. */
    k->elf = elf_begin(k->fd, ELF_C_READ_MMAP, NULL);
    if (!k->elf || elf_kind(k->elf) != ELF_K_ELF)
        return ke_fail_elf(k, err, "cannot be read as an ELF file");
    GElf_Ehdr eh;
    if (!gelf_getehdr(k->elf, &eh))
        return ke_fail_elf(k, err, "cannot read the ELF header");
    if (eh.e_machine != EM_X86_64)
        return fl_fail(err, FL_EFORMAT, "%s is not an x86-64 ELF file (e_machine %d); faultline "
                       "needs the x86-64 vmlinux the guest runs", k->path, eh.e_machine);
    if (load_sections(k, err) != 0 || load_symbols(k, err) != 0)
        return -1;
    if (!section_named(k, ".debug_info"))
        return fl_fail(err, FL_EFORMAT, "%s has no DWARF (.debug_info section): rebuild the kernel with "
                       "CONFIG_DEBUG_INFO=y (CONFIG_DEBUG_INFO_DWARF5) and do not strip it", k->path);
    load_banner(k);
    return 0;
}

void ke_free(kern *k)
{
    for (size_t i = 0; i < k->nsecs; i++)
        free(k->secs[i].own_name);
    free(k->secs);
    k->secs = NULL;
    if (k->elf)
        elf_end(k->elf);   /* also frees buffers elf_compress decompressed */
    k->elf = NULL;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->syms);
    free(k->by_name);
    k->syms = NULL;
    k->by_name = NULL;
    k->name_cap = 0;
}

/* ---- libdwarf's object access: sections straight from the mapping ---- */

static uint64_t dwarf_size(kern *k, ksec *s)
{
    if (s->sh.sh_flags & SHF_COMPRESSED) {
        GElf_Chdr ch;
        if (gelf_getchdr(s->scn, &ch))
            return ch.ch_size;
    } else if (s->own_name && s->sh.sh_size >= 12) {
        /* GNU .zdebug_*: "ZLIB" and the size, 8 bytes big-endian. */
        const unsigned char *p = (const unsigned char *)elf_rawfile(k->elf, NULL) + s->sh.sh_offset;
        if (memcmp(p, "ZLIB", 4) == 0) {
            uint64_t v = 0;
            for (int i = 4; i < 12; i++)
                v = v << 8 | p[i];
            return v;
        }
    }
    return s->sh.sh_size;
}

static int dw_section_info(void *obj, Dwarf_Half i, Dwarf_Obj_Access_Section *out, int *error)
{
    kern *k = obj;
    (void)error;
    if (i >= k->nsecs)
        return DW_DLV_NO_ENTRY;
    ksec *s = &k->secs[i];
    *out = (Dwarf_Obj_Access_Section){ .addr = s->sh.sh_addr, .type = s->sh.sh_type,
                                       .size = s->sh.sh_type == SHT_NOBITS ? 0 : dwarf_size(k, s),
                                       .name = s->name, .link = s->sh.sh_link, .info = s->sh.sh_info,
                                       .entrysize = s->sh.sh_entsize };
    return DW_DLV_OK;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* DWARF 5 .debug_rnglists/.debug_loclists unit headers hold together.
 * libdwarf 20210528 frees twice when they do not (found by fuzz_dwarf), so
 * such a section is refused before libdwarf parses it. */
static bool lists_sane(const unsigned char *p, uint64_t size)
{
    for (uint64_t off = 0; off < size;) {
        if (size - off < 4)
            return false;
        uint64_t len = le(p + off, 4), hdr = 4, offsz = 4;
        if (len == 0xffffffff) {
            if (size - off < 12)
                return false;
            len = le(p + off + 4, 8);
            hdr = 12;
            offsz = 8;
        } else if (len >= 0xfffffff0) {
            return false;
        }
        if (len < 8 || len > size - off - hdr)
            return false;
        const unsigned char *h = p + off + hdr;
        uint64_t ver = le(h, 2), asz = h[2], seg = h[3], count = le(h + 4, 4);
        if (ver != 5 || (asz != 4 && asz != 8) || seg != 0 || count * offsz > len - 8)
            return false;
        off += hdr + len;
    }
    return true;
}

/* Decompressed once (into libelf's buffer, freed by elf_end); every other
 * section is the mapping itself. */
static int dw_load_section(void *obj, Dwarf_Half i, Dwarf_Small **data, int *error)
{
    kern *k = obj;
    if (i >= k->nsecs || k->secs[i].sh.sh_type == SHT_NOBITS || k->secs[i].sh.sh_size == 0)
        return DW_DLV_NO_ENTRY;
    ksec *s = &k->secs[i];
    if (!s->loaded) {
        int r = 0;
        if (s->sh.sh_flags & SHF_COMPRESSED)
            r = elf_compress(s->scn, 0, 0);
        else if (s->own_name)
            r = elf_compress_gnu(s->scn, 0, 0);
        if (r < 0) {
            *error = DW_DLE_ZLIB_UNCOMPRESS_ERROR;
            return DW_DLV_ERROR;
        }
        s->loaded = true;
    }
    Elf_Data *d = elf_getdata(s->scn, NULL);
    if (!d || !d->d_buf || d->d_size < dwarf_size(k, s)) {
        *error = DW_DLE_MDE;
        return DW_DLV_ERROR;
    }
    bool rng = strcmp(s->name, ".debug_rnglists") == 0, loc = strcmp(s->name, ".debug_loclists") == 0;
    if ((rng || loc) && !lists_sane(d->d_buf, d->d_size)) {
        *error = rng ? DW_DLE_RNGLISTS_ERROR : DW_DLE_LOCLISTS_ERROR;
        return DW_DLV_ERROR;
    }
    *data = d->d_buf;
    return DW_DLV_OK;
}

static Dwarf_Endianness dw_byte_order(void *obj)
{
    (void)obj;
    return DW_OBJECT_LSB;   /* check_header accepts only ELFDATA2LSB */
}

static Dwarf_Small dw_eight(void *obj)
{
    (void)obj;
    return 8;
}

static Dwarf_Unsigned dw_section_count(void *obj)
{
    return ((kern *)obj)->nsecs;
}

static const Dwarf_Obj_Access_Methods dw_methods = {
    .get_section_info = dw_section_info,
    .get_byte_order = dw_byte_order,
    .get_length_size = dw_eight,
    .get_pointer_size = dw_eight,
    .get_section_count = dw_section_count,
    .load_section = dw_load_section,
    .relocate_a_section = NULL,   /* vmlinux is linked: nothing to relocate */
};

void ke_release(kern *k, const char *section, uint64_t lo, uint64_t hi)
{
    ksec *s = section_named(k, section);
    if (!s || (s->sh.sh_flags & SHF_COMPRESSED) || s->own_name || hi > s->sh.sh_size || lo >= hi)
        return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t base = (uintptr_t)elf_rawfile(k->elf, NULL) + s->sh.sh_offset;
    uintptr_t a = (base + lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = (base + hi) & ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

Dwarf_Obj_Access_Interface *ke_dwarf_access(kern *k)
{
    k->dwarf_if.object = k;
    k->dwarf_if.methods = &dw_methods;
    return &k->dwarf_if;
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
