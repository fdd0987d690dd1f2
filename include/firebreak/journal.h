/*
 * journal.h: the write journal (STATE/journal.db).
 *
 * Life cycle: journal_open (control thread, before the workers start) ->
 * journal_start (writer thread) -> workers call journal_slot / journal_commit
 * on their own ring -> journal_close (after the workers stopped: drains every
 * ring, commits, closes).
 */
#ifndef FIREBREAK_JOURNAL_H
#define FIREBREAK_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "journal-t.h"

struct journal_options {
    unsigned nworkers;
    unsigned ring_slots;      /* per worker; default 4096 */
    uint32_t body_cap;        /* bytes of request body kept per record; 0 = none (default) */
    const char *const *redact;/* JSON keys whose values never reach the file; NULL = defaults
                                 (password, token, secret, card) */
    size_t nredact;
    uint64_t retention_ms;    /* records older than this are deleted; 0 = keep (default 30 d) */
    uint64_t max_bytes;       /* the file is trimmed oldest-first above this; 0 = no cap */
    unsigned commit_ms;       /* group commit interval, at most 100 (default 50) */
};

int journal_open(const char *path, const struct journal_options *opt, struct journal **out,
                 char *err, size_t errlen);
int journal_start(struct journal *j);
void journal_close(struct journal *j);

/* Worker side (lock-free, single producer per ring). journal_slot returns a
 * zeroed record to fill, or NULL when the ring is full (the drop is counted);
 * journal_commit publishes it. Between the two the worker owns the slot. */
struct journal_record *journal_slot(struct journal *j, unsigned worker);
void journal_commit(struct journal *j, unsigned worker);
/* The body capacity of a slot (options.body_cap). */
uint32_t journal_body_cap(const struct journal *j);

/* Records dropped because a ring was full, since start. Any thread. */
uint64_t journal_dropped(const struct journal *j);
/* Records written to the file since start. Any thread. */
uint64_t journal_written(const struct journal *j);

#endif
