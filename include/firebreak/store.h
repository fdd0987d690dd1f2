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
 * callbacks of store_submit run. Returns 0 and *out, or a negative code with
 * a message in errbuf.
 */
int store_open(const char *where, uv_loop_t *loop, struct store **out, char *errbuf,
               size_t errlen);
/* Finishes queued work, stops the thread, closes the backend. */
void store_close(struct store *s);

/* Synchronous access (not from an event loop once store_start ran). */
int store_apply(struct store *s, struct store_op *ops, size_t n);
int store_events(struct store *s, const struct store_event_filter *f, struct store_event **out,
                 size_t *n);
int store_get(struct store *s, const char *kind, const char *key, struct store_doc *out);
int store_list(struct store *s, const char *kind, struct store_doc **out, size_t *n);
int store_next_id(struct store *s, const char *counter, int64_t *out);

/* Starts the store thread; from now on use store_submit from loops. */
int store_start(struct store *s);

/*
 * Runs fn(s, arg) on the store thread, then done(req, status-of-fn, arg) on
 * the loop. The queue is bounded; when it is full, store_submit returns
 * -FB_EAGAIN and nothing is queued. Ownership of arg stays with the caller.
 */
typedef int (*store_work_fn)(struct store *s, void *arg);
int store_submit(struct store *s, store_work_fn fn, store_done_fn done, void *arg);

/* Frees what store_events / store_list / store_get returned. */
void store_events_free(struct store_event *ev, size_t n);
void store_docs_free(struct store_doc *docs, size_t n);
void store_doc_release(struct store_doc *doc);

#endif
