/* One error convention for the whole program.
 *
 * Every fallible call takes an `fl_error *` as its last argument and returns
 * 0 on success or -1 on failure, after filling the error with a category and
 * one sentence: what failed, on what, and what to do. Callers that add context
 * use fl_error_prefix() rather than overwriting, so the user sees the whole
 * chain in one line. A NULL `fl_error *` is allowed and discards the message.
 */
#ifndef FAULTLINE_ERROR_H
#define FAULTLINE_ERROR_H

#include <stddef.h>

enum fl_errcode {
    FL_OK = 0,
    FL_EIO,       /* system call or transport failed (errno-style) */
    FL_ETIMEOUT,  /* a wait ran out of time */
    FL_EPROTO,    /* the peer sent something that does not parse or is refused */
    FL_EUSAGE,    /* bad command line or bad argument from the caller */
    FL_ENOTFOUND, /* a named thing (symbol, register, member, file) does not exist */
    FL_ENOSLOT,   /* no hardware breakpoint slot left (KVM's four debug registers) */
    FL_EFORMAT,   /* a file is not what it should be (not ELF, no DWARF, ...) */
    FL_ECLOSED,   /* the peer went away (QEMU exited, connection reset) */
    FL_EINTR,     /* interrupted by SIGINT/SIGTERM */
    FL_ENOMEM,    /* an allocation failed */
};

#define FL_ERROR_MSG_MAX 512

typedef struct fl_error {
    enum fl_errcode code;
    char msg[FL_ERROR_MSG_MAX];
} fl_error;

/* Set err (if non-NULL) to code and the formatted sentence; returns -1 so a
 * caller can write `return fl_fail(err, FL_EIO, "...", ...);`. */
int fl_fail(fl_error *err, enum fl_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "context: " to the message already in err (code unchanged); -1. */
int fl_error_prefix(fl_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reset err to FL_OK and an empty message. */
void fl_error_clear(fl_error *err);

/* Short name of a code, for tests and JSON ("timeout", "io", ...). */
const char *fl_errcode_name(enum fl_errcode code);

#endif
