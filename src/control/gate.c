/*
 * gate.c: the deploy gate for CI pipelines: a service is open for a new
 * deploy when no rollout of it is in progress and no incident touching it is
 * open. Each part that can close the gate is asked in turn.
 */
#include <stdio.h>

#include "firebreak/gate.h"
#include "firebreak/rollout.h"

bool gate_check(struct control *ctl, const char *service, json_t *reasons)
{
    const struct rollout *r = rollout_find(ctl->rollouts, service);
    char buf[256];

    if (rollout_active(r)) {
        snprintf(buf, sizeof(buf), "rollout %s#%lld of %s is %s at step %u of %u", service,
                 (long long)r->id, r->release, rollout_state_name(r->state), r->step + 1,
                 r->nsteps);
        json_array_append_new(reasons, json_string(buf));
    }
    if (ctl->gate_hook)
        ctl->gate_hook(ctl->gate_hook_arg, service, reasons);
    return json_array_size(reasons) == 0;
}
