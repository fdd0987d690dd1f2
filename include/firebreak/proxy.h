/*
 * proxy.h: the data plane's internal interface between listener.c (workers,
 * buffers), proxy.c (client connections, exchanges) and upstream.c (upstream
 * connections and pools). Only server.c uses the worker_* functions.
 */
#ifndef FIREBREAK_PROXY_H
#define FIREBREAK_PROXY_H

#include "metrics-t.h"
#include "proxy-t.h"

/* listener.c */
int worker_start(struct worker *w);
/* Thread-safe: ask every worker to stop accepting and finish in-flight requests. */
void worker_request_drain(struct worker *w);
/* Thread-safe: ask the worker to close everything and end its thread. */
void worker_request_stop(struct worker *w);
void worker_join(struct worker *w);
struct iob *iob_get(struct worker *w);
void iob_put(struct worker *w, struct iob *b);
uint64_t worker_random(struct worker *w);
/* The endpoint state for id, growing the array; NULL when out of memory. */
struct endpoint_state *worker_endpoint(struct worker *w, unsigned id);

/* proxy.c */
void client_accepted(struct worker *w, uv_stream_t *listener);
void client_drain(struct client *c);
void proxy_upstream_ready(struct client *c, struct upstream *up);
/* err is a negative FB_E code: FB_ECONNECT before or FB_ETIMEOUT during. */
void proxy_upstream_failed(struct client *c, int err, enum metrics_upstream_kind kind);
void proxy_upstream_data(struct client *c, bool eof);
/* Closes the client connection (and its upstream) at once: a response can no
 * longer be completed. */
void proxy_client_abort(struct client *c);

/* upstream.c */
/* Finds an idle pooled connection or connects; calls back proxy_upstream_ready
 * or proxy_upstream_failed (possibly before returning). */
void upstream_acquire(struct worker *w, struct client *c, const struct route_endpoint *ep);
/* Returns up to its pool when reusable, else closes it. Detaches it from its client. */
void upstream_release(struct upstream *up, bool reusable);
/* Writes bufs; cb runs once with status 0 or a libuv error. */
int upstream_write(struct upstream *up, const uv_buf_t *bufs, unsigned n, uv_write_cb cb);
void upstream_read_start(struct upstream *up);
void upstream_read_stop(struct upstream *up);
void upstream_arm_timer(struct upstream *up, uint64_t ms);
void upstream_close_idle(struct worker *w, uint64_t now_ns, uint64_t max_idle_ns);
void upstream_mark(struct worker *w, unsigned ep_id, bool ok);

#endif
