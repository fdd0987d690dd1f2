/* test_metrics.c: the registry sums what workers record, reads safely while
 * they record, and /metrics parses back to the same figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"
#include "firebreak/route_class.h"

/* ---- a small Prometheus text parser, to read /metrics back ---- */

#define MAX_SAMPLES 4096
#define MAX_LABELS 4

struct sample {
    char name[96];
    char lname[MAX_LABELS][32];
    char lvalue[MAX_LABELS][160];
    int nlabels;
    double value;
    int line;
};

struct family {
    char name[96];
    char type[16];
    int help_line;
    int type_line;
};

struct page {
    struct sample *s;
    int n;
    struct family f[128];
    int nf;
};

/* Reads a quoted, escaped label value at *p; returns false on bad syntax. */
static bool parse_label_value(const char **p, char *out, size_t cap)
{
    const char *q = *p;
    size_t n = 0;

    if (*q++ != '"')
        return false;
    while (*q && *q != '"') {
        char c = *q++;

        if (c == '\\') {
            c = *q++;
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                return false;
        } else if (c == '\n') {
            return false;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    if (*q != '"')
        return false;
    out[n] = '\0';
    *p = q + 1;
    return true;
}

static bool parse_sample(const char *line, struct sample *s)
{
    const char *p = line;
    size_t n = strcspn(p, "{ ");
    char *end;

    if (n == 0 || n >= sizeof(s->name))
        return false;
    memcpy(s->name, p, n);
    s->name[n] = '\0';
    p += n;
    s->nlabels = 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (s->nlabels == MAX_LABELS)
                return false;
            n = strcspn(p, "=");
            if (n == 0 || n >= sizeof(s->lname[0]) || p[n] != '=')
                return false;
            memcpy(s->lname[s->nlabels], p, n);
            s->lname[s->nlabels][n] = '\0';
            p += n + 1;
            if (!parse_label_value(&p, s->lvalue[s->nlabels], sizeof(s->lvalue[0])))
                return false;
            s->nlabels++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p++ != ' ')
        return false;
    if (strcmp(p, "+Inf") == 0) {
        s->value = 1e308;
        return true;
    }
    s->value = strtod(p, &end);
    return end != p && *end == '\0';
}

static struct family *find_family(struct page *pg, const char *name)
{
    int i;

    for (i = 0; i < pg->nf; i++)
        if (strcmp(pg->f[i].name, name) == 0)
            return &pg->f[i];
    return NULL;
}

/* The family a sample belongs to: histograms own _bucket, _sum, _count. */
static struct family *family_of(struct page *pg, const char *sample)
{
    static const char *suffix[] = {"_bucket", "_sum", "_count"};
    struct family *f = find_family(pg, sample);
    char base[96];
    size_t n = strlen(sample), k, l;

    for (k = 0; !f && k < 3; k++) {
        l = strlen(suffix[k]);
        if (n > l && strcmp(sample + n - l, suffix[k]) == 0 && n - l < sizeof(base)) {
            memcpy(base, sample, n - l);
            base[n - l] = '\0';
            f = find_family(pg, base);
            if (f && strcmp(f->type, "histogram") != 0)
                f = NULL;
        }
    }
    return f;
}

static void parse_comment(struct page *pg, const char *line, int lineno)
{
    char name[96], type[16];
    struct family *f;

    if (sscanf(line, "# HELP %95s", name) == 1) {
        assert_null(find_family(pg, name)); /* HELP comes first, once */
        assert_true(pg->nf < 128);
        f = &pg->f[pg->nf++];
        memset(f, 0, sizeof(*f));
        memcpy(f->name, name, sizeof(name));
        f->help_line = lineno;
    } else if (sscanf(line, "# TYPE %95s %15s", name, type) == 2) {
        f = find_family(pg, name);
        assert_non_null(f);
        assert_int_equal(f->type_line, 0); /* one TYPE per family */
        memcpy(f->type, type, sizeof(type));
        f->type_line = lineno;
    } else {
        fail_msg("unexpected comment: %s", line);
    }
}

/* Parses the page; every sample must follow its family's TYPE line, and a
 * family's samples must be one group. */
static void parse_page(char *text, struct page *pg)
{
    char *line = text, *nl;
    int lineno = 0;
    struct family *last = NULL, *f;

    pg->n = 0;
    pg->nf = 0;
    pg->s = calloc(MAX_SAMPLES, sizeof(*pg->s));
    assert_non_null(pg->s);
    for (; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        *nl = '\0';
        lineno++;
        if (line[0] == '#') {
            parse_comment(pg, line, lineno);
            continue;
        }
        assert_true(pg->n < MAX_SAMPLES);
        if (!parse_sample(line, &pg->s[pg->n]))
            fail_msg("line %d does not parse: %s", lineno, line);
        f = family_of(pg, pg->s[pg->n].name);
        if (!f)
            fail_msg("sample without a family: %s", line);
        assert_true(f->type_line > 0 && f->type_line < lineno);
        assert_true(last == NULL || last == f || f->type_line > last->type_line);
        last = f;
        pg->s[pg->n].line = lineno;
        pg->n++;
    }
}

static const char *label(const struct sample *s, const char *name)
{
    int i;

    for (i = 0; i < s->nlabels; i++)
        if (strcmp(s->lname[i], name) == 0)
            return s->lvalue[i];
    return NULL;
}

/* Value of the one sample with this name and these label values (NULL-ended
 * name/value pairs); fails the test when there is not exactly one. */
static double value_of(const struct page *pg, const char *name, ...)
{
    const struct sample *found = NULL;
    int i, hits = 0;

    for (i = 0; i < pg->n; i++) {
        const struct sample *s = &pg->s[i];
        const char *ln, *lv, *have;
        bool match = strcmp(s->name, name) == 0;
        va_list ap;

        va_start(ap, name);
        while (match && (ln = va_arg(ap, const char *)) != NULL) {
            lv = va_arg(ap, const char *);
            have = label(s, ln);
            match = have && strcmp(have, lv) == 0;
        }
        va_end(ap);
        if (match) {
            found = s;
            hits++;
        }
    }
    if (hits != 1)
        fail_msg("%d samples of %s match", hits, name);
    return found->value;
}

static char *render(struct metrics *m)
{
    struct fb_buf b;

    fb_buf_init(&b, 1u << 24);
    assert_int_equal(metrics_render_prometheus(m, &b), 0);
    return fb_buf_take(&b);
}

/* ---- registry ---- */

static void releases_are_found_or_created_once(void **state)
{
    struct metrics *m = metrics_new(2);
    struct release_metrics *a, *b, *c, *it;
    char longname[METRICS_NAME_MAX + 1];

    assert_non_null(m);
    a = metrics_release(m, "shop", "v1");
    b = metrics_release(m, "shop", "v2");
    c = metrics_release(m, "cart", "v1");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_ptr_equal(metrics_release(m, "shop", "v1"), a);
    assert_true(a != b && a != c && b != c);
    assert_ptr_equal(metrics_release_find(m, "cart", "v1"), c);
    assert_null(metrics_release_find(m, "cart", "v9"));
    assert_string_equal(b->service, "shop");
    assert_string_equal(b->release, "v2");
    /* creation order */
    it = metrics_release_next(m, NULL);
    assert_ptr_equal(it, a);
    it = metrics_release_next(m, it);
    assert_ptr_equal(it, b);
    it = metrics_release_next(m, it);
    assert_ptr_equal(it, c);
    assert_null(metrics_release_next(m, it));
    /* bad names create nothing */
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_null(metrics_release(m, "", "v1"));
    assert_null(metrics_release(m, "shop", NULL));
    assert_null(metrics_release(m, longname, "v1"));
    longname[METRICS_NAME_MAX - 1] = '\0';
    assert_non_null(metrics_release(m, longname, "v1"));
    metrics_free(m);
    assert_null(metrics_new(0));
    assert_null(metrics_new(METRICS_MAX_WORKERS + 1));
}

static void shards_sum_into_the_release(void **state)
{
    struct metrics *m = metrics_new(3);
    struct release_metrics *rm = metrics_release(m, "shop", "v1");
    struct release_snapshot *snap = malloc(sizeof(*snap));
    unsigned w;

    assert_non_null(snap);
    for (w = 0; w < 3; w++) {
        metrics_count_response(rm, w, 200, 2000000); /* 2 ms */
        metrics_count_response(rm, w, 204, 2000000);
        metrics_count_response(rm, w, 503, 400000000); /* 400 ms */
        metrics_count_bytes(rm, w, 100, 1000);
        metrics_count_write(rm, w);
        metrics_count_upstream_error(rm, w, METRICS_UP_TIMEOUT);
    }
    metrics_count_response(rm, 1, 404, 1000000);
    metrics_count_response(rm, 1, 302, 1000000);
    metrics_count_response(rm, 2, 101, 1000000);
    metrics_count_response(rm, 2, 99, 1000000);  /* below 100: counted as 1xx */
    metrics_count_response(rm, 2, 700, 1000000); /* above 599: counted as 5xx */
    metrics_count_upstream_error(rm, 0, METRICS_UP_RESET);
    metrics_count_upstream_error(rm, 0, METRICS_UP_KIND_COUNT); /* ignored */
    metrics_snapshot_release(rm, snap);
    assert_int_equal(snap->requests[0], 2);
    assert_int_equal(snap->requests[1], 6);
    assert_int_equal(snap->requests[2], 1);
    assert_int_equal(snap->requests[3], 1);
    assert_int_equal(snap->requests[4], 4);
    assert_int_equal(snap->upstream_errors[METRICS_UP_TIMEOUT], 3);
    assert_int_equal(snap->upstream_errors[METRICS_UP_RESET], 1);
    assert_int_equal(snap->upstream_errors[METRICS_UP_CONNECT], 0);
    assert_int_equal(snap->bytes_in, 300);
    assert_int_equal(snap->bytes_out, 3000);
    assert_int_equal(snap->writes, 3);
    assert_int_equal(hist_count(&snap->latency), 14);
    assert_int_equal(hist_sum_ns(&snap->latency), 3 * 404000000ull + 5 * 1000000ull);
    /* p50 is 2 ms, p99 400 ms, each within the histogram's error */
    assert_true(hist_quantile(&snap->latency, 0.5) >= 1980000);
    assert_true(hist_quantile(&snap->latency, 0.5) <= 2020000);
    assert_true(hist_quantile(&snap->latency, 0.99) >= 396000000);
    assert_true(hist_quantile(&snap->latency, 0.99) <= 404000000);
    free(snap);
    metrics_free(m);
}

static void worker_gauges_sum_across_workers(void **state)
{
    struct metrics *m = metrics_new(2);
    struct metrics_worker *w0 = metrics_worker(m, 0), *w1 = metrics_worker(m, 1);
    struct metrics_totals t;

    assert_true((uintptr_t)w0 % METRICS_CACHE_LINE == 0);
    assert_true((uintptr_t)w1 % METRICS_CACHE_LINE == 0);
    assert_true((char *)w1 - (char *)w0 >= METRICS_CACHE_LINE);
    metrics_client_opened(w0);
    metrics_client_opened(w0);
    metrics_client_opened(w0);
    metrics_client_closed(w0);
    metrics_client_opened(w1);
    metrics_client_opened(w1);
    /* one worker's gauge going below zero wraps its uint64_t, yet the
     * signed sum over workers is still right */
    metrics_upstream_closed(w1);
    metrics_upstream_opened(w0);
    metrics_upstream_opened(w0);
    metrics_count_http_error(w0, 400);
    metrics_count_http_error(w1, 400);
    metrics_count_http_error(w1, 431);
    metrics_count_http_error(w1, 418);
    metrics_count_overload(w0);
    metrics_snapshot_workers(m, &t);
    assert_int_equal(t.client_open, 4);
    assert_int_equal(t.connections_total, 5);
    assert_int_equal(t.upstream_open, 1);
    assert_int_equal(t.http_errors[METRICS_HE_400], 2);
    assert_int_equal(t.http_errors[METRICS_HE_431], 1);
    assert_int_equal(t.http_errors[METRICS_HE_OTHER], 1);
    assert_int_equal(t.http_errors[METRICS_HE_505], 0);
    assert_int_equal(t.overload_total, 1);
    metrics_free(m);
}

/* Counts one request of a class the way the data plane would. */
static void count_route(struct release_metrics *rm, unsigned w, const char *method,
                        const char *target, int status, uint64_t ns)
{
    char cls[ROUTE_CLASS_MAX];
    int n = route_class(method, strlen(method), target, strlen(target), cls, sizeof(cls));

    assert_true(n > 0);
    metrics_count_route(rm, w, route_class_hash(cls, (size_t)n), cls, status, ns,
                        strcmp(method, "GET") != 0, status == 502);
}

static const struct route_stats *route_named(const struct route_stats *r, size_t n,
                                             const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0)
            return &r[i];
    fail_msg("no route class %s", name);
    return NULL;
}

static void route_classes_merge_across_workers(void **state)
{
    struct metrics *m = metrics_new(2);
    struct release_metrics *rm = metrics_release(m, "shop", "v2");
    const struct route_stats *g, *p;
    struct route_stats *r;
    size_t n;
    int i;

    for (i = 0; i < 30; i++) {
        char t[64];

        snprintf(t, sizeof(t), "/api/orders/%d?page=%d", 1000 + i, i);
        count_route(rm, (unsigned)i % 2, "GET", t, i < 27 ? 200 : 502, 3000000);
    }
    count_route(rm, 0, "POST", "/api/orders", 201, 40000000);
    count_route(rm, 1, "POST", "/api/orders", 500, 2000000000);
    assert_int_equal(metrics_snapshot_routes(rm, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].name, "GET /api/orders/:id"); /* busiest first */
    g = route_named(r, n, "GET /api/orders/:id");
    p = route_named(r, n, "POST /api/orders");
    assert_int_equal(g->requests[1], 27);
    assert_int_equal(g->requests[4], 3);
    assert_int_equal(g->upstream_errors, 3);
    assert_int_equal(g->writes, 0);
    assert_int_equal(g->sum_ns, 30 * 3000000ull);
    assert_int_equal(g->bins[3], 30); /* 3 ms: above 2.5 ms, at most 5 ms */
    assert_int_equal(p->requests[1], 1);
    assert_int_equal(p->requests[4], 1);
    assert_int_equal(p->writes, 2);
    assert_int_equal(p->bins[6], 1);  /* 40 ms: at most 50 ms */
    assert_int_equal(p->bins[11], 1); /* 2 s: above 1 s, at most 2.5 s */
    free(r);
    metrics_free(m);
}

static void route_classes_beyond_the_table_count_as_other(void **state)
{
    struct metrics *m = metrics_new(1);
    struct release_metrics *rm = metrics_release(m, "shop", "v1");
    struct route_stats *r;
    uint64_t total = 0;
    size_t n, i;
    unsigned k;

    for (k = 0; k < 3 * METRICS_ROUTE_SLOTS; k++) {
        char t[64];

        snprintf(t, sizeof(t), "/page-%u", k);
        count_route(rm, 0, "GET", t, 200, 1000000);
        count_route(rm, 0, "GET", t, 200, 1000000);
    }
    assert_int_equal(metrics_snapshot_routes(rm, &r, &n), 0);
    assert_true(n <= METRICS_ROUTE_SLOTS + 1);
    assert_true(n > METRICS_ROUTE_SLOTS / 2);
    assert_string_equal(r[n - 1].name, METRICS_ROUTE_OTHER_NAME);
    for (i = 0; i < n; i++) {
        total += r[i].requests[1];
        if (i + 1 < n) /* every class that has a slot counted both requests */
            assert_int_equal(r[i].requests[1], 2);
    }
    assert_int_equal(total, 2 * 3 * METRICS_ROUTE_SLOTS);
    free(r);
    metrics_free(m);
}

/* ---- concurrency ---- */

#define PER_WRITER 400000u

struct race {
    struct metrics *m;
    struct release_metrics *rm;
    unsigned worker;
    volatile int *running;
};

static void *race_writer(void *arg)
{
    struct race *r = arg;
    struct metrics_worker *mw = metrics_worker(r->m, r->worker);
    unsigned i;

    for (i = 0; i < PER_WRITER; i++) {
        metrics_client_opened(mw);
        metrics_count_response(r->rm, r->worker, i % 10 == 0 ? 500 : 200,
                               1000000 + (uint64_t)(i % 1000) * 1000);
        metrics_count_bytes(r->rm, r->worker, 10, 20);
    }
    __atomic_sub_fetch(r->running, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void snapshots_race_two_writers(void **state)
{
    volatile int running = 2;
    struct metrics *m = metrics_new(2);
    struct release_metrics *rm = metrics_release(m, "shop", "v1");
    struct release_snapshot *s = malloc(sizeof(*s));
    struct race r[2] = {{m, rm, 0, &running}, {m, rm, 1, &running}};
    uint64_t last_req = 0, last_sum = 0, last_bytes = 0, reads = 0, req;
    struct metrics_totals t;
    pthread_t th[2];
    int i;

    assert_non_null(s);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_writer, &r[i]), 0);
    while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) > 0) {
        metrics_snapshot_release(rm, s);
        req = s->requests[1] + s->requests[4];
        assert_true(req >= last_req && s->latency.sum_ns >= last_sum);
        assert_true(s->bytes_out >= last_bytes && s->bytes_out == s->bytes_out / 20 * 20);
        assert_true(req <= 2 * PER_WRITER);
        last_req = req;
        last_sum = s->latency.sum_ns;
        last_bytes = s->bytes_out;
        reads++;
    }
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    metrics_snapshot_release(rm, s);
    metrics_snapshot_workers(m, &t);
    print_message("# %llu snapshots while two workers wrote\n", (unsigned long long)reads);
    assert_int_equal(s->requests[1], 2 * PER_WRITER / 10 * 9);
    assert_int_equal(s->requests[4], 2 * PER_WRITER / 10);
    assert_int_equal(s->latency.count, 2 * PER_WRITER);
    assert_int_equal(s->bytes_in, 2 * PER_WRITER * 10ull);
    assert_int_equal(t.client_open, 2 * PER_WRITER);
    assert_int_equal(t.connections_total, 2 * PER_WRITER);
    free(s);
    metrics_free(m);
}

/* ---- Prometheus ---- */

static int extra_family(struct fb_buf *out, void *arg)
{
    struct prom_label l = {"service", arg};
    int rc = prom_family(out, "firebreak_rollbacks_total", "counter", "Rollbacks.");

    return rc ? rc : prom_sample_u64(out, "firebreak_rollbacks_total", &l, 1, 3);
}

/* Checks one release's histogram: le ascending, counts cumulative, +Inf equal
 * to _count, and returns _count. */
static double check_histogram(const struct page *pg, const char *svc, const char *rel)
{
    double last_le = -1, last_count = 0, inf = -1, le;
    int i, buckets = 0;

    for (i = 0; i < pg->n; i++) {
        const struct sample *s = &pg->s[i];

        if (strcmp(s->name, "firebreak_request_duration_seconds_bucket") != 0 ||
            strcmp(label(s, "service"), svc) != 0 || strcmp(label(s, "release"), rel) != 0)
            continue;
        le = strcmp(label(s, "le"), "+Inf") == 0 ? 1e308 : strtod(label(s, "le"), NULL);
        assert_true(le > last_le);
        assert_true(s->value >= last_count);
        last_le = le;
        last_count = s->value;
        if (le == 1e308)
            inf = s->value;
        buckets++;
    }
    assert_int_equal(buckets, METRICS_LE_COUNT + 1);
    assert_true(last_le == 1e308);
    assert_true(inf == value_of(pg, "firebreak_request_duration_seconds_count", "service", svc,
                                "release", rel, NULL));
    return inf;
}

static void prometheus_page_parses_back(void **state)
{
    const char *odd = "we\"ird\\na\nme";
    struct metrics *m = metrics_new(2);
    struct release_metrics *v1 = metrics_release(m, "shop", "v1");
    struct release_metrics *v2 = metrics_release(m, "shop", odd);
    struct page pg;
    char *text;
    int i;

    for (i = 0; i < 10; i++)
        metrics_count_response(v1, (unsigned)i % 2, 200, 1000000); /* 1 ms */
    for (i = 0; i < 5; i++)
        metrics_count_response(v1, 0, 500, 100000000); /* 100 ms */
    metrics_count_response(v1, 1, 200, 2000000000);    /* 2 s */
    metrics_count_response(v1, 1, 200, 90000000000);   /* 90 s: only in +Inf */
    metrics_count_response(v2, 0, 404, 300000);        /* 0.3 ms */
    metrics_count_upstream_error(v1, 0, METRICS_UP_CONNECT);
    metrics_count_upstream_error(v1, 1, METRICS_UP_OVERFLOW);
    metrics_count_upstream_error(v1, 1, METRICS_UP_OVERFLOW);
    metrics_count_overload(metrics_worker(m, 1));
    metrics_count_http_error(metrics_worker(m, 0), 505);
    metrics_client_opened(metrics_worker(m, 0));
    assert_int_equal(metrics_add_renderer(m, extra_family, "shop"), 0);
    text = render(m);
    parse_page(text, &pg);

    assert_true(value_of(&pg, "firebreak_requests_total", "service", "shop", "release", "v1",
                         "code_class", "2xx", NULL) == 12);
    assert_true(value_of(&pg, "firebreak_requests_total", "service", "shop", "release", "v1",
                         "code_class", "5xx", NULL) == 5);
    assert_true(value_of(&pg, "firebreak_requests_total", "service", "shop", "release", odd,
                         "code_class", "4xx", NULL) == 1);
    assert_true(check_histogram(&pg, "shop", "v1") == 17);
    assert_true(check_histogram(&pg, "shop", odd) == 1);
    assert_true(value_of(&pg, "firebreak_request_duration_seconds_bucket", "service", "shop",
                         "release", "v1", "le", "0.0005", NULL) == 0);
    assert_true(value_of(&pg, "firebreak_request_duration_seconds_bucket", "service", "shop",
                         "release", "v1", "le", "0.001", NULL) == 10);
    assert_true(value_of(&pg, "firebreak_request_duration_seconds_bucket", "service", "shop",
                         "release", "v1", "le", "0.1", NULL) == 15);
    assert_true(value_of(&pg, "firebreak_request_duration_seconds_bucket", "service", "shop",
                         "release", "v1", "le", "60", NULL) == 16);
    assert_true(value_of(&pg, "firebreak_request_duration_seconds_bucket", "service", "shop",
                         "release", odd, "le", "0.0005", NULL) == 1);
    assert_float_equal(value_of(&pg, "firebreak_request_duration_seconds_sum", "service", "shop",
                                "release", "v1", NULL),
                       0.01 + 0.5 + 2 + 90, 1e-9);
    assert_true(value_of(&pg, "firebreak_upstream_errors_total", "service", "shop", "release", "v1",
                         "kind", "overflow", NULL) == 2);
    assert_true(value_of(&pg, "firebreak_upstream_errors_total", "service", "shop", "release", "v1",
                         "kind", "connect", NULL) == 1);
    assert_true(value_of(&pg, "firebreak_upstream_errors_total", "service", "shop", "release", "v1",
                         "kind", "bad_response", NULL) == 0);
    assert_true(value_of(&pg, "firebreak_http_errors_total", "status", "503", NULL) == 1);
    assert_true(value_of(&pg, "firebreak_http_errors_total", "status", "505", NULL) == 1);
    assert_true(value_of(&pg, "firebreak_open_connections", NULL) == 1);
    assert_true(value_of(&pg, "firebreak_connections_total", NULL) == 1);
    assert_true(value_of(&pg, "firebreak_upstream_open_connections", NULL) == 0);
    assert_true(value_of(&pg, "firebreak_rollbacks_total", "service", "shop", NULL) == 3);
    /* the renderer's family comes last */
    assert_string_equal(pg.s[pg.n - 1].name, "firebreak_rollbacks_total");
    assert_string_equal(find_family(&pg, "firebreak_request_duration_seconds")->type, "histogram");
    free(pg.s);
    free(text);
    metrics_free(m);
}

static void process_metrics_are_plausible(void **state)
{
    struct metrics *m = metrics_new(1);
    struct rlimit rl;
    struct page pg;
    double now = (double)time(NULL), start;
    char *text = render(m);

    parse_page(text, &pg);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(value_of(&pg, "process_open_fds", NULL) >= 3);
    assert_true(value_of(&pg, "process_open_fds", NULL) <= (double)rl.rlim_cur);
    assert_true(value_of(&pg, "process_max_fds", NULL) == (double)rl.rlim_cur);
    assert_true(value_of(&pg, "process_resident_memory_bytes", NULL) > 1 << 20);
    assert_true(value_of(&pg, "process_virtual_memory_bytes", NULL) >=
                value_of(&pg, "process_resident_memory_bytes", NULL));
    assert_true(value_of(&pg, "process_cpu_seconds_total", NULL) >= 0);
    start = value_of(&pg, "process_start_time_seconds", NULL);
    assert_true(start <= now + 1 && start > now - 3600);
    assert_string_equal(find_family(&pg, "process_cpu_seconds_total")->type, "counter");
    free(pg.s);
    free(text);
    metrics_free(m);
}

static void escaping_and_small_buffers(void **state)
{
    struct metrics *m = metrics_new(1);
    struct fb_buf b;

    fb_buf_init(&b, 1024);
    assert_int_equal(prom_escape_label(&b, "a\\b\"c\nd"), 0);
    assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
    fb_buf_reset(&b);
    assert_int_equal(prom_family(&b, "x_total", "counter", "line\nbreak \\ \"q\""), 0);
    assert_string_equal(b.data, "# HELP x_total line\\nbreak \\\\ \"q\"\n# TYPE x_total counter\n");
    fb_buf_release(&b);
    /* a page larger than the buffer is an error, never a silent cut */
    assert_non_null(metrics_release(m, "shop", "v1"));
    fb_buf_init(&b, 512);
    assert_int_equal(metrics_render_prometheus(m, &b), -FB_ETOOBIG);
    fb_buf_release(&b);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(releases_are_found_or_created_once),
        cmocka_unit_test(shards_sum_into_the_release),
        cmocka_unit_test(worker_gauges_sum_across_workers),
        cmocka_unit_test(route_classes_merge_across_workers),
        cmocka_unit_test(route_classes_beyond_the_table_count_as_other),
        cmocka_unit_test(snapshots_race_two_writers),
        cmocka_unit_test(prometheus_page_parses_back),
        cmocka_unit_test(process_metrics_are_plausible),
        cmocka_unit_test(escaping_and_small_buffers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
