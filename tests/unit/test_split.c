/*
 * test_split.c: the sticky split, outlier ejection and the affected-users
 * sets: who goes where when weights move, when an endpoint is taken out and
 * let back, and how many users a release failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/affected.h"
#include "firebreak/health.h"
#include "firebreak/h1_parse.h"
#include "firebreak/split.h"

#define USERS 20000

static void service_init2(struct route_service *s, struct route_release *rel, uint32_t canary_bp)
{
    memset(s, 0, sizeof(*s));
    memset(rel, 0, 2 * sizeof(*rel));
    snprintf(s->name, sizeof(s->name), "shop");
    snprintf(rel[0].name, sizeof(rel[0].name), "v1");
    snprintf(rel[1].name, sizeof(rel[1].name), "v2");
    rel[0].weight_bp = 10000 - canary_bp;
    rel[1].weight_bp = canary_bp;
    s->releases = rel;
    s->nreleases = 2;
    s->stable = 0;
    split_assign(s);
}

static unsigned release_of(const struct route_service *s, unsigned user)
{
    char key[32];
    int n = snprintf(key, sizeof(key), "user-%u", user);

    return split_release(s, split_bucket(s->name, key, (size_t)n));
}

/* The share of users on the canary is within 3 sigma of its weight. */
static void shares_follow_weights(void **state)
{
    static const uint32_t weights[] = {100, 500, 5000};
    struct route_service s;
    struct route_release rel[2];
    unsigned i, u, on;

    for (i = 0; i < 3; i++) {
        double p = weights[i] / 10000.0, sigma;

        service_init2(&s, rel, weights[i]);
        for (on = 0, u = 0; u < USERS; u++)
            on += release_of(&s, u) == 1;
        sigma = 3 * sqrt(USERS * p * (1 - p));
        assert_true(on >= USERS * p - sigma && on <= USERS * p + sigma);
    }
}

/* Raising the canary from 5% to 25% moves users only from stable to it;
 * lowering it again moves only its own users back. */
static void ramping_only_moves_stable_users(void **state)
{
    struct route_service s5, s25, s1;
    struct route_release r5[2], r25[2], r1[2];
    unsigned u;

    service_init2(&s5, r5, 500);
    service_init2(&s25, r25, 2500);
    service_init2(&s1, r1, 100);
    for (u = 0; u < USERS; u++) {
        if (release_of(&s5, u) == 1)
            assert_int_equal(release_of(&s25, u), 1);
        if (release_of(&s1, u) == 1)
            assert_int_equal(release_of(&s5, u), 1);
    }
}

static void stable_takes_everything_at_zero(void **state)
{
    struct route_service s;
    struct route_release rel[2];
    unsigned u;

    service_init2(&s, rel, 0);
    for (u = 0; u < 2000; u++)
        assert_int_equal(release_of(&s, u), 0);
    service_init2(&s, rel, 10000);
    for (u = 0; u < 2000; u++)
        assert_int_equal(release_of(&s, u), 1);
}

static void cookie_is_found_among_others(void **state)
{
    struct h1_field f[2];
    struct h1_span v;

    memset(f, 0, sizeof(f));
    f[0].known = H1_H_COOKIE;
    f[0].value = (struct h1_span){"theme=dark;  fb_uid=abc123 ; x=1", 32};
    f[1].known = H1_H_COOKIE;
    f[1].value = (struct h1_span){"fb_uidx=no", 10};
    assert_true(split_cookie(f, 2, "fb_uid", &v));
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.p, "abc123", 6);
    assert_false(split_cookie(f, 1, "x_uid", &v));
    assert_true(split_key_valid("abc", 3));
    assert_false(split_key_valid("a b", 3));
    assert_false(split_key_valid("", 0));
}

/* Five failures in a row eject; the ejection ends; one probe decides. */
static void ejection_and_probe(void **state)
{
    struct health *h = calloc(1, sizeof(*h));
    uint64_t t = 1000000000ull, s30 = 30000000000ull;
    bool probe;
    int i;

    health_init(h, 5, s30, 300000000000ull);
    for (i = 0; i < 4; i++)
        health_report(h, 7, false, false, t);
    assert_int_equal(health_state(h, 7, t), HEALTH_OK);
    health_report(h, 7, true, false, t); /* a success resets the run */
    for (i = 0; i < 5; i++)
        health_report(h, 7, false, false, t);
    assert_int_equal(health_state(h, 7, t), HEALTH_EJECTED);
    assert_false(health_admit(h, 7, t + s30 - 1, &probe));
    assert_true(health_admit(h, 7, t + s30, &probe));
    assert_true(probe);
    assert_false(health_admit(h, 7, t + s30 + 1, &probe)); /* one probe at a time */
    health_report(h, 7, false, true, t + s30 + 2);             /* it failed: 60 s now */
    assert_false(health_admit(h, 7, t + s30 + 2 + s30, &probe));
    assert_true(health_admit(h, 7, t + s30 + 2 + 2 * s30, &probe));
    health_report(h, 7, true, true, t + 3 * s30 + 3);
    assert_int_equal(health_state(h, 7, t + 3 * s30 + 3), HEALTH_OK);
    assert_int_equal(h->eps[7].total_ejections, 2);
    free(h);
}

/* Distinct users, counted by when they failed; a full ring drops and says so. */
static void affected_users_are_distinct(void **state)
{
    struct affected *a = affected_new(2, 8, 1000);
    const struct release_metrics *rm = (const struct release_metrics *)a; /* any stable key */
    unsigned i;

    assert_non_null(a);
    for (i = 0; i < 6; i++)
        affected_push(a, 0, rm, 100 + i % 3, 1000 + i);
    affected_push(a, 1, rm, 555, 5000);
    affected_drain(a);
    assert_int_equal(affected_count(a, rm, 0, 0), 4);
    assert_int_equal(affected_count(a, rm, 4000, 0), 1);
    assert_int_equal(affected_count(a, rm, 0, 1001), 2);
    for (i = 0; i < 20; i++)
        affected_push(a, 1, rm, 1000 + i, 6000);
    assert_true(affected_dropped(a) >= 12);
    affected_drain(a);
    assert_int_equal(affected_count(a, rm, 6000, 0), 8);
    affected_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shares_follow_weights),
        cmocka_unit_test(ramping_only_moves_stable_users),
        cmocka_unit_test(stable_takes_everything_at_zero),
        cmocka_unit_test(cookie_is_found_among_others),
        cmocka_unit_test(ejection_and_probe),
        cmocka_unit_test(affected_users_are_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
