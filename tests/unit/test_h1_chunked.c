/*
 * test_h1_chunked.c: the chunked transfer-coding decoder, table-driven.
 *
 * Each row is one reported test: an input, whether it is a framing error, the
 * data it decodes to, how many bytes belong to the body and whether the body
 * is complete. Every row is decoded whole, split at every position into two
 * separately allocated pieces, and byte by byte: all must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/err.h"
#include "firebreak/h1_parse.h"

#define IN(s) .in = (s), .len = sizeof(s) - 1
#define DATA(s) .data = (s), .data_len = sizeof(s) - 1

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
    bool bad;         /* a framing error somewhere in the input */
    const char *data; /* decoded data (before the error, for bad rows) */
    size_t data_len;
    size_t tail;        /* bytes after the body that must not be consumed */
    bool done;          /* the body ends inside the input */
    size_t max_line;    /* 0: 64 */
    size_t max_trailer; /* 0: 256 */
};

static const struct chunk_case cases[] = {
    /* valid */
    {"one chunk", IN("5\r\nhello\r\n0\r\n\r\n"), DATA("hello"), .done = true},
    {"two chunks", IN("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), DATA("abcde"), .done = true},
    {"empty body", IN("0\r\n\r\n"), DATA(""), .done = true},
    {"upper-case hex", IN("A\r\n0123456789\r\n0\r\n\r\n"), DATA("0123456789"), .done = true},
    {"lower-case hex", IN("b\r\n0123456789a\r\n0\r\n\r\n"), DATA("0123456789a"), .done = true},
    {"two-digit size", IN("10\r\n0123456789abcdef\r\n0\r\n\r\n"), DATA("0123456789abcdef"),
     .done = true},
    {"leading zeros", IN("0005\r\nhello\r\n000\r\n\r\n"), DATA("hello"), .done = true},
    {"extension with value", IN("5;name=value\r\nhello\r\n0\r\n\r\n"), DATA("hello"), .done = true},
    {"extension without value", IN("5;flag\r\nhello\r\n0;last\r\n\r\n"), DATA("hello"),
     .done = true},
    {"quoted extension value", IN("5;a=\"b c;d\"\r\nhello\r\n0\r\n\r\n"), DATA("hello"),
     .done = true},
    {"whitespace before extension", IN("5 \t;a=b\r\nhello\r\n0\r\n\r\n"), DATA("hello"),
     .done = true},
    {"several extensions", IN("5;a=1;b=2\r\nhello\r\n0\r\n\r\n"), DATA("hello"), .done = true},
    {"data holding CRLFs", IN("4\r\n\r\n\r\n\r\n0\r\n\r\n"), DATA("\r\n\r\n"), .done = true},
    {"binary data with NUL", IN("3\r\n\0\xff\x01\r\n0\r\n\r\n"), DATA("\0\xff\x01"), .done = true},
    {"data looking like a chunk", IN("5\r\n0\r\n\r\n\r\n0\r\n\r\n"), DATA("0\r\n\r\n"),
     .done = true},
    {"trailer field", IN("0\r\nX-Checksum: abc\r\n\r\n"), DATA(""), .done = true},
    {"two trailer fields", IN("1\r\na\r\n0\r\nA: 1\r\nB: 2\r\n\r\n"), DATA("a"), .done = true},
    {"trailer empty value", IN("0\r\nX-Empty:\r\n\r\n"), DATA(""), .done = true},
    {"trailer obs-text value", IN("0\r\nX-T: caf\xc3\xa9\r\n\r\n"), DATA(""), .done = true},
    {"bytes after the body kept", IN("2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), DATA("hi"),
     .tail = 16, .done = true},
    {"next chunked body kept", IN("0\r\n\r\n0\r\n\r\n"), DATA(""), .tail = 5, .done = true},
    {"incomplete in data", IN("5\r\nhel"), DATA("hel")},
    {"incomplete in size", IN("1"), DATA("")},
    {"incomplete before data CRLF", IN("2\r\nhi"), DATA("hi")},
    {"incomplete in trailer", IN("0\r\nX-A: 1\r\n"), DATA("")},
    {"incomplete before final LF", IN("0\r\n\r"), DATA("")},
    {"16 hex digits", IN("ffffffffffffffff\r\nab"), DATA("ab")},
    {"17 digits with a leading zero", IN("0ffffffffffffffff\r\nab"), DATA("ab")},
    {"line at the limit", IN("5;aaaaa\r\nhello\r\n0\r\n\r\n"), DATA("hello"), .done = true,
     .max_line = 7},
    {"trailer at the limit", IN("0\r\nA: 1\r\n\r\n"), DATA(""), .done = true, .max_trailer = 8},

    /* chunk size */
    {"plus sign", IN("+5\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"minus sign", IN("-5\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"0x prefix", IN("0x5\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"x prefix", IN("x5\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"empty size", IN("\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"leading space", IN(" 5\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"trailing space", IN("5 \r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"space inside size", IN("1 0\r\n0123456789abcdef\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"not hex", IN("g\r\n"), .bad = true, DATA("")},
    {"hex then garbage", IN("5g\r\nhello\r\n"), .bad = true, DATA("")},
    {"17 significant digits", IN("10000000000000000\r\n"), .bad = true, DATA("")},
    {"far over 64 bits", IN("ffffffffffffffffffffffff\r\n"), .bad = true, DATA("")},
    {"second size bad", IN("1\r\na\r\n+1\r\nb\r\n0\r\n\r\n"), .bad = true, DATA("a")},
    {"semicolon first", IN(";a\r\nhello\r\n"), .bad = true, DATA("")},

    /* line endings */
    {"bare LF after size", IN("5\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"bare CR after size", IN("5\rhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"bare LF after extension", IN("5;a\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"data too long", IN("5\r\nhelloX\r\n0\r\n\r\n"), .bad = true, DATA("hello")},
    {"data too short", IN("5\r\nhell\r\n0\r\n\r\n"), .bad = true, DATA("hell\r")},
    {"data then bare LF", IN("5\r\nhello\n0\r\n\r\n"), .bad = true, DATA("hello")},
    {"data then bare CR", IN("5\r\nhello\r0\r\n\r\n"), .bad = true, DATA("hello")},
    {"data then CR and a digit", IN("5\r\nhello\r00\r\n\r\n"), .bad = true, DATA("hello")},
    {"data then LF CR", IN("5\r\nhello\n\r0\r\n\r\n"), .bad = true, DATA("hello")},
    {"last chunk bare LF", IN("0\n\r\n"), .bad = true, DATA("")},
    {"final bare LF", IN("0\r\n\n"), .bad = true, DATA("")},
    {"final bare CR", IN("0\r\n\rX"), .bad = true, DATA("")},
    {"final CR CR", IN("0\r\n\r\r\n"), .bad = true, DATA("")},

    /* extensions */
    {"control byte in extension", IN("5;a\x01\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"NUL in extension", IN("5;a=\0\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"DEL in extension", IN("5;a=\x7f\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA("")},
    {"size line over the limit", IN("5;aaaaaa\r\nhello\r\n0\r\n\r\n"), .bad = true, DATA(""),
     .max_line = 7},
    {"endless extension", IN("5;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), .bad = true,
     DATA(""), .max_line = 16},
    {"endless leading zeros",
     IN("00000000000000000000000000000000000000000000000000000000000"
        "000000000000000005\r\n"),
     .bad = true, DATA("")},

    /* trailer section */
    {"trailer obs-fold", IN("0\r\nX-A: 1\r\n 2\r\n\r\n"), .bad = true, DATA("")},
    {"trailer starts with HTAB", IN("0\r\n\tX-A: 1\r\n\r\n"), .bad = true, DATA("")},
    {"trailer space before colon", IN("0\r\nX-A : 1\r\n\r\n"), .bad = true, DATA("")},
    {"trailer without colon", IN("0\r\nX-A\r\n\r\n"), .bad = true, DATA("")},
    {"trailer empty name", IN("0\r\n: 1\r\n\r\n"), .bad = true, DATA("")},
    {"trailer bad name byte", IN("0\r\nX(A): 1\r\n\r\n"), .bad = true, DATA("")},
    {"trailer NUL in value", IN("0\r\nX-A: \0\r\n\r\n"), .bad = true, DATA("")},
    {"trailer control in value", IN("0\r\nX-A: \x1b\r\n\r\n"), .bad = true, DATA("")},
    {"trailer bare LF", IN("0\r\nX-A: 1\n\r\n"), .bad = true, DATA("")},
    {"trailer bare CR", IN("0\r\nX-A: 1\rX\r\n\r\n"), .bad = true, DATA("")},
    {"trailer over the limit", IN("0\r\nA: 12\r\n\r\n"), .bad = true, DATA(""), .max_trailer = 8},
};

struct outcome {
    int rc;
    char *data;
    size_t data_len;
    size_t consumed;
    bool done;
    const char *why;
};

static void outcome_append(struct outcome *o, const char *p, size_t n)
{
    o->data = realloc(o->data, o->data_len + n + 1);
    memcpy(o->data + o->data_len, p, n);
    o->data_len += n;
}

/* Feeds one piece until it is used up, the body ends or an error occurs. */
static void feed_piece(struct h1_chunked *c, const char *piece, size_t len, struct outcome *o)
{
    size_t off = 0, used, dlen;
    const char *d;

    while (o->rc == 0 && off < len && !c->done) {
        o->rc = h1_chunked_feed(c, piece + off, len - off, &used, &d, &dlen);
        assert_true(used <= len - off);
        if (dlen > 0) {
            assert_true(d >= piece + off && d + dlen <= piece + off + used);
            outcome_append(o, d, dlen);
        }
        assert_true(used > 0 || o->rc != 0 || c->done);
        off += used;
        o->consumed += used;
    }
    o->done = c->done;
    o->why = c->why;
}

/* Decodes the row's input cut into pieces at the given offsets, each piece in
 * its own exact-size allocation. */
static struct outcome decode(const struct chunk_case *t, const size_t *cuts, size_t ncuts)
{
    struct outcome o = {0};
    struct h1_chunked c;
    size_t i, start = 0;

    h1_chunked_init(&c, t->max_line ? t->max_line : 64, t->max_trailer ? t->max_trailer : 256);
    o.data = malloc(1);
    for (i = 0; i <= ncuts && o.rc == 0 && !c.done; i++) {
        size_t end = i < ncuts ? cuts[i] : t->len;
        char *piece = malloc(end - start + 1);

        memcpy(piece, t->in + start, end - start);
        feed_piece(&c, piece, end - start, &o);
        free(piece);
        start = end;
    }
    return o;
}

static void check_outcome(const struct chunk_case *t, const struct outcome *o)
{
    if (t->bad) {
        assert_int_equal(o->rc, -FB_EBADREQ);
        assert_int_equal(fb_err_status(o->rc), 400);
        assert_non_null(o->why);
        assert_false(o->done);
    } else {
        assert_int_equal(o->rc, 0);
        assert_null(o->why);
        assert_int_equal(o->done, t->done);
        assert_int_equal(o->consumed, t->len - t->tail);
    }
    assert_int_equal(o->data_len, t->data_len);
    assert_memory_equal(o->data, t->data, t->data_len);
}

static void assert_same(const struct outcome *a, const struct outcome *b, size_t where)
{
    if (a->rc != b->rc || a->consumed != b->consumed || a->done != b->done ||
        a->data_len != b->data_len || memcmp(a->data, b->data, a->data_len) != 0)
        fail_msg("feeding split at %zu differs from feeding whole", where);
}

static void run_case(void **state)
{
    const struct chunk_case *t = *state;
    struct outcome whole = decode(t, NULL, 0), split;
    size_t k, *cuts = malloc((t->len + 1) * sizeof(*cuts));

    check_outcome(t, &whole);
    for (k = 1; k < t->len; k++) {
        split = decode(t, &k, 1);
        assert_same(&whole, &split, k);
        free(split.data);
    }
    for (k = 0; k + 1 < t->len; k++)
        cuts[k] = k + 1;
    split = decode(t, cuts, t->len ? t->len - 1 : 0);
    assert_same(&whole, &split, 0);
    free(split.data);
    free(cuts);
    free(whole.data);
}

/* ------------------------------------------------------ individual tests */

static void error_is_sticky(void **state)
{
    struct h1_chunked c;
    const char *d;
    size_t used, dlen;

    h1_chunked_init(&c, 64, 256);
    assert_int_equal(h1_chunked_feed(&c, "0x1\r\n", 5, &used, &d, &dlen), -FB_EBADREQ);
    assert_int_equal(used, 1);
    assert_int_equal(dlen, 0);
    assert_non_null(strstr(c.why, "0x"));
    assert_int_equal(h1_chunked_feed(&c, "0\r\n\r\n", 5, &used, &d, &dlen), -FB_EBADREQ);
    assert_int_equal(used, 0);
    assert_false(c.done);
}

static void nothing_consumed_after_done(void **state)
{
    struct h1_chunked c;
    const char *d;
    size_t used, dlen;

    h1_chunked_init(&c, 64, 256);
    assert_int_equal(h1_chunked_feed(&c, "0\r\n\r\nXY", 7, &used, &d, &dlen), 0);
    assert_int_equal(used, 5);
    assert_true(c.done);
    assert_int_equal(h1_chunked_feed(&c, "XY", 2, &used, &d, &dlen), 0);
    assert_int_equal(used, 0);
    assert_int_equal(dlen, 0);
}

static void data_is_zero_copy(void **state)
{
    static const char in[] = "4\r\nwxyz\r\n0\r\n\r\n";
    struct h1_chunked c;
    const char *d;
    size_t used, dlen;

    h1_chunked_init(&c, 64, 256);
    assert_int_equal(h1_chunked_feed(&c, in, sizeof(in) - 1, &used, &d, &dlen), 0);
    /* the call stops at the end of the data, which points into the input */
    assert_ptr_equal(d, in + 3);
    assert_int_equal(dlen, 4);
    assert_int_equal(used, 7);
    assert_false(c.done);
}

static void maximal_chunk_size_streams(void **state)
{
    struct h1_chunked c;
    const char *d;
    char block[4096];
    size_t used, dlen, i;

    memset(block, 'z', sizeof(block));
    h1_chunked_init(&c, 64, 256);
    assert_int_equal(h1_chunked_feed(&c, "FFFFFFFFFFFFFFFF\r\n", 18, &used, &d, &dlen), 0);
    assert_int_equal(used, 18);
    for (i = 0; i < 16; i++) {
        assert_int_equal(h1_chunked_feed(&c, block, sizeof(block), &used, &d, &dlen), 0);
        assert_int_equal(used, sizeof(block));
        assert_int_equal(dlen, sizeof(block));
    }
    assert_true(c.remaining == UINT64_MAX - 16 * sizeof(block));
}

int main(void)
{
    static const struct CMUnitTest single[] = {
        cmocka_unit_test(error_is_sticky),
        cmocka_unit_test(nothing_consumed_after_done),
        cmocka_unit_test(data_is_zero_copy),
        cmocka_unit_test(maximal_chunk_size_streams),
    };
    size_t n = sizeof(cases) / sizeof(cases[0]), i;
    size_t nsingle = sizeof(single) / sizeof(single[0]);
    struct CMUnitTest *tests = calloc(n + nsingle, sizeof(*tests));
    int rc;

    for (i = 0; i < n; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = run_case;
        tests[i].initial_state = (void *)&cases[i];
    }
    memcpy(tests + n, single, sizeof(single));
    rc = _cmocka_run_group_tests("h1_chunked", tests, n + nsingle, NULL, NULL);
    free(tests);
    return rc;
}
