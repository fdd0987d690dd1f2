/*
 * split.h: the weighted sticky split.
 *
 * bucket = hash(service, key) mod 10000. A service's releases hold contiguous
 * bucket ranges in a fixed order: the non-stable releases from bucket 0 in
 * the order they were added, stable the rest. Raising a new release's weight
 * therefore moves users only from stable into it, and lowering it moves only
 * its own users back.
 */
#ifndef FIREBREAK_SPLIT_H
#define FIREBREAK_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h1_parse-t.h"
#include "route-t.h"

#define SPLIT_BUCKETS 10000u
#define SPLIT_KEY_MAX 128

/* A 64-bit hash of (service, key), the same in every process. */
uint64_t split_hash(const char *service, const char *key, size_t key_len);
/* 0 .. SPLIT_BUCKETS-1; stable for a (service, key) pair across processes. */
uint32_t split_bucket(const char *service, const char *key, size_t key_len);
/* Assigns bucket ranges to s->releases from their weights (route-table build). */
void split_assign(struct route_service *s);
/* The release owning bucket b. */
unsigned split_release(const struct route_service *s, uint32_t b);

/* Finds cookie `name` in the Cookie fields of a request. Returns true and
 * the value's span when present and non-empty. */
bool split_cookie(const struct h1_field *fields, unsigned n, const char *name,
                  struct h1_span *value);
/* Finds a request field by lower-case name; returns true with its value. */
bool split_header(const struct h1_field *fields, unsigned n, const char *lower_name,
                  struct h1_span *value);
/* True if every byte is a cookie-octet (RFC 6265) and 1 <= len <= SPLIT_KEY_MAX. */
bool split_key_valid(const char *p, size_t len);

#endif
