/*
 * upstream.c: connections to release endpoints, and the per-worker pools of
 * idle keep-alive connections.
 *
 *   connect ──► CONNECTING ──ok──► BUSY (serving one client) ──release(reuse)──► IDLE
 *                   │ fail/timeout        │ error, close, !reuse                  │ EOF, data,
 *                   ▼                     ▼                                       ▼ 20 s idle
 *                 CLOSED ◄───────────── CLOSED ◄───────────────────────────────── CLOSED
 *
 *   transition             function
 *   -> CONNECTING          upstream_acquire (no idle connection in the pool)
 *   CONNECTING -> BUSY     on_connect
 *   IDLE -> BUSY           upstream_acquire (pops the most recently used one)
 *   BUSY -> IDLE           upstream_release (reusable)
 *   any -> CLOSED          upstream_close
 *
 * Pools are per worker and per endpoint id (stable across route-table swaps),
 * so taking a connection needs no lock. An idle connection keeps reading: the
 * upstream closing it, or sending anything unasked, closes it here at once,
 * which keeps most stale connections out of the pool; the rest are retried
 * by the proxy.
 *
 * Passive health: a failed connect marks the endpoint down on this worker for
 * 1 s, doubling with consecutive failures up to 30 s; the balancer skips down
 * endpoints while another is up. A success clears it.
 */
#include <stdlib.h>
#include <string.h>

#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/metrics.h"
#include "firebreak/proxy.h"
#include "firebreak/server-t.h"

#define POOL_MAX_IDLE 128
#define DOWN_BASE_NS 1000000000ull
#define DOWN_MAX_NS 30000000000ull

static void upstream_close(struct upstream *up);

void upstream_mark(struct worker *w, unsigned ep_id, bool ok)
{
    struct endpoint_state *es = worker_endpoint(w, ep_id);
    uint64_t down;

    if (!es)
        return;
    if (ok) {
        es->consecutive_failures = 0;
        es->down_until_ns = 0;
        return;
    }
    es->consecutive_failures++;
    down = DOWN_BASE_NS << (es->consecutive_failures > 5 ? 5 : es->consecutive_failures - 1);
    es->down_until_ns = fb_mono_ns() + (down > DOWN_MAX_NS ? DOWN_MAX_NS : down);
}

static void idle_unlink(struct upstream *up, struct endpoint_state *es)
{
    if (!up->idle)
        return;
    up->idle = false;
    if (up->prev)
        up->prev->next = up->next;
    else if (es->idle == up)
        es->idle = up->next;
    if (up->next)
        up->next->prev = up->prev;
    if (es->nidle)
        es->nidle--;
    up->prev = up->next = NULL;
}

static void on_upstream_closed(uv_handle_t *h)
{
    struct upstream *up = h->data;

    if (--up->open_handles)
        return;
    iob_put(up->w, up->in);
    free(up);
}

static void upstream_close(struct upstream *up)
{
    struct endpoint_state *es;

    if (up->closing)
        return;
    up->closing = true;
    es = worker_endpoint(up->w, up->ep_id);
    if (es) {
        idle_unlink(up, es);
        if (es->nopen)
            es->nopen--;
    }
    if (up->c && up->c->up == up)
        up->c->up = NULL;
    up->c = NULL;
    metrics_upstream_closed(up->w->mw);
    uv_close((uv_handle_t *)&up->timer, on_upstream_closed);
    uv_close((uv_handle_t *)&up->tcp, on_upstream_closed);
}

static void upstream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct upstream *up = h->data;
    struct iob *b = up->in;

    if (!b) {
        b = up->in = iob_get(up->w);
        if (!b) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
    }
    if (up->c && up->c->writing) {
        /* A client write still points into this buffer: append only. */
    } else if (b->off == b->len) {
        b->off = 0;
        b->len = 0;
    } else if (b->cap - b->len < 4096 && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    *buf = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len));
}

static void on_upstream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct upstream *up = s->data;
    struct client *c = up->c;

    if (nread == 0)
        return;
    if (!c) {
        /* Idle: the upstream closed it or sent something unasked. */
        upstream_close(up);
        return;
    }
    if (nread < 0) {
        up->eof = true;
        upstream_read_stop(up);
        proxy_upstream_data(c, true);
        return;
    }
    up->got_bytes = true;
    up->in->len += (size_t)nread;
    if (!up->head_done || !c->ex.resp_done)
        upstream_arm_timer(up, up->w->table->timeouts.upstream_response);
    proxy_upstream_data(c, false);
}

void upstream_read_start(struct upstream *up)
{
    if (!up->reading && !up->closing && !up->eof) {
        if (uv_read_start((uv_stream_t *)&up->tcp, upstream_alloc, on_upstream_read) == 0)
            up->reading = true;
    }
}

void upstream_read_stop(struct upstream *up)
{
    if (up->reading) {
        uv_read_stop((uv_stream_t *)&up->tcp);
        up->reading = false;
    }
}

static void on_upstream_timer(uv_timer_t *t)
{
    struct upstream *up = t->data;
    struct client *c = up->c;

    if (!c) {
        upstream_close(up);
        return;
    }
    if (!up->connected) {
        upstream_mark(up->w, up->ep_id, false);
        upstream_close(up);
        proxy_upstream_failed(c, -FB_ETIMEOUT, METRICS_UP_TIMEOUT);
        return;
    }
    if (!up->head_done) {
        proxy_upstream_failed(c, -FB_ETIMEOUT, METRICS_UP_TIMEOUT);
        return;
    }
    if (c->ex.rm)
        metrics_count_upstream_error(c->ex.rm, up->w->id, METRICS_UP_TIMEOUT);
    proxy_client_abort(c);
}

void upstream_arm_timer(struct upstream *up, uint64_t ms)
{
    if (!up->closing)
        uv_timer_start(&up->timer, on_upstream_timer, ms, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct upstream *up = req->data;
    struct client *c = up->c;

    if (up->closing)
        return;
    uv_timer_stop(&up->timer);
    if (status < 0) {
        upstream_mark(up->w, up->ep_id, false);
        upstream_close(up);
        proxy_upstream_failed(c, -FB_ECONNECT, METRICS_UP_CONNECT);
        return;
    }
    up->connected = true;
    upstream_mark(up->w, up->ep_id, true);
    uv_tcp_nodelay(&up->tcp, 1);
    c->ex.pooled = false;
    proxy_upstream_ready(c, up);
}

static struct upstream *upstream_new(struct worker *w, const struct route_endpoint *ep)
{
    struct upstream *up = calloc(1, sizeof(*up));

    if (!up)
        return NULL;
    up->w = w;
    up->ep_id = ep->id;
    uv_tcp_init(&w->loop, &up->tcp);
    uv_timer_init(&w->loop, &up->timer);
    up->tcp.data = up;
    up->timer.data = up;
    up->connect.data = up;
    up->open_handles = 2;
    metrics_upstream_opened(w->mw);
    return up;
}

void upstream_acquire(struct worker *w, struct client *c, const struct route_endpoint *ep)
{
    struct endpoint_state *es = worker_endpoint(w, ep->id);
    const struct route_table *t = w->table;
    struct upstream *up;

    if (!es) {
        proxy_upstream_failed(c, -FB_EAGAIN, METRICS_UP_OVERFLOW);
        return;
    }
    if ((up = es->idle)) {
        idle_unlink(up, es);
        uv_timer_stop(&up->timer);
        up->c = c;
        c->ex.pooled = true;
        proxy_upstream_ready(c, up);
        return;
    }
    if (t->upstream_connections && es->nopen >= t->upstream_connections) {
        metrics_count_overload(w->mw);
        proxy_upstream_failed(c, -FB_EAGAIN, METRICS_UP_OVERFLOW);
        return;
    }
    up = upstream_new(w, ep);
    if (!up) {
        proxy_upstream_failed(c, -FB_EAGAIN, METRICS_UP_OVERFLOW);
        return;
    }
    es->nopen++;
    up->c = c;
    c->up = NULL;
    if (uv_tcp_connect(&up->connect, &up->tcp, (const struct sockaddr *)&ep->addr, on_connect)) {
        upstream_close(up);
        upstream_mark(w, ep->id, false);
        proxy_upstream_failed(c, -FB_ECONNECT, METRICS_UP_CONNECT);
        return;
    }
    upstream_arm_timer(up, t->timeouts.upstream_connect);
}

void upstream_release(struct upstream *up, bool reusable)
{
    struct endpoint_state *es = worker_endpoint(up->w, up->ep_id);

    if (up->c && up->c->up == up)
        up->c->up = NULL;
    if (!reusable || !es || up->eof || up->writing || up->w->draining ||
        es->nidle >= POOL_MAX_IDLE) {
        upstream_close(up);
        return;
    }
    up->c = NULL;
    up->head_done = false;
    up->got_bytes = false;
    if (up->in && up->in->off == up->in->len) {
        iob_put(up->w, up->in);
        up->in = NULL;
    }
    up->idle_since_ns = fb_mono_ns();
    up->prev = NULL;
    up->next = es->idle;
    if (es->idle)
        es->idle->prev = up;
    es->idle = up;
    es->nidle++;
    up->idle = true;
    uv_timer_stop(&up->timer);
    upstream_read_start(up);
}

int upstream_write(struct upstream *up, const uv_buf_t *bufs, unsigned n, uv_write_cb cb)
{
    int rc;

    up->wr.data = up;
    up->writing = true;
    rc = uv_write(&up->wr, (uv_stream_t *)&up->tcp, bufs, n, cb);
    if (rc)
        up->writing = false;
    return rc;
}

void upstream_close_idle(struct worker *w, uint64_t now_ns, uint64_t max_idle_ns)
{
    unsigned i;

    for (i = 0; i < w->neps; i++) {
        struct upstream *up = w->eps[i].idle, *next;

        for (; up; up = next) {
            next = up->next;
            if (w->draining || now_ns - up->idle_since_ns > max_idle_ns)
                upstream_close(up);
        }
    }
}
