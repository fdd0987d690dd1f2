/*
 * metrics-t.h: the registry of counters the data plane records into.
 *
 * struct metrics holds one struct metrics_worker per data-plane worker
 * (connection gauges and errors firebreak answers itself) and a list of
 * struct release_metrics, one per (service, release), each holding one
 * struct release_shard per worker. A worker writes only its own worker slot
 * and its own shards; readers (the control thread, /metrics) sum the shards.
 *
 * Every counter has exactly one writer thread: the worker that owns it. It
 * adds with a plain load and a relaxed atomic store (hist_owner_add), readers
 * load with relaxed atomic loads. Worker slots and shards are cache-line
 * aligned so two workers never write the same line.
 *
 * Per route class, each shard keeps a fixed open-addressing table keyed by a
 * 64-bit hash of the class string (route_class_hash); the string itself is
 * copied into the slot once, when the slot is claimed, before the key is
 * published with a release store. A class that finds no free slot within
 * METRICS_ROUTE_PROBES probes is counted in the shard's route_other slot.
 */
#ifndef FIREBREAK_METRICS_T_H
#define FIREBREAK_METRICS_T_H

#include <pthread.h>
#include <stdint.h>

#include "buf-t.h"
#include "hist-t.h"

#define METRICS_CACHE_LINE 64
#define METRICS_MAX_WORKERS 1024
#define METRICS_NAME_MAX 128       /* service and release names, NUL included */
#define METRICS_CODE_CLASSES 5     /* 1xx .. 5xx at index 0 .. 4 */
#define METRICS_ROUTE_SLOTS 64     /* route classes per shard; a power of two */
#define METRICS_ROUTE_PROBES 16    /* slots tried before a class counts as other */
#define METRICS_ROUTE_NAME_MAX 120 /* route class string, NUL included; longer is cut */
#define METRICS_ROUTE_OTHER_NAME "(other)"
#define METRICS_LE_COUNT 16 /* latency bounds of /metrics and route bins */
#define METRICS_MAX_RENDERERS 16

/* Upstream failures by kind; the names are the Prometheus `kind` label. */
enum metrics_upstream_kind {
    METRICS_UP_CONNECT,      /* "connect": refused or failed connect */
    METRICS_UP_TIMEOUT,      /* "timeout": connect or response deadline passed */
    METRICS_UP_RESET,        /* "reset": connection reset or closed mid-response */
    METRICS_UP_BAD_RESPONSE, /* "bad_response": malformed response (502) */
    METRICS_UP_OVERFLOW,     /* "overflow": endpoint limit reached, 503 answered */
    METRICS_UP_KIND_COUNT
};

/* Errors firebreak answers itself, by status; the Prometheus `status` label. */
enum metrics_http_error {
    METRICS_HE_400,
    METRICS_HE_408,
    METRICS_HE_413,
    METRICS_HE_414,
    METRICS_HE_431,
    METRICS_HE_501,
    METRICS_HE_505,
    METRICS_HE_OTHER, /* any other status passed to metrics_count_http_error */
    METRICS_HE_COUNT
};

/* Process-wide figures one worker owns. Gauges are stored as uint64_t and
 * change by +1 / -1 (wrapping); the sum over workers is read as int64_t. */
struct metrics_worker {
    _Alignas(METRICS_CACHE_LINE) uint64_t client_open; /* open client connections */
    uint64_t upstream_open;                            /* open upstream connections */
    uint64_t connections_total;                        /* client connections accepted */
    uint64_t http_errors[METRICS_HE_COUNT];            /* parse and limit errors */
    uint64_t overload_total;                           /* 503 answered for overload */
};

/* Counters of one route class in one shard (or, in a snapshot, summed). */
struct route_stats {
    uint64_t key;                      /* 0 while the slot is free */
    char name[METRICS_ROUTE_NAME_MAX]; /* written once, before key is published */
    uint64_t requests[METRICS_CODE_CLASSES];
    uint64_t upstream_errors;
    uint64_t writes; /* POST, PUT, PATCH, DELETE */
    uint64_t sum_ns; /* latency sum */
    /* Latency bins, not cumulative: bin j holds values at or below
     * metrics_le_ns[j] (to the histogram bucket) and above bin j - 1;
     * bin METRICS_LE_COUNT holds the rest. */
    uint64_t bins[METRICS_LE_COUNT + 1];
};

/* One worker's share of one release's counters. */
struct release_shard {
    _Alignas(METRICS_CACHE_LINE) uint64_t requests[METRICS_CODE_CLASSES];
    uint64_t upstream_errors[METRICS_UP_KIND_COUNT];
    uint64_t bytes_in;   /* request bytes received from clients */
    uint64_t bytes_out;  /* response bytes sent to clients */
    uint64_t writes;     /* POST, PUT, PATCH, DELETE requests */
    uint64_t panic;      /* requests routed to ejected endpoints: none was admitted */
    struct hist latency; /* request start to response end */
    struct route_stats routes[METRICS_ROUTE_SLOTS];
    struct route_stats route_other;
};

struct release_metrics {
    struct release_metrics *next; /* published with a release store; never unlinked */
    char service[METRICS_NAME_MAX];
    char release[METRICS_NAME_MAX];
    unsigned nworkers;
    struct release_shard *shards; /* nworkers of them */
};

/* A summed, self-consistent copy of one release's counters. */
struct release_snapshot {
    uint64_t requests[METRICS_CODE_CLASSES];
    uint64_t upstream_errors[METRICS_UP_KIND_COUNT];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t writes;
    uint64_t panic;
    struct hist latency;
};

/* Sums of every worker's struct metrics_worker. */
struct metrics_totals {
    int64_t client_open;
    int64_t upstream_open;
    uint64_t connections_total;
    uint64_t http_errors[METRICS_HE_COUNT];
    uint64_t overload_total;
};

/* Appends metric families to out (Prometheus text); returns 0 or -FB_E code. */
typedef int (*metrics_render_fn)(struct fb_buf *out, void *arg);

struct metrics_renderer {
    metrics_render_fn fn;
    void *arg;
};

struct metrics {
    unsigned nworkers;
    struct metrics_worker *workers; /* nworkers of them */
    pthread_mutex_t lock;           /* guards creation and renderers, never the hot path */
    struct release_metrics *head;   /* append-only list, read without the lock */
    struct release_metrics *tail;
    unsigned nreleases;
    struct metrics_renderer renderers[METRICS_MAX_RENDERERS];
    unsigned nrenderers;
};

#endif
