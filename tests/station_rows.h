/* Station rows the tests add at run time (cap_session_add_station): one the
 * write fault reaches after the six default stations, and one no kernel has;
 * and a captured fault rendered in one format into a string.
 * Shared by tests/unit/test_capture.c (fake stub) and
 * tests/integration/itest_station_rows.c (the live guest). */
#ifndef FAULTLINE_TESTS_STATION_ROWS_H
#define FAULTLINE_TESTS_STATION_ROWS_H

#include "faultline/report.h"
#include "faultline/station.h"

#include <stdio.h>

/* The new anonymous folio joins the reverse map (mm/rmap.c). */
static const station_def rmap_row = {
    .function = "folio_add_new_anon_rmap",
    .title = "The new anonymous folio joins the reverse map",
    .values = {
        { .name = "folio", .read = STATION_PARAM, .from = "folio", .slot = 0 },
        { .name = "vma", .read = STATION_PARAM, .from = "vma", .slot = 1 },
        { .name = "address", .read = STATION_PARAM, .from = "address", .slot = 2 },
        { .name = "vma->vm_mm", .read = STATION_MEMBER, .from = "vm_area_struct.vm_mm", .base = "vma" },
    },
};

static const station_def missing_row = {
    .function = "faultline_no_such_function",
    .title = "Not in any kernel",
    .values = { { .name = "x", .read = STATION_PARAM, .from = "x", .slot = 0 } },
};

/* The report of one fault in fmt, malloc'd. */
static char *render_fault(enum report_format fmt, const cap_fault *f, const cap_session *cs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    report_trigger t = { .have = false };
    report_fault(o, fmt, &t, f, cs);
    fclose(o);
    return buf;
}

#endif
