/* report: formats of a synthetic capture (JSON escaping, the per-bit proof
 * of the worksheet, checks in every format). */
#include "check.h"
#include "faultline/report.h"

#include <stdlib.h>

static char *render(enum report_format fmt, const report_trigger *t, const cap_fault *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    report_meta m = { .kernel = "linux \"6.12\"\ttest", .qemu = "QEMU 7.2", .accel = "tcg", .vmlinux = "/v",
                      .gdb = "unix:/x", .boot_seconds = 1.25 };
    report_begin(o, fmt, &m);
    report_fault(o, fmt, t, f, NULL);
    report_summary s = { .faults = 1, .checks = (unsigned)f->nchecks, .failed = 1, .passed_over = 2,
                         .seconds = 2.5, .error = NULL };
    report_end(o, fmt, &s);
    fclose(o);
    return buf;
}

/* kf_alpha's address in build/fixtures/kfix, as nm reads it (0: none). */
static uint64_t kf_alpha(void)
{
    FILE *p = popen("nm build/fixtures/kfix 2>/dev/null", "r");
    char line[256];
    unsigned long long a = 0, v;
    char type, name[128];
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "%llx %c %127s", &v, &type, name) == 3 && strcmp(name, "kf_alpha") == 0)
            a = v;
    if (p)
        pclose(p);
    return a;
}

/* run -- PROGRAM: the trigger names argv (no page, no target) and the
 * function of the program; the table's rows; the summary's program part. */
static void check_program(void)
{
    usersym *syms = NULL;
    uint64_t alpha = kf_alpha();
    if (!alpha || usersym_open(&syms, "build/fixtures/kfix", NULL) < 0) {
        printf("test_report: program checks skipped: build/fixtures/kfix is missing\n");
        return;
    }
    static cap_fault f;
    memset(&f, 0, sizeof f);
    cap_station *e = &f.st[CAP_ST_ENTRY];
    e->enabled = e->hit = true;
    e->nvalues = 2;
    e->values[0] = (cap_value){ .name = "cr2", .value = 0x7e0000003010ull };
    e->values[1] = (cap_value){ .name = "frame.error_code", .value = 6, .decoded = "X86_PF_WRITE|X86_PF_USER" };
    f.fault_ip = alpha + 0x5;
    snprintf(f.user_insn, sizeof f.user_insn, "mov byte ptr [rdx], al");
    f.task.pid = 44;
    const char *argv[] = { "/x/faulty", "a|b" };
    report_trigger t = { .have = true, .scenario = "program", .pid = 44, .comm = "faulty", .argv = argv, .argc = 2,
                         .syms = syms };
    char *j = render(REPORT_JSON, &t, &f);
    CHECK(strstr(j, "{\"type\":\"trigger\",\"scenario\":\"program\",\"pid\":44,\"comm\":\"faulty\","
                    "\"argv\":[\"/x/faulty\",\"a|b\"],\"instruction\":") != NULL);
    CHECK(strstr(j, "\"symbol\":\"kf_alpha+0x5\"}") != NULL);
    CHECK(strstr(j, "\"page\"") == NULL && strstr(j, "\"target\"") == NULL);
    free(j);
    char *x = render(REPORT_TEXT, &t, &f);
    CHECK(strstr(x, "trigger: program /x/faulty a|b, pid 44 (faulty)\n") != NULL);
    CHECK(strstr(x, ": mov byte ptr [rdx], al, in kf_alpha+0x5\n") != NULL);
    free(x);
    f.fault_ip = 0xffffffff811ad380ull; /* a kernel-mode instruction: no symbol of the program */
    j = render(REPORT_JSON, &t, &f);
    CHECK(strstr(j, "\"symbol\":null}") != NULL);
    free(j);
    f.fault_ip = alpha + 0x5;

    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    out_fault of = { 0 };
    snprintf(of.classification, sizeof of.classification, "anonymous first write");
    report_table_head(o, REPORT_TEXT);
    report_table_row(o, REPORT_TEXT, 1, &t, &f, &of);
    report_table_row(o, REPORT_TEXT, 2, &t, &f, NULL);
    report_table_head(o, REPORT_MD);
    report_table_row(o, REPORT_MD, 3, &t, &f, &of);
    report_summary s = { .faults = 2, .program = true, .program_faults = 30, .matched = 3, .exited = true };
    report_end(o, REPORT_TEXT, &s);
    report_end(o, REPORT_JSON, &s);
    s.exited = false;
    report_end(o, REPORT_JSON, &s);
    fclose(o);
    CHECK(strstr(buf, "   1 44      0x7e0000003010     0x6 X86_PF_WRITE|X86_PF_USER             0x") != NULL);
    CHECK(strstr(buf, " kf_alpha+0x5                     mov byte ptr [rdx], al                   anonymous first write\n"));
    CHECK(strstr(buf, "kf_alpha+0x5                     mov byte ptr [rdx], al\n") != NULL); /* no outcome */
    CHECK(strstr(buf, "| 3 | 44 | `0x7e0000003010` | `0x6 X86_PF_WRITE\\|X86_PF_USER` | `0x") != NULL);
    CHECK(strstr(buf, "| `kf_alpha+0x5` | `mov byte ptr [rdx], al` | anonymous first write |\n") != NULL);
    CHECK(strstr(buf, "program: 30 faults taken while captured, 3 matched the filters, 2 captured, exit status 0\n"));
    CHECK(strstr(buf, "\"program\":{\"faults\":30,\"matched\":3,\"captured\":2,\"exit_status\":0}}") != NULL);
    CHECK(strstr(buf, "\"exit_status\":null}}") != NULL);
    free(buf);
    usersym_close(syms);
}

int main(void)
{
    enum report_format fmt;
    CHECK(report_parse_format("json", &fmt) == 0 && fmt == REPORT_JSON);
    CHECK(report_parse_format("md", &fmt) == 0 && fmt == REPORT_MD);
    CHECK(report_parse_format("text", &fmt) == 0 && fmt == REPORT_TEXT);
    CHECK(report_parse_format("xml", &fmt) == -1);

    static cap_fault f; /* large: keep it off the stack */
    f.st[CAP_ST_EXC].enabled = f.st[CAP_ST_EXC].hit = true;
    f.st[CAP_ST_EXC].pc = 0xffffffff811b0ef8ull;
    snprintf(f.st[CAP_ST_EXC].location, sizeof f.st[0].location, "arch/x86/mm/fault.c:1481");
    snprintf(f.st[CAP_ST_EXC].source, sizeof f.st[0].source, "unsigned long address = read_cr2();");
    f.st[CAP_ST_EXC].nvalues = 1;
    snprintf(f.st[CAP_ST_EXC].values[0].name, 48, "regs->cs");
    f.st[CAP_ST_EXC].values[0].value = 0x33;
    snprintf(f.st[CAP_ST_EXC].values[0].decoded, 192, "A|B quote \" back\\slash");
    f.st[CAP_ST_LOCK_VMA].enabled = true;
    snprintf(f.st[CAP_ST_LOCK_VMA].note, 192, "not reached: kernel-mode fault");
    snprintf(f.st[CAP_ST_LOCK_VMA].kprobe, sizeof f.st[0].kprobe, "allowed");
    f.st[CAP_ST_EXC].kprobe_refused = true;
    snprintf(f.st[CAP_ST_EXC].kprobe, sizeof f.st[0].kprobe, "in .noinstr.text (marked noinstr)");
    f.nchecks = 2;
    f.checks[0] = (cap_check){ "cr2-matches-target", "CR2 is the target", "0x1", "0x1", true };
    f.checks[1] = (cap_check){ "pt-regs-ip", "ip is rip", "0x2", "0x3", false };
    f.task.pid = 27;
    snprintf(f.task.comm, sizeof f.task.comm, "fl-write");
    report_trigger t = { .have = true, .scenario = "write", .pid = 27, .comm = "fl-write", .page = 0x7f0000000000ull,
                         .target = 0x7f0000000100ull };

    char *j = render(REPORT_JSON, &t, &f);
    CHECK(strstr(j, "{\"type\":\"vm\",\"kernel\":\"linux \\\"6.12\\\"\\ttest\"") != NULL);
    CHECK(strstr(j, "{\"type\":\"trigger\",\"scenario\":\"write\",\"pid\":27") != NULL);
    CHECK(strstr(j, "\"target\":\"0x7f0000000100\"") != NULL);
    CHECK(strstr(j, "\"regs->cs\":{\"value\":\"0x33\",\"decoded\":\"A|B quote \\\" back\\\\slash\"}") != NULL);
    CHECK(strstr(j, "\"function\":\"lock_vma_under_rcu\",\"hit\":false,\"kprobe_refused\":false,\"kprobe\":\"allowed\","
                    "\"note\":\"not reached: kernel-mode fault\"") != NULL);
    CHECK(strstr(j, "\"function\":\"exc_page_fault\",\"hit\":true,\"kprobe_refused\":true,"
                    "\"kprobe\":\"in .noinstr.text (marked noinstr)\"") != NULL);
    CHECK(strstr(j, "{\"type\":\"check\",\"name\":\"pt-regs-ip\",\"ok\":false") != NULL);
    CHECK(strstr(j, "{\"type\":\"summary\",\"faults\":1,\"checks\":2,\"failed\":1,\"passed_over\":2") != NULL);
    CHECK(strstr(j, "\"error\":null}") != NULL);
    /* one record per line, each an object */
    int lines = 0;
    for (char *p = j; *p; p++)
        lines += *p == '\n';
    CHECK(lines == 1 + 1 + 2 + 2 + 1); /* vm, trigger, 2 probes, 2 checks, summary */
    free(j);

    char *m = render(REPORT_MD, &t, &f);
    CHECK(strstr(m, "# SESSION WORKSHEET") != NULL);
    CHECK(strstr(m, "`arch/x86/mm/fault.c:1481`") == NULL && strstr(m, "arch/x86/mm/fault.c:1481") != NULL);
    CHECK(strstr(m, "| ✗ | `pt-regs-ip` | ip is rip | `0x2` | `0x3` |") != NULL);
    CHECK(strstr(m, "| ✓ | `cr2-matches-target`") != NULL);
    /* a '|' in a decoded value must not split the table's cell */
    CHECK(strstr(m, "| `regs->cs` | `0x33` | A\\|B quote \" back\\slash |") != NULL);
    CHECK(strstr(m, "Target VA**: `0x7f0000000100` (page + `0x100`)") != NULL);
    free(m);

    char *x = render(REPORT_TEXT, &t, &f);
    CHECK(strstr(x, "trigger: scenario write, pid 27 (fl-write)") != NULL);
    CHECK(strstr(x, "checks (2, 1 failed)") != NULL);
    CHECK(strstr(x, "lock_vma_under_rcu: not reached: kernel-mode fault") != NULL);
    CHECK(strstr(x, "kprobes: refused, in .noinstr.text (marked noinstr)") != NULL);
    CHECK(strstr(x, "summary: 1 fault captured, 2 checks, 1 failed, 2 other faults passed over") != NULL);
    free(x);

    /* Source text is never rewritten outside tables: '|' stays '|', and a
     * backtick gets a longer code fence. Bytes that are not UTF-8 become '?'
     * in JSON (jansson refuses them) instead of losing the record. A station
     * the kernel lacks says so in every format. */
    snprintf(f.st[CAP_ST_EXC].source, sizeof f.st[0].source, "if (a || b) x = `y`; \xe9");
    f.st[CAP_ST_PTE_FAULT].enabled = f.st[CAP_ST_PTE_FAULT].absent = true;
    snprintf(f.st[CAP_ST_PTE_FAULT].note, 192, "not in this kernel: no handle_pte_fault");
    m = render(REPORT_MD, &t, &f);
    CHECK(strstr(m, "* **Source**: `` if (a || b) x = `y`; \xe9 ``") != NULL);
    CHECK(strstr(m, "## 7. Probe 3: the PTE level (struct vm_fault): `handle_pte_fault`\n\n* **Status**: not in this kernel") !=
          NULL);
    free(m);
    j = render(REPORT_JSON, &t, &f);
    CHECK(strstr(j, "\"source\":\"if (a || b) x = `y`; ?\"") != NULL);
    CHECK(strstr(j, "\"function\":\"handle_pte_fault\",\"status\":\"not in this kernel\",\"hit\":false") != NULL);
    free(j);
    x = render(REPORT_TEXT, &t, &f);
    CHECK(strstr(x, "      | if (a || b) x = `y`;") != NULL);
    CHECK(strstr(x, "[6] handle_pte_fault: not in this kernel") != NULL);
    free(x);
    check_program();
    return check_summary("test_report");
}
