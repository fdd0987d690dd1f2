/*
 * test_h1_parse.c: the strict HTTP/1.1 head parser, table-driven.
 *
 * Each row of req_cases and resp_cases is one reported test: the input, the
 * status it must give (or that it is a complete head and what it parses to).
 * Every row is also fed byte by byte: a prefix must give 0 (more bytes
 * needed) or exactly the verdict of the whole input, never another one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firebreak/err.h"
#include "firebreak/h1_parse.h"

#define INCOMPLETE (-1)
#define IN(s) .in = (s), .len = sizeof(s) - 1

struct head_case {
    const char *name;
    const char *in;
    size_t len;
    int status;  /* 0: complete head; INCOMPLETE; else the error's HTTP status */
    size_t tail; /* complete heads: bytes after the head (body, next request) */
    const struct h1_limits *lim;
    enum h1_method req; /* responses: method of the request answered */
    /* what a complete head parses to */
    enum h1_method method;
    const char *target;
    int code;
    const char *reason;
    int minor;
    enum h1_body body;
    uint64_t cl;
    bool ka, cont, upg;
    unsigned nfields;
    const char *host;   /* NULL: no Host */
    const char *hop;    /* fields beyond the fixed hop-by-hop set that must be hop */
    const char *fields; /* when set: "Name:value\n" per field, in order */
};

static const struct h1_limits small = {.max_line = 32, .max_head = 128, .max_fields = 4};

#define H11 "Host: a\r\n"
#define GET11 "GET / HTTP/1.1\r\n" H11

static const struct head_case req_cases[] = {
    /* valid request lines */
    {"get minimal", IN(GET11 "\r\n"), .method = H1_M_GET, .target = "/", .minor = 1, .ka = true,
     .nfields = 1, .host = "a", .fields = "Host:a\n"},
    {"http/1.0 without host", IN("GET / HTTP/1.0\r\n\r\n"), .method = H1_M_GET, .target = "/"},
    {"http/1.0 with host", IN("GET /x HTTP/1.0\r\nHost: h\r\n\r\n"), .method = H1_M_GET,
     .target = "/x", .nfields = 1, .host = "h"},
    {"http/1.2 is 1.1", IN("GET / HTTP/1.2\r\n" H11 "\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"http/1.9 is 1.1", IN("GET / HTTP/1.9\r\n" H11 "\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"head", IN("HEAD /a HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_HEAD, .target = "/a", .minor = 1,
     .ka = true, .nfields = 1, .host = "a"},
    {"put with length", IN("PUT /a HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\nabc"), .tail = 3,
     .method = H1_M_PUT, .target = "/a", .minor = 1, .body = H1_BODY_LENGTH, .cl = 3, .ka = true,
     .nfields = 2, .host = "a"},
    {"delete", IN("DELETE /a HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_DELETE, .target = "/a",
     .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"patch", IN("PATCH /a HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_PATCH, .target = "/a",
     .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"options asterisk", IN("OPTIONS * HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_OPTIONS,
     .target = "*", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"options path", IN("OPTIONS /p HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_OPTIONS,
     .target = "/p", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"connect authority", IN("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n"),
     .method = H1_M_CONNECT, .target = "db.example:5432", .minor = 1, .ka = true, .nfields = 1,
     .host = "db.example:5432"},
    {"trace", IN("TRACE / HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_TRACE, .target = "/",
     .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"extension method", IN("PURGE /c HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_OTHER,
     .target = "/c", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"methods are case-sensitive", IN("get / HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_OTHER,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"asterisk with an extension method", IN("M-SEARCH * HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"method with tchars", IN("M-SEARCH /x HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_OTHER,
     .target = "/x", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"absolute-form target", IN("GET http://a.example/b?c=d HTTP/1.1\r\nHost: a.example\r\n\r\n"),
     .method = H1_M_GET, .target = "http://a.example/b?c=d", .minor = 1, .ka = true, .nfields = 1,
     .host = "a.example"},
    {"query and percent escapes", IN("GET /a%20b?x=1&y=%C3%A9#f HTTP/1.1\r\n" H11 "\r\n"),
     .method = H1_M_GET, .target = "/a%20b?x=1&y=%C3%A9#f", .minor = 1, .ka = true, .nfields = 1,
     .host = "a"},
    {"one empty line before", IN("\r\nGET / HTTP/1.1\r\n" H11 "\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"four empty lines before", IN("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    {"pipelined: first head only", IN(GET11 "\r\n" GET11 "\r\n"), .tail = 27, .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "a"},
    /* valid fields */
    {"value trimmed of SP and HTAB", IN(GET11 "X-A: \t v  v \t\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a",
     .fields = "Host:a\nX-A:v  v\n"},
    {"empty value", IN(GET11 "X-A:\r\nX-B:   \r\n\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 3, .host = "a", .fields = "Host:a\nX-A:\nX-B:\n"},
    {"obs-text in value", IN(GET11 "X-A: caf\xc3\xa9 \xff\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a",
     .fields = "Host:a\nX-A:caf\xc3\xa9 \xff\n"},
    {"htab inside value", IN(GET11 "X-A: a\tb\r\n\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 2, .host = "a", .fields = "Host:a\nX-A:a\tb\n"},
    {"every tchar in a name", IN(GET11 "!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a",
     .fields = "Host:a\n!#$%&'*+-.^_`|~09azAZ:v\n"},
    {"colon inside value", IN(GET11 "X-T: a:b: c\r\n\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 2, .host = "a", .fields = "Host:a\nX-T:a:b: c\n"},
    {"repeated field kept in order", IN(GET11 "Cookie: a=1\r\nCookie: b=2\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 3, .host = "a",
     .fields = "Host:a\nCookie:a=1\nCookie:b=2\n"},
    {"host with port", IN("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "a.example:8080"},
    {"host ipv6 literal", IN("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "[::1]:80"},
    {"empty host", IN("GET / HTTP/1.1\r\nHost:\r\n\r\n"), .method = H1_M_GET, .target = "/",
     .minor = 1, .ka = true, .nfields = 1, .host = ""},
    {"host name case-insensitive", IN("GET / HTTP/1.1\r\nhOsT: b\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 1, .host = "b"},
    {"hop-by-hop set",
     IN(GET11 "TE: trailers\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x"
              "\r\nTrailer: X\r\nProxy-Authorization: Basic x\r\nX-Keep: 1\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 7, .host = "a"},
    /* connection management */
    {"1.1 connection close", IN(GET11 "Connection: close\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .nfields = 2, .host = "a"},
    {"1.1 close in a list", IN(GET11 "Connection: Keep-Alive, CLOSE\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .nfields = 2, .host = "a"},
    {"1.0 keep-alive", IN("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .ka = true, .nfields = 1},
    {"1.0 keep-alive and close",
     IN("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
        "Connection: close\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .nfields = 2},
    {"connection names a field",
     IN(GET11 "Connection: X-Foo, close\r\nX-Foo: 1\r\nX-Bar: 2"
              "\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .nfields = 4, .host = "a", .hop = "x-foo"},
    {"connection names across fields",
     IN(GET11 "Connection: x-a\r\nConnection: X-B ,\r\n"
              "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 6, .host = "a",
     .hop = "x-a,x-b"},
    {"connection cannot drop content-length",
     IN(GET11 "Connection: content-length, host\r\n"
              "Content-Length: 2\r\n\r\nab"),
     .tail = 2, .method = H1_M_GET, .target = "/", .minor = 1, .body = H1_BODY_LENGTH, .cl = 2,
     .ka = true, .nfields = 3, .host = "a"},
    {"upgrade", IN(GET11 "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .upg = true, .nfields = 3, .host = "a"},
    {"upgrade field without connection token", IN(GET11 "Upgrade: websocket\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a"},
    {"connection upgrade without upgrade field", IN(GET11 "Connection: upgrade\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a"},
    {"expect 100-continue",
     IN("POST / HTTP/1.1\r\n" H11 "Expect: 100-continue\r\n"
        "Content-Length: 1\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_LENGTH, .cl = 1, .ka = true,
     .cont = true, .nfields = 3, .host = "a"},
    {"expect is case-insensitive", IN(GET11 "Expect: 100-Continue\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .cont = true, .nfields = 2, .host = "a"},
    {"other expectation left to caller", IN(GET11 "Expect: 200-ok\r\n\r\n"), .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a"},
    {"expect ignored on 1.0", IN("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
     .method = H1_M_GET, .target = "/", .nfields = 1},
    /* body framing */
    {"content-length body", IN("POST /f HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\nhello"),
     .tail = 5, .method = H1_M_POST, .target = "/f", .minor = 1, .body = H1_BODY_LENGTH, .cl = 5,
     .ka = true, .nfields = 2, .host = "a"},
    {"content-length zero", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_LENGTH, .ka = true,
     .nfields = 2, .host = "a"},
    {"content-length leading zeros", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 007\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_LENGTH, .cl = 7, .ka = true,
     .nfields = 2, .host = "a"},
    {"content-length 2^63-1",
     IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 9223372036854775807"
        "\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_LENGTH,
     .cl = 9223372036854775807ULL, .ka = true, .nfields = 2, .host = "a"},
    {"content-length with OWS", IN("POST / HTTP/1.1\r\n" H11 "content-length:\t12 \r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_LENGTH, .cl = 12, .ka = true,
     .nfields = 2, .host = "a"},
    {"chunked", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_CHUNKED, .ka = true,
     .nfields = 2, .host = "a"},
    {"chunked any case", IN("POST / HTTP/1.1\r\n" H11 "transfer-encoding: ChUnKeD\r\n\r\n"),
     .method = H1_M_POST, .target = "/", .minor = 1, .body = H1_BODY_CHUNKED, .ka = true,
     .nfields = 2, .host = "a"},
    {"chunked with empty list elements",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: , chunked ,\r\n\r\n"), .method = H1_M_POST,
     .target = "/", .minor = 1, .body = H1_BODY_CHUNKED, .ka = true, .nfields = 2, .host = "a"},

    /* incomplete heads: 0, more bytes needed */
    {"empty buffer", IN(""), .status = INCOMPLETE},
    {"method only", IN("GET"), .status = INCOMPLETE},
    {"request line only", IN("GET / HTTP/1.1\r\n"), .status = INCOMPLETE},
    {"no final CRLF", IN(GET11), .status = INCOMPLETE},
    {"final CR only", IN(GET11 "\r"), .status = INCOMPLETE},
    {"empty line only", IN("\r\n"), .status = INCOMPLETE},

    /* line endings */
    {"bare LF after request line", IN("GET / HTTP/1.1\n" H11 "\r\n"), .status = 400},
    {"bare LF after field", IN("GET / HTTP/1.1\r\nHost: a\n\r\n"), .status = 400},
    {"bare LF ends head", IN(GET11 "\n"), .status = 400},
    {"bare LF heads only", IN("GET / HTTP/1.1\nHost: a\n\n"), .status = 400},
    {"bare LF before request line", IN("\nGET / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"bare CR in request line", IN("GET /\r HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"bare CR in method", IN("GE\rT / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"bare CR in field value", IN(GET11 "X-A: a\rb\r\n\r\n"), .status = 400},
    {"bare CR in field name", IN(GET11 "X\r-A: b\r\n\r\n"), .status = 400},
    {"CR CR LF", IN(GET11 "X-A: b\r\r\n\r\n"), .status = 400},
    {"bare CR line between fields", IN(GET11 "\rX-A: b\r\n\r\n"), .status = 400},
    {"five empty lines before", IN("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n"),
     .status = 400},

    /* request line */
    {"two spaces after method", IN("GET  / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"two spaces before version", IN("GET /  HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"leading space", IN(" GET / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"htab separator", IN("GET\t/ HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"invalid method byte", IN("GE(T / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"method only line", IN("GET\r\n" H11 "\r\n"), .status = 400},
    {"no version", IN("GET /\r\n" H11 "\r\n"), .status = 400},
    {"space in target", IN("GET /a b HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"htab in target", IN("GET /a\tb HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"DEL in target", IN("GET /a\x7f HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"obs-text in target", IN("GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"NUL in target", IN("GET /a\0b HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"relative target", IN("GET a/b HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"target without scheme colon", IN("GET example.com HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"asterisk with GET", IN("GET * HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"CONNECT with a path", IN("CONNECT / HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"CONNECT without port", IN("CONNECT a.example HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"CONNECT empty port", IN("CONNECT a.example: HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"CONNECT with userinfo", IN("CONNECT u@a.example:443 HTTP/1.1\r\n" H11 "\r\n"), .status = 400},
    {"lowercase version", IN("GET / http/1.1\r\n" H11 "\r\n"), .status = 400},
    {"version trailing space", IN("GET / HTTP/1.1 \r\n" H11 "\r\n"), .status = 400},
    {"version without dot", IN("GET / HTTP/11\r\n" H11 "\r\n"), .status = 400},
    {"version without minor", IN("GET / HTTP/1\r\n" H11 "\r\n"), .status = 400},
    {"version two digit minor", IN("GET / HTTP/1.10\r\n" H11 "\r\n"), .status = 400},
    {"version letter", IN("GET / HTTP/1.x\r\n" H11 "\r\n"), .status = 400},
    {"version space after slash", IN("GET / HTTP/ 1.1\r\n" H11 "\r\n"), .status = 400},
    {"version not HTTP", IN("GET / HTCPCP/1.0\r\n" H11 "\r\n"), .status = 400},
    {"HTTP/2.0 is 505", IN("GET / HTTP/2.0\r\n" H11 "\r\n"), .status = 505},
    {"HTTP/0.9 is 505", IN("GET / HTTP/0.9\r\n" H11 "\r\n"), .status = 505},
    {"HTTP/3.1 is 505", IN("GET / HTTP/3.1\r\n" H11 "\r\n"), .status = 505},
    {"bad target before bad version", IN("GET a HTTP/2.0\r\n" H11 "\r\n"), .status = 400},

    /* field lines */
    {"obs-fold with SP", IN(GET11 "X-A: a\r\n b\r\n\r\n"), .status = 400},
    {"obs-fold with HTAB", IN(GET11 "X-A: a\r\n\tb\r\n\r\n"), .status = 400},
    {"whitespace first field line", IN("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), .status = 400},
    {"SP before colon", IN(GET11 "X-A : b\r\n\r\n"), .status = 400},
    {"HTAB before colon", IN(GET11 "X-A\t: b\r\n\r\n"), .status = 400},
    {"space in host name before colon", IN("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), .status = 400},
    {"empty field name", IN(GET11 ": b\r\n\r\n"), .status = 400},
    {"no colon", IN(GET11 "X-A\r\n\r\n"), .status = 400},
    {"separator in name", IN(GET11 "X(A): b\r\n\r\n"), .status = 400},
    {"quote in name", IN(GET11 "X\"A: b\r\n\r\n"), .status = 400},
    {"obs-text in name", IN(GET11 "X\xe9: b\r\n\r\n"), .status = 400},
    {"NUL in name", IN(GET11 "X\0A: b\r\n\r\n"), .status = 400},
    {"NUL in value", IN(GET11 "X-A: a\0b\r\n\r\n"), .status = 400},
    {"SOH in value",
     IN(GET11 "X-A: a\x01"
              "b\r\n\r\n"),
     .status = 400},
    {"ESC in value", IN(GET11 "X-A: \x1b[0m\r\n\r\n"), .status = 400},
    {"DEL in value", IN(GET11 "X-A: a\x7f\r\n\r\n"), .status = 400},
    {"VT in value", IN(GET11 "X-A: a\x0b\r\n\r\n"), .status = 400},

    /* Content-Length */
    {"CL and TE",
     IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     .status = 400},
    {"TE and CL",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
        "Content-Length: 5\r\n\r\n"),
     .status = 400},
    {"CL and TE gzip",
     IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
        "Transfer-Encoding: gzip\r\n\r\n"),
     .status = 400},
    {"two equal CL", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
     .status = 400},
    {"two different CL",
     IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
        "Content-Length: 6\r\n\r\n"),
     .status = 400},
    {"CL list", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n"), .status = 400},
    {"CL plus sign", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: +5\r\n\r\n"), .status = 400},
    {"CL hex", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 0x5\r\n\r\n"), .status = 400},
    {"CL negative", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n"), .status = 400},
    {"CL empty", IN("POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n"), .status = 400},
    {"CL only spaces", IN("POST / HTTP/1.1\r\n" H11 "Content-Length:   \r\n\r\n"), .status = 400},
    {"CL space inside", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 1 2\r\n\r\n"), .status = 400},
    {"CL trailing letter", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5a\r\n\r\n"),
     .status = 400},
    {"CL decimal point", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 5.0\r\n\r\n"),
     .status = 400},
    {"CL 2^63", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 9223372036854775808\r\n\r\n"),
     .status = 400},
    {"CL over 64 bits",
     IN("POST / HTTP/1.1\r\n" H11 "Content-Length: 99999999999999999999\r\n"
        "\r\n"),
     .status = 400},
    {"CL non-ASCII digit", IN("POST / HTTP/1.1\r\n" H11 "Content-Length: \xd9\xa1\r\n\r\n"),
     .status = 400},

    /* Transfer-Encoding */
    {"TE on HTTP/1.0", IN("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), .status = 400},
    {"TE gzip is 501", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n"),
     .status = 501},
    {"TE identity is 501", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: identity\r\n\r\n"),
     .status = 501},
    {"TE gzip then chunked is 501",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), .status = 501},
    {"TE gzip field then chunked field",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     .status = 501},
    {"TE coding with parameter is 501",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: x;level=1, chunked\r\n\r\n"), .status = 501},
    {"TE chunkedx is 501", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunkedx\r\n\r\n"),
     .status = 501},
    {"TE chunked then gzip",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), .status = 400},
    {"TE chunked twice",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), .status = 400},
    {"TE chunked in two fields",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     .status = 400},
    {"TE empty", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding:\r\n\r\n"), .status = 400},
    {"TE only commas", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: , ,\r\n\r\n"),
     .status = 400},
    {"TE chunked with parameter",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked;a=b\r\n\r\n"), .status = 400},
    {"TE parameter without value",
     IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip;q, chunked\r\n\r\n"), .status = 400},
    {"TE space inside token", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunk ed\r\n\r\n"),
     .status = 400},
    {"TE quoted", IN("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n"),
     .status = 400},

    /* Host */
    {"1.1 without Host", IN("GET / HTTP/1.1\r\nX-A: b\r\n\r\n"), .status = 400},
    {"1.1 with two Host", IN("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), .status = 400},
    {"1.0 with two Host", IN("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), .status = 400},
    {"Host with space", IN("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), .status = 400},
    {"Host with slash", IN("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), .status = 400},
    {"Host with userinfo", IN("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), .status = 400},
    {"Host list", IN("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), .status = 400},

    /* limits (small: line 32, head 128, 4 fields) */
    {"line at the limit", IN("GET /234567890123456789 HTTP/1.1\r\n" H11 "\r\n"), .lim = &small,
     .method = H1_M_GET, .target = "/234567890123456789", .minor = 1, .ka = true, .nfields = 1,
     .host = "a"},
    {"line over the limit is 414", IN("GET /2345678901234567890 HTTP/1.1\r\n" H11 "\r\n"),
     .lim = &small, .status = 414},
    {"endless line is 414 before its end", IN("GET /2345678901234567890123456789"), .lim = &small,
     .status = 414},
    {"414 wins over a bad method", IN("G(T /2345678901234567890123456789"), .lim = &small,
     .status = 414},
    {"414 wins over a bare LF", IN("GET /2345678901234567890 HTTP/1.1\n"), .lim = &small,
     .status = 414},
    {"line at limit, CR pending", IN("GET /234567890123456789 HTTP/1.1\r"), .lim = &small,
     .status = INCOMPLETE},
    {"four fields at the limit", IN(GET11 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), .lim = &small,
     .method = H1_M_GET, .target = "/", .minor = 1, .ka = true, .nfields = 4, .host = "a"},
    {"five fields is 431", IN(GET11 "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), .lim = &small,
     .status = 431},
    {"five fields 431 before the end", IN(GET11 "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"), .lim = &small,
     .status = 431},
#define V94                                                                                        \
    "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901" \
    "23"
    {"head at the limit", IN(GET11 "X-A: " V94 "\r\n\r\n"), .lim = &small, .method = H1_M_GET,
     .target = "/", .minor = 1, .ka = true, .nfields = 2, .host = "a"},
    {"head one over the limit", IN(GET11 "X-A: " V94 "5\r\n\r\n"), .lim = &small, .status = 431},
    {"endless head is 431 before its end", IN(GET11 "X-A: " V94 "56789"), .lim = &small,
     .status = 431},
    {"empty lines count in the head", IN("\r\n\r\n" GET11 "X-A: " V94 "\r\n\r\n"), .lim = &small,
     .status = 431},
};

static const struct head_case resp_cases[] = {
    {"200 with length", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), .tail = 5,
     .req = H1_M_GET, .code = 200, .reason = "OK", .minor = 1, .body = H1_BODY_LENGTH, .cl = 5,
     .ka = true, .nfields = 1},
    {"200 chunked", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), .req = H1_M_GET,
     .code = 200, .reason = "OK", .minor = 1, .body = H1_BODY_CHUNKED, .ka = true, .nfields = 1},
    {"200 until close", IN("HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n"), .req = H1_M_GET, .code = 200,
     .reason = "OK", .minor = 1, .body = H1_BODY_CLOSE, .nfields = 1},
    {"1.0 length closes", IN("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), .req = H1_M_GET,
     .code = 200, .reason = "OK", .body = H1_BODY_LENGTH, .nfields = 1},
    {"1.0 keep-alive",
     IN("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n"
        "\r\n"),
     .req = H1_M_GET, .code = 200, .reason = "OK", .body = H1_BODY_LENGTH, .ka = true,
     .nfields = 2},
    {"1.1 close", IN("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
     .req = H1_M_GET, .code = 200, .reason = "OK", .minor = 1, .body = H1_BODY_LENGTH,
     .nfields = 2},
    {"204 no body", IN("HTTP/1.1 204 No Content\r\n\r\n"), .req = H1_M_DELETE, .code = 204,
     .reason = "No Content", .minor = 1, .ka = true},
    {"204 length ignored", IN("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
     .req = H1_M_GET, .code = 204, .reason = "No Content", .minor = 1, .cl = 7, .ka = true,
     .nfields = 1},
    {"304 length ignored", IN("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
     .req = H1_M_GET, .code = 304, .reason = "Not Modified", .minor = 1, .cl = 9, .ka = true,
     .nfields = 1},
    {"100 continue", IN("HTTP/1.1 100 Continue\r\n\r\n"), .req = H1_M_POST, .code = 100,
     .reason = "Continue", .minor = 1, .ka = true},
    {"101 upgrade",
     IN("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\n\r\n"),
     .req = H1_M_GET, .code = 101, .reason = "Switching Protocols", .minor = 1, .ka = true,
     .upg = true, .nfields = 2},
    {"HEAD answer length ignored", IN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
     .req = H1_M_HEAD, .code = 200, .reason = "OK", .minor = 1, .cl = 100, .ka = true,
     .nfields = 1},
    {"HEAD answer chunked ignored", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .req = H1_M_HEAD, .code = 200, .reason = "OK", .minor = 1, .ka = true, .nfields = 1},
    {"CONNECT 200 no body", IN("HTTP/1.1 200 Connection established\r\n\r\n"), .req = H1_M_CONNECT,
     .code = 200, .reason = "Connection established", .minor = 1, .ka = true},
    {"CONNECT 407 has a body", IN("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n"),
     .req = H1_M_CONNECT, .code = 407, .reason = "Proxy Auth", .minor = 1, .body = H1_BODY_LENGTH,
     .cl = 2, .ka = true, .nfields = 1},
    {"no reason no SP", IN("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), .req = H1_M_GET,
     .code = 200, .reason = "", .minor = 1, .body = H1_BODY_LENGTH, .ka = true, .nfields = 1},
    {"empty reason", IN("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), .req = H1_M_GET, .code = 404,
     .reason = "", .minor = 1, .body = H1_BODY_LENGTH, .ka = true, .nfields = 1},
    {"reason with SP HTAB obs-text",
     IN("HTTP/1.1 500 Erreur \tinterne \xe9\r\n"
        "Content-Length: 0\r\n\r\n"),
     .req = H1_M_GET, .code = 500, .reason = "Erreur \tinterne \xe9", .minor = 1,
     .body = H1_BODY_LENGTH, .ka = true, .nfields = 1},
    {"status 599", IN("HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n"), .req = H1_M_GET, .code = 599,
     .reason = "X", .minor = 1, .body = H1_BODY_LENGTH, .ka = true, .nfields = 1},
    {"HTTP/1.3 is 1.1", IN("HTTP/1.3 200 OK\r\nContent-Length: 0\r\n\r\n"), .req = H1_M_GET,
     .code = 200, .reason = "OK", .minor = 1, .body = H1_BODY_LENGTH, .ka = true, .nfields = 1},
    {"response connection names a field",
     IN("HTTP/1.1 200 OK\r\nConnection: x-up\r\nX-Up: 1\r\n"
        "Content-Length: 0\r\n\r\n"),
     .req = H1_M_GET, .code = 200, .reason = "OK", .minor = 1, .body = H1_BODY_LENGTH, .ka = true,
     .nfields = 3, .hop = "x-up"},
    {"response incomplete", IN("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"), .req = H1_M_GET,
     .status = INCOMPLETE},

    {"glued status and reason", IN("HTTP/1.1 200OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"two-digit status", IN("HTTP/1.1 20 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"four-digit status", IN("HTTP/1.1 2000 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"status 099", IN("HTTP/1.1 099 X\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"status 600", IN("HTTP/1.1 600 X\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"status letters", IN("HTTP/1.1 2x0 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"status line too short", IN("HTTP/1.1\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"two spaces before status", IN("HTTP/1.1  200 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"response HTTP/2.0", IN("HTTP/2.0 200 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"response lowercase version", IN("http/1.1 200 OK\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"control in reason", IN("HTTP/1.1 200 O\x01K\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"NUL in reason", IN("HTTP/1.1 200 O\0K\r\n\r\n"), .req = H1_M_GET, .status = 502},
    {"response CL and TE",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response CL and TE on 204",
     IN("HTTP/1.1 204 OK\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response two CL", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response CL negative", IN("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), .req = H1_M_GET,
     .status = 502},
    {"response TE gzip", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), .req = H1_M_GET,
     .status = 502},
    {"response TE gzip, chunked",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
        "\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response TE on 1.0", IN("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response obs-fold", IN("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n"), .req = H1_M_GET,
     .status = 502},
    {"response bare LF", IN("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), .req = H1_M_GET,
     .status = 502},
    {"response space before colon", IN("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
     .req = H1_M_GET, .status = 502},
    {"response status line too long", IN("HTTP/1.1 200 0123456789012345678901234\r\n\r\n"),
     .lim = &small, .req = H1_M_GET, .status = 502},
    {"response too many fields",
     IN("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
        "E: 5\r\n"),
     .lim = &small, .req = H1_M_GET, .status = 502},
};

/* ------------------------------------------------------------- checking */

static const char *const fixed_hop[] = {
    "connection", "keep-alive",        "proxy-connection", "te",
    "trailer",    "transfer-encoding", "upgrade",          "proxy-authorization",
};

static bool name_in_list(struct h1_span name, const char *list)
{
    const char *p = list;
    bool found = false;

    while (p && *p && !found) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);

        found = n == name.len && strncasecmp(p, name.p, n) == 0;
        p = comma ? comma + 1 : NULL;
    }
    return found;
}

static bool expected_hop(const struct h1_field *f, const char *extra)
{
    size_t i;
    bool hop = extra && name_in_list(f->name, extra);

    for (i = 0; i < sizeof(fixed_hop) / sizeof(fixed_hop[0]); i++)
        hop |= name_in_list(f->name, fixed_hop[i]);
    return hop;
}

static void assert_span(struct h1_span s, const char *want)
{
    assert_non_null(want);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void assert_inside(struct h1_span s, const char *buf, size_t len)
{
    if (s.len == 0)
        return;
    assert_true(s.p >= buf && s.p + s.len <= buf + len);
}

static void check_fields(const struct h1_msg *m, const char *spec)
{
    const char *p = spec;
    unsigned i = 0;

    while (*p) {
        const char *nl = strchr(p, '\n'), *colon = strchr(p, ':');
        struct h1_span name = {p, (size_t)(colon - p)};
        struct h1_span value = {colon + 1, (size_t)(nl - colon - 1)};

        assert_true(i < m->nfields);
        assert_int_equal(m->fields[i].name.len, name.len);
        assert_memory_equal(m->fields[i].name.p, name.p, name.len);
        assert_int_equal(m->fields[i].value.len, value.len);
        assert_memory_equal(m->fields[i].value.p, value.p, value.len);
        i++;
        p = nl + 1;
    }
    assert_int_equal(i, m->nfields);
}

static void check_complete(const struct head_case *c, const struct h1_msg *m, const char *buf,
                           bool resp)
{
    size_t head = c->len - c->tail;
    unsigned i;

    assert_null(m->why);
    assert_int_equal(m->head_len, head);
    if (resp) {
        assert_int_equal(m->status, c->code);
        if (c->reason)
            assert_span(m->reason, c->reason);
    } else {
        assert_int_equal(m->method, c->method);
        assert_span(m->target, c->target);
        assert_true(m->method_name.p + m->method_name.len + 1 == m->target.p);
        if (m->method != H1_M_OTHER)
            assert_span(m->method_name, h1_method_name(m->method));
    }
    assert_int_equal(m->minor, c->minor);
    assert_int_equal(m->body, c->body);
    if (m->body == H1_BODY_LENGTH || c->cl)
        assert_true(m->content_length == c->cl);
    assert_int_equal(m->keep_alive, c->ka);
    assert_int_equal(m->expect_continue, c->cont);
    assert_int_equal(m->upgrade, c->upg);
    assert_int_equal(m->nfields, c->nfields);
    assert_int_equal(m->has_host, c->host != NULL);
    if (c->host)
        assert_span(m->host, c->host);
    for (i = 0; i < m->nfields; i++) {
        assert_inside(m->fields[i].name, buf, head);
        assert_inside(m->fields[i].value, buf, head);
        assert_int_equal(m->fields[i].hop, expected_hop(&m->fields[i], c->hop));
    }
    assert_inside(m->target, buf, head);
    assert_inside(m->reason, buf, head);
    if (c->fields)
        check_fields(m, c->fields);
}

static int parse(const struct head_case *c, const char *buf, size_t len, struct h1_msg *m,
                 bool resp)
{
    struct h1_limits def;
    const struct h1_limits *lim = c->lim;

    if (!lim) {
        h1_limits_default(&def);
        lim = &def;
    }
    return resp ? h1_parse_response(buf, len, lim, c->req, m) : h1_parse_request(buf, len, lim, m);
}

/* Expected result of the whole input as the parser's return value class. */
static void check_whole(const struct head_case *c, int rc, const struct h1_msg *m, const char *buf,
                        bool resp)
{
    if (c->status == INCOMPLETE) {
        assert_int_equal(rc, 0);
        assert_null(m->why);
    } else if (c->status == 0) {
        assert_int_equal(rc, (int)(c->len - c->tail));
        check_complete(c, m, buf, resp);
    } else {
        assert_true(rc < 0);
        assert_int_equal(fb_err_status(rc), c->status);
        assert_non_null(m->why);
    }
}

static void run_case(const struct head_case *c, bool resp)
{
    struct h1_field fields[128];
    struct h1_msg m = {.fields = fields};
    char *copy = malloc(c->len ? c->len : 1);
    size_t k;
    int whole, rc;

    /* exact-size copy: any read past the end is caught by ASan */
    memcpy(copy, c->in, c->len);
    whole = parse(c, copy, c->len, &m, resp);
    check_whole(c, whole, &m, copy, resp);
    free(copy);
    for (k = 0; k < c->len; k++) {
        copy = malloc(k ? k : 1);
        memcpy(copy, c->in, k);
        rc = parse(c, copy, k, &m, resp);
        if (rc != 0 && rc != whole)
            fail_msg("prefix of %zu bytes gave %d, whole input %d", k, rc, whole);
        if (c->status == 0 && k < (size_t)whole)
            assert_int_equal(rc, 0);
        free(copy);
    }
}

static void run_req_case(void **state)
{
    run_case(*state, false);
}

static void run_resp_case(void **state)
{
    run_case(*state, true);
}

/* ------------------------------------------------------ individual tests */

static void defaults_are_documented_values(void **state)
{
    struct h1_limits lim;

    h1_limits_default(&lim);
    assert_int_equal(lim.max_line, 8192);
    assert_int_equal(lim.max_head, 16384);
    assert_int_equal(lim.max_fields, 100);
}

static char *request_with_target(size_t target_len, bool complete, size_t *len)
{
    const char *tail = complete ? " HTTP/1.1\r\nHost: a\r\n\r\n" : "";
    size_t n = 4 + target_len + strlen(tail);
    char *buf = malloc(n);

    memcpy(buf, "GET ", 4);
    buf[4] = '/';
    memset(buf + 5, 'a', target_len - 1);
    memcpy(buf + 4 + target_len, tail, strlen(tail));
    *len = n;
    return buf;
}

static void default_request_line_limit(void **state)
{
    struct h1_field fields[100];
    struct h1_msg m = {.fields = fields};
    struct h1_limits lim;
    size_t len;
    char *buf;

    h1_limits_default(&lim);
    /* "GET " + target + " HTTP/1.1" is exactly 8192 bytes */
    buf = request_with_target(8192 - 13, true, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), (int)len);
    free(buf);
    buf = request_with_target(8192 - 12, true, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), -FB_EURITOOLONG);
    free(buf);
    /* a line still streaming is refused once it passes 8192 bytes */
    buf = request_with_target(8192 - 4, false, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), 0);
    free(buf);
    buf = request_with_target(8192 - 2, false, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), -FB_EURITOOLONG);
    assert_int_equal(fb_err_status(-FB_EURITOOLONG), 414);
    free(buf);
}

static char *request_with_fields(unsigned n, size_t *len)
{
    size_t cap = 32 + (size_t)n * 16, off;
    char *buf = malloc(cap);
    unsigned i;

    off = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 1; i < n; i++)
        off += (size_t)snprintf(buf + off, cap - off, "X-%u: %u\r\n", i, i);
    off += (size_t)snprintf(buf + off, cap - off, "\r\n");
    *len = off;
    return buf;
}

static void default_field_count_limit(void **state)
{
    struct h1_field fields[100];
    struct h1_msg m = {.fields = fields};
    struct h1_limits lim;
    size_t len;
    char *buf;

    h1_limits_default(&lim);
    buf = request_with_fields(100, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), (int)len);
    assert_int_equal(m.nfields, 100);
    assert_span(m.fields[99].name, "X-99");
    free(buf);
    buf = request_with_fields(101, &len);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), -FB_EHDRTOOBIG);
    assert_int_equal(fb_err_status(-FB_EHDRTOOBIG), 431);
    free(buf);
}

static void default_head_size_limit(void **state)
{
    struct h1_field fields[100];
    struct h1_msg m = {.fields = fields};
    struct h1_limits lim;
    const char *start = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ";
    size_t fixed = strlen(start) + 4, len = 16384;
    char *buf = malloc(len + 1);

    h1_limits_default(&lim);
    memcpy(buf, start, strlen(start));
    memset(buf + strlen(start), 'v', len - fixed);
    memcpy(buf + len - 4, "\r\n\r\n", 4);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), (int)len);
    /* one byte more in the value: the head no longer fits */
    memset(buf + strlen(start), 'v', len + 1 - fixed);
    memcpy(buf + len + 1 - 4, "\r\n\r\n", 4);
    assert_int_equal(h1_parse_request(buf, len + 1, &lim, &m), -FB_EHDRTOOBIG);
    /* and a head that never ends is refused at the limit, not later */
    memset(buf + strlen(start), 'v', len + 1 - strlen(start));
    assert_int_equal(h1_parse_request(buf, len - 1, &lim, &m), 0);
    assert_int_equal(h1_parse_request(buf, len, &lim, &m), -FB_EHDRTOOBIG);
    free(buf);
}

struct known_row {
    const char *name;
    enum h1_known known;
};

static void known_fields_are_recognised(void **state)
{
    static const struct known_row rows[] = {
        {"HOST", H1_H_HOST},
        {"content-LENGTH", H1_H_CONTENT_LENGTH},
        {"Transfer-Encoding", H1_H_TRANSFER_ENCODING},
        {"Connection", H1_H_CONNECTION},
        {"Keep-Alive", H1_H_KEEP_ALIVE},
        {"Proxy-Connection", H1_H_PROXY_CONNECTION},
        {"te", H1_H_TE},
        {"Trailer", H1_H_TRAILER},
        {"Upgrade", H1_H_UPGRADE},
        {"Expect", H1_H_EXPECT},
        {"Proxy-Authorization", H1_H_PROXY_AUTHORIZATION},
        {"X-Request-ID", H1_H_X_REQUEST_ID},
        {"Traceparent", H1_H_TRACEPARENT},
        {"X-Forwarded-For", H1_H_X_FORWARDED_FOR},
        {"X-Forwarded-Proto", H1_H_X_FORWARDED_PROTO},
        {"X-Firebreak-Release", H1_H_X_FIREBREAK_RELEASE},
        {"Cookie", H1_H_COOKIE},
        {"Location", H1_H_LOCATION},
        {"Authorization", H1_H_AUTHORIZATION},
        {"Hosts", H1_H_OTHER},
        {"Content-Lengt", H1_H_OTHER},
        {"X-Forwarded-Fox", H1_H_OTHER},
        {"Cookie2", H1_H_OTHER},
        {"T", H1_H_OTHER},
    };
    struct h1_field fields[100];
    struct h1_msg m = {.fields = fields};
    struct h1_limits lim;
    char buf[2048];
    size_t i, off;

    h1_limits_default(&lim);
    off = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *v = rows[i].known == H1_H_HOST             ? "a"
                        : rows[i].known == H1_H_CONTENT_LENGTH ? "0"
                                                               : "x";

        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s: %s\r\n", rows[i].name, v);
    }
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\r\n");
    /* Content-Length with Transfer-Encoding is refused, but only after every
     * field was classified */
    assert_int_equal(h1_parse_request(buf, off, &lim, &m), -FB_EBADREQ);
    assert_int_equal(m.nfields, sizeof(rows) / sizeof(rows[0]));
    for (i = 0; i < m.nfields; i++) {
        if (m.fields[i].known != rows[i].known)
            fail_msg("%s classified as %d, not %d", rows[i].name, m.fields[i].known, rows[i].known);
    }
}

static void span_and_list_helpers(void **state)
{
    struct h1_span close = {"ClOsE", 5}, part = {"clos", 4};
    struct h1_span list = {" keep-alive ,\tUpgrade,, x-y ", 28};
    struct h1_span empty = {"", 0};

    assert_true(h1_span_eq(close, "close"));
    assert_false(h1_span_eq(part, "close"));
    assert_false(h1_span_eq(close, "closed"));
    assert_true(h1_list_has(list, "upgrade"));
    assert_true(h1_list_has(list, "keep-alive"));
    assert_true(h1_list_has(list, "x-y"));
    assert_false(h1_list_has(list, "x"));
    assert_false(h1_list_has(list, "close"));
    assert_false(h1_list_has(empty, "close"));
}

static void method_names(void **state)
{
    assert_string_equal(h1_method_name(H1_M_GET), "GET");
    assert_string_equal(h1_method_name(H1_M_CONNECT), "CONNECT");
    assert_string_equal(h1_method_name(H1_M_TRACE), "TRACE");
    assert_string_equal(h1_method_name(H1_M_OTHER), "OTHER");
    assert_string_equal(h1_method_name((enum h1_method)77), "OTHER");
}

static void error_names_the_problem(void **state)
{
    struct h1_field fields[8];
    struct h1_msg m = {.fields = fields};
    struct h1_limits lim;
    const char *in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n";

    h1_limits_default(&lim);
    lim.max_fields = 8;
    assert_int_equal(h1_parse_request(in, strlen(in), &lim, &m), -FB_EBADREQ);
    assert_non_null(strstr(m.why, "Content-Length"));
    in = "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n";
    assert_int_equal(h1_parse_request(in, strlen(in), &lim, &m), -FB_EBADREQ);
    assert_non_null(strstr(m.why, "colon"));
}

/* ------------------------------------------------------------------ main */

static size_t add_rows(struct CMUnitTest *t, const struct head_case *rows, size_t n,
                       CMUnitTestFunction fn)
{
    size_t i;

    for (i = 0; i < n; i++) {
        t[i].name = rows[i].name;
        t[i].test_func = fn;
        t[i].setup_func = NULL;
        t[i].teardown_func = NULL;
        t[i].initial_state = (void *)&rows[i];
    }
    return n;
}

int main(void)
{
    static const struct CMUnitTest single[] = {
        cmocka_unit_test(defaults_are_documented_values),
        cmocka_unit_test(default_request_line_limit),
        cmocka_unit_test(default_field_count_limit),
        cmocka_unit_test(default_head_size_limit),
        cmocka_unit_test(known_fields_are_recognised),
        cmocka_unit_test(span_and_list_helpers),
        cmocka_unit_test(method_names),
        cmocka_unit_test(error_names_the_problem),
    };
    size_t nreq = sizeof(req_cases) / sizeof(req_cases[0]);
    size_t nresp = sizeof(resp_cases) / sizeof(resp_cases[0]);
    size_t nsingle = sizeof(single) / sizeof(single[0]), n = 0;
    struct CMUnitTest *tests = calloc(nreq + nresp + nsingle, sizeof(*tests));
    int rc;

    n += add_rows(tests + n, req_cases, nreq, run_req_case);
    n += add_rows(tests + n, resp_cases, nresp, run_resp_case);
    memcpy(tests + n, single, sizeof(single));
    n += nsingle;
    rc = _cmocka_run_group_tests("h1_parse", tests, n, NULL, NULL);
    free(tests);
    return rc;
}
