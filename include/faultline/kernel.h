/* kernel: what the running kernel's own vmlinux (ELF + DWARF) says.
 *
 * Symbols, struct layouts, enum constants, PC -> file:line (+ source text),
 * inlined instances, variable locations, and `current`. Built on libelf and
 * libdwarf; knows nothing of the wire: memory and registers of the stopped
 * guest come in through callbacks. Lookups are lazy: only the compilation
 * units a question needs are read, so opening even a 340 MB distribution
 * vmlinux is cheap (bench/bench_kernel).
 *
 * All calls return 0 or -1 with `err` filled (see error.h) unless noted.
 */
#ifndef FAULTLINE_KERNEL_H
#define FAULTLINE_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/error.h"

typedef struct kern kern;

/* Open vmlinux. Refuses, with a sentence saying what to do, a missing file,
 * non-ELF, 32-bit or non-x86-64 ELF, a truncated file, a stripped file (no
 * .symtab) and a file without .debug_info ("build with CONFIG_DEBUG_INFO").
 * The file is mapped, not read: libdwarf reads the sections in place (DWARF
 * compressed with SHF_COMPRESSED or .zdebug_* is decompressed once, per
 * section, when first used). `src_root`, if not NULL, is the source
 * directory (see kern_set_source_dir); NULL uses the paths DWARF records.
 *
 * Every lookup below that reads DWARF reports a libdwarf error as
 * FL_EFORMAT "VMLINUX: corrupt DWARF in .debug_info: <libdwarf's message>",
 * never as "not found"; allocation failures are FL_ENOMEM. */
int kern_open(kern **out, const char *vmlinux, const char *src_root, fl_error *err);
void kern_close(kern *k);

/* The kernel's banner ("Linux version 6.12.57 ...") from linux_banner, or "". */
const char *kern_banner(kern *k);

/* ---- symbols (ELF .symtab, global and local) ---- */
int kern_sym_addr(kern *k, const char *name, uint64_t *addr, fl_error *err);
/* Address -> the function/object symbol containing it. Returns true and sets
 * *name (owned by k) and *offset when found. */
bool kern_sym_at(kern *k, uint64_t addr, const char **name, uint64_t *offset);
/* Would register_kprobe() at addr be refused (-EINVAL) by this kernel's
 * blacklist? Derived from vmlinux the way populate_kprobe_blacklist()
 * builds it at boot: NOKPROBE_SYMBOL functions, __kprobes, noinstr and
 * x86 entry text. When refused, `why` says which rule ("NOKPROBE_SYMBOL(f)",
 * "in .noinstr.text (marked noinstr)", ...). */
bool kern_kprobe_refusal(kern *k, uint64_t addr, char *why, size_t cap);
/* Size of a symbol (st_size), e.g. a function's length. */
int kern_sym_size(kern *k, const char *name, uint64_t *size, fl_error *err);

/* ---- types ---- */
/* `type` is "struct pt_regs", "pt_regs" (struct/union/typedef tried in turn). */
int kern_type_size(kern *k, const char *type, uint64_t *size, fl_error *err);

typedef struct kern_member {
    char name[64];       /* last path component, e.g. "address" */
    char type[96];       /* printable type: "long unsigned int", "struct vm_area_struct *" */
    uint64_t offset;     /* bytes from the start of the outermost struct */
    uint64_t size;       /* bytes */
    bool is_pointer;
    bool is_signed;
    int bit_size;        /* bitfields only: width in bits (0 otherwise) */
    int bit_offset;      /* bitfields only: first bit within byte `offset` */
} kern_member;

/* Member by dotted path from a struct: "vm_fault.address", "pt_regs.ip",
 * "task_struct.comm", "pcpu_hot.current_task". Members of anonymous
 * struct/union members are found by their own names (vm_fault's fields live
 * in an anonymous struct). Nested paths ("vm_fault.vma") work too. */
int kern_member_get(kern *k, const char *path, kern_member *out, fl_error *err);
/* All members of a struct in declaration order, anonymous members flattened.
 * *list is malloc'd; free() it. */
int kern_struct_members(kern *k, const char *type, kern_member **list, size_t *count, fl_error *err);

/* ---- enums ---- */
typedef struct kern_enumerator {
    char name[64];
    int64_t value;
} kern_enumerator;
/* Constants of `enum NAME` ("fault_flag", "x86_pf_error_code") in order.
 * *list is malloc'd; free() it. */
int kern_enum_list(kern *k, const char *enum_name, kern_enumerator **list, size_t *count, fl_error *err);
/* One constant by name ("FAULT_FLAG_VMA_LOCK"), searched in `enum_name`. */
int kern_enum_value(kern *k, const char *enum_name, const char *constant, int64_t *value, fl_error *err);

/* ---- lines ---- */
typedef struct kern_line {
    const char *file;    /* path as best resolved (owned by k) */
    int line;
    int column;
    const char *function;/* innermost function (inlined subroutine name if the
                            pc is inside an inlined instance), owned by k */
} kern_line;
/* PC -> line (the row of the line table covering pc). Returns 0 when found,
 * -1 with FL_ENOTFOUND when the pc has no line info. */
int kern_line_at(kern *k, uint64_t pc, kern_line *out, fl_error *err);
/* `file` as the kernel tree names it ("mm/memory.c"): without the build
 * tree's absolute prefix and leading "./". Points into `file`. */
const char *kern_short_path(const kern *k, const char *file);
/* Source text of file:line (without newline), NULL if the file is not
 * readable; files are read once and cached. A path not readable as written
 * is looked up under the source directory (kern_set_source_dir). */
const char *kern_source_text(kern *k, const char *file, int line);

/* ---- source of a kernel built elsewhere ---- */
/* Like GDB's substitute-path: a DWARF path that is not readable as written
 * is looked up under `dir` by its tails, longest first, so
 * "/build/reproducible-path/linux-6.1.176/mm/memory.c" (or Debian's
 * "debian/build/build_amd64_none_cloud-amd64/mm/memory.c") finds
 * DIR/mm/memory.c. NULL clears it. FL_ENOTFOUND if dir is not a directory.
 * Same as kern_open's src_root. */
int kern_set_source_dir(kern *k, const char *dir, fl_error *err);
/* The source directory in use, or NULL. Owned by k. */
const char *kern_source_dir(const kern *k);
/* The release from the banner ("6.12.118+deb12-cloud-amd64"), "" if none. */
const char *kern_release(kern *k, char *buf, size_t cap);

/* Where kern_use_debian_source looks; NULL members take the defaults. */
typedef struct kern_source_paths {
    const char *usr_src;      /* linux-source-X.tar.xz; default /usr/src */
    const char *dpkg_status;  /* default /var/lib/dpkg/status */
    const char *cache_dir;    /* default ${XDG_CACHE_HOME:-$HOME/.cache}/faultline */
} kern_source_paths;
/* When Debian's linux-source-X matching this kernel is installed (X from
 * the banner's release; the package version equal to the banner's "Debian
 * V", or to the release's upstream version when the banner names none),
 * unpack its tarball once into CACHE/source-V/ (under an flock, a stamp
 * written last; the first call takes about a minute, later ones nothing)
 * and make it the source directory. FL_ENOTFOUND, with the package to
 * install, when none matches; FL_EIO when unpacking fails. Never prints.
 * `paths` may be NULL. */
int kern_use_debian_source(kern *k, const kern_source_paths *paths, fl_error *err);
/* First and one-past-last pc of a function that has a symbol. */
int kern_func_range(kern *k, const char *func, uint64_t *lo, uint64_t *hi, fl_error *err);

/* ---- inlined instances ---- */
/* Entry pcs (DW_AT_entry_pc, else low_pc / first range) of every inlined
 * instance of `func` (DW_TAG_inlined_subroutine whose abstract origin is it).
 * *pcs is malloc'd; free() it. Zero instances is FL_ENOTFOUND. */
int kern_inlined_entries(kern *k, const char *func, uint64_t **pcs, size_t *count, fl_error *err);

/* ---- variable values at a stop ---- */
/* Callbacks into the stopped guest. DWARF x86-64 register numbers (psABI):
 * 0 rax 1 rdx 2 rcx 3 rbx 4 rsi 5 rdi 6 rbp 7 rsp 8-15 r8-r15 16 rip. */
typedef int (*kern_reg_fn)(void *ctx, int dwarf_regno, uint64_t *value, fl_error *err);
typedef int (*kern_mem_fn)(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err);
typedef struct kern_frame {
    kern_reg_fn reg;
    kern_mem_fn mem;
    void *ctx;
} kern_frame;

/* Value of parameter or local `var` of function `func` (a real function or an
 * inlined instance containing pc) at `pc`, evaluated from its DWARF location
 * (location lists included; DW_OP_fbreg via DW_AT_frame_base and, where that
 * is DW_OP_call_frame_cfa, the CFA from .debug_frame/.eh_frame). Scalars and
 * pointers only (<= 8 bytes). If the location is an address of the variable
 * (not a register), *value is read from memory. FL_ENOTFOUND when the
 * variable is optimised out at pc. */
int kern_var_value(kern *k, const char *func, const char *var, uint64_t pc,
                   const kern_frame *frame, uint64_t *value, fl_error *err);
/* Address of `var` when its location at pc is in memory (a struct local such
 * as __handle_mm_fault's `vmf`, or a spilled value): FL_ENOTFOUND when it is
 * in a register or only a computed value there. */
int kern_var_addr(kern *k, const char *func, const char *var, uint64_t pc,
                  const kern_frame *frame, uint64_t *addr, fl_error *err);

/* Resolve once, evaluate at every stop: kern_var_locate does the DWARF
 * work of kern_var_value for one (function, variable, pc) (scopes, the
 * location list entry for pc, the frame base, the CFA rule at pc, the
 * type's size and signedness) and keeps the result; kern_varloc_eval and
 * kern_varloc_addr then only run the compiled expression against the
 * stopped guest (register and memory callbacks), with the same values and
 * errors as kern_var_value / kern_var_addr. A kern_varloc must not outlive
 * its kern; free it with kern_varloc_free (NULL-safe). */
typedef struct kern_varloc kern_varloc;
int kern_var_locate(kern *k, const char *func, const char *var, uint64_t pc, kern_varloc **out, fl_error *err);
int kern_varloc_eval(const kern_varloc *loc, const kern_frame *frame, uint64_t *value, fl_error *err);
int kern_varloc_addr(const kern_varloc *loc, const kern_frame *frame, uint64_t *addr, fl_error *err);
void kern_varloc_free(kern_varloc *loc);

/* ---- current task ---- */
typedef struct kern_task {
    uint64_t task;       /* struct task_struct * */
    int pid;
    char comm[17];
    uint64_t mm;         /* task->mm */
} kern_task;
/* `current` given the per-cpu base (gs_base after swapgs, k_gs_base before it
 * when the CPU came from user mode): *(task_struct **)(base + &pcpu_hot +
 * offsetof(pcpu_hot, current_task)), then pid, comm and mm by DWARF offsets. */
int kern_current(kern *k, uint64_t percpu_base, const kern_frame *frame, kern_task *out, fl_error *err);


/* ---- scope queries (kernel_scope.c) ---- */
/* What a C programmer sees at a pc: the chain of functions (the concrete
 * function and the inlined instances around pc, outermost first) and the
 * parameters and locals in scope, each with its DWARF type described. */
enum kern_vkind {
    KERN_V_UNSIGNED, KERN_V_SIGNED, KERN_V_BOOL, KERN_V_ENUM, KERN_V_POINTER, KERN_V_VOID, KERN_V_OTHER
};
typedef struct kern_vtype {
    enum kern_vkind kind;
    uint64_t size;        /* bytes (0 for void) */
    char name[96];        /* as written: "unsigned int", "vm_fault_t", "struct mm_struct *" */
    char enum_name[64];   /* KERN_V_ENUM: the enum's tag ("" if anonymous) */
} kern_vtype;

typedef struct kern_scope_frame {
    const char *function; /* owned by k */
    uint64_t die;         /* the concrete subprogram / inlined-instance DIE */
    uint64_t entry_pc;
    bool inlined;
} kern_scope_frame;

typedef struct kern_var {
    const char *name;     /* owned by k */
    const char *function; /* frames[frame].function */
    uint64_t die;         /* identifies the variable */
    int frame;            /* index into kern_scope.frames */
    bool is_param;
    kern_vtype type;
} kern_var;

typedef struct kern_scope {
    kern_scope_frame *frames;  /* outermost first */
    size_t nframes;
    kern_var *vars;            /* outermost frame's first, each in DIE order */
    size_t nvars;
} kern_scope;

/* Scope at pc (lexical blocks that do not contain pc are left out). A pc
 * without DWARF scope gives zero frames and vars (not an error). */
int kern_scope_at(kern *k, uint64_t pc, kern_scope *out, fl_error *err);
void kern_scope_free(kern_scope *s);
/* Value of v at pc (the scope was taken at a pc of the same function):
 * FL_ENOTFOUND when its location is not available there (optimised out). */
int kern_scope_value(kern *k, const kern_var *v, uint64_t pc, const kern_frame *frame, uint64_t *value,
                     fl_error *err);
/* A variable's location list compiled once into the forms a stop can read
 * without DWARF: in a register, register + offset as the value, a constant,
 * nothing (optimized out); any other form is evaluated by kern_scope_value. */
enum kern_loc_kind { KERN_LOC_NONE, KERN_LOC_REG, KERN_LOC_REG_PLUS, KERN_LOC_CONST, KERN_LOC_SLOW };
typedef struct kern_loc {
    uint64_t lo, hi;      /* [lo, hi) of pcs */
    enum kern_loc_kind kind;
    int reg;              /* DWARF register number */
    int64_t off;          /* REG_PLUS: added; CONST: the value */
} kern_loc;
/* *locs is malloc'd (free()); zero entries: optimized out everywhere. */
int kern_scope_locs(kern *k, const kern_var *v, kern_loc **locs, size_t *count, fl_error *err);
/* Value of v at pc from its compiled locations: 0, or -1 with FL_ENOTFOUND
 * (optimized out at pc) or, for a KERN_LOC_SLOW entry, whatever
 * kern_scope_value says. */
int kern_scope_locs_value(kern *k, const kern_var *v, const kern_loc *locs, size_t count, uint64_t pc,
                          const kern_frame *frame, uint64_t *value, fl_error *err);
/* Return type of the function or inlined instance `frame_die` (void: kind
 * KERN_V_VOID). */
int kern_scope_return_type(kern *k, uint64_t frame_die, kern_vtype *out, fl_error *err);

#endif
