/* scenario: what each bundled trigger (vm/triggers/trigger.c) promises about
 * its fault, as rows: the access it makes, and so the error code bits the CPU
 * must push, the stations its fault does not reach, and what the outcome must
 * classify it as and which function must resolve it. capture and outcome turn
 * a row into checks against the live values. A new scenario is a new row.
 * Pure data: no I/O. */
#ifndef FAULTLINE_SCENARIO_H
#define FAULTLINE_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>

#define SCENARIO_MAX_SKIPS 4
typedef struct scenario_def {
    const char *name;        /* "write": faultline.scenario=NAME, the trigger's fl-NAME */
    const char *trigger;     /* what the trigger does to fault, in words */
    bool write;              /* X86_PF_WRITE expected set */
    bool user;               /* X86_PF_USER expected set */
    const char *skips[SCENARIO_MAX_SKIPS]; /* stations this fault does not
                                              reach, by function; NULL-ended */
    /* What the outcome (outcome.h) must make of it: */
    const char *resolver;    /* the deciding kernel function ("do_anonymous_page") */
    const char *classification; /* how the outcome's one line begins */
} scenario_def;

size_t scenario_count(void);
const scenario_def *scenario_at(size_t i);
/* The row named `name`, or NULL. */
const scenario_def *scenario_find(const char *name);

#endif
