/* kernel layer, lines: pc -> file:line:column through the line table of the
 * one CU that .debug_aranges names for the pc (loaded once, compacted, kept)
 * and the innermost (inlined) function from that CU's scope list. */
#include "kernel_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_row(const void *a, const void *b)
{
    const kline_row *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->end_seq != y->end_seq)   /* an end at A sorts before a start at A */
        return x->end_seq ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static void free_table(kline_table *t)
{
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    free(t->files);
    free(t->rows);
    free(t);
}

/* The path of DWARF file number fno, resolved once per file (dwarf_linesrc
 * allocates each time). -1 when out of memory. */
static int file_of(kern *k, kline_table *t, Dwarf_Line line, Dwarf_Unsigned fno)
{
    if (fno >= t->nfiles) {
        char **nf = realloc(t->files, (fno + 1) * sizeof *nf);
        if (!nf)
            return -1;
        memset(nf + t->nfiles, 0, (fno + 1 - t->nfiles) * sizeof *nf);
        t->files = nf;
        t->nfiles = fno + 1;
    }
    if (t->files[fno])
        return 0;
    char *src = NULL;
    Dwarf_Error de = NULL;
    int r = dwarf_linesrc(line, &src, &de);
    kd_note(k, r, de, ".debug_line");
    t->files[fno] = strdup(r == DW_DLV_OK ? src : "??");
    if (r == DW_DLV_OK)
        dwarf_dealloc(k->dbg, src, DW_DLA_STRING);
    return t->files[fno] ? 0 : -1;
}

/* Compacts libdwarf's rows into t. -1 when out of memory. */
static int fill_rows(kern *k, kline_table *t, Dwarf_Line *lines, Dwarf_Signed n)
{
    for (Dwarf_Signed i = 0; i < n; i++) {
        Dwarf_Addr a = 0;
        Dwarf_Unsigned ln = 0, col = 0, fno = 0;
        Dwarf_Bool end = 0;
        Dwarf_Error de = NULL;
        /* Each accessor only reads the row libdwarf already decoded. */
        kd_note(k, dwarf_lineaddr(lines[i], &a, &de), de, ".debug_line");
        kd_note(k, dwarf_lineno(lines[i], &ln, &de), de, ".debug_line");
        kd_note(k, dwarf_lineoff_b(lines[i], &col, &de), de, ".debug_line");
        kd_note(k, dwarf_line_srcfileno(lines[i], &fno, &de), de, ".debug_line");
        kd_note(k, dwarf_lineendsequence(lines[i], &end, &de), de, ".debug_line");
        if (fno > 0xfffe)
            fno = 0xfffe;
        if (file_of(k, t, lines[i], fno) != 0)
            return -1;
        t->rows[t->nrows++] = (kline_row){ .addr = a, .line = (uint32_t)ln, .col = (uint16_t)(col > 0xffff ? 0 : col),
                                           .file = (uint16_t)fno, .end_seq = end ? 1 : 0, .ord = (uint32_t)i };
    }
    return 0;
}

static kline_table *line_table(kern *k, uint64_t cu_die, fl_error *err)
{
    for (kline_table *t = k->lines; t; t = t->next)
        if (t->cu_die == cu_die)
            return t;
    Dwarf_Die cu;
    if (kd_die(k, cu_die, &cu) != 0) {
        if (err)
            *err = k->derr;
        return NULL;
    }
    Dwarf_Unsigned ver = 0;
    Dwarf_Small tables = 0;
    Dwarf_Line_Context ctx = NULL;
    Dwarf_Line *lines = NULL;
    Dwarf_Signed n = 0;
    Dwarf_Error de = NULL;
    int r = dwarf_srclines_b(cu, &ver, &tables, &ctx, &de);
    dwarf_dealloc_die(cu);
    if (r == DW_DLV_OK)
        r = dwarf_srclines_from_linecontext(ctx, &lines, &n, &de);
    if (r != DW_DLV_OK) {
        if (ctx)
            dwarf_srclines_dealloc_b(ctx);
        if (r == DW_DLV_ERROR)
            kd_fail_dwarf(k, err, de, ".debug_line");
        else
            fl_fail(err, FL_ENOTFOUND, "the compilation unit at 0x%llx of %s has no line table",
                    (unsigned long long)cu_die, k->path);
        return NULL;
    }
    kline_table *t = calloc(1, sizeof *t);
    if (t)
        t->rows = malloc((n ? (size_t)n : 1) * sizeof *t->rows);
    if (!t || !t->rows || fill_rows(k, t, lines, n) != 0) {
        if (t)
            free_table(t);
        dwarf_srclines_dealloc_b(ctx);
        fl_fail(err, FL_ENOMEM, "out of memory reading a line table of %s", k->path);
        return NULL;
    }
    dwarf_srclines_dealloc_b(ctx);
    t->cu_die = cu_die;
    qsort(t->rows, t->nrows, sizeof *t->rows, cmp_row);
    t->next = k->lines;
    k->lines = t;
    return t;
}

/* Innermost named scope (inlined subroutine or function) containing pc. */
static const char *innermost_function(kern *k, uint64_t cu_die, uint64_t pc)
{
    kscope_table *s = kd_scopes(k, cu_die, NULL);
    if (!s)
        return NULL;
    const kscope *best = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const kscope *c = &s->v[i];
        bool in = (pc >= c->lo && pc < c->hi) || (c->tag == DW_TAG_inlined_subroutine && pc == c->entry_pc);
        if (c->name && in && (!best || c->depth > best->depth))
            best = c;
    }
    return best ? best->name : NULL;
}

static int line_at(kern *k, uint64_t pc, kern_line *out, fl_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t cu;
    if (!kd_cu_for_pc(k, pc, &cu))
        return fl_fail(err, FL_ENOTFOUND, "no compilation unit of %s covers pc 0x%llx; it is not kernel "
                       "text with debug info (module or asm without DWARF?)", k->path, (unsigned long long)pc);
    kline_table *t = line_table(k, cu, err);
    if (!t)
        return -1;
    size_t lo = 0, hi = t->nrows;   /* first row with addr > pc */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->rows[mid].addr <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || t->rows[lo - 1].end_seq)
        return fl_fail(err, FL_ENOTFOUND, "the line table of %s has no row for pc 0x%llx",
                       k->path, (unsigned long long)pc);
    const kline_row *r = &t->rows[lo - 1];
    out->file = r->file < t->nfiles && t->files[r->file] ? t->files[r->file] : "??";
    out->line = (int)r->line;
    out->column = r->col;
    out->function = innermost_function(k, cu, pc);
    if (!out->function) {
        const char *n;
        uint64_t off;
        if (kern_sym_at(k, pc, &n, &off))
            out->function = n;
    }
    return 0;
}

void kl_free(kern *k)
{
    for (kline_table *t = k->lines, *n; t; t = n) {
        n = t->next;
        free_table(t);
    }
    k->lines = NULL;
}

int kern_line_at(kern *k, uint64_t pc, kern_line *out, fl_error *err)
{
    kd_enter(k);
    return kd_leave(k, line_at(k, pc, out, err), err);
}

const char *kern_short_path(const kern *k, const char *file)
{
    if (!file)
        return "";
    size_t n = k->tree_root ? strlen(k->tree_root) : 0;
    if (n && strncmp(file, k->tree_root, n) == 0 && file[n] == '/')
        file += n + 1;
    while (file[0] == '.' && file[1] == '/')
        file += 2;
    return file;
}
