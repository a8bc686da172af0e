/* Cross-check one station against GDB at the same stop: faultline captures
 * the write fault at exc_page_fault and lets go of the stub without
 * detaching (QEMU keeps the guest stopped), then GDB connects to the same
 * stop and reads the same registers and struct pt_regs through its own
 * DWARF. Every value must agree. */
#include "check.h"
#include "qemu_guest.h"
#include "faultline/capture.h"
#include "faultline/kernel.h"
#include "faultline/target.h"
#include "faultline/vm.h"

#include <signal.h>
#include <stdlib.h>

static uint64_t gdb_values[16];
static int ngdb;

/* Runs GDB on the stopped guest; collects every "$N = 0x..." in order. */
static int run_gdb(const char *vmlinux, const char *sock)
{
    static const char *const exprs[] = {
        "$rip", "$rdi", "$rsi", "$cr2",
        "((struct pt_regs *)$rdi)->ip", "((struct pt_regs *)$rdi)->cs", "((struct pt_regs *)$rdi)->flags",
        "((struct pt_regs *)$rdi)->sp", "((struct pt_regs *)$rdi)->ss", "((struct pt_regs *)$rdi)->orig_ax",
        "sizeof(struct pt_regs)",
    };
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "timeout 60 gdb -batch -nx -ex 'file %s' -ex 'target remote %s'", vmlinux, sock);
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " -ex 'p/x %s'", exprs[i]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p) && ngdb < 16) {
        char *eq = strstr(line, " = 0x");
        if (line[0] == '$' && eq)
            gdb_values[ngdb++] = strtoull(eq + 3, NULL, 16);
        else
            fprintf(stderr, "gdb: %s", line);
    }
    return pclose(p) == 0 ? 0 : -1;
}

static uint64_t captured(const cap_fault *f, const char *name)
{
    const cap_value *v = cap_value_get(f, CAP_ST_EXC, name);
    CHECK(v != NULL);
    return v ? v->value : 0xdeadbeef;
}

int main(void)
{
    const char *kernel, *initrd;
    if (guest_files(&kernel, &initrd) < 0)
        return 1;
    vm_install_cleanup();
    fl_error err = { 0 };
    kern *k = NULL;
    guest g = { 0 };
    static cap_fault f;
    /* Only station 2: the guest is left stopped at exc_page_fault. */
    int ok = kern_open(&k, kernel, NULL, &err) == 0 &&
             guest_to_fault(&g, k, kernel, initrd, "faultline.scenario=write", 1u << CAP_ST_EXC, &f, &err) == 0;
    CHECK(ok);
    const vm_trigger trig = g.trig;
    if (ok) {
        tgt_release(g.t);
        g.t = NULL;
        const char *sock = g.address + strlen("unix:");
        CHECK(run_gdb(kernel, sock) == 0);
        CHECK(ngdb == 11);
        uint64_t size;
        CHECK(kern_type_size(k, "struct pt_regs", &size, NULL) == 0);
        if (ngdb == 11) {
            CHECK_EQ_U64(gdb_values[0], f.st[CAP_ST_EXC].pc);
            CHECK_EQ_U64(gdb_values[1], captured(&f, "regs"));
            CHECK_EQ_U64(gdb_values[2], captured(&f, "error_code"));
            CHECK_EQ_U64(gdb_values[3], captured(&f, "cr2"));
            CHECK_EQ_U64(gdb_values[3], trig.target);
            CHECK_EQ_U64(gdb_values[4], captured(&f, "regs->ip"));
            CHECK_EQ_U64(gdb_values[5], captured(&f, "regs->cs"));
            CHECK_EQ_U64(gdb_values[6], captured(&f, "regs->flags"));
            CHECK_EQ_U64(gdb_values[7], captured(&f, "regs->sp"));
            CHECK_EQ_U64(gdb_values[8], captured(&f, "regs->ss"));
            CHECK_EQ_U64(gdb_values[9], captured(&f, "regs->orig_ax"));
            CHECK_EQ_U64(gdb_values[10], size);
        }
    } else {
        fprintf(stderr, "setup failed: %s\n", err.msg);
    }
    pid_t pid = g.v ? vm_pid(g.v) : 0;
    guest_stop(&g);
    kern_close(k);
    CHECK(pid == 0 || kill(pid, 0) == -1);
    return check_summary("itest_gdb_crosscheck");
}
