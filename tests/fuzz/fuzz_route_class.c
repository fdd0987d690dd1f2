/*
 * fuzz_route_class.c: route_class never writes past its buffer, always gives
 * "METHOD /...", is a fixed point on its own output, and every identifier
 * route_class_ids returns lies inside the target and classes as ":id".
 *
 * Input: byte 0 picks the buffer size; the rest is "METHOD TARGET" (split at
 * the first space; without one, the method is GET and all of it is target).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/route_class.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

/* The output's path classed again with the output's method gives itself. */
static void check_fixed_point(const char *out, int n, size_t outlen)
{
    const char *sp = memchr(out, ' ', (size_t)n);
    char *again = malloc(outlen);
    int m;

    check(sp != NULL && again != NULL);
    m = route_class(out, (size_t)(sp - out), sp + 1, (size_t)(out + n - sp - 1), again, outlen);
    check(m == n && memcmp(again, out, (size_t)n + 1) == 0);
    free(again);
}

static void check_ids(const char *target, size_t tlen)
{
    struct route_class_id ids[8];
    char cls[ROUTE_CLASS_MAX], one[ROUTE_CLASS_MAX + 8];
    unsigned n = route_class_ids(target, tlen, ids, 8), i;
    int k;

    check(n <= 8);
    for (i = 0; i < n; i++) {
        check(ids[i].p >= target && ids[i].p + ids[i].len <= target + tlen);
        if (ids[i].len + 2 > sizeof(one))
            continue; /* too long to class alone in this buffer */
        one[0] = '/';
        memcpy(one + 1, ids[i].p, ids[i].len);
        k = route_class("GET", 3, one, ids[i].len + 1, cls, sizeof(cls));
        check(k == 8 && memcmp(cls, "GET /:id", 9) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *method = "GET", *target, *sp;
    size_t mlen = 3, tlen, outlen;
    char *out;
    int n;

    if (size < 1)
        return 0;
    outlen = ROUTE_CLASS_MIN_OUT + data[0] % 160;
    target = (const char *)data + 1;
    tlen = size - 1;
    sp = memchr(target, ' ', tlen);
    if (sp && sp > target) {
        method = target;
        mlen = (size_t)(sp - target);
        tlen -= mlen + 1;
        target = sp + 1;
    }
    out = malloc(outlen); /* exact size: ASan catches any write past it */
    if (!out)
        return 0;
    n = route_class(method, mlen, target, tlen, out, outlen);
    check(n >= 0 && (size_t)n < outlen && out[n] == '\0' && strlen(out) == (size_t)n);
    sp = memchr(out, ' ', (size_t)n);
    check(sp != NULL && sp > out && sp[1] == '/');
    check(memchr(sp + 1, ' ', (size_t)(out + n - sp - 1)) == NULL);
    check_fixed_point(out, n, outlen);
    check_ids(target, tlen);
    free(out);
    return 0;
}
