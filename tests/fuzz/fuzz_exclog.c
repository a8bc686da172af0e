/* libFuzzer harness for exclog: QEMU's exception log is text the guest
 * influences (its registers), so any bytes, through the line parsers and
 * through the tailing reader, must give sane records or none, never a
 * crash, an over-read or a hang. */
#include "faultline/exclog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const exclog_record *r)
{
    if (r->vector > 0xff || r->cpl > 3)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    /* Line by line through the parsers. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    exclog_record r = {0};
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (exclog_parse_header(line, &r) == 1)
            check(&r);
        else
            exclog_parse_dump_line(line, &r);
    }
    free(text);
    /* The same bytes as a log file through the reader. */
    int fd = memfd_create("exclog", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        exclog_reader *rd;
        if (exclog_open(&rd, path, NULL, NULL, NULL) == 0) {
            exclog_record rec;
            int n = 0;
            while (exclog_next_fault(rd, &rec, 0, NULL) == 1) {
                check(&rec);
                if (rec.vector != EXCLOG_VECTOR_PF || !rec.have_cr3 || !rec.have_rflags || ++n > (int)size)
                    abort();
            }
            exclog_close(rd);
        }
    }
    close(fd);
    return 0;
}
