/*
 * webhook-t.h: limits and options of the outgoing webhooks (webhook.h).
 *
 * Every bound the sender keeps is here; struct webhook itself is private to
 * src/incident/webhook.c.
 */
#ifndef FIREBREAK_WEBHOOK_T_H
#define FIREBREAK_WEBHOOK_T_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_QUEUE_MAX 256         /* deliveries waiting for an attempt, all hooks */
#define WEBHOOK_INFLIGHT_MAX 8        /* attempts running at once */
#define WEBHOOK_LOG_MAX 200           /* deliveries kept in the delivery log */
#define WEBHOOK_MAX_ATTEMPTS 6        /* first attempt included */
#define WEBHOOK_BACKOFF_BASE_MS 1000u /* wait before the second attempt; doubles after */
#define WEBHOOK_BACKOFF_MAX_MS 60000u /* longest wait between attempts */
#define WEBHOOK_BODY_MAX (64u * 1024) /* bytes of one request body */
#define WEBHOOK_RESPONSE_MAX 4096     /* bytes of a response body read; the rest is discarded */
#define WEBHOOK_LOG_RESPONSE 256      /* bytes of a failed response kept in the log */
#define WEBHOOK_TEXT_MAX 1000         /* bytes of the "text" line */
#define WEBHOOK_TYPE_MAX 63           /* bytes of an event type */
#define WEBHOOK_HOOKS_MAX 32          /* hooks in one configuration */
#define WEBHOOK_STATS_MAX 128         /* hook names counted in metrics over the process life */

/* Monotonic milliseconds; arg is webhook_opts.clock_arg. */
typedef uint64_t (*webhook_clock_fn)(void *arg);

/*
 * Knobs for tests and tools; a zero field takes the default above. The
 * clock decides when a retry is due: a test passes its own and calls
 * webhook_kick after moving it, so backoff needs no sleep.
 */
struct webhook_opts {
    webhook_clock_fn clock; /* NULL: the process's monotonic clock */
    void *clock_arg;
    uint64_t backoff_base_ms;
    uint64_t backoff_max_ms;
    unsigned max_attempts;
    size_t queue_max;
    unsigned inflight_max;
};

#endif
