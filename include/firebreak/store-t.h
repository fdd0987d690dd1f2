/*
 * store-t.h: the store's types.
 *
 * The store keeps firebreak's durable state: an append-only event log, and
 * documents (JSON text) addressed by (kind, key). It knows nothing of what
 * the documents mean: releases, tokens, rollouts and incidents are kinds
 * chosen by the parts above it. Backends implement struct store_ops.
 */
#ifndef FIREBREAK_STORE_T_H
#define FIREBREAK_STORE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct store;

/* Limits, checked on every call; exceeding one is -FB_ETOOBIG, never a cut. */
#define STORE_NAME_MAX 256             /* bytes of a kind, key, type, actor, ... */
#define STORE_JSON_MAX (1024 * 1024)   /* bytes of a details or document JSON text */
#define STORE_EVENTS_LIMIT_DEFAULT 500 /* store_event_filter.limit == 0 */
#define STORE_EVENTS_LIMIT_MAX 5000    /* larger limits are lowered to this */
#define STORE_LIST_MAX 65536           /* documents of one kind store_list returns */
#define STORE_BATCH_MAX 10000          /* ops in one store_apply */
#define STORE_QUEUE_MAX 4096           /* store_submit jobs not yet called back */

struct store_event {
    int64_t id;          /* assigned by the store, increasing */
    int64_t time_ms;     /* wall clock, Unix milliseconds; 0: now (filled in) */
    char *type;          /* "rollback", ... */
    char *actor;         /* token name, "system", "judge" */
    char *service;       /* may be NULL */
    char *release;       /* may be NULL */
    char *details;       /* a JSON object as text; NULL is stored as "{}" */
};

struct store_doc {
    char *kind;
    char *key;
    char *json;
    int64_t updated_ms; /* set on put; 0: now (filled in) */
};

struct store_event_filter {
    int64_t since_ms;    /* time_ms >= since_ms; 0: from the start */
    int64_t until_ms;    /* time_ms < until_ms; 0: no end */
    int64_t after_id;    /* 0: any */
    const char *service; /* NULL: any */
    size_t limit;        /* 0: 500; above 5000: 5000 (results are in id order) */
};

/* One write in a batch; all writes of a batch commit together or not at all. */
enum store_op_kind { STORE_OP_EVENT, STORE_OP_PUT, STORE_OP_DELETE };

struct store_op {
    enum store_op_kind kind;
    struct store_event event; /* STORE_OP_EVENT: id is filled in by the store */
    struct store_doc doc;     /* STORE_OP_PUT (kind, key, json) / DELETE (kind, key) */
};

/* A backend. Every function runs on the store's own thread (or before the
 * thread starts); none is called from an event loop. Return 0 or -FB_E...*/
struct store_ops {
    const char *name;
    int (*open)(struct store *s, const char *where); /* path or URL */
    void (*close)(struct store *s);
    int (*apply)(struct store *s, struct store_op *ops, size_t n); /* one transaction */
    int (*events)(struct store *s, const struct store_event_filter *f, struct store_event **out,
                  size_t *n);
    int (*get)(struct store *s, const char *kind, const char *key, struct store_doc *out);
    int (*list)(struct store *s, const char *kind, struct store_doc **out, size_t *n);
    int (*next_id)(struct store *s, const char *counter, int64_t *out); /* 1, 2, 3, ... */
};

/* Result of an asynchronous request, delivered on the owner's loop. */
typedef void (*store_done_fn)(int status, void *arg);

#endif
