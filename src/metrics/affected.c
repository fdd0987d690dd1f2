/*
 * affected.c: users who got a 5xx, per release (affected.h).
 *
 * Rings: one per worker, power-of-two slots, head written by the worker and
 * tail by the control thread, each published with release/acquire order.
 * Sets: open addressing on the 64-bit user hash per release, bounded at
 * max_users entries in all; past the bound new users are counted as dropped
 * (the report says so) rather than growing without limit.
 */
#include <stdlib.h>
#include <string.h>

#include "firebreak/affected.h"

struct fail_slot {
    const struct release_metrics *rm;
    uint64_t user;
    int64_t time_ms;
};

struct fail_ring {
    _Alignas(64) uint64_t head; /* next slot the worker writes */
    _Alignas(64) uint64_t tail; /* next slot the control thread reads */
    uint64_t dropped;
    struct fail_slot *slots;
};

struct user_entry {
    uint64_t user; /* 0 marks an empty entry; a real 0 hash is stored as 1 */
    int64_t first_ms;
    int64_t last_ms;
};

struct user_set {
    struct user_set *next;
    const struct release_metrics *rm;
    struct user_entry *entries;
    size_t cap; /* power of two */
    size_t n;
};

struct affected {
    unsigned nworkers;
    unsigned mask;
    struct fail_ring *rings;
    struct user_set *sets;
    size_t max_users;
    size_t users;
    uint64_t set_dropped;
};

struct affected *affected_new(unsigned nworkers, unsigned ring_slots, size_t max_users)
{
    struct affected *a = calloc(1, sizeof(*a));
    unsigned i, slots = 1;

    if (!a)
        return NULL;
    while (slots < ring_slots)
        slots <<= 1;
    a->nworkers = nworkers;
    a->mask = slots - 1;
    a->max_users = max_users;
    a->rings = aligned_alloc(64, sizeof(*a->rings) * nworkers);
    if (!a->rings)
        goto fail;
    memset(a->rings, 0, sizeof(*a->rings) * nworkers);
    for (i = 0; i < nworkers; i++) {
        a->rings[i].slots = calloc(slots, sizeof(struct fail_slot));
        if (!a->rings[i].slots)
            goto fail;
    }
    return a;
fail:
    affected_free(a);
    return NULL;
}

void affected_free(struct affected *a)
{
    struct user_set *s, *next;
    unsigned i;

    if (!a)
        return;
    for (i = 0; a->rings && i < a->nworkers; i++)
        free(a->rings[i].slots);
    free(a->rings);
    for (s = a->sets; s; s = next) {
        next = s->next;
        free(s->entries);
        free(s);
    }
    free(a);
}

void affected_push(struct affected *a, unsigned worker, const struct release_metrics *rm,
                   uint64_t user, int64_t time_ms)
{
    struct fail_ring *r = &a->rings[worker];
    uint64_t head = r->head, tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    struct fail_slot *s;

    if (head - tail > a->mask) {
        __atomic_store_n(&r->dropped, r->dropped + 1, __ATOMIC_RELAXED);
        return;
    }
    s = &r->slots[head & a->mask];
    s->rm = rm;
    s->user = user ? user : 1;
    s->time_ms = time_ms;
    __atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
}

static struct user_set *set_for(struct affected *a, const struct release_metrics *rm)
{
    struct user_set *s;

    for (s = a->sets; s; s = s->next) {
        if (s->rm == rm)
            return s;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rm = rm;
    s->next = a->sets;
    a->sets = s;
    return s;
}

static bool set_grow(struct user_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 256, i, j;
    struct user_entry *e = calloc(cap, sizeof(*e));

    if (!e)
        return false;
    for (i = 0; i < s->cap; i++) {
        if (!s->entries[i].user)
            continue;
        for (j = s->entries[i].user & (cap - 1); e[j].user; j = (j + 1) & (cap - 1))
            ;
        e[j] = s->entries[i];
    }
    free(s->entries);
    s->entries = e;
    s->cap = cap;
    return true;
}

static void set_add(struct affected *a, struct user_set *s, uint64_t user, int64_t t)
{
    size_t j;

    if ((s->n + 1) * 2 > s->cap && !set_grow(s)) {
        a->set_dropped++;
        return;
    }
    for (j = user & (s->cap - 1); s->entries[j].user; j = (j + 1) & (s->cap - 1)) {
        if (s->entries[j].user == user) {
            if (t < s->entries[j].first_ms)
                s->entries[j].first_ms = t;
            if (t > s->entries[j].last_ms)
                s->entries[j].last_ms = t;
            return;
        }
    }
    if (a->users >= a->max_users) {
        a->set_dropped++;
        return;
    }
    s->entries[j].user = user;
    s->entries[j].first_ms = t;
    s->entries[j].last_ms = t;
    s->n++;
    a->users++;
}

void affected_drain(struct affected *a)
{
    unsigned i;

    for (i = 0; i < a->nworkers; i++) {
        struct fail_ring *r = &a->rings[i];
        uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE), tail = r->tail;

        for (; tail != head; tail++) {
            const struct fail_slot *f = &r->slots[tail & a->mask];
            struct user_set *s = set_for(a, f->rm);

            if (s)
                set_add(a, s, f->user, f->time_ms);
            else
                a->set_dropped++;
        }
        __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    }
}

uint64_t affected_count(const struct affected *a, const struct release_metrics *rm,
                        int64_t since_ms, int64_t until_ms)
{
    const struct user_set *s;
    uint64_t n = 0;
    size_t i;

    for (s = a->sets; s && s->rm != rm; s = s->next)
        ;
    for (i = 0; s && i < s->cap; i++) {
        const struct user_entry *e = &s->entries[i];

        if (e->user && e->last_ms >= since_ms && (!until_ms || e->first_ms <= until_ms))
            n++;
    }
    return n;
}

uint64_t affected_dropped(const struct affected *a)
{
    uint64_t n = a->set_dropped;
    unsigned i;

    for (i = 0; i < a->nworkers; i++)
        n += __atomic_load_n(&a->rings[i].dropped, __ATOMIC_RELAXED);
    return n;
}
