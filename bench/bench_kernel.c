/* bench_kernel: cold start of the kernel layer on the real vmlinux, answering
 * the lookups one capture needs, next to GDB answering the same questions on
 * the same file in the same run. Prints time and peak RSS of both and the
 * ratios. Usage: bench_kernel [vmlinux] (default $FAULTLINE_KERNEL, else
 * build/vm/vmlinux as `make bench` leaves it). Exits 0 when it ran (beating
 * GDB is reported, not enforced) and when there is no vmlinux (says so). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "faultline/kernel.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const SYMS[] = { "asm_exc_page_fault", "exc_page_fault", "do_user_addr_fault",
                                    "lock_vma_under_rcu", "handle_mm_fault", "__handle_mm_fault",
                                    "pcpu_hot", "linux_banner" };
static const char *const LINE_FUNCS[] = { "exc_page_fault", "do_user_addr_fault", "handle_mm_fault",
                                          "__handle_mm_fault", "lock_vma_under_rcu" };
#define NPCS 20

static int die(const char *what, const fl_error *e)
{
    fprintf(stderr, "bench_kernel: %s: %s (%s)\n", what, e->msg, fl_errcode_name(e->code));
    return 1;
}

int main(int argc, char **argv)
{
    const char *vm = argc > 1 ? argv[1] : getenv("FAULTLINE_KERNEL");
    if (!vm)
        vm = "build/vm/vmlinux";
    if (access(vm, R_OK) != 0) {
        printf("bench_kernel: no vmlinux at %s (set FAULTLINE_KERNEL or run make vm); skipped\n", vm);
        return 0;
    }
    fl_error e = { 0 };
    kern *k;
    double t0 = now();
    if (kern_open(&k, vm, NULL, &e) != 0)
        return die("open", &e);
    double t_open = now();

    uint64_t addr[8];
    for (size_t i = 0; i < 8; i++)
        if (kern_sym_addr(k, SYMS[i], &addr[i], &e) != 0)
            return die(SYMS[i], &e);
    double t_syms = now();

    uint64_t sz;
    kern_member *mem;
    size_t nmem;
    kern_member m;
    if (kern_type_size(k, "struct pt_regs", &sz, &e) != 0 || kern_struct_members(k, "pt_regs", &mem, &nmem, &e) != 0)
        return die("pt_regs", &e);
    free(mem);
    const char *paths[] = { "vm_fault.address", "vm_fault.flags", "vm_fault.pgoff", "pcpu_hot.current_task",
                            "task_struct.pid", "task_struct.comm", "task_struct.mm" };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (kern_member_get(k, paths[i], &m, &e) != 0)
            return die(paths[i], &e);
    kern_enumerator *en;
    size_t nen;
    if (kern_enum_list(k, "fault_flag", &en, &nen, &e) != 0)
        return die("enum fault_flag", &e);
    free(en);
    if (kern_enum_list(k, "x86_pf_error_code", &en, &nen, &e) != 0)
        return die("enum x86_pf_error_code", &e);
    free(en);
    double t_types = now();

    uint64_t pcs[NPCS];
    size_t np = 0;
    for (size_t f = 0; f < 5; f++) {
        uint64_t lo, hi;
        if (kern_func_range(k, LINE_FUNCS[f], &lo, &hi, &e) != 0)
            return die(LINE_FUNCS[f], &e);
        for (int j = 0; j < 4; j++)
            pcs[np++] = lo + (hi - lo) * (uint64_t)j / 4;
    }
    for (size_t i = 0; i < np; i++) {
        kern_line l;
        if (kern_line_at(k, pcs[i], &l, &e) != 0)
            return die("line", &e);
    }
    double t_lines = now();

    uint64_t *inl;
    size_t ninl;
    if (kern_inlined_entries(k, "handle_pte_fault", &inl, &ninl, &e) != 0)
        return die("inlined handle_pte_fault", &e);
    free(inl);
    double t_inl = now();
    kern_close(k);
    double t_end = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double ours = t_end - t0;
    long ours_kb = ru.ru_maxrss;

    printf("faultline kernel layer on %s\n", vm);
    printf("  open          %8.1f ms\n", (t_open - t0) * 1e3);
    printf("  8 symbols     %8.1f ms\n", (t_syms - t_open) * 1e3);
    printf("  types+enums   %8.1f ms  (pt_regs size+%zu members, 7 members, 2 enums)\n", (t_types - t_syms) * 1e3, nmem);
    printf("  20 lines      %8.1f ms\n", (t_lines - t_types) * 1e3);
    printf("  inlined       %8.1f ms  (handle_pte_fault: %zu instances)\n", (t_inl - t_lines) * 1e3, ninl);
    printf("  total         %8.1f ms, peak RSS %ld KB\n", ours * 1e3, ours_kb);

    /* GDB, same questions. */
    char *args[128];
    char bufs[64][96];
    int na = 0, nb = 0;
    args[na++] = "gdb";
    args[na++] = "-batch";
    args[na++] = "-nx";
    args[na++] = (char *)vm;
#define EX(...) do { snprintf(bufs[nb], sizeof bufs[nb], __VA_ARGS__); args[na++] = "-ex"; args[na++] = bufs[nb++]; } while (0)
    for (size_t i = 0; i < 8; i++)
        EX("info address %s", SYMS[i]);
    EX("print sizeof(struct pt_regs)");
    EX("ptype struct pt_regs");
    EX("ptype struct vm_fault");
    EX("print &((struct pcpu_hot *)0)->current_task");
    EX("print &((struct task_struct *)0)->pid");
    EX("print &((struct task_struct *)0)->comm");
    EX("print &((struct task_struct *)0)->mm");
    EX("ptype enum fault_flag");
    EX("ptype enum x86_pf_error_code");
    for (size_t i = 0; i < np; i++)
        EX("info line *0x%" PRIx64, pcs[i]);
    EX("break handle_pte_fault");
    args[na] = NULL;
    double g0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp("gdb", args);
        _exit(127);
    }
    int st = 0;
    struct rusage gru;
    if (pid < 0 || wait4(pid, &st, 0, &gru) < 0) {
        printf("gdb: could not run\n");
        return 0;
    }
    double gdb_s = now() - g0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) {
        printf("gdb: not available (exit %d); no comparison\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
    }
    printf("gdb -batch, same questions: %8.1f ms, peak RSS %ld KB\n", gdb_s * 1e3, gru.ru_maxrss);
    printf("ratio gdb/faultline: time %.1fx, memory %.1fx\n", gdb_s / ours, (double)gru.ru_maxrss / (double)ours_kb);
    printf("bench_kernel: %s\n", ours < gdb_s && ours_kb < gru.ru_maxrss ? "faster and smaller than gdb"
                                                                           : "NOT better than gdb on both");
    return 0;
}
