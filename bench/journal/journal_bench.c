/*
 * journal_bench.c: the write journal's two performance targets (docs/journal.md).
 *
 *   journal_bench [--records N] [--rows M] [--fresh] DIR
 *
 * 1. Writer throughput: one producer thread fills a worker ring (the default 4096 slots) as
 *    fast as the ring takes records (it yields when the ring is full and retries, so every
 *    record is committed); the spooler thread commits them to the spool (the background loader
 *    is off for this part). Records per second from the first record to the last commit.
 *    Target: >= 100,000 records/s. Then the records are loaded into journal.db on this thread
 *    (journal_sync) and indexed, and both rates are printed. A second, informational run
 *    keeps a 300-byte JSON body per record with a redacted field.
 * 2. Impact queries over M records (default 10,000,000): the file is generated once with
 *    batch INSERT ... SELECT statements into the journal's own schema (DIR/impact-M.db, reused
 *    by later runs unless --fresh), then reports are timed (median of 3) for a whole release
 *    (the summaries) and for one-hour and one-day windows (the records). Target: the
 *    whole-release and one-hour reports answer in under 1 s.
 *
 * Prints one line per measure and PASS or MISS per target; exits 0 when every target is met,
 * 1 when one is missed, 2 on an error.
 */
#include <inttypes.h>
#include <time.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "firebreak/clock.h"
#include "firebreak/impact.h"
#include "firebreak/journal.h"
#include "firebreak/spool.h"

#define WRITER_TARGET 100000.0 /* records/s */
#define QUERY_TARGET_MS 1000.0
#define GEN_T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define GEN_SPAN_MS (7LL * 86400000LL)

struct producer {
    struct journal *j;
    uint64_t n;
    uint32_t body;
    uint64_t full; /* times the ring was full (each counts as a drop in the journal) */
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(struct journal_record *r, uint64_t i, uint64_t *rng, uint32_t body)
{
    uint64_t user = rng_next(rng) % 100000, order = rng_next(rng) % 1000000;
    int n;

    r->time_ms = fb_wall_ms();
    r->duration_us = 1800;
    r->upstream_us = 1500;
    r->status = i % 50 == 0 ? 500 : 201;
    snprintf(r->request_id, sizeof r->request_id, "%016" PRIx64, i);
    memcpy(r->service, "shop", 5);
    memcpy(r->release, i % 10 == 3 ? "v2" : "v1", 3);
    memcpy(r->method, "POST", 5);
    snprintf(r->path, sizeof r->path, "/api/orders/%" PRIu64 "?src=bench", order);
    memcpy(r->route, "POST /api/orders/:id", 21);
    r->ident_kind = JOURNAL_IDENT_VALUE;
    snprintf(r->ident_src, sizeof r->ident_src, "user-%" PRIu64, user);
    if (body) {
        n = snprintf(r->body, body,
                     "{\"order\":{\"id\":%" PRIu64 ",\"items\":[{\"sku\":\"A-1\",\"qty\":2},"
                     "{\"sku\":\"B-7\",\"qty\":1}],\"ship\":{\"name\":\"Ann Example\","
                     "\"street\":\"1 Main St\",\"city\":\"Springfield\",\"zip\":\"12345\"}},"
                     "\"payment\":{\"card\":\"4111111111111111\",\"exp\":\"12/30\"},"
                     "\"note\":\"leave at the door, ring twice, thanks\"}",
                     order);
        r->body_len = n > 0 && (uint32_t)n < body ? (uint32_t)n : 0;
    }
}

static void producer_main(void *arg)
{
    struct producer *p = arg;
    struct journal_record *r;
    uint64_t i, rng = 0x9e3779b97f4a7c15ull;

    for (i = 0; i < p->n; i++) {
        while (!(r = journal_slot(p->j, 0))) {
            p->full++;
            usleep(200);
        }
        fill(r, i, &rng, p->body);
        journal_commit(p->j, 0);
    }
}

struct writer_result {
    double wall_rate;   /* records committed per second of wall clock */
    double cpu_rate;    /* records committed per second of the writer (spooler) thread's CPU */
    double load_rate;   /* records loaded into journal.db per second of wall clock */
    double load_cpu;    /* the same per second of the loading thread's CPU */
    double catch_up_s;  /* from the end of loading until the indexer had every record */
    double index_rate;  /* records indexed per second of the indexer thread's CPU */
};

/* CPU time of the calling thread, in s. */
static double thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds until the indexer has every committed record (at most 300). */
static double wait_indexed(struct journal *j)
{
    struct journal_stats st;
    uint64_t t0 = fb_mono_ns();

    do {
        journal_stats(j, &st);
        if (st.unindexed == 0)
            break;
        usleep(10000);
    } while (fb_mono_ns() - t0 < 300000000000ull);
    return (double)(fb_mono_ns() - t0) / 1e9;
}

/* Writes n records through a fresh journal in dir into *out; returns 0 or -1. */
static int writer_run(const char *dir, uint64_t n, uint32_t body, const char *label,
                      struct writer_result *out)
{
    char path[512], err[256];
    struct journal_options o;
    struct journal *j = NULL;
    struct producer p = {0};
    struct journal_stats st;
    uv_thread_t t;
    uint64_t t0, written;
    double secs, c0;

    snprintf(path, sizeof path, "%s/writer-%s.db", dir, label);
    unlink(path);
    if (journal_index_path(path, err, sizeof err) == 0)
        unlink(err);
    journal_options_init(&o);
    o.body_cap = body;
    o.defer_load = true; /* the commit alone first; the loading is timed after it */
    if (journal_open(path, &o, &j, err, sizeof err) || journal_start(j)) {
        fprintf(stderr, "journal_open %s: %s\n", path, err);
        return -1;
    }
    p.j = j;
    p.n = n;
    p.body = body;
    t0 = fb_mono_ns();
    uv_thread_create(&t, producer_main, &p);
    uv_thread_join(&t);
    while (journal_written(j) < n)
        usleep(1000);
    secs = (double)(fb_mono_ns() - t0) / 1e9;
    written = journal_written(j);
    journal_stats(j, &st);
    out->wall_rate = (double)written / secs;
    out->cpu_rate = (double)written / ((double)st.writer_cpu_ns / 1e9);
    t0 = fb_mono_ns();
    c0 = thread_cpu_s();
    if (journal_sync(j, 600000) != 0) {
        fprintf(stderr, "journal_sync: records left in the spool\n");
        return -1;
    }
    out->load_rate = (double)written / ((double)(fb_mono_ns() - t0) / 1e9);
    out->load_cpu = (double)written / (thread_cpu_s() - c0);
    out->catch_up_s = wait_indexed(j);
    journal_stats(j, &st);
    out->index_rate = (double)written / ((double)st.indexer_cpu_ns / 1e9);
    printf("writer %-9s %8" PRIu64 " records committed in %6.2f s = %8.0f/s wall clock, %8.0f"
           " per writer CPU-second (ring full %" PRIu64 " times)\n"
           "       %-9s loaded into journal.db at %7.0f/s (%7.0f per CPU-second); indexed"
           " %5.1f s later, %6.0f per indexer CPU-second\n",
           label, written, secs, out->wall_rate, out->cpu_rate, p.full, "", out->load_rate,
           out->load_cpu, out->catch_up_s, out->index_rate);
    journal_close(j);
    unlink(path);
    if (journal_index_path(path, err, sizeof err) == 0)
        unlink(err);
    if (journal_spool_path(path, err, sizeof err) == 0)
        rmdir(err);
    return 0;
}

/* ---- the generated file --------------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "%s\n  %s\n", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int64_t int_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/*
 * rows records over 7 days: 90% v1, 10% v2 (every i % 10 == 3), 200,000 users, about
 * 5,000,000 orders, four routes, 2% 500s. Indexes are dropped for the load and rebuilt,
 * the postings and summaries are computed into the index file with GROUP BY and the watermark
 * set past the last record: the same tables the journal's indexer keeps.
 */
static const char gen_sql[] =
    "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %lld)"
    " INSERT INTO writes (time_ms, request_id, service, \"release\", method, path, route,"
    " identity, entity, location, status, duration_us, upstream_us, body)"
    " SELECT %lld + i * %lld / %lld, printf('%%016x', i), 'shop',"
    " CASE WHEN i %% 10 = 3 THEN 'v2' ELSE 'v1' END,"
    " CASE i %% 4 WHEN 1 THEN 'PUT' WHEN 2 THEN 'DELETE' ELSE 'POST' END,"
    " printf('/api/orders/%%d', (i * 7919) %% 5000000),"
    " CASE i %% 4 WHEN 0 THEN 'POST /api/orders/:id' WHEN 1 THEN 'PUT /api/orders/:id'"
    " WHEN 2 THEN 'DELETE /api/orders/:id' ELSE 'POST /api/orders/:id/items' END,"
    " printf('user-%%d', (i * 104729) %% 200000), printf('orders/%%d', (i * 7919) %% 5000000),"
    " NULL, CASE WHEN i %% 50 = 0 THEN 500 ELSE 201 END, 1000 + i %% 5000, 800 + i %% 4000,"
    " NULL FROM c";

static const char *const summary_sql[] = {
    "INSERT INTO ix.writes_by_identity SELECT service, identity, id FROM writes"
    " WHERE identity IS NOT NULL ORDER BY 1, 2, 3",
    "INSERT INTO ix.writes_by_entity SELECT service, entity, id FROM writes"
    " WHERE entity IS NOT NULL ORDER BY 1, 2, 3",
    "INSERT INTO ix.release_routes SELECT service, \"release\", route, status, COUNT(*)"
    " FROM writes GROUP BY 1, 2, 3, 4",
    "INSERT INTO ix.release_identities SELECT service, \"release\", identity, COUNT(*)"
    " FROM writes WHERE identity IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO ix.release_entities SELECT service, \"release\", entity, COUNT(*)"
    " FROM writes WHERE entity IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO ix.release_totals SELECT t.service, t.\"release\", t.w, t.i,"
    " (SELECT COUNT(*) FROM ix.release_identities x WHERE x.service = t.service"
    "  AND x.\"release\" = t.\"release\"), t.e,"
    " (SELECT COUNT(*) FROM ix.release_entities x WHERE x.service = t.service"
    "  AND x.\"release\" = t.\"release\")"
    " FROM (SELECT service, \"release\", COUNT(*) AS w, COUNT(identity) AS i,"
    " COUNT(entity) AS e FROM writes GROUP BY 1, 2) AS t",
    "INSERT INTO ix.meta (key, value) SELECT 'indexed_id', MAX(id) FROM writes",
};

/* Index definitions as the journal created them, dropped before the load. */
static int indexes_drop(sqlite3 *db, char ***defs, size_t *n)
{
    sqlite3_stmt *st = NULL;
    char drop[160];
    size_t i;

    *defs = calloc(16, sizeof **defs);
    *n = 0;
    if (!*defs || sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_master WHERE type ="
                                         " 'index' AND tbl_name = 'writes' AND sql IS NOT NULL",
                                     -1, &st, NULL) != SQLITE_OK)
        return -1;
    while (*n < 16 && sqlite3_step(st) == SQLITE_ROW)
        (*defs)[(*n)++] = strdup((const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    for (i = 0; i < *n; i++) {
        snprintf(drop, sizeof drop, "DROP INDEX %.*s", (int)strcspn((*defs)[i] + 13, " "),
                 (*defs)[i] + 13); /* after "CREATE INDEX " */
        if (exec(db, drop))
            return -1;
    }
    return 0;
}

static int generate(const char *path, long long rows)
{
    char sql[2048], err[256], ipath[600];
    struct journal *j = NULL;
    sqlite3 *db = NULL;
    char **defs = NULL;
    size_t ndefs = 0, i;
    uint64_t t0 = fb_mono_ns();
    int rc = -1;

    unlink(path);
    if (journal_index_path(path, ipath, sizeof ipath) == 0)
        unlink(ipath);
    if (journal_open(path, NULL, &j, err, sizeof err)) {
        fprintf(stderr, "journal_open %s: %s\n", path, err);
        return -1;
    }
    journal_close(j); /* the schema, as the writer makes it */
    if (sqlite3_open(path, &db) != SQLITE_OK || journal_index_path(path, ipath, sizeof ipath))
        goto out;
    snprintf(sql, sizeof sql, "ATTACH DATABASE '%s' AS ix; PRAGMA ix.journal_mode = OFF;"
                              " PRAGMA ix.synchronous = OFF", ipath);
    if (exec(db, sql))
        goto out;
    printf("generating %lld records into %s (once; reused by later runs) ...\n", rows, path);
    fflush(stdout);
    /* One bulk transaction without a WAL or rollback journal: if it fails the file is
     * deleted and made again. WAL comes back at the end, as the journal uses it. */
    if (exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
                 " PRAGMA cache_size = -1048576; PRAGMA temp_store = FILE; DELETE FROM runs") ||
        indexes_drop(db, &defs, &ndefs) || exec(db, "BEGIN"))
        goto out;
    snprintf(sql, sizeof sql, gen_sql, rows - 1, (long long)GEN_T0, (long long)GEN_SPAN_MS,
             rows);
    if (exec(db, sql))
        goto out;
    for (i = 0; i < ndefs; i++)
        if (exec(db, defs[i]))
            goto out;
    for (i = 0; i < sizeof summary_sql / sizeof summary_sql[0]; i++)
        if (exec(db, summary_sql[i]))
            goto out;
    if (exec(db, "COMMIT") || exec(db, "PRAGMA journal_mode = WAL") ||
        exec(db, "PRAGMA ix.journal_mode = WAL"))
        goto out;
    rc = 0;
    printf("generated in %.0f s\n", (double)(fb_mono_ns() - t0) / 1e9);
out:
    for (i = 0; i < ndefs; i++)
        free(defs[i]);
    free(defs);
    sqlite3_close(db);
    if (rc)
        unlink(path);
    if (rc && journal_index_path(path, ipath, sizeof ipath) == 0)
        unlink(ipath);
    return rc;
}

/* Uses path when it holds rows records, else generates it. */
static int impact_file(const char *path, long long rows, bool fresh)
{
    char ipath[600];
    sqlite3 *db = NULL;
    struct stat st;
    int64_t have = -1;

    if (!fresh && stat(path, &st) == 0 && journal_index_path(path, ipath, sizeof ipath) == 0 &&
        stat(ipath, &st) == 0 && sqlite3_open(ipath, &db) == SQLITE_OK) {
        have = int_of(db, "SELECT writes FROM release_totals WHERE \"release\" = 'v1'") +
               int_of(db, "SELECT writes FROM release_totals WHERE \"release\" = 'v2'");
        sqlite3_close(db);
        if (have == rows) {
            printf("reusing %s (%lld records; --fresh rebuilds it)\n", path, rows);
            return 0;
        }
    }
    return generate(path, rows);
}

/* ---- the queries ---------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median of three runs of one report; prints it. Returns the median in ms, or -1. */
static double query_run(struct impact *im, const char *label, const struct impact_filter *f)
{
    struct impact_report r;
    double ms[3];
    char err[256];
    int i;

    for (i = 0; i < 3; i++) {
        uint64_t t0 = fb_mono_ns();

        if (impact_query(im, f, &r, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", label, err);
            return -1;
        }
        ms[i] = (double)(fb_mono_ns() - t0) / 1e6;
        if (i < 2)
            impact_report_release(&r);
    }
    qsort(ms, 3, sizeof ms[0], cmp_double);
    printf("impact %-28s %8.1f ms  (%s; %" PRIu64 " writes, %" PRIu64 " identities, %" PRIu64
           " entities, %zu route rows)\n",
           label, ms[1], r.summary ? "summaries" : "records", r.writes, r.identities,
           r.entities, r.nroutes);
    impact_report_release(&r);
    return ms[1];
}

static int verdict(const char *what, bool ok)
{
    printf("  %s %s\n", ok ? "PASS" : "MISS", what);
    return ok ? 0 : 1;
}

/* Times the reports; *whole and *hour get the slowest whole-release and the one-hour ms. */
static int queries(const char *path, double *whole, double *hour)
{
    struct impact_filter f = {.service = "shop", .release = "v2"};
    struct impact *im = NULL;
    char err[256];
    double whole1, whole2, day;
    int64_t end = GEN_T0 + GEN_SPAN_MS;

    if (impact_open(path, NULL, &im, err, sizeof err)) {
        fprintf(stderr, "impact_open: %s\n", err);
        return 2;
    }
    whole2 = query_run(im, "whole release v2 (10%)", &f);
    f.release = "v1";
    whole1 = query_run(im, "whole release v1 (90%)", &f);
    f.since_ms = end - 3600000;
    f.until_ms = end;
    *hour = query_run(im, "v1, last hour", &f);
    f.since_ms = end - 86400000;
    day = query_run(im, "v1, last day (informational)", &f);
    impact_close(im);
    *whole = whole1 > whole2 ? whole1 : whole2;
    return whole1 < 0 || whole2 < 0 || *hour < 0 || day < 0 ? 2 : 0;
}

int main(int argc, char **argv)
{
    long long records = 1000000, rows = 10000000;
    bool fresh = false;
    const char *dir = NULL;
    char path[512], what[256];
    struct writer_result plain, body;
    double whole, hour, load[1] = {0};
    int i, missed = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--records") && i + 1 < argc)
            records = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--fresh"))
            fresh = true;
        else
            dir = argv[i];
    }
    if (!dir || records < 1 || rows < 10) {
        fprintf(stderr, "usage: journal_bench [--records N] [--rows M] [--fresh] DIR\n");
        return 2;
    }
    if (writer_run(dir, (uint64_t)records, 0, "no-body", &plain) ||
        writer_run(dir, (uint64_t)records / 4, 1024, "json-body", &body))
        return 2;
    getloadavg(load, 1);
    snprintf(path, sizeof path, "%s/impact-%lld.db", dir, rows);
    if (impact_file(path, rows, fresh))
        return 2;
    if (queries(path, &whole, &hour))
        return 2;
    printf("Targets:\n");
    snprintf(what, sizeof what,
             "journal writer: %.0f records committed per second of wall clock >= %.0f (%.0f"
             " per second of its CPU; load average %.1f on %ld CPUs)",
             plain.wall_rate, WRITER_TARGET, plain.cpu_rate, load[0],
             sysconf(_SC_NPROCESSORS_ONLN));
    missed |= verdict(what, plain.wall_rate >= WRITER_TARGET);
    snprintf(what, sizeof what, "impact over %lld records, whole release: %.1f ms < %.0f ms",
             rows, whole, QUERY_TARGET_MS);
    missed |= verdict(what, whole < QUERY_TARGET_MS);
    snprintf(what, sizeof what, "impact over %lld records, one-hour window: %.1f ms < %.0f ms",
             rows, hour, QUERY_TARGET_MS);
    missed |= verdict(what, hour < QUERY_TARGET_MS);
    printf("  info: with a 300-byte JSON body redacted per record: %.0f records committed per"
           " CPU-second\n", body.cpu_rate);
    printf("  info: loading into journal.db, %.0f records/s (%.0f per CPU-second), and the"
           " indexer, %.0f per CPU-second (%.0f with bodies), run in the background\n",
           plain.load_rate, plain.load_cpu, plain.index_rate, body.index_rate);
    return missed ? 1 : 0;
}
