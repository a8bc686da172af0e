/* kernel layer, types: struct/union sizes, members by dotted path (through
 * anonymous struct/union members), printable type names, enum constants.
 * Types are found through the incremental name index (kernel_dwarf.c). */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t K_STRUCT[] = { KIX_STRUCT, 0 };
static const uint8_t K_UNION[] = { KIX_UNION, 0 };
static const uint8_t K_ENUM[] = { KIX_ENUM, KIX_TYPEDEF, 0 };
static const uint8_t K_ANY[] = { KIX_STRUCT, KIX_UNION, KIX_TYPEDEF, KIX_ENUM, 0 };

static bool is_cv_or_typedef(Dwarf_Half t)
{
    return t == DW_TAG_typedef || t == DW_TAG_const_type || t == DW_TAG_volatile_type ||
           t == DW_TAG_restrict_type || t == DW_TAG_atomic_type;
}

bool kt_strip(kern *k, uint64_t off, uint64_t *out, Dwarf_Half *tag_out)
{
    for (int hops = 0; hops < 16; hops++) {
        Dwarf_Die d;
        if (kd_die(k, off, &d) != 0)
            return false;
        Dwarf_Half t = kd_tag(d);
        if (!is_cv_or_typedef(t)) {
            dwarf_dealloc_die(d);
            *out = off;
            if (tag_out)
                *tag_out = t;
            return true;
        }
        bool ok = kd_ref(k, d, DW_AT_type, &off);
        dwarf_dealloc_die(d);
        if (!ok)
            return false;
    }
    return false;
}

static uint64_t array_count(kern *k, Dwarf_Die arr)
{
    uint64_t total = 1;
    bool any = false;
    kd_iter it;
    for (int r = kd_child_first(k, arr, &it); r == 1; r = kd_child_next(&it)) {
        if (kd_tag(it.die) != DW_TAG_subrange_type)
            continue;
        uint64_t n = 0, ub = 0;
        if (kd_udata(k, it.die, DW_AT_count, &n))
            total *= n;
        else if (kd_udata(k, it.die, DW_AT_upper_bound, &ub))
            total *= ub + 1;
        else
            total = 0;   /* flexible array member */
        any = true;
    }
    return any ? total : 0;
}

bool kt_type_size(kern *k, uint64_t off, uint64_t *size)
{
    for (int hops = 0; hops < 16; hops++) {
        Dwarf_Die d;
        if (kd_die(k, off, &d) != 0)
            return false;
        uint64_t sz;
        if (kd_udata(k, d, DW_AT_byte_size, &sz)) {
            dwarf_dealloc_die(d);
            *size = sz;
            return true;
        }
        Dwarf_Half t = kd_tag(d);
        if (t == DW_TAG_pointer_type || t == DW_TAG_reference_type) {
            dwarf_dealloc_die(d);
            *size = 8;
            return true;
        }
        uint64_t next;
        bool has = kd_ref(k, d, DW_AT_type, &next);
        if (t == DW_TAG_array_type && has) {
            uint64_t n = array_count(k, d), esz = 0;
            dwarf_dealloc_die(d);
            if (!kt_type_size(k, next, &esz))
                return false;
            *size = n * esz;
            return true;
        }
        dwarf_dealloc_die(d);
        if (!has || !is_cv_or_typedef(t))
            return false;
        off = next;
    }
    return false;
}

static void name_rec(kern *k, uint64_t off, char *buf, size_t len, int depth)
{
    if (depth > 12) {
        snprintf(buf, len, "?");
        return;
    }
    Dwarf_Die d;
    if (kd_die(k, off, &d) != 0) {
        snprintf(buf, len, "?");
        return;
    }
    Dwarf_Half t = kd_tag(d);
    const char *n = kd_name(k, d);
    uint64_t next = 0;
    bool has = kd_ref(k, d, DW_AT_type, &next);
    char inner[160];
    switch (t) {
    case DW_TAG_base_type:
    case DW_TAG_typedef:
        snprintf(buf, len, "%s", n ? n : "?");
        break;
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
    case DW_TAG_enumeration_type:
        snprintf(buf, len, "%s %s", t == DW_TAG_structure_type ? "struct" : t == DW_TAG_union_type ? "union" : "enum",
                 n ? n : "<anonymous>");
        break;
    case DW_TAG_pointer_type:
        if (!has) {
            snprintf(buf, len, "void *");
            break;
        }
        {
            Dwarf_Die td;
            bool fn = false;
            if (kd_die(k, next, &td) == 0) {
                fn = kd_tag(td) == DW_TAG_subroutine_type;
                dwarf_dealloc_die(td);
            }
            if (fn) {
                snprintf(buf, len, "function pointer");
                break;
            }
        }
        name_rec(k, next, inner, sizeof inner, depth + 1);
        snprintf(buf, len, "%s *", inner);
        break;
    case DW_TAG_const_type:
    case DW_TAG_volatile_type:
        if (has)
            name_rec(k, next, inner, sizeof inner, depth + 1);
        else
            snprintf(inner, sizeof inner, "void");
        snprintf(buf, len, "%s %s", t == DW_TAG_const_type ? "const" : "volatile", inner);
        break;
    case DW_TAG_array_type:
        name_rec(k, next, inner, sizeof inner, depth + 1);
        snprintf(buf, len, "%s[%llu]", inner, (unsigned long long)array_count(k, d));
        break;
    case DW_TAG_subroutine_type:
        snprintf(buf, len, "function");
        break;
    default:
        if (has)
            name_rec(k, next, buf, len, depth + 1);
        else
            snprintf(buf, len, "%s", n ? n : "?");
    }
    dwarf_dealloc_die(d);
}

void kt_type_name(kern *k, uint64_t off, char *buf, size_t len)
{
    name_rec(k, off, buf, len, 0);
}

/* "struct x" / "union x" / "enum x" / "x" -> index entry. */
static int find_type(kern *k, const char *type, const uint8_t *dflt, kix_entry *e, fl_error *err)
{
    const uint8_t *kinds = dflt;
    const char *n = type;
    if (strncmp(n, "struct ", 7) == 0)
        n += 7, kinds = K_STRUCT;
    else if (strncmp(n, "union ", 6) == 0)
        n += 6, kinds = K_UNION;
    else if (strncmp(n, "enum ", 5) == 0)
        n += 5, kinds = K_ENUM;
    while (*n == ' ')
        n++;
    int r = kd_lookup(k, n, kinds, e, err);
    if (r != 0)
        return r > 0 ? 0 : -1;
    return fl_fail(err, FL_ENOTFOUND, "type '%s' is not defined in the DWARF of %s; check the spelling "
                   "(types the kernel never uses are not emitted)", type, k->path);
}

/* A struct/union DIE offset for `type`, through typedefs. */
static int struct_die(kern *k, const char *type, uint64_t *off, fl_error *err)
{
    kix_entry e;
    if (find_type(k, type, K_ANY, &e, err) != 0)
        return -1;
    Dwarf_Half t = 0;
    if (!kt_strip(k, e.die, off, &t) || (t != DW_TAG_structure_type && t != DW_TAG_union_type))
        return fl_fail(err, FL_EUSAGE, "'%s' in %s is not a struct or union; members exist only "
                       "in structs and unions", type, k->path);
    return 0;
}

static int type_size(kern *k, const char *type, uint64_t *size, fl_error *err)
{
    kix_entry e;
    if (find_type(k, type, K_ANY, &e, err) != 0)
        return -1;
    if (!kt_type_size(k, e.die, size))
        return fl_fail(err, FL_EFORMAT, "type '%s' in %s has no size in its DWARF; it may be incomplete",
                       type, k->path);
    return 0;
}

static void fill_member(kern *k, Dwarf_Die m, const char *name, uint64_t base, kern_member *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "");
    uint64_t off = 0, bitoff = 0, bits = 0, toff = 0;
    kd_udata(k, m, DW_AT_data_member_location, &off);
    bool has_type = kd_ref(k, m, DW_AT_type, &toff);
    if (kd_udata(k, m, DW_AT_bit_size, &bits) && bits) {
        if (kd_udata(k, m, DW_AT_data_bit_offset, &bitoff))
            off = bitoff / 8;
        else
            bitoff = off * 8;
        out->bit_size = (int)bits;
        out->bit_offset = (int)(bitoff % 8);
        out->size = (bitoff % 8 + bits + 7) / 8;
    } else if (has_type) {
        kt_type_size(k, toff, &out->size);
    }
    out->offset = base + off;
    if (has_type) {
        kt_type_name(k, toff, out->type, sizeof out->type);
        uint64_t s;
        Dwarf_Half t = 0;
        if (kt_strip(k, toff, &s, &t)) {
            out->is_pointer = t == DW_TAG_pointer_type;
            Dwarf_Die sd;
            if (t == DW_TAG_base_type && kd_die(k, s, &sd) == 0) {
                uint64_t enc = 0;
                if (kd_udata(k, sd, DW_AT_encoding, &enc))
                    out->is_signed = enc == DW_ATE_signed || enc == DW_ATE_signed_char;
                dwarf_dealloc_die(sd);
            }
        }
    } else {
        snprintf(out->type, sizeof out->type, "void");
    }
}

/* Walk the members of a struct/union DIE: flattened (anonymous members
 * expanded). Calls fn for each; fn returns true to stop. */
typedef bool (*member_fn)(kern *k, Dwarf_Die m, const char *name, uint64_t base, void *ctx);

static bool walk_members(kern *k, uint64_t sdie, uint64_t base, member_fn fn, void *ctx, int depth)
{
    if (depth > 8)
        return false;
    bool stop = false;
    kd_iter it;
    for (int r = kd_child_first_at(k, sdie, &it); r == 1 && !stop; r = kd_child_next(&it)) {
        if (kd_tag(it.die) != DW_TAG_member)
            continue;
        const char *n = kd_name(k, it.die);
        uint64_t toff, inner, off = 0;
        Dwarf_Half t = 0;
        if (!n && kd_ref(k, it.die, DW_AT_type, &toff) && kt_strip(k, toff, &inner, &t) &&
            (t == DW_TAG_structure_type || t == DW_TAG_union_type)) {
            kd_udata(k, it.die, DW_AT_data_member_location, &off);
            stop = walk_members(k, inner, base + off, fn, ctx, depth + 1);
        } else {
            stop = fn(k, it.die, n, base, ctx);
        }
    }
    kd_child_end(&it);
    return stop || kd_failed(k);
}

struct find_ctx {
    const char *want;
    kern_member *out;
    uint64_t type_off;
    bool found;
};

static bool find_cb(kern *k, Dwarf_Die m, const char *name, uint64_t base, void *ctx)
{
    struct find_ctx *f = ctx;
    if (!name || strcmp(name, f->want) != 0)
        return false;
    fill_member(k, m, name, base, f->out);
    f->type_off = 0;
    kd_ref(k, m, DW_AT_type, &f->type_off);
    f->found = true;
    return true;
}

static int member_get(kern *k, const char *path, kern_member *out, fl_error *err)
{
    char buf[256];
    if (strlen(path) >= sizeof buf)
        return fl_fail(err, FL_EUSAGE, "member path '%.40s...' is too long", path);
    strcpy(buf, path);
    char *dot = strchr(buf, '.');
    if (!dot || !dot[1])
        return fl_fail(err, FL_EUSAGE, "member path '%s' needs the form struct.member, e.g. vm_fault.address",
                       path);
    *dot = '\0';
    uint64_t sdie;
    if (struct_die(k, buf, &sdie, err) != 0)
        return -1;
    char tname[96];
    snprintf(tname, sizeof tname, "%s", buf);
    uint64_t base = 0;
    char *comp = dot + 1;
    for (;;) {
        char *next = strchr(comp, '.');
        if (next)
            *next++ = '\0';
        struct find_ctx f = { .want = comp, .out = out };
        walk_members(k, sdie, base, find_cb, &f, 0);
        if (!f.found)
            return fl_fail(err, FL_ENOTFOUND, "%s has no member '%s' in the DWARF of %s; check the name "
                           "against the kernel source of this version", tname, comp, k->path);
        if (!next)
            return 0;
        Dwarf_Half t = 0;
        uint64_t inner;
        if (!f.type_off || !kt_strip(k, f.type_off, &inner, &t) ||
            (t != DW_TAG_structure_type && t != DW_TAG_union_type))
            return fl_fail(err, FL_EUSAGE, "member '%s' of %s is a %s, not a struct or union, so '%s' "
                           "cannot follow it in '%s'", comp, tname, out->type, next, path);
        snprintf(tname, sizeof tname, "%s", out->type);
        sdie = inner;
        base = out->offset;
        comp = next;
    }
}

struct list_ctx {
    kern_member *v;
    size_t n, cap;
    bool oom;
};

static bool list_cb(kern *k, Dwarf_Die m, const char *name, uint64_t base, void *ctx)
{
    struct list_ctx *l = ctx;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        kern_member *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return true;
        }
        l->v = nv;
        l->cap = ncap;
    }
    fill_member(k, m, name, base, &l->v[l->n++]);
    return false;
}

static int struct_members(kern *k, const char *type, kern_member **list, size_t *count, fl_error *err)
{
    *list = NULL;
    *count = 0;
    uint64_t sdie;
    if (struct_die(k, type, &sdie, err) != 0)
        return -1;
    struct list_ctx l = { 0 };
    walk_members(k, sdie, 0, list_cb, &l, 0);
    if (l.oom) {
        free(l.v);
        return fl_fail(err, FL_ENOMEM, "out of memory listing the members of %s", type);
    }
    *list = l.v;
    *count = l.n;
    return 0;
}

/* ---- enums ---- */

static int enum_list(kern *k, const char *enum_name, kern_enumerator **list, size_t *count, fl_error *err)
{
    *list = NULL;
    *count = 0;
    kix_entry e;
    char full[128];
    snprintf(full, sizeof full, "%s%s", strncmp(enum_name, "enum ", 5) == 0 ? "" : "enum ", enum_name);
    if (find_type(k, full, K_ENUM, &e, err) != 0)
        return -1;
    uint64_t off;
    Dwarf_Half t = 0;
    if (!kt_strip(k, e.die, &off, &t) || t != DW_TAG_enumeration_type)
        return fl_fail(err, FL_EUSAGE, "'%s' in %s is not an enum", enum_name, k->path);
    kern_enumerator *v = NULL;
    size_t n = 0, cap = 0;
    kd_iter it;
    for (int r = kd_child_first_at(k, off, &it); r == 1; r = kd_child_next(&it)) {
        if (kd_tag(it.die) != DW_TAG_enumerator)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            kern_enumerator *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                kd_child_end(&it);
                return fl_fail(err, FL_ENOMEM, "out of memory listing enum %s", enum_name);
            }
            v = nv;
        }
        const char *nm = kd_name(k, it.die);
        snprintf(v[n].name, sizeof v[n].name, "%s", nm ? nm : "");
        v[n].value = 0;
        kd_sdata(k, it.die, DW_AT_const_value, &v[n].value);
        n++;
    }
    *list = v;
    *count = n;
    return 0;
}

static int enum_value(kern *k, const char *enum_name, const char *constant, int64_t *value, fl_error *err)
{
    kern_enumerator *v;
    size_t n;
    if (enum_list(k, enum_name, &v, &n, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, constant) == 0) {
            *value = v[i].value;
            free(v);
            return 0;
        }
    }
    free(v);
    return fl_fail(err, FL_ENOTFOUND, "enum %s in %s has no constant '%s'; check the name against "
                   "this kernel version", enum_name, k->path, constant);
}

/* ---- the public calls: each reports a libdwarf error met on the way ---- */

int kern_type_size(kern *k, const char *type, uint64_t *size, fl_error *err)
{
    kd_enter(k);
    return kd_leave(k, type_size(k, type, size, err), err);
}

int kern_member_get(kern *k, const char *path, kern_member *out, fl_error *err)
{
    kd_enter(k);
    return kd_leave(k, member_get(k, path, out, err), err);
}

int kern_struct_members(kern *k, const char *type, kern_member **list, size_t *count, fl_error *err)
{
    kd_enter(k);
    int rc = kd_leave(k, struct_members(k, type, list, count, err), err);
    if (rc != 0 && *list) {
        free(*list);
        *list = NULL;
        *count = 0;
    }
    return rc;
}

int kern_enum_list(kern *k, const char *enum_name, kern_enumerator **list, size_t *count, fl_error *err)
{
    kd_enter(k);
    int rc = kd_leave(k, enum_list(k, enum_name, list, count, err), err);
    if (rc != 0 && *list) {
        free(*list);
        *list = NULL;
        *count = 0;
    }
    return rc;
}

int kern_enum_value(kern *k, const char *enum_name, const char *constant, int64_t *value, fl_error *err)
{
    kd_enter(k);
    return kd_leave(k, enum_value(k, enum_name, constant, value, err), err);
}
