/*
 * api.c: authentication and dispatch of /api/v1 (docs/api.md).
 *
 * Every call needs "Authorization: Bearer TOKEN". The token's SHA-256 is
 * compared in constant time with every known token; no token or an unknown
 * one is 401, a role that may not act is 403, both with the JSON error body.
 * The path after /api/v1 is split into segments and offered to each resource
 * in turn; the first that recognises it answers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/h1_parse.h"
#include "firebreak/http_server.h"
#include "firebreak/server-t.h"

void api_reply_to(struct http_call *call, int status, json_t *j)
{
    struct http_response *r = &call->resp;
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    r->status = status;
    r->content_type = "application/json";
    fb_buf_reset(&r->body);
    if (text) {
        fb_buf_puts(&r->body, text);
        fb_buf_puts(&r->body, "\n");
    }
    free(text);
    json_decref(j);
    http_call_done(call);
}

void api_reply(struct api_ctx *a, int status, json_t *j)
{
    api_reply_to(a->call, status, j);
}

void api_error(struct api_ctx *a, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_response_json_error(&a->call->resp, err, msg);
    http_call_done(a->call);
}

bool api_allowed(struct api_ctx *a, enum token_role need)
{
    if (a->token->role >= need)
        return true;
    api_error(a, -FB_EFORBID, "token '%s' has role %s; this needs %s", a->token->name,
              control_role_name(a->token->role), control_role_name(need));
    return false;
}

bool api_method(const struct api_ctx *a, const char *method)
{
    const struct h1_span m = a->call->req.method_name;

    return m.len == strlen(method) && !memcmp(m.p, method, m.len);
}

json_t *api_body(struct api_ctx *a)
{
    json_error_t e;
    json_t *j;

    if (!a->call->req.body_len) {
        api_error(a, -FB_EINVAL, "a JSON object body is required");
        return NULL;
    }
    j = json_loadb(a->call->req.body, a->call->req.body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        api_error(a, -FB_EINVAL, "body is not valid JSON: %s at line %d column %d", e.text,
                  e.line, e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_error(a, -FB_EINVAL, "body must be a JSON object");
        return NULL;
    }
    return j;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool api_query(const struct api_ctx *a, const char *name, char *out, size_t outlen)
{
    const char *p = a->call->req.query.p, *end = p + a->call->req.query.len;
    size_t nlen = strlen(name), o;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp ? amp : end;

        if ((size_t)(stop - p) > nlen && !memcmp(p, name, nlen) && p[nlen] == '=') {
            for (p += nlen + 1, o = 0; p < stop && o + 1 < outlen; p++) {
                if (*p == '%' && stop - p > 2 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                    out[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
                    p += 2;
                } else {
                    out[o++] = *p == '+' ? ' ' : *p;
                }
            }
            out[o] = '\0';
            return true;
        }
        p = stop + 1;
    }
    return false;
}

json_t *api_time(int64_t ms)
{
    char buf[64];

    if (!ms)
        return json_null();
    fb_format_time(ms, buf);
    return json_string(buf);
}

/* "2026-11-26T18:30:45.599Z", "2026-11-26T18:30:45Z", Unix ms, or "10m". */
int api_parse_since(const char *s, int64_t *out_ms)
{
    struct tm tm;
    char *end;
    long long v;
    int ms = 0;
    const char *rest;

    memset(&tm, 0, sizeof(tm));
    rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest) {
        if (*rest == '.') {
            v = strtoll(rest + 1, &end, 10);
            if (end == rest + 1 || v < 0)
                return -FB_EINVAL;
            while (end - rest - 1 > 3)
                v /= 10, end--;
            ms = (int)v;
            rest = end;
        }
        if (strcmp(rest, "Z"))
            return -FB_EINVAL;
        *out_ms = (int64_t)timegm(&tm) * 1000 + ms;
        return 0;
    }
    v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return -FB_EINVAL;
    if (!*end) {
        *out_ms = v;
        return 0;
    }
    if (!strcmp(end, "s"))
        v *= 1000;
    else if (!strcmp(end, "m"))
        v *= 60000;
    else if (!strcmp(end, "h"))
        v *= 3600000;
    else if (!strcmp(end, "d"))
        v *= 86400000;
    else
        return -FB_EINVAL;
    *out_ms = fb_wall_ms() - v;
    return 0;
}

static const struct token *authenticate(struct api_ctx *a)
{
    const struct h1_field *f = http_request_field(&a->call->req, "authorization");

    if (!f || f->value.len < 8 || strncasecmp(f->value.p, "Bearer ", 7))
        return NULL;
    return control_token_check(a->ctl, f->value.p + 7, f->value.len - 7);
}

static bool split_path(struct api_ctx *a)
{
    const struct h1_span path = a->call->req.path;
    size_t i, o = 0;

    if (path.len >= sizeof(a->segbuf))
        return false;
    a->nseg = 0;
    for (i = 7; i < path.len; i++) { /* after "/api/v1" */
        char ch = path.p[i];

        if (ch == '/') {
            if (o && a->segbuf[o - 1] != '\0')
                a->segbuf[o++] = '\0';
            continue;
        }
        if (o == 0 || a->segbuf[o - 1] == '\0') {
            if (a->nseg == API_MAX_SEGMENTS)
                return false;
            a->seg[a->nseg++] = &a->segbuf[o];
        }
        a->segbuf[o++] = ch;
    }
    a->segbuf[o] = '\0';
    return true;
}

void api_handle(struct server *srv, struct http_call *call)
{
    struct api_ctx *a = calloc(1, sizeof(*a));

    if (!a) {
        http_response_json_error(&call->resp, -FB_ENOMEM, NULL);
        http_call_done(call);
        return;
    }
    a->srv = srv;
    a->ctl = &srv->control;
    a->call = call;
    a->token = authenticate(a);
    if (!a->token) {
        fb_buf_puts(&call->resp.headers, "WWW-Authenticate: Bearer realm=\"firebreak\"\r\n");
        api_error(a, -FB_EUNAUTH, "send Authorization: Bearer TOKEN (see %s/admin.token)",
                  srv->cfg->state_dir);
    } else if (!split_path(a) || a->nseg == 0) {
        api_error(a, -FB_ENOENT, "no such endpoint");
    } else if (!api_journal(a) && !api_rollout(a) && !api_services(a) && !api_events(a) &&
               !api_tokens(a) && !api_incidents(a) && !api_webhooks(a)) {
        api_error(a, -FB_ENOENT, "no such endpoint: %.*s", (int)call->req.path.len,
                  call->req.path.p);
    }
    free(a);
}
