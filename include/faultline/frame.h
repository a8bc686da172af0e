/* frame: the kernel layer's view of registers and memory (kern_frame)
 * served by a live target. The kernel's DWARF names registers by their
 * x86-64 psABI numbers; the target by its target.xml names: this is the one
 * place that maps one to the other. */
#ifndef FAULTLINE_FRAME_H
#define FAULTLINE_FRAME_H

#include "faultline/kernel.h"
#include "faultline/target.h"

/* DWARF registers 0-16 (rax ... r15, rip) are the general ones. */
#define FRAME_DWARF_REGS 17

/* target.xml name of a psABI DWARF register number, or NULL. */
const char *frame_dwarf_reg_name(int regno);

/* A frame reading registers and memory of t at its current stop. */
kern_frame frame_over_target(tgt *t);

#endif
