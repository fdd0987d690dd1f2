/*
 * webhook.h: outgoing webhooks (docs/webhooks.md).
 *
 * The incident engine and the control plane call webhook_send with an event
 * type and a JSON payload; every configured hook whose filter takes the type
 * gets one delivery: a signed JSON POST made with libcurl's multi interface
 * on the caller's libuv loop, retried with backoff, and recorded in a log of
 * the last WEBHOOK_LOG_MAX deliveries that the admin API shows.
 *
 * Every function runs on the thread of the loop given to webhook_new.
 */
#ifndef FIREBREAK_WEBHOOK_H
#define FIREBREAK_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "config-t.h"
#include "webhook-t.h"

struct webhook;
struct metrics;

/*
 * Creates the sender for cfg's webhooks (cfg is borrowed: what is needed is
 * copied) on loop. When m is not NULL, registers a /metrics renderer on it:
 * m keeps a pointer to the sender, so free the sender only once /metrics is
 * no longer rendered (after the admin listener closed, or after
 * metrics_free). Returns 0 with *out owned by the caller, -FB_ECONFIG for a
 * URL libcurl refuses, -FB_ETOOBIG past METRICS_MAX_RENDERERS, -FB_ENOMEM.
 */
int webhook_new(uv_loop_t *loop, const struct config *cfg, struct metrics *m, struct webhook **out);
/* The same with options (opts borrowed; NULL is all defaults). */
int webhook_new_opts(uv_loop_t *loop, const struct config *cfg, struct metrics *m,
                     const struct webhook_opts *opts, struct webhook **out);

/*
 * Cancels every attempt in flight (no callback of the caller runs), drops
 * what waits, and closes the handles on the loop. The memory goes back once
 * the loop has run the close callbacks. NULL is a no-op.
 */
void webhook_free(struct webhook *w);

/*
 * Replaces the hooks with cfg's (borrowed) after a reload. Waiting deliveries
 * move to the new definition of the hook with the same name (URL, secret,
 * timeout), or are dropped when the name is gone; attempts in flight finish
 * as they started. On error nothing changes. Returns 0, -FB_ECONFIG, -FB_ENOMEM.
 */
int webhook_reconfigure(struct webhook *w, const struct config *cfg);

/*
 * Queues one delivery of event type (1 to WEBHOOK_TYPE_MAX of a-z, 0-9, '_'
 * and '.') per hook that takes it. Takes ownership of payload (a JSON
 * object, or NULL for {}), whatever the result. Never blocks: attempts start
 * on a later loop iteration. When WEBHOOK_QUEUE_MAX deliveries already wait,
 * the oldest waiting one is dropped and counted. w may be NULL (no webhooks).
 * Returns 0, -FB_EINVAL for a bad type or payload, -FB_ETOOBIG for a body over
 * WEBHOOK_BODY_MAX, -FB_ENOMEM.
 */
int webhook_send(struct webhook *w, const char *type, json_t *payload);

/*
 * The delivery log as {"deliveries": [...newest first], "waiting": N,
 * "sending": N}; the caller owns the result. NULL when memory ran out.
 * w may be NULL (an empty log).
 */
json_t *webhook_log_json(const struct webhook *w);

/* Looks at the clock again on the next loop iteration and starts what is due
 * (for a test clock that moved). */
void webhook_kick(struct webhook *w);

/* Nothing waits and nothing is in flight. */
bool webhook_idle(const struct webhook *w);

#endif
