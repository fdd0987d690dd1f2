/*
 * fuzz_h1_chunked.c: libFuzzer target for h1_chunked_feed.
 *
 * The input is decoded whole, in two pieces cut at a point taken from the
 * input, and byte by byte, each piece an exact-size copy. Checks: every call
 * consumes no more than it was given, returns data only inside what it
 * consumed, makes progress unless the body ended or an error occurred, never
 * consumes past the end of the body, and an error is -FB_EBADREQ with a
 * reason; the three feedings agree on the verdict, the bytes consumed and the
 * decoded data. Runs with default-like and with small limits.
 *
 * Round trip: the input is also encoded as a valid chunked body (chunk sizes,
 * hex case, leading zeros, extensions and a trailer chosen from its bytes)
 * and decoding that body must give back exactly the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/h1_parse.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct outcome {
    int rc;
    size_t consumed;
    size_t data_len;
    bool done;
    uint8_t *data; /* capacity: the input length */
};

static void feed_piece(struct h1_chunked *c, const char *p, size_t len, struct outcome *o)
{
    size_t off = 0, used, dlen;
    const char *d;

    while (o->rc == 0 && off < len && !c->done) {
        o->rc = h1_chunked_feed(c, p + off, len - off, &used, &d, &dlen);
        CHECK(used <= len - off);
        CHECK(used > 0 || o->rc != 0 || c->done);
        CHECK(o->rc == 0 || (o->rc == -FB_EBADREQ && c->why != NULL && dlen == 0));
        if (dlen > 0) {
            CHECK(d >= p + off && d + dlen <= p + off + used);
            memcpy(o->data + o->data_len, d, dlen);
            o->data_len += dlen;
        }
        off += used;
        o->consumed += used;
    }
    o->done = c->done;
}

/* Decodes data in pieces of step bytes, the first piece being first bytes. */
static struct outcome decode(const uint8_t *data, size_t size, size_t first, size_t step,
                             size_t max_line, size_t max_trailer)
{
    struct outcome o = {.data = malloc(size ? size : 1)};
    struct h1_chunked c;
    size_t start = 0;

    h1_chunked_init(&c, max_line, max_trailer);
    while (start < size && o.rc == 0 && !c.done) {
        size_t n = start == 0 && first > 0 ? first : step;
        char *piece;

        n = n < size - start ? n : size - start;
        piece = malloc(n ? n : 1);
        memcpy(piece, data + start, n);
        feed_piece(&c, piece, n, &o);
        free(piece);
        start += n;
    }
    CHECK(o.consumed <= size && o.data_len <= o.consumed);
    CHECK(!o.done || o.rc == 0);
    return o;
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->rc == b->rc && a->consumed == b->consumed && a->done == b->done);
    CHECK(a->data_len == b->data_len && memcmp(a->data, b->data, a->data_len) == 0);
}

static void run(const uint8_t *data, size_t size, size_t max_line, size_t max_trailer)
{
    struct outcome whole = decode(data, size, size, size, max_line, max_trailer);
    size_t cut = size ? (size_t)data[size - 1] * 13 % size : 0;
    struct outcome two = decode(data, size, cut, size, max_line, max_trailer);
    struct outcome bytes = decode(data, size, 1, 1, max_line, max_trailer);

    check_same(&whole, &two);
    check_same(&whole, &bytes);
    free(whole.data);
    free(two.data);
    free(bytes.data);
}

/* Writes a valid chunked encoding of data into out (capacity 32 * size + 64)
 * and returns its length. */
static size_t encode(const uint8_t *data, size_t size, char *out)
{
    size_t pos = 0, o = 0, cap = 32 * size + 64;

    while (pos < size) {
        size_t n = 1 + (size_t)data[pos] % 37;
        const char *fmt = (data[pos] & 1) ? "%zx" : (data[pos] & 2) ? "%zX" : "00%zx";

        n = n < size - pos ? n : size - pos;
        o += (size_t)snprintf(out + o, cap - o, fmt, n);
        if (data[pos] & 0x40)
            o += (size_t)snprintf(out + o, cap - o, " ;e=%u", data[pos]);
        o += (size_t)snprintf(out + o, cap - o, "\r\n");
        memcpy(out + o, data + pos, n);
        o += n;
        o += (size_t)snprintf(out + o, cap - o, "\r\n");
        pos += n;
    }
    o += (size_t)snprintf(out + o, cap - o, "0\r\n%s\r\n", (size & 1) ? "X-Sum: 1\r\n" : "");
    return o;
}

static void round_trip(const uint8_t *data, size_t size)
{
    char *enc = malloc(32 * size + 64);
    size_t len = encode(data, size, enc);
    struct outcome o = decode((const uint8_t *)enc, len, len, len, 8192, 16384);

    CHECK(o.rc == 0 && o.done && o.consumed == len);
    CHECK(o.data_len == size && memcmp(o.data, data, size) == 0);
    free(o.data);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, 8192, 16384);
    run(data, size, 12, 24);
    round_trip(data, size);
    return 0;
}
