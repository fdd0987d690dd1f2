/*
 * statuspage.c: the public status page.
 *
 * Each service is a component; its status follows the worst open incident
 * touching it (SEV1 major_outage, SEV2 partial_outage, SEV3
 * degraded_performance, SEV4 or none operational); once an incident is
 * contained its component shows at most degraded_performance. Incidents show a public
 * name ("Service disruption: shop" unless a public title was given) and only
 * their public updates. Nothing internal reaches this page: no release or
 * rollout names, endpoints, figures meant for responders, or user keys; the
 * page is built from an allow-list of fields, never by copying an incident.
 *
 *   GET /                          HTML
 *   GET /api/v2/summary.json       page, status, components, incidents (unresolved)
 *   GET /api/v2/status.json        page, status
 *   GET /api/v2/components.json    page, components
 *   GET /api/v2/incidents.json     page, incidents (the latest 50)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"
#include "firebreak/http_server.h"
#include "firebreak/incident.h"
#include "firebreak/statuspage.h"

#define HISTORY_MAX 50

static struct http_server *status_http;

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "";
}

static int sev_rank(const char *sev)
{
    return !strcmp(sev, "SEV1") ? 3 : !strcmp(sev, "SEV2") ? 2 : !strcmp(sev, "SEV3") ? 1 : 0;
}

static const char *const comp_status[] = {"operational", "degraded_performance",
                                          "partial_outage", "major_outage"};
static const char *const impact_names[] = {"none", "minor", "major", "critical"};
static const char *const indicator_desc[] = {"All Systems Operational", "Minor Service Outage",
                                             "Partial System Outage", "Major System Outage"};

static bool open_inc(const json_t *inc)
{
    return strcmp(jstr(inc, "status"), "resolved") != 0;
}

/* Worst open severity touching service (0 when none). */
static int service_rank(json_t *incs, const char *service)
{
    size_t i, k;
    json_t *inc, *s;
    int worst = 0, r;

    json_array_foreach(incs, i, inc)
    {
        if (!open_inc(inc))
            continue;
        json_array_foreach(json_object_get(inc, "services"), k, s)
        {
            if (json_is_string(s) && !strcmp(json_string_value(s), service)) {
                r = sev_rank(jstr(inc, "severity"));
                /* Contained (rolled back): the service works again while the
                 * incident stays open, so at most degraded. */
                if (json_integer_value(json_object_get(json_object_get(inc, "times"),
                                                       "contained_ms")) &&
                    r > 1)
                    r = 1;
                if (r > worst)
                    worst = r;
            }
        }
    }
    return worst;
}

static json_t *page_json(struct server *srv)
{
    char url[300];

    snprintf(url, sizeof(url), "http://%s", srv->cfg->status_listen.text);
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", "firebreak", "name",
                     srv->cfg->status_title ? srv->cfg->status_title : "Status", "url", url,
                     "time_zone", "Etc/UTC", "updated_at", api_time(fb_wall_ms()));
}

static json_t *components_json(struct server *srv, json_t *incs, int *worst)
{
    const struct config *cfg = srv->cfg;
    json_t *arr = json_array();
    size_t i;
    int r;

    *worst = 0;
    for (i = 0; i < cfg->nservices; i++) {
        r = service_rank(incs, cfg->services[i].name);
        if (r > *worst)
            *worst = r;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:n, s:i, s:b, s:n, s:b, s:b, s:s}", "id",
                           cfg->services[i].name, "name", cfg->services[i].name, "status",
                           comp_status[r], "description", "position", (int)i + 1, "showcase",
                           true, "group_id", "group", false, "only_show_if_degraded", false,
                           "page_id", "firebreak"));
    }
    return arr;
}

static json_t *public_updates(const json_t *inc)
{
    json_t *out = json_array(), *u;
    size_t i, n = json_array_size(json_object_get(inc, "updates"));

    /* Newest first, as the Statuspage API lists them. */
    for (i = n; i-- > 0;) {
        u = json_array_get(json_object_get(inc, "updates"), i);
        if (strcmp(jstr(u, "audience"), "public"))
            continue;
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", jstr(u, "published"),
                           "status", jstr(u, "status"), "body", jstr(u, "text"), "incident_id",
                           jstr(inc, "id"), "created_at", jstr(u, "published"), "updated_at",
                           jstr(u, "published"), "display_at", jstr(u, "published")));
    }
    return out;
}

static json_t *incident_public(const json_t *inc)
{
    const json_t *t = json_object_get(inc, "times");
    const char *pt = jstr(inc, "public_title");
    json_t *services = json_object_get(inc, "services"), *s;
    char name[300];
    struct fb_buf b;
    size_t i;

    fb_buf_init(&b, 256);
    json_array_foreach(services, i, s) fb_buf_printf(&b, "%s%s", i ? ", " : "",
                                                     json_string_value(s));
    snprintf(name, sizeof(name), "%s%s", *pt ? pt : "Service disruption: ",
             *pt ? "" : (b.data ? b.data : "our service"));
    fb_buf_release(&b);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:o, s:s}", "id",
                     jstr(inc, "id"), "name", name, "status", jstr(inc, "status"), "impact",
                     impact_names[sev_rank(jstr(inc, "severity"))], "created_at",
                     jstr(t, "declared"), "started_at",
                     json_object_get(t, "impact_start_ms") &&
                             !json_is_null(json_object_get(t, "impact_start"))
                         ? json_object_get(t, "impact_start")
                         : json_object_get(t, "declared"),
                     "resolved_at", json_object_get(t, "resolved"), "page_id", "firebreak",
                     "incident_updates", public_updates(inc), "shortlink", "");
}

static json_t *incidents_public(json_t *incs, bool only_open, size_t max)
{
    json_t *arr = json_array(), *inc;
    size_t n = json_array_size(incs), i;

    for (i = n; i-- > 0 && json_array_size(arr) < max;) {
        inc = json_array_get(incs, i);
        if (!only_open || open_inc(inc))
            json_array_append_new(arr, incident_public(inc));
    }
    return arr;
}

static void put_html(struct fb_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fb_buf_puts(b, "&lt;"); break;
        case '>': fb_buf_puts(b, "&gt;"); break;
        case '&': fb_buf_puts(b, "&amp;"); break;
        case '"': fb_buf_puts(b, "&quot;"); break;
        default: fb_buf_append(b, s, 1);
        }
    }
}

static void html_incident(struct fb_buf *b, json_t *pi)
{
    size_t k;
    json_t *u;

    fb_buf_puts(b, "<article class=\"incident\"><h3>");
    put_html(b, jstr(pi, "name"));
    fb_buf_printf(b, "</h3><p class=\"meta\">%s &middot; impact %s &middot; since ",
                  jstr(pi, "status"), jstr(pi, "impact"));
    put_html(b, jstr(pi, "started_at"));
    fb_buf_puts(b, "</p>");
    json_array_foreach(json_object_get(pi, "incident_updates"), k, u)
    {
        fb_buf_puts(b, "<div class=\"update\"><b>");
        put_html(b, jstr(u, "status"));
        fb_buf_puts(b, "</b> <time>");
        put_html(b, jstr(u, "created_at"));
        fb_buf_puts(b, "</time><p>");
        put_html(b, jstr(u, "body"));
        fb_buf_puts(b, "</p></div>");
    }
    fb_buf_puts(b, "</article>");
}

static void html_page(struct server *srv, json_t *incs, struct fb_buf *b)
{
    int worst;
    json_t *comps = components_json(srv, incs, &worst), *c, *open, *hist, *pi;
    size_t i;

    fb_buf_puts(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    put_html(b, srv->cfg->status_title ? srv->cfg->status_title : "Status");
    fb_buf_puts(b, "</title><style>body{font:16px system-ui,sans-serif;max-width:46em;margin:2em "
                   "auto;padding:0 1em;color:#222}.banner{padding:1em;border-radius:6px;color:"
                   "#fff}.s0{background:#2e7d32}.s1{background:#f9a825}.s2{background:#ef6c00}"
                   ".s3{background:#c62828}li{list-style:none;padding:.4em 0;border-bottom:1px "
                   "solid #eee}.st{float:right}.meta{color:#666}.update{margin:.5em 0}"
                   "</style></head><body><h1>");
    put_html(b, srv->cfg->status_title ? srv->cfg->status_title : "Status");
    fb_buf_printf(b, "</h1><p class=\"banner s%d\" id=\"indicator\">%s</p><h2>Components</h2>"
                     "<ul id=\"components\">",
                  worst, indicator_desc[worst]);
    json_array_foreach(comps, i, c)
    {
        fb_buf_puts(b, "<li>");
        put_html(b, jstr(c, "name"));
        fb_buf_printf(b, "<span class=\"st\">%s</span></li>", jstr(c, "status"));
    }
    fb_buf_puts(b, "</ul><h2>Open incidents</h2><section id=\"open\">");
    open = incidents_public(incs, true, HISTORY_MAX);
    json_array_foreach(open, i, pi) html_incident(b, pi);
    if (!json_array_size(open))
        fb_buf_puts(b, "<p>No open incidents.</p>");
    fb_buf_puts(b, "</section><h2>Recent history</h2><section id=\"history\">");
    hist = incidents_public(incs, false, 10);
    json_array_foreach(hist, i, pi)
    {
        if (strcmp(jstr(pi, "status"), "resolved"))
            continue;
        html_incident(b, pi);
    }
    fb_buf_puts(b, "</section></body></html>\n");
    json_decref(comps);
    json_decref(open);
    json_decref(hist);
}

static void route(struct server *srv, const struct http_request *req, struct http_response *r)
{
    struct incidents *is = srv->control.incidents;
    json_t *incs = incidents_list(is), *out;
    char *text;
    int worst;
    const struct h1_span p = req->path;
#define IS(x) (p.len == strlen(x) && !memcmp(p.p, x, p.len))

    if (req->method != H1_M_GET && req->method != H1_M_HEAD) {
        http_response_json_error(r, -FB_EMETHOD, "use GET");
        goto out;
    }
    if (IS("/")) {
        r->content_type = "text/html; charset=utf-8";
        html_page(srv, incs, &r->body);
        goto out;
    }
    out = json_pack("{s:o}", "page", page_json(srv));
    if (IS("/api/v2/summary.json") || IS("/api/v2/status.json") ||
        IS("/api/v2/components.json")) {
        json_t *comps = components_json(srv, incs, &worst);

        if (!IS("/api/v2/status.json"))
            json_object_set(out, "components", comps);
        if (!IS("/api/v2/components.json"))
            json_object_set_new(out, "status",
                                json_pack("{s:s, s:s}", "indicator", impact_names[worst],
                                          "description", indicator_desc[worst]));
        if (IS("/api/v2/summary.json")) {
            json_object_set_new(out, "incidents", incidents_public(incs, true, HISTORY_MAX));
            json_object_set_new(out, "scheduled_maintenances", json_array());
        }
        json_decref(comps);
    } else if (IS("/api/v2/incidents.json") || IS("/api/v2/incidents/unresolved.json")) {
        json_object_set_new(out, "incidents",
                            incidents_public(incs, IS("/api/v2/incidents/unresolved.json"),
                                             HISTORY_MAX));
    } else {
        json_decref(out);
        http_response_json_error(r, -FB_ENOENT, "no such page");
        goto out;
    }
    text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    fb_buf_puts(&r->body, text ? text : "{}");
    free(text);
out:
    json_decref(incs);
#undef IS
}

static void handle(void *arg, struct http_call *call)
{
    route(arg, &call->req, &call->resp);
    http_call_done(call);
}

int statuspage_start(struct server *srv)
{
    if (!srv->cfg->has_status_page)
        return 0;
    return http_server_new(srv->loop, &srv->cfg->status_listen, 0, handle, srv, &status_http);
}

void statuspage_stop(struct server *srv)
{
    if (status_http)
        http_server_close(status_http);
    status_http = NULL;
}
