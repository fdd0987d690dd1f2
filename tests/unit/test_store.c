/* test_store.c: the store on real SQLite files: migrations, all-or-nothing
 * batches, event filters, documents, counters, the store thread seen from a
 * uv loop, bad input, file modes, and survival of kill -9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "firebreak/err-t.h"
#include "firebreak/store.h"
#include "firebreak/store_migrations.h"

#define TMPDIR_PREFIX "fb-store"
#define TMPDIR_FILE "state/firebreak.db"
#include "tmpdir.h"

static struct store *open_ok(const char *path, uv_loop_t *loop)
{
    struct store *s = NULL;
    char err[512];
    int rc = store_open(path, loop, &s, err, sizeof(err));

    if (rc)
        fail_msg("store_open(%s): %d %s", path, rc, err);
    assert_non_null(s);
    return s;
}

/* Runs one SQL query on the file directly and returns its first integer. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3_stmt *st = NULL;
    sqlite3 *db = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static struct store_op ev_op(const char *type, const char *service, int64_t time_ms,
                             const char *details)
{
    struct store_op op = {.kind = STORE_OP_EVENT};

    op.event.type = (char *)type;
    op.event.actor = (char *)"system";
    op.event.service = (char *)service;
    op.event.release = (char *)"v2";
    op.event.time_ms = time_ms;
    op.event.details = (char *)details;
    return op;
}

static struct store_op put_op(const char *kind, const char *key, const char *json)
{
    struct store_op op = {.kind = STORE_OP_PUT};

    op.doc.kind = (char *)kind;
    op.doc.key = (char *)key;
    op.doc.json = (char *)json;
    return op;
}

static size_t count_events(struct store *s)
{
    struct store_event_filter f = {.limit = STORE_EVENTS_LIMIT_MAX};
    struct store_event *ev = NULL;
    size_t n = 0;

    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    store_events_free(ev, n);
    return n;
}

/* ---- migrations ----------------------------------------------------------- */

static void migrations_run_once(void **state)
{
    struct fixture *fx = *state;
    struct store_op op = put_op("release", "shop/v1", "{\"weight\":100}");
    struct store *s = open_ok(fx->path, NULL);
    int64_t applied;

    assert_true(store_migrations_count >= 1);
    assert_int_equal(store_apply(s, &op, 1), 0);
    store_close(s);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM schema_migrations"),
                     (int64_t)store_migrations_count);
    assert_int_equal(sql_int(fx->path, "SELECT max(version) FROM schema_migrations"),
                     (int64_t)store_migrations_count);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                       "('events','docs','counters','events_time',"
                                       "'events_service_time')"),
                     5);
    applied = sql_int(fx->path, "SELECT sum(applied_ms) FROM schema_migrations");
    assert_true(applied > 0);

    /* a second open runs nothing and keeps the data */
    s = open_ok(fx->path, NULL);
    store_close(s);
    assert_int_equal(sql_int(fx->path, "SELECT sum(applied_ms) FROM schema_migrations"), applied);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM docs"), 1);
}

static void wal_mode_is_persistent(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    store_close(s);
}

static void newer_schema_refused(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    char err[512] = "";

    store_close(s);
    sql_exec(fx->path, "INSERT INTO schema_migrations VALUES (999, 'future', 1)");
    s = NULL;
    assert_int_equal(store_open(fx->path, NULL, &s, err, sizeof(err)), -FB_ESTORE);
    assert_null(s);
    assert_non_null(strstr(err, "version 999"));
    assert_non_null(strstr(err, "newer"));
}

static void not_a_database_refused(void **state)
{
    struct fixture *fx = *state;
    char path[400], err[512] = "";
    struct store *s = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/junk.db", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("this is not an SQLite file, but it is long enough to have a header.....\n", f);
    fclose(f);
    assert_true(store_open(path, NULL, &s, err, sizeof(err)) < 0);
    assert_null(s);
    assert_non_null(strstr(err, path));
}

static void postgres_not_built(void **state)
{
    struct store *s = NULL;
    char err[256] = "";

    assert_int_equal(store_open("postgres://fb@db/firebreak", NULL, &s, err, sizeof(err)),
                     -FB_EINVAL);
    assert_null(s);
    assert_string_equal(err, "PostgreSQL store not built yet");
    assert_int_equal(store_open("sqlite:", NULL, &s, err, sizeof(err)), -FB_EINVAL);
    assert_int_equal(store_open(NULL, NULL, &s, err, sizeof(err)), -FB_EINVAL);
    assert_int_equal(store_open("/tmp/x.db", NULL, NULL, err, sizeof(err)), -FB_EINVAL);
}

static void file_and_directory_modes(void **state)
{
    struct fixture *fx = *state;
    char where[400], dir[300], wal[400];
    struct store_op op = ev_op("started", NULL, 0, NULL);
    struct stat st;
    struct store *s;
    mode_t old = umask(022);

    snprintf(where, sizeof(where), "sqlite:%s", fx->path);
    s = open_ok(where, NULL);
    assert_int_equal(store_apply(s, &op, 1), 0);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", fx->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/state", fx->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    store_close(s);

    /* an existing file with a wider mode is narrowed */
    assert_int_equal(chmod(fx->path, 0644), 0);
    s = open_ok(fx->path, NULL);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    store_close(s);
    umask(old);
}

/* ---- batches -------------------------------------------------------------- */

static void batch_of_events_and_docs(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    struct store_op ops[4];
    struct store_event *ev = NULL;
    struct store_doc doc;
    size_t n = 0;

    ops[0] = ev_op("release_added", "shop", 1000, "{\"weight\":0}");
    ops[1] = put_op("release", "shop/v2", "{\"weight\":0}");
    ops[2] = ev_op("weights_changed", "shop", 0, NULL);
    ops[3] = put_op("weights", "shop", "{\"v1\":95,\"v2\":5}");
    assert_int_equal(store_apply(s, ops, 4), 0);
    assert_true(ops[0].event.id > 0);
    assert_true(ops[2].event.id > ops[0].event.id);
    assert_true(ops[2].event.time_ms > 1000); /* filled in with the wall clock */
    assert_true(ops[1].doc.updated_ms > 0);

    assert_int_equal(store_events(s, NULL, &ev, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].id, ops[0].event.id);
    assert_string_equal(ev[0].type, "release_added");
    assert_string_equal(ev[0].actor, "system");
    assert_string_equal(ev[0].service, "shop");
    assert_string_equal(ev[0].release, "v2");
    assert_string_equal(ev[0].details, "{\"weight\":0}");
    assert_int_equal(ev[0].time_ms, 1000);
    assert_string_equal(ev[1].details, "{}");
    store_events_free(ev, n);

    assert_int_equal(store_get(s, "weights", "shop", &doc), 0);
    assert_string_equal(doc.kind, "weights");
    assert_string_equal(doc.key, "shop");
    assert_string_equal(doc.json, "{\"v1\":95,\"v2\":5}");
    store_doc_release(&doc);
    assert_int_equal(store_apply(s, NULL, 0), 0);
    store_close(s);
}

static void failing_batch_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    struct store_op ops[4];
    struct store_doc doc;
    int rc;

    store_close(s);
    /* a database-level failure in the middle of the transaction */
    sql_exec(fx->path, "CREATE TRIGGER boom BEFORE INSERT ON docs WHEN NEW.key = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END");
    s = open_ok(fx->path, NULL);
    ops[0] = ev_op("rollback", "shop", 0, NULL);
    ops[1] = put_op("weights", "shop", "{\"v1\":100}");
    ops[2] = put_op("weights", "boom", "{}");
    ops[3] = ev_op("never", "shop", 0, NULL);
    rc = store_apply(s, ops, 4);
    assert_true(rc < 0);
    assert_non_null(strstr(store_error(s), "refused by test trigger"));
    assert_int_equal(ops[0].event.id, 0);
    assert_int_equal(count_events(s), 0);
    assert_int_equal(store_get(s, "weights", "shop", &doc), -FB_ENOENT);

    /* a check failure on the last op: nothing runs at all */
    ops[2] = put_op("weights", "other", "{\"v1\": 100,}");
    rc = store_apply(s, ops, 3);
    assert_int_equal(rc, -FB_EINVAL);
    assert_non_null(strstr(store_error(s), "op 2: doc json is not valid JSON"));
    assert_int_equal(count_events(s), 0);
    assert_int_equal(store_get(s, "weights", "shop", &doc), -FB_ENOENT);

    /* the store still works afterwards */
    assert_int_equal(store_apply(s, ops, 2), 0);
    assert_int_equal(count_events(s), 1);
    store_close(s);
}

static void bad_input_is_refused(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    char name[STORE_NAME_MAX + 2], *big;
    struct store_op op;
    struct store_doc doc;
    int64_t id;

    memset(name, 'k', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    op = put_op("release", name, "{}");
    assert_int_equal(store_apply(s, &op, 1), -FB_ETOOBIG);
    assert_non_null(strstr(store_error(s), "doc key is longer than 256 bytes"));
    name[STORE_NAME_MAX] = '\0'; /* exactly the limit passes */
    assert_int_equal(store_apply(s, &op, 1), 0);

    big = malloc(STORE_JSON_MAX + 16);
    assert_non_null(big);
    memset(big, ' ', STORE_JSON_MAX + 15);
    big[0] = '1';
    big[STORE_JSON_MAX + 15] = '\0';
    op = put_op("release", "big", big);
    assert_int_equal(store_apply(s, &op, 1), -FB_ETOOBIG);
    big[STORE_JSON_MAX] = '\0'; /* 1 MiB exactly: valid JSON "1" and spaces */
    assert_int_equal(store_apply(s, &op, 1), 0);
    free(big);

    op = ev_op("rollback", "shop", 0, "[1, 2]");
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    assert_non_null(strstr(store_error(s), "not a JSON object"));
    op = ev_op("rollback", "shop", 0, "{\"a\":");
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    op = ev_op(NULL, "shop", 0, NULL);
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    assert_non_null(strstr(store_error(s), "event type is missing"));
    op = ev_op("rollback", "sh\xc3(p", 0, NULL);
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    assert_non_null(strstr(store_error(s), "not valid UTF-8"));
    op = ev_op("rollback", "shop", -5, NULL);
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    op = put_op("release", "x", NULL);
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    op = put_op("", "x", "{}");
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    op.kind = (enum store_op_kind)42;
    assert_int_equal(store_apply(s, &op, 1), -FB_EINVAL);
    assert_int_equal(store_apply(s, NULL, 3), -FB_EINVAL);
    assert_int_equal(store_apply(NULL, &op, 1), -FB_EINVAL);

    assert_int_equal(store_get(s, NULL, "x", &doc), -FB_EINVAL);
    assert_int_equal(store_get(s, "release", name, NULL), -FB_EINVAL);
    assert_int_equal(store_next_id(s, "", &id), -FB_EINVAL);
    assert_int_equal(store_list(s, NULL, NULL, NULL), -FB_EINVAL);
    assert_int_equal(count_events(s), 0);
    store_close(s);
    store_close(NULL);
}

/* ---- events ---------------------------------------------------------------- */

static void event_filters(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    struct store_op ops[40];
    struct store_event_filter f;
    struct store_event *ev = NULL;
    size_t n = 0, i;

    /* 40 events at t = 1000, 1010, ...; even ones for shop, odd ones for cart */
    for (i = 0; i < 40; i++)
        ops[i] = ev_op("weights_changed", i % 2 ? "cart" : "shop", 1000 + 10 * (int64_t)i, NULL);
    assert_int_equal(store_apply(s, ops, 40), 0);

    f = (struct store_event_filter){.since_ms = 1200};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 20);
    assert_int_equal(ev[0].time_ms, 1200);
    for (i = 1; i < n; i++)
        assert_true(ev[i].id > ev[i - 1].id);
    store_events_free(ev, n);

    f = (struct store_event_filter){.since_ms = 1100, .until_ms = 1150};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(ev[4].time_ms, 1140);
    store_events_free(ev, n);

    f = (struct store_event_filter){.after_id = ops[29].event.id};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(ev[0].id, ops[30].event.id);
    store_events_free(ev, n);

    f = (struct store_event_filter){.service = "cart", .since_ms = 1300, .limit = 3};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 3);
    for (i = 0; i < n; i++) {
        assert_string_equal(ev[i].service, "cart");
        assert_true(ev[i].time_ms >= 1300);
    }
    assert_int_equal(ev[0].id, ops[31].event.id);
    store_events_free(ev, n);

    f = (struct store_event_filter){.service = "shop", .after_id = ops[9].event.id};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(ev[0].id, ops[10].event.id);
    assert_int_equal(ev[14].id, ops[38].event.id);
    for (i = 0; i < n; i++)
        assert_string_equal(ev[i].service, "shop");
    store_events_free(ev, n);

    f = (struct store_event_filter){.until_ms = 1030};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 3);
    store_events_free(ev, n);

    f = (struct store_event_filter){.service = "nosuch"};
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, 0);
    assert_null(ev);

    f = (struct store_event_filter){.since_ms = -1};
    assert_int_equal(store_events(s, &f, &ev, &n), -FB_EINVAL);
    store_close(s);
}

static void event_limits(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    size_t total = STORE_EVENTS_LIMIT_MAX + 100, i, n = 0;
    struct store_op *ops = calloc(total, sizeof(*ops));
    struct store_event_filter f = {.limit = 1000000};
    struct store_event *ev = NULL;

    assert_non_null(ops);
    for (i = 0; i < total; i++)
        ops[i] = ev_op("ejection", "shop", 5000 + (int64_t)i, NULL);
    assert_int_equal(store_apply(s, ops, total), 0);
    assert_int_equal(store_events(s, NULL, &ev, &n), 0);
    assert_int_equal(n, STORE_EVENTS_LIMIT_DEFAULT);
    assert_int_equal(ev[0].id, ops[0].event.id);
    store_events_free(ev, n);
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_int_equal(n, STORE_EVENTS_LIMIT_MAX);
    store_events_free(ev, n);
    free(ops);
    store_close(s);
}

/* ---- documents and counters ----------------------------------------------- */

static void docs_put_get_list_delete(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    struct store_op ops[3];
    struct store_doc doc, *docs = NULL;
    size_t n = 0;

    ops[0] = put_op("release", "shop/v2", "{\"w\":5}");
    ops[1] = put_op("release", "shop/v1", "{\"w\":95}");
    ops[2] = put_op("token", "ci", "{\"role\":\"viewer\"}");
    ops[0].doc.updated_ms = 77;
    assert_int_equal(store_apply(s, ops, 3), 0);

    assert_int_equal(store_get(s, "release", "shop/v2", &doc), 0);
    assert_string_equal(doc.json, "{\"w\":5}");
    assert_int_equal(doc.updated_ms, 77);
    store_doc_release(&doc);
    assert_null(doc.json);

    ops[0] = put_op("release", "shop/v2", "{\"w\":25}"); /* overwrite */
    assert_int_equal(store_apply(s, ops, 1), 0);
    assert_int_equal(store_list(s, "release", &docs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(docs[0].key, "shop/v1"); /* ordered by key */
    assert_string_equal(docs[1].key, "shop/v2");
    assert_string_equal(docs[1].json, "{\"w\":25}");
    assert_string_equal(docs[1].kind, "release");
    assert_true(docs[1].updated_ms > 77);
    store_docs_free(docs, n);

    ops[0] = (struct store_op){.kind = STORE_OP_DELETE};
    ops[0].doc.kind = "release";
    ops[0].doc.key = "shop/v1";
    ops[1] = ops[0];
    ops[1].doc.key = "absent"; /* deleting what is not there is no error */
    assert_int_equal(store_apply(s, ops, 2), 0);
    assert_int_equal(store_get(s, "release", "shop/v1", &doc), -FB_ENOENT);
    assert_non_null(strstr(store_error(s), "release/shop/v1"));
    assert_int_equal(store_list(s, "release", &docs, &n), 0);
    assert_int_equal(n, 1);
    store_docs_free(docs, n);
    assert_int_equal(store_list(s, "nothing", &docs, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_get(s, "token", "ci", &doc), 0);
    store_doc_release(&doc);
    store_close(s);
}

static void next_id_survives_reopen(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_ok(fx->path, NULL);
    int64_t id = 0;

    assert_int_equal(store_next_id(s, "incident", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(store_next_id(s, "incident", &id), 0);
    assert_int_equal(id, 2);
    assert_int_equal(store_next_id(s, "rollout", &id), 0);
    assert_int_equal(id, 1);
    store_close(s);
    s = open_ok(fx->path, NULL);
    assert_int_equal(store_next_id(s, "incident", &id), 0);
    assert_int_equal(id, 3);
    assert_int_equal(store_next_id(s, "rollout", &id), 0);
    assert_int_equal(id, 2);
    store_close(s);
}

/* ---- the store thread ------------------------------------------------------ */

#define JOBS 1000

struct job_ctx {
    struct store *s;
    uv_thread_t loop_thread;
    int next_done; /* the index the next callback must carry */
    int done;      /* callbacks seen */
    int out_of_order;
    int off_loop;     /* callbacks not on the loop thread */
    int on_loop_work; /* work that ran on the loop thread */
    int failed;
};

struct job {
    struct job_ctx *ctx;
    int index;
};

static int job_work(struct store *s, void *arg)
{
    struct job *j = arg;
    uv_thread_t self = uv_thread_self();
    struct store_op op = ev_op("ejection", "shop", 0, NULL);
    char details[64];

    if (uv_thread_equal(&self, &j->ctx->loop_thread))
        j->ctx->on_loop_work++;
    snprintf(details, sizeof(details), "{\"n\":%d}", j->index);
    op.event.details = details;
    return store_apply(s, &op, 1); /* synchronous call from the store thread */
}

static void job_done(int status, void *arg)
{
    struct job *j = arg;
    uv_thread_t self = uv_thread_self();

    if (!uv_thread_equal(&self, &j->ctx->loop_thread))
        j->ctx->off_loop++;
    if (j->index != j->ctx->next_done)
        j->ctx->out_of_order++;
    if (status)
        j->ctx->failed++;
    j->ctx->next_done = j->index + 1;
    j->ctx->done++;
}

static void check_done(uv_timer_t *t)
{
    struct job_ctx *ctx = t->data;

    if (ctx->done == JOBS)
        uv_stop(t->loop);
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void submit_runs_in_order_on_loop(void **state)
{
    struct fixture *fx = *state;
    struct job_ctx ctx = {0};
    struct job *jobs = calloc(JOBS, sizeof(*jobs));
    struct store_event *ev = NULL;
    struct store_event_filter f = {.limit = 2000};
    uv_loop_t loop;
    uv_timer_t timer, guard;
    size_t n = 0;
    int i;

    assert_non_null(jobs);
    assert_int_equal(uv_loop_init(&loop), 0);
    ctx.s = open_ok(fx->path, &loop);
    ctx.loop_thread = uv_thread_self();
    assert_int_equal(store_start(ctx.s), 0);
    for (i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){.ctx = &ctx, .index = i};
        assert_int_equal(store_submit(ctx.s, job_work, job_done, &jobs[i]), 0);
    }
    uv_timer_init(&loop, &timer);
    timer.data = &ctx;
    uv_timer_start(&timer, check_done, 5, 5);
    uv_timer_init(&loop, &guard); /* a hung store fails the test, not the run */
    uv_timer_start(&guard, stop_loop, 60000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);

    assert_int_equal(ctx.done, JOBS);
    assert_int_equal(ctx.out_of_order, 0);
    assert_int_equal(ctx.off_loop, 0);
    assert_int_equal(ctx.on_loop_work, 0);
    assert_int_equal(ctx.failed, 0);
    assert_int_equal(store_events(ctx.s, &f, &ev, &n), 0);
    assert_int_equal(n, JOBS);
    for (i = 0; i < JOBS; i++) {
        char want[32];

        snprintf(want, sizeof(want), "{\"n\":%d}", i);
        assert_string_equal(ev[i].details, want);
    }
    store_events_free(ev, n);

    store_close(ctx.s);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(jobs);
}

struct gate {
    uv_sem_t open;
    int ran;
    int done;
};

static int gate_work(struct store *s, void *arg)
{
    struct gate *g = arg;

    uv_sem_wait(&g->open);
    g->ran++;
    return 0;
}

static int count_work(struct store *s, void *arg)
{
    struct gate *g = arg;

    g->ran++;
    return -FB_ECONFLICT;
}

static void count_done(int status, void *arg)
{
    struct gate *g = arg;

    if (status == -FB_ECONFLICT || status == 0)
        g->done++;
}

static void stop_when_all_done(uv_timer_t *t)
{
    struct gate *g = t->data;

    if (g->done == STORE_QUEUE_MAX)
        uv_stop(t->loop);
}

static void queue_full_is_eagain(void **state)
{
    struct fixture *fx = *state;
    struct gate g = {0};
    struct store *s;
    uv_loop_t loop;
    uv_timer_t timer;
    int i;

    assert_int_equal(uv_sem_init(&g.open, 0), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    s = open_ok(fx->path, &loop);
    assert_int_equal(store_submit(s, NULL, NULL, &g), -FB_EINVAL);
    assert_int_equal(store_start(s), 0);
    assert_int_equal(store_submit(s, gate_work, count_done, &g), 0);
    for (i = 1; i < STORE_QUEUE_MAX; i++)
        assert_int_equal(store_submit(s, count_work, count_done, &g), 0);
    assert_int_equal(store_submit(s, count_work, count_done, &g), -FB_EAGAIN);
    assert_int_equal(store_submit(s, count_work, count_done, &g), -FB_EAGAIN);
    assert_int_equal(g.ran, 0);
    uv_sem_post(&g.open);

    uv_timer_init(&loop, &timer);
    timer.data = &g;
    uv_timer_start(&timer, stop_when_all_done, 2, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(g.ran, STORE_QUEUE_MAX);
    assert_int_equal(g.done, STORE_QUEUE_MAX);
    /* room again once the callbacks ran */
    assert_int_equal(store_submit(s, count_work, NULL, &g), 0);
    store_close(s);
    assert_int_equal(g.ran, STORE_QUEUE_MAX + 1);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    uv_sem_destroy(&g.open);
}

struct drain {
    struct store *s;
    int done;
    int resubmitted;
};

static int drain_work(struct store *s, void *arg)
{
    struct store_op op = ev_op("config_reload", NULL, 0, NULL);

    return store_apply(s, &op, 1);
}

static void drain_done(int status, void *arg)
{
    struct drain *d = arg;

    if (status == 0)
        d->done++;
    /* a callback that records a follow-up write while the store closes */
    if (!d->resubmitted) {
        d->resubmitted = 1;
        if (store_submit(d->s, drain_work, drain_done, d) != 0)
            d->done = -1000;
    }
}

static void close_drains_queue(void **state)
{
    struct fixture *fx = *state;
    struct drain d = {0};
    uv_loop_t loop;
    int i;

    assert_int_equal(uv_loop_init(&loop), 0);
    d.s = open_ok(fx->path, &loop);
    assert_int_equal(store_start(d.s), 0);
    for (i = 0; i < 50; i++)
        assert_int_equal(store_submit(d.s, drain_work, drain_done, &d), 0);
    /* the loop never runs: close runs the jobs and their callbacks here */
    store_close(d.s);
    assert_int_equal(d.done, 51);
    uv_run(&loop, UV_RUN_DEFAULT); /* the async handle's close callback */
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM events"), 51);

    /* never started: close still runs what was queued */
    assert_int_equal(uv_loop_init(&loop), 0);
    d = (struct drain){.resubmitted = 1};
    d.s = open_ok(fx->path, &loop);
    assert_int_equal(store_submit(d.s, drain_work, drain_done, &d), 0);
    store_close(d.s);
    assert_int_equal(d.done, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(sql_int(fx->path, "SELECT count(*) FROM events"), 52);
}

/* ---- durability ------------------------------------------------------------ */

#define CHILD_EVENTS 200

static void child_writes(const char *path, int fd)
{
    struct store *s = NULL;
    char err[256];
    int i, rc = 0;

    if (store_open(path, NULL, &s, err, sizeof(err)) != 0)
        _exit(2);
    for (i = 1; i <= CHILD_EVENTS && !rc; i++) {
        char details[48];
        struct store_op op = ev_op("weights_changed", "shop", 0, NULL);

        snprintf(details, sizeof(details), "{\"seq\":%d}", i);
        op.event.details = details;
        rc = store_apply(s, &op, 1);
        if (!rc && write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
            rc = -1;
    }
    _exit(rc ? 3 : 0); /* no close: the process just ends */
}

static void committed_events_survive_kill9(void **state)
{
    struct fixture *fx = *state;
    struct store_event_filter f = {.limit = STORE_EVENTS_LIMIT_MAX};
    struct store_event *ev = NULL;
    int fds[2], got = 0, v, kill_at, status;
    struct store *s;
    size_t n = 0;
    pid_t pid;
    ssize_t r;

    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    kill_at = 1 + rand() % (CHILD_EVENTS - 2);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_writes(fx->path, fds[1]);
    }
    close(fds[1]);
    while (got < kill_at && (r = read(fds[0], &v, sizeof(v))) == (ssize_t)sizeof(v))
        got = v;
    assert_int_equal(got, kill_at);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* the child may have reported more commits before it died */
    while (read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
        got = v;
    close(fds[0]);

    s = open_ok(fx->path, NULL);
    assert_int_equal(store_events(s, &f, &ev, &n), 0);
    assert_true(n >= (size_t)got);
    for (v = 0; v < got; v++) {
        char want[48];

        snprintf(want, sizeof(want), "{\"seq\":%d}", v + 1);
        assert_string_equal(ev[v].details, want);
    }
    store_events_free(ev, n);
    store_close(s);
    print_message("# killed after %d reported commits, found %zu events\n", got, n);
    /* integrity_check returns the text "ok"; compare as text */
    {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_run_once, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(wal_mode_is_persistent, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(newer_schema_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(not_a_database_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(postgres_not_built, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(file_and_directory_modes, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(batch_of_events_and_docs, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(failing_batch_leaves_nothing, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(bad_input_is_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(event_filters, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(event_limits, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(docs_put_get_list_delete, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(next_id_survives_reopen, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(submit_runs_in_order_on_loop, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(queue_full_is_eagain, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(close_drains_queue, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(committed_events_survive_kill9, tmpdir_setup, tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
