/*
 * relais participant ID: a person's file, readable by default (dates in
 * Paris time, agents by id, referral states including expired, barriers,
 * open alerts, the timeline), or the broker's document with --json.
 */
#include <stdio.h>
#include <string.h>

#include "cli_participant.h"
#include "cli_view.h"
#include "relais_proto.h"

const char cli_participant_details[] =
    "Prints the participant's file: phase, QPV, who identified them, their\n"
    "referents, every referral and its state (requested, accepted,\n"
    "declined, cancelled, expired), barriers, appointments, enrollments,\n"
    "employment, open alerts, then every recorded event, oldest first.\n"
    "Dates are Paris time.\n"
    "  --json     the broker's document instead, indented:\n"
    "             {\"state\":{...},\"timeline\":[...]} (PROTOCOL.md §7)\n"
    "Coordinators may read the participants of their QPVs; partners the\n"
    "people they support, those of their referrals (open, or closed less\n"
    "than 90 days ago) and those they identified, until they exit; never\n"
    "because they sent an event about them; operators none.  Exit status:\n"
    "1 if the broker refuses, with its reason on stderr.\n";

static const struct option options[] = {
	CLI_VIEW_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static bool
is_participant_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= RL_MAX_ID_BYTES && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
	    == n;
}

/* Options into v, the id into *id; 1 after --help, -1 after a message. */
static int
parse(int argc, char **argv, struct cli_view *v, const char **id)
{
	int rc = cli_view_parse(v, "participant", argc, argv, "e:h", options,
	    NULL, NULL, true);

	if (rc != 0)
		return rc;
	if (argc - optind != 1) {
		die_msg("participant takes one participant id, e.g. `relais "
		    "participant p-42`");
		return -1;
	}
	*id = argv[optind];
	if (!is_participant_id(*id)) {
		die_msg("'%s' is not a participant id (1 to %d of A-Z a-z 0-9 . _ "
		    ": -)", *id, RL_MAX_ID_BYTES);
		return -1;
	}
	return 0;
}

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

static const char *
when(const json_t *o, const char *key, char buf[24])
{
	cli_view_time(json_integer_value(json_object_get(o, key)), buf);
	return buf;
}

static void
print_summary(const json_t *st)
{
	char t1[24], t2[24];

	printf("Participant %s\n", str(st, "participant"));
	printf("  QPV            %s\n", str(st, "qpv"));
	printf("  phase          %s\n", str(st, "phase"));
	printf("  identified     %s by %s\n", when(st, "identified_at", t1),
	    str(st, "identified_by"));
	printf("  last activity  %s\n", when(st, "last_activity", t2));
	if (strcmp(str(st, "phase"), "exited") == 0)
		printf("  exited         %s (%s)\n", when(st, "exited_at", t1),
		    str(st, "exit_reason"));
}

static void
print_lists(const json_t *st)
{
	const json_t *x;
	char t1[24], t2[24];
	size_t i;

	printf("\nReferents (%zu)\n", json_array_size(json_object_get(st,
	    "referents")));
	json_array_foreach(json_object_get(st, "referents"), i, x)
		printf("  %-24s since %s\n", str(x, "agent"), when(x, "since", t1));
	printf("\nReferrals (%zu)\n", json_array_size(json_object_get(st,
	    "referrals")));
	json_array_foreach(json_object_get(st, "referrals"), i, x) {
		printf("  %-16s %s -> %s  %-9s sent %s", str(x, "id"),
		    str(x, "from"), str(x, "to"), str(x, "state"),
		    when(x, "sent_at", t1));
		if (json_integer_value(json_object_get(x, "answered_at")) > 0)
			printf(", answered %s", when(x, "answered_at", t2));
		else if (json_integer_value(json_object_get(x, "expires_at")) > 0)
			printf(", %s %s", strcmp(str(x, "state"), "expired") == 0 ?
			    "expired" : "expires", when(x, "expires_at", t2));
		printf("\n");
	}
	printf("\nBarriers (%zu)\n", json_array_size(json_object_get(st,
	    "barriers")));
	json_array_foreach(json_object_get(st, "barriers"), i, x) {
		printf("  %-18s %-7s identified %s", str(x, "code"),
		    str(x, "state"), when(x, "identified_at", t1));
		if (json_integer_value(json_object_get(x, "lifted_at")) > 0)
			printf(", lifted %s", when(x, "lifted_at", t2));
		printf("\n");
	}
	json_array_foreach(json_object_get(st, "appointments"), i, x)
		printf("%s  %-16s %-10s %s\n", i == 0 ? "\nAppointments\n" : "",
		    str(x, "id"), str(x, "state"), when(x, "at", t1));
	json_array_foreach(json_object_get(st, "enrollments"), i, x)
		printf("%s  %-16s since %s\n", i == 0 ? "\nEnrollments\n" : "",
		    str(x, "scheme"), when(x, "first_at", t1));
	x = json_object_get(st, "employment");
	if (json_is_object(x))
		printf("\nEmployment\n  %s since %s, reported by %s\n",
		    str(x, "contract"), when(x, "started_at", t1), str(x, "by"));
}

/*
 * A referral's sealed contact details, which the broker gives only to the
 * referral's target and librelais opened with this agent's key.
 */
static void
print_contact(const json_t *ev)
{
	static const char *const keys[] = {
		"name", "phone", "email", "address", "best_time", "note",
	};
	const json_t *c = json_object_get(ev, "contact");

	if (json_object_get(ev, "contact_error") != NULL)
		printf("      contact: %s\n", str(ev, "contact_error"));
	if (!json_is_object(c))
		return;
	printf("      contact:");
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		const char *v = json_string_value(json_object_get(c, keys[k]));

		if (v == NULL)
			continue;
		/* The sender wrote it: no control character reaches the terminal. */
		printf(" %s=", keys[k]);
		for (; *v != '\0'; v++)
			putchar((unsigned char)*v < 0x20 || *v == 0x7f ? '?' : *v);
	}
	printf("\n");
}

static void
print_alerts_and_timeline(const json_t *st, const json_t *timeline)
{
	const json_t *x;
	char t1[24];
	size_t i;

	printf("\nOpen alerts (%zu)\n", json_array_size(json_object_get(st,
	    "open_alerts")));
	json_array_foreach(json_object_get(st, "open_alerts"), i, x)
		printf("  %-8s %-22s %-13s opened %s\n", str(x, "id"),
		    str(x, "rule"), str(x, "status"), when(x, "opened_at", t1));
	printf("\nTimeline (%zu events)\n", json_array_size(timeline));
	json_array_foreach(timeline, i, x) {
		printf("  %s  %-24s by %s\n", when(x, "occurred_at", t1),
		    str(x, "type"), str(x, "sender"));
		print_contact(x);
	}
}

int
cli_participant(int argc, char **argv)
{
	struct cli_view v = { 0 };
	const char *id = NULL;
	json_t *doc;
	int status = 0, rc;

	if ((rc = parse(argc, argv, &v, &id)) != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	doc = cli_ask(&v.conn, "participant", json_pack("{s:s}", "id", id),
	    NULL, &status);
	if (doc == NULL)
		return status;
	if (v.json) {
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) == 0)
			fputc('\n', stdout);
	} else {
		const json_t *st = json_object_get(doc, "state");

		print_summary(st);
		print_lists(st);
		print_alerts_and_timeline(st, json_object_get(doc, "timeline"));
	}
	json_decref(doc);
	return cli_stdout_done();
}
