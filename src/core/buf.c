/*
 * buf.c: growable byte buffers with a hard maximum.
 *
 * Invariants: len <= cap <= max + 1 (the +1 is the NUL terminator), and data
 * is NUL-terminated whenever it is non-NULL. Growth doubles, so appends are
 * amortised O(1); a failed append leaves the buffer exactly as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/buf.h"
#include "firebreak/err-t.h"

void fb_buf_init(struct fb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void fb_buf_release(struct fb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void fb_buf_reset(struct fb_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int fb_buf_reserve(struct fb_buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n > b->max || b->len > b->max - n)
        return -FB_ETOOBIG;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (!p)
        return -FB_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int fb_buf_append(struct fb_buf *b, const void *p, size_t n)
{
    int rc = fb_buf_reserve(b, n);

    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int fb_buf_puts(struct fb_buf *b, const char *s)
{
    return fb_buf_append(b, s, strlen(s));
}

int fb_buf_vprintf(struct fb_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n, rc;

    /* Format straight into the free space; only a miss formats twice. */
    va_copy(copy, ap);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, copy);
    va_end(copy);
    if (n < 0)
        return -FB_EINVAL;
    if ((size_t)n < room && b->len + (size_t)n <= b->max) {
        b->len += (size_t)n;
        return 0;
    }
    if (b->data)
        b->data[b->len] = '\0';
    rc = fb_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int fb_buf_printf(struct fb_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = fb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void fb_buf_consume(struct fb_buf *b, size_t n)
{
    if (n >= b->len) {
        fb_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *fb_buf_take(struct fb_buf *b)
{
    char *p = b->data;

    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
