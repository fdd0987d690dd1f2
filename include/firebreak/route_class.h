/*
 * route_class.h: the route class of a request, "GET /api/orders/:id".
 *
 * A route class is the method, a space and the request path with the query
 * and fragment dropped and every identifier-looking segment replaced by
 * ":id", so that per-route counters stay few however many orders there are.
 * The rules are in route_class.c and docs/internals/metrics.md.
 *
 * Pure functions: no allocation, no global state, safe from any thread.
 */
#ifndef FIREBREAK_ROUTE_CLASS_H
#define FIREBREAK_ROUTE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_CLASS_MAX 120       /* a good out size; equals METRICS_ROUTE_NAME_MAX */
#define ROUTE_CLASS_METHOD_MAX 16 /* longer methods are cut to this many bytes */
/* Smallest outlen route_class accepts: method, space, "/...", NUL. */
#define ROUTE_CLASS_MIN_OUT (ROUTE_CLASS_METHOD_MAX + 6)
#define ROUTE_CLASS_ID ":id"     /* what an identifier segment becomes */
#define ROUTE_CLASS_CUT "..."    /* last segment when the class was cut short */
#define ROUTE_CLASS_NO_PATH "/*" /* path of a target in asterisk or authority form */

/* An identifier segment as it appears in the request target (not decoded). */
struct route_class_id {
    const char *p; /* points into the caller's target */
    size_t len;
};

/*
 * Writes the class of (method, target) into out (outlen bytes, at least
 * ROUTE_CLASS_MIN_OUT), NUL-terminated. The target may be in origin form
 * ("/a/b?q"), absolute form ("http://h/a/b") or anything else (asterisk,
 * authority), whose path is ROUTE_CLASS_NO_PATH. Method bytes that are not token
 * characters and path bytes outside printable ASCII become '_'.
 * When the class does not fit, it ends at a segment boundary with the segment
 * ROUTE_CLASS_CUT. Returns the length written (< outlen), or -FB_EINVAL for a
 * NULL or empty method, a NULL target with tlen > 0, or outlen below
 * ROUTE_CLASS_MIN_OUT (out is then left as "" when outlen > 0).
 * Classing the path of a result again with its method and the same outlen
 * gives the same result.
 */
int route_class(const char *method, size_t mlen, const char *target, size_t tlen, char *out,
                size_t outlen);

/* Stores the first max identifier segments of target's path, in order, into
 * ids (borrowed spans into target). Returns how many were stored. */
unsigned route_class_ids(const char *target, size_t tlen, struct route_class_id *ids, unsigned max);

/* 64-bit FNV-1a hash of a class string, never 0: the key of the per-route
 * counters in metrics_count_route. */
uint64_t route_class_hash(const char *cls, size_t len);

#endif
