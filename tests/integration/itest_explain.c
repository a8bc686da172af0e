/* The explain view on the real guest (TCG): the write and read scenarios
 * single-stepped from asm_exc_page_fault back to user mode with
 * trace_options.explain, and the narrative of do_user_addr_fault checked
 * against the live values: flags 0x214 -> 0x215 -> 0x255 (write),
 * handle_mm_fault called with flags 0x1255, lock_vma_under_rcu(mm, address)
 * with mm = current->mm and address = CR2, its return handed on as
 * handle_mm_fault's vma; in the read scenario the X86_PF_WRITE test is not
 * taken and flags never gains FAULT_FLAG_WRITE. FL_EXPLAIN_DUMP=DIR keeps
 * the text, md and json outputs. */
#include "check.h"
#include "qemu_guest.h"
#include "faultline/capture.h"
#include "faultline/explain.h"
#include "faultline/kernel.h"
#include "faultline/trace.h"

#include <signal.h>
#include <stdlib.h>

static trace_result *explained_boot(kern *k, const char *kernel, const char *initrd, const char *scenario,
                                    cap_fault *f)
{
    guest g;
    fl_error err = { 0 };
    trace_result *r = NULL;
    char append[128];
    snprintf(append, sizeof append, "faultline.scenario=%s norandmaps", scenario);
    int ok = guest_to_fault(&g, k, kernel, initrd, append, 1u << CAP_ST_ENTRY, f, &err) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s: setup failed: %s\n", scenario, err.msg);
    trace_options o = { .mode = TRACE_SINGLE, .timeout_ms = 120000, .explain = true };
    if (ok) {
        int rc = trace_run(g.t, k, &o, &r, &err);
        CHECK(rc == 0);
        if (rc < 0)
            fprintf(stderr, "%s: trace failed: %s\n", scenario, err.msg);
        if (r)
            fprintf(stderr, "%s: %zu steps, %.2f s (%.0f steps/s), %zu variable changes, %zu calls, %zu checks\n",
                    scenario, r->nsteps, r->seconds, r->seconds > 0 ? r->nsteps / r->seconds : 0.0, r->nvars,
                    r->nfcalls, r->nchecks);
    }
    pid_t pid = g.v ? vm_pid(g.v) : 0;
    guest_stop(&g);
    CHECK(pid == 0 || kill(pid, 0) == -1);
    return r;
}

static char *render(const trace_result *r, enum trace_format fmt, enum trace_view view, const char *dump,
                    const char *name)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(m && trace_report(m, fmt, view, r) == 0);
    if (m)
        fclose(m);
    if (dump && buf) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dump, name);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(buf, f);
            fclose(f);
        }
    }
    return buf;
}

/* The values `flags` of do_user_addr_fault took, in order (available ones). */
static size_t flags_values(const trace_result *r, uint64_t *v, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nvars && n < cap; i++)
        if (strcmp(r->vars[i].function, "do_user_addr_fault") == 0 && strcmp(r->vars[i].v.name, "flags") == 0 &&
            r->vars[i].v.available)
            v[n++] = r->vars[i].v.value;
    return n;
}

static const trace_fcall *call_of(const trace_result *r, const char *fn)
{
    for (size_t i = 0; i < r->nfcalls; i++)
        if (!r->fcalls[i].inlined && strcmp(r->fcalls[i].function, fn) == 0)
            return &r->fcalls[i];
    return NULL;
}

static const trace_value *arg(const trace_result *r, const trace_fcall *c, const char *name)
{
    for (size_t i = 0; c && i < c->nargs; i++)
        if (strcmp(r->values[c->arg + i].name, name) == 0)
            return &r->values[c->arg + i];
    return NULL;
}

/* The branch at the end of the first line entry whose source contains s. */
static int branch_after(const trace_result *r, const char *function, const char *s, int *to_line)
{
    trace_line *l = NULL;
    size_t nl = 0;
    int taken = -1;
    CHECK(trace_lines(r, &l, &nl) == 0);
    for (size_t e = 0; e < nl && taken < 0; e++) {
        const trace_pc *p = &r->pcs[l[e].pc];
        size_t last = l[e].first + l[e].count - 1;
        const trace_pc *q = &r->pcs[r->steps[last].pc];
        if (!p->source || !strstr(p->source, s) || strcmp(p->function, function) != 0 || q->kind != TRACE_K_JCC ||
            last + 1 >= r->nsteps)
            continue;
        const trace_pc *n = &r->pcs[r->steps[last + 1].pc];
        taken = n->pc != q->pc + q->len;
        *to_line = n->line;
    }
    free(l);
    return taken;
}

static void checks_pass(const trace_result *r, size_t at_least)
{
    CHECK(r->nchecks >= at_least);
    for (size_t i = 0; i < r->nchecks; i++) {
        CHECK(r->checks[i].pass);
        fprintf(stderr, "check %s %s: %s (expected %s, actual %s)\n", r->checks[i].pass ? "PASS" : "FAIL",
                r->checks[i].name, r->checks[i].claim, r->checks[i].expected, r->checks[i].actual);
    }
}

static void write_scenario(const trace_result *r, const cap_fault *f, const char *dump)
{
    uint64_t v[16];
    size_t n = flags_values(r, v, 16);
    fprintf(stderr, "write: flags in do_user_addr_fault:");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " 0x%llx", (unsigned long long)v[i]);
    fputc('\n', stderr);
    CHECK(n >= 3);
    CHECK_EQ_U64(v[0], 0x214);
    CHECK_EQ_U64(v[1], 0x215);
    CHECK_EQ_U64(v[2], 0x255);
    const trace_fcall *hmf = call_of(r, "handle_mm_fault"), *lock = call_of(r, "lock_vma_under_rcu");
    CHECK(hmf && lock);
    const trace_value *fl = arg(r, hmf, "flags"), *vma = arg(r, hmf, "vma");
    CHECK(fl && fl->available && fl->value == 0x1255);
    CHECK(fl && fl->decoded && strstr(fl->decoded, "FAULT_FLAG_VMA_LOCK") && strstr(fl->decoded, "FAULT_FLAG_WRITE"));
    const trace_value *mm = arg(r, lock, "mm"), *addr = arg(r, lock, "address");
    CHECK(mm && mm->available && mm->value == f->task.mm);
    const cap_value *cr2 = cap_value_get(f, CAP_ST_ENTRY, "cr2");
    CHECK(cr2 && addr && addr->available && addr->value == cr2->value);
    CHECK(lock && lock->has_ret && vma && vma->available && lock->ret.value == vma->value);
    CHECK(lock && lock->has_ret && strcmp(lock->ret.type, "struct vm_area_struct *") == 0);
    /* handle_mm_fault returns vm_fault_t, decoded by enum vm_fault_reason (0: nothing went wrong) */
    CHECK(hmf && hmf->has_ret && strcmp(hmf->ret.type, "vm_fault_t") == 0 && hmf->ret.decoded);
    int to = 0;
    CHECK(branch_after(r, "do_user_addr_fault", "if (user_mode(regs))", &to) >= 0);
    CHECK_EQ_U64((uint64_t)to, 1304);  /* flags |= FAULT_FLAG_USER: the condition held */
    checks_pass(r, 4);
    char *md = render(r, TRACE_FMT_MD, TRACE_VIEW_EXPLAIN, dump, "write.md");
    CHECK(md && strstr(md, "`flags |= FAULT_FLAG_WRITE;`"));
    CHECK(md && strstr(md, "`flags |= FAULT_FLAG_WRITE;`: flags = 0x215 FAULT_FLAG_WRITE|"));
    CHECK(md && strstr(md, "`if (user_mode(regs))`: branch not taken, to arch/x86/mm/fault.c:1304."));
    CHECK(md && strstr(md, "(error_code & (X86_PF_USER | X86_PF_INSTR))"));
    free(md);
    char *txt = render(r, TRACE_FMT_TEXT, TRACE_VIEW_EXPLAIN, dump, "write.txt");
    CHECK(txt && strstr(txt, "calls handle_mm_fault(vma=0x"));
    CHECK(txt && strstr(txt, "flags=0x1255 "));
    free(txt);
    char *js = render(r, TRACE_FMT_JSON, TRACE_VIEW_EXPLAIN, dump, "write.json");
    CHECK(js && strstr(js, "\"vars\":{\"flags\":{\"type\":\"unsigned int\",\"value\":\"0x215\",\"was\":\"0x214\""));
    CHECK(js && strstr(js, "\"type\":\"check\""));
    free(js);
}

static void read_scenario(const trace_result *r, const char *dump)
{
    uint64_t v[16];
    size_t n = flags_values(r, v, 16);
    CHECK(n >= 1);
    for (size_t i = 0; i < n; i++)
        CHECK((v[i] & 1) == 0);  /* FAULT_FLAG_WRITE (checked by name below) */
    const trace_fcall *hmf = call_of(r, "handle_mm_fault");
    const trace_value *fl = arg(r, hmf, "flags");
    CHECK(fl && fl->available && fl->decoded && !strstr(fl->decoded, "FAULT_FLAG_WRITE"));
    /* gcc compiles `if (error_code & X86_PF_WRITE) flags |= FAULT_FLAG_WRITE;`
     * without a jump (the bit is computed and or-ed in), so the line runs
     * in both scenarios: here it must change nothing. */
    size_t runs = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        const trace_pc *p = &r->pcs[r->steps[i].pc];
        runs += p->source && strstr(p->source, "flags |= FAULT_FLAG_WRITE;") &&
                strcmp(p->function, "do_user_addr_fault") == 0;
    }
    CHECK(runs > 0);
    for (size_t i = 0; i < r->nvars; i++) {
        const trace_pc *p = &r->pcs[r->steps[r->vars[i].step].pc];
        CHECK(!(strcmp(r->vars[i].v.name, "flags") == 0 && p->source &&
                strstr(p->source, "flags |= FAULT_FLAG_WRITE;")));
    }
    checks_pass(r, 2);
    free(render(r, TRACE_FMT_MD, TRACE_VIEW_EXPLAIN, dump, "read.md"));
}

int main(void)
{
    const char *kernel, *initrd;
    if (guest_files(&kernel, &initrd) < 0)
        return 1;
    vm_install_cleanup();
    fl_error err = { 0 };
    kern *k = NULL;
    if (kern_open(&k, kernel, NULL, &err) < 0) {
        fprintf(stderr, "kern_open: %s\n", err.msg);
        return 1;
    }
    const char *dump = getenv("FL_EXPLAIN_DUMP");
    static cap_fault fw, fr;
    trace_result *w = explained_boot(k, kernel, initrd, "write", &fw);
    if (w)
        write_scenario(w, &fw, dump);
    trace_result *rd = explained_boot(k, kernel, initrd, "read", &fr);
    if (rd)
        read_scenario(rd, dump);
    trace_result_free(w);
    trace_result_free(rd);
    kern_close(k);
    return check_summary("itest_explain");
}
