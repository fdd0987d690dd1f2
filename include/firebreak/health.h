/*
 * health.h: outlier ejection.
 *
 *          failures >= threshold              ejection time passes
 *   OK ─────────────────────────► EJECTED ──────────────────────────► PROBING
 *    ▲                              ▲  (one request is let through)      │
 *    │          probe succeeds      │          probe fails               │
 *    └──────────────────────────────┼────────────────────────────────────┤
 *                                   └────────────────────────────────────┘
 *
 *   transition          function
 *   OK -> EJECTED       health_report (a failure that reaches the threshold)
 *   EJECTED -> PROBING  health_admit (first request after the ejection ended)
 *   PROBING -> OK       health_report (ok, was_probe)
 *   PROBING -> EJECTED  health_report (failure, was_probe): time x (ejections + 1)
 */
#ifndef FIREBREAK_HEALTH_H
#define FIREBREAK_HEALTH_H

#include <stdbool.h>

#include "health-t.h"

void health_init(struct health *h, uint32_t threshold, uint64_t base_ns, uint64_t max_ns);
/* May endpoint id take a request now? Sets *probe when this request is the
 * probe that decides a readmission. */
bool health_admit(struct health *h, unsigned id, uint64_t now_ns, bool *probe);
/* Records a request's outcome; ok is false for a 5xx or a failed connect. */
void health_report(struct health *h, unsigned id, bool ok, bool was_probe, uint64_t now_ns);
enum health_state health_state(const struct health *h, unsigned id, uint64_t now_ns);

#endif
