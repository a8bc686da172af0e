/* fl-trigger: the guest programs whose page faults faultline watches.
 *
 * One static binary; the scenario comes from argv[0] (installed as fl-write,
 * fl-read, fl-kernel-write, fl-write-forked) or from argv[1]
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
 * Kernel command line faultline.go=auto (vm/init exports FAULTLINE_GO=auto):
 * announce as usual but do not wait for "go"; fault at once. For a debugger
 * that armed its breakpoints before the guest ran (bench/, or GDB by hand):
 * the target address is deterministic, page hint 0x7f0000000000 + 0x100.
 *
 * Built with `cc -static -O1 -g`. Exit codes: 0 ok, 1 the fault did not do
 * what it should, 2 usage or set-up failure, 3 stdin closed before "go".
 */
#include <errno.h>
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

int main(int argc, char **argv)
{
    const char *scenario = base_name(argc > 0 ? argv[0] : "fl-trigger");
    if (strncmp(scenario, "fl-", 3) == 0)
        scenario += 3;
    if (strcmp(scenario, "trigger") == 0) {
        if (argc < 2) {
            say("usage: fl-trigger write|read|kernel-write|write-forked");
            return 2;
        }
        scenario = argv[1];
    }
    int kind;
    if (strcmp(scenario, "write") == 0)
        kind = 0;
    else if (strcmp(scenario, "read") == 0)
        kind = 1;
    else if (strcmp(scenario, "kernel-write") == 0)
        kind = 2;
    else if (strcmp(scenario, "write-forked") == 0)
        kind = 3;
    else {
        say("fl-trigger: unknown scenario '%s' (write, read, kernel-write, write-forked)", scenario);
        return 2;
    }

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

    /* Fresh anonymous private page: no PTE until the first access. */
    char *page = mmap(PAGE_HINT, PAGE_SIZE_, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        say("fl-trigger: mmap of one anonymous page failed: %s", strerror(errno));
        return 2;
    }
    char *target = page + TARGET_OFF;

    int pfd[2] = {-1, -1};
    if (kind == 2) {
        /* The data is in the pipe before "go": the read(2) after it only
         * copies, and its copy_to_user is what faults. */
        if (pipe(pfd) != 0 || write(pfd[1], pipe_data, sizeof pipe_data - 1) != (ssize_t)(sizeof pipe_data - 1)) {
            say("fl-trigger: cannot set up the pipe: %s", strerror(errno));
            return 2;
        }
    }

    const char *go = getenv("FAULTLINE_GO");
    int auto_go = go && strcmp(go, "auto") == 0;

    touch_stack();
    /* One dry run of the result line too, so its code and data are mapped. */
    char dry[8];
    snprintf(dry, sizeof dry, "%s", scenario);

    /* write-forked: the other process, forked before the announcement. */
    pid_t child = -1;
    int gate[2] = {-1, -1};
    if (kind == 3) {
        if (pipe(gate) != 0) {
            say("fl-trigger: cannot create the child's pipe: %s", strerror(errno));
            return 2;
        }
        child = fork();
        if (child < 0) {
            say("fl-trigger: fork failed: %s", strerror(errno));
            return 2;
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
    }

    say("FAULTLINE-TRIGGER scenario=%s pid=%d comm=%s page=%#lx target=%#lx",
        scenario, (int)getpid(), kcomm, (unsigned long)(uintptr_t)page,
        (unsigned long)(uintptr_t)target);

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

    if (kind == 3) {
        /* Release the child, let it fault on the same address and exit;
         * then the announced process's own write (the switch below). */
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
            return 1;
        }
        say("fl-%s: child pid %d wrote %#lx first, in its own mm, and exited", scenario, (int)child,
            (unsigned long)(uintptr_t)target);
    }

    int ok = 1;
    switch (kind) {
    case 0:
    case 3: /* the same write, after the child's */
        /* The seed's access. -O1 turns this into one 2-byte store. */
        strcpy(target, "o");
        ok = target[0] == 'o' && target[1] == '\0';
        break;
    case 1: {
        /* First read of a fresh anonymous page: maps the shared zero page. */
        char c = *(volatile char *)target;
        ok = c == 0;
        break;
    }
    case 2: {
        /* The kernel writes the user address (copy_to_user in pipe_read):
         * the fault is taken in kernel mode, CS=0x10. */
        ssize_t r = read(pfd[0], target, sizeof pipe_data - 1);
        ok = r == (ssize_t)(sizeof pipe_data - 1) && memcmp(target, pipe_data, (size_t)r) == 0;
        break;
    }
    }
    if (!ok) {
        say("FAULTLINE-RESULT scenario=%s failed: the access did not return the expected data", scenario);
        return 1;
    }
    say("FAULTLINE-RESULT scenario=%s ok", scenario);
    return 0;
}
