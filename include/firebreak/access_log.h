/* access_log.h: JSON-lines access log, buffered per worker. */
#ifndef FIREBREAK_ACCESS_LOG_H
#define FIREBREAK_ACCESS_LOG_H

#include "proxy-t.h"

/* Appends the line for c's finished exchange to the worker's buffer. */
void access_log_add(struct worker *w, const struct client *c);
/* Writes the worker's buffered lines with one write(2). */
void access_log_flush(struct worker *w);

#endif
