/*
 * journal.c: the write journal, STATE/journal.db and STATE/journal-index.db, fed through
 * STATE/journal-spool/ (docs/journal.md).
 *
 * Workers hand write records to a spooler thread through per-worker rings; the spooler's
 * append to the spool is the commit; a loader thread copies the spool into journal.db and
 * an indexer thread keeps the index file from what was loaded:
 *
 *   worker w: journal_slot -> fill -> journal_commit                (head: release store)
 *             ring[w]: nslots slots of a fixed size, head - tail <= nslots
 *   spooler:  drain every ring -> identity, entity, redaction -> frames -> one write()
 *             journal-spool/<first id>.spool (spool.c)                  (tail; the commit)
 *   loader:   frames after journal.db's last id -> INSERT -> COMMIT; a loaded segment goes
 *             journal.db: writes (+ time-ordered indexes), runs
 *   indexer:  loaded records after the watermark -> postings, summaries -> COMMIT
 *             journal-index.db: writes_by_identity, writes_by_entity, release_*, meta
 *
 * Rings: single producer (the worker), single consumer (the spooler). The worker owns head,
 * the spooler owns tail; each reads the other's index with an acquire load, so a slot's bytes
 * are visible before the head that publishes it, and a slot is reused only after the spooler
 * stored a tail past it. A full ring drops the record and counts it: a worker never waits,
 * locks or allocates. A slot is sizeof(struct journal_record) + body_cap bytes, rounded to 64.
 *
 * Spooler: every commit_ms (at most 100 ms; at once when a ring is a quarter full) it drains
 * every ring into one batch of frames, each record with the next id, and appends the batch to
 * the newest segment with one write(). Identity, entity and body redaction happen here, so
 * nothing the journal must not keep reaches a file, and never on a worker. About a microsecond
 * of CPU per record: it runs at the workers' priority and keeps up with them. A batch that
 * cannot be appended is counted as lost (dropped) and the next one starts a new segment.
 *
 * Loader: SQLite costs several microseconds per record, a good part of what the gateway spends
 * on a request, so the loader runs in the background (SCHED_IDLE, else nice 19) and takes the
 * CPU the workers leave; past backlog_max records waiting, the spooler loads too (the spool
 * stays bounded). Its transactions of up to LOAD_CHUNK records insert each frame with its
 * id and store the run's drop count; a segment is removed once it is closed and loaded. It
 * works under load_mu, which journal_sync takes too: a report loads what was committed before
 * it, on its own thread at its own priority, so a starved loader never makes a report miss a
 * committed write or wait for the background (the loader ends its transaction after the row
 * it is on when a report waits for the lock). The ids make loading idempotent: frames at or
 * below journal.db's last id are skipped, so a crash between a commit and a removal loads
 * nothing twice.
 *
 * Indexer: keys spread at random over large B-trees (identities, entities) cost SQLite about
 * one written page per record, several times the insert itself, and more the smaller the
 * transaction. So they live in a second file, with its own connection and thread, written in
 * transactions of about INDEX_CHUNK_MS (journal.db is attached and only read: under WAL the
 * loader's commits never wait for it). Each chunk of records after the watermark
 * (meta.indexed_id) is aggregated in memory, upserted into the postings and summaries, and
 * the watermark moves in the same transaction. It runs in the background like the loader.
 * Reports read the records past the watermark directly (impact.c), so they are exact either
 * way. The index file names the journal.db it belongs to (ident.token); one made for another
 * file is emptied and rebuilt.
 *
 * Durability: a batch is committed once write() returned (the page cache): kill -9 loses at
 * most the records not yet appended, the last interval. The next start finds the spool where
 * the killed run left it: frames carry a length and a CRC, so a batch cut short is skipped,
 * never loaded half. journal.db is in WAL with synchronous=NORMAL and always opens; the
 * indexer's state commits with its data, so a killed run's backlog is indexed by the next.
 *
 * Retention (the indexer, every 10 s, at once while behind): indexed records older than
 * retention_ms and, once the loader deleted what was retired before, the oldest records
 * while the used pages of both files exceed max_bytes, are retired by id range: postings and
 * summaries decremented by exactly those records and meta.retired_id moved, in one
 * transaction; the loader then deletes them from journal.db (records up to retired_id left
 * by a killed run are deleted by the next). Freed pages are reused, not vacuumed.
 *
 * Drops are stored per process run (runs) so a report after a restart still shows them.
 *
 * Cost: worker O(1), one memset of the record head; spooler O(record bytes) per record and one
 * write() per batch; loader O(records) SQLite steps; indexer O(records) upserts of random keys,
 * aggregated per chunk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/journal.h"
#include "firebreak/log.h"
#include "firebreak/route_class.h"
#include "firebreak/spool.h"

#define RING_DEFAULT 4096u
#define RING_MIN 2u
#define RING_MAX (1u << 20)
#define COMMIT_DEFAULT_MS 50u
#define COMMIT_MAX_MS 100u
#define RETENTION_DEFAULT_MS (30ull * 86400000ull)
#define RETAIN_EVERY_MS 10000
#define RETAIN_SOON_MS 1000 /* the next retention step after one that retired records */
#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION 1
#define ENTITY_IDS 16      /* identifier segments looked at per path */
#define JWT_PAYLOAD_MAX 768 /* decoded bytes of a JWT payload */
#define AGG_MIN_CAP 1024u
#define CHUNK_MIN 64        /* records per indexing or retention chunk */
#define CHUNK_MAX 50000
#define RATE_GUESS 10000.0  /* records/s the indexer is assumed to manage before measuring */
#define CLOSE_INDEX_MS 2000 /* indexing journal_close does before closing */
#define CLOSE_LOAD_MS 5000  /* loading journal_close does before closing */
#define INDEX_CHUNK_MS 1000 /* an indexing or retention transaction, about */
#define INDEX_IDLE_MS 100   /* the idle indexer looks for records this often */
#define BACKGROUND_NICE 19  /* the loader and the indexer */
#define SEGMENT_MAX (64u << 20) /* a spool segment is closed after this many bytes */
#define READ_CHUNK (256u << 10) /* bytes the loader reads at a time */
#define LOAD_CHUNK 2000     /* records per loader transaction */
#define SYNC_CHUNK 10000    /* records per transaction of journal_sync */
#define LOAD_RETRY_MS 1000  /* after a failed load */
#define BACKLOG_DEFAULT 1000000u /* records waiting to load before the spooler helps */
#define DELETE_CHUNK 5000   /* retired records the loader deletes per transaction */
#define LOG_EVERY_MS 60000
#define WAIT_SLICE_MS 5.0   /* the idle spooler looks at the rings this often */

static const char *const default_redact[] = {"password", "token", "secret", "card"};

/* ---- rings ------------------------------------------------------------------------------ */

struct journal_ring {
    /* Producer line: written by the worker only. */
    _Alignas(64) _Atomic uint64_t head;
    _Atomic uint64_t ring_full;
    uint64_t tail_seen; /* the last tail the worker read */
    bool filling;       /* a slot was handed out and not committed yet */
    /* Consumer line: written by the spooler only. */
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) char slots[];
};

/* ---- batch aggregation ------------------------------------------------------------------ */

/* One key of a per-batch count: service NUL release NUL value, plus a status for routes. */
struct agg_entry {
    uint64_t hash; /* 0: free */
    uint32_t off;
    uint32_t len;
    int status;
    uint64_t n;
};

struct agg {
    struct agg_entry *tab;
    size_t cap; /* power of two */
    size_t used;
    char *keys;
    size_t klen, kcap;
};

/* ---- the journal ------------------------------------------------------------------------ */

/* The loader's statements, on journal.db. */
enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_INSERT,
    W_RUN_UPDATE,
    W_DELETE,
    W_OLD_RUNS,
    W_COUNT_
};

static const char *const wsql[W_COUNT_] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_INSERT] = "INSERT INTO writes (id, time_ms, request_id, service, \"release\", method,"
                 " path, route, identity, entity, location, status, duration_us, upstream_us,"
                 " body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                 " ?15)",
    [W_RUN_UPDATE] = "UPDATE runs SET updated_ms = ?1, dropped = ?2 WHERE id = ?3",
    [W_DELETE] = "DELETE FROM writes WHERE id > ?1 AND id <= ?2",
    [W_OLD_RUNS] = ("DELETE FROM runs WHERE id <> ?1 AND updated_ms < (SELECT MIN(time_ms)"
                    " FROM writes)"),
};

/* The indexer's statements, on journal-index.db with journal.db attached as raw. */
enum istmt {
    I_BEGIN,
    I_COMMIT,
    I_ROLLBACK,
    I_READ,
    I_POST_IDENTITY,
    I_POST_ENTITY,
    I_ADD_ROUTE,
    I_ADD_IDENTITY,
    I_ADD_ENTITY,
    I_ADD_TOTALS,
    I_META,
    I_AGE_SCAN,
    I_UNPOST_IDENTITY,
    I_UNPOST_ENTITY,
    I_DEC_ROUTES,
    I_DEC_IDENTITIES,
    I_DEC_ENTITIES,
    I_DEC_TOTALS,
    I_DEC_TOTAL_IDENTITIES,
    I_DEC_TOTAL_ENTITIES,
    I_ZERO_ROUTES,
    I_ZERO_IDENTITIES,
    I_ZERO_ENTITIES,
    I_ZERO_TOTALS,
    I_RAW_MIN,
    I_RAW_PAGES,
    I_RAW_FREE,
    I_RAW_PAGE_SIZE,
    I_PAGES,
    I_FREE,
    I_PAGE_SIZE,
    I_COUNT_
};

/* The records a retention step retires: ids (?1, ?2] of journal.db. */
#define RETIRED "raw.writes WHERE id > ?1 AND id <= ?2"
#define DEC(table, col)                                                                         \
    "UPDATE " table " SET n = n - d.c FROM (SELECT service, \"release\" AS rel, " col " AS k,"  \
    " COUNT(*) AS c FROM " RETIRED " AND " col " IS NOT NULL GROUP BY 1, 2, 3) AS d WHERE "    \
    table ".service = d.service AND " table ".\"release\" = d.rel AND " table "." col " = d.k"
/* Lowers release_totals' count of keys by the keys of table that reach zero. */
#define DEC_KEYS(table, col, total)                                                             \
    "UPDATE release_totals SET " total " = " total " - z.c FROM (SELECT service, \"release\""   \
    " AS rel, COUNT(*) AS c FROM " table " WHERE n <= 0 AND (service, \"release\", " col ") IN" \
    " (SELECT service, \"release\", " col " FROM " RETIRED ") GROUP BY 1, 2) AS z WHERE"       \
    " release_totals.service = z.service AND release_totals.\"release\" = z.rel"
#define ZERO(table, col)                                                                        \
    "DELETE FROM " table " WHERE n <= 0 AND (service, \"release\", " col ") IN (SELECT "      \
    "service, \"release\", " col " FROM " RETIRED ")"
#define UNPOST(table, col)                                                                      \
    "DELETE FROM " table " WHERE (service, " col ", id) IN (SELECT service, " col ", id FROM "  \
    RETIRED " AND " col " IS NOT NULL)"

static const char *const isql[I_COUNT_] = {
    [I_BEGIN] = "BEGIN",
    [I_COMMIT] = "COMMIT",
    [I_ROLLBACK] = "ROLLBACK",
    [I_READ] = "SELECT id, service, \"release\", route, status, identity, entity FROM"
               " raw.writes WHERE id > ?1 ORDER BY id LIMIT ?2",
    [I_POST_IDENTITY] = "INSERT OR IGNORE INTO writes_by_identity (service, identity, id)"
                        " VALUES (?1, ?2, ?3)",
    [I_POST_ENTITY] = "INSERT OR IGNORE INTO writes_by_entity (service, entity, id)"
                      " VALUES (?1, ?2, ?3)",
    [I_ADD_ROUTE] = "INSERT INTO release_routes (service, \"release\", route, status, n)"
                    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (service, \"release\", route,"
                    " status) DO UPDATE SET n = n + excluded.n",
    [I_ADD_IDENTITY] = "INSERT INTO release_identities (service, \"release\", identity, n)"
                       " VALUES (?1, ?2, ?3, ?5) ON CONFLICT (service, \"release\", identity)"
                       " DO UPDATE SET n = n + excluded.n RETURNING n",
    [I_ADD_ENTITY] = "INSERT INTO release_entities (service, \"release\", entity, n)"
                     " VALUES (?1, ?2, ?3, ?5) ON CONFLICT (service, \"release\", entity)"
                     " DO UPDATE SET n = n + excluded.n RETURNING n",
    [I_ADD_TOTALS] = "INSERT INTO release_totals (service, \"release\", writes, identified,"
                     " identities, with_entity, entities) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " ON CONFLICT (service, \"release\") DO UPDATE SET"
                     " writes = writes + excluded.writes,"
                     " identified = identified + excluded.identified,"
                     " identities = identities + excluded.identities,"
                     " with_entity = with_entity + excluded.with_entity,"
                     " entities = entities + excluded.entities",
    [I_META] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [I_AGE_SCAN] = "SELECT id, time_ms FROM " RETIRED " ORDER BY id",
    [I_UNPOST_IDENTITY] = UNPOST("writes_by_identity", "identity"),
    [I_UNPOST_ENTITY] = UNPOST("writes_by_entity", "entity"),
    [I_DEC_ROUTES] = "UPDATE release_routes SET n = n - d.c FROM (SELECT service, \"release\""
                     " AS rel, route, status, COUNT(*) AS c FROM " RETIRED " GROUP BY 1, 2, 3, 4)"
                     " AS d WHERE release_routes.service = d.service AND"
                     " release_routes.\"release\" = d.rel AND release_routes.route = d.route"
                     " AND release_routes.status = d.status",
    [I_DEC_IDENTITIES] = DEC("release_identities", "identity"),
    [I_DEC_ENTITIES] = DEC("release_entities", "entity"),
    [I_DEC_TOTALS] = "UPDATE release_totals SET writes = writes - d.w, identified = identified"
                     " - d.i, with_entity = with_entity - d.e FROM (SELECT service, \"release\""
                     " AS rel, COUNT(*) AS w, COUNT(identity) AS i, COUNT(entity) AS e FROM "
                     RETIRED " GROUP BY 1, 2) AS d WHERE release_totals.service = d.service AND"
                     " release_totals.\"release\" = d.rel",
    [I_DEC_TOTAL_IDENTITIES] = DEC_KEYS("release_identities", "identity", "identities"),
    [I_DEC_TOTAL_ENTITIES] = DEC_KEYS("release_entities", "entity", "entities"),
    [I_ZERO_ROUTES] = "DELETE FROM release_routes WHERE n <= 0",
    [I_ZERO_IDENTITIES] = ZERO("release_identities", "identity"),
    [I_ZERO_ENTITIES] = ZERO("release_entities", "entity"),
    [I_ZERO_TOTALS] = "DELETE FROM release_totals WHERE writes <= 0",
    [I_RAW_MIN] = "SELECT MIN(id) FROM raw.writes",
    [I_RAW_PAGES] = "PRAGMA raw.page_count",
    [I_RAW_FREE] = "PRAGMA raw.freelist_count",
    [I_RAW_PAGE_SIZE] = "PRAGMA raw.page_size",
    [I_PAGES] = "PRAGMA main.page_count",
    [I_FREE] = "PRAGMA main.freelist_count",
    [I_PAGE_SIZE] = "PRAGMA main.page_size",
};

/* journal.db: the records, appended by the loader; version SCHEMA_VERSION in user_version. */
static const char raw_schema[] =
    "CREATE TABLE IF NOT EXISTS writes ("
    " id INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " request_id TEXT,"
    " service TEXT NOT NULL,"
    " \"release\" TEXT NOT NULL,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " route TEXT NOT NULL,"
    " identity TEXT,"
    " entity TEXT,"
    " location TEXT,"
    " status INTEGER NOT NULL,"
    " duration_us INTEGER NOT NULL,"
    " upstream_us INTEGER NOT NULL,"
    " body TEXT);"
    "CREATE INDEX IF NOT EXISTS writes_release ON writes (service, \"release\", time_ms);"
    "CREATE INDEX IF NOT EXISTS writes_time ON writes (time_ms);"
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, dropped INTEGER NOT NULL);"
    /* A random number naming this file: an index file made for another is rebuilt. */
    "CREATE TABLE IF NOT EXISTS ident (token INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

/* journal-index.db: what the indexer keeps of journal.db's records. */
static const char index_schema[] =
    /* The (service, identity) and (service, entity) indexes of journal.db's writes. */
    "CREATE TABLE IF NOT EXISTS writes_by_identity (service TEXT NOT NULL,"
    " identity TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (service, identity, id))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS writes_by_entity (service TEXT NOT NULL,"
    " entity TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (service, entity, id))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS release_routes (service TEXT NOT NULL,"
    " \"release\" TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (service, \"release\", route, status)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS release_identities (service TEXT NOT NULL,"
    " \"release\" TEXT NOT NULL, identity TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (service, \"release\", identity)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS release_entities (service TEXT NOT NULL,"
    " \"release\" TEXT NOT NULL, entity TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (service, \"release\", entity)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS release_totals (service TEXT NOT NULL,"
    " \"release\" TEXT NOT NULL, writes INTEGER NOT NULL, identified INTEGER NOT NULL,"
    " identities INTEGER NOT NULL, with_entity INTEGER NOT NULL, entities INTEGER NOT NULL,"
    " PRIMARY KEY (service, \"release\")) WITHOUT ROWID;"
    /* indexed_id: records up to it are in the tables above; retired_id: records up to it
     * were taken out of them by retention (and are, or are about to be, deleted); journal:
     * the token of the journal.db it was made for. */
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

/* Redact keys: lower-case copies, owned together. */
struct redact_set {
    char **keys;
    size_t n;
};

struct journal {
    char *path;   /* journal.db */
    char *ipath;  /* journal-index.db */
    unsigned nworkers;
    unsigned nslots; /* power of two */
    uint32_t body_cap;
    size_t slot_size;
    unsigned commit_ms;
    uint64_t retention_ms;
    uint64_t max_bytes;
    bool defer_index, defer_load;
    uint64_t backlog_max; /* past this many records waiting, the spooler loads too */
    struct journal_ring **rings;

    char *spool;  /* journal-spool directory */

    /* The spooler thread only. */
    struct redact_set redact;
    struct fb_buf sbuf;   /* the batch being made */
    int seg_fd;           /* the segment appended to, -1 before the first batch */
    int64_t seg_first;    /* its first id */
    uint64_t seg_bytes;   /* its size */
    int64_t next_id;      /* the id of the next record */
    int64_t spool_start;  /* next_id at open: segments from here on are this run's */
    int64_t last_log_ms;

    /* The loader: under load_mu (the loader thread, or journal_sync on the caller's). */
    uv_mutex_t load_mu;
    sqlite3 *db;
    sqlite3_stmt *st[W_COUNT_];
    int64_t run_id;
    uint64_t run_dropped; /* the dropped count last stored in the run's row */
    int64_t deleted;      /* records of journal.db up to this id are deleted */
    int rd_fd;            /* the segment being read, -1 for none */
    int64_t rd_first;     /* its first id (or the last one read) */
    uint64_t rd_pos;      /* file offset after the bytes in rbuf */
    struct fb_buf rbuf;   /* bytes read, not yet decoded past rd_at */
    size_t rd_at;
    int64_t llast_log_ms;

    /* The indexer thread only. */
    sqlite3 *idb;
    sqlite3_stmt *ist[I_COUNT_];
    struct agg routes, identities, entities, totals;
    int64_t next_retain_ms;
    double index_rate;    /* records per second the indexer manages (estimate) */
    int64_t ilast_log_ms;
    int64_t deleted_seen; /* the loader's deletions as the indexer last saw them */
    bool retain_blocked;  /* the last retention step stopped at the watermark */

    uv_thread_t thread, lthread, ithread;
    bool started, lstarted, istarted;
    uv_mutex_t mu; /* guards stop, lstop, istop, pending, pub_first and pub_end */
    uv_cond_t cv, lcv;
    bool stop, lstop, istop;
    int64_t pub_first;  /* the segment the spooler appends to, as the loader may read it */
    uint64_t pub_end;   /* and its bytes committed */
    struct redact_set pending; /* keys from journal_set_redact, swapped in by the spooler */
    bool has_pending;

    _Atomic uint64_t written, write_failed, bad_worker, ident_errors, bodies_redacted,
        trimmed, commits;
    _Atomic int64_t last_commit_ms;
    _Atomic int64_t spooled; /* the newest record committed (in the spool) */
    _Atomic bool rotate;     /* the loader asks for a new segment (damage found) */
    _Atomic unsigned sync_waiting; /* journal_sync callers waiting for load_mu */
    _Atomic uint64_t loaded_n;
    _Atomic uint64_t loader_cpu_ns;
    _Atomic int64_t last_id; /* the newest record in journal.db (written under load_mu) */
    _Atomic int64_t indexed; /* records up to this id are in journal-index.db */
    _Atomic int64_t retired; /* records up to this id left the index; the loader deletes them */
    _Atomic int64_t deleted_pub; /* the loader's deleted, for the indexer */
    _Atomic uint64_t writer_cpu_ns, indexer_cpu_ns;
};

static struct journal_record *slot_at(const struct journal *j, struct journal_ring *r,
                                      uint64_t i)
{
    return (struct journal_record *)(r->slots + (size_t)(i & (j->nslots - 1)) * j->slot_size);
}

/* Zeroes the numbers and empties the strings: a few cache lines, not the whole slot. */
static void record_reset(struct journal_record *rec)
{
    memset(rec, 0, offsetof(struct journal_record, request_id));
    rec->request_id[0] = rec->service[0] = rec->release[0] = rec->method[0] = '\0';
    rec->route[0] = rec->path[0] = rec->location[0] = rec->ident_src[0] = '\0';
}

struct journal_record *journal_slot(struct journal *j, unsigned worker)
{
    struct journal_ring *r;
    struct journal_record *rec;
    uint64_t h;

    if (!j || worker >= j->nworkers) {
        if (j)
            atomic_fetch_add_explicit(&j->bad_worker, 1, memory_order_relaxed);
        return NULL;
    }
    r = j->rings[worker];
    h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h - r->tail_seen >= j->nslots) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h - r->tail_seen >= j->nslots) {
            atomic_store_explicit(
                &r->ring_full, atomic_load_explicit(&r->ring_full, memory_order_relaxed) + 1,
                memory_order_relaxed);
            r->filling = false;
            return NULL;
        }
    }
    rec = slot_at(j, r, h);
    record_reset(rec);
    r->filling = true;
    return rec;
}

void journal_commit(struct journal *j, unsigned worker)
{
    struct journal_ring *r;
    uint64_t h;

    if (!j || worker >= j->nworkers)
        return;
    r = j->rings[worker];
    if (!r->filling)
        return;
    r->filling = false;
    h = atomic_load_explicit(&r->head, memory_order_relaxed);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

uint32_t journal_body_cap(const struct journal *j)
{
    return j ? j->body_cap : 0;
}

static uint64_t ring_full_total(const struct journal *j)
{
    uint64_t n = 0;
    unsigned i;

    for (i = 0; i < j->nworkers; i++)
        n += atomic_load_explicit(&j->rings[i]->ring_full, memory_order_relaxed);
    return n;
}

uint64_t journal_dropped(const struct journal *j)
{
    if (!j)
        return 0;
    return ring_full_total(j) + atomic_load_explicit(&j->bad_worker, memory_order_relaxed) +
           atomic_load_explicit(&j->write_failed, memory_order_relaxed);
}

uint64_t journal_written(const struct journal *j)
{
    return j ? atomic_load_explicit(&j->written, memory_order_relaxed) : 0;
}

void journal_stats(const struct journal *j, struct journal_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!j)
        return;
    out->written = journal_written(j);
    out->ring_full =
        ring_full_total(j) + atomic_load_explicit(&j->bad_worker, memory_order_relaxed);
    out->write_failed = atomic_load_explicit(&j->write_failed, memory_order_relaxed);
    out->dropped = out->ring_full + out->write_failed;
    out->ident_errors = atomic_load_explicit(&j->ident_errors, memory_order_relaxed);
    out->bodies_redacted = atomic_load_explicit(&j->bodies_redacted, memory_order_relaxed);
    out->trimmed = atomic_load_explicit(&j->trimmed, memory_order_relaxed);
    out->commits = atomic_load_explicit(&j->commits, memory_order_relaxed);
    out->last_commit_ms = atomic_load_explicit(&j->last_commit_ms, memory_order_relaxed);
    out->unindexed = (uint64_t)(atomic_load_explicit(&j->last_id, memory_order_relaxed) -
                                atomic_load_explicit(&j->indexed, memory_order_relaxed));
    out->loaded = atomic_load_explicit(&j->loaded_n, memory_order_relaxed);
    out->loading = journal_loading(j);
    out->loader_cpu_ns = atomic_load_explicit(&j->loader_cpu_ns, memory_order_relaxed);
    out->writer_cpu_ns = atomic_load_explicit(&j->writer_cpu_ns, memory_order_relaxed);
    out->indexer_cpu_ns = atomic_load_explicit(&j->indexer_cpu_ns, memory_order_relaxed);
}

uint64_t journal_loading(const struct journal *j)
{
    int64_t n;

    if (!j)
        return 0;
    n = atomic_load_explicit(&j->spooled, memory_order_acquire) -
        atomic_load_explicit(&j->last_id, memory_order_acquire);
    return n > 0 ? (uint64_t)n : 0;
}

const char *journal_path(const struct journal *j)
{
    return j ? j->path : NULL;
}

int64_t journal_run(const struct journal *j)
{
    return j ? j->run_id : 0;
}

/* ---- text --------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Makes the NUL-terminated field s (cap bytes) printable UTF-8 in place: control bytes and
 * bytes of invalid sequences become '?'. Returns its length. */
static size_t text_clean(char *s, size_t cap)
{
    size_t n, i = 0, k;

    s[cap - 1] = '\0';
    n = strlen(s);
    while (i < n) {
        k = utf8_seq((unsigned char *)s + i, n - i);
        if (k == 0 || (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))) {
            s[i++] = '?';
            continue;
        }
        i += k;
    }
    return n;
}

/* Does any of keys (lower case) occur in s[0..n), ignoring ASCII case? */
static bool contains_any(const char *s, size_t n, const struct redact_set *keys)
{
    size_t k, i, m;

    for (k = 0; k < keys->n; k++) {
        m = strlen(keys->keys[k]);
        for (i = 0; m && i + m <= n; i++)
            if (strncasecmp(s + i, keys->keys[k], m) == 0)
                return true;
    }
    return false;
}

/* ---- identity ---------------------------------------------------------------------------- */

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* Decodes base64url (padding optional) into out; returns the length or -1. */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t outcap)
{
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0, v;

    while (n > 0 && s[n - 1] == '=')
        n--;
    for (i = 0; i < n; i++) {
        v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return bits >= 6 ? -1 : (long)o;
}

/* The "sub" claim of a JWT (optionally after "Bearer "), not verified, into out. */
static bool jwt_sub(const char *src, char *out, size_t outlen)
{
    unsigned char payload[JWT_PAYLOAD_MAX];
    const char *dot1, *dot2, *sub;
    json_t *doc, *v;
    long n;
    bool ok = false;

    src += strspn(src, " \t");
    if (strncasecmp(src, "bearer ", 7) == 0)
        src += 7 + strspn(src + 7, " \t");
    dot1 = strchr(src, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || dot1 == src)
        return false;
    n = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload);
    if (n <= 0)
        return false;
    doc = json_loadb((const char *)payload, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    v = json_object_get(doc, "sub");
    if (json_is_string(v)) {
        sub = json_string_value(v);
        ok = sub[0] && json_string_length(v) < outlen && !memchr(sub, '\0', json_string_length(v));
        if (ok)
            memcpy(out, sub, json_string_length(v) + 1);
    } else if (json_is_integer(v)) {
        ok = snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) > 0;
    }
    json_decref(doc);
    return ok;
}

/* The record's identity into out (JOURNAL_IDENTITY_MAX bytes), or NULL. */
static const char *identity_of(struct journal *j, struct journal_record *r, char *out)
{
    size_t n;

    r->ident_src[sizeof r->ident_src - 1] = '\0';
    if (r->ident_kind == JOURNAL_IDENT_VALUE && r->ident_src[0]) {
        n = strlen(r->ident_src);
        if (n >= JOURNAL_IDENTITY_MAX)
            n = JOURNAL_IDENTITY_MAX - 1;
        memcpy(out, r->ident_src, n);
        out[n] = '\0';
    } else if (r->ident_kind == JOURNAL_IDENT_JWT_SUB && r->ident_src[0]) {
        if (!jwt_sub(r->ident_src, out, JOURNAL_IDENTITY_MAX)) {
            atomic_fetch_add_explicit(&j->ident_errors, 1, memory_order_relaxed);
            return NULL;
        }
    } else {
        return NULL;
    }
    text_clean(out, JOURNAL_IDENTITY_MAX);
    return out;
}

/* ---- entity ------------------------------------------------------------------------------ */

/* Where the path of target starts (after an absolute form's authority), or NULL. */
static const char *path_start(const char *target)
{
    const char *p;

    if (target[0] == '/')
        return target;
    p = strstr(target, "://");
    return p ? strchr(p + 3, '/') : NULL;
}

/* Appends piece (n bytes) to out, with a '/' before it unless out is empty. */
static bool entity_put(char *out, size_t outlen, size_t *len, const char *piece, size_t n)
{
    size_t need = n + (*len ? 1 : 0);

    if (*len + need >= outlen)
        return false;
    if (*len)
        out[(*len)++] = '/';
    memcpy(out + *len, piece, n);
    *len += n;
    out[*len] = '\0';
    return true;
}

/*
 * The entity a target names: for each identifier segment (route_class_ids), the literal
 * segment before it and the identifier: "/api/users/7/orders/123?x" -> "users/7/orders/123".
 * An identifier with no literal segment before it stands alone. False when there is none.
 */
static bool entity_of_target(const char *target, char *out, size_t outlen)
{
    struct route_class_id ids[ENTITY_IDS];
    const char *start = path_start(target), *seg, *end;
    size_t len = 0;
    unsigned n, i;
    bool ok = true;

    out[0] = '\0';
    if (!start)
        return false;
    n = route_class_ids(target, strlen(target), ids, ENTITY_IDS);
    for (i = 0; ok && i < n; i++) {
        end = ids[i].p - 1; /* the '/' before the identifier */
        seg = end;
        while (seg > start + 1 && seg[-1] != '/')
            seg--;
        if (end > seg && end > start && (i == 0 || seg != ids[i - 1].p))
            ok = entity_put(out, outlen, &len, seg, (size_t)(end - seg));
        if (ok)
            ok = entity_put(out, outlen, &len, ids[i].p, ids[i].len);
    }
    return len > 0;
}

/* The record's entity: from the request path, else from the Location header. */
static const char *entity_of(struct journal_record *r, char *out)
{
    if (entity_of_target(r->path, out, JOURNAL_ENTITY_MAX) ||
        (r->location[0] && entity_of_target(r->location, out, JOURNAL_ENTITY_MAX))) {
        text_clean(out, JOURNAL_ENTITY_MAX);
        return out;
    }
    return NULL;
}

/* ---- body redaction ---------------------------------------------------------------------- */

static bool key_redacted(const char *key, const struct redact_set *keys)
{
    return contains_any(key, strlen(key), keys);
}

/* Replaces every value under a redacted key, at any depth. Returns whether one was. */
static bool redact_walk(json_t *v, const struct redact_set *keys)
{
    const char *k;
    json_t *item;
    size_t i;
    bool hit = false;

    if (json_is_object(v)) {
        json_object_foreach(v, k, item) {
            if (key_redacted(k, keys)) {
                json_object_set_new(v, k, json_string("[redacted]"));
                hit = true;
            } else {
                hit |= redact_walk(item, keys);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            hit |= redact_walk(item, keys);
    }
    return hit;
}

/* A body with nothing to redact: as it is when it is UTF-8 text, else a placeholder. */
static void body_verbatim(const char *body, size_t n, const char **text, size_t *len,
                          char **owned)
{
    if (utf8_valid(body, n) && !memchr(body, '\0', n)) {
        *text = body;
        *len = n;
        return;
    }
    *owned = malloc(48);
    if (*owned)
        snprintf(*owned, 48, "[binary: %zu bytes]", n);
    *text = *owned;
    *len = *owned ? strlen(*owned) : 0;
}

/*
 * The body as it may reach the file, in *text / *len, or NULL. JSON: redacted values become
 * "[redacted]" (*owned is then the new text, freed by the caller). Not JSON: kept only when
 * no redact key occurs in it and it is UTF-8 text.
 */
static void body_of(struct journal *j, const struct journal_record *r, const char **text,
                    size_t *len, char **owned)
{
    static const char not_json[] = "[redacted: not JSON]";
    size_t n = r->body_len < j->body_cap ? r->body_len : j->body_cap;
    json_t *doc;
    bool hit;

    *text = NULL;
    *len = 0;
    *owned = NULL;
    if (n == 0)
        return;
    /* No key in the text and no escape that could spell one: nothing to redact. */
    if (!memchr(r->body, '\\', n) && !contains_any(r->body, n, &j->redact)) {
        body_verbatim(r->body, n, text, len, owned);
        return;
    }
    doc = json_loadb(r->body, n, JSON_DECODE_ANY, NULL);
    if (doc) {
        hit = redact_walk(doc, &j->redact);
        if (hit)
            *owned = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(doc);
        if (hit && !*owned)
            *owned = strdup(not_json); /* out of memory: keep nothing of it */
        *text = hit ? *owned : r->body;
        *len = hit ? (*owned ? strlen(*owned) : 0) : n;
    } else if (contains_any(r->body, n, &j->redact)) {
        hit = true;
        *text = not_json;
        *len = sizeof not_json - 1;
    } else {
        hit = false;
        body_verbatim(r->body, n, text, len, owned);
    }
    if (hit)
        atomic_fetch_add_explicit(&j->bodies_redacted, 1, memory_order_relaxed);
}

static void redact_release(struct redact_set *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    s->keys = NULL;
    s->n = 0;
}

/* Copies keys (NULL: the defaults; none when n is 0) into *out, lower case. */
static int redact_copy(const char *const *keys, size_t n, struct redact_set *out)
{
    size_t i, k, len;
    int rc = 0;

    if (!keys) {
        keys = default_redact;
        n = sizeof default_redact / sizeof default_redact[0];
    }
    memset(out, 0, sizeof *out);
    if (n > JOURNAL_REDACT_MAX)
        return -FB_EINVAL;
    if (n == 0)
        return 0;
    out->keys = calloc(n, sizeof *out->keys);
    out->n = 0;
    if (!out->keys)
        return -FB_ENOMEM;
    for (i = 0; rc == 0 && i < n; i++) {
        len = keys[i] ? strlen(keys[i]) : 0;
        if (len == 0 || len >= JOURNAL_REDACT_KEY_MAX) {
            rc = -FB_EINVAL;
            break;
        }
        out->keys[i] = strdup(keys[i]);
        if (!out->keys[i]) {
            rc = -FB_ENOMEM;
            break;
        }
        out->n++;
        for (k = 0; k < len; k++)
            if (out->keys[i][k] >= 'A' && out->keys[i][k] <= 'Z')
                out->keys[i][k] = (char)(out->keys[i][k] - 'A' + 'a');
    }
    if (rc)
        redact_release(out);
    return rc;
}

int journal_set_redact(struct journal *j, const char *const *keys, size_t n)
{
    struct redact_set s = {0}, old;
    int rc;

    if (!j)
        return -FB_EINVAL;
    rc = redact_copy(keys, n, &s);
    if (rc)
        return rc;
    uv_mutex_lock(&j->mu);
    old = j->pending;
    j->pending = s;
    j->has_pending = true;
    uv_mutex_unlock(&j->mu);
    redact_release(&old);
    return 0;
}

/* ---- batch aggregation ------------------------------------------------------------------ */

static uint64_t agg_hash(const char *k, size_t n, int status)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(unsigned)status;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

static int agg_grow(struct agg *a)
{
    size_t cap = a->cap ? a->cap * 2 : AGG_MIN_CAP, i, p;
    struct agg_entry *t = calloc(cap, sizeof *t);

    if (!t)
        return -FB_ENOMEM;
    for (i = 0; i < a->cap; i++) {
        if (!a->tab[i].hash)
            continue;
        for (p = a->tab[i].hash & (cap - 1); t[p].hash; p = (p + 1) & (cap - 1))
            ;
        t[p] = a->tab[i];
    }
    free(a->tab);
    a->tab = t;
    a->cap = cap;
    return 0;
}

static int agg_keep(struct agg *a, size_t n)
{
    size_t cap;
    char *p;

    if (a->klen + n <= a->kcap)
        return 0;
    cap = a->kcap ? a->kcap : 16384;
    while (cap < a->klen + n)
        cap *= 2;
    p = realloc(a->keys, cap);
    if (!p)
        return -FB_ENOMEM;
    a->keys = p;
    a->kcap = cap;
    return 0;
}

/* Adds count to the key (service, release, value, status). */
static int agg_add(struct agg *a, const char *svc, const char *rel, const char *val, int status,
                   uint64_t count)
{
    char k[JOURNAL_NAME_MAX * 2 + JOURNAL_ENTITY_MAX + 4];
    size_t ls = strlen(svc), lr = strlen(rel), lv = strlen(val), n, p;
    uint64_t h;

    if (ls >= JOURNAL_NAME_MAX || lr >= JOURNAL_NAME_MAX || lv >= JOURNAL_ENTITY_MAX)
        return -FB_EINVAL;
    memcpy(k, svc, ls + 1);
    memcpy(k + ls + 1, rel, lr + 1);
    memcpy(k + ls + lr + 2, val, lv + 1);
    n = ls + lr + lv + 3;
    if ((a->used + 1) * 2 > a->cap && agg_grow(a))
        return -FB_ENOMEM;
    h = agg_hash(k, n, status);
    for (p = h & (a->cap - 1); a->tab[p].hash; p = (p + 1) & (a->cap - 1)) {
        struct agg_entry *e = &a->tab[p];

        if (e->hash == h && e->status == status && e->len == n && !memcmp(a->keys + e->off, k, n)) {
            e->n += count;
            return 0;
        }
    }
    if (agg_keep(a, n))
        return -FB_ENOMEM;
    memcpy(a->keys + a->klen, k, n);
    a->tab[p] = (struct agg_entry){.hash = h, .off = (uint32_t)a->klen, .len = (uint32_t)n,
                                   .status = status, .n = count};
    a->klen += n;
    a->used++;
    return 0;
}

/* Empties a; a table grown by one large batch shrinks back. */
static void agg_reset(struct agg *a)
{
    if (a->cap > AGG_MIN_CAP * 8 && a->used < a->cap / 16) {
        free(a->tab);
        a->tab = NULL;
        a->cap = 0;
    } else if (a->used) {
        memset(a->tab, 0, a->cap * sizeof *a->tab);
    }
    a->used = 0;
    a->klen = 0;
}

static void agg_release(struct agg *a)
{
    free(a->tab);
    free(a->keys);
    memset(a, 0, sizeof *a);
}

/* ---- SQLite ------------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b ? b : "");
}

static int db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK)
        set_err(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -FB_ESTORE;
}

static int db_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -FB_ESTORE;
}

/* Creates the file with mode 0600 (or narrows an existing one) before SQLite opens it, so
 * the -wal and -shm files SQLite creates inherit the mode. */
static int file_prepare(const char *path, char *err, size_t errlen)
{
    char ebuf[128];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0 || fchmod(fd, 0600) != 0) {
        set_err(err, errlen, "%s: %s", path, strerror_r(errno, ebuf, sizeof ebuf));
        if (fd >= 0)
            close(fd);
        return -FB_EIO;
    }
    close(fd);
    return 0;
}

static int schema_apply(sqlite3 *db, const char *schema, char *err, size_t errlen)
{
    int64_t version = 0;
    int rc = db_exec(db, "BEGIN IMMEDIATE", err, errlen);

    if (rc == 0)
        rc = db_int(db, "PRAGMA user_version", &version);
    if (rc == 0 && version > SCHEMA_VERSION) {
        set_err(err, errlen, "%s: %s", "the journal was written by a newer firebreak",
                "upgrade firebreak or move the file away");
        rc = -FB_ESTORE;
    }
    if (rc == 0 && version < SCHEMA_VERSION)
        rc = db_exec(db, schema, err, errlen);
    if (rc == 0)
        rc = db_exec(db, "COMMIT", err, errlen);
    else
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Opens path (created 0600) in WAL mode with schema, and prepares n statements of sql. */
static int db_open(const char *path, const char *schema, const char *const *sql,
                   sqlite3_stmt **st, int n, const char *attach, sqlite3 **db, char *err,
                   size_t errlen)
{
    static const char pragmas[] = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                                  " PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;"
                                  " PRAGMA wal_autocheckpoint = 16384;";
    sqlite3_stmt *at = NULL;
    int rc, i;

    rc = file_prepare(path, err, errlen);
    if (rc)
        return rc;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        set_err(err, errlen, "%s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        return -FB_ESTORE;
    }
    sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
    rc = db_exec(*db, pragmas, err, errlen);
    if (rc == 0)
        rc = schema_apply(*db, schema, err, errlen);
    if (rc == 0 && attach) {
        if (sqlite3_prepare_v2(*db, "ATTACH DATABASE ?1 AS raw", -1, &at, NULL) != SQLITE_OK ||
            sqlite3_bind_text(at, 1, attach, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(at) != SQLITE_DONE) {
            set_err(err, errlen, "%s: %s", attach, sqlite3_errmsg(*db));
            rc = -FB_ESTORE;
        }
        sqlite3_finalize(at);
    }
    for (i = 0; rc == 0 && i < n; i++) {
        if (sqlite3_prepare_v3(*db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK) {
            set_err(err, errlen, "%s: %s", sql[i], sqlite3_errmsg(*db));
            rc = -FB_ESTORE;
        }
    }
    return rc;
}

static int64_t st_int(sqlite3_stmt *st, int64_t fallback)
{
    int64_t v = fallback;

    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/* Steps a statement that returns no rows (or ignores them) and resets it. */
static int st_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -FB_ESTORE;
}

/* Logs a failure on db at most once a minute (*last holds when it last did). */
static void complain(const char *path, sqlite3 *db, int64_t *last, const char *what)
{
    int64_t now = fb_wall_ms();

    if (now - *last < LOG_EVERY_MS)
        return;
    *last = now;
    fb_error("journal %s: %s: %s", path, what, sqlite3_errmsg(db));
}

/* A file next to the journal at path: its name with ".db" replaced by with_db, or, for a name
 * without ".db", followed by plain. */
static int sibling_path(const char *path, const char *with_db, const char *plain, char *out,
                        size_t outlen)
{
    size_t n = path ? strlen(path) : 0;
    int w;

    if (n > 3 && strcmp(path + n - 3, ".db") == 0)
        w = snprintf(out, outlen, "%.*s%s", (int)(n - 3), path, with_db);
    else
        w = snprintf(out, outlen, "%s%s", path ? path : "", plain);
    return n && w > 0 && (size_t)w < outlen ? 0 : -FB_EINVAL;
}

int journal_index_path(const char *path, char *out, size_t outlen)
{
    return sibling_path(path, "-index.db", "-index", out, outlen);
}

int journal_spool_path(const char *path, char *out, size_t outlen)
{
    return sibling_path(path, "-spool", "-spool", out, outlen);
}

/* ---- records ------------------------------------------------------------------------------ */

/* Cleans the record's text in place (the spooler owns the slot until it moves the tail). */
static void record_clean(struct journal_record *r)
{
    text_clean(r->request_id, sizeof r->request_id);
    text_clean(r->service, sizeof r->service);
    text_clean(r->release, sizeof r->release);
    text_clean(r->method, sizeof r->method);
    text_clean(r->path, sizeof r->path);
    text_clean(r->route, sizeof r->route);
    text_clean(r->location, sizeof r->location);
    if (!r->method[0])
        memcpy(r->method, "?", 2);
    if (!r->route[0] && route_class(r->method, strlen(r->method), r->path, strlen(r->path),
                                    r->route, sizeof r->route) < 0)
        memcpy(r->route, "?", 2);
    if (r->time_ms <= 0)
        r->time_ms = fb_wall_ms();
}

/* ---- the spooler ------------------------------------------------------------------------- */

static void text_set(struct spool_row *row, enum spool_field f, const char *s)
{
    row->text[f].p = s;
    row->text[f].n = s ? (uint32_t)strlen(s) : 0;
}

/* Adds one record to the batch in j->sbuf as a frame with the next id, after its identity,
 * entity and body are worked out. Returns 0, or the encoder's error (the record is lost). */
static int record_spool(struct journal *j, struct journal_record *r)
{
    char ident_buf[JOURNAL_IDENTITY_MAX], entity_buf[JOURNAL_ENTITY_MAX], *owned = NULL;
    struct spool_row row = {0};
    const char *body;
    size_t blen;
    int rc;

    record_clean(r);
    row.id = j->next_id;
    row.time_ms = r->time_ms;
    row.duration_us = r->duration_us;
    row.upstream_us = r->upstream_us;
    row.status = r->status >= 0 && r->status <= 999 ? r->status : 0;
    text_set(&row, SPOOL_REQUEST_ID, r->request_id);
    text_set(&row, SPOOL_SERVICE, r->service);
    text_set(&row, SPOOL_RELEASE, r->release);
    text_set(&row, SPOOL_METHOD, r->method);
    text_set(&row, SPOOL_PATH, r->path);
    text_set(&row, SPOOL_ROUTE, r->route);
    text_set(&row, SPOOL_IDENTITY, identity_of(j, r, ident_buf));
    text_set(&row, SPOOL_ENTITY, entity_of(r, entity_buf));
    text_set(&row, SPOOL_LOCATION, r->location);
    body_of(j, r, &body, &blen, &owned);
    row.has_body = body != NULL;
    row.body = body;
    row.body_len = blen > SPOOL_BODY_MAX ? SPOOL_BODY_MAX + 1 : (uint32_t)blen;
    rc = spool_encode(&j->sbuf, &row);
    if (rc == 0)
        j->next_id++;
    free(owned);
    return rc;
}

/* Drains one ring into the batch; returns how many records it held. A record that cannot be
 * encoded is counted as lost; the ring keeps moving either way. */
static uint64_t ring_drain(struct journal *j, struct journal_ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire), n = h - t;

    for (; t != h; t++) {
        if (record_spool(j, slot_at(j, r, t)))
            atomic_fetch_add_explicit(&j->write_failed, 1, memory_order_relaxed);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    }
    return n;
}

/* Takes keys handed over by journal_set_redact. */
static void writer_take_pending(struct journal *j)
{
    struct redact_set s = {0};

    uv_mutex_lock(&j->mu);
    if (j->has_pending) {
        s = j->redact;
        j->redact = j->pending;
        memset(&j->pending, 0, sizeof j->pending);
        j->has_pending = false;
    }
    uv_mutex_unlock(&j->mu);
    redact_release(&s);
}

/* Tells the loader how far the spool goes (the segment being appended and its size, the last
 * id committed) and wakes it. */
static void spool_publish(struct journal *j)
{
    uv_mutex_lock(&j->mu);
    j->pub_first = j->seg_first;
    j->pub_end = j->seg_bytes;
    atomic_store_explicit(&j->spooled, j->next_id - 1, memory_order_release);
    uv_cond_signal(&j->lcv);
    uv_mutex_unlock(&j->mu);
}

static void segment_close(struct journal *j)
{
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    j->seg_fd = -1;
}

/* An open segment for a batch whose first id is first: a new one for the first batch of the
 * run, after a failed append, at SEGMENT_MAX bytes, or when the loader found damage. */
static int segment_ready(struct journal *j, int64_t first)
{
    if (j->seg_fd >= 0 && j->seg_bytes < SEGMENT_MAX &&
        !atomic_load_explicit(&j->rotate, memory_order_acquire))
        return 0;
    segment_close(j);
    if (spool_segment_create(j->spool, first, &j->seg_fd))
        return -FB_EIO;
    atomic_store_explicit(&j->rotate, false, memory_order_relaxed);
    j->seg_first = first;
    j->seg_bytes = SPOOL_HEADER_SIZE;
    spool_publish(j); /* the segment before is whole: the loader may finish it */
    return 0;
}

/* Logs an errno failure of the spool at most once a minute. */
static void complain_errno(struct journal *j, int64_t *last, const char *what, int err)
{
    int64_t now = fb_wall_ms();

    if (now - *last < LOG_EVERY_MS)
        return;
    *last = now;
    fb_error("journal %s: %s: %s", j->spool, what, strerror(err));
}

/*
 * One batch: every ring drained into frames, appended to the spool with one write (the
 * commit). Returns true when a ring was at least a quarter full, so the spooler goes again
 * without waiting.
 */
static bool spool_cycle(struct journal *j)
{
    int64_t first = j->next_id;
    uint64_t got;
    bool busy = false;
    unsigned i;
    int rc;

    writer_take_pending(j);
    fb_buf_reset(&j->sbuf);
    for (i = 0; i < j->nworkers; i++) {
        got = ring_drain(j, j->rings[i]);
        busy |= got >= j->nslots / 4;
    }
    if (j->sbuf.len == 0)
        return busy;
    rc = segment_ready(j, first);
    if (rc == 0)
        rc = spool_write_all(j->seg_fd, j->sbuf.data, j->sbuf.len);
    if (rc == 0) {
        j->seg_bytes += j->sbuf.len;
        spool_publish(j);
        atomic_fetch_add_explicit(&j->written, (uint64_t)(j->next_id - first),
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&j->commits, 1, memory_order_relaxed);
        atomic_store_explicit(&j->last_commit_ms, fb_wall_ms(), memory_order_relaxed);
    } else {
        complain_errno(j, &j->last_log_ms, "a batch could not be appended to the spool and is lost", errno);
        /* Cut off a partial append so the segment ends on a whole frame; the next batch
         * starts a new segment. The ids of the lost batch are not used again. */
        if (j->seg_fd >= 0 && ftruncate(j->seg_fd, (off_t)j->seg_bytes) != 0)
            fb_debug("journal: the spool keeps a torn batch; the loader skips it");
        segment_close(j);
        atomic_fetch_add_explicit(&j->write_failed, (uint64_t)(j->next_id - first),
                                  memory_order_relaxed);
    }
    return busy;
}

/* Is any ring at least a quarter full? */
static bool rings_filling(const struct journal *j)
{
    unsigned i;

    for (i = 0; i < j->nworkers; i++)
        if (atomic_load_explicit(&j->rings[i]->head, memory_order_relaxed) -
                atomic_load_explicit(&j->rings[i]->tail, memory_order_relaxed) >=
            j->nslots / 4)
            return true;
    return false;
}

/* Sleeps until the interval that started at t0 is over, a ring fills up or close is called:
 * in slices of WAIT_SLICE_MS, so a burst is taken at once rather than at the next tick. */
static void writer_wait(struct journal *j, uint64_t t0)
{
    double left;

    uv_mutex_lock(&j->mu);
    for (;;) {
        left = j->commit_ms - (double)(fb_mono_ns() - t0) / 1e6;
        if (j->stop || left <= 0 || rings_filling(j))
            break;
        uv_cond_timedwait(&j->cv, &j->mu,
                          (uint64_t)((left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS) * 1e6));
    }
    uv_mutex_unlock(&j->mu);
}

/* CPU time of the calling thread, in ns. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The background loader gets only CPU nobody else wants; while the workers keep every CPU busy
 * the backlog grows. Past backlog_max records the spooler loads a chunk after each commit,
 * at its own priority: the journal then costs the data plane CPU, and the spool stays bounded.
 */
static int64_t load_step(struct journal *j, int64_t limit, bool yield);

static void spooler_load(struct journal *j)
{
    atomic_fetch_add_explicit(&j->sync_waiting, 1, memory_order_relaxed);
    uv_mutex_lock(&j->load_mu);
    atomic_fetch_sub_explicit(&j->sync_waiting, 1, memory_order_relaxed);
    load_step(j, LOAD_CHUNK, false);
    uv_mutex_unlock(&j->load_mu);
}

/* The spooler: a batch at least every commit_ms, at the workers' priority. */
static void writer_main(void *arg)
{
    struct journal *j = arg;
    uint64_t t0;
    bool stop, busy;

    pthread_setname_np(pthread_self(), "fb-journal");
    for (;;) {
        t0 = fb_mono_ns();
        uv_mutex_lock(&j->mu);
        stop = j->stop;
        uv_mutex_unlock(&j->mu);
        busy = spool_cycle(j);
        if (journal_loading(j) > j->backlog_max)
            spooler_load(j);
        atomic_store_explicit(&j->writer_cpu_ns, thread_cpu_ns(), memory_order_relaxed);
        if (stop)
            break;
        if (!busy)
            writer_wait(j, t0);
    }
}

/* ---- the loader -------------------------------------------------------------------------- */

/*
 * Puts the calling thread in the background: SCHED_IDLE, so it runs on CPU time the workers
 * leave and a waking worker takes the CPU back at once; where that is refused, nice
 * BACKGROUND_NICE. (nice 19 alone still takes a share of a saturated CPU: measured in
 * bench/releases, the journal's leg fell from about 0.99x to about 0.8x.) A report that waits
 * for the loader's lock waits at most for the row the loader is on and its commit (see
 * load_step), however little CPU the loader gets.
 */
static void background_priority(const char *who)
{
    struct sched_param sp = {0};

    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0)
        return;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BACKGROUND_NICE) != 0)
        fb_debug("journal: the %s keeps the default priority", who);
}

/* Stores the run's drop count and commits the open transaction. */
static int batch_finish(struct journal *j, uint64_t dropped)
{
    sqlite3_stmt *st = j->st[W_RUN_UPDATE];
    int rc;

    sqlite3_bind_int64(st, 1, fb_wall_ms());
    sqlite3_bind_int64(st, 2, (sqlite3_int64)dropped);
    sqlite3_bind_int64(st, 3, j->run_id);
    rc = st_run(st);
    if (rc == 0)
        rc = st_run(j->st[W_COMMIT]);
    return rc;
}

/* Binds one text column: NULL when empty. */
static void bind_span(sqlite3_stmt *st, int i, const struct spool_text *t)
{
    if (t->n)
        sqlite3_bind_text(st, i, t->p, (int)t->n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Inserts one row into the open transaction. Returns 0, -FB_EEXIST when its id is taken
 * (the row is skipped) or -FB_ESTORE. */
static int row_insert(struct journal *j, const struct spool_row *row)
{
    sqlite3_stmt *st = j->st[W_INSERT];
    int i, rc;

    sqlite3_bind_int64(st, 1, row->id);
    sqlite3_bind_int64(st, 2, row->time_ms);
    for (i = 0; i < SPOOL_FIELDS; i++)
        bind_span(st, 3 + i, &row->text[i]);
    sqlite3_bind_int(st, 12, row->status);
    sqlite3_bind_int64(st, 13, row->duration_us);
    sqlite3_bind_int64(st, 14, row->upstream_us);
    if (row->has_body)
        sqlite3_bind_text(st, 15, row->body ? row->body : "", (int)row->body_len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    return (rc & 0xFF) == SQLITE_CONSTRAINT ? -FB_EEXIST : -FB_ESTORE;
}

static void reader_close(struct journal *j)
{
    if (j->rd_fd >= 0)
        close(j->rd_fd);
    j->rd_fd = -1;
    fb_buf_reset(&j->rbuf);
}

/* Removes a segment of an earlier run shorter than its header (a crash right after it was
 * created: it holds no record). Returns whether it was one. */
static bool segment_torn_at_creation(struct journal *j, int64_t first)
{
    char path[4096];
    struct stat st;

    if (first >= j->spool_start || spool_segment_path(j->spool, first, path, sizeof path) ||
        stat(path, &st) || st.st_size >= SPOOL_HEADER_SIZE)
        return false;
    unlink(path);
    return true;
}

/* Opens the segment after the one read last. Returns 0, or -FB_ENOENT when there is none: a
 * segment of this run is taken only once the spooler published it (with its header), never
 * while it is being created. */
static int reader_next(struct journal *j)
{
    int64_t first, pub_first;
    int rc;

    uv_mutex_lock(&j->mu);
    pub_first = j->pub_first;
    uv_mutex_unlock(&j->mu);
    while ((rc = spool_segment_next(j->spool, j->rd_first, &first)) == 0) {
        if (first >= j->spool_start && first > pub_first)
            return -FB_ENOENT;
        j->rd_first = first;
        rc = spool_segment_open(j->spool, first, &j->rd_fd);
        if (rc == 0) {
            j->rd_pos = SPOOL_HEADER_SIZE;
            fb_buf_reset(&j->rbuf);
            return 0;
        }
        if (rc == -FB_EINVAL && !segment_torn_at_creation(j, first))
            fb_warn("journal %s: segment %016" PRIx64 " has no spool header; skipped", j->spool,
                    (uint64_t)first);
    }
    return -FB_ENOENT;
}

/* Reads more of the current segment into rbuf, up to byte end. Returns the bytes read, 0 at
 * end, or -1 (errno set). */
static ssize_t reader_fill(struct journal *j, uint64_t end)
{
    size_t want;
    ssize_t r;

    if (j->rd_pos >= end)
        return 0;
    want = end - j->rd_pos < READ_CHUNK ? (size_t)(end - j->rd_pos) : READ_CHUNK;
    if (fb_buf_reserve(&j->rbuf, want)) {
        errno = ENOMEM;
        return -1;
    }
    do
        r = pread(j->rd_fd, j->rbuf.data + j->rbuf.len, want, (off_t)j->rd_pos);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
        j->rbuf.len += (size_t)r;
        j->rd_pos += (uint64_t)r;
    }
    return r;
}

/* What load_step found in the spool. */
enum spool_read { READ_ROW, READ_WAIT, READ_END, READ_ERROR };

/* The next row of the spool not yet in journal.db, into *row (borrowing rbuf until the next
 * call). READ_WAIT: nothing more for now; READ_END: the current segment is finished (closed
 * and read to its end, or damaged); READ_ERROR: the file could not be read. */
static enum spool_read spool_read(struct journal *j, struct spool_row *row)
{
    uint64_t pub_end;
    int64_t pub_first;
    size_t used;
    ssize_t r;
    int d;

    for (;;) {
        if (j->rd_fd < 0 && reader_next(j))
            return READ_WAIT;
        d = spool_decode(j->rbuf.data + j->rd_at, j->rbuf.len - j->rd_at, row, &used);
        if (d == 0) {
            j->rd_at += used;
            if (row->id > atomic_load_explicit(&j->last_id, memory_order_relaxed))
                return READ_ROW;
            continue;
        }
        uv_mutex_lock(&j->mu);
        pub_first = j->pub_first;
        pub_end = j->pub_end;
        uv_mutex_unlock(&j->mu);
        if (d == -FB_EINVAL) {
            fb_error("journal %s: segment %016" PRIx64 " is damaged at byte %" PRIu64
                     "; the records after that point in it are skipped", j->spool,
                     (uint64_t)j->rd_first, j->rd_pos - (j->rbuf.len - j->rd_at));
            if (j->rd_first != pub_first)
                return READ_END;
            atomic_store_explicit(&j->rotate, true, memory_order_release);
            return READ_WAIT; /* finished once the spooler moved to a new segment */
        }
        fb_buf_consume(&j->rbuf, j->rd_at);
        j->rd_at = 0;
        r = reader_fill(j, j->rd_first == pub_first ? pub_end : UINT64_MAX);
        if (r < 0)
            return READ_ERROR;
        if (r > 0)
            continue;
        if (j->rd_first == pub_first)
            return READ_WAIT;
        if (j->rbuf.len)
            fb_warn("journal %s: segment %016" PRIx64 " ends in %zu bytes of a batch cut short"
                    " (a crash while it was written); skipped", j->spool,
                    (uint64_t)j->rd_first, j->rbuf.len);
        return READ_END;
    }
}

/* Reads the current segment again from its start (after a failed transaction). */
static void reader_rewind(struct journal *j)
{
    reader_close(j);
    j->rd_at = 0;
    j->rd_first--;
}

/* Removes the finished segment, whose records are all in journal.db. */
static void segment_done(struct journal *j)
{
    char path[4096];

    reader_close(j);
    j->rd_at = 0;
    if (spool_segment_path(j->spool, j->rd_first, path, sizeof path) == 0 && unlink(path) &&
        errno != ENOENT)
        complain_errno(j, &j->llast_log_ms, "removing a loaded segment failed", errno);
}

/*
 * Loads up to limit records from the spool into journal.db in one transaction, with the
 * run's drop count. Call with load_mu held. With yield (the background loader) it stops
 * early, after any row, when a journal_sync waits for load_mu: a starved background thread
 * never holds a report up for more than a row. Returns how many records it loaded (0: none
 * waiting), or -1 when the transaction failed: nothing was loaded, the records stay in the
 * spool and are read again by the next call.
 */
static int64_t load_step(struct journal *j, int64_t limit, bool yield)
{
    uint64_t dropped = journal_dropped(j);
    int64_t n = 0, last = atomic_load_explicit(&j->last_id, memory_order_relaxed);
    enum spool_read got = READ_WAIT;
    struct spool_row row;
    bool began = false;
    int rc = 0;

    while (n < limit && !(yield && atomic_load_explicit(&j->sync_waiting, memory_order_relaxed)) &&
           (got = spool_read(j, &row)) == READ_ROW) {
        if (!began) {
            rc = st_run(j->st[W_BEGIN]);
            began = rc == 0;
        }
        if (rc == 0)
            rc = row_insert(j, &row);
        if (rc == -FB_EEXIST) {
            atomic_fetch_add_explicit(&j->write_failed, 1, memory_order_relaxed);
            rc = 0;
        }
        if (rc)
            break;
        last = row.id;
        n++;
    }
    if (got == READ_ERROR)
        complain_errno(j, &j->llast_log_ms, "reading the spool failed", errno);
    if (rc == 0 && (began || dropped != j->run_dropped)) {
        if (!began)
            rc = st_run(j->st[W_BEGIN]);
        if (rc == 0)
            rc = batch_finish(j, dropped);
    }
    if (rc) {
        complain(j->path, j->db, &j->llast_log_ms, "loading records failed; retrying");
        st_run(j->st[W_ROLLBACK]);
        reader_rewind(j);
        return -1;
    }
    j->run_dropped = dropped;
    atomic_store_explicit(&j->last_id, last, memory_order_release);
    atomic_fetch_add_explicit(&j->loaded_n, (uint64_t)n, memory_order_relaxed);
    if (got == READ_END)
        segment_done(j);
    return got == READ_END && n == 0 ? 1 : n; /* a finished segment is progress too */
}

/* Deletes, in one transaction, up to DELETE_CHUNK of the records the indexer retired. Call
 * with load_mu held. */
static void loader_delete(struct journal *j)
{
    int64_t upto = atomic_load_explicit(&j->retired, memory_order_acquire), n;
    sqlite3_stmt *st = j->st[W_DELETE];
    int rc;

    if (upto <= j->deleted)
        return;
    if (upto - j->deleted > DELETE_CHUNK)
        upto = j->deleted + DELETE_CHUNK;
    rc = st_run(j->st[W_BEGIN]);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, j->deleted);
        sqlite3_bind_int64(st, 2, upto);
        rc = st_run(st);
    }
    n = rc == 0 ? sqlite3_changes(j->db) : 0;
    if (rc == 0) {
        sqlite3_bind_int64(j->st[W_OLD_RUNS], 1, j->run_id);
        rc = st_run(j->st[W_OLD_RUNS]);
    }
    if (rc == 0)
        rc = st_run(j->st[W_COMMIT]);
    if (rc) {
        complain(j->path, j->db, &j->llast_log_ms, "deleting retired records failed");
        st_run(j->st[W_ROLLBACK]);
        return;
    }
    j->deleted = upto;
    atomic_store_explicit(&j->deleted_pub, upto, memory_order_release);
    atomic_fetch_add_explicit(&j->trimmed, (uint64_t)n, memory_order_relaxed);
}

/* The loader: loads whatever the spool holds, in transactions of up to LOAD_CHUNK records,
 * then deletes retired records; sleeps until the spooler's next commit. Background priority. */
static void loader_main(void *arg)
{
    struct journal *j = arg;
    int64_t n;
    bool stop;

    pthread_setname_np(pthread_self(), "fb-journal-load");
    background_priority("loader");
    for (;;) {
        uv_mutex_lock(&j->load_mu);
        n = load_step(j, LOAD_CHUNK, true);
        if (n == 0)
            loader_delete(j);
        uv_mutex_unlock(&j->load_mu);
        atomic_store_explicit(&j->loader_cpu_ns, thread_cpu_ns(), memory_order_relaxed);
        uv_mutex_lock(&j->mu);
        if (!j->lstop && n <= 0)
            uv_cond_timedwait(&j->lcv, &j->mu,
                              (uint64_t)(n < 0 ? LOAD_RETRY_MS : j->commit_ms) * 1000000u);
        stop = j->lstop;
        uv_mutex_unlock(&j->mu);
        if (stop)
            break;
    }
}

int64_t journal_sync(struct journal *j, unsigned timeout_ms)
{
    uint64_t deadline = fb_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    struct timespec pause = {0, 5000000};
    int64_t target, left, n;

    if (!j)
        return 0;
    target = atomic_load_explicit(&j->spooled, memory_order_acquire);
    for (;;) {
        left = target - atomic_load_explicit(&j->last_id, memory_order_acquire);
        if (left <= 0 || fb_mono_ns() >= deadline)
            break;
        atomic_fetch_add_explicit(&j->sync_waiting, 1, memory_order_relaxed);
        uv_mutex_lock(&j->load_mu);
        atomic_fetch_sub_explicit(&j->sync_waiting, 1, memory_order_relaxed);
        n = load_step(j, SYNC_CHUNK, false);
        uv_mutex_unlock(&j->load_mu);
        if (n <= 0)
            nanosleep(&pause, NULL);
    }
    return left > 0 ? left : 0;
}

/* ---- the indexer -------------------------------------------------------------------------- */

/* Columns of release_totals after service and release, as agg statuses of j->totals. */
enum total { TOT_WRITES, TOT_IDENTIFIED, TOT_IDENTITIES, TOT_WITH_ENTITY, TOT_ENTITIES,
             TOT_COUNT_ };

/*
 * Upserts one aggregation's counts with statement st and adds them to the release totals:
 * the writes to column counted, and, when st returns the key's new count, a key it created
 * (its count equals the chunk's) to column fresh.
 */
static int agg_flush(struct journal *j, struct agg *a, sqlite3_stmt *st, enum total counted,
                     enum total fresh)
{
    const struct agg_entry *e;
    const char *svc, *rel, *val;
    bool created;
    size_t i;
    int rc = 0, step;

    for (i = 0; rc == 0 && i < a->cap; i++) {
        e = &a->tab[i];
        if (!e->hash)
            continue;
        svc = a->keys + e->off;
        rel = svc + strlen(svc) + 1;
        val = rel + strlen(rel) + 1;
        sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, val, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, e->status);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)e->n);
        step = sqlite3_step(st);
        created = step == SQLITE_ROW && sqlite3_column_int64(st, 0) == (sqlite3_int64)e->n;
        rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : -FB_ESTORE;
        sqlite3_reset(st);
        if (rc == 0)
            rc = agg_add(&j->totals, svc, rel, "", counted, e->n);
        if (rc == 0 && created)
            rc = agg_add(&j->totals, svc, rel, "", fresh, 1);
    }
    return rc;
}

/* Adds the chunk's totals to release_totals, one upsert per (release, column). */
static int totals_flush(struct journal *j)
{
    sqlite3_stmt *st = j->ist[I_ADD_TOTALS];
    const struct agg *a = &j->totals;
    const struct agg_entry *e;
    const char *svc;
    size_t i;
    int rc = 0, c;

    for (i = 0; rc == 0 && i < a->cap; i++) {
        e = &a->tab[i];
        if (!e->hash)
            continue;
        svc = a->keys + e->off;
        sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, svc + strlen(svc) + 1, -1, SQLITE_STATIC);
        for (c = 0; c < TOT_COUNT_; c++)
            sqlite3_bind_int64(st, 3 + c, c == e->status ? (sqlite3_int64)e->n : 0);
        rc = st_run(st);
    }
    return rc;
}

/* Posts id under a key (identity or entity) with statement st. */
static int post(sqlite3_stmt *st, const char *svc, const char *key, int64_t id)
{
    sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    return st_run(st);
}

/* Counts one committed record into the chunk's aggregations and posts it under its identity
 * and entity. rd is the row (I_READ columns); its text stays valid until the next step. */
static int index_row(struct journal *j, sqlite3_stmt *rd)
{
    const char *svc = (const char *)sqlite3_column_text(rd, 1);
    const char *rel = (const char *)sqlite3_column_text(rd, 2);
    const char *route = (const char *)sqlite3_column_text(rd, 3);
    const char *ident = (const char *)sqlite3_column_text(rd, 5);
    const char *entity = (const char *)sqlite3_column_text(rd, 6);
    int64_t id = sqlite3_column_int64(rd, 0);
    int rc;

    if (!svc || !rel || !route)
        return -FB_ESTORE;
    rc = agg_add(&j->routes, svc, rel, route, sqlite3_column_int(rd, 4), 1);
    if (rc == 0 && ident)
        rc = agg_add(&j->identities, svc, rel, ident, 0, 1);
    if (rc == 0 && ident)
        rc = post(j->ist[I_POST_IDENTITY], svc, ident, id);
    if (rc == 0 && entity)
        rc = agg_add(&j->entities, svc, rel, entity, 0, 1);
    if (rc == 0 && entity)
        rc = post(j->ist[I_POST_ENTITY], svc, entity, id);
    return rc;
}

/* Reads up to limit records after *last into the aggregations; *last gets the newest id
 * read. Returns how many, or a negative error. */
static int64_t index_read(struct journal *j, int64_t limit, int64_t *last)
{
    sqlite3_stmt *rd = j->ist[I_READ];
    int64_t n = 0;
    int rc = 0, step;

    sqlite3_bind_int64(rd, 1, *last);
    sqlite3_bind_int64(rd, 2, limit);
    while (rc == 0 && (step = sqlite3_step(rd)) == SQLITE_ROW) {
        rc = index_row(j, rd);
        *last = sqlite3_column_int64(rd, 0);
        n++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -FB_ESTORE;
    sqlite3_reset(rd);
    return rc ? rc : n;
}

static int meta_set(struct journal *j, const char *key, int64_t value)
{
    sqlite3_bind_text(j->ist[I_META], 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j->ist[I_META], 2, value);
    return st_run(j->ist[I_META]);
}

static int summaries_flush(struct journal *j, int64_t last)
{
    int rc = agg_flush(j, &j->routes, j->ist[I_ADD_ROUTE], TOT_WRITES, TOT_WRITES);

    if (rc == 0)
        rc = agg_flush(j, &j->identities, j->ist[I_ADD_IDENTITY], TOT_IDENTIFIED,
                       TOT_IDENTITIES);
    if (rc == 0)
        rc = agg_flush(j, &j->entities, j->ist[I_ADD_ENTITY], TOT_WITH_ENTITY, TOT_ENTITIES);
    if (rc == 0)
        rc = totals_flush(j);
    if (rc == 0)
        rc = meta_set(j, "indexed_id", last);
    return rc;
}

/*
 * Folds up to limit committed records after the watermark into the postings and the
 * summaries and moves the watermark, in one transaction of journal-index.db. Returns how
 * many, or a negative error (nothing changed; the records are tried again later).
 */
static int64_t index_chunk(struct journal *j, int64_t limit)
{
    int64_t last = atomic_load_explicit(&j->indexed, memory_order_relaxed), n = 0;
    int rc = st_run(j->ist[I_BEGIN]);

    if (rc == 0) {
        n = index_read(j, limit, &last);
        rc = n < 0 ? (int)n : 0;
    }
    if (rc == 0 && n > 0)
        rc = summaries_flush(j, last);
    if (rc == 0)
        rc = st_run(j->ist[I_COMMIT]);
    if (rc) {
        complain(j->ipath, j->idb, &j->ilast_log_ms, "indexing failed");
        st_run(j->ist[I_ROLLBACK]);
    } else {
        atomic_store_explicit(&j->indexed, last, memory_order_release);
    }
    agg_reset(&j->routes);
    agg_reset(&j->identities);
    agg_reset(&j->entities);
    agg_reset(&j->totals);
    return rc ? rc : n;
}

/* Records a chunk can take within budget_ms at the measured rate, CHUNK_MIN to CHUNK_MAX. */
static int64_t chunk_for(const struct journal *j, double budget_ms)
{
    double n = j->index_rate * budget_ms / 1000.0;

    return n < CHUNK_MIN ? CHUNK_MIN : n > CHUNK_MAX ? CHUNK_MAX : (int64_t)n;
}

/* Learns the rate of a chunk of n records that took ns. */
static void rate_learn(struct journal *j, int64_t n, uint64_t ns)
{
    if (n < CHUNK_MIN || ns == 0)
        return;
    j->index_rate = j->index_rate * 0.7 + (double)n * 1e9 / (double)ns * 0.3;
}

/* Indexes for about budget_ms. Returns how many records. */
static int64_t indexer_run(struct journal *j, double budget_ms)
{
    uint64_t t0 = fb_mono_ns(), t;
    double left = budget_ms;
    int64_t n, total = 0;

    while (left > 0 && atomic_load_explicit(&j->indexed, memory_order_relaxed) <
                           atomic_load_explicit(&j->last_id, memory_order_acquire)) {
        t = fb_mono_ns();
        n = index_chunk(j, chunk_for(j, left < INDEX_CHUNK_MS ? left : INDEX_CHUNK_MS));
        if (n <= 0)
            break;
        rate_learn(j, n, fb_mono_ns() - t);
        total += n;
        left = budget_ms - (double)(fb_mono_ns() - t0) / 1e6;
    }
    return total;
}

/* ---- retention ---------------------------------------------------------------------------- */

/* Bytes in pages that hold data, both files (each file minus its free pages). */
static uint64_t used_bytes(struct journal *j)
{
    int64_t rp = st_int(j->ist[I_RAW_PAGES], 0), rf = st_int(j->ist[I_RAW_FREE], 0);
    int64_t ip = st_int(j->ist[I_PAGES], 0), ifr = st_int(j->ist[I_FREE], 0);
    uint64_t used = 0;

    if (rp > rf)
        used += (uint64_t)(rp - rf) * (uint64_t)st_int(j->ist[I_RAW_PAGE_SIZE], 4096);
    if (ip > ifr)
        used += (uint64_t)(ip - ifr) * (uint64_t)st_int(j->ist[I_PAGE_SIZE], 4096);
    return used;
}

/* The last id of the run of records after `from` older than cutoff (at most limit of them,
 * none past the watermark): records arrive about in time order, so a straggler only delays. */
static int64_t age_upto(struct journal *j, int64_t from, int64_t cutoff, int64_t limit)
{
    sqlite3_stmt *st = j->ist[I_AGE_SCAN];
    int64_t upto = from, indexed = atomic_load_explicit(&j->indexed, memory_order_relaxed);

    int64_t bound = from + limit < indexed ? from + limit : indexed;
    int step;

    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, bound);
    while ((step = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_int64(st, 1) < cutoff)
        upto = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    /* Every record up to the watermark was old, or none was indexed yet: more may be, once
     * indexed. */
    j->retain_blocked |= step == SQLITE_DONE && bound == indexed &&
                         (indexed == from ||
                          indexed < atomic_load_explicit(&j->last_id, memory_order_relaxed));
    return upto;
}

/* The last id to retire to bring the used pages to 98% of max_bytes, at the average bytes per
 * record: at most limit records, none past the watermark. */
static int64_t size_upto(struct journal *j, int64_t from, int64_t limit)
{
    int64_t last = atomic_load_explicit(&j->last_id, memory_order_relaxed), rows, n;
    int64_t indexed = atomic_load_explicit(&j->indexed, memory_order_relaxed);
    uint64_t used = used_bytes(j), target = j->max_bytes - j->max_bytes / 50;

    rows = last - st_int(j->ist[I_RAW_MIN], last) + 1;
    if (used <= j->max_bytes || rows <= 0)
        return from;
    n = (int64_t)((double)(used - target) / ((double)used / (double)rows));
    n = n < CHUNK_MIN ? CHUNK_MIN : n > limit ? limit : n;
    j->retain_blocked |= from + n > indexed;
    return from + n < indexed ? from + n : indexed;
}

/* Takes records (from, upto] out of the postings and summaries and records retired_id, in one
 * transaction; the loader then deletes them from journal.db. */
static int retire(struct journal *j, int64_t from, int64_t upto)
{
    static const enum istmt steps[] = {
        I_UNPOST_IDENTITY,    I_UNPOST_ENTITY,      I_DEC_ROUTES,    I_DEC_IDENTITIES,
        I_DEC_ENTITIES,       I_DEC_TOTALS,         I_DEC_TOTAL_IDENTITIES,
        I_DEC_TOTAL_ENTITIES, I_ZERO_ROUTES,        I_ZERO_IDENTITIES,
        I_ZERO_ENTITIES,      I_ZERO_TOTALS};
    size_t i;
    int rc = st_run(j->ist[I_BEGIN]);

    for (i = 0; rc == 0 && i < sizeof steps / sizeof steps[0]; i++) {
        if (sqlite3_bind_parameter_count(j->ist[steps[i]]) >= 2) {
            sqlite3_bind_int64(j->ist[steps[i]], 1, from);
            sqlite3_bind_int64(j->ist[steps[i]], 2, upto);
        }
        rc = st_run(j->ist[steps[i]]);
    }
    if (rc == 0)
        rc = meta_set(j, "retired_id", upto);
    if (rc == 0)
        rc = st_run(j->ist[I_COMMIT]);
    if (rc) {
        complain(j->ipath, j->idb, &j->ilast_log_ms, "retention failed");
        st_run(j->ist[I_ROLLBACK]);
        return rc;
    }
    atomic_store_explicit(&j->retired, upto, memory_order_release);
    return 0;
}

/*
 * One retention step when due: records older than retention_ms, then, once the loader has
 * deleted what was retired before, the oldest records while the files' used pages exceed
 * max_bytes. Returns true when it retired a full chunk (more may be due at once).
 */
static bool indexer_retain(struct journal *j, int64_t now, bool due)
{
    int64_t from = atomic_load_explicit(&j->retired, memory_order_relaxed), upto = from;
    int64_t limit = chunk_for(j, INDEX_CHUNK_MS);
    uint64_t t0 = fb_mono_ns();

    if (!due && now < j->next_retain_ms)
        return false;
    j->next_retain_ms = now + RETAIN_EVERY_MS;
    j->retain_blocked = false;
    if (j->retention_ms && (uint64_t)now > j->retention_ms)
        upto = age_upto(j, from, now - (int64_t)j->retention_ms, limit);
    if (upto == from && j->max_bytes && j->deleted_seen >= from)
        upto = size_upto(j, from, limit);
    if (upto == from || retire(j, from, upto))
        return false;
    rate_learn(j, upto - from, fb_mono_ns() - t0);
    j->next_retain_ms = now + RETAIN_SOON_MS; /* while there is work, look again soon */
    return upto - from >= limit;
}

/* Sleeps up to ms (0: not at all), or until close is called. Returns whether to stop. */
static bool indexer_sleep(struct journal *j, double ms)
{
    bool stop;

    uv_mutex_lock(&j->mu);
    if (!j->istop && ms > 0)
        uv_cond_timedwait(&j->cv, &j->mu, (uint64_t)(ms * 1e6));
    stop = j->istop;
    uv_mutex_unlock(&j->mu);
    return stop;
}

/* The indexer: chunks of INDEX_CHUNK_MS while records wait, retention when due; on close,
 * at most CLOSE_INDEX_MS more indexing. It runs in the background (background_priority). */
static void indexer_main(void *arg)
{
    struct journal *j = arg;
    bool more = false;
    int64_t n;

    pthread_setname_np(pthread_self(), "fb-journal-idx");
    background_priority("indexer");
    while (!indexer_sleep(j, 0)) {
        j->deleted_seen = atomic_load_explicit(&j->deleted_pub, memory_order_acquire);
        more = indexer_retain(j, fb_wall_ms(), more);
        n = indexer_run(j, INDEX_CHUNK_MS);
        more |= n > 0 && j->retain_blocked; /* retention waited for these records */
        atomic_store_explicit(&j->indexer_cpu_ns, thread_cpu_ns(), memory_order_relaxed);
        if (n == 0 && !more && indexer_sleep(j, INDEX_IDLE_MS))
            break;
    }
    indexer_run(j, CLOSE_INDEX_MS);
    atomic_store_explicit(&j->indexer_cpu_ns, thread_cpu_ns(), memory_order_relaxed);
}

/* ---- life cycle --------------------------------------------------------------------------- */

void journal_options_init(struct journal_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->nworkers = 1;
    opt->ring_slots = RING_DEFAULT;
    opt->retention_ms = RETENTION_DEFAULT_MS;
    opt->commit_ms = COMMIT_DEFAULT_MS;
}

static bool key_listed(const char **keys, size_t n, const char *k)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcasecmp(keys[i], k) == 0)
            return true;
    return false;
}

int journal_options_from_config(const struct config *cfg, unsigned nworkers,
                                struct journal_options *opt, const char **keys, size_t nkeys)
{
    const struct cfg_journal_service *js;
    size_t i, k, n = 0;

    journal_options_init(opt);
    opt->nworkers = nworkers;
    opt->ring_slots = cfg->journal.ring ? cfg->journal.ring : RING_DEFAULT;
    opt->retention_ms = cfg->journal.retention_ms;
    opt->max_bytes = cfg->journal.max_bytes;
    for (i = 0; i < cfg->nservices; i++) {
        js = &cfg->services[i].journal;
        if (js->body_bytes > opt->body_cap)
            opt->body_cap = js->body_bytes > JOURNAL_BODY_MAX ? JOURNAL_BODY_MAX
                                                              : (uint32_t)js->body_bytes;
        for (k = 0; k < js->nredact; k++) {
            if (key_listed(keys, n, js->redact[k]))
                continue;
            if (n == nkeys)
                return -FB_ETOOBIG;
            keys[n++] = js->redact[k];
        }
    }
    opt->redact = keys; /* every service asked for none: none */
    opt->nredact = n;
    return 0;
}

static int options_check(const struct journal_options *o, char *err, size_t errlen)
{
    const char *why = NULL;

    if (o->nworkers == 0 || o->nworkers > 1024)
        why = "nworkers must be 1 to 1024";
    else if (o->ring_slots < RING_MIN || o->ring_slots > RING_MAX ||
             (o->ring_slots & (o->ring_slots - 1)))
        why = "ring_slots must be a power of two from 2 to 1048576";
    else if (o->body_cap > JOURNAL_BODY_MAX)
        why = "body_cap must be at most 16384";
    else if (o->commit_ms > COMMIT_MAX_MS)
        why = "commit_ms must be at most 100";
    else if (o->nredact > JOURNAL_REDACT_MAX)
        why = "at most 256 redact keys";
    if (why)
        set_err(err, errlen, "journal: %s%s", why, NULL);
    return why ? -FB_EINVAL : 0;
}

static int rings_new(struct journal *j)
{
    size_t bytes = sizeof(struct journal_ring) + (size_t)j->nslots * j->slot_size;
    unsigned i;

    bytes = (bytes + 63) & ~(size_t)63;
    j->rings = calloc(j->nworkers, sizeof *j->rings);
    if (!j->rings)
        return -FB_ENOMEM;
    for (i = 0; i < j->nworkers; i++) {
        j->rings[i] = aligned_alloc(64, bytes);
        if (!j->rings[i])
            return -FB_ENOMEM;
        memset(j->rings[i], 0, sizeof(struct journal_ring));
    }
    return 0;
}

static void db_close(sqlite3 *db, sqlite3_stmt **st, int n, const char *path)
{
    int i;

    for (i = 0; i < n; i++)
        sqlite3_finalize(st[i]);
    if (db && sqlite3_close(db) != SQLITE_OK)
        fb_error("journal %s: close: %s", path, sqlite3_errmsg(db));
}

static void journal_free(struct journal *j)
{
    unsigned i;

    db_close(j->idb, j->ist, I_COUNT_, j->ipath);
    db_close(j->db, j->st, W_COUNT_, j->path);
    segment_close(j);
    reader_close(j);
    fb_buf_release(&j->sbuf);
    fb_buf_release(&j->rbuf);
    for (i = 0; j->rings && i < j->nworkers; i++)
        free(j->rings[i]);
    free(j->rings);
    redact_release(&j->redact);
    redact_release(&j->pending);
    agg_release(&j->routes);
    agg_release(&j->identities);
    agg_release(&j->entities);
    agg_release(&j->totals);
    uv_cond_destroy(&j->lcv);
    uv_cond_destroy(&j->cv);
    uv_mutex_destroy(&j->load_mu);
    uv_mutex_destroy(&j->mu);
    free(j->spool);
    free(j->ipath);
    free(j->path);
    free(j);
}

static struct journal *journal_alloc(const char *path, const struct journal_options *o)
{
    struct journal *j = calloc(1, sizeof *j);
    size_t n = strlen(path) + 16;

    if (!j)
        return NULL;
    if (uv_mutex_init(&j->mu)) {
        free(j);
        return NULL;
    }
    if (uv_mutex_init(&j->load_mu)) {
        uv_mutex_destroy(&j->mu);
        free(j);
        return NULL;
    }
    if (uv_cond_init(&j->cv)) {
        uv_mutex_destroy(&j->load_mu);
        uv_mutex_destroy(&j->mu);
        free(j);
        return NULL;
    }
    if (uv_cond_init(&j->lcv)) {
        uv_cond_destroy(&j->cv);
        uv_mutex_destroy(&j->load_mu);
        uv_mutex_destroy(&j->mu);
        free(j);
        return NULL;
    }
    j->seg_fd = -1;
    j->rd_fd = -1;
    fb_buf_init(&j->sbuf, SIZE_MAX / 4);
    fb_buf_init(&j->rbuf, SPOOL_READ_MAX);
    j->nworkers = o->nworkers;
    j->nslots = o->ring_slots;
    j->body_cap = o->body_cap;
    j->slot_size = (sizeof(struct journal_record) + o->body_cap + 63) & ~(size_t)63;
    j->commit_ms = o->commit_ms ? o->commit_ms : COMMIT_DEFAULT_MS;
    j->retention_ms = o->retention_ms;
    j->max_bytes = o->max_bytes;
    j->defer_index = o->defer_index;
    j->defer_load = o->defer_load;
    j->backlog_max = o->backlog_max ? o->backlog_max : BACKLOG_DEFAULT;
    j->index_rate = RATE_GUESS;
    j->path = strdup(path);
    j->ipath = malloc(n);
    if (j->ipath && journal_index_path(path, j->ipath, n)) {
        free(j->ipath);
        j->ipath = NULL;
    }
    j->spool = malloc(n);
    if (j->spool && journal_spool_path(path, j->spool, n)) {
        free(j->spool);
        j->spool = NULL;
    }
    return j;
}

/* The token naming journal.db, made on first open. */
static int token_get(struct journal *j, int64_t *token, char *err, size_t errlen)
{
    char sql[96];
    uint64_t r = 0;

    if (db_int(j->db, "SELECT token FROM ident", token) == 0 && *token)
        return 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = fb_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)fb_wall_ms();
    *token = (int64_t)(r >> 1) | 1;
    snprintf(sql, sizeof sql, "INSERT INTO ident (token) VALUES (%lld)", (long long)*token);
    return db_exec(j->db, sql, err, errlen);
}

/* Empties an index file made for another journal.db (or for none) and marks it as this one's. */
static int index_adopt(struct journal *j, char *err, size_t errlen)
{
    static const char reset[] =
        "BEGIN IMMEDIATE; DELETE FROM writes_by_identity; DELETE FROM writes_by_entity;"
        " DELETE FROM release_routes; DELETE FROM release_identities;"
        " DELETE FROM release_entities; DELETE FROM release_totals; DELETE FROM meta;";
    int64_t token = 0, have = 0;
    char sql[128];
    int rc = token_get(j, &token, err, errlen);

    db_int(j->idb, "SELECT value FROM meta WHERE key = 'journal'", &have);
    if (rc || have == token)
        return rc;
    if (have)
        fb_warn("journal %s: made for another journal file; rebuilding it", j->ipath);
    snprintf(sql, sizeof sql, "INSERT INTO meta (key, value) VALUES ('journal', %lld); COMMIT",
             (long long)token);
    rc = db_exec(j->idb, reset, err, errlen);
    if (rc == 0)
        rc = db_exec(j->idb, sql, err, errlen);
    if (rc)
        sqlite3_exec(j->idb, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/*
 * Finds where the spool stands: the last whole record a run left in it (the newest segment
 * holding one) is the last committed, and ids go on after it and after the newest segment's
 * name, so a new segment never has the name of one on disk (one whose records were all cut
 * short still has its file).
 */
static int spool_load(struct journal *j, char *err, size_t errlen)
{
    int64_t first = INT64_MAX, last = 0, newest = 0, loaded;
    int rc = 0;

    if (spool_dir_make(j->spool)) {
        set_err(err, errlen, "%s: %s", j->spool, strerror(errno));
        return -FB_EIO;
    }
    while (last == 0 && (rc = spool_segment_prev(j->spool, first, &first)) == 0) {
        if (newest == 0)
            newest = first;
        rc = spool_segment_last(j->spool, first, &last);
        if (rc && rc != -FB_EINVAL && rc != -FB_ENOENT) {
            set_err(err, errlen, "%s: %s", j->spool, strerror(errno));
            return -FB_EIO;
        }
    }
    if (rc == -FB_EIO) {
        set_err(err, errlen, "%s: %s", j->spool, strerror(errno));
        return -FB_EIO;
    }
    loaded = atomic_load_explicit(&j->last_id, memory_order_relaxed);
    j->next_id = loaded > last ? loaded : last;
    if (newest > j->next_id)
        j->next_id = newest; /* never the name of a segment on disk, even one without records */
    j->next_id++;
    j->spool_start = j->next_id;
    atomic_store_explicit(&j->spooled, loaded > last ? loaded : last,
                          memory_order_relaxed);
    return 0;
}

/* Starts this process's row in runs and reads where the indexer and retention stood. */
static int state_load(struct journal *j, char *err, size_t errlen)
{
    char sql[160];
    int64_t now = fb_wall_ms(), v, loaded;

    snprintf(sql, sizeof sql, "INSERT INTO runs (started_ms, updated_ms, dropped) VALUES (%lld,"
                              " %lld, 0)", (long long)now, (long long)now);
    if (db_exec(j->db, sql, err, errlen))
        return -FB_ESTORE;
    j->run_id = sqlite3_last_insert_rowid(j->db);
    if (index_adopt(j, err, errlen))
        return -FB_ESTORE;
    v = 0;
    db_int(j->idb, "SELECT value FROM meta WHERE key = 'indexed_id'", &v);
    atomic_store_explicit(&j->indexed, v, memory_order_relaxed);
    v = 0;
    db_int(j->idb, "SELECT value FROM meta WHERE key = 'retired_id'", &v);
    atomic_store_explicit(&j->retired, v, memory_order_relaxed);
    /* Retention may have deleted every record: what was retired was loaded. */
    loaded = v;
    v = 0;
    db_int(j->db, "SELECT MAX(id) FROM writes", &v);
    atomic_store_explicit(&j->last_id, v > loaded ? v : loaded, memory_order_relaxed);
    /* Records below the first one left are deleted; a retired range left by a killed run is
     * deleted again (nothing happens for ids already gone). */
    v = 0;
    db_int(j->db, "SELECT MIN(id) - 1 FROM writes", &v);
    j->deleted = v;
    atomic_store_explicit(&j->deleted_pub, v, memory_order_relaxed);
    return spool_load(j, err, errlen);
}

int journal_open(const char *path, const struct journal_options *opt, struct journal **out,
                 char *err, size_t errlen)
{
    struct journal_options defaults;
    struct journal *j = NULL;
    int rc;

    *out = NULL;
    if (!opt) {
        journal_options_init(&defaults);
        opt = &defaults;
    }
    if (!path || !path[0]) {
        set_err(err, errlen, "journal: %s%s", "no file name", NULL);
        return -FB_EINVAL;
    }
    rc = options_check(opt, err, errlen);
    if (rc)
        return rc;
    j = journal_alloc(path, opt);
    if (!j || !j->path || !j->ipath || !j->spool) {
        rc = -FB_ENOMEM;
        goto fail;
    }
    rc = redact_copy(opt->redact, opt->nredact, &j->redact);
    if (rc) {
        set_err(err, errlen, "journal: %s%s", rc == -FB_EINVAL ? "a redact key is empty or "
                                              "longer than 63 bytes" : "out of memory", NULL);
        goto fail;
    }
    rc = rings_new(j);
    if (rc == 0)
        rc = db_open(j->path, raw_schema, wsql, j->st, W_COUNT_, NULL, &j->db, err, errlen);
    if (rc == 0)
        rc = db_open(j->ipath, index_schema, isql, j->ist, I_COUNT_, j->path, &j->idb, err,
                     errlen);
    if (rc == 0)
        rc = state_load(j, err, errlen);
    if (rc)
        goto fail;
    *out = j;
    return 0;
fail:
    if (rc == -FB_ENOMEM)
        set_err(err, errlen, "journal: %s%s", "out of memory", NULL);
    if (j)
        journal_free(j);
    return rc;
}

int journal_start(struct journal *j)
{
    if (!j || j->started)
        return -FB_EINVAL;
    if (uv_thread_create(&j->thread, writer_main, j))
        return -FB_ENOMEM;
    j->started = true;
    if (!j->defer_load && uv_thread_create(&j->lthread, loader_main, j) == 0)
        j->lstarted = true;
    if (!j->defer_index && uv_thread_create(&j->ithread, indexer_main, j) == 0)
        j->istarted = true;
    return 0;
}

/* Sets *flag under the lock and wakes both threads. */
static void raise_flag(struct journal *j, bool *flag)
{
    uv_mutex_lock(&j->mu);
    *flag = true;
    uv_cond_broadcast(&j->cv);
    uv_mutex_unlock(&j->mu);
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    if (j->started) {
        raise_flag(j, &j->stop);
        uv_thread_join(&j->thread);
    } else {
        spool_cycle(j);
    }
    if (j->lstarted) {
        uv_mutex_lock(&j->mu);
        j->lstop = true;
        uv_cond_signal(&j->lcv);
        uv_mutex_unlock(&j->mu);
        uv_thread_join(&j->lthread);
    }
    /* Loads what the spool holds for at most CLOSE_LOAD_MS; the rest waits in the spool for
     * the next run. A segment whose records are all in journal.db goes. */
    if (journal_sync(j, CLOSE_LOAD_MS) == 0 && j->seg_fd >= 0) {
        segment_close(j);
        if (j->rd_fd >= 0 && j->rd_first == j->seg_first)
            segment_done(j);
    }
    if (j->istarted) {
        raise_flag(j, &j->istop); /* after the last load: the indexer sees it */
        uv_thread_join(&j->ithread);
    } else if (!j->defer_index) {
        indexer_run(j, CLOSE_INDEX_MS);
    }
    sqlite3_exec(j->db, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL);
    sqlite3_exec(j->idb, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL);
    journal_free(j);
}
