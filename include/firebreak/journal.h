/*
 * journal.h: the write journal (STATE/journal.db, fed through STATE/journal-spool/).
 *
 * Life cycle: journal_open (control thread, before the workers start) ->
 * journal_start (spooler, loader and indexer threads) -> workers call journal_slot /
 * journal_commit on their own ring -> journal_close (after the workers stopped: drains
 * every ring, commits, loads what it can, closes).
 */
#ifndef FIREBREAK_JOURNAL_H
#define FIREBREAK_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config-t.h"
#include "journal-t.h"

struct journal_options {
    unsigned nworkers;
    unsigned ring_slots;      /* per worker; default 4096 */
    uint32_t body_cap;        /* bytes of request body kept per record; 0 = none (default) */
    const char *const *redact;/* JSON keys whose values never reach the file; NULL = defaults
                                 (password, token, secret, card); none when nredact is 0 */
    size_t nredact;
    uint64_t retention_ms;    /* records older than this are deleted; 0 = keep (default 30 d) */
    uint64_t max_bytes;       /* the file is trimmed oldest-first above this; 0 = no cap */
    unsigned commit_ms;       /* group commit interval, at most 100 (default 50) */
    bool defer_index;         /* leave the postings and summaries to a later run (tests and
                                 benchmarks of the fallback that reads unindexed records) */
    bool defer_load;          /* no background loader: records stay in the spool until a
                                 report, journal_close or the backlog bound loads them (tests
                                 and benchmarks) */
    uint64_t backlog_max;     /* committed records not yet loaded above which the committing
                                 thread loads too, so the spool stays bounded; 0 = default
                                 (1,000,000, a few hundred MB of spool) */
};

/* Sets every member to its default (ring 4096, commit 50 ms, retention 30 d, no size cap,
 * no bodies, the default redact keys, one worker). */
void journal_options_init(struct journal_options *opt);
/*
 * Fills opt from cfg (journal: ring, retention, max_size; per service: the largest
 * journal.body_bytes and the union of every journal.redact list, compared without case) for
 * nworkers workers. keys (nkeys slots; JOURNAL_REDACT_MAX is the most journal_open accepts)
 * receives pointers borrowed from cfg and opt->redact points at keys: both must outlive the
 * journal_open call, which copies. Returns 0, or -FB_ETOOBIG when the union has more than
 * nkeys keys (opt is then unusable: a key must never be left out silently).
 */
int journal_options_from_config(const struct config *cfg, unsigned nworkers,
                                struct journal_options *opt, const char **keys, size_t nkeys);

/*
 * Opens or creates the journal file at path (mode 0600, WAL, synchronous=NORMAL) with its
 * schema, and allocates one ring per worker. Returns 0 with *out owned by the caller
 * (journal_close), or -FB_EINVAL (a bad option, named in err), -FB_ENOMEM, -FB_EIO (the file
 * cannot be created) or -FB_ESTORE (SQLite refused the file; its message in err).
 */
int journal_open(const char *path, const struct journal_options *opt, struct journal **out,
                 char *err, size_t errlen);
/* Starts the writer thread. Returns 0, -FB_EINVAL when already started, or -FB_ENOMEM. */
int journal_start(struct journal *j);
/* Stops the writer after it drained every ring and committed, indexes for at most 2 s (a
 * backlog left over is indexed by the next run), checkpoints and closes the file, frees j.
 * Call after the workers stopped and after every impact query that uses j finished. NULL is
 * ignored. */
void journal_close(struct journal *j);

/* Worker side (lock-free, single producer per ring). journal_slot returns a
 * record to fill, its numbers zeroed and its strings empty (body bytes are not: set body_len),
 * or NULL when the ring is full or worker is out of range (the drop is
 * counted); journal_commit publishes it, and does nothing without a slot.
 * Between the two the worker owns the slot. */
struct journal_record *journal_slot(struct journal *j, unsigned worker);
void journal_commit(struct journal *j, unsigned worker);
/* The body capacity of a slot (options.body_cap). */
uint32_t journal_body_cap(const struct journal *j);

/* Records dropped because a ring was full, since start. Any thread. */
uint64_t journal_dropped(const struct journal *j);
/* Records committed (appended to the spool) since start. Any thread. */
uint64_t journal_written(const struct journal *j);
/* Records committed but not yet loaded into journal.db. Any thread. */
uint64_t journal_loading(const struct journal *j);
/*
 * Loads every record committed before the call into journal.db, on the calling thread, for
 * at most timeout_ms: reports call it first, so they see every write the journal committed
 * even while the background loader is behind. Returns how many of those records are still
 * not loaded (0: all are). Any thread; NULL gives 0.
 */
int64_t journal_sync(struct journal *j, unsigned timeout_ms);
/* Every counter at once. Any thread. */
void journal_stats(const struct journal *j, struct journal_stats *out);
/* The file's path (borrowed from j). */
const char *journal_path(const struct journal *j);
/* The index file that goes with the journal file at path: "x/journal.db" gives
 * "x/journal-index.db". Returns 0, or -FB_EINVAL when it does not fit outlen. */
int journal_index_path(const char *path, char *out, size_t outlen);
/* The spool directory that goes with it: "x/journal.db" gives "x/journal-spool". */
int journal_spool_path(const char *path, char *out, size_t outlen);
/* This process's row in the file's runs table: impact reports add the live drop count of
 * this run to the counts stored for earlier runs. */
int64_t journal_run(const struct journal *j);
/*
 * Replaces the redact keys (a config reload): copied, in effect from the next batch. NULL
 * restores the defaults; n == 0 with keys redacts nothing. Returns 0, -FB_EINVAL (more than
 * JOURNAL_REDACT_MAX keys, or an empty or too long key) or -FB_ENOMEM (the old keys stay).
 * Any thread.
 */
int journal_set_redact(struct journal *j, const char *const *keys, size_t n);

#endif
