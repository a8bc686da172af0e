/* flame: the trace as a picture. Folded stacks (one "a;b;c count" line per
 * stack of functions, counts in instructions, the convention flame-graph
 * tools read) and a self-contained SVG flame chart of the path (one box per
 * call, left to right in execution order, width = instructions, hover shows
 * the function's file:line and counts; no script, no network). Pure. */
#ifndef FAULTLINE_FLAME_H
#define FAULTLINE_FLAME_H

#include <stdio.h>

#include "faultline/trace.h"

enum flame_format { FLAME_FOLDED, FLAME_SVG };

/* o (may be NULL): only the calls of o->function and below, at most
 * o->depth levels below it (deeper instructions count for the frame at the
 * limit). Returns 0, or -1 if a write failed or memory ran out. */
int flame_write(FILE *out, enum flame_format fmt, const trace_result *r, const trace_report_options *o);

#endif
