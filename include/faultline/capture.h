/* capture: stop the guest at each station of the page-fault path for ONE
 * fault of the process we filter for, read the live state there, name it
 * from the kernel's DWARF, and check the values against each other.
 *
 * The stations are rows (station.h), the checks are rows (checks.h), the
 * scenarios' promises are rows (scenario.h). A session compiles its rows once
 * when it opens (breakpoint pcs, registers, member offsets, each pc's line,
 * source and disassembly); a stop only reads the guest and decodes. A station
 * the kernel has neither as a symbol nor inlined is "not in this kernel" and
 * its checks are left out, unless the caller named it (explicit_stations).
 * With a slot limit (KVM: four debug registers) stations are armed in order
 * as earlier ones are hit. Faults of other processes are passed over and
 * counted, at the cost of one stop: the address filter is decided from the
 * registers of that stop, `current` is read only for a pid/comm filter.
 * Knows nothing of output formats (report does) or of QEMU (vm). */
#ifndef FAULTLINE_CAPTURE_H
#define FAULTLINE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/checks.h"
#include "faultline/decode.h"
#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/station.h"
#include "faultline/target.h"

/* Indices of the default rows (src/station.c), for callers that name a
 * built-in station; stations added at run time follow them. */
enum cap_station_id {
    CAP_ST_ENTRY,      /* asm_exc_page_fault */
    CAP_ST_EXC,        /* exc_page_fault */
    CAP_ST_USER_FAULT, /* do_user_addr_fault */
    CAP_ST_LOCK_VMA,   /* lock_vma_under_rcu */
    CAP_ST_MM_FAULT,   /* handle_mm_fault */
    CAP_ST_PTE_FAULT,  /* handle_pte_fault */
    CAP_ST_COUNT
};

/* The function a default station stops in, by id; NULL if out of range. */
const char *cap_station_function(enum cap_station_id id);
/* Default station id by function name ("handle_mm_fault"), or -1. */
int cap_station_by_name(const char *function);

#define CAP_MAX_STATIONS 12

#define CAP_MAX_VALUES 40
typedef struct cap_value {
    char name[48];       /* "cr2", "frame.rip", "regs->cs", "vmf->flags" */
    uint64_t value;
    unsigned size;       /* bytes, for formatting */
    char decoded[192];   /* "FAULT_FLAG_WRITE|FAULT_FLAG_USER|...", "" if none */
    enum station_decoder decoder; /* which names decoded comes from */
    bool proof;          /* the worksheet proves its bits one by one */
} cap_value;

typedef struct cap_station {
    const station_def *row; /* its row (owned by the session or the defaults);
                               NULL in a fault built by hand: default row */
    bool enabled;        /* asked for */
    bool absent;         /* not in this kernel: neither a symbol nor inlined */
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
typedef chk_result cap_check;

typedef struct cap_filter {
    int pid;             /* 0: any */
    char comm[17];       /* "": any */
    uint64_t addr;       /* 0: any */
    bool addr_page;      /* match addr's 4 KiB page instead of the exact address */
} cap_filter;

typedef struct cap_options {
    cap_filter filter;
    unsigned stations;   /* bit i = station i; 0 = all */
    bool explicit_stations; /* the user named the stations (--probes): one the
                               kernel lacks is an error, not "not in this kernel" */
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
    size_t nstations;        /* 0 in a fault built by hand: the defaults */
    cap_station st[CAP_MAX_STATIONS];
    size_t nchecks;
    cap_check checks[CAP_MAX_CHECKS];
    unsigned passed_over;    /* faults of other processes/addresses skipped */
    char user_insn[96];      /* the faulting instruction, disassembled */
    uint64_t fault_ip;       /* its address (frame RIP) */
    double seconds;          /* arming to last station */
} cap_fault;

typedef struct cap_session cap_session;

/* Compile the default stations and checks: everything a stop needs from the
 * kernel (addresses, inlined instances, enum bits, struct layouts, each
 * breakpoint pc's line, source and disassembly) is resolved here, once. */
int cap_session_open(cap_session **out, kern *k, tgt *t, const cap_options *opt, fl_error *err);
void cap_session_close(cap_session *s);
/* Change what the next capture filters for and which scenario's
 * expectations it checks (scenario may be NULL; it is copied). */
void cap_session_set_filter(cap_session *s, const cap_filter *filter, const char *scenario);

/* Add a station row (copied; its strings must outlive the session) after
 * the defaults, compiled now. Before the first capture. Returns the new
 * station's index, or -1 (a full table; a function the kernel lacks only
 * with explicit_stations, else the station is "not in this kernel"). */
int cap_session_add_station(cap_session *s, const station_def *row, fl_error *err);
/* Add a check row (copied; its strings must outlive the session), evaluated
 * after the default checks. Before the first capture. */
int cap_session_add_check(cap_session *s, const chk_def *row, fl_error *err);
/* The session's station rows: the defaults, then the added ones. */
size_t cap_session_station_count(const cap_session *s);
const station_def *cap_session_station(const cap_session *s, int i);

/* Called after each station of the captured (matched) fault is read, with
 * the guest stopped there; the hook may read guest memory and registers. */
typedef void (*cap_stop_hook)(void *ctx, int station, const cap_fault *f, tgt *t);
void cap_session_on_stop(cap_session *s, cap_stop_hook fn, void *ctx);

/* What the running kernel itself says of kprobes: listed[i] is 1 if station
 * i's function is in the guest's /sys/kernel/debug/kprobes/blacklist, 0 if
 * not, -1 if unknown. Each known one becomes a check against the verdict
 * derived from vmlinux (kern_kprobe_refusal). */
void cap_session_set_kprobe_live(cap_session *s, const int listed[CAP_ST_COUNT]);

/* Arm, run the guest until the filtered fault has passed the enabled
 * stations (or the timeout), disarm. The guest is left stopped. On timeout
 * or error what was captured stays in *out (partial) and -1 is returned. */
int cap_fault_capture(cap_session *s, cap_fault *out, fl_error *err);

/* Bit names a decoder used (from this kernel or target), for the worksheet's
 * per-bit proof and the checks; NULL for decoders without bit names and when
 * this kernel names none of them. */
const decode_bits *cap_decoder_bits(const cap_session *s, enum station_decoder d);

/* Lookup of a captured value by station index and name; NULL if absent. */
const cap_value *cap_value_get(const cap_fault *f, int station, const char *name);
/* Number of checks that failed. */
size_t cap_checks_failed(const cap_fault *f);

#endif
