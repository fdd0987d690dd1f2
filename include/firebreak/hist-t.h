/*
 * hist-t.h: a log-linear histogram of durations in nanoseconds.
 *
 * Every power of two from 2^9 ns (512 ns) up to 60 s is cut into 64 equal
 * sub-buckets, so a bucket is at most 1/64 of its lower bound wide and its
 * middle is within 1/128 (0.79%) of any value it holds. Values below 512 ns
 * are counted in the first bucket; values above 60 s in the overflow bucket.
 *
 * One thread writes a histogram; other threads may read it at any time. The
 * writer stores each new count with a relaxed atomic store of (old + 1), and
 * readers load with relaxed atomic loads, so no 64-bit value is ever seen torn
 * and no read-modify-write instruction or lock is needed.
 */
#ifndef FIREBREAK_HIST_T_H
#define FIREBREAK_HIST_T_H

#include <stdint.h>

#define HIST_SUB_BITS 6 /* 64 sub-buckets per power of two */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MIN_EXP 9 /* the first power of two: 512 ns */
#define HIST_MIN_NS (1ull << HIST_MIN_EXP)
#define HIST_MAX_NS 60000000000ull /* 60 s; larger values overflow */
/* HIST_MAX_NS lies in the power of two 2^35 (34.4 s .. 68.7 s), in its
 * sub-bucket HIST_TOP_SUB; the buckets up to and including that one are the
 * HIST_NBUCKETS ordinary buckets. */
#define HIST_TOP_EXP 35u
#define HIST_TOP_SUB ((unsigned)(HIST_MAX_NS >> (HIST_TOP_EXP - HIST_SUB_BITS)))
#define HIST_NBUCKETS                                                                              \
    (((HIST_TOP_EXP - HIST_MIN_EXP) << HIST_SUB_BITS) + HIST_TOP_SUB - HIST_SUB + 1u)
#define HIST_OVERFLOW HIST_NBUCKETS     /* index of the overflow bucket */
#define HIST_SLOTS (HIST_NBUCKETS + 1u) /* buckets plus the overflow bucket */
/* Largest relative distance between a value in [1 us, 60 s] and the value
 * hist_quantile reports for its bucket: half a bucket over its lower bound. */
#define HIST_MAX_REL_ERROR (1.0 / (2.0 * HIST_SUB))

struct hist {
    uint64_t count;  /* values recorded */
    uint64_t sum_ns; /* their sum, wrapping after 584 years of latency */
    uint64_t buckets[HIST_SLOTS];
};

#endif
