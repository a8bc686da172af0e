/* Boots the real guest under TCG through vm_start and walks the trigger
 * protocol: announcement, "go", result, FAULTLINE-DONE, QEMU exiting by
 * itself. Needs FAULTLINE_KERNEL and FAULTLINE_INITRD (tests/run.sh sets them
 * to build/vm/{vmlinux,initramfs.cpio.gz}; `scripts/build-vm.sh build/vm`
 * makes them).
 *
 * QEMU starts halted (-S); the test resumes it through the gdbstub with
 * tgt_connect + tgt_resume (src/target.c). FAULTLINE_ITEST_RAW=1 uses a bare
 * "$c#63" packet instead, which isolates this test from the target layer.
 */
#include "check.h"

#include "faultline/target.h"
#include "faultline/vm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS 60000
#define STEP_TIMEOUT_MS 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A raw gdbstub client good for exactly one thing: "continue". Returns the
 * connected fd (kept open: closing it is not needed and sends nothing). */
static int raw_continue(const char *address, fl_error *err)
{
    if (strncmp(address, "unix:", 5) != 0) {
        fl_fail(err, FL_EUSAGE, "raw continue supports unix: addresses only, not %s", address);
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", address + 5);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fl_fail(err, FL_EIO, "connecting to the gdbstub %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    static const char pkt[] = "$c#63";
    if (write(fd, pkt, sizeof pkt - 1) != (ssize_t)(sizeof pkt - 1)) {
        fl_fail(err, FL_EIO, "sending c to the gdbstub: %s", strerror(errno));
        close(fd);
        return -1;
    }
    /* QEMU acks with '+'; read it so we know the packet was taken. */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char ack = 0;
    if (poll(&p, 1, 5000) != 1 || read(fd, &ack, 1) != 1 || ack != '+') {
        fl_fail(err, FL_EPROTO, "the gdbstub did not ack our continue packet");
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct resumer {
    tgt *t;
    int raw_fd;
} resumer;

/* Resume the halted guest: through the target layer unless raw is asked
 * for or that layer cannot connect (this test is about the VM, not it). */
static int resume_guest(vm *v, resumer *r, fl_error *err)
{
    r->t = NULL;
    r->raw_fd = -1;
    const char *raw = getenv("FAULTLINE_ITEST_RAW");
    if (!(raw && strcmp(raw, "1") == 0)) {
        if (tgt_connect(&r->t, vm_gdb_address(v), 10000, err) == 0) {
            if (tgt_resume(r->t, err) == 0)
                return 0;
            tgt_close(r->t);
            r->t = NULL;
            return -1;
        }
        fprintf(stderr, "itest_boot: tgt_connect failed (%s); using a raw continue packet\n", err->msg);
    }
    r->raw_fd = raw_continue(vm_gdb_address(v), err);
    return r->raw_fd >= 0 ? 0 : -1;
}

static void resumer_close(resumer *r)
{
    if (r->t)
        tgt_close(r->t); /* running: closes without sending anything */
    if (r->raw_fd >= 0)
        close(r->raw_fd);
}

static bool gone(pid_t pid)
{
    return kill(pid, 0) != 0 && errno == ESRCH;
}

/* One boot: scenario -> announcement -> go -> result -> done -> QEMU exits. */
static void boot_scenario(const char *kernel, const char *initrd, const char *scenario, double *boot_s)
{
    char append[160];
    if (strcmp(scenario, "program") == 0) /* any program; the trigger is at hand */
        snprintf(append, sizeof append, "faultline.scenario=program faultline.program=/bin/fl-trigger faultline.args=write");
    else
        snprintf(append, sizeof append, "faultline.scenario=%s", scenario);
    vm_config c;
    memset(&c, 0, sizeof c);
    c.kernel = kernel;
    c.initrd = initrd;
    c.append = append;
    c.accel = "tcg";
    fl_error err;
    fl_error_clear(&err);
    vm *v = NULL;
    double t0 = now_s();
    CHECK(vm_start(&v, &c, &err) == 0);
    if (!v) {
        fprintf(stderr, "itest_boot: %s: vm_start: %s\n", scenario, err.msg);
        return;
    }
    double t_started = now_s();
    pid_t pid = vm_pid(v);
    CHECK_STR(vm_accel(v), "tcg");
    struct stat st;
    CHECK(stat(vm_private_dir(v), &st) == 0 && (st.st_mode & 0777) == 0700);

    resumer r;
    int rc = resume_guest(v, &r, &err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "itest_boot: %s: resume: %s\n", scenario, err.msg);
        vm_stop(v);
        CHECK(gone(pid));
        return;
    }

    char line[512];
    rc = vm_console_wait_prefix(v, "FAULTLINE-INIT ", line, sizeof line, BOOT_TIMEOUT_MS, &err);
    CHECK(rc == 0);
    if (rc == 0)
        printf("%s: %s (%.2f s after QEMU start)\n", scenario, line, now_s() - t0);
    else
        fprintf(stderr, "itest_boot: %s: %s\n", scenario, err.msg);

    const char *expect_scenario = scenario;
    if (strcmp(scenario, "program") == 0) {
        /* The init's shell announces itself, execs the program on "go"; the
         * program (fl-trigger write) then announces with the SAME pid. */
        rc = vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, STEP_TIMEOUT_MS, &err);
        CHECK(rc == 0);
        vm_trigger sh;
        CHECK(rc == 0 && vm_parse_announcement(line, &sh, &err) == 0);
        CHECK_STR(sh.scenario, "program");
        CHECK_STR(sh.comm, "fl-trigger");
        CHECK_EQ_U64(sh.page, 0);
        CHECK_EQ_U64(sh.target, 0);
        CHECK(vm_console_write(v, "go\n", &err) == 0);
        rc = vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, STEP_TIMEOUT_MS, &err);
        CHECK(rc == 0);
        vm_trigger t;
        CHECK(rc == 0 && vm_parse_announcement(line, &t, &err) == 0);
        CHECK(t.pid == sh.pid);
        CHECK_STR(t.scenario, "write");
        expect_scenario = "write";
        printf("%s: shell pid %d became %s\n", scenario, sh.pid, t.comm);
    } else {
        rc = vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, STEP_TIMEOUT_MS, &err);
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "itest_boot: %s: %s\n", scenario, err.msg);
    }
    double t_announce = now_s();
    vm_trigger t;
    memset(&t, 0, sizeof t);
    CHECK(rc == 0 && vm_parse_announcement(line, &t, &err) == 0);
    CHECK_STR(t.scenario, expect_scenario);
    CHECK(t.pid > 1);
    char comm[24];
    snprintf(comm, sizeof comm, "fl-%s", expect_scenario);
    CHECK_STR(t.comm, comm);
    CHECK(t.page != 0 && (t.page & 0xfff) == 0);
    CHECK_EQ_U64(t.target, t.page + 0x100);
    if (boot_s)
        *boot_s = t_announce - t0;
    printf("%s: %s\n%s: boot %.2f s (QEMU start to announcement; vm_start itself %.2f s)\n", scenario, line,
           scenario, t_announce - t0, t_started - t0);

    CHECK(vm_console_write(v, "go\n", &err) == 0);
    rc = vm_console_wait_prefix(v, "FAULTLINE-RESULT ", line, sizeof line, STEP_TIMEOUT_MS, &err);
    CHECK(rc == 0);
    char want[128];
    snprintf(want, sizeof want, "FAULTLINE-RESULT scenario=%s ok", expect_scenario);
    CHECK_STR(rc == 0 ? line : err.msg, want);
    rc = vm_console_wait_prefix(v, VM_DONE_PREFIX, line, sizeof line, STEP_TIMEOUT_MS, &err);
    CHECK(rc == 0);
    snprintf(want, sizeof want, "FAULTLINE-DONE scenario=%s status=0", scenario);
    CHECK_STR(rc == 0 ? line : err.msg, want);

    /* init ends with reboot -f; -no-reboot makes that an exit. */
    int status = -2;
    CHECK(vm_wait_exit(v, STEP_TIMEOUT_MS, &status, &err) == 0);
    CHECK(status != -2 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!vm_alive(v));
    resumer_close(&r);
    vm_stop(v);
    CHECK(gone(pid));
}

/* vm_stop of a guest still waiting for "go" kills it. */
static void stop_while_waiting(const char *kernel, const char *initrd)
{
    vm_config c;
    memset(&c, 0, sizeof c);
    c.kernel = kernel;
    c.initrd = initrd;
    c.start_running = true; /* no gdb client needed */
    fl_error err;
    vm *v = NULL;
    CHECK(vm_start(&v, &c, &err) == 0);
    if (!v)
        return;
    pid_t pid = vm_pid(v);
    char line[256];
    CHECK(vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, BOOT_TIMEOUT_MS, &err) == 0);
    CHECK(vm_alive(v));
    vm_stop(v);
    CHECK(gone(pid));
}

/* A user program appended as a second (uncompressed) cpio through
 * extra_initrd, run by the init's program scenario with its arguments. */
static void extra_initrd_program(const char *kernel, const char *initrd)
{
    char dir[] = "/tmp/fl-itest-extra-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; mkdir -p root/usr/local/bin; "
             "printf '#!/bin/sh\\necho \"hello-extra $*\"\\n' > root/usr/local/bin/hello; "
             "chmod 755 root/usr/local/bin/hello; "
             "(cd root && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > extra.cpio",
             dir);
    CHECK(system(cmd) == 0);
    char extra[128];
    snprintf(extra, sizeof extra, "%s/extra.cpio", dir);
    vm_config c;
    memset(&c, 0, sizeof c);
    c.kernel = kernel;
    c.initrd = initrd;
    c.extra_initrd = extra;
    c.start_running = true;
    c.append = "faultline.scenario=program faultline.program=/usr/local/bin/hello faultline.args=a,b";
    fl_error err;
    vm *v = NULL;
    CHECK(vm_start(&v, &c, &err) == 0);
    if (v) {
        pid_t pid = vm_pid(v);
        char line[256];
        vm_trigger t;
        CHECK(vm_console_wait_prefix(v, VM_ANNOUNCE_PREFIX, line, sizeof line, BOOT_TIMEOUT_MS, &err) == 0);
        CHECK(vm_parse_announcement(line, &t, &err) == 0);
        CHECK_STR(t.comm, "hello");
        CHECK(vm_console_write(v, "go\n", &err) == 0);
        CHECK(vm_console_wait_prefix(v, "hello-extra", line, sizeof line, STEP_TIMEOUT_MS, &err) == 0);
        CHECK_STR(line, "hello-extra a b");
        CHECK(vm_console_wait_prefix(v, VM_DONE_PREFIX, line, sizeof line, STEP_TIMEOUT_MS, &err) == 0);
        CHECK_STR(line, "FAULTLINE-DONE scenario=program status=0");
        vm_stop(v);
        CHECK(gone(pid));
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    const char *kernel = getenv("FAULTLINE_KERNEL");
    const char *initrd = getenv("FAULTLINE_INITRD");
    if (!kernel || !initrd || access(kernel, R_OK) != 0 || access(initrd, R_OK) != 0) {
        fprintf(stderr, "itest_boot: set FAULTLINE_KERNEL and FAULTLINE_INITRD to a built guest "
                        "(scripts/build-vm.sh build/vm; tests/run.sh sets them)\n");
        return 2;
    }
    /* Ctrl-C or a test-runner timeout must not leave a QEMU behind. */
    vm_install_cleanup();
    double boot = 0;
    boot_scenario(kernel, initrd, "write", &boot);
    boot_scenario(kernel, initrd, "read", NULL);
    boot_scenario(kernel, initrd, "kernel-write", NULL);
    boot_scenario(kernel, initrd, "program", NULL);
    stop_while_waiting(kernel, initrd);
    extra_initrd_program(kernel, initrd);
    printf("itest_boot: boot time (write) %.2f s\n", boot);
    return check_summary("itest_boot");
}
