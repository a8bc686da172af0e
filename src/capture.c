/* capture: one filtered fault, station by station. See capture.h. */
#include "faultline/capture.h"
#include "faultline/util.h"

#include <capstone.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The stations, in the order the fault path reaches them. */
static const char *const station_functions[CAP_ST_COUNT] = {
    "asm_exc_page_fault", "exc_page_fault", "do_user_addr_fault",
    "lock_vma_under_rcu", "handle_mm_fault", "handle_pte_fault",
};

/* DWARF register numbers of the x86-64 psABI (fig. 3.36) to the names the
 * target description uses. The kernel's DWARF locations speak in these. */
static const char *const dwarf_regs[17] = {
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
};

/* The x86 base page (SDM vol. 3, 4.5): vmf->address is CR2 rounded down to it. */
#define BASE_PAGE_MASK (~(uint64_t)0xfff)

typedef struct station_where {
    uint64_t *pcs;
    size_t npcs;
    bool armed;
    bool has_symbol;   /* pcs[0] is the function's own entry (ABI registers valid) */
    bool kprobe_refused;
    char kprobe[128];
} station_where;

struct cap_session {
    kern *k;
    tgt *t;
    cap_options opt;
    station_where where[CAP_ST_COUNT];
    decode_bits flag_bits, err_bits, rflags_bits;
    kern_member *regs_members;
    size_t nregs_members;
    uint64_t regs_size;
    kern_member vmf_member[4];
    bool have_vmf;
    csh cs;
    bool cs_open;
    kern_frame frame;
    char scenario[32];   /* owned copy behind opt.scenario */
    int kprobe_listed[CAP_ST_COUNT]; /* the guest's own blacklist: 1, 0, -1 unknown */
};

const char *cap_station_function(enum cap_station_id id)
{
    return (unsigned)id < CAP_ST_COUNT ? station_functions[id] : NULL;
}

int cap_station_by_name(const char *function)
{
    for (int i = 0; i < CAP_ST_COUNT; i++)
        if (strcmp(station_functions[i], function) == 0)
            return i;
    return -1;
}

const decode_bits *cap_fault_flag_bits(const cap_session *s) { return &s->flag_bits; }
const decode_bits *cap_error_code_bits(const cap_session *s) { return &s->err_bits; }
const decode_bits *cap_rflags_bits(const cap_session *s) { return &s->rflags_bits; }

/* ---- guest access for the kernel layer's location evaluator ---- */

static int frame_reg(void *ctx, int regno, uint64_t *value, fl_error *err)
{
    if (regno < 0 || regno >= (int)(sizeof dwarf_regs / sizeof dwarf_regs[0]))
        return fl_fail(err, FL_ENOTFOUND, "DWARF register %d is not a general register of x86-64", regno);
    return tgt_reg_read((tgt *)ctx, dwarf_regs[regno], value, err);
}

static int frame_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    return tgt_mem_read((tgt *)ctx, addr, buf, len, err);
}

static bool enabled(const cap_session *s, int id)
{
    return s->opt.stations == 0 || (s->opt.stations & (1u << id));
}

static int enum_bits(kern *k, const char *name, decode_bits *out, fl_error *err)
{
    kern_enumerator *list;
    size_t n;
    if (kern_enum_list(k, name, &list, &n, err) < 0)
        return -1;
    int rc = decode_bits_from_enum(list, n, out);
    free(list);
    if (rc < 0)
        return fl_fail(err, FL_EIO, "out of memory decoding enum %s", name);
    return 0;
}

/* RFLAGS bit names come from the target description's flags type for eflags. */
static int rflags_bits(tgt *t, decode_bits *out, fl_error *err)
{
    const tgt_field *f;
    size_t n;
    if (tgt_regmap_fields(tgt_regs(t), "eflags", &f, &n, err) < 0)
        return -1;
    out->bits = calloc(n ? n : 1, sizeof *out->bits);
    out->count = 0;
    if (!out->bits)
        return fl_fail(err, FL_EIO, "out of memory decoding eflags fields");
    for (size_t i = 0; i < n; i++) {
        if (f[i].start != f[i].end || f[i].name[0] == '\0')
            continue; /* multi-bit fields (IOPL) and padding are not flags */
        decode_bit *b = &out->bits[out->count++];
        snprintf(b->name, sizeof b->name, "%s", f[i].name);
        b->mask = 1ull << f[i].start;
    }
    return 0;
}

static int resolve_station(cap_session *s, int id, fl_error *err)
{
    station_where *w = &s->where[id];
    const char *fn = station_functions[id];
    uint64_t addr;
    uint64_t *inl = NULL;
    size_t ninl = 0;
    fl_error tmp;
    bool sym = kern_sym_addr(s->k, fn, &addr, &tmp) == 0;
    /* Entry pcs of inlined copies too: a probe must fire wherever the
     * function's body runs (handle_pte_fault has only inlined copies here). */
    if (kern_inlined_entries(s->k, fn, &inl, &ninl, &tmp) < 0) {
        if (tmp.code != FL_ENOTFOUND) {   /* corrupt DWARF says so, not "neither" */
            if (err)
                *err = tmp;
            return fl_error_prefix(err, "station %s", fn);
        }
        inl = NULL;
        ninl = 0;
    }
    if (!sym && ninl == 0) {
        free(inl);
        return fl_fail(err, FL_ENOTFOUND,
                       "station %s: the kernel has neither a symbol nor an inlined instance of %s",
                       fn, fn);
    }
    w->pcs = calloc(ninl + 1, sizeof *w->pcs);
    if (!w->pcs) {
        free(inl);
        return fl_fail(err, FL_EIO, "out of memory");
    }
    if (sym)
        w->pcs[w->npcs++] = addr;
    for (size_t i = 0; i < ninl; i++)
        w->pcs[w->npcs++] = inl[i];
    w->has_symbol = sym;
    free(inl);
    /* What kprobes would make of this station: the reason faultline exists. */
    if (!sym)
        snprintf(w->kprobe, sizeof w->kprobe, "no symbol (only inlined copies): a kprobe cannot name it");
    else if ((w->kprobe_refused = kern_kprobe_refusal(s->k, addr, w->kprobe, sizeof w->kprobe)))
        ;
    else
        snprintf(w->kprobe, sizeof w->kprobe, "allowed");
    return 0;
}

int cap_session_open(cap_session **out, kern *k, tgt *t, const cap_options *opt, fl_error *err)
{
    cap_session *s = calloc(1, sizeof *s);
    if (!s)
        return fl_fail(err, FL_EIO, "out of memory");
    s->k = k;
    s->t = t;
    s->opt = *opt;
    cap_session_set_filter(s, &opt->filter, opt->scenario);
    for (int i = 0; i < CAP_ST_COUNT; i++)
        s->kprobe_listed[i] = -1;
    if (s->opt.timeout_ms <= 0)
        s->opt.timeout_ms = 30000;
    s->frame.reg = frame_reg;
    s->frame.mem = frame_mem;
    s->frame.ctx = t;
    for (int i = 0; i < CAP_ST_COUNT; i++)
        if (enabled(s, i) && resolve_station(s, i, err) < 0)
            goto fail;
    if (enum_bits(k, "fault_flag", &s->flag_bits, err) < 0 ||
        enum_bits(k, "x86_pf_error_code", &s->err_bits, err) < 0 ||
        rflags_bits(t, &s->rflags_bits, err) < 0)
        goto fail;
    if (kern_type_size(k, "struct pt_regs", &s->regs_size, err) < 0 ||
        kern_struct_members(k, "struct pt_regs", &s->regs_members, &s->nregs_members, err) < 0)
        goto fail;
    static const char *const vmf_paths[4] = { "vm_fault.address", "vm_fault.flags", "vm_fault.pgoff",
                                              "vm_fault.vma" };
    s->have_vmf = true;
    for (int i = 0; i < 4; i++)
        if (kern_member_get(k, vmf_paths[i], &s->vmf_member[i], err) < 0)
            goto fail;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &s->cs) != CS_ERR_OK) {
        fl_fail(err, FL_EIO, "capstone could not open an x86-64 disassembler");
        goto fail;
    }
    s->cs_open = true;
    cs_option(s->cs, CS_OPT_DETAIL, CS_OPT_ON);
    *out = s;
    return 0;
fail:
    fl_error_prefix(err, "preparing the capture");
    cap_session_close(s);
    return -1;
}

void cap_session_set_filter(cap_session *s, const cap_filter *filter, const char *scenario)
{
    s->opt.filter = *filter;
    snprintf(s->scenario, sizeof s->scenario, "%s", scenario ? scenario : "");
    s->opt.scenario = scenario ? s->scenario : NULL;
}

void cap_session_set_kprobe_live(cap_session *s, const int listed[CAP_ST_COUNT])
{
    memcpy(s->kprobe_listed, listed, sizeof s->kprobe_listed);
}

void cap_session_close(cap_session *s)
{
    if (!s)
        return;
    for (int i = 0; i < CAP_ST_COUNT; i++)
        free(s->where[i].pcs);
    decode_bits_free(&s->flag_bits);
    decode_bits_free(&s->err_bits);
    decode_bits_free(&s->rflags_bits);
    free(s->regs_members);
    if (s->cs_open)
        cs_close(&s->cs);
    free(s);
}

/* ---- arming ---- */

static int arm(cap_session *s, int id, bool on, fl_error *err)
{
    station_where *w = &s->where[id];
    if (w->armed == on)
        return 0;
    for (size_t i = 0; i < w->npcs; i++) {
        int rc = on ? tgt_bp_insert(s->t, TGT_BP_HW, w->pcs[i], 1, err)
                    : tgt_bp_remove(s->t, TGT_BP_HW, w->pcs[i], 1, err);
        if (rc < 0) {
            if (on) /* leave nothing half-armed */
                for (size_t j = 0; j < i; j++)
                    tgt_bp_remove(s->t, TGT_BP_HW, w->pcs[j], 1, NULL);
            return fl_error_prefix(err, "%s the breakpoint of station %s at 0x%" PRIx64,
                                   on ? "arming" : "disarming", station_functions[id], w->pcs[i]);
        }
    }
    w->armed = on;
    return 0;
}

static size_t slots_in_use(const cap_session *s)
{
    size_t n = 0;
    for (int i = 0; i < CAP_ST_COUNT; i++)
        if (s->where[i].armed)
            n += s->where[i].npcs;
    return n;
}

/* Arm stations from `from` on, in path order, while slots last: with KVM's
 * four debug registers, later stations are armed as earlier ones fire. */
static int arm_from(cap_session *s, int from, const cap_fault *f, fl_error *err)
{
    for (int i = from; i < CAP_ST_COUNT; i++) {
        if (!enabled(s, i) || f->st[i].hit || s->where[i].armed)
            continue;
        if (s->opt.max_slots > 0 && slots_in_use(s) + s->where[i].npcs > (size_t)s->opt.max_slots)
            break;
        if (arm(s, i, true, err) < 0)
            return -1;
    }
    return 0;
}

static void disarm_all(cap_session *s)
{
    for (int i = 0; i < CAP_ST_COUNT; i++)
        arm(s, i, false, NULL);
}

/* ---- reading a station ---- */

static cap_value *add_value(cap_station *st, const char *name, uint64_t value, unsigned size)
{
    if (st->nvalues >= CAP_MAX_VALUES)
        return NULL;
    cap_value *v = &st->values[st->nvalues++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->value = value;
    v->size = size;
    return v;
}

static void add_decoded(cap_station *st, const char *name, uint64_t value, unsigned size, const decode_bits *b)
{
    cap_value *v = add_value(st, name, value, size);
    if (v)
        decode_format(b, value, v->decoded, sizeof v->decoded);
}

static void disasm_one(cap_session *s, uint64_t pc, char *out, size_t cap, cs_insn **keep)
{
    uint8_t code[16];
    out[0] = '\0';
    if (tgt_mem_read(s->t, pc, code, sizeof code, NULL) < 0) {
        snprintf(out, cap, "(code at 0x%" PRIx64 " not readable)", pc);
        return;
    }
    cs_insn *insn;
    if (cs_disasm(s->cs, code, sizeof code, pc, 1, &insn) != 1) {
        snprintf(out, cap, "(not decodable)");
        return;
    }
    snprintf(out, cap, "%s %s", insn->mnemonic, insn->op_str);
    if (keep)
        *keep = insn;
    else
        cs_free(insn, 1);
}

/* A parameter's value at the station: from its DWARF location, so nothing
 * assumes a calling convention; where the location cannot be evaluated and
 * the pc is the function's own first instruction, the psABI argument
 * register (which DWARF would name there anyway) is the fallback. */
static int param(cap_session *s, int id, uint64_t pc, const char *var, int abi_index, uint64_t *value,
                 cap_station *st)
{
    static const char *const abi_args[6] = { "rdi", "rsi", "rdx", "rcx", "r8", "r9" };
    fl_error e;
    if (kern_var_value(s->k, station_functions[id], var, pc, &s->frame, value, &e) == 0)
        return 0;
    if (s->where[id].has_symbol && pc == s->where[id].pcs[0] && abi_index >= 0 &&
        tgt_reg_read(s->t, abi_args[abi_index], value, NULL) == 0)
        return 0;
    size_t used = strlen(st->note);
    snprintf(st->note + used, sizeof st->note - used, "%s%s: %s", used ? "; " : "", var, e.msg);
    return -1;
}

static void locate(cap_session *s, cap_station *st, uint64_t pc)
{
    kern_line ln;
    st->pc = pc;
    if (kern_line_at(s->k, pc, &ln, NULL) == 0) {
        snprintf(st->location, sizeof st->location, "%s:%d", kern_short_path(s->k, ln.file), ln.line);
        const char *text = kern_source_text(s->k, ln.file, ln.line);
        if (text) {
            while (*text == ' ' || *text == '\t')
                text++;
            snprintf(st->source, sizeof st->source, "%s", text);
        }
    }
    disasm_one(s, pc, st->insn, sizeof st->insn, NULL);
}

/* Who faulted and on what: what the filter looks at. */
typedef struct ident {
    kern_task task;
    bool have_task;
    uint64_t addr;
    bool have_addr;
} ident;

static void current_task(cap_session *s, const char *base_reg, ident *who, cap_station *st)
{
    uint64_t base;
    fl_error e;
    if (tgt_reg_read(s->t, base_reg, &base, &e) == 0 &&
        kern_current(s->k, base, &s->frame, &who->task, &e) == 0) {
        who->have_task = true;
        return;
    }
    size_t used = strlen(st->note);
    snprintf(st->note + used, sizeof st->note - used, "%scurrent: %s", used ? "; " : "", e.msg);
}

/* The faulting instruction and its effective address, from the registers
 * still holding the interrupted context's values at the entry station. */
static void fault_instruction(cap_session *s, cap_fault *f, uint64_t rip, uint64_t user_rsp)
{
    cs_insn *insn = NULL;
    f->fault_ip = rip;
    disasm_one(s, rip, f->user_insn, sizeof f->user_insn, &insn);
    if (!insn)
        return;
    cap_station *st = &f->st[CAP_ST_ENTRY];
    cs_x86 *x = &insn->detail->x86;
    for (int i = 0; i < x->op_count; i++) {
        cs_x86_op *op = &x->operands[i];
        if (op->type != X86_OP_MEM || op->mem.segment != X86_REG_INVALID)
            continue;
        uint64_t ea = (uint64_t)op->mem.disp, v;
        bool ok = true;
        x86_reg regs[2] = { op->mem.base, op->mem.index };
        for (int r = 0; r < 2 && ok; r++) {
            if (regs[r] == X86_REG_INVALID)
                continue;
            if (regs[r] == X86_REG_RIP)
                v = rip + insn->size;
            else if (regs[r] == X86_REG_RSP)
                v = user_rsp;
            else
                ok = tgt_reg_read(s->t, cs_reg_name(s->cs, regs[r]), &v, NULL) == 0;
            ea += r == 0 ? v : v * (uint64_t)op->mem.scale;
        }
        if (ok)
            add_value(st, "insn.effective_address", ea, 8);
        break;
    }
    cs_free(insn, 1);
}

static void read_entry(cap_session *s, cap_fault *f, ident *who)
{
    cap_station *st = &f->st[CAP_ST_ENTRY];
    static const char *const cpu[] = { "cr2", "cr3", "cs", "eflags", "rsp" };
    uint64_t v[5] = { 0 };
    for (int i = 0; i < 5; i++) {
        fl_error e;
        if (tgt_reg_read(s->t, cpu[i], &v[i], &e) < 0) {
            snprintf(st->note, sizeof st->note, "%s", e.msg);
            continue;
        }
        cap_value *cv = add_value(st, cpu[i], v[i], 8);
        if (cv && i == 2)
            decode_selector_format(v[i], cv->decoded, sizeof cv->decoded);
        if (cv && i == 3)
            decode_format(&s->rflags_bits, v[i], cv->decoded, sizeof cv->decoded);
    }
    who->addr = v[0];
    who->have_addr = true;
    /* The hardware frame the CPU pushed: error code, RIP, CS, RFLAGS, RSP, SS
     * (SDM vol. 3, 6.14.2 "64-Bit Mode Stack Frame"). */
    static const char *const frame[6] = { "frame.error_code", "frame.rip", "frame.cs",
                                          "frame.rflags", "frame.rsp", "frame.ss" };
    uint64_t hw[6];
    fl_error e;
    if (tgt_mem_read(s->t, v[4], hw, sizeof hw, &e) < 0) {
        snprintf(st->note, sizeof st->note, "hardware frame: %s", e.msg);
        return;
    }
    for (int i = 0; i < 6; i++) {
        cap_value *cv = add_value(st, frame[i], hw[i], 8);
        if (!cv)
            break;
        if (i == 0)
            decode_format(&s->err_bits, hw[i], cv->decoded, sizeof cv->decoded);
        else if (i == 2 || i == 5)
            decode_selector_format(hw[i], cv->decoded, sizeof cv->decoded);
        else if (i == 3)
            decode_format(&s->rflags_bits, hw[i], cv->decoded, sizeof cv->decoded);
    }
    /* Before swapgs (coming from user mode) the kernel's per-cpu base sits in
     * KERNEL_GS_BASE; from kernel mode GS already is the kernel's. */
    current_task(s, (hw[2] & 3) == 3 ? "k_gs_base" : "gs_base", who, st);
    fault_instruction(s, f, hw[1], hw[4]);
}

static void read_regs_struct(cap_session *s, cap_station *st, uint64_t regs)
{
    uint8_t *buf = malloc(s->regs_size ? s->regs_size : 1);
    fl_error e;
    if (!buf || tgt_mem_read(s->t, regs, buf, s->regs_size, &e) < 0) {
        snprintf(st->note, sizeof st->note, "struct pt_regs at 0x%" PRIx64 ": %s", regs,
                 buf ? e.msg : "out of memory");
        free(buf);
        return;
    }
    for (size_t i = 0; i < s->nregs_members; i++) {
        const kern_member *m = &s->regs_members[i];
        if (m->size == 0 || m->size > 8 || m->offset + m->size > s->regs_size)
            continue;
        uint64_t v = 0;
        memcpy(&v, buf + m->offset, m->size);
        char name[48];
        snprintf(name, sizeof name, "regs->%s", m->name);
        cap_value *cv = add_value(st, name, v, (unsigned)m->size);
        if (!cv)
            break;
        if (strcmp(m->name, "cs") == 0 || strcmp(m->name, "ss") == 0)
            decode_selector_format(v, cv->decoded, sizeof cv->decoded);
        else if (strcmp(m->name, "flags") == 0)
            decode_format(&s->rflags_bits, v, cv->decoded, sizeof cv->decoded);
    }
    free(buf);
}

static void read_station(cap_session *s, int id, uint64_t pc, cap_fault *f, ident *who)
{
    cap_station *st = &f->st[id];
    uint64_t v;
    locate(s, st, pc);
    switch (id) {
    case CAP_ST_ENTRY:
        read_entry(s, f, who);
        return;
    case CAP_ST_EXC:
        if (param(s, id, pc, "regs", 0, &v, st) == 0) {
            add_value(st, "regs", v, 8);
            read_regs_struct(s, st, v);
        }
        if (param(s, id, pc, "error_code", 1, &v, st) == 0)
            add_decoded(st, "error_code", v, 8, &s->err_bits);
        if (tgt_reg_read(s->t, "cr2", &v, NULL) == 0) {
            add_value(st, "cr2", v, 8);
            who->addr = v;
            who->have_addr = true;
        }
        break;
    case CAP_ST_USER_FAULT:
        if (param(s, id, pc, "regs", 0, &v, st) == 0)
            add_value(st, "regs", v, 8);
        if (param(s, id, pc, "error_code", 1, &v, st) == 0)
            add_decoded(st, "error_code", v, 8, &s->err_bits);
        if (param(s, id, pc, "address", 2, &v, st) == 0) {
            add_value(st, "address", v, 8);
            who->addr = v;
            who->have_addr = true;
        }
        break;
    case CAP_ST_LOCK_VMA:
        if (param(s, id, pc, "mm", 0, &v, st) == 0)
            add_value(st, "mm", v, 8);
        if (param(s, id, pc, "address", 1, &v, st) == 0) {
            add_value(st, "address", v, 8);
            who->addr = v;
            who->have_addr = true;
        }
        break;
    case CAP_ST_MM_FAULT:
        if (param(s, id, pc, "vma", 0, &v, st) == 0)
            add_value(st, "vma", v, 8);
        if (param(s, id, pc, "address", 1, &v, st) == 0) {
            add_value(st, "address", v, 8);
            who->addr = v;
            who->have_addr = true;
        }
        if (param(s, id, pc, "flags", 2, &v, st) == 0) {
            v &= 0xffffffffu; /* unsigned int: the upper half of the register is not the value */
            add_decoded(st, "flags", v, 4, &s->flag_bits);
        }
        if (param(s, id, pc, "regs", 3, &v, st) == 0)
            add_value(st, "regs", v, 8);
        break;
    case CAP_ST_PTE_FAULT:
        if (param(s, id, pc, "vmf", -1, &v, st) == 0) {
            add_value(st, "vmf", v, 8);
            static const char *const names[4] = { "vmf->address", "vmf->flags", "vmf->pgoff", "vmf->vma" };
            for (int i = 0; i < 4; i++) {
                const kern_member *m = &s->vmf_member[i];
                uint64_t mv = 0;
                fl_error e;
                if (m->size > 8 || tgt_mem_read(s->t, v + m->offset, &mv, m->size, &e) < 0) {
                    snprintf(st->note, sizeof st->note, "%s: %s", names[i], m->size > 8 ? "too wide" : e.msg);
                    continue;
                }
                cap_value *cv = add_value(st, names[i], mv, (unsigned)m->size);
                if (cv && i == 1)
                    decode_format(&s->flag_bits, mv, cv->decoded, sizeof cv->decoded);
                if (i == 0) {
                    who->addr = mv;
                    who->have_addr = true;
                }
            }
        }
        break;
    }
    current_task(s, "gs_base", who, st);
}

static bool filter_match(const cap_session *s, const ident *who, int id)
{
    const cap_filter *fl = &s->opt.filter;
    if ((fl->pid || fl->comm[0]) && !who->have_task)
        return false;
    if (fl->pid && who->task.pid != fl->pid)
        return false;
    if (fl->comm[0] && strncmp(who->task.comm, fl->comm, sizeof who->task.comm) != 0)
        return false;
    if (fl->addr) {
        if (!who->have_addr)
            return false;
        /* handle_pte_fault only sees the page */
        bool page = fl->addr_page || id == CAP_ST_PTE_FAULT;
        if (page ? (who->addr & BASE_PAGE_MASK) != (fl->addr & BASE_PAGE_MASK) : who->addr != fl->addr)
            return false;
    }
    return true;
}

static int station_at(const cap_session *s, uint64_t pc)
{
    for (int i = 0; i < CAP_ST_COUNT; i++)
        if (s->where[i].armed)
            for (size_t j = 0; j < s->where[i].npcs; j++)
                if (s->where[i].pcs[j] == pc)
                    return i;
    return -1;
}

/* Run the guest to its next stop, at most ms; with an idle hook, the guest
 * runs in small polls so the hook (console draining) keeps up. */
static int run_to_stop(cap_session *s, int ms, fl_error *err)
{
    tgt_stop stop;
    if (!s->opt.idle)
        return tgt_continue(s->t, &stop, ms, err);
    if (tgt_resume(s->t, err) < 0)
        return -1;
    double deadline = fl_now_s() + ms / 1000.0;
    for (;;) {
        int r = tgt_poll_stop(s->t, &stop, 2, err);
        if (r < 0)
            return -1;
        if (r == 1)
            break;
        if (s->opt.idle(s->opt.idle_ctx) != 0) {
            tgt_interrupt(s->t, &stop, 2000, NULL);
            return fl_fail(err, FL_EINTR, "the capture was interrupted while the guest ran");
        }
        if (fl_now_s() > deadline) {
            tgt_interrupt(s->t, &stop, 2000, NULL);
            return fl_fail(err, FL_ETIMEOUT, "no stop within %d ms", ms);
        }
    }
    if (stop.kind != TGT_STOP_SIGNAL)
        return fl_fail(err, FL_ECLOSED, "the guest %s (code %d) during the capture",
                       stop.kind == TGT_STOP_EXITED ? "exited" : "was killed", stop.code);
    return 0;
}

static void build_checks(const cap_session *s, cap_fault *f);

int cap_fault_capture(cap_session *s, cap_fault *f, fl_error *err)
{
    memset(f, 0, sizeof *f);
    int first = -1, last = -1;
    for (int i = 0; i < CAP_ST_COUNT; i++) {
        f->st[i].enabled = enabled(s, i);
        f->st[i].kprobe_refused = s->where[i].kprobe_refused;
        snprintf(f->st[i].kprobe, sizeof f->st[i].kprobe, "%s", s->where[i].kprobe);
        if (f->st[i].enabled) {
            if (first < 0)
                first = i;
            last = i;
        }
    }
    if (first < 0)
        return fl_fail(err, FL_EUSAGE, "no station is enabled");
    double t0 = fl_now_s();
    int rc = -1;
    bool matched = false;
    if (arm_from(s, 0, f, err) < 0)
        goto out;
    for (;;) {
        int left = (int)((t0 + s->opt.timeout_ms / 1000.0 - fl_now_s()) * 1000);
        fl_error wait_err = { 0 };
        if (left <= 0 || run_to_stop(s, left, &wait_err) < 0) {
            if (left > 0 && wait_err.code != FL_ETIMEOUT)
                fl_fail(err, wait_err.code, "%s", wait_err.msg);
            else
                fl_fail(err, FL_ETIMEOUT, "%s within %d ms (%u other faults passed over)",
                        matched ? "the fault did not reach every station" : "the filtered fault did not happen",
                        s->opt.timeout_ms, f->passed_over);
            goto out;
        }
        uint64_t pc;
        if (tgt_reg_read(s->t, "rip", &pc, err) < 0)
            goto out;
        int id = station_at(s, pc);
        if (id < 0) {
            fl_fail(err, FL_EPROTO, "the guest stopped at 0x%" PRIx64 ", where no station is armed", pc);
            goto out;
        }
        ident who = { 0 };
        cap_station saved = f->st[id];
        read_station(s, id, pc, f, &who);
        bool ours = matched ? (!s->opt.filter.pid || (who.have_task && who.task.pid == s->opt.filter.pid))
                            : (id == first && filter_match(s, &who, id));
        if (!ours) {
            if (!matched && id == first)
                f->passed_over++;
            f->st[id] = saved;
            continue;
        }
        if (!matched) {
            f->task = who.task;
            matched = true;
        }
        f->st[id].hit = true;
        for (int j = first; j < id; j++)
            if (f->st[j].enabled && !f->st[j].hit && !f->st[j].note[0])
                snprintf(f->st[j].note, sizeof f->st[j].note, "not reached: this fault went from %s to %s without it",
                         j > first ? station_functions[first] : "entry", station_functions[id]);
        if (arm(s, id, false, err) < 0)
            goto out;
        for (int j = 0; j < id; j++)
            if (s->where[j].armed && arm(s, j, false, err) < 0)
                goto out;
        if (id == last) {
            rc = 0;
            break;
        }
        if (arm_from(s, id + 1, f, err) < 0)
            goto out;
    }
out:
    f->seconds = fl_now_s() - t0;
    disarm_all(s);
    if (matched)
        build_checks(s, f);
    return rc;
}

const cap_value *cap_value_get(const cap_fault *f, enum cap_station_id st, const char *name)
{
    if ((unsigned)st >= CAP_ST_COUNT || !f->st[st].hit)
        return NULL;
    for (size_t i = 0; i < f->st[st].nvalues; i++)
        if (strcmp(f->st[st].values[i].name, name) == 0)
            return &f->st[st].values[i];
    return NULL;
}

size_t cap_checks_failed(const cap_fault *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nchecks; i++)
        n += !f->checks[i].ok;
    return n;
}

/* ---- checks: every one computed from two live readings ---- */

static void check(cap_fault *f, const char *name, bool ok, const char *claim, const char *expected,
                  const char *actual)
{
    if (f->nchecks >= CAP_MAX_CHECKS)
        return;
    cap_check *c = &f->checks[f->nchecks++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->claim, sizeof c->claim, "%s", claim);
    snprintf(c->expected, sizeof c->expected, "%s", expected);
    snprintf(c->actual, sizeof c->actual, "%s", actual);
    c->ok = ok;
}

static void check_eq(cap_fault *f, const char *name, const char *claim, const cap_value *want, const cap_value *got,
                     uint64_t got_mask)
{
    if (!want || !got)
        return; /* one side was not captured: nothing to compare */
    char e[32], a[32];
    uint64_t w = want->value & got_mask, g = got->value & got_mask;
    snprintf(e, sizeof e, "0x%" PRIx64, w);
    snprintf(a, sizeof a, "0x%" PRIx64, g);
    check(f, name, w == g, claim, e, a);
}

static void check_bit_agrees(cap_fault *f, const char *name, const char *claim, bool hw, const char *hw_name,
                             bool sw, const char *sw_name)
{
    char e[64], a[64];
    snprintf(e, sizeof e, "%s %s", sw_name, hw ? "set" : "clear");
    snprintf(a, sizeof a, "%s %s (%s %s)", sw_name, sw ? "set" : "clear", hw_name, hw ? "set" : "clear");
    check(f, name, hw == sw, claim, e, a);
}

static void check_sum(cap_fault *f, const char *name, const char *what, const decode_bits *b, const cap_value *v)
{
    if (!v)
        return;
    const decode_bit *parts[64];
    uint64_t sum, unknown;
    decode_value(b, v->value, parts, 64, &sum, &unknown);
    char claim[192], e[32], a[32];
    snprintf(claim, sizeof claim, "the named bits of %s add up to the raw value (no unnamed bits)", what);
    snprintf(e, sizeof e, "0x%" PRIx64, v->value);
    snprintf(a, sizeof a, "0x%" PRIx64, sum);
    check(f, name, sum == v->value && unknown == 0, claim, e, a);
}

static void build_checks(const cap_session *s, cap_fault *f)
{
    const uint64_t all = ~(uint64_t)0;
    const cap_value *cr2 = cap_value_get(f, CAP_ST_ENTRY, "cr2");
    const cap_value *ferr = cap_value_get(f, CAP_ST_ENTRY, "frame.error_code");
    const cap_value *fcs = cap_value_get(f, CAP_ST_ENTRY, "frame.cs");
    const cap_value *eflags = cap_value_get(f, CAP_ST_ENTRY, "eflags");
    const cap_value *xerr = cap_value_get(f, CAP_ST_EXC, "error_code");
    const cap_value *xregs = cap_value_get(f, CAP_ST_EXC, "regs");
    const cap_value *rcs = cap_value_get(f, CAP_ST_EXC, "regs->cs");
    const cap_value *uerr = cap_value_get(f, CAP_ST_USER_FAULT, "error_code");
    const cap_value *mflags = cap_value_get(f, CAP_ST_MM_FAULT, "flags");
    const cap_value *pflags = cap_value_get(f, CAP_ST_PTE_FAULT, "vmf->flags");
    const cap_value *ecode = ferr ? ferr : xerr ? xerr : uerr;
    const cap_value *flags = mflags ? mflags : pflags;
    char e[64], a[64];

    if (cr2 && s->opt.filter.addr) {
        snprintf(e, sizeof e, "0x%" PRIx64, s->opt.filter.addr);
        snprintf(a, sizeof a, "0x%" PRIx64, cr2->value);
        check(f, "cr2-matches-target", cr2->value == s->opt.filter.addr,
              "CR2 at asm_exc_page_fault is the address the trigger announced", e, a);
    }
    check_eq(f, "ea-matches-cr2", "the faulting instruction's effective address is CR2",
             cr2, cap_value_get(f, CAP_ST_ENTRY, "insn.effective_address"), all);
    check_eq(f, "error-code-exc", "exc_page_fault's error_code is the one the CPU pushed", ferr, xerr, all);
    check_eq(f, "error-code-user-fault", "do_user_addr_fault's error_code is the one the CPU pushed", ferr, uerr, all);
    static const char *const frame_fields[5][2] = {
        { "frame.rip", "regs->ip" }, { "frame.cs", "regs->cs" }, { "frame.rflags", "regs->flags" },
        { "frame.rsp", "regs->sp" }, { "frame.ss", "regs->ss" },
    };
    for (int i = 0; i < 5; i++) {
        char name[48], claim[192];
        snprintf(name, sizeof name, "pt-regs-%s", frame_fields[i][1] + 6);
        snprintf(claim, sizeof claim, "pt_regs->%s holds the hardware frame's %s", frame_fields[i][1] + 6,
                 frame_fields[i][0] + 6);
        check_eq(f, name, claim, cap_value_get(f, CAP_ST_ENTRY, frame_fields[i][0]),
                 cap_value_get(f, CAP_ST_EXC, frame_fields[i][1]), all);
    }
    const cap_value *addr_of[3] = { cap_value_get(f, CAP_ST_USER_FAULT, "address"),
                                    cap_value_get(f, CAP_ST_LOCK_VMA, "address"),
                                    cap_value_get(f, CAP_ST_MM_FAULT, "address") };
    static const char *const addr_names[3][2] = {
        { "address-user-fault", "do_user_addr_fault's address is CR2" },
        { "address-lock-vma", "lock_vma_under_rcu's address is CR2" },
        { "address-mm-fault", "handle_mm_fault's address is CR2" },
    };
    for (int i = 0; i < 3; i++)
        check_eq(f, addr_names[i][0], addr_names[i][1], cr2, addr_of[i], all);
    check_eq(f, "vmf-address-page", "vmf->address is CR2's page (4 KiB aligned)", cr2,
             cap_value_get(f, CAP_ST_PTE_FAULT, "vmf->address"), BASE_PAGE_MASK);
    check_eq(f, "vmf-flags", "vmf->flags are handle_mm_fault's flags", mflags, pflags, all);
    check_eq(f, "regs-passed-down", "handle_mm_fault gets the pt_regs that exc_page_fault got", xregs,
             cap_value_get(f, CAP_ST_MM_FAULT, "regs"), all);
    if (f->task.mm)
        check_eq(f, "mm-is-current", "lock_vma_under_rcu searches current->mm",
                 &(cap_value){ .value = f->task.mm }, cap_value_get(f, CAP_ST_LOCK_VMA, "mm"), all);

    uint64_t pf_w = decode_bits_mask(&s->err_bits, "X86_PF_WRITE");
    uint64_t pf_u = decode_bits_mask(&s->err_bits, "X86_PF_USER");
    uint64_t ff_w = decode_bits_mask(&s->flag_bits, "FAULT_FLAG_WRITE");
    uint64_t ff_u = decode_bits_mask(&s->flag_bits, "FAULT_FLAG_USER");
    if (ecode && flags && pf_w && ff_w)
        check_bit_agrees(f, "write-bit-agrees", "the error code's W bit became FAULT_FLAG_WRITE",
                         ecode->value & pf_w, "X86_PF_WRITE", flags->value & ff_w, "FAULT_FLAG_WRITE");
    if (ecode && flags && pf_u && ff_u)
        check_bit_agrees(f, "user-bit-agrees", "the error code's U bit became FAULT_FLAG_USER",
                         ecode->value & pf_u, "X86_PF_USER", flags->value & ff_u, "FAULT_FLAG_USER");
    const cap_value *cs = rcs ? rcs : fcs;
    if (ecode && cs && pf_u) {
        bool user = (cs->value & 3) == 3;
        snprintf(e, sizeof e, "RPL %s (X86_PF_USER %s)", (ecode->value & pf_u) ? "3" : "0",
                 (ecode->value & pf_u) ? "set" : "clear");
        snprintf(a, sizeof a, "RPL %u (cs 0x%" PRIx64 ")", (unsigned)(cs->value & 3), cs->value);
        check(f, "cpl-agrees-user-bit", user == ((ecode->value & pf_u) != 0),
              "the interrupted CS's privilege level agrees with the error code's U bit", e, a);
    }
    uint64_t rf_if = decode_bits_mask(&s->rflags_bits, "IF");
    if (eflags && rf_if) {
        snprintf(a, sizeof a, "IF %s (eflags 0x%" PRIx64 ")", (eflags->value & rf_if) ? "set" : "clear",
                 eflags->value);
        check(f, "if-cleared-by-gate", !(eflags->value & rf_if),
              "the page-fault gate cleared IF: the CPU entered with interrupts off", "IF clear", a);
    }
    check_sum(f, "error-code-sum", "the error code", &s->err_bits, ecode);
    check_sum(f, "fault-flags-sum", "handle_mm_fault's flags", &s->flag_bits, flags);
    if (s->opt.filter.pid && f->task.pid) {
        snprintf(e, sizeof e, "%d", s->opt.filter.pid);
        snprintf(a, sizeof a, "%d (%s)", f->task.pid, f->task.comm);
        check(f, "current-is-trigger", f->task.pid == s->opt.filter.pid,
              "current at the entry station is the process that announced the fault", e, a);
    }

    /* kprobes' verdict, derived from vmlinux, against the running kernel's list. */
    for (int i = 0; i < CAP_ST_COUNT; i++) {
        if (!f->st[i].enabled || s->kprobe_listed[i] < 0 || !s->where[i].npcs)
            continue;
        char name[48], claim[192];
        snprintf(name, sizeof name, "kprobe-verdict-%s", station_functions[i]);
        snprintf(claim, sizeof claim, "the guest's own kprobe blacklist agrees that %s is %s", station_functions[i],
                 s->where[i].kprobe_refused ? "refused" : "not listed");
        snprintf(e, sizeof e, "%s", s->where[i].kprobe_refused ? "listed" : "not listed");
        snprintf(a, sizeof a, "%s", s->kprobe_listed[i] ? "listed" : "not listed");
        check(f, name, s->where[i].kprobe_refused == (s->kprobe_listed[i] == 1), claim, e, a);
    }

    /* What the scenario itself promises (vm/triggers/trigger.c). */
    const char *sc = s->opt.scenario;
    if (!sc || !ecode)
        return;
    struct { const char *sc; bool w, u; } want[] = {
        { "write", true, true }, { "read", false, true }, { "kernel-write", true, false },
        { "write-forked", true, true },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strcmp(sc, want[i].sc) != 0)
            continue;
        char claim[192];
        snprintf(claim, sizeof claim, "scenario %s: a %s access from %s mode", sc, want[i].w ? "write" : "read",
                 want[i].u ? "user" : "kernel");
        snprintf(e, sizeof e, "X86_PF_WRITE %s, X86_PF_USER %s", want[i].w ? "set" : "clear",
                 want[i].u ? "set" : "clear");
        snprintf(a, sizeof a, "X86_PF_WRITE %s, X86_PF_USER %s", (ecode->value & pf_w) ? "set" : "clear",
                 (ecode->value & pf_u) ? "set" : "clear");
        check(f, "scenario-access", ((ecode->value & pf_w) != 0) == want[i].w && ((ecode->value & pf_u) != 0) == want[i].u,
              claim, e, a);
    }
}
