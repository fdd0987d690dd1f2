/*
 * api_webhooks.c: /api/v1/webhooks/deliveries, the log of outgoing webhooks.
 *
 *   GET /webhooks/deliveries     {"deliveries": [...newest first], "waiting": N, "sending": N}
 *
 * The log lives in memory (the last WEBHOOK_LOG_MAX deliveries) and is read
 * on the control loop, which also sends the webhooks, so the answer is
 * immediate. It names hooks, never their URLs or secrets: a chat URL often
 * is a credential. Viewer role.
 */
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/control.h"
#include "firebreak/err-t.h"
#include "firebreak/server-t.h"
#include "firebreak/webhook.h"

bool api_webhooks(struct api_ctx *a)
{
    json_t *log;

    if (a->nseg != 2 || strcmp(a->seg[0], "webhooks") || strcmp(a->seg[1], "deliveries"))
        return false;
    if (!api_method(a, "GET")) {
        api_error(a, -FB_EMETHOD, "use GET here");
        return true;
    }
    if (!api_allowed(a, ROLE_VIEWER))
        return true;
    log = webhook_log_json(a->srv->webhook);
    if (!log)
        api_error(a, -FB_ENOMEM, "out of memory while listing webhook deliveries");
    else
        api_reply(a, 200, log);
    return true;
}
