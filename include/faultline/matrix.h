/* matrix: the cells of `faultline matrix` (scenario x kernel x accelerator)
 * as data: planning (with --shard K/N slicing), each cell's result as a
 * small JSON file in its directory (so shards run on different machines
 * merge by reading directories), the summary table, and JUnit XML.
 * Library code: it neither starts processes nor prints on its own (the
 * command in cmd_matrix.c runs the cells); writers take the FILE. */
#ifndef FAULTLINE_MATRIX_H
#define FAULTLINE_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "faultline/error.h"

enum matrix_status { MATRIX_PENDING, MATRIX_PASS, MATRIX_FAIL, MATRIX_ERROR, MATRIX_SKIPPED };

typedef struct matrix_cell {
    char name[160];      /* "write.linux-6.12.118.tcg": unique, file-name safe */
    char scenario[32];
    char kernel[1024];   /* vmlinux path */
    char kernel_label[96];
    char accel[8];
    bool reproducible;   /* write-forked and kvm cells cannot be */
    enum matrix_status status;
    int exit_code;       /* the cell's `faultline run` exit status, -1 if none */
    double seconds;
    int checks, failed;  /* from the report's summary record */
    char reason[512];    /* skipped: why; failed: the first failed check or the error */
} matrix_cell;

typedef struct matrix_plan {
    matrix_cell *cells;
    size_t ncells;
} matrix_plan;

/* Cells for every scenario (comma list; "all" = the catalog, scenario.h) x
 * kernel x accelerator (comma list of tcg, kvm), in that order, then only
 * those of shard K of N (k = n = 1: all). reproducible(name) says which
 * scenarios run reproducibly (NULL: none); kvm cells never do. FL_EUSAGE on
 * a bad word. */
int matrix_plan_make(matrix_plan *out, const char *scenarios, const char *const *kernels, int nkernels,
                     const char *accels, int shard_k, int shard_n, bool (*reproducible)(const char *scenario),
                     fl_error *err);
void matrix_plan_free(matrix_plan *p);
/* "K/N" -> k, n (1 <= K <= N <= 1000). */
int matrix_parse_shard(const char *s, int *k, int *n, fl_error *err);

/* The directory of a cell under out_dir ("DIR/NAME"). */
void matrix_cell_dir(const char *out_dir, const matrix_cell *c, char *buf, size_t cap);
/* Fill checks/failed/reason from the cell's JSON Lines report. */
void matrix_cell_read_report(matrix_cell *c, const char *report_path);
/* DIR/NAME/result.json: write it / read every one under each of dirs. */
int matrix_cell_save(const char *out_dir, const matrix_cell *c, fl_error *err);
int matrix_load_results(matrix_plan *out, const char *const *dirs, int ndirs, fl_error *err);

const char *matrix_status_name(enum matrix_status s); /* "pass", "fail", ... */
/* Counts by status; exit status of the whole: 0 all passed or skipped, 1 a
 * cell failed or erred. */
int matrix_tally(const matrix_plan *p, int *passed, int *failed, int *skipped);
void matrix_write_table(FILE *out, const matrix_plan *p);
/* JUnit XML: one <testsuite> per kernel and accelerator, one <testcase>
 * per cell (classname faultline.KERNEL.ACCEL, name the scenario), with
 * <failure>, <error> or <skipped message=...>. */
int matrix_write_junit(const char *path, const matrix_plan *p, fl_error *err);
/* XML text escaping (exposed for tests): &, <, >, ", ' as entities;
 * characters XML 1.0 forbids (controls but tab/newline/CR) dropped. */
void matrix_xml_escape(FILE *out, const char *s);

#endif
