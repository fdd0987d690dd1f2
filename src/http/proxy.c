/*
 * proxy.c: client connections and the request/response exchange.
 *
 * A client connection runs one exchange at a time; requests pipelined behind
 * it wait in the read buffer, so responses go out in request order.
 *
 *            first byte           head parsed          upstream ready
 *   C_HEAD ─────────────► C_HEAD ─────────────► C_ROUTE ──────────────► C_BODY
 *     ▲   (deadline armed)   │ error: 4xx/5xx         │ failed: 502/503/504  │
 *     │                      ▼                        ▼                      │ body sent
 *     │                  C_CLOSING ◄──────────── C_CLOSING                   ▼
 *     │   response done, keep-alive                      101 Switching   C_WAIT
 *     └──────────────────────────────────────────────────────────────────────┤
 *                                                             C_TUNNEL ◄─────┘
 *
 *   transition                       function
 *   C_HEAD -> C_ROUTE                exchange_begin (after client_try_head)
 *   C_ROUTE -> C_BODY/C_WAIT         proxy_upstream_ready
 *   C_BODY -> C_WAIT                 request_written
 *   C_WAIT -> C_HEAD                 exchange_finish
 *   C_WAIT -> C_TUNNEL               tunnel_begin
 *   any -> C_CLOSING                 client_answer (an error answer) or client_close
 *
 * Data moves zero-copy: a read buffer is handed to the writer as iovecs and
 * reading from that side stops until the write completes, so one buffer per
 * side bounds memory whatever the body size. Heads are re-serialised, never
 * forwarded as received: hop-by-hop and Connection-listed fields are
 * dropped, framing fields are regenerated, and X-Forwarded-For,
 * X-Forwarded-Proto, X-Request-Id and traceparent are added.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#include "firebreak/access_log.h"
#include "firebreak/affected.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"
#include "firebreak/h1_parse.h"
#include "firebreak/health.h"
#include "firebreak/journal.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/proxy.h"
#include "firebreak/route.h"
#include "firebreak/route_class.h"
#include "firebreak/split.h"
#include "firebreak/server-t.h"

#define HEAD_BUF_MAX (256u * 1024u)
#define MS 1000000ull

static void client_try_head(struct client *c);
static void client_close(struct client *c);
static void request_pump(struct client *c);
static void response_pump(struct client *c);
static void tunnel_pump(struct client *c, bool from_client);
static void journal_begin(struct client *c, const struct route_service *svc,
                          const struct h1_msg *m);
static void journal_body(struct client *c, const char *p, size_t n);
static void journal_end(struct client *c);

static const char crlf[] = "\r\n";
static const char last_chunk[] = "0\r\n\r\n";

/* ---- body forwarding ---------------------------------------------------- */

static void body_fwd_init(struct body_fwd *f, enum h1_body in, uint64_t len, bool out_chunked)
{
    memset(f, 0, sizeof(*f));
    f->in = in;
    f->remaining = len;
    f->out_chunked = out_chunked;
    f->done = in == H1_BODY_NONE || (in == H1_BODY_LENGTH && len == 0);
    if (in == H1_BODY_CHUNKED)
        h1_chunked_init(&f->dec, 4096, 16384);
}

static void iov_add(uv_buf_t *iov, unsigned *n, const void *p, size_t len)
{
    iov[*n] = uv_buf_init((char *)p, (unsigned)len);
    (*n)++;
}

static void body_emit(struct body_fwd *f, uv_buf_t *iov, unsigned *n, unsigned *nsizes,
                      const char *p, size_t len)
{
    if (f->out_chunked) {
        int k = snprintf(f->sizes[*nsizes], sizeof(f->sizes[0]), "%zx\r\n", len);

        iov_add(iov, n, f->sizes[*nsizes], (size_t)k);
        (*nsizes)++;
        iov_add(iov, n, p, len);
        iov_add(iov, n, crlf, 2);
    } else {
        iov_add(iov, n, p, len);
    }
    f->bytes += len;
}

/*
 * Produces iovecs for the body bytes in src[0, len), at most room entries.
 * eof says the source closed (the end of a close-delimited body). Sets
 * *consumed to the source bytes used. Returns 0 or -FB_EBADREQ on bad framing.
 */
static int body_fwd_fill(struct body_fwd *f, const char *src, size_t len, bool eof,
                         uv_buf_t *iov, unsigned room, unsigned *n, size_t *consumed)
{
    unsigned nsizes = 0;
    size_t used, take;
    const char *data;
    size_t dlen;
    int rc = 0;

    *consumed = 0;
    switch (f->in) {
    case H1_BODY_NONE:
        f->done = true;
        break;
    case H1_BODY_LENGTH:
        take = len < f->remaining ? len : (size_t)f->remaining;
        if (take)
            body_emit(f, iov, n, &nsizes, src, take);
        *consumed = take;
        f->remaining -= take;
        f->done = f->remaining == 0;
        break;
    case H1_BODY_CLOSE:
        if (len)
            body_emit(f, iov, n, &nsizes, src, len);
        *consumed = len;
        f->done = eof;
        break;
    case H1_BODY_CHUNKED:
        while (*consumed < len && !f->dec.done && *n + 4 <= room && nsizes < 16) {
            rc = h1_chunked_feed(&f->dec, src + *consumed, len - *consumed, &used, &data, &dlen);
            if (rc)
                return rc;
            *consumed += used;
            if (dlen)
                body_emit(f, iov, n, &nsizes, data, dlen);
            if (!used && !dlen)
                break;
        }
        f->done = f->dec.done;
        if (!f->done && eof)
            rc = -FB_EBADREQ;
        break;
    }
    if (f->done && f->out_chunked && !f->final_sent && *n < room) {
        iov_add(iov, n, last_chunk, sizeof(last_chunk) - 1);
        f->final_sent = true;
    }
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

static struct worker *cw(struct client *c)
{
    return c->w;
}

static const struct route_table *current_table(struct client *c)
{
    return cw(c)->table;
}

static void client_arm_timer(struct client *c, uint64_t ms);

static void on_client_timer(uv_timer_t *t);

static bool method_idempotent(enum h1_method m)
{
    return m == H1_M_GET || m == H1_M_HEAD || m == H1_M_OPTIONS || m == H1_M_TRACE ||
           m == H1_M_PUT || m == H1_M_DELETE;
}

static void copy_span(char *dst, size_t cap, struct h1_span s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;

    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void hex_id(struct worker *w, char *out, unsigned nhex)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    unsigned i;

    for (i = 0; i < nhex; i++) {
        if (!(i & 15))
            r = worker_random(w);
        out[i] = hex[r & 15];
        r >>= 4;
    }
    out[nhex] = '\0';
}

/* ---- client I/O ------------------------------------------------------------ */

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *c = h->data;
    struct iob *b = c->in;

    if (!b) {
        b = c->in = iob_get(cw(c));
        if (!b) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
    }
    if (b->off == b->len && !c->ex.replayable) {
        b->off = 0;
        b->len = 0;
    }
    if (b->cap - b->len < 4096 && b->off > 0 && !(c->up && c->up->writing)) {
        if (c->state == C_ROUTE || c->state == C_BODY)
            c->ex.replayable = false;
        memmove(b->data, b->data + b->off, b->len - b->off);
        if (c->ex.body_start >= b->off)
            c->ex.body_start -= b->off;
        b->len -= b->off;
        b->off = 0;
    }
    *buf = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len));
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void client_read_start(struct client *c)
{
    if (!c->reading && !c->closing) {
        if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc, on_client_read) == 0)
            c->reading = true;
    }
}

static void client_read_stop(struct client *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    struct worker *w;

    if (--c->open_handles)
        return;
    w = cw(c);
    iob_put(w, c->in);
    fb_buf_release(&c->out);
    fb_buf_release(&c->ex.up_head);
    metrics_client_closed(w->mw);
    free(c);
}

static void client_close(struct client *c)
{
    struct worker *w = cw(c);

    if (c->closing)
        return;
    c->closing = true;
    if (c->ex.jp) /* the client went away mid-write: record what reached the upstream */
        journal_end(c);
    c->state = C_CLOSING;
    if (c->up) {
        struct upstream *up = c->up;

        c->up = NULL;
        upstream_release(up, false);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nclients--;
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_answer_written(uv_write_t *req, int status)
{
    struct client *c = req->data;

    c->writing = false;
    if (c->closing)
        return;
    if (status < 0 || c->close_after_write) {
        client_close(c);
        return;
    }
    fb_buf_reset(&c->out);
    c->state = C_HEAD;
    c->head_started = false;
    client_try_head(c);
}

/* An answer of firebreak's own (an error or a refusal). It closes the
 * connection unless keep is true and the request was read completely. */
static void client_answer(struct client *c, int status, const char *reason, const char *body,
                          bool keep)
{
    uv_buf_t iov;

    c->ex.status = status;
    if (c->ex.start_ns)
        access_log_add(cw(c), c);
    client_read_stop(c);
    uv_timer_stop(&c->timer);
    fb_buf_reset(&c->out);
    fb_buf_printf(&c->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                  "%s%s%s%s\r\n%s\n",
                  status, reason, strlen(body) + 1, keep ? "" : "Connection: close\r\n",
                  c->ex.release[0] ? "X-Firebreak-Release: " : "", c->ex.release,
                  c->ex.release[0] ? "\r\n" : "", body);
    if (c->out.len == 0) {
        client_close(c);
        return;
    }
    c->close_after_write = !keep;
    c->state = C_CLOSING;
    iov = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    c->writing = true;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &iov, 1, on_answer_written)) {
        c->writing = false;
        client_close(c);
    }
}

static const char *status_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void client_error(struct client *c, int status, const char *why)
{
    metrics_count_http_error(cw(c)->mw, status);
    client_answer(c, status, status_reason(status), why, false);
}

/* ---- request head ---------------------------------------------------------- */

static void exchange_reset(struct client *c)
{
    struct fb_buf keep = c->ex.up_head;

    free(c->ex.jp);
    memset(&c->ex, 0, sizeof(c->ex));
    c->ex.up_head = keep;
    fb_buf_reset(&c->ex.up_head);
}

/* Splits the target into the host it names (absolute-form) and the path. */
static int target_split(struct h1_msg *m, struct h1_span *host, struct h1_span *path)
{
    const char *p = m->target.p, *end = p + m->target.len, *slash;

    if (p[0] == '/') {
        *path = m->target;
        return 0;
    }
    if (m->target.len == 1 && p[0] == '*' && m->method == H1_M_OPTIONS) {
        *path = m->target;
        return 0;
    }
    if (m->target.len > 7 && !strncasecmp(p, "http://", 7)) {
        p += 7;
        for (slash = p; slash < end && *slash != '/' && *slash != '?'; slash++)
            ;
        if (slash == end)
            slash = NULL;
        host->p = p;
        host->len = (size_t)((slash ? slash : end) - p);
        path->p = slash ? slash : "/";
        path->len = slash ? (size_t)(end - slash) : 1;
        return host->len ? 0 : -FB_EBADREQ;
    }
    return -FB_EBADREQ;
}

static struct h1_span host_name(struct h1_span h)
{
    size_t i;

    if (h.len && h.p[0] == '[') {
        for (i = 0; i < h.len && h.p[i] != ']'; i++)
            ;
        h.len = i < h.len ? i + 1 : h.len;
        return h;
    }
    for (i = 0; i < h.len && h.p[i] != ':'; i++)
        ;
    h.len = i;
    return h;
}

/*
 * An admitted endpoint of r, round-robin, avoiding avoid_id when another is
 * admitted; NULL when health admits none. Sets c->ex.probe when the request
 * is the probe that decides an ejected endpoint's readmission.
 */
static const struct route_endpoint *pick_endpoint(struct client *c, const struct route_release *r,
                                                  unsigned avoid_id)
{
    struct worker *w = cw(c);
    struct health *h = w->srv->health;
    uint64_t now = fb_mono_ns();
    const struct route_endpoint *second = NULL;
    unsigned i, start = w->rr++;
    bool probe;

    c->ex.probe = false;
    for (i = 0; i < r->nendpoints; i++) {
        const struct route_endpoint *e = &r->endpoints[(start + i) % r->nendpoints];

        if (e->id == avoid_id && r->nendpoints > 1) {
            second = e;
            continue;
        }
        if (health_admit(h, e->id, now, &probe)) {
            c->ex.probe = probe;
            return e;
        }
    }
    if (second && health_admit(h, second->id, now, &probe)) {
        c->ex.probe = probe;
        return second;
    }
    return NULL;
}

/* Stable with every endpoint ejected still serves (panic mode): round-robin
 * over all of them, counted and logged. */
static const struct route_endpoint *panic_endpoint(struct client *c, const struct route_release *r)
{
    struct worker *w = cw(c);
    uint64_t now = fb_mono_ns();

    if (r->metrics)
        metrics_count_panic(r->metrics, w->id);
    if (now - w->panic_logged_ns > 10000000000ull) {
        w->panic_logged_ns = now;
        fb_warn("panic: every endpoint of %s/%s is ejected; routing to them anyway",
                c->ex.service, r->name);
    }
    c->ex.probe = false;
    return &r->endpoints[w->rr++ % r->nendpoints];
}

static void put_field(struct fb_buf *b, const struct h1_field *f)
{
    fb_buf_append(b, f->name.p, f->name.len);
    fb_buf_append(b, ": ", 2);
    fb_buf_append(b, f->value.p, f->value.len);
    fb_buf_append(b, crlf, 2);
}

/*
 * Writes the request head sent upstream into c->ex.up_head. target is the
 * origin-form target to send; authority, when not empty, came from an
 * absolute-form target and replaces the Host field (RFC 9112 3.2.2).
 */
static int serialize_request(struct client *c, const struct h1_msg *m,
                             const struct route_endpoint *ep, struct h1_span target,
                             struct h1_span authority)
{
    struct fb_buf *b = &c->ex.up_head;
    const struct h1_field *upgrade = NULL;
    bool has_rid = false, has_trace = false, xff = false;
    char trace[64];
    unsigned i;

    fb_buf_reset(b);
    fb_buf_append(b, m->method_name.p, m->method_name.len);
    fb_buf_append(b, " ", 1);
    if (target.p[0] == '?')
        fb_buf_append(b, "/", 1);
    fb_buf_append(b, target.p, target.len);
    fb_buf_puts(b, " HTTP/1.1\r\n");
    if (authority.len) {
        fb_buf_puts(b, "Host: ");
        fb_buf_append(b, authority.p, authority.len);
        fb_buf_append(b, crlf, 2);
    } else if (!m->has_host) {
        fb_buf_printf(b, "Host: %s\r\n", ep->text);
    }
    for (i = 0; i < m->nfields; i++) {
        const struct h1_field *f = &m->fields[i];

        switch (f->known) {
        case H1_H_UPGRADE:
            upgrade = f;
            continue;
        case H1_H_HOST:
            if (authority.len)
                continue;
            break;
        case H1_H_CONTENT_LENGTH:
        case H1_H_TRANSFER_ENCODING:
        case H1_H_EXPECT:
        case H1_H_X_FORWARDED_PROTO:
            continue;
        case H1_H_X_FORWARDED_FOR:
            fb_buf_puts(b, xff ? "" : "X-Forwarded-For: ");
            if (xff)
                b->len -= 2; /* reopen the previous line to extend the list */
            if (xff)
                fb_buf_puts(b, ", ");
            fb_buf_append(b, f->value.p, f->value.len);
            fb_buf_append(b, crlf, 2);
            xff = true;
            continue;
        case H1_H_X_REQUEST_ID:
            has_rid = true;
            break;
        case H1_H_TRACEPARENT:
            has_trace = true;
            break;
        default:
            break;
        }
        if (!f->hop)
            put_field(b, f);
    }
    if (xff) {
        b->len -= 2;
        fb_buf_printf(b, ", %s\r\n", c->ip);
    } else {
        fb_buf_printf(b, "X-Forwarded-For: %s\r\n", c->ip);
    }
    fb_buf_puts(b, "X-Forwarded-Proto: http\r\n");
    if (!has_rid)
        fb_buf_printf(b, "X-Request-Id: %s\r\n", c->ex.request_id);
    if (!has_trace) {
        memcpy(trace, "00-", 3);
        hex_id(cw(c), trace + 3, 32);
        trace[35] = '-';
        hex_id(cw(c), trace + 36, 16);
        fb_buf_printf(b, "traceparent: %s-01\r\n", trace);
    }
    if (c->ex.upgrade && upgrade) {
        fb_buf_puts(b, "Connection: upgrade\r\nUpgrade: ");
        fb_buf_append(b, upgrade->value.p, upgrade->value.len);
        fb_buf_append(b, crlf, 2);
    }
    if (m->body == H1_BODY_LENGTH)
        fb_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
    else if (m->body == H1_BODY_CHUNKED)
        fb_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    return fb_buf_append(b, crlf, 2);
}

static void exchange_note_request(struct client *c, const struct h1_msg *m)
{
    struct exchange *ex = &c->ex;
    unsigned i;

    ex->method = m->method;
    copy_span(ex->method_name, sizeof(ex->method_name), m->method_name);
    copy_span(ex->path, sizeof(ex->path), m->target);
    ex->minor = m->minor;
    ex->keep_alive = m->keep_alive;
    ex->expect_continue = m->expect_continue;
    ex->upgrade = m->upgrade && m->body == H1_BODY_NONE;
    ex->idempotent = method_idempotent(m->method);
    ex->start_ns = fb_mono_ns();
    ex->request_id[0] = '\0';
    for (i = 0; i < m->nfields; i++) {
        if (m->fields[i].known == H1_H_X_REQUEST_ID) {
            copy_span(ex->request_id, sizeof(ex->request_id), m->fields[i].value);
            break;
        }
    }
    if (!ex->request_id[0])
        hex_id(cw(c), ex->request_id, 32);
}

static void exchange_connect(struct client *c, unsigned avoid_id);

/* The sticky key of this request: cookie, header or client address. A
 * missing cookie is issued (set_cookie) with a new random value. */
static void sticky_key(struct client *c, const struct route_service *svc, const struct h1_msg *m,
                       struct h1_span *key)
{
    if (svc->sticky == CFG_STICKY_COOKIE) {
        if (split_cookie(m->fields, m->nfields, svc->sticky_name, key) &&
            split_key_valid(key->p, key->len))
            return;
        hex_id(cw(c), c->ex.cookie, 32);
        c->ex.set_cookie = true;
        key->p = c->ex.cookie;
        key->len = 32;
        return;
    }
    if (svc->sticky == CFG_STICKY_HEADER &&
        split_header(m->fields, m->nfields, svc->sticky_name, key) &&
        key->len <= SPLIT_KEY_MAX)
        return;
    key->p = c->ip;
    key->len = strlen(c->ip);
}

/* Who this request is for, as a 64-bit hash: the identity when the service
 * names one, else the sticky key (counting "users affected" by a release). */
static uint64_t user_key(struct client *c, const struct route_service *svc,
                         const struct h1_msg *m, const struct h1_span *sticky)
{
    struct h1_span v = {c->ip, strlen(c->ip)};
    bool found = false;

    if (svc->identity == CFG_IDENTITY_HEADER)
        found = split_header(m->fields, m->nfields, svc->identity_name, &v);
    else if (svc->identity == CFG_IDENTITY_COOKIE)
        found = split_cookie(m->fields, m->nfields, svc->identity_name, &v);
    else if (svc->identity == CFG_IDENTITY_JWT_SUB)
        found = split_header(m->fields, m->nfields, "authorization", &v);
    if (!found && sticky) {
        v = *sticky; /* already found (or issued) by choose_release */
    } else if (!found && svc->sticky == CFG_STICKY_COOKIE) {
        if (!split_cookie(m->fields, m->nfields, svc->sticky_name, &v) && c->ex.set_cookie) {
            v.p = c->ex.cookie;
            v.len = strlen(c->ex.cookie);
        }
    } else if (!found && svc->sticky == CFG_STICKY_HEADER) {
        split_header(m->fields, m->nfields, svc->sticky_name, &v);
    }
    return split_hash(svc->name, v.p, v.len);
}

/* The release index for this request: a pin where the service allows it,
 * else the user's bucket. When it looked up the sticky key, *key holds it and
 * *have_key is set, so the key is found once per request. */
static unsigned choose_release(struct client *c, const struct route_service *svc,
                               const struct h1_msg *m, struct h1_span *key, bool *have_key)
{
    struct h1_span pin;
    unsigned i;

    *have_key = false;
    if (svc->allow_pin && split_header(m->fields, m->nfields, "x-firebreak-release", &pin)) {
        for (i = 0; i < svc->nreleases; i++) {
            if (h1_span_eq(pin, svc->releases[i].name) &&
                strlen(svc->releases[i].name) == pin.len)
                return i;
        }
    }
    if (svc->nreleases == 1)
        return 0;
    sticky_key(c, svc, m, key);
    *have_key = true;
    return split_release(svc, split_bucket(svc->name, key->p, key->len));
}

static void exchange_set_release(struct client *c, const struct route_service *svc,
                                 unsigned index)
{
    const struct route_release *rel = &svc->releases[index];

    c->ex.rel_index = index;
    memcpy(c->ex.release, rel->name, sizeof(c->ex.release));
    c->ex.rm = rel->metrics;
}

static bool method_writes(enum h1_method m)
{
    return m == H1_M_POST || m == H1_M_PUT || m == H1_M_PATCH || m == H1_M_DELETE;
}

static void exchange_begin(struct client *c, struct h1_msg *m)
{
    const struct route_table *t;
    const struct route_service *svc;
    const struct route_endpoint *ep;
    struct h1_span host = {"", 0}, path, authority, key;
    struct iob *in = c->in;
    bool have_key;
    int n;

    /* Route with the newest table: a rollback published before this request
     * was read must decide it, whatever this loop iteration started with. */
    cw(c)->table = rcu_dereference(cw(c)->srv->table);
    t = current_table(c);
    exchange_note_request(c, m);
    in->off += m->head_len;
    c->ex.body_start = in->off;
    if (m->method == H1_M_CONNECT) {
        client_answer(c, 405, "Method Not Allowed", "CONNECT is not supported", false);
        return;
    }
    if (target_split(m, &host, &path)) {
        client_error(c, 400, "bad request target");
        return;
    }
    authority = host;
    if (!host.len && m->has_host)
        host = m->host;
    host = host_name(host);
    svc = route_match(t, host.p, host.len, path.p, path.len);
    if (!svc) {
        client_answer(c, 404, "Not Found", "no service matches this request",
                      m->body == H1_BODY_NONE && c->ex.keep_alive);
        return;
    }
    c->ex.svc_index = (unsigned)(svc - t->services);
    memcpy(c->ex.service, svc->name, sizeof(c->ex.service));
    exchange_set_release(c, svc, choose_release(c, svc, m, &key, &have_key));
    c->ex.user_key = user_key(c, svc, m, have_key ? &key : NULL);
    ep = pick_endpoint(c, &svc->releases[c->ex.rel_index], (unsigned)-1);
    if (!ep && c->ex.rel_index != svc->stable) {
        /* Every endpoint of the new release is ejected: stable serves its users. */
        exchange_set_release(c, svc, svc->stable);
        ep = pick_endpoint(c, &svc->releases[svc->stable], (unsigned)-1);
    }
    if (!ep)
        ep = panic_endpoint(c, &svc->releases[c->ex.rel_index]);
    n = route_class(m->method_name.p, m->method_name.len, m->target.p, m->target.len,
                    c->ex.route, sizeof(c->ex.route));
    c->ex.route_key = n > 0 ? route_class_hash(c->ex.route, (size_t)n) : 0;
    c->ex.writes = method_writes(m->method);
    journal_begin(c, svc, m);
    if (serialize_request(c, m, ep, path, authority)) {
        client_error(c, 431, "request head too large to forward");
        return;
    }
    c->ex.req_len = m->content_length;
    c->ex.req_in = m->body;
    body_fwd_init(&c->ex.req, m->body, m->content_length, m->body == H1_BODY_CHUNKED);
    c->ex.replayable = m->body == H1_BODY_NONE ||
                       (m->body == H1_BODY_LENGTH && m->content_length <= in->len - in->off);
    c->state = C_ROUTE;
    uv_timer_stop(&c->timer);
    memcpy(c->ex.endpoint, ep->text, sizeof(c->ex.endpoint));
    c->ex.ep_id = ep->id;
    c->ex.attempts = 1;
    upstream_acquire(cw(c), c, ep);
}

/* Picks another endpoint of the same release from the current table. */
static void exchange_connect(struct client *c, unsigned avoid_id)
{
    const struct route_table *t = current_table(c);
    const struct route_service *svc;
    const struct route_release *rel;
    const struct route_endpoint *ep;

    if (c->ex.svc_index >= t->nservices ||
        strcmp(t->services[c->ex.svc_index].name, c->ex.service)) {
        client_error(c, 502, "the service went away during the request");
        return;
    }
    svc = &t->services[c->ex.svc_index];
    rel = c->ex.rel_index < svc->nreleases ? &svc->releases[c->ex.rel_index] : NULL;
    if (!rel || strcmp(rel->name, c->ex.release))
        exchange_set_release(c, svc, svc->stable);
    rel = &svc->releases[c->ex.rel_index];
    ep = pick_endpoint(c, rel, avoid_id);
    if (!ep && c->ex.rel_index != svc->stable) {
        /* The retry found the new release ejected: stable serves it. */
        exchange_set_release(c, svc, svc->stable);
        rel = &svc->releases[svc->stable];
        ep = pick_endpoint(c, rel, (unsigned)-1);
    }
    if (!ep)
        ep = panic_endpoint(c, rel);
    memcpy(c->ex.endpoint, ep->text, sizeof(c->ex.endpoint));
    c->ex.ep_id = ep->id;
    upstream_acquire(cw(c), c, ep);
}

static void client_try_head(struct client *c)
{
    struct h1_field fields[256];
    const struct route_table *t = current_table(c);
    struct h1_limits lim = t->h1;
    struct h1_msg m;
    struct iob *in = c->in;
    int rc;

    if (c->closing)
        return;
    if (!in || in->off == in->len) {
        /* Idle between requests: hold no buffer, wait at most keepalive_idle. */
        if (in) {
            iob_put(cw(c), in);
            c->in = NULL;
        }
        if (cw(c)->draining) {
            client_close(c);
            return;
        }
        c->head_started = false;
        client_arm_timer(c, t->timeouts.keepalive_idle);
        client_read_start(c);
        return;
    }
    if (!c->head_started) {
        c->head_started = true;
        client_arm_timer(c, t->timeouts.request_header);
    }
    if (lim.max_fields > 256)
        lim.max_fields = 256;
    m.fields = fields;
    rc = h1_parse_request(in->data + in->off, in->len - in->off, &lim, &m);
    if (rc == 0) {
        client_read_start(c);
        return;
    }
    if (rc < 0) {
        fb_debug("client %s: %s", c->ip, m.why ? m.why : fb_err_message(rc));
        client_error(c, fb_err_status(rc), m.why ? m.why : fb_err_message(rc));
        return;
    }
    exchange_begin(c, &m);
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        if ((c->state == C_ROUTE || c->state == C_WAIT) && c->ex.req.done) {
            /* Half-closed after a complete request: answer it, then close. */
            c->ex.keep_alive = false;
            client_read_stop(c);
            return;
        }
        client_close(c);
        return;
    }
    c->in->len += (size_t)nread;
    switch (c->state) {
    case C_HEAD:
        client_try_head(c);
        break;
    case C_BODY:
        request_pump(c);
        break;
    case C_TUNNEL:
        tunnel_pump(c, true);
        break;
    default:
        /* Pipelined bytes wait in the buffer until this exchange ends; stop
         * reading only when the buffer is running out of room. */
        if (c->in->cap - c->in->len < 4096)
            client_read_stop(c);
        break;
    }
}

/* ---- timers ------------------------------------------------------------------- */

static void client_arm_timer(struct client *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_client_timer, ms, 0);
}

static void on_client_timer(uv_timer_t *t)
{
    struct client *c = t->data;

    switch (c->state) {
    case C_HEAD:
        if (c->head_started)
            client_error(c, 408, "request head not received in time");
        else
            client_close(c);
        break;
    case C_BODY:
        if (c->ex.resp_started) {
            client_close(c);
        } else {
            metrics_count_http_error(cw(c)->mw, 408);
            client_answer(c, 408, "Request Timeout", "request body stalled", false);
        }
        break;
    default:
        break;
    }
}

/* ---- upstream callbacks ----------------------------------------------------- */

static void on_continue_written(uv_write_t *req, int status)
{
    struct client *c = req->data;

    c->writing = false;
    if (c->closing)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->state == C_WAIT && c->up && !c->ex.resp_done)
        response_pump(c);
}

static void send_continue(struct client *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t iov = uv_buf_init((char *)cont, sizeof(cont) - 1);

    c->ex.continue_sent = true;
    c->wr.data = c;
    c->writing = true;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &iov, 1, on_continue_written)) {
        c->writing = false;
        client_close(c);
    }
}

void proxy_upstream_ready(struct client *c, struct upstream *up)
{
    const struct route_table *t = current_table(c);

    c->up = up;
    up->c = c;
    c->ex.head_sent = false;
    c->state = c->ex.req.done ? C_WAIT : C_BODY;
    if (c->ex.expect_continue && !c->ex.req.done && !c->ex.continue_sent)
        send_continue(c);
    upstream_read_start(up);
    upstream_arm_timer(up, t->timeouts.upstream_response);
    request_pump(c);
}

/* ---- journal ------------------------------------------------------------------ */

static void journal_identity(struct journal_pending *jp, const struct route_service *svc,
                             const struct h1_msg *m)
{
    struct h1_span v;

    jp->ident_kind = JOURNAL_IDENT_NONE;
    switch (svc->identity) {
    case CFG_IDENTITY_HEADER:
        if (!split_header(m->fields, m->nfields, svc->identity_name, &v))
            return;
        break;
    case CFG_IDENTITY_COOKIE:
        if (!split_cookie(m->fields, m->nfields, svc->identity_name, &v))
            return;
        break;
    case CFG_IDENTITY_JWT_SUB:
        if (!split_header(m->fields, m->nfields, "authorization", &v) || v.len < 8 ||
            strncasecmp(v.p, "Bearer ", 7))
            return;
        v.p += 7;
        v.len -= 7;
        break;
    default:
        return;
    }
    jp->ident_kind = svc->identity == CFG_IDENTITY_JWT_SUB ? JOURNAL_IDENT_JWT_SUB
                                                           : JOURNAL_IDENT_VALUE;
    copy_span(jp->ident, sizeof(jp->ident), v);
}

/* Starts the journal record of a write this service journals. */
static void journal_begin(struct client *c, const struct route_service *svc,
                          const struct h1_msg *m)
{
    struct journal *j = cw(c)->srv->journal;
    struct journal_pending *jp;

    if (!j || m->method > 31 || !(svc->journal_methods & (1u << m->method)))
        return;
    jp = malloc(sizeof(*jp) + journal_body_cap(j));
    if (!jp)
        return;
    jp->time_ms = fb_wall_ms();
    jp->body_len = 0;
    jp->body_cap = svc->journal_body < journal_body_cap(j) ? svc->journal_body
                                                           : journal_body_cap(j);
    jp->body_truncated = false;
    jp->location[0] = '\0';
    copy_span(jp->path, sizeof(jp->path), m->target);
    journal_identity(jp, svc, m);
    c->ex.jp = jp;
}

/* Keeps the first journal_body_cap bytes of a Content-Length body. */
static void journal_body(struct client *c, const char *p, size_t n)
{
    struct journal_pending *jp = c->ex.jp;
    uint32_t cap;
    size_t take;

    if (!jp || c->ex.req_in != H1_BODY_LENGTH)
        return;
    cap = jp->body_cap;
    take = n < cap - jp->body_len ? n : cap - jp->body_len;
    memcpy(jp->body + jp->body_len, p, take);
    jp->body_len += (uint32_t)take;
    jp->body_truncated |= take < n;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Hands the write to the journal's ring (or counts a drop) and forgets it. */
static void journal_end(struct client *c)
{
    struct journal_pending *jp = c->ex.jp;
    struct exchange *ex = &c->ex;
    struct journal_record *r;
    uint64_t now = fb_mono_ns();

    if (!jp)
        return;
    ex->jp = NULL;
    r = journal_slot(cw(c)->srv->journal, cw(c)->id);
    if (r) {
        r->time_ms = jp->time_ms;
        r->duration_us = (uint32_t)((now - ex->start_ns) / 1000);
        r->upstream_us = ex->upstream_ns ? (uint32_t)((ex->upstream_ns - ex->start_ns) / 1000) : 0;
        r->status = ex->status;
        copy_str(r->request_id, sizeof(r->request_id), ex->request_id);
        copy_str(r->service, sizeof(r->service), ex->service);
        copy_str(r->release, sizeof(r->release), ex->release);
        copy_str(r->method, sizeof(r->method), ex->method_name);
        copy_str(r->path, sizeof(r->path), jp->path);
        copy_str(r->route, sizeof(r->route), ex->route);
        r->ident_kind = (enum journal_ident_kind)jp->ident_kind;
        copy_str(r->ident_src, sizeof(r->ident_src), jp->ident);
        copy_str(r->location, sizeof(r->location), jp->location);
        r->body_len = jp->body_len;
        r->body_truncated = jp->body_truncated;
        memcpy(r->body, jp->body, jp->body_len);
        journal_commit(cw(c)->srv->journal, cw(c)->id);
    }
    free(jp);
}

static void exchange_account(struct client *c)
{
    struct exchange *ex = &c->ex;
    unsigned wid = cw(c)->id;
    uint64_t dur = fb_mono_ns() - ex->start_ns;

    if (ex->rm) {
        if (ex->status >= 500)
            affected_push(cw(c)->srv->affected, wid, ex->rm, ex->user_key, fb_wall_ms());
        metrics_count_response(ex->rm, wid, ex->status, dur);
        metrics_count_bytes(ex->rm, wid, ex->bytes_in, ex->bytes_out);
        if (ex->writes)
            metrics_count_write(ex->rm, wid);
        if (ex->route_key)
            metrics_count_route(ex->rm, wid, ex->route_key, ex->route, ex->status, dur,
                                ex->writes, ex->upstream_error);
    }
    journal_end(c);
    access_log_add(cw(c), c);
}

/* Tells outlier ejection how the endpoint did. */
static void exchange_health(struct client *c, bool ok)
{
    if (c->ex.health_reported)
        return;
    c->ex.health_reported = true;
    health_report(cw(c)->srv->health, c->ex.ep_id, ok, c->ex.probe, fb_mono_ns());
}

static void exchange_retry_reset(struct client *c)
{
    struct exchange *ex = &c->ex;

    c->in->off = ex->body_start;
    if (ex->jp) {
        ex->jp->body_len = 0;
        ex->jp->body_truncated = false;
    }
    body_fwd_init(&ex->req, ex->req_in, ex->req_len, ex->req_in == H1_BODY_CHUNKED);
    ex->head_sent = false;
    c->state = C_ROUTE;
}

void proxy_upstream_failed(struct client *c, int err, enum metrics_upstream_kind kind)
{
    struct exchange *ex = &c->ex;
    unsigned failed_id = ex->ep_id;
    bool stale = ex->pooled && err == -FB_ECONNECT;
    int status = err == -FB_ETIMEOUT ? 504 : err == -FB_EAGAIN ? 503 : 502;

    if (c->up) {
        struct upstream *up = c->up;

        c->up = NULL;
        upstream_release(up, false);
    }
    if (!stale) {
        if (ex->rm)
            metrics_count_upstream_error(ex->rm, cw(c)->id, kind);
        ex->upstream_error = true;
        if (err != -FB_EAGAIN)
            exchange_health(c, false);
        ex->health_reported = false;
    }
    if (!ex->resp_started && ex->replayable && err == -FB_ECONNECT &&
        (stale || (ex->idempotent && ex->attempts < 2))) {
        if (!stale)
            ex->attempts++;
        ex->pooled = false;
        exchange_retry_reset(c);
        exchange_connect(c, stale ? (unsigned)-1 : failed_id);
        return;
    }
    if (ex->resp_started) {
        client_close(c);
        return;
    }
    ex->status = status;
    exchange_account(c);
    ex->start_ns = 0;
    client_answer(c, status, status_reason(status),
                  status == 504   ? "upstream did not answer in time"
                  : status == 503 ? "upstream connection limit reached"
                                  : "upstream connection failed",
                  false);
}

/* ---- request body ---------------------------------------------------------- */

static void on_request_written(uv_write_t *req, int status)
{
    struct upstream *up = req->data;
    struct client *c = up->c;

    up->writing = false;
    if (!c || up->closing)
        return;
    if (status < 0) {
        proxy_upstream_failed(c, -FB_ECONNECT, METRICS_UP_RESET);
        return;
    }
    c->ex.head_sent = true;
    c->ex.bytes_in += c->ex.pending;
    journal_body(c, c->in->data + c->in->off, c->ex.pending);
    c->in->off += c->ex.pending;
    c->ex.pending = 0;
    if (c->ex.req.done) {
        c->ex.req_done = true;
        if (c->state == C_BODY)
            c->state = C_WAIT;
        uv_timer_stop(&c->timer);
        /* The response deadline counts from the end of the request. */
        if (!up->head_done)
            upstream_arm_timer(up, current_table(c)->timeouts.upstream_response);
        return;
    }
    request_pump(c);
}

static void request_pump(struct client *c)
{
    struct upstream *up = c->up;
    struct iob *in = c->in;
    uv_buf_t iov[PROXY_MAX_IOV];
    unsigned n = 0;
    size_t consumed = 0;
    int rc;

    if (!up || up->writing || c->closing)
        return;
    if (!c->ex.head_sent)
        iov_add(iov, &n, c->ex.up_head.data, c->ex.up_head.len);
    if (in && !c->ex.req.done) {
        rc = body_fwd_fill(&c->ex.req, in->data + in->off, in->len - in->off, false, iov,
                           PROXY_MAX_IOV, &n, &consumed);
        if (rc) {
            client_error(c, 400, c->ex.req.dec.why ? c->ex.req.dec.why : "bad chunked body");
            return;
        }
    } else if (!c->ex.req.done) {
        c->ex.req.done = c->ex.req.in == H1_BODY_NONE;
    }
    if (n == 0) {
        /* Only framing was left (chunk-size lines, CRLFs): drop it and wait
         * for more of the body. */
        if (consumed)
            in->off += consumed;
        client_read_start(c);
        client_arm_timer(c, current_table(c)->timeouts.body_idle);
        return;
    }
    if (consumed)
        client_read_stop(c);
    c->ex.pending = consumed;
    /* While the body streams, the deadline bounds each write's progress. */
    if (!up->head_done)
        upstream_arm_timer(up, current_table(c)->timeouts.upstream_response);
    if (upstream_write(up, iov, n, on_request_written))
        proxy_upstream_failed(c, -FB_ECONNECT, METRICS_UP_RESET);
}

/* ---- response ----------------------------------------------------------------- */

/* Writes the response head for the client into c->out. */
static void serialize_response(struct client *c, const struct h1_msg *m)
{
    struct fb_buf *b = &c->out;
    struct exchange *ex = &c->ex;
    unsigned i;
    bool keep_cl = m->body == H1_BODY_NONE;
    const struct h1_field *upgrade = NULL;

    fb_buf_reset(b);
    fb_buf_printf(b, "HTTP/1.1 %d ", m->status);
    fb_buf_append(b, m->reason.p, m->reason.len);
    fb_buf_append(b, crlf, 2);
    for (i = 0; i < m->nfields; i++) {
        const struct h1_field *f = &m->fields[i];

        if (f->known == H1_H_UPGRADE)
            upgrade = f;
        if (f->known == H1_H_LOCATION && ex->jp)
            copy_span(ex->jp->location, sizeof(ex->jp->location), f->value);
        if (f->hop || f->known == H1_H_TRANSFER_ENCODING ||
            f->known == H1_H_X_FIREBREAK_RELEASE)
            continue;
        if (f->known == H1_H_CONTENT_LENGTH && !keep_cl)
            continue;
        put_field(b, f);
    }
    if (m->status == 101) {
        fb_buf_puts(b, "Connection: upgrade\r\n");
        if (upgrade)
            put_field(b, upgrade);
    } else if (m->body == H1_BODY_LENGTH) {
        fb_buf_printf(b, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
    } else if (ex->resp.out_chunked) {
        fb_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    }
    fb_buf_printf(b, "X-Firebreak-Release: %s\r\n", ex->release);
    if (ex->set_cookie)
        fb_buf_printf(b, "Set-Cookie: %s=%s; Max-Age=31536000; Path=/; HttpOnly; SameSite=Lax\r\n",
                      current_table(c)->services[ex->svc_index].sticky_name, ex->cookie);
    if (m->status != 101) {
        if (!ex->keep_alive)
            fb_buf_puts(b, "Connection: close\r\n");
        else if (ex->minor == 0)
            fb_buf_puts(b, "Connection: keep-alive\r\n");
    }
    fb_buf_append(b, crlf, 2);
}

static void on_response_written(uv_write_t *req, int status);

static void exchange_finish(struct client *c)
{
    struct upstream *up = c->up;
    struct exchange *ex = &c->ex;
    bool reuse;

    ex->resp_done = true;
    exchange_account(c);
    reuse = up && ex->resp_keep_alive && ex->req_done && up->in && up->in->off == up->in->len;
    if (up) {
        c->up = NULL;
        upstream_release(up, reuse);
    }
    if (!ex->keep_alive || !ex->req_done || cw(c)->draining) {
        client_close(c);
        return;
    }
    exchange_reset(c);
    c->state = C_HEAD;
    c->head_started = false;
    fb_buf_reset(&c->out);
    client_try_head(c);
}

static void tunnel_begin(struct client *c);

static int response_head(struct client *c)
{
    struct upstream *up = c->up;
    struct iob *in = up->in;
    struct h1_field fields[256];
    struct h1_limits lim = current_table(c)->h1;
    struct h1_msg m;
    int rc;

    lim.max_fields = 256;
    lim.max_line = lim.max_head;
    for (;;) {
        m.fields = fields;
        rc = h1_parse_response(in->data + in->off, in->len - in->off, &lim, c->ex.method, &m);
        if (rc <= 0)
            return rc;
        in->off += (size_t)rc;
        if (m.status == 101 && c->ex.upgrade) {
            c->ex.status = 101;
            c->ex.resp.out_chunked = false;
            serialize_response(c, &m);
            up->head_done = true;
            tunnel_begin(c);
            return 1;
        }
        if (m.status >= 100 && m.status < 200)
            continue; /* interim answers are not forwarded; 100 was answered by us */
        break;
    }
    c->ex.status = m.status;
    exchange_health(c, m.status < 500);
    c->ex.resp_keep_alive = m.keep_alive;
    c->ex.resp_in = m.body;
    body_fwd_init(&c->ex.resp, m.body, m.content_length,
                  c->ex.minor >= 1 && (m.body == H1_BODY_CHUNKED || m.body == H1_BODY_CLOSE));
    if (c->ex.minor == 0 && (m.body == H1_BODY_CHUNKED || m.body == H1_BODY_CLOSE))
        c->ex.keep_alive = false;
    serialize_response(c, &m);
    up->head_done = true;
    return 1;
}

static void response_pump(struct client *c)
{
    struct upstream *up = c->up;
    struct iob *in;
    uv_buf_t iov[PROXY_MAX_IOV];
    unsigned n = 0;
    size_t consumed = 0;
    int rc;

    if (!up || c->writing || c->closing)
        return;
    in = up->in;
    if (!c->ex.resp_started)
        iov_add(iov, &n, c->out.data, c->out.len);
    if (in && !c->ex.resp.done) {
        rc = body_fwd_fill(&c->ex.resp, in->data + in->off, in->len - in->off, up->eof, iov,
                           PROXY_MAX_IOV, &n, &consumed);
        if (rc) {
            if (c->ex.rm)
                metrics_count_upstream_error(c->ex.rm, cw(c)->id, METRICS_UP_BAD_RESPONSE);
            client_close(c);
            return;
        }
    }
    if (n == 0) {
        if (consumed)
            in->off += consumed; /* framing only: nothing to write */
        if (c->ex.resp.done)
            exchange_finish(c);
        else if (up->eof)
            client_close(c);
        else
            upstream_read_start(up);
        return;
    }
    if (!c->ex.resp.done)
        upstream_read_stop(up);
    c->ex.resp_pending = consumed;
    c->ex.bytes_out += consumed;
    c->wr.data = c;
    c->writing = true;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, iov, n, on_response_written)) {
        c->writing = false;
        client_close(c);
    }
}

static void on_response_written(uv_write_t *req, int status)
{
    struct client *c = req->data;

    c->writing = false;
    if (c->closing)
        return;
    if (status < 0 || !c->up) {
        client_close(c);
        return;
    }
    c->ex.resp_started = true;
    c->up->in->off += c->ex.resp_pending;
    c->ex.resp_pending = 0;
    if (c->ex.resp.done) {
        exchange_finish(c);
        return;
    }
    response_pump(c);
}

void proxy_upstream_data(struct client *c, bool eof)
{
    struct upstream *up = c->up;
    int rc;

    if (c->state == C_TUNNEL) {
        tunnel_pump(c, false);
        return;
    }
    if (!up->head_done) {
        if (eof) {
            if (up->in && up->in->len > up->in->off) {
                c->ex.replayable = false;
                proxy_upstream_failed(c, -FB_EBADRESP, METRICS_UP_BAD_RESPONSE);
            } else {
                proxy_upstream_failed(c, -FB_ECONNECT, METRICS_UP_RESET);
            }
            return;
        }
        rc = response_head(c);
        if (rc < 0) {
            c->ex.replayable = false;
            proxy_upstream_failed(c, -FB_EBADRESP, METRICS_UP_BAD_RESPONSE);
            return;
        }
        if (rc == 0) {
            if (up->in->len == up->in->cap)
                proxy_upstream_failed(c, -FB_EBADRESP, METRICS_UP_BAD_RESPONSE);
            return;
        }
        c->ex.upstream_ns = fb_mono_ns();
        if (c->state == C_TUNNEL)
            return;
    }
    if (c->writing && !c->ex.resp_started)
        return; /* the 100 Continue is still being written */
    response_pump(c);
}

/* ---- tunnel ----------------------------------------------------------------- */

static void on_tunnel_to_client(uv_write_t *req, int status)
{
    struct client *c = req->data;

    c->writing = false;
    if (c->closing)
        return;
    if (status < 0 || !c->up) {
        client_close(c);
        return;
    }
    if (!c->ex.resp_started) {
        c->ex.resp_started = true;
        fb_buf_reset(&c->out);
    }
    c->up->in->off += c->ex.resp_pending;
    c->ex.resp_pending = 0;
    if (c->up->eof) {
        client_close(c);
        return;
    }
    tunnel_pump(c, false);
}

static void on_tunnel_to_upstream(uv_write_t *req, int status)
{
    struct upstream *up = req->data;
    struct client *c = up->c;

    up->writing = false;
    if (!c || up->closing)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    c->in->off += c->ex.pending;
    c->ex.pending = 0;
    tunnel_pump(c, true);
}

static void tunnel_pump(struct client *c, bool from_client)
{
    struct upstream *up = c->up;
    uv_buf_t iov[2];
    unsigned n = 0;

    if (!up || c->closing)
        return;
    if (from_client) {
        struct iob *in = c->in;

        if (up->writing)
            return;
        if (!in || in->off == in->len) {
            client_read_start(c);
            return;
        }
        client_read_stop(c);
        iov_add(iov, &n, in->data + in->off, in->len - in->off);
        c->ex.pending = in->len - in->off;
        c->ex.bytes_in += c->ex.pending;
        if (upstream_write(up, iov, n, on_tunnel_to_upstream))
            client_close(c);
        return;
    }
    if (c->writing)
        return;
    if (!c->ex.resp_started)
        iov_add(iov, &n, c->out.data, c->out.len);
    if (up->in && up->in->off < up->in->len)
        iov_add(iov, &n, up->in->data + up->in->off, up->in->len - up->in->off);
    if (n == 0) {
        if (up->eof)
            client_close(c);
        else
            upstream_read_start(up);
        return;
    }
    upstream_read_stop(up);
    c->ex.resp_pending = up->in ? up->in->len - up->in->off : 0;
    c->ex.bytes_out += c->ex.resp_pending;
    c->wr.data = c;
    c->writing = true;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, iov, n, on_tunnel_to_client)) {
        c->writing = false;
        client_close(c);
    }
}

static void tunnel_begin(struct client *c)
{
    c->state = C_TUNNEL;
    c->ex.req_done = true;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->up->timer);
    exchange_account(c);
    tunnel_pump(c, false);
    tunnel_pump(c, true);
}

void proxy_client_abort(struct client *c)
{
    client_close(c);
}

/* ---- accept and drain ---------------------------------------------------- */

void client_accepted(struct worker *w, uv_stream_t *listener)
{
    struct client *c = calloc(1, sizeof(*c));
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (!c)
        return;
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    fb_buf_init(&c->out, HEAD_BUF_MAX);
    fb_buf_init(&c->ex.up_head, HEAD_BUF_MAX);
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    metrics_client_opened(w->mw);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        client_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
    }
    c->state = C_HEAD;
    client_try_head(c);
}

void client_drain(struct client *c)
{
    if (c->closing)
        return;
    if (c->state == C_HEAD && !c->head_started && !c->writing)
        client_close(c);
    else if (c->state == C_TUNNEL)
        client_close(c);
    /* Others finish their exchange, then close (exchange_finish sees draining). */
}
