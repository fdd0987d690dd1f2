/* config.h: load and check firebreak.yaml. */
#ifndef FIREBREAK_CONFIG_H
#define FIREBREAK_CONFIG_H

#include "config-t.h"

/*
 * Parses the file at path. On success *out is a new config owned by the caller
 * (config_free) and 0 is returned. On failure returns -FB_ECONFIG (or -FB_EIO
 * when the file cannot be read) with err filled; *out is left NULL.
 */
int config_load(const char *path, struct config **out, struct config_error *err);
/* Same, from a string in memory; name is used in messages. */
int config_parse(const char *name, const char *text, size_t len, struct config **out,
                 struct config_error *err);
void config_free(struct config *cfg);
/* "FILE:LINE:COL: PATH: MESSAGE" into out. */
void config_error_format(const struct config_error *err, const char *file, char *out,
                         size_t outlen);
/*
 * Parses "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (127.0.0.1, no DNS).
 * Returns 0 with out->text a copy the caller releases (config_addr_release),
 * -FB_EINVAL for anything else (out zeroed) or -FB_ENOMEM.
 */
int config_parse_addr(const char *text, struct cfg_addr *out);
/*
 * Parses rollout steps ("1%:60s", ..., "100%") with the config file's rules:
 * rising percentages, a hold on every step but the last, the last 100%.
 * Returns 0 or -FB_EINVAL with the reason in why.
 */
#define CFG_MAX_STEPS 100
int config_parse_steps(const char *const *texts, size_t n, struct cfg_step *out, char *why,
                       size_t whylen);
/* Frees out->text and zeroes the address. */
void config_addr_release(struct cfg_addr *addr);

/*
 * Called once per key the file accepts, in table order: path is dotted with
 * "[]" for list items ("services[].releases[].weight"), type a short word for
 * docs ("duration"), def the default as written in the file or NULL, doc one
 * sentence. All strings are borrowed for the duration of the call.
 */
typedef void (*config_key_fn)(const char *path, const char *type, const char *def,
                              const char *doc, void *arg);
void config_keys_each(config_key_fn fn, void *arg);

#endif
