/* kernel layer, scope queries: the functions (inlined instances included)
 * and the parameters and locals in scope at a pc, with their types
 * described, and a function's return type. Built on the per-CU scope list
 * of kernel_dwarf.c and the location evaluator of kernel_loc.c. */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop(kern *k, Dwarf_Error de)
{
    if (de)
        dwarf_dealloc_error(k->dbg, de);
}

/* ---- types ---- */

/* Follow typedefs and qualifiers to the type that says what the bits are. */
static void describe_type(kern *k, uint64_t toff, bool has_type, kern_vtype *out)
{
    memset(out, 0, sizeof *out);
    if (!has_type) {
        out->kind = KERN_V_VOID;
        snprintf(out->name, sizeof out->name, "void");
        return;
    }
    kt_type_name(k, toff, out->name, sizeof out->name);
    if (!kt_type_size(k, toff, &out->size))
        out->size = 0;
    out->kind = KERN_V_OTHER;
    for (int hops = 0; hops < 16; hops++) {
        Dwarf_Die t;
        if (kd_die(k, toff, &t) != 0)
            return;
        Dwarf_Half tag = kd_tag(t);
        uint64_t enc = 0, next = 0;
        bool follow = false;
        if (tag == DW_TAG_base_type && kd_udata(k, t, DW_AT_encoding, &enc)) {
            out->kind = enc == DW_ATE_boolean ? KERN_V_BOOL
                        : enc == DW_ATE_signed || enc == DW_ATE_signed_char ? KERN_V_SIGNED
                        : enc == DW_ATE_unsigned || enc == DW_ATE_unsigned_char ? KERN_V_UNSIGNED
                                                                                 : KERN_V_OTHER;
        } else if (tag == DW_TAG_enumeration_type) {
            const char *n = kd_name(k, t);
            out->kind = KERN_V_ENUM;
            snprintf(out->enum_name, sizeof out->enum_name, "%s", n ? n : "");
        } else if (tag == DW_TAG_pointer_type) {
            out->kind = KERN_V_POINTER;
        } else if (tag == DW_TAG_typedef || tag == DW_TAG_const_type || tag == DW_TAG_volatile_type ||
                   tag == DW_TAG_restrict_type || tag == DW_TAG_atomic_type) {
            follow = kd_ref(k, t, DW_AT_type, &next);
        }
        dwarf_dealloc_die(t);
        if (!follow)
            return;
        toff = next;
    }
}

/* A DIE's DW_AT_type, through its abstract origin or specification. */
static bool type_of(kern *k, uint64_t off, uint64_t *toff)
{
    for (int hops = 0; hops < 4; hops++) {
        Dwarf_Die d;
        if (kd_die(k, off, &d) != 0)
            return false;
        bool has = kd_ref(k, d, DW_AT_type, toff);
        uint64_t o = 0;
        bool up = !has && (kd_ref(k, d, DW_AT_abstract_origin, &o) || kd_ref(k, d, DW_AT_specification, &o));
        dwarf_dealloc_die(d);
        if (has)
            return true;
        if (!up)
            return false;
        off = o;
    }
    return false;
}

int kern_scope_return_type(kern *k, uint64_t frame_die, kern_vtype *out, fl_error *err)
{
    Dwarf_Die d;
    if (kd_die(k, frame_die, &d) != 0)
        return fl_fail(err, FL_EFORMAT, "cannot read the function's DWARF entry at offset 0x%llx of %s",
                       (unsigned long long)frame_die, k->path);
    dwarf_dealloc_die(d);
    uint64_t toff = 0;
    bool has = type_of(k, frame_die, &toff);
    describe_type(k, toff, has, out);
    return 0;
}

/* ---- the scope chain ---- */

static int push_frame(kern_scope *s, const kscope *sc)
{
    kern_scope_frame *nf = realloc(s->frames, (s->nframes + 1) * sizeof *nf);
    if (!nf)
        return -1;
    s->frames = nf;
    s->frames[s->nframes++] = (kern_scope_frame){ .function = sc->name, .die = sc->die, .entry_pc = sc->entry_pc,
                                                  .inlined = sc->tag == DW_TAG_inlined_subroutine };
    return 0;
}

static int push_var(kern *k, kern_scope *s, Dwarf_Die c, uint64_t off, bool is_param)
{
    const char *n = kd_name_deep(k, c);
    if (!n || !s->nframes)
        return 0;  /* unnamed (compiler-made) variables say nothing to a reader */
    kern_var *nv = realloc(s->vars, (s->nvars + 1) * sizeof *nv);
    if (!nv)
        return -1;
    s->vars = nv;
    kern_var *v = &s->vars[s->nvars++];
    *v = (kern_var){ .name = n, .die = off, .frame = (int)s->nframes - 1, .is_param = is_param,
                     .function = s->frames[s->nframes - 1].function };
    uint64_t toff = 0;
    bool has = type_of(k, off, &toff);
    describe_type(k, toff, has, &v->type);
    return 0;
}

/* The parameters and variables that are direct children of scope DIE off. */
static int scope_vars(kern *k, uint64_t off, kern_scope *s, fl_error *err)
{
    Dwarf_Die p, c = NULL;
    if (kd_die(k, off, &p) != 0)
        return fl_fail(err, FL_EFORMAT, "cannot read the scope at DWARF offset 0x%llx of %s",
                       (unsigned long long)off, k->path);
    Dwarf_Error de = NULL;
    int r = dwarf_child(p, &c, &de);
    drop(k, de);
    dwarf_dealloc_die(p);
    int rc = 0;
    while (r == DW_DLV_OK && rc == 0) {
        Dwarf_Half t = kd_tag(c);
        Dwarf_Off co = 0;
        de = NULL;
        dwarf_dieoffset(c, &co, &de);
        drop(k, de);
        if ((t == DW_TAG_formal_parameter || t == DW_TAG_variable) && push_var(k, s, c, co,
                                                                              t == DW_TAG_formal_parameter) < 0)
            rc = fl_fail(err, FL_EIO, "out of memory listing the variables at a pc");
        Dwarf_Die sib = NULL;
        de = NULL;
        r = dwarf_siblingof_b(k->dbg, c, 1, &sib, &de);
        drop(k, de);
        dwarf_dealloc_die(c);
        c = sib;
    }
    if (r == DW_DLV_OK && c)
        dwarf_dealloc_die(c);
    return rc;
}

static int by_depth(const void *a, const void *b)
{
    const kscope *x = *(const kscope *const *)a, *y = *(const kscope *const *)b;
    return x->depth < y->depth ? -1 : x->depth > y->depth;
}

int kern_scope_at(kern *k, uint64_t pc, kern_scope *out, fl_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t cu;
    if (!kd_cu_for_pc(k, pc, &cu))
        return 0;
    kscope_table *t = kd_scopes(k, cu, err);
    if (!t)
        return -1;
    const kscope *hit[64];
    size_t n = 0;
    for (size_t i = 0; i < t->n && n < 64; i++) {
        const kscope *s = &t->v[i];
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = hit[j]->die == s->die;
        if (!dup && pc >= s->lo && pc < s->hi)
            hit[n++] = s;
    }
    qsort(hit, n, sizeof *hit, by_depth);
    for (size_t i = 0; i < n; i++) {
        if (hit[i]->tag != DW_TAG_lexical_block && push_frame(out, hit[i]) < 0) {
            kern_scope_free(out);
            return fl_fail(err, FL_EIO, "out of memory listing the functions at a pc");
        }
        if (scope_vars(k, hit[i]->die, out, err) < 0) {
            kern_scope_free(out);
            return -1;
        }
    }
    return 0;
}

void kern_scope_free(kern_scope *s)
{
    if (!s)
        return;
    free(s->frames);
    free(s->vars);
    memset(s, 0, sizeof *s);
}

int kern_scope_value(kern *k, const kern_var *v, uint64_t pc, const kern_frame *frame, uint64_t *value,
                     fl_error *err)
{
    if (v->type.kind == KERN_V_OTHER && v->type.size > 8)
        return fl_fail(err, FL_EUSAGE, "%s in %s is a %s of %llu bytes, not a scalar", v->name, v->function,
                       v->type.name, (unsigned long long)v->type.size);
    return kern_var_value(k, v->function, v->name, pc, frame, value, err);
}

/* ---- compiled locations ---- */

/* One location expression in one of the simple forms, else KERN_LOC_SLOW. */
static void compile_expr(kern *k, Dwarf_Locdesc_c ld, Dwarf_Unsigned nops, kern_loc *out)
{
    Dwarf_Small op[2] = { 0, 0 };
    Dwarf_Unsigned o1[2] = { 0, 0 };
    out->kind = nops == 0 ? KERN_LOC_NONE : KERN_LOC_SLOW;
    for (Dwarf_Unsigned i = 0; i < nops && i < 2; i++) {
        Dwarf_Unsigned o2 = 0, o3 = 0, br = 0;
        Dwarf_Error de = NULL;
        if (dwarf_get_location_op_value_c(ld, i, &op[i], &o1[i], &o2, &o3, &br, &de) != DW_DLV_OK) {
            drop(k, de);
            return;
        }
    }
    if (nops == 1 && op[0] >= DW_OP_reg0 && op[0] <= DW_OP_reg31) {
        *out = (kern_loc){ .kind = KERN_LOC_REG, .reg = op[0] - DW_OP_reg0 };
    } else if (nops == 1 && op[0] == DW_OP_regx) {
        *out = (kern_loc){ .kind = KERN_LOC_REG, .reg = (int)o1[0] };
    } else if (nops == 2 && op[1] == DW_OP_stack_value && op[0] >= DW_OP_breg0 && op[0] <= DW_OP_breg31) {
        *out = (kern_loc){ .kind = KERN_LOC_REG_PLUS, .reg = op[0] - DW_OP_breg0, .off = (int64_t)o1[0] };
    } else if (nops == 2 && op[1] == DW_OP_stack_value && op[0] >= DW_OP_lit0 && op[0] <= DW_OP_lit31) {
        *out = (kern_loc){ .kind = KERN_LOC_CONST, .off = op[0] - DW_OP_lit0 };
    } else if (nops == 2 && op[1] == DW_OP_stack_value &&
               (op[0] == DW_OP_constu || op[0] == DW_OP_consts || op[0] == DW_OP_const1u ||
                op[0] == DW_OP_const2u || op[0] == DW_OP_const4u || op[0] == DW_OP_const8u)) {
        *out = (kern_loc){ .kind = KERN_LOC_CONST, .off = (int64_t)o1[0] };
    }
}

static int push_loc(kern_loc **v, size_t *n, kern_loc l)
{
    kern_loc *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    nv[(*n)++] = l;
    return 0;
}

/* The entries of a location list head (its address ranges already cooked
 * by libdwarf), or one entry for a single expression. */
static int compile_list(kern *k, Dwarf_Loc_Head_c head, Dwarf_Unsigned cnt, kern_loc **locs, size_t *count)
{
    unsigned kind = DW_LKIND_unknown;
    Dwarf_Error de = NULL;
    dwarf_get_loclist_head_kind(head, &kind, &de);
    drop(k, de);
    for (Dwarf_Unsigned i = 0; i < cnt; i++) {
        Dwarf_Small lle = 0, src = 0;
        Dwarf_Unsigned rlo = 0, rhi = 0, nops = 0, eoff = 0, loff = 0;
        Dwarf_Bool unavail = 0;
        Dwarf_Addr lo = 0, hi = 0;
        Dwarf_Locdesc_c ld = NULL;
        de = NULL;
        if (dwarf_get_locdesc_entry_d(head, i, &lle, &rlo, &rhi, &unavail, &lo, &hi, &nops, &ld, &src, &eoff,
                                      &loff, &de) != DW_DLV_OK) {
            drop(k, de);
            continue;
        }
        if (kind == DW_LKIND_loclists &&
            (lle == DW_LLE_end_of_list || lle == DW_LLE_base_address || lle == DW_LLE_base_addressx))
            continue;
        bool everywhere = kind == DW_LKIND_expression || (kind == DW_LKIND_loclists && lle == DW_LLE_default_location);
        kern_loc l = { .lo = everywhere ? 0 : lo, .hi = everywhere ? UINT64_MAX : hi };
        if (unavail)
            l.kind = KERN_LOC_NONE;
        else
            compile_expr(k, ld, nops, &l);
        l.lo = everywhere ? 0 : lo;
        l.hi = everywhere ? UINT64_MAX : hi;
        if (push_loc(locs, count, l) < 0)
            return -1;
    }
    return 0;
}

int kern_scope_locs(kern *k, const kern_var *v, kern_loc **locs, size_t *count, fl_error *err)
{
    *locs = NULL;
    *count = 0;
    Dwarf_Die d;
    if (kd_die(k, v->die, &d) != 0)
        return fl_fail(err, FL_EFORMAT, "cannot read the DWARF entry of %s in %s", v->name, k->path);
    int rc = 0;
    int64_t cv;
    Dwarf_Attribute a = NULL;
    Dwarf_Error de = NULL;
    if (kd_sdata(k, d, DW_AT_const_value, &cv)) {
        rc = push_loc(locs, count, (kern_loc){ .lo = 0, .hi = UINT64_MAX, .kind = KERN_LOC_SLOW });
    } else if (dwarf_attr(d, DW_AT_location, &a, &de) == DW_DLV_OK) {
        Dwarf_Loc_Head_c head = NULL;
        Dwarf_Unsigned cnt = 0;
        if (dwarf_get_loclist_c(a, &head, &cnt, &de) == DW_DLV_OK) {
            rc = compile_list(k, head, cnt, locs, count);
            dwarf_loc_head_c_dealloc(head);
        } else {
            drop(k, de);
            rc = push_loc(locs, count, (kern_loc){ .lo = 0, .hi = UINT64_MAX, .kind = KERN_LOC_SLOW });
        }
        dwarf_dealloc_attribute(a);
    } else {
        drop(k, de);  /* no location: optimized out everywhere */
    }
    dwarf_dealloc_die(d);
    if (rc < 0) {
        free(*locs);
        *locs = NULL;
        *count = 0;
        return fl_fail(err, FL_EIO, "out of memory compiling the location of %s", v->name);
    }
    return 0;
}

/* The value as the variable's type has it: truncated, sign-extended. */
static uint64_t fit_type(const kern_vtype *t, uint64_t v)
{
    if (t->size == 0 || t->size >= 8)
        return v;
    uint64_t mask = (UINT64_C(1) << (t->size * 8)) - 1;
    v &= mask;
    if (t->kind == KERN_V_SIGNED && (v >> (t->size * 8 - 1)) & 1)
        v |= ~mask;
    return v;
}

int kern_scope_locs_value(kern *k, const kern_var *v, const kern_loc *locs, size_t count, uint64_t pc,
                          const kern_frame *frame, uint64_t *value, fl_error *err)
{
    const kern_loc *l = NULL;
    for (size_t i = 0; i < count && !l; i++)
        if (pc >= locs[i].lo && pc < locs[i].hi)
            l = &locs[i];
    if (!l || l->kind == KERN_LOC_NONE)
        return fl_fail(err, FL_ENOTFOUND, "%s in %s is optimised out at pc 0x%llx", v->name, v->function,
                       (unsigned long long)pc);
    if (l->kind == KERN_LOC_SLOW)
        return kern_scope_value(k, v, pc, frame, value, err);
    if (v->type.kind == KERN_V_OTHER && v->type.size > 8)
        return fl_fail(err, FL_EUSAGE, "%s in %s is not a scalar", v->name, v->function);
    uint64_t r = 0;
    if (l->kind != KERN_LOC_CONST && frame->reg(frame->ctx, l->reg, &r, err) < 0)
        return -1;
    *value = fit_type(&v->type, l->kind == KERN_LOC_CONST ? (uint64_t)l->off : r + (uint64_t)l->off);
    return 0;
}
