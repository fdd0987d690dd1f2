/*
 * spool.h: the write journal's spool, STATE/journal-spool/ (src/journal/spool.c).
 *
 * The journal's commit is an append to the newest segment file of the spool; journal.db is
 * loaded from the spool afterwards. Frames carry a length and a CRC-32C, so a batch torn by
 * a crash is recognised and skipped, never loaded half.
 */
#ifndef FIREBREAK_SPOOL_H
#define FIREBREAK_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spool-t.h"

#define SPOOL_HEADER_SIZE 8       /* "FBSPOOL1" at the start of each segment */
#define SPOOL_FRAME_HEAD 8        /* u32 payload length, u32 CRC-32C of the payload */
#define SPOOL_BODY_MAX (1u << 20) /* largest body a frame may carry */
#define SPOOL_READ_MAX (4u << 20) /* a reader's buffer: room for the largest frame and more */

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * Appends row as one frame to out. Returns 0, -FB_EINVAL when a column is over its limit
 * (a text over 65535 bytes or beyond its journal limit, a body over SPOOL_BODY_MAX, a missing
 * service, release, method, path or route) with out unchanged, or -FB_ENOMEM / -FB_ETOOBIG
 * from out (unchanged too).
 */
int spool_encode(struct fb_buf *out, const struct spool_row *row);

/*
 * Decodes the frame at the start of p (n bytes) into row, whose pointers then borrow from p.
 * Returns 0 with *used the frame's size; -FB_EAGAIN when p holds only part of a frame (more
 * bytes may complete it); -FB_EINVAL when the bytes are not a frame (a bad length or checksum,
 * or a column breaking a limit spool_encode checks).
 */
int spool_decode(const void *p, size_t n, struct spool_row *row, size_t *used);

/* Makes the directory (mode 0700) when missing. Returns 0 or -FB_EIO (errno kept). */
int spool_dir_make(const char *dir);

/* The segment file of dir whose first record id is first: "<dir>/<16 hex digits>.spool". */
int spool_segment_path(const char *dir, int64_t first, char *out, size_t outlen);

/*
 * Creates the segment for first (mode 0600, exclusive) and writes its header. Returns 0 with
 * *fd open for appending, or -FB_EIO (errno kept; a half-made file is removed).
 */
int spool_segment_create(const char *dir, int64_t first, int *fd);

/* Opens the segment for first for reading and checks its header. Returns 0 with *fd, -FB_ENOENT
 * when it is gone, -FB_EINVAL when its header is not a spool's, or -FB_EIO. */
int spool_segment_open(const char *dir, int64_t first, int *fd);

/* The smallest first id of a segment of dir above after, in *first. Returns 0, -FB_ENOENT when
 * there is none, or -FB_EIO. Files that are not segments are ignored. */
int spool_segment_next(const char *dir, int64_t after, int64_t *first);

/* The largest first id of a segment of dir below before (INT64_MAX: the newest), as above. */
int spool_segment_prev(const char *dir, int64_t before, int64_t *first);

/* Writes all n bytes of p to fd (retrying short writes and EINTR). Returns 0 or -FB_EIO. */
int spool_write_all(int fd, const void *p, size_t n);

/*
 * The id of the last whole frame in the segment for first, in *last (0 when it holds none).
 * Returns 0, or the error of spool_segment_open.
 */
int spool_segment_last(const char *dir, int64_t first, int64_t *last);

#endif
