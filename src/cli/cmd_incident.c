/*
 * cmd_incident.c: `incident declare|list|show|assign|note|status|resolve|
 * check|update|postmortem|action add|action done`.
 *
 * Each command is one request under /api/v1/incidents (the header comment of
 * src/admin/api_incidents.c lists them). The client checks only what it can
 * know without the server: the words of enumerations given as flags
 * (severity, audience, action type), a --next-update time, an action number,
 * and that `update` is either --draft or --publish; everything else (does
 * the incident exist, is the role one of the four, is a published update
 * complete) is the API's to say, and its message is printed as it came.
 *
 * show prints every field readably: the key times with their offsets from
 * the impact start, the durations, the measured impact, roles, checklist,
 * caused_by and fixed_by, the judge's evidence, updates, actions, and the
 * timeline with absolute and T+ times (T+ counted from the impact start, or
 * from the declaration when no impact was measured, as the API counts it).
 *
 * update --publish with no text flag publishes the server's draft as it
 * stands ({"audience", "draft": true}); with any, exactly the fields given.
 * A --next-update duration ("30m") is turned into a time here, from this
 * machine's clock, and sent as next_update_ms.
 *
 * Cost: one request per command.
 */
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/client.h"
#include "firebreak/clock.h"
#include "firebreak/err-t.h"

#define LIST_COLS "ID,SEVERITY,STATUS,TITLE,SERVICES,DECLARED,POSTMORTEM"
#define TIMELINE_COLS "TIME,>T+,TYPE,ACTOR,RELEASE,DETAILS"

static const char *const time_names[] = {"impact_start", "detected", "declared", "contained",
                                         "resolved"};
static const char *const role_names[] = {"commander", "comms", "ops", "scribe"};

/* ---------------------------------------------------------------- paths */

/* "/api/v1/incidents[/ID[/SUB[/ITEM[/LAST]]]]" into b (initialised here).
 * Returns 0, or exit code 2 (b released) when the id is absurdly long. */
static int incident_path(struct cli_ctx *ctx, struct fb_buf *b, const char *id, const char *sub,
                         const char *item, const char *last)
{
    int rc;

    fb_buf_init(b, 4096);
    rc = fb_buf_puts(b, "/api/v1/incidents");
    if (rc == 0 && id)
        rc = fb_buf_puts(b, "/");
    if (rc == 0 && id)
        rc = client_escape(b, id);
    if (rc == 0 && sub)
        rc = fb_buf_printf(b, "/%s", sub);
    if (rc == 0 && item)
        rc = fb_buf_puts(b, "/");
    if (rc == 0 && item)
        rc = client_escape(b, item);
    if (rc == 0 && last)
        rc = fb_buf_printf(b, "/%s", last);
    if (rc == 0)
        return 0;
    fb_buf_release(b);
    return cli_usage_error(ctx, "incident id too long");
}

static bool one_of(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, words[i]))
            return true;
    return false;
}

/* ------------------------------------------------------------- printing */

/* "app, web" from the incident's services (into b, reset first). */
static void services_text(const json_t *inc, struct fb_buf *b)
{
    const json_t *s;
    size_t i;

    fb_buf_reset(b);
    json_array_foreach(json_object_get(inc, "services"), i, s)
        fb_buf_printf(b, "%s%s", i ? ", " : "", json_is_string(s) ? json_string_value(s) : "?");
}

/* Labelled line "  LABEL      VALUE" (value cleaned of control characters). */
static void field(struct cli_ctx *ctx, const char *label, const char *value)
{
    fprintf(ctx->out, "%-13s ", label);
    cli_put_clean(ctx->out, value && *value ? value : "-");
    fputc('\n', ctx->out);
}

static void heading(struct cli_ctx *ctx, const char *title)
{
    fprintf(ctx->out, "\n%s\n", title);
}

/* The time every T+ is counted from: the impact start, else the declaration. */
static double t0_ms(const json_t *times)
{
    double t0 = 0;

    if (!cli_json_num(times, "impact_start_ms", &t0) || t0 <= 0)
        cli_json_num(times, "declared_ms", &t0);
    return t0;
}

static void t_plus(double seconds, char *out, size_t len)
{
    char span[32];

    cli_format_span(seconds < 0 ? -seconds : seconds, span, sizeof(span));
    snprintf(out, len, "T%s%s", seconds < 0 ? "-" : "+", span);
}

static int print_times(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *times = json_object_get(inc, "times"), *d = json_object_get(inc, "durations");
    double t0 = t0_ms(times), ms, v;
    char at[64], plus[48], key[64], span[3][32];
    struct cli_table t;
    int rc;

    heading(ctx, "times");
    cli_table_init(&t, "  WHAT,TIME,>T+");
    for (size_t i = 0; i < sizeof(time_names) / sizeof(time_names[0]); i++) {
        snprintf(key, sizeof(key), "%s_ms", time_names[i]);
        cli_format_time(times, time_names[i], at, sizeof(at));
        snprintf(plus, sizeof(plus), "-");
        if (t0 > 0 && cli_json_num(times, key, &ms) && ms > 0)
            t_plus((ms - t0) / 1000, plus, sizeof(plus));
        snprintf(key, sizeof(key), "  %s", time_names[i]);
        const char *row[] = {key, at, plus};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, false);
    cli_table_release(&t);
    for (int i = 0; i < 3; i++) {
        static const char *const keys[] = {"time_to_detect_s", "time_to_contain_s",
                                           "time_to_resolve_s"};

        if (cli_json_num(d, keys[i], &v))
            cli_format_span(v, span[i], sizeof(span[i]));
        else
            snprintf(span[i], sizeof(span[i]), "-");
    }
    fprintf(ctx->out, "  time to detect %s, to contain %s, to resolve %s\n", span[0], span[1],
            span[2]);
    return rc;
}

/* "  identities: u-1, u-2, ... 3 more" from a list of strings. */
static void print_first_names(struct cli_ctx *ctx, const char *label, const json_t *list,
                              double count)
{
    const json_t *n;
    size_t i, shown = 0;

    if (json_array_size(list) == 0)
        return;
    fprintf(ctx->out, "  %s: ", label);
    json_array_foreach(list, i, n)
    {
        if (i == 10)
            break;
        fputs(i ? ", " : "", ctx->out);
        cli_put_clean(ctx->out, json_is_string(n) ? json_string_value(n) : "?");
        shown++;
    }
    if (count > (double)shown)
        fprintf(ctx->out, ", ... %.0f more", count - (double)shown);
    fputc('\n', ctx->out);
}

static void print_journal_impact(struct cli_ctx *ctx, const json_t *j)
{
    double w = 0, ids = 0, ents = 0, dropped = 0;

    if (!json_is_object(j))
        return;
    cli_json_num(j, "writes", &w);
    cli_json_num(j, "identities", &ids);
    cli_json_num(j, "entities", &ents);
    cli_json_num(j, "dropped", &dropped);
    fprintf(ctx->out,
            "  journal: %.0f writes by %.0f identities to %.0f records, %.0f records "
            "dropped\n",
            w, ids, ents, dropped);
    print_first_names(ctx, "identities", json_object_get(j, "identity_list"), ids);
    print_first_names(ctx, "records", json_object_get(j, "entity_list"), ents);
    if (dropped > 0)
        fprintf(ctx->out, "  warning: the journal dropped %.0f records: the counts are a floor\n",
                dropped);
}

static void print_impact(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *im = json_object_get(inc, "impact");
    double failed = 0, served = 0, peak = 0, users = 0, writes = 0, dur, dropped = 0;
    char span[32] = "-";

    heading(ctx, "impact");
    if (!cli_json_str(im, "release")) {
        fputs("  not measured: no release is linked to this incident\n", ctx->out);
        return;
    }
    cli_json_num(im, "requests_failed", &failed);
    cli_json_num(im, "requests_served", &served);
    cli_json_num(im, "peak_error_rate", &peak);
    cli_json_num(im, "users_affected", &users);
    cli_json_num(im, "writes", &writes);
    cli_json_num(im, "users_dropped", &dropped);
    if (cli_json_num(im, "duration_s", &dur))
        cli_format_span(dur, span, sizeof(span));
    fputs("  release ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(im, "release"));
    fprintf(ctx->out, ": %.0f of %.0f requests failed, peak error rate %.1f%%\n", failed, served,
            peak * 100);
    fprintf(ctx->out, "  %.0f users affected%s, %.0f write requests, lasted %s\n", users,
            dropped > 0 ? " (a floor: some keys were not kept)" : "", writes, span);
    print_journal_impact(ctx, json_object_get(im, "journal"));
}

static void print_roles(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *roles = json_object_get(inc, "roles");

    heading(ctx, "roles");
    for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
        fprintf(ctx->out, "  %-10s ", role_names[i]);
        cli_put_clean(ctx->out, cli_json_str(roles, role_names[i])
                                    ? cli_json_str(roles, role_names[i])
                                    : "-");
        fputc('\n', ctx->out);
    }
}

static int print_checklist(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *cl = json_object_get(inc, "checklist"), *it;
    struct cli_table t;
    char at[64], item[80];
    const char *key;
    int rc;

    heading(ctx, "checklist");
    cli_table_init(&t, "ITEM,STATE,TIME");
    json_object_foreach((json_t *)cl, key, it)
    {
        cli_format_time(it, "time", at, sizeof(at));
        snprintf(item, sizeof(item), "  %s", key);
        const char *row[] = {item, cli_json_str(it, "state"), at};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, false);
    cli_table_release(&t);
    return rc;
}

/* caused_by and fixed_by: links to what the system did. */
static void print_links(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *cause = json_object_get(inc, "caused_by"),
                 *fix = json_object_get(inc, "fixed_by");
    struct fb_buf b;
    char at[64];

    fb_buf_init(&b, 4096);
    if (json_is_object(cause)) {
        cli_format_time(cause, "started", at, sizeof(at));
        fb_buf_printf(&b, "%s %s of release %s, started %s",
                      cli_json_str(cause, "type") ? cli_json_str(cause, "type") : "change",
                      cli_json_str(cause, "rollout") ? cli_json_str(cause, "rollout") : "",
                      cli_json_str(cause, "release") ? cli_json_str(cause, "release") : "?", at);
    }
    field(ctx, "caused by", b.data);
    fb_buf_reset(&b);
    if (json_is_object(fix)) {
        cli_format_time(fix, "time", at, sizeof(at));
        fb_buf_printf(&b, "%s by %s at %s",
                      cli_json_str(fix, "type") ? cli_json_str(fix, "type") : "change",
                      cli_json_str(fix, "trigger") ? cli_json_str(fix, "trigger") : "?", at);
        if (cli_json_str(fix, "reason") && *cli_json_str(fix, "reason"))
            fb_buf_printf(&b, ": %s", cli_json_str(fix, "reason"));
    }
    field(ctx, "fixed by", b.data);
    fb_buf_release(&b);
}

/* Lines of text, each indented (the update's text has several). */
static void indented(struct cli_ctx *ctx, const char *text, const char *indent)
{
    const char *p = text, *nl;
    char line[8192];

    while (p && *p) {
        nl = strchr(p, '\n');
        snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
        fputs(indent, ctx->out);
        cli_put_clean(ctx->out, line);
        fputc('\n', ctx->out);
        p = nl ? nl + 1 : NULL;
    }
}

static void print_updates(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *u;
    char at[64];
    size_t i;

    heading(ctx, "updates");
    if (json_array_size(json_object_get(inc, "updates")) == 0)
        fputs("  none published\n", ctx->out);
    json_array_foreach(json_object_get(inc, "updates"), i, u)
    {
        cli_format_time(u, "published", at, sizeof(at));
        fprintf(ctx->out, "  %s  ", at);
        cli_put_clean(ctx->out, cli_json_str(u, "audience") ? cli_json_str(u, "audience") : "?");
        fputs(" update by ", ctx->out);
        cli_put_clean(ctx->out, cli_json_str(u, "author") ? cli_json_str(u, "author") : "?");
        fputc('\n', ctx->out);
        indented(ctx, cli_json_str(u, "text"), "    ");
    }
}

static int print_actions(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *acts = json_object_get(inc, "actions"), *act;
    struct cli_table t;
    char n[32];
    double id;
    size_t i;
    int rc;

    heading(ctx, "action items");
    if (json_array_size(acts) == 0) {
        fputs("  none\n", ctx->out);
        return 0;
    }
    cli_table_init(&t, ">#,TYPE,STATUS,OWNER,TEXT");
    json_array_foreach(acts, i, act)
    {
        snprintf(n, sizeof(n), "%.0f", cli_json_num(act, "id", &id) ? id : (double)(i + 1));
        const char *row[] = {n, cli_json_str(act, "type"), cli_json_str(act, "status"),
                             cli_json_str(act, "owner"), cli_json_str(act, "text")};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    return rc;
}

static void print_postmortem(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *pm = json_object_get(inc, "postmortem");
    char at[64], line[5000];

    if (json_is_object(pm)) {
        cli_format_time(pm, "written", at, sizeof(at));
        snprintf(line, sizeof(line), "%s (written %s)",
                 cli_json_str(pm, "path") ? cli_json_str(pm, "path") : "?", at);
        field(ctx, "postmortem", line);
    } else {
        field(ctx, "postmortem",
              json_is_true(json_object_get(inc, "postmortem_due")) ? "due" : "not written");
    }
}

/* An event's details without what every incident event repeats, and
 * without the judge's evidence (shown once, above the timeline). */
static void event_details(const json_t *ev, struct fb_buf *b)
{
    json_t *d = json_deep_copy(json_object_get(ev, "details"));
    const char *type = cli_json_str(ev, "type");

    fb_buf_reset(b);
    if (json_is_object(d)) {
        json_object_del(d, "evidence");
        if (type && (!strncmp(type, "incident_", 9) || !strcmp(type, "postmortem_written") ||
                     !strcmp(type, "reminder"))) {
            json_object_del(d, "incident");
            json_object_del(d, "title");
            json_object_del(d, "severity");
        }
    }
    if (cli_format_details(d, b))
        fb_buf_reset(b);
    json_decref(d);
}

static int print_timeline(struct cli_ctx *ctx, const json_t *inc)
{
    const json_t *tl = json_object_get(inc, "timeline"), *ev;
    struct cli_table t;
    struct fb_buf details;
    char at[64], plus[48];
    double tp;
    size_t i;
    int rc;

    heading(ctx, "timeline");
    if (json_array_size(tl) == 0) {
        fputs("  no events\n", ctx->out);
        return 0;
    }
    cli_table_init(&t, TIMELINE_COLS);
    fb_buf_init(&details, 1u << 16);
    json_array_foreach(tl, i, ev)
    {
        cli_format_time(ev, "time", at, sizeof(at));
        if (cli_json_num(ev, "t_plus_s", &tp))
            t_plus(tp, plus, sizeof(plus));
        else
            snprintf(plus, sizeof(plus), "-");
        event_details(ev, &details);
        const char *row[] = {at,
                             plus,
                             cli_json_str(ev, "type"),
                             cli_json_str(ev, "actor"),
                             cli_json_str(ev, "release"),
                             details.len ? details.data : ""};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    fb_buf_release(&details);
    return rc;
}

/* The first lines of show: id, severity, status, title, links. */
static void print_head(struct cli_ctx *ctx, const json_t *inc)
{
    struct fb_buf b;
    char line[512];

    fb_buf_init(&b, 1u << 16);
    fb_buf_printf(&b, "%s  %s  %s  %s", cli_json_str(inc, "id") ? cli_json_str(inc, "id") : "?",
                  cli_json_str(inc, "severity") ? cli_json_str(inc, "severity") : "?",
                  cli_json_str(inc, "status") ? cli_json_str(inc, "status") : "?",
                  cli_json_str(inc, "title") ? cli_json_str(inc, "title") : "");
    cli_put_clean(ctx->out, b.data ? b.data : "");
    fputc('\n', ctx->out);
    services_text(inc, &b);
    field(ctx, "services", b.data);
    if (cli_json_str(inc, "release")) {
        snprintf(line, sizeof(line), "%s (stable %s, rollout %s)", cli_json_str(inc, "release"),
                 cli_json_str(inc, "stable") ? cli_json_str(inc, "stable") : "?",
                 cli_json_str(inc, "rollout") ? cli_json_str(inc, "rollout") : "-");
        field(ctx, "release", line);
    }
    field(ctx, "suggested", cli_json_str(inc, "suggested_severity"));
    field(ctx, "declared by",
          json_is_true(json_object_get(inc, "automatic")) ? "firebreak (automatic)" : "a person");
    print_links(ctx, inc);
    print_postmortem(ctx, inc);
    fb_buf_release(&b);
}

static int print_incident(struct cli_ctx *ctx, const json_t *inc)
{
    int rc = 0;

    print_head(ctx, inc);
    rc |= print_times(ctx, inc);
    print_impact(ctx, inc);
    print_roles(ctx, inc);
    rc |= print_checklist(ctx, inc);
    if (json_is_object(json_object_get(inc, "evidence"))) {
        heading(ctx, "the judge's evidence");
        rc |= cli_print_evidence(ctx, json_object_get(inc, "evidence"));
    }
    print_updates(ctx, inc);
    rc |= print_actions(ctx, inc);
    rc |= print_timeline(ctx, inc);
    return rc ? 1 : 0;
}

static int print_list(struct cli_ctx *ctx, const json_t *answer)
{
    const json_t *list = json_object_get(answer, "incidents"), *inc;
    struct cli_table t;
    struct fb_buf svcs;
    char declared[64];
    size_t i;
    int rc;

    if (json_array_size(list) == 0) {
        fputs("no incidents\n", ctx->out);
        return 0;
    }
    cli_table_init(&t, LIST_COLS);
    fb_buf_init(&svcs, 1u << 16);
    json_array_foreach(list, i, inc)
    {
        services_text(inc, &svcs);
        cli_format_time(json_object_get(inc, "times"), "declared", declared, sizeof(declared));
        const char *row[] = {
            cli_json_str(inc, "id"),
            cli_json_str(inc, "severity"),
            cli_json_str(inc, "status"),
            cli_json_str(inc, "title"),
            svcs.len ? svcs.data : "",
            declared,
            json_is_true(json_object_get(inc, "postmortem_due"))
                ? "due"
                : (json_is_object(json_object_get(inc, "postmortem")) ? "written" : "")};
        cli_table_add(&t, row);
    }
    rc = cli_table_print(&t, ctx->out, true);
    cli_table_release(&t);
    fb_buf_release(&svcs);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------- requests */

/* Sends one request; prints the JSON answer with --json, else the line
 * "done" (when given). The answer goes to *answer when asked for. */
static int call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                const char *done, json_t **answer)
{
    json_t *ans = NULL;
    int rc = cli_call(ctx, method, path, body, &ans) ? 1 : 0;

    if (rc == 0 && ctx->json)
        cli_print_json(ctx, ans);
    else if (rc == 0 && done) {
        cli_put_clean(ctx->out, done);
        fputc('\n', ctx->out);
    }
    if (answer)
        *answer = ans;
    else
        json_decref(ans);
    return rc;
}

/* POST /incidents/ID/VERB with body (taken); prints done. */
static int change(struct cli_ctx *ctx, const char *id, const char *verb, json_t *body,
                  const char *done)
{
    struct fb_buf path;
    int rc;

    if (!body)
        return cli_usage_error(ctx, "arguments must be valid UTF-8");
    rc = incident_path(ctx, &path, id, verb, NULL, NULL);
    if (rc == 0) {
        rc = call(ctx, "POST", path.data, body, done, NULL);
        fb_buf_release(&path);
    }
    json_decref(body);
    return rc;
}

int cli_incident_declare(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const sevs[] = {"SEV1", "SEV2", "SEV3", "SEV4"};
    const char *sev = a->flag[CLI_F_SEVERITY];
    json_t *body, *svcs = json_array(), *answer = NULL;
    int rc;

    if (!one_of(sev, sevs, 4)) {
        json_decref(svcs);
        return cli_usage_error(ctx, "--severity is SEV1, SEV2, SEV3 or SEV4 (if unsure, pick "
                                    "the higher)");
    }
    for (size_t i = 0; svcs && i < a->nlist; i++)
        if (json_array_append_new(svcs, json_string(a->list[i]))) {
            json_decref(svcs);
            svcs = NULL;
        }
    body = svcs ? json_pack("{s:s, s:s, s:o}", "title", a->flag[CLI_F_TITLE], "severity", sev,
                            "services", svcs)
                : NULL;
    if (!body)
        return cli_usage_error(ctx, "the title and services must be valid UTF-8");
    rc = call(ctx, "POST", "/api/v1/incidents", body, NULL, &answer);
    if (rc == 0 && !ctx->json) {
        fputs("declared ", ctx->out);
        cli_put_clean(ctx->out, cli_json_str(answer, "id") ? cli_json_str(answer, "id") : "?");
        fprintf(ctx->out, " (%s, %s): ", sev,
                cli_json_str(answer, "status") ? cli_json_str(answer, "status") : "?");
        cli_put_clean(ctx->out, a->flag[CLI_F_TITLE]);
        fputc('\n', ctx->out);
    }
    json_decref(body);
    json_decref(answer);
    return rc;
}

int cli_incident_list(struct cli_ctx *ctx, const struct cli_args *a)
{
    json_t *answer = NULL;
    int rc = call(ctx, "GET", "/api/v1/incidents", NULL, NULL, &answer);

    if (rc == 0 && !ctx->json)
        rc = print_list(ctx, answer);
    json_decref(answer);
    return rc;
}

int cli_incident_show(struct cli_ctx *ctx, const struct cli_args *a)
{
    json_t *answer = NULL;
    struct fb_buf path;
    int rc = incident_path(ctx, &path, a->pos[0], NULL, NULL, NULL);

    if (rc)
        return rc;
    rc = call(ctx, "GET", path.data, NULL, NULL, &answer);
    if (rc == 0 && !ctx->json)
        rc = print_incident(ctx, answer);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

int cli_incident_assign(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf name;
    char done[600];
    int rc;

    if (cli_join_words(a, 2, &name)) {
        fb_buf_release(&name);
        return cli_usage_error(ctx, "the name is too long");
    }
    snprintf(done, sizeof(done), "%s: %s is %s", a->pos[0], a->pos[1], name.data);
    rc = change(ctx, a->pos[0], "assign",
                json_pack("{s:s, s:s}", "role", a->pos[1], "name", name.data), done);
    fb_buf_release(&name);
    return rc;
}

int cli_incident_note(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf text;
    char done[200];
    int rc;

    if (cli_join_words(a, 1, &text)) {
        fb_buf_release(&text);
        return cli_usage_error(ctx, "the note is too long");
    }
    snprintf(done, sizeof(done), "added a note to %s", a->pos[0]);
    rc = change(ctx, a->pos[0], "notes", json_pack("{s:s}", "text", text.data), done);
    fb_buf_release(&text);
    return rc;
}

int cli_incident_status(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[300];

    snprintf(done, sizeof(done), "%s is %s", a->pos[0], a->pos[1]);
    return change(ctx, a->pos[0], "status", json_pack("{s:s}", "status", a->pos[1]), done);
}

int cli_incident_resolve(struct cli_ctx *ctx, const struct cli_args *a)
{
    char done[200];

    snprintf(done, sizeof(done), "resolved %s", a->pos[0]);
    return change(ctx, a->pos[0], "resolve", json_object(), done);
}

int cli_incident_check(struct cli_ctx *ctx, const struct cli_args *a)
{
    bool done = !a->flag[CLI_F_UNDO];
    char line[300];

    snprintf(line, sizeof(line), "%s: %s is %s", a->pos[0], a->pos[1], done ? "done" : "open");
    return change(ctx, a->pos[0], "checklist",
                  json_pack("{s:s, s:b}", "item", a->pos[1], "done", done), line);
}

/* ------------------------------------------------------------- updates */

static void print_draft(struct cli_ctx *ctx, const char *id, const json_t *d)
{
    char next[64];

    fputs("draft ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(d, "audience") ? cli_json_str(d, "audience") : "?");
    fprintf(ctx->out, " update of %s (status ", id);
    cli_put_clean(ctx->out, cli_json_str(d, "status") ? cli_json_str(d, "status") : "?");
    fputs(")\n", ctx->out);
    cli_format_time(d, "next_update", next, sizeof(next));
    fputs("known:        ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(d, "known") ? cli_json_str(d, "known") : "-");
    fputs("\nunknown:      ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(d, "unknown") ? cli_json_str(d, "unknown") : "-");
    fputs("\nnext steps:   ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(d, "next_steps") ? cli_json_str(d, "next_steps") : "-");
    fprintf(ctx->out, "\nnext update:  %s\n", next);
}

static int update_draft(struct cli_ctx *ctx, const struct cli_args *a, const char *audience)
{
    struct fb_buf path;
    json_t *answer = NULL;
    int rc = incident_path(ctx, &path, a->pos[0], "updates", NULL, "draft");

    if (rc == 0)
        rc = fb_buf_printf(&path, "?audience=%s", audience) ? 1 : 0;
    if (rc == 0)
        rc = call(ctx, "GET", path.data, NULL, NULL, &answer);
    if (rc == 0 && !ctx->json)
        print_draft(ctx, a->pos[0], answer);
    json_decref(answer);
    fb_buf_release(&path);
    return rc;
}

/* The body of a publish: the text flags given, or the draft as it stands. */
static json_t *publish_body(const struct cli_args *a, const char *audience, int64_t next_ms)
{
    static const struct {
        enum cli_flag_id id;
        const char *key;
    } texts[] = {{CLI_F_KNOWN, "known"}, {CLI_F_UNKNOWN, "unknown"}, {CLI_F_NEXT, "next_steps"}};
    json_t *body = json_pack("{s:s}", "audience", audience);
    bool any = false;
    int bad = 0;

    for (size_t i = 0; body && i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *v = a->flag[texts[i].id];

        if (v) {
            bad |= json_object_set_new(body, texts[i].key, json_string(v));
            any = true;
        }
    }
    if (body && !any)
        bad |= json_object_set_new(body, "draft", json_true());
    if (body && next_ms)
        bad |= json_object_set_new(body, "next_update_ms", json_integer(next_ms));
    if (bad) {
        json_decref(body);
        body = NULL;
    }
    return body;
}

/* The last update of inc: "published an internal update of INC-1" and its text. */
static void print_published(struct cli_ctx *ctx, const char *id, const json_t *inc)
{
    const json_t *ups = json_object_get(inc, "updates");
    const json_t *u = json_array_get(ups, json_array_size(ups) - 1);

    fputs("published ", ctx->out);
    cli_put_clean(ctx->out, cli_json_str(u, "audience") ? cli_json_str(u, "audience") : "an");
    fprintf(ctx->out, " update of %s\n", id);
    indented(ctx, cli_json_str(u, "text"), "  ");
}

static int update_publish(struct cli_ctx *ctx, const struct cli_args *a, const char *audience)
{
    const char *next = a->flag[CLI_F_NEXT_UPD];
    int64_t next_ms = 0;
    json_t *body, *answer = NULL;
    struct fb_buf path;
    int rc;

    if (next && cli_parse_future_time(next, fb_wall_ms(), &next_ms))
        return cli_usage_error(ctx,
                               "bad --next-update '%s': an RFC 3339 time like "
                               "2026-11-26T18:30:00Z, Unix milliseconds, or a duration "
                               "from now like 30m",
                               next);
    body = publish_body(a, audience, next_ms);
    if (!body)
        return cli_usage_error(ctx, "the texts must be valid UTF-8");
    rc = incident_path(ctx, &path, a->pos[0], "updates", NULL, NULL);
    if (rc == 0) {
        rc = call(ctx, "POST", path.data, body, NULL, &answer);
        if (rc == 0 && !ctx->json)
            print_published(ctx, a->pos[0], answer);
        fb_buf_release(&path);
    }
    json_decref(answer);
    json_decref(body);
    return rc;
}

int cli_incident_update(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const audiences[] = {"internal", "public"};
    const char *audience = a->flag[CLI_F_AUDIENCE] ? a->flag[CLI_F_AUDIENCE] : "internal";
    bool draft = a->flag[CLI_F_DRAFT] != NULL, publish = a->flag[CLI_F_PUBLISH] != NULL;

    if (draft == publish)
        return cli_usage_error(ctx, "give --draft or --publish");
    if (!one_of(audience, audiences, 2))
        return cli_usage_error(ctx, "--audience is internal or public");
    if (draft && (a->flag[CLI_F_KNOWN] || a->flag[CLI_F_UNKNOWN] || a->flag[CLI_F_NEXT] ||
                  a->flag[CLI_F_NEXT_UPD]))
        return cli_usage_error(ctx, "--known, --unknown, --next-steps and --next-update go "
                                    "with --publish");
    return draft ? update_draft(ctx, a, audience) : update_publish(ctx, a, audience);
}

/* ---------------------------------------------------------- postmortem */

int cli_incident_postmortem(struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *md, *where;
    json_t *answer = NULL, *body = json_object();
    struct fb_buf path;
    int rc = incident_path(ctx, &path, a->pos[0], "postmortem", NULL, NULL);

    if (rc == 0) {
        rc = call(ctx, "POST", path.data, body, NULL, &answer);
        fb_buf_release(&path);
    }
    md = cli_json_str(answer, "markdown");
    where = cli_json_str(answer, "path");
    if (rc == 0 && !ctx->json && a->flag[CLI_F_PRINT]) {
        fputs(md ? md : "", ctx->out); /* Markdown as written, for a file or a pager */
        if (md && *md && md[strlen(md) - 1] != '\n')
            fputc('\n', ctx->out);
        fputs("firebreak: postmortem written on the server to ", ctx->err);
        cli_put_clean(ctx->err, where ? where : "?");
        fputc('\n', ctx->err);
    } else if (rc == 0 && !ctx->json) {
        fprintf(ctx->out, "postmortem of %s written on the server to ", a->pos[0]);
        cli_put_clean(ctx->out, where ? where : "?");
        fputc('\n', ctx->out);
    }
    json_decref(answer);
    json_decref(body);
    return rc;
}

/* ------------------------------------------------------------- actions */

int cli_incident_action_add(struct cli_ctx *ctx, const struct cli_args *a)
{
    static const char *const types[] = {"prevent", "detect", "mitigate", "process"};
    const char *type = a->flag[CLI_F_TYPE], *owner = a->flag[CLI_F_OWNER];
    const json_t *acts;
    json_t *body, *answer = NULL;
    struct fb_buf path;
    int rc;

    if (!one_of(type, types, 4))
        return cli_usage_error(ctx, "--type is prevent, detect, mitigate or process");
    body = json_pack("{s:s, s:s}", "type", type, "text", a->flag[CLI_F_TEXT]);
    if (body && owner && json_object_set_new(body, "owner", json_string(owner))) {
        json_decref(body);
        body = NULL;
    }
    if (!body)
        return cli_usage_error(ctx, "--text and --owner must be valid UTF-8");
    rc = incident_path(ctx, &path, a->pos[0], "actions", NULL, NULL);
    if (rc == 0) {
        rc = call(ctx, "POST", path.data, body, NULL, &answer);
        fb_buf_release(&path);
    }
    acts = json_object_get(answer, "actions");
    if (rc == 0 && !ctx->json)
        fprintf(ctx->out, "added action %zu to %s\n", json_array_size(acts), a->pos[0]);
    json_decref(answer);
    json_decref(body);
    return rc;
}

int cli_incident_action_done(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct fb_buf path;
    char done[200];
    long n;
    int rc;

    if (cli_parse_count(a->pos[1], 1000000, &n))
        return cli_usage_error(ctx, "N is the action's number, from 1 up");
    rc = incident_path(ctx, &path, a->pos[0], "actions", a->pos[1], "done");
    if (rc)
        return rc;
    snprintf(done, sizeof(done), "action %ld of %s is done", n, a->pos[0]);
    rc = call(ctx, "POST", path.data, NULL, done, NULL);
    fb_buf_release(&path);
    return rc;
}
