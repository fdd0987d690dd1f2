/*
 * prom.c: the /metrics page in Prometheus text format 0.0.4.
 *
 * Operations: metrics_render_prometheus snapshots every release once, then
 * writes each family as one group (HELP, TYPE, samples), then the worker
 * totals, the process metrics read from /proc/self, and the families of the
 * registered renderers. prom_* helpers write single lines for other parts.
 *
 * Invariants: a histogram's buckets come from one snapshot, so they are
 * cumulative and the +Inf bucket equals _count; label values are escaped
 * (backslash, double quote, newline); the first buffer error stops the page.
 *
 * Cost: O(releases x (HIST_SLOTS x workers + LE bounds x HIST_SLOTS)) on the
 * control thread; one release_snapshot (about 14 KiB) per release is held
 * for the length of the call. Workers are never stopped or locked.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"

/* ---- helpers ---- */

int prom_escape_label(struct fb_buf *out, const char *s)
{
    const char *run = s;
    int rc = 0;

    for (; *s && !rc; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;

        if (!esc)
            continue;
        rc = fb_buf_append(out, run, (size_t)(s - run));
        if (!rc)
            rc = fb_buf_puts(out, esc);
        run = s + 1;
    }
    if (!rc)
        rc = fb_buf_append(out, run, (size_t)(s - run));
    return rc;
}

/* HELP text escapes backslash and newline only. */
static int escape_help(struct fb_buf *out, const char *s)
{
    int rc = 0;

    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = fb_buf_puts(out, "\\\\");
        else if (*s == '\n')
            rc = fb_buf_puts(out, "\\n");
        else
            rc = fb_buf_append(out, s, 1);
    }
    return rc;
}

int prom_family(struct fb_buf *out, const char *name, const char *type, const char *help)
{
    int rc = fb_buf_printf(out, "# HELP %s ", name);

    if (!rc)
        rc = escape_help(out, help);
    if (!rc)
        rc = fb_buf_printf(out, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* name{labels} followed by a space. */
static int sample_head(struct fb_buf *out, const char *name, const struct prom_label *labels,
                       size_t n)
{
    int rc = fb_buf_puts(out, name);
    size_t i;

    for (i = 0; i < n && !rc; i++) {
        rc = fb_buf_printf(out, "%s%s=\"", i == 0 ? "{" : ",", labels[i].name);
        if (!rc)
            rc = prom_escape_label(out, labels[i].value ? labels[i].value : "");
        if (!rc)
            rc = fb_buf_puts(out, "\"");
    }
    if (!rc)
        rc = fb_buf_puts(out, n > 0 ? "} " : " ");
    return rc;
}

int prom_sample_u64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    uint64_t value)
{
    int rc = sample_head(out, name, labels, n);

    return rc ? rc : fb_buf_printf(out, "%" PRIu64 "\n", value);
}

int prom_sample_i64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    int64_t value)
{
    int rc = sample_head(out, name, labels, n);

    return rc ? rc : fb_buf_printf(out, "%" PRId64 "\n", value);
}

int prom_sample_f64(struct fb_buf *out, const char *name, const struct prom_label *labels, size_t n,
                    double value)
{
    int rc = sample_head(out, name, labels, n);

    if (rc)
        goto out;
    if (isnan(value))
        rc = fb_buf_puts(out, "NaN\n");
    else if (isinf(value))
        rc = fb_buf_puts(out, value > 0 ? "+Inf\n" : "-Inf\n");
    else
        rc = fb_buf_printf(out, "%.15g\n", value);
out:
    return rc;
}

/* A duration in seconds, exactly: integer seconds and nine decimals. */
static int sample_seconds(struct fb_buf *out, const char *name, const struct prom_label *labels,
                          size_t n, uint64_t ns)
{
    int rc = sample_head(out, name, labels, n);

    return rc ? rc
              : fb_buf_printf(out, "%" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000u,
                              ns % 1000000000u);
}

/* ---- per-release families ---- */

struct rel_snap {
    const struct release_metrics *rm;
    struct release_snapshot snap;
};

static const char *const code_class_names[METRICS_CODE_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx",
};

static int render_requests(struct fb_buf *out, const struct rel_snap *rs, size_t n)
{
    int rc = prom_family(out, "firebreak_requests_total", "counter",
                         "Responses sent to clients, by service, release and status class.");
    size_t i;
    unsigned c;

    for (i = 0; i < n && !rc; i++) {
        for (c = 0; c < METRICS_CODE_CLASSES && !rc; c++) {
            struct prom_label l[3] = {{"service", rs[i].rm->service},
                                      {"release", rs[i].rm->release},
                                      {"code_class", code_class_names[c]}};

            rc = prom_sample_u64(out, "firebreak_requests_total", l, 3, rs[i].snap.requests[c]);
        }
    }
    return rc;
}

static int render_one_histogram(struct fb_buf *out, const struct rel_snap *r)
{
    const char *bucket = "firebreak_request_duration_seconds_bucket";
    struct prom_label l[3] = {{"service", r->rm->service}, {"release", r->rm->release}, {0, 0}};
    const struct hist *h = &r->snap.latency;
    unsigned j;
    int rc = 0;

    l[2].name = "le";
    for (j = 0; j < METRICS_LE_COUNT && !rc; j++) {
        l[2].value = metrics_le_text[j];
        rc = prom_sample_u64(out, bucket, l, 3, hist_count_le(h, metrics_le_ns[j]));
    }
    l[2].value = "+Inf";
    if (!rc)
        rc = prom_sample_u64(out, bucket, l, 3, h->count);
    if (!rc)
        rc = sample_seconds(out, "firebreak_request_duration_seconds_sum", l, 2, h->sum_ns);
    if (!rc)
        rc = prom_sample_u64(out, "firebreak_request_duration_seconds_count", l, 2, h->count);
    return rc;
}

static int render_durations(struct fb_buf *out, const struct rel_snap *rs, size_t n)
{
    int rc = prom_family(out, "firebreak_request_duration_seconds", "histogram",
                         "Time from the first byte of a request to the last byte of its "
                         "response, by service and release.");
    size_t i;

    for (i = 0; i < n && !rc; i++)
        rc = render_one_histogram(out, &rs[i]);
    return rc;
}

static int render_upstream_errors(struct fb_buf *out, const struct rel_snap *rs, size_t n)
{
    const char *name = "firebreak_upstream_errors_total";
    int rc = prom_family(out, name, "counter",
                         "Upstream failures by service, release and kind (connect, timeout, "
                         "reset, bad_response, overflow).");
    size_t i;
    unsigned k;

    for (i = 0; i < n && !rc; i++) {
        for (k = 0; k < METRICS_UP_KIND_COUNT && !rc; k++) {
            struct prom_label l[3] = {{"service", rs[i].rm->service},
                                      {"release", rs[i].rm->release},
                                      {"kind", metrics_upstream_kind_name(k)}};

            rc = prom_sample_u64(out, name, l, 3, rs[i].snap.upstream_errors[k]);
        }
    }
    return rc;
}

/* One counter per release, read from the snapshot at byte offset off. */
static int render_release_counter(struct fb_buf *out, const struct rel_snap *rs, size_t n,
                                  const char *name, const char *help, size_t off)
{
    int rc = prom_family(out, name, "counter", help);
    size_t i;

    for (i = 0; i < n && !rc; i++) {
        struct prom_label l[2] = {{"service", rs[i].rm->service}, {"release", rs[i].rm->release}};
        uint64_t v;

        memcpy(&v, (const char *)&rs[i].snap + off, sizeof(v));
        rc = prom_sample_u64(out, name, l, 2, v);
    }
    return rc;
}

static int render_releases(struct fb_buf *out, const struct rel_snap *rs, size_t n)
{
    int rc = render_requests(out, rs, n);

    if (!rc)
        rc = render_durations(out, rs, n);
    if (!rc)
        rc = render_upstream_errors(out, rs, n);
    if (!rc)
        rc = render_release_counter(out, rs, n, "firebreak_received_bytes_total",
                                    "Request bytes received from clients, by release.",
                                    offsetof(struct release_snapshot, bytes_in));
    if (!rc)
        rc = render_release_counter(out, rs, n, "firebreak_sent_bytes_total",
                                    "Response bytes sent to clients, by release.",
                                    offsetof(struct release_snapshot, bytes_out));
    if (!rc)
        rc = render_release_counter(out, rs, n, "firebreak_write_requests_total",
                                    "POST, PUT, PATCH and DELETE requests, by release.",
                                    offsetof(struct release_snapshot, writes));
    if (!rc)
        rc = render_release_counter(out, rs, n, "firebreak_panic_requests_total",
                                    "Requests sent to an ejected endpoint because every endpoint "
                                    "of the release was ejected (panic mode).",
                                    offsetof(struct release_snapshot, panic));
    return rc;
}

/* ---- process-wide families ---- */

static int render_workers(struct fb_buf *out, const struct metrics *m)
{
    struct metrics_totals t;
    struct prom_label l = {"status", NULL};
    int rc;
    unsigned e;

    metrics_snapshot_workers(m, &t);
    rc = prom_family(out, "firebreak_open_connections", "gauge", "Open client connections.");
    if (!rc)
        rc = prom_sample_i64(out, "firebreak_open_connections", NULL, 0, t.client_open);
    if (!rc)
        rc = prom_family(out, "firebreak_upstream_open_connections", "gauge",
                         "Open connections to release endpoints.");
    if (!rc)
        rc = prom_sample_i64(out, "firebreak_upstream_open_connections", NULL, 0, t.upstream_open);
    if (!rc)
        rc = prom_family(out, "firebreak_connections_total", "counter",
                         "Client connections accepted.");
    if (!rc)
        rc = prom_sample_u64(out, "firebreak_connections_total", NULL, 0, t.connections_total);
    if (!rc)
        rc = prom_family(out, "firebreak_http_errors_total", "counter",
                         "Errors firebreak answered itself: malformed requests and limits by "
                         "status; 503 counts overload.");
    for (e = 0; e < METRICS_HE_COUNT && !rc; e++) {
        l.value = metrics_http_error_name(e);
        rc = prom_sample_u64(out, "firebreak_http_errors_total", &l, 1, t.http_errors[e]);
    }
    l.value = "503";
    if (!rc)
        rc = prom_sample_u64(out, "firebreak_http_errors_total", &l, 1, t.overload_total);
    return rc;
}

struct proc_stats {
    double cpu_seconds;
    uint64_t vsize;
    uint64_t rss_bytes;
    double start_time;
    uint64_t open_fds;
    uint64_t max_fds;
    bool have_stat;
    bool have_start;
    bool have_fds;
    bool have_max_fds;
};

/* Reads a whole small /proc file into buf; returns bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Field k (1-based, as in proc(5)) of /proc/self/stat, from the text after
 * the command name's closing parenthesis (which is field 2). */
static bool stat_fields(const char *after, unsigned long long *f, size_t nf)
{
    const char *p = after;
    char *end;
    unsigned k;

    /* field 3 (state) is a letter; numbers start at field 4 */
    while (*p == ' ')
        p++;
    if (!*p)
        return false;
    p++;
    for (k = 4; k < nf; k++) {
        f[k] = strtoull(p, &end, 10);
        if (end == p)
            return false;
        p = end;
    }
    return true;
}

static unsigned long long boot_time(void)
{
    char buf[8192];
    const char *p;

    if (read_small("/proc/stat", buf, sizeof(buf)) < 0)
        return 0;
    p = strstr(buf, "\nbtime ");
    return p ? strtoull(p + 7, NULL, 10) : 0;
}

static void read_proc_stat(struct proc_stats *ps)
{
    char buf[2048];
    unsigned long long f[25] = {0}, btime;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    const char *close_paren;

    if (read_small("/proc/self/stat", buf, sizeof(buf)) <= 0 || tck <= 0 || page <= 0)
        return;
    close_paren = strrchr(buf, ')');
    if (!close_paren || !stat_fields(close_paren + 1, f, 25))
        return;
    ps->cpu_seconds = (double)(f[14] + f[15]) / (double)tck;
    ps->vsize = f[23];
    ps->rss_bytes = f[24] * (uint64_t)page;
    ps->have_stat = true;
    btime = boot_time();
    if (btime > 0) {
        ps->start_time = (double)btime + (double)f[22] / (double)tck;
        ps->have_start = true;
    }
}

static void read_proc_fds(struct proc_stats *ps)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    struct rlimit rl;
    uint64_t n = 0;

    if (d) {
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        closedir(d);
        ps->open_fds = n > 0 ? n - 1 : 0; /* the directory's own descriptor */
        ps->have_fds = true;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        ps->max_fds = (uint64_t)rl.rlim_cur;
        ps->have_max_fds = true;
    }
}

static int render_gauge_f64(struct fb_buf *out, const char *name, const char *type,
                            const char *help, double v)
{
    int rc = prom_family(out, name, type, help);

    return rc ? rc : prom_sample_f64(out, name, NULL, 0, v);
}

static int render_gauge_u64(struct fb_buf *out, const char *name, const char *help, uint64_t v)
{
    int rc = prom_family(out, name, "gauge", help);

    return rc ? rc : prom_sample_u64(out, name, NULL, 0, v);
}

static int render_process(struct fb_buf *out)
{
    struct proc_stats ps = {0};
    int rc = 0;

    read_proc_stat(&ps);
    read_proc_fds(&ps);
    if (ps.have_stat) {
        rc = render_gauge_f64(out, "process_cpu_seconds_total", "counter",
                              "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
        if (!rc)
            rc = render_gauge_u64(out, "process_resident_memory_bytes",
                                  "Resident memory size in bytes.", ps.rss_bytes);
        if (!rc)
            rc = render_gauge_u64(out, "process_virtual_memory_bytes",
                                  "Virtual memory size in bytes.", ps.vsize);
    }
    if (!rc && ps.have_start)
        rc = render_gauge_f64(out, "process_start_time_seconds", "gauge",
                              "Start time of the process since the Unix epoch in seconds.",
                              ps.start_time);
    if (!rc && ps.have_fds)
        rc = render_gauge_u64(out, "process_open_fds", "Number of open file descriptors.",
                              ps.open_fds);
    if (!rc && ps.have_max_fds)
        rc = render_gauge_u64(out, "process_max_fds", "Maximum number of open file descriptors.",
                              ps.max_fds);
    return rc;
}

static int render_extra(struct fb_buf *out, struct metrics *m)
{
    struct metrics_renderer r[METRICS_MAX_RENDERERS];
    unsigned n, i;
    int rc = 0;

    pthread_mutex_lock(&m->lock);
    n = m->nrenderers;
    memcpy(r, m->renderers, sizeof(r[0]) * n);
    pthread_mutex_unlock(&m->lock);
    for (i = 0; i < n && !rc; i++)
        rc = r[i].fn(out, r[i].arg);
    return rc;
}

/* Snapshots every release present now into a malloc'd array. */
static int snapshot_all(struct metrics *m, struct rel_snap **out, size_t *n)
{
    struct release_metrics *rm = NULL;
    size_t count = 0, i = 0;
    struct rel_snap *rs;

    while ((rm = metrics_release_next(m, rm)) != NULL)
        count++;
    rs = calloc(count ? count : 1, sizeof(*rs));
    if (!rs)
        return -FB_ENOMEM;
    rm = NULL;
    while (i < count && (rm = metrics_release_next(m, rm)) != NULL) {
        rs[i].rm = rm;
        metrics_snapshot_release(rm, &rs[i].snap);
        i++;
    }
    *out = rs;
    *n = count;
    return 0;
}

int metrics_render_prometheus(struct metrics *m, struct fb_buf *out)
{
    struct rel_snap *rs = NULL;
    size_t n = 0;
    int rc = snapshot_all(m, &rs, &n);

    if (rc)
        goto out;
    rc = render_releases(out, rs, n);
    if (!rc)
        rc = render_workers(out, m);
    if (!rc)
        rc = render_process(out);
    if (!rc)
        rc = render_extra(out, m);
out:
    free(rs);
    return rc;
}
