/* capture: stop the guest at each station of the page-fault path for ONE
 * fault of the process we filter for, read the live state there, name it
 * from the kernel's DWARF, and check the values against each other.
 *
 * Stations (hardware breakpoints; the first three are NOKPROBE in the kernel):
 *   1 asm_exc_page_fault   CR2, CR3, CS, RFLAGS at the instant of entry and
 *                          the hardware frame on the stack
 *   2 exc_page_fault       error_code and the whole struct pt_regs
 *   3 do_user_addr_fault   regs, error_code, address
 *   4 lock_vma_under_rcu   mm, address (the seed's Probe 0)
 *   5 handle_mm_fault      vma, address, flags (enum fault_flag), regs
 *   6 handle_pte_fault     vmf->address, vmf->flags, vmf->pgoff (inlined)
 * With a slot limit (KVM: four debug registers) stations are armed in order
 * as earlier ones are hit. Faults of other processes are passed over and
 * counted. Knows nothing of output formats (report does) or of QEMU (vm). */
#ifndef FAULTLINE_CAPTURE_H
#define FAULTLINE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/decode.h"
#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/target.h"

enum cap_station_id {
    CAP_ST_ENTRY,      /* asm_exc_page_fault */
    CAP_ST_EXC,        /* exc_page_fault */
    CAP_ST_USER_FAULT, /* do_user_addr_fault */
    CAP_ST_LOCK_VMA,   /* lock_vma_under_rcu */
    CAP_ST_MM_FAULT,   /* handle_mm_fault */
    CAP_ST_PTE_FAULT,  /* handle_pte_fault */
    CAP_ST_COUNT
};

/* The function a station stops in, by id; NULL if out of range. */
const char *cap_station_function(enum cap_station_id id);
/* Station id by function name ("handle_mm_fault"), or -1. */
int cap_station_by_name(const char *function);

#define CAP_MAX_VALUES 40
typedef struct cap_value {
    char name[48];       /* "cr2", "frame.rip", "regs->cs", "vmf->flags" */
    uint64_t value;
    unsigned size;       /* bytes, for formatting */
    char decoded[192];   /* "FAULT_FLAG_WRITE|FAULT_FLAG_USER|...", "" if none */
} cap_value;

typedef struct cap_station {
    bool enabled;        /* asked for */
    bool hit;
    uint64_t pc;         /* where it stopped */
    char location[192];  /* "arch/x86/mm/fault.c:1481" of pc */
    char source[192];    /* that line's text, if the source tree is there */
    char insn[96];       /* disassembly of the instruction at pc */
    char note[192];      /* when not hit or partly read: why */
    bool kprobe_refused; /* would a kprobe on this function be refused? */
    char kprobe[128];    /* why, or how a kprobe could reach it */
    size_t nvalues;
    cap_value values[CAP_MAX_VALUES];
} cap_station;

#define CAP_MAX_CHECKS 64
typedef struct cap_check {
    char name[48];       /* stable id, e.g. "cr2-matches-target" */
    char claim[192];     /* what is claimed, in words */
    char expected[64];
    char actual[64];
    bool ok;
} cap_check;

typedef struct cap_filter {
    int pid;             /* 0: any */
    char comm[17];       /* "": any */
    uint64_t addr;       /* 0: any */
    bool addr_page;      /* match addr's 4 KiB page instead of the exact address */
} cap_filter;

typedef struct cap_options {
    cap_filter filter;
    unsigned stations;   /* bit i = station i; 0 = all */
    int timeout_ms;      /* for one fault, from arming to the last station */
    int max_slots;       /* breakpoint slots: 0 = unlimited (TCG), 4 under KVM */
    const char *scenario;/* "write", "read", "kernel-write" adds that scenario's
                            expectations to the checks; NULL: none */
    /* Called repeatedly while the guest runs (e.g. to drain the console);
     * a non-zero return aborts the wait with FL_EINTR. */
    int (*idle)(void *ctx);
    void *idle_ctx;
} cap_options;

typedef struct cap_fault {
    kern_task task;          /* current at the entry station */
    cap_station st[CAP_ST_COUNT];
    size_t nchecks;
    cap_check checks[CAP_MAX_CHECKS];
    unsigned passed_over;    /* faults of other processes/addresses skipped */
    char user_insn[96];      /* the faulting instruction, disassembled */
    uint64_t fault_ip;       /* its address (frame RIP) */
    double seconds;          /* arming to last station */
} cap_fault;

typedef struct cap_session cap_session;

/* Resolve everything the stations need from the kernel (addresses, inlined
 * instances, enum bits, struct layouts) once. */
int cap_session_open(cap_session **out, kern *k, tgt *t, const cap_options *opt, fl_error *err);
void cap_session_close(cap_session *s);
/* Change what the next capture filters for and which scenario's
 * expectations it checks (scenario may be NULL; it is copied). */
void cap_session_set_filter(cap_session *s, const cap_filter *filter, const char *scenario);

/* What the running kernel itself says of kprobes: listed[i] is 1 if station
 * i's function is in the guest's /sys/kernel/debug/kprobes/blacklist, 0 if
 * not, -1 if unknown. Each known one becomes a check against the verdict
 * derived from vmlinux (kern_kprobe_refusal). */
void cap_session_set_kprobe_live(cap_session *s, const int listed[CAP_ST_COUNT]);

/* Arm, run the guest until the filtered fault has passed the enabled
 * stations (or the timeout), disarm. The guest is left stopped. On timeout
 * or error what was captured stays in *out (partial) and -1 is returned. */
int cap_fault_capture(cap_session *s, cap_fault *out, fl_error *err);

/* Bit names the decoders used, for the worksheet's per-bit listing. */
const decode_bits *cap_fault_flag_bits(const cap_session *s);
const decode_bits *cap_error_code_bits(const cap_session *s);
const decode_bits *cap_rflags_bits(const cap_session *s);

/* Lookup of a captured value by station and name; NULL if absent. */
const cap_value *cap_value_get(const cap_fault *f, enum cap_station_id st, const char *name);
/* Number of checks that failed. */
size_t cap_checks_failed(const cap_fault *f);

#endif
