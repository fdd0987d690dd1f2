/*
 * judge-t.h: types of the canary judge (judge.h).
 *
 * A struct judge is a value: no heap memory, copyable (its only pointers are
 * to static tables). It is fed one struct judge_window per period (the
 * rollout's 250 ms control tick; the same period for both releases) and
 * asked for a struct judge_verdict, which carries its evidence.
 */
#ifndef FIREBREAK_JUDGE_T_H
#define FIREBREAK_JUDGE_T_H

#include <stdbool.h>
#include <stdint.h>
#include "stats-t.h"

/* Components of each test's mixture (see judge.c and docs/internals/judge.md). */
#define JUDGE_MIX_MAX 8
/* Consecutive canary windows without stable traffic after which the verdict is error. */
#define JUDGE_UNPAIRED_LIMIT 5

enum judge_outcome {
    JUDGE_PASS,         /* neither test can be as bad as its ratio: the step may advance */
    JUDGE_FAIL,         /* a test rejected "canary no worse": roll back */
    JUDGE_INCONCLUSIVE, /* not enough evidence yet; see needs */
    JUDGE_ERROR,        /* no data or a broken measurement: hold, never pass, never fail */
};

struct judge_params {
    double alpha;             /* false-rollback probability per rollout, in (0, 0.5); 0.001 */
    double power;             /* probability of failing a canary at the ratios; 0.95 */
    double min_error_ratio;   /* smallest error-rate worsening worth catching, > 1; 2.0 */
    double max_latency_ratio; /* canary latency tolerated, as a multiple of stable's, >= 1; 1.25 */
    double slow_share_ratio;  /* latency alternative: canary's slow share vs stable's, > 1; 2.0 */
    double error_alpha_share; /* part of alpha spent on the error test, in (0, 1); 0.9 */
};

/*
 * One period (the control tick, 250 ms; any length), the same for both releases.
 * Errors are 5xx answers and upstream errors. For latency, the caller picks a
 * threshold from data before this window (stable's trailing p99, say) as
 * stable_threshold_s, and counts stable requests slower than it and canary
 * requests slower than canary_threshold_s >= max_latency_ratio *
 * stable_threshold_s. Thresholds falling between histogram buckets must be
 * rounded so as to count fewer canary and more stable requests (canary up,
 * stable down), which keeps the test valid.
 */
struct judge_window {
    int64_t start_ms; /* start of the period, any clock; evidence only */
    uint64_t canary_requests;
    uint64_t canary_errors;
    uint64_t stable_requests;
    uint64_t stable_errors;
    bool has_latency;     /* false: the latency fields are ignored */
    uint64_t canary_slow; /* canary requests slower than canary_threshold_s */
    uint64_t stable_slow; /* stable requests slower than stable_threshold_s */
    double canary_threshold_s;
    double stable_threshold_s;
};

/*
 * What one test counts (judge tests are a vtable: a new test is a new table
 * and a member of struct judge). count stores the canary's and stable's
 * events in w and returns false when w carries none for this test.
 */
struct judge_test_ops {
    const char *name;   /* "errors", "latency": its key in the evidence */
    const char *events; /* what it counts: "errors", "slow requests" */
    bool (*count)(const struct judge_window *w, uint64_t *canary, uint64_t *stable);
};

/*
 * One sequential test on the conditional binomial: of the events (errors, or
 * slow requests) seen in a window, how many were the canary's, given the two
 * releases' request counts. Component k tests ratio[k] against ratio 1.
 */
struct judge_test {
    const struct judge_test_ops *ops; /* static, never freed */
    unsigned ncomp;
    double ratio[JUDGE_MIX_MAX]; /* ratio[0] is the design alternative */
    double log_ratio[JUDGE_MIX_MAX];
    double log_weight[JUDGE_MIX_MAX]; /* mixture weights, summing to 1 */
    double llr[JUDGE_MIX_MAX];        /* log-likelihood ratio of ratio[k] vs 1 so far */
    double log_fail;                  /* log(1 / alpha_test) */
    double log_pass;                  /* log(beta) */
    double alpha;                     /* this test's part of alpha */
    uint64_t windows;                 /* windows folded in */
    uint64_t canary_requests, canary_events;
    uint64_t stable_requests, stable_events;
    double last_share;      /* canary share of requests in the last window */
    bool failed;            /* sticky once the mixture crossed log_fail */
    uint64_t failed_window; /* judge window index at which it failed */
    double failed_log_evalue;
};

struct judge {
    struct judge_params params;
    struct judge_test errors;
    struct judge_test latency;
    uint64_t windows;          /* every judge_add_window call, good or not */
    uint64_t paired_windows;   /* windows with traffic on both releases */
    uint64_t broken_windows;   /* windows refused as inconsistent */
    uint64_t unpaired_run;     /* consecutive canary windows without stable traffic */
    bool last_broken;          /* the latest window was refused */
    int64_t first_ms, last_ms; /* start_ms of the first and latest good windows */
    char problem[160];         /* what was wrong with the latest refused window */
};

/* What one test says, with its evidence. Rates are events / requests. */
struct judge_test_verdict {
    const char *name, *events; /* from the test's ops (static strings) */
    enum judge_outcome outcome;
    uint64_t canary_requests, canary_events;
    uint64_t stable_requests, stable_events;
    double canary_rate, stable_rate;            /* NAN when there are no requests */
    struct stats_interval canary_ci, stable_ci; /* 95% Wilson */
    double ratio; /* canary rate / stable rate; INFINITY if stable has none, NAN if undefined */
    struct stats_interval ratio_ci; /* 95%, from the conditional binomial */
    double design_ratio;            /* the alternative the power refers to */
    double log_evalue;              /* log of the mixture likelihood ratio */
    double log_fail_threshold;      /* fail when log_evalue >= this */
    double design_llr;              /* log-likelihood ratio at design_ratio */
    double log_pass_threshold;      /* pass when design_llr <= this */
    double alpha;
    uint64_t needs; /* inconclusive: canary requests still needed; 0 before any data */
};

struct judge_verdict {
    enum judge_outcome outcome;
    char reason[200]; /* one sentence a person can act on */
    uint64_t needs;   /* inconclusive: about this many more canary requests */
    uint64_t windows, paired_windows, broken_windows;
    uint64_t failed_window; /* fail: the window index at which the judge failed */
    struct judge_test_verdict errors;
    struct judge_test_verdict latency;
    bool latency_measured; /* any window carried latency counts */
    double alpha, power, min_error_ratio, max_latency_ratio;
};

#endif
