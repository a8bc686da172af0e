/* diff's private structures, shared by diff.c (load, align), diff_compare.c
 * (the comparison) and diff_report.c (text, md, json). */
#ifndef FAULTLINE_DIFF_INTERNAL_H
#define FAULTLINE_DIFF_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "faultline/diff.h"

/* One fault's records, in file order. */
typedef struct dfi_fault {
    json_t *trigger; /* NULL when attached */
    json_t *probes, *checks, *trace, *lines, *steps; /* arrays; trace: NULL or the header */
} dfi_fault;

struct diff_doc {
    char name[256];
    json_t *vm, *summary;
    dfi_fault *faults;
    size_t nfaults, cap;
};

struct diff_result {
    json_t *head;   /* the "diff" record */
    json_t *faults; /* array of "fault-diff" records */
    bool differs;
};

/* Is TYPE.FIELD in diff_variable_fields? */
bool dfi_is_variable(const char *type, const char *field);
/* Compare one pair of faults (either may be NULL: only on one side). */
json_t *dfi_compare_fault(const dfi_fault *a, const dfi_fault *b, size_t index, const diff_options *opt,
                          bool *differs, fl_error *err);
/* Compare the two traces of a fault into a "trace" object. */
json_t *dfi_compare_trace(const dfi_fault *a, const dfi_fault *b, const diff_options *opt, bool *differs,
                          fl_error *err);

/* The lines of both paths whose source names one of the bits (JSON strings)
 * that differ between the two faults' values, with how often each side ran
 * them and where each went next: the branches those bits decide. */
json_t *dfi_bit_lines(const dfi_fault *a, const dfi_fault *b, json_t *bits);

#endif
