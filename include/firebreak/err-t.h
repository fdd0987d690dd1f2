/*
 * err-t.h: the one table of error codes.
 *
 * Every action in firebreak returns 0 or a negative code from this table.
 * The same table yields the name the API prints ("error": NAME), the HTTP
 * status an API or proxy answer carries, and a default message.
 */
#ifndef FIREBREAK_ERR_T_H
#define FIREBREAK_ERR_T_H

/* X(code, name, http status, message) */
#define FB_ERR_MAP(X)                                                            \
    X(NOMEM, "out_of_memory", 500, "out of memory")                              \
    X(INVAL, "invalid", 400, "invalid argument")                                 \
    X(AGAIN, "again", 503, "not ready yet, try again")                           \
    X(IO, "io", 500, "input/output error")                                       \
    X(NOENT, "not_found", 404, "no such object")                                 \
    X(EXIST, "exists", 409, "already exists")                                    \
    X(TOOBIG, "too_big", 413, "over the configured limit")                       \
    X(CONFIG, "config", 400, "configuration error")                              \
    X(BADREQ, "bad_request", 400, "malformed request")                           \
    X(URITOOLONG, "uri_too_long", 414, "request line over the limit")            \
    X(HDRTOOBIG, "headers_too_large", 431, "header section over the limit")      \
    X(NOTIMPL, "not_implemented", 501, "transfer coding not implemented")        \
    X(VERSION, "version_not_supported", 505, "HTTP version not supported")       \
    X(BADRESP, "bad_response", 502, "malformed upstream response")               \
    X(CONNECT, "connect_failed", 502, "upstream connection failed")              \
    X(TIMEOUT, "timeout", 504, "timed out")                                      \
    X(UNAUTH, "unauthorized", 401, "missing or unknown bearer token")            \
    X(FORBID, "forbidden", 403, "the token's role does not allow this")          \
    X(CONFLICT, "conflict", 409, "conflicts with the current state")             \
    X(METHOD, "method_not_allowed", 405, "method not allowed here")              \
    X(STORE, "store", 500, "store error")

enum fb_err {
    FB_OK = 0,
#define FB_ERR_ENUM_(code, name, status, msg) FB_E##code,
    FB_ERR_MAP(FB_ERR_ENUM_)
#undef FB_ERR_ENUM_
    FB_ERR_COUNT_
};

#endif
