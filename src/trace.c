/* trace: step the kernel instruction by instruction (or branch to branch)
 * and record what each instruction did. See trace.h. */
#include "faultline/trace.h"
#include "faultline/explain.h"
#include "faultline/util.h"

#include <capstone.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_STEPS 1000000
#define DEFAULT_TIMEOUT_MS 120000
#define DEFAULT_STEP_TIMEOUT_MS 5000
/* Bytes read per decode miss: one `m` covers a few dozen instructions, and
 * an instruction is at most 15 bytes, so only those that start 15 bytes
 * before the end of the buffer are certainly whole. */
#define DECODE_CHUNK 160
#define X86_MAX_INSN 15
/* A block longer than this is cut (a guard, not a tuning knob). */
#define MAX_BLOCK 4096
/* Continues discarded in a row because the stop was not ours (an interrupt
 * handler passing the same pc) before giving up. */
#define MAX_RESYNC 64

/* The EFLAGS bits the tracer reads or writes, by their names in the target
 * description's eflags <flags> type (tgt_regmap_fields). */
typedef struct eflags_bits {
    uint64_t cf, pf, zf, sf, of, if_, ac;
} eflags_bits;

static const char *const kind_names[TRACE_K_COUNT] = {
    "plain", "jmp", "jcc", "jmp-ind", "call", "call-ind", "ret", "iret", "sysret", "int", "special",
};

const char *trace_kind_name(enum trace_kind k)
{
    return (unsigned)k < TRACE_K_COUNT ? kind_names[k] : "?";
}

int trace_depth_after(enum trace_kind k, int d)
{
    switch (k) {
    case TRACE_K_CALL:
    case TRACE_K_CALL_IND:
    case TRACE_K_INT:
        return d + 1;
    case TRACE_K_RET:
    case TRACE_K_IRET:
    case TRACE_K_SYSRET:
        return d - 1;
    default:
        return d;
    }
}

/* ---- result building ------------------------------------------------- */

typedef struct rpriv {
    char **strs;          /* interned strings: open-addressing set */
    size_t nstrs, capstrs;
    size_t cap_steps, cap_pcs, cap_changes, cap_over;
    size_t cap_vars, cap_values, cap_fcalls, cap_checks;
} rpriv;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Many pcs share a file, function and symbol name: keep one copy each. */
static const char *intern(trace_result *r, const char *s)
{
    if (!s)
        return NULL;
    rpriv *p = r->priv;
    if (p->nstrs * 2 >= p->capstrs) {
        size_t nc = p->capstrs ? p->capstrs * 2 : 256;
        char **ns = calloc(nc, sizeof *ns);
        if (!ns)
            return NULL;
        for (size_t i = 0; i < p->capstrs; i++)
            if (p->strs[i]) {
                size_t j = hash_str(p->strs[i]) & (nc - 1);
                while (ns[j])
                    j = (j + 1) & (nc - 1);
                ns[j] = p->strs[i];
            }
        free(p->strs);
        p->strs = ns;
        p->capstrs = nc;
    }
    size_t j = hash_str(s) & (p->capstrs - 1);
    while (p->strs[j]) {
        if (strcmp(p->strs[j], s) == 0)
            return p->strs[j];
        j = (j + 1) & (p->capstrs - 1);
    }
    p->strs[j] = strdup(s);
    if (!p->strs[j])
        return NULL;
    p->nstrs++;
    return p->strs[j];
}

/* Amortised growth: the stepping loop never mallocs per step. */
static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    void *nb = realloc(*buf, nc * elem);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

trace_result *trace_result_new(const char *const *regnames, size_t nregs)
{
    trace_result *r = calloc(1, sizeof *r);
    rpriv *p = calloc(1, sizeof *p);
    if (!r || !p) {
        free(r);
        free(p);
        return NULL;
    }
    r->priv = p;
    r->regnames = calloc(nregs ? nregs : 1, sizeof *r->regnames);
    if (!r->regnames) {
        trace_result_free(r);
        return NULL;
    }
    for (size_t i = 0; i < nregs; i++)
        snprintf(r->regnames[i], sizeof r->regnames[i], "%s", regnames[i]);
    r->nregs = nregs;
    return r;
}

void trace_result_free(trace_result *r)
{
    if (!r)
        return;
    rpriv *p = r->priv;
    if (p) {
        for (size_t i = 0; i < p->capstrs; i++)
            free(p->strs[i]);
        free(p->strs);
        free(p);
    }
    free(r->steps);
    free(r->pcs);
    free(r->changes);
    free(r->over_calls);
    free(r->vars);
    free(r->values);
    free(r->fcalls);
    free(r->checks);
    free(r->regnames);
    free(r);
}

int trace_result_add_pc(trace_result *r, const trace_pc *pc, uint32_t *index)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->pcs, &p->cap_pcs, r->npcs + 1, sizeof *r->pcs) < 0)
        return -1;
    trace_pc *d = &r->pcs[r->npcs];
    *d = *pc;
    d->sym = intern(r, pc->sym ? pc->sym : "?");
    d->file = intern(r, pc->file);
    d->function = intern(r, pc->function ? pc->function : d->sym);
    d->source = intern(r, pc->source);
    d->text = intern(r, pc->text ? pc->text : "");
    if (!d->sym || !d->function || !d->text || (pc->file && !d->file) || (pc->source && !d->source))
        return -1;
    *index = (uint32_t)r->npcs++;
    return 0;
}

int trace_result_add_step(trace_result *r, uint32_t pc_index, int depth, const trace_change *ch, size_t nch,
                          unsigned flags)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->steps, &p->cap_steps, r->nsteps + 1, sizeof *r->steps) < 0 ||
        grow((void **)&r->changes, &p->cap_changes, r->nchanges + nch, sizeof *r->changes) < 0)
        return -1;
    if (nch)
        memcpy(&r->changes[r->nchanges], ch, nch * sizeof *ch);
    r->steps[r->nsteps++] = (trace_step){ .pc = pc_index, .depth = depth, .change = (uint32_t)r->nchanges,
                                          .nchanges = (uint16_t)nch, .flags = (uint16_t)flags };
    r->nchanges += nch;
    return 0;
}

int trace_result_add_over(trace_result *r, const char *function)
{
    rpriv *p = r->priv;
    if (!r->nsteps || grow((void **)&r->over_calls, &p->cap_over, r->nover_calls + 1, sizeof *r->over_calls) < 0)
        return -1;
    const char *f = intern(r, function ? function : "?");
    if (!f)
        return -1;
    r->over_calls[r->nover_calls++] = (trace_over){ .step = r->nsteps - 1, .function = f };
    return 0;
}

const char *trace_result_str(trace_result *r, const char *s)
{
    return intern(r, s);
}

int trace_result_add_var(trace_result *r, const trace_var *v)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->vars, &p->cap_vars, r->nvars + 1, sizeof *r->vars) < 0)
        return -1;
    r->vars[r->nvars++] = *v;
    return 0;
}

int trace_result_add_value(trace_result *r, const trace_value *v, size_t *index)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->values, &p->cap_values, r->nvalues + 1, sizeof *r->values) < 0)
        return -1;
    if (index)
        *index = r->nvalues;
    r->values[r->nvalues++] = *v;
    return 0;
}

int trace_result_add_fcall(trace_result *r, const trace_fcall *c, size_t *index)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->fcalls, &p->cap_fcalls, r->nfcalls + 1, sizeof *r->fcalls) < 0)
        return -1;
    if (index)
        *index = r->nfcalls;
    r->fcalls[r->nfcalls++] = *c;
    return 0;
}

int trace_result_add_check(trace_result *r, const trace_check *c)
{
    rpriv *p = r->priv;
    if (grow((void **)&r->checks, &p->cap_checks, r->nchecks + 1, sizeof *r->checks) < 0)
        return -1;
    r->checks[r->nchecks++] = *c;
    return 0;
}

/* ---- decoding -------------------------------------------------------- */

/* Decoder output beyond trace_insn: what fast mode needs to compute a
 * successor itself. */
typedef struct dec {
    trace_insn in;
    unsigned id;          /* capstone instruction id (jcc condition) */
    unsigned ind_reg;     /* capstone register of an indirect jmp/call, 0 if memory */
    uint16_t ret_imm;
} dec;

static bool has_group(const cs_insn *ci, uint8_t g)
{
    for (uint8_t i = 0; i < ci->detail->groups_count; i++)
        if (ci->detail->groups[i] == g)
            return true;
    return false;
}

static bool writes_reg(csh cs, const cs_insn *ci, unsigned reg)
{
    cs_regs rd, wr;
    uint8_t nr = 0, nw = 0;
    if (cs_regs_access(cs, ci, rd, &nr, wr, &nw) != CS_ERR_OK)
        return true;  /* cannot tell: assume the worst */
    for (uint8_t i = 0; i < nw; i++)
        if (wr[i] == reg)
            return true;
    return false;
}

static bool is_ctl_or_dbg(unsigned reg)
{
    return (reg >= X86_REG_CR0 && reg <= X86_REG_CR15) || (reg >= X86_REG_DR0 && reg <= X86_REG_DR15);
}

/* Instructions that change how the CPU runs (interrupt flag, privilege,
 * serialisation, I/O) or that may trap by design: fast mode steps them. */
static bool special_id(unsigned id)
{
    switch (id) {
    case X86_INS_CLI: case X86_INS_STI: case X86_INS_POPF: case X86_INS_POPFD: case X86_INS_POPFQ:
    case X86_INS_HLT: case X86_INS_CPUID: case X86_INS_RDMSR: case X86_INS_WRMSR: case X86_INS_SWAPGS:
    case X86_INS_STAC: case X86_INS_CLAC: case X86_INS_INVLPG: case X86_INS_LGDT: case X86_INS_LIDT:
    case X86_INS_LLDT: case X86_INS_LTR: case X86_INS_IN: case X86_INS_OUT: case X86_INS_INSB:
    case X86_INS_INSW: case X86_INS_INSD: case X86_INS_OUTSB: case X86_INS_OUTSW: case X86_INS_OUTSD:
    case X86_INS_XSAVE: case X86_INS_XSAVEC: case X86_INS_XSAVEOPT: case X86_INS_XSAVES:
    case X86_INS_XRSTOR: case X86_INS_XRSTORS: case X86_INS_XSAVE64: case X86_INS_XRSTOR64:
    case X86_INS_XSAVEC64: case X86_INS_XSAVEOPT64: case X86_INS_XSAVES64: case X86_INS_XRSTORS64:
    case X86_INS_WBINVD: case X86_INS_INVD: case X86_INS_CLTS: case X86_INS_ENTER: case X86_INS_LEAVE:
    case X86_INS_LOOP: case X86_INS_LOOPE: case X86_INS_LOOPNE: case X86_INS_RDPMC: case X86_INS_XSETBV:
    case X86_INS_MWAIT: case X86_INS_MONITOR: case X86_INS_LJMP: case X86_INS_LCALL: case X86_INS_RETF:
    case X86_INS_RETFQ: case X86_INS_INVPCID: case X86_INS_VMCALL: case X86_INS_VMMCALL:
    case X86_INS_PUSHF: case X86_INS_PUSHFD: case X86_INS_PUSHFQ:
        return true;
    default:
        return false;
    }
}

static bool is_iret(unsigned id)
{
    return id == X86_INS_IRET || id == X86_INS_IRETD || id == X86_INS_IRETQ;
}

/* rsp after a plain instruction: the exact effect of the common forms;
 * false for anything else that writes rsp (stepped, so fast mode can verify
 * each stop's rsp). */
static bool rsp_effect(csh cs, const cs_insn *ci, dec *d)
{
    const cs_x86 *x = &ci->detail->x86;
    const cs_x86_op *op0 = x->op_count ? &x->operands[0] : NULL;
    bool opsize = x->prefix[2] == X86_PREFIX_OPSIZE;
    if (ci->id == X86_INS_PUSH) {
        d->in.rsp_delta = -8;
        d->in.rsp_known = !opsize;
    } else if (ci->id == X86_INS_POP) {
        d->in.rsp_delta = 8;
        d->in.rsp_known = !opsize && !(op0 && op0->type == X86_OP_REG && op0->reg == X86_REG_RSP);
    } else if ((ci->id == X86_INS_SUB || ci->id == X86_INS_ADD) && x->op_count == 2 && op0 &&
               op0->type == X86_OP_REG && op0->reg == X86_REG_RSP && x->operands[1].type == X86_OP_IMM) {
        int64_t imm = x->operands[1].imm;
        d->in.rsp_delta = (int32_t)(ci->id == X86_INS_SUB ? -imm : imm);
    } else if (ci->id == X86_INS_LEA && x->op_count == 2 && op0 && op0->type == X86_OP_REG &&
               op0->reg == X86_REG_RSP) {
        const x86_op_mem *m = &x->operands[1].mem;
        d->in.rsp_known = m->base == X86_REG_RSP && m->index == X86_REG_INVALID && m->segment == X86_REG_INVALID;
        d->in.rsp_delta = (int32_t)m->disp;
    } else if (writes_reg(cs, ci, X86_REG_RSP)) {
        d->in.rsp_known = false;
    }
    return d->in.rsp_known;
}

static void classify(csh cs, const cs_insn *ci, dec *d)
{
    const cs_x86 *x = &ci->detail->x86;
    memset(d, 0, sizeof *d);
    d->id = ci->id;
    d->in.len = (uint8_t)ci->size;
    d->in.rsp_known = true;
    snprintf(d->in.text, sizeof d->in.text, "%s%s%s", ci->mnemonic, ci->op_str[0] ? " " : "", ci->op_str);
    const cs_x86_op *op0 = x->op_count ? &x->operands[0] : NULL;
    enum trace_kind k = TRACE_K_PLAIN;
    /* before the groups: capstone files sysret among the interrupt returns */
    if (ci->id == X86_INS_SYSRET || ci->id == X86_INS_SYSEXIT || strncmp(ci->mnemonic, "sysret", 6) == 0) {
        k = TRACE_K_SYSRET;
    } else if (is_iret(ci->id) || has_group(ci, CS_GRP_IRET)) {
        k = TRACE_K_IRET;
    } else if (has_group(ci, CS_GRP_INT) || ci->id == X86_INS_INT || ci->id == X86_INS_INT3 ||
               ci->id == X86_INS_INTO || ci->id == X86_INS_INT1 || ci->id == X86_INS_SYSCALL ||
               ci->id == X86_INS_SYSENTER || ci->id == X86_INS_UD2 || ci->id == X86_INS_UD2B) {
        k = TRACE_K_INT;
    } else if (special_id(ci->id)) {
        k = TRACE_K_SPECIAL;
    } else if (has_group(ci, CS_GRP_RET)) {
        k = TRACE_K_RET;
        if (op0 && op0->type == X86_OP_IMM)
            d->ret_imm = (uint16_t)op0->imm;
        d->in.rsp_delta = 8 + d->ret_imm;
    } else if (has_group(ci, CS_GRP_CALL)) {
        d->in.rsp_delta = -8;
        if (op0 && op0->type == X86_OP_IMM) {
            k = TRACE_K_CALL;
            d->in.target = (uint64_t)op0->imm;
        } else {
            k = TRACE_K_CALL_IND;
            if (op0 && op0->type == X86_OP_REG)
                d->ind_reg = op0->reg;
        }
    } else if (has_group(ci, CS_GRP_JUMP)) {
        if (ci->id == X86_INS_JMP) {
            if (op0 && op0->type == X86_OP_IMM) {
                k = TRACE_K_JMP;
                d->in.target = (uint64_t)op0->imm;
            } else {
                k = TRACE_K_JMP_IND;
                if (op0 && op0->type == X86_OP_REG)
                    d->ind_reg = op0->reg;
            }
        } else {
            k = TRACE_K_JCC;
            if (op0 && op0->type == X86_OP_IMM)
                d->in.target = (uint64_t)op0->imm;
            else
                k = TRACE_K_SPECIAL;
        }
    } else if (has_group(ci, CS_GRP_PRIVILEGE)) {
        k = TRACE_K_SPECIAL;
    } else {
        for (uint8_t i = 0; i < x->op_count; i++)
            if (x->operands[i].type == X86_OP_REG && is_ctl_or_dbg(x->operands[i].reg))
                k = TRACE_K_SPECIAL;
    }
    if (k == TRACE_K_PLAIN && !rsp_effect(cs, ci, d))
        k = TRACE_K_SPECIAL;
    d->in.kind = k;
}

int trace_decode(const uint8_t *code, size_t len, uint64_t pc, trace_insn *out, fl_error *err)
{
    csh cs;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
        return fl_fail(err, FL_EIO, "capstone could not open an x86-64 disassembler");
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_insn *ci;
    int rc = 0;
    if (cs_disasm(cs, code, len, pc, 1, &ci) != 1) {
        rc = fl_fail(err, FL_EFORMAT, "the bytes at 0x%" PRIx64 " do not decode as an x86-64 instruction", pc);
    } else {
        dec d;
        classify(cs, ci, &d);
        *out = d.in;
        cs_free(ci, 1);
    }
    cs_close(&cs);
    return rc;
}

/* ---- the tracer ------------------------------------------------------ */

/* Per decoded pc; parallel to nothing in the result: the result gets a
 * trace_pc only when the pc is first executed (line lookups are lazy). */
typedef struct pcent {
    uint64_t pc;          /* key; 0 = empty slot */
    dec d;
    const tgt_reg *ind;   /* register of an indirect jmp/call, resolved */
    long rindex;          /* index into result->pcs, -1 until executed */
} pcent;

typedef struct tracer {
    tgt *t;
    kern *k;
    trace_options opt;
    trace_result *r;
    csh cs;
    cs_insn *ci;
    pcent *map;           /* open addressing by pc */
    size_t cap, n;
    const tgt_regmap *rm;
    const tgt_reg *rip, *rsp, *eflags, *cs_reg, *rcx;
    uint8_t *prev;        /* `g` of the previous stop */
    size_t glen;
    trace_change *chbuf;  /* nregs entries: one step's changes */
    uint64_t *over;
    size_t nover;
    uint64_t until;
    bool has_until;
    int depth;
    double t0, deadline, last_progress;
    eflags_bits fl;       /* from target.xml */
    /* fast mode */
    uint64_t bp;          /* the one block breakpoint inserted, 0 if none */
    uint64_t *blk;        /* pcs of the current block */
    size_t blkcap;
    /* Single steps run with interrupts held off (QEMU's NOIRQ|NOTIMER), a
     * continue does not: a timer tick inside a block would run its handler
     * and could set need_resched, and the path would differ from the
     * single-stepped one. So fast mode clears EFLAGS.IF in the guest while it
     * runs blocks and puts it back before any single step, at the end and on
     * every error path; pushf (the only plain instruction that reads IF) is
     * single-stepped, and the registers recorded show the real IF. */
    bool if_masked;
    uint8_t *cur;         /* fast mode: this stop's `g` with the real IF */
    explain *x;           /* opt.explain: the C-level narrative's collector */
} tracer;

static uint64_t hash_pc(uint64_t pc)
{
    return (pc * 0x9e3779b97f4a7c15ull) >> 17;
}

static pcent *map_find(tracer *tr, uint64_t pc)
{
    size_t j = hash_pc(pc) & (tr->cap - 1);
    while (tr->map[j].pc) {
        if (tr->map[j].pc == pc)
            return &tr->map[j];
        j = (j + 1) & (tr->cap - 1);
    }
    return NULL;
}

static int map_grow(tracer *tr)
{
    size_t nc = tr->cap ? tr->cap * 2 : 4096;
    pcent *nm = calloc(nc, sizeof *nm);
    if (!nm)
        return -1;
    for (size_t i = 0; i < tr->cap; i++)
        if (tr->map[i].pc) {
            size_t j = hash_pc(tr->map[i].pc) & (nc - 1);
            while (nm[j].pc)
                j = (j + 1) & (nc - 1);
            nm[j] = tr->map[i];
        }
    free(tr->map);
    tr->map = nm;
    tr->cap = nc;
    return 0;
}

static pcent *map_put(tracer *tr, uint64_t pc)
{
    if ((tr->n + 1) * 2 > tr->cap && map_grow(tr) < 0)
        return NULL;
    size_t j = hash_pc(pc) & (tr->cap - 1);
    while (tr->map[j].pc && tr->map[j].pc != pc)
        j = (j + 1) & (tr->cap - 1);
    if (!tr->map[j].pc) {
        tr->n++;
        tr->map[j].pc = pc;
        tr->map[j].rindex = -1;
    }
    return &tr->map[j];
}

static const tgt_reg *gpr_of(tracer *tr, unsigned csreg)
{
    const char *name = cs_reg_name(tr->cs, csreg);
    const tgt_reg *r = name ? tgt_regmap_find(tr->rm, name) : NULL;
    return r && r->size == 8 ? r : NULL;
}

/* Decode from pc on (kernel text does not change while we trace: every
 * instruction decoded here stays valid by its address). */
static pcent *decode_at(tracer *tr, uint64_t pc, fl_error *err)
{
    pcent *e = map_find(tr, pc);
    if (e)
        return e;
    uint8_t buf[DECODE_CHUNK];
    size_t n = sizeof buf;
    fl_error e1;
    if (tgt_mem_read(tr->t, pc, buf, n, &e1) < 0) {
        n = X86_MAX_INSN;  /* near the end of a mapping */
        if (tgt_mem_read(tr->t, pc, buf, n, err) < 0)
            return fl_error_prefix(err, "reading the code at 0x%" PRIx64, pc), NULL;
    }
    const uint8_t *code = buf;
    size_t left = n;
    uint64_t addr = pc;
    pcent *first = NULL;
    while (cs_disasm_iter(tr->cs, &code, &left, &addr, tr->ci)) {
        uint64_t at = tr->ci->address;
        if (first && at - pc + X86_MAX_INSN > n)
            break;  /* may be cut off by the end of the buffer */
        pcent *x = map_find(tr, at);
        if (!x) {
            x = map_put(tr, at);
            if (!x) {
                fl_fail(err, FL_EIO, "out of memory for the instruction cache");
                return NULL;
            }
            classify(tr->cs, tr->ci, &x->d);
            if (x->d.ind_reg)
                x->ind = gpr_of(tr, x->d.ind_reg);
        }
        if (!first)
            first = x;
    }
    if (!first) {
        /* capstone 4 does not know every instruction (rdpkru, wrpkru, ...):
         * such an instruction is stepped, and shown by its bytes. */
        first = map_put(tr, pc);
        if (!first) {
            fl_fail(err, FL_EIO, "out of memory for the instruction cache");
            return NULL;
        }
        memset(&first->d, 0, sizeof first->d);
        first->d.in.kind = TRACE_K_SPECIAL;
        int m = snprintf(first->d.in.text, sizeof first->d.in.text, "(unknown to capstone: ");
        for (size_t i = 0; i < 4 && i < n; i++)
            m += snprintf(first->d.in.text + m, sizeof first->d.in.text - (size_t)m, "%02x ", buf[i]);
        snprintf(first->d.in.text + m - 1, sizeof first->d.in.text - (size_t)m + 1, "...)");
    }
    /* map_put may have moved entries: look the first one up again. */
    return map_find(tr, pc);
}

/* The result's trace_pc of an executed pc: symbol, line, source (once). */
static int result_pc(tracer *tr, pcent *e, uint32_t *index, fl_error *err)
{
    if (e->rindex >= 0) {
        *index = (uint32_t)e->rindex;
        return 0;
    }
    trace_pc p = { .pc = e->pc, .text = e->d.in.text, .kind = e->d.in.kind, .len = e->d.in.len };
    const char *sym;
    uint64_t off;
    if (kern_sym_at(tr->k, e->pc, &sym, &off)) {
        p.sym = sym;
        p.sym_off = off;
    }
    kern_line kl;
    if (kern_line_at(tr->k, e->pc, &kl, NULL) == 0) {
        p.file = kern_short_path(tr->k, kl.file);
        p.line = kl.line;
        p.function = kl.function;
        p.source = kern_source_text(tr->k, kl.file, kl.line);
    }
    uint32_t idx;
    if (trace_result_add_pc(tr->r, &p, &idx) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording the trace");
    e->rindex = idx;
    *index = idx;
    return 0;
}

static uint64_t g_u64(const tgt_reg *r, const uint8_t *g)
{
    uint64_t v = 0;
    for (size_t i = r->size > 8 ? 8 : r->size; i-- > 0;)
        v = v << 8 | g[r->offset + i];
    return v;
}

static void g_put(const tgt_reg *r, uint8_t *g, uint64_t v)
{
    for (size_t i = 0; i < r->size && i < 8; i++, v >>= 8)
        g[r->offset + i] = (uint8_t)v;
}

static size_t diff_regs(tracer *tr, const uint8_t *a, const uint8_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < tr->rm->count; i++) {
        const tgt_reg *r = &tr->rm->regs[i];
        if (r == tr->rip || memcmp(a + r->offset, b + r->offset, r->size) == 0)
            continue;
        tr->chbuf[n++] = (trace_change){ .reg = (uint16_t)i, .before = g_u64(r, a), .after = g_u64(r, b) };
    }
    return n;
}

static bool is_over(const tracer *tr, uint64_t pc)
{
    for (size_t i = 0; i < tr->nover; i++)
        if (tr->over[i] == pc)
            return true;
    return false;
}

/* Progress goes to the caller's callback: the library never draws. */
static void progress(tracer *tr, uint64_t pc, bool force)
{
    if (!tr->opt.progress_fn)
        return;
    double now = fl_now_s();
    if (!force && now - tr->last_progress < 0.05)
        return;
    tr->last_progress = now;
    const char *fn = "?";
    uint64_t off;
    kern_sym_at(tr->k, pc, &fn, &off);
    tr->opt.progress_fn(tr->opt.progress_ctx, tr->r->nsteps, fn);
}

static int record(tracer *tr, pcent *e, size_t nch, unsigned flags, fl_error *err)
{
    uint32_t idx = 0;
    if (result_pc(tr, e, &idx, err) < 0)
        return -1;
    if (trace_result_add_step(tr->r, idx, tr->depth, tr->chbuf, nch, flags) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording the trace");
    return 0;
}

static int remaining_ms(const tracer *tr)
{
    double left = (tr->deadline - fl_now_s()) * 1000;
    return left < 1 ? 1 : left > 1e9 ? 1000000000 : (int)left;
}

/* Run a --over callee: the guest sits at its first instruction; a hardware
 * breakpoint at the return address, and the stop counts only when rsp is
 * back to the caller's (recursion or an interrupt may pass the same pc). */
static int run_over(tracer *tr, const uint8_t **g, fl_error *err)
{
    uint64_t sp = g_u64(tr->rsp, *g), ret;
    if (tgt_read_u64(tr->t, sp, &ret, err) < 0)
        return fl_error_prefix(err, "reading the return address at rsp 0x%" PRIx64, sp);
    if (tgt_bp_insert(tr->t, TGT_BP_HW, ret, 1, err) < 0)
        return fl_error_prefix(err, "--over: breakpoint at the return address 0x%" PRIx64, ret);
    int rc = -1;
    size_t len;
    for (int tries = 0; tries < 1000; tries++) {
        tgt_stop st;
        if (tgt_continue(tr->t, &st, remaining_ms(tr), err) < 0 || tgt_regs_raw(tr->t, g, &len, err) < 0)
            break;
        tr->r->stops++;
        uint64_t pc = g_u64(tr->rip, *g), nsp = g_u64(tr->rsp, *g);
        if (pc == ret && nsp == sp + 8) {
            rc = 0;
            break;
        }
        if (pc != ret) {
            fl_fail(err, FL_EPROTO, "--over: the guest stopped at 0x%" PRIx64 " instead of the return address 0x%" PRIx64,
                    pc, ret);
            break;
        }
    }
    fl_error e2;
    if (tgt_bp_remove(tr->t, TGT_BP_HW, ret, 1, &e2) < 0 && rc == 0) {
        if (err)
            *err = e2;
        rc = -1;
    }
    if (rc == 0)
        tr->r->overs++;
    return rc;
}

/* True when the trace must end before executing pc (with r->stop set). */
static bool stop_before(tracer *tr, uint64_t pc)
{
    if (tr->has_until && pc == tr->until) {
        tr->r->stop = TRACE_STOP_UNTIL;
        return true;
    }
    if (tr->r->nsteps >= tr->opt.max_steps) {
        tr->r->stop = TRACE_STOP_MAX_STEPS;
        return true;
    }
    if (fl_now_s() > tr->deadline) {
        tr->r->stop = TRACE_STOP_TIMEOUT;
        return true;
    }
    return false;
}

static const tgt_reg *eflags_reg(const tracer *tr)
{
    return tr->eflags;
}

/* One named one-bit field of eflags' <flags> type, as a mask. */
static int eflags_bit(const tgt_field *f, size_t n, const char *name, uint64_t *mask, fl_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0 && f[i].start == f[i].end && f[i].start < 64) {
            *mask = UINT64_C(1) << f[i].start;
            return 0;
        }
    return fl_fail(err, FL_ENOTFOUND, "the target description's eflags type has no one-bit field %s; "
                   "the tracer needs it to follow conditional jumps and hold interrupts off", name);
}

static int eflags_from_tdesc(const tgt_regmap *rm, eflags_bits *out, fl_error *err)
{
    const tgt_field *f;
    size_t n;
    if (tgt_regmap_fields(rm, "eflags", &f, &n, err) < 0)
        return -1;
    struct { const char *name; uint64_t *mask; } want[] = {
        { "CF", &out->cf }, { "PF", &out->pf }, { "ZF", &out->zf }, { "SF", &out->sf },
        { "OF", &out->of }, { "IF", &out->if_ }, { "AC", &out->ac },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (eflags_bit(f, n, want[i].name, want[i].mask, err) < 0)
            return -1;
    return 0;
}

/* Put the guest's real IF back (see if_masked). */
static int unmask_if(tracer *tr, fl_error *err)
{
    if (!tr->if_masked)
        return 0;
    tr->if_masked = false;
    if (tgt_reg_write(tr->t, eflags_reg(tr)->name, g_u64(tr->eflags, tr->cur) | tr->fl.if_, err) < 0)
        return fl_error_prefix(err, "restoring EFLAGS.IF");
    return 0;
}

static int mask_if(tracer *tr, const uint8_t *g, fl_error *err)
{
    uint64_t fl = g_u64(tr->eflags, g);
    if (tr->if_masked || !(fl & tr->fl.if_))
        return 0;
    if (tgt_reg_write(tr->t, eflags_reg(tr)->name, fl & ~tr->fl.if_, err) < 0)
        return fl_error_prefix(err, "holding interrupts off for a block");
    tr->if_masked = true;
    return 0;
}

/* QEMU at times reports a single step that executed nothing: the same pc
 * and not one register changed (seen on a `ret`, whose second report then
 * counted as a second return). No instruction of the path does that (a rep
 * string instruction that stays changes rcx), so such a step is stepped
 * again, a few times at most. */
#define SPURIOUS_STEP_RETRIES 4

static int step_once(tracer *tr, pcent *e, const uint8_t **g, fl_error *err)
{
    tgt_stop st;
    size_t len;
    for (int tries = 0;; tries++) {
        if (tgt_step(tr->t, &st, tr->opt.step_timeout_ms, err) < 0 || tgt_regs_raw(tr->t, g, &len, err) < 0)
            return fl_error_prefix(err, "single-stepping 0x%" PRIx64, e->pc);
        tr->r->stops++;
        if (tries >= SPURIOUS_STEP_RETRIES || g_u64(tr->rip, *g) != e->pc || memcmp(tr->prev, *g, tr->glen) != 0)
            return 0;
        tr->r->empty_steps++;
    }
}

/* One instruction: exactly one vCont;s and one `g` (plus a --over run). */
static int single(tracer *tr, pcent *e, const uint8_t **g, fl_error *err)
{
    if (unmask_if(tr, err) < 0)
        return -1;
    memcpy(tr->prev, *g, tr->glen);
    if (step_once(tr, e, g, err) < 0)
        return -1;
    enum trace_kind k = e->d.in.kind;
    unsigned flags = 0;
    int after = trace_depth_after(k, tr->depth);
    const char *callee = NULL;
    if (tr->nover && is_over(tr, g_u64(tr->rip, *g))) {
        uint64_t pc = e->pc, off;
        if (!kern_sym_at(tr->k, g_u64(tr->rip, *g), &callee, &off))
            callee = "?";
        if (run_over(tr, g, err) < 0)
            return fl_error_prefix(err, "running through the callee of 0x%" PRIx64, pc);
        flags = TRACE_F_OVER;
        after = trace_depth_after(TRACE_K_RET, after);
    }
    size_t nch = diff_regs(tr, tr->prev, *g);
    if (record(tr, e, nch, flags, err) < 0)
        return -1;
    if (callee && trace_result_add_over(tr->r, callee) < 0)
        return fl_fail(err, FL_EIO, "out of memory recording the trace");
    tr->depth = after;
    if ((k == TRACE_K_IRET || k == TRACE_K_SYSRET) && (g_u64(tr->cs_reg, *g) & 3) == 3)
        tr->r->stop = TRACE_STOP_USER;
    return 0;
}

static bool jcc_taken(const eflags_bits *m, unsigned id, uint64_t fl, uint64_t rcx)
{
    bool cf = fl & m->cf, pf = fl & m->pf, zf = fl & m->zf, sf = fl & m->sf, of = fl & m->of;
    switch (id) {
    case X86_INS_JO: return of;
    case X86_INS_JNO: return !of;
    case X86_INS_JB: return cf;
    case X86_INS_JAE: return !cf;
    case X86_INS_JE: return zf;
    case X86_INS_JNE: return !zf;
    case X86_INS_JBE: return cf || zf;
    case X86_INS_JA: return !cf && !zf;
    case X86_INS_JS: return sf;
    case X86_INS_JNS: return !sf;
    case X86_INS_JP: return pf;
    case X86_INS_JNP: return !pf;
    case X86_INS_JL: return sf != of;
    case X86_INS_JGE: return sf == of;
    case X86_INS_JLE: return zf || sf != of;
    case X86_INS_JG: return !zf && sf == of;
    case X86_INS_JRCXZ: return rcx == 0;
    case X86_INS_JECXZ: return (uint32_t)rcx == 0;
    case X86_INS_JCXZ: return (uint16_t)rcx == 0;
    default: return false;
    }
}

static bool jcc_known(unsigned id)
{
    return (id >= X86_INS_JAE && id <= X86_INS_JS) || id == X86_INS_JRCXZ || id == X86_INS_JECXZ ||
           id == X86_INS_JCXZ;
}

/* Successor of a control-flow instruction from the registers at its stop;
 * false if fast mode must step it. */
static bool successor(tracer *tr, const pcent *e, const uint8_t *g, uint64_t *next, fl_error *err)
{
    const dec *d = &e->d;
    switch (d->in.kind) {
    case TRACE_K_JMP:
    case TRACE_K_CALL:
        *next = d->in.target;
        return true;
    case TRACE_K_JCC:
        if (!jcc_known(d->id))
            return false;
        *next = jcc_taken(&tr->fl, d->id, g_u64(tr->eflags, g), tr->rcx ? g_u64(tr->rcx, g) : 1) ? d->in.target
                                                                                       : e->pc + d->in.len;
        return true;
    case TRACE_K_JMP_IND:
    case TRACE_K_CALL_IND:
        if (!e->ind)
            return false;
        *next = g_u64(e->ind, g);
        return true;
    case TRACE_K_RET:
        return tgt_read_u64(tr->t, g_u64(tr->rsp, g), next, err) == 0;
    default:
        return false;
    }
}

static int drop_bp(tracer *tr, fl_error *err)
{
    if (!tr->bp)
        return 0;
    uint64_t a = tr->bp;
    tr->bp = 0;
    return tgt_bp_remove(tr->t, TGT_BP_HW, a, 1, err);
}

/* Walk a block from start: straight-line code plus direct jmps and calls,
 * up to the next instruction whose outcome needs the registers (*end).
 * tr->blk[0..*nb) gets its pcs, *sp the rsp expected at *end. */
static int walk_block(tracer *tr, uint64_t start, uint64_t *sp, size_t *nb, uint64_t *end, fl_error *err)
{
    uint64_t q = start;
    for (;;) {
        if ((tr->has_until && q == tr->until) || *nb >= MAX_BLOCK)
            break;
        pcent *x = decode_at(tr, q, err);
        if (!x)
            return -1;
        enum trace_kind xk = x->d.in.kind;
        bool follow = xk == TRACE_K_PLAIN || (xk == TRACE_K_CALL && !(tr->nover && is_over(tr, x->d.in.target))) ||
                      xk == TRACE_K_JMP;
        if (follow && xk != TRACE_K_PLAIN)
            for (size_t i = 0; i < *nb; i++)
                if (tr->blk[i] == x->d.in.target)
                    follow = false;  /* a loop: stop at its back edge */
        if (!follow)
            break;
        if (grow((void **)&tr->blk, &tr->blkcap, *nb + 1, sizeof *tr->blk) < 0)
            return fl_fail(err, FL_EIO, "out of memory for a block");
        tr->blk[(*nb)++] = q;
        *sp += (uint64_t)(int64_t)x->d.in.rsp_delta;
        q = xk == TRACE_K_PLAIN ? q + x->d.in.len : x->d.in.target;
    }
    *end = q;
    return 0;
}

/* Run to the block's end with interrupts held off; a stop counts only with
 * the expected rsp (an interrupt handler may pass the same pc). */
static int run_block(tracer *tr, uint64_t epc, uint64_t end, uint64_t sp, const uint8_t **g, fl_error *err)
{
    if (mask_if(tr, *g, err) < 0)
        return -1;
    if (tgt_bp_insert(tr->t, TGT_BP_HW, end, 1, err) < 0)
        return fl_error_prefix(err, "fast mode: breakpoint at 0x%" PRIx64, end);
    tr->bp = end;
    size_t len;
    for (int tries = 0;; tries++) {
        tgt_stop st;
        if (tgt_continue(tr->t, &st, tr->opt.step_timeout_ms, err) < 0 || tgt_regs_raw(tr->t, g, &len, err) < 0)
            return fl_error_prefix(err, "fast mode: running from 0x%" PRIx64 " to 0x%" PRIx64
                                   " (use single-step mode if this repeats)", epc, end);
        tr->r->stops++;
        /* Our own copy, with the IF the guest would have without us. */
        memcpy(tr->cur, *g, tr->glen);
        if (tr->if_masked)
            g_put(tr->eflags, tr->cur, g_u64(tr->eflags, tr->cur) | tr->fl.if_);
        *g = tr->cur;
        uint64_t pc = g_u64(tr->rip, *g), nsp = g_u64(tr->rsp, *g);
        if (pc == end && nsp == sp)
            return 0;
        if (pc != end || tries >= MAX_RESYNC)
            return fl_fail(err, FL_EPROTO, "fast mode lost the path: expected 0x%" PRIx64 " with rsp 0x%" PRIx64
                           ", stopped at 0x%" PRIx64 " with rsp 0x%" PRIx64 " (use single-step mode)",
                           end, sp, pc, nsp);
        tr->r->resyncs++;  /* an interrupt handler ran through our breakpoint */
    }
}

/* One fast-mode move from the current stop (pc, registers g). */
static int fast(tracer *tr, pcent *e, const uint8_t **g, fl_error *err)
{
    /* The breakpoint we sit on must go before any resume (QEMU re-reports it). */
    if (drop_bp(tr, err) < 0)
        return -1;
    const uint8_t *cur = *g;
    enum trace_kind k = e->d.in.kind;
    const uint64_t epc = e->pc;
    /* User memory is only touched with EFLAGS.AC set (SMAP: stac/clac): a
     * fault there goes to an exception fixup, so step that code. */
    if (g_u64(tr->eflags, cur) & tr->fl.ac)
        return single(tr, e, g, err);
    uint64_t sp = g_u64(tr->rsp, cur);
    uint64_t start;
    bool first = k != TRACE_K_PLAIN;
    if (first) {
        fl_error e2;
        if (!successor(tr, e, cur, &start, &e2))
            return single(tr, e, g, err);
        if (tr->nover && is_over(tr, start))
            return single(tr, e, g, err);
        sp += (uint64_t)(int64_t)e->d.in.rsp_delta;
    } else {
        start = e->pc;
    }
    size_t nb = 0;
    uint64_t end = 0;
    if (walk_block(tr, start, &sp, &nb, &end, err) < 0)
        return -1;
    /* decode_at may have grown (moved) the map. */
    e = map_find(tr, epc);
    size_t total = (first ? 1 : 0) + nb;
    if (end == epc || (!first && nb == 0) || tr->r->nsteps + total > tr->opt.max_steps)
        return single(tr, e, g, err);
    memcpy(tr->prev, cur, tr->glen);
    if (run_block(tr, epc, end, sp, g, err) < 0)
        return -1;
    size_t nch = diff_regs(tr, tr->prev, *g);
    if (first) {
        if (record(tr, e, nb ? 0 : nch, nb ? 0 : TRACE_F_NET, err) < 0)
            return -1;
        tr->depth = trace_depth_after(k, tr->depth);
    }
    for (size_t i = 0; i < nb; i++) {
        pcent *x = map_find(tr, tr->blk[i]);
        bool last = i + 1 == nb;
        if (record(tr, x, last ? nch : 0, TRACE_F_INFER | (last ? TRACE_F_NET : 0), err) < 0)
            return -1;
        tr->depth = trace_depth_after(x->d.in.kind, tr->depth);
    }
    return 0;
}

static int parse_over(tracer *tr, const char *list, fl_error *err)
{
    if (!list || !*list)
        return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    size_t n = 1;
    for (const char *c = buf; *c; c++)
        n += *c == ',';
    tr->over = calloc(n, sizeof *tr->over);
    if (!tr->over)
        return fl_fail(err, FL_EIO, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        uint64_t a;
        if (kern_sym_addr(tr->k, tok, &a, err) < 0)
            return fl_error_prefix(err, "--over %s", tok);
        tr->over[tr->nover++] = a;
    }
    return 0;
}

static int tracer_open(tracer *tr, tgt *t, kern *k, const trace_options *opt, fl_error *err)
{
    tr->t = t;
    tr->k = k;
    tr->opt = *opt;
    if (!tr->opt.max_steps)
        tr->opt.max_steps = DEFAULT_MAX_STEPS;
    if (tr->opt.timeout_ms <= 0)
        tr->opt.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (tr->opt.step_timeout_ms <= 0)
        tr->opt.step_timeout_ms = DEFAULT_STEP_TIMEOUT_MS;
    tr->rm = tgt_regs(t);
    tr->rip = tgt_regmap_find(tr->rm, "rip");
    tr->rsp = tgt_regmap_find(tr->rm, "rsp");
    tr->eflags = tgt_regmap_find(tr->rm, "eflags");
    tr->cs_reg = tgt_regmap_find(tr->rm, "cs");
    tr->rcx = tgt_regmap_find(tr->rm, "rcx");
    if (!tr->rip || !tr->rsp || !tr->eflags || !tr->cs_reg)
        return fl_fail(err, FL_ENOTFOUND, "the target description lacks rip, rsp, eflags or cs: not x86-64?");
    if (eflags_from_tdesc(tr->rm, &tr->fl, err) < 0)
        return -1;
    const char **names = calloc(tr->rm->count ? tr->rm->count : 1, sizeof *names);
    if (!names)
        return fl_fail(err, FL_EIO, "out of memory");
    for (size_t i = 0; i < tr->rm->count; i++)
        names[i] = tr->rm->regs[i].name;
    tr->r = trace_result_new(names, tr->rm->count);
    free(names);
    tr->glen = tr->rm->g_size;
    tr->prev = malloc(tr->glen ? tr->glen : 1);
    tr->cur = malloc(tr->glen ? tr->glen : 1);
    tr->chbuf = calloc(tr->rm->count ? tr->rm->count : 1, sizeof *tr->chbuf);
    if (!tr->r || !tr->prev || !tr->cur || !tr->chbuf || map_grow(tr) < 0)
        return fl_fail(err, FL_EIO, "out of memory");
    tr->r->mode = tr->opt.mode;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &tr->cs) != CS_ERR_OK)
        return fl_fail(err, FL_EIO, "capstone could not open an x86-64 disassembler");
    cs_option(tr->cs, CS_OPT_DETAIL, CS_OPT_ON);
    tr->ci = cs_malloc(tr->cs);
    if (!tr->ci)
        return fl_fail(err, FL_EIO, "out of memory");
    if (tr->opt.explain && explain_open(&tr->x, k, t, err) < 0)
        return -1;
    if (tr->opt.until && *tr->opt.until) {
        if (kern_sym_addr(k, tr->opt.until, &tr->until, err) < 0)
            return fl_error_prefix(err, "--until");
        tr->has_until = true;
    }
    return parse_over(tr, tr->opt.over, err);
}

static void tracer_close(tracer *tr)
{
    if (tr->ci)
        cs_free(tr->ci, 1);
    if (tr->cs)
        cs_close(&tr->cs);
    free(tr->map);
    free(tr->prev);
    free(tr->cur);
    free(tr->chbuf);
    free(tr->over);
    free(tr->blk);
    explain_close(tr->x);
}

int trace_run(tgt *t, kern *k, const trace_options *opt, trace_result **out, fl_error *err)
{
    tracer tr = { 0 };
    fl_error e = { 0 };
    int rc = -1;
    *out = NULL;
    if (tracer_open(&tr, t, k, opt, &e) < 0)
        goto done;
    const uint8_t *g;
    size_t len;
    if (tgt_regs_raw(t, &g, &len, &e) < 0)
        goto done;
    tr.r->start_pc = g_u64(tr.rip, g);
    tr.t0 = fl_now_s();
    tr.deadline = tr.t0 + tr.opt.timeout_ms / 1000.0;
    for (;;) {
        uint64_t pc = g_u64(tr.rip, g);
        if (tr.r->stop != TRACE_STOP_NONE || stop_before(&tr, pc))
            break;
        if (tr.opt.cancel && tr.opt.cancel(tr.opt.cancel_ctx)) {
            tr.r->stop = TRACE_STOP_CANCELLED;
            fl_fail(&e, FL_EINTR, "the trace was interrupted after %zu steps", tr.r->nsteps);
            goto done;
        }
        if (tr.x && explain_stop(tr.x, tr.r, pc, tr.depth, g, &e) < 0)
            goto done;
        pcent *pe = decode_at(&tr, pc, &e);
        if (!pe)
            goto done;
        if ((tr.opt.mode == TRACE_FAST ? fast(&tr, pe, &g, &e) : single(&tr, pe, &g, &e)) < 0)
            goto done;
        progress(&tr, g_u64(tr.rip, g), false);
    }
    rc = 0;
done:
    if (tr.if_masked) {
        fl_error e2;
        if (unmask_if(&tr, &e2) < 0 && rc == 0) {
            e = e2;
            rc = -1;
        }
    }
    if (tr.bp) {
        fl_error e2;
        if (drop_bp(&tr, &e2) < 0 && rc == 0) {
            e = e2;
            rc = -1;
        }
    }
    if (tr.r) {
        const uint8_t *gf;
        if (tgt_regs_raw(t, &gf, &len, NULL) == 0 && tr.rip) {
            tr.r->final_pc = g_u64(tr.rip, gf);
            tr.r->final_cs = g_u64(tr.cs_reg, gf);
            fl_error e2;
            if (tr.x && explain_finish(tr.x, tr.r, tr.r->final_pc, tr.depth, gf, &e2) < 0 && rc == 0) {
                e = e2;
                rc = -1;
            }
        }
        tr.r->seconds = fl_now_s() - tr.t0;
        if (rc < 0) {
            if (tr.r->stop == TRACE_STOP_NONE || tr.r->stop == TRACE_STOP_USER)
                tr.r->stop = e.code == FL_ETIMEOUT ? TRACE_STOP_TIMEOUT : TRACE_STOP_ERROR;
            snprintf(tr.r->error, sizeof tr.r->error, "%s", e.msg);
        } else if (tr.r->stop == TRACE_STOP_TIMEOUT) {
            snprintf(tr.r->error, sizeof tr.r->error, "the trace ran out of time after %d ms", tr.opt.timeout_ms);
        }
    }
    *out = tr.r;
    tr.r = NULL;
    tracer_close(&tr);
    if (rc < 0 && err)
        *err = e;
    return rc;
}
