/*
 * cmd_status.c: `status`, `events` and `token create|list`: the read-mostly
 * commands.
 *
 * status: GET /api/v1/services[/{s}]; per service a header line and a table
 * with one row per endpoint: release, weight, stable mark, live rates
 * (requests/s, error percentage, p99), endpoint address and state.
 *
 * events: GET /api/v1/events with since/service/limit; --follow then asks
 * again with after=LAST_ID every follow_interval_ms (500) until interrupted,
 * at once while answers come back full. With --json a single answer prints
 * as it came; followed events print one compact JSON object per line.
 *
 * token create prints the new token alone on stdout (so it can be captured
 * by a script) and says on stderr that it is shown only once.
 *
 * Cost: one request per command, one per poll while following.
 */
#include <poll.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/client.h"
#include "firebreak/err-t.h"

#define STATUS_COLS "RELEASE,>WEIGHT%,STABLE,>RPS,>ERRORS,>P99 MS,ENDPOINT,STATE"
#define EVENTS_COLS "TIME,>ID,TYPE,ACTOR,SERVICE,RELEASE,DETAILS"
#define EVENTS_DEFAULT_LIMIT 500

/* ------------------------------------------------------------- status */

/* "healthy", "probing", "ejected until 2026-11-26T18:30:45.599Z". */
static void endpoint_state(const json_t *ep, char *out, size_t len)
{
    const char *state = cli_json_str(ep, "state");
    char until[64];

    cli_format_time(ep, "ejected_until", until, sizeof(until));
    if (state && !strcmp(state, "ejected") && strcmp(until, "-"))
        snprintf(out, len, "ejected until %s", until);
    else
        snprintf(out, len, "%s", state ? state : "-");
}

struct rel_cells {
    char weight[32], rps[32], errors[32], p99[32];
};

static void release_cells(const json_t *rel, struct rel_cells *c)
{
    const json_t *rates = json_object_get(rel, "rates");
    double v;

    snprintf(c->weight, sizeof(c->weight), "-");
    snprintf(c->rps, sizeof(c->rps), "-");
    snprintf(c->errors, sizeof(c->errors), "-");
    snprintf(c->p99, sizeof(c->p99), "-");
    if (cli_json_num(rel, "weight", &v))
        cli_format_weight(v, true, c->weight, sizeof(c->weight));
    if (cli_json_num(rates, "rps", &v))
        snprintf(c->rps, sizeof(c->rps), "%.1f", v);
    if (cli_json_num(rates, "error_rate", &v))
        snprintf(c->errors, sizeof(c->errors), "%.2f%%", v * 100);
    if (cli_json_num(rates, "p99_ms", &v))
        snprintf(c->p99, sizeof(c->p99), "%.1f", v);
}

/* One row per endpoint; the release's columns only on its first row. */
static void release_rows(struct cli_table *t, const json_t *rel)
{
    const json_t *eps = json_object_get(rel, "endpoints"), *ep;
    const char *stable = json_is_true(json_object_get(rel, "stable")) ? "yes" : "";
    struct rel_cells c;
    char state[128];
    size_t i;

    release_cells(rel, &c);
    if (json_array_size(eps) == 0) {
        const char *row[] = {
            cli_json_str(rel, "name"), c.weight, stable, c.rps, c.errors, c.p99, NULL, NULL};
        cli_table_add(t, row);
        return;
    }
    for (i = 0; i < json_array_size(eps); i++) {
        ep = json_array_get(eps, i);
        const char *addr = json_is_string(ep) ? json_string_value(ep) : cli_json_str(ep, "address");
        bool first = i == 0;

        endpoint_state(ep, state, sizeof(state));
        const char *row[] = {first ? cli_json_str(rel, "name") : "",
                             first ? c.weight : "",
                             first ? stable : "",
                             first ? c.rps : "",
                             first ? c.errors : "",
                             first ? c.p99 : "",
                             addr,
                             state};
        cli_table_add(t, row);
    }
}

static int print_service(struct cli_ctx *ctx, const json_t *svc)
{
    const json_t *rels;
    const char *prev = cli_json_str(svc, "previous"), *name = cli_json_str(svc, "name");
    const char *stable = cli_json_str(svc, "stable");
    struct cli_table t;
    size_t i;
    int rc;

    fputs("service ", ctx->out);
    cli_put_clean(ctx->out, name ? name : "?");
    fputs("  stable ", ctx->out);
    cli_put_clean(ctx->out, stable ? stable : "-");
    if (prev) {
        fputs("  previous ", ctx->out);
        cli_put_clean(ctx->out, prev);
    }
    fputc('\n', ctx->out);
    cli_table_init(&t, STATUS_COLS);
    rels = json_object_get(svc, "releases");
    for (i = 0; i < json_array_size(rels); i++)
        release_rows(&t, json_array_get(rels, i));
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    return rc ? 1 : 0;
}

int cli_status(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    const json_t *svc;
    json_t *answer = NULL;
    size_t i;
    int rc = 0;

    if (a->npos)
        rc = cli_service_path(&path, a->pos[0], NULL, NULL);
    else
        fb_buf_init(&path, 64);
    if (rc == 0 && !a->npos)
        rc = fb_buf_puts(&path, "/api/v1/services");
    if (rc) {
        fb_buf_release(&path);
        return cli_usage_error(ctx, "service name too long");
    }
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json) {
        cli_print_json(ctx, answer);
    } else if (rc == 0 && a->npos) {
        rc = print_service(ctx, answer);
    } else if (rc == 0) {
        if (json_array_size(json_object_get(answer, "services")) == 0)
            fputs("no services\n", ctx->out);
        for (i = 0; i < json_array_size(json_object_get(answer, "services")); i++) {
            svc = json_array_get(json_object_get(answer, "services"), i);
            if (i)
                fputc('\n', ctx->out);
            rc |= print_service(ctx, svc);
        }
    }
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

/* ------------------------------------------------------------- events */

struct follow {
    long long last_id; /* largest id seen; 0 before any */
    bool heading_done;
};

static int events_path(const struct cli_args *a, long long after, struct fb_buf *b)
{
    static const struct {
        enum cli_flag_id id;
        const char *param;
    } params[] = {{CLI_F_SINCE, "since"}, {CLI_F_SERVICE, "service"}, {CLI_F_LIMIT, "limit"}};
    char sep = '?';
    int rc;

    fb_buf_init(b, 8192);
    rc = fb_buf_puts(b, "/api/v1/events");
    for (size_t i = 0; rc == 0 && i < sizeof(params) / sizeof(params[0]); i++) {
        const char *v = a->flag[params[i].id];

        if (!v)
            continue;
        rc = fb_buf_printf(b, "%c%s=", sep, params[i].param);
        if (rc == 0)
            rc = client_escape(b, v);
        sep = '&';
    }
    if (rc == 0 && after > 0)
        rc = fb_buf_printf(b, "%cafter=%lld", sep, after);
    return rc;
}

static void event_row(struct cli_table *t, const json_t *ev, struct fb_buf *details)
{
    char time[64], id[32];
    const json_t *jid = json_object_get(ev, "id");

    cli_format_time(ev, "time", time, sizeof(time));
    if (json_is_integer(jid))
        snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(jid));
    else
        snprintf(id, sizeof(id), "-");
    fb_buf_reset(details);
    if (cli_format_details(json_object_get(ev, "details"), details))
        fb_buf_reset(details);
    const char *row[] = {time,
                         id,
                         cli_json_str(ev, "type"),
                         cli_json_str(ev, "actor"),
                         cli_json_str(ev, "service"),
                         cli_json_str(ev, "release"),
                         details->len ? details->data : ""};
    cli_table_add(t, row);
}

/* Prints a batch of events and notes the largest id. In follow mode columns
 * have minimum widths, so that batches line up, and the heading is printed
 * once. */
static int print_events(struct cli_ctx *ctx, const json_t *events, struct follow *f, bool following)
{
    static const size_t min_width[] = {24, 4, 15, 8, 8, 8, 0};
    struct cli_table t;
    struct fb_buf details;
    const json_t *ev, *jid;
    size_t i;
    int rc = 0;

    cli_table_init(&t, EVENTS_COLS);
    fb_buf_init(&details, 1u << 16);
    if (following)
        memcpy(t.min_width, min_width, sizeof(min_width));
    for (i = 0; i < json_array_size(events); i++) {
        ev = json_array_get(events, i);
        jid = json_object_get(ev, "id");
        if (json_is_integer(jid) && json_integer_value(jid) > f->last_id)
            f->last_id = json_integer_value(jid);
        if (ctx->json) {
            json_dumpf(ev, ctx->out, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
            fputc('\n', ctx->out);
        } else {
            event_row(&t, ev, &details);
        }
    }
    if (!ctx->json && !following && t.nrows == 1) {
        fputs("no events\n", ctx->out);
    } else if (!ctx->json && t.nrows > 1) {
        rc = cli_table_print(&t, ctx->out, !f->heading_done);
        f->heading_done = following;
    }
    fflush(ctx->out);
    cli_table_release(&t);
    fb_buf_release(&details);
    return rc ? 1 : 0;
}

/* One GET of the events; *count is how many came back. */
static int events_fetch(struct cli_ctx *ctx, const struct cli_args *a, struct follow *f,
                        size_t *count)
{
    struct fb_buf path;
    json_t *answer = NULL;
    const json_t *events;
    int rc;

    *count = 0;
    if (events_path(a, f->last_id, &path)) {
        fb_buf_release(&path);
        return cli_usage_error(ctx, "--since or --service too long");
    }
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    events = json_object_get(answer, "events");
    if (rc == 0 && ctx->json && !a->flag[CLI_F_FOLLOW]) {
        cli_print_json(ctx, answer);
    } else if (rc == 0) {
        *count = json_array_size(events);
        rc = print_events(ctx, events, f, a->flag[CLI_F_FOLLOW] != NULL);
    }
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_events(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct follow f = {0};
    long limit = EVENTS_DEFAULT_LIMIT;
    size_t count;
    int rc;

    if (a->flag[CLI_F_LIMIT] && cli_parse_count(a->flag[CLI_F_LIMIT], 1000000, &limit))
        return cli_usage_error(ctx, "--limit takes a whole number from 1 up");
    rc = events_fetch(ctx, a, &f, &count);
    while (rc == 0 && a->flag[CLI_F_FOLLOW]) {
        if (count < (size_t)limit)
            poll(NULL, 0, ctx->follow_interval_ms);
        rc = events_fetch(ctx, a, &f, &count);
    }
    return rc;
}

/* -------------------------------------------------------------- tokens */

int cli_token_create(struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *name = a->flag[CLI_F_NAME], *token;
    json_t *body, *answer = NULL;
    int rc;

    body = json_pack("{s:s}", "role", a->flag[CLI_F_ROLE]);
    if (body && name && json_object_set_new(body, "name", json_string(name))) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        return cli_usage_error(ctx, "--role and --name must be valid UTF-8");
    rc = cli_call(ctx, "POST", "/api/v1/tokens", body, &answer) ? 1 : 0;
    token = cli_json_str(answer, "token");
    if (rc == 0 && ctx->json) {
        cli_print_json(ctx, answer);
    } else if (rc == 0 && !token) {
        fprintf(ctx->err, "firebreak: bad_response: the answer holds no token\n");
        rc = 1;
    } else if (rc == 0) {
        name = cli_json_str(answer, "name");
        cli_put_clean(ctx->out, token);
        fputc('\n', ctx->out);
        fputs("created token ", ctx->err);
        cli_put_clean(ctx->err, name ? name : "(unnamed)");
        fputs(" with role ", ctx->err);
        cli_put_clean(ctx->err, cli_json_str(answer, "role") ? cli_json_str(answer, "role")
                                                             : a->flag[CLI_F_ROLE]);
        fputs("; it is shown only this once\n", ctx->err);
    }
    json_decref(body);
    json_decref(answer);
    return rc;
}

int cli_token_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    const json_t *tok;
    json_t *answer = NULL;
    struct cli_table t;
    char created[64];
    size_t i;
    int rc;

    rc = cli_call(ctx, "GET", "/api/v1/tokens", NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json) {
        cli_print_json(ctx, answer);
    } else if (rc == 0) {
        cli_table_init(&t, "NAME,ROLE,CREATED");
        for (i = 0; i < json_array_size(json_object_get(answer, "tokens")); i++) {
            tok = json_array_get(json_object_get(answer, "tokens"), i);
            cli_format_time(tok, "created", created, sizeof(created));
            const char *row[] = {cli_json_str(tok, "name"), cli_json_str(tok, "role"), created};
            cli_table_add(&t, row);
        }
        rc = cli_table_print(&t, ctx->out, true) ? 1 : 0;
        cli_table_release(&t);
    }
    json_decref(answer);
    return rc;
}
