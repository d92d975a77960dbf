/*
 * INCRBYFLOAT arithmetic exactly as Redis 7.0 does it: the platform's `long double`
 * (80-bit extended on x86-64), parsed with strtold under Redis's `string2ld` rules and
 * formatted with `ld2string(..., LD_STR_HUMAN)` ("%.17Lf", trailing zeros trimmed).
 * Rust has no long double, and f64 gives visibly different answers (0.1 + 0.2), so this
 * one function is C. It allocates nothing and touches no global state but errno.
 *
 * The answers are those of a redis-server built for the same target, whose `long double`
 * this is: 80-bit x87 on x86/x86-64 and 128-bit on aarch64 Linux print 0.1 + 0.2 as "0.3";
 * where `long double` is `double` (32-bit ARM, Windows) both print "0.30000000000000004".
 * The unit test's exact values are checked on the first kind only.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS. */
#define SC_MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis 7.0 util.c string2ld. */
static int sc_string2ld(const char *s, size_t slen, long double *dp) {
    char buf[SC_MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != slen ||
        (errno == ERANGE &&
         (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *dp = value;
    return 1;
}

/*
 * cur (NULL when the key does not exist) + incr, formatted into out (at least
 * SC_MAX_LONG_DOUBLE_CHARS bytes). Returns the length written, or
 * -1: the current value is not a float, -2: the increment is not a float,
 * -3: the result is NaN or infinite.
 */
long sc_incrbyfloat(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                    char *out, size_t outlen) {
    long double value = 0, by;
    int l;
    if (cur != NULL && !sc_string2ld(cur, curlen, &value)) return -1;
    if (!sc_string2ld(incr, incrlen, &by)) return -2;
    value += by;
    if (isnan(value) || isinf(value)) return -3;
    /* ld2string(LD_STR_HUMAN) */
    l = snprintf(out, outlen, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > outlen) return 0;
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        l = 1;
    }
    return l;
}
