/*
 * judge.c: the canary judge, two sequential tests on the same windows.
 *
 * Errors: in each window, given the e errors both releases made together,
 * the canary's share of them is Binomial(e, p) with p = r s / (r s + 1 - s),
 * s the canary's share of requests and r the ratio of the error rates. The
 * test of r <= 1 ("canary no worse") multiplies, window by window, the
 * likelihood ratios of a few alternatives r_k = min_error_ratio * mult_k
 * against r = 1, and mixes them with fixed weights w_k. The mixture is a
 * nonnegative supermartingale under r <= 1 whatever the windows (any
 * lengths, e.g. the rollout's 250 ms ticks, as long as a window's bounds are
 * not chosen from whose errors it holds), weights or stopping rule, so by
 * Ville's inequality the chance that it ever reaches 1 / alpha_e is at most
 * alpha_e: failing there keeps the false-rollback
 * rate however often the judge looks. Passing uses the component at the
 * design ratio alone: when its log-likelihood ratio is at or below
 * log(beta), a canary as bad as the ratio would have got there with
 * probability at most beta (the same inequality under the alternative).
 *
 * Latency: the same test on slow requests. The caller counts canary requests
 * slower than T and stable requests slower than T / max_latency_ratio; if the
 * canary is no slower than max_latency_ratio times stable, its share above T
 * is at most stable's above T / max_latency_ratio, so r <= 1 again.
 * The latency test gets the rest of alpha: alpha_l = alpha - alpha_e, and
 * the overall false-rollback rate is at most alpha_e + alpha_l = alpha.
 *
 * Operations: judge_init, judge_add_window (O(JUDGE_MIX_MAX)), judge_verdict
 * (O(JUDGE_MIX_MAX)), judge_evidence_json, judge_summary.
 * Invariants: a failed test stays failed; a refused window changes nothing
 * but the counters of refused windows; struct judge holds no heap memory.
 * The method, its proof sketch and simulated results: docs/internals/judge.md.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/judge.h"
#include "firebreak/stats.h"

/*
 * The mixture: alternatives as multiples of the design ratio, with their
 * prior weights (see docs/internals/judge.md for how they were chosen).
 * Half the weight sits at 4x the design ratio, where most regressions worth
 * a rollback are and where a minute at 10 canary req/s must suffice for a
 * tenfold error rate; a fifth at the design ratio itself, whose component
 * also decides passing; a tenth each at 16x, 64x and 256x for gross failures,
 * where two or three errors suffice.
 */
static const struct {
    double mult;
    double weight;
} judge_mix[] = {
    {1.0, 0.2}, {4.0, 0.5}, {16.0, 0.1}, {64.0, 0.1}, {256.0, 0.1},
};
#define JUDGE_NMIX (sizeof(judge_mix) / sizeof(judge_mix[0]))

/* A window with more requests than this is a broken measurement. */
#define JUDGE_WINDOW_MAX ((uint64_t)1 << 40)
/* "needs" is capped here (it means: far more than will ever come). */
#define JUDGE_NEEDS_MAX 1e15

static bool errors_count(const struct judge_window *w, uint64_t *canary, uint64_t *stable)
{
    *canary = w->canary_errors;
    *stable = w->stable_errors;
    return true;
}

static bool latency_count(const struct judge_window *w, uint64_t *canary, uint64_t *stable)
{
    *canary = w->canary_slow;
    *stable = w->stable_slow;
    return w->has_latency;
}

static const struct judge_test_ops judge_errors_ops = {"errors", "errors", errors_count};
static const struct judge_test_ops judge_latency_ops = {"latency", "slow requests", latency_count};

void judge_params_default(struct judge_params *p)
{
    p->alpha = 0.001;
    p->power = 0.95;
    p->min_error_ratio = 2.0;
    p->max_latency_ratio = 1.25;
    p->slow_share_ratio = 2.0;
    p->error_alpha_share = 0.9;
}

static int why_set(char *why, size_t whylen, const char *msg)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", msg);
    return -FB_EINVAL;
}

int judge_params_check(const struct judge_params *p, char *why, size_t whylen)
{
    if (!(p->alpha > 0 && p->alpha < 0.5))
        return why_set(why, whylen, "alpha must be above 0 and below 0.5");
    if (!(p->power > 0.5 && p->power < 1))
        return why_set(why, whylen, "power must be above 0.5 and below 1");
    if (!(p->min_error_ratio > 1 && p->min_error_ratio <= 1000))
        return why_set(why, whylen, "min_error_ratio must be above 1 and at most 1000");
    if (!(p->max_latency_ratio >= 1 && p->max_latency_ratio <= 1000))
        return why_set(why, whylen, "max_latency_ratio must be at least 1 and at most 1000");
    if (!(p->slow_share_ratio > 1 && p->slow_share_ratio <= 1000))
        return why_set(why, whylen, "slow_share_ratio must be above 1 and at most 1000");
    if (!(p->error_alpha_share > 0 && p->error_alpha_share < 1))
        return why_set(why, whylen, "error_alpha_share must be above 0 and below 1");
    if (why && whylen)
        why[0] = '\0';
    return 0;
}

static void test_init(struct judge_test *t, const struct judge_test_ops *ops, double design_ratio,
                      double alpha, double beta)
{
    memset(t, 0, sizeof(*t));
    t->ops = ops;
    t->ncomp = JUDGE_NMIX;
    for (unsigned k = 0; k < t->ncomp; k++) {
        t->ratio[k] = design_ratio * judge_mix[k].mult;
        t->log_ratio[k] = log(t->ratio[k]);
        t->log_weight[k] = log(judge_mix[k].weight);
    }
    t->alpha = alpha;
    t->log_fail = -log(alpha);
    t->log_pass = log(beta);
}

int judge_init(struct judge *j, const struct judge_params *p)
{
    double beta;

    memset(j, 0, sizeof(*j));
    if (judge_params_check(p, NULL, 0))
        return -FB_EINVAL;
    j->params = *p;
    beta = 1 - p->power;
    test_init(&j->errors, &judge_errors_ops, p->min_error_ratio, p->alpha * p->error_alpha_share,
              beta);
    test_init(&j->latency, &judge_latency_ops, p->slow_share_ratio,
              p->alpha * (1 - p->error_alpha_share), beta);
    return 0;
}

static double test_log_evalue(const struct judge_test *t)
{
    double s = -INFINITY;

    for (unsigned k = 0; k < t->ncomp; k++)
        s = stats_log_add(s, t->log_weight[k] + t->llr[k]);
    return s;
}

/*
 * Folds one paired window into t: x canary events of n_c requests, xs stable
 * events of n_s requests (n_c, n_s > 0, checked by the caller).
 */
static void test_fold(struct judge_test *t, uint64_t window, uint64_t x, uint64_t n_c, uint64_t xs,
                      uint64_t n_s)
{
    double share = (double)n_c / ((double)n_c + (double)n_s);
    uint64_t e = x + xs;
    double top = -INFINITY;

    t->windows++;
    t->canary_requests += n_c;
    t->canary_events += x;
    t->stable_requests += n_s;
    t->stable_events += xs;
    t->last_share = share;
    if (e == 0)
        return;
    for (unsigned k = 0; k < t->ncomp; k++) {
        t->llr[k] += (double)x * t->log_ratio[k] - (double)e * log1p((t->ratio[k] - 1) * share);
        top = fmax(top, t->log_weight[k] + t->llr[k]);
    }
    /* The mixture is below ncomp times its largest term: skip the sum when that is low. */
    if (!t->failed && top + log((double)t->ncomp) >= t->log_fail) {
        double lev = test_log_evalue(t);

        if (lev >= t->log_fail) {
            t->failed = true;
            t->failed_window = window;
            t->failed_log_evalue = lev;
        }
    }
}

/* Counts a refused window whose reason is already in j->problem. */
static int refused(struct judge *j)
{
    j->broken_windows++;
    j->last_broken = true;
    return -FB_EINVAL;
}

static bool sum_overflows(uint64_t total, uint64_t add)
{
    return total + add < total;
}

static int check_requests(struct judge *j, const struct judge_window *w)
{
    if (w->canary_requests > JUDGE_WINDOW_MAX || w->stable_requests > JUDGE_WINDOW_MAX ||
        sum_overflows(j->errors.canary_requests, w->canary_requests) ||
        sum_overflows(j->errors.stable_requests, w->stable_requests)) {
        snprintf(j->problem, sizeof(j->problem),
                 "window requests %" PRIu64 " canary, %" PRIu64 " stable: over the limit",
                 w->canary_requests, w->stable_requests);
        return refused(j);
    }
    return 0;
}

/* Each test's events must fit within the requests. */
static int check_events(struct judge *j, const struct judge_test *t, const struct judge_window *w)
{
    uint64_t c, s;
    bool canary_bad;

    if (!t->ops->count(w, &c, &s) || (c <= w->canary_requests && s <= w->stable_requests))
        return 0;
    canary_bad = c > w->canary_requests;
    snprintf(j->problem, sizeof(j->problem), "%s %s %" PRIu64 " above %s requests %" PRIu64,
             canary_bad ? "canary" : "stable", t->ops->events, canary_bad ? c : s,
             canary_bad ? "canary" : "stable",
             canary_bad ? w->canary_requests : w->stable_requests);
    return refused(j);
}

static int check_thresholds(struct judge *j, const struct judge_window *w)
{
    double ct = w->canary_threshold_s, st = w->stable_threshold_s;

    if (!w->has_latency)
        return 0;
    if (!isfinite(ct) || !isfinite(st) || ct < 0 || st < 0 || ct > 1e9) {
        snprintf(j->problem, sizeof(j->problem),
                 "latency thresholds must be finite, non-negative and at most 1e9 s "
                 "(canary %g s, stable %g s)",
                 ct, st);
        return refused(j);
    }
    if (ct < j->params.max_latency_ratio * st * (1 - 1e-9)) {
        snprintf(j->problem, sizeof(j->problem),
                 "canary latency threshold %g s is below max_latency_ratio %g x stable's %g s", ct,
                 j->params.max_latency_ratio, st);
        return refused(j);
    }
    return 0;
}

static int check_window(struct judge *j, const struct judge_window *w)
{
    int rc = check_requests(j, w);

    if (!rc)
        rc = check_events(j, &j->errors, w);
    if (!rc)
        rc = check_events(j, &j->latency, w);
    if (!rc)
        rc = check_thresholds(j, w);
    return rc;
}

static void fold(struct judge_test *t, uint64_t window, const struct judge_window *w)
{
    uint64_t c, s;

    if (t->ops->count(w, &c, &s))
        test_fold(t, window, c, w->canary_requests, s, w->stable_requests);
}

int judge_add_window(struct judge *j, const struct judge_window *w)
{
    int rc;

    j->windows++;
    rc = check_window(j, w);
    if (rc)
        return rc;
    j->last_broken = false;
    if (w->canary_requests == 0)
        return 0;
    if (w->stable_requests == 0) {
        j->unpaired_run++;
        return 0;
    }
    j->unpaired_run = 0;
    if (j->paired_windows == 0)
        j->first_ms = w->start_ms;
    j->last_ms = w->start_ms;
    j->paired_windows++;
    fold(&j->errors, j->windows, w);
    fold(&j->latency, j->windows, w);
    return 0;
}

/*
 * Canary requests t still needs to reach a boundary, expected at the current
 * rates. While the estimated ratio is at most the design ratio this is the
 * sample to pass if the canary is no worse than stable (the ratio taken as
 * min(estimate, 1)): the number a person can plan a step with. Above it, the
 * sample to fail at the estimated ratio.
 */
static uint64_t test_needs(const struct judge_test *t)
{
    double s = t->last_share;
    double qc = ((double)t->canary_events + 0.5) / ((double)t->canary_requests + 1);
    double qs = ((double)t->stable_events + 0.5) / ((double)t->stable_requests + 1);
    double r = qc / qs, events = INFINITY, per_request;

    if (!(s > 0 && s < 1))
        return (uint64_t)JUDGE_NEEDS_MAX;
    if (r <= t->ratio[0]) {
        r = fmin(r, 1.0);
        qc = r * qs;
        events = fmax(0, t->llr[0] - t->log_pass) / -stats_cbin_drift(s, t->ratio[0], r);
    } else {
        for (unsigned k = 0; k < t->ncomp; k++) {
            double g = stats_cbin_drift(s, t->ratio[k], r);
            double d = t->log_fail - t->log_weight[k] - t->llr[k];

            if (g > 0)
                events = fmin(events, fmax(0, d) / g);
        }
    }
    per_request = qc + qs * (1 - s) / s;
    events = ceil(events / per_request);
    if (!(events < JUDGE_NEEDS_MAX))
        return (uint64_t)JUDGE_NEEDS_MAX;
    return events < 1 ? 1 : (uint64_t)events;
}

static double rate_of(uint64_t x, uint64_t n, struct stats_interval *ci)
{
    if (stats_wilson(x, n, 0.95, ci) != 0) {
        ci->lo = NAN;
        ci->hi = NAN;
        return NAN;
    }
    return (double)x / (double)n;
}

/* Ratio of the rates and its 95% interval from the canary's share of the events. */
static void ratio_of(const struct judge_test *t, struct judge_test_verdict *v)
{
    uint64_t e = t->canary_events + t->stable_events;
    double nc = (double)t->canary_requests, ns = (double)t->stable_requests;
    double odds = ns / nc;
    struct stats_interval p;

    v->ratio = NAN;
    v->ratio_ci.lo = NAN;
    v->ratio_ci.hi = NAN;
    if (nc == 0 || ns == 0 || e == 0)
        return;
    v->ratio = t->stable_events ? v->canary_rate / v->stable_rate : INFINITY;
    stats_wilson(t->canary_events, e, 0.95, &p);
    v->ratio_ci.lo = p.lo / (1 - p.lo) * odds;
    v->ratio_ci.hi = p.hi >= 1 ? INFINITY : p.hi / (1 - p.hi) * odds;
}

static void test_verdict(const struct judge_test *t, struct judge_test_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->name = t->ops->name;
    v->events = t->ops->events;
    v->canary_requests = t->canary_requests;
    v->canary_events = t->canary_events;
    v->stable_requests = t->stable_requests;
    v->stable_events = t->stable_events;
    v->canary_rate = rate_of(t->canary_events, t->canary_requests, &v->canary_ci);
    v->stable_rate = rate_of(t->stable_events, t->stable_requests, &v->stable_ci);
    ratio_of(t, v);
    v->design_ratio = t->ratio[0];
    v->log_evalue = test_log_evalue(t);
    v->log_fail_threshold = t->log_fail;
    v->design_llr = t->llr[0];
    v->log_pass_threshold = t->log_pass;
    v->alpha = t->alpha;
    if (t->failed)
        v->outcome = JUDGE_FAIL;
    else if (t->windows > 0 && t->llr[0] <= t->log_pass)
        v->outcome = JUDGE_PASS;
    else
        v->outcome = JUDGE_INCONCLUSIVE;
    if (v->outcome == JUDGE_INCONCLUSIVE && t->windows > 0)
        v->needs = test_needs(t);
}

static void verdict_fail(const struct judge *j, struct judge_verdict *v)
{
    const struct judge_test *t = j->errors.failed ? &j->errors : &j->latency;
    const struct judge_test_verdict *tv = j->errors.failed ? &v->errors : &v->latency;

    v->outcome = JUDGE_FAIL;
    v->failed_window = t->failed_window;
    snprintf(v->reason, sizeof(v->reason),
             "%s: %s %.3g%% of canary requests vs %.3g%% of stable's (ratio %.3g); log e-value "
             "%.2f reached %.2f at window %" PRIu64,
             t == &j->errors ? "canary errors worse than stable" : "canary slower than stable",
             tv->events, 100 * tv->canary_rate, 100 * tv->stable_rate, tv->ratio,
             t->failed_log_evalue, t->log_fail, t->failed_window);
}

static void verdict_open(const struct judge *j, struct judge_verdict *v)
{
    bool ep = v->errors.outcome == JUDGE_PASS, lp = v->latency.outcome == JUDGE_PASS;

    if (ep && lp) {
        v->outcome = JUDGE_PASS;
        snprintf(v->reason, sizeof(v->reason),
                 "canary is not %.3gx worse in errors nor %.3gx slower, at %.0f%% power",
                 j->params.min_error_ratio, j->params.max_latency_ratio, 100 * j->params.power);
        return;
    }
    v->outcome = JUDGE_INCONCLUSIVE;
    /* Both tests must finish: the larger of the open tests' needs. */
    v->needs = 0;
    if (!ep)
        v->needs = v->errors.needs;
    if (!lp && v->latency.needs > v->needs)
        v->needs = v->latency.needs;
    snprintf(v->reason, sizeof(v->reason),
             "needs about %" PRIu64 " more canary requests (errors: %s, latency: %s)", v->needs,
             judge_outcome_name(v->errors.outcome), judge_outcome_name(v->latency.outcome));
}

void judge_verdict(const struct judge *j, struct judge_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->windows = j->windows;
    v->paired_windows = j->paired_windows;
    v->broken_windows = j->broken_windows;
    v->alpha = j->params.alpha;
    v->power = j->params.power;
    v->min_error_ratio = j->params.min_error_ratio;
    v->max_latency_ratio = j->params.max_latency_ratio;
    v->latency_measured = j->latency.windows > 0;
    test_verdict(&j->errors, &v->errors);
    test_verdict(&j->latency, &v->latency);
    v->outcome = JUDGE_ERROR;
    if (j->errors.failed || j->latency.failed)
        verdict_fail(j, v);
    else if (j->last_broken)
        snprintf(v->reason, sizeof(v->reason), "broken measurement: %s", j->problem);
    else if (j->paired_windows == 0)
        snprintf(v->reason, sizeof(v->reason),
                 "no data: no window yet with requests on both releases");
    else if (j->unpaired_run >= JUDGE_UNPAIRED_LIMIT)
        snprintf(v->reason, sizeof(v->reason),
                 "no stable traffic to compare against in the last %" PRIu64
                 " windows with canary traffic",
                 j->unpaired_run);
    else if (!v->latency_measured)
        snprintf(v->reason, sizeof(v->reason),
                 "no latency measurement: no window carried slow-request counts");
    else
        verdict_open(j, v);
}

const char *judge_outcome_name(enum judge_outcome o)
{
    switch (o) {
    case JUDGE_PASS:
        return "pass";
    case JUDGE_FAIL:
        return "fail";
    case JUDGE_INCONCLUSIVE:
        return "inconclusive";
    case JUDGE_ERROR:
        return "error";
    }
    return "error";
}

/* ---- evidence as JSON ---- */

static json_t *jnum(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *juint(uint64_t x)
{
    return json_integer(x > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)x);
}

/* Sets o[key] = v, taking v; returns nonzero (and frees v) when anything is NULL. */
static int jset(json_t *o, const char *key, json_t *v)
{
    if (!o) {
        json_decref(v);
        return -1;
    }
    return json_object_set_new(o, key, v);
}

static json_t *jinterval(struct stats_interval i)
{
    json_t *a = json_array();

    if (a && (json_array_append_new(a, jnum(i.lo)) || json_array_append_new(a, jnum(i.hi)))) {
        json_decref(a);
        a = NULL;
    }
    return a;
}

static json_t *side_json(uint64_t n, uint64_t x, double rate, struct stats_interval ci)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= jset(o, "requests", juint(n));
    bad |= jset(o, "events", juint(x));
    bad |= jset(o, "rate", jnum(rate));
    bad |= jset(o, "rate_ci95", jinterval(ci));
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *test_json(const struct judge_test_verdict *t)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= jset(o, "outcome", json_string(judge_outcome_name(t->outcome)));
    bad |= jset(o, "events", json_string(t->events));
    bad |= jset(o, "canary",
                side_json(t->canary_requests, t->canary_events, t->canary_rate, t->canary_ci));
    bad |= jset(o, "stable",
                side_json(t->stable_requests, t->stable_events, t->stable_rate, t->stable_ci));
    bad |= jset(o, "ratio", jnum(t->ratio));
    bad |= jset(o, "ratio_ci95", jinterval(t->ratio_ci));
    bad |= jset(o, "design_ratio", jnum(t->design_ratio));
    bad |= jset(o, "alpha", jnum(t->alpha));
    bad |= jset(o, "log_evalue", jnum(t->log_evalue));
    bad |= jset(o, "log_fail_threshold", jnum(t->log_fail_threshold));
    bad |= jset(o, "design_llr", jnum(t->design_llr));
    bad |= jset(o, "log_pass_threshold", jnum(t->log_pass_threshold));
    bad |= jset(o, "needs_canary_requests", t->needs ? juint(t->needs) : json_null());
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

int judge_evidence_json(const struct judge_verdict *v, json_t **out)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= jset(o, "verdict", json_string(judge_outcome_name(v->outcome)));
    bad |= jset(o, "reason", json_string(v->reason));
    bad |= jset(o, "needs_canary_requests",
                v->outcome == JUDGE_INCONCLUSIVE ? juint(v->needs) : json_null());
    bad |=
        jset(o, "failed_window", v->outcome == JUDGE_FAIL ? juint(v->failed_window) : json_null());
    bad |= jset(o, "windows", juint(v->windows));
    bad |= jset(o, "paired_windows", juint(v->paired_windows));
    bad |= jset(o, "broken_windows", juint(v->broken_windows));
    bad |= jset(o, "alpha", jnum(v->alpha));
    bad |= jset(o, "power", jnum(v->power));
    bad |= jset(o, "min_error_ratio", jnum(v->min_error_ratio));
    bad |= jset(o, "max_latency_ratio", jnum(v->max_latency_ratio));
    bad |= jset(o, "latency_measured", json_boolean(v->latency_measured));
    bad |= jset(o, "errors", test_json(&v->errors));
    bad |= jset(o, "latency", test_json(&v->latency));
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return o ? 0 : -FB_ENOMEM;
}

/* ---- evidence as one line ---- */

static int summary_test(const struct judge_test_verdict *t, struct fb_buf *b)
{
    return fb_buf_printf(
        b,
        "; %s %s: canary %" PRIu64 "/%" PRIu64 " = %.3g%% [%.3g%%, %.3g%%]"
        " vs stable %" PRIu64 "/%" PRIu64 " = %.3g%% [%.3g%%, %.3g%%],"
        " ratio %.3g [%.3g, %.3g], log e-value %.2f (fails at %.2f),"
        " LLR at %.3gx %.2f (passes at %.2f)",
        t->name, judge_outcome_name(t->outcome), t->canary_events, t->canary_requests,
        100 * t->canary_rate, 100 * t->canary_ci.lo, 100 * t->canary_ci.hi, t->stable_events,
        t->stable_requests, 100 * t->stable_rate, 100 * t->stable_ci.lo, 100 * t->stable_ci.hi,
        t->ratio, t->ratio_ci.lo, t->ratio_ci.hi, t->log_evalue, t->log_fail_threshold,
        t->design_ratio, t->design_llr, t->log_pass_threshold);
}

int judge_summary(const struct judge_verdict *v, struct fb_buf *b)
{
    int rc = fb_buf_printf(b, "%s: %s", judge_outcome_name(v->outcome), v->reason);

    if (!rc && v->paired_windows > 0)
        rc = summary_test(&v->errors, b);
    if (!rc && v->latency_measured)
        rc = summary_test(&v->latency, b);
    return rc;
}
