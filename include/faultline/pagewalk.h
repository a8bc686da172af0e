/* pagewalk: the x86-64 page-table walk the CPU does for one linear address,
 * 4-level or 5-level (CR4.LA57), entry by entry, and the difference between
 * two such walks (before and after a fault).
 *
 * The entry formats are architectural (Intel SDM vol. 3, section 4.5, tables
 * 4-14 to 4-20): they are a table in pagewalk.c that cites the manual, not
 * something the kernel's DWARF could say. Physical memory comes in through a
 * callback, so the walk knows nothing of the wire (outcome reads it through
 * the stub; the unit test fakes it). Pure apart from the callback.
 */
#ifndef FAULTLINE_PAGEWALK_H
#define FAULTLINE_PAGEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/error.h"

/* Reads 8 bytes of guest physical memory at paddr (8-byte aligned). */
typedef int (*pw_phys_fn)(void *ctx, uint64_t paddr, uint64_t *value, fl_error *err);

/* The paging structures, top down (SDM vol. 3, 4.5). */
enum pw_level { PW_PML5, PW_PML4, PW_PDPT, PW_PD, PW_PT, PW_LEVELS };

/* "PML5E", "PML4E", "PDPTE", "PDE", "PTE"; "?" out of range. */
const char *pw_level_name(int level);

/* CR4 and EFER bits the walk depends on (SDM vol. 3, 2.5 and 2.2.1). */
#define PW_CR4_PKE (1ull << 22)   /* protection keys for user pages */
#define PW_CR4_LA57 (1ull << 12)  /* 5-level paging */
#define PW_EFER_NXE (1ull << 11)  /* bit 63 of entries is XD, not reserved */

/* Bits of a paging-structure entry (SDM vol. 3, tables 4-14..4-20). */
#define PW_P (1ull << 0)
#define PW_RW (1ull << 1)
#define PW_US (1ull << 2)
#define PW_PWT (1ull << 3)
#define PW_PCD (1ull << 4)
#define PW_A (1ull << 5)
#define PW_D (1ull << 6)
#define PW_PS (1ull << 7)
#define PW_G (1ull << 8)
#define PW_NX (1ull << 63)
/* Physical address bits 51:12 (MAXPHYADDR is at most 52). */
#define PW_ADDR_MASK 0x000ffffffffff000ull

typedef struct pw_entry {
    int level;            /* enum pw_level */
    unsigned index;       /* which of the table's 512 entries (bits of the address) */
    uint64_t table;       /* physical address of the table */
    uint64_t addr;        /* physical address of the entry */
    uint64_t raw;         /* the entry as read */
    bool present;
    bool leaf;            /* maps a page: a PTE, or PS set in a PDPTE/PDE */
    uint64_t next;        /* present: the next table's physical address, or the page frame */
    uint64_t page_size;   /* leaf: 4 KiB, 2 MiB or 1 GiB */
    char bits[128];       /* "P|RW|US|A|D|NX", or "not present" */
} pw_entry;

typedef struct pw_walk {
    uint64_t va, cr3, cr4, efer;
    int levels;           /* 4 or 5 */
    int count;            /* entries read, top down */
    pw_entry e[PW_LEVELS];
    bool mapped;          /* a present leaf was reached */
    uint64_t frame;       /* mapped: physical base of the page */
    uint64_t page_size;
    uint64_t phys;        /* mapped: the address va translates to */
    /* mapped: the access rights of the whole walk (SDM vol. 3, 4.6):
     * writable and user only if every level says so; NX if any level does. */
    bool writable, user, nx;
    bool accessed, dirty, global; /* of the leaf */
    int end_level;        /* the level whose entry ended the walk */
    char ended[64];       /* "4 KiB page at PTE", "not present at PDE" */
} pw_walk;

/* Walk `va` from CR3 as the CPU would. The walk ends at the first entry not
 * present or at a leaf; that is not an error. A non-canonical address, or a
 * read that fails, is (-1). */
int pw_walk_va(pw_phys_fn read, void *ctx, uint64_t cr3, uint64_t cr4, uint64_t efer, uint64_t va,
               pw_walk *out, fl_error *err);

/* The names of the bits of one entry as the architecture defines them at
 * that level ("P|RW|US|PWT|PCD|A|D|PS|G|PAT|PK=3|NX"); D, G, PK only in
 * entries that map a page, PAT at bit 7 of a PTE or bit 12 of a large page,
 * PK only when CR4.PKE, NX only when EFER.NXE. */
void pw_format_bits(int level, uint64_t raw, uint64_t cr4, uint64_t efer, char *buf, size_t cap);

/* What changed between two walks of the same address. */
typedef struct pw_diff {
    bool became_present, became_absent;
    bool became_writable, became_readonly;
    bool became_user, became_dirty, became_accessed;
    bool nx_changed;
    bool frame_changed;   /* mapped before and after, different frames */
    bool unchanged;       /* every entry read is bit for bit the same */
    uint64_t old_frame, new_frame;
    int first_changed;    /* highest level whose entry changed, -1 if none */
    char summary[256];    /* "became present, writable, dirty; frame 0x1234000" */
} pw_diff;
void pw_diff_walks(const pw_walk *before, const pw_walk *after, pw_diff *out);

#endif
