/* cmd_repro: run --reproducible. The same scenario on the same kernel gives
 * the same capture values and the same trace instruction sequence, run after
 * run (measured: docs/ci.md).
 *
 * The VM side is vm.c's reproducible mode (instruction-counted clock, fixed
 * RTC, seeded RNG, norandmaps). What remains nondeterministic is the host:
 * in the usual flow the trigger announces itself and waits for "go" on the
 * console, and while it waits the guest idles, and with a clock that jumps
 * to the next timer when idle, a host-timed wait lets a host-dependent number
 * of timers run (vmstat folding, per-CPU page lists), so the traced path
 * differed from run to run. So here nothing from the host reaches the guest:
 * the kernel command line says faultline.go=auto (the trigger faults right
 * after announcing), and the entry station is armed before the guest's
 * first instruction with a filter known in advance: the trigger's comm
 * ("fl-" + scenario) and its deterministic target 0x7f0000000100 (see
 * vm/triggers/fl-trigger.c). So that the boot's hundreds of faults are not
 * each a stop, the station is armed only once the trigger exists: a
 * breakpoint on __set_task_comm (exec and prctl name a task there) stops
 * each time a task is named, until it is the trigger's name; stops are
 * invisible to an instruction-counted guest. The announcement is still
 * read, afterwards, and must name the pid that was captured.
 *
 * Scenarios whose fault only the announcement identifies are refused (the
 * table below says which and why). */
#include <libgen.h>
#include <stdint.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultline/cmd.h"
#include "faultline/diff.h"
#include "faultline/scenario.h"
#include "faultline/util.h"

/* The scenarios whose target is known before the trigger runs (with
 * norandmaps the page hint 0x7f0000000000 is always free): the address the
 * filter waits for. vm/triggers/trigger.c's set_up: page + 0x100. Left out: write-forked and cow (two processes
 * of the same comm write the same address: the parent before its fork, the
 * child after; only the announced pid tells them apart), null (announced with no address: the host takes the process's
 * first fault) and stack-grow (an address below the stack, known only from
 * the announcement). */
static const struct {
    const char *scenario;
    uint64_t target;
} repro_rows[] = {
    { "write", 0x7f0000000100ull },     { "read", 0x7f0000000100ull },      { "kernel-write", 0x7f0000000100ull },
    { "file-read", 0x7f0000000100ull }, { "exec", 0x7f0000000100ull },
    { "segv-write", 0x7f0000000100ull }, { "kernel-fixup", 0x7f0000000100ull },
};

static uint64_t repro_target(const char *scenario)
{
    for (size_t i = 0; scenario && i < sizeof repro_rows / sizeof repro_rows[0]; i++)
        if (strcmp(repro_rows[i].scenario, scenario) == 0)
            return repro_rows[i].target;
    return 0;
}

bool cmd_repro_supports(const char *scenario)
{
    return repro_target(scenario) != 0;
}

int cmd_repro_check(const cli_options *o, fl_error *err)
{
    if (!o->reproducible)
        return 0;
    if (!o->nprogram && strcmp(o->scenario, "all") != 0 && !cmd_repro_supports(o->scenario))
        return fl_fail(err, FL_EUSAGE, "--reproducible cannot run %s: its fault is told apart only by what the "
                                       "trigger announces (its pid or address), which comes too late; the scenarios "
                                       "it runs: write, read, kernel-write, file-read, exec, segv-write, "
                                       "kernel-fixup", o->scenario);
    if (o->count != 1 || o->pid || o->comm || o->addr || cmd_selects_more(o))
        return fl_fail(err, FL_EUSAGE, "--reproducible captures each trigger's own fault, chosen before the guest "
                                       "runs: --count, --nth, --pid, --comm, --addr, --range and --fault-mode do "
                                       "not apply");
    if (strcmp(o->accel, "kvm") == 0)
        return fl_fail(err, FL_EUSAGE, "--reproducible needs --accel tcg: under KVM the guest runs on the host's "
                                       "clock and CPU, which no option makes deterministic");
    return 0;
}

void cmd_repro_append(char *append, size_t cap)
{
    size_t n = strlen(append);
    snprintf(append + n, cap - n, "%sfaultline.go=auto", n ? " " : "");
}

/* The scenario of the index-th fault: "all" is the catalog's order (vm/init
 * runs it so) without the scenarios reproducible mode cannot tell apart. */
const char *cmd_repro_scenario(const cli_options *o, int index)
{
    if (o->nprogram)
        return NULL;
    if (strcmp(o->scenario, "all") != 0)
        return index == 0 ? o->scenario : NULL;
    for (size_t i = 0; i < scenario_count(); i++)
        if (cmd_repro_supports(scenario_at(i)->name) && index-- == 0)
            return scenario_at(i)->name;
    return NULL;
}

/* The filter of the index-th fault, known before the guest runs: the
 * trigger's comm and target, or the program's name (exec sets it). */
void cmd_repro_filter(const cli_options *o, int index, cap_filter *f)
{
    memset(f, 0, sizeof *f);
    const char *scenario = cmd_repro_scenario(o, index);
    if (scenario) {
        snprintf(f->comm, sizeof f->comm, "fl-%.12s", scenario);
        f->addr = repro_target(scenario);
    } else if (o->nprogram) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", o->program[0]);
        snprintf(f->comm, sizeof f->comm, "%.15s", basename(tmp));
    }
}

/* The trigger as the capture saw it (the announcement comes later). */
void cmd_repro_trigger(const cli_options *o, int index, const cap_fault *f, report_trigger *rt)
{
    memset(rt, 0, sizeof *rt);
    rt->scenario = cmd_repro_scenario(o, index);
    rt->have = rt->scenario != NULL;
    rt->pid = f->task.pid;
    rt->comm = f->task.comm;
    rt->target = repro_target(rt->scenario);
    rt->page = rt->target & ~0xfffull;
}

/* After the guest's end: every captured fault's trigger must have announced
 * the pid that was captured (what current-is-trigger checks in the usual
 * flow). Announcements are matched by scenario: under `all` the scenarios
 * reproducible mode leaves out announce themselves too. */
int cmd_repro_verify(cmd_console *con, const cli_options *o, const int *pids, int n, fl_error *err)
{
    for (int k = 0; k < n; k++) {
        const char *scenario = cmd_repro_scenario(o, k);
        bool found = false;
        for (int i = 0; i < con->npending && !found; i++) {
            vm_trigger t;
            if (strncmp(con->pending[i], VM_ANNOUNCE_PREFIX, strlen(VM_ANNOUNCE_PREFIX)) != 0 ||
                vm_parse_announcement(con->pending[i], &t, NULL) < 0 ||
                (scenario ? strcmp(t.scenario, scenario) != 0 : false))
                continue;
            if (t.pid != pids[k])
                return fl_fail(err, FL_EPROTO, "the %s trigger announced pid %d but the fault captured was pid %d's: "
                               "the reproducible filter caught another process", t.scenario, t.pid, pids[k]);
            found = true;
        }
        if (!found)
            return fl_fail(err, FL_EPROTO, "the %s trigger never announced itself, yet a fault was captured for it",
                           scenario ? scenario : "program's");
    }
    return 0;
}

/* The capture's idle hook: drain the console, and hand the kprobe lines
 * init printed during the boot to the session as they arrive. */
int cmd_repro_idle(void *ctx)
{
    cmd_repro_idle_ctx *c = ctx;
    int rc = cmd_console_drain(c->con);
    if (*c->cs)
        cap_session_set_kprobe_live(*c->cs, c->con->kprobes_listed);
    return rc;
}

/* Run the guest until it names a task `comm` (exec or prctl), and leave it
 * stopped there. */
int cmd_repro_wait_comm(cmd_vm *r, cmd_console *con, const char *comm, int timeout_ms, fl_error *err)
{
    uint64_t fn;
    if (kern_sym_addr(r->k, "__set_task_comm", &fn, err) < 0)
        return fl_error_prefix(err, "--reproducible waits for the trigger's exec at __set_task_comm");
    if (tgt_bp_insert(r->t, TGT_BP_HW, fn, 1, err) < 0)
        return -1;
    int64_t deadline = fl_deadline_ms(timeout_ms);
    int rc = -1;
    for (;;) {
        tgt_stop stop;
        if (tgt_resume(r->t, err) < 0)
            break;
        int got = 0;
        while ((got = tgt_poll_stop(r->t, &stop, 2, err)) == 0) {
            if (cmd_console_drain(con) < 0 || fl_remaining_ms(deadline) == 0) {
                tgt_interrupt(r->t, &stop, 2000, NULL);
                got = -2;
                break;
            }
        }
        if (got == -2) {
            if (!cmd_stopped_by_signal(err))
                fl_fail(err, FL_ETIMEOUT, "no task named %s appeared within %d s (console: %s)", comm,
                        timeout_ms / 1000, vm_console_tail(con->v, 3));
            break;
        }
        uint64_t buf = 0;
        char name[17] = "";
        if (got < 0 || tgt_reg_read(r->t, "rsi", &buf, err) < 0 || tgt_mem_read(r->t, buf, name, 16, err) < 0)
            break;
        if (strncmp(name, comm, 16) == 0) {
            rc = 0;
            break;
        }
    }
    if (tgt_bp_remove(r->t, TGT_BP_HW, fn, 1, rc == 0 ? err : NULL) < 0)
        rc = -1;
    return rc;
}

/* What a reproducible report says of itself: the same values and path run
 * after run, except the fields that vary, each with why (the list diff and
 * --expect leave out). */
void cmd_repro_note(FILE *out, enum report_format fmt)
{
    if (fmt == REPORT_JSON) { /* through jansson, like every JSON record */
        json_t *varies = json_array();
        for (size_t i = 0; diff_variable_fields[i]; i++)
            json_array_append_new(varies, json_string(diff_variable_fields[i]));
        json_t *rec = json_pack("{s:s, s:i, s:o}", "type", "reproducible", "icount_shift",
                                atoi(VM_REPRODUCIBLE_SHIFT), "varies", varies);
        if (rec) {
            json_dumpf(rec, out, JSON_COMPACT);
            fputc('\n', out);
        }
        json_decref(rec);
        return;
    }
    fprintf(out, "%sreproducible run (-icount %s): the same values and the same path on every run of this\n"
                 "scenario on this kernel, except these fields, which vary and are not compared:\n",
            fmt == REPORT_MD ? "\n" : "", VM_REPRODUCIBLE_ICOUNT);
    for (size_t i = 0; diff_variable_fields[i]; i++)
        fprintf(out, "%s%s%s: %s\n", fmt == REPORT_MD ? "- `" : "  ", diff_variable_fields[i],
                fmt == REPORT_MD ? "`" : "",
                diff_variable_reason(diff_variable_fields[i]));
    fprintf(out, "%sthe trigger is known before it announces itself, so current-is-trigger is checked against the\n"
                 "%sannouncement after the run (a mismatch ends the run with exit 2)\n%s",
            fmt == REPORT_MD ? "" : "  ", fmt == REPORT_MD ? "" : "  ", fmt == REPORT_MD ? "\n" : "");
}
