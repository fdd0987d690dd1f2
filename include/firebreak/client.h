/*
 * client.h: a small blocking HTTP/1.1 client for the admin API.
 *
 * One request per connection; every wait bounded by poll() and a deadline;
 * answers parsed by the strict parser of h1_parse.h. Used by the CLI only.
 */
#ifndef FIREBREAK_CLIENT_H
#define FIREBREAK_CLIENT_H

#include "client-t.h"

/*
 * Parses "http://HOST[:PORT][/BASE]" (the scheme may be left out; HOST may be
 * a name, an IPv4 address or a bracketed IPv6 address). Returns 0, or
 * -FB_EINVAL with why naming what was wrong (out is then zeroed).
 */
int client_url_parse(const char *text, struct client_url *out, char *why, size_t whylen);

/* Sets the defaults of client-t.h; url is copied, token borrowed. */
void client_init(struct client *c, const struct client_url *url, const char *token);

/*
 * Sends METHOD BASE+path with body (body_len bytes, may be NULL/0; sent as
 * application/json) and reads the whole answer into resp, which the call
 * initialises and the caller releases whatever the result. path starts with
 * '/' and is already percent-encoded (client_escape).
 * Returns 0 when an answer was read (any status, 4xx and 5xx included), or:
 *   -FB_EINVAL    bad method, path or token characters (nothing was sent)
 *   -FB_ECONNECT  no connection (resp->sys_errno, resp->why)
 *   -FB_ETIMEOUT  no connection or no whole answer in time
 *   -FB_EBADRESP  the answer broke HTTP/1.1 framing, or the peer closed early
 *   -FB_ETOOBIG   the answer is over c->max_body, or the request body over 1 MiB
 *   -FB_EIO, -FB_ENOMEM
 * resp->why says what went wrong on every failure.
 */
int client_request(const struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, struct client_response *resp);

void client_response_release(struct client_response *resp);

/* Appends s percent-encoded for a path segment or a query value (everything
 * but ALPHA, DIGIT and "-._~" is encoded). Returns 0 or an fb_buf error. */
int client_escape(struct fb_buf *b, const char *s);

#endif
