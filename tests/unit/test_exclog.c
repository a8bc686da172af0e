/* exclog: QEMU 7.2's -d int records (tests/fixtures/exclog-qemu72.log, cut
 * from a real TCG run of the bundled kernel: it starts inside a record's
 * register dump and ends inside one) parsed into page faults; the reader
 * tailing a file while it grows and a FIFO; cancellation and the deadline;
 * the entry station in the capture's shapes. */
#include "check.h"
#include "faultline/exclog.h"
#include "faultline/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *FIX = "tests/fixtures/exclog-qemu72.log";

/* The page faults of the fixture, read off its lines by hand. */
static const exclog_record want[] = {
    {.seq = 423, .vector = 0x0e, .error_code = 0x2, .cpl = 0, .cs = 0x10, .rip = 0xffffffff811ad665, .ss = 0x18,
     .rsp = 0xffffc9000000bde0, .cr2 = 0x00007ffd396f3809, .rflags = 0x40202, .cr3 = 0x808000},
    {.seq = 424, .vector = 0x0e, .error_code = 0x14, .cpl = 3, .cs = 0x33, .rip = 0x40ebf0, .ss = 0x2b,
     .rsp = 0x00007ffd396f3670, .cr2 = 0x40ebf0, .rflags = 0x202, .cr3 = 0x808000},
    {.seq = 425, .vector = 0x0e, .error_code = 0x6, .cpl = 3, .cs = 0x33, .rip = 0x410331, .ss = 0x2b,
     .rsp = 0x00007ffd396f3560, .cr2 = 0x5eb898, .rflags = 0x206, .cr3 = 0x808000},
    {.seq = 428, .vector = 0x0e, .error_code = 0x6, .cpl = 3, .cs = 0x33, .rip = 0x410338, .ss = 0x2b,
     .rsp = 0x00007ffd396f3560, .cr2 = 0x5e1d90, .rflags = 0x206, .cr3 = 0x808000},
};
#define NWANT (sizeof want / sizeof want[0])

static void check_record(const exclog_record *r, const exclog_record *w)
{
    CHECK_EQ_U64(r->seq, w->seq);
    CHECK_EQ_U64(r->vector, w->vector);
    CHECK_EQ_U64(r->error_code, w->error_code);
    CHECK_EQ_U64(r->cpl, w->cpl);
    CHECK_EQ_U64(r->cs, w->cs);
    CHECK_EQ_U64(r->rip, w->rip);
    CHECK_EQ_U64(r->ss, w->ss);
    CHECK_EQ_U64(r->rsp, w->rsp);
    CHECK_EQ_U64(r->cr2, w->cr2);
    CHECK_EQ_U64(r->rflags, w->rflags);
    CHECK_EQ_U64(r->cr3, w->cr3);
    CHECK(r->have_rflags && r->have_cr3);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

static void test_lines(void)
{
    exclog_record r;
    CHECK(exclog_parse_header("   425: v=0e e=0006 i=0 cpl=3 IP=0033:0000000000410331 pc=0000000000410331 "
                              "SP=002b:00007ffd396f3560 CR2=00000000005eb898", &r) == 1);
    CHECK_EQ_U64(r.cr2, 0x5eb898);
    CHECK(!r.have_cr3 && !r.have_rflags);
    /* A hardware interrupt: a record, no CR2. */
    CHECK(exclog_parse_header("   426: v=ec e=0000 i=0 cpl=0 IP=0010:ffffffff810c7fa6 pc=ffffffff810c7fa6 "
                              "SP=0000:ffffc9000000bda8 env->regs[R_EAX]=0000000000000001", &r) == 1);
    CHECK_EQ_U64(r.vector, 0xec);
    CHECK(exclog_parse_header("check_exception old: 0xffffffff new 0xe", &r) == 0);
    CHECK(exclog_parse_header("Servicing hardware INT=0xec", &r) == 0);
    CHECK(exclog_parse_header("RAX=0000000000000002 RBX=000000003a301850", &r) == 0);
    /* Damaged headers are not records: no CR2 on a page fault, bad selector. */
    CHECK(exclog_parse_header("   1: v=0e e=0006 i=0 cpl=3 IP=0033:1 pc=1 SP=002b:2", &r) == 0);
    CHECK(exclog_parse_header("   1: v=0e e=0006 i=0 cpl=3 IP=12345:1 pc=1 SP=002b:2 CR2=3", &r) == 0);
    CHECK(exclog_parse_header("   1: v=0e e=zz i=0 cpl=3 IP=0033:1 pc=1 SP=002b:2 CR2=3", &r) == 0);
    CHECK(exclog_parse_header("", &r) == 0);
    /* 32-bit dumps say EIP/EFL. */
    exclog_record d = {0};
    exclog_parse_dump_line("EIP=000eaced EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0", &d);
    CHECK(d.have_rflags);
    CHECK_EQ_U64(d.rflags, 2);
    exclog_parse_dump_line("CR0=80050033 CR2=00007ffd396f3809 CR3=000000000180a005 CR4=007506b0", &d);
    CHECK(d.have_cr3);
    CHECK_EQ_U64(d.cr3, 0x180a005);
    /* PCID bits and the no-flush bit do not change the address space. */
    CHECK_EQ_U64(exclog_cr3_space(0x180a005), 0x180a000);
    CHECK_EQ_U64(exclog_cr3_space(0x800000000180a7ffull), 0x180a000);
}

/* The whole fixture through the reader at once. */
static void test_fixture(void)
{
    exclog_reader *r;
    fl_error e;
    CHECK(exclog_open(&r, FIX, NULL, NULL, &e) == 0);
    if (!r)
        return;
    exclog_record rec;
    for (size_t i = 0; i < NWANT; i++) {
        CHECK(exclog_next_fault(r, &rec, 0, &e) == 1);
        check_record(&rec, &want[i]);
    }
    CHECK(exclog_next_fault(r, &rec, 20, &e) == 0); /* 429 is cut off: no more faults, time runs out */
    exclog_stats st = exclog_reader_stats(r);
    CHECK_EQ_U64(st.page_faults, NWANT);
    CHECK_EQ_U64(st.records, 6); /* 423..428: four page faults, two timer interrupts */
    exclog_close(r);
}

static int cancel_now(void *ctx)
{
    return ++*(int *)ctx > 2;
}

/* A file that grows while it is read, cut inside lines and records. */
static void test_tail(const char *text, size_t len)
{
    char path[] = "/tmp/faultline-exclog-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    exclog_reader *r;
    fl_error e;
    int calls = 0;
    CHECK(exclog_open(&r, path, cancel_now, &calls, &e) == 0);
    exclog_record rec;
    size_t got = 0, off = 0;
    while (off < len) {
        size_t chunk = len - off < 97 ? len - off : 97; /* never on a line boundary by design */
        CHECK(write(fd, text + off, chunk) == (ssize_t)chunk);
        off += chunk;
        while (got < NWANT && exclog_next_fault(r, &rec, 0, &e) == 1)
            check_record(&rec, &want[got++]);
    }
    CHECK_EQ_U64(got, NWANT);
    /* Waiting for more asks the cancel hook and ends with FL_EINTR. */
    int64_t t0 = fl_now_ms();
    CHECK(exclog_next_fault(r, &rec, 10000, &e) == -1);
    CHECK(e.code == FL_EINTR);
    CHECK(fl_now_ms() - t0 < 5000);
    exclog_close(r);
    close(fd);
    unlink(path);
}

static void test_fifo(const char *text, size_t len)
{
    char path[] = "/tmp/faultline-exclog-fifo-XXXXXX";
    int tmp = mkstemp(path);
    close(tmp);
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0);
    exclog_reader *r;
    fl_error e;
    CHECK(exclog_open(&r, path, NULL, NULL, &e) == 0); /* no writer yet: does not block */
    exclog_record rec;
    CHECK(exclog_next_fault(r, &rec, 30, &e) == 0);
    int w = open(path, O_WRONLY | O_NONBLOCK);
    CHECK(w >= 0);
    CHECK(write(w, text, len) == (ssize_t)len);
    close(w); /* the writer goes away: what it wrote is still read */
    for (size_t i = 0; i < NWANT; i++) {
        CHECK(exclog_next_fault(r, &rec, 2000, &e) == 1);
        check_record(&rec, &want[i]);
    }
    CHECK(exclog_next_fault(r, &rec, 30, &e) == 0);
    exclog_close(r);
    unlink(path);
}

static void test_errors(void)
{
    exclog_reader *r;
    fl_error e;
    CHECK(exclog_open(&r, "/nonexistent/exceptions.log", NULL, NULL, &e) == -1);
    CHECK(e.code == FL_ENOTFOUND);
    CHECK(strstr(e.msg, "-d int") != NULL);
    CHECK(exclog_open(&r, "/tmp", NULL, NULL, &e) == -1);
    CHECK(e.code == FL_EUSAGE);
}

static void test_fault_shape(void)
{
    cap_fault f;
    exclog_fault_from_record(&want[2], NULL, &f);
    const cap_station *st = &f.st[CAP_ST_ENTRY];
    CHECK(st->enabled && st->hit);
    CHECK(!f.st[CAP_ST_EXC].enabled);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "cr2")->value, 0x5eb898);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.error_code")->value, 6);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.rip")->value, 0x410331);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.cs")->value, 0x33);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.rflags")->value, 0x206);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.rsp")->value, 0x7ffd396f3560);
    CHECK_EQ_U64(cap_value_get(&f, CAP_ST_ENTRY, "frame.ss")->value, 0x2b);
    CHECK_STR(cap_value_get(&f, CAP_ST_ENTRY, "frame.cs")->decoded, "index 6 GDT, RPL 3 (user mode)");
    /* What only a stop can read is absent, and the note says so. */
    CHECK(cap_value_get(&f, CAP_ST_ENTRY, "eflags") == NULL);
    CHECK(cap_value_get(&f, CAP_ST_ENTRY, "insn.effective_address") == NULL);
    CHECK(f.task.pid == 0);
    CHECK(strstr(st->note, "not available") != NULL);
    CHECK_EQ_U64(f.fault_ip, 0x410331);
}

int main(void)
{
    size_t len = 0;
    char *text = slurp(FIX, &len);
    CHECK(text != NULL && len > 1000);
    if (!text)
        return check_summary("test_exclog");
    test_lines();
    test_fixture();
    test_tail(text, len);
    test_fifo(text, len);
    test_errors();
    test_fault_shape();
    free(text);
    return check_summary("test_exclog");
}
