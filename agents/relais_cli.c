/*
 * relais: the command-line agent.
 *
 *   relais keygen NAME
 *   relais send [OPTIONS] [TYPE key=value ...]
 *   relais listen [OPTIONS] [--count N] [--timeout-ms T]
 *   relais alerts [OPTIONS] [--all | --follow]
 *   relais alerts [OPTIONS] ack|resolve ID [--note TEXT]
 *   relais participant [OPTIONS] ID [--json]
 *   relais participants [OPTIONS] [filters] [--json]
 *   relais inbox [OPTIONS] [--json]
 *   relais dashboard [OPTIONS] [--port N]
 *   relais clock [OPTIONS] [advance DURATION]
 *   relais health [OPTIONS]
 *   relais report [OPTIONS] [PERIOD] [--qpv Q] [--by ...] [--format ...]
 *   relais help [COMMAND]
 *
 * Output is JSON lines on stdout, one per result, delivery or alert, so
 * that it can be piped into jq or another program (participant and health
 * print one indented document, for people); messages for people go to
 * stderr as "relais: what went wrong; what to do".
 *
 * Exit status: 0 success, 1 refused by the broker (an event or a query) or
 * output failed, 2 usage or connection error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_alerts.h"
#include "cli_contact.h"
#include "cli_dashboard.h"
#include "cli_deadletters.h"
#include "cli_inbox.h"
#include "cli_participant.h"
#include "cli_participants.h"
#include "cli_report.h"
#include "cli_view.h"
#include "event.h"
#include "keyfile.h"
#include "relais.h"
#include "relais_proto.h"
#include "rltime.h"


#define DEFAULT_ENDPOINT    "tcp://127.0.0.1:7450"
#define SEND_MAX_WAIT_MS    30000     /* covers a broker restart */
#define QUERY_WAIT_MS       15000
#define DAY_MS              86400000LL
#define MAX_ADVANCE_MS      (3650 * DAY_MS)   /* the broker's limit */
#define LINE_MAX_BYTES      (1024 * 1024)
#define READ_CHUNK          65536

/* ------------------------------------------------------------------ */
/* Messages                                                            */

void
die_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("relais: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* The command table                                                   */

struct command {
	const char *name;
	const char *synopsis;       /* arguments after the name */
	const char *summary;        /* one line for the command list */
	const char *details;        /* the rest of `relais help NAME` */
	int (*run)(int argc, char **argv);
	bool connects;              /* takes the connection options */
};

static int cmd_keygen(int argc, char **argv);
static int cmd_send(int argc, char **argv);
static int cmd_listen(int argc, char **argv);
static int cmd_alerts(int argc, char **argv);
static int cmd_clock(int argc, char **argv);
static int cmd_health(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const char connection_help[] =
    "Connection options:\n"
    "  -e, --endpoint URL     the broker, e.g. tcp://127.0.0.1:7450\n"
    "                         (env RELAIS_ENDPOINT; default " DEFAULT_ENDPOINT ")\n"
    "      --server-key FILE  the broker's public key file (env RELAIS_SERVER_KEY)\n"
    "      --key BASE         this agent's key pair BASE.pub and BASE.key\n"
    "                         (env RELAIS_KEY)\n"
    "Env RELAIS_PREVIOUS_KEYS=OLD.key:OLDER.key: this agent's replaced secret\n"
    "keys, to open contacts sealed to them before the key changed.\n";

static const struct command commands[] = {
	{ "keygen", "NAME", "write a CURVE key pair to NAME.pub and NAME.key",
	  "Writes NAME.pub (the public key, to register in the broker's\n"
	  "configuration) and NAME.key (the secret key, mode 0600), and prints\n"
	  "the public key.  Existing files are never overwritten.\n",
	  cmd_keygen, false },
	{ "send", "[OPTIONS] [TYPE key=value ...]",
	  "submit one event, or JSON lines read from stdin",
	  "With TYPE, sends one event built from the arguments, each value typed\n"
	  "as the protocol types its field: contacts, score, occurred_at and at\n"
	  "take digits, excused takes true or false, every other field is a\n"
	  "string (participant=12345 is the pseudonym \"12345\").  occurred_at\n"
	  "defaults to now; times may be written now, as RFC 3339\n"
	  "(2026-11-27T09:30:00Z) or as milliseconds.  \"now\" is the broker's\n"
	  "clock, which a test broker may have moved forward.  Example:\n"
	  "  relais send referral.sent participant=p-1 referral=r-1 to=ml-tours \\\n"
	  "      purpose=cv\n"
	  "--contact name=... phone=... seals the person's contact details to\n"
	  "the referral's target (to=): details name, phone, email, address,\n"
	  "best_time, note; only the target's agent can open them.  The target's\n"
	  "key comes from the broker, or from --contact-key FILE (its .pub).\n"
	  "  relais send referral.sent participant=p-1 referral=r-1 to=ml-tours \\\n"
	  "      purpose=cv --contact name='Awa D.' phone=0612345678\n"
	  "Without TYPE, reads one JSON event per line on stdin and submits them\n"
	  "in batches as they arrive.  Events without an event_id get a random one;\n"
	  "occurred_at defaults to now, and \"now\" may be written, as above.\n"
	  "A \"contact\" object in a referral.sent line is sealed the same way.\n"
	  "Prints one JSON result per event, in order.  Exit status: 0 if every\n"
	  "event is ok or duplicate, 1 if any was refused, 2 on usage or\n"
	  "connection errors.\n"
	  "  --timeout-ms T   give up if the broker has not acknowledged everything\n"
	  "                   after T ms (default 30000); events can be sent again\n"
	  "                   safely with the same event_id\n",
	  cmd_send, true },
	{ "listen", "[OPTIONS] [--count N] [--timeout-ms T]",
	  "print deliveries as JSON lines and acknowledge them",
	  "Prints each delivery (referrals, answers, alerts addressed to this\n"
	  "agent) as one JSON line, then acknowledges it to the broker.  Stops on\n"
	  "SIGINT or SIGTERM.  A referral's sealed contact is printed opened, as\n"
	  "\"contact\":{\"name\":...,\"phone\":...}; one that cannot be opened is\n"
	  "replaced by \"contact_error\" and reported on stderr.\n"
	  "  -n, --count N        exit after N deliveries\n"
	  "  -t, --timeout-ms T   exit after T ms without a delivery\n"
	  "      --credit N       deliveries the broker may send before they are\n"
	  "                       acknowledged, 1..10000 (default: the broker's)\n",
	  cmd_listen, true },
	{ "alerts", "[OPTIONS] [--all | --status S] [--rule R] [--qpv Q]\n"
	  "       [--older-than-days N] [--json]\n"
	  "       relais alerts [OPTIONS] --follow [--count N] [--timeout-ms T]\n"
	  "       relais alerts [OPTIONS] ack ID [--note TEXT]\n"
	  "       relais alerts [OPTIONS] resolve ID [--note TEXT]",
	  "list, follow, acknowledge or resolve your territory's alerts",
	  "For coordinators: the rupture alerts of the QPVs this agent covers.\n"
	  "Without a subcommand, lists the unresolved alerts (open or\n"
	  "acknowledged), oldest first, every one of them (page after page): a\n"
	  "table on a terminal, else one JSON object per line:\n"
	  "  {\"id\":\"al-3\",\"participant\":...,\"rule\":...,\"severity\":...,\n"
	  "   \"qpv\":...,\"agents\":[...],\"referral\":...,\"opened_at\":ms,\n"
	  "   \"status\":...,\"acknowledged\":{\"by\",\"at\"},\n"
	  "   \"resolved\":{\"by\",\"at\"},\"note\":...}\n"
	  "  -a, --all            every alert, resolved ones too (--status all)\n"
	  "      --status S       open (open or acknowledged), acknowledged,\n"
	  "                       resolved or all\n"
	  "      --rule R         one rule, e.g. no_contact\n"
	  "      --qpv Q          one QPV\n"
	  "      --older-than-days N   opened N days ago or more\n"
	  "      --json           JSON lines even on a terminal\n"
	  "  -f, --follow         print the unresolved alerts, then every change as\n"
	  "                       it arrives: the alert with \"change\" set to opened,\n"
	  "                       acknowledged or resolved.  Each is acknowledged to\n"
	  "                       the broker once printed.  Other deliveries to this\n"
	  "                       agent are printed whole, as `relais listen` does.\n"
	  "                       Stops on SIGINT or SIGTERM.\n"
	  "  -n, --count N        with --follow: exit after N deliveries\n"
	  "  -t, --timeout-ms T   with --follow: exit after T ms without one\n"
	  "      --credit N       with --follow: deliveries in flight, 1..10000\n"
	  "ack ID and resolve ID send alert.acknowledged or alert.resolved for\n"
	  "the alert ID (al-N), and print the broker's result as one JSON line.\n"
	  "  --note TEXT          at most 280 bytes, which must not identify anyone\n"
	  "Exit status: 1 if the broker refuses (not a coordinator, an alert\n"
	  "outside your territory, already resolved), with its reason on stderr.\n",
	  cmd_alerts, true },
	{ "participant", CLI_PARTICIPANT_SYNOPSIS, CLI_PARTICIPANT_SUMMARY,
	  cli_participant_details, cli_participant, true },
	{ "participants", CLI_PARTICIPANTS_SYNOPSIS, CLI_PARTICIPANTS_SUMMARY,
	  cli_participants_details, cli_participants, true },
	{ "inbox", CLI_INBOX_SYNOPSIS, CLI_INBOX_SUMMARY, cli_inbox_details,
	  cli_inbox, true },
	{ "dashboard", CLI_DASHBOARD_SYNOPSIS, CLI_DASHBOARD_SUMMARY,
	  cli_dashboard_details, cli_dashboard, true },
	{ "clock", "[OPTIONS] [advance DURATION]",
	  "print the broker's clock, or move it forward (tests and demos)",
	  "Without arguments, prints the broker's current time as\n"
	  "{\"now\":ms,\"utc\":\"2026-11-27T09:30:00.000Z\"}.\n"
	  "advance DURATION moves the broker's clock forward, so that rupture\n"
	  "rules fall due without waiting: DURATION is a number and a unit, d, h,\n"
	  "m, s or ms, possibly several (11d, 36h, 90m, 45s, 500ms, 9d23h), at\n"
	  "most 3650d.  Only operators may do it, and only on a broker whose\n"
	  "configuration says manual_clock = yes; the offset lasts until the\n"
	  "broker stops.  Prints {\"now\":ms,\"offset_ms\":ms,\"utc\":...}.\n",
	  cmd_clock, true },
	{ "health", "[OPTIONS]", "print the broker's health and backlogs",
	  "Prints the broker's counters (events, participants, open alerts,\n"
	  "deadlines, dead letters, sweep times) and each agent's backlog as one\n"
	  "indented JSON document.  Any registered agent may ask; it holds no\n"
	  "participant data.\n",
	  cmd_health, true },
	{ "report", CLI_REPORT_SYNOPSIS, CLI_REPORT_SUMMARY, cli_report_details,
	  cli_report, true },
	{ "deadletters", CLI_DEADLETTERS_SYNOPSIS, CLI_DEADLETTERS_SUMMARY,
	  cli_deadletters_details, cli_deadletters, true },
	{ "help", "[COMMAND]", "show this help, or a command's", NULL, cmd_help,
	  false },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: relais COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n%s\nSee `relais help COMMAND` for each command.\n",
	    connection_help);
}

static void
command_usage(FILE *out, const struct command *cmd)
{
	fprintf(out, "usage: relais %s %s\n%s.\n", cmd->name, cmd->synopsis,
	    cmd->summary);
	if (cmd->details != NULL)
		fprintf(out, "\n%s", cmd->details);
	if (cmd->connects)
		fprintf(out, "\n%s", connection_help);
}

static int
cmd_help(int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	cmd = find_command(argv[1]);
	if (cmd == NULL) {
		die_msg("no command '%s'; the commands are listed below", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	command_usage(stdout, cmd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

struct options {
	const char *endpoint;
	const char *server_key;     /* file */
	const char *key;            /* base name */
	uint32_t credit;
	long count;                 /* listen: 0 = no limit */
	long timeout_ms;            /* -1: not given */
	bool all;                   /* alerts --all */
	bool follow;                /* alerts --follow */
	const char *note;           /* alerts ack|resolve --note */
};

enum { OPT_SERVER_KEY = 256, OPT_KEY, OPT_CREDIT, OPT_NOTE };

/* Which options a command takes. */
enum {
	ACCEPT_CONNECTION = 1,      /* -e, --server-key, --key */
	ACCEPT_CREDIT = 2,
	ACCEPT_COUNT = 4,
	ACCEPT_TIMEOUT = 8,
	ACCEPT_ALERTS = 16,         /* --all, --follow, --note */
};

static const struct option long_options[] = {
	{ "endpoint", required_argument, NULL, 'e' },
	{ "server-key", required_argument, NULL, OPT_SERVER_KEY },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "credit", required_argument, NULL, OPT_CREDIT },
	{ "count", required_argument, NULL, 'n' },
	{ "timeout-ms", required_argument, NULL, 't' },
	{ "all", no_argument, NULL, 'a' },
	{ "follow", no_argument, NULL, 'f' },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* A decimal number within [min, max]; -1 and a message otherwise. */
static int
parse_number(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		die_msg("%s takes a whole number from %ld to %ld, not '%s'",
		    opt, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* "--endpoint" for 'e'; NULL if ch is no option of ours. */
static const char *
option_name(int ch)
{
	static char name[32];

	for (const struct option *o = long_options; o->name != NULL; o++) {
		if (o->val == ch) {
			snprintf(name, sizeof(name), "--%s", o->name);
			return name;
		}
	}
	return NULL;
}

static bool
accepts(int ch, int accept)
{
	switch (ch) {
	case 'e':
	case OPT_SERVER_KEY:
	case OPT_KEY:
		return accept & ACCEPT_CONNECTION;
	case OPT_CREDIT:
		return accept & ACCEPT_CREDIT;
	case 'n':
		return accept & ACCEPT_COUNT;
	case 't':
		return accept & ACCEPT_TIMEOUT;
	case 'a':
	case 'f':
	case OPT_NOTE:
		return accept & ACCEPT_ALERTS;
	case 'h':
		return true;
	default:
		return false;
	}
}

/* One option; 0, 1 for --help, -1 on a bad value. */
static int
take_option(struct options *o, int ch, const char *arg)
{
	long v;

	switch (ch) {
	case 'e':
		o->endpoint = arg;
		return 0;
	case OPT_SERVER_KEY:
		o->server_key = arg;
		return 0;
	case OPT_KEY:
		o->key = arg;
		return 0;
	case OPT_CREDIT:
		if (parse_number("--credit", arg, 1, RL_MAX_CREDIT, &v) < 0)
			return -1;
		o->credit = (uint32_t)v;
		return 0;
	case 'n':
		return parse_number("--count", arg, 1, LONG_MAX, &o->count);
	case 't':
		return parse_number("--timeout-ms", arg, 0, INT_MAX, &o->timeout_ms);
	case 'a':
		o->all = true;
		return 0;
	case 'f':
		o->follow = true;
		return 0;
	case OPT_NOTE:
		o->note = arg;
		return 0;
	case 'h':
		return 1;
	default:
		return -1;
	}
}

static const char *
env_or(const char *value, const char *env, const char *dflt)
{
	const char *e;

	if (value != NULL)
		return value;
	e = getenv(env);
	return e != NULL && e[0] != '\0' ? e : dflt;
}

/*
 * Parse the options of a command; argv[0] is the command name and the
 * operands are left at argv[optind..].  Returns -1 when the command
 * should stop with *status.
 */
static int
parse_options(const struct command *cmd, int argc, char **argv,
    int accept, struct options *o, int *status)
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "e:n:t:afh", long_options, NULL)) != -1) {
		if (ch == '?' && option_name(optopt) != NULL) {
			die_msg("%s needs a value; see `relais help %s`",
			    option_name(optopt), cmd->name);
			*status = EXIT_USAGE;
			return -1;
		}
		if (!accepts(ch, accept)) {
			die_msg("%s takes no option %s; see `relais help %s`",
			    cmd->name, ch == '?' ? argv[optind - 1] :
			    option_name(ch), cmd->name);
			*status = EXIT_USAGE;
			return -1;
		}
		int rc = take_option(o, ch, optarg);
		if (rc == 0)
			continue;
		if (rc == 1)
			command_usage(stdout, cmd);
		*status = rc == 1 ? 0 : EXIT_USAGE;
		return -1;
	}
	o->endpoint = env_or(o->endpoint, "RELAIS_ENDPOINT", DEFAULT_ENDPOINT);
	o->server_key = env_or(o->server_key, "RELAIS_SERVER_KEY", NULL);
	o->key = env_or(o->key, "RELAIS_KEY", NULL);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

static int
read_keys(const struct options *o, char server[41], char pub[41],
    char sec[41])
{
	char path[PATH_MAX], err[512];

	if (o->server_key == NULL || o->key == NULL) {
		die_msg("which broker and which agent? give --server-key FILE and "
		    "--key BASE (or set RELAIS_SERVER_KEY and RELAIS_KEY)");
		return -1;
	}
	if (relais_read_key(o->server_key, server, err, sizeof(err)) < 0) {
		die_msg("%s; --server-key names the broker's .pub file", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s.pub", o->key);
	if (relais_read_key(path, pub, err, sizeof(err)) < 0) {
		die_msg("%s; --key BASE needs BASE.pub and BASE.key "
		    "(make them with `relais keygen BASE`)", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s.key", o->key);
	if (relais_read_key(path, sec, err, sizeof(err)) < 0) {
		die_msg("%s; --key BASE needs BASE.pub and BASE.key "
		    "(make them with `relais keygen BASE`)", err);
		return -1;
	}
	return 0;
}

static relais_client *
connect_broker(const struct options *o, bool send_only)
{
	char server[41], pub[41], sec[41], err[512];
	char prev[RELAIS_MAX_PREVIOUS_KEYS][41];
	const char *prev_list[RELAIS_MAX_PREVIOUS_KEYS + 1];
	struct relais_options ro = {
		.endpoint = o->endpoint, .server_public_key = server,
		.public_key = pub, .secret_key = sec, .credit = o->credit,
		.send_only = send_only, .previous_secret_keys = prev_list,
	};
	relais_client *c = NULL;

	if (read_keys(o, server, pub, sec) == 0 &&
	    cli_previous_keys(prev, prev_list) == 0) {
		c = relais_connect(&ro, err, sizeof(err));
		if (c == NULL)
			die_msg("%s", err);
	}
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(prev, sizeof(prev));
	return c;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */

static bool
file_exists(const char *base, const char *ext)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s%s", base, ext);
	return access(path, F_OK) == 0;
}

static int
cmd_keygen(int argc, char **argv)
{
	const struct command *cmd = find_command("keygen");
	char path[PATH_MAX], key[41], err[512];
	struct options o;
	int status;

	if (parse_options(cmd, argc, argv, 0, &o, &status) < 0)
		return status;
	if (argc - optind != 1) {
		die_msg("keygen takes one NAME, e.g. `relais keygen ml-tours`");
		return EXIT_USAGE;
	}
	const char *base = argv[optind];
	/* Replacing a registered key would lock the agent out of the broker. */
	if (file_exists(base, ".pub") || file_exists(base, ".key")) {
		die_msg("%s.pub or %s.key already exists; remove them first, or "
		    "choose another NAME", base, base);
		return EXIT_REFUSED;
	}
	if (keyfile_generate(base, err, sizeof(err)) < 0) {
		die_msg("%s", err);
		return EXIT_REFUSED;
	}
	snprintf(path, sizeof(path), "%s.pub", base);
	if (keyfile_read(path, key, err, sizeof(err)) < 0) {
		die_msg("%s", err);
		return EXIT_REFUSED;
	}
	printf("%s\n", key);
	return 0;
}

/* ------------------------------------------------------------------ */
/* send                                                                */

/*
 * The value of key=value, typed as the protocol types that field: an
 * integer field takes digits, a boolean true or false, and everything else
 * stays a string, so participant=12345 is the pseudonym "12345", not a
 * number.  "now" in a time field is kept as written and becomes the
 * broker's time when the event is sent (set_event_times()).
 */
static json_t *
arg_value(const char *key, const char *s)
{
	size_t len = strlen(s);

	switch (ev_field_value_kind(key)) {
	case EV_VALUE_INT:
		if (len > 0 && len <= 18 && strspn(s, "0123456789") == len)
			return json_integer(strtoll(s, NULL, 10));
		break;
	case EV_VALUE_BOOL:
		if (strcmp(s, "true") == 0)
			return json_true();
		if (strcmp(s, "false") == 0)
			return json_false();
		break;
	default:
		break;
	}
	return json_string(s);
}

static bool
is_now(const json_t *v)
{
	return json_is_string(v) && strcmp(json_string_value(v), "now") == 0;
}

/*
 * Date an event by the broker's clock: occurred_at defaults to now, and
 * "now" in occurred_at or at means now.  The same for events given as
 * arguments and as JSON lines.
 */
static void
set_event_times(json_t *ev, int64_t now)
{
	json_t *occurred = json_object_get(ev, "occurred_at");

	if (occurred == NULL || is_now(occurred))
		json_object_set_new(ev, "occurred_at", json_integer(now));
	if (is_now(json_object_get(ev, "at")))
		json_object_set_new(ev, "at", json_integer(now));
}

/* {"type":TYPE, key: value, ...}, or NULL after a message. */
static json_t *
event_from_args(int argc, char **argv)
{
	json_t *ev = json_object();

	if (strchr(argv[0], '=') != NULL) {
		die_msg("the first argument must be the event type (e.g. "
		    "referral.sent), not '%s'", argv[0]);
		goto fail;
	}
	json_object_set_new(ev, "type", json_string(argv[0]));
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		if (eq == NULL || eq == argv[i]) {
			die_msg("'%s' is not key=value; write e.g. participant=p-1",
			    argv[i]);
			goto fail;
		}
		char *key = strndup(argv[i], (size_t)(eq - argv[i]));
		bool dup = json_object_get(ev, key) != NULL;
		if (!dup)
			json_object_set_new(ev, key, arg_value(key, eq + 1));
		free(key);
		if (dup) {
			die_msg("'%.*s' is given twice; give each field once",
			    (int)(eq - argv[i]), argv[i]);
			goto fail;
		}
	}
	return ev;
fail:
	json_decref(ev);
	return NULL;
}

/* One line of JSON on stdout. */
static int
print_json(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_COMPACT) != 0 || fputc('\n', stdout) == EOF)
		return -1;
	return 0;
}

static bool
result_ok(const json_t *r)
{
	const char *status = json_string_value(json_object_get(r, "status"));

	return status != NULL && (strcmp(status, "ok") == 0 ||
	    strcmp(status, "duplicate") == 0);
}

/*
 * A chunk of stdin lines being submitted: events[] are the parsed lines,
 * local[] the result of a line that is not JSON (it is not sent).
 */
struct chunk {
	json_t *events[RL_MAX_BATCH];
	json_t *local[RL_MAX_BATCH];
	size_t n;
};

static void
chunk_clear(struct chunk *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		json_decref(ch->events[i]);
		json_decref(ch->local[i]);
	}
	ch->n = 0;
}

static json_t *
line_error(long lineno, const char *what)
{
	char msg[320];

	snprintf(msg, sizeof(msg), "line %ld: %s; each line must be one JSON "
	    "object", lineno, what);
	return json_pack("{s:I, s:s, s:i, s:s, s:s, s:s}", "line",
	    (json_int_t)lineno, "status", "error", "code", RL_E_BAD_FRAME,
	    "error", "bad_frame", "field", "", "message", msg);
}

static void
chunk_add_line(struct chunk *ch, const char *line, size_t len, long lineno)
{
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, 0, &jerr);

	ch->events[ch->n] = NULL;
	ch->local[ch->n] = NULL;
	if (ev == NULL)
		ch->local[ch->n] = line_error(lineno, jerr.text);
	else if (!json_is_object(ev)) {
		ch->local[ch->n] = line_error(lineno, "not a JSON object");
		json_decref(ev);
	} else
		ch->events[ch->n] = ev;
	ch->n++;
}

/* Submit the chunk's events and print every line's result in order. */
static int
chunk_submit(relais_client *c, struct chunk *ch, int max_wait_ms,
    bool *any_error)
{
	json_t *events[RL_MAX_BATCH], *results[RL_MAX_BATCH];
	size_t nev = 0, k = 0;
	int64_t now;

	if (relais_broker_now(c, &now) < 0) {
		die_msg("%s", relais_errmsg(c));
		return -1;
	}
	for (size_t i = 0; i < ch->n; i++)
		if (ch->events[i] != NULL) {
			set_event_times(ch->events[i], now);
			events[nev++] = ch->events[i];
		}
	if (relais_submit(c, events, nev, results, max_wait_ms) < 0) {
		die_msg("%s", relais_errmsg(c));
		return -1;
	}
	for (size_t i = 0; i < ch->n; i++) {
		json_t *r = ch->events[i] != NULL ? results[k++] : ch->local[i];
		if (!result_ok(r))
			*any_error = true;
		print_json(r);
	}
	for (size_t i = 0; i < nev; i++)
		json_decref(results[i]);
	chunk_clear(ch);
	return fflush(stdout) == 0 ? 0 : -1;
}

/*
 * stdin lines, read with read(2) rather than stdio so we can tell when no
 * more input is ready.  Lines are taken from buf[start..end); the buffer
 * is compacted only before a read, so taking a line never copies.
 */
struct reader {
	char *buf;
	size_t start, end, cap;
	bool eof;
	bool skipping;              /* inside a line too long to keep */
	long lineno;
};

static bool
stdin_ready(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

static int
reader_fill(struct reader *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < READ_CHUNK) {
		size_t cap = r->cap ? 2 * r->cap : 4 * READ_CHUNK;
		char *b = realloc(r->buf, cap);
		if (b == NULL)
			return -1;
		r->buf = b;
		r->cap = cap;
	}
	do
		n = read(0, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0)
		r->eof = true;
	r->end += (size_t)n;
	return 0;
}

static bool
is_blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

static void
chunk_add_error(struct chunk *ch, long lineno, const char *what)
{
	ch->events[ch->n] = NULL;
	ch->local[ch->n++] = line_error(lineno, what);
}

/*
 * An unfinished line longer than LINE_MAX_BYTES: report it once, then
 * drop its bytes until its newline.  Returns 1 if it added a result.
 */
static int
reader_overflow(struct reader *r, struct chunk *ch)
{
	bool report = !r->skipping;

	r->start = r->end;
	if (!report)
		return 0;
	r->skipping = true;
	chunk_add_error(ch, ++r->lineno, "longer than 1 MiB");
	return 1;
}

/*
 * Take the next complete line into ch.  Returns 1 if one was taken, 0 if
 * no complete line is buffered.  Blank lines are skipped; a line longer
 * than LINE_MAX_BYTES becomes an error result.
 */
static int
reader_take(struct reader *r, struct chunk *ch)
{
	for (;;) {
		char *line = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = avail > 0 ? memchr(line, '\n', avail) : NULL;

		if (nl == NULL && !(r->eof && avail > 0)) {
			if (avail > LINE_MAX_BYTES || (r->skipping && avail > 0))
				return reader_overflow(r, ch);
			return 0;
		}
		size_t len = nl != NULL ? (size_t)(nl - line) : avail;
		r->start += nl != NULL ? len + 1 : len;
		if (r->skipping) {
			r->skipping = false;    /* the end of an overlong line */
			continue;
		}
		r->lineno++;
		if (len > LINE_MAX_BYTES) {
			chunk_add_error(ch, r->lineno, "longer than 1 MiB");
			return 1;
		}
		if (!is_blank(line, len)) {
			chunk_add_line(ch, line, len, r->lineno);
			return 1;
		}
	}
}

/*
 * Fill a chunk: up to RL_MAX_BATCH lines, or fewer when stdin has nothing
 * more ready, so interactive input is sent line by line while a piped file
 * goes in full batches.
 */
static int
read_chunk(struct reader *r, struct chunk *ch)
{
	while (ch->n < RL_MAX_BATCH) {
		if (reader_take(r, ch))
			continue;
		if (r->eof)
			break;
		if (ch->n > 0 && !stdin_ready())
			break;
		if (reader_fill(r) < 0) {
			die_msg("cannot read stdin: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
send_stdin(relais_client *c, int max_wait_ms)
{
	struct reader r = { 0 };
	struct chunk *ch = calloc(1, sizeof(*ch));
	bool any_error = false;
	int status = 0;

	if (ch == NULL) {
		die_msg("out of memory");
		return EXIT_USAGE;
	}
	for (;;) {
		if (read_chunk(&r, ch) < 0) {
			status = EXIT_USAGE;
			break;
		}
		if (ch->n == 0)
			break;
		if (chunk_submit(c, ch, max_wait_ms, &any_error) < 0) {
			status = EXIT_USAGE;
			break;
		}
	}
	chunk_clear(ch);
	free(ch);
	free(r.buf);
	return status != 0 ? status : any_error ? EXIT_REFUSED : 0;
}

static int
send_one(relais_client *c, int argc, char **argv,
    const struct cli_contact *contact, int max_wait_ms)
{
	json_t *ev = event_from_args(argc, argv), *result = NULL;
	int64_t now;
	int status;

	if (ev == NULL)
		return EXIT_USAGE;
	if (relais_broker_now(c, &now) < 0) {
		die_msg("%s", relais_errmsg(c));
		json_decref(ev);
		return EXIT_USAGE;
	}
	set_event_times(ev, now);
	if (cli_contact_attach(c, ev, contact) < 0) {
		json_decref(ev);
		return EXIT_USAGE;
	}
	if (relais_submit(c, &ev, 1, &result, max_wait_ms) < 0) {
		die_msg("%s", relais_errmsg(c));
		json_decref(ev);
		return EXIT_USAGE;
	}
	status = result_ok(result) ? 0 : EXIT_REFUSED;
	if (print_json(result) < 0 || fflush(stdout) != 0)
		status = EXIT_REFUSED;
	json_decref(result);
	json_decref(ev);
	return status;
}

static int
cmd_send(int argc, char **argv)
{
	const struct command *cmd = find_command("send");
	struct cli_contact contact;
	struct options o;
	relais_client *c;
	int status;

	if (cli_contact_take(&argc, argv, &contact) < 0) {
		cli_contact_free(&contact);
		return EXIT_USAGE;
	}
	if (parse_options(cmd, argc, argv,
	    ACCEPT_CONNECTION | ACCEPT_TIMEOUT, &o, &status) < 0) {
		cli_contact_free(&contact);
		return status;
	}
	if (contact.details != NULL && optind == argc) {
		die_msg("--contact goes with TYPE key=value arguments; on stdin, "
		    "give the event a \"contact\" object instead");
		cli_contact_free(&contact);
		return EXIT_USAGE;
	}
	int max_wait = o.timeout_ms >= 0 ? (int)o.timeout_ms : SEND_MAX_WAIT_MS;
	/* Check the arguments before making the user wait for a connection. */
	if (optind < argc) {
		json_t *probe = event_from_args(argc - optind, argv + optind);
		if (probe == NULL) {
			cli_contact_free(&contact);
			return EXIT_USAGE;
		}
		json_decref(probe);
	}
	/* send_only: a sender must not draw the agent's deliveries to itself. */
	c = connect_broker(&o, true);
	if (c == NULL) {
		cli_contact_free(&contact);
		return EXIT_USAGE;
	}
	if (optind < argc)
		status = send_one(c, argc - optind, argv + optind, &contact,
		    max_wait);
	else
		status = send_stdin(c, max_wait);
	relais_close(&c);
	cli_contact_free(&contact);
	return status;
}

/* ------------------------------------------------------------------ */
/* listen                                                              */

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Without SA_RESTART, so a signal wakes the library's poll at once. */
static void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static uint64_t
delivery_seq(const json_t *d)
{
	return (uint64_t)json_integer_value(json_object_get(d, "seq"));
}

/* How a follower prints one delivery: 0, or -1 if stdout failed. */
typedef int (*delivery_printer)(const json_t *delivery);

/*
 * Print what is queued (up to the count), then acknowledge the last one:
 * a delivery is acknowledged only once it is out of our hands.
 */
static int
print_batch(relais_client *c, json_t *first, long *left,
    delivery_printer print)
{
	json_t *d = first;
	uint64_t last = 0;

	while (d != NULL) {
		last = delivery_seq(d);
		int rc = print(d);
		json_decref(d);
		if (rc < 0)
			return -1;
		if (*left > 0 && --*left == 0)
			break;
		d = relais_next_delivery(c, 0);
	}
	if (fflush(stdout) != 0)
		return -1;
	if (relais_ack(c, last) < 0)
		die_msg("%s", relais_errmsg(c));
	return 0;
}

/*
 * Print deliveries until the count, the time-out or a stop signal.  Used
 * by `relais listen` and `relais alerts --follow`.
 */
static int
follow_loop(relais_client *c, const struct options *o, delivery_printer print)
{
	long left = o->count > 0 ? o->count : -1;
	int wait = o->timeout_ms >= 0 ? (int)o->timeout_ms : -1;

	while (!stop_requested) {
		json_t *d = relais_next_delivery(c, wait);
		if (d == NULL) {
			if (stop_requested || strcmp(relais_errmsg(c), "timeout") == 0)
				return 0;
			die_msg("%s", relais_errmsg(c));
			return EXIT_USAGE;
		}
		if (print_batch(c, d, &left, print) < 0) {
			die_msg("cannot write deliveries to stdout: %s; they were not "
			    "acknowledged and will come again", strerror(errno));
			return EXIT_REFUSED;
		}
		if (left == 0)
			return 0;
	}
	return 0;
}

/* A delivery, and on stderr why its sealed contact could not be opened. */
static int
print_delivery(const json_t *d)
{
	cli_contact_report(d);
	return print_json(d);
}

static int
cmd_listen(int argc, char **argv)
{
	const struct command *cmd = find_command("listen");
	struct options o;
	relais_client *c;
	int status;

	if (parse_options(cmd, argc, argv, ACCEPT_CONNECTION |
	    ACCEPT_CREDIT | ACCEPT_COUNT | ACCEPT_TIMEOUT, &o, &status) < 0)
		return status;
	if (optind < argc) {
		die_msg("listen takes no arguments, only options; see `relais help "
		    "listen`");
		return EXIT_USAGE;
	}
	catch_stop_signals();
	c = connect_broker(&o, false);
	if (c == NULL)
		return EXIT_USAGE;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "relais: listening as %s (%s)\n",
		    relais_agent_id(c), relais_agent_kind(c));
	status = follow_loop(c, &o, print_delivery);
	relais_close(&c);
	return status;
}

/* ------------------------------------------------------------------ */
/* Queries: alerts, participant, clock, health                         */

/*
 * Ask one query; args (may be NULL) is consumed.  NULL after a message on
 * stderr, with *status 1 when the broker refused the query and 2 when it
 * could not be asked.  forbidden_hint (may be NULL) is added to the
 * message when the refusal is "forbidden", to say what to do instead.
 */
static json_t *
ask(relais_client *c, const char *what, json_t *args,
    const char *forbidden_hint, int *status)
{
	json_t *data = relais_query(c, what, args, QUERY_WAIT_MS);

	json_decref(args);
	if (data != NULL)
		return data;
	if (relais_last_code(c) == RL_E_FORBIDDEN && forbidden_hint != NULL)
		die_msg("%s; %s", relais_errmsg(c), forbidden_hint);
	else
		die_msg("%s", relais_errmsg(c));
	*status = relais_last_code(c) != 0 ? EXIT_REFUSED : EXIT_USAGE;
	return NULL;
}

/* Connect without taking deliveries, ask one query, disconnect. */
static json_t *
ask_once(const struct options *o, const char *what, json_t *args,
    const char *forbidden_hint, int *status)
{
	relais_client *c = connect_broker(o, true);
	json_t *data;

	if (c == NULL) {
		json_decref(args);
		*status = EXIT_USAGE;
		return NULL;
	}
	data = ask(c, what, args, forbidden_hint, status);
	relais_close(&c);
	return data;
}

int
cli_stdout_done(void)
{
	if (ferror(stdout) || fflush(stdout) != 0) {
		die_msg("cannot write to stdout: %s", strerror(errno));
		return EXIT_REFUSED;
	}
	return 0;
}

/* One indented document, for people. */
static int
print_pretty(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2)) != 0 ||
	    fputc('\n', stdout) == EOF) {
		die_msg("cannot write to stdout: %s", strerror(errno));
		return EXIT_REFUSED;
	}
	return cli_stdout_done();
}


static bool
no_operands(const struct command *cmd, int argc)
{
	if (argc - optind == 0)
		return true;
	die_msg("%s takes no arguments, only options; see `relais help %s`",
	    cmd->name, cmd->name);
	return false;
}

/* ---- alerts -------------------------------------------------------- */

/* A follower's line: the alert itself, which names its "change". */
static int
print_alert_delivery(const json_t *d)
{
	const char *kind = json_string_value(json_object_get(d, "kind"));
	const json_t *alert = json_object_get(d, "alert");

	if (kind != NULL && strcmp(kind, "alert") == 0 && json_is_object(alert))
		return print_json(alert);
	return print_json(d);
}

static const char alerts_hint[] = "other agents see the alerts addressed to "
    "them with `relais listen`";

/*
 * Connect with a hello first, so the changes that happen while the open
 * alerts are listed wait in the client's queue and none is missed.
 */
static int
alerts_follow(const struct options *o)
{
	relais_client *c;
	json_t *open;
	int status = 0;

	catch_stop_signals();
	c = connect_broker(o, false);
	if (c == NULL)
		return EXIT_USAGE;
	open = cli_view_all_pages(c, "alerts", json_pack("{s:s}", "status",
	    "open"), "id", CLI_ALERTS_PAGE, alerts_hint, &status);
	if (open != NULL) {
		status = cli_view_lines(open);
		json_decref(open);
		if (status == 0)
			status = follow_loop(c, o, print_alert_delivery);
	}
	relais_close(&c);
	return status;
}

static int
submit_answer(relais_client *c, const char *type, const char *id,
    const char *participant, const char *note)
{
	json_t *ev, *result = NULL;
	int64_t now;
	int status;

	if (relais_broker_now(c, &now) < 0) {
		die_msg("%s", relais_errmsg(c));
		return EXIT_USAGE;
	}
	ev = json_pack("{s:s, s:I, s:s, s:s}", "type", type, "occurred_at",
	    (json_int_t)now, "participant", participant, "alert", id);
	if (note != NULL)
		json_object_set_new(ev, "note", json_string(note));
	if (relais_submit(c, &ev, 1, &result, SEND_MAX_WAIT_MS) < 0) {
		die_msg("%s", relais_errmsg(c));
		json_decref(ev);
		return EXIT_USAGE;
	}
	status = print_json(result) < 0 ? EXIT_REFUSED : cli_stdout_done();
	if (!result_ok(result)) {
		die_msg("the broker refused %s of %s: %s (%s)", type, id,
		    json_string_value(json_object_get(result, "message")),
		    json_string_value(json_object_get(result, "error")));
		status = EXIT_REFUSED;
	}
	json_decref(result);
	json_decref(ev);
	return status;
}

/* alert.acknowledged or alert.resolved of the alert id. */
static int
alerts_answer(const struct options *o, const char *type, const char *id)
{
	relais_client *c = connect_broker(o, true);
	char *participant;
	int status = 0;

	if (c == NULL)
		return EXIT_USAGE;
	participant = cli_alerts_participant(c, id, &status);
	if (participant != NULL)
		status = submit_answer(c, type, id, participant, o->note);
	free(participant);
	relais_close(&c);
	return status;
}

/* "al-" and digits, as the broker names alerts. */
static bool
is_alert_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 4 && n <= 23 && strncmp(s, "al-", 3) == 0 &&
	    strspn(s + 3, "0123456789") == n - 3;
}

/* Listing and following take no --note; only following takes the rest. */
static int
alerts_check_listing(const struct options *o)
{
	if (o->note != NULL) {
		die_msg("--note goes with `relais alerts ack ID` or `relais alerts "
		    "resolve ID`");
		return -1;
	}
	if (!o->follow && (o->count > 0 || o->timeout_ms >= 0 || o->credit > 0)) {
		die_msg("--count, --timeout-ms and --credit go with --follow");
		return -1;
	}
	if (o->follow && o->all) {
		die_msg("--follow lists the open alerts, then their changes; drop "
		    "--all, or drop --follow to list every alert");
		return -1;
	}
	return 0;
}

static int
alerts_check_answer(const struct options *o, const char *sub, const char *id)
{
	json_t *text;

	if (o->all || o->follow || o->count > 0 || o->timeout_ms >= 0 ||
	    o->credit > 0) {
		die_msg("alerts %s takes only --note and the connection options",
		    sub);
		return -1;
	}
	if (!is_alert_id(id)) {
		die_msg("'%s' is not an alert id; alert ids look like al-3 (see "
		    "`relais alerts`)", id);
		return -1;
	}
	if (o->note == NULL)
		return 0;
	if (strlen(o->note) > RL_MAX_TEXT_BYTES) {
		die_msg("--note is %zu bytes; at most %d are allowed, and it must "
		    "not identify anyone", strlen(o->note), RL_MAX_TEXT_BYTES);
		return -1;
	}
	if ((text = json_string(o->note)) == NULL) {
		die_msg("--note must be UTF-8 text");
		return -1;
	}
	json_decref(text);
	return 0;
}

static int
cmd_alerts(int argc, char **argv)
{
	const struct command *cmd = find_command("alerts");
	struct options o;
	const char *sub;
	int status;

	if (cli_alerts_is_listing(argc, argv))
		return cli_alerts_list(argc, argv);
	if (parse_options(cmd, argc, argv, ACCEPT_CONNECTION | ACCEPT_CREDIT |
	    ACCEPT_COUNT | ACCEPT_TIMEOUT | ACCEPT_ALERTS, &o, &status) < 0)
		return status;
	if (optind == argc) {
		if (alerts_check_listing(&o) < 0)
			return EXIT_USAGE;
		return alerts_follow(&o);
	}
	sub = argv[optind];
	if (strcmp(sub, "ack") != 0 && strcmp(sub, "resolve") != 0) {
		die_msg("alerts has no subcommand '%s'; use ack ID or resolve ID, "
		    "or nothing to list the alerts", sub);
		return EXIT_USAGE;
	}
	if (argc - optind != 2) {
		die_msg("alerts %s takes one alert id, e.g. `relais alerts %s al-3`",
		    sub, sub);
		return EXIT_USAGE;
	}
	if (alerts_check_answer(&o, sub, argv[optind + 1]) < 0)
		return EXIT_USAGE;
	return alerts_answer(&o, strcmp(sub, "ack") == 0 ? "alert.acknowledged" :
	    "alert.resolved", argv[optind + 1]);
}

/* Ask the broker one query and print its answer as indented JSON. */
static int
print_query(struct options *o, const char *what, json_t *args)
{
	json_t *data;
	int status;

	data = ask_once(o, what, args, NULL, &status);
	if (data == NULL)
		return status;
	status = print_pretty(data);
	json_decref(data);
	return status;
}

/* ---- clock --------------------------------------------------------- */

static const struct {
	const char *name;
	int64_t ms;
} duration_units[] = {
	/* "ms" before "m", which is its prefix. */
	{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ "d", DAY_MS },
};

/* The unit at *p, moving past it; 0 if there is none. */
static int64_t
take_unit(const char **p)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]);
	    i++) {
		size_t len = strlen(duration_units[i].name);

		if (strncmp(*p, duration_units[i].name, len) == 0) {
			*p += len;
			return duration_units[i].ms;
		}
	}
	return 0;
}

/*
 * "11d", "36h", "90m", "45s", "500ms", or several as in "9d23h", into
 * milliseconds: 0, or -1 after a message.
 */
static int
parse_duration(const char *s, int64_t *out)
{
	const char *p = s;
	int64_t total = 0;

	while (*p != '\0') {
		int64_t n = 0, unit;

		if (*p < '0' || *p > '9')
			break;
		while (*p >= '0' && *p <= '9' && n <= MAX_ADVANCE_MS)
			n = n * 10 + (*p++ - '0');
		if ((unit = take_unit(&p)) == 0)
			break;
		if (n > MAX_ADVANCE_MS / unit || total + n * unit > MAX_ADVANCE_MS) {
			die_msg("DURATION '%s' is more than 3650d; the clock moves at "
			    "most ten years at a time", s);
			return -1;
		}
		total += n * unit;
	}
	if (*p != '\0' || p == s) {
		die_msg("'%s' is not a DURATION; write a number and a unit, d, h, "
		    "m, s or ms: 11d, 36h, 90m, 45s, 500ms, or 9d23h", s);
		return -1;
	}
	if (total == 0) {
		die_msg("DURATION '%s' is zero; say how far to move the clock, "
		    "e.g. 11d", s);
		return -1;
	}
	*out = total;
	return 0;
}

/* "2026-11-27T09:30:00.000Z" */
static void
format_utc(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		snprintf(buf, len, "?");
		return;
	}
	snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* Print {"now", ..., "utc"}; data may carry more members. */
static int
print_clock(json_t *data, json_int_t now)
{
	char utc[64];

	format_utc(now, utc, sizeof(utc));
	json_object_set_new(data, "now", json_integer(now));
	json_object_set_new(data, "utc", json_string(utc));
	return print_json(data) < 0 ? EXIT_REFUSED : cli_stdout_done();
}

/* Any agent may read the time: the health query carries it. */
static int
clock_show(const struct options *o)
{
	int status = 0;
	json_t *health = ask_once(o, "health", NULL, NULL, &status), *out;
	json_t *now;

	if (health == NULL)
		return status;
	now = json_object_get(health, "time");
	if (!json_is_integer(now)) {
		die_msg("the broker's health answer has no time; is it the same "
		    "relais version?");
		json_decref(health);
		return EXIT_USAGE;
	}
	out = json_object();
	status = print_clock(out, json_integer_value(now));
	json_decref(out);
	json_decref(health);
	return status;
}

static int
clock_advance(const struct options *o, int64_t ms)
{
	int status = 0;
	json_t *data = ask_once(o, "clock",
	    json_pack("{s:I}", "advance_ms", (json_int_t)ms),
	    "it takes an operator's key and a broker whose configuration says "
	    "manual_clock = yes", &status);

	if (data == NULL)
		return status;
	status = print_clock(data,
	    json_integer_value(json_object_get(data, "now")));
	json_decref(data);
	return status;
}

static int
cmd_clock(int argc, char **argv)
{
	const struct command *cmd = find_command("clock");
	struct options o;
	int64_t ms;
	int status;

	if (parse_options(cmd, argc, argv, ACCEPT_CONNECTION, &o, &status) < 0)
		return status;
	if (optind == argc)
		return clock_show(&o);
	if (argc - optind != 2 || strcmp(argv[optind], "advance") != 0) {
		die_msg("clock takes nothing, or advance DURATION (e.g. `relais "
		    "clock advance 11d`)");
		return EXIT_USAGE;
	}
	if (parse_duration(argv[optind + 1], &ms) < 0)
		return EXIT_USAGE;
	return clock_advance(&o, ms);
}

/* ---- health -------------------------------------------------------- */

static int
cmd_health(int argc, char **argv)
{
	const struct command *cmd = find_command("health");
	struct options o;
	int status;

	if (parse_options(cmd, argc, argv, ACCEPT_CONNECTION, &o, &status) < 0)
		return status;
	if (!no_operands(cmd, argc))
		return EXIT_USAGE;
	return print_query(&o, "health", NULL);
}

/* ---- for the commands in cli_*.c ----------------------------------- */

/* The connection options as cli_ask() reads them. */
static void
cli_options(const struct cli_conn *conn, struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->endpoint = env_or(conn->endpoint, "RELAIS_ENDPOINT", DEFAULT_ENDPOINT);
	o->server_key = env_or(conn->server_key, "RELAIS_SERVER_KEY", NULL);
	o->key = env_or(conn->key, "RELAIS_KEY", NULL);
}

json_t *
cli_ask(const struct cli_conn *conn, const char *what, json_t *args,
    const char *forbidden_hint, int *status)
{
	struct options o;

	cli_options(conn, &o);
	return ask_once(&o, what, args, forbidden_hint, status);
}

relais_client *
cli_connect(const struct cli_conn *conn, bool send_only)
{
	struct options o;

	cli_options(conn, &o);
	return connect_broker(&o, send_only);
}

json_t *
cli_query(relais_client *c, const char *what, json_t *args,
    const char *forbidden_hint, int *status)
{
	return ask(c, what, args, forbidden_hint, status);
}

void
cli_usage(const char *name)
{
	command_usage(stdout, find_command(name));
}

/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	const struct command *cmd;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	cmd = find_command(argv[1]);
	if (cmd == NULL) {
		die_msg("no command '%s'; the commands are listed below", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}
