/*
 * listener.c: data-plane workers.
 *
 * Each worker is a thread with its own libuv loop and its own listening
 * socket bound with SO_REUSEPORT to the traffic address, so the kernel spreads
 * connections over workers and no lock is shared between them.
 *
 * Route tables are read under QSBR RCU. A worker stays online and announces a
 * quiescent state once per loop iteration, in the prepare phase just before
 * it polls, and then loads the newest table; every callback until the next
 * prepare (I/O callbacks run inside the poll phase, timers at the start of
 * the next iteration) uses that table and keeps no pointer into it beyond.
 * The 100 ms tick bounds the time between quiescent states, and so the grace
 * period a retired table waits for, even when a worker has no traffic.
 *
 * Stop and drain requests come from the control thread through uv_async.
 * I/O buffers come from a per-worker free list, so steady traffic allocates
 * nothing and an idle keep-alive connection holds no buffer.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/log.h"
#include "firebreak/proxy.h"
#include "firebreak/server-t.h"
#include "firebreak/access_log.h"

#define IOB_FREE_MAX 256
#define WORKER_BACKLOG 4096

struct iob *iob_get(struct worker *w)
{
    struct iob *b = w->free_iobs;

    if (b) {
        w->free_iobs = b->next;
        w->nfree_iobs--;
    } else {
        b = malloc(sizeof(*b) + w->iob_size);
        if (!b)
            return NULL;
        b->cap = w->iob_size;
    }
    b->next = NULL;
    b->off = 0;
    b->len = 0;
    return b;
}

void iob_put(struct worker *w, struct iob *b)
{
    if (!b)
        return;
    if (w->nfree_iobs >= IOB_FREE_MAX || b->cap != w->iob_size) {
        free(b);
        return;
    }
    b->next = w->free_iobs;
    w->free_iobs = b;
    w->nfree_iobs++;
}

uint64_t worker_random(struct worker *w)
{
    /* xoroshiro128+: fast, good enough for request and trace ids. */
    uint64_t s0 = w->rng[0], s1 = w->rng[1], r = s0 + s1;

    s1 ^= s0;
    w->rng[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    w->rng[1] = (s1 << 37) | (s1 >> 27);
    return r;
}

struct endpoint_state *worker_endpoint(struct worker *w, unsigned id)
{
    if (id >= w->neps) {
        unsigned n = id + 16;
        struct endpoint_state *eps = realloc(w->eps, n * sizeof(*eps));

        if (!eps)
            return NULL;
        memset(eps + w->neps, 0, (n - w->neps) * sizeof(*eps));
        w->eps = eps;
        w->neps = n;
    }
    return &w->eps[id];
}

static void on_prepare(uv_prepare_t *h)
{
    struct worker *w = h->data;

    rcu_quiescent_state();
    w->table = rcu_dereference(w->srv->table);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct worker *w = listener->data;

    if (status < 0) {
        fb_warn("worker %u: accept: %s", w->id, uv_strerror(status));
        return;
    }
    client_accepted(w, listener);
}

static int listen_socket(const struct cfg_addr *a, int *out)
{
    int fd, one = 1, rc = -FB_EIO;

    fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
        goto close_fd;
    if (bind(fd, (const struct sockaddr *)&a->addr, a->addr_len))
        goto close_fd;
    *out = fd;
    return 0;
close_fd:
    rc = errno == EADDRINUSE ? -FB_EEXIST : -FB_EIO;
    close(fd);
fail:
    return rc;
}

static void on_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t now = fb_mono_ns();

    access_log_flush(w);
    upstream_close_idle(w, now, 20ull * 1000000000u);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void worker_stop_listening(struct worker *w)
{
    if (w->listening) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        w->listening = false;
    }
}

static void on_wake(uv_async_t *a)
{
    struct worker *w = a->data;
    bool stop = __atomic_load_n(&w->listen_fd, __ATOMIC_ACQUIRE) == -2;
    struct client *c, *next;

    if (!stop && !__atomic_load_n(&w->draining, __ATOMIC_ACQUIRE))
        return;
    worker_stop_listening(w);
    if (stop)
        w->draining = true;
    for (c = w->clients; c; c = next) {
        next = c->next;
        if (stop)
            proxy_client_abort(c);
        else
            client_drain(c);
    }
    upstream_close_idle(w, fb_mono_ns(), 0);
    if (stop) {
        access_log_flush(w);
        uv_walk(&w->loop, close_walk, NULL);
    }
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    struct iob *b;
    char name[16];

    snprintf(name, sizeof name, "fb-worker-%u", w->id % 100000);
    pthread_setname_np(pthread_self(), name); /* what top -H and perf show */
    rcu_register_thread();
    w->table = rcu_dereference(w->srv->table);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    rcu_unregister_thread();
    uv_loop_close(&w->loop);
    while ((b = w->free_iobs)) {
        w->free_iobs = b->next;
        free(b);
    }
    free(w->eps);
    w->eps = NULL;
    fb_buf_release(&w->log);
}

static int worker_handles_init(struct worker *w, int fd)
{
    int rc;

    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    rc = uv_tcp_open(&w->listener, fd);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&w->listener, WORKER_BACKLOG, on_accept);
    if (rc) {
        fb_error("worker %u: listen: %s", w->id, uv_strerror(rc));
        return -FB_EIO;
    }
    w->listening = true;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_prepare_init(&w->loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, on_prepare);
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, 100, 100);
    return 0;
}

int worker_start(struct worker *w)
{
    struct server *srv = w->srv;
    int fd, rc;

    if (getrandom(w->rng, sizeof(w->rng), 0) != sizeof(w->rng)) {
        w->rng[0] = fb_mono_ns() ^ (uint64_t)(uintptr_t)w;
        w->rng[1] = (uint64_t)getpid() << 17 | w->id;
    }
    w->iob_size = srv->cfg->limits.header_bytes + 1024 > 65536 ? srv->cfg->limits.header_bytes + 1024
                                                              : 65536;
    fb_buf_init(&w->log, 1u << 20);
    rc = uv_loop_init(&w->loop);
    if (rc)
        return -FB_EIO;
    rc = listen_socket(&srv->cfg->listen, &fd);
    if (rc) {
        fb_error("cannot listen on %s: %s", srv->cfg->listen.text,
                 rc == -FB_EEXIST ? "address in use" : strerror(errno));
        uv_loop_close(&w->loop);
        return rc;
    }
    w->listen_fd = fd;
    rc = worker_handles_init(w, fd);
    if (rc)
        return rc;
    if (uv_thread_create(&w->thread, worker_main, w))
        return -FB_EIO;
    return 0;
}

void worker_request_drain(struct worker *w)
{
    __atomic_store_n(&w->draining, true, __ATOMIC_RELEASE);
    uv_async_send(&w->wake);
}

void worker_request_stop(struct worker *w)
{
    __atomic_store_n(&w->listen_fd, -2, __ATOMIC_RELEASE);
    uv_async_send(&w->wake);
}

void worker_join(struct worker *w)
{
    uv_thread_join(&w->thread);
}
