/* matrix: planning (scenarios x kernels x accelerators), shards that
 * partition the cells exactly, refusals, result files saved and merged back
 * from two directories, the tally, XML escaping and the JUnit file's
 * counts. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "faultline/matrix.h"

static bool repro(const char *s)
{
    return strcmp(s, "write-forked") != 0;
}

static const char *const kernels[] = { "/k/linux-6.12.1/src/vmlinux", "/k/linux-6.1.2/src/vmlinux" };

static void test_plan(void)
{
    matrix_plan p;
    fl_error e = { 0 };
    CHECK(matrix_plan_make(&p, "write,read", kernels, 2, "tcg,kvm", 1, 1, repro, &e) == 0 && p.ncells == 8);
    CHECK_STR(p.cells[0].name, "write.linux-6.12.1.tcg");
    CHECK_STR(p.cells[1].name, "write.linux-6.12.1.kvm");
    CHECK(p.cells[0].reproducible && !p.cells[1].reproducible);
    CHECK_STR(p.cells[2].kernel_label, "linux-6.1.2");
    matrix_plan_free(&p);
    CHECK(matrix_plan_make(&p, "all", kernels, 1, "tcg", 1, 1, repro, &e) == 0 && p.ncells >= 4);
    CHECK_STR(p.cells[3].scenario, "write-forked");
    CHECK(!p.cells[3].reproducible);
    matrix_plan_free(&p);
    /* Shards: each cell in exactly one. */
    int seen[8] = { 0 };
    for (int k = 1; k <= 3; k++) {
        matrix_plan all, s;
        CHECK(matrix_plan_make(&all, "write,read", kernels, 2, "tcg,kvm", 1, 1, repro, &e) == 0);
        CHECK(matrix_plan_make(&s, "write,read", kernels, 2, "tcg,kvm", k, 3, repro, &e) == 0);
        for (size_t i = 0; i < s.ncells; i++)
            for (size_t j = 0; j < all.ncells; j++)
                if (strcmp(s.cells[i].name, all.cells[j].name) == 0)
                    seen[j]++;
        matrix_plan_free(&all);
        matrix_plan_free(&s);
    }
    for (int j = 0; j < 8; j++)
        CHECK(seen[j] == 1);
    CHECK(matrix_plan_make(&p, "write,nope", kernels, 1, "tcg", 1, 1, repro, &e) == -1 && e.code == FL_EUSAGE &&
          strstr(e.msg, "'nope' is not a scenario"));
    CHECK(matrix_plan_make(&p, "write", kernels, 1, "xen", 1, 1, repro, &e) == -1 && strstr(e.msg, "'xen' is not an accelerator"));
    int k, n;
    CHECK(matrix_parse_shard("2/4", &k, &n, &e) == 0 && k == 2 && n == 4);
    CHECK(matrix_parse_shard("5/4", &k, &n, &e) == -1 && e.code == FL_EUSAGE);
    CHECK(matrix_parse_shard("1/2x", &k, &n, &e) == -1);
    CHECK(matrix_parse_shard("0/2", &k, &n, &e) == -1);
}

static void test_escape(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    matrix_xml_escape(f, "a<b>&\"c'\x01\tz");
    fclose(f);
    CHECK_STR(buf, "a&lt;b&gt;&amp;&quot;c&apos;\tz");
    free(buf);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_results(void)
{
    char d1[] = "/tmp/test_matrix-XXXXXX", d2[] = "/tmp/test_matrix-XXXXXX";
    CHECK(mkdtemp(d1) && mkdtemp(d2));
    fl_error e = { 0 };
    matrix_plan s1, s2;
    CHECK(matrix_plan_make(&s1, "write,read", kernels, 1, "tcg,kvm", 1, 2, repro, &e) == 0 && s1.ncells == 2);
    CHECK(matrix_plan_make(&s2, "write,read", kernels, 1, "tcg,kvm", 2, 2, repro, &e) == 0 && s2.ncells == 2);
    s1.cells[0].status = MATRIX_PASS, s1.cells[0].checks = 29, s1.cells[0].seconds = 3.5;
    s1.cells[1].status = MATRIX_FAIL, s1.cells[1].failed = 1;
    snprintf(s1.cells[1].reason, sizeof s1.cells[1].reason, "check <x> & \"y\" failed");
    s2.cells[0].status = MATRIX_SKIPPED;
    snprintf(s2.cells[0].reason, sizeof s2.cells[0].reason, "KVM unusable here: no /dev/kvm");
    s2.cells[1].status = MATRIX_ERROR;
    for (size_t i = 0; i < 2; i++) {
        CHECK(matrix_cell_save(d1, &s1.cells[i], &e) == 0);
        CHECK(matrix_cell_save(d2, &s2.cells[i], &e) == 0);
    }
    matrix_plan m;
    const char *dirs[] = { d1, d2 };
    CHECK(matrix_load_results(&m, dirs, 2, &e) == 0 && m.ncells == 4);
    int pa, fa, sk;
    CHECK(matrix_tally(&m, &pa, &fa, &sk) == 1 && pa == 1 && fa == 2 && sk == 1);
    char junit[300];
    snprintf(junit, sizeof junit, "%s/junit.xml", d1);
    CHECK(matrix_write_junit(junit, &m, &e) == 0);
    char *x = slurp(junit);
    CHECK(x && strstr(x, "tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""));
    CHECK(x && strstr(x, "<skipped message=\"KVM unusable here: no /dev/kvm\"/>"));
    CHECK(x && strstr(x, "check &lt;x&gt; &amp; &quot;y&quot; failed"));
    free(x);
    matrix_plan_free(&m);
    const char *none[] = { "/nonexistent-dir" };
    CHECK(matrix_load_results(&m, none, 1, &e) == -1 && e.code == FL_EUSAGE);
    matrix_plan_free(&s1);
    matrix_plan_free(&s2);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", d1, d2);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_plan();
    test_escape();
    test_results();
    return check_summary("test_matrix");
}
