/*
 * incident.h: the incident engine.
 *
 *                 declare (person)                 status, or a rollback joins
 *   (none) ─────────────────────────► INVESTIGATING ───────────────► IDENTIFIED
 *      │  automatic rollback                                            │
 *      └───────────────────────────────────────────────────────────────►│
 *                                                                        ▼
 *                               RESOLVED ◄──────────── MONITORING ◄──────┘
 *
 *   transition                       function
 *   (none) -> investigating          incident_declare
 *   (none) -> identified             on a "rollback" event with trigger judge or guard
 *   any -> identified|monitoring     incident_set_status
 *   any -> resolved                  incident_resolve (incident_set_status "resolved")
 *
 * Incidents are JSON documents (kind "incident", key "INC-N") kept in memory
 * and written to the store on every change. Their figures (impact, times) are
 * measured from the one-second series, the affected-users sets and the
 * journal, and refreshed every second while the incident is open.
 */
#ifndef FIREBREAK_INCIDENT_H
#define FIREBREAK_INCIDENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "control-t.h"

struct incidents;

int incidents_init(struct control *ctl, struct incidents **out);
void incidents_free(struct incidents *is);
/* Once a second from the control tick: impact, reminders. */
void incidents_tick(struct incidents *is);

/* The engine's clock: wall time plus the test offset (debug clock). */
int64_t incidents_now(const struct incidents *is);
void incidents_advance_clock(struct incidents *is, int64_t ms);

/* Each returns 0 or a negative code with a message in msg. */
int incident_declare(struct incidents *is, const char *title, const char *severity,
                     json_t *services, const char *actor, char *id_out, size_t idlen, char *msg,
                     size_t msglen);
int incident_assign(struct incidents *is, const char *id, const char *role, const char *name,
                    const char *actor, char *msg, size_t msglen);
int incident_note(struct incidents *is, const char *id, const char *text, const char *actor,
                  char *msg, size_t msglen);
int incident_set_status(struct incidents *is, const char *id, const char *status,
                        const char *actor, char *msg, size_t msglen);
int incident_check(struct incidents *is, const char *id, const char *item, bool done,
                   const char *actor, char *msg, size_t msglen);
/* A draft update for audience "internal" or "public" (new object). */
json_t *incident_draft(struct incidents *is, const char *id, const char *audience, char *msg,
                       size_t msglen);
/* Publishes an update; refuses one without known, unknown, next_steps or
 * next_update. Takes nothing; update is borrowed. */
int incident_publish(struct incidents *is, const char *id, json_t *update, const char *actor,
                     char *msg, size_t msglen);
int incident_action(struct incidents *is, const char *id, const char *verb, json_t *body,
                    const char *actor, char *msg, size_t msglen);
/* Writes STATE/postmortems/ID.md; *markdown (when not NULL) gets a copy. */
int incident_postmortem(struct incidents *is, const char *id, json_t *timeline, char **markdown,
                        char *path, size_t pathlen, char *msg, size_t msglen);

/* Views. */
json_t *incident_get(const struct incidents *is, const char *id); /* borrowed; NULL if none */
json_t *incidents_list(const struct incidents *is);               /* new array */
/* The window of store events that make up an incident's timeline. */
void incident_timeline_window(const struct incidents *is, const char *id, int64_t *since_ms,
                              int64_t *until_ms);
/* Keeps, in order, the events that belong to the incident; returns a new array. */
json_t *incident_timeline_filter(const struct incidents *is, const char *id, json_t *events);
/* Open incidents touching service (for the gate and the status page). */
unsigned incidents_open_for(const struct incidents *is, const char *service);

#endif
