/*
 * route_class.c: "GET /api/orders/123?x=1" -> "GET /api/orders/:id".
 *
 * Steps: take the path out of the target (origin or absolute form; any other
 * form gets ROUTE_CLASS_NO_PATH), drop the query and fragment, split the path
 * at raw '/' bytes and replace each identifier segment by ":id".
 *
 * A segment is judged on its view: percent triplets (%XX with two hex digits)
 * decoded, then every byte outside printable ASCII (0x21..0x7e) read as '_'.
 * Decoding is only for judging: segments are cut at raw '/' bytes, so "%2F"
 * never splits a segment, and a kept segment is written as received (with
 * the same '_' replacement). A segment is an identifier when its view is
 *   - one or more decimal digits ("123");
 *   - UUID-shaped: 8-4-4-4-12 hex digits with dashes;
 *   - 16 or more hex digits (hashes, object ids);
 *   - 16 or more of [A-Za-z0-9_-] with a letter, at least two digits and a
 *     digit next to a letter ("cus_J8s9aKd8Ssd0Xq", tokens); long slugs of
 *     words and separate numbers ("annual-report-2024") stay.
 *
 * Invariants: out never receives more than outlen bytes; the result starts
 * with the method, a space and '/'; classing the result's path again gives
 * the result (":id", "..." and '_' are fixed points of the rules above).
 *
 * Cost: one pass over the target; no allocation.
 */
#include <stdbool.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/route_class.h"

/* ---- character classes ---- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_val(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    return (unsigned)(c | 0x20) - 'a' + 10;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    return is_digit(c) || is_alpha(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Printable ASCII is kept; every other byte is written and judged as '_'. */
static unsigned char sanitize(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e ? c : '_';
}

/* ---- the path in a target ---- */

/* Length of an absolute-form prefix "scheme://authority", or 0 when the
 * target does not start with one. */
static size_t authority_end(const char *t, size_t n)
{
    size_t i = 0;

    if (n == 0 || !is_alpha((unsigned char)t[0]))
        return 0;
    while (i < n && (is_alpha((unsigned char)t[i]) || is_digit((unsigned char)t[i]) ||
                     t[i] == '+' || t[i] == '-' || t[i] == '.'))
        i++;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return 0;
    i += 3;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    return i;
}

/* Finds the path of a target: *p points at its first '/' (or *n is 0 for an
 * absolute form without a path). Returns false for forms without a path. */
static bool target_path(const char *t, size_t tlen, const char **p, size_t *n)
{
    size_t start = 0, end;

    if (tlen == 0 || t[0] != '/') {
        start = authority_end(t, tlen);
        if (start == 0)
            return false;
    }
    end = start;
    while (end < tlen && t[end] != '?' && t[end] != '#')
        end++;
    *p = t + start;
    *n = end - start;
    return true;
}

/* ---- judging a segment ---- */

struct seg_view {
    size_t n; /* bytes in the view */
    size_t digits;
    bool all_digit;
    bool all_hex;
    bool all_idchar; /* [A-Za-z0-9_-] */
    bool has_alpha;
    bool digit_by_alpha; /* a digit directly before or after a letter */
    bool uuid;           /* so far shaped like a UUID */
};

static void view_add(struct seg_view *v, unsigned char c, unsigned char prev)
{
    bool dash_pos = v->n == 8 || v->n == 13 || v->n == 18 || v->n == 23;

    v->uuid = v->uuid && v->n < 36 && (dash_pos ? c == '-' : is_hex(c));
    v->all_digit = v->all_digit && is_digit(c);
    v->all_hex = v->all_hex && is_hex(c);
    v->all_idchar = v->all_idchar && (is_alpha(c) || is_digit(c) || c == '-' || c == '_');
    v->has_alpha = v->has_alpha || is_alpha(c);
    v->digits += is_digit(c);
    if (v->n > 0 && ((is_digit(c) && is_alpha(prev)) || (is_alpha(c) && is_digit(prev))))
        v->digit_by_alpha = true;
    v->n++;
}

/* The next byte of the view of s[i..n) and how many raw bytes it took. */
static size_t view_next(const char *s, size_t n, size_t i, unsigned char *c)
{
    const unsigned char *u = (const unsigned char *)s;

    if (u[i] == '%' && n - i >= 3 && is_hex(u[i + 1]) && is_hex(u[i + 2])) {
        *c = sanitize((unsigned char)(hex_val(u[i + 1]) << 4 | hex_val(u[i + 2])));
        return 3;
    }
    *c = sanitize(u[i]);
    return 1;
}

static bool seg_is_id(const char *s, size_t n)
{
    struct seg_view v = {0, 0, true, true, true, false, false, true};
    unsigned char c, prev = 0;
    size_t i = 0;

    while (i < n) {
        i += view_next(s, n, i, &c);
        view_add(&v, c, prev);
        prev = c;
    }
    if (v.n == 0)
        return false;
    if (v.all_digit || (v.uuid && v.n == 36) || (v.all_hex && v.n >= 16))
        return true;
    return v.n >= 16 && v.all_idchar && v.has_alpha && v.digits >= 2 && v.digit_by_alpha;
}

/* ---- writing the class ---- */

struct out_w {
    char *p;
    size_t cap; /* bytes usable before the NUL */
    size_t len;
};

/* Appends n bytes of s, sanitised; the caller has checked the room. */
static void put(struct out_w *w, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        w->p[w->len++] = (char)sanitize((unsigned char)s[i]);
}

static void put_method(struct out_w *w, const char *m, size_t mlen)
{
    size_t i;

    if (mlen > ROUTE_CLASS_METHOD_MAX)
        mlen = ROUTE_CLASS_METHOD_MAX;
    for (i = 0; i < mlen; i++)
        w->p[w->len++] = is_tchar((unsigned char)m[i]) ? m[i] : '_';
    w->p[w->len++] = ' ';
}

/* Writes the segments of path (which starts with '/', or is empty) as far as
 * they fit, keeping room for "/..." until the last one. */
static void put_path(struct out_w *w, const char *path, size_t n)
{
    const char *seg = n > 0 ? path + 1 : path, *end = path + n, *slash;
    size_t seglen, need;
    bool last;

    do {
        slash = memchr(seg, '/', (size_t)(end - seg));
        last = slash == NULL;
        seglen = (size_t)((last ? end : slash) - seg);
        if (seg_is_id(seg, seglen)) {
            seg = ROUTE_CLASS_ID; /* judged: write the placeholder instead */
            need = sizeof(ROUTE_CLASS_ID) - 1;
        } else {
            need = seglen;
        }
        if (w->len + 1 + need + (last ? 0 : 4) > w->cap) {
            put(w, "/" ROUTE_CLASS_CUT, 4);
            break;
        }
        put(w, "/", 1);
        put(w, seg, need);
        if (!last)
            seg = slash + 1;
    } while (!last);
}

int route_class(const char *method, size_t mlen, const char *target, size_t tlen, char *out,
                size_t outlen)
{
    struct out_w w = {out, 0, 0};
    const char *path;
    size_t plen;

    if (out && outlen > 0)
        out[0] = '\0';
    if (!out || outlen < ROUTE_CLASS_MIN_OUT || !method || mlen == 0 || (!target && tlen > 0))
        return -FB_EINVAL;
    w.cap = outlen - 1;
    put_method(&w, method, mlen);
    if (target_path(target, tlen, &path, &plen))
        put_path(&w, path, plen);
    else
        put(&w, ROUTE_CLASS_NO_PATH, sizeof(ROUTE_CLASS_NO_PATH) - 1);
    out[w.len] = '\0';
    return (int)w.len;
}

unsigned route_class_ids(const char *target, size_t tlen, struct route_class_id *ids, unsigned max)
{
    const char *path, *seg, *end, *slash;
    unsigned found = 0;
    size_t plen;

    if (!target || !target_path(target, tlen, &path, &plen) || plen == 0)
        return 0;
    seg = path + 1;
    end = path + plen;
    while (found < max) {
        slash = memchr(seg, '/', (size_t)(end - seg));
        if (seg_is_id(seg, (size_t)((slash ? slash : end) - seg))) {
            ids[found].p = seg;
            ids[found].len = (size_t)((slash ? slash : end) - seg);
            found++;
        }
        if (!slash)
            break;
        seg = slash + 1;
    }
    return found;
}

uint64_t route_class_hash(const char *cls, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)cls[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}
