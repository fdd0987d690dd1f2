/* test_hist.c: the latency histogram keeps its error bound over 1 us .. 60 s,
 * merges exactly and reads safely while its writer records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/hist.h"

static struct hist *hist_alloc(void)
{
    struct hist *h = malloc(sizeof(*h));

    assert_non_null(h);
    hist_init(h);
    return h;
}

/* xorshift64*: a fixed, portable sequence for reproducible data. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

static double rel_err(uint64_t got, uint64_t want)
{
    return fabs((double)got - (double)want) / (double)want;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* One value alone: every quantile of it must come back within the bound. */
static void single_values_within_bound_over_whole_range(void **state)
{
    struct hist *h = hist_alloc();
    double worst = 0, e;
    uint64_t v;
    int i;

    assert_true(HIST_MAX_REL_ERROR <= 0.02);
    for (i = 0; i <= 20000; i++) {
        /* geometric steps from 1 us to 60 s, plus each neighbour */
        v = (uint64_t)llround(1000.0 * pow(60e9 / 1000.0, i / 20000.0));
        for (uint64_t d = 0; d < 2 && v + d <= HIST_MAX_NS; d++) {
            hist_init(h);
            hist_record(h, v + d);
            e = rel_err(hist_quantile(h, 0.5), v + d);
            worst = e > worst ? e : worst;
            assert_true(e <= HIST_MAX_REL_ERROR + 1e-12);
            assert_int_equal(hist_count_le(h, v + d), 1);
            assert_int_equal(hist_count_above(h, v + d), 0);
        }
    }
    print_message("# worst relative error over 1 us .. 60 s: %.4f%%\n", worst * 100);
    assert_true(worst <= 0.02);
    free(h);
}

/* Every bucket: both of its edges land in it and are reported within bound. */
static void bucket_edges_land_in_their_bucket(void **state)
{
    unsigned i;

    for (i = 0; i < HIST_OVERFLOW; i++) {
        uint64_t lo = hist_bucket_lower(i), hi = hist_bucket_upper(i);

        assert_true(lo <= hi);
        assert_int_equal(hist_index(lo), i);
        assert_int_equal(hist_index(hi), i);
        if (i + 1 < HIST_OVERFLOW)
            assert_int_equal(hist_bucket_lower(i + 1), hi + 1);
        if (lo >= 1000) {
            assert_true(rel_err(hist_bucket_value(i), lo) <= HIST_MAX_REL_ERROR + 1e-12);
            assert_true(rel_err(hist_bucket_value(i), hi) <= HIST_MAX_REL_ERROR + 1e-12);
        }
    }
    assert_int_equal(hist_bucket_upper(HIST_OVERFLOW - 1), HIST_MAX_NS);
    assert_int_equal(hist_index(HIST_MAX_NS + 1), HIST_OVERFLOW);
}

/* Checks hist quantiles of n sorted values against their order statistics. */
static void check_quantiles(const struct hist *h, const uint64_t *sorted, size_t n,
                            const char *what)
{
    static const double qs[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0};
    size_t k, rank;
    double e;

    assert_int_equal(hist_count(h), n);
    for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        rank = (size_t)ceil(qs[k] * (double)n);
        rank = rank == 0 ? 1 : rank;
        e = rel_err(hist_quantile(h, qs[k]), sorted[rank - 1]);
        if (e > 0.02)
            print_message("# %s q=%g: got %llu want %llu\n", what, qs[k],
                          (unsigned long long)hist_quantile(h, qs[k]),
                          (unsigned long long)sorted[rank - 1]);
        assert_true(e <= 0.02);
    }
}

enum dist { LOG_UNIFORM, EXPONENTIAL, BIMODAL, EVERY_US };

static uint64_t draw(enum dist d, uint64_t *s, size_t i)
{
    switch (d) {
    case LOG_UNIFORM: /* 1 us .. 60 s, flat in log space */
        return (uint64_t)(1000.0 * exp(rng_unit(s) * log(60e9 / 1000.0)));
    case EXPONENTIAL: /* mean 5 ms, floored at 1 us */
        return 1000 + (uint64_t)(-5e6 * log(1.0 - rng_unit(s)));
    case BIMODAL: /* 90% near 2 ms, 10% near 1.5 s */
        return rng_unit(s) < 0.9 ? 1500000 + rng_next(s) % 1000000
                                 : 1000000000 + rng_next(s) % 1000000000;
    default: /* 1 us, 2 us, ... */
        return (uint64_t)(i + 1) * 1000;
    }
}

static void quantiles_of_known_distributions(void **state)
{
    static const char *names[] = {"log-uniform", "exponential", "bimodal", "every-us"};
    size_t n = 200000, i;
    uint64_t *vals = malloc(n * sizeof(*vals)), seed = 0x9e3779b97f4a7c15ull, sum;
    struct hist *h = hist_alloc();
    int d;

    assert_non_null(vals);
    for (d = LOG_UNIFORM; d <= EVERY_US; d++) {
        hist_init(h);
        sum = 0;
        for (i = 0; i < n; i++) {
            vals[i] = draw((enum dist)d, &seed, i);
            sum += vals[i];
            hist_record(h, vals[i]);
        }
        qsort(vals, n, sizeof(*vals), cmp_u64);
        check_quantiles(h, vals, n, names[d]);
        assert_int_equal(hist_sum_ns(h), sum);
    }
    free(vals);
    free(h);
}

static void out_of_range_values_are_clamped(void **state)
{
    struct hist *h = hist_alloc();

    hist_record(h, 0);
    hist_record(h, 1);
    hist_record(h, 999);
    hist_record(h, 61000000000ull);
    hist_record(h, 3600000000000ull);
    assert_int_equal(hist_count(h), 5);
    assert_int_equal(hist_sum_ns(h), 1000 + 61000000000ull + 3600000000000ull);
    assert_int_equal(hist_count_le(h, 1000), 3);
    assert_int_equal(hist_count_le(h, HIST_MAX_NS), 3);
    assert_int_equal(hist_count_above(h, HIST_MAX_NS), 2);
    assert_true(hist_quantile(h, 0.0) <= 1000);
    assert_int_equal(hist_quantile(h, 1.0), HIST_MAX_NS);
    assert_int_equal(hist_quantile(h, 0.7), HIST_MAX_NS);
    /* bad q values are clamped, not trusted */
    assert_true(hist_quantile(h, -3.0) <= 1000);
    assert_true(hist_quantile(h, NAN) <= 1000);
    assert_int_equal(hist_quantile(h, 7.0), HIST_MAX_NS);
    free(h);
}

static void empty_histogram_reads_zero(void **state)
{
    struct hist *h = hist_alloc();

    assert_int_equal(hist_quantile(h, 0.5), 0);
    assert_int_equal(hist_count(h), 0);
    assert_int_equal(hist_count_le(h, 1000000), 0);
    assert_int_equal(hist_count_above(h, 0), 0);
    free(h);
}

/* 1 ms .. 1000 ms in 1 ms steps: count_le is exact up to one bucket. */
static void count_le_and_above_split_the_total(void **state)
{
    struct hist *h = hist_alloc();
    uint64_t ms, bound, le, exact;

    for (ms = 1; ms <= 1000; ms++)
        hist_record(h, ms * 1000000);
    for (bound = 500000; bound <= 2000000000ull; bound = bound * 3 / 2) {
        exact = bound / 1000000 > 1000 ? 1000 : bound / 1000000;
        le = hist_count_le(h, bound);
        /* at least every value <= bound; at most those within one bucket above */
        assert_true(le >= exact);
        assert_true(le <= exact + 1 + (uint64_t)(bound / 1000000 * HIST_MAX_REL_ERROR * 2));
        assert_int_equal(le + hist_count_above(h, bound), 1000);
    }
    /* at a bucket's upper edge the count is exact */
    bound = hist_bucket_upper(hist_index(250000000));
    assert_int_equal(hist_count_le(h, bound), bound / 1000000);
    assert_true(bound / 1000000 >= 250);
    free(h);
}

static void merge_equals_recording_both(void **state)
{
    struct hist *a = hist_alloc(), *b = hist_alloc(), *both = hist_alloc();
    uint64_t seed = 42, v;
    unsigned i;

    for (i = 0; i < 50000; i++) {
        v = draw(LOG_UNIFORM, &seed, i);
        hist_record(i % 3 ? a : b, v);
        hist_record(both, v);
    }
    hist_record(b, HIST_MAX_NS * 2);
    hist_record(both, HIST_MAX_NS * 2);
    hist_merge(a, b);
    assert_int_equal(hist_count(a), 50001);
    assert_int_equal(hist_sum_ns(a), hist_sum_ns(both));
    assert_memory_equal(a->buckets, both->buckets, sizeof(a->buckets));
    assert_int_equal(hist_quantile(a, 0.99), hist_quantile(both, 0.99));
    free(a);
    free(b);
    free(both);
}

#define WRITES 2000000u

struct race {
    struct hist *h;
    volatile int done;
};

static void *writer(void *arg)
{
    struct race *r = arg;
    unsigned i;

    for (i = 0; i < WRITES; i++)
        hist_record(r->h, 1000 + (uint64_t)(i % 5000) * 7919);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* A reader snapshotting while the one writer records: totals only grow, and
 * end exact. */
static void snapshots_while_writing_are_monotonic(void **state)
{
    struct race r = {hist_alloc(), 0};
    struct hist *snap = hist_alloc();
    uint64_t last_count = 0, last_sum = 0, expect_sum = 0, reads = 0;
    pthread_t t;
    unsigned i;

    assert_int_equal(pthread_create(&t, NULL, writer, &r), 0);
    while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
        hist_snapshot(snap, r.h);
        assert_true(snap->count >= last_count);
        assert_true(snap->sum_ns >= last_sum);
        assert_true(snap->count <= WRITES);
        last_count = snap->count;
        last_sum = snap->sum_ns;
        reads++;
    }
    pthread_join(t, NULL);
    for (i = 0; i < WRITES; i++)
        expect_sum += 1000 + (uint64_t)(i % 5000) * 7919;
    hist_snapshot(snap, r.h);
    print_message("# %llu snapshots taken during %u writes\n", (unsigned long long)reads, WRITES);
    assert_int_equal(snap->count, WRITES);
    assert_int_equal(hist_count(r.h), WRITES);
    assert_int_equal(snap->sum_ns, expect_sum);
    free(r.h);
    free(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_values_within_bound_over_whole_range),
        cmocka_unit_test(bucket_edges_land_in_their_bucket),
        cmocka_unit_test(quantiles_of_known_distributions),
        cmocka_unit_test(out_of_range_values_are_clamped),
        cmocka_unit_test(empty_histogram_reads_zero),
        cmocka_unit_test(count_le_and_above_split_the_total),
        cmocka_unit_test(merge_equals_recording_both),
        cmocka_unit_test(snapshots_while_writing_are_monotonic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
