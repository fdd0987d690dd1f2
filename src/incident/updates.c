/*
 * updates.c: what an incident update says (updates.h).
 *
 * A draft is composed from the incident's measured figures and checklist:
 * what we know (impact, start, the release, the mitigation and its effect),
 * what we do not know yet (the open checklist items), next steps, and when
 * the next update comes (by severity cadence). Internal drafts quote figures
 * and names; public drafts say the same in plain words, with no release,
 * rollout, endpoint or user key in them, and the check refuses a public
 * update that names any of those.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"
#include "firebreak/updates.h"

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "";
}

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

int updates_cadence_min(const char *severity)
{
    if (!strcmp(severity, "SEV1"))
        return 15;
    if (!strcmp(severity, "SEV2"))
        return 30;
    if (!strcmp(severity, "SEV3"))
        return 60;
    return 0;
}

/* HH:MM:SS of a wall time, the precision an incident's minutes need. */
static void hhmm(int64_t ms, char out[16])
{
    char full[64];

    if (!ms) {
        snprintf(out, 16, "(unknown)");
        return;
    }
    fb_format_time(ms, full);
    snprintf(out, 16, "%.8s", full + 11);
}

static const char *const open_meaning[][2] = {
    {"comprehend", "the full scope of the impact"},
    {"identify", "who leads the response (no commander assigned yet)"},
    {"contain", "whether the problem is contained"},
    {"learn", "the root cause"},
    {"execute", "a fix validated before it meets users"},
    {"data_checked", "whether the data written by the bad release is correct"},
};

static void unknowns(const json_t *inc, bool public, struct fb_buf *b)
{
    const json_t *cl = json_object_get(inc, "checklist");
    bool first = true;
    size_t i;

    for (i = 0; i < sizeof(open_meaning) / sizeof(open_meaning[0]); i++) {
        const json_t *it = json_object_get(cl, open_meaning[i][0]);

        if (!it || !strcmp(jstr(it, "state"), "done"))
            continue;
        if (public && (!strcmp(open_meaning[i][0], "identify") ||
                       !strcmp(open_meaning[i][0], "comprehend")))
            continue;
        fb_buf_printf(b, "%s%s", first ? "" : "; ", open_meaning[i][1]);
        first = false;
    }
    if (first)
        fb_buf_puts(b, public ? "nothing further; we are monitoring" : "no open items");
    fb_buf_puts(b, ".");
}

static void known_internal(const json_t *inc, struct fb_buf *b)
{
    const json_t *im = json_object_get(inc, "impact"), *times = json_object_get(inc, "times");
    const json_t *fx = json_object_get(inc, "fixed_by"), *j = json_object_get(im, "journal");
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));
    char start[16], con[16];

    hhmm(jint(times, "impact_start_ms"), start);
    hhmm(jint(times, "contained_ms"), con);
    if (!json_object_get(im, "release")) {
        fb_buf_printf(b, "%s declared %s at %s UTC: %s. No release is linked yet, so no "
                         "figures are measured.",
                      jstr(inc, "id"), jstr(inc, "severity"),
                      jstr(times, "declared") + 11, jstr(inc, "title"));
        return;
    }
    fb_buf_printf(b, "Since %s UTC, release %s of %s (rollout %s) answered 5xx to %lld of %lld "
                     "requests (peak error rate %.1f%%); %lld users were affected; it served %lld "
                     "write requests.",
                  start, jstr(im, "release"), svc ? svc : "?", jstr(inc, "rollout"),
                  jint(im, "requests_failed"), jint(im, "requests_served"),
                  100.0 * json_number_value(json_object_get(im, "peak_error_rate")),
                  jint(im, "users_affected"), jint(im, "writes"));
    if (j)
        fb_buf_printf(b, " The journal holds %lld writes by %lld identities to %lld records: "
                         "%lld users' data may be affected%s.",
                      jint(j, "writes"), jint(j, "identities"), jint(j, "entities"),
                      jint(j, "identities"),
                      jint(j, "dropped") ? " (some records were dropped; the count is a floor)"
                                         : "");
    if (fx)
        fb_buf_printf(b, " Contained at %s UTC by a %s rollback (%s): %s takes no traffic since "
                         "and %s is served by %s.",
                      con, jstr(fx, "trigger"), jstr(fx, "reason"), jstr(im, "release"),
                      svc ? svc : "?", jstr(inc, "stable"));
}

static void known_public(const json_t *inc, struct fb_buf *b)
{
    const json_t *im = json_object_get(inc, "impact"), *times = json_object_get(inc, "times");
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));
    char start[16], con[16];

    hhmm(jint(times, "impact_start_ms"), start);
    hhmm(jint(times, "contained_ms"), con);
    if (!json_object_get(im, "release")) {
        fb_buf_printf(b, "We are investigating a problem with %s.", svc ? svc : "our service");
        return;
    }
    fb_buf_printf(b, "Between %s and %s UTC some requests to %s failed. We reversed the change "
                     "that caused it and %s is working normally again.",
                  start, jint(times, "contained_ms") ? con : "now", svc ? svc : "our service",
                  svc ? svc : "the service");
    if (jint(im, "writes"))
        fb_buf_puts(b, " Some changes made during that time may need correcting; we are "
                       "checking them.");
}

static void next_steps(const json_t *inc, bool public, struct fb_buf *b)
{
    const json_t *im = json_object_get(inc, "impact");
    const char *svc = json_string_value(json_array_get(json_object_get(inc, "services"), 0));

    if (public) {
        fb_buf_puts(b, jint(im, "writes") ? "We are checking the affected changes and will "
                                            "correct any that are wrong."
                                          : "We are finding the cause and will fix it before "
                                            "making the change again.");
        return;
    }
    if (jint(im, "writes"))
        fb_buf_printf(b, "Check the %lld writes %s made (firebreak journal export %s --release "
                         "%s); ",
                      jint(im, "writes"), jstr(im, "release"), svc ? svc : "?",
                      jstr(im, "release"));
    fb_buf_puts(b, "find the root cause; validate a fix by replaying recorded traffic before a "
                   "new rollout under the judge.");
}

json_t *updates_draft(const json_t *inc, const char *audience, int64_t now_ms)
{
    bool public;
    struct fb_buf known, unk, next;
    int cad = updates_cadence_min(jstr(inc, "severity"));
    int64_t due = now_ms + (int64_t)(cad ? cad : 60) * 60000;
    json_t *d;

    if (!audience || (strcmp(audience, "internal") && strcmp(audience, "public")))
        return NULL;
    public = !strcmp(audience, "public");
    fb_buf_init(&known, 8192);
    fb_buf_init(&unk, 4096);
    fb_buf_init(&next, 4096);
    (public ? known_public : known_internal)(inc, &known);
    unknowns(inc, public, &unk);
    next_steps(inc, public, &next);
    d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "audience", audience, "status",
                  jstr(inc, "status"), "known", known.data ? known.data : "", "unknown",
                  unk.data ? unk.data : "", "next_steps", next.data ? next.data : "",
                  "next_update", api_time(due), "next_update_ms", (json_int_t)due);
    fb_buf_release(&known);
    fb_buf_release(&unk);
    fb_buf_release(&next);
    return d;
}

/* IPv4:PORT at t (digits.digits.digits.digits:digits). */
static bool endpoint_at(const char *t)
{
    int part;

    for (part = 0; part < 4; part++) {
        if (!isdigit((unsigned char)*t))
            return false;
        while (isdigit((unsigned char)*t))
            t++;
        if (*t != (part < 3 ? '.' : ':'))
            return false;
        t++;
    }
    return isdigit((unsigned char)*t);
}

static bool has_endpoint(const char *t)
{
    const char *p;

    if (strstr(t, "localhost:"))
        return true;
    for (p = t; *p; p++) {
        if ((p == t || !isalnum((unsigned char)p[-1])) && endpoint_at(p))
            return true;
    }
    return false;
}

/* True if t names one of the users the journal saw writing (identities of
 * three characters or more, to avoid matching ordinary words). */
static bool names_user(const char *t, const json_t *inc)
{
    const json_t *ids = json_object_get(json_object_get(json_object_get(inc, "impact"),
                                                        "journal"),
                                        "identity_list");
    size_t i;
    json_t *id;

    json_array_foreach(ids, i, id)
    {
        const char *s = json_string_value(id);

        if (s && strlen(s) >= 3 && strstr(t, s))
            return true;
    }
    return false;
}

/* A public text must not name the release, the rollout, an endpoint or a key. */
static const char *leak(const json_t *u, const json_t *inc)
{
    static const char *const fields[] = {"known", "unknown", "next_steps", "text"};
    const char *rel = jstr(inc, "release"), *ro = jstr(inc, "rollout");
    size_t i;

    for (i = 0; i < 4; i++) {
        const char *t = jstr(u, fields[i]);

        if (strlen(rel) > 1 && strstr(t, rel))
            return "the release name";
        if (*ro && strstr(t, ro))
            return "the rollout id";
        if (strstr(t, "fbt_") || strstr(t, "fb_uid"))
            return "a token or user key";
        if (has_endpoint(t))
            return "an endpoint address";
        if (names_user(t, inc))
            return "a user";
    }
    return NULL;
}

/* "30m", "1h", "90s": digits and one unit letter. */
static bool is_duration(const char *s)
{
    size_t n = strlen(s), i;

    if (n < 2 || !strchr("smhd", s[n - 1]))
        return false;
    for (i = 0; i + 1 < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static int need(json_t *u, const char *key, char *msg, size_t msglen)
{
    const char *v = json_string_value(json_object_get(u, key));

    if (v && *v && strlen(v) <= 8000)
        return 0;
    snprintf(msg, msglen, "an update needs \"%s\" (what we %s); drafts have one: firebreak "
                          "incident update ID --draft",
             key,
             !strcmp(key, "known")     ? "know"
             : !strcmp(key, "unknown") ? "do not know yet"
                                       : "will do next");
    return -FB_EINVAL;
}

int updates_check(json_t *u, const json_t *inc, int64_t now_ms, char *msg, size_t msglen)
{
    const char *aud = json_string_value(json_object_get(u, "audience"));
    const char *nu = json_string_value(json_object_get(u, "next_update"));
    json_int_t due = json_integer_value(json_object_get(u, "next_update_ms"));
    const char *what;
    struct fb_buf text;
    int64_t parsed;

    if (!json_is_object(u) || !aud || (strcmp(aud, "internal") && strcmp(aud, "public"))) {
        snprintf(msg, msglen, "audience must be internal or public");
        return -FB_EINVAL;
    }
    if (need(u, "known", msg, msglen) || need(u, "unknown", msg, msglen) ||
        need(u, "next_steps", msg, msglen))
        return -FB_EINVAL;
    if (!due && nu && is_duration(nu) && !api_parse_since(nu, &parsed))
        due = now_ms + (fb_wall_ms() - parsed); /* "30m": that long from now */
    else if (!due && nu && !api_parse_since(nu, &parsed))
        due = parsed;
    if (!due || due <= now_ms) {
        snprintf(msg, msglen, "an update needs \"next_update\": a time in the future when the "
                              "next update will come");
        return -FB_EINVAL;
    }
    json_object_set_new(u, "next_update_ms", json_integer(due));
    json_object_set_new(u, "next_update", api_time(due));
    if (!strcmp(aud, "public") && (what = leak(u, inc))) {
        snprintf(msg, msglen, "a public update must not name %s; write it in plain words",
                 what);
        return -FB_EINVAL;
    }
    fb_buf_init(&text, 32768);
    fb_buf_printf(&text, "%s\nWhat we don't know yet: %s\nNext steps: %s\nNext update by %s.",
                  jstr(u, "known"), jstr(u, "unknown"), jstr(u, "next_steps"),
                  jstr(u, "next_update"));
    json_object_set_new(u, "text", json_string(text.data ? text.data : ""));
    fb_buf_release(&text);
    return 0;
}
