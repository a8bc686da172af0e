/* Fault injection against the target layer (issue 7), with a scripted fake
 * stub (tests/fakestub.h): silence mid-packet, connection resets at
 * every stage of the connect sequence and later, garbage, bad checksums
 * forever, a stub that never stops after `c`, wrong register sizes in the
 * target description, and `E` replies to every read.
 *
 * Every case asserts the same four things, each a protection of its own:
 *  - the right FL_ code (callers map codes to behaviour: timeout vs closed);
 *  - one clear sentence: non-empty, no newline, and naming what failed;
 *  - bounded time, measured with CLOCK_MONOTONIC: under the call's timeout
 *    plus 2 s (a hang-up must not be waited out as if it were silence: those
 *    cases assert a bound well under the timeout);
 *  - no leak: no file descriptor left open (counted in /proc/self/fd), and no
 *    memory (this program also runs under ASan+UBSan, whose leak checker fails
 *    the run: build/tests-asan/test_faults).
 * The last part runs bin/faultline (FAULTLINE_BIN, from tests/run.sh) against
 * the same fake on a unix socket: exit status 2, one line on stderr, no child
 * process left behind. */
#include "check.h"
#include "fakestub.h"
#include "faultline/rsp.h"
#include "faultline/target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

extern char **environ;

/* QEMU 7.2's target.xml, and a trimmed i386-64bit.xml (as in test_target.c). */
static const char TARGET_XML[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target>"
    "<architecture>i386:x86-64</architecture><xi:include href=\"i386-64bit.xml\"/></target>";
#define CORE_HEAD                                                                                  \
    "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"                       \
    "<feature name=\"org.gnu.gdb.i386.core\">\n"                                                   \
    "  <reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n"                           \
    "  <reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n  <reg name=\"rcx\" bitsize=\"64\"/>\n"  \
    "  <reg name=\"rdx\" bitsize=\"64\"/>\n  <reg name=\"rsi\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"rdi\" bitsize=\"64\"/>\n  <reg name=\"rbp\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"rsp\" bitsize=\"64\"/>\n  <reg name=\"r8\" bitsize=\"64\"/>\n"                  \
    "  <reg name=\"r9\" bitsize=\"64\"/>\n  <reg name=\"r10\" bitsize=\"64\"/>\n"                  \
    "  <reg name=\"r11\" bitsize=\"64\"/>\n  <reg name=\"r12\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"r13\" bitsize=\"64\"/>\n  <reg name=\"r14\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"r15\" bitsize=\"64\"/>\n"
#define CORE_TAIL                                                                                  \
    "  <reg name=\"eflags\" bitsize=\"32\"/>\n"                                                    \
    "  <reg name=\"cs\" bitsize=\"32\"/>\n  <reg name=\"ss\" bitsize=\"32\"/>\n"                   \
    "  <reg name=\"ds\" bitsize=\"32\"/>\n  <reg name=\"es\" bitsize=\"32\"/>\n"                   \
    "  <reg name=\"fs\" bitsize=\"32\"/>\n  <reg name=\"gs\" bitsize=\"32\"/>\n"                   \
    "  <reg name=\"fs_base\" bitsize=\"64\"/>\n  <reg name=\"gs_base\" bitsize=\"64\"/>\n"         \
    "  <reg name=\"k_gs_base\" bitsize=\"64\"/>\n"                                                 \
    "  <reg name=\"cr0\" bitsize=\"64\"/>\n  <reg name=\"cr2\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"cr3\" bitsize=\"64\"/>\n  <reg name=\"cr4\" bitsize=\"64\"/>\n"                 \
    "  <reg name=\"cr8\" bitsize=\"64\"/>\n  <reg name=\"efer\" bitsize=\"64\"/>\n"                \
    "</feature>\n"
static const char CORE_XML[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n" CORE_TAIL;
/* 16 x 8 + rip 8 + 7 x 4 + 3 x 8 + 6 x 8 */
#define G_SIZE 236

#define CONNECT_STEPS_X(core)                                                                      \
    {FS_RECV, "qSupported:*", 0, NULL},                                                           \
    {FS_SEND, "PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+", 0, NULL},     \
    {FS_XFER, "target.xml", 0, TARGET_XML},                                                       \
    {FS_XFER, "i386-64bit.xml", 0, core},                                                         \
    {FS_RECV, "vCont?", 0, NULL},                                                                 \
    {FS_SEND, "vCont;c;C;s;S", 0, NULL},                                                          \
    {FS_RECV, "?", 0, NULL},                                                                      \
    {FS_SEND, "T05thread:p01.01;", 0, NULL}
#define CONNECT_STEPS CONNECT_STEPS_X(CORE_XML)
#define END {FS_END, NULL, 0, NULL}

static char G_OK[2 * G_SIZE + 1];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *de; (de = readdir(d));)
        n++;
    closedir(d);
    return n;
}

/* The case being run, for failure messages. */
static const char *cur;
static int fds_before;

/* CHECK that also names the case; cond is evaluated once. */
#define EXPECT(cond) do { \
    bool ok_ = (cond); \
    if (!ok_) fprintf(stderr, "  in case \"%s\"\n", cur); \
    CHECK(ok_ && #cond); \
} while (0)

static void begin(const char *name)
{
    cur = name;
    fds_before = fd_count();
}

/* One clear sentence naming what failed, of the right code, in bounded time. */
static void expect_error(const fl_error *e, enum fl_errcode code, const char *mentions, int64_t elapsed,
                         int64_t bound_ms)
{
    if (e->code != code)
        fprintf(stderr, "%s: code %s, expected %s: %s\n", cur, fl_errcode_name(e->code), fl_errcode_name(code),
                e->msg);
    EXPECT(e->code == code);
    EXPECT(e->msg[0] != '\0');
    EXPECT(strchr(e->msg, '\n') == NULL);
    if (mentions && !strstr(e->msg, mentions))
        fprintf(stderr, "%s: message does not mention \"%s\": %s\n", cur, mentions, e->msg);
    EXPECT(mentions == NULL || strstr(e->msg, mentions) != NULL);
    if (elapsed >= bound_ms)
        fprintf(stderr, "%s: took %lld ms, bound %lld ms\n", cur, (long long)elapsed, (long long)bound_ms);
    EXPECT(elapsed < bound_ms);
}

/* After the case: the fake ended cleanly and no descriptor leaked. */
static void end(fakestub *f)
{
    int64_t t0 = now_ms();
    EXPECT(fakestub_join(f) == 0);
    EXPECT(now_ms() - t0 < 5000);
    int after = fd_count();
    if (after != fds_before)
        fprintf(stderr, "%s: %d file descriptors before, %d after\n", cur, fds_before, after);
    EXPECT(after == fds_before);
}

/* Connect through a script that must make the connect fail. */
static void connect_fails(const char *name, const fs_step *script, int timeout_ms, enum fl_errcode code,
                          const char *mentions, int64_t bound_ms)
{
    begin(name);
    fakestub f;
    int fd = fakestub_start(&f, script);
    tgt *t = NULL;
    fl_error e = {0};
    int64_t t0 = now_ms();
    int rc = tgt_connect_fd(&t, fd, timeout_ms, &e);
    int64_t el = now_ms() - t0;
    EXPECT(rc == -1 && t == NULL);
    expect_error(&e, code, mentions, el, bound_ms);
    end(&f);
}

/* Connect (must succeed), for cases that fail later. */
static tgt *connected(fakestub *f, const fs_step *script, int timeout_ms)
{
    int fd = fakestub_start(f, script);
    tgt *t = NULL;
    fl_error e = {0};
    if (tgt_connect_fd(&t, fd, timeout_ms, &e) < 0)
        fprintf(stderr, "%s: connect failed: %s\n", cur, e.msg);
    EXPECT(t != NULL);
    return t;
}

/* Guards: every wait in rsp/target is bounded by its timeout, and a packet
 * whose first bytes arrived is not waited for forever (rsp keeps partial
 * bytes but still honours the deadline). Remove the poll() deadline in
 * rsp.c:fill and these hang. */
static void test_silence(void)
{
    const fs_step mid_supported[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "$PacketSize=1000;qXfer:feat", 0, NULL},
        {FS_IGNORE_FOREVER, NULL, 0, NULL}, END,
    };
    connect_fails("silence mid-packet in the qSupported reply", mid_supported, 1000, FL_ETIMEOUT, "qSupported", 1000 + 2000);

    const fs_step mid_xfer[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_RECV, "qXfer:features:read:target.xml:*", 0, NULL}, {FS_RAW, "$l<?xml version", 0, NULL},
        {FS_IGNORE_FOREVER, NULL, 0, NULL}, END,
    };
    connect_fails("silence mid-packet in a qXfer reply", mid_xfer, 1000, FL_ETIMEOUT, "target description", 1000 + 2000);

    const fs_step silent_ack[] = {{FS_IGNORE_FOREVER, NULL, 0, NULL}, END};
    connect_fails("silence: not even an ack for qSupported", silent_ack, 1000, FL_ETIMEOUT, "qSupported", 1000 + 2000);

    /* Silence mid-way through a `g` reply. */
    {
        begin("silence mid-packet in the g reply");
        const fs_step s[] = {
            CONNECT_STEPS, {FS_RECV, "g", 0, NULL}, {FS_RAW, "$0000000000", 0, NULL}, {FS_IGNORE_FOREVER, NULL, 0, NULL}, END,
        };
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            uint64_t v;
            int64_t t0 = now_ms();
            EXPECT(tgt_reg_read(t, "rip", &v, &e) == -1);
            expect_error(&e, FL_ETIMEOUT, "reading registers", now_ms() - t0, 1000 + 2000);
            tgt_close(t);
        }
        end(&f);
    }
    /* Silence mid-way through a stop reply after a step: timed out, then the
     * interrupt is sent, and its stop never comes either. */
    {
        begin("silence mid-packet in a stop reply");
        const fs_step s[] = {
            CONNECT_STEPS, {FS_RECV, "vCont;s:p1.1", 0, NULL}, {FS_RAW, "$T05thr", 0, NULL},
            {FS_INT, NULL, 0, NULL}, {FS_IGNORE_FOREVER, NULL, 0, NULL}, END,
        };
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_step(t, &st, 500, &e) == -1);
            /* step timeout + the interrupt's wait (the op timeout) + margin */
            expect_error(&e, FL_ETIMEOUT, "single step", now_ms() - t0, 500 + 1000 + 2000);
            tgt_close(t);
        }
        end(&f);
    }
}

/* Guards: a peer that goes away is FL_ECLOSED at once (not mistaken for
 * silence and waited out, not a crash on EPIPE/ECONNRESET: SIGPIPE would kill
 * this program), with the stage in the sentence. Timeout 3000, bound 2000. */
static void test_resets(void)
{
    const fs_step at_supported[] = {{FS_RESET, NULL, 0, NULL}, END};
    connect_fails("reset instead of the qSupported reply", at_supported, 3000, FL_ECLOSED, "qSupported", 2000);

    const fs_step after_supported[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    connect_fails("reset after qSupported", after_supported, 3000, FL_ECLOSED, "target description", 2000);

    const fs_step during_xfer[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=100;qXfer:features:read+", 0, NULL},
        {FS_RECV, "qXfer:features:read:target.xml:0,*", 0, NULL}, {FS_SEND, "m<?xml version=\"1.0\"?>", 0, NULL},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    connect_fails("reset during qXfer (after the first chunk)", during_xfer, 3000, FL_ECLOSED, "target description", 2000);

    const fs_step closed_mid_packet[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "$PacketSize=10", 0, NULL}, {FS_CLOSE, NULL, 0, NULL}, END,
    };
    connect_fails("hang-up mid-packet", closed_mid_packet, 3000, FL_ECLOSED, "qSupported", 2000);

    const fs_step at_vcont[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_XFER, "target.xml", 0, TARGET_XML}, {FS_XFER, "i386-64bit.xml", 0, CORE_XML},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    connect_fails("reset at vCont?", at_vcont, 3000, FL_ECLOSED, "vCont?", 2000);

    const fs_step at_question[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_XFER, "target.xml", 0, TARGET_XML}, {FS_XFER, "i386-64bit.xml", 0, CORE_XML},
        {FS_RECV, "vCont?", 0, NULL}, {FS_SEND, "vCont;c;C;s;S", 0, NULL},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    connect_fails("reset instead of the reply to ?", at_question, 3000, FL_ECLOSED, "stop", 2000);

    /* After `?`: connected; the next read finds the peer gone. */
    {
        begin("reset after ? (at the first g)");
        const fs_step s[] = {CONNECT_STEPS, {FS_RESET, NULL, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 3000);
        if (t) {
            fl_error e = {0};
            uint64_t v;
            int64_t t0 = now_ms();
            EXPECT(tgt_reg_read(t, "rip", &v, &e) == -1);
            expect_error(&e, FL_ECLOSED, "reading registers", now_ms() - t0, 2000);
            tgt_close(t);
        }
        end(&f);
    }
    /* While the guest runs: the stub vanishes (QEMU killed). */
    {
        begin("reset while the guest runs (after vCont;c)");
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "vCont;c", 0, NULL}, {FS_SLEEP, NULL, 100, NULL},
                             {FS_CLOSE, NULL, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 3000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 10000, &e) == -1);
            expect_error(&e, FL_ECLOSED, "continue", now_ms() - t0, 2000);
            tgt_close(t);  /* must not hang or write into the dead socket fatally */
        }
        end(&f);
    }
}

/* Guards: bytes that are not packets are refused with FL_EPROTO showing
 * them (rsp.c:junk), and a '$' that never ends does not grow a buffer
 * without bound (rsp.c:fill's RAW_CAP check). */
static void test_garbage(void)
{
    const fs_step noise[] = {{FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "\x01\x02\xffnoise", 0, NULL}, END};
    connect_fails("garbage bytes instead of a reply", noise, 2000, FL_EPROTO, "noise", 2000 + 2000);

    const fs_step endless[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "$", 0, NULL},
        {FS_FLOOD, "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789", 4u << 20, NULL}, END,
    };
    connect_fails("a packet that never ends (4 MiB without '#')", endless, 2000, FL_EPROTO, "largest accepted packet",
                  2000 + 2000);

    const fs_step hashless[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_FLOOD, "}}}}}}}}****####$$$$", 1u << 20, NULL}, END,
    };
    {
        /* Escape/RLE/frame characters in a flood: any refusal is fine, but it
         * must be FL_EPROTO, bounded and clean (ASan watches the decoder). */
        begin("a flood of frame characters");
        fakestub f;
        int fd = fakestub_start(&f, hashless);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 2000, &e) == -1);
        expect_error(&e, FL_EPROTO, NULL, now_ms() - t0, 2000 + 2000);
        end(&f);
    }
    {
        begin("garbage instead of the g reply");
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "g", 0, NULL}, {FS_RAW, "HELLO", 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            uint64_t v;
            int64_t t0 = now_ms();
            EXPECT(tgt_reg_read(t, "rip", &v, &e) == -1);
            expect_error(&e, FL_EPROTO, "HELLO", now_ms() - t0, 1000 + 2000);
            tgt_close(t);
        }
        end(&f);
    }
    {
        begin("a stop reply that does not parse");
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "vCont;c", 0, NULL}, {FS_SEND, "T5x;;", 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 1000, &e) == -1);
            expect_error(&e, FL_EPROTO, "stop reply", now_ms() - t0, 1000 + 2000);
            tgt_close(t);
        }
        end(&f);
    }
}

/* Guards: bad checksums and NAKs are retried RSP_MAX_RETRIES times, never
 * forever (rsp.c: rsp_recv's `bad` counter, retransmit's `retries`); in
 * no-ack mode a bad checksum is an immediate FL_EPROTO. */
static void test_bad_checksums(void)
{
    size_t naks;
    {
        begin("bad checksums forever");
        const fs_step s[] = {{FS_RECV, "qSupported:*", 0, NULL}, {FS_BADSUM_FOREVER, "PacketSize=1000", 0, NULL}, END};
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "checksum", now_ms() - t0, 1000 + 2000);
        end(&f);
        naks = 0;
        for (const char *p = f.log; (p = strstr(p, "<NAK>")); p++)
            naks++;
        if (naks != RSP_MAX_RETRIES)
            fprintf(stderr, "%s: %zu NAKs sent, expected %d\n", cur, naks, RSP_MAX_RETRIES);
        EXPECT(naks == RSP_MAX_RETRIES);
    }
    {
        begin("the stub NAKs every packet forever");
        const fs_step s[] = {{FS_NAK_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "rejected", now_ms() - t0, 1000 + 2000);
        end(&f);
        size_t sends = 0;
        for (const char *p = f.log; (p = strstr(p, "qSupported:")); p++)
            sends++;
        EXPECT(sends == RSP_MAX_RETRIES + 1);
    }
    {
        begin("a bad checksum in no-ack mode");
        const fs_step s[] = {
            {FS_RECV, "qSupported:*", 0, NULL},
            {FS_SEND, "PacketSize=1000;qXfer:features:read+;QStartNoAckMode+", 0, NULL},
            {FS_RECV, "QStartNoAckMode", 0, NULL}, {FS_SEND, "OK", 0, NULL},
            {FS_RECV, "qXfer:features:read:target.xml:*", 0, NULL}, {FS_RAW, "$l<target/>#00", 0, NULL},
            {FS_SLEEP, NULL, 200, NULL}, END,
        };
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "checksum", now_ms() - t0, 1000 + 2000);
        end(&f);
        EXPECT(strstr(f.log, "<NAK>") == NULL);  /* no '-' in no-ack mode */
    }
}

/* Guards: tgt_continue's timeout: after timeout_ms it sends 0x03, takes the
 * stop, returns FL_ETIMEOUT and leaves the guest stopped and usable; if the
 * stub ignores the interrupt too, it still returns (bounded by the op
 * timeout) instead of waiting forever. */
static void test_never_stops(void)
{
    {
        begin("a stub that never stops after c (answers 0x03)");
        const fs_step s[] = {
            CONNECT_STEPS, {FS_RECV, "vCont;c", 0, NULL}, {FS_INT, NULL, 0, NULL},
            {FS_SEND, "T02thread:p01.01;", 0, NULL},
            {FS_RECV, "g", 0, NULL}, {FS_SEND, G_OK, 0, NULL}, END,
        };
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 1500, &e) == -1);
            int64_t el = now_ms() - t0;
            expect_error(&e, FL_ETIMEOUT, "did not stop within 1500 ms", el, 1500 + 2000);
            EXPECT(el >= 1400);  /* it did wait its timeout */
            EXPECT(!tgt_running(t));
            uint64_t v = 0;
            EXPECT(tgt_reg_read(t, "rip", &v, &e) == 0 && v == 0xffffffff81000000ULL);
            tgt_close(t);
        }
        end(&f);
        EXPECT(strstr(f.log, "vCont;c\n<INT>\n") != NULL);
    }
    {
        begin("a stub that never stops after c (ignores 0x03 too)");
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "vCont;c", 0, NULL}, {FS_IGNORE_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 1500, &e) == -1);
            /* the timeout, then the interrupt's wait (op timeout 1000) */
            expect_error(&e, FL_ETIMEOUT, "interrupting it failed", now_ms() - t0, 1500 + 1000 + 2000);
            t0 = now_ms();
            tgt_close(t);
            EXPECT(now_ms() - t0 < 2000);
        }
        end(&f);
        EXPECT(strstr(f.log, "<INT>") != NULL);
    }
    {
        begin("interrupt that is never answered (tgt_interrupt)");
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "vCont;c", 0, NULL}, {FS_IGNORE_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            tgt_stop st;
            EXPECT(tgt_resume(t, &e) == 0);
            int64_t t0 = now_ms();
            EXPECT(tgt_interrupt(t, &st, 800, &e) == -1);
            expect_error(&e, FL_ETIMEOUT, "interrupt", now_ms() - t0, 800 + 2000);
            t0 = now_ms();
            tgt_kill(t);  /* running, unanswered: must still return */
            EXPECT(now_ms() - t0 < 1000 + 2000);
        }
        end(&f);
    }
}

/* Guards: the description's sizes are checked before they are used as
 * offsets into `g` (tdesc.c bitsize check; target.c's rip size check; the
 * length check in ensure_g), so a lying stub cannot make us read past a
 * buffer (ASan) or take a truncated PC. */
static void test_register_sizes(void)
{
    static const char rip12[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"12\"/>\n" CORE_TAIL;
    static const char rip0[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"0\"/>\n" CORE_TAIL;
    static const char ripneg[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"-64\"/>\n" CORE_TAIL;
    static const char ripjunk[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"64bits\"/>\n" CORE_TAIL;
    static const char riphuge[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"18446744073709551680\"/>\n" CORE_TAIL;
    static const char rip128[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"128\"/>\n" CORE_TAIL;
    static const char rip32[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"32\"/>\n" CORE_TAIL;
    static const char norip[] = CORE_HEAD CORE_TAIL;
    const struct {
        const char *name, *xml, *mentions;
    } cases[] = {
        {"rip bitsize 12", rip12, "bitsize"},
        {"rip bitsize 0", rip0, "bitsize"},
        {"rip bitsize -64", ripneg, "bitsize"},
        {"rip bitsize 64bits", ripjunk, "bitsize"},
        {"rip bitsize 2^64+64", riphuge, "bitsize"},
        {"rip bitsize 128", rip128, "rip"},
        /* An x86-64 description whose rip is 32 bits would make every PC
         * and address silently truncated: refuse it. */
        {"rip bitsize 32 in an i386:x86-64 description", rip32, "rip"},
        {"no rip at all", norip, "rip"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const fs_step s[] = {
            {FS_RECV, "qSupported:*", 0, NULL},
            {FS_SEND, "PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+", 0, NULL},
            {FS_XFER, "target.xml", 0, TARGET_XML}, {FS_XFER, "i386-64bit.xml", 0, cases[i].xml},
            /* If the description is (wrongly) accepted, vCont? gets no
             * answer: the connect then fails with FL_ETIMEOUT, not FL_EPROTO. */
            END,
        };
        begin(cases[i].name);
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        if (e.code == FL_ETIMEOUT)
            fprintf(stderr, "%s: the description was accepted (the connect went on to vCont?)\n", cur);
        expect_error(&e, FL_EPROTO, cases[i].mentions, now_ms() - t0, 1000 + 2000);
        end(&f);
    }

    /* `g` shorter than the description, odd, or not hex. */
    static char g_short[2 * 100 + 1], g_odd[2 * G_SIZE], g_nonhex[2 * G_SIZE + 1];
    memset(g_short, '0', sizeof g_short - 1);
    memcpy(g_odd, G_OK, sizeof g_odd - 1);
    g_odd[sizeof g_odd - 1] = '\0';
    memcpy(g_nonhex, G_OK, sizeof g_nonhex);
    g_nonhex[2 * 130] = 'z';
    const struct {
        const char *name, *g, *mentions;
    } gs[] = {
        {"g reply of 100 bytes for a 236-byte description", g_short, "(g)"},
        {"g reply one hex digit short", g_odd, "(g)"},
        {"g reply with a non-hex digit", g_nonhex, "(g)"},
        {"empty g reply", "", "(g)"},
    };
    for (size_t i = 0; i < sizeof gs / sizeof *gs; i++) {
        begin(gs[i].name);
        const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "g", 0, NULL}, {FS_SEND, gs[i].g, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            uint64_t v;
            int64_t t0 = now_ms();
            EXPECT(tgt_reg_read(t, "efer", &v, &e) == -1);
            expect_error(&e, FL_EPROTO, gs[i].mentions, now_ms() - t0, 1000 + 2000);
            tgt_close(t);
        }
        end(&f);
    }
}

/* Guards: an `E` reply is an error to the caller, never data: registers
 * (g), memory (m, cached and direct), register writes (P), memory writes
 * (M), breakpoints (Z), resume, and each read of the connect sequence. */
static void test_e_replies(void)
{
    {
        begin("E to every packet from the first");
        const fs_step s[] = {{FS_E_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "qSupported", now_ms() - t0, 1000 + 2000);
        end(&f);
    }
    {
        begin("E to the qXfer of target.xml");
        const fs_step s[] = {
            {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
            {FS_E_FOREVER, NULL, 0, NULL}, END,
        };
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "target description", now_ms() - t0, 1000 + 2000);
        end(&f);
    }
    {
        begin("E to ?");
        const fs_step s[] = {
            {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
            {FS_XFER, "target.xml", 0, TARGET_XML}, {FS_XFER, "i386-64bit.xml", 0, CORE_XML},
            {FS_RECV, "vCont?", 0, NULL}, {FS_SEND, "vCont;c;C;s;S", 0, NULL},
            {FS_E_FOREVER, NULL, 0, NULL}, END,
        };
        fakestub f;
        int fd = fakestub_start(&f, s);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd(&t, fd, 1000, &e) == -1);
        expect_error(&e, FL_EPROTO, "E14", now_ms() - t0, 1000 + 2000);
        end(&f);
    }
    {
        begin("E to every read after connect (g, m, P, M, Z, vCont;c)");
        const fs_step s[] = {CONNECT_STEPS, {FS_E_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            fl_error e = {0};
            uint64_t v;
            uint8_t buf[4096];
            int64_t t0 = now_ms();
            EXPECT(tgt_reg_read(t, "rip", &v, &e) == -1);
            expect_error(&e, FL_EPROTO, "E14", now_ms() - t0, 1000 + 2000);
            EXPECT(strstr(e.msg, "(g)") != NULL);
            const uint8_t *raw;
            size_t rawlen;
            fl_error_clear(&e);
            EXPECT(tgt_regs_raw(t, &raw, &rawlen, &e) == -1 && e.code == FL_EPROTO);

            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_read_u64(t, 0xffff888000001000ULL, &v, &e) == -1);
            expect_error(&e, FL_EIO, "0xffff888000001000", now_ms() - t0, 1000 + 2000);
            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_mem_read(t, 0xffff888000010000ULL, buf, sizeof buf, &e) == -1);  /* direct path */
            expect_error(&e, FL_EIO, "0xffff888000010000", now_ms() - t0, 1000 + 2000);
            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_mem_read(t, 0xffff8880000200fcULL, buf, 8, &e) == -1);  /* straddles two lines */
            expect_error(&e, FL_EIO, "0xffff8880000200", now_ms() - t0, 1000 + 2000);

            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_reg_write(t, "cr2", 0x1000, &e) == -1);
            expect_error(&e, FL_EPROTO, "cr2", now_ms() - t0, 1000 + 2000);
            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_mem_write(t, 0xffff888000001000ULL, "abcd", 4, &e) == -1);
            expect_error(&e, FL_EIO, "0xffff888000001000", now_ms() - t0, 1000 + 2000);
            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_bp_insert(t, TGT_BP_SW, 0xffffffff81000000ULL, 1, &e) == -1);
            expect_error(&e, FL_EIO, "0xffffffff81000000", now_ms() - t0, 1000 + 2000);
            fl_error_clear(&e);
            EXPECT(tgt_bp_insert(t, TGT_BP_HW, 0xffffffff81000000ULL, 1, &e) == -1);
            expect_error(&e, FL_ENOSLOT, "0xffffffff81000000", 0, 1);

            tgt_stop st;
            fl_error_clear(&e);
            t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 1000, &e) == -1);
            expect_error(&e, FL_EPROTO, "resume", now_ms() - t0, 1000 + 2000);
            EXPECT(!tgt_running(t));
            tgt_close(t);
        }
        end(&f);
    }
}

/* ---- the CLI against the same fake ------------------------------------ */

typedef struct listener {
    char dir[64], path[128];
    int lfd;
    fakestub f;
    const fs_step *script;
    pthread_t th;
    int started;
} listener;

/* Accept one connection (bounded 10 s) and run the fake on it. */
static void *accept_thread(void *arg)
{
    listener *l = arg;
    struct pollfd p = {.fd = l->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    int c = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return NULL;
    memset(&l->f, 0, sizeof l->f);
    l->f.fd = c;
    l->f.script = l->script;
    l->started = 1;
    fs_thread(&l->f);
    return NULL;
}

static int listener_start(listener *l, const fs_step *script)
{
    memset(l, 0, sizeof *l);
    snprintf(l->dir, sizeof l->dir, "/tmp/fl-test-faults-XXXXXX");
    if (!mkdtemp(l->dir))
        return -1;
    snprintf(l->path, sizeof l->path, "%s/gdb.sock", l->dir);
    l->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
    if (l->lfd < 0 || bind(l->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l->lfd, 1) < 0)
        return -1;
    l->script = script;
    return pthread_create(&l->th, NULL, accept_thread, l);
}

static void listener_stop(listener *l)
{
    pthread_join(l->th, NULL);
    close(l->lfd);
    unlink(l->path);
    rmdir(l->dir);
}

/* Children of pid (from /proc/PID/task/PID/children). */
static int children_of(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strspn(buf, " \n") != n;
}

/* Guards, for `faultline capture` against a broken stub: exit status 2
 * (main.c's EXIT_ENV), exactly one line on stderr naming the failure, within
 * the bound, and no child process left (QEMU is not involved in capture, so
 * none may exist at all). */
static void cli_case(const char *bin, const char *name, const fs_step *script, const char *timeout_s,
                     const char *mentions, int64_t bound_ms)
{
    begin(name);
    listener l;
    if (listener_start(&l, script) != 0) {
        fprintf(stderr, "%s: cannot listen: %s\n", name, strerror(errno));
        EXPECT(0);
        return;
    }
    char gdb[160], errpath[160];
    snprintf(gdb, sizeof gdb, "unix:%s", l.path);
    snprintf(errpath, sizeof errpath, "%s/stderr", l.dir);
    const char *kernel = getenv("FAULTLINE_KERNEL");
    const char *argv[] = {bin, "capture", "--gdb", gdb, "--vmlinux", kernel, "--timeout", timeout_s,
                          "--format", "json", "-o", "/dev/null", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int64_t t0 = now_ms();
    int sp = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT(sp == 0);
    int st = -1;
    bool kids = false;
    if (sp == 0) {
        for (;;) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid)
                break;
            if (children_of(pid))
                kids = true;
            if (now_ms() - t0 > bound_ms + 10000) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    int64_t el = now_ms() - t0;
    listener_stop(&l);
    char err[2048] = "";
    FILE *ef = fopen(errpath, "r");
    size_t n = ef ? fread(err, 1, sizeof err - 1, ef) : 0;
    if (ef)
        fclose(ef);
    err[n] = '\0';
    unlink(errpath);
    rmdir(l.dir);
    /* One error sentence; capture's progress line ("attached to ...;
     * waiting up to N s ...", printed once the stations are armed) is not an
     * error and does not count. */
    int lines = 0;
    for (const char *p = err; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!(len > 20 && memmem(p, len, "; waiting up to ", 16)))
            lines++;
        p += len + (nl != NULL);
    }
    bool ok_status = WIFEXITED(st) && WEXITSTATUS(st) == 2;
    if (!ok_status || lines != 1 || !strstr(err, mentions) || el >= bound_ms)
        fprintf(stderr, "%s: status 0x%x, %lld ms (bound %lld), stderr: %s\n", name, (unsigned)st, (long long)el,
                (long long)bound_ms, err);
    EXPECT(ok_status);
    EXPECT(lines == 1);
    EXPECT(strstr(err, mentions) != NULL);
    EXPECT(el < bound_ms);
    EXPECT(!kids);
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Issue 16, item 8: tgt_connect names the address exactly once, whether the
 * socket cannot be reached or the handshake fails (the CLI must not add it
 * again). */
static void test_connect_names_address_once(void)
{
    begin("connect error names the address once (no socket)");
    tgt *t = NULL;
    fl_error e = {0};
    const char *nowhere = "unix:/tmp/fl-test-faults-nonexistent/gdb.sock";
    EXPECT(tgt_connect(&t, nowhere, 1000, &e) == -1);
    EXPECT(occurrences(e.msg, nowhere + 5) == 1);
    begin("connect error names the address once (handshake reset)");
    const fs_step reset[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    listener l;
    if (listener_start(&l, reset) != 0) {
        EXPECT(0);
        return;
    }
    char addr[160];
    snprintf(addr, sizeof addr, "unix:%s", l.path);
    fl_error_clear(&e);
    EXPECT(tgt_connect(&t, addr, 2000, &e) == -1 && e.code == FL_ECLOSED);
    if (occurrences(e.msg, l.path) != 1)
        fprintf(stderr, "%s: %s\n", cur, e.msg);
    EXPECT(occurrences(e.msg, l.path) == 1);
    listener_stop(&l);
}

static void test_cli(void)
{
    const char *bin = getenv("FAULTLINE_BIN");
    const char *kernel = getenv("FAULTLINE_KERNEL");
    if (!bin || !kernel || access(bin, X_OK) != 0 || access(kernel, R_OK) != 0) {
        printf("test_faults: CLI cases skipped (FAULTLINE_BIN/FAULTLINE_KERNEL not set: run via tests/run.sh)\n");
        return;
    }
    const fs_step garbage[] = {{FS_RECV, "qSupported:*", 0, NULL}, {FS_RAW, "garbage!", 0, NULL}, END};
    cli_case(bin, "capture: garbage from the stub", garbage, "5", "garbage!", 5000);
    const fs_step reset[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_RESET, NULL, 0, NULL}, END,
    };
    cli_case(bin, "capture: stub resets during the connect", reset, "5", "target description", 5000);
    const fs_step badsum[] = {{FS_RECV, "qSupported:*", 0, NULL}, {FS_BADSUM_FOREVER, "PacketSize=1000", 0, NULL}, END};
    cli_case(bin, "capture: bad checksums forever", badsum, "5", "checksum", 5000);
    const fs_step eall[] = {{FS_E_FOREVER, NULL, 0, NULL}, END};
    cli_case(bin, "capture: E to everything", eall, "5", "qSupported", 5000);
    static const char rip12[] = CORE_HEAD "  <reg name=\"rip\" bitsize=\"12\"/>\n" CORE_TAIL;
    const fs_step sizes[] = {
        {FS_RECV, "qSupported:*", 0, NULL}, {FS_SEND, "PacketSize=1000;qXfer:features:read+", 0, NULL},
        {FS_XFER, "target.xml", 0, TARGET_XML}, {FS_XFER, "i386-64bit.xml", 0, rip12}, END,
    };
    cli_case(bin, "capture: rip bitsize 12", sizes, "5", "bitsize", 5000);
    /* A stub that answers everything but never stops after c: the capture
     * must end with its --timeout (2 s) and say so. */
    const fs_step never[] = {CONNECT_STEPS, {FS_AUTO, NULL, 0, G_OK}, END};
    cli_case(bin, "capture: the guest never stops (--timeout 2)", never, "2", "within 2000 ms", 2000 + 8000);
    /* Console output while it runs does not extend --timeout (issue 16). */
    const fs_step chatty[] = {CONNECT_STEPS, {FS_AUTO_CONSOLE, NULL, 20, G_OK}, END};
    cli_case(bin, "capture: O packets forever (--timeout 2)", chatty, "2", "within 2000 ms", 2000 + 5000);
}

/* ---- issue 16: deadlines that no packet resets, one connect budget,
 * cancellation, unavailable registers ------------------------------------ */

/* Guards target.c:wait_stop's single deadline: a stub that keeps sending
 * console output (O packets, every 20 ms) after vCont;c must not keep the
 * wait alive. Remove the deadline (pass timeout_ms to every rsp_recv, as
 * before) and this waits the fake's 8 s of O packets out. */
static void test_console_flood(void)
{
    begin("O packets forever after vCont;c");
    const fs_step s[] = {CONNECT_STEPS, {FS_AUTO_CONSOLE, NULL, 20, G_OK}, END};
    fakestub f;
    tgt *t = connected(&f, s, 1000);
    if (t) {
        fl_error e = {0};
        tgt_stop st;
        int64_t t0 = now_ms();
        EXPECT(tgt_continue(t, &st, 1500, &e) == -1);
        int64_t el = now_ms() - t0;
        /* the timeout, then the interrupt's stop (it arrives among O packets) */
        expect_error(&e, FL_ETIMEOUT, "did not stop within 1500 ms", el, 1500 + 1000 + 1000);
        EXPECT(!tgt_running(t));
        tgt_close(t);
    }
    end(&f);
}

/* Guards the connect budget (target.c: xchg's connect_deadline): every
 * packet of the handshake shares it. The stub drips its qSupported reply
 * a byte every 5 ms and serves target.xml in 1-byte chunks 5 ms apart: each
 * packet is well inside the 1000 ms budget, all of them (about 10 s) are
 * not. Give each exchange its own budget again and the connect succeeds
 * after 10 s. */
static void test_slow_connect(void)
{
    const fs_step drip[] = {
        {FS_RECV, "qSupported:*", 0, NULL},
        {FS_DRIP, "PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+", 5, NULL},
        {FS_XFER_SLOW, "target.xml", 5, TARGET_XML}, {FS_XFER_SLOW, "i386-64bit.xml", 5, CORE_XML}, END,
    };
    connect_fails("a stub answering a byte at a time, 1-byte qXfer chunks", drip, 1000, FL_ETIMEOUT,
                  "did not complete within 1000 ms", 1000 + 1000);
}

static volatile int cancel_flag;
static int cancel_hook(void *ctx)
{
    (void)ctx;
    return cancel_flag;
}
static void *cancel_after_200ms(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    cancel_flag = 1;
    return NULL;
}

/* Guards the cancellation hook (rsp.c: wait_fd's 100 ms slices): a stub that
 * never answers, the flag set from another thread after 200 ms, the call
 * returns FL_EINTR well within a second, although its timeout is 10 s. */
static void test_cancel(void)
{
    {
        begin("cancelled while connecting to a silent stub");
        const fs_step s[] = {{FS_IGNORE_FOREVER, NULL, 0, NULL}, END};
        fakestub f;
        int fd = fakestub_start(&f, s);
        cancel_flag = 0;
        pthread_t th;
        pthread_create(&th, NULL, cancel_after_200ms, NULL);
        tgt *t = NULL;
        fl_error e = {0};
        int64_t t0 = now_ms();
        EXPECT(tgt_connect_fd_cancellable(&t, fd, 10000, cancel_hook, NULL, &e) == -1 && t == NULL);
        expect_error(&e, FL_EINTR, "interrupted", now_ms() - t0, 200 + 1000);
        pthread_join(th, NULL);
        end(&f);
    }
    {
        begin("cancelled while the guest runs (stub never stops)");
        const fs_step s[] = {CONNECT_STEPS, {FS_AUTO, NULL, 0, G_OK}, END};
        fakestub f;
        tgt *t = connected(&f, s, 1000);
        if (t) {
            cancel_flag = 0;
            tgt_set_cancel(t, cancel_hook, NULL);
            pthread_t th;
            pthread_create(&th, NULL, cancel_after_200ms, NULL);
            fl_error e = {0};
            tgt_stop st;
            int64_t t0 = now_ms();
            EXPECT(tgt_continue(t, &st, 10000, &e) == -1);
            expect_error(&e, FL_EINTR, "interrupted", now_ms() - t0, 200 + 1000);
            pthread_join(th, NULL);
            EXPECT(tgt_running(t));
            /* Still cancelled: the interrupt's wait returns at once ... */
            EXPECT(tgt_interrupt(t, &st, 5000, &e) == -1 && e.code == FL_EINTR);
            /* ... until the hook is cleared for the clean-up. */
            tgt_set_cancel(t, NULL, NULL);
            EXPECT(tgt_interrupt(t, &st, 1000, &e) == 0 && st.code == 2);
            tgt_close(t);
        }
        end(&f);
    }
}

/* Guards ensure_g's availability map: "xx" bytes in `g` are not a value of
 * 0 ("stopped at 0x0"), reading that register is an error saying so. */
static void test_unavailable_register(void)
{
    begin("g reply with xx for rip");
    static char g_xx[2 * G_SIZE + 1];
    memcpy(g_xx, G_OK, sizeof g_xx);
    memset(g_xx + 2 * 128, 'x', 16);  /* rip */
    const fs_step s[] = {CONNECT_STEPS, {FS_RECV, "g", 0, NULL}, {FS_SEND, g_xx, 0, NULL}, END};
    fakestub f;
    tgt *t = connected(&f, s, 1000);
    if (t) {
        fl_error e = {0};
        uint64_t v = 1;
        EXPECT(tgt_reg_read(t, "rip", &v, &e) == -1);
        expect_error(&e, FL_EIO, "rip is unavailable", 0, 1);
        EXPECT(tgt_reg_read(t, "eflags", &v, &e) == 0 && v == 0x246);
        tgt_close(t);
    }
    end(&f);
}

static void put(char *g, size_t off, size_t size, uint64_t v)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(v >> (8 * i));
        g[2 * (off + i)] = hx[b >> 4];
        g[2 * (off + i) + 1] = hx[b & 0xf];
    }
}

int main(void)
{
    /* SIGPIPE keeps its default on purpose: a write into a dead stub must be
     * an error (MSG_NOSIGNAL), not the death of the program. */
    memset(G_OK, '0', 2 * G_SIZE);
    G_OK[2 * G_SIZE] = '\0';
    put(G_OK, 128, 8, 0xffffffff81000000ULL);  /* rip */
    put(G_OK, 136, 4, 0x246);                  /* eflags */
    put(G_OK, 140, 4, 0x10);                   /* cs */
    int64_t t0 = now_ms();
    test_silence();
    test_resets();
    test_garbage();
    test_bad_checksums();
    test_never_stops();
    test_register_sizes();
    test_e_replies();
    test_console_flood();
    test_slow_connect();
    test_cancel();
    test_unavailable_register();
    test_connect_names_address_once();
    test_cli();
    printf("test_faults: %.1f s\n", (now_ms() - t0) / 1000.0);
    return check_summary("test_faults");
}
