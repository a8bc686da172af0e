/* libFuzzer harness for vm_parse_announcement: the console is guest-
 * controlled text, so any bytes must give 0 with sane fields or -1 with a
 * message, never a crash or an over-read. */
#include "faultline/vm.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The console hands over NUL-terminated lines of at most 8 KiB. */
    if (size > 8192)
        return 0;
    char *line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    vm_trigger t;
    fl_error err;
    fl_error_clear(&err);
    int rc = vm_parse_announcement(line, &t, &err);
    if (rc == 0) {
        /* Fields are terminated within their arrays and the pid is sane. */
        if (memchr(t.scenario, '\0', sizeof t.scenario) == NULL || memchr(t.comm, '\0', sizeof t.comm) == NULL ||
            t.pid < 1 || t.scenario[0] == '\0' || t.comm[0] == '\0')
            abort();
    } else if (rc != -1 || err.code == FL_OK || err.msg[0] == '\0' ||
               memchr(err.msg, '\0', sizeof err.msg) == NULL) {
        abort();
    }
    free(line);
    return 0;
}
