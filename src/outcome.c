/* outcome: what the captured fault did. See outcome.h. Rendering is in
 * outcome_render.c; the classification and the checks in outcome_judge.c. */
#include "outcome_internal.h"
#include "faultline/frame.h"
#include "faultline/util.h"

#include <capstone.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The candidates, in the order they are armed when slots are scarce (KVM:
 * four debug registers): the handlers first, then the signal and the fixup,
 * then the bad_area family, then the rest. Each is armed at its symbol and at
 * every inlined copy DWARF knows; absent ones are listed as such. */
static const struct cand_row {
    const char *name;
    enum out_role role;
} cand_rows[OUT_NCAND] = {
    { "do_anonymous_page", OUT_R_RESOLVE },     { "wp_page_copy", OUT_R_RESOLVE },
    { "do_wp_page", OUT_R_RESOLVE },            { "do_read_fault", OUT_R_RESOLVE },
    { "do_cow_fault", OUT_R_RESOLVE },          { "do_shared_fault", OUT_R_RESOLVE },
    { "force_sig_fault", OUT_R_SIGNAL },        { "fixup_exception", OUT_R_FIXUP },
    { "bad_area_access_error", OUT_R_BAD },     { "bad_area_nosemaphore", OUT_R_BAD },
    { "__bad_area_nosemaphore", OUT_R_BAD },    { "__bad_area", OUT_R_BAD },
    { "bad_area", OUT_R_BAD },                  { "expand_downwards", OUT_R_GROW },
    { "spurious_kernel_fault", OUT_R_SPURIOUS }, { "do_swap_page", OUT_R_RESOLVE },
    { "do_numa_page", OUT_R_RESOLVE },
};

enum out_role out_cand_role(int i) { return i >= 0 && i < OUT_NCAND ? cand_rows[i].role : OUT_R_RESOLVE; }
const char *out_cand_name(int i) { return i >= 0 && i < OUT_NCAND ? cand_rows[i].name : "?"; }

void out_note(out_fault *o, const char *fmt, const char *detail)
{
    size_t used = strlen(o->note);
    if (used + 4 >= sizeof o->note)
        return;
    snprintf(o->note + used, sizeof o->note - used, "%s", used ? "; " : "");
    used = strlen(o->note);
    snprintf(o->note + used, sizeof o->note - used, fmt, detail);
}

/* ---- opening: everything the kernel can tell, once ---- */

static int resolve_candidates(out_session *s)
{
    size_t used = 0;
    for (int i = 0; i < OUT_NCAND; i++) {
        out_cand *c = &s->cands[i];
        uint64_t addr, *inl = NULL;
        size_t ninl = 0;
        bool sym = kern_sym_addr(s->k, cand_rows[i].name, &addr, NULL) == 0;
        if (kern_inlined_entries(s->k, cand_rows[i].name, &inl, &ninl, NULL) < 0)
            ninl = 0;
        c->pcs = calloc(ninl + 1, sizeof *c->pcs);
        if (!c->pcs) {
            free(inl);
            return -1;
        }
        if (sym)
            c->pcs[c->npcs++] = addr;
        for (size_t j = 0; j < ninl; j++)
            c->pcs[c->npcs++] = inl[j];
        free(inl);
        if (c->npcs == 0) {
            int n = snprintf(s->absent + used, sizeof s->absent - used, "%s%s", used ? ", " : "",
                             cand_rows[i].name);
            if (n > 0 && used + (size_t)n < sizeof s->absent)
                used += (size_t)n;
        }
    }
    return 0;
}

/* Where asm_exc_page_fault resumes after `call exc_page_fault`: the point at
 * which the C handler is done with this fault (entry code only remains). */
static int find_handler_return(out_session *s, fl_error *err)
{
    uint64_t lo, hi, target;
    if (kern_func_range(s->k, "asm_exc_page_fault", &lo, &hi, err) < 0 ||
        kern_sym_addr(s->k, "exc_page_fault", &target, err) < 0)
        return -1;
    s->asm_entry = lo;
    size_t len = hi - lo > 512 ? 512 : (size_t)(hi - lo);
    uint8_t code[512];
    if (tgt_mem_read(s->t, lo, code, len, err) < 0)
        return fl_error_prefix(err, "reading asm_exc_page_fault's code");
    csh cs;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
        return fl_fail(err, FL_EIO, "capstone could not open an x86-64 disassembler");
    cs_insn *insn;
    size_t n = cs_disasm(cs, code, len, lo, 0, &insn);
    for (size_t i = 0; i + 1 < n && !s->exc_return; i++)
        if (strcmp(insn[i].mnemonic, "call") == 0 && strtoull(insn[i].op_str, NULL, 16) == target)
            s->exc_return = insn[i + 1].address;
    if (n)
        cs_free(insn, n);
    cs_close(&cs);
    if (!s->exc_return)
        return fl_fail(err, FL_ENOTFOUND, "no call to exc_page_fault in asm_exc_page_fault (0x%" PRIx64 ")", lo);
    return 0;
}

static int load_bits(kern *k, const char *name, decode_bits *out)
{
    kern_enumerator *list;
    size_t n;
    if (kern_enum_list(k, name, &list, &n, NULL) < 0)
        return -1;
    int rc = decode_bits_from_enum(list, n, out);
    free(list);
    return rc;
}

/* The DWARF members the outcome reads; a missing one only loses its reading. */
static void load_members(out_session *s)
{
    static const char *const paths[OUT_M_COUNT] = {
        [OUT_M_VM_START] = "vm_area_struct.vm_start", [OUT_M_VM_END] = "vm_area_struct.vm_end",
        [OUT_M_VM_FLAGS] = "vm_area_struct.vm_flags", [OUT_M_VM_FILE] = "vm_area_struct.vm_file",
        [OUT_M_F_DENTRY] = "file.f_path.dentry",      [OUT_M_D_NAME] = "dentry.d_name.name",
        [OUT_M_D_PARENT] = "dentry.d_parent",         [OUT_M_REAL_PARENT] = "task_struct.real_parent",
        [OUT_M_TASK_PID] = "task_struct.pid",         [OUT_M_TASK_MM] = "task_struct.mm",
        [OUT_M_MM_PGD] = "mm_struct.pgd",             [OUT_M_PENDING] = "task_struct.pending.signal",
        [OUT_M_REGS_IP] = "pt_regs.ip",             [OUT_M_STACK_VM] = "mm_struct.stack_vm",
        [OUT_M_CHILDREN] = "task_struct.children",  [OUT_M_SIBLING] = "task_struct.sibling",
        [OUT_M_LIST_NEXT] = "list_head.next",
    };
    for (int i = 0; i < OUT_M_COUNT; i++)
        s->have_member[i] = kern_member_get(s->k, paths[i], &s->member[i], NULL) == 0;
}

int out_session_open(out_session **out, kern *k, tgt *t, const out_options *opt, fl_error *err)
{
    out_session *s = calloc(1, sizeof *s);
    if (!s)
        return fl_fail(err, FL_EIO, "out of memory");
    s->k = k;
    s->t = t;
    s->opt = *opt;
    if (s->opt.timeout_ms <= 0)
        s->opt.timeout_ms = 30000;
    s->frame = frame_over_target(t);
    if (resolve_candidates(s) < 0) {
        out_session_close(s);
        return fl_fail(err, FL_EIO, "out of memory");
    }
    uint64_t hi;
    if (kern_sym_addr(k, "handle_mm_fault", &s->hmf_entry, err) < 0 ||
        kern_func_range(k, "asm_exc_page_fault", &s->asm_entry, &hi, err) < 0) {
        fl_error_prefix(err, "preparing the outcome");
        out_session_close(s);
        return -1;
    }
    load_members(s);
    s->have_ret_bits = load_bits(k, "vm_fault_reason", &s->ret_bits) == 0;
    s->have_err_bits = load_bits(k, "x86_pf_error_code", &s->err_bits) == 0;
    kern_sym_addr(k, "empty_zero_page", &s->zero_page_va, NULL);
    *out = s;
    return 0;
}

/* What needs the guest's kernel mapped (a session may open at reset, before
 * paging: --reproducible): once, at the first stop inside a fault. */
int out_prepare_live(out_session *s, fl_error *err)
{
    if (s->live_ready)
        return 0;
    if (find_handler_return(s, err) < 0)
        return fl_error_prefix(err, "preparing the outcome");
    out_vmflags_load(s);
    out_phys_probe(s);
    s->live_ready = true;
    return 0;
}

void out_session_close(out_session *s)
{
    if (!s)
        return;
    out_disarm_all(s);
    for (int i = 0; i < OUT_NCAND; i++)
        free(s->cands[i].pcs);
    decode_bits_free(&s->ret_bits);
    decode_bits_free(&s->err_bits);
    free(s);
}

/* ---- the fault's identity and the "before" walk ---- */

static uint64_t value_of(const cap_fault *f, enum cap_station_id st, const char *name, bool *ok)
{
    const cap_value *v = cap_value_get(f, st, name);
    if (v)
        *ok = true;
    return v ? v->value : 0;
}

/* What later stations add: pt_regs and the vma (kept once known). */
static void identify_more(out_session *s, const cap_fault *f)
{
    out_fault *o = &s->cur;
    bool ok = false;
    if (!o->regs) {
        o->regs = value_of(f, CAP_ST_EXC, "regs", &ok);
        if (!ok)
            o->regs = value_of(f, CAP_ST_USER_FAULT, "regs", &ok);
    }
    ok = false;
    uint64_t vma = value_of(f, CAP_ST_MM_FAULT, "vma", &ok);
    if (!ok)
        vma = value_of(f, CAP_ST_PTE_FAULT, "vmf->vma", &ok);
    if (ok && vma)
        s->vma_ptr = vma;
}

static void identify(out_session *s, const cap_fault *f)
{
    out_fault *o = &s->cur;
    bool ok = false;
    s->mm = f->task.mm;
    o->pid = f->task.pid;
    snprintf(o->comm, sizeof o->comm, "%s", f->task.comm);
    s->task = f->task.task;
    o->cr2 = value_of(f, CAP_ST_ENTRY, "cr2", &ok);
    if (!ok)
        o->cr2 = value_of(f, CAP_ST_EXC, "cr2", &ok);
    ok = false;
    o->error_code = value_of(f, CAP_ST_ENTRY, "frame.error_code", &ok);
    if (!ok)
        o->error_code = value_of(f, CAP_ST_EXC, "error_code", &ok);
    if (s->have_err_bits)
        decode_format(&s->err_bits, o->error_code, o->error_decoded, sizeof o->error_decoded);
    o->fault_ip = f->fault_ip;
    identify_more(s, f);
}

static void walk_before(out_session *s)
{
    out_fault *o = &s->cur;
    fl_error e;
    if (tgt_reg_read(s->t, "cr3", &o->cr3, &e) < 0 || tgt_reg_read(s->t, "cr4", &o->cr4, &e) < 0 ||
        tgt_reg_read(s->t, "efer", &o->efer, &e) < 0) {
        out_note(o, "control registers: %s", e.msg);
        return;
    }
    if (out_walk(s, o->cr3, o->cr2, &o->before, &e) < 0)
        out_note(o, "walk before: %s", e.msg);
    else
        o->have_before = true;
    s->have_stack_vm[0] = s->mm && out_read_member(s, s->mm, OUT_M_STACK_VM, &s->stack_vm[0]) == 0;
    snprintf(o->phys_via, sizeof o->phys_via, "%s", s->phys_via);
}

void out_on_stop(void *ctx, int station, const cap_fault *f, tgt *t)
{
    out_session *s = ctx;
    (void)t;
    if (station == CAP_ST_ENTRY || !s->begun) {
        memset(&s->cur, 0, sizeof s->cur);
        s->vma_ptr = s->hmf_ret = 0;
        s->have_stack_vm[0] = s->have_stack_vm[1] = false;
        identify(s, f);
        fl_error e;
        if (out_prepare_live(s, &e) < 0)
            out_note(&s->cur, "%s", e.msg);
        walk_before(s);
        s->begun = true;
    } else {
        identify_more(s, f);
    }
    if (station == CAP_ST_MM_FAULT)
        out_at_hmf_entry(s);
}

int out_begin(out_session *s, const cap_fault *f, fl_error *err)
{
    if (!f->st[CAP_ST_ENTRY].hit && !f->st[CAP_ST_EXC].hit)
        return fl_fail(err, FL_EUSAGE, "the outcome needs the capture's entry or exc_page_fault station");
    s->begun = false;
    out_on_stop(s, -1, f, s->t);
    if (f->st[CAP_ST_MM_FAULT].hit) {
        uint64_t pc;
        if (tgt_reg_read(s->t, "rip", &pc, NULL) == 0 && pc == s->hmf_entry)
            out_at_hmf_entry(s);
    }
    return 0;
}

size_t out_checks_failed(const out_fault *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->nchecks; i++)
        n += !o->checks[i].ok;
    return n;
}
