/* libFuzzer harness for diff: two JSON Lines documents cut from the input
 * (at the first 0 byte) are loaded, compared both ways and written in all
 * three formats. A file from a CI artifact is anybody's text: it must load
 * or fail with a message, never crash, leak or hang. */
#include "faultline/diff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static diff_doc *load(const uint8_t *p, size_t n)
{
    FILE *f = fmemopen((void *)p, n, "r");
    if (!f)
        return NULL;
    diff_doc *d = NULL;
    fl_error err = { 0 };
    if (diff_doc_read(&d, f, "fuzz", &err) < 0 && (err.code == FL_OK || !err.msg[0]))
        abort(); /* a refusal always says why */
    fclose(f);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    const uint8_t *cut = memchr(data, 0, size);
    size_t na = cut ? (size_t)(cut - data) : size;
    diff_doc *a = load(data, na ? na : 1), *b = cut ? load(cut + 1, size - na - 1 ? size - na - 1 : 1) : NULL;
    diff_doc *docs[2] = { a, b ? b : a };
    for (int dir = 0; a && dir < 2; dir++) {
        diff_result *r = NULL;
        fl_error err = { 0 };
        diff_options o = { .max_cost = 200 };
        if (diff_compare(docs[dir], docs[1 - dir], &o, &r, &err) == 0) {
            FILE *out = fopen("/dev/null", "w");
            for (int fmt = DIFF_TEXT; out && fmt <= DIFF_JSON; fmt++)
                diff_write(out, (enum diff_format)fmt, r, &err);
            if (out)
                fclose(out);
            if (docs[0] == docs[1] && diff_result_differs(r))
                abort(); /* a document always equals itself */
        }
        diff_result_free(r);
    }
    diff_doc_free(a);
    diff_doc_free(b);
    return 0;
}
