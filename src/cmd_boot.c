/* cmd_boot: boot the bundled VM as a smoke test: print the trigger's
 * announcement and the boot time, let it fault unobserved, wait for its end. */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/util.h"

int cmd_boot(const cli_options *o)
{
    cmd_vm r = { 0 };
    fl_error err = { 0 };
    const char *const none[][2] = { { NULL, NULL } };
    cmd_output output; /* standard output, never blocking a stop signal */
    if (cmd_output_open(&output, o, none, &err) < 0)
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    FILE *out = output.f;
    char append[1024];
    double t0;
    snprintf(append, sizeof append, "faultline.scenario=%s", o->scenario);
    int rc = CMD_EXIT_ENV;
    if (cmd_boot_vm(o, &r, append, sizeof append, &t0, &err) < 0)
        goto out;
    cmd_console con;
    cmd_console_init(&con, r.v);
    char line[256];
    int expect = strcmp(o->scenario, "all") == 0 ? 3 : 1;
    for (int i = 0; i < expect; i++) {
        if (cmd_console_wait(&con, r.t, VM_ANNOUNCE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0)
            goto out;
        fprintf(out, "%s\n", line);
        if (i == 0)
            fprintf(out, "booted to the trigger in %.2f s (accelerator %s)\n", fl_now_s() - t0, vm_accel(r.v));
        fflush(out);
        if (vm_console_write(r.v, "go\n", &err) < 0)
            goto out;
    }
    if (cmd_console_wait(&con, r.t, VM_DONE_PREFIX, line, sizeof line, o->timeout_s * 1000, &err) < 0)
        goto out;
    fprintf(out, "%s\n", line);
    rc = strstr(line, "status=0") ? 0 : CMD_EXIT_CHECKS;
out:
    rc = cmd_conclude(rc, &err, NULL);
    rc = cmd_output_close(&output, rc, true);
    cmd_vm_cleanup(&r);
    return rc;
}
