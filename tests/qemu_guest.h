/* A halted QEMU guest for the live test and the bench: through vm_start()
 * when an initramfs is there, else spawned here without one (the kernel
 * panics at mount time, long after start_kernel). Either way QEMU is killed
 * and reaped by guest_stop() on every path. */
#ifndef FAULTLINE_TESTS_QEMU_GUEST_H
#define FAULTLINE_TESTS_QEMU_GUEST_H

#include "faultline/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* make vm links the cached kernel here; tests/run.sh also sets FAULTLINE_KERNEL. */
#define GUEST_DEFAULT_KERNEL "build/vm/vmlinux"

typedef struct guest {
    vm *v;                 /* when vm_start was used */
    pid_t pid;             /* when spawned here */
    char dir[64];
    char address[128];
} guest;

static const char *guest_kernel(void)
{
    const char *k = getenv("FAULTLINE_KERNEL");
    if (k && access(k, R_OK) == 0)
        return k;
    return access(GUEST_DEFAULT_KERNEL, R_OK) == 0 ? GUEST_DEFAULT_KERNEL : NULL;
}

static void guest_stop(guest *g)
{
    if (g->v) {
        vm_stop(g->v);
        g->v = NULL;
    }
    if (g->pid > 0) {
        kill(g->pid, SIGKILL);
        waitpid(g->pid, NULL, 0);
        g->pid = 0;
    }
    if (g->dir[0]) {
        char sock[128];
        snprintf(sock, sizeof sock, "%s/gdb.sock", g->dir);
        unlink(sock);
        rmdir(g->dir);
        g->dir[0] = '\0';
    }
}

static int guest_start(guest *g, const char *kernel, char *why, size_t cap)
{
    memset(g, 0, sizeof *g);
    const char *initrd = getenv("FAULTLINE_INITRD");
    if (initrd && access(initrd, R_OK) == 0) {
        vm_config cfg = {.kernel = kernel, .initrd = initrd, .accel = "tcg", .mem_mb = 256};
        fl_error e = {0};
        if (vm_start(&g->v, &cfg, &e) == 0) {
            snprintf(g->address, sizeof g->address, "%s", vm_gdb_address(g->v));
            return 0;
        }
        fprintf(stderr, "vm_start failed (%s); spawning QEMU directly\n", e.msg);
        g->v = NULL;
    }
    snprintf(g->dir, sizeof g->dir, "/tmp/fl-guest-XXXXXX");
    if (!mkdtemp(g->dir)) {  /* mkdtemp makes it 0700 */
        snprintf(why, cap, "mkdtemp: %s", strerror(errno));
        g->dir[0] = '\0';
        return -1;
    }
    char gdbarg[160];
    snprintf(gdbarg, sizeof gdbarg, "unix:%s/gdb.sock,server=on,wait=off", g->dir);
    snprintf(g->address, sizeof g->address, "unix:%s/gdb.sock", g->dir);
    char *argv[] = {"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1",
                    "-display", "none", "-no-reboot", "-nodefaults", "-S", "-gdb", gdbarg,
                    "-kernel", (char *)kernel, "-append", "console=ttyS0", NULL};
    g->pid = fork();
    if (g->pid < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        guest_stop(g);
        return -1;
    }
    if (g->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    /* Wait (bounded) for the socket to appear. */
    char sock[128];
    snprintf(sock, sizeof sock, "%s/gdb.sock", g->dir);
    for (int i = 0; i < 200; i++) {
        struct stat st;
        if (stat(sock, &st) == 0)
            return 0;
        int status;
        if (waitpid(g->pid, &status, WNOHANG) == g->pid) {
            g->pid = 0;
            snprintf(why, cap, "QEMU exited at start (status %d)", status);
            guest_stop(g);
            return -1;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(why, cap, "QEMU did not open %s within 10 s", sock);
    guest_stop(g);
    return -1;
}

/* Address of a global symbol from `nm` (fine for a test). 0 if not found. */
static uint64_t guest_symbol(const char *kernel, const char *sym)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "nm -- '%s' 2>/dev/null", kernel);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char line[512];
    uint64_t addr = 0;
    while (fgets(line, sizeof line, p)) {
        unsigned long long a;
        char type, name[400];
        if (sscanf(line, "%llx %c %399s", &a, &type, name) == 3 && strcmp(name, sym) == 0 &&
            (type == 'T' || type == 't')) {
            addr = a;
            break;
        }
    }
    while (fgets(line, sizeof line, p))
        ;
    pclose(p);
    return addr;
}

#endif
