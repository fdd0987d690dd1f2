/*
 * rollout.h: the rollout controller.
 *
 *            start                  hold over, verdict ok          last step done
 *  PENDING ─────────► PROGRESSING(i) ───────────────────► (i+1) ─────────────────► PROMOTED
 *                        │    ▲  │ inconclusive past the limit, or pause
 *                        │    │  ▼
 *                        │   PAUSED ──promote──► PROMOTED
 *                        │    │ resume
 *      fail or guard ────┴────┴──────────► ROLLED_BACK          abort ──► ABORTED
 *
 *   transition                        function
 *   PENDING -> PROGRESSING(0)         rollout_start
 *   PROGRESSING(i) -> (i+1)           rollout_tick (step_advance)
 *   PROGRESSING -> PAUSED             rollout_tick (evidence short), rollout_pause
 *   PAUSED -> PROGRESSING             rollout_resume
 *   * -> PROMOTED                     rollout_tick (after the 100% step), rollout_promote
 *   * -> ROLLED_BACK                  rollout_tick (judge fail, guard), a manual rollback
 *   * -> ABORTED                      rollout_abort
 *
 * Every transition and every change of verdict is an event. Rollouts are
 * persisted; after a restart an active rollout resumes at its step and
 * restarts that step's hold.
 */
#ifndef FIREBREAK_ROLLOUT_H
#define FIREBREAK_ROLLOUT_H

#include <jansson.h>

#include "control-t.h"
#include "rollout-t.h"

struct rollouts;

/* Loads persisted rollouts (before the loops run) and subscribes to events. */
int rollouts_init(struct control *ctl, struct rollouts **out);
void rollouts_free(struct rollouts *rs);
/* Judges every active rollout and moves it on; the control tick calls it. */
void rollouts_tick(struct rollouts *rs, uint64_t now_ns);

/* steps may be NULL (the service's default plan from the config). */
int rollout_start(struct rollouts *rs, const char *service, const char *release,
                  const struct cfg_step *steps, size_t nsteps, const char *actor, char *msg,
                  size_t msglen);
int rollout_pause(struct rollouts *rs, const char *service, const char *actor, char *msg,
                  size_t msglen);
int rollout_resume(struct rollouts *rs, const char *service, const char *actor, char *msg,
                   size_t msglen);
int rollout_promote(struct rollouts *rs, const char *service, const char *actor, char *msg,
                    size_t msglen);
int rollout_abort(struct rollouts *rs, const char *service, const char *actor, char *msg,
                  size_t msglen);

/* The active rollout of service, else its last one; NULL when none. */
const struct rollout *rollout_find(const struct rollouts *rs, const char *service);
bool rollout_active(const struct rollout *r);
const char *rollout_state_name(enum rollout_state s);
/* The rollout as the API shows it. */
json_t *rollout_json(const struct rollouts *rs, const struct rollout *r);

#endif
