/* usersym on build/fixtures/kfix (tests/fixtures/kfix.c, non-PIE, with a
 * symbol table): every function nm lists (type T/t, with a size) is found
 * at its start, inside, and at its last byte, with the right offset; an
 * address past every function, a stripped copy, a file that is not ELF and
 * a missing file say so in one sentence. */
#include "check.h"
#include "faultline/usersym.h"

#include <stdlib.h>
#include <unistd.h>

static const char *FIX = "build/fixtures/kfix";

/* nm's own reading, the reference: each sized function symbol. */
static int check_against_nm(const usersym *u)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "nm -S --defined-only %s", FIX);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        unsigned long long addr, size;
        char type, name[256];
        if (sscanf(line, "%llx %llx %c %255s", &addr, &size, &type, name) != 4 || (type != 'T' && type != 't') ||
            size == 0)
            continue;
        const char *got;
        uint64_t off;
        CHECK(usersym_lookup(u, addr, &got, &off, NULL) == 0 && off == 0);
        CHECK(usersym_lookup(u, addr + size - 1, &got, &off, NULL) == 0 && off == size - 1);
        char want[300], fmt[300];
        snprintf(want, sizeof want, "%s+0x%llx", name, size - 1);
        usersym_format(u, addr + size - 1, fmt, sizeof fmt);
        if (strchr(name, '.') == NULL) /* nm's local clones may alias: compare the plain ones */
            CHECK_STR(fmt, want);
        n++;
    }
    pclose(p);
    return n;
}

static void check_errors(void)
{
    usersym *u = NULL;
    fl_error err = { 0 };
    CHECK(usersym_open(&u, "build/fixtures/no-such-program", &err) < 0 && u == NULL);
    CHECK(err.code == FL_EIO && strstr(err.msg, "no-such-program") != NULL);
    fl_error_clear(&err);
    CHECK(usersym_open(&u, "tests/fixtures/exclog-qemu72.log", &err) < 0 && u == NULL);
    CHECK(err.code == FL_EFORMAT && strstr(err.msg, "not an ELF file") != NULL);
    char buf[32] = "x";
    usersym_format(NULL, 0x401000, buf, sizeof buf);
    CHECK_STR(buf, "");
}

/* A stripped copy opens, has no .symtab, and finds none of kfix's own
 * functions (its .dynsym names only what it imports, undefined here). */
static void check_stripped(void)
{
    char tmp[] = "/tmp/usersym-XXXXXX", cmd[256];
    int fd = mkstemp(tmp);
    if (fd < 0)
        return;
    close(fd);
    snprintf(cmd, sizeof cmd, "objcopy --strip-all %s %s", FIX, tmp);
    if (system(cmd) == 0) {
        usersym *u = NULL;
        fl_error err = { 0 };
        CHECK(usersym_open(&u, tmp, &err) == 0);
        CHECK(usersym_count(u) == 0);
        const char *name;
        uint64_t off;
        CHECK(usersym_lookup(u, 0x401000, &name, &off, &err) < 0 && err.code == FL_ENOTFOUND);
        usersym_close(u);
    }
    unlink(tmp);
}

int main(void)
{
    if (access(FIX, R_OK) != 0) {
        printf("test_usersym: skipped: %s is missing (make %s)\n", FIX, FIX);
        return 77;
    }
    usersym *u = NULL;
    fl_error err = { 0 };
    CHECK(usersym_open(&u, FIX, &err) == 0);
    CHECK(usersym_count(u) > 0);
    int n = check_against_nm(u);
    CHECK(n >= 3);
    const char *name;
    uint64_t off;
    CHECK(usersym_lookup(u, 0xffffffffffff0000ULL, &name, &off, &err) < 0 && err.code == FL_ENOTFOUND);
    usersym_close(u);
    check_errors();
    check_stripped();
    return check_summary("test_usersym");
}
