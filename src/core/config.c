/*
 * config.c: firebreak.yaml (or JSON, which is YAML too) into a struct config.
 *
 * Two passes. The first turns libyaml's events into a small tree of nodes
 * (scalar, mapping, list), each with its 1-based line and column. It refuses
 * anchors, aliases, tags, a second document, nesting deeper than CFG_MAX_DEPTH
 * and more than CFG_MAX_NODES values, so the second pass never sees a shared
 * or unbounded structure. The second pass walks the tree against the key
 * tables at the end of this file: one row per key gives its name, its type
 * (a handler), where the value goes, its default written as it would be in
 * the file (so defaults are read by the same code as the file) and one
 * sentence of documentation. config_keys_each() walks the same tables, so the
 * docs can be checked against them. Rules that span keys (stable release,
 * weights, rollout steps, unique names, distinct listeners) run as a table's
 * check once all of its keys are read.
 *
 * Invariants: the first error is the one reported, with the key path, line
 * and column of the node that caused it; a struct config is either complete
 * or freed; an array's count is set together with the array, so config_free()
 * also frees a config abandoned half way.
 * Cost: linear in the size of the file, apart from the unique-name checks,
 * quadratic in the number of services (at most 1000) and releases (64).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "firebreak/config.h"
#include "firebreak/err-t.h"

#define CFG_MAX_FILE (4u << 20) /* bytes */
#define CFG_MAX_DEPTH 32        /* nested mappings and lists */
#define CFG_MAX_NODES 250000    /* scalars, mappings and lists in one file */
#define CFG_MAX_KEYS 16         /* keys in one table */
#define CFG_MAX_NAME 64         /* service and release names */
#define CFG_MAX_TOKEN 128       /* header and cookie names */
#define CFG_MAX_TEXT 4096       /* paths, URLs, titles */
#define CFG_MAX_MS 86400000u    /* durations: 24 h */
#define CFG_DEFAULTS_CACHED 8   /* distinct mapping or list defaults */
#define SHOW_MAX 48             /* user text quoted in a message */

_Static_assert(sizeof(enum cfg_sticky_kind) == sizeof(int), "choice kinds are stored as int");
_Static_assert(sizeof(enum cfg_identity_kind) == sizeof(int), "choice kinds are stored as int");
_Static_assert(sizeof(enum cfg_access_log) == sizeof(int), "access_log is stored as int");

/* ---- the node tree -------------------------------------------------------------------------- */

enum cnode_kind { CN_SCALAR, CN_MAP, CN_SEQ };

struct cnode {
    enum cnode_kind kind;
    bool plain;    /* scalar written without quotes: may be a number, bool or null */
    int line, col; /* 1-based; 0 for defaults */
    char *text;    /* scalars: NUL-terminated, no NUL inside */
    size_t len;
    struct cnode **kids; /* mappings: key, value, key, value...; lists: the items */
    size_t nkids, cap;
};

/* The walk's context: where it is, and the first error. */
struct ld {
    struct config_error *err;
    char path[sizeof(((struct config_error *)0)->path)];
    size_t plen;
    size_t nnodes;
    bool failed;
    struct {
        const char *def;
        struct cnode *node;
    } defaults[CFG_DEFAULTS_CACHED];
};

static struct cnode empty_map = {.kind = CN_MAP};

static void node_free(struct cnode *n)
{
    size_t i;

    if (!n || n == &empty_map)
        return;
    for (i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static bool node_is_null(const struct cnode *n)
{
    return n->kind == CN_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
            strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0);
}

static const char *node_what(const struct cnode *n)
{
    if (n->kind == CN_MAP)
        return "a mapping";
    if (n->kind == CN_SEQ)
        return "a list";
    if (node_is_null(n))
        return "an empty value";
    return n->plain ? "a plain value" : "a quoted string";
}

/* The value node of key in map, or NULL; borrowed from map. */
static const struct cnode *map_get(const struct cnode *map, const char *key)
{
    size_t i;

    if (!map || map->kind != CN_MAP)
        return NULL;
    for (i = 0; i + 1 < map->nkids; i += 2)
        if (map->kids[i]->kind == CN_SCALAR && strcmp(map->kids[i]->text, key) == 0)
            return map->kids[i + 1];
    return NULL;
}

/* ---- errors and the key path ---------------------------------------------------------------- */

/* Copies up to SHOW_MAX - 4 bytes of s into buf for a message, '?' for control bytes. */
static const char *show(const char *s, char *buf)
{
    size_t i;

    for (i = 0; s[i] && i < SHOW_MAX - 4; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static int ld_vfail(struct ld *ld, int line, int col, int rc, const char *fmt, va_list ap)
{
    if (ld->failed)
        return rc;
    ld->failed = true;
    memcpy(ld->err->path, ld->path, ld->plen + 1);
    ld->err->line = line;
    ld->err->column = col;
    vsnprintf(ld->err->message, sizeof ld->err->message, fmt, ap);
    return rc;
}

__attribute__((format(printf, 5, 6))) static int ld_fail_at(struct ld *ld, int line, int col,
                                                            int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = ld_vfail(ld, line, col, rc, fmt, ap);
    va_end(ap);
    return rc;
}

/* Records a configuration error at node n (NULL: no line) and returns -FB_ECONFIG. */
__attribute__((format(printf, 3, 4))) static int ld_fail(struct ld *ld, const struct cnode *n,
                                                         const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = ld_vfail(ld, n ? n->line : 0, n ? n->col : 0, -FB_ECONFIG, fmt, ap);
    va_end(ap);
    return rc;
}

static int ld_nomem(struct ld *ld)
{
    return ld_fail_at(ld, 0, 0, -FB_ENOMEM, "out of memory");
}

/* Appends to the key path (cut at the buffer's end); returns the length to restore. */
__attribute__((format(printf, 2, 3))) static size_t path_push(struct ld *ld, const char *fmt, ...)
{
    size_t old = ld->plen;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(ld->path + old, sizeof ld->path - old, fmt, ap);
    va_end(ap);
    if (n > 0)
        ld->plen = old + (size_t)n < sizeof ld->path ? old + (size_t)n : sizeof ld->path - 1;
    return old;
}

static size_t path_key(struct ld *ld, const char *key)
{
    char buf[SHOW_MAX];

    return path_push(ld, ld->plen ? ".%s" : "%s", show(key, buf));
}

static size_t path_index(struct ld *ld, size_t i)
{
    return path_push(ld, "[%zu]", i);
}

static void path_pop(struct ld *ld, size_t len)
{
    ld->plen = len;
    ld->path[len] = '\0';
}

/* Optimal string alignment distance (a swap of two letters counts 1), capped inputs. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t rows[3][CFG_MAX_NAME + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2], *t;

    if (la > CFG_MAX_NAME || lb > CFG_MAX_NAME)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        prev[j] = j;
    for (i = 1; i <= la; i++) {
        cur[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1, best = prev[j - 1] + cost;

            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* Keeps in *best the candidate closest to key, if close enough to be a typo. */
static void suggest(const char *key, const char *candidate, const char **best, size_t *bestd)
{
    size_t d = edit_distance(key, candidate), len = strlen(key);
    size_t limit = len / 3 > 1 ? len / 3 : 1;

    if (d <= limit && d < len && d < *bestd) {
        *best = candidate;
        *bestd = d;
    }
}

/* ---- pass 1: libyaml events into a tree ----------------------------------------------------- */

struct builder {
    struct cnode *root;
    struct cnode *open[CFG_MAX_DEPTH];
    int depth;
    int docs;
};

static int mark_num(size_t v)
{
    return v >= INT_MAX ? INT_MAX : (int)v + 1;
}

static int node_new(struct ld *ld, enum cnode_kind kind, const yaml_mark_t *m, struct cnode **out)
{
    struct cnode *n;

    if (ld->nnodes >= CFG_MAX_NODES)
        return ld_fail_at(ld, mark_num(m->line), mark_num(m->column), -FB_ECONFIG,
                          "more than %d values in the file", CFG_MAX_NODES);
    n = calloc(1, sizeof *n);
    if (!n)
        return ld_nomem(ld);
    ld->nnodes++;
    n->kind = kind;
    n->line = mark_num(m->line);
    n->col = mark_num(m->column);
    *out = n;
    return 0;
}

/* Hangs n under the open mapping or list (or makes it the root); takes ownership of n. */
static int builder_attach(struct ld *ld, struct builder *b, struct cnode *n)
{
    struct cnode *parent, **kids;
    size_t cap;

    if (b->depth == 0) {
        node_free(b->root);
        b->root = n;
        return 0;
    }
    parent = b->open[b->depth - 1];
    if (parent->nkids == parent->cap) {
        cap = parent->cap ? parent->cap * 2 : 4;
        kids = realloc(parent->kids, cap * sizeof *kids);
        if (!kids) {
            node_free(n);
            return ld_nomem(ld);
        }
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = n;
    return 0;
}

static int builder_refuse(struct ld *ld, const yaml_event_t *ev, const yaml_char_t *anchor,
                          const yaml_char_t *tag)
{
    int line = mark_num(ev->start_mark.line), col = mark_num(ev->start_mark.column);
    char buf[SHOW_MAX];

    if (anchor)
        return ld_fail_at(ld, line, col, -FB_ECONFIG,
                          "anchors (&%s) are not supported; write the value out",
                          show((const char *)anchor, buf));
    if (tag)
        return ld_fail_at(ld, line, col, -FB_ECONFIG, "tags (%s) are not supported",
                          show((const char *)tag, buf));
    return 0;
}

static int builder_scalar(struct ld *ld, struct builder *b, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct cnode *n = NULL;
    int rc;

    rc = builder_refuse(ld, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (rc == 0)
        rc = node_new(ld, CN_SCALAR, &ev->start_mark, &n);
    if (rc)
        return rc;
    if (memchr(v, '\0', len)) {
        rc = ld_fail(ld, n, "a string contains a NUL character");
        node_free(n);
        return rc;
    }
    n->text = malloc(len + 1);
    if (!n->text) {
        node_free(n);
        return ld_nomem(ld);
    }
    memcpy(n->text, v, len);
    n->text[len] = '\0';
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return builder_attach(ld, b, n);
}

static int builder_open(struct ld *ld, struct builder *b, const yaml_event_t *ev)
{
    bool is_map = ev->type == YAML_MAPPING_START_EVENT;
    struct cnode *n = NULL;
    int rc;

    rc = is_map
             ? builder_refuse(ld, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag)
             : builder_refuse(ld, ev, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    if (rc == 0 && b->depth == CFG_MAX_DEPTH)
        rc = ld_fail_at(ld, mark_num(ev->start_mark.line), mark_num(ev->start_mark.column),
                        -FB_ECONFIG, "nested deeper than %d levels", CFG_MAX_DEPTH);
    if (rc == 0)
        rc = node_new(ld, is_map ? CN_MAP : CN_SEQ, &ev->start_mark, &n);
    if (rc == 0)
        rc = builder_attach(ld, b, n);
    if (rc == 0)
        b->open[b->depth++] = n;
    return rc;
}

static int builder_event(struct ld *ld, struct builder *b, const yaml_event_t *ev, bool *done)
{
    int line = mark_num(ev->start_mark.line), col = mark_num(ev->start_mark.column);
    char buf[SHOW_MAX];

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs++ > 0)
            return ld_fail_at(ld, line, col, -FB_ECONFIG,
                              "a second YAML document; the file holds exactly one");
        return 0;
    case YAML_ALIAS_EVENT:
        return ld_fail_at(ld, line, col, -FB_ECONFIG,
                          "aliases (*%s) are not supported; write the value out",
                          show((const char *)ev->data.alias.anchor, buf));
    case YAML_SCALAR_EVENT:
        return builder_scalar(ld, b, ev);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return builder_open(ld, b, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    default:
        return 0;
    }
}

/* 1-based line and column of a byte offset, for errors libyaml reports by offset. */
static void offset_pos(const char *text, size_t len, size_t off, int *line, int *col)
{
    size_t i, l = 1, c = 1;

    for (i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l > INT_MAX ? INT_MAX : (int)l;
    *col = c > INT_MAX ? INT_MAX : (int)c;
}

static int yaml_fail(struct ld *ld, const yaml_parser_t *p, const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "unreadable input";
    int line, col;

    if (p->error == YAML_MEMORY_ERROR)
        return ld_nomem(ld);
    if (p->error == YAML_READER_ERROR) {
        offset_pos(text, len, p->problem_offset, &line, &col);
        return ld_fail_at(ld, line, col, -FB_ECONFIG, "unreadable text: %s", problem);
    }
    line = mark_num(p->problem_mark.line);
    col = mark_num(p->problem_mark.column);
    if (p->context)
        return ld_fail_at(ld, line, col, -FB_ECONFIG, "YAML syntax: %s (%s at line %d)", problem,
                          p->context, mark_num(p->context_mark.line));
    return ld_fail_at(ld, line, col, -FB_ECONFIG, "YAML syntax: %s", problem);
}

/*
 * Key path of the place the builder has reached, for errors found while building: every open
 * container but the innermost has its open child last. The innermost is about to get a child
 * (next set) or, after a syntax error, is best named by the child it got last.
 */
static void builder_path(struct ld *ld, const struct builder *b, bool next)
{
    const struct cnode *c;
    int i;

    path_pop(ld, 0);
    for (i = 0; i < b->depth; i++) {
        bool innermost = i == b->depth - 1;

        c = b->open[i];
        if (c->kind == CN_SEQ && innermost && next)
            path_index(ld, c->nkids);
        else if (c->kind == CN_SEQ && c->nkids > 0)
            path_index(ld, c->nkids - 1);
        else if (c->kind == CN_MAP && innermost && c->nkids % 2 == 1)
            path_key(ld,
                     c->kids[c->nkids - 1]->kind == CN_SCALAR ? c->kids[c->nkids - 1]->text : "?");
        else if (c->kind == CN_MAP && !innermost && c->nkids >= 2 && c->nkids % 2 == 0)
            path_key(ld,
                     c->kids[c->nkids - 2]->kind == CN_SCALAR ? c->kids[c->nkids - 2]->text : "?");
    }
}

/* Parses text into *root (NULL for an empty document); the caller frees it with node_free. */
static int tree_build(struct ld *ld, const char *text, size_t len, struct cnode **root)
{
    struct builder b = {0};
    yaml_parser_t parser;
    yaml_event_t ev;
    bool done = false, syntax = false;
    int rc = 0;

    if (!yaml_parser_initialize(&parser))
        return ld_nomem(ld);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (rc == 0 && !done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_fail(ld, &parser, text, len);
            syntax = true;
            break;
        }
        rc = builder_event(ld, &b, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc == 0) {
        *root = b.root;
        b.root = NULL;
    } else if (rc != -FB_ENOMEM) {
        builder_path(ld, &b, !syntax);
        memcpy(ld->err->path, ld->path, ld->plen + 1);
        path_pop(ld, 0);
    }
    node_free(b.root);
    return rc;
}

/* ---- scalar readers (pure) ------------------------------------------------------------------ */

/* Decimal digits only, at most maxdigits of them. */
static bool read_digits(const char *s, size_t len, size_t maxdigits, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > maxdigits)
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool read_uint(const char *s, uint64_t *out)
{
    return read_digits(s, strlen(s), 18, out);
}

/* "8192", "8KiB", "1MiB", "512B". */
static bool read_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}};
    size_t n = strspn(s, "0123456789"), i;
    uint64_t v = 0;

    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + n, units[i].unit) == 0 && read_digits(s, n, 12, &v)) {
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

/* "500ms", "10s", "2m", "1h"; a bare integer is milliseconds when bare_ms. */
static bool read_duration(const char *s, bool bare_ms, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    size_t n = strspn(s, "0123456789"), i;
    uint64_t v = 0;

    if (!read_digits(s, n, 12, &v))
        return false;
    if (s[n] == '\0' && bare_ms) {
        *ms = v;
        return true;
    }
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + n, units[i].unit) == 0) {
            *ms = v * units[i].mult;
            return true;
        }
    }
    return false;
}

/* A percentage with at most two decimals, in hundredths: "33.33" is 3333. */
static bool read_hundredths(const char *s, size_t len, uint32_t *out)
{
    size_t n = strspn(s, "0123456789");
    uint64_t whole, frac = 0;

    if (n > len)
        n = len;
    if (!read_digits(s, n, 3, &whole))
        return false;
    if (n < len) {
        size_t fl = len - n - 1;

        if (s[n] != '.' || !read_digits(s + n + 1, fl, 2, &frac))
            return false;
        if (fl == 1)
            frac *= 10;
    }
    *out = (uint32_t)(whole * 100 + frac);
    return true;
}

/* A plain decimal number: "-1", "0.001", "2.5e-3"; no hex, inf or nan. */
static bool read_number(const char *s, double *out)
{
    const char *p = s;
    char *end;
    size_t d;

    if (*p == '-' || *p == '+')
        p++;
    d = strspn(p, "0123456789");
    p += d;
    if (*p == '.') {
        size_t fd = strspn(p + 1, "0123456789");

        d += fd;
        p += 1 + fd;
    }
    if (d == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (strspn(p, "0123456789") == 0)
            return false;
        p += strspn(p, "0123456789");
    }
    if (*p != '\0')
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && *end == '\0' && isfinite(*out);
}

/* An HTTP token (RFC 9110 section 5.6.2): what header and cookie names are made of. */
static bool is_token(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* ---- addresses ------------------------------------------------------------------------------ */

static bool read_port(const char *s, uint16_t *port)
{
    uint64_t v = 0;

    if (!read_digits(s, strlen(s), 5, &v) || v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* Splits "HOST:PORT" or "[HOST]:PORT"; host is copied into host[hostlen]. */
static bool split_host_port(const char *s, char *host, size_t hostlen, bool *v6, const char **port,
                            const char **why)
{
    const char *end, *colon;
    size_t n = 0;

    *v6 = s[0] == '[';
    if (*v6) {
        end = strchr(s, ']');
        if (!end) {
            *why = "missing ']' after the IPv6 address";
            return false;
        }
        if (end[1] != ':') {
            *why = "missing :PORT after ']'";
            return false;
        }
        s++;
        colon = end + 1;
        n = (size_t)(end - s);
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *why = "missing :PORT";
            return false;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            *why = "an IPv6 address goes in brackets, e.g. [::1]:8080";
            return false;
        }
        n = (size_t)(colon - s);
    }
    if (n == 0 || n >= hostlen) {
        *why = n ? "the host is too long" : "missing host (0.0.0.0 means every IPv4 address)";
        return false;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    *port = colon + 1;
    return true;
}

static bool host_to_sockaddr(const char *host, bool v6, uint16_t port, struct sockaddr_storage *ss,
                             socklen_t *len, const char **why)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof *ss);
    if (v6) {
        if (strchr(host, '%')) {
            *why = "IPv6 zone ids are not supported";
            return false;
        }
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            *why = "not an IPv6 address";
            return false;
        }
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *len = sizeof *s6;
        return true;
    }
    if (strcasecmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
        *why = strspn(host, "0123456789.") == strlen(host)
                   ? "not an IPv4 address"
                   : "host names are not resolved; use an IP address or localhost";
        return false;
    }
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof *s4;
    return true;
}

static int addr_parse(const char *s, struct cfg_addr *out, const char **why)
{
    char host[64];
    const char *port_text;
    uint16_t port;
    bool v6;

    memset(out, 0, sizeof *out);
    *why = NULL;
    if (!split_host_port(s, host, sizeof host, &v6, &port_text, why))
        return -FB_EINVAL;
    if (!read_port(port_text, &port)) {
        *why = "the port must be a number from 1 to 65535";
        return -FB_EINVAL;
    }
    if (!host_to_sockaddr(host, v6, port, &out->addr, &out->addr_len, why)) {
        memset(out, 0, sizeof *out);
        return -FB_EINVAL;
    }
    out->text = strdup(s);
    if (!out->text) {
        memset(out, 0, sizeof *out);
        return -FB_ENOMEM;
    }
    return 0;
}

int config_parse_addr(const char *text, struct cfg_addr *out)
{
    const char *why;

    if (!text) {
        memset(out, 0, sizeof *out);
        return -FB_EINVAL;
    }
    return addr_parse(text, out, &why);
}

void config_addr_release(struct cfg_addr *addr)
{
    free(addr->text);
    memset(addr, 0, sizeof *addr);
}

static bool addr_is_any(const struct cfg_addr *a)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->addr;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->addr;

    if (a->addr.ss_family == AF_INET)
        return s4->sin_addr.s_addr == htonl(INADDR_ANY);
    return a->addr.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
}

static uint16_t addr_port(const struct cfg_addr *a)
{
    if (a->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

/* Would two listeners on a and b collide? */
static bool addr_clash(const struct cfg_addr *a, const struct cfg_addr *b)
{
    if (!a->text || !b->text || addr_port(a) != addr_port(b))
        return false;
    if (addr_is_any(a) || addr_is_any(b))
        return true;
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/* ---- the tables' types ---------------------------------------------------------------------- */

struct ckey;
struct ctable;

/* Reads node n for key k into the struct at base (the field is at base + k->off). */
typedef int (*ckey_parse_fn)(struct ld *ld, const struct ckey *k, const struct cnode *n,
                             char *base);
/* Cross-key rules of a table, run after its keys; map is the mapping it was read from. */
typedef int (*ctable_check_fn)(struct ld *ld, const struct cnode *map, char *base);

struct ctype {
    const char *name; /* for docs */
    ckey_parse_fn parse;
};

/* One accepted key of a one-key mapping such as sticky: {cookie: NAME}. */
struct cchoice {
    const char *key;
    int kind;          /* stored at the key's off */
    const char *fixed; /* the only value accepted, or NULL for a header or cookie name */
    const char *store; /* with fixed: stored at the key's aux (NULL: nothing) */
    const char *doc;
};

enum ckey_flag {
    F_REQUIRED = 1 << 0, /* absent is an error */
    F_SEEN = 1 << 1,     /* set the bool at seen when the key is in the file */
};

struct ckey {
    const char *name;
    const struct ctype *type;
    size_t off;  /* the field, from the base of the struct being filled */
    size_t aux;  /* lists: the count; access_log, choices: the name */
    size_t seen; /* with F_SEEN */
    unsigned flags;
    const char *def;               /* default as written in the file; NULL: none */
    double min, max;               /* numbers, sizes, durations (ms), list and text lengths */
    const struct ctable *sub;      /* sections: the keys inside */
    const struct ckey *item;       /* lists: how one item is read (its off is 0) */
    size_t size;                   /* lists: the size of one item */
    const struct cchoice *choices; /* choices, ended by a NULL key */
    const char *doc;
};

struct ctable {
    const struct ckey *keys;
    size_t nkeys;
    ctable_check_fn check;
};

static int table_apply(struct ld *ld, const struct ctable *t, const struct cnode *map, char *base);

/* ---- type handlers -------------------------------------------------------------------------- */

/* The text of a scalar holding a value; anything else is an error naming what was expected. */
static int want_scalar(struct ld *ld, const struct cnode *n, const char *expected, const char **out)
{
    if (n->kind != CN_SCALAR || node_is_null(n))
        return ld_fail(ld, n, "expected %s, got %s", expected, node_what(n));
    *out = n->text;
    return 0;
}

/* A copy of a string value of at most k->max bytes without control characters. */
static int want_text(struct ld *ld, const struct ckey *k, const struct cnode *n,
                     const char *expected, char **out)
{
    const char *s = NULL;
    int rc = want_scalar(ld, n, expected, &s);

    if (rc)
        return rc;
    if (n->len > (size_t)k->max)
        return ld_fail(ld, n, "longer than %.0f bytes", k->max);
    if (has_control(s))
        return ld_fail(ld, n, "contains a control character");
    *out = strdup(s);
    return *out ? 0 : ld_nomem(ld);
}

static int parse_addr(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    struct cfg_addr *dst = (struct cfg_addr *)(base + k->off);
    char buf[SHOW_MAX];
    const char *s = NULL, *why;
    int rc = want_scalar(ld, n, "an address such as 127.0.0.1:8080", &s);

    if (rc)
        return rc;
    rc = addr_parse(s, dst, &why);
    if (rc == -FB_ENOMEM)
        return ld_nomem(ld);
    if (rc)
        return ld_fail(ld, n,
                       "bad address '%s': %s (write IPv4:PORT, [IPv6]:PORT or "
                       "localhost:PORT)",
                       show(s, buf), why);
    return 0;
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > 64 ? 64 : (unsigned)n;
}

static int parse_workers(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    unsigned *dst = (unsigned *)(base + k->off);
    char buf[SHOW_MAX];
    const char *s = NULL;
    uint64_t v = 0;
    int rc = want_scalar(ld, n, "a number of workers or auto", &s);

    if (rc)
        return rc;
    if (strcmp(s, "auto") == 0) {
        *dst = online_cores();
        return 0;
    }
    if (!n->plain)
        return ld_fail(ld, n,
                       "expected a number from %.0f to %.0f or 'auto', got the quoted "
                       "string '%s'; numbers take no quotes",
                       k->min, k->max, show(s, buf));
    if (!read_uint(s, &v) || v < k->min || v > k->max)
        return ld_fail(ld, n, "expected a number from %.0f to %.0f or 'auto', got '%s'", k->min,
                       k->max, show(s, buf));
    *dst = (unsigned)v;
    return 0;
}

static int parse_access_log(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on"};
    char **path = (char **)(base + k->aux);
    int kind = CFG_LOG_FILE;
    size_t i;
    int rc;

    if (n->kind == CN_SCALAR && strcmp(n->text, "off") == 0)
        kind = CFG_LOG_OFF;
    else if (n->kind == CN_SCALAR && strcmp(n->text, "stdout") == 0)
        kind = CFG_LOG_STDOUT;
    for (i = 0; n->kind == CN_SCALAR && n->plain && i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(n->text, words[i]) == 0)
            return ld_fail(ld, n, "expected off, stdout or a file path, got '%s'", n->text);
    if (kind == CFG_LOG_FILE) {
        rc = want_text(ld, k, n, "off, stdout or a file path", path);
        if (rc)
            return rc;
    }
    memcpy(base + k->off, &kind, sizeof kind);
    return 0;
}

static int parse_text(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    return want_text(ld, k, n, "a string", (char **)(base + k->off));
}

static int parse_store(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX];
    int rc = want_text(ld, k, n, "a postgres:// URL", dst);

    if (rc)
        return rc;
    if (strncmp(*dst, "postgres://", 11) != 0 && strncmp(*dst, "postgresql://", 13) != 0)
        return ld_fail(ld, n, "expected a postgres:// or postgresql:// URL, got '%s'",
                       show(*dst, buf));
    if (strpbrk(*dst, " \t"))
        return ld_fail(ld, n, "a URL has no spaces (percent-encode them as %%20)");
    return 0;
}

static int parse_name(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX];
    int rc = want_text(ld, k, n, "a name", dst);

    if (rc)
        return rc;
    if (strspn(*dst, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n->len)
        return ld_fail(ld, n, "bad name '%s': use letters, digits, '_', '.' and '-'",
                       show(*dst, buf));
    return 0;
}

static int parse_host(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX], *p;
    int rc = want_text(ld, k, n, "'*' or a host name", dst);

    if (rc)
        return rc;
    if (strcmp(*dst, "*") == 0)
        return 0;
    if (strchr(*dst, ':'))
        return ld_fail(ld, n, "'%s': match a host name without a port", show(*dst, buf));
    if (strspn(*dst, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-") !=
            n->len ||
        (*dst)[0] == '.' || (*dst)[0] == '-')
        return ld_fail(ld, n, "expected '*' or a host name such as shop.example.com, got '%s'",
                       show(*dst, buf));
    for (p = *dst; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

static int parse_prefix(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX];
    int rc = want_text(ld, k, n, "a path prefix such as /api/", dst);

    if (rc)
        return rc;
    if ((*dst)[0] != '/')
        return ld_fail(ld, n, "a path prefix starts with '/', got '%s'", show(*dst, buf));
    if (strpbrk(*dst, " ?#"))
        return ld_fail(ld, n, "a path prefix has no spaces, '?' or '#', got '%s'", show(*dst, buf));
    return 0;
}

/* Integers, with units when units is set; the value must lie within k->min..k->max. */
static int want_count(struct ld *ld, const struct ckey *k, const struct cnode *n, bool units,
                      uint64_t *v)
{
    char buf[SHOW_MAX];
    const char *s = NULL;
    int rc = want_scalar(ld, n, units ? "a size such as 8KiB" : "an integer", &s);

    if (rc)
        return rc;
    if (!units && !n->plain)
        return ld_fail(ld, n,
                       "expected a whole number, got the quoted string '%s'; numbers "
                       "take no quotes",
                       show(s, buf));
    if (units ? !read_size(s, v) : !read_uint(s, v))
        return ld_fail(ld, n,
                       units ? "bad size '%s': write a number of bytes, or use KiB or "
                               "MiB (e.g. 16KiB)"
                             : "expected a whole number, got '%s'",
                       show(s, buf));
    if (*v < k->min || *v > k->max)
        return ld_fail(ld, n, "must be from %.0f to %.0f%s", k->min, k->max, units ? " bytes" : "");
    return 0;
}

static int parse_size(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    uint64_t v = 0;
    int rc = want_count(ld, k, n, true, &v);

    if (rc == 0)
        *(size_t *)(base + k->off) = (size_t)v;
    return rc;
}

static int parse_uint(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    uint64_t v = 0;
    int rc = want_count(ld, k, n, false, &v);

    if (rc == 0)
        *(unsigned *)(base + k->off) = (unsigned)v;
    return rc;
}

static int parse_count(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    uint64_t v = 0;
    int rc = want_count(ld, k, n, false, &v);

    if (rc == 0)
        *(size_t *)(base + k->off) = (size_t)v;
    return rc;
}

static int parse_duration(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char buf[SHOW_MAX];
    const char *s = NULL;
    uint64_t ms;
    int rc = want_scalar(ld, n, "a duration such as 10s", &s);

    if (rc)
        return rc;
    if (!read_duration(s, true, &ms))
        return ld_fail(ld, n,
                       "bad duration '%s': write a whole number with ms, s, m or h "
                       "(500ms, 10s, 2m), or milliseconds",
                       show(s, buf));
    if (ms < k->min)
        return ld_fail(ld, n, "must be greater than 0");
    if (ms > k->max)
        return ld_fail(ld, n, "must be at most 24h");
    *(uint64_t *)(base + k->off) = ms;
    return 0;
}

static int parse_bool(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    static const char *const yes[] = {"true", "True", "TRUE"}, *const no[] = {"false", "False",
                                                                              "FALSE"};
    bool *dst = (bool *)(base + k->off);
    char buf[SHOW_MAX];
    const char *s = NULL;
    size_t i;
    int rc = want_scalar(ld, n, "true or false", &s);

    if (rc)
        return rc;
    if (!n->plain)
        return ld_fail(ld, n, "expected true or false, got a quoted string");
    for (i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *dst = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return ld_fail(ld, n, "expected true or false, got '%s'", show(s, buf));
}

/* A number strictly between k->min and k->max. */
static int parse_ratio(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char buf[SHOW_MAX];
    const char *s = NULL;
    double v = 0;
    int rc = want_scalar(ld, n, "a number", &s);

    if (rc)
        return rc;
    if (!n->plain)
        return ld_fail(ld, n,
                       "expected a number, got the quoted string '%s'; numbers take no "
                       "quotes",
                       show(s, buf));
    if (!read_number(s, &v))
        return ld_fail(ld, n, "expected a number, got '%s'", show(s, buf));
    if (!(v > k->min && v < k->max))
        return ld_fail(ld, n, "must be greater than %g and less than %g, got %s", k->min, k->max,
                       show(s, buf));
    *(double *)(base + k->off) = v;
    return 0;
}

static int parse_weight(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char buf[SHOW_MAX];
    const char *s = NULL;
    uint32_t h;
    int rc = want_scalar(ld, n, "a percentage from 0 to 100", &s);

    if (rc)
        return rc;
    if (!n->plain)
        return ld_fail(ld, n,
                       "expected a percentage, got the quoted string '%s'; numbers "
                       "take no quotes",
                       show(s, buf));
    if (!read_hundredths(s, n->len, &h) || h > 10000)
        return ld_fail(ld, n,
                       "expected a percentage from 0 to 100 with at most two "
                       "decimals, got '%s'",
                       show(s, buf));
    *(double *)(base + k->off) = h / 100.0;
    return 0;
}

static int parse_step(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    struct cfg_step *st = (struct cfg_step *)(base + k->off);
    char buf[SHOW_MAX];
    const char *s = NULL, *pct;
    uint64_t hold = 0;
    uint32_t h;
    int rc = want_scalar(ld, n, "a step such as '5%:120s' or '100%'", &s);

    if (rc)
        return rc;
    pct = strchr(s, '%');
    if (!pct || !read_hundredths(s, (size_t)(pct - s), &h) || h == 0 || h > 10000 ||
        (pct[1] != '\0' && pct[1] != ':'))
        return ld_fail(ld, n,
                       "bad step '%s': write PERCENT%%:HOLD such as '5%%:120s', a "
                       "percentage above 0 and at most 100 (two decimals at most)",
                       show(s, buf));
    if (pct[1] == ':' && !read_duration(pct + 2, false, &hold))
        return ld_fail(ld, n,
                       "bad hold time in step '%s': write a whole number with ms, s, "
                       "m or h, e.g. '5%%:120s'",
                       show(s, buf));
    if (pct[1] == ':' && (hold == 0 || hold > CFG_MAX_MS))
        return ld_fail(ld, n, "the hold time in step '%s' must be above 0 and at most 24h",
                       show(s, buf));
    st->weight = h / 100.0;
    st->hold_ms = hold;
    return 0;
}

static int parse_section(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    return table_apply(ld, k->sub, n, base + k->off);
}

static int parse_list(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char *items;
    size_t i, at;
    int rc = 0;

    if (n->kind != CN_SEQ)
        return ld_fail(ld, n, "expected a list, got %s", node_what(n));
    if (n->nkids < k->min)
        return ld_fail(ld, n, "the list is empty; give at least one entry");
    if (n->nkids > k->max)
        return ld_fail(ld, n, "%zu entries; at most %.0f are allowed", n->nkids, k->max);
    items = calloc(n->nkids, k->size);
    if (!items)
        return ld_nomem(ld);
    memcpy(base + k->off, &items, sizeof items);
    *(size_t *)(base + k->aux) = n->nkids;
    for (i = 0; rc == 0 && i < n->nkids; i++) {
        at = path_index(ld, i);
        rc = k->item->type->parse(ld, k->item, n->kids[i], items + i * k->size);
        path_pop(ld, at);
    }
    return rc;
}

static int choice_unknown(struct ld *ld, const struct ckey *k, const struct cnode *key)
{
    const struct cchoice *c;
    const char *best = NULL;
    size_t bestd = SIZE_MAX, at;
    char buf[SHOW_MAX];
    int rc;

    for (c = k->choices; c->key; c++)
        suggest(key->text, c->key, &best, &bestd);
    at = path_key(ld, key->text);
    if (best)
        rc = ld_fail(ld, key, "unknown key '%s'; did you mean '%s'?", show(key->text, buf), best);
    else
        rc = ld_fail(ld, key, "unknown key '%s'", show(key->text, buf));
    path_pop(ld, at);
    return rc;
}

static int choice_value(struct ld *ld, const struct ckey *k, const struct cchoice *c,
                        const struct cnode *v, char *base)
{
    char **name = (char **)(base + k->aux);
    char buf[SHOW_MAX];
    const char *s = NULL;
    int rc;

    if (c->fixed) {
        rc = want_scalar(ld, v, c->fixed, &s);
        if (rc == 0 && strcmp(s, c->fixed) != 0)
            rc = ld_fail(ld, v, "the only value accepted here is '%s'", c->fixed);
        if (rc == 0 && c->store && !(*name = strdup(c->store)))
            rc = ld_nomem(ld);
    } else {
        rc = want_text(ld, k, v, "a header or cookie name", name);
        if (rc == 0 && !is_token(*name))
            rc = ld_fail(ld, v, "'%s' is not a valid header or cookie name", show(*name, buf));
    }
    if (rc == 0)
        memcpy(base + k->off, &c->kind, sizeof c->kind);
    return rc;
}

/* A mapping with exactly one key out of k->choices, e.g. sticky: {cookie: fb_uid}. */
static int parse_choice(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    const struct cchoice *c;
    const struct cnode *key;
    char names[96] = "";
    size_t at, used = 0;
    int rc;

    for (c = k->choices; c->key && used < sizeof names; c++)
        used +=
            (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", c->key);
    if (n->kind != CN_MAP)
        return ld_fail(ld, n, "expected a mapping with one of %s (e.g. {%s: ...}), got %s", names,
                       k->choices[0].key, node_what(n));
    if (n->nkids == 0)
        return ld_fail(ld, n, "give one of %s", names);
    if (n->nkids > 2)
        return ld_fail(ld, n->kids[2], "give only one of %s", names);
    key = n->kids[0];
    if (key->kind != CN_SCALAR)
        return ld_fail(ld, key, "a key must be a string, got %s", node_what(key));
    for (c = k->choices; c->key && strcmp(c->key, key->text) != 0; c++)
        ;
    if (!c->key)
        return choice_unknown(ld, k, key);
    at = path_key(ld, c->key);
    rc = choice_value(ld, k, c, n->kids[1], base);
    path_pop(ld, at);
    return rc;
}

static const struct ctype t_addr = {"address", parse_addr};
static const struct ctype t_workers = {"integer or auto", parse_workers};
static const struct ctype t_access_log = {"off, stdout or path", parse_access_log};
static const struct ctype t_text = {"string", parse_text};
static const struct ctype t_store = {"postgres URL", parse_store};
static const struct ctype t_name = {"name", parse_name};
static const struct ctype t_host = {"host", parse_host};
static const struct ctype t_prefix = {"path prefix", parse_prefix};
static const struct ctype t_size = {"size", parse_size};
static const struct ctype t_uint = {"integer", parse_uint};
static const struct ctype t_count = {"integer", parse_count};
static const struct ctype t_duration = {"duration", parse_duration};
static const struct ctype t_bool = {"boolean", parse_bool};
static const struct ctype t_ratio = {"number", parse_ratio};
static const struct ctype t_weight = {"percent", parse_weight};
static const struct ctype t_step = {"step", parse_step};
static const struct ctype t_section = {"mapping", parse_section};
static const struct ctype t_list = {"list", parse_list};
static const struct ctype t_choice = {"one-key mapping", parse_choice};

/* ---- the walk ------------------------------------------------------------------------------- */

/* The node for a default: a plain scalar, the empty mapping, or YAML parsed once per load. */
static int default_node(struct ld *ld, const char *def, struct cnode *scratch,
                        const struct cnode **out)
{
    struct ld sub = {.err = ld->err};
    size_t i;
    int rc;

    if (def[0] != '{' && def[0] != '[') {
        memset(scratch, 0, sizeof *scratch);
        scratch->kind = CN_SCALAR;
        scratch->plain = true;
        scratch->text = (char *)def;
        scratch->len = strlen(def);
        *out = scratch;
        return 0;
    }
    if (strcmp(def, "{}") == 0) {
        *out = &empty_map;
        return 0;
    }
    for (i = 0; i < CFG_DEFAULTS_CACHED && ld->defaults[i].def; i++) {
        if (ld->defaults[i].def == def) {
            *out = ld->defaults[i].node;
            return 0;
        }
    }
    if (i == CFG_DEFAULTS_CACHED)
        return ld_fail(ld, NULL, "internal: too many structured defaults");
    rc = tree_build(&sub, def, strlen(def), &ld->defaults[i].node);
    if (rc || !ld->defaults[i].node)
        return ld_fail(ld, NULL, "internal: bad default '%s'", def);
    ld->defaults[i].def = def;
    *out = ld->defaults[i].node;
    return 0;
}

static int key_absent(struct ld *ld, const struct ckey *k, const struct cnode *map, char *base)
{
    const struct cnode *n = NULL;
    struct cnode scratch;
    size_t at = path_key(ld, k->name);
    int rc = 0;

    if (k->flags & F_REQUIRED) {
        rc = ld_fail(ld, map, "missing required key '%s'", k->name);
    } else if (k->def) {
        rc = default_node(ld, k->def, &scratch, &n);
        if (rc == 0)
            rc = k->type->parse(ld, k, n, base);
    }
    path_pop(ld, at);
    return rc;
}

static int key_unknown(struct ld *ld, const struct ctable *t, const struct cnode *key)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX, i, at;
    char buf[SHOW_MAX];
    int rc;

    for (i = 0; i < t->nkeys; i++)
        suggest(key->text, t->keys[i].name, &best, &bestd);
    at = path_key(ld, key->text);
    if (best)
        rc = ld_fail(ld, key, "unknown key '%s'; did you mean '%s'?", show(key->text, buf), best);
    else
        rc = ld_fail(ld, key, "unknown key '%s'", show(key->text, buf));
    path_pop(ld, at);
    return rc;
}

static int key_present(struct ld *ld, const struct ctable *t, const struct cnode *key,
                       const struct cnode *val, char *base, const struct cnode **seen)
{
    const struct ckey *k;
    size_t i, at;
    int rc;

    if (key->kind != CN_SCALAR)
        return ld_fail(ld, key, "a key must be a string, got %s", node_what(key));
    for (i = 0; i < t->nkeys && strcmp(t->keys[i].name, key->text) != 0; i++)
        ;
    if (i == t->nkeys)
        return key_unknown(ld, t, key);
    k = &t->keys[i];
    at = path_key(ld, k->name);
    if (seen[i]) {
        rc =
            ld_fail(ld, key, "duplicate key '%s' (first given on line %d)", k->name, seen[i]->line);
    } else {
        seen[i] = key;
        if (k->flags & F_SEEN)
            *(bool *)(base + k->seen) = true;
        rc = k->type->parse(ld, k, val, base);
    }
    path_pop(ld, at);
    return rc;
}

/* Reads mapping map into the struct at base: its keys in file order, then defaults, then the
 * table's check. Values are copied; nothing of map is kept. */
static int table_apply(struct ld *ld, const struct ctable *t, const struct cnode *map, char *base)
{
    const struct cnode *seen[CFG_MAX_KEYS] = {NULL};
    size_t i;
    int rc = 0;

    if (map->kind != CN_MAP)
        return ld_fail(ld, map, "expected a mapping (key: value lines or {...}), got %s",
                       node_what(map));
    for (i = 0; rc == 0 && i + 1 < map->nkids; i += 2)
        rc = key_present(ld, t, map->kids[i], map->kids[i + 1], base, seen);
    for (i = 0; rc == 0 && i < t->nkeys; i++)
        if (!seen[i])
            rc = key_absent(ld, &t->keys[i], map, base);
    if (rc == 0 && t->check)
        rc = t->check(ld, map, base);
    return rc;
}

/* ---- cross-key rules ------------------------------------------------------------------------ */

/* The node of list[i].key in the file, or the list, or the fallback, for error positions. */
static const struct cnode *item_node(const struct cnode *list, size_t i, const char *key,
                                     const struct cnode *fallback)
{
    const struct cnode *n = NULL;

    if (list && list->kind == CN_SEQ && i < list->nkids)
        n = key ? map_get(list->kids[i], key) : list->kids[i];
    if (!n)
        n = list ? list : fallback;
    return n;
}

static int releases_unique(struct ld *ld, const struct cnode *map, struct cfg_service *svc)
{
    const struct cnode *list = map_get(map, "releases");
    size_t i, j, at;
    int rc = 0;

    for (j = 1; rc == 0 && j < svc->nreleases; j++) {
        for (i = 0; rc == 0 && i < j; i++) {
            if (strcmp(svc->releases[i].name, svc->releases[j].name) != 0)
                continue;
            at = path_push(ld, "%sreleases[%zu].name", ld->plen ? "." : "", j);
            rc = ld_fail(ld, item_node(list, j, "name", map),
                         "duplicate release name '%s' (also releases[%zu])", svc->releases[j].name,
                         i);
            path_pop(ld, at);
        }
    }
    return rc;
}

static int stable_resolve(struct ld *ld, const struct cnode *map, struct cfg_service *svc)
{
    size_t i, at;
    int rc = 0;

    if (!svc->stable && svc->nreleases > 1) {
        at = path_key(ld, "stable");
        rc = ld_fail(ld, map,
                     "missing required key 'stable': a service with more than one "
                     "release names its stable one");
        path_pop(ld, at);
        return rc;
    }
    if (!svc->stable) {
        svc->stable = strdup(svc->releases[0].name);
        return svc->stable ? 0 : ld_nomem(ld);
    }
    for (i = 0; i < svc->nreleases; i++)
        if (strcmp(svc->releases[i].name, svc->stable) == 0)
            return 0;
    at = path_key(ld, "stable");
    rc = ld_fail(ld, map_get(map, "stable"), "'%s' is not one of this service's releases",
                 svc->stable);
    path_pop(ld, at);
    return rc;
}

/* No weight given: stable 100, the others 0. Some given: the rest 0 and the sum is 100. */
static int weights_resolve(struct ld *ld, const struct cnode *map, struct cfg_service *svc)
{
    long sum = 0, given = 0;
    size_t i, at;
    int rc = 0;

    for (i = 0; i < svc->nreleases; i++) {
        if (svc->releases[i].weight_set) {
            given++;
            sum += lround(svc->releases[i].weight * 100);
        }
    }
    for (i = 0; i < svc->nreleases; i++) {
        if (!svc->releases[i].weight_set)
            svc->releases[i].weight =
                !given && strcmp(svc->releases[i].name, svc->stable) == 0 ? 100 : 0;
    }
    if (given && sum != 10000) {
        at = path_key(ld, "releases");
        rc = ld_fail(ld, map_get(map, "releases"),
                     "release weights add up to %ld.%02ld; they must add up to 100", sum / 100,
                     sum % 100);
        path_pop(ld, at);
    }
    return rc;
}

static int check_service(struct ld *ld, const struct cnode *map, char *base)
{
    struct cfg_service *svc = (struct cfg_service *)base;
    int rc;

    svc->line = map->line;
    rc = releases_unique(ld, map, svc);
    if (rc == 0)
        rc = stable_resolve(ld, map, svc);
    if (rc == 0)
        rc = weights_resolve(ld, map, svc);
    return rc;
}

static int step_fail(struct ld *ld, const struct cnode *list, size_t i, const char *msg)
{
    size_t at = path_push(ld, "%ssteps[%zu]", ld->plen ? "." : "", i);
    int rc = ld_fail(ld, item_node(list, i, NULL, list), "%s", msg);

    path_pop(ld, at);
    return rc;
}

/* Steps rise strictly; every step but the last holds; the last is 100% without a hold. */
static int check_rollout(struct ld *ld, const struct cnode *map, char *base)
{
    struct cfg_service *svc = (struct cfg_service *)base;
    const struct cnode *list = map_get(map, "steps");
    size_t i, last = svc->nsteps - 1;

    if (!list)
        list = map;
    for (i = 0; i < svc->nsteps; i++) {
        if (i > 0 && svc->steps[i].weight <= svc->steps[i - 1].weight)
            return step_fail(ld, list, i,
                             "each step's percentage must be above the one "
                             "before");
        if (i < last && svc->steps[i].hold_ms == 0)
            return step_fail(ld, list, i,
                             "every step but the last needs a hold time, e.g. "
                             "'5%:120s'");
    }
    if (svc->steps[last].weight != 100)
        return step_fail(ld, list, last, "the last step must be '100%'");
    if (svc->steps[last].hold_ms != 0)
        return step_fail(ld, list, last, "the last step is '100%' with no hold time");
    return 0;
}

/* Refuses two items of the list `key` with the same name. The items are n
 * structs of size bytes from first, each with a char *name at name_off. */
static int names_unique(struct ld *ld, const struct cnode *root, const char *key,
                        const char *what, const void *first, size_t n, size_t size,
                        size_t name_off)
{
    const struct cnode *list = map_get(root, key);
    const char *base = first;
    size_t i, j, at;
    int rc = 0;

#define NAME_AT(k) (*(char *const *)(base + (k) * size + name_off))
    for (j = 1; rc == 0 && j < n; j++) {
        for (i = 0; rc == 0 && i < j; i++) {
            if (strcmp(NAME_AT(i), NAME_AT(j)) != 0)
                continue;
            at = path_push(ld, "%s[%zu].name", key, j);
            rc = ld_fail(ld, item_node(list, j, "name", root),
                         "duplicate %s name '%s' (also %s[%zu])", what, NAME_AT(j), key, i);
            path_pop(ld, at);
        }
    }
#undef NAME_AT
    return rc;
}

static int services_unique(struct ld *ld, const struct cnode *root, struct config *cfg)
{
    return names_unique(ld, root, "services", "service", cfg->services, cfg->nservices,
                        sizeof(*cfg->services), offsetof(struct cfg_service, name));
}

/* The node of a listener's address in the file, or NULL when it is the default. */
static const struct cnode *listener_node(const struct cnode *root, const char *section)
{
    return section ? map_get(map_get(root, section), "listen") : map_get(root, "listen");
}

static int listeners_distinct(struct ld *ld, const struct cnode *root, struct config *cfg)
{
    static const char *const names[] = {"listen", "admin.listen", "status_page.listen"};
    static const char *const sections[] = {NULL, "admin", "status_page"};
    const struct cfg_addr *a[3] = {&cfg->listen, &cfg->admin_listen, &cfg->status_listen};
    const struct cnode *n = NULL;
    size_t i, j, at;
    int rc = 0;

    for (j = 1; rc == 0 && j < 3; j++) {
        for (i = 0; rc == 0 && i < j; i++) {
            if (!addr_clash(a[i], a[j]))
                continue;
            n = listener_node(root, sections[j]);
            if (!n)
                n = listener_node(root, sections[i]);
            at = path_push(ld, "%s", names[j]);
            rc = ld_fail(ld, n ? n : root,
                         "'%s' collides with %s '%s'; listeners need distinct addresses",
                         a[j]->text, names[i], a[i]->text);
            path_pop(ld, at);
        }
    }
    return rc;
}

/* ---- webhooks (docs/webhooks.md) ----------------------------------------------------------- */

#define CFG_WEBHOOK_URL_MAX 2048
#define CFG_WEBHOOK_TIMEOUT_MAX 60000u /* ms */
#define CFG_EVENT_TYPE_MAX 63

/* An http:// or https:// URL with a host. Messages never quote it: it may hold a token. */
static int parse_url(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    const char *rest;
    int rc = want_text(ld, k, n, "an http:// or https:// URL", dst);

    if (rc)
        return rc;
    if (strncasecmp(*dst, "https://", 8) == 0)
        rest = *dst + 8;
    else if (strncasecmp(*dst, "http://", 7) == 0)
        rest = *dst + 7;
    else
        return ld_fail(ld, n, "expected a URL starting with http:// or https://");
    if (strchr("/?#@:", rest[0]))
        return ld_fail(ld, n, "the URL has no host after its scheme");
    if (strpbrk(*dst, " \t"))
        return ld_fail(ld, n, "a URL has no spaces (percent-encode them as %%20)");
    return 0;
}

/* "*" or 1 to 63 of a-z, 0-9, '_' and '.': "incident_declared", "rollback". */
static int parse_event_type(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX];
    int rc = want_text(ld, k, n, "an event type such as rollback, or \"*\"", dst);

    if (rc || strcmp(*dst, "*") == 0)
        return rc;
    if (n->len == 0 || strspn(*dst, "abcdefghijklmnopqrstuvwxyz0123456789_.") != n->len)
        return ld_fail(ld, n,
                       "bad event type '%s': use lower-case letters, digits, '_' and '.' "
                       "(e.g. incident_declared), or \"*\" for every type",
                       show(*dst, buf));
    return 0;
}

static int parse_secret(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    int rc = want_text(ld, k, n, "a string", dst);

    if (rc == 0 && (*dst)[0] == '\0')
        rc = ld_fail(ld, n, "the secret is empty; leave the key out to send unsigned requests");
    return rc;
}

static int parse_webhook_timeout(struct ld *ld, const struct ckey *k, const struct cnode *n,
                                 char *base)
{
    int rc = parse_duration(ld, k, n, base);

    if (rc == 0 && *(uint64_t *)(base + k->off) > CFG_WEBHOOK_TIMEOUT_MAX)
        rc = ld_fail(ld, n, "must be at most 60s");
    return rc;
}

static const struct ctype t_url = {"URL", parse_url};
static const struct ctype t_event_type = {"event type", parse_event_type};
static const struct ctype t_secret = {"string", parse_secret};
static const struct ctype t_webhook_timeout = {"duration", parse_webhook_timeout};

static int check_webhook(struct ld *ld, const struct cnode *map, char *base)
{
    ((struct cfg_webhook *)base)->line = map->line;
    return 0;
}

static int webhooks_unique(struct ld *ld, const struct cnode *root, struct config *cfg)
{
    return names_unique(ld, root, "webhooks", "webhook", cfg->webhooks, cfg->nwebhooks,
                        sizeof(*cfg->webhooks), offsetof(struct cfg_webhook, name));
}

static int check_top(struct ld *ld, const struct cnode *map, char *base)
{
    struct config *cfg = (struct config *)base;
    int rc = services_unique(ld, map, cfg);

    if (rc == 0)
        rc = listeners_distinct(ld, map, cfg);
    if (rc == 0)
        rc = webhooks_unique(ld, map, cfg);
    return rc;
}

/* ---- the journal (docs/journal.md) ---------------------------------------------------------- */

#define CFG_AGE_MIN_MS 60000ull                 /* retention: 1m at least, or 0 */
#define CFG_AGE_MAX_MS (3650ull * 86400000ull)  /* 3650d */
#define CFG_JOURNAL_SIZE_MIN (1ull << 20)       /* max_size: 1MiB at least, or 0 */
#define CFG_JOURNAL_SIZE_MAX (16ull << 40)      /* 16TiB */

/* "30d", "12h", "90m", "0": a duration that may count days; 0 keeps records forever. */
static int parse_age(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char buf[SHOW_MAX];
    size_t digits;
    const char *s = NULL;
    uint64_t v = 0, ms = 0;
    int rc = want_scalar(ld, n, "an age such as 30d", &s);

    if (rc)
        return rc;
    digits = strspn(s, "0123456789");
    if (strcmp(s, "0") == 0)
        ms = 0;
    else if (s[digits] == 'd' && s[digits + 1] == '\0' && read_digits(s, digits, 6, &v))
        ms = v * 86400000ull;
    else if (!read_duration(s, false, &ms))
        return ld_fail(ld, n,
                       "bad age '%s': write a whole number with s, m, h or d (30d, 12h), or 0 "
                       "to keep every record",
                       show(s, buf));
    if (ms && ms < CFG_AGE_MIN_MS)
        return ld_fail(ld, n, "must be at least 1m, or 0 to keep every record");
    if (ms > CFG_AGE_MAX_MS)
        return ld_fail(ld, n, "must be at most 3650d");
    *(uint64_t *)(base + k->off) = ms;
    return 0;
}

/* "1GiB", "500MiB", "0": a size up to terabytes; 0 means no cap. */
static int parse_journal_size(struct ld *ld, const struct ckey *k, const struct cnode *n,
                              char *base)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
                 {"GiB", 1ull << 30}, {"TiB", 1ull << 40}};
    char buf[SHOW_MAX];
    size_t digits, i;
    const char *s;
    uint64_t v = 0, bytes = UINT64_MAX;
    int rc = want_scalar(ld, n, "a size such as 1GiB", &s);

    if (rc)
        return rc;
    digits = strspn(s, "0123456789");
    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s + digits, units[i].unit) == 0 && read_digits(s, digits, 12, &v))
            bytes = v * units[i].mult;
    if (bytes == UINT64_MAX)
        return ld_fail(ld, n,
                       "bad size '%s': write a number of bytes, or use KiB, MiB, GiB or TiB "
                       "(e.g. 1GiB), or 0 for no cap",
                       show(s, buf));
    if (bytes && bytes < CFG_JOURNAL_SIZE_MIN)
        return ld_fail(ld, n, "must be at least 1MiB, or 0 for no cap");
    if (bytes > CFG_JOURNAL_SIZE_MAX)
        return ld_fail(ld, n, "must be at most 16TiB");
    *(uint64_t *)(base + k->off) = bytes;
    return 0;
}

/* Slots per worker ring: a power of two within k->min..k->max. */
static int parse_ring(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    unsigned *dst = (unsigned *)(base + k->off), up = 1;
    int rc = parse_uint(ld, k, n, base);

    if (rc == 0 && (*dst & (*dst - 1))) {
        while (up < *dst)
            up <<= 1;
        rc = ld_fail(ld, n, "must be a power of two (%u or %u)", up >> 1, up);
    }
    return rc;
}

/* An HTTP method in capitals: POST, PUT, PATCH, DELETE, or an extension such as PURGE. */
static int parse_method(struct ld *ld, const struct ckey *k, const struct cnode *n, char *base)
{
    char **dst = (char **)(base + k->off);
    char buf[SHOW_MAX];
    int rc = want_text(ld, k, n, "a method such as POST", dst);

    if (rc)
        return rc;
    if (n->len == 0 || n->len > 15 || strspn(*dst, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n->len)
        return ld_fail(ld, n,
                       "bad method '%s': write an HTTP method in capitals, such as POST or "
                       "DELETE",
                       show(*dst, buf));
    return 0;
}

/* A JSON key to redact: 1 to k->max bytes. */
static int parse_redact_key(struct ld *ld, const struct ckey *k, const struct cnode *n,
                            char *base)
{
    char **dst = (char **)(base + k->off);
    int rc = want_text(ld, k, n, "a JSON key such as password", dst);

    if (rc == 0 && (*dst)[0] == '\0')
        rc = ld_fail(ld, n, "an empty key would match every key; remove it");
    return rc;
}

static const struct ctype t_age = {"age", parse_age};
static const struct ctype t_journal_size = {"size", parse_journal_size};
static const struct ctype t_ring = {"integer", parse_ring};
static const struct ctype t_method = {"method", parse_method};
static const struct ctype t_redact_key = {"string", parse_redact_key};

/* ---- the tables: one row per key of firebreak.yaml ------------------------------------------ */

#define OFF(type, member) offsetof(struct type, member)
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

static const struct ckey admin_keys[] = {
    {.name = "listen",
     .type = &t_addr,
     .off = OFF(config, admin_listen),
     .def = "127.0.0.1:9090",
     .doc = "address of the admin listener: API, /metrics, console"},
};

static const struct ckey status_keys[] = {
    {.name = "listen",
     .type = &t_addr,
     .off = OFF(config, status_listen),
     .def = "127.0.0.1:8081",
     .doc = "address of the public status page"},
    {.name = "title",
     .type = &t_text,
     .off = OFF(config, status_title),
     .def = "Status",
     .max = 200,
     .doc = "title shown on the status page"},
};

static const struct ckey limits_keys[] = {
    {.name = "request_line",
     .type = &t_size,
     .off = OFF(cfg_limits, request_line),
     .def = "8KiB",
     .min = 64,
     .max = 1 << 20,
     .doc = "longest request line accepted; longer gets 414"},
    {.name = "header_bytes",
     .type = &t_size,
     .off = OFF(cfg_limits, header_bytes),
     .def = "16KiB",
     .min = 256,
     .max = 1 << 20,
     .doc = "largest header section accepted; larger gets 431"},
    {.name = "header_fields",
     .type = &t_uint,
     .off = OFF(cfg_limits, header_fields),
     .def = "100",
     .min = 1,
     .max = 10000,
     .doc = "most header fields accepted in a request; more gets 431"},
    {.name = "upstream_connections",
     .type = &t_count,
     .off = OFF(cfg_limits, upstream_connections),
     .def = "0",
     .min = 0,
     .max = 100000,
     .doc = "most connections per endpoint per worker; 0 means unlimited"},
};

#define DURATION_KEY(key, deflt, text)                                                             \
    {                                                                                              \
        .name = #key, .type = &t_duration, .off = OFF(cfg_timeouts, key), .def = deflt, .min = 1,  \
        .max = CFG_MAX_MS, .doc = text                                                             \
    }

static const struct ckey timeouts_keys[] = {
    DURATION_KEY(request_header, "10s",
                 "time to receive a request's head, counted from its first byte (408)"),
    DURATION_KEY(body_idle, "30s", "longest pause while a request body arrives (408)"),
    DURATION_KEY(keepalive_idle, "60s", "idle client connection kept open between requests"),
    DURATION_KEY(upstream_connect, "2s", "time to connect to an endpoint (502)"),
    DURATION_KEY(upstream_response, "30s", "time for an endpoint's response head (504)"),
    DURATION_KEY(drain, "30s", "grace for in-flight requests after SIGTERM"),
};

static const struct ckey match_keys[] = {
    {.name = "host",
     .type = &t_host,
     .off = OFF(cfg_service, match_host),
     .def = "*",
     .max = 253,
     .doc = "Host header to match, without port; \"*\" matches any"},
    {.name = "path_prefix",
     .type = &t_prefix,
     .off = OFF(cfg_service, match_path_prefix),
     .def = "/",
     .max = 1024,
     .doc = "request paths starting with this belong to the service"},
};

static const struct cchoice sticky_choices[] = {
    {.key = "cookie", .kind = CFG_STICKY_COOKIE, .doc = "cookie holding the user's key"},
    {.key = "header", .kind = CFG_STICKY_HEADER, .doc = "request header holding the user's key"},
    {.key = "ip", .kind = CFG_STICKY_IP, .fixed = "true", .doc = "the client's IP address"},
    {.key = NULL},
};

static const struct cchoice identity_choices[] = {
    {.key = "header", .kind = CFG_IDENTITY_HEADER, .doc = "request header naming the user"},
    {.key = "cookie", .kind = CFG_IDENTITY_COOKIE, .doc = "cookie naming the user"},
    {.key = "jwt",
     .kind = CFG_IDENTITY_JWT_SUB,
     .fixed = "sub",
     .store = "sub",
     .doc = "the sub claim of the bearer JWT (not verified)"},
    {.key = NULL},
};

static const struct ckey judge_keys[] = {
    {.name = "alpha",
     .type = &t_ratio,
     .off = OFF(cfg_judge, alpha),
     .def = "0.001",
     .min = 0,
     .max = 0.5,
     .doc = "false-alarm probability of the sequential test"},
    {.name = "min_error_ratio",
     .type = &t_ratio,
     .off = OFF(cfg_judge, min_error_ratio),
     .def = "2.0",
     .min = 1,
     .max = 1000,
     .doc = "canary error rate, as a multiple of stable's, that counts as failing"},
    {.name = "max_latency_ratio",
     .type = &t_ratio,
     .off = OFF(cfg_judge, max_latency_ratio),
     .def = "1.25",
     .min = 1,
     .max = 100,
     .doc = "canary latency, as a multiple of stable's, that counts as failing"},
};

static const struct ckey step_item = {.name = "steps[]", .type = &t_step};

static const struct ckey rollout_keys[] = {
    {.name = "steps",
     .type = &t_list,
     .off = OFF(cfg_service, steps),
     .aux = OFF(cfg_service, nsteps),
     .def = "[\"1%:60s\", \"5%:120s\", \"25%:300s\", \"100%\"]",
     .min = 1,
     .max = 100,
     .item = &step_item,
     .size = sizeof(struct cfg_step),
     .doc = "canary weights and how long each holds; the last is 100%"},
};

static const struct ckey endpoint_item = {.name = "endpoints[]", .type = &t_addr};

static const struct ckey method_item = {.name = "methods[]", .type = &t_method, .max = 15};
static const struct ckey redact_item = {.name = "redact[]", .type = &t_redact_key, .max = 63};

static const struct ckey service_journal_keys[] = {
    {.name = "methods",
     .type = &t_list,
     .off = OFF(cfg_journal_service, methods),
     .aux = OFF(cfg_journal_service, nmethods),
     .def = "[POST, PUT, PATCH, DELETE]",
     .min = 0,
     .max = 16,
     .item = &method_item,
     .size = sizeof(char *),
     .doc = "request methods that are writes; an empty list journals nothing"},
    {.name = "body_bytes",
     .type = &t_size,
     .off = OFF(cfg_journal_service, body_bytes),
     .def = "0",
     .min = 0,
     .max = 16384,
     .doc = "request body bytes kept per record, after redaction; 0 keeps no body"},
    {.name = "redact",
     .type = &t_list,
     .off = OFF(cfg_journal_service, redact),
     .aux = OFF(cfg_journal_service, nredact),
     .def = "[password, token, secret, card]",
     .min = 0,
     .max = 64,
     .item = &redact_item,
     .size = sizeof(char *),
     .doc = "JSON keys whose values never reach the journal file"},
};

static const struct ckey journal_keys[] = {
    {.name = "retention",
     .type = &t_age,
     .off = OFF(cfg_journal, retention_ms),
     .def = "30d",
     .doc = "records older than this are deleted; 0 keeps them"},
    {.name = "max_size",
     .type = &t_journal_size,
     .off = OFF(cfg_journal, max_bytes),
     .def = "1GiB",
     .doc = "above this the oldest records are deleted; 0 means no cap"},
    {.name = "ring",
     .type = &t_ring,
     .off = OFF(cfg_journal, ring),
     .def = "4096",
     .min = 64,
     .max = 1 << 20,
     .doc = "records each worker can hand the journal writer before it drops"},
};

static const struct ckey release_keys[] = {
    {.name = "name",
     .type = &t_name,
     .off = OFF(cfg_release, name),
     .flags = F_REQUIRED,
     .max = CFG_MAX_NAME,
     .doc = "the release's name, unique within the service"},
    {.name = "endpoints",
     .type = &t_list,
     .off = OFF(cfg_release, endpoints),
     .aux = OFF(cfg_release, nendpoints),
     .flags = F_REQUIRED,
     .min = 1,
     .max = 256,
     .item = &endpoint_item,
     .size = sizeof(struct cfg_addr),
     .doc = "HOST:PORT of each instance; requests go round-robin over the healthy ones"},
    {.name = "weight",
     .type = &t_weight,
     .off = OFF(cfg_release, weight),
     .seen = OFF(cfg_release, weight_set),
     .flags = F_SEEN,
     .doc = "percent of traffic; given weights add up to 100"},
};

static const struct ctable release_table = {release_keys, NKEYS(release_keys), NULL};
static const struct ckey release_item = {
    .name = "releases[]", .type = &t_section, .sub = &release_table};
static const struct ctable match_table = {match_keys, NKEYS(match_keys), NULL};
static const struct ctable judge_table = {judge_keys, NKEYS(judge_keys), NULL};
static const struct ctable service_journal_table = {service_journal_keys,
                                                    NKEYS(service_journal_keys), NULL};
static const struct ctable rollout_table = {rollout_keys, NKEYS(rollout_keys), check_rollout};

static const struct ckey service_keys[] = {
    {.name = "name",
     .type = &t_name,
     .off = OFF(cfg_service, name),
     .flags = F_REQUIRED,
     .max = CFG_MAX_NAME,
     .doc = "the service's name, unique in the file"},
    {.name = "match",
     .type = &t_section,
     .sub = &match_table,
     .def = "{}",
     .doc = "which requests belong to the service"},
    {.name = "sticky",
     .type = &t_choice,
     .off = OFF(cfg_service, sticky),
     .aux = OFF(cfg_service, sticky_name),
     .def = "{cookie: fb_uid}",
     .max = CFG_MAX_TOKEN,
     .choices = sticky_choices,
     .doc = "what keeps a user on the same release"},
    {.name = "identity",
     .type = &t_choice,
     .off = OFF(cfg_service, identity),
     .aux = OFF(cfg_service, identity_name),
     .max = CFG_MAX_TOKEN,
     .choices = identity_choices,
     .doc = "who a request belongs to, for the journal and impact; none when absent"},
    {.name = "allow_pin",
     .type = &t_bool,
     .off = OFF(cfg_service, allow_pin),
     .def = "false",
     .doc = "let a request choose its release with the X-Firebreak-Release header"},
    {.name = "releases",
     .type = &t_list,
     .off = OFF(cfg_service, releases),
     .aux = OFF(cfg_service, nreleases),
     .flags = F_REQUIRED,
     .min = 1,
     .max = 64,
     .item = &release_item,
     .size = sizeof(struct cfg_release),
     .doc = "the deployed releases of the service"},
    {.name = "stable",
     .type = &t_name,
     .off = OFF(cfg_service, stable),
     .max = CFG_MAX_NAME,
     .doc = "the known-good release; required with more than one release"},
    {.name = "judge",
     .type = &t_section,
     .off = OFF(cfg_service, judge),
     .sub = &judge_table,
     .def = "{}",
     .doc = "how a canary is compared with stable"},
    {.name = "rollout",
     .type = &t_section,
     .sub = &rollout_table,
     .def = "{}",
     .doc = "how a new release's weight grows"},
    {.name = "journal",
     .type = &t_section,
     .off = OFF(cfg_service, journal),
     .sub = &service_journal_table,
     .def = "{}",
     .doc = "what the write journal keeps of this service's writes"},
};

static const struct ctable service_table = {service_keys, NKEYS(service_keys), check_service};
static const struct ctable journal_table = {journal_keys, NKEYS(journal_keys), NULL};
static const struct ckey service_item = {
    .name = "services[]", .type = &t_section, .sub = &service_table};
static const struct ctable admin_table = {admin_keys, NKEYS(admin_keys), NULL};
static const struct ctable status_table = {status_keys, NKEYS(status_keys), NULL};
static const struct ctable limits_table = {limits_keys, NKEYS(limits_keys), NULL};
static const struct ctable timeouts_table = {timeouts_keys, NKEYS(timeouts_keys), NULL};

static const struct ckey event_type_item = {
    .name = "events[]", .type = &t_event_type, .max = CFG_EVENT_TYPE_MAX};

static const struct ckey webhook_keys[] = {
    {.name = "name",
     .type = &t_name,
     .off = OFF(cfg_webhook, name),
     .flags = F_REQUIRED,
     .max = CFG_MAX_NAME,
     .doc = "the webhook's name, unique in the file; labels its metrics and log"},
    {.name = "url",
     .type = &t_url,
     .off = OFF(cfg_webhook, url),
     .flags = F_REQUIRED,
     .max = CFG_WEBHOOK_URL_MAX,
     .doc = "http:// or https:// URL that receives a POST per event"},
    {.name = "events",
     .type = &t_list,
     .off = OFF(cfg_webhook, events),
     .aux = OFF(cfg_webhook, nevents),
     .def = "[\"*\"]",
     .min = 1,
     .max = 64,
     .item = &event_type_item,
     .size = sizeof(char *),
     .doc = "event types sent to this webhook; \"*\" for every type"},
    {.name = "secret",
     .type = &t_secret,
     .off = OFF(cfg_webhook, secret),
     .max = 1024,
     .doc = "shared secret that signs each request (X-Firebreak-Signature); unsigned when absent"},
    {.name = "timeout",
     .type = &t_webhook_timeout,
     .off = OFF(cfg_webhook, timeout_ms),
     .def = "5s",
     .min = 1,
     .max = CFG_MAX_MS,
     .doc = "time for one attempt, connection to response, at most 60s"},
};

static const struct ctable webhook_table = {webhook_keys, NKEYS(webhook_keys), check_webhook};
static const struct ckey webhook_item = {
    .name = "webhooks[]", .type = &t_section, .sub = &webhook_table};

static const struct ckey top_keys[] = {
    {.name = "listen",
     .type = &t_addr,
     .off = OFF(config, listen),
     .def = "127.0.0.1:8080",
     .doc = "address of the traffic listener"},
    {.name = "workers",
     .type = &t_workers,
     .off = OFF(config, workers),
     .def = "auto",
     .min = 1,
     .max = 64,
     .doc = "worker threads, or auto for one per online core"},
    {.name = "access_log",
     .type = &t_access_log,
     .off = OFF(config, access_log),
     .aux = OFF(config, access_log_path),
     .def = "off",
     .max = CFG_MAX_TEXT,
     .doc = "JSON-lines access log: off, stdout or a file path"},
    {.name = "admin",
     .type = &t_section,
     .sub = &admin_table,
     .def = "{}",
     .doc = "the admin listener"},
    {.name = "status_page",
     .type = &t_section,
     .sub = &status_table,
     .flags = F_SEEN,
     .seen = OFF(config, has_status_page),
     .doc = "the public status page; off when absent"},
    {.name = "state",
     .type = &t_text,
     .off = OFF(config, state_dir),
     .def = "./firebreak-data",
     .max = CFG_MAX_TEXT,
     .doc = "directory for the SQLite store, journal and admin token"},
    {.name = "store",
     .type = &t_store,
     .off = OFF(config, store_url),
     .max = CFG_MAX_TEXT,
     .doc = "PostgreSQL URL shared by a fleet; SQLite in state when absent"},
    {.name = "limits",
     .type = &t_section,
     .off = OFF(config, limits),
     .sub = &limits_table,
     .def = "{}",
     .doc = "sizes the traffic listener accepts"},
    {.name = "timeouts",
     .type = &t_section,
     .off = OFF(config, timeouts),
     .sub = &timeouts_table,
     .def = "{}",
     .doc = "timeouts of the traffic path"},
    {.name = "services",
     .type = &t_list,
     .off = OFF(config, services),
     .aux = OFF(config, nservices),
     .flags = F_REQUIRED,
     .min = 1,
     .max = 1000,
     .item = &service_item,
     .size = sizeof(struct cfg_service),
     .doc = "the applications behind firebreak"},
    {.name = "journal",
     .type = &t_section,
     .off = OFF(config, journal),
     .sub = &journal_table,
     .def = "{}",
     .doc = "the write journal's file: retention, size, ring"},
    {.name = "webhooks",
     .type = &t_list,
     .off = OFF(config, webhooks),
     .aux = OFF(config, nwebhooks),
     .min = 0,
     .max = 32,
     .item = &webhook_item,
     .size = sizeof(struct cfg_webhook),
     .doc = "URLs told about incidents, rollbacks and reminders; none when absent"},
};

static const struct ctable top_table = {top_keys, NKEYS(top_keys), check_top};

_Static_assert(NKEYS(top_keys) <= CFG_MAX_KEYS && NKEYS(service_keys) <= CFG_MAX_KEYS,
               "raise CFG_MAX_KEYS");

/* ---- public API ----------------------------------------------------------------------------- */

static void release_free(struct cfg_release *r)
{
    size_t i;

    free(r->name);
    for (i = 0; i < r->nendpoints && r->endpoints; i++)
        free(r->endpoints[i].text);
    free(r->endpoints);
}

static void service_free(struct cfg_service *s)
{
    size_t i;

    free(s->name);
    free(s->match_host);
    free(s->match_path_prefix);
    free(s->sticky_name);
    free(s->identity_name);
    for (i = 0; i < s->nreleases && s->releases; i++)
        release_free(&s->releases[i]);
    free(s->releases);
    free(s->stable);
    free(s->steps);
    for (i = 0; i < s->journal.nmethods && s->journal.methods; i++)
        free(s->journal.methods[i]);
    free(s->journal.methods);
    for (i = 0; i < s->journal.nredact && s->journal.redact; i++)
        free(s->journal.redact[i]);
    free(s->journal.redact);
}

static void webhook_cfg_free(struct cfg_webhook *h)
{
    size_t i;

    free(h->name);
    free(h->url);
    for (i = 0; i < h->nevents && h->events; i++)
        free(h->events[i]);
    free(h->events);
    free(h->secret);
}

void config_free(struct config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < cfg->nwebhooks && cfg->webhooks; i++)
        webhook_cfg_free(&cfg->webhooks[i]);
    free(cfg->webhooks);
    for (i = 0; i < cfg->nservices && cfg->services; i++)
        service_free(&cfg->services[i]);
    free(cfg->services);
    free(cfg->path);
    free(cfg->listen.text);
    free(cfg->access_log_path);
    free(cfg->admin_listen.text);
    free(cfg->status_listen.text);
    free(cfg->status_title);
    free(cfg->state_dir);
    free(cfg->store_url);
    free(cfg);
}

static void ld_release(struct ld *ld)
{
    size_t i;

    for (i = 0; i < CFG_DEFAULTS_CACHED; i++)
        node_free(ld->defaults[i].node);
}

static int config_build(struct ld *ld, const char *name, const struct cnode *root,
                        struct config **out)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    int rc;

    if (!cfg)
        return ld_nomem(ld);
    cfg->path = strdup(name);
    if (!cfg->path)
        rc = ld_nomem(ld);
    else if (root->kind != CN_MAP)
        rc = ld_fail(ld, root,
                     "the file must be a mapping of keys (listen, services, ...), "
                     "got %s",
                     node_what(root));
    else
        rc = table_apply(ld, &top_table, root, (char *)cfg);
    if (rc)
        config_free(cfg);
    else
        *out = cfg;
    return rc;
}

int config_parse(const char *name, const char *text, size_t len, struct config **out,
                 struct config_error *err)
{
    struct config_error scratch;
    struct cnode *root = NULL;
    struct ld ld = {0};
    int rc;

    ld.err = err ? err : &scratch;
    memset(ld.err, 0, sizeof *ld.err);
    *out = NULL;
    if (len > CFG_MAX_FILE)
        return ld_fail(&ld, NULL, "the file is larger than %u MiB", CFG_MAX_FILE >> 20);
    rc = tree_build(&ld, text ? text : "", text ? len : 0, &root);
    if (rc == 0 && !root)
        rc = ld_fail_at(&ld, 1, 1, -FB_ECONFIG,
                        "the file is empty; it needs at least "
                        "'services'");
    if (rc == 0)
        rc = config_build(&ld, name ? name : "-", root, out);
    node_free(root);
    ld_release(&ld);
    return rc;
}

/* Reads at most CFG_MAX_FILE + 1 bytes of path into *text (caller frees). */
static int file_read(struct ld *ld, const char *path, char **text, size_t *len)
{
    char ebuf[128], *buf = NULL;
    size_t cap, n = 0;
    struct stat st;
    ssize_t r;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ld_fail_at(ld, 0, 0, -FB_EIO, "cannot open: %s",
                          strerror_r(errno, ebuf, sizeof ebuf));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ld_fail_at(ld, 0, 0, -FB_EIO, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > CFG_MAX_FILE) {
        rc =
            ld_fail_at(ld, 0, 0, -FB_ECONFIG, "the file is larger than %u MiB", CFG_MAX_FILE >> 20);
        goto out;
    }
    cap = (size_t)st.st_size < CFG_MAX_FILE ? (size_t)st.st_size + 1 : CFG_MAX_FILE + 1;
    buf = malloc(cap);
    if (!buf) {
        rc = ld_nomem(ld);
        goto out;
    }
    while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ld_fail_at(ld, 0, 0, -FB_EIO, "cannot read: %s",
                            strerror_r(errno, ebuf, sizeof ebuf));
            goto out;
        }
        n += (size_t)r;
    }
    *text = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int config_load(const char *path, struct config **out, struct config_error *err)
{
    struct config_error scratch;
    struct ld ld = {0};
    char *text = NULL;
    size_t len = 0;
    int rc;

    ld.err = err ? err : &scratch;
    memset(ld.err, 0, sizeof *ld.err);
    *out = NULL;
    rc = file_read(&ld, path, &text, &len);
    if (rc == 0)
        rc = config_parse(path, text, len, out, err);
    free(text);
    return rc;
}

void config_error_format(const struct config_error *err, const char *file, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (!file)
        file = "-";
    if (err->line > 0 && err->path[0])
        snprintf(out, outlen, "%s:%d:%d: %s: %s", file, err->line, err->column, err->path,
                 err->message);
    else if (err->line > 0)
        snprintf(out, outlen, "%s:%d:%d: %s", file, err->line, err->column, err->message);
    else if (err->path[0])
        snprintf(out, outlen, "%s: %s: %s", file, err->path, err->message);
    else
        snprintf(out, outlen, "%s: %s", file, err->message);
}

/* ---- the tables for docs and tools ---------------------------------------------------------- */

static void keys_walk(const struct ctable *t, char *path, size_t plen, size_t cap, config_key_fn fn,
                      void *arg);

static void key_walk(const struct ckey *k, char *path, size_t plen, size_t cap, config_key_fn fn,
                     void *arg)
{
    const struct cchoice *c;
    int n = snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", k->name);
    size_t len = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : plen;

    fn(path, k->type->name, k->def, k->doc, arg);
    if (k->sub)
        keys_walk(k->sub, path, len, cap, fn, arg);
    if (k->item && k->item->sub && len + 2 < cap) {
        memcpy(path + len, "[]", 3);
        keys_walk(k->item->sub, path, len + 2, cap, fn, arg);
    }
    for (c = k->choices; c && c->key; c++) {
        n = snprintf(path + len, cap - len, ".%s", c->key);
        if (n > 0)
            fn(path, c->fixed ? c->fixed : "name", NULL, c->doc, arg);
    }
    path[plen] = '\0';
}

static void keys_walk(const struct ctable *t, char *path, size_t plen, size_t cap, config_key_fn fn,
                      void *arg)
{
    size_t i;

    for (i = 0; i < t->nkeys; i++)
        key_walk(&t->keys[i], path, plen, cap, fn, arg);
}

void config_keys_each(config_key_fn fn, void *arg)
{
    char path[128] = "";

    keys_walk(&top_table, path, 0, sizeof path, fn, arg);
}

int config_parse_steps(const char *const *texts, size_t n, struct cfg_step *out, char *why,
                       size_t whylen)
{
    size_t i;

    if (n == 0 || n > CFG_MAX_STEPS) {
        snprintf(why, whylen, "give 1 to %d steps", CFG_MAX_STEPS);
        return -FB_EINVAL;
    }
    for (i = 0; i < n; i++) {
        const char *s = texts[i], *pct = strchr(s, '%');
        uint64_t hold = 0;
        uint32_t h;

        if (!pct || !read_hundredths(s, (size_t)(pct - s), &h) || h == 0 || h > 10000 ||
            (pct[1] != '\0' && pct[1] != ':') ||
            (pct[1] == ':' && (!read_duration(pct + 2, false, &hold) || hold == 0 ||
                               hold > CFG_MAX_MS))) {
            snprintf(why, whylen, "steps[%zu]: bad step '%.40s': write PERCENT%%:HOLD such as "
                                  "'5%%:120s', and '100%%' last", i, s);
            return -FB_EINVAL;
        }
        out[i].weight = h / 100.0;
        out[i].hold_ms = hold;
        if (i > 0 && out[i].weight <= out[i - 1].weight) {
            snprintf(why, whylen, "steps[%zu]: each step's percentage must be above the one "
                                  "before it", i);
            return -FB_EINVAL;
        }
        if (i + 1 < n && hold == 0) {
            snprintf(why, whylen, "steps[%zu]: every step but the last needs a hold time", i);
            return -FB_EINVAL;
        }
    }
    if (out[n - 1].weight != 100 || out[n - 1].hold_ms) {
        snprintf(why, whylen, "the last step must be '100%%' with no hold time");
        return -FB_EINVAL;
    }
    return 0;
}
