/*
 * http_server.c: a small, strict HTTP/1.1 server for the control plane's
 * listeners (admin API, /metrics, status page).
 *
 * It runs on the control thread's loop; it is not on the traffic path, so it
 * favours simplicity: a request is read whole (head, then a Content-Length
 * body up to max_body), handed to the handler, and the answer is written in
 * one write. Keep-alive and pipelining are supported; chunked request bodies
 * are refused with 411. The head parser is the data plane's strict one.
 *
 * Per connection: READ ─(complete)─► HANDLE ─► WRITE ─(keep-alive)─► READ
 *                  any error or "Connection: close" ─► CLOSE
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"
#include "firebreak/h1_parse.h"
#include "firebreak/http_server.h"
#include "firebreak/log.h"

#define CONN_IDLE_MS 30000
#define HEAD_MAX 16384

struct http_server {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    size_t max_body;
    http_handler_fn fn;
    void *arg;
    struct http_conn *conns;
    bool closing;
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    struct http_server *srv;
    struct http_conn *prev, *next;
    struct fb_buf in;
    struct fb_buf out;
    unsigned open_handles;
    struct http_call *call; /* the request being handled, if any */
    bool writing;
    bool close_after;
    bool closing;
    char peer[48];
};

static void conn_process(struct http_conn *c);

static void on_conn_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;

    if (--c->open_handles)
        return;
    fb_buf_release(&c->in);
    fb_buf_release(&c->out);
    free(c);
}

static void conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->call) {
        c->call->conn = NULL;
        c->call = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_written(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;

    c->writing = false;
    if (c->closing)
        return;
    if (status < 0 || c->close_after) {
        conn_close(c);
        return;
    }
    fb_buf_reset(&c->out);
    conn_process(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void response_init(struct http_response *r)
{
    r->status = 200;
    r->content_type = NULL;
    fb_buf_init(&r->headers, 16384);
    fb_buf_init(&r->body, 64u << 20);
}

static void conn_write_head(struct http_conn *c, const struct http_response *r)
{
    fb_buf_reset(&c->out);
    fb_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-store\r\n%s%s\r\n",
                  r->status, reason(r->status),
                  r->content_type ? r->content_type : "application/json", r->body.len,
                  r->headers.len ? r->headers.data : "",
                  c->close_after ? "Connection: close\r\n" : "");
}

/* Sends r and releases it: head and body are copied into c->out, the one
 * buffer that lives until the write completes. */
static void conn_respond(struct http_conn *c, struct http_response *r, bool head_only)
{
    uv_buf_t iov;

    conn_write_head(c, r);
    if (!head_only && r->body.len && fb_buf_append(&c->out, r->body.data, r->body.len)) {
        fb_buf_reset(&r->body);
        r->status = 500;
        c->close_after = true;
        conn_write_head(c, r);
    }
    fb_buf_release(&r->headers);
    fb_buf_release(&r->body);
    uv_timer_start(&c->timer, on_timer, CONN_IDLE_MS, 0);
    iov = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    c->writing = true;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &iov, 1, on_written)) {
        c->writing = false;
        conn_close(c);
    }
}

static void conn_fail(struct http_conn *c, int status, const char *why)
{
    struct http_response r;

    response_init(&r);
    c->close_after = true;
    http_response_text(&r, status, why);
    conn_respond(c, &r, false);
}

static void split_target(struct http_request *req, struct h1_span target)
{
    const char *q = memchr(target.p, '?', target.len);

    req->path = target;
    req->query.p = "";
    req->query.len = 0;
    if (q) {
        req->path.len = (size_t)(q - target.p);
        req->query.p = q + 1;
        req->query.len = target.len - req->path.len - 1;
    }
}

static struct http_call *call_new(struct http_conn *c, const struct h1_msg *m, size_t total)
{
    struct h1_limits lim = {8192, HEAD_MAX, HTTP_SERVER_MAX_FIELDS};
    struct http_call *call = calloc(1, sizeof(*call));
    struct h1_msg copy;

    if (!call)
        return NULL;
    call->raw = malloc(total + 1);
    if (!call->raw) {
        free(call);
        return NULL;
    }
    memcpy(call->raw, c->in.data, total);
    call->raw[total] = '\0';
    /* Parse the private copy so every span points into memory the call owns. */
    copy.fields = call->fields;
    h1_parse_request(call->raw, m->head_len, &lim, &copy);
    call->req.method = copy.method;
    call->req.method_name = copy.method_name;
    split_target(&call->req, copy.target);
    call->req.fields = call->fields;
    call->req.nfields = copy.nfields;
    call->req.body = call->raw + m->head_len;
    call->req.body_len = total - m->head_len;
    call->req.peer = c->peer;
    call->req.arrival_ns = fb_mono_ns();
    call->head_only = m->method == H1_M_HEAD;
    call->conn = c;
    response_init(&call->resp);
    return call;
}

void http_call_done(struct http_call *call)
{
    struct http_conn *c = call->conn;

    if (c) {
        c->call = NULL;
        conn_respond(c, &call->resp, call->head_only);
    } else {
        fb_buf_release(&call->resp.headers);
        fb_buf_release(&call->resp.body);
    }
    free(call->raw);
    free(call);
}

static void conn_process(struct http_conn *c)
{
    struct h1_field fields[HTTP_SERVER_MAX_FIELDS];
    struct h1_limits lim = {8192, HEAD_MAX, HTTP_SERVER_MAX_FIELDS};
    struct http_call *call;
    struct h1_msg m;
    size_t total;
    int rc;

    if (c->writing || c->closing || c->call || !c->in.len)
        return;
    m.fields = fields;
    rc = h1_parse_request(c->in.data, c->in.len, &lim, &m);
    if (rc == 0)
        return;
    if (rc < 0) {
        conn_fail(c, fb_err_status(rc), m.why ? m.why : fb_err_message(rc));
        return;
    }
    if (m.body == H1_BODY_CHUNKED) {
        conn_fail(c, 411, "send the body with Content-Length");
        return;
    }
    if (m.body == H1_BODY_LENGTH && m.content_length > c->srv->max_body) {
        conn_fail(c, 413, "request body over the limit");
        return;
    }
    total = m.head_len + (m.body == H1_BODY_LENGTH ? (size_t)m.content_length : 0);
    if (c->in.len < total)
        return; /* wait for the rest of the body */
    uv_timer_stop(&c->timer);
    call = call_new(c, &m, total);
    if (!call) {
        conn_fail(c, 500, "out of memory");
        return;
    }
    fb_buf_consume(&c->in, total);
    c->close_after = !m.keep_alive || c->srv->closing;
    c->call = call;
    c->srv->fn(c->srv->arg, call);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = h->data;

    if (fb_buf_reserve(&c->in, 16384)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, 16384);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = s->data;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    conn_process(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct http_server *s = l->data;
    struct http_conn *c;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (status < 0 || !(c = calloc(1, sizeof(*c))))
        return;
    c->srv = s;
    fb_buf_init(&c->in, HEAD_MAX + s->max_body + 16384);
    fb_buf_init(&c->out, 80u << 20);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
    uv_timer_start(&c->timer, on_timer, CONN_IDLE_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int http_server_new(uv_loop_t *loop, const struct cfg_addr *addr, size_t max_body,
                    http_handler_fn fn, void *arg, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (!s)
        return -FB_ENOMEM;
    s->loop = loop;
    s->max_body = max_body;
    s->fn = fn;
    s->arg = arg;
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr->addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->tcp, 512, on_connection);
    if (rc) {
        fb_error("cannot listen on %s: %s", addr->text, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
        return rc == UV_EADDRINUSE ? -FB_EEXIST : -FB_EIO;
    }
    *out = s;
    return 0;
}

void http_server_close(struct http_server *s)
{
    struct http_conn *c, *next;

    if (!s)
        return;
    s->closing = true;
    for (c = s->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
}

void http_response_json_error(struct http_response *resp, int err, const char *message)
{
    const char *p;

    resp->status = fb_err_status(err);
    resp->content_type = "application/json";
    fb_buf_reset(&resp->body);
    fb_buf_printf(&resp->body, "{\"error\":\"%s\",\"message\":\"", fb_err_name(err));
    for (p = message ? message : fb_err_message(err); *p; p++) {
        if (*p == '"' || *p == '\\')
            fb_buf_printf(&resp->body, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            fb_buf_printf(&resp->body, "\\u%04x", (unsigned char)*p);
        else
            fb_buf_append(&resp->body, p, 1);
    }
    fb_buf_puts(&resp->body, "\"}\n");
}

void http_response_text(struct http_response *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    fb_buf_reset(&resp->body);
    fb_buf_puts(&resp->body, text);
    fb_buf_puts(&resp->body, "\n");
}

const struct h1_field *http_request_field(const struct http_request *req, const char *lower)
{
    unsigned i;

    for (i = 0; i < req->nfields; i++) {
        if (h1_span_eq(req->fields[i].name, lower))
            return &req->fields[i];
    }
    return NULL;
}
