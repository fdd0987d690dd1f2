/*
 * main.c: the firebreak command line.
 *
 * Parses argv into a command and hands it to the part that runs it: `serve`
 * and `check` here; the client commands live in src/cli. Exit codes: 0 ok,
 * 1 refused or failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
          "  demo [--keep]       the bad-deploy scenario end to end, on this machine\n"
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

/*
 * `firebreak demo`: runs the scenario driver, examples/shop/demo.py, with
 * this binary's own path. The driver starts firebreak, the shop's two
 * releases and the simulated users, and prints what happened. examples/ is
 * $FIREBREAK_EXAMPLES, else the source tree the binary was built from.
 */
static int cmd_demo(int argc, char **argv)
{
    const char *dir = getenv("FIREBREAK_EXAMPLES");
    char self[PATH_MAX], driver[PATH_MAX + 64];
    char **args;
    ssize_t n;
    int i;

    if (!dir || !*dir)
        dir = FIREBREAK_SOURCE_ROOT "/examples";
    snprintf(driver, sizeof(driver), "%s/shop/demo.py", dir);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || access(driver, R_OK)) {
        fprintf(stderr, "firebreak: demo: cannot find %s (set FIREBREAK_EXAMPLES to the "
                        "examples directory)\n", driver);
        return 1;
    }
    self[n] = '\0';
    args = calloc((size_t)argc + 4, sizeof(*args));
    if (!args)
        return 1;
    args[0] = "python3";
    args[1] = driver;
    args[2] = "--firebreak";
    args[3] = self;
    for (i = 1; i < argc; i++)
        args[3 + i] = argv[i];
    execv("/usr/bin/python3", args);
    execvp("python3", args);
    fprintf(stderr, "firebreak: demo: cannot run python3: %s\n", strerror(errno));
    free(args);
    return 1;
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
    if (!strcmp(argv[1], "demo"))
        return cmd_demo(argc - 1, argv + 1);
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
