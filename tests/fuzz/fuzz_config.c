/*
 * fuzz_config.c: config_parse() on arbitrary bytes never crashes or leaks.
 *
 * On success the config is complete (every service has a release and a
 * stable one, every address has its text); on failure the error's path and
 * message are NUL-terminated, its line and column are not negative, and
 * config_error_format() fits any buffer it is given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "firebreak/config.h"
#include "firebreak/err-t.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const struct config *cfg)
{
    size_t i, j;

    if (!cfg->listen.text || !cfg->admin_listen.text || cfg->nservices == 0 || cfg->workers == 0)
        abort();
    for (i = 0; i < cfg->nservices; i++) {
        const struct cfg_service *s = &cfg->services[i];

        if (!s->name || !s->stable || s->nreleases == 0 || s->nsteps == 0)
            abort();
        for (j = 0; j < s->nreleases; j++)
            if (!s->releases[j].name || s->releases[j].nendpoints == 0 ||
                !s->releases[j].endpoints[0].text)
                abort();
        if (s->steps[s->nsteps - 1].weight != 100)
            abort();
    }
}

static void check_error(const struct config_error *err)
{
    char small[16], line[600];

    if (!memchr(err->path, '\0', sizeof err->path) ||
        !memchr(err->message, '\0', sizeof err->message) || err->message[0] == '\0')
        abort();
    if (err->line < 0 || err->column < 0)
        abort();
    config_error_format(err, "fuzz.yaml", small, sizeof small);
    config_error_format(err, "fuzz.yaml", line, sizeof line);
    if (strlen(small) >= sizeof small || strlen(line) >= sizeof line)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_error err;
    struct config *cfg = NULL;
    int rc;

    memset(&err, 0xa5, sizeof err);
    rc = config_parse("fuzz.yaml", (const char *)data, size, &cfg, &err);
    if (rc == 0) {
        check_config(cfg);
        config_free(cfg);
    } else {
        if (cfg || (rc != -FB_ECONFIG && rc != -FB_ENOMEM))
            abort();
        check_error(&err);
    }
    return 0;
}
