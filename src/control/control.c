/*
 * control.c: runtime releases and weights, events, tokens.
 *
 * Every change follows one order: validate, change the in-memory spec, build
 * and publish a route table (the next request sees it), answer, then queue
 * the store writes (the service document and the event, in one
 * transaction). Containment therefore never waits for the store; a store
 * failure is logged and counted, and the in-memory state stays authoritative
 * until the next successful write.
 *
 * Config and runtime state (docs/releases.md): the config declares services,
 * their matching, and an initial set of releases. The runtime spec, kept in
 * the store as one "service" document per service, holds the releases,
 * weights, stable and previous. At start and at every reload the two are
 * merged: endpoints of releases the config declares follow the config, every
 * weight and stable choice follows the runtime spec. So a reload never undoes
 * a rollback, and a release added with the API survives a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firebreak/affected.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/health.h"
#include "firebreak/incident.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"
#include "firebreak/rollout.h"
#include "firebreak/route.h"
#include "firebreak/series.h"
#include "firebreak/server.h"
#include "firebreak/store.h"

#define TICK_MS 250
#define EJECTION_EVENT_GAP_MS 10000

/* ---- spec ------------------------------------------------------------------ */

static void spec_release_free(struct route_spec_release *r)
{
    size_t i;

    for (i = 0; i < r->nendpoints; i++)
        config_addr_release(&r->endpoints[i]);
    free(r->endpoints);
    free(r->name);
}

static void spec_service_free(struct route_spec_service *s)
{
    size_t i;

    for (i = 0; i < s->nreleases; i++)
        spec_release_free(&s->releases[i]);
    free(s->releases);
    free(s->name);
    free(s->stable);
    free(s->previous);
    memset(s, 0, sizeof(*s));
}

struct route_spec_service *control_service(struct control *ctl, const char *name)
{
    size_t i;

    for (i = 0; i < ctl->spec.nservices; i++) {
        if (!strcmp(ctl->spec.services[i].name, name))
            return &ctl->spec.services[i];
    }
    return NULL;
}

static struct route_spec_release *spec_release(struct route_spec_service *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->nreleases; i++) {
        if (!strcmp(s->releases[i].name, name))
            return &s->releases[i];
    }
    return NULL;
}

static int set_str(char **dst, const char *src)
{
    char *p = src ? strdup(src) : NULL;

    if (src && !p)
        return -FB_ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* Parses endpoint texts into a new array; on failure names the bad one. */
static int endpoints_parse(const char *const *texts, size_t n, struct cfg_addr **out, char *msg,
                           size_t msglen)
{
    struct cfg_addr *a = calloc(n ? n : 1, sizeof(*a));
    size_t i;

    if (!a)
        return -FB_ENOMEM;
    for (i = 0; i < n; i++) {
        if (config_parse_addr(texts[i], &a[i])) {
            snprintf(msg, msglen, "endpoint '%s' is not HOST:PORT (IPv4, [IPv6] or localhost)",
                     texts[i]);
            while (i--)
                config_addr_release(&a[i]);
            free(a);
            return -FB_EINVAL;
        }
    }
    *out = a;
    return 0;
}

static int endpoints_copy(const struct cfg_addr *src, size_t n, struct cfg_addr **out)
{
    const char **texts = calloc(n ? n : 1, sizeof(*texts));
    char msg[128];
    size_t i;
    int rc;

    if (!texts)
        return -FB_ENOMEM;
    for (i = 0; i < n; i++)
        texts[i] = src[i].text;
    rc = endpoints_parse(texts, n, out, msg, sizeof(msg));
    free(texts);
    return rc;
}

static int spec_add_release(struct route_spec_service *s, const char *name,
                            struct cfg_addr *endpoints, size_t n, uint32_t weight_bp)
{
    struct route_spec_release *r;

    r = realloc(s->releases, (s->nreleases + 1) * sizeof(*r));
    if (!r)
        return -FB_ENOMEM;
    s->releases = r;
    r = &s->releases[s->nreleases];
    memset(r, 0, sizeof(*r));
    r->name = strdup(name);
    if (!r->name)
        return -FB_ENOMEM;
    r->endpoints = endpoints;
    r->nendpoints = n;
    r->weight_bp = weight_bp;
    r->created_ms = fb_wall_ms();
    s->nreleases++;
    return 0;
}

static struct route_spec_service *spec_add_service(struct control *ctl, const char *name)
{
    struct route_spec_service *s;

    s = realloc(ctl->spec.services, (ctl->spec.nservices + 1) * sizeof(*s));
    if (!s)
        return NULL;
    ctl->spec.services = s;
    s = &s[ctl->spec.nservices];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (!s->name)
        return NULL;
    ctl->spec.nservices++;
    return s;
}

static int merge_service(struct control *ctl, const struct cfg_service *cs)
{
    struct route_spec_service *s = control_service(ctl, cs->name);
    bool fresh = !s || !s->nreleases;
    struct cfg_addr *eps;
    size_t i;
    int rc;

    if (!s && !(s = spec_add_service(ctl, cs->name)))
        return -FB_ENOMEM;
    for (i = 0; i < cs->nreleases; i++) {
        const struct cfg_release *cr = &cs->releases[i];
        struct route_spec_release *r = spec_release(s, cr->name);

        rc = endpoints_copy(cr->endpoints, cr->nendpoints, &eps);
        if (rc)
            return rc;
        if (r) {
            size_t k;

            for (k = 0; k < r->nendpoints; k++)
                config_addr_release(&r->endpoints[k]);
            free(r->endpoints);
            r->endpoints = eps;
            r->nendpoints = cr->nendpoints;
            continue;
        }
        rc = spec_add_release(s, cr->name, eps, cr->nendpoints,
                              fresh ? (uint32_t)(cr->weight * 100.0 + 0.5) : 0);
        if (rc)
            return rc;
    }
    if (!s->stable || !spec_release(s, s->stable))
        return set_str(&s->stable, cs->stable);
    return 0;
}

int control_merge_config(struct control *ctl, const struct config *cfg)
{
    size_t i;
    int rc;

    for (i = 0; i < cfg->nservices; i++) {
        rc = merge_service(ctl, &cfg->services[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- persistence ------------------------------------------------------------ */

static json_t *service_json(const struct route_spec_service *s)
{
    json_t *o = json_object(), *rels = json_array();
    size_t i, k;

    for (i = 0; i < s->nreleases; i++) {
        const struct route_spec_release *r = &s->releases[i];
        json_t *eps = json_array();

        for (k = 0; k < r->nendpoints; k++)
            json_array_append_new(eps, json_string(r->endpoints[k].text));
        json_array_append_new(rels, json_pack("{s:s, s:o, s:I, s:I}", "name", r->name,
                                              "endpoints", eps, "weight_bp",
                                              (json_int_t)r->weight_bp, "created_ms",
                                              (json_int_t)r->created_ms));
    }
    json_object_set_new(o, "stable", json_string(s->stable ? s->stable : ""));
    json_object_set_new(o, "previous", s->previous ? json_string(s->previous) : json_null());
    json_object_set_new(o, "releases", rels);
    return o;
}

static int service_from_json(struct route_spec_service *s, const char *text)
{
    json_t *root = json_loads(text, 0, NULL), *rels, *r, *eps, *e, *prev = NULL;
    const char *stable = NULL, *previous = NULL;
    size_t i, k;
    int rc = -FB_EINVAL;

    if (!root || json_unpack(root, "{s:s, s?o, s:o}", "stable", &stable, "previous", &prev,
                             "releases", &rels) ||
        !json_is_array(rels))
        goto out;
    previous = json_is_string(prev) ? json_string_value(prev) : NULL;
    json_array_foreach(rels, i, r)
    {
        const char *name;
        json_int_t w = 0, created = 0;
        const char **texts;
        struct cfg_addr *addrs;
        char msg[160];

        if (json_unpack(r, "{s:s, s:o, s:I, s?I}", "name", &name, "endpoints", &eps,
                        "weight_bp", &w, "created_ms", &created) ||
            !json_is_array(eps) || w < 0 || w > 10000)
            goto out;
        texts = calloc(json_array_size(eps) + 1, sizeof(*texts));
        if (!texts)
            goto out;
        json_array_foreach(eps, k, e) texts[k] = json_is_string(e) ? json_string_value(e) : "";
        rc = endpoints_parse(texts, json_array_size(eps), &addrs, msg, sizeof(msg));
        free(texts);
        if (rc || (rc = spec_add_release(s, name, addrs, json_array_size(eps), (uint32_t)w)))
            goto out;
        s->releases[s->nreleases - 1].created_ms = created;
        rc = -FB_EINVAL;
    }
    if (set_str(&s->stable, stable) || set_str(&s->previous, previous))
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int load_spec(struct control *ctl)
{
    struct store_doc *docs = NULL;
    size_t n = 0, i;
    int rc;

    rc = store_list(ctl->store, "service", &docs, &n);
    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        struct route_spec_service *s = spec_add_service(ctl, docs[i].key);

        if (!s) {
            rc = -FB_ENOMEM;
            break;
        }
        if (service_from_json(s, docs[i].json)) {
            fb_warn("store: service document '%s' is unreadable; using the config for it",
                    docs[i].key);
            spec_service_free(s);
            ctl->spec.nservices--;
        }
    }
    store_docs_free(docs, n);
    return rc;
}

/* A batch of store writes queued from the control thread. */
struct write_job {
    struct control *ctl;
    struct store_op ops[2];
    size_t nops;
    struct control_then then; /* told when the write is durable, if set */
};

static void job_free(struct write_job *job)
{
    size_t i;

    for (i = 0; i < job->nops; i++) {
        struct store_op *op = &job->ops[i];

        free(op->event.type);
        free(op->event.actor);
        free(op->event.service);
        free(op->event.release);
        free(op->event.details);
        free(op->doc.kind);
        free(op->doc.key);
        free(op->doc.json);
    }
    free(job);
}

static int job_run(struct store *s, void *arg)
{
    struct write_job *job = arg;

    return store_apply(s, job->ops, job->nops);
}

static void job_done(int status, void *arg)
{
    struct write_job *job = arg;

    if (status) {
        job->ctl->store_errors++;
        fb_error("store: a write failed (%s); the running state is kept in memory",
                 fb_err_message(status));
    }
    if (job->then.fn)
        job->then.fn(status, job->then.arg);
    job_free(job);
}

static void job_submit(struct control *ctl, struct write_job *job)
{
    int rc;

    rc = ctl->store ? store_submit(ctl->store, job_run, job_done, job) : -FB_ESTORE;
    if (rc) {
        ctl->store_errors++;
        fb_error("store: cannot queue a write (%s)", fb_err_message(rc));
        if (job->then.fn)
            job->then.fn(rc, job->then.arg);
        job_free(job);
    }
}

void control_save_doc(struct control *ctl, const char *kind, const char *key, const json_t *doc)
{
    struct write_job *job = calloc(1, sizeof(*job));
    struct store_op *op;

    if (!job) {
        ctl->store_errors++;
        return;
    }
    job->ctl = ctl;
    op = &job->ops[job->nops++];
    op->kind = STORE_OP_PUT;
    op->doc.kind = strdup(kind);
    op->doc.key = strdup(key);
    op->doc.json = json_dumps(doc, JSON_COMPACT);
    job_submit(ctl, job);
}

static void job_add_service(struct write_job *job, const struct route_spec_service *s)
{
    json_t *j = service_json(s);
    struct store_op *op = &job->ops[job->nops++];

    op->kind = STORE_OP_PUT;
    op->doc.kind = strdup("service");
    op->doc.key = strdup(s->name);
    op->doc.json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void job_add_event(struct write_job *job, const char *type, const char *actor,
                          const char *service, const char *release, const json_t *details)
{
    struct store_op *op = &job->ops[job->nops++];

    op->kind = STORE_OP_EVENT;
    op->event.time_ms = fb_wall_ms();
    op->event.type = strdup(type);
    op->event.actor = strdup(actor ? actor : "system");
    op->event.service = dup_or_null(service);
    op->event.release = dup_or_null(release);
    op->event.details = details ? json_dumps(details, JSON_COMPACT) : strdup("{}");
}

static void notify(struct control *ctl, const char *type, const char *service,
                   const char *release, json_t *details)
{
    unsigned i;

    for (i = 0; i < ctl->nsubs; i++)
        ctl->subs[i].fn(ctl->subs[i].arg, type, service, release, details);
}

/* Records the service's new state and the event together. */
static void record(struct control *ctl, const struct route_spec_service *s, const char *type,
                   const char *actor, const char *release, json_t *details,
                   const struct control_then *then)
{
    struct write_job *job = calloc(1, sizeof(*job));

    /* Queue the write first, so the event precedes whatever subscribers
     * record in reaction to it. */
    if (job) {
        job->ctl = ctl;
        if (then)
            job->then = *then;
        if (s)
            job_add_service(job, s);
        job_add_event(job, type, actor, s ? s->name : NULL, release, details);
        job_submit(ctl, job);
    } else if (then && then->fn) {
        then->fn(-FB_ENOMEM, then->arg);
    }
    notify(ctl, type, s ? s->name : NULL, release, details);
    json_decref(details);
}

void control_event(struct control *ctl, const char *type, const char *actor, const char *service,
                   const char *release, json_t *details)
{
    struct write_job *job = calloc(1, sizeof(*job));

    if (job) {
        job->ctl = ctl;
        job_add_event(job, type, actor, service, release, details);
        job_submit(ctl, job);
    }
    notify(ctl, type, service, release, details);
    json_decref(details);
}

int control_subscribe(struct control *ctl, control_event_fn fn, void *arg)
{
    if (ctl->nsubs == CONTROL_MAX_SUBS)
        return -FB_ETOOBIG;
    ctl->subs[ctl->nsubs].fn = fn;
    ctl->subs[ctl->nsubs].arg = arg;
    ctl->nsubs++;
    return 0;
}

/* ---- publishing ----------------------------------------------------------- */

int control_publish(struct control *ctl, uint64_t *published_ns)
{
    struct server *srv = ctl->srv;
    struct route_table *t;
    int rc;

    rc = route_table_new(srv->cfg, &ctl->spec, &srv->ids, srv->metrics, ++srv->table_version,
                         &t);
    if (rc)
        return rc;
    server_publish(srv, t);
    if (published_ns)
        *published_ns = fb_mono_ns();
    return 0;
}

static json_t *weights_json(const struct route_spec_service *s)
{
    json_t *o = json_object();
    size_t i;

    for (i = 0; i < s->nreleases; i++)
        json_object_set_new(o, s->releases[i].name,
                            json_real((double)s->releases[i].weight_bp / 100.0));
    return o;
}

static const struct cfg_service *config_service(const struct config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nservices; i++) {
        if (!strcmp(cfg->services[i].name, name))
            return &cfg->services[i];
    }
    return NULL;
}

static bool config_declares_release(const struct config *cfg, const char *service,
                                    const char *release)
{
    const struct cfg_service *cs = config_service(cfg, service);
    size_t i;

    for (i = 0; cs && i < cs->nreleases; i++) {
        if (!strcmp(cs->releases[i].name, release))
            return true;
    }
    return false;
}

static struct route_spec_service *find_or_fail(struct control *ctl, const char *service,
                                               char *msg, size_t msglen)
{
    struct route_spec_service *s = control_service(ctl, service);

    if (!s || !config_service(ctl->srv->cfg, service)) {
        snprintf(msg, msglen, "no service named '%s'", service);
        return NULL;
    }
    return s;
}

static bool name_valid(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n >= ROUTE_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

int control_release_add(struct control *ctl, const char *service, const char *release,
                        const char *const *endpoints, size_t n, const char *actor,
                        const struct control_then *then, char *msg, size_t msglen)
{
    struct route_spec_service *s = find_or_fail(ctl, service, msg, msglen);
    struct cfg_addr *eps = NULL;
    json_t *eplist;
    size_t i;
    int rc;

    if (!s)
        return -FB_ENOENT;
    if (!name_valid(release)) {
        snprintf(msg, msglen, "release name must be 1-63 of [A-Za-z0-9._-]");
        return -FB_EINVAL;
    }
    if (spec_release(s, release)) {
        snprintf(msg, msglen, "service '%s' already has a release '%s'", service, release);
        return -FB_EEXIST;
    }
    if (n == 0 || n > 256) {
        snprintf(msg, msglen, "a release needs 1 to 256 endpoints");
        return -FB_EINVAL;
    }
    rc = endpoints_parse(endpoints, n, &eps, msg, msglen);
    if (rc)
        return rc;
    rc = spec_add_release(s, release, eps, n, 0);
    if (!rc)
        rc = control_publish(ctl, NULL);
    if (rc) {
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    eplist = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(eplist, json_string(endpoints[i]));
    record(ctl, s, "release_added", actor, release, json_pack("{s:o}", "endpoints", eplist),
           then);
    return 0;
}

int control_release_remove(struct control *ctl, const char *service, const char *release,
                           const char *actor, const struct control_then *then, char *msg,
                           size_t msglen)
{
    struct route_spec_service *s = find_or_fail(ctl, service, msg, msglen);
    struct route_spec_release *r;
    size_t idx;
    int rc;

    if (!s)
        return -FB_ENOENT;
    r = spec_release(s, release);
    if (!r) {
        snprintf(msg, msglen, "service '%s' has no release '%s'", service, release);
        return -FB_ENOENT;
    }
    if (!strcmp(s->stable, release) || r->weight_bp) {
        snprintf(msg, msglen, "release '%s' is %s; only a non-stable release at weight 0 can "
                              "be removed", release,
                 !strcmp(s->stable, release) ? "stable" : "still taking traffic");
        return -FB_ECONFLICT;
    }
    if (config_declares_release(ctl->srv->cfg, service, release)) {
        snprintf(msg, msglen, "release '%s' is declared in %s; remove it there and reload",
                 release, ctl->srv->config_path);
        return -FB_ECONFLICT;
    }
    idx = (size_t)(r - s->releases);
    spec_release_free(r);
    memmove(&s->releases[idx], &s->releases[idx + 1],
            (s->nreleases - idx - 1) * sizeof(*s->releases));
    s->nreleases--;
    if (s->previous && !strcmp(s->previous, release))
        set_str(&s->previous, NULL);
    rc = control_publish(ctl, NULL);
    if (rc) {
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    record(ctl, s, "release_removed", actor, release, NULL, then);
    return 0;
}

int control_weights(struct control *ctl, const char *service, const char *const *names,
                    const uint32_t *weights_bp, size_t n, const char *actor, const char *why,
                    const struct control_then *then, char *msg, size_t msglen)
{
    struct route_spec_service *s = find_or_fail(ctl, service, msg, msglen);
    uint32_t sum = 0, *next;
    size_t i, k;
    int rc;

    if (!s)
        return -FB_ENOENT;
    next = calloc(s->nreleases ? s->nreleases : 1, sizeof(*next));
    if (!next)
        return -FB_ENOMEM;
    for (i = 0; i < n; i++) {
        struct route_spec_release *r = spec_release(s, names[i]);

        if (!r) {
            snprintf(msg, msglen, "service '%s' has no release '%s'", service, names[i]);
            free(next);
            return -FB_ENOENT;
        }
        next[r - s->releases] = weights_bp[i];
        sum += weights_bp[i];
    }
    if (sum != 10000) {
        snprintf(msg, msglen, "weights add up to %.2f%%, not 100%%", sum / 100.0);
        free(next);
        return -FB_EINVAL;
    }
    for (k = 0; k < s->nreleases; k++)
        s->releases[k].weight_bp = next[k];
    free(next);
    rc = control_publish(ctl, NULL);
    if (rc) {
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    record(ctl, s, "weights_changed", actor, NULL,
           json_pack("{s:o, s:s}", "weights", weights_json(s), "reason", why ? why : "manual"),
           then);
    return 0;
}

static void count_rollback(struct control *ctl, const char *service, const char *trigger)
{
    struct rollback_count *rc;
    size_t i;

    for (i = 0; i < ctl->nrollbacks; i++) {
        rc = &ctl->rollbacks[i];
        if (!strcmp(rc->service, service) && !strcmp(rc->trigger, trigger)) {
            rc->n++;
            return;
        }
    }
    rc = realloc(ctl->rollbacks, (ctl->nrollbacks + 1) * sizeof(*rc));
    if (!rc)
        return;
    ctl->rollbacks = rc;
    rc = &rc[ctl->nrollbacks++];
    snprintf(rc->service, sizeof(rc->service), "%s", service);
    snprintf(rc->trigger, sizeof(rc->trigger), "%s", trigger);
    rc->n = 1;
}

int control_rollback(struct control *ctl, const char *service, const char *trigger,
                     const char *reason, const char *actor, json_t *evidence,
                     uint64_t *published_ns, char *msg, size_t msglen)
{
    struct route_spec_service *s = find_or_fail(ctl, service, msg, msglen);
    const char *from = NULL;
    bool to_previous;
    json_t *details;
    size_t i;
    int rc;

    if (!s) {
        json_decref(evidence);
        return -FB_ENOENT;
    }
    for (i = 0; i < s->nreleases; i++) {
        if (strcmp(s->releases[i].name, s->stable) && s->releases[i].weight_bp && !from)
            from = s->releases[i].name;
    }
    /* Nothing but stable takes traffic: roll back the last promotion. */
    to_previous = !from && s->previous && spec_release(s, s->previous);
    if (to_previous) {
        char *promoted = s->stable;

        from = promoted;
        s->stable = s->previous;
        s->previous = promoted;
    }
    for (i = 0; i < s->nreleases; i++)
        s->releases[i].weight_bp = strcmp(s->releases[i].name, s->stable) ? 0 : 10000;
    rc = control_publish(ctl, published_ns);
    if (rc) {
        json_decref(evidence);
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    count_rollback(ctl, service, trigger);
    details = json_pack("{s:s, s:s, s:o, s:s, s:b}", "trigger", trigger, "reason",
                        reason ? reason : "", "weights", weights_json(s), "stable", s->stable,
                        "to_previous", to_previous);
    if (evidence)
        json_object_set_new(details, "evidence", evidence);
    record(ctl, s, "rollback", actor, from, details, NULL);
    return 0;
}

int control_promote(struct control *ctl, const char *service, const char *release,
                    const char *actor, char *msg, size_t msglen)
{
    struct route_spec_service *s = find_or_fail(ctl, service, msg, msglen);
    char *old;
    size_t i;
    int rc;

    if (!s)
        return -FB_ENOENT;
    if (!spec_release(s, release)) {
        snprintf(msg, msglen, "service '%s' has no release '%s'", service, release);
        return -FB_ENOENT;
    }
    if (!strcmp(s->stable, release)) {
        snprintf(msg, msglen, "'%s' is already stable", release);
        return -FB_ECONFLICT;
    }
    old = s->stable;
    s->stable = strdup(release);
    if (!s->stable) {
        s->stable = old;
        return -FB_ENOMEM;
    }
    free(s->previous);
    s->previous = old;
    for (i = 0; i < s->nreleases; i++)
        s->releases[i].weight_bp = strcmp(s->releases[i].name, release) ? 0 : 10000;
    rc = control_publish(ctl, NULL);
    if (rc) {
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    record(ctl, s, "promoted", actor, release,
           json_pack("{s:s, s:s}", "stable", release, "previous", old), NULL);
    return 0;
}

/* ---- tokens ----------------------------------------------------------------- */

static const char *const role_names[] = {NULL, "viewer", "responder", "admin"};

const char *control_role_name(enum token_role role)
{
    return role >= ROLE_VIEWER && role <= ROLE_ADMIN ? role_names[role] : "none";
}

int control_role_parse(const char *s, enum token_role *out)
{
    int r;

    for (r = ROLE_VIEWER; r <= ROLE_ADMIN; r++) {
        if (s && !strcmp(s, role_names[r])) {
            *out = (enum token_role)r;
            return 0;
        }
    }
    return -FB_EINVAL;
}

static void sha256_hex(const unsigned char hash[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[64] = '\0';
}

static int hex_to_hash(const char *hexs, unsigned char out[32])
{
    int i;

    if (strlen(hexs) != 64)
        return -FB_EINVAL;
    for (i = 0; i < 64; i++) {
        char ch = hexs[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

        if (v < 0)
            return -FB_EINVAL;
        out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

static int token_add(struct control *ctl, const unsigned char hash[32], const char *name,
                     enum token_role role, int64_t created)
{
    struct token *t = realloc(ctl->tokens, (ctl->ntokens + 1) * sizeof(*t));

    if (!t)
        return -FB_ENOMEM;
    ctl->tokens = t;
    t = &t[ctl->ntokens++];
    memcpy(t->hash, hash, 32);
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->role = role;
    t->created_ms = created;
    return 0;
}

static int load_tokens(struct control *ctl)
{
    struct store_doc *docs = NULL;
    size_t n = 0, i;
    int rc = store_list(ctl->store, "token", &docs, &n);

    for (i = 0; !rc && i < n; i++) {
        json_t *j = json_loads(docs[i].json, 0, NULL);
        const char *name = NULL, *role = NULL;
        json_int_t created = 0;
        unsigned char hash[32];
        enum token_role r;

        if (j && !json_unpack(j, "{s:s, s:s, s?I}", "name", &name, "role", &role, "created_ms",
                              &created) &&
            !control_role_parse(role, &r) && !hex_to_hash(docs[i].key, hash))
            rc = token_add(ctl, hash, name, r, created);
        else
            fb_warn("store: token document %s is unreadable; ignored", docs[i].key);
        json_decref(j);
    }
    store_docs_free(docs, n);
    return rc;
}

static void token_text(char out[56])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[24];
    int i;

    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        uint64_t x = fb_mono_ns() ^ (uint64_t)getpid();

        for (i = 0; i < 24; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            raw[i] = (unsigned char)(x >> 56);
    }
    memcpy(out, "fbt_", 4);
    for (i = 0; i < 24; i++) {
        out[4 + 2 * i] = hex[raw[i] >> 4];
        out[5 + 2 * i] = hex[raw[i] & 15];
    }
    out[52] = '\0';
}

/* Stores a token document synchronously (start-up) or through the queue. */
static int token_store(struct control *ctl, const unsigned char hash[32], const char *name,
                       enum token_role role, bool sync, const char *actor)
{
    char key[65], *json;
    json_t *j = json_pack("{s:s, s:s, s:I}", "name", name, "role", control_role_name(role),
                          "created_ms", (json_int_t)fb_wall_ms());
    struct write_job *job;
    int rc = 0;

    sha256_hex(hash, key);
    json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!json)
        return -FB_ENOMEM;
    if (sync) {
        struct store_op op = {.kind = STORE_OP_PUT};

        op.doc.kind = "token";
        op.doc.key = key;
        op.doc.json = json;
        rc = store_apply(ctl->store, &op, 1);
        free(json);
        return rc;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        free(json);
        return -FB_ENOMEM;
    }
    job->ctl = ctl;
    job->ops[0].kind = STORE_OP_PUT;
    job->ops[0].doc.kind = strdup("token");
    job->ops[0].doc.key = strdup(key);
    job->ops[0].doc.json = json;
    job->nops = 1;
    job_add_event(job, "token_created", actor, NULL, NULL,
                  j = json_pack("{s:s, s:s}", "name", name, "role", control_role_name(role)));
    json_decref(j);
    job_submit(ctl, job);
    return 0;
}

const struct token *control_token_check(struct control *ctl, const char *text, size_t len)
{
    unsigned char hash[32];
    const struct token *found = NULL;
    size_t i;

    SHA256((const unsigned char *)text, len, hash);
    for (i = 0; i < ctl->ntokens; i++) {
        if (CRYPTO_memcmp(hash, ctl->tokens[i].hash, 32) == 0)
            found = &ctl->tokens[i];
    }
    return found;
}

int control_token_create(struct control *ctl, const char *name, enum token_role role,
                         const char *actor, char *out, size_t outlen, char *msg, size_t msglen)
{
    unsigned char hash[32];
    char text[56], who[64];
    size_t i;
    int rc;

    /* actor may point into the token array, which token_add moves. */
    snprintf(who, sizeof(who), "%s", actor);
    if (!name_valid(name)) {
        snprintf(msg, msglen, "token name must be 1-63 of [A-Za-z0-9._-]");
        return -FB_EINVAL;
    }
    for (i = 0; i < ctl->ntokens; i++) {
        if (!strcmp(ctl->tokens[i].name, name)) {
            snprintf(msg, msglen, "a token named '%s' exists", name);
            return -FB_EEXIST;
        }
    }
    token_text(text);
    SHA256((const unsigned char *)text, strlen(text), hash);
    rc = token_add(ctl, hash, name, role, fb_wall_ms());
    if (!rc)
        rc = token_store(ctl, hash, name, role, false, who);
    if (rc) {
        snprintf(msg, msglen, "%s", fb_err_message(rc));
        return rc;
    }
    snprintf(out, outlen, "%s", text);
    return 0;
}

/* STATE/admin.token: created on first start (mode 0600) and printed once;
 * on later starts its hash is put back in the store if the store lost it. */
static int admin_token_init(struct control *ctl)
{
    char path[4200], text[128];
    unsigned char hash[32];
    ssize_t n;
    int fd, rc;

    snprintf(path, sizeof(path), "%s/admin.token", ctl->state_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n <= 0)
            return -FB_EIO;
        text[n] = '\0';
        text[strcspn(text, "\r\n")] = '\0';
        if (control_token_check(ctl, text, strlen(text)))
            return 0;
        SHA256((const unsigned char *)text, strlen(text), hash);
        rc = token_add(ctl, hash, "admin", ROLE_ADMIN, fb_wall_ms());
        return rc ? rc : token_store(ctl, hash, "admin", ROLE_ADMIN, true, "system");
    }
    token_text(text);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fb_error("cannot create %s: %s", path, strerror(errno));
        return -FB_EIO;
    }
    n = write(fd, text, strlen(text));
    if (n < 0 || write(fd, "\n", 1) != 1 || fsync(fd)) {
        close(fd);
        return -FB_EIO;
    }
    close(fd);
    SHA256((const unsigned char *)text, strlen(text), hash);
    rc = token_add(ctl, hash, "admin", ROLE_ADMIN, fb_wall_ms());
    if (!rc)
        rc = token_store(ctl, hash, "admin", ROLE_ADMIN, true, "system");
    if (!rc)
        printf("firebreak: admin token (written to %s, shown once): %s\n", path, text);
    fflush(stdout);
    return rc;
}

/* ---- tick: health events and the one-second series -------------------------- */

static void health_events(struct control *ctl)
{
    const struct route_table *t = ctl->srv->table;
    struct health *h = ctl->srv->health;
    int64_t now_ms = fb_wall_ms();
    unsigned i, j, k;

    for (i = 0; i < t->nservices; i++) {
        const struct route_service *s = &t->services[i];

        for (j = 0; j < s->nreleases; j++) {
            const struct route_release *r = &s->releases[j];

            for (k = 0; k < r->nendpoints; k++) {
                unsigned id = r->endpoints[k].id;
                uint32_t seq = __atomic_load_n(&h->eps[id].seq, __ATOMIC_ACQUIRE);
                bool ejected;

                if (seq == ctl->health_seq[id])
                    continue;
                ctl->health_seq[id] = seq;
                ejected = __atomic_load_n(&h->eps[id].ejected_until_ns, __ATOMIC_ACQUIRE) != 0;
                if (ejected && now_ms - ctl->health_event_ms[id] < EJECTION_EVENT_GAP_MS)
                    continue;
                if (ejected)
                    ctl->health_event_ms[id] = now_ms;
                control_event(ctl, ejected ? "ejection" : "readmission", "system", s->name,
                              r->name,
                              json_pack("{s:s, s:i}", "endpoint", r->endpoints[k].text,
                                        "ejections",
                                        (int)__atomic_load_n(&h->eps[id].ejections,
                                                             __ATOMIC_RELAXED)));
            }
        }
    }
}

static void on_tick(uv_timer_t *timer)
{
    struct control *ctl = timer->data;

    uint64_t now = fb_mono_ns();

    health_events(ctl);
    affected_drain(ctl->srv->affected);
    series_tick(ctl->series, ctl->srv->table, now);
    rollouts_tick(ctl->rollouts, now);
    if (now - ctl->last_second_ns >= 1000000000ull) {
        ctl->last_second_ns = now;
        incidents_tick(ctl->incidents);
    }
}

/* firebreak_release_weight, firebreak_ejections_total, firebreak_rollbacks_total. */
static int render_control(struct fb_buf *out, void *arg)
{
    struct control *ctl = arg;
    const struct route_table *t = ctl->srv->table;
    struct health *h = ctl->srv->health;
    struct prom_label l[3];
    unsigned i, j, k;
    int rc;

    rc = prom_family(out, "firebreak_release_weight", "gauge",
                     "Share of a service's users routed to a release, in percent.");
    for (i = 0; !rc && i < t->nservices; i++) {
        for (j = 0; !rc && j < t->services[i].nreleases; j++) {
            l[0] = (struct prom_label){"service", t->services[i].name};
            l[1] = (struct prom_label){"release", t->services[i].releases[j].name};
            rc = prom_sample_f64(out, "firebreak_release_weight", l, 2,
                                 t->services[i].releases[j].weight_bp / 100.0);
        }
    }
    if (!rc)
        rc = prom_family(out, "firebreak_ejections_total", "counter",
                         "Times an endpoint was ejected after consecutive failures.");
    for (i = 0; !rc && i < t->nservices; i++) {
        for (j = 0; !rc && j < t->services[i].nreleases; j++) {
            const struct route_release *r = &t->services[i].releases[j];

            for (k = 0; !rc && k < r->nendpoints; k++) {
                l[0] = (struct prom_label){"service", t->services[i].name};
                l[1] = (struct prom_label){"release", r->name};
                l[2] = (struct prom_label){"endpoint", r->endpoints[k].text};
                rc = prom_sample_u64(out, "firebreak_ejections_total", l, 3,
                                     __atomic_load_n(&h->eps[r->endpoints[k].id].total_ejections,
                                                     __ATOMIC_RELAXED));
            }
        }
    }
    if (!rc)
        rc = prom_family(out, "firebreak_rollbacks_total", "counter",
                         "Rollbacks by service and trigger (manual, judge, guard).");
    for (i = 0; !rc && i < ctl->nrollbacks; i++) {
        l[0] = (struct prom_label){"service", ctl->rollbacks[i].service};
        l[1] = (struct prom_label){"trigger", ctl->rollbacks[i].trigger};
        rc = prom_sample_u64(out, "firebreak_rollbacks_total", l, 2, ctl->rollbacks[i].n);
    }
    if (!rc)
        rc = prom_family(out, "firebreak_store_errors_total", "counter",
                         "Store writes that failed or could not be queued.");
    if (!rc)
        rc = prom_sample_u64(out, "firebreak_store_errors_total", NULL, 0, ctl->store_errors);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------- */

static int state_dir_init(struct control *ctl)
{
    const char *dir = ctl->srv->cfg->state_dir;

    snprintf(ctl->state_dir, sizeof(ctl->state_dir), "%s", dir);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fb_error("state: cannot create %s: %s", dir, strerror(errno));
        return -FB_EIO;
    }
    return 0;
}

int control_init(struct control *ctl, struct server *srv)
{
    char where[4300], err[256];
    int rc;

    memset(ctl, 0, sizeof(*ctl));
    ctl->srv = srv;
    ctl->health_seq = calloc(ROUTE_MAX_ENDPOINTS, sizeof(*ctl->health_seq));
    ctl->health_event_ms = calloc(ROUTE_MAX_ENDPOINTS, sizeof(*ctl->health_event_ms));
    ctl->series = series_new(srv->metrics);
    if (!ctl->health_seq || !ctl->health_event_ms || !ctl->series)
        return -FB_ENOMEM;
    rc = state_dir_init(ctl);
    if (rc)
        return rc;
    if (srv->cfg->store_url)
        snprintf(where, sizeof(where), "%s", srv->cfg->store_url);
    else
        snprintf(where, sizeof(where), "%s/firebreak.db", ctl->state_dir);
    rc = store_open(where, srv->loop, &ctl->store, err, sizeof(err));
    if (rc) {
        fb_error("store: %s", err);
        return rc;
    }
    rc = load_spec(ctl);
    if (!rc)
        rc = load_tokens(ctl);
    if (!rc)
        rc = admin_token_init(ctl);
    if (!rc)
        rc = control_merge_config(ctl, srv->cfg);
    if (!rc)
        rc = metrics_add_renderer(srv->metrics, render_control, ctl);
    if (!rc)
        rc = rollouts_init(ctl, &ctl->rollouts);
    if (!rc)
        rc = incidents_init(ctl, &ctl->incidents);
    return rc;
}

int control_start(struct control *ctl)
{
    int rc = store_start(ctl->store);

    if (rc)
        return rc;
    uv_timer_init(ctl->srv->loop, &ctl->tick);
    ctl->tick.data = ctl;
    uv_timer_start(&ctl->tick, on_tick, TICK_MS, TICK_MS);
    control_event(ctl, "started", "system", NULL, NULL,
                  json_pack("{s:s, s:i}", "config", ctl->srv->config_path, "workers",
                            (int)ctl->srv->cfg->workers));
    return 0;
}

void control_stop(struct control *ctl)
{
    if (ctl->tick.data && !uv_is_closing((uv_handle_t *)&ctl->tick))
        uv_close((uv_handle_t *)&ctl->tick, NULL);
    if (ctl->store)
        store_close(ctl->store);
    ctl->store = NULL;
}

void control_release(struct control *ctl)
{
    size_t i;

    control_stop(ctl);
    for (i = 0; i < ctl->spec.nservices; i++)
        spec_service_free(&ctl->spec.services[i]);
    free(ctl->spec.services);
    ctl->spec.services = NULL;
    ctl->spec.nservices = 0;
    free(ctl->tokens);
    ctl->tokens = NULL;
    free(ctl->rollbacks);
    ctl->rollbacks = NULL;
    ctl->ntokens = 0;
    free(ctl->health_seq);
    free(ctl->health_event_ms);
    ctl->health_seq = NULL;
    ctl->health_event_ms = NULL;
    series_free(ctl->series);
    ctl->series = NULL;
    rollouts_free(ctl->rollouts);
    ctl->rollouts = NULL;
    incidents_free(ctl->incidents);
    ctl->incidents = NULL;
}
