/*
 * webhook.c: outgoing webhooks, sent with libcurl's multi interface on a libuv loop.
 *
 * webhook_send turns one event into one delivery per hook whose filter takes
 * its type. A delivery is a JSON body ({"text", "type", "time", "data"}) that
 * is POSTed, signed afresh on every attempt, until a 2xx answer, a final
 * refusal or the last attempt:
 *
 *   webhook_send                 due, a slot free          2xx
 *   ───────────► WAITING ────────────────────────► SENDING ─────► OK
 *                 ▲   │ queue full (oldest),         │
 *                 │   │ hook removed by a reload     ├─ 3xx, 4xx but 429, last attempt ─► FAILED
 *                 │   ▼                              │
 *                 │  DROPPED                         │ connection error, timeout, 429, 5xx
 *                 └──────── due = now + backoff ─────┘
 *
 *   transition                    function
 *   -> WAITING                    webhook_send (queue_insert)
 *   WAITING -> SENDING            on_sched (attempt_start)
 *   SENDING -> WAITING            attempt_done (delivery_outcome, backoff 1 s, 2 s, 4 s ... 60 s)
 *   SENDING -> OK | FAILED        attempt_done (delivery_finish)
 *   WAITING -> DROPPED            queue_insert (queue full), webhook_reconfigure (hook gone)
 *
 * libcurl never blocks the loop: its sockets are watched with one uv_poll_t
 * each (CURLMOPT_SOCKETFUNCTION) and its timeout with a uv_timer_t
 * (CURLMOPT_TIMERFUNCTION); both call curl_multi_socket_action. Name
 * resolution is libcurl's asynchronous resolver. Attempts start from a timer
 * callback, never inside webhook_send, so a caller's stack never runs libcurl.
 *
 * Invariants: a delivery is in exactly one of the lists waiting (in creation
 * order, so the head is the oldest) and sending; waiting holds at most
 * queue_max and sending at most inflight_max; a delivery holds a reference to
 * its hook, so a reload never frees a hook in use. The log is a ring indexed
 * by a delivery's serial number: a row belongs to a delivery while their
 * serials match.
 *
 * Cost: webhook_send is one JSON serialisation and one copy of the body per
 * matching hook; the scheduler walks the waiting list (at most queue_max) when
 * an attempt ends or a retry falls due. Memory is bounded by queue_max +
 * inflight_max bodies of at most WEBHOOK_BODY_MAX and the fixed log.
 */
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"
#include "firebreak/webhook.h"

#define WH_ID_LEN 36          /* a UUID in text */
#define WH_ERROR_MAX 192      /* bytes of an error kept in the log */
#define WH_NAME_MAX 64        /* bytes of a hook name kept in the log */
#define WH_INFLIGHT_LIMIT 64  /* the most opts.inflight_max may ask for */
#define WH_QUEUE_LIMIT 100000 /* the most opts.queue_max may ask for */
#define WH_TYPE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_."

enum wh_state { WH_QUEUED, WH_SENDING, WH_RETRYING, WH_OK, WH_FAILED, WH_DROPPED };

static const char *const state_names[] = {"queued", "sending", "retrying",
                                          "ok",     "failed",  "dropped"};

/* Counters of one hook name; kept for the life of the sender, across reloads. */
struct wh_stats {
    char *name;
    uint64_t ok, failed, dropped, attempts;
};

/* One configured hook; shared by the hook table and the deliveries bound for it. */
struct wh_hook {
    unsigned refs;
    char *name;
    char *url;
    char *secret; /* NULL: unsigned */
    char **events;
    size_t nevents;
    bool all; /* "*" among events */
    uint64_t timeout_ms;
    struct wh_stats *stats; /* an entry of the owner's table */
};

/* One row of the delivery log; times are wall milliseconds, 0 for "not yet". */
struct wh_row {
    uint64_t serial; /* 0: empty */
    char id[WH_ID_LEN + 1];
    char hook[WH_NAME_MAX + 1];
    char type[WEBHOOK_TYPE_MAX + 1];
    enum wh_state state;
    unsigned attempts;
    long status;              /* last HTTP status; 0: none */
    char error[WH_ERROR_MAX]; /* last error; empty: none */
    char response[WEBHOOK_LOG_RESPONSE + 1];
    int64_t created_ms, last_ms, next_ms, done_ms;
};

struct wh_delivery {
    struct wh_delivery *prev, *next; /* in waiting or in sending */
    struct webhook *w;
    struct wh_hook *hook; /* a reference */
    uint64_t serial;
    char id[WH_ID_LEN + 1];
    char type[WEBHOOK_TYPE_MAX + 1];
    char *body;
    size_t body_len;
    unsigned attempts; /* started so far */
    uint64_t due_ms;   /* clock time of the next attempt */
    CURL *easy;        /* while sending */
    struct curl_slist *headers;
    char *resp; /* the answer's first WEBHOOK_RESPONSE_MAX bytes, allocated when one comes */
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct wh_list {
    struct wh_delivery *head, *tail;
    size_t n;
};

/* A socket libcurl asked to watch; freed by its close callback. */
struct wh_sock {
    uv_poll_t poll;
    struct webhook *w;
    curl_socket_t fd;
    struct wh_sock *prev, *next;
};

struct webhook {
    uv_loop_t *loop;
    CURLM *multi;
    EVP_MAC *hmac;
    uv_timer_t curl_timer; /* libcurl's timeout */
    uv_timer_t sched;      /* the next due delivery */
    unsigned open_timers;  /* the last timer's close callback frees w */
    bool closing;
    struct webhook_opts opts;
    struct wh_hook **hooks;
    size_t nhooks;
    struct wh_list waiting, sending;
    struct wh_sock *socks;
    struct wh_stats stats[WEBHOOK_STATS_MAX + 1]; /* the last counts names past the table */
    size_t nstats;
    struct wh_row log[WEBHOOK_LOG_MAX];
    uint64_t last_serial;
};

static void schedule_soon(struct webhook *w);

/* ---- small helpers -------------------------------------------------------------------------- */

static uint64_t mono_clock(void *arg)
{
    return fb_mono_ns() / 1000000u;
}

static uint64_t now_ms(const struct webhook *w)
{
    return w->opts.clock(w->opts.clock_arg);
}

/* Copies src[0..n) into dst[cap] for a log or a header, bytes outside printable ASCII as '?'. */
static void copy_printable(char *dst, size_t cap, const char *src, size_t n)
{
    size_t i;

    for (i = 0; i < n && i + 1 < cap; i++)
        dst[i] = ((unsigned char)src[i] < 0x20 || (unsigned char)src[i] > 0x7e) ? '?' : src[i];
    dst[i] = '\0';
}

static bool type_valid(const char *type)
{
    size_t n = type ? strnlen(type, WEBHOOK_TYPE_MAX + 1) : 0;

    return n > 0 && n <= WEBHOOK_TYPE_MAX && strspn(type, WH_TYPE_CHARS) == n;
}

static void list_append(struct wh_list *l, struct wh_delivery *d)
{
    d->next = NULL;
    d->prev = l->tail;
    if (l->tail)
        l->tail->next = d;
    else
        l->head = d;
    l->tail = d;
    l->n++;
}

/* Inserts d before the first delivery created after it. */
static void list_insert_ordered(struct wh_list *l, struct wh_delivery *d)
{
    struct wh_delivery *at = l->tail;

    while (at && at->serial > d->serial)
        at = at->prev;
    if (!at) {
        d->prev = NULL;
        d->next = l->head;
        if (l->head)
            l->head->prev = d;
        else
            l->tail = d;
        l->head = d;
    } else {
        d->prev = at;
        d->next = at->next;
        if (at->next)
            at->next->prev = d;
        else
            l->tail = d;
        at->next = d;
    }
    l->n++;
}

static void list_remove(struct wh_list *l, struct wh_delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        l->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        l->tail = d->prev;
    d->prev = d->next = NULL;
    l->n--;
}

/* ---- hooks and their counters --------------------------------------------------------------- */

/* The counters of name, created on first use; the overflow entry past the table. */
static struct wh_stats *stats_for(struct webhook *w, const char *name)
{
    size_t i;

    for (i = 0; i < w->nstats; i++)
        if (strcmp(w->stats[i].name, name) == 0)
            return &w->stats[i];
    if (w->nstats == WEBHOOK_STATS_MAX)
        return &w->stats[WEBHOOK_STATS_MAX];
    w->stats[w->nstats].name = strdup(name);
    if (!w->stats[w->nstats].name)
        return NULL;
    return &w->stats[w->nstats++];
}

static void hook_unref(struct wh_hook *h)
{
    size_t i;

    if (!h || --h->refs > 0)
        return;
    free(h->name);
    free(h->url);
    free(h->secret);
    for (i = 0; i < h->nevents && h->events; i++)
        free(h->events[i]);
    free(h->events);
    free(h);
}

static void hooks_free(struct wh_hook **hooks, size_t n)
{
    size_t i;

    for (i = 0; i < n && hooks; i++)
        hook_unref(hooks[i]);
    free(hooks);
}

/* 0 when libcurl parses url as an http or https URL with a host. */
static int url_check(const char *name, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -FB_ECONFIG;

    if (!u)
        return -FB_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) && host[0])
        rc = 0;
    else
        fb_error("webhook %s: the URL is not an http:// or https:// URL with a host", name);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int hook_copy_events(struct wh_hook *h, const struct cfg_webhook *c)
{
    size_t i;

    h->all = c->nevents == 0;
    if (c->nevents == 0)
        return 0;
    h->events = calloc(c->nevents, sizeof *h->events);
    if (!h->events)
        return -FB_ENOMEM;
    for (i = 0; i < c->nevents; i++) {
        h->events[i] = strdup(c->events[i]);
        if (!h->events[i])
            return -FB_ENOMEM;
        h->nevents = i + 1;
        h->all |= strcmp(c->events[i], "*") == 0;
    }
    return 0;
}

/* A new hook (one reference, the caller's) copied from c. */
static int hook_new(struct webhook *w, const struct cfg_webhook *c, struct wh_hook **out)
{
    struct wh_hook *h = NULL;
    int rc = -FB_EINVAL;

    if (!c->name || !c->url || !c->name[0])
        goto fail;
    rc = url_check(c->name, c->url);
    if (rc)
        goto fail;
    rc = -FB_ENOMEM;
    h = calloc(1, sizeof *h);
    if (!h)
        goto fail;
    h->refs = 1;
    h->timeout_ms = c->timeout_ms ? c->timeout_ms : 5000;
    h->name = strdup(c->name);
    h->url = strdup(c->url);
    h->secret = c->secret ? strdup(c->secret) : NULL;
    h->stats = stats_for(w, c->name);
    if (!h->name || !h->url || (c->secret && !h->secret) || !h->stats)
        goto fail;
    rc = hook_copy_events(h, c);
    if (rc)
        goto fail;
    *out = h;
    return 0;
fail:
    hook_unref(h);
    return rc;
}

static int hooks_build(struct webhook *w, const struct config *cfg, struct wh_hook ***out,
                       size_t *n)
{
    struct wh_hook **hooks = NULL;
    size_t i, made = 0;
    int rc = 0;

    if (cfg->nwebhooks > WEBHOOK_HOOKS_MAX) {
        fb_error("webhooks: %zu configured, at most %d", cfg->nwebhooks, WEBHOOK_HOOKS_MAX);
        return -FB_ECONFIG;
    }
    if (cfg->nwebhooks) {
        hooks = calloc(cfg->nwebhooks, sizeof *hooks);
        if (!hooks)
            return -FB_ENOMEM;
    }
    for (i = 0; rc == 0 && i < cfg->nwebhooks; i++) {
        rc = hook_new(w, &cfg->webhooks[i], &hooks[i]);
        made += rc == 0;
    }
    if (rc) {
        hooks_free(hooks, made);
        return rc;
    }
    *out = hooks;
    *n = made;
    return 0;
}

static bool hook_wants(const struct wh_hook *h, const char *type)
{
    size_t i;

    for (i = 0; !h->all && i < h->nevents; i++)
        if (strcmp(h->events[i], type) == 0)
            return true;
    return h->all;
}

/* Points d at the configured hook of its name; -FB_ENOENT when a reload removed it. */
static int hook_current(struct webhook *w, struct wh_delivery *d)
{
    size_t i;

    for (i = 0; i < w->nhooks; i++)
        if (w->hooks[i] == d->hook)
            return 0;
    for (i = 0; i < w->nhooks; i++) {
        if (strcmp(w->hooks[i]->name, d->hook->name) == 0) {
            hook_unref(d->hook);
            d->hook = w->hooks[i];
            d->hook->refs++;
            return 0;
        }
    }
    return -FB_ENOENT;
}

/* ---- the delivery log ----------------------------------------------------------------------- */

/* d's row, or NULL once newer deliveries took its place. */
static struct wh_row *row_of(struct webhook *w, const struct wh_delivery *d)
{
    struct wh_row *r = &w->log[d->serial % WEBHOOK_LOG_MAX];

    return r->serial == d->serial ? r : NULL;
}

static void row_start(struct webhook *w, const struct wh_delivery *d)
{
    struct wh_row *r = &w->log[d->serial % WEBHOOK_LOG_MAX];

    memset(r, 0, sizeof *r);
    r->serial = d->serial;
    memcpy(r->id, d->id, sizeof r->id);
    copy_printable(r->hook, sizeof r->hook, d->hook->name, strlen(d->hook->name));
    memcpy(r->type, d->type, sizeof r->type);
    r->state = WH_QUEUED;
    r->created_ms = fb_wall_ms();
}

static json_t *time_json(int64_t ms)
{
    char text[64];

    if (!ms)
        return json_null();
    fb_format_time(ms, text);
    return json_string(text);
}

static json_t *row_json(const struct wh_row *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", r->id,
                     "hook", r->hook, "type", r->type, "state", state_names[r->state], "attempts",
                     (int)r->attempts, "status", r->status ? json_integer(r->status) : json_null(),
                     "error", r->error[0] ? json_string(r->error) : json_null(), "response",
                     r->response[0] ? json_string(r->response) : json_null(), "created",
                     time_json(r->created_ms), "last_attempt", time_json(r->last_ms),
                     "next_attempt", time_json(r->next_ms), "finished", time_json(r->done_ms));
}

json_t *webhook_log_json(const struct webhook *w)
{
    json_t *arr = json_array(), *row;
    uint64_t s;

    for (s = w ? w->last_serial : 0; arr && s > 0 && w->last_serial - s < WEBHOOK_LOG_MAX; s--) {
        const struct wh_row *r = &w->log[s % WEBHOOK_LOG_MAX];

        if (r->serial != s)
            continue;
        row = row_json(r);
        if (!row || json_array_append_new(arr, row)) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:o, s:I, s:I}", "deliveries", arr, "waiting",
                     (json_int_t)(w ? w->waiting.n : 0), "sending",
                     (json_int_t)(w ? w->sending.n : 0));
}

/* ---- deliveries ----------------------------------------------------------------------------- */

/* A random (version 4) UUID; the serial and the clock if the random source fails. */
static void delivery_id(char out[WH_ID_LEN + 1], uint64_t serial)
{
    unsigned char r[16];
    uint64_t t;

    if (RAND_bytes(r, sizeof r) != 1) {
        t = fb_mono_ns();
        memcpy(r, &serial, 8);
        memcpy(r + 8, &t, 8);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, WH_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* A delivery of body (copied) to hook h (a reference is taken), with its log row. */
static struct wh_delivery *delivery_new(struct webhook *w, struct wh_hook *h, const char *type,
                                        const char *body, size_t len)
{
    struct wh_delivery *d = calloc(1, sizeof *d);

    if (!d)
        return NULL;
    d->body = malloc(len + 1);
    if (!d->body) {
        free(d);
        return NULL;
    }
    memcpy(d->body, body, len + 1);
    d->body_len = len;
    d->w = w;
    d->hook = h;
    h->refs++;
    d->serial = ++w->last_serial;
    delivery_id(d->id, d->serial);
    snprintf(d->type, sizeof d->type, "%s", type);
    d->due_ms = now_ms(w);
    row_start(w, d);
    return d;
}

/* Frees d, which is in no list and has no transfer. */
static void delivery_free(struct wh_delivery *d)
{
    hook_unref(d->hook);
    free(d->body);
    free(d->resp);
    free(d);
}

/* The end of d: its row and counters say how it ended; d is freed. */
static void delivery_finish(struct webhook *w, struct wh_delivery *d, enum wh_state how,
                            const char *why)
{
    struct wh_row *r = row_of(w, d);

    if (r) {
        r->state = how;
        r->done_ms = fb_wall_ms();
        r->next_ms = 0;
        if (why)
            snprintf(r->error, sizeof r->error, "%s", why);
    }
    if (how == WH_OK)
        d->hook->stats->ok++;
    else if (how == WH_FAILED)
        d->hook->stats->failed++;
    else
        d->hook->stats->dropped++;
    delivery_free(d);
}

/* Puts d among the waiting in creation order, then drops the oldest past queue_max. */
static void queue_insert(struct webhook *w, struct wh_delivery *d)
{
    char why[64];

    list_insert_ordered(&w->waiting, d);
    while (w->waiting.n > w->opts.queue_max) {
        d = w->waiting.head;
        list_remove(&w->waiting, d);
        snprintf(why, sizeof why, "dropped: %zu deliveries were already waiting",
                 w->opts.queue_max);
        fb_warn("webhook %s: delivery %s dropped, the queue is full", d->hook->name, d->id);
        delivery_finish(w, d, WH_DROPPED, why);
    }
}

/* ---- the body ------------------------------------------------------------------------------- */

/* Length of at most max bytes of s[0..len) that does not split a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* Appends s[0..n), bounded by WEBHOOK_TEXT_MAX overall, with control characters as spaces. */
static int text_add(struct fb_buf *b, const char *s, size_t n)
{
    size_t room = b->len < WEBHOOK_TEXT_MAX ? WEBHOOK_TEXT_MAX - b->len : 0, i, at = b->len;
    int rc;

    n = utf8_cut(s, n, room);
    rc = fb_buf_append(b, s, n);
    for (i = at; rc == 0 && i < b->len; i++)
        if ((unsigned char)b->data[i] < 0x20 || b->data[i] == 0x7f)
            b->data[i] = ' ';
    return rc;
}

/* "firebreak: incident declared (incident INC-1, severity SEV2, service shop)". */
static int text_default(struct fb_buf *b, const char *type, const json_t *payload)
{
    static const char *const keys[] = {"incident", "title",   "severity", "status",
                                       "service",  "release", "reason"};
    const char *sep = " (";
    char num[32];
    size_t i, at;
    int rc = fb_buf_puts(b, "firebreak: ");

    at = b->len;
    if (rc == 0)
        rc = text_add(b, type, strlen(type));
    for (i = at; rc == 0 && i < b->len; i++)
        b->data[i] = b->data[i] == '_' ? ' ' : b->data[i];
    for (i = 0; rc == 0 && payload && i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *v = json_object_get(payload, keys[i]);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;

        if (json_is_integer(v)) {
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            s = num;
        }
        if (!s || !s[0])
            continue;
        rc = text_add(b, sep, strlen(sep));
        if (rc == 0)
            rc = text_add(b, keys[i], strlen(keys[i]));
        if (rc == 0)
            rc = text_add(b, " ", 1);
        if (rc == 0)
            rc = text_add(b, s, strlen(s));
        sep = ", ";
    }
    if (rc == 0 && sep[0] == ',')
        rc = text_add(b, ")", 1);
    return rc;
}

/* Slack's three control characters, escaped as its message formatting asks. */
static int slack_escape(struct fb_buf *out, const char *s, size_t n)
{
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < n; i++) {
        if (s[i] == '&')
            rc = fb_buf_puts(out, "&amp;");
        else if (s[i] == '<')
            rc = fb_buf_puts(out, "&lt;");
        else if (s[i] == '>')
            rc = fb_buf_puts(out, "&gt;");
        else
            rc = fb_buf_append(out, s + i, 1);
    }
    return rc;
}

/* The "text" line: payload's own (as written, one line), else one built from the type. */
static json_t *text_json(const char *type, const json_t *payload)
{
    const json_t *given = json_object_get(payload, "text");
    struct fb_buf raw, esc;
    json_t *j = NULL;
    int rc;

    fb_buf_init(&raw, WEBHOOK_TEXT_MAX + 8);
    fb_buf_init(&esc, 8 * WEBHOOK_TEXT_MAX);
    if (json_is_string(given)) {
        rc = text_add(&raw, json_string_value(given), json_string_length(given));
        if (rc == 0)
            j = json_stringn(raw.data ? raw.data : "", raw.len);
    } else {
        rc = text_default(&raw, type, payload);
        if (rc == 0)
            rc = slack_escape(&esc, raw.data, raw.len);
        if (rc == 0)
            j = json_stringn(esc.data, esc.len);
    }
    fb_buf_release(&raw);
    fb_buf_release(&esc);
    return j;
}

/* The request body, NUL-terminated, in *out (the caller frees it). */
static int body_build(const char *type, json_t *payload, char **out, size_t *len)
{
    char when[64], *buf = NULL;
    json_t *o;
    size_t n;
    int rc = -FB_ENOMEM;

    fb_format_time(fb_wall_ms(), when);
    o = json_pack("{s:o, s:s, s:s, s:o}", "text", text_json(type, payload), "type", type, "time",
                  when, "data", payload ? json_incref(payload) : json_object());
    if (!o)
        goto out;
    buf = malloc(WEBHOOK_BODY_MAX + 1);
    if (!buf)
        goto out;
    n = json_dumpb(o, buf, WEBHOOK_BODY_MAX, JSON_COMPACT);
    rc = n == 0 ? -FB_EINVAL : n > WEBHOOK_BODY_MAX ? -FB_ETOOBIG : 0;
    if (rc)
        goto out;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    json_decref(o);
    return rc;
}

/* Why webhook_send cannot take this event, or NULL when it can. */
static const char *send_refusal(const struct webhook *w, const char *type, const json_t *payload)
{
    if (w->closing)
        return "the sender is shutting down";
    if (!type_valid(type))
        return "bad event type";
    if (payload && !json_is_object(payload))
        return "its data is not a JSON object";
    return NULL;
}

int webhook_send(struct webhook *w, const char *type, json_t *payload)
{
    const char *why;
    struct wh_delivery *d;
    char *body = NULL;
    size_t i, len = 0;
    int rc = 0;

    if (!w)
        goto out;
    why = send_refusal(w, type, payload);
    rc = -FB_EINVAL;
    if (why) {
        fb_warn("webhook: event not sent: %s", why);
        goto out;
    }
    rc = body_build(type, payload, &body, &len);
    if (rc == -FB_ETOOBIG)
        fb_warn("webhook: event %s not sent: its body is over %u bytes", type, WEBHOOK_BODY_MAX);
    for (i = 0; rc == 0 && i < w->nhooks; i++) {
        if (!hook_wants(w->hooks[i], type))
            continue;
        d = delivery_new(w, w->hooks[i], type, body, len);
        if (!d) {
            rc = -FB_ENOMEM;
            break;
        }
        queue_insert(w, d);
    }
    schedule_soon(w);
out:
    free(body);
    json_decref(payload);
    return rc;
}

/* ---- one attempt ---------------------------------------------------------------------------- */

static int sign(struct webhook *w, const char *secret, const char *ts, const char *body, size_t len,
                char hex[65])
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(w->hmac);
    unsigned char md[32];
    size_t mdlen = 0, i;
    int rc = -FB_EIO;

    if (!ctx)
        return -FB_ENOMEM;
    if (EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) &&
        EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) &&
        EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
        EVP_MAC_update(ctx, (const unsigned char *)body, len) &&
        EVP_MAC_final(ctx, md, &mdlen, sizeof md) && mdlen == sizeof md) {
        for (i = 0; i < sizeof md; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        rc = 0;
    }
    EVP_MAC_CTX_free(ctx);
    return rc;
}

/* Appends one header line to *list; false when memory ran out (the list is kept). */
static bool header_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l)
        *list = l;
    return l != NULL;
}

/* The headers of one attempt: the timestamp and the signature are made now. */
static int attempt_headers(struct webhook *w, struct wh_delivery *d)
{
    char line[160], ts[24], hex[65];
    struct curl_slist *h = NULL;
    bool ok;
    int rc = 0;

    snprintf(ts, sizeof ts, "%lld", (long long)(fb_wall_ms() / 1000));
    ok = header_add(&h, "Content-Type: application/json") && header_add(&h, "Expect:");
    snprintf(line, sizeof line, "X-Firebreak-Event: %s", d->type);
    ok = ok && header_add(&h, line);
    snprintf(line, sizeof line, "X-Firebreak-Delivery: %s", d->id);
    ok = ok && header_add(&h, line);
    snprintf(line, sizeof line, "X-Firebreak-Timestamp: %s", ts);
    ok = ok && header_add(&h, line);
    if (ok && d->hook->secret) {
        rc = sign(w, d->hook->secret, ts, d->body, d->body_len, hex);
        snprintf(line, sizeof line, "X-Firebreak-Signature: sha256=%s", hex);
        ok = rc == 0 && header_add(&h, line);
    }
    if (!ok) {
        curl_slist_free_all(h);
        return rc ? rc : -FB_ENOMEM;
    }
    d->headers = h;
    return 0;
}

/* Keeps the first WEBHOOK_RESPONSE_MAX bytes of the answer and discards the rest. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct wh_delivery *d = arg;
    size_t len = size * n, keep = len;

    if (d->resp_len + keep > WEBHOOK_RESPONSE_MAX)
        keep = WEBHOOK_RESPONSE_MAX - d->resp_len;
    if (keep && !d->resp)
        d->resp = malloc(WEBHOOK_RESPONSE_MAX);
    if (keep && d->resp) {
        memcpy(d->resp + d->resp_len, p, keep);
        d->resp_len += keep;
    }
    return len;
}

static int attempt_easy(struct wh_delivery *d)
{
    CURL *e = curl_easy_init();
    bool bad = false;

    if (!e)
        return -FB_ENOMEM;
    bad |= curl_easy_setopt(e, CURLOPT_URL, d->hook->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "firebreak") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)d->hook->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)d->hook->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, d) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, d) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(e);
        return -FB_EIO;
    }
    d->easy = e;
    return 0;
}

/* Ends d's transfer, if any, and takes d out of the sending list. */
static void transfer_release(struct webhook *w, struct wh_delivery *d)
{
    if (d->easy) {
        curl_multi_remove_handle(w->multi, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
    }
    curl_slist_free_all(d->headers);
    d->headers = NULL;
    list_remove(&w->sending, d);
}

static uint64_t backoff_ms(const struct webhook *w, unsigned attempts, uint64_t retry_after_ms)
{
    uint64_t delay = w->opts.backoff_base_ms;
    unsigned i;

    for (i = 1; i < attempts && delay < w->opts.backoff_max_ms; i++)
        delay *= 2;
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    return delay < w->opts.backoff_max_ms ? delay : w->opts.backoff_max_ms;
}

/* After an attempt: retry later, or finish. error is NULL on success. */
static void delivery_outcome(struct webhook *w, struct wh_delivery *d, bool retry, long status,
                             const char *error, uint64_t retry_after_ms)
{
    struct wh_row *r = row_of(w, d);
    uint64_t delay;

    if (r) {
        r->status = status;
        copy_printable(r->error, sizeof r->error, error ? error : "", error ? strlen(error) : 0);
        copy_printable(r->response, sizeof r->response, error && d->resp ? d->resp : "",
                       error && d->resp ? d->resp_len : 0);
    }
    if (!error) {
        delivery_finish(w, d, WH_OK, NULL);
    } else if (!retry || d->attempts >= w->opts.max_attempts) {
        delivery_finish(w, d, WH_FAILED, NULL);
    } else if (hook_current(w, d)) {
        delivery_finish(w, d, WH_DROPPED, "dropped: a reload removed the webhook");
    } else {
        delay = backoff_ms(w, d->attempts, retry_after_ms);
        d->due_ms = now_ms(w) + delay;
        if (r) {
            r->state = WH_RETRYING;
            r->next_ms = fb_wall_ms() + (int64_t)delay;
        }
        queue_insert(w, d);
    }
}

/* libcurl finished d's attempt with res. */
static void attempt_done(struct webhook *w, struct wh_delivery *d, CURLcode res)
{
    char error[WH_ERROR_MAX];
    curl_off_t retry_after = 0;
    long status = 0;
    bool retry = true;

    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(d->easy, CURLINFO_RETRY_AFTER, &retry_after);
    if (res != CURLE_OK) {
        snprintf(error, sizeof error, "%.*s", (int)sizeof error - 1,
                 d->errbuf[0] ? d->errbuf : curl_easy_strerror(res));
        retry = res != CURLE_URL_MALFORMAT && res != CURLE_UNSUPPORTED_PROTOCOL;
        status = 0;
    } else if (status >= 200 && status < 300) {
        error[0] = '\0';
    } else {
        snprintf(error, sizeof error, "HTTP %ld%s", status,
                 status >= 300 && status < 400 ? " (redirects are not followed)" : "");
        retry = status >= 500 || status == 429;
    }
    transfer_release(w, d);
    if (retry_after < 0 || (status != 429 && status != 503))
        retry_after = 0;
    delivery_outcome(w, d, retry, status, error[0] ? error : NULL,
                     retry_after > 3600 ? 3600000u : (uint64_t)retry_after * 1000u);
}

/* Moves d from waiting to sending and hands its request to libcurl. */
static void attempt_start(struct webhook *w, struct wh_delivery *d)
{
    struct wh_row *r = row_of(w, d);
    char error[WH_ERROR_MAX];
    int rc;

    list_remove(&w->waiting, d);
    list_append(&w->sending, d);
    d->attempts++;
    d->hook->stats->attempts++;
    d->errbuf[0] = '\0';
    d->resp_len = 0;
    if (r) {
        r->state = WH_SENDING;
        r->attempts = d->attempts;
        r->last_ms = fb_wall_ms();
        r->next_ms = 0;
    }
    rc = attempt_headers(w, d);
    if (rc == 0)
        rc = attempt_easy(d);
    if (rc == 0 && curl_multi_add_handle(w->multi, d->easy) != CURLM_OK)
        rc = -FB_EIO;
    if (rc == 0)
        return;
    snprintf(error, sizeof error, "could not start the request (%s)",
             rc == -FB_ENOMEM ? "out of memory" : "libcurl refused it");
    transfer_release(w, d);
    delivery_outcome(w, d, true, 0, error, 0);
}

/* ---- the loop: scheduling and libcurl's sockets and timer ----------------------------------- */

static void on_sched(uv_timer_t *t);

/* Sets the timer for the first waiting delivery that falls due after now. Those already due
 * wait for a slot: the end of an attempt schedules again. */
static void sched_arm(struct webhook *w, uint64_t now)
{
    const struct wh_delivery *d;
    uint64_t next = UINT64_MAX;

    for (d = w->waiting.head; d; d = d->next)
        if (d->due_ms > now && d->due_ms < next)
            next = d->due_ms;
    if (next != UINT64_MAX && !w->closing)
        uv_timer_start(&w->sched, on_sched, next - now, 0);
}

/* Starts the due deliveries, oldest first, while slots are free. */
static void on_sched(uv_timer_t *t)
{
    struct webhook *w = t->data;
    struct wh_delivery *due[WH_INFLIGHT_LIMIT], *d;
    uint64_t now = now_ms(w);
    size_t n = 0, i;

    for (d = w->waiting.head; d && w->sending.n + n < w->opts.inflight_max; d = d->next)
        if (d->due_ms <= now)
            due[n++] = d;
    for (i = 0; i < n; i++)
        attempt_start(w, due[i]);
    sched_arm(w, now);
}

static void schedule_soon(struct webhook *w)
{
    if (!w->closing)
        uv_timer_start(&w->sched, on_sched, 0, 0);
}

void webhook_kick(struct webhook *w)
{
    if (w)
        schedule_soon(w);
}

bool webhook_idle(const struct webhook *w)
{
    return !w || (w->waiting.n == 0 && w->sending.n == 0);
}

/* Hands every finished transfer to attempt_done. */
static void collect_done(struct webhook *w)
{
    struct wh_delivery *d;
    bool finished = false;
    CURLMsg *msg;
    CURLcode res;
    char *priv;
    int left;

    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        res = msg->data.result;
        priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        d = (struct wh_delivery *)(void *)priv;
        if (d)
            attempt_done(w, d, res);
        finished = true;
    }
    if (finished)
        schedule_soon(w); /* a slot is free */
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct wh_sock *s = p->data;
    struct webhook *w = s->w;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    collect_done(w);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(struct webhook *w, struct wh_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static struct wh_sock *sock_open(struct webhook *w, curl_socket_t fd)
{
    struct wh_sock *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    if (uv_poll_init_socket(w->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->w = w;
    s->fd = fd;
    s->next = w->socks;
    if (w->socks)
        w->socks->prev = s;
    w->socks = s;
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl waits for. */
static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct webhook *w = arg;
    struct wh_sock *s = sockp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(w, s);
            curl_multi_assign(w->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = sock_open(w, fd);
        if (!s) {
            fb_warn("webhook: cannot watch a socket; the attempt will time out");
            return 0;
        }
        curl_multi_assign(w->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    struct webhook *w = t->data;
    int running;

    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(w);
}

/* CURLMOPT_TIMERFUNCTION: one timer, restarted or stopped as libcurl asks. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct webhook *w = arg;

    if (timeout_ms < 0)
        uv_timer_stop(&w->curl_timer);
    else
        uv_timer_start(&w->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- metrics -------------------------------------------------------------------------------- */

static int render(struct fb_buf *out, void *arg)
{
    static const char *const results[] = {"ok", "failed", "dropped"};
    struct webhook *w = arg;
    struct prom_label l[2];
    size_t i, j,
        n = w->nstats +
            (w->stats[WEBHOOK_STATS_MAX].attempts || w->stats[WEBHOOK_STATS_MAX].dropped);
    int rc;

    rc = prom_family(out, "firebreak_webhook_deliveries_total", "counter",
                     "Webhook deliveries by how they ended: ok, failed (refused or out of "
                     "attempts), dropped (queue full or webhook removed).");
    for (i = 0; rc == 0 && i < n; i++) {
        const struct wh_stats *s = &w->stats[i < w->nstats ? i : WEBHOOK_STATS_MAX];
        const uint64_t v[] = {s->ok, s->failed, s->dropped};

        for (j = 0; rc == 0 && j < 3; j++) {
            l[0] = (struct prom_label){"hook", s->name};
            l[1] = (struct prom_label){"result", results[j]};
            rc = prom_sample_u64(out, "firebreak_webhook_deliveries_total", l, 2, v[j]);
        }
    }
    if (rc == 0)
        rc = prom_family(out, "firebreak_webhook_attempts_total", "counter",
                         "Webhook requests started, retries included.");
    for (i = 0; rc == 0 && i < n; i++) {
        const struct wh_stats *s = &w->stats[i < w->nstats ? i : WEBHOOK_STATS_MAX];

        l[0] = (struct prom_label){"hook", s->name};
        rc = prom_sample_u64(out, "firebreak_webhook_attempts_total", l, 1, s->attempts);
    }
    return rc;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static void opts_apply(struct webhook_opts *o, const struct webhook_opts *given)
{
    if (given)
        *o = *given;
    if (!o->clock)
        o->clock = mono_clock;
    if (!o->backoff_base_ms)
        o->backoff_base_ms = WEBHOOK_BACKOFF_BASE_MS;
    if (!o->backoff_max_ms)
        o->backoff_max_ms = WEBHOOK_BACKOFF_MAX_MS;
    if (o->backoff_max_ms < o->backoff_base_ms)
        o->backoff_max_ms = o->backoff_base_ms;
    if (!o->max_attempts)
        o->max_attempts = WEBHOOK_MAX_ATTEMPTS;
    if (!o->queue_max)
        o->queue_max = WEBHOOK_QUEUE_MAX;
    if (o->queue_max > WH_QUEUE_LIMIT)
        o->queue_max = WH_QUEUE_LIMIT;
    if (!o->inflight_max)
        o->inflight_max = WEBHOOK_INFLIGHT_MAX;
    if (o->inflight_max > WH_INFLIGHT_LIMIT)
        o->inflight_max = WH_INFLIGHT_LIMIT;
}

/* Frees w and what it owns; its handles are closed or were never opened. */
static void destroy(struct webhook *w)
{
    size_t i;

    hooks_free(w->hooks, w->nhooks);
    for (i = 0; i <= WEBHOOK_STATS_MAX; i++)
        free(w->stats[i].name);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    EVP_MAC_free(w->hmac);
    free(w);
    curl_global_cleanup();
}

static void on_timer_closed(uv_handle_t *h)
{
    struct webhook *w = h->data;

    if (--w->open_timers == 0)
        destroy(w);
}

static void multi_setup(struct webhook *w)
{
    uv_timer_init(w->loop, &w->curl_timer);
    uv_timer_init(w->loop, &w->sched);
    w->curl_timer.data = w;
    w->sched.data = w;
    w->open_timers = 2;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
}

int webhook_new_opts(uv_loop_t *loop, const struct config *cfg, struct metrics *m,
                     const struct webhook_opts *opts, struct webhook **out)
{
    struct webhook *w;
    int rc = -FB_ENOMEM;

    if (!out || !loop || !cfg)
        return -FB_EINVAL;
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -FB_EIO;
    w = calloc(1, sizeof *w);
    if (!w) {
        curl_global_cleanup();
        return -FB_ENOMEM;
    }
    w->loop = loop;
    opts_apply(&w->opts, opts);
    w->multi = curl_multi_init();
    w->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    w->stats[WEBHOOK_STATS_MAX].name = strdup("_other");
    if (w->multi && w->hmac && w->stats[WEBHOOK_STATS_MAX].name)
        rc = hooks_build(w, cfg, &w->hooks, &w->nhooks);
    if (rc == 0 && m)
        rc = metrics_add_renderer(m, render, w);
    if (rc) {
        destroy(w);
        return rc;
    }
    multi_setup(w);
    *out = w;
    return 0;
}

int webhook_new(uv_loop_t *loop, const struct config *cfg, struct metrics *m, struct webhook **out)
{
    return webhook_new_opts(loop, cfg, m, NULL, out);
}

int webhook_reconfigure(struct webhook *w, const struct config *cfg)
{
    struct wh_delivery *d, *next;
    struct wh_hook **hooks = NULL, **old;
    size_t n = 0, nold;
    int rc;

    if (!w || !cfg || w->closing)
        return -FB_EINVAL;
    rc = hooks_build(w, cfg, &hooks, &n);
    if (rc)
        return rc;
    old = w->hooks;
    nold = w->nhooks;
    w->hooks = hooks;
    w->nhooks = n;
    for (d = w->waiting.head; d; d = next) {
        next = d->next;
        if (hook_current(w, d) == 0)
            continue;
        list_remove(&w->waiting, d);
        delivery_finish(w, d, WH_DROPPED, "dropped: a reload removed the webhook");
    }
    hooks_free(old, nold);
    schedule_soon(w);
    return 0;
}

void webhook_free(struct webhook *w)
{
    struct wh_delivery *d;

    if (!w)
        return;
    w->closing = true;
    while ((d = w->sending.head)) {
        transfer_release(w, d);
        delivery_free(d);
    }
    while ((d = w->waiting.head)) {
        list_remove(&w->waiting, d);
        delivery_free(d);
    }
    /* libcurl closes its sockets in cleanup: stop watching them first */
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, (curl_socket_callback)NULL);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, (curl_multi_timer_callback)NULL);
    while (w->socks)
        sock_close(w, w->socks);
    curl_multi_cleanup(w->multi);
    w->multi = NULL;
    uv_close((uv_handle_t *)&w->curl_timer, on_timer_closed);
    uv_close((uv_handle_t *)&w->sched, on_timer_closed);
}
