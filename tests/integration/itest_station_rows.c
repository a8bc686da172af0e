/* A station and a check added by one row each, on the real guest: the
 * write fault reaches folio_add_new_anon_rmap (the new anonymous folio joins
 * the reverse map) after the six default stations; its values are live and
 * agree with what the default stations saw, the added check holds, and the
 * stop hook ran at every station with the guest stopped there. A row naming
 * a function this kernel does not have is "not in this kernel", no error. */
#include "check.h"
#include "station_rows.h"
#include "qemu_guest.h"
#include "faultline/capture.h"
#include "faultline/report.h"

#include <inttypes.h>

static const chk_def rmap_check = {
    .name = "rmap-vma-is-fault-vma",
    .claim = "the reverse map gets the VMA handle_mm_fault got",
    .expected = { { "handle_mm_fault", "vma" } },
    .actual = { { "folio_add_new_anon_rmap", "vma" } },
    .relation = CHK_EQUAL,
};

typedef struct hook_log {
    unsigned calls, at_pc;
} hook_log;

static void on_stop(void *ctx, int station, const cap_fault *f, tgt *t)
{
    hook_log *h = ctx;
    uint64_t rip = 0;
    h->calls++;
    h->at_pc += tgt_reg_read(t, "rip", &rip, NULL) == 0 && rip == f->st[station].pc;
}

static int capture(guest *g, kern *k, cap_fault *f, hook_log *h, int *rmap, int *missing, fl_error *err)
{
    vm_config cfg = { .kernel = guest_kernel(), .initrd = guest_initrd(), .accel = "tcg",
                      .append = "faultline.scenario=write" };
    char line[256];
    tgt_stop stop;
    if (vm_start(&g->v, &cfg, err) < 0 || tgt_connect(&g->t, vm_gdb_address(g->v), 10000, err) < 0 ||
        tgt_resume(g->t, err) < 0 ||
        vm_console_wait_prefix(g->v, VM_ANNOUNCE_PREFIX, line, sizeof line, 60000, err) < 0 ||
        vm_parse_announcement(line, &g->trig, err) < 0 || tgt_interrupt(g->t, &stop, 5000, err) < 0)
        return -1;
    cap_options co = { .filter = { .pid = g->trig.pid, .addr = g->trig.target }, .timeout_ms = 60000 };
    if (cap_session_open(&g->cs, k, g->t, &co, err) < 0 ||
        (*rmap = cap_session_add_station(g->cs, &rmap_row, err)) < 0 ||
        (*missing = cap_session_add_station(g->cs, &missing_row, err)) < 0 ||
        cap_session_add_check(g->cs, &rmap_check, err) < 0)
        return -1;
    cap_session_on_stop(g->cs, on_stop, h);
    return vm_console_write(g->v, "go\n", err) < 0 || cap_fault_capture(g->cs, f, err) < 0 ? -1 : 0;
}

int main(void)
{
    const char *kernel = guest_kernel();
    if (!kernel || !guest_initrd()) {
        printf("SKIP itest_station_rows: no guest (run 'make vm' or set FAULTLINE_KERNEL/INITRD)\n");
        return 77;
    }
    kern *k = NULL;
    fl_error err = { 0 };
    if (kern_open(&k, kernel, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    static guest g;
    static cap_fault f;
    hook_log h = { 0 };
    int rmap = -1, missing = -1;
    int rc = capture(&g, k, &f, &h, &rmap, &missing, &err);
    if (rc < 0)
        fprintf(stderr, "capture: %s\n", err.msg);
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(f.st[rmap].hit && f.st[missing].absent && !f.st[missing].hit);
        CHECK_EQ_U64(h.calls, CAP_ST_COUNT + 1);
        CHECK_EQ_U64(h.at_pc, h.calls);
        const cap_value *addr = cap_value_get(&f, rmap, "address");
        const cap_value *vma = cap_value_get(&f, rmap, "vma");
        const cap_value *mm = cap_value_get(&f, rmap, "vma->vm_mm");
        CHECK(addr && addr->value == (g.trig.target & ~(uint64_t)0xfff)); /* the page */
        CHECK(vma && vma->value == cap_value_get(&f, CAP_ST_MM_FAULT, "vma")->value);
        CHECK(mm && mm->value == f.task.mm);
        char *x = render_fault(REPORT_TEXT, &f, g.cs), *m = render_fault(REPORT_MD, &f, g.cs), *j = render_fault(REPORT_JSON, &f, g.cs);
        char want[128];
        snprintf(want, sizeof want, "    address                  0x%016" PRIx64, addr ? addr->value : 0);
        CHECK(strstr(x, "[7] folio_add_new_anon_rmap  mm/rmap.c:") != NULL);
        CHECK(strstr(x, want) != NULL);
        CHECK(strstr(x, "[8] faultline_no_such_function: not in this kernel") != NULL);
        CHECK(strstr(x, "\u2713 rmap-vma-is-fault-vma") != NULL);
        snprintf(want, sizeof want, "| `address` | `0x%" PRIx64 "` |", addr ? addr->value : 0);
        CHECK(strstr(m, "## 8. The new anonymous folio joins the reverse map: `folio_add_new_anon_rmap`") != NULL);
        CHECK(strstr(m, want) != NULL);
        CHECK(strstr(m, "| \u2713 | `rmap-vma-is-fault-vma` |") != NULL);
        snprintf(want, sizeof want, "\"address\":{\"value\":\"0x%" PRIx64 "\"}", addr ? addr->value : 0);
        CHECK(strstr(j, want) != NULL);
        CHECK(strstr(j, "\"function\":\"faultline_no_such_function\",\"status\":\"not in this kernel\"") != NULL);
        CHECK(strstr(j, "\"name\":\"rmap-vma-is-fault-vma\",\"ok\":true") != NULL);
        CHECK(cap_checks_failed(&f) == 0);
        if (cap_checks_failed(&f) || getenv("FL_TEST_VERBOSE"))
            fputs(x, stderr);
        free(x);
        free(m);
        free(j);
    }
    guest_stop(&g);
    kern_close(k);
    return check_summary("itest_station_rows");
}
