/* outcome: text, Markdown and JSON of an out_fault. See outcome.h. */
#include "faultline/outcome.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const char *const check_mark[2] = { "✗", "✓" };

static void entry_cell(const pw_walk *w, int level, char *buf, size_t cap)
{
    for (int i = 0; i < w->count; i++)
        if (w->e[i].level == level) {
            snprintf(buf, cap, "0x%016" PRIx64 " %s", w->e[i].raw, w->e[i].bits);
            return;
        }
    snprintf(buf, cap, "-");
}

static void vma_line(const out_fault *o, char *buf, size_t cap)
{
    const out_vma *v = &o->vma;
    if (!v->have)
        snprintf(buf, cap, "none seen for 0x%" PRIx64 " (none reached handle_mm_fault, bad_area_access_error or "
                 "expand_downwards where it could be read)", o->cr2);
    else
        snprintf(buf, cap, "0x%" PRIx64 "-0x%" PRIx64 " flags 0x%" PRIx64 " [%s] %s%s%s", v->start, v->end, v->flags,
                 v->flag_names, v->anonymous ? "anonymous" : "file ", v->anonymous ? "" : v->file,
                 v->grew ? " (grew down)" : "");
}

static void hits_line(const out_fault *o, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < o->nhits && used + 2 < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? " -> " : "", o->hits[i].function);
        if (n > 0)
            used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    }
    if (!o->nhits)
        snprintf(buf, cap, "none");
}

static void walk_rows(const out_fault *o, FILE *out, bool md)
{
    const pw_walk *b = &o->before, *a = &o->after;
    int levels = b->levels ? b->levels : a->levels;
    if (md)
        fprintf(out, "| level | index | before | after |\n|---|---|---|---|\n");
    for (int level = levels == 5 ? PW_PML5 : PW_PML4; level < PW_LEVELS; level++) {
        char bc[160], ac[160];
        entry_cell(b, level, bc, sizeof bc);
        entry_cell(a, level, ac, sizeof ac);
        if (!strcmp(bc, "-") && !strcmp(ac, "-"))
            continue;
        unsigned idx = (unsigned)((o->cr2 >> (12 + 9 * (PW_PT - level))) & 0x1ff);
        if (md)
            fprintf(out, "| %s | %u | `%s` | `%s` |\n", pw_level_name(level), idx, bc, ac);
        else
            fprintf(out, "    %-6s %3u  %-48s %s\n", pw_level_name(level), idx, bc, strcmp(bc, ac) ? ac : "same");
    }
}

static void render_text(const out_fault *o, FILE *out)
{
    char line[512];
    fprintf(out, "\noutcome: %s\n", o->classification);
    hits_line(o, line, sizeof line);
    fprintf(out, "  resolver        %s (hits: %s)\n", o->resolver[0] ? o->resolver : "none", line);
    if (o->have_ret)
        fprintf(out, "  handle_mm_fault returned 0x%" PRIx64 " %s\n", o->ret, o->ret_decoded);
    if (o->have_signal && o->signal_known)
        fprintf(out, "  signal          %s, %s, si_addr 0x%" PRIx64 "\n", o->signal_name, o->sig_code_name, o->sig_addr);
    else if (o->have_signal)
        fprintf(out, "  signal          force_sig_fault ran; its parameters were not read\n");
    if (o->fixed_up)
        fprintf(out, "  fixup           pt_regs->ip 0x%" PRIx64 " -> 0x%" PRIx64 "\n", o->fault_ip, o->fixup_ip);
    vma_line(o, line, sizeof line);
    fprintf(out, "  vma             %s\n", line);
    fprintf(out, "                  (%s)\n", o->vm_flags_from);
    fprintf(out, "  page walk of 0x%" PRIx64 ", CR3 0x%" PRIx64 ", %d-level; physical memory via %s\n", o->cr2, o->cr3,
            o->before.levels ? o->before.levels : o->after.levels, o->phys_via);
    walk_rows(o, out, false);
    fprintf(out, "    before: %s; after: %s\n", o->before.ended, o->after.ended);
    fprintf(out, "  change          %s\n", o->have_before && o->have_after ? o->diff.summary : "(not both walked)");
    if (o->have_parent)
        fprintf(out, "  shared with     pid %d: %s%s0x%" PRIx64 "\n", o->parent_pid, o->parent.ended,
                o->parent.mapped ? ", frame " : "", o->parent.frame);
    fprintf(out, "  end             %s\n", o->end);
    if (o->unwatched[0])
        fprintf(out, "  not watched     %s\n", o->unwatched);
    if (o->note[0])
        fprintf(out, "  note            %s\n", o->note);
    fprintf(out, "  outcome checks (%zu, %zu failed):\n", o->nchecks, out_checks_failed(o));
    for (size_t i = 0; i < o->nchecks; i++)
        fprintf(out, "    %s %-22s %s: expected %s, got %s\n", check_mark[o->checks[i].ok], o->checks[i].name,
                o->checks[i].claim, o->checks[i].expected, o->checks[i].actual);
}

static void render_md(const out_fault *o, FILE *out)
{
    char line[512];
    fprintf(out, "\n### Outcome\n\n**%s**\n\n", o->classification);
    hits_line(o, line, sizeof line);
    fprintf(out, "- resolver: `%s` (breakpoints hit, in order: %s)\n", o->resolver[0] ? o->resolver : "none", line);
    if (o->have_ret)
        fprintf(out, "- `handle_mm_fault` returned `0x%" PRIx64 "` %s\n", o->ret, o->ret_decoded);
    if (o->have_signal && o->signal_known)
        fprintf(out, "- signal: %s, %s, si_addr `0x%" PRIx64 "`\n", o->signal_name, o->sig_code_name, o->sig_addr);
    else if (o->have_signal)
        fprintf(out, "- signal: `force_sig_fault` ran; its parameters were not read\n");
    if (o->fixed_up)
        fprintf(out, "- fixup: `pt_regs->ip` `0x%" PRIx64 "` -> `0x%" PRIx64 "`\n", o->fault_ip, o->fixup_ip);
    vma_line(o, line, sizeof line);
    fprintf(out, "- VMA: %s (%s)\n- physical memory via %s\n\n", line, o->vm_flags_from, o->phys_via);
    walk_rows(o, out, true);
    fprintf(out, "\n- change: %s\n- end: %s\n", o->have_before && o->have_after ? o->diff.summary : "(not both walked)",
            o->end);
    if (o->have_parent)
        fprintf(out, "- shared with pid %d: %s, frame `0x%" PRIx64 "`\n", o->parent_pid, o->parent.ended, o->parent.frame);
    if (o->unwatched[0])
        fprintf(out, "- not watched: %s\n", o->unwatched);
    fprintf(out, "\n| | check | claim | expected | actual |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < o->nchecks; i++)
        fprintf(out, "| %s | `%s` | %s | %s | %s |\n", check_mark[o->checks[i].ok], o->checks[i].name,
                o->checks[i].claim, o->checks[i].expected, o->checks[i].actual);
}

int out_render(const out_fault *o, const char *format, FILE *out, fl_error *err)
{
    if (strcmp(format, "text") == 0)
        render_text(o, out);
    else if (strcmp(format, "md") == 0)
        render_md(o, out);
    else
        return fl_fail(err, FL_EUSAGE, "the outcome renders as text or md, not '%s' (JSON: out_to_json)", format);
    if (ferror(out))
        return fl_fail(err, FL_EIO, "writing the outcome failed: %s", strerror(errno));
    return 0;
}

static json_t *hex(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "0x%" PRIx64, v);
    return json_string(b);
}

static json_t *walk_json(const pw_walk *w)
{
    json_t *entries = json_array();
    for (int i = 0; i < w->count; i++) {
        const pw_entry *e = &w->e[i];
        json_array_append_new(entries, json_pack("{s:s,s:i,s:o,s:o,s:s,s:b,s:b,s:o}", "level", pw_level_name(e->level),
                                                 "index", (int)e->index, "entry_paddr", hex(e->addr), "raw", hex(e->raw),
                                                 "bits", e->bits, "present", e->present, "leaf", e->leaf, "next",
                                                 hex(e->next)));
    }
    json_t *j = json_pack("{s:i,s:o,s:o,s:b,s:s}", "levels", w->levels, "cr3", hex(w->cr3), "entries", entries, "mapped",
                          w->mapped, "ended", w->ended);
    if (j && w->mapped)
        json_object_update_new(j, json_pack("{s:o,s:o,s:I,s:b,s:b,s:b,s:b,s:b}", "frame", hex(w->frame), "phys",
                                            hex(w->phys), "page_size", (json_int_t)w->page_size, "writable", w->writable,
                                            "user", w->user, "nx", w->nx, "accessed", w->accessed, "dirty", w->dirty));
    return j;
}

static json_t *vma_json(const out_fault *o)
{
    const out_vma *v = &o->vma;
    if (!v->have)
        return json_null();
    return json_pack("{s:o,s:o,s:o,s:s,s:b,s:s?,s:b,s:s}", "start", hex(v->start), "end", hex(v->end), "flags",
                     hex(v->flags), "flag_names", v->flag_names, "anonymous", v->anonymous, "file",
                     v->anonymous ? NULL : v->file, "grew", v->grew, "names_from", o->vm_flags_from);
}

json_t *out_to_json(const out_fault *o)
{
    json_t *hits = json_array(), *checks = json_array();
    for (size_t i = 0; i < o->nhits; i++)
        json_array_append_new(hits, json_pack("{s:s,s:o,s:s}", "function", o->hits[i].function, "pc", hex(o->hits[i].pc),
                                              "detail", o->hits[i].detail));
    for (size_t i = 0; i < o->nchecks; i++)
        json_array_append_new(checks, json_pack("{s:s,s:s,s:s,s:s,s:b}", "name", o->checks[i].name, "claim",
                                                o->checks[i].claim, "expected", o->checks[i].expected, "actual",
                                                o->checks[i].actual, "ok", o->checks[i].ok));
    json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:s,s:o,s:o,s:s,s:s,s:s}", "classification", o->classification,
                          "resolver", o->resolver, "hits", hits, "cr2", hex(o->cr2), "error_code", o->error_decoded,
                          "before", o->have_before ? walk_json(&o->before) : json_null(), "after",
                          o->have_after ? walk_json(&o->after) : json_null(), "change", o->diff.summary, "vma",
                          vma_json(o), "checks", checks, "end", o->end, "physical_memory_via", o->phys_via, "unwatched",
                          o->unwatched);
    if (!j)
        return NULL;
    if (o->have_ret)
        json_object_set_new(j, "handle_mm_fault_returned", json_pack("{s:o,s:s}", "value", hex(o->ret), "decoded",
                                                                       o->ret_decoded));
    if (o->have_signal && o->signal_known)
        json_object_set_new(j, "signal", json_pack("{s:i,s:s,s:i,s:s,s:o,s:b,s:o}", "number", o->signal, "name",
                                                   o->signal_name, "si_code", o->sig_code, "si_code_name",
                                                   o->sig_code_name, "si_addr", hex(o->sig_addr), "pending",
                                                   o->signal_pending, "handler", hex(o->handler_ip)));
    if (o->fixed_up)
        json_object_set_new(j, "fixup", json_pack("{s:o,s:o}", "from", hex(o->fault_ip), "to", hex(o->fixup_ip)));
    if (o->have_parent)
        json_object_set_new(j, "parent", json_pack("{s:i,s:o}", "pid", o->parent_pid, "walk", walk_json(&o->parent)));
    if (o->note[0])
        json_object_set_new(j, "note", json_string(o->note));
    return j;
}
