/*
 * series.h: the one-second series per service and release, the last 15
 * minutes, kept by the control thread from the data plane's counters.
 *
 * series_tick may run as often as wanted; it samples once per elapsed second.
 * Each point holds that second's requests, 5xx answers, and latency
 * quantiles. Rates over a window (up to 10 s) come from cumulative snapshots.
 */
#ifndef FIREBREAK_SERIES_H
#define FIREBREAK_SERIES_H

#include <stdint.h>

#include "metrics-t.h"
#include "route-t.h"

#define SERIES_POINTS 900 /* 15 minutes of seconds */
#define SERIES_WINDOW 11  /* cumulative snapshots kept for window rates */

struct series;

struct series_point {
    int64_t time_ms;      /* wall clock at the end of the second */
    uint64_t requests;
    uint64_t errors;      /* 5xx answers, firebreak's own 502/503/504 included */
    uint64_t writes;
    double p50_ms;
    double p99_ms;
};

struct series_rates {
    unsigned window_s;    /* the window actually covered (<= asked) */
    double rps;
    double error_rate;    /* errors / requests; 0 when no requests */
    double p50_ms;
    double p99_ms;
    uint64_t requests;
    uint64_t errors;
};

struct series *series_new(struct metrics *m);
void series_free(struct series *s);
/* Samples every release of t if a second has passed since the last sample. */
void series_tick(struct series *s, const struct route_table *t, uint64_t now_ns);
/* Rates of one release over the last window_s seconds (1..10). Returns 0, or
 * -FB_ENOENT when the release has not been sampled yet. */
int series_rates(const struct series *s, const struct release_metrics *rm, unsigned window_s,
                 struct series_rates *out);
/* Copies up to max of the newest points, oldest first; returns how many. */
unsigned series_points(const struct series *s, const struct release_metrics *rm,
                       struct series_point *out, unsigned max);

#endif
