/* cmd_output: where the report goes, written so that it can neither
 * destroy a file nor hold faultline hostage:
 *  - a regular file (or a new one) is written to a temporary file beside it
 *    (mkstemp in the same directory), renamed over it when the report's
 *    first bytes are written (from then on it grows in place, so a reader
 *    can follow it), or at the end if the run succeeded or a stop signal
 *    cut it short; a run that fails before it wrote anything leaves the old
 *    file as it was;
 *  - an output that is one of the inputs (the kernel, the initramfs, the
 *    program) is refused before anything is read;
 *  - a FIFO, a terminal or a pipe is written directly, but never by a call
 *    that can block a stop signal: the open of a FIFO waits for its reader
 *    in steps, and every write waits in poll(); once a stop signal arrived
 *    the writes have half a second to finish, then give up. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/util.h"

enum { STOP_GRACE_MS = 500, WAIT_STEP_MS = 50 };

/* Wait until fd takes a write or a stop signal's grace ran out: 1 ready,
 * 0 gave up. */
static int wait_writable(cmd_output *out, int fd)
{
    for (;;) {
        if (cmd_stop_signal) {
            if (!out->grace_deadline)
                out->grace_deadline = fl_now_s() + STOP_GRACE_MS / 1000.0;
            else if (fl_now_s() > out->grace_deadline)
                return 0;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, WAIT_STEP_MS) == 1)
            return 1;
    }
}

/* The report begins: the temporary file takes the target's name. */
static int commit(cmd_output *out)
{
    if (!out->tmp[0])
        return 0;
    if (rename(out->tmp, out->path) < 0)
        return -1;
    out->tmp[0] = '\0';
    return 0;
}

/* The stream's write: at most PIPE_BUF bytes once poll() says the fd takes
 * some (a pipe then has a free page: the write cannot block). */
static ssize_t output_write(void *cookie, const char *buf, size_t n)
{
    cmd_output *out = cookie;
    size_t done = 0;
    if (n && commit(out) < 0)
        return -1;
    while (done < n) {
        if (!wait_writable(out, out->fd)) {
            errno = EINTR;
            return done ? (ssize_t)done : -1;
        }
        size_t chunk = n - done < PIPE_BUF ? n - done : PIPE_BUF;
        ssize_t w = write(out->fd, buf + done, chunk);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int output_close(void *cookie)
{
    cmd_output *out = cookie;
    return out->fd > STDERR_FILENO ? close(out->fd) : 0;
}

/* Open a FIFO (or other special file) for writing without blocking: a FIFO
 * with no reader yet is retried until one comes or a stop signal. */
static int open_special(cmd_output *out, fl_error *err)
{
    for (;;) {
        out->fd = open(out->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (out->fd >= 0)
            return 0;
        if (errno != ENXIO)
            return fl_fail(err, FL_EIO, "cannot write the report to %s: %s", out->path, strerror(errno));
        if (cmd_stop_signal)
            return fl_fail(err, FL_EINTR, "no reader opened the FIFO %s", out->path);
        poll(NULL, 0, WAIT_STEP_MS);
    }
}

/* A temporary file beside the target, with the mode the target has (or a
 * new file would get). */
static int open_temporary(cmd_output *out, const struct stat *existing, fl_error *err)
{
    char dir[PATH_MAX], base[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out->path);
    snprintf(base, sizeof base, "%s", out->path);
    snprintf(out->tmp, sizeof out->tmp, "%s/.%s.faultline-XXXXXX", dirname(dir), basename(base));
    out->fd = mkstemp(out->tmp);
    if (out->fd < 0) {
        out->tmp[0] = '\0';
        return fl_fail(err, FL_EIO, "cannot write the report to %s: %s", out->path, strerror(errno));
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(out->fd, existing ? existing->st_mode & 07777 : 0666 & ~mask);
    return 0;
}

/* Is the output one of the inputs? By device and inode, and by path. */
static int refuse_input(const cmd_output *out, const char *const inputs[][2], fl_error *err)
{
    struct stat so, si;
    bool have = stat(out->path, &so) == 0;
    char ro[PATH_MAX], ri[PATH_MAX];
    for (int i = 0; inputs[i][0]; i++) {
        const char *in = inputs[i][1];
        if (!in)
            continue;
        bool same = have && stat(in, &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
        same |= strcmp(in, out->given) == 0 || (realpath(in, ri) && realpath(out->given, ro) && !strcmp(ri, ro));
        if (same)
            return fl_fail(err, FL_EUSAGE, "-o %s is the same file as %s %s: the report would destroy its own input; "
                           "choose another output file", out->given, inputs[i][0], in);
    }
    return 0;
}

static FILE *cookie_stream(cmd_output *out)
{
    cookie_io_functions_t io = { .write = output_write, .close = output_close };
    return fopencookie(out, "w", io);
}

int cmd_output_open(cmd_output *out, const cli_options *o, const char *const inputs[][2], fl_error *err)
{
    memset(out, 0, sizeof *out);
    out->fd = STDOUT_FILENO;
    out->given = o->output ? o->output : "standard output";
    if (o->output) {
        /* Through a symbolic link: replace the file it names, not the link. */
        if (!realpath(o->output, out->path))
            snprintf(out->path, sizeof out->path, "%s", o->output);
        if (refuse_input(out, inputs, err) < 0)
            return -1;
        struct stat st;
        bool exists = stat(out->path, &st) == 0;
        if (exists && S_ISDIR(st.st_mode))
            return fl_fail(err, FL_EUSAGE, "cannot write the report to %s: it is a directory", o->output);
        int rc = exists && !S_ISREG(st.st_mode) ? open_special(out, err)
                                                : open_temporary(out, exists ? &st : NULL, err);
        if (rc < 0)
            return -1;
    }
    out->f = cookie_stream(out);
    if (!out->f) {
        output_close(out);
        if (out->tmp[0])
            unlink(out->tmp);
        return fl_fail(err, FL_EIO, "cannot write the report to %s: %s", out->given, strerror(errno));
    }
    return 0;
}

int cmd_output_close(cmd_output *out, int rc, bool report_written)
{
    if (!out->f)
        return rc;
    fflush(out->f);
    bool bad = ferror(out->f) != 0;
    int e = errno;
    if (fclose(out->f) != 0 && !bad) {
        bad = true;
        e = errno;
    }
    out->f = NULL;
    /* A signal that cut the writes short is the signal's exit, not a write error. */
    if (bad && cmd_stop_signal && out->grace_deadline)
        bad = false;
    /* Not renamed yet: nothing was written. */
    bool keep = !bad && (rc == 0 || rc == CMD_EXIT_CHECKS || (rc > 128 && report_written));
    if (out->tmp[0]) {
        if (keep && commit(out) < 0) {
            bad = true;
            e = errno;
        }
        if (out->tmp[0])
            unlink(out->tmp);
    }
    if (!bad)
        return rc;
    fprintf(stderr, "faultline: cannot write the report to %s: %s\n", out->given, strerror(e ? e : EIO));
    return rc == 0 || rc == CMD_EXIT_CHECKS ? CMD_EXIT_ENV : rc;
}
