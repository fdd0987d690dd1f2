/*
 * impact-t.h: the data-impact report of a release, read from the write journal.
 */
#ifndef FIREBREAK_IMPACT_T_H
#define FIREBREAK_IMPACT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMPACT_LIST_DEFAULT 1000    /* identities and entities listed per report */
#define IMPACT_LIST_MAX 100000
#define IMPACT_ROUTES_MAX 1000      /* (route, status) rows per report, busiest first */
#define IMPACT_EXPORT_DEFAULT 100000 /* records per export */
#define IMPACT_EXPORT_MAX 10000000
#define IMPACT_DISTINCT_MAX 5000000 /* distinct identities or entities a window report counts */

/* Which writes a report or an export covers. Strings are borrowed. */
struct impact_filter {
    const char *service;  /* required */
    const char *release;  /* required by impact_query; NULL in an export: every release */
    int64_t since_ms;     /* inclusive; 0: from the first record */
    int64_t until_ms;     /* exclusive; 0: no end */
    const char *identity; /* exports only: NULL for every identity */
    size_t list_max;      /* names listed per set; 0: IMPACT_LIST_DEFAULT */
};

struct impact_route {
    char *route; /* route class, "POST /api/orders/:id" */
    int status;
    uint64_t writes;
};

struct impact_name {
    char *name; /* an identity or an entity */
    uint64_t writes;
};

/* A report; every array is owned by it (impact_report_release). */
struct impact_report {
    uint64_t writes;
    int64_t first_ms, last_ms; /* 0 when there are no writes */
    struct impact_route *routes;
    size_t nroutes;
    bool routes_cut;           /* more (route, status) pairs than IMPACT_ROUTES_MAX */
    uint64_t identities;       /* distinct, exact */
    uint64_t anonymous;        /* writes without an identity */
    struct impact_name *identity_list; /* ordered by name, at most list_max */
    size_t nidentity_list;
    uint64_t entities;         /* distinct, exact */
    uint64_t without_entity;   /* writes whose path and Location named no entity */
    struct impact_name *entity_list;
    size_t nentity_list;
    /* Records the journal dropped (full rings, failed commits) in process runs that overlap
     * the window, this run's live count included: when above 0 every figure is a floor. */
    uint64_t dropped;
    /* Records the journal had committed but could not load into journal.db within the
     * report's wait (a long backlog): they are not counted, so every figure is a floor. */
    uint64_t loading;
    bool summary;              /* answered from the per-release summaries, not the records */
    double elapsed_ms;
};

enum impact_format { IMPACT_CSV, IMPACT_JSONL };

/* Receives export output in pieces (whole lines); a non-zero return stops the export and is
 * returned by it. */
typedef int (*impact_sink_fn)(void *arg, const char *data, size_t len);

struct impact;

#endif
