/*
 * tmpdir.h: a fresh directory under /tmp per cmocka test, removed with all it
 * holds afterwards. The runner defines TMPDIR_PREFIX (e.g. "fb-store") and
 * TMPDIR_FILE (the database path inside it, e.g. "state/firebreak.db"), then
 * uses tmpdir_setup / tmpdir_teardown as the test's setup and teardown.
 */
#ifndef FIREBREAK_TESTS_TMPDIR_H
#define FIREBREAK_TESTS_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

struct fixture {
    char dir[256];
    char path[320];
};

static int tmpdir_rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int tmpdir_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/" TMPDIR_PREFIX "-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/" TMPDIR_FILE, fx->dir);
    *state = fx;
    return 0;
}

static int tmpdir_teardown(void **state)
{
    struct fixture *fx = *state;

    nftw(fx->dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

#endif
