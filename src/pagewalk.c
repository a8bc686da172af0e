/* pagewalk: the CPU's walk of one linear address. See pagewalk.h. */
#include "faultline/pagewalk.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const level_names[PW_LEVELS] = { "PML5E", "PML4E", "PDPTE", "PDE", "PTE" };

const char *pw_level_name(int level)
{
    return level >= 0 && level < PW_LEVELS ? level_names[level] : "?";
}

/* What an entry is, for which bits it has (SDM vol. 3, 4.5.5). */
enum entry_kind {
    K_TOP = 1,    /* PML5E, PML4E: always references a table (table 4-14, 4-15) */
    K_TABLE = 2,  /* PDPTE, PDE with PS clear (table 4-17, 4-19) */
    K_LARGE = 4,  /* PDPTE, PDE with PS set: 1 GiB / 2 MiB page (table 4-16, 4-18) */
    K_PTE = 8,    /* PTE: 4 KiB page (table 4-20) */
    K_ALL = 15,
};

/* The bits of paging-structure entries, Intel SDM vol. 3A, section 4.5,
 * tables 4-14 (PML5E), 4-15 (PML4E), 4-16 (PDPTE, 1-GByte page), 4-17 (PDPTE
 * referencing a page directory), 4-18 (PDE, 2-MByte page), 4-19 (PDE
 * referencing a page table), 4-20 (PTE, 4-KByte page). Bit 7 is PS in a
 * PDPTE/PDE but PAT in a PTE; in a large page PAT moves to bit 12. D and G
 * exist only in entries that map a page. */
static const struct entry_bit {
    uint64_t mask;
    const char *name;
    unsigned kinds;
} entry_bits[] = {
    { PW_P, "P", K_ALL },            /* present */
    { PW_RW, "RW", K_ALL },          /* read/write: 0 = writes not allowed */
    { PW_US, "US", K_ALL },          /* user/supervisor: 0 = no user-mode access */
    { PW_PWT, "PWT", K_ALL },        /* page-level write-through */
    { PW_PCD, "PCD", K_ALL },        /* page-level cache disable */
    { PW_A, "A", K_ALL },            /* accessed */
    { PW_D, "D", K_LARGE | K_PTE },  /* dirty */
    { PW_PS, "PS", K_LARGE },        /* page size: this entry maps a page */
    { 1ull << 7, "PAT", K_PTE },     /* memory type (with PCD, PWT) */
    { PW_G, "G", K_LARGE | K_PTE },  /* global */
    { 1ull << 12, "PAT", K_LARGE },  /* memory type of a large page */
};

/* Protection key: bits 62:59 of entries that map a page, when CR4.PKE. */
#define PK_SHIFT 59
#define PK_MASK (0xfull << PK_SHIFT)

static unsigned kind_of(int level, uint64_t raw)
{
    if (level <= PW_PML4)
        return K_TOP;
    if (level == PW_PT)
        return K_PTE;
    return (raw & PW_PS) ? K_LARGE : K_TABLE;
}

static void append(char *buf, size_t cap, size_t *used, const char *s)
{
    int n = snprintf(buf + *used, cap - *used, "%s%s", *used ? "|" : "", s);
    if (n > 0)
        *used = *used + (size_t)n < cap ? *used + (size_t)n : cap - 1;
}

void pw_format_bits(int level, uint64_t raw, uint64_t cr4, uint64_t efer, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (!(raw & PW_P)) {
        snprintf(buf, cap, "not present");
        return;
    }
    unsigned kind = kind_of(level, raw);
    size_t used = 0;
    for (size_t i = 0; i < sizeof entry_bits / sizeof entry_bits[0]; i++)
        if ((entry_bits[i].kinds & kind) && (raw & entry_bits[i].mask))
            append(buf, cap, &used, entry_bits[i].name);
    if ((kind & (K_LARGE | K_PTE)) && (cr4 & PW_CR4_PKE) && (raw & PK_MASK)) {
        char pk[16];
        snprintf(pk, sizeof pk, "PK=%u", (unsigned)((raw & PK_MASK) >> PK_SHIFT));
        append(buf, cap, &used, pk);
    }
    if ((efer & PW_EFER_NXE) && (raw & PW_NX))
        append(buf, cap, &used, "NX");
}

/* Canonical: the bits above the top translated bit copy it (SDM vol. 1, 3.3.7.1). */
static bool canonical(uint64_t va, int levels)
{
    int top = levels == 5 ? 56 : 47;
    int64_t s = (int64_t)(va << (63 - top)) >> (63 - top);
    return (uint64_t)s == va;
}

static void leaf_rights(pw_walk *w, const pw_entry *leaf)
{
    w->mapped = true;
    w->page_size = leaf->page_size;
    w->frame = leaf->next;
    w->phys = leaf->next | (w->va & (leaf->page_size - 1));
    w->writable = w->user = true;
    w->nx = false;
    for (int i = 0; i < w->count; i++) {
        w->writable = w->writable && (w->e[i].raw & PW_RW);
        w->user = w->user && (w->e[i].raw & PW_US);
        w->nx = w->nx || ((w->efer & PW_EFER_NXE) && (w->e[i].raw & PW_NX));
    }
    w->accessed = leaf->raw & PW_A;
    w->dirty = leaf->raw & PW_D;
    w->global = leaf->raw & PW_G;
}

static const char *size_name(uint64_t size)
{
    return size == (1ull << 30) ? "1 GiB" : size == (1ull << 21) ? "2 MiB" : "4 KiB";
}

int pw_walk_va(pw_phys_fn read, void *ctx, uint64_t cr3, uint64_t cr4, uint64_t efer, uint64_t va,
               pw_walk *w, fl_error *err)
{
    memset(w, 0, sizeof *w);
    w->va = va;
    w->cr3 = cr3;
    w->cr4 = cr4;
    w->efer = efer;
    w->levels = (cr4 & PW_CR4_LA57) ? 5 : 4;
    w->end_level = -1;
    if (!canonical(va, w->levels))
        return fl_fail(err, FL_EUSAGE, "0x%" PRIx64 " is not a canonical address under %d-level paging", va,
                       w->levels);
    /* CR3 bits 51:12 locate the top table (SDM vol. 3, table 4-12/4-13);
     * the low bits are PCID or PWT/PCD. */
    uint64_t table = cr3 & PW_ADDR_MASK;
    for (int level = w->levels == 5 ? PW_PML5 : PW_PML4; level < PW_LEVELS; level++) {
        /* Each level translates 9 bits: 56:48, 47:39, 38:30, 29:21, 20:12. */
        unsigned shift = 12 + 9 * (unsigned)(PW_PT - level);
        pw_entry *e = &w->e[w->count++];
        e->level = level;
        e->index = (unsigned)((va >> shift) & 0x1ff);
        e->table = table;
        e->addr = table + 8ull * e->index;
        if (read(ctx, e->addr, &e->raw, err) < 0)
            return fl_error_prefix(err, "reading the %s of 0x%" PRIx64 " at physical 0x%" PRIx64,
                                   level_names[level], va, e->addr);
        e->present = e->raw & PW_P;
        pw_format_bits(level, e->raw, cr4, efer, e->bits, sizeof e->bits);
        w->end_level = level;
        if (!e->present) {
            snprintf(w->ended, sizeof w->ended, "not present at %s", level_names[level]);
            return 0;
        }
        e->leaf = level == PW_PT || (level >= PW_PDPT && (e->raw & PW_PS));
        if (e->leaf) {
            e->page_size = 1ull << shift;
            e->next = e->raw & PW_ADDR_MASK & ~(e->page_size - 1);
            leaf_rights(w, e);
            snprintf(w->ended, sizeof w->ended, "%s page at %s", size_name(e->page_size), level_names[level]);
            return 0;
        }
        e->next = e->raw & PW_ADDR_MASK;
        table = e->next;
    }
    return 0; /* not reached: the PTE level always ends the walk */
}

static void say(char *buf, size_t cap, size_t *used, const char *part)
{
    int n = snprintf(buf + *used, cap - *used, "%s%s", *used ? ", " : "", part);
    if (n > 0)
        *used = *used + (size_t)n < cap ? *used + (size_t)n : cap - 1;
}

void pw_diff_walks(const pw_walk *b, const pw_walk *a, pw_diff *d)
{
    memset(d, 0, sizeof *d);
    d->first_changed = -1;
    int n = b->count > a->count ? b->count : a->count;
    for (int i = 0; i < n && d->first_changed < 0; i++)
        if (i >= b->count || i >= a->count || b->e[i].raw != a->e[i].raw)
            d->first_changed = i < a->count ? a->e[i].level : b->e[i].level;
    d->unchanged = d->first_changed < 0 && b->count == a->count;
    d->became_present = !b->mapped && a->mapped;
    d->became_absent = b->mapped && !a->mapped;
    d->became_writable = a->mapped && a->writable && !(b->mapped && b->writable);
    d->became_readonly = b->mapped && b->writable && a->mapped && !a->writable;
    d->became_user = a->mapped && a->user && !(b->mapped && b->user);
    d->became_dirty = a->mapped && a->dirty && !(b->mapped && b->dirty);
    d->became_accessed = a->mapped && a->accessed && !(b->mapped && b->accessed);
    d->nx_changed = a->mapped && b->mapped && a->nx != b->nx;
    d->old_frame = b->mapped ? b->frame : 0;
    d->new_frame = a->mapped ? a->frame : 0;
    d->frame_changed = a->mapped && b->mapped && a->frame != b->frame;
    size_t used = 0;
    char *s = d->summary;
    size_t cap = sizeof d->summary;
    s[0] = '\0';
    if (d->unchanged) {
        snprintf(s, cap, "unchanged");
        return;
    }
    char part[96];
    if (d->became_present) {
        snprintf(part, sizeof part, "became present (frame 0x%" PRIx64 ")", a->frame);
        say(s, cap, &used, part);
    }
    if (d->became_absent) {
        snprintf(part, sizeof part, "became not present (was frame 0x%" PRIx64 ")", b->frame);
        say(s, cap, &used, part);
    }
    if (d->frame_changed) {
        snprintf(part, sizeof part, "frame 0x%" PRIx64 " -> 0x%" PRIx64, b->frame, a->frame);
        say(s, cap, &used, part);
    }
    const struct { bool on; const char *what; } flags[] = {
        { d->became_writable, "writable" }, { d->became_readonly, "read-only" }, { d->became_user, "user" },
        { d->became_accessed, "accessed" }, { d->became_dirty, "dirty" },
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].on)
            say(s, cap, &used, flags[i].what);
    if (d->nx_changed)
        say(s, cap, &used, a->nx ? "became NX" : "became executable");
    if (!used)
        say(s, cap, &used, "entries changed; rights and frame the same");
}
