/* A program built against the *installed* libfaultline with nothing but
 *   cc example.c $(pkg-config --cflags --libs faultline)
 * (tests/integration/test_install.sh builds it against the shared and the
 * static library). It needs no QEMU: it parses a target description from
 * strings, frames and decodes packets of the GDB remote protocol, parses a
 * stop reply, and asks the kernel layer to open a file that is not there.
 * Prints what it found; exits 1 on the first result that is not the expected
 * one, 0 when all hold. */
#include <faultline/error.h>
#include <faultline/kernel.h>
#include <faultline/rsp.h>
#include <faultline/target.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

/* A two-document description, as QEMU serves it: target.xml includes the
 * core feature, whose eflags has named flag fields. */
static const char TARGET_XML[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
    "<target><architecture>i386:x86-64</architecture>"
    "<xi:include href=\"core.xml\"/></target>";
static const char CORE_XML[] =
    "<?xml version=\"1.0\"?><feature name=\"org.gnu.gdb.i386.core\">"
    "<flags id=\"x64_eflags\" size=\"4\">"
    "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"IF\" start=\"9\" end=\"9\"/></flags>"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"x64_eflags\"/>"
    "<reg name=\"cr2\" bitsize=\"64\" type=\"int64\"/>"
    "</feature>";

static int fetch(void *ctx, const char *annex, char **xml, size_t *len, fl_error *err)
{
    (void)ctx;
    const char *doc = strcmp(annex, "target.xml") == 0 ? TARGET_XML : strcmp(annex, "core.xml") == 0 ? CORE_XML : NULL;
    if (!doc)
        return fl_fail(err, FL_ENOTFOUND, "no annex %s", annex);
    *len = strlen(doc);
    *xml = malloc(*len + 1);
    if (!*xml)
        return fl_fail(err, FL_EIO, "out of memory");
    memcpy(*xml, doc, *len + 1);
    return 0;
}

static void target_description(void)
{
    tgt_regmap map;
    fl_error err = { 0 };
    if (tgt_tdesc_parse(fetch, NULL, &map, &err) < 0) {
        expect(0, err.msg);
        return;
    }
    printf("target: %s, %zu registers, g is %zu bytes\n", map.arch, map.count, map.g_size);
    expect(strcmp(map.arch, "i386:x86-64") == 0, "architecture i386:x86-64");
    expect(map.count == 4 && map.g_size == 8 + 8 + 4 + 8, "4 registers, 28 bytes in g");
    const tgt_reg *r = tgt_regmap_find(&map, "eflags");
    expect(r && r->regnum == 2 && r->offset == 16 && r->size == 4, "eflags is register 2 at offset 16, 4 bytes");
    r = tgt_regmap_find(&map, "cr2");
    expect(r && r->regnum == 3 && r->offset == 20 && r->size == 8, "cr2 is register 3 at offset 20, 8 bytes");
    const tgt_field *f;
    size_t n;
    expect(tgt_regmap_fields(&map, "eflags", &f, &n, &err) == 0 && n == 2 && strcmp(f[1].name, "IF") == 0 &&
               f[1].start == 9 && f[1].end == 9,
           "eflags.IF is bit 9");
    expect(tgt_regmap_find(&map, "nosuch") == NULL, "an unknown register is not found");
    tgt_regmap_free(&map);
}

static void packets(void)
{
    char framed[64], out[128];
    size_t outlen, used;
    fl_error err = { 0 };

    /* Frame a payload with every character that must be escaped, decode it back. */
    const char payload[] = "X1000,4:a#b$c}d*";
    size_t n = rsp_encode(payload, strlen(payload), framed, sizeof framed);
    expect(n > 0 && framed[0] == '$' && framed[n - 3] == '#', "rsp_encode frames $...#cc");
    expect(rsp_decode(framed, n, out, sizeof out, &outlen, &used, &err) == RSP_DEC_PACKET && used == n &&
               outlen == strlen(payload) && memcmp(out, payload, outlen) == 0,
           "rsp_decode gives the escaped payload back");

    /* QEMU's run-length encoding: "0* " is '0' and 3 more (' ' - 29). */
    expect(rsp_decode("$0* #7a", 7, out, sizeof out, &outlen, &used, &err) == RSP_DEC_PACKET && outlen == 4 &&
               strcmp(out, "0000") == 0,
           "run-length \"$0* #7a\" decodes to 0000");
    printf("decoded: %s\n", out);
    expect(rsp_decode("$OK#9a", 6, out, sizeof out, &outlen, &used, &err) == RSP_DEC_PACKET && strcmp(out, "OK") == 0,
           "$OK#9a decodes to OK");
    expect(rsp_decode("$OK#9", 5, out, sizeof out, &outlen, &used, &err) == RSP_DEC_MORE && used == 0,
           "an incomplete packet asks for more");
    expect(rsp_decode("$OK#00", 6, out, sizeof out, &outlen, &used, &err) == RSP_DEC_BADSUM && used == 6,
           "a wrong checksum is reported as such");
    fl_error_clear(&err);
    expect(rsp_decode("$OK#zz", 6, out, sizeof out, &outlen, &used, &err) == -1 && err.code == FL_EPROTO &&
               strstr(err.msg, "$OK#zz") != NULL,
           "a malformed packet is FL_EPROTO, quoted in the message");
    printf("message: %s\n", err.msg);

    /* A stop reply: SIGTRAP, thread 1 of process 1. */
    tgt_stop stop;
    const char *t05 = "T05thread:p01.01;";
    expect(tgt_parse_stop(t05, strlen(t05), &stop, &err) == 0 && stop.kind == TGT_STOP_SIGNAL && stop.code == 5 &&
               stop.process == 1 && stop.thread == 1,
           "T05thread:p01.01; is SIGTRAP in thread 1.1");
}

static void kernel_layer(void)
{
    kern *k = NULL;
    fl_error err = { 0 };
    int rc = kern_open(&k, "/nonexistent/faultline-example/vmlinux", NULL, &err);
    expect(rc == -1 && err.msg[0] && strstr(err.msg, "/nonexistent/faultline-example/vmlinux") != NULL,
           "kern_open of a missing vmlinux fails, naming the path");
    printf("message: %s\n", err.msg);
    if (rc == 0)
        kern_close(k);
}

int main(void)
{
    target_description();
    packets();
    kernel_layer();
    printf("example: %s\n", failures ? "FAILED" : "all results as expected");
    return failures ? 1 : 0;
}
