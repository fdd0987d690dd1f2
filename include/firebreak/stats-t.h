/* stats-t.h: types of the judge's statistics (stats.h). */
#ifndef FIREBREAK_STATS_T_H
#define FIREBREAK_STATS_T_H

/* A two-sided interval [lo, hi] for a rate or a ratio. */
struct stats_interval {
    double lo;
    double hi;
};

#endif
