#include "faultline/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int decode_bits_from_enum(const kern_enumerator *list, size_t count, decode_bits *out)
{
    out->bits = calloc(count ? count : 1, sizeof *out->bits);
    out->count = 0;
    if (!out->bits)
        return -1;
    for (size_t i = 0; i < count; i++) {
        uint64_t v = (uint64_t)list[i].value;
        /* Only single bits name a flag; zero (FAULT_FLAG_DEFAULT-style) and
         * multi-bit masks would double-count in a sum. */
        if (v == 0 || (v & (v - 1)) != 0)
            continue;
        decode_bit *d = &out->bits[out->count++];
        snprintf(d->name, sizeof d->name, "%s", list[i].name);
        d->mask = v;
    }
    return 0;
}

void decode_bits_free(decode_bits *b)
{
    free(b->bits);
    b->bits = NULL;
    b->count = 0;
}

uint64_t decode_bits_mask(const decode_bits *b, const char *name)
{
    for (size_t i = 0; i < b->count; i++)
        if (strcmp(b->bits[i].name, name) == 0)
            return b->bits[i].mask;
    return 0;
}

size_t decode_value(const decode_bits *b, uint64_t value, const decode_bit **parts, size_t cap,
                    uint64_t *named_sum, uint64_t *unknown)
{
    size_t n = 0;
    uint64_t sum = 0;
    for (int bit = 0; bit < 64; bit++) {
        uint64_t m = 1ull << bit;
        if (!(value & m))
            continue;
        for (size_t i = 0; i < b->count; i++) {
            if (b->bits[i].mask == m) {
                if (n < cap)
                    parts[n] = &b->bits[i];
                n++;
                sum |= m;
                break;
            }
        }
    }
    if (named_sum)
        *named_sum = sum;
    if (unknown)
        *unknown = value & ~sum;
    return n < cap ? n : cap;
}

void decode_format(const decode_bits *b, uint64_t value, char *buf, size_t cap)
{
    const decode_bit *parts[64];
    uint64_t sum, unknown;
    size_t n = decode_value(b, value, parts, 64, &sum, &unknown);
    size_t used = 0;
    buf[0] = '\0';
    if (value == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    for (size_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? "|" : "", parts[i]->name);
    if (unknown && used < cap)
        snprintf(buf + used, cap - used, "%s0x%llx", n ? "|" : "", (unsigned long long)unknown);
}

decode_selector decode_selector_of(uint64_t sel)
{
    /* Intel SDM vol. 3, 3.4.2 "Segment Selectors". */
    decode_selector s = { (unsigned)(sel & 3), (sel & 4) != 0, (unsigned)((sel >> 3) & 0x1fff) };
    return s;
}

void decode_selector_format(uint64_t sel, char *buf, size_t cap)
{
    decode_selector s = decode_selector_of(sel);
    snprintf(buf, cap, "index %u %s, RPL %u (%s mode)", s.index, s.ldt ? "LDT" : "GDT", s.rpl,
             s.rpl == 3 ? "user" : s.rpl == 0 ? "kernel" : "ring");
}
