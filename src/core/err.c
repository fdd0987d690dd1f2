/*
 * err.c: lookups into the error table of err-t.h.
 *
 * The table is the single source of names, HTTP statuses and messages, so the
 * API, the proxy and the CLI print the same words for the same failure.
 */
#include "firebreak/err.h"

struct err_row {
    const char *name;
    int status;
    const char *message;
};

static const struct err_row err_rows[FB_ERR_COUNT_] = {
    [FB_OK] = {"ok", 200, "ok"},
#define FB_ERR_ROW_(code, name, status, msg) [FB_E##code] = {name, status, msg},
    FB_ERR_MAP(FB_ERR_ROW_)
#undef FB_ERR_ROW_
};

static const struct err_row *err_row(int err)
{
    int code = -err;

    if (code < 0 || code >= FB_ERR_COUNT_)
        code = FB_EIO;
    return &err_rows[code];
}

const char *fb_err_name(int err)
{
    return err_row(err)->name;
}

const char *fb_err_message(int err)
{
    return err_row(err)->message;
}

int fb_err_status(int err)
{
    return err_row(err)->status;
}
