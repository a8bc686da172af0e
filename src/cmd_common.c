/* cmd_common: what every command shares: how it ends (exit status and the
 * one sentence), the report stream, the station mask. */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"

void cmd_tally(report_summary *sum, const cap_fault *f)
{
    sum->faults += f->nchecks > 0;
    sum->checks += (unsigned)f->nchecks;
    sum->failed += (unsigned)cap_checks_failed(f);
    sum->passed_over += f->passed_over;
}

void cmd_tally_outcome(report_summary *sum, const out_fault *of)
{
    sum->checks += (unsigned)of->nchecks;
    sum->failed += (unsigned)out_checks_failed(of);
}

int cmd_conclude(int rc, fl_error *err, report_summary *sum)
{
    if (cmd_stop_signal) {
        cmd_stopped_by_signal(err);
        rc = 128 + cmd_stop_signal;
        fprintf(stderr, "faultline: %s%s\n", err->msg, sum ? "; the report holds what was captured before it" : "");
    } else if (rc == CMD_EXIT_ENV) {
        fprintf(stderr, "faultline: %s\n", err->msg);
    }
    if (sum && rc != 0 && rc != CMD_EXIT_CHECKS)
        sum->error = err->msg;
    return rc;
}

unsigned cmd_probe_mask(const char *list)
{
    unsigned mask = 0;
    if (!list)
        return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int id = cap_station_by_name(tok);
        if (id >= 0)
            mask |= 1u << id;
    }
    return mask;
}
