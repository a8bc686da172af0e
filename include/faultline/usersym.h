/* usersym: where in a user program an address is. Reads the function
 * symbols (STT_FUNC) of the program's ELF on the host with libelf, once,
 * and turns an address into "symbol+0xoff". For a static, non-PIE program
 * (what `run -- PROGRAM` runs) the file's addresses are the guest's. */
#ifndef FAULTLINE_USERSYM_H
#define FAULTLINE_USERSYM_H

#include <stddef.h>
#include <stdint.h>

#include "faultline/error.h"

typedef struct usersym usersym;

/* Open path's symbol table (.symtab, else .dynsym). A file without
 * function symbols (stripped) opens, and finds nothing. */
int usersym_open(usersym **out, const char *path, fl_error *err);
void usersym_close(usersym *u);
/* How many function symbols were read. */
size_t usersym_count(const usersym *u);
/* The function holding addr: its name and addr's offset in it. 0 found,
 * -1 (FL_ENOTFOUND) when no function holds it (a symbol of size 0 holds
 * what lies between it and the next, the last one nothing). */
int usersym_lookup(const usersym *u, uint64_t addr, const char **name, uint64_t *offset, fl_error *err);
/* "name+0xoff" into buf, or "" when not found (u may be NULL). */
void usersym_format(const usersym *u, uint64_t addr, char *buf, size_t cap);

#endif
