/*
 * api_incidents.c: /api/v1/incidents (docs/api.md).
 *
 *   GET  /incidents                       list (viewer)
 *   POST /incidents                       declare {title, severity, services} (responder)
 *   GET  /incidents/{id}                  one, with its timeline (viewer)
 *   GET  /incidents/{id}/timeline         the timeline alone (viewer)
 *   POST /incidents/{id}/assign           {role, name}            (responder, all below)
 *   POST /incidents/{id}/notes            {text}
 *   POST /incidents/{id}/status           {status}
 *   POST /incidents/{id}/resolve
 *   POST /incidents/{id}/checklist        {item, done}
 *   GET  /incidents/{id}/updates/draft?audience=internal|public
 *   POST /incidents/{id}/updates          {audience, known, unknown, next_steps, next_update}
 *                                         or {audience, draft: true} to publish the draft
 *   POST /incidents/{id}/actions          {type, text, owner}
 *   POST /incidents/{id}/actions/{n}/done
 *   POST /incidents/{id}/postmortem       writes STATE/postmortems/{id}.md
 *   POST /debug/clock                     {advance_ms} (only with FIREBREAK_DEBUG_CLOCK=1)
 *
 * The timeline is read from the store on its thread; those answers go out
 * from the completion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/http_server.h"
#include "firebreak/incident.h"
#include "firebreak/server-t.h"
#include "firebreak/store.h"

enum tl_purpose { TL_SHOW, TL_TIMELINE, TL_POSTMORTEM };

struct tl_job {
    struct http_call *call;
    struct incidents *is;
    enum tl_purpose purpose;
    char id[32];
    struct store_event_filter f;
    struct store_event *ev;
    size_t n;
};

static int tl_run(struct store *s, void *arg)
{
    struct tl_job *job = arg;

    return store_events(s, &job->f, &job->ev, &job->n);
}

static void tl_postmortem(struct tl_job *job, json_t *timeline)
{
    char msg[256] = "", path[4300];
    char *md = NULL;
    int rc = incident_postmortem(job->is, job->id, timeline, &md, path, sizeof(path), msg,
                                 sizeof(msg));

    if (rc) {
        http_response_json_error(&job->call->resp, rc, msg);
        http_call_done(job->call);
    } else {
        api_reply_to(job->call, 201, json_pack("{s:s, s:s, s:s}", "id", job->id, "path", path,
                                               "markdown", md ? md : ""));
    }
    free(md);
}

static void tl_done(int status, void *arg)
{
    struct tl_job *job = arg;
    json_t *events = json_array(), *tl, *inc;
    size_t i;

    if (status) {
        http_response_json_error(&job->call->resp, status, "cannot read the timeline");
        http_call_done(job->call);
        goto out;
    }
    for (i = 0; i < job->n; i++)
        json_array_append_new(events, api_event_json(&job->ev[i]));
    tl = incident_timeline_filter(job->is, job->id, events);
    inc = incident_get(job->is, job->id);
    if (!inc) {
        json_decref(tl);
        http_response_json_error(&job->call->resp, -FB_ENOENT, "no such incident");
        http_call_done(job->call);
    } else if (job->purpose == TL_POSTMORTEM) {
        tl_postmortem(job, tl);
        json_decref(tl);
    } else if (job->purpose == TL_TIMELINE) {
        api_reply_to(job->call, 200, json_pack("{s:s, s:o}", "id", job->id, "timeline", tl));
    } else {
        inc = json_deep_copy(inc);
        json_object_set_new(inc, "timeline", tl);
        api_reply_to(job->call, 200, inc);
    }
out:
    json_decref(events);
    store_events_free(job->ev, job->n);
    free(job);
}

static void with_timeline(struct api_ctx *a, const char *id, enum tl_purpose purpose)
{
    struct incidents *is = a->ctl->incidents;
    struct tl_job *job;
    int64_t until;
    int rc;

    if (!incident_get(is, id)) {
        api_error(a, -FB_ENOENT, "no incident '%s'", id);
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        api_error(a, -FB_ENOMEM, "out of memory");
        return;
    }
    job->call = a->call;
    job->is = is;
    job->purpose = purpose;
    snprintf(job->id, sizeof(job->id), "%s", id);
    incident_timeline_window(is, id, &job->f.since_ms, &until);
    job->f.limit = 5000;
    rc = store_submit(a->ctl->store, tl_run, tl_done, job);
    if (rc) {
        free(job);
        api_error(a, rc, "the store is busy; try again");
    }
}

static void reply_incident(struct api_ctx *a, int status, const char *id)
{
    json_t *inc = incident_get(a->ctl->incidents, id);

    if (!inc)
        api_error(a, -FB_ENOENT, "no incident '%s'", id);
    else
        api_reply(a, status, json_deep_copy(inc));
}

static void declare(struct api_ctx *a)
{
    json_t *body = api_body(a), *services = NULL;
    const char *title = NULL, *sev = NULL;
    char id[32] = "", msg[256] = "";
    int rc;

    if (!body)
        return;
    if (json_unpack(body, "{s:s, s:s, s?o}", "title", &title, "severity", &sev, "services",
                    &services) ||
        (services && !json_is_array(services))) {
        api_error(a, -FB_EINVAL, "body needs \"title\", \"severity\" (SEV1..SEV4) and may have "
                                 "\"services\": [...]");
    } else {
        rc = incident_declare(a->ctl->incidents, title, sev,
                              services ? json_incref(services) : json_array(), a->token->name, id,
                              sizeof(id), msg, sizeof(msg));
        if (rc)
            api_error(a, rc, "%s", msg);
        else
            reply_incident(a, 201, id);
    }
    json_decref(body);
}

static const char *body_str(json_t *body, const char *key)
{
    return json_string_value(json_object_get(body, key));
}

/* POST /incidents/{id}/{verb}: each verb reads its fields from the body. */
static void change(struct api_ctx *a, const char *id, const char *verb)
{
    struct incidents *is = a->ctl->incidents;
    const char *who = a->token->name;
    json_t *body = a->call->req.body_len ? api_body(a) : json_object();
    char msg[256] = "";
    int rc;

    if (!body)
        return;
    if (!strcmp(verb, "assign"))
        rc = incident_assign(is, id, body_str(body, "role"), body_str(body, "name"), who, msg,
                             sizeof(msg));
    else if (!strcmp(verb, "notes"))
        rc = incident_note(is, id, body_str(body, "text"), who, msg, sizeof(msg));
    else if (!strcmp(verb, "status"))
        rc = incident_set_status(is, id, body_str(body, "status"), who, msg, sizeof(msg));
    else if (!strcmp(verb, "resolve"))
        rc = incident_set_status(is, id, "resolved", who, msg, sizeof(msg));
    else if (!strcmp(verb, "checklist"))
        rc = incident_check(is, id, body_str(body, "item") ? body_str(body, "item") : "",
                            !json_is_false(json_object_get(body, "done")), who, msg, sizeof(msg));
    else if (!strcmp(verb, "actions"))
        rc = incident_action(is, id, "add", body, who, msg, sizeof(msg));
    else {
        json_decref(body);
        api_error(a, -FB_ENOENT, "no incident command '%s'", verb);
        return;
    }
    json_decref(body);
    if (rc)
        api_error(a, rc, "%s", msg);
    else
        reply_incident(a, 200, id);
}

static void publish(struct api_ctx *a, const char *id)
{
    json_t *body = api_body(a), *draft;
    char msg[512] = "";
    int rc;

    if (!body)
        return;
    if (json_is_true(json_object_get(body, "draft"))) {
        draft = incident_draft(a->ctl->incidents, id, body_str(body, "audience"), msg,
                               sizeof(msg));
        if (!draft) {
            json_decref(body);
            api_error(a, msg[0] ? -FB_ENOENT : -FB_EINVAL, "%s",
                      msg[0] ? msg : "audience must be internal or public");
            return;
        }
        if (json_object_get(body, "next_update") || json_object_get(body, "next_update_ms"))
            json_object_del(draft, "next_update_ms"); /* the caller's time wins */
        json_object_update_missing(body, draft);
        json_decref(draft);
        json_object_del(body, "draft");
    }
    rc = incident_publish(a->ctl->incidents, id, body, a->token->name, msg, sizeof(msg));
    json_decref(body);
    if (rc)
        api_error(a, rc, "%s", msg);
    else
        reply_incident(a, 201, id);
}

static void draft(struct api_ctx *a, const char *id)
{
    char aud[32] = "internal", msg[256] = "";
    json_t *d;

    api_query(a, "audience", aud, sizeof(aud));
    d = incident_draft(a->ctl->incidents, id, aud, msg, sizeof(msg));
    if (!d)
        api_error(a, msg[0] ? -FB_ENOENT : -FB_EINVAL, "%s",
                  msg[0] ? msg : "audience must be internal or public");
    else
        api_reply(a, 200, d);
}

static void action_done(struct api_ctx *a, const char *id, const char *n)
{
    char msg[256] = "", *end;
    long v = strtol(n, &end, 10);
    json_t *body = json_pack("{s:I}", "id", (json_int_t)(*end ? 0 : v));
    int rc = incident_action(a->ctl->incidents, id, "done", body, a->token->name, msg,
                             sizeof(msg));

    json_decref(body);
    if (rc)
        api_error(a, rc, "%s", msg);
    else
        reply_incident(a, 200, id);
}

static void debug_clock(struct api_ctx *a)
{
    const char *on = getenv("FIREBREAK_DEBUG_CLOCK");
    json_t *body;
    json_int_t ms = 0;

    if (!on || strcmp(on, "1")) {
        api_error(a, -FB_ENOENT, "the debug clock is off (FIREBREAK_DEBUG_CLOCK=1 turns it on)");
        return;
    }
    body = api_body(a);
    if (!body)
        return;
    if (json_unpack(body, "{s:I}", "advance_ms", &ms) || ms < 0) {
        json_decref(body);
        api_error(a, -FB_EINVAL, "body needs \"advance_ms\" >= 0");
        return;
    }
    json_decref(body);
    incidents_advance_clock(a->ctl->incidents, ms);
    incidents_tick(a->ctl->incidents);
    api_reply(a, 200, json_pack("{s:I}", "now_ms", (json_int_t)incidents_now(a->ctl->incidents)));
}

static bool post_route(struct api_ctx *a, const char *id)
{
    const char *verb = a->seg[2];

    if (!api_allowed(a, ROLE_RESPONDER))
        return true;
    if (a->nseg == 3 && !strcmp(verb, "updates"))
        publish(a, id);
    else if (a->nseg == 3 && !strcmp(verb, "postmortem"))
        with_timeline(a, id, TL_POSTMORTEM);
    else if (a->nseg == 5 && !strcmp(verb, "actions") && !strcmp(a->seg[4], "done"))
        action_done(a, id, a->seg[3]);
    else if (a->nseg == 3)
        change(a, id, verb);
    else
        api_error(a, -FB_ENOENT, "no such endpoint");
    return true;
}

bool api_incidents(struct api_ctx *a)
{
    bool get = api_method(a, "GET") || api_method(a, "HEAD");

    if (!strcmp(a->seg[0], "debug") && a->nseg == 2 && !strcmp(a->seg[1], "clock")) {
        if (api_allowed(a, ROLE_ADMIN))
            debug_clock(a);
        return true;
    }
    if (strcmp(a->seg[0], "incidents"))
        return false;
    if (a->nseg == 1) {
        /* api_allowed answers a refusal itself: nothing may touch the call after. */
        if (get) {
            if (api_allowed(a, ROLE_VIEWER))
                api_reply(a, 200,
                          json_pack("{s:o}", "incidents", incidents_list(a->ctl->incidents)));
        } else if (api_method(a, "POST")) {
            if (api_allowed(a, ROLE_RESPONDER))
                declare(a);
        } else {
            api_error(a, -FB_EMETHOD, "use GET or POST here");
        }
        return true;
    }
    if (get) {
        if (!api_allowed(a, ROLE_VIEWER))
            return true;
        if (a->nseg == 2)
            with_timeline(a, a->seg[1], TL_SHOW);
        else if (a->nseg == 3 && !strcmp(a->seg[2], "timeline"))
            with_timeline(a, a->seg[1], TL_TIMELINE);
        else if (a->nseg == 4 && !strcmp(a->seg[2], "updates") && !strcmp(a->seg[3], "draft"))
            draft(a, a->seg[1]);
        else
            api_error(a, -FB_ENOENT, "no such endpoint");
        return true;
    }
    if (!api_method(a, "POST")) {
        api_error(a, -FB_EMETHOD, "use GET or POST here");
        return true;
    }
    return post_route(a, a->seg[1]);
}
