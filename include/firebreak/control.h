/*
 * control.h: the control plane: runtime releases and weights, events,
 * tokens. Every function runs on the control thread.
 */
#ifndef FIREBREAK_CONTROL_H
#define FIREBREAK_CONTROL_H

#include <jansson.h>

#include "config-t.h"
#include "control-t.h"

/* Opens the store under the state directory, loads the runtime spec and the
 * tokens, writes STATE/admin.token on first start. Before the loops run. */
int control_init(struct control *ctl, struct server *srv);
/* Starts the store thread and the control tick (loops are about to run). */
int control_start(struct control *ctl);
/* Closes the tick and the store (finishing queued writes) while the loop
 * still runs; shutdown calls it once the workers have stopped. */
void control_stop(struct control *ctl);
/* Frees everything control_init made (calls control_stop if needed). */
void control_release(struct control *ctl);

/* Merges a (re)loaded config into the runtime spec: endpoints of releases
 * the config declares follow the config; weights, stable and releases added
 * at run time are kept. */
int control_merge_config(struct control *ctl, const struct config *cfg);

/* Builds the route table from the config and the spec and publishes it.
 * *published_ns (when not NULL) gets the monotonic time of the swap. */
int control_publish(struct control *ctl, uint64_t *published_ns);

/* Records an event: subscribers are called at once, the store write is
 * queued. Takes ownership of details (may be NULL). */
void control_event(struct control *ctl, const char *type, const char *actor, const char *service,
                   const char *release, json_t *details);
int control_subscribe(struct control *ctl, control_event_fn fn, void *arg);
/* Queues a document write (kind, key, doc as JSON; doc is borrowed). A
 * failure is logged and counted in firebreak_store_errors_total. */
void control_save_doc(struct control *ctl, const char *kind, const char *key, const json_t *doc);

/*
 * Operations of the API; each validates, publishes, then records. On
 * failure returns a negative code and writes a message into msg (then is not
 * called). On success then->fn (when then is not NULL) runs once the change
 * and its event are committed to the store, with the store's status.
 */
int control_release_add(struct control *ctl, const char *service, const char *release,
                        const char *const *endpoints, size_t n, const char *actor,
                        const struct control_then *then, char *msg, size_t msglen);
int control_release_remove(struct control *ctl, const char *service, const char *release,
                           const char *actor, const struct control_then *then, char *msg,
                           size_t msglen);
/* names[i] gets weights_bp[i]; releases not named get 0; must add to 10000. */
int control_weights(struct control *ctl, const char *service, const char *const *names,
                    const uint32_t *weights_bp, size_t n, const char *actor, const char *why,
                    const struct control_then *then, char *msg, size_t msglen);
/* Stable to 100, everything else to 0, in one swap; when nothing but
 * stable takes traffic and a previous stable exists, back to that one (the
 * last promotion is undone). trigger: "manual", "judge", "guard", "abort".
 * *published_ns (when not NULL) gets the swap time. Takes ownership of
 * evidence (may be NULL). */
int control_rollback(struct control *ctl, const char *service, const char *trigger,
                     const char *reason, const char *actor, json_t *evidence,
                     uint64_t *published_ns, char *msg, size_t msglen);

/* Makes release stable (weight 100) and keeps the old stable as previous. */
int control_promote(struct control *ctl, const char *service, const char *release,
                    const char *actor, char *msg, size_t msglen);

struct route_spec_service *control_service(struct control *ctl, const char *name);

/* Tokens. */
const struct token *control_token_check(struct control *ctl, const char *text, size_t len);
int control_token_create(struct control *ctl, const char *name, enum token_role role,
                         const char *actor, char *out, size_t outlen, char *msg, size_t msglen);
const char *control_role_name(enum token_role role);
int control_role_parse(const char *s, enum token_role *out);

#endif
