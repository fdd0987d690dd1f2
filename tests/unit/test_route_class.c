/* test_route_class.c: request targets collapse to the route classes a person
 * would group them by, and classing is bounded and idempotent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/route_class.h"

struct rc_case {
    const char *method;
    const char *target;
    const char *want;
};

static const struct rc_case cases[] = {
    {"GET", "/api/orders/123?x=1", "GET /api/orders/:id"},
    {"GET", "/api/orders/123", "GET /api/orders/:id"},
    {"GET", "/", "GET /"},
    {"GET", "/?q=1", "GET /"},
    {"GET", "/#frag", "GET /"},
    {"POST", "/api/orders", "POST /api/orders"},
    {"DELETE", "/users/42/sessions/7", "DELETE /users/:id/sessions/:id"},
    {"GET", "/api/orders/", "GET /api/orders/"},
    {"GET", "//double//slash", "GET //double//slash"},
    {"PUT", "/items/550e8400-e29b-41d4-a716-446655440000", "PUT /items/:id"},
    {"PUT", "/items/550E8400-E29B-41D4-A716-446655440000/x", "PUT /items/:id/x"},
    /* a near-UUID is still a token; short dashed hex is not */
    {"GET", "/items/550e8400-e29b-41d4-a716-44665544000", "GET /items/:id"},
    {"GET", "/items/e29b-41d4", "GET /items/e29b-41d4"},
    {"GET", "/blob/0123456789abcdef", "GET /blob/:id"},            /* 16 hex */
    {"GET", "/blob/0123456789abcde", "GET /blob/0123456789abcde"}, /* 15 hex: too short */
    {"GET", "/obj/507f1f77bcf86cd799439011", "GET /obj/:id"},      /* 24-hex object id */
    {"GET", "/commit/da39a3ee5e6b4b0d3255bfef95601890afd80709", "GET /commit/:id"},
    {"GET", "/pay/cus_J8s9aKd8Ssd0Xq", "GET /pay/:id"}, /* mixed token */
    {"GET", "/docs/annual-report-2024", "GET /docs/annual-report-2024"},
    {"GET", "/docs/getting-started-guide", "GET /docs/getting-started-guide"},
    {"GET", "/api/v1/users", "GET /api/v1/users"},
    {"GET", "/api/v2/orders/9", "GET /api/v2/orders/:id"},
    {"GET", "/a1b2c3", "GET /a1b2c3"}, /* short mixed stays */
    /* percent triplets: judged decoded, written as received, never split */
    {"GET", "/files/%31%32%33", "GET /files/:id"},
    {"GET", "/files/a%2Fb/c", "GET /files/a%2Fb/c"},
    {"GET", "/files/12%2F34", "GET /files/12%2F34"},
    {"GET", "/files/%zz/9", "GET /files/%zz/:id"},
    {"GET", "/files/100%", "GET /files/100%"},
    /* absolute form and forms without a path */
    {"GET", "http://example.com/api/orders/5?x", "GET /api/orders/:id"},
    {"GET", "https://example.com", "GET /"},
    {"GET", "http://example.com?x=1", "GET /"},
    {"OPTIONS", "*", "OPTIONS /*"},
    {"CONNECT", "example.com:443", "CONNECT /*"},
    {"GET", "", "GET /*"},
    /* bytes outside printable ASCII become '_'; methods keep token bytes only */
    {"GET", "/a b/\x01x", "GET /a_b/_x"},
    {"GE T", "/x", "GE_T /x"},
    {"PROPFIND", "/dav/12", "PROPFIND /dav/:id"},
    {"VERYLONGMETHODNAMEXYZ", "/x", "VERYLONGMETHODNA /x"},
    /* already classed paths are fixed points */
    {"GET", "/api/orders/:id", "GET /api/orders/:id"},
    {"GET", "/a/.../b", "GET /a/.../b"},
};

static void table_of_targets(void **state)
{
    char out[ROUTE_CLASS_MAX];
    size_t i;
    int n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rc_case *c = &cases[i];

        n = route_class(c->method, strlen(c->method), c->target, strlen(c->target), out,
                        sizeof(out));
        if (n < 0 || strcmp(out, c->want) != 0)
            print_message("# case %zu: %s %s -> %s (want %s)\n", i, c->method, c->target, out,
                          c->want);
        assert_int_equal(n, (int)strlen(c->want));
        assert_string_equal(out, c->want);
    }
}

/* Classes the path of a class again; it must not change. */
static void assert_fixed_point(const char *cls, size_t outlen)
{
    const char *sp = strchr(cls, ' ');
    char again[512];
    int n;

    assert_non_null(sp);
    assert_true(outlen <= sizeof(again));
    n = route_class(cls, (size_t)(sp - cls), sp + 1, strlen(sp + 1), again, outlen);
    assert_int_equal(n, (int)strlen(cls));
    assert_string_equal(again, cls);
}

static void classing_is_idempotent(void **state)
{
    char out[ROUTE_CLASS_MAX];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route_class(cases[i].method, strlen(cases[i].method), cases[i].target,
                    strlen(cases[i].target), out, sizeof(out));
        assert_fixed_point(out, sizeof(out));
    }
}

/* A long path is cut at a segment boundary with a "/..." marker, at every
 * buffer size, never writing past the buffer. */
static void long_paths_are_cut_cleanly(void **state)
{
    char target[600], out[300], full[1024];
    const char *next;
    size_t outlen, len = 0;
    int n, i, nfull;

    for (i = 0; i < 40; i++)
        len += (size_t)snprintf(target + len, sizeof(target) - len, "/seg%02d/%d", i, i * 1000);
    nfull = route_class("GET", 3, target, len, full, sizeof(full));
    assert_true(nfull > (int)sizeof(out));
    assert_memory_equal(full, "GET /seg00/:id/seg01/:id/", 25);
    for (outlen = ROUTE_CLASS_MIN_OUT; outlen <= sizeof(out) - 1; outlen++) {
        memset(out, 'Z', sizeof(out));
        n = route_class("GET", 3, target, len, out, outlen);
        assert_true(n >= 8 && (size_t)n < outlen);
        assert_int_equal(strlen(out), (size_t)n);
        assert_int_equal(out[outlen], 'Z'); /* nothing written past outlen */
        /* whole segments of the full class, then the marker */
        assert_string_equal(out + n - 4, "/...");
        assert_memory_equal(out, full, (size_t)n - 4);
        assert_int_equal(full[n - 4], '/');
        /* it used the room: the next segment of the full class, with room kept
         * for the marker after it, would not have fit */
        next = strchr(full + n - 3, '/');
        assert_non_null(next);
        assert_true((size_t)(next - full) + 4 > outlen - 1);
        assert_fixed_point(out, outlen);
    }
    /* a first segment longer than the buffer leaves only the marker */
    memset(target, 'z', sizeof(target));
    target[0] = '/';
    n = route_class("GET", 3, target, sizeof(target), out, 64);
    assert_string_equal(out, "GET /...");
    assert_int_equal(n, 8);
}

static void bad_arguments_are_refused(void **state)
{
    char out[ROUTE_CLASS_MAX];

    out[0] = 'x';
    assert_int_equal(route_class("", 0, "/x", 2, out, sizeof(out)), -FB_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(route_class(NULL, 3, "/x", 2, out, sizeof(out)), -FB_EINVAL);
    assert_int_equal(route_class("GET", 3, NULL, 2, out, sizeof(out)), -FB_EINVAL);
    assert_int_equal(route_class("GET", 3, "/x", 2, out, ROUTE_CLASS_MIN_OUT - 1), -FB_EINVAL);
    assert_int_equal(route_class("GET", 3, "/x", 2, NULL, 64), -FB_EINVAL);
    assert_int_equal(route_class("GET", 3, "/x", 2, out, ROUTE_CLASS_MIN_OUT), 6);
    assert_string_equal(out, "GET /x");
}

static void ids_are_returned_raw_in_order(void **state)
{
    const char *t = "/users/42/orders/550e8400-e29b-41d4-a716-446655440000/items/%31%32?x=9";
    struct route_class_id ids[8];
    unsigned n;

    n = route_class_ids(t, strlen(t), ids, 8);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0].len, 2);
    assert_memory_equal(ids[0].p, "42", 2);
    assert_int_equal(ids[1].len, 36);
    assert_memory_equal(ids[1].p, "550e8400-e29b-41d4-a716-446655440000", 36);
    assert_int_equal(ids[2].len, 6);
    assert_memory_equal(ids[2].p, "%31%32", 6);
    /* bounded by max */
    assert_int_equal(route_class_ids(t, strlen(t), ids, 2), 2);
    assert_int_equal(route_class_ids(t, strlen(t), ids, 0), 0);
    /* none in the query, none without a path */
    assert_int_equal(route_class_ids("/a?id=5", 7, ids, 8), 0);
    assert_int_equal(route_class_ids("*", 1, ids, 8), 0);
    n = route_class_ids("http://h/x/77", 13, ids, 8);
    assert_int_equal(n, 1);
    assert_memory_equal(ids[0].p, "77", 2);
}

static void hash_tells_classes_apart(void **state)
{
    const char *a = "GET /api/orders/:id", *b = "GET /api/orders";

    assert_int_equal(route_class_hash(a, strlen(a)), route_class_hash(a, strlen(a)));
    assert_true(route_class_hash(a, strlen(a)) != route_class_hash(b, strlen(b)));
    assert_true(route_class_hash("", 0) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_of_targets),
        cmocka_unit_test(classing_is_idempotent),
        cmocka_unit_test(long_paths_are_cut_cleanly),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(ids_are_returned_raw_in_order),
        cmocka_unit_test(hash_tells_classes_apart),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
