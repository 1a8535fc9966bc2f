/*
 * relais alerts, the listing: the alerts of the coordinator's territory,
 * filtered by status, rule, QPV and age, read page after page so that
 * none is left out, as a table on a terminal and JSON lines otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_alerts.h"
#include "cli_view.h"

#define PAGE CLI_ALERTS_PAGE

static const char hint[] = "other agents see the alerts that name them "
    "with `relais inbox`";

enum { OPT_ALL = CLI_OPT_OWN, OPT_STATUS, OPT_RULE, OPT_QPV, OPT_OLDER };

static const struct option options[] = {
	CLI_VIEW_OPTIONS,
	{ "all", no_argument, NULL, 'a' },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "rule", required_argument, NULL, OPT_RULE },
	{ "qpv", required_argument, NULL, OPT_QPV },
	{ "older-than-days", required_argument, NULL, OPT_OLDER },
	{ NULL, 0, NULL, 0 },
};

bool
cli_alerts_is_listing(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0 ||
		    strcmp(argv[i], "ack") == 0 || strcmp(argv[i], "resolve") == 0)
			return false;
	}
	return true;
}

static int
take(int ch, const char *arg, void *ctx)
{
	json_t *args = ctx;
	static const char *const statuses[] = { "open", "acknowledged",
	    "resolved", "all", NULL };
	long n;

	switch (ch) {
	case 'a':
		json_object_set_new(args, "status", json_string("all"));
		return 0;
	case OPT_STATUS:
		for (const char *const *s = statuses; *s != NULL; s++)
			if (strcmp(*s, arg) == 0) {
				json_object_set_new(args, "status", json_string(arg));
				return 0;
			}
		die_msg("--status takes open, acknowledged, resolved or all, not "
		    "'%s'", arg);
		return -1;
	case OPT_RULE:
		json_object_set_new(args, "rule", json_string(arg));
		return 0;
	case OPT_QPV:
		json_object_set_new(args, "qpv", json_string(arg));
		return 0;
	default:        /* OPT_OLDER */
		if (cli_view_number("--older-than-days", arg, 1, 36500, &n) < 0)
			return -1;
		json_object_set_new(args, "older_than_days", json_integer(n));
		return 0;
	}
}

static int
parse(int argc, char **argv, struct cli_view *v, json_t *args)
{
	int rc = cli_view_parse(v, "alerts", argc, argv, "e:ah", options, take,
	    args, false);

	if (rc == 0)
		cli_view_done(v);
	return rc;
}

static void
print_table(const json_t *list, int64_t now)
{
	const json_t *a;
	size_t i;

	printf("%-8s %-20s %-22s %-8s %-20s %-13s %-5s %s\n", "ALERT",
	    "PARTICIPANT", "RULE", "SEVERITY", "QPV", "STATUS", "AGE", "AGENTS");
	json_array_foreach(list, i, a) {
		char age[16], agents[160] = "";
		const json_t *x;
		size_t j;

		json_array_foreach(json_object_get(a, "agents"), j, x)
			snprintf(agents + strlen(agents), sizeof(agents) -
			    strlen(agents), "%s%s", j ? "," : "", json_string_value(x));
		cli_view_age(now, json_integer_value(json_object_get(a,
		    "opened_at")), age);
		printf("%-8s %-20s %-22s %-8s %-20s %-13s %-5s %s\n",
		    json_string_value(json_object_get(a, "id")),
		    json_string_value(json_object_get(a, "participant")),
		    json_string_value(json_object_get(a, "rule")),
		    json_string_value(json_object_get(a, "severity")),
		    json_string_value(json_object_get(a, "qpv")),
		    json_string_value(json_object_get(a, "status")), age,
		    agents[0] ? agents : "-");
	}
	printf("%zu alert%s\n", json_array_size(list),
	    json_array_size(list) == 1 ? "" : "s");
}

int
cli_alerts_list(int argc, char **argv)
{
	struct cli_view v = { 0 };
	json_t *args = json_object(), *list, *health;
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
	list = cli_view_all_pages(c, "alerts", args, "id", PAGE, hint, &status);
	health = list != NULL && !v.json ?
	    cli_query(c, "health", NULL, NULL, &status) : NULL;
	relais_close(&c);
	if (list == NULL)
		return status;
	if (v.json) {
		status = cli_view_lines(list);
	} else {
		print_table(list, json_integer_value(json_object_get(health,
		    "time")));
		status = cli_stdout_done();
	}
	json_decref(health);
	json_decref(list);
	return status;
}

char *
cli_alerts_participant(relais_client *c, const char *id, int *status)
{
	uint64_t seq = strtoull(id + 3, NULL, 10);
	char after[32];
	json_t *page, *a;
	char *participant = NULL;

	/* The page that starts at this alert: the one just before it. */
	snprintf(after, sizeof(after), "al-%" PRIu64, seq - 1);
	page = cli_query(c, "alerts", seq > 1 ? json_pack("{s:s, s:s, s:i}",
	    "status", "all", "after", after, "limit", 1) :
	    json_pack("{s:s, s:i}", "status", "all", "limit", 1),
	    "only coordinators acknowledge and resolve alerts", status);
	if (page == NULL)
		return NULL;
	a = json_array_get(page, 0);
	if (a != NULL && json_string_value(json_object_get(a, "id")) != NULL &&
	    strcmp(json_string_value(json_object_get(a, "id")), id) == 0)
		participant = strdup(json_string_value(json_object_get(a,
		    "participant")));
	json_decref(page);
	if (participant == NULL) {
		die_msg("no alert %s among the alerts of your territory; `relais "
		    "alerts --all` lists them", id);
		*status = EXIT_REFUSED;
	}
	return participant;
}
