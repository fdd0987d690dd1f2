/* test_judge.c: the canary judge's verdicts on constructed and random windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/judge.h"
#include "firebreak/stats.h"

/* A window with latency counts; stable's threshold 0.2 s, canary's 0.25 s (ratio 1.25). */
static struct judge_window win(uint64_t nc, uint64_t ec, uint64_t ns, uint64_t es, uint64_t slow_c,
                               uint64_t slow_s)
{
    struct judge_window w;

    memset(&w, 0, sizeof(w));
    w.canary_requests = nc;
    w.canary_errors = ec;
    w.stable_requests = ns;
    w.stable_errors = es;
    w.has_latency = true;
    w.canary_slow = slow_c;
    w.stable_slow = slow_s;
    w.stable_threshold_s = 0.2;
    w.canary_threshold_s = 0.25;
    return w;
}

static void start(struct judge *j)
{
    struct judge_params p;

    judge_params_default(&p);
    assert_int_equal(judge_init(j, &p), 0);
}

static void add(struct judge *j, struct judge_window w)
{
    assert_int_equal(judge_add_window(j, &w), 0);
}

static enum judge_outcome outcome(const struct judge *j)
{
    struct judge_verdict v;

    judge_verdict(j, &v);
    return v.outcome;
}

/* Healthy traffic, window i: 10 canary and 990 stable requests at 0.1% errors, 1% slow. */
static struct judge_window healthy(unsigned i)
{
    return win(10, i % 100 == 0, 990, 1, i % 25 == 0, 10);
}

static void params_defaults_and_refusals(void **state)
{
    struct judge_params p;
    struct judge j;
    char why[128];

    judge_params_default(&p);
    assert_true(p.alpha == 0.001 && p.power == 0.95);
    assert_true(p.min_error_ratio == 2.0 && p.max_latency_ratio == 1.25);
    assert_int_equal(judge_params_check(&p, why, sizeof(why)), 0);
    p.alpha = 0;
    assert_int_equal(judge_params_check(&p, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "alpha"));
    assert_int_equal(judge_init(&j, &p), -FB_EINVAL);
    judge_params_default(&p);
    p.min_error_ratio = 1.0;
    assert_int_equal(judge_params_check(&p, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "min_error_ratio"));
    judge_params_default(&p);
    p.max_latency_ratio = NAN;
    assert_int_equal(judge_params_check(&p, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "max_latency_ratio"));
}

static void clear_failure_fails_within_a_few_windows(void **state)
{
    struct judge_verdict v;
    struct judge j;
    unsigned i;

    start(&j);
    /* Canary: 1 error in 10 (10%); stable: 1 in 990 (0.1%). */
    for (i = 1; i <= 20 && outcome(&j) != JUDGE_FAIL; i++)
        add(&j, win(10, 1, 990, 1, 0, 10));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_FAIL);
    assert_true(v.failed_window >= 2 && v.failed_window <= 6);
    assert_int_equal(v.errors.outcome, JUDGE_FAIL);
    assert_int_equal(v.errors.canary_requests, 10 * v.failed_window);
    assert_int_equal(v.errors.canary_events, v.failed_window);
    assert_true(v.errors.canary_ci.lo <= 0.1 && 0.1 <= v.errors.canary_ci.hi);
    assert_true(v.errors.ratio > 90 && v.errors.ratio < 110);
    assert_true(v.errors.ratio_ci.lo > 2);
    assert_true(v.errors.log_evalue >= v.errors.log_fail_threshold);
    assert_true(fabs(v.errors.log_fail_threshold - log(1 / 0.0009)) < 1e-9);
    assert_non_null(strstr(v.reason, "errors"));
}

static void half_failing_canary_fails_in_its_first_window(void **state)
{
    struct judge_verdict v;
    struct judge j;

    start(&j);
    add(&j, win(10, 5, 990, 1, 0, 10));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_FAIL);
    assert_int_equal(v.errors.canary_requests, 10);
}

static void identical_releases_never_fail_and_pass(void **state)
{
    struct judge_verdict v;
    struct judge j;

    start(&j);
    for (unsigned i = 1; i <= 3000; i++) {
        add(&j, healthy(i));
        if (i % 50 == 0)
            assert_int_not_equal(outcome(&j), JUDGE_FAIL);
    }
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_PASS);
    assert_int_equal(v.errors.outcome, JUDGE_PASS);
    assert_int_equal(v.latency.outcome, JUDGE_PASS);
    assert_true(v.errors.design_llr <= v.errors.log_pass_threshold);
}

static void canary_at_the_latency_limit_does_not_fail(void **state)
{
    struct judge j;

    /* Canary's share above 1.25 x p99 equals stable's above its p99: H0's boundary. */
    start(&j);
    for (unsigned i = 1; i <= 5000; i++)
        add(&j, win(10, 0, 990, 1, i % 10 == 0, 10));
    assert_int_not_equal(outcome(&j), JUDGE_FAIL);
}

static void slow_canary_fails_on_latency(void **state)
{
    struct judge_verdict v;
    struct judge j;

    start(&j);
    for (unsigned i = 1; i <= 30 && outcome(&j) != JUDGE_FAIL; i++)
        add(&j, win(10, i % 100 == 0, 990, 1, 3, 10));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_FAIL);
    assert_int_equal(v.latency.outcome, JUDGE_FAIL);
    assert_int_not_equal(v.errors.outcome, JUDGE_FAIL);
    assert_non_null(strstr(v.reason, "slower"));
}

static void fail_is_sticky(void **state)
{
    struct judge_verdict v;
    uint64_t at;
    struct judge j;

    start(&j);
    add(&j, win(10, 5, 990, 1, 0, 10));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_FAIL);
    at = v.failed_window;
    for (unsigned i = 1; i <= 5000; i++)
        add(&j, healthy(i));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_FAIL);
    assert_int_equal(v.failed_window, at);
}

static void no_data_is_error(void **state)
{
    struct judge_verdict v;
    struct judge j;

    start(&j);
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_ERROR);
    assert_non_null(strstr(v.reason, "no data"));
    add(&j, win(0, 0, 990, 1, 0, 10));
    assert_int_equal(outcome(&j), JUDGE_ERROR);
}

static void no_stable_traffic_is_error(void **state)
{
    struct judge_verdict v;
    struct judge j;

    start(&j);
    for (unsigned i = 1; i <= 10; i++)
        add(&j, healthy(i));
    assert_int_equal(outcome(&j), JUDGE_INCONCLUSIVE);
    for (unsigned i = 0; i < JUDGE_UNPAIRED_LIMIT; i++)
        add(&j, win(10, 5, 0, 0, 0, 0));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_ERROR);
    assert_non_null(strstr(v.reason, "no stable traffic"));
    /* The unpaired windows, errors and all, changed no statistic. */
    assert_int_equal(v.errors.canary_requests, 100);
    add(&j, healthy(11));
    assert_int_equal(outcome(&j), JUDGE_INCONCLUSIVE);
}

static void inconsistent_counts_are_refused(void **state)
{
    struct judge_verdict v;
    struct judge_window w;
    struct judge j;

    start(&j);
    add(&j, healthy(1));
    w = win(10, 12, 990, 1, 0, 10);
    assert_int_equal(judge_add_window(&j, &w), -FB_EINVAL);
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_ERROR);
    assert_non_null(strstr(v.reason, "canary errors 12 above canary requests 10"));
    assert_int_equal(v.errors.canary_requests, 10);
    assert_int_equal(v.broken_windows, 1);
    w = win(10, 0, 990, 991, 0, 10);
    assert_int_equal(judge_add_window(&j, &w), -FB_EINVAL);
    w = win(10, 0, 990, 1, 11, 10);
    assert_int_equal(judge_add_window(&j, &w), -FB_EINVAL);
    w = win(10, 0, 990, 1, 0, 10);
    w.canary_threshold_s = 0.2; /* below 1.25 x stable's 0.2 s: would bias toward passing */
    assert_int_equal(judge_add_window(&j, &w), -FB_EINVAL);
    judge_verdict(&j, &v);
    assert_non_null(strstr(v.reason, "max_latency_ratio"));
    w.canary_threshold_s = NAN;
    assert_int_equal(judge_add_window(&j, &w), -FB_EINVAL);
    assert_int_equal(outcome(&j), JUDGE_ERROR);
    add(&j, healthy(2));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_INCONCLUSIVE);
    assert_int_equal(v.broken_windows, 5);
    assert_int_equal(v.errors.canary_requests, 20);
}

static void missing_latency_is_error(void **state)
{
    struct judge_window w = win(10, 0, 990, 1, 0, 0);
    struct judge_verdict v;
    struct judge j;

    start(&j);
    w.has_latency = false;
    add(&j, w);
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_ERROR);
    assert_non_null(strstr(v.reason, "latency"));
    /* Errors are still judged: a failing canary fails without latency data. */
    w.canary_errors = 5;
    add(&j, w);
    assert_int_equal(outcome(&j), JUDGE_FAIL);
}

static void inconclusive_says_how_many_more_requests(void **state)
{
    struct judge_verdict v;
    unsigned i, more;
    struct judge j;

    start(&j);
    for (i = 1; i <= 100; i++)
        add(&j, healthy(i));
    judge_verdict(&j, &v);
    assert_int_equal(v.outcome, JUDGE_INCONCLUSIVE);
    assert_true(v.needs > 0);
    assert_non_null(strstr(v.reason, "needs about"));
    /* The estimate is about right: half of it is not enough, twice it is. */
    more = (unsigned)(v.needs / 10);
    for (unsigned k = 0; k < more / 2; k++, i++)
        add(&j, healthy(i));
    assert_int_equal(outcome(&j), JUDGE_INCONCLUSIVE);
    for (unsigned k = 0; k < more * 3 / 2; k++, i++)
        add(&j, healthy(i));
    assert_int_equal(outcome(&j), JUDGE_PASS);
}

static void evidence_json_and_summary(void **state)
{
    struct judge_verdict v;
    struct fb_buf b;
    struct judge j;
    json_t *o = NULL, *errors;

    start(&j);
    add(&j, win(10, 5, 990, 0, 0, 10));
    judge_verdict(&j, &v);
    assert_int_equal(judge_evidence_json(&v, &o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "verdict")), "fail");
    assert_true(json_is_null(json_object_get(o, "needs_canary_requests")));
    errors = json_object_get(o, "errors");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(errors, "canary"), "requests")), 10);
    assert_int_equal(json_array_size(json_object_get(errors, "ratio_ci95")), 2);
    /* No stable errors: the ratio is infinite, written as null. */
    assert_true(json_is_null(json_object_get(errors, "ratio")));
    assert_true(json_real_value(json_object_get(errors, "log_evalue")) >=
                json_real_value(json_object_get(errors, "log_fail_threshold")));
    json_decref(o);
    fb_buf_init(&b, 4096);
    assert_int_equal(judge_summary(&v, &b), 0);
    assert_memory_equal(b.data, "fail: ", 6);
    assert_non_null(strstr(b.data, "canary 5/10"));
    fb_buf_release(&b);
}

/* ---- Monte Carlo ---- */

static uint64_t mc_state;

static double mc_unit(void)
{
    uint64_t z = (mc_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* Binomial(n, p) by inversion (small n * p). */
static uint64_t mc_binom(uint64_t n, double p)
{
    double u = mc_unit(), f = pow(1 - p, (double)n), pk = f;
    uint64_t k = 0;

    while (u > f && k < n) {
        pk *= (double)(n - k) / (double)(k + 1) * p / (1 - p);
        k++;
        f += pk;
    }
    return k;
}

struct mc_counts {
    unsigned fails;       /* rollouts the judge failed */
    unsigned errors_pass; /* rollouts whose error test passed at some window */
};

/* Runs 2000 rollouts of 200 windows at alpha 0.05 (20 canary, 180 stable requests each). */
static struct mc_counts mc_run(double canary_err, double base_err)
{
    struct mc_counts c = {0, 0};
    struct judge_params p;

    judge_params_default(&p);
    p.alpha = 0.05;
    for (unsigned run = 0; run < 2000; run++) {
        bool passed = false;
        struct judge j;

        assert_int_equal(judge_init(&j, &p), 0);
        for (unsigned i = 0; i < 200 && !j.errors.failed && !j.latency.failed; i++) {
            add(&j, win(20, mc_binom(20, canary_err), 180, mc_binom(180, base_err),
                        mc_binom(20, 0.02), mc_binom(180, 0.02)));
            passed = passed || j.errors.llr[0] <= j.errors.log_pass;
        }
        c.fails += j.errors.failed || j.latency.failed;
        c.errors_pass += passed;
    }
    return c;
}

static void monte_carlo_error_rates_within_bounds(void **state)
{
    /* Each count is at most Binomial(2000, 0.05) under its hypothesis; allow a 1e-4 tail. */
    unsigned bound = (unsigned)stats_binom_quantile(1 - 1e-4, 2000, 0.05);
    struct mc_counts c;

    mc_state = 42;
    c = mc_run(0.02, 0.02);
    print_message("A/A: %u of 2000 failed (bound %u)\n", c.fails, bound);
    assert_true(c.fails <= bound);
    /* A canary exactly at the design ratio is passed with probability at most beta... */
    c = mc_run(0.04, 0.02);
    print_message("A/B 2x: %u of 2000 passed on errors (bound %u), %u failed\n", c.errors_pass,
                  bound, c.fails);
    assert_true(c.errors_pass <= bound);
    /* ...and one three times worse is caught nearly always within 200 windows. */
    c = mc_run(0.06, 0.02);
    print_message("A/B 3x: %u of 2000 failed\n", c.fails);
    assert_true(c.fails >= 1900);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(params_defaults_and_refusals),
        cmocka_unit_test(clear_failure_fails_within_a_few_windows),
        cmocka_unit_test(half_failing_canary_fails_in_its_first_window),
        cmocka_unit_test(identical_releases_never_fail_and_pass),
        cmocka_unit_test(canary_at_the_latency_limit_does_not_fail),
        cmocka_unit_test(slow_canary_fails_on_latency),
        cmocka_unit_test(fail_is_sticky),
        cmocka_unit_test(no_data_is_error),
        cmocka_unit_test(no_stable_traffic_is_error),
        cmocka_unit_test(inconsistent_counts_are_refused),
        cmocka_unit_test(missing_latency_is_error),
        cmocka_unit_test(inconclusive_says_how_many_more_requests),
        cmocka_unit_test(evidence_json_and_summary),
        cmocka_unit_test(monte_carlo_error_rates_within_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
