/*
 * rollout.c: the rollout controller (state diagram in rollout.h).
 *
 * Four times a second (the control tick) each active rollout takes the
 * counters of its release and of stable from the data plane, folds the
 * difference since the last tick into its judge as one window, and acts:
 *
 *   - the hard guards need no statistics: the canary answered 5xx to half
 *     or more of at least 20 requests since the start, or every endpoint of
 *     the canary is ejected: roll back at once (trigger "guard");
 *   - the judge says fail: roll back (trigger "judge") with its evidence;
 *   - the step's hold is over: advance when the verdict is pass, or when it
 *     is inconclusive but the canary is no worse than stable on the
 *     evidence so far (its error and slow shares are at most stable's) and
 *     it served at least ROLLOUT_MIN_STEP_REQUESTS requests in the step;
 *     otherwise extend the hold up to ROLLOUT_EXTEND_FACTOR times, then
 *     pause with "needs about N more canary requests".
 *
 * The judge spans the whole rollout (its alpha is per rollout). A restart
 * resumes an active rollout at its step with a fresh hold and a fresh judge.
 * Rollouts are documents of kind "rollout" keyed by service.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/config.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/health.h"
#include "firebreak/hist.h"
#include "firebreak/judge.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/rollout.h"
#include "firebreak/series.h"
#include "firebreak/server-t.h"
#include "firebreak/store.h"

#define ROLLOUT_MIN_STEP_REQUESTS 10
#define ROLLOUT_EXTEND_FACTOR 3
#define GUARD_MIN_REQUESTS 20
#define MS 1000000ull

struct rollouts {
    struct control *ctl;
    struct rollout *list; /* active and last-finished rollouts, one per service */
};

static const char *const state_names[] = {"pending",     "progressing", "paused",
                                          "promoted",    "rolled_back", "aborted"};

const char *rollout_state_name(enum rollout_state s)
{
    return (unsigned)s < 6 ? state_names[s] : "unknown";
}

bool rollout_active(const struct rollout *r)
{
    return r && (r->state == RO_PENDING || r->state == RO_PROGRESSING || r->state == RO_PAUSED);
}

const struct rollout *rollout_find(const struct rollouts *rs, const char *service)
{
    const struct rollout *r;

    for (r = rs->list; r; r = r->next) {
        if (!strcmp(r->service, service))
            return r;
    }
    return NULL;
}

static struct rollout *find_mut(struct rollouts *rs, const char *service)
{
    return (struct rollout *)rollout_find(rs, service);
}

static void rollout_free(struct rollout *r)
{
    free(r->prev_canary);
    free(r->prev_stable);
    free(r->scratch);
    free(r);
}

static const struct cfg_service *cfg_service(const struct control *ctl, const char *name)
{
    const struct config *cfg = ctl->srv->cfg;
    size_t i;

    for (i = 0; i < cfg->nservices; i++) {
        if (!strcmp(cfg->services[i].name, name))
            return &cfg->services[i];
    }
    return NULL;
}

static void judge_start(struct control *ctl, struct rollout *r)
{
    const struct cfg_service *cs = cfg_service(ctl, r->service);
    struct judge_params p;

    judge_params_default(&p);
    if (cs) {
        p.alpha = cs->judge.alpha;
        p.min_error_ratio = cs->judge.min_error_ratio;
        p.max_latency_ratio = cs->judge.max_latency_ratio;
    }
    if (judge_init(&r->judge, &p)) {
        judge_params_default(&p);
        judge_init(&r->judge, &p);
    }
    r->have_prev = false;
    r->have_verdict = false;
}

/* ---- persistence --------------------------------------------------------- */

static json_t *steps_json(const struct rollout *r)
{
    json_t *a = json_array();
    char buf[64];
    unsigned i;

    for (i = 0; i < r->nsteps; i++) {
        if (r->steps[i].hold_ms)
            snprintf(buf, sizeof(buf), "%g%%:%llums", r->steps[i].weight,
                     (unsigned long long)r->steps[i].hold_ms);
        else
            snprintf(buf, sizeof(buf), "%g%%", r->steps[i].weight);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

static json_t *doc_json(const struct rollout *r)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:i, s:s, s:s, s:I, s:I, s:I}", "id",
                     (json_int_t)r->id, "release", r->release, "stable", r->stable, "actor",
                     r->actor, "steps", steps_json(r), "step", (int)r->step, "state",
                     rollout_state_name(r->state), "reason", r->reason, "started_ms",
                     (json_int_t)r->started_ms, "step_started_ms", (json_int_t)r->step_started_ms,
                     "ended_ms", (json_int_t)r->ended_ms);
}

static void save(struct rollouts *rs, const struct rollout *r)
{
    json_t *j = doc_json(r);

    control_save_doc(rs->ctl, "rollout", r->service, j);
    json_decref(j);
}

static enum rollout_state state_parse(const char *s)
{
    unsigned i;

    for (i = 0; i < 6; i++) {
        if (!strcmp(s, state_names[i]))
            return (enum rollout_state)i;
    }
    return RO_ABORTED;
}

static struct rollout *rollout_alloc(void)
{
    struct rollout *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->prev_canary = malloc(sizeof(*r->prev_canary));
    r->prev_stable = malloc(sizeof(*r->prev_stable));
    r->scratch = malloc(2 * sizeof(*r->scratch));
    if (!r->prev_canary || !r->prev_stable || !r->scratch) {
        rollout_free(r);
        return NULL;
    }
    return r;
}

static int load_one(struct rollouts *rs, const struct store_doc *d)
{
    json_t *j = json_loads(d->json, 0, NULL), *steps, *st;
    const char *release, *stable, *actor, *state, *reason;
    json_int_t id, started, step_started, ended;
    const char *texts[ROLLOUT_MAX_STEPS];
    struct rollout *r = NULL;
    char why[160];
    int step, rc = -FB_EINVAL;
    size_t i;

    if (!j || json_unpack(j, "{s:I, s:s, s:s, s:s, s:o, s:i, s:s, s:s, s:I, s:I, s:I}", "id", &id,
                          "release", &release, "stable", &stable, "actor", &actor, "steps",
                          &steps, "step", &step, "state", &state, "reason", &reason,
                          "started_ms", &started, "step_started_ms", &step_started, "ended_ms",
                          &ended) ||
        !json_is_array(steps) || json_array_size(steps) > ROLLOUT_MAX_STEPS)
        goto out;
    json_array_foreach(steps, i, st) texts[i] = json_is_string(st) ? json_string_value(st) : "";
    r = rollout_alloc();
    if (!r)
        goto out;
    if (config_parse_steps(texts, json_array_size(steps), r->steps, why, sizeof(why)))
        goto out;
    r->nsteps = (unsigned)json_array_size(steps);
    if (step < 0 || (unsigned)step >= r->nsteps)
        goto out;
    r->id = id;
    snprintf(r->service, sizeof(r->service), "%s", d->key);
    snprintf(r->release, sizeof(r->release), "%s", release);
    snprintf(r->stable, sizeof(r->stable), "%s", stable);
    snprintf(r->actor, sizeof(r->actor), "%s", actor);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->step = (unsigned)step;
    r->state = state_parse(state);
    r->started_ms = started;
    r->ended_ms = ended;
    /* Resume at the same step with a fresh hold: never skip ahead. */
    r->step_started_ms = fb_wall_ms();
    r->step_started_ns = fb_mono_ns();
    judge_start(rs->ctl, r);
    r->next = rs->list;
    rs->list = r;
    r = NULL;
    rc = 0;
out:
    if (r)
        rollout_free(r);
    json_decref(j);
    return rc;
}

/* ---- events --------------------------------------------------------------- */

static void emit(struct rollouts *rs, const struct rollout *r, const char *type, const char *actor,
                 json_t *extra)
{
    json_t *d = json_pack("{s:I, s:s, s:i, s:f}", "rollout", (json_int_t)r->id, "state",
                          rollout_state_name(r->state), "step", (int)r->step + 1, "weight",
                          r->steps[r->step].weight);

    if (extra) {
        json_object_update(d, extra);
        json_decref(extra);
    }
    control_event(rs->ctl, type, actor, r->service, r->release, d);
}

static json_t *evidence(const struct rollout *r)
{
    json_t *e = NULL;

    if (r->have_verdict && judge_evidence_json(&r->verdict, &e) == 0)
        return e;
    return json_object();
}

/* ---- transitions ------------------------------------------------------------ */

static int apply_step(struct rollouts *rs, struct rollout *r, char *msg, size_t msglen)
{
    const char *names[2] = {r->release, r->stable};
    uint32_t w = (uint32_t)(r->steps[r->step].weight * 100.0 + 0.5);
    uint32_t bps[2] = {w, 10000 - w};
    char why[64];

    snprintf(why, sizeof(why), "rollout step %u of %u", r->step + 1, r->nsteps);
    r->step_started_ms = fb_wall_ms();
    r->step_started_ns = fb_mono_ns();
    r->extended_ms = 0;
    r->step_requests = 0;
    return control_weights(rs->ctl, r->service, names, bps, w == 10000 ? 1 : 2, "rollout", why,
                           NULL, msg, msglen);
}

static void finish(struct rollouts *rs, struct rollout *r, enum rollout_state st,
                   const char *reason)
{
    r->state = st;
    r->ended_ms = fb_wall_ms();
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    save(rs, r);
}

static void roll_back(struct rollouts *rs, struct rollout *r, const char *trigger,
                      const char *reason)
{
    char msg[256];
    int rc;

    /* The swap first, the records after: containment waits for nothing. */
    rc = control_rollback(rs->ctl, r->service, trigger, reason, trigger, evidence(r), NULL, msg,
                          sizeof(msg));
    if (rc)
        fb_error("rollout %s/%s: rollback failed: %s", r->service, r->release, msg);
    finish(rs, r, RO_ROLLED_BACK, reason);
    fb_warn("rollout %s/%s rolled back (%s): %s", r->service, r->release, trigger, reason);
    emit(rs, r, "rollout_rolled_back", trigger,
         json_pack("{s:s, s:s}", "trigger", trigger, "reason", reason));
}

static void promote(struct rollouts *rs, struct rollout *r, const char *actor)
{
    char msg[256];

    if (control_promote(rs->ctl, r->service, r->release, actor, msg, sizeof(msg))) {
        fb_error("rollout %s/%s: promotion failed: %s", r->service, r->release, msg);
        return;
    }
    finish(rs, r, RO_PROMOTED, "all steps passed");
    emit(rs, r, "rollout_promoted", actor, json_pack("{s:s}", "previous", r->stable));
}

static void pause_for(struct rollouts *rs, struct rollout *r, const char *reason)
{
    r->state = RO_PAUSED;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    save(rs, r);
    emit(rs, r, "rollout_paused", "rollout", json_pack("{s:s}", "reason", reason));
}

/* ---- judging -------------------------------------------------------------- */

static const struct route_release *table_release(const struct route_table *t,
                                                 const char *service, const char *release,
                                                 const struct route_service **svc)
{
    unsigned i, j;

    for (i = 0; i < t->nservices; i++) {
        if (strcmp(t->services[i].name, service))
            continue;
        *svc = &t->services[i];
        for (j = 0; j < t->services[i].nreleases; j++) {
            if (!strcmp(t->services[i].releases[j].name, release))
                return &t->services[i].releases[j];
        }
    }
    return NULL;
}

static bool all_ejected(struct control *ctl, const struct route_release *rel, uint64_t now)
{
    unsigned k;

    for (k = 0; k < rel->nendpoints; k++) {
        if (health_state(ctl->srv->health, rel->endpoints[k].id, now) != HEALTH_EJECTED)
            return false;
    }
    return rel->nendpoints > 0;
}

/* Builds this tick's window from the counters; false when there is no data. */
static bool take_window(struct rollouts *rs, struct rollout *r, const struct route_release *rc,
                        const struct route_release *rst, struct judge_window *w)
{
    struct release_snapshot *cur_c = malloc(2 * sizeof(*cur_c)), *cur_s;
    struct series_rates sr;
    bool ok = false;

    if (!cur_c)
        return false;
    cur_s = cur_c + 1;
    metrics_snapshot_release(rc->metrics, cur_c);
    metrics_snapshot_release(rst->metrics, cur_s);
    if (r->have_prev) {
        memset(w, 0, sizeof(*w));
        w->start_ms = r->last_window_ms;
        w->canary_requests =
            metrics_snapshot_requests(cur_c) - metrics_snapshot_requests(r->prev_canary);
        w->canary_errors = cur_c->requests[4] - r->prev_canary->requests[4];
        w->stable_requests =
            metrics_snapshot_requests(cur_s) - metrics_snapshot_requests(r->prev_stable);
        w->stable_errors = cur_s->requests[4] - r->prev_stable->requests[4];
        if (rst->metrics && !series_rates(rs->ctl->series, rst->metrics, 10, &sr) &&
            sr.p99_ms > 0) {
            uint64_t st_ns = (uint64_t)(sr.p99_ms * 1e6);
            uint64_t ct_ns = (uint64_t)ceil(sr.p99_ms * 1e6 * r->judge.params.max_latency_ratio);

            hist_diff(&r->scratch[0], &cur_c->latency, &r->prev_canary->latency);
            hist_diff(&r->scratch[1], &cur_s->latency, &r->prev_stable->latency);
            w->has_latency = true;
            w->canary_threshold_s = (double)ct_ns / 1e9;
            w->stable_threshold_s = (double)st_ns / 1e9;
            w->canary_slow = hist_count_above(&r->scratch[0], ct_ns);
            w->stable_slow = hist_count_above(&r->scratch[1], st_ns);
            if (w->canary_slow > w->canary_requests || w->stable_slow > w->stable_requests)
                w->has_latency = false; /* a response counted between the two reads */
        }
        ok = true;
    }
    memcpy(r->prev_canary, cur_c, sizeof(*cur_c));
    memcpy(r->prev_stable, cur_s, sizeof(*cur_s));
    r->have_prev = true;
    r->last_window_ms = fb_wall_ms();
    free(cur_c);
    return ok;
}

/* One test's evidence leaves the canary no worse than stable: it passed, or
 * its point estimate is within NO_WORSE_SLACK of stable's (at most one event
 * when stable has none). The judge keeps watching after the step, so a
 * canary that is in fact worse still fails at the next weight. */
#define NO_WORSE_SLACK 1.5

static bool test_no_worse(const struct judge_test_verdict *t)
{
    if (t->outcome == JUDGE_PASS || t->canary_events == 0)
        return true;
    if (t->stable_events == 0)
        return t->canary_events <= 1;
    return t->canary_rate <= t->stable_rate * NO_WORSE_SLACK;
}

/* Canary no worse than stable on the evidence so far, with enough requests. */
static bool no_worse(const struct rollout *r)
{
    const struct judge_test_verdict *e = &r->verdict.errors, *l = &r->verdict.latency;

    if (r->step_requests < ROLLOUT_MIN_STEP_REQUESTS || e->canary_requests == 0)
        return false;
    return test_no_worse(e) && (!r->verdict.latency_measured || test_no_worse(l));
}

static void verdict_changed(struct rollouts *rs, struct rollout *r, enum judge_outcome before)
{
    struct fb_buf b;

    if (r->have_verdict && before == r->verdict.outcome)
        return;
    fb_buf_init(&b, 4096);
    judge_summary(&r->verdict, &b);
    emit(rs, r, "verdict", "judge",
         json_pack("{s:s, s:s, s:o}", "verdict", judge_outcome_name(r->verdict.outcome),
                   "summary", b.data ? b.data : "", "evidence", evidence(r)));
    fb_buf_release(&b);
}

static void step_over(struct rollouts *rs, struct rollout *r)
{
    char msg[256];
    uint64_t hold = r->steps[r->step].hold_ms;

    if (r->verdict.outcome == JUDGE_PASS || (r->verdict.outcome == JUDGE_INCONCLUSIVE &&
                                             no_worse(r))) {
        if (r->step + 1 == r->nsteps) {
            promote(rs, r, "rollout");
            return;
        }
        r->step++;
        if (apply_step(rs, r, msg, sizeof(msg))) {
            pause_for(rs, r, msg);
            return;
        }
        save(rs, r);
        emit(rs, r, "rollout_step", "rollout",
             json_pack("{s:s}", "verdict", judge_outcome_name(r->verdict.outcome)));
        return;
    }
    if (r->extended_ms + hold < hold * ROLLOUT_EXTEND_FACTOR) {
        r->extended_ms += hold;
        return;
    }
    if (r->verdict.outcome == JUDGE_ERROR)
        snprintf(msg, sizeof(msg), "the judge has no usable data: %s", r->verdict.reason);
    else
        snprintf(msg, sizeof(msg), "not enough evidence to go on: needs about %llu more canary "
                                   "requests; resume to keep waiting, promote or abort",
                 (unsigned long long)r->verdict.needs);
    pause_for(rs, r, msg);
}

static void tick_one(struct rollouts *rs, struct rollout *r, uint64_t now)
{
    const struct route_table *t = rs->ctl->srv->table;
    const struct route_service *svc = NULL;
    const struct route_release *rc, *rst;
    enum judge_outcome before = r->verdict.outcome;
    struct judge_window w;
    char why[200];
    uint64_t hold;

    rc = table_release(t, r->service, r->release, &svc);
    rst = table_release(t, r->service, r->stable, &svc);
    if (!rc || !rst || !rc->metrics || !rst->metrics) {
        pause_for(rs, r, "the release or stable is no longer in the route table");
        return;
    }
    if (take_window(rs, r, rc, rst, &w)) {
        judge_add_window(&r->judge, &w);
        r->guard_requests += w.canary_requests;
        r->guard_errors += w.canary_errors;
        r->step_requests += w.canary_requests;
    }
    judge_verdict(&r->judge, &r->verdict);
    verdict_changed(rs, r, before);
    r->have_verdict = true;
    if (r->guard_requests >= GUARD_MIN_REQUESTS && r->guard_errors * 2 >= r->guard_requests) {
        snprintf(why, sizeof(why), "guard: %s answered 5xx to %llu of %llu requests", r->release,
                 (unsigned long long)r->guard_errors, (unsigned long long)r->guard_requests);
        roll_back(rs, r, "guard", why);
        return;
    }
    if (r->steps[r->step].weight > 0 && all_ejected(rs->ctl, rc, now)) {
        snprintf(why, sizeof(why), "guard: every endpoint of %s is ejected", r->release);
        roll_back(rs, r, "guard", why);
        return;
    }
    if (r->verdict.outcome == JUDGE_FAIL) {
        roll_back(rs, r, "judge", r->verdict.reason);
        return;
    }
    hold = r->steps[r->step].hold_ms + r->extended_ms;
    if (r->state == RO_PROGRESSING && now - r->step_started_ns >= hold * MS)
        step_over(rs, r);
}

void rollouts_tick(struct rollouts *rs, uint64_t now_ns)
{
    struct rollout *r;

    for (r = rs->list; r; r = r->next) {
        if (r->state == RO_PROGRESSING || r->state == RO_PAUSED)
            tick_one(rs, r, now_ns);
    }
}

/* ---- commands --------------------------------------------------------------- */

static struct rollout *active_or_fail(struct rollouts *rs, const char *service, char *msg,
                                      size_t msglen)
{
    struct rollout *r = find_mut(rs, service);

    if (!rollout_active(r)) {
        snprintf(msg, msglen, "service '%s' has no rollout in progress", service);
        return NULL;
    }
    return r;
}

static int check_start(struct rollouts *rs, const char *service, const char *release,
                       struct route_spec_service **out, char *msg, size_t msglen)
{
    struct route_spec_service *s = control_service(rs->ctl, service);
    size_t i;

    if (!s || !cfg_service(rs->ctl, service)) {
        snprintf(msg, msglen, "no service named '%s'", service);
        return -FB_ENOENT;
    }
    if (rollout_active(rollout_find(rs, service))) {
        snprintf(msg, msglen, "service '%s' already has a rollout in progress", service);
        return -FB_ECONFLICT;
    }
    if (!strcmp(s->stable, release)) {
        snprintf(msg, msglen, "'%s' is already the stable release", release);
        return -FB_ECONFLICT;
    }
    for (i = 0; i < s->nreleases; i++) {
        if (!strcmp(s->releases[i].name, release)) {
            *out = s;
            return 0;
        }
    }
    snprintf(msg, msglen, "service '%s' has no release '%s'; add it first", service, release);
    return -FB_ENOENT;
}

int rollout_start(struct rollouts *rs, const char *service, const char *release,
                  const struct cfg_step *steps, size_t nsteps, const char *actor, char *msg,
                  size_t msglen)
{
    const struct cfg_service *cs = cfg_service(rs->ctl, service);
    struct route_spec_service *s;
    struct rollout *r, *old, **pp;
    int64_t id;
    int rc;

    rc = check_start(rs, service, release, &s, msg, msglen);
    if (rc)
        return rc;
    if (!steps) {
        steps = cs->steps;
        nsteps = cs->nsteps;
    }
    if (nsteps == 0 || nsteps > ROLLOUT_MAX_STEPS) {
        snprintf(msg, msglen, "a rollout needs 1 to %d steps", ROLLOUT_MAX_STEPS);
        return -FB_EINVAL;
    }
    r = rollout_alloc();
    if (!r)
        return -FB_ENOMEM;
    old = find_mut(rs, service);
    id = old ? old->id + 1 : 1; /* numbered per service: shop#1, shop#2, ... */
    r->id = id;
    snprintf(r->service, sizeof(r->service), "%s", service);
    snprintf(r->release, sizeof(r->release), "%s", release);
    snprintf(r->stable, sizeof(r->stable), "%s", s->stable);
    snprintf(r->actor, sizeof(r->actor), "%s", actor);
    memcpy(r->steps, steps, nsteps * sizeof(*steps));
    r->nsteps = (unsigned)nsteps;
    r->started_ms = fb_wall_ms();
    r->state = RO_PROGRESSING;
    judge_start(rs->ctl, r);
    /* Replace the service's previous (finished) rollout. */
    for (pp = &rs->list; (old = *pp); pp = &old->next) {
        if (!strcmp(old->service, service)) {
            *pp = old->next;
            rollout_free(old);
            break;
        }
    }
    r->next = rs->list;
    rs->list = r;
    emit(rs, r, "rollout_started", actor, json_pack("{s:o, s:s}", "steps", steps_json(r),
                                                    "stable", r->stable));
    rc = apply_step(rs, r, msg, msglen);
    if (rc) {
        finish(rs, r, RO_ABORTED, msg);
        return rc;
    }
    save(rs, r);
    return 0;
}

int rollout_pause(struct rollouts *rs, const char *service, const char *actor, char *msg,
                  size_t msglen)
{
    struct rollout *r = active_or_fail(rs, service, msg, msglen);

    if (!r)
        return -FB_ECONFLICT;
    if (r->state == RO_PAUSED) {
        snprintf(msg, msglen, "the rollout is already paused");
        return -FB_ECONFLICT;
    }
    r->state = RO_PAUSED;
    snprintf(r->reason, sizeof(r->reason), "paused by %s", actor);
    save(rs, r);
    emit(rs, r, "rollout_paused", actor, json_pack("{s:s}", "reason", r->reason));
    return 0;
}

int rollout_resume(struct rollouts *rs, const char *service, const char *actor, char *msg,
                   size_t msglen)
{
    struct rollout *r = active_or_fail(rs, service, msg, msglen);

    if (!r)
        return -FB_ECONFLICT;
    if (r->state != RO_PAUSED) {
        snprintf(msg, msglen, "the rollout is not paused");
        return -FB_ECONFLICT;
    }
    r->state = RO_PROGRESSING;
    r->reason[0] = '\0';
    r->step_started_ns = fb_mono_ns();
    r->step_started_ms = fb_wall_ms();
    r->extended_ms = 0;
    save(rs, r);
    emit(rs, r, "rollout_resumed", actor, NULL);
    return 0;
}

int rollout_promote(struct rollouts *rs, const char *service, const char *actor, char *msg,
                    size_t msglen)
{
    struct rollout *r = active_or_fail(rs, service, msg, msglen);

    if (!r)
        return -FB_ECONFLICT;
    if (control_promote(rs->ctl, r->service, r->release, actor, msg, msglen))
        return -FB_ECONFLICT;
    finish(rs, r, RO_PROMOTED, "promoted by hand");
    emit(rs, r, "rollout_promoted", actor, json_pack("{s:s}", "previous", r->stable));
    return 0;
}

int rollout_abort(struct rollouts *rs, const char *service, const char *actor, char *msg,
                  size_t msglen)
{
    struct rollout *r = active_or_fail(rs, service, msg, msglen);
    int rc;

    if (!r)
        return -FB_ECONFLICT;
    /* Finish first so the rollback event below does not look like a rollback of
     * an active rollout. */
    finish(rs, r, RO_ABORTED, "aborted by hand");
    rc = control_rollback(rs->ctl, r->service, "abort", "rollout aborted", actor, NULL, NULL, msg,
                          msglen);
    emit(rs, r, "rollout_aborted", actor, NULL);
    return rc;
}

/* A manual rollback (API or CLI) during a rollout ends it. */
static void on_event(void *arg, const char *type, const char *service, const char *release,
                     json_t *details)
{
    struct rollouts *rs = arg;
    struct rollout *r;
    const char *trigger;

    if (strcmp(type, "rollback") || !service)
        return;
    r = find_mut(rs, service);
    trigger = json_string_value(json_object_get(details, "trigger"));
    if (!rollout_active(r) || !trigger || strcmp(trigger, "manual"))
        return;
    finish(rs, r, RO_ROLLED_BACK, "rolled back by hand");
    emit(rs, r, "rollout_rolled_back", "manual", json_pack("{s:s}", "trigger", "manual"));
}

/* ---- API view --------------------------------------------------------------- */

json_t *rollout_json(const struct rollouts *rs, const struct rollout *r)
{
    json_t *j = doc_json(r), *v = NULL;
    uint64_t now = fb_mono_ns(), hold = r->steps[r->step].hold_ms + r->extended_ms;
    uint64_t elapsed = (now - r->step_started_ns) / MS;
    struct fb_buf b;

    json_object_set_new(j, "weight", json_real(r->steps[r->step].weight));
    json_object_set_new(j, "step_of", json_integer(r->nsteps));
    json_object_set_new(j, "step_human", json_integer(r->step + 1));
    json_object_set_new(j, "hold_ms", json_integer((json_int_t)hold));
    json_object_set_new(j, "time_left_ms",
                        json_integer(r->state == RO_PROGRESSING && hold > elapsed
                                         ? (json_int_t)(hold - elapsed)
                                         : 0));
    if (r->have_verdict && judge_evidence_json(&r->verdict, &v) == 0) {
        fb_buf_init(&b, 4096);
        judge_summary(&r->verdict, &b);
        json_object_set_new(v, "summary", json_string(b.data ? b.data : ""));
        fb_buf_release(&b);
        json_object_set_new(j, "verdict", v);
    } else {
        json_object_set_new(j, "verdict", json_null());
    }
    return j;
}

/* ---- life cycle ------------------------------------------------------------- */

int rollouts_init(struct control *ctl, struct rollouts **out)
{
    struct rollouts *rs = calloc(1, sizeof(*rs));
    struct store_doc *docs = NULL;
    size_t n = 0, i;
    int rc;

    *out = NULL;
    if (!rs)
        return -FB_ENOMEM;
    rs->ctl = ctl;
    rc = store_list(ctl->store, "rollout", &docs, &n);
    for (i = 0; !rc && i < n; i++) {
        if (load_one(rs, &docs[i]))
            fb_warn("store: rollout of '%s' is unreadable; ignored", docs[i].key);
    }
    store_docs_free(docs, n);
    if (!rc)
        rc = control_subscribe(ctl, on_event, rs);
    if (rc) {
        rollouts_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

void rollouts_free(struct rollouts *rs)
{
    struct rollout *r, *next;

    if (!rs)
        return;
    for (r = rs->list; r; r = next) {
        next = r->next;
        rollout_free(r);
    }
    free(rs);
}
