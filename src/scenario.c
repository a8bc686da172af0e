/* scenario: the bundled triggers' promises. See scenario.h. */
#include "faultline/scenario.h"

#include <string.h>

static const scenario_def scenarios[] = {
    { "write", "the first write to a fresh anonymous page, from user mode", true, true, { NULL } },
    { "read", "the first read of a fresh anonymous page, from user mode", false, true, { NULL } },
    /* the kernel's own access to a user page skips the per-VMA lock: no
     * FAULT_FLAG_USER, so do_user_addr_fault takes the mmap lock instead */
    { "kernel-write", "read(2) into an untouched page: the kernel writes to a user page", true, false,
      { "lock_vma_under_rcu", NULL } },
    { "write-forked", "a forked child writes the same address first; then the announced parent writes", true,
      true, { NULL } },
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
