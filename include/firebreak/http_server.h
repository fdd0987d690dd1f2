/* http_server.h: start and stop a small HTTP/1.1 server on a libuv loop. */
#ifndef FIREBREAK_HTTP_SERVER_H
#define FIREBREAK_HTTP_SERVER_H

#include <uv.h>

#include "config-t.h"
#include "http_server-t.h"

/*
 * Listens on addr and calls fn for every complete request (head plus a body
 * of at most max_body bytes, given with Content-Length). Returns 0 and the
 * server in *out, or a negative error code (-FB_EEXIST: address in use).
 */
int http_server_new(uv_loop_t *loop, const struct cfg_addr *addr, size_t max_body,
                    http_handler_fn fn, void *arg, struct http_server **out);
/* Stops listening and closes every connection; the memory is freed once
 * libuv has closed the handles. */
void http_server_close(struct http_server *s);

/* Sends call->resp (unless the client is gone) and frees the call. */
void http_call_done(struct http_call *call);

/* Helpers for handlers. */
void http_response_json_error(struct http_response *resp, int err, const char *message);
void http_response_text(struct http_response *resp, int status, const char *text);
const struct h1_field *http_request_field(const struct http_request *req, const char *lower);

#endif
