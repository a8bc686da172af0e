/* flame: folded stacks and an SVG flame chart of a trace. See flame.h. */
#include "faultline/flame.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define STACK_MAX 4096
/* The chart's geometry, in SVG user units (px). */
#define SVG_WIDTH 1200
#define ROW_HEIGHT 18
#define TOP_MARGIN 40

/* ---- which call each step belongs to ---- */

/* node[i] = the innermost call containing step i (parents come before
 * their children in trace_calltree's order, so children overwrite). */
static long *step_nodes(const trace_result *r, const trace_call *c, size_t nc)
{
    long *node = malloc((r->nsteps ? r->nsteps : 1) * sizeof *node);
    if (!node)
        return NULL;
    for (size_t i = 0; i < r->nsteps; i++)
        node[i] = -1;
    for (size_t n = 0; n < nc; n++)
        for (size_t i = c[n].first; i < c[n].first + c[n].total && i < r->nsteps; i++)
            node[i] = (long)n;
    return node;
}

/* The nearest call at or above n named `function` (or the root when NULL). */
static long anchor(const trace_call *c, long n, const char *function)
{
    long last = n;
    for (; n >= 0; n = c[n].parent) {
        if (function && strcmp(c[n].function, function) == 0)
            return n;
        last = n;
    }
    return function ? -1 : last;
}

static int depth_below(const trace_call *c, long n, long top)
{
    int d = 0;
    for (; n >= 0 && n != top; n = c[n].parent)
        d++;
    return d;
}

/* "top;...;n" (at most `limit` frames below top when limit > 0) into buf. */
static size_t stack_of(const trace_call *c, long n, long top, int limit, char *buf, size_t cap)
{
    long chain[256];
    size_t k = 0;
    for (long m = n; m >= 0 && k < 256; m = c[m].parent) {
        chain[k++] = m;
        if (m == top)
            break;
    }
    size_t used = 0, frames = 0;
    buf[0] = '\0';
    for (size_t i = k; i-- > 0 && used < cap;) {
        if (limit > 0 && frames > (size_t)limit)
            break;
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? ";" : "", c[chain[i]].function);
        frames++;
    }
    return used < cap ? used : cap - 1;
}

/* ---- folded ---- */

typedef struct fold {
    char **keys;
    size_t *counts;
    size_t n, cap;
} fold;

static int fold_add(fold *f, const char *key)
{
    for (size_t i = f->n; i-- > 0;)   /* recent stacks repeat: search from the end */
        if (strcmp(f->keys[i], key) == 0) {
            f->counts[i]++;
            return 0;
        }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        char **nk = realloc(f->keys, nc * sizeof *nk);
        if (!nk)
            return -1;
        f->keys = nk;
        size_t *ncnt = realloc(f->counts, nc * sizeof *ncnt);
        if (!ncnt)
            return -1;
        f->counts = ncnt;
        f->cap = nc;
    }
    f->keys[f->n] = strdup(key);
    if (!f->keys[f->n])
        return -1;
    f->counts[f->n++] = 1;
    return 0;
}

static void fold_free(fold *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->keys[i]);
    free(f->keys);
    free(f->counts);
}

static int folded(FILE *out, const trace_result *r, const trace_call *c, const long *node,
                  const trace_report_options *o)
{
    fold f = { 0 };
    char key[STACK_MAX];
    int rc = 0;
    const char *fn = o && o->function && *o->function ? o->function : NULL;
    int limit = o ? o->depth : 0;
    for (size_t i = 0; i < r->nsteps && rc == 0; i++) {
        long n = node[i], top = n >= 0 ? anchor(c, n, fn) : -1;
        if (top < 0)
            continue;
        size_t used = stack_of(c, n, top, limit, key, sizeof key);
        const trace_pc *p = &r->pcs[r->steps[i].pc];
        bool cut = limit > 0 && depth_below(c, n, top) > limit;
        /* an inlined function is a frame of its own */
        if (!cut && p->function != p->sym && strcmp(p->function, c[n].function) != 0)
            snprintf(key + used, sizeof key - used, ";%s", p->function);
        rc = fold_add(&f, key);
    }
    for (size_t i = 0; i < f.n && rc == 0; i++)
        fprintf(out, "%s %zu\n", f.keys[i], f.counts[i]);
    fold_free(&f);
    return rc;
}

/* ---- svg ---- */

static void xml_text(FILE *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        default: fputc(*s, o);
        }
    }
}

/* A warm colour per function name, the same in every chart. */
static void colour(const char *name, char *buf, size_t cap)
{
    uint32_t h = 2166136261u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    snprintf(buf, cap, "rgb(%u,%u,%u)", 205 + h % 50, 80 + (h >> 8) % 130, 40 + (h >> 16) % 50);
}

typedef struct chart {
    size_t x0, x1;          /* steps shown */
    int base;               /* depth drawn at the top row */
    int rows;
} chart;

static void svg_box(FILE *o, const trace_result *r, const trace_call *c, size_t n, const chart *ch)
{
    double scale = (double)SVG_WIDTH / (double)(ch->x1 - ch->x0 ? ch->x1 - ch->x0 : 1);
    size_t total = c[n].total ? c[n].total : 1;
    double x = (double)(c[n].first - ch->x0) * scale, w = (double)total * scale;
    if (w < 0.3)
        return;  /* narrower than a third of a pixel: invisible */
    int y = TOP_MARGIN + (c[n].depth - ch->base) * ROW_HEIGHT;
    const trace_pc *p = c[n].first < r->nsteps ? &r->pcs[r->steps[c[n].first].pc] : NULL;
    char fill[32];
    colour(c[n].function, fill, sizeof fill);
    fputs("<g><title>", o);
    xml_text(o, c[n].function);
    if (p && p->file)
        fprintf(o, " (%s:%d)", p->file, p->line);
    fprintf(o, "\n%zu instructions, %zu in itself, from step %zu%s</title>", c[n].total, c[n].self, c[n].first,
            c[n].over ? ", run through (--over)" : "");
    fprintf(o, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" stroke=\"white\" "
               "stroke-width=\"0.5\"/>", x, y, w, ROW_HEIGHT - 1, fill);
    if (w > 40) {
        fprintf(o, "<text x=\"%.2f\" y=\"%d\" font-size=\"11\" font-family=\"monospace\">", x + 3,
                y + 13);
        size_t fit = (size_t)((w - 6) / 7);
        char label[128];
        snprintf(label, sizeof label, "%.*s", (int)(fit < sizeof label - 1 ? fit : sizeof label - 1),
                 c[n].function);
        xml_text(o, label);
        fputs("</text>", o);
    }
    fputs("</g>\n", o);
}

/* The steps and depths to draw: everything, or the calls of o->function. */
static chart chart_of(const trace_result *r, const trace_call *c, size_t nc, const trace_report_options *o,
                      bool *keep)
{
    chart ch = { .x0 = SIZE_MAX, .x1 = 0, .base = 1 << 30 };
    const char *fn = o && o->function && *o->function ? o->function : NULL;
    for (size_t n = 0; n < nc; n++) {
        long top = anchor(c, (long)n, fn);
        keep[n] = top >= 0 && (!o || o->depth <= 0 || depth_below(c, (long)n, top) <= o->depth);
        if (!keep[n])
            continue;
        ch.x0 = c[n].first < ch.x0 ? c[n].first : ch.x0;
        size_t end = c[n].first + (c[n].total ? c[n].total : 1);
        ch.x1 = end > ch.x1 ? end : ch.x1;
        ch.base = c[n].depth < ch.base ? c[n].depth : ch.base;
    }
    for (size_t n = 0; n < nc; n++)
        if (keep[n] && c[n].depth - ch.base + 1 > ch.rows)
            ch.rows = c[n].depth - ch.base + 1;
    if (ch.x0 == SIZE_MAX)
        ch = (chart){ .x0 = 0, .x1 = r->nsteps, .base = 0, .rows = 0 };
    return ch;
}

static int svg(FILE *o, const trace_result *r, const trace_call *c, size_t nc, const trace_report_options *opt)
{
    bool *keep = calloc(nc ? nc : 1, sizeof *keep);
    if (!keep)
        return -1;
    chart ch = chart_of(r, c, nc, opt, keep);
    int height = TOP_MARGIN + (ch.rows + 1) * ROW_HEIGHT;
    fprintf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"rgb(250,250,240)\"/>\n",
            SVG_WIDTH, height, SVG_WIDTH, height);
    fprintf(o, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-family=\"sans-serif\" text-anchor=\"middle\">"
               "faultline trace: %zu instructions, 0x%" PRIx64 " to %s (width = instructions, in execution "
               "order)</text>\n", SVG_WIDTH / 2, ch.x1 - ch.x0, r->start_pc, trace_stop_name(r->stop));
    for (size_t n = 0; n < nc; n++)
        if (keep[n])
            svg_box(o, r, c, n, &ch);
    fputs("</svg>\n", o);
    free(keep);
    return 0;
}

int flame_write(FILE *out, enum flame_format fmt, const trace_result *r, const trace_report_options *o)
{
    trace_call *c = NULL;
    size_t nc = 0;
    if (trace_calltree(r, &c, &nc) < 0)
        return -1;
    int rc;
    if (fmt == FLAME_SVG) {
        rc = svg(out, r, c, nc, o);
    } else {
        long *node = step_nodes(r, c, nc);
        rc = node ? folded(out, r, c, node, o) : -1;
        free(node);
    }
    free(c);
    return rc < 0 || ferror(out) ? -1 : 0;
}
