/*
 * admin.c: the admin listener's routing.
 *
 * GET /healthz answers 200 while the process serves (503 while draining);
 * GET /metrics renders every counter in the Prometheus text format. Other
 * paths answer a JSON error body {"error": NAME, "message": ...}.
 */
#include <string.h>

#include "firebreak/admin.h"
#include "firebreak/api.h"
#include "firebreak/buf.h"
#include "firebreak/err-t.h"
#include "firebreak/h1_parse.h"
#include "firebreak/http_server.h"
#include "firebreak/prom.h"

#define ADMIN_MAX_BODY (1u << 20)

struct admin {
    struct http_server *http;
};

static bool path_is(const struct http_request *req, const char *path)
{
    size_t n = strlen(path);

    return req->path.len == n && !memcmp(req->path.p, path, n);
}

static void admin_route(struct server *srv, const struct http_request *req,
                        struct http_response *resp)
{
    bool get = req->method == H1_M_GET || req->method == H1_M_HEAD;

    if (path_is(req, "/healthz")) {
        if (!get)
            http_response_json_error(resp, -FB_EINVAL, "use GET");
        else if (srv->draining)
            http_response_text(resp, 503, "draining");
        else
            http_response_text(resp, 200, "ok");
        return;
    }
    if (path_is(req, "/metrics")) {
        if (!get) {
            http_response_json_error(resp, -FB_EINVAL, "use GET");
            return;
        }
        resp->content_type = PROM_CONTENT_TYPE;
        if (metrics_render_prometheus(srv->metrics, &resp->body))
            http_response_json_error(resp, -FB_ENOMEM, "metrics too large to render");
        return;
    }
    http_response_json_error(resp, -FB_ENOENT, "no such endpoint");
}

static void admin_handle(void *arg, struct http_call *call)
{
    const struct h1_span p = call->req.path;

    if (p.len >= 7 && !memcmp(p.p, "/api/v1", 7) && (p.len == 7 || p.p[7] == '/')) {
        api_handle(arg, call);
        return;
    }
    admin_route(arg, &call->req, &call->resp);
    http_call_done(call);
}

int admin_start(struct server *srv)
{
    static struct admin admin;
    int rc;

    rc = http_server_new(srv->loop, &srv->cfg->admin_listen, ADMIN_MAX_BODY, admin_handle, srv,
                         &admin.http);
    if (rc)
        return rc;
    srv->admin = &admin;
    return 0;
}

void admin_stop(struct server *srv)
{
    if (!srv->admin)
        return;
    http_server_close(srv->admin->http);
    srv->admin->http = NULL;
    srv->admin = NULL;
}
