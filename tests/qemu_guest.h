/* The bundled guest for the tests and benchmarks, always through vm_start()
 * (the one QEMU launcher: private 0700 socket, readiness, reaping):
 *  - guest_start(): QEMU halted at reset, for the live protocol test and the
 *    step benchmark;
 *  - guest_to_fault(): boot a scenario, let the trigger announce, and stop
 *    at a station of its fault (capture with just those stations), for the
 *    trace and GDB cross-check tests and the trace benchmark.
 * guest_stop() kills and reaps QEMU on every path. */
#ifndef FAULTLINE_TESTS_QEMU_GUEST_H
#define FAULTLINE_TESTS_QEMU_GUEST_H

#include "faultline/capture.h"
#include "faultline/kernel.h"
#include "faultline/target.h"
#include "faultline/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* make vm puts the guest here; tests/run.sh also sets the environment. */
#define GUEST_DEFAULT_KERNEL "build/vm/vmlinux"
#define GUEST_DEFAULT_INITRD "build/vm/initramfs.cpio.gz"

typedef struct guest {
    vm *v;
    tgt *t;              /* guest_to_fault() only */
    cap_session *cs;     /* guest_to_fault() only */
    vm_trigger trig;     /* guest_to_fault(): the announcement */
    char address[128];
} guest;

static inline const char *guest_file(const char *env, const char *fallback)
{
    const char *f = getenv(env);
    if (f && access(f, R_OK) == 0)
        return f;
    return access(fallback, R_OK) == 0 ? fallback : NULL;
}

static inline const char *guest_kernel(void) { return guest_file("FAULTLINE_KERNEL", GUEST_DEFAULT_KERNEL); }
static inline const char *guest_initrd(void) { return guest_file("FAULTLINE_INITRD", GUEST_DEFAULT_INITRD); }

/* Both guest files, or one sentence on stderr and -1 (a test's setup). */
static inline int guest_files(const char **kernel, const char **initrd)
{
    *kernel = guest_kernel();
    *initrd = guest_initrd();
    if (*kernel && *initrd)
        return 0;
    fprintf(stderr, "FAULTLINE_KERNEL and FAULTLINE_INITRD must name the guest (tests/run.sh sets them)\n");
    return -1;
}

static inline void guest_stop(guest *g)
{
    cap_session_close(g->cs);
    tgt_kill(g->t);
    vm_stop(g->v);
    memset(g, 0, sizeof *g);
}

/* QEMU halted at reset; connect to g->address yourself. */
static inline int guest_start(guest *g, const char *kernel, char *why, size_t cap)
{
    memset(g, 0, sizeof *g);
    const char *initrd = guest_initrd();
    if (!initrd) {
        snprintf(why, cap, "no initramfs: run 'make vm' (or set FAULTLINE_INITRD)");
        return -1;
    }
    vm_config cfg = {.kernel = kernel, .initrd = initrd, .accel = "tcg"};
    fl_error e = {0};
    if (vm_start(&g->v, &cfg, &e) < 0) {
        snprintf(why, cap, "%s", e.msg);
        return -1;
    }
    snprintf(g->address, sizeof g->address, "%s", vm_gdb_address(g->v));
    return 0;
}

/* Boot `append` (e.g. "faultline.scenario=write"), wait for the trigger's
 * announcement, and capture its fault at `stations` only: the guest is left
 * stopped at the last of them, *f holds what was read there. */
static inline int guest_to_fault(guest *g, kern *k, const char *kernel, const char *initrd, const char *append,
                          unsigned stations, cap_fault *f, fl_error *err)
{
    memset(g, 0, sizeof *g);
    vm_config cfg = {.kernel = kernel, .initrd = initrd, .accel = "tcg", .append = append};
    char line[256];
    tgt_stop stop;
    if (vm_start(&g->v, &cfg, err) < 0 || tgt_connect(&g->t, vm_gdb_address(g->v), 10000, err) < 0 ||
        tgt_resume(g->t, err) < 0 ||
        vm_console_wait_prefix(g->v, VM_ANNOUNCE_PREFIX, line, sizeof line, 30000, err) < 0 ||
        vm_parse_announcement(line, &g->trig, err) < 0 || tgt_interrupt(g->t, &stop, 5000, err) < 0)
        return -1;
    snprintf(g->address, sizeof g->address, "%s", vm_gdb_address(g->v));
    cap_options co = {.filter = {.pid = g->trig.pid, .addr = g->trig.target}, .stations = stations,
                      .timeout_ms = 30000};
    return cap_session_open(&g->cs, k, g->t, &co, err) < 0 || vm_console_write(g->v, "go\n", err) < 0 ||
                   cap_fault_capture(g->cs, f, err) < 0
               ? -1
               : 0;
}

/* Address of a global symbol from `nm` (fine for a test). 0 if not found. */
static inline uint64_t guest_symbol(const char *kernel, const char *sym)
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
