/* libFuzzer: the RSP packet decoder on arbitrary bytes. Checks its contract:
 * never reads or writes out of bounds, consumes at most the input, and
 * a decoded packet re-encodes and decodes to the same payload. */
#include "faultline/rsp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[RSP_MAX_PAYLOAD + 1];  /* fuzz harness only */
    const char *in = (const char *)data;
    size_t pos = 0;
    while (pos < size) {
        const char *dollar = memchr(in + pos, '$', size - pos);
        if (!dollar)
            break;
        pos = (size_t)(dollar - in);
        size_t outlen = 0, used = 0;
        fl_error e;
        int rc = rsp_decode(in + pos, size - pos, out, sizeof out, &outlen, &used, &e);
        if (used > size - pos)
            abort();
        if (rc == RSP_DEC_MORE)
            break;
        if (rc == RSP_DEC_PACKET) {
            if (outlen > RSP_MAX_PAYLOAD)
                abort();
            char *enc = malloc(2 * outlen + 8), *back = malloc(outlen + 1);
            size_t n = rsp_encode(out, outlen, enc, 2 * outlen + 8), bl, bu;
            if (n == 0 || rsp_decode(enc, n, back, outlen + 1, &bl, &bu, NULL) != RSP_DEC_PACKET ||
                bl != outlen || bu != n || memcmp(back, out, outlen) != 0)
                abort();
            free(enc);
            free(back);
        }
        pos += used ? used : 1;
    }
    return 0;
}
