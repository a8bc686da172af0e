/* station: the stations of the page-fault path as rows of a table. A row
 * names the function to stop in, its title, the values to read there and how
 * to decode each. capture compiles the rows once when a session opens and
 * loops over them at each stop; report takes titles from them; the command
 * line finds stations by name through them. Adding a station is adding a row
 * (here for the defaults, or cap_session_add_station at run time).
 *
 * Values are named as the kernel or the target names them: parameters and
 * struct members by their DWARF names, CPU registers by their target.xml
 * names. Pure data and lookups: no I/O. */
#ifndef FAULTLINE_STATION_H
#define FAULTLINE_STATION_H

#include <stdbool.h>
#include <stddef.h>

/* How a value's raw number becomes names. */
enum station_decoder {
    STATION_DEC_NONE,
    STATION_DEC_FAULT_FLAG, /* bits of the kernel's enum fault_flag */
    STATION_DEC_PF_ERROR,   /* bits of the kernel's enum x86_pf_error_code */
    STATION_DEC_EFLAGS,     /* the flag fields target.xml gives eflags */
    STATION_DEC_SELECTOR,   /* a segment selector: index, table, RPL */
    STATION_DEC_COUNT
};

/* Where a decoder's bit names come from. */
enum station_bits_source { STATION_BITS_NONE, STATION_BITS_ENUM, STATION_BITS_TDESC };
typedef struct station_decoder_def {
    enum station_bits_source source;
    const char *from;   /* the enum's name ("fault_flag") or the register ("eflags") */
    const char *title;  /* how the worksheet cites it: "enum fault_flag" */
} station_decoder_def;
const station_decoder_def *station_decoder_info(enum station_decoder d);

/* How a value is read at a stop. */
enum station_read {
    STATION_REG,     /* a CPU register, `from` = its target.xml name */
    STATION_PARAM,   /* a parameter or local, `from` = its DWARF name */
    STATION_MEMBER,  /* a struct member, `from` = "vm_fault.address", at the
                        address held by the value named `base` */
    STATION_STRUCT,  /* every member of struct `from` ("struct pt_regs") at the
                        address held by `base`, named "BASE->MEMBER" */
    STATION_FRAME,   /* 8-byte slot `slot` of the frame the CPU pushed, at the
                        stack pointer register `from` */
    STATION_INSN_EA, /* the memory operand's effective address of the
                        instruction at the value `from` (the interrupted rip),
                        with `base` the interrupted rsp */
};

/* Which value identifies the fault address for the --addr filter. */
enum station_fault_addr { STATION_ADDR_NO, STATION_ADDR_EXACT, STATION_ADDR_PAGE };

/* STATION_STRUCT: a decoder for one member by name. */
typedef struct station_member_decoder {
    const char *member;
    enum station_decoder decoder;
} station_member_decoder;

typedef struct station_value {
    const char *name;        /* as reported: "cr2", "regs", "vmf->flags" */
    enum station_read read;
    const char *from;
    const char *base;        /* STATION_MEMBER, STATION_STRUCT, STATION_INSN_EA */
    int slot;                /* STATION_PARAM: psABI argument index used at the
                                function's own entry when DWARF gives no
                                location (-1: none); STATION_FRAME: the slot */
    unsigned width;          /* bytes of the value when narrower than what
                                holds it (an unsigned int in a register); 0: 8 */
    enum station_decoder decoder;
    const station_member_decoder *members; /* STATION_STRUCT; ends with NULL member */
    enum station_fault_addr fault_addr;
    bool proof;              /* the worksheet proves its bits one by one */
} station_value;

#define STATION_MAX_VALUES 16
typedef struct station_def {
    const char *function;    /* a symbol or an inlined function of vmlinux */
    const char *title;       /* the worksheet's heading */
    bool kprobe_applies;     /* report whether kprobes could reach it */
    /* The value holding the interrupted CS, at a station before swapgs: when
     * it is user mode the kernel's per-cpu base (for `current`) is still in
     * k_gs_base. NULL: after swapgs, gs_base holds it. */
    const char *interrupted_cs;
    station_value values[STATION_MAX_VALUES]; /* up to the first without a name */
} station_def;

/* The default stations, in the order the fault path reaches them. */
size_t station_default_count(void);
const station_def *station_default(size_t i);
/* Index of the default station for function, or -1. */
int station_default_by_name(const char *function);
/* Values of a row (those before the first unnamed one). */
size_t station_value_count(const station_def *row);

#endif
