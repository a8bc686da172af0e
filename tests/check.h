/* Minimal test harness shared by the unit tests: each CHECK counts as one
 * assertion; a test program ends with `return check_summary("name");`, which
 * prints "name: N passed, N failed" (a line the CI log reader understands) and
 * returns non-zero if anything failed. */
#ifndef FAULTLINE_TESTS_CHECK_H
#define FAULTLINE_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>
#include <inttypes.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ_U64(actual, expected) do { \
    uint64_t a_ = (uint64_t)(actual), e_ = (uint64_t)(expected); \
    if (a_ == e_) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == 0x%" PRIx64 ", expected 0x%" PRIx64 "\n", \
                                   __FILE__, __LINE__, #actual, a_, e_); } \
} while (0)

#define CHECK_STR(actual, expected) do { \
    const char *a_ = (actual), *e_ = (expected); \
    if (a_ && e_ && strcmp(a_, e_) == 0) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
                                   __FILE__, __LINE__, #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)"); } \
} while (0)

static inline int check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
