/*
 * impact.c: the data-impact report and the export, read from STATE/journal.db with
 * STATE/journal-index.db attached as ix.
 *
 * One read-write connection set to query_only (WAL lets it read while the writer and the
 * indexer commit; it never writes), used by one thread at a time. Every report runs inside
 * one read transaction, so its figures come from one snapshot of both files.
 *
 * Two ways to answer a report (docs/journal.md):
 *   - summaries: when the window holds every write of the release (no bounds, or bounds
 *     outside its first and last write, found in O(log n) on the writes_release index), the
 *     counts come from ix.release_totals, the routes from ix.release_routes and the lists
 *     from ix.release_identities and ix.release_entities, which hold every record up to the
 *     indexer's watermark (ix.meta indexed_id). The records after the watermark (the last
 *     moments, or a backlog after a burst) are read by rowid and merged in: new identities
 *     and entities are those absent from the summaries. Cost: O(routes + list_max + records
 *     after the watermark), whatever the number of records.
 *   - records: otherwise the writes in the window are read once through writes_release and
 *     counted in memory (exact distinct counts, at most IMPACT_DISTINCT_MAX names of each
 *     kind). Cost: O(records in the window).
 * Either way the lists are the first list_max names in byte order, with their write counts.
 *
 * Dropped records: the runs table holds each process run's drop count; a report adds the
 * counts of runs overlapping its window and, for the live run, the journal's live count.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"
#include "firebreak/impact.h"
#include "firebreak/journal.h"

#define IMPACT_BUSY_MS 5000
#define LINE_MAX_BYTES (JOURNAL_BODY_MAX * 8 + 16384) /* one exported record, escaped */

struct impact {
    sqlite3 *db;
    struct journal *live;
    uint64_t loading; /* committed records journal_sync could not load in time */
    int64_t watermark; /* of the report being answered */
};

/* Bound parameters shared by the report's statements. */
enum { P_SERVICE = 1, P_RELEASE, P_SINCE, P_UNTIL, P_LIMIT, P_WATERMARK };

#define WHERE_RELEASE " WHERE service = ?1 AND \"release\" = ?2"
#define WHERE_WINDOW WHERE_RELEASE " AND time_ms >= ?3 AND time_ms < ?4"
/* The records after the watermark, by rowid (the unary + keeps SQLite off writes_release). */
#define WHERE_TAIL " WHERE id > ?6 AND +service = ?1 AND +\"release\" = ?2"

static const char sql_first[] = "SELECT time_ms FROM writes" WHERE_RELEASE
                                " ORDER BY time_ms LIMIT 1";
static const char sql_last[] = "SELECT time_ms FROM writes" WHERE_RELEASE
                               " ORDER BY time_ms DESC LIMIT 1";
static const char sql_watermark[] = "SELECT COALESCE((SELECT value FROM ix.meta WHERE key ="
                                    " 'indexed_id'), 0)";

/* Summaries, and the records after the watermark. */
static const char sum_totals[] = "SELECT writes, identified, identities, with_entity, entities"
                                 " FROM ix.release_totals" WHERE_RELEASE;
static const char sum_routes[] = "SELECT route, status, n FROM ix.release_routes" WHERE_RELEASE
                                 " ORDER BY n DESC, route, status LIMIT ?5";
static const char sum_ident_list[] = "SELECT identity, n FROM ix.release_identities" WHERE_RELEASE
                                     " ORDER BY identity LIMIT ?5";
static const char sum_ent_list[] = "SELECT entity, n FROM ix.release_entities" WHERE_RELEASE
                                   " ORDER BY entity LIMIT ?5";
static const char tail_totals[] = "SELECT COUNT(*), COUNT(identity), COUNT(entity) FROM writes"
                                  WHERE_TAIL;
static const char tail_new_idents[] =
    "SELECT COUNT(DISTINCT identity) FROM writes AS w" WHERE_TAIL " AND identity IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM ix.release_identities AS s WHERE s.service = ?1"
    " AND s.\"release\" = ?2 AND s.identity = w.identity)";
static const char tail_new_ents[] =
    "SELECT COUNT(DISTINCT entity) FROM writes AS w" WHERE_TAIL " AND entity IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM ix.release_entities AS s WHERE s.service = ?1"
    " AND s.\"release\" = ?2 AND s.entity = w.entity)";
static const char tail_routes[] = "SELECT route, status, COUNT(*) FROM writes" WHERE_TAIL
                                  " GROUP BY route, status";
static const char tail_ident_list[] = "SELECT identity, COUNT(*) FROM writes" WHERE_TAIL
                                      " AND identity IS NOT NULL GROUP BY identity"
                                      " ORDER BY identity LIMIT ?5";
static const char tail_ent_list[] = "SELECT entity, COUNT(*) FROM writes" WHERE_TAIL
                                    " AND entity IS NOT NULL GROUP BY entity"
                                    " ORDER BY entity LIMIT ?5";

/* Records in the window: one scan, counted in memory (tally). */
static const char rec_scan[] = "SELECT route, status, identity, entity, time_ms FROM writes"
                               WHERE_WINDOW;

static const char sql_dropped[] = "SELECT COALESCE(SUM(dropped), 0) FROM runs WHERE id <> ?1"
                                  " AND started_ms < ?2 AND updated_ms >= ?3";

static void say(char *err, size_t errlen, const char *what, const char *detail)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Attaches the journal's index file as ix (it must exist: journal_open made it). */
static int index_attach(struct impact *im, const char *path)
{
    char ipath[4096];
    sqlite3_stmt *st = NULL;
    int rc = -FB_ESTORE;

    if (journal_index_path(path, ipath, sizeof ipath) == 0 && access(ipath, F_OK) == 0 &&
        sqlite3_prepare_v2(im->db, "ATTACH DATABASE ?1 AS ix", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, ipath, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

int impact_open(const char *path, struct journal *live, struct impact **out, char *err,
                size_t errlen)
{
    struct impact *im;
    int rc;

    *out = NULL;
    im = calloc(1, sizeof *im);
    if (!im)
        return -FB_ENOMEM;
    im->live = live;
    rc = sqlite3_open_v2(path, &im->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_CANTOPEN) {
        say(err, errlen, "no journal file", path);
        rc = -FB_ENOENT;
    } else if (rc != SQLITE_OK) {
        say(err, errlen, path, im->db ? sqlite3_errmsg(im->db) : "out of memory");
        rc = -FB_ESTORE;
    } else {
        sqlite3_busy_timeout(im->db, IMPACT_BUSY_MS);
        rc = index_attach(im, path);
        if (rc == 0 && sqlite3_exec(im->db, "PRAGMA query_only = ON", NULL, NULL, NULL))
            rc = -FB_ESTORE;
        if (rc)
            say(err, errlen, path, sqlite3_errmsg(im->db));
    }
    if (rc) {
        sqlite3_close(im->db);
        free(im);
        return rc;
    }
    *out = im;
    return 0;
}

void impact_close(struct impact *im)
{
    if (!im)
        return;
    sqlite3_close(im->db);
    free(im);
}

/* ---- statements ---------------------------------------------------------------------------- */

/* Prepares sql and binds what it uses of: service, release, the window, a limit, the
 * watermark. */
/* Has every write the live journal committed loaded into the file before a query reads it. */
static void live_sync(struct impact *im)
{
    if (im->live)
        im->loading = (uint64_t)journal_sync(im->live, IMPACT_SYNC_MS);
}

static int prep(struct impact *im, const char *sql, const struct impact_filter *f, int64_t limit,
                sqlite3_stmt **st)
{
    int n;

    if (sqlite3_prepare_v2(im->db, sql, -1, st, NULL) != SQLITE_OK)
        return -FB_ESTORE;
    n = sqlite3_bind_parameter_count(*st);
    if (n >= P_SERVICE)
        sqlite3_bind_text(*st, P_SERVICE, f->service, -1, SQLITE_STATIC);
    if (n >= P_RELEASE)
        sqlite3_bind_text(*st, P_RELEASE, f->release, -1, SQLITE_STATIC);
    if (n >= P_UNTIL) {
        sqlite3_bind_int64(*st, P_SINCE, f->since_ms);
        sqlite3_bind_int64(*st, P_UNTIL, f->until_ms ? f->until_ms : INT64_MAX);
    }
    if (n >= P_LIMIT)
        sqlite3_bind_int64(*st, P_LIMIT, limit);
    if (n >= P_WATERMARK)
        sqlite3_bind_int64(*st, P_WATERMARK, im->watermark);
    return 0;
}

/* Runs a one-row query into n integers (NULL columns and a missing row leave them alone). */
static int row_ints(struct impact *im, const char *sql, const struct impact_filter *f,
                    int64_t *out, int n)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(im, sql, f, 0, &st), step, i;

    if (rc == 0) {
        step = sqlite3_step(st);
        for (i = 0; step == SQLITE_ROW && i < n; i++)
            if (sqlite3_column_type(st, i) != SQLITE_NULL)
                out[i] = sqlite3_column_int64(st, i);
        rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : -FB_ESTORE;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Adds (route, status, n) to r's routes: to its row when there is one, else as a new row
 * (when the table is full the report says it was cut). */
static int route_add(struct impact_report *r, const char *route, int status, uint64_t n)
{
    struct impact_route *e;
    size_t i;

    for (i = 0; i < r->nroutes; i++) {
        if (r->routes[i].status == status && strcmp(r->routes[i].route, route) == 0) {
            r->routes[i].writes += n;
            return 0;
        }
    }
    if (r->nroutes == IMPACT_ROUTES_MAX) {
        r->routes_cut = true;
        return 0;
    }
    e = &r->routes[r->nroutes];
    e->route = strdup(route);
    if (!e->route)
        return -FB_ENOMEM;
    e->status = status;
    e->writes = n;
    r->nroutes++;
    return 0;
}

static int route_cmp(const void *a, const void *b)
{
    const struct impact_route *x = a, *y = b;
    int c;

    if (x->writes != y->writes)
        return x->writes > y->writes ? -1 : 1;
    c = strcmp(x->route, y->route);
    return c ? c : x->status - y->status;
}

/* Adds the rows of sql (route, status, count) to r's routes. */
static int routes_read(struct impact *im, const char *sql, const struct impact_filter *f,
                       struct impact_report *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(im, sql, f, IMPACT_ROUTES_MAX + 1, &st), step = SQLITE_DONE;

    if (rc == 0 && !r->routes) {
        r->routes = calloc(IMPACT_ROUTES_MAX, sizeof *r->routes);
        if (!r->routes)
            rc = -FB_ENOMEM;
    }
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = route_add(r, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                       (uint64_t)sqlite3_column_int64(st, 2));
    if (rc == 0 && step != SQLITE_DONE)
        rc = -FB_ESTORE;
    sqlite3_finalize(st);
    if (rc == 0)
        qsort(r->routes, r->nroutes, sizeof *r->routes, route_cmp);
    return rc;
}

static void names_free(struct impact_name *list, size_t n)
{
    size_t i;

    for (i = 0; list && i < n; i++)
        free(list[i].name);
    free(list);
}

/* The rows of sql (name, count), at most max, into a new *list. */
static int names_read(struct impact *im, const char *sql, const struct impact_filter *f,
                      size_t max, struct impact_name **list, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(im, sql, f, (int64_t)max, &st), step = SQLITE_DONE;

    *n = 0;
    *list = calloc(max ? max : 1, sizeof **list);
    if (rc == 0 && !*list)
        rc = -FB_ENOMEM;
    while (rc == 0 && *n < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
        (*list)[*n].name = strdup((const char *)sqlite3_column_text(st, 0));
        (*list)[*n].writes = (uint64_t)sqlite3_column_int64(st, 1);
        if (!(*list)[*n].name)
            rc = -FB_ENOMEM;
        else
            (*n)++;
    }
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = -FB_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/*
 * Merges two lists ordered by name into the first max names of their union, counts added
 * for a name in both. Both inputs are freed. Correct for a cut input: a name among the first
 * max of the union is among the first max of each list that holds it.
 */
static int names_merge(struct impact_name *a, size_t na, struct impact_name *b, size_t nb,
                       size_t max, struct impact_name **out, size_t *n)
{
    size_t i = 0, k = 0;
    int c;

    *n = 0;
    *out = calloc(max ? max : 1, sizeof **out);
    if (!*out) {
        names_free(a, na);
        names_free(b, nb);
        return -FB_ENOMEM;
    }
    while (*n < max && (i < na || k < nb)) {
        c = i == na ? 1 : k == nb ? -1 : strcmp(a[i].name, b[k].name);
        if (c <= 0) {
            (*out)[*n] = a[i];
            a[i++].name = NULL;
            if (c == 0)
                (*out)[*n].writes += b[k++].writes;
        } else {
            (*out)[*n] = b[k];
            b[k++].name = NULL;
        }
        (*n)++;
    }
    names_free(a, na);
    names_free(b, nb);
    return 0;
}

/* A list from the summaries merged with the same list from the records after the watermark. */
static int names_summary(struct impact *im, const char *sum_sql, const char *tail_sql,
                         const struct impact_filter *f, size_t max, struct impact_name **out,
                         size_t *n)
{
    struct impact_name *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = names_read(im, sum_sql, f, max, &a, &na);

    if (rc == 0)
        rc = names_read(im, tail_sql, f, max, &b, &nb);
    if (rc) {
        names_free(a, na);
        names_free(b, nb);
        return rc;
    }
    return names_merge(a, na, b, nb, max, out, n);
}

/* ---- the report ---------------------------------------------------------------------------- */

static size_t list_max(const struct impact_filter *f)
{
    size_t max = f->list_max ? f->list_max : IMPACT_LIST_DEFAULT;

    return max > IMPACT_LIST_MAX ? IMPACT_LIST_MAX : max;
}

/* Summaries plus the records after the watermark. */
static int summary_fill(struct impact *im, const struct impact_filter *f, struct impact_report *r)
{
    int64_t v[5] = {0}, t[3] = {0}, new_idents = 0, new_ents = 0;
    int rc = row_ints(im, sum_totals, f, v, 5);

    if (rc == 0)
        rc = row_ints(im, tail_totals, f, t, 3);
    if (rc == 0)
        rc = row_ints(im, tail_new_idents, f, &new_idents, 1);
    if (rc == 0)
        rc = row_ints(im, tail_new_ents, f, &new_ents, 1);
    r->writes = (uint64_t)(v[0] + t[0]);
    r->anonymous = (uint64_t)(v[0] + t[0] - v[1] - t[1]);
    r->identities = (uint64_t)(v[2] + new_idents);
    r->without_entity = (uint64_t)(v[0] + t[0] - v[3] - t[2]);
    r->entities = (uint64_t)(v[4] + new_ents);
    if (rc == 0)
        rc = routes_read(im, sum_routes, f, r);
    if (rc == 0)
        rc = routes_read(im, tail_routes, f, r);
    if (rc == 0)
        rc = names_summary(im, sum_ident_list, tail_ident_list, f, list_max(f),
                           &r->identity_list, &r->nidentity_list);
    if (rc == 0)
        rc = names_summary(im, sum_ent_list, tail_ent_list, f, list_max(f), &r->entity_list,
                           &r->nentity_list);
    return rc;
}

/* ---- counting a window in memory ---------------------------------------------------------- */

/* A set of byte strings with a count each: open addressing, keys in one growing block. */
struct tally_entry {
    uint64_t hash; /* 0: free */
    uint64_t off;
    uint32_t len;
    uint64_t n;
};

struct tally_set {
    struct tally_entry *tab;
    size_t cap, used;
    char *keys;
    size_t klen, kcap;
};

static uint64_t tally_hash(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

static int tally_grow(struct tally_set *t)
{
    size_t cap = t->cap ? t->cap * 2 : 4096, i, p;
    struct tally_entry *tab = calloc(cap, sizeof *tab);

    if (!tab)
        return -FB_ENOMEM;
    for (i = 0; i < t->cap; i++) {
        if (!t->tab[i].hash)
            continue;
        for (p = t->tab[i].hash & (cap - 1); tab[p].hash; p = (p + 1) & (cap - 1))
            ;
        tab[p] = t->tab[i];
    }
    free(t->tab);
    t->tab = tab;
    t->cap = cap;
    return 0;
}

/* Counts one occurrence of key (n bytes). -FB_ETOOBIG past IMPACT_DISTINCT_MAX keys. */
static int tally_add(struct tally_set *t, const char *key, size_t n)
{
    uint64_t h = tally_hash(key, n);
    size_t p, cap;
    char *keys;

    if ((t->used + 1) * 2 > t->cap && tally_grow(t))
        return -FB_ENOMEM;
    for (p = h & (t->cap - 1); t->tab[p].hash; p = (p + 1) & (t->cap - 1)) {
        if (t->tab[p].hash == h && t->tab[p].len == n && !memcmp(t->keys + t->tab[p].off, key, n)) {
            t->tab[p].n++;
            return 0;
        }
    }
    if (t->used == IMPACT_DISTINCT_MAX)
        return -FB_ETOOBIG;
    if (t->klen + n > t->kcap) {
        cap = t->kcap ? t->kcap * 2 : 65536;
        while (cap < t->klen + n)
            cap *= 2;
        keys = realloc(t->keys, cap);
        if (!keys)
            return -FB_ENOMEM;
        t->keys = keys;
        t->kcap = cap;
    }
    memcpy(t->keys + t->klen, key, n);
    t->tab[p] = (struct tally_entry){.hash = h, .off = t->klen, .len = (uint32_t)n, .n = 1};
    t->klen += n;
    t->used++;
    return 0;
}

static void tally_release(struct tally_set *t)
{
    free(t->tab);
    free(t->keys);
    memset(t, 0, sizeof *t);
}

/* Byte order, as SQLite's BINARY collation sorts text. */
static int key_cmp(const struct tally_set *t, const struct tally_entry *a,
                   const struct tally_entry *b)
{
    int c = memcmp(t->keys + a->off, t->keys + b->off, a->len < b->len ? a->len : b->len);

    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Max-heap of entries by key: keeps the max smallest keys seen. */
static void heap_sift_down(const struct tally_set *t, const struct tally_entry **h, size_t n,
                           size_t i)
{
    const struct tally_entry *x;
    size_t c;

    for (; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && key_cmp(t, h[c + 1], h[c]) > 0)
            c++;
        if (key_cmp(t, h[c], h[i]) <= 0)
            break;
        x = h[i];
        h[i] = h[c];
        h[c] = x;
    }
}

static void heap_sift_up(const struct tally_set *t, const struct tally_entry **h, size_t i)
{
    const struct tally_entry *x;

    for (; i > 0 && key_cmp(t, h[i], h[(i - 1) / 2]) > 0; i = (i - 1) / 2) {
        x = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = x;
    }
}

static int entry_cmp(const void *a, const void *b, void *set)
{
    return key_cmp(set, *(const struct tally_entry *const *)a,
                   *(const struct tally_entry *const *)b);
}

/* Most counted first, then by key. */
static int busiest_cmp(const void *a, const void *b, void *set)
{
    const struct tally_entry *x = *(const struct tally_entry *const *)a;
    const struct tally_entry *y = *(const struct tally_entry *const *)b;

    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return key_cmp(set, x, y);
}

/* The first max keys of t in byte order, with their counts, into a new *list. */
static int tally_first(const struct tally_set *t, size_t max, struct impact_name **list,
                       size_t *n)
{
    const struct tally_entry **heap = calloc(max ? max : 1, sizeof *heap);
    size_t i, k = 0;

    *n = 0;
    *list = calloc(max ? max : 1, sizeof **list);
    if (!heap || !*list) {
        free(heap);
        return -FB_ENOMEM;
    }
    for (i = 0; max && i < t->cap; i++) {
        if (!t->tab[i].hash)
            continue;
        if (k < max) {
            heap[k] = &t->tab[i];
            heap_sift_up(t, heap, k++);
        } else if (key_cmp(t, &t->tab[i], heap[0]) < 0) {
            heap[0] = &t->tab[i];
            heap_sift_down(t, heap, k, 0);
        }
    }
    qsort_r(heap, k, sizeof *heap, entry_cmp, (void *)t);
    for (i = 0; i < k; i++) {
        (*list)[i].name = strndup(t->keys + heap[i]->off, heap[i]->len);
        (*list)[i].writes = heap[i]->n;
        if (!(*list)[i].name)
            break;
    }
    *n = i;
    free(heap);
    return i == k ? 0 : -FB_ENOMEM;
}

struct tally {
    struct tally_set routes; /* key: route NUL status NUL */
    struct tally_set identities, entities;
    uint64_t writes, identified, with_entity;
    int64_t first, last;
};

static int tally_row(struct tally *t, sqlite3_stmt *st)
{
    char key[JOURNAL_ROUTE_MAX + 16];
    const char *route = (const char *)sqlite3_column_text(st, 0);
    int64_t time = sqlite3_column_int64(st, 4);
    int klen, rc;

    klen = snprintf(key, sizeof key, "%s%c%d", route ? route : "?", '\0',
                    sqlite3_column_int(st, 1));
    /* The key keeps its final NUL, so its status reads as a string. */
    rc = tally_add(&t->routes, key, klen > 0 && (size_t)klen < sizeof key ? (size_t)klen + 1 : 0);
    if (rc == 0 && sqlite3_column_type(st, 2) != SQLITE_NULL) {
        t->identified++;
        rc = tally_add(&t->identities, (const char *)sqlite3_column_text(st, 2),
                       (size_t)sqlite3_column_bytes(st, 2));
    }
    if (rc == 0 && sqlite3_column_type(st, 3) != SQLITE_NULL) {
        t->with_entity++;
        rc = tally_add(&t->entities, (const char *)sqlite3_column_text(st, 3),
                       (size_t)sqlite3_column_bytes(st, 3));
    }
    if (t->writes == 0 || time < t->first)
        t->first = time;
    if (t->writes == 0 || time > t->last)
        t->last = time;
    t->writes++;
    return rc;
}

/* The busiest IMPACT_ROUTES_MAX (route, status) pairs of the tally into r. */
static int tally_routes(const struct tally *t, struct impact_report *r)
{
    const struct tally_set *s = &t->routes;
    const struct tally_entry **all = calloc(s->used ? s->used : 1, sizeof *all);
    const char *key;
    size_t i, n = 0;
    int rc = 0;

    r->routes = calloc(IMPACT_ROUTES_MAX, sizeof *r->routes);
    if (!all || !r->routes) {
        free(all);
        return -FB_ENOMEM;
    }
    for (i = 0; i < s->cap; i++)
        if (s->tab[i].hash)
            all[n++] = &s->tab[i];
    qsort_r(all, n, sizeof *all, busiest_cmp, (void *)s);
    for (i = 0; rc == 0 && i < n; i++) {
        key = s->keys + all[i]->off; /* "route\0status\0" */
        rc = route_add(r, key, (int)strtol(key + strlen(key) + 1, NULL, 10), all[i]->n);
    }
    free(all);
    return rc;
}

static int tally_scan(struct impact *im, const struct impact_filter *f, struct tally *t)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(im, rec_scan, f, 0, &st), step = SQLITE_DONE;

    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = tally_row(t, st);
    if (rc == 0 && step != SQLITE_DONE)
        rc = -FB_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/*
 * The records in the window, counted in memory in one scan: exact distinct counts in time
 * and memory proportional to the records and the distinct names (at most
 * IMPACT_DISTINCT_MAX of each, else -FB_ETOOBIG).
 */
static int records_fill(struct impact *im, const struct impact_filter *f,
                        struct impact_report *r)
{
    struct tally t = {0};
    int rc = tally_scan(im, f, &t);

    r->writes = t.writes;
    r->anonymous = t.writes - t.identified;
    r->identities = t.identities.used;
    r->without_entity = t.writes - t.with_entity;
    r->entities = t.entities.used;
    r->first_ms = t.writes ? t.first : 0;
    r->last_ms = t.writes ? t.last : 0;
    if (rc == 0)
        rc = tally_routes(&t, r);
    if (rc == 0)
        rc = tally_first(&t.identities, list_max(f), &r->identity_list, &r->nidentity_list);
    if (rc == 0)
        rc = tally_first(&t.entities, list_max(f), &r->entity_list, &r->nentity_list);
    tally_release(&t.routes);
    tally_release(&t.identities);
    tally_release(&t.entities);
    return rc;
}

uint64_t impact_loading(const struct impact *im)
{
    return im->loading;
}

int impact_dropped(struct impact *im, const struct impact_filter *f, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    int rc;

    if (sqlite3_prepare_v2(im->db, sql_dropped, -1, &st, NULL) != SQLITE_OK)
        return -FB_ESTORE;
    sqlite3_bind_int64(st, 1, im->live ? journal_run(im->live) : 0);
    sqlite3_bind_int64(st, 2, f->until_ms ? f->until_ms : INT64_MAX);
    sqlite3_bind_int64(st, 3, f->since_ms);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    *out = (uint64_t)v + (im->live ? journal_dropped(im->live) : 0);
    return rc == SQLITE_ROW ? 0 : -FB_ESTORE;
}

static int filter_check(const struct impact_filter *f, bool need_release, char *err,
                        size_t errlen)
{
    if (!f->service || !f->service[0]) {
        say(err, errlen, "a service is required", NULL);
        return -FB_EINVAL;
    }
    if (need_release && (!f->release || !f->release[0])) {
        say(err, errlen, "a release is required", NULL);
        return -FB_EINVAL;
    }
    if (f->since_ms < 0 || f->until_ms < 0 || (f->until_ms && f->since_ms >= f->until_ms)) {
        say(err, errlen, "the window is empty: since must be before until", NULL);
        return -FB_EINVAL;
    }
    return 0;
}

/* Inside the read transaction: chooses the plan and fills r. */
static int report_run(struct impact *im, const struct impact_filter *f, struct impact_report *r)
{
    int64_t first = 0, last = 0;
    int rc = row_ints(im, sql_first, f, &first, 1);

    if (rc == 0)
        rc = row_ints(im, sql_last, f, &last, 1);
    if (rc == 0)
        rc = row_ints(im, sql_watermark, f, &im->watermark, 1);
    if (rc)
        return rc;
    r->summary = (!f->since_ms || f->since_ms <= first) && (!f->until_ms || f->until_ms > last);
    if (!r->summary)
        return records_fill(im, f, r);
    r->first_ms = first;
    r->last_ms = last;
    return summary_fill(im, f, r);
}

int impact_query(struct impact *im, const struct impact_filter *f, struct impact_report *out,
                 char *err, size_t errlen)
{
    uint64_t t0 = fb_mono_ns();
    int rc;

    memset(out, 0, sizeof *out);
    rc = filter_check(f, true, err, errlen);
    if (rc)
        return rc;
    live_sync(im);
    if (sqlite3_exec(im->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        say(err, errlen, "cannot read the journal", sqlite3_errmsg(im->db));
        return -FB_ESTORE;
    }
    rc = report_run(im, f, out);
    if (rc == 0)
        rc = impact_dropped(im, f, &out->dropped);
    out->loading = im->loading;
    if (rc == -FB_ESTORE)
        say(err, errlen, "cannot read the journal", sqlite3_errmsg(im->db));
    else if (rc == -FB_ETOOBIG)
        say(err, errlen, "the window holds more distinct identities or entities than a report "
                         "counts (5000000); narrow it, or ask for the whole release", NULL);
    else if (rc)
        say(err, errlen, fb_err_message(rc), NULL);
    sqlite3_exec(im->db, "COMMIT", NULL, NULL, NULL);
    if (rc)
        impact_report_release(out);
    out->elapsed_ms = (double)(fb_mono_ns() - t0) / 1e6;
    return rc;
}

void impact_report_release(struct impact_report *r)
{
    size_t i;

    for (i = 0; r->routes && i < r->nroutes; i++)
        free(r->routes[i].route);
    free(r->routes);
    names_free(r->identity_list, r->nidentity_list);
    names_free(r->entity_list, r->nentity_list);
    memset(r, 0, sizeof *r);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    char buf[64];

    if (!ms)
        return json_null();
    fb_format_time(ms, buf);
    return json_string(buf);
}

static json_t *names_json(const struct impact_name *list, size_t n, const char *key)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:I}", key, list[i].name, "writes",
                                           (json_int_t)list[i].writes));
    return a;
}

json_t *impact_report_json(const struct impact_report *r, const struct impact_filter *f)
{
    json_t *routes = json_array(), *j;
    size_t i;

    for (i = 0; i < r->nroutes; i++)
        json_array_append_new(routes, json_pack("{s:s, s:i, s:I}", "route", r->routes[i].route,
                                                "status", r->routes[i].status, "writes",
                                                (json_int_t)r->routes[i].writes));
    j = json_pack("{s:s?, s:s?, s:o, s:o, s:I, s:o, s:o, s:I, s:I}", "service", f->service,
                  "release", f->release, "since", time_json(f->since_ms), "until",
                  time_json(f->until_ms), "writes", (json_int_t)r->writes, "first",
                  time_json(r->first_ms), "last", time_json(r->last_ms), "first_ms",
                  (json_int_t)r->first_ms, "last_ms", (json_int_t)r->last_ms);
    if (!j) {
        json_decref(routes);
        return NULL;
    }
    json_object_set_new(j, "by_route", routes);
    json_object_set_new(j, "by_route_cut", json_boolean(r->routes_cut));
    json_object_set_new(j, "identities", json_integer((json_int_t)r->identities));
    json_object_set_new(j, "anonymous_writes", json_integer((json_int_t)r->anonymous));
    json_object_set_new(j, "identity_list",
                        names_json(r->identity_list, r->nidentity_list, "identity"));
    json_object_set_new(j, "identity_list_cut",
                        json_boolean(r->nidentity_list < r->identities));
    json_object_set_new(j, "entities", json_integer((json_int_t)r->entities));
    json_object_set_new(j, "writes_without_entity", json_integer((json_int_t)r->without_entity));
    json_object_set_new(j, "entity_list", names_json(r->entity_list, r->nentity_list, "entity"));
    json_object_set_new(j, "entity_list_cut", json_boolean(r->nentity_list < r->entities));
    json_object_set_new(j, "dropped", json_integer((json_int_t)r->dropped));
    json_object_set_new(j, "loading", json_integer((json_int_t)r->loading));
    json_object_set_new(j, "complete", json_boolean(r->dropped == 0 && r->loading == 0));
    json_object_set_new(j, "source", json_string(r->summary ? "summary" : "records"));
    json_object_set_new(j, "elapsed_ms", json_real(r->elapsed_ms));
    return j;
}

/* ---- export -------------------------------------------------------------------------------- */

#define EXPORT_COLS                                                                          \
    "SELECT id, time_ms, request_id, service, \"release\", method, path, route, identity,"  \
    " entity, location, status, duration_us, upstream_us, body FROM writes"
/* With an identity: the records the writes_by_identity index holds, then those after the
 * watermark (the unary + keeps SQLite on the rowids). */
#define EXPORT_BY_IDENTITY                                                                   \
    EXPORT_COLS " WHERE id IN (SELECT id FROM ix.writes_by_identity WHERE service = ?1 AND"       \
                " identity = ?5) AND +time_ms >= ?3 AND +time_ms < ?4%s UNION ALL " EXPORT_COLS \
                " WHERE id > ?7 AND +service = ?1 AND identity = ?5 AND +time_ms >= ?3 AND"     \
                " +time_ms < ?4%s ORDER BY 2, 1 LIMIT ?6"

enum { C_ID, C_TIME, C_REQ, C_SERVICE, C_RELEASE, C_METHOD, C_PATH, C_ROUTE, C_IDENTITY,
       C_ENTITY, C_LOCATION, C_STATUS, C_DURATION, C_UPSTREAM, C_BODY, C_COUNT_ };

static const char *const col_names[C_COUNT_] = {
    "id", "time", "request_id", "service", "release", "method", "path", "route", "identity",
    "entity", "location", "status", "duration_us", "upstream_us", "body"};

int impact_format_parse(const char *s, enum impact_format *out)
{
    if (s && strcmp(s, "csv") == 0)
        *out = IMPACT_CSV;
    else if (s && strcmp(s, "jsonl") == 0)
        *out = IMPACT_JSONL;
    else
        return -FB_EINVAL;
    return 0;
}

static int export_prep(struct impact *im, const struct impact_filter *f, uint64_t limit,
                       sqlite3_stmt **st)
{
    const char *rel = f->release ? " AND \"release\" = ?2" : "";
    char sql[1024];

    if (f->identity)
        snprintf(sql, sizeof sql, EXPORT_BY_IDENTITY, rel, rel);
    else
        snprintf(sql, sizeof sql, "%s WHERE service = ?1 AND time_ms >= ?3 AND time_ms < ?4%s"
                                  " ORDER BY time_ms, id LIMIT ?6", EXPORT_COLS, rel);
    if (sqlite3_prepare_v2(im->db, sql, -1, st, NULL) != SQLITE_OK)
        return -FB_ESTORE;
    sqlite3_bind_text(*st, 1, f->service, -1, SQLITE_STATIC);
    if (f->release)
        sqlite3_bind_text(*st, 2, f->release, -1, SQLITE_STATIC);
    sqlite3_bind_int64(*st, 3, f->since_ms);
    sqlite3_bind_int64(*st, 4, f->until_ms ? f->until_ms : INT64_MAX);
    if (f->identity)
        sqlite3_bind_text(*st, 5, f->identity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(*st, 6, (sqlite3_int64)limit);
    if (f->identity)
        sqlite3_bind_int64(*st, 7, im->watermark);
    return 0;
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF. */
static int csv_field(struct fb_buf *b, const char *s, size_t n)
{
    size_t i;
    int rc;

    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n))
        return fb_buf_append(b, s, n);
    rc = fb_buf_append(b, "\"", 1);
    for (i = 0; rc == 0 && i < n; i++)
        rc = s[i] == '"' ? fb_buf_append(b, "\"\"", 2) : fb_buf_append(b, s + i, 1);
    return rc ? rc : fb_buf_append(b, "\"", 1);
}

static int csv_line(sqlite3_stmt *st, struct fb_buf *b)
{
    char tbuf[64];
    int c, rc = 0;

    for (c = 0; rc == 0 && c < C_COUNT_; c++) {
        if (c)
            rc = fb_buf_append(b, ",", 1);
        if (rc || sqlite3_column_type(st, c) == SQLITE_NULL)
            continue;
        if (c == C_TIME) {
            fb_format_time(sqlite3_column_int64(st, c), tbuf);
            rc = fb_buf_puts(b, tbuf);
        } else {
            rc = csv_field(b, (const char *)sqlite3_column_text(st, c),
                           (size_t)sqlite3_column_bytes(st, c));
        }
    }
    return rc ? rc : fb_buf_append(b, "\r\n", 2);
}

static json_t *col_json(sqlite3_stmt *st, int c)
{
    if (sqlite3_column_type(st, c) == SQLITE_NULL)
        return json_null();
    if (c == C_TIME)
        return time_json(sqlite3_column_int64(st, c));
    if (sqlite3_column_type(st, c) == SQLITE_INTEGER)
        return json_integer(sqlite3_column_int64(st, c));
    return json_stringn((const char *)sqlite3_column_text(st, c),
                        (size_t)sqlite3_column_bytes(st, c));
}

static int jsonl_line(sqlite3_stmt *st, struct fb_buf *b)
{
    json_t *o = json_object();
    char *text;
    int c, rc;

    for (c = 0; o && c < C_COUNT_; c++)
        json_object_set_new(o, col_names[c], col_json(st, c));
    if (o)
        json_object_set_new(o, "time_ms", json_integer(sqlite3_column_int64(st, C_TIME)));
    text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return -FB_ENOMEM;
    rc = fb_buf_puts(b, text);
    free(text);
    return rc ? rc : fb_buf_append(b, "\n", 1);
}

static int csv_header(struct fb_buf *b)
{
    int c, rc = 0;

    for (c = 0; rc == 0 && c < C_COUNT_; c++)
        rc = fb_buf_printf(b, "%s%s", c ? "," : "", col_names[c]);
    return rc ? rc : fb_buf_append(b, "\r\n", 2);
}

static int export_rows(sqlite3_stmt *st, enum impact_format fmt, uint64_t max_rows,
                       impact_sink_fn sink, void *arg, uint64_t *rows, bool *cut)
{
    struct fb_buf line;
    int rc = 0, step = SQLITE_DONE;

    fb_buf_init(&line, LINE_MAX_BYTES);
    if (fmt == IMPACT_CSV) {
        rc = csv_header(&line);
        if (rc == 0)
            rc = sink(arg, line.data, line.len);
    }
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*rows == max_rows) {
            *cut = true;
            break;
        }
        fb_buf_reset(&line);
        rc = fmt == IMPACT_CSV ? csv_line(st, &line) : jsonl_line(st, &line);
        if (rc == 0)
            rc = sink(arg, line.data, line.len);
        if (rc == 0)
            (*rows)++;
    }
    if (rc == 0 && !*cut && step != SQLITE_DONE)
        rc = -FB_ESTORE;
    fb_buf_release(&line);
    return rc;
}

int impact_export(struct impact *im, const struct impact_filter *f, enum impact_format fmt,
                  uint64_t max_rows, impact_sink_fn sink, void *arg, uint64_t *rows, bool *cut)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *rows = 0;
    *cut = false;
    if (max_rows == 0)
        max_rows = IMPACT_EXPORT_DEFAULT;
    if (max_rows > IMPACT_EXPORT_MAX || filter_check(f, false, NULL, 0))
        return -FB_EINVAL;
    live_sync(im);
    if (sqlite3_exec(im->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return -FB_ESTORE;
    rc = row_ints(im, sql_watermark, f, &im->watermark, 1);
    if (rc == 0)
        rc = export_prep(im, f, max_rows + 1, &st);
    if (rc == 0)
        rc = export_rows(st, fmt, max_rows, sink, arg, rows, cut);
    sqlite3_finalize(st);
    sqlite3_exec(im->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

struct buf_sink {
    struct fb_buf *out;
    bool full;
};

static int buf_sink(void *arg, const char *data, size_t len)
{
    struct buf_sink *s = arg;
    int rc = fb_buf_append(s->out, data, len);

    if (rc == -FB_ETOOBIG)
        s->full = true;
    return rc;
}

int impact_export_buf(struct impact *im, const struct impact_filter *f, enum impact_format fmt,
                      uint64_t max_rows, struct fb_buf *out, uint64_t *rows, bool *cut)
{
    struct buf_sink s = {out, false};
    int rc = impact_export(im, f, fmt, max_rows, buf_sink, &s, rows, cut);

    if (s.full) {
        *cut = true;
        rc = 0;
    }
    return rc;
}
