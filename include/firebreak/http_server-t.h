/* http_server-t.h: a small HTTP/1.1 server for the admin and status listeners. */
#ifndef FIREBREAK_HTTP_SERVER_T_H
#define FIREBREAK_HTTP_SERVER_T_H

#include <stdbool.h>
#include <stddef.h>

#include "buf-t.h"
#include "h1_parse-t.h"

#define HTTP_SERVER_MAX_FIELDS 100

struct http_request {
    enum h1_method method;
    struct h1_span method_name;
    struct h1_span path;  /* target up to '?' */
    struct h1_span query; /* after '?', without it; len 0 when absent */
    const struct h1_field *fields;
    unsigned nfields;
    const char *body;     /* NUL-terminated copy owned by the server */
    size_t body_len;
    const char *peer;     /* client address */
    uint64_t arrival_ns;  /* monotonic time the whole request had been read */
};

struct http_response {
    int status;
    const char *content_type; /* borrowed static string; default application/json */
    struct fb_buf headers;    /* extra header lines, each ending in CRLF */
    struct fb_buf body;
};

struct http_server;
struct http_conn;

/*
 * One request and its answer. The handler fills resp and calls
 * http_call_done, at once or later (after a store round trip); everything in
 * req stays valid until then. The connection handles no other request
 * meanwhile, so answers keep their order.
 */
struct http_call {
    struct http_request req;
    struct http_response resp;
    struct http_conn *conn; /* NULL once the client went away */
    bool head_only;
    char *raw;              /* copy of head and body that req points into */
    struct h1_field fields[HTTP_SERVER_MAX_FIELDS];
};

typedef void (*http_handler_fn)(void *arg, struct http_call *call);

#endif
