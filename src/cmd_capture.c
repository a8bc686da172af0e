/* cmd_capture: the capture against a QEMU the user started: connect (which
 * stops the guest), arm, capture --count filtered faults, detach so the
 * guest runs on. */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/outcome.h"
#include "faultline/exclog.h"
#include "faultline/util.h"

/* Connect to the user's stub and open the capture session on it. */
static int attach(const cli_options *o, cmd_vm *r, fl_error *err)
{
    if (kern_open(&r->k, o->kernel, NULL, err) < 0)
        return -1;
    if (tgt_connect(&r->t, o->gdb, 10000, err) < 0)
        return fl_error_prefix(err, "connecting to %s", o->gdb);
    cap_options copt = { .filter = { .pid = o->pid, .addr = o->addr, .addr_page = o->addr_page },
                         .stations = o->exception_log ? 1u << CAP_ST_ENTRY : cmd_probe_mask(o->probes),
                         .explicit_stations = o->probes != NULL, .timeout_ms = o->timeout_s * 1000,
                         .idle = cmd_check_stop };
    if (o->comm)
        snprintf(copt.filter.comm, sizeof copt.filter.comm, "%s", o->comm);
    return cap_session_open(&r->cs, r->k, r->t, &copt, err);
}

/* What each fault did: optional (a kernel it cannot follow is said, once). */
static out_session *outcome_open(const cli_options *o, cmd_vm *r)
{
    out_session *os = NULL;
    fl_error e = { 0 };
    out_options oo = { .timeout_ms = o->timeout_s * 1000, .idle = cmd_check_stop };
    if (out_session_open(&os, r->k, r->t, &oo, &e) < 0) {
        fprintf(stderr, "faultline: no outcome in this report: %s\n", e.msg);
        return NULL;
    }
    cap_session_on_stop(r->cs, out_on_stop, os);
    return os;
}

/* --exception-log: each fault of the log is reported as it is read. */
typedef struct log_sink {
    FILE *out;
    enum report_format fmt;
    cap_session *cs;
    report_summary *sum;
} log_sink;

static int report_log_fault(void *ctx, const cap_fault *f)
{
    log_sink *k = ctx;
    report_trigger rt = { .have = false };
    report_fault(k->out, k->fmt, &rt, f, k->cs);
    fflush(k->out);
    cmd_tally(k->sum, f);
    k->sum->faults++; /* a fault read from the log carries no checks */
    return 0;
}

static int capture_via_log(const cli_options *o, cmd_vm *r, log_sink *k, fl_error *err)
{
    exclog_capture_options lo = { .log_path = o->exception_log, .count = (unsigned)o->count,
                                  .timeout_ms = o->timeout_s * 1000, .addr = o->addr, .addr_page = o->addr_page,
                                  .cancelled = cmd_check_stop };
    unsigned got;
    return exclog_capture(r->cs, r->k, r->t, &lo, report_log_fault, k, &got, err);
}

int cmd_capture(const cli_options *o)
{
    enum report_format fmt = REPORT_TEXT;
    report_parse_format(o->format, &fmt);
    FILE *out;
    if (cmd_open_output(o, &out) < 0)
        return CMD_EXIT_ENV;
    cmd_vm r = { 0 };
    fl_error err = { 0 };
    report_summary sum = { 0 };
    double start = fl_now_s();
    char version[256];
    int rc = CMD_EXIT_ENV;
    bool begun = false;
    out_session *os = NULL;
    if (attach(o, &r, &err) < 0)
        goto out;
    /* The guest is stopped while we attach; say when it may fault. */
    fprintf(stderr, "faultline: attached to %s; waiting up to %d s for %d fault%s matching the filter\n", o->gdb,
            o->timeout_s, o->count, o->count == 1 ? "" : "s");
    cmd_kernel_version(o->kernel, r.k, version, sizeof version);
    report_meta meta = { .kernel = version, .vmlinux = o->kernel, .gdb = o->gdb };
    report_begin(out, fmt, &meta);
    begun = true;
    os = outcome_open(o, &r);
    log_sink sink = { out, fmt, r.cs, &sum };
    if (o->exception_log && capture_via_log(o, &r, &sink, &err) < 0)
        goto out;
    for (int i = 0; !o->exception_log && i < o->count; i++) {
        cap_fault f;
        static out_fault of;
        int crc = cap_fault_capture(r.cs, &f, &err);
        fl_error oe = { 0 };
        int orc = crc == 0 && os ? out_finish(os, &f, &of, &oe) : 0;
        report_trigger rt = { .have = false, .outcome = crc == 0 && os ? of.classification : NULL };
        if (f.st[0].hit || f.nchecks) {
            report_fault(out, fmt, &rt, &f, r.cs);
            if (crc == 0 && os)
                report_outcome(out, fmt, &of);
            fflush(out);
        }
        cmd_tally(&sum, &f);
        if (crc == 0 && os) {
            sum.checks += (unsigned)of.nchecks;
            sum.failed += (unsigned)out_checks_failed(&of);
        }
        if (orc < 0 && (oe.code == FL_EINTR || oe.code == FL_ECLOSED)) {
            err = oe;
            goto out;
        }
        if (crc < 0)
            goto out;
    }
    rc = sum.failed ? CMD_EXIT_CHECKS : 0;
out:
    sum.seconds = fl_now_s() - start;
    rc = cmd_conclude(rc, &err, &sum);
    if (begun)
        report_end(out, fmt, &sum);
    rc = cmd_close_output(out, o, rc);
    out_session_close(os);
    cap_session_close(r.cs);
    tgt_close(r.t); /* detach: the user's guest runs on */
    kern_close(r.k);
    return rc;
}
