/* The outcome on the real VM (TCG), scenario by scenario: the capture stops
 * the trigger's fault at do_user_addr_fault (a station every one of them
 * reaches), then the outcome walks CR2, runs the fault to its end with
 * breakpoints on the candidates and classifies it. Each scenario's error
 * code, resolver and classification must be what the table says; every
 * outcome check must hold. The write fault's "after" walk is cross-checked
 * against GDB reading the same entries by physical address at the same stop.
 *
 * The expectations are stated here, independently, and must agree with the
 * scenario table's rows (scenario.h: resolver, classification) too; argv[1]
 * runs one scenario only ("slots": the write fault with four slots). */
#include "check.h"
#include "qemu_guest.h"
#include "faultline/outcome.h"
#include "faultline/trace.h"

#include <signal.h>
#include <stdlib.h>

static const struct expect {
    const char *scenario;
    uint64_t error_code;     /* X86_PF_* as the CPU pushed it */
    const char *resolver;
    const char *classification; /* its beginning */
} expects[] = {
    { "write", 0x6, "do_anonymous_page", "anonymous first write: zero-filled page" },
    { "read", 0x4, "do_anonymous_page", "anonymous first read: the shared zero page" },
    { "kernel-write", 0x2, "do_anonymous_page", "anonymous first write: zero-filled page" },
    { "write-forked", 0x6, "do_anonymous_page", "anonymous first write: zero-filled page" },
    { "cow", 0x7, "wp_page_copy", "COW: page" },
    { "file-read", 0x4, "do_read_fault", "file read: page-cache page" },
    { "exec", 0x14, "do_anonymous_page", "anonymous first instruction fetch: the shared zero page" },
    { "segv-write", 0x6, "bad_area_access_error", "SIGSEGV (SEGV_ACCERR): write to a read-only mapping" },
    { "null", 0x4, "bad_area_nosemaphore", "SIGSEGV (SEGV_MAPERR): read of 0x0" },
    { "kernel-fixup", 0x2, "fixup_exception", "kernel access to a bad user address fixed up" },
    { "stack-grow", 0x6, "do_anonymous_page", "stack grown from" },
};

/* GDB reads the walk's entries by physical address at this very stop. */
static void gdb_crosscheck(const char *sock, const pw_walk *w)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "timeout 60 gdb -batch -nx -ex 'target remote %s' "
                     "-ex 'maintenance packet Qqemu.PhyMemMode:1'", sock);
    for (int i = 0; i < w->count; i++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " -ex 'x/gx 0x%llx'", (unsigned long long)w->e[i].addr);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " -ex 'maintenance packet Qqemu.PhyMemMode:0' 2>&1");
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p)
        return;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        unsigned long long addr, val;
        if (sscanf(line, "0x%llx:%*[ \t]0x%llx", &addr, &val) == 2 && got < w->count) {
            CHECK_EQ_U64(addr, w->e[got].addr);
            CHECK_EQ_U64(val, w->e[got].raw);
            got++;
        } else {
            fprintf(stderr, "gdb: %s", line);
        }
    }
    CHECK(pclose(p) == 0);
    CHECK_EQ_U64(got, w->count);
}

static void expect_scenario(const struct expect *x, out_fault *o, const cap_fault *f)
{
    fprintf(stderr, "== %s\n", x->scenario);
    const scenario_def *sc = scenario_find(x->scenario);
    CHECK(sc != NULL);
    if (sc) {
        CHECK_STR(sc->resolver, x->resolver);
        CHECK(strncmp(x->classification, sc->classification, strlen(sc->classification)) == 0);
        size_t before = o->nchecks;
        out_check_scenario(o, sc);
        CHECK_EQ_U64(o->nchecks, before + 2);
    }
    out_render(o, "text", stderr, NULL);
    CHECK_EQ_U64(o->error_code, x->error_code);
    CHECK_STR(o->resolver, x->resolver);
    CHECK(strncmp(o->classification, x->classification, strlen(x->classification)) == 0);
    if (strncmp(o->classification, x->classification, strlen(x->classification)) != 0)
        fprintf(stderr, "%s: classification \"%s\", expected it to begin \"%s\"\n", x->scenario, o->classification,
                x->classification);
    CHECK(o->have_before && o->have_after);
    CHECK(o->nchecks >= 2);
    CHECK_EQ_U64(out_checks_failed(o), 0);
    CHECK_EQ_U64(o->pid, f->task.pid);
    if (!strcmp(x->scenario, "write")) {
        /* Not present before; present, RW, US with a frame after. */
        CHECK(!o->before.mapped);
        CHECK(o->after.mapped && o->after.writable && o->after.user && o->after.frame != 0);
        CHECK(o->diff.became_present && o->diff.became_writable);
        CHECK(o->vma.have && o->vma.anonymous && strstr(o->vma.flag_names, "rd wr") != NULL);
        CHECK(o->have_ret && o->ret == 0);
    }
    if (!strcmp(x->scenario, "cow")) {
        CHECK(o->before.mapped && o->after.mapped && o->before.frame != o->after.frame);
        CHECK(o->have_parent && o->parent.frame == o->before.frame);
    }
    if (!strcmp(x->scenario, "segv-write") || !strcmp(x->scenario, "null")) {
        CHECK(o->diff.unchanged);
        CHECK(o->have_signal && !strcmp(o->signal_name, "SIGSEGV") && o->signal_pending);
    }
    if (!strcmp(x->scenario, "file-read"))
        CHECK(strstr(o->classification, "/bin/fl-trigger") != NULL);
    if (!strcmp(x->scenario, "stack-grow"))
        CHECK(o->vma.grew && strstr(o->vma.flag_names, "gd") != NULL);
}

/* max_slots 4: KVM's personality (four debug registers) on TCG. */
static void run_one(kern *k, const char *kernel, const char *initrd, const struct expect *x, int max_slots)
{
    guest g;
    static cap_fault f;
    fl_error err = { 0 };
    char append[128];
    snprintf(append, sizeof append, "faultline.scenario=%s", x->scenario);
    unsigned stations = 1u << CAP_ST_ENTRY | 1u << CAP_ST_EXC | 1u << CAP_ST_USER_FAULT;
    out_session *os = NULL;
    static out_fault o;
    out_options oo = { .timeout_ms = 60000, .max_slots = max_slots };
    int ok = guest_to_fault(&g, k, kernel, initrd, append, stations, &f, &err) == 0 &&
             out_session_open(&os, k, g.t, &oo, &err) == 0 && out_finish(os, &f, &o, &err) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s: %s\n", x->scenario, err.msg);
    else
        expect_scenario(x, &o, &f);
    if (ok && max_slots) {
        /* The handler, the end and handle_mm_fault fit; the rest is said. */
        CHECK(strstr(o.unwatched, "no breakpoint slot left for") != NULL);
        CHECK(strstr(o.unwatched, "force_sig_fault") != NULL);
    }
    if (ok && !max_slots && !strcmp(x->scenario, "write")) {
        pw_walk now, direct;
        CHECK(out_walk_now(os, o.cr3, o.cr2, &now, &err) == 0);
        CHECK_EQ_U64(now.e[now.count - 1].raw & PW_ADDR_MASK, o.after.e[o.after.count - 1].raw & PW_ADDR_MASK);
        /* A second, independent reading of the same entries: through the
         * kernel's direct map (page_offset_base) instead of QEMU's physical mode. */
        out_session *dm = NULL;
        out_options dmo = { .timeout_ms = 60000, .direct_map = true };
        CHECK(out_session_open(&dm, k, g.t, &dmo, &err) == 0 && out_walk_now(dm, o.cr3, o.cr2, &direct, &err) == 0);
        CHECK_EQ_U64(direct.count, now.count);
        for (int i = 0; i < now.count && i < direct.count; i++)
            CHECK_EQ_U64(direct.e[i].raw, now.e[i].raw);
        out_session_close(dm);
        tgt_release(g.t);
        g.t = NULL;
        gdb_crosscheck(g.address + strlen("unix:"), &now);
    }
    out_session_close(os);
    pid_t pid = g.v ? vm_pid(g.v) : 0;
    guest_stop(&g);
    CHECK(pid == 0 || kill(pid, 0) == -1);
}

/* The same write fault traced (single mode) from the entry to user mode:
 * the outcome from the trace must say the same thing. */
static void run_traced(kern *k, const char *kernel, const char *initrd)
{
    guest g;
    static cap_fault f;
    static out_fault o;
    fl_error err = { 0 };
    out_session *os = NULL;
    trace_result *tr = NULL;
    out_options oo = { .timeout_ms = 60000 };
    memset(&g, 0, sizeof g);
    vm_config cfg = { .kernel = kernel, .initrd = initrd, .accel = "tcg", .append = "faultline.scenario=write" };
    char line[256];
    tgt_stop stop;
    int ok = vm_start(&g.v, &cfg, &err) == 0 && tgt_connect(&g.t, vm_gdb_address(g.v), 10000, &err) == 0 &&
             tgt_resume(g.t, &err) == 0 &&
             vm_console_wait_prefix(g.v, VM_ANNOUNCE_PREFIX, line, sizeof line, 30000, &err) == 0 &&
             vm_parse_announcement(line, &g.trig, &err) == 0 && tgt_interrupt(g.t, &stop, 5000, &err) == 0;
    cap_options co = { .filter = { .pid = g.trig.pid, .addr = g.trig.target }, .stations = 1u << CAP_ST_ENTRY,
                       .timeout_ms = 30000 };
    ok = ok && cap_session_open(&g.cs, k, g.t, &co, &err) == 0 && out_session_open(&os, k, g.t, &oo, &err) == 0;
    if (ok)
        cap_session_on_stop(g.cs, out_on_stop, os);
    trace_options to = { .mode = TRACE_SINGLE, .timeout_ms = 120000, .max_steps = 60000 };
    ok = ok && vm_console_write(g.v, "go\n", &err) == 0 && cap_fault_capture(g.cs, &f, &err) == 0 &&
         trace_run(g.t, k, &to, &tr, &err) == 0 && out_from_trace(os, tr, &o, &err) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "traced write: %s\n", err.msg);
    else {
        fprintf(stderr, "== write, traced\n");
        out_render(&o, "text", stderr, NULL);
        CHECK(strncmp(o.classification, "anonymous first write: zero-filled page", 39) == 0);
        CHECK_STR(o.resolver, "do_anonymous_page");
        CHECK(o.have_ret && o.ret == 0);
        CHECK(o.vma.have && o.vma.anonymous);
        CHECK(!o.before.mapped && o.after.mapped && o.after.writable);
        CHECK(o.nchecks >= 2);
        CHECK_EQ_U64(out_checks_failed(&o), 0);
        CHECK_EQ_U64(tr->final_pc, o.fault_ip);
    }
    trace_result_free(tr);
    out_session_close(os);
    guest_stop(&g);
}

int main(int argc, char **argv)
{
    const char *kernel, *initrd;
    if (guest_files(&kernel, &initrd) < 0)
        return 1;
    vm_install_cleanup();
    kern *k = NULL;
    fl_error err = { 0 };
    if (kern_open(&k, kernel, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++)
        if (argc < 2 || !strcmp(argv[1], expects[i].scenario)) {
            run_one(k, kernel, initrd, &expects[i], 0);
            ran++;
        }
    if (argc < 2 || !strcmp(argv[1], "traced")) {
        run_traced(k, kernel, initrd);
        ran++;
    }
    if (argc < 2 || !strcmp(argv[1], "slots")) {
        run_one(k, kernel, initrd, &expects[0], 4);
        ran++;
    }
    CHECK(ran > 0);
    kern_close(k);
    return check_summary("itest_outcome");
}
