/*
 * cmd_release.c: `release add|list|remove`, `weights` and `rollback`.
 *
 * Each command builds one request to the admin API (docs/api.md), sends it
 * with cli_call and prints the answer: the API's JSON with --json, a short
 * sentence and a table of releases otherwise. The client checks only the
 * syntax of what it sends (a weight is a percentage with at most two
 * decimals); the API checks the meaning (weights add up to 100, a release
 * exists, it is at weight 0 before removal) and its message is printed as is.
 *
 * Cost: one request per command.
 */
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/err-t.h"

/* Prints a service's releases: name, weight, stable mark, endpoints. */
static int print_releases(struct cli_ctx *ctx, const json_t *svc)
{
    const json_t *rels = json_object_get(svc, "releases"), *rel, *ep;
    struct cli_table t;
    struct fb_buf eps;
    char weight[32];
    double w;
    size_t i, j;
    int rc;

    cli_table_init(&t, "RELEASE,>WEIGHT%,STABLE,ENDPOINTS");
    fb_buf_init(&eps, 1u << 16);
    for (i = 0; i < json_array_size(rels); i++) {
        rel = json_array_get(rels, i);
        fb_buf_reset(&eps);
        for (j = 0; j < json_array_size(json_object_get(rel, "endpoints")); j++) {
            ep = json_array_get(json_object_get(rel, "endpoints"), j);
            const char *addr =
                json_is_string(ep) ? json_string_value(ep) : cli_json_str(ep, "address");

            fb_buf_printf(&eps, "%s%s", j ? ", " : "", addr ? addr : "?");
        }
        if (cli_json_num(rel, "weight", &w))
            cli_format_weight(w, true, weight, sizeof(weight));
        else
            memcpy(weight, "-", 2);
        const char *row[] = {cli_json_str(rel, "name"), weight,
                             json_is_true(json_object_get(rel, "stable")) ? "yes" : "",
                             eps.len ? eps.data : NULL};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    fb_buf_release(&eps);
    return rc ? 1 : 0;
}

/* Builds the path or says the names are too long; returns 0 or exit code 2. */
static int service_path(struct cli_ctx *ctx, struct fb_buf *path, const char *service,
                        const char *sub, const char *item)
{
    if (cli_service_path(path, service, sub, item) == 0)
        return 0;
    fb_buf_release(path);
    return cli_usage_error(ctx, "service or release name too long");
}

/* Builds the JSON body of `release add`; NULL when an argument is not UTF-8. */
static json_t *release_body(const struct cli_args *a)
{
    json_t *eps = json_array(), *body;

    for (size_t i = 0; eps && i < a->nlist; i++) {
        if (json_array_append_new(eps, json_string(a->list[i]))) {
            json_decref(eps);
            eps = NULL;
        }
    }
    body = eps ? json_pack("{s:s, s:o}", "name", a->pos[1], "endpoints", eps) : NULL;
    return body;
}

int cli_release_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    json_t *body = NULL, *answer = NULL;
    int rc;

    rc = service_path(ctx, &path, a->pos[0], "releases", NULL);
    if (rc)
        return rc;
    body = release_body(a);
    if (!body) {
        rc = cli_usage_error(ctx, "names and endpoints must be valid UTF-8");
        goto out;
    }
    rc = cli_call(ctx, "POST", path.data, body, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json && answer)
        cli_print_json(ctx, answer);
    else if (rc == 0)
        fprintf(ctx->out, "added release %s to %s at weight 0\n", a->pos[1], a->pos[0]);
out:
    json_decref(body);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_release_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    json_t *answer = NULL;
    int rc;

    rc = service_path(ctx, &path, a->pos[0], NULL, NULL);
    if (rc)
        return rc;
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json)
        cli_print_json(ctx, answer);
    else if (rc == 0)
        rc = print_releases(ctx, answer);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_release_remove(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    json_t *answer = NULL;
    int rc;

    rc = service_path(ctx, &path, a->pos[0], "releases", a->pos[1]);
    if (rc)
        return rc;
    rc = cli_call(ctx, "DELETE", path.data, NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json && answer)
        cli_print_json(ctx, answer);
    else if (rc == 0 && !ctx->json)
        fprintf(ctx->out, "removed release %s from %s\n", a->pos[1], a->pos[0]);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

/* Parses RELEASE=PERCENT arguments into {"weights": {...}}; returns 0 or exit
 * code 2 after printing what was wrong. */
static int weights_body(struct cli_ctx *ctx, const struct cli_args *a, json_t **body)
{
    struct cli_weight w;
    json_t *weights = json_object(), *v;
    char why[256];

    *body = NULL;
    for (size_t i = 1; i < a->npos; i++) {
        if (cli_parse_weight(a->pos[i], &w, why, sizeof(why))) {
            json_decref(weights);
            return cli_usage_error(ctx, "%s", why);
        }
        if (json_object_get(weights, w.name)) {
            json_decref(weights);
            return cli_usage_error(ctx, "release %s given twice", w.name);
        }
        /* Whole percentages go as integers, the rest with two decimals. */
        v = w.bp % 100 ? json_real(w.bp / 100.0) : json_integer(w.bp / 100);
        if (json_object_set_new(weights, w.name, v)) {
            json_decref(weights);
            return cli_usage_error(ctx, "release names must be valid UTF-8");
        }
    }
    *body = json_pack("{s:o}", "weights", weights);
    return *body ? 0 : 1;
}

int cli_weights(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    json_t *body = NULL, *answer = NULL;
    int rc;

    rc = weights_body(ctx, a, &body);
    if (rc)
        return rc;
    rc = service_path(ctx, &path, a->pos[0], "weights", NULL);
    if (rc) {
        json_decref(body);
        return rc;
    }
    rc = cli_call(ctx, "PUT", path.data, body, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json)
        cli_print_json(ctx, answer);
    else if (rc == 0) {
        fprintf(ctx->out, "weights of %s set\n", a->pos[0]);
        rc = print_releases(ctx, answer);
    }
    json_decref(body);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

/* "rolled back shop to v1 in 41 us (event 17)" and the new weights. */
static int print_rollback(struct cli_ctx *ctx, const char *service, const json_t *answer)
{
    const json_t *weights = json_object_get(answer, "weights");
    const char *stable = cli_json_str(answer, "stable"), *name;
    struct cli_table t;
    char took[48] = "", weight[32];
    double us, id;
    const json_t *v;
    int rc;

    if (cli_json_num(answer, "published_us", &us)) {
        cli_format_duration_us(us, weight, sizeof(weight));
        snprintf(took, sizeof(took), " in %s", weight);
    }
    fprintf(ctx->out, "rolled back %s to ", service);
    cli_put_clean(ctx->out, stable ? stable : "stable");
    fputs(took, ctx->out);
    if (cli_json_num(answer, "event_id", &id))
        fprintf(ctx->out, " (event %.0f)", id);
    fputc('\n', ctx->out);
    cli_table_init(&t, "RELEASE,>WEIGHT%");
    for (void *it = json_object_iter((json_t *)weights); it;
         it = json_object_iter_next((json_t *)weights, it)) {
        name = json_object_iter_key(it);
        v = json_object_iter_value(it);
        cli_format_weight(json_number_value(v), true, weight, sizeof(weight));
        const char *row[] = {name, json_is_number(v) ? weight : NULL};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    return rc ? 1 : 0;
}

int cli_rollback(struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *reason = a->flag[CLI_F_REASON];
    struct fb_buf path;
    json_t *body, *answer = NULL;
    int rc;

    body = reason ? json_pack("{s:s}", "reason", reason) : json_object();
    if (!body)
        return cli_usage_error(ctx, "the reason must be valid UTF-8");
    rc = service_path(ctx, &path, a->pos[0], "rollback", NULL);
    if (rc) {
        json_decref(body);
        return rc;
    }
    rc = cli_call(ctx, "POST", path.data, body, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json)
        cli_print_json(ctx, answer);
    else if (rc == 0)
        rc = print_rollback(ctx, a->pos[0], answer);
    json_decref(body);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}
