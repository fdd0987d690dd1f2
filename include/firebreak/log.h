/* log.h: one-line log records to stderr, safe from any thread. */
#ifndef FIREBREAK_LOG_H
#define FIREBREAK_LOG_H

enum fb_log_level { FB_LOG_DEBUG, FB_LOG_INFO, FB_LOG_WARN, FB_LOG_ERROR };

void fb_log_set_level(enum fb_log_level level);
void fb_log(enum fb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fb_debug(...) fb_log(FB_LOG_DEBUG, __VA_ARGS__)
#define fb_info(...) fb_log(FB_LOG_INFO, __VA_ARGS__)
#define fb_warn(...) fb_log(FB_LOG_WARN, __VA_ARGS__)
#define fb_error(...) fb_log(FB_LOG_ERROR, __VA_ARGS__)

#endif
