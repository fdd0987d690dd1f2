/*
 * store.c: the store's front: choosing a backend, checking every argument,
 * and the store thread that runs writes off the event loops.
 *
 * Operations: store_open/store_close; synchronous calls (store_apply,
 * store_events, store_get, store_list, store_next_id) that check their
 * arguments and call the backend; store_start and store_submit, which run
 * work on the store thread and call back on the owner's loop through uv_async.
 *
 * The job queue is one ring of STORE_QUEUE_MAX slots and three counters that
 * only grow (slot = counter % STORE_QUEUE_MAX):
 *
 *     head ............. run ............. tail
 *     | ran, awaiting    | queued, not yet |
 *     | its callback     | run             |
 *
 * store_submit writes slot tail and advances tail; the store thread runs slot
 * run and advances run, then wakes the loop with uv_async_send; the async
 * callback on the loop calls back slot head and advances head. So callbacks
 * run in submission order, and the ring is full when tail - head reaches
 * STORE_QUEUE_MAX (store_submit then answers -FB_EAGAIN).
 *
 * Invariants: head <= run <= tail <= head + STORE_QUEUE_MAX, all three read
 * and written under lock; a slot in [head, tail) is written only by the one
 * thread that owns that stage. The backend is used by one thread at a time:
 * whoever holds db_lock (the store thread while it runs a job, or a
 * synchronous caller). A thread that already holds it (a job calling
 * store_apply) is recognised through tls_holder and does not lock again.
 *
 * Cost: one mutex round trip per submit and per completion; the backend does
 * the real work (one transaction per store_apply).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/store.h"
#include "store_backend.h"

struct store_job {
    store_work_fn fn;
    store_done_fn done;
    void *arg;
    int status;
};

struct store {
    const struct store_ops *ops;
    void *backend;      /* owned by ops->open / ops->close */
    uv_async_t *async;  /* NULL without a loop; freed by its close callback */
    uv_mutex_t db_lock; /* held by the one thread using the backend */
    uv_mutex_t lock;    /* guards the counters and flags below */
    uv_cond_t wake;     /* the store thread waits here for work */
    uv_thread_t thread;
    bool started;           /* the thread runs; read and written by the owner only */
    bool stopping;          /* under lock: the thread exits once the queue is empty */
    struct store_job *ring; /* STORE_QUEUE_MAX slots */
    uint64_t head, run, tail;
    char err[512]; /* last failure, written by the db_lock holder */
};

/* The store whose db_lock this thread holds, if any. */
static _Thread_local struct store *tls_holder;

static const char pg_not_built[] = "PostgreSQL store not built yet";

/* ---- backend access ---------------------------------------------------- */

void *store_backend(struct store *s)
{
    return s->backend;
}

void store_set_backend(struct store *s, void *state)
{
    s->backend = state;
}

int store_fail(struct store *s, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return err;
}

const char *store_error(struct store *s)
{
    return s ? s->err : "no store";
}

/* Takes db_lock unless this thread holds it; returns the previous holder. */
static struct store *db_enter(struct store *s, bool *took)
{
    struct store *prev = tls_holder;

    *took = prev != s;
    if (*took) {
        uv_mutex_lock(&s->db_lock);
        tls_holder = s;
        s->err[0] = '\0';
    }
    return prev;
}

static void db_leave(struct store *s, struct store *prev, bool took)
{
    if (!took)
        return;
    tls_holder = prev;
    uv_mutex_unlock(&s->db_lock);
}

/* ---- argument checks --------------------------------------------------- */

/* Length of one UTF-8 sequence at p (n bytes left), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len, i;
    uint32_t c;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, c = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, c = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, c = p[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, step;

    while (i < n) {
        step = utf8_seq(p + i, n - i);
        if (!step)
            return false;
        i += step;
    }
    return true;
}

/*
 * Checks a short string (kind, key, type, ...). what names it in the
 * message, with the prefix pre ("op 2: "). NULL passes when !required.
 */
static int check_name(struct store *s, const char *pre, const char *what, const char *v,
                      bool required)
{
    size_t len;

    if (!v)
        return required ? store_fail(s, -FB_EINVAL, "%s%s is missing", pre, what) : 0;
    len = strnlen(v, STORE_NAME_MAX + 1);
    if (len > STORE_NAME_MAX)
        return store_fail(s, -FB_ETOOBIG, "%s%s is longer than %d bytes", pre, what,
                          STORE_NAME_MAX);
    if (len == 0 && required)
        return store_fail(s, -FB_EINVAL, "%s%s is empty", pre, what);
    if (!utf8_valid(v, len))
        return store_fail(s, -FB_EINVAL, "%s%s is not valid UTF-8", pre, what);
    return 0;
}

/* Checks a JSON text: at most STORE_JSON_MAX bytes, valid, an object if asked. */
static int check_json(struct store *s, const char *pre, const char *what, const char *text,
                      bool object)
{
    json_error_t jerr;
    json_t *j;
    size_t len;
    int rc = 0;

    len = strnlen(text, STORE_JSON_MAX + 1);
    if (len > STORE_JSON_MAX)
        return store_fail(s, -FB_ETOOBIG, "%s%s is longer than %d bytes", pre, what,
                          STORE_JSON_MAX);
    j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (!j)
        return store_fail(s, -FB_EINVAL, "%s%s is not valid JSON (line %d, column %d: %s)", pre,
                          what, jerr.line, jerr.column, jerr.text);
    if (object && !json_is_object(j))
        rc = store_fail(s, -FB_EINVAL, "%s%s is not a JSON object", pre, what);
    json_decref(j);
    return rc;
}

static int check_event(struct store *s, const char *pre, const struct store_event *e)
{
    int rc;

    if (e->time_ms < 0)
        return store_fail(s, -FB_EINVAL, "%sevent time_ms is negative", pre);
    rc = check_name(s, pre, "event type", e->type, true);
    if (!rc)
        rc = check_name(s, pre, "event actor", e->actor, true);
    if (!rc)
        rc = check_name(s, pre, "event service", e->service, false);
    if (!rc)
        rc = check_name(s, pre, "event release", e->release, false);
    if (!rc && e->details)
        rc = check_json(s, pre, "event details", e->details, true);
    return rc;
}

static int check_doc(struct store *s, const char *pre, const struct store_doc *d, bool put)
{
    int rc;

    rc = check_name(s, pre, "doc kind", d->kind, true);
    if (!rc)
        rc = check_name(s, pre, "doc key", d->key, true);
    if (!rc && put && !d->json)
        rc = store_fail(s, -FB_EINVAL, "%sdoc json is missing", pre);
    if (!rc && put)
        rc = check_json(s, pre, "doc json", d->json, false);
    if (!rc && put && d->updated_ms < 0)
        rc = store_fail(s, -FB_EINVAL, "%sdoc updated_ms is negative", pre);
    return rc;
}

static int check_op(struct store *s, size_t i, const struct store_op *op)
{
    char pre[32];

    snprintf(pre, sizeof(pre), "op %zu: ", i);
    switch (op->kind) {
    case STORE_OP_EVENT:
        return check_event(s, pre, &op->event);
    case STORE_OP_PUT:
        return check_doc(s, pre, &op->doc, true);
    case STORE_OP_DELETE:
        return check_doc(s, pre, &op->doc, false);
    }
    return store_fail(s, -FB_EINVAL, "%sunknown kind %d", pre, (int)op->kind);
}

/* Checks a batch and fills in the times left at 0. */
static int check_batch(struct store *s, struct store_op *ops, size_t n)
{
    int64_t now = fb_wall_ms();
    size_t i;
    int rc = 0;

    if (!ops && n)
        return store_fail(s, -FB_EINVAL, "batch of %zu ops has no ops", n);
    if (n > STORE_BATCH_MAX)
        return store_fail(s, -FB_ETOOBIG, "batch of %zu ops is over %d", n, STORE_BATCH_MAX);
    for (i = 0; i < n && !rc; i++)
        rc = check_op(s, i, &ops[i]);
    for (i = 0; i < n && !rc; i++) {
        if (ops[i].kind == STORE_OP_EVENT && ops[i].event.time_ms == 0)
            ops[i].event.time_ms = now;
        if (ops[i].kind == STORE_OP_PUT && ops[i].doc.updated_ms == 0)
            ops[i].doc.updated_ms = now;
    }
    return rc;
}

/* ---- synchronous calls -------------------------------------------------- */

int store_apply(struct store *s, struct store_op *ops, size_t n)
{
    struct store *prev;
    bool took;
    size_t i;
    int rc;

    if (!s)
        return -FB_EINVAL;
    prev = db_enter(s, &took);
    rc = check_batch(s, ops, n);
    if (!rc && n)
        rc = s->ops->apply(s, ops, n);
    for (i = 0; rc && ops && i < n; i++)
        if (ops[i].kind == STORE_OP_EVENT)
            ops[i].event.id = 0;
    db_leave(s, prev, took);
    return rc;
}

static int check_filter(struct store *s, const struct store_event_filter *f,
                        struct store_event_filter *use)
{
    memset(use, 0, sizeof(*use));
    if (f)
        *use = *f;
    if (use->since_ms < 0 || use->until_ms < 0 || use->after_id < 0)
        return store_fail(s, -FB_EINVAL, "event filter: since, until and after must be >= 0");
    if (use->limit == 0)
        use->limit = STORE_EVENTS_LIMIT_DEFAULT;
    if (use->limit > STORE_EVENTS_LIMIT_MAX)
        use->limit = STORE_EVENTS_LIMIT_MAX;
    return check_name(s, "event filter: ", "service", use->service, false);
}

int store_events(struct store *s, const struct store_event_filter *f, struct store_event **out,
                 size_t *n)
{
    struct store_event_filter use;
    struct store *prev;
    bool took;
    int rc;

    if (!s || !out || !n)
        return -FB_EINVAL;
    *out = NULL;
    *n = 0;
    prev = db_enter(s, &took);
    rc = check_filter(s, f, &use);
    if (!rc)
        rc = s->ops->events(s, &use, out, n);
    db_leave(s, prev, took);
    return rc;
}

int store_get(struct store *s, const char *kind, const char *key, struct store_doc *out)
{
    struct store *prev;
    bool took;
    int rc;

    if (!s || !out)
        return -FB_EINVAL;
    memset(out, 0, sizeof(*out));
    prev = db_enter(s, &took);
    rc = check_name(s, "", "doc kind", kind, true);
    if (!rc)
        rc = check_name(s, "", "doc key", key, true);
    if (!rc)
        rc = s->ops->get(s, kind, key, out);
    db_leave(s, prev, took);
    return rc;
}

int store_list(struct store *s, const char *kind, struct store_doc **out, size_t *n)
{
    struct store *prev;
    bool took;
    int rc;

    if (!s || !out || !n)
        return -FB_EINVAL;
    *out = NULL;
    *n = 0;
    prev = db_enter(s, &took);
    rc = check_name(s, "", "doc kind", kind, true);
    if (!rc)
        rc = s->ops->list(s, kind, out, n);
    db_leave(s, prev, took);
    return rc;
}

int store_next_id(struct store *s, const char *counter, int64_t *out)
{
    struct store *prev;
    bool took;
    int rc;

    if (!s || !out)
        return -FB_EINVAL;
    *out = 0;
    prev = db_enter(s, &took);
    rc = check_name(s, "", "counter name", counter, true);
    if (!rc)
        rc = s->ops->next_id(s, counter, out);
    db_leave(s, prev, took);
    return rc;
}

/* ---- freeing results ---------------------------------------------------- */

void store_events_free(struct store_event *ev, size_t n)
{
    size_t i;

    for (i = 0; ev && i < n; i++) {
        free(ev[i].type);
        free(ev[i].actor);
        free(ev[i].service);
        free(ev[i].release);
        free(ev[i].details);
    }
    free(ev);
}

void store_doc_release(struct store_doc *doc)
{
    if (!doc)
        return;
    free(doc->kind);
    free(doc->key);
    free(doc->json);
    memset(doc, 0, sizeof(*doc));
}

void store_docs_free(struct store_doc *docs, size_t n)
{
    size_t i;

    for (i = 0; docs && i < n; i++)
        store_doc_release(&docs[i]);
    free(docs);
}

/* ---- the store thread and the queue ------------------------------------ */

/* Runs one job on the calling thread with the backend to itself. */
static int job_run(struct store *s, const struct store_job *job)
{
    struct store *prev;
    bool took;
    int status;

    prev = db_enter(s, &took);
    status = job->fn(s, job->arg);
    db_leave(s, prev, took);
    return status;
}

/* Runs the job at run, if any, on this thread; false when none is queued. */
static bool queue_run_one(struct store *s)
{
    struct store_job job;
    uint64_t at;
    int status;

    uv_mutex_lock(&s->lock);
    if (s->run == s->tail) {
        uv_mutex_unlock(&s->lock);
        return false;
    }
    at = s->run;
    job = s->ring[at % STORE_QUEUE_MAX];
    uv_mutex_unlock(&s->lock);

    status = job_run(s, &job);

    uv_mutex_lock(&s->lock);
    s->ring[at % STORE_QUEUE_MAX].status = status;
    s->run = at + 1;
    uv_mutex_unlock(&s->lock);
    return true;
}

/* Takes the oldest job that ran but was not called back, if below limit. */
static bool queue_take_done(struct store *s, uint64_t limit, struct store_job *job)
{
    bool got;

    uv_mutex_lock(&s->lock);
    got = s->head < s->run && s->head < limit;
    if (got) {
        *job = s->ring[s->head % STORE_QUEUE_MAX];
        s->head++;
    }
    uv_mutex_unlock(&s->lock);
    return got;
}

static void store_thread_main(void *arg)
{
    struct store *s = arg;
    bool idle_stop;

    pthread_setname_np(pthread_self(), "fb-store");
    for (;;) {
        uv_mutex_lock(&s->lock);
        while (s->run == s->tail && !s->stopping)
            uv_cond_wait(&s->wake, &s->lock);
        idle_stop = s->run == s->tail;
        uv_mutex_unlock(&s->lock);
        if (idle_stop)
            break;
        if (queue_run_one(s))
            uv_async_send(s->async);
    }
}

/* On the owner's loop: calls back, in order, the jobs that ran so far. */
static void store_on_async(uv_async_t *h)
{
    struct store *s = h->data;
    struct store_job job;
    uint64_t limit;

    uv_mutex_lock(&s->lock);
    limit = s->run;
    uv_mutex_unlock(&s->lock);
    while (queue_take_done(s, limit, &job))
        if (job.done)
            job.done(job.status, job.arg);
}

int store_submit(struct store *s, store_work_fn fn, store_done_fn done, void *arg)
{
    struct store_job *slot;
    int rc = 0;

    if (!s || !fn || !s->async)
        return -FB_EINVAL;
    uv_mutex_lock(&s->lock);
    if (s->tail - s->head >= STORE_QUEUE_MAX) {
        rc = -FB_EAGAIN;
    } else {
        slot = &s->ring[s->tail % STORE_QUEUE_MAX];
        slot->fn = fn;
        slot->done = done;
        slot->arg = arg;
        slot->status = 0;
        s->tail++;
        uv_cond_signal(&s->wake);
    }
    uv_mutex_unlock(&s->lock);
    return rc;
}

int store_start(struct store *s)
{
    int rc;

    if (!s || !s->async)
        return -FB_EINVAL;
    if (s->started)
        return 0;
    rc = uv_thread_create(&s->thread, store_thread_main, s);
    if (rc)
        return store_fail(s, -FB_EIO, "cannot start the store thread: %s", uv_strerror(rc));
    s->started = true;
    return 0;
}

/* ---- open and close ----------------------------------------------------- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Chooses the backend for where and the path or URL it is given. */
static int pick_backend(const char *where, const struct store_ops **ops, const char **target,
                        char *errbuf, size_t errlen)
{
    int rc = 0;

    if (has_prefix(where, "postgres://") || has_prefix(where, "postgresql://")) {
        snprintf(errbuf, errlen, "%s", pg_not_built);
        rc = -FB_EINVAL;
    } else {
        *ops = &sqlite_store_ops;
        *target = has_prefix(where, "sqlite:") ? where + strlen("sqlite:") : where;
        if (**target == '\0') {
            snprintf(errbuf, errlen, "store: the SQLite path is empty");
            rc = -FB_EINVAL;
        }
    }
    return rc;
}

static void store_free(struct store *s)
{
    uv_cond_destroy(&s->wake);
    uv_mutex_destroy(&s->lock);
    uv_mutex_destroy(&s->db_lock);
    free(s->ring);
    free(s);
}

static struct store *store_alloc(void)
{
    struct store *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->ring = calloc(STORE_QUEUE_MAX, sizeof(*s->ring));
    if (!s->ring) {
        free(s);
        return NULL;
    }
    if (uv_mutex_init(&s->db_lock) || uv_mutex_init(&s->lock) || uv_cond_init(&s->wake)) {
        /* uv_mutex_init fails only on exhausted resources; leave the rest */
        free(s->ring);
        free(s);
        return NULL;
    }
    return s;
}

static int store_attach_loop(struct store *s, uv_loop_t *loop, char *errbuf, size_t errlen)
{
    int rc;

    s->async = malloc(sizeof(*s->async));
    if (!s->async) {
        snprintf(errbuf, errlen, "store: out of memory");
        return -FB_ENOMEM;
    }
    rc = uv_async_init(loop, s->async, store_on_async);
    if (rc) {
        free(s->async);
        s->async = NULL;
        snprintf(errbuf, errlen, "store: uv_async_init: %s", uv_strerror(rc));
        return -FB_EIO;
    }
    s->async->data = s;
    return 0;
}

int store_open(const char *where, uv_loop_t *loop, struct store **out, char *errbuf, size_t errlen)
{
    const struct store_ops *ops = NULL;
    const char *target = NULL;
    struct store *s = NULL;
    char scratch[8];
    int rc;

    if (!errbuf || !errlen) {
        errbuf = scratch;
        errlen = sizeof(scratch);
    }
    errbuf[0] = '\0';
    if (!where || !out) {
        snprintf(errbuf, errlen, "store: no location given");
        return -FB_EINVAL;
    }
    *out = NULL;
    rc = pick_backend(where, &ops, &target, errbuf, errlen);
    if (rc)
        goto out;
    s = store_alloc();
    if (!s) {
        snprintf(errbuf, errlen, "store: out of memory");
        rc = -FB_ENOMEM;
        goto out;
    }
    s->ops = ops;
    rc = ops->open(s, target);
    if (rc) {
        snprintf(errbuf, errlen, "%s", s->err);
        goto free_store;
    }
    rc = loop ? store_attach_loop(s, loop, errbuf, errlen) : 0;
    if (rc)
        goto close_backend;
    *out = s;
    s = NULL;
    goto out;

close_backend:
    ops->close(s);
free_store:
    store_free(s);
out:
    return rc;
}

static void store_async_closed(uv_handle_t *h)
{
    free(h);
}

void store_close(struct store *s)
{
    struct store_job job;

    if (!s)
        return;
    uv_mutex_lock(&s->lock);
    s->stopping = true;
    uv_cond_signal(&s->wake);
    uv_mutex_unlock(&s->lock);
    if (s->started)
        uv_thread_join(&s->thread);
    s->started = false;
    /* The thread ran everything queued before it saw stopping; what a
     * callback submits now runs here, so the loop below ends when both the
     * queue and the callbacks are exhausted. */
    for (;;) {
        if (queue_run_one(s))
            continue;
        if (!queue_take_done(s, UINT64_MAX, &job))
            break;
        if (job.done)
            job.done(job.status, job.arg);
    }
    if (s->async)
        uv_close((uv_handle_t *)s->async, store_async_closed);
    s->async = NULL;
    s->ops->close(s);
    store_free(s);
}
