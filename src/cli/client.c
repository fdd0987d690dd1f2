/*
 * client.c: a small blocking HTTP/1.1 client for the admin API.
 *
 * Purpose: the CLI's only way to talk to a running firebreak. One request per
 * connection ("Connection: close"), so there is no connection state to keep.
 *
 * Operations: client_url_parse (the admin address), client_request (one
 * exchange), client_escape (percent-encoding of path segments and query
 * values).
 *
 * An exchange: resolve and connect (each address tried in turn, each bounded
 * by connect_timeout_ms), write the request, read until h1_parse_response
 * accepts a head (1xx heads are skipped), then the body by Content-Length,
 * chunked coding (h1_chunked_feed) or until the peer closes.
 *
 * Invariants: every wait is a poll() bounded by the exchange's deadline; the
 * head is bounded by the parser's limits (16 KiB), the body by max_body
 * (16 MiB), the request body by 1 MiB; a failed exchange always leaves
 * resp->why naming what went wrong. The socket is closed before return.
 *
 * Cost: one TCP connection, O(head + body) memory per call.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/client.h"
#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/h1_parse.h"

#define CLIENT_READ_CHUNK 16384
#define CLIENT_MAX_URL 512

/* ------------------------------------------------------------------ URLs */

static int url_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int url_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -FB_EINVAL;
}

static bool host_char_ok(char ch, bool v6)
{
    if (v6)
        return isxdigit((unsigned char)ch) || ch == ':' || ch == '.';
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

/* Skips "http://"; refuses any other scheme. */
static int url_scheme(const char **p, char *why, size_t whylen)
{
    const char *sep = strstr(*p, "://");
    size_t n;

    if (!sep)
        return 0;
    n = (size_t)(sep - *p);
    if (n == 4 && !strncasecmp(*p, "http", 4)) {
        *p = sep + 3;
        return 0;
    }
    if (n == 5 && !strncasecmp(*p, "https", 5))
        return url_fail(why, whylen, "https is not supported: the admin API speaks plain HTTP");
    return url_fail(why, whylen, "unsupported scheme '%.*s' (use http://)", (int)(n > 16 ? 16 : n),
                    *p);
}

/* Reads the host (bracketed for IPv6) into out->host; leaves *p after it. */
static int url_host(const char **p, struct client_url *out, char *why, size_t whylen)
{
    const char *s = *p, *end;
    size_t n;

    out->v6 = *s == '[';
    if (out->v6) {
        s++;
        end = strchr(s, ']');
        if (!end)
            return url_fail(why, whylen, "missing ']' after the IPv6 address");
    } else {
        end = s + strcspn(s, ":/?#");
    }
    n = (size_t)(end - s);
    if (n == 0)
        return url_fail(why, whylen, "missing host");
    if (n >= sizeof(out->host))
        return url_fail(why, whylen, "host longer than %zu characters", sizeof(out->host) - 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '@')
            return url_fail(why, whylen, "user information in the address is not supported");
        if (!host_char_ok(s[i], out->v6))
            return url_fail(why, whylen, "character '%c' is not allowed in a host",
                            isprint((unsigned char)s[i]) ? s[i] : '?');
    }
    memcpy(out->host, s, n);
    out->host[n] = '\0';
    *p = out->v6 ? end + 1 : end;
    return 0;
}

/* Reads ":PORT" when present; "80" otherwise. */
static int url_port(const char **p, struct client_url *out, char *why, size_t whylen)
{
    const char *s = *p;
    unsigned long v = 0;
    size_t n = 0;

    if (*s != ':') {
        memcpy(out->port, "80", 3);
        return 0;
    }
    s++;
    while (isdigit((unsigned char)s[n]) && n < 6) {
        v = v * 10 + (unsigned long)(s[n] - '0');
        n++;
    }
    if (n == 0 || n > 5 || v == 0 || v > 65535 || isdigit((unsigned char)s[n]))
        return url_fail(why, whylen, "bad port: a number from 1 to 65535 must follow ':'");
    snprintf(out->port, sizeof(out->port), "%lu", v);
    *p = s + n;
    return 0;
}

/* Reads an optional "/BASE" path prefix, dropping trailing slashes. */
static int url_base(const char *s, struct client_url *out, char *why, size_t whylen)
{
    size_t n;

    if (*s == '\0')
        return 0;
    if (*s != '/')
        return url_fail(why, whylen, "unexpected '%c' after the host and port",
                        isprint((unsigned char)*s) ? *s : '?');
    n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#')
            return url_fail(why, whylen,
                            "the path may not hold spaces, '?', '#' or "
                            "control characters");
    }
    while (n > 0 && s[n - 1] == '/')
        n--;
    if (n >= sizeof(out->base))
        return url_fail(why, whylen, "path longer than %zu characters", sizeof(out->base) - 1);
    memcpy(out->base, s, n);
    out->base[n] = '\0';
    return 0;
}

int client_url_parse(const char *text, struct client_url *out, char *why, size_t whylen)
{
    const char *p = text;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!text || !*text) {
        rc = url_fail(why, whylen, "empty address");
        goto out;
    }
    if (strlen(text) > CLIENT_MAX_URL) {
        rc = url_fail(why, whylen, "address longer than %d characters", CLIENT_MAX_URL);
        goto out;
    }
    rc = url_scheme(&p, why, whylen);
    if (rc == 0)
        rc = url_host(&p, out, why, whylen);
    if (rc == 0)
        rc = url_port(&p, out, why, whylen);
    if (rc == 0)
        rc = url_base(p, out, why, whylen);
    if (rc == 0)
        snprintf(out->text, sizeof(out->text), "http://%s%s%s:%s%s", out->v6 ? "[" : "", out->host,
                 out->v6 ? "]" : "", out->port, out->base);
out:
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

void client_init(struct client *c, const struct client_url *url, const char *token)
{
    c->url = *url;
    c->token = token;
    c->connect_timeout_ms = CLIENT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = CLIENT_TIMEOUT_MS;
    c->max_body = CLIENT_MAX_BODY;
}

int client_escape(struct fb_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    for (; *s && rc == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};

        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
            rc = fb_buf_append(b, s, 1);
        else
            rc = fb_buf_append(b, enc, 3);
    }
    return rc;
}

/* ------------------------------------------------------------ the socket */

static void set_why(struct client_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_why(struct client_response *resp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(resp->why, sizeof(resp->why), fmt, ap);
    va_end(ap);
}

/* strerror with a lower-case first letter, to sit inside a sentence. */
static void errno_text(int err, char *out, size_t len)
{
    snprintf(out, len, "%s", strerror(err));
    if (out[0])
        out[0] = (char)tolower((unsigned char)out[0]);
}

static uint64_t deadline_after(int ms)
{
    return fb_mono_ns() + (uint64_t)(ms > 0 ? ms : 0) * 1000000u;
}

/* Waits until fd is ready for events or the deadline passes: 0, -FB_ETIMEOUT
 * or -FB_EIO. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    uint64_t now;
    int n;

    for (;;) {
        now = fb_mono_ns();
        if (now >= deadline)
            return -FB_ETIMEOUT;
        uint64_t ms = (deadline - now + 999999u) / 1000000u;
        n = poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -FB_EIO;
    }
}

/* Connects to one address. Returns 0 with *fd set, -FB_ECONNECT with *err the
 * errno, or -FB_ETIMEOUT. */
static int connect_one(const struct addrinfo *ai, int timeout_ms, int *fd, int *err)
{
    int s, soerr = 0, rc = 0;
    socklen_t len = sizeof(soerr);

    s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
        *err = errno;
        return -FB_ECONNECT;
    }
    if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0)
        goto done;
    if (errno != EINPROGRESS) {
        soerr = errno;
        goto fail;
    }
    rc = wait_fd(s, POLLOUT, deadline_after(timeout_ms));
    if (rc)
        goto fail;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr)
        goto fail;
done:
    *fd = s;
    return 0;
fail:
    close(s);
    *err = soerr;
    return rc ? rc : -FB_ECONNECT;
}

/* Resolves the URL's host and connects to the first address that answers. */
static int open_conn(const struct client *c, int *fd, struct client_response *resp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    char text[128];
    int rc = -FB_ECONNECT, gai, err = 0;

    gai = getaddrinfo(c->url.host, c->url.port, &hints, &list);
    if (gai) {
        set_why(resp, "cannot resolve %s: %s", c->url.host, gai_strerror(gai));
        goto out;
    }
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        rc = connect_one(ai, c->connect_timeout_ms, fd, &err);
        if (rc == 0)
            goto out;
    }
    if (rc == -FB_ETIMEOUT) {
        set_why(resp, "no connection within %d ms", c->connect_timeout_ms);
    } else {
        resp->sys_errno = err;
        errno_text(err, text, sizeof(text));
        set_why(resp, "%s", text);
    }
out:
    if (list)
        freeaddrinfo(list);
    return rc;
}

static int send_all(int fd, const char *p, size_t len, uint64_t deadline, int *err)
{
    ssize_t n;
    int rc = 0;

    while (len > 0 && rc == 0) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = wait_fd(fd, POLLOUT, deadline);
        } else if (n < 0 && errno != EINTR) {
            *err = errno;
            rc = -FB_EIO;
        }
    }
    return rc;
}

/* Reads what is there (waiting for it until the deadline) into dst.
 * Returns the byte count, 0 at end of stream, or a negative code. */
static ssize_t recv_some(int fd, char *dst, size_t cap, uint64_t deadline, int *err)
{
    ssize_t n;
    int rc;

    for (;;) {
        n = recv(fd, dst, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *err = errno;
            return -FB_EIO;
        }
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc == -FB_EIO)
            *err = errno;
        if (rc)
            return rc;
    }
}

/* -------------------------------------------------------------- exchange */

struct exchange {
    const struct client *c;
    struct client_response *resp;
    int fd;
    uint64_t deadline;
    struct fb_buf in; /* raw bytes: the head, then whatever followed it */
};

/* Sets why after a failed read. */
static void read_why(struct exchange *ex, ssize_t n, int err)
{
    char text[128];

    if (n == -FB_ETIMEOUT) {
        set_why(ex->resp, "no whole answer within %d ms", ex->c->timeout_ms);
    } else {
        errno_text(err, text, sizeof(text));
        set_why(ex->resp, "reading the answer failed: %s", text);
    }
}

/* At the limit: only the end of the stream is acceptable. */
static ssize_t ex_read_at_limit(struct exchange *ex, const struct fb_buf *b)
{
    char one;
    ssize_t n;
    int err = 0;

    n = recv_some(ex->fd, &one, 1, ex->deadline, &err);
    if (n < 0) {
        read_why(ex, n, err);
        return n;
    }
    if (n == 0)
        return 0;
    set_why(ex->resp, "the answer is over the %zu-byte limit", b->max);
    return -FB_ETOOBIG;
}

/* Reads more bytes into b, never past limit (<= b->max) in total. Returns
 * the count read, 0 at end of stream, or a negative code with resp->why set. */
static ssize_t ex_read(struct exchange *ex, struct fb_buf *b, size_t limit)
{
    size_t room = limit > b->len ? limit - b->len : 0;
    ssize_t n;
    int rc, err = 0;

    if (room == 0)
        return ex_read_at_limit(ex, b);
    if (room > CLIENT_READ_CHUNK)
        room = CLIENT_READ_CHUNK;
    rc = fb_buf_reserve(b, room);
    if (rc) {
        set_why(ex->resp, "out of memory for the answer");
        return rc;
    }
    n = recv_some(ex->fd, b->data + b->len, room, ex->deadline, &err);
    if (n < 0) {
        read_why(ex, n, err);
    } else {
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    return n;
}

static void copy_reason(struct client_response *resp, struct h1_span r)
{
    size_t n = r.len < sizeof(resp->reason) - 1 ? r.len : sizeof(resp->reason) - 1;

    for (size_t i = 0; i < n; i++)
        resp->reason[i] = iscntrl((unsigned char)r.p[i]) ? '?' : r.p[i];
    resp->reason[n] = '\0';
}

/* Reads until a final (non-1xx) head is parsed into msg. */
static int ex_head(struct exchange *ex, const struct h1_limits *lim, enum h1_method method,
                   struct h1_msg *msg)
{
    ssize_t n;
    int rc;

    for (;;) {
        rc = ex->in.len ? h1_parse_response(ex->in.data, ex->in.len, lim, method, msg) : 0;
        if (rc > 0 && msg->status >= 200)
            break;
        if (rc > 0 && msg->status != 101) {
            fb_buf_consume(&ex->in, msg->head_len); /* 100 Continue and friends */
            continue;
        }
        if (rc != 0) {
            set_why(ex->resp, "malformed answer: %s",
                    rc > 0 ? "unexpected 101 Switching Protocols"
                           : (msg->why ? msg->why : "bad framing"));
            return -FB_EBADRESP;
        }
        n = ex_read(ex, &ex->in, ex->in.max);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            set_why(ex->resp, ex->in.len ? "the connection closed in the middle of the answer"
                                         : "the connection closed without an answer");
            return -FB_EBADRESP;
        }
    }
    ex->resp->status = msg->status;
    copy_reason(ex->resp, msg->reason);
    return 0;
}

static int body_append(struct exchange *ex, const char *p, size_t n)
{
    int rc = fb_buf_append(&ex->resp->body, p, n);

    if (rc == -FB_ETOOBIG)
        set_why(ex->resp, "the answer body is over the %zu-byte limit", ex->c->max_body);
    return rc;
}

static int ex_body_length(struct exchange *ex, const char *rest, size_t rest_len, uint64_t len)
{
    struct fb_buf *body = &ex->resp->body;
    ssize_t n;
    int rc;

    if (len > ex->c->max_body) {
        set_why(ex->resp, "the answer body of %llu bytes is over the %zu-byte limit",
                (unsigned long long)len, ex->c->max_body);
        return -FB_ETOOBIG;
    }
    rc = body_append(ex, rest, rest_len < len ? rest_len : (size_t)len);
    while (rc == 0 && body->len < len) {
        n = ex_read(ex, body, (size_t)len);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            set_why(ex->resp, "the connection closed after %zu of %llu body bytes", body->len,
                    (unsigned long long)len);
            return -FB_EBADRESP;
        }
    }
    return rc;
}

/* Feeds bytes to the chunked decoder, appending the data to the body. */
static int chunked_feed_all(struct exchange *ex, struct h1_chunked *ch, const char *p, size_t len)
{
    const char *data;
    size_t used, data_len;
    int rc = 0;

    while (len > 0 && !ch->done && rc == 0) {
        if (h1_chunked_feed(ch, p, len, &used, &data, &data_len)) {
            set_why(ex->resp, "malformed chunked body: %s", ch->why);
            return -FB_EBADRESP;
        }
        if (data_len)
            rc = body_append(ex, data, data_len);
        if (used == 0)
            break;
        p += used;
        len -= used;
    }
    return rc;
}

static int ex_body_chunked(struct exchange *ex, const char *rest, size_t rest_len)
{
    struct h1_chunked ch;
    struct fb_buf raw;
    ssize_t n;
    int rc;

    h1_chunked_init(&ch, 4096, 16384);
    fb_buf_init(&raw, CLIENT_READ_CHUNK);
    rc = chunked_feed_all(ex, &ch, rest, rest_len);
    while (rc == 0 && !ch.done) {
        fb_buf_reset(&raw);
        n = ex_read(ex, &raw, CLIENT_READ_CHUNK);
        if (n == 0) {
            set_why(ex->resp, "the connection closed before the end of the chunked body");
            rc = -FB_EBADRESP;
        } else if (n < 0) {
            rc = (int)n;
        } else {
            rc = chunked_feed_all(ex, &ch, raw.data, raw.len);
        }
    }
    fb_buf_release(&raw);
    return rc;
}

static int ex_body_close(struct exchange *ex, const char *rest, size_t rest_len)
{
    ssize_t n = 1;
    int rc = body_append(ex, rest, rest_len);

    while (rc == 0 && n > 0) {
        n = ex_read(ex, &ex->resp->body, ex->c->max_body);
        if (n < 0)
            rc = (int)n;
    }
    return rc;
}

static int ex_body(struct exchange *ex, const struct h1_msg *msg)
{
    const char *rest = ex->in.data + msg->head_len;
    size_t rest_len = ex->in.len - msg->head_len;

    switch (msg->body) {
    case H1_BODY_LENGTH:
        return ex_body_length(ex, rest, rest_len, msg->content_length);
    case H1_BODY_CHUNKED:
        return ex_body_chunked(ex, rest, rest_len);
    case H1_BODY_CLOSE:
        return ex_body_close(ex, rest, rest_len);
    case H1_BODY_NONE:
        break;
    }
    return 0;
}

/* True when every byte of s is visible ASCII or a space (when allowed). */
static bool text_ok(const char *s, bool space)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch < ' ' || ch >= 0x7f || (ch == ' ' && !space))
            return false;
    }
    return true;
}

static int check_request(const struct client *c, const char *method, const char *path,
                         size_t body_len, struct client_response *resp)
{
    if (!*method || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(method)) {
        set_why(resp, "bad method");
        return -FB_EINVAL;
    }
    if (path[0] != '/' || !text_ok(path, false)) {
        set_why(resp, "bad request path");
        return -FB_EINVAL;
    }
    if (c->token && !text_ok(c->token, false)) {
        set_why(resp, "the token holds spaces or control characters");
        return -FB_EINVAL;
    }
    if (body_len > CLIENT_MAX_REQUEST_BODY) {
        set_why(resp, "the request body is over the %u-byte limit", CLIENT_MAX_REQUEST_BODY);
        return -FB_ETOOBIG;
    }
    return 0;
}

static int build_request(const struct client *c, const char *method, const char *path,
                         const char *body, size_t body_len, struct fb_buf *out)
{
    bool want_length = body_len > 0 || strcmp(method, "GET");
    int rc;

    rc = fb_buf_printf(out,
                       "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                       "User-Agent: firebreak-cli\r\nAccept: application/json\r\n"
                       "Connection: close\r\n",
                       method, c->url.base, path, c->url.v6 ? "[" : "", c->url.host,
                       c->url.v6 ? "]" : "", c->url.port);
    if (rc == 0 && c->token && *c->token)
        rc = fb_buf_printf(out, "Authorization: Bearer %s\r\n", c->token);
    if (rc == 0 && body_len > 0)
        rc = fb_buf_puts(out, "Content-Type: application/json\r\n");
    if (rc == 0 && want_length)
        rc = fb_buf_printf(out, "Content-Length: %zu\r\n", body_len);
    if (rc == 0)
        rc = fb_buf_puts(out, "\r\n");
    if (rc == 0 && body_len > 0)
        rc = fb_buf_append(out, body, body_len);
    return rc;
}

/* Sends the request and reads the whole answer on an open connection. */
static int ex_run(struct exchange *ex, const struct fb_buf *req, enum h1_method method)
{
    struct h1_field fields[100];
    struct h1_limits lim;
    struct h1_msg msg = {.fields = fields};
    char text[128] = "";
    int rc, send_rc, err = 0;

    h1_limits_default(&lim);
    lim.max_fields = sizeof(fields) / sizeof(fields[0]);
    fb_buf_init(&ex->in, lim.max_head + CLIENT_READ_CHUNK);
    /* A server may answer and close before reading all of a request: try to
     * read its answer even when sending failed, and report the send error
     * only when there is none. */
    send_rc = send_all(ex->fd, req->data, req->len, ex->deadline, &err);
    if (send_rc == -FB_EIO)
        errno_text(err, text, sizeof(text));
    rc = ex_head(ex, &lim, method, &msg);
    if (rc == 0)
        rc = ex_body(ex, &msg);
    if (rc && send_rc) {
        rc = send_rc;
        if (rc == -FB_ETIMEOUT)
            set_why(ex->resp, "the request could not be sent within %d ms", ex->c->timeout_ms);
        else
            set_why(ex->resp, "sending the request failed: %s", text);
    }
    fb_buf_release(&ex->in);
    return rc;
}

int client_request(const struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, struct client_response *resp)
{
    struct exchange ex = {.c = c, .resp = resp, .fd = -1};
    struct fb_buf req;
    int rc;

    memset(resp, 0, sizeof(*resp));
    fb_buf_init(&resp->body, c->max_body);
    fb_buf_init(&req, CLIENT_MAX_REQUEST_BODY + 16384);
    rc = check_request(c, method, path, body_len, resp);
    if (rc)
        goto out;
    rc = build_request(c, method, path, body, body_len, &req);
    if (rc) {
        set_why(resp, "cannot build the request: %s",
                rc == -FB_ETOOBIG ? "over the size limit" : "out of memory");
        goto out;
    }
    rc = open_conn(c, &ex.fd, resp);
    if (rc)
        goto out;
    ex.deadline = deadline_after(c->timeout_ms);
    rc = ex_run(&ex, &req, strcmp(method, "HEAD") ? H1_M_OTHER : H1_M_HEAD);
out:
    if (ex.fd >= 0)
        close(ex.fd);
    fb_buf_release(&req);
    if (rc)
        resp->status = 0;
    return rc;
}

void client_response_release(struct client_response *resp)
{
    fb_buf_release(&resp->body);
}
