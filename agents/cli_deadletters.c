/*
 * relais deadletters: what the broker could not deliver, for operators.
 * The broker's "deadletters" query (PROTOCOL §7) shows metadata only:
 * agent, seq, kind, type, age and attempts, never participant data.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_deadletters.h"

const char cli_deadletters_details[] =
    "Without an action, prints {\"total\":N,\"more\":bool,\"items\":[...]} as one\n"
    "JSON line, each item {\"agent\",\"seq\",\"kind\":\"event\"|\"alert\",\"type\",\n"
    "\"age_ms\",\"attempts\"}: the event's type or the alert's rule, how long ago\n"
    "it was made.  An item is dead-lettered after max_attempts sends that its\n"
    "agent never acknowledged.\n"
    "  --agent ID         only this agent's\n"
    "  --from-seq N       with --agent: from this seq on (paging: the next\n"
    "                     page starts after the last seq printed)\n"
    "  --limit N          at most N items, 1 to 1000 (default 100)\n"
    "requeue AGENT [SEQ] puts the dead letter SEQ of AGENT (all of them without\n"
    "SEQ) back at the end of its mailbox, attempts back at zero, and prints\n"
    "{\"requeued\":N}; drop AGENT [SEQ] deletes them and prints {\"dropped\":N}.\n"
    "Only operators may; exit status 1 if the broker refuses, with its reason.\n";

struct dl_opts {
	struct cli_conn conn;
	const char *agent;
	long long from_seq, limit;
};

enum { OPT_SERVER_KEY = 256, OPT_KEY, OPT_AGENT, OPT_FROM_SEQ, OPT_LIMIT };

static const struct option dl_options[] = {
	{ "endpoint", required_argument, NULL, 'e' },
	{ "server-key", required_argument, NULL, OPT_SERVER_KEY },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "agent", required_argument, NULL, OPT_AGENT },
	{ "from-seq", required_argument, NULL, OPT_FROM_SEQ },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* A whole number from min to max, or -1 after a message. */
static long long
number(const char *what, const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		die_msg("%s takes a whole number from %lld to %lld, not '%s'", what,
		    min, max, s);
		return -1;
	}
	return v;
}

/* Options into *o; 1 after --help, -1 after a message. */
static int
parse(int argc, char **argv, struct dl_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->from_seq = o->limit = 0;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+e:h", dl_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			cli_usage("deadletters");
			return 1;
		case 'e': o->conn.endpoint = optarg; break;
		case OPT_SERVER_KEY: o->conn.server_key = optarg; break;
		case OPT_KEY: o->conn.key = optarg; break;
		case OPT_AGENT: o->agent = optarg; break;
		case OPT_FROM_SEQ:
			if ((o->from_seq = number("--from-seq", optarg, 1,
			    (long long)1 << 62)) < 0)
				return -1;
			break;
		case OPT_LIMIT:
			if ((o->limit = number("--limit", optarg, 1, 1000)) < 0)
				return -1;
			break;
		default:
			die_msg("deadletters: %s is %s; see `relais help deadletters`",
			    argv[optind - 1], optopt == 'e' || optopt >= 256 ?
			    "missing its value" : "no option of deadletters");
			return -1;
		}
	}
	if (o->from_seq > 0 && o->agent == NULL) {
		die_msg("--from-seq pages through one agent's dead letters: give "
		    "--agent too");
		return -1;
	}
	return 0;
}

static json_t *
list_args(const struct dl_opts *o)
{
	json_t *args = json_pack("{s:s}", "action", "list");

	if (o->agent != NULL)
		json_object_set_new(args, "agent", json_string(o->agent));
	if (o->from_seq > 0)
		json_object_set_new(args, "from_seq", json_integer(o->from_seq));
	if (o->limit > 0)
		json_object_set_new(args, "limit", json_integer(o->limit));
	return args;
}

/* requeue|drop AGENT [SEQ]; NULL after a message. */
static json_t *
change_args(int argc, char **argv)
{
	const char *action = argv[optind];
	json_t *args;
	long long seq = 0;

	if (strcmp(action, "requeue") != 0 && strcmp(action, "drop") != 0) {
		die_msg("deadletters takes requeue or drop, not '%s'; see `relais "
		    "help deadletters`", action);
		return NULL;
	}
	if (argc - optind < 2 || argc - optind > 3) {
		die_msg("%s takes AGENT and, for a single one, SEQ (e.g. `relais "
		    "deadletters %s ml-tours 12`)", action, action);
		return NULL;
	}
	if (argc - optind == 3 &&
	    (seq = number("SEQ", argv[optind + 2], 1, (long long)1 << 62)) < 0)
		return NULL;
	args = json_pack("{s:s, s:s}", "action", action, "agent", argv[optind + 1]);
	if (seq > 0)
		json_object_set_new(args, "seq", json_integer(seq));
	return args;
}

int
cli_deadletters(int argc, char **argv)
{
	struct dl_opts o;
	json_t *args, *data;
	int status = parse(argc, argv, &o);

	if (status != 0)
		return status > 0 ? 0 : EXIT_USAGE;
	if (optind == argc)
		args = list_args(&o);
	else if (o.agent != NULL || o.from_seq > 0 || o.limit > 0) {
		die_msg("--agent, --from-seq and --limit are for the list; requeue "
		    "and drop name the agent after the action");
		return EXIT_USAGE;
	} else if ((args = change_args(argc, argv)) == NULL)
		return EXIT_USAGE;
	data = cli_ask(&o.conn, "deadletters", args,
	    "dead letters are for operators: use an operator's key", &status);
	if (data == NULL)
		return status;
	json_dumpf(data, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(data);
	return cli_stdout_done();
}
