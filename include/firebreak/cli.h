/*
 * cli.h: the command-line client of the admin API (src/cli).
 *
 * main.c hands every command it does not run itself to cli_main; the rest of
 * this header is shared by the cmd_*.c files and the unit tests.
 */
#ifndef FIREBREAK_CLI_H
#define FIREBREAK_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "cli-t.h"

/* Runs a client command: argv[0] is its name ("status"). Returns the exit code
 * (0 ok, 1 refused or failed, 2 usage), or -1 when argv[0] names no client
 * command (the caller then prints its usage). */
int cli_main(int argc, char **argv);

/* Same, printing answers on out and messages on err (both borrowed). */
int cli_run(int argc, char **argv, FILE *out, FILE *err);

/* Prints the client commands' part of `firebreak help`. */
void cli_usage(FILE *out);

/* ---------------------------------------------------------- arguments */

/* Parses the arguments after the command words for cmd into a (strings are
 * borrowed from argv). Returns 0, or -FB_EINVAL with why naming the problem. */
int cli_parse_args(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, char *why,
                   size_t whylen);

/* "12.5" -> 1250: a number from 0 to 100 with at most two decimals and an
 * optional '%'. Returns 0 or -FB_EINVAL. */
int cli_parse_percent(const char *s, unsigned *bp);

/* "v2=12.5" -> {"v2", 1250}. Returns 0 or -FB_EINVAL with why set. */
int cli_parse_weight(const char *arg, struct cli_weight *w, char *why, size_t whylen);

/* A decimal integer from 1 to max, nothing else. Returns 0 or -FB_EINVAL. */
int cli_parse_count(const char *s, long max, long *out);

/*
 * A time in the future: an RFC 3339 time ("2026-11-26T18:30:00Z", an
 * optional fraction, "Z" or "+HH:MM"), Unix milliseconds, or a duration from
 * now_ms ("30m", "1h30m", "90s", "2d"; at most a year). Returns 0 with
 * *out_ms set, or -FB_EINVAL.
 */
int cli_parse_future_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Fills out (initialised here, released by the caller) with the positional
 * arguments from index from on, joined by single spaces ("" when none).
 * Returns 0 or an fb_buf error. */
int cli_join_words(const struct cli_args *a, size_t from, struct fb_buf *out);

/* Prints cmd's usage line ("usage: firebreak ...") on out. */
void cli_cmd_usage(const struct cli_cmd *cmd, FILE *out);

/* Prints "firebreak: MESSAGE" and the command's usage on ctx->err; returns 2. */
int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------- API calls */

/*
 * One API call. body (borrowed, may be NULL) is sent as JSON. On a 2xx answer
 * returns 0 with *answer the parsed body (NULL when empty), owned by the
 * caller (json_decref). Otherwise prints on ctx->err what went wrong (the
 * API's error name and message; where the token came from on a 401; how the
 * connection failed) and, with --json, the error body on ctx->out, and returns
 * a negative code.
 */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
             json_t **answer);

/*
 * Same for an answer that is not JSON (an export): on a 2xx answer returns 0
 * with resp holding the body as it came (the caller releases it with
 * client_response_release); otherwise reports as cli_call does and returns a
 * negative code with resp already released.
 */
int cli_call_raw(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                 struct client_response *resp);

/*
 * Fills b (initialised here, released by the caller) with
 * "/api/v1/services/SERVICE[/SUB[/ITEM]]", names percent-encoded. Returns 0,
 * or -FB_ETOOBIG when the names are absurdly long.
 */
int cli_service_path(struct fb_buf *b, const char *service, const char *sub, const char *item);

/* Pretty-prints j (two-space indent) and a newline on ctx->out. */
void cli_print_json(struct cli_ctx *ctx, const json_t *j);

/* The string member key of obj, or NULL when absent or not a string. */
const char *cli_json_str(const json_t *obj, const char *key);

/* The number member key of obj into *out; false when absent or not a number. */
bool cli_json_num(const json_t *obj, const char *key, double *out);

/* ------------------------------------------------------------- output */

/* Writes s (from the API) on out with control characters shown as '?'. */
void cli_put_clean(FILE *out, const char *s);

/* Weight in percent: "12.5" (fixed false) or "12.50" (fixed true). */
void cli_format_weight(double pct, bool fixed, char *out, size_t len);

/* "41 us", "1.25 ms", "2.50 s". */
void cli_format_duration_us(double us, char *out, size_t len);

/* A span of seconds, compact and signed: "850ms", "12.3s", "4m05s", "2h03m",
 * "3d04h", "-2m00s"; "-" when not finite. */
void cli_format_span(double seconds, char *out, size_t len);

/* The time in obj: "KEY_ms" (Unix ms) shown as UTC ISO 8601 with ms, else the
 * string "KEY", else "-". */
void cli_format_time(const json_t *obj, const char *key, char *out, size_t len);

/* Appends an event's details as "key=value key=value" (strings with spaces
 * quoted, objects as compact JSON). Returns 0 or an fb_buf error. */
int cli_format_details(const json_t *details, struct fb_buf *out);

/* spec names the columns, comma-separated; a leading '>' right-aligns one:
 * "RELEASE,>WEIGHT%". */
void cli_table_init(struct cli_table *t, const char *spec);
/* Adds a row of t->ncols cells (copied; NULL shows as "-"; control
 * characters show as '?'). */
void cli_table_add(struct cli_table *t, const char *const *cells);
/* Prints the rows (and the heading when asked) with aligned columns. Returns
 * 0, or the first append failure (nothing printed). */
int cli_table_print(const struct cli_table *t, FILE *out, bool heading);
void cli_table_release(struct cli_table *t);

/* ------------------------------------------------- the commands (cmd_*.c) */

int cli_status(struct cli_ctx *ctx, const struct cli_args *a);
int cli_events(struct cli_ctx *ctx, const struct cli_args *a);
int cli_token_create(struct cli_ctx *ctx, const struct cli_args *a);
int cli_token_list(struct cli_ctx *ctx, const struct cli_args *a);
int cli_release_add(struct cli_ctx *ctx, const struct cli_args *a);
int cli_release_list(struct cli_ctx *ctx, const struct cli_args *a);
int cli_release_remove(struct cli_ctx *ctx, const struct cli_args *a);
int cli_weights(struct cli_ctx *ctx, const struct cli_args *a);
int cli_rollback(struct cli_ctx *ctx, const struct cli_args *a);

/* cmd_rollout.c */
int cli_rollout_start(struct cli_ctx *ctx, const struct cli_args *a);
int cli_rollout_status(struct cli_ctx *ctx, const struct cli_args *a);
/* pause, resume, promote, abort: the verb is ctx->cmd->sub. */
int cli_rollout_command(struct cli_ctx *ctx, const struct cli_args *a);
int cli_gate(struct cli_ctx *ctx, const struct cli_args *a);
/* Prints a judge verdict (the "verdict" object of a rollout, or an
 * incident's "evidence"; borrowed): the outcome and reason, the one-line
 * summary when there is one, then one row per test with canary and stable
 * counts and rates, the statistic and its thresholds. Returns 0, or 1 when
 * the table could not be built. */
int cli_print_evidence(struct cli_ctx *ctx, const json_t *verdict);

/* cmd_incident.c */
int cli_incident_declare(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_list(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_show(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_assign(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_note(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_status(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_resolve(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_check(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_update(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_postmortem(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_action_add(struct cli_ctx *ctx, const struct cli_args *a);
int cli_incident_action_done(struct cli_ctx *ctx, const struct cli_args *a);

/* cmd_journal.c */
int cli_journal_impact(struct cli_ctx *ctx, const struct cli_args *a);
int cli_journal_export(struct cli_ctx *ctx, const struct cli_args *a);

#endif
