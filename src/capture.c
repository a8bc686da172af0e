/* capture: one filtered fault, station by station, driven by the rows of
 * station.c and checks.c. See capture.h. */
#include "faultline/capture.h"
#include "faultline/frame.h"
#include "faultline/util.h"

#include <capstone.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* psABI integer argument registers, in order (fig. 3.4): where a parameter
 * is at a function's own first instruction when DWARF has no location. */
static const char *const abi_args[6] = { "rdi", "rsi", "rdx", "rcx", "r8", "r9" };

/* The x86 base page (Intel SDM vol. 3, 4.5). */
#define BASE_PAGE_MASK (~(uint64_t)0xfff)
/* The hardware frame: six 8-byte slots (Intel SDM vol. 3, 6.14.2). */
#define HW_FRAME_SLOTS 6

/* What a stop needs of one breakpoint pc, resolved before any stop. */
typedef struct pc_info {
    uint64_t pc;
    bool located;        /* location/source/insn filled */
    char location[192];
    char source[192];
    char insn[96];
} pc_info;

/* One value of a row, compiled. */
typedef struct compiled_value {
    const station_value *def;
    const tgt_reg *reg;        /* STATION_REG, STATION_FRAME (the stack pointer) */
    kern_member member;        /* STATION_MEMBER */
    kern_member *members;      /* STATION_STRUCT */
    size_t nmembers;
    uint64_t struct_size;
    int base;                  /* row index of the value holding the pointer, -1 */
    kern_varloc **locs;        /* STATION_PARAM: its location at each of the station's pcs, */
    fl_error *loc_err;         /* ... or why it has none there (resolved when arming) */
    char missing[160];         /* why it cannot be read in this kernel, "" if it can */
} compiled_value;

typedef struct compiled_station {
    station_def row;
    uint64_t *pcs;
    pc_info *info;
    size_t npcs;
    bool armed;
    bool absent;               /* not in this kernel */
    bool has_symbol;           /* pcs[0] is the function's own entry (ABI registers valid) */
    bool kprobe_refused;
    char kprobe[128];
    size_t nvalues;
    compiled_value values[STATION_MAX_VALUES];
} compiled_station;

struct cap_session {
    kern *k;
    tgt *t;
    cap_options opt;
    size_t nstations, ndefaults;
    compiled_station st[CAP_MAX_STATIONS];
    chk_def checks[CAP_MAX_CHECKS];
    size_t nchecks;
    decode_bits bits[STATION_DEC_COUNT];
    const tgt_reg *gs_base, *k_gs_base, *rip;
    csh cs;
    bool cs_open;
    kern_frame frame;
    char scenario[32];   /* owned copy behind opt.scenario */
    int kprobe_listed[CAP_MAX_STATIONS]; /* the guest's own blacklist: 1, 0, -1 unknown */
    cap_stop_hook hook;
    void *hook_ctx;
    cap_station saved;   /* a station as it was before a stop that was not ours */
};

const char *cap_station_function(enum cap_station_id id)
{
    const station_def *row = station_default((size_t)id);
    return row ? row->function : NULL;
}

int cap_station_by_name(const char *function)
{
    return station_default_by_name(function);
}

size_t cap_session_station_count(const cap_session *s)
{
    return s->nstations;
}

const station_def *cap_session_station(const cap_session *s, int i)
{
    return i >= 0 && (size_t)i < s->nstations ? &s->st[i].row : NULL;
}

/* NULL too when this kernel or target names none of the decoder's bits (an
 * older kernel without the enum): checks on them are left out, not failed. */
const decode_bits *cap_decoder_bits(const cap_session *s, enum station_decoder d)
{
    return s && (unsigned)d < STATION_DEC_COUNT && station_decoder_info(d)->source != STATION_BITS_NONE &&
                   s->bits[d].count ? &s->bits[d] : NULL;
}

void cap_session_on_stop(cap_session *s, cap_stop_hook fn, void *ctx)
{
    s->hook = fn;
    s->hook_ctx = ctx;
}

static bool enabled(const cap_session *s, size_t id)
{
    if (id >= s->ndefaults)
        return true; /* added by the caller: asked for */
    return s->opt.stations == 0 || (s->opt.stations & (1u << id));
}

/* ---- decoders: bit names from the kernel's enums and the target's flags ---- */

static int enum_bits(kern *k, const char *name, decode_bits *out, fl_error *err)
{
    kern_enumerator *list;
    size_t n;
    fl_error e;
    if (kern_enum_list(k, name, &list, &n, &e) < 0) {
        if (e.code != FL_ENOTFOUND)
            return fl_fail(err, e.code, "%s", e.msg);
        list = NULL; /* not in this kernel: values show as hex, checks on its bits are left out */
        n = 0;
    }
    int rc = decode_bits_from_enum(list, n, out);
    free(list);
    if (rc < 0)
        return fl_fail(err, FL_EIO, "out of memory decoding enum %s", name);
    return 0;
}

/* Bit names of a register's flags type in the target description. */
static int tdesc_bits(tgt *t, const char *reg, decode_bits *out, fl_error *err)
{
    const tgt_field *f;
    size_t n;
    if (tgt_regmap_fields(tgt_regs(t), reg, &f, &n, err) < 0)
        return -1;
    out->bits = calloc(n ? n : 1, sizeof *out->bits);
    out->count = 0;
    if (!out->bits)
        return fl_fail(err, FL_EIO, "out of memory decoding %s fields", reg);
    for (size_t i = 0; i < n; i++) {
        if (f[i].start != f[i].end || f[i].name[0] == '\0')
            continue; /* multi-bit fields (IOPL) and padding are not flags */
        decode_bit *b = &out->bits[out->count++];
        snprintf(b->name, sizeof b->name, "%s", f[i].name);
        b->mask = 1ull << f[i].start;
    }
    return 0;
}

static int load_decoders(cap_session *s, fl_error *err)
{
    for (int d = 0; d < STATION_DEC_COUNT; d++) {
        const station_decoder_def *info = station_decoder_info(d);
        if (info->source == STATION_BITS_ENUM && enum_bits(s->k, info->from, &s->bits[d], err) < 0)
            return -1;
        if (info->source == STATION_BITS_TDESC && tdesc_bits(s->t, info->from, &s->bits[d], err) < 0)
            return -1;
    }
    return 0;
}

/* ---- compiling a row: everything a stop needs, before any stop ---- */

static void note_append(char *note, size_t cap, const char *fmt, const char *what, const char *msg)
{
    size_t used = strlen(note);
    if (used < cap)
        snprintf(note + used, cap - used, fmt, used ? "; " : "", what, msg);
}

static int find_value(const compiled_station *c, const char *name)
{
    for (size_t i = 0; name && i < c->nvalues; i++)
        if (strcmp(c->values[i].def->name, name) == 0)
            return (int)i;
    return -1;
}

/* A parameter's location at each breakpoint pc, resolved once (the DWARF
 * work); a stop only evaluates it. A pc where it has none keeps the reason
 * for the stop's note (the psABI fallback may still read it there). */
static int locate_param(cap_session *s, compiled_station *c, compiled_value *v, fl_error *err)
{
    v->locs = calloc(c->npcs, sizeof *v->locs);
    v->loc_err = calloc(c->npcs, sizeof *v->loc_err);
    if (!v->locs || !v->loc_err)
        return fl_fail(err, FL_ENOMEM, "out of memory locating %s", v->def->from);
    for (size_t i = 0; i < c->npcs; i++)
        if (kern_var_locate(s->k, c->row.function, v->def->from, c->pcs[i], &v->locs[i], &v->loc_err[i]) < 0)
            v->locs[i] = NULL;
    return 0;
}

static void compiled_value_free(compiled_value *v, size_t npcs)
{
    for (size_t i = 0; v->locs && i < npcs; i++)
        kern_varloc_free(v->locs[i]);
    free(v->locs);
    free(v->loc_err);
    free(v->members);
}

static void compile_value(cap_session *s, compiled_station *c, size_t i)
{
    compiled_value *v = &c->values[i];
    const station_value *d = &c->row.values[i];
    fl_error e = { 0 };
    v->def = d;
    v->base = find_value(c, d->base);
    int rc = 0;
    switch (d->read) {
    case STATION_REG:
    case STATION_FRAME:
        v->reg = tgt_regmap_find(tgt_regs(s->t), d->from);
        if (!v->reg)
            rc = fl_fail(&e, FL_ENOTFOUND, "the target has no register %s", d->from);
        break;
    case STATION_MEMBER:
        rc = kern_member_get(s->k, d->from, &v->member, &e);
        if (rc == 0 && v->member.size > 8)
            rc = fl_fail(&e, FL_ENOTFOUND, "%s is %" PRIu64 " bytes, wider than a value", d->from, v->member.size);
        break;
    case STATION_STRUCT:
        rc = kern_type_size(s->k, d->from, &v->struct_size, &e);
        if (rc == 0)
            rc = kern_struct_members(s->k, d->from, &v->members, &v->nmembers, &e);
        break;
    case STATION_PARAM:
        rc = locate_param(s, c, v, &e);
        break;
    case STATION_INSN_EA:
        break;
    }
    if ((d->read == STATION_MEMBER || d->read == STATION_STRUCT || d->read == STATION_INSN_EA) && v->base < 0)
        rc = fl_fail(&e, FL_EUSAGE, "its base value %s is not an earlier value of the row", d->base ? d->base : "(none)");
    if (rc < 0)
        snprintf(v->missing, sizeof v->missing, "%s", e.msg);
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

/* Line and source of a breakpoint pc, and its disassembly: all known
 * before any stop. The code bytes come from the guest; if they cannot be
 * read yet (a guest halted before paging is on), the first stop there
 * disassembles them: a guest read, no kernel lookup. */
static void disasm_pc(cap_session *s, pc_info *p)
{
    disasm_one(s, p->pc, p->insn, sizeof p->insn, NULL);
    p->located = strncmp(p->insn, "(code at", 8) != 0;
}

static void locate_pc(cap_session *s, pc_info *p)
{
    kern_line ln;
    if (kern_line_at(s->k, p->pc, &ln, NULL) == 0) {
        snprintf(p->location, sizeof p->location, "%s:%d", kern_short_path(s->k, ln.file), ln.line);
        const char *text = kern_source_text(s->k, ln.file, ln.line);
        if (text) {
            while (*text == ' ' || *text == '\t')
                text++;
            snprintf(p->source, sizeof p->source, "%s", text);
        }
    }
    disasm_pc(s, p);
}

/* Breakpoint pcs: the symbol and the entry of every inlined copy, so the
 * probe fires wherever the function's body runs (handle_pte_fault has only
 * inlined copies in this kernel). 0 pcs: not in this kernel. */
static int station_pcs(cap_session *s, compiled_station *c, fl_error *err)
{
    const char *fn = c->row.function;
    uint64_t addr, *inl = NULL;
    size_t ninl = 0;
    fl_error tmp;
    bool sym = kern_sym_addr(s->k, fn, &addr, &tmp) == 0;
    if (kern_inlined_entries(s->k, fn, &inl, &ninl, &tmp) < 0) {
        if (tmp.code != FL_ENOTFOUND)
            return fl_fail(err, tmp.code, "%s", tmp.msg);
        inl = NULL;
        ninl = 0;
    }
    c->pcs = calloc(ninl + 1, sizeof *c->pcs);
    c->info = calloc(ninl + 1, sizeof *c->info);
    if (!c->pcs || !c->info) {
        free(inl);
        return fl_fail(err, FL_EIO, "out of memory");
    }
    if (sym)
        c->pcs[c->npcs++] = addr;
    for (size_t i = 0; i < ninl; i++)
        c->pcs[c->npcs++] = inl[i];
    free(inl);
    c->has_symbol = sym;
    if (!c->row.kprobe_applies)
        ; /* the row does not ask what kprobes would make of it */
    else if (!sym)
        snprintf(c->kprobe, sizeof c->kprobe, "no symbol (only inlined copies): a kprobe cannot name it");
    else if (!(c->kprobe_refused = kern_kprobe_refusal(s->k, addr, c->kprobe, sizeof c->kprobe)))
        snprintf(c->kprobe, sizeof c->kprobe, "allowed");
    return 0;
}

static int compile_station(cap_session *s, size_t id, fl_error *err)
{
    compiled_station *c = &s->st[id];
    if (station_pcs(s, c, err) < 0)
        return -1;
    if (c->npcs == 0) {
        if (s->opt.explicit_stations)
            return fl_fail(err, FL_ENOTFOUND,
                           "station %s: the kernel has neither a symbol nor an inlined instance of %s",
                           c->row.function, c->row.function);
        c->absent = true;
        snprintf(c->kprobe, sizeof c->kprobe, "not in this kernel");
        return 0;
    }
    c->nvalues = station_value_count(&c->row);
    for (size_t i = 0; i < c->nvalues; i++)
        compile_value(s, c, i);
    for (size_t i = 0; i < c->npcs; i++) {
        c->info[i].pc = c->pcs[i];
        locate_pc(s, &c->info[i]);
    }
    return 0;
}

static int add_row(cap_session *s, const station_def *row, fl_error *err)
{
    if (s->nstations >= CAP_MAX_STATIONS)
        return fl_fail(err, FL_EUSAGE, "station %s: the table is full (%d stations)", row->function,
                       CAP_MAX_STATIONS);
    size_t id = s->nstations++;
    s->st[id].row = *row;
    s->kprobe_listed[id] = -1;
    if (enabled(s, id) && compile_station(s, id, err) < 0)
        return -1;
    return (int)id;
}

int cap_session_add_station(cap_session *s, const station_def *row, fl_error *err)
{
    return add_row(s, row, err);
}

int cap_session_add_check(cap_session *s, const chk_def *row, fl_error *err)
{
    if (s->nchecks >= CAP_MAX_CHECKS)
        return fl_fail(err, FL_EUSAGE, "check %s: the table is full (%d checks)", row->name, CAP_MAX_CHECKS);
    s->checks[s->nchecks++] = *row;
    return 0;
}

static int session_init(cap_session *s, fl_error *err)
{
    s->frame = frame_over_target(s->t);
    s->gs_base = tgt_regmap_find(tgt_regs(s->t), "gs_base");
    s->k_gs_base = tgt_regmap_find(tgt_regs(s->t), "k_gs_base");
    s->rip = tgt_regmap_find(tgt_regs(s->t), "rip");
    if (!s->rip)
        return fl_fail(err, FL_EPROTO, "the target describes no rip register");
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &s->cs) != CS_ERR_OK)
        return fl_fail(err, FL_EIO, "capstone could not open an x86-64 disassembler");
    s->cs_open = true;
    cs_option(s->cs, CS_OPT_DETAIL, CS_OPT_ON);
    if (load_decoders(s, err) < 0)
        return -1;
    s->ndefaults = station_default_count();
    for (size_t i = 0; i < s->ndefaults; i++)
        if (add_row(s, station_default(i), err) < 0)
            return -1;
    for (size_t i = 0; i < chk_default_count(); i++)
        s->checks[s->nchecks++] = *chk_default(i);
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
    if (s->opt.timeout_ms <= 0)
        s->opt.timeout_ms = 30000;
    if (session_init(s, err) < 0) {
        fl_error_prefix(err, "preparing the capture");
        cap_session_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void cap_session_set_filter(cap_session *s, const cap_filter *filter, const char *scenario)
{
    s->opt.filter = *filter;
    snprintf(s->scenario, sizeof s->scenario, "%s", scenario ? scenario : "");
    s->opt.scenario = scenario ? s->scenario : NULL;
}

void cap_session_set_kprobe_live(cap_session *s, const int listed[CAP_ST_COUNT])
{
    for (int i = 0; i < CAP_ST_COUNT && i < CAP_MAX_STATIONS; i++)
        s->kprobe_listed[i] = listed[i];
}

void cap_session_close(cap_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nstations; i++) {
        free(s->st[i].pcs);
        free(s->st[i].info);
        for (size_t j = 0; j < s->st[i].nvalues; j++)
            compiled_value_free(&s->st[i].values[j], s->st[i].npcs);
    }
    for (int d = 0; d < STATION_DEC_COUNT; d++)
        decode_bits_free(&s->bits[d]);
    if (s->cs_open)
        cs_close(&s->cs);
    free(s);
}

/* ---- arming ---- */

static int arm(cap_session *s, size_t id, bool on, fl_error *err)
{
    compiled_station *c = &s->st[id];
    if (c->armed == on)
        return 0;
    for (size_t i = 0; i < c->npcs; i++) {
        int rc = on ? tgt_bp_insert(s->t, TGT_BP_HW, c->pcs[i], 1, err)
                    : tgt_bp_remove(s->t, TGT_BP_HW, c->pcs[i], 1, err);
        if (rc < 0) {
            if (on) /* leave nothing half-armed */
                for (size_t j = 0; j < i; j++)
                    tgt_bp_remove(s->t, TGT_BP_HW, c->pcs[j], 1, NULL);
            return fl_error_prefix(err, "%s the breakpoint of station %s at 0x%" PRIx64,
                                   on ? "arming" : "disarming", c->row.function, c->pcs[i]);
        }
    }
    c->armed = on;
    return 0;
}

static size_t slots_in_use(const cap_session *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nstations; i++)
        if (s->st[i].armed)
            n += s->st[i].npcs;
    return n;
}

static bool usable(const cap_session *s, size_t id)
{
    return enabled(s, id) && !s->st[id].absent;
}

/* Does station id fit in the debug registers left? The caller's limit
 * (max_slots), else the stub's once it refused one (KVM's four, learnt from
 * its E22: tgt_bp_slots); TCG has none. */
static bool fits(const cap_session *s, size_t id)
{
    size_t n = s->st[id].npcs, stub = tgt_bp_slots(s->t);
    if (s->opt.max_slots > 0 && slots_in_use(s) + n > (size_t)s->opt.max_slots)
        return false;
    return stub == 0 || tgt_bp_hw_in_use(s->t) + n <= stub;
}

/* Arm stations from `from` to `to` (exclusive), in path order, while slots
 * last: with KVM's four debug registers, later stations are armed as earlier
 * ones fire. A refusal for want of a slot while some station is armed is
 * that limit being learnt, not an error. */
static int arm_range(cap_session *s, size_t from, size_t to, const cap_fault *f, fl_error *err)
{
    for (size_t i = from; i < to && i < s->nstations; i++) {
        if (!usable(s, i) || f->st[i].hit || s->st[i].armed)
            continue;
        if (!fits(s, i))
            break;
        fl_error e = { 0 };
        if (arm(s, i, true, &e) == 0)
            continue;
        if (e.code == FL_ENOSLOT && tgt_bp_slots(s->t) > 0 && slots_in_use(s) > 0)
            break;
        if (err)
            *err = e;
        return -1;
    }
    return 0;
}

static void disarm_all(cap_session *s)
{
    for (size_t i = 0; i < s->nstations; i++)
        arm(s, i, false, NULL);
}

/* ---- reading a station: a loop over its compiled row ---- */

/* One stop's reads, memoised: the filter reads a few values first, the rest
 * only once the fault is ours. */
typedef struct stop_ctx {
    cap_session *s;
    compiled_station *c;
    cap_station *out;
    cap_fault *f;
    uint64_t pc;
    uint64_t raw[STATION_MAX_VALUES];
    signed char state[STATION_MAX_VALUES]; /* 0 unread, 1 read, -1 failed */
    uint64_t hw[HW_FRAME_SLOTS];
    signed char hw_state;
} stop_ctx;

static void stop_note(stop_ctx *x, const char *what, const char *msg)
{
    note_append(x->out->note, sizeof x->out->note, "%s%s: %s", what, msg);
}

static int read_hw_frame(stop_ctx *x, const compiled_value *v)
{
    if (x->hw_state == 0) {
        uint64_t sp;
        fl_error e;
        x->hw_state = -1;
        if (tgt_reg_read_r(x->s->t, v->reg, &sp, &e) < 0 || tgt_mem_read(x->s->t, sp, x->hw, sizeof x->hw, &e) < 0)
            stop_note(x, "hardware frame", e.msg);
        else
            x->hw_state = 1;
    }
    return x->hw_state > 0 ? 0 : -1;
}

/* A parameter's value at the station: from its DWARF location, so nothing
 * assumes a calling convention; where the location cannot be evaluated and
 * the pc is the function's own first instruction, the psABI argument
 * register (which DWARF would name there anyway) is the fallback. */
static int read_param(stop_ctx *x, const compiled_value *v, uint64_t *value)
{
    compiled_station *c = x->c;
    const station_value *d = v->def;
    fl_error e = { 0 };
    size_t at = 0;
    while (at < c->npcs && c->pcs[at] != x->pc)
        at++;
    if (at == c->npcs)
        fl_fail(&e, FL_ENOTFOUND, "0x%" PRIx64 " is not a breakpoint of %s", x->pc, c->row.function);
    else if (!v->locs[at])
        e = v->loc_err[at];
    else if (kern_varloc_eval(v->locs[at], &x->s->frame, value, &e) == 0)
        return 0;
    if (c->has_symbol && x->pc == c->pcs[0] && d->slot >= 0 && d->slot < 6 &&
        tgt_reg_read(x->s->t, abi_args[d->slot], value, NULL) == 0)
        return 0;
    stop_note(x, d->from, e.msg);
    return -1;
}

static int read_value(stop_ctx *x, size_t i, uint64_t *value);

static int read_member(stop_ctx *x, const compiled_value *v, uint64_t *value)
{
    uint64_t base;
    fl_error e;
    if (read_value(x, (size_t)v->base, &base) < 0)
        return -1;
    *value = 0;
    if (tgt_mem_read(x->s->t, base + v->member.offset, value, v->member.size, &e) < 0) {
        stop_note(x, v->def->name, e.msg);
        return -1;
    }
    return 0;
}

/* The raw number of value i (scalar kinds only), read at most once a stop. */
static int read_value(stop_ctx *x, size_t i, uint64_t *value)
{
    const compiled_value *v = &x->c->values[i];
    if (x->state[i]) {
        *value = x->raw[i];
        return x->state[i] > 0 ? 0 : -1;
    }
    x->state[i] = -1;
    int rc = -1;
    fl_error e;
    if (v->missing[0]) {
        stop_note(x, v->def->name, v->missing);
        return -1;
    }
    switch (v->def->read) {
    case STATION_REG:
        if ((rc = tgt_reg_read_r(x->s->t, v->reg, value, &e)) < 0)
            stop_note(x, v->def->name, e.msg);
        break;
    case STATION_FRAME:
        if ((rc = read_hw_frame(x, v)) == 0)
            *value = v->def->slot >= 0 && v->def->slot < HW_FRAME_SLOTS ? x->hw[v->def->slot] : 0;
        break;
    case STATION_PARAM:
        rc = read_param(x, v, value);
        break;
    case STATION_MEMBER:
        rc = read_member(x, v, value);
        break;
    case STATION_STRUCT:
    case STATION_INSN_EA:
        return -1; /* not scalars: emitted by their own readers */
    }
    if (rc == 0 && v->def->width && v->def->width < 8)
        *value &= (1ull << (8 * v->def->width)) - 1;
    if (rc == 0) {
        x->raw[i] = *value;
        x->state[i] = 1;
    }
    return rc;
}

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

static void decode_into(const cap_session *s, cap_value *v, enum station_decoder d)
{
    if (!v)
        return;
    v->decoder = d;
    if (d == STATION_DEC_SELECTOR)
        decode_selector_format(v->value, v->decoded, sizeof v->decoded);
    else if (d != STATION_DEC_NONE && (unsigned)d < STATION_DEC_COUNT)
        decode_format(&s->bits[d], v->value, v->decoded, sizeof v->decoded);
}

/* Every member of a struct, read in one piece. */
static void emit_struct(stop_ctx *x, const compiled_value *v)
{
    uint64_t addr;
    fl_error e;
    if (read_value(x, (size_t)v->base, &addr) < 0)
        return;
    uint8_t *buf = malloc(v->struct_size ? v->struct_size : 1);
    if (!buf || tgt_mem_read(x->s->t, addr, buf, v->struct_size, &e) < 0) {
        stop_note(x, v->def->from, buf ? e.msg : "out of memory");
        free(buf);
        return;
    }
    const char *base = x->c->row.values[v->base].name;
    for (size_t i = 0; i < v->nmembers; i++) {
        const kern_member *m = &v->members[i];
        if (m->size == 0 || m->size > 8 || m->offset + m->size > v->struct_size)
            continue;
        uint64_t val = 0;
        memcpy(&val, buf + m->offset, m->size);
        char name[48];
        snprintf(name, sizeof name, "%s->%s", base, m->name);
        cap_value *cv = add_value(x->out, name, val, (unsigned)m->size);
        if (!cv)
            break;
        for (const station_member_decoder *md = v->def->members; md && md->member; md++)
            if (strcmp(md->member, m->name) == 0)
                decode_into(x->s, cv, md->decoder);
    }
    free(buf);
}

/* One memory operand's effective address, from the registers still holding
 * the interrupted context's values at this stop; false if one is unreadable. */
static bool mem_operand_ea(stop_ctx *x, const cs_insn *insn, const cs_x86_op *op, uint64_t rip, uint64_t user_rsp,
                           uint64_t *ea)
{
    uint64_t sum = (uint64_t)op->mem.disp, v = 0;
    x86_reg regs[2] = { op->mem.base, op->mem.index };
    for (int r = 0; r < 2; r++) {
        if (regs[r] == X86_REG_INVALID)
            continue;
        if (regs[r] == X86_REG_RIP)
            v = rip + insn->size;
        else if (regs[r] == X86_REG_RSP)
            v = user_rsp;
        else if (tgt_reg_read(x->s->t, cs_reg_name(x->s->cs, regs[r]), &v, NULL) < 0)
            return false;
        sum += r == 0 ? v : v * (uint64_t)op->mem.scale;
    }
    *ea = sum;
    return true;
}

/* The implicit stack access of a push or call: 8 bytes below the
 * interrupted rsp (the psABI's 64-bit stack slots). */
static bool pushes(const stop_ctx *x, const cs_insn *insn)
{
    return cs_insn_group(x->s->cs, insn, X86_GRP_CALL) || insn->id == X86_INS_PUSH || insn->id == X86_INS_PUSHFQ;
}

/* The effective address of the access that faulted: of the instruction's
 * accesses (its memory operands, and the stack slot a push or call writes),
 * the one whose bytes hold CR2; with none, the first memory operand's. A
 * `call [mem]` reads [mem] and writes the stack: either can fault. */
static bool operand_ea(stop_ctx *x, const cs_insn *insn, uint64_t rip, uint64_t user_rsp, uint64_t *ea)
{
    const cs_x86 *d = &insn->detail->x86;
    uint64_t cr2 = 0, first = 0, a;
    bool have_cr2 = tgt_reg_read(x->s->t, "cr2", &cr2, NULL) == 0, have_first = false;
    for (int i = 0; i < d->op_count; i++) {
        const cs_x86_op *op = &d->operands[i];
        if (op->type != X86_OP_MEM || op->mem.segment != X86_REG_INVALID ||
            !mem_operand_ea(x, insn, op, rip, user_rsp, &a))
            continue;
        if (have_cr2 && cr2 - a < (op->size ? op->size : 1)) {
            *ea = a;
            return true;
        }
        if (!have_first) {
            first = a;
            have_first = true;
        }
    }
    if (pushes(x, insn) && have_cr2 && cr2 - (user_rsp - 8) < 8) {
        *ea = user_rsp - 8;
        return true;
    }
    *ea = first;
    return have_first;
}

/* The faulting instruction, disassembled, and its effective address. */
static void emit_insn_ea(stop_ctx *x, size_t i)
{
    const compiled_value *v = &x->c->values[i];
    int rip_at = find_value(x->c, v->def->from);
    uint64_t rip, rsp;
    if (rip_at < 0 || read_value(x, (size_t)rip_at, &rip) < 0 || read_value(x, (size_t)v->base, &rsp) < 0)
        return;
    cs_insn *insn = NULL;
    x->f->fault_ip = rip;
    disasm_one(x->s, rip, x->f->user_insn, sizeof x->f->user_insn, &insn);
    if (!insn)
        return;
    uint64_t ea;
    if (operand_ea(x, insn, rip, rsp, &ea))
        add_value(x->out, v->def->name, ea, 8);
    cs_free(insn, 1);
}

static void emit_value(stop_ctx *x, size_t i)
{
    const compiled_value *v = &x->c->values[i];
    uint64_t val;
    if (v->def->read == STATION_STRUCT) {
        if (!v->missing[0])
            emit_struct(x, v);
        else
            stop_note(x, v->def->name, v->missing);
        return;
    }
    if (v->def->read == STATION_INSN_EA) {
        emit_insn_ea(x, i);
        return;
    }
    if (read_value(x, i, &val) < 0)
        return;
    unsigned size = v->def->width ? v->def->width : v->def->read == STATION_MEMBER ? (unsigned)v->member.size : 8;
    cap_value *cv = add_value(x->out, v->def->name, val, size);
    if (cv) {
        decode_into(x->s, cv, v->def->decoder);
        cv->proof = v->def->proof;
    }
}

static void locate(stop_ctx *x)
{
    cap_station *st = x->out;
    st->pc = x->pc;
    for (size_t i = 0; i < x->c->npcs; i++) {
        pc_info *p = &x->c->info[i];
        if (p->pc != x->pc)
            continue;
        if (!p->located) /* the code was not readable when the session opened */
            disasm_pc(x->s, p);
        snprintf(st->location, sizeof st->location, "%s", p->location);
        snprintf(st->source, sizeof st->source, "%s", p->source);
        snprintf(st->insn, sizeof st->insn, "%s", p->insn);
        return;
    }
}

/* Who faulted and on what: what the filter looks at. */
typedef struct ident {
    kern_task task;
    bool have_task;
    uint64_t addr;
    bool have_addr;
    bool addr_page;      /* the station sees only the page */
    char why[160];       /* why current could not be read, "" if it was */
} ident;

/* The per-cpu base that gives `current` here. After swapgs it is GS_BASE.
 * Before it (a station with an interrupted CS), it is still KERNEL_GS_BASE
 * when the CPU came from user mode. Both bases are in this stop's `g`: when
 * exactly one is a kernel-half address (bit 63, the x86-64 canonical upper
 * half) it is the kernel's, with no memory read; otherwise the frame's CS
 * decides. */
static const tgt_reg *percpu_base_reg(stop_ctx *x)
{
    const cap_session *s = x->s;
    if (!x->c->row.interrupted_cs)
        return s->gs_base;
    uint64_t gs, kgs, cs;
    if (s->gs_base && s->k_gs_base && tgt_reg_read_r(s->t, s->gs_base, &gs, NULL) == 0 &&
        tgt_reg_read_r(s->t, s->k_gs_base, &kgs, NULL) == 0 && (gs >> 63) != (kgs >> 63))
        return gs >> 63 ? s->gs_base : s->k_gs_base;
    int at = find_value(x->c, x->c->row.interrupted_cs);
    if (at >= 0 && read_value(x, (size_t)at, &cs) == 0 && decode_selector_of(cs).rpl == 3)
        return s->k_gs_base;
    return s->gs_base;
}

static void read_current(stop_ctx *x, ident *who)
{
    const tgt_reg *r = percpu_base_reg(x);
    uint64_t base;
    fl_error e;
    if (!r) {
        snprintf(who->why, sizeof who->why, "the target describes no gs_base/k_gs_base register");
        stop_note(x, "current", who->why);
        return;
    }
    if (tgt_reg_read_r(x->s->t, r, &base, &e) == 0 && kern_current(x->s->k, base, &x->s->frame, &who->task, &e) == 0) {
        who->have_task = true;
        return;
    }
    snprintf(who->why, sizeof who->why, "%s", e.msg);
    stop_note(x, "current", e.msg);
}

/* The fault address as this station sees it, from the row's marked value. */
static void read_fault_addr(stop_ctx *x, ident *who)
{
    for (size_t i = 0; i < x->c->nvalues; i++) {
        enum station_fault_addr fa = x->c->values[i].def->fault_addr;
        if (fa != STATION_ADDR_NO && read_value(x, i, &who->addr) == 0) {
            who->have_addr = true;
            who->addr_page = fa == STATION_ADDR_PAGE;
        }
    }
}

static bool addr_matches(const cap_filter *fl, const ident *who)
{
    if (!fl->addr)
        return true;
    if (!who->have_addr)
        return false;
    bool page = fl->addr_page || who->addr_page;
    return page ? (who->addr & BASE_PAGE_MASK) == (fl->addr & BASE_PAGE_MASK) : who->addr == fl->addr;
}

static bool task_matches(const cap_filter *fl, const ident *who)
{
    if ((fl->pid || fl->comm[0]) && !who->have_task)
        return false;
    if (fl->pid && who->task.pid != fl->pid)
        return false;
    return !fl->comm[0] || strncmp(who->task.comm, fl->comm, sizeof who->task.comm) == 0;
}

/* Decide whether this stop is the fault we filter for, reading no more than
 * the decision needs: the address from the registers of this stop first,
 * `current` only for a pid or comm filter. */
static bool stop_matches(stop_ctx *x, ident *who, bool matched)
{
    const cap_filter *fl = &x->s->opt.filter;
    bool need_task = fl->pid || fl->comm[0];
    if (!matched) {
        read_fault_addr(x, who);
        if (!addr_matches(fl, who))
            return false;
    }
    if (need_task)
        read_current(x, who);
    return matched ? !fl->pid || (who->have_task && who->task.pid == fl->pid) : task_matches(fl, who);
}

/* The rest of the station, once the fault is ours. */
static void read_rest(stop_ctx *x, ident *who)
{
    locate(x);
    for (size_t i = 0; i < x->c->nvalues; i++)
        emit_value(x, i);
    if (!who->have_task)
        read_current(x, who);
}

/* ---- the capture loop ---- */

static int station_at(const cap_session *s, uint64_t pc)
{
    for (size_t i = 0; i < s->nstations; i++)
        if (s->st[i].armed)
            for (size_t j = 0; j < s->st[i].npcs; j++)
                if (s->st[i].pcs[j] == pc)
                    return (int)i;
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

/* One capture's progress. */
typedef struct run {
    size_t first, last;  /* first and last usable station */
    bool matched;
    unsigned unreadable; /* pass-overs in a row where `current` could not be read */
    bool ever_read;      /* `current` was read at least once */
    char why[160];       /* the last reason it could not be */
} run;

/* After this many pass-overs in a row with guest memory unreadable (and
 * never readable), a task filter can never match: say so instead of
 * waiting for the timeout. */
#define UNREADABLE_LIMIT 16

/* Does the scenario's row say its fault never reaches station i? Such a
 * station is still armed, but the capture does not wait for it: a fault
 * refused before handle_mm_fault ends without it (the outcome follows it). */
static bool scenario_skips(const cap_session *s, size_t i)
{
    const scenario_def *sc = scenario_find(s->opt.scenario);
    for (int k = 0; sc && k < SCENARIO_MAX_SKIPS && sc->skips[k]; k++)
        if (strcmp(sc->skips[k], s->st[i].row.function) == 0)
            return true;
    return false;
}

static int prepare_fault(cap_session *s, cap_fault *f, run *r, fl_error *err)
{
    memset(f, 0, sizeof *f);
    memset(r, 0, sizeof *r);
    f->nstations = s->nstations;
    bool any = false;
    for (size_t i = 0; i < s->nstations; i++) {
        cap_station *st = &f->st[i];
        st->row = &s->st[i].row;
        st->enabled = enabled(s, i);
        st->absent = s->st[i].absent;
        st->kprobe_refused = s->st[i].kprobe_refused;
        snprintf(st->kprobe, sizeof st->kprobe, "%s", s->st[i].kprobe);
        if (st->enabled && st->absent)
            snprintf(st->note, sizeof st->note, "not in this kernel: it has neither a symbol nor an inlined "
                     "instance of %s", s->st[i].row.function);
        if (!usable(s, i))
            continue;
        if (!any)
            r->first = i;
        if (!any || !scenario_skips(s, i))
            r->last = i;
        any = true;
    }
    return any ? 0 : fl_fail(err, FL_EUSAGE, "no station is enabled (or none is in this kernel)");
}

static void note_skipped(const cap_session *s, cap_fault *f, const run *r, size_t id)
{
    for (size_t j = r->first; j < id; j++)
        if (usable(s, j) && !f->st[j].hit && !f->st[j].note[0])
            snprintf(f->st[j].note, sizeof f->st[j].note, "not reached: this fault went from %s to %s without it",
                     j > r->first ? s->st[r->first].row.function : "entry", s->st[id].row.function);
}

/* The guest stopped at station id. 1: the capture is complete, 0: run on,
 * -1: error. */
static int on_stop(cap_session *s, cap_fault *f, run *r, size_t id, uint64_t pc, fl_error *err)
{
    cap_station *saved = &s->saved;
    stop_ctx x = { .s = s, .c = &s->st[id], .out = &f->st[id], .f = f, .pc = pc };
    ident who = { 0 };
    *saved = f->st[id];
    if (!stop_matches(&x, &who, r->matched) || (!r->matched && id != r->first)) {
        if (!r->matched && id == r->first) {
            f->passed_over++;
            r->unreadable = who.have_task || !who.why[0] ? 0 : r->unreadable + 1;
            r->ever_read |= who.have_task;
            if (who.why[0])
                snprintf(r->why, sizeof r->why, "%s", who.why);
        }
        f->st[id] = *saved;
        if (!r->ever_read && r->unreadable >= UNREADABLE_LIMIT)
            return fl_fail(err, FL_EIO, "guest memory cannot be read, so the process filter cannot be applied "
                           "(%u faults passed over): %s", f->passed_over, r->why);
        return 0;
    }
    read_rest(&x, &who);
    if (!r->matched)
        f->task = who.task;
    r->matched = true;
    f->st[id].hit = true;
    note_skipped(s, f, r, id);
    if (s->hook)
        s->hook(s->hook_ctx, (int)id, f, s->t);
    for (size_t j = 0; j <= id; j++)
        if (s->st[j].armed && arm(s, j, false, err) < 0)
            return -1;
    if (id == r->last)
        return 1;
    return arm_range(s, id + 1, s->nstations, f, err) < 0 ? -1 : 0;
}

static void build_checks(const cap_session *s, cap_fault *f, bool complete);

static int wait_failed(const cap_session *s, const cap_fault *f, const run *r, int left, const fl_error *wait_err,
                       fl_error *err)
{
    if (left > 0 && wait_err->code != FL_ETIMEOUT)
        return fl_fail(err, wait_err->code, "%s", wait_err->msg);
    if (!r->matched && !r->ever_read && r->unreadable > 0)
        return fl_fail(err, FL_EIO, "guest memory cannot be read, so the process filter cannot be applied "
                       "(%u faults passed over in %d ms): %s", f->passed_over, s->opt.timeout_ms, r->why);
    return fl_fail(err, FL_ETIMEOUT, "%s within %d ms (%u other faults passed over)",
                   r->matched ? "the fault did not reach every station" : "the filtered fault did not happen",
                   s->opt.timeout_ms, f->passed_over);
}

int cap_fault_capture(cap_session *s, cap_fault *f, fl_error *err)
{
    run r;
    if (prepare_fault(s, f, &r, err) < 0)
        return -1;
    double t0 = fl_now_s();
    int rc = -1;
    /* Only the first station is armed until a fault matches. */
    if (arm_range(s, r.first, r.first + 1, f, err) < 0)
        goto out;
    for (;;) {
        int left = (int)((t0 + s->opt.timeout_ms / 1000.0 - fl_now_s()) * 1000);
        fl_error wait_err = { 0 };
        if (left <= 0 || run_to_stop(s, left, &wait_err) < 0) {
            wait_failed(s, f, &r, left, &wait_err, err);
            goto out;
        }
        uint64_t pc;
        if (tgt_reg_read_r(s->t, s->rip, &pc, err) < 0)
            goto out;
        int id = station_at(s, pc);
        if (id < 0) {
            fl_fail(err, FL_EPROTO, "the guest stopped at 0x%" PRIx64 ", where no station is armed", pc);
            goto out;
        }
        int done = on_stop(s, f, &r, (size_t)id, pc, err);
        if (done < 0)
            goto out;
        if (done > 0) {
            rc = 0;
            break;
        }
    }
out:
    f->seconds = fl_now_s() - t0;
    disarm_all(s);
    if (r.matched)
        build_checks(s, f, rc == 0);
    return rc;
}

const cap_value *cap_value_get(const cap_fault *f, int st, const char *name)
{
    size_t n = f->nstations ? f->nstations : CAP_ST_COUNT;
    if (st < 0 || (size_t)st >= n || !f->st[st].hit)
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

/* ---- checks: a loop over the rows of checks.c and the added ones ---- */

/* Texts of the derived readings, built once per fault. */
typedef struct derived {
    const scenario_def *scenario;
    char scenario_skips[64], path_skips[64];
    bool complete;       /* every station was reached or passed */
} derived;

static int station_index(const cap_session *s, const char *function)
{
    for (size_t i = 0; function && i < s->nstations; i++)
        if (strcmp(s->st[i].row.function, function) == 0)
            return (int)i;
    return -1;
}

static bool derived_side(const cap_session *s, const cap_fault *f, const derived *d, const char *name,
                         chk_side *out)
{
    const cap_filter *fl = &s->opt.filter;
    if (strcmp(name, "filter.addr") == 0)
        *out = (chk_side){ fl->addr != 0, fl->addr, NULL, name };
    else if (strcmp(name, "filter.pid") == 0)
        *out = (chk_side){ fl->pid != 0, (uint64_t)fl->pid, NULL, name };
    else if (strcmp(name, "current.pid") == 0)
        *out = (chk_side){ f->task.pid != 0, (uint64_t)f->task.pid, f->task.comm, name };
    else if (strcmp(name, "current.mm") == 0)
        *out = (chk_side){ f->task.mm != 0, f->task.mm, NULL, name };
    else if (strcmp(name, "scenario") == 0)
        *out = (chk_side){ d->scenario != NULL, 0, NULL, name };
    else if (strcmp(name, "scenario.skips") == 0)
        *out = (chk_side){ d->scenario && d->complete, 0, d->scenario_skips, name };
    else if (strcmp(name, "path.skips") == 0)
        *out = (chk_side){ d->scenario && d->complete, 0, d->path_skips, name };
    else
        *out = (chk_side){ false, 0, NULL, name };
    return out->have;
}

/* The first alternative of a side that was captured. */
static bool side_of(const cap_session *s, const cap_fault *f, const derived *d, const chk_ref *alts, chk_side *out)
{
    *out = (chk_side){ false, 0, NULL, NULL };
    for (int i = 0; i < CHK_ALTS && alts[i].value; i++) {
        if (!alts[i].station) {
            if (derived_side(s, f, d, alts[i].value, out))
                return true;
            continue;
        }
        const cap_value *v = cap_value_get(f, station_index(s, alts[i].station), alts[i].value);
        if (v) {
            *out = (chk_side){ true, v->value, NULL, v->name };
            return true;
        }
    }
    return false;
}

static void skips_text(char *buf, size_t cap, const char *const *names, size_t n)
{
    size_t used = (size_t)snprintf(buf, cap, "skips %s", n ? "" : "none");
    for (size_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
}

/* What the scenario says this fault skips, and what it did skip, among the
 * stations asked for and present in this kernel. */
static void derive(const cap_session *s, const cap_fault *f, bool complete, derived *d)
{
    const char *want[CAP_MAX_STATIONS], *got[CAP_MAX_STATIONS];
    size_t nwant = 0, ngot = 0;
    d->scenario = scenario_find(s->opt.scenario);
    d->complete = complete;
    for (size_t i = 0; i < s->nstations; i++) {
        if (!usable(s, i))
            continue;
        for (int k = 0; d->scenario && k < SCENARIO_MAX_SKIPS && d->scenario->skips[k]; k++)
            if (strcmp(d->scenario->skips[k], s->st[i].row.function) == 0)
                want[nwant++] = s->st[i].row.function;
        if (!f->st[i].hit)
            got[ngot++] = s->st[i].row.function;
    }
    skips_text(d->scenario_skips, sizeof d->scenario_skips, want, nwant);
    skips_text(d->path_skips, sizeof d->path_skips, got, ngot);
}

static void add_check(cap_fault *f, const chk_result *c)
{
    if (f->nchecks < CAP_MAX_CHECKS)
        f->checks[f->nchecks++] = *c;
}

/* kprobes' verdict, derived from vmlinux, against the running kernel's list. */
static void kprobe_checks(const cap_session *s, cap_fault *f)
{
    for (size_t i = 0; i < s->nstations; i++) {
        const compiled_station *c = &s->st[i];
        if (!c->row.kprobe_applies || !usable(s, i) || s->kprobe_listed[i] < 0)
            continue;
        chk_result r = { .ok = c->kprobe_refused == (s->kprobe_listed[i] == 1) };
        snprintf(r.name, sizeof r.name, "kprobe-verdict-%s", c->row.function);
        snprintf(r.claim, sizeof r.claim, "the guest's own kprobe blacklist agrees that %s is %s", c->row.function,
                 c->kprobe_refused ? "refused" : "not listed");
        snprintf(r.expected, sizeof r.expected, "%s", c->kprobe_refused ? "listed" : "not listed");
        snprintf(r.actual, sizeof r.actual, "%s", s->kprobe_listed[i] ? "listed" : "not listed");
        add_check(f, &r);
    }
}

static void build_checks(const cap_session *s, cap_fault *f, bool complete)
{
    derived d = { 0 };
    derive(s, f, complete, &d);
    chk_env env = { .scenario = d.scenario };
    for (int k = 0; k < STATION_DEC_COUNT; k++)
        env.bits[k] = cap_decoder_bits(s, (enum station_decoder)k);
    for (size_t i = 0; i < s->nchecks; i++) {
        chk_side e, a;
        chk_result r;
        side_of(s, f, &d, s->checks[i].expected, &e);
        side_of(s, f, &d, s->checks[i].actual, &a);
        if (chk_evaluate(&s->checks[i], &e, &a, &env, &r))
            add_check(f, &r);
    }
    kprobe_checks(s, f);
}
