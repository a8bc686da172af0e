/* cmd_matrix: `faultline matrix`. Each cell is a child `faultline run`
 * (this same binary) in its own process group, at most --jobs at a time,
 * each with its time limit; every child is reaped on every path: when a
 * cell ends, when it overruns (SIGTERM to its group, then SIGKILL), and when
 * a stop signal arrives (all of them, then the table of what finished).
 * A child's QEMU dies with it (vm.c: PR_SET_PDEATHSIG and its own group,
 * which the child kills on SIGTERM). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faultline/cmd.h"
#include "faultline/matrix.h"
#include "faultline/util.h"

#define MATRIX_GRACE_MS 5000

typedef struct running {
    pid_t pid;
    size_t cell;
    double start;
    int64_t deadline;
    int64_t kill_at; /* after SIGTERM: when to SIGKILL (0: not asked yet) */
} running;

typedef struct matrix_ctx {
    const cli_options *o;
    matrix_plan plan;
    char out_dir[PATH_MAX];
    char self[PATH_MAX];
    running *run;
    int nrun, jobs;
    bool kvm_checked, kvm_ok;
    char kvm_why[256];
} matrix_ctx;

/* Under KVM a cell runs only where a guest boots (the bounded, cached
 * probe of vm.c); elsewhere it is skipped with the probe's reason. */
static bool kvm_usable(matrix_ctx *m, const matrix_cell *c)
{
    if (!m->kvm_checked) {
        char ibuf[PATH_MAX];
        vm_config cfg = { .kernel = c->kernel, .initrd = cmd_guest_file(m->o->initrd, "FAULTLINE_INITRD",
                                                                        "initramfs.cpio.gz", ibuf, sizeof ibuf) };
        fl_error err = { 0 };
        if (vm_kvm_usable(&cfg, 20000, &m->kvm_ok, m->kvm_why, sizeof m->kvm_why, &err) < 0) {
            m->kvm_ok = false;
            snprintf(m->kvm_why, sizeof m->kvm_why, "%s", err.msg);
        }
        m->kvm_checked = true;
    }
    return m->kvm_ok;
}

/* The child's argv: faultline run for this cell. */
static void cell_argv(const matrix_ctx *m, const matrix_cell *c, const char *report, char *timeout, const char **argv)
{
    int n = 0;
    argv[n++] = m->self;
    argv[n++] = "run";
    argv[n++] = "--scenario";
    argv[n++] = c->scenario;
    argv[n++] = "--kernel";
    argv[n++] = c->kernel;
    argv[n++] = "--accel";
    argv[n++] = c->accel;
    argv[n++] = "--format";
    argv[n++] = "json";
    argv[n++] = "-o";
    argv[n++] = report;
    /* One fault may take what the whole cell may (the cell's limit is the
     * parent's to enforce). */
    snprintf(timeout, 16, "%d", m->o->timeout_s > 3600 ? 3600 : m->o->timeout_s);
    argv[n++] = "--timeout";
    argv[n++] = timeout;
    if (c->reproducible)
        argv[n++] = "--reproducible";
    if (m->o->trace)
        argv[n++] = "--trace";
    if (m->o->initrd) {
        argv[n++] = "--initrd";
        argv[n++] = m->o->initrd;
    }
    argv[n] = NULL;
}

static int start_cell(matrix_ctx *m, size_t i, fl_error *err)
{
    matrix_cell *c = &m->plan.cells[i];
    char dir[PATH_MAX], report[PATH_MAX + 16], log[PATH_MAX + 16], timeout[16];
    matrix_cell_dir(m->out_dir, c, dir, sizeof dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fl_fail(err, FL_EIO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(report, sizeof report, "%s/report.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    const char *argv[32];
    cell_argv(m, c, report, timeout, argv);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fl_fail(err, FL_EIO, "cannot create %s: %s", log, strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(m->self, (char *const *)argv);
        dprintf(2, "faultline matrix: cannot run %s: %s\n", m->self, strerror(errno));
        _exit(127);
    }
    close(fd);
    if (pid < 0)
        return fl_fail(err, FL_EIO, "cannot fork a cell: %s", strerror(errno));
    setpgid(pid, pid); /* also here: no race with the child's own call */
    running *r = &m->run[m->nrun++];
    *r = (running){ .pid = pid, .cell = i, .start = fl_now_s(), .deadline = fl_deadline_ms(m->o->timeout_s * 1000) };
    return 0;
}

/* A child ended: its status, its report's counts, its result file. */
static void finish_cell(matrix_ctx *m, running *r, int status, bool overran)
{
    matrix_cell *c = &m->plan.cells[r->cell];
    c->seconds = fl_now_s() - r->start;
    c->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    char dir[PATH_MAX], report[PATH_MAX + 16];
    matrix_cell_dir(m->out_dir, c, dir, sizeof dir);
    snprintf(report, sizeof report, "%s/report.jsonl", dir);
    matrix_cell_read_report(c, report);
    c->status = c->exit_code == 0 ? MATRIX_PASS : c->exit_code == CMD_EXIT_CHECKS ? MATRIX_FAIL : MATRIX_ERROR;
    if (overran)
        snprintf(c->reason, sizeof c->reason, "the cell overran its %d s limit and was killed", m->o->timeout_s);
    else if (cmd_stop_signal && c->status != MATRIX_PASS)
        snprintf(c->reason, sizeof c->reason, "the matrix was interrupted (SIG%s)", sigabbrev_np(cmd_stop_signal));
    else if (c->status == MATRIX_ERROR && !c->reason[0])
        snprintf(c->reason, sizeof c->reason, "faultline run exited %d: see %s/log.txt", c->exit_code, c->name);
    matrix_cell_save(m->out_dir, c, NULL);
}

/* Reap what ended, escalate what overran or must stop. */
static void poll_children(matrix_ctx *m)
{
    for (int i = 0; i < m->nrun; i++) {
        running *r = &m->run[i];
        int st;
        pid_t got = waitpid(r->pid, &st, WNOHANG);
        if (got == r->pid || (got < 0 && errno == ECHILD)) {
            finish_cell(m, r, got == r->pid ? st : 0x7f00, r->kill_at && !cmd_stop_signal);
            m->run[i--] = m->run[--m->nrun];
            continue;
        }
        bool stop = cmd_stop_signal || fl_remaining_ms(r->deadline) == 0;
        if (stop && !r->kill_at) {
            kill(-r->pid, SIGTERM);
            r->kill_at = fl_now_ms() + MATRIX_GRACE_MS;
        } else if (r->kill_at && fl_now_ms() >= r->kill_at) {
            kill(-r->pid, SIGKILL);
        }
    }
}

static void skip_cell(matrix_ctx *m, matrix_cell *c, const char *why)
{
    c->status = MATRIX_SKIPPED;
    snprintf(c->reason, sizeof c->reason, "%s", why);
    char dir[PATH_MAX];
    matrix_cell_dir(m->out_dir, c, dir, sizeof dir);
    mkdir(dir, 0755);
    matrix_cell_save(m->out_dir, c, NULL);
}

/* Start cells while slots are free, until all ran; then wait for the last. */
static int run_cells(matrix_ctx *m, fl_error *err)
{
    size_t next = 0;
    int rc = 0;
    /* The KVM probe (up to 20 s the first time) before any cell starts, so
     * it never holds up the reaping of running cells. */
    for (size_t i = 0; i < m->plan.ncells && !m->kvm_checked; i++)
        if (strcmp(m->plan.cells[i].accel, "kvm") == 0)
            kvm_usable(m, &m->plan.cells[i]);
    while ((next < m->plan.ncells && !cmd_stop_signal && rc == 0) || m->nrun > 0) {
        while (next < m->plan.ncells && m->nrun < m->jobs && !cmd_stop_signal && rc == 0) {
            matrix_cell *c = &m->plan.cells[next];
            char why[300];
            if (strcmp(c->accel, "kvm") == 0 && !kvm_usable(m, c)) {
                snprintf(why, sizeof why, "KVM unusable here: %s", m->kvm_why);
                skip_cell(m, c, why);
            } else if (access(c->kernel, R_OK) != 0) {
                snprintf(why, sizeof why, "no kernel at %s: %s", c->kernel, strerror(errno));
                c->status = MATRIX_ERROR;
                snprintf(c->reason, sizeof c->reason, "%s", why);
                matrix_cell_save(m->out_dir, c, NULL);
            } else {
                rc = start_cell(m, next, err);
            }
            next++;
        }
        poll_children(m);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return rc;
}

static int prepare(matrix_ctx *m, fl_error *err)
{
    const cli_options *o = m->o;
    int k, n;
    if (matrix_parse_shard(o->shard, &k, &n, err) < 0)
        return -1;
    char kbuf[PATH_MAX];
    const char *dflt[1] = { cmd_guest_file(NULL, "FAULTLINE_KERNEL", "vmlinux", kbuf, sizeof kbuf) };
    const char *const *kernels = o->kernels.n ? o->kernels.v : dflt;
    if (matrix_plan_make(&m->plan, o->scenarios, kernels, o->kernels.n ? o->kernels.n : 1, o->accels, k, n,
                         cmd_repro_supports, err) < 0)
        return -1;
    if (o->out_dir) {
        snprintf(m->out_dir, sizeof m->out_dir, "%s", o->out_dir);
        if (mkdir(m->out_dir, 0755) != 0 && errno != EEXIST)
            return fl_fail(err, FL_EUSAGE, "cannot create the output directory %s: %s", m->out_dir, strerror(errno));
    } else {
        snprintf(m->out_dir, sizeof m->out_dir, "faultline-matrix-XXXXXX");
        if (!mkdtemp(m->out_dir))
            return fl_fail(err, FL_EIO, "cannot create an output directory here: %s", strerror(errno));
    }
    ssize_t len = readlink("/proc/self/exe", m->self, sizeof m->self - 1);
    if (len <= 0)
        return fl_fail(err, FL_EIO, "cannot find faultline's own binary (/proc/self/exe): %s", strerror(errno));
    m->self[len] = '\0';
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m->jobs = o->jobs ? o->jobs : (cores > 0 ? (int)cores : 1);
    m->run = calloc((size_t)m->jobs, sizeof *m->run);
    return m->run ? 0 : fl_fail(err, FL_EIO, "out of memory");
}

/* Table on stdout, JUnit if asked; the exit status of the whole. */
static int conclude(const cli_options *o, matrix_plan *p, const char *where)
{
    fl_error err = { 0 };
    matrix_write_table(stdout, p);
    if (where)
        printf("each cell's report and log: %s/CELL/report.jsonl, log.txt\n", where);
    if (o->junit && matrix_write_junit(o->junit, p, &err) < 0) {
        fprintf(stderr, "faultline: %s\n", err.msg);
        return CMD_EXIT_ENV;
    }
    int pa, fa, sk;
    int rc = matrix_tally(p, &pa, &fa, &sk) ? CMD_EXIT_CHECKS : 0;
    fl_error sig = { 0 };
    if (cmd_stopped_by_signal(&sig)) {
        fprintf(stderr, "faultline: matrix: %s; the table shows what finished\n", sig.msg);
        return 128 + cmd_stop_signal;
    }
    return rc;
}

static int merge(const cli_options *o)
{
    fl_error err = { 0 };
    matrix_plan p;
    if (matrix_load_results(&p, o->operands, o->noperands, &err) < 0) {
        fprintf(stderr, "faultline: matrix --merge: %s\n", err.msg);
        return CMD_EXIT_ENV;
    }
    printf("faultline matrix: %zu cells merged from %d director%s\n", p.ncells, o->noperands,
           o->noperands == 1 ? "y" : "ies");
    int rc = conclude(o, &p, NULL);
    matrix_plan_free(&p);
    return rc;
}

int cmd_matrix(const cli_options *o)
{
    if (o->merge != (o->noperands > 0)) {
        fprintf(stderr, "faultline: matrix: %s\n", o->merge ? "--merge needs the shards' directories as arguments"
                                                            : "directories are arguments of --merge only");
        return CMD_EXIT_ENV;
    }
    if (o->merge)
        return merge(o);
    static matrix_ctx m;
    memset(&m, 0, sizeof m);
    m.o = o;
    fl_error err = { 0 };
    int rc = prepare(&m, &err);
    if (rc == 0) {
        printf("faultline matrix: %zu cells%s%s%s, %d at a time, results in %s\n", m.plan.ncells,
               o->shard ? " (shard " : "", o->shard ? o->shard : "", o->shard ? ")" : "", m.jobs, m.out_dir);
        fflush(stdout);
        rc = run_cells(&m, &err);
    }
    int status = CMD_EXIT_ENV;
    if (rc < 0)
        fprintf(stderr, "faultline: matrix: %s\n", err.msg);
    else
        status = conclude(o, &m.plan, m.out_dir);
    matrix_plan_free(&m.plan);
    free(m.run);
    return status;
}
