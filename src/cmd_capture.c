/* cmd_capture: the capture against a QEMU the user started: connect (which
 * stops the guest), arm, capture --count filtered faults, detach so the
 * guest runs on. */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/util.h"

/* Connect to the user's stub and open the capture session on it. */
static int attach(const cli_options *o, cmd_vm *r, fl_error *err)
{
    if (kern_open(&r->k, o->kernel, NULL, err) < 0)
        return -1;
    if (tgt_connect(&r->t, o->gdb, 10000, err) < 0)
        return -1; /* the sentence names the address already */
    cap_options copt = { .filter = { .pid = o->pid, .addr = o->addr, .addr_page = o->addr_page },
                         .stations = cmd_probe_mask(o->probes), .timeout_ms = o->timeout_s * 1000,
                         .idle = cmd_check_stop };
    if (o->comm)
        snprintf(copt.filter.comm, sizeof copt.filter.comm, "%s", o->comm);
    return cap_session_open(&r->cs, r->k, r->t, &copt, err);
}

int cmd_capture(const cli_options *o)
{
    enum report_format fmt = REPORT_TEXT;
    report_parse_format(o->format, &fmt);
    fl_error err = { 0 };
    const char *const inputs[][2] = { { "--vmlinux", o->kernel }, { NULL, NULL } };
    static cmd_output output;
    if (cmd_output_open(&output, o, inputs, &err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    FILE *out = output.f;
    cmd_vm r = { 0 };
    report_summary sum = { 0 };
    double start = fl_now_s();
    char version[256];
    int rc = CMD_EXIT_ENV;
    bool begun = false;
    if (attach(o, &r, &err) < 0)
        goto out;
    /* The guest is stopped while we attach; say when it may fault. */
    fprintf(stderr, "faultline: attached to %s; waiting up to %d s for %d fault%s matching the filter\n", o->gdb,
            o->timeout_s, o->count, o->count == 1 ? "" : "s");
    cmd_kernel_version(o->kernel, r.k, version, sizeof version);
    report_meta meta = { .kernel = version, .vmlinux = o->kernel, .gdb = o->gdb };
    report_begin(out, fmt, &meta);
    begun = true;
    for (int i = 0; i < o->count; i++) {
        cap_fault f;
        int crc = cap_fault_capture(r.cs, &f, &err);
        report_trigger rt = { .have = false };
        if (f.st[0].hit || f.nchecks) {
            report_fault(out, fmt, &rt, &f, r.cs);
            fflush(out);
        }
        cmd_tally(&sum, &f);
        if (crc < 0)
            goto out;
    }
    rc = sum.failed ? CMD_EXIT_CHECKS : 0;
out:
    sum.seconds = fl_now_s() - start;
    rc = cmd_conclude(rc, &err, &sum);
    if (begun)
        report_end(out, fmt, &sum);
    rc = cmd_output_close(&output, rc, begun);
    cap_session_close(r.cs);
    tgt_close(r.t); /* detach: the user's guest runs on */
    kern_close(r.k);
    return rc;
}
