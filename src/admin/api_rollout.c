/*
 * api_rollout.c: /api/v1/services/{s}/rollout and /gate.
 *
 *   POST /services/{s}/rollout                 {"release": R, "steps": [...]} (responder)
 *   GET  /services/{s}/rollout                 the active or last rollout, with its verdict
 *   POST /services/{s}/rollout/pause|resume|promote|abort                      (responder)
 *   GET  /services/{s}/gate                    {"ok": bool, "reasons": [...]} for CI
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/config.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/gate.h"
#include "firebreak/rollout.h"
#include "firebreak/server-t.h"

static void reply_rollout(struct api_ctx *a, int status, const char *service)
{
    const struct rollout *r = rollout_find(a->ctl->rollouts, service);

    if (!r) {
        api_error(a, -FB_ENOENT, "service '%s' has had no rollout", service);
        return;
    }
    api_reply(a, status, rollout_json(a->ctl->rollouts, r));
}

static void start(struct api_ctx *a, const char *service)
{
    json_t *body = api_body(a), *steps = NULL, *st;
    struct cfg_step parsed[CFG_MAX_STEPS];
    const char *release = NULL, *texts[CFG_MAX_STEPS];
    char msg[256] = "";
    size_t i, n = 0;
    int rc;

    if (!body)
        return;
    if (json_unpack(body, "{s:s, s?o}", "release", &release, "steps", &steps)) {
        api_error(a, -FB_EINVAL, "body needs \"release\" and may have \"steps\": "
                                 "[\"1%%:60s\", ..., \"100%%\"]");
        goto out;
    }
    if (steps) {
        if (!json_is_array(steps) || json_array_size(steps) > CFG_MAX_STEPS) {
            api_error(a, -FB_EINVAL, "steps must be a list of at most %d strings",
                      CFG_MAX_STEPS);
            goto out;
        }
        json_array_foreach(steps, i, st)
        {
            if (!json_is_string(st)) {
                api_error(a, -FB_EINVAL, "steps[%zu] must be a string like \"5%%:120s\"", i);
                goto out;
            }
            texts[n++] = json_string_value(st);
        }
        if (config_parse_steps(texts, n, parsed, msg, sizeof(msg))) {
            api_error(a, -FB_EINVAL, "%s", msg);
            goto out;
        }
    }
    rc = rollout_start(a->ctl->rollouts, service, release, steps ? parsed : NULL, n,
                       a->token->name, msg, sizeof(msg));
    if (rc)
        api_error(a, rc, "%s", msg);
    else
        reply_rollout(a, 201, service);
out:
    json_decref(body);
}

static void command(struct api_ctx *a, const char *service, const char *verb)
{
    char msg[256] = "";
    int rc;

    if (!strcmp(verb, "pause"))
        rc = rollout_pause(a->ctl->rollouts, service, a->token->name, msg, sizeof(msg));
    else if (!strcmp(verb, "resume"))
        rc = rollout_resume(a->ctl->rollouts, service, a->token->name, msg, sizeof(msg));
    else if (!strcmp(verb, "promote"))
        rc = rollout_promote(a->ctl->rollouts, service, a->token->name, msg, sizeof(msg));
    else if (!strcmp(verb, "abort"))
        rc = rollout_abort(a->ctl->rollouts, service, a->token->name, msg, sizeof(msg));
    else {
        api_error(a, -FB_ENOENT, "no rollout command '%s' (pause, resume, promote, abort)", verb);
        return;
    }
    if (rc)
        api_error(a, rc, "%s", msg);
    else
        reply_rollout(a, 200, service);
}

static void gate(struct api_ctx *a, const char *service)
{
    json_t *reasons = json_array();
    bool ok;

    if (!control_service(a->ctl, service)) {
        json_decref(reasons);
        api_error(a, -FB_ENOENT, "no service named '%s'", service);
        return;
    }
    ok = gate_check(a->ctl, service, reasons);
    api_reply(a, 200, json_pack("{s:s, s:b, s:o}", "service", service, "ok", ok, "reasons",
                                reasons));
}

bool api_rollout(struct api_ctx *a)
{
    const char *svc;

    if (strcmp(a->seg[0], "services") || a->nseg < 3)
        return false;
    svc = a->seg[1];
    if (!strcmp(a->seg[2], "gate") && a->nseg == 3) {
        if (api_allowed(a, ROLE_VIEWER))
            gate(a, svc);
        return true;
    }
    if (strcmp(a->seg[2], "rollout"))
        return false;
    if (a->nseg == 3 && (api_method(a, "GET") || api_method(a, "HEAD"))) {
        if (api_allowed(a, ROLE_VIEWER))
            reply_rollout(a, 200, svc);
    } else if (a->nseg == 3 && api_method(a, "POST")) {
        if (api_allowed(a, ROLE_RESPONDER))
            start(a, svc);
    } else if (a->nseg == 4 && api_method(a, "POST")) {
        if (api_allowed(a, ROLE_RESPONDER))
            command(a, svc, a->seg[3]);
    } else {
        api_error(a, -FB_EMETHOD, "use GET or POST here");
    }
    return true;
}
