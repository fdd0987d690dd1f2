/*
 * test_cli.c: the command-line client: argument, weight and URL parsing,
 * output formatting, and the HTTP client's handling of real answers.
 *
 * The network tests fork a tiny HTTP server on 127.0.0.1 that answers each
 * connection with a canned response (or hangs, or is not there at all) and
 * hands the requests it received back through a pipe. The unit under test is
 * the client's framing, error reporting and output, not the admin API.
 * Every child exits within 5 s (alarm) whatever the parent does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/client.h"
#include "firebreak/clock.h"
#include "firebreak/err.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------ percent, weights */

struct percent_case {
    const char *in;
    int bp; /* -1: refused */
};

static const struct percent_case percent_cases[] = {
    {"0", 0},       {"5", 500},     {"12.5", 1250},   {"12.50", 1250},
    {"0.01", 1},    {"100", 10000}, {"100.0", 10000}, {"100.00", 10000},
    {"007", 700},   {"5%", 500},    {"99.99", 9999},  {"33.3", 3330},
    {"", -1},       {"-1", -1},     {"+5", -1},       {"1e2", -1},
    {"12.345", -1}, {"100.01", -1}, {"101", -1},      {".5", -1},
    {"5.", -1},     {" 5", -1},     {"5 ", -1},       {"0x10", -1},
    {"abc", -1},    {"5%%", -1},    {"%5", -1},       {"1000000000000000000000", -1},
    {"5,5", -1},
};

static void percent_parsing(void **state)
{
    for (size_t i = 0; i < sizeof(percent_cases) / sizeof(percent_cases[0]); i++) {
        const struct percent_case *c = &percent_cases[i];
        unsigned bp = 12345;
        int rc = cli_parse_percent(c->in, &bp);

        if (c->bp < 0) {
            if (rc != -FB_EINVAL)
                fail_msg("'%s' accepted as %u", c->in, bp);
            assert_int_equal(bp, 12345); /* untouched on failure */
        } else {
            if (rc != 0)
                fail_msg("'%s' refused", c->in);
            assert_int_equal(bp, (unsigned)c->bp);
        }
    }
}

static void weight_arguments(void **state)
{
    struct cli_weight w;
    char why[256], longname[200];

    assert_int_equal(cli_parse_weight("v2=12.5", &w, why, sizeof(why)), 0);
    assert_string_equal(w.name, "v2");
    assert_int_equal(w.bp, 1250);
    assert_int_equal(cli_parse_weight("canary-2024.1=0.01", &w, why, sizeof(why)), 0);
    assert_string_equal(w.name, "canary-2024.1");
    assert_int_equal(w.bp, 1);

    assert_int_equal(cli_parse_weight("v2", &w, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "'v2' is not RELEASE=PERCENT"));
    assert_int_equal(cli_parse_weight("=5", &w, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "missing release name"));
    assert_int_equal(cli_parse_weight("v2=5.555", &w, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "'5.555' for v2"));
    assert_int_equal(cli_parse_weight("v2=", &w, why, sizeof(why)), -FB_EINVAL);
    assert_int_equal(cli_parse_weight("v2=5=6", &w, why, sizeof(why)), -FB_EINVAL);
    memset(longname, 'a', sizeof(longname) - 3);
    memcpy(longname + sizeof(longname) - 3, "=5", 3);
    assert_int_equal(cli_parse_weight(longname, &w, why, sizeof(why)), -FB_EINVAL);
    assert_non_null(strstr(why, "longer than"));
}

static void counts(void **state)
{
    long v = 0;

    assert_int_equal(cli_parse_count("500", 5000, &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(cli_parse_count("0", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count("-3", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count("5001", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count("12x", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count(" 12", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count("", 5000, &v), -FB_EINVAL);
    assert_int_equal(cli_parse_count("99999999999999999999999", 5000, &v), -FB_EINVAL);
    assert_int_equal(v, 500);
}

/* ------------------------------------------------------------------ URLs */

struct url_case {
    const char *in;
    const char *host, *port, *base, *text; /* host NULL: refused, text = part of why */
};

static const struct url_case url_cases[] = {
    {"http://127.0.0.1:9090", "127.0.0.1", "9090", "", "http://127.0.0.1:9090"},
    {"127.0.0.1:9090", "127.0.0.1", "9090", "", "http://127.0.0.1:9090"},
    {"HTTP://localhost", "localhost", "80", "", "http://localhost:80"},
    {"http://[::1]:9090/", "::1", "9090", "", "http://[::1]:9090"},
    {"http://admin.internal:8000/fb//", "admin.internal", "8000", "/fb",
     "http://admin.internal:8000/fb"},
    {"http://h:00080", "h", "80", "", "http://h:80"},
    {"https://127.0.0.1:9090", NULL, NULL, NULL, "https is not supported"},
    {"ftp://127.0.0.1", NULL, NULL, NULL, "unsupported scheme 'ftp'"},
    {"", NULL, NULL, NULL, "empty address"},
    {"http://", NULL, NULL, NULL, "missing host"},
    {"http://:9090", NULL, NULL, NULL, "missing host"},
    {"http://h:0", NULL, NULL, NULL, "bad port"},
    {"http://h:65536", NULL, NULL, NULL, "bad port"},
    {"http://h:123456", NULL, NULL, NULL, "bad port"},
    {"http://h:", NULL, NULL, NULL, "bad port"},
    {"http://h:80x", NULL, NULL, NULL, "unexpected 'x'"},
    {"http://user@h:80", NULL, NULL, NULL, "user information"},
    {"http://h h:80", NULL, NULL, NULL, "not allowed in a host"},
    {"http://[::1:80", NULL, NULL, NULL, "missing ']'"},
    {"http://[zz]:80", NULL, NULL, NULL, "not allowed in a host"},
    {"http://h:80/a?b", NULL, NULL, NULL, "may not hold"},
    {"http://h:80/a b", NULL, NULL, NULL, "may not hold"},
    {"http://h\r\nX: y", NULL, NULL, NULL, "not allowed in a host"},
};

static void url_parsing(void **state)
{
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        struct client_url u;
        char why[256] = "";
        int rc = client_url_parse(c->in, &u, why, sizeof(why));

        if (!c->host) {
            if (rc != -FB_EINVAL || !strstr(why, c->text))
                fail_msg("'%s': rc %d, why '%s', wanted '%s'", c->in, rc, why, c->text);
            assert_string_equal(u.host, "");
            continue;
        }
        if (rc)
            fail_msg("'%s' refused: %s", c->in, why);
        assert_string_equal(u.host, c->host);
        assert_string_equal(u.port, c->port);
        assert_string_equal(u.base, c->base);
        assert_string_equal(u.text, c->text);
    }
}

static void escaping(void **state)
{
    struct fb_buf b;

    fb_buf_init(&b, 1024);
    assert_int_equal(client_escape(&b, "v1.2-rc_3~x"), 0);
    assert_string_equal(b.data, "v1.2-rc_3~x");
    fb_buf_reset(&b);
    assert_int_equal(client_escape(&b, "a b/c?d&e=f%\xc3\xa9"), 0);
    assert_string_equal(b.data, "a%20b%2Fc%3Fd%26e%3Df%25%C3%A9");
    fb_buf_release(&b);

    assert_int_equal(cli_service_path(&b, "my shop", "releases", "v/2"), 0);
    assert_string_equal(b.data, "/api/v1/services/my%20shop/releases/v%2F2");
    fb_buf_release(&b);
}

/* ------------------------------------------------------------- arguments */

static const struct cli_cmd add_cmd = {"release",
                                       "add",
                                       "SERVICE RELEASE --endpoint HOST:PORT",
                                       "",
                                       CLI_FLAG(CLI_F_ENDPOINT),
                                       CLI_FLAG(CLI_F_ENDPOINT),
                                       2,
                                       2,
                                       NULL,
                                       NULL};
static const struct cli_cmd events_cmd = {
    "events",
    NULL,
    "",
    "",
    CLI_FLAG(CLI_F_SINCE) | CLI_FLAG(CLI_F_FOLLOW) | CLI_FLAG(CLI_F_LIMIT),
    0,
    0,
    0,
    NULL,
    NULL};
static const struct cli_cmd rollback_cmd = {
    "rollback", NULL, "SERVICE", "", CLI_FLAG(CLI_F_REASON), 0, 1, 1, NULL, NULL};

static int parse(const struct cli_cmd *cmd, int argc, const char **argv, struct cli_args *a,
                 char *why)
{
    return cli_parse_args(cmd, argc, (char **)argv, a, why, 256);
}

static void arguments_in_any_order(void **state)
{
    const char *argv[] = {"--endpoint",
                          "127.0.0.1:7002",
                          "shop",
                          "--json",
                          "-c",
                          "fb.yaml",
                          "v2",
                          "--endpoint=127.0.0.1:7003",
                          "--admin=http://h:1",
                          "--token",
                          "t0k"};
    struct cli_args a;
    char why[256];

    assert_int_equal(parse(&add_cmd, ARGC(argv), argv, &a, why), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "shop");
    assert_string_equal(a.pos[1], "v2");
    assert_int_equal(a.nlist, 2);
    assert_string_equal(a.list[0], "127.0.0.1:7002");
    assert_string_equal(a.list[1], "127.0.0.1:7003");
    assert_true(a.json);
    assert_string_equal(a.config, "fb.yaml");
    assert_string_equal(a.admin, "http://h:1");
    assert_string_equal(a.token, "t0k");
}

static void switches_and_short_config(void **state)
{
    const char *argv[] = {"--follow", "--since", "10m", "-cother.yaml", "--limit=5"};
    const char *dash[] = {"--", "--reason"};
    struct cli_args a;
    char why[256];

    assert_int_equal(parse(&events_cmd, ARGC(argv), argv, &a, why), 0);
    assert_non_null(a.flag[CLI_F_FOLLOW]);
    assert_string_equal(a.flag[CLI_F_SINCE], "10m");
    assert_string_equal(a.flag[CLI_F_LIMIT], "5");
    assert_string_equal(a.config, "other.yaml");
    assert_null(a.flag[CLI_F_REASON]);

    /* after "--" everything is an argument, even what looks like a flag */
    assert_int_equal(parse(&rollback_cmd, ARGC(dash), dash, &a, why), 0);
    assert_string_equal(a.pos[0], "--reason");
}

struct bad_args {
    const struct cli_cmd *cmd;
    const char *argv[4];
    int argc;
    const char *why;
};

static void bad_arguments_are_named(void **state)
{
    static const struct bad_args cases[] = {
        {&add_cmd, {"shop", "v2"}, 2, "missing --endpoint"},
        {&add_cmd, {"shop", "--endpoint", "x"}, 3, "missing argument"},
        {&add_cmd, {"shop", "v2", "v3", "--endpoint=x"}, 4, "unexpected argument 'v3'"},
        {&add_cmd, {"shop", "v2", "--endpoint"}, 3, "--endpoint needs a value"},
        {&add_cmd, {"shop", "v2", "--endpoint=x", "--reason=y"}, 4, "unknown flag '--reason=y'"},
        {&add_cmd, {"shop", "v2", "--endpoint=x", "-x"}, 4, "unknown flag '-x'"},
        {&add_cmd, {"shop", "", "--endpoint=x"}, 3, "empty argument"},
        {&rollback_cmd, {"shop", "--reason", "a", "--reason=b"}, 4, "--reason given twice"},
        {&rollback_cmd, {"shop", "--json=yes"}, 2, "--json takes no value"},
        {&rollback_cmd, {"shop", "-c"}, 2, "-c needs a value"},
        {&rollback_cmd, {"shop", "--admin", "a", "--admin=b"}, 4, "--admin given twice"},
        {&events_cmd, {"--follow=1"}, 1, "--follow takes no value"},
        {&events_cmd, {"--followx"}, 1, "unknown flag '--followx'"},
        {&events_cmd, {"extra"}, 1, "unexpected argument 'extra'"},
    };
    struct cli_args a;
    char why[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_args *c = &cases[i];
        int rc = parse(c->cmd, c->argc, (const char **)c->argv, &a, why);

        if (rc != -FB_EINVAL || !strstr(why, c->why))
            fail_msg("case %zu: rc %d, why '%s', wanted '%s'", i, rc, why, c->why);
    }
}

static void help_skips_argument_checks(void **state)
{
    const char *argv[] = {"--help"};
    struct cli_args a;
    char why[256];

    assert_int_equal(parse(&add_cmd, ARGC(argv), argv, &a, why), 0);
    assert_true(a.help);
}

/* ---------------------------------------------------------------- output */

static void weights_and_durations(void **state)
{
    char out[32];

    cli_format_weight(12.5, false, out, sizeof(out));
    assert_string_equal(out, "12.5");
    cli_format_weight(12.5, true, out, sizeof(out));
    assert_string_equal(out, "12.50");
    cli_format_weight(100, false, out, sizeof(out));
    assert_string_equal(out, "100");
    cli_format_weight(0.01, false, out, sizeof(out));
    assert_string_equal(out, "0.01");
    cli_format_weight(33.33, false, out, sizeof(out));
    assert_string_equal(out, "33.33");
    cli_format_weight(0, true, out, sizeof(out));
    assert_string_equal(out, "0.00");

    cli_format_duration_us(41, out, sizeof(out));
    assert_string_equal(out, "41 us");
    cli_format_duration_us(1250, out, sizeof(out));
    assert_string_equal(out, "1.25 ms");
    cli_format_duration_us(2500000, out, sizeof(out));
    assert_string_equal(out, "2.50 s");
}

static void times_in_utc(void **state)
{
    json_t *o = json_pack("{s:I, s:s, s:s}", "time_ms", (json_int_t)1795717845599LL, "time",
                          "ignored", "created", "2026-01-02T03:04:05.000Z");
    char out[64];

    cli_format_time(o, "time", out, sizeof(out));
    assert_string_equal(out, "2026-11-26T18:30:45.599Z");
    cli_format_time(o, "created", out, sizeof(out));
    assert_string_equal(out, "2026-01-02T03:04:05.000Z");
    cli_format_time(o, "missing", out, sizeof(out));
    assert_string_equal(out, "-");
    json_decref(o);
}

static void details_read_as_key_value(void **state)
{
    json_t *d = json_loads("{\"trigger\":\"manual\",\"reason\":\"errors on checkout\","
                           "\"weights\":{\"v1\":100,\"v2\":0},\"n\":3,\"empty\":\"\","
                           "\"evil\":\"a\\u001b[31mb\"}",
                           0, NULL);
    struct fb_buf b;

    assert_non_null(d);
    fb_buf_init(&b, 4096);
    assert_int_equal(cli_format_details(d, &b), 0);
    assert_string_equal(b.data, "trigger=manual reason=\"errors on checkout\" "
                                "weights={\"v1\":100,\"v2\":0} n=3 empty=\"\" "
                                "evil=\"a\\u001B[31mb\"");
    fb_buf_release(&b);
    json_decref(d);
}

static char *capture_table(const struct cli_table *t, bool heading)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_int_equal(cli_table_print(t, f, heading), 0);
    fclose(f);
    return text;
}

static void tables_align(void **state)
{
    struct cli_table t;
    char *text;

    cli_table_init(&t, "RELEASE,>WEIGHT%,STATE");
    cli_table_add(&t, (const char *[]){"v1", "95.00", "healthy"});
    cli_table_add(&t, (const char *[]){"canary-long", "5.00", NULL});
    cli_table_add(&t, (const char *[]){"caf\xc3\xa9", "0.00", "bad\x1b[2Jx"});
    text = capture_table(&t, true);
    assert_string_equal(text, "RELEASE      WEIGHT%  STATE\n"
                              "v1             95.00  healthy\n"
                              "canary-long     5.00  -\n"
                              "caf\xc3\xa9            0.00  bad?[2Jx\n");
    free(text);
    text = capture_table(&t, false);
    assert_string_equal(text, "v1             95.00  healthy\n"
                              "canary-long     5.00  -\n"
                              "caf\xc3\xa9            0.00  bad?[2Jx\n");
    free(text);
    cli_table_release(&t);
}

/* ----------------------------------------------------- the test server */

#define MAX_CONNS 4

struct server {
    pid_t pid;
    int port;
    int pipe_rd;          /* requests received, each followed by a NUL */
    char requests[65536]; /* filled by server_stop */
    size_t requests_len;
};

/* Reads one request (head and Content-Length body) from fd into b. */
static void child_read_request(int fd, struct fb_buf *b)
{
    char chunk[4096], *end = NULL, *cl;
    size_t need = 0;
    ssize_t n;

    for (;;) {
        if (!end && (end = strstr(b->data ? b->data : "", "\r\n\r\n"))) {
            cl = strcasestr(b->data, "\r\nContent-Length:");
            need = (size_t)(end - b->data) + 4;
            if (cl && cl < end)
                need += strtoul(cl + 17, NULL, 10);
        }
        if (end && b->len >= need)
            return;
        n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            return;
        fb_buf_append(b, chunk, (size_t)n);
    }
}

static void child_serve(int lfd, int wr, const char *const *answers, bool hang)
{
    struct fb_buf req;

    alarm(5);
    fb_buf_init(&req, 1u << 20);
    for (size_t i = 0; i < MAX_CONNS && (answers[i] || hang); i++) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0)
            _exit(1);
        fb_buf_reset(&req);
        child_read_request(fd, &req);
        if (write(wr, req.data ? req.data : "", req.len) < 0 || write(wr, "", 1) < 0)
            _exit(1);
        if (hang)
            pause();
        if (write(fd, answers[i], strlen(answers[i])) < 0)
            _exit(1);
        close(fd);
    }
    _exit(0);
}

/* Starts a server answering connection i with answers[i] (NULL-terminated),
 * or, when hang, accepting one connection and never answering. */
static void server_start(struct server *s, const char *const *answers, bool hang)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd, fds[2];

    memset(s, 0, sizeof(*s));
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        close(fds[0]);
        child_serve(lfd, fds[1], answers, hang);
    }
    close(lfd);
    close(fds[1]);
    s->pipe_rd = fds[0];
}

/* Ends the child (killing it when kill is set) and collects the requests. */
static void server_stop(struct server *s, bool kill_it)
{
    ssize_t n = 1;
    int status;

    if (kill_it)
        kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    while (n > 0 && s->requests_len < sizeof(s->requests) - 1) {
        n = read(s->pipe_rd, s->requests + s->requests_len,
                 sizeof(s->requests) - 1 - s->requests_len);
        if (n > 0)
            s->requests_len += (size_t)n;
    }
    s->requests[s->requests_len] = '\0';
    close(s->pipe_rd);
}

/* The i-th request the server received, or NULL. */
static const char *server_request(const struct server *s, size_t i)
{
    size_t off = 0;

    for (; i > 0 && off < s->requests_len; i--)
        off += strlen(s->requests + off) + 1;
    return off < s->requests_len ? s->requests + off : NULL;
}

static void client_for(struct client *c, const struct server *s, const char *token)
{
    struct client_url u;
    char text[64], why[128];

    snprintf(text, sizeof(text), "http://127.0.0.1:%d", s->port);
    assert_int_equal(client_url_parse(text, &u, why, sizeof(why)), 0);
    client_init(c, &u, token);
}

/* One client_request against canned answers; returns its code. */
static int exchange(struct server *s, const char *const *answers, struct client_response *r,
                    size_t max_body)
{
    struct client c;
    int rc;

    server_start(s, answers, false);
    client_for(&c, s, "tok");
    if (max_body)
        c.max_body = max_body;
    rc = client_request(&c, "GET", "/api/v1/services", NULL, 0, r);
    server_stop(s, false);
    return rc;
}

/* ------------------------------------------------------ client answers */

static void content_length_answer(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
        "{\"services\": []}",
        NULL};
    struct client_response r;
    struct server s;

    assert_int_equal(exchange(&s, answers, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.reason, "OK");
    assert_string_equal(r.body.data, "{\"services\": []}");
    client_response_release(&r);
    /* what was sent: the request line, the host, the token, no body */
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/services HTTP/1.1\r\n"));
    assert_non_null(strstr(server_request(&s, 0), "\r\nAuthorization: Bearer tok\r\n"));
    assert_non_null(strstr(server_request(&s, 0), "\r\nConnection: close\r\n"));
    assert_null(strstr(server_request(&s, 0), "Content-Length"));
}

static void chunked_answer_after_100_continue(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"a\":\r\n3;ext=1\r\n12}\r\n0\r\nX-Trailer: x\r\n\r\n",
        NULL};
    struct client_response r;
    struct server s;

    assert_int_equal(exchange(&s, answers, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 8);
    assert_string_equal(r.body.data, "{\"a\":12}");
    client_response_release(&r);
}

static void body_until_close(void **state)
{
    static const char *const answers[] = {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
                                          NULL};
    struct client_response r;
    struct server s;

    assert_int_equal(exchange(&s, answers, &r, 0), 0);
    assert_string_equal(r.body.data, "all of it");
    client_response_release(&r);
}

struct bad_answer {
    const char *answer;
    int rc;
    const char *why;
};

static void bad_answers_are_named(void **state)
{
    static const struct bad_answer cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
         -FB_EBADRESP, "malformed answer"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten!!", -FB_EBADRESP,
         "closed after 10 of 100 body bytes"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", -FB_EBADRESP,
         "before the end of the chunked body"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -FB_EBADRESP,
         "malformed chunked body"},
        {"HTTP/1.1 200 OK\r\nContent-Le", -FB_EBADRESP, "closed in the middle of the answer"},
        {"", -FB_EBADRESP, "closed without an answer"},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", -FB_EBADRESP, "malformed answer"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", -FB_EBADRESP, "101"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", -FB_ETOOBIG,
         "2000 bytes is over the 1000-byte limit"},
    };
    struct client_response r;
    struct server s;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *answers[] = {cases[i].answer, NULL};
        int rc = exchange(&s, answers, &r, 1000);

        if (rc != cases[i].rc || !strstr(r.why, cases[i].why))
            fail_msg("case %zu: rc %d why '%s', wanted %d '%s'", i, rc, r.why, cases[i].rc,
                     cases[i].why);
        assert_int_equal(r.status, 0);
        client_response_release(&r);
    }
}

static void chunked_body_over_the_limit(void **state)
{
    static char answer[4096];
    const char *answers[] = {answer, NULL};
    struct client_response r;
    struct server s;
    size_t n;

    n = (size_t)snprintf(answer, sizeof(answer),
                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 1500);
    memset(answer + n, 'x', 1500);
    memcpy(answer + n + 1500, "\r\n0\r\n\r\n", 8);
    assert_int_equal(exchange(&s, answers, &r, 1000), -FB_ETOOBIG);
    assert_non_null(strstr(r.why, "over the 1000-byte limit"));
    client_response_release(&r);
}

/* A body of exactly the limit is fine, one byte more is not, however framed. */
static void limits_are_exact(void **state)
{
    static char answer[2048];
    const char *answers[] = {answer, NULL};
    const char *heads[] = {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n"};
    struct client_response r;
    struct server s;

    for (size_t h = 0; h < 2; h++) {
        for (size_t size = 1000; size <= 1001; size++) {
            int n = snprintf(answer, sizeof(answer), heads[h], size);

            memset(answer + n, 'y', size);
            answer[(size_t)n + size] = '\0';
            if (size == 1000) {
                assert_int_equal(exchange(&s, answers, &r, 1000), 0);
                assert_int_equal(r.body.len, 1000);
            } else {
                assert_int_equal(exchange(&s, answers, &r, 1000), -FB_ETOOBIG);
                assert_non_null(strstr(r.why, "1000-byte limit"));
            }
            client_response_release(&r);
        }
    }
}

static void refused_connection(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    struct client_response r;
    struct client_url u;
    struct client c;
    char text[64], why[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was just free: bound, never listened on, closed */
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(text, sizeof(text), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(client_url_parse(text, &u, why, sizeof(why)), 0);
    client_init(&c, &u, NULL);
    assert_int_equal(client_request(&c, "GET", "/healthz", NULL, 0, &r), -FB_ECONNECT);
    assert_int_equal(r.sys_errno, ECONNREFUSED);
    assert_string_equal(r.why, "connection refused");
    client_response_release(&r);
}

static void silent_server_times_out(void **state)
{
    static const char *const answers[] = {NULL};
    struct client_response r;
    struct server s;
    struct client c;
    uint64_t t0;
    int rc;

    server_start(&s, answers, true);
    client_for(&c, &s, NULL);
    c.timeout_ms = 300;
    t0 = fb_mono_ns();
    rc = client_request(&c, "GET", "/api/v1/services", NULL, 0, &r);
    assert_int_equal(rc, -FB_ETIMEOUT);
    assert_true(fb_mono_ns() - t0 >= 290000000u);
    assert_true(fb_mono_ns() - t0 < 3000000000u);
    assert_non_null(strstr(r.why, "within 300 ms"));
    client_response_release(&r);
    server_stop(&s, true);
}

static void bad_requests_are_not_sent(void **state)
{
    struct client_response r;
    struct client_url u;
    struct client c;
    char why[64];

    assert_int_equal(client_url_parse("127.0.0.1:1", &u, why, sizeof(why)), 0);
    client_init(&c, &u, "tok\r\nX-Evil: 1");
    assert_int_equal(client_request(&c, "GET", "/x", NULL, 0, &r), -FB_EINVAL);
    assert_non_null(strstr(r.why, "token"));
    client_response_release(&r);
    c.token = NULL;
    assert_int_equal(client_request(&c, "GET", "/x y", NULL, 0, &r), -FB_EINVAL);
    client_response_release(&r);
    assert_int_equal(client_request(&c, "get", "/x", NULL, 0, &r), -FB_EINVAL);
    client_response_release(&r);
}

/* ------------------------------------------------------ whole commands */

struct run {
    int rc;
    char *out, *err;
};

static void run_cli(struct run *r, int argc, const char **argv)
{
    size_t olen = 0, elen = 0;
    FILE *out = open_memstream(&r->out, &olen), *err = open_memstream(&r->err, &elen);

    r->rc = cli_run(argc, (char **)argv, out, err);
    fclose(out);
    fclose(err);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Runs argv (with --admin pointing at a server answering answers) and stops
 * the server. */
static void run_against(struct server *s, const char *const *answers, struct run *r, int argc,
                        const char **argv)
{
    char admin[64];
    const char *full[24];

    assert_true(argc + 2 <= 24);
    server_start(s, answers, false);
    snprintf(admin, sizeof(admin), "--admin=http://127.0.0.1:%d", s->port);
    memcpy(full, argv, (size_t)argc * sizeof(*argv));
    full[argc] = admin;
    full[argc + 1] = "--token=tok";
    run_cli(r, argc + 2, full);
    server_stop(s, false);
}

#define SERVICE_JSON                                                                               \
    "{\"name\":\"shop\",\"stable\":\"v1\",\"previous\":null,\"releases\":["                        \
    "{\"name\":\"v1\",\"weight\":95,\"stable\":true,\"endpoints\":["                               \
    "{\"address\":\"127.0.0.1:7001\",\"state\":\"healthy\",\"ejected_until\":null},"               \
    "{\"address\":\"127.0.0.1:7004\",\"state\":\"ejected\","                                       \
    "\"ejected_until\":\"2026-11-26T18:30:45.599Z\"}],"                                            \
    "\"rates\":{\"rps\":41.3,\"error_rate\":0.0012,\"p99_ms\":18.0}},"                             \
    "{\"name\":\"v2\",\"weight\":5,\"stable\":false,\"endpoints\":["                               \
    "{\"address\":\"127.0.0.1:7002\",\"state\":\"probing\"}],"                                     \
    "\"rates\":{\"rps\":2.15,\"error_rate\":0.5,\"p99_ms\":1234.5}}]}"

static char *ok_json(const char *status, const char *body)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    fprintf(f, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            status, strlen(body), body);
    fclose(f);
    return text;
}

static void status_prints_a_table(void **state)
{
    char *answer = ok_json("200 OK", SERVICE_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"status", "shop"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(
        r.out, "service shop  stable v1\n"
               "RELEASE  WEIGHT%  STABLE   RPS  ERRORS  P99 MS  ENDPOINT        STATE\n"
               "v1         95.00  yes     41.3   0.12%    18.0  127.0.0.1:7001  healthy\n"
               "                                                127.0.0.1:7004  ejected until "
               "2026-11-26T18:30:45.599Z\n"
               "v2          5.00           2.1  50.00%  1234.5  127.0.0.1:7002  probing\n");
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/services/shop HTTP/1.1\r\n"));
    run_free(&r);
    free(answer);
}

static void json_flag_prints_the_answer(void **state)
{
    char *answer = ok_json("200 OK", SERVICE_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"status", "shop", "--json"};
    json_t *sent, *printed;
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    sent = json_loads(SERVICE_JSON, 0, NULL);
    printed = json_loads(r.out, 0, NULL);
    assert_non_null(printed);
    assert_true(json_equal(sent, printed));
    assert_non_null(strstr(r.out, "\n  \"name\": \"shop\",\n")); /* pretty-printed */
    assert_non_null(strstr(r.out, "\"rps\": 41.3,"));            /* numbers as sent */
    json_decref(sent);
    json_decref(printed);
    run_free(&r);
    free(answer);
}

static void conflict_prints_the_api_message(void **state)
{
    char *answer = ok_json("409 Conflict", "{\"error\": \"conflict\", \"message\": \"release v2 "
                                           "still has weight 5\"}");
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"release", "remove", "shop", "v2"};
    const char *json[] = {"release", "remove", "shop", "v2", "--json"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "firebreak: conflict: release v2 still has weight 5\n");
    assert_string_equal(r.out, "");
    assert_non_null(strstr(server_request(&s, 0), "DELETE /api/v1/services/shop/releases/v2 "));
    assert_non_null(strstr(server_request(&s, 0), "\r\nContent-Length: 0\r\n"));
    run_free(&r);

    /* with --json the error body also goes to stdout, for scripts */
    run_against(&s, answers, &r, ARGC(json), json);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "\"error\": \"conflict\""));
    assert_non_null(strstr(r.err, "firebreak: conflict: "));
    run_free(&r);
    free(answer);
}

static void non_json_error_shows_status(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 12\r\n\r\nupstream\x1b[0m", NULL};
    const char *argv[] = {"status"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "answered 502 Bad Gateway: upstream?[0m\n"));
    run_free(&r);
}

static void malformed_answer_fails_the_command(void **state)
{
    static const char *const answers[] = {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", NULL};
    const char *argv[] = {"status"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "firebreak: bad_response: the admin API at http://127.0.0.1:"));
    run_free(&r);
}

static void weights_sends_basis_point_exact_numbers(void **state)
{
    char *answer = ok_json("200 OK", SERVICE_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"weights", "shop", "v1=87.5", "v2=12.49", "v3=0.01%"};
    const char *req, *body;
    json_t *sent, *w;
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    req = server_request(&s, 0);
    assert_non_null(strstr(req, "PUT /api/v1/services/shop/weights HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
    body = strstr(req, "\r\n\r\n") + 4;
    assert_non_null(strstr(body, "\"v2\":12.49")); /* not 12.4900000000001 */
    sent = json_loads(body, 0, NULL);
    w = json_object_get(sent, "weights");
    assert_int_equal(json_object_size(w), 3);
    assert_true(json_number_value(json_object_get(w, "v1")) == 87.5);
    assert_true(json_number_value(json_object_get(w, "v3")) == 0.01);
    assert_non_null(strstr(r.out, "weights of shop set\n"));
    json_decref(sent);
    run_free(&r);
    free(answer);
}

static void weights_syntax_is_checked_before_sending(void **state)
{
    const char *argv[] = {"weights", "shop", "v1=95", "v2=5.001", "--admin=127.0.0.1:1"};
    const char *dup[] = {"weights", "shop", "v1=95", "v1=5", "--admin=127.0.0.1:1"};
    struct run r;

    run_cli(&r, ARGC(argv), argv);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "bad weight '5.001' for v2"));
    assert_non_null(strstr(r.err, "usage: firebreak weights SERVICE RELEASE=PERCENT..."));
    run_free(&r);
    run_cli(&r, ARGC(dup), dup);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "release v1 given twice"));
    run_free(&r);
}

static void rollback_prints_weights_and_time(void **state)
{
    char *answer = ok_json("200 OK", "{\"service\":\"shop\",\"stable\":\"v1\",\"weights\":"
                                     "{\"v1\":100,\"v2\":0},\"published_us\":41,\"event_id\":17}");
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"rollback", "shop", "--reason", "errors on checkout"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "rolled back shop to v1 in 41 us (event 17)\n"
                               "RELEASE  WEIGHT%\n"
                               "v1        100.00\n"
                               "v2          0.00\n");
    assert_non_null(strstr(server_request(&s, 0), "\r\n\r\n{\"reason\":\"errors on checkout\"}"));
    run_free(&r);
    free(answer);
}

static void release_add_sends_every_endpoint(void **state)
{
    char *answer = ok_json("201 Created", SERVICE_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"release",
                          "add",
                          "shop",
                          "v2",
                          "--endpoint",
                          "127.0.0.1:7002",
                          "--endpoint=127.0.0.1:7003"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "added release v2 to shop at weight 0\n");
    assert_non_null(strstr(server_request(&s, 0),
                           "{\"name\":\"v2\",\"endpoints\":[\"127.0.0.1:7002\","
                           "\"127.0.0.1:7003\"]}"));
    run_free(&r);
    free(answer);
}

static void remove_answers_204(void **state)
{
    static const char *const answers[] = {"HTTP/1.1 204 No Content\r\n\r\n", NULL};
    const char *argv[] = {"release", "remove", "my shop", "v2"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "removed release v2 from my shop\n");
    assert_non_null(strstr(server_request(&s, 0), "DELETE /api/v1/services/my%20shop/releases/v2"));
    run_free(&r);
}

static void connection_refused_says_so(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    char admin[64], want[160];
    const char *argv[] = {"status", admin};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct run r;

    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(admin, sizeof(admin), "--admin=http://127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(want, sizeof(want),
             "firebreak: cannot reach the admin API at http://127.0.0.1:%d: connection refused "
             "(is firebreak serve running?)\n",
             ntohs(sa.sin_port));
    run_cli(&r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, want);
    run_free(&r);
}

/* Writes a config whose admin.listen is the server and whose state is dir. */
static void write_config(const char *dir, int port, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/fb.yaml", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "listen: 127.0.0.1:1\nadmin: { listen: 127.0.0.1:%d }\nstate: %s\n"
            "services:\n  - name: shop\n    releases:\n"
            "      - { name: v1, endpoints: [\"127.0.0.1:2\"] }\n    stable: v1\n",
            port, dir);
    fclose(f);
}

static void token_from_the_state_directory(void **state)
{
    static const char *const answers[] = {
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 61\r\n\r\n"
        "{\"error\":\"unauthorized\",\"message\":\"missing or unknown token\"}",
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 61\r\n\r\n"
        "{\"error\":\"unauthorized\",\"message\":\"missing or unknown token\"}",
        NULL};
    char dir[] = "/tmp/test_cli.XXXXXX", cfg[128], tok[160], want[512];
    const char *argv[] = {"status", "-c", cfg};
    struct server s;
    struct run r;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(tok, sizeof(tok), "%s/admin.token", dir);
    server_start(&s, answers, false);
    write_config(dir, s.port, cfg, sizeof(cfg));

    /* no token file: nothing sent, and the message says where it was looked for */
    run_cli(&r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    snprintf(want, sizeof(want),
             "firebreak: unauthorized: missing or unknown token\nfirebreak: no token was sent: "
             "FIREBREAK_TOKEN is not set and %s does not exist\n",
             tok);
    assert_string_equal(r.err, want);
    run_free(&r);

    /* the token file is read and trimmed */
    f = fopen(tok, "w");
    assert_non_null(f);
    fputs("  fbt_secret\n\n", f);
    fclose(f);
    run_cli(&r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    snprintf(want, sizeof(want), "firebreak: the token was read from %s\n", tok);
    assert_non_null(strstr(r.err, want));
    run_free(&r);
    server_stop(&s, false);
    assert_null(strstr(server_request(&s, 0), "Authorization"));
    assert_non_null(strstr(server_request(&s, 1), "\r\nAuthorization: Bearer fbt_secret\r\n"));
    unlink(tok);
    unlink(cfg);
    rmdir(dir);
}

static void environment_beats_config(void **state)
{
    static const char *const answers[] = {"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n"
                                          "{\"services\":[]}",
                                          NULL};
    char url[64];
    const char *argv[] = {"status", "-c", "/nonexistent/fb.yaml"};
    const char *plain[] = {"status"};
    struct server s;
    struct run r;

    /* a -c FILE that cannot be read fails the command */
    run_cli(&r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "/nonexistent/fb.yaml"));
    run_free(&r);

    server_start(&s, answers, false);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    setenv("FIREBREAK_ADMIN", url, 1);
    setenv("FIREBREAK_TOKEN", "from-env", 1);
    run_cli(&r, ARGC(plain), plain);
    unsetenv("FIREBREAK_ADMIN");
    unsetenv("FIREBREAK_TOKEN");
    server_stop(&s, false);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "no services\n");
    assert_non_null(strstr(server_request(&s, 0), "\r\nAuthorization: Bearer from-env\r\n"));
    run_free(&r);
}

#define EVENT(id, type, rel)                                                                       \
    "{\"id\":" #id ",\"time\":\"x\",\"time_ms\":" #id "000,\"type\":\"" type "\","                 \
    "\"actor\":\"ops\",\"service\":\"shop\",\"release\":" rel ",\"details\":{\"n\":" #id "}}"

static void events_follow_asks_after_the_last_id(void **state)
{
    char *a1 = ok_json("200 OK", "{\"events\":[" EVENT(1, "started", "null") "," EVENT(
                                     2, "release_added", "\"v2\"") "]}");
    char *a2 = ok_json("200 OK", "{\"events\":[" EVENT(3, "rollback", "\"v2\"") "]}");
    const char *answers[] = {a1, a2, NULL};
    const char *argv[] = {"events", "--follow", "--limit", "2", "--service", "shop"};
    struct server s;
    struct run r;

    /* the first answer is full, so the next call follows at once; the
     * second is not, so the third waits 500 ms and finds nobody: exit 1 */
    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_string_equal(
        r.out,
        "TIME                        ID  TYPE             ACTOR     SERVICE   RELEASE   DETAILS\n"
        "1970-01-01T00:00:01.000Z     1  started          ops       shop      -         n=1\n"
        "1970-01-01T00:00:02.000Z     2  release_added    ops       shop      v2        n=2\n"
        "1970-01-01T00:00:03.000Z     3  rollback         ops       shop      v2        n=3\n");
    assert_non_null(strstr(r.err, "cannot reach the admin API"));
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/events?service=shop&limit=2 "));
    assert_non_null(
        strstr(server_request(&s, 1), "GET /api/v1/events?service=shop&limit=2&after=2 "));
    run_free(&r);
    free(a1);
    free(a2);
}

static void token_create_prints_the_token_alone(void **state)
{
    char *answer = ok_json("201 Created", "{\"name\":\"ci\",\"role\":\"viewer\","
                                          "\"token\":\"fbt_abc\"}");
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"token", "create", "--role", "viewer", "--name", "ci"};
    const char *norole[] = {"token", "create", "--name", "ci"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "fbt_abc\n");
    assert_non_null(strstr(r.err, "shown only this once"));
    assert_non_null(strstr(server_request(&s, 0), "POST /api/v1/tokens HTTP/1.1\r\n"));
    assert_non_null(strstr(server_request(&s, 0), "{\"role\":\"viewer\",\"name\":\"ci\"}"));
    run_free(&r);
    free(answer);

    run_cli(&r, ARGC(norole), norole);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "missing --role"));
    run_free(&r);
}

static void unknown_commands_and_usage(void **state)
{
    const char *nope[] = {"nope"};
    const char *nosub[] = {"release"};
    const char *badsub[] = {"release", "rename"};
    const char *help[] = {"rollback", "--help"};
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    struct run r;

    run_cli(&r, 1, nope);
    assert_int_equal(r.rc, -1);
    run_free(&r);
    run_cli(&r, 1, nosub);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "usage: firebreak release list SERVICE"));
    run_free(&r);
    run_cli(&r, 2, badsub);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown subcommand 'rename' for 'release'"));
    run_free(&r);
    run_cli(&r, 2, help);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: firebreak rollback SERVICE [--reason TEXT]"));
    run_free(&r);

    f = open_memstream(&text, &len);
    cli_usage(f);
    fclose(f);
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        assert_true(strcspn(p, "\n") <= 100);
    assert_non_null(strstr(text, "  weights SERVICE RELEASE=PERCENT..."));
    assert_non_null(strstr(text, "  token create --role"));
    free(text);
}

/* ------------------------------------------- rollouts, incidents, journal */

struct future_case {
    const char *in;
    int64_t ms; /* -1: refused */
};

static void future_times(void **state)
{
    static const int64_t now = 1795717845599LL; /* 2026-11-26T18:30:45.599Z */
    static const struct future_case cases[] = {
        {"30m", now + 1800000},
        {"1h30m", now + 5400000},
        {"90s", now + 90000},
        {"2d", now + 172800000},
        {"250ms", now + 250},
        {"2026-11-26T18:30:45.599Z", now},
        {"2026-11-26T18:30:45Z", now - 599},
        {"2026-11-26T18:30:45.5Z", now - 99},
        {"2026-11-26T19:30:45.599+01:00", now},
        {"2026-11-26t18:30:45.599z", now},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
        {"1795717845599", now},
        {"", -1},
        {"0m", -1},
        {"30", 30},
        {"30x", -1},
        {"m", -1},
        {"-30m", -1},
        {"30m ", -1},
        {"400d", -1},
        {"99999999999999999999m", -1},
        {"2026-11-26T18:30:45", -1},
        {"2026-11-26 18:30:45Z", -1},
        {"2026-13-01T00:00:00Z", -1},
        {"2025-02-29T00:00:00Z", -1},
        {"2026-11-26T24:00:00Z", -1},
        {"2026-11-26T18:30:45.Z", -1},
        {"2026-11-26T18:30:45+1:00", -1},
        {"yesterday", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = 7;
        int rc = cli_parse_future_time(cases[i].in, now, &out);

        if (cases[i].ms < 0 && rc != -FB_EINVAL)
            fail_msg("'%s' accepted as %lld", cases[i].in, (long long)out);
        if (cases[i].ms >= 0 && (rc != 0 || out != cases[i].ms))
            fail_msg("'%s': rc %d, %lld, wanted %lld", cases[i].in, rc, (long long)out,
                     (long long)cases[i].ms);
    }
}

static void spans(void **state)
{
    static const struct {
        double s;
        const char *text;
    } cases[] = {{0, "0ms"},       {0.85, "850ms"}, {12.34, "12.3s"}, {59.9, "59.9s"},
                 {59.97, "1m00s"}, {245, "4m05s"},  {7380, "2h03m"},  {273600, "3d04h"},
                 {-120, "-2m00s"}, {-0.5, "-500ms"}};
    char out[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_format_span(cases[i].s, out, sizeof(out));
        if (strcmp(out, cases[i].text))
            fail_msg("%g: '%s', wanted '%s'", cases[i].s, out, cases[i].text);
    }
    cli_format_span(NAN, out, sizeof(out));
    assert_string_equal(out, "-");
}

struct usage_case {
    const char *argv[10];
    const char *why;
};

/* Usage errors exit 2 before anything is sent: --admin points nowhere. */
static void new_commands_usage_errors(void **state)
{
    static const struct usage_case cases[] = {
        {{"rollout", "start", "app"}, "missing argument"},
        {{"rollout", "start", "app", "v2", "--steps", "5%:20s,oops"}, "--steps: steps[1]"},
        {{"rollout", "start", "app", "v2", "--steps", "5%:20s,,100%"}, "--steps: "},
        {{"rollout", "abort"}, "missing argument"},
        {{"rollout", "abort", "app", "extra"}, "unexpected argument 'extra'"},
        {{"rollout", "stop", "app"}, "unknown subcommand 'stop' for 'rollout'"},
        {{"gate"}, "missing argument"},
        {{"incident", "declare", "--title", "t"}, "missing --severity"},
        {{"incident", "declare", "--title", "t", "--severity", "SEV5"}, "--severity is SEV1"},
        {{"incident", "declare", "--severity", "SEV2"}, "missing --title"},
        {{"incident", "update", "INC-1"}, "give --draft or --publish"},
        {{"incident", "update", "INC-1", "--draft", "--publish"}, "give --draft or --publish"},
        {{"incident", "update", "INC-1", "--draft", "--known", "x"}, "go with --publish"},
        {{"incident", "update", "INC-1", "--publish", "--audience", "all"}, "--audience is"},
        {{"incident", "update", "INC-1", "--publish", "--next-update", "soon"},
         "bad --next-update 'soon'"},
        {{"incident", "update", "INC-1", "--publish", "--draft=yes"}, "--draft takes no value"},
        {{"incident", "check", "INC-1"}, "missing argument"},
        {{"incident", "assign", "INC-1", "commander"}, "missing argument"},
        {{"incident", "action", "done", "INC-1", "x"}, "N is the action's number"},
        {{"incident", "action", "done", "INC-1", "0"}, "N is the action's number"},
        {{"incident", "action", "add", "INC-1", "--type", "later", "--text", "t"}, "--type is"},
        {{"incident", "action", "add", "INC-1", "--type", "detect"}, "missing --text"},
        {{"incident", "action"}, "'incident action' needs a subcommand"},
        {{"incident", "action", "redo", "INC-1"}, "unknown subcommand 'action redo'"},
        {{"incident", "show"}, "missing argument"},
        {{"journal", "impact", "app"}, "missing --release"},
        {{"journal", "export", "app", "--release", "v2"}, "missing --format"},
        {{"journal", "export", "app", "--release", "v2", "--format", "xml"}, "--format is csv"},
        {{"journal", "impact", "app", "--release", "v2", "--format", "csv"}, "unknown flag"},
    };
    const char *argv[12];
    struct run r;
    int argc;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (argc = 0; cases[i].argv[argc]; argc++)
            argv[argc] = cases[i].argv[argc];
        argv[argc++] = "--admin=127.0.0.1:1";
        run_cli(&r, argc, argv);
        if (r.rc != 2 || !strstr(r.err, cases[i].why) || !strstr(r.err, "usage: firebreak "))
            fail_msg("case %zu (%s %s): rc %d, err '%s', wanted '%s'", i, argv[0], argv[1], r.rc,
                     r.err, cases[i].why);
        assert_string_equal(r.out, "");
        run_free(&r);
    }
}

static void new_commands_help(void **state)
{
    const char *group[] = {"incident", "--help"};
    const char *action[] = {"incident", "action", "-h"};
    const char *update[] = {"incident", "update", "--help"};
    struct run r;

    run_cli(&r, ARGC(group), group);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: firebreak incident declare --title TEXT"));
    assert_non_null(strstr(r.out, "usage: firebreak incident action done ID N"));
    run_free(&r);
    run_cli(&r, ARGC(action), action);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: firebreak incident action add ID --type"));
    run_free(&r);
    run_cli(&r, ARGC(update), update);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: firebreak incident update ID --draft|--publish"));
    assert_non_null(strstr(r.out, "the draft is published as is"));
    run_free(&r);
}

/* The body of the i-th request the server received (after the head). */
static json_t *request_body(const struct server *s, size_t i)
{
    const char *req = server_request(s, i), *body = req ? strstr(req, "\r\n\r\n") : NULL;

    assert_non_null(body);
    return json_loads(body + 4, 0, NULL);
}

#define ROLLOUT_JSON                                                                               \
    "{\"id\":3,\"release\":\"v2\",\"stable\":\"v1\",\"actor\":\"ci\","                             \
    "\"steps\":[\"5%:120000ms\",\"50%:60000ms\",\"100%\"],\"step\":1,\"state\":\"paused\","        \
    "\"reason\":\"not enough evidence to go on: needs about 300 more canary requests\","           \
    "\"started_ms\":1795717845599,\"step_started_ms\":1795717905599,\"ended_ms\":0,"               \
    "\"weight\":50.0,\"step_of\":3,\"step_human\":2,\"hold_ms\":60000,\"time_left_ms\":83000,"     \
    "\"verdict\":{\"verdict\":\"inconclusive\",\"reason\":\"needs about 300 more canary "          \
    "requests\",\"needs_canary_requests\":300,\"windows\":240,\"paired_windows\":238,"             \
    "\"broken_windows\":2,\"alpha\":0.001,\"power\":0.95,\"min_error_ratio\":2.0,"                 \
    "\"max_latency_ratio\":1.25,\"latency_measured\":false,"                                       \
    "\"errors\":{\"outcome\":\"inconclusive\",\"canary\":{\"requests\":1200,\"events\":3,"         \
    "\"rate\":0.0025},\"stable\":{\"requests\":20000,\"events\":10,\"rate\":0.0005},"              \
    "\"ratio\":5.0,\"log_evalue\":2.1,\"log_fail_threshold\":7.013,\"design_llr\":1.2,"            \
    "\"log_pass_threshold\":-2.996},\"latency\":{\"outcome\":\"inconclusive\"},"                   \
    "\"summary\":\"inconclusive: needs about 300 more canary requests; errors ...\"}}"

static void rollout_status_is_readable(void **state)
{
    char *answer = ok_json("200 OK", ROLLOUT_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"rollout", "status", "app"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(
        r.out,
        "rollout    app#3: v2 against stable v1\n"
        "state      paused\n"
        "step       2 of 3 at 50%, hold 1m00s, 1m23s left\n"
        "steps      5%:120000ms 50%:60000ms 100%\n"
        "started    2026-11-26T18:30:45.599Z by ci\n"
        "reason     not enough evidence to go on: needs about 300 more canary requests\n"
        "verdict    inconclusive: needs about 300 more canary requests\n"
        "summary    inconclusive: needs about 300 more canary requests; errors ...\n"
        "windows    240 (238 with both releases, 2 broken); alpha 0.001, power 0.95, errors "
        "fail at 2x, latency at 1.25x\n"
        "needs      about 300 more canary requests\n"
        "TEST     OUTCOME       CANARY   RATE    STABLE   RATE  RATIO  LOG E-VALUE  FAILS AT  "
        " LLR  PASSES AT\n"
        "errors   inconclusive  3/1200  0.25%  10/20000  0.05%      5         2.10      7.01  "
        "1.20      -3.00\n"
        "latency  not measured       -      -         -      -      -            -         -  "
        "   -          -\n");
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/services/app/rollout HTTP/1.1"));
    run_free(&r);
    free(answer);
}

static void rollout_start_sends_the_steps(void **state)
{
    char *answer = ok_json("201 Created", ROLLOUT_JSON);
    const char *answers[] = {answer, answer, NULL};
    const char *argv[] = {"rollout", "start", "app", "v2", "--steps", "1%:60s,5%:2m,100%"};
    const char *abort_argv[] = {"rollout", "abort", "app"};
    json_t *body;
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "started the rollout of v2 to app\nrollout    app#3: v2"));
    assert_non_null(strstr(server_request(&s, 0), "POST /api/v1/services/app/rollout HTTP/1.1"));
    body = request_body(&s, 0);
    assert_string_equal(json_string_value(json_object_get(body, "release")), "v2");
    assert_int_equal(json_array_size(json_object_get(body, "steps")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(body, "steps"), 1)),
                        "5%:2m");
    json_decref(body);
    run_free(&r);

    run_against(&s, answers, &r, ARGC(abort_argv), abort_argv);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "aborted the rollout of app\n"));
    assert_non_null(
        strstr(server_request(&s, 0), "POST /api/v1/services/app/rollout/abort HTTP/1.1"));
    run_free(&r);
    free(answer);
}

static void gate_exit_code_follows_ok(void **state)
{
    char *open = ok_json("200 OK", "{\"service\":\"app\",\"ok\":true,\"reasons\":[]}");
    char *closed = ok_json("200 OK", "{\"service\":\"app\",\"ok\":false,\"reasons\":["
                                     "\"rollout app#3 of v2 is paused at step 2 of 3\","
                                     "\"incident INC-2 (SEV2, identified) is open: x\"]}");
    char *bad = ok_json("200 OK", "{\"service\":\"app\"}");
    const char *a_open[] = {open, NULL}, *a_closed[] = {closed, NULL}, *a_bad[] = {bad, NULL};
    const char *argv[] = {"gate", "app"};
    const char *json[] = {"gate", "app", "--json"};
    struct server s;
    struct run r;

    run_against(&s, a_open, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "open\n");
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/services/app/gate HTTP/1.1"));
    run_free(&r);
    run_against(&s, a_closed, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "closed: rollout app#3 of v2 is paused at step 2 of 3\n"
                               "closed: incident INC-2 (SEV2, identified) is open: x\n");
    run_free(&r);
    run_against(&s, a_closed, &r, ARGC(json), json);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.out, "\"ok\": false"));
    run_free(&r);
    run_against(&s, a_bad, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no \"ok\""));
    run_free(&r);
    free(open);
    free(closed);
    free(bad);
}

#define INCIDENT_JSON                                                                              \
    "{\"id\":\"INC-2\",\"title\":\"app release v2 rolled back automatically (judge)\","            \
    "\"severity\":\"SEV2\",\"status\":\"identified\",\"services\":[\"app\"],"                      \
    "\"release\":\"v2\",\"stable\":\"v1\",\"rollout\":\"app#3\",\"automatic\":true,"               \
    "\"suggested_severity\":\"SEV2\",\"postmortem_due\":false,"                                    \
    "\"roles\":{\"commander\":\"Ada Lovelace\",\"comms\":null,\"ops\":null,\"scribe\":null},"      \
    "\"checklist\":{\"comprehend\":{\"state\":\"done\",\"time\":\"2026-11-26T18:31:00.000Z\"},"    \
    "\"contain\":{\"state\":\"done\",\"time\":\"2026-11-26T18:31:00.000Z\"},"                      \
    "\"learn\":{\"state\":\"open\",\"time\":null}},"                                               \
    "\"caused_by\":{\"type\":\"rollout\",\"rollout\":\"app#3\",\"release\":\"v2\","                \
    "\"started_ms\":1795717800000},"                                                               \
    "\"fixed_by\":{\"type\":\"rollback\",\"trigger\":\"judge\",\"reason\":\"errors 20x\","         \
    "\"time_ms\":1795717860000},"                                                                  \
    "\"times\":{\"impact_start_ms\":1795717845599,\"detected_ms\":1795717860000,"                  \
    "\"declared_ms\":1795717860000,\"contained_ms\":1795717860000,\"resolved_ms\":null},"          \
    "\"durations\":{\"time_to_detect_s\":14.401,\"time_to_contain_s\":14.401,"                     \
    "\"time_to_resolve_s\":null},"                                                                 \
    "\"impact\":{\"release\":\"v2\",\"requests_failed\":57,\"requests_served\":290,"               \
    "\"peak_error_rate\":0.25,\"users_affected\":41,\"writes\":3,\"duration_s\":14.401,"           \
    "\"users_dropped\":0,\"journal\":{\"writes\":3,\"identities\":2,\"entities\":3,"               \
    "\"dropped\":0,\"identity_list\":[\"u-1\",\"u-2\"],\"entity_list\":[\"/o/1\"]}},"              \
    "\"updates\":[{\"audience\":\"internal\",\"author\":\"ops\","                                  \
    "\"published_ms\":1795717900000,\"text\":\"We know.\\nNext update by then.\"}],"               \
    "\"actions\":[{\"id\":1,\"type\":\"detect\",\"text\":\"alert on 5xx\",\"owner\":\"sre\","      \
    "\"status\":\"open\"}],"                                                                       \
    "\"timeline\":[{\"id\":7,\"time_ms\":1795717800000,\"t_plus_s\":-45.599,"                      \
    "\"type\":\"rollout_started\",\"actor\":\"ci\",\"service\":\"app\",\"release\":\"v2\","        \
    "\"details\":{\"step\":1}},"                                                                   \
    "{\"id\":9,\"time_ms\":1795717860000,\"t_plus_s\":14.401,\"type\":\"incident_declared\","      \
    "\"actor\":\"system\",\"service\":\"app\",\"release\":\"v2\",\"details\":{\"incident\":"       \
    "\"INC-2\",\"title\":\"t\",\"severity\":\"SEV2\",\"status\":\"identified\","                   \
    "\"evidence\":{\"big\":1}}}]}"

static void incident_show_is_readable(void **state)
{
    char *answer = ok_json("200 OK", INCIDENT_JSON);
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"incident", "show", "INC-2"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(server_request(&s, 0), "GET /api/v1/incidents/INC-2 HTTP/1.1"));
    assert_non_null(strstr(r.out, "INC-2  SEV2  identified  app release v2 rolled back "
                                  "automatically (judge)\n"));
    assert_non_null(strstr(r.out, "release       v2 (stable v1, rollout app#3)\n"));
    assert_non_null(strstr(r.out, "caused by     rollout app#3 of release v2, started "
                                  "2026-11-26T18:30:00.000Z\n"));
    assert_non_null(strstr(r.out, "fixed by      rollback by judge at 2026-11-26T18:31:00.000Z: "
                                  "errors 20x\n"));
    assert_non_null(strstr(r.out, "  impact_start  2026-11-26T18:30:45.599Z    T+0ms\n"
                                  "  detected      2026-11-26T18:31:00.000Z  T+14.4s\n"));
    assert_non_null(strstr(r.out, "  resolved      -                               -\n"));
    assert_non_null(strstr(r.out, "time to detect 14.4s, to contain 14.4s, to resolve -\n"));
    assert_non_null(strstr(r.out, "release v2: 57 of 290 requests failed, peak error rate "
                                  "25.0%\n  41 users affected, 3 write requests, lasted "
                                  "14.4s\n"));
    assert_non_null(strstr(r.out, "journal: 3 writes by 2 identities to 3 records, 0 records "
                                  "dropped\n"));
    assert_non_null(strstr(r.out, "  identities: u-1, u-2\n  records: /o/1, ... 2 more\n"));
    assert_null(strstr(r.out, "warning"));
    assert_non_null(strstr(r.out, "  commander  Ada Lovelace\n  comms      -\n"));
    assert_non_null(strstr(r.out, "  contain     done   2026-11-26T18:31:00.000Z\n"));
    assert_non_null(strstr(r.out, "  learn       open   -\n"));
    assert_non_null(strstr(r.out, "internal update by ops\n    We know.\n    Next update by "
                                  "then.\n"));
    assert_non_null(strstr(r.out, "1  detect  open    sre    alert on 5xx\n"));
    /* the timeline: absolute and T+ times; the repeated incident fields and the
     * evidence are left out of the details */
    assert_non_null(strstr(r.out, "2026-11-26T18:30:00.000Z  T-45.6s  rollout_started    ci"));
    assert_non_null(strstr(r.out, "2026-11-26T18:31:00.000Z  T+14.4s  incident_declared  "
                                  "system  v2       status=identified\n"));
    assert_null(strstr(r.out, "big"));
    run_free(&r);
    free(answer);
}

static void incident_list_and_declare(void **state)
{
    char *list = ok_json("200 OK", "{\"incidents\":[{\"id\":\"INC-1\",\"severity\":\"SEV1\","
                                   "\"status\":\"resolved\",\"title\":\"down\",\"services\":"
                                   "[\"app\",\"web\"],\"times\":{\"declared_ms\":1795717845599},"
                                   "\"postmortem_due\":true},{\"id\":\"INC-2\",\"severity\":"
                                   "\"SEV3\",\"status\":\"monitoring\",\"title\":\"slow\","
                                   "\"services\":[],\"times\":{\"declared_ms\":1795717905599},"
                                   "\"postmortem_due\":false}]}");
    char *declared = ok_json("201 Created", "{\"id\":\"INC-3\",\"status\":\"investigating\"}");
    const char *a_list[] = {list, NULL}, *a_decl[] = {declared, NULL};
    const char *argv[] = {"incident", "list"};
    const char *decl[] = {"incident", "declare",   "--title", "checkout errors", "--severity",
                          "SEV2",     "--service", "app",     "--service=web"};
    json_t *body;
    struct server s;
    struct run r;

    run_against(&s, a_list, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(
        r.out,
        "ID     SEVERITY  STATUS      TITLE  SERVICES  DECLARED                  POSTMORTEM\n"
        "INC-1  SEV1      resolved    down   app, web  2026-11-26T18:30:45.599Z  due\n"
        "INC-2  SEV3      monitoring  slow             2026-11-26T18:31:45.599Z  \n");
    run_free(&r);

    run_against(&s, a_decl, &r, ARGC(decl), decl);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "declared INC-3 (SEV2, investigating): checkout errors\n");
    assert_non_null(strstr(server_request(&s, 0), "POST /api/v1/incidents HTTP/1.1"));
    body = request_body(&s, 0);
    assert_string_equal(json_string_value(json_object_get(body, "title")), "checkout errors");
    assert_string_equal(json_string_value(json_object_get(body, "severity")), "SEV2");
    assert_int_equal(json_array_size(json_object_get(body, "services")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(body, "services"), 1)),
                        "web");
    json_decref(body);
    run_free(&r);
    free(list);
    free(declared);
}

static void incident_changes_send_their_fields(void **state)
{
    char *answer = ok_json("200 OK", "{\"id\":\"INC-2\",\"actions\":[{},{}]}");
    const char *answers[] = {answer, NULL};
    static const struct {
        const char *argv[12];
        const char *line, *body, *out;
    } cases[] = {
        {{"incident", "assign", "INC-2", "commander", "Ada", "Lovelace"},
         "POST /api/v1/incidents/INC-2/assign ",
         "{\"role\":\"commander\",\"name\":\"Ada Lovelace\"}",
         "INC-2: commander is Ada Lovelace\n"},
        {{"incident", "note", "INC-2", "rolled", "back,", "watching"},
         "POST /api/v1/incidents/INC-2/notes ",
         "{\"text\":\"rolled back, watching\"}",
         "added a note to INC-2\n"},
        {{"incident", "status", "INC-2", "monitoring"},
         "POST /api/v1/incidents/INC-2/status ",
         "{\"status\":\"monitoring\"}",
         "INC-2 is monitoring\n"},
        {{"incident", "resolve", "INC-2"},
         "POST /api/v1/incidents/INC-2/resolve ",
         "{}",
         "resolved INC-2\n"},
        {{"incident", "check", "INC-2", "learn"},
         "POST /api/v1/incidents/INC-2/checklist ",
         "{\"item\":\"learn\",\"done\":true}",
         "INC-2: learn is done\n"},
        {{"incident", "check", "INC-2", "learn", "--undo"},
         "POST /api/v1/incidents/INC-2/checklist ",
         "{\"item\":\"learn\",\"done\":false}",
         "INC-2: learn is open\n"},
        {{"incident", "action", "add", "INC-2", "--type", "prevent", "--text", "lint", "--owner",
          "sre"},
         "POST /api/v1/incidents/INC-2/actions ",
         "{\"type\":\"prevent\",\"text\":\"lint\",\"owner\":\"sre\"}",
         "added action 2 to INC-2\n"},
        {{"incident", "action", "done", "INC-2", "2"},
         "POST /api/v1/incidents/INC-2/actions/2/done ",
         NULL,
         "action 2 of INC-2 is done\n"},
        {{"incident", "status", "INC 2/x", "monitoring"},
         "POST /api/v1/incidents/INC%202%2Fx/status ",
         "{\"status\":\"monitoring\"}",
         NULL},
    };
    const char *argv[12];
    struct server s;
    struct run r;
    int argc;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *req;

        for (argc = 0; cases[i].argv[argc]; argc++)
            argv[argc] = cases[i].argv[argc];
        run_against(&s, answers, &r, argc, argv);
        req = server_request(&s, 0);
        if (r.rc != 0 || !strstr(req, cases[i].line))
            fail_msg("case %zu: rc %d, err '%s', request '%.80s'", i, r.rc, r.err, req);
        if (cases[i].body) {
            json_t *want = json_loads(cases[i].body, 0, NULL), *got = request_body(&s, 0);

            if (!json_equal(want, got))
                fail_msg("case %zu: body '%s'", i, strstr(req, "\r\n\r\n") + 4);
            json_decref(want);
            json_decref(got);
        }
        if (cases[i].out)
            assert_string_equal(r.out, cases[i].out);
        run_free(&r);
    }
    free(answer);
}

static void update_draft_and_publish(void **state)
{
    char *draft = ok_json("200 OK", "{\"audience\":\"public\",\"status\":\"identified\","
                                    "\"known\":\"Some requests failed.\",\"unknown\":\"the root "
                                    "cause.\",\"next_steps\":\"We fix it.\",\"next_update\":"
                                    "\"2026-11-26T19:00:00.000Z\",\"next_update_ms\":"
                                    "1795719600000}");
    char *published = ok_json("201 Created", "{\"id\":\"INC-2\",\"updates\":[{\"audience\":"
                                             "\"internal\",\"text\":\"old\"},{\"audience\":"
                                             "\"public\",\"text\":\"Some.\\nNext update by "
                                             "19:00.\"}]}");
    char *refused =
        ok_json("400 Bad Request", "{\"error\":\"invalid\",\"message\":\"an update needs "
                                   "\\\"next_update\\\": a time in the future\"}");
    const char *a_draft[] = {draft, NULL}, *a_pub[] = {published, NULL};
    const char *a_refused[] = {refused, NULL};
    const char *d[] = {"incident", "update", "INC-2", "--draft", "--audience", "public"};
    const char *p_draft[] = {"incident", "update", "INC-2", "--publish", "--audience=public"};
    const char *p_text[] = {"incident",     "update", "INC-2",         "--publish",
                            "--known",      "k",      "--unknown",     "u",
                            "--next-steps", "n",      "--next-update", "30m"};
    const char *p_short[] = {"incident", "update", "INC-2", "--publish", "--known", "k"};
    int64_t before, after, next;
    json_t *body, *want;
    struct server s;
    struct run r;

    run_against(&s, a_draft, &r, ARGC(d), d);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(server_request(&s, 0),
                           "GET /api/v1/incidents/INC-2/updates/draft?audience=public HTTP/1.1"));
    assert_string_equal(r.out, "draft public update of INC-2 (status identified)\n"
                               "known:        Some requests failed.\n"
                               "unknown:      the root cause.\n"
                               "next steps:   We fix it.\n"
                               "next update:  2026-11-26T19:00:00.000Z\n");
    run_free(&r);

    /* no text flag: the draft as it stands */
    run_against(&s, a_pub, &r, ARGC(p_draft), p_draft);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(server_request(&s, 0), "POST /api/v1/incidents/INC-2/updates "));
    body = request_body(&s, 0);
    want = json_pack("{s:s, s:b}", "audience", "public", "draft", 1);
    assert_true(json_equal(body, want));
    json_decref(want);
    json_decref(body);
    assert_string_equal(r.out, "published public update of INC-2\n  Some.\n  Next update by "
                               "19:00.\n");
    run_free(&r);

    /* text flags: exactly those, and the next update 30 minutes from now */
    before = fb_wall_ms();
    run_against(&s, a_pub, &r, ARGC(p_text), p_text);
    after = fb_wall_ms();
    assert_int_equal(r.rc, 0);
    body = request_body(&s, 0);
    assert_string_equal(json_string_value(json_object_get(body, "known")), "k");
    assert_string_equal(json_string_value(json_object_get(body, "unknown")), "u");
    assert_string_equal(json_string_value(json_object_get(body, "next_steps")), "n");
    assert_null(json_object_get(body, "draft"));
    next = json_integer_value(json_object_get(body, "next_update_ms"));
    assert_true(next >= before + 1800000 && next <= after + 1800000);
    json_decref(body);
    run_free(&r);

    /* the API's refusal is shown as it came */
    run_against(&s, a_refused, &r, ARGC(p_short), p_short);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "firebreak: invalid: an update needs \"next_update\": a time in "
                               "the future\n");
    body = request_body(&s, 0);
    assert_int_equal(json_object_size(body), 2); /* audience and known */
    json_decref(body);
    run_free(&r);
    free(draft);
    free(published);
    free(refused);
}

static void postmortem_print_keeps_stdout_markdown(void **state)
{
    char *answer =
        ok_json("201 Created", "{\"id\":\"INC-2\",\"path\":\"/s/postmortems/INC-2.md\","
                               "\"markdown\":\"# Postmortem: INC-2\\n\\n## Summary\\n\"}");
    const char *answers[] = {answer, NULL};
    const char *plain[] = {"incident", "postmortem", "INC-2"};
    const char *print[] = {"incident", "postmortem", "INC-2", "--print"};
    struct server s;
    struct run r;

    run_against(&s, answers, &r, ARGC(plain), plain);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "postmortem of INC-2 written on the server to "
                               "/s/postmortems/INC-2.md\n");
    assert_non_null(strstr(server_request(&s, 0), "POST /api/v1/incidents/INC-2/postmortem "));
    run_free(&r);
    run_against(&s, answers, &r, ARGC(print), print);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "# Postmortem: INC-2\n\n## Summary\n");
    assert_non_null(strstr(r.err, "/s/postmortems/INC-2.md"));
    run_free(&r);
    free(answer);
}

#define IMPACT_JSON(dropped)                                                                       \
    "{\"service\":\"app\",\"release\":\"v2\",\"since\":null,\"until\":null,\"writes\":12,"         \
    "\"first\":\"2026-11-26T18:30:45.599Z\",\"last\":\"2026-11-26T18:31:00.000Z\","                \
    "\"first_ms\":1795717845599,\"last_ms\":1795717860000,"                                        \
    "\"by_route\":[{\"route\":\"POST /orders\",\"status\":201,\"writes\":9},"                      \
    "{\"route\":\"PUT /orders/:id\",\"status\":500,\"writes\":3}],\"by_route_cut\":false,"         \
    "\"identities\":12,\"anonymous_writes\":0,\"identity_list\":["                                 \
    "{\"identity\":\"u-1\",\"writes\":1},{\"identity\":\"u-10\",\"writes\":1},"                    \
    "{\"identity\":\"u-11\",\"writes\":1},{\"identity\":\"u-12\",\"writes\":1},"                   \
    "{\"identity\":\"u-2\",\"writes\":1},{\"identity\":\"u-3\",\"writes\":1},"                     \
    "{\"identity\":\"u-4\",\"writes\":1},{\"identity\":\"u-5\",\"writes\":1},"                     \
    "{\"identity\":\"u-6\",\"writes\":1},{\"identity\":\"u-7\",\"writes\":1},"                     \
    "{\"identity\":\"u-8\",\"writes\":1},{\"identity\":\"u-9\",\"writes\":1}],"                    \
    "\"identity_list_cut\":false,\"entities\":3,\"writes_without_entity\":9,"                      \
    "\"entity_list\":[{\"entity\":\"/orders/1\",\"writes\":1},{\"entity\":\"/orders/2\","          \
    "\"writes\":1},{\"entity\":\"/orders/3\",\"writes\":1}],\"entity_list_cut\":false,"            \
    "\"dropped\":" #dropped ",\"complete\":true}"

static void journal_impact_always_shows_drops(void **state)
{
    char *clean = ok_json("200 OK", IMPACT_JSON(0)), *lossy = ok_json("200 OK", IMPACT_JSON(4));
    const char *a_clean[] = {clean, NULL}, *a_lossy[] = {lossy, NULL};
    const char *argv[] = {"journal", "impact", "app",     "--release",           "v2",
                          "--since", "2h",     "--until", "2026-11-26T19:00:00Z"};
    struct server s;
    struct run r;

    run_against(&s, a_clean, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(server_request(&s, 0),
                           "GET /api/v1/services/app/journal/impact?release=v2&since=2h&until="
                           "2026-11-26T19%3A00%3A00Z HTTP/1.1"));
    assert_string_equal(
        r.out, "writes of release v2 to app\n"
               "writes     12\n"
               "first      2026-11-26T18:30:45.599Z\n"
               "last       2026-11-26T18:31:00.000Z\n"
               "dropped    0\n"
               "identities 12 distinct: u-1 (1), u-10 (1), u-11 (1), u-12 (1), u-2 (1), u-3 (1), "
               "u-4 (1), u-5 (1), u-6 (1), u-7 (1), ... 2 more\n"
               "entities   3 distinct (9 writes without one): /orders/1 (1), /orders/2 (1), "
               "/orders/3 (1)\n"
               "ROUTE            STATUS  WRITES\n"
               "POST /orders        201       9\n"
               "PUT /orders/:id     500       3\n");
    assert_string_equal(r.err, "");
    run_free(&r);

    run_against(&s, a_lossy, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "dropped    4\nWARNING    4 records dropped: "));
    assert_non_null(strstr(r.err, "firebreak: warning: 4 records dropped"));
    run_free(&r);
    free(clean);
    free(lossy);
}

static void journal_export_passes_the_body_through(void **state)
{
    static const char csv[] = "id,time,identity\r\n1,2026-11-26T18:30:45.599Z,\"a,b\"\r\n"
                              "2,2026-11-26T18:30:46.000Z,\xc3\xa9\r\n";
    char answer[512];
    const char *answers[] = {answer, NULL};
    const char *argv[] = {"journal", "export", "my app", "--release", "v2", "--format", "csv"};
    struct server s;
    struct run r;

    snprintf(answer, sizeof(answer),
             "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(csv), csv);
    run_against(&s, answers, &r, ARGC(argv), argv);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, csv);
    assert_non_null(strstr(server_request(&s, 0),
                           "GET /api/v1/services/my%20app/journal/export?release=v2&format=csv "));
    run_free(&r);
}

static int setup(void **state)
{
    unsetenv("FIREBREAK_ADMIN");
    unsetenv("FIREBREAK_TOKEN");
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(percent_parsing),
        cmocka_unit_test(weight_arguments),
        cmocka_unit_test(counts),
        cmocka_unit_test(url_parsing),
        cmocka_unit_test(escaping),
        cmocka_unit_test(arguments_in_any_order),
        cmocka_unit_test(switches_and_short_config),
        cmocka_unit_test(bad_arguments_are_named),
        cmocka_unit_test(help_skips_argument_checks),
        cmocka_unit_test(weights_and_durations),
        cmocka_unit_test(times_in_utc),
        cmocka_unit_test(details_read_as_key_value),
        cmocka_unit_test(tables_align),
        cmocka_unit_test(content_length_answer),
        cmocka_unit_test(chunked_answer_after_100_continue),
        cmocka_unit_test(body_until_close),
        cmocka_unit_test(bad_answers_are_named),
        cmocka_unit_test(chunked_body_over_the_limit),
        cmocka_unit_test(limits_are_exact),
        cmocka_unit_test(refused_connection),
        cmocka_unit_test(silent_server_times_out),
        cmocka_unit_test(bad_requests_are_not_sent),
        cmocka_unit_test(status_prints_a_table),
        cmocka_unit_test(json_flag_prints_the_answer),
        cmocka_unit_test(conflict_prints_the_api_message),
        cmocka_unit_test(non_json_error_shows_status),
        cmocka_unit_test(malformed_answer_fails_the_command),
        cmocka_unit_test(weights_sends_basis_point_exact_numbers),
        cmocka_unit_test(weights_syntax_is_checked_before_sending),
        cmocka_unit_test(rollback_prints_weights_and_time),
        cmocka_unit_test(release_add_sends_every_endpoint),
        cmocka_unit_test(remove_answers_204),
        cmocka_unit_test(connection_refused_says_so),
        cmocka_unit_test(token_from_the_state_directory),
        cmocka_unit_test(environment_beats_config),
        cmocka_unit_test(events_follow_asks_after_the_last_id),
        cmocka_unit_test(token_create_prints_the_token_alone),
        cmocka_unit_test(unknown_commands_and_usage),
        cmocka_unit_test(future_times),
        cmocka_unit_test(spans),
        cmocka_unit_test(new_commands_usage_errors),
        cmocka_unit_test(new_commands_help),
        cmocka_unit_test(rollout_status_is_readable),
        cmocka_unit_test(rollout_start_sends_the_steps),
        cmocka_unit_test(gate_exit_code_follows_ok),
        cmocka_unit_test(incident_show_is_readable),
        cmocka_unit_test(incident_list_and_declare),
        cmocka_unit_test(incident_changes_send_their_fields),
        cmocka_unit_test(update_draft_and_publish),
        cmocka_unit_test(postmortem_print_keeps_stdout_markdown),
        cmocka_unit_test(journal_impact_always_shows_drops),
        cmocka_unit_test(journal_export_passes_the_body_through),
    };

    return cmocka_run_group_tests_name("cli", tests, setup, NULL);
}
