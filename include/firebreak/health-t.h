/*
 * health-t.h: outlier ejection state, one slot per endpoint id, shared by
 * every worker. Fields are read and written with atomics; the hot path does
 * a load per request and an atomic update only when a result changes state.
 */
#ifndef FIREBREAK_HEALTH_T_H
#define FIREBREAK_HEALTH_T_H

#include <stdint.h>

#include "route-t.h"

struct health_ep {
    _Alignas(64) uint32_t consecutive; /* failures in a row (5xx or connect) */
    uint32_t ejections;                /* times ejected since the last readmission */
    uint64_t ejected_until_ns;         /* 0 when admitted */
    uint64_t probe_started_ns;         /* 0 when no probe is in flight */
    uint32_t seq;                      /* bumped on every ejection and readmission */
    uint32_t total_ejections;          /* over the process's life, for metrics */
    int64_t changed_ms;                /* wall time of the last transition */
};

struct health {
    uint32_t threshold;   /* consecutive failures that eject; default 5 */
    uint64_t base_ns;     /* ejection time x times ejected; default 30 s */
    uint64_t max_ns;      /* cap; default 300 s */
    uint64_t probe_timeout_ns; /* a probe that never reports frees its slot after this */
    struct health_ep eps[ROUTE_MAX_ENDPOINTS];
};

enum health_state { HEALTH_OK, HEALTH_EJECTED, HEALTH_PROBING };

#endif
