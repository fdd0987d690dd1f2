/*
 * config-t.h: the parsed firebreak.yaml (or .json).
 *
 * A struct config is built whole by config_load() and never changed after;
 * a reload builds a new one and swaps it in. Strings are owned by the config.
 */
#ifndef FIREBREAK_CONFIG_T_H
#define FIREBREAK_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cfg_addr {
    char *text;                   /* as written: "127.0.0.1:7001" */
    struct sockaddr_storage addr; /* resolved at load (numeric or localhost) */
    socklen_t addr_len;
};

struct cfg_release {
    char *name;
    struct cfg_addr *endpoints;
    size_t nendpoints;
    /*
     * Percent, 0..100, 0.01 resolution, resolved at load: when no release of
     * the service gives a weight, stable has 100 and the others 0; when some
     * do, the rest have 0 and the given ones add up to 100.
     */
    double weight;
    bool weight_set; /* weight was written in the file */
};

enum cfg_sticky_kind { CFG_STICKY_COOKIE, CFG_STICKY_HEADER, CFG_STICKY_IP };
enum cfg_identity_kind { CFG_IDENTITY_NONE, CFG_IDENTITY_HEADER, CFG_IDENTITY_COOKIE,
                         CFG_IDENTITY_JWT_SUB };

struct cfg_judge {
    double alpha;             /* default 0.001 */
    double min_error_ratio;   /* default 2.0 */
    double max_latency_ratio; /* default 1.25 */
};

struct cfg_step {
    double weight;    /* percent */
    uint64_t hold_ms; /* 0 for the final step */
};

/* What the journal records for one service (docs/journal.md). */
struct cfg_journal_service {
    char **methods;          /* request methods journaled; default POST, PUT, PATCH, DELETE */
    size_t nmethods;
    size_t body_bytes;       /* request body bytes kept per record; 0 = none (default) */
    char **redact;           /* JSON keys whose values never reach the file */
    size_t nredact;
};

struct cfg_service {
    char *name;
    char *match_host;        /* "*" or a host name (case-insensitive, no port) */
    char *match_path_prefix; /* default "/" */
    enum cfg_sticky_kind sticky;
    char *sticky_name;       /* cookie or header name; default cookie fb_uid */
    enum cfg_identity_kind identity;
    char *identity_name;
    bool allow_pin;
    struct cfg_release *releases;
    size_t nreleases;
    char *stable;            /* name of one of releases */
    struct cfg_judge judge;
    struct cfg_step *steps;
    size_t nsteps;
    int line;                /* line of the service in the file, for messages */
    struct cfg_journal_service journal;
};

struct cfg_limits {
    size_t request_line;  /* default 8 KiB */
    size_t header_bytes;  /* default 16 KiB */
    unsigned header_fields; /* default 100 */
    size_t upstream_connections; /* per endpoint per worker; 0 = unlimited (default) */
};

struct cfg_timeouts { /* all in milliseconds */
    uint64_t request_header;    /* 10 s, counted from the first byte of the head */
    uint64_t body_idle;         /* 30 s */
    uint64_t keepalive_idle;    /* 60 s */
    uint64_t upstream_connect;  /* 2 s */
    uint64_t upstream_response; /* 30 s */
    uint64_t drain;             /* 30 s, SIGTERM grace */
};

enum cfg_access_log { CFG_LOG_OFF, CFG_LOG_STDOUT, CFG_LOG_FILE };

/* The write journal's file (docs/journal.md). */
struct cfg_journal {
    uint64_t retention_ms;   /* records older than this are deleted; 0 = kept; default 30 d */
    uint64_t max_bytes;      /* used pages above this are trimmed oldest first; 0 = no cap */
    unsigned ring;           /* slots per worker ring, a power of two; default 4096 */
};

/* One outgoing webhook (docs/webhooks.md). */
struct cfg_webhook {
    char *name;          /* unique among webhooks; the metrics and log label */
    char *url;           /* http:// or https:// */
    char **events;       /* event types it receives; "*" is every type */
    size_t nevents;
    char *secret;        /* NULL: requests are not signed */
    uint64_t timeout_ms; /* whole request, default 5 s */
    int line;            /* line of the entry in the file, for messages */
};

struct config {
    char *path;            /* the file it was loaded from */
    struct cfg_addr listen;
    unsigned workers;      /* resolved: "auto" becomes the number of cores */
    enum cfg_access_log access_log;
    char *access_log_path;
    struct cfg_addr admin_listen;
    bool has_status_page;
    struct cfg_addr status_listen;
    char *status_title;
    char *state_dir;       /* default ./firebreak-data */
    char *store_url;       /* postgres://..., or NULL for SQLite in state_dir */
    struct cfg_limits limits;
    struct cfg_timeouts timeouts;
    struct cfg_service *services;
    size_t nservices;
    struct cfg_journal journal;
    struct cfg_webhook *webhooks;
    size_t nwebhooks;
};

/* Where and why a config was refused. */
struct config_error {
    char path[256];    /* key path: "services[0].releases[1].endpoints[0]" */
    int line;          /* 1-based; 0 when not tied to a line */
    int column;        /* 1-based; 0 when unknown */
    char message[256];
};

#endif
