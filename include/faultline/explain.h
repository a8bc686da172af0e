/* explain: the trace in the words of the C source.
 *
 * While trace_run steps (trace_options.explain), explain_stop is called at
 * every stop, before the instruction at pc runs. At the first stop of each
 * source line of a function it reads, through the kernel's DWARF, the
 * parameters and locals in scope (inlined frames included) and records those
 * whose value changed since that function's previous line, attributed to
 * that previous line (the one whose execution changed them). At the first
 * stop inside a callee it reads the callee's parameters (the call's
 * arguments); after a `ret` it reads the value returned, typed by the
 * callee's DWARF return type (in rax, the psABI's return register, only when
 * that type is a scalar or pointer). Entering an inlined instance is a call
 * too (its parameters, no return value).
 *
 * Values are decoded by type: enums by enumerator names, the variables of
 * the (function, variable, enum) table below as flag sets (e.g. `flags` of
 * do_user_addr_fault by enum fault_flag), pointers by the symbol they point
 * into, bool as true/false, signed integers in decimal. A variable whose
 * location does not cover pc is "optimized out"; nothing is guessed from
 * register conventions.
 *
 * Registers come from the `g` reply the tracer already read at the stop;
 * memory-located variables cost reads (tgt caches them per stop), made only
 * when their line is entered.
 *
 * explain_finish closes what is still open and computes the checks (see
 * explain.c's check rows). The writing side (explain_write) is pure.
 * All calls return 0 or -1 with `err` filled (see error.h).
 */
#ifndef FAULTLINE_EXPLAIN_H
#define FAULTLINE_EXPLAIN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "faultline/error.h"
#include "faultline/kernel.h"
#include "faultline/target.h"
#include "faultline/trace.h"

typedef struct explain explain;

int explain_open(explain **out, kern *k, tgt *t, fl_error *err);
void explain_close(explain *x);
/* At a stop before step r->nsteps runs at pc, call depth `depth`, registers
 * `g` (the target's `g` layout). */
int explain_stop(explain *x, trace_result *r, uint64_t pc, int depth, const uint8_t *g, fl_error *err);
/* After the last step (pc, depth and g: where the trace ended): closes the
 * open frames and adds the checks to r. */
int explain_finish(explain *x, trace_result *r, uint64_t pc, int depth, const uint8_t *g, fl_error *err);

/* The explain view in text or md (other formats: -1). Pure. */
int explain_write(FILE *out, enum trace_format fmt, const trace_result *r, const trace_report_options *o);

/* For the JSON writer (trace_report.c): the records of each line entry of
 * trace_lines(r). NULL when out of memory. */
typedef struct explain_index explain_index;
explain_index *explain_index_new(const trace_result *r);
void explain_index_free(explain_index *ix);
size_t explain_index_lines(const explain_index *ix, const trace_line **l);
/* Add "vars", "branch", "call" and "ret" to the JSON record of line entry e. */
void explain_json_line(json_t *rec, const trace_result *r, const explain_index *ix, size_t e);
/* {"type":"check", name, ok, claim, expected, actual, "of":"trace"}: the
 * capture's check record, from the narrative. */
json_t *explain_json_check(const trace_check *c);

#endif
