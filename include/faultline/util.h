/* util: the few small helpers every layer needs, written once: a monotonic
 * clock for deadlines and hex digit parsing. Pure functions, no state. */
#ifndef FAULTLINE_UTIL_H
#define FAULTLINE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in seconds / milliseconds: for deadlines and durations. */
double fl_now_s(void);
int64_t fl_now_ms(void);

/* A deadline timeout_ms from now; -1 (no deadline) when timeout_ms < 0. */
int64_t fl_deadline_ms(int timeout_ms);
/* Milliseconds left until deadline (0 when past); -1 for no deadline. */
int fl_remaining_ms(int64_t deadline);

/* Value of one hex digit, or -1. */
int fl_hexval(char c);
/* Parses up to 16 hex digits of p[0..len) into *v; stops at the first
 * non-hex character. Returns the number of digits used (0: none). */
size_t fl_parse_hex(const char *p, size_t len, uint64_t *v);
/* "0x" followed by 1-16 hex digits and nothing else; 0 or -1. */
int fl_parse_hex64(const char *s, uint64_t *out);

#endif
