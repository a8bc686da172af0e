/* outcome: what a traced fault did, from the trace itself (no breakpoints:
 * the trace already ran the fault to user mode). The candidates' entries are
 * found among the stepped pcs; parameters are evaluated from their DWARF
 * locations with the registers as they were at that step (the trace's
 * register changes replayed); the "after" walk is made where the trace
 * stopped. See outcome.h. */
#include "outcome_internal.h"
#include "faultline/frame.h"
#include "faultline/util.h"

#include <inttypes.h>
#include <string.h>

/* The registers at one step of the trace, for the location evaluator. */
typedef struct replay {
    out_session *s;
    const trace_result *tr;
    size_t step;
} replay;

/* Value of `name` when step `step` was about to run: the last change made
 * by an earlier step, else the value before the first change, else the
 * register now (it never changed). */
static int replay_value(const replay *r, const char *name, uint64_t *v, fl_error *err)
{
    const trace_result *tr = r->tr;
    if (strcmp(name, "rip") == 0) {
        *v = tr->pcs[tr->steps[r->step].pc].pc;
        return 0;
    }
    bool found = false;
    for (size_t i = 0; i < tr->nsteps; i++) {
        const trace_step *st = &tr->steps[i];
        for (uint32_t c = st->change; c < st->change + st->nchanges; c++) {
            if (strcmp(tr->regnames[tr->changes[c].reg], name) != 0)
                continue;
            if (i < r->step) {
                *v = tr->changes[c].after;
                found = true;
            } else if (!found) {
                *v = tr->changes[c].before;
                return 0;
            }
        }
        if (i >= r->step && found)
            return 0;
    }
    return found ? 0 : tgt_reg_read(r->s->t, name, v, err);
}

static int replay_reg(void *ctx, int regno, uint64_t *value, fl_error *err)
{
    if (!frame_dwarf_reg_name(regno))
        return fl_fail(err, FL_ENOTFOUND, "DWARF register %d is not a general register of x86-64", regno);
    return replay_value(ctx, frame_dwarf_reg_name(regno), value, err);
}

static int replay_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    return tgt_mem_read(((replay *)ctx)->s->t, addr, buf, len, err);
}

static int candidate_at(const out_session *s, uint64_t pc)
{
    for (int i = 0; i < OUT_NCAND; i++)
        for (size_t j = 0; j < s->cands[i].npcs; j++)
            if (s->cands[i].pcs[j] == pc)
                return i;
    return -1;
}

/* handle_mm_fault entered at step i: its vma, and rax at the first step
 * that runs at a lower call depth (its caller, after the return). */
static void hmf_from_trace(out_session *s, replay *r, size_t i)
{
    out_fault *o = &s->cur;
    uint64_t v;
    if (s->replay_exact && kern_var_value(s->k, "handle_mm_fault", "vma", s->hmf_entry, &s->frame, &v, NULL) == 0)
        s->vma_ptr = v;
    for (size_t j = i + 1; j < r->tr->nsteps; j++)
        if (r->tr->steps[j].depth < r->tr->steps[i].depth) {
            if (r->tr->steps[j].flags & TRACE_F_INFER)
                return; /* inside a fast-mode block: rax there is not known */
            replay at = { .s = s, .tr = r->tr, .step = j };
            if (replay_value(&at, "rax", &v, NULL) == 0) {
                o->have_ret = true;
                o->ret = v & 0xffffffffu; /* vm_fault_t is an unsigned int */
                if (o->ret == 0)
                    snprintf(o->ret_decoded, sizeof o->ret_decoded, "(no VM_FAULT_* bit: the fault is handled)");
                else if (s->have_ret_bits)
                    decode_format(&s->ret_bits, o->ret, o->ret_decoded, sizeof o->ret_decoded);
            }
            return;
        }
}

/* A kernel-mode fault fixed up: where the exception returned to (the step
 * after the first iret that follows exc_page_fault's return). */
static void fixup_from_trace(out_session *s, const trace_result *tr, size_t exc_ret)
{
    out_fault *o = &s->cur;
    for (size_t j = exc_ret; j + 1 < tr->nsteps; j++)
        if (tr->pcs[tr->steps[j].pc].kind == TRACE_K_IRET) {
            uint64_t ip = tr->pcs[tr->steps[j + 1].pc].pc;
            if (ip != o->fault_ip) {
                o->fixed_up = true;
                o->fixup_ip = ip;
            }
            return;
        }
}

int out_from_trace(out_session *s, const trace_result *tr, out_fault *o, fl_error *err)
{
    double t0 = fl_now_s();
    if (!s->begun)
        return fl_fail(err, FL_EUSAGE, "the outcome of a trace needs out_on_stop at the entry station (the "
                       "capture's stop hook) for its \"before\" walk");
    if (out_prepare_live(s, err) < 0)
        return -1;
    replay r = { .s = s, .tr = tr };
    kern_frame live = s->frame;
    s->frame = (kern_frame){ .reg = replay_reg, .mem = replay_mem, .ctx = &r };
    s->tracing = true;
    size_t exc_ret = 0;
    bool fixup = false;
    for (size_t i = 0; i < tr->nsteps && !exc_ret; i++) {
        uint64_t pc = tr->pcs[tr->steps[i].pc].pc;
        r.step = i;
        /* Registers are exact at a step the guest stopped at (every step of
         * single mode; a block's first in fast mode), not inside a block. */
        s->replay_exact = !(tr->steps[i].flags & TRACE_F_INFER);
        int cand = candidate_at(s, pc);
        if (cand >= 0) {
            out_record_hit(s, cand, pc);
            fixup |= out_cand_role(cand) == OUT_R_FIXUP;
        }
        if (pc == s->hmf_entry)
            hmf_from_trace(s, &r, i);
        if (pc == s->exc_return)
            exc_ret = i;
    }
    s->frame = live;
    s->tracing = false;
    out_handler_done(s); /* the "after" walk, here, where the trace stopped */
    out_fault *c = &s->cur;
    c->handler_returned = exc_ret != 0;
    c->fixed_up = false;
    if (fixup && exc_ret)
        fixup_from_trace(s, tr, exc_ret);
    if (c->have_signal)
        c->handler_ip = tr->final_pc != c->fault_ip ? tr->final_pc : 0;
    snprintf(c->unwatched, sizeof c->unwatched, "from the trace: %zu steps, %s", tr->nsteps,
             s->absent[0] ? "not in this kernel: " : "every candidate in this kernel");
    if (s->absent[0])
        snprintf(c->unwatched + strlen(c->unwatched), sizeof c->unwatched - strlen(c->unwatched), "%s", s->absent);
    out_conclude(s, o, 0, NULL, t0);
    snprintf(o->end, sizeof o->end, "the trace %s at 0x%" PRIx64 "%s", tr->stop == TRACE_STOP_USER ? "returned to user mode"
             : "stopped", tr->final_pc, tr->final_pc == o->fault_ip ? ", the faulting instruction" : "");
    return 0;
}
