/*
 * relais inbox: for this agent's key, the referrals addressed to it that
 * await its answer, the referrals it sent that await an answer, and the
 * open alerts that name it, each with its age.  It reads the broker's
 * durable state (the "inbox" query): nothing is acknowledged or consumed,
 * so it shows the same thing whether or not `relais listen` ran.
 */
#include <stdio.h>
#include <string.h>

#include "cli_inbox.h"
#include "cli_view.h"

const char cli_inbox_details[] =
    "Three lists, each item with its age (how long it has waited):\n"
    "  to answer   referrals sent to you that you have not accepted or\n"
    "              declined (answer with `relais send referral.accepted` or\n"
    "              `referral.declined`), with when they expire\n"
    "  sent        referrals you sent that are still unanswered\n"
    "  alerts      open alerts that name you among the agents concerned\n"
    "A table on a terminal, else one JSON object per line with \"list\" set\n"
    "to to_answer, sent or alert, and \"age_ms\".\n"
    "  --json      JSON lines even on a terminal\n"
    "Operators have no inbox.\n";

static const struct option options[] = {
	CLI_VIEW_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static int
parse(int argc, char **argv, struct cli_view *v)
{
	int rc = cli_view_parse(v, "inbox", argc, argv, "e:h", options, NULL,
	    NULL, false);

	if (rc == 0)
		cli_view_done(v);
	return rc;
}

static int
print_lines(const json_t *data, int64_t now)
{
	static const struct { const char *member, *list, *since; } parts[] = {
		{ "to_answer", "to_answer", "sent_at" },
		{ "sent", "sent", "sent_at" },
		{ "alerts", "alert", "opened_at" },
	};

	for (size_t p = 0; p < 3; p++) {
		const json_t *item;
		size_t i;

		json_array_foreach(json_object_get(data, parts[p].member), i, item) {
			json_t *line = json_deep_copy(item);
			int64_t since = json_integer_value(json_object_get(item,
			    parts[p].since));

			json_object_set_new(line, "list", json_string(parts[p].list));
			json_object_set_new(line, "age_ms", json_integer(now - since));
			json_dumpf(line, stdout, JSON_COMPACT);
			fputc('\n', stdout);
			json_decref(line);
		}
	}
	return cli_stdout_done();
}

static void
print_referrals(const json_t *list, const char *title, const char *other,
    int64_t now)
{
	const json_t *r;
	size_t i;

	printf("%s (%zu)\n", title, json_array_size(list));
	if (json_array_size(list) == 0)
		return;
	printf("  %-16s %-20s %-22s %-6s %s\n", "REFERRAL", "PARTICIPANT",
	    strcmp(other, "from") == 0 ? "FROM" : "TO", "AGE", "EXPIRES");
	json_array_foreach(list, i, r) {
		char age[16], expires[24];

		cli_view_age(now, json_integer_value(json_object_get(r, "sent_at")),
		    age);
		cli_view_time(json_integer_value(json_object_get(r, "expires_at")),
		    expires);
		printf("  %-16s %-20s %-22s %-6s %s\n",
		    json_string_value(json_object_get(r, "referral")),
		    json_string_value(json_object_get(r, "participant")),
		    json_string_value(json_object_get(r, other)), age, expires);
	}
}

static void
print_alerts(const json_t *list, int64_t now)
{
	const json_t *a;
	size_t i;

	printf("Open alerts naming you (%zu)\n", json_array_size(list));
	if (json_array_size(list) == 0)
		return;
	printf("  %-8s %-20s %-22s %-13s %s\n", "ALERT", "PARTICIPANT", "RULE",
	    "STATUS", "AGE");
	json_array_foreach(list, i, a) {
		char age[16];

		cli_view_age(now, json_integer_value(json_object_get(a,
		    "opened_at")), age);
		printf("  %-8s %-20s %-22s %-13s %s\n",
		    json_string_value(json_object_get(a, "id")),
		    json_string_value(json_object_get(a, "participant")),
		    json_string_value(json_object_get(a, "rule")),
		    json_string_value(json_object_get(a, "status")), age);
	}
}

int
cli_inbox(int argc, char **argv)
{
	struct cli_view v = { 0 };
	json_t *data;
	int64_t now;
	int status = 0, rc;

	if ((rc = parse(argc, argv, &v)) != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	data = cli_ask(&v.conn, "inbox", NULL, NULL, &status);
	if (data == NULL)
		return status;
	now = json_integer_value(json_object_get(data, "now"));
	if (v.json) {
		status = print_lines(data, now);
	} else {
		print_referrals(json_object_get(data, "to_answer"),
		    "Referrals awaiting your answer", "from", now);
		printf("\n");
		print_referrals(json_object_get(data, "sent"),
		    "Referrals you sent, awaiting an answer", "to", now);
		printf("\n");
		print_alerts(json_object_get(data, "alerts"), now);
		status = cli_stdout_done();
	}
	if (json_is_true(json_object_get(data, "truncated")))
		die_msg("the inbox holds more than 1000 items of one kind; only the "
		    "first 1000 are shown: answer the oldest first");
	json_decref(data);
	return status;
}
