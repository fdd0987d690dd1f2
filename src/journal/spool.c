/*
 * spool.c: the write journal's spool, STATE/journal-spool/ (docs/journal.md).
 *
 * The journal commits a batch by appending it to the newest segment of the spool with one
 * write(); a loader thread copies the records into journal.db afterwards and removes each
 * segment once every record of it is there. This file has the format and the file handling;
 * the threads are in journal.c.
 *
 * Segment "<first record id, 16 hex digits>.spool":
 *
 *   "FBSPOOL1"                                   header, 8 bytes
 *   frame*                                       one per record, ids ascending
 *
 *   frame:   u32 payload length | u32 CRC-32C of the payload | payload
 *   payload: i64 id | i64 time_ms | u32 duration_us | u32 upstream_us | u16 status |
 *            u16 flags (bit 0: a body follows) |
 *            9 x (u16 length, bytes): request_id service release method path route
 *                                     identity entity location
 *            u32 body length, body bytes
 *
 * Integers are little-endian. A text of length 0 is SQL NULL where the column allows it.
 * Every limit the encoder keeps, the decoder checks again: bytes that break one are not a
 * frame (a torn or damaged tail), never a record.
 *
 * Cost: encode and decode are one pass over the record's bytes plus the CRC (the SSE4.2
 * instruction where the CPU has it, eight bytes a step; else a table, one byte a step).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firebreak/err-t.h"
#include "firebreak/journal-t.h"
#include "firebreak/spool.h"

static const char magic[SPOOL_HEADER_SIZE] = {'F', 'B', 'S', 'P', 'O', 'O', 'L', '1'};

#define FIXED_SIZE (8 + 8 + 4 + 4 + 2 + 2)
#define FLAG_BODY 1u
#define SEGMENT_SUFFIX ".spool"
#define SEGMENT_NAME_LEN (16 + sizeof SEGMENT_SUFFIX - 1)
#define READ_CHUNK (256u * 1024u)

/* Largest length of each text column (bytes, without a NUL) and whether it may be empty. */
static const struct {
    uint32_t max;
    bool optional;
} limits[SPOOL_FIELDS] = {
    [SPOOL_REQUEST_ID] = {JOURNAL_ID_MAX - 1, true},
    [SPOOL_SERVICE] = {JOURNAL_NAME_MAX - 1, false},
    [SPOOL_RELEASE] = {JOURNAL_NAME_MAX - 1, false},
    [SPOOL_METHOD] = {15, false},
    [SPOOL_PATH] = {JOURNAL_PATH_MAX - 1, false},
    [SPOOL_ROUTE] = {JOURNAL_ROUTE_MAX - 1, false},
    [SPOOL_IDENTITY] = {JOURNAL_IDENTITY_MAX - 1, true},
    [SPOOL_ENTITY] = {JOURNAL_ENTITY_MAX - 1, true},
    [SPOOL_LOCATION] = {JOURNAL_LOCATION_MAX - 1, true},
};

#define PAYLOAD_MAX (FIXED_SIZE + 4 + SPOOL_BODY_MAX + SPOOL_FIELDS * (2 + JOURNAL_PATH_MAX))

/* ---- CRC-32C ---------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static bool crc_ready; /* the table is written once, the same bytes by any thread */

static void crc_init(void)
{
    uint32_t c, i, k;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
    __atomic_store_n(&crc_ready, true, __ATOMIC_RELEASE);
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *s, size_t n)
{
    if (!__atomic_load_n(&crc_ready, __ATOMIC_ACQUIRE))
        crc_init();
    while (n--)
        crc = crc_table[(crc ^ *s++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The SSE4.2 crc32 instruction computes the same CRC-32C, eight bytes a step. */
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *s,
                                                              size_t n)
{
    uint64_t c = crc, w;

    for (; n >= 8; n -= 8, s += 8) {
        memcpy(&w, s, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    crc = (uint32_t)c;
    while (n--)
        crc = __builtin_ia32_crc32qi(crc, *s++);
    return crc;
}

static bool have_sse42(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_sse42(uint32_t crc, const unsigned char *s, size_t n)
{
    return crc_soft(crc, s, n);
}

static bool have_sse42(void)
{
    return false;
}
#endif

uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n)
{
    static int hw = -1; /* -1 not looked yet; every thread finds the same answer */
    int use = __atomic_load_n(&hw, __ATOMIC_RELAXED);

    if (use < 0) {
        use = have_sse42();
        __atomic_store_n(&hw, use, __ATOMIC_RELAXED);
    }
    crc = ~crc;
    crc = use ? crc_sse42(crc, p, n) : crc_soft(crc, p, n);
    return ~crc;
}

/* ---- little-endian fields --------------------------------------------------------------- */

static unsigned char *put_u16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    p = put_u16(p, v & 0xFFFF);
    return put_u16(p, v >> 16);
}

static unsigned char *put_u64(unsigned char *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)v);
    return put_u32(p, (uint32_t)(v >> 32));
}

static uint32_t get_u16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    return get_u16(p) | get_u16(p + 2) << 16;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- frames ----------------------------------------------------------------------------- */

static bool text_ok(const struct spool_text *t, enum spool_field f)
{
    if (t->n > limits[f].max || (t->n && !t->p))
        return false;
    return t->n > 0 || limits[f].optional;
}

static bool row_ok(const struct spool_row *row)
{
    unsigned f;

    for (f = 0; f < SPOOL_FIELDS; f++)
        if (!text_ok(&row->text[f], f))
            return false;
    if (row->status < 0 || row->status > 0xFFFF)
        return false;
    return !row->has_body || (row->body_len <= SPOOL_BODY_MAX && (row->body || !row->body_len));
}

static size_t payload_size(const struct spool_row *row)
{
    size_t n = FIXED_SIZE + 4 + (row->has_body ? row->body_len : 0);
    unsigned f;

    for (f = 0; f < SPOOL_FIELDS; f++)
        n += 2 + row->text[f].n;
    return n;
}

int spool_encode(struct fb_buf *out, const struct spool_row *row)
{
    size_t n, start;
    unsigned char *p, *payload;
    unsigned f;
    int rc;

    if (!row_ok(row))
        return -FB_EINVAL;
    n = payload_size(row);
    rc = fb_buf_reserve(out, SPOOL_FRAME_HEAD + n);
    if (rc)
        return rc;
    start = out->len;
    payload = (unsigned char *)out->data + start + SPOOL_FRAME_HEAD;
    p = put_u64(payload, (uint64_t)row->id);
    p = put_u64(p, (uint64_t)row->time_ms);
    p = put_u32(p, row->duration_us);
    p = put_u32(p, row->upstream_us);
    p = put_u16(p, (uint32_t)row->status);
    p = put_u16(p, row->has_body ? FLAG_BODY : 0);
    for (f = 0; f < SPOOL_FIELDS; f++) {
        p = put_u16(p, row->text[f].n);
        if (row->text[f].n)
            memcpy(p, row->text[f].p, row->text[f].n);
        p += row->text[f].n;
    }
    p = put_u32(p, row->has_body ? row->body_len : 0);
    if (row->has_body && row->body_len)
        memcpy(p, row->body, row->body_len);
    p = (unsigned char *)out->data + start;
    p = put_u32(p, (uint32_t)n);
    put_u32(p, spool_crc32c(0, payload, n));
    out->len = start + SPOOL_FRAME_HEAD + n;
    return 0;
}

/* Reads the text columns and the body of payload (n bytes) after the fixed part. */
static bool decode_columns(const unsigned char *p, size_t n, struct spool_row *row)
{
    size_t at = FIXED_SIZE;
    unsigned f;

    for (f = 0; f < SPOOL_FIELDS; f++) {
        if (n - at < 2)
            return false;
        row->text[f].n = get_u16(p + at);
        row->text[f].p = (const char *)p + at + 2;
        at += 2;
        if (n - at < row->text[f].n || !text_ok(&row->text[f], f))
            return false;
        at += row->text[f].n;
    }
    if (n - at < 4)
        return false;
    row->body_len = get_u32(p + at);
    row->body = (const char *)p + at + 4;
    at += 4;
    if (!row->has_body && row->body_len)
        return false;
    if (row->body_len > SPOOL_BODY_MAX || n - at != row->body_len)
        return false;
    if (!row->has_body)
        row->body = NULL;
    return true;
}

int spool_decode(const void *buf, size_t n, struct spool_row *row, size_t *used)
{
    const unsigned char *p = buf;
    uint32_t len, flags;

    if (n < SPOOL_FRAME_HEAD)
        return -FB_EAGAIN;
    len = get_u32(p);
    if (len < FIXED_SIZE + SPOOL_FIELDS * 2 + 4 || len > PAYLOAD_MAX)
        return -FB_EINVAL;
    if (n - SPOOL_FRAME_HEAD < len)
        return -FB_EAGAIN;
    if (spool_crc32c(0, p + SPOOL_FRAME_HEAD, len) != get_u32(p + 4))
        return -FB_EINVAL;
    p += SPOOL_FRAME_HEAD;
    memset(row, 0, sizeof *row);
    row->id = (int64_t)get_u64(p);
    row->time_ms = (int64_t)get_u64(p + 8);
    row->duration_us = get_u32(p + 16);
    row->upstream_us = get_u32(p + 20);
    row->status = (int)get_u16(p + 24);
    flags = get_u16(p + 26);
    row->has_body = flags & FLAG_BODY;
    if ((flags & ~FLAG_BODY) || row->id <= 0 || !decode_columns(p, len, row))
        return -FB_EINVAL;
    *used = SPOOL_FRAME_HEAD + len;
    return 0;
}

/* ---- files ------------------------------------------------------------------------------ */

int spool_dir_make(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -FB_EIO;
}

int spool_segment_path(const char *dir, int64_t first, char *out, size_t outlen)
{
    int w = snprintf(out, outlen, "%s/%016" PRIx64 SEGMENT_SUFFIX, dir, (uint64_t)first);

    return w > 0 && (size_t)w < outlen ? 0 : -FB_EINVAL;
}

int spool_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    ssize_t w;

    while (n) {
        w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -FB_EIO;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int spool_segment_create(const char *dir, int64_t first, int *fd)
{
    char path[4096];
    int saved;

    *fd = -1;
    if (spool_segment_path(dir, first, path, sizeof path)) {
        errno = ENAMETOOLONG;
        return -FB_EIO;
    }
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (*fd < 0)
        return -FB_EIO;
    if (spool_write_all(*fd, magic, sizeof magic) == 0)
        return 0;
    saved = errno;
    close(*fd);
    unlink(path);
    *fd = -1;
    errno = saved;
    return -FB_EIO;
}

int spool_segment_open(const char *dir, int64_t first, int *fd)
{
    char path[4096], head[SPOOL_HEADER_SIZE];
    ssize_t r;

    *fd = -1;
    if (spool_segment_path(dir, first, path, sizeof path))
        return -FB_EINVAL;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? -FB_ENOENT : -FB_EIO;
    do
        r = pread(*fd, head, sizeof head, 0);
    while (r < 0 && errno == EINTR);
    if (r == (ssize_t)sizeof head && memcmp(head, magic, sizeof magic) == 0)
        return 0;
    close(*fd);
    *fd = -1;
    return r < 0 ? -FB_EIO : -FB_EINVAL;
}

/* The first id a segment file name stands for, or 0 when name is not a segment's. */
static int64_t segment_first(const char *name)
{
    uint64_t v = 0;
    size_t i;

    if (strlen(name) != SEGMENT_NAME_LEN || strcmp(name + 16, SEGMENT_SUFFIX) != 0)
        return 0;
    for (i = 0; i < 16; i++) {
        char c = name[i];
        unsigned d;

        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    return v > INT64_MAX ? 0 : (int64_t)v;
}

/* The segment of dir nearest to bound above it (up) or below it: 0 when none, -1 on error. */
static int64_t segment_near(const char *dir, int64_t bound, bool up)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int64_t best = 0, v;

    if (!d)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        v = segment_first(e->d_name);
        if (v == 0 || (up ? v <= bound : v >= bound))
            continue;
        if (best == 0 || (up ? v < best : v > best))
            best = v;
    }
    closedir(d);
    return best;
}

int spool_segment_next(const char *dir, int64_t after, int64_t *first)
{
    int64_t v = segment_near(dir, after, true);

    if (v > 0)
        *first = v;
    return v > 0 ? 0 : v == 0 ? -FB_ENOENT : -FB_EIO;
}

int spool_segment_prev(const char *dir, int64_t before, int64_t *first)
{
    int64_t v = segment_near(dir, before, false);

    if (v > 0)
        *first = v;
    return v > 0 ? 0 : v == 0 ? -FB_ENOENT : -FB_EIO;
}

int spool_segment_last(const char *dir, int64_t first, int64_t *last)
{
    struct fb_buf b;
    struct spool_row row;
    size_t used, at;
    ssize_t r;
    int fd, rc;

    *last = 0;
    rc = spool_segment_open(dir, first, &fd);
    if (rc)
        return rc;
    fb_buf_init(&b, SPOOL_READ_MAX);
    if (lseek(fd, SPOOL_HEADER_SIZE, SEEK_SET) < 0)
        rc = -FB_EIO;
    while (rc == 0) {
        if (fb_buf_reserve(&b, READ_CHUNK)) {
            rc = -FB_ENOMEM;
            break;
        }
        r = read(fd, b.data + b.len, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -FB_EIO : 0;
            break;
        }
        b.len += (size_t)r;
        for (at = 0; spool_decode(b.data + at, b.len - at, &row, &used) == 0; at += used)
            *last = row.id;
        if (spool_decode(b.data + at, b.len - at, &row, &used) == -FB_EINVAL)
            break; /* a damaged or torn tail: nothing after it counts */
        fb_buf_consume(&b, at);
    }
    fb_buf_release(&b);
    close(fd);
    return rc;
}
