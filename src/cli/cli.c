/*
 * cli.c: the command table, argument parsing, finding the admin API and its
 * token, one API call with error reporting, and the output helpers.
 *
 * Purpose: every client command of `firebreak` goes through cli_run: find the
 * command's row (one or two words), parse its flags, find the admin API and
 * the token, run the row's function. The functions live in cmd_*.c and only
 * build a request and print an answer.
 *
 * Adding a command: one row in cli_cmds and one function. Adding a flag: one
 * entry in enum cli_flag_id (cli-t.h) and one row in cli_flag_defs.
 *
 * Where the API is (first that is set): --admin URL, FIREBREAK_ADMIN, the
 * admin.listen of -c FILE (a wildcard address becomes loopback), else
 * http://127.0.0.1:9090. The token: --token, FIREBREAK_TOKEN, else the file
 * admin.token in the state directory (-c FILE's state, else
 * ./firebreak-data). A missing token is not an error until the API answers
 * 401; the message then says where the token was looked for.
 *
 * Exit codes: 0 ok; 1 refused or failed (any 4xx/5xx answer, no connection,
 * a bad answer); 2 usage. Output: answers on stdout, messages on stderr;
 * --json prints the API's JSON answer pretty-printed instead of tables.
 *
 * Invariants: strings from the API never reach the terminal with control
 * characters (tables and messages replace them); nothing here allocates
 * without a bound (tables stop at 16 MiB, like answer bodies).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/cli.h"
#include "firebreak/client.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/err.h"

#define CLI_DEFAULT_ADMIN "http://127.0.0.1:9090"
#define CLI_DEFAULT_STATE "./firebreak-data"
#define CLI_TOKEN_FILE "admin.token"
#define CLI_JSON_FLAGS (JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY)

/* ------------------------------------------------------------- tables */

struct cli_flag_def {
    const char *name; /* long name, without "--" */
    const char *arg;  /* metavariable for usage, or NULL for a switch */
    bool repeat;      /* values collect in cli_args.list */
};

static const struct cli_flag_def cli_flag_defs[CLI_F_COUNT_] = {
    [CLI_F_ENDPOINT] = {"endpoint", "HOST:PORT", true},
    [CLI_F_REASON] = {"reason", "TEXT", false},
    [CLI_F_SINCE] = {"since", "T", false},
    [CLI_F_SERVICE] = {"service", "S", false},
    [CLI_F_LIMIT] = {"limit", "N", false},
    [CLI_F_FOLLOW] = {"follow", NULL, false},
    [CLI_F_ROLE] = {"role", "ROLE", false},
    [CLI_F_NAME] = {"name", "NAME", false},
    [CLI_F_STEPS] = {"steps", "STEPS", false},
    [CLI_F_TITLE] = {"title", "TEXT", false},
    [CLI_F_SEVERITY] = {"severity", "SEV", false},
    [CLI_F_SERVICES] = {"service", "S", true},
    [CLI_F_UNDO] = {"undo", NULL, false},
    [CLI_F_DRAFT] = {"draft", NULL, false},
    [CLI_F_PUBLISH] = {"publish", NULL, false},
    [CLI_F_AUDIENCE] = {"audience", "AUDIENCE", false},
    [CLI_F_KNOWN] = {"known", "TEXT", false},
    [CLI_F_UNKNOWN] = {"unknown", "TEXT", false},
    [CLI_F_NEXT] = {"next-steps", "TEXT", false},
    [CLI_F_NEXT_UPD] = {"next-update", "TIME", false},
    [CLI_F_PRINT] = {"print", NULL, false},
    [CLI_F_TYPE] = {"type", "TYPE", false},
    [CLI_F_TEXT] = {"text", "TEXT", false},
    [CLI_F_OWNER] = {"owner", "NAME", false},
    [CLI_F_RELEASE] = {"release", "R", false},
    [CLI_F_UNTIL] = {"until", "T", false},
    [CLI_F_FORMAT] = {"format", "FORMAT", false},
};

#define F(id) CLI_FLAG(CLI_F_##id)

static const struct cli_cmd cli_cmds[] = {
    {.name = "status",
     .args = "[SERVICE]",
     .max_pos = 1,
     .run = cli_status,
     .summary = "releases, weights, endpoints and live rates"},
    {.name = "release",
     .sub = "add",
     .args = "SERVICE RELEASE --endpoint HOST:PORT [--endpoint HOST:PORT ...]",
     .flags = F(ENDPOINT),
     .required = F(ENDPOINT),
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_release_add,
     .summary = "add a release at weight 0"},
    {.name = "release",
     .sub = "list",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_release_list,
     .summary = "a service's releases, weights and endpoints"},
    {.name = "release",
     .sub = "remove",
     .args = "SERVICE RELEASE",
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_release_remove,
     .summary = "remove a release at weight 0 that is not stable"},
    {.name = "weights",
     .args = "SERVICE RELEASE=PERCENT...",
     .min_pos = 2,
     .max_pos = CLI_MAX_POS,
     .run = cli_weights,
     .summary = "set the split (adds up to 100; releases not named get 0)"},
    {.name = "rollback",
     .args = "SERVICE [--reason TEXT]",
     .flags = F(REASON),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollback,
     .summary = "stable to 100, every other release to 0"},
    {.name = "events",
     .args = "[--since T] [--service S] [--limit N] [--follow]",
     .flags = F(SINCE) | F(SERVICE) | F(LIMIT) | F(FOLLOW),
     .run = cli_events,
     .summary = "the change timeline; --follow until Ctrl-C"},
    {.name = "token",
     .sub = "create",
     .args = "--role viewer|responder|admin [--name NAME]",
     .flags = F(ROLE) | F(NAME),
     .required = F(ROLE),
     .run = cli_token_create,
     .summary = "create an API token (printed once)"},
    {.name = "token",
     .sub = "list",
     .args = "",
     .run = cli_token_list,
     .summary = "the API tokens (names and roles, never the secrets)"},
    {.name = "rollout",
     .sub = "start",
     .args = "SERVICE RELEASE [--steps 1%:60s,5%:120s,...,100%]",
     .flags = F(STEPS),
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_rollout_start,
     .summary = "roll a release out step by step under the judge",
     .help = "--steps: WEIGHT%:HOLD steps separated by commas, the last one without a hold\n"
             "(100%); without --steps the service's configured steps are used."},
    {.name = "rollout",
     .sub = "status",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollout_status,
     .summary = "state, step, time left, the verdict and its evidence"},
    {.name = "rollout",
     .sub = "pause",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollout_command,
     .summary = "hold the rollout at its step"},
    {.name = "rollout",
     .sub = "resume",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollout_command,
     .summary = "go on from a pause with a fresh hold"},
    {.name = "rollout",
     .sub = "promote",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollout_command,
     .summary = "make the release stable now (the old stable becomes previous)"},
    {.name = "rollout",
     .sub = "abort",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_rollout_command,
     .summary = "stop the rollout and give stable all the traffic"},
    {.name = "gate",
     .args = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_gate,
     .summary = "exit 0 when a deploy may start, else 1 and why (for CI)"},
    {.name = "incident",
     .sub = "declare",
     .args = "--title TEXT --severity SEV1|SEV2|SEV3|SEV4 [--service S ...]",
     .flags = F(TITLE) | F(SEVERITY) | F(SERVICES),
     .required = F(TITLE) | F(SEVERITY),
     .run = cli_incident_declare,
     .summary = "declare an incident by hand"},
    {.name = "incident",
     .sub = "list",
     .args = "",
     .run = cli_incident_list,
     .summary = "every incident, with the postmortems that are due"},
    {.name = "incident",
     .sub = "show",
     .args = "ID",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_incident_show,
     .summary = "one incident: times, impact, roles, checklist, timeline"},
    {.name = "incident",
     .sub = "assign",
     .args = "ID commander|comms|ops|scribe NAME",
     .min_pos = 3,
     .max_pos = CLI_MAX_POS,
     .run = cli_incident_assign,
     .summary = "give a role to a person (the words after ROLE)"},
    {.name = "incident",
     .sub = "note",
     .args = "ID TEXT",
     .min_pos = 2,
     .max_pos = CLI_MAX_POS,
     .run = cli_incident_note,
     .summary = "add a note to the timeline (the words after ID)"},
    {.name = "incident",
     .sub = "status",
     .args = "ID investigating|identified|monitoring|resolved",
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_incident_status,
     .summary = "set the incident's status"},
    {.name = "incident",
     .sub = "resolve",
     .args = "ID",
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_incident_resolve,
     .summary = "mark the incident resolved"},
    {.name = "incident",
     .sub = "check",
     .args = "ID ITEM [--undo]",
     .flags = F(UNDO),
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_incident_check,
     .summary = "tick a checklist item (--undo opens it again)",
     .help = "items: comprehend, identify, report, contain, learn, execute, sustain,\n"
             "and data_checked when the release made writes."},
    {.name = "incident",
     .sub = "update",
     .args = "ID --draft|--publish [--audience internal|public] [--known T] ...",
     .flags = F(DRAFT) | F(PUBLISH) | F(AUDIENCE) | F(KNOWN) | F(UNKNOWN) | F(NEXT) | F(NEXT_UPD),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_incident_update,
     .summary = "draft an update from the data, or publish one",
     .help = "--draft prints an update drafted from the measured data (audience internal\n"
             "unless --audience public). --publish publishes one: with none of --known T,\n"
             "--unknown T, --next-steps T, --next-update TIME the draft is published as is;\n"
             "otherwise exactly the fields given (the API refuses an update missing any).\n"
             "TIME is an RFC 3339 time (2026-11-26T18:30:00Z), Unix milliseconds, or a\n"
             "duration from now (30m, 1h)."},
    {.name = "incident",
     .sub = "postmortem",
     .args = "ID [--print]",
     .flags = F(PRINT),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_incident_postmortem,
     .summary = "write the postmortem draft; --print shows its Markdown",
     .help = "The file is written by the server, under its state directory. With --print\n"
             "the Markdown alone goes to stdout and the path to stderr."},
    {.name = "incident",
     .sub = "action add",
     .args = "ID --type prevent|detect|mitigate|process --text TEXT [--owner NAME]",
     .flags = F(TYPE) | F(TEXT) | F(OWNER),
     .required = F(TYPE) | F(TEXT),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_incident_action_add,
     .summary = "add an action item"},
    {.name = "incident",
     .sub = "action done",
     .args = "ID N",
     .min_pos = 2,
     .max_pos = 2,
     .run = cli_incident_action_done,
     .summary = "mark action item N done"},
    {.name = "journal",
     .sub = "impact",
     .args = "SERVICE --release R [--since T] [--until T]",
     .flags = F(RELEASE) | F(SINCE) | F(UNTIL),
     .required = F(RELEASE),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_journal_impact,
     .summary = "a release's writes: routes, identities, records, drops"},
    {.name = "journal",
     .sub = "export",
     .args = "SERVICE --release R [--since T] [--until T] --format csv|jsonl",
     .flags = F(RELEASE) | F(SINCE) | F(UNTIL) | F(FORMAT),
     .required = F(RELEASE) | F(FORMAT),
     .min_pos = 1,
     .max_pos = 1,
     .run = cli_journal_export,
     .summary = "the release's write records, for checking and repair"},
};

#undef F

#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))
#define CLI_COMMON_USAGE "[-c FILE] [--admin URL] [--token TOKEN] [--json]"

/* -------------------------------------------------------------- usage */

static size_t cmd_words(const struct cli_cmd *cmd, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s%s%s%s", cmd->name, cmd->sub ? " " : "",
                     cmd->sub ? cmd->sub : "", cmd->args[0] ? " " : "", cmd->args);

    return n < 0 ? 0 : (size_t)n;
}

void cli_usage(FILE *out)
{
    char line[256];
    size_t n;

    fputs("\nclient commands (they talk to a running firebreak's admin API):\n", out);
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        n = cmd_words(&cli_cmds[i], line, sizeof(line));
        if (n <= 34)
            fprintf(out, "  %-36s%s\n", line, cli_cmds[i].summary);
        else
            fprintf(out, "  %s\n  %-36s%s\n", line, "", cli_cmds[i].summary);
    }
    fputs("\n  every client command takes " CLI_COMMON_USAGE "\n"
          "  the API is at --admin, else $FIREBREAK_ADMIN, else -c FILE's admin.listen,\n"
          "  else http://127.0.0.1:9090; the token is --token, else $FIREBREAK_TOKEN,\n"
          "  else the state directory's admin.token\n",
          out);
}

void cli_cmd_usage(const struct cli_cmd *cmd, FILE *out)
{
    char line[256];

    cmd_words(cmd, line, sizeof(line));
    fprintf(out, "usage: firebreak %s " CLI_COMMON_USAGE "\n", line);
}

static void group_usage(const char *name, FILE *out)
{
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (!strcmp(cli_cmds[i].name, name))
            cli_cmd_usage(&cli_cmds[i], out);
}

int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    fputs("firebreak: ", ctx->err);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
    cli_cmd_usage(ctx->cmd, ctx->err);
    return 2;
}

/* ---------------------------------------------------------- arguments */

static int arg_fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int arg_fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -FB_EINVAL;
}

/* A flag being parsed: "--name", "--name=value" or "-c". */
struct flag_arg {
    const char *text; /* the whole argument, for messages */
    const char *name; /* after the dashes */
    size_t name_len;
    const char *value; /* after '=', or NULL */
};

static bool flag_is(const struct flag_arg *f, const char *name)
{
    return strlen(name) == f->name_len && !memcmp(f->name, name, f->name_len);
}

/* Sets *slot to the flag's value ("--x=v" or the next argument). */
static int flag_value(const struct flag_arg *f, int argc, char **argv, int *i, const char **slot,
                      char *why, size_t whylen)
{
    if (*slot)
        return arg_fail(why, whylen, "--%.*s given twice", (int)f->name_len, f->name);
    if (f->value) {
        *slot = f->value;
        return 0;
    }
    if (*i + 1 >= argc)
        return arg_fail(why, whylen, "%s needs a value", f->text);
    *slot = argv[++*i];
    return 0;
}

static int flag_switch(const struct flag_arg *f, bool *slot, char *why, size_t whylen)
{
    if (f->value)
        return arg_fail(why, whylen, "--%.*s takes no value", (int)f->name_len, f->name);
    *slot = true;
    return 0;
}

/* The common flags; returns 1 when f is none of them. */
static int common_flag(const struct flag_arg *f, int argc, char **argv, int *i, struct cli_args *a,
                       char *why, size_t whylen)
{
    if (flag_is(f, "config") || flag_is(f, "c"))
        return flag_value(f, argc, argv, i, &a->config, why, whylen);
    if (flag_is(f, "admin"))
        return flag_value(f, argc, argv, i, &a->admin, why, whylen);
    if (flag_is(f, "token"))
        return flag_value(f, argc, argv, i, &a->token, why, whylen);
    if (flag_is(f, "json"))
        return flag_switch(f, &a->json, why, whylen);
    if (flag_is(f, "help") || flag_is(f, "h"))
        return flag_switch(f, &a->help, why, whylen);
    return 1;
}

static int cmd_flag(const struct cli_cmd *cmd, const struct flag_arg *f, int argc, char **argv,
                    int *i, struct cli_args *a, char *why, size_t whylen)
{
    const struct cli_flag_def *d;
    bool on = false;
    int id, rc;

    for (id = 0; id < CLI_F_COUNT_; id++)
        if ((cmd->flags & CLI_FLAG(id)) && flag_is(f, cli_flag_defs[id].name))
            break;
    if (id == CLI_F_COUNT_)
        return arg_fail(why, whylen, "unknown flag '%s'", f->text);
    d = &cli_flag_defs[id];
    if (!d->arg) {
        rc = flag_switch(f, &on, why, whylen);
        a->flag[id] = "";
        return rc;
    }
    if (!d->repeat)
        return flag_value(f, argc, argv, i, &a->flag[id], why, whylen);
    if (a->nlist == CLI_MAX_LIST)
        return arg_fail(why, whylen, "more than %d --%s flags", CLI_MAX_LIST, d->name);
    a->flag[id] = NULL;
    rc = flag_value(f, argc, argv, i, &a->flag[id], why, whylen);
    if (rc == 0)
        a->list[a->nlist++] = a->flag[id];
    return rc;
}

static int parse_flag(const struct cli_cmd *cmd, int argc, char **argv, int *i, struct cli_args *a,
                      char *why, size_t whylen)
{
    const char *arg = argv[*i];
    struct flag_arg f = {.text = arg};
    const char *eq;
    int rc;

    if (arg[1] != '-') { /* -c FILE, -cFILE, -h */
        f.name = arg + 1;
        f.name_len = 1;
        f.value = arg[2] ? arg + 2 : NULL;
        if (arg[1] != 'c' && arg[1] != 'h')
            return arg_fail(why, whylen, "unknown flag '%s'", arg);
    } else {
        f.name = arg + 2;
        eq = strchr(f.name, '=');
        f.name_len = eq ? (size_t)(eq - f.name) : strlen(f.name);
        f.value = eq ? eq + 1 : NULL;
    }
    rc = common_flag(&f, argc, argv, i, a, why, whylen);
    if (rc == 1)
        rc = cmd_flag(cmd, &f, argc, argv, i, a, why, whylen);
    return rc;
}

static int check_args(const struct cli_cmd *cmd, const struct cli_args *a, char *why, size_t whylen)
{
    if (a->help)
        return 0;
    if (a->npos < cmd->min_pos)
        return arg_fail(why, whylen, "missing argument%s", cmd->min_pos - a->npos > 1 ? "s" : "");
    if (a->npos > cmd->max_pos)
        return arg_fail(why, whylen, "unexpected argument '%s'", a->pos[cmd->max_pos]);
    for (int id = 0; id < CLI_F_COUNT_; id++)
        if ((cmd->required & CLI_FLAG(id)) && !a->flag[id])
            return arg_fail(why, whylen, "missing --%s", cli_flag_defs[id].name);
    return 0;
}

int cli_parse_args(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, char *why,
                   size_t whylen)
{
    bool only_pos = false;
    int rc = 0;

    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *arg = argv[i];

        if (!only_pos && !strcmp(arg, "--")) {
            only_pos = true;
        } else if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
            rc = parse_flag(cmd, argc, argv, &i, a, why, whylen);
        } else if (arg[0] == '\0') {
            rc = arg_fail(why, whylen, "empty argument");
        } else if (a->npos == CLI_MAX_POS) {
            rc = arg_fail(why, whylen, "more than %d arguments", CLI_MAX_POS);
        } else {
            a->pos[a->npos++] = arg;
        }
    }
    if (rc == 0)
        rc = check_args(cmd, a, why, whylen);
    return rc;
}

int cli_parse_percent(const char *s, unsigned *bp)
{
    unsigned whole = 0, frac = 0, nwhole = 0, nfrac = 0;

    for (; isdigit((unsigned char)*s); s++, nwhole++) {
        whole = whole * 10 + (unsigned)(*s - '0');
        if (whole > 100)
            return -FB_EINVAL;
    }
    if (nwhole == 0)
        return -FB_EINVAL;
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++, nfrac++) {
            if (nfrac == 2)
                return -FB_EINVAL;
            frac = frac * 10 + (unsigned)(*s - '0');
        }
        if (nfrac == 0)
            return -FB_EINVAL;
    }
    if (nfrac == 1)
        frac *= 10;
    if (*s == '%')
        s++;
    if (*s || whole * 100 + frac > 10000)
        return -FB_EINVAL;
    *bp = whole * 100 + frac;
    return 0;
}

int cli_parse_weight(const char *arg, struct cli_weight *w, char *why, size_t whylen)
{
    const char *eq = strchr(arg, '=');
    size_t n;

    if (!eq)
        return arg_fail(why, whylen, "'%s' is not RELEASE=PERCENT", arg);
    n = (size_t)(eq - arg);
    if (n == 0)
        return arg_fail(why, whylen, "missing release name in '%s'", arg);
    if (n >= sizeof(w->name))
        return arg_fail(why, whylen, "release name longer than %zu characters",
                        sizeof(w->name) - 1);
    if (cli_parse_percent(eq + 1, &w->bp))
        return arg_fail(why, whylen,
                        "bad weight '%s' for %.*s: a percentage from 0 to 100 with at most two "
                        "decimals, like 5 or 12.5",
                        eq + 1, (int)n, arg);
    memcpy(w->name, arg, n);
    w->name[n] = '\0';
    return 0;
}

int cli_parse_count(const char *s, long max, long *out)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)s[0]))
        return -FB_EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -FB_EINVAL;
    *out = v;
    return 0;
}

/* ------------------------------------------- the admin API and the token */

/* "0.0.0.0:9090" -> "http://127.0.0.1:9090": a wildcard listener is reached
 * over loopback. */
static void listen_to_url(const char *listen, char *out, size_t len)
{
    if (!strncmp(listen, "0.0.0.0:", 8))
        snprintf(out, len, "http://127.0.0.1:%s", listen + 8);
    else if (!strncmp(listen, "[::]:", 5))
        snprintf(out, len, "http://[::1]:%s", listen + 5);
    else
        snprintf(out, len, "http://%s", listen);
}

static int ctx_admin(struct cli_ctx *ctx, const struct cli_args *a, const struct config *cfg)
{
    const char *env = getenv("FIREBREAK_ADMIN"), *text, *from;
    struct client_url url;
    char buf[600], why[256];

    if (a->admin) {
        text = a->admin;
        from = "--admin";
    } else if (env && *env) {
        text = env;
        from = "FIREBREAK_ADMIN";
    } else if (cfg && cfg->admin_listen.text) {
        listen_to_url(cfg->admin_listen.text, buf, sizeof(buf));
        text = buf;
        from = "admin.listen";
    } else {
        text = CLI_DEFAULT_ADMIN;
        from = "the default";
    }
    if (client_url_parse(text, &url, why, sizeof(why))) {
        fprintf(ctx->err, "firebreak: invalid: bad admin API address '%s' (from %s): %s\n", text,
                from, why);
        return a->admin ? 2 : 1;
    }
    client_init(&ctx->client, &url, NULL);
    return 0;
}

/* Reads the token file into ctx->token_buf, trimmed. Returns 0 or an errno
 * value (ENOENT, EACCES, ...; EFBIG when too large, ENODATA when empty). */
static int read_token_file(struct cli_ctx *ctx, const char *path)
{
    char *buf = ctx->token_buf, *start;
    size_t cap = sizeof(ctx->token_buf), len = 0;
    ssize_t n = 1;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno;
    while (n > 0 && len < cap) {
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            n = 1;
        else if (n < 0)
            rc = errno;
        else
            len += (size_t)n;
    }
    close(fd);
    if (rc == 0 && len == cap)
        rc = EFBIG;
    while (rc == 0 && len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    buf[rc ? 0 : len] = '\0';
    start = buf + strspn(buf, " \t\r\n");
    memmove(buf, start, strlen(start) + 1);
    if (rc == 0 && buf[0] == '\0')
        rc = ENODATA;
    return rc;
}

static void ctx_token(struct cli_ctx *ctx, const struct cli_args *a, const struct config *cfg)
{
    const char *env = getenv("FIREBREAK_TOKEN");
    const char *state = cfg && cfg->state_dir ? cfg->state_dir : CLI_DEFAULT_STATE;
    char path[1024];
    int err;

    if (a->token) {
        ctx->client.token = a->token;
        snprintf(ctx->token_from, sizeof(ctx->token_from), "the token came from --token");
        return;
    }
    if (env && *env) {
        ctx->client.token = env;
        snprintf(ctx->token_from, sizeof(ctx->token_from), "the token came from FIREBREAK_TOKEN");
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", state, CLI_TOKEN_FILE);
    err = read_token_file(ctx, path);
    if (err == 0) {
        ctx->client.token = ctx->token_buf;
        snprintf(ctx->token_from, sizeof(ctx->token_from), "the token was read from %s", path);
        return;
    }
    snprintf(ctx->token_from, sizeof(ctx->token_from),
             "no token was sent: FIREBREAK_TOKEN is not set and %s %s%s", path,
             err == ENOENT    ? "does not exist"
             : err == ENODATA ? "is empty"
             : err == EFBIG   ? "is too large to be a token"
                              : "cannot be read: ",
             err == ENOENT || err == ENODATA || err == EFBIG ? "" : strerror(err));
}

static int ctx_setup(struct cli_ctx *ctx, const struct cli_args *a)
{
    struct config *cfg = NULL;
    struct config_error cerr;
    char msg[1024];
    int rc;

    ctx->json = a->json;
    ctx->follow_interval_ms = 500;
    if (a->config && config_load(a->config, &cfg, &cerr)) {
        config_error_format(&cerr, a->config, msg, sizeof(msg));
        fprintf(ctx->err, "firebreak: %s\n", msg);
        return 1;
    }
    rc = ctx_admin(ctx, a, cfg);
    if (rc == 0)
        ctx_token(ctx, a, cfg);
    config_free(cfg);
    return rc;
}

/* ------------------------------------------------------------ API calls */

/* Writes s on f with control characters shown as '?', at most max bytes. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++)
        fputc(iscntrl((unsigned char)s[i]) ? '?' : s[i], f);
}

void cli_put_clean(FILE *out, const char *s)
{
    put_clean(out, s, (size_t)-1);
}

static int status_err(int status)
{
    switch (status) {
    case 400:
        return -FB_EINVAL;
    case 401:
        return -FB_EUNAUTH;
    case 403:
        return -FB_EFORBID;
    case 404:
        return -FB_ENOENT;
    case 409:
        return -FB_ECONFLICT;
    default:
        return status >= 500 ? -FB_EIO : -FB_EBADRESP;
    }
}

/* Prints an answer that is not 2xx. */
static void report_status(struct cli_ctx *ctx, const struct client_response *resp)
{
    json_t *j = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    const char *name = cli_json_str(j, "error"), *msg = cli_json_str(j, "message");

    fputs("firebreak: ", ctx->err);
    if (name && msg) {
        put_clean(ctx->err, name, 64);
        fputs(": ", ctx->err);
        put_clean(ctx->err, msg, 1024);
    } else {
        fprintf(ctx->err, "the admin API at %s answered %d %s", ctx->client.url.text, resp->status,
                resp->reason);
        if (resp->body.len) {
            fputs(": ", ctx->err);
            put_clean(ctx->err, resp->body.data, 200);
        }
    }
    fputc('\n', ctx->err);
    if (resp->status == 401)
        fprintf(ctx->err, "firebreak: %s\n", ctx->token_from);
    if (ctx->json && j)
        cli_print_json(ctx, j);
    json_decref(j);
}

/* Prints why no answer was read. */
static void report_failure(struct cli_ctx *ctx, int rc, const struct client_response *resp)
{
    const char *url = ctx->client.url.text;

    if (rc == -FB_ECONNECT)
        fprintf(ctx->err, "firebreak: cannot reach the admin API at %s: %s%s\n", url, resp->why,
                resp->sys_errno == ECONNREFUSED ? " (is firebreak serve running?)" : "");
    else
        fprintf(ctx->err, "firebreak: %s: the admin API at %s: %s\n", fb_err_name(rc), url,
                resp->why);
}

int cli_call_raw(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                 struct client_response *resp)
{
    char *text = NULL;
    int rc;

    memset(resp, 0, sizeof(*resp));
    if (body) {
        text = json_dumps(body, JSON_COMPACT | CLI_JSON_FLAGS);
        if (!text) {
            fprintf(ctx->err, "firebreak: out_of_memory: cannot encode the request\n");
            return -FB_ENOMEM;
        }
    }
    rc = client_request(&ctx->client, method, path, text, text ? strlen(text) : 0, resp);
    if (rc) {
        report_failure(ctx, rc, resp);
    } else if (resp->status < 200 || resp->status > 299) {
        report_status(ctx, resp);
        rc = status_err(resp->status);
    }
    if (rc)
        client_response_release(resp);
    free(text);
    return rc;
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
             json_t **answer)
{
    struct client_response resp;
    json_error_t jerr;
    int rc;

    *answer = NULL;
    rc = cli_call_raw(ctx, method, path, body, &resp);
    if (rc)
        return rc;
    if (resp.body.len) {
        *answer = json_loadb(resp.body.data, resp.body.len, 0, &jerr);
        if (!*answer) {
            fprintf(ctx->err,
                    "firebreak: bad_response: the admin API at %s answered with a "
                    "body that is not JSON: %s\n",
                    ctx->client.url.text, jerr.text);
            rc = -FB_EBADRESP;
        }
    }
    client_response_release(&resp);
    return rc;
}

int cli_service_path(struct fb_buf *b, const char *service, const char *sub, const char *item)
{
    int rc;

    fb_buf_init(b, 4096);
    rc = fb_buf_puts(b, "/api/v1/services/");
    if (rc == 0)
        rc = client_escape(b, service);
    if (rc == 0 && sub)
        rc = fb_buf_printf(b, "/%s", sub);
    if (rc == 0 && item)
        rc = fb_buf_puts(b, "/");
    if (rc == 0 && item)
        rc = client_escape(b, item);
    return rc;
}

void cli_print_json(struct cli_ctx *ctx, const json_t *j)
{
    if (!j)
        return;
    json_dumpf(j, ctx->out, JSON_INDENT(2) | CLI_JSON_FLAGS);
    fputc('\n', ctx->out);
}

const char *cli_json_str(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

bool cli_json_num(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* ---------------------------------------------------------------- times */

/* n decimal digits at s into *v; false when one is not a digit. */
static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The zone of an RFC 3339 time: "Z" or "+HH:MM" / "-HH:MM", into minutes
 * east of UTC. */
static bool zone(const char *s, int *minutes)
{
    int h, m;

    if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
        *minutes = 0;
        return true;
    }
    if ((s[0] != '+' && s[0] != '-') || !digits(s + 1, 2, &h) || s[3] != ':' ||
        !digits(s + 4, 2, &m) || s[6] != '\0' || h > 23 || m > 59)
        return false;
    *minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
    return true;
}

/* "2026-11-26T18:30:45[.599](Z|+01:00)" -> Unix ms. */
static int parse_rfc3339(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, ms = 0, nfrac = 0, off;
    const char *p = s + 19;

    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -FB_EINVAL;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, nfrac++)
            if (nfrac < 3)
                ms = ms * 10 + (*p - '0');
        if (nfrac == 0)
            return -FB_EINVAL;
        for (int i = nfrac; i < 3; i++)
            ms *= 10;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) ||
        h > 23 || mi > 59 || sec > 60 || !zone(p, &off))
        return -FB_EINVAL;
    *out = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - off * 60) * 1000 + ms;
    return 0;
}

/* The unit at *p ("ms", "s", "m", "h", "d") in milliseconds, moving *p past
 * it; 0 when there is none. */
static int64_t unit_ms(const char **p)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);

        if (!strncmp(*p, units[i].name, n)) {
            *p += n;
            return units[i].ms;
        }
    }
    return 0;
}

/* "30m", "1h30m", "90s", "2d" -> milliseconds (> 0, at most a year). */
static int parse_span_ms(const char *s, int64_t *out)
{
    int64_t total = 0, v, unit;
    char *end;

    while (*s) {
        if (!isdigit((unsigned char)*s))
            return -FB_EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        s = end;
        unit = unit_ms(&s);
        if (errno || v > 1000000000LL || unit == 0)
            return -FB_EINVAL;
        total += v * unit;
        if (total > 366LL * 86400000)
            return -FB_EINVAL;
    }
    if (total <= 0)
        return -FB_EINVAL;
    *out = total;
    return 0;
}

int cli_parse_future_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    int64_t v;
    char *end;

    if (isdigit((unsigned char)s[0]) && strlen(s) > 4 && s[4] == '-')
        return parse_rfc3339(s, out_ms);
    if (parse_span_ms(s, &v) == 0) {
        *out_ms = now_ms + v;
        return 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return -FB_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return -FB_EINVAL;
    *out_ms = v;
    return 0;
}

void cli_format_span(double seconds, char *out, size_t len)
{
    const char *sign = seconds < 0 ? "-" : "";
    double a = fabs(seconds);
    long long t;

    if (!isfinite(seconds))
        snprintf(out, len, "-");
    else if (a < 1)
        snprintf(out, len, "%s%.0fms", sign, a * 1000);
    else if (a < 59.95)
        snprintf(out, len, "%s%.1fs", sign, a);
    else if ((t = llround(a)) < 3600)
        snprintf(out, len, "%s%lldm%02llds", sign, t / 60, t % 60);
    else if (t < 86400)
        snprintf(out, len, "%s%lldh%02lldm", sign, t / 3600, t % 3600 / 60);
    else
        snprintf(out, len, "%s%lldd%02lldh", sign, t / 86400, t % 86400 / 3600);
}

int cli_join_words(const struct cli_args *a, size_t from, struct fb_buf *out)
{
    int rc = 0;

    fb_buf_init(out, 64u << 10);
    for (size_t i = from; i < a->npos && rc == 0; i++)
        rc = fb_buf_printf(out, "%s%s", i > from ? " " : "", a->pos[i]);
    if (rc == 0 && !out->data)
        rc = fb_buf_puts(out, "");
    return rc;
}

/* -------------------------------------------------------------- output */

void cli_format_weight(double pct, bool fixed, char *out, size_t len)
{
    long bp;

    if (!isfinite(pct) || pct < 0 || pct > 1e6) {
        snprintf(out, len, "%g", pct);
        return;
    }
    bp = lround(pct * 100);
    if (fixed || bp % 10)
        snprintf(out, len, "%ld.%02ld", bp / 100, bp % 100);
    else if (bp % 100)
        snprintf(out, len, "%ld.%ld", bp / 100, (bp % 100) / 10);
    else
        snprintf(out, len, "%ld", bp / 100);
}

void cli_format_duration_us(double us, char *out, size_t len)
{
    if (!isfinite(us) || us < 0)
        snprintf(out, len, "%g us", us);
    else if (us < 1000)
        snprintf(out, len, "%.0f us", us);
    else if (us < 1e6)
        snprintf(out, len, "%.2f ms", us / 1e3);
    else
        snprintf(out, len, "%.2f s", us / 1e6);
}

void cli_format_time(const json_t *obj, const char *key, char *out, size_t len)
{
    char ms_key[64], text[64];
    const json_t *ms;
    const char *s;

    snprintf(ms_key, sizeof(ms_key), "%s_ms", key);
    ms = json_is_object(obj) ? json_object_get(obj, ms_key) : NULL;
    if (json_is_integer(ms) && json_integer_value(ms) >= 0) {
        fb_format_time((int64_t)json_integer_value(ms), text);
        snprintf(out, len, "%s", text);
    } else if ((s = cli_json_str(obj, key))) {
        snprintf(out, len, "%s", s);
    } else {
        snprintf(out, len, "-");
    }
}

/* True when a string detail must be quoted to read unambiguously. */
static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '=' || iscntrl((unsigned char)*s))
            return true;
    return false;
}

static int append_json(struct fb_buf *out, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | CLI_JSON_FLAGS);
    int rc = text ? fb_buf_puts(out, text) : -FB_ENOMEM;

    free(text);
    return rc;
}

int cli_format_details(const json_t *details, struct fb_buf *out)
{
    const char *key, *s;
    const json_t *v;
    bool first = true;
    int rc = 0;

    if (!details || json_is_null(details))
        return 0;
    if (!json_is_object(details))
        return append_json(out, details);
    for (void *it = json_object_iter((json_t *)details); it;
         it = json_object_iter_next((json_t *)details, it)) {
        key = json_object_iter_key(it);
        v = json_object_iter_value(it);
        rc = fb_buf_printf(out, "%s%s=", first ? "" : " ", key);
        s = json_is_string(v) ? json_string_value(v) : NULL;
        if (rc == 0 && s && !needs_quotes(s))
            rc = fb_buf_puts(out, s);
        else if (rc == 0)
            rc = append_json(out, v);
        if (rc)
            break;
        first = false;
    }
    return rc;
}

void cli_table_init(struct cli_table *t, const char *spec)
{
    const char *p = spec, *end;
    size_t n;

    memset(t, 0, sizeof(*t));
    fb_buf_init(&t->cells, CLIENT_MAX_BODY);
    while (t->ncols < CLI_TABLE_MAX_COLS && t->err == 0) {
        end = strchr(p, ',');
        n = end ? (size_t)(end - p) : strlen(p);
        if (n > 0 && *p == '>') {
            t->right[t->ncols] = true;
            p++;
            n--;
        }
        t->err = fb_buf_append(&t->cells, p, n);
        if (t->err == 0)
            t->err = fb_buf_append(&t->cells, "", 1);
        t->ncols++;
        if (!end)
            break;
        p = end + 1;
    }
    t->nrows = 1;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
    size_t start = t->cells.len;

    for (unsigned c = 0; c < t->ncols && t->err == 0; c++) {
        const char *s = cells[c] ? cells[c] : "-";

        for (; *s && t->err == 0; s++) {
            char ch = iscntrl((unsigned char)*s) ? '?' : *s;

            t->err = fb_buf_append(&t->cells, &ch, 1);
        }
        if (t->err == 0)
            t->err = fb_buf_append(&t->cells, "", 1);
    }
    if (t->err)
        t->cells.len = start; /* keep whole rows only */
    else
        t->nrows++;
}

/* Columns a cell takes: UTF-8 continuation bytes take none. */
static size_t cell_width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void table_widths(const struct cli_table *t, size_t *width)
{
    const char *p = t->cells.data;

    for (unsigned c = 0; c < t->ncols; c++)
        width[c] = t->min_width[c];
    for (size_t r = 0; r < t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            size_t w = cell_width(p);

            if (w > width[c])
                width[c] = w;
            p += strlen(p) + 1;
        }
    }
}

static void print_cell(FILE *out, const char *s, size_t width, bool right, bool last)
{
    size_t pad = width - cell_width(s);

    if (right)
        fprintf(out, "%*s", (int)pad, "");
    fputs(s, out);
    if (!right && !last)
        fprintf(out, "%*s", (int)pad, "");
    fputs(last ? "\n" : "  ", out);
}

int cli_table_print(const struct cli_table *t, FILE *out, bool heading)
{
    size_t width[CLI_TABLE_MAX_COLS];
    const char *p = t->cells.data;

    if (t->err || !p)
        return t->err ? t->err : -FB_ENOMEM;
    table_widths(t, width);
    for (size_t r = 0; r < t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            if (r > 0 || heading)
                print_cell(out, p, width[c], t->right[c], c + 1 == t->ncols);
            p += strlen(p) + 1;
        }
    }
    return 0;
}

void cli_table_release(struct cli_table *t)
{
    fb_buf_release(&t->cells);
}

/* ------------------------------------------------------------- dispatch */

/* True when argv[1..] spell sub ("add" or "action add"); *words is then
 * how many arguments named the command, its name included. */
static bool sub_matches(const char *sub, int argc, char **argv, int *words)
{
    const char *sp = strchr(sub, ' ');
    size_t n = sp ? (size_t)(sp - sub) : strlen(sub);

    if (argc < 2 || strlen(argv[1]) != n || memcmp(argv[1], sub, n))
        return false;
    if (sp && (argc < 3 || strcmp(argv[2], sp + 1)))
        return false;
    *words = sp ? 3 : 2;
    return true;
}

static bool is_help(const char *arg)
{
    return arg && (!strcmp(arg, "-h") || !strcmp(arg, "--help"));
}

/* True when word is the first of a two-word subcommand of name ("action"). */
static bool sub_prefix(const char *name, const char *word)
{
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        const char *sub = cli_cmds[i].sub, *sp = sub ? strchr(sub, ' ') : NULL;

        if (sp && !strcmp(cli_cmds[i].name, name) && strlen(word) == (size_t)(sp - sub) &&
            !memcmp(word, sub, (size_t)(sp - sub)))
            return true;
    }
    return false;
}

/* Finds the row for argv; *words is how many arguments named it. Returns 0,
 * or the exit code when there is nothing to run (help or a usage error). */
static int pick_cmd(int argc, char **argv, FILE *out, FILE *err, const struct cli_cmd **cmd,
                    int *words)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    size_t i;

    for (i = 0; i < CLI_NCMDS && strcmp(cli_cmds[i].name, argv[0]); i++)
        ;
    *cmd = &cli_cmds[i];
    *words = 1;
    if (!cli_cmds[i].sub)
        return 0;
    if (sub && sub_prefix(argv[0], sub) && argc > 2 && argv[2][0] == '-' && !is_help(argv[2]))
        argc = 2; /* "incident action --json": the second word is missing */
    if (is_help(sub) || (sub && sub_prefix(argv[0], sub) && argc > 2 && is_help(argv[2]))) {
        group_usage(argv[0], out);
        return -2; /* help shown: exit 0 */
    }
    for (; i < CLI_NCMDS && !strcmp(cli_cmds[i].name, argv[0]); i++) {
        if (sub_matches(cli_cmds[i].sub, argc, argv, words)) {
            *cmd = &cli_cmds[i];
            return 0;
        }
    }
    if (sub && sub_prefix(argv[0], sub) && argc > 2)
        fprintf(err, "firebreak: unknown subcommand '%s %s' for '%s'\n", sub, argv[2], argv[0]);
    else if (sub && sub_prefix(argv[0], sub))
        fprintf(err, "firebreak: '%s %s' needs a subcommand\n", argv[0], sub);
    else if (sub)
        fprintf(err, "firebreak: unknown subcommand '%s' for '%s'\n", sub, argv[0]);
    else
        fprintf(err, "firebreak: '%s' needs a subcommand\n", argv[0]);
    group_usage(argv[0], err);
    return 2;
}

static bool is_client_cmd(const char *name)
{
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (!strcmp(cli_cmds[i].name, name))
            return true;
    return false;
}

int cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    struct cli_ctx ctx = {.out = out, .err = err};
    struct cli_args args;
    char why[256];
    int rc, words;

    if (argc < 1 || !is_client_cmd(argv[0]))
        return -1;
    rc = pick_cmd(argc, argv, out, err, &ctx.cmd, &words);
    if (rc)
        return rc == -2 ? 0 : rc;
    if (cli_parse_args(ctx.cmd, argc - words, argv + words, &args, why, sizeof(why))) {
        fprintf(err, "firebreak: %s\n", why);
        cli_cmd_usage(ctx.cmd, err);
        return 2;
    }
    if (args.help) {
        cli_cmd_usage(ctx.cmd, out);
        fprintf(out, "%s\n", ctx.cmd->summary);
        if (ctx.cmd->help)
            fprintf(out, "%s\n", ctx.cmd->help);
        return 0;
    }
    rc = ctx_setup(&ctx, &args);
    if (rc == 0)
        rc = ctx.cmd->run(&ctx, &args);
    fflush(out);
    explicit_bzero(ctx.token_buf, sizeof(ctx.token_buf));
    return rc;
}

int cli_main(int argc, char **argv)
{
    return cli_run(argc, argv, stdout, stderr);
}
