/* report: a captured fault as text for a terminal, as the Markdown worksheet
 * (station by station like shared/reference/seed-worksheet.md, every value
 * live), or as JSON Lines (schema in docs/json-schema.md). Writes only;
 * knows nothing of the wire. */
#ifndef FAULTLINE_REPORT_H
#define FAULTLINE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "faultline/capture.h"
#include "faultline/outcome.h"
#include "faultline/usersym.h"

enum report_format { REPORT_TEXT, REPORT_MD, REPORT_JSON };

/* "text" / "md" / "json"; -1 if unknown. */
int report_parse_format(const char *name, enum report_format *out);

typedef struct report_meta {
    const char *kernel;   /* "linux-source-6.12 6.12.117-1~deb12u1 (6.12.117)" or the banner */
    const char *qemu;     /* "QEMU emulator version 7.2.22 ..." or NULL */
    const char *accel;    /* "tcg" / "kvm" / NULL (attached to a user's QEMU) */
    const char *vmlinux;  /* path */
    const char *gdb;      /* stub address */
    double boot_seconds;  /* QEMU start to the trigger's announcement; 0 if n/a */
} report_meta;

typedef struct report_trigger {
    bool have;            /* false when attached with filters only */
    const char *scenario;
    int pid;
    const char *comm;
    uint64_t page, target;
    const char *outcome;  /* the outcome's one-line classification, or NULL:
                             said at the top of the fault */
    /* A user's program (run -- PROGRAM): its argv as the host passed it;
     * it has no page or target of its own, so none is shown. */
    const char *const *argv;
    int argc;
    const usersym *syms;  /* the program's function symbols: where in it a
                             user-mode fault was ("main+0x2a"); may be NULL */
} report_trigger;

typedef struct report_summary {
    unsigned faults;      /* faults captured */
    unsigned checks, failed;
    unsigned passed_over;
    double seconds;       /* whole run */
    const char *error;    /* the error that ended the run early, or NULL */
    /* run -- PROGRAM: every fault of the program the capture saw (at the
     * entry, matching the filters or not), how many matched them, and
     * the program's exit status once init reported it. */
    bool program;
    unsigned program_faults, matched;
    bool exited;
    int exit_status;
} report_summary;

void report_begin(FILE *out, enum report_format fmt, const report_meta *meta);
void report_fault(FILE *out, enum report_format fmt, const report_trigger *trig, const cap_fault *f,
                  const cap_session *s);
/* What the fault did (outcome.h), after its report_fault: the outcome's own
 * text or Markdown section, or one JSON record of type "outcome". */
void report_outcome(FILE *out, enum report_format fmt, const out_fault *o);
/* The table of every fault (text and md; json writes report_fault's
 * records): its head once, then one row per fault, index from 1, with the
 * outcome's classification when o is not NULL. */
void report_table_head(FILE *out, enum report_format fmt);
void report_table_row(FILE *out, enum report_format fmt, unsigned index, const report_trigger *trig,
                      const cap_fault *f, const out_fault *o);
void report_end(FILE *out, enum report_format fmt, const report_summary *sum);

#endif
