/*
 * impact.h: the data-impact report and the export of the write journal (docs/journal.md).
 *
 * A struct impact is one read-only connection to the journal file, used by one thread at a
 * time. Queries read the file: run them on a worker-pool thread, never on an event loop.
 */
#ifndef FIREBREAK_IMPACT_H
#define FIREBREAK_IMPACT_H

#include <jansson.h>

#include "buf-t.h"
#include "impact-t.h"
#include "journal-t.h"

#define IMPACT_SYNC_MS 10000 /* how long a query waits for the journal's loading */

/*
 * Opens path read-only (the file must exist). live, when not NULL, is the journal writing
 * the file in this process: each query first has every record it committed loaded into the
 * file (journal_sync, at most IMPACT_SYNC_MS; what is left is reported as loading), and its
 * live drop count joins every report; it must outlive the handle. Returns 0 and *out (impact_close), -FB_ENOENT (no journal file), -FB_ESTORE (with
 * SQLite's message in err) or -FB_ENOMEM.
 */
int impact_open(const char *path, struct journal *live, struct impact **out, char *err,
                size_t errlen);
void impact_close(struct impact *im);

/*
 * The impact of f->release of f->service within [since, until): writes by route and
 * status, distinct identities and entities (counts and the first list_max names), first and
 * last write, dropped records. A window holding every write of the release is answered from
 * the summaries in time independent of the number of records; a narrower one reads the
 * records in the window once and counts them in memory. Returns 0 with *out filled
 * (impact_report_release), -FB_EINVAL (a missing service or release, since >= until; err
 * says which), -FB_ETOOBIG (a window with more than IMPACT_DISTINCT_MAX distinct identities
 * or entities), -FB_ENOMEM or -FB_ESTORE.
 */
int impact_query(struct impact *im, const struct impact_filter *f, struct impact_report *out,
                 char *err, size_t errlen);
void impact_report_release(struct impact_report *r);
/* The report as the API shows it (a new reference). */
json_t *impact_report_json(const struct impact_report *r, const struct impact_filter *f);

/* Records the journal dropped in runs overlapping f's window (as impact_query reports them).
 * Returns 0 or -FB_ESTORE. */
int impact_dropped(struct impact *im, const struct impact_filter *f, uint64_t *out);
/* Records the live journal had committed but not loaded when the last query started. */
uint64_t impact_loading(const struct impact *im);

/* "csv" or "jsonl". */
int impact_format_parse(const char *s, enum impact_format *out);
/*
 * Streams the records matching f (service required; release, identity, since, until
 * optional), oldest first, at most max_rows of them (0: IMPACT_EXPORT_DEFAULT, at most
 * IMPACT_EXPORT_MAX), to sink: a CSV header line first, or one JSON object per line. *rows
 * gets the count sent and *cut whether more matched. Returns 0, -FB_EINVAL, -FB_ESTORE or
 * what the sink returned.
 */
int impact_export(struct impact *im, const struct impact_filter *f, enum impact_format fmt,
                  uint64_t max_rows, impact_sink_fn sink, void *arg, uint64_t *rows, bool *cut);
/* Same into out: stops at the last whole line that fits out's maximum (then *cut is set). */
int impact_export_buf(struct impact *im, const struct impact_filter *f, enum impact_format fmt,
                      uint64_t max_rows, struct fb_buf *out, uint64_t *rows, bool *cut);

#endif
