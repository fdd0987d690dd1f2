/* test_webhook.c: outgoing webhooks against a real HTTP receiver on 127.0.0.1: the signed
 * body and headers, retries with backoff on a test clock, no retry after a 4xx, event filters,
 * the queue bound, timeouts and refused connections, reloads, cancelling on free, a loop that
 * keeps turning during deliveries, the metrics, and the webhooks: keys of the config file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/err-t.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"
#include "firebreak/webhook.h"

/* ---- a tiny HTTP receiver on a thread ------------------------------------------------------ */

#define RX_MAX 32

struct rx_req {
    char path[128];
    char head[4096]; /* the header lines as received */
    char *body;
    size_t body_len;
};

struct rx {
    int fd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock;
    struct rx_req reqs[RX_MAX];
    size_t n;
    int script[8]; /* status of the first requests; then 200 */
    size_t nscript;
    unsigned delay_ms; /* before answering */
    int stop;
};

static size_t rx_count(struct rx *rx)
{
    size_t n;

    pthread_mutex_lock(&rx->lock);
    n = rx->n;
    pthread_mutex_unlock(&rx->lock);
    return n;
}

static bool rx_stopping(struct rx *rx)
{
    return __atomic_load_n(&rx->stop, __ATOMIC_RELAXED) != 0;
}

/* Reads one request (head and Content-Length body) from c into r. */
static bool rx_read(int c, struct rx_req *r)
{
    char buf[70000], *end = NULL, *cl;
    size_t len = 0, head_len, want;
    ssize_t got;

    while (len < sizeof buf - 1) {
        got = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (got <= 0)
            return false;
        len += (size_t)got;
        buf[len] = '\0';
        end = end ? end : strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        head_len = (size_t)(end - buf) + 4;
        cl = strcasestr(buf, "\r\nContent-Length:");
        want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        if (len >= head_len + want) {
            snprintf(r->head, sizeof r->head, "%.*s", (int)head_len, buf);
            sscanf(buf, "%*s %127s", r->path);
            r->body = malloc(want + 1);
            memcpy(r->body, buf + head_len, want);
            r->body[want] = '\0';
            r->body_len = want;
            return true;
        }
    }
    return false;
}

static void rx_answer(struct rx *rx, int c, int status)
{
    char resp[256];
    unsigned waited;
    int n;

    for (waited = 0; waited < rx->delay_ms && !rx_stopping(rx); waited += 10)
        usleep(10000);
    n = snprintf(resp, sizeof resp,
                 "HTTP/1.1 %d X\r\nContent-Length: 11\r\nConnection: close\r\n\r\nanswer-body",
                 status);
    send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void *rx_main(void *arg)
{
    struct rx *rx = arg;
    struct pollfd p = {.fd = rx->fd, .events = POLLIN};
    struct rx_req r;
    int c, status;

    while (!rx_stopping(rx)) {
        if (poll(&p, 1, 20) <= 0)
            continue;
        c = accept(rx->fd, NULL, NULL);
        if (c < 0)
            continue;
        memset(&r, 0, sizeof r);
        if (rx_read(c, &r)) {
            pthread_mutex_lock(&rx->lock);
            status = rx->n < rx->nscript ? rx->script[rx->n] : 200;
            if (rx->n < RX_MAX)
                rx->reqs[rx->n++] = r;
            else
                free(r.body);
            pthread_mutex_unlock(&rx->lock);
            rx_answer(rx, c, status);
        }
        close(c);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1 with a port the kernel chose. */
static int listen_any(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void rx_start(struct rx *rx)
{
    rx->fd = listen_any(&rx->port);
    pthread_mutex_init(&rx->lock, NULL);
    assert_int_equal(pthread_create(&rx->thread, NULL, rx_main, rx), 0);
}

static void rx_stop(struct rx *rx)
{
    size_t i;

    __atomic_store_n(&rx->stop, 1, __ATOMIC_RELAXED);
    pthread_join(rx->thread, NULL);
    close(rx->fd);
    for (i = 0; i < rx->n; i++)
        free(rx->reqs[i].body);
    pthread_mutex_destroy(&rx->lock);
}

/* The value of header name in r, or false. */
static bool rx_header(const struct rx_req *r, const char *name, char *out, size_t outlen)
{
    const char *p = r->head;
    size_t n = strlen(name);

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            p += strspn(p, " ");
            snprintf(out, outlen, "%.*s", (int)strcspn(p, "\r"), p);
            return true;
        }
    }
    return false;
}

/* ---- the test's loop, clock and sender ------------------------------------------------------ */

struct env {
    uv_loop_t loop;
    uv_timer_t beat;
    uint64_t beats, last_beat_ns, max_gap_ns;
    uint64_t fake_ms;
    struct rx rx;
    struct config *cfg;
    struct metrics *m;
    struct webhook *w;
    json_t *log; /* the last webhook_log_json */
};

static uint64_t fake_clock(void *arg)
{
    return ((struct env *)arg)->fake_ms;
}

static uint64_t mono_ms(void)
{
    return fb_mono_ns() / 1000000u;
}

static void on_beat(uv_timer_t *t)
{
    struct env *e = t->data;
    uint64_t now = fb_mono_ns();

    if (e->last_beat_ns && now - e->last_beat_ns > e->max_gap_ns)
        e->max_gap_ns = now - e->last_beat_ns;
    e->last_beat_ns = now;
    e->beats++;
}

static struct env *env_new(void)
{
    struct env *e = calloc(1, sizeof *e);

    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->beat);
    e->beat.data = e;
    uv_timer_start(&e->beat, on_beat, 5, 5);
    e->fake_ms = 1000000;
    rx_start(&e->rx);
    e->m = metrics_new(1);
    assert_non_null(e->m);
    return e;
}

/* Loads a config whose webhooks: section is hooks, with PORT replaced by the receiver's. */
static void env_config(struct env *e, const char *hooks)
{
    char text[4096], with_port[2048], port[8];
    struct config_error err;
    const char *p;
    size_t n = 0;

    snprintf(port, sizeof port, "%u", e->rx.port);
    for (p = hooks; *p && n + 8 < sizeof with_port; p++) {
        if (strncmp(p, "PORT", 4) == 0) {
            n += (size_t)snprintf(with_port + n, sizeof with_port - n, "%s", port);
            p += 3;
        } else {
            with_port[n++] = *p;
        }
    }
    with_port[n] = '\0';
    snprintf(text, sizeof text,
             "services:\n  - name: shop\n    releases:\n"
             "      - { name: v1, endpoints: [\"127.0.0.1:7001\"] }\n"
             "webhooks:\n%s",
             with_port);
    config_free(e->cfg);
    e->cfg = NULL;
    if (config_parse("test.yaml", text, strlen(text), &e->cfg, &err))
        fail_msg("config: %s: %s", err.path, err.message);
}

static void env_start(struct env *e, const char *hooks, const struct webhook_opts *opts)
{
    struct webhook_opts o = {.clock = fake_clock, .clock_arg = e};

    if (opts) {
        o = *opts;
        o.clock = fake_clock;
        o.clock_arg = e;
    }
    env_config(e, hooks);
    assert_int_equal(webhook_new_opts(&e->loop, e->cfg, e->m, &o, &e->w), 0);
}

static void env_free(struct env *e)
{
    uint64_t start;

    webhook_free(e->w);
    metrics_free(e->m);
    uv_close((uv_handle_t *)&e->beat, NULL);
    start = mono_ms();
    assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0); /* nothing of the sender is left */
    assert_true(mono_ms() - start < 1000);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    rx_stop(&e->rx);
    config_free(e->cfg);
    json_decref(e->log);
    free(e);
}

/* The delivery log; row i counts from the newest. Borrowed until the next call. */
static json_t *row(struct env *e, size_t i)
{
    json_decref(e->log);
    e->log = webhook_log_json(e->w);
    assert_non_null(e->log);
    return json_array_get(json_object_get(e->log, "deliveries"), i);
}

static size_t log_len(struct env *e)
{
    row(e, 0);
    return json_array_size(json_object_get(e->log, "deliveries"));
}

static const char *row_str(struct env *e, size_t i, const char *key)
{
    return json_string_value(json_object_get(row(e, i), key));
}

static json_int_t row_int(struct env *e, size_t i, const char *key)
{
    return json_integer_value(json_object_get(row(e, i), key));
}

static bool row_is(struct env *e, size_t i, const char *state, json_int_t attempts)
{
    const char *s = row_str(e, i, "state");

    return s && strcmp(s, state) == 0 && row_int(e, i, "attempts") == attempts;
}

/* Runs the loop until done(e, arg) or limit_ms of real time; returns done's last answer. */
static bool run_until(struct env *e, bool (*done)(struct env *, const void *), const void *arg,
                      unsigned limit_ms)
{
    uint64_t end = mono_ms() + limit_ms;

    while (!done(e, arg) && mono_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    return done(e, arg);
}

static bool never(struct env *e, const void *arg)
{
    return false;
}

static bool is_idle(struct env *e, const void *arg)
{
    return webhook_idle(e->w);
}

static bool rx_has(struct env *e, const void *arg)
{
    return rx_count(&e->rx) >= *(const size_t *)arg;
}

struct want {
    const char *state;
    json_int_t attempts;
};

static bool newest_is(struct env *e, const void *arg)
{
    const struct want *w = arg;

    return row_is(e, 0, w->state, w->attempts);
}

/* Moves the test clock on and lets the sender look at it. */
static void advance(struct env *e, uint64_t ms)
{
    e->fake_ms += ms;
    webhook_kick(e->w);
}

/* The /metrics page has this exact sample line. */
static bool metric_is(struct env *e, const char *sample, uint64_t value)
{
    struct fb_buf b;
    char line[256];
    bool found;

    fb_buf_init(&b, 4u << 20);
    assert_int_equal(metrics_render_prometheus(e->m, &b), 0);
    snprintf(line, sizeof line, "\n%s %llu\n", sample, (unsigned long long)value);
    found = strstr(b.data, line) != NULL;
    if (!found)
        print_error("metric line not found: %s", line + 1);
    fb_buf_release(&b);
    return found;
}

static void hex_hmac(const char *key, const char *ts, const char *body, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned mdlen = 0, i;
    size_t tlen = strlen(ts);
    char *msg = malloc(tlen + 1 + len);

    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, len);
    HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)msg, tlen + 1 + len, md, &mdlen);
    assert_int_equal(mdlen, 32);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    free(msg);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void delivery_is_signed_with_text_and_headers(void **state)
{
    struct env *e = env_new();
    char v[256], hex[65];
    struct rx_req *r = NULL, *plain = NULL;
    json_t *body, *data;
    json_error_t jerr;
    const size_t two = 2;
    long long ts;
    size_t i;

    env_start(e,
              "  - { name: pager, url: \"http://127.0.0.1:PORT/pager\", secret: s3cret }\n"
              "  - { name: plain, url: \"http://127.0.0.1:PORT/plain\" }\n",
              NULL);
    assert_int_equal(webhook_send(e->w, "rollback",
                                  json_pack("{s:s, s:s, s:s}", "service", "shop", "release", "v2",
                                            "reason", "judge: errors 4.1x stable")),
                     0);
    assert_true(run_until(e, rx_has, &two, 3000));
    assert_true(run_until(e, is_idle, NULL, 3000));
    for (i = 0; i < 2; i++) {
        if (strcmp(e->rx.reqs[i].path, "/pager") == 0)
            r = &e->rx.reqs[i];
        else if (strcmp(e->rx.reqs[i].path, "/plain") == 0)
            plain = &e->rx.reqs[i];
    }
    assert_non_null(r);
    assert_non_null(plain);
    assert_true(strncmp(r->head, "POST /pager HTTP/1.1\r\n", 22) == 0);

    /* the signature is HMAC-SHA256(secret, TIMESTAMP "." BODY), recomputed here */
    assert_true(rx_header(r, "X-Firebreak-Timestamp", v, sizeof v));
    ts = strtoll(v, NULL, 10);
    assert_true(llabs(ts - (long long)(fb_wall_ms() / 1000)) <= 5);
    hex_hmac("s3cret", v, r->body, r->body_len, hex);
    assert_true(rx_header(r, "X-Firebreak-Signature", v, sizeof v));
    assert_true(strncmp(v, "sha256=", 7) == 0);
    assert_string_equal(v + 7, hex);
    hex_hmac("another", v, r->body, r->body_len, hex);
    assert_string_not_equal(v + 7, hex);
    assert_false(rx_header(plain, "X-Firebreak-Signature", v, sizeof v));

    assert_true(rx_header(r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_true(rx_header(r, "User-Agent", v, sizeof v));
    assert_string_equal(v, "firebreak");
    assert_true(rx_header(r, "X-Firebreak-Event", v, sizeof v));
    assert_string_equal(v, "rollback");
    assert_true(rx_header(r, "X-Firebreak-Delivery", v, sizeof v));
    assert_int_equal(strlen(v), 36);
    assert_true(strcmp(v, row_str(e, 0, "id")) == 0 || strcmp(v, row_str(e, 1, "id")) == 0);
    assert_true(rx_header(plain, "X-Firebreak-Delivery", hex, sizeof hex));
    assert_string_not_equal(v, hex);

    body = json_loadb(r->body, r->body_len, 0, &jerr);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "type")), "rollback");
    v[0] = '\0';
    snprintf(v, sizeof v, "%s", json_string_value(json_object_get(body, "text")));
    assert_non_null(strstr(v, "rollback"));
    assert_non_null(strstr(v, "shop"));
    assert_non_null(strstr(v, "v2"));
    assert_null(strchr(v, '\n'));
    assert_int_equal(strlen(json_string_value(json_object_get(body, "time"))), 24);
    data = json_object_get(body, "data");
    assert_string_equal(json_string_value(json_object_get(data, "service")), "shop");
    json_decref(body);
    assert_true(row_is(e, 0, "ok", 1) && row_is(e, 1, "ok", 1));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"ok\"}", 1));
    env_free(e);
}

static void callers_text_is_kept_on_one_line(void **state)
{
    struct env *e = env_new();
    const size_t one = 1;
    json_t *body;
    const char *text;

    env_start(e, "  - { name: chat, url: \"http://127.0.0.1:PORT/chat\" }\n", NULL);
    assert_int_equal(
        webhook_send(e->w, "incident_declared",
                     json_pack("{s:s, s:s}", "text", "INC-7 declared: <shop> checkout\nfailing",
                               "incident", "INC-7")),
        0);
    assert_true(run_until(e, rx_has, &one, 3000));
    body = json_loadb(e->rx.reqs[0].body, e->rx.reqs[0].body_len, 0, NULL);
    assert_non_null(body);
    text = json_string_value(json_object_get(body, "text"));
    assert_string_equal(text, "INC-7 declared: <shop> checkout failing");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(body, "data"), "incident")), "INC-7");
    json_decref(body);
    env_free(e);
}

static void server_errors_are_retried_with_backoff(void **state)
{
    struct env *e = env_new();
    const struct want first = {"retrying", 1}, second = {"retrying", 2}, done = {"ok", 3};
    char id[3][64];
    size_t i;

    e->rx.script[0] = 500;
    e->rx.script[1] = 500;
    e->rx.nscript = 2;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\", secret: k }\n", NULL);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_true(run_until(e, newest_is, &first, 3000));
    assert_int_equal(row_int(e, 0, "status"), 500);
    assert_non_null(row_str(e, 0, "next_attempt"));
    assert_string_equal(row_str(e, 0, "response"), "answer-body");

    advance(e, 999); /* the first retry waits 1 s */
    run_until(e, never, NULL, 150);
    assert_int_equal(rx_count(&e->rx), 1);
    advance(e, 1);
    assert_true(run_until(e, newest_is, &second, 3000));
    assert_int_equal(rx_count(&e->rx), 2);

    advance(e, 1999); /* the second waits 2 s */
    run_until(e, never, NULL, 150);
    assert_int_equal(rx_count(&e->rx), 2);
    advance(e, 1);
    assert_true(run_until(e, newest_is, &done, 3000));
    assert_int_equal(rx_count(&e->rx), 3);
    assert_int_equal(row_int(e, 0, "status"), 200);
    assert_true(json_is_null(json_object_get(row(e, 0), "error")));
    assert_int_equal(log_len(e), 1);

    for (i = 0; i < 3; i++)
        assert_true(rx_header(&e->rx.reqs[i], "X-Firebreak-Delivery", id[i], sizeof id[i]));
    assert_string_equal(id[0], id[1]);
    assert_string_equal(id[1], id[2]);
    assert_string_equal(id[2], row_str(e, 0, "id"));
    assert_true(metric_is(e, "firebreak_webhook_attempts_total{hook=\"pager\"}", 3));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"ok\"}", 1));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"failed\"}", 0));
    env_free(e);
}

static void client_error_is_not_retried(void **state)
{
    struct env *e = env_new();
    const struct want failed = {"failed", 1};

    e->rx.script[0] = 404;
    e->rx.script[1] = 404;
    e->rx.nscript = 2;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/gone\" }\n", NULL);
    assert_int_equal(webhook_send(e->w, "reminder", NULL), 0);
    assert_true(run_until(e, newest_is, &failed, 3000));
    assert_int_equal(row_int(e, 0, "status"), 404);
    assert_non_null(strstr(row_str(e, 0, "error"), "404"));
    advance(e, 120000);
    run_until(e, never, NULL, 150);
    assert_int_equal(rx_count(&e->rx), 1);
    assert_true(row_is(e, 0, "failed", 1));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"failed\"}", 1));
    assert_true(metric_is(e, "firebreak_webhook_attempts_total{hook=\"pager\"}", 1));
    env_free(e);
}

static void too_many_requests_is_retried(void **state)
{
    struct env *e = env_new();
    const struct want first = {"retrying", 1}, done = {"ok", 2};

    e->rx.script[0] = 429;
    e->rx.nscript = 1;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\" }\n", NULL);
    assert_int_equal(webhook_send(e->w, "reminder", NULL), 0);
    assert_true(run_until(e, newest_is, &first, 3000));
    advance(e, 1000);
    assert_true(run_until(e, newest_is, &done, 3000));
    env_free(e);
}

static void event_filter_decides_who_hears(void **state)
{
    struct env *e = env_new();
    const size_t one = 1, three = 3;
    size_t i, chat = 0, all = 0;

    env_start(e,
              "  - { name: chat, url: \"http://127.0.0.1:PORT/chat\", events: [rollback] }\n"
              "  - { name: all, url: \"http://127.0.0.1:PORT/all\" }\n",
              NULL);
    assert_int_equal(webhook_send(e->w, "reminder", NULL), 0);
    assert_true(run_until(e, rx_has, &one, 3000));
    assert_true(run_until(e, is_idle, NULL, 3000));
    run_until(e, never, NULL, 50);
    assert_int_equal(rx_count(&e->rx), 1);
    assert_string_equal(e->rx.reqs[0].path, "/all");

    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_true(run_until(e, rx_has, &three, 3000));
    assert_true(run_until(e, is_idle, NULL, 3000));
    for (i = 0; i < 3; i++) {
        chat += strcmp(e->rx.reqs[i].path, "/chat") == 0;
        all += strcmp(e->rx.reqs[i].path, "/all") == 0;
    }
    assert_int_equal(chat, 1);
    assert_int_equal(all, 2);
    assert_int_equal(log_len(e), 3);
    for (i = 0; i < 3; i++)
        assert_false(strcmp(row_str(e, i, "hook"), "chat") == 0 &&
                     strcmp(row_str(e, i, "type"), "reminder") == 0);
    env_free(e);
}

static void full_queue_drops_the_oldest(void **state)
{
    struct env *e = env_new();
    const struct webhook_opts o = {.queue_max = 4, .inflight_max = 1};
    const size_t four = 4;
    json_t *body;
    int i;

    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\" }\n", &o);
    for (i = 0; i < 10; i++)
        assert_int_equal(webhook_send(e->w, "reminder", json_pack("{s:i}", "seq", i)), 0);
    /* nothing ran yet: six were dropped, the newest four wait */
    assert_int_equal(log_len(e), 10);
    for (i = 0; i < 10; i++)
        assert_string_equal(row_str(e, (size_t)(9 - i), "state"), i < 6 ? "dropped" : "queued");
    assert_non_null(strstr(row_str(e, 9, "error"), "waiting"));
    assert_int_equal(json_integer_value(json_object_get(e->log, "waiting")), 4);

    assert_true(run_until(e, rx_has, &four, 3000));
    assert_true(run_until(e, is_idle, NULL, 3000));
    assert_int_equal(rx_count(&e->rx), 4);
    for (i = 0; i < 4; i++) {
        body = json_loadb(e->rx.reqs[i].body, e->rx.reqs[i].body_len, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(body, "data"), "seq")),
                         6 + i);
        json_decref(body);
    }
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"dropped\"}", 6));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"ok\"}", 4));
    env_free(e);
}

static void slow_receiver_does_not_block_the_loop(void **state)
{
    struct env *e = env_new();
    const size_t two = 2;
    uint64_t start, beats;

    e->rx.delay_ms = 300;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\" }\n", NULL);
    run_until(e, never, NULL, 20);
    start = mono_ms();
    beats = e->beats;
    e->max_gap_ns = 0;
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_int_equal(webhook_send(e->w, "reminder", NULL), 0);
    assert_true(run_until(e, rx_has, &two, 5000));
    assert_true(run_until(e, is_idle, NULL, 5000));
    assert_true(mono_ms() - start >= 550); /* the receiver answered each after 300 ms */
    /* the 5 ms timer kept firing all along: a blocking send would stop it for 300 ms */
    assert_true(e->max_gap_ns < 200u * 1000000u);
    assert_true(e->beats - beats >= (mono_ms() - start) / 5 / 5);
    assert_true(row_is(e, 0, "ok", 1) && row_is(e, 1, "ok", 1));
    env_free(e);
}

static void timeout_is_retried_then_fails(void **state)
{
    struct env *e = env_new();
    const struct webhook_opts o = {.max_attempts = 2};
    const struct want first = {"retrying", 1}, failed = {"failed", 2};

    e->rx.delay_ms = 1500;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\", timeout: 200ms }\n", &o);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_true(run_until(e, newest_is, &first, 3000));
    assert_non_null(strcasestr(row_str(e, 0, "error"), "timed out"));
    assert_true(json_is_null(json_object_get(row(e, 0), "status")));
    advance(e, 1000);
    assert_true(run_until(e, newest_is, &failed, 3000));
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"pager\",result=\"failed\"}", 1));
    env_free(e);
}

static void refused_connection_is_retried(void **state)
{
    struct env *e = env_new();
    const struct webhook_opts o = {.max_attempts = 3};
    const struct want first = {"retrying", 1}, second = {"retrying", 2}, failed = {"failed", 3};
    char hooks[256];
    uint16_t port;
    int fd = listen_any(&port);

    close(fd); /* nothing listens there any more */
    snprintf(hooks, sizeof hooks, "  - { name: gone, url: \"http://127.0.0.1:%u/\" }\n", port);
    env_start(e, hooks, &o);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_true(run_until(e, newest_is, &first, 3000));
    assert_non_null(row_str(e, 0, "error"));
    advance(e, 1000);
    assert_true(run_until(e, newest_is, &second, 3000));
    advance(e, 2000);
    assert_true(run_until(e, newest_is, &failed, 3000));
    assert_true(metric_is(e, "firebreak_webhook_attempts_total{hook=\"gone\"}", 3));
    env_free(e);
}

static void reload_moves_waiting_deliveries(void **state)
{
    struct env *e = env_new();
    const size_t one = 1;
    size_t i;

    env_start(e,
              "  - { name: a, url: \"http://127.0.0.1:PORT/a\" }\n"
              "  - { name: b, url: \"http://127.0.0.1:PORT/b\" }\n",
              NULL);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    env_config(e, "  - { name: a, url: \"http://127.0.0.1:PORT/a2\" }\n");
    assert_int_equal(webhook_reconfigure(e->w, e->cfg), 0);
    assert_true(run_until(e, rx_has, &one, 3000));
    assert_true(run_until(e, is_idle, NULL, 3000));
    run_until(e, never, NULL, 50);
    assert_int_equal(rx_count(&e->rx), 1);
    assert_string_equal(e->rx.reqs[0].path, "/a2");
    for (i = 0; i < 2; i++) {
        if (strcmp(row_str(e, i, "hook"), "b") == 0) {
            assert_string_equal(row_str(e, i, "state"), "dropped");
            assert_non_null(strstr(row_str(e, i, "error"), "reload"));
        } else {
            assert_string_equal(row_str(e, i, "state"), "ok");
        }
    }
    assert_true(
        metric_is(e, "firebreak_webhook_deliveries_total{hook=\"b\",result=\"dropped\"}", 1));

    /* a bad file changes nothing */
    config_free(e->cfg);
    e->cfg = NULL;
    env_config(e, "  - { name: a, url: \"http://127.0.0.1:PORT/a2\" }\n");
    free(e->cfg->webhooks[0].url);
    e->cfg->webhooks[0].url = strdup("http://");
    assert_int_equal(webhook_reconfigure(e->w, e->cfg), -FB_ECONFIG);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_true(run_until(e, is_idle, NULL, 3000));
    assert_string_equal(e->rx.reqs[1].path, "/a2");
    env_free(e);
}

static void free_cancels_attempts_in_flight(void **state)
{
    struct env *e = env_new();
    const size_t one = 1;

    e->rx.delay_ms = 3000;
    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\" }\n", NULL);
    assert_int_equal(webhook_send(e->w, "rollback", NULL), 0);
    assert_int_equal(webhook_send(e->w, "reminder", NULL), 0);
    assert_true(run_until(e, rx_has, &one, 3000));
    assert_false(webhook_idle(e->w));
    /* env_free frees it mid-answer and checks the loop empties within a second */
    env_free(e);
}

static void bad_input_is_refused(void **state)
{
    struct env *e = env_new();
    char *big = malloc(WEBHOOK_BODY_MAX + 10);
    json_t *log;

    env_start(e, "  - { name: pager, url: \"http://127.0.0.1:PORT/\" }\n", NULL);
    assert_int_equal(webhook_send(e->w, NULL, NULL), -FB_EINVAL);
    assert_int_equal(webhook_send(e->w, "", NULL), -FB_EINVAL);
    assert_int_equal(webhook_send(e->w, "Roll Back", NULL), -FB_EINVAL);
    assert_int_equal(webhook_send(e->w, "rollback", json_pack("[i]", 1)), -FB_EINVAL);
    memset(big, 'x', WEBHOOK_BODY_MAX + 9);
    big[WEBHOOK_BODY_MAX + 9] = '\0';
    assert_int_equal(webhook_send(e->w, "rollback", json_pack("{s:s}", "note", big)), -FB_ETOOBIG);
    assert_int_equal(log_len(e), 0);
    assert_int_equal(webhook_send(NULL, "rollback", json_object()), 0);
    log = webhook_log_json(NULL);
    assert_int_equal(json_array_size(json_object_get(log, "deliveries")), 0);
    assert_true(json_is_array(json_object_get(log, "deliveries")));
    json_decref(log);
    free(big);
    env_free(e);
}

/* ---- the webhooks: keys of firebreak.yaml -------------------------------------------------- */

static int parse_hooks(const char *hooks, struct config **cfg, struct config_error *err)
{
    char text[2048];

    snprintf(text, sizeof text,
             "services:\n  - name: shop\n    releases:\n"
             "      - { name: v1, endpoints: [\"127.0.0.1:7001\"] }\n%s",
             hooks);
    return config_parse("t.yaml", text, strlen(text), cfg, err);
}

static void config_defaults(void **state)
{
    struct config_error err;
    struct config *cfg = NULL;

    assert_int_equal(parse_hooks("", &cfg, &err), 0);
    assert_int_equal(cfg->nwebhooks, 0);
    config_free(cfg);
    assert_int_equal(
        parse_hooks("webhooks:\n  - { name: chat, url: \"https://chat.example/hook\" }\n", &cfg,
                    &err),
        0);
    assert_int_equal(cfg->nwebhooks, 1);
    assert_string_equal(cfg->webhooks[0].url, "https://chat.example/hook");
    assert_int_equal(cfg->webhooks[0].nevents, 1);
    assert_string_equal(cfg->webhooks[0].events[0], "*");
    assert_null(cfg->webhooks[0].secret);
    assert_int_equal(cfg->webhooks[0].timeout_ms, 5000);
    config_free(cfg);
}

static void config_errors_name_the_key(void **state)
{
    static const struct {
        const char *hooks, *path, *words;
    } cases[] = {
        {"webhooks:\n  - { name: a, url: \"ftp://x.example/SECRET-TOKEN\" }\n", "webhooks[0].url",
         "http://"},
        {"webhooks:\n  - { name: a, url: \"https:///path\" }\n", "webhooks[0].url", "no host"},
        {"webhooks:\n  - { name: a, url: \"http://x/\", events: [Rollback] }\n",
         "webhooks[0].events[0]", "bad event type"},
        {"webhooks:\n  - { name: a, url: \"http://x/\", events: [] }\n", "webhooks[0].events",
         "empty"},
        {"webhooks:\n  - { name: a, url: \"http://x/\", timeout: 2m }\n", "webhooks[0].timeout",
         "60s"},
        {"webhooks:\n  - { name: a, url: \"http://x/\", secret: \"\" }\n", "webhooks[0].secret",
         "empty"},
        {"webhooks:\n  - { name: a, url: \"http://x/\" }\n  - { name: a, url: \"http://y/\" }\n",
         "webhooks[1].name", "duplicate webhook name"},
        {"webhooks:\n  - { name: a }\n", "webhooks[0].url", "missing required key"},
        {"webhooks:\n  - { name: a, url: \"http://x/\", secrte: k }\n", "webhooks[0].secrte",
         "did you mean 'secret'"},
    };
    struct config_error err;
    struct config *cfg = NULL;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(parse_hooks(cases[i].hooks, &cfg, &err), -FB_ECONFIG);
        assert_null(cfg);
        if (strcmp(err.path, cases[i].path) != 0 || !strstr(err.message, cases[i].words))
            fail_msg("case %zu: got %s: %s", i, err.path, err.message);
        assert_null(strstr(err.message, "SECRET-TOKEN"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(delivery_is_signed_with_text_and_headers),
        cmocka_unit_test(callers_text_is_kept_on_one_line),
        cmocka_unit_test(server_errors_are_retried_with_backoff),
        cmocka_unit_test(client_error_is_not_retried),
        cmocka_unit_test(too_many_requests_is_retried),
        cmocka_unit_test(event_filter_decides_who_hears),
        cmocka_unit_test(full_queue_drops_the_oldest),
        cmocka_unit_test(slow_receiver_does_not_block_the_loop),
        cmocka_unit_test(timeout_is_retried_then_fails),
        cmocka_unit_test(refused_connection_is_retried),
        cmocka_unit_test(reload_moves_waiting_deliveries),
        cmocka_unit_test(free_cancels_attempts_in_flight),
        cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_errors_name_the_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
