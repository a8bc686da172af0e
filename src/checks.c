/* checks: the default claims and the relations. See checks.h. */
#include "faultline/checks.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The x86 base page (Intel SDM vol. 3, 4.5): vmf->address is CR2 rounded down to it. */
#define BASE_PAGE_MASK (~(uint64_t)0xfff)

#define ENTRY "asm_exc_page_fault"
#define EXC "exc_page_fault"
#define USER_FAULT "do_user_addr_fault"
#define LOCK_VMA "lock_vma_under_rcu"
#define MM_FAULT "handle_mm_fault"
#define PTE_FAULT "handle_pte_fault"

/* The error code as the CPU pushed it, else as the C code got it. */
#define ERROR_CODE { { ENTRY, "frame.error_code" }, { EXC, "error_code" }, { USER_FAULT, "error_code" } }
/* The fault flags as handle_mm_fault got them, else as struct vm_fault holds them. */
#define FAULT_FLAGS { { MM_FAULT, "flags" }, { PTE_FAULT, "vmf->flags" } }
#define CR2 { { ENTRY, "cr2" } }
#define ONE(st, v) { { st, v } }
#define DERIVED(v) { { NULL, v } }

static const chk_def defaults[] = {
    { "cr2-matches-target", "CR2 at asm_exc_page_fault is the address the trigger announced",
      DERIVED("filter.addr"), CR2, CHK_EQUAL, { 0 }, 0 },
    { "ea-matches-cr2", "the faulting instruction's effective address is CR2", CR2,
      ONE(ENTRY, "insn.effective_address"), CHK_EQUAL, { 0 }, 0 },
    { "error-code-exc", "exc_page_fault's error_code is the one the CPU pushed", ONE(ENTRY, "frame.error_code"),
      ONE(EXC, "error_code"), CHK_EQUAL, { 0 }, 0 },
    { "error-code-user-fault", "do_user_addr_fault's error_code is the one the CPU pushed",
      ONE(ENTRY, "frame.error_code"), ONE(USER_FAULT, "error_code"), CHK_EQUAL, { 0 }, 0 },
    { "pt-regs-ip", "pt_regs->ip holds the hardware frame's rip", ONE(ENTRY, "frame.rip"), ONE(EXC, "regs->ip"),
      CHK_EQUAL, { 0 }, 0 },
    { "pt-regs-cs", "pt_regs->cs holds the hardware frame's cs", ONE(ENTRY, "frame.cs"), ONE(EXC, "regs->cs"),
      CHK_EQUAL, { 0 }, 0 },
    { "pt-regs-flags", "pt_regs->flags holds the hardware frame's rflags", ONE(ENTRY, "frame.rflags"),
      ONE(EXC, "regs->flags"), CHK_EQUAL, { 0 }, 0 },
    { "pt-regs-sp", "pt_regs->sp holds the hardware frame's rsp", ONE(ENTRY, "frame.rsp"), ONE(EXC, "regs->sp"),
      CHK_EQUAL, { 0 }, 0 },
    { "pt-regs-ss", "pt_regs->ss holds the hardware frame's ss", ONE(ENTRY, "frame.ss"), ONE(EXC, "regs->ss"),
      CHK_EQUAL, { 0 }, 0 },
    { "address-user-fault", "do_user_addr_fault's address is CR2", CR2, ONE(USER_FAULT, "address"), CHK_EQUAL,
      { 0 }, 0 },
    { "address-lock-vma", "lock_vma_under_rcu's address is CR2", CR2, ONE(LOCK_VMA, "address"), CHK_EQUAL, { 0 },
      0 },
    { "address-mm-fault", "handle_mm_fault's address is CR2", CR2, ONE(MM_FAULT, "address"), CHK_EQUAL, { 0 }, 0 },
    { "vmf-address-page", "vmf->address is CR2's page (4 KiB aligned)", CR2, ONE(PTE_FAULT, "vmf->address"),
      CHK_PAGE_OF, { 0 }, 0 },
    { "vmf-flags", "vmf->flags are handle_mm_fault's flags", ONE(MM_FAULT, "flags"), ONE(PTE_FAULT, "vmf->flags"),
      CHK_EQUAL, { 0 }, 0 },
    { "regs-passed-down", "handle_mm_fault gets the pt_regs that exc_page_fault got", ONE(EXC, "regs"),
      ONE(MM_FAULT, "regs"), CHK_EQUAL, { 0 }, 0 },
    { "mm-is-current", "lock_vma_under_rcu searches current->mm", DERIVED("current.mm"), ONE(LOCK_VMA, "mm"),
      CHK_EQUAL, { 0 }, 0 },
    { "write-bit-agrees", "the error code's W bit became FAULT_FLAG_WRITE", ERROR_CODE, FAULT_FLAGS,
      CHK_BIT_AGREES, { "X86_PF_WRITE", "FAULT_FLAG_WRITE" }, 0 },
    { "user-bit-agrees", "the error code's U bit became FAULT_FLAG_USER", ERROR_CODE, FAULT_FLAGS,
      CHK_BIT_AGREES, { "X86_PF_USER", "FAULT_FLAG_USER" }, 0 },
    { "cpl-agrees-user-bit", "the interrupted CS's privilege level agrees with the error code's U bit", ERROR_CODE,
      { { EXC, "regs->cs" }, { ENTRY, "frame.cs" } }, CHK_RPL_AGREES, { "X86_PF_USER", NULL }, 0 },
    { "if-cleared-by-gate", "the page-fault gate cleared IF: the CPU entered with interrupts off", { { 0 } },
      ONE(ENTRY, "eflags"), CHK_FLAG_CLEAR, { "IF", NULL }, 0 },
    { "error-code-sum", "the named bits of the error code add up to the raw value (no unnamed bits)", { { 0 } },
      ERROR_CODE, CHK_SUM, { 0 }, STATION_DEC_PF_ERROR },
    { "fault-flags-sum", "the named bits of handle_mm_fault's flags add up to the raw value (no unnamed bits)",
      { { 0 } }, FAULT_FLAGS, CHK_SUM, { 0 }, STATION_DEC_FAULT_FLAG },
    { "current-is-trigger", "current at the entry station is the process that announced the fault",
      DERIVED("filter.pid"), DERIVED("current.pid"), CHK_SAME_PID, { 0 }, 0 },
    /* What the scenario itself promises (vm/triggers/trigger.c, src/scenario.c). */
    { "scenario-access", NULL, DERIVED("scenario"), ERROR_CODE, CHK_SCENARIO_BITS, { "X86_PF_WRITE", "X86_PF_USER" },
      0 },
    { "scenario-path", "the fault passed the stations its scenario promises, and skipped the ones it skips",
      DERIVED("scenario.skips"), DERIVED("path.skips"), CHK_SAME_TEXT, { 0 }, 0 },
};

size_t chk_default_count(void)
{
    return sizeof defaults / sizeof defaults[0];
}

const chk_def *chk_default(size_t i)
{
    return i < chk_default_count() ? &defaults[i] : NULL;
}

bool chk_needs_expected(const chk_def *row)
{
    return row->relation != CHK_FLAG_CLEAR && row->relation != CHK_SUM;
}

/* A bit by name in any decoder's set: the names are the kernel's and the
 * target's own, and do not repeat across them. 0 when this kernel lacks it. */
static uint64_t bit_named(const chk_env *env, const char *name)
{
    for (int d = 0; name && d < STATION_DEC_COUNT; d++) {
        uint64_t m = env->bits[d] ? decode_bits_mask(env->bits[d], name) : 0;
        if (m)
            return m;
    }
    return 0;
}

static const char *set(bool on)
{
    return on ? "set" : "clear";
}

static bool rel_equal(const chk_def *r, const chk_side *e, const chk_side *a, chk_result *out)
{
    uint64_t want = r->relation == CHK_PAGE_OF ? e->value & BASE_PAGE_MASK : e->value;
    snprintf(out->expected, sizeof out->expected, "0x%" PRIx64, want);
    snprintf(out->actual, sizeof out->actual, "0x%" PRIx64, a->value);
    out->ok = want == a->value;
    return true;
}

static bool rel_bit_agrees(const chk_def *r, const chk_side *e, const chk_side *a, const chk_env *env,
                           chk_result *out)
{
    uint64_t hw_mask = bit_named(env, r->bits[0]), sw_mask = bit_named(env, r->bits[1]);
    if (!hw_mask || !sw_mask)
        return false;
    bool hw = e->value & hw_mask, sw = a->value & sw_mask;
    snprintf(out->expected, sizeof out->expected, "%s %s", r->bits[1], set(hw));
    snprintf(out->actual, sizeof out->actual, "%s %s (%s %s)", r->bits[1], set(sw), r->bits[0], set(hw));
    out->ok = hw == sw;
    return true;
}

static bool rel_rpl_agrees(const chk_def *r, const chk_side *e, const chk_side *a, const chk_env *env,
                           chk_result *out)
{
    uint64_t mask = bit_named(env, r->bits[0]);
    if (!mask)
        return false;
    bool user_bit = e->value & mask;
    decode_selector sel = decode_selector_of(a->value);
    snprintf(out->expected, sizeof out->expected, "RPL %s (%s %s)", user_bit ? "3" : "0", r->bits[0], set(user_bit));
    snprintf(out->actual, sizeof out->actual, "RPL %u (cs 0x%" PRIx64 ")", sel.rpl, a->value);
    out->ok = (sel.rpl == 3) == user_bit;
    return true;
}

static bool rel_flag_clear(const chk_def *r, const chk_side *a, const chk_env *env, chk_result *out)
{
    uint64_t mask = bit_named(env, r->bits[0]);
    if (!mask)
        return false;
    snprintf(out->expected, sizeof out->expected, "%s clear", r->bits[0]);
    snprintf(out->actual, sizeof out->actual, "%s %s (%s 0x%" PRIx64 ")", r->bits[0], set(a->value & mask),
             a->name ? a->name : "value", a->value);
    out->ok = !(a->value & mask);
    return true;
}

static bool rel_sum(const chk_def *r, const chk_side *a, const chk_env *env, chk_result *out)
{
    const decode_bits *b = (unsigned)r->decoder < STATION_DEC_COUNT ? env->bits[r->decoder] : NULL;
    if (!b)
        return false;
    const decode_bit *parts[64];
    uint64_t sum, unknown;
    decode_value(b, a->value, parts, 64, &sum, &unknown);
    snprintf(out->expected, sizeof out->expected, "0x%" PRIx64, a->value);
    snprintf(out->actual, sizeof out->actual, "0x%" PRIx64, sum);
    out->ok = sum == a->value && unknown == 0;
    return true;
}

static bool rel_scenario_bits(const chk_def *r, const chk_side *a, const chk_env *env, chk_result *out)
{
    const scenario_def *sc = env->scenario;
    uint64_t w = bit_named(env, r->bits[0]), u = bit_named(env, r->bits[1]);
    if (!sc || !w || !u)
        return false;
    bool got_w = a->value & w, got_u = a->value & u;
    snprintf(out->claim, sizeof out->claim, "scenario %s: a %s access from %s mode", sc->name,
             sc->write ? "write" : "read", sc->user ? "user" : "kernel");
    snprintf(out->expected, sizeof out->expected, "%s %s, %s %s", r->bits[0], set(sc->write), r->bits[1],
             set(sc->user));
    snprintf(out->actual, sizeof out->actual, "%s %s, %s %s", r->bits[0], set(got_w), r->bits[1], set(got_u));
    out->ok = got_w == sc->write && got_u == sc->user;
    return true;
}

bool chk_evaluate(const chk_def *row, const chk_side *e, const chk_side *a, const chk_env *env, chk_result *out)
{
    if (!a->have || (chk_needs_expected(row) && !e->have))
        return false; /* one side was not captured: nothing to compare */
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", row->name);
    snprintf(out->claim, sizeof out->claim, "%s", row->claim ? row->claim : "");
    switch (row->relation) {
    case CHK_EQUAL:
    case CHK_PAGE_OF:
        return rel_equal(row, e, a, out);
    case CHK_BIT_AGREES:
        return rel_bit_agrees(row, e, a, env, out);
    case CHK_RPL_AGREES:
        return rel_rpl_agrees(row, e, a, env, out);
    case CHK_FLAG_CLEAR:
        return rel_flag_clear(row, a, env, out);
    case CHK_SUM:
        return rel_sum(row, a, env, out);
    case CHK_SAME_PID:
        snprintf(out->expected, sizeof out->expected, "%" PRIu64, e->value);
        snprintf(out->actual, sizeof out->actual, "%" PRIu64 " (%s)", a->value, a->text ? a->text : "");
        out->ok = e->value == a->value;
        return true;
    case CHK_SAME_TEXT:
        snprintf(out->expected, sizeof out->expected, "%s", e->text ? e->text : "");
        snprintf(out->actual, sizeof out->actual, "%s", a->text ? a->text : "");
        out->ok = strcmp(out->expected, out->actual) == 0;
        return true;
    case CHK_SCENARIO_BITS:
        return rel_scenario_bits(row, a, env, out);
    }
    return false;
}
