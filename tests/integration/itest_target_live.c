/* Live: the target layer against a real QEMU 7.2 started halted (TCG).
 * Registers by name at reset, memory, a hardware breakpoint at start_kernel
 * hit with rip exactly there, one step (off the breakpoint: the quirk), and
 * a clear error for an unmapped address. */
#include "check.h"
#include "faultline/target.h"
#include "qemu_guest.h"

#include <signal.h>
#include <time.h>

/* Cancellation as the CLI does it: a signal handler sets a flag. */
static volatile sig_atomic_t cancel_flag;
static int cancel_hook(void *ctx)
{
    (void)ctx;
    return cancel_flag;
}
static void on_alarm(int sig)
{
    (void)sig;
    cancel_flag = 1;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
    const char *kernel = guest_kernel();
    if (!kernel) {
        printf("itest_target_live: skipped: no vmlinux (set FAULTLINE_KERNEL or run via tests/run.sh)\n");
        return 77;
    }
    uint64_t sk = guest_symbol(kernel, "start_kernel");
    CHECK(sk != 0);
    guest g;
    char why[256] = "";
    if (guest_start(&g, kernel, why, sizeof why) < 0) {
        fprintf(stderr, "cannot start QEMU: %s\n", why);
        CHECK(0);
        return check_summary("itest_target_live");
    }
    tgt *t = NULL;
    fl_error e = {0};
    int rc = tgt_connect(&t, g.address, 10000, &e);
    CHECK(rc == 0);
    if (rc < 0) {
        fprintf(stderr, "connect: %s\n", e.msg);
        guest_stop(&g);
        return check_summary("itest_target_live");
    }
    const tgt_regmap *m = tgt_regs(t);
    CHECK_STR(m->arch, "i386:x86-64");
    CHECK(m->g_size == 608);
    CHECK(tgt_packet_size(t) == 4096);
    const tgt_reg *r = tgt_regmap_find(m, "cr2");
    CHECK(r && r->regnum == 28);

    /* x86 reset state. */
    uint64_t v;
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0);
    CHECK_EQ_U64(v, 0xfff0);
    CHECK(tgt_reg_read(t, "cs", &v, &e) == 0);
    CHECK_EQ_U64(v, 0xf000);
    CHECK(tgt_reg_read(t, "eflags", &v, &e) == 0);
    CHECK_EQ_U64(v, 0x2);
    CHECK(tgt_reg_read(t, "cr0", &v, &e) == 0);
    CHECK((v & 1) == 0);  /* real mode: PE clear */
    /* Reset vector at 0xffff0 (cs base 0xf0000 in the BIOS shadow): a far jump. */
    uint8_t b[16];
    CHECK(tgt_mem_read(t, 0xffff0, b, sizeof b, &e) == 0);
    CHECK_EQ_U64(b[0], 0xea);

    /* Hardware breakpoint at start_kernel, hit under TCG. */
    CHECK(tgt_bp_insert(t, TGT_BP_HW, sk, 1, &e) == 0);
    tgt_stop s;
    rc = tgt_continue(t, &s, 60000, &e);
    CHECK(rc == 0);
    if (rc < 0)
        fprintf(stderr, "continue: %s\n", e.msg);
    CHECK(s.kind == TGT_STOP_SIGNAL && s.code == 5);
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0);
    CHECK_EQ_U64(v, sk);
    CHECK(tgt_reg_read(t, "cs", &v, &e) == 0);
    CHECK_EQ_U64(v, 0x10);
    CHECK(tgt_reg_read(t, "cr0", &v, &e) == 0);
    CHECK((v & 1) && (v & 0x80000000u));  /* PE and PG */
    CHECK(tgt_reg_read(t, "cr2", &v, &e) == 0);
    CHECK(tgt_reg_read(t, "eflags", &v, &e) == 0);
    CHECK(v & 0x2);
    CHECK(tgt_reg_read(t, "gs_base", &v, &e) == 0);
    CHECK(tgt_reg_read(t, "k_gs_base", &v, &e) == 0);
    /* Kernel text at start_kernel is readable and the cache is coherent. */
    uint8_t code[16], again[16];
    CHECK(tgt_mem_read(t, sk, code, sizeof code, &e) == 0);
    CHECK(tgt_mem_read(t, sk, again, sizeof again, &e) == 0 && memcmp(code, again, 16) == 0);
    uint64_t rsp;
    CHECK(tgt_reg_read(t, "rsp", &rsp, &e) == 0 && tgt_read_u64(t, rsp, &v, &e) == 0);

    /* One step from the breakpoint: rip moves (remove/step/re-insert). */
    rc = tgt_step(t, &s, 5000, &e);
    CHECK(rc == 0);
    if (rc < 0)
        fprintf(stderr, "step: %s\n", e.msg);
    CHECK(tgt_reg_read(t, "rip", &v, &e) == 0);
    CHECK(v != sk && v > sk && v < sk + 16);
    for (int i = 0; i < 20; i++)
        CHECK(tgt_step(t, &s, 5000, &e) == 0);

    /* Unmapped (non-canonical) address: FL_EIO naming it. */
    fl_error_clear(&e);
    CHECK(tgt_read_u64(t, 0xdead000000000000ULL, &v, &e) == -1 && e.code == FL_EIO && strstr(e.msg, "0xdead"));

    /* qemu-specific query passes through. */
    char reply[128];
    CHECK(tgt_query(t, "qqemu.sstepbits", reply, sizeof reply, &e) == 0 && strstr(reply, "ENABLE"));

    /* Interrupt a running guest. */
    CHECK(tgt_bp_remove(t, TGT_BP_HW, sk, 1, &e) == 0);
    CHECK(tgt_resume(t, &e) == 0);
    CHECK(tgt_poll_stop(t, &s, 200, &e) == 0);
    CHECK(tgt_interrupt(t, &s, 5000, &e) == 0 && s.kind == TGT_STOP_SIGNAL);
    CHECK(!tgt_running(t));

    /* Issue 16: a signal 200 ms into a 60 s continue ends it with FL_EINTR
     * within a second; with the hook cleared the guest is interrupted. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    tgt_set_cancel(t, cancel_hook, NULL);
    ualarm(200000, 0);
    int64_t t0 = ms_now();
    fl_error_clear(&e);
    CHECK(tgt_continue(t, &s, 60000, &e) == -1 && e.code == FL_EINTR);
    CHECK(ms_now() - t0 < 1200);
    CHECK(tgt_running(t));
    tgt_set_cancel(t, NULL, NULL);
    CHECK(tgt_interrupt(t, &s, 5000, &e) == 0 && !tgt_running(t));

    tgt_kill(t);
    guest_stop(&g);
    return check_summary("itest_target_live");
}
