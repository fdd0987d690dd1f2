/*
 * store.h: opening the store, and reaching it from an event loop.
 *
 * Synchronous calls (store_apply, store_events, ...) are for start-up, before
 * the loops run, and for the store thread itself. From a loop, use
 * store_submit: the work runs on the store's thread and its callback runs
 * back on the loop given to store_open, through uv_async.
 */
#ifndef FIREBREAK_STORE_H
#define FIREBREAK_STORE_H

#include "store-t.h"

/*
 * Opens the store: where is "sqlite:PATH", a plain PATH (SQLite), or a
 * "postgres://..." URL. Runs the numbered migrations. loop is where
 * callbacks of store_submit run (NULL: synchronous use only); call
 * store_open on that loop's thread or before the loop runs. Returns 0 and
 * *out (owned by the caller, freed by store_close), or a negative code with
 * a message in errbuf.
 */
int store_open(const char *where, uv_loop_t *loop, struct store **out, char *errbuf,
               size_t errlen);
/*
 * Finishes queued work, stops the thread, closes the backend and frees s.
 * Call it on the loop's thread or once the loop no longer runs. Every queued
 * job runs, and every done callback not yet run is called on the calling
 * thread, in order; so no write is lost. It starts closing the uv_async
 * handle it made on the loop: run the loop once more (as any shutdown that
 * closes its handles does) before uv_loop_close, or that handle leaks.
 * Never call it from inside a store_done_fn or store_work_fn.
 */
void store_close(struct store *s);

/*
 * Synchronous access: before store_start, inside a store_work_fn, or from a
 * thread that runs no event loop (it waits for the job running then).
 * store_apply checks every op first (names at most STORE_NAME_MAX bytes of
 * UTF-8, JSON at most STORE_JSON_MAX bytes and valid, details an object),
 * then commits all of them in one transaction or none; it fills in event ids
 * and times left at 0; deleting an absent document is no error. Results are
 * the caller's: free them with store_events_free, store_docs_free or
 * store_doc_release. store_get answers -FB_ENOENT for an absent document;
 * store_list is ordered by key; store_next_id gives 1, 2, 3, ... per counter.
 */
int store_apply(struct store *s, struct store_op *ops, size_t n);
int store_events(struct store *s, const struct store_event_filter *f, struct store_event **out,
                 size_t *n);
int store_get(struct store *s, const char *kind, const char *key, struct store_doc *out);
int store_list(struct store *s, const char *kind, struct store_doc **out, size_t *n);
int store_next_id(struct store *s, const char *counter, int64_t *out);

/* Starts the store thread; from now on use store_submit from loops. */
int store_start(struct store *s);

/*
 * Runs fn(s, arg) on the store thread, then done(status-of-fn, arg) on the
 * loop (done may be NULL). Callbacks run in submission order. The queue is
 * bounded (STORE_QUEUE_MAX jobs not yet called back); when it is full,
 * store_submit returns -FB_EAGAIN and nothing is queued. Ownership of arg
 * stays with the caller; arg must live until done runs.
 */
typedef int (*store_work_fn)(struct store *s, void *arg);
int store_submit(struct store *s, store_work_fn fn, store_done_fn done, void *arg);

/*
 * The message of the last failed call made on this store by the calling
 * thread's current job (inside a store_work_fn, or a synchronous call before
 * store_start): "op 2: doc json is not valid JSON: ...". Owned by the store,
 * valid until the next call. "" when there is none.
 */
const char *store_error(struct store *s);

/* Frees what store_events / store_list / store_get returned. */
void store_events_free(struct store_event *ev, size_t n);
void store_docs_free(struct store_doc *docs, size_t n);
void store_doc_release(struct store_doc *doc);

#endif
