/*
 * metrics.c: the registry of per-worker and per-release counters.
 *
 * Operations: metrics_new / metrics_free; metrics_release finds or creates
 * the counters of a (service, release) under m->lock and appends them to an
 * append-only list whose links are published with release stores, so lookups,
 * walks and snapshots take no lock; metrics_snapshot_* sum the shards;
 * metrics_count_route is the one hot-path recorder too large to inline.
 *
 * Invariants: a struct release_metrics is never unlinked or freed before
 * metrics_free; every counter has one writer (its worker); a route slot's
 * name is complete before its key becomes non-zero, and neither changes again.
 *
 * Cost: a release costs nworkers shards of about 35 KiB (14 KiB histogram,
 * 21 KiB route table), allocated zeroed; a release snapshot walks
 * nworkers x 1713 buckets; a route snapshot nworkers x 65 slots.
 */
#include <stdlib.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/metrics.h"

const uint64_t metrics_le_ns[METRICS_LE_COUNT] = {
    500000ull,     1000000ull,     2500000ull,     5000000ull,     10000000ull,   25000000ull,
    50000000ull,   100000000ull,   250000000ull,   500000000ull,   1000000000ull, 2500000000ull,
    5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull,
};

const char *const metrics_le_text[METRICS_LE_COUNT] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60",
};

static const char *const upstream_kind_names[METRICS_UP_KIND_COUNT] = {
    "connect", "timeout", "reset", "bad_response", "overflow",
};

static const char *const http_error_names[METRICS_HE_COUNT] = {
    "400", "408", "413", "414", "431", "501", "505", "other",
};

const char *metrics_upstream_kind_name(enum metrics_upstream_kind kind)
{
    return (unsigned)kind < METRICS_UP_KIND_COUNT ? upstream_kind_names[kind] : "unknown";
}

const char *metrics_http_error_name(enum metrics_http_error he)
{
    return (unsigned)he < METRICS_HE_COUNT ? http_error_names[he] : "other";
}

/* Histogram bucket of each bound, filled once by metrics_new before any
 * worker can record. */
static unsigned le_index[METRICS_LE_COUNT];
static pthread_once_t le_once = PTHREAD_ONCE_INIT;

static void le_index_init(void)
{
    unsigned j;

    for (j = 0; j < METRICS_LE_COUNT; j++)
        le_index[j] = hist_index(metrics_le_ns[j]);
}

/* Route bin of a latency: the first bound whose histogram bucket is at or
 * above the latency's bucket (the same rounding as hist_count_le). */
static unsigned route_bin(uint64_t ns)
{
    unsigned idx = hist_index(ns), j;

    for (j = 0; j < METRICS_LE_COUNT; j++)
        if (idx <= le_index[j])
            break;
    return j;
}

void metrics_count_http_error(struct metrics_worker *w, int status)
{
    static const int statuses[METRICS_HE_OTHER] = {400, 408, 413, 414, 431, 501, 505};
    unsigned he = 0;

    while (he < METRICS_HE_OTHER && statuses[he] != status)
        he++;
    hist_owner_add(&w->http_errors[he], 1);
}

struct metrics *metrics_new(unsigned nworkers)
{
    struct metrics *m = NULL;
    size_t size = sizeof(struct metrics_worker) * (size_t)nworkers;

    if (nworkers == 0 || nworkers > METRICS_MAX_WORKERS)
        goto out;
    pthread_once(&le_once, le_index_init);
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    m->workers = aligned_alloc(METRICS_CACHE_LINE, size);
    if (!m->workers)
        goto free_m;
    memset(m->workers, 0, size);
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        goto free_workers;
    m->nworkers = nworkers;
    goto out;

free_workers:
    free(m->workers);
free_m:
    free(m);
    m = NULL;
out:
    return m;
}

void metrics_free(struct metrics *m)
{
    struct release_metrics *rm, *next;

    if (!m)
        return;
    for (rm = m->head; rm; rm = next) {
        next = rm->next;
        free(rm->shards);
        free(rm);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->workers);
    free(m);
}

static bool name_ok(const char *s)
{
    size_t n = s ? strnlen(s, METRICS_NAME_MAX) : 0;

    return n > 0 && n < METRICS_NAME_MAX;
}

struct release_metrics *metrics_release_next(struct metrics *m, struct release_metrics *prev)
{
    return __atomic_load_n(prev ? &prev->next : &m->head, __ATOMIC_ACQUIRE);
}

struct release_metrics *metrics_release_find(struct metrics *m, const char *service,
                                             const char *release)
{
    struct release_metrics *rm = NULL;

    if (!name_ok(service) || !name_ok(release))
        return NULL;
    while ((rm = metrics_release_next(m, rm)) != NULL)
        if (strcmp(rm->service, service) == 0 && strcmp(rm->release, release) == 0)
            break;
    return rm;
}

/* A zeroed release_metrics with its shards; NULL when memory ran out. */
static struct release_metrics *release_alloc(unsigned nworkers, const char *service,
                                             const char *release)
{
    struct release_metrics *rm = calloc(1, sizeof(*rm));
    size_t size = sizeof(struct release_shard) * (size_t)nworkers;

    if (!rm)
        goto out;
    rm->shards = aligned_alloc(METRICS_CACHE_LINE, size);
    if (!rm->shards)
        goto free_rm;
    memset(rm->shards, 0, size);
    rm->nworkers = nworkers;
    memcpy(rm->service, service, strlen(service) + 1);
    memcpy(rm->release, release, strlen(release) + 1);
    goto out;

free_rm:
    free(rm);
    rm = NULL;
out:
    return rm;
}

struct release_metrics *metrics_release(struct metrics *m, const char *service, const char *release)
{
    struct release_metrics *rm;

    if (!name_ok(service) || !name_ok(release))
        return NULL;
    pthread_mutex_lock(&m->lock);
    rm = metrics_release_find(m, service, release);
    if (rm)
        goto unlock;
    rm = release_alloc(m->nworkers, service, release);
    if (!rm)
        goto unlock;
    if (m->tail)
        __atomic_store_n(&m->tail->next, rm, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&m->head, rm, __ATOMIC_RELEASE);
    m->tail = rm;
    m->nreleases++;
unlock:
    pthread_mutex_unlock(&m->lock);
    return rm;
}

static void add_loaded(uint64_t *dst, const uint64_t *src, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        dst[i] += hist_load(&src[i]);
}

void metrics_snapshot_release(const struct release_metrics *rm, struct release_snapshot *out)
{
    struct hist *tmp = &out->latency;
    unsigned w, i;

    memset(out, 0, sizeof(*out));
    for (w = 0; w < rm->nworkers; w++) {
        const struct release_shard *s = &rm->shards[w];

        add_loaded(out->requests, s->requests, METRICS_CODE_CLASSES);
        add_loaded(out->upstream_errors, s->upstream_errors, METRICS_UP_KIND_COUNT);
        add_loaded(&out->bytes_in, &s->bytes_in, 1);
        add_loaded(&out->bytes_out, &s->bytes_out, 1);
        add_loaded(&out->writes, &s->writes, 1);
        add_loaded(&out->panic, &s->panic, 1);
        add_loaded(tmp->buckets, s->latency.buckets, HIST_SLOTS);
        add_loaded(&tmp->sum_ns, &s->latency.sum_ns, 1);
    }
    /* count agrees with the buckets read, whatever the writers did meanwhile */
    for (i = 0; i < HIST_SLOTS; i++)
        tmp->count += tmp->buckets[i];
}

void metrics_snapshot_workers(const struct metrics *m, struct metrics_totals *out)
{
    uint64_t client = 0, upstream = 0;
    unsigned w;

    memset(out, 0, sizeof(*out));
    for (w = 0; w < m->nworkers; w++) {
        const struct metrics_worker *mw = &m->workers[w];

        client += hist_load(&mw->client_open);
        upstream += hist_load(&mw->upstream_open);
        add_loaded(&out->connections_total, &mw->connections_total, 1);
        add_loaded(out->http_errors, mw->http_errors, METRICS_HE_COUNT);
        add_loaded(&out->overload_total, &mw->overload_total, 1);
    }
    /* each gauge wraps through uint64_t; the sum is the signed total */
    out->client_open = (int64_t)client;
    out->upstream_open = (int64_t)upstream;
}

int metrics_add_renderer(struct metrics *m, metrics_render_fn fn, void *arg)
{
    int rc = -FB_ETOOBIG;

    pthread_mutex_lock(&m->lock);
    if (m->nrenderers < METRICS_MAX_RENDERERS) {
        m->renderers[m->nrenderers].fn = fn;
        m->renderers[m->nrenderers].arg = arg;
        m->nrenderers++;
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- route classes ---- */

/* The slot of key in shard s, claiming a free one (copying name) when the
 * key is new; the shard's route_other when no slot is free within the probe
 * limit. Only the shard's worker calls this, so its plain reads of keys are
 * reads of its own writes. */
static struct route_stats *route_slot(struct release_shard *s, uint64_t key, const char *name)
{
    struct route_stats *slot = &s->route_other;
    size_t len;
    unsigned i;

    for (i = 0; i < METRICS_ROUTE_PROBES; i++) {
        struct route_stats *at = &s->routes[(key + i) & (METRICS_ROUTE_SLOTS - 1)];

        if (at->key == key) {
            slot = at;
            break;
        }
        if (at->key == 0) {
            len = name ? strnlen(name, METRICS_ROUTE_NAME_MAX - 1) : 0;
            memcpy(at->name, name ? name : "", len);
            at->name[len] = '\0';
            __atomic_store_n(&at->key, key, __ATOMIC_RELEASE);
            slot = at;
            break;
        }
    }
    return slot;
}

void metrics_count_route(struct release_metrics *rm, unsigned worker, uint64_t key,
                         const char *name, int status, uint64_t dur_ns, bool write,
                         bool upstream_error)
{
    struct route_stats *r = route_slot(metrics_shard(rm, worker), key ? key : 1, name);

    hist_owner_add(&r->requests[metrics_code_class(status)], 1);
    hist_owner_add(&r->upstream_errors, upstream_error ? 1 : 0);
    hist_owner_add(&r->writes, write ? 1 : 0);
    hist_owner_add(&r->sum_ns, dur_ns);
    hist_owner_add(&r->bins[route_bin(dur_ns)], 1);
}

static void route_add(struct route_stats *dst, const struct route_stats *src)
{
    add_loaded(dst->requests, src->requests, METRICS_CODE_CLASSES);
    add_loaded(&dst->upstream_errors, &src->upstream_errors, 1);
    add_loaded(&dst->writes, &src->writes, 1);
    add_loaded(&dst->sum_ns, &src->sum_ns, 1);
    add_loaded(dst->bins, src->bins, METRICS_LE_COUNT + 1);
}

static uint64_t route_total(const struct route_stats *r)
{
    uint64_t n = 0;
    unsigned c;

    for (c = 0; c < METRICS_CODE_CLASSES; c++)
        n += r->requests[c];
    return n;
}

static int route_cmp(const void *a, const void *b)
{
    const struct route_stats *x = a, *y = b;
    uint64_t nx = route_total(x), ny = route_total(y);

    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int key_cmp(const void *a, const void *b)
{
    const struct route_stats *x = a, *y = b;

    return x->key < y->key ? -1 : x->key > y->key;
}

/* Copies every published slot of every shard into all (zeroed, room for
 * nworkers x METRICS_ROUTE_SLOTS) and sums the shards' route_other into
 * other. Returns the number of slots copied. */
static size_t route_gather(const struct release_metrics *rm, struct route_stats *all,
                           struct route_stats *other)
{
    size_t n = 0;
    unsigned w, i;
    uint64_t key;

    for (w = 0; w < rm->nworkers; w++) {
        const struct release_shard *s = &rm->shards[w];

        for (i = 0; i < METRICS_ROUTE_SLOTS; i++) {
            key = __atomic_load_n(&s->routes[i].key, __ATOMIC_ACQUIRE);
            if (key == 0)
                continue;
            all[n].key = key;
            memcpy(all[n].name, s->routes[i].name, sizeof(all[n].name));
            route_add(&all[n], &s->routes[i]);
            n++;
        }
        route_add(other, &s->route_other);
    }
    return n;
}

/* Sums entries of equal key (adjacent after sorting by key); returns the new count. */
static size_t route_fold(struct route_stats *all, size_t n)
{
    size_t i, out = 0;

    for (i = 0; i < n; i++) {
        if (out > 0 && all[out - 1].key == all[i].key) {
            route_add(&all[out - 1], &all[i]); /* plain reads of a private copy */
            continue;
        }
        if (out != i)
            all[out] = all[i];
        out++;
    }
    return out;
}

int metrics_snapshot_routes(const struct release_metrics *rm, struct route_stats **out, size_t *n)
{
    size_t cap = (size_t)rm->nworkers * METRICS_ROUTE_SLOTS, count;
    struct route_stats *all = calloc(cap + 1, sizeof(*all));
    struct route_stats other;

    *out = NULL;
    *n = 0;
    if (!all)
        return -FB_ENOMEM;
    memset(&other, 0, sizeof(other));
    count = route_gather(rm, all, &other);
    qsort(all, count, sizeof(*all), key_cmp);
    count = route_fold(all, count);
    qsort(all, count, sizeof(*all), route_cmp);
    if (route_total(&other) > 0) {
        memcpy(other.name, METRICS_ROUTE_OTHER_NAME, sizeof(METRICS_ROUTE_OTHER_NAME));
        all[count++] = other;
    }
    *out = all;
    *n = count;
    return 0;
}
