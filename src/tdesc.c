/* tdesc: GDB target description (target.xml) -> register map, with expat.
 * Only what the register map needs: <architecture>, <reg> and <xi:include>.
 * Registers are numbered as GDB does (regnum attribute, else previous + 1),
 * and laid out in `g` in register-number order, so offsets are the running
 * sum of sizes in that order. Input comes from the stub: everything is
 * bounded (include depth and count, register count and size). */
#include "faultline/target.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INCLUDE_DEPTH 4
#define MAX_INCLUDES 32
#define MAX_REGS 1024
#define MAX_REG_BITS 4096
#define MAX_REGNUM 100000
#define MAX_FLAGSETS 256
#define MAX_FIELDS 128   /* per <flags> */

typedef struct tdesc_ctx {
    tgt_annex_fn fetch;
    void *fetch_ctx;
    tgt_regmap *map;
    size_t cap;
    long next_regnum;
    int includes;
    bool failed;
    fl_error *err;
    bool in_arch;
    size_t arch_len;
    tgt_flagset *cur_flags;   /* inside <flags>, else NULL */
    size_t capflagsets;
} tdesc_ctx;

typedef struct frame {
    tdesc_ctx *c;
    XML_Parser p;
    int depth;
    const char *annex;
} frame;

static int parse_annex(tdesc_ctx *c, const char *annex, int depth);

static void stop(frame *f)
{
    f->c->failed = true;
    XML_StopParser(f->p, XML_FALSE);
}

static const char *attr(const XML_Char **atts, const char *name)
{
    for (size_t i = 0; atts[i] && atts[i + 1]; i += 2)
        if (strcmp(atts[i], name) == 0)
            return atts[i + 1];
    return NULL;
}

/* Decimal in [0, max], whole string. */
static bool parse_dec(const char *s, long max, long *out)
{
    long v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static void add_reg(frame *f, const XML_Char **atts)
{
    tdesc_ctx *c = f->c;
    const char *name = attr(atts, "name");
    const char *bits = attr(atts, "bitsize");
    const char *num = attr(atts, "regnum");
    long bitsize = 0, regnum = c->next_regnum;
    if (!name || !*name || strlen(name) >= sizeof c->map->regs[0].name) {
        fl_fail(c->err, FL_EPROTO, "target description %s: a <reg> has a missing or over-long name", f->annex);
        return stop(f);
    }
    if (!parse_dec(bits, MAX_REG_BITS, &bitsize) || bitsize == 0 || bitsize % 8 != 0) {
        fl_fail(c->err, FL_EPROTO, "target description %s: register %s has bitsize \"%s\", not a multiple of 8 up to %d",
                f->annex, name, bits ? bits : "(none)", MAX_REG_BITS);
        return stop(f);
    }
    if (num && !parse_dec(num, MAX_REGNUM, &regnum)) {
        fl_fail(c->err, FL_EPROTO, "target description %s: register %s has regnum \"%s\", not a number up to %d",
                f->annex, name, num, MAX_REGNUM);
        return stop(f);
    }
    if (c->map->count >= MAX_REGS) {
        fl_fail(c->err, FL_EPROTO, "target description has more than %d registers", MAX_REGS);
        return stop(f);
    }
    if (c->map->count == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        tgt_reg *n = realloc(c->map->regs, ncap * sizeof *n);
        if (!n) {
            fl_fail(c->err, FL_EIO, "out of memory reading the target description");
            return stop(f);
        }
        c->map->regs = n;
        c->cap = ncap;
    }
    tgt_reg *r = &c->map->regs[c->map->count++];
    memset(r, 0, sizeof *r);
    memcpy(r->name, name, strlen(name) + 1);
    r->regnum = (int)regnum;
    r->size = (size_t)bitsize / 8;
    const char *type = attr(atts, "type");
    if (type && strlen(type) < sizeof r->type)
        memcpy(r->type, type, strlen(type) + 1);
    c->next_regnum = regnum + 1;
}

static void add_flags(frame *f, const XML_Char **atts)
{
    tdesc_ctx *c = f->c;
    tgt_regmap *m = c->map;
    const char *id = attr(atts, "id");
    c->cur_flags = NULL;
    if (!id || !*id || strlen(id) >= sizeof m->flagsets[0].id)
        return;  /* unnamed or over-long: no register can refer to it */
    if (m->nflagsets >= MAX_FLAGSETS) {
        fl_fail(c->err, FL_EPROTO, "target description has more than %d <flags> types", MAX_FLAGSETS);
        return stop(f);
    }
    if (m->nflagsets == c->capflagsets) {
        size_t nc = c->capflagsets ? c->capflagsets * 2 : 8;
        tgt_flagset *n = realloc(m->flagsets, nc * sizeof *n);
        if (!n) {
            fl_fail(c->err, FL_EIO, "out of memory reading the target description");
            return stop(f);
        }
        m->flagsets = n;
        c->capflagsets = nc;
    }
    tgt_flagset *fs = &m->flagsets[m->nflagsets++];
    memset(fs, 0, sizeof *fs);
    memcpy(fs->id, id, strlen(id) + 1);
    c->cur_flags = fs;
}

static void add_field(frame *f, const XML_Char **atts)
{
    tdesc_ctx *c = f->c;
    tgt_flagset *fs = c->cur_flags;
    const char *name = attr(atts, "name");
    long start, end;
    if (!parse_dec(attr(atts, "start"), 4095, &start))
        return;  /* a typed field without bit positions: not a flag */
    if (!attr(atts, "end"))
        end = start;
    else if (!parse_dec(attr(atts, "end"), 4095, &end) || end < start) {
        fl_fail(c->err, FL_EPROTO, "target description %s: flags %s has a field with a bad bit range", f->annex, fs->id);
        return stop(f);
    }
    if (fs->count >= MAX_FIELDS) {
        fl_fail(c->err, FL_EPROTO, "target description %s: flags %s has more than %d fields", f->annex, fs->id, MAX_FIELDS);
        return stop(f);
    }
    if (fs->count % 16 == 0) {
        tgt_field *n = realloc(fs->fields, (fs->count + 16) * sizeof *n);
        if (!n) {
            fl_fail(c->err, FL_EIO, "out of memory reading the target description");
            return stop(f);
        }
        fs->fields = n;
    }
    tgt_field *fd = &fs->fields[fs->count++];
    memset(fd, 0, sizeof *fd);
    if (name && strlen(name) < sizeof fd->name)
        memcpy(fd->name, name, strlen(name) + 1);
    fd->start = (unsigned)start;
    fd->end = (unsigned)end;
}

static void XMLCALL on_start(void *ud, const XML_Char *el, const XML_Char **atts)
{
    frame *f = ud;
    tdesc_ctx *c = f->c;
    if (c->failed)
        return;
    const char *colon = strchr(el, ':');
    const char *local = colon ? colon + 1 : el;
    if (strcmp(el, "reg") == 0) {
        add_reg(f, atts);
    } else if (strcmp(el, "flags") == 0) {
        add_flags(f, atts);
    } else if (strcmp(el, "field") == 0) {
        if (c->cur_flags)
            add_field(f, atts);
    } else if (strcmp(el, "architecture") == 0) {
        c->in_arch = true;
        c->arch_len = 0;
        c->map->arch[0] = '\0';
    } else if (strcmp(local, "include") == 0) {
        const char *href = attr(atts, "href");
        if (!href || !*href) {
            fl_fail(c->err, FL_EPROTO, "target description %s: xi:include without href", f->annex);
            return stop(f);
        }
        if (f->depth + 1 > MAX_INCLUDE_DEPTH || ++c->includes > MAX_INCLUDES) {
            fl_fail(c->err, FL_EPROTO, "target description %s: includes nest deeper than %d or number more than %d",
                    f->annex, MAX_INCLUDE_DEPTH, MAX_INCLUDES);
            return stop(f);
        }
        /* The included document's registers go here, in document order. */
        /* Fields after an include inside <flags> are dropped: the flags
         * array may move while the included document is parsed. */
        c->cur_flags = NULL;
        if (parse_annex(c, href, f->depth + 1) < 0)
            return stop(f);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *el)
{
    frame *f = ud;
    if (strcmp(el, "architecture") == 0)
        f->c->in_arch = false;
    else if (strcmp(el, "flags") == 0)
        f->c->cur_flags = NULL;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    frame *f = ud;
    tdesc_ctx *c = f->c;
    if (!c->in_arch || len <= 0)
        return;
    size_t room = sizeof c->map->arch - 1 - c->arch_len;
    size_t n = (size_t)len < room ? (size_t)len : room;
    memcpy(c->map->arch + c->arch_len, s, n);
    c->arch_len += n;
    c->map->arch[c->arch_len] = '\0';
}

static int parse_annex(tdesc_ctx *c, const char *annex, int depth)
{
    char *xml = NULL;
    size_t len = 0;
    if (c->fetch(c->fetch_ctx, annex, &xml, &len, c->err) < 0)
        return -1;
    if (len > (size_t)INT32_MAX) {
        free(xml);
        return fl_fail(c->err, FL_EPROTO, "target description %s is too large", annex);
    }
    XML_Parser p = XML_ParserCreate(NULL);
    if (!p) {
        free(xml);
        return fl_fail(c->err, FL_EIO, "out of memory creating an XML parser");
    }
    frame f = {.c = c, .p = p, .depth = depth, .annex = annex};
    XML_SetUserData(p, &f);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    enum XML_Status st = XML_Parse(p, xml ? xml : "", (int)len, XML_TRUE);
    int rc = 0;
    if (c->failed) {
        rc = -1;  /* err already says why */
    } else if (st != XML_STATUS_OK) {
        rc = fl_fail(c->err, FL_EPROTO, "target description %s is not well-formed XML: %s at line %lu",
                     annex, XML_ErrorString(XML_GetErrorCode(p)), (unsigned long)XML_GetCurrentLineNumber(p));
        c->failed = true;
    }
    XML_ParserFree(p);
    free(xml);
    return rc;
}

static int by_regnum(const void *a, const void *b)
{
    const tgt_reg *x = a, *y = b;
    return (x->regnum > y->regnum) - (x->regnum < y->regnum);
}

int tgt_tdesc_parse(tgt_annex_fn fetch, void *ctx, tgt_regmap *out, fl_error *err)
{
    memset(out, 0, sizeof *out);
    tdesc_ctx c = {.fetch = fetch, .fetch_ctx = ctx, .map = out, .err = err};
    if (parse_annex(&c, "target.xml", 0) < 0) {
        tgt_regmap_free(out);
        return -1;
    }
    if (out->count == 0) {
        tgt_regmap_free(out);
        return fl_fail(err, FL_EPROTO, "target description names no registers");
    }
    /* `g` carries registers in number order. */
    qsort(out->regs, out->count, sizeof *out->regs, by_regnum);
    size_t off = 0;
    for (size_t i = 0; i < out->count; i++) {
        if (i > 0 && out->regs[i].regnum == out->regs[i - 1].regnum) {
            int dup = out->regs[i].regnum;
            char a[32], b[32];
            memcpy(a, out->regs[i - 1].name, sizeof a);
            memcpy(b, out->regs[i].name, sizeof b);
            tgt_regmap_free(out);
            return fl_fail(err, FL_EPROTO, "target description gives registers %s and %s the same number %d", a, b, dup);
        }
        out->regs[i].offset = off;
        off += out->regs[i].size;
    }
    out->g_size = off;
    return 0;
}

void tgt_regmap_free(tgt_regmap *map)
{
    if (!map)
        return;
    free(map->regs);
    map->regs = NULL;
    for (size_t i = 0; i < map->nflagsets; i++)
        free(map->flagsets[i].fields);
    free(map->flagsets);
    map->flagsets = NULL;
    map->nflagsets = 0;
    map->count = 0;
    map->g_size = 0;
}

const tgt_reg *tgt_regmap_find(const tgt_regmap *map, const char *name)
{
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->regs[i].name, name) == 0)
            return &map->regs[i];
    return NULL;
}

int tgt_regmap_fields(const tgt_regmap *map, const char *name, const tgt_field **fields,
                      size_t *count, fl_error *err)
{
    const tgt_reg *r = tgt_regmap_find(map, name);
    *fields = NULL;
    *count = 0;
    if (!r)
        return fl_fail(err, FL_ENOTFOUND, "the target description has no register named \"%s\"", name);
    for (size_t i = 0; i < map->nflagsets; i++)
        if (strcmp(map->flagsets[i].id, r->type) == 0) {
            *fields = map->flagsets[i].fields;
            *count = map->flagsets[i].count;
            break;
        }
    return 0;
}
