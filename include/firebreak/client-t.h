/*
 * client-t.h: types of the admin API's HTTP/1.1 client (src/cli/client.c).
 */
#ifndef FIREBREAK_CLIENT_T_H
#define FIREBREAK_CLIENT_T_H

#include <stdbool.h>
#include <stddef.h>

#include "buf-t.h"

#define CLIENT_MAX_BODY (16u << 20)        /* largest answer body accepted: 16 MiB */
#define CLIENT_MAX_REQUEST_BODY (1u << 20) /* largest request body sent: 1 MiB */
#define CLIENT_CONNECT_TIMEOUT_MS 5000
#define CLIENT_TIMEOUT_MS 30000

/* A parsed "http://HOST[:PORT][/BASE]". */
struct client_url {
    char host[256]; /* a name or an address; IPv6 without brackets */
    char port[6];   /* decimal, 1..65535; "80" when the URL has none */
    char base[256]; /* path prefix without a trailing slash; "" for none */
    char text[560]; /* normalised form, for messages: "http://127.0.0.1:9090" */
    bool v6;        /* host is an IPv6 literal (written in brackets) */
};

struct client {
    struct client_url url;
    const char *token;      /* borrowed; NULL or "" sends no Authorization field */
    int connect_timeout_ms; /* per address tried */
    int timeout_ms;         /* for the whole exchange once connected */
    size_t max_body;        /* answer bodies over this fail with -FB_ETOOBIG */
};

/* One answer. Owns body; release with client_response_release. */
struct client_response {
    int status;         /* HTTP status, 0 when no answer was read */
    char reason[64];    /* reason phrase, control characters replaced */
    struct fb_buf body; /* the decoded body (chunked coding removed), NUL-terminated */
    char why[256];      /* on failure: what went wrong, for the user */
    int sys_errno;      /* on -FB_ECONNECT: errno of the last connection attempt */
};

#endif
