/*
 * h1_parse.h: strict, incremental, I/O-free HTTP/1.1 parsing.
 *
 * Head parsers are called again with the whole buffer as more bytes arrive.
 * They return the head length (> 0) when a complete head was parsed, 0 when
 * more bytes are needed (and the limits are not yet exceeded), or a negative
 * code from err-t.h with msg->why naming the problem:
 *   requests:  -FB_EBADREQ (400), -FB_EURITOOLONG (414), -FB_EHDRTOOBIG (431),
 *              -FB_ENOTIMPL (501, unknown transfer coding), -FB_EVERSION (505)
 *   responses: -FB_EBADRESP (502)
 * After an error the connection must be closed: nothing more is parsed.
 */
#ifndef FIREBREAK_H1_PARSE_H
#define FIREBREAK_H1_PARSE_H

#include "h1_parse-t.h"

/* Fills lim with the defaults documented in h1_parse-t.h. */
void h1_limits_default(struct h1_limits *lim);

/* msg->fields must point to lim->max_fields entries; every other member of msg
 * is set by the call. */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim,
                     struct h1_msg *msg);

/* req_method is the method of the request this response answers: HEAD and a
 * 2xx answer to CONNECT have no body. 1xx, 204 and 304 have no body either. */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      enum h1_method req_method, struct h1_msg *msg);

void h1_chunked_init(struct h1_chunked *c, size_t max_line, size_t max_trailer);

/*
 * Feeds len bytes of a chunked body. Sets *consumed to the bytes used and, when
 * they end with chunk data, *data and *data_len to that data (pointing into in);
 * otherwise *data_len is 0. Returns 0, or -FB_EBADREQ with c->why set on a
 * framing error (the caller maps it to 502 for responses). Call again with
 * in + *consumed until all bytes are used or c->done is set; bytes after the
 * end of the body (c->done) are not consumed.
 */
int h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                    const char **data, size_t *data_len);

/* Case-insensitive comparison of a span with a lower-case literal. */
bool h1_span_eq(struct h1_span s, const char *lower);
/* True if the comma-separated list in value has the token (case-insensitive). */
bool h1_list_has(struct h1_span value, const char *lower_token);
/* Name of a method enum ("GET", ...); "OTHER" for H1_M_OTHER. */
const char *h1_method_name(enum h1_method m);

#endif
