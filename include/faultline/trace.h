/* trace: single-step (or branch-to-branch) the kernel from a stop, e.g. the
 * page-fault path from asm_exc_page_fault to the iretq back to user mode,
 * recording per instruction: pc, symbol+offset, file:line, source text,
 * disassembly (capstone), the registers it changed and the call depth.
 *
 * Typical use (what `faultline trace` / `run --trace` do):
 *   1. capture with only station 1 enabled (cap_options.stations =
 *      1u << CAP_ST_ENTRY): the guest is left stopped at asm_exc_page_fault
 *      of the filtered fault, no breakpoint inserted;
 *   2. trace_run(t, k, &opt, &res, &err);   guest stopped where it ended
 *   3. trace_report(out, TRACE_FMT_TEXT, TRACE_VIEW_LINE, res);
 *   4. trace_result_free(res);   then resume or kill the guest.
 *
 * Modes:
 *   TRACE_SINGLE: one vCont;s and one `g` per instruction (exact registers).
 *   TRACE_FAST:   runs from one branch it cannot resolve statically (jcc,
 *     ret, indirect jmp/call) to the next with a hardware breakpoint; the
 *     instructions in between come from the disassembly, their register
 *     changes are only known as the block's net change (recorded on the
 *     block's last instruction, flag TRACE_F_NET). Anything it cannot be
 *     sure of (int, iret, sysret, syscall, pushf/popf/cli/sti, privileged
 *     instructions, stac/clac and all code run with EFLAGS.AC set, i.e. user
 *     memory accesses that may fault, writes to rsp other than
 *     push/pop/add/sub/lea, memory-indirect jumps, bytes capstone cannot
 *     decode) is single-stepped. Each stop is verified (pc == breakpoint and
 *     rsp == the rsp computed along the block) so an interrupt handler
 *     passing the same pc is not taken for the traced path; interrupts are
 *     held off while blocks run (EFLAGS.IF cleared in the guest, restored
 *     before every single step and at the end), as QEMU holds them off for
 *     single steps. A rep string instruction on kernel memory runs inside a
 *     block and is ONE record; single-stepping shows one record per QEMU
 *     step of it (one or more iterations each). Otherwise the pc sequence
 *     is the same as TRACE_SINGLE's (tested, runs of one pc collapsed).
 *
 * The result owns all its strings (it does not point into kern or tgt).
 * All calls return 0 or -1 with `err` filled (see error.h) unless noted.
 */
#ifndef FAULTLINE_TRACE_H
#define FAULTLINE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/target.h"

enum trace_mode { TRACE_SINGLE, TRACE_FAST };

/* What ended a trace. */
enum trace_stop {
    TRACE_STOP_NONE = 0,   /* still running / error before the first step */
    TRACE_STOP_USER,       /* back in CPL 3 (cs & 3 == 3) after iret/sysret */
    TRACE_STOP_UNTIL,      /* pc reached opt->until */
    TRACE_STOP_MAX_STEPS,  /* opt->max_steps instructions recorded */
    TRACE_STOP_TIMEOUT,    /* opt->timeout_ms of wall time */
    TRACE_STOP_ERROR,      /* the stub or the path failed: see err */
    TRACE_STOP_CANCELLED,  /* opt->cancel said so (SIGINT, ...) */
};

/* Progress report (steps so far, function at the current pc). */
typedef void (*trace_progress_fn)(void *ctx, size_t steps, const char *function);

typedef struct trace_options {
    enum trace_mode mode;     /* TRACE_SINGLE (default) or TRACE_FAST */
    const char *until;        /* stop when pc == this symbol's address; NULL: none */
    size_t max_steps;         /* 0: 1,000,000 */
    const char *over;         /* "handle_mm_fault,foo": callees run at full
                                 speed (breakpoint at the return address);
                                 NULL or "": none. Unknown name: FL_ENOTFOUND */
    int timeout_ms;           /* whole trace, wall time; 0: 120000 */
    int step_timeout_ms;      /* one step/continue; 0: 5000 */
    /* Progress: if progress_fn is set it is called about every 50 ms (the
     * CLI draws it; the library never prints). */
    trace_progress_fn progress_fn;
    void *progress_ctx;
    /* Asked before every step: non-zero ends the trace (FL_EINTR) with what
     * was recorded so far, the guest left stopped where it is. NULL: never. */
    int (*cancel)(void *ctx);
    void *cancel_ctx;
    /* Explain (see explain.h): at every source-line entry read the C
     * variables in scope, at every call the callee's parameters, at every
     * return the value; fills the result's vars/values/fcalls/checks. */
    bool explain;
} trace_options;

/* Control-flow class of an instruction (from capstone's groups + ids). */
enum trace_kind {
    TRACE_K_PLAIN = 0,     /* falls through */
    TRACE_K_JMP,           /* unconditional direct jmp */
    TRACE_K_JCC,           /* conditional direct jump (jcc, jrcxz) */
    TRACE_K_JMP_IND,       /* indirect jmp */
    TRACE_K_CALL,          /* direct call */
    TRACE_K_CALL_IND,      /* indirect call */
    TRACE_K_RET,           /* ret / ret imm16 */
    TRACE_K_IRET,          /* iret/iretq */
    TRACE_K_SYSRET,        /* sysret / sysexit */
    TRACE_K_INT,           /* int n / int3 / syscall / sysenter / ud2 / into */
    TRACE_K_SPECIAL,       /* no branch, but single-step it in fast mode:
                              privileged, serializing, cli/sti, pushf/popf,
                              stac/clac, hlt, loop, rsp written unknowably */
    TRACE_K_COUNT
};
const char *trace_kind_name(enum trace_kind k);

/* One decoded instruction (pure: no guest access). */
typedef struct trace_insn {
    uint8_t len;
    enum trace_kind kind;
    uint64_t target;       /* direct jmp/jcc/call target, else 0 */
    bool rsp_known;        /* rsp_delta is exact (false: single-step it) */
    int32_t rsp_delta;     /* effect on rsp when it falls through / is taken */
    char text[96];         /* "mov rax, qword ptr [rdi + 8]" */
} trace_insn;

/* Decode the instruction at code[0..len) (address pc) and classify it.
 * Returns 0, or -1 (FL_EFORMAT) if the bytes do not decode. Opens its own
 * capstone handle: for tests and one-off use, not the hot path. */
int trace_decode(const uint8_t *code, size_t len, uint64_t pc, trace_insn *out, fl_error *err);
/* Call depth after an instruction of kind k ran at depth d (call/int +1,
 * ret/iret/sysret -1). */
int trace_depth_after(enum trace_kind k, int d);

/* ---- the result ---- */

/* Per distinct pc (the caches behind every step). */
typedef struct trace_pc {
    uint64_t pc;
    const char *sym;       /* containing symbol or "?" */
    uint64_t sym_off;
    const char *file;      /* short path "mm/memory.c", or NULL if no line info */
    int line;
    const char *function;  /* innermost (inlined) function, or sym */
    const char *source;    /* line text, or NULL */
    const char *text;      /* disassembly */
    enum trace_kind kind;
    uint8_t len;
} trace_pc;

typedef struct trace_change {
    uint16_t reg;          /* index into trace_result.regnames */
    uint64_t before, after;/* low 8 bytes for wider registers (xmm, st) */
} trace_change;

#define TRACE_F_NET     0x1  /* changes are the net change since the last stop
                                (fast mode: at the end of a block) */
#define TRACE_F_INFER   0x2  /* fast mode: not stopped at, known from decoding */
#define TRACE_F_OVER    0x4  /* a call run at full speed (--over): changes are
                                the whole call's */

typedef struct trace_step {
    uint32_t pc;           /* index into trace_result.pcs */
    int32_t depth;         /* call depth the instruction ran at (start: 0) */
    uint32_t change;       /* first index into trace_result.changes */
    uint16_t nchanges;
    uint16_t flags;        /* TRACE_F_* */
} trace_step;

/* A call run through with --over (its step has TRACE_F_OVER). */
typedef struct trace_over {
    size_t step;           /* index of the call step */
    const char *function;  /* the callee's symbol */
} trace_over;

/* ---- the explain records (trace_options.explain) ---- */

/* One C value read through DWARF. */
typedef struct trace_value {
    const char *name;      /* variable or parameter; for a return, the function */
    const char *type;      /* DWARF type as written ("unsigned int", "vm_fault_t") */
    uint64_t value;
    uint64_t was;          /* previous value (has_was) */
    bool available;        /* false: optimized out at that pc */
    bool has_was;          /* a previous value was read */
    bool was_available;    /* with has_was: false if it was optimized out */
    const char *decoded;   /* enumerator names, symbol+off, true/false, decimal; or NULL */
} trace_value;

/* A variable that changed, attributed to the line whose execution changed
 * it (read at the next line entry of the same function). */
typedef struct trace_var {
    size_t step;           /* first step of that line (a trace_line's first) */
    const char *function;  /* the (inlined) function it belongs to */
    trace_value v;
} trace_var;

/* A call (or an inlined instance entered) with its arguments and return. */
typedef struct trace_fcall {
    size_t step;           /* the call instruction; inlined: first step inside */
    size_t ret_step;       /* the return instruction (inlined: last step inside);
                              SIZE_MAX if it had not returned when the trace ended */
    const char *function;
    int depth;             /* depth of the caller */
    bool inlined;
    size_t arg, nargs;     /* range of trace_result.values: parameters at entry */
    bool has_ret;          /* returned a value (not void, not inlined) */
    trace_value ret;
} trace_fcall;

/* A check the narrative makes, like the capture's: expected vs actual. */
typedef struct trace_check {
    char name[48];
    char claim[160];
    char expected[96];
    char actual[96];
    bool pass;
} trace_check;

typedef struct trace_result {
    enum trace_mode mode;
    enum trace_stop stop;
    trace_step *steps;
    size_t nsteps;
    trace_pc *pcs;
    size_t npcs;
    trace_change *changes;
    size_t nchanges;
    trace_over *over_calls;
    size_t nover_calls;
    char (*regnames)[32];  /* from the target description */
    size_t nregs;
    uint64_t start_pc;
    uint64_t final_pc;     /* pc after the last step (a user pc after iretq) */
    uint64_t final_cs;
    double seconds;        /* stepping wall time */
    size_t stops;          /* times the guest stopped (steps + continues) */
    size_t empty_steps;    /* steps QEMU reported without executing anything
                              (same pc, no register changed): stepped again */
    size_t overs;          /* calls run through with --over */
    size_t resyncs;        /* fast mode: stops discarded (interrupt at the bp) */
    char error[FL_ERROR_MSG_MAX]; /* why it ended early, or "" */
    /* explain records (empty unless trace_options.explain) */
    bool explained;
    trace_var *vars;
    size_t nvars;
    trace_value *values;   /* call arguments */
    size_t nvalues;
    trace_fcall *fcalls;
    size_t nfcalls;
    trace_check *checks;
    size_t nchecks;
    void *priv;            /* allocator state */
} trace_result;

/* Start tracing at the current stop (the guest must be stopped, with no code
 * breakpoint of the caller at the current pc). The guest is left stopped
 * where the trace ended (for the default stop: at the user pc after the
 * iretq). On error or timeout *out still holds what was recorded (stop =
 * TRACE_STOP_ERROR / TIMEOUT, error set) and -1 is returned; *out is NULL
 * only if nothing could be allocated. Every breakpoint it inserted is
 * removed on every path. */
int trace_run(tgt *t, kern *k, const trace_options *opt, trace_result **out, fl_error *err);
void trace_result_free(trace_result *r);

/* Building a result by hand (trace_run uses these; tests build synthetic
 * traces with them). Strings are copied. Return -1 only when out of memory. */
trace_result *trace_result_new(const char *const *regnames, size_t nregs);
int trace_result_add_pc(trace_result *r, const trace_pc *pc, uint32_t *index);
int trace_result_add_step(trace_result *r, uint32_t pc_index, int depth, const trace_change *ch, size_t nch,
                          unsigned flags);
/* Name the callee of the last step (one with TRACE_F_OVER). */
int trace_result_add_over(trace_result *r, const char *function);
/* A string owned by the result (interned); NULL stays NULL, or when out of memory. */
const char *trace_result_str(trace_result *r, const char *s);
/* Explain records; their strings must come from trace_result_str. *index
 * (may be NULL) receives the new record's index. */
int trace_result_add_var(trace_result *r, const trace_var *v);
int trace_result_add_value(trace_result *r, const trace_value *v, size_t *index);
int trace_result_add_fcall(trace_result *r, const trace_fcall *c, size_t *index);
int trace_result_add_check(trace_result *r, const trace_check *c);

/* ---- derived views (pure) ---- */

/* Line view: one entry per change of (file, line, function) from step to
 * step; steps without line info group by symbol. */
typedef struct trace_line {
    size_t t;              /* 0, 1, 2, ... */
    size_t first;          /* first step index */
    size_t count;          /* steps in this entry */
    uint32_t pc;           /* pc index of the first step */
    int depth;
} trace_line;
/* *lines is malloc'd (free()). */
int trace_lines(const trace_result *r, trace_line **lines, size_t *count);

/* Call tree: one node per call (the first node is the starting function;
 * a return below depth 0 starts a new top-level node). */
typedef struct trace_call {
    const char *function;  /* symbol at the callee's first step */
    uint64_t entry_pc;
    long parent;           /* index, or -1 */
    int depth;
    size_t first;          /* first step index */
    size_t total;          /* steps from first to its return, inclusive */
    size_t self;           /* steps in this function itself */
    bool over;             /* run through with --over (no steps inside) */
} trace_call;
/* *calls is malloc'd (free()). */
int trace_calltree(const trace_result *r, trace_call **calls, size_t *count);

/* ---- output ---- */

enum trace_view { TRACE_VIEW_LINE, TRACE_VIEW_INSN, TRACE_VIEW_TREE, TRACE_VIEW_EXPLAIN };
enum trace_format { TRACE_FMT_TEXT, TRACE_FMT_MD, TRACE_FMT_JSON, TRACE_FMT_CHROME, TRACE_FMT_FOLDED,
                    TRACE_FMT_SVG };
/* "line"/"insn"/"tree"/"explain", "text"/"md"/"json"/"chrome"/"folded"/"svg";
 * -1 if unknown. */
int trace_parse_view(const char *name, enum trace_view *out);
int trace_parse_format(const char *name, enum trace_format *out);
const char *trace_stop_name(enum trace_stop s);

/* Write the trace. text/md: the chosen view (md line view = the seed's
 * "### FUNC (t=N, file:line)" entries with source and changed registers;
 * explain view = the same entries in C terms, see explain.h; source text
 * verbatim). json: JSON Lines: one {"type":"trace",...} header, then one
 * {"type":"step",...} per instruction (not in the explain view), plus
 * {"type":"line",...} records (views line and explain; with the explain
 * fields vars/branch/call/ret when the trace was explained, then the
 * narrative's {"type":"check",...} records) or {"type":"call",...} records
 * (view tree). chrome: trace-event JSON (Perfetto, chrome://tracing): one
 * "X" slice per call, ts/dur in instructions. folded / svg: see flame.h.
 * chrome, folded and svg ignore the view. Returns 0, or -1 if a write
 * failed or memory ran out. */
int trace_report(FILE *out, enum trace_format fmt, enum trace_view view, const trace_result *r);

/* What the explain view narrates (NULL: everything). */
typedef struct trace_report_options {
    const char *function;  /* only this function's calls and what they call */
    int depth;             /* calls deeper than this below it are summarised; 0: no limit */
} trace_report_options;
/* trace_report with options (function, depth) for the explain view and the
 * flame formats (folded: "a;b;c count" per stack; svg: a flame chart). */
int trace_report_opt(FILE *out, enum trace_format fmt, enum trace_view view, const trace_result *r,
                     const trace_report_options *o);

#endif
