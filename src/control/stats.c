/*
 * stats.c: distributions, intervals and sequential-test helpers for the judge.
 *
 * Operations: the normal distribution and its quantile (an Abramowitz-Stegun
 * start polished by Newton steps on erfc, accurate to ~1e-15 relative), the
 * binomial pmf/cdf/quantile (lgamma-based terms), the Wilson score interval,
 * the conditional-binomial likelihood ratio, and Wald's SPRT bounds, operating
 * characteristic and expected sample number.
 *
 * Invariants: pure functions of their arguments; no state, no allocation.
 * Out-of-range arguments return NAN (values) or -FB_EINVAL (actions).
 * Cost: O(1) except the binomial cdf/quantile (linear in the tail summed) and
 * the Wald operating characteristic (a bisection of at most 200 steps).
 */
#include <math.h>
#include <stdbool.h>

#include "firebreak/err-t.h"
#include "firebreak/stats.h"

#define STATS_SQRT2 1.41421356237309504880
#define STATS_SQRT2PI 2.50662827463100050242

double stats_norm_cdf(double x)
{
    return 0.5 * erfc(-x / STATS_SQRT2);
}

/* Upper-tail quantile: x > 0 with P(Z > x) = q, for 0 < q <= 0.5. */
static double norm_upper_quantile(double q)
{
    double t = sqrt(-2.0 * log(q));
    double x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                       (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);

    /* Newton on g(x) = P(Z > x) - q, g'(x) = -phi(x); the start is within 5e-4. */
    for (int i = 0; i < 4; i++) {
        double g = 0.5 * erfc(x / STATS_SQRT2) - q;
        double phi = exp(-0.5 * x * x) / STATS_SQRT2PI;

        if (phi <= 0)
            break;
        x += g / phi;
    }
    return x;
}

double stats_norm_quantile(double p)
{
    if (!(p > 0 && p < 1))
        return NAN;
    if (p == 0.5)
        return 0.0;
    if (p < 0.5)
        return -norm_upper_quantile(p);
    return norm_upper_quantile(1.0 - p);
}

static bool prob_ok(double p)
{
    return p >= 0 && p <= 1;
}

double stats_binom_logpmf(uint64_t k, uint64_t n, double p)
{
    double dk = (double)k, dn = (double)n;

    if (!prob_ok(p))
        return NAN;
    if (k > n)
        return -INFINITY;
    if (p == 0)
        return k == 0 ? 0.0 : -INFINITY;
    if (p == 1)
        return k == n ? 0.0 : -INFINITY;
    return lgamma(dn + 1) - lgamma(dk + 1) - lgamma(dn - dk + 1) + dk * log(p) +
           (dn - dk) * log1p(-p);
}

/* Sum of P(X = i) for i in [from, to]. */
static double binom_sum(uint64_t from, uint64_t to, uint64_t n, double p)
{
    double s = 0;

    for (uint64_t i = from; i <= to; i++)
        s += exp(stats_binom_logpmf(i, n, p));
    return s;
}

double stats_binom_cdf(uint64_t k, uint64_t n, double p)
{
    double s;

    if (!prob_ok(p))
        return NAN;
    if (k >= n)
        return 1.0;
    /* Sum the shorter tail. */
    if (k < n - k)
        s = binom_sum(0, k, n, p);
    else
        s = 1.0 - binom_sum(k + 1, n, n, p);
    return fmin(1.0, fmax(0.0, s));
}

uint64_t stats_binom_quantile(double q, uint64_t n, double p)
{
    double s = 0;
    uint64_t k = 0;

    if (!prob_ok(p) || !(q >= 0 && q <= 1))
        return 0;
    for (k = 0; k < n; k++) {
        s += exp(stats_binom_logpmf(k, n, p));
        if (s >= q * (1 - 1e-12))
            break;
    }
    return k;
}

int stats_wilson(uint64_t x, uint64_t n, double conf, struct stats_interval *out)
{
    double z, z2, dn, ph, centre, half;

    out->lo = 0;
    out->hi = 1;
    if (n == 0 || x > n || !(conf > 0 && conf < 1))
        return -FB_EINVAL;
    z = stats_norm_quantile(0.5 + conf / 2);
    z2 = z * z;
    dn = (double)n;
    ph = (double)x / dn;
    centre = (ph + z2 / (2 * dn)) / (1 + z2 / dn);
    half = z / (1 + z2 / dn) * sqrt(ph * (1 - ph) / dn + z2 / (4 * dn * dn));
    out->lo = x == 0 ? 0.0 : fmax(0.0, centre - half);
    out->hi = x == n ? 1.0 : fmin(1.0, centre + half);
    return 0;
}

/* p * log(p / q) with 0 * log(0) = 0. */
static double xlogxy(double p, double q)
{
    return p == 0 ? 0.0 : p * log(p / q);
}

double stats_bern_kl(double p, double q)
{
    if (!prob_ok(p) || !prob_ok(q))
        return NAN;
    return xlogxy(p, q) + xlogxy(1 - p, 1 - q);
}

double stats_log_add(double a, double b)
{
    double hi = a > b ? a : b, lo = a > b ? b : a;

    if (hi == -INFINITY)
        return -INFINITY;
    return hi + log1p(exp(lo - hi));
}

double stats_cbin_p(double share, double r)
{
    if (!(share > 0 && share < 1) || !(r > 0))
        return NAN;
    return r * share / (r * share + 1 - share);
}

double stats_cbin_llr(uint64_t x, uint64_t e, double share, double r)
{
    if (x > e || !(share > 0 && share < 1) || !(r > 0))
        return NAN;
    return (double)x * log(r) - (double)e * log1p((r - 1) * share);
}

double stats_cbin_drift(double share, double r, double r_true)
{
    double pt = stats_cbin_p(share, r_true);

    if (isnan(pt) || !(r > 0))
        return NAN;
    return pt * log(r) - log1p((r - 1) * share);
}

static bool alpha_beta_ok(double alpha, double beta)
{
    return alpha > 0 && beta > 0 && alpha + beta < 1;
}

double stats_wald_log_a(double alpha, double beta)
{
    if (!alpha_beta_ok(alpha, beta))
        return NAN;
    return log((1 - beta) / alpha);
}

double stats_wald_log_b(double alpha, double beta)
{
    if (!alpha_beta_ok(alpha, beta))
        return NAN;
    return log(beta / (1 - alpha));
}

/* The per-observation log-likelihood ratio is z = a1 on an event, b1 otherwise. */
struct wald_steps {
    double a1;
    double b1;
};

static bool wald_setup(double alpha, double beta, double p0, double p1, double p,
                       struct wald_steps *w)
{
    if (!alpha_beta_ok(alpha, beta) || !(p0 > 0 && p0 < 1) || !(p1 > 0 && p1 < 1) || p0 == p1 ||
        !(p > 0 && p < 1))
        return false;
    w->a1 = log(p1 / p0);
    w->b1 = log1p(-p1) - log1p(-p0);
    return true;
}

/*
 * Wald's rate p(h) = (1 - e^{h b1}) / (e^{h a1} - e^{h b1}): the rate at
 * which E[e^{h z}] = 1. h = 1 gives p0 and h = -1 gives p1.
 */
static double wald_rate_at(const struct wald_steps *w, double h)
{
    double ea = exp(h * w->a1), eb = exp(h * w->b1);

    return (1 - eb) / (ea - eb);
}

/* Solves p(h) = p by bisection; p(h) is monotone in h. Returns 0 at the zero-drift rate. */
static double wald_h_for(const struct wald_steps *w, double p)
{
    double span = 700.0 / fmax(fabs(w->a1), fabs(w->b1));
    double lo = -span, hi = span;
    bool rising = wald_rate_at(w, hi) > wald_rate_at(w, lo);

    for (int i = 0; i < 200 && hi - lo > 1e-13; i++) {
        double mid = 0.5 * (lo + hi);
        double pm = fabs(mid) < 1e-12 ? -w->b1 / (w->a1 - w->b1) : wald_rate_at(w, mid);

        if ((pm < p) == rising)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double stats_wald_oc(double alpha, double beta, double p0, double p1, double p)
{
    struct wald_steps w;
    double la, lb, h;

    if (!wald_setup(alpha, beta, p0, p1, p, &w))
        return NAN;
    if (p == p0)
        return 1 - alpha;
    if (p == p1)
        return beta;
    la = stats_wald_log_a(alpha, beta);
    lb = stats_wald_log_b(alpha, beta);
    h = wald_h_for(&w, p);
    if (fabs(h) < 1e-9)
        return la / (la - lb);
    /* L = (A^h - 1) / (A^h - B^h), scaled so that no exponent is positive. */
    if (h > 0)
        return -expm1(-h * la) / -expm1(h * (lb - la));
    return (exp(h * (la - lb)) - exp(-h * lb)) / expm1(h * (la - lb));
}

double stats_wald_asn(double alpha, double beta, double p0, double p1, double p)
{
    struct wald_steps w;
    double la, lb, ez, ez2, oc;

    if (!wald_setup(alpha, beta, p0, p1, p, &w))
        return NAN;
    la = stats_wald_log_a(alpha, beta);
    lb = stats_wald_log_b(alpha, beta);
    ez = p * w.a1 + (1 - p) * w.b1;
    ez2 = p * w.a1 * w.a1 + (1 - p) * w.b1 * w.b1;
    if (fabs(ez) < 1e-12 * sqrt(ez2))
        return -la * lb / ez2;
    oc = stats_wald_oc(alpha, beta, p0, p1, p);
    return (oc * lb + (1 - oc) * la) / ez;
}
