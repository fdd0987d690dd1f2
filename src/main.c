/*
 * main.c: the firebreak command line.
 *
 * Parses argv into a command and hands it to the part that runs it: `serve`
 * and `check` here; the client commands live in src/cli. Exit codes: 0 ok,
 * 1 refused or failed, 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "firebreak/cli.h"
#include "firebreak/config.h"
#include "firebreak/log.h"
#include "firebreak/server.h"

#define DEFAULT_CONFIG "firebreak.yaml"

static void usage(FILE *out)
{
    fputs("usage: firebreak COMMAND [ARGS]\n"
          "\n"
          "  serve [-c FILE]     run the gateway (default FILE: ./firebreak.yaml)\n"
          "  check -c FILE       validate a configuration file and exit\n"
          "  help                this text\n",
          out);
    cli_usage(out);
}

/* Parses "-c FILE" / "--config FILE"; returns 0, or 2 for a usage error. */
static int parse_config_flag(int argc, char **argv, const char **path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"debug", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:d", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            *path = optarg;
            break;
        case 'd':
            fb_log_set_level(FB_LOG_DEBUG);
            break;
        default:
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "firebreak: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    struct server srv;

    if (parse_config_flag(argc, argv, &path)) {
        usage(stderr);
        return 2;
    }
    if (server_start(&srv, path))
        return 1;
    return server_run(&srv);
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    struct config_error err;
    struct config *cfg = NULL;
    char msg[1024];

    if (parse_config_flag(argc, argv, &path) || !path) {
        fputs("usage: firebreak check -c FILE\n", stderr);
        return 2;
    }
    if (config_load(path, &cfg, &err)) {
        config_error_format(&err, path, msg, sizeof(msg));
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    printf("%s: ok (%zu services, listen %s, admin %s)\n", path, cfg->nservices,
           cfg->listen.text, cfg->admin_listen.text);
    config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    rc = cli_main(argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "firebreak: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
