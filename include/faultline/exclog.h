/* exclog: the page faults QEMU's own exception log reports, read as QEMU
 * writes them, without stopping the guest.
 *
 * QEMU under TCG started with `-d int -D FILE` writes one record per
 * exception or interrupt it delivers (target/i386/tcg/seg_helper.c,
 * do_interrupt_all): a header line
 *     "  860: v=0e e=0007 i=0 cpl=3 IP=0033:0000000000529fac pc=... SP=002b:00007ffd396f2980 CR2=000000003a30186c"
 * then the CPU's registers as they were before delivery ("RIP=... RFL=...",
 * "CR0=... CR2=... CR3=..." and more). For a page fault (vector 0x0e) that is
 * what the CPU pushes on the handler's stack: the error code, RIP, CS,
 * RFLAGS, RSP and SS, plus CR2 and CR3. CR3 (without its PCID bits) names the
 * address space, so a process is found by the CR3 of one of its faults.
 *
 * What the log cannot give, and the breakpoint path can: anything read at a
 * stop in the handler (`current`'s pid and comm, the handler's CS, EFLAGS and
 * RSP, the faulting instruction's operand read from guest memory). Those are
 * left out of the faults made here and named in the station's note.
 *
 * Only QEMU's TCG writes these records (KVM delivers exceptions in the host
 * kernel). Library code: no printing, every wait bounded and cancellable. */
#ifndef FAULTLINE_EXCLOG_H
#define FAULTLINE_EXCLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/capture.h"
#include "faultline/error.h"

#define EXCLOG_VECTOR_PF 0x0e

/* One delivered exception, as the log states it. */
typedef struct exclog_record {
    uint64_t seq;        /* QEMU's own counter of logged records */
    unsigned vector;     /* v= */
    uint32_t error_code; /* e= */
    bool is_int;         /* i=1: a software interrupt (int N) */
    unsigned cpl;        /* cpl= */
    uint16_t cs;         /* IP=CS:RIP: the interrupted CS and RIP */
    uint64_t rip;
    uint16_t ss;         /* SP=SS:RSP: the interrupted SS and RSP */
    uint64_t rsp;
    uint64_t cr2;        /* CR2= (page faults only) */
    uint64_t rflags;     /* RFL= (or EFL= outside long mode) of the dump */
    uint64_t cr3;        /* CR3= of the dump */
    bool have_rflags, have_cr3;
} exclog_record;

/* Parse a record's header line (leading spaces allowed, no newline needed).
 * 1: a header, *r reset and filled; 0: not a header line. */
int exclog_parse_header(const char *line, exclog_record *r);
/* Take RFLAGS and CR3 from one line of the register dump that follows a
 * header; other lines leave *r unchanged. */
void exclog_parse_dump_line(const char *line, exclog_record *r);
/* The address-space part of a CR3: without the PCID (bits 0-11) and the
 * no-flush bit 63, so two CR3s of one mm compare equal. */
uint64_t exclog_cr3_space(uint64_t cr3);

/* Tailing reader of a log file (or FIFO) that QEMU is writing. */
typedef struct exclog_reader exclog_reader;
typedef struct exclog_stats {
    uint64_t records;      /* complete records of any vector */
    uint64_t page_faults;  /* of those, vector 0x0e */
    uint64_t incomplete;   /* headers whose register dump never came */
    uint64_t bytes;        /* read so far */
} exclog_stats;

/* Open PATH for reading from its start: a regular file QEMU appends to, or
 * a FIFO (opened without blocking for its writer). cancelled (may be NULL)
 * is asked at least every 50 ms while a read waits; non-zero ends the wait
 * with FL_EINTR. */
int exclog_open(exclog_reader **out, const char *path, int (*cancelled)(void *ctx), void *cancel_ctx,
                fl_error *err);
void exclog_close(exclog_reader *r);
/* The next complete page-fault record. Waits for QEMU to write more for at
 * most timeout_ms (-1: no limit; 0: only what is there now). Returns 1 with
 * *out filled, 0 when the time ran out with no record (not an error: the
 * guest may simply not fault), -1 on error (FL_EINTR when cancelled, FL_EIO). */
int exclog_next_fault(exclog_reader *r, exclog_record *out, int timeout_ms, fl_error *err);
exclog_stats exclog_reader_stats(const exclog_reader *r);
/* Skip what the file holds now (a regular file: read on from its end; a
 * FIFO: nothing to skip). */
void exclog_skip_existing(exclog_reader *r);

/* The entry station (asm_exc_page_fault) of a fault as the log gives it, in
 * the capture's shapes so the report code prints it: cr2, cr3 and the
 * hardware frame (frame.error_code, frame.rip, frame.cs, frame.rflags,
 * frame.rsp, frame.ss). Values only a stop can read are left out and named
 * in the station's note; task stays empty (pid 0). With a session, values
 * are decoded with its kernel's and target's bit names; NULL: raw numbers. */
void exclog_fault_from_record(const exclog_record *r, const cap_session *s, cap_fault *out);

/* An entry-only capture through the log. The session (opened on the guest
 * with the filter, at the entry station only) captures ONE fault with a
 * breakpoint: that stop names the filtered process's CR3 (and, with a pid or
 * comm filter, its mm). The guest then runs with no breakpoint per fault,
 * and the log's page faults with that CR3 (and the filter's address, on
 * CR2) from that fault on are reported through fn, in order.
 * A CR3 names an mm while the mm lives: every thread of the process
 * matches; a process that execs gets a new mm. Once the mm is torn down the
 * kernel may give its page-table page, so the same CR3, to a new process:
 * when the mm is known, one hardware breakpoint at exit_mmap (a stop per mm
 * teardown in the guest, not per fault) ends the capture at that mm's end,
 * with every fault of it read. Without it (no pid/comm filter) the capture
 * ends on count, stop() or the timeout only.
 * The log must be a regular file here (a FIFO nobody drains while the guest
 * runs to the first stop stalls QEMU). */
typedef struct exclog_capture_options {
    const char *log_path;
    unsigned count;        /* faults to report; 0: until the process ends,
                              stop() or the timeout */
    int timeout_ms;        /* the whole capture, -1: none; running out with
                              fewer than count faults is FL_ETIMEOUT */
    uint64_t addr;         /* 0: any address; else CR2 == addr (or its page) */
    bool addr_page;
    /* Asked between reads while the guest runs (e.g. to drain the console):
     * non-zero ends the capture normally once the log's records already
     * written are read (the guest ended). May be NULL. */
    int (*stop)(void *ctx);
    void *stop_ctx;
    int (*cancelled)(void *ctx); /* non-zero: FL_EINTR. May be NULL. */
    void *cancel_ctx;
} exclog_capture_options;
/* One fault, in the capture's shapes (exclog_fault_from_record); a
 * non-zero return ends the capture normally. */
typedef int (*exclog_fault_fn)(void *ctx, const cap_fault *f);
/* Returns 0 (with *reported faults given to fn) or -1 (err; *reported
 * still says how many were; FL_ECLOSED when the process ended before
 * count faults, FL_ETIMEOUT when the time ran out before them). The guest is left stopped, nothing armed
 * (unless QEMU went away). */
int exclog_capture(cap_session *s, kern *k, tgt *t, const exclog_capture_options *o, exclog_fault_fn fn, void *ctx,
                   unsigned *reported, fl_error *err);

#endif
