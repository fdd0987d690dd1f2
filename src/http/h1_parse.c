/*
 * h1_parse.c: strict, incremental, I/O-free HTTP/1.1 parsing (RFC 9112).
 *
 * Purpose: turn the bytes of a request or response head into a struct h1_msg
 * (spans into the caller's buffer, no copies, no allocation) and decode the
 * chunked transfer coding, refusing every input whose framing two HTTP
 * implementations could read differently.
 *
 * Heads are parsed in three phases, each a function below:
 *   1. head_scan: find the lines with memchr, bounded by lim->max_head. It
 *      checks the limits (request line, head size, field count) and that every
 *      line ends in CRLF. An incomplete head stops here: the caller calls again
 *      with more bytes, and only this cheap vectorised scan is repeated.
 *   2. line and field validation: one pass over the bytes of a complete head
 *      with a 256-entry class table (request or status line, then each field).
 *   3. framing: Content-Length, Transfer-Encoding, Host, Connection, Expect.
 *
 * Invariant (checked by the fuzz targets): the verdict never depends on where
 * the input was split. Errors are decided in byte order and phase 1 is the
 * same walk whether the head is complete or not, so if a prefix of a buffer
 * gives an error or a head, the whole buffer gives the same one.
 *
 * Cost: O(head) for a complete head (memchr per line plus one validation
 * pass); marking the fields named by Connection is O(fields x Connection
 * bytes), at most max_fields x max_head byte steps.
 *
 * The chunked decoder is a byte-at-a-time state machine for the framing bytes
 * and hands chunk data back as spans into the input:
 *
 *   SIZE --hex--> SIZE --';'--> EXT --CR--> SIZE_LF --LF--> DATA (size > 0)
 *     |  --SP/HT--> SIZE_WS --';'--> EXT          |
 *     '--CR--> SIZE_LF                            '--LF--> TR_START (size 0)
 *   DATA --size bytes--> DATA_CR --CR--> DATA_LF --LF--> SIZE
 *   TR_START --tchar--> TR_NAME --':'--> TR_VALUE --CR--> TR_LF --LF--> TR_START
 *   TR_START --CR--> END_LF --LF--> DONE
 *   any state --unexpected byte--> ERROR (sticky)
 *
 * Every transition is made by chunk_step() (framing bytes) or
 * h1_chunked_feed() (DATA).
 */
#include <limits.h>
#include <string.h>

#include "firebreak/err-t.h"
#include "firebreak/h1_parse.h"

/* Empty lines tolerated before a request line (RFC 9112 section 2.2). */
#define H1_MAX_EMPTY_LINES 4

/* Character classes of h1_class[]. */
enum {
    C_TCHAR = 0x01, /* token character (RFC 9110 section 5.6.2) */
    C_VCHAR = 0x02, /* visible ASCII 0x21-0x7e: request-target bytes */
    C_FVAL = 0x04,  /* field value, reason phrase: VCHAR, obs-text, SP, HTAB */
    C_HEX = 0x08,
    C_DIGIT = 0x10,
    C_HOST = 0x20, /* authority bytes of a Host value (RFC 3986) */
    C_WS = 0x40,   /* SP or HTAB */
};

static const unsigned char h1_class[256] = {
    /* 00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 08 */ 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 18 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 20 */ 0x44, 0x27, 0x06, 0x07, 0x27, 0x27, 0x27, 0x27,
    /* 28 */ 0x26, 0x26, 0x27, 0x27, 0x26, 0x27, 0x27, 0x06,
    /* 30 */ 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f,
    /* 38 */ 0x3f, 0x3f, 0x26, 0x26, 0x06, 0x26, 0x06, 0x06,
    /* 40 */ 0x06, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x27,
    /* 48 */ 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27,
    /* 50 */ 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27,
    /* 58 */ 0x27, 0x27, 0x27, 0x26, 0x06, 0x26, 0x07, 0x27,
    /* 60 */ 0x07, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x27,
    /* 68 */ 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27,
    /* 70 */ 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27, 0x27,
    /* 78 */ 0x27, 0x27, 0x27, 0x06, 0x07, 0x06, 0x27, 0x00,
    /* 80 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* 88 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* 90 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* 98 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* a0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* a8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* b0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* b8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* c0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* c8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* d0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* d8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* e0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* e8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* f0 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    /* f8 */ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
};

static bool is(unsigned char c, unsigned cls)
{
    return (h1_class[c] & cls) != 0;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

#define BYTES_01 0x0101010101010101ULL
#define BYTES_80 0x8080808080808080ULL

/* Index of the first byte at or after i that is not in [lo, 0x7e] (lo <=
 * 0x80), eight bytes at a time while the bytes are plain ASCII. The word test
 * is exact about whether a word holds such a byte (Bit Twiddling Hacks,
 * "determine if a word has a byte less than / greater than n"). */
static size_t ascii_run(const unsigned char *p, size_t i, size_t n, unsigned lo)
{
    uint64_t x;

    while (n - i >= 8) {
        memcpy(&x, p + i, 8);
        if ((((x - BYTES_01 * lo) & ~x) | ((x + BYTES_01) | x)) & BYTES_80)
            break;
        i += 8;
    }
    while (i < n && p[i] >= lo && p[i] < 0x7f)
        i++;
    return i;
}

/* Index of the first byte at or after i that may not appear in a field value
 * or reason phrase (VCHAR, obs-text, SP, HTAB), or n. */
static size_t fval_end(const unsigned char *p, size_t i, size_t n)
{
    i = ascii_run(p, i, n, 0x20);
    while (i < n && is(p[i], C_FVAL))
        i = ascii_run(p, i + 1, n, 0x20);
    return i;
}

/* Sets why and returns err, so that error paths read "rc = fail(...)". */
static int fail(struct h1_msg *msg, int err, const char *why)
{
    msg->why = why;
    return err;
}

/* ---------------------------------------------------------------- helpers */

void h1_limits_default(struct h1_limits *lim)
{
    lim->max_line = 8192;
    lim->max_head = 16384;
    lim->max_fields = 100;
}

/* Case-insensitive equality of n bytes at p with n bytes at q. */
static bool bytes_eq_nocase(const char *p, const char *q, size_t n)
{
    size_t i = 0;

    while (i < n && lower((unsigned char)p[i]) == lower((unsigned char)q[i]))
        i++;
    return i == n;
}

static bool span_eq_span(struct h1_span a, struct h1_span b)
{
    return a.len == b.len && bytes_eq_nocase(a.p, b.p, a.len);
}

bool h1_span_eq(struct h1_span s, const char *lower_lit)
{
    struct h1_span lit = {lower_lit, strlen(lower_lit)};

    return span_eq_span(s, lit);
}

static struct h1_span span_trim(const char *p, size_t n)
{
    struct h1_span s;

    while (n > 0 && is((unsigned char)*p, C_WS)) {
        p++;
        n--;
    }
    while (n > 0 && is((unsigned char)p[n - 1], C_WS))
        n--;
    s.p = p;
    s.len = n;
    return s;
}

/* Splits the next element off a comma-separated list: *rest is advanced past
 * it and its comma; the element comes back trimmed (possibly empty). */
static struct h1_span list_next(struct h1_span *rest)
{
    const char *comma = rest->len ? memchr(rest->p, ',', rest->len) : NULL;
    size_t n = comma ? (size_t)(comma - rest->p) : rest->len;
    struct h1_span elem = span_trim(rest->p, n);

    rest->p += comma ? n + 1 : n;
    rest->len -= comma ? n + 1 : n;
    return elem;
}

static bool list_has_span(struct h1_span value, struct h1_span token)
{
    bool found = false;

    while (!found && value.len > 0)
        found = span_eq_span(list_next(&value), token);
    return found;
}

bool h1_list_has(struct h1_span value, const char *lower_token)
{
    struct h1_span tok = {lower_token, strlen(lower_token)};

    return list_has_span(value, tok);
}

static const char *const h1_method_names[] = {
    [H1_M_OTHER] = "OTHER", [H1_M_GET] = "GET",         [H1_M_HEAD] = "HEAD",
    [H1_M_POST] = "POST",   [H1_M_PUT] = "PUT",         [H1_M_DELETE] = "DELETE",
    [H1_M_PATCH] = "PATCH", [H1_M_OPTIONS] = "OPTIONS", [H1_M_CONNECT] = "CONNECT",
    [H1_M_TRACE] = "TRACE",
};

const char *h1_method_name(enum h1_method m)
{
    size_t n = sizeof(h1_method_names) / sizeof(h1_method_names[0]);

    return ((size_t)m < n) ? h1_method_names[m] : "OTHER";
}

/* Methods are case-sensitive (RFC 9110 section 9.1): "get" is H1_M_OTHER. */
static enum h1_method method_lookup(struct h1_span s)
{
    enum h1_method m;

    for (m = H1_M_GET; m <= H1_M_TRACE; m++) {
        const char *name = h1_method_names[m];

        if (strlen(name) == s.len && memcmp(name, s.p, s.len) == 0)
            break;
    }
    return m <= H1_M_TRACE ? m : H1_M_OTHER;
}

/* ------------------------------------------------------------ known fields */

struct known_name {
    const char *name; /* lower case */
    size_t len;
    enum h1_known known;
    bool hop;
};

/* clang-format off */
#define KNOWN(name, known, hop) {name, sizeof(name) - 1, known, hop}
/* clang-format on */

/* Sorted by length, so that a lookup stops at the first longer name. */
static const struct known_name known_names[] = {
    KNOWN("te", H1_H_TE, true),
    KNOWN("host", H1_H_HOST, false),
    KNOWN("cookie", H1_H_COOKIE, false),
    KNOWN("expect", H1_H_EXPECT, false),
    KNOWN("trailer", H1_H_TRAILER, true),
    KNOWN("upgrade", H1_H_UPGRADE, true),
    KNOWN("location", H1_H_LOCATION, false),
    KNOWN("connection", H1_H_CONNECTION, true),
    KNOWN("keep-alive", H1_H_KEEP_ALIVE, true),
    KNOWN("traceparent", H1_H_TRACEPARENT, false),
    KNOWN("x-request-id", H1_H_X_REQUEST_ID, false),
    KNOWN("authorization", H1_H_AUTHORIZATION, false),
    KNOWN("content-length", H1_H_CONTENT_LENGTH, false),
    KNOWN("x-forwarded-for", H1_H_X_FORWARDED_FOR, false),
    KNOWN("proxy-connection", H1_H_PROXY_CONNECTION, true),
    KNOWN("transfer-encoding", H1_H_TRANSFER_ENCODING, true),
    KNOWN("x-forwarded-proto", H1_H_X_FORWARDED_PROTO, false),
    KNOWN("proxy-authorization", H1_H_PROXY_AUTHORIZATION, true),
    KNOWN("x-firebreak-release", H1_H_X_FIREBREAK_RELEASE, false),
};

/* Sets f->known and f->hop from the field name: a length compare for most
 * entries, a byte compare only when the length and first letter match. */
static void known_lookup(struct h1_field *f)
{
    size_t n = f->name.len, i;
    size_t count = sizeof(known_names) / sizeof(known_names[0]);
    unsigned char first = lower((unsigned char)f->name.p[0]);

    f->known = H1_H_OTHER;
    f->hop = false;
    for (i = 0; i < count && known_names[i].len <= n; i++) {
        const struct known_name *k = &known_names[i];

        if (k->len == n && (unsigned char)k->name[0] == first &&
            bytes_eq_nocase(f->name.p, k->name, n)) {
            f->known = k->known;
            f->hop = k->hop;
            break;
        }
    }
}

/* ------------------------------------------------------- phase 1: the scan */

/* Content length of the line from pos to the LF at lf: without its CR. */
static size_t line_content(const char *buf, size_t pos, size_t lf)
{
    return (lf > pos && buf[lf - 1] == '\r') ? lf - pos - 1 : lf - pos;
}

/* A first line still without its LF is over the limit once it has more than
 * max_line bytes, not counting a last CR that may start its CRLF. */
static bool first_line_too_long(const char *buf, size_t pos, size_t end, size_t max_line)
{
    size_t n = end - pos;

    return n > max_line && (n - max_line > 1 || buf[end - 1] != '\r');
}

/* The scan ran out of lines before the end of the head: decide between "more
 * bytes needed" and a limit already passed. */
static int scan_partial(const char *buf, size_t len, size_t win, size_t pos, bool in_first,
                        const struct h1_limits *lim, struct h1_msg *msg)
{
    int rc = 0;

    if (in_first && first_line_too_long(buf, pos, win, lim->max_line))
        rc = fail(msg, -FB_EURITOOLONG, "request line over the limit");
    else if (len >= lim->max_head || win == INT_MAX)
        rc = fail(msg, -FB_EHDRTOOBIG, "header section over the limit");
    return rc;
}

/* One line of the head, from pos to the LF at lf; *in_first is true until the
 * first non-empty line was seen, *empties counts empty lines before it.
 * Returns 1 at the end of the head, 0 to go on, or an error. */
static int scan_line(const char *buf, size_t pos, size_t lf, bool *in_first, unsigned *empties,
                     const struct h1_limits *lim, struct h1_msg *msg, struct h1_span *first)
{
    size_t n = line_content(buf, pos, lf);
    int rc = 0;

    if (*in_first && n > lim->max_line)
        rc = fail(msg, -FB_EURITOOLONG, "request line over the limit");
    else if (lf == pos || buf[lf - 1] != '\r')
        rc = fail(msg, -FB_EBADREQ, "line ends in a bare LF, not CRLF");
    else if (n == 0 && *in_first && ++*empties > H1_MAX_EMPTY_LINES)
        rc = fail(msg, -FB_EBADREQ, "too many empty lines before the start line");
    else if (n == 0 && !*in_first)
        rc = 1;
    else if (n > 0 && *in_first) {
        first->p = buf + pos;
        first->len = n;
        *in_first = false;
    } else if (n > 0 && msg->nfields >= lim->max_fields)
        rc = fail(msg, -FB_EHDRTOOBIG, "too many header fields");
    else if (n > 0) {
        msg->fields[msg->nfields].name.p = buf + pos;
        msg->fields[msg->nfields].name.len = n;
        msg->nfields++;
    }
    return rc;
}

/*
 * Phase 1. Walks the lines within the first max_head bytes. Returns the head
 * length when the empty line ending the head was found, 0 when more bytes are
 * needed, or an error. On success *first is the start line and each
 * msg->fields[i].name holds a raw field line (CRLF excluded) for phase 2.
 */
static int head_scan(const char *buf, size_t len, const struct h1_limits *lim, struct h1_msg *msg,
                     struct h1_span *first)
{
    size_t max = lim->max_head < INT_MAX ? lim->max_head : INT_MAX;
    size_t win = len < max ? len : max;
    size_t pos = 0;
    unsigned empties = 0;
    bool in_first = true;
    int rc = 0;

    while (rc == 0) {
        const char *lf = pos < win ? memchr(buf + pos, '\n', win - pos) : NULL;

        if (!lf) {
            rc = scan_partial(buf, len, win, pos, in_first, lim, msg);
            break;
        }
        rc = scan_line(buf, pos, (size_t)(lf - buf), &in_first, &empties, lim, msg, first);
        pos = (size_t)(lf - buf) + 1;
    }
    return rc == 1 ? (int)pos : rc;
}

/* ------------------------------------------------ phase 2: start line, fields */

static const char *ctl_why(unsigned char c, const char *nul, const char *cr, const char *other)
{
    return c == '\0' ? nul : c == '\r' ? cr : other;
}

/* "HTTP/" DIGIT "." DIGIT; major 1 only (505 otherwise), minor > 1 is 1.1. */
static int version_parse(const char *p, size_t n, struct h1_msg *msg)
{
    int rc = 0;

    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !is((unsigned char)p[5], C_DIGIT) || p[6] != '.' ||
        !is((unsigned char)p[7], C_DIGIT))
        rc = fail(msg, -FB_EBADREQ, "malformed HTTP version");
    else if (p[5] != '1')
        rc = fail(msg, -FB_EVERSION, "HTTP major version other than 1");
    else
        msg->minor = p[7] == '0' ? 0 : 1;
    return rc;
}

static bool is_alpha(unsigned char c)
{
    return lower(c) >= 'a' && lower(c) <= 'z';
}

/* absolute-form starts with scheme ":" (RFC 3986 section 3.1). */
static bool scheme_ok(struct h1_span t)
{
    const unsigned char *p = (const unsigned char *)t.p;
    size_t i = 1;

    while (i < t.len &&
           (is_alpha(p[i]) || is(p[i], C_DIGIT) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
        i++;
    return t.len > 0 && is_alpha(p[0]) && i < t.len && p[i] == ':';
}

/* authority-form of CONNECT: host ":" port, authority bytes only. */
static bool authority_ok(struct h1_span t)
{
    size_t i, colon = 0;
    bool ok = t.len > 0;

    for (i = 0; ok && i < t.len; i++) {
        ok = is((unsigned char)t.p[i], C_HOST) && t.p[i] != '@';
        if (t.p[i] == ':')
            colon = i;
    }
    ok = ok && colon > 0 && colon + 1 < t.len;
    for (i = colon + 1; ok && i < t.len; i++)
        ok = is((unsigned char)t.p[i], C_DIGIT);
    return ok;
}

/* The four request-target forms of RFC 9112 section 3.2. */
static int target_check(struct h1_msg *msg)
{
    struct h1_span t = msg->target;
    int rc = 0;

    if (msg->method == H1_M_CONNECT) {
        if (!authority_ok(t))
            rc = fail(msg, -FB_EBADREQ, "CONNECT target is not host:port");
    } else if (t.len == 1 && t.p[0] == '*') {
        if (msg->method != H1_M_OPTIONS)
            rc = fail(msg, -FB_EBADREQ, "asterisk target with a method other than OPTIONS");
    } else if (t.p[0] != '/' && !scheme_ok(t)) {
        rc = fail(msg, -FB_EBADREQ, "request target is neither a path nor an absolute URI");
    }
    return rc;
}

/* method SP request-target SP HTTP-version, exactly one SP between parts. */
static int request_line_parse(struct h1_span line, struct h1_msg *msg)
{
    const unsigned char *p = (const unsigned char *)line.p;
    size_t n = line.len, i = 0, t;
    int rc = 0;

    while (i < n && is(p[i], C_TCHAR))
        i++;
    if (i == 0 || i == n || p[i] != ' ') {
        rc = fail(msg, -FB_EBADREQ,
                  i == 0         ? "missing or invalid method"
                  : i == n       ? "request line has no target"
                  : p[i] == '\r' ? "bare CR in request line"
                                 : "invalid byte in method");
        goto out;
    }
    msg->method_name.p = line.p;
    msg->method_name.len = i;
    msg->method = method_lookup(msg->method_name);
    t = ++i;
    i = ascii_run(p, i, n, 0x21);
    if (i == t || i == n || p[i] != ' ') {
        rc = fail(msg, -FB_EBADREQ,
                  i == t         ? "empty request target (two spaces?)"
                  : i == n       ? "request line has no version"
                  : p[i] == '\r' ? "bare CR in request line"
                                 : "invalid byte in request target");
        goto out;
    }
    msg->target.p = line.p + t;
    msg->target.len = i - t;
    rc = target_check(msg);
    if (rc == 0)
        rc = version_parse(line.p + i + 1, n - i - 1, msg);
out:
    return rc;
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ]: a missing SP before an empty
 * reason is tolerated; status 100 to 599 only. */
static int status_line_parse(struct h1_span line, struct h1_msg *msg)
{
    const unsigned char *p = (const unsigned char *)line.p;
    size_t n = line.len, i;
    int rc = version_parse(line.p, n < 8 ? n : 8, msg);

    if (rc != 0)
        goto out;
    if (n < 12 || p[8] != ' ' || !is(p[9], C_DIGIT) || !is(p[10], C_DIGIT) || !is(p[11], C_DIGIT) ||
        (n > 12 && p[12] != ' ')) {
        rc = fail(msg, -FB_EBADRESP, "malformed status code");
        goto out;
    }
    msg->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (msg->status < 100 || msg->status > 599) {
        rc = fail(msg, -FB_EBADRESP, "status code out of range 100-599");
        goto out;
    }
    i = n > 13 ? fval_end(p, 13, n) : n;
    if (n > 13 && i < n) {
        rc = fail(msg, -FB_EBADRESP,
                  ctl_why(p[i], "NUL in reason phrase", "bare CR in status line",
                          "control character in reason phrase"));
        goto out;
    }
    msg->reason.p = line.p + (n > 13 ? 13 : n);
    msg->reason.len = n > 13 ? n - 13 : 0;
out:
    return rc;
}

/* field-name ":" OWS field-value OWS; f->name holds the raw line on entry. */
static int field_parse(struct h1_field *f, struct h1_msg *msg)
{
    const unsigned char *p = (const unsigned char *)f->name.p;
    size_t n = f->name.len, i = 0, v;
    int rc = 0;

    while (i < n && is(p[i], C_TCHAR))
        i++;
    if (i == 0 || i == n || p[i] != ':') {
        rc = fail(msg, -FB_EBADREQ,
                  is(p[0], C_WS)   ? "obs-fold: field line starts with whitespace"
                  : p[0] == ':'    ? "empty field name"
                  : i == n         ? "field line without a colon"
                  : is(p[i], C_WS) ? "whitespace between field name and colon"
                  : p[i] == '\r'   ? "bare CR in field name"
                                   : "invalid byte in field name");
        goto out;
    }
    v = fval_end(p, i + 1, n);
    if (v < n) {
        rc = fail(msg, -FB_EBADREQ,
                  ctl_why(p[v], "NUL in field value", "bare CR in field value",
                          "control character in field value"));
        goto out;
    }
    f->name.len = i;
    f->value = span_trim(f->name.p + i + 1, n - i - 1);
    known_lookup(f);
out:
    return rc;
}

/* ----------------------------------------------------- phase 3: framing */

/* Everything the framing decision needs, gathered in one walk of the fields. */
struct framing {
    unsigned n_cl, n_te, n_host, n_conn;
    bool cl_bad;
    bool conn_close, conn_keep_alive, conn_upgrade, has_upgrade, expect_continue;
    bool conn_other; /* Connection lists an option naming some other field */
    /* Transfer-Encoding across all its fields, in order */
    unsigned te_codings, te_chunked;
    bool te_last_chunked, te_bad;
};

/* 1*DIGIT not above 2^63-1. */
static bool content_length_parse(struct h1_span v, uint64_t *out)
{
    const uint64_t max = INT64_MAX;
    uint64_t n = 0;
    size_t i = 0;

    while (i < v.len && is((unsigned char)v.p[i], C_DIGIT) &&
           n <= (max - (uint64_t)(v.p[i] - '0')) / 10) {
        n = n * 10 + (uint64_t)(v.p[i] - '0');
        i++;
    }
    *out = n;
    return v.len > 0 && i == v.len;
}

static size_t token_end(struct h1_span s, size_t i)
{
    while (i < s.len && is((unsigned char)s.p[i], C_TCHAR))
        i++;
    return i;
}

static size_t ows_end(struct h1_span s, size_t i)
{
    while (i < s.len && is((unsigned char)s.p[i], C_WS))
        i++;
    return i;
}

/* transfer-coding = token *( OWS ";" OWS token "=" token ); quoted parameter
 * values are not accepted. Returns false when the element is malformed;
 * *params tells whether parameters were present. */
static bool coding_parse(struct h1_span e, struct h1_span *name, bool *params)
{
    size_t i = token_end(e, 0), k;
    bool ok = i > 0;

    name->p = e.p;
    name->len = i;
    *params = false;
    while (ok && i < e.len) {
        i = ows_end(e, i);
        ok = i < e.len && e.p[i] == ';';
        i = ows_end(e, i + 1);
        k = token_end(e, i);
        ok = ok && k > i && k < e.len && e.p[k] == '=';
        i = token_end(e, k + 1);
        ok = ok && i > k + 1;
        *params = true;
    }
    return ok;
}

static void te_scan(struct h1_span value, struct framing *fr)
{
    while (value.len > 0) {
        struct h1_span e = list_next(&value), name;
        bool params, chunked;

        if (e.len == 0)
            continue;
        fr->te_bad |= !coding_parse(e, &name, &params);
        chunked = h1_span_eq(name, "chunked");
        fr->te_bad |= chunked && params;
        fr->te_chunked += chunked;
        fr->te_codings++;
        fr->te_last_chunked = chunked;
    }
}

static void connection_scan(struct h1_span value, struct framing *fr)
{
    while (value.len > 0) {
        struct h1_span e = list_next(&value);

        bool close = h1_span_eq(e, "close"), keep_alive = h1_span_eq(e, "keep-alive");
        bool upgrade = h1_span_eq(e, "upgrade");

        fr->conn_close |= close;
        fr->conn_keep_alive |= keep_alive;
        fr->conn_upgrade |= upgrade;
        fr->conn_other |= e.len > 0 && !keep_alive && !upgrade;
    }
}

static bool host_ok(struct h1_span v)
{
    size_t i = 0;

    while (i < v.len && is((unsigned char)v.p[i], C_HOST))
        i++;
    return i == v.len;
}

static void framing_field(struct h1_msg *msg, const struct h1_field *f, struct framing *fr)
{
    switch (f->known) {
    case H1_H_CONTENT_LENGTH:
        fr->n_cl++;
        fr->cl_bad |= !content_length_parse(f->value, &msg->content_length);
        break;
    case H1_H_TRANSFER_ENCODING:
        fr->n_te++;
        te_scan(f->value, fr);
        break;
    case H1_H_HOST:
        if (fr->n_host++ == 0) {
            msg->host = f->value;
            msg->has_host = true;
        }
        break;
    case H1_H_CONNECTION:
        fr->n_conn++;
        connection_scan(f->value, fr);
        break;
    case H1_H_UPGRADE:
        fr->has_upgrade = true;
        break;
    case H1_H_EXPECT:
        fr->expect_continue |= h1_span_eq(f->value, "100-continue");
        break;
    default:
        break;
    }
}

/* Marks as hop-by-hop every field named in a Connection field, except
 * Content-Length and Host: the framing and the routing of the message must
 * not be removable by the sender (a proxy that dropped Content-Length but
 * forwarded the body would frame it differently from its peer). */
static void connection_mark(struct h1_msg *msg)
{
    unsigned i, j;

    for (i = 0; i < msg->nfields; i++) {
        struct h1_field *f = &msg->fields[i];
        bool exempt = f->known == H1_H_CONTENT_LENGTH || f->known == H1_H_HOST;

        for (j = 0; !f->hop && !exempt && j < msg->nfields; j++) {
            if (msg->fields[j].known == H1_H_CONNECTION)
                f->hop = list_has_span(msg->fields[j].value, f->name);
        }
    }
}

static void framing_gather(struct h1_msg *msg, struct framing *fr)
{
    unsigned i;

    memset(fr, 0, sizeof(*fr));
    for (i = 0; i < msg->nfields; i++)
        framing_field(msg, &msg->fields[i], fr);
    /* keep-alive and upgrade name fields that are hop-by-hop already */
    if (fr->conn_other)
        connection_mark(msg);
    msg->keep_alive = !fr->conn_close && (msg->minor >= 1 || fr->conn_keep_alive);
    msg->upgrade = fr->conn_upgrade && fr->has_upgrade;
}

/* Checks shared by requests and responses; err is the code for a malformed
 * message (-FB_EBADREQ or -FB_EBADRESP). */
static int framing_common(struct h1_msg *msg, const struct framing *fr, int err)
{
    int rc = 0;

    if (fr->n_cl > 1)
        rc = fail(msg, err, "more than one Content-Length field");
    else if (fr->cl_bad)
        rc = fail(msg, err, "Content-Length is not a decimal number below 2^63");
    else if (fr->n_cl > 0 && fr->n_te > 0)
        rc = fail(msg, err, "both Content-Length and Transfer-Encoding");
    else if (fr->n_te > 0 && msg->minor == 0)
        rc = fail(msg, err, "Transfer-Encoding in an HTTP/1.0 message");
    else if (fr->n_te > 0 && (fr->te_bad || fr->te_codings == 0))
        rc = fail(msg, err, "malformed Transfer-Encoding");
    else if (fr->te_chunked > 1)
        rc = fail(msg, err, "chunked applied more than once");
    else if (fr->te_chunked == 1 && !fr->te_last_chunked)
        rc = fail(msg, err, "chunked is not the final transfer coding");
    else if (fr->n_te > 0 && fr->te_codings > 1)
        rc = fail(msg, err == -FB_EBADREQ ? -FB_ENOTIMPL : err,
                  "transfer coding other than chunked");
    else if (fr->n_te > 0 && fr->te_chunked == 0)
        rc = fail(msg, err == -FB_EBADREQ ? -FB_ENOTIMPL : err, "unknown transfer coding");
    return rc;
}

static int request_framing(struct h1_msg *msg)
{
    struct framing fr;
    int rc;

    framing_gather(msg, &fr);
    rc = framing_common(msg, &fr, -FB_EBADREQ);
    if (rc != 0)
        goto out;
    if (fr.n_host > 1)
        rc = fail(msg, -FB_EBADREQ, "more than one Host field");
    else if (fr.n_host == 0 && msg->minor >= 1)
        rc = fail(msg, -FB_EBADREQ, "HTTP/1.1 request without Host");
    else if (fr.n_host == 1 && !host_ok(msg->host))
        rc = fail(msg, -FB_EBADREQ, "invalid byte in Host");
    if (rc != 0)
        goto out;
    /* RFC 9110 section 10.1.1: ignore 100-continue from an HTTP/1.0 client */
    msg->expect_continue = fr.expect_continue && msg->minor >= 1;
    msg->body = fr.n_te > 0 ? H1_BODY_CHUNKED : fr.n_cl > 0 ? H1_BODY_LENGTH : H1_BODY_NONE;
out:
    return rc;
}

static bool response_bodyless(const struct h1_msg *msg, enum h1_method req_method)
{
    return req_method == H1_M_HEAD || msg->status < 200 || msg->status == 204 ||
           msg->status == 304 || (req_method == H1_M_CONNECT && msg->status < 300);
}

static int response_framing(struct h1_msg *msg, enum h1_method req_method)
{
    struct framing fr;
    int rc;

    framing_gather(msg, &fr);
    msg->host.p = NULL;
    msg->host.len = 0;
    msg->has_host = false;
    rc = framing_common(msg, &fr, -FB_EBADRESP);
    if (rc != 0)
        goto out;
    if (response_bodyless(msg, req_method))
        msg->body = H1_BODY_NONE;
    else if (fr.n_te > 0)
        msg->body = H1_BODY_CHUNKED;
    else if (fr.n_cl > 0)
        msg->body = H1_BODY_LENGTH;
    else
        msg->body = H1_BODY_CLOSE;
    if (msg->body == H1_BODY_CLOSE)
        msg->keep_alive = false;
out:
    return rc;
}

/* ------------------------------------------------------------- the heads */

static void msg_reset(struct h1_msg *msg)
{
    struct h1_field *fields = msg->fields;

    memset(msg, 0, sizeof(*msg));
    msg->fields = fields;
    msg->method = H1_M_OTHER;
    msg->body = H1_BODY_NONE;
}

static int fields_parse(struct h1_msg *msg)
{
    unsigned i;
    int rc = 0;

    for (i = 0; rc == 0 && i < msg->nfields; i++)
        rc = field_parse(&msg->fields[i], msg);
    return rc;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *lim, struct h1_msg *msg)
{
    struct h1_span line = {NULL, 0};
    int head, rc;

    msg_reset(msg);
    head = head_scan(buf, len, lim, msg, &line);
    if (head <= 0) {
        rc = head;
        goto out;
    }
    rc = request_line_parse(line, msg);
    if (rc == 0)
        rc = fields_parse(msg);
    if (rc == 0)
        rc = request_framing(msg);
    if (rc == 0) {
        msg->head_len = (size_t)head;
        rc = head;
    }
out:
    return rc;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *lim,
                      enum h1_method req_method, struct h1_msg *msg)
{
    struct h1_span line = {NULL, 0};
    int head, rc;

    msg_reset(msg);
    head = head_scan(buf, len, lim, msg, &line);
    if (head <= 0) {
        rc = head;
        goto out;
    }
    rc = status_line_parse(line, msg);
    if (rc == 0)
        rc = fields_parse(msg);
    if (rc == 0)
        rc = response_framing(msg, req_method);
    if (rc == 0) {
        msg->head_len = (size_t)head;
        rc = head;
    }
out:
    if (rc == -FB_EURITOOLONG)
        msg->why = "status line over the limit";
    /* Every malformed response is the upstream's fault: 502. */
    return rc < 0 ? -FB_EBADRESP : rc;
}

/* ---------------------------------------------------------- chunked body */

enum chunk_state {
    CH_SIZE,
    CH_SIZE_WS,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START,
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERROR,
};

void h1_chunked_init(struct h1_chunked *c, size_t max_line, size_t max_trailer)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
    c->max_line = max_line;
    c->max_trailer = max_trailer;
}

static int chunk_fail(struct h1_chunked *c, const char *why)
{
    c->state = CH_ERROR;
    c->why = why;
    return -FB_EBADREQ;
}

static int chunk_size_hex(struct h1_chunked *c, unsigned char b)
{
    unsigned d = is(b, C_DIGIT) ? (unsigned)(b - '0') : (unsigned)(lower(b) - 'a' + 10);
    int rc = 0;

    if (c->remaining > (UINT64_MAX >> 4))
        rc = chunk_fail(c, "chunk size over 64 bits");
    else
        c->remaining = (c->remaining << 4) | d;
    c->seen_digit = true;
    return rc;
}

static int chunk_size_byte(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (c->state == CH_SIZE && is(b, C_HEX))
        rc = chunk_size_hex(c, b);
    else if (!c->seen_digit)
        rc = chunk_fail(c, (b == '+' || b == '-')     ? "sign in chunk size"
                           : (b == '\r' || b == '\n') ? "empty chunk size"
                                                      : "chunk size is not hexadecimal");
    else if (b == ';')
        c->state = CH_EXT;
    else if (is(b, C_WS))
        c->state = CH_SIZE_WS;
    else if (b == '\r')
        rc = c->state == CH_SIZE ? (c->state = CH_SIZE_LF, 0)
                                 : chunk_fail(c, "whitespace after chunk size without extension");
    else
        rc = chunk_fail(c, (b == 'x' || b == 'X') ? "0x prefix in chunk size"
                           : b == '\n'            ? "bare LF after chunk size"
                                                  : "invalid byte after chunk size");
    return rc;
}

static int chunk_ext_byte(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (b == '\r')
        c->state = CH_SIZE_LF;
    else if (!is(b, C_FVAL))
        rc = chunk_fail(c, b == '\n' ? "bare LF after chunk extension"
                                     : "control character in chunk extension");
    return rc;
}

/* A byte of the chunk-size line (size, whitespace, extension, CR). */
static int chunk_line_byte(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (b != '\r' && ++c->line_len > c->max_line)
        rc = chunk_fail(c, "chunk-size line over the limit");
    else if (c->state == CH_EXT)
        rc = chunk_ext_byte(c, b);
    else
        rc = chunk_size_byte(c, b);
    return rc;
}

static int chunk_trailer_start(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (b == '\r')
        c->state = CH_END_LF;
    else if (is(b, C_TCHAR))
        c->state = CH_TR_NAME;
    else
        rc = chunk_fail(c, is(b, C_WS) ? "obs-fold in trailer section"
                           : b == ':'  ? "empty field name in trailer"
                           : b == '\n' ? "bare LF in trailer section"
                                       : "invalid byte in trailer field name");
    return rc;
}

static int chunk_trailer_name(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (b == ':')
        c->state = CH_TR_VALUE;
    else if (!is(b, C_TCHAR))
        rc = chunk_fail(c, is(b, C_WS)                ? "whitespace between trailer name and colon"
                           : (b == '\r' || b == '\n') ? "trailer line without a colon"
                                                      : "invalid byte in trailer field name");
    return rc;
}

static int chunk_trailer_value(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (b == '\r')
        c->state = CH_TR_LF;
    else if (!is(b, C_FVAL))
        rc = chunk_fail(c, b == '\0'   ? "NUL in trailer value"
                           : b == '\n' ? "bare LF in trailer section"
                                       : "control character in trailer value");
    return rc;
}

/* A byte of the trailer section: fields as in a head, then CRLF. */
static int chunk_trailer_byte(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    if (++c->trailer_len > c->max_trailer)
        rc = chunk_fail(c, "trailer section over the limit");
    else if (c->state == CH_TR_START)
        rc = chunk_trailer_start(c, b);
    else if (c->state == CH_TR_NAME)
        rc = chunk_trailer_name(c, b);
    else if (c->state == CH_TR_VALUE)
        rc = chunk_trailer_value(c, b);
    else if (c->state == CH_TR_LF)
        rc = b == '\n' ? (c->state = CH_TR_START, 0) : chunk_fail(c, "bare CR in trailer");
    else if (b == '\n') /* CH_END_LF */
        c->done = (c->state = CH_DONE, true);
    else
        rc = chunk_fail(c, "bare CR after trailer section");
    return rc;
}

/* One framing byte in any state but CH_DATA, CH_DONE and CH_ERROR. */
static int chunk_step(struct h1_chunked *c, unsigned char b)
{
    int rc = 0;

    switch (c->state) {
    case CH_SIZE:
    case CH_SIZE_WS:
    case CH_EXT:
        rc = chunk_line_byte(c, b);
        break;
    case CH_SIZE_LF:
        if (b != '\n')
            rc = chunk_fail(c, "bare CR in chunk-size line");
        else
            c->state = c->remaining > 0 ? CH_DATA : CH_TR_START;
        c->line_len = 0;
        break;
    case CH_DATA_CR:
        rc = b == '\r' ? (c->state = CH_DATA_LF, 0)
                       : chunk_fail(c, "chunk data not followed by CRLF");
        break;
    case CH_DATA_LF:
        rc = b == '\n' ? (c->state = CH_SIZE, 0) : chunk_fail(c, "chunk data not followed by CRLF");
        c->seen_digit = false;
        break;
    default:
        rc = chunk_trailer_byte(c, b);
        break;
    }
    return rc;
}

int h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                    const char **data, size_t *data_len)
{
    size_t i = 0;
    int rc = c->state == CH_ERROR ? -FB_EBADREQ : 0;

    *data = NULL;
    *data_len = 0;
    while (rc == 0 && i < len && !c->done) {
        if (c->state == CH_DATA) {
            size_t n = c->remaining < len - i ? (size_t)c->remaining : len - i;

            *data = in + i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            i += n;
            break;
        }
        rc = chunk_step(c, (unsigned char)in[i]);
        if (rc == 0)
            i++;
    }
    *consumed = i;
    return rc;
}
