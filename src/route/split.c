/*
 * split.c: which release serves a user.
 *
 * The hash is FNV-1a over "service\0key" followed by a 64-bit finaliser, so
 * short keys that differ in one byte still land far apart; the modulo bias of
 * 2^64 mod 10000 is below 1e-15. Cost: O(key length) for the hash and
 * O(releases) for the range lookup, no allocation.
 */
#include <string.h>
#include <strings.h>

#include "firebreak/h1_parse.h"
#include "firebreak/split.h"

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t split_hash(const char *service, const char *key, size_t key_len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p;
    size_t i;

    for (p = (const unsigned char *)service; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h = (h ^ 0) * 0x100000001b3ull;
    for (i = 0; i < key_len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
    return mix64(h);
}

uint32_t split_bucket(const char *service, const char *key, size_t key_len)
{
    return (uint32_t)(split_hash(service, key, key_len) % SPLIT_BUCKETS);
}

void split_assign(struct route_service *s)
{
    uint32_t lo = 0;
    unsigned i;

    for (i = 0; i < s->nreleases; i++) {
        struct route_release *r = &s->releases[i];

        if (i == s->stable)
            continue;
        r->bucket_lo = lo;
        lo += r->weight_bp;
        if (lo > SPLIT_BUCKETS)
            lo = SPLIT_BUCKETS;
        r->bucket_hi = lo;
    }
    s->releases[s->stable].bucket_lo = lo;
    s->releases[s->stable].bucket_hi = SPLIT_BUCKETS;
}

unsigned split_release(const struct route_service *s, uint32_t b)
{
    unsigned i;

    for (i = 0; i < s->nreleases; i++) {
        const struct route_release *r = &s->releases[i];

        if (i != s->stable && b >= r->bucket_lo && b < r->bucket_hi)
            return i;
    }
    return s->stable;
}

bool split_key_valid(const char *p, size_t len)
{
    size_t i;

    if (len == 0 || len > SPLIT_KEY_MAX)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];

        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == ',' || ch == ';' || ch == '\\')
            return false;
    }
    return true;
}

/* Looks for name=value in one Cookie field value ("a=1; b=2"). */
static bool cookie_in(struct h1_span v, const char *name, size_t nlen, struct h1_span *out)
{
    const char *p = v.p, *end = v.p + v.len;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *eq;

        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && (size_t)(eq - p) == nlen && !memcmp(p, name, nlen)) {
            out->p = eq + 1;
            out->len = (size_t)(stop - out->p);
            while (out->len && (out->p[out->len - 1] == ' ' || out->p[out->len - 1] == '\t'))
                out->len--;
            return out->len > 0;
        }
        p = stop + 1;
    }
    return false;
}

bool split_cookie(const struct h1_field *fields, unsigned n, const char *name,
                  struct h1_span *value)
{
    size_t nlen = strlen(name);
    unsigned i;

    for (i = 0; i < n; i++) {
        if (fields[i].known == H1_H_COOKIE && cookie_in(fields[i].value, name, nlen, value))
            return true;
    }
    return false;
}

bool split_header(const struct h1_field *fields, unsigned n, const char *lower_name,
                  struct h1_span *value)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (h1_span_eq(fields[i].name, lower_name) && fields[i].value.len) {
            *value = fields[i].value;
            return true;
        }
    }
    return false;
}
