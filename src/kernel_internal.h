/* Private to the kernel layer (src/kernel*.c): the state behind `kern` and
 * helpers shared between the ELF, type, line and location files. */
#ifndef FAULTLINE_KERNEL_INTERNAL_H
#define FAULTLINE_KERNEL_INTERNAL_H

#include <gelf.h>
#include <libelf.h>
#include <dwarf.h>
#include <libdwarf.h>

#include "faultline/kernel.h"

typedef struct ksym {
    uint64_t addr;
    uint64_t size;
    const char *name;   /* points into the mmap'd .strtab */
    unsigned char type; /* STT_FUNC / STT_OBJECT / STT_NOTYPE */
} ksym;

/* Kinds in the by-name index of top-level DIEs. */
enum { KIX_STRUCT = 1, KIX_UNION, KIX_TYPEDEF, KIX_ENUM, KIX_SUBPROG };

typedef struct kix_entry {
    const char *name;   /* points into .debug_str / .debug_info (alive until dwarf_finish) */
    uint64_t die;       /* global .debug_info offset */
    uint32_t cu;        /* index into kern.cus */
    uint32_t hash;
    uint8_t kind;
} kix_entry;

/* One row of a CU's line table, compacted (libdwarf's rows are ~100 bytes). */
typedef struct kline_row {
    uint64_t addr;
    uint32_t line;
    uint16_t col;
    uint16_t file;       /* index into kline_table.files */
    uint8_t end_seq;
    uint32_t ord;        /* position in the table: later rows at one address win */
} kline_row;

typedef struct kline_table {
    uint64_t cu_die;     /* CU DIE offset this table belongs to */
    kline_row *rows;
    size_t nrows;
    char **files;        /* by DWARF file number, resolved paths (malloc'd) */
    size_t nfiles;
    struct kline_table *next;
} kline_table;

/* A pc range of a subprogram / inlined subroutine / lexical block of a CU:
 * the "scope list" that answers innermost-function and where-is-var. */
typedef struct kscope {
    uint64_t lo, hi;     /* [lo, hi) */
    uint64_t die;        /* the concrete DIE */
    uint64_t origin;     /* abstract origin DIE (or die itself) */
    uint64_t entry_pc;   /* DW_AT_entry_pc, else lowest pc */
    const char *name;    /* function name (from the origin), NULL for blocks */
    uint16_t depth;
    uint16_t tag;
} kscope;

typedef struct kscope_table {
    uint64_t cu_die;
    kscope *v;
    size_t n, cap;
    struct kscope_table *next;
} kscope_table;

typedef struct ksrc_file {
    char *path;          /* as asked */
    char *text;          /* whole file, NULs at line ends; NULL if unreadable */
    char **lines;        /* lines[i] = line i+1 */
    size_t nlines;
    struct ksrc_file *next;
} ksrc_file;

/* A string kept alive until kern_close (function names composed at run time). */
typedef struct kstr {
    struct kstr *next;
    char s[];
} kstr;

/* Cache entry for a name -> type DIE lookup, so repeats cost one hash probe. */
struct kern {
    char *path;
    char *src_root;
    char *tree_root;     /* realpath of vmlinux's directory: the build tree, for short paths */
    int fd;
    Elf *elf;
    int dfd;
    Dwarf_Debug dbg;
    char banner[256];

    ksym *syms;          /* sorted by address */
    size_t nsyms;
    uint32_t *by_name;   /* indices into syms sorted by name */

    /* CU list: die offsets of every CU (filled on first by-name lookup). */
    uint64_t *cus;
    size_t ncus;
    bool cus_done;
    size_t scanned;      /* CUs [0, scanned) are in the index */
    kix_entry *ix;       /* open addressing; cap is a power of two */
    size_t ix_cap, ix_n;

    Dwarf_Arange *aranges;
    Dwarf_Signed naranges;
    bool aranges_tried;

    Dwarf_Cie *cies;
    Dwarf_Fde *fdes;
    Dwarf_Signed ncies, nfdes;
    bool frames_tried;

    /* kern_current's offsets, resolved once (it runs at every stop). */
    bool cur_ready;
    uint64_t cur_addr;   /* &pcpu_hot.current_task as a per-cpu offset */
    uint64_t pid_off, comm_off, mm_off, pid_size;

    kline_table *lines;
    kscope_table *scopes;
    ksrc_file *srcs;
    kstr *strs;
};

/* ---- kernel_dwarf.c: shared DWARF helpers ---- */
/* Free a libdwarf error (NULL-safe) and return its message in buf. */
const char *kd_errmsg(kern *k, Dwarf_Error de, char *buf, size_t len);
void kd_dropErr(kern *k, Dwarf_Error de);
int kd_die(kern *k, uint64_t off, Dwarf_Die *out);
const char *kd_name(kern *k, Dwarf_Die d);            /* own DW_AT_name or NULL */
/* Name through DW_AT_abstract_origin / DW_AT_specification if not its own. */
const char *kd_name_deep(kern *k, Dwarf_Die d);
bool kd_ref(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *off);
bool kd_udata(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *v);
bool kd_sdata(kern *k, Dwarf_Die d, Dwarf_Half at, int64_t *v);
bool kd_flag(kern *k, Dwarf_Die d, Dwarf_Half at);
Dwarf_Half kd_tag(Dwarf_Die d);
/* Calls fn(lo, hi) for each pc range of d; returns the number of ranges. */
typedef void (*kd_range_fn)(void *ctx, uint64_t lo, uint64_t hi);
int kd_ranges(kern *k, Dwarf_Die d, kd_range_fn fn, void *ctx);
/* Finds the first indexed DIE of one of `kinds` (0-terminated) named `name`,
 * scanning more CUs if needed. Returns true and sets *e. */
bool kd_lookup(kern *k, const char *name, const uint8_t *kinds, kix_entry *e, fl_error *err);
int kd_load_cus(kern *k, fl_error *err);
/* CU DIE offset containing pc, via .debug_aranges. */
bool kd_cu_for_pc(kern *k, uint64_t pc, uint64_t *cu_die);
/* Scope list of a CU (built on first use, cached). */
kscope_table *kd_scopes(kern *k, uint64_t cu_die, fl_error *err);
const char *kd_keep(kern *k, const char *s);

/* ---- kernel_types.c ---- */
/* Printable name and size of a type DIE. */
void kt_type_name(kern *k, uint64_t type_off, char *buf, size_t len);
bool kt_type_size(kern *k, uint64_t type_off, uint64_t *size);

/* ---- kernel_lines.c / kernel_loc.c cleanup ---- */
void kl_free(kern *k);

#endif
