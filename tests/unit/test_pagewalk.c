/* pagewalk: 4- and 5-level walks over a fake physical memory (a list of
 * 8-byte words by address; anything else reads as 0), large pages, an entry
 * not present at each level, bit names per level, and the diff. */
#include "check.h"
#include "faultline/pagewalk.h"

#include <stdlib.h>

#define MAXW 64
typedef struct fakemem {
    uint64_t addr[MAXW], val[MAXW];
    int n;
    int reads;
    uint64_t fail_at;   /* a read of this address fails (0: none) */
} fakemem;

static void put(fakemem *m, uint64_t addr, uint64_t val)
{
    for (int i = 0; i < m->n; i++)
        if (m->addr[i] == addr) {
            m->val[i] = val;
            return;
        }
    m->addr[m->n] = addr;
    m->val[m->n++] = val;
}

static int rd(void *ctx, uint64_t paddr, uint64_t *value, fl_error *err)
{
    fakemem *m = ctx;
    m->reads++;
    if (m->fail_at && paddr == m->fail_at)
        return fl_fail(err, FL_EIO, "fake read of 0x%llx failed", (unsigned long long)paddr);
    *value = 0;
    for (int i = 0; i < m->n; i++)
        if (m->addr[i] == paddr)
            *value = m->val[i];
    return 0;
}

/* Index of va at a level: 9 bits each, PML5 56:48 ... PT 20:12. */
static uint64_t idx(uint64_t va, int level) { return (va >> (12 + 9 * (PW_PT - level))) & 0x1ff; }

#define CR3 0x1000ull
#define NXE PW_EFER_NXE

/* A user address mapped by a 4 KiB page, tables at 0x2000.. */
static void map4k(fakemem *m, uint64_t cr3, int levels, uint64_t va, uint64_t pte)
{
    uint64_t table = cr3 & PW_ADDR_MASK, next = 0x100000;
    for (int l = levels == 5 ? PW_PML5 : PW_PML4; l < PW_PT; l++) {
        put(m, table + 8 * idx(va, l), next | PW_P | PW_RW | PW_US | PW_A);
        table = next;
        next += 0x1000;
    }
    put(m, table + 8 * idx(va, PW_PT), pte);
}

int main(void)
{
    fakemem m = { 0 };
    pw_walk w;
    fl_error err;
    const uint64_t va = 0x7f0000000100ull;

    /* 4-level, a PTE not present: four reads, ends at the PTE. */
    map4k(&m, CR3, 4, va, 0);
    CHECK(pw_walk_va(rd, &m, CR3, 0, NXE, va, &w, &err) == 0);
    CHECK_EQ_U64(w.levels, 4);
    CHECK_EQ_U64(w.count, 4);
    CHECK_EQ_U64(m.reads, 4);
    CHECK(!w.mapped);
    CHECK_EQ_U64(w.end_level, PW_PT);
    CHECK_STR(w.ended, "not present at PTE");
    CHECK_STR(w.e[0].bits, "P|RW|US|A");
    CHECK_STR(pw_level_name(w.e[0].level), "PML4E");
    CHECK_EQ_U64(w.e[0].addr, CR3 + 8 * idx(va, PW_PML4));
    CHECK_EQ_U64(w.e[1].table, 0x100000);
    CHECK_STR(w.e[3].bits, "not present");
    pw_walk before = w;

    /* The same PTE after a first write: present, RW, US, A, D, NX, frame. */
    uint64_t pte = 0x3a5f000ull | PW_P | PW_RW | PW_US | PW_A | PW_D | PW_NX;
    map4k(&m, CR3, 4, va, pte);
    CHECK(pw_walk_va(rd, &m, CR3 | 0x5 /* PCID bits are not the address */, 0, NXE, va, &w, &err) == 0);
    CHECK(w.mapped);
    CHECK_EQ_U64(w.frame, 0x3a5f000);
    CHECK_EQ_U64(w.phys, 0x3a5f100);
    CHECK_EQ_U64(w.page_size, 4096);
    CHECK(w.writable && w.user && w.nx && w.dirty && w.accessed && !w.global);
    CHECK_STR(w.e[3].bits, "P|RW|US|A|D|NX");
    CHECK_STR(w.ended, "4 KiB page at PTE");
    pw_diff d;
    pw_diff_walks(&before, &w, &d);
    CHECK(d.became_present && d.became_writable && d.became_user && d.became_dirty && !d.unchanged);
    CHECK(!d.frame_changed);
    CHECK_EQ_U64(d.new_frame, 0x3a5f000);
    CHECK_EQ_U64(d.first_changed, PW_PT);
    CHECK_STR(d.summary, "became present (frame 0x3a5f000), writable, user, accessed, dirty");
    pw_diff_walks(&w, &w, &d);
    CHECK(d.unchanged);
    CHECK_STR(d.summary, "unchanged");

    /* Without EFER.NXE bit 63 is not XD: no NX in the rights or the names. */
    CHECK(pw_walk_va(rd, &m, CR3, 0, 0, va, &w, &err) == 0);
    CHECK(!w.nx);
    CHECK_STR(w.e[3].bits, "P|RW|US|A|D");

    /* COW: the frame changes, read-only -> writable. */
    pw_walk ro;
    map4k(&m, CR3, 4, va, 0x1111000ull | PW_P | PW_US | PW_A);
    CHECK(pw_walk_va(rd, &m, CR3, 0, NXE, va, &ro, &err) == 0);
    CHECK(ro.mapped && !ro.writable);
    map4k(&m, CR3, 4, va, 0x2222000ull | PW_P | PW_RW | PW_US | PW_A | PW_D);
    CHECK(pw_walk_va(rd, &m, CR3, 0, NXE, va, &w, &err) == 0);
    pw_diff_walks(&ro, &w, &d);
    CHECK(d.frame_changed && d.became_writable && !d.became_present);
    CHECK_EQ_U64(d.old_frame, 0x1111000);
    CHECK_EQ_U64(d.new_frame, 0x2222000);
    CHECK_STR(d.summary, "frame 0x1111000 -> 0x2222000, writable, dirty");

    /* Rights are those of the whole walk: a read-only PDE makes the page read-only. */
    uint64_t pde_addr = 0x100000 + 0x1000 + 8 * idx(va, PW_PD);
    put(&m, pde_addr, 0x102000ull | PW_P | PW_US | PW_A);
    CHECK(pw_walk_va(rd, &m, CR3, 0, NXE, va, &w, &err) == 0);
    CHECK(w.mapped && !w.writable && w.user);

    /* Not present at each upper level. */
    for (int l = PW_PML4; l < PW_PT; l++) {
        fakemem n = { 0 };
        map4k(&n, CR3, 4, va, pte);
        uint64_t table = CR3;
        for (int j = PW_PML4; j < l; j++)
            table = 0x100000 + 0x1000 * (uint64_t)(j - PW_PML4);
        put(&n, table + 8 * idx(va, l), 0x100000 + 0x1000 * (uint64_t)(l - PW_PML4)); /* P clear */
        CHECK(pw_walk_va(rd, &n, CR3, 0, NXE, va, &w, &err) == 0);
        CHECK(!w.mapped);
        CHECK_EQ_U64(w.end_level, l);
        CHECK_EQ_U64(w.count, l - PW_PML4 + 1);
        CHECK_EQ_U64(n.reads, l - PW_PML4 + 1);
    }

    /* A 2 MiB page at the PDE (PS), global kernel-style, with PAT at bit 12. */
    const uint64_t kva = 0xffff888000123456ull;
    fakemem k = { 0 };
    put(&k, CR3 + 8 * idx(kva, PW_PML4), 0x200000ull | PW_P | PW_RW | PW_A);
    put(&k, 0x200000 + 8 * idx(kva, PW_PDPT), 0x201000ull | PW_P | PW_RW | PW_A);
    put(&k, 0x201000 + 8 * idx(kva, PW_PD), 0x400000ull | PW_P | PW_RW | PW_A | PW_D | PW_PS | PW_G | (1ull << 12));
    CHECK(pw_walk_va(rd, &k, CR3, 0, NXE, kva, &w, &err) == 0);
    CHECK(w.mapped && w.global && !w.user);
    CHECK_EQ_U64(w.page_size, 2ull << 20);
    CHECK_EQ_U64(w.frame, 0x400000); /* bit 12 is PAT, not address */
    CHECK_EQ_U64(w.phys, 0x400000 + (kva & 0x1fffff));
    CHECK_STR(w.e[2].bits, "P|RW|A|D|PS|G|PAT");
    CHECK_STR(w.ended, "2 MiB page at PDE");
    CHECK_EQ_U64(w.count, 3);

    /* A 1 GiB page at the PDPTE. */
    put(&k, 0x200000 + 8 * idx(kva, PW_PDPT), 0x40000000ull | PW_P | PW_RW | PW_A | PW_PS);
    CHECK(pw_walk_va(rd, &k, CR3, 0, NXE, kva, &w, &err) == 0);
    CHECK_EQ_U64(w.page_size, 1ull << 30);
    CHECK_EQ_U64(w.phys, 0x40000000 + (kva & 0x3fffffff));
    CHECK_STR(w.ended, "1 GiB page at PDPTE");

    /* PTE bit 7 is PAT, not PS; a protection key shows only with CR4.PKE. */
    fakemem p = { 0 };
    map4k(&p, CR3, 4, va, 0x5000ull | PW_P | PW_US | (1ull << 7) | (3ull << 59));
    CHECK(pw_walk_va(rd, &p, CR3, PW_CR4_PKE, NXE, va, &w, &err) == 0);
    CHECK(w.mapped);
    CHECK_EQ_U64(w.frame, 0x5000);
    CHECK_STR(w.e[3].bits, "P|US|PAT|PK=3");
    CHECK(pw_walk_va(rd, &p, CR3, 0, NXE, va, &w, &err) == 0);
    CHECK_STR(w.e[3].bits, "P|US|PAT");

    /* 5-level (CR4.LA57): five reads, PML5 index from bits 56:48. */
    const uint64_t va57 = 0x00ff00000000f100ull;
    fakemem f = { 0 };
    map4k(&f, CR3, 5, va57, 0x777000ull | PW_P | PW_RW | PW_US);
    CHECK(pw_walk_va(rd, &f, CR3, PW_CR4_LA57, NXE, va57, &w, &err) == 0);
    CHECK_EQ_U64(w.levels, 5);
    CHECK_EQ_U64(w.count, 5);
    CHECK_EQ_U64(f.reads, 5);
    CHECK_STR(pw_level_name(w.e[0].level), "PML5E");
    CHECK_EQ_U64(w.e[0].index, 0xff);
    CHECK(w.mapped);
    CHECK_EQ_U64(w.phys, 0x777100);
    /* ... and that address is not canonical under 4 levels. */
    CHECK(pw_walk_va(rd, &f, CR3, 0, NXE, va57, &w, &err) == -1);
    CHECK(err.code == FL_EUSAGE);
    /* Not present at the PML5E. */
    fakemem e5 = { 0 };
    CHECK(pw_walk_va(rd, &e5, CR3, PW_CR4_LA57, NXE, va57, &w, &err) == 0);
    CHECK_STR(w.ended, "not present at PML5E");
    /* The LA57 kernel direct map address of -cpu max. */
    CHECK(pw_walk_va(rd, &e5, CR3, PW_CR4_LA57, NXE, 0xff11000000000000ull, &w, &err) == 0);
    CHECK_EQ_U64(w.e[0].index, 0x111);

    /* A failing read is an error naming the level. */
    m.fail_at = CR3 + 8 * idx(va, PW_PML4);
    CHECK(pw_walk_va(rd, &m, CR3, 0, NXE, va, &w, &err) == -1);
    CHECK(err.code == FL_EIO && strstr(err.msg, "PML4E") != NULL);

    /* Tiny buffers are cut, never overrun. */
    char tiny[4];
    pw_format_bits(PW_PT, 0x7, 0, 0, tiny, sizeof tiny);
    CHECK(strlen(tiny) < sizeof tiny);
    return check_summary("test_pagewalk");
}
