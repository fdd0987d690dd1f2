/* buf.h: struct fb_buf operations. Every append may fail; none aborts. */
#ifndef FIREBREAK_BUF_H
#define FIREBREAK_BUF_H

#include <stdarg.h>
#include "buf-t.h"

/* Starts empty; nothing is allocated until the first append. */
void fb_buf_init(struct fb_buf *b, size_t max);
/* Frees the storage; the buffer may be reused after fb_buf_init. */
void fb_buf_release(struct fb_buf *b);
/* Empties the buffer but keeps its storage. */
void fb_buf_reset(struct fb_buf *b);
/* Returns 0, -FB_ENOMEM or -FB_ETOOBIG; on failure the buffer is unchanged. */
int fb_buf_append(struct fb_buf *b, const void *p, size_t n);
int fb_buf_puts(struct fb_buf *b, const char *s);
int fb_buf_printf(struct fb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int fb_buf_vprintf(struct fb_buf *b, const char *fmt, va_list ap);
/* Makes room for n more bytes; returns 0 or an error as above. */
int fb_buf_reserve(struct fb_buf *b, size_t n);
/* Removes the first n bytes (n <= len). */
void fb_buf_consume(struct fb_buf *b, size_t n);
/* Hands the storage to the caller (who frees it) and empties the buffer. */
char *fb_buf_take(struct fb_buf *b);

#endif
