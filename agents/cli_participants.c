/*
 * relais participants: the people of the coordinator's QPVs, with their
 * phase, referents, last activity and open alerts, filtered and paged
 * through the broker's "participants" query.
 */
#include <stdio.h>
#include <string.h>

#include "cli_participants.h"
#include "cli_view.h"

#define PAGE 100

const char cli_participants_details[] =
    "For coordinators: every participant of the QPVs this agent covers,\n"
    "as a table on a terminal, else one JSON object per line:\n"
    "  {\"participant\",\"qpv\",\"phase\",\"referents\":[...],\n"
    "   \"last_activity\":ms,\"open_alerts\":N,\"alert_rules\":[...]}\n"
    "  --phase P          identified, referred, supported, enrolled,\n"
    "                     employed or exited\n"
    "  --qpv Q            only this QPV\n"
    "  --with-alerts      only people with an open alert\n"
    "  --inactive-days N  only people with no event for N days or more\n"
    "  --json             JSON lines even on a terminal\n"
    "Every page of the list is read; nothing is left out.\n";

enum { OPT_PHASE = CLI_OPT_OWN, OPT_QPV, OPT_WITH_ALERTS, OPT_INACTIVE };

static const struct option options[] = {
	CLI_VIEW_OPTIONS,
	{ "phase", required_argument, NULL, OPT_PHASE },
	{ "qpv", required_argument, NULL, OPT_QPV },
	{ "with-alerts", no_argument, NULL, OPT_WITH_ALERTS },
	{ "inactive-days", required_argument, NULL, OPT_INACTIVE },
	{ NULL, 0, NULL, 0 },
};

static const char *const phases[] = { "identified", "referred", "supported",
	"enrolled", "employed", "exited", NULL };

static bool
is_phase(const char *s)
{
	for (const char *const *p = phases; *p != NULL; p++)
		if (strcmp(*p, s) == 0)
			return true;
	return false;
}

static int
take(int ch, const char *arg, void *ctx)
{
	json_t *args = ctx;
	long n;

	switch (ch) {
	case OPT_PHASE:
		if (!is_phase(arg)) {
			die_msg("--phase takes identified, referred, supported, "
			    "enrolled, employed or exited, not '%s'", arg);
			return -1;
		}
		json_object_set_new(args, "phase", json_string(arg));
		return 0;
	case OPT_QPV:
		json_object_set_new(args, "qpv", json_string(arg));
		return 0;
	case OPT_WITH_ALERTS:
		json_object_set_new(args, "with_alerts", json_true());
		return 0;
	default:        /* OPT_INACTIVE */
		if (cli_view_number("--inactive-days", arg, 1, 36500, &n) < 0)
			return -1;
		json_object_set_new(args, "inactive_days", json_integer(n));
		return 0;
	}
}

/* Options into v and args; 1 after --help, -1 after a message. */
static int
parse(int argc, char **argv, struct cli_view *v, json_t *args)
{
	int rc = cli_view_parse(v, "participants", argc, argv, "e:h", options,
	    take, args, false);

	if (rc == 0)
		cli_view_done(v);
	return rc;
}

static void
print_table(const json_t *list)
{
	const json_t *p;
	size_t i;

	printf("%-20s %-22s %-10s %-24s %-16s %s\n", "PARTICIPANT", "QPV",
	    "PHASE", "REFERENTS", "LAST ACTIVITY", "OPEN ALERTS");
	json_array_foreach(list, i, p) {
		char when[24], refs[128] = "", rules[256] = "";
		const json_t *x;
		size_t j;

		json_array_foreach(json_object_get(p, "referents"), j, x)
			snprintf(refs + strlen(refs), sizeof(refs) - strlen(refs),
			    "%s%s", j ? "," : "", json_string_value(x));
		json_array_foreach(json_object_get(p, "alert_rules"), j, x)
			snprintf(rules + strlen(rules), sizeof(rules) - strlen(rules),
			    "%s%s", j ? "," : "", json_string_value(x));
		cli_view_time(json_integer_value(json_object_get(p,
		    "last_activity")), when);
		printf("%-20s %-22s %-10s %-24s %-16s %s\n",
		    json_string_value(json_object_get(p, "participant")),
		    json_string_value(json_object_get(p, "qpv")),
		    json_string_value(json_object_get(p, "phase")),
		    refs[0] ? refs : "-", when, rules[0] ? rules : "-");
	}
	printf("%zu participant%s\n", json_array_size(list),
	    json_array_size(list) == 1 ? "" : "s");
}

int
cli_participants(int argc, char **argv)
{
	struct cli_view v = { 0 };
	json_t *args = json_object(), *list;
	relais_client *c;
	int status = 0, rc;

	if ((rc = parse(argc, argv, &v, args)) != 0) {
		json_decref(args);
		return rc > 0 ? 0 : EXIT_USAGE;
	}
	if ((c = cli_connect(&v.conn, true)) == NULL) {
		json_decref(args);
		return EXIT_USAGE;
	}
	list = cli_view_all_pages(c, "participants", args, "participant", PAGE,
	    "partners see the referrals that concern them with `relais inbox`",
	    &status);
	relais_close(&c);
	if (list == NULL)
		return status;
	if (v.json) {
		status = cli_view_lines(list);
	} else {
		print_table(list);
		status = cli_stdout_done();
	}
	json_decref(list);
	return status;
}
