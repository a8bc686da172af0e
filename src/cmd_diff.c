/* cmd_diff: `faultline diff A B`: two JSON Lines reports compared (the
 * comparison is diff.c's); exit 0 the same, 1 different, 2 unreadable. */
#include <stdio.h>

#include "faultline/cmd.h"
#include "faultline/diff.h"

/* Compare two files and write the result to out; the exit status. Shared
 * with run --expect (cmd_expect.c). */
int cmd_diff_files(const char *a_path, const char *b_path, int format, FILE *out)
{
    fl_error err = { 0 };
    diff_doc *a = NULL, *b = NULL;
    diff_result *r = NULL;
    int rc = CMD_EXIT_ENV;
    if (diff_doc_load(&a, a_path, &err) == 0 && diff_doc_load(&b, b_path, &err) == 0 &&
        diff_compare(a, b, NULL, &r, &err) == 0 && diff_write(out, (enum diff_format)format, r, &err) == 0)
        rc = diff_result_differs(r) ? CMD_EXIT_CHECKS : 0;
    if (rc == CMD_EXIT_ENV)
        fprintf(stderr, "faultline: diff: %s\n", err.msg);
    diff_result_free(r);
    diff_doc_free(a);
    diff_doc_free(b);
    return rc;
}

int cmd_diff(const cli_options *o)
{
    enum diff_format fmt = DIFF_TEXT;
    diff_parse_format(o->format, &fmt);
    fl_error err = { 0 };
    const char *const inputs[][2] = { { "the compared file", o->operands[0] },
                                      { "the compared file", o->operands[1] }, { NULL, NULL } };
    static cmd_output output;
    if (cmd_output_open(&output, o, inputs, &err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    int rc = cmd_diff_files(o->operands[0], o->operands[1], (int)fmt, output.f);
    return cmd_output_close(&output, rc, true);
}
