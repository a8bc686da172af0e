/* kernel layer, DWARF plumbing shared by types, lines and locations: the
 * libdwarf session over the mapped file, the libdwarf error adapter (one
 * sentence, FL_EFORMAT, libdwarf's own message), the one child iterator,
 * DIE attribute helpers, the CU list, an incremental by-name index of
 * top-level DIEs, pc -> CU through .debug_aranges, and per-CU scope lists.
 *
 * Laziness: CUs are listed and indexed one at a time and only until the
 * name asked for is found (CUs already in use first), so a lookup of
 * `struct pt_regs` touches the first few CUs, not the 200 MB of
 * .debug_info of a distribution kernel. */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the libdwarf session and its errors ---- */

int kd_fail_dwarf(kern *k, fl_error *err, Dwarf_Error de, const char *where)
{
    const char *m = de ? dwarf_errmsg(de) : "no detail from libdwarf";
    fl_fail(err, FL_EFORMAT, "%s: corrupt DWARF in %s: %s; the file is damaged: copy it again or rebuild "
            "the kernel", k->path, where, m);
    if (de)
        dwarf_dealloc(k->dbg, de, DW_DLA_ERROR);
    return -1;
}

void kd_note(kern *k, int dlv, Dwarf_Error de, const char *where)
{
    if (dlv == DW_DLV_ERROR && k->derr.code == FL_OK)
        kd_fail_dwarf(k, &k->derr, de, where);
    else if (de)
        dwarf_dealloc(k->dbg, de, DW_DLA_ERROR);
}

void kd_enter(kern *k)
{
    fl_error_clear(&k->derr);
}

int kd_leave(kern *k, int rc, fl_error *err)
{
    if (k->derr.code == FL_OK)
        return rc;
    if (err)
        *err = k->derr;
    return -1;
}

bool kd_failed(const kern *k)
{
    return k->derr.code != FL_OK;
}

int kd_open(kern *k, fl_error *err)
{
    Dwarf_Error de = NULL;
    int r = dwarf_object_init_b(ke_dwarf_access(k), NULL, NULL, DW_GROUPNUMBER_ANY, &k->dbg, &de);
    if (r == DW_DLV_OK)
        return 0;
    k->dbg = NULL;
    if (r == DW_DLV_NO_ENTRY)
        return fl_fail(err, FL_EFORMAT, "%s has no DWARF libdwarf can read: rebuild the kernel with "
                       "CONFIG_DEBUG_INFO_DWARF5=y", k->path);
    return kd_fail_dwarf(k, err, de, "its section headers");
}

void kd_free(kern *k)
{
    for (kscope_table *t = k->scopes, *n; t; t = n) {
        n = t->next;
        free(t->v);
        free(t);
    }
    k->scopes = NULL;
    for (kstr *s = k->strs, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    k->strs = NULL;
    free(k->cus);
    free(k->ix);
    k->cus = NULL;
    k->ix = NULL;
    if (!k->dbg)
        return;
    if (k->aranges) {
        for (Dwarf_Signed i = 0; i < k->naranges; i++)
            dwarf_dealloc(k->dbg, k->aranges[i], DW_DLA_ARANGE);
        dwarf_dealloc(k->dbg, k->aranges, DW_DLA_LIST);
    }
    dwarf_object_finish(k->dbg, NULL);
    k->dbg = NULL;
}

/* ---- the child iterator ---- */

/* Parks a corruption libdwarf does not see itself (it has no Dwarf_Error). */
static void park_corrupt(kern *k, const char *what, uint64_t off)
{
    if (k->derr.code == FL_OK)
        fl_fail(&k->derr, FL_EFORMAT, "%s: corrupt DWARF in .debug_info: %s at 0x%llx; the file is damaged: "
                "copy it again or rebuild the kernel", k->path, what, (unsigned long long)off);
}

static int child_step(kd_iter *it, int r, Dwarf_Die next, Dwarf_Error de)
{
    if (it->die)
        dwarf_dealloc_die(it->die);
    it->die = r == DW_DLV_OK ? next : NULL;
    if (r == DW_DLV_ERROR) {
        kd_note(it->k, r, de, ".debug_info");
        return -1;
    }
    if (r != DW_DLV_OK)
        return 0;
    /* Siblings only go forward: a DW_AT_sibling that points back would
     * make the walk endless. */
    uint64_t off = kd_offset(it->k, next);
    if (off <= it->off) {
        park_corrupt(it->k, "a DW_AT_sibling points backwards", it->off);
        kd_child_end(it);
        return -1;
    }
    it->off = off;
    return 1;
}

int kd_child_first(kern *k, Dwarf_Die parent, kd_iter *it)
{
    *it = (kd_iter){ .k = k, .off = kd_offset(k, parent) };
    Dwarf_Die c = NULL;
    Dwarf_Error de = NULL;
    int r = dwarf_child(parent, &c, &de);
    return child_step(it, r, c, de);
}

int kd_child_first_at(kern *k, uint64_t parent_off, kd_iter *it)
{
    *it = (kd_iter){ .k = k, .off = parent_off };
    Dwarf_Die p;
    if (kd_die(k, parent_off, &p) != 0)
        return -1;
    int r = kd_child_first(k, p, it);
    dwarf_dealloc_die(p);
    return r;
}

int kd_child_next(kd_iter *it)
{
    if (!it->die)
        return 0;
    Dwarf_Die s = NULL;
    Dwarf_Error de = NULL;
    int r = dwarf_siblingof_b(it->k->dbg, it->die, 1, &s, &de);
    return child_step(it, r, s, de);
}

void kd_child_end(kd_iter *it)
{
    if (it->die)
        dwarf_dealloc_die(it->die);
    it->die = NULL;
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
    kd_note(k, r, de, ".debug_info");
    return r == DW_DLV_OK ? 0 : -1;
}

uint64_t kd_offset(kern *k, Dwarf_Die d)
{
    Dwarf_Off off = 0;
    Dwarf_Error de = NULL;
    kd_note(k, dwarf_dieoffset(d, &off, &de), de, ".debug_info");
    return off;
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
    kd_note(k, r, de, ".debug_info");
    return r == DW_DLV_OK ? n : NULL;
}

bool kd_attr(kern *k, Dwarf_Die d, Dwarf_Half at, Dwarf_Attribute *a)
{
    Dwarf_Error de = NULL;
    int r = dwarf_attr(d, at, a, &de);
    kd_note(k, r, de, ".debug_info");
    return r == DW_DLV_OK;
}

static Dwarf_Half attr_form(kern *k, Dwarf_Attribute a)
{
    Dwarf_Half form = 0;
    Dwarf_Error de = NULL;
    kd_note(k, dwarf_whatform(a, &form, &de), de, ".debug_info");
    return form;
}

bool kd_ref(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *off)
{
    Dwarf_Attribute a;
    if (!kd_attr(k, d, at, &a))
        return false;
    Dwarf_Off o = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_global_formref(a, &o, &de);
    kd_note(k, r, de, ".debug_info");
    dwarf_dealloc_attribute(a);
    if (r != DW_DLV_OK)
        return false;
    *off = o;
    return true;
}

/* An integer attribute by its form: sdata and implicit_const (gcc uses it
 * for enum byte sizes) are signed in DWARF, data1..data8 and udata are
 * sign-less (libdwarf's formsdata would sign-extend 0x80000000 of an
 * unsigned enum). Asking by form means a libdwarf error is corruption. */
static bool attr_int(kern *k, Dwarf_Die d, Dwarf_Half at, int64_t *v, bool *is_signed)
{
    Dwarf_Attribute a;
    if (!kd_attr(k, d, at, &a))
        return false;
    Dwarf_Half form = attr_form(k, a);
    Dwarf_Error de = NULL;
    int r;
    *is_signed = form == DW_FORM_sdata || form == DW_FORM_implicit_const;
    if (*is_signed) {
        Dwarf_Signed sv = 0;
        r = dwarf_formsdata(a, &sv, &de);
        *v = sv;
    } else {
        Dwarf_Unsigned u = 0;
        r = dwarf_formudata(a, &u, &de);
        *v = (int64_t)u;
    }
    kd_note(k, r, de, ".debug_info");
    dwarf_dealloc_attribute(a);
    return r == DW_DLV_OK;
}

bool kd_udata(kern *k, Dwarf_Die d, Dwarf_Half at, uint64_t *v)
{
    int64_t x;
    bool sgn;
    if (!attr_int(k, d, at, &x, &sgn) || (sgn && x < 0))
        return false;
    *v = (uint64_t)x;
    return true;
}

bool kd_sdata(kern *k, Dwarf_Die d, Dwarf_Half at, int64_t *v)
{
    bool sgn;
    return attr_int(k, d, at, v, &sgn);
}

bool kd_flag(kern *k, Dwarf_Die d, Dwarf_Half at)
{
    Dwarf_Bool b = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_hasattr(d, at, &b, &de);
    kd_note(k, r, de, ".debug_info");
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

/* ---- pc ranges ---- */

static int rnglists(kern *k, Dwarf_Attribute a, Dwarf_Half form, Dwarf_Unsigned val, kd_range_fn fn, void *ctx)
{
    Dwarf_Rnglists_Head head = NULL;
    Dwarf_Unsigned count = 0, global = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_rnglists_get_rle_head(a, form, val, &head, &count, &global, &de);
    kd_note(k, r, de, ".debug_rnglists");
    if (r != DW_DLV_OK)
        return 0;
    int n = 0;
    for (Dwarf_Unsigned i = 0; i < count; i++) {
        unsigned len = 0, code = 0;
        Dwarf_Unsigned raw1, raw2, c1, c2;
        Dwarf_Bool unavail = 0;
        r = dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2, &unavail, &c1, &c2, &de);
        kd_note(k, r, de, ".debug_rnglists");
        if (r != DW_DLV_OK)
            break;
        if (unavail || code == DW_RLE_end_of_list || code == DW_RLE_base_address || code == DW_RLE_base_addressx)
            continue;
        if (c2 > c1) {
            fn(ctx, c1, c2);
            n++;
        }
    }
    dwarf_dealloc_rnglists_head(head);
    return n;
}

/* DWARF 4 .debug_ranges (an older kernel or fixture): offsets from the
 * CU's base address unless an entry selects another. */
static int ranges_v4(kern *k, Dwarf_Die d, Dwarf_Unsigned val, kd_range_fn fn, void *ctx)
{
    Dwarf_Ranges *rb = NULL;
    Dwarf_Signed cnt = 0;
    Dwarf_Unsigned bytes = 0;
    Dwarf_Off real = 0, cuoff = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_get_ranges_b(k->dbg, val, d, &real, &rb, &cnt, &bytes, &de);
    kd_note(k, r, de, ".debug_ranges");
    if (r != DW_DLV_OK)
        return 0;
    Dwarf_Addr base = 0;
    Dwarf_Die cu = NULL;
    r = dwarf_CU_dieoffset_given_die(d, &cuoff, &de);
    kd_note(k, r, de, ".debug_info");
    if (r == DW_DLV_OK && kd_die(k, cuoff, &cu) == 0) {
        kd_note(k, dwarf_lowpc(cu, &base, &de), de, ".debug_info");
        dwarf_dealloc_die(cu);
    }
    int n = 0;
    for (Dwarf_Signed i = 0; i < cnt && rb[i].dwr_type != DW_RANGES_END; i++) {
        if (rb[i].dwr_type == DW_RANGES_ADDRESS_SELECTION)
            base = rb[i].dwr_addr2;
        else if (rb[i].dwr_addr2 > rb[i].dwr_addr1) {
            fn(ctx, base + rb[i].dwr_addr1, base + rb[i].dwr_addr2);
            n++;
        }
    }
    dwarf_ranges_dealloc(k->dbg, rb, cnt);
    return n;
}

int kd_ranges(kern *k, Dwarf_Die d, kd_range_fn fn, void *ctx)
{
    Dwarf_Error de = NULL;
    Dwarf_Addr lo = 0, hi = 0;
    Dwarf_Half form = 0;
    enum Dwarf_Form_Class cls = DW_FORM_CLASS_UNKNOWN;
    int r = dwarf_lowpc(d, &lo, &de);
    kd_note(k, r, de, ".debug_info");
    if (r == DW_DLV_OK) {
        r = dwarf_highpc_b(d, &hi, &form, &cls, &de);
        kd_note(k, r, de, ".debug_info");
        if (r != DW_DLV_OK)
            return 0;
        if (cls != DW_FORM_CLASS_ADDRESS)
            hi += lo;
        if (hi > lo)
            fn(ctx, lo, hi);
        return hi > lo;
    }
    Dwarf_Attribute a;
    if (!kd_attr(k, d, DW_AT_ranges, &a))
        return 0;
    form = attr_form(k, a);
    Dwarf_Unsigned val = 0;
    if (form == DW_FORM_rnglistx) {
        r = dwarf_formudata(a, &val, &de);
    } else {
        Dwarf_Off o = 0;
        r = dwarf_global_formref(a, &o, &de);
        val = o;
    }
    kd_note(k, r, de, ".debug_info");
    Dwarf_Half ver = 0, offsz = 0;
    dwarf_get_version_of_die(d, &ver, &offsz);
    int n = 0;
    if (r == DW_DLV_OK)
        n = ver >= 5 ? rnglists(k, a, form, val, fn, ctx) : ranges_v4(k, d, val, fn, ctx);
    dwarf_dealloc_attribute(a);
    return n;
}

/* ---- CU list ---- */

static int next_cu(kern *k, uint64_t *off, fl_error *err)
{
    Dwarf_Unsigned hlen = 0, typeoff = 0, next = 0;
    Dwarf_Half ver = 0, asz = 0, lsz = 0, esz = 0, cutype = 0;
    Dwarf_Off abbr = 0;
    Dwarf_Sig8 sig;
    Dwarf_Error de = NULL;
    int r = dwarf_next_cu_header_d(k->dbg, 1, &hlen, &ver, &abbr, &asz, &lsz, &esz, &sig, &typeoff, &next,
                                   &cutype, &de);
    if (r == DW_DLV_NO_ENTRY)
        return 0;
    if (r != DW_DLV_OK)
        return kd_fail_dwarf(k, err, de, ".debug_info");
    Dwarf_Die cu = NULL;
    r = dwarf_siblingof_b(k->dbg, NULL, 1, &cu, &de);
    if (r != DW_DLV_OK)
        return kd_fail_dwarf(k, err, de, ".debug_info");
    *off = kd_offset(k, cu);
    dwarf_dealloc_die(cu);
    return 1;
}

/* Lists one more CU: 1 listed, 0 at the end, -1 err filled. CUs are listed
 * as the index needs them, so a type defined early costs only early CUs. */
static int list_next_cu(kern *k, fl_error *err)
{
    if (k->cus_done)
        return 0;
    uint64_t off = 0;
    int r = next_cu(k, &off, err);
    if (r <= 0) {
        k->cus_done = r == 0;
        return r;
    }
    if (k->ncus == k->cus_cap) {
        size_t cap = k->cus_cap ? 2 * k->cus_cap : 256;
        uint64_t *n = realloc(k->cus, cap * sizeof *n);
        if (!n)
            return fl_fail(err, FL_ENOMEM, "out of memory listing compilation units of %s", k->path);
        k->cus = n;
        k->cus_cap = cap;
    }
    k->cus[k->ncus++] = off;
    return 1;
}

int kd_load_cus(kern *k, fl_error *err)
{
    int r;
    while ((r = list_next_cu(k, err)) > 0)
        ;
    return r;
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
static int scan_cu(kern *k, uint64_t cu_die, fl_error *err)
{
    kd_iter it;
    int r;
    for (r = kd_child_first_at(k, cu_die, &it); r == 1; r = kd_child_next(&it)) {
        uint8_t kind = tag_kind(kd_tag(it.die));
        const char *n = kind ? kd_name(k, it.die) : NULL;
        if (!n || kd_flag(k, it.die, DW_AT_declaration))
            continue;
        uint32_t h = name_hash(n, kind);
        if (ix_find(k, n, kind, h))
            continue;
        kix_entry e = { .name = n, .die = kd_offset(k, it.die), .cu = cu_die, .hash = h, .kind = kind };
        if (ix_insert(k, &e) != 0) {
            kd_child_end(&it);
            return fl_fail(err, FL_ENOMEM, "out of memory indexing the DWARF of %s", k->path);
        }
    }
    if (r < 0 || kd_failed(k)) {
        if (err)
            *err = k->derr;
        return -1;
    }
    return 0;
}

static bool cu_by_aranges(kern *k, uint64_t pc, uint64_t *cu_die);

void kd_index_cu(kern *k, uint64_t cu_die)
{
    for (size_t i = 0; i < k->nhinted; i++)
        if (k->hinted[i] == cu_die)
            return;
    if (k->nhinted == sizeof k->hinted / sizeof k->hinted[0])
        return;   /* enough: the ordered scan finds the rest */
    k->hinted[k->nhinted++] = cu_die;
    scan_cu(k, cu_die, NULL);   /* a libdwarf error stays parked for the caller */
}

static bool ix_has(kern *k, const char *name, const uint8_t *kinds, kix_entry *out)
{
    for (const uint8_t *kd = kinds; *kd; kd++) {
        kix_entry *e = ix_find(k, name, *kd, name_hash(name, *kd));
        if (e) {
            *out = *e;
            return true;
        }
    }
    return false;
}

int kd_lookup(kern *k, const char *name, const uint8_t *kinds, kix_entry *out, fl_error *err)
{
    /* A function with a symbol is defined in the CU its symbol points into
     * (one .debug_aranges probe away); if that CU does not describe it (an
     * asm entry point), no other CU does: no scan of every CU. */
    uint64_t addr, cu;
    bool funcs_only = kinds[0] == KIX_SUBPROG && kinds[1] == 0;
    if (funcs_only && !ix_has(k, name, kinds, out) && kern_sym_addr(k, name, &addr, NULL) == 0 &&
        cu_by_aranges(k, addr, &cu)) {
        kd_index_cu(k, cu);
        if (kd_failed(k)) {
            if (err)
                *err = k->derr;
            return -1;
        }
        return ix_has(k, name, kinds, out);
    }
    for (;;) {
        if (ix_has(k, name, kinds, out))
            return 1;
        int more = k->scanned < k->ncus ? 1 : list_next_cu(k, err);
        if (more <= 0)
            return more;
        if (scan_cu(k, k->cus[k->scanned], err) != 0)
            return -1;
        /* Indexed: its DIEs are not read again unless asked for, so the
         * pages it took in the mapping can go (they stay in page cache). */
        ke_release(k, ".debug_info", k->scanned ? k->cus[k->scanned - 1] : 0, k->cus[k->scanned]);
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

static bool cu_by_aranges(kern *k, uint64_t pc, uint64_t *cu_die)
{
    Dwarf_Error de = NULL;
    if (!k->aranges_tried) {
        k->aranges_tried = true;
        int r = dwarf_get_aranges(k->dbg, &k->aranges, &k->naranges, &de);
        kd_note(k, r, de, ".debug_aranges");
        if (r != DW_DLV_OK) {
            k->aranges = NULL;
            k->naranges = 0;
        }
    }
    if (k->naranges <= 0)
        return false;
    Dwarf_Arange ar;
    Dwarf_Off off;
    int r = dwarf_get_arange(k->aranges, (Dwarf_Unsigned)k->naranges, pc, &ar, &de);
    kd_note(k, r, de, ".debug_aranges");
    if (r != DW_DLV_OK)
        return false;
    r = dwarf_get_cu_die_offset(ar, &off, &de);
    kd_note(k, r, de, ".debug_aranges");
    if (r != DW_DLV_OK)
        return false;
    *cu_die = off;
    return true;
}

bool kd_cu_for_pc(kern *k, uint64_t pc, uint64_t *cu_die)
{
    if (cu_by_aranges(k, pc, cu_die))
        return true;
    /* No (or incomplete) .debug_aranges: ask each CU DIE for its ranges. */
    if (kd_failed(k) || kd_load_cus(k, &k->derr) != 0)
        return false;
    for (size_t i = 0; i < k->ncus; i++) {
        Dwarf_Die cu;
        if (kd_die(k, k->cus[i], &cu) != 0)
            return false;
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

static bool is_addr_form(Dwarf_Half form)
{
    return form == DW_FORM_addr || form == DW_FORM_addrx || form == DW_FORM_addrx1 || form == DW_FORM_addrx2 ||
           form == DW_FORM_addrx3 || form == DW_FORM_addrx4 || form == DW_FORM_GNU_addr_index;
}

static void entry_pc_of(kern *k, Dwarf_Die d, kscope_table *t, size_t first)
{
    uint64_t lowest = UINT64_MAX;
    for (size_t i = first; i < t->n; i++)
        if (t->v[i].lo < lowest)
            lowest = t->v[i].lo;
    uint64_t epc = lowest;
    Dwarf_Attribute a;
    if (kd_attr(k, d, DW_AT_entry_pc, &a)) {
        Dwarf_Error de = NULL;
        Dwarf_Addr ad;
        Dwarf_Unsigned u;
        int r;
        if (is_addr_form(attr_form(k, a))) {
            if ((r = dwarf_formaddr(a, &ad, &de)) == DW_DLV_OK)
                epc = ad;
        } else if ((r = dwarf_formudata(a, &u, &de)) == DW_DLV_OK && first < t->n) {
            /* DWARF 5: a constant is an offset from the entity's base. */
            epc = t->v[first].lo + u;
        }
        kd_note(k, r, de, ".debug_info");
        dwarf_dealloc_attribute(a);
    }
    for (size_t i = first; i < t->n; i++)
        t->v[i].entry_pc = epc;
}

static int walk_scopes(struct scope_ctx *c, Dwarf_Die parent, int depth)
{
    kern *k = c->k;
    kd_iter it;
    int r;
    for (r = kd_child_first(k, parent, &it); r == 1 && !c->oom; r = kd_child_next(&it)) {
        Dwarf_Half tag = kd_tag(it.die);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block)
            continue;
        size_t first = c->t->n;
        uint64_t off = kd_offset(k, it.die), origin = off;
        if (tag != DW_TAG_lexical_block)
            kd_ref(k, it.die, DW_AT_abstract_origin, &origin);
        c->proto = (kscope){ .die = off, .origin = origin, .depth = (uint16_t)depth, .tag = tag,
                             .name = tag == DW_TAG_lexical_block ? NULL : kd_name_deep(k, it.die) };
        if (kd_ranges(k, it.die, scope_range_cb, c) > 0) {
            entry_pc_of(k, it.die, c->t, first);
            if (depth < 64 && walk_scopes(c, it.die, depth + 1) != 0)
                r = -1;
        }
        if (r < 0 || kd_failed(k))
            break;
    }
    kd_child_end(&it);
    return r < 0 || kd_failed(k) ? -1 : 0;
}

kscope_table *kd_scopes(kern *k, uint64_t cu_die, fl_error *err)
{
    for (kscope_table *t = k->scopes; t; t = t->next)
        if (t->cu_die == cu_die)
            return t;
    kscope_table *t = calloc(1, sizeof *t);
    Dwarf_Die cu;
    if (!t) {
        fl_fail(err, FL_ENOMEM, "out of memory reading the functions of a compilation unit of %s", k->path);
        return NULL;
    }
    if (kd_die(k, cu_die, &cu) != 0) {
        free(t);
        if (err)
            *err = k->derr;
        return NULL;
    }
    t->cu_die = cu_die;
    struct scope_ctx c = { .k = k, .t = t };
    int r = walk_scopes(&c, cu, 0);
    dwarf_dealloc_die(cu);
    if (c.oom || r != 0) {
        free(t->v);
        free(t);
        if (c.oom)
            fl_fail(err, FL_ENOMEM, "out of memory reading the functions of a compilation unit of %s", k->path);
        else if (err)
            *err = k->derr;
        return NULL;
    }
    t->next = k->scopes;
    k->scopes = t;
    kd_index_cu(k, cu_die);   /* the functions asked about next are likely here */
    return t;
}
