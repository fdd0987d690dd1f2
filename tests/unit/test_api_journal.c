/* test_api_journal.c: /api/v1/services/{s}/journal/impact and /export over a real HTTP
 * connection: answers come from the worker pool, roles, argument errors, export headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "firebreak/api.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/control.h"
#include "firebreak/err-t.h"
#include "firebreak/http_server.h"
#include "firebreak/journal.h"
#include "firebreak/server-t.h"

#define TMPDIR_PREFIX "fb-apijournal"
#define TMPDIR_FILE "journal.db"
#include "tmpdir.h"

static struct journal *journal_new(const char *path)
{
    struct journal_options o;
    struct journal *j = NULL;
    char err[256];

    journal_options_init(&o);
    o.ring_slots = 256;
    if (journal_open(path, &o, &j, err, sizeof err))
        fail_msg("journal_open: %s", err);
    return j;
}

/* In the last hour (older records would fall to the default 30-day retention): v2 gets 21
 * writes by users u0..u4 (4 each) plus one without identity, v1 gets 30. */
static void seed(const char *path)
{
    struct journal *j = journal_new(path);
    int64_t t0 = fb_wall_ms() - 3600000;
    struct journal_record *r;
    int i;

    for (i = 0; i < 51; i++) {
        r = journal_slot(j, 0);
        assert_non_null(r);
        r->time_ms = t0 + i * 1000;
        r->status = 201;
        memcpy(r->service, "shop", 5);
        memcpy(r->release, i < 21 ? "v2" : "v1", 3);
        memcpy(r->method, "POST", 5);
        snprintf(r->path, sizeof r->path, "/api/orders/%d", 100 + i % 10);
        if (i < 20 || i >= 21) {
            r->ident_kind = JOURNAL_IDENT_VALUE;
            snprintf(r->ident_src, sizeof r->ident_src, "%c%d", i < 21 ? 'u' : 's', i % 5);
        }
        journal_commit(j, 0);
    }
    journal_close(j);
}

#define API_REQS 8

struct api_test {
    struct server srv;
    struct http_server *hs;
    uv_async_t done;
    int port;
    const char *target[API_REQS], *token[API_REQS];
    char *resp[API_REQS];
    size_t n;
};

/* What api.c does before it offers a path to the resources: token, then segments. */
static void api_test_handler(void *arg, struct http_call *call)
{
    struct server *srv = arg;
    struct api_ctx a = {.srv = srv, .ctl = &srv->control, .call = call};
    const struct h1_field *f = http_request_field(&call->req, "authorization");
    size_t len = call->req.path.len - 7;
    char *p, *save = NULL;

    if (f && f->value.len > 7)
        a.token = control_token_check(&srv->control, f->value.p + 7, f->value.len - 7);
    if (!a.token || len >= sizeof a.segbuf) {
        http_response_json_error(&call->resp, -FB_EUNAUTH, "no token");
        http_call_done(call);
        return;
    }
    memcpy(a.segbuf, call->req.path.p + 7, len);
    a.segbuf[len] = '\0';
    for (p = strtok_r(a.segbuf, "/", &save); p && a.nseg < API_MAX_SEGMENTS;
         p = strtok_r(NULL, "/", &save))
        a.seg[a.nseg++] = p;
    if (!api_journal(&a)) {
        http_response_json_error(&call->resp, -FB_ENOENT, "no such endpoint");
        http_call_done(call);
    }
}

static char *http_get(int port, const char *target, const char *token)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[512], *buf = calloc(1, 1 << 20);
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || !buf || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return buf;
    }
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                              "Connection: close\r\n\r\n", target, token);
    if (write(fd, req, strlen(req)) == (ssize_t)strlen(req))
        while (len + 1 < (1 << 20) && (n = read(fd, buf + len, (1 << 20) - 1 - len)) > 0)
            len += (size_t)n;
    close(fd);
    return buf;
}

static void api_client(void *arg)
{
    struct api_test *t = arg;
    size_t i;

    for (i = 0; i < t->n; i++)
        t->resp[i] = http_get(t->port, t->target[i], t->token[i]);
    uv_async_send(&t->done);
}

static void api_test_done(uv_async_t *h)
{
    struct api_test *t = h->data;

    http_server_close(t->hs);
    uv_close((uv_handle_t *)h, NULL);
}

static void add_token(struct server *srv, const char *text, enum token_role role)
{
    struct token *tk = &srv->control.tokens[srv->control.ntokens++];

    SHA256((const unsigned char *)text, strlen(text), tk->hash);
    snprintf(tk->name, sizeof tk->name, "%s", text);
    tk->role = role;
}

static void api_answers_from_the_pool(void **state)
{
    static const char yaml[] =
        "services: [{name: shop, releases: [{name: v1, endpoints: [\"127.0.0.1:7001\"]}]}]\n";
    struct fixture *fx = *state;
    struct api_test t = {0};
    struct config_error cerr;
    struct token tokens[2];
    struct cfg_addr addr = {0};
    uv_loop_t loop;
    uv_thread_t client;
    char text[32];
    int i, rc = -1;

    seed(fx->path);
    uv_loop_init(&loop);
    t.srv.loop = &loop;
    t.srv.journal = journal_new(fx->path);
    assert_int_equal(journal_start(t.srv.journal), 0);
    assert_int_equal(config_parse("t.yaml", yaml, strlen(yaml), &t.srv.cfg, &cerr), 0);
    t.srv.control.tokens = tokens;
    add_token(&t.srv, "t-viewer", ROLE_VIEWER);
    add_token(&t.srv, "t-admin", ROLE_ADMIN);
    for (i = 0; i < 20 && rc; i++) {
        t.port = 20000 + (int)((getpid() * 7 + i * 131) % 30000);
        snprintf(text, sizeof text, "127.0.0.1:%d", t.port);
        assert_int_equal(config_parse_addr(text, &addr), 0);
        rc = http_server_new(&loop, &addr, 1024, api_test_handler, &t.srv, &t.hs);
        config_addr_release(&addr);
    }
    assert_int_equal(rc, 0);
#define REQ(path, tok) (t.target[t.n] = (path), t.token[t.n++] = (tok))
    REQ("/api/v1/services/shop/journal/impact?release=v2", "t-viewer");
    REQ("/api/v1/services/shop/journal/impact", "t-viewer");
    REQ("/api/v1/services/shop/journal/export?release=v2&format=csv", "t-viewer");
    REQ("/api/v1/services/shop/journal/export?release=v2&format=csv", "t-admin");
    REQ("/api/v1/services/nosuch/journal/impact?release=v1", "t-viewer");
    REQ("/api/v1/services/shop/journal/export?format=xml", "t-admin");
    REQ("/api/v1/services/shop/journal/impact?release=v2&since=yesterday", "t-viewer");
    REQ("/api/v1/services/shop/journal/export?format=jsonl&identity=u1&limit=2", "t-admin");
#undef REQ
    uv_async_init(&loop, &t.done, api_test_done);
    t.done.data = &t;
    assert_int_equal(uv_thread_create(&client, api_client, &t), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_thread_join(&client);
    uv_loop_close(&loop);
    journal_close(t.srv.journal);
    config_free(t.srv.cfg);

    for (i = 0; i < (int)t.n; i++)
        print_message("# %s -> %.60s\n", t.target[i], t.resp[i] ? t.resp[i] : "(none)");
    assert_non_null(strstr(t.resp[0], "HTTP/1.1 200"));
    assert_non_null(strstr(t.resp[0], "\"writes\":21"));
    assert_non_null(strstr(t.resp[0], "\"identities\":5"));
    assert_non_null(strstr(t.resp[0], "\"complete\":true"));
    assert_non_null(strstr(t.resp[1], "HTTP/1.1 400"));
    assert_non_null(strstr(t.resp[1], "release"));
    assert_non_null(strstr(t.resp[2], "HTTP/1.1 403"));
    assert_non_null(strstr(t.resp[3], "HTTP/1.1 200"));
    assert_non_null(strstr(t.resp[3], "Content-Type: text/csv"));
    assert_non_null(strstr(t.resp[3], "X-Firebreak-Export-Rows: 21\r\n"));
    assert_non_null(strstr(t.resp[3], "X-Firebreak-Journal-Dropped: 0\r\n"));
    assert_non_null(strstr(t.resp[4], "HTTP/1.1 404"));
    assert_non_null(strstr(t.resp[5], "HTTP/1.1 400"));
    assert_non_null(strstr(t.resp[5], "csv or jsonl"));
    assert_non_null(strstr(t.resp[6], "HTTP/1.1 400"));
    assert_non_null(strstr(t.resp[7], "HTTP/1.1 200"));
    assert_non_null(strstr(t.resp[7], "X-Firebreak-Export-Rows: 2\r\n"));
    assert_non_null(strstr(t.resp[7], "X-Firebreak-Export-Cut: true\r\n"));
    assert_non_null(strstr(t.resp[7], "\"identity\":\"u1\""));
    for (i = 0; i < (int)t.n; i++)
        free(t.resp[i]);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(api_answers_from_the_pool, tmpdir_setup, tmpdir_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
