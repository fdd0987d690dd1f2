/*
 * cli-t.h: types of the command-line client (src/cli).
 */
#ifndef FIREBREAK_CLI_T_H
#define FIREBREAK_CLI_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf-t.h"
#include "client-t.h"

/*
 * Flags a command may take besides the common ones (-c, --admin, --token,
 * --json, --help). A new flag is one entry here and one row in cli.c's
 * cli_flag_defs.
 */
enum cli_flag_id {
    CLI_F_ENDPOINT, /* --endpoint HOST:PORT, repeatable */
    CLI_F_REASON,   /* --reason TEXT */
    CLI_F_SINCE,    /* --since T */
    CLI_F_SERVICE,  /* --service S */
    CLI_F_LIMIT,    /* --limit N */
    CLI_F_FOLLOW,   /* --follow */
    CLI_F_ROLE,     /* --role ROLE */
    CLI_F_NAME,     /* --name NAME */
    CLI_F_STEPS,    /* --steps 1%:60s,5%:120s,...,100% */
    CLI_F_TITLE,    /* --title TEXT */
    CLI_F_SEVERITY, /* --severity SEV1..SEV4 */
    CLI_F_SERVICES, /* --service S, repeatable (incident declare) */
    CLI_F_UNDO,     /* --undo */
    CLI_F_DRAFT,    /* --draft */
    CLI_F_PUBLISH,  /* --publish */
    CLI_F_AUDIENCE, /* --audience internal|public */
    CLI_F_KNOWN,    /* --known TEXT */
    CLI_F_UNKNOWN,  /* --unknown TEXT */
    CLI_F_NEXT,     /* --next-steps TEXT */
    CLI_F_NEXT_UPD, /* --next-update TIME|30m */
    CLI_F_PRINT,    /* --print */
    CLI_F_TYPE,     /* --type prevent|detect|mitigate|process */
    CLI_F_TEXT,     /* --text TEXT */
    CLI_F_OWNER,    /* --owner NAME */
    CLI_F_RELEASE,  /* --release R */
    CLI_F_UNTIL,    /* --until T */
    CLI_F_FORMAT,   /* --format csv|jsonl */
    CLI_F_COUNT_
};

#define CLI_FLAG(id) (1u << (id))
_Static_assert(CLI_F_COUNT_ <= 32, "a command's flags are the bits of an unsigned");
#define CLI_MAX_POS 64  /* positional arguments after the command words */
#define CLI_MAX_LIST 64 /* values of a repeatable flag */

/* A parsed command line. Every string is borrowed from argv. */
struct cli_args {
    const char *config;             /* -c FILE, --config FILE */
    const char *admin;              /* --admin URL */
    const char *token;              /* --token TOKEN */
    bool json;                      /* --json */
    bool help;                      /* -h, --help */
    const char *flag[CLI_F_COUNT_]; /* last value of each flag given; "" for a switch */
    const char *list[CLI_MAX_LIST]; /* every value of a repeatable flag, in order */
    size_t nlist;
    const char *pos[CLI_MAX_POS];
    size_t npos;
};

struct cli_ctx;

/* Runs a parsed command; returns the exit code (0 ok, 1 failed, 2 usage). */
typedef int (*cli_run_fn)(struct cli_ctx *ctx, const struct cli_args *args);

/* One row of the command table: a command is one row and one function. */
struct cli_cmd {
    const char *name;    /* first word: "release" */
    const char *sub;     /* the words after it: "add", "action add", or NULL */
    const char *args;    /* the rest of the usage line: "SERVICE RELEASE --endpoint ..." */
    const char *summary; /* one line for `firebreak help` */
    unsigned flags;      /* CLI_FLAG() bits of the flags it accepts */
    unsigned required;   /* CLI_FLAG() bits of the flags it needs */
    unsigned min_pos;    /* positional arguments, at least */
    unsigned max_pos;    /* and at most (<= CLI_MAX_POS) */
    cli_run_fn run;
    const char *help; /* more lines for `COMMAND --help`, or NULL */
};

/* Everything a command needs to reach the API and print its answer. */
struct cli_ctx {
    const struct cli_cmd *cmd;
    struct client client;
    bool json;
    FILE *out;              /* answers */
    FILE *err;              /* messages */
    int follow_interval_ms; /* events --follow poll period: 500 */
    char token_buf[4097];   /* token read from the state directory */
    char token_from[1200];  /* where the token came from, for a 401 message */
};

/* A text table with aligned columns, built row by row and printed at once. */
#define CLI_TABLE_MAX_COLS 12
struct cli_table {
    unsigned ncols;
    bool right[CLI_TABLE_MAX_COLS]; /* right-aligned (numbers) */
    size_t min_width[CLI_TABLE_MAX_COLS];
    struct fb_buf cells; /* NUL-terminated cells, row after row; the first row is the heading */
    size_t nrows;        /* heading included */
    int err;             /* first failure of an append, reported by cli_table_print */
};

/* A parsed "RELEASE=PERCENT". */
struct cli_weight {
    char name[128];
    unsigned bp; /* basis points: 12.5% is 1250, 100% is 10000 */
};

#endif
