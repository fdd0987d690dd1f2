/*
 * rollout-t.h: a progressive rollout of one release of one service.
 */
#ifndef FIREBREAK_ROLLOUT_T_H
#define FIREBREAK_ROLLOUT_T_H

#include <stdbool.h>
#include <stdint.h>

#include "config-t.h"
#include "judge-t.h"
#include "metrics-t.h"
#include "route-t.h"

#define ROLLOUT_MAX_STEPS 100

enum rollout_state {
    RO_PENDING,     /* accepted, first step not applied yet */
    RO_PROGRESSING, /* at step `step`, holding */
    RO_PAUSED,      /* held by a person or for lack of evidence; still judged */
    RO_PROMOTED,    /* the release is stable now */
    RO_ROLLED_BACK, /* stable took all traffic back (judge, guard or a person) */
    RO_ABORTED,     /* stopped by a person; stable took all traffic back */
};

struct rollout {
    struct rollout *next;
    int64_t id;
    char service[ROUTE_NAME_MAX];
    char release[ROUTE_NAME_MAX];
    char stable[ROUTE_NAME_MAX];
    char actor[64];
    struct cfg_step steps[ROLLOUT_MAX_STEPS];
    unsigned nsteps;
    unsigned step;
    enum rollout_state state;
    char reason[256];          /* why it paused or ended */
    int64_t started_ms;
    int64_t step_started_ms;
    int64_t ended_ms;
    uint64_t step_started_ns;  /* monotonic: hold and extension count from here */
    uint64_t extended_ms;      /* hold extension granted for an inconclusive verdict */
    struct judge judge;
    struct judge_verdict verdict;
    bool have_verdict;
    uint64_t guard_requests;   /* canary requests and 5xx since the start */
    uint64_t guard_errors;
    uint64_t step_requests;    /* canary requests in this step */
    struct release_snapshot *prev_canary; /* counters at the last tick */
    struct release_snapshot *prev_stable;
    struct hist *scratch;
    bool have_prev;
    int64_t last_window_ms;
};

#endif
