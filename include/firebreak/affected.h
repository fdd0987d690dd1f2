/*
 * affected.h: which users got a 5xx from which release.
 *
 * Workers push (release, user key hash, time) for every 5xx into their own
 * bounded ring (single producer, lock-free; a full ring drops and counts).
 * The control thread drains the rings four times a second into one set per
 * release that remembers when each user first and last failed, so "users
 * affected between T1 and T2" is a count over that set.
 */
#ifndef FIREBREAK_AFFECTED_H
#define FIREBREAK_AFFECTED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics-t.h"

struct affected;

struct affected *affected_new(unsigned nworkers, unsigned ring_slots, size_t max_users);
void affected_free(struct affected *a);
/* Worker side: never blocks, never allocates. */
void affected_push(struct affected *a, unsigned worker, const struct release_metrics *rm,
                   uint64_t user, int64_t time_ms);
/* Control side: moves everything pushed so far into the per-release sets. */
void affected_drain(struct affected *a);
/* Distinct users of rm whose failures fall in [since_ms, until_ms]
 * (until_ms 0: no end). */
uint64_t affected_count(const struct affected *a, const struct release_metrics *rm,
                        int64_t since_ms, int64_t until_ms);
/* Failures dropped because a ring was full or a set was at its bound. */
uint64_t affected_dropped(const struct affected *a);

#endif
