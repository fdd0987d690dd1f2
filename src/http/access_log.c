/*
 * access_log.c: one JSON object per request, appended to the worker's buffer
 * and written in batches (every 100 ms from the worker's tick, or at 64 KiB).
 *
 * Lines from different workers never interleave: each write(2) carries whole
 * lines to a file opened with O_APPEND. The log is off unless configured.
 */
#include <unistd.h>

#include "firebreak/access_log.h"
#include "firebreak/buf.h"
#include "firebreak/clock.h"
#include "firebreak/server-t.h"

#define ACCESS_LOG_BATCH 65536

/* Appends s as a JSON string body; only '"', '\\' and controls need escaping. */
static void put_json_str(struct fb_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fb_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fb_buf_printf(b, "\\u%04x", ch);
        else
            fb_buf_append(b, s, 1);
    }
}

void access_log_add(struct worker *w, const struct client *c)
{
    const struct exchange *ex = &c->ex;
    struct fb_buf *b = &w->log;
    uint64_t now = fb_mono_ns();
    char when[64];

    if (w->srv->access_log_fd < 0)
        return;
    fb_format_time(fb_wall_ms(), when);
    fb_buf_printf(b, "{\"time\":\"%s\",\"request_id\":\"", when);
    put_json_str(b, ex->request_id);
    fb_buf_puts(b, "\",\"service\":\"");
    put_json_str(b, ex->service);
    fb_buf_puts(b, "\",\"release\":\"");
    put_json_str(b, ex->release);
    fb_buf_printf(b, "\",\"method\":\"%s\",\"path\":\"", ex->method_name);
    put_json_str(b, ex->path);
    fb_buf_printf(b, "\",\"status\":%d,\"duration_ms\":%.3f,\"upstream_ms\":%.3f,"
                     "\"bytes_in\":%llu,\"bytes_out\":%llu,\"endpoint\":\"",
                  ex->status, (double)(now - ex->start_ns) / 1e6,
                  ex->upstream_ns ? (double)(ex->upstream_ns - ex->start_ns) / 1e6 : 0.0,
                  (unsigned long long)ex->bytes_in, (unsigned long long)ex->bytes_out);
    put_json_str(b, ex->endpoint);
    fb_buf_puts(b, "\",\"client\":\"");
    put_json_str(b, c->ip);
    fb_buf_puts(b, "\"}\n");
    if (b->len >= ACCESS_LOG_BATCH)
        access_log_flush(w);
}

void access_log_flush(struct worker *w)
{
    struct fb_buf *b = &w->log;
    size_t off = 0;
    ssize_t n;

    if (!b->len || w->srv->access_log_fd < 0)
        return;
    while (off < b->len) {
        n = write(w->srv->access_log_fd, b->data + off, b->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    fb_buf_reset(b);
}
