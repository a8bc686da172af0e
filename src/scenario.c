/* scenario: the bundled triggers' promises. See scenario.h. */
#include "faultline/scenario.h"

#include <string.h>

#define ANON_WRITE "anonymous first write: zero-filled page"
/* A fault refused before handle_mm_fault never reaches it nor handle_pte_fault. */
#define REFUSED "handle_mm_fault", "handle_pte_fault"

static const scenario_def scenarios[] = {
    { "write", "the first write to a fresh anonymous page, from user mode", true, true, { NULL },
      "do_anonymous_page", ANON_WRITE },
    { "read", "the first read of a fresh anonymous page, from user mode", false, true, { NULL },
      "do_anonymous_page", "anonymous first read: the shared zero page" },
    /* the kernel's own access to a user page skips the per-VMA lock: no
     * FAULT_FLAG_USER, so do_user_addr_fault takes the mmap lock instead */
    { "kernel-write", "read(2) into an untouched page: the kernel writes to a user page", true, false,
      { "lock_vma_under_rcu", NULL }, "do_anonymous_page", ANON_WRITE },
    { "write-forked", "a forked child writes the same address first; then the announced parent writes", true,
      true, { NULL }, "do_anonymous_page", ANON_WRITE },
    { "cow", "a forked child writes a page its parent wrote before the fork", true, true, { NULL },
      "wp_page_copy", "COW: page" },
    { "file-read", "the first read of a private read-only mmap of /bin/fl-trigger", false, true, { NULL },
      "do_read_fault", "file read: page-cache page" },
    { "exec", "a call into a fresh anonymous PROT_EXEC page: the instruction fetch faults", false, true, { NULL },
      "do_anonymous_page", "anonymous first instruction fetch: the shared zero page" },
    { "segv-write", "a write to a PROT_READ page; the trigger catches SIGSEGV", true, true, { REFUSED, NULL },
      "bad_area_access_error", "SIGSEGV (SEGV_ACCERR): write to a read-only mapping" },
    { "null", "a read of address 0; the trigger catches SIGSEGV", false, true, { REFUSED, NULL },
      "bad_area_nosemaphore", "SIGSEGV (SEGV_MAPERR)" },
    { "kernel-fixup", "read(2) into an unmapped address: the kernel's copy faults and returns EFAULT", true, false,
      { "lock_vma_under_rcu", REFUSED, NULL }, "fixup_exception", "kernel access to a bad user address fixed up" },
    /* below the stack VMA: lock_vma_under_rcu finds no VMA there, the mmap
     * lock's path grows the stack and goes on to handle_mm_fault */
    { "stack-grow", "a write 0x100 bytes below the [stack] VMA", true, true, { NULL }, "do_anonymous_page",
      "stack grown from" },
};

size_t scenario_count(void)
{
    return sizeof scenarios / sizeof scenarios[0];
}

const scenario_def *scenario_at(size_t i)
{
    return i < scenario_count() ? &scenarios[i] : NULL;
}

const scenario_def *scenario_find(const char *name)
{
    for (size_t i = 0; name && i < scenario_count(); i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}
