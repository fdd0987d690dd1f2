/*
 * api.h: the JSON API under /api/v1 (docs/api.md).
 *
 * api.c authenticates and dispatches; api_<resource>.c hold the handlers.
 * Every handler runs on the control thread and answers through the call,
 * at once or after a store round trip.
 */
#ifndef FIREBREAK_API_H
#define FIREBREAK_API_H

#include <jansson.h>
#include <stdbool.h>

#include "control-t.h"
#include "http_server-t.h"

#define API_MAX_SEGMENTS 8

struct server;

/* One API request, already authenticated. */
struct api_ctx {
    struct server *srv;
    struct control *ctl;
    struct http_call *call;
    const struct token *token;
    const char *seg[API_MAX_SEGMENTS]; /* path after /api/v1, split on '/' */
    unsigned nseg;
    char segbuf[512];
};

/* Handles /api/v1/... (returns after answering, or after queuing work that
 * answers later). */
void api_handle(struct server *srv, struct http_call *call);

/* For handlers. */
bool api_allowed(struct api_ctx *a, enum token_role need);
void api_error(struct api_ctx *a, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends j (takes ownership) with status. The ctx lives only until
 * api_handle returns: work that answers later keeps the call and uses
 * api_reply_to. */
void api_reply(struct api_ctx *a, int status, json_t *j);
void api_reply_to(struct http_call *call, int status, json_t *j);
/* Parses the body as a JSON object; on failure answers 400 and returns NULL. */
json_t *api_body(struct api_ctx *a);
/* Query parameter value (not decoded beyond %XX); NULL when absent. */
bool api_query(const struct api_ctx *a, const char *name, char *out, size_t outlen);
bool api_method(const struct api_ctx *a, const char *method);
/* An RFC 3339 time for wall milliseconds, as a JSON string. */
json_t *api_time(int64_t ms);
/* Parses "since" forms: RFC 3339, Unix ms, or a duration back from now. */
int api_parse_since(const char *s, int64_t *out_ms);

struct store_event;
/* One event as the API shows it. */
json_t *api_event_json(const struct store_event *e);

/* Resource handlers; each returns false when the path is not its own. */
bool api_services(struct api_ctx *a);
bool api_events(struct api_ctx *a);
bool api_tokens(struct api_ctx *a);
bool api_rollout(struct api_ctx *a);
bool api_incidents(struct api_ctx *a);
bool api_webhooks(struct api_ctx *a);
bool api_journal(struct api_ctx *a);

#endif
