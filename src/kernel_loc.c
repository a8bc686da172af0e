/* kernel layer, locations: inlined instances of a function, the value of a
 * parameter/local at a stop (DWARF expression + location lists + CFA from
 * .debug_frame), and `current`. Registers and memory of the stopped guest
 * come in through kern_frame callbacks. */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- inlined instances ---- */

struct u64vec {
    uint64_t *v;
    size_t n, cap;
};

static int vec_push(struct u64vec *v, uint64_t x)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        uint64_t *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Collect entry pcs of inlined instances of `func` in one CU. */
static int collect_inlined(kern *k, uint64_t cu_die, const char *func, struct u64vec *pcs, struct u64vec *dies,
                           fl_error *err)
{
    kscope_table *t = kd_scopes(k, cu_die, err);
    if (!t)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        const kscope *s = &t->v[i];
        if (s->tag != DW_TAG_inlined_subroutine || !s->name || strcmp(s->name, func) != 0)
            continue;
        bool seen = false;   /* one entry per DIE even when it has several ranges */
        for (size_t j = 0; j < dies->n && !seen; j++)
            seen = dies->v[j] == s->die;
        if (seen)
            continue;
        if (vec_push(dies, s->die) != 0 || vec_push(pcs, s->entry_pc) != 0)
            return fl_fail(err, FL_ENOMEM, "out of memory collecting inlined instances of %s", func);
    }
    return 0;
}

/* Does CU i define (at top level) a subprogram named func? */
static bool cu_has_subprogram(kern *k, size_t i, const char *func)
{
    bool found = false;
    kd_iter it;
    for (int r = kd_child_first_at(k, k->cus[i], &it); r == 1 && !found; r = kd_child_next(&it)) {
        if (kd_tag(it.die) == DW_TAG_subprogram) {
            const char *n = kd_name(k, it.die);
            found = n && strcmp(n, func) == 0;
        }
    }
    kd_child_end(&it);
    return found;
}

static int inlined_entries(kern *k, const char *func, uint64_t **pcs, size_t *count, fl_error *err)
{
    *pcs = NULL;
    *count = 0;
    static const uint8_t kinds[] = { KIX_SUBPROG, 0 };
    kix_entry e;
    int found = kd_lookup(k, func, kinds, &e, err);
    if (found < 0)
        return -1;
    if (!found)
        return fl_fail(err, FL_ENOTFOUND, "no function '%s' in the DWARF of %s; check the name", func, k->path);
    /* Without LTO (the kernel's gcc build) a function defined in a .c file
     * can be inlined only in its own CU: scan that CU alone. Only a
     * function declared inline (in a header, DW_INL_declared_inlined) may
     * be inlined in every CU that includes it: scan every CU that defines
     * it (slow, but rare for probes). */
    Dwarf_Die d;
    uint64_t inl = 0;
    bool single = true;
    if (kd_die(k, e.die, &d) == 0) {
        kd_udata(k, d, DW_AT_inline, &inl);
        dwarf_dealloc_die(d);
        single = inl != DW_INL_declared_inlined;
    }
    struct u64vec v = { 0 }, dies = { 0 };
    int rc = 0;
    if (single) {
        rc = collect_inlined(k, e.cu, func, &v, &dies, err);
    } else if ((rc = kd_load_cus(k, err)) == 0) {
        for (size_t i = 0; i < k->ncus && rc == 0 && !kd_failed(k); i++)
            if (k->cus[i] == e.cu || cu_has_subprogram(k, i, func))
                rc = collect_inlined(k, k->cus[i], func, &v, &dies, err);
    }
    free(dies.v);
    if (rc != 0) {
        free(v.v);
        return -1;
    }
    if (v.n == 0) {
        free(v.v);
        return fl_fail(err, FL_ENOTFOUND, "function '%s' has no inlined instances in %s; probe its symbol "
                       "instead", func, k->path);
    }
    qsort(v.v, v.n, sizeof *v.v, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < v.n; i++)
        if (m == 0 || v.v[m - 1] != v.v[i])
            v.v[m++] = v.v[i];
    *pcs = v.v;
    *count = m;
    return 0;
}

int kern_inlined_entries(kern *k, const char *func, uint64_t **pcs, size_t *count, fl_error *err)
{
    kd_enter(k);
    int rc = kd_leave(k, inlined_entries(k, func, pcs, count, err), err);
    if (rc != 0 && *pcs) {
        free(*pcs);
        *pcs = NULL;
        *count = 0;
    }
    return rc;
}

/* ---- CFA from .debug_frame ---- */

static int read_reg(const kern_frame *f, int regno, uint64_t *v, fl_error *err)
{
    if (!f || !f->reg)
        return fl_fail(err, FL_EUSAGE, "evaluating a location needs register %d but no register "
                       "callback was given", regno);
    return f->reg(f->ctx, regno, v, err);
}

/* The kernel is built without .eh_frame; .debug_frame has the CFI. */
static void load_frames(kern *k)
{
    Dwarf_Error de = NULL;
    k->frames_tried = true;
    int r = dwarf_get_fde_list(k->dbg, &k->cies, &k->ncies, &k->fdes, &k->nfdes, &de);
    kd_note(k, r, de, ".debug_frame");
    if (r == DW_DLV_OK)
        return;
    k->cies = NULL;
    k->fdes = NULL;
    k->ncies = k->nfdes = 0;
    if (r == DW_DLV_ERROR)
        return;
    r = dwarf_get_fde_list_eh(k->dbg, &k->cies, &k->ncies, &k->fdes, &k->nfdes, &de);
    kd_note(k, r, de, ".eh_frame");
    if (r != DW_DLV_OK) {
        k->cies = NULL;
        k->fdes = NULL;
        k->ncies = k->nfdes = 0;
    }
}

void kx_free(kern *k)
{
    if (k->dbg && (k->fdes || k->cies))
        dwarf_fde_cie_list_dealloc(k->dbg, k->cies, k->ncies, k->fdes, k->nfdes);
    k->cies = NULL;
    k->fdes = NULL;
}

/* The CFA rule at pc (register + offset), resolved when a location is
 * compiled; evaluating it at a stop is one register read. */
static int cfa_rule(kern *k, uint64_t pc, int *reg_out, int64_t *off_out, fl_error *err)
{
    Dwarf_Error de = NULL;
    if (!k->frames_tried)
        load_frames(k);
    if (!k->fdes)
        return fl_fail(err, FL_EFORMAT, "%s has no call frame information (.debug_frame/.eh_frame), so "
                       "the frame base at 0x%llx is unknown", k->path, (unsigned long long)pc);
    Dwarf_Fde fde;
    Dwarf_Addr lo, hi;
    int r = dwarf_get_fde_at_pc(k->fdes, pc, &fde, &lo, &hi, &de);
    if (r != DW_DLV_OK) {
        kd_note(k, r, de, ".debug_frame");
        return fl_fail(err, FL_ENOTFOUND, "no call frame information covers pc 0x%llx in %s, so the "
                       "frame base there is unknown", (unsigned long long)pc, k->path);
    }
    Dwarf_Small vt = 0;
    Dwarf_Signed rel = 0, reg = 0, off = 0;
    Dwarf_Ptr blk = NULL;
    Dwarf_Addr row = 0, next = 0;
    Dwarf_Bool more = 0;
    r = dwarf_get_fde_info_for_cfa_reg3_b(fde, pc, &vt, &rel, &reg, &off, &blk, &row, &more, &next, &de);
    if (r == DW_DLV_ERROR)
        return kd_fail_dwarf(k, err, de, ".debug_frame");
    if (r != DW_DLV_OK)
        return fl_fail(err, FL_ENOTFOUND, "the call frame information of %s has no row for pc 0x%llx, so "
                       "the frame base there is unknown", k->path, (unsigned long long)pc);
    if (vt != DW_EXPR_OFFSET && vt != DW_EXPR_VAL_OFFSET)
        return fl_fail(err, FL_EFORMAT, "the CFA at pc 0x%llx in %s is a DWARF expression, which "
                       "faultline does not evaluate", (unsigned long long)pc, k->path);
    *reg_out = (int)reg;
    *off_out = off;
    return 0;
}

/* ---- compiled locations ---- */

/* One DWARF op with its operands. Operands that libdwarf hands out as
 * pointers into the file are copied when compiling: DW_OP_implicit_value
 * keeps its (<= 8) bytes in o2, DW_OP_entry_value the register op of its
 * one-op block (NO_REG otherwise). */
typedef struct kop {
    uint8_t op;
    uint64_t o1, o2;
} kop;
#define NO_REG 0xffff

typedef struct kexpr {
    kop *ops;
    size_t n;
} kexpr;

struct kern_varloc {
    kern *k;             /* for messages; a varloc lives no longer than k */
    char what[160];      /* "vmf in __handle_mm_fault" */
    uint64_t pc;
    uint64_t func_entry; /* entry pc of the concrete function (entry values) */
    bool is_const;
    uint64_t const_value;
    kexpr loc;           /* the location expression chosen for pc */
    kexpr fbase;         /* the function's DW_AT_frame_base at pc, if loc needs it */
    bool has_cfa;
    int cfa_reg;
    int64_t cfa_off;
    uint64_t size;       /* of the variable's type */
    bool is_signed;
};

enum loc_kind { LOC_MEM, LOC_REG, LOC_VALUE };
typedef struct kloc {
    enum loc_kind kind;
    uint64_t v;          /* address, register number or value */
} kloc;

static int read_mem(const kern_frame *f, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    if (!f || !f->mem)
        return fl_fail(err, FL_EUSAGE, "reading a variable needs guest memory but no memory callback "
                       "was given");
    return f->mem(f->ctx, addr, buf, len, err);
}

static int eval_expr(const kern_varloc *v, const kexpr *e, bool in_fbase, const kern_frame *f, kloc *out,
                    fl_error *err);

/* DW_OP_fbreg's base: the frame base, evaluated (no recursion through it). */
static int frame_base(const kern_varloc *v, bool in_fbase, const kern_frame *f, uint64_t *base, fl_error *err)
{
    if (in_fbase || !v->fbase.ops)
        return fl_fail(err, FL_EFORMAT, "DW_OP_fbreg for %s without a usable frame base in %s", v->what,
                       v->k->path);
    kloc fb;
    if (eval_expr(v, &v->fbase, true, f, &fb, err) != 0)
        return fl_error_prefix(err, "frame base for %s", v->what);
    if (fb.kind == LOC_REG)
        return read_reg(f, (int)fb.v, base, err);
    *base = fb.v;
    return 0;
}

/* The DWARF expression evaluator: a stack machine over the compiled ops;
 * registers and memory come from the stopped guest through f. */
static int eval_expr(const kern_varloc *v, const kexpr *e, bool in_fbase, const kern_frame *f, kloc *out,
                    fl_error *err)
{
    uint64_t st[64];
    int sp = 0;
    kloc res = { LOC_MEM, 0 };
    bool have_res = false;
#define PUSH(x) do { if (sp >= 64) return fl_fail(err, FL_EFORMAT, "DWARF expression for %s overflows", v->what); st[sp++] = (x); } while (0)
#define NEED(n) do { if (sp < (n)) return fl_fail(err, FL_EFORMAT, "DWARF expression for %s underflows", v->what); } while (0)
    for (size_t i = 0; i < e->n && !have_res; i++) {
        uint8_t op = e->ops[i].op;
        uint64_t o1 = e->ops[i].o1, o2 = e->ops[i].o2, a, b;
        if (op >= DW_OP_lit0 && op <= DW_OP_lit31) {
            PUSH((uint64_t)(op - DW_OP_lit0));
        } else if (op >= DW_OP_reg0 && op <= DW_OP_reg31) {
            res = (kloc){ LOC_REG, (uint64_t)(op - DW_OP_reg0) };
            have_res = true;
        } else if (op >= DW_OP_breg0 && op <= DW_OP_breg31) {
            if (read_reg(f, op - DW_OP_breg0, &a, err) != 0)
                return -1;
            PUSH(a + o1);
        } else {
            switch (op) {
            case DW_OP_addr:
            case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u: case DW_OP_const2s:
            case DW_OP_const4u: case DW_OP_const4s: case DW_OP_const8u: case DW_OP_const8s:
            case DW_OP_constu: case DW_OP_consts:
                PUSH(o1);
                break;
            case DW_OP_regx:
                res = (kloc){ LOC_REG, o1 };
                have_res = true;
                break;
            case DW_OP_bregx:
                if (read_reg(f, (int)o1, &a, err) != 0)
                    return -1;
                PUSH(a + o2);
                break;
            case DW_OP_fbreg:
                if (frame_base(v, in_fbase, f, &a, err) != 0)
                    return -1;
                PUSH(a + o1);
                break;
            case DW_OP_call_frame_cfa:
                if (!v->has_cfa)
                    return fl_fail(err, FL_EFORMAT, "the CFA for %s was not resolved", v->what);
                if (read_reg(f, v->cfa_reg, &a, err) != 0)
                    return -1;
                PUSH(a + (uint64_t)v->cfa_off);
                break;
            case DW_OP_plus_uconst: NEED(1); st[sp - 1] += o1; break;
            case DW_OP_plus: NEED(2); b = st[--sp]; st[sp - 1] += b; break;
            case DW_OP_minus: NEED(2); b = st[--sp]; st[sp - 1] -= b; break;
            case DW_OP_mul: NEED(2); b = st[--sp]; st[sp - 1] *= b; break;
            case DW_OP_and: NEED(2); b = st[--sp]; st[sp - 1] &= b; break;
            case DW_OP_or: NEED(2); b = st[--sp]; st[sp - 1] |= b; break;
            case DW_OP_xor: NEED(2); b = st[--sp]; st[sp - 1] ^= b; break;
            case DW_OP_shl: NEED(2); b = st[--sp]; st[sp - 1] = b < 64 ? st[sp - 1] << b : 0; break;
            case DW_OP_shr: NEED(2); b = st[--sp]; st[sp - 1] = b < 64 ? st[sp - 1] >> b : 0; break;
            case DW_OP_shra: NEED(2); b = st[--sp];
                st[sp - 1] = (uint64_t)((int64_t)st[sp - 1] >> (b < 63 ? b : 63)); break;
            case DW_OP_neg: NEED(1); st[sp - 1] = (uint64_t)0 - st[sp - 1]; break;
            case DW_OP_not: NEED(1); st[sp - 1] = ~st[sp - 1]; break;
            case DW_OP_dup: NEED(1); a = st[sp - 1]; PUSH(a); break;
            case DW_OP_drop: NEED(1); sp--; break;
            case DW_OP_over: NEED(2); a = st[sp - 2]; PUSH(a); break;
            case DW_OP_swap: NEED(2); a = st[sp - 1]; st[sp - 1] = st[sp - 2]; st[sp - 2] = a; break;
            case DW_OP_deref:
            case DW_OP_deref_size: {
                NEED(1);
                size_t n = op == DW_OP_deref ? 8 : (size_t)o1;
                if (n == 0 || n > 8)
                    return fl_fail(err, FL_EFORMAT, "bad DW_OP_deref_size %zu for %s", n, v->what);
                uint64_t x = 0;
                if (read_mem(f, st[sp - 1], &x, n, err) != 0)
                    return -1;
                st[sp - 1] = x;
                break;
            }
            case DW_OP_stack_value:
                NEED(1);
                res = (kloc){ LOC_VALUE, st[sp - 1] };
                have_res = true;
                break;
            case DW_OP_implicit_value:
                if (o1 > 8)
                    return fl_fail(err, FL_EFORMAT, "%s has an implicit value of %llu bytes; only "
                                   "scalars are supported", v->what, (unsigned long long)o1);
                res = (kloc){ LOC_VALUE, o2 };
                have_res = true;
                break;
            case DW_OP_piece:
                /* A scalar split in pieces: the first piece is the low
                 * part; use it if it is all we have. */
                if (sp > 0) {
                    res = (kloc){ LOC_MEM, st[sp - 1] };
                    have_res = true;
                }
                break;
            case DW_OP_entry_value:
            case DW_OP_GNU_entry_value:
                /* Only the easy case: the value a register had at entry, and
                 * we are still at the entry, so it has it now. */
                if (o2 != NO_REG && v->pc == v->func_entry) {
                    if (read_reg(f, (int)(o2 - DW_OP_reg0), &a, err) != 0)
                        return -1;
                    PUSH(a);
                    break;
                }
                return fl_fail(err, FL_ENOTFOUND, "%s at pc 0x%llx is only known as its value at function "
                               "entry, which is gone; stop at the function's entry to read it", v->what,
                               (unsigned long long)v->pc);
            case DW_OP_nop:
                break;
            default:
                return fl_fail(err, FL_EFORMAT, "the location of %s at pc 0x%llx uses DWARF op 0x%x, which "
                               "faultline does not evaluate", v->what, (unsigned long long)v->pc, op);
            }
        }
    }
    if (!have_res) {
        if (sp == 0)
            return fl_fail(err, FL_ENOTFOUND, "%s is optimised out at pc 0x%llx (empty location)",
                           v->what, (unsigned long long)v->pc);
        res = (kloc){ LOC_MEM, st[sp - 1] };
    }
#undef PUSH
#undef NEED
    *out = res;
    return 0;
}

/* Copies a libdwarf location description into e (see kop). */
static int copy_ops(kern *k, const char *what, Dwarf_Locdesc_c ld, Dwarf_Unsigned nops, kexpr *e, fl_error *err)
{
    e->ops = calloc(nops ? nops : 1, sizeof *e->ops);
    if (!e->ops)
        return fl_fail(err, FL_ENOMEM, "out of memory compiling the location of %s", what);
    for (Dwarf_Unsigned i = 0; i < nops; i++) {
        Dwarf_Small op = 0;
        Dwarf_Unsigned o1 = 0, o2 = 0, o3 = 0, br = 0;
        Dwarf_Error de = NULL;
        if (dwarf_get_location_op_value_c(ld, i, &op, &o1, &o2, &o3, &br, &de) != DW_DLV_OK)
            return kd_fail_dwarf(k, err, de, "a location expression");
        const unsigned char *blk = (const unsigned char *)(uintptr_t)o2;
        if (op == DW_OP_implicit_value) {
            uint64_t val = 0;
            if (o1 <= 8 && blk)
                memcpy(&val, blk, (size_t)o1);
            o2 = val;
        } else if (op == DW_OP_entry_value || op == DW_OP_GNU_entry_value) {
            o2 = o1 == 1 && blk && blk[0] >= DW_OP_reg0 && blk[0] <= DW_OP_reg31 ? blk[0] : NO_REG;
        }
        e->ops[e->n++] = (kop){ op, o1, o2 };
    }
    return 0;
}

/* The entry of a location list (or the single expression) that covers pc. */
static bool pick_entry(kern *k, Dwarf_Loc_Head_c head, Dwarf_Unsigned cnt, uint64_t pc, Dwarf_Locdesc_c *out,
                       Dwarf_Unsigned *nops_out)
{
    Dwarf_Error de = NULL;
    unsigned kind = DW_LKIND_unknown;
    kd_note(k, dwarf_get_loclist_head_kind(head, &kind, &de), de, ".debug_loclists");
    Dwarf_Locdesc_c deflt = NULL;
    Dwarf_Unsigned deflt_n = 0;
    for (Dwarf_Unsigned i = 0; i < cnt; i++) {
        Dwarf_Small lle = 0, src = 0;
        Dwarf_Unsigned rlo = 0, rhi = 0, nops = 0, eoff = 0, loff = 0;
        Dwarf_Bool unavail = 0;
        Dwarf_Addr lo = 0, hi = 0;
        Dwarf_Locdesc_c ld = NULL;
        int r = dwarf_get_locdesc_entry_d(head, i, &lle, &rlo, &rhi, &unavail, &lo, &hi, &nops, &ld, &src,
                                          &eoff, &loff, &de);
        kd_note(k, r, de, ".debug_loclists");
        if (r != DW_DLV_OK)
            break;
        bool list = kind == DW_LKIND_loclists;
        if (list && lle == DW_LLE_default_location) {
            deflt = ld;
            deflt_n = nops;
        } else if (list && (lle == DW_LLE_end_of_list || lle == DW_LLE_base_address ||
                            lle == DW_LLE_base_addressx)) {
            continue;
        } else if (kind == DW_LKIND_expression || (!unavail && pc >= lo && pc < hi)) {
            *out = ld;
            *nops_out = nops;
            return true;
        }
    }
    *out = deflt;
    *nops_out = deflt_n;
    return deflt != NULL;
}

/* Compiles attribute `at` (a location expression or list) of die at pc. */
static int compile_attr(kern *k, Dwarf_Die die, Dwarf_Half at, uint64_t pc, const char *what, kexpr *e,
                        fl_error *err)
{
    Dwarf_Attribute a;
    Dwarf_Error de = NULL;
    if (!kd_attr(k, die, at, &a))
        return fl_fail(err, FL_ENOTFOUND, "%s is optimised out (no %s)", what,
                       at == DW_AT_frame_base ? "frame base" : "location");
    Dwarf_Loc_Head_c head = NULL;
    Dwarf_Unsigned cnt = 0;
    if (dwarf_get_loclist_c(a, &head, &cnt, &de) != DW_DLV_OK) {
        dwarf_dealloc_attribute(a);
        return kd_fail_dwarf(k, err, de, "the location list of a variable");
    }
    Dwarf_Locdesc_c ld = NULL;
    Dwarf_Unsigned nops = 0;
    int rc;
    if (!pick_entry(k, head, cnt, pc, &ld, &nops))
        rc = fl_fail(err, FL_ENOTFOUND, "%s is optimised out at pc 0x%llx (no location list entry covers it)",
                     what, (unsigned long long)pc);
    else
        rc = copy_ops(k, what, ld, nops, e, err);
    dwarf_loc_head_c_dealloc(head);
    dwarf_dealloc_attribute(a);
    return rc;
}

static bool uses_op(const kexpr *e, uint8_t op)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->ops[i].op == op)
            return true;
    return false;
}

struct range_hit { uint64_t pc; bool hit; };
static void range_hit_cb(void *ctx, uint64_t lo, uint64_t hi)
{
    struct range_hit *h = ctx;
    if (h->pc >= lo && h->pc < hi)
        h->hit = true;
}

/* Find parameter/local `var` among the children of scope DIE `off`,
 * entering lexical blocks that contain pc. Returns the DIE offset. */
static bool find_var(kern *k, uint64_t off, const char *var, uint64_t pc, uint64_t *out, int depth)
{
    if (depth > 32)
        return false;
    bool found = false;
    kd_iter it;
    for (int r = kd_child_first_at(k, off, &it); r == 1 && !found; r = kd_child_next(&it)) {
        Dwarf_Half t = kd_tag(it.die);
        if (t == DW_TAG_formal_parameter || t == DW_TAG_variable) {
            const char *n = kd_name_deep(k, it.die);
            if (n && strcmp(n, var) == 0) {
                *out = kd_offset(k, it.die);
                found = true;
            }
        } else if (t == DW_TAG_lexical_block) {
            struct range_hit h = { pc, false };
            int nr = kd_ranges(k, it.die, range_hit_cb, &h);
            if (h.hit || nr == 0)
                found = find_var(k, kd_offset(k, it.die), var, pc, out, depth + 1);
        }
    }
    kd_child_end(&it);
    return found;
}

/* The innermost instance of func whose pc range holds pc, and the
 * outermost subprogram there (its frame base and entry pc). */
static int find_scope(kern *k, const char *func, uint64_t pc, const char *var, const kscope **best_out,
                      const kscope **outer_out, fl_error *err)
{
    uint64_t cu;
    if (!kd_cu_for_pc(k, pc, &cu))
        return fl_fail(err, FL_ENOTFOUND, "pc 0x%llx is not in any compilation unit of %s, so %s has no "
                       "location there", (unsigned long long)pc, k->path, var);
    kscope_table *t = kd_scopes(k, cu, err);
    if (!t)
        return -1;
    const kscope *best = NULL, *outer = NULL;
    for (size_t i = 0; i < t->n; i++) {
        const kscope *s = &t->v[i];
        /* gcc may put an inlined instance's DW_AT_entry_pc outside its own
         * ranges (an empty range where it starts): a probe set there is
         * still "in" that instance. */
        bool at_entry = s->tag == DW_TAG_inlined_subroutine && pc == s->entry_pc;
        if ((pc < s->lo || pc >= s->hi) && !at_entry)
            continue;
        if (s->tag == DW_TAG_subprogram && (!outer || s->depth < outer->depth))
            outer = s;
        if (s->name && strcmp(s->name, func) == 0 && (!best || s->depth > best->depth))
            best = s;
    }
    if (!best)
        return fl_fail(err, FL_ENOTFOUND, "pc 0x%llx is not inside function %s (nor an inlined instance of "
                       "it) in %s", (unsigned long long)pc, func, k->path);
    *best_out = best;
    *outer_out = outer;
    return 0;
}

/* The variable's location at v->pc, its frame base and CFA rule if it
 * needs them: everything but the guest's registers and memory. */
static int compile_var(kern *k, kern_varloc *v, uint64_t var_die, const kscope *outer, fl_error *err)
{
    Dwarf_Die vd, fd;
    if (kd_die(k, var_die, &vd) != 0)
        return -1;
    int64_t cv;
    if (kd_sdata(k, vd, DW_AT_const_value, &cv)) {
        dwarf_dealloc_die(vd);
        v->is_const = true;
        v->const_value = (uint64_t)cv;
        return 0;
    }
    int rc = compile_attr(k, vd, DW_AT_location, v->pc, v->what, &v->loc, err);
    dwarf_dealloc_die(vd);
    if (rc == 0 && outer && uses_op(&v->loc, DW_OP_fbreg)) {
        if (kd_die(k, outer->die, &fd) != 0)
            return -1;
        rc = compile_attr(k, fd, DW_AT_frame_base, v->pc, v->what, &v->fbase, err);
        dwarf_dealloc_die(fd);
        if (rc != 0)
            return fl_error_prefix(err, "frame base for %s", v->what);
    }
    if (rc == 0 && (uses_op(&v->loc, DW_OP_call_frame_cfa) || uses_op(&v->fbase, DW_OP_call_frame_cfa))) {
        rc = cfa_rule(k, v->pc, &v->cfa_reg, &v->cfa_off, err);
        v->has_cfa = rc == 0;
    }
    return rc;
}

static void var_type_info(kern *k, uint64_t var_die, uint64_t *size, bool *is_signed)
{
    *size = 8;
    *is_signed = false;
    Dwarf_Die d;
    uint64_t toff;
    if (kd_die(k, var_die, &d) != 0)
        return;
    bool has = kd_ref(k, d, DW_AT_type, &toff);
    dwarf_dealloc_die(d);
    if (!has)
        return;
    kt_type_size(k, toff, size);
    /* Signedness only matters for sign-extension of small ints. */
    for (int hops = 0; hops < 16; hops++) {
        Dwarf_Die t;
        if (kd_die(k, toff, &t) != 0)
            return;
        uint64_t enc = 0;
        Dwarf_Half tag = kd_tag(t);
        if (tag == DW_TAG_base_type && kd_udata(k, t, DW_AT_encoding, &enc))
            *is_signed = enc == DW_ATE_signed || enc == DW_ATE_signed_char;
        bool next = (tag == DW_TAG_typedef || tag == DW_TAG_const_type || tag == DW_TAG_volatile_type) &&
                    kd_ref(k, t, DW_AT_type, &toff);
        dwarf_dealloc_die(t);
        if (!next)
            return;
    }
}

static uint64_t fit(uint64_t v, uint64_t size, bool is_signed)
{
    if (size >= 8 || size == 0)
        return v;
    uint64_t mask = (UINT64_C(1) << (size * 8)) - 1;
    v &= mask;
    if (is_signed && (v >> (size * 8 - 1)) & 1)
        v |= ~mask;
    return v;
}

static int varloc_build(kern *k, const char *func, const char *var, uint64_t pc, kern_varloc *v, fl_error *err)
{
    const kscope *best = NULL, *outer = NULL;
    uint64_t var_die = 0;
    if (find_scope(k, func, pc, var, &best, &outer, err) != 0)
        return -1;
    if (!find_var(k, best->die, var, pc, &var_die, 0))
        return fl_fail(err, FL_ENOTFOUND, "%s has no parameter or local variable '%s' in scope at pc "
                       "0x%llx in %s", func, var, (unsigned long long)pc, k->path);
    v->k = k;
    v->pc = pc;
    v->func_entry = outer ? outer->entry_pc : 0;
    snprintf(v->what, sizeof v->what, "%s in %s", var, func);
    if (compile_var(k, v, var_die, outer, err) != 0)
        return -1;
    var_type_info(k, var_die, &v->size, &v->is_signed);
    return 0;
}

int kern_var_locate(kern *k, const char *func, const char *var, uint64_t pc, kern_varloc **out, fl_error *err)
{
    *out = NULL;
    kern_varloc *v = calloc(1, sizeof *v);
    if (!v)
        return fl_fail(err, FL_ENOMEM, "out of memory locating %s in %s", var, func);
    kd_enter(k);
    if (kd_leave(k, varloc_build(k, func, var, pc, v, err), err) != 0) {
        kern_varloc_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

void kern_varloc_free(kern_varloc *v)
{
    if (!v)
        return;
    free(v->loc.ops);
    free(v->fbase.ops);
    free(v);
}

static int varloc_where(const kern_varloc *v, const kern_frame *f, kloc *loc, fl_error *err)
{
    if (v->is_const) {
        *loc = (kloc){ LOC_VALUE, v->const_value };
        return 0;
    }
    return eval_expr(v, &v->loc, false, f, loc, err);
}

int kern_varloc_eval(const kern_varloc *v, const kern_frame *frame, uint64_t *value, fl_error *err)
{
    kloc loc;
    if (varloc_where(v, frame, &loc, err) != 0)
        return -1;
    if (v->size > 8 && loc.kind == LOC_MEM)
        return fl_fail(err, FL_EUSAGE, "%s is %llu bytes; kern_var_value reads scalars and pointers "
                       "(use kern_var_addr and read its members)", v->what, (unsigned long long)v->size);
    uint64_t x = 0;
    switch (loc.kind) {
    case LOC_VALUE:
        x = loc.v;
        break;
    case LOC_REG:
        if (read_reg(frame, (int)loc.v, &x, err) != 0)
            return fl_error_prefix(err, "%s", v->what);
        break;
    case LOC_MEM:
        if (read_mem(frame, loc.v, &x, v->size ? (size_t)v->size : 8, err) != 0)
            return fl_error_prefix(err, "%s at 0x%llx", v->what, (unsigned long long)loc.v);
        break;
    }
    *value = fit(x, v->size, v->is_signed);
    return 0;
}

int kern_varloc_addr(const kern_varloc *v, const kern_frame *frame, uint64_t *addr, fl_error *err)
{
    kloc loc;
    if (varloc_where(v, frame, &loc, err) != 0)
        return -1;
    if (loc.kind != LOC_MEM)
        return fl_fail(err, FL_ENOTFOUND, "%s lives in a %s at pc 0x%llx, not in memory, so it has no "
                       "address; read it with kern_var_value", v->what,
                       loc.kind == LOC_REG ? "register" : "computed value", (unsigned long long)v->pc);
    *addr = loc.v;
    return 0;
}

int kern_var_value(kern *k, const char *func, const char *var, uint64_t pc, const kern_frame *frame,
                   uint64_t *value, fl_error *err)
{
    kern_varloc *v;
    if (kern_var_locate(k, func, var, pc, &v, err) != 0)
        return -1;
    int rc = kern_varloc_eval(v, frame, value, err);
    kern_varloc_free(v);
    return rc;
}

int kern_var_addr(kern *k, const char *func, const char *var, uint64_t pc, const kern_frame *frame,
                  uint64_t *addr, fl_error *err)
{
    kern_varloc *v;
    if (kern_var_locate(k, func, var, pc, &v, err) != 0)
        return -1;
    int rc = kern_varloc_addr(v, frame, addr, err);
    kern_varloc_free(v);
    return rc;
}

/* ---- current ---- */

static int current_offsets(kern *k, fl_error *err)
{
    if (k->cur_ready)
        return 0;
    kern_member m;
    uint64_t base;
    fl_error e2 = { 0 };
    /* 6.x: pcpu_hot.current_task; before 6.2: the per-cpu current_task. */
    if (kern_sym_addr(k, "pcpu_hot", &base, &e2) == 0 && kern_member_get(k, "pcpu_hot.current_task", &m, &e2) == 0) {
        k->cur_addr = base + m.offset;
    } else if (kern_sym_addr(k, "current_task", &base, NULL) == 0) {
        k->cur_addr = base;
    } else {
        return fl_fail(err, FL_ENOTFOUND, "neither pcpu_hot.current_task nor the per-cpu current_task is in "
                       "%s, so `current` cannot be found; is this an x86-64 SMP kernel?", k->path);
    }
    if (kern_member_get(k, "task_struct.pid", &m, err) != 0)
        return -1;
    if (m.size == 0 || m.size > 8)
        return fl_fail(err, FL_EFORMAT, "task_struct.pid in %s is %llu bytes; a pid_t of 1 to 8 bytes was "
                       "expected", k->path, (unsigned long long)m.size);
    k->pid_off = m.offset;
    k->pid_size = m.size;
    if (kern_member_get(k, "task_struct.comm", &m, err) != 0)
        return -1;
    k->comm_off = m.offset;
    k->comm_size = m.size;
    if (kern_member_get(k, "task_struct.mm", &m, err) != 0)
        return -1;
    k->mm_off = m.offset;
    k->cur_ready = true;
    return 0;
}

int kern_current(kern *k, uint64_t percpu_base, const kern_frame *frame, kern_task *out, fl_error *err)
{
    memset(out, 0, sizeof *out);
    if (current_offsets(k, err) != 0)
        return -1;
    uint64_t task = 0;
    if (read_mem(frame, percpu_base + k->cur_addr, &task, 8, err) != 0)
        return fl_error_prefix(err, "reading current_task at per-cpu base 0x%llx", (unsigned long long)percpu_base);
    if (!task)
        return fl_fail(err, FL_ENOTFOUND, "current_task at per-cpu base 0x%llx is NULL; the per-cpu base is "
                       "probably wrong (gs_base vs k_gs_base: which one holds it depends on swapgs)",
                       (unsigned long long)percpu_base);
    out->task = task;
    /* pid_t and comm[] as this kernel's DWARF sizes them. */
    uint64_t pid = 0;
    if (read_mem(frame, task + k->pid_off, &pid, k->pid_size, err) != 0)
        return fl_error_prefix(err, "reading task_struct.pid of task 0x%llx", (unsigned long long)task);
    out->pid = (int)fit(pid, k->pid_size, true);
    size_t comm = k->comm_size < sizeof out->comm - 1 ? (size_t)k->comm_size : sizeof out->comm - 1;
    if (read_mem(frame, task + k->comm_off, out->comm, comm, err) != 0)
        return fl_error_prefix(err, "reading task_struct.comm of task 0x%llx", (unsigned long long)task);
    out->comm[comm] = '\0';
    if (read_mem(frame, task + k->mm_off, &out->mm, 8, err) != 0)
        return fl_error_prefix(err, "reading task_struct.mm of task 0x%llx", (unsigned long long)task);
    return 0;
}
