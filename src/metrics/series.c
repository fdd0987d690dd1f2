/*
 * series.c: the one-second series (series.h).
 *
 * Per release: a ring of SERIES_POINTS points and a ring of SERIES_WINDOW
 * cumulative snapshots (about 14 KiB each). A point is the difference of two
 * consecutive snapshots, so the data plane's counters are read once a second
 * and never reset. Releases are found by their metrics object, which lives
 * as long as the process; a release that leaves the route table keeps its
 * history until the process ends.
 */
#include <stdlib.h>
#include <string.h>

#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/hist.h"
#include "firebreak/metrics.h"
#include "firebreak/series.h"

struct series_rel {
    struct series_rel *next;
    const struct release_metrics *rm;
    struct series_point points[SERIES_POINTS];
    unsigned npoints;
    unsigned head;                              /* next point slot */
    struct release_snapshot snaps[SERIES_WINDOW];
    unsigned nsnaps;
    unsigned snap_head;                         /* next snapshot slot */
};

struct series {
    struct metrics *m;
    struct series_rel *rels;
    uint64_t last_ns;
    struct hist delta;                          /* scratch */
};

struct series *series_new(struct metrics *m)
{
    struct series *s = calloc(1, sizeof(*s));

    if (s)
        s->m = m;
    return s;
}

void series_free(struct series *s)
{
    struct series_rel *r, *next;

    if (!s)
        return;
    for (r = s->rels; r; r = next) {
        next = r->next;
        free(r);
    }
    free(s);
}

static struct series_rel *rel_find(const struct series *s, const struct release_metrics *rm)
{
    struct series_rel *r;

    for (r = s->rels; r; r = r->next) {
        if (r->rm == rm)
            return r;
    }
    return NULL;
}

static const struct release_snapshot *snap_back(const struct series_rel *r, unsigned back)
{
    unsigned idx = (r->snap_head + SERIES_WINDOW - 1 - back) % SERIES_WINDOW;

    return &r->snaps[idx];
}

static void rel_sample(struct series *s, struct series_rel *r, int64_t now_ms)
{
    struct release_snapshot *cur = &r->snaps[r->snap_head];
    const struct release_snapshot *prev;
    struct series_point *p;

    metrics_snapshot_release(r->rm, cur);
    r->snap_head = (r->snap_head + 1) % SERIES_WINDOW;
    if (r->nsnaps < SERIES_WINDOW)
        r->nsnaps++;
    if (r->nsnaps < 2)
        return;
    prev = snap_back(r, 1);
    p = &r->points[r->head];
    memset(p, 0, sizeof(*p));
    p->time_ms = now_ms;
    p->requests = metrics_snapshot_requests(cur) - metrics_snapshot_requests(prev);
    p->errors = cur->requests[4] - prev->requests[4];
    p->writes = cur->writes - prev->writes;
    if (p->requests) {
        hist_diff(&s->delta, &cur->latency, &prev->latency);
        p->p50_ms = (double)hist_quantile(&s->delta, 0.50) / 1e6;
        p->p99_ms = (double)hist_quantile(&s->delta, 0.99) / 1e6;
    }
    r->head = (r->head + 1) % SERIES_POINTS;
    if (r->npoints < SERIES_POINTS)
        r->npoints++;
}

void series_tick(struct series *s, const struct route_table *t, uint64_t now_ns)
{
    int64_t now_ms = fb_wall_ms();
    unsigned i, j;

    if (s->last_ns && now_ns - s->last_ns < 1000000000ull)
        return;
    s->last_ns = s->last_ns ? s->last_ns + 1000000000ull : now_ns;
    if (now_ns - s->last_ns > 1000000000ull)
        s->last_ns = now_ns; /* a stall: restart the cadence */
    for (i = 0; i < t->nservices; i++) {
        for (j = 0; j < t->services[i].nreleases; j++) {
            const struct release_metrics *rm = t->services[i].releases[j].metrics;
            struct series_rel *r;

            if (!rm)
                continue;
            r = rel_find(s, rm);
            if (!r) {
                /* A release's counters start at zero: the first second is measured
                 * from zero, not thrown away as a baseline. */
                r = calloc(1, sizeof(*r));
                if (!r)
                    continue;
                r->nsnaps = 1;
                r->snap_head = 1;
                r->rm = rm;
                r->next = s->rels;
                s->rels = r;
            }
            rel_sample(s, r, now_ms);
        }
    }
}

int series_rates(const struct series *s, const struct release_metrics *rm, unsigned window_s,
                 struct series_rates *out)
{
    const struct series_rel *r = rel_find(s, rm);
    const struct release_snapshot *cur, *old;
    struct hist *delta;
    unsigned back;

    memset(out, 0, sizeof(*out));
    if (!r || r->nsnaps < 2)
        return -FB_ENOENT;
    if (window_s < 1)
        window_s = 1;
    back = window_s < r->nsnaps - 1 ? window_s : r->nsnaps - 1;
    cur = snap_back(r, 0);
    old = snap_back(r, back);
    out->window_s = back;
    out->requests = metrics_snapshot_requests(cur) - metrics_snapshot_requests(old);
    out->errors = cur->requests[4] - old->requests[4];
    out->rps = (double)out->requests / back;
    out->error_rate = out->requests ? (double)out->errors / (double)out->requests : 0.0;
    if (out->requests) {
        delta = malloc(sizeof(*delta));
        if (delta) {
            hist_diff(delta, &cur->latency, &old->latency);
            out->p50_ms = (double)hist_quantile(delta, 0.50) / 1e6;
            out->p99_ms = (double)hist_quantile(delta, 0.99) / 1e6;
            free(delta);
        }
    }
    return 0;
}

unsigned series_points(const struct series *s, const struct release_metrics *rm,
                       struct series_point *out, unsigned max)
{
    const struct series_rel *r = rel_find(s, rm);
    unsigned n, i, start;

    if (!r)
        return 0;
    n = r->npoints < max ? r->npoints : max;
    start = (r->head + SERIES_POINTS - n) % SERIES_POINTS;
    for (i = 0; i < n; i++)
        out[i] = r->points[(start + i) % SERIES_POINTS];
    return n;
}
