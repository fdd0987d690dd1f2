/*
 * journal-t.h: the write journal: one record per write request (POST, PUT,
 * PATCH, DELETE by default) that passed through the gateway, by release.
 *
 * Workers fill records and push them into their own bounded ring; the
 * journal's writer thread drains every ring and commits in batches. A full
 * ring drops the record and counts it: a worker never waits for the journal.
 */
#ifndef FIREBREAK_JOURNAL_T_H
#define FIREBREAK_JOURNAL_T_H

#include <stdbool.h>
#include <stdint.h>

#define JOURNAL_ID_MAX 40        /* request id */
#define JOURNAL_NAME_MAX 64      /* service, release */
#define JOURNAL_PATH_MAX 512     /* request target, cut at this length */
#define JOURNAL_ROUTE_MAX 120    /* route class */
#define JOURNAL_IDENT_SRC_MAX 1024 /* raw identity source (header, cookie or bearer token) */
#define JOURNAL_LOCATION_MAX 256 /* Location response header */
#define JOURNAL_BODY_MAX 16384   /* largest request body a record can carry */
#define JOURNAL_IDENTITY_MAX 256 /* a resolved identity is cut to this many bytes - 1 */
#define JOURNAL_ENTITY_MAX 512   /* an entity ("orders/123") is cut to this many bytes - 1 */
#define JOURNAL_REDACT_MAX 256   /* redact keys a journal holds */
#define JOURNAL_REDACT_KEY_MAX 64 /* bytes of one redact key */

enum journal_ident_kind {
    JOURNAL_IDENT_NONE,
    JOURNAL_IDENT_VALUE,   /* ident_src is the identity itself (header or cookie value) */
    JOURNAL_IDENT_JWT_SUB, /* ident_src is a bearer token; the identity is its "sub" claim */
};

/*
 * One write, as a worker fills it. Strings are NUL-terminated and cut to fit. The numbers come
 * first, in one cache line: a slot handed out has them zeroed and every string empty, and a
 * record touches only the lines its strings fill, not the whole slot.
 */
struct journal_record {
    int64_t time_ms;         /* wall clock when the request arrived */
    uint32_t duration_us;    /* request start to response end */
    uint32_t upstream_us;    /* request start to the upstream's first response byte */
    int status;
    enum journal_ident_kind ident_kind;
    uint32_t body_len;       /* bytes of body kept (0 when bodies are off) */
    bool body_truncated;
    char request_id[JOURNAL_ID_MAX];
    char service[JOURNAL_NAME_MAX];
    char release[JOURNAL_NAME_MAX];
    char method[16];
    char route[JOURNAL_ROUTE_MAX];
    char path[JOURNAL_PATH_MAX];
    char location[JOURNAL_LOCATION_MAX];
    char ident_src[JOURNAL_IDENT_SRC_MAX];
    char body[];             /* body_cap bytes follow in the ring slot */
};

/* Counters of a journal since journal_open; read with journal_stats from any thread. */
struct journal_stats {
    uint64_t written;        /* records committed (appended to the spool) */
    uint64_t dropped;        /* ring_full + write_failed: records the file will never hold */
    uint64_t ring_full;      /* records dropped because a worker's ring was full */
    uint64_t write_failed;   /* records lost because their batch failed to commit */
    uint64_t ident_errors;   /* JWTs whose sub claim could not be read (identity left NULL) */
    uint64_t bodies_redacted;/* bodies with at least one value redacted, or replaced whole */
    uint64_t trimmed;        /* records deleted by retention (age or size) */
    uint64_t commits;        /* batches committed */
    int64_t last_commit_ms;  /* wall clock of the last commit; 0 before the first */
    uint64_t unindexed;      /* committed records not yet in the postings and summaries */
    uint64_t loaded;         /* records loaded into journal.db from the spool */
    uint64_t loading;        /* committed records not yet in journal.db */
    uint64_t writer_cpu_ns;  /* CPU time of the spooler thread (the writer) */
    uint64_t loader_cpu_ns;  /* CPU time of the loader thread */
    uint64_t indexer_cpu_ns; /* CPU time of the indexer thread */
};

struct journal;
struct journal_ring;

#endif
