/* explain: while the trace steps, read the C variables at each line entry,
 * the arguments at each call and the value at each return. See explain.h. */
#include "faultline/explain.h"
#include "faultline/decode.h"
#include "faultline/frame.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The register a scalar or pointer is returned in (psABI 3.2.3). */
#define RETURN_REG 0

/* Which variables hold a set of an enum's bits although their C type is a
 * plain integer: (function or NULL for any, variable or NULL for any, C type
 * or NULL for any, enum). The kernel declares `unsigned int flags` and fills
 * it with enum fault_flag bits; vm_fault_t is a bitwise typedef of enum
 * vm_fault_reason bits. */
static const struct flag_row {
    const char *function, *variable, *type, *enum_name;
} flag_rows[] = {
    { "do_user_addr_fault", "flags", NULL, "fault_flag" },
    { "handle_mm_fault", "flags", NULL, "fault_flag" },
    { "__handle_mm_fault", "flags", NULL, "fault_flag" },
    { "lock_mm_and_find_vma", "flags", NULL, "fault_flag" },
    { "sanitize_fault_flags", "flags", NULL, "fault_flag" },
    { "exc_page_fault", "error_code", NULL, "x86_pf_error_code" },
    { "handle_page_fault", "error_code", NULL, "x86_pf_error_code" },
    { "do_user_addr_fault", "error_code", NULL, "x86_pf_error_code" },
    { "access_error", "error_code", NULL, "x86_pf_error_code" },
    { NULL, NULL, "vm_fault_t", "vm_fault_reason" },
};

/* A variable's last reading in a frame. */
enum { MEM_UNSEEN, MEM_VALUE, MEM_OPTOUT };
typedef struct xmem {
    uint64_t die;
    uint64_t value;
    int state;
} xmem;

#define MAX_INL 16
typedef struct xframe {
    int depth;
    size_t line_step;          /* first step of the frame's current line; SIZE_MAX before the first */
    const char *lfile, *lfunc; /* the current line's key */
    int lline;
    xmem *mem;
    size_t nmem, capmem;
    long fcall;                /* its trace_fcall, -1 for the starting frame */
    uint64_t func_die;         /* concrete function (return type) */
    uint64_t inl[MAX_INL];     /* inlined instances around the last line, outermost first */
    long inl_call[MAX_INL];
    size_t ninl;
} xframe;

/* Per distinct pc: line and scope, looked up once. */
typedef struct xpc {
    uint64_t pc;               /* 0: empty */
    bool has_line;
    const char *file, *function;
    int line;
    bool scoped;
    kern_scope sc;
} xpc;

/* A variable's compiled location list, by DIE (shared by every pc). */
typedef struct xloc {
    uint64_t die;              /* 0: empty */
    kern_loc *locs;
    size_t n;
} xloc;

typedef struct xenum {
    char name[64];
    decode_bits bits;
    kern_enumerator *list;
    size_t n;
    bool ok;
} xenum;

struct explain {
    kern *k;
    tgt *t;
    const tgt_reg *regs[FRAME_DWARF_REGS];
    const uint8_t *g;          /* this stop's registers */
    kern_frame frame;
    xframe *frames;
    size_t nframes, capframes;
    xpc *pcs;
    size_t npcs, cappcs;
    xenum *enums;
    size_t nenums;
    xloc *locs;
    size_t nlocs, caplocs;
    size_t prev_step;          /* steps when the last stop was seen */
};

static uint64_t g_u64(const tgt_reg *r, const uint8_t *g)
{
    uint64_t v = 0;
    for (size_t i = r->size > 8 ? 8 : r->size; i-- > 0;)
        v = v << 8 | g[r->offset + i];
    return v;
}

static int frame_reg(void *ctx, int regno, uint64_t *value, fl_error *err)
{
    explain *x = ctx;
    if (regno < 0 || regno >= FRAME_DWARF_REGS || !x->regs[regno])
        return fl_fail(err, FL_ENOTFOUND, "DWARF register %d is not a general register of x86-64", regno);
    *value = g_u64(x->regs[regno], x->g);
    return 0;
}

static int frame_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    return tgt_mem_read(((explain *)ctx)->t, addr, buf, len, err);
}

int explain_open(explain **out, kern *k, tgt *t, fl_error *err)
{
    explain *x = calloc(1, sizeof *x);
    if (!x)
        return fl_fail(err, FL_EIO, "out of memory starting the explain view");
    x->k = k;
    x->t = t;
    for (int i = 0; i < FRAME_DWARF_REGS; i++)
        x->regs[i] = tgt_regmap_find(tgt_regs(t), frame_dwarf_reg_name(i));
    x->frame = (kern_frame){ .reg = frame_reg, .mem = frame_mem, .ctx = x };
    *out = x;
    return 0;
}

void explain_close(explain *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->nframes; i++)
        free(x->frames[i].mem);
    free(x->frames);
    for (size_t i = 0; i < x->cappcs; i++)
        if (x->pcs[i].pc)
            kern_scope_free(&x->pcs[i].sc);
    free(x->pcs);
    for (size_t i = 0; i < x->nenums; i++) {
        decode_bits_free(&x->enums[i].bits);
        free(x->enums[i].list);
    }
    free(x->enums);
    for (size_t i = 0; i < x->caplocs; i++)
        free(x->locs[i].locs);
    free(x->locs);
    free(x);
}

/* ---- per-pc cache ---- */

static uint64_t hash_pc(uint64_t pc)
{
    return (pc * 0x9e3779b97f4a7c15ull) >> 17;
}

static int pcs_grow(explain *x)
{
    size_t nc = x->cappcs ? x->cappcs * 2 : 1024;
    xpc *nm = calloc(nc, sizeof *nm);
    if (!nm)
        return -1;
    for (size_t i = 0; i < x->cappcs; i++)
        if (x->pcs[i].pc) {
            size_t j = hash_pc(x->pcs[i].pc) & (nc - 1);
            while (nm[j].pc)
                j = (j + 1) & (nc - 1);
            nm[j] = x->pcs[i];
        }
    free(x->pcs);
    x->pcs = nm;
    x->cappcs = nc;
    return 0;
}

/* The line of pc (always) and, if `scope`, its variables (once). */
static xpc *pc_info(explain *x, uint64_t pc, bool scope, fl_error *err)
{
    if ((x->npcs + 1) * 2 > x->cappcs && pcs_grow(x) < 0)
        return fl_fail(err, FL_EIO, "out of memory in the explain view's pc cache"), NULL;
    size_t j = hash_pc(pc) & (x->cappcs - 1);
    while (x->pcs[j].pc && x->pcs[j].pc != pc)
        j = (j + 1) & (x->cappcs - 1);
    xpc *e = &x->pcs[j];
    if (!e->pc) {
        e->pc = pc;
        x->npcs++;
        kern_line kl;
        if (kern_line_at(x->k, pc, &kl, NULL) == 0) {
            e->has_line = true;
            e->file = kl.file;
            e->line = kl.line;
            e->function = kl.function;
        }
    }
    if (scope && !e->scoped) {
        if (kern_scope_at(x->k, pc, &e->sc, err) < 0)
            return NULL;
        e->scoped = true;
    }
    return e;
}

static int locs_grow(explain *x)
{
    size_t nc = x->caplocs ? x->caplocs * 2 : 1024;
    xloc *nm = calloc(nc, sizeof *nm);
    if (!nm)
        return -1;
    for (size_t i = 0; i < x->caplocs; i++)
        if (x->locs[i].die) {
            size_t j = hash_pc(x->locs[i].die) & (nc - 1);
            while (nm[j].die)
                j = (j + 1) & (nc - 1);
            nm[j] = x->locs[i];
        }
    free(x->locs);
    x->locs = nm;
    x->caplocs = nc;
    return 0;
}

/* v's compiled locations (compiled on first use), or NULL. */
static const xloc *loc_of(explain *x, const kern_var *v)
{
    if ((x->nlocs + 1) * 2 > x->caplocs && locs_grow(x) < 0)
        return NULL;
    size_t j = hash_pc(v->die) & (x->caplocs - 1);
    while (x->locs[j].die && x->locs[j].die != v->die)
        j = (j + 1) & (x->caplocs - 1);
    xloc *l = &x->locs[j];
    if (!l->die) {
        if (kern_scope_locs(x->k, v, &l->locs, &l->n, NULL) < 0)
            return NULL;
        l->die = v->die;
        x->nlocs++;
    }
    return l;
}

/* ---- decoding ---- */

static xenum *enum_of(explain *x, const char *name)
{
    for (size_t i = 0; i < x->nenums; i++)
        if (strcmp(x->enums[i].name, name) == 0)
            return x->enums[i].ok ? &x->enums[i] : NULL;
    xenum *ne = realloc(x->enums, (x->nenums + 1) * sizeof *ne);
    if (!ne)
        return NULL;
    x->enums = ne;
    xenum *e = &x->enums[x->nenums++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ok = kern_enum_list(x->k, name, &e->list, &e->n, NULL) == 0 &&
            decode_bits_from_enum(e->list, e->n, &e->bits) == 0;
    return e->ok ? e : NULL;
}

static const char *flag_enum(const char *function, const char *var, const char *type)
{
    for (size_t i = 0; i < sizeof flag_rows / sizeof flag_rows[0]; i++) {
        const struct flag_row *f = &flag_rows[i];
        if ((!f->function || (function && strcmp(f->function, function) == 0)) &&
            (!f->variable || (var && strcmp(f->variable, var) == 0)) && (!f->type || strcmp(f->type, type) == 0))
            return f->enum_name;
    }
    return NULL;
}

/* A pointer names a symbol only if it points inside that symbol's object
 * (heap addresses lie past the last symbol, at huge offsets). */
static bool inside(kern *k, const char *sym, uint64_t off)
{
    uint64_t size = 0;
    return off == 0 || (kern_sym_size(k, sym, &size, NULL) == 0 && off < size);
}

/* Words for a value of type t (buf), or NULL when the hex says it all. */
static const char *describe(explain *x, const char *function, const char *var, const kern_vtype *t, uint64_t v,
                            char *buf, size_t cap)
{
    const char *fe = flag_enum(function, var, t->name);
    xenum *e = fe ? enum_of(x, fe) : t->kind == KERN_V_ENUM && t->enum_name[0] ? enum_of(x, t->enum_name) : NULL;
    if (e) {
        for (size_t i = 0; !fe && i < e->n; i++)
            if ((uint64_t)e->list[i].value == v) {
                snprintf(buf, cap, "%s", e->list[i].name);
                return buf;
            }
        decode_format(&e->bits, v, buf, cap);
        return buf;
    }
    const char *sym;
    uint64_t off;
    switch (t->kind) {
    case KERN_V_BOOL:
        return v ? "true" : "false";
    case KERN_V_SIGNED:
        snprintf(buf, cap, "%" PRId64, (int64_t)v);
        return buf;
    case KERN_V_POINTER:
        if (!v)
            return "NULL";
        if (!kern_sym_at(x->k, v, &sym, &off) || !inside(x->k, sym, off))
            return NULL;
        if (off)
            snprintf(buf, cap, "&%s+0x%" PRIx64, sym, off);
        else
            snprintf(buf, cap, "&%s", sym);
        return buf;
    default:
        return NULL;
    }
}

/* Read v at pc into *out (strings interned in r). */
static int read_value(explain *x, trace_result *r, const kern_var *v, uint64_t pc, trace_value *out)
{
    fl_error e = { 0 };
    uint64_t val = 0;
    memset(out, 0, sizeof *out);
    out->name = trace_result_str(r, v->name);
    out->type = trace_result_str(r, v->type.name);
    const xloc *l = loc_of(x, v);
    int rc = l ? kern_scope_locs_value(x->k, v, l->locs, l->n, pc, &x->frame, &val, &e)
               : kern_scope_value(x->k, v, pc, &x->frame, &val, &e);
    if (rc < 0)
        return 0;  /* optimized out (or unreadable): available stays false */
    char buf[256];
    out->available = true;
    out->value = val;
    out->decoded = trace_result_str(r, describe(x, v->function, v->name, &v->type, val, buf, sizeof buf));
    return 0;
}

/* ---- frames ---- */

static xframe *top(explain *x)
{
    return x->nframes ? &x->frames[x->nframes - 1] : NULL;
}

static xframe *push_frame(explain *x, int depth, long fcall, uint64_t func_die)
{
    if (x->nframes == x->capframes) {
        size_t nc = x->capframes ? x->capframes * 2 : 32;
        xframe *nf = realloc(x->frames, nc * sizeof *nf);
        if (!nf)
            return NULL;
        x->frames = nf;
        x->capframes = nc;
    }
    xframe *f = &x->frames[x->nframes++];
    *f = (xframe){ .depth = depth, .line_step = SIZE_MAX, .fcall = fcall, .func_die = func_die };
    return f;
}

static void pop_frame(explain *x)
{
    free(x->frames[--x->nframes].mem);
}

static xmem *mem_of(xframe *f, uint64_t die)
{
    for (size_t i = 0; i < f->nmem; i++)
        if (f->mem[i].die == die)
            return &f->mem[i];
    if (f->nmem == f->capmem) {
        size_t nc = f->capmem ? f->capmem * 2 : 16;
        xmem *nm = realloc(f->mem, nc * sizeof *nm);
        if (!nm)
            return NULL;
        f->mem = nm;
        f->capmem = nc;
    }
    f->mem[f->nmem] = (xmem){ .die = die, .state = MEM_UNSEEN };
    return &f->mem[f->nmem++];
}

/* ---- calls and returns ---- */

static const char *function_at(explain *x, const xpc *e, uint64_t pc)
{
    const char *sym;
    uint64_t off;
    if (e && e->sc.nframes)
        return e->sc.frames[0].function;
    return kern_sym_at(x->k, pc, &sym, &off) ? sym : "?";
}

/* The parameters of frame `fi` of scope sc, read at pc, as the call's args. */
static int read_args(explain *x, trace_result *r, const kern_scope *sc, int fi, uint64_t pc, trace_fcall *c)
{
    c->arg = r->nvalues;
    for (size_t i = 0; i < sc->nvars; i++) {
        if (sc->vars[i].frame != fi || !sc->vars[i].is_param)
            continue;
        trace_value v;
        read_value(x, r, &sc->vars[i], pc, &v);
        if (trace_result_add_value(r, &v, NULL) < 0)
            return -1;
        c->nargs++;
    }
    return 0;
}

/* The stop is the first instruction of a callee entered by step s-1. */
static int enter_call(explain *x, trace_result *r, uint64_t pc, int depth, fl_error *err)
{
    size_t s = r->nsteps;
    const xpc *e = pc_info(x, pc, true, err);
    if (!e)
        return -1;
    trace_fcall c = { .step = s ? s - 1 : 0, .ret_step = SIZE_MAX, .depth = depth - 1 };
    c.function = trace_result_str(r, function_at(x, e, pc));
    const trace_step *ps = s ? &r->steps[s - 1] : NULL;
    enum trace_kind k = ps ? r->pcs[ps->pc].kind : TRACE_K_PLAIN;
    bool at_entry = k == TRACE_K_CALL || k == TRACE_K_CALL_IND || k == TRACE_K_INT;
    if (at_entry && e->sc.nframes && read_args(x, r, &e->sc, 0, pc, &c) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording a call");
    size_t idx;
    if (trace_result_add_fcall(r, &c, &idx) < 0 ||
        !push_frame(x, depth, (long)idx, e->sc.nframes ? e->sc.frames[0].die : 0))
        return fl_fail(err, FL_EIO, "out of memory recording a call");
    return 0;
}

/* Inlined instances still open in f end at step `last`. */
static void close_inlined(xframe *f, trace_result *r, size_t from, size_t last)
{
    for (size_t i = from; i < f->ninl; i++)
        if (f->inl_call[i] >= 0)
            r->fcalls[f->inl_call[i]].ret_step = last;
    if (from < f->ninl)
        f->ninl = from;
}

/* Frame f returned by step s-1: the value, typed by its return type. */
static void leave_call(explain *x, trace_result *r, xframe *f)
{
    size_t s = r->nsteps;
    close_inlined(f, r, 0, s ? s - 1 : 0);
    if (f->fcall < 0)
        return;
    trace_fcall *c = &r->fcalls[f->fcall];
    c->ret_step = s ? s - 1 : 0;
    if (!s || r->pcs[r->steps[s - 1].pc].kind != TRACE_K_RET || !f->func_die || !x->regs[RETURN_REG])
        return;
    kern_vtype t;
    if (kern_scope_return_type(x->k, f->func_die, &t, NULL) < 0 || t.kind == KERN_V_VOID ||
        t.kind == KERN_V_OTHER || t.size > 8)
        return;
    uint64_t v = g_u64(x->regs[RETURN_REG], x->g);
    if (t.size && t.size < 8)
        v &= (UINT64_C(1) << (t.size * 8)) - 1;
    char buf[256];
    c->has_ret = true;
    c->ret = (trace_value){ .name = c->function, .type = trace_result_str(r, t.name), .value = v,
                            .available = true };
    c->ret.decoded = trace_result_str(r, describe(x, c->function, NULL, &t, v, buf, sizeof buf));
}

/* Follow the call depth to `depth`: returns pop frames, calls push them. */
static int follow_depth(explain *x, trace_result *r, uint64_t pc, int depth, fl_error *err)
{
    while (top(x) && top(x)->depth > depth) {
        leave_call(x, r, top(x));
        pop_frame(x);
    }
    if (!top(x))
        return push_frame(x, depth, -1, 0) ? 0 : fl_fail(err, FL_EIO, "out of memory in the explain view");
    while (top(x)->depth < depth)
        if (enter_call(x, r, pc, top(x)->depth + 1, err) < 0)
            return -1;
    return 0;
}

/* ---- line entries ---- */

/* Inlined instances around pc vs those around the frame's last line:
 * those left end, those entered are calls with their parameters. */
static int follow_inlined(explain *x, trace_result *r, xframe *f, const kern_scope *sc, uint64_t pc,
                          size_t *kept)
{
    size_t s = r->nsteps, n = 0, same = 0;
    uint64_t now[MAX_INL];
    int fidx[MAX_INL];
    for (size_t i = 0; i < sc->nframes && n < MAX_INL; i++)
        if (sc->frames[i].inlined) {
            fidx[n] = (int)i;
            now[n++] = sc->frames[i].die;
        }
    while (same < n && same < f->ninl && f->inl[same] == now[same])
        same++;
    *kept = same;
    close_inlined(f, r, same, s ? s - 1 : 0);
    for (size_t i = same; i < n; i++) {
        trace_fcall c = { .step = s, .ret_step = SIZE_MAX, .depth = f->depth, .inlined = true,
                          .function = trace_result_str(r, sc->frames[fidx[i]].function) };
        size_t idx;
        if (read_args(x, r, sc, fidx[i], pc, &c) < 0 || trace_result_add_fcall(r, &c, &idx) < 0)
            return -1;
        f->inl[i] = now[i];
        f->inl_call[i] = (long)idx;
    }
    f->ninl = n;
    return 0;
}

/* Did the variable's reading change from what the frame had? */
static bool changed(const xmem *m, const trace_value *v)
{
    if (m->state == MEM_UNSEEN)
        return v->available;
    if (m->state == MEM_OPTOUT)
        return v->available;
    return !v->available || v->value != m->value;
}

/* Read every variable in scope; those that changed are the work of the
 * frame's previous line. Frames entered just now only remember. */
static int read_vars(explain *x, trace_result *r, xframe *f, const kern_scope *sc, uint64_t pc, size_t kept)
{
    for (size_t i = 0; i < sc->nvars; i++) {
        const kern_var *kv = &sc->vars[i];
        xmem *m = mem_of(f, kv->die);
        if (!m)
            return -1;
        trace_value v;
        read_value(x, r, kv, pc, &v);
        /* frames[0] is the concrete function, frames[i] the (i-1)th inlined one */
        bool fresh_frame = kv->frame >= 1 && (size_t)kv->frame - 1 >= kept && m->state == MEM_UNSEEN;
        if (f->line_step != SIZE_MAX && !fresh_frame && changed(m, &v)) {
            v.has_was = m->state != MEM_UNSEEN;
            v.was_available = m->state == MEM_VALUE;
            v.was = m->value;
            trace_var tv = { .step = f->line_step, .function = trace_result_str(r, kv->function), .v = v };
            if (trace_result_add_var(r, &tv) < 0)
                return -1;
        }
        m->state = v.available ? MEM_VALUE : MEM_OPTOUT;
        m->value = v.value;
    }
    return 0;
}

static int line_entry(explain *x, trace_result *r, uint64_t pc, fl_error *err)
{
    xframe *f = top(x);
    const xpc *e = pc_info(x, pc, false, err);
    if (!e)
        return -1;
    if (!e->has_line || (e->file == f->lfile && e->line == f->lline && e->function == f->lfunc))
        return 0;
    e = pc_info(x, pc, true, err);
    if (!e)
        return -1;
    size_t kept = 0;
    if (follow_inlined(x, r, f, &e->sc, pc, &kept) < 0 || read_vars(x, r, f, &e->sc, pc, kept) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording variables");
    f->line_step = r->nsteps;
    f->lfile = e->file;
    f->lline = e->line;
    f->lfunc = e->function;
    return 0;
}

int explain_stop(explain *x, trace_result *r, uint64_t pc, int depth, const uint8_t *g, fl_error *err)
{
    x->g = g;
    r->explained = true;
    if (follow_depth(x, r, pc, depth, err) < 0 || line_entry(x, r, pc, err) < 0)
        return -1;
    x->prev_step = r->nsteps;
    return 0;
}

/* ---- checks ---- */

static const trace_fcall *find_call(const trace_result *r, const char *function, size_t before)
{
    for (size_t i = 0; i < r->nfcalls; i++)
        if (!r->fcalls[i].inlined && strcmp(r->fcalls[i].function, function) == 0 && r->fcalls[i].step < before)
            return &r->fcalls[i];
    return NULL;
}

static const trace_value *arg_of(const trace_result *r, const trace_fcall *c, const char *name)
{
    for (size_t i = 0; i < c->nargs; i++)
        if (strcmp(r->values[c->arg + i].name, name) == 0 && r->values[c->arg + i].available)
            return &r->values[c->arg + i];
    return NULL;
}

/* The value `var` of `function` had after the last line before step `before` that changed it. */
static const trace_value *var_before(const trace_result *r, const char *function, const char *var, size_t before)
{
    const trace_value *v = NULL;
    for (size_t i = 0; i < r->nvars; i++)
        if (r->vars[i].step < before && strcmp(r->vars[i].function, function) == 0 &&
            strcmp(r->vars[i].v.name, var) == 0)
            v = &r->vars[i].v;
    return v && v->available ? v : NULL;
}

static int add_check(trace_result *r, const char *name, const char *claim, uint64_t expected, uint64_t actual,
                     fl_error *err)
{
    trace_check c = { .pass = expected == actual };
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.claim, sizeof c.claim, "%s", claim);
    snprintf(c.expected, sizeof c.expected, "0x%" PRIx64, expected);
    snprintf(c.actual, sizeof c.actual, "0x%" PRIx64, actual);
    if (trace_result_add_check(r, &c) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording a check");
    return 0;
}

/* do_user_addr_fault hands its flags (plus FAULT_FLAG_VMA_LOCK on the
 * per-VMA path) and lock_vma_under_rcu's vma to handle_mm_fault. */
static int check_handoff(kern *k, trace_result *r, fl_error *err)
{
    const trace_fcall *hmf = find_call(r, "handle_mm_fault", SIZE_MAX);
    if (!hmf)
        return 0;
    const trace_fcall *lock = find_call(r, "lock_vma_under_rcu", hmf->step);
    bool per_vma = lock && lock->has_ret && lock->ret.value != 0 && lock->ret_step < hmf->step;
    const trace_value *caller = var_before(r, "do_user_addr_fault", "flags", hmf->step);
    const trace_value *flags = arg_of(r, hmf, "flags"), *vma = arg_of(r, hmf, "vma");
    int64_t vma_lock = 0;
    if (per_vma && kern_enum_value(k, "fault_flag", "FAULT_FLAG_VMA_LOCK", &vma_lock, NULL) < 0)
        return 0;
    if (caller && flags &&
        add_check(r, "flags-handed-to-handle_mm_fault",
                  per_vma ? "do_user_addr_fault's flags | FAULT_FLAG_VMA_LOCK is handle_mm_fault's flags"
                          : "do_user_addr_fault's flags is handle_mm_fault's flags",
                  caller->value | (uint64_t)vma_lock, flags->value, err) < 0)
        return -1;
    if (per_vma && vma &&
        add_check(r, "vma-from-lock_vma_under_rcu", "lock_vma_under_rcu's return value is handle_mm_fault's vma",
                  lock->ret.value, vma->value, err) < 0)
        return -1;
    return 0;
}

/* "flags |= NAME;" changes flags by exactly the bit NAME is in enum fault_flag. */
static int check_flag_lines(kern *k, trace_result *r, fl_error *err)
{
    for (size_t i = 0; i < r->nvars; i++) {
        const trace_var *v = &r->vars[i];
        const char *src = r->pcs[r->steps[v->step].pc].source;
        char bit[64], claim[160];
        if (!src || strcmp(v->v.name, "flags") != 0 || !v->v.available || !v->v.has_was || !v->v.was_available ||
            sscanf(src, " flags |= %63[A-Z_0-9];", bit) != 1)
            continue;
        int64_t want;
        if (kern_enum_value(k, "fault_flag", bit, &want, NULL) < 0)
            continue;
        const trace_pc *p = &r->pcs[r->steps[v->step].pc];
        snprintf(claim, sizeof claim, "flags |= %s at %s:%d sets exactly the bit %s is in enum fault_flag", bit,
                 p->file ? p->file : p->sym, p->line, bit);
        if (add_check(r, "flags-or-bit", claim, (uint64_t)want, v->v.value ^ v->v.was, err) < 0)
            return -1;
    }
    return 0;
}

static int explain_checks(kern *k, trace_result *r, fl_error *err)
{
    if (check_handoff(k, r, err) < 0 || check_flag_lines(k, r, err) < 0)
        return -1;
    return 0;
}

int explain_finish(explain *x, trace_result *r, uint64_t pc, int depth, const uint8_t *g, fl_error *err)
{
    if (explain_stop(x, r, pc, depth, g, err) < 0)
        return -1;
    while (top(x)) {
        close_inlined(top(x), r, 0, SIZE_MAX);
        pop_frame(x);
    }
    return explain_checks(x->k, r, err);
}
