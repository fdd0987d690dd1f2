/* route.h: building and matching route tables. */
#ifndef FIREBREAK_ROUTE_H
#define FIREBREAK_ROUTE_H

#include <stddef.h>

#include "config-t.h"
#include "route-t.h"

struct metrics;

/*
 * Builds a table from cfg, with the releases of spec (when not NULL) in place
 * of the config's for the services spec names. Endpoint ids come from ids
 * (new addresses get new ids); per-release metrics come from m when it is not
 * NULL. Returns 0 and a new table in *out (route_table_free), or a negative
 * error code.
 */
int route_table_new(const struct config *cfg, const struct route_spec *spec,
                    struct route_ids *ids, struct metrics *m, uint64_t version,
                    struct route_table **out);
void route_table_free(struct route_table *t);
void route_ids_release(struct route_ids *ids);

/*
 * The service for a request: host (the Host field without port, any case) and
 * path; the longest matching path prefix wins, an exact host beats "*".
 * Returns NULL when nothing matches.
 */
const struct route_service *route_match(const struct route_table *t, const char *host,
                                        size_t host_len, const char *path, size_t path_len);

#endif
