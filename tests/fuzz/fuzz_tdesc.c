/* libFuzzer: the target-description parser, with the input served as
 * target.xml and as every included annex (so includes recurse into it). */
#include "faultline/target.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct input {
    const uint8_t *data;
    size_t size;
} input;

static int fetch(void *ctx, const char *annex, char **xml, size_t *len, fl_error *err)
{
    input *in = ctx;
    (void)annex;
    (void)err;
    *xml = malloc(in->size + 1);
    if (!*xml)
        return fl_fail(err, FL_EIO, "out of memory");
    memcpy(*xml, in->data, in->size);
    (*xml)[in->size] = '\0';
    *len = in->size;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    tgt_regmap m;
    fl_error e;
    if (tgt_tdesc_parse(fetch, &in, &m, &e) == 0) {
        size_t sum = 0;
        for (size_t i = 0; i < m.count; i++) {
            if (m.regs[i].offset != sum || m.regs[i].size == 0)
                abort();
            if (tgt_regmap_find(&m, m.regs[i].name) == NULL)
                abort();
            sum += m.regs[i].size;
        }
        if (sum != m.g_size)
            abort();
        tgt_regmap_free(&m);
    }
    return 0;
}
