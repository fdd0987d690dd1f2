/*
 * cmd_journal.c: `journal impact` and `journal export`.
 *
 * impact: GET /api/v1/services/{s}/journal/impact?release=R[&since=T]
 * [&until=T]. Prints the writes the release made: by route and status, the
 * distinct identities and entities (counts and the first few names), the
 * first and last write, and always the count of records the journal
 * dropped. When that count is not 0 every figure is a floor, and a warning
 * line says so (on stdout with the report, and on stderr, so that it is seen
 * when the report goes to a file or with --json).
 *
 * export: GET .../journal/export?release=R&format=csv|jsonl[&since][&until].
 * The answer is not JSON: its body is written to stdout byte for byte, as it
 * came. The client holds the whole answer before writing it, so an export
 * is bounded by EXPORT_MAX_BODY; narrow it with --since and --until.
 *
 * T is passed to the API as given (RFC 3339, Unix ms, or a duration back
 * from now such as 2h); the API reads it.
 *
 * Cost: one request per command.
 */
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/client.h"
#include "firebreak/err-t.h"

#define LIST_FIRST 10                 /* names shown per list */
#define EXPORT_MAX_BODY (1024u << 20) /* 1 GiB */
#define EXPORT_TIMEOUT_MS (5 * 60000)

/* ".../journal/SUB?release=R&since=...&until=...[&format=F]" into b. */
static int journal_path(struct cli_ctx *ctx, const struct cli_args *a, const char *sub,
                        struct fb_buf *b)
{
    static const struct {
        enum cli_flag_id id;
        const char *param;
    } params[] = {{CLI_F_RELEASE, "release"},
                  {CLI_F_SINCE, "since"},
                  {CLI_F_UNTIL, "until"},
                  {CLI_F_FORMAT, "format"}};
    int rc = cli_service_path(b, a->pos[0], "journal", sub);
    char sep = '?';

    for (size_t i = 0; rc == 0 && i < sizeof(params) / sizeof(params[0]); i++) {
        const char *v = a->flag[params[i].id];

        if (!v)
            continue;
        rc = fb_buf_printf(b, "%c%s=", sep, params[i].param);
        if (rc == 0)
            rc = client_escape(b, v);
        sep = '&';
    }
    if (rc == 0)
        return 0;
    fb_buf_release(b);
    return cli_usage_error(ctx, "the service name or a flag's value is too long");
}

static void warn_dropped(struct cli_ctx *ctx, double dropped, bool on_out)
{
    const char *text = "the journal dropped records in this window (full rings or failed "
                       "commits): every count here is a floor, not the whole";

    if (dropped <= 0)
        return;
    if (on_out)
        fprintf(ctx->out, "WARNING    %.0f records dropped: %s\n", dropped, text);
    fprintf(ctx->err, "firebreak: warning: %.0f records dropped: %s\n", dropped, text);
}

static int print_routes(struct cli_ctx *ctx, const json_t *rep)
{
    const json_t *routes = json_object_get(rep, "by_route"), *r;
    struct cli_table t;
    char status[16], writes[32];
    double st, w;
    size_t i;
    int rc;

    if (json_array_size(routes) == 0)
        return 0;
    cli_table_init(&t, "ROUTE,>STATUS,>WRITES");
    json_array_foreach(routes, i, r)
    {
        snprintf(status, sizeof(status), "%.0f", cli_json_num(r, "status", &st) ? st : 0.0);
        snprintf(writes, sizeof(writes), "%.0f", cli_json_num(r, "writes", &w) ? w : 0.0);
        const char *row[] = {cli_json_str(r, "route"), status, writes};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    if (json_is_true(json_object_get(rep, "by_route_cut")))
        fputs("(more routes than listed)\n", ctx->out);
    return rc;
}

/* "identities 12 distinct (3 writes without one): u-1 (5), u-2 (3), ... 2 more". */
static void print_names(struct cli_ctx *ctx, const json_t *rep, const char *label,
                        const char *count_key, const char *none_key, const char *list_key,
                        const char *name_key)
{
    const json_t *list = json_object_get(rep, list_key), *n;
    size_t i, shown = json_array_size(list) < LIST_FIRST ? json_array_size(list) : LIST_FIRST;
    double count = 0, none = 0, w;

    cli_json_num(rep, count_key, &count);
    cli_json_num(rep, none_key, &none);
    fprintf(ctx->out, "%-10s %.0f distinct", label, count);
    if (none > 0)
        fprintf(ctx->out, " (%.0f writes without one)", none);
    json_array_foreach(list, i, n)
    {
        if (i == LIST_FIRST)
            break;
        fputs(i ? ", " : ": ", ctx->out);
        cli_put_clean(ctx->out, cli_json_str(n, name_key) ? cli_json_str(n, name_key) : "?");
        if (cli_json_num(n, "writes", &w))
            fprintf(ctx->out, " (%.0f)", w);
    }
    if (count > (double)shown)
        fprintf(ctx->out, ", ... %.0f more", count - (double)shown);
    fputc('\n', ctx->out);
}

static int print_impact(struct cli_ctx *ctx, const struct cli_args *a, const json_t *rep)
{
    double writes = 0, dropped = 0, loading = 0;
    char first[64], last[64], since[64], until[64];

    cli_json_num(rep, "writes", &writes);
    cli_format_time(rep, "first", first, sizeof(first));
    cli_format_time(rep, "last", last, sizeof(last));
    cli_format_time(rep, "since", since, sizeof(since));
    cli_format_time(rep, "until", until, sizeof(until));
    fprintf(ctx->out, "writes of release %s to %s", a->flag[CLI_F_RELEASE], a->pos[0]);
    if (strcmp(since, "-") || strcmp(until, "-"))
        fprintf(ctx->out, " from %s to %s", strcmp(since, "-") ? since : "the start",
                strcmp(until, "-") ? until : "now");
    fputc('\n', ctx->out);
    fprintf(ctx->out, "writes     %.0f\nfirst      %s\nlast       %s\n", writes, first, last);
    if (!cli_json_num(rep, "dropped", &dropped)) {
        fputs("dropped    unknown: the answer does not say; the counts may be incomplete\n",
              ctx->out);
    } else {
        fprintf(ctx->out, "dropped    %.0f\n", dropped);
        warn_dropped(ctx, dropped, true);
    }
    if (cli_json_num(rep, "loading", &loading) && loading > 0)
        fprintf(ctx->out, "WARNING    %.0f committed records were still loading into the "
                          "journal file and are not counted; ask again\n", loading);
    print_names(ctx, rep, "identities", "identities", "anonymous_writes", "identity_list",
                "identity");
    print_names(ctx, rep, "entities", "entities", "writes_without_entity", "entity_list", "entity");
    return print_routes(ctx, rep) ? 1 : 0;
}

int cli_journal_impact(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    json_t *answer = NULL;
    double dropped;
    int rc = journal_path(ctx, a, "impact", &path);

    if (rc)
        return rc;
    rc = cli_call(ctx, "GET", path.data, NULL, &answer) ? 1 : 0;
    if (rc == 0 && ctx->json) {
        cli_print_json(ctx, answer);
        if (cli_json_num(answer, "dropped", &dropped))
            warn_dropped(ctx, dropped, false);
    } else if (rc == 0) {
        rc = print_impact(ctx, a, answer);
    }
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_journal_export(struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *fmt = a->flag[CLI_F_FORMAT];
    struct client_response resp;
    struct fb_buf path;
    int rc;

    if (strcmp(fmt, "csv") && strcmp(fmt, "jsonl"))
        return cli_usage_error(ctx, "--format is csv or jsonl");
    rc = journal_path(ctx, a, "export", &path);
    if (rc)
        return rc;
    ctx->client.max_body = EXPORT_MAX_BODY;
    ctx->client.timeout_ms = EXPORT_TIMEOUT_MS;
    rc = cli_call_raw(ctx, "GET", path.data, NULL, &resp) ? 1 : 0;
    if (rc == 0 && resp.body.len &&
        fwrite(resp.body.data, 1, resp.body.len, ctx->out) != resp.body.len) {
        fprintf(ctx->err, "firebreak: cannot write the export to stdout\n");
        rc = 1;
    }
    if (rc == 0)
        client_response_release(&resp);
    fb_buf_release(&path);
    return rc;
}
