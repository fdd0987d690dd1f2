/*
 * store_migrations.h: the SQL migrations built into the binary.
 *
 * scripts/embed.py turns src/store/migrations/NNNN_name.sql into a generated
 * C file that defines the table below, sorted by number, numbered 1, 2, 3, ...
 * with no gap. The store runs, at open, every migration whose number is above
 * the highest one recorded in the database's schema_migrations table.
 */
#ifndef FIREBREAK_STORE_MIGRATIONS_H
#define FIREBREAK_STORE_MIGRATIONS_H

#include <stddef.h>

struct store_migration {
    int number;       /* NNNN of the file name */
    const char *name; /* the file name without number and .sql: "init" */
    const char *sql;  /* the file's text; no BEGIN/COMMIT of its own */
};

extern const struct store_migration store_migrations[];
extern const size_t store_migrations_count;

#endif
