/* cmd_console: the guest's serial console while it runs: announcements of
 * the triggers, their end, the kprobe blacklist lines, a kernel panic. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "faultline/cmd.h"
#include "faultline/util.h"
void cmd_console_init(cmd_console *c, vm *v)
{
    memset(c, 0, sizeof *c);
    c->v = v;
    for (int i = 0; i < CAP_ST_COUNT; i++)
        c->kprobes_listed[i] = -1;
}

/* "FAULTLINE-KPROBES name=F listed=yes|no", from vm/init. */
static void console_kprobes(cmd_console *c, const char *line)
{
    char name[64], listed[8];
    if (sscanf(line, "FAULTLINE-KPROBES name=%63s listed=%7s", name, listed) != 2)
        return;
    int id = cap_station_by_name(name);
    if (id >= 0)
        c->kprobes_listed[id] = strcmp(listed, "yes") == 0;
}

/* Ask the guest's init to report its kprobe blacklist for every station. */
void cmd_append_kprobes(char *append, size_t cap)
{
    size_t used = strlen(append);
    used += (size_t)snprintf(append + used, cap - used, " faultline.kprobes=");
    for (int i = 0; i < CAP_ST_COUNT && used < cap; i++)
        used += (size_t)snprintf(append + used, cap - used, "%s%s", i ? "," : "", cap_station_function(i));
}

int cmd_console_drain(void *ctx)
{
    cmd_console *c = ctx;
    if (cmd_stop_signal)
        return -1;
    char line[256];
    fl_error e;
    int r;
    while ((r = vm_console_poll_line(c->v, line, sizeof line, &e)) == 1) {
        if (strstr(line, "Kernel panic")) {
            c->panic = true;
            snprintf(c->panic_line, sizeof c->panic_line, "%s", line);
        }
        if (strncmp(line, "FAULTLINE-KPROBES ", 18) == 0)
            console_kprobes(c, line);
        else if ((strncmp(line, VM_ANNOUNCE_PREFIX, strlen(VM_ANNOUNCE_PREFIX)) == 0 ||
                  strncmp(line, VM_DONE_PREFIX, strlen(VM_DONE_PREFIX)) == 0) &&
                 c->npending < CMD_PENDING_MAX)
            snprintf(c->pending[c->npending++], sizeof c->pending[0], "%s", line);
    }
    return (r < 0 || c->panic) ? -1 : 0;
}

/* The stub went away or stopped by itself: the console may say why (with
 * panic=-1 QEMU exits at once, often before we read the panic line). Read
 * its last words, at most a second, and name a panic if there was one. */
void cmd_console_explain(cmd_console *c, fl_error *err)
{
    double deadline = fl_now_s() + 1.0;
    while (!c->panic && fl_now_s() < deadline) {
        if (cmd_console_drain(c) < 0 && !c->panic)
            break; /* QEMU's console ended without a panic line */
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (c->panic)
        fl_fail(err, FL_ECLOSED, "the guest kernel panicked: %s", c->panic_line);
}

/* Wait (guest running) for a console line starting with prefix. */
int cmd_console_wait(cmd_console *c, tgt *t, const char *prefix, char *out, size_t cap, int timeout_ms, fl_error *err)
{
    double deadline = fl_now_s() + timeout_ms / 1000.0;
    for (;;) {
        for (int i = 0; i < c->npending; i++) {
            if (strncmp(c->pending[i], prefix, strlen(prefix)) == 0) {
                snprintf(out, cap, "%s", c->pending[i]);
                memmove(c->pending[i], c->pending[i + 1], (size_t)(c->npending - i - 1) * sizeof c->pending[0]);
                c->npending--;
                return 0;
            }
        }
        if (cmd_console_drain(c) < 0) {
            if (cmd_stop_signal)
                return cmd_stopped_by_signal(err);
            if (c->panic)
                return fl_fail(err, FL_ECLOSED, "the guest kernel panicked: %s", c->panic_line);
            return fl_fail(err, FL_ECLOSED, "QEMU exited while waiting for '%s' (console: %s)", prefix,
                           vm_console_tail(c->v, 3));
        }
        tgt_stop stop;
        int r = tgt_poll_stop(t, &stop, 5, err);
        if (r < 0) {
            cmd_console_explain(c, err);
            return -1;
        }
        if (r == 1) {
            uint64_t pc = 0;
            tgt_reg_read(t, "rip", &pc, NULL);
            bool kvm = strcmp(vm_accel(c->v), "kvm") == 0;
            /* QEMU's stub reports an accelerator's internal error as SIGABRT (6). */
            fl_fail(err, FL_EPROTO, "the guest stopped by itself (signal %d at pc 0x%" PRIx64 "%s) while waiting for '%s'%s",
                    stop.code, pc, stop.code == 6 ? ", QEMU's sign of an accelerator error" : "", prefix,
                    kvm ? "; KVM does not run this guest here: use --accel tcg" : "");
            cmd_console_explain(c, err);
            return -1;
        }
        if (fl_now_s() > deadline)
            return fl_fail(err, FL_ETIMEOUT, "no '%s' line on the console within %d s (last lines: %s)", prefix,
                           timeout_ms / 1000, vm_console_tail(c->v, 3));
    }
}
