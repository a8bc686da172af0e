/* cmd_select: which captured faults the user asked for. The capture
 * filters by process and address itself (cap_filter); --range,
 * --fault-mode and --nth are decided here on what it read at the stop:
 * the fault's address and its error code's X86_PF_USER bit (the bit's
 * value comes from the kernel's DWARF, enum x86_pf_error_code). */
#include <stdio.h>
#include <string.h>

#include "faultline/cmd.h"

/* Where a captured fault's address and error code may be, first found wins. */
typedef struct value_at {
    enum cap_station_id station;
    const char *name;
} value_at;

static const value_at address_at[] = {
    { CAP_ST_ENTRY, "cr2" }, { CAP_ST_USER_FAULT, "address" }, { CAP_ST_LOCK_VMA, "address" },
    { CAP_ST_MM_FAULT, "address" },
};
static const value_at error_code_at[] = {
    { CAP_ST_ENTRY, "frame.error_code" }, { CAP_ST_EXC, "error_code" }, { CAP_ST_USER_FAULT, "error_code" },
};

static bool find_value(const cap_fault *f, const value_at *at, size_t n, uint64_t *v)
{
    for (size_t i = 0; i < n; i++) {
        const cap_value *cv = cap_value_get(f, at[i].station, at[i].name);
        if (cv) {
            *v = cv->value;
            return true;
        }
    }
    return false;
}

bool cmd_selects_more(const cli_options *o)
{
    return o->range.hi || o->fault_mode || o->nth > 1;
}

/* --addr (its page with --page), when the selection applies it: 1 the
 * fault's address is it, 0 not, -1 the address was not read. */
static int addr_selected(const cli_options *o, const cap_fault *f, fl_error *err)
{
    uint64_t v;
    if (!find_value(f, address_at, sizeof address_at / sizeof address_at[0], &v))
        return fl_fail(err, FL_EUSAGE, "--addr needs the fault's address: keep asm_exc_page_fault or "
                       "do_user_addr_fault in --probes");
    return o->addr_page ? (v & ~(uint64_t)0xfff) == (o->addr & ~(uint64_t)0xfff) : v == o->addr;
}

/* 1 the fault is one the user asked for, 0 not, -1 it cannot be told. */
static int selected(const cap_session *cs, const cli_options *o, bool select_addr, const cap_fault *f,
                    fl_error *err)
{
    uint64_t v;
    int a = select_addr && o->addr ? addr_selected(o, f, err) : 1;
    if (a <= 0)
        return a;
    if (o->range.hi) {
        if (!find_value(f, address_at, sizeof address_at / sizeof address_at[0], &v))
            return fl_fail(err, FL_EUSAGE, "--range needs the fault's address: keep asm_exc_page_fault or "
                           "do_user_addr_fault in --probes");
        if (v < o->range.lo || v >= o->range.hi)
            return 0;
    }
    if (o->fault_mode) {
        const decode_bits *bits = cap_decoder_bits(cs, STATION_DEC_PF_ERROR);
        uint64_t user = bits ? decode_bits_mask(bits, "X86_PF_USER") : 0;
        if (!user)
            return fl_fail(err, FL_EFORMAT, "--fault-mode: this kernel's DWARF has no X86_PF_USER "
                           "(enum x86_pf_error_code) to tell user from kernel faults");
        if (!find_value(f, error_code_at, sizeof error_code_at / sizeof error_code_at[0], &v))
            return fl_fail(err, FL_EUSAGE, "--fault-mode needs the fault's error code: keep asm_exc_page_fault or "
                           "exc_page_fault in --probes");
        if (((v & user) != 0) != (strcmp(o->fault_mode, "user") == 0))
            return 0;
    }
    return 1;
}

bool cmd_fault_table(const cli_options *o)
{
    if (o->count != 0 || o->trace)
        return false;
    return o->entry_log || o->exception_log || (o->probes && cmd_probe_mask(o->probes) == 1u << CAP_ST_ENTRY);
}

int cmd_capture_selected(cap_session *cs, const cli_options *o, bool select_addr, cap_fault *f, unsigned *seen,
                         unsigned *matched, unsigned *passed_over, fl_error *err)
{
    unsigned nth = o->nth > 1 ? (unsigned)o->nth : 1;
    for (;;) {
        if (cap_fault_capture(cs, f, err) < 0)
            return -1;
        ++*seen;
        int sel = selected(cs, o, select_addr, f, err);
        if (sel < 0)
            return -1;
        if (sel && ++*matched >= nth)
            return 0;
        *passed_over += f->passed_over + 1; /* the capture's, and this one */
    }
}
