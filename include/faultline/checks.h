/* checks: claims about a captured fault as rows. A row names the claim, the
 * two readings it compares (a station's value by name, or a value derived
 * from the capture such as current->mm or the trigger's target) and the
 * relation between them (equal, page of, bit agrees, ...). capture resolves
 * the readings of each row and calls chk_evaluate; a row with a reading
 * missing is left out, never passed. A new check is a new row (here for the
 * defaults, or cap_session_add_check at run time). Pure: no I/O. */
#ifndef FAULTLINE_CHECKS_H
#define FAULTLINE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/decode.h"
#include "faultline/scenario.h"
#include "faultline/station.h"

/* The outcome of one check, computed from two live readings. */
typedef struct chk_result {
    char name[48];       /* stable id, e.g. "cr2-matches-target" */
    char claim[192];     /* what is claimed, in words */
    char expected[64];
    char actual[64];
    bool ok;
} chk_result;

enum chk_relation {
    CHK_EQUAL,        /* the same number */
    CHK_PAGE_OF,      /* actual is expected's base page (Intel SDM vol. 3, 4.5: 4 KiB) */
    CHK_BIT_AGREES,   /* bit bits[1] of actual is set exactly when bit bits[0] of expected is */
    CHK_RPL_AGREES,   /* actual, a selector, has RPL 3 exactly when bit bits[0] of expected is set */
    CHK_FLAG_CLEAR,   /* bit bits[0] of actual is clear (expected: none) */
    CHK_SUM,          /* the named bits of actual (decoder) OR to its raw value (expected: none) */
    CHK_SAME_PID,     /* expected, a pid, is current's pid (actual) */
    CHK_SAME_TEXT,    /* two derived texts are the same (the path a scenario promises) */
    CHK_SCENARIO_BITS,/* bits[0] and bits[1] of actual are as the scenario promises */
};

/* A reading: a station's value by function and value name, or, with station
 * NULL, a value derived from the capture:
 *   "filter.addr"    the address filtered for (the trigger's target); absent if 0
 *   "filter.pid"     the pid filtered for; absent if 0
 *   "current.pid"    current's pid at the entry station
 *   "current.mm"     current->mm; absent if 0
 *   "scenario.skips" the stations the scenario promises not to reach (text)
 *   "path.skips"     the enabled stations this fault did not reach (text)
 *   "scenario"       the scenario's row (for CHK_SCENARIO_BITS) */
typedef struct chk_ref {
    const char *station;
    const char *value;
} chk_ref;

/* Each side lists alternatives: the first one captured is used. */
#define CHK_ALTS 3
typedef struct chk_def {
    const char *name;
    const char *claim;
    chk_ref expected[CHK_ALTS];
    chk_ref actual[CHK_ALTS];
    enum chk_relation relation;
    const char *bits[2];            /* bit names for the bit relations */
    enum station_decoder decoder;   /* CHK_SUM: whose bit names */
} chk_def;

/* One side as resolved from a capture. */
typedef struct chk_side {
    bool have;
    uint64_t value;
    const char *text;    /* derived texts; current's comm for current.pid */
    const char *name;    /* the value's name ("eflags"), for the sentence */
} chk_side;

/* What relations need besides the two sides. */
typedef struct chk_env {
    const decode_bits *bits[STATION_DEC_COUNT]; /* bit names per decoder (may be NULL) */
    const scenario_def *scenario;               /* NULL: none */
} chk_env;

size_t chk_default_count(void);
const chk_def *chk_default(size_t i);

/* Whether the relation reads the expected side at all. */
bool chk_needs_expected(const chk_def *row);

/* Evaluate a row whose sides are resolved. Returns true with *out filled, or
 * false when the row is left out (a side or a bit name missing in this
 * kernel). */
bool chk_evaluate(const chk_def *row, const chk_side *expected, const chk_side *actual, const chk_env *env,
                  chk_result *out);

#endif
