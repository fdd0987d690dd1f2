/*
 * fuzz_journal_spool.c: the spool's frame decoder on arbitrary bytes, read the way the
 * journal's loader reads a segment (frame after frame until an incomplete or a damaged one).
 *
 * Checks: spool_decode never reads past the bytes given; a frame it accepts consumes at least
 * a frame head and no more than what is left, keeps every column within the limits the
 * encoder keeps, and encodes back to exactly the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool_row row;
    struct fb_buf again;
    size_t at = 0, used = 0;
    int rc;

    fb_buf_init(&again, SPOOL_READ_MAX);
    while ((rc = spool_decode(data + at, size - at, &row, &used)) == 0) {
        check(used >= SPOOL_FRAME_HEAD && used <= size - at);
        check(row.id > 0);
        check(row.has_body || row.body_len == 0);
        fb_buf_reset(&again);
        check(spool_encode(&again, &row) == 0);
        check(again.len == used && memcmp(again.data, data + at, used) == 0);
        at += used;
    }
    check(rc == -FB_EAGAIN || rc == -FB_EINVAL);
    fb_buf_release(&again);
    return 0;
}
