/* clock.h: time sources. Monotonic for durations, wall for records. */
#ifndef FIREBREAK_CLOCK_H
#define FIREBREAK_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds, for durations and deadlines. */
uint64_t fb_mono_ns(void);
/* Wall-clock milliseconds since the Unix epoch, for events and logs. */
int64_t fb_wall_ms(void);
/* Writes an RFC 3339 UTC time with milliseconds (24 bytes + NUL; 64 leaves room for any year) into out. */
void fb_format_time(int64_t wall_ms, char out[64]);

#endif
