/*
 * hist.h: recording into and reading from a struct hist (see hist-t.h).
 *
 * hist_record is the hot path: inline, O(1), one count-leading-zeros and no
 * branch beyond the clamps (which compile to conditional moves). Everything
 * else is reader-side and walks the buckets, O(HIST_SLOTS).
 *
 * Readers may run on a live histogram while its one writer records; each
 * value they load is whole, but a walk may mix moments. For a consistent view
 * take a hist_snapshot first and ask the snapshot.
 */
#ifndef FIREBREAK_HIST_H
#define FIREBREAK_HIST_H

#include <stdbool.h>
#include <stdint.h>

#include "hist-t.h"

/* The one writer of *x adds n: a plain load and a relaxed atomic store, so a
 * reader on another thread never sees a torn value. Not safe with two writers. */
static inline void hist_owner_add(uint64_t *x, uint64_t n)
{
    __atomic_store_n(x, *x + n, __ATOMIC_RELAXED);
}

/* Reader side of hist_owner_add: a relaxed atomic load. */
static inline uint64_t hist_load(const uint64_t *x)
{
    return __atomic_load_n(x, __ATOMIC_RELAXED);
}

/* Bucket index of a duration: 0 for anything below HIST_MIN_NS, HIST_OVERFLOW
 * for anything above HIST_MAX_NS. */
static inline unsigned hist_index(uint64_t ns)
{
    uint64_t v = ns < HIST_MIN_NS ? HIST_MIN_NS : ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned i =
        ((e - HIST_MIN_EXP) << HIST_SUB_BITS) + (unsigned)(v >> (e - HIST_SUB_BITS)) - HIST_SUB;

    return ns > HIST_MAX_NS ? HIST_OVERFLOW : i;
}

/* Records one duration. Only the histogram's one writer thread may call it. */
static inline void hist_record(struct hist *h, uint64_t ns)
{
    hist_owner_add(&h->buckets[hist_index(ns)], 1);
    hist_owner_add(&h->count, 1);
    hist_owner_add(&h->sum_ns, ns);
}

/* Empties h (not while another thread reads it). */
void hist_init(struct hist *h);

/* Copies src into dst with atomic loads; dst->count is set to the sum of the
 * copied buckets, so a snapshot is always self-consistent. dst is the caller's
 * private histogram. */
void hist_snapshot(struct hist *dst, const struct hist *src);

/* Adds every count of src (read atomically) to dst, which the calling thread
 * owns; dst may be read by other threads meanwhile. */
void hist_merge(struct hist *dst, const struct hist *src);
/* dst = a - b, bucket by bucket: what a later snapshot a recorded since b.
 * All three are snapshots (plain values, not live histograms). */
void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b);

/* Values recorded, and their sum in nanoseconds. */
uint64_t hist_count(const struct hist *h);
uint64_t hist_sum_ns(const struct hist *h);

/* The value at quantile q (0 <= q <= 1; clamped) in nanoseconds: the middle of
 * the bucket holding the ceil(q * count)-th smallest value. HIST_MAX_NS when
 * that value overflowed, 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Values at or below ns, to the bucket: every value in the bucket of ns counts,
 * so a recorded ns always counts for hist_count_le(ns). A bound above
 * HIST_MAX_NS counts everything, the overflow bucket included. */
uint64_t hist_count_le(const struct hist *h, uint64_t ns);
/* Values above ns, to the bucket: hist_count(h) - hist_count_le(h, ns) read in
 * one walk. */
uint64_t hist_count_above(const struct hist *h, uint64_t ns);

/* Smallest and largest value a bucket holds (i < HIST_OVERFLOW), and the value
 * reported for it. Bucket 0 also holds everything below HIST_MIN_NS. */
uint64_t hist_bucket_lower(unsigned i);
uint64_t hist_bucket_upper(unsigned i);
uint64_t hist_bucket_value(unsigned i);

#endif
