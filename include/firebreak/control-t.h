/*
 * control-t.h: the control plane's state, owned by the control thread.
 *
 * The runtime spec (which releases each service has, their weights, which is
 * stable) lives here and in the store; every change builds a new route table
 * and publishes it before anything is written anywhere.
 */
#ifndef FIREBREAK_CONTROL_T_H
#define FIREBREAK_CONTROL_T_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "route-t.h"

struct server;
struct store;
struct series;
struct rollouts;
struct incidents;

enum token_role { ROLE_VIEWER = 1, ROLE_RESPONDER = 2, ROLE_ADMIN = 3 };

struct token {
    unsigned char hash[32]; /* SHA-256 of the token text */
    char name[64];
    enum token_role role;
    int64_t created_ms;
};

/* An in-process listener for events, called on the control thread right
 * after an event is emitted (before the store has it). */
typedef void (*control_event_fn)(void *arg, const char *type, const char *service,
                                 const char *release, json_t *details);

struct control_sub {
    control_event_fn fn;
    void *arg;
};

#define CONTROL_MAX_SUBS 16

/* Told when a change is durable: status 0, or the store's error. */
struct control_then {
    void (*fn)(int status, void *arg);
    void *arg;
};

struct rollback_count {
    char service[ROUTE_NAME_MAX];
    char trigger[16];
    uint64_t n;
};

struct control {
    struct server *srv;
    struct store *store;
    struct route_spec spec;
    struct token *tokens;
    size_t ntokens;
    struct control_sub subs[CONTROL_MAX_SUBS];
    unsigned nsubs;
    uv_timer_t tick;
    struct series *series;
    struct rollouts *rollouts;
    struct incidents *incidents;
    /* Further reasons to close the deploy gate (open incidents). */
    void (*gate_hook)(void *arg, const char *service, json_t *reasons);
    void *gate_hook_arg;
    uint32_t *health_seq;       /* last seen health_ep.seq per endpoint id */
    int64_t *health_event_ms;   /* last ejection event per endpoint id, for rate limiting */
    struct rollback_count *rollbacks; /* firebreak_rollbacks_total */
    size_t nrollbacks;
    uint64_t store_errors;
    uint64_t last_second_ns;   /* last once-a-second tick */
    char state_dir[4096];
};

#endif
