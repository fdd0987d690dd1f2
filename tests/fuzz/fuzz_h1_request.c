/*
 * fuzz_h1_request.c: libFuzzer target for h1_parse_request.
 *
 * Checks, for default and for small limits:
 *   - the verdict is a head length, 0 or one of the documented errors, and an
 *     error always names its reason;
 *   - a complete head lies inside the buffer and the limits, every span lies
 *     inside the head, names are tokens, values are trimmed and free of
 *     CR/LF/NUL, and the framing is one the proxy can forward safely;
 *   - 0 is only returned while the buffer is shorter than max_head;
 *   - the verdict does not depend on where the bytes were split: a prefix
 *     gives 0 or exactly the verdict of the whole, and the head alone gives
 *     the same message as the head followed by more bytes.
 * Every buffer is an exact-size copy so that ASan sees any over-read.
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

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static void check_field(const struct h1_field *f, const char *buf, size_t head)
{
    size_t i;

    CHECK(f->name.len > 0 && inside(f->name, buf, head) && inside(f->value, buf, head));
    for (i = 0; i < f->name.len; i++)
        CHECK(f->name.p[i] > ' ' && f->name.p[i] < 0x7f && f->name.p[i] != ':');
    for (i = 0; i < f->value.len; i++)
        CHECK(f->value.p[i] != '\r' && f->value.p[i] != '\n' && f->value.p[i] != '\0');
    CHECK(f->value.len == 0 || (!is_ws(f->value.p[0]) && !is_ws(f->value.p[f->value.len - 1])));
}

static void check_framing(const struct h1_msg *m)
{
    unsigned i, cl = 0, te = 0, host = 0;

    for (i = 0; i < m->nfields; i++) {
        cl += m->fields[i].known == H1_H_CONTENT_LENGTH;
        te += m->fields[i].known == H1_H_TRANSFER_ENCODING;
        host += m->fields[i].known == H1_H_HOST;
        CHECK(m->fields[i].known != H1_H_TRANSFER_ENCODING || m->fields[i].hop);
    }
    CHECK(!(cl > 0 && te > 0) && cl <= 1 && host <= 1);
    CHECK(m->minor == 1 || te == 0);
    CHECK(m->minor == 0 || host == 1);
    CHECK(m->has_host == (host == 1));
    CHECK((m->body == H1_BODY_CHUNKED) == (te > 0));
    CHECK((m->body == H1_BODY_LENGTH) == (cl > 0));
    CHECK(m->body != H1_BODY_LENGTH || m->content_length <= (uint64_t)INT64_MAX);
    CHECK(m->body != H1_BODY_CLOSE);
}

static void check_complete(int rc, const struct h1_msg *m, const char *buf, size_t len,
                           const struct h1_limits *lim)
{
    size_t head = (size_t)rc, i;
    unsigned f;

    CHECK(m->why == NULL && m->head_len == head && head <= len && head <= lim->max_head);
    CHECK(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0);
    CHECK(m->nfields <= lim->max_fields && m->minor >= 0 && m->minor <= 1);
    CHECK(m->method_name.len > 0 && inside(m->method_name, buf, head));
    CHECK(m->target.len > 0 && inside(m->target, buf, head));
    CHECK(m->target.len <= lim->max_line);
    for (i = 0; i < m->target.len; i++)
        CHECK(m->target.p[i] > ' ' && m->target.p[i] < 0x7f);
    CHECK(!m->has_host || inside(m->host, buf, head));
    for (f = 0; f < m->nfields; f++)
        check_field(&m->fields[f], buf, head);
    check_framing(m);
}

static void check_verdict(int rc, const struct h1_msg *m, const char *buf, size_t len,
                          const struct h1_limits *lim)
{
    if (rc > 0)
        check_complete(rc, m, buf, len, lim);
    else if (rc == 0)
        CHECK(len < lim->max_head && m->why == NULL);
    else
        CHECK(m->why != NULL && (rc == -FB_EBADREQ || rc == -FB_EURITOOLONG ||
                                 rc == -FB_EHDRTOOBIG || rc == -FB_ENOTIMPL || rc == -FB_EVERSION));
}

static bool span_same(struct h1_span a, const char *abase, struct h1_span b, const char *bbase)
{
    return a.len == b.len && (a.len == 0 || a.p - abase == b.p - bbase);
}

/* The same message parsed from two buffers holding the same head. */
static void check_same(const struct h1_msg *a, const char *abuf, const struct h1_msg *b,
                       const char *bbuf)
{
    unsigned i;

    CHECK(a->method == b->method && a->minor == b->minor && a->body == b->body);
    CHECK(a->keep_alive == b->keep_alive && a->expect_continue == b->expect_continue);
    CHECK(a->upgrade == b->upgrade && a->has_host == b->has_host && a->nfields == b->nfields);
    CHECK(a->body != H1_BODY_LENGTH || a->content_length == b->content_length);
    CHECK(span_same(a->target, abuf, b->target, bbuf) && span_same(a->host, abuf, b->host, bbuf));
    for (i = 0; i < a->nfields; i++) {
        CHECK(span_same(a->fields[i].name, abuf, b->fields[i].name, bbuf));
        CHECK(span_same(a->fields[i].value, abuf, b->fields[i].value, bbuf));
        CHECK(a->fields[i].known == b->fields[i].known && a->fields[i].hop == b->fields[i].hop);
    }
}

static int parse_copy(const uint8_t *data, size_t len, const struct h1_limits *lim,
                      struct h1_msg *m, char **copy)
{
    *copy = malloc(len ? len : 1);
    memcpy(*copy, data, len);
    return h1_parse_request(*copy, len, lim, m);
}

static void check_prefix(const uint8_t *data, size_t k, const struct h1_limits *lim, int whole,
                         const struct h1_msg *wm, const char *wbuf)
{
    struct h1_field fields[MAX_FIELDS];
    struct h1_msg m = {.fields = fields};
    char *copy;
    int rc = parse_copy(data, k, lim, &m, &copy);

    check_verdict(rc, &m, copy, k, lim);
    CHECK(rc == 0 || rc == whole);
    if (rc > 0)
        check_same(wm, wbuf, &m, copy);
    free(copy);
}

static void run(const uint8_t *data, size_t size, const struct h1_limits *lim)
{
    struct h1_field fields[MAX_FIELDS];
    struct h1_msg m = {.fields = fields};
    char *copy;
    int whole = parse_copy(data, size, lim, &m, &copy);

    check_verdict(whole, &m, copy, size, lim);
    if (size > 0) {
        check_prefix(data, size / 2, lim, whole, &m, copy);
        check_prefix(data, (size_t)data[0] * 7 % size, lim, whole, &m, copy);
        check_prefix(data, size - 1, lim, whole, &m, copy);
    }
    if (whole > 0)
        check_prefix(data, (size_t)whole, lim, whole, &m, copy);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h1_limits lim;
    const struct h1_limits small = {.max_line = 40, .max_head = 200, .max_fields = 6};

    h1_limits_default(&lim);
    run(data, size, &lim);
    run(data, size, &small);
    return 0;
}
