/* test_journal.c: the write journal on real SQLite files: rings (full, drops, order,
 * concurrent producers), the writer, identity, entity, body redaction (checked in the file's
 * bytes), retention by age and size, kill -9 durability, and the impact report and export. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/err-t.h"
#include "firebreak/impact.h"
#include "firebreak/journal.h"
#include "firebreak/spool.h"

#define TMPDIR_PREFIX "fb-journal"
#define TMPDIR_FILE "journal.db"
#include "tmpdir.h"

/* ---- helpers ------------------------------------------------------------------------------ */

struct jopt {
    unsigned nworkers, ring;
    uint32_t body;
    uint64_t retention_ms, max_bytes;
    const char *const *redact;
    size_t nredact;
    bool defer, noload;
    uint64_t backlog;
};

static struct journal *jopen(const char *path, const struct jopt *o)
{
    struct journal_options opt;
    struct journal *j = NULL;
    char err[256] = "";
    int rc;

    journal_options_init(&opt);
    opt.nworkers = o->nworkers ? o->nworkers : 1;
    opt.ring_slots = o->ring ? o->ring : 64;
    opt.body_cap = o->body;
    opt.retention_ms = o->retention_ms;
    opt.max_bytes = o->max_bytes;
    opt.redact = o->redact;
    opt.nredact = o->nredact;
    opt.commit_ms = 10;
    opt.defer_index = o->defer;
    opt.defer_load = o->noload;
    opt.backlog_max = o->backlog;
    rc = journal_open(path, &opt, &j, err, sizeof err);
    if (rc)
        fail_msg("journal_open: %d %s", rc, err);
    return j;
}

struct rec {
    const char *req, *service, *release, *method, *path, *route, *location, *body;
    int status;
    enum journal_ident_kind kind;
    const char *ident;
    int64_t time_ms;
};

static void copy(char *dst, size_t cap, const char *src)
{
    if (src)
        snprintf(dst, cap, "%s", src);
}

/* Fills and commits one record on worker w; false when the ring was full. */
static bool push(struct journal *j, unsigned w, const struct rec *in)
{
    struct journal_record *r = journal_slot(j, w);
    size_t blen;

    if (!r)
        return false;
    r->time_ms = in->time_ms ? in->time_ms : fb_wall_ms();
    r->status = in->status ? in->status : 201;
    r->duration_us = 1500;
    r->upstream_us = 1200;
    copy(r->request_id, sizeof r->request_id, in->req);
    copy(r->service, sizeof r->service, in->service ? in->service : "shop");
    copy(r->release, sizeof r->release, in->release ? in->release : "v1");
    copy(r->method, sizeof r->method, in->method ? in->method : "POST");
    copy(r->path, sizeof r->path, in->path ? in->path : "/api/orders");
    copy(r->route, sizeof r->route, in->route);
    copy(r->location, sizeof r->location, in->location);
    r->ident_kind = in->kind;
    copy(r->ident_src, sizeof r->ident_src, in->ident);
    if (in->body) {
        blen = strlen(in->body);
        if (blen > journal_body_cap(j)) {
            blen = journal_body_cap(j);
            r->body_truncated = true;
        }
        memcpy(r->body, in->body, blen);
        r->body_len = (uint32_t)blen;
    }
    journal_commit(j, w);
    return true;
}

static void wait_written(struct journal *j, uint64_t n)
{
    uint64_t deadline = fb_mono_ns() + 20000000000ull;

    while (journal_written(j) < n && fb_mono_ns() < deadline)
        usleep(2000);
    assert_true(journal_written(j) >= n);
    /* committed: in the spool; loaded: in journal.db, where the checks below read */
    assert_int_equal(journal_sync(j, 20000), 0);
}

/* The journal file, with its index file attached as ix: the index's tables resolve by name. */
static sqlite3 *db_open_ro(const char *path)
{
    char ipath[400], sql[480];
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (journal_index_path(path, ipath, sizeof ipath) == 0 && access(ipath, F_OK) == 0) {
        snprintf(sql, sizeof sql, "ATTACH DATABASE 'file:%s?mode=ro' AS ix", ipath);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    return db;
}

static int64_t q_int(const char *path, const char *sql)
{
    sqlite3 *db = db_open_ro(path);
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* The first column of the first row as text ("(null)" for NULL, "(none)" without a row). */
static void q_text(const char *path, const char *sql, char *out, size_t outlen)
{
    sqlite3 *db = db_open_ro(path);
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) != SQLITE_ROW)
        snprintf(out, outlen, "(none)");
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        snprintf(out, outlen, "(null)");
    else
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    *len = 0;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    fclose(f);
    return buf;
}

/* Does needle occur in the journal's files (db, wal) as raw bytes? */
static bool file_has(const char *path, const char *needle)
{
    static const char *const suffix[] = {"", "-wal", "-journal"};
    char name[400];
    size_t i, len;
    bool hit = false;
    char *buf;

    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffix[i]);
        buf = read_file(name, &len);
        if (buf && memmem(buf, len, needle, strlen(needle)))
            hit = true;
        free(buf);
    }
    return hit;
}

static void b64url(const char *in, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), i, o = 0;
    uint32_t v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (uint32_t)(unsigned char)in[i] << 16 | (uint32_t)(unsigned char)in[i + 1] << 8 |
            (unsigned char)in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        v = (uint32_t)(unsigned char)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        v = (uint32_t)(unsigned char)in[i] << 16 | (uint32_t)(unsigned char)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static void make_jwt(const char *payload, char *out, size_t outlen)
{
    char h[128], p[1024];

    b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", h);
    b64url(payload, p);
    snprintf(out, outlen, "Bearer %s.%s.c2lnbmF0dXJl", h, p);
}

/* ---- rings ---------------------------------------------------------------------------------- */

static void ring_full_drops_and_keeps_order(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.nworkers = 2, .ring = 8});
    struct rec r = {0};
    char req[16], sql[160], got[64];
    int i;

    for (i = 0; i < 8; i++) {
        snprintf(req, sizeof req, "r%d", i);
        r.req = req;
        assert_true(push(j, 0, &r));
    }
    r.req = "overflow";
    assert_false(push(j, 0, &r));
    assert_int_equal(journal_dropped(j), 1);
    journal_commit(j, 0); /* without a slot: publishes nothing */
    r.req = "other-worker";
    assert_true(push(j, 1, &r));
    assert_null(journal_slot(j, 7)); /* no such worker: counted too */
    assert_int_equal(journal_dropped(j), 2);
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 9);
    r.req = "after-drain";
    assert_true(push(j, 0, &r));
    wait_written(j, 10);
    journal_close(j);

    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 10);
    for (i = 0; i < 8; i++) {
        snprintf(sql, sizeof sql, "SELECT request_id FROM writes ORDER BY id LIMIT 1 OFFSET %d",
                 i);
        q_text(fx->path, sql, got, sizeof got);
        snprintf(req, sizeof req, "r%d", i);
        assert_string_equal(got, req);
    }
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id = 'overflow'"),
                     0);
    /* The drops of the run are in the file. */
    assert_int_equal(q_int(fx->path, "SELECT SUM(dropped) FROM runs"), 2);
}

struct producer {
    struct journal *j;
    unsigned worker;
    unsigned n;
    unsigned sent, dropped;
};

static void producer_main(void *arg)
{
    struct producer *p = arg;
    char req[32];
    struct rec r = {.path = "/api/orders/1"};
    unsigned i;

    for (i = 0; i < p->n; i++) {
        snprintf(req, sizeof req, "w%u-%06u", p->worker, i);
        r.req = req;
        if (push(p->j, p->worker, &r)) {
            p->sent++;
        } else {
            p->dropped++;
            usleep(200);
        }
    }
}

static void concurrent_producers_lose_nothing_uncounted(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.nworkers = 2, .ring = 64});
    struct producer p[2] = {{j, 0, 20000, 0, 0}, {j, 1, 20000, 0, 0}};
    uv_thread_t t[2];
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[128];
    unsigned w;
    int last, seq;

    assert_int_equal(journal_start(j), 0);
    for (w = 0; w < 2; w++)
        assert_int_equal(uv_thread_create(&t[w], producer_main, &p[w]), 0);
    for (w = 0; w < 2; w++)
        uv_thread_join(&t[w]);
    assert_int_equal(journal_dropped(j), p[0].dropped + p[1].dropped);
    wait_written(j, p[0].sent + p[1].sent);
    journal_close(j);
    print_message("# sent %u + %u, dropped %u + %u\n", p[0].sent, p[1].sent, p[0].dropped,
                  p[1].dropped);
    assert_true(p[0].sent > 0 && p[1].sent > 0);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), p[0].sent + p[1].sent);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(DISTINCT request_id) FROM writes"),
                     p[0].sent + p[1].sent);
    /* Each worker's records are in the order it sent them. */
    db = db_open_ro(fx->path);
    for (w = 0; w < 2; w++) {
        snprintf(sql, sizeof sql,
                 "SELECT request_id FROM writes WHERE request_id LIKE 'w%u-%%' ORDER BY id", w);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        last = -1;
        while (sqlite3_step(st) == SQLITE_ROW) {
            seq = (int)strtol((const char *)sqlite3_column_text(st, 0) + 3, NULL, 10);
            assert_true(seq > last);
            last = seq;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* ---- the writer ----------------------------------------------------------------------------- */

static void records_land_with_every_field(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){0});
    struct rec r = {.req = "req-1", .service = "shop", .release = "v2", .method = "PUT",
                    .path = "/api/orders/123?expand=1", .status = 204,
                    .kind = JOURNAL_IDENT_VALUE, .ident = "user-7",
                    .location = "/api/orders/123", .time_ms = 1700000000123};
    struct stat st;
    char got[256];

    assert_int_equal(journal_start(j), 0);
    assert_true(push(j, 0, &r));
    wait_written(j, 1);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(journal_index_path(fx->path, got, sizeof got), 0);
    assert_string_equal(strrchr(got, '/'), "/journal-index.db");
    assert_int_equal(stat(got, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    journal_close(j);
    q_text(fx->path, "SELECT request_id || '|' || service || '|' || \"release\" || '|' || method"
                     " || '|' || path || '|' || route || '|' || identity || '|' || entity || '|'"
                     " || location || '|' || status || '|' || duration_us || '|' || upstream_us"
                     " || '|' || time_ms || '|' || COALESCE(body, 'nobody') FROM writes",
           got, sizeof got);
    assert_string_equal(got, "req-1|shop|v2|PUT|/api/orders/123?expand=1|PUT /api/orders/:id|"
                             "user-7|orders/123|/api/orders/123|204|1500|1200|1700000000123|"
                             "nobody");
    /* The summaries count it. */
    assert_int_equal(q_int(fx->path, "SELECT n FROM release_routes WHERE \"release\" = 'v2'"), 1);
    assert_int_equal(q_int(fx->path, "SELECT n FROM release_identities WHERE identity = 'user-7'"),
                     1);
    assert_int_equal(q_int(fx->path, "SELECT n FROM release_entities WHERE entity = 'orders/123'"),
                     1);
}

static void index_of_another_journal_is_rebuilt(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){0});
    char wal[400];

    assert_true(push(j, 0, &(struct rec){.req = "old", .path = "/api/orders/1"}));
    assert_true(push(j, 0, &(struct rec){.req = "old", .path = "/api/orders/2"}));
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT writes FROM release_totals"), 2);
    /* journal.db goes away, journal-index.db stays: a new journal must not trust it. */
    assert_int_equal(unlink(fx->path), 0);
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    unlink(wal);
    j = jopen(fx->path, &(struct jopt){0});
    assert_true(push(j, 0, &(struct rec){.req = "new", .path = "/api/orders/7"}));
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT writes FROM release_totals"), 1);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM release_entities"), 1);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM release_entities WHERE entity ="
                                     " 'orders/7'"),
                     1);
}

static void bad_options_are_refused(void **state)
{
    struct fixture *fx = *state;
    struct journal_options o;
    struct journal *j = NULL;
    char err[256];
    static const char *const empty_key[] = {""};

    journal_options_init(&o);
    o.ring_slots = 100;
    assert_int_equal(journal_open(fx->path, &o, &j, err, sizeof err), -FB_EINVAL);
    assert_non_null(strstr(err, "power of two"));
    journal_options_init(&o);
    o.commit_ms = 200;
    assert_int_equal(journal_open(fx->path, &o, &j, err, sizeof err), -FB_EINVAL);
    assert_non_null(strstr(err, "commit_ms"));
    journal_options_init(&o);
    o.body_cap = JOURNAL_BODY_MAX + 1;
    assert_int_equal(journal_open(fx->path, &o, &j, err, sizeof err), -FB_EINVAL);
    journal_options_init(&o);
    o.redact = empty_key;
    o.nredact = 1;
    assert_int_equal(journal_open(fx->path, &o, &j, err, sizeof err), -FB_EINVAL);
    assert_non_null(strstr(err, "redact"));
    journal_options_init(&o);
    assert_int_equal(journal_open("/nonexistent-dir/x/journal.db", &o, &j, err, sizeof err),
                     -FB_EIO);
    assert_null(j);
}

static void options_from_config(void **state)
{
    static const char yaml[] =
        "journal: { retention: 7d, max_size: 512MiB, ring: 1024 }\n"
        "services:\n"
        "  - name: shop\n"
        "    journal: { body_bytes: 2KiB, redact: [password, SSN] }\n"
        "    releases: [{name: v1, endpoints: [\"127.0.0.1:7001\"]}]\n"
        "  - name: api\n"
        "    match: { path_prefix: /api/ }\n"
        "    journal: { body_bytes: 512, redact: [ssn, pin] }\n"
        "    releases: [{name: v1, endpoints: [\"127.0.0.1:7002\"]}]\n";
    struct journal_options o;
    struct config *cfg = NULL;
    struct config_error cerr;
    const char *keys[JOURNAL_REDACT_MAX];

    assert_int_equal(config_parse("t.yaml", yaml, strlen(yaml), &cfg, &cerr), 0);
    assert_int_equal(journal_options_from_config(cfg, 3, &o, keys, JOURNAL_REDACT_MAX), 0);
    assert_int_equal(o.nworkers, 3);
    assert_int_equal(o.ring_slots, 1024);
    assert_int_equal(o.retention_ms, 7ull * 86400000);
    assert_int_equal(o.max_bytes, 512ull << 20);
    assert_int_equal(o.body_cap, 2048);
    assert_int_equal(o.nredact, 3); /* password, SSN, pin: ssn is SSN without case */
    assert_string_equal(o.redact[2], "pin");
    assert_int_equal(journal_options_from_config(cfg, 3, &o, keys, 2), -FB_ETOOBIG);
    config_free(cfg);
}

/* ---- identity, entity, redaction ------------------------------------------------------------ */

static void identity_from_jwt_sub(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16});
    struct journal_stats s;
    char tok[5][1200], got[64];
    struct rec r = {.kind = JOURNAL_IDENT_JWT_SUB};

    make_jwt("{\"sub\":\"user-42\",\"name\":\"Ann\",\"iat\":1516239022}", tok[0], sizeof tok[0]);
    make_jwt("{\"sub\":1234}", tok[1], sizeof tok[1]);
    make_jwt("{\"name\":\"no sub\"}", tok[2], sizeof tok[2]);
    snprintf(tok[3], sizeof tok[3], "Bearer not-a-jwt");
    make_jwt("{\"sub\":\"ab\"}", tok[4], sizeof tok[4]);
    r.req = "string";
    r.ident = tok[0];
    assert_true(push(j, 0, &r));
    r.req = "integer";
    r.ident = tok[1];
    assert_true(push(j, 0, &r));
    r.req = "nosub";
    r.ident = tok[2];
    assert_true(push(j, 0, &r));
    r.req = "garbage";
    r.ident = tok[3];
    assert_true(push(j, 0, &r));
    r.req = "bare";
    r.ident = tok[4] + 7; /* without "Bearer " */
    assert_true(push(j, 0, &r));
    r.req = "absent";
    r.ident = "";
    assert_true(push(j, 0, &r));
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 6);
    journal_stats(j, &s);
    assert_int_equal(s.ident_errors, 2); /* nosub and garbage; an absent token is no error */
    journal_close(j);
    q_text(fx->path, "SELECT identity FROM writes WHERE request_id = 'string'", got, sizeof got);
    assert_string_equal(got, "user-42");
    q_text(fx->path, "SELECT identity FROM writes WHERE request_id = 'integer'", got, sizeof got);
    assert_string_equal(got, "1234");
    q_text(fx->path, "SELECT identity FROM writes WHERE request_id = 'bare'", got, sizeof got);
    assert_string_equal(got, "ab");
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE identity IS NULL"), 3);
}

static void entity_rule(void **state)
{
    static const struct {
        const char *path, *location, *entity;
    } cases[] = {
        {"/api/orders/123", NULL, "orders/123"},
        {"/api/users/7/orders/123?expand=items", NULL, "users/7/orders/123"},
        {"/api/orders", "/api/orders/456", "orders/456"},
        {"/api/orders", "https://shop.example/api/orders/789", "orders/789"},
        {"/api/orders/123/items", "/api/orders/123/items/9", "orders/123"},
        {"/api/carts/5f2b1c3e-8d4a-4b6e-9c1f-2a3b4c5d6e7f/checkout", NULL,
         "carts/5f2b1c3e-8d4a-4b6e-9c1f-2a3b4c5d6e7f"},
        {"/123", NULL, "123"},
        {"/a/1/2", NULL, "a/1/2"},
        {"http://shop.example/api/orders/77", NULL, "orders/77"},
        {"/api/login", NULL, NULL},
        {"/api/login", "/home", NULL},
    };
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16});
    struct rec r = {0};
    char req[16], sql[128], got[128];
    size_t i, n = sizeof cases / sizeof cases[0];

    for (i = 0; i < n; i++) {
        snprintf(req, sizeof req, "e%zu", i);
        r.req = req;
        r.path = cases[i].path;
        r.location = cases[i].location;
        assert_true(push(j, 0, &r));
    }
    journal_close(j); /* never started: close drains */
    for (i = 0; i < n; i++) {
        snprintf(sql, sizeof sql, "SELECT entity FROM writes WHERE request_id = 'e%zu'", i);
        q_text(fx->path, sql, got, sizeof got);
        if (strcmp(got, cases[i].entity ? cases[i].entity : "(null)"))
            fail_msg("path %s location %s: entity %s, expected %s", cases[i].path,
                     cases[i].location ? cases[i].location : "-", got,
                     cases[i].entity ? cases[i].entity : "(null)");
    }
}

static void redacted_values_never_reach_the_file(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .body = 4096});
    struct journal_stats s;
    struct rec r = {0};
    char got[512];

    r.req = "nested";
    r.body = "{\"user\":{\"name\":\"alice\",\"profile\":{\"password\":\"hunter2-ZQX\","
             "\"lang\":\"en\"}},\"items\":[{\"sku\":\"A1\",\"Card_Number\":\"4111111111111111\"}],"
             "\"auth\":{\"Access_Token\":{\"value\":\"tok-PLM\"}}}";
    assert_true(push(j, 0, &r));
    r.req = "form";
    r.body = "user=bob&password=swordfish-KJH";
    assert_true(push(j, 0, &r));
    r.req = "truncated";
    r.body = "{\"note\":\"long enough to be cut\",\"secret\":\"cut-SECRET-VAL\"";
    assert_true(push(j, 0, &r));
    r.req = "plain";
    r.body = "hello, just text";
    assert_true(push(j, 0, &r));
    r.req = "clean-json";
    r.body = "{\"qty\": 3, \"sku\": \"B2\"}";
    assert_true(push(j, 0, &r));
    r.req = "escaped-key";
    r.body = "{\"pass\\u0077ord\":\"esc-SECRET-ZZ\"}";
    assert_true(push(j, 0, &r));
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 6);
    journal_stats(j, &s);
    assert_int_equal(s.bodies_redacted, 4);
    journal_close(j);

    assert_false(file_has(fx->path, "hunter2-ZQX"));
    assert_false(file_has(fx->path, "4111111111111111"));
    assert_false(file_has(fx->path, "tok-PLM"));
    assert_false(file_has(fx->path, "swordfish-KJH"));
    assert_false(file_has(fx->path, "cut-SECRET-VAL"));
    assert_false(file_has(fx->path, "esc-SECRET-ZZ"));
    assert_true(file_has(fx->path, "alice")); /* the rest of the body is kept */
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'nested'", got, sizeof got);
    assert_non_null(strstr(got, "\"password\":\"[redacted]\""));
    assert_non_null(strstr(got, "\"Card_Number\":\"[redacted]\""));
    assert_non_null(strstr(got, "\"Access_Token\":\"[redacted]\""));
    assert_non_null(strstr(got, "\"lang\":\"en\""));
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'form'", got, sizeof got);
    assert_string_equal(got, "[redacted: not JSON]");
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'plain'", got, sizeof got);
    assert_string_equal(got, "hello, just text");
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'clean-json'", got, sizeof got);
    assert_string_equal(got, "{\"qty\": 3, \"sku\": \"B2\"}");
}

static void configured_redact_keys_and_body_cap(void **state)
{
    static const char *const keys[] = {"SSN"};
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .body = 16, .redact = keys,
                                                       .nredact = 1});
    struct rec r = {.req = "a", .body = "{\"ssn\":\"123-45-6789\"}"};
    char got[128];

    assert_true(push(j, 0, &r)); /* 21 bytes cut to 16: not JSON any more, and holds "ssn" */
    r.req = "b";
    r.body = "{\"password\":\"x\"}"; /* 16 bytes: JSON; password is not a configured key */
    assert_true(push(j, 0, &r));
    journal_close(j);
    assert_false(file_has(fx->path, "123-45"));
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'a'", got, sizeof got);
    assert_string_equal(got, "[redacted: not JSON]");
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'b'", got, sizeof got);
    assert_string_equal(got, "{\"password\":\"x\"}");
}

static void empty_redact_list_keeps_bodies(void **state)
{
    static const char *const none[] = {NULL};
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .body = 64, .redact = none,
                                                       .nredact = 0});
    char got[128];

    assert_true(push(j, 0, &(struct rec){.req = "a", .body = "{\"password\":\"kept\"}"}));
    journal_close(j);
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'a'", got, sizeof got);
    assert_string_equal(got, "{\"password\":\"kept\"}");
}

static void redact_keys_replaced_at_run_time(void **state)
{
    static const char *const keys[] = {"SSN"};
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .body = 128});
    char got[128];

    assert_int_equal(journal_start(j), 0);
    assert_true(push(j, 0, &(struct rec){.req = "before", .body = "{\"ssn\":\"111-22\"}"}));
    wait_written(j, 1);
    assert_int_equal(journal_set_redact(j, keys, 1), 0);
    assert_true(push(j, 0, &(struct rec){.req = "after", .body = "{\"ssn\":\"333-44\","
                                                                 "\"password\":\"pw\"}"}));
    wait_written(j, 2);
    assert_int_equal(journal_set_redact(j, (const char *const[]){""}, 1), -FB_EINVAL);
    journal_close(j);
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'before'", got, sizeof got);
    assert_string_equal(got, "{\"ssn\":\"111-22\"}"); /* not a default key */
    q_text(fx->path, "SELECT body FROM writes WHERE request_id = 'after'", got, sizeof got);
    assert_string_equal(got, "{\"ssn\":\"[redacted]\",\"password\":\"pw\"}");
    assert_false(file_has(fx->path, "333-44"));
}

/* ---- retention ------------------------------------------------------------------------------ */

static void wait_trimmed(struct journal *j, uint64_t n)
{
    uint64_t deadline = fb_mono_ns() + 20000000000ull;
    struct journal_stats s;

    do {
        journal_stats(j, &s);
        if (s.trimmed >= n)
            return;
        usleep(5000);
    } while (fb_mono_ns() < deadline);
    fail_msg("trimmed %llu, expected %llu", (unsigned long long)s.trimmed,
             (unsigned long long)n);
}

static void retention_by_age_keeps_summaries_exact(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .retention_ms = 3600000});
    int64_t now = fb_wall_ms(), old = now - 2 * 3600000;
    struct rec r = {.kind = JOURNAL_IDENT_VALUE, .path = "/api/orders/1"};

    r.time_ms = old, r.ident = "a", r.req = "old1";
    assert_true(push(j, 0, &r));
    r.ident = "a", r.req = "old2", r.path = "/api/orders/2";
    assert_true(push(j, 0, &r));
    r.ident = "b", r.req = "old3";
    assert_true(push(j, 0, &r));
    r.time_ms = now, r.ident = "b", r.req = "new1";
    assert_true(push(j, 0, &r));
    r.ident = "c", r.req = "new2", r.path = "/api/orders/3";
    assert_true(push(j, 0, &r));
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 5);
    wait_trimmed(j, 3);
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 2);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id LIKE 'old%'"),
                     0);
    assert_int_equal(q_int(fx->path, "SELECT SUM(n) FROM release_routes"), 2);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM release_identities"), 2);
    assert_int_equal(q_int(fx->path, "SELECT n FROM release_identities WHERE identity = 'b'"), 1);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM release_identities WHERE identity ="
                                     " 'a'"),
                     0);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM release_entities"), 2);
    /* The totals the whole-release report reads agree. */
    assert_int_equal(q_int(fx->path, "SELECT writes FROM release_totals"), 2);
    assert_int_equal(q_int(fx->path, "SELECT identified FROM release_totals"), 2);
    assert_int_equal(q_int(fx->path, "SELECT identities FROM release_totals"), 2);
    assert_int_equal(q_int(fx->path, "SELECT with_entity FROM release_totals"), 2);
    assert_int_equal(q_int(fx->path, "SELECT entities FROM release_totals"), 2);
}

/* Bytes in used pages of the journal and its index file. */
static int64_t used_bytes(const char *path)
{
    return (q_int(path, "PRAGMA main.page_count") - q_int(path, "PRAGMA main.freelist_count")) *
               q_int(path, "PRAGMA main.page_size") +
           (q_int(path, "PRAGMA ix.page_count") - q_int(path, "PRAGMA ix.freelist_count")) *
               q_int(path, "PRAGMA ix.page_size");
}

static void retention_by_size_trims_oldest_first(void **state)
{
    struct fixture *fx = *state;
    uint64_t cap = 1u << 20;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 4096, .body = 2048,
                                                       .max_bytes = cap});
    char body[1600], req[16];
    struct rec r = {.body = body, .path = "/api/orders/9"};
    uint64_t deadline;
    int i;

    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    for (i = 0; i < 3000; i++) {
        snprintf(req, sizeof req, "s%04d", i);
        r.req = req;
        assert_true(push(j, 0, &r));
    }
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 3000);
    wait_trimmed(j, 1);
    deadline = fb_mono_ns() + 20000000000ull;
    while (used_bytes(fx->path) > (int64_t)cap && fb_mono_ns() < deadline)
        usleep(20000);
    journal_close(j);
    print_message("# used %lld bytes, %lld records kept\n", (long long)used_bytes(fx->path),
                  (long long)q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_true(used_bytes(fx->path) <= (int64_t)cap);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id = 's2999'"), 1);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id = 's0000'"), 0);
    assert_true(q_int(fx->path, "SELECT COUNT(*) FROM writes") > 100);
    assert_int_equal(q_int(fx->path, "SELECT SUM(n) FROM release_routes"),
                     q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT writes FROM release_totals"),
                     q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT entities FROM release_totals"),
                     q_int(fx->path, "SELECT COUNT(DISTINCT entity) FROM writes"));
}

/* ---- durability ----------------------------------------------------------------------------- */

/* Segment files left in the spool of the journal at path. */
static int spool_files(const char *path)
{
    char dir[400];
    struct dirent *e;
    DIR *d;
    int n = 0;

    assert_int_equal(journal_spool_path(path, dir, sizeof dir), 0);
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".spool") != NULL;
    closedir(d);
    return n;
}

/* The child: writes records as fast as its ring takes them and reports, over fd, how many
 * were committed (journal_written) every few milliseconds, until killed. */
static void child_writes(const char *path, int fd)
{
    struct journal_options o;
    struct journal *j = NULL;
    char req[32], err[128];
    struct rec r = {.path = "/api/orders/5"};
    uint64_t seq = 0, reported = 0, w;

    journal_options_init(&o);
    o.commit_ms = 50;
    if (journal_open(path, &o, &j, err, sizeof err) || journal_start(j))
        _exit(3);
    for (;;) {
        snprintf(req, sizeof req, "k%llu", (unsigned long long)seq);
        r.req = req;
        if (push(j, 0, &r))
            seq++;
        else
            usleep(500);
        w = journal_written(j);
        if (w != reported) {
            reported = w;
            if (write(fd, &w, sizeof w) != sizeof w)
                _exit(4);
        }
        if (seq % 64 == 0)
            usleep(100);
    }
}

static void kill9_keeps_every_committed_record(void **state)
{
    struct fixture *fx = *state;
    uint64_t committed = 0, v;
    struct journal *j;
    int fds[2], status;
    pid_t pid;
    char ok[32];

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_writes(fx->path, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    while (committed < 3000 && read(fds[0], &v, sizeof v) == sizeof v)
        committed = v;
    kill(pid, SIGKILL);
    while (read(fds[0], &v, sizeof v) == sizeof v) /* reports sent before the kill */
        committed = v;
    close(fds[0]);
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    q_text(fx->path, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    /* The journal opens again, loads what the killed run committed to its spool, goes on,
     * and indexes what that run left behind. */
    j = jopen(fx->path, &(struct jopt){0});
    assert_true(push(j, 0, &(struct rec){.req = "after-restart"}));
    journal_close(j);
    print_message("# committed %llu before the kill, %lld in the file after the restart\n",
                  (unsigned long long)committed,
                  (long long)q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_true(q_int(fx->path, "SELECT COUNT(*) FROM writes") >= (int64_t)committed + 1);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(DISTINCT request_id) FROM writes"),
                     q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id ="
                                     " 'after-restart'"),
                     1);
    assert_int_equal(spool_files(fx->path), 0);
    assert_int_equal(q_int(fx->path, "SELECT SUM(n) FROM release_routes"),
                     q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT writes FROM release_totals"),
                     q_int(fx->path, "SELECT COUNT(*) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes_by_entity"),
                     q_int(fx->path, "SELECT COUNT(entity) FROM writes"));
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM runs"), 2);
}

/* ---- impact --------------------------------------------------------------------------------- */

/* v1 (stable) and v2 (canary): v2 gets users u0..u4 writing orders 100..109 at t0 + i s. */
static int64_t seed_two_releases(const char *path)
{
    struct journal *j = jopen(path, &(struct jopt){.ring = 256});
    int64_t t0 = 1700000000000;
    char req[16], ident[16], p[64];
    struct rec r = {.kind = JOURNAL_IDENT_VALUE, .req = req, .ident = ident, .path = p};
    int i;

    for (i = 0; i < 20; i++) {
        snprintf(req, sizeof req, "v2-%d", i);
        snprintf(ident, sizeof ident, "u%d", i % 5);
        snprintf(p, sizeof p, "/api/orders/%d", 100 + i % 10);
        r.release = "v2";
        r.time_ms = t0 + i * 1000;
        r.status = i % 4 == 0 ? 500 : 201;
        assert_true(push(j, 0, &r));
    }
    for (i = 0; i < 30; i++) {
        snprintf(req, sizeof req, "v1-%d", i);
        snprintf(ident, sizeof ident, "s%d", i % 7);
        snprintf(p, sizeof p, "/api/orders/%d", 500 + i);
        r.release = "v1";
        r.time_ms = t0 + i * 1000;
        r.status = 201;
        assert_true(push(j, 0, &r));
    }
    r.release = "v2", r.ident = "", r.kind = JOURNAL_IDENT_NONE, r.path = "/api/login";
    r.req = "anon", r.time_ms = t0 + 19500, r.status = 200;
    assert_true(push(j, 0, &r));
    journal_close(j);
    return t0;
}

static struct impact *im_open(const char *path, struct journal *live)
{
    struct impact *im = NULL;
    char err[256];

    if (impact_open(path, live, &im, err, sizeof err))
        fail_msg("impact_open: %s", err);
    return im;
}

static void impact_lists_exactly_the_release(void **state)
{
    struct fixture *fx = *state;
    int64_t t0 = seed_two_releases(fx->path);
    struct impact_filter f = {.service = "shop", .release = "v2"};
    struct impact_report r, w;
    struct impact *im = im_open(fx->path, NULL);
    char err[128];
    size_t i;
    json_t *js;

    assert_int_equal(impact_query(im, &f, &r, err, sizeof err), 0);
    assert_true(r.summary);
    assert_int_equal(r.writes, 21);
    assert_int_equal(r.first_ms, t0);
    assert_int_equal(r.last_ms, t0 + 19500);
    assert_int_equal(r.identities, 5);
    assert_int_equal(r.nidentity_list, 5);
    for (i = 0; i < 5; i++) {
        char want[8];

        snprintf(want, sizeof want, "u%zu", i);
        assert_string_equal(r.identity_list[i].name, want);
        assert_int_equal(r.identity_list[i].writes, 4);
    }
    assert_int_equal(r.anonymous, 1);
    assert_int_equal(r.entities, 10);
    assert_string_equal(r.entity_list[0].name, "orders/100");
    assert_int_equal(r.without_entity, 1);
    assert_int_equal(r.nroutes, 3);
    assert_string_equal(r.routes[0].route, "POST /api/orders/:id");
    assert_int_equal(r.routes[0].status, 201);
    assert_int_equal(r.routes[0].writes, 15);
    assert_int_equal(r.routes[1].status, 500);
    assert_int_equal(r.routes[1].writes, 5);
    assert_int_equal(r.dropped, 0);
    js = impact_report_json(&r, &f);
    assert_int_equal(json_integer_value(json_object_get(js, "identities")), 5);
    assert_int_equal(json_integer_value(json_object_get(js, "writes")), 21);
    assert_true(json_is_true(json_object_get(js, "complete")));
    assert_string_equal(json_string_value(json_object_get(js, "source")), "summary");
    json_decref(js);

    /* A window covering it all reads the records and agrees with the summaries. */
    f.since_ms = t0 + 1;
    f.until_ms = t0 + 100000;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), 0);
    assert_false(w.summary);
    assert_int_equal(w.writes, 20);
    assert_int_equal(w.identities, 5);
    assert_int_equal(w.identity_list[0].writes, 3); /* u0's write at t0 is outside */
    assert_int_equal(w.entities, 10);
    assert_int_equal(w.nroutes, 3);
    assert_string_equal(w.routes[0].route, "POST /api/orders/:id");
    assert_int_equal(w.routes[0].status, 201);
    assert_int_equal(w.routes[0].writes, 15);
    assert_int_equal(w.routes[1].status, 500);
    assert_int_equal(w.routes[1].writes, 4);
    assert_string_equal(w.routes[2].route, "POST /api/login");
    assert_int_equal(w.anonymous, 1);
    assert_int_equal(w.without_entity, 1);
    impact_report_release(&w);
    /* A window of five seconds: t0+5s .. t0+10s holds writes 5..9 by u0..u4. */
    f.since_ms = t0 + 5000;
    f.until_ms = t0 + 10000;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), 0);
    assert_int_equal(w.writes, 5);
    assert_int_equal(w.identities, 5);
    assert_int_equal(w.entities, 5);
    assert_int_equal(w.first_ms, t0 + 5000);
    assert_int_equal(w.last_ms, t0 + 9000);
    impact_report_release(&w);
    /* Bounded lists. */
    f.since_ms = f.until_ms = 0;
    f.list_max = 2;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), 0);
    assert_int_equal(w.nidentity_list, 2);
    assert_int_equal(w.identities, 5);
    impact_report_release(&w);
    /* Refusals. */
    f.release = NULL;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), -FB_EINVAL);
    assert_non_null(strstr(err, "release"));
    f.release = "v2";
    f.since_ms = 10, f.until_ms = 5;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), -FB_EINVAL);
    f.release = "nope";
    f.since_ms = f.until_ms = 0;
    assert_int_equal(impact_query(im, &f, &w, err, sizeof err), 0);
    assert_int_equal(w.writes, 0);
    assert_int_equal(w.identities, 0);
    impact_report_release(&w);
    impact_report_release(&r);
    impact_close(im);
    assert_int_equal(impact_open("/nonexistent/journal.db", NULL, &im, err, sizeof err),
                     -FB_ENOENT);
}

/* Pushes one v2 write by ident to /api/orders/order at t. */
static void push_v2(struct journal *j, const char *ident, int order, int64_t t)
{
    char p[64];
    struct rec r = {.kind = JOURNAL_IDENT_VALUE, .ident = ident, .path = p, .release = "v2",
                    .time_ms = t};

    snprintf(p, sizeof p, "/api/orders/%d", order);
    assert_true(push(j, 0, &r));
}

static void expect_report(struct impact *im, bool summary, uint64_t writes, uint64_t idents,
                          uint64_t ents, const char *first_ident, uint64_t first_writes)
{
    struct impact_filter f = {.service = "shop", .release = "v2"};
    struct impact_report r;
    char err[128];

    assert_int_equal(impact_query(im, &f, &r, err, sizeof err), 0);
    assert_int_equal(r.summary, summary);
    assert_int_equal(r.writes, writes);
    assert_int_equal(r.identities, idents);
    assert_int_equal(r.nidentity_list, idents);
    assert_int_equal(r.entities, ents);
    assert_string_equal(r.identity_list[0].name, first_ident);
    assert_int_equal(r.identity_list[0].writes, first_writes);
    assert_int_equal(r.nroutes, 1);
    assert_int_equal(r.routes[0].writes, writes);
    impact_report_release(&r);
}

static void impact_merges_records_not_yet_indexed(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 64});
    struct impact_filter f = {.service = "shop", .release = "v2", .identity = "b"};
    int64_t t0 = 1700000000000;
    struct fb_buf out;
    struct impact *im;
    uint64_t rows;
    bool cut;

    push_v2(j, "b", 1, t0);
    push_v2(j, "c", 2, t0 + 1);
    push_v2(j, "c", 3, t0 + 2);
    journal_close(j); /* indexes on close */
    assert_int_equal(q_int(fx->path, "SELECT value FROM meta WHERE key = 'indexed_id'"), 3);
    j = jopen(fx->path, &(struct jopt){.ring = 64, .defer = true});
    push_v2(j, "a", 2, t0 + 3); /* a new identity, a known entity */
    push_v2(j, "b", 4, t0 + 4); /* a known identity, a new entity */
    push_v2(j, "d", 5, t0 + 5);
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT value FROM meta WHERE key = 'indexed_id'"), 3);

    im = im_open(fx->path, NULL);
    expect_report(im, true, 6, 4, 5, "a", 1);
    /* Export by identity finds b's indexed write and the one after the watermark. */
    fb_buf_init(&out, 1 << 20);
    assert_int_equal(impact_export_buf(im, &f, IMPACT_CSV, 0, &out, &rows, &cut), 0);
    assert_int_equal(rows, 2);
    assert_non_null(strstr(out.data, "/api/orders/1,"));
    assert_non_null(strstr(out.data, "/api/orders/4,"));
    fb_buf_release(&out);
    impact_close(im);

    /* Once indexed, the same report from the summaries alone. */
    j = jopen(fx->path, &(struct jopt){.ring = 64});
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT value FROM meta WHERE key = 'indexed_id'"), 6);
    im = im_open(fx->path, NULL);
    expect_report(im, true, 6, 4, 5, "a", 1);
    impact_close(im);
}

static void impact_reports_drops(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 2});
    struct impact_filter f = {.service = "shop", .release = "v1"};
    struct impact_report r;
    struct impact *im;
    char err[128];
    json_t *js;

    assert_true(push(j, 0, &(struct rec){.req = "a"}));
    assert_true(push(j, 0, &(struct rec){.req = "b"}));
    assert_false(push(j, 0, &(struct rec){.req = "c"}));
    assert_int_equal(journal_start(j), 0);
    wait_written(j, 2);
    im = im_open(fx->path, j);
    assert_int_equal(impact_query(im, &f, &r, err, sizeof err), 0);
    assert_int_equal(r.writes, 2);
    assert_int_equal(r.dropped, 1);
    js = impact_report_json(&r, &f);
    assert_true(json_is_false(json_object_get(js, "complete")));
    json_decref(js);
    impact_report_release(&r);
    impact_close(im);
    journal_close(j);
    /* After a restart the earlier run's drops are still reported. */
    j = jopen(fx->path, &(struct jopt){0});
    assert_int_equal(journal_start(j), 0);
    im = im_open(fx->path, j);
    assert_int_equal(impact_query(im, &f, &r, err, sizeof err), 0);
    assert_int_equal(r.dropped, 1);
    impact_report_release(&r);
    impact_close(im);
    journal_close(j);
}

static void export_csv_and_jsonl(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 16, .body = 256});
    struct impact_filter f = {.service = "shop", .release = "v1"};
    struct fb_buf out;
    struct impact *im;
    uint64_t rows;
    bool cut;
    char *line, *save = NULL;
    json_t *o;
    int n = 0;

    assert_true(push(j, 0, &(struct rec){.req = "q1", .path = "/api/orders/1?a=\"x\",y",
                                         .kind = JOURNAL_IDENT_VALUE, .ident = "ann",
                                         .body = "{\"a\":1}", .time_ms = 1000}));
    assert_true(push(j, 0, &(struct rec){.req = "q2", .path = "/api/orders/2",
                                         .kind = JOURNAL_IDENT_VALUE, .ident = "bob",
                                         .time_ms = 2000}));
    assert_true(push(j, 0, &(struct rec){.req = "q3", .release = "v2", .time_ms = 1500}));
    journal_close(j);
    im = im_open(fx->path, NULL);

    fb_buf_init(&out, 1 << 20);
    assert_int_equal(impact_export_buf(im, &f, IMPACT_CSV, 0, &out, &rows, &cut), 0);
    assert_int_equal(rows, 2);
    assert_false(cut);
    assert_non_null(strstr(out.data, "id,time,request_id,service,release,method,path,route,"
                                     "identity,entity,location,status,duration_us,upstream_us,"
                                     "body\r\n"));
    assert_non_null(strstr(out.data, ",\"/api/orders/1?a=\"\"x\"\",y\","));
    assert_non_null(strstr(out.data, "\"{\"\"a\"\":1}\"\r\n"));
    assert_null(strstr(out.data, "q3"));

    fb_buf_reset(&out);
    f.release = NULL;
    assert_int_equal(impact_export_buf(im, &f, IMPACT_JSONL, 0, &out, &rows, &cut), 0);
    assert_int_equal(rows, 3);
    for (line = strtok_r(out.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        o = json_loads(line, 0, NULL);
        assert_non_null(o);
        n++;
        if (n == 2) /* oldest first: q1 (1000), q3 (1500), q2 (2000) */
            assert_string_equal(json_string_value(json_object_get(o, "request_id")), "q3");
        json_decref(o);
    }
    assert_int_equal(n, 3);

    fb_buf_reset(&out);
    f.identity = "bob";
    assert_int_equal(impact_export_buf(im, &f, IMPACT_JSONL, 0, &out, &rows, &cut), 0);
    assert_int_equal(rows, 1);
    assert_non_null(strstr(out.data, "\"request_id\":\"q2\""));

    f.identity = NULL;
    fb_buf_reset(&out);
    assert_int_equal(impact_export_buf(im, &f, IMPACT_JSONL, 1, &out, &rows, &cut), 0);
    assert_int_equal(rows, 1);
    assert_true(cut);
    fb_buf_release(&out);
    fb_buf_init(&out, 200); /* room for the CSV header and not one record */
    assert_int_equal(impact_export_buf(im, &f, IMPACT_CSV, 0, &out, &rows, &cut), 0);
    assert_true(cut);
    assert_int_equal(rows, 0);
    fb_buf_release(&out);
    impact_close(im);
}

/* ---- the spool ------------------------------------------------------------------------------ */

static struct spool_row sample_row(int64_t id, const char *req)
{
    struct spool_row row = {.id = id, .time_ms = 1700000000000 + id, .duration_us = 1200,
                            .upstream_us = 900, .status = 201, .has_body = true,
                            .body = "{\"qty\":2}", .body_len = 9};
    const char *text[SPOOL_FIELDS] = {req, "shop", "v2", "POST", "/api/orders/7",
                                      "POST /api/orders/:id", "u-1", "orders/7", ""};
    int f;

    for (f = 0; f < SPOOL_FIELDS; f++) {
        row.text[f].p = text[f];
        row.text[f].n = (uint32_t)strlen(text[f]);
    }
    return row;
}

static void spool_frames_round_trip_and_refuse_damage(void **state)
{
    struct spool_row in = sample_row(42, "req-42"), out, bad;
    struct fb_buf b;
    char big[JOURNAL_PATH_MAX + 1];
    size_t used, i, len;
    int f;

    (void)state;
    /* CRC-32C's check value, and the same in pieces */
    assert_int_equal(spool_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(spool_crc32c(spool_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(spool_crc32c(0, "0123456789abcdefghijklmnopqrstuvwxyz", 36),
                     spool_crc32c(spool_crc32c(0, "0123456789abcdefghijk", 21),
                                  "lmnopqrstuvwxyz", 15));
    fb_buf_init(&b, 1 << 20);
    assert_int_equal(spool_encode(&b, &in), 0);
    len = b.len;
    assert_int_equal(spool_decode(b.data, b.len, &out, &used), 0);
    assert_int_equal(used, len);
    assert_int_equal(out.id, 42);
    assert_int_equal(out.time_ms, in.time_ms);
    assert_int_equal(out.status, 201);
    assert_int_equal(out.duration_us, 1200);
    assert_int_equal(out.upstream_us, 900);
    for (f = 0; f < SPOOL_FIELDS; f++) {
        assert_int_equal(out.text[f].n, in.text[f].n);
        assert_memory_equal(out.text[f].p, in.text[f].p, in.text[f].n);
    }
    assert_true(out.has_body);
    assert_int_equal(out.body_len, 9);
    assert_memory_equal(out.body, "{\"qty\":2}", 9);
    /* Every cut of the frame is incomplete, never a record. */
    for (i = 0; i < len; i++)
        assert_int_equal(spool_decode(b.data, i, &out, &used), -FB_EAGAIN);
    /* Any one byte changed: not a frame (or an incomplete one, for a longer length). */
    for (i = 0; i < len; i++) {
        b.data[i] ^= 0x20;
        assert_int_not_equal(spool_decode(b.data, len, &out, &used), 0);
        b.data[i] ^= 0x20;
    }
    /* Columns over their limits are refused and leave the buffer as it was. */
    memset(big, 'a', sizeof big);
    bad = in;
    bad.text[SPOOL_PATH].p = big;
    bad.text[SPOOL_PATH].n = sizeof big;
    assert_int_equal(spool_encode(&b, &bad), -FB_EINVAL);
    bad = in;
    bad.text[SPOOL_SERVICE].n = 0;
    assert_int_equal(spool_encode(&b, &bad), -FB_EINVAL);
    bad = in;
    bad.body_len = SPOOL_BODY_MAX + 1;
    assert_int_equal(spool_encode(&b, &bad), -FB_EINVAL);
    assert_int_equal(b.len, len);
    fb_buf_release(&b);
}

/* Writes a segment for first holding rows first.. (n of them), then extra raw bytes. */
static void segment_put(const char *dir, int64_t first, int n, const void *extra, size_t nextra)
{
    struct spool_row row;
    struct fb_buf b;
    char req[32];
    int fd, i;

    fb_buf_init(&b, 1 << 20);
    for (i = 0; i < n; i++) {
        snprintf(req, sizeof req, "left-%lld", (long long)(first + i));
        row = sample_row(first + i, req);
        assert_int_equal(spool_encode(&b, &row), 0);
    }
    if (nextra)
        assert_int_equal(fb_buf_append(&b, extra, nextra), 0);
    assert_int_equal(spool_segment_create(dir, first, &fd), 0);
    assert_int_equal(spool_write_all(fd, b.data, b.len), 0);
    close(fd);
    fb_buf_release(&b);
}

static void spool_left_by_a_crash_is_loaded_once(void **state)
{
    struct fixture *fx = *state;
    struct spool_row row = sample_row(9, "torn");
    struct fb_buf frame;
    struct journal *j;
    char dir[400], path[480];
    int fd;

    assert_int_equal(journal_spool_path(fx->path, dir, sizeof dir), 0);
    assert_int_equal(spool_dir_make(dir), 0);
    /* One run's segment with a damaged third record; the next run's, cut short by a kill. */
    segment_put(dir, 1, 3, NULL, 0);
    assert_int_equal(spool_segment_path(dir, 1, path, sizeof path), 0);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(lseek(fd, -3, SEEK_END) > 0, 1);
    assert_int_equal(write(fd, "XYZ", 3), 3);
    close(fd);
    fb_buf_init(&frame, 1 << 20);
    assert_int_equal(spool_encode(&frame, &row), 0);
    segment_put(dir, 5, 2, frame.data, frame.len / 2);
    /* and one more run killed right after it created its segment, before any record */
    segment_put(dir, 7, 0, frame.data, frame.len / 2);
    assert_int_equal(spool_segment_path(dir, 8, path, sizeof path), 0);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    fb_buf_release(&frame);

    j = jopen(fx->path, &(struct jopt){0});
    assert_true(push(j, 0, &(struct rec){.req = "new-run"}));
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 5);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes WHERE request_id IN"
                                     " ('left-1', 'left-2', 'left-5', 'left-6')"),
                     4);
    /* The new run's ids follow every id and every segment name the spool used. */
    assert_int_equal(q_int(fx->path, "SELECT id FROM writes WHERE request_id = 'new-run'"), 9);
    assert_int_equal(spool_files(fx->path), 0);
    /* Opening again loads nothing twice. */
    j = jopen(fx->path, &(struct jopt){0});
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 5);
}

static void reports_load_what_the_spool_holds(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.noload = true});
    struct impact_filter f = {.service = "shop", .release = "v1"};
    uint64_t deadline = fb_mono_ns() + 20000000000ull;
    struct impact_report r;
    struct impact *im;
    char req[16], err[128];
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(req, sizeof req, "s%d", i);
        assert_true(push(j, 0, &(struct rec){.req = req}));
    }
    assert_int_equal(journal_start(j), 0);
    while (journal_written(j) < 5 && fb_mono_ns() < deadline)
        usleep(2000);
    assert_int_equal(journal_written(j), 5);
    /* Committed to the spool, not loaded: journal.db has none of them yet. */
    assert_int_equal(journal_loading(j), 5);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 0);
    im = im_open(fx->path, j);
    assert_int_equal(impact_query(im, &f, &r, err, sizeof err), 0);
    assert_int_equal(r.writes, 5);
    assert_int_equal(r.loading, 0);
    assert_int_equal(journal_loading(j), 0);
    impact_report_release(&r);
    impact_close(im);
    journal_close(j);
}

static void a_long_backlog_is_loaded_by_the_committing_thread(void **state)
{
    struct fixture *fx = *state;
    struct journal *j = jopen(fx->path, &(struct jopt){.ring = 256, .noload = true,
                                                        .backlog = 20});
    uint64_t deadline = fb_mono_ns() + 20000000000ull;
    char req[16];
    int i;

    assert_int_equal(journal_start(j), 0);
    for (i = 0; i < 100; i++) {
        snprintf(req, sizeof req, "b%d", i);
        assert_true(push(j, 0, &(struct rec){.req = req}));
    }
    /* No background loader and no report: only the bound makes the spooler load. */
    while ((journal_written(j) < 100 || journal_loading(j) > 20) && fb_mono_ns() < deadline)
        usleep(2000);
    assert_int_equal(journal_written(j), 100);
    assert_true(journal_loading(j) <= 20);
    assert_true(q_int(fx->path, "SELECT COUNT(*) FROM writes") >= 80);
    journal_close(j);
    assert_int_equal(q_int(fx->path, "SELECT COUNT(*) FROM writes"), 100);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ring_full_drops_and_keeps_order, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(concurrent_producers_lose_nothing_uncounted, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(records_land_with_every_field, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(index_of_another_journal_is_rebuilt, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(bad_options_are_refused, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(options_from_config),
        cmocka_unit_test_setup_teardown(identity_from_jwt_sub, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(entity_rule, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(redacted_values_never_reach_the_file, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(configured_redact_keys_and_body_cap, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(empty_redact_list_keeps_bodies, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(redact_keys_replaced_at_run_time, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(retention_by_age_keeps_summaries_exact, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(retention_by_size_trims_oldest_first, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(kill9_keeps_every_committed_record, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(spool_frames_round_trip_and_refuse_damage),
        cmocka_unit_test_setup_teardown(spool_left_by_a_crash_is_loaded_once, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(reports_load_what_the_spool_holds, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(a_long_backlog_is_loaded_by_the_committing_thread, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test_setup_teardown(impact_lists_exactly_the_release, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(impact_merges_records_not_yet_indexed, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(impact_reports_drops, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(export_csv_and_jsonl, tmpdir_setup, tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
