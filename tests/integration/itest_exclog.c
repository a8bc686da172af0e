/* The same page faults through QEMU's exception log and through the
 * breakpoint path, in one run: a static program touches PAGES fresh pages;
 * faultline captures every fault of that program at asm_exc_page_fault
 * (filter: its pid and comm) while QEMU writes its -d int log; afterwards
 * the log's faults of the same address space (by CR3) must be the captured
 * faults, one for one and in order, with the same CR2, CR3, error code, CS,
 * RIP, RFLAGS, RSP and SS. */
#include "check.h"
#include "touch_guest.h"
#include "faultline/report.h"

#define PAGES 40
#define MAX_FAULTS (PAGES + 200)

static touch_fault bp[MAX_FAULTS], lg[MAX_FAULTS];

static void check_same(const touch_fault *a, const touch_fault *b, size_t i)
{
    bool same = a->cr2 == b->cr2 && a->cr3 == b->cr3 && a->error_code == b->error_code && a->rip == b->rip &&
                a->cs == b->cs && a->rflags == b->rflags && a->rsp == b->rsp && a->ss == b->ss;
    CHECK(same);
    if (!same)
        fprintf(stderr,
                "fault %zu: breakpoint cr2 %#" PRIx64 " cr3 %#" PRIx64 " ec %#" PRIx64 " rip %#" PRIx64 " cs %#" PRIx64
                " rflags %#" PRIx64 " rsp %#" PRIx64 " ss %#" PRIx64 "\n"
                "          log        cr2 %#" PRIx64 " cr3 %#" PRIx64 " ec %#" PRIx64 " rip %#" PRIx64 " cs %#" PRIx64
                " rflags %#" PRIx64 " rsp %#" PRIx64 " ss %#" PRIx64 "\n",
                i, a->cr2, a->cr3, a->error_code, a->rip, a->cs, a->rflags, a->rsp, a->ss, b->cr2, b->cr3,
                b->error_code, b->rip, b->cs, b->rflags, b->rsp, b->ss);
}

/* The breakpoint path: every fault of the program until all its pages. */
static size_t capture_all(guest *g, fl_error *err)
{
    size_t n = 0;
    int in_range = 0;
    cap_fault *f = malloc(sizeof *f);
    while (f && n < MAX_FAULTS && in_range < PAGES) {
        if (cap_fault_capture(g->cs, f, err) < 0 || touch_from_fault(f, &bp[n]) < 0)
            break;
        in_range += touch_in_range(bp[n++].cr2, PAGES);
    }
    free(f);
    return n;
}

/* The log path: the program's faults (same CR3 as its first captured one). */
static size_t read_log(const char *path, uint64_t cr3, const cap_session *cs, fl_error *err)
{
    exclog_reader *r;
    if (exclog_open(&r, path, NULL, NULL, err) < 0)
        return 0;
    exclog_record rec;
    cap_fault *f = malloc(sizeof *f);
    size_t m = 0;
    bool printed = false;
    while (f && m < MAX_FAULTS && exclog_next_fault(r, &rec, 0, err) == 1) {
        if (!touch_log_match(&rec, cr3))
            continue;
        exclog_fault_from_record(&rec, cs, f);
        CHECK(touch_from_fault(f, &lg[m]) == 0);
        if (!printed && touch_in_range(rec.cr2, PAGES)) { /* the report code prints the log's shape */
            report_trigger t = {0};
            report_fault(stdout, REPORT_TEXT, &t, f, cs);
            printed = true;
        }
        m++;
    }
    exclog_stats st = exclog_reader_stats(r);
    printf("log: %" PRIu64 " records, %" PRIu64 " page faults, %zu of the program, %" PRIu64 " bytes\n", st.records,
           st.page_faults, m, st.bytes);
    free(f);
    exclog_close(r);
    return m;
}

/* exclog_capture: one stop for the CR3, then the log alone, until the
 * program's mm is torn down. */
#define LOG_COUNT MAX_FAULTS
static touch_fault via_log[LOG_COUNT];
static size_t nvia;

static int collect(void *ctx, const cap_fault *f)
{
    (void)ctx;
    CHECK(nvia < LOG_COUNT && touch_from_fault(f, &via_log[nvia]) == 0);
    CHECK(f->st[CAP_ST_ENTRY].hit && f->task.pid == 0); /* current: not available from the log */
    nvia++;
    return 0;
}

static void test_capture_api(const touch_prog *tp, kern *k, const char *kernel_path)
{
    guest g;
    fl_error err = {0};
    unsigned got = 0;
    int rc = touch_boot(&g, tp, PAGES, true, false, &err);
    if (rc == 0)
        rc = touch_to_announcement(&g, &err);
    if (rc == 0)
        rc = touch_session(&g, k, &err);
    if (rc == 0)
        rc = vm_console_write(g.v, "go\n", &err);
    exclog_capture_options o = {.log_path = g.v ? vm_exception_log(g.v) : NULL, .count = 0, .timeout_ms = 60000};
    double t0 = fl_now_s();
    if (rc == 0)
        rc = exclog_capture(g.cs, k, g.t, &o, collect, NULL, &got, &err);
    CHECK(rc == 0);
    if (rc != 0)
        fprintf(stderr, "exclog_capture: %s\n", err.msg);
    CHECK(got == nvia && got >= PAGES);
    /* It ended at the program's end (exit_mmap of its mm), not on the
     * timeout, with the guest stopped there. */
    CHECK(fl_now_s() - t0 < 50);
    uint64_t rip = 0, exit_mmap = guest_symbol(kernel_path, "exit_mmap");
    CHECK(g.t && tgt_reg_read(g.t, "rip", &rip, &err) == 0);
    CHECK_EQ_U64(rip, exit_mmap);
    /* The program's pages come one after the other, each a write to a page
     * not present, from user mode; every fault is in one address space. */
    size_t first = 0;
    while (first < nvia && !touch_in_range(via_log[first].cr2, PAGES))
        first++;
    printf("exclog_capture: %u faults, %zu before the program's pages\n", got, first);
    CHECK(first < nvia);
    size_t last = first;
    while (last < nvia && touch_in_range(via_log[last].cr2, PAGES))
        last++;
    CHECK_EQ_U64(last - first, PAGES);
    printf("after the last page: %zu faults (the program's exit)\n", nvia - last);
    CHECK(nvia - last <= 3);
    for (size_t i = first; i < last; i++) {
        CHECK_EQ_U64(via_log[i].cr2, TOUCH_BASE + (i - first) * 4096 + TOUCH_OFF);
        CHECK_EQ_U64(via_log[i].error_code, 6);
        CHECK_EQ_U64(via_log[i].cs, 0x33);
    }
    for (size_t i = 0; i < nvia; i++)
        CHECK_EQ_U64(exclog_cr3_space(via_log[i].cr3), exclog_cr3_space(via_log[0].cr3));
    guest_stop(&g);
}

int main(void)
{
    const char *kernel = guest_kernel(), *initrd = guest_initrd();
    if (!kernel || !initrd) {
        printf("SKIP: no guest (run 'make vm')\n");
        return 77;
    }
    touch_prog tp;
    char why[256];
    if (touch_build(&tp, why, sizeof why) < 0) {
        printf("SKIP: %s\n", why);
        touch_cleanup(&tp);
        return 77;
    }
    guest g;
    fl_error err = {0};
    kern *k = NULL;
    int rc = touch_boot(&g, &tp, PAGES, true, false, &err);
    if (rc == 0)
        rc = touch_to_announcement(&g, &err);
    if (rc == 0)
        rc = kern_open(&k, kernel, NULL, &err);
    if (rc == 0)
        rc = touch_session(&g, k, &err);
    if (rc == 0)
        rc = vm_console_write(g.v, "go\n", &err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        goto out;
    }
    CHECK(vm_exception_log(g.v) != NULL);
    size_t n = capture_all(&g, &err);
    size_t in_range = 0;
    for (size_t i = 0; i < n; i++)
        in_range += touch_in_range(bp[i].cr2, PAGES);
    printf("breakpoint path: %zu faults of the program, %zu on its pages%s%s\n", n, in_range, err.msg[0] ? ": " : "",
           err.msg);
    CHECK_EQ_U64(in_range, PAGES);
    /* Let the program finish without the debugger, and QEMU exit. */
    tgt_close(g.t);
    g.t = NULL;
    char line[256];
    CHECK(vm_console_wait_prefix(g.v, VM_DONE_PREFIX, line, sizeof line, 60000, &err) == 0);
    CHECK(strstr(line, "status=0") != NULL);
    int status;
    CHECK(vm_wait_exit(g.v, 20000, &status, &err) == 0);

    size_t m = n ? read_log(vm_exception_log(g.v), bp[0].cr3, g.cs, &err) : 0;
    /* The log has every fault with this CR3; the capture starts at the
     * program's first one after exec set its comm. Before it the log may
     * hold faults of an earlier process whose page-table page (so its CR3)
     * the kernel gave to this one after it exited: align on the first
     * captured fault. */
    size_t j = 0;
    while (j < m && !(lg[j].cr2 == bp[0].cr2 && lg[j].rip == bp[0].rip))
        j++;
    printf("log faults of the program's mm before the first captured one: %zu; after: %zu\n", j, m - j);
    CHECK(j < m);
    CHECK(m - j >= n);
    for (size_t i = 0; i < n && j + i < m; i++)
        check_same(&bp[i], &lg[j + i], i);
    printf("compared %zu faults field by field\n", n);
    test_capture_api(&tp, k, kernel);
out:
    cap_session_close(g.cs);
    g.cs = NULL;
    guest_stop(&g);
    kern_close(k);
    touch_cleanup(&tp);
    return check_summary("itest_exclog");
}
