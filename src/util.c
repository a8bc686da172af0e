/* util: see util.h. */
#include "faultline/util.h"

#include <time.h>

double fl_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t fl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fl_deadline_ms(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : fl_now_ms() + timeout_ms;
}

int fl_remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - fl_now_ms();
    return left < 0 ? 0 : (int)left;
}

int fl_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t fl_parse_hex(const char *p, size_t len, uint64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;
    while (i < len && i < 16 && fl_hexval(p[i]) >= 0)
        x = x << 4 | (uint64_t)fl_hexval(p[i++]);
    *v = x;
    return i;
}

int fl_parse_hex64(const char *s, uint64_t *out)
{
    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || s[2] == '\0')
        return -1;
    const char *d = s + 2;
    while (d[0] == '0' && d[1] != '\0')
        d++; /* leading zeros never overflow */
    uint64_t v;
    size_t n = 0;
    while (d[n])
        n++;
    if (n > 16 || fl_parse_hex(d, n, &v) != n)
        return -1;
    *out = v;
    return 0;
}
