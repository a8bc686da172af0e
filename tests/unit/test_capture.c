/* capture against a fake stub that keeps faulting, with the real vmlinux
 * (skipped without it): the station and check tables, rows added at run
 * time, the stop hook, stations "not in this kernel", what a passed-over
 * fault costs on the wire, and unreadable guest memory under a task filter.
 *
 * The fake is a small QEMU look-alike: every continue stops at the first
 * hardware breakpoint still inserted (so a capture walks its stations in
 * order), `g` returns registers the test sets, `m` returns zeros or E14. */
#include "check.h"
#include "station_rows.h"
/* Only the fake's packet helpers are used here, not its scripted runner. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "fakestub.h"
#pragma GCC diagnostic pop
#include "qemu_guest.h"
#include "faultline/capture.h"
#include "faultline/report.h"
#include "faultline/util.h"

#include <errno.h>
#include <inttypes.h>

static const char TARGET_XML[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\"><target>"
    "<architecture>i386:x86-64</architecture><xi:include href=\"i386-64bit.xml\"/></target>";
static const char CORE_XML[] =
    "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<flags id=\"i386_eflags\" size=\"4\"><field name=\"CF\" start=\"0\" end=\"0\"/>"
    "<field name=\"\" start=\"1\" end=\"1\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>"
    "<field name=\"IF\" start=\"9\" end=\"9\"/></flags>\n"
    "<reg name=\"rax\" bitsize=\"64\" regnum=\"0\"/><reg name=\"rbx\" bitsize=\"64\"/>"
    "<reg name=\"rcx\" bitsize=\"64\"/><reg name=\"rdx\" bitsize=\"64\"/><reg name=\"rsi\" bitsize=\"64\"/>"
    "<reg name=\"rdi\" bitsize=\"64\"/><reg name=\"rbp\" bitsize=\"64\"/><reg name=\"rsp\" bitsize=\"64\"/>"
    "<reg name=\"r8\" bitsize=\"64\"/><reg name=\"r9\" bitsize=\"64\"/><reg name=\"r10\" bitsize=\"64\"/>"
    "<reg name=\"r11\" bitsize=\"64\"/><reg name=\"r12\" bitsize=\"64\"/><reg name=\"r13\" bitsize=\"64\"/>"
    "<reg name=\"r14\" bitsize=\"64\"/><reg name=\"r15\" bitsize=\"64\"/>"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>"
    "<reg name=\"cs\" bitsize=\"32\"/><reg name=\"ss\" bitsize=\"32\"/><reg name=\"ds\" bitsize=\"32\"/>"
    "<reg name=\"es\" bitsize=\"32\"/><reg name=\"fs\" bitsize=\"32\"/><reg name=\"gs\" bitsize=\"32\"/>"
    "<reg name=\"fs_base\" bitsize=\"64\"/><reg name=\"gs_base\" bitsize=\"64\"/>"
    "<reg name=\"k_gs_base\" bitsize=\"64\"/><reg name=\"cr0\" bitsize=\"64\"/>"
    "<reg name=\"cr2\" bitsize=\"64\"/><reg name=\"cr3\" bitsize=\"64\"/><reg name=\"cr4\" bitsize=\"64\"/>"
    "<reg name=\"cr8\" bitsize=\"64\"/><reg name=\"efer\" bitsize=\"64\"/>\n</feature>\n";
/* Offsets in `g`: 16 general registers, rip, 7 x 4 bytes, 3 bases, 6 control registers. */
enum { G_RDX = 24, G_RSI = 32, G_RDI = 40, G_RIP = 128, G_CR2 = 196, G_SIZE = 236 };

typedef struct fault_stub {
    fakestub f;            /* buffers and helpers of tests/fakestub.h */
    uint8_t g[G_SIZE];
    bool mem_ok;           /* m: zeros; else E14 */
    unsigned max_stops;    /* continues that stop; later ones run on */
    uint64_t bps[64];      /* inserted breakpoints, in insertion order */
    size_t nbps, most_bps;
    unsigned stops, packets, m_packets, z_packets;
    enum {
        STEP_STILL,        /* a step reports a stop and leaves rip (the default) */
        STEP_TCG,          /* QEMU 7.2 under TCG: a step moves rip, a breakpoint there or not */
        STEP_REREPORT      /* a stub that re-reports a breakpoint at rip instead of stepping */
    } step;
    size_t kvm_slots;      /* > 0: a Z1 beyond this many is refused with E22 (KVM) */
    uint64_t path[16];     /* > 0 entries: the guest's path; a continue stops at the */
    size_t npath, pos;     /* next pc of it that holds a breakpoint (each passed once) */
} fault_stub;

static void put64(uint8_t *g, size_t off, uint64_t v)
{
    memcpy(g + off, &v, 8);
}

static void send_g(fault_stub *s)
{
    char hex[2 * G_SIZE + 1];
    for (size_t i = 0; i < G_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", s->g[i]);
    fs_send_packet(&s->f, hex);
}

static void send_xfer(fault_stub *s, const char *pkt)
{
    char annex[64];
    unsigned long off, len;
    if (sscanf(pkt, "qXfer:features:read:%63[^:]:%lx,%lx", annex, &off, &len) != 3) {
        fs_send_packet(&s->f, "E01");
        return;
    }
    const char *doc = strcmp(annex, "target.xml") == 0 ? TARGET_XML : CORE_XML;
    size_t n = strlen(doc), end = off + len < n ? off + len : n, o = 0;
    char *rep = s->f.rep;
    rep[o++] = end < n ? 'm' : 'l';
    for (size_t i = off; i < end; i++) {
        char c = doc[i];
        if (c == '#' || c == '$' || c == '}' || c == '*') {
            rep[o++] = '}';
            c ^= 0x20;
        }
        rep[o++] = c;
    }
    rep[o] = '\0';
    fs_send_packet(&s->f, rep);
}

static void breakpoint(fault_stub *s, const char *pkt)
{
    unsigned long long addr;
    if (pkt[0] == 'Z' && s->kvm_slots && s->nbps >= s->kvm_slots) {
        fs_send_packet(&s->f, "E22");
        return;
    }
    if (sscanf(pkt + 3, "%llx", &addr) == 1) {
        if (pkt[0] == 'Z' && s->nbps < 64)
            s->bps[s->nbps++] = addr;
        for (size_t i = 0; pkt[0] == 'z' && i < s->nbps; i++)
            if (s->bps[i] == addr) {
                memmove(&s->bps[i], &s->bps[i + 1], (s->nbps - i - 1) * sizeof s->bps[0]);
                s->nbps--;
                break;
            }
        s->most_bps = s->nbps > s->most_bps ? s->nbps : s->most_bps;
    }
    fs_send_packet(&s->f, "OK");
}

/* Along the path: the next pc with a breakpoint, else run on. */
static void cont_path(fault_stub *s, bool *running)
{
    for (; s->pos < s->npath; s->pos++)
        for (size_t j = 0; j < s->nbps; j++)
            if (s->bps[j] == s->path[s->pos]) {
                s->stops++;
                put64(s->g, G_RIP, s->path[s->pos++]);
                fs_send_packet(&s->f, "T05thread:p01.01;");
                return;
            }
    *running = true;
}

static void cont(fault_stub *s, bool *running)
{
    if (s->npath) {
        cont_path(s, running);
        return;
    }
    if (s->stops >= s->max_stops || s->nbps == 0) {
        *running = true;
        return;
    }
    s->stops++;
    put64(s->g, G_RIP, s->bps[0]);
    fs_send_packet(&s->f, "T05thread:p01.01;");
}

static void step(fault_stub *s)
{
    uint64_t rip;
    memcpy(&rip, s->g + G_RIP, 8);
    bool on_bp = false;
    for (size_t i = 0; i < s->nbps; i++)
        on_bp |= s->bps[i] == rip;
    if (s->step == STEP_TCG || (s->step == STEP_REREPORT && !on_bp))
        put64(s->g, G_RIP, rip + 4);
    fs_send_packet(&s->f, "T05thread:p01.01;");
}

static void answer(fault_stub *s, const char *pkt, bool *running)
{
    if (strncmp(pkt, "qSupported", 10) == 0)
        fs_send_packet(&s->f, "PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+");
    else if (strncmp(pkt, "qXfer:features:read:", 20) == 0)
        send_xfer(s, pkt);
    else if (strcmp(pkt, "vCont?") == 0)
        fs_send_packet(&s->f, "vCont;c;C;s;S");
    else if (strcmp(pkt, "?") == 0)
        fs_send_packet(&s->f, "T05thread:p01.01;");
    else if (strncmp(pkt, "vCont;s", 7) == 0 || strcmp(pkt, "s") == 0)
        step(s);
    else if (strcmp(pkt, "g") == 0)
        send_g(s);
    else if (pkt[0] == 'm') {
        unsigned long long addr;
        unsigned long len;
        s->m_packets++;
        if (s->mem_ok && sscanf(pkt + 1, "%llx,%lx", &addr, &len) == 2 && len <= 4096) {
            memset(s->f.rep, '0', 2 * len);
            s->f.rep[2 * len] = '\0';
            fs_send_packet(&s->f, s->f.rep);
        } else {
            fs_send_packet(&s->f, "E14");
        }
    } else if (pkt[0] == 'Z' || pkt[0] == 'z') {
        s->z_packets += pkt[0] == 'z';
        breakpoint(s, pkt);
    }
    else if (strncmp(pkt, "vCont;c", 7) == 0 || strcmp(pkt, "c") == 0)
        cont(s, running);
    else if (pkt[0] == 'D' || pkt[0] == 'k' || pkt[0] == 'P' || pkt[0] == 'M')
        fs_send_packet(&s->f, "OK");
    else
        fs_send_packet(&s->f, "");
}

static void *stub_thread(void *arg)
{
    fault_stub *s = arg;
    char pkt[65536], c;
    int k;
    bool running = false;
    for (;;) {
        /* fs_next gives up after 2 s of silence; a slow client (valgrind)
         * may be silent longer: only a hangup ends the fake */
        if ((k = fs_next(&s->f, pkt, sizeof pkt, &c)) == 0) {
            ssize_t r = recv(s->f.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                break;
            continue;
        }
        if (k == 2) {
            if (c == 3 && running) {
                running = false;
                fs_send_packet(&s->f, "T02thread:p01.01;");
            }
            continue;
        }
        fs_send_raw(&s->f, "+", 1);
        s->packets++;
        answer(s, pkt, &running);
    }
    close(s->f.fd);
    return NULL;
}

static tgt *stub_connect(fault_stub *s)
{
    int sv[2];
    tgt *t = NULL;
    fl_error e = { 0 };
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    s->f.fd = sv[1];
    if (pthread_create(&s->f.th, NULL, stub_thread, s) != 0)
        return NULL;
    if (tgt_connect_fd(&t, sv[0], 5000, &e) < 0)
        fprintf(stderr, "connect to the fake stub: %s\n", e.msg);
    return t;
}

static void stub_end(fault_stub *s, tgt *t)
{
    tgt_close(t);
    pthread_join(s->f.th, NULL);
}

/* A station added by one row, a function this kernel does not have, a check
 * added by one row, and a hook that sees every station reached. */
static const chk_def rmap_check = {
    .name = "test-rmap-address",
    .claim = "the reverse map gets the address filtered for",
    .expected = { { NULL, "filter.addr" } },
    .actual = { { "folio_add_new_anon_rmap", "address" } },
    .relation = CHK_EQUAL,
};

typedef struct hook_log {
    unsigned calls;
    unsigned mask;       /* stations seen */
    unsigned pc_ok;      /* calls where rip is the station's pc */
} hook_log;

static void on_stop(void *ctx, int station, const cap_fault *f, tgt *t)
{
    hook_log *h = ctx;
    uint64_t rip = 0;
    h->calls++;
    h->mask |= 1u << station;
    if (tgt_reg_read(t, "rip", &rip, NULL) == 0 && rip == f->st[station].pc)
        h->pc_ok++;
}

static void test_rows(kern *k)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    s.mem_ok = true;
    s.max_stops = 100;
    put64(s.g, G_CR2, 0x3333);
    put64(s.g, G_RDI, 0x1111);
    put64(s.g, G_RSI, 0x2222);
    put64(s.g, G_RDX, 0x3333);
    tgt *t = stub_connect(&s);
    CHECK(t != NULL);
    cap_session *cs = NULL;
    fl_error e = { 0 };
    cap_options o = { .filter = { .addr = 0x3333 }, .timeout_ms = 5000 };
    CHECK(cap_session_open(&cs, k, t, &o, &e) == 0);
    if (!cs) {
        fprintf(stderr, "%s\n", e.msg);
        stub_end(&s, t);
        return;
    }
    int rmap = cap_session_add_station(cs, &rmap_row, &e);
    int missing = cap_session_add_station(cs, &missing_row, &e);
    CHECK(rmap == CAP_ST_COUNT && missing == CAP_ST_COUNT + 1);
    CHECK(cap_session_add_check(cs, &rmap_check, &e) == 0);
    CHECK_EQ_U64(cap_session_station_count(cs), CAP_ST_COUNT + 2);
    CHECK(strcmp(cap_session_station(cs, rmap)->function, "folio_add_new_anon_rmap") == 0);
    hook_log h = { 0 };
    cap_session_on_stop(cs, on_stop, &h);
    static cap_fault f;
    int rc = cap_fault_capture(cs, &f, &e);
    if (rc < 0)
        fprintf(stderr, "capture: %s\n", e.msg);
    CHECK(rc == 0);
    CHECK(f.st[rmap].hit && !f.st[missing].hit && f.st[missing].absent);
    /* the hook ran once per station reached, with the guest stopped there */
    CHECK_EQ_U64(h.calls, CAP_ST_COUNT + 1);
    CHECK_EQ_U64(h.mask, (1u << (CAP_ST_COUNT + 1)) - 1);
    CHECK_EQ_U64(h.pc_ok, h.calls);
    const cap_value *folio = cap_value_get(&f, rmap, "folio");
    CHECK(folio && folio->value == 0x1111);
    CHECK(cap_value_get(&f, rmap, "vma->vm_mm") != NULL);

    char *x = render_fault(REPORT_TEXT, &f, cs);
    CHECK(strstr(x, "[7] folio_add_new_anon_rmap") != NULL);
    CHECK(strstr(x, "    folio                    0x0000000000001111") != NULL);
    CHECK(strstr(x, "[8] faultline_no_such_function: not in this kernel") != NULL);
    CHECK(strstr(x, "test-rmap-address        the reverse map gets the address filtered for: expected 0x3333, "
                    "got 0x3333") != NULL);
    free(x);
    char *m = render_fault(REPORT_MD, &f, cs);
    CHECK(strstr(m, "## 8. The new anonymous folio joins the reverse map: `folio_add_new_anon_rmap`") != NULL);
    CHECK(strstr(m, "| `folio` | `0x1111` |") != NULL);
    CHECK(strstr(m, "* **Status**: not in this kernel") != NULL);
    CHECK(strstr(m, "| `test-rmap-address` | the reverse map gets the address filtered for | `0x3333` | `0x3333` |") !=
          NULL);
    free(m);
    char *j = render_fault(REPORT_JSON, &f, cs);
    CHECK(strstr(j, "\"station\":7,\"function\":\"folio_add_new_anon_rmap\",\"hit\":true") != NULL);
    CHECK(strstr(j, "\"folio\":{\"value\":\"0x1111\"}") != NULL);
    CHECK(strstr(j, "\"function\":\"faultline_no_such_function\",\"status\":\"not in this kernel\",\"hit\":false") !=
          NULL);
    CHECK(strstr(j, "{\"type\":\"check\",\"name\":\"test-rmap-address\",\"ok\":true,\"claim\":\"the reverse map gets "
                    "the address filtered for\",\"expected\":\"0x3333\",\"actual\":\"0x3333\"}") != NULL);
    free(j);
    cap_session_close(cs);
    stub_end(&s, t);
}

/* Named by the user (--probes), a station the kernel lacks is an error. */
static void test_explicit(kern *k)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    tgt *t = stub_connect(&s);
    cap_session *cs = NULL;
    fl_error e = { 0 };
    cap_options o = { .explicit_stations = true, .timeout_ms = 1000 };
    CHECK(t && cap_session_open(&cs, k, t, &o, &e) == 0);
    CHECK(cs && cap_session_add_station(cs, &missing_row, &e) < 0);
    CHECK(strstr(e.msg, "neither a symbol nor an inlined instance of faultline_no_such_function") != NULL);
    cap_session_close(cs);
    stub_end(&s, t);
}

/* Connect to the fake and open a session on it; NULL (the fake ended) if
 * either fails. */
static cap_session *session_on(fault_stub *s, tgt **t, kern *k, const cap_options *o, fl_error *e)
{
    cap_session *cs = NULL;
    *t = stub_connect(s);
    CHECK(*t != NULL);
    if (*t && cap_session_open(&cs, k, *t, o, e) < 0)
        fprintf(stderr, "session: %s\n", e->msg);
    CHECK(cs != NULL);
    if (!cs)
        stub_end(s, *t);
    return cs;
}

/* A fault of another address costs one stop: the address filter is decided
 * from the `g` of that stop, no memory is read and no later station armed. */
static void test_passover(kern *k)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    s.max_stops = 40;
    put64(s.g, G_CR2, 0x5000);
    tgt *t;
    fl_error e = { 0 };
    cap_options o = { .filter = { .addr = 0x1234 }, .timeout_ms = 1500 };
    cap_session *cs = session_on(&s, &t, k, &o, &e);
    if (!cs)
        return;
    unsigned p0 = s.packets, m0 = s.m_packets;
    static cap_fault f;
    CHECK(cap_fault_capture(cs, &f, &e) < 0 && e.code == FL_ETIMEOUT);
    CHECK(strstr(e.msg, "the filtered fault did not happen") != NULL);
    CHECK_EQ_U64(f.passed_over, 40);
    CHECK_EQ_U64(s.m_packets - m0, 0);
    CHECK_EQ_U64(s.most_bps, 1);
    /* per fault: g, then the target layer's step-off (z, vCont;s, Z) and vCont;c */
    double per = (double)(s.packets - p0) / f.passed_over;
    fprintf(stderr, "packets per passed-over fault: %.2f\n", per);
    CHECK(per <= 5.2);
    cap_session_close(cs);
    stub_end(&s, t);
}

/* Stepping over the breakpoint in place (tgt_set_step_over KEEP): on a stub
 * that steps over it (QEMU under TCG) a passed-over fault is three packets
 * (g, vCont;s, vCont;c; one more `g` once, to see the step move the pc);
 * on one that re-reports it instead, the target falls back to
 * remove-step-reinsert and every fault is still passed over once. */
static void test_passover_in_place(kern *k, int how)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    s.max_stops = 40;
    s.step = how;
    put64(s.g, G_CR2, 0x5000);
    tgt *t;
    fl_error e = { 0 };
    cap_options o = { .filter = { .addr = 0x1234 }, .timeout_ms = 1500 };
    cap_session *cs = session_on(&s, &t, k, &o, &e);
    if (!cs)
        return;
    tgt_set_step_over(t, TGT_STEP_OVER_KEEP);
    unsigned p0 = s.packets, z0 = s.z_packets;
    static cap_fault f;
    CHECK(cap_fault_capture(cs, &f, &e) < 0 && e.code == FL_ETIMEOUT);
    CHECK_EQ_U64(f.passed_over, 40);
    double per = (double)(s.packets - p0) / f.passed_over;
    fprintf(stderr, "packets per passed-over fault, breakpoint kept (%s): %.2f, %u z\n",
            how == STEP_TCG ? "the stub steps over it" : "the stub re-reports it", per, s.z_packets - z0);
    if (how == STEP_TCG) {
        CHECK(per <= 3.2);
        CHECK(s.z_packets - z0 <= 1);
    } else {
        CHECK(per <= 5.3);
        CHECK(s.z_packets - z0 >= 40);
    }
    cap_session_close(cs);
    stub_end(&s, t);
}

/* KVM's four debug registers with no max_slots (capture --gdb against a
 * KVM guest): the stub refuses a fifth Z1 with E22, the session learns the
 * limit from it and arms the later stations as earlier ones fire, so every
 * station of the guest's path is reached, never more than four armed. */
static void test_kvm_slots(kern *k)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    s.kvm_slots = 4;
    s.mem_ok = true;
    put64(s.g, G_CR2, 0x1234);
    for (size_t i = 0; i < CAP_ST_COUNT; i++) {
        uint64_t pc, *inl = NULL;
        size_t n = 0;
        if (kern_sym_addr(k, station_default(i)->function, &pc, NULL) < 0 &&
            kern_inlined_entries(k, station_default(i)->function, &inl, &n, NULL) == 0 && n > 0)
            pc = inl[0];
        else if (n == 0 && kern_sym_addr(k, station_default(i)->function, &pc, NULL) < 0)
            continue;
        free(inl);
        s.path[s.npath++] = pc;
    }
    tgt *t;
    fl_error e = { 0 };
    cap_options o = { .filter = { .addr = 0x1234 }, .timeout_ms = 3000 };
    cap_session *cs = session_on(&s, &t, k, &o, &e);
    if (!cs)
        return;
    static cap_fault f;
    int rc = cap_fault_capture(cs, &f, &e);
    if (rc < 0)
        fprintf(stderr, "kvm slots: %s\n", e.msg);
    CHECK(rc == 0);
    CHECK_EQ_U64(tgt_bp_slots(t), 4);
    CHECK(s.most_bps <= 4);
    size_t hit = 0;
    for (size_t i = 0; i < CAP_ST_COUNT; i++)
        hit += f.st[i].hit;
    fprintf(stderr, "kvm slots: %zu of %zu stations on the path hit, at most %zu breakpoints\n", hit, s.npath,
            s.most_bps);
    CHECK_EQ_U64(hit, s.npath);
    CHECK(s.npath >= 5);
    cap_session_close(cs);
    stub_end(&s, t);
}

/* Under a comm filter with every memory read failing, the capture says so
 * at once instead of waiting for its timeout. */
static void test_unreadable(kern *k)
{
    static fault_stub s;
    memset(&s, 0, sizeof s);
    s.max_stops = 100000;
    tgt *t;
    fl_error e = { 0 };
    cap_options o = { .filter = { .comm = "nobody" }, .timeout_ms = 20000 };
    cap_session *cs = session_on(&s, &t, k, &o, &e);
    if (!cs)
        return;
    static cap_fault f;
    double t0 = fl_now_s();
    CHECK(cap_fault_capture(cs, &f, &e) < 0 && e.code == FL_EIO);
    CHECK(fl_now_s() - t0 < 10);
    CHECK(strstr(e.msg, "guest memory cannot be read") != NULL);
    fprintf(stderr, "unreadable: %s\n", e.msg);
    cap_session_close(cs);
    stub_end(&s, t);
}

int main(void)
{
    const char *vmlinux = guest_kernel();
    if (!vmlinux) {
        printf("SKIP test_capture: no vmlinux (run 'make vm' or set FAULTLINE_KERNEL)\n");
        return 77;
    }
    kern *k = NULL;
    fl_error e = { 0 };
    if (kern_open(&k, vmlinux, NULL, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    test_rows(k);
    test_explicit(k);
    test_passover(k);
    test_passover_in_place(k, STEP_TCG);
    test_passover_in_place(k, STEP_REREPORT);
    test_kvm_slots(k);
    test_unreadable(k);
    kern_close(k);
    return check_summary("test_capture");
}
