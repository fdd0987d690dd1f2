/*
 * judge.h: the canary judge. Compares the canary with stable over the same
 * windows and says pass, fail, inconclusive (with the canary requests still
 * needed) or error, with the evidence. Pure: no I/O, no locks, no heap; each
 * call is O(JUDGE_MIX_MAX). One struct judge per rollout: alpha is the
 * probability that a canary no worse than stable is ever failed during it.
 */
#ifndef FIREBREAK_JUDGE_H
#define FIREBREAK_JUDGE_H

#include <jansson.h>
#include "buf-t.h"
#include "judge-t.h"

/* Fills p with the defaults (alpha 0.001, power 0.95, ratios 2.0, 1.25 and 2.0). */
void judge_params_default(struct judge_params *p);
/*
 * Checks p; returns 0, or -FB_EINVAL with a sentence naming the bad field in
 * why (NUL-terminated, truncated to whylen) when why is not NULL.
 */
int judge_params_check(const struct judge_params *p, char *why, size_t whylen);

/* Starts j empty with a copy of p. Returns 0 or -FB_EINVAL (j is then unusable). */
int judge_init(struct judge *j, const struct judge_params *p);

/*
 * Folds one window in. Returns 0, or -FB_EINVAL when the window is
 * inconsistent (errors or slow counts above requests, bad thresholds): it is
 * then not counted, j->problem says why, and the verdict is error until a
 * good window arrives. A window without stable traffic adds nothing; several
 * in a row make the verdict error. w is borrowed for the call.
 */
int judge_add_window(struct judge *j, const struct judge_window *w);

/* Computes the current verdict of j into *out. O(JUDGE_MIX_MAX). */
void judge_verdict(const struct judge *j, struct judge_verdict *out);

/* "pass", "fail", "inconclusive" or "error". */
const char *judge_outcome_name(enum judge_outcome o);

/*
 * Builds the verdict and its evidence as a new JSON object, owned by the
 * caller (json_decref). Non-finite numbers are written as null. Returns 0 or
 * -FB_ENOMEM (*out is then NULL).
 */
int judge_evidence_json(const struct judge_verdict *v, json_t **out);

/*
 * Appends a one-line human summary of v to b (for events and the CLI), e.g.
 * "fail: errors 12/1043 (1.15%, 95% 0.66-2.0%) vs stable 98/98711 ...".
 * Returns 0 or the error of fb_buf_append.
 */
int judge_summary(const struct judge_verdict *v, struct fb_buf *b);

#endif
