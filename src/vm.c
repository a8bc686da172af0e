/* vm: start, watch and stop the bundled QEMU guest. See include/faultline/vm.h.
 *
 * Lifetime rules, because "no orphan QEMU, ever" is the contract:
 *  - every child pid lives in one fixed table (the module's only global
 *    state) from fork until it is reaped, so a signal handler or atexit can
 *    kill and reap it with async-signal-safe calls only;
 *  - SIGINT/SIGTERM/SIGHUP/SIGQUIT are blocked from fork until the pid is in
 *    the table, so no signal can slip between the two (the CLI's handlers
 *    call vm_kill_all; this module installs none);
 *  - the child asks for PR_SET_PDEATHSIG(SIGKILL), so a SIGKILL of faultline
 *    (which runs no handler) still takes QEMU down;
 *  - the child gets its own process group, so a terminal's Ctrl-C reaches
 *    faultline only, which then stops QEMU in order;
 *  - each private directory holds owner.pid, so when all of that failed
 *    (SIGKILL leaves the directory) the next run removes it.
 */
#include "faultline/vm.h"
#include "faultline/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VM_MAX_CHILDREN 16
#define VM_LINEBUF 8192
#define VM_TAIL_LINES 32
#define VM_TAIL_LEN 240
#define VM_DEFAULT_MEM_MB 256
#define VM_DEFAULT_START_MS 10000
#define VM_DEFAULT_PROBE_MS 20000
#define VM_STOP_GRACE_MS 2000
#define VM_WRITE_TIMEOUT_MS 5000

/* The one piece of global state: children not yet reaped (pid 0 = free
 * slot), each with its private directory so a signal handler can remove it
 * too. sig_atomic_t so a handler sees whole pids; dir is written before the
 * pid is published. */
static struct {
    volatile sig_atomic_t pid[VM_MAX_CHILDREN];
    char dir[VM_MAX_CHILDREN][64];
    volatile sig_atomic_t cleanup_installed;
} g_children;

/* Files QEMU and we put in a private directory (async-signal-safe removal
 * needs the names, not readdir). */
static const char *const private_files[] = {"gdb.sock", "qemu.err", "initrd.img", "owner.pid"};
#define OWNER_FILE "owner.pid"
/* Waits poll at most this long between checks of the cancellation hook. */
#define VM_SLICE_MS 100

struct vm {
    pid_t pid;
    bool reaped;
    int wstatus;          /* valid once reaped and status_known */
    bool status_known;
    int in_fd;            /* QEMU's stdin (serial input), ours to write */
    int out_fd;           /* QEMU's stdout (serial output), non-blocking */
    bool eof;
    char accel[8];
    char dir[64];
    char sock_path[128];
    char err_path[128];
    char log_path[128];   /* QEMU's -d int exception log, "" when not asked for */
    char initrd_cat[128];
    char gdb_addr[160];
    char buf[VM_LINEBUF];  /* console bytes not yet split into lines */
    size_t blen;
    char scratch[VM_LINEBUF];
    char tail[VM_TAIL_LINES][VM_TAIL_LEN];
    unsigned tail_next, tail_count;
    char tail_join[VM_TAIL_LINES * (VM_TAIL_LEN + 3) + 1];
    int (*cancelled)(void *ctx);
    void *cancel_ctx;
};

static bool vm_cancelled(const vm *v)
{
    return v->cancelled && v->cancelled(v->cancel_ctx);
}

/* ---- time ---------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- child table (async-signal-safe parts) ------------------------------- */

static int table_add(pid_t pid, const char *dir)
{
    for (int i = 0; i < VM_MAX_CHILDREN; i++) {
        if (g_children.pid[i] == 0) {
            snprintf(g_children.dir[i], sizeof g_children.dir[i], "%s", dir ? dir : "");
            g_children.pid[i] = (sig_atomic_t)pid;
            return 0;
        }
    }
    return -1;
}

static void table_remove(pid_t pid)
{
    for (int i = 0; i < VM_MAX_CHILDREN; i++)
        if (g_children.pid[i] == (sig_atomic_t)pid)
            g_children.pid[i] = 0;
}

static bool table_has_room(void)
{
    for (int i = 0; i < VM_MAX_CHILDREN; i++)
        if (g_children.pid[i] == 0)
            return true;
    return false;
}

void vm_kill_all(void)
{
    int saved = errno;
    for (int i = 0; i < VM_MAX_CHILDREN; i++) {
        pid_t p = (pid_t)g_children.pid[i];
        if (p <= 0)
            continue;
        kill(p, SIGKILL);
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
        }
        /* Remove the private directory with async-signal-safe calls only:
         * fixed names, no readdir, no snprintf. */
        const char *dir = g_children.dir[i];
        size_t dl = strlen(dir);
        for (size_t f = 0; dl && f < sizeof private_files / sizeof private_files[0]; f++) {
            char path[128];
            size_t fl = strlen(private_files[f]);
            if (dl + 1 + fl + 1 > sizeof path)
                continue;
            memcpy(path, dir, dl);
            path[dl] = '/';
            memcpy(path + dl + 1, private_files[f], fl + 1);
            unlink(path);
        }
        if (dl)
            rmdir(dir);
        g_children.pid[i] = 0;
    }
    errno = saved;
}

static void cleanup_atexit(void)
{
    vm_kill_all();
}

void vm_install_cleanup(void)
{
    if (!g_children.cleanup_installed) {
        g_children.cleanup_installed = 1;
        atexit(cleanup_atexit);
    }
}

/* ---- spawning ------------------------------------------------------------ */

/* Move fd to a number >= 3 so the dup2 onto 0/1/2 cannot clobber another of
 * the three. Child side only: async-signal-safe. */
static int child_high_fd(int fd)
{
    return fd < 3 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : fd;
}

/* The forked child: async-signal-safe calls only until exec. On failure it
 * writes exec's errno into ep1 (the parent reads it). */
static void child_exec(const char *const argv[], const int stdio[3], int ep1, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* parent died before prctl took effect */
        _exit(127);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = child_high_fd(stdio[i]);
    for (int i = 0; i < 3; i++)
        if (fds[i] < 0 || dup2(fds[i], i) < 0)
            _exit(127);
    /* Everything else, including fds other threads opened without
     * O_CLOEXEC, must not leak into QEMU. ep1 is CLOEXEC already. */
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
        for (int fd = 3; fd < 4096; fd++)
            if (fd != ep1)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], (char *const *)argv);
    int e = errno;
    ssize_t w = write(ep1, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* After fork: EOF on the CLOEXEC pipe means exec succeeded, an int means it
 * failed with that errno. Bounded, in case exec itself stalls. Returns the
 * child's errno, 0, or -1 for no answer within 5 s. */
static int exec_result(int ep0)
{
    int child_errno = 0;
    struct pollfd pfd = {.fd = ep0, .events = POLLIN};
    int pr;
    while ((pr = poll(&pfd, 1, 5000)) < 0 && errno == EINTR) {
    }
    if (pr > 0) {
        ssize_t r;
        while ((r = read(ep0, &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
        }
        if (r != (ssize_t)sizeof child_errno)
            child_errno = 0;
    }
    return pr == 0 ? -1 : child_errno;
}

/* fork + exec argv with the given stdio (-1: /dev/null). Returns the pid
 * registered in the child table (with its private dir, or NULL), or -1 with err filled; an exec failure
 * (QEMU missing) is reported here, synchronously, through a CLOEXEC pipe. */
static pid_t spawn(const char *const argv[], int in_fd, int out_fd, int err_fd, const char *dir, fl_error *err)
{
    if (!table_has_room()) {
        fl_fail(err, FL_EIO, "cannot start %s: this process already runs %d children; stop a VM first", argv[0], VM_MAX_CHILDREN);
        return -1;
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        fl_fail(err, FL_EIO, "cannot open /dev/null: %s", strerror(errno));
        return -1;
    }
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) != 0) {
        fl_fail(err, FL_EIO, "cannot create a pipe to start %s: %s", argv[0], strerror(errno));
        close(devnull);
        return -1;
    }
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t parent = getpid();
    const int stdio[3] = {in_fd < 0 ? devnull : in_fd, out_fd < 0 ? devnull : out_fd, err_fd < 0 ? devnull : err_fd};
    pid_t pid = fork();
    if (pid == 0)
        child_exec(argv, stdio, ep[1], parent);
    int fork_errno = errno;
    if (pid > 0)
        table_add(pid, dir); /* room was checked; signals are still blocked */
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(ep[1]);
    close(devnull);
    if (pid < 0) {
        close(ep[0]);
        fl_fail(err, FL_EIO, "cannot fork to start %s: %s", argv[0], strerror(fork_errno));
        return -1;
    }
    int child_errno = exec_result(ep[0]);
    close(ep[0]);
    if (child_errno != 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        table_remove(pid);
        if (child_errno < 0)
            fl_fail(err, FL_ETIMEOUT, "starting %s did not complete exec within 5 s", argv[0]);
        else if (child_errno == ENOENT)
            fl_fail(err, FL_ENOTFOUND, "cannot run %s: no such program; install qemu-system-x86 (scripts/install-deps.sh) or name the right QEMU binary", argv[0]);
        else
            fl_fail(err, FL_EIO, "cannot run %s: %s", argv[0], strerror(child_errno));
        return -1;
    }
    return pid;
}

/* Wait up to timeout_ms for pid; returns 1 reaped (status in *st, or -1 if
 * someone else reaped it), 0 still running. Removes it from the table. */
static int reap_within(pid_t pid, int timeout_ms, int *st)
{
    int64_t deadline = fl_now_ms() + timeout_ms;
    for (;;) {
        int s = 0;
        pid_t r = waitpid(pid, &s, WNOHANG);
        if (r == pid) {
            table_remove(pid);
            *st = s;
            return 1;
        }
        if (r < 0 && errno == ECHILD) { /* reaped by vm_kill_all */
            table_remove(pid);
            *st = -1;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (fl_now_ms() >= deadline)
            return 0;
        sleep_ms(10);
    }
}

/* ---- small helpers ------------------------------------------------------- */

static void describe_status(int st, char *buf, size_t cap)
{
    if (st == -1)
        snprintf(buf, cap, "status unknown");
    else if (WIFEXITED(st))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, cap, "status 0x%x", (unsigned)st);
}

/* The last non-empty line of a small file, for QEMU's stderr. */
static void last_line_of(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)(sizeof buf - 1) : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *start = strrchr(buf, '\n');
    start = start ? start + 1 : buf;
    snprintf(out, cap, "%s", start);
}

static void vm_reap_record(vm *v, int st)
{
    v->reaped = true;
    v->wstatus = st;
    v->status_known = st != -1;
}

/* QEMU's stdout reached EOF: it is exiting; collect the status briefly. */
static void vm_reap_after_eof(vm *v)
{
    int st;
    if (!v->reaped && reap_within(v->pid, 1000, &st))
        vm_reap_record(v, st);
}

/* "QEMU exited (exit status 1): <stderr's last line>" */
static void vm_exit_story(vm *v, char *out, size_t cap)
{
    char how[64], last[256];
    if (v->reaped)
        describe_status(v->status_known ? v->wstatus : -1, how, sizeof how);
    else
        snprintf(how, sizeof how, "closed its console");
    last_line_of(v->err_path, last, sizeof last);
    if (last[0])
        snprintf(out, cap, "QEMU %s (%s): %s", v->reaped ? "exited" : "stopped", how, last);
    else
        snprintf(out, cap, "QEMU %s (%s)", v->reaped ? "exited" : "stopped", how);
}

/* Write all of buf to fd (non-blocking fd: poll until the deadline). SIGPIPE
 * is blocked around the write so a dead QEMU is EPIPE, not our death. */
static int write_all(vm *v, int fd, const char *buf, size_t len, int timeout_ms, const char *what, fl_error *err)
{
    sigset_t pipeset, old, pending;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipeset, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    int64_t deadline = fl_now_ms() + timeout_ms;
    int rc = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            int64_t left = deadline - fl_now_ms();
            if (left <= 0) {
                rc = fl_fail(err, FL_ETIMEOUT, "writing to %s: it accepted no input for %d ms (the guest is not reading its console)", what, timeout_ms);
                break;
            }
            if (vm_cancelled(v)) {
                rc = fl_fail(err, FL_EINTR, "writing to %s: interrupted", what);
                break;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, left > VM_SLICE_MS ? VM_SLICE_MS : (int)left);
            continue;
        }
        if (w < 0 && errno == EPIPE) {
            if (!was_pending) {
                struct timespec zero = {0, 0};
                sigtimedwait(&pipeset, NULL, &zero);
            }
            rc = fl_fail(err, FL_ECLOSED, "writing to %s: QEMU is gone (broken pipe)", what);
            break;
        }
        rc = fl_fail(err, FL_EIO, "writing to %s: %s", what, strerror(w < 0 ? errno : EIO));
        break;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ---- configuration checks ------------------------------------------------ */

/* "127.0.0.1:PORT" or "localhost:PORT" -> port; anything else is refused,
 * because a gdbstub gives whoever connects full control of the guest. */
static int parse_gdb_listen(const char *s, int *port, fl_error *err)
{
    const char *colon = strrchr(s, ':');
    if (colon) {
        size_t hl = (size_t)(colon - s);
        bool local = (hl == 9 && strncmp(s, "127.0.0.1", 9) == 0) || (hl == 9 && strncmp(s, "localhost", 9) == 0);
        if (local) {
            char *end;
            errno = 0;
            long p = strtol(colon + 1, &end, 10);
            if (colon[1] >= '0' && colon[1] <= '9' && *end == '\0' && errno == 0 && p >= 1 && p <= 65535) {
                *port = (int)p;
                return 0;
            }
            return fl_fail(err, FL_EUSAGE, "gdb listen address '%s' has no valid port: use 127.0.0.1:PORT with PORT in 1..65535", s);
        }
    }
    return fl_fail(err, FL_EUSAGE, "refusing to let the gdbstub listen on '%s': anyone who reaches it controls the guest kernel; use 127.0.0.1:PORT, or nothing for a private unix socket", s);
}

/* Is the unix socket at `path` listening yet? bind() creates the file
 * before listen(), and a connect() in between is refused; /proc/net/unix
 * marks listening sockets with __SO_ACCEPTCON (flags 00010000). Looking
 * is harmless, where a trial connect would stop a running guest. */
static bool unix_listens(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return false;
    char line[PATH_MAX + 128];
    bool found = false;
    size_t plen = strlen(path);
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long flags;
        int pathpos = 0;
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %n", &flags, &pathpos) < 1 || pathpos <= 0)
            continue;
        const char *pth = line + pathpos;
        found = (flags & 0x10000) && strncmp(pth, path, plen) == 0 && (pth[plen] == '\n' || pth[plen] == '\0');
    }
    fclose(f);
    return found;
}

/* Is something owned by `pid` listening on 127.0.0.1:port? Matches the
 * socket inode from /proc/net/tcp against QEMU's open fds, so another
 * process on a busy port does not count as QEMU being ready. */
static bool qemu_listens_tcp(pid_t pid, int port)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    if (!f)
        return false;
    char line[512], want[32];
    snprintf(want, sizeof want, "0100007F:%04X", (unsigned)port);
    unsigned long inode = 0;
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        char local[64], remote[64], state[8];
        unsigned long ino;
        if (sscanf(line, " %*d: %63s %63s %7s %*s %*s %*s %*s %*s %lu", local, remote, state, &ino) == 4 &&
            strcmp(local, want) == 0 && strcmp(state, "0A") == 0) {
            inode = ino;
            found = true;
            break;
        }
    }
    fclose(f);
    if (!found)
        return false;
    char dpath[64];
    snprintf(dpath, sizeof dpath, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dpath);
    if (!d)
        return false;
    char want_link[64];
    snprintf(want_link, sizeof want_link, "socket:[%lu]", inode);
    bool mine = false;
    struct dirent *de;
    while (!mine && (de = readdir(d))) {
        char p[PATH_MAX], link[64];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dpath, de->d_name);
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            mine = strcmp(link, want_link) == 0;
        }
    }
    closedir(d);
    return mine;
}

/* Append src's bytes to fd. */
static int copy_into(int fd, const char *src, const char *dst_name, fl_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fl_fail(err, FL_ENOTFOUND, "cannot read initramfs %s: %s", src, strerror(errno));
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(in);
            return fl_fail(err, FL_EIO, "reading %s: %s", src, strerror(errno));
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                close(in);
                return fl_fail(err, FL_EIO, "writing %s: %s", dst_name, strerror(errno));
            }
            off += w;
        }
    }
    close(in);
    return 0;
}

/* QEMU takes one -initrd: write base + padding + extra into the private dir.
 * The kernel unpacks concatenated archives (compressed or not), but a newc
 * header must start 4-byte aligned after a compressed member; zero padding
 * between members is skipped, so pad to 512. */
static int concat_initrd(vm *v, const char *base, const char *extra, fl_error *err)
{
    snprintf(v->initrd_cat, sizeof v->initrd_cat, "%s/initrd.img", v->dir);
    int fd = open(v->initrd_cat, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fl_fail(err, FL_EIO, "cannot create %s: %s", v->initrd_cat, strerror(errno));
    if (copy_into(fd, base, v->initrd_cat, err) != 0) {
        close(fd);
        return -1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    static const char zeros[512];
    size_t pad = (size_t)((512 - size % 512) % 512);
    if (pad && write(fd, zeros, pad) != (ssize_t)pad) {
        close(fd);
        return fl_fail(err, FL_EIO, "writing %s: %s", v->initrd_cat, strerror(errno));
    }
    if (copy_into(fd, extra, v->initrd_cat, err) != 0) {
        close(fd);
        return -1;
    }
    if (close(fd) != 0)
        return fl_fail(err, FL_EIO, "writing %s: %s", v->initrd_cat, strerror(errno));
    return 0;
}

/* ---- temporary directories ----------------------------------------------- */

/* A process's start time (clock ticks since boot, /proc/PID/stat field 22):
 * with the pid it names one process, even after the pid is reused. 0 if
 * the process does not exist. */
static unsigned long long proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');  /* the command name may hold spaces and ')' */
    unsigned long long start = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice threads
     * itrealvalue starttime(22) */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                     &start) != 1)
        return 0;
    return start;
}

/* Remove the files in dirfd's directory (we create no subdirectories). */
static void empty_dir(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

void vm_tmpdir_remove(const char *dir)
{
    if (!dir || !dir[0])
        return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0)
        empty_dir(dfd);
    rmdir(dir);
}

static int write_owner(const char *dir, fl_error *err)
{
    char path[128], line[64];
    snprintf(path, sizeof path, "%s/" OWNER_FILE, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fl_fail(err, FL_EIO, "cannot create %s: %s", path, strerror(errno));
    int n = snprintf(line, sizeof line, "%d %llu\n", (int)getpid(), proc_start_time(getpid()));
    bool ok = write(fd, line, (size_t)n) == n;
    if (close(fd) != 0 || !ok)
        return fl_fail(err, FL_EIO, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

int vm_tmpdir_create(const char *prefix, char *dir, size_t cap, fl_error *err)
{
    if (snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix) >= (int)cap)
        return fl_fail(err, FL_EUSAGE, "temporary directory name /tmp/%s-XXXXXX is too long", prefix);
    if (!mkdtemp(dir)) {
        int e = errno;
        dir[0] = '\0';
        return fl_fail(err, FL_EIO, "cannot create a private directory under /tmp: %s", strerror(e));
    }
    struct stat st;
    /* mkdtemp promises 0700; verify, since the gdb socket's safety rests on it. */
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0777) != 0700) {
        fl_fail(err, FL_EIO, "the private directory %s is not a 0700 directory owned by us; refusing to use it", dir);
        vm_tmpdir_remove(dir);
        dir[0] = '\0';
        return -1;
    }
    if (write_owner(dir, err) != 0) {
        vm_tmpdir_remove(dir);
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

/* "faultline-XXXXXX" or "faultline-program-XXXXXX" (mkdtemp's letters). */
static bool stale_name(const char *name)
{
    const char *rest;
    if (strncmp(name, "faultline-program-", 18) == 0)
        rest = name + 18;
    else if (strncmp(name, "faultline-", 10) == 0)
        rest = name + 10;
    else
        return false;
    if (strlen(rest) != 6)
        return false;
    for (const char *c = rest; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* Is the directory (open as dfd, already checked to be ours) owned by a
 * process that is gone? No or unreadable owner.pid: not known, keep it. */
static bool owner_gone(int dfd)
{
    int fd = openat(dfd, OWNER_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    int pid;
    unsigned long long start;
    if (sscanf(buf, "%d %llu", &pid, &start) != 2 || pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    unsigned long long now_start = proc_start_time(pid);
    return now_start != 0 && start != 0 && now_start != start;  /* the pid was reused */
}

int vm_clean_stale_tmpdirs(void)
{
    int tfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0)
        return 0;
    DIR *d = fdopendir(tfd);
    if (!d) {
        close(tfd);
        return 0;
    }
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (!stale_name(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        int dfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            continue;
        if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || !owner_gone(dfd)) {
            close(dfd);
            continue;
        }
        empty_dir(dfd);
        removed += unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0;
    }
    closedir(d);
    return removed;
}

static void remove_private_dir(vm *v)
{
    vm_tmpdir_remove(v->dir);
    v->dir[0] = '\0';
}

/* ---- start / stop -------------------------------------------------------- */

static void vm_free(vm *v)
{
    if (v->in_fd >= 0)
        close(v->in_fd);
    if (v->out_fd >= 0)
        close(v->out_fd);
    remove_private_dir(v);
    free(v);
}

void vm_stop(vm *v)
{
    if (!v)
        return;
    if (v->in_fd >= 0) {
        close(v->in_fd);
        v->in_fd = -1;
    }
    if (v->pid > 0 && !v->reaped) {
        int st;
        if (reap_within(v->pid, 0, &st)) {
            vm_reap_record(v, st);
        } else {
            /* Our own group: also catches anything QEMU may have forked. */
            kill(-v->pid, SIGTERM);
            kill(v->pid, SIGTERM);
            if (!reap_within(v->pid, VM_STOP_GRACE_MS, &st)) {
                kill(-v->pid, SIGKILL);
                kill(v->pid, SIGKILL);
                /* SIGKILL cannot be refused; the bound is only for a task
                 * stuck in the kernel, which we then leave to init. */
                if (!reap_within(v->pid, 5000, &st))
                    st = -1;
            }
            vm_reap_record(v, st);
        }
    }
    vm_free(v);
}

/* The vm object with its private directory (and the concatenated initrd). */
static int vm_prepare(vm **out, const vm_config *cfg, const char *accel, fl_error *err)
{
    if (cfg->exception_log && strcmp(accel, "kvm") == 0)
        return fl_fail(err, FL_EUSAGE, "QEMU's exception log (-d int) is written only under TCG: use --accel tcg");
    vm *v = calloc(1, sizeof *v);
    if (!v)
        return fl_fail(err, FL_EIO, "out of memory starting the VM");
    v->in_fd = v->out_fd = -1;
    v->cancelled = cfg->cancelled;
    v->cancel_ctx = cfg->cancel_ctx;
    snprintf(v->accel, sizeof v->accel, "%s", accel);
    if (vm_tmpdir_create("faultline", v->dir, sizeof v->dir, err) != 0) {
        free(v);
        return -1;
    }
    snprintf(v->sock_path, sizeof v->sock_path, "%s/gdb.sock", v->dir);
    snprintf(v->err_path, sizeof v->err_path, "%s/qemu.err", v->dir);
    if (cfg->exception_log)
        snprintf(v->log_path, sizeof v->log_path, "%s/exceptions.log", v->dir);
    if (cfg->extra_initrd && concat_initrd(v, cfg->initrd, cfg->extra_initrd, err) != 0) {
        vm_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* Pipes for the console, QEMU's stderr into the private dir, spawn. */
static int vm_spawn_qemu(vm *v, const char *const argv[], fl_error *err)
{
    int inp[2] = {-1, -1}, outp[2] = {-1, -1};
    int errfd = -1;
    if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
        fl_fail(err, FL_EIO, "cannot create the console pipes: %s", strerror(errno));
        goto fail_fds;
    }
    errfd = open(v->err_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (errfd < 0) {
        fl_fail(err, FL_EIO, "cannot create %s: %s", v->err_path, strerror(errno));
        goto fail_fds;
    }
    pid_t pid = spawn(argv, inp[0], outp[1], errfd, v->dir, err);
    close(inp[0]);
    close(outp[1]);
    close(errfd);
    if (pid < 0) {
        close(inp[1]);
        close(outp[0]);
        return -1;
    }
    v->pid = pid;
    v->in_fd = inp[1];
    v->out_fd = outp[0];
    fcntl(v->in_fd, F_SETFL, fcntl(v->in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(v->out_fd, F_SETFL, fcntl(v->out_fd, F_GETFL) | O_NONBLOCK);
    return 0;

fail_fds:
    for (int i = 0; i < 2; i++) {
        if (inp[i] >= 0)
            close(inp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    if (errfd >= 0)
        close(errfd);
    return -1;
}

/* Ready when the gdbstub is there. Not connect(): opening a connection to
 * QEMU's gdbstub stops the VM and resets the stub's state. Bounded by
 * timeout (the caller's), cancellable. */
static int vm_wait_gdbstub(vm *v, int port, int timeout, fl_error *err)
{
    int64_t deadline = fl_now_ms() + timeout;
    for (;;) {
        int st;
        if (reap_within(v->pid, 0, &st)) {
            vm_reap_record(v, st);
            char story[FL_ERROR_MSG_MAX - 64];
            vm_exit_story(v, story, sizeof story);
            return fl_fail(err, FL_EIO, "%s at start; check the kernel, initrd and options", story);
        }
        if (port ? qemu_listens_tcp(v->pid, port) : unix_listens(v->sock_path))
            return 0;
        if (vm_cancelled(v))
            return fl_fail(err, FL_EINTR, "interrupted while QEMU was starting");
        if (fl_now_ms() >= deadline) {
            char last[256];
            last_line_of(v->err_path, last, sizeof last);
            return fl_fail(err, FL_ETIMEOUT, "QEMU did not open its gdbstub (%s) within %d ms%s%s", v->gdb_addr,
                           timeout, last[0] ? "; it said: " : "", last);
        }
        sleep_ms(10);
    }
}

/* QEMU's exception log into the private directory, when asked for. */
static int add_exception_log(const vm *v, const char *argv[], int n)
{
    if (v->log_path[0]) {
        argv[n++] = "-d";
        argv[n++] = "int";
        argv[n++] = "-D";
        argv[n++] = v->log_path;
    }
    return n;
}

/* The strings QEMU's command line points into. */
typedef struct qemu_strings {
    char mem[16], gdb[200], append[4096];
} qemu_strings;

/* -m, -gdb and -append's values; the stub's address is recorded in v. */
static int qemu_strings_fill(vm *v, const vm_config *cfg, int port, int mem, qemu_strings *q, fl_error *err)
{
    snprintf(q->mem, sizeof q->mem, "%d", mem);
    if (port) {
        snprintf(q->gdb, sizeof q->gdb, "tcp:127.0.0.1:%d", port);
        snprintf(v->gdb_addr, sizeof v->gdb_addr, "127.0.0.1:%d", port);
    } else {
        /* QEMU 7.2 accepts the unix: form for -gdb, and creates the socket
         * only after the machine (and the kernel image) loaded, so its
         * appearance means "ready"; a -chardev socket would appear earlier. */
        snprintf(q->gdb, sizeof q->gdb, "unix:%s,server=on,wait=off", v->sock_path);
        snprintf(v->gdb_addr, sizeof v->gdb_addr, "unix:%s", v->sock_path);
    }
    /* loglevel=4: warnings and worse only, so kernel chatter does not split
     * the trigger's lines; panic=-1 + -no-reboot: a panic ends QEMU. */
    int an = snprintf(q->append, sizeof q->append, "console=ttyS0 loglevel=4 panic=-1%s%s%s",
                      cfg->reproducible ? " " VM_REPRODUCIBLE_APPEND : "", cfg->append ? " " : "",
                      cfg->append ? cfg->append : "");
    if (an < 0 || (size_t)an >= sizeof q->append)
        return fl_fail(err, FL_EUSAGE, "the kernel command line is longer than %zu bytes", sizeof q->append - 1);
    return 0;
}

/* QEMU's whole command line (argv has room for 40 entries). */
static void qemu_argv(const vm *v, const vm_config *cfg, const char *accel, const qemu_strings *q, const char **argv)
{
    bool kvm = strcmp(accel, "kvm") == 0;
    int n = 0;
    argv[n++] = cfg->qemu ? cfg->qemu : "qemu-system-x86_64";
    argv[n++] = "-accel";
    argv[n++] = kvm ? "kvm" : "tcg";
    argv[n++] = "-cpu";
    /* Under KVM, plain "host" fails on these machines ("failed to set MSR
     * 0x10a"); without arch-capabilities it starts. */
    argv[n++] = kvm ? "host,-arch-capabilities" : "max";
    argv[n++] = "-m";
    argv[n++] = q->mem;
    argv[n++] = "-smp";
    argv[n++] = "1";
    argv[n++] = "-nodefaults";
    argv[n++] = "-display";
    argv[n++] = "none";
    argv[n++] = "-no-reboot";
    if (!cfg->start_running)
        argv[n++] = "-S";
    argv[n++] = "-gdb";
    argv[n++] = q->gdb;
    argv[n++] = "-serial";
    argv[n++] = "stdio";
    argv[n++] = "-kernel";
    argv[n++] = cfg->kernel;
    argv[n++] = "-initrd";
    argv[n++] = cfg->extra_initrd ? v->initrd_cat : cfg->initrd;
    argv[n++] = "-append";
    argv[n++] = q->append;
    if (cfg->reproducible) {
        argv[n++] = "-icount";
        argv[n++] = VM_REPRODUCIBLE_ICOUNT;
        argv[n++] = "-rtc";
        argv[n++] = VM_REPRODUCIBLE_RTC;
        argv[n++] = "-seed";
        argv[n++] = VM_REPRODUCIBLE_SEED;
    }
    n = add_exception_log(v, argv, n);
    argv[n] = NULL;
}

static int vm_start_accel(vm **out, const vm_config *cfg, const char *accel, fl_error *err)
{
    *out = NULL;
    int port = 0;
    if (cfg->gdb_listen && parse_gdb_listen(cfg->gdb_listen, &port, err) != 0)
        return -1;
    int mem = cfg->mem_mb ? cfg->mem_mb : VM_DEFAULT_MEM_MB;
    if (mem < 64 || mem > 65536)
        return fl_fail(err, FL_EUSAGE, "guest memory of %d MB is out of range: use 64..65536", mem);
    int timeout = cfg->start_timeout_ms > 0 ? cfg->start_timeout_ms : VM_DEFAULT_START_MS;
    if (cfg->reproducible && strcmp(accel, "kvm") == 0)
        return fl_fail(err, FL_EUSAGE, "reproducible mode needs --accel tcg: under KVM the guest runs on the "
                       "host's clock and CPU, which no option makes deterministic");
    vm *v = NULL;
    if (vm_prepare(&v, cfg, accel, err) != 0)
        return -1;
    qemu_strings q;
    const char *argv[40];
    if (qemu_strings_fill(v, cfg, port, mem, &q, err) != 0) {
        vm_free(v);
        return -1;
    }
    qemu_argv(v, cfg, accel, &q, argv);
    if (vm_spawn_qemu(v, argv, err) != 0) {
        vm_free(v);
        return -1;
    }
    if (vm_wait_gdbstub(v, port, timeout, err) != 0) {
        vm_stop(v);
        return -1;
    }
    *out = v;
    return 0;
}

int vm_start(vm **out, const vm_config *cfg, fl_error *err)
{
    if (!out || !cfg)
        return fl_fail(err, FL_EUSAGE, "vm_start needs a result pointer and a configuration");
    *out = NULL;
    if (!cfg->kernel || !cfg->kernel[0])
        return fl_fail(err, FL_EUSAGE, "no guest kernel given: run `make vm` or name a vmlinux/bzImage");
    if (!cfg->initrd || !cfg->initrd[0])
        return fl_fail(err, FL_EUSAGE, "no initramfs given: run `make vm` or name one");
    const char *files[3] = {cfg->kernel, cfg->initrd, cfg->extra_initrd};
    for (int i = 0; i < 3; i++) {
        if (files[i] && access(files[i], R_OK) != 0)
            return fl_fail(err, FL_ENOTFOUND, "cannot read %s %s: %s; run `make vm` or fix the path",
                           i == 0 ? "the guest kernel" : "the initramfs", files[i], strerror(errno));
    }
    vm_clean_stale_tmpdirs();  /* what SIGKILLed runs before us left behind */
    const char *accel = cfg->accel ? cfg->accel : "tcg";
    if (strcmp(accel, "auto") == 0 && cfg->exception_log)
        accel = "tcg"; /* only TCG writes the exception log */
    if (strcmp(accel, "auto") == 0) {
        bool usable = false;
        char why[256];
        if (vm_kvm_usable(cfg, 0, &usable, why, sizeof why, err) != 0)
            return -1;
        accel = usable ? "kvm" : "tcg";
    } else if (strcmp(accel, "tcg") != 0 && strcmp(accel, "kvm") != 0) {
        return fl_fail(err, FL_EUSAGE, "unknown accelerator '%s': use tcg, kvm or auto", accel);
    }
    return vm_start_accel(out, cfg, accel, err);
}

const char *vm_gdb_address(const vm *v) { return v->gdb_addr; }
const char *vm_accel(const vm *v) { return v->accel; }
const char *vm_exception_log(const vm *v)
{
    return v->log_path[0] ? v->log_path : NULL;
}

const char *vm_private_dir(const vm *v) { return v->dir; }
pid_t vm_pid(const vm *v) { return v->pid; }
int vm_console_fd(const vm *v) { return v->out_fd; }

bool vm_alive(vm *v)
{
    if (!v || v->reaped)
        return false;
    int st;
    if (reap_within(v->pid, 0, &st)) {
        vm_reap_record(v, st);
        return false;
    }
    return true;
}

int vm_wait_exit(vm *v, int timeout_ms, int *status, fl_error *err)
{
    int64_t deadline = fl_now_ms() + timeout_ms;
    while (!v->reaped) {
        int st;
        int64_t left = deadline - fl_now_ms();
        if (reap_within(v->pid, left < 0 ? 0 : left > VM_SLICE_MS ? VM_SLICE_MS : (int)left, &st)) {
            vm_reap_record(v, st);
            break;
        }
        if (vm_cancelled(v))
            return fl_fail(err, FL_EINTR, "interrupted while waiting for QEMU (pid %d) to exit", (int)v->pid);
        if (fl_now_ms() >= deadline)
            return fl_fail(err, FL_ETIMEOUT, "QEMU (pid %d) did not exit within %d ms", (int)v->pid, timeout_ms);
    }
    if (status)
        *status = v->status_known ? v->wstatus : -1;
    return 0;
}

/* ---- console ------------------------------------------------------------- */

static void tail_push(vm *v, const char *line)
{
    snprintf(v->tail[v->tail_next], VM_TAIL_LEN, "%s", line);
    v->tail_next = (v->tail_next + 1) % VM_TAIL_LINES;
    if (v->tail_count < VM_TAIL_LINES)
        v->tail_count++;
}

const char *vm_console_tail(vm *v, int n)
{
    v->tail_join[0] = '\0';
    if (n <= 0)
        return v->tail_join;
    unsigned count = (unsigned)n < v->tail_count ? (unsigned)n : v->tail_count;
    size_t used = 0;
    for (unsigned i = 0; i < count; i++) {
        unsigned idx = (v->tail_next + VM_TAIL_LINES - count + i) % VM_TAIL_LINES;
        int w = snprintf(v->tail_join + used, sizeof v->tail_join - used, "%s%s", i ? " | " : "", v->tail[idx]);
        if (w < 0 || (size_t)w >= sizeof v->tail_join - used)
            break;
        used += (size_t)w;
    }
    return v->tail_join;
}

/* Take one line out of the buffer: up to \n, or everything if the buffer is
 * full (an overlong line is split) or at EOF. \r is dropped. */
static bool take_line(vm *v, char *line, size_t cap)
{
    if (v->blen == 0)
        return false;
    char *nl = memchr(v->buf, '\n', v->blen);
    size_t len, consumed;
    if (nl) {
        len = (size_t)(nl - v->buf);
        consumed = len + 1;
    } else if (v->blen == sizeof v->buf || v->eof) {
        len = consumed = v->blen;
    } else {
        return false;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v->buf[i];
        if (c == '\r' || c == '\0')
            continue;
        if (o + 1 < cap)
            line[o++] = c;
    }
    if (cap)
        line[o] = '\0';
    memmove(v->buf, v->buf + consumed, v->blen - consumed);
    v->blen -= consumed;
    if (cap)
        tail_push(v, line);
    return true;
}

int vm_console_poll_line(vm *v, char *line, size_t cap, fl_error *err)
{
    if (!line || cap == 0)
        return fl_fail(err, FL_EUSAGE, "vm_console_poll_line needs a line buffer");
    for (;;) {
        if (take_line(v, line, cap))
            return 1;
        if (v->eof) {
            vm_reap_after_eof(v);
            char story[FL_ERROR_MSG_MAX - 96];
            vm_exit_story(v, story, sizeof story);
            return fl_fail(err, FL_ECLOSED, "the guest console closed: %s", story);
        }
        ssize_t r = read(v->out_fd, v->buf + v->blen, sizeof v->buf - v->blen);
        if (r > 0) {
            v->blen += (size_t)r;
            continue;
        }
        if (r == 0) {
            v->eof = true;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        return fl_fail(err, FL_EIO, "reading the guest console: %s", strerror(errno));
    }
}

int vm_console_wait_prefix(vm *v, const char *prefix, char *line, size_t cap, int timeout_ms, fl_error *err)
{
    size_t plen = strlen(prefix);
    int64_t deadline = fl_now_ms() + timeout_ms;
    for (;;) {
        int r = vm_console_poll_line(v, v->scratch, sizeof v->scratch, err);
        if (r < 0)
            return fl_error_prefix(err, "waiting for a console line starting with '%s'", prefix);
        if (r == 1) {
            if (strncmp(v->scratch, prefix, plen) == 0) {
                if (line && cap)
                    snprintf(line, cap, "%s", v->scratch);
                return 0;
            }
            /* panic=-1 makes QEMU exit right after; say why now. */
            if (strstr(v->scratch, "Kernel panic"))
                return fl_fail(err, FL_ECLOSED, "the guest kernel panicked while we waited for '%s': %.300s", prefix, v->scratch);
            continue;
        }
        if (vm_cancelled(v))
            return fl_fail(err, FL_EINTR, "interrupted while waiting for a console line starting with '%s'", prefix);
        int64_t left = deadline - fl_now_ms();
        if (left <= 0) {
            /* The newest lines matter most: keep the end of the tail. */
            const char *tail = v->tail_count ? vm_console_tail(v, 5) : "(none)";
            size_t tl = strlen(tail);
            return fl_fail(err, FL_ETIMEOUT, "no console line starting with '%s' within %d ms; last lines: %s%s",
                           prefix, timeout_ms, tl > 300 ? "..." : "", tl > 300 ? tail + tl - 300 : tail);
        }
        struct pollfd p = {.fd = v->out_fd, .events = POLLIN};
        poll(&p, 1, left > VM_SLICE_MS ? VM_SLICE_MS : (int)left);
    }
}

int vm_console_write(vm *v, const char *text, fl_error *err)
{
    if (v->in_fd < 0)
        return fl_fail(err, FL_ECLOSED, "writing to the guest console: the VM was stopped");
    return write_all(v, v->in_fd, text, strlen(text), VM_WRITE_TIMEOUT_MS, "the guest console", err);
}

/* ---- announcements ------------------------------------------------------- */

/* Value of key=... among space-separated fields; copies into out (cap).
 * Returns 1 found, 0 missing, -1 too long. */
static int field(const char *fields, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = fields;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = (size_t)(end - p) - kl - 1;
            if (vl + 1 > cap)
                return -1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}

int vm_parse_announcement(const char *line, vm_trigger *out, fl_error *err)
{
    if (!line || !out)
        return fl_fail(err, FL_EUSAGE, "vm_parse_announcement needs a line and a result");
    size_t plen = strlen(VM_ANNOUNCE_PREFIX);
    if (strncmp(line, VM_ANNOUNCE_PREFIX, plen) != 0)
        return fl_fail(err, FL_EPROTO, "not a trigger announcement (no '%s' prefix): '%.80s'", VM_ANNOUNCE_PREFIX, line);
    const char *f = line + plen;
    for (const char *p = f; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return fl_fail(err, FL_EPROTO, "trigger announcement has a non-printable byte 0x%02x", (unsigned char)*p);
    vm_trigger t;
    memset(&t, 0, sizeof t);
    char pid_s[16], page_s[24], target_s[24];
    struct {
        const char *key;
        char *buf;
        size_t cap;
    } want[] = {
        {"scenario", t.scenario, sizeof t.scenario},
        {"pid", pid_s, sizeof pid_s},
        {"comm", t.comm, sizeof t.comm},
        {"page", page_s, sizeof page_s},
        {"target", target_s, sizeof target_s},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int r = field(f, want[i].key, want[i].buf, want[i].cap);
        if (r == 0)
            return fl_fail(err, FL_EPROTO, "trigger announcement has no %s= field: '%.200s'", want[i].key, line);
        if (r < 0)
            return fl_fail(err, FL_EPROTO, "trigger announcement's %s= value is too long (max %zu): '%.200s'", want[i].key, want[i].cap - 1, line);
        if (want[i].buf[0] == '\0')
            return fl_fail(err, FL_EPROTO, "trigger announcement's %s= value is empty: '%.200s'", want[i].key, line);
    }
    char *end;
    errno = 0;
    long pid = strtol(pid_s, &end, 10);
    if (pid_s[0] < '0' || pid_s[0] > '9' || *end || errno || pid < 1 || pid > 4194304)
        return fl_fail(err, FL_EPROTO, "trigger announcement's pid '%s' is not a process id (1..4194304)", pid_s);
    if (fl_parse_hex64(page_s, &t.page) != 0)
        return fl_fail(err, FL_EPROTO, "trigger announcement's page '%s' is not a 64-bit hex address (0x...)", page_s);
    if (fl_parse_hex64(target_s, &t.target) != 0)
        return fl_fail(err, FL_EPROTO, "trigger announcement's target '%s' is not a 64-bit hex address (0x...)", target_s);
    t.pid = (int)pid;
    *out = t;
    return 0;
}

/* ---- QEMU version and the KVM probe -------------------------------------- */

int vm_qemu_version(const char *qemu, char *buf, size_t cap, fl_error *err)
{
    if (!buf || cap == 0)
        return fl_fail(err, FL_EUSAGE, "vm_qemu_version needs a buffer");
    buf[0] = '\0';
    const char *q = qemu ? qemu : "qemu-system-x86_64";
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return fl_fail(err, FL_EIO, "cannot create a pipe to ask %s its version: %s", q, strerror(errno));
    const char *argv[] = {q, "--version", NULL};
    pid_t pid = spawn(argv, -1, p[1], -1, NULL, err);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    char out[1024];
    size_t len = 0;
    int64_t deadline = fl_now_ms() + 5000;
    for (;;) {
        int64_t left = deadline - fl_now_ms();
        if (left <= 0)
            break;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t r = read(p[0], out + len, sizeof out - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof out - 1)
            break;
    }
    close(p[0]);
    out[len] = '\0';
    int st;
    if (!reap_within(pid, 2000, &st)) {
        kill(pid, SIGKILL);
        reap_within(pid, 5000, &st);
    }
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    if (strncmp(out, "QEMU emulator version", 21) != 0)
        return fl_fail(err, FL_EIO, "%s --version did not print a QEMU version line within 5 s (got '%.100s')", q, out);
    snprintf(buf, cap, "%s", out);
    return 0;
}

/* ---- the KVM verdict's cache ---------------------------------------------- */

/* Ours and writable by no one else: the only kind of file or directory the
 * cache trusts (checked on an open descriptor, so a rename cannot swap it). */
static bool private_to_us(int fd, bool dir)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) && st.st_uid == geteuid() &&
           (st.st_mode & 022) == 0;
}

/* Open (creating, 0700) ${XDG_CACHE_HOME:-$HOME/.cache}/faultline and check
 * it; *shown gets its path. -1: no usable cache (no variable, a relative
 * one, or a directory someone else owns or can write): then none is used. */
static int kvm_cache_dir(char *shown, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char base[PATH_MAX];
    if (xdg && xdg[0] == '/')
        snprintf(base, sizeof base, "%s", xdg);
    else if (home && home[0] == '/')
        snprintf(base, sizeof base, "%s/.cache", home);
    else
        return -1;  /* never a shared fallback such as /tmp/.cache */
    mkdir(base, 0700);
    int bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        return -1;
    mkdirat(bfd, "faultline", 0700);
    int dfd = openat(bfd, "faultline", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(bfd);
    if (dfd < 0)
        return -1;
    if (!private_to_us(dfd, true)) {
        close(dfd);
        return -1;
    }
    snprintf(shown, cap, "%s/faultline/kvm-verdict", base);
    return dfd;
}

/* A cached verdict for key: 1 hit (*usable, why filled), 0 none. */
static int kvm_cache_read(int dfd, const char *key, const char *shown, bool *usable, char *why, size_t cap)
{
    int fd = openat(dfd, "kvm-verdict", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (!private_to_us(fd, false)) {
        close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "re");
    if (!f) {
        close(fd);
        return 0;
    }
    /* Format: key \n yes|no \n why \n */
    char k[PATH_MAX + 256], verdict[16], w[256];
    bool hit = fgets(k, sizeof k, f) && fgets(verdict, sizeof verdict, f) && fgets(w, sizeof w, f);
    fclose(f);
    if (!hit)
        return 0;
    k[strcspn(k, "\n")] = verdict[strcspn(verdict, "\n")] = w[strcspn(w, "\n")] = '\0';
    if (strcmp(k, key) != 0)
        return 0;
    *usable = strcmp(verdict, "yes") == 0;
    snprintf(why, cap, "%s (cached in %s)", w, shown);
    return 1;
}

/* Best effort: a new file (O_EXCL, O_NOFOLLOW) renamed over the old. */
static void kvm_cache_write(int dfd, const char *key, bool usable, const char *why)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "kvm-verdict.tmp.%d", (int)getpid());
    unlinkat(dfd, tmp, 0);  /* ours: only we can write this directory */
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    FILE *o = fdopen(fd, "we");
    if (!o) {
        close(fd);
        unlinkat(dfd, tmp, 0);
        return;
    }
    fprintf(o, "%s\n%s\n%s\n", key, usable ? "yes" : "no", why);
    if (fclose(o) == 0)
        renameat(dfd, tmp, dfd, "kvm-verdict");
    else
        unlinkat(dfd, tmp, 0);
}

/* The probe: boot the real guest under KVM, running (no -S), and wait for
 * the init's first line. Nested KVM can be far slower than TCG. -1 only
 * when cancelled (nothing to cache then). */
static int kvm_probe(const vm_config *cfg, int probe_ms, bool *usable, char *why, size_t cap, fl_error *err)
{
    vm_config c = *cfg;
    c.accel = "kvm";
    c.start_running = true;
    c.gdb_listen = NULL;
    c.extra_initrd = NULL;
    c.exception_log = false; /* TCG's alone: the probe is about KVM */
    c.start_timeout_ms = probe_ms;
    vm *v = NULL;
    fl_error perr;
    fl_error_clear(&perr);
    int64_t t0 = fl_now_ms();
    if (vm_start_accel(&v, &c, "kvm", &perr) != 0) {
        snprintf(why, cap, "QEMU would not start under KVM: %.200s", perr.msg);
    } else {
        int left = probe_ms - (int)(fl_now_ms() - t0);
        char line[256];
        if (left > 0 && vm_console_wait_prefix(v, "FAULTLINE-INIT ", line, sizeof line, left, &perr) == 0) {
            *usable = true;
            snprintf(why, cap, "the guest reached userspace under KVM in %.1f s", (double)(fl_now_ms() - t0) / 1000.0);
        } else if (perr.code == FL_ETIMEOUT || left <= 0) {
            snprintf(why, cap, "the guest did not reach userspace under KVM within %.1f s (nested KVM is too slow here)", probe_ms / 1000.0);
        } else {
            snprintf(why, cap, "the guest failed under KVM: %.200s", perr.msg);
        }
        vm_stop(v);
    }
    if (perr.code == FL_EINTR) {
        if (err)
            *err = perr;
        return fl_error_prefix(err, "probing KVM");
    }
    return 0;
}

int vm_kvm_usable(const vm_config *cfg, int probe_ms, bool *usable, char *why, size_t cap, fl_error *err)
{
    if (!cfg || !usable)
        return fl_fail(err, FL_EUSAGE, "vm_kvm_usable needs a configuration and a result");
    *usable = false;
    char whybuf[256];
    if (!why || cap == 0) {
        why = whybuf;
        cap = sizeof whybuf;
    }
    why[0] = '\0';
    if (probe_ms <= 0)
        probe_ms = VM_DEFAULT_PROBE_MS;
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        snprintf(why, cap, "/dev/kvm is not usable (%s)", strerror(errno));
        return 0;
    }
    if (!cfg->kernel || !cfg->initrd)
        return fl_fail(err, FL_EUSAGE, "the KVM probe needs a guest kernel and initramfs");
    struct stat kst;
    if (stat(cfg->kernel, &kst) != 0)
        return fl_fail(err, FL_ENOTFOUND, "cannot stat the guest kernel %s: %s", cfg->kernel, strerror(errno));
    char ver[128];
    if (vm_qemu_version(cfg->qemu, ver, sizeof ver, err) != 0)
        return -1;
    char key[PATH_MAX + 256], shown[PATH_MAX + 32];
    snprintf(key, sizeof key, "kernel=%s mtime=%lld.%09ld qemu=%s", cfg->kernel, (long long)kst.st_mtim.tv_sec,
             kst.st_mtim.tv_nsec, ver);
    int dfd = kvm_cache_dir(shown, sizeof shown);
    if (dfd >= 0 && kvm_cache_read(dfd, key, shown, usable, why, cap)) {
        close(dfd);
        return 0;
    }
    int rc = kvm_probe(cfg, probe_ms, usable, why, cap, err);
    if (rc == 0 && dfd >= 0)
        kvm_cache_write(dfd, key, *usable, why);
    if (dfd >= 0)
        close(dfd);
    return rc;
}
