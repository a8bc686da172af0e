/* outcome: what the captured fault did. The page-table walk of CR2 before
 * and after, the VMA that covers it, the kernel function(s) that resolved it
 * (found live with breakpoints on the candidates, inlined copies included),
 * handle_mm_fault's return value (enum vm_fault_reason), the signal or the
 * exception-table fixup, one line classifying it, and checks computed from
 * those readings. Built on target, kernel and pagewalk; rendering in text,
 * Markdown and JSON (jansson) is here too, so report only calls out_render.
 *
 * Use, with the guest stopped in the captured fault before its resolver runs
 * (any capture station up to handle_mm_fault):
 *   out_session_open()            once: candidates, DWARF offsets, names
 *   out_on_stop()                 as the capture's stop hook (cap_stop_hook),
 *                                 or out_begin() once after the capture
 *   out_finish()                  runs the guest until the fault is over and
 *                                 leaves it stopped; fills an out_fault
 *   (or out_from_trace()          after a trace that ran the fault to its end)
 * Physical memory is read through QEMU's `Qqemu.PhyMemMode:1` (sent with
 * tgt_query, switched back after every walk), or, where the stub refuses it,
 * through the kernel's direct map (page_offset_base); the report says which.
 */
#ifndef FAULTLINE_OUTCOME_H
#define FAULTLINE_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "faultline/capture.h"
#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/pagewalk.h"
#include "faultline/scenario.h"
#include "faultline/target.h"
#include "faultline/trace.h"

typedef struct out_options {
    int timeout_ms;      /* from out_finish's start to the fault's end; 0: 30000 */
    int max_slots;       /* breakpoint slots: 0 = unlimited (TCG), 4 under KVM */
    bool direct_map;     /* read physical memory through the kernel's direct
                            map even where the stub has a physical mode (a
                            second, independent reading: tests) */
    /* Called while the guest runs (console draining); non-zero aborts. */
    int (*idle)(void *ctx);
    void *idle_ctx;
} out_options;

#define OUT_MAX_HITS 24
typedef struct out_hit {
    char function[40];   /* the candidate whose breakpoint fired */
    uint64_t pc;
    char detail[160];    /* what was read there ("sig 11 SIGSEGV, si_code 2 SEGV_ACCERR") */
} out_hit;

typedef struct out_vma {
    bool have;
    uint64_t vma;        /* struct vm_area_struct * */
    uint64_t start, end, flags;
    char flag_names[192];/* "rd wr mr mw me ac" */
    bool anonymous;
    char file[256];      /* "/bin/fl-trigger" (dentry names up to the root) */
    bool grew;           /* expand_downwards moved vm_start */
    uint64_t start_before;
} out_vma;

#define OUT_MAX_CHECKS 16
typedef struct out_fault {
    /* the fault, from the entry */
    int pid;
    char comm[17];
    uint64_t cr2, cr3, cr4, efer, error_code, fault_ip, regs;
    char error_decoded[160];
    /* the walks */
    bool have_before, have_after;
    pw_walk before, after;
    pw_diff diff;
    char phys_via[160];  /* how physical memory was read */
    /* the VMA */
    out_vma vma;
    char vm_flags_from[192]; /* where the flag names came from */
    /* what ran */
    size_t nhits;
    out_hit hits[OUT_MAX_HITS];
    char resolver[40];   /* the deciding candidate, "" if none fired */
    char unwatched[384]; /* candidates not armed: "no breakpoint slot left for: a, b; not in this kernel: c" */
    bool have_ret;
    uint64_t ret;        /* handle_mm_fault's vm_fault_t */
    char ret_decoded[160];
    bool have_signal;    /* force_sig_fault ran */
    bool signal_known;   /* ... and its parameters were read */
    int signal, sig_code;
    uint64_t sig_addr;
    char signal_name[16], sig_code_name[24];
    bool signal_pending; /* the signal's bit in current->pending when force_sig_fault returned */
    bool pending_known;  /* ... was read (not from a trace: delivered by then) */
    uint64_t handler_ip; /* pt_regs->ip once exc_page_fault returned: the delivery set it (0: unchanged) */
    bool fixed_up;
    uint64_t fixup_ip;   /* pt_regs->ip after the fixup */
    /* how it ended */
    bool handler_returned; /* exc_page_fault returned for this fault */
    bool reran_checked, reran, second_fault;
    char end[192];
    bool have_parent;    /* cow: the parent's walk of the same address */
    int parent_pid;
    pw_walk parent;
    uint64_t zero_page;  /* physical frame of empty_zero_page, 0 if unknown */
    char classification[256];
    size_t nchecks;
    cap_check checks[OUT_MAX_CHECKS];
    char note[256];      /* what could not be read, and why */
    double seconds;      /* out_finish's duration */
} out_fault;

typedef struct out_session out_session;

int out_session_open(out_session **out, kern *k, tgt *t, const out_options *opt, fl_error *err);
void out_session_close(out_session *s);

/* The capture's stop hook: at the entry station it records CR2/CR3/CR4/EFER,
 * the error code and the "before" walk; at handle_mm_fault its return address
 * and vma. ctx is the out_session. Never fails (what it cannot read is noted). */
void out_on_stop(void *ctx, int station, const cap_fault *f, tgt *t);
/* Without the hook: take the fault's identity from the capture and walk
 * "before" now; call it only while the guest is still before the resolver. */
int out_begin(out_session *s, const cap_fault *f, fl_error *err);
/* Arm the candidates, run until the fault is over (the faulting instruction
 * runs again, or a signal/fixup ended it), walk again, classify, check. The
 * guest is left stopped. On error what was found stays in *o. */
int out_finish(out_session *s, const cap_fault *f, out_fault *o, fl_error *err);

/* Classify a filled out_fault and compute its checks from its readings alone
 * (walks, hits, return value, signal, fixup, re-run): pure. out_finish calls
 * it; tests replay readings through it. pf_write/pf_user/pf_instr are the
 * error-code bits as the kernel names them (enum x86_pf_error_code's
 * X86_PF_WRITE, X86_PF_USER, X86_PF_INSTR); 0 leaves that bit unchecked. */
void out_judge(out_fault *o, uint64_t pf_write, uint64_t pf_user, uint64_t pf_instr);

/* What a bundled scenario promises of its outcome (its row's resolver and
 * the beginning of its classification), as two more checks. NULL: none. */
void out_check_scenario(out_fault *o, const scenario_def *sc);

/* Walk `va` from `cr3` at the current stop (CR4 and EFER read now), the way
 * the outcome walks: for a caller that wants another look (a test comparing
 * with GDB, a second address space). */
int out_walk_now(out_session *s, uint64_t cr3, uint64_t va, pw_walk *w, fl_error *err);

/* The same from a trace (trace.h) that ran the fault to user mode after a
 * capture whose stop hook was out_on_stop at the entry station: the
 * candidates among the stepped pcs, their parameters from the replayed
 * registers, the "after" walk where the trace stopped. What only breakpoints
 * can see (the pending signal, the re-run) is left out, not guessed. */
int out_from_trace(out_session *s, const trace_result *tr, out_fault *o, fl_error *err);

size_t out_checks_failed(const out_fault *o);

/* "text" or "md": the outcome section of a fault's report. */
int out_render(const out_fault *o, const char *format, FILE *out, fl_error *err);
/* The outcome as one JSON object (new reference), NULL if out of memory. */
json_t *out_to_json(const out_fault *o);

#endif
