/* station: the default stations of the x86-64 page-fault path. See station.h. */
#include "faultline/station.h"

#include <string.h>

static const station_decoder_def decoders[STATION_DEC_COUNT] = {
    [STATION_DEC_NONE] = { STATION_BITS_NONE, NULL, NULL },
    [STATION_DEC_FAULT_FLAG] = { STATION_BITS_ENUM, "fault_flag", "enum fault_flag" },
    [STATION_DEC_PF_ERROR] = { STATION_BITS_ENUM, "x86_pf_error_code", "enum x86_pf_error_code" },
    [STATION_DEC_EFLAGS] = { STATION_BITS_TDESC, "eflags", "target.xml eflags" },
    [STATION_DEC_SELECTOR] = { STATION_BITS_NONE, NULL, "Intel SDM vol. 3, 3.4.2" },
};

const station_decoder_def *station_decoder_info(enum station_decoder d)
{
    return (unsigned)d < STATION_DEC_COUNT ? &decoders[d] : &decoders[STATION_DEC_NONE];
}

/* struct pt_regs members that hold a selector or the flags. */
static const station_member_decoder pt_regs_decoders[] = {
    { "cs", STATION_DEC_SELECTOR },
    { "ss", STATION_DEC_SELECTOR },
    { "flags", STATION_DEC_EFLAGS },
    { NULL, STATION_DEC_NONE },
};

/* The hardware frame the CPU pushed on entry: error code, RIP, CS, RFLAGS,
 * RSP, SS (Intel SDM vol. 3, 6.14.2 "64-Bit Mode Stack Frame"). */
#define FRAME(n, s, d) { .name = n, .read = STATION_FRAME, .from = "rsp", .slot = s, .decoder = d }
#define PARAM(n, s) { .name = n, .read = STATION_PARAM, .from = n, .slot = s }

static const station_def defaults[] = {
    {
        .function = "asm_exc_page_fault",
        .title = "Hardware entry: CR2 and the CPU's frame",
        .kprobe_applies = true,
        .interrupted_cs = "frame.cs",
        .values = {
            { .name = "cr2", .read = STATION_REG, .from = "cr2", .fault_addr = STATION_ADDR_EXACT },
            { .name = "cr3", .read = STATION_REG, .from = "cr3" },
            { .name = "cs", .read = STATION_REG, .from = "cs", .decoder = STATION_DEC_SELECTOR },
            { .name = "eflags", .read = STATION_REG, .from = "eflags", .decoder = STATION_DEC_EFLAGS },
            { .name = "rsp", .read = STATION_REG, .from = "rsp" },
            { .name = "frame.error_code", .read = STATION_FRAME, .from = "rsp", .slot = 0,
              .decoder = STATION_DEC_PF_ERROR, .proof = true },
            FRAME("frame.rip", 1, STATION_DEC_NONE),
            FRAME("frame.cs", 2, STATION_DEC_SELECTOR),
            FRAME("frame.rflags", 3, STATION_DEC_EFLAGS),
            FRAME("frame.rsp", 4, STATION_DEC_NONE),
            FRAME("frame.ss", 5, STATION_DEC_SELECTOR),
            { .name = "insn.effective_address", .read = STATION_INSN_EA, .from = "frame.rip",
              .base = "frame.rsp" },
        },
    },
    {
        .function = "exc_page_fault",
        .title = "C entry: struct pt_regs",
        .kprobe_applies = true,
        .values = {
            PARAM("regs", 0),
            { .name = "regs->*", .read = STATION_STRUCT, .from = "struct pt_regs", .base = "regs",
              .members = pt_regs_decoders },
            { .name = "error_code", .read = STATION_PARAM, .from = "error_code", .slot = 1,
              .decoder = STATION_DEC_PF_ERROR },
            { .name = "cr2", .read = STATION_REG, .from = "cr2", .fault_addr = STATION_ADDR_EXACT },
        },
    },
    {
        .function = "do_user_addr_fault",
        .title = "The x86 fault handler: hardware bits to fault flags",
        .kprobe_applies = true,
        .values = {
            PARAM("regs", 0),
            { .name = "error_code", .read = STATION_PARAM, .from = "error_code", .slot = 1,
              .decoder = STATION_DEC_PF_ERROR },
            { .name = "address", .read = STATION_PARAM, .from = "address", .slot = 2,
              .fault_addr = STATION_ADDR_EXACT },
        },
    },
    {
        .function = "lock_vma_under_rcu",
        .title = "Probe 0: the per-VMA lock",
        .kprobe_applies = true,
        .values = {
            PARAM("mm", 0),
            { .name = "address", .read = STATION_PARAM, .from = "address", .slot = 1,
              .fault_addr = STATION_ADDR_EXACT },
        },
    },
    {
        .function = "handle_mm_fault",
        .title = "Probe 1: the dispatcher",
        .kprobe_applies = true,
        .values = {
            PARAM("vma", 0),
            { .name = "address", .read = STATION_PARAM, .from = "address", .slot = 1,
              .fault_addr = STATION_ADDR_EXACT },
            /* unsigned int: the upper half of its register is not the value */
            { .name = "flags", .read = STATION_PARAM, .from = "flags", .slot = 2, .width = 4,
              .decoder = STATION_DEC_FAULT_FLAG, .proof = true },
            PARAM("regs", 3),
        },
    },
    {
        .function = "handle_pte_fault",
        .title = "Probe 3: the PTE level (struct vm_fault)",
        .kprobe_applies = true,
        .values = {
            PARAM("vmf", -1),
            /* handle_pte_fault sees only the page */
            { .name = "vmf->address", .read = STATION_MEMBER, .from = "vm_fault.address", .base = "vmf",
              .fault_addr = STATION_ADDR_PAGE },
            { .name = "vmf->flags", .read = STATION_MEMBER, .from = "vm_fault.flags", .base = "vmf",
              .decoder = STATION_DEC_FAULT_FLAG },
            { .name = "vmf->pgoff", .read = STATION_MEMBER, .from = "vm_fault.pgoff", .base = "vmf" },
            { .name = "vmf->vma", .read = STATION_MEMBER, .from = "vm_fault.vma", .base = "vmf" },
        },
    },
};

size_t station_default_count(void)
{
    return sizeof defaults / sizeof defaults[0];
}

const station_def *station_default(size_t i)
{
    return i < station_default_count() ? &defaults[i] : NULL;
}

int station_default_by_name(const char *function)
{
    for (size_t i = 0; i < station_default_count(); i++)
        if (strcmp(defaults[i].function, function) == 0)
            return (int)i;
    return -1;
}

size_t station_value_count(const station_def *row)
{
    size_t n = 0;
    while (n < STATION_MAX_VALUES && row->values[n].name)
        n++;
    return n;
}
