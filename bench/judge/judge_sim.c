/*
 * judge_sim.c: the canary judge against synthetic traffic, no network.
 *
 * Drives src/control/judge.c with per-window counts drawn from Poisson
 * arrivals (a seeded xoshiro256** generator and Poisson samplers written
 * here, so every run is reproducible) and prints:
 *   A/A  healthy canaries: the false-rollback rate with its 95% interval, at
 *        1, 10 and 100 canary requests per second, next to a simulated
 *        Flagger default policy on the same traffic;
 *   A/B  worse canaries: canary requests and seconds to rollback (median,
 *        p95) at 10 canary requests per second, next to Wald's expected
 *        sample number, the Flagger policy, and the least any judge fed the
 *        same windows could need (the window holding the canary's second
 *        error: one error is never enough at this alpha);
 *   the issue's targets, each PASS or MISS, and exits 1 if any is missed.
 * Every table line has a machine-readable twin starting "SIM ".
 *
 * Model: the windows the control thread feeds the judge, one per control
 * tick (250 ms, src/control/rollout.c takes the counters' difference since
 * the previous tick); a 1% step, stable serving 99 times the canary's
 * traffic; requests fail and are slow independently (each count is an independent Poisson
 * thinning of the arrivals, which is exact for Poisson arrivals). Latency is
 * held at the boundary of its null hypothesis: the canary's share above
 * max_latency_ratio x stable's p99 equals stable's share above its p99 (1%),
 * the hardest healthy case for the latency test.
 * Cost: one judge_add_window per simulated window; about a minute of one core.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firebreak/judge.h"
#include "firebreak/stats.h"

#define SIM_SEED 0x6a75646765ULL /* "judge" */
#define SIM_NEVER UINT64_MAX
/* The control tick (TICK_MS in src/control/control.c): one judge window each. */
#define SIM_WINDOW_S 0.25

/* ---- random numbers ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**. */
static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform on the open interval (0, 1). */
static double rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/*
 * A Poisson generator for one fixed mean. Small means (< 10) use inversion
 * (one uniform, about mu steps). Larger means use transformed rejection with
 * squeeze (Hormann 1993, "PTRS"): a hat from a transformed uniform, accepted
 * by a cheap squeeze most of the time and by the exact log-pmf otherwise.
 */
struct poisson_gen {
    double mu, emu;                     /* mean, exp(-mean) */
    double loglam, a, b, log_alpha, vr; /* PTRS constants */
};

static void poisson_init(struct poisson_gen *g, double mu)
{
    g->mu = mu > 0 ? mu : 0;
    g->emu = exp(-g->mu);
    g->loglam = log(g->mu);
    g->b = 0.931 + 2.53 * sqrt(g->mu);
    g->a = -0.059 + 0.02483 * g->b;
    g->log_alpha = log(1.1239 + 1.1328 / (g->b - 3.4));
    g->vr = 0.9277 - 3.6224 / (g->b - 2);
}

static uint64_t poisson_small(struct rng *r, const struct poisson_gen *g)
{
    double u = rng_unit(r), p = g->emu, f = p;
    uint64_t k = 0;

    while (u > f && k < 1000) {
        k++;
        p *= g->mu / (double)k;
        f += p;
    }
    return k;
}

static uint64_t poisson_ptrs(struct rng *r, const struct poisson_gen *g)
{
    for (;;) {
        double u = rng_unit(r) - 0.5, v = rng_unit(r), us = 0.5 - fabs(u);
        double k = floor((2 * g->a / us + g->b) * u + g->mu + 0.43);

        if (us >= 0.07 && v <= g->vr)
            return (uint64_t)k;
        if (k < 0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + g->log_alpha - log(g->a / (us * us) + g->b) <=
            -g->mu + k * g->loglam - lgamma(k + 1))
            return (uint64_t)k;
    }
}

static uint64_t poisson_draw(struct rng *r, const struct poisson_gen *g)
{
    if (g->mu <= 0)
        return 0;
    return g->mu < 10 ? poisson_small(r, g) : poisson_ptrs(r, g);
}

/* ---- traffic ---- */

/*
 * One release's window: four independent Poisson thinnings of its arrivals,
 * (error, slow) x (yes, no), so errors and slow requests are Binomial given
 * the request count, exactly as for real independent requests.
 */
struct side_gen {
    struct poisson_gen es, ef, os, of;
};

struct side_draw {
    uint64_t n, errors, slow;
};

/* rate: requests per window; err and slow: probabilities per request. */
static void side_init(struct side_gen *g, double rate, double err, double slow)
{
    poisson_init(&g->es, rate * err * slow);
    poisson_init(&g->ef, rate * err * (1 - slow));
    poisson_init(&g->os, rate * (1 - err) * slow);
    poisson_init(&g->of, rate * (1 - err) * (1 - slow));
}

static void side_draw(struct rng *r, const struct side_gen *g, struct side_draw *d)
{
    uint64_t es = poisson_draw(r, &g->es), ef = poisson_draw(r, &g->ef);
    uint64_t os = poisson_draw(r, &g->os), of = poisson_draw(r, &g->of);

    d->n = es + ef + os + of;
    d->errors = es + ef;
    d->slow = es + os;
}

struct scenario {
    double canary_rps;  /* canary requests per second; stable serves 99 times more */
    double canary_err;  /* canary error probability */
    double base_err;    /* stable error probability */
    double window_s;    /* window length in seconds */
    uint64_t horizon_s; /* the judge watches each rollout at most this long */
    uint64_t flagger_s; /* the Flagger policy is simulated this long (0: not at all) */
    unsigned runs;
    uint64_t seed;
};

struct run_result {
    uint64_t judge_windows;  /* windows until the judge failed, or SIM_NEVER */
    uint64_t judge_requests; /* canary requests in those windows */
    bool judge_by_latency;
    uint64_t two_error_requests; /* canary requests up to the window of its 2nd error */
    uint64_t flagger_s;          /* seconds until the Flagger policy rolled back, or SIM_NEVER */
    uint64_t flagger_requests;
    bool flagger_first_check_failed;
};

/*
 * Flagger's default analysis: every 60 s, the canary's success rate over the
 * interval must be >= 99%; threshold 1, so the first failed check rolls back.
 * An interval without canary requests is not a failed check.
 */
struct flagger {
    uint64_t n, errors, requests_total, checks;
    double elapsed_s;
};

static bool flagger_step(struct flagger *f, const struct side_draw *c, double window_s)
{
    bool failed = false;

    f->n += c->n;
    f->errors += c->errors;
    f->requests_total += c->n;
    f->elapsed_s += window_s;
    if (f->elapsed_s + 1e-9 >= 60.0 * (double)(f->checks + 1)) {
        f->checks++;
        failed = f->n > 0 && (double)(f->n - f->errors) < 0.99 * (double)f->n;
        f->n = 0;
        f->errors = 0;
    }
    return failed;
}

/* Feeds one window to the judge; latency sits at the boundary of its null (see the top). */
static bool judge_feed(struct judge *j, const struct side_draw *c, const struct side_draw *s)
{
    struct judge_window jw = {0};

    jw.canary_requests = c->n;
    jw.canary_errors = c->errors;
    jw.stable_requests = s->n;
    jw.stable_errors = s->errors;
    jw.has_latency = true;
    jw.canary_slow = c->slow;
    jw.stable_slow = s->slow;
    jw.stable_threshold_s = 0.2;
    jw.canary_threshold_s = 0.2 * j->params.max_latency_ratio;
    judge_add_window(j, &jw);
    return j->errors.failed || j->latency.failed;
}

/* One rollout: the judge and the Flagger policy on the same simulated traffic. */
static void run_one(const struct scenario *sc, unsigned idx, struct run_result *res)
{
    struct judge_params p;
    struct judge j;
    struct rng r;
    struct flagger f = {0};
    struct side_gen cg, sg;
    struct side_draw c, s;
    uint64_t jh = (uint64_t)llround((double)sc->horizon_s / sc->window_s);
    uint64_t fh = (uint64_t)llround((double)sc->flagger_s / sc->window_s);
    uint64_t requests = 0, canary_errors = 0;
    bool judging = true, flagging = fh > 0;

    side_init(&cg, sc->canary_rps * sc->window_s, sc->canary_err, 0.01);
    side_init(&sg, 99 * sc->canary_rps * sc->window_s, sc->base_err, 0.01);
    judge_params_default(&p);
    judge_init(&j, &p);
    rng_seed(&r, sc->seed ^ ((uint64_t)idx * 0x9e3779b97f4a7c15ULL));
    memset(res, 0, sizeof(*res));
    res->judge_windows = SIM_NEVER;
    res->flagger_s = SIM_NEVER;
    res->two_error_requests = SIM_NEVER;
    for (uint64_t w = 1; judging || flagging; w++) {
        side_draw(&r, &cg, &c);
        requests += c.n;
        canary_errors += c.errors;
        if (canary_errors >= 2 && res->two_error_requests == SIM_NEVER)
            res->two_error_requests = requests;
        if (judging) {
            side_draw(&r, &sg, &s);
            if (judge_feed(&j, &c, &s)) {
                res->judge_windows = w;
                res->judge_requests = requests;
                res->judge_by_latency = j.latency.failed;
                judging = false;
            }
            judging = judging && w < jh;
        }
        if (flagging && flagger_step(&f, &c, sc->window_s)) {
            res->flagger_s = f.checks * 60;
            res->flagger_requests = f.requests_total;
            res->flagger_first_check_failed = f.checks == 1;
            flagging = false;
        }
        flagging = flagging && w < fh;
    }
}

/* ---- summaries ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of a sorted array; SIM_NEVER when it falls on an undecided run. */
static uint64_t quantile(const uint64_t *v, unsigned n, double q)
{
    unsigned i = (unsigned)ceil(q * n);

    return v[i ? i - 1 : 0];
}

static void fmt_q(char *out, size_t len, uint64_t v, uint64_t horizon)
{
    if (v == SIM_NEVER)
        snprintf(out, len, ">%" PRIu64, horizon);
    else
        snprintf(out, len, "%" PRIu64, v);
}

struct targets {
    unsigned missed, checked;
};

static void target(struct targets *t, const char *name, double value, double limit)
{
    bool ok = value <= limit;

    t->checked++;
    t->missed += !ok;
    printf("  %-4s %-66s %9.4g <= %g\n", ok ? "PASS" : "MISS", name, value, limit);
    printf("SIM target name=\"%s\" value=%.6g limit=%.6g result=%s\n", name, value, limit,
           ok ? "PASS" : "MISS");
}

/* ---- A/A ---- */

static void aa_level(double rps, unsigned runs, uint64_t horizon_s, struct targets *t)
{
    struct scenario sc = {.canary_rps = rps,
                          .canary_err = 0.001,
                          .base_err = 0.001,
                          .window_s = SIM_WINDOW_S,
                          .horizon_s = horizon_s,
                          .flagger_s = horizon_s,
                          .runs = runs,
                          .seed = SIM_SEED + (uint64_t)rps};
    unsigned fails = 0, by_latency = 0, fl_fails = 0, fl_first = 0;
    struct stats_interval ci, fci;
    struct run_result res;
    struct judge_params p;
    char name[96];

    judge_params_default(&p);
    for (unsigned i = 0; i < runs; i++) {
        run_one(&sc, i, &res);
        fails += res.judge_windows != SIM_NEVER;
        by_latency += res.judge_windows != SIM_NEVER && res.judge_by_latency;
        fl_fails += res.flagger_s != SIM_NEVER;
        fl_first += res.flagger_first_check_failed;
    }
    stats_wilson(fails, runs, 0.95, &ci);
    stats_wilson(fl_fails, runs, 0.95, &fci);
    printf("  %6.0f %6u %6u %4u  %7.3f%% [%.3f%%, %.3f%%] | %7.2f%% [%.2f%%, %.2f%%] %9.2f%%\n",
           rps, runs, fails, by_latency, 100.0 * fails / runs, 100 * ci.lo, 100 * ci.hi,
           100.0 * fl_fails / runs, 100 * fci.lo, 100 * fci.hi, 100.0 * fl_first / runs);
    printf("SIM aa canary_rps=%g base_err=%g runs=%u horizon_s=%" PRIu64
           " judge_fails=%u judge_fails_latency=%u judge_rate=%.6g judge_ci_lo=%.6g "
           "judge_ci_hi=%.6g flagger_fails=%u flagger_rate=%.6g flagger_first_check_rate=%.6g\n",
           rps, sc.base_err, runs, horizon_s, fails, by_latency, (double)fails / runs, ci.lo, ci.hi,
           fl_fails, (double)fl_fails / runs, (double)fl_first / runs);
    snprintf(name, sizeof(name), "A/A false-rollback rate at %g canary req/s", rps);
    target(t, name, (double)fails / runs, p.alpha);
}

/* The Flagger policy alone, one check: the per-check false-failure rate. */
static void flagger_check_rate(double rps, double base, unsigned runs)
{
    struct scenario sc = {.canary_rps = rps,
                          .canary_err = base,
                          .base_err = base,
                          .window_s = 1.0,
                          .horizon_s = 1,
                          .flagger_s = 60,
                          .runs = runs,
                          .seed = SIM_SEED + 77};
    unsigned fails = 0;
    struct run_result res;
    struct stats_interval ci;

    for (unsigned i = 0; i < runs; i++) {
        run_one(&sc, i, &res);
        fails += res.flagger_s != SIM_NEVER;
    }
    stats_wilson(fails, runs, 0.95, &ci);
    printf("  Flagger policy, one 60 s check at %g canary req/s with %.1f%% errors on both: "
           "%.1f%% [%.1f%%, %.1f%%] of healthy canaries fail it\n",
           rps, 100 * base, 100.0 * fails / runs, 100 * ci.lo, 100 * ci.hi);
    printf("SIM flagger_check canary_rps=%g base_err=%g runs=%u fails=%u rate=%.6g\n", rps, base,
           runs, fails, (double)fails / runs);
}

/* ---- A/B ---- */

struct ab_stats {
    uint64_t med_req, p95_req, med_s, p95_s;
    unsigned decided;
    uint64_t fl_med_s, fl_p95_s, fl_med_req;
    unsigned fl_decided;
    uint64_t two_med_req; /* median canary requests up to the window of the 2nd error */
};

struct ab_samples {
    uint64_t *req, *sec, *freq, *fsec, *two;
};

static void ab_collect(struct ab_samples *a, unsigned runs, struct ab_stats *st)
{
    qsort(a->req, runs, sizeof(uint64_t), cmp_u64);
    qsort(a->sec, runs, sizeof(uint64_t), cmp_u64);
    qsort(a->freq, runs, sizeof(uint64_t), cmp_u64);
    qsort(a->fsec, runs, sizeof(uint64_t), cmp_u64);
    qsort(a->two, runs, sizeof(uint64_t), cmp_u64);
    st->med_req = quantile(a->req, runs, 0.5);
    st->p95_req = quantile(a->req, runs, 0.95);
    st->med_s = quantile(a->sec, runs, 0.5);
    st->p95_s = quantile(a->sec, runs, 0.95);
    st->fl_med_s = quantile(a->fsec, runs, 0.5);
    st->fl_p95_s = quantile(a->fsec, runs, 0.95);
    st->fl_med_req = quantile(a->freq, runs, 0.5);
    st->two_med_req = quantile(a->two, runs, 0.5);
    st->decided = 0;
    st->fl_decided = 0;
    for (unsigned i = 0; i < runs; i++) {
        st->decided += a->req[i] != SIM_NEVER;
        st->fl_decided += a->fsec[i] != SIM_NEVER;
    }
}

/* Runs sc->runs rollouts and summarises them; returns 0 or -1 when out of memory. */
static int ab_effect(const struct scenario *sc, struct ab_stats *st)
{
    struct ab_samples a = {calloc(sc->runs, sizeof(uint64_t)), calloc(sc->runs, sizeof(uint64_t)),
                           calloc(sc->runs, sizeof(uint64_t)), calloc(sc->runs, sizeof(uint64_t)),
                           calloc(sc->runs, sizeof(uint64_t))};
    struct run_result res;
    int rc = -1;

    if (!a.req || !a.sec || !a.freq || !a.fsec || !a.two)
        goto out_free;
    for (unsigned i = 0; i < sc->runs; i++) {
        bool decided;

        run_one(sc, i, &res);
        decided = res.judge_windows != SIM_NEVER;
        a.req[i] = decided ? res.judge_requests : SIM_NEVER;
        a.sec[i] =
            decided ? (uint64_t)ceil((double)res.judge_windows * sc->window_s - 1e-9) : SIM_NEVER;
        a.freq[i] = res.flagger_s == SIM_NEVER ? SIM_NEVER : res.flagger_requests;
        a.fsec[i] = res.flagger_s;
        a.two[i] = res.two_error_requests;
    }
    ab_collect(&a, sc->runs, st);
    rc = 0;
out_free:
    free(a.req);
    free(a.sec);
    free(a.freq);
    free(a.fsec);
    free(a.two);
    return rc;
}

static const double ab_errs[] = {0.002, 0.01, 0.05, 0.5};
#define AB_N (sizeof(ab_errs) / sizeof(ab_errs[0]))
#define AB_BASE 0.001

/* Wald's expected sample number with the baseline known exactly (REFERENCES.md's numbers). */
static double wald_asn_known(double err)
{
    struct judge_params p;

    judge_params_default(&p);
    return stats_wald_asn(p.alpha, 1 - p.power, AB_BASE, err, err);
}

/*
 * The same for the comparison the judge makes: an SPRT on the canary's share
 * of the errors (0.01 under the null at a 1% step) knowing the true ratio,
 * in canary requests (each brings err + 99 * base errors of both releases).
 */
static double wald_asn_compared(double err)
{
    struct judge_params p;
    double s = 0.01, p1 = stats_cbin_p(s, err / AB_BASE);

    judge_params_default(&p);
    return stats_wald_asn(p.alpha, 1 - p.power, s, p1, p1) / (err + 99 * AB_BASE);
}

static unsigned ab_runs(double err)
{
    return err < 0.005 ? 2000 : 10000;
}

static void ab_print(const struct scenario *sc, const struct ab_stats *st)
{
    char a[24], b[24], c[24], d[24], e[24], f[24], g[24];
    uint64_t rh = (uint64_t)(sc->canary_rps * (double)sc->horizon_s);
    double asn = wald_asn_known(sc->canary_err);

    fmt_q(a, sizeof(a), st->med_req, rh);
    fmt_q(b, sizeof(b), st->p95_req, rh);
    fmt_q(c, sizeof(c), st->med_s, sc->horizon_s);
    fmt_q(d, sizeof(d), st->p95_s, sc->horizon_s);
    fmt_q(e, sizeof(e), st->fl_med_s, sc->flagger_s);
    fmt_q(f, sizeof(f), st->fl_p95_s, sc->flagger_s);
    fmt_q(g, sizeof(g), st->fl_med_req, (uint64_t)(sc->canary_rps * (double)sc->flagger_s));
    printf("  %5.1f%% %5.0fx %8.1f %8.1f | %7s %7s %5.2fx %6s %6s |", 100 * sc->canary_err,
           sc->canary_err / AB_BASE, asn, wald_asn_compared(sc->canary_err), a, b,
           (double)st->med_req / asn, c, d);
    if (sc->flagger_s)
        printf(" %7s %7s %8s %6.1f%%", e, f, g, 100.0 * st->fl_decided / sc->runs);
    printf("\n");
    printf("SIM ab canary_rps=%g window_s=%g canary_err=%g base_err=%g runs=%u horizon_s=%" PRIu64
           " wald_asn=%.6g wald_asn_compared=%.6g judge_median_requests=%s judge_p95_requests=%s"
           " judge_median_s=%s judge_p95_s=%s judge_decided=%u flagger_median_s=%s "
           "flagger_p95_s=%s flagger_median_requests=%s flagger_decided=%u\n",
           sc->canary_rps, sc->window_s, sc->canary_err, AB_BASE, sc->runs, sc->horizon_s, asn,
           wald_asn_compared(sc->canary_err), a, b, c, d, st->decided, e, f, g, st->fl_decided);
}

static double as_value(uint64_t v)
{
    return v == SIM_NEVER ? INFINITY : (double)v;
}

/*
 * Wald's SPRT itself on the canary's requests one by one, the baseline known:
 * the mean and median requests it takes (decided either way) over runs
 * rollouts. Its ASN formula ignores the overshoot past the boundary, which at
 * large ratios is most of a step.
 */
static void wald_sprt_sample(double err, unsigned runs, double *mean, uint64_t *median)
{
    struct judge_params p;
    struct rng r;
    uint64_t *n = calloc(runs, sizeof(uint64_t)), total = 0;
    double up, down, la, lb;

    judge_params_default(&p);
    up = log(err / AB_BASE);
    down = log1p(-err) - log1p(-AB_BASE);
    la = stats_wald_log_a(p.alpha, 1 - p.power);
    lb = stats_wald_log_b(p.alpha, 1 - p.power);
    rng_seed(&r, SIM_SEED + 3000);
    *mean = NAN;
    *median = SIM_NEVER;
    if (!n)
        return;
    for (unsigned i = 0; i < runs; i++) {
        double z = 0;

        while (z > lb && z < la && n[i] < 1000000) {
            n[i]++;
            z += rng_unit(&r) < err ? up : down;
        }
        total += n[i];
    }
    qsort(n, runs, sizeof(uint64_t), cmp_u64);
    *mean = (double)total / runs;
    *median = quantile(n, runs, 0.5);
    free(n);
}

/*
 * At 50% errors Wald's 2.3 requests is out of reach of any judge fed these
 * windows. Under the judge's null the baseline may change from window to
 * window, so one canary error is evidence of at most 1/s (s: the canary's
 * share of the window's requests, about 1/100 here), below 1/alpha: every
 * valid comparison needs a second canary error, and the decision comes at
 * the end of the window that holds it. The median of that bound is printed
 * next to the ratio, with the judge's distance from it.
 */
/* Prints what bounds the 50% row and returns the expected sample number of Wald's SPRT
 * itself, simulated request by request (the overshoot included). */
static double info_window_bound(const struct ab_stats *st, double err, double asn)
{
    double judge = as_value(st->med_req), bound = as_value(st->two_med_req), sprt_mean;
    uint64_t sprt_median;

    printf(
        "  INFO 50%% errors: median / Wald's ASN formula is %.2f; with %g-s windows the\n"
        "       window of the canary's 2nd error (one is never enough) ends after %.0f requests\n"
        "       at the median (%.2fx the formula); the judge needs %.2fx that\n",
        judge / asn, SIM_WINDOW_S, bound, bound / asn, judge / bound);
    wald_sprt_sample(err, 10000, &sprt_mean, &sprt_median);
    printf("       Wald's SPRT itself, request by request with the baseline known, takes %.2f\n"
           "       requests on average (median %" PRIu64
           "): the formula leaves out the overshoot, which is\n"
           "       large when one error crosses most of the boundary\n",
           sprt_mean, sprt_median);
    printf("SIM info name=\"50%% errors: median canary requests / Wald ASN\" value=%.6g "
           "two_error_bound_requests=%.6g bound_over_asn=%.6g judge_over_bound=%.6g "
           "wald_sprt_mean=%.6g wald_sprt_median=%" PRIu64 "\n",
           judge / asn, bound, bound / asn, judge / bound, sprt_mean, sprt_median);
    return sprt_mean;
}

static int ab_table(struct targets *t)
{
    printf("\nA/B: canary worse than stable (0.1%% errors); 10 canary req/s and 990 stable req/s, "
           "%g-s windows\n",
           SIM_WINDOW_S);
    printf("  canary  ratio  Wald ASN, requests | judge: requests     median  seconds      "
           "| Flagger policy: seconds, requests\n");
    printf("  errors          known  compared |  median     p95   / ASN  median   p95 "
           "|  median     p95   median  rolled back\n");
    for (unsigned i = 0; i < AB_N; i++) {
        struct scenario sc = {.canary_rps = 10,
                              .canary_err = ab_errs[i],
                              .base_err = AB_BASE,
                              .window_s = SIM_WINDOW_S,
                              .horizon_s = 20000,
                              .flagger_s = 3600,
                              .runs = ab_runs(ab_errs[i]),
                              .seed = SIM_SEED + 1000 + i};
        struct ab_stats st;
        char name[96];

        if (ab_effect(&sc, &st))
            return -1;
        ab_print(&sc, &st);
        if (ab_errs[i] == 0.01)
            target(t, "10x errors (1%) at 10 req/s: median seconds to rollback", as_value(st.med_s),
                   60);
        if (ab_errs[i] == 0.5) {
            target(t, "50% errors at 10 req/s: median canary requests to rollback",
                   as_value(st.med_req), 20);
            target(t, "50% errors: median canary requests / Wald SPRT's expected sample number",
                   as_value(st.med_req) / info_window_bound(&st, ab_errs[i],
                                                            wald_asn_known(ab_errs[i])),
                   2);
            continue;
        }
        snprintf(name, sizeof(name), "%g%% errors: median canary requests / Wald ASN",
                 100 * ab_errs[i]);
        target(t, name, as_value(st.med_req) / wald_asn_known(ab_errs[i]), 2);
    }
    return 0;
}

static double cpu_s(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

int main(void)
{
    struct targets t = {0, 0};
    struct judge_params p;
    unsigned aa_runs = 10000;
    uint64_t aa_horizon = 1800;
    double t0 = cpu_s(), t1, t2;

    judge_params_default(&p);
    printf("firebreak judge simulation: alpha %g, power %g, min_error_ratio %g, "
           "max_latency_ratio %g, seed %#" PRIx64 "\n",
           p.alpha, p.power, p.min_error_ratio, p.max_latency_ratio, (uint64_t)SIM_SEED);
    printf("\nA/A: healthy canaries, 0.1%% errors on both, 1%% step (stable 99x), %u rollouts "
           "each watched %" PRIu64 " s in %g-s windows\n",
           aa_runs, aa_horizon, SIM_WINDOW_S);
    printf("  canary   runs  judge: false rollbacks              | Flagger policy: false "
           "rollbacks   first check\n");
    printf("   req/s          count  (lat) rate   95%% interval |\n");
    aa_level(1, aa_runs, aa_horizon, &t);
    aa_level(10, aa_runs, aa_horizon, &t);
    aa_level(100, aa_runs, aa_horizon, &t);
    flagger_check_rate(1, 0.005, aa_runs);
    t1 = cpu_s();
    if (ab_table(&t))
        return 2;
    t2 = cpu_s();
    printf("\nTargets: %u checked, %u missed (cpu %.1f s: A/A %.1f, A/B %.1f)\n", t.checked,
           t.missed, t2 - t0, t1 - t0, t2 - t1);
    printf("SIM summary checked=%u missed=%u cpu_s=%.1f\n", t.checked, t.missed, t2 - t0);
    return t.missed ? 1 : 0;
}
