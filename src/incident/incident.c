/*
 * incident.c: incidents: declaration, roles, checklist, measured impact,
 * reminders (state diagram in incident.h).
 *
 * An incident is a JSON document; this file owns its shape (docs/api.md):
 * id, title, severity, status, services, release, rollout, roles,
 * checklist, caused_by, fixed_by, evidence, times, durations, impact,
 * updates, actions. Every change is saved (kind "incident") and announced as
 * an event carrying the incident id, so the timeline is the event log.
 *
 * Impact is measured, never typed: impact_start is the first second in
 * which the bad release's error rate rose above stable's in the same second;
 * requests failed, peak error rate and writes come from the one-second
 * series; users affected from the affected-users set of the release. Time to
 * detect is counted from impact_start, not from the declaration.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "firebreak/affected.h"
#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/impact.h"
#include "firebreak/incident.h"
#include "firebreak/journal.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/postmortem.h"
#include "firebreak/prom.h"
#include "firebreak/rollout.h"
#include "firebreak/series.h"
#include "firebreak/server-t.h"
#include "firebreak/store.h"
#include "firebreak/updates.h"

#define TIMELINE_LEAD_MS (15 * 60 * 1000)
#define CHECKLIST_N 7

static const char *const checklist_items[CHECKLIST_N] = {
    "comprehend", "identify", "report", "contain", "learn", "execute", "sustain"};
static const char *const statuses[] = {"investigating", "identified", "monitoring", "resolved"};
static const char *const roles[] = {"commander", "comms", "ops", "scribe"};

struct incidents {
    struct control *ctl;
    json_t *all;          /* array of incident objects, oldest first */
    int64_t clock_offset_ms;
    uint64_t last_tick_ns;
    struct impact *impact; /* journal reader, used on the thread pool only */
    bool impact_busy;      /* one journal query at a time */
    uv_work_t work;
};

/* A journal query for one incident, run on the libuv thread pool. */
struct jq {
    struct incidents *is;
    char id[32];
    char service[ROUTE_NAME_MAX];
    char release[ROUTE_NAME_MAX];
    struct impact_filter f;
    struct impact_report rep;
    int rc;
};

int64_t incidents_now(const struct incidents *is)
{
    return fb_wall_ms() + is->clock_offset_ms;
}

void incidents_advance_clock(struct incidents *is, int64_t ms)
{
    is->clock_offset_ms += ms;
}

/* ---- small JSON helpers ---------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t jint(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static void set_time(json_t *times, const char *name, int64_t ms)
{
    char key[64];

    snprintf(key, sizeof(key), "%s_ms", name);
    json_object_set_new(times, key, ms ? json_integer(ms) : json_null());
    json_object_set_new(times, name, api_time(ms));
}

static int64_t get_time(const json_t *inc, const char *name)
{
    char key[64];

    snprintf(key, sizeof(key), "%s_ms", name);
    return jint(json_object_get(inc, "times"), key);
}

static bool in_list(const char *const *list, size_t n, const char *s)
{
    size_t i;

    for (i = 0; s && i < n; i++) {
        if (!strcmp(list[i], s))
            return true;
    }
    return false;
}

static void mark_due(json_t *inc);

json_t *incident_get(const struct incidents *is, const char *id)
{
    size_t i;
    json_t *inc;

    json_array_foreach(is->all, i, inc)
    {
        if (id && !strcmp(jstr(inc, "id"), id)) {
            mark_due(inc);
            return inc;
        }
    }
    return NULL;
}

static bool is_open(const json_t *inc)
{
    const char *st = jstr(inc, "status");

    return st && strcmp(st, "resolved");
}

static bool touches(const json_t *inc, const char *service)
{
    size_t i;
    json_t *s;

    json_array_foreach(json_object_get(inc, "services"), i, s)
    {
        if (service && json_is_string(s) && !strcmp(json_string_value(s), service))
            return true;
    }
    return false;
}

unsigned incidents_open_for(const struct incidents *is, const char *service)
{
    unsigned n = 0;
    size_t i;
    json_t *inc;

    json_array_foreach(is->all, i, inc)
    {
        if (is_open(inc) && (!service || touches(inc, service)))
            n++;
    }
    return n;
}

static json_t *open_for(const struct incidents *is, const char *service)
{
    size_t i;
    json_t *inc;

    json_array_foreach(is->all, i, inc)
    {
        if (is_open(inc) && touches(inc, service))
            return inc;
    }
    return NULL;
}

/* ---- persistence and events ------------------------------------------------ */

static void save(struct incidents *is, json_t *inc)
{
    control_save_doc(is->ctl, "incident", jstr(inc, "id"), inc);
}

/* An event about inc: carries its id, so it lands in its timeline. */
static void emit(struct incidents *is, json_t *inc, const char *type, const char *actor,
                 json_t *extra)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "incident", jstr(inc, "id"), "title",
                          jstr(inc, "title"), "severity", jstr(inc, "severity"), "status",
                          jstr(inc, "status"));
    json_t *svc = json_array_get(json_object_get(inc, "services"), 0);

    if (extra) {
        json_object_update(d, extra);
        json_decref(extra);
    }
    control_event(is->ctl, type, actor, json_string_value(svc), jstr(inc, "release"), d);
}

/* ---- checklist and times ------------------------------------------------------ */

static void check_item(struct incidents *is, json_t *inc, const char *item, bool done)
{
    json_t *cl = json_object_get(inc, "checklist"), *it = json_object_get(cl, item);

    if (!it)
        return;
    if (done == !strcmp(jstr(it, "state"), "done"))
        return;
    json_object_set_new(it, "state", json_string(done ? "done" : "open"));
    json_object_set_new(it, "time", done ? api_time(incidents_now(is)) : json_null());
}

static json_t *checklist_new(void)
{
    json_t *cl = json_object();
    unsigned i;

    for (i = 0; i < CHECKLIST_N; i++)
        json_object_set_new(cl, checklist_items[i],
                            json_pack("{s:s, s:n}", "state", "open", "time"));
    return cl;
}

static void durations(json_t *inc)
{
    /* Without a measured impact start (a declared incident), count from the
     * declaration. */
    int64_t start = get_time(inc, "impact_start") ? get_time(inc, "impact_start")
                                                   : get_time(inc, "declared");
    int64_t det = get_time(inc, "detected");
    int64_t con = get_time(inc, "contained"), res = get_time(inc, "resolved");
    json_t *d = json_object();

    json_object_set_new(d, "time_to_detect_s",
                        start && det ? json_real((det - start) / 1000.0) : json_null());
    json_object_set_new(d, "time_to_contain_s",
                        start && con ? json_real((con - start) / 1000.0) : json_null());
    json_object_set_new(d, "time_to_resolve_s",
                        start && res ? json_real((res - start) / 1000.0) : json_null());
    json_object_set_new(inc, "durations", d);
}

/* ---- impact --------------------------------------------------------------------- */

/*
 * Severity from the measured impact (docs/incidents.md): SEV1 for a wide
 * outage (1000 users, or half of at least 100 requests failing), SEV2 for a
 * real one or any write by the bad release (data may need repair), SEV3 for
 * any failure users saw, SEV4 otherwise. A peak over a handful of requests
 * says little, so the peak rules need a minimum of failed requests.
 */
static const char *suggest_severity(double peak, uint64_t users, uint64_t writes,
                                    uint64_t failed)
{
    if (users >= 1000 || (peak >= 0.5 && failed >= 100))
        return "SEV1";
    if (users >= 100 || (peak >= 0.05 && failed >= 10) || writes > 0)
        return "SEV2";
    if (users > 0 || failed > 0)
        return "SEV3";
    return "SEV4";
}

struct impact_sums {
    int64_t start_ms;
    uint64_t failed;
    uint64_t served;
    uint64_t writes;
    double peak;
};

/* Sums the bad release's series over [from, to], and finds where its error
 * rate first rose above stable's. */
static void impact_scan(struct incidents *is, const struct release_metrics *bad,
                        const struct release_metrics *stable, int64_t from, int64_t to,
                        struct impact_sums *out)
{
    struct series_point *b = malloc(SERIES_POINTS * sizeof(*b));
    struct series_point *s = malloc(SERIES_POINTS * sizeof(*s));
    unsigned nb, ns, i, k = 0;

    memset(out, 0, sizeof(*out));
    if (!b || !s)
        goto out;
    nb = series_points(is->ctl->series, bad, b, SERIES_POINTS);
    ns = stable ? series_points(is->ctl->series, stable, s, SERIES_POINTS) : 0;
    for (i = 0; i < nb; i++) {
        const struct series_point *p = &b[i];
        double rate, srate = 0;

        if (p->time_ms < from || (to && p->time_ms - 1000 > to))
            continue;
        while (k < ns && s[k].time_ms < p->time_ms)
            k++;
        if (k < ns && s[k].time_ms == p->time_ms && s[k].requests)
            srate = (double)s[k].errors / (double)s[k].requests;
        out->failed += p->errors;
        out->served += p->requests;
        out->writes += p->writes;
        rate = p->requests ? (double)p->errors / (double)p->requests : 0;
        if (rate > out->peak)
            out->peak = rate;
        if (!out->start_ms && p->errors && rate > srate)
            out->start_ms = p->time_ms - 1000;
    }
out:
    free(b);
    free(s);
}

/* Figures already measured never go down: after a restart the one-second
 * series starts empty, and a later window may see less than an earlier one. */
static void keep_max(const json_t *inc, struct impact_sums *sum, uint64_t *users)
{
    const json_t *old = json_object_get(inc, "impact");
    uint64_t v;

#define KEEP(field, var)                                                                        \
    v = (uint64_t)json_integer_value(json_object_get(old, field));                              \
    if (v > (var))                                                                             \
        (var) = v;
    KEEP("requests_failed", sum->failed)
    KEEP("requests_served", sum->served)
    KEEP("writes", sum->writes)
    KEEP("users_affected", *users)
#undef KEEP
    if (json_number_value(json_object_get(old, "peak_error_rate")) > sum->peak)
        sum->peak = json_number_value(json_object_get(old, "peak_error_rate"));
}

static void measure(struct incidents *is, json_t *inc)
{
    struct metrics *m = is->ctl->srv->metrics;
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));
    const char *rel = jstr(inc, "release"), *stable = jstr(inc, "stable");
    const struct release_metrics *bad, *st;
    int64_t from = jint(inc, "watch_from_ms"), con = get_time(inc, "contained");
    int64_t end = con ? con + 2000 : 0, start;
    json_t *times = json_object_get(inc, "times");
    struct impact_sums sum;
    uint64_t users;

    if (!svc || !rel)
        return;
    bad = metrics_release_find(m, svc, rel);
    st = stable ? metrics_release_find(m, svc, stable) : NULL;
    if (!bad)
        return;
    impact_scan(is, bad, st, from, end, &sum);
    start = get_time(inc, "impact_start");
    if (sum.start_ms && sum.start_ms < from)
        sum.start_ms = from; /* the second began before the release took traffic */
    if (sum.start_ms && (!start || sum.start_ms < start)) {
        start = sum.start_ms;
        set_time(times, "impact_start", start);
    }
    users = affected_count(is->ctl->srv->affected, bad, start ? start : from, end);
    keep_max(inc, &sum, &users);
    json_object_set_new(
        inc, "impact",
        json_pack("{s:s, s:I, s:I, s:f, s:I, s:I, s:o, s:I}", "release", rel, "requests_failed",
                  (json_int_t)sum.failed, "requests_served", (json_int_t)sum.served,
                  "peak_error_rate", sum.peak, "users_affected", (json_int_t)users,
                  "writes", (json_int_t)sum.writes, "duration_s",
                  start && con ? json_real((con - start) / 1000.0) : json_null(),
                  "users_dropped", (json_int_t)affected_dropped(is->ctl->srv->affected)));
    if (json_object_get(inc, "journal_impact"))
        json_object_set(json_object_get(inc, "impact"), "journal",
                        json_object_get(inc, "journal_impact"));
    json_object_set_new(inc, "suggested_severity",
                        json_string(suggest_severity(sum.peak, users, sum.writes, sum.failed)));
    /* An automatic incident's severity follows the measurement upwards ("if
     * unsure, pick the higher"); a person's choice is never lowered. */
    if (json_is_true(json_object_get(inc, "automatic")) &&
        strcmp(jstr(inc, "suggested_severity"), jstr(inc, "severity")) < 0)
        json_object_set(inc, "severity", json_object_get(inc, "suggested_severity"));
    if ((sum.writes || json_object_get(inc, "journal_impact")) &&
        !json_object_get(json_object_get(inc, "checklist"), "data_checked"))
        json_object_set_new(json_object_get(inc, "checklist"), "data_checked",
                            json_pack("{s:s, s:n}", "state", "open", "time"));
    check_item(is, inc, "comprehend", true);
    durations(inc);
}

/* ---- declaration ------------------------------------------------------------- */

static json_t *incident_new(struct incidents *is, const char *title, const char *severity,
                            json_t *services, bool automatic)
{
    int64_t now = incidents_now(is);
    size_t n = json_array_size(is->all) + 1;
    json_t *last = json_array_get(is->all, json_array_size(is->all) - 1);
    char id[32];
    json_t *inc, *times = json_object();
    unsigned i;

    if (last)
        n = (size_t)jint(last, "number") + 1;
    snprintf(id, sizeof(id), "INC-%zu", n);
    inc = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o}", "id", id,
                    "number", (json_int_t)n, "title", title, "severity", severity, "status",
                    automatic ? "identified" : "investigating", "services", services,
                    "automatic", automatic, "roles", json_object(), "checklist",
                    checklist_new(), "updates", json_array(), "actions", json_array());
    for (i = 0; i < 4; i++)
        json_object_set_new(json_object_get(inc, "roles"), roles[i], json_null());
    set_time(times, "impact_start", 0);
    set_time(times, "detected", 0);
    set_time(times, "declared", now);
    set_time(times, "contained", 0);
    set_time(times, "resolved", 0);
    json_object_set_new(inc, "times", times);
    json_object_set_new(inc, "watch_from_ms", json_integer(now - TIMELINE_LEAD_MS));
    json_object_set_new(inc, "impact", json_object());
    json_object_set_new(inc, "caused_by", json_null());
    json_object_set_new(inc, "fixed_by", json_null());
    durations(inc);
    json_array_append(is->all, inc);
    return inc;
}

static bool severity_valid(const char *s)
{
    return s && strlen(s) == 4 && !strncmp(s, "SEV", 3) && s[3] >= '1' && s[3] <= '4';
}

int incident_declare(struct incidents *is, const char *title, const char *severity,
                     json_t *services, const char *actor, char *id_out, size_t idlen, char *msg,
                     size_t msglen)
{
    json_t *inc;
    size_t i;
    json_t *s;

    if (!title || !*title || strlen(title) > 200) {
        snprintf(msg, msglen, "title: 1 to 200 characters");
        json_decref(services);
        return -FB_EINVAL;
    }
    if (!severity_valid(severity)) {
        snprintf(msg, msglen, "severity must be SEV1, SEV2, SEV3 or SEV4 (if unsure, pick the "
                              "higher)");
        json_decref(services);
        return -FB_EINVAL;
    }
    json_array_foreach(services, i, s)
    {
        if (!json_is_string(s) || !control_service(is->ctl, json_string_value(s))) {
            snprintf(msg, msglen, "services[%zu]: no such service", i);
            json_decref(services);
            return -FB_ENOENT;
        }
    }
    inc = incident_new(is, title, severity, services, false);
    snprintf(id_out, idlen, "%s", jstr(inc, "id"));
    save(is, inc);
    emit(is, inc, "incident_declared", actor, NULL);
    json_decref(inc);
    return 0;
}

/* An automatic rollback: declare, or join the open incident of the service. */
static void on_rollback(struct incidents *is, const char *service, const char *release,
                        json_t *details)
{
    const char *trigger = jstr(details, "trigger");
    const struct rollout *r = rollout_find(is->ctl->rollouts, service);
    int64_t now = incidents_now(is);
    json_t *inc, *times;
    char title[256], rid[80];
    bool joined;

    if (!trigger || (strcmp(trigger, "judge") && strcmp(trigger, "guard")) || !release)
        return;
    inc = open_for(is, service);
    joined = inc != NULL;
    if (!joined) {
        snprintf(title, sizeof(title), "%s release %s rolled back automatically (%s)", service,
                 release, trigger);
        inc = incident_new(is, title, "SEV2", json_pack("[s]", service), true);
        json_decref(inc);
    }
    snprintf(rid, sizeof(rid), "%s#%lld", service, r ? (long long)r->id : 0LL);
    json_object_set_new(inc, "release", json_string(release));
    json_object_set_new(inc, "stable", json_string(jstr(details, "stable")));
    json_object_set_new(inc, "rollout", json_string(rid));
    if (r)
        json_object_set_new(inc, "watch_from_ms", json_integer(r->started_ms));
    json_object_set_new(inc, "caused_by",
                        json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "rollout", "rollout",
                                  rid, "service", service, "release", release, "started_ms",
                                  (json_int_t)(r ? r->started_ms : 0)));
    json_object_set_new(inc, "fixed_by",
                        json_pack("{s:s, s:s, s:s, s:I}", "type", "rollback", "trigger", trigger,
                                  "reason", jstr(details, "reason") ? jstr(details, "reason") : "",
                                  "time_ms", (json_int_t)now));
    if (json_object_get(details, "evidence"))
        json_object_set(inc, "evidence", json_object_get(details, "evidence"));
    times = json_object_get(inc, "times");
    if (!get_time(inc, "detected"))
        set_time(times, "detected", now);
    if (!get_time(inc, "contained"))
        set_time(times, "contained", now);
    json_object_set_new(inc, "status", json_string("identified"));
    check_item(is, inc, "contain", true);
    measure(is, inc);
    json_object_set_new(inc, "severity", json_string(jstr(inc, "suggested_severity")));
    save(is, inc);
    emit(is, inc, joined ? "incident_updated" : "incident_declared", "system",
         json_pack("{s:s, s:b, s:o}", "cause", rid, "automatic", true, "impact",
                   json_deep_copy(json_object_get(inc, "impact"))));
}

static void on_event(void *arg, const char *type, const char *service, const char *release,
                     json_t *details)
{
    if (!strcmp(type, "rollback") && service)
        on_rollback(arg, service, release, details);
}

/* ---- changes by people ---------------------------------------------------------- */

static json_t *find_or_fail(struct incidents *is, const char *id, char *msg, size_t msglen)
{
    json_t *inc = incident_get(is, id);

    if (!inc)
        snprintf(msg, msglen, "no incident '%s'", id ? id : "");
    return inc;
}

int incident_assign(struct incidents *is, const char *id, const char *role, const char *name,
                    const char *actor, char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);

    if (!inc)
        return -FB_ENOENT;
    if (!in_list(roles, 4, role)) {
        snprintf(msg, msglen, "role must be commander, comms, ops or scribe");
        return -FB_EINVAL;
    }
    if (!name || !*name || strlen(name) > 100) {
        snprintf(msg, msglen, "name: 1 to 100 characters");
        return -FB_EINVAL;
    }
    json_object_set_new(json_object_get(inc, "roles"), role, json_string(name));
    if (!strcmp(role, "commander"))
        check_item(is, inc, "identify", true);
    save(is, inc);
    emit(is, inc, "incident_role", actor, json_pack("{s:s, s:s}", "role", role, "name", name));
    return 0;
}

int incident_note(struct incidents *is, const char *id, const char *text, const char *actor,
                  char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);

    if (!inc)
        return -FB_ENOENT;
    if (!text || !*text || strlen(text) > 4000) {
        snprintf(msg, msglen, "note: 1 to 4000 characters");
        return -FB_EINVAL;
    }
    emit(is, inc, "incident_note", actor, json_pack("{s:s}", "text", text));
    return 0;
}

int incident_set_status(struct incidents *is, const char *id, const char *status,
                        const char *actor, char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);
    const char *before;

    if (!inc)
        return -FB_ENOENT;
    if (!in_list(statuses, 4, status)) {
        snprintf(msg, msglen, "status must be investigating, identified, monitoring or "
                              "resolved");
        return -FB_EINVAL;
    }
    before = jstr(inc, "status");
    if (!strcmp(before, "resolved")) {
        snprintf(msg, msglen, "%s is resolved", id);
        return -FB_ECONFLICT;
    }
    if (!strcmp(status, "resolved")) {
        set_time(json_object_get(inc, "times"), "resolved", incidents_now(is));
        measure(is, inc);
        durations(inc);
    }
    json_object_set_new(inc, "status", json_string(status));
    save(is, inc);
    emit(is, inc, !strcmp(status, "resolved") ? "incident_resolved" : "incident_status", actor,
         NULL);
    return 0;
}

int incident_check(struct incidents *is, const char *id, const char *item, bool done,
                   const char *actor, char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);

    if (!inc)
        return -FB_ENOENT;
    if (!json_object_get(json_object_get(inc, "checklist"), item)) {
        snprintf(msg, msglen, "no checklist item '%s' (comprehend, identify, report, contain, "
                              "learn, execute, sustain, data_checked)", item);
        return -FB_EINVAL;
    }
    check_item(is, inc, item, done);
    save(is, inc);
    emit(is, inc, "incident_checklist", actor,
         json_pack("{s:s, s:s}", "item", item, "state", done ? "done" : "open"));
    return 0;
}

json_t *incident_draft(struct incidents *is, const char *id, const char *audience, char *msg,
                       size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);

    if (!inc)
        return NULL;
    if (is_open(inc))
        measure(is, inc);
    return updates_draft(inc, audience, incidents_now(is));
}

int incident_publish(struct incidents *is, const char *id, json_t *update, const char *actor,
                     char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen), *u;
    int rc;

    if (!inc)
        return -FB_ENOENT;
    rc = updates_check(update, inc, incidents_now(is), msg, msglen);
    if (rc)
        return rc;
    u = json_deep_copy(update);
    json_object_set_new(u, "published", api_time(incidents_now(is)));
    json_object_set_new(u, "published_ms", json_integer(incidents_now(is)));
    json_object_set_new(u, "author", json_string(actor));
    json_array_append_new(json_object_get(inc, "updates"), u);
    json_object_set(inc, "next_update_ms", json_object_get(u, "next_update_ms"));
    json_object_del(inc, "reminded_ms");
    if (json_object_get(u, "status") && in_list(statuses, 3, jstr(u, "status")))
        json_object_set(inc, "status", json_object_get(u, "status"));
    check_item(is, inc, "report", true);
    save(is, inc);
    emit(is, inc, "incident_update", actor,
         json_pack("{s:s, s:s}", "audience", jstr(u, "audience"), "text", jstr(u, "text")));
    return 0;
}

int incident_action(struct incidents *is, const char *id, const char *verb, json_t *body,
                    const char *actor, char *msg, size_t msglen)
{
    static const char *const types[] = {"prevent", "detect", "mitigate", "process"};
    json_t *inc = find_or_fail(is, id, msg, msglen), *actions, *a;
    const char *type = NULL, *text = NULL, *owner = "";
    json_int_t n = 0;

    if (!inc)
        return -FB_ENOENT;
    actions = json_object_get(inc, "actions");
    if (!strcmp(verb, "add")) {
        if (json_unpack(body, "{s:s, s:s, s?s}", "type", &type, "text", &text, "owner", &owner) ||
            !in_list(types, 4, type) || !*text) {
            snprintf(msg, msglen, "an action needs type (prevent, detect, mitigate, process) "
                                  "and text; owner is optional");
            return -FB_EINVAL;
        }
        a = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)json_array_size(actions) + 1,
                      "type", type, "text", text, "owner", owner, "status", "open");
        json_array_append_new(actions, a);
    } else if (!strcmp(verb, "done")) {
        if (json_unpack(body, "{s:I}", "id", &n) || n < 1 ||
            (size_t)n > json_array_size(actions)) {
            snprintf(msg, msglen, "give the action's id (1 to %zu)", json_array_size(actions));
            return -FB_EINVAL;
        }
        a = json_array_get(actions, (size_t)n - 1);
        json_object_set_new(a, "status", json_string("done"));
    } else {
        snprintf(msg, msglen, "action verbs: add, done");
        return -FB_EINVAL;
    }
    save(is, inc);
    emit(is, inc, "incident_action", actor, json_pack("{s:s, s:O}", "verb", verb, "action", a));
    return 0;
}

int incident_postmortem(struct incidents *is, const char *id, json_t *timeline, char **markdown,
                        char *path, size_t pathlen, char *msg, size_t msglen)
{
    json_t *inc = find_or_fail(is, id, msg, msglen);
    struct fb_buf md;
    char dir[4200];
    FILE *f;
    int rc = -FB_EIO;

    if (!inc)
        return -FB_ENOENT;
    fb_buf_init(&md, 4u << 20);
    if (postmortem_write(inc, timeline, &md)) {
        snprintf(msg, msglen, "the postmortem is too large to write");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s/postmortems", is->ctl->state_dir);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(msg, msglen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    snprintf(path, pathlen, "%s/%s.md", dir, id);
    f = fopen(path, "w");
    if (!f || fwrite(md.data, 1, md.len, f) != md.len || fclose(f)) {
        if (f)
            fclose(f);
        snprintf(msg, msglen, "cannot write %s", path);
        goto out;
    }
    json_object_set_new(inc, "postmortem",
                        json_pack("{s:s, s:o}", "path", path, "written",
                                  api_time(incidents_now(is))));
    check_item(is, inc, "sustain", true);
    save(is, inc);
    emit(is, inc, "postmortem_written", "system", json_pack("{s:s}", "path", path));
    if (markdown) {
        *markdown = fb_buf_take(&md);
    }
    rc = 0;
out:
    fb_buf_release(&md);
    return rc;
}

/* ---- views ---------------------------------------------------------------------- */

/* Resolved SEV1 and SEV2 incidents owe a postmortem until one is written. */
static void mark_due(json_t *inc)
{
    const char *sev = jstr(inc, "severity");
    bool due = !is_open(inc) && sev && (!strcmp(sev, "SEV1") || !strcmp(sev, "SEV2")) &&
               !json_object_get(inc, "postmortem");

    json_object_set_new(inc, "postmortem_due", json_boolean(due));
}

json_t *incidents_list(const struct incidents *is)
{
    json_t *all = json_deep_copy(is->all), *inc;
    size_t i;

    json_array_foreach(all, i, inc) mark_due(inc);
    return all;
}

void incident_timeline_window(const struct incidents *is, const char *id, int64_t *since_ms,
                              int64_t *until_ms)
{
    json_t *inc = incident_get(is, id);
    int64_t start = inc ? get_time(inc, "impact_start") : 0;
    int64_t declared = inc ? get_time(inc, "declared") : 0;
    int64_t from = inc ? jint(inc, "watch_from_ms") : 0;

    if (!start || (from && from < start))
        start = from ? from : declared;
    *since_ms = start - (from && from <= start ? 0 : TIMELINE_LEAD_MS);
    if (start == from)
        *since_ms = from - TIMELINE_LEAD_MS;
    *until_ms = 0;
}

json_t *incident_timeline_filter(const struct incidents *is, const char *id, json_t *events)
{
    json_t *inc = incident_get(is, id), *out = json_array(), *e;
    int64_t t0 = inc ? get_time(inc, "impact_start") : 0;
    size_t i;

    if (!t0 && inc)
        t0 = get_time(inc, "declared");
    json_array_foreach(events, i, e)
    {
        const char *svc = jstr(e, "service");
        const char *eid = jstr(json_object_get(e, "details"), "incident");

        /* Another incident's own events stay in its timeline. */
        if (eid && strcmp(eid, id))
            continue;
        if ((eid && !strcmp(eid, id)) || (inc && svc && touches(inc, svc))) {
            json_t *copy = json_deep_copy(e);

            json_object_set_new(copy, "t_plus_s",
                                json_real(t0 ? (jint(e, "time_ms") - t0) / 1000.0 : 0));
            json_array_append_new(out, copy);
        }
    }
    return out;
}

/* ---- journal: the writes the bad release made --------------------------------- */

static void jq_run(uv_work_t *w)
{
    struct jq *q = w->data;
    char err[256];

    q->rc = impact_query(q->is->impact, &q->f, &q->rep, err, sizeof(err));
}

static json_t *names_json(const struct impact_name *names, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i].name));
    return a;
}

static void jq_done(uv_work_t *w, int status)
{
    struct jq *q = w->data;
    struct incidents *is = q->is;
    json_t *inc = incident_get(is, q->id), *j;

    is->impact_busy = false;
    if (!status && !q->rc && inc) {
        j = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "writes",
                      (json_int_t)q->rep.writes, "identities", (json_int_t)q->rep.identities,
                      "entities", (json_int_t)q->rep.entities, "dropped",
                      (json_int_t)q->rep.dropped, "first", api_time(q->rep.first_ms), "last",
                      api_time(q->rep.last_ms), "identity_list",
                      names_json(q->rep.identity_list, q->rep.nidentity_list), "entity_list",
                      names_json(q->rep.entity_list, q->rep.nentity_list));
        json_object_set_new(inc, "journal_impact", j);
        json_object_set(json_object_get(inc, "impact"), "journal", j);
        if (q->rep.writes && !json_object_get(json_object_get(inc, "checklist"), "data_checked"))
            json_object_set_new(json_object_get(inc, "checklist"), "data_checked",
                                json_pack("{s:s, s:n}", "state", "open", "time"));
        save(is, inc);
    }
    if (!q->rc)
        impact_report_release(&q->rep);
    free(q);
}

/* Asks the journal for the release's writes in the impact window. */
static void journal_refresh(struct incidents *is, json_t *inc)
{
    struct journal *jn = is->ctl->srv->journal;
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));
    int64_t start = get_time(inc, "impact_start"), con = get_time(inc, "contained");
    char err[256];
    struct jq *q;

    if (!jn || is->impact_busy || !svc || !jstr(inc, "release"))
        return;
    if (!is->impact && impact_open(journal_path(jn), jn, &is->impact, err, sizeof(err))) {
        fb_warn("journal: cannot read it for incidents: %s", err);
        return;
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->is = is;
    snprintf(q->id, sizeof(q->id), "%s", jstr(inc, "id"));
    snprintf(q->service, sizeof(q->service), "%s", svc);
    snprintf(q->release, sizeof(q->release), "%s", jstr(inc, "release"));
    q->f.service = q->service;
    q->f.release = q->release;
    q->f.since_ms = start ? start : jint(inc, "watch_from_ms");
    q->f.until_ms = con ? con + 2000 : 0;
    q->f.list_max = 100;
    is->work.data = q;
    is->impact_busy = true;
    if (uv_queue_work(is->ctl->srv->loop, &is->work, jq_run, jq_done)) {
        is->impact_busy = false;
        free(q);
    }
}

/* ---- tick: measurement and reminders ---------------------------------------------- */

static int64_t cadence_ms(const char *severity)
{
    if (!strcmp(severity, "SEV1"))
        return 15 * 60000;
    if (!strcmp(severity, "SEV2"))
        return 30 * 60000;
    if (!strcmp(severity, "SEV3"))
        return 60 * 60000;
    return 0;
}

static void remind(struct incidents *is, json_t *inc, int64_t now)
{
    int64_t cad = cadence_ms(jstr(inc, "severity")), due = jint(inc, "next_update_ms");
    char text[256];

    if (!cad)
        return;
    if (!due)
        due = get_time(inc, "declared") + cad;
    if (now < due || jint(inc, "reminded_ms") >= due)
        return;
    json_object_set_new(inc, "reminded_ms", json_integer(now));
    save(is, inc);
    snprintf(text, sizeof(text), "%s (%s): an update was due %lld min ago", jstr(inc, "id"),
             jstr(inc, "severity"), (long long)((now - due) / 60000));
    emit(is, inc, "reminder", "system",
         json_pack("{s:s, s:o, s:s}", "text", text, "due", api_time(due), "kind", "update"));
}

void incidents_tick(struct incidents *is)
{
    int64_t now = incidents_now(is);
    size_t i;
    json_t *inc;

    json_array_foreach(is->all, i, inc)
    {
        if (!is_open(inc))
            continue;
        if (jstr(inc, "release")) {
            measure(is, inc);
            journal_refresh(is, inc);
        }
        remind(is, inc, now);
    }
}

/* ---- life cycle --------------------------------------------------------------------- */

static void gate_hook(void *arg, const char *service, json_t *reasons)
{
    struct incidents *is = arg;
    char buf[300];
    size_t i;
    json_t *inc;

    json_array_foreach(is->all, i, inc)
    {
        if (is_open(inc) && touches(inc, service)) {
            snprintf(buf, sizeof(buf), "incident %s (%s, %s) is open: %s", jstr(inc, "id"),
                     jstr(inc, "severity"), jstr(inc, "status"), jstr(inc, "title"));
            json_array_append_new(reasons, json_string(buf));
        }
    }
}

static int render(struct fb_buf *out, void *arg)
{
    struct incidents *is = arg;
    int rc = prom_family(out, "firebreak_incidents_open", "gauge", "Incidents not resolved.");

    if (!rc)
        rc = prom_sample_u64(out, "firebreak_incidents_open", NULL, 0,
                             incidents_open_for(is, NULL));
    return rc;
}

static int load(struct incidents *is)
{
    struct store_doc *docs = NULL;
    size_t n = 0, i;
    int rc = store_list(is->ctl->store, "incident", &docs, &n);
    json_t *inc;

    for (i = 0; !rc && i < n; i++) {
        inc = json_loads(docs[i].json, 0, NULL);
        if (json_is_object(inc) && jstr(inc, "id"))
            json_array_append(is->all, inc);
        else
            fb_warn("store: incident %s is unreadable; ignored", docs[i].key);
        json_decref(inc);
    }
    store_docs_free(docs, n);
    /* By number, so INC-10 comes after INC-9. */
    for (i = 1; i < json_array_size(is->all); i++) {
        size_t k = i;

        while (k > 0 && jint(json_array_get(is->all, k - 1), "number") >
                            jint(json_array_get(is->all, k), "number")) {
            json_t *a = json_incref(json_array_get(is->all, k - 1));

            json_array_remove(is->all, k - 1);
            json_array_insert_new(is->all, k, a);
            k--;
        }
    }
    return rc;
}

int incidents_init(struct control *ctl, struct incidents **out)
{
    struct incidents *is = calloc(1, sizeof(*is));
    int rc;

    *out = NULL;
    if (!is)
        return -FB_ENOMEM;
    is->ctl = ctl;
    is->all = json_array();
    rc = load(is);
    if (!rc)
        rc = control_subscribe(ctl, on_event, is);
    if (!rc)
        rc = metrics_add_renderer(ctl->srv->metrics, render, is);
    if (rc) {
        incidents_free(is);
        return rc;
    }
    ctl->gate_hook = gate_hook;
    ctl->gate_hook_arg = is;
    *out = is;
    return 0;
}

void incidents_free(struct incidents *is)
{
    if (!is)
        return;
    impact_close(is->impact);
    json_decref(is->all);
    free(is);
}
