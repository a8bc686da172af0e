/* decode: bit names from enum lists, sums, unknown bits, selectors. */
#include "check.h"
#include "faultline/decode.h"

#include <stdlib.h>

int main(void)
{
    /* The shape of the kernel's enum fault_flag, plus a zero and a mask
     * constant that must not count as flags. */
    kern_enumerator fault_flag[] = {
        { "FAULT_FLAG_DEFAULT", 0 }, { "FAULT_FLAG_WRITE", 1 << 0 }, { "FAULT_FLAG_MKWRITE", 1 << 1 },
        { "FAULT_FLAG_ALLOW_RETRY", 1 << 2 }, { "FAULT_FLAG_RETRY_NOWAIT", 1 << 3 }, { "FAULT_FLAG_KILLABLE", 1 << 4 },
        { "FAULT_FLAG_TRIED", 1 << 5 }, { "FAULT_FLAG_USER", 1 << 6 }, { "FAULT_FLAG_REMOTE", 1 << 7 },
        { "FAULT_FLAG_INSTRUCTION", 1 << 8 }, { "FAULT_FLAG_INTERRUPTIBLE", 1 << 9 },
        { "FAULT_FLAG_UNSHARE", 1 << 10 }, { "FAULT_FLAG_ORIG_PTE_VALID", 1 << 11 },
        { "FAULT_FLAG_VMA_LOCK", 1 << 12 }, { "SOME_MASK", 0x30 },
    };
    decode_bits b;
    CHECK(decode_bits_from_enum(fault_flag, sizeof fault_flag / sizeof fault_flag[0], &b) == 0);
    CHECK_EQ_U64(b.count, 13); /* zero and the two-bit mask are skipped */
    CHECK_EQ_U64(decode_bits_mask(&b, "FAULT_FLAG_VMA_LOCK"), 0x1000);
    CHECK_EQ_U64(decode_bits_mask(&b, "SOME_MASK"), 0);
    CHECK_EQ_U64(decode_bits_mask(&b, "NOPE"), 0);

    /* The seed's 0x1255. */
    const decode_bit *parts[16];
    uint64_t sum, unknown;
    size_t n = decode_value(&b, 0x1255, parts, 16, &sum, &unknown);
    CHECK_EQ_U64(n, 6);
    CHECK_EQ_U64(sum, 0x1255);
    CHECK_EQ_U64(unknown, 0);
    CHECK_STR(parts[0]->name, "FAULT_FLAG_WRITE");
    CHECK_STR(parts[5]->name, "FAULT_FLAG_VMA_LOCK");
    char buf[256];
    decode_format(&b, 0x1255, buf, sizeof buf);
    CHECK_STR(buf, "FAULT_FLAG_WRITE|FAULT_FLAG_ALLOW_RETRY|FAULT_FLAG_KILLABLE|FAULT_FLAG_USER|"
                   "FAULT_FLAG_INTERRUPTIBLE|FAULT_FLAG_VMA_LOCK");

    /* Bits nobody names are reported, not dropped. */
    n = decode_value(&b, 0x40041, parts, 16, &sum, &unknown);
    CHECK_EQ_U64(n, 2);
    CHECK_EQ_U64(sum, 0x41);
    CHECK_EQ_U64(unknown, 0x40000);
    decode_format(&b, 0x40041, buf, sizeof buf);
    CHECK_STR(buf, "FAULT_FLAG_WRITE|FAULT_FLAG_USER|0x40000");
    decode_format(&b, 0, buf, sizeof buf);
    CHECK_STR(buf, "0");
    /* A tiny buffer is cut, never overrun. */
    char tiny[8];
    decode_format(&b, 0x1255, tiny, sizeof tiny);
    CHECK(strlen(tiny) == 7);
    /* cap smaller than the number of parts */
    n = decode_value(&b, 0x1255, parts, 2, &sum, &unknown);
    CHECK_EQ_U64(n, 2);
    CHECK_EQ_U64(sum, 0x1255);
    decode_bits_free(&b);
    CHECK(b.bits == NULL && b.count == 0);

    /* Selectors: the kernel's and the user's CS. */
    decode_selector s = decode_selector_of(0x33);
    CHECK_EQ_U64(s.rpl, 3);
    CHECK_EQ_U64(s.index, 6);
    CHECK(!s.ldt);
    s = decode_selector_of(0x10);
    CHECK_EQ_U64(s.rpl, 0);
    CHECK_EQ_U64(s.index, 2);
    decode_selector_format(0x33, buf, sizeof buf);
    CHECK_STR(buf, "index 6 GDT, RPL 3 (user mode)");
    decode_selector_format(0x10, buf, sizeof buf);
    CHECK_STR(buf, "index 2 GDT, RPL 0 (kernel mode)");
    decode_selector_format(0x0f, buf, sizeof buf);
    CHECK_STR(buf, "index 1 LDT, RPL 3 (user mode)");
    return check_summary("test_decode");
}
