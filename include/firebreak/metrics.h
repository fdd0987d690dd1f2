/*
 * metrics.h: the metrics registry (metrics-t.h) and its hot-path recorders.
 *
 * Control thread: metrics_new, metrics_release (find or create), snapshots,
 * metrics_free at exit. Data-plane workers: the inline metrics_count_* and
 * metrics_client_* / metrics_upstream_* functions, each touching only the
 * calling worker's own slot or shard with plain relaxed load + store pairs:
 * no lock, no atomic read-modify-write, no allocation.
 *
 * `worker` is always the caller's own worker index, below the nworkers given
 * to metrics_new; two threads recording with the same index would lose counts.
 */
#ifndef FIREBREAK_METRICS_H
#define FIREBREAK_METRICS_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "metrics-t.h"

/* Latency bounds of the /metrics histogram and of route bins, ascending, in
 * nanoseconds, and the same bounds as Prometheus `le` label text (seconds). */
extern const uint64_t metrics_le_ns[METRICS_LE_COUNT];
extern const char *const metrics_le_text[METRICS_LE_COUNT];

/* Names of the upstream error kinds and the http error statuses, as labels. */
const char *metrics_upstream_kind_name(enum metrics_upstream_kind kind);
const char *metrics_http_error_name(enum metrics_http_error he);

/* Creates a registry for nworkers (1 .. METRICS_MAX_WORKERS) data-plane
 * workers. Returns NULL when nworkers is out of range or memory ran out. The
 * caller owns the registry and frees it with metrics_free once no worker runs. */
struct metrics *metrics_new(unsigned nworkers);
void metrics_free(struct metrics *m);

/*
 * Finds or creates the counters of (service, release); control thread (any
 * thread, serialised by m->lock), never on the hot path. Names are copied; each
 * must be 1 .. METRICS_NAME_MAX - 1 bytes. Returns NULL for a bad name or when
 * memory ran out. The object belongs to m and lives until metrics_free, so a
 * route table may keep the pointer.
 */
struct release_metrics *metrics_release(struct metrics *m, const char *service,
                                        const char *release);
/* Finds without creating; NULL when absent. Takes no lock. */
struct release_metrics *metrics_release_find(struct metrics *m, const char *service,
                                             const char *release);
/* Walks every release in creation order: pass NULL for the first. Takes no
 * lock; releases created meanwhile may or may not be seen. */
struct release_metrics *metrics_release_next(struct metrics *m, struct release_metrics *prev);

/* Requests of every status class in a snapshot. */
static inline uint64_t metrics_snapshot_requests(const struct release_snapshot *s)
{
    uint64_t n = 0;
    unsigned i;

    for (i = 0; i < METRICS_CODE_CLASSES; i++)
        n += s->requests[i];
    return n;
}

/* Sums every shard of rm into out (caller's memory, about 14 KiB). */
void metrics_snapshot_release(const struct release_metrics *rm, struct release_snapshot *out);

/*
 * Sums the route-class counters of every shard of rm by class. On success
 * *out is a malloc'd array the caller frees, sorted by requests (most first),
 * with *n entries; the classes that found no slot come last as one entry named
 * METRICS_ROUTE_OTHER_NAME with key 0 (present only when it counted anything).
 * Returns 0 or -FB_ENOMEM (then *out is NULL and *n is 0).
 */
int metrics_snapshot_routes(const struct release_metrics *rm, struct route_stats **out, size_t *n);

/* Sums every worker's gauges and counters into out. */
void metrics_snapshot_workers(const struct metrics *m, struct metrics_totals *out);

/* Registers fn to append its own families at the end of every /metrics page.
 * Returns 0 or -FB_ETOOBIG past METRICS_MAX_RENDERERS. arg is borrowed until
 * metrics_free. */
int metrics_add_renderer(struct metrics *m, metrics_render_fn fn, void *arg);

/* firebreak itself answered a parse or limit error with this status (400,
 * 408, 413, 414, 431, 501, 505; any other counts as METRICS_HE_OTHER). */
void metrics_count_http_error(struct metrics_worker *w, int status);

/* Counts one request of a route class on the worker's shard: key is
 * route_class_hash of the class, name its text (copied the first time the
 * class is seen by this shard). Hot path, but not inline: one probe in the
 * common case, at most METRICS_ROUTE_PROBES. */
void metrics_count_route(struct release_metrics *rm, unsigned worker, uint64_t key,
                         const char *name, int status, uint64_t dur_ns, bool write,
                         bool upstream_error);

/* ---- hot path, inline ---- */

/* Index 0 .. 4 of a status's class; statuses below 100 count as 1xx and
 * statuses above 599 as 5xx. */
static inline unsigned metrics_code_class(int status)
{
    int c = status / 100 - 1;

    c = c < 0 ? 0 : c;
    return (unsigned)(c > METRICS_CODE_CLASSES - 1 ? METRICS_CODE_CLASSES - 1 : c);
}

static inline struct release_shard *metrics_shard(struct release_metrics *rm, unsigned worker)
{
    assert(worker < rm->nworkers);
    return &rm->shards[worker];
}

/* A response ended (its last byte sent): status class and latency from
 * request start. */
static inline void metrics_count_response(struct release_metrics *rm, unsigned worker, int status,
                                          uint64_t dur_ns)
{
    struct release_shard *s = metrics_shard(rm, worker);

    hist_owner_add(&s->requests[metrics_code_class(status)], 1);
    hist_record(&s->latency, dur_ns);
}

static inline void metrics_count_upstream_error(struct release_metrics *rm, unsigned worker,
                                                enum metrics_upstream_kind kind)
{
    struct release_shard *s = metrics_shard(rm, worker);

    if ((unsigned)kind < METRICS_UP_KIND_COUNT)
        hist_owner_add(&s->upstream_errors[kind], 1);
}

static inline void metrics_count_bytes(struct release_metrics *rm, unsigned worker, uint64_t in,
                                       uint64_t out)
{
    struct release_shard *s = metrics_shard(rm, worker);

    hist_owner_add(&s->bytes_in, in);
    hist_owner_add(&s->bytes_out, out);
}

/* A POST, PUT, PATCH or DELETE request was forwarded to this release. */
static inline void metrics_count_write(struct release_metrics *rm, unsigned worker)
{
    hist_owner_add(&metrics_shard(rm, worker)->writes, 1);
}

/* Every endpoint of the release was ejected and one served anyway (panic). */
static inline void metrics_count_panic(struct release_metrics *rm, unsigned worker)
{
    hist_owner_add(&metrics_shard(rm, worker)->panic, 1);
}

static inline struct metrics_worker *metrics_worker(struct metrics *m, unsigned worker)
{
    assert(worker < m->nworkers);
    return &m->workers[worker];
}

/* A client connection was accepted / closed. */
static inline void metrics_client_opened(struct metrics_worker *w)
{
    hist_owner_add(&w->client_open, 1);
    hist_owner_add(&w->connections_total, 1);
}

static inline void metrics_client_closed(struct metrics_worker *w)
{
    hist_owner_add(&w->client_open, (uint64_t)-1);
}

/* An upstream connection was opened / closed. */
static inline void metrics_upstream_opened(struct metrics_worker *w)
{
    hist_owner_add(&w->upstream_open, 1);
}

static inline void metrics_upstream_closed(struct metrics_worker *w)
{
    hist_owner_add(&w->upstream_open, (uint64_t)-1);
}

/* firebreak answered 503 because a limit on connections or pending requests
 * was reached. */
static inline void metrics_count_overload(struct metrics_worker *w)
{
    hist_owner_add(&w->overload_total, 1);
}

#endif
