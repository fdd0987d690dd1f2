/*
 * route-t.h: the route table the data plane reads.
 *
 * A table is immutable once published. The control thread builds a new one
 * for every change (reload, weights, rollback) and swaps the pointer; workers
 * read it without locks and never keep pointers into it across callbacks.
 */
#ifndef FIREBREAK_ROUTE_T_H
#define FIREBREAK_ROUTE_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config-t.h"
#include "h1_parse-t.h"

#define ROUTE_NAME_MAX 64
#define ROUTE_MAX_ENDPOINTS 4096 /* distinct endpoint addresses over the process's life */

struct release_metrics;

struct route_endpoint {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned id; /* stable for the address over the process's life: index of per-worker state */
    char text[ROUTE_NAME_MAX];
};

struct route_release {
    char name[ROUTE_NAME_MAX];
    struct route_endpoint *endpoints;
    unsigned nendpoints;
    uint32_t weight_bp;           /* weight in basis points: 10000 = 100% */
    uint32_t bucket_lo;           /* the sticky buckets [lo, hi) this release serves */
    uint32_t bucket_hi;
    struct release_metrics *metrics; /* never freed while the process runs */
};

struct route_service {
    char name[ROUTE_NAME_MAX];
    char *host;                   /* lower-case; NULL matches any host */
    size_t host_len;
    char *prefix;
    size_t prefix_len;
    struct route_release *releases;
    unsigned nreleases;
    unsigned stable;              /* index into releases */
    enum cfg_sticky_kind sticky;
    char sticky_name[ROUTE_NAME_MAX]; /* cookie or header name (header in lower case) */
    bool allow_pin;
    enum cfg_identity_kind identity;  /* who a write belongs to, for the journal */
    char identity_name[128];          /* header (lower case) or cookie name */
    uint32_t journal_methods;         /* bit (1 << enum h1_method) per journaled method */
    uint32_t journal_body;            /* request body bytes the journal keeps (journal.body_bytes) */
};

struct route_table {
    struct route_service *services;
    unsigned nservices;
    uint64_t version;
    unsigned nendpoint_ids;       /* every endpoint id in this table is below this */
    /* Limits and timeouts travel with the table so a reload changes them atomically. */
    struct h1_limits h1;
    struct cfg_timeouts timeouts;
    size_t upstream_connections;  /* per endpoint per worker, 0 = unlimited */
};

/*
 * The runtime shape of services, owned by the control thread: which releases
 * exist, their endpoints and weights, and which is stable. It overrides the
 * config's releases for the services it names (see docs/releases.md).
 */
struct route_spec_release {
    char *name;
    struct cfg_addr *endpoints;
    size_t nendpoints;
    uint32_t weight_bp;
    int64_t created_ms;
};

struct route_spec_service {
    char *name;
    struct route_spec_release *releases;
    size_t nreleases;
    char *stable;
    char *previous;             /* the stable before the last promotion, or NULL */
};

struct route_spec {
    struct route_spec_service *services;
    size_t nservices;
};

/* Address -> endpoint id, owned by the control thread. */
struct route_ids {
    char *text[ROUTE_MAX_ENDPOINTS];
    unsigned n;
};

#endif
