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
    uint64_t cu;        /* DIE offset of its CU */
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

/* One ELF section as libdwarf sees it: served from the file's mapping, or
 * from a buffer decompressed once (SHF_COMPRESSED or a GNU .zdebug_*). */
typedef struct ksec {
    Elf_Scn *scn;
    GElf_Shdr sh;
    const char *name;    /* DWARF's name (".debug_info" for ".zdebug_info") */
    char *own_name;      /* malloc'd when renamed from .zdebug_* */
    bool loaded;         /* decompressed (if it needed it) and checked */
} ksec;

struct kern {
    char *path;
    char *src_root;      /* --source-dir: tails of DWARF paths are looked up here */
    char *tree_root;     /* realpath of vmlinux's directory: the build tree, for short paths */
    int fd;
    Elf *elf;            /* ELF_C_READ_MMAP: section data points into the mapping */
    uint64_t file_size;
    ksec *secs;          /* by section index */
    size_t nsecs;
    Dwarf_Obj_Access_Interface dwarf_if;
    Dwarf_Debug dbg;
    char banner[256];
    fl_error derr;       /* first libdwarf error of the current public call (kd_note) */

    ksym *syms;          /* sorted by address */
    size_t nsyms;
    uint32_t *by_name;   /* hash of names: index into syms + 1, 0 empty */
    size_t name_cap;     /* a power of two */

    /* CU list: DIE offsets of the CUs listed so far (kd_load_cus: all). */
    uint64_t *cus;
    size_t ncus, cus_cap;
    bool cus_done;       /* every CU is listed */
    size_t scanned;      /* CUs [0, scanned) are in the index */
    kix_entry *ix;       /* open addressing; cap is a power of two */
    size_t ix_cap, ix_n;
    uint64_t hinted[32]; /* CUs indexed out of order (kd_index_cu) */
    size_t nhinted;

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
    uint64_t pid_off, comm_off, mm_off, pid_size, comm_size;

    kline_table *lines;
    kscope_table *scopes;
    ksrc_file *srcs;
    kstr *strs;
};

/* Layers, each calling only the ones above it in this list:
 *   kernel_elf.c    the file: mapping, sections for libdwarf, symbols, banner
 *   kernel_dwarf.c  libdwarf session, errors, the child iterator, the name
 *                   index, pc -> CU, scope lists
 *   kernel_types.c  types, members, enums
 *   kernel_lines.c  line tables
 *   kernel_source.c source text, --source-dir, Debian's linux-source
 *   kernel_loc.c    inlined instances, variable locations, `current`
 *   kernel_open.c   kern_open/kern_close: the one place that knows them all
 * Each layer frees what it owns in its one *_free function. */

/* ---- kernel_elf.c ---- */
/* Map k->path and check it is a whole, unstripped x86-64 ELF with DWARF;
 * read symbols and the banner. */
int ke_open(kern *k, fl_error *err);
void ke_free(kern *k);
/* The libelf adapter: FL_EFORMAT "PATH: WHAT: <libelf's message>". */
int ke_fail_elf(kern *k, fl_error *err, const char *what);
/* libdwarf's object access over the mapping (dwarf_object_init_b). */
Dwarf_Obj_Access_Interface *ke_dwarf_access(kern *k);
/* Bytes [lo, hi) of a mapped section will not be read again soon: drop
 * them from this process (the page cache keeps them; a later read maps
 * them back). No-op for decompressed sections, which live in the heap. */
void ke_release(kern *k, const char *section, uint64_t lo, uint64_t hi);

/* ---- kernel_dwarf.c ---- */
/* Start libdwarf on the sections ke_open mapped (no copy of the file). */
int kd_open(kern *k, fl_error *err);
void kd_free(kern *k);
/* The libdwarf adapter: FL_EFORMAT "PATH: corrupt DWARF in WHERE: <libdwarf's
 * message>; ...", and the Dwarf_Error freed. */
int kd_fail_dwarf(kern *k, fl_error *err, Dwarf_Error de, const char *where);
/* For helpers whose false means "absent": DW_DLV_NO_ENTRY is absence and
 * dropped; DW_DLV_ERROR is parked in k->derr (the first one wins) so the
 * public call reports corrupt DWARF instead of "not found". Frees de. */
void kd_note(kern *k, int dlv, Dwarf_Error de, const char *where);
/* Every public kern_* DWARF call runs between these: kd_enter clears the
 * parked error, kd_leave returns rc, or -1 with the parked error in err. */
void kd_enter(kern *k);
int kd_leave(kern *k, int rc, fl_error *err);
bool kd_failed(const kern *k);

/* Children of a DIE, in order. kd_child_first/next return 1 with it->die
 * the current child, 0 at the end, -1 on a libdwarf error (parked, see
 * kd_note). A loop left early calls kd_child_end (safe to call always). */
typedef struct kd_iter {
    kern *k;
    Dwarf_Die die;
    uint64_t off;        /* of die (or of the parent before the first): only forward */
} kd_iter;
int kd_child_first(kern *k, Dwarf_Die parent, kd_iter *it);
int kd_child_first_at(kern *k, uint64_t parent_off, kd_iter *it);
int kd_child_next(kd_iter *it);
void kd_child_end(kd_iter *it);

int kd_die(kern *k, uint64_t off, Dwarf_Die *out);
uint64_t kd_offset(kern *k, Dwarf_Die d);
const char *kd_name(kern *k, Dwarf_Die d);            /* own DW_AT_name or NULL */
/* Name through DW_AT_abstract_origin / DW_AT_specification if not its own. */
const char *kd_name_deep(kern *k, Dwarf_Die d);
bool kd_attr(kern *k, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *a);
bool kd_ref(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *off);
bool kd_udata(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *v);
bool kd_sdata(kern *k, Dwarf_Die d, Dwarf_Half at, int64_t *v);
bool kd_flag(kern *k, Dwarf_Die d, Dwarf_Half at);
Dwarf_Half kd_tag(Dwarf_Die d);
/* Calls fn(lo, hi) for each pc range of d; returns the number of ranges. */
typedef void (*kd_range_fn)(void *ctx, uint64_t lo, uint64_t hi);
int kd_ranges(kern *k, Dwarf_Die d, kd_range_fn fn, void *ctx);
/* Finds the first indexed DIE of one of `kinds` (0-terminated) named `name`,
 * scanning more CUs if needed. 1 found (*e set), 0 absent, -1 err filled.
 * CUs already in use are indexed first (kd_index_cu), so a name defined in
 * several CUs resolves to the one the caller is already looking at. */
int kd_lookup(kern *k, const char *name, const uint8_t *kinds, kix_entry *e, fl_error *err);
int kd_load_cus(kern *k, fl_error *err);
/* Index the top-level names of one CU now, out of CU order: a CU whose
 * lines or scopes were just read, or that a symbol of the name asked for
 * points into. Cheap to call twice. */
void kd_index_cu(kern *k, uint64_t cu_die);
/* CU DIE offset containing pc, via .debug_aranges. */
bool kd_cu_for_pc(kern *k, uint64_t pc, uint64_t *cu_die);
/* Scope list of a CU (built on first use, cached). */
kscope_table *kd_scopes(kern *k, uint64_t cu_die, fl_error *err);
/* A copy of s kept until kern_close; NULL when out of memory. */
const char *kd_keep(kern *k, const char *s);

/* ---- kernel_types.c ---- */
/* Printable name and size of a type DIE. */
void kt_type_name(kern *k, uint64_t type_off, char *buf, size_t len);
bool kt_type_size(kern *k, uint64_t type_off, uint64_t *size);
/* Follows typedefs and qualifiers to the type that has a shape; false for
 * void. */
bool kt_strip(kern *k, uint64_t off, uint64_t *out, Dwarf_Half *tag_out);

/* ---- kernel_lines.c ---- */
void kl_free(kern *k);

/* ---- kernel_source.c ---- */
void ks_free(kern *k);

/* ---- kernel_loc.c ---- */
void kx_free(kern *k);

#endif
