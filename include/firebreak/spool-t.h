/*
 * spool-t.h: one journal record as the spool keeps it: the final column values of a row of
 * journal.db's writes table, after identity, entity and redaction (see spool.h).
 */
#ifndef FIREBREAK_SPOOL_T_H
#define FIREBREAK_SPOOL_T_H

#include <stdbool.h>
#include <stdint.h>

/* The text columns, in the order a frame holds them. */
enum spool_field {
    SPOOL_REQUEST_ID,
    SPOOL_SERVICE,
    SPOOL_RELEASE,
    SPOOL_METHOD,
    SPOOL_PATH,
    SPOOL_ROUTE,
    SPOOL_IDENTITY,
    SPOOL_ENTITY,
    SPOOL_LOCATION,
    SPOOL_FIELDS
};

/* Bytes (not NUL-terminated) of one text column; n == 0 is SQL NULL for the optional ones
 * (request id, identity, entity, location). */
struct spool_text {
    const char *p;
    uint32_t n;
};

/* A row: pointers borrow from the record it was built from, or from the decoded frame. */
struct spool_row {
    int64_t id;
    int64_t time_ms;
    uint32_t duration_us;
    uint32_t upstream_us;
    int status;
    struct spool_text text[SPOOL_FIELDS];
    bool has_body;
    const char *body;
    uint32_t body_len;
};

#endif
