/*
 * What the coordinator's and partner's views share (cli_view.c): their
 * connection options, paging through a query, and how times and ages are
 * written for people.
 */
#ifndef RELAIS_CLI_VIEW_H
#define RELAIS_CLI_VIEW_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "cli.h"

/*
 * Alerts asked for per query when listing them all: the largest alert
 * (ids of 64 bytes, four agents, a note of 280) packs to about 1 KiB, so
 * a page of 250 stays well inside one frame (max_frame, 384 KiB), where
 * the broker's largest page (1000) may not.
 */
#define CLI_ALERTS_PAGE 250

enum { CLI_OPT_SERVER_KEY = 300, CLI_OPT_KEY, CLI_OPT_JSON, CLI_OPT_OWN };

/* The entries of struct option every view takes, -e/--help included. */
#define CLI_VIEW_OPTIONS \
	{ "endpoint", required_argument, NULL, 'e' }, \
	{ "server-key", required_argument, NULL, CLI_OPT_SERVER_KEY }, \
	{ "key", required_argument, NULL, CLI_OPT_KEY }, \
	{ "json", no_argument, NULL, CLI_OPT_JSON }, \
	{ "help", no_argument, NULL, 'h' }

struct cli_view {
	struct cli_conn conn;
	bool json;                  /* --json, or stdout is not a terminal */
};

/*
 * Take one of the options above: 1 if it was one, 0 if not (the
 * command's own), -1 for --help (usage printed).
 */
int cli_view_option(struct cli_view *v, const char *command, int ch,
    const char *arg);

/* After the options: JSON unless a person reads the terminal. */
void cli_view_done(struct cli_view *v);

/* A command's own option: 0, or -1 after a message. */
typedef int (*cli_view_take)(int ch, const char *arg, void *ctx);

/*
 * getopt_long over argv with these options (shortopts as for getopt):
 * the view's own go to v, the others to take (may be NULL).  With
 * operands false, an operand is a mistake; else they are left at
 * argv[optind..].  0, 1 after --help, -1 after a message.
 */
int cli_view_parse(struct cli_view *v, const char *command, int argc,
    char **argv, const char *shortopts, const struct option *options,
    cli_view_take take, void *ctx, bool operands);

/*
 * Every page of a paged query (args may be NULL; consumed): asks with
 * "after" set to the "key" member of the last item until a page comes
 * back shorter than "limit".  NULL after a message, with *status set.
 */
json_t *cli_view_all_pages(relais_client *c, const char *what, json_t *args,
    const char *key, size_t limit, const char *forbidden_hint, int *status);

/* "2026-03-14 10:22" in Paris time; "-" for 0. */
void cli_view_time(int64_t ms, char out[24]);

/* "12d", "5h", "3m": how long before now. */
void cli_view_age(int64_t now, int64_t then, char out[16]);

/* Each element of an array as one JSON line; 0 or EXIT_REFUSED. */
int cli_view_lines(const json_t *list);

/* A whole number option within [min, max]; -1 after a message. */
int cli_view_number(const char *opt, const char *s, long min, long max,
    long *out);

#endif
