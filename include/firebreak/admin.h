/* admin.h: the admin listener: /healthz, /metrics, and later /api/v1. */
#ifndef FIREBREAK_ADMIN_H
#define FIREBREAK_ADMIN_H

#include "server-t.h"

/* Starts listening on srv->cfg->admin_listen. Returns 0 or a negative code. */
int admin_start(struct server *srv);
void admin_stop(struct server *srv);

#endif
