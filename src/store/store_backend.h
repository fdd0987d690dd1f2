/*
 * store_backend.h: what a store backend sees of the front (store.c).
 *
 * Private to src/store. A backend keeps its state behind one pointer and
 * reports failures with store_fail, which keeps the message for store_error
 * and store_open's errbuf. The front checks every argument (sizes, JSON,
 * UTF-8, NULLs) before a backend function runs, and calls them one at a time.
 */
#ifndef FIREBREAK_STORE_BACKEND_H
#define FIREBREAK_STORE_BACKEND_H

#include "firebreak/store-t.h"

extern const struct store_ops sqlite_store_ops;

/* The backend's state: set by ops->open, freed by ops->close. */
void *store_backend(struct store *s);
void store_set_backend(struct store *s, void *state);

/* Keeps a printf-style message for store_error; returns err (0 or -FB_E...). */
int store_fail(struct store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
