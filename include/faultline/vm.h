/* vm: the bundled guest. Starts QEMU halted with its gdbstub bound only to a
 * unix socket in a private 0700 directory (or 127.0.0.1), wires the serial
 * console to faultline, owns QEMU's lifetime (reaped on every exit path;
 * vm_kill_all for the CLI's signal handlers; PR_SET_PDEATHSIG so even
 * SIGKILL of faultline takes QEMU with it), removes the temporary
 * directories of dead faultline processes, and parses the triggers' console
 * announcements. Knows nothing of RSP or DWARF. Installs no signal handler.
 * All calls return 0 or -1 with err filled. */
#ifndef FAULTLINE_VM_H
#define FAULTLINE_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "faultline/error.h"

typedef struct vm_config {
    const char *qemu;         /* NULL: "qemu-system-x86_64" from PATH */
    const char *kernel;       /* vmlinux (PVH) or bzImage */
    const char *initrd;       /* initramfs (cpio, optionally gzip) */
    const char *extra_initrd; /* optional second cpio appended (a user program) */
    const char *append;       /* extra kernel command line, may be NULL */
    const char *accel;        /* "tcg" (default), "kvm", or "auto" */
    int mem_mb;               /* 0: 256 */
    const char *gdb_listen;   /* NULL: private unix socket; else "127.0.0.1:PORT"
                                 (any other address is refused with FL_EUSAGE) */
    int start_timeout_ms;     /* how long QEMU may take to open its socket; 0: 10000
                                 (the CLI passes what is left of --timeout) */
    bool start_running;       /* false (default): halted (-S) until a gdb client
                                 resumes it; true: runs at once (KVM probe, smoke
                                 boots); the gdbstub is there either way */
    bool exception_log;       /* QEMU writes its exception log (-d int -D FILE,
                                 FILE in the private 0700 directory; see
                                 vm_exception_log and exclog.h). TCG only: with
                                 kvm vm_start refuses (FL_EUSAGE) */
    /* Cancellation (the CLI: "did a signal arrive?"). Every wait of this
     * module for this VM (QEMU's socket, console lines, QEMU's exit, a
     * console write) checks it at least every 100 ms and then fails with
     * FL_EINTR. NULL: waits end on their timeouts only. Must be cheap. */
    int (*cancelled)(void *ctx);
    void *cancel_ctx;
    bool reproducible;        /* deterministic TCG (VM_REPRODUCIBLE_* below):
                                 the same boot gives the same guest state run
                                 after run; refused with kvm (FL_EUSAGE) */
} vm_config;

/* Reproducible mode: instructions, not host time, drive the guest clock
 * (-icount with a fixed shift and no sleep), the RTC starts at a fixed date
 * and follows that clock, QEMU's guest random source (RDRAND) is seeded, one
 * CPU, and the kernel does not randomize mmap and stack addresses. */
#define VM_REPRODUCIBLE_ICOUNT "shift=" VM_REPRODUCIBLE_SHIFT ",sleep=off"
#define VM_REPRODUCIBLE_SHIFT "5"
#define VM_REPRODUCIBLE_RTC "base=2024-01-01T00:00:00,clock=vm"
#define VM_REPRODUCIBLE_SEED "1"
#define VM_REPRODUCIBLE_APPEND "norandmaps sysctl.vm.stat_interval=3600"

typedef struct vm vm;

/* Start QEMU halted (-S). Returns once the gdbstub listens (the unix socket
 * exists, or QEMU owns a listening 127.0.0.1:PORT socket); it does not
 * connect, since a connection stops the VM. A missing QEMU binary is
 * FL_ENOTFOUND; a QEMU that exits at start is FL_EIO with its stderr's last
 * line in the sentence. "auto" resolves to kvm only if vm_kvm_usable() says
 * so, else tcg. The kernel command line is "console=ttyS0 loglevel=4
 * panic=-1" plus cfg->append (later parameters win). */
int vm_start(vm **out, const vm_config *cfg, fl_error *err);
/* Kill (SIGTERM, then SIGKILL after 2 s), reap, remove the private directory,
 * free. Idempotent on NULL. */
void vm_stop(vm *v);

const char *vm_gdb_address(const vm *v);  /* "unix:/tmp/faultline-XXXXXX/gdb.sock" or "127.0.0.1:PORT" */
const char *vm_accel(const vm *v);        /* resolved: "tcg" or "kvm" */
const char *vm_private_dir(const vm *v);  /* the 0700 directory */
const char *vm_exception_log(const vm *v); /* its exception log; NULL unless asked for */
pid_t vm_pid(const vm *v);
bool vm_alive(vm *v);                     /* false once QEMU exited (reaps it) */
/* Wait at most timeout_ms for QEMU to exit by itself (the guest's init ends
 * with reboot -f, and -no-reboot turns that into an exit); reaps it. status:
 * the waitpid status, or -1 if unknown (reaped by vm_kill_all). */
int vm_wait_exit(vm *v, int timeout_ms, int *status, fl_error *err);
/* QEMU's version line ("QEMU emulator version 7.2.22 ..."), read once. */
int vm_qemu_version(const char *qemu, char *buf, size_t cap, fl_error *err);

/* Serial console. Lines are split on \n with \r dropped. */
int vm_console_fd(const vm *v);           /* readable fd, for poll() */
/* Read what is available without blocking into the line buffer; returns 1 and
 * a whole line if one is complete, 0 if none yet, -1 on error/EOF (QEMU gone). */
int vm_console_poll_line(vm *v, char *line, size_t cap, fl_error *err);
/* Wait for a line starting with prefix, at most timeout_ms (FL_ETIMEOUT, with
 * the last console lines in the sentence; FL_ECLOSED if QEMU exited; a kernel
 * panic line is reported as such). */
int vm_console_wait_prefix(vm *v, const char *prefix, char *line, size_t cap, int timeout_ms, fl_error *err);
int vm_console_write(vm *v, const char *text, fl_error *err);
/* The last `n` console lines joined with " | " (for error messages). */
const char *vm_console_tail(vm *v, int n);

/* The trigger protocol. A trigger prints one line
 *   FAULTLINE-TRIGGER scenario=write pid=27 comm=fl-write page=0x7f..000 target=0x7f..100
 * and then waits for a line "go" on its stdin (the console). */
#define VM_ANNOUNCE_PREFIX "FAULTLINE-TRIGGER "
#define VM_DONE_PREFIX "FAULTLINE-DONE "
typedef struct vm_trigger {
    char scenario[32];
    int pid;
    char comm[17];
    uint64_t page;
    uint64_t target;
} vm_trigger;
int vm_parse_announcement(const char *line, vm_trigger *out, fl_error *err);

/* Bounded probe: does a guest boot under KVM on this machine? Boots the given
 * kernel/initrd under KVM and waits at most probe_ms for the init's first
 * line. Verdict cached in ${XDG_CACHE_HOME:-$HOME/.cache}/faultline/kvm-verdict
 * (keyed by kernel path+mtime and qemu version); `why` says why not. The
 * cache is used only in a directory we own that no one else can write
 * (checked through an open descriptor, files opened O_NOFOLLOW, written
 * O_EXCL and renamed into place); with neither variable set (or a relative
 * one) there is no cache: never a shared /tmp path. A cancelled probe
 * (cfg->cancelled) is FL_EINTR and caches nothing. */
int vm_kvm_usable(const vm_config *cfg, int probe_ms, bool *usable, char *why, size_t cap, fl_error *err);

/* Kill and reap every QEMU this process started and remove their private
 * directories, with async-signal-safe calls only: the CLI's signal handlers
 * call it. Not thread-safe with vm_start; the vm objects stay valid
 * (vm_stop still frees them). */
void vm_kill_all(void);
/* atexit(vm_kill_all), once. Signal handlers are the caller's (the CLI owns
 * them): this module installs none. */
void vm_install_cleanup(void);

/* Temporary directories in /tmp: /tmp/PREFIX-XXXXXX (prefix "faultline" or
 * "faultline-program"), mode 0700, checked (a directory, ours, 0700), with
 * a file "owner.pid" (created O_EXCL) naming this process (pid and start
 * time) so a later run can tell it is stale. */
int vm_tmpdir_create(const char *prefix, char *dir, size_t cap, fl_error *err);
/* Remove such a directory and the files in it (no subdirectories). */
void vm_tmpdir_remove(const char *dir);
/* Remove the /tmp/faultline-XXXXXX and /tmp/faultline-program-XXXXXX
 * directories of faultline processes that are gone: only those matching
 * the name pattern, owned by our euid, real directories (not symlinks), with
 * an owner.pid whose process no longer exists (or whose pid was reused by a
 * process started later). Others' directories, live processes' and ones
 * without owner.pid are kept. vm_start calls it; returns how many it
 * removed. */
int vm_clean_stale_tmpdirs(void);

#endif
