/* cmd_expect: run --expect FILE (golden files). The run is made
 * reproducible and written as JSON Lines to a temporary file, then compared
 * with FILE by diff (A = the stored file, B = this run); the diff is printed
 * (--format text, md or json, -o FILE) and the exit status is 1 when the
 * path or a value changed. --update-expect writes the run to FILE instead
 * (through a temporary file beside it, renamed: never half-written). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/diff.h"

static int temp_path(char *buf, size_t cap, const char *dir)
{
    snprintf(buf, cap, "%s/.faultline-expect-XXXXXX", dir);
    int fd = mkstemp(buf);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int update(const cli_options *o, const char *tmp, int rc)
{
    mode_t mask = umask(0);
    umask(mask);
    chmod(tmp, 0666 & ~mask); /* mkstemp made it 0600: a golden file is shared */
    if (rename(tmp, o->expect) != 0) {
        fprintf(stderr, "faultline: cannot write %s: %s\n", o->expect, strerror(errno));
        unlink(tmp);
        return CMD_EXIT_ENV;
    }
    fprintf(stderr, "faultline: wrote the expected run to %s\n", o->expect);
    return rc;
}

static int compare(const cli_options *o, const char *tmp, int rc)
{
    enum diff_format fmt = DIFF_TEXT;
    diff_parse_format(o->format, &fmt);
    fl_error err = { 0 };
    const char *const inputs[][2] = { { "--expect", o->expect }, { NULL, NULL } };
    static cmd_output output;
    if (cmd_output_open(&output, o, inputs, &err) < 0) {
        unlink(tmp);
        return cmd_conclude(CMD_EXIT_ENV, &err, NULL);
    }
    int drc = cmd_diff_files(o->expect, tmp, (int)fmt, output.f);
    drc = cmd_output_close(&output, drc, true);
    unlink(tmp);
    if (drc == CMD_EXIT_CHECKS)
        fprintf(stderr, "faultline: the run differs from %s (A: the stored file, B: this run)\n", o->expect);
    return drc ? drc : rc;
}

int cmd_expect(const cli_options *o, int (*run)(const cli_options *o))
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", o->expect);
    const char *where = o->update_expect ? dirname(dir) : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (temp_path(tmp, sizeof tmp, where) < 0) {
        fprintf(stderr, "faultline: cannot create a temporary file in %s: %s\n", where, strerror(errno));
        return CMD_EXIT_ENV;
    }
    cli_options ro = *o;
    ro.format = "json";
    ro.output = tmp;
    ro.reproducible = true;
    int rc = run(&ro);
    if (rc == CMD_EXIT_ENV) {
        fprintf(stderr, "faultline: the run did not complete, so nothing was %s\n",
                o->update_expect ? "written to the expected file" : "compared");
        unlink(tmp);
        return rc;
    }
    return o->update_expect ? update(o, tmp, rc) : compare(o, tmp, rc);
}
