/*
 * prom.h: Prometheus text exposition (format 0.0.4) of the metrics registry,
 * and the helpers other parts use to append their own families.
 *
 * metrics_render_prometheus keeps the metrics_ name the admin listener calls;
 * everything else here has the prom_ prefix.
 */
#ifndef FIREBREAK_PROM_H
#define FIREBREAK_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "buf-t.h"
#include "metrics-t.h"

/* The Content-Type of a /metrics answer. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One label of a sample; value is escaped on output. */
struct prom_label {
    const char *name;
    const char *value;
};

/*
 * Appends the whole /metrics page to out: every family of the registry, the
 * process metrics (from /proc/self; left out when /proc cannot be read), then
 * whatever each renderer added with metrics_add_renderer appends. Reads the
 * registry without stopping the workers. Returns 0, or -FB_ETOOBIG /
 * -FB_ENOMEM from the buffer (out then holds a cut page: do not serve it) or
 * the first error a renderer returned.
 */
int metrics_render_prometheus(struct metrics *m, struct fb_buf *out);

/* Appends the "# HELP" and "# TYPE" lines of a family; type is "counter",
 * "gauge" or "histogram"; help is escaped (backslash, newline). */
int prom_family(struct fb_buf *out, const char *name, const char *type, const char *help);

/* Appends s escaped as a label value: backslash, double quote and newline
 * become \\, \" and \n. */
int prom_escape_label(struct fb_buf *out, const char *s);

/* Appends one sample line: name{l1="v1",...} value. n may be 0. */
int prom_sample_u64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    uint64_t value);
int prom_sample_i64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    int64_t value);
int prom_sample_f64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    double value);

#endif
