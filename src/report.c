/* report: text, Markdown worksheet and JSON Lines renderings of a capture. */
#include "faultline/report.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>

/* A fault built by hand (tests) has no rows or count: the defaults. */
static size_t station_count(const cap_fault *f)
{
    return f->nstations ? f->nstations : station_default_count();
}

static const station_def *row_of(const cap_fault *f, size_t i)
{
    return f->st[i].row ? f->st[i].row : station_default(i);
}

static const char *function_of(const cap_fault *f, size_t i)
{
    const station_def *row = row_of(f, i);
    return row ? row->function : "?";
}

static const char *status_of(const cap_station *st)
{
    if (!st->enabled)
        return "not asked for";
    return st->note[0] ? st->note : "not reached";
}

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

/* Where in the program a user-mode fault was: "main+0x2a", or "" (no
 * symbols, a kernel-mode instruction, or no function of the program). */
static const char *where_in_program(const report_trigger *t, const cap_fault *f, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (t->syms && f->fault_ip && f->fault_ip >> 47 == 0) /* x86-64: user space is the lower half */
        usersym_format(t->syms, f->fault_ip, buf, cap);
    return buf;
}

/* A program's argv as one line, space-separated. */
static const char *argv_line(const report_trigger *t, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->argc && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", t->argv[i]);
    return buf;
}

/* ---- JSON ---- */

/* A JSON string of any text: jansson takes only UTF-8, so bytes of another
 * encoding (a source file in Latin-1) become '?'. */
static json_t *jstr(const char *text)
{
    json_t *j = json_string(text ? text : "");
    if (j)
        return j;
    char buf[512];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 1 < sizeof buf; p++)
        buf[n++] = *p < 0x80 ? (char)*p : '?';
    buf[n] = '\0';
    return json_string(buf);
}

static json_t *jhex(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return json_string(buf);
}

/* One JSON Lines record; takes the reference. */
static void emit(FILE *o, json_t *obj)
{
    if (obj) {
        json_dumpf(obj, o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        fputc('\n', o);
    }
    json_decref(obj);
}

static json_t *jseconds(double s)
{
    return json_real((double)(long long)(s * 1000 + 0.5) / 1000);
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

static void text_station(FILE *o, const cap_fault *f, size_t id)
{
    const cap_station *st = &f->st[id];
    fprintf(o, "\n[%zu] %s", id + 1, function_of(f, id));
    if (!st->hit) {
        fprintf(o, ": %s\n", status_of(st));
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

/* Inline code of any text: a longer fence when the text holds a backtick,
 * so the text itself is never rewritten. */
static void md_code(FILE *o, const char *text)
{
    bool tick = strchr(text, '`') != NULL;
    fprintf(o, "%s%s%s", tick ? "`` " : "`", text, tick ? " ``" : "`");
}

static void md_bits(FILE *o, const cap_value *v, const decode_bits *b, const char *source)
{
    const decode_bit *parts[64];
    uint64_t sum, unknown;
    size_t n = decode_value(b, v->value, parts, 64, &sum, &unknown);
    fprintf(o, "* **Captured `%s`**: `0x%" PRIx64 "`\n* **Proof** (%s, from this kernel's DWARF):\n", v->name,
            v->value, source);
    for (size_t i = 0; i < n; i++) {
        int bit = 0;
        while (bit < 63 && !(parts[i]->mask & (1ull << bit)))
            bit++;
        fprintf(o, "  * `0x%04" PRIx64 "`: %s (bit %d)\n", parts[i]->mask, parts[i]->name, bit);
    }
    if (unknown)
        fprintf(o, "  * `0x%04" PRIx64 "`: bits no constant of %s names\n", unknown, source);
    fprintf(o, "  * **SUM**: `0x%" PRIx64 "` %s (computed: the named bits OR to `0x%" PRIx64 "`)\n", v->value,
            mark(sum == v->value && !unknown), sum);
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

static void md_station(FILE *o, const cap_fault *f, size_t id, const cap_session *s)
{
    const cap_station *st = &f->st[id];
    const station_def *row = row_of(f, id);
    fprintf(o, "\n## %zu. %s: `%s`\n\n", id + 2, row && row->title ? row->title : "", function_of(f, id));
    if (!st->hit) {
        fprintf(o, "* **Status**: %s\n", status_of(st));
        return;
    }
    fprintf(o, "* **Stopped at**: `0x%" PRIx64 "` %s ", st->pc, st->location);
    md_code(o, st->insn);
    fputc('\n', o);
    if (st->source[0]) {
        fputs("* **Source**: ", o);
        md_code(o, st->source);
        fputc('\n', o);
    }
    fputc('\n', o);
    md_table(o, st);
    if (st->note[0])
        fprintf(o, "\n* **Note**: %s\n", st->note);
    for (size_t i = 0; i < st->nvalues; i++) {
        const cap_value *v = &st->values[i];
        const decode_bits *b = v->proof ? cap_decoder_bits(s, v->decoder) : NULL;
        if (b) {
            fputc('\n', o);
            md_bits(o, v, b, station_decoder_info(v->decoder)->title);
        }
    }
}

/* ---- JSON records ---- */

void report_outcome(FILE *out, enum report_format fmt, const out_fault *o)
{
    if (fmt != REPORT_JSON) {
        out_render(o, fmt == REPORT_MD ? "md" : "text", out, NULL);
        return;
    }
    json_t *j = json_pack("{s:s}", "type", "outcome"), *body = out_to_json(o);
    if (j && body)
        json_object_update(j, body);
    json_decref(body);
    emit(out, j);
}

static json_t *json_values(const cap_station *st)
{
    json_t *vals = json_object();
    for (size_t j = 0; j < st->nvalues; j++) {
        json_t *v = json_object();
        json_object_set_new(v, "value", jhex(st->values[j].value));
        if (st->values[j].decoded[0])
            json_object_set_new(v, "decoded", jstr(st->values[j].decoded));
        json_object_set_new(vals, st->values[j].name, v);
    }
    return vals;
}

static json_t *json_station(const cap_fault *f, size_t i)
{
    const cap_station *st = &f->st[i];
    json_t *r = json_object();
    json_object_set_new(r, "type", json_string("probe"));
    json_object_set_new(r, "station", json_integer((json_int_t)i + 1));
    json_object_set_new(r, "function", jstr(function_of(f, i)));
    if (st->absent)
        json_object_set_new(r, "status", json_string("not in this kernel"));
    json_object_set_new(r, "hit", json_boolean(st->hit));
    json_object_set_new(r, "kprobe_refused", json_boolean(st->kprobe_refused));
    json_object_set_new(r, "kprobe", jstr(st->kprobe));
    if (st->hit) {
        json_object_set_new(r, "pc", jhex(st->pc));
        json_object_set_new(r, "location", jstr(st->location));
        json_object_set_new(r, "source", jstr(st->source));
        json_object_set_new(r, "instruction", jstr(st->insn));
        json_object_set_new(r, "pid", json_integer(f->task.pid));
        json_object_set_new(r, "comm", jstr(f->task.comm));
        json_object_set_new(r, "values", json_values(st));
    }
    if (st->note[0])
        json_object_set_new(r, "note", jstr(st->note));
    return r;
}

/* The trigger: a scenario's page and target, or a program's argv (it has
 * neither), then the faulting instruction and, for a program with
 * symbols, the function it is in (null: not one of the program's). */
static json_t *json_trigger(const report_trigger *t, const cap_fault *f)
{
    json_t *r = json_pack("{s:s, s:o, s:i, s:o}", "type", "trigger", "scenario", jstr(t->scenario), "pid", t->pid,
                          "comm", jstr(t->comm));
    if (t->argv) {
        json_t *a = json_array();
        for (int i = 0; i < t->argc; i++)
            json_array_append_new(a, jstr(t->argv[i]));
        json_object_set_new(r, "argv", a);
    } else {
        json_object_set_new(r, "page", jhex(t->page));
        json_object_set_new(r, "target", jhex(t->target));
    }
    json_object_set_new(r, "instruction", jstr(f->user_insn));
    json_object_set_new(r, "instruction_address", jhex(f->fault_ip));
    char where[160];
    if (t->syms)
        json_object_set_new(r, "symbol", where_in_program(t, f, where, sizeof where)[0] ? jstr(where) : json_null());
    return r;
}

static void json_fault(FILE *o, const report_trigger *t, const cap_fault *f)
{
    if (t->have)
        emit(o, json_trigger(t, f));
    for (size_t i = 0; i < station_count(f); i++)
        if (f->st[i].enabled)
            emit(o, json_station(f, i));
    for (size_t i = 0; i < f->nchecks; i++) {
        const cap_check *c = &f->checks[i];
        emit(o, json_pack("{s:s, s:o, s:b, s:o, s:o, s:o}", "type", "check", "name", jstr(c->name), "ok", c->ok,
                          "claim", jstr(c->claim), "expected", jstr(c->expected), "actual", jstr(c->actual)));
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
        emit(o, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "type", "vm", "kernel", jstr(m->kernel), "qemu",
                          jstr(m->qemu), "accel", jstr(m->accel), "vmlinux", jstr(m->vmlinux), "gdb", jstr(m->gdb),
                          "boot_seconds", jseconds(m->boot_seconds)));
        break;
    }
}

static void text_fault(FILE *o, const report_trigger *t, const cap_fault *f)
{
    char line[512];
    if (t->have && t->argv)
        fprintf(o, "\ntrigger: program %s, pid %d (%s)\n", argv_line(t, line, sizeof line), t->pid, t->comm);
    else if (t->have)
        fprintf(o, "\ntrigger: scenario %s, pid %d (%s), page 0x%" PRIx64 ", target 0x%" PRIx64 "\n", t->scenario,
                t->pid, t->comm, t->page, t->target);
    if (t->outcome)
        fprintf(o, "%soutcome: %s\n", t->have ? "" : "\n", t->outcome);
    if (f->user_insn[0])
        fprintf(o, "faulting instruction: 0x%" PRIx64 ": %s%s%s\n", f->fault_ip, f->user_insn,
                where_in_program(t, f, line, sizeof line)[0] ? ", in " : "", line);
    if (f->task.pid)
        fprintf(o, "current: pid %d (%s), task 0x%" PRIx64 ", mm 0x%" PRIx64 "\n", f->task.pid, f->task.comm,
                f->task.task, f->task.mm);
    for (size_t i = 0; i < station_count(f); i++)
        if (f->st[i].enabled)
            text_station(o, f, i);
    fprintf(o, "\nchecks (%zu, %zu failed):\n", f->nchecks, cap_checks_failed(f));
    for (size_t i = 0; i < f->nchecks; i++) {
        const cap_check *c = &f->checks[i];
        fprintf(o, "  %s %-24s %s: expected %s, got %s\n", mark(c->ok), c->name, c->claim, c->expected, c->actual);
    }
}

static const cap_check *check_named(const cap_fault *f, const char *name)
{
    for (size_t c = 0; c < f->nchecks; c++)
        if (strcmp(f->checks[c].name, name) == 0)
            return &f->checks[c];
    return NULL;
}

static void md_blacklist(FILE *o, const cap_fault *f)
{
    fprintf(o, "\n## THE BLACKLIST TRAP (derived from this vmlinux, as populate_kprobe_blacklist does)\n\n");
    for (size_t i = 0; i < station_count(f); i++) {
        const cap_station *st = &f->st[i];
        if (!st->enabled || !st->kprobe[0] || st->absent)
            continue;
        char name[64];
        snprintf(name, sizeof name, "kprobe-verdict-%s", function_of(f, i));
        const cap_check *live = check_named(f, name);
        fprintf(o, "* `%s`: %s%s%s; %s\n", function_of(f, i),
                st->kprobe_refused ? "kprobes REFUSE it (-EINVAL): " : "kprobes: ", st->kprobe,
                live ? (live->ok ? " (the running kernel's kprobe blacklist agrees \u2713)"
                                 : " (the running kernel's kprobe blacklist DISAGREES \u2717)") : "",
                st->hit ? "faultline stopped there with a hardware breakpoint \u2713" : "not reached by this fault");
    }
}

static void md_checks(FILE *o, const cap_fault *f)
{
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
}

static void md_fault(FILE *o, const report_trigger *t, const cap_fault *f, const cap_session *s)
{
    fprintf(o, "\n## 1. USERSPACE TRIGGER\n\n");
    if (t->outcome)
        fprintf(o, "* **Outcome**: %s\n", t->outcome);
    char line[512];
    if (t->have && t->argv) {
        fputs("* **Program**: ", o);
        md_code(o, argv_line(t, line, sizeof line));
        fprintf(o, " (pid %d, `%s`)\n", t->pid, t->comm);
    } else if (t->have)
        fprintf(o, "* **Scenario**: `%s` (pid %d, `%s`)\n* **Page**: `0x%" PRIx64 "`\n* **Target VA**: `0x%" PRIx64
                   "` (page + `0x%" PRIx64 "`)\n",
                t->scenario, t->pid, t->comm, t->page, t->target, t->target - t->page);
    if (f->user_insn[0]) {
        fputs("* **Faulting instruction**: ", o);
        md_code(o, f->user_insn);
        fprintf(o, " at `0x%" PRIx64 "`%s%s%s\n", f->fault_ip,
                where_in_program(t, f, line, sizeof line)[0] ? ", in `" : "", line, line[0] ? "`" : "");
    }
    const cap_value *ea = cap_value_get(f, CAP_ST_ENTRY, "insn.effective_address");
    if (ea)
        fprintf(o, "* **Its effective address**, from the live registers: `0x%" PRIx64 "`\n", ea->value);
    if (f->task.pid)
        fprintf(o, "* **current**: pid %d `%s`, task `0x%" PRIx64 "`, mm `0x%" PRIx64 "`\n", f->task.pid, f->task.comm,
                f->task.task, f->task.mm);
    md_blacklist(o, f);
    for (size_t i = 0; i < station_count(f); i++)
        if (f->st[i].enabled)
            md_station(o, f, i, s);
    md_checks(o, f);
    if (f->passed_over)
        fprintf(o, "\n%u faults of other processes or addresses were passed over.\n", f->passed_over);
}

void report_fault(FILE *o, enum report_format fmt, const report_trigger *t, const cap_fault *f,
                  const cap_session *s)
{
    if (fmt == REPORT_JSON)
        json_fault(o, t, f);
    else if (fmt == REPORT_TEXT)
        text_fault(o, t, f);
    else
        md_fault(o, t, f, s);
}

/* ---- the table of every fault ---- */

static const cap_value *entry_value(const cap_fault *f, const char *name)
{
    return cap_value_get(f, CAP_ST_ENTRY, name);
}

/* One cell's text: a value as hex (with its decoded names), or "?". */
static const char *hex_cell(const cap_value *v, bool decoded, char *buf, size_t cap)
{
    if (!v)
        snprintf(buf, cap, "?");
    else
        snprintf(buf, cap, "0x%" PRIx64 "%s%s", v->value, decoded && v->decoded[0] ? " " : "",
                 decoded ? v->decoded : "");
    return buf;
}

void report_table_head(FILE *o, enum report_format fmt)
{
    if (fmt == REPORT_TEXT)
        fprintf(o, "\n%4s %-7s %-18s %-40s %-18s %-32s %-40s %s\n", "#", "pid", "address", "error code", "ip",
                "symbol", "instruction", "outcome");
    else if (fmt == REPORT_MD)
        fprintf(o, "\n## EVERY FAULT\n\n| # | pid | address | error code | ip | symbol | instruction | outcome |\n"
                   "|---|---|---|---|---|---|---|---|\n");
}

void report_table_row(FILE *o, enum report_format fmt, unsigned index, const report_trigger *t, const cap_fault *f,
                      const out_fault *of)
{
    char addr[24], code[224], ip[24], where[160], pid[16] = "-"; /* the exception log reads no task */
    if (f->task.pid)
        snprintf(pid, sizeof pid, "%d", f->task.pid);
    hex_cell(entry_value(f, "cr2"), false, addr, sizeof addr);
    hex_cell(entry_value(f, "frame.error_code"), true, code, sizeof code);
    snprintf(ip, sizeof ip, "0x%" PRIx64, f->fault_ip);
    where_in_program(t, f, where, sizeof where);
    const char *outcome = of && of->classification[0] ? of->classification : "";
    if (fmt == REPORT_TEXT) {
        const char *insn = f->user_insn[0] ? f->user_insn : "-";
        fprintf(o, "%4u %-7s %-18s %-40s %-18s %-32s ", index, pid, addr, code, ip, where[0] ? where : "-");
        fprintf(o, outcome[0] ? "%-40s %s\n" : "%s%s\n", insn, outcome); /* no trailing blanks */
        return;
    }
    const char *cells[] = { addr, code, ip, where, f->user_insn, outcome };
    fprintf(o, "| %u | %s |", index, pid);
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        fputs(cells[i][0] && i < 5 ? " `" : " ", o);
        md_cell(o, cells[i]);
        fputs(cells[i][0] && i < 5 ? "` |" : " |", o);
    }
    fputc('\n', o);
}

/* run -- PROGRAM: what the program took, matched and how it ended. */
static void program_summary(FILE *o, enum report_format fmt, const report_summary *s)
{
    char status[48] = "not reported (the run ended first)";
    if (s->exited)
        snprintf(status, sizeof status, "%d", s->exit_status);
    fprintf(o, fmt == REPORT_MD ? "\n**Program**: %u fault%s taken while captured, %u matched the filters, "
                                  "%u captured, exit status %s.\n"
                                : "program: %u fault%s taken while captured, %u matched the filters, %u captured, "
                                  "exit status %s\n",
            s->program_faults, s->program_faults == 1 ? "" : "s", s->matched, s->faults, status);
}

static json_t *json_program(const report_summary *s)
{
    return json_pack("{s:i, s:i, s:i, s:o}", "faults", (int)s->program_faults, "matched", (int)s->matched,
                     "captured", (int)s->faults, "exit_status", s->exited ? json_integer(s->exit_status) : json_null());
}

void report_end(FILE *o, enum report_format fmt, const report_summary *s)
{
    switch (fmt) {
    case REPORT_TEXT:
        fprintf(o, "\nsummary: %u fault%s captured, %u checks, %u failed, %u other faults passed over, %.2f s%s%s\n",
                s->faults, s->faults == 1 ? "" : "s", s->checks, s->failed, s->passed_over, s->seconds,
                s->error ? "; stopped early: " : "", s->error ? s->error : "");
        if (s->program)
            program_summary(o, fmt, s);
        break;
    case REPORT_MD:
        fprintf(o, "\n---\n**Summary**: %u fault%s, %u checks, %u failed %s, %u other faults passed over, %.2f s.%s%s\n",
                s->faults, s->faults == 1 ? "" : "s", s->checks, s->failed, mark(s->failed == 0 && !s->error),
                s->passed_over, s->seconds, s->error ? " Stopped early: " : "", s->error ? s->error : "");
        if (s->program)
            program_summary(o, fmt, s);
        break;
    case REPORT_JSON:
    {
        json_t *r = json_pack("{s:s, s:i, s:i, s:i, s:i, s:o, s:o}", "type", "summary", "faults", (int)s->faults,
                              "checks", (int)s->checks, "failed", (int)s->failed, "passed_over", (int)s->passed_over,
                              "seconds", jseconds(s->seconds), "error", s->error ? jstr(s->error) : json_null());
        if (s->program)
            json_object_set_new(r, "program", json_program(s));
        emit(o, r);
        break;
    }
    }
}
