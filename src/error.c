#include "faultline/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fl_fail(fl_error *err, enum fl_errcode code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return -1;
}

int fl_error_prefix(fl_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[FL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Long chains are cut at FL_ERROR_MSG_MAX: the tail is the detail. */
    char joined[2 * FL_ERROR_MSG_MAX + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    memcpy(err->msg, joined, sizeof err->msg - 1);
    err->msg[sizeof err->msg - 1] = '\0';
    return -1;
}

void fl_error_clear(fl_error *err)
{
    if (!err)
        return;
    err->code = FL_OK;
    err->msg[0] = '\0';
}

const char *fl_errcode_name(enum fl_errcode code)
{
    switch (code) {
    case FL_OK: return "ok";
    case FL_EIO: return "io";
    case FL_ETIMEOUT: return "timeout";
    case FL_EPROTO: return "protocol";
    case FL_EUSAGE: return "usage";
    case FL_ENOTFOUND: return "not-found";
    case FL_ENOSLOT: return "no-slot";
    case FL_EFORMAT: return "format";
    case FL_ECLOSED: return "closed";
    case FL_EINTR: return "interrupted";
    case FL_ENOMEM: return "nomem";
    }
    return "unknown";
}
