/*
 * hist.c: the reader side of the log-linear histogram (hist-t.h).
 *
 * Bucket i < HIST_OVERFLOW covers the power of two 2^e with e = HIST_MIN_EXP +
 * i / 64, and within it the sub-bucket s = 64 + i % 64: the values
 * [s << (e - 6), (s + 1) << (e - 6)). hist_index in hist.h is the inverse.
 *
 * Invariants: buckets only grow; count and sum_ns are written after the bucket
 * by the one writer, so a reader may see a bucket before the matching count.
 * Readers that need agreement use hist_snapshot, which recomputes count.
 *
 * Cost: every function here is one or two walks over HIST_SLOTS (1713)
 * counters; nothing allocates.
 */
#include <string.h>

#include "firebreak/hist.h"

_Static_assert(HIST_NBUCKETS == 1712, "bucket layout changed: update the docs");

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hist_snapshot(struct hist *dst, const struct hist *src)
{
    uint64_t total = 0;
    unsigned i;

    for (i = 0; i < HIST_SLOTS; i++) {
        dst->buckets[i] = hist_load(&src->buckets[i]);
        total += dst->buckets[i];
    }
    dst->count = total;
    dst->sum_ns = hist_load(&src->sum_ns);
}

void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b)
{
    unsigned i;

    for (i = 0; i < HIST_SLOTS; i++)
        dst->buckets[i] = a->buckets[i] - b->buckets[i];
    dst->sum_ns = a->sum_ns - b->sum_ns;
    dst->count = hist_count(a) - hist_count(b);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    unsigned i;

    for (i = 0; i < HIST_SLOTS; i++)
        hist_owner_add(&dst->buckets[i], hist_load(&src->buckets[i]));
    hist_owner_add(&dst->count, hist_load(&src->count));
    hist_owner_add(&dst->sum_ns, hist_load(&src->sum_ns));
}

uint64_t hist_count(const struct hist *h)
{
    return hist_load(&h->count);
}

uint64_t hist_sum_ns(const struct hist *h)
{
    return hist_load(&h->sum_ns);
}

uint64_t hist_bucket_lower(unsigned i)
{
    unsigned e = HIST_MIN_EXP + i / HIST_SUB;
    uint64_t s = HIST_SUB + i % HIST_SUB;

    return s << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_upper(unsigned i)
{
    unsigned e = HIST_MIN_EXP + i / HIST_SUB;
    uint64_t upper = hist_bucket_lower(i) + (1ull << (e - HIST_SUB_BITS)) - 1;

    return upper > HIST_MAX_NS ? HIST_MAX_NS : upper;
}

uint64_t hist_bucket_value(unsigned i)
{
    unsigned e = HIST_MIN_EXP + i / HIST_SUB;

    return hist_bucket_lower(i) + (1ull << (e - HIST_SUB_BITS)) / 2;
}

/* Sum of buckets [0, last], read atomically. */
static uint64_t sum_upto(const struct hist *h, unsigned last)
{
    uint64_t n = 0;
    unsigned i;

    for (i = 0; i <= last && i < HIST_SLOTS; i++)
        n += hist_load(&h->buckets[i]);
    return n;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t total = sum_upto(h, HIST_OVERFLOW), rank, seen = 0;
    uint64_t value = HIST_MAX_NS;
    unsigned i;

    if (total == 0)
        return 0;
    if (!(q > 0.0))
        q = 0.0; /* also catches NaN */
    if (q > 1.0)
        q = 1.0;
    rank = (uint64_t)(q * (double)total);
    if ((double)rank < q * (double)total)
        rank++; /* ceil */
    if (rank == 0)
        rank = 1;
    if (rank > total)
        rank = total;
    /* Buckets only grow, so this walk reaches rank before the overflow
     * bucket unless the value overflowed. */
    for (i = 0; i < HIST_OVERFLOW; i++) {
        seen += hist_load(&h->buckets[i]);
        if (seen >= rank) {
            value = hist_bucket_value(i);
            break;
        }
    }
    return value;
}

uint64_t hist_count_le(const struct hist *h, uint64_t ns)
{
    return sum_upto(h, hist_index(ns));
}

uint64_t hist_count_above(const struct hist *h, uint64_t ns)
{
    unsigned last = hist_index(ns), i;
    uint64_t n = 0;

    for (i = last + 1; i < HIST_SLOTS; i++)
        n += hist_load(&h->buckets[i]);
    return n;
}
