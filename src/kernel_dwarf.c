/* kernel layer, DWARF plumbing shared by types, lines and locations:
 * DIE attribute helpers, the CU list, an incremental by-name index of
 * top-level DIEs, pc -> CU through .debug_aranges, and per-CU scope lists.
 *
 * Laziness: the index grows one CU at a time and only until the name asked
 * for is found, so a lookup of `struct pt_regs` touches the first few CUs,
 * not the 27 MB of .debug_info. */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kd_errmsg(kern *k, Dwarf_Error de, char *buf, size_t len)
{
    if (!de) {
        snprintf(buf, len, "no detail from libdwarf");
        return buf;
    }
    snprintf(buf, len, "%s", dwarf_errmsg(de));
    dwarf_dealloc(k ? k->dbg : NULL, de, DW_DLA_ERROR);
    return buf;
}

void kd_dropErr(kern *k, Dwarf_Error de)
{
    if (de)
        dwarf_dealloc(k->dbg, de, DW_DLA_ERROR);
}

const char *kd_keep(kern *k, const char *s)
{
    size_t n = strlen(s);
    kstr *p = malloc(sizeof *p + n + 1);
    if (!p)
        return NULL;
    memcpy(p->s, s, n + 1);
    p->next = k->strs;
    k->strs = p;
    return p->s;
}

int kd_die(kern *k, uint64_t off, Dwarf_Die *out)
{
    Dwarf_Error de = NULL;
    int r = dwarf_offdie_b(k->dbg, off, 1, out, &de);
    kd_dropErr(k, de);
    return r == DW_DLV_OK ? 0 : -1;
}

Dwarf_Half kd_tag(Dwarf_Die d)
{
    Dwarf_Half t = 0;
    Dwarf_Error de = NULL;
    if (dwarf_tag(d, &t, &de) != DW_DLV_OK)
        return 0;   /* dwarf_tag only fails on a NULL die, which we never pass */
    return t;
}

const char *kd_name(kern *k, Dwarf_Die d)
{
    char *n = NULL;
    Dwarf_Error de = NULL;
    int r = dwarf_diename(d, &n, &de);
    kd_dropErr(k, de);
    return r == DW_DLV_OK ? n : NULL;
}

static bool get_attr(kern *k, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *a)
{
    Dwarf_Error de = NULL;
    int r = dwarf_attr(d, at, a, &de);
    kd_dropErr(k, de);
    return r == DW_DLV_OK;
}

bool kd_ref(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *off)
{
    Dwarf_Attribute a;
    if (!get_attr(k, d, at, &a))
        return false;
    Dwarf_Off o = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_global_formref(a, &o, &de);
    kd_dropErr(k, de);
    dwarf_dealloc_attribute(a);
    if (r != DW_DLV_OK)
        return false;
    *off = o;
    return true;
}

bool kd_udata(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *v)
{
    Dwarf_Attribute a;
    if (!get_attr(k, d, at, &a))
        return false;
    Dwarf_Unsigned u = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_formudata(a, &u, &de);
    kd_dropErr(k, de);
    de = NULL;
    if (r != DW_DLV_OK) {
        /* DW_FORM_implicit_const (gcc uses it for enum byte sizes) is
         * only readable as signed in this libdwarf. */
        Dwarf_Signed s = 0;
        r = dwarf_formsdata(a, &s, &de);
        kd_dropErr(k, de);
        u = (Dwarf_Unsigned)s;
        if (r == DW_DLV_OK && s < 0)
            r = DW_DLV_ERROR;
    }
    dwarf_dealloc_attribute(a);
    if (r != DW_DLV_OK)
        return false;
    *v = u;
    return true;
}

bool kd_sdata(kern *k, Dwarf_Die d, Dwarf_Half at, int64_t *v)
{
    Dwarf_Attribute a;
    if (!get_attr(k, d, at, &a))
        return false;
    Dwarf_Half form = 0;
    Dwarf_Error de = NULL;
    dwarf_whatform(a, &form, &de);
    kd_dropErr(k, de);
    de = NULL;
    int r;
    /* data1..data8 are sign-less in DWARF; libdwarf's formsdata sign-extends
     * them, which is right for enumerators of signed enums but wrong for
     * 0x80000000 in an unsigned one; sdata/implicit_const are signed. */
    if (form == DW_FORM_sdata || form == DW_FORM_implicit_const) {
        Dwarf_Signed s = 0;
        r = dwarf_formsdata(a, &s, &de);
        *v = s;
    } else {
        Dwarf_Unsigned u = 0;
        r = dwarf_formudata(a, &u, &de);
        *v = (int64_t)u;
    }
    kd_dropErr(k, de);
    dwarf_dealloc_attribute(a);
    return r == DW_DLV_OK;
}

bool kd_flag(kern *k, Dwarf_Die d, Dwarf_Half at)
{
    Dwarf_Bool b = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_hasattr(d, at, &b, &de);
    kd_dropErr(k, de);
    return r == DW_DLV_OK && b;
}

const char *kd_name_deep(kern *k, Dwarf_Die d)
{
    const char *n = kd_name(k, d);
    uint64_t off;
    /* Concrete/inlined DIEs name themselves through their origin; bounded
     * because a malformed file could loop. */
    for (int hops = 0; !n && hops < 4; hops++) {
        if (!kd_ref(k, d, DW_AT_abstract_origin, &off) && !kd_ref(k, d, DW_AT_specification, &off))
            break;
        Dwarf_Die o;
        if (kd_die(k, off, &o) != 0)
            break;
        n = kd_name(k, o);
        if (hops)
            dwarf_dealloc_die(d);
        d = o;
    }
    return n;
}

int kd_ranges(kern *k, Dwarf_Die d, kd_range_fn fn, void *ctx)
{
    Dwarf_Error de = NULL;
    Dwarf_Addr lo = 0, hi = 0;
    Dwarf_Half form = 0;
    enum Dwarf_Form_Class cls = DW_FORM_CLASS_UNKNOWN;
    if (dwarf_lowpc(d, &lo, &de) == DW_DLV_OK) {
        if (dwarf_highpc_b(d, &hi, &form, &cls, &de) == DW_DLV_OK) {
            if (cls != DW_FORM_CLASS_ADDRESS)
                hi += lo;
            if (hi > lo)
                fn(ctx, lo, hi);
            return hi > lo;
        }
        kd_dropErr(k, de);
        return 0;
    }
    kd_dropErr(k, de);
    de = NULL;
    Dwarf_Attribute a;
    if (!get_attr(k, d, DW_AT_ranges, &a))
        return 0;
    int n = 0;
    Dwarf_Unsigned val = 0;
    dwarf_whatform(a, &form, &de);
    kd_dropErr(k, de);
    de = NULL;
    int r;
    if (form == DW_FORM_rnglistx) {
        r = dwarf_formudata(a, &val, &de);
    } else {
        Dwarf_Off o = 0;
        r = dwarf_global_formref(a, &o, &de);
        val = o;
    }
    kd_dropErr(k, de);
    de = NULL;
    Dwarf_Rnglists_Head head = NULL;
    Dwarf_Unsigned count = 0, global = 0;
    if (r == DW_DLV_OK &&
        dwarf_rnglists_get_rle_head(a, form, val, &head, &count, &global, &de) == DW_DLV_OK) {
        for (Dwarf_Unsigned i = 0; i < count; i++) {
            unsigned len = 0, code = 0;
            Dwarf_Unsigned raw1, raw2, c1, c2;
            Dwarf_Bool unavail = 0;
            if (dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2, &unavail,
                                                  &c1, &c2, &de) != DW_DLV_OK) {
                kd_dropErr(k, de);
                de = NULL;
                break;
            }
            if (unavail || code == DW_RLE_end_of_list || code == DW_RLE_base_address ||
                code == DW_RLE_base_addressx)
                continue;
            if (c2 > c1) {
                fn(ctx, c1, c2);
                n++;
            }
        }
        dwarf_dealloc_rnglists_head(head);
    } else if (r == DW_DLV_OK) {
        /* DWARF 4 .debug_ranges (an older kernel or fixture). */
        kd_dropErr(k, de);
        de = NULL;
        Dwarf_Ranges *rb = NULL;
        Dwarf_Signed cnt = 0;
        Dwarf_Unsigned bytes = 0;
        Dwarf_Off real = 0;
        if (dwarf_get_ranges_b(k->dbg, val, d, &real, &rb, &cnt, &bytes, &de) == DW_DLV_OK) {
            Dwarf_Addr base = 0;
            Dwarf_Die cu = NULL;
            Dwarf_Off cuoff = 0;
            if (dwarf_CU_dieoffset_given_die(d, &cuoff, &de) == DW_DLV_OK && kd_die(k, cuoff, &cu) == 0) {
                Dwarf_Addr b;
                if (dwarf_lowpc(cu, &b, &de) == DW_DLV_OK)
                    base = b;
                dwarf_dealloc_die(cu);
            }
            kd_dropErr(k, de);
            de = NULL;
            for (Dwarf_Signed i = 0; i < cnt; i++) {
                if (rb[i].dwr_type == DW_RANGES_END)
                    break;
                if (rb[i].dwr_type == DW_RANGES_ADDRESS_SELECTION) {
                    base = rb[i].dwr_addr2;
                    continue;
                }
                if (rb[i].dwr_addr2 > rb[i].dwr_addr1) {
                    fn(ctx, base + rb[i].dwr_addr1, base + rb[i].dwr_addr2);
                    n++;
                }
            }
            dwarf_ranges_dealloc(k->dbg, rb, cnt);
        }
    }
    kd_dropErr(k, de);
    dwarf_dealloc_attribute(a);
    return n;
}

/* ---- CU list ---- */

int kd_load_cus(kern *k, fl_error *err)
{
    if (k->cus_done)
        return 0;
    size_t cap = 256;
    k->cus = malloc(cap * sizeof *k->cus);
    if (!k->cus)
        return fl_fail(err, FL_EIO, "out of memory listing compilation units of %s", k->path);
    for (;;) {
        Dwarf_Unsigned hlen = 0, typeoff = 0, next = 0;
        Dwarf_Half ver = 0, asz = 0, lsz = 0, esz = 0, cutype = 0;
        Dwarf_Off abbr = 0;
        Dwarf_Sig8 sig;
        Dwarf_Error de = NULL;
        int r = dwarf_next_cu_header_d(k->dbg, 1, &hlen, &ver, &abbr, &asz, &lsz, &esz, &sig, &typeoff,
                                       &next, &cutype, &de);
        if (r == DW_DLV_NO_ENTRY)
            break;
        if (r != DW_DLV_OK) {
            char m[200];
            kd_errmsg(k, de, m, sizeof m);
            return fl_fail(err, FL_EFORMAT, "cannot read compilation unit %zu of %s (%s); the DWARF "
                           "may be corrupt: rebuild the kernel", k->ncus, k->path, m);
        }
        Dwarf_Die cu = NULL;
        if (dwarf_siblingof_b(k->dbg, NULL, 1, &cu, &de) != DW_DLV_OK) {
            kd_dropErr(k, de);
            continue;
        }
        Dwarf_Off off = 0;
        dwarf_dieoffset(cu, &off, &de);
        kd_dropErr(k, de);
        dwarf_dealloc_die(cu);
        if (k->ncus == cap) {
            uint64_t *n = realloc(k->cus, 2 * cap * sizeof *n);
            if (!n)
                return fl_fail(err, FL_EIO, "out of memory listing compilation units of %s", k->path);
            k->cus = n;
            cap *= 2;
        }
        k->cus[k->ncus++] = off;
    }
    k->cus_done = true;
    return 0;
}

/* ---- by-name index of top-level DIEs ---- */

static uint32_t name_hash(const char *s, uint8_t kind)
{
    uint32_t h = 2166136261u ^ kind;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h ? h : 1;
}

static kix_entry *ix_find(kern *k, const char *name, uint8_t kind, uint32_t h)
{
    if (!k->ix_cap)
        return NULL;
    for (size_t i = h & (k->ix_cap - 1);; i = (i + 1) & (k->ix_cap - 1)) {
        kix_entry *e = &k->ix[i];
        if (!e->name)
            return NULL;
        if (e->hash == h && e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    }
}

static int ix_insert(kern *k, const kix_entry *ne)
{
    if ((k->ix_n + 1) * 2 > k->ix_cap) {
        size_t ncap = k->ix_cap ? k->ix_cap * 2 : 4096;
        kix_entry *n = calloc(ncap, sizeof *n);
        if (!n)
            return -1;
        for (size_t i = 0; i < k->ix_cap; i++) {
            if (!k->ix[i].name)
                continue;
            size_t j = k->ix[i].hash & (ncap - 1);
            while (n[j].name)
                j = (j + 1) & (ncap - 1);
            n[j] = k->ix[i];
        }
        free(k->ix);
        k->ix = n;
        k->ix_cap = ncap;
    }
    size_t j = ne->hash & (k->ix_cap - 1);
    while (k->ix[j].name)
        j = (j + 1) & (k->ix_cap - 1);
    k->ix[j] = *ne;
    k->ix_n++;
    return 0;
}

static uint8_t tag_kind(Dwarf_Half tag)
{
    switch (tag) {
    case DW_TAG_structure_type: return KIX_STRUCT;
    case DW_TAG_union_type: return KIX_UNION;
    case DW_TAG_typedef: return KIX_TYPEDEF;
    case DW_TAG_enumeration_type: return KIX_ENUM;
    case DW_TAG_subprogram: return KIX_SUBPROG;
    default: return 0;
    }
}

/* Index the top-level DIEs of CU number i. Only names are read: children
 * (members, function bodies) are skipped through DW_AT_sibling. */
static int scan_cu(kern *k, size_t i)
{
    Dwarf_Die cu, c = NULL;
    if (kd_die(k, k->cus[i], &cu) != 0)
        return 0;
    Dwarf_Error de = NULL;
    int r = dwarf_child(cu, &c, &de);
    kd_dropErr(k, de);
    dwarf_dealloc_die(cu);
    while (r == DW_DLV_OK) {
        uint8_t kind = tag_kind(kd_tag(c));
        const char *n = kind ? kd_name(k, c) : NULL;
        if (n && !kd_flag(k, c, DW_AT_declaration)) {
            uint32_t h = name_hash(n, kind);
            if (!ix_find(k, n, kind, h)) {
                Dwarf_Off off = 0;
                dwarf_dieoffset(c, &off, &de);
                kd_dropErr(k, de);
                de = NULL;
                kix_entry e = { .name = n, .die = off, .cu = (uint32_t)i, .hash = h, .kind = kind };
                if (ix_insert(k, &e) != 0) {
                    dwarf_dealloc_die(c);
                    return -1;
                }
            }
        }
        Dwarf_Die s = NULL;
        r = dwarf_siblingof_b(k->dbg, c, 1, &s, &de);
        kd_dropErr(k, de);
        de = NULL;
        dwarf_dealloc_die(c);
        c = s;
    }
    return 0;
}

bool kd_lookup(kern *k, const char *name, const uint8_t *kinds, kix_entry *out, fl_error *err)
{
    if (kd_load_cus(k, err) != 0)
        return false;
    for (;;) {
        for (const uint8_t *kd = kinds; *kd; kd++) {
            kix_entry *e = ix_find(k, name, *kd, name_hash(name, *kd));
            if (e) {
                *out = *e;
                return true;
            }
        }
        if (k->scanned >= k->ncus)
            return false;
        if (scan_cu(k, k->scanned) != 0) {
            fl_fail(err, FL_EIO, "out of memory indexing the DWARF of %s", k->path);
            return false;
        }
        k->scanned++;
    }
}

/* ---- pc -> CU ---- */

struct cu_hit { uint64_t pc; bool hit; };
static void cu_range_cb(void *ctx, uint64_t lo, uint64_t hi)
{
    struct cu_hit *h = ctx;
    if (h->pc >= lo && h->pc < hi)
        h->hit = true;
}

bool kd_cu_for_pc(kern *k, uint64_t pc, uint64_t *cu_die)
{
    Dwarf_Error de = NULL;
    if (!k->aranges_tried) {
        k->aranges_tried = true;
        if (dwarf_get_aranges(k->dbg, &k->aranges, &k->naranges, &de) != DW_DLV_OK) {
            kd_dropErr(k, de);
            de = NULL;
            k->aranges = NULL;
            k->naranges = 0;
        }
    }
    if (k->naranges > 0) {
        Dwarf_Arange ar;
        if (dwarf_get_arange(k->aranges, (Dwarf_Unsigned)k->naranges, pc, &ar, &de) == DW_DLV_OK) {
            Dwarf_Off off;
            if (dwarf_get_cu_die_offset(ar, &off, &de) == DW_DLV_OK) {
                *cu_die = off;
                return true;
            }
        }
        kd_dropErr(k, de);
        de = NULL;
    }
    /* No (or incomplete) .debug_aranges: ask each CU DIE for its ranges. */
    if (kd_load_cus(k, NULL) != 0)
        return false;
    for (size_t i = 0; i < k->ncus; i++) {
        Dwarf_Die cu;
        if (kd_die(k, k->cus[i], &cu) != 0)
            continue;
        struct cu_hit h = { pc, false };
        kd_ranges(k, cu, cu_range_cb, &h);
        dwarf_dealloc_die(cu);
        if (h.hit) {
            *cu_die = k->cus[i];
            return true;
        }
    }
    return false;
}

/* ---- scope lists ---- */

struct scope_ctx {
    kern *k;
    kscope_table *t;
    kscope proto;
    bool oom;
};

static void scope_range_cb(void *ctx, uint64_t lo, uint64_t hi)
{
    struct scope_ctx *c = ctx;
    kscope_table *t = c->t;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 256;
        kscope *n = realloc(t->v, ncap * sizeof *n);
        if (!n) {
            c->oom = true;
            return;
        }
        t->v = n;
        t->cap = ncap;
    }
    kscope s = c->proto;
    s.lo = lo;
    s.hi = hi;
    t->v[t->n++] = s;
}

static void entry_pc_of(kern *k, Dwarf_Die d, kscope_table *t, size_t first)
{
    uint64_t lowest = UINT64_MAX;
    for (size_t i = first; i < t->n; i++)
        if (t->v[i].lo < lowest)
            lowest = t->v[i].lo;
    uint64_t epc = lowest;
    Dwarf_Attribute a;
    if (get_attr(k, d, DW_AT_entry_pc, &a)) {
        Dwarf_Error de = NULL;
        Dwarf_Half form = 0;
        Dwarf_Addr ad;
        Dwarf_Unsigned u;
        dwarf_whatform(a, &form, &de);
        kd_dropErr(k, de);
        de = NULL;
        if (form == DW_FORM_addr || form == DW_FORM_addrx || form == DW_FORM_addrx1 ||
            form == DW_FORM_addrx2 || form == DW_FORM_addrx3 || form == DW_FORM_addrx4 ||
            form == DW_FORM_GNU_addr_index) {
            if (dwarf_formaddr(a, &ad, &de) == DW_DLV_OK)
                epc = ad;
        } else if (dwarf_formudata(a, &u, &de) == DW_DLV_OK && first < t->n) {
            /* DWARF 5: a constant is an offset from the entity's base. */
            epc = t->v[first].lo + u;
        }
        kd_dropErr(k, de);
        dwarf_dealloc_attribute(a);
    }
    for (size_t i = first; i < t->n; i++)
        t->v[i].entry_pc = epc;
}

static void walk_scopes(struct scope_ctx *c, Dwarf_Die parent, int depth)
{
    kern *k = c->k;
    Dwarf_Die d = NULL;
    Dwarf_Error de = NULL;
    int r = dwarf_child(parent, &d, &de);
    kd_dropErr(k, de);
    de = NULL;
    while (r == DW_DLV_OK && !c->oom) {
        Dwarf_Half tag = kd_tag(d);
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block) {
            size_t first = c->t->n;
            Dwarf_Off off = 0;
            dwarf_dieoffset(d, &off, &de);
            kd_dropErr(k, de);
            de = NULL;
            uint64_t origin = off;
            if (tag != DW_TAG_lexical_block)
                kd_ref(k, d, DW_AT_abstract_origin, &origin);
            c->proto = (kscope){ .die = off, .origin = origin, .depth = (uint16_t)depth, .tag = tag,
                                 .name = tag == DW_TAG_lexical_block ? NULL : kd_name_deep(k, d) };
            if (kd_ranges(k, d, scope_range_cb, c) > 0) {
                entry_pc_of(k, d, c->t, first);
                walk_scopes(c, d, depth + 1);
            }
        }
        Dwarf_Die s = NULL;
        r = dwarf_siblingof_b(k->dbg, d, 1, &s, &de);
        kd_dropErr(k, de);
        de = NULL;
        dwarf_dealloc_die(d);
        d = s;
    }
    if (r == DW_DLV_OK && d)
        dwarf_dealloc_die(d);
}

kscope_table *kd_scopes(kern *k, uint64_t cu_die, fl_error *err)
{
    for (kscope_table *t = k->scopes; t; t = t->next)
        if (t->cu_die == cu_die)
            return t;
    kscope_table *t = calloc(1, sizeof *t);
    Dwarf_Die cu;
    if (!t) {
        fl_fail(err, FL_EIO, "out of memory reading the functions of a compilation unit of %s", k->path);
        return NULL;
    }
    if (kd_die(k, cu_die, &cu) != 0) {
        free(t);
        fl_fail(err, FL_EFORMAT, "cannot read the compilation unit at .debug_info offset 0x%llx of %s; "
                "the DWARF may be corrupt", (unsigned long long)cu_die, k->path);
        return NULL;
    }
    t->cu_die = cu_die;
    struct scope_ctx c = { .k = k, .t = t };
    walk_scopes(&c, cu, 0);
    dwarf_dealloc_die(cu);
    if (c.oom) {
        free(t->v);
        free(t);
        fl_fail(err, FL_EIO, "out of memory reading the functions of a compilation unit of %s", k->path);
        return NULL;
    }
    t->next = k->scopes;
    k->scopes = t;
    return t;
}
