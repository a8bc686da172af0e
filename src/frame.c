/* frame: see frame.h. */
#include "faultline/frame.h"

/* DWARF register numbers of the x86-64 psABI (System V AMD64 ABI, fig. 3.36)
 * to the names the target description uses. */
static const char *const dwarf_regs[FRAME_DWARF_REGS] = {
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
};

const char *frame_dwarf_reg_name(int regno)
{
    return regno >= 0 && regno < FRAME_DWARF_REGS ? dwarf_regs[regno] : NULL;
}

static int target_reg(void *ctx, int regno, uint64_t *value, fl_error *err)
{
    const char *name = frame_dwarf_reg_name(regno);
    if (!name)
        return fl_fail(err, FL_ENOTFOUND, "DWARF register %d is not a general register of x86-64", regno);
    return tgt_reg_read((tgt *)ctx, name, value, err);
}

static int target_mem(void *ctx, uint64_t addr, void *buf, size_t len, fl_error *err)
{
    return tgt_mem_read((tgt *)ctx, addr, buf, len, err);
}

kern_frame frame_over_target(tgt *t)
{
    return (kern_frame){ .reg = target_reg, .mem = target_mem, .ctx = t };
}
