/* A guest workload with many page faults, for the exception-log test and
 * benchmark: a static program (built here with cc -static) that maps PAGES
 * anonymous pages at a fixed hint and writes one byte into each, run as the
 * bundled guest's `program` scenario (the same path as `faultline run --
 * PROGRAM`). Its faults on those pages are read three ways: the breakpoint
 * path (capture at asm_exc_page_fault), QEMU's exception log (exclog), and
 * GDB. Each way's faults are reduced to the same few numbers (touch_fault),
 * taken from a cap_fault by name so both faultline paths pass through the
 * capture's shapes. */
#ifndef FAULTLINE_TESTS_TOUCH_GUEST_H
#define FAULTLINE_TESTS_TOUCH_GUEST_H

#include "faultline/exclog.h"
#include "faultline/util.h"
#include "qemu_guest.h"

#include <stdlib.h>
#include <sys/stat.h>

#define TOUCH_BASE 0x7e0000000000ull /* the program's mmap hint */
#define TOUCH_COMM "fl-touch"
#define TOUCH_OFF 0x10

typedef struct touch_prog {
    char dir[64];
    char cpio[128];
} touch_prog;

typedef struct touch_fault {
    uint64_t cr2, cr3, error_code, rip, cs, rflags, rsp, ss;
} touch_fault;

static const char touch_source[] =
    "#include <stdlib.h>\n#include <sys/mman.h>\n"
    "int main(int argc, char **argv)\n{\n"
    "    long n = argc > 1 ? atol(argv[1]) : 100;\n"
    "    volatile char *p = mmap((void *)0x7e0000000000UL, (size_t)n * 4096, PROT_READ | PROT_WRITE,\n"
    "                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
    "    if (p == MAP_FAILED || (unsigned long)p != 0x7e0000000000UL)\n        return 2;\n"
    "    for (long i = 0; i < n; i++)\n        p[i * 4096 + 0x10] = 1;\n"
    "    return 0;\n}\n";

static inline void touch_cleanup(touch_prog *tp)
{
    if (tp->dir[0]) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tp->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tp->dir);
    }
    tp->dir[0] = '\0';
}

/* Build the program and its archive (/user/fl-touch). 0, or -1 with why. */
static inline int touch_build(touch_prog *tp, char *why, size_t cap)
{
    memset(tp, 0, sizeof *tp);
    snprintf(tp->dir, sizeof tp->dir, "/tmp/faultline-touch-XXXXXX");
    if (!mkdtemp(tp->dir)) {
        snprintf(why, cap, "cannot create a temporary directory");
        tp->dir[0] = '\0';
        return -1;
    }
    char path[160], cmd[512];
    snprintf(path, sizeof path, "%s/touch.c", tp->dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(touch_source, f) < 0 || fclose(f) != 0) {
        snprintf(why, cap, "cannot write %s", path);
        return -1;
    }
    snprintf(tp->cpio, sizeof tp->cpio, "%s/touch.cpio", tp->dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p user && cc -static -O1 -o user/" TOUCH_COMM " touch.c 2>/dev/null && "
             "printf 'user\\nuser/" TOUCH_COMM "\\n' | cpio -o -H newc --quiet > touch.cpio 2>/dev/null",
             tp->dir);
    if (system(cmd) != 0) {
        snprintf(why, cap, "cannot build the static guest program or its archive (needs cc -static and cpio)");
        return -1;
    }
    return 0;
}

/* Boot the bundled guest running the program over `pages` pages, halted.
 * auto_go: the program faults as soon as init runs it (for a debugger that
 * arms before the guest runs); otherwise it waits for "go" on the console. */
static inline int touch_boot(guest *g, const touch_prog *tp, int pages, bool exception_log, bool auto_go,
                             fl_error *err)
{
    memset(g, 0, sizeof *g);
    char append[256];
    snprintf(append, sizeof append, "faultline.scenario=program faultline.program=/user/" TOUCH_COMM
             " faultline.args=%d%s", pages, auto_go ? " faultline.go=auto" : "");
    vm_config cfg = {.kernel = guest_kernel(), .initrd = guest_initrd(), .extra_initrd = tp->cpio,
                     .accel = "tcg", .append = append, .exception_log = exception_log};
    if (vm_start(&g->v, &cfg, err) < 0)
        return -1;
    snprintf(g->address, sizeof g->address, "%s", vm_gdb_address(g->v));
    return 0;
}

/* Connect, let the guest run to the program's announcement, stop it. */
static inline int touch_to_announcement(guest *g, fl_error *err)
{
    char line[256];
    tgt_stop stop;
    return tgt_connect(&g->t, g->address, 10000, err) < 0 || tgt_resume(g->t, err) < 0 ||
                   vm_console_wait_prefix(g->v, VM_ANNOUNCE_PREFIX, line, sizeof line, 60000, err) < 0 ||
                   vm_parse_announcement(line, &g->trig, err) < 0 || tgt_interrupt(g->t, &stop, 5000, err) < 0
               ? -1
               : 0;
}

/* The entry station's numbers, by the capture's value names. */
static inline int touch_from_fault(const cap_fault *f, touch_fault *out)
{
    static const char *names[] = {"cr2", "cr3", "frame.error_code", "frame.rip", "frame.cs", "frame.rflags",
                                  "frame.rsp", "frame.ss"};
    uint64_t *dst[] = {&out->cr2, &out->cr3, &out->error_code, &out->rip, &out->cs, &out->rflags, &out->rsp,
                       &out->ss};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cap_value *v = cap_value_get(f, CAP_ST_ENTRY, names[i]);
        if (!v)
            return -1;
        *dst[i] = v->value;
    }
    return 0;
}

static inline bool touch_in_range(uint64_t cr2, int pages)
{
    return cr2 >= TOUCH_BASE && cr2 < TOUCH_BASE + (uint64_t)pages * 4096;
}

/* Open a capture session at the entry station only, for the program (its
 * pid, and its comm: the shell that announced it execs it, and only the
 * program's own mm is wanted). */
static inline int touch_session(guest *g, kern *k, fl_error *err)
{
    cap_options co = {.filter = {.pid = g->trig.pid}, .stations = 1u << CAP_ST_ENTRY, .timeout_ms = 60000};
    snprintf(co.filter.comm, sizeof co.filter.comm, "%s", TOUCH_COMM);
    return cap_session_open(&g->cs, k, g->t, &co, err);
}

/* Is this log record a fault of the program? Its
 * CR3 names the same address space as `cr3`. */
static inline bool touch_log_match(const exclog_record *r, uint64_t cr3)
{
    return exclog_cr3_space(r->cr3) == exclog_cr3_space(cr3);
}

#endif
