/* cmd_guest: the bundled guest: its files, the user's program appended as
 * an archive, booting QEMU and connecting to its stub. */
#include <elf.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/util.h"

static const char *guest_dir = "build/vm";

enum { START_MAX_MS = 10000 }; /* QEMU's socket plus the connection, at most */

void cmd_set_guest_dir(const char *dir)
{
    guest_dir = dir;
}

/* Default guest files: the option, else the environment, else the guest
 * directory (the source tree's build/vm, or an installed PKGDATADIR). */
const char *cmd_guest_file(const char *given, const char *env, const char *name, char *buf, size_t cap)
{
    if (given)
        return given;
    const char *e = getenv(env);
    if (e && *e)
        return e;
    snprintf(buf, cap, "%s/%s", guest_dir, name);
    return buf;
}

void cmd_kernel_version(const char *vmlinux, kern *k, char *buf, size_t cap)
{
    /* build/vm/kernel-version sits beside the vmlinux link: it names the
     * Debian source package the kernel was built from. */
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", vmlinux);
    snprintf(path, sizeof path, "%s/kernel-version", dirname(dir));
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)cap, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
    if (!buf[0] && k)
        snprintf(buf, cap, "%.*s", (int)strcspn(kern_banner(k), "\n"), kern_banner(k));
}

/* Does the kernel's own source resolve? Asked of one line every capture
 * shows (handle_mm_fault's first); a kernel without that line has nothing
 * to resolve. */
static bool source_resolves(kern *k)
{
    uint64_t pc;
    kern_line l;
    fl_error e = { 0 };
    if (kern_sym_addr(k, "handle_mm_fault", &pc, &e) < 0 || kern_line_at(k, pc, &l, &e) < 0)
        return true;
    return kern_source_text(k, l.file, l.line) != NULL;
}

int cmd_kernel_source(kern *k, const char *source_dir, fl_error *err)
{
    if (source_dir)
        return kern_set_source_dir(k, source_dir, err);
    if (source_resolves(k))
        return 0;
    fl_error e = { 0 };
    if (kern_use_debian_source(k, NULL, &e) < 0)
        fprintf(stderr, "faultline: note: no source text in this report: %s\n", e.msg);
    return 0;
}

/* A user's static program travels as a second cpio appended to the
 * initramfs (the kernel unpacks concatenated archives in order). newc is
 * written here: it is 110 bytes of ASCII header per file and linking
 * libarchive for it would cost more than it saves. */
static int cpio_entry(FILE *f, const char *name, unsigned mode, const void *data, size_t size, unsigned ino)
{
    size_t namesz = strlen(name) + 1;
    if (fprintf(f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ino, mode, 0u, 0u, 1u, 0u, size,
                0u, 0u, 0u, 0u, namesz, 0u) < 0)
        return -1;
    fwrite(name, 1, namesz, f);
    for (size_t pad = (4 - (110 + namesz) % 4) % 4; pad; pad--)
        fputc(0, f);
    if (size)
        fwrite(data, 1, size, f);
    for (size_t pad = (4 - size % 4) % 4; pad; pad--)
        fputc(0, f);
    return ferror(f) ? -1 : 0;
}

/* What the guest can run: a 64-bit x86-64 ELF executable with no program
 * interpreter (the guest has no dynamic loader or libraries). Checked on
 * the file's bytes before anything boots. */
static int check_program_elf(const char *program, const unsigned char *data, size_t size, fl_error *err)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)data;
    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_machine != EM_X86_64 || (eh->e_type != ET_EXEC && eh->e_type != ET_DYN))
        return fl_fail(err, FL_EUSAGE, "%s is not an x86-64 ELF program: build it with 'cc -static' for x86-64", program);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
        (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return fl_fail(err, FL_EUSAGE, "%s is a truncated or damaged ELF file (its program headers lie outside it)", program);
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh->e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_INTERP)
            return fl_fail(err, FL_EUSAGE,
                           "%s is dynamically linked and the guest has no dynamic loader: link it statically "
                           "(cc -static -o prog prog.c)", program);
    }
    return 0;
}

/* The program's bytes, checked (malloc'd into *data). */
static int read_program(const char *program, unsigned char **data, size_t *size, fl_error *err)
{
    struct stat sb;
    if (stat(program, &sb) < 0)
        return fl_fail(err, FL_EUSAGE, "cannot read the program %s: %s", program, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return fl_fail(err, FL_EUSAGE, "the program %s is not a regular file", program);
    FILE *in = fopen(program, "rb");
    if (!in)
        return fl_fail(err, FL_EUSAGE, "cannot read the program %s: %s", program, strerror(errno));
    *size = (size_t)sb.st_size;
    *data = malloc(*size ? *size : 1);
    bool ok = *data && fread(*data, 1, *size, in) == *size;
    fclose(in);
    if (!ok) {
        free(*data);
        *data = NULL;
        return fl_fail(err, FL_EIO, "cannot read the program %s", program);
    }
    if (check_program_elf(program, *data, *size, err) < 0) {
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
}

int cmd_check_program(const char *program, fl_error *err)
{
    unsigned char *data;
    size_t size;
    if (read_program(program, &data, &size, err) < 0)
        return -1;
    free(data);
    return 0;
}

static int program_cpio(const char *program, char *path, size_t cap, char *guest_path, size_t gcap, fl_error *err)
{
    unsigned char *data;
    size_t size;
    if (read_program(program, &data, &size, err) < 0)
        return -1;
    char base[256], tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", program);
    snprintf(base, sizeof base, "%s", basename(tmp));
    snprintf(guest_path, gcap, "/user/%s", base);
    const char *tmpdir = getenv("TMPDIR");
    snprintf(path, cap, "%s/faultline-program-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        free(data);
        return fl_fail(err, FL_EIO, "cannot create a temporary file for the program's archive: %s", strerror(errno));
    }
    int rc = cpio_entry(f, "user", 040755, NULL, 0, 9001) | cpio_entry(f, guest_path + 1, 0100755, data, size, 9002) |
             cpio_entry(f, "TRAILER!!!", 0, NULL, 0, 0);
    free(data);
    if (fclose(f) != 0 || rc) {
        unlink(path);
        return fl_fail(err, FL_EIO, "cannot write the program's archive %s", path);
    }
    return 0;
}

void cmd_vm_cleanup(cmd_vm *r)
{
    out_session_close(r->os);
    cap_session_close(r->cs);
    if (r->t)
        tgt_kill(r->t);
    vm_stop(r->v);
    kern_close(r->k);
    if (r->program_cpio[0])
        unlink(r->program_cpio);
}

int cmd_boot_vm(const cli_options *o, cmd_vm *r, char *append, size_t acap, double *t0, fl_error *err)
{
    char kbuf[PATH_MAX], ibuf[PATH_MAX];
    const char *kernel = cmd_guest_file(o->kernel, "FAULTLINE_KERNEL", "vmlinux", kbuf, sizeof kbuf);
    const char *initrd = cmd_guest_file(o->initrd, "FAULTLINE_INITRD", "initramfs.cpio.gz", ibuf, sizeof ibuf);
    struct stat sb;
    if (stat(kernel, &sb) < 0)
        return fl_fail(err, FL_EUSAGE, "no kernel at %s: run 'make vm' (or pass --kernel)", kernel);
    if (stat(initrd, &sb) < 0)
        return fl_fail(err, FL_EUSAGE, "no initramfs at %s: run 'make vm' (or pass --initrd)", initrd);
    vm_config cfg = { .kernel = kernel, .initrd = initrd, .accel = o->reproducible ? "tcg" : o->accel,
                      .append = append, .reproducible = o->reproducible, .exception_log = o->entry_log };
    if (!o->reproducible && strcmp(o->accel, "auto") == 0) {
        /* Decided before the clock starts: the first probe on a machine takes
         * up to 20 s (its verdict is cached), and the user should see why. */
        bool usable = false;
        char why[256] = "";
        if (vm_kvm_usable(&cfg, 20000, &usable, why, sizeof why, err) < 0)
            return -1;
        cfg.accel = usable ? "kvm" : "tcg";
        if (!usable)
            fprintf(stderr, "faultline: --accel auto: using tcg: %s\n", why);
    }
    if (o->nprogram) {
        char guest[300];
        if (program_cpio(o->program[0], r->program_cpio, sizeof r->program_cpio, guest, sizeof guest, err) < 0)
            return -1;
        cfg.extra_initrd = r->program_cpio;
        size_t used = strlen(append);
        used += (size_t)snprintf(append + used, acap - used, " faultline.scenario=program faultline.program=%s", guest);
        for (int i = 1; i < o->nprogram && used < acap; i++)
            used += (size_t)snprintf(append + used, acap - used, "%s%s", i == 1 ? " faultline.args=" : ",", o->program[i]);
    }
    /* --timeout bounds the start-up too: QEMU's socket and the connection
     * share one deadline (at most the 10 s they had before). */
    *t0 = fl_now_s();
    int budget_ms = o->timeout_s * 1000 < START_MAX_MS ? o->timeout_s * 1000 : START_MAX_MS;
    cfg.start_timeout_ms = budget_ms;
    int started = vm_start(&r->v, &cfg, err);
    /* vm_start copied the program's archive into QEMU's initrd: removed at
     * once, it cannot outlive us even on SIGKILL. */
    if (r->program_cpio[0]) {
        unlink(r->program_cpio);
        r->program_cpio[0] = '\0';
    }
    if (started < 0)
        return -1;
    int left_ms = budget_ms - (int)((fl_now_s() - *t0) * 1000);
    if (tgt_connect(&r->t, vm_gdb_address(r->v), left_ms > 500 ? left_ms : 500, err) < 0)
        return -1; /* the sentence names the stub's address already */
    /* Under TCG a step passes over a breakpoint in place (measured-facts.md):
     * no z/Z around it. */
    if (strcmp(vm_accel(r->v), "tcg") == 0)
        tgt_set_step_over(r->t, TGT_STEP_OVER_KEEP);
    /* Reproducible: the caller arms before the guest's first instruction. */
    return o->reproducible ? 0 : tgt_resume(r->t, err);
}

