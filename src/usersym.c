/* usersym: a user program's function symbols, sorted, for address ->
 * symbol+offset. */
#include "faultline/usersym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct usersym_entry {
    uint64_t addr, size;
    char *name;
} usersym_entry;

struct usersym {
    usersym_entry *e;
    size_t n;
};

static int by_addr(const void *a, const void *b)
{
    const usersym_entry *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->size > y->size ? -1 : x->size < y->size; /* the sized one first */
}

/* The section of this type (SHT_SYMTAB or SHT_DYNSYM), or NULL. */
static Elf_Scn *section_of(Elf *elf, Elf64_Word type, GElf_Shdr *sh)
{
    for (Elf_Scn *s = elf_nextscn(elf, NULL); s; s = elf_nextscn(elf, s))
        if (gelf_getshdr(s, sh) && sh->sh_type == type)
            return s;
    return NULL;
}

/* Every defined STT_FUNC symbol of the section into u. */
static int read_functions(usersym *u, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, const char *path, fl_error *err)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    size_t n = sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
    u->e = calloc(n ? n : 1, sizeof *u->e);
    if (!d || !u->e)
        return fl_fail(err, d ? FL_ENOMEM : FL_EFORMAT, "cannot read the symbols of %s: %s", path,
                       d ? "out of memory" : elf_errmsg(-1));
    for (size_t i = 0; i < n; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF ||
            s.st_value == 0)
            continue;
        const char *name = elf_strptr(elf, sh->sh_link, s.st_name);
        if (!name || !name[0] || !(u->e[u->n].name = strdup(name)))
            continue;
        u->e[u->n].addr = s.st_value;
        u->e[u->n++].size = s.st_size;
    }
    qsort(u->e, u->n, sizeof *u->e, by_addr);
    return 0;
}

static int read_elf(usersym *u, int fd, const char *path, fl_error *err)
{
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF) {
        elf_end(elf);
        return fl_fail(err, FL_EFORMAT, "%s is not an ELF file: give the program's own executable", path);
    }
    GElf_Shdr sh;
    Elf_Scn *scn = section_of(elf, SHT_SYMTAB, &sh);
    if (!scn)
        scn = section_of(elf, SHT_DYNSYM, &sh);
    int rc = scn ? read_functions(u, elf, scn, &sh, path, err) : 0;
    elf_end(elf);
    return rc;
}

int usersym_open(usersym **out, const char *path, fl_error *err)
{
    *out = NULL;
    if (elf_version(EV_CURRENT) == EV_NONE)
        return fl_fail(err, FL_EFORMAT, "libelf is too old for this ELF version: %s", elf_errmsg(-1));
    usersym *u = calloc(1, sizeof *u);
    if (!u)
        return fl_fail(err, FL_ENOMEM, "out of memory for the symbols of %s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(u);
        return fl_fail(err, FL_EIO, "cannot open %s to read its symbols: %s", path, strerror(errno));
    }
    int rc = read_elf(u, fd, path, err);
    close(fd);
    if (rc < 0) {
        usersym_close(u);
        return -1;
    }
    *out = u;
    return 0;
}

void usersym_close(usersym *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->e[i].name);
    free(u->e);
    free(u);
}

size_t usersym_count(const usersym *u)
{
    return u ? u->n : 0;
}

int usersym_lookup(const usersym *u, uint64_t addr, const char **name, uint64_t *offset, fl_error *err)
{
    size_t lo = 0, hi = u ? u->n : 0; /* the last entry at or below addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u->e[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Aliases share an address: any sized one at that address holds it; one
     * of size 0 holds up to the next symbol (the last one: nothing). */
    for (size_t i = lo; i-- > 0 && u->e[i].addr == u->e[lo - 1].addr;) {
        const usersym_entry *e = &u->e[i];
        bool holds = e->size ? addr < e->addr + e->size : lo < u->n && addr < u->e[lo].addr;
        if (holds) {
            *name = e->name;
            *offset = addr - e->addr;
            return 0;
        }
    }
    return fl_fail(err, FL_ENOTFOUND, "no function of the program holds 0x%" PRIx64, addr);
}

void usersym_format(const usersym *u, uint64_t addr, char *buf, size_t cap)
{
    const char *name;
    uint64_t off;
    if (cap)
        buf[0] = '\0';
    if (u && usersym_lookup(u, addr, &name, &off, NULL) == 0)
        snprintf(buf, cap, "%s+0x%" PRIx64, name, off);
}
