/*
 * proxy-t.h: the data plane's connection and worker types.
 *
 * A worker owns one libuv loop, one SO_REUSEPORT listener, and every client
 * and upstream connection created on it; nothing here is touched by another
 * thread except the few fields marked "atomic".
 */
#ifndef FIREBREAK_PROXY_T_H
#define FIREBREAK_PROXY_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf-t.h"
#include "h1_parse-t.h"
#include "route-t.h"

struct server;
struct worker;
struct release_metrics;
struct metrics_worker;

/* A pooled I/O buffer: bytes [off, len) are unread, [len, cap) is free. */
struct iob {
    struct iob *next;
    size_t off;
    size_t len;
    size_t cap;
    char data[];
};

/* Forwards one message body from a read buffer to a writer, re-framing it. */
struct body_fwd {
    enum h1_body in;        /* framing of the incoming body */
    bool out_chunked;       /* re-encode as chunked on the way out */
    bool done;              /* the whole body was produced */
    bool final_sent;        /* the "0\r\n\r\n" was produced (out_chunked) */
    uint64_t remaining;     /* H1_BODY_LENGTH: bytes still to come */
    uint64_t bytes;         /* body bytes forwarded so far */
    struct h1_chunked dec;  /* H1_BODY_CHUNKED: decoder state */
    char sizes[16][20];     /* chunk-size lines of the write in flight */
};

#define PROXY_MAX_IOV 50

enum client_state {
    C_HEAD,    /* reading a request head (or idle between requests) */
    C_ROUTE,   /* head parsed; waiting for an upstream connection */
    C_BODY,    /* forwarding the request body */
    C_WAIT,    /* request sent; waiting for and forwarding the response */
    C_TUNNEL,  /* after 101 Switching Protocols: bytes both ways */
    C_CLOSING, /* an answer is being written, then the connection closes */
};

struct exchange {
    enum h1_method method;
    char method_name[16];
    int minor;
    bool keep_alive;        /* the client may send another request */
    bool expect_continue;
    bool upgrade;
    bool idempotent;
    bool replayable;        /* the whole request is still in the client buffer */
    bool pooled;            /* the current upstream connection came from the pool */
    bool req_done;
    bool resp_started;      /* the response head was sent to the client */
    bool resp_done;
    bool continue_sent;
    bool head_sent;         /* up_head went out on the current upstream connection */
    unsigned attempts;
    size_t pending;         /* client bytes in the upstream write in flight */
    size_t resp_pending;    /* upstream bytes in the client write in flight */
    enum h1_body req_in;
    uint64_t req_len;
    size_t body_start;      /* offset of the request body in the client buffer */
    struct body_fwd req;
    struct body_fwd resp;
    enum h1_body resp_in;
    int status;
    bool resp_keep_alive;
    struct fb_buf up_head;  /* the re-serialised request head */
    char service[ROUTE_NAME_MAX];
    char release[ROUTE_NAME_MAX];
    char endpoint[ROUTE_NAME_MAX];
    char request_id[40];
    char path[128];         /* start of the target, for the access log */
    char route[120];        /* route class: "GET /api/orders/:id" */
    uint64_t route_key;     /* route_class_hash of route, 0 when none */
    uint64_t user_key;      /* hash of the identity or sticky key */
    char cookie[40];        /* sticky key issued with this response */
    bool set_cookie;
    bool writes;            /* POST, PUT, PATCH or DELETE */
    bool probe;             /* this request decides an ejected endpoint's readmission */
    bool health_reported;
    bool upstream_error;
    struct release_metrics *rm;
    unsigned ep_id;
    unsigned svc_index;
    unsigned rel_index;
    uint64_t start_ns;
    uint64_t upstream_ns;   /* when the upstream answered (first byte) */
    struct journal_pending *jp; /* a write the journal will record, or NULL */
    uint64_t bytes_in;
    uint64_t bytes_out;
};

/* What a journaled write collects between its head and its end. */
struct journal_pending {
    int64_t time_ms;
    int ident_kind;          /* enum journal_ident_kind */
    uint32_t body_len;
    uint32_t body_cap;       /* the service's journal.body_bytes, at most the ring's */
    bool body_truncated;
    char ident[1024];
    char location[256];
    char path[512];
    char body[];             /* journal_body_cap bytes */
};

struct upstream;

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct worker *w;
    struct client *prev, *next; /* the worker's list, for drain */
    struct iob *in;
    struct upstream *up;
    enum client_state state;
    bool reading;
    bool writing;
    bool closing;
    bool head_started;
    bool close_after_write;
    unsigned open_handles;
    uv_write_t wr;
    struct fb_buf out;      /* response head and chunk framing being written */
    struct exchange ex;
    char ip[48];
};

struct upstream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    struct worker *w;
    struct upstream *prev, *next; /* the endpoint's idle list */
    struct client *c;             /* the client it serves, or NULL when idle */
    struct iob *in;
    unsigned ep_id;
    bool connected;
    bool reading;
    bool writing;
    bool closing;
    bool got_bytes;               /* some response bytes arrived for the current request */
    bool eof;                     /* the upstream closed its side */
    bool idle;                    /* in its endpoint's idle list */
    bool head_done;               /* the current response head was parsed */
    unsigned open_handles;
    uv_write_t wr;
    uint64_t idle_since_ns;
};

/* Per worker, per endpoint id: the idle pool and passive health. */
struct endpoint_state {
    struct upstream *idle;        /* idle connections, most recent first */
    unsigned nidle;
    unsigned nopen;
    unsigned consecutive_failures;
    uint64_t down_until_ns;       /* skipped by the balancer until then */
};

struct worker {
    unsigned id;
    struct server *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wake;
    uv_prepare_t prepare;
    uv_timer_t tick;
    struct route_table *table;    /* the table this loop iteration reads */
    struct iob *free_iobs;
    unsigned nfree_iobs;
    size_t iob_size;
    struct endpoint_state *eps;
    unsigned neps;
    unsigned rr;                  /* round-robin cursor */
    struct client *clients;
    unsigned nclients;
    bool draining;
    bool listening;
    uint64_t rng[2];
    uint64_t panic_logged_ns;
    struct fb_buf log;            /* access-log lines not yet written */
    struct metrics_worker *mw;
    int listen_fd;
};

#endif
