/*
 * updates.h: incident updates: drafts written from measured data, and the
 * rules a published update must meet.
 */
#ifndef FIREBREAK_UPDATES_H
#define FIREBREAK_UPDATES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A draft for audience "internal" (figures, release and rollout names) or
 * "public" (plain language: no release, endpoint or user names): a new object
 * with audience, status, known, unknown, next_steps, next_update(_ms) and
 * text. NULL for an unknown audience.
 */
json_t *updates_draft(const json_t *incident, const char *audience, int64_t now_ms);
/* Refuses an update missing known, unknown, next_steps or a future
 * next_update, or a public one naming internals of incident. Returns 0 or
 * -FB_EINVAL with the reason in msg. Fills next_update_ms and text when the
 * update gave next_update as text or no text. */
int updates_check(json_t *update, const json_t *incident, int64_t now_ms, char *msg,
                  size_t msglen);
/* Minutes between updates for a severity (SEV1 15, SEV2 30, SEV3 60, SEV4 0). */
int updates_cadence_min(const char *severity);

#endif
