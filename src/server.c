/*
 * server.c: wiring of the parts, start-up, reload and shutdown order.
 *
 * Start-up: config -> metrics -> route table -> access log -> admin listener
 * -> workers -> signals. Shutdown (SIGTERM/SIGINT): admin /healthz turns 503,
 * workers stop accepting and finish in-flight requests, the process exits 0
 * when none is left or when timeouts.drain has passed, whichever is first.
 *
 * Reload (SIGHUP): the file is parsed and checked whole; only then is a new
 * route table built and published with one pointer swap. The old table is
 * freed on the libuv thread pool after an RCU grace period, so no worker can
 * still be reading it. A bad file changes nothing. Listen addresses and the
 * worker count need a restart; a reload that changes them says so.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "firebreak/admin.h"
#include "firebreak/affected.h"
#include "firebreak/config.h"
#include "firebreak/control.h"
#include "firebreak/err.h"
#include "firebreak/health.h"
#include "firebreak/journal.h"
#include "firebreak/log.h"
#include "firebreak/metrics.h"
#include "firebreak/prom.h"
#include "firebreak/proxy.h"
#include "firebreak/route.h"
#include "firebreak/server.h"
#include "firebreak/statuspage.h"
#include "firebreak/webhook.h"

struct table_retire {
    uv_work_t work;
    struct route_table *old;
};

static void retire_work(uv_work_t *w)
{
    synchronize_rcu();
}

static void retire_done(uv_work_t *w, int status)
{
    struct table_retire *r = w->data;

    route_table_free(r->old);
    free(r);
}

/* Publishes t; the previous table is freed after a grace period. */
void server_publish(struct server *srv, struct route_table *t)
{
    struct route_table *old = rcu_xchg_pointer(&srv->table, t);
    struct table_retire *r;

    if (!old)
        return;
    r = calloc(1, sizeof(*r));
    if (!r) {
        /* Without memory to defer, waiting here is the safe choice. */
        synchronize_rcu();
        route_table_free(old);
        return;
    }
    r->old = old;
    r->work.data = r;
    uv_queue_work(srv->loop, &r->work, retire_work, retire_done);
}

/* Every event goes to the webhooks whose filter takes its type. The chat
 * line is left to the webhook part, which writes it from the data's
 * incident, title, severity, status, service, release and reason, escaped for
 * chat markup; an event's own "text" (a note, say) travels as "message". */
static void event_to_webhooks(void *arg, const char *type, const char *service,
                              const char *release, json_t *details)
{
    struct server *srv = arg;
    json_t *p = json_is_object(details) ? json_deep_copy(details) : json_object();

    if (service)
        json_object_set_new(p, "service", json_string(service));
    if (release)
        json_object_set_new(p, "release", json_string(release));
    if (json_object_get(p, "text")) {
        json_object_set(p, "message", json_object_get(p, "text"));
        json_object_del(p, "text");
    }
    webhook_send(srv->webhook, type, p);
}

static int load_config(const char *path, struct config **out)
{
    struct config_error err;
    char msg[1024];
    int rc;

    rc = config_load(path, out, &err);
    if (rc) {
        config_error_format(&err, path, msg, sizeof(msg));
        fb_error("%s", msg);
    }
    return rc;
}

static int open_access_log(struct server *srv)
{
    const struct config *cfg = srv->cfg;

    srv->access_log_fd = -1;
    if (cfg->access_log == CFG_LOG_STDOUT) {
        srv->access_log_fd = STDOUT_FILENO;
    } else if (cfg->access_log == CFG_LOG_FILE) {
        srv->access_log_fd =
            open(cfg->access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (srv->access_log_fd < 0) {
            fb_error("access_log: cannot open %s: %s", cfg->access_log_path, strerror(errno));
            return -FB_EIO;
        }
    }
    return 0;
}

/* New redact keys take effect from the journal's next batch; a new ring size
 * or body cap needs a restart. */
static void journal_reload(struct server *srv, const struct config *cfg)
{
    const char *keys[JOURNAL_REDACT_MAX];
    struct journal_options opt;

    if (!srv->journal)
        return;
    if (journal_options_from_config(cfg, cfg->workers, &opt, keys, JOURNAL_REDACT_MAX) ||
        journal_set_redact(srv->journal, opt.redact, opt.nredact))
        fb_warn("reload: the journal keeps its previous redact keys");
}

static bool addr_same(const struct cfg_addr *a, const struct cfg_addr *b)
{
    return !strcmp(a->text, b->text);
}

int server_reload(struct server *srv)
{
    struct config *cfg, *old;
    int rc;

    fb_info("reloading %s", srv->config_path);
    rc = load_config(srv->config_path, &cfg);
    if (rc) {
        fb_error("reload refused: the running configuration is kept");
        return rc;
    }
    if (!addr_same(&cfg->listen, &srv->cfg->listen) ||
        !addr_same(&cfg->admin_listen, &srv->cfg->admin_listen) ||
        cfg->workers != srv->cfg->workers)
        fb_warn("reload: listen addresses and workers change only at restart");
    old = srv->cfg;
    srv->cfg = cfg;
    if (srv->webhook && webhook_reconfigure(srv->webhook, cfg))
        fb_warn("reload: webhooks keep their previous settings");
    journal_reload(srv, cfg);
    rc = control_merge_config(&srv->control, cfg);
    if (!rc)
        rc = control_publish(&srv->control, NULL);
    if (rc) {
        /* The spec may hold new endpoints of cfg; they are harmless under the
         * old config, which routes only the services it declares. */
        srv->cfg = old;
        config_free(cfg);
        fb_error("reload refused: %s", fb_err_message(rc));
        return rc;
    }
    config_free(old);
    fb_info("reloaded: %zu services, table version %llu", cfg->nservices,
            (unsigned long long)srv->table_version);
    control_event(&srv->control, "config_reload", "system", NULL, NULL,
                  json_pack("{s:s, s:i}", "config", srv->config_path, "services",
                            (int)cfg->nservices));
    return 0;
}

static void stop_workers(struct server *srv)
{
    unsigned i;

    for (i = 0; i < srv->nworkers; i++)
        worker_request_stop(&srv->workers[i]);
    for (i = 0; i < srv->nworkers; i++)
        worker_join(&srv->workers[i]);
    srv->nworkers = 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void server_finish(struct server *srv)
{
    /* The journal closes in server_release, once no journal query can be in
     * flight on the thread pool. */
    stop_workers(srv);
    admin_stop(srv);
    statuspage_stop(srv);
    control_stop(&srv->control);
    webhook_free(srv->webhook);
    srv->webhook = NULL;
    uv_walk(srv->loop, close_walk, NULL);
}

static unsigned clients_left(struct server *srv)
{
    unsigned i, n = 0;

    for (i = 0; i < srv->nworkers; i++)
        n += __atomic_load_n(&srv->workers[i].nclients, __ATOMIC_RELAXED);
    return n;
}

static void on_drain_poll(uv_timer_t *t)
{
    struct server *srv = t->data;

    if (clients_left(srv) == 0) {
        fb_info("drained; exiting");
        server_finish(srv);
    }
}

static void on_drain_deadline(uv_timer_t *t)
{
    struct server *srv = t->data;

    fb_warn("drain deadline passed with %u connections open; closing them", clients_left(srv));
    server_finish(srv);
}

static void server_drain(struct server *srv)
{
    unsigned i;

    if (srv->draining)
        return;
    srv->draining = true;
    fb_info("draining: no new connections; waiting up to %llu ms for in-flight requests",
            (unsigned long long)srv->cfg->timeouts.drain);
    for (i = 0; i < srv->nworkers; i++)
        worker_request_drain(&srv->workers[i]);
    uv_timer_init(srv->loop, &srv->drain_poll);
    srv->drain_poll.data = srv;
    uv_timer_start(&srv->drain_poll, on_drain_poll, 20, 20);
    uv_timer_init(srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    uv_timer_start(&srv->drain_timer, on_drain_deadline, srv->cfg->timeouts.drain, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = s->data;

    if (signum == SIGHUP)
        server_reload(srv);
    else
        server_drain(srv);
}

static void signals_init(struct server *srv)
{
    uv_signal_t *sigs[] = {&srv->sighup, &srv->sigterm, &srv->sigint};
    int nums[] = {SIGHUP, SIGTERM, SIGINT};
    unsigned i;

    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < 3; i++) {
        uv_signal_init(srv->loop, sigs[i]);
        sigs[i]->data = srv;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
}

/* firebreak_journal_*: what the journal wrote, dropped and redacted, and its loading backlog. */
static int render_journal(struct fb_buf *out, void *arg)
{
    struct server *srv = arg;
    struct journal_stats st;
    static const struct {
        const char *name, *help;
        size_t off;
    } rows[] = {
        {"firebreak_journal_written_total", "Write records committed to the journal.",
         offsetof(struct journal_stats, written)},
        {"firebreak_journal_dropped_total",
         "Write records the journal will never hold (a full ring or a failed commit).",
         offsetof(struct journal_stats, dropped)},
        {"firebreak_journal_identity_errors_total",
         "Bearer tokens whose sub claim could not be read.",
         offsetof(struct journal_stats, ident_errors)},
        {"firebreak_journal_bodies_redacted_total", "Request bodies with a value redacted.",
         offsetof(struct journal_stats, bodies_redacted)},
        {"firebreak_journal_trimmed_total", "Records deleted by retention.",
         offsetof(struct journal_stats, trimmed)},
    };
    size_t i;
    int rc = 0;

    if (!srv->journal)
        return 0;
    journal_stats(srv->journal, &st);
    for (i = 0; !rc && i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t v;

        memcpy(&v, (const char *)&st + rows[i].off, sizeof(v));
        rc = prom_family(out, rows[i].name, "counter", rows[i].help);
        if (!rc)
            rc = prom_sample_u64(out, rows[i].name, NULL, 0, v);
    }
    if (!rc)
        rc = prom_family(out, "firebreak_journal_loading_records", "gauge",
                         "Committed write records not yet loaded into journal.db.");
    if (!rc)
        rc = prom_sample_u64(out, "firebreak_journal_loading_records", NULL, 0, st.loading);
    return rc;
}

/* STATE/journal.db: opened before the workers start, closed after they stop. */
static int journal_init(struct server *srv)
{
    const char *keys[JOURNAL_REDACT_MAX];
    struct journal_options opt;
    char path[4200], err[256];
    int rc;

    rc = journal_options_from_config(srv->cfg, srv->cfg->workers, &opt, keys,
                                     JOURNAL_REDACT_MAX);
    if (rc) {
        fb_error("journal: too many redact keys in the config");
        return rc;
    }
    snprintf(path, sizeof(path), "%s/journal.db", srv->control.state_dir);
    rc = journal_open(path, &opt, &srv->journal, err, sizeof(err));
    if (!rc)
        rc = journal_start(srv->journal);
    if (!rc)
        rc = metrics_add_renderer(srv->metrics, render_journal, srv);
    if (rc)
        fb_error("journal: %s", err[0] ? err : fb_err_message(rc));
    return rc;
}

static int workers_start(struct server *srv)
{
    unsigned i;
    int rc;

    srv->workers = calloc(srv->cfg->workers, sizeof(*srv->workers));
    if (!srv->workers)
        return -FB_ENOMEM;
    for (i = 0; i < srv->cfg->workers; i++) {
        struct worker *w = &srv->workers[i];

        w->id = i;
        w->srv = srv;
        w->mw = metrics_worker(srv->metrics, i);
        rc = worker_start(w);
        if (rc)
            return rc;
        srv->nworkers = i + 1;
    }
    return 0;
}

/* The control thread carries containment (a rollback is its route-table
 * swap), so where the system allows it, it runs ahead of the workers for the
 * CPU; without the privilege it simply keeps the default priority. */
static void control_thread_priority(void)
{
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), -5))
        fb_debug("control thread keeps the default priority: %s", strerror(errno));
}

int server_start(struct server *srv, const char *path)
{
    struct route_table *t;
    int rc;

    memset(srv, 0, sizeof(*srv));
    /* SQLite's memory statistics take one process-wide lock per allocation,
     * which lets the journal's threads and the store stall each other's
     * commits; firebreak does not use them. Must precede any SQLite call. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    srv->access_log_fd = -1;
    srv->config_path = strdup(path);
    srv->loop = uv_default_loop();
    if (!srv->config_path || load_config(path, &srv->cfg))
        goto fail;
    srv->metrics = metrics_new(srv->cfg->workers);
    srv->health = calloc(1, sizeof(*srv->health));
    srv->affected = affected_new(srv->cfg->workers, 8192, 1000000);
    if (!srv->metrics || !srv->health || !srv->affected)
        goto fail;
    health_init(srv->health, 5, 30000000000ull, 300000000000ull);
    if (webhook_new(srv->loop, srv->cfg, srv->metrics, &srv->webhook))
        goto fail;
    if (control_init(&srv->control, srv) ||
        control_subscribe(&srv->control, event_to_webhooks, srv))
        goto fail;
    rc = route_table_new(srv->cfg, &srv->control.spec, &srv->ids, srv->metrics,
                         ++srv->table_version, &t);
    if (rc) {
        fb_error("cannot build the route table: %s", fb_err_message(rc));
        goto fail;
    }
    rcu_assign_pointer(srv->table, t);
    if (journal_init(srv) || open_access_log(srv) || admin_start(srv) || statuspage_start(srv))
        goto fail;
    if (workers_start(srv) || control_start(&srv->control))
        goto stop;
    signals_init(srv);
    control_thread_priority();
    fb_info("firebreak serving %s (%u workers); admin on %s", srv->cfg->listen.text,
            srv->nworkers, srv->cfg->admin_listen.text);
    return 0;
stop:
    stop_workers(srv);
    journal_close(srv->journal);
    srv->journal = NULL;
    admin_stop(srv);
    statuspage_stop(srv);
fail:
    server_release(srv);
    return 1;
}

void server_release(struct server *srv)
{
    journal_close(srv->journal);
    srv->journal = NULL;
    control_release(&srv->control);
    webhook_free(srv->webhook);
    srv->webhook = NULL;
    if (srv->loop) {
        uv_walk(srv->loop, close_walk, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(srv->loop);
        srv->loop = NULL;
    }
    route_table_free(srv->table);
    srv->table = NULL;
    route_ids_release(&srv->ids);
    if (srv->access_log_fd > STDERR_FILENO)
        close(srv->access_log_fd);
    metrics_free(srv->metrics);
    free(srv->health);
    affected_free(srv->affected);
    config_free(srv->cfg);
    free(srv->workers);
    free(srv->config_path);
    memset(srv, 0, sizeof(*srv));
}

int server_run(struct server *srv)
{
    int code;

    uv_run(srv->loop, UV_RUN_DEFAULT);
    code = srv->exit_code;
    server_release(srv);
    return code;
}
