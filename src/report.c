/* report: text, Markdown worksheet and JSON Lines renderings of a capture. */
#include "faultline/report.h"

#include <inttypes.h>
#include <string.h>

static const char *const station_titles[CAP_ST_COUNT] = {
    "Hardware entry: CR2 and the CPU's frame",
    "C entry: struct pt_regs",
    "The x86 fault handler: hardware bits to fault flags",
    "Probe 0: the per-VMA lock",
    "Probe 1: the dispatcher",
    "Probe 3: the PTE level (struct vm_fault)",
};

int report_parse_format(const char *name, enum report_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = REPORT_TEXT;
    else if (strcmp(name, "md") == 0 || strcmp(name, "markdown") == 0)
        *out = REPORT_MD;
    else if (strcmp(name, "json") == 0)
        *out = REPORT_JSON;
    else
        return -1;
    return 0;
}

/* ---- JSON ---- */

static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(o, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", o);
        else if (*p == '\t')
            fputs("\\t", o);
        else if (*p < 0x20)
            fprintf(o, "\\u%04x", *p);
        else
            fputc(*p, o);
    }
    fputc('"', o);
}

static void json_hex(FILE *o, uint64_t v)
{
    fprintf(o, "\"0x%" PRIx64 "\"", v);
}

/* ---- helpers ---- */

static const char *mark(bool ok)
{
    return ok ? "\u2713" : "\u2717";
}

static int value_width(const cap_value *v)
{
    return v->size ? (int)v->size * 2 : 16;
}

static void text_station(FILE *o, int id, const cap_station *st)
{
    fprintf(o, "\n[%d] %s", id + 1, cap_station_function(id));
    if (!st->hit) {
        fprintf(o, ": %s\n", st->enabled ? (st->note[0] ? st->note : "not reached") : "not asked for");
        return;
    }
    fprintf(o, "  %s  0x%" PRIx64 "  %s\n", st->location[0] ? st->location : "(no line)", st->pc, st->insn);
    if (st->source[0])
        fprintf(o, "      | %s\n", st->source);
    if (st->kprobe[0])
        fprintf(o, "    kprobes: %s%s\n", st->kprobe_refused ? "refused, " : "", st->kprobe);
    for (size_t i = 0; i < st->nvalues; i++) {
        const cap_value *v = &st->values[i];
        fprintf(o, "    %-24s 0x%0*" PRIx64 "%s%s\n", v->name, value_width(v), v->value, v->decoded[0] ? "  " : "",
                v->decoded);
    }
    if (st->note[0])
        fprintf(o, "    note: %s\n", st->note);
}

static void md_bits(FILE *o, const char *what, const decode_bits *b, uint64_t value, const char *source)
{
    const decode_bit *parts[64];
    uint64_t sum, unknown;
    size_t n = decode_value(b, value, parts, 64, &sum, &unknown);
    fprintf(o, "* **Captured %s**: `0x%" PRIx64 "`\n* **Proof** (%s, from this kernel's DWARF):\n", what, value, source);
    for (size_t i = 0; i < n; i++) {
        int bit = 0;
        while (bit < 63 && !(parts[i]->mask & (1ull << bit)))
            bit++;
        fprintf(o, "  * `0x%04" PRIx64 "`: %s (bit %d)\n", parts[i]->mask, parts[i]->name, bit);
    }
    if (unknown)
        fprintf(o, "  * `0x%04" PRIx64 "`: bits no constant of %s names\n", unknown, source);
    fprintf(o, "  * **SUM**: `0x%" PRIx64 "` %s (computed: the named bits OR to `0x%" PRIx64 "`)\n", value,
            mark(sum == value && !unknown), sum);
}

/* Text inside a Markdown table cell: a bare '|' would end the cell. */
static void md_cell(FILE *o, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputc('\\', o);
        fputc(*p, o);
    }
}

static void md_table(FILE *o, const cap_station *st)
{
    fprintf(o, "| value | live | decoded |\n|---|---|---|\n");
    for (size_t i = 0; i < st->nvalues; i++) {
        const cap_value *v = &st->values[i];
        fprintf(o, "| `%s` | `0x%" PRIx64 "` | ", v->name, v->value);
        md_cell(o, v->decoded);
        fputs(" |\n", o);
    }
}

static void md_station(FILE *o, int id, const cap_station *st, const cap_fault *f, const cap_session *s)
{
    fprintf(o, "\n## %d. %s: `%s`\n\n", id + 2, station_titles[id], cap_station_function(id));
    if (!st->hit) {
        fprintf(o, "* **Status**: %s\n", st->enabled ? (st->note[0] ? st->note : "not reached") : "not asked for");
        return;
    }
    fprintf(o, "* **Stopped at**: `0x%" PRIx64 "` %s `%s`\n", st->pc, st->location, st->insn);
    if (st->source[0])
        fprintf(o, "* **Source**: `%s`\n", st->source);
    fputc('\n', o);
    md_table(o, st);
    if (st->note[0])
        fprintf(o, "\n* **Note**: %s\n", st->note);
    const cap_value *v;
    if (id == CAP_ST_ENTRY && (v = cap_value_get(f, CAP_ST_ENTRY, "frame.error_code"))) {
        fputc('\n', o);
        md_bits(o, "ERROR CODE", cap_error_code_bits(s), v->value, "enum x86_pf_error_code");
    }
    if (id == CAP_ST_MM_FAULT && (v = cap_value_get(f, CAP_ST_MM_FAULT, "flags"))) {
        fputc('\n', o);
        md_bits(o, "FLAG", cap_fault_flag_bits(s), v->value, "enum fault_flag");
    }
}

/* ---- public ---- */

void report_begin(FILE *o, enum report_format fmt, const report_meta *m)
{
    switch (fmt) {
    case REPORT_TEXT:
        fprintf(o, "faultline: kernel %s\n", m->kernel ? m->kernel : "(unknown)");
        if (m->qemu || m->accel)
            fprintf(o, "           %s, accelerator %s%s", m->qemu ? m->qemu : "QEMU", m->accel ? m->accel : "?",
                    m->boot_seconds > 0 ? "" : "\n");
        if (m->boot_seconds > 0)
            fprintf(o, ", booted to the trigger in %.2f s\n", m->boot_seconds);
        break;
    case REPORT_MD:
        fprintf(o, "# SESSION WORKSHEET: PAGE FAULT TRACE (generated by faultline)\n\n");
        fprintf(o, "* **Kernel**: %s\n* **QEMU**: %s\n* **Accelerator**: %s\n* **vmlinux**: `%s`\n",
                m->kernel ? m->kernel : "(unknown)", m->qemu ? m->qemu : "(attached)", m->accel ? m->accel : "(unknown)",
                m->vmlinux ? m->vmlinux : "");
        if (m->boot_seconds > 0)
            fprintf(o, "* **Boot to trigger**: %.2f s\n", m->boot_seconds);
        break;
    case REPORT_JSON:
        fputs("{\"type\":\"vm\",\"kernel\":", o);
        json_str(o, m->kernel);
        fputs(",\"qemu\":", o);
        json_str(o, m->qemu);
        fputs(",\"accel\":", o);
        json_str(o, m->accel);
        fputs(",\"vmlinux\":", o);
        json_str(o, m->vmlinux);
        fputs(",\"gdb\":", o);
        json_str(o, m->gdb);
        fprintf(o, ",\"boot_seconds\":%.3f}\n", m->boot_seconds);
        break;
    }
}

static void json_fault(FILE *o, const report_trigger *t, const cap_fault *f)
{
    if (t->have) {
        fputs("{\"type\":\"trigger\",\"scenario\":", o);
        json_str(o, t->scenario);
        fprintf(o, ",\"pid\":%d,\"comm\":", t->pid);
        json_str(o, t->comm);
        fputs(",\"page\":", o);
        json_hex(o, t->page);
        fputs(",\"target\":", o);
        json_hex(o, t->target);
        fputs(",\"instruction\":", o);
        json_str(o, f->user_insn);
        fputs(",\"instruction_address\":", o);
        json_hex(o, f->fault_ip);
        fputs("}\n", o);
    }
    for (int i = 0; i < CAP_ST_COUNT; i++) {
        const cap_station *st = &f->st[i];
        if (!st->enabled)
            continue;
        fprintf(o, "{\"type\":\"probe\",\"station\":%d,\"function\":", i + 1);
        json_str(o, cap_station_function(i));
        fprintf(o, ",\"hit\":%s,\"kprobe_refused\":%s,\"kprobe\":", st->hit ? "true" : "false",
                st->kprobe_refused ? "true" : "false");
        json_str(o, st->kprobe);
        if (st->hit) {
            fputs(",\"pc\":", o);
            json_hex(o, st->pc);
            fputs(",\"location\":", o);
            json_str(o, st->location);
            fputs(",\"source\":", o);
            json_str(o, st->source);
            fputs(",\"instruction\":", o);
            json_str(o, st->insn);
            fprintf(o, ",\"pid\":%d,\"comm\":", f->task.pid);
            json_str(o, f->task.comm);
            fputs(",\"values\":{", o);
            for (size_t j = 0; j < st->nvalues; j++) {
                fputs(j ? "," : "", o);
                json_str(o, st->values[j].name);
                fputs(":{\"value\":", o);
                json_hex(o, st->values[j].value);
                if (st->values[j].decoded[0]) {
                    fputs(",\"decoded\":", o);
                    json_str(o, st->values[j].decoded);
                }
                fputc('}', o);
            }
            fputc('}', o);
        }
        if (st->note[0]) {
            fputs(",\"note\":", o);
            json_str(o, st->note);
        }
        fputs("}\n", o);
    }
    for (size_t i = 0; i < f->nchecks; i++) {
        const cap_check *c = &f->checks[i];
        fputs("{\"type\":\"check\",\"name\":", o);
        json_str(o, c->name);
        fprintf(o, ",\"ok\":%s,\"claim\":", c->ok ? "true" : "false");
        json_str(o, c->claim);
        fputs(",\"expected\":", o);
        json_str(o, c->expected);
        fputs(",\"actual\":", o);
        json_str(o, c->actual);
        fputs("}\n", o);
    }
}

void report_fault(FILE *o, enum report_format fmt, const report_trigger *t, const cap_fault *f,
                  const cap_session *s)
{
    if (fmt == REPORT_JSON) {
        json_fault(o, t, f);
        return;
    }
    if (fmt == REPORT_TEXT) {
        if (t->have)
            fprintf(o, "\ntrigger: scenario %s, pid %d (%s), page 0x%" PRIx64 ", target 0x%" PRIx64 "\n",
                    t->scenario, t->pid, t->comm, t->page, t->target);
        if (f->user_insn[0])
            fprintf(o, "faulting instruction: 0x%" PRIx64 ": %s\n", f->fault_ip, f->user_insn);
        if (f->task.pid)
            fprintf(o, "current: pid %d (%s), task 0x%" PRIx64 ", mm 0x%" PRIx64 "\n", f->task.pid, f->task.comm,
                    f->task.task, f->task.mm);
        for (int i = 0; i < CAP_ST_COUNT; i++)
            if (f->st[i].enabled)
                text_station(o, i, &f->st[i]);
        fprintf(o, "\nchecks (%zu, %zu failed):\n", f->nchecks, cap_checks_failed(f));
        for (size_t i = 0; i < f->nchecks; i++) {
            const cap_check *c = &f->checks[i];
            fprintf(o, "  %s %-24s %s: expected %s, got %s\n", mark(c->ok), c->name, c->claim, c->expected, c->actual);
        }
        return;
    }
    /* Markdown worksheet */
    fprintf(o, "\n## 1. USERSPACE TRIGGER\n\n");
    if (t->have)
        fprintf(o, "* **Scenario**: `%s` (pid %d, `%s`)\n* **Page**: `0x%" PRIx64 "`\n* **Target VA**: `0x%" PRIx64
                   "` (page + `0x%" PRIx64 "`)\n",
                t->scenario, t->pid, t->comm, t->page, t->target, t->target - t->page);
    if (f->user_insn[0])
        fprintf(o, "* **Faulting instruction**: `%s` at `0x%" PRIx64 "`\n", f->user_insn, f->fault_ip);
    const cap_value *ea = cap_value_get(f, CAP_ST_ENTRY, "insn.effective_address");
    if (ea)
        fprintf(o, "* **Its effective address**, from the live registers: `0x%" PRIx64 "`\n", ea->value);
    if (f->task.pid)
        fprintf(o, "* **current**: pid %d `%s`, task `0x%" PRIx64 "`, mm `0x%" PRIx64 "`\n", f->task.pid, f->task.comm,
                f->task.task, f->task.mm);
    fprintf(o, "\n## THE BLACKLIST TRAP (derived from this vmlinux, as populate_kprobe_blacklist does)\n\n");
    for (int i = 0; i < CAP_ST_COUNT; i++) {
        const cap_station *st = &f->st[i];
        if (!st->enabled || !st->kprobe[0])
            continue;
        char name[64];
        snprintf(name, sizeof name, "kprobe-verdict-%s", cap_station_function(i));
        const cap_check *live = NULL;
        for (size_t c = 0; c < f->nchecks; c++)
            if (strcmp(f->checks[c].name, name) == 0)
                live = &f->checks[c];
        fprintf(o, "* `%s`: %s%s%s; %s\n", cap_station_function(i),
                st->kprobe_refused ? "kprobes REFUSE it (-EINVAL): " : "kprobes: ", st->kprobe,
                live ? (live->ok ? " (the running kernel's kprobe blacklist agrees \u2713)"
                                 : " (the running kernel's kprobe blacklist DISAGREES \u2717)") : "",
                st->hit ? "faultline stopped there with a hardware breakpoint \u2713" : "not reached by this fault");
    }
    for (int i = 0; i < CAP_ST_COUNT; i++)
        if (f->st[i].enabled)
            md_station(o, i, &f->st[i], f, s);
    fprintf(o, "\n## CHECKS (each computed from two live readings)\n\n| | check | claim | expected | actual |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < f->nchecks; i++) {
        const cap_check *c = &f->checks[i];
        fprintf(o, "| %s | `%s` | ", mark(c->ok), c->name);
        md_cell(o, c->claim);
        fputs(" | `", o);
        md_cell(o, c->expected);
        fputs("` | `", o);
        md_cell(o, c->actual);
        fputs("` |\n", o);
    }
    if (f->passed_over)
        fprintf(o, "\n%u faults of other processes or addresses were passed over.\n", f->passed_over);
}

void report_end(FILE *o, enum report_format fmt, const report_summary *s)
{
    switch (fmt) {
    case REPORT_TEXT:
        fprintf(o, "\nsummary: %u fault%s captured, %u checks, %u failed, %u other faults passed over, %.2f s%s%s\n",
                s->faults, s->faults == 1 ? "" : "s", s->checks, s->failed, s->passed_over, s->seconds,
                s->error ? "; stopped early: " : "", s->error ? s->error : "");
        break;
    case REPORT_MD:
        fprintf(o, "\n---\n**Summary**: %u fault%s, %u checks, %u failed %s, %u other faults passed over, %.2f s.%s%s\n",
                s->faults, s->faults == 1 ? "" : "s", s->checks, s->failed, mark(s->failed == 0 && !s->error),
                s->passed_over, s->seconds, s->error ? " Stopped early: " : "", s->error ? s->error : "");
        break;
    case REPORT_JSON:
        fprintf(o, "{\"type\":\"summary\",\"faults\":%u,\"checks\":%u,\"failed\":%u,\"passed_over\":%u,\"seconds\":%.3f,\"error\":",
                s->faults, s->checks, s->failed, s->passed_over, s->seconds);
        if (s->error)
            json_str(o, s->error);
        else
            fputs("null", o);
        fputs("}\n", o);
        break;
    }
}
