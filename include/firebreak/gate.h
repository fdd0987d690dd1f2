/* gate.h: may a pipeline deploy to a service now? (firebreak gate) */
#ifndef FIREBREAK_GATE_H
#define FIREBREAK_GATE_H

#include <jansson.h>
#include <stdbool.h>

#include "control-t.h"

/* True when no rollout is in progress and no incident is open for service;
 * otherwise false with one sentence per reason appended to reasons. */
bool gate_check(struct control *ctl, const char *service, json_t *reasons);

#endif
