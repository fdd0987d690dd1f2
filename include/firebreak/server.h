/* server.h: start-up, reload and shutdown of the whole process. */
#ifndef FIREBREAK_SERVER_H
#define FIREBREAK_SERVER_H

#include "server-t.h"

/* Loads the config at path and starts every part. Returns 0, or 1 after
 * printing why it cannot start (the exit code for `firebreak serve`). */
int server_start(struct server *srv, const char *path);
/* Runs until SIGTERM/SIGINT and a drain; returns the process exit code. */
int server_run(struct server *srv);
/* Publishes t (one pointer swap); the old table is freed after an RCU grace
 * period. Control thread only. */
void server_publish(struct server *srv, struct route_table *t);
/* Frees everything server_start made; safe after a failed start. */
void server_release(struct server *srv);
/* Re-reads the config file; a bad file keeps the running configuration.
 * Returns 0 or a negative code. */
int server_reload(struct server *srv);

#endif
