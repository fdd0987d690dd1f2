/*
 * stats.h: the pure mathematics of the canary judge.
 *
 * Distributions (normal, binomial), the Wilson score interval, the
 * conditional-binomial log-likelihood ratio the judge's sequential tests are
 * made of, and Wald's SPRT bounds and expected sample number. No state, no
 * allocation, no I/O; every function is safe from any thread. Invalid
 * arguments give NAN (for values) or -FB_EINVAL (for actions), never a crash.
 */
#ifndef FIREBREAK_STATS_H
#define FIREBREAK_STATS_H

#include <stdint.h>
#include "stats-t.h"

/* Standard normal distribution function. */
double stats_norm_cdf(double x);
/* Its inverse: x with stats_norm_cdf(x) == p, for 0 < p < 1 (else NAN). */
double stats_norm_quantile(double p);

/* log P(X = k) for X ~ Binomial(n, p); -INFINITY when k > n; NAN for p outside [0, 1]. */
double stats_binom_logpmf(uint64_t k, uint64_t n, double p);
/* P(X <= k). Cost O(min(k, n - k)) terms. NAN for p outside [0, 1]. */
double stats_binom_cdf(uint64_t k, uint64_t n, double p);
/* The smallest k with P(X <= k) >= q, for 0 <= q <= 1. Cost O(k). */
uint64_t stats_binom_quantile(double q, uint64_t n, double p);

/*
 * Wilson score interval for a proportion of x successes in n trials at
 * confidence conf (0.95 for 95%). Returns 0, or -FB_EINVAL when x > n, n == 0
 * or conf is not in (0, 1); out is then [0, 1].
 */
int stats_wilson(uint64_t x, uint64_t n, double conf, struct stats_interval *out);

/* Kullback-Leibler divergence KL(Bernoulli(p) || Bernoulli(q)) in nats. */
double stats_bern_kl(double p, double q);

/* log(exp(a) + exp(b)) without overflow; either may be -INFINITY. */
double stats_log_add(double a, double b);

/*
 * The conditional binomial. Two releases serve n_c and n_s requests in the
 * same period; of the e events (errors, slow requests) among them, x are the
 * canary's. If the canary's event rate is r times the stable's, then given e
 * (Poisson arrivals, or rare events) x ~ Binomial(e, p) with
 *     p = r * s / (r * s + 1 - s),  s = n_c / (n_c + n_s), the canary's share.
 * stats_cbin_p returns p; stats_cbin_llr the log-likelihood ratio of ratio r
 * against ratio 1:  x * log(r) - e * log1p((r - 1) * s).  (x <= e, 0 < s < 1.)
 */
double stats_cbin_p(double share, double r);
double stats_cbin_llr(uint64_t x, uint64_t e, double share, double r);
/* Expected log-likelihood ratio per event when the true ratio is r_true. */
double stats_cbin_drift(double share, double r, double r_true);

/*
 * Wald's SPRT of Bernoulli(p0) against Bernoulli(p1) at error rates alpha
 * (reject p0 when true) and beta (accept p0 when p1 is true): Wald's bounds
 * log A = log((1 - beta) / alpha) and log B = log(beta / (1 - alpha)), and
 * the expected sample number when the true rate is p (Wald's approximation,
 * which ignores the overshoot of the last observation; p0 != p1 in (0, 1)).
 * NAN for arguments out of range.
 */
double stats_wald_log_a(double alpha, double beta);
double stats_wald_log_b(double alpha, double beta);
double stats_wald_asn(double alpha, double beta, double p0, double p1, double p);
/* The operating characteristic: the probability that the SPRT accepts p0 when the rate is p. */
double stats_wald_oc(double alpha, double beta, double p0, double p1, double p);

#endif
