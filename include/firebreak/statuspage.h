/*
 * statuspage.h: the public status page on status_page.listen: HTML at / and
 * JSON in the shape of the Statuspage public API under /api/v2.
 */
#ifndef FIREBREAK_STATUSPAGE_H
#define FIREBREAK_STATUSPAGE_H

#include "server-t.h"

/* Starts the listener when the config has status_page; 0 or a negative code. */
int statuspage_start(struct server *srv);
void statuspage_stop(struct server *srv);

#endif
