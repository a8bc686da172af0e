/* Unit tests of src/vm.c without a real guest.
 *
 * The "QEMU" here is this test binary itself, re-executed with
 * FAKE_QEMU_MODE set (no extra tool or file to build): it creates the gdb
 * socket QEMU would, echoes the console, dies at start, ignores SIGTERM or
 * never becomes ready, as each case needs. Every case checks afterwards that
 * no child is left (kill(pid, 0) fails with ESRCH).
 */
#include "check.h"

#include "faultline/vm.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char self_exe[PATH_MAX];

/* ---- the fake QEMU ------------------------------------------------------- */

static const char *arg_after(int argc, char **argv, const char *opt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], opt) == 0)
            return argv[i + 1];
    return NULL;
}

static int fake_qemu(int argc, char **argv, const char *mode)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("QEMU emulator version 7.2.99 (fake)\nCopyright nobody\n");
        return 0;
    }
    if (strcmp(mode, "die") == 0) {
        fprintf(stderr, "qemu-system-x86_64: warming up\nqemu-system-x86_64: could not load kernel '/nope'\n");
        return 1;
    }
    if (strcmp(mode, "stubborn") == 0)
        signal(SIGTERM, SIG_IGN);
    const char *gdb = arg_after(argc, argv, "-gdb");
    if (gdb && strcmp(mode, "slow") != 0) {
        if (strncmp(gdb, "unix:", 5) == 0) {
            struct sockaddr_un sa = {.sun_family = AF_UNIX};
            size_t n = strcspn(gdb + 5, ",");
            memcpy(sa.sun_path, gdb + 5, n < sizeof sa.sun_path - 1 ? n : sizeof sa.sun_path - 1);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 1) != 0) {
                fprintf(stderr, "fake: bind %s: %s\n", sa.sun_path, strerror(errno));
                return 1;
            }
        } else if (strncmp(gdb, "tcp:127.0.0.1:", 14) == 0) {
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(gdb + 14))};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 1) != 0) {
                fprintf(stderr, "qemu-system-x86_64: -gdb %s: Failed to bind socket: %s\n", gdb, strerror(errno));
                return 1;
            }
        }
    }
    const char *initrd = arg_after(argc, argv, "-initrd");
    struct stat st;
    printf("FAKE-INITRD %lld\n", initrd && stat(initrd, &st) == 0 ? (long long)st.st_size : -1LL);
    printf("FAKE-APPEND %s\n", arg_after(argc, argv, "-append"));
    printf("FAKE-HALTED %s\n", strcmp(argv[argc - 1], "-S") == 0 || arg_after(argc, argv, "-S") ? "yes" : "no");
    const char *dlog = arg_after(argc, argv, "-d"), *dfile = arg_after(argc, argv, "-D");
    printf("FAKE-LOG %s %s\n", dlog ? dlog : "-", dfile ? dfile : "-");
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        int code;
        size_t len;
        if (sscanf(line, "exit %d", &code) == 1)
            return code;
        if (sscanf(line, "long %zu", &len) == 1) {
            for (size_t i = 0; i < len; i++)
                putchar('x');
            printf("\r\nafter-long\r\n");
        } else if (strcmp(line, "announce") == 0) {
            printf("FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x7f0000000000 target=0x7f0000000100\r\n");
        } else if (strcmp(line, "panic") == 0) {
            printf("Kernel panic - not syncing: Attempted to kill init!\r\n");
        } else {
            printf("echo: %s\r\n", line);
        }
        fflush(stdout);
    }
    for (;;) /* like QEMU, keep running with stdin closed */
        pause();
}

/* ---- helpers ------------------------------------------------------------- */

static bool gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

static vm_config fake_cfg(void)
{
    vm_config c;
    memset(&c, 0, sizeof c);
    c.qemu = self_exe;
    c.kernel = self_exe; /* any readable file: the fake does not boot it */
    c.initrd = self_exe;
    return c;
}

static vm *start_fake(const char *mode, vm_config *c, fl_error *err)
{
    setenv("FAKE_QEMU_MODE", mode, 1);
    vm *v = NULL;
    fl_error_clear(err);
    if (vm_start(&v, c, err) != 0)
        v = NULL;
    return v;
}

/* exception_log: -d int -D FILE, FILE in the private directory; TCG only. */
static void test_exception_log(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    char line[512], want[512];
    vm *v = start_fake("ok", &c, &err);
    CHECK(v && vm_exception_log(v) == NULL);
    CHECK(v && vm_console_wait_prefix(v, "FAKE-LOG ", line, sizeof line, 5000, &err) == 0);
    CHECK_STR(line, "FAKE-LOG - -");
    vm_stop(v);
    c.exception_log = true;
    v = start_fake("ok", &c, &err);
    CHECK(v && vm_exception_log(v) != NULL);
    if (v) {
        snprintf(want, sizeof want, "%s/exceptions.log", vm_private_dir(v));
        CHECK_STR(vm_exception_log(v), want);
        snprintf(want, sizeof want, "FAKE-LOG int %s/exceptions.log", vm_private_dir(v));
        CHECK(vm_console_wait_prefix(v, "FAKE-LOG ", line, sizeof line, 5000, &err) == 0);
        CHECK_STR(line, want);
    }
    vm_stop(v);
    c.accel = "kvm";
    CHECK(start_fake("ok", &c, &err) == NULL && err.code == FL_EUSAGE && strstr(err.msg, "TCG"));
    c.accel = "auto"; /* resolves to tcg without a KVM probe */
    v = start_fake("ok", &c, &err);
    CHECK(v && strcmp(vm_accel(v), "tcg") == 0);
    vm_stop(v);
}

static double secs_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- cases --------------------------------------------------------------- */

static void test_parse(void)
{
    fl_error err;
    vm_trigger t;
    CHECK(vm_parse_announcement("FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x7f0000000000 target=0x7f0000000100", &t, &err) == 0);
    CHECK_STR(t.scenario, "write");
    CHECK(t.pid == 27);
    CHECK_STR(t.comm, "fl-write");
    CHECK_EQ_U64(t.page, 0x7f0000000000ULL);
    CHECK_EQ_U64(t.target, 0x7f0000000100ULL);

    /* Upper-case hex, 0X, fields in another order, unknown extra field. */
    CHECK(vm_parse_announcement("FAULTLINE-TRIGGER target=0X7F00000001AB extra=1 page=0x7F0000000000 comm=fl-kernel-write pid=4194304 scenario=kernel-write", &t, &err) == 0);
    CHECK_EQ_U64(t.target, 0x7f00000001abULL);
    CHECK_STR(t.comm, "fl-kernel-write");
    CHECK(t.pid == 4194304);
    /* The program scenario's "any fault" form, and LA57 addresses. */
    CHECK(vm_parse_announcement("FAULTLINE-TRIGGER scenario=program pid=31 comm=myprog page=0x0 target=0x0", &t, &err) == 0);
    CHECK_EQ_U64(t.target, 0);
    CHECK(vm_parse_announcement("FAULTLINE-TRIGGER scenario=w pid=2 comm=c page=0xffffffffffffffff target=0x00ff000000000100", &t, &err) == 0);
    CHECK_EQ_U64(t.page, UINT64_MAX);

    static const char *bad[] = {
        "",
        "garbage",
        "FAULTLINE-TRIGGER",
        "FAULTLINE-TRIGGER ",
        "faultline-trigger scenario=write pid=27 comm=fl-write page=0x1000 target=0x1100",
        " FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER pid=27 comm=fl-write page=0x1000 target=0x1100",              /* no scenario */
        "FAULTLINE-TRIGGER scenario=write comm=fl-write page=0x1000 target=0x1100",       /* no pid */
        "FAULTLINE-TRIGGER scenario=write pid=27 page=0x1000 target=0x1100",              /* no comm */
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write target=0x1100",            /* no page */
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x1000",              /* no target */
        "FAULTLINE-TRIGGER scenario= pid=27 comm=fl-write page=0x1000 target=0x1100",     /* empty */
        "FAULTLINE-TRIGGER scenario=write pid=x27 comm=fl-write page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27x comm=fl-write page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=-1 comm=fl-write page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=0 comm=fl-write page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=99999999999999999999 comm=a page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=1000 target=0x1100",  /* no 0x */
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x10g0 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x1000 target=-0x1100",
        /* 17 hex digits: does not fit 64 bits. */
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x10000000000000000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x1000 target=0x00000000000000000000000000001",
        /* comm longer than the kernel's 16 bytes. */
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=abcdefghijklmnopq page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa pid=27 comm=c page=0x1000 target=0x1100",
        "FAULTLINE-TRIGGER scenario=write pid=27 comm=fl\x01write page=0x1000 target=0x1100",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_error_clear(&err);
        int rc = vm_parse_announcement(bad[i], &t, &err);
        CHECK(rc == -1);
        CHECK(err.code == FL_EPROTO);
        if (rc == 0)
            fprintf(stderr, "  accepted bad line %zu: %s\n", i, bad[i]);
        CHECK(err.msg[0] != '\0');
    }
    /* A comm of exactly 16 characters fits comm[17]; 15 is the kernel's max
     * but the parser only guards its buffer. */
    CHECK(vm_parse_announcement("FAULTLINE-TRIGGER scenario=w pid=2 comm=abcdefghijklmnop page=0x1 target=0x2", &t, &err) == 0);
    CHECK(vm_parse_announcement(NULL, &t, &err) == -1 && err.code == FL_EUSAGE);
}

static void test_listen_refused(void)
{
    static const char *refused[] = {
        "0.0.0.0:1234", ":::1234", "[::]:1234", "::1:1234", "192.168.1.1:1234", "example.com:1234",
        "127.0.0.2:1234", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:12x",
        "127.0.0.1:-5", "localhost", "", "unix:/tmp/x",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        vm_config c = fake_cfg();
        c.gdb_listen = refused[i];
        fl_error err;
        vm *v = start_fake("ok", &c, &err);
        CHECK(v == NULL);
        CHECK(err.code == FL_EUSAGE);
        if (v) {
            fprintf(stderr, "  accepted listen address '%s'\n", refused[i]);
            vm_stop(v);
        }
    }
    fl_error err;
    vm_config c = fake_cfg();
    c.accel = "hvf";
    CHECK(start_fake("ok", &c, &err) == NULL && err.code == FL_EUSAGE);
    c = fake_cfg();
    c.kernel = "/nonexistent/vmlinux";
    CHECK(start_fake("ok", &c, &err) == NULL && err.code == FL_ENOTFOUND);
    CHECK(strstr(err.msg, "/nonexistent/vmlinux") != NULL);
    c = fake_cfg();
    c.qemu = "/nonexistent/qemu-system-x86_64";
    CHECK(start_fake("ok", &c, &err) == NULL && err.code == FL_ENOTFOUND);
    CHECK(strstr(err.msg, "qemu-system-x86") != NULL);
}

static void test_start_console_stop(void)
{
    vm_config c = fake_cfg();
    c.append = "faultline.scenario=read";
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (!v) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    pid_t pid = vm_pid(v);
    CHECK(pid > 0 && vm_alive(v));
    CHECK_STR(vm_accel(v), "tcg");
    char dir[128];
    snprintf(dir, sizeof dir, "%s", vm_private_dir(v));
    struct stat st;
    CHECK(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700 && st.st_uid == geteuid());
    CHECK(strncmp(dir, "/tmp/faultline-", 15) == 0);
    char want[200];
    snprintf(want, sizeof want, "unix:%s/gdb.sock", dir);
    CHECK_STR(vm_gdb_address(v), want);
    CHECK(vm_console_fd(v) >= 0);

    char line[512];
    CHECK(vm_console_wait_prefix(v, "FAKE-APPEND ", line, sizeof line, 5000, &err) == 0);
    CHECK_STR(line, "FAKE-APPEND console=ttyS0 loglevel=4 panic=-1 faultline.scenario=read");
    CHECK(vm_console_wait_prefix(v, "FAKE-HALTED ", line, sizeof line, 5000, &err) == 0);
    CHECK_STR(line, "FAKE-HALTED yes");

    CHECK(vm_console_write(v, "hello\n", &err) == 0);
    CHECK(vm_console_wait_prefix(v, "echo: ", line, sizeof line, 5000, &err) == 0);
    CHECK_STR(line, "echo: hello"); /* \r dropped */
    CHECK(vm_console_write(v, "announce\n", &err) == 0);
    CHECK(vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, 5000, &err) == 0);
    vm_trigger t;
    CHECK(vm_parse_announcement(line, &t, &err) == 0 && t.pid == 27);
    CHECK_STR(vm_console_tail(v, 2), "echo: hello | FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x7f0000000000 target=0x7f0000000100");
    CHECK_STR(vm_console_tail(v, 0), "");

    /* Small caller buffer: truncated, not overflowed. */
    CHECK(vm_console_write(v, "truncate-me-please\n", &err) == 0);
    char small[8];
    CHECK(vm_console_wait_prefix(v, "echo: ", small, sizeof small, 5000, &err) == 0);
    CHECK_STR(small, "echo: t");

    /* A line longer than the internal buffer is split, and the next one is intact. */
    CHECK(vm_console_write(v, "long 20000\n", &err) == 0);
    CHECK(vm_console_wait_prefix(v, "after-long", line, sizeof line, 5000, &err) == 0);

    /* Timeout names the wait and shows the last lines. */
    CHECK(vm_console_write(v, "marker\n", &err) == 0);
    fl_error_clear(&err);
    CHECK(vm_console_wait_prefix(v, "NEVER ", line, sizeof line, 300, &err) == -1);
    CHECK(err.code == FL_ETIMEOUT);
    CHECK(strstr(err.msg, "echo: marker") != NULL);
    CHECK(strstr(err.msg, "NEVER") != NULL);

    /* Non-blocking poll with nothing there. */
    CHECK(vm_console_poll_line(v, line, sizeof line, &err) == 0);

    vm_stop(v);
    CHECK(gone(pid));
    CHECK(lstat(dir, &st) != 0 && errno == ENOENT);
    vm_stop(NULL);
}

static void test_start_running(void)
{
    vm_config c = fake_cfg();
    c.start_running = true;
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (!v)
        return;
    char line[128];
    CHECK(vm_console_wait_prefix(v, "FAKE-HALTED ", line, sizeof line, 5000, &err) == 0);
    CHECK_STR(line, "FAKE-HALTED no");
    pid_t pid = vm_pid(v);
    vm_stop(v);
    CHECK(gone(pid));
}

static void test_dies_at_start(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    CHECK(start_fake("die", &c, &err) == NULL);
    CHECK(err.code == FL_EIO);
    CHECK(strstr(err.msg, "could not load kernel '/nope'") != NULL);
    CHECK(strstr(err.msg, "exit status 1") != NULL);
    CHECK(strstr(err.msg, "warming up") == NULL); /* the last line only */
}

static void test_never_ready(void)
{
    vm_config c = fake_cfg();
    c.start_timeout_ms = 300;
    fl_error err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(start_fake("slow", &c, &err) == NULL);
    CHECK(err.code == FL_ETIMEOUT);
    CHECK(secs_since(&t0) < 4.0);
    CHECK(strstr(err.msg, "gdbstub") != NULL);
}

static volatile int vm_cancel_flag;
static int vm_cancel_hook(void *ctx)
{
    (void)ctx;
    return vm_cancel_flag;
}
static void on_alarm(int sig)
{
    (void)sig;
    vm_cancel_flag = 1;  /* as the CLI's handler sets its flag */
}

/* Issue 16: vm's waits are cancellable. A QEMU that never opens its socket
 * (10 s start bound) and a console that never prints the line (10 s) both
 * end with FL_EINTR within a second of the flag, set by a signal handler
 * 200 ms in. Guards the vm_cancelled checks in vm_wait_gdbstub and
 * vm_console_wait_prefix. */
static void test_cancel(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, &old);
    vm_config c = fake_cfg();
    c.start_timeout_ms = 10000;
    c.cancelled = vm_cancel_hook;
    fl_error err;
    struct timespec t0;
    vm_cancel_flag = 0;
    ualarm(200000, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(start_fake("slow", &c, &err) == NULL);
    CHECK(err.code == FL_EINTR);
    CHECK(secs_since(&t0) < 1.2);
    vm_cancel_flag = 0;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (v) {
        char line[64];
        ualarm(200000, 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK(vm_console_wait_prefix(v, "NEVER ", line, sizeof line, 10000, &err) == -1 && err.code == FL_EINTR);
        CHECK(secs_since(&t0) < 1.2);
        pid_t q = vm_pid(v);
        vm_stop(v);
        CHECK(gone(q));
    }
    sigaction(SIGALRM, &old, NULL);
}

static void test_exit_and_sigpipe(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (!v)
        return;
    pid_t pid = vm_pid(v);
    CHECK(vm_console_write(v, "exit 3\n", &err) == 0);
    char line[256];
    fl_error_clear(&err);
    CHECK(vm_console_wait_prefix(v, "NEVER ", line, sizeof line, 5000, &err) == -1);
    CHECK(err.code == FL_ECLOSED);
    CHECK(strstr(err.msg, "exit status 3") != NULL);
    int status = 0;
    CHECK(vm_wait_exit(v, 1000, &status, &err) == 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    CHECK(!vm_alive(v));
    CHECK(gone(pid));
    /* Writing to a dead QEMU is an error, not a SIGPIPE death. */
    fl_error_clear(&err);
    CHECK(vm_console_write(v, "anyone?\n", &err) == -1);
    CHECK(err.code == FL_ECLOSED);
    CHECK(vm_console_poll_line(v, line, sizeof line, &err) == -1 && err.code == FL_ECLOSED);
    vm_stop(v);
}

static void test_panic_line(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (!v)
        return;
    char line[256];
    CHECK(vm_console_write(v, "panic\n", &err) == 0);
    fl_error_clear(&err);
    CHECK(vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, 5000, &err) == -1);
    CHECK(err.code == FL_ECLOSED);
    CHECK(strstr(err.msg, "panicked") != NULL);
    CHECK(strstr(err.msg, "Attempted to kill init") != NULL);
    pid_t pid = vm_pid(v);
    vm_stop(v);
    CHECK(gone(pid));
}

static void test_stubborn(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    vm *v = start_fake("stubborn", &c, &err);
    CHECK(v != NULL);
    if (!v)
        return;
    pid_t pid = vm_pid(v);
    char line[64];
    CHECK(vm_console_wait_prefix(v, "FAKE-HALTED", line, sizeof line, 5000, &err) == 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vm_stop(v); /* SIGTERM ignored: SIGKILL after the 2 s grace */
    double s = secs_since(&t0);
    CHECK(s >= 1.5 && s < 6.0);
    CHECK(gone(pid));
}

static void test_kill_all(void)
{
    vm_config c = fake_cfg();
    fl_error err;
    vm *a = start_fake("ok", &c, &err);
    vm *b = start_fake("stubborn", &c, &err);
    CHECK(a && b);
    if (!a || !b) {
        vm_stop(a);
        vm_stop(b);
        return;
    }
    pid_t pa = vm_pid(a), pb = vm_pid(b);
    vm_kill_all();
    CHECK(gone(pa));
    CHECK(gone(pb));
    CHECK(!vm_alive(a));
    vm_stop(a); /* already reaped by vm_kill_all: must not hang or kill anything else */
    vm_stop(b);
}

static void test_extra_initrd(void)
{
    char base[] = "/tmp/fl-test-base-XXXXXX", extra[] = "/tmp/fl-test-extra-XXXXXX";
    int fb = mkstemp(base), fe = mkstemp(extra);
    CHECK(fb >= 0 && fe >= 0);
    char blob[1000];
    memset(blob, 'b', sizeof blob);
    CHECK(write(fb, blob, 1000) == 1000);
    CHECK(write(fe, blob, 300) == 300);
    close(fb);
    close(fe);
    vm_config c = fake_cfg();
    c.initrd = base;
    c.extra_initrd = extra;
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (v) {
        char line[128];
        CHECK(vm_console_wait_prefix(v, "FAKE-INITRD ", line, sizeof line, 5000, &err) == 0);
        CHECK_STR(line, "FAKE-INITRD 1324"); /* 1000 padded to 1024, + 300 */
        pid_t pid = vm_pid(v);
        vm_stop(v);
        CHECK(gone(pid));
    }
    c.extra_initrd = "/nonexistent/extra.cpio";
    CHECK(start_fake("ok", &c, &err) == NULL && err.code == FL_ENOTFOUND);
    unlink(base);
    unlink(extra);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(s, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(s);
    return port;
}

static void test_tcp_listen(void)
{
    int port = free_port();
    CHECK(port > 0);
    char addr[64], want[64];
    snprintf(addr, sizeof addr, "localhost:%d", port);
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    vm_config c = fake_cfg();
    c.gdb_listen = addr;
    fl_error err;
    vm *v = start_fake("ok", &c, &err);
    CHECK(v != NULL);
    if (v) {
        CHECK_STR(vm_gdb_address(v), want);
        pid_t pid = vm_pid(v);
        vm_stop(v);
        CHECK(gone(pid));
    } else {
        fprintf(stderr, "  %s\n", err.msg);
    }
    /* A busy port: QEMU fails to bind and exits; we say so. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s, 1) == 0);
    c.gdb_listen = want;
    CHECK(start_fake("ok", &c, &err) == NULL);
    CHECK(err.code == FL_EIO);
    CHECK(strstr(err.msg, "Address already in use") != NULL);
    close(s);
}

static void test_version_and_kvm_cache(void)
{
    char ver[128];
    fl_error err;
    setenv("FAKE_QEMU_MODE", "ok", 1);
    CHECK(vm_qemu_version(self_exe, ver, sizeof ver, &err) == 0);
    CHECK_STR(ver, "QEMU emulator version 7.2.99 (fake)");
    CHECK(vm_qemu_version("/nonexistent/qemu", ver, sizeof ver, &err) == -1 && err.code == FL_ENOTFOUND);
    if (access("/usr/bin/qemu-system-x86_64", X_OK) == 0) {
        CHECK(vm_qemu_version(NULL, ver, sizeof ver, &err) == 0);
        CHECK(strncmp(ver, "QEMU emulator version ", 22) == 0);
    }

    /* The verdict comes from the cache when its key matches: no probe boot. */
    char cache[] = "/tmp/fl-test-cache-XXXXXX";
    CHECK(mkdtemp(cache) != NULL);
    setenv("XDG_CACHE_HOME", cache, 1);
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/faultline", cache);
    snprintf(path, sizeof path, "%s/kvm-verdict", dir);
    CHECK(mkdir(dir, 0700) == 0);
    vm_config c = fake_cfg();
    struct stat st;
    CHECK(stat(self_exe, &st) == 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "kernel=%s mtime=%lld.%09ld qemu=QEMU emulator version 7.2.99 (fake)\nno\nprobe said no\n", self_exe,
                (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        fclose(f);
    }
    bool usable = true;
    char why[256];
    CHECK(vm_kvm_usable(&c, 1000, &usable, why, sizeof why, &err) == 0);
    CHECK(!usable);
    if (access("/dev/kvm", R_OK | W_OK) == 0)
        CHECK(strstr(why, "probe said no") != NULL && strstr(why, "cached") != NULL);
    else
        CHECK(strstr(why, "/dev/kvm") != NULL);
    unlink(path);
    rmdir(dir);
    rmdir(cache);
    unsetenv("XDG_CACHE_HOME");
}

/* What the CLI's handler does (main.c owns the signal handlers): kill and
 * reap the VMs with vm_kill_all (async-signal-safe), then die of the signal. */
static void cli_like_handler(int sig)
{
    vm_kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A faultline-like process starts a VM and is then killed with `sig`: the
 * VM must not survive it (SIGTERM: a CLI-like handler calling vm_kill_all;
 * SIGKILL: PR_SET_PDEATHSIG, since no handler runs, and the directory left
 * behind is removed by the next vm_clean_stale_tmpdirs). */
static void test_parent_killed(int sig)
{
    int p[2];
    CHECK(pipe(p) == 0);
    setenv("FAKE_QEMU_MODE", "ok", 1);
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        vm_install_cleanup();
        signal(SIGTERM, cli_like_handler);
        vm_config c = fake_cfg();
        vm *v = NULL;
        fl_error err;
        if (vm_start(&v, &c, &err) != 0)
            _exit(3);
        struct {
            pid_t q;
            char dir[64];
        } msg;
        memset(&msg, 0, sizeof msg);
        msg.q = vm_pid(v);
        snprintf(msg.dir, sizeof msg.dir, "%s", vm_private_dir(v));
        if (write(p[1], &msg, sizeof msg) != (ssize_t)sizeof msg)
            _exit(4);
        for (;;)
            pause();
    }
    close(p[1]);
    struct {
        pid_t q;
        char dir[64];
    } msg;
    memset(&msg, 0, sizeof msg);
    CHECK(read(p[0], &msg, sizeof msg) == (ssize_t)sizeof msg);
    close(p[0]);
    pid_t qpid = msg.q;
    msg.dir[sizeof msg.dir - 1] = '\0';
    CHECK(qpid > 0 && kill(qpid, 0) == 0);
    kill(child, sig);
    int st;
    CHECK(waitpid(child, &st, 0) == child);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sig);
    /* The fake is the dead child's child, reparented to init (or a
     * subreaper) after it dies: poll until it is gone. */
    bool dead = false;
    for (int i = 0; i < 300 && !dead && qpid > 0; i++) {
        char path[64], state = '?';
        snprintf(path, sizeof path, "/proc/%d/stat", (int)qpid);
        FILE *f = fopen(path, "r");
        if (!f) {
            dead = true;
            break;
        }
        if (fscanf(f, "%*d %*s %c", &state) != 1)
            state = '?';
        fclose(f);
        dead = state == 'Z' || state == 'X';
        if (!dead)
            usleep(10000);
    }
    CHECK(dead);
    if (!dead && qpid > 0)
        kill(qpid, SIGKILL);
    struct stat dst;
    if (sig == SIGKILL) {
        /* No handler runs on SIGKILL: the directory stays, with the dead
         * process's owner.pid; the next run's clean-up removes it. */
        CHECK(msg.dir[0] && lstat(msg.dir, &dst) == 0);
        CHECK(vm_clean_stale_tmpdirs() >= 1);
        CHECK(msg.dir[0] && lstat(msg.dir, &dst) != 0 && errno == ENOENT);
    } else {
        /* The handler removed the private directory too. */
        CHECK(msg.dir[0] && lstat(msg.dir, &dst) != 0 && errno == ENOENT);
    }
}

static bool exists(const char *p);

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static bool file_is(const char *path, const char *text)
{
    char buf[1024] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* Issue 16, item 1: the KVM verdict is trusted only from a directory and a
 * file that are ours and writable by no one else, and with neither HOME nor
 * XDG_CACHE_HOME there is no cache (never /tmp/.cache). Guards vm.c's
 * kvm_cache_dir (the relative/missing variable refusal), private_to_us and
 * the O_NOFOLLOW opens. The probe runs against the fake QEMU, which never
 * prints the init's line: "no" after 300 ms. */
static void test_kvm_cache_trust(void)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        printf("test_vm: KVM cache trust not checked (/dev/kvm is not usable, so no cache is read)\n");
        return;
    }
    setenv("FAKE_QEMU_MODE", "ok", 1);
    vm_config c = fake_cfg();
    struct stat st;
    CHECK(stat(self_exe, &st) == 0);
    char planted[1024];
    snprintf(planted, sizeof planted,
             "kernel=%s mtime=%lld.%09ld qemu=QEMU emulator version 7.2.99 (fake)\nyes\nplanted\n", self_exe,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    char cache[] = "/tmp/fl-test-cache-XXXXXX", dir[256], path[300];
    CHECK(mkdtemp(cache) != NULL);
    snprintf(dir, sizeof dir, "%s/faultline", cache);
    snprintf(path, sizeof path, "%s/kvm-verdict", dir);
    CHECK(mkdir(dir, 0700) == 0);
    setenv("XDG_CACHE_HOME", cache, 1);
    bool usable;
    char why[256];
    fl_error err;
    /* A verdict file others may write is not trusted (nor overwritten in place). */
    write_file(path, planted, 0666);
    CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !usable && !strstr(why, "planted"));
    /* Our 0600 file is: the probe's own verdict replaced the planted one. */
    CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !usable && strstr(why, "cached"));
    if (geteuid() == 0) {
        /* Another user's directory: its verdict is not read, nothing written. */
        write_file(path, planted, 0644);
        CHECK(chown(dir, 65534, 65534) == 0 && chown(path, 65534, 65534) == 0);
        CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !usable && !strstr(why, "cached"));
        CHECK(file_is(path, planted));
    }
    unlink(path);
    rmdir(dir);
    rmdir(cache);
    /* No HOME, no XDG_CACHE_HOME: no cache at all, not /tmp/.cache. */
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    bool had_tmp_cache = exists("/tmp/.cache");
    CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !usable && !strstr(why, "cached"));
    CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !strstr(why, "cached"));
    if (!had_tmp_cache)
        CHECK(!exists("/tmp/.cache"));
    setenv("XDG_CACHE_HOME", "relative/cache", 1);  /* relative: refused too */
    CHECK(vm_kvm_usable(&c, 300, &usable, why, sizeof why, &err) == 0 && !strstr(why, "cached"));
    CHECK(!exists("relative"));
    unsetenv("XDG_CACHE_HOME");
    if (home) {
        setenv("HOME", home, 1);
        free(home);
    }
}

/* A directory as faultline makes them, with the owner.pid given. */
static void make_tmpdir(char *dir, const char *tmpl, const char *owner)
{
    strcpy(dir, tmpl);
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/owner.pid", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(owner, f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/qemu.err", dir);
    f = fopen(path, "w");
    if (f)
        fclose(f);
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Issue 16: stale /tmp/faultline-* directories of dead processes are
 * removed; a live process's, another user's, one without owner.pid, and a
 * look-alike name are kept. Guards vm.c's owner_gone and the owner/name
 * checks in vm_clean_stale_tmpdirs. */
static void test_stale_tmpdirs(void)
{
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    char own[64], other_start[64];
    snprintf(own, sizeof own, "%d 0\n", (int)getpid());
    /* Our pid with another start time: the pid was reused, the owner is gone. */
    snprintf(other_start, sizeof other_start, "%d 1\n", (int)getppid());
    char dead_owner[64];
    snprintf(dead_owner, sizeof dead_owner, "%d 12345\n", (int)dead);
    char d_dead[64], d_prog[64], d_live[64], d_nopid[64], d_other[64], d_reused[64], d_like[64];
    make_tmpdir(d_dead, "/tmp/faultline-XXXXXX", dead_owner);
    make_tmpdir(d_prog, "/tmp/faultline-program-XXXXXX", dead_owner);
    make_tmpdir(d_live, "/tmp/faultline-XXXXXX", own);
    make_tmpdir(d_reused, "/tmp/faultline-XXXXXX", other_start);
    make_tmpdir(d_nopid, "/tmp/faultline-XXXXXX", "");
    make_tmpdir(d_like, "/tmp/faultline-notours-XXXXXX", dead_owner);
    char p[128];
    snprintf(p, sizeof p, "%s/owner.pid", d_nopid);
    unlink(p);
    bool root = geteuid() == 0;
    make_tmpdir(d_other, "/tmp/faultline-XXXXXX", dead_owner);
    if (root)
        CHECK(chown(d_other, 65534, 65534) == 0);  /* "nobody" made it */
    vm_clean_stale_tmpdirs();
    CHECK(!exists(d_dead));
    CHECK(!exists(d_prog));
    CHECK(exists(d_live));
    CHECK(exists(d_nopid));
    CHECK(exists(d_like));
    if (root)
        CHECK(exists(d_other));
    else
        printf("test_vm: another user's directory not checked (needs root to chown)\n");
    /* getppid()'s start time is not 1 tick: a reused pid. */
    CHECK(!exists(d_reused));
    const char *left[] = {d_live, d_nopid, d_like, d_other, d_reused};
    for (size_t i = 0; i < sizeof left / sizeof *left; i++)
        vm_tmpdir_remove(left[i]);
    CHECK(!exists(d_live) && !exists(d_other));
    /* vm_tmpdir_create writes our own owner.pid: kept while we live. */
    char mine[64];
    fl_error err;
    CHECK(vm_tmpdir_create("faultline", mine, sizeof mine, &err) == 0);
    struct stat st;
    CHECK(stat(mine, &st) == 0 && (st.st_mode & 0777) == 0700);
    vm_clean_stale_tmpdirs();
    CHECK(exists(mine));
    vm_tmpdir_remove(mine);
}

int main(int argc, char **argv)
{
    const char *mode = getenv("FAKE_QEMU_MODE");
    if (mode)
        return fake_qemu(argc, argv, mode);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        return 2;
    }
    self_exe[n] = '\0';

    test_parse();
    test_listen_refused();
    test_start_console_stop();
    test_start_running();
    test_dies_at_start();
    test_never_ready();
    test_cancel();
    test_exit_and_sigpipe();
    test_panic_line();
    test_stubborn();
    test_kill_all();
    test_extra_initrd();
    test_exception_log();
    test_tcp_listen();
    test_version_and_kvm_cache();
    test_stale_tmpdirs();
    test_kvm_cache_trust();
    test_parent_killed(SIGTERM);
    test_parent_killed(SIGKILL);
    unsetenv("FAKE_QEMU_MODE");
    return check_summary("test_vm");
}
