/*
 * cmd_rollout.c: `rollout start|status|pause|resume|promote|abort` and
 * `gate`.
 *
 * rollout start: POST /api/v1/services/{s}/rollout {"release", "steps"}. The
 * steps of --steps ("1%:60s,5%:120s,100%") are checked here with the parser
 * the configuration uses, so a typo is a usage error (exit 2) before anything
 * is sent; the API checks the release and that no rollout is in progress.
 *
 * rollout status: GET .../rollout, shown as a few labelled lines (state, step
 * i of n, weight, time left, why it paused or ended) and the judge's verdict:
 * its one-line summary and a table of the evidence per test (canary and
 * stable counts and rates, the ratio, the e-value against the threshold that
 * fails the canary and the likelihood ratio against the one that passes it).
 *
 * pause, resume, promote, abort: POST .../rollout/{verb}, then the same view.
 *
 * gate: GET /api/v1/services/{s}/gate; prints "open" and exits 0, or prints
 * each reason on a line "closed: REASON" and exits 1, for CI pipelines. With
 * --json the answer is printed as it came and the exit code is the same.
 *
 * Cost: one request per command.
 */
#include <math.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/config.h"
#include "firebreak/err-t.h"

#define EVIDENCE_COLS                                                                              \
    "TEST,OUTCOME,>CANARY,>RATE,>STABLE,>RATE,>RATIO,>LOG E-VALUE,>FAILS AT,>LLR,>PASSES AT"

/* ----------------------------------------------------------- evidence */

/* A number with fmt, or "-" when absent or null (not finite on the server). */
static void num_cell(const json_t *obj, const char *key, const char *fmt, double scale, char *out,
                     size_t len)
{
    double v;

    if (cli_json_num(obj, key, &v))
        snprintf(out, len, fmt, v * scale);
    else
        snprintf(out, len, "-");
}

/* "12/60": events of requests, or "-". */
static void count_cell(const json_t *side, char *out, size_t len)
{
    double n, x;

    if (cli_json_num(side, "requests", &n) && cli_json_num(side, "events", &x))
        snprintf(out, len, "%.0f/%.0f", x, n);
    else
        snprintf(out, len, "-");
}

struct test_cells {
    char canary[48], crate[32], stable[48], srate[32], ratio[32], ev[32], fail[32], llr[32],
        pass[32];
};

static void evidence_row(struct cli_table *t, const char *name, const json_t *test, bool measured)
{
    const json_t *c = json_object_get(test, "canary"), *s = json_object_get(test, "stable");
    struct test_cells k;

    if (!json_is_object(test) || !measured) {
        const char *row[] = {name, "not measured", "-", "-", "-", "-", "-", "-", "-", "-", "-"};
        cli_table_add(t, row);
        return;
    }
    count_cell(c, k.canary, sizeof(k.canary));
    count_cell(s, k.stable, sizeof(k.stable));
    num_cell(c, "rate", "%.3g%%", 100, k.crate, sizeof(k.crate));
    num_cell(s, "rate", "%.3g%%", 100, k.srate, sizeof(k.srate));
    num_cell(test, "ratio", "%.3g", 1, k.ratio, sizeof(k.ratio));
    num_cell(test, "log_evalue", "%.2f", 1, k.ev, sizeof(k.ev));
    num_cell(test, "log_fail_threshold", "%.2f", 1, k.fail, sizeof(k.fail));
    num_cell(test, "design_llr", "%.2f", 1, k.llr, sizeof(k.llr));
    num_cell(test, "log_pass_threshold", "%.2f", 1, k.pass, sizeof(k.pass));
    const char *row[] = {name,     cli_json_str(test, "outcome"),
                         k.canary, k.crate,
                         k.stable, k.srate,
                         k.ratio,  k.ev,
                         k.fail,   k.llr,
                         k.pass};
    cli_table_add(t, row);
}

/* "windows 42 (40 paired, 0 broken); alpha 0.001, power 0.95, ...". */
static void print_judge_terms(struct cli_ctx *ctx, const json_t *v)
{
    double w = 0, paired = 0, broken = 0, alpha, power, mer, mlr, needs;

    cli_json_num(v, "windows", &w);
    cli_json_num(v, "paired_windows", &paired);
    cli_json_num(v, "broken_windows", &broken);
    fprintf(ctx->out, "windows    %.0f (%.0f with both releases, %.0f broken)", w, paired, broken);
    if (cli_json_num(v, "alpha", &alpha) && cli_json_num(v, "power", &power))
        fprintf(ctx->out, "; alpha %g, power %g", alpha, power);
    if (cli_json_num(v, "min_error_ratio", &mer))
        fprintf(ctx->out, ", errors fail at %gx", mer);
    if (cli_json_num(v, "max_latency_ratio", &mlr))
        fprintf(ctx->out, ", latency at %gx", mlr);
    fputc('\n', ctx->out);
    if (cli_json_num(v, "needs_canary_requests", &needs))
        fprintf(ctx->out, "needs      about %.0f more canary requests\n", needs);
}

int cli_print_evidence(struct cli_ctx *ctx, const json_t *v)
{
    const char *verdict = cli_json_str(v, "verdict"), *reason = cli_json_str(v, "reason");
    const char *summary = cli_json_str(v, "summary");
    bool latency = json_is_true(json_object_get(v, "latency_measured"));
    struct cli_table t;
    int rc;

    if (!json_is_object(v) || !verdict) {
        fputs("verdict    none yet\n", ctx->out);
        return 0;
    }
    fputs("verdict    ", ctx->out);
    cli_put_clean(ctx->out, verdict);
    if (reason && *reason) {
        fputs(": ", ctx->out);
        cli_put_clean(ctx->out, reason);
    }
    fputc('\n', ctx->out);
    if (summary && *summary) {
        fputs("summary    ", ctx->out);
        cli_put_clean(ctx->out, summary);
        fputc('\n', ctx->out);
    }
    print_judge_terms(ctx, v);
    cli_table_init(&t, EVIDENCE_COLS);
    evidence_row(&t, "errors", json_object_get(v, "errors"), true);
    evidence_row(&t, "latency", json_object_get(v, "latency"), latency);
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------- rollout */

static bool ended(const char *state)
{
    return state && (!strcmp(state, "promoted") || !strcmp(state, "rolled_back") ||
                     !strcmp(state, "aborted"));
}

/* "step      2 of 4 at 5%, hold 2m00s, 1m23s left". */
static void print_step(struct cli_ctx *ctx, const json_t *doc, const char *state)
{
    double step = 0, of = 0, weight = 0, hold = 0, left = 0;
    char w[32], h[32], l[32];

    cli_json_num(doc, "step_human", &step);
    cli_json_num(doc, "step_of", &of);
    cli_json_num(doc, "weight", &weight);
    cli_format_weight(weight, false, w, sizeof(w));
    fprintf(ctx->out, "step       %.0f of %.0f at %s%%", step, of, w);
    if (cli_json_num(doc, "hold_ms", &hold) && hold > 0) {
        cli_format_span(hold / 1000, h, sizeof(h));
        fprintf(ctx->out, ", hold %s", h);
        if (!ended(state) && cli_json_num(doc, "time_left_ms", &left)) {
            cli_format_span(left / 1000, l, sizeof(l));
            fprintf(ctx->out, ", %s left", l);
        }
    }
    fputc('\n', ctx->out);
}

static void print_steps(struct cli_ctx *ctx, const json_t *steps)
{
    const json_t *st;
    size_t i;

    fputs("steps     ", ctx->out);
    json_array_foreach(steps, i, st)
    {
        fputc(' ', ctx->out);
        cli_put_clean(ctx->out, json_is_string(st) ? json_string_value(st) : "?");
    }
    fputc('\n', ctx->out);
}

/* A labelled line "LABEL  VALUE" when value is a non-empty string. */
static void print_line(struct cli_ctx *ctx, const char *label, const char *value)
{
    if (!value || !*value)
        return;
    fprintf(ctx->out, "%-10s ", label);
    cli_put_clean(ctx->out, value);
    fputc('\n', ctx->out);
}

static int print_rollout(struct cli_ctx *ctx, const char *service, const json_t *doc)
{
    const char *state = cli_json_str(doc, "state"), *actor = cli_json_str(doc, "actor");
    char time[64];
    double id = 0, ended_ms = 0;

    cli_json_num(doc, "id", &id);
    fprintf(ctx->out, "rollout    %s#%.0f: ", service, id);
    cli_put_clean(ctx->out, cli_json_str(doc, "release") ? cli_json_str(doc, "release") : "?");
    fputs(" against stable ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(doc, "stable") ? cli_json_str(doc, "stable") : "?");
    fputc('\n', ctx->out);
    print_line(ctx, "state", state ? state : "?");
    print_step(ctx, doc, state);
    print_steps(ctx, json_object_get(doc, "steps"));
    cli_format_time(doc, "started", time, sizeof(time));
    fprintf(ctx->out, "started    %s", time);
    if (actor) {
        fputs(" by ", ctx->out);
        cli_put_clean(ctx->out, actor);
    }
    fputc('\n', ctx->out);
    if (cli_json_num(doc, "ended_ms", &ended_ms) && ended_ms > 0) {
        cli_format_time(doc, "ended", time, sizeof(time));
        print_line(ctx, "ended", time);
    }
    if (state && (ended(state) || !strcmp(state, "paused")))
        print_line(ctx, "reason", cli_json_str(doc, "reason"));
    return cli_print_evidence(ctx, json_object_get(doc, "verdict"));
}

/* Builds the path or says the name is too long; returns 0 or exit code 2. */
static int rollout_path(struct cli_ctx *ctx, struct fb_buf *path, const char *service,
                        const char *sub, const char *item)
{
    if (cli_service_path(path, service, sub, item) == 0)
        return 0;
    fb_buf_release(path);
    return cli_usage_error(ctx, "service name too long");
}

/* Splits --steps at commas into a JSON array, after checking every step as
 * the configuration does. Returns 0, or exit code 2 after saying why. */
static int steps_json(struct cli_ctx *ctx, const char *text, json_t **out)
{
    const char *texts[CFG_MAX_STEPS];
    struct cfg_step parsed[CFG_MAX_STEPS];
    char copy[4096], why[256], *p = copy, *comma;
    size_t n = 0;

    *out = NULL;
    if (strlen(text) >= sizeof(copy))
        return cli_usage_error(ctx, "--steps is too long");
    memcpy(copy, text, strlen(text) + 1);
    for (;;) {
        if (n == CFG_MAX_STEPS)
            return cli_usage_error(ctx, "--steps: more than %d steps", CFG_MAX_STEPS);
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        texts[n++] = p;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (config_parse_steps(texts, n, parsed, why, sizeof(why)))
        return cli_usage_error(ctx, "--steps: %s", why);
    *out = json_array();
    for (size_t i = 0; *out && i < n; i++) {
        if (json_array_append_new(*out, json_string(texts[i]))) {
            json_decref(*out);
            *out = NULL;
        }
    }
    return *out ? 0 : cli_usage_error(ctx, "--steps must be valid UTF-8");
}

/* POSTs body to path and prints the rollout it answers. */
static int post_and_show(struct cli_ctx *ctx, const char *service, const char *path,
                         const json_t *body, const char *done)
{
    json_t *answer = NULL;
    int rc = cli_call(ctx, "POST", path, body, &answer) ? 1 : 0;

    if (rc == 0 && ctx->json) {
        cli_print_json(ctx, answer);
    } else if (rc == 0) {
        fprintf(ctx->out, "%s\n", done);
        rc = print_rollout(ctx, service, answer);
    }
    json_decref(answer);
    return rc;
}

int cli_rollout_start(struct cli_ctx *ctx, const struct cli_args *a)
{
    json_t *body = NULL, *steps = NULL;
    struct fb_buf path;
    char done[512];
    int rc;

    if (a->flag[CLI_F_STEPS] && (rc = steps_json(ctx, a->flag[CLI_F_STEPS], &steps)))
        return rc;
    body = json_pack("{s:s}", "release", a->pos[1]);
    if (!body || (steps && json_object_set_new(body, "steps", steps))) {
        json_decref(body);
        return cli_usage_error(ctx, "the release name must be valid UTF-8");
    }
    rc = rollout_path(ctx, &path, a->pos[0], "rollout", NULL);
    if (rc == 0) {
        snprintf(done, sizeof(done), "started the rollout of %s to %s", a->pos[1], a->pos[0]);
        rc = post_and_show(ctx, a->pos[0], path.data, body, done);
        fb_buf_release(&path);
    }
    json_decref(body);
    return rc;
}

int cli_rollout_status(struct cli_ctx *ctx, const struct cli_args *a)
{
    json_t *answer = NULL;
    struct fb_buf path;
    int rc;

    rc = rollout_path(ctx, &path, a->pos[0], "rollout", NULL);
    if (rc)
        return rc;
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json)
        cli_print_json(ctx, answer);
    else if (rc == 0)
        rc = print_rollout(ctx, a->pos[0], answer);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_rollout_command(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const struct {
        const char *verb, *done;
    } verbs[] = {
        {"pause", "paused"}, {"resume", "resumed"}, {"promote", "promoted"}, {"abort", "aborted"}};
    const char *verb = ctx->cmd->sub, *done = "done";
    json_t *body = json_object();
    struct fb_buf path;
    char line[512];
    int rc;

    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (!strcmp(verbs[i].verb, verb))
            done = verbs[i].done;
    rc = rollout_path(ctx, &path, a->pos[0], "rollout", verb);
    if (rc == 0) {
        snprintf(line, sizeof(line), "%s the rollout of %s", done, a->pos[0]);
        rc = post_and_show(ctx, a->pos[0], path.data, body, line);
        fb_buf_release(&path);
    }
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- gate */

/* "open", or one line "closed: REASON" per reason. */
static void print_gate(struct cli_ctx *ctx, bool open, const json_t *reasons)
{
    const json_t *r;
    size_t i;

    if (open) {
        fputs("open\n", ctx->out);
        return;
    }
    if (json_array_size(reasons) == 0)
        fputs("closed\n", ctx->out);
    json_array_foreach(reasons, i, r)
    {
        fputs("closed: ", ctx->out);
        cli_put_clean(ctx->out, json_is_string(r) ? json_string_value(r) : "?");
        fputc('\n', ctx->out);
    }
}

int cli_gate(struct cli_ctx *ctx, const struct cli_args *a)
{
    const json_t *ok;
    json_t *answer = NULL;
    struct fb_buf path;
    int rc;

    rc = rollout_path(ctx, &path, a->pos[0], "gate", NULL);
    if (rc)
        return rc;
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    fb_buf_release(&path);
    ok = json_object_get(answer, "ok");
    if (rc == 0 && !json_is_boolean(ok)) {
        fprintf(ctx->err, "firebreak: bad_response: the gate answer has no \"ok\"\n");
        rc = 1;
    } else if (rc == 0) {
        rc = json_is_true(ok) ? 0 : 1;
        if (ctx->json)
            cli_print_json(ctx, answer);
        else
            print_gate(ctx, rc == 0, json_object_get(answer, "reasons"));
    }
    json_decref(answer);
    return rc;
}
