/*
 * route.c: route tables: built from the config by the control thread, read by
 * the workers.
 *
 * Operations: route_table_new (O(services x endpoints)), route_match
 * (O(services), which is small: a linear scan beats hashing for tens of
 * services and keeps the table a flat array).
 *
 * Invariants: a published table is never written; endpoint ids are stable
 * for an address for the life of the process, so per-worker state (pools,
 * health) indexed by id survives table swaps.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firebreak/err-t.h"
#include "firebreak/metrics.h"
#include "firebreak/route.h"
#include "firebreak/split.h"

static int route_endpoint_id(struct route_ids *ids, const char *text, unsigned *out)
{
    unsigned i;

    for (i = 0; i < ids->n; i++) {
        if (!strcmp(ids->text[i], text)) {
            *out = i;
            return 0;
        }
    }
    if (ids->n == ROUTE_MAX_ENDPOINTS)
        return -FB_ETOOBIG;
    ids->text[ids->n] = strdup(text);
    if (!ids->text[ids->n])
        return -FB_ENOMEM;
    *out = ids->n++;
    return 0;
}

void route_ids_release(struct route_ids *ids)
{
    unsigned i;

    for (i = 0; i < ids->n; i++)
        free(ids->text[i]);
    ids->n = 0;
}

static void copy_name(char dst[ROUTE_NAME_MAX], const char *src)
{
    size_t n = strlen(src);

    if (n >= ROUTE_NAME_MAX)
        n = ROUTE_NAME_MAX - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int release_init(struct route_release *r, const char *name,
                        const struct cfg_addr *endpoints, size_t nendpoints,
                        struct route_ids *ids, struct route_table *t)
{
    size_t i;
    int rc;

    copy_name(r->name, name);
    r->endpoints = calloc(nendpoints ? nendpoints : 1, sizeof(*r->endpoints));
    if (!r->endpoints)
        return -FB_ENOMEM;
    r->nendpoints = (unsigned)nendpoints;
    for (i = 0; i < nendpoints; i++) {
        struct route_endpoint *e = &r->endpoints[i];

        e->addr = endpoints[i].addr;
        e->addr_len = endpoints[i].addr_len;
        copy_name(e->text, endpoints[i].text);
        rc = route_endpoint_id(ids, e->text, &e->id);
        if (rc)
            return rc;
        if (e->id + 1 > t->nendpoint_ids)
            t->nendpoint_ids = e->id + 1;
    }
    return 0;
}

static const struct route_spec_service *spec_find(const struct route_spec *spec, const char *name)
{
    size_t i;

    for (i = 0; spec && i < spec->nservices; i++) {
        if (!strcmp(spec->services[i].name, name))
            return &spec->services[i];
    }
    return NULL;
}

static void copy_lower(char *dst, size_t cap, const char *src, bool lower)
{
    size_t i;

    for (i = 0; src[i] && i + 1 < cap; i++)
        dst[i] = lower ? (char)tolower((unsigned char)src[i]) : src[i];
    dst[i] = '\0';
}

/* The methods whose requests the journal records for this service, as bits
 * of enum h1_method (journal.methods); methods outside the enum cannot be
 * journaled. */
static uint32_t journal_methods(const struct cfg_service *cs)
{
    static const struct {
        const char *name;
        enum h1_method m;
    } known[] = {{"GET", H1_M_GET},       {"HEAD", H1_M_HEAD},       {"POST", H1_M_POST},
                 {"PUT", H1_M_PUT},       {"DELETE", H1_M_DELETE},   {"PATCH", H1_M_PATCH},
                 {"OPTIONS", H1_M_OPTIONS}};
    uint32_t bits = 0;
    size_t i, k;

    /* The config fills in the default list; an empty one journals nothing. */
    for (i = 0; i < cs->journal.nmethods; i++) {
        for (k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (!strcasecmp(cs->journal.methods[i], known[k].name))
                bits |= 1u << known[k].m;
        }
    }
    return bits;
}

static int service_match_init(struct route_service *s, const struct cfg_service *cs)
{
    size_t i, n;

    copy_name(s->name, cs->name);
    if (cs->match_host && strcmp(cs->match_host, "*")) {
        s->host = strdup(cs->match_host);
        if (!s->host)
            return -FB_ENOMEM;
        s->host_len = strlen(s->host);
    }
    s->prefix = strdup(cs->match_path_prefix ? cs->match_path_prefix : "/");
    if (!s->prefix)
        return -FB_ENOMEM;
    s->prefix_len = strlen(s->prefix);
    s->sticky = cs->sticky;
    copy_name(s->sticky_name, cs->sticky_name ? cs->sticky_name : "fb_uid");
    if (s->sticky == CFG_STICKY_HEADER) {
        n = strlen(s->sticky_name);
        for (i = 0; i < n; i++)
            s->sticky_name[i] = (char)tolower((unsigned char)s->sticky_name[i]);
    }
    s->allow_pin = cs->allow_pin;
    s->identity = cs->identity;
    copy_lower(s->identity_name, sizeof(s->identity_name),
               cs->identity_name ? cs->identity_name : "",
               cs->identity == CFG_IDENTITY_HEADER);
    s->journal_methods = journal_methods(cs);
    s->journal_body = cs->journal.body_bytes > UINT32_MAX ? UINT32_MAX
                                                          : (uint32_t)cs->journal.body_bytes;
    return 0;
}

/* Releases from the runtime spec. */
static int service_from_spec(struct route_service *s, const struct route_spec_service *ss,
                             struct route_ids *ids, struct route_table *t)
{
    size_t i;
    int rc;

    s->releases = calloc(ss->nreleases ? ss->nreleases : 1, sizeof(*s->releases));
    if (!s->releases)
        return -FB_ENOMEM;
    s->nreleases = (unsigned)ss->nreleases;
    for (i = 0; i < ss->nreleases; i++) {
        const struct route_spec_release *sr = &ss->releases[i];

        rc = release_init(&s->releases[i], sr->name, sr->endpoints, sr->nendpoints, ids, t);
        if (rc)
            return rc;
        s->releases[i].weight_bp = sr->weight_bp;
        if (ss->stable && !strcmp(sr->name, ss->stable))
            s->stable = (unsigned)i;
    }
    return 0;
}

/* Releases as the config declares them. */
static int service_from_config(struct route_service *s, const struct cfg_service *cs,
                               struct route_ids *ids, struct route_table *t)
{
    size_t i;
    int rc;

    s->releases = calloc(cs->nreleases ? cs->nreleases : 1, sizeof(*s->releases));
    if (!s->releases)
        return -FB_ENOMEM;
    s->nreleases = (unsigned)cs->nreleases;
    for (i = 0; i < cs->nreleases; i++) {
        const struct cfg_release *cr = &cs->releases[i];

        rc = release_init(&s->releases[i], cr->name, cr->endpoints, cr->nendpoints, ids, t);
        if (rc)
            return rc;
        s->releases[i].weight_bp = (uint32_t)(cr->weight * 100.0 + 0.5);
        if (!strcmp(cr->name, cs->stable))
            s->stable = (unsigned)i;
    }
    return 0;
}

static int service_init(struct route_service *s, const struct cfg_service *cs,
                        const struct route_spec *spec, struct route_ids *ids, struct metrics *m,
                        struct route_table *t)
{
    const struct route_spec_service *ss = spec_find(spec, cs->name);
    unsigned i;
    int rc;

    rc = service_match_init(s, cs);
    if (!rc)
        rc = ss && ss->nreleases ? service_from_spec(s, ss, ids, t)
                                 : service_from_config(s, cs, ids, t);
    if (rc)
        return rc;
    for (i = 0; m && i < s->nreleases; i++) {
        s->releases[i].metrics = metrics_release(m, s->name, s->releases[i].name);
        if (!s->releases[i].metrics)
            return -FB_ENOMEM;
    }
    split_assign(s);
    return 0;
}

int route_table_new(const struct config *cfg, const struct route_spec *spec,
                    struct route_ids *ids, struct metrics *m, uint64_t version,
                    struct route_table **out)
{
    struct route_table *t;
    size_t i;
    int rc = -FB_ENOMEM;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    t->version = version;
    t->h1.max_line = cfg->limits.request_line;
    t->h1.max_head = cfg->limits.header_bytes;
    t->h1.max_fields = cfg->limits.header_fields;
    t->timeouts = cfg->timeouts;
    t->upstream_connections = cfg->limits.upstream_connections;
    t->services = calloc(cfg->nservices ? cfg->nservices : 1, sizeof(*t->services));
    if (!t->services)
        goto free_table;
    t->nservices = (unsigned)cfg->nservices;
    for (i = 0; i < cfg->nservices; i++) {
        rc = service_init(&t->services[i], &cfg->services[i], spec, ids, m, t);
        if (rc)
            goto free_table;
    }
    *out = t;
    return 0;
free_table:
    route_table_free(t);
fail:
    return rc;
}

void route_table_free(struct route_table *t)
{
    unsigned i, j;

    if (!t)
        return;
    for (i = 0; i < t->nservices; i++) {
        struct route_service *s = &t->services[i];

        for (j = 0; j < s->nreleases; j++)
            free(s->releases[j].endpoints);
        free(s->releases);
        free(s->host);
        free(s->prefix);
    }
    free(t->services);
    free(t);
}

static bool host_matches(const struct route_service *s, const char *host, size_t len)
{
    if (!s->host)
        return true;
    return len == s->host_len && !strncasecmp(host, s->host, len);
}

const struct route_service *route_match(const struct route_table *t, const char *host,
                                        size_t host_len, const char *path, size_t path_len)
{
    const struct route_service *best = NULL;
    unsigned i;

    for (i = 0; i < t->nservices; i++) {
        const struct route_service *s = &t->services[i];

        if (!host_matches(s, host, host_len))
            continue;
        if (s->prefix_len > path_len || memcmp(path, s->prefix, s->prefix_len))
            continue;
        if (!best || s->prefix_len > best->prefix_len ||
            (s->prefix_len == best->prefix_len && s->host && !best->host))
            best = s;
    }
    return best;
}
