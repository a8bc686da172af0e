/* libFuzzer: the stop-reply parser on arbitrary bytes (not NUL-terminated:
 * the fuzzer's buffer is exactly `size` long, so over-reads are caught). */
#include "faultline/target.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tgt_stop s;
    fl_error e;
    if (tgt_parse_stop((const char *)data, size, &s, &e) == 0) {
        if (s.kind != TGT_STOP_SIGNAL && s.kind != TGT_STOP_EXITED && s.kind != TGT_STOP_KILLED)
            abort();
        if (s.code < 0 || s.code > 255)
            abort();
    }
    return 0;
}
