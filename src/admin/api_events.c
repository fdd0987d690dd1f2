/*
 * api_events.c: /api/v1/events (the change timeline) and /api/v1/tokens.
 *
 * Events are read from the store on its own thread; the answer goes out from
 * the completion callback on the control loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/http_server.h"
#include "firebreak/server-t.h"
#include "firebreak/store.h"

#define EVENTS_DEFAULT_LIMIT 500
#define EVENTS_MAX_LIMIT 5000

struct events_job {
    struct http_call *call;
    struct store_event_filter f;
    char service[128];
    struct store_event *ev;
    size_t n;
};

static int events_run(struct store *s, void *arg)
{
    struct events_job *job = arg;

    return store_events(s, &job->f, &job->ev, &job->n);
}

json_t *api_event_json(const struct store_event *e)
{
    json_t *details = json_loads(e->details ? e->details : "{}", 0, NULL);

    return json_pack("{s:I, s:o, s:I, s:s, s:s, s:o, s:o, s:o}", "id", (json_int_t)e->id, "time",
                     api_time(e->time_ms), "time_ms", (json_int_t)e->time_ms, "type", e->type,
                     "actor", e->actor ? e->actor : "", "service",
                     e->service ? json_string(e->service) : json_null(), "release",
                     e->release ? json_string(e->release) : json_null(), "details",
                     details ? details : json_object());
}

static void events_done(int status, void *arg)
{
    struct events_job *job = arg;
    json_t *arr;
    size_t i;

    if (status) {
        http_response_json_error(&job->call->resp, status, "cannot read events from the store");
        http_call_done(job->call);
    } else {
        arr = json_array();
        for (i = 0; i < job->n; i++)
            json_array_append_new(arr, api_event_json(&job->ev[i]));
        api_reply_to(job->call, 200, json_pack("{s:o}", "events", arr));
    }
    store_events_free(job->ev, job->n);
    free(job);
}

static bool parse_filter(struct api_ctx *a, struct events_job *job)
{
    char buf[128], *end;
    long long v;

    if (api_query(a, "since", buf, sizeof(buf)) && api_parse_since(buf, &job->f.since_ms)) {
        api_error(a, -FB_EINVAL, "since: use RFC 3339 (2026-11-26T18:30:00Z), Unix ms, or a "
                                 "duration like 10m");
        return false;
    }
    if (api_query(a, "after", buf, sizeof(buf))) {
        v = strtoll(buf, &end, 10);
        if (*end || end == buf || v < 0) {
            api_error(a, -FB_EINVAL, "after: an event id");
            return false;
        }
        job->f.after_id = v;
    }
    job->f.limit = EVENTS_DEFAULT_LIMIT;
    if (api_query(a, "limit", buf, sizeof(buf))) {
        v = strtoll(buf, &end, 10);
        if (*end || end == buf || v < 1 || v > EVENTS_MAX_LIMIT) {
            api_error(a, -FB_EINVAL, "limit: 1 to %d", EVENTS_MAX_LIMIT);
            return false;
        }
        job->f.limit = (size_t)v;
    }
    if (api_query(a, "service", job->service, sizeof(job->service)))
        job->f.service = job->service;
    return true;
}

bool api_events(struct api_ctx *a)
{
    struct events_job *job;
    int rc;

    if (strcmp(a->seg[0], "events") || a->nseg != 1)
        return false;
    if (!api_method(a, "GET")) {
        api_error(a, -FB_EMETHOD, "use GET here");
        return true;
    }
    if (!api_allowed(a, ROLE_VIEWER))
        return true;
    job = calloc(1, sizeof(*job));
    if (!job) {
        api_error(a, -FB_ENOMEM, "out of memory");
        return true;
    }
    job->call = a->call;
    if (!parse_filter(a, job)) {
        free(job);
        return true;
    }
    rc = store_submit(a->ctl->store, events_run, events_done, job);
    if (rc) {
        free(job);
        api_error(a, rc, "the store is busy; try again");
    }
    return true;
}

static void token_list(struct api_ctx *a)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < a->ctl->ntokens; i++) {
        const struct token *t = &a->ctl->tokens[i];

        json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "name", t->name, "role",
                                             control_role_name(t->role), "created",
                                             api_time(t->created_ms)));
    }
    api_reply(a, 200, json_pack("{s:o}", "tokens", arr));
}

static void token_create(struct api_ctx *a)
{
    json_t *body = api_body(a);
    const char *name = NULL, *role = NULL;
    char text[128], msg[256] = "";
    enum token_role r;
    int rc;

    if (!body)
        return;
    if (json_unpack(body, "{s:s, s:s}", "name", &name, "role", &role)) {
        api_error(a, -FB_EINVAL, "body needs \"name\" and \"role\" (viewer, responder, admin)");
    } else if (control_role_parse(role, &r)) {
        api_error(a, -FB_EINVAL, "role must be viewer, responder or admin, not '%s'", role);
    } else {
        rc = control_token_create(a->ctl, name, r, a->token->name, text, sizeof(text), msg,
                                  sizeof(msg));
        if (rc)
            api_error(a, rc, "%s", msg);
        else
            api_reply(a, 201, json_pack("{s:s, s:s, s:s}", "name", name, "role",
                                        control_role_name(r), "token", text));
    }
    json_decref(body);
}

bool api_tokens(struct api_ctx *a)
{
    if (strcmp(a->seg[0], "tokens") || a->nseg != 1)
        return false;
    if (!api_allowed(a, ROLE_ADMIN))
        return true;
    if (api_method(a, "GET"))
        token_list(a);
    else if (api_method(a, "POST"))
        token_create(a);
    else
        api_error(a, -FB_EMETHOD, "use GET or POST here");
    return true;
}
