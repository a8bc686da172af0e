/* outcome: reading physical memory, the VMA, and running the fault to its
 * end with breakpoints on the candidates. See outcome.h. */
#include "outcome_internal.h"
#include "faultline/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- physical memory ---- */

static int phys_mode(out_session *s, int on, fl_error *err)
{
    char reply[64];
    char q[32];
    snprintf(q, sizeof q, "Qqemu.PhyMemMode:%d", on);
    if (tgt_query(s->t, q, reply, sizeof reply, err) < 0)
        return -1;
    if (strcmp(reply, "OK") != 0)
        return fl_fail(err, FL_EPROTO, "the stub answered \"%s\" to %s", reply, q);
    return 0;
}

/* QEMU's physical mode reads exactly what the CPU's walk reads, whatever the
 * kernel maps; the direct map (page_offset_base) is the fallback for a stub
 * without it. */
void out_phys_probe(out_session *s)
{
    fl_error e;
    if (!s->opt.direct_map && phys_mode(s, 1, &e) == 0 && phys_mode(s, 0, &e) == 0) {
        s->phys_stub = true;
        snprintf(s->phys_via, sizeof s->phys_via, "QEMU's physical-memory mode (Qqemu.PhyMemMode:1, then :0)");
        return;
    }
    if (!s->opt.direct_map)
        phys_mode(s, 0, NULL);
    uint64_t sym;
    if (kern_sym_addr(s->k, "page_offset_base", &sym, NULL) == 0 && tgt_read_u64(s->t, sym, &s->page_offset, NULL) == 0)
        snprintf(s->phys_via, sizeof s->phys_via, "the kernel's direct map at 0x%" PRIx64 " (page_offset_base)",
                 s->page_offset);
    else
        snprintf(s->phys_via, sizeof s->phys_via, "nothing: the stub has no physical mode and page_offset_base is unknown");
}

static int phys_read(void *ctx, uint64_t paddr, uint64_t *value, fl_error *err)
{
    out_session *s = ctx;
    if (s->phys_stub)
        return tgt_read_u64(s->t, paddr, value, err);
    if (!s->page_offset)
        return fl_fail(err, FL_ENOTFOUND, "no way to read physical memory (%s)", s->phys_via);
    return tgt_read_u64(s->t, s->page_offset + paddr, value, err);
}

int out_walk(out_session *s, uint64_t cr3, uint64_t va, pw_walk *w, fl_error *err)
{
    if (s->phys_stub && phys_mode(s, 1, err) < 0)
        return -1;
    int rc = pw_walk_va(phys_read, s, cr3, s->cur.cr4, s->cur.efer, va, w, err);
    /* Always back to virtual addresses, whatever the walk did. */
    if (s->phys_stub && phys_mode(s, 0, rc < 0 ? NULL : err) < 0)
        rc = -1;
    return rc;
}

int out_walk_now(out_session *s, uint64_t cr3, uint64_t va, pw_walk *w, fl_error *err)
{
    if (out_prepare_live(s, err) < 0 || tgt_reg_read(s->t, "cr4", &s->cur.cr4, err) < 0 ||
        tgt_reg_read(s->t, "efer", &s->cur.efer, err) < 0)
        return -1;
    return out_walk(s, cr3, va, w, err);
}

/* ---- vm_flags names, from the kernel where it has them ---- */

/* Fallback: include/linux/mm.h (6.12), VM_READ (bit 0) .. VM_ACCOUNT (bit 20),
 * in the mnemonics /proc/PID/smaps prints. */
static const char *const mm_h_names[21] = {
    "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "", "pf", "uw",
    "", "lo", "io", "sr", "rr", "dc", "de", "lf", "ac",
};

void out_vmflags_load(out_session *s)
{
    uint64_t lo = 0, addr = 0, *pcs = NULL, size = 0;
    size_t n = 0;
    const char *how = NULL;
    /* The static `mnemonics` of show_smap_vma_flags() (fs/proc/task_mmu.c):
     * its DWARF location (the function is inlined: any instance's pc), else
     * its local symbol. */
    if (kern_inlined_entries(s->k, "show_smap_vma_flags", &pcs, &n, NULL) == 0 && n > 0)
        lo = pcs[0];
    else
        kern_func_range(s->k, "show_smap_vma_flags", &lo, &(uint64_t){ 0 }, NULL);
    free(pcs);
    if (lo && kern_var_addr(s->k, "show_smap_vma_flags", "mnemonics", lo, &s->frame, &addr, NULL) == 0)
        how = "DWARF location of show_smap_vma_flags()'s mnemonics";
    else if (kern_sym_addr(s->k, "mnemonics.0", &addr, NULL) == 0) /* GCC's name for the static local */
        how = "symbol mnemonics.0 (show_smap_vma_flags()'s table)";
    else if (kern_sym_addr(s->k, "show_smap_vma_flags.mnemonics", &addr, NULL) == 0) /* clang's */
        how = "symbol show_smap_vma_flags.mnemonics";
    char raw[64 * 3];
    if (how && tgt_mem_read(s->t, addr, raw, sizeof raw, NULL) == 0) {
        /* char [64][3] since 6.12.x ("rd\0"), char [64][2] before ("rdwr"). */
        size_t stride = kern_sym_size(s->k, "mnemonics.0", &size, NULL) == 0 && size == 128 ? 2
                        : raw[2] == '\0' ? 3 : 2;
        for (int i = 0; i < 64; i++) {
            memcpy(s->vm_names[i], raw + (size_t)i * stride, 2);
            s->vm_names[i][2] = '\0';
        }
        snprintf(s->vm_flags_from, sizeof s->vm_flags_from,
                 "vm_flags names from the kernel: %s at 0x%" PRIx64 " (what /proc/PID/smaps prints)", how, addr);
        return;
    }
    for (int i = 0; i < 64; i++)
        snprintf(s->vm_names[i], sizeof s->vm_names[i], "%s", i < 21 ? mm_h_names[i] : "");
    snprintf(s->vm_flags_from, sizeof s->vm_flags_from,
             "vm_flags names from faultline's table of include/linux/mm.h: this kernel has no show_smap_vma_flags()");
}

void out_vm_flags_names(const out_session *s, uint64_t flags, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < 64 && used + 8 < cap; i++) {
        if (!(flags & (1ull << i)))
            continue;
        const char *n = s->vm_names[i];
        int w = n[0] && strcmp(n, "??") != 0 ? snprintf(buf + used, cap - used, "%s%s", used ? " " : "", n)
                                              : snprintf(buf + used, cap - used, "%sbit%d", used ? " " : "", i);
        if (w > 0)
            used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
}

/* ---- the VMA ---- */

int out_read_member(out_session *s, uint64_t base, enum out_member m, uint64_t *v)
{
    *v = 0;
    if (!s->have_member[m] || s->member[m].size > 8)
        return -1;
    return tgt_mem_read(s->t, base + s->member[m].offset, v, s->member[m].size, NULL);
}

/* The file's path: its dentry's names up to the root (at most 16 levels). */
static void dentry_path(out_session *s, uint64_t dentry, char *buf, size_t cap)
{
    char parts[16][64];
    int n = 0;
    for (uint64_t d = dentry, parent; d && n < 16; d = parent) {
        uint64_t name;
        if (out_read_member(s, d, OUT_M_D_NAME, &name) < 0 || tgt_mem_read(s->t, name, parts[n], 63, NULL) < 0)
            break;
        parts[n][63] = '\0';
        if (out_read_member(s, d, OUT_M_D_PARENT, &parent) < 0 || parent == d)
            break; /* the root ("/") is its own parent */
        n++;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && used + 2 < cap; i--) {
        int w = snprintf(buf + used, cap - used, "/%s", parts[i]);
        if (w > 0)
            used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
}

void out_read_vma(out_session *s, uint64_t vma, out_vma *v)
{
    uint64_t file = 0, dentry = 0, before = v->start_before;
    bool grew = v->grew;
    memset(v, 0, sizeof *v);
    v->start_before = before;
    v->grew = grew;
    if (!vma || out_read_member(s, vma, OUT_M_VM_START, &v->start) < 0 ||
        out_read_member(s, vma, OUT_M_VM_END, &v->end) < 0 || out_read_member(s, vma, OUT_M_VM_FLAGS, &v->flags) < 0)
        return;
    v->have = true;
    v->vma = vma;
    out_vm_flags_names(s, v->flags, v->flag_names, sizeof v->flag_names);
    out_read_member(s, vma, OUT_M_VM_FILE, &file);
    v->anonymous = file == 0;
    if (file && out_read_member(s, file, OUT_M_F_DENTRY, &dentry) == 0)
        dentry_path(s, dentry, v->file, sizeof v->file);
    if (v->start_before && v->start < v->start_before)
        v->grew = true;
}

/* ---- breakpoints ---- */

static int bp_add(out_session *s, uint64_t pc, enum out_bp_kind kind, int cand, fl_error *err)
{
    if (s->nbps >= OUT_MAX_BPS)
        return fl_fail(err, FL_ENOSLOT, "more than %d outcome breakpoints", OUT_MAX_BPS);
    if (tgt_bp_insert(s->t, TGT_BP_HW, pc, 1, err) < 0)
        return -1;
    s->bps[s->nbps++] = (out_bp){ .pc = pc, .kind = kind, .cand = cand };
    return 0;
}

void out_disarm_all(out_session *s)
{
    for (size_t i = 0; i < s->nbps; i++)
        tgt_bp_remove(s->t, TGT_BP_HW, s->bps[i].pc, 1, NULL);
    s->nbps = 0;
}

static void bp_remove(out_session *s, uint64_t pc)
{
    size_t j = 0;
    for (size_t i = 0; i < s->nbps; i++) {
        if (s->bps[i].pc == pc)
            tgt_bp_remove(s->t, TGT_BP_HW, pc, 1, NULL);
        else
            s->bps[j++] = s->bps[i];
    }
    s->nbps = j;
}

static const out_bp *bp_at(const out_session *s, uint64_t pc)
{
    for (size_t i = 0; i < s->nbps; i++)
        if (s->bps[i].pc == pc)
            return &s->bps[i];
    return NULL;
}

static void add_unwatched(out_fault *o, const char *why, const char *names)
{
    size_t used = strlen(o->unwatched);
    snprintf(o->unwatched + used, sizeof o->unwatched - used, "%s%s: %s", used ? "; " : "", why, names);
}

static void list_add(char *buf, size_t cap, const char *name)
{
    size_t used = strlen(buf);
    snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
}

/* The end of the handler first, then handle_mm_fault, then the candidates
 * in table order while slots last. */
static int arm_all(out_session *s, fl_error *err)
{
    out_fault *o = &s->cur;
    size_t max = s->opt.max_slots > 0 ? (size_t)s->opt.max_slots : (size_t)-1;
    if (bp_add(s, s->exc_return, OUT_BP_EXC_RET, -1, err) < 0)
        return -1;
    if (!s->hmf_ret && bp_add(s, s->hmf_entry, OUT_BP_HMF_ENTRY, -1, err) < 0)
        return -1;
    if (s->hmf_ret && bp_add(s, s->hmf_ret, OUT_BP_HMF_RET, -1, err) < 0)
        return -1;
    char no_slot[256] = "";
    for (int i = 0; i < OUT_NCAND; i++) {
        const out_cand *c = &s->cands[i];
        if (c->npcs == 0)
            continue;
        if (s->nbps + c->npcs > max) {
            list_add(no_slot, sizeof no_slot, out_cand_name(i));
            continue;
        }
        for (size_t j = 0; j < c->npcs; j++)
            if (!bp_at(s, c->pcs[j]) && bp_add(s, c->pcs[j], OUT_BP_CAND, i, err) < 0)
                return -1;
    }
    if (no_slot[0])
        add_unwatched(o, "no breakpoint slot left for", no_slot);
    if (s->absent[0])
        add_unwatched(o, "not in this kernel", s->absent);
    return 0;
}

/* ---- the run ---- */

static int run_to_stop(out_session *s, int64_t deadline, fl_error *err)
{
    tgt_stop stop;
    int left = fl_remaining_ms(deadline);
    if (left <= 0)
        return fl_fail(err, FL_ETIMEOUT, "the fault did not end within %d ms", s->opt.timeout_ms);
    if (!s->opt.idle)
        return tgt_continue(s->t, &stop, left, err);
    if (tgt_resume(s->t, err) < 0)
        return -1;
    for (;;) {
        int r = tgt_poll_stop(s->t, &stop, 2, err);
        if (r < 0)
            return -1;
        if (r == 1)
            return stop.kind == TGT_STOP_SIGNAL ? 0 : fl_fail(err, FL_ECLOSED, "the guest ended during the outcome");
        if (s->opt.idle(s->opt.idle_ctx) != 0 || fl_remaining_ms(deadline) == 0) {
            bool intr = fl_remaining_ms(deadline) != 0;
            tgt_interrupt(s->t, &stop, 2000, NULL);
            return intr ? fl_fail(err, FL_EINTR, "the outcome was interrupted while the guest ran")
                        : fl_fail(err, FL_ETIMEOUT, "the fault did not end within %d ms", s->opt.timeout_ms);
        }
    }
}

/* Is the stopped kernel running our task? */
static bool ours(out_session *s)
{
    uint64_t base;
    kern_task task;
    return tgt_reg_read(s->t, "gs_base", &base, NULL) == 0 && kern_current(s->k, base, &s->frame, &task, NULL) == 0 &&
           task.pid == s->cur.pid;
}

/* A parameter at a function's entry: its DWARF location; the psABI register
 * where that cannot be evaluated (live only: a replayed trace has no such
 * fallback, and at an inferred fast-mode step no registers at all). */
static uint64_t param(out_session *s, const char *func, const char *var, uint64_t pc, const char *abi, bool *known)
{
    uint64_t v = 0;
    bool ok = !(s->tracing && !s->replay_exact) &&
              (kern_var_value(s->k, func, var, pc, &s->frame, &v, NULL) == 0 ||
               (!s->tracing && tgt_reg_read(s->t, abi, &v, NULL) == 0));
    if (known)
        *known = ok;
    return ok ? v : 0;
}

void out_at_hmf_entry(out_session *s)
{
    uint64_t rsp, pc;
    if (tgt_reg_read(s->t, "rsp", &rsp, NULL) < 0 || tgt_reg_read(s->t, "rip", &pc, NULL) < 0 ||
        tgt_read_u64(s->t, rsp, &s->hmf_ret, NULL) < 0) {
        s->hmf_ret = 0;
        return;
    }
    s->vma_ptr = param(s, "handle_mm_fault", "vma", pc, "rdi", NULL);
}

void out_record_hit(out_session *s, int cand, uint64_t pc)
{
    out_fault *o = &s->cur;
    if (o->nhits >= OUT_MAX_HITS)
        return;
    out_hit *h = &o->hits[o->nhits++];
    snprintf(h->function, sizeof h->function, "%s", out_cand_name(cand));
    h->pc = pc;
    const char *fn = out_cand_name(cand);
    if (out_cand_role(cand) == OUT_R_SIGNAL) {
        /* Queued now, delivered before exc_page_fault returns (irqentry_exit
         * runs inside it): the pending bit is read at force_sig_fault's return. */
        uint64_t rsp, ret;
        if (!s->tracing && tgt_reg_read(s->t, "rsp", &rsp, NULL) == 0 && tgt_read_u64(s->t, rsp, &ret, NULL) == 0 &&
            !bp_at(s, ret))
            bp_add(s, ret, OUT_BP_SIG_RET, -1, NULL);
        bool k1, k2, k3;
        o->have_signal = true;
        o->signal = (int)param(s, fn, "sig", pc, "rdi", &k1);
        o->sig_code = (int)param(s, fn, "code", pc, "rsi", &k2);
        o->sig_addr = param(s, fn, "addr", pc, "rdx", &k3);
        o->signal_known = k1 && k2 && k3;
        out_signal_names(o);
        if (o->signal_known)
            snprintf(h->detail, sizeof h->detail, "sig %d %s, si_code %d %s, addr 0x%" PRIx64, o->signal,
                     o->signal_name, o->sig_code, o->sig_code_name, o->sig_addr);
        else
            snprintf(h->detail, sizeof h->detail, "its parameters were not read (an inferred step of a fast trace)");
    } else if (out_cand_role(cand) == OUT_R_GROW || strcmp(fn, "bad_area_access_error") == 0) {
        uint64_t vma = param(s, fn, "vma", pc, strcmp(fn, "expand_downwards") == 0 ? "rdi" : "rcx", NULL);
        if (vma) {
            s->vma_ptr = vma;
            if (out_cand_role(cand) == OUT_R_GROW && out_read_member(s, vma, OUT_M_VM_START, &o->vma.start_before) == 0)
                snprintf(h->detail, sizeof h->detail, "vma 0x%" PRIx64 " starts at 0x%" PRIx64, vma,
                         o->vma.start_before);
        }
    }
}

static void read_return(out_session *s)
{
    out_fault *o = &s->cur;
    uint64_t rax;
    if (tgt_reg_read(s->t, "rax", &rax, NULL) < 0)
        return;
    o->have_ret = true;
    o->ret = rax & 0xffffffffu; /* vm_fault_t is an unsigned int */
    if (o->ret == 0)
        snprintf(o->ret_decoded, sizeof o->ret_decoded, "(no VM_FAULT_* bit: the fault is handled)");
    else if (s->have_ret_bits)
        decode_format(&s->ret_bits, o->ret, o->ret_decoded, sizeof o->ret_decoded);
}

static void signal_queued(out_session *s)
{
    out_fault *o = &s->cur;
    uint64_t pending;
    if (o->signal > 0 && o->signal <= 64 && out_read_member(s, s->task, OUT_M_PENDING, &pending) == 0) {
        o->signal_pending = pending & (1ull << (o->signal - 1));
        o->pending_known = true;
    }
}

/* At the handler's return: what the C code left behind. */
void out_handler_done(out_session *s)
{
    out_fault *o = &s->cur;
    fl_error e;
    o->handler_returned = true;
    if (out_walk(s, o->cr3, o->cr2, &o->after, &e) < 0)
        out_note(o, "walk after: %s", e.msg);
    else
        o->have_after = true;
    uint64_t ip;
    bool fixup = false;
    for (size_t i = 0; i < o->nhits; i++)
        fixup |= strcmp(o->hits[i].function, "fixup_exception") == 0;
    if (o->regs && out_read_member(s, o->regs, OUT_M_REGS_IP, &ip) == 0 && ip != o->fault_ip) {
        if (o->have_signal)
            o->handler_ip = ip; /* the signal's delivery points it at the handler */
        else if (fixup) {
            o->fixed_up = true;
            o->fixup_ip = ip;
        }
    }
    s->have_stack_vm[1] = s->mm && out_read_member(s, s->mm, OUT_M_STACK_VM, &s->stack_vm[1]) == 0;
    if (s->zero_page_va) {
        pw_walk z;
        if (out_walk(s, o->cr3, s->zero_page_va, &z, NULL) == 0 && z.mapped)
            o->zero_page = z.phys & ~(uint64_t)0xfff;
    }
}

/* From the capture's stop to the end of exc_page_fault for this fault. */
static int run_handler(out_session *s, int64_t deadline, fl_error *err)
{
    out_fault *o = &s->cur;
    for (;;) {
        uint64_t pc, rsp;
        if (run_to_stop(s, deadline, err) < 0 || tgt_reg_read(s->t, "rip", &pc, err) < 0)
            return -1;
        const out_bp *b = bp_at(s, pc);
        if (!b)
            return fl_fail(err, FL_EPROTO, "the guest stopped at 0x%" PRIx64 ", where no outcome breakpoint is", pc);
        if (!ours(s))
            continue;
        switch (b->kind) {
        case OUT_BP_CAND:
            out_record_hit(s, b->cand, pc);
            break;
        case OUT_BP_HMF_ENTRY:
            /* The entry's slot becomes the return's (KVM has four). */
            out_at_hmf_entry(s);
            bp_remove(s, pc);
            if (s->hmf_ret && !bp_at(s, s->hmf_ret) && bp_add(s, s->hmf_ret, OUT_BP_HMF_RET, -1, err) < 0)
                return -1;
            break;
        case OUT_BP_HMF_RET:
            read_return(s);
            break;
        case OUT_BP_SIG_RET:
            signal_queued(s);
            break;
        case OUT_BP_EXC_RET:
            /* A nested fault of the same task returns here too: ours is the
             * one whose pt_regs is the stack pointer (asm passes rsp). */
            if (o->regs && tgt_reg_read(s->t, "rsp", &rsp, NULL) == 0 && rsp != o->regs)
                break;
            out_handler_done(s);
            return 0;
        default:
            break;
        }
    }
}

/* A resolved fault: the faulting instruction runs again, and must not fault
 * on CR2 a second time. Breakpoints on it (same CR3) and on the entry. */
static int rerun(out_session *s, int64_t deadline, fl_error *err)
{
    out_fault *o = &s->cur;
    o->reran_checked = true;
    out_disarm_all(s);
    if (bp_add(s, o->fault_ip, OUT_BP_RERUN, -1, err) < 0 || bp_add(s, s->asm_entry, OUT_BP_ENTRY, -1, err) < 0)
        return -1;
    for (;;) {
        uint64_t pc, cr3, cr2;
        if (run_to_stop(s, deadline, err) < 0 || tgt_reg_read(s->t, "rip", &pc, err) < 0 ||
            tgt_reg_read(s->t, "cr3", &cr3, err) < 0 || tgt_reg_read(s->t, "cr2", &cr2, err) < 0)
            return -1;
        if ((cr3 & PW_ADDR_MASK) != (o->cr3 & PW_ADDR_MASK))
            continue; /* another address space */
        const out_bp *b = bp_at(s, pc);
        if (b && b->kind == OUT_BP_ENTRY) {
            if (cr2 != o->cr2)
                continue;
            o->second_fault = true;
            return 0;
        }
        o->reran = true;
        tgt_stop stop;
        if (tgt_step(s->t, &stop, fl_remaining_ms(deadline), err) < 0 || tgt_reg_read(s->t, "rip", &pc, err) < 0 ||
            tgt_reg_read(s->t, "cr2", &cr2, err) < 0)
            return -1;
        o->second_fault = pc == s->asm_entry && cr2 == o->cr2;
        return 0;
    }
}

/* One task's walk of CR2: its CR3 is its mm->pgd, a kernel address
 * translated by our own walk. 0, or -1 with a note. */
static int walk_task(out_session *s, uint64_t task, pw_walk *out, int *pid_out)
{
    out_fault *o = &s->cur;
    uint64_t mm, pgd, pid;
    pw_walk kw;
    fl_error e;
    if (out_read_member(s, task, OUT_M_TASK_MM, &mm) < 0 || !mm || out_read_member(s, mm, OUT_M_MM_PGD, &pgd) < 0 ||
        out_read_member(s, task, OUT_M_TASK_PID, &pid) < 0) {
        out_note(o, "%s", "a sharing task's mm->pgd could not be read");
        return -1;
    }
    if (out_walk(s, o->cr3, pgd, &kw, &e) < 0 || !kw.mapped) {
        out_note(o, "a sharing task's pgd: %s", kw.mapped ? e.msg : "not mapped");
        return -1;
    }
    if (out_walk(s, kw.phys, o->cr2, out, &e) < 0) {
        out_note(o, "a sharing task's walk: %s", e.msg);
        return -1;
    }
    *pid_out = (int)pid;
    return 0;
}

/* The tasks a fork made share the page with: the parent, then the
 * children (task_struct.children heads a list of the children's
 * task_struct.sibling), at most 16. */
static size_t sharers(out_session *s, uint64_t *tasks, size_t cap)
{
    size_t n = 0;
    uint64_t parent, head, next;
    if (out_read_member(s, s->task, OUT_M_REAL_PARENT, &parent) == 0 && parent)
        tasks[n++] = parent;
    if (!s->have_member[OUT_M_CHILDREN] || !s->have_member[OUT_M_SIBLING] || !s->have_member[OUT_M_LIST_NEXT])
        return n;
    head = s->task + s->member[OUT_M_CHILDREN].offset;
    for (uint64_t node = head; n < cap; node = next) {
        if (out_read_member(s, node, OUT_M_LIST_NEXT, &next) < 0 || next == head || !next)
            break;
        tasks[n++] = next - s->member[OUT_M_SIBLING].offset;
    }
    return n;
}

/* cow: the other process that shared the page before the copy (the parent,
 * or a child when the parent itself writes after fork) still maps the old
 * frame: the first sharer that does is reported, else the parent. */
static void walk_sharer(out_session *s)
{
    out_fault *o = &s->cur;
    uint64_t tasks[16];
    size_t n = sharers(s, tasks, 16);
    uint64_t old = o->have_before && o->before.mapped ? o->before.frame : 0;
    for (size_t i = 0; i < n; i++) {
        pw_walk w;
        int pid;
        if (walk_task(s, tasks[i], &w, &pid) < 0)
            continue;
        if (!o->have_parent || (w.mapped && w.frame == old)) {
            o->parent = w;
            o->parent_pid = pid;
            o->have_parent = true;
        }
        if (w.mapped && w.frame == old)
            return;
    }
    if (!n)
        out_note(o, "%s", "no task shares the page: neither a parent nor children could be read");
}

static bool hit(const out_fault *o, const char *fn)
{
    for (size_t i = 0; i < o->nhits; i++)
        if (strcmp(o->hits[i].function, fn) == 0)
            return true;
    return false;
}

static void describe_end(out_fault *o)
{
    if (o->have_signal)
        snprintf(o->end, sizeof o->end, "%s queued to pid %d (%s) and delivered: pt_regs->ip 0x%" PRIx64
                 " is its handler, the instruction does not run again", o->signal_name, o->pid,
                 o->signal_pending ? "seen pending" : "not seen pending", o->handler_ip);
    else if (o->fixed_up)
        snprintf(o->end, sizeof o->end, "the kernel continues at the fixup 0x%" PRIx64 " instead of 0x%" PRIx64,
                 o->fixup_ip, o->fault_ip);
    else if (o->second_fault)
        snprintf(o->end, sizeof o->end, "a second fault on 0x%" PRIx64 " when 0x%" PRIx64 " ran again", o->cr2,
                 o->fault_ip);
    else if (o->reran)
        snprintf(o->end, sizeof o->end, "the faulting instruction at 0x%" PRIx64 " ran again without a fault on 0x%" PRIx64,
                 o->fault_ip, o->cr2);
    else if (o->handler_returned)
        snprintf(o->end, sizeof o->end, "exc_page_fault returned");
    else
        snprintf(o->end, sizeof o->end, "not seen to end");
}

/* What every way of following a fault ends with: the VMA, the parent's
 * walk, the difference, the end, the classification and the checks. */
void out_conclude(out_session *s, out_fault *o, int rc, const fl_error *err, double t0)
{
    out_fault *c = &s->cur;
    out_read_vma(s, s->vma_ptr, &c->vma);
    snprintf(c->vm_flags_from, sizeof c->vm_flags_from, "%s", s->vm_flags_from);
    /* The stack grew by what the kernel counted in mm->stack_vm (pages of
     * the x86 base size, SDM vol. 3, 4.5), when expand_downwards ran before
     * the outcome's breakpoints were armed. */
    if (c->vma.have && !c->vma.grew && s->have_stack_vm[0] && s->have_stack_vm[1] && s->stack_vm[1] > s->stack_vm[0]) {
        c->vma.grew = true;
        c->vma.start_before = c->vma.start + (s->stack_vm[1] - s->stack_vm[0]) * 4096;
    }
    /* Only a fork shares a private anonymous page with another process (the
     * parent): a COW of a file's page or of the zero page has none to ask. */
    if ((hit(c, "wp_page_copy") || hit(c, "do_wp_page")) && c->vma.have && c->vma.anonymous &&
        !(c->have_before && c->before.mapped && c->before.frame == c->zero_page))
        walk_sharer(s);
    if (c->have_before && c->have_after)
        pw_diff_walks(&c->before, &c->after, &c->diff);
    describe_end(c);
    out_judge(c, decode_bits_mask(&s->err_bits, "X86_PF_WRITE"), decode_bits_mask(&s->err_bits, "X86_PF_USER"),
              decode_bits_mask(&s->err_bits, "X86_PF_INSTR"));
    if (rc < 0) {
        /* Said in the report too: a fault whose end was not seen is a failed
         * outcome, not a silent one. */
        out_note(c, "%s", err ? err->msg : "the outcome failed");
        out_add_check(c, "end-seen", false, "the outcome followed the fault to its end", "the fault's end",
                      err && err->code == FL_ETIMEOUT ? "timed out" : "an error (see the note)");
    }
    c->seconds = fl_now_s() - t0;
    *o = *c;
    s->begun = false;
}

int out_finish(out_session *s, const cap_fault *f, out_fault *o, fl_error *err)
{
    double t0 = fl_now_s();
    if (!s->begun && out_begin(s, f, err) < 0)
        return -1;
    int64_t deadline = fl_deadline_ms(s->opt.timeout_ms);
    int rc = out_prepare_live(s, err) < 0 || arm_all(s, err) < 0 ? -1 : run_handler(s, deadline, err);
    out_disarm_all(s);
    out_fault *c = &s->cur;
    if (rc == 0 && !c->have_signal && !c->fixed_up)
        rc = rerun(s, deadline, err);
    out_disarm_all(s);
    out_conclude(s, o, rc, err, t0);
    return rc;
}
