/* What the outcome's source files share (not a public API). */
#ifndef FAULTLINE_OUTCOME_INTERNAL_H
#define FAULTLINE_OUTCOME_INTERNAL_H

#include "faultline/decode.h"
#include "faultline/outcome.h"

/* What a candidate's hit means. */
enum out_role {
    OUT_R_RESOLVE,   /* a handler that maps a page (do_anonymous_page, ...) */
    OUT_R_SIGNAL,    /* force_sig_fault: the signal and its si_code */
    OUT_R_FIXUP,     /* fixup_exception */
    OUT_R_BAD,       /* the bad_area family: the kernel refused the access */
    OUT_R_GROW,      /* expand_downwards: the stack VMA grows */
    OUT_R_SPURIOUS,  /* spurious_kernel_fault */
};
#define OUT_NCAND 17
enum out_role out_cand_role(int i);
const char *out_cand_name(int i);

typedef struct out_cand {
    uint64_t *pcs;       /* the symbol's entry and every inlined copy's */
    size_t npcs;
} out_cand;

enum out_member {
    OUT_M_VM_START, OUT_M_VM_END, OUT_M_VM_FLAGS, OUT_M_VM_FILE, OUT_M_F_DENTRY, OUT_M_D_NAME,
    OUT_M_D_PARENT, OUT_M_REAL_PARENT, OUT_M_TASK_PID, OUT_M_TASK_MM, OUT_M_MM_PGD, OUT_M_PENDING,
    OUT_M_REGS_IP, OUT_M_STACK_VM, OUT_M_CHILDREN, OUT_M_SIBLING, OUT_M_LIST_NEXT, OUT_M_COUNT
};

/* One inserted breakpoint and why. */
enum out_bp_kind {
    OUT_BP_CAND, OUT_BP_HMF_ENTRY, OUT_BP_HMF_RET, OUT_BP_EXC_RET, OUT_BP_RERUN, OUT_BP_ENTRY,
    OUT_BP_SIG_RET,      /* force_sig_fault's return: the signal is queued, not yet delivered */
};
typedef struct out_bp {
    uint64_t pc;
    enum out_bp_kind kind;
    int cand;            /* OUT_BP_CAND: index in the candidate table */
} out_bp;
#define OUT_MAX_BPS 96

struct out_session {
    kern *k;
    tgt *t;
    out_options opt;
    kern_frame frame;
    out_cand cands[OUT_NCAND];
    char absent[256];    /* candidates this kernel does not have */
    uint64_t hmf_entry, asm_entry, exc_return;
    kern_member member[OUT_M_COUNT];
    bool have_member[OUT_M_COUNT];
    decode_bits ret_bits, err_bits;
    bool have_ret_bits, have_err_bits;
    char vm_names[64][4];
    char vm_flags_from[192];
    uint64_t zero_page_va;
    bool phys_stub;      /* Qqemu.PhyMemMode works */
    uint64_t page_offset;/* else: the direct map's base */
    char phys_via[160];
    out_bp bps[OUT_MAX_BPS];
    size_t nbps;
    /* the fault in progress */
    out_fault cur;
    bool begun;
    uint64_t task;       /* current's task_struct */
    uint64_t vma_ptr;
    uint64_t hmf_ret;    /* handle_mm_fault's return address, once known */
    uint64_t mm;         /* current->mm */
    uint64_t stack_vm[2];/* mm->stack_vm (pages) before and after: the kernel's
                            own count of stack growth (acct_stack_growth) */
    bool have_stack_vm[2];
    bool live_ready;     /* out_prepare_live done */
    bool tracing;        /* out_from_trace: registers from the trace, no breakpoints */
    bool replay_exact;   /* ... and this step's registers are known exactly */
};

void out_note(out_fault *o, const char *fmt, const char *detail);
/* psABI DWARF register number -> target description name, NULL if none. */
int out_prepare_live(out_session *s, fl_error *err);

/* outcome_run.c */
void out_vmflags_load(out_session *s);
void out_phys_probe(out_session *s);
int out_walk(out_session *s, uint64_t cr3, uint64_t va, pw_walk *w, fl_error *err);
void out_at_hmf_entry(out_session *s);
void out_record_hit(out_session *s, int cand, uint64_t pc);
void out_handler_done(out_session *s);
void out_conclude(out_session *s, out_fault *o, int rc, const fl_error *err, double t0);
int out_read_member(out_session *s, uint64_t base, enum out_member m, uint64_t *v);
void out_disarm_all(out_session *s);
void out_read_vma(out_session *s, uint64_t vma, out_vma *v);
void out_vm_flags_names(const out_session *s, uint64_t flags, char *buf, size_t cap);

/* outcome_judge.c (and out_judge, public) */
void out_signal_names(out_fault *o);
void out_add_check(out_fault *o, const char *name, bool ok, const char *claim, const char *expected,
                   const char *actual);

#endif
