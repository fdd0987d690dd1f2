/*
 * server-t.h: the one root of mutable state (STYLE rule 8).
 *
 * main.c owns the one struct server; server.c wires the parts. The control
 * thread (the main loop) owns every member but `table`, which workers read
 * through RCU, and the per-worker structs, which their threads own.
 */
#ifndef FIREBREAK_SERVER_T_H
#define FIREBREAK_SERVER_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config-t.h"
#include "control-t.h"
#include "route-t.h"

struct worker;
struct metrics;
struct admin;
struct health;
struct journal;
struct affected;
struct webhook;

struct server {
    char *config_path;
    struct config *cfg;          /* the running configuration */
    uv_loop_t *loop;             /* the control thread's loop */
    struct worker *workers;
    unsigned nworkers;
    struct route_table *table;   /* published with rcu_assign_pointer */
    struct route_ids ids;
    uint64_t table_version;
    struct metrics *metrics;
    struct health *health;       /* outlier ejection, shared by the workers */
    struct journal *journal;     /* the write journal, or NULL when off */
    struct affected *affected;   /* users who got a 5xx, per release */
    struct webhook *webhook;     /* outgoing webhooks, or NULL */
    struct admin *admin;
    struct control control;
    uv_signal_t sighup;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t drain_timer;
    uv_timer_t drain_poll;
    bool draining;
    int access_log_fd;           /* -1 when off */
    int exit_code;
};

#endif
