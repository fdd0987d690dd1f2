/*
 * fuzz_h1_response.c: libFuzzer target for h1_parse_response.
 *
 * Each input is parsed as the answer to GET, HEAD and CONNECT, with default
 * and with small limits. Checks: every error is -FB_EBADRESP with a reason; a
 * complete head lies inside the buffer and the limits, spans lie inside the
 * head, the status is 100-599, the framing follows RFC 9112 section 6.3 (no
 * body for HEAD, 1xx, 204, 304 and a 2xx to CONNECT; never both
 * Content-Length and Transfer-Encoding; a body running to the close is never
 * keep-alive); and the verdict does not depend on where the bytes were split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/h1_parse.h"

#define MAX_FIELDS 100

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static bool inside(struct h1_span s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

static bool bodyless(const struct h1_msg *m, enum h1_method req)
{
    return req == H1_M_HEAD || m->status < 200 || m->status == 204 || m->status == 304 ||
           (req == H1_M_CONNECT && m->status < 300);
}

static void check_framing(const struct h1_msg *m, enum h1_method req)
{
    unsigned i, cl = 0, te = 0;

    for (i = 0; i < m->nfields; i++) {
        cl += m->fields[i].known == H1_H_CONTENT_LENGTH;
        te += m->fields[i].known == H1_H_TRANSFER_ENCODING;
    }
    CHECK(!(cl > 0 && te > 0) && cl <= 1 && (m->minor == 1 || te == 0));
    if (bodyless(m, req))
        CHECK(m->body == H1_BODY_NONE);
    else if (te > 0)
        CHECK(m->body == H1_BODY_CHUNKED);
    else if (cl > 0)
        CHECK(m->body == H1_BODY_LENGTH && m->content_length <= (uint64_t)INT64_MAX);
    else
        CHECK(m->body == H1_BODY_CLOSE && !m->keep_alive);
}

static void check_complete(int rc, const struct h1_msg *m, const char *buf, size_t len,
                           const struct h1_limits *lim, enum h1_method req)
{
    size_t head = (size_t)rc;
    unsigned i;

    CHECK(m->why == NULL && m->head_len == head && head <= len && head <= lim->max_head);
    CHECK(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0);
    CHECK(m->nfields <= lim->max_fields && m->status >= 100 && m->status <= 599);
    CHECK(inside(m->reason, buf, head) && m->reason.len + 12 <= lim->max_line);
    for (i = 0; i < m->reason.len; i++)
        CHECK(m->reason.p[i] != '\r' && m->reason.p[i] != '\n' && m->reason.p[i] != '\0');
    for (i = 0; i < m->nfields; i++) {
        CHECK(m->fields[i].name.len > 0 && inside(m->fields[i].name, buf, head));
        CHECK(inside(m->fields[i].value, buf, head));
    }
    check_framing(m, req);
}

static void check_verdict(int rc, const struct h1_msg *m, const char *buf, size_t len,
                          const struct h1_limits *lim, enum h1_method req)
{
    if (rc > 0)
        check_complete(rc, m, buf, len, lim, req);
    else if (rc == 0)
        CHECK(len < lim->max_head && m->why == NULL);
    else
        CHECK(rc == -FB_EBADRESP && m->why != NULL);
}

static int parse_copy(const uint8_t *data, size_t len, const struct h1_limits *lim,
                      enum h1_method req, struct h1_msg *m, char **copy)
{
    *copy = malloc(len ? len : 1);
    memcpy(*copy, data, len);
    return h1_parse_response(*copy, len, lim, req, m);
}

static void check_prefix(const uint8_t *data, size_t k, const struct h1_limits *lim,
                         enum h1_method req, int whole, const struct h1_msg *wm)
{
    struct h1_field fields[MAX_FIELDS];
    struct h1_msg m = {.fields = fields};
    char *copy;
    int rc = parse_copy(data, k, lim, req, &m, &copy);

    check_verdict(rc, &m, copy, k, lim, req);
    CHECK(rc == 0 || rc == whole);
    if (rc > 0)
        CHECK(m.status == wm->status && m.body == wm->body && m.nfields == wm->nfields &&
              m.keep_alive == wm->keep_alive && m.minor == wm->minor &&
              m.reason.len == wm->reason.len);
    free(copy);
}

static void run(const uint8_t *data, size_t size, const struct h1_limits *lim, enum h1_method req)
{
    struct h1_field fields[MAX_FIELDS];
    struct h1_msg m = {.fields = fields};
    char *copy;
    int whole = parse_copy(data, size, lim, req, &m, &copy);

    check_verdict(whole, &m, copy, size, lim, req);
    if (size > 0) {
        check_prefix(data, size / 2, lim, req, whole, &m);
        check_prefix(data, (size_t)data[0] * 7 % size, lim, req, whole, &m);
    }
    if (whole > 0)
        check_prefix(data, (size_t)whole, lim, req, whole, &m);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum h1_method reqs[] = {H1_M_GET, H1_M_HEAD, H1_M_CONNECT};
    const struct h1_limits small = {.max_line = 40, .max_head = 200, .max_fields = 6};
    struct h1_limits lim;
    size_t i;

    h1_limits_default(&lim);
    for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        run(data, size, &lim, reqs[i]);
        run(data, size, &small, reqs[i]);
    }
    return 0;
}
