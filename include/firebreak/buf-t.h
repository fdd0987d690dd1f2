/* buf-t.h: a growable byte buffer with a hard maximum (curl's dynbuf idea). */
#ifndef FIREBREAK_BUF_T_H
#define FIREBREAK_BUF_T_H

#include <stddef.h>

struct fb_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t max; /* appending past max fails with -FB_ETOOBIG */
};

#endif
