/* outcome: the classification and the checks from readings alone (walks
 * built with pagewalk over a fake physical memory, hits, signal, fixup),
 * including the cases where a check must fail; and the three renderings. */
#include "check.h"
#include "faultline/outcome.h"

#include <stdlib.h>

#define PF_W 0x2
#define PF_U 0x4
#define PF_I 0x10
#define VA 0x7f0000000100ull
#define ZERO_PAGE 0x1769000ull

/* One PTE behind present upper levels (tables at 0x2000.., CR3 0x1000). */
static uint64_t pte_value;
static int rd(void *ctx, uint64_t paddr, uint64_t *value, fl_error *err)
{
    (void)ctx;
    (void)err;
    *value = paddr >= 0x4000 ? pte_value : ((paddr & ~0xfffull) + 0x1000) | PW_P | PW_RW | PW_US | PW_A;
    return 0;
}

static pw_walk walk(uint64_t pte)
{
    pw_walk w;
    pte_value = pte;
    CHECK(pw_walk_va(rd, NULL, 0x1000, 0, PW_EFER_NXE, VA, &w, NULL) == 0);
    return w;
}

static void hit(out_fault *o, const char *fn)
{
    snprintf(o->hits[o->nhits++].function, sizeof o->hits[0].function, "%s", fn);
}

static const cap_check *find(const out_fault *o, const char *name)
{
    for (size_t i = 0; i < o->nchecks; i++)
        if (!strcmp(o->checks[i].name, name))
            return &o->checks[i];
    return NULL;
}

static void base(out_fault *o, uint64_t ec, uint64_t before_pte, uint64_t after_pte)
{
    memset(o, 0, sizeof *o);
    o->cr2 = VA;
    o->error_code = ec;
    o->fault_ip = 0x401954;
    o->pid = 31;
    o->before = walk(before_pte);
    o->after = walk(after_pte);
    o->have_before = o->have_after = true;
    pw_diff_walks(&o->before, &o->after, &o->diff);
    o->zero_page = ZERO_PAGE;
}

int main(void)
{
    static out_fault o;
    const cap_check *c;

    /* First write to an anonymous page. */
    base(&o, PF_W | PF_U, 0, 0x15d3000 | PW_P | PW_RW | PW_US | PW_A | PW_D | PW_NX);
    hit(&o, "do_anonymous_page");
    o.reran_checked = o.reran = true;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "anonymous first write: zero-filled page 0x15d3000 mapped RW");
    CHECK_STR(o.resolver, "do_anonymous_page");
    CHECK_EQ_U64(o.nchecks, 3);
    CHECK_EQ_U64(out_checks_failed(&o), 0);
    /* The same with a PTE that is not writable: the access is not granted. */
    base(&o, PF_W | PF_U, 0, 0x15d3000 | PW_P | PW_US | PW_A);
    hit(&o, "do_anonymous_page");
    o.reran_checked = true;
    o.reran = o.second_fault = true;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK((c = find(&o, "pte-grants-access")) && !c->ok);
    CHECK((c = find(&o, "reran-without-fault")) && !c->ok);
    CHECK_EQ_U64(out_checks_failed(&o), 2);

    /* First read: the zero page, read-only. An instruction fetch needs not-NX. */
    base(&o, PF_U, 0, ZERO_PAGE | PW_P | PW_US | PW_A | PW_NX);
    hit(&o, "do_anonymous_page");
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "anonymous first read: the shared zero page 0x1769000 mapped read-only");
    CHECK_EQ_U64(out_checks_failed(&o), 0);
    base(&o, PF_I | PF_U, 0, ZERO_PAGE | PW_P | PW_US | PW_A | PW_NX);
    hit(&o, "do_anonymous_page");
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK((c = find(&o, "pte-grants-access")) && !c->ok); /* NX: the fetch is not granted */

    /* COW: new frame; the parent keeps the old one (and a parent that does
     * not is a failed check). */
    base(&o, PF_W | PF_U | PW_P, 0x1111000 | PW_P | PW_US | PW_A, 0x2222000 | PW_P | PW_RW | PW_US | PW_A | PW_D);
    hit(&o, "do_wp_page");
    hit(&o, "wp_page_copy");
    o.have_parent = true;
    o.parent = walk(0x1111000 | PW_P | PW_US | PW_A);
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "COW: page 0x1111000 copied to 0x2222000, mapped RW");
    CHECK_STR(o.resolver, "wp_page_copy");
    CHECK((c = find(&o, "cow-new-frame")) && c->ok);
    CHECK((c = find(&o, "cow-parent-keeps-old")) && c->ok);
    o.parent = walk(0x2222000 | PW_P | PW_US | PW_A);
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK((c = find(&o, "cow-parent-keeps-old")) && !c->ok);

    /* File read. */
    base(&o, PF_U, 0, 0x60a000 | PW_P | PW_US | PW_A | PW_NX);
    hit(&o, "do_read_fault");
    o.vma.have = true;
    snprintf(o.vma.file, sizeof o.vma.file, "/bin/fl-trigger");
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "file read: page-cache page 0x60a000 of /bin/fl-trigger mapped read-only");

    /* SIGSEGV for a write to a read-only mapping: PTE unchanged, queued, delivered. */
    base(&o, PF_W | PF_U, 0, 0);
    hit(&o, "bad_area_access_error");
    hit(&o, "__bad_area");
    hit(&o, "force_sig_fault");
    o.have_signal = o.signal_known = true;
    o.signal = 11;
    o.sig_code = 2;
    o.sig_addr = VA;
    o.signal_pending = o.pending_known = true;
    o.handler_ip = 0x4017df;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "SIGSEGV (SEGV_ACCERR): write to a read-only mapping");
    CHECK_STR(o.resolver, "bad_area_access_error");
    CHECK_EQ_U64(o.nchecks, 4);
    CHECK_EQ_U64(out_checks_failed(&o), 0);
    /* A signal whose PTE changed, not pending, wrong sig_addr: three failures. */
    o.after = walk(0x5000 | PW_P | PW_US);
    pw_diff_walks(&o.before, &o.after, &o.diff);
    o.signal_pending = false;
    o.sig_addr = 0;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_EQ_U64(out_checks_failed(&o), 3);
    /* force_sig_fault seen (in a fast trace) but its parameters unknown:
     * said so, and the checks that need them are left out. */
    o.signal_known = false;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK(strncmp(o.classification, "a signal for a write of 0x7f0000000100 (force_sig_fault ran", 59) == 0);
    CHECK(find(&o, "si-addr-is-cr2") == NULL);
    /* MAPERR at 0. */
    base(&o, PF_U, 0, 0);
    o.cr2 = 0;
    hit(&o, "bad_area_nosemaphore");
    o.have_signal = o.signal_known = true;
    o.signal = 11;
    o.sig_code = 1;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.classification, "SIGSEGV (SEGV_MAPERR): read of 0x0, which no VMA covers");

    /* The kernel's fixup. */
    base(&o, PF_W, 0, 0);
    hit(&o, "bad_area_nosemaphore");
    hit(&o, "fixup_exception");
    o.fixed_up = true;
    o.fault_ip = 0xffffffff811ad683ull;
    o.fixup_ip = 0xffffffff811ad663ull;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK(strncmp(o.classification, "kernel access to a bad user address fixed up", 44) == 0);
    CHECK_STR(o.resolver, "fixup_exception");
    CHECK((c = find(&o, "fixup-moved-ip")) && c->ok);

    /* Stack growth and nothing at all. */
    base(&o, PF_W | PF_U, 0, 0x3000 | PW_P | PW_RW | PW_US | PW_A | PW_D);
    hit(&o, "expand_downwards");
    hit(&o, "do_anonymous_page");
    o.vma.grew = true;
    o.vma.start_before = 0x7fff0000;
    o.vma.start = 0x7ffef000;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK(strncmp(o.classification, "stack grown from 0x7fff0000 to 0x7ffef000; anonymous first write", 64) == 0);
    base(&o, PF_U, 0, 0);
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_STR(o.resolver, "");
    CHECK_STR(o.classification, "unresolved: no candidate fired and nothing is mapped");
    /* No "after" walk: no checks at all (never passed by default). */
    o.have_after = false;
    out_judge(&o, PF_W, PF_U, PF_I);
    CHECK_EQ_U64(o.nchecks, 0);

    /* Renderings: the classification in each; JSON with its fields. */
    base(&o, PF_W | PF_U, 0, 0x15d3000 | PW_P | PW_RW | PW_US | PW_A | PW_D | PW_NX);
    hit(&o, "do_anonymous_page");
    out_judge(&o, PF_W, PF_U, PF_I);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(out_render(&o, "text", m, NULL) == 0);
    CHECK(out_render(&o, "md", m, NULL) == 0);
    fl_error err;
    CHECK(out_render(&o, "xml", m, &err) == -1 && err.code == FL_EUSAGE);
    fclose(m);
    CHECK(strstr(buf, "outcome: anonymous first write") != NULL);
    CHECK(strstr(buf, "**anonymous first write") != NULL);
    CHECK(strstr(buf, "| PTE |") != NULL);
    free(buf);
    json_t *j = out_to_json(&o);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "resolver")), "do_anonymous_page");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "after"), "frame")), "0x15d3000");
    CHECK(json_is_false(json_object_get(json_object_get(j, "before"), "mapped")));
    CHECK_EQ_U64(json_array_size(json_object_get(j, "checks")), 2);
    json_decref(j);
    return check_summary("test_outcome");
}
