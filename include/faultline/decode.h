/* decode: turn raw numbers into names, from the kernel's own DWARF enums
 * (enum fault_flag, enum x86_pf_error_code) and the target description's
 * flag fields (i386_eflags), so what the report says follows the kernel
 * and CPU that ran. Architectural facts with no such source (the CPL in a
 * selector's low bits, the selector's table/index split) are stated here,
 * once, with the SDM as their source. Pure functions: no I/O. */
#ifndef FAULTLINE_DECODE_H
#define FAULTLINE_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline/kernel.h"

/* One named bit-mask constant, e.g. {"FAULT_FLAG_WRITE", 0x1}. */
typedef struct decode_bit {
    char name[64];
    uint64_t mask;
} decode_bit;

/* A set of named bits. */
typedef struct decode_bits {
    decode_bit *bits;
    size_t count;
} decode_bits;

/* Take the single-bit constants of a kernel enum list (multi-bit constants
 * such as masks and zero values are skipped). bits->bits is malloc'd. */
int decode_bits_from_enum(const kern_enumerator *list, size_t count, decode_bits *out);
void decode_bits_free(decode_bits *b);
/* The constant for name, or 0 if the set has none. */
uint64_t decode_bits_mask(const decode_bits *b, const char *name);

/* The bits of `value` named in the set. `parts` receives up to `cap` entries
 * (the bits set, in ascending order); *named_sum is the OR of those masks and
 * *unknown the bits of value no constant names. Returns the number of parts. */
size_t decode_value(const decode_bits *b, uint64_t value, const decode_bit **parts, size_t cap,
                    uint64_t *named_sum, uint64_t *unknown);
/* "FAULT_FLAG_WRITE|FAULT_FLAG_USER"; "0" for zero; bits no constant names
 * follow as one hex number: "X86_PF_WRITE|0x100000". */
void decode_format(const decode_bits *b, uint64_t value, char *buf, size_t cap);

/* Selector: CPL (bits 1:0), table indicator (bit 2), index (bits 15:3). */
typedef struct decode_selector {
    unsigned rpl;
    bool ldt;
    unsigned index;
} decode_selector;
decode_selector decode_selector_of(uint64_t sel);
/* 0x33 -> "index 6 GDT, RPL 3 (user mode)" */
void decode_selector_format(uint64_t sel, char *buf, size_t cap);

#endif
