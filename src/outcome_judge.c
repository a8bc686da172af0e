/* outcome: the one-line classification and the checks, derived only from
 * the readings (walks, hits, return value, signal, fixup), never from the
 * scenario's name. See outcome.h. */
#include "outcome_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Signal numbers and si_codes are ABI constants the kernel keeps in macros,
 * not DWARF: arch/x86/include/uapi/asm/signal.h and
 * include/uapi/asm-generic/siginfo.h. */
static const struct { int sig; const char *name; } signal_names[] = {
    { 4, "SIGILL" }, { 5, "SIGTRAP" }, { 7, "SIGBUS" }, { 8, "SIGFPE" }, { 11, "SIGSEGV" },
};
static const struct { int sig, code; const char *name; } si_code_names[] = {
    { 11, 1, "SEGV_MAPERR" }, { 11, 2, "SEGV_ACCERR" }, { 11, 3, "SEGV_BNDERR" }, { 11, 4, "SEGV_PKUERR" },
    { 7, 1, "BUS_ADRALN" },   { 7, 2, "BUS_ADRERR" },   { 7, 3, "BUS_OBJERR" },   { 7, 4, "BUS_MCEERR_AR" },
    { 7, 5, "BUS_MCEERR_AO" },
};

void out_signal_names(out_fault *o)
{
    snprintf(o->signal_name, sizeof o->signal_name, "signal %d", o->signal);
    snprintf(o->sig_code_name, sizeof o->sig_code_name, "si_code %d", o->sig_code);
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (signal_names[i].sig == o->signal)
            snprintf(o->signal_name, sizeof o->signal_name, "%s", signal_names[i].name);
    for (size_t i = 0; i < sizeof si_code_names / sizeof si_code_names[0]; i++)
        if (si_code_names[i].sig == o->signal && si_code_names[i].code == o->sig_code)
            snprintf(o->sig_code_name, sizeof o->sig_code_name, "%s", si_code_names[i].name);
}

/* The access the error code describes. The bit positions are the SDM's
 * (vol. 3, 4.7: P 0, W/R 1, U/S 2, RSVD 3, I/D 4); the kernel names them in
 * enum x86_pf_error_code, which the checks use. */
static const char *access_kind(uint64_t ec)
{
    return (ec & 0x10) ? "instruction fetch" : (ec & 0x2) ? "write" : "read";
}

static const char *last_hit(const out_fault *o, enum out_role role, bool first)
{
    const char *found = NULL;
    for (size_t i = 0; i < o->nhits; i++)
        for (int c = 0; c < OUT_NCAND; c++)
            if (out_cand_role(c) == role && strcmp(o->hits[i].function, out_cand_name(c)) == 0) {
                if (first)
                    return o->hits[i].function;
                found = o->hits[i].function;
            }
    return found;
}

static bool was_hit(const out_fault *o, const char *fn)
{
    for (size_t i = 0; i < o->nhits; i++)
        if (strcmp(o->hits[i].function, fn) == 0)
            return true;
    return false;
}

static void classify_signal(out_fault *o)
{
    const char *acc = access_kind(o->error_code);
    if (!o->signal_known) {
        snprintf(o->classification, sizeof o->classification,
                 "a signal for a %s of 0x%" PRIx64 " (force_sig_fault ran; its number and si_code were not read)",
                 acc, o->cr2);
        return;
    }
    if (strcmp(o->sig_code_name, "SEGV_ACCERR") == 0)
        snprintf(o->classification, sizeof o->classification, "%s (%s): %s", o->signal_name, o->sig_code_name,
                 strcmp(acc, "write") == 0 ? "write to a read-only mapping"
                 : strcmp(acc, "read") == 0 ? "read of a mapping without read permission"
                                            : "instruction fetch from a mapping without exec permission");
    else if (strcmp(o->sig_code_name, "SEGV_MAPERR") == 0)
        snprintf(o->classification, sizeof o->classification, "%s (%s): %s of 0x%" PRIx64 ", which no VMA covers",
                 o->signal_name, o->sig_code_name, acc, o->cr2);
    else
        snprintf(o->classification, sizeof o->classification, "%s (%s) for a %s of 0x%" PRIx64, o->signal_name,
                 o->sig_code_name, acc, o->cr2);
}

/* A page that a handler mapped: which, how, with what rights. */
static void classify_mapped(out_fault *o, const char *fn)
{
    const pw_walk *a = &o->after;
    const char *rights = !a->mapped ? "(not mapped after!)" : a->writable ? "RW" : "read-only";
    char grew[96] = "";
    if (o->vma.grew)
        snprintf(grew, sizeof grew, "stack grown from 0x%" PRIx64 " to 0x%" PRIx64 "; ", o->vma.start_before,
                 o->vma.start);
    const char *file = o->vma.file[0] ? o->vma.file : "(a file)";
    char *c = o->classification;
    size_t cap = sizeof o->classification;
    bool zero = a->mapped && o->zero_page && a->frame == o->zero_page;
    if (strcmp(fn, "wp_page_copy") == 0 && o->diff.frame_changed)
        snprintf(c, cap, "COW: page 0x%" PRIx64 " copied to 0x%" PRIx64 ", mapped %s", o->diff.old_frame,
                 o->diff.new_frame, rights);
    else if (strcmp(fn, "do_wp_page") == 0 || strcmp(fn, "wp_page_copy") == 0)
        snprintf(c, cap, "write-protect fault: page 0x%" PRIx64 " kept and made %s", a->frame, rights);
    else if (strcmp(fn, "do_anonymous_page") == 0 && zero)
        snprintf(c, cap, "%sanonymous first %s: the shared zero page 0x%" PRIx64 " mapped %s%s", grew,
                 access_kind(o->error_code), a->frame, rights, a->nx ? "" : ", executable");
    else if (strcmp(fn, "do_anonymous_page") == 0)
        snprintf(c, cap, "%sanonymous first %s: zero-filled page 0x%" PRIx64 " mapped %s", grew,
                 access_kind(o->error_code), a->frame, rights);
    else if (strcmp(fn, "do_read_fault") == 0)
        snprintf(c, cap, "file read: page-cache page 0x%" PRIx64 " of %s mapped %s", a->frame, file, rights);
    else if (strcmp(fn, "do_cow_fault") == 0)
        snprintf(c, cap, "private file write: copy 0x%" PRIx64 " of a page of %s mapped %s", a->frame, file, rights);
    else if (strcmp(fn, "do_shared_fault") == 0)
        snprintf(c, cap, "shared file write: page-cache page 0x%" PRIx64 " of %s mapped %s", a->frame, file, rights);
    else
        snprintf(c, cap, "%s: page 0x%" PRIx64 " mapped %s", fn, a->frame, rights);
}

static void out_classify(out_fault *o)
{
    const char *resolve = last_hit(o, OUT_R_RESOLVE, false);
    const char *bad = last_hit(o, OUT_R_BAD, true);
    bool fixup = was_hit(o, "fixup_exception");
    bool spurious = was_hit(o, "spurious_kernel_fault");
    const char *who = fixup ? "fixup_exception" : bad ? bad : resolve ? resolve : spurious ? "spurious_kernel_fault" : "";
    snprintf(o->resolver, sizeof o->resolver, "%s", who);
    if (o->have_signal)
        classify_signal(o);
    else if (o->fixed_up)
        snprintf(o->classification, sizeof o->classification,
                 "kernel access to a bad user address fixed up: %s of 0x%" PRIx64 " at 0x%" PRIx64
                 " continues at 0x%" PRIx64 " (the uaccess returns -EFAULT)",
                 access_kind(o->error_code), o->cr2, o->fault_ip, o->fixup_ip);
    else if (resolve)
        classify_mapped(o, resolve);
    else if (spurious)
        snprintf(o->classification, sizeof o->classification,
                 "spurious kernel fault: the page tables already allowed the access");
    else if (o->have_after && o->after.mapped)
        snprintf(o->classification, sizeof o->classification,
                 "resolved by no watched handler: page 0x%" PRIx64 " is mapped", o->after.frame);
    else
        snprintf(o->classification, sizeof o->classification, "unresolved: no candidate fired and nothing is mapped");
}

/* ---- checks ---- */

void out_add_check(out_fault *o, const char *name, bool ok, const char *claim, const char *expected, const char *actual)
{
    if (o->nchecks >= OUT_MAX_CHECKS)
        return;
    cap_check *c = &o->checks[o->nchecks++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->claim, sizeof c->claim, "%s", claim);
    snprintf(c->expected, sizeof c->expected, "%s", expected);
    snprintf(c->actual, sizeof c->actual, "%s", actual);
    c->ok = ok;
}

static void rights_text(const pw_walk *w, char *buf, size_t cap)
{
    if (!w->mapped)
        snprintf(buf, cap, "%s", w->ended[0] ? w->ended : "not walked");
    else
        snprintf(buf, cap, "present, %s, %s, %s", w->writable ? "RW" : "read-only", w->user ? "US" : "supervisor",
                 w->nx ? "NX" : "executable");
}

static void check_resolved(out_fault *o, uint64_t w, uint64_t u, uint64_t i)
{
    bool want_w = w && (o->error_code & w), want_u = u && (o->error_code & u), want_x = i && (o->error_code & i);
    char e[64], a[64];
    snprintf(e, sizeof e, "present%s%s%s", want_w ? ", RW" : "", want_u ? ", US" : "", want_x ? ", not NX" : "");
    rights_text(&o->after, a, sizeof a);
    const pw_walk *x = &o->after;
    out_add_check(o, "pte-grants-access", x->mapped && (!want_w || x->writable) && (!want_u || x->user) && (!want_x || !x->nx),
          "after the fault the walk grants what the error code asked for (W: RW, U: US, I: not NX)", e, a);
    snprintf(a, sizeof a, x->mapped ? "frame 0x%" PRIx64 : "no frame", x->frame);
    out_add_check(o, "pte-maps-frame", x->mapped && x->frame != 0, "after the fault CR2's page maps a frame", "a frame", a);
    if (o->reran_checked) {
        snprintf(a, sizeof a, "%s", o->second_fault ? "faulted again on CR2" : o->reran ? "ran, no fault" : "did not run");
        out_add_check(o, "reran-without-fault", o->reran && !o->second_fault,
              "the faulting instruction runs again without a second fault on CR2", "ran, no fault", a);
    }
    if (was_hit(o, "wp_page_copy")) {
        snprintf(e, sizeof e, "not 0x%" PRIx64, o->diff.old_frame);
        snprintf(a, sizeof a, "0x%" PRIx64, o->diff.new_frame);
        out_add_check(o, "cow-new-frame", o->diff.frame_changed, "COW: the writer now maps a different frame", e, a);
        if (o->have_parent) {
            snprintf(e, sizeof e, "0x%" PRIx64, o->diff.old_frame);
            snprintf(a, sizeof a, o->parent.mapped ? "0x%" PRIx64 : "not mapped", o->parent.frame);
            out_add_check(o, "cow-parent-keeps-old", o->parent.mapped && o->parent.frame == o->diff.old_frame,
                  "COW: the other process that shared the page (the parent, or a child when the parent writes after fork) still maps the old frame", e, a);
        }
    }
}

static void out_checks(out_fault *o, uint64_t pf_write, uint64_t pf_user, uint64_t pf_instr)
{
    char e[64], a[64];
    o->nchecks = 0;
    if (!o->have_after)
        return; /* nothing to compare: the checks are left out, never passed */
    if (!o->have_signal && !o->fixed_up) {
        check_resolved(o, pf_write, pf_user, pf_instr);
        return;
    }
    snprintf(a, sizeof a, "%s", o->diff.summary);
    out_add_check(o, "pte-unchanged", o->diff.unchanged, "a refused access leaves the page-table entries as they were",
          "unchanged", a);
    if (o->have_signal) {
        snprintf(e, sizeof e, "%s pending for pid %d", o->signal_name, o->pid);
        snprintf(a, sizeof a, "%s", o->signal_pending ? "pending" : "not pending");
        if (o->pending_known)
            out_add_check(o, "signal-queued", o->signal_pending, "the signal was queued to current (task->pending)",
                          e, a);
        snprintf(e, sizeof e, "0x%" PRIx64, o->cr2);
        snprintf(a, sizeof a, "0x%" PRIx64, o->sig_addr);
        if (o->signal_known)
            out_add_check(o, "si-addr-is-cr2", o->sig_addr == o->cr2, "the signal's si_addr is CR2", e, a);
        snprintf(e, sizeof e, "a handler, not 0x%" PRIx64, o->fault_ip);
        snprintf(a, sizeof a, o->handler_ip ? "0x%" PRIx64 : "unchanged", o->handler_ip);
        out_add_check(o, "signal-delivered", o->handler_ip && o->handler_ip != o->fault_ip,
              "when exc_page_fault returns, the delivery has pointed pt_regs->ip at the handler", e, a);
    }
    if (o->fixed_up) {
        snprintf(e, sizeof e, "an exception-table fixup, not 0x%" PRIx64, o->fault_ip);
        snprintf(a, sizeof a, "0x%" PRIx64, o->fixup_ip);
        out_add_check(o, "fixup-moved-ip", was_hit(o, "fixup_exception") && o->fixup_ip != o->fault_ip,
              "fixup_exception moved pt_regs->ip off the faulting instruction", e, a);
    }
}

void out_judge(out_fault *o, uint64_t pf_write, uint64_t pf_user, uint64_t pf_instr)
{
    if (o->have_signal)
        out_signal_names(o);
    out_classify(o);
    out_checks(o, pf_write, pf_user, pf_instr);
}

void out_check_scenario(out_fault *o, const scenario_def *sc)
{
    if (!sc || !sc->resolver || !sc->classification)
        return;
    char claim[192], a[64];
    snprintf(claim, sizeof claim, "scenario %s: the fault is resolved by %s", sc->name, sc->resolver);
    snprintf(a, sizeof a, "%s", o->resolver[0] ? o->resolver : "none");
    out_add_check(o, "scenario-resolver", strcmp(o->resolver, sc->resolver) == 0, claim, sc->resolver, a);
    snprintf(claim, sizeof claim, "scenario %s: the outcome's classification begins as promised", sc->name);
    snprintf(a, sizeof a, "%.63s", o->classification);
    out_add_check(o, "scenario-classification", strncmp(o->classification, sc->classification, strlen(sc->classification)) == 0,
          claim, sc->classification, a);
}
