/* Step round trip: the library (tgt_step + rip from the per-stop `g`) against
 * a minimal raw RSP loop written by hand on the same socket, same QEMU,
 * alternating rounds. Prints steps/s for each and the ratio. A program, not a
 * test: it never fails on slowness. */
#include "faultline/target.h"
#include "../tests/qemu_guest.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STEPS 3000
#define ROUNDS 3
/* The guest's code differs from step to step (and the machine is shared),
 * so each round interleaves the two in blocks of this many steps. */
#define BLOCK 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#include "raw_rsp.h"

static double raw_round(raw *r, size_t rip_off, uint64_t *last_rip, int steps)
{
    double t0 = now_s();
    for (int i = 0; i < steps; i++) {
        const char *p;
        size_t n;
        if (raw_send(r, "vCont;s:p1.1") < 0 || raw_reply(r, &p, &n) < 0 || n < 3 || p[0] != 'T')
            return -1;
        if (raw_send(r, "g") < 0 || raw_reply(r, &p, &n) < 0 || n < 2 * (rip_off + 8))
            return -1;
        uint64_t rip = 0;
        for (int b = 7; b >= 0; b--)
            rip = rip << 8 | (uint64_t)(hv(p[2 * (rip_off + b)]) << 4 | hv(p[2 * (rip_off + b) + 1]));
        *last_rip = rip;
    }
    return now_s() - t0;
}

static double lib_round(tgt *t, const tgt_reg *rip_reg, uint64_t *last_rip, int steps, fl_error *e)
{
    double t0 = now_s();
    for (int i = 0; i < steps; i++) {
        tgt_stop s;
        if (tgt_step(t, &s, 5000, e) < 0 || tgt_reg_read_r(t, rip_reg, last_rip, e) < 0)
            return -1;
    }
    return now_s() - t0;
}

int main(void)
{
    const char *kernel = guest_kernel();
    if (!kernel) {
        printf("bench_step: no vmlinux (set FAULTLINE_KERNEL); skipped\n");
        return 0;
    }
    uint64_t sk = guest_symbol(kernel, "start_kernel");
    guest g;
    char why[256];
    if (!sk || guest_start(&g, kernel, why, sizeof why) < 0) {
        printf("bench_step: cannot start QEMU or find start_kernel (%s); skipped\n", sk ? why : "no symbol");
        return 0;
    }
    tgt *t = NULL;
    fl_error e = {0};
    tgt_stop s;
    int status = 0;
    if (tgt_connect(&t, g.address, 10000, &e) < 0 || tgt_bp_insert(t, TGT_BP_HW, sk, 1, &e) < 0 ||
        tgt_continue(t, &s, 60000, &e) < 0 || tgt_bp_remove(t, TGT_BP_HW, sk, 1, &e) < 0) {
        printf("bench_step: setup failed: %s\n", e.msg);
        status = 1;
        goto out;
    }
    const tgt_reg *rip = tgt_regmap_find(tgt_regs(t), "rip");
    raw r = {.fd = tgt_fd(t)};
    double lib_best = 0, raw_best = 0, lib_sum = 0, raw_sum = 0;
    uint64_t lrip = 0, rrip = 0;
    printf("bench_step: %d steps each per round from start_kernel (0x%" PRIx64 "), TCG, %d rounds, alternating every %d steps\n",
           STEPS, sk, ROUNDS, BLOCK);
    for (int round = 0; round < ROUNDS; round++) {
        double lt = 0, rt = 0;
        for (int blk = 0; blk < STEPS / BLOCK; blk++) {
            double x = lib_round(t, rip, &lrip, BLOCK, &e);
            if (x < 0) {
                printf("bench_step: library round failed: %s\n", e.msg);
                status = 1;
                goto out;
            }
            double y = raw_round(&r, rip->offset, &rrip, BLOCK);
            tgt_invalidate(t);  /* the raw loop moved the guest behind the library */
            if (y < 0) {
                printf("bench_step: raw round failed\n");
                status = 1;
                goto out;
            }
            lt += x;
            rt += y;
        }
        double l = STEPS / lt, rr = STEPS / rt;
        printf("  round %d: library %8.0f steps/s   raw %8.0f steps/s   ratio %.3f  (rip 0x%" PRIx64 ")\n",
               round + 1, l, rr, l / rr, rrip);
        lib_sum += l;
        raw_sum += rr;
        lib_best = l > lib_best ? l : lib_best;
        raw_best = rr > raw_best ? rr : raw_best;
    }
    printf("library: %.0f steps/s (mean), raw loop: %.0f steps/s (mean); library/raw = %.3f (best-of: %.3f); "
           "target >= 0.90\n", lib_sum / ROUNDS, raw_sum / ROUNDS, lib_sum / raw_sum, lib_best / raw_best);
out:
    tgt_kill(t);
    guest_stop(&g);
    return status;
}
