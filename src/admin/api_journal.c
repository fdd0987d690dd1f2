/*
 * api_journal.c: /api/v1/services/{s}/journal (docs/journal.md).
 *
 *   GET /services/{s}/journal/impact?release=R[&since=T][&until=T][&list=N]      (viewer)
 *   GET /services/{s}/journal/export?format=csv|jsonl[&release=R][&since=T][&until=T]
 *                                   [&identity=I][&limit=N]                      (responder)
 *
 * Both read the journal file, so neither runs on the control loop: the handler checks the
 * query, queues a job on the loop's worker pool (uv_queue_work) that opens its own read-only
 * connection, and answers from the after-work callback on the control loop. The call stays
 * valid until http_call_done, whether or not the client is still there.
 *
 * Every answer carries the records the journal dropped in the window: in the report as
 * "dropped" (with "complete": false when above 0), on an export as the
 * X-Firebreak-Journal-Dropped header.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/err.h"
#include "firebreak/http_server.h"
#include "firebreak/impact.h"
#include "firebreak/journal.h"
#include "firebreak/server-t.h"

/* Until api.h declares it next to the other resources. */

#define JOURNAL_EXPORT_BYTES (32u << 20) /* an export's body; the rest is cut at a line */
#define QUERY_ARG_MAX 256

enum journal_job_kind { JOB_IMPACT, JOB_EXPORT };

struct journal_job {
    uv_work_t work;
    struct http_call *call;
    struct journal *journal;
    enum journal_job_kind kind;
    bool known_service; /* in the running configuration */
    char service[QUERY_ARG_MAX];
    char release[QUERY_ARG_MAX];
    char identity[QUERY_ARG_MAX];
    struct impact_filter f;
    enum impact_format format;
    uint64_t limit;
    /* Results, filled on the pool thread. */
    int rc;
    char err[256];
    struct impact_report report;
    struct fb_buf out;
    uint64_t rows, dropped, loading;
    bool cut;
};

static void job_free(struct journal_job *job)
{
    impact_report_release(&job->report);
    fb_buf_release(&job->out);
    free(job);
}

/* ---- on the pool thread ------------------------------------------------------------------- */

static void job_work(uv_work_t *w)
{
    struct journal_job *job = w->data;
    struct impact *im = NULL;

    job->rc = impact_open(journal_path(job->journal), job->journal, &im, job->err,
                          sizeof job->err);
    if (job->rc)
        return;
    if (job->kind == JOB_IMPACT) {
        job->rc = impact_query(im, &job->f, &job->report, job->err, sizeof job->err);
    } else {
        job->rc = impact_export_buf(im, &job->f, job->format, job->limit, &job->out, &job->rows,
                                    &job->cut);
        if (job->rc == 0)
            job->rc = impact_dropped(im, &job->f, &job->dropped);
        job->loading = impact_loading(im);
        if (job->rc)
            snprintf(job->err, sizeof job->err, "cannot read the journal");
    }
    impact_close(im);
}

/* ---- on the control loop ------------------------------------------------------------------ */

static void reply_error(struct http_call *call, int rc, const char *msg)
{
    http_response_json_error(&call->resp, rc, msg);
    http_call_done(call);
}

static void reply_export(struct journal_job *job)
{
    struct http_response *r = &job->call->resp;

    r->status = 200;
    r->content_type = job->format == IMPACT_CSV ? "text/csv; charset=utf-8"
                                                : "application/x-ndjson";
    fb_buf_printf(&r->headers,
                  "X-Firebreak-Journal-Dropped: %llu\r\nX-Firebreak-Export-Rows: %llu\r\n"
                  "X-Firebreak-Export-Cut: %s\r\nX-Firebreak-Journal-Loading: %llu\r\n",
                  (unsigned long long)job->dropped, (unsigned long long)job->rows,
                  job->cut ? "true" : "false", (unsigned long long)job->loading);
    fb_buf_release(&r->body);
    r->body = job->out; /* the body takes the export's storage */
    fb_buf_init(&job->out, 0);
    http_call_done(job->call);
}

static void job_done(uv_work_t *w, int status)
{
    struct journal_job *job = w->data;

    if (status)
        reply_error(job->call, -FB_EAGAIN, "the query was cancelled; try again");
    else if (job->rc)
        reply_error(job->call, job->rc, job->err[0] ? job->err : fb_err_message(job->rc));
    else if (job->kind == JOB_IMPACT && !job->known_service && job->report.writes == 0)
        reply_error(job->call, -FB_ENOENT, "no such service, and no journal records for it");
    else if (job->kind == JOB_IMPACT)
        api_reply_to(job->call, 200, impact_report_json(&job->report, &job->f));
    else
        reply_export(job);
    job_free(job);
}

static bool service_configured(const struct api_ctx *a, const char *name)
{
    size_t i;

    for (i = 0; a->srv->cfg && i < a->srv->cfg->nservices; i++)
        if (strcmp(a->srv->cfg->services[i].name, name) == 0)
            return true;
    return false;
}

/* Reads an optional time parameter; false (answered) when it is malformed. */
static bool time_arg(struct api_ctx *a, const char *name, int64_t *out)
{
    char buf[QUERY_ARG_MAX];

    if (!api_query(a, name, buf, sizeof buf) || !buf[0])
        return true;
    if (api_parse_since(buf, out) == 0 && *out > 0)
        return true;
    api_error(a, -FB_EINVAL, "%s: use RFC 3339 (2026-11-26T18:30:00Z), Unix ms, or a duration "
                             "back from now like 10m",
              name);
    return false;
}

/* Reads an optional count parameter within 1..max; false (answered) when it is malformed. */
static bool count_arg(struct api_ctx *a, const char *name, uint64_t max, uint64_t *out)
{
    char buf[32], *end;
    unsigned long long v;

    if (!api_query(a, name, buf, sizeof buf) || !buf[0])
        return true;
    v = strtoull(buf, &end, 10);
    if (*end == '\0' && buf[0] != '-' && v >= 1 && v <= max) {
        *out = v;
        return true;
    }
    api_error(a, -FB_EINVAL, "%s: a whole number from 1 to %llu", name, (unsigned long long)max);
    return false;
}

/* The query common to both endpoints; false (answered) when something is wrong. */
static bool filter_args(struct api_ctx *a, struct journal_job *job, bool need_release)
{
    uint64_t list = 0;

    if (strlen(a->seg[1]) >= sizeof job->service) {
        api_error(a, -FB_EINVAL, "the service name is too long");
        return false;
    }
    memcpy(job->service, a->seg[1], strlen(a->seg[1]) + 1);
    job->f.service = job->service;
    if (api_query(a, "release", job->release, sizeof job->release) && job->release[0])
        job->f.release = job->release;
    else if (need_release) {
        api_error(a, -FB_EINVAL, "release: required, the release whose writes to report");
        return false;
    }
    if (!time_arg(a, "since", &job->f.since_ms) || !time_arg(a, "until", &job->f.until_ms) ||
        !count_arg(a, "list", IMPACT_LIST_MAX, &list))
        return false;
    job->f.list_max = (size_t)list;
    if (job->f.until_ms && job->f.since_ms >= job->f.until_ms) {
        api_error(a, -FB_EINVAL, "since must be before until");
        return false;
    }
    return true;
}

static bool export_args(struct api_ctx *a, struct journal_job *job)
{
    char fmt[16] = "";

    if (!api_query(a, "format", fmt, sizeof fmt) || impact_format_parse(fmt, &job->format)) {
        api_error(a, -FB_EINVAL, "format: csv or jsonl");
        return false;
    }
    if (api_query(a, "identity", job->identity, sizeof job->identity) && job->identity[0])
        job->f.identity = job->identity;
    return count_arg(a, "limit", IMPACT_EXPORT_MAX, &job->limit);
}

static void journal_submit(struct api_ctx *a, enum journal_job_kind kind)
{
    struct journal_job *job;
    int rc;

    if (!a->srv->journal) {
        api_error(a, -FB_ENOENT, "the journal is not open in this firebreak");
        return;
    }
    job = calloc(1, sizeof *job);
    if (!job) {
        api_error(a, -FB_ENOMEM, "out of memory");
        return;
    }
    job->kind = kind;
    fb_buf_init(&job->out, JOURNAL_EXPORT_BYTES);
    if (!filter_args(a, job, kind == JOB_IMPACT) ||
        (kind == JOB_EXPORT && !export_args(a, job))) {
        job_free(job);
        return;
    }
    job->call = a->call;
    job->journal = a->srv->journal;
    job->known_service = service_configured(a, job->service);
    job->work.data = job;
    rc = uv_queue_work(a->srv->loop, &job->work, job_work, job_done);
    if (rc) {
        job_free(job);
        api_error(a, -FB_EAGAIN, "cannot queue the query: %s", uv_strerror(rc));
    }
}

bool api_journal(struct api_ctx *a)
{
    if (a->nseg != 4 || strcmp(a->seg[0], "services") || strcmp(a->seg[2], "journal"))
        return false;
    if (strcmp(a->seg[3], "impact") && strcmp(a->seg[3], "export"))
        return false;
    if (!api_method(a, "GET") && !api_method(a, "HEAD")) {
        fb_buf_puts(&a->call->resp.headers, "Allow: GET\r\n");
        api_error(a, -FB_EMETHOD, "use GET here");
        return true;
    }
    if (!strcmp(a->seg[3], "impact")) {
        if (api_allowed(a, ROLE_VIEWER))
            journal_submit(a, JOB_IMPACT);
    } else if (api_allowed(a, ROLE_RESPONDER)) {
        journal_submit(a, JOB_EXPORT);
    }
    return true;
}
