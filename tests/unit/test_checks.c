/* checks: the relations of the check rows, and rows left out (never passed)
 * when a side was not captured or a bit is not in this kernel. */
#include "check.h"
#include "faultline/checks.h"

#include <stdlib.h>

static const chk_def *row_named(const char *name)
{
    for (size_t i = 0; i < chk_default_count(); i++)
        if (strcmp(chk_default(i)->name, name) == 0)
            return chk_default(i);
    return NULL;
}

int main(void)
{
    /* enum x86_pf_error_code and enum fault_flag of a kernel without
     * FAULT_FLAG_VMA_LOCK (6.1), and target.xml's IF. */
    kern_enumerator pf[] = { { "X86_PF_PROT", 1 }, { "X86_PF_WRITE", 2 }, { "X86_PF_USER", 4 } };
    kern_enumerator ff[] = { { "FAULT_FLAG_WRITE", 1 }, { "FAULT_FLAG_USER", 0x40 } };
    decode_bits pfb, ffb, rf = { (decode_bit[]){ { "IF", 0x200 } }, 1 };
    CHECK(decode_bits_from_enum(pf, 3, &pfb) == 0 && decode_bits_from_enum(ff, 2, &ffb) == 0);
    chk_env env = { .bits = { [STATION_DEC_PF_ERROR] = &pfb, [STATION_DEC_FAULT_FLAG] = &ffb,
                              [STATION_DEC_EFLAGS] = &rf } };
    chk_result r;
    chk_side none = { 0 };

    /* every default row names its claim (or builds it) and two sides */
    for (size_t i = 0; i < chk_default_count(); i++) {
        const chk_def *d = chk_default(i);
        CHECK(d->name && d->actual[0].value);
        CHECK(!chk_needs_expected(d) || d->expected[0].value);
    }

    const chk_def *eq = row_named("address-mm-fault");
    CHECK(eq && eq->relation == CHK_EQUAL);
    chk_side cr2 = { true, 0x7f0000000100, NULL, "cr2" }, addr = { true, 0x7f0000000100, NULL, "address" };
    CHECK(chk_evaluate(eq, &cr2, &addr, &env, &r) && r.ok);
    CHECK(strcmp(r.expected, "0x7f0000000100") == 0 && strcmp(r.actual, "0x7f0000000100") == 0);
    addr.value++;
    CHECK(chk_evaluate(eq, &cr2, &addr, &env, &r) && !r.ok);
    /* a side not captured: left out, never passed */
    CHECK(!chk_evaluate(eq, &none, &addr, &env, &r));
    CHECK(!chk_evaluate(eq, &cr2, &none, &env, &r));

    const chk_def *page = row_named("vmf-address-page");
    chk_side vmf = { true, 0x7f0000000000, NULL, "vmf->address" };
    CHECK(page && chk_evaluate(page, &cr2, &vmf, &env, &r) && r.ok && strcmp(r.expected, "0x7f0000000000") == 0);
    vmf.value = 0x7f0000000100; /* not the page: the address itself */
    CHECK(chk_evaluate(page, &cr2, &vmf, &env, &r) && !r.ok);

    const chk_def *w = row_named("write-bit-agrees");
    chk_side ecode = { true, 6, NULL, "frame.error_code" }, flags = { true, 0x41, NULL, "flags" };
    CHECK(w && chk_evaluate(w, &ecode, &flags, &env, &r) && r.ok);
    CHECK(strcmp(r.actual, "FAULT_FLAG_WRITE set (X86_PF_WRITE set)") == 0);
    flags.value = 0x40;
    CHECK(chk_evaluate(w, &ecode, &flags, &env, &r) && !r.ok);

    const chk_def *cpl = row_named("cpl-agrees-user-bit");
    chk_side cs = { true, 0x33, NULL, "regs->cs" };
    CHECK(cpl && chk_evaluate(cpl, &ecode, &cs, &env, &r) && r.ok && strcmp(r.actual, "RPL 3 (cs 0x33)") == 0);
    cs.value = 0x10;
    CHECK(chk_evaluate(cpl, &ecode, &cs, &env, &r) && !r.ok);

    const chk_def *ifc = row_named("if-cleared-by-gate");
    chk_side ef = { true, 0x46, NULL, "eflags" };
    CHECK(ifc && chk_evaluate(ifc, &none, &ef, &env, &r) && r.ok && strcmp(r.actual, "IF clear (eflags 0x46)") == 0);
    ef.value = 0x246;
    CHECK(chk_evaluate(ifc, &none, &ef, &env, &r) && !r.ok);

    const chk_def *sum = row_named("fault-flags-sum");
    chk_side ff1255 = { true, 0x1255, NULL, "flags" };
    /* 0x1000 (FAULT_FLAG_VMA_LOCK) has no name in this kernel's enum: the sum fails, naming both */
    CHECK(sum && chk_evaluate(sum, &none, &ff1255, &env, &r) && !r.ok);
    ff1255.value = 0x41;
    CHECK(chk_evaluate(sum, &none, &ff1255, &env, &r) && r.ok);

    /* a row whose bit this kernel lacks is left out */
    chk_def vma_lock = { .name = "vma-lock", .claim = "the per-VMA lock was used",
                         .expected = { { "x", "y" } }, .actual = { { "x", "z" } },
                         .relation = CHK_BIT_AGREES, .bits = { "X86_PF_USER", "FAULT_FLAG_VMA_LOCK" } };
    CHECK(!chk_evaluate(&vma_lock, &ecode, &flags, &env, &r));

    /* the scenario's promise */
    const chk_def *sc = row_named("scenario-access");
    chk_side have = { true, 0, NULL, "scenario" };
    CHECK(sc && !chk_evaluate(sc, &have, &ecode, &env, &r)); /* no scenario: left out */
    env.scenario = scenario_find("kernel-write");
    CHECK(env.scenario && !env.scenario->user && env.scenario->write);
    CHECK(chk_evaluate(sc, &have, &ecode, &env, &r) && !r.ok);
    CHECK(strcmp(r.claim, "scenario kernel-write: a write access from kernel mode") == 0);
    ecode.value = 2;
    CHECK(chk_evaluate(sc, &have, &ecode, &env, &r) && r.ok);

    const chk_def *path = row_named("scenario-path");
    chk_side want = { true, 0, "skips lock_vma_under_rcu", NULL }, got = { true, 0, "skips none", NULL };
    CHECK(path && chk_evaluate(path, &want, &got, &env, &r) && !r.ok);
    got.text = "skips lock_vma_under_rcu";
    CHECK(chk_evaluate(path, &want, &got, &env, &r) && r.ok);

    const chk_def *pid = row_named("current-is-trigger");
    chk_side fpid = { true, 31, NULL, NULL }, cpid = { true, 31, "fl-write", NULL };
    CHECK(pid && chk_evaluate(pid, &fpid, &cpid, &env, &r) && r.ok && strcmp(r.actual, "31 (fl-write)") == 0);

    CHECK(scenario_find("nope") == NULL && scenario_find(NULL) == NULL);
    decode_bits_free(&pfb);
    decode_bits_free(&ffb);
    return check_summary("test_checks");
}
