/*
 * h1_parse-t.h: types of the strict HTTP/1.1 parser (RFC 9112).
 *
 * The parser is pure: no I/O, no allocation. Spans point into the caller's
 * buffer and stay valid while that buffer is unchanged.
 */
#ifndef FIREBREAK_H1_PARSE_T_H
#define FIREBREAK_H1_PARSE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h1_span {
    const char *p;
    size_t len;
};

enum h1_method {
    H1_M_OTHER, /* a valid token that is none of the below */
    H1_M_GET,
    H1_M_HEAD,
    H1_M_POST,
    H1_M_PUT,
    H1_M_DELETE,
    H1_M_PATCH,
    H1_M_OPTIONS,
    H1_M_CONNECT,
    H1_M_TRACE,
};

/* Fields the proxy treats specially; everything else is H1_H_OTHER. */
enum h1_known {
    H1_H_OTHER,
    H1_H_HOST,
    H1_H_CONTENT_LENGTH,
    H1_H_TRANSFER_ENCODING,
    H1_H_CONNECTION,
    H1_H_KEEP_ALIVE,
    H1_H_PROXY_CONNECTION,
    H1_H_TE,
    H1_H_TRAILER,
    H1_H_UPGRADE,
    H1_H_EXPECT,
    H1_H_PROXY_AUTHORIZATION,
    H1_H_X_REQUEST_ID,
    H1_H_TRACEPARENT,
    H1_H_X_FORWARDED_FOR,
    H1_H_X_FORWARDED_PROTO,
    H1_H_X_FIREBREAK_RELEASE,
    H1_H_COOKIE,
    H1_H_LOCATION,
    H1_H_AUTHORIZATION,
};

struct h1_field {
    struct h1_span name;  /* as received; compare case-insensitively */
    struct h1_span value; /* leading and trailing SP/HTAB removed */
    enum h1_known known;
    /* Hop-by-hop: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
     * Transfer-Encoding, Upgrade, Proxy-Authorization, and every field named
     * in a Connection header. A proxy never forwards these as they are. */
    bool hop;
};

struct h1_limits {
    size_t max_line;     /* request or status line, CRLF excluded; default 8192 */
    size_t max_head;     /* whole head including the final CRLF; default 16384 */
    unsigned max_fields; /* default 100; the caller's field array holds this many */
};

enum h1_body {
    H1_BODY_NONE,    /* no body follows the head */
    H1_BODY_LENGTH,  /* content_length bytes follow */
    H1_BODY_CHUNKED, /* chunked coding follows; decode with h1_chunked_feed */
    H1_BODY_CLOSE,   /* responses only: the body runs until the connection closes */
};

struct h1_msg {
    /* request line (requests only) */
    enum h1_method method;
    struct h1_span method_name;
    struct h1_span target;
    /* status line (responses only) */
    int status;
    struct h1_span reason;
    /* both */
    int minor;                /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    struct h1_field *fields;  /* caller's array, capacity lim->max_fields */
    unsigned nfields;
    enum h1_body body;
    uint64_t content_length;  /* valid when body == H1_BODY_LENGTH */
    bool keep_alive;          /* connection may carry another message after this one */
    bool expect_continue;     /* request had "Expect: 100-continue" */
    bool upgrade;             /* "Connection: upgrade" together with an Upgrade field */
    struct h1_span host;      /* value of the single Host field, if any */
    bool has_host;
    size_t head_len;          /* bytes of the head, final CRLF included */
    const char *why;          /* on error: what was wrong, for logs and tests */
};

/* Incremental decoder for the chunked transfer coding. */
struct h1_chunked {
    int state;
    uint64_t remaining; /* bytes left in the current chunk's data */
    size_t line_len;    /* bytes of the current size or trailer line seen so far */
    size_t trailer_len; /* bytes of trailer section seen so far */
    size_t max_line;    /* limit for a chunk-size line with extensions */
    size_t max_trailer; /* limit for the whole trailer section */
    bool seen_digit;
    bool done;          /* the last chunk and the trailer section were read */
    const char *why;
};

#endif
