/*
 * store_sqlite.c: the SQLite backend of the store (sqlite_store_ops).
 *
 * One connection per store, used by one thread at a time (the front holds
 * db_lock around every call), so it is opened without SQLite's own mutex.
 * Statements are prepared once, on first use, and kept until close.
 *
 * Open: creates the file's directory (0700) and the file (0600) when
 * missing, then sets journal_mode=WAL, synchronous=NORMAL, busy_timeout and
 * foreign_keys, and runs the numbered migrations: each in its own BEGIN
 * IMMEDIATE transaction together with its schema_migrations row, so a crash
 * leaves a migration either fully applied and recorded or not at all. A
 * database recorded at a version above the binary's last migration is
 * refused.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (the
 * OS page cache) when COMMIT returns, so a crash or kill -9 of the process
 * loses no committed transaction; a power loss or kernel crash may lose the
 * last transactions before the next checkpoint's fsync, never the file's
 * consistency.
 *
 * apply: BEGIN IMMEDIATE, every op, COMMIT; on any error ROLLBACK, so a batch
 * is all or nothing. Cost: one fsync-free commit per batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firebreak/clock.h"
#include "firebreak/err-t.h"
#include "firebreak/store.h"
#include "firebreak/store_migrations.h"
#include "store_backend.h"

#define SQ_BUSY_TIMEOUT_MS 5000

enum sq_stmt {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_EVENT_INSERT,
    SQ_DOC_PUT,
    SQ_DOC_DELETE,
    SQ_DOC_GET,
    SQ_DOC_LIST,
    SQ_EVENTS_ALL,
    SQ_EVENTS_SERVICE,
    SQ_EVENTS_TIME,
    SQ_EVENTS_TIME_SERVICE,
    SQ_NEXT_ID,
    SQ_SCHEMA_VERSION,
    SQ_SCHEMA_RECORD,
    SQ_COUNT_
};

#define SQ_EVENT_COLS "SELECT id, time_ms, type, actor, service, \"release\", details FROM events"

static const char *const sq_sql[SQ_COUNT_] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_EVENT_INSERT] = "INSERT INTO events (time_ms, type, actor, service, \"release\", details)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_DOC_PUT] = "INSERT INTO docs (kind, key, json, updated_ms) VALUES (?1, ?2, ?3, ?4)"
                   " ON CONFLICT (kind, key) DO UPDATE"
                   " SET json = excluded.json, updated_ms = excluded.updated_ms",
    [SQ_DOC_DELETE] = "DELETE FROM docs WHERE kind = ?1 AND key = ?2",
    [SQ_DOC_GET] = "SELECT json, updated_ms FROM docs WHERE kind = ?1 AND key = ?2",
    [SQ_DOC_LIST] = "SELECT key, json, updated_ms FROM docs WHERE kind = ?1"
                    " ORDER BY key LIMIT ?2",
    /* Without time bounds SQLite walks the rowid from after_id and stops at
     * the limit; with them it uses the time indexes and sorts the range. */
    [SQ_EVENTS_ALL] = SQ_EVENT_COLS " WHERE id > ?1 ORDER BY id LIMIT ?4",
    [SQ_EVENTS_SERVICE] = SQ_EVENT_COLS " WHERE service = ?5 AND id > ?1 ORDER BY id LIMIT ?4",
    [SQ_EVENTS_TIME] = SQ_EVENT_COLS " WHERE id > ?1 AND time_ms >= ?2 AND time_ms < ?3"
                                     " ORDER BY id LIMIT ?4",
    [SQ_EVENTS_TIME_SERVICE] = SQ_EVENT_COLS " WHERE service = ?5 AND id > ?1"
                                             " AND time_ms >= ?2 AND time_ms < ?3"
                                             " ORDER BY id LIMIT ?4",
    [SQ_NEXT_ID] = "INSERT INTO counters (name, value) VALUES (?1, 1)"
                   " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
    [SQ_SCHEMA_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [SQ_SCHEMA_RECORD] = "INSERT INTO schema_migrations (version, name, applied_ms)"
                         " VALUES (?1, ?2, ?3)",
};

static const char sq_schema_table[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                      " version INTEGER PRIMARY KEY,"
                                      " name TEXT NOT NULL,"
                                      " applied_ms INTEGER NOT NULL)";

struct sq {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQ_COUNT_];
};

/* ---- errors and statements ---------------------------------------------- */

static int sq_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return -FB_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -FB_EAGAIN;
    case SQLITE_TOOBIG:
        return -FB_ETOOBIG;
    case SQLITE_CONSTRAINT:
        return -FB_ECONFLICT;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return -FB_EIO;
    default:
        return -FB_ESTORE;
    }
}

/* Records "PATH: what: SQLite's message" and returns the matching code. */
static int sq_fail(struct store *s, struct sq *q, int rc, const char *what)
{
    return store_fail(s, sq_code(rc), "%s: %s: %s", q->path, what,
                      q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
}

/* Returns the cached statement id, preparing it on first use; NULL on error. */
static sqlite3_stmt *sq_stmt(struct store *s, struct sq *q, enum sq_stmt id)
{
    int rc;

    if (q->stmt[id])
        return q->stmt[id];
    rc = sqlite3_prepare_v3(q->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[id], NULL);
    if (rc != SQLITE_OK) {
        sq_fail(s, q, rc, "prepare");
        q->stmt[id] = NULL;
    }
    return q->stmt[id];
}

/* Makes a statement ready for its next use. */
static void sq_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows (BEGIN, an INSERT without RETURNING). */
static int sq_step_done(struct store *s, struct sq *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, q, rc, what);
    sq_done(st);
    return rc;
}

static int sq_run(struct store *s, struct sq *q, enum sq_stmt id, const char *what)
{
    sqlite3_stmt *st = sq_stmt(s, q, id);

    return st ? sq_step_done(s, q, st, what) : -FB_ESTORE;
}

/* Ends an open transaction without keeping anything; the first error stays. */
static void sq_rollback(struct store *s, struct sq *q)
{
    sqlite3_stmt *st;

    if (sqlite3_get_autocommit(q->db))
        return; /* SQLite already rolled back */
    st = sq_stmt(s, q, SQ_ROLLBACK);
    if (st) {
        sqlite3_step(st);
        sq_done(st);
    }
}

static void sq_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Copies column i (text or NULL) into *out; false when out of memory. */
static bool sq_col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *v = sqlite3_column_text(st, i);

    *out = NULL;
    if (!v)
        return sqlite3_column_type(st, i) == SQLITE_NULL;
    *out = strdup((const char *)v);
    return *out != NULL;
}

/* ---- files and directories ---------------------------------------------- */

/* Creates every missing directory above path, mode 0700. */
static int sq_make_dirs(struct store *s, const char *path)
{
    char dir[PATH_MAX];
    size_t len = strlen(path), i;

    if (len >= sizeof(dir))
        return store_fail(s, -FB_EINVAL, "%s: path is longer than %d bytes", path, PATH_MAX - 1);
    memcpy(dir, path, len + 1);
    for (i = 1; i < len; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return store_fail(s, -FB_EIO, "%s: cannot create directory %s: %s", path, dir,
                              strerror(errno));
        dir[i] = '/';
    }
    return 0;
}

/* Creates the database file with mode 0600, or narrows an existing one to it. */
static int sq_make_file(struct store *s, const char *path)
{
    struct stat st;
    int fd, rc = 0;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return store_fail(s, -FB_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0)
        rc = store_fail(s, -FB_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = store_fail(s, -FB_EINVAL, "%s: not a regular file", path);
    else if ((st.st_mode & 077) && fchmod(fd, 0600) != 0)
        rc = store_fail(s, -FB_EIO, "%s: cannot set mode 0600: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* ---- open, migrations, close ---------------------------------------------- */

static int sq_exec(struct store *s, struct sq *q, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc;

    rc = sqlite3_exec(q->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        rc =
            store_fail(s, sq_code(rc), "%s: %s: %s", q->path, what, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

static int sq_pragmas(struct store *s, struct sq *q)
{
    const unsigned char *mode;
    sqlite3_stmt *st = NULL;
    int rc;

    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS);
    rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = sq_fail(s, q, rc, "cannot use the file as a database");
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        rc = store_fail(s, -FB_ESTORE, "%s: WAL mode refused (journal_mode is %s)", q->path,
                        mode ? (const char *)mode : "unknown");
        goto out;
    }
    rc = sq_exec(s, q, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "pragmas");
out:
    sqlite3_finalize(st);
    return rc;
}

static int sq_schema_version(struct store *s, struct sq *q, int64_t *version)
{
    sqlite3_stmt *st = sq_stmt(s, q, SQ_SCHEMA_VERSION);
    int rc;

    if (!st)
        return -FB_ESTORE;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = sq_fail(s, q, rc, "reading schema_migrations");
    }
    sq_done(st);
    return rc;
}

static int sq_schema_record(struct store *s, struct sq *q, const struct store_migration *m)
{
    sqlite3_stmt *st = sq_stmt(s, q, SQ_SCHEMA_RECORD);

    if (!st)
        return -FB_ESTORE;
    sqlite3_bind_int64(st, 1, m->number);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, fb_wall_ms());
    return sq_step_done(s, q, st, "recording a migration");
}

static int sq_refuse_newer(struct store *s, struct sq *q, int64_t version, int known)
{
    return store_fail(s, -FB_ESTORE,
                      "%s: the database schema is at version %lld, newer than this firebreak "
                      "knows (%d); run the firebreak that wrote it, or a newer one",
                      q->path, (long long)version, known);
}

/* Applies migration m unless the database already has it; one transaction. */
static int sq_migrate_one(struct store *s, struct sq *q, const struct store_migration *m, int known)
{
    char what[96];
    int64_t version = 0;
    int rc;

    rc = sq_run(s, q, SQ_BEGIN, "begin migration");
    if (rc)
        return rc;
    rc = sq_schema_version(s, q, &version);
    if (!rc && version > known)
        rc = sq_refuse_newer(s, q, version, known);
    if (rc || version >= m->number)
        goto end;
    snprintf(what, sizeof(what), "migration %04d_%s", m->number, m->name);
    rc = sq_exec(s, q, m->sql, what);
    if (!rc)
        rc = sq_schema_record(s, q, m);
end:
    if (!rc)
        rc = sq_run(s, q, SQ_COMMIT, "commit migration");
    if (rc)
        sq_rollback(s, q);
    return rc;
}

static int sq_migrate(struct store *s, struct sq *q)
{
    int known = (int)store_migrations_count;
    int64_t version = 0;
    size_t i;
    int rc;

    rc = sq_exec(s, q, sq_schema_table, "creating schema_migrations");
    if (!rc)
        rc = sq_schema_version(s, q, &version);
    if (!rc && version > known)
        rc = sq_refuse_newer(s, q, version, known);
    for (i = 0; !rc && i < store_migrations_count; i++) {
        if (store_migrations[i].number != (int)i + 1)
            rc = store_fail(s, -FB_ESTORE, "built-in migration %zu is numbered %d", i + 1,
                            store_migrations[i].number);
        else if (store_migrations[i].number > version)
            rc = sq_migrate_one(s, q, &store_migrations[i], known);
    }
    return rc;
}

static void sq_close(struct store *s)
{
    struct sq *q = store_backend(s);
    int i;

    if (!q)
        return;
    for (i = 0; i < SQ_COUNT_; i++)
        sqlite3_finalize(q->stmt[i]);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
    store_set_backend(s, NULL);
}

static int sq_open(struct store *s, const char *path)
{
    struct sq *q;
    int rc;

    q = calloc(1, sizeof(*q));
    if (!q)
        return store_fail(s, -FB_ENOMEM, "%s: out of memory", path);
    store_set_backend(s, q);
    q->path = strdup(path);
    if (!q->path) {
        rc = store_fail(s, -FB_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    rc = sq_make_dirs(s, path);
    if (!rc)
        rc = sq_make_file(s, path);
    if (rc)
        goto fail;
    rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, q, rc, "cannot open");
        goto fail;
    }
    rc = sq_pragmas(s, q);
    if (!rc)
        rc = sq_migrate(s, q);
    if (!rc)
        return 0;
fail:
    sq_close(s);
    return rc;
}

/* ---- writes -------------------------------------------------------------- */

static int sq_put_event(struct store *s, struct sq *q, struct store_event *e)
{
    sqlite3_stmt *st = sq_stmt(s, q, SQ_EVENT_INSERT);
    int rc;

    if (!st)
        return -FB_ESTORE;
    sqlite3_bind_int64(st, 1, e->time_ms);
    sq_bind_text(st, 2, e->type);
    sq_bind_text(st, 3, e->actor);
    sq_bind_text(st, 4, e->service);
    sq_bind_text(st, 5, e->release);
    sq_bind_text(st, 6, e->details ? e->details : "{}");
    rc = sq_step_done(s, q, st, "adding an event");
    if (!rc)
        e->id = sqlite3_last_insert_rowid(q->db);
    return rc;
}

static int sq_put_doc(struct store *s, struct sq *q, const struct store_doc *d)
{
    sqlite3_stmt *st = sq_stmt(s, q, SQ_DOC_PUT);

    if (!st)
        return -FB_ESTORE;
    sq_bind_text(st, 1, d->kind);
    sq_bind_text(st, 2, d->key);
    sq_bind_text(st, 3, d->json);
    sqlite3_bind_int64(st, 4, d->updated_ms);
    return sq_step_done(s, q, st, "writing a document");
}

static int sq_delete_doc(struct store *s, struct sq *q, const struct store_doc *d)
{
    sqlite3_stmt *st = sq_stmt(s, q, SQ_DOC_DELETE);

    if (!st)
        return -FB_ESTORE;
    sq_bind_text(st, 1, d->kind);
    sq_bind_text(st, 2, d->key);
    return sq_step_done(s, q, st, "deleting a document");
}

static int sq_apply_op(struct store *s, struct sq *q, struct store_op *op)
{
    switch (op->kind) {
    case STORE_OP_EVENT:
        return sq_put_event(s, q, &op->event);
    case STORE_OP_PUT:
        return sq_put_doc(s, q, &op->doc);
    case STORE_OP_DELETE:
        return sq_delete_doc(s, q, &op->doc);
    }
    return store_fail(s, -FB_EINVAL, "unknown op kind %d", (int)op->kind);
}

static int sq_apply(struct store *s, struct store_op *ops, size_t n)
{
    struct sq *q = store_backend(s);
    size_t i;
    int rc;

    rc = sq_run(s, q, SQ_BEGIN, "begin");
    if (rc)
        return rc;
    for (i = 0; i < n && !rc; i++)
        rc = sq_apply_op(s, q, &ops[i]);
    if (!rc)
        rc = sq_run(s, q, SQ_COMMIT, "commit");
    if (rc)
        sq_rollback(s, q);
    return rc;
}

static int sq_next_id(struct store *s, const char *counter, int64_t *out)
{
    struct sq *q = store_backend(s);
    sqlite3_stmt *st = sq_stmt(s, q, SQ_NEXT_ID);
    int rc;

    if (!st)
        return -FB_ESTORE;
    sq_bind_text(st, 1, counter);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, q, rc, "next id");
    sq_done(st);
    if (rc)
        *out = 0;
    return rc;
}

/* ---- reads --------------------------------------------------------------- */

/* Reads the event at the statement's current row into e. */
static int sq_read_event(struct store *s, sqlite3_stmt *st, struct store_event *e)
{
    e->id = sqlite3_column_int64(st, 0);
    e->time_ms = sqlite3_column_int64(st, 1);
    if (sq_col_dup(st, 2, &e->type) && sq_col_dup(st, 3, &e->actor) &&
        sq_col_dup(st, 4, &e->service) && sq_col_dup(st, 5, &e->release) &&
        sq_col_dup(st, 6, &e->details))
        return 0;
    return store_fail(s, -FB_ENOMEM, "reading events: out of memory");
}

/* Makes room for one more element in *arr (n used, *cap allocated). */
static int sq_grow(void **arr, size_t n, size_t *cap, size_t size, size_t max)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 16;
    if (ncap > max)
        ncap = max;
    p = realloc(*arr, ncap * size);
    if (!p)
        return -FB_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static sqlite3_stmt *sq_events_stmt(struct store *s, struct sq *q,
                                    const struct store_event_filter *f)
{
    bool timed = f->since_ms || f->until_ms;
    enum sq_stmt id;
    sqlite3_stmt *st;

    if (timed)
        id = f->service ? SQ_EVENTS_TIME_SERVICE : SQ_EVENTS_TIME;
    else
        id = f->service ? SQ_EVENTS_SERVICE : SQ_EVENTS_ALL;
    st = sq_stmt(s, q, id);
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, f->after_id);
    if (timed) {
        sqlite3_bind_int64(st, 2, f->since_ms);
        sqlite3_bind_int64(st, 3, f->until_ms ? f->until_ms : INT64_MAX);
    }
    sqlite3_bind_int64(st, 4, (sqlite3_int64)f->limit);
    if (f->service)
        sqlite3_bind_text(st, 5, f->service, -1, SQLITE_STATIC);
    return st;
}

static int sq_events(struct store *s, const struct store_event_filter *f, struct store_event **out,
                     size_t *n)
{
    struct sq *q = store_backend(s);
    struct store_event *ev = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st;
    int rc = 0, step = SQLITE_DONE;

    st = sq_events_stmt(s, q, f);
    if (!st)
        return -FB_ESTORE;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        rc = sq_grow((void **)&ev, cnt, &cap, sizeof(*ev), f->limit);
        if (rc) {
            store_fail(s, rc, "reading events: out of memory");
            break;
        }
        memset(&ev[cnt], 0, sizeof(ev[cnt]));
        rc = sq_read_event(s, st, &ev[cnt++]);
    }
    if (!rc && step != SQLITE_DONE)
        rc = sq_fail(s, q, step, "reading events");
    sq_done(st);
    if (rc) {
        store_events_free(ev, cnt);
        ev = NULL;
        cnt = 0;
    }
    *out = ev;
    *n = cnt;
    return rc;
}

static int sq_get(struct store *s, const char *kind, const char *key, struct store_doc *out)
{
    struct sq *q = store_backend(s);
    sqlite3_stmt *st = sq_stmt(s, q, SQ_DOC_GET);
    int rc;

    if (!st)
        return -FB_ESTORE;
    sq_bind_text(st, 1, kind);
    sq_bind_text(st, 2, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->updated_ms = sqlite3_column_int64(st, 1);
        out->kind = strdup(kind);
        out->key = strdup(key);
        rc = sq_col_dup(st, 0, &out->json) && out->kind && out->key
                 ? 0
                 : store_fail(s, -FB_ENOMEM, "reading a document: out of memory");
    } else if (rc == SQLITE_DONE) {
        rc = store_fail(s, -FB_ENOENT, "no document %s/%s", kind, key);
    } else {
        rc = sq_fail(s, q, rc, "reading a document");
    }
    sq_done(st);
    if (rc)
        store_doc_release(out);
    return rc;
}

static int sq_read_doc(struct store *s, sqlite3_stmt *st, const char *kind, struct store_doc *d)
{
    d->updated_ms = sqlite3_column_int64(st, 2);
    d->kind = strdup(kind);
    if (d->kind && sq_col_dup(st, 0, &d->key) && sq_col_dup(st, 1, &d->json))
        return 0;
    return store_fail(s, -FB_ENOMEM, "listing documents: out of memory");
}

static int sq_list(struct store *s, const char *kind, struct store_doc **out, size_t *n)
{
    struct sq *q = store_backend(s);
    sqlite3_stmt *st = sq_stmt(s, q, SQ_DOC_LIST);
    struct store_doc *docs = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0, step = SQLITE_DONE;

    if (!st)
        return -FB_ESTORE;
    sq_bind_text(st, 1, kind);
    sqlite3_bind_int64(st, 2, STORE_LIST_MAX + 1);
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == STORE_LIST_MAX) {
            rc = store_fail(s, -FB_ETOOBIG, "kind %s has more than %d documents", kind,
                            STORE_LIST_MAX);
            break;
        }
        rc = sq_grow((void **)&docs, cnt, &cap, sizeof(*docs), STORE_LIST_MAX);
        if (rc) {
            store_fail(s, rc, "listing documents: out of memory");
            break;
        }
        memset(&docs[cnt], 0, sizeof(docs[cnt]));
        rc = sq_read_doc(s, st, kind, &docs[cnt++]);
    }
    if (!rc && step != SQLITE_DONE)
        rc = sq_fail(s, q, step, "listing documents");
    sq_done(st);
    if (rc) {
        store_docs_free(docs, cnt);
        docs = NULL;
        cnt = 0;
    }
    *out = docs;
    *n = cnt;
    return rc;
}

const struct store_ops sqlite_store_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .apply = sq_apply,
    .events = sq_events,
    .get = sq_get,
    .list = sq_list,
    .next_id = sq_next_id,
};
