/*
 * health.c: outlier ejection shared by all workers (state diagram in
 * health.h).
 *
 * Invariants: ejected_until_ns != 0 exactly while an endpoint is ejected or
 * probing; at most one probe is in flight per endpoint (probe_started_ns is
 * claimed with a compare-and-swap), and a probe that never reports (its
 * client vanished) frees the slot after probe_timeout_ns. Successes on an
 * admitted endpoint cost one relaxed load; only changes write.
 */
#include "firebreak/clock.h"
#include "firebreak/health.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

void health_init(struct health *h, uint32_t threshold, uint64_t base_ns, uint64_t max_ns)
{
    h->threshold = threshold ? threshold : 5;
    h->base_ns = base_ns ? base_ns : 30000000000ull;
    h->max_ns = max_ns ? max_ns : 300000000000ull;
    h->probe_timeout_ns = 10000000000ull;
}

bool health_admit(struct health *h, unsigned id, uint64_t now_ns, bool *probe)
{
    struct health_ep *e = &h->eps[id];
    uint64_t until = LOAD(&e->ejected_until_ns), started;

    *probe = false;
    if (!until)
        return true;
    if (now_ns < until)
        return false;
    started = LOAD(&e->probe_started_ns);
    if (started && now_ns - started < h->probe_timeout_ns)
        return false;
    if (!__atomic_compare_exchange_n(&e->probe_started_ns, &started, now_ns, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return false;
    *probe = true;
    return true;
}

static void eject(struct health *h, struct health_ep *e, uint64_t now_ns)
{
    uint32_t n = __atomic_add_fetch(&e->ejections, 1, __ATOMIC_ACQ_REL);
    uint64_t t = h->base_ns * n;

    if (t > h->max_ns)
        t = h->max_ns;
    STORE(&e->consecutive, 0);
    STORE(&e->ejected_until_ns, now_ns + t);
    STORE(&e->probe_started_ns, 0);
    STORE(&e->changed_ms, fb_wall_ms());
    __atomic_add_fetch(&e->total_ejections, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&e->seq, 1, __ATOMIC_RELEASE);
}

void health_report(struct health *h, unsigned id, bool ok, bool was_probe, uint64_t now_ns)
{
    struct health_ep *e = &h->eps[id];
    uint64_t zero = 0;
    uint32_t n;

    if (ok) {
        if (LOAD(&e->consecutive))
            STORE(&e->consecutive, 0);
        if (was_probe) {
            STORE(&e->ejected_until_ns, 0);
            STORE(&e->probe_started_ns, 0);
            STORE(&e->ejections, 0);
            STORE(&e->changed_ms, fb_wall_ms());
            __atomic_add_fetch(&e->seq, 1, __ATOMIC_RELEASE);
        }
        return;
    }
    if (was_probe) {
        eject(h, e, now_ns);
        return;
    }
    if (LOAD(&e->ejected_until_ns))
        return;
    n = __atomic_add_fetch(&e->consecutive, 1, __ATOMIC_ACQ_REL);
    if (n < h->threshold)
        return;
    /* Exactly one reporter wins the right to eject. */
    if (__atomic_compare_exchange_n(&e->ejected_until_ns, &zero, now_ns + 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        eject(h, e, now_ns);
}

enum health_state health_state(const struct health *h, unsigned id, uint64_t now_ns)
{
    const struct health_ep *e = &h->eps[id];
    uint64_t until = LOAD(&e->ejected_until_ns);

    if (!until)
        return HEALTH_OK;
    return now_ns < until ? HEALTH_EJECTED : HEALTH_PROBING;
}
