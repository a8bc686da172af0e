/* kernel layer, lifecycle: kern_open and kern_close, the one file that knows
 * every layer (see kernel_internal.h). Each layer frees what it owns. */
#include "kernel_internal.h"

#include <stdlib.h>
#include <string.h>

/* vmlinux is linked at the top of its build tree, whose absolute path
 * prefixes every source path in its DWARF. */
static char *tree_root_of(const char *vmlinux)
{
    char *real = realpath(vmlinux, NULL);
    char *slash = real ? strrchr(real, '/') : NULL;
    if (slash)
        *slash = '\0';
    return real;
}

int kern_open(kern **out, const char *vmlinux, const char *src_root, fl_error *err)
{
    *out = NULL;
    if (!vmlinux || !*vmlinux)
        return fl_fail(err, FL_EUSAGE, "no vmlinux path given; pass the kernel's vmlinux (ELF with DWARF)");
    kern *k = calloc(1, sizeof *k);
    if (!k)
        return fl_fail(err, FL_ENOMEM, "out of memory opening %s", vmlinux);
    k->fd = -1;
    k->path = strdup(vmlinux);
    k->src_root = src_root ? strdup(src_root) : NULL;
    k->tree_root = tree_root_of(vmlinux);
    if (!k->path || (src_root && !k->src_root)) {
        kern_close(k);
        return fl_fail(err, FL_ENOMEM, "out of memory opening %s", vmlinux);
    }
    if (ke_open(k, err) != 0 || kd_open(k, err) != 0) {
        kern_close(k);
        return -1;
    }
    *out = k;
    return 0;
}

void kern_close(kern *k)
{
    if (!k)
        return;
    kx_free(k);
    ks_free(k);
    kl_free(k);
    kd_free(k);
    ke_free(k);
    free(k->path);
    free(k->src_root);
    free(k->tree_root);
    free(k);
}
