/* diff: compares two faultline JSON Lines outputs (captures, runs, traces).
 *
 * Per fault (matched by order): the trigger's fields, per station the values
 * that changed and those that did not (with the decoded bits only one side
 * has), the checks whose verdict or readings changed, and for traces the two
 * paths aligned by (function, file:line) with a Myers diff over the `line`
 * records, never over raw pcs (so two kernels with different addresses still
 * align): the first point of divergence, the functions only one side
 * entered, instructions per function side by side, and the call sequence
 * (function entries with their depth) diffed the same way.
 *
 * Fields that legitimately vary from run to run (times, paths, versions,
 * the gdbstub address, source text) are never compared: diff_variable_fields
 * lists them, and the result names them. The result is itself JSON (jansson),
 * written as JSON Lines or rendered as text or Markdown. Library code: reads
 * and writes only the streams it is given. */
#ifndef FAULTLINE_DIFF_H
#define FAULTLINE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "faultline/error.h"

typedef struct diff_doc diff_doc;

/* Read a JSON Lines file (NULL or "-": stdin). A line that is not a JSON
 * object, or a file with no faultline record, is FL_EFORMAT naming the line. */
int diff_doc_load(diff_doc **out, const char *path, fl_error *err);
/* The same from an open stream; name is used in messages and the result. */
int diff_doc_read(diff_doc **out, FILE *in, const char *name, fl_error *err);
void diff_doc_free(diff_doc *d);
/* Faults found in the document. */
size_t diff_doc_faults(const diff_doc *d);

/* "record.field" entries never compared (NULL-terminated), e.g.
 * "vm.boot_seconds", "summary.seconds", "*.source". */
extern const char *const diff_variable_fields[];
/* One line per variable field with why it varies, for docs and --help. */
const char *diff_variable_reason(const char *field);

/* How path records are keyed: (function, file:line), or, across kernels
 * whose line numbers differ, (function, source text). AUTO: by line when
 * both files name the same kernel, by source text (when both have it)
 * otherwise. */
enum diff_align { DIFF_ALIGN_AUTO, DIFF_ALIGN_LINE, DIFF_ALIGN_SOURCE };

typedef struct diff_options {
    enum diff_align align;
    size_t context;      /* path lines shown around each change (default 3) */
    size_t max_hunks;    /* path hunks kept in the result (0: 20) */
    size_t max_cost;     /* Myers edit distance limit (0: 20000); beyond it the
                            paths are reported as different without alignment */
} diff_options;

typedef struct diff_result diff_result;

int diff_compare(const diff_doc *a, const diff_doc *b, const diff_options *opt, diff_result **out,
                 fl_error *err);
void diff_result_free(diff_result *r);
/* True when a compared value, check, station or the path differs. */
bool diff_result_differs(const diff_result *r);

enum diff_format { DIFF_TEXT, DIFF_MD, DIFF_JSON };
/* "text" / "md" / "json"; -1 if unknown. */
int diff_parse_format(const char *name, enum diff_format *out);
/* Write the result; -1 with err on a write error. */
int diff_write(FILE *out, enum diff_format fmt, const diff_result *r, fl_error *err);

/* The aligner, exposed for tests: Myers' O(ND) diff of two integer
 * sequences. ops gets one of '=', '-' (only in a), '+' (only in b) per step;
 * *nops is set. Returns the edit distance D, or -1 (FL_ERANGE-like usage
 * error: FL_EUSAGE) when D exceeds max_cost or memory runs out. */
long diff_myers(const int *a, size_t na, const int *b, size_t nb, size_t max_cost, char **ops, size_t *nops,
                fl_error *err);

#endif
