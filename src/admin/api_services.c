/*
 * api_services.c: /api/v1/services: releases, weights, rollback.
 *
 *   GET    /services                      list (viewer)
 *   GET    /services/{s}                  one service (viewer)
 *   POST   /services/{s}/releases         add a release (responder)
 *   DELETE /services/{s}/releases/{r}     remove a release at weight 0 (responder)
 *   PUT    /services/{s}/weights          set weights (responder)
 *   POST   /services/{s}/rollback         stable to 100 in one swap (responder)
 *
 * Reads come from the published route table (what traffic sees), the
 * runtime spec (stable, previous), outlier-ejection state and the one-second
 * series; nothing here reads the store.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/http_server.h"
#include "firebreak/clock.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/health.h"
#include "firebreak/series.h"
#include "firebreak/server-t.h"

#define RATE_WINDOW_S 10

static const char *const health_names[] = {"healthy", "ejected", "probing"};

static json_t *endpoint_json(struct server *srv, const struct route_endpoint *e, uint64_t now)
{
    const struct health_ep *h = &srv->health->eps[e->id];
    enum health_state st = health_state(srv->health, e->id, now);
    uint64_t until = __atomic_load_n(&h->ejected_until_ns, __ATOMIC_ACQUIRE);
    json_t *j = json_object();

    json_object_set_new(j, "address", json_string(e->text));
    json_object_set_new(j, "state", json_string(health_names[st]));
    json_object_set_new(j, "ejections",
                        json_integer(__atomic_load_n(&h->total_ejections, __ATOMIC_RELAXED)));
    json_object_set_new(j, "consecutive_failures",
                        json_integer(__atomic_load_n(&h->consecutive, __ATOMIC_RELAXED)));
    json_object_set_new(j, "ejected_until",
                        st == HEALTH_EJECTED
                            ? api_time(fb_wall_ms() + (int64_t)((until - now) / 1000000))
                            : json_null());
    return j;
}

static json_t *rates_json(struct server *srv, const struct route_release *r)
{
    struct series_rates sr;

    if (!r->metrics || series_rates(srv->control.series, r->metrics, RATE_WINDOW_S, &sr))
        memset(&sr, 0, sizeof(sr));
    return json_pack("{s:i, s:f, s:f, s:f, s:f, s:I, s:I}", "window_s", (int)sr.window_s, "rps",
                     sr.rps, "error_rate", sr.error_rate, "p50_ms", sr.p50_ms, "p99_ms",
                     sr.p99_ms, "requests", (json_int_t)sr.requests, "errors",
                     (json_int_t)sr.errors);
}

static json_t *service_json(struct server *srv, const struct route_service *s)
{
    const struct route_spec_service *ss = control_service(&srv->control, s->name);
    json_t *rels = json_array();
    uint64_t now = fb_mono_ns();
    unsigned i, k;

    for (i = 0; i < s->nreleases; i++) {
        const struct route_release *r = &s->releases[i];
        json_t *eps = json_array();

        for (k = 0; k < r->nendpoints; k++)
            json_array_append_new(eps, endpoint_json(srv, &r->endpoints[k], now));
        json_array_append_new(
            rels, json_pack("{s:s, s:f, s:b, s:o, s:o}", "name", r->name, "weight",
                            r->weight_bp / 100.0, "stable", i == s->stable, "endpoints", eps,
                            "rates", rates_json(srv, r)));
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "name", s->name, "stable",
                     s->releases[s->stable].name, "previous",
                     ss && ss->previous ? json_string(ss->previous) : json_null(), "releases",
                     rels);
}

static const struct route_service *table_service(struct server *srv, const char *name)
{
    const struct route_table *t = srv->table;
    unsigned i;

    for (i = 0; i < t->nservices; i++) {
        if (!strcmp(t->services[i].name, name))
            return &t->services[i];
    }
    return NULL;
}

static void reply_service(struct api_ctx *a, int status, const char *name)
{
    const struct route_service *s = table_service(a->srv, name);

    if (!s)
        api_error(a, -FB_ENOENT, "no service named '%s'", name);
    else
        api_reply(a, status, service_json(a->srv, s));
}

/* An answer held until the change it reports is committed to the store. */
struct durable_reply {
    struct http_call *call;
    struct server *srv;
    int status;
    char service[ROUTE_NAME_MAX]; /* answer with this service's state; "" for no body */
};

static void durable_done(int status, void *arg)
{
    struct durable_reply *d = arg;

    const struct route_service *s = d->service[0] ? table_service(d->srv, d->service) : NULL;

    if (status) {
        http_response_json_error(&d->call->resp, -FB_ESTORE,
                                 "the change is live but could not be recorded in the store");
        http_call_done(d->call);
    } else if (s) {
        api_reply_to(d->call, d->status, service_json(d->srv, s));
    } else {
        d->call->resp.status = d->status;
        http_call_done(d->call);
    }
    free(d);
}

/* Prepares the answer for a change about to be made; NULL when out of memory
 * (then the handler has answered). */
static struct durable_reply *durable_new(struct api_ctx *a, int status, const char *service)
{
    struct durable_reply *d = calloc(1, sizeof(*d));

    if (!d) {
        api_error(a, -FB_ENOMEM, "out of memory");
        return NULL;
    }
    d->call = a->call;
    d->srv = a->srv;
    d->status = status;
    if (service)
        snprintf(d->service, sizeof(d->service), "%s", service);
    return d;
}

/* Hands the change's answer (the service as traffic now sees it) to d and
 * returns the then the control plane calls when the change is durable. */
static struct control_then durable_then(struct durable_reply *d)
{
    struct control_then t = {durable_done, d};

    return t;
}

static void list_services(struct api_ctx *a)
{
    const struct route_table *t = a->srv->table;
    json_t *arr = json_array();
    unsigned i;

    for (i = 0; i < t->nservices; i++)
        json_array_append_new(arr, service_json(a->srv, &t->services[i]));
    api_reply(a, 200, json_pack("{s:o}", "services", arr));
}

static int add_release_durably(struct api_ctx *a, const char *service, const char *name,
                               const char **texts, size_t n, char *msg, size_t msglen)
{
    struct durable_reply *d = durable_new(a, 201, service);
    struct control_then then;
    int rc;

    if (!d)
        return 0;
    then = durable_then(d);
    rc = control_release_add(a->ctl, service, name, texts, n, a->token->name, &then, msg,
                             msglen);
    if (rc)
        free(d);
    return rc;
}

static void add_release(struct api_ctx *a, const char *service)
{
    json_t *body = api_body(a), *eps, *e;
    const char *name = NULL, **texts = NULL;
    char msg[256] = "";
    size_t i, n;
    int rc;

    if (!body)
        return;
    if (json_unpack(body, "{s:s, s:o}", "name", &name, "endpoints", &eps) ||
        !json_is_array(eps)) {
        api_error(a, -FB_EINVAL, "body needs \"name\" (string) and \"endpoints\" (array of "
                                 "\"HOST:PORT\")");
        goto out;
    }
    n = json_array_size(eps);
    texts = calloc(n ? n : 1, sizeof(*texts));
    if (!texts) {
        api_error(a, -FB_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(eps, i, e)
    {
        if (!json_is_string(e)) {
            api_error(a, -FB_EINVAL, "endpoints[%zu] must be a string \"HOST:PORT\"", i);
            goto out;
        }
        texts[i] = json_string_value(e);
    }
    rc = add_release_durably(a, service, name, texts, n, msg, sizeof(msg));
    if (rc)
        api_error(a, rc, "%s", msg);
out:
    free(texts);
    json_decref(body);
}

/* Parses a JSON weight (number, 0..100, at most two decimals) into basis points. */
static int weight_bp(json_t *v, uint32_t *out)
{
    double d, bp;

    if (!json_is_number(v))
        return -FB_EINVAL;
    d = json_number_value(v);
    bp = d * 100.0;
    if (d < 0 || d > 100 || fabs(bp - round(bp)) > 1e-6)
        return -FB_EINVAL;
    *out = (uint32_t)round(bp);
    return 0;
}

static void set_weights(struct api_ctx *a, const char *service)
{
    json_t *body = api_body(a), *w, *v;
    const char *key, **names = NULL;
    struct durable_reply *d;
    struct control_then then;
    uint32_t *bps = NULL;
    char msg[256] = "";
    size_t n = 0;
    int rc;

    if (!body)
        return;
    w = json_object_get(body, "weights");
    if (!json_is_object(w) || !json_object_size(w)) {
        api_error(a, -FB_EINVAL, "body needs \"weights\": {\"RELEASE\": PERCENT, ...}");
        goto out;
    }
    names = calloc(json_object_size(w), sizeof(*names));
    bps = calloc(json_object_size(w), sizeof(*bps));
    if (!names || !bps) {
        api_error(a, -FB_ENOMEM, "out of memory");
        goto out;
    }
    json_object_foreach(w, key, v)
    {
        if (weight_bp(v, &bps[n])) {
            api_error(a, -FB_EINVAL, "weights.%s must be a number from 0 to 100 with at most "
                                     "two decimals", key);
            goto out;
        }
        names[n++] = key;
    }
    d = durable_new(a, 200, service);
    if (!d)
        goto out;
    then = durable_then(d);
    rc = control_weights(a->ctl, service, names, bps, n, a->token->name, "manual", &then, msg,
                         sizeof(msg));
    if (rc) {
        free(d);
        api_error(a, rc, "%s", msg);
    }
out:
    free(names);
    free(bps);
    json_decref(body);
}

static void rollback(struct api_ctx *a, const char *service)
{
    json_t *body = NULL, *weights;
    const char *reason = "";
    uint64_t published = 0;
    char msg[256] = "";
    const struct route_service *s;
    unsigned i;
    int rc;

    if (a->call->req.body_len) {
        body = api_body(a);
        if (!body)
            return;
        if (json_unpack(body, "{s?s}", "reason", &reason)) {
            api_error(a, -FB_EINVAL, "\"reason\" must be a string");
            json_decref(body);
            return;
        }
    }
    rc = control_rollback(a->ctl, service, "manual", reason, a->token->name, NULL, &published,
                          msg, sizeof(msg));
    json_decref(body);
    if (rc) {
        api_error(a, rc, "%s", msg);
        return;
    }
    s = table_service(a->srv, service);
    weights = json_object();
    for (i = 0; s && i < s->nreleases; i++)
        json_object_set_new(weights, s->releases[i].name,
                            json_real(s->releases[i].weight_bp / 100.0));
    api_reply(a, 200,
              json_pack("{s:s, s:s, s:o, s:f}", "service", service, "stable",
                        s ? s->releases[s->stable].name : "", "weights", weights,
                        "published_us",
                        (double)(published - a->call->req.arrival_ns) / 1000.0));
}

static void remove_release(struct api_ctx *a, const char *service, const char *release)
{
    struct durable_reply *d = durable_new(a, 204, NULL);
    struct control_then then;
    char msg[256] = "";
    int rc;

    if (!d)
        return;
    then = durable_then(d);
    rc = control_release_remove(a->ctl, service, release, a->token->name, &then, msg,
                                sizeof(msg));
    if (rc) {
        free(d);
        api_error(a, rc, "%s", msg);
    }
}

static bool wrong_method(struct api_ctx *a, const char *allowed)
{
    if (api_method(a, allowed) || (!strcmp(allowed, "GET") && api_method(a, "HEAD")))
        return false;
    fb_buf_printf(&a->call->resp.headers, "Allow: %s\r\n", allowed);
    api_error(a, -FB_EMETHOD, "use %s here", allowed);
    return true;
}

bool api_services(struct api_ctx *a)
{
    const char *svc, *sub;

    if (strcmp(a->seg[0], "services"))
        return false;
    if (a->nseg == 1) {
        if (!wrong_method(a, "GET") && api_allowed(a, ROLE_VIEWER))
            list_services(a);
        return true;
    }
    svc = a->seg[1];
    if (a->nseg == 2) {
        if (!wrong_method(a, "GET") && api_allowed(a, ROLE_VIEWER))
            reply_service(a, 200, svc);
        return true;
    }
    sub = a->seg[2];
    if (!strcmp(sub, "releases") && a->nseg == 3) {
        if (!wrong_method(a, "POST") && api_allowed(a, ROLE_RESPONDER))
            add_release(a, svc);
    } else if (!strcmp(sub, "releases") && a->nseg == 4) {
        if (!wrong_method(a, "DELETE") && api_allowed(a, ROLE_RESPONDER))
            remove_release(a, svc, a->seg[3]);
    } else if (!strcmp(sub, "weights") && a->nseg == 3) {
        if (!wrong_method(a, "PUT") && api_allowed(a, ROLE_RESPONDER))
            set_weights(a, svc);
    } else if (!strcmp(sub, "rollback") && a->nseg == 3) {
        if (!wrong_method(a, "POST") && api_allowed(a, ROLE_RESPONDER))
            rollback(a, svc);
    } else {
        return false;
    }
    return true;
}
