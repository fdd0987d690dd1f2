/*
 * test_config.c: firebreak.yaml is read into the config the user wrote, its
 * defaults are the documented ones, and every mistake is reported with the
 * key path, line and column a user needs to find it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "firebreak/config.h"
#include "firebreak/err.h"

/* The smallest valid services section: lines 1 to 5. */
#define SVC                                                                                        \
    "services:\n"                                                                                  \
    "  - name: shop\n"                                                                             \
    "    releases:\n"                                                                              \
    "      - name: v1\n"                                                                           \
    "        endpoints: [\"127.0.0.1:7001\"]\n"

/* Lines 1 to 2 of a service; a test adds its own line 3 and then SVC_REL. */
#define SVC_HEAD                                                                                   \
    "services:\n"                                                                                  \
    "  - name: shop\n"
#define SVC_REL "    releases: [{name: v1, endpoints: [\"127.0.0.1:7001\"]}]\n"

static struct config *parse_ok(const char *yaml)
{
    struct config_error err;
    struct config *cfg = NULL;
    char line[600];
    int rc = config_parse("test.yaml", yaml, strlen(yaml), &cfg, &err);

    if (rc != 0) {
        config_error_format(&err, "test.yaml", line, sizeof line);
        fail_msg("refused a valid config: %s", line);
    }
    assert_non_null(cfg);
    return cfg;
}

static uint16_t port_of(const struct cfg_addr *a)
{
    if (a->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

static const char *ip_of(const struct cfg_addr *a, char *buf, size_t len)
{
    const void *p = a->addr.ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&a->addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&a->addr)->sin6_addr;

    return inet_ntop(a->addr.ss_family, p, buf, (socklen_t)len);
}

static void assert_addr(const struct cfg_addr *a, const char *ip, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN];

    assert_non_null(a->text);
    assert_string_equal(ip_of(a, buf, sizeof buf), ip);
    assert_int_equal(port_of(a), port);
}

/* ---- errors: one row per mistake --------------------------------------------------------------
 */

struct bad_case {
    const char *name;
    const char *yaml;
    const char *path;
    int line;
    int column;
    const char *message; /* must appear in the message */
};

static const struct bad_case bad_cases[] = {
    /* keys */
    {"unknown_top_key_suggests_listen", "listne: 127.0.0.1:8080\n" SVC, "listne", 1, 1,
     "unknown key 'listne'; did you mean 'listen'?"},
    {"unknown_key_without_near_match", "colour: blue\n" SVC, "colour", 1, 1,
     "unknown key 'colour'"},
    {"unknown_service_key_suggests_releases", SVC_HEAD "    relases: []\n", "services[0].relases",
     3, 5, "did you mean 'releases'?"},
    {"unknown_release_key_suggests_endpoints",
     SVC_HEAD "    releases:\n      - name: v1\n        endpoint: [\"127.0.0.1:7001\"]\n",
     "services[0].releases[0].endpoint", 5, 9, "did you mean 'endpoints'?"},
    {"unknown_timeout_key", "timeouts:\n  body_idel: 5s\n" SVC, "timeouts.body_idel", 2, 3,
     "did you mean 'body_idle'?"},
    {"duplicate_top_key", "listen: 127.0.0.1:8080\nlisten: 127.0.0.1:8081\n" SVC, "listen", 2, 1,
     "duplicate key 'listen' (first given on line 1)"},
    {"duplicate_service_name",
     "services:\n  - name: shop\n    releases: [{name: v1, endpoints: [\"127.0.0.1:7001\"]}]\n"
     "  - name: shop\n    releases: [{name: v1, endpoints: [\"127.0.0.1:7002\"]}]\n",
     "services[1].name", 4, 11, "duplicate service name 'shop' (also services[0])"},
    {"duplicate_release_name",
     SVC_HEAD "    stable: v1\n    releases:\n      - {name: v1, endpoints: [\"127.0.0.1:7001\"]}\n"
              "      - {name: v1, endpoints: [\"127.0.0.1:7002\"]}\n",
     "services[0].releases[1].name", 6, 16, "duplicate release name 'v1'"},
    {"missing_services", "listen: 127.0.0.1:8080\n", "services", 1, 1,
     "missing required key 'services'"},
    {"empty_file", "", "", 1, 1, "the file is empty"},
    {"comments_only", "# nothing here\n", "", 1, 1, "the file is empty"},
    {"services_empty_list", "services: []\n", "services", 1, 11, "the list is empty"},
    {"services_is_a_string", "services: shop\n", "services", 1, 11,
     "expected a list, got a plain value"},
    {"service_missing_name", "services:\n  - releases: [{name: v1, endpoints: [\"1.2.3.4:80\"]}]\n",
     "services[0].name", 2, 5, "missing required key 'name'"},
    {"service_missing_releases", "services:\n  - name: shop\n", "services[0].releases", 2, 5,
     "missing required key 'releases'"},
    {"release_missing_endpoints", SVC_HEAD "    releases:\n      - name: v1\n",
     "services[0].releases[0].endpoints", 4, 9, "missing required key 'endpoints'"},
    {"endpoints_empty", SVC_HEAD "    releases:\n      - name: v1\n        endpoints: []\n",
     "services[0].releases[0].endpoints", 5, 20, "the list is empty"},
    {"endpoints_is_a_string",
     SVC_HEAD "    releases:\n      - name: v1\n        endpoints: 127.0.0.1:7001\n",
     "services[0].releases[0].endpoints", 5, 20, "expected a list, got a plain value"},
    {"key_is_a_list", "? [a]\n: 1\n" SVC, "", 1, 3, "a key must be a string, got a list"},
    {"root_is_a_list", "- a\n- b\n", "", 1, 1, "the file must be a mapping"},
    /* addresses */
    {"endpoint_port_out_of_range",
     SVC_HEAD "    releases:\n      - name: v1\n        endpoints: [\"127.0.0.1:70000\"]\n",
     "services[0].releases[0].endpoints[0]", 5, 21, "port must be a number from 1 to 65535"},
    {"endpoint_host_name",
     SVC_HEAD "    releases:\n      - name: v1\n"
              "        endpoints: [\"127.0.0.1:7001\", \"db.internal:5432\"]\n",
     "services[0].releases[0].endpoints[1]", 5, 39, "host names are not resolved"},
    {"endpoint_ipv6_without_brackets",
     SVC_HEAD "    releases:\n      - name: v1\n        endpoints: [\"::1:8080\"]\n",
     "services[0].releases[0].endpoints[0]", 5, 21, "in brackets"},
    {"endpoint_missing_port",
     SVC_HEAD "    releases:\n      - name: v1\n        endpoints: [\"127.0.0.1\"]\n",
     "services[0].releases[0].endpoints[0]", 5, 21, "missing :PORT"},
    {"listen_bad_ipv4", "listen: 127.0.0.256:80\n" SVC, "listen", 1, 9,
     "bad address '127.0.0.256:80': not an IPv4 address"},
    {"listen_empty_value", "listen:\n" SVC, "listen", 1, 8,
     "expected an address such as 127.0.0.1:8080, got an empty value"},
    {"admin_listen_port_only", "admin:\n  listen: 9090\n" SVC, "admin.listen", 2, 11,
     "missing :PORT"},
    {"admin_is_not_a_mapping", "admin: 127.0.0.1:9090\n" SVC, "admin", 1, 8, "expected a mapping"},
    {"listen_collides_with_default_admin", "listen: 127.0.0.1:9090\n" SVC, "admin.listen", 1, 9,
     "collides with listen"},
    {"status_page_collides_with_wildcard_listen",
     "listen: 0.0.0.0:8081\nstatus_page: {listen: 127.0.0.1:8081}\n" SVC, "status_page.listen", 2,
     23, "collides with listen '0.0.0.0:8081'"},
    {"json_number_for_address",
     "{\"listen\": 8080, \"services\": [{\"name\": \"shop\", \"releases\": []}]}", "listen", 1, 12,
     "bad address '8080': missing :PORT"},
    /* scalars of the top level */
    {"workers_zero", "workers: 0\n" SVC, "workers", 1, 10, "from 1 to 64 or 'auto'"},
    {"workers_over_64", "workers: 65\n" SVC, "workers", 1, 10, "from 1 to 64 or 'auto', got '65'"},
    {"workers_word", "workers: many\n" SVC, "workers", 1, 10, "got 'many'"},
    {"workers_quoted_number", "workers: \"4\"\n" SVC, "workers", 1, 10,
     "got the quoted string '4'; numbers take no quotes"},
    {"weight_quoted",
     SVC_HEAD "    releases:\n      - {name: v1, endpoints: [\"127.0.0.1:1\"], "
              "weight: \"100\"}\n",
     "services[0].releases[0].weight", 4, 56, "numbers take no quotes"},
    {"access_log_boolean", "access_log: false\n" SVC, "access_log", 1, 13,
     "expected off, stdout or a file path"},
    {"store_not_postgres", "store: mysql://db/fb\n" SVC, "store", 1, 8,
     "expected a postgres:// or postgresql:// URL"},
    {"status_title_is_a_mapping", "status_page: {title: {a: b}}\n" SVC, "status_page.title", 1, 22,
     "expected a string, got a mapping"},
    {"state_is_a_list", "state: [a, b]\n" SVC, "state", 1, 8, "expected a string, got a list"},
    /* limits and timeouts */
    {"size_with_unknown_unit", "limits:\n  request_line: 8K\n" SVC, "limits.request_line", 2, 17,
     "bad size '8K'"},
    {"size_too_small", "limits: {request_line: 10}\n" SVC, "limits.request_line", 1, 24,
     "must be from 64 to 1048576 bytes"},
    {"size_too_large", "limits: {header_bytes: 2MiB}\n" SVC, "limits.header_bytes", 1, 24,
     "must be from 256 to 1048576 bytes"},
    {"count_negative", "limits: {header_fields: -1}\n" SVC, "limits.header_fields", 1, 25,
     "expected a whole number, got '-1'"},
    {"duration_zero", "timeouts:\n  body_idle: 0s\n" SVC, "timeouts.body_idle", 2, 14,
     "must be greater than 0"},
    {"duration_bad_unit", "timeouts: {drain: 10 parsecs}\n" SVC, "timeouts.drain", 1, 19,
     "bad duration '10 parsecs'"},
    {"duration_fraction", "timeouts: {drain: 1.5s}\n" SVC, "timeouts.drain", 1, 19,
     "bad duration '1.5s'"},
    {"duration_over_a_day", "timeouts: {upstream_response: 25h}\n" SVC,
     "timeouts.upstream_response", 1, 31, "must be at most 24h"},
    {"timeouts_is_a_list", "timeouts: [10s]\n" SVC, "timeouts", 1, 11,
     "expected a mapping (key: value lines or {...}), got a list"},
    /* services */
    {"service_name_with_space", "services:\n  - name: my shop\n" SVC_REL, "services[0].name", 2, 11,
     "bad name 'my shop'"},
    {"path_prefix_without_slash",
     SVC_HEAD "    match: {host: shop.example.com, path_prefix: api}\n" SVC_REL,
     "services[0].match.path_prefix", 3, 50, "starts with '/'"},
    {"match_host_with_port", SVC_HEAD "    match: {host: \"shop:80\"}\n" SVC_REL,
     "services[0].match.host", 3, 19, "without a port"},
    {"sticky_two_choices", SVC_HEAD "    sticky: {cookie: a, header: B}\n" SVC_REL,
     "services[0].sticky", 3, 25, "give only one of cookie, header, ip"},
    {"sticky_unknown_choice", SVC_HEAD "    sticky: {cookei: fb_uid}\n" SVC_REL,
     "services[0].sticky.cookei", 3, 14, "did you mean 'cookie'?"},
    {"sticky_ip_false", SVC_HEAD "    sticky: {ip: false}\n" SVC_REL, "services[0].sticky.ip", 3,
     18, "the only value accepted here is 'true'"},
    {"sticky_bad_header_name", SVC_HEAD "    sticky: {header: \"X User\"}\n" SVC_REL,
     "services[0].sticky.header", 3, 22, "not a valid header or cookie name"},
    {"sticky_empty_mapping", SVC_HEAD "    sticky: {}\n" SVC_REL, "services[0].sticky", 3, 13,
     "give one of cookie, header, ip"},
    {"identity_jwt_other_claim", SVC_HEAD "    identity: {jwt: email}\n" SVC_REL,
     "services[0].identity.jwt", 3, 21, "the only value accepted here is 'sub'"},
    {"identity_is_a_string", SVC_HEAD "    identity: X-User-Id\n" SVC_REL, "services[0].identity",
     3, 15, "expected a mapping with one of header, cookie, jwt"},
    {"allow_pin_yes", SVC_HEAD "    allow_pin: yes\n" SVC_REL, "services[0].allow_pin", 3, 16,
     "expected true or false, got 'yes'"},
    {"allow_pin_quoted", SVC_HEAD "    allow_pin: \"true\"\n" SVC_REL, "services[0].allow_pin", 3,
     16, "got a quoted string"},
    {"weight_over_100",
     SVC_HEAD "    releases:\n      - {name: v1, endpoints: [\"127.0.0.1:7001\"], weight: 101}\n",
     "services[0].releases[0].weight", 4, 59, "expected a percentage from 0 to 100"},
    {"weight_three_decimals",
     SVC_HEAD "    releases:\n"
              "      - {name: v1, endpoints: [\"127.0.0.1:7001\"], weight: 33.333}\n",
     "services[0].releases[0].weight", 4, 59, "at most two decimals, got '33.333'"},
    {"weights_do_not_add_up",
     SVC_HEAD "    stable: v1\n    releases:\n"
              "      - {name: v1, endpoints: [\"127.0.0.1:7001\"], weight: 50}\n"
              "      - {name: v2, endpoints: [\"127.0.0.1:7002\"], weight: 40}\n",
     "services[0].releases", 5, 7, "release weights add up to 90.00; they must add up to 100"},
    {"stable_names_no_release", SVC_HEAD "    stable: v3\n" SVC_REL, "services[0].stable", 3, 13,
     "'v3' is not one of this service's releases"},
    {"stable_missing_with_two_releases",
     SVC_HEAD "    releases:\n      - {name: v1, endpoints: [\"127.0.0.1:7001\"]}\n"
              "      - {name: v2, endpoints: [\"127.0.0.1:7002\"]}\n",
     "services[0].stable", 2, 5, "missing required key 'stable'"},
    {"judge_alpha_half", SVC_HEAD "    judge: {alpha: 0.5}\n" SVC_REL, "services[0].judge.alpha", 3,
     20, "must be greater than 0 and less than 0.5"},
    {"judge_min_error_ratio_one", SVC_HEAD "    judge: {min_error_ratio: 1}\n" SVC_REL,
     "services[0].judge.min_error_ratio", 3, 30, "must be greater than 1"},
    {"judge_alpha_word", SVC_HEAD "    judge: {alpha: low}\n" SVC_REL, "services[0].judge.alpha", 3,
     20, "expected a number, got 'low'"},
    {"steps_not_increasing",
     SVC_HEAD "    rollout: {steps: [\"5%:60s\", \"1%:60s\", \"100%\"]}\n" SVC_REL,
     "services[0].rollout.steps[1]", 3, 33, "above the one before"},
    {"steps_last_not_100", SVC_HEAD "    rollout: {steps: [\"5%:60s\", \"50%:60s\"]}\n" SVC_REL,
     "services[0].rollout.steps[1]", 3, 33, "the last step must be '100%'"},
    {"step_without_hold", SVC_HEAD "    rollout: {steps: [\"5%\", \"100%\"]}\n" SVC_REL,
     "services[0].rollout.steps[0]", 3, 23, "needs a hold time"},
    {"last_step_with_hold", SVC_HEAD "    rollout: {steps: [\"5%:60s\", \"100%:60s\"]}\n" SVC_REL,
     "services[0].rollout.steps[1]", 3, 33, "with no hold time"},
    {"step_bad_hold", SVC_HEAD "    rollout: {steps: [\"5%:abc\", \"100%\"]}\n" SVC_REL,
     "services[0].rollout.steps[0]", 3, 23, "bad hold time in step '5%:abc'"},
    {"step_hold_without_unit", SVC_HEAD "    rollout: {steps: [\"5%:60\", \"100%\"]}\n" SVC_REL,
     "services[0].rollout.steps[0]", 3, 23, "bad hold time"},
    {"step_zero_percent", SVC_HEAD "    rollout: {steps: [\"0%:60s\", \"100%\"]}\n" SVC_REL,
     "services[0].rollout.steps[0]", 3, 23, "bad step '0%:60s'"},
    {"steps_empty", SVC_HEAD "    rollout: {steps: []}\n" SVC_REL, "services[0].rollout.steps", 3,
     22, "the list is empty"},
    /* YAML itself */
    {"yaml_bad_indentation", "services:\n  - name: shop\n   releases: []\n", "services[0]", 3, 4,
     "YAML syntax"},
    {"yaml_unclosed_flow_list", SVC "listen: [\n", "listen", 7, 1, "YAML syntax"},
    {"yaml_anchor", "listen: &a 127.0.0.1:8080\n" SVC, "listen", 1, 9,
     "anchors (&a) are not supported"},
    {"yaml_alias", "listen: *a\n" SVC, "listen", 1, 9, "aliases (*a) are not supported"},
    {"yaml_tag", SVC "    stable: !!str v1\n", "services[0].stable", 6, 13,
     "tags (tag:yaml.org,2002:str)"},
    {"yaml_second_document", SVC "---\nlisten: 127.0.0.1:8080\n", "", 6, 1,
     "a second YAML document"},
    {"yaml_nested_too_deep",
     "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     "a[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]["
     "0]",
     1, 35, "nested deeper than 32 levels"},
    {"yaml_nul_in_string", "listen: \"127.0.0.1\\0:80\"\n" SVC, "listen", 1, 9, "NUL character"},
    {"invalid_utf8", "listen: \xff\xfe\n" SVC, "", 1, 9, "unreadable text"},
    /* the journal */
    {"journal_ring_not_power_of_two", "journal: { ring: 1000 }\n" SVC, "journal.ring", 1, 18,
     "must be a power of two (512 or 1024)"},
    {"journal_ring_too_small", "journal: { ring: 16 }\n" SVC, "journal.ring", 1, 18,
     "must be from 64 to 1048576"},
    {"journal_retention_words", "journal: { retention: 30 days }\n" SVC, "journal.retention", 1,
     23, "bad age '30 days'"},
    {"journal_retention_too_short", "journal: { retention: 10s }\n" SVC, "journal.retention", 1,
     23, "at least 1m, or 0"},
    {"journal_max_size_too_small", "journal: { max_size: 10KiB }\n" SVC, "journal.max_size", 1,
     22, "must be at least 1MiB, or 0 for no cap"},
    {"journal_max_size_unit", "journal: { max_size: 1GB }\n" SVC, "journal.max_size", 1, 22,
     "use KiB, MiB, GiB or TiB"},
    {"journal_method_lower_case", SVC "    journal: { methods: [post] }\n",
     "services[0].journal.methods[0]", 6, 26, "bad method 'post'"},
    {"journal_body_bytes_too_big", SVC "    journal: { body_bytes: 32KiB }\n",
     "services[0].journal.body_bytes", 6, 28, "must be from 0 to 16384 bytes"},
    {"journal_redact_empty_key", SVC "    journal: { redact: [\"\"] }\n",
     "services[0].journal.redact[0]", 6, 25, "an empty key"},
    {"journal_unknown_key", SVC "    journal: { redcat: [pin] }\n", "services[0].journal.redcat",
     6, 16, "did you mean 'redact'?"},
};

static void bad_case_reports_path_and_line(void **state)
{
    const struct bad_case *c = *state;
    struct config_error err;
    struct config *cfg = (struct config *)1;
    char line[600];
    int rc;

    rc = config_parse("bad.yaml", c->yaml, strlen(c->yaml), &cfg, &err);
    config_error_format(&err, "bad.yaml", line, sizeof line);
    print_message("# %s\n", line);
    assert_int_equal(rc, -FB_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.path, c->path);
    assert_int_equal(err.line, c->line);
    assert_int_equal(err.column, c->column);
    if (!strstr(err.message, c->message))
        fail_msg("message '%s' lacks '%s'", err.message, c->message);
}

/* ---- valid files ------------------------------------------------------------------------------
 */

static const char full_yaml[] =
    "# every key, none at its default\n"
    "listen: 0.0.0.0:8080\n"
    "workers: 4\n"
    "access_log: /var/log/firebreak/access.log\n"
    "admin: { listen: \"[::1]:9090\" }\n"
    "status_page: { listen: 127.0.0.1:8081, title: \"Shop status\" }\n"
    "state: /var/lib/firebreak\n"
    "store: postgres://fb@db/firebreak\n"
    "limits: { request_line: 4KiB, header_bytes: 32768, header_fields: 50,\n"
    "          upstream_connections: 128 }\n"
    "timeouts:\n"
    "  request_header: 5s\n"
    "  body_idle: 500ms\n"
    "  keepalive_idle: 2m\n"
    "  upstream_connect: 1500\n"
    "  upstream_response: 1h\n"
    "  drain: 45s\n"
    "services:\n"
    "  - name: shop\n"
    "    match: { host: Shop.Example.com, path_prefix: /store/ }\n"
    "    sticky: { header: X-User-Id }\n"
    "    identity: { jwt: sub }\n"
    "    allow_pin: true\n"
    "    releases:\n"
    "      - { name: v1, endpoints: [\"127.0.0.1:7001\", \"localhost:7002\"], weight: 90 }\n"
    "      - { name: v2, endpoints: [\"[::1]:7003\"], weight: 9.5 }\n"
    "      - { name: v3, endpoints: [\"10.0.0.3:7004\"], weight: 0.5 }\n"
    "    stable: v1\n"
    "    judge: { alpha: 0.01, min_error_ratio: 3, max_latency_ratio: 1.5 }\n"
    "    rollout: { steps: [\"2%:30s\", \"10.5%:1m\", \"100%\"] }\n"
    "  - name: api\n"
    "    match: { path_prefix: /api/ }\n"
    "    sticky: { ip: true }\n"
    "    identity: { cookie: session }\n"
    "    releases:\n"
    "      - { name: blue, endpoints: [\"127.0.0.1:7101\"] }\n"
    "      - { name: green, endpoints: [\"127.0.0.1:7102\"] }\n"
    "    stable: green\n";

static void full_file_sets_every_key(void **state)
{
    struct config *cfg = parse_ok(full_yaml);
    const struct cfg_service *s = &cfg->services[0], *a = &cfg->services[1];

    assert_string_equal(cfg->path, "test.yaml");
    assert_addr(&cfg->listen, "0.0.0.0", 8080);
    assert_string_equal(cfg->listen.text, "0.0.0.0:8080");
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->access_log, CFG_LOG_FILE);
    assert_string_equal(cfg->access_log_path, "/var/log/firebreak/access.log");
    assert_addr(&cfg->admin_listen, "::1", 9090);
    assert_true(cfg->has_status_page);
    assert_addr(&cfg->status_listen, "127.0.0.1", 8081);
    assert_string_equal(cfg->status_title, "Shop status");
    assert_string_equal(cfg->state_dir, "/var/lib/firebreak");
    assert_string_equal(cfg->store_url, "postgres://fb@db/firebreak");
    assert_int_equal(cfg->limits.request_line, 4096);
    assert_int_equal(cfg->limits.header_bytes, 32768);
    assert_int_equal(cfg->limits.header_fields, 50);
    assert_int_equal(cfg->limits.upstream_connections, 128);
    assert_int_equal(cfg->timeouts.request_header, 5000);
    assert_int_equal(cfg->timeouts.body_idle, 500);
    assert_int_equal(cfg->timeouts.keepalive_idle, 120000);
    assert_int_equal(cfg->timeouts.upstream_connect, 1500);
    assert_int_equal(cfg->timeouts.upstream_response, 3600000);
    assert_int_equal(cfg->timeouts.drain, 45000);
    assert_int_equal(cfg->nservices, 2);

    assert_string_equal(s->name, "shop");
    assert_int_equal(s->line, 19);
    assert_string_equal(s->match_host, "shop.example.com");
    assert_string_equal(s->match_path_prefix, "/store/");
    assert_int_equal(s->sticky, CFG_STICKY_HEADER);
    assert_string_equal(s->sticky_name, "X-User-Id");
    assert_int_equal(s->identity, CFG_IDENTITY_JWT_SUB);
    assert_true(s->allow_pin);
    assert_int_equal(s->nreleases, 3);
    assert_string_equal(s->releases[0].name, "v1");
    assert_int_equal(s->releases[0].nendpoints, 2);
    assert_addr(&s->releases[0].endpoints[0], "127.0.0.1", 7001);
    assert_addr(&s->releases[0].endpoints[1], "127.0.0.1", 7002);
    assert_string_equal(s->releases[0].endpoints[1].text, "localhost:7002");
    assert_addr(&s->releases[1].endpoints[0], "::1", 7003);
    assert_float_equal(s->releases[0].weight, 90, 1e-9);
    assert_float_equal(s->releases[1].weight, 9.5, 1e-9);
    assert_float_equal(s->releases[2].weight, 0.5, 1e-9);
    assert_true(s->releases[2].weight_set);
    assert_string_equal(s->stable, "v1");
    assert_float_equal(s->judge.alpha, 0.01, 1e-12);
    assert_float_equal(s->judge.min_error_ratio, 3, 1e-12);
    assert_float_equal(s->judge.max_latency_ratio, 1.5, 1e-12);
    assert_int_equal(s->nsteps, 3);
    assert_float_equal(s->steps[0].weight, 2, 1e-9);
    assert_int_equal(s->steps[0].hold_ms, 30000);
    assert_float_equal(s->steps[1].weight, 10.5, 1e-9);
    assert_int_equal(s->steps[1].hold_ms, 60000);
    assert_float_equal(s->steps[2].weight, 100, 1e-9);
    assert_int_equal(s->steps[2].hold_ms, 0);

    assert_string_equal(a->match_host, "*");
    assert_string_equal(a->match_path_prefix, "/api/");
    assert_int_equal(a->sticky, CFG_STICKY_IP);
    assert_int_equal(a->identity, CFG_IDENTITY_COOKIE);
    assert_string_equal(a->identity_name, "session");
    assert_false(a->allow_pin);
    assert_string_equal(a->stable, "green");
    assert_float_equal(a->releases[0].weight, 0, 1e-9);
    assert_float_equal(a->releases[1].weight, 100, 1e-9);
    assert_false(a->releases[1].weight_set);
    config_free(cfg);
}

static void defaults_are_the_documented_ones(void **state)
{
    struct config *cfg = parse_ok(SVC);
    const struct cfg_service *s = &cfg->services[0];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    static const double weights[] = {1, 5, 25, 100};
    static const uint64_t holds[] = {60000, 120000, 300000, 0};
    size_t i;

    assert_addr(&cfg->listen, "127.0.0.1", 8080);
    assert_int_equal(cfg->workers, cores > 64 ? 64 : cores);
    assert_int_equal(cfg->access_log, CFG_LOG_OFF);
    assert_null(cfg->access_log_path);
    assert_addr(&cfg->admin_listen, "127.0.0.1", 9090);
    assert_false(cfg->has_status_page);
    assert_null(cfg->status_listen.text);
    assert_string_equal(cfg->state_dir, "./firebreak-data");
    assert_null(cfg->store_url);
    assert_int_equal(cfg->limits.request_line, 8192);
    assert_int_equal(cfg->limits.header_bytes, 16384);
    assert_int_equal(cfg->limits.header_fields, 100);
    assert_int_equal(cfg->limits.upstream_connections, 0);
    assert_int_equal(cfg->timeouts.request_header, 10000);
    assert_int_equal(cfg->timeouts.body_idle, 30000);
    assert_int_equal(cfg->timeouts.keepalive_idle, 60000);
    assert_int_equal(cfg->timeouts.upstream_connect, 2000);
    assert_int_equal(cfg->timeouts.upstream_response, 30000);
    assert_int_equal(cfg->timeouts.drain, 30000);
    assert_string_equal(s->match_host, "*");
    assert_string_equal(s->match_path_prefix, "/");
    assert_int_equal(s->sticky, CFG_STICKY_COOKIE);
    assert_string_equal(s->sticky_name, "fb_uid");
    assert_int_equal(s->identity, CFG_IDENTITY_NONE);
    assert_null(s->identity_name);
    assert_false(s->allow_pin);
    assert_string_equal(s->stable, "v1");
    assert_float_equal(s->releases[0].weight, 100, 1e-9);
    assert_false(s->releases[0].weight_set);
    assert_float_equal(s->judge.alpha, 0.001, 1e-12);
    assert_float_equal(s->judge.min_error_ratio, 2.0, 1e-12);
    assert_float_equal(s->judge.max_latency_ratio, 1.25, 1e-12);
    assert_int_equal(s->nsteps, 4);
    for (i = 0; i < 4; i++) {
        assert_float_equal(s->steps[i].weight, weights[i], 1e-9);
        assert_int_equal(s->steps[i].hold_ms, holds[i]);
    }
    config_free(cfg);
}

static void journal_keys_and_their_defaults(void **state)
{
    static const char yaml[] = "journal: { retention: 12h, max_size: 0, ring: 65536 }\n"
                               "services:\n"
                               "  - name: shop\n"
                               "    journal:\n"
                               "      methods: [POST, PURGE]\n"
                               "      body_bytes: 2KiB\n"
                               "      redact: [ssn, Pin_Code]\n" SVC_REL
                               "  - name: api\n"
                               "    match: { path_prefix: /api/ }\n"
                               "    journal: { methods: [], redact: [] }\n" SVC_REL;
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    static const char *const keys[] = {"password", "token", "secret", "card"};
    struct config *cfg = parse_ok(SVC);
    const struct cfg_journal_service *js = &cfg->services[0].journal;
    size_t i;

    assert_int_equal(cfg->journal.retention_ms, 30ull * 86400000);
    assert_int_equal(cfg->journal.max_bytes, 1ull << 30);
    assert_int_equal(cfg->journal.ring, 4096);
    assert_int_equal(js->nmethods, 4);
    for (i = 0; i < 4; i++)
        assert_string_equal(js->methods[i], methods[i]);
    assert_int_equal(js->body_bytes, 0);
    assert_int_equal(js->nredact, 4);
    for (i = 0; i < 4; i++)
        assert_string_equal(js->redact[i], keys[i]);
    config_free(cfg);

    cfg = parse_ok(yaml);
    js = &cfg->services[0].journal;
    assert_int_equal(cfg->journal.retention_ms, 12 * 3600000);
    assert_int_equal(cfg->journal.max_bytes, 0);
    assert_int_equal(cfg->journal.ring, 65536);
    assert_int_equal(js->nmethods, 2);
    assert_string_equal(js->methods[1], "PURGE");
    assert_int_equal(js->body_bytes, 2048);
    assert_int_equal(js->nredact, 2);
    assert_string_equal(js->redact[1], "Pin_Code");
    assert_int_equal(cfg->services[1].journal.nmethods, 0);
    assert_int_equal(cfg->services[1].journal.nredact, 0);
    config_free(cfg);
}

static void status_page_defaults_when_present(void **state)
{
    struct config *cfg = parse_ok("status_page: {}\naccess_log: stdout\n" SVC);

    assert_true(cfg->has_status_page);
    assert_addr(&cfg->status_listen, "127.0.0.1", 8081);
    assert_string_equal(cfg->status_title, "Status");
    assert_int_equal(cfg->access_log, CFG_LOG_STDOUT);
    config_free(cfg);
}

static void json_input_is_read_like_yaml(void **state)
{
    static const char json[] =
        "{\n"
        "  \"listen\": \"127.0.0.1:18080\",\n"
        "  \"workers\": 2,\n"
        "  \"admin\": {\"listen\": \"localhost:19090\"},\n"
        "  \"timeouts\": {\"drain\": 1500, \"body_idle\": \"5s\"},\n"
        "  \"limits\": {\"request_line\": \"16KiB\"},\n"
        "  \"services\": [\n"
        "    {\"name\": \"shop\", \"allow_pin\": true,\n"
        "     \"sticky\": {\"cookie\": \"uid\"},\n"
        "     \"releases\": [\n"
        "       {\"name\": \"v1\", \"endpoints\": [\"127.0.0.1:7001\"], \"weight\": 75},\n"
        "       {\"name\": \"v2\", \"endpoints\": [\"127.0.0.1:7002\"], \"weight\": 25}],\n"
        "     \"stable\": \"v1\",\n"
        "     \"judge\": {\"alpha\": 1e-3},\n"
        "     \"rollout\": {\"steps\": [\"50%:10s\", \"100%\"]}}\n"
        "  ]\n"
        "}\n";
    struct config *cfg = parse_ok(json);
    const struct cfg_service *s = &cfg->services[0];

    assert_addr(&cfg->listen, "127.0.0.1", 18080);
    assert_int_equal(cfg->workers, 2);
    assert_addr(&cfg->admin_listen, "127.0.0.1", 19090);
    assert_int_equal(cfg->timeouts.drain, 1500);
    assert_int_equal(cfg->timeouts.body_idle, 5000);
    assert_int_equal(cfg->limits.request_line, 16384);
    assert_true(s->allow_pin);
    assert_string_equal(s->sticky_name, "uid");
    assert_float_equal(s->releases[0].weight, 75, 1e-9);
    assert_float_equal(s->releases[1].weight, 25, 1e-9);
    assert_float_equal(s->judge.alpha, 0.001, 1e-12);
    assert_int_equal(s->nsteps, 2);
    assert_int_equal(s->steps[0].hold_ms, 10000);
    config_free(cfg);
}

static void json_error_names_path_and_line(void **state)
{
    static const char json[] =
        "{\n  \"services\": [\n    {\"name\": \"shop\",\n"
        "     \"releases\": [{\"name\": \"v1\", \"endpoints\": [\"x:1\"]}]}\n"
        "  ]\n}\n";
    struct config_error err;
    struct config *cfg;

    assert_int_equal(config_parse("fb.json", json, strlen(json), &cfg, &err), -FB_ECONFIG);
    assert_string_equal(err.path, "services[0].releases[0].endpoints[0]");
    assert_int_equal(err.line, 4);
    assert_int_equal(err.column, 48);
    assert_non_null(strstr(err.message, "host names are not resolved"));
}

static void partial_weights_leave_the_rest_at_zero(void **state)
{
    struct config *cfg = parse_ok(SVC_HEAD "    stable: v1\n    releases:\n"
                                           "      - {name: v1, endpoints: [\"127.0.0.1:1\"]}\n"
                                           "      - {name: v2, endpoints: [\"127.0.0.1:2\"], "
                                           "weight: 100}\n");

    assert_float_equal(cfg->services[0].releases[0].weight, 0, 1e-9);
    assert_false(cfg->services[0].releases[0].weight_set);
    assert_float_equal(cfg->services[0].releases[1].weight, 100, 1e-9);
    config_free(cfg);
}

static void weights_summing_to_100_with_decimals(void **state)
{
    struct config *cfg = parse_ok(SVC_HEAD "    stable: a\n    releases:\n"
                                           "      - {name: a, endpoints: [\"127.0.0.1:1\"], "
                                           "weight: 33.33}\n"
                                           "      - {name: b, endpoints: [\"127.0.0.1:2\"], "
                                           "weight: 33.33}\n"
                                           "      - {name: c, endpoints: [\"127.0.0.1:3\"], "
                                           "weight: 33.34}\n");

    assert_float_equal(cfg->services[0].releases[2].weight, 33.34, 1e-9);
    config_free(cfg);
}

static void too_many_services_are_refused(void **state)
{
    size_t cap = 1002 * 80, len = 0, i;
    char *text = malloc(cap);
    struct config_error err;
    struct config *cfg;

    assert_non_null(text);
    len += (size_t)snprintf(text, cap, "services:\n");
    for (i = 0; i < 1001; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "  - {name: s%zu, releases: [{name: v, endpoints: "
                                "[\"127.0.0.1:1\"]}]}\n",
                                i);
    assert_int_equal(config_parse("big.yaml", text, len, &cfg, &err), -FB_ECONFIG);
    assert_string_equal(err.path, "services");
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.message, "1001 entries; at most 1000"));
    /* 1000 are fine */
    len = (size_t)(strstr(text, "  - {name: s1000,") - text);
    assert_int_equal(config_parse("big.yaml", text, len, &cfg, &err), 0);
    assert_int_equal(cfg->nservices, 1000);
    assert_string_equal(cfg->services[999].name, "s999");
    config_free(cfg);
    free(text);
}

static void oversized_input_is_refused(void **state)
{
    size_t len = (4u << 20) + 1;
    char *text = malloc(len);
    struct config_error err;
    struct config *cfg;

    assert_non_null(text);
    memset(text, '#', len);
    assert_int_equal(config_parse("big.yaml", text, len, &cfg, &err), -FB_ECONFIG);
    assert_null(cfg);
    assert_non_null(strstr(err.message, "larger than 4 MiB"));
    free(text);
}

static void null_error_pointer_is_allowed(void **state)
{
    struct config *cfg = (struct config *)1;

    assert_int_equal(config_parse("x", "services: 1", 11, &cfg, NULL), -FB_ECONFIG);
    assert_null(cfg);
}

/* ---- files --------------------------------------------------------------------------------------
 */

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void load_reads_a_file(void **state)
{
    char path[] = "/tmp/fb-config-XXXXXX";
    struct config_error err;
    struct config *cfg;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    close(fd);
    write_file(path, full_yaml, strlen(full_yaml));
    assert_int_equal(config_load(path, &cfg, &err), 0);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->nservices, 2);
    config_free(cfg);

    write_file(path, "listen: 127.0.0.1:80\nservices: {}\n", 34);
    assert_int_equal(config_load(path, &cfg, &err), -FB_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.path, "services");
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 11);
    unlink(path);
}

static void load_missing_file_is_io_error(void **state)
{
    struct config_error err;
    struct config *cfg = (struct config *)1;
    char line[600];

    assert_int_equal(config_load("/nonexistent/firebreak.yaml", &cfg, &err), -FB_EIO);
    assert_null(cfg);
    assert_int_equal(err.line, 0);
    config_error_format(&err, "/nonexistent/firebreak.yaml", line, sizeof line);
    assert_string_equal(line, "/nonexistent/firebreak.yaml: cannot open: No such file or "
                              "directory");
    assert_int_equal(config_load("/tmp", &cfg, &err), -FB_EIO);
    assert_string_equal(err.message, "not a regular file");
}

static void load_oversized_file_is_refused(void **state)
{
    char path[] = "/tmp/fb-config-XXXXXX";
    struct config_error err;
    struct config *cfg;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (4 << 20) + 1), 0);
    close(fd);
    assert_int_equal(config_load(path, &cfg, &err), -FB_ECONFIG);
    assert_non_null(strstr(err.message, "larger than 4 MiB"));
    unlink(path);
}

static void error_format_is_file_line_col_path_message(void **state)
{
    struct config_error err;
    struct config *cfg;
    char line[600];
    const char *yaml = SVC_HEAD "    releases:\n      - name: v1\n"
                                "        endpoints: [\"127.0.0.1:7001\", \"10.0.0.1\"]\n";

    assert_int_equal(config_parse("fb.yaml", yaml, strlen(yaml), &cfg, &err), -FB_ECONFIG);
    config_error_format(&err, "fb.yaml", line, sizeof line);
    assert_string_equal(line, "fb.yaml:5:39: services[0].releases[0].endpoints[1]: bad address "
                              "'10.0.0.1': missing :PORT (write IPv4:PORT, [IPv6]:PORT or "
                              "localhost:PORT)");
    config_error_format(&err, "fb.yaml", line, 12);
    assert_string_equal(line, "fb.yaml:5:3");
}

/* ---- addresses ----------------------------------------------------------------------------------
 */

static void addresses_accepted(void **state)
{
    static const struct {
        const char *text, *ip;
        uint16_t port;
        int family;
    } ok[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080, AF_INET},
        {"0.0.0.0:1", "0.0.0.0", 1, AF_INET},
        {"255.255.255.255:65535", "255.255.255.255", 65535, AF_INET},
        {"localhost:9090", "127.0.0.1", 9090, AF_INET},
        {"LocalHost:9090", "127.0.0.1", 9090, AF_INET},
        {"[::1]:8080", "::1", 8080, AF_INET6},
        {"[::]:443", "::", 443, AF_INET6},
        {"[2001:db8::5]:80", "2001:db8::5", 80, AF_INET6},
        {"[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80, AF_INET6},
    };
    struct cfg_addr a;
    size_t i;

    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(config_parse_addr(ok[i].text, &a), 0);
        assert_int_equal(a.addr.ss_family, ok[i].family);
        assert_int_equal(a.addr_len, ok[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                             : sizeof(struct sockaddr_in6));
        assert_addr(&a, ok[i].ip, ok[i].port);
        assert_string_equal(a.text, ok[i].text);
        config_addr_release(&a);
        assert_null(a.text);
    }
}

static void addresses_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "8080",
        ":8080",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:+80",
        "127.0.0.1:8080 ",
        " 127.0.0.1:80",
        "127.1:80",
        "1.2.3.4.5:80",
        "01.2.3.4:80",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[::1:80",
        "[fe80::1%eth0]:80",
        "[1.2.3.4]:80",
        "example.com:80",
        "localhost",
        "127.0.0.1:0x50",
        "[]:80",
        "1.2.3.4:123456",
    };
    struct cfg_addr a;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_parse_addr(bad[i], &a) != -FB_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_null(a.text);
    }
    assert_int_equal(config_parse_addr(NULL, &a), -FB_EINVAL);
}

/* ---- the key table against the docs and the example -------------------------------------------
 */

/* Path of a file of the source tree. __FILE__ is absolute, or relative to the build directory,
 * which is three levels above this executable; scripts/test-all runs from the source root. */
static bool source_path(const char *rel, char *out, size_t outlen)
{
    static const char suffix[] = "tests/unit/test_config.c";
    const char *me = __FILE__;
    size_t mlen = strlen(me), plen;
    char exe[PATH_MAX], *slash;
    ssize_t n;
    int i;

    if (mlen < sizeof suffix - 1 || strcmp(me + mlen - (sizeof suffix - 1), suffix) != 0)
        return false;
    plen = mlen - (sizeof suffix - 1);
    if (me[0] == '/') {
        snprintf(out, outlen, "%.*s%s", (int)plen, me, rel);
        return access(out, R_OK) == 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (i = 0; i < 3 && (slash = strrchr(exe, '/')); i++)
            *slash = '\0';
        if (snprintf(out, outlen, "%s/%.*s%s", exe, (int)plen, me, rel) < 0)
            return false;
        if (access(out, R_OK) == 0)
            return true;
    }
    snprintf(out, outlen, "%s", rel);
    return access(out, R_OK) == 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

struct key_check {
    const char *doc;
    size_t nkeys;
    size_t missing;
    bool saw_weight, saw_drain, saw_sticky_ip;
};

static void check_key_in_docs(const char *path, const char *type, const char *def, const char *doc,
                              void *arg)
{
    struct key_check *kc = arg;
    char needle[160];

    kc->nkeys++;
    assert_non_null(type);
    assert_non_null(doc);
    kc->saw_weight |= strcmp(path, "services[].releases[].weight") == 0;
    kc->saw_drain |= strcmp(path, "timeouts.drain") == 0 && def && strcmp(def, "30s") == 0;
    kc->saw_sticky_ip |= strcmp(path, "services[].sticky.ip") == 0;
    snprintf(needle, sizeof needle, "`%s`", path);
    if (!strstr(kc->doc, needle)) {
        print_error("docs/config.md does not document %s\n", needle);
        kc->missing++;
    }
}

static void docs_cover_every_key_of_the_table(void **state)
{
    struct key_check kc = {0};
    char path[PATH_MAX];

    if (!source_path("docs/config.md", path, sizeof path))
        fail_msg("docs/config.md not found from %s", __FILE__);
    kc.doc = read_all(path);
    config_keys_each(check_key_in_docs, &kc);
    assert_true(kc.nkeys >= 40);
    assert_true(kc.saw_weight && kc.saw_drain && kc.saw_sticky_ip);
    assert_int_equal(kc.missing, 0);
    free((char *)kc.doc);
}

static void example_file_loads(void **state)
{
    struct config_error err;
    struct config *cfg;
    char path[PATH_MAX], line[600];

    if (!source_path("examples/firebreak.yaml", path, sizeof path))
        fail_msg("examples/firebreak.yaml not found from %s", __FILE__);
    if (config_load(path, &cfg, &err) != 0) {
        config_error_format(&err, path, line, sizeof line);
        fail_msg("%s", line);
    }
    assert_addr(&cfg->listen, "127.0.0.1", 8080);
    assert_addr(&cfg->admin_listen, "127.0.0.1", 9090);
    assert_int_equal(cfg->nservices, 1);
    assert_string_equal(cfg->services[0].name, "shop");
    assert_int_equal(cfg->services[0].nreleases, 1);
    assert_string_equal(cfg->services[0].releases[0].name, "v1");
    assert_addr(&cfg->services[0].releases[0].endpoints[0], "127.0.0.1", 7001);
    assert_string_equal(cfg->services[0].stable, "v1");
    config_free(cfg);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(full_file_sets_every_key),
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(journal_keys_and_their_defaults),
        cmocka_unit_test(status_page_defaults_when_present),
        cmocka_unit_test(json_input_is_read_like_yaml),
        cmocka_unit_test(json_error_names_path_and_line),
        cmocka_unit_test(partial_weights_leave_the_rest_at_zero),
        cmocka_unit_test(weights_summing_to_100_with_decimals),
        cmocka_unit_test(too_many_services_are_refused),
        cmocka_unit_test(oversized_input_is_refused),
        cmocka_unit_test(null_error_pointer_is_allowed),
        cmocka_unit_test(load_reads_a_file),
        cmocka_unit_test(load_missing_file_is_io_error),
        cmocka_unit_test(load_oversized_file_is_refused),
        cmocka_unit_test(error_format_is_file_line_col_path_message),
        cmocka_unit_test(addresses_accepted),
        cmocka_unit_test(addresses_refused),
        cmocka_unit_test(docs_cover_every_key_of_the_table),
        cmocka_unit_test(example_file_loads),
    };
    size_t nbad = sizeof bad_cases / sizeof bad_cases[0];
    size_t nfixed = sizeof fixed / sizeof fixed[0], i;
    struct CMUnitTest *tests = calloc(nfixed + nbad, sizeof *tests);
    int rc;

    if (!tests)
        return 1;
    memcpy(tests, fixed, sizeof fixed);
    for (i = 0; i < nbad; i++) {
        tests[nfixed + i].name = bad_cases[i].name;
        tests[nfixed + i].test_func = bad_case_reports_path_and_line;
        tests[nfixed + i].initial_state = (void *)&bad_cases[i];
    }
    rc = _cmocka_run_group_tests("config", tests, nfixed + nbad, NULL, NULL);
    free(tests);
    return rc;
}
