/* fl-trigger: the guest programs whose page faults faultline watches.
 *
 * One static binary; the scenario comes from argv[0] (installed as fl-write,
 * fl-read, fl-kernel-write, fl-write-forked, fl-cow, fl-file-read, fl-exec,
 * fl-segv-write, fl-null, fl-kernel-fixup, fl-stack-grow) or from argv[1]
 * ("fl-trigger write").
 *
 * Protocol (see include/faultline/vm.h): set up everything, announce one line
 *   FAULTLINE-TRIGGER scenario=S pid=P comm=C page=0x... target=0x...
 * wait for a line "go" on stdin (the serial console), fault exactly once on
 * `target`, print "FAULTLINE-RESULT scenario=S ok" and exit 0.
 *
 * Everything the program needs after "go" (stack, stdio-free output buffer,
 * code pages, the pipe's data) is touched before the announcement, so the
 * only fault the host sees on `page` after "go" is the target access. Output
 * goes through write(2) on a stack buffer: stdio would allocate (and fault on)
 * fresh heap pages at the first printf after "go".
 *
 * write-forked proves the host's filter: the same write as `write`, but
 * another process faults on the SAME virtual address first, after "go". The
 * trigger mmaps the page (untouched: no PTE), forks a child BEFORE announcing
 * (so the announced pid and comm are the parent's; the child has the same
 * comm, only the pid tells them apart), and the child blocks on a pipe. After
 * "go" the parent releases the child, the child writes target (a fresh
 * anonymous fault in the child's own mm: error code 6, flags 0x1255, CR2 ==
 * target, exactly like the parent's) and exits, the parent reaps it, and only
 * then writes target itself. A host filtering by the announced pid must pass
 * over the child's fault and capture the parent's. After "go" the parent may
 * also take copy-on-write faults on its own stack (fork write-protected it);
 * those are on other addresses.
 *
 * The catalog (what each access is; what the kernel must make of it is in
 * tests/integration/itest_outcome.c's table):
 *  write         first write to a fresh anonymous page (the seed's fault)
 *  read          first read of a fresh anonymous page (the shared zero page)
 *  kernel-write  read(2) from a pipe into a fresh page: copy_to_user faults
 *  write-forked  write, after a forked child wrote the same address
 *  cow           the page is written, then the process forks; the CHILD
 *                announces itself and writes the page: copy-on-write (the
 *                parent keeps the old frame, and waits)
 *  file-read     first read of a private read-only mmap of /bin/fl-trigger
 *                (a page-cache page of the initramfs)
 *  exec          a call to page + 0x100 of a fresh anonymous PROT_EXEC page:
 *                the first access is that instruction fetch (the same target
 *                as the others); the page (the zero page) runs as
 *                `add [rax], al` into the next page, which holds `ret`
 *  segv-write    write to a PROT_READ page: SIGSEGV (SEGV_ACCERR), caught
 *  null          read of address 0: SIGSEGV (SEGV_MAPERR), caught (announced
 *                with target=0x0: the host takes the process's first fault)
 *  kernel-fixup  read(2) from a pipe into an unmapped address: the kernel's
 *                copy faults, its exception-table fixup makes read fail EFAULT
 *  stack-grow    a write 0x100 bytes below the stack VMA's lowest address
 *                (from /proc/self/maps): the stack grows by one page
 * The signal scenarios rehearse their SIGSEGV once with raise() before the
 * announcement, so the handler's pages are mapped before "go".
 *
 * Kernel command line faultline.go=auto (vm/init exports FAULTLINE_GO=auto):
 * announce as usual but do not wait for "go"; fault at once. For a debugger
 * that armed its breakpoints before the guest ran (bench/, or GDB by hand):
 * the target address is deterministic, page hint 0x7f0000000000 + 0x100.
 *
 * Built with `cc -static -O1 -g`. Exit codes: 0 ok, 1 the fault did not do
 * what it should, 2 usage or set-up failure, 3 stdin closed before "go".
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE_SIZE_ 4096UL
#define TARGET_OFF 0x100UL
/* A hint, not MAP_FIXED: the kernel keeps it when that range is free, so the
 * addresses are the same from one run to the next (easier to compare runs). */
#define PAGE_HINT ((void *)0x7f0000000000UL)

static const char pipe_data[] = "faultline";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (int)w;
    }
}

/* Fault in the stack below us now, so later calls do not grow it after "go".
 * noinline + volatile: the compiler must really touch every page. */
static __attribute__((noinline)) void touch_stack(void)
{
    volatile char pad[64 * 1024];
    for (size_t i = 0; i < sizeof pad; i += 512)
        pad[i] = 0;
}

/* Block until a line that is exactly "go" (a trailing \r is tolerated);
 * other lines are ignored. Returns 0, or -1 at EOF/error. Reads one byte at
 * a time so nothing after the line is consumed from the shared console. */
static int wait_go(void)
{
    char line[64];
    size_t len = 0;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (c != '\n') {
            if (len < sizeof line - 1)
                line[len++] = c;
            continue;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        line[len] = '\0';
        if (strcmp(line, "go") == 0)
            return 0;
        len = 0;
    }
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

enum kind {
    K_WRITE, K_READ, K_KERNEL_WRITE, K_WRITE_FORKED, K_COW, K_FILE_READ, K_EXEC,
    K_SEGV_WRITE, K_NULL, K_KERNEL_FIXUP, K_STACK_GROW, K_COUNT
};
static const char *const kind_names[K_COUNT] = {
    "write", "read", "kernel-write", "write-forked", "cow", "file-read", "exec",
    "segv-write", "null", "kernel-fixup", "stack-grow",
};

/* ---- the signal scenarios: SIGSEGV is caught and the access abandoned ---- */
static sigjmp_buf segv_jump;
static volatile sig_atomic_t segv_sig, segv_code;
static void *volatile segv_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    segv_sig = sig;
    segv_code = si->si_code;
    segv_addr = si->si_addr;
    siglongjmp(segv_jump, 1);
}

static int catch_segv(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        return -1;
    /* Rehearse once: the delivery, the handler and siglongjmp are mapped now. */
    if (sigsetjmp(segv_jump, 1) == 0)
        raise(SIGSEGV);
    segv_sig = segv_code = 0;
    segv_addr = NULL;
    return 0;
}

/* The lowest address of the [stack] VMA, from /proc/self/maps; 0 if unknown. */
static uintptr_t stack_bottom(void)
{
    static char buf[16384];
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        return 0;
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strstr(line, "[stack]"))
            return (uintptr_t)strtoull(line, NULL, 16);
        if (end)
            *end = '\n';
    }
    return 0;
}

/* exec: call into `code` with rax at a scratch byte; the zero page runs as
 * `add [rax], al` up to the next page's `ret`. Below the red zone, since the
 * call pushes a return address. */
static unsigned char exec_scratch[16];
static void run_code(void *code)
{
    __asm__ volatile("lea %1, %%rax\n\t"
                     "sub $128, %%rsp\n\t"
                     "call *%0\n\t"
                     "add $128, %%rsp"
                     :
                     : "r"(code), "m"(exec_scratch)
                     : "rax", "memory", "cc");
}

static enum kind parse_kind(int argc, char **argv, const char **name)
{
    const char *scenario = base_name(argc > 0 ? argv[0] : "fl-trigger");
    if (strncmp(scenario, "fl-", 3) == 0)
        scenario += 3;
    if (strcmp(scenario, "trigger") == 0)
        scenario = argc >= 2 ? argv[1] : "";
    *name = scenario;
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(scenario, kind_names[k]) == 0)
            return (enum kind)k;
    say("fl-trigger: unknown scenario '%s' (write, read, kernel-write, write-forked, cow, file-read, exec, "
        "segv-write, null, kernel-fixup, stack-grow)", scenario);
    return K_COUNT;
}

typedef struct setup {
    char *page, *target;
    int pfd[2];
    char file_byte;   /* file-read: the byte at the target's offset, by pread */
} setup;

/* Everything the access needs, before the announcement. */
static int set_up(enum kind kind, setup *su)
{
    int prot = kind == K_SEGV_WRITE ? PROT_READ
             : kind == K_EXEC       ? PROT_READ | PROT_WRITE | PROT_EXEC
                                    : PROT_READ | PROT_WRITE;
    size_t len = kind == K_EXEC ? 2 * PAGE_SIZE_ : PAGE_SIZE_;
    if (kind == K_FILE_READ) {
        int fd = open("/bin/fl-trigger", O_RDONLY);
        su->page = fd < 0 ? MAP_FAILED : mmap(PAGE_HINT, PAGE_SIZE_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (fd >= 0 && pread(fd, &su->file_byte, 1, TARGET_OFF) != 1)
            su->page = MAP_FAILED;
        if (fd >= 0)
            close(fd);
    } else {
        /* Fresh anonymous private page: no PTE until the first access. */
        su->page = mmap(PAGE_HINT, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (su->page == MAP_FAILED) {
        say("fl-trigger: mmap of the scenario's page failed: %s", strerror(errno));
        return -1;
    }
    su->target = su->page + TARGET_OFF;
    if (kind == K_EXEC) {
        su->page[PAGE_SIZE_] = (char)0xc3; /* ret, on the second page only */
    }
    if (kind == K_COW)
        su->target[0] = 'p'; /* present and private before the fork */
    if (kind == K_KERNEL_FIXUP && munmap(su->page, PAGE_SIZE_) != 0) {
        say("fl-trigger: munmap failed: %s", strerror(errno));
        return -1;
    }
    if (kind == K_STACK_GROW) {
        uintptr_t bottom = stack_bottom();
        if (!bottom) {
            say("fl-trigger: no [stack] line in /proc/self/maps");
            return -1;
        }
        su->page = (char *)(bottom - PAGE_SIZE_);
        su->target = su->page + PAGE_SIZE_ - TARGET_OFF;
    }
    if (kind == K_NULL)
        su->page = su->target = NULL;
    if (kind == K_KERNEL_WRITE || kind == K_KERNEL_FIXUP) {
        /* The data is in the pipe before "go": the read(2) after it only
         * copies, and its copy_to_user is what faults. */
        if (pipe(su->pfd) != 0 ||
            write(su->pfd[1], pipe_data, sizeof pipe_data - 1) != (ssize_t)(sizeof pipe_data - 1)) {
            say("fl-trigger: cannot set up the pipe: %s", strerror(errno));
            return -1;
        }
    }
    if ((kind == K_SEGV_WRITE || kind == K_NULL) && catch_segv() != 0) {
        say("fl-trigger: cannot catch SIGSEGV: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* A caught SIGSEGV with this si_code at this address. */
static int segv_was(int code, const void *addr)
{
    return segv_sig == SIGSEGV && segv_code == code && segv_addr == addr;
}

/* The one access; 1 when it did what the scenario says. */
static int access_once(enum kind kind, setup *su)
{
    static volatile uintptr_t zero = 0; /* a null the compiler cannot see */
    switch (kind) {
    case K_WRITE:
    case K_WRITE_FORKED: /* the same write, after the child's */
    case K_COW:
        /* The seed's access. -O1 turns this into one 2-byte store. */
        strcpy(su->target, "o");
        return su->target[0] == 'o' && su->target[1] == '\0';
    case K_READ:
        /* First read of a fresh anonymous page: maps the shared zero page. */
        return *(volatile char *)su->target == 0;
    case K_FILE_READ:
        return *(volatile char *)su->target == su->file_byte;
    case K_EXEC:
        run_code(su->target);
        return 1; /* it returned: the zero page ran into the `ret` */
    case K_KERNEL_WRITE: {
        /* The kernel writes the user address (copy_to_user in pipe_read):
         * the fault is taken in kernel mode, CS=0x10. */
        ssize_t r = read(su->pfd[0], su->target, sizeof pipe_data - 1);
        return r == (ssize_t)(sizeof pipe_data - 1) && memcmp(su->target, pipe_data, (size_t)r) == 0;
    }
    case K_KERNEL_FIXUP: {
        ssize_t r = read(su->pfd[0], su->target, sizeof pipe_data - 1);
        return r == -1 && errno == EFAULT;
    }
    case K_SEGV_WRITE:
        if (sigsetjmp(segv_jump, 1) == 0) {
            *(volatile char *)su->target = 'o';
            return 0; /* the write went through: no SIGSEGV */
        }
        return segv_was(SEGV_ACCERR, su->target);
    case K_NULL:
        if (sigsetjmp(segv_jump, 1) == 0) {
            (void)*(volatile char *)zero;
            return 0;
        }
        return segv_was(SEGV_MAPERR, NULL);
    case K_STACK_GROW:
        *(volatile char *)su->target = 'o';
        return *(volatile char *)su->target == 'o' && stack_bottom() <= (uintptr_t)su->page;
    case K_COUNT:
        break;
    }
    return 0;
}

/* write-forked: a child, forked before the announcement, that writes the
 * same address in its own mm once released through the gate. */
static pid_t fork_gated_child(char *target, int gate[2])
{
    if (pipe(gate) != 0) {
        say("fl-trigger: cannot create the child's pipe: %s", strerror(errno));
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        say("fl-trigger: fork failed: %s", strerror(errno));
        return -1;
    }
    if (child == 0) {
        /* Silent, and never reads the console: only the gate. */
        close(gate[1]);
        char c;
        ssize_t r;
        do
            r = read(gate[0], &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
            _exit(3); /* the parent gave up before "go": no fault */
        strcpy(target, "o");
        _exit(target[0] == 'o' && target[1] == '\0' ? 0 : 1);
    }
    close(gate[0]);
    int st;
    (void)waitpid(-1, &st, WNOHANG); /* map waitpid's code before "go" */
    return child;
}

/* Release the write-forked child, let it fault on the same address and exit. */
static int release_child(const char *scenario, pid_t child, int gate[2], char *target)
{
    int st = 0;
    pid_t w;
    ssize_t r;
    do
        r = write(gate[1], "g", 1);
    while (r < 0 && errno == EINTR);
    close(gate[1]);
    do
        w = waitpid(child, &st, 0);
    while (w < 0 && errno == EINTR);
    if (r != 1 || w != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("FAULTLINE-RESULT scenario=%s failed: the child (pid %d) did not write %#lx and exit 0 "
            "(release %s, wait status %#x)", scenario, (int)child, (unsigned long)(uintptr_t)target,
            r == 1 ? "sent" : "failed", w == child ? (unsigned)st : 0xffffffffu);
        return -1;
    }
    say("fl-%s: child pid %d wrote %#lx first, in its own mm, and exited", scenario, (int)child,
        (unsigned long)(uintptr_t)target);
    return 0;
}

/* cow: the parent only waits; the child carries on as the scenario. Returns
 * in the child (0), or the exit status for the parent (>0). */
static int cow_fork(void)
{
    pid_t child = fork();
    if (child < 0) {
        say("fl-trigger: fork failed: %s", strerror(errno));
        return 2;
    }
    if (child == 0)
        return 0;
    int st = 0;
    pid_t w;
    do
        w = waitpid(child, &st, 0);
    while (w < 0 && errno == EINTR);
    return w == child && WIFEXITED(st) ? (WEXITSTATUS(st) ? WEXITSTATUS(st) : -1) : 1;
}

int main(int argc, char **argv)
{
    const char *scenario;
    enum kind kind = parse_kind(argc, argv, &scenario);
    if (kind == K_COUNT)
        return 2;
    /* comm is what the kernel shows in task_struct.comm (15 chars max);
     * "fl-kernel-write" and "fl-write-forked" are exactly 15. */
    char comm[16];
    snprintf(comm, sizeof comm, "fl-%s", scenario);
    if (prctl(PR_SET_NAME, comm, 0, 0, 0) != 0) {
        say("fl-trigger: prctl(PR_SET_NAME) failed: %s", strerror(errno));
        return 2;
    }
    char kcomm[17] = {0};
    if (prctl(PR_GET_NAME, kcomm, 0, 0, 0) != 0)
        snprintf(kcomm, sizeof kcomm, "%s", comm);

    setup su = { .pfd = { -1, -1 } };
    if (set_up(kind, &su) != 0)
        return 2;
    if (kind == K_COW) {
        int st = cow_fork();
        if (st != 0)
            return st < 0 ? 0 : st; /* the parent: the child's status */
    }
    const char *go = getenv("FAULTLINE_GO");
    int auto_go = go && strcmp(go, "auto") == 0;

    touch_stack();
    /* One dry run of the result line too, so its code and data are mapped. */
    char dry[8];
    snprintf(dry, sizeof dry, "%s", scenario);

    pid_t child = -1;
    int gate[2] = {-1, -1};
    if (kind == K_WRITE_FORKED && (child = fork_gated_child(su.target, gate)) < 0)
        return 2;

    say("FAULTLINE-TRIGGER scenario=%s pid=%d comm=%s page=0x%lx target=0x%lx",
        scenario, (int)getpid(), kcomm, (unsigned long)(uintptr_t)su.page,
        (unsigned long)(uintptr_t)su.target);

    if (!auto_go && wait_go() != 0) {
        say("FAULTLINE-RESULT scenario=%s failed: stdin closed before \"go\"", scenario);
        if (child > 0) {
            /* EOF on the gate: the child exits without touching the page. */
            close(gate[1]);
            while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        return 3;
    }
    if (kind == K_WRITE_FORKED && release_child(scenario, child, gate, su.target) != 0)
        return 1;
    if (!access_once(kind, &su)) {
        say("FAULTLINE-RESULT scenario=%s failed: the access did not do what the scenario says", scenario);
        return 1;
    }
    say("FAULTLINE-RESULT scenario=%s ok", scenario);
    return 0;
}
