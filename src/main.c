/*
 * main.c: the firebreak command line.
 *
 * Parses argv into a command and hands it to the part that runs it: `serve`
 * and `check` here, every client command in src/cli. Exit codes: 0 ok,
 * 1 refused or failed, 2 usage.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: firebreak COMMAND [ARGS]\n"
          "  serve [-c FILE]     run the gateway\n"
          "  check -c FILE       validate a configuration file\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "firebreak: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
