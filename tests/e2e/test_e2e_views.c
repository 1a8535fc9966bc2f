/*
 * End to end, what a coordinator and a partner see of a person's pathway
 * through the real broker: alerts that a later one makes moot are closed
 * as superseded (SPEC §4), the participant query names every field and
 * shows an expired referral as expired.
 *
 * The broker runs with manual_clock = yes; an operator moves its clock
 * forward and the tests wait for the alert that the sweep opens last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "relais_proto.h"
#include "harness.h"

static struct e2e_broker *
views_broker(void)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "ft-nord", "france_travail", true);
	e2e_agent_add(b, "cite-emploi", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	return b;
}

static json_t *
open_alerts(relais_client *coord)
{
	json_t *args = json_pack("{s:s}", "status", "open");
	json_t *list = relais_query(coord, "alerts", args, 10000);

	json_decref(args);
	e2e_assert(json_is_array(list), "alerts query: %s", relais_errmsg(coord));
	return list;
}

static bool
lists_rule(const json_t *alerts, const char *rule)
{
	const json_t *a;
	size_t i;

	json_array_foreach(alerts, i, a)
		if (jstr(a, "rule") != NULL && strcmp(jstr(a, "rule"), rule) == 0)
			return true;
	return false;
}

static json_t *
find_rule(const json_t *alerts, const char *rule)
{
	json_t *a;
	size_t i;

	json_array_foreach(alerts, i, a)
		if (jstr(a, "rule") != NULL && strcmp(jstr(a, "rule"), rule) == 0)
			return a;
	return NULL;
}

/*
 * One referral nobody answers.  It used to leave five open alerts by day
 * 46, two of which (referral_unanswered, referral_expired) could never
 * resolve themselves.  Now the warning is superseded when the referral
 * expires, four alerts are open on day 46, the social centre that
 * identified the person is concerned by no_referent and no_contact, the
 * pathway shows the referral as expired, and a new referral resolves all
 * four.
 */
static void
test_one_unanswered_referral(void **state)
{
	struct e2e_broker *b = views_broker();
	relais_client *cs, *coord, *ops;
	json_t *list, *a, *doc, *ref;
	int64_t now;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	coord = au_connect_quiet(b, "cite-emploi");
	ops = au_connect_quiet(b, "ops");
	now = au_broker_now(cs);
	au_submit_ok(cs, au_ev_identified("id-1", "p-1", "sanitas", now));
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-1", "p-1", "r-1", "ml-tours"),
	    now));

	au_clock_advance(ops, 11 * AU_DAY_MS);
	json_decref(au_wait_listed(coord, "referral_unanswered", "p-1"));

	au_clock_advance(ops, 20 * AU_DAY_MS);
	json_decref(au_wait_listed(coord, "referral_expired", "p-1"));
	list = open_alerts(coord);
	e2e_assert(!lists_rule(list, "referral_unanswered"), "on day 31 the "
	    "unanswered warning must be superseded, got %s", e2e_json_str(list));
	json_decref(list);
	a = au_find_alert(coord, "all", "referral_unanswered", "p-1");
	e2e_assert(a != NULL, "the superseded warning is still listed with --all");
	e2e_assert_str("resolved", jstr(a, "status"), "warning's status");
	e2e_assert_str("relais", jstr(json_object_get(a, "resolved"), "by"),
	    "who resolved the warning");
	e2e_assert_str("superseded", jstr(a, "note"), "the warning's note");
	json_decref(a);

	au_clock_advance(ops, 15 * AU_DAY_MS);
	json_decref(au_wait_listed(coord, "no_contact", "p-1"));
	list = open_alerts(coord);
	e2e_assert_int(4, json_array_size(list), "open alerts on day 46");
	e2e_assert(lists_rule(list, "referral_expired") &&
	    lists_rule(list, "no_reorientation") &&
	    lists_rule(list, "no_referent") && lists_rule(list, "no_contact"),
	    "expected referral_expired, no_reorientation, no_referent and "
	    "no_contact, got %s", e2e_json_str(list));
	e2e_assert(au_array_has(json_object_get(find_rule(list, "no_referent"),
	    "agents"), "cs-pasteur"), "the agent that identified the person is "
	    "concerned by no_referent: %s", e2e_json_str(list));
	e2e_assert(au_array_has(json_object_get(find_rule(list, "no_contact"),
	    "agents"), "cs-pasteur"), "the agent that identified the person is "
	    "concerned by no_contact: %s", e2e_json_str(list));
	json_decref(list);

	a = json_pack("{s:s}", "id", "p-1");
	doc = relais_query(coord, "participant", a, 10000);
	json_decref(a);
	e2e_assert(doc != NULL, "participant query: %s", relais_errmsg(coord));
	ref = json_array_get(json_object_get(json_object_get(doc, "state"),
	    "referrals"), 0);
	e2e_assert_str("expired", jstr(ref, "state"), "the referral's state");
	e2e_assert_str("cs-pasteur", jstr(json_object_get(doc, "state"),
	    "identified_by"), "identified_by");
	e2e_assert_int(4, json_array_size(json_object_get(json_object_get(doc,
	    "state"), "open_alerts")), "open alerts in the participant's file");
	json_decref(doc);

	/* Re-oriented: a new referral answers every one of them. */
	now = au_broker_now(cs);
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-2", "p-1", "r-2", "ft-nord"),
	    now));
	list = open_alerts(coord);
	e2e_assert_int(0, json_array_size(list), "open alerts after the new "
	    "referral");
	json_decref(list);
	relais_close(&ops);
	relais_close(&coord);
	relais_close(&cs);
}

static void
expect_cli(const struct au_cli *cli, int status, const char *what)
{
	e2e_assert(cli->status == status, "%s: expected exit status %d, got %d; "
	    "stdout: %.400s; stderr: %.400s", what, status, cli->status, cli->out,
	    cli->err);
	if (status != 0)
		e2e_assert(strncmp(cli->err, "relais: ", 8) == 0 &&
		    strchr(cli->err, '\n') == cli->err + strlen(cli->err) - 1,
		    "%s: expected one sentence \"relais: ...\" on stderr, got: %s",
		    what, cli->err);
}

/*
 * relais participants lists the coordinator's QPVs only, filters by
 * phase, open alerts and inactivity, and pages through more people than
 * one page holds (the broker's pages are 100).
 */
static void
test_cli_participants(void **state)
{
	struct e2e_broker *b = views_broker();
	relais_client *cs, *ops, *coord;
	struct au_cli cli;
	json_t *lines, *ev[RL_MAX_BATCH], *res[RL_MAX_BATCH];
	int64_t now;
	size_t n = 0;

	au_agent_add_qpv(b, "coord-sanitas", "coordinator", "sanitas");
	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	now = au_broker_now(cs);
	/* 150 people in sanitas, 3 in rochepinard. */
	for (int i = 0; i < 153; i++) {
		char id[32], p[32];

		snprintf(id, sizeof(id), "id-%03d", i);
		snprintf(p, sizeof(p), "p-%03d", i);
		ev[n++] = au_ev_identified(id, p, i < 150 ? "sanitas" :
		    "rochepinard", now);
		if (n == 100 || i == 152) {
			e2e_assert(relais_submit(cs, ev, n, res, 30000) == 0,
			    "submit: %s", relais_errmsg(cs));
			for (size_t k = 0; k < n; k++) {
				e2e_expect_ok(res[k]);
				json_decref(res[k]);
				json_decref(ev[k]);
			}
			n = 0;
		}
	}
	au_submit_ok(cs, au_ev_support("sup-1", "p-001", now));

	au_cli_run(b, "cite-emploi", &cli, "participants", NULL);
	expect_cli(&cli, 0, "relais participants");
	lines = au_json_lines(cli.out);
	e2e_assert_int(153, json_array_size(lines), "participants of every QPV");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "coord-sanitas", &cli, "participants", NULL);
	expect_cli(&cli, 0, "relais participants for sanitas");
	lines = au_json_lines(cli.out);
	e2e_assert_int(150, json_array_size(lines), "participants of sanitas");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "participants", "--phase", "supported",
	    NULL);
	expect_cli(&cli, 0, "--phase supported");
	lines = au_json_lines(cli.out);
	e2e_assert_int(1, json_array_size(lines), "supported participants");
	e2e_assert_str("p-001", jstr(json_array_get(lines, 0), "participant"),
	    "the supported one");
	e2e_assert(au_array_has(json_object_get(json_array_get(lines, 0),
	    "referents"), "cs-pasteur"), "its referent: %s", e2e_json_str(lines));
	json_decref(lines);
	au_cli_free(&cli);

	/* Fifteen days on, everyone but p-001 has a no_referent alert. */
	au_clock_advance(ops, 16 * AU_DAY_MS);
	coord = au_connect_quiet(b, "cite-emploi");
	json_decref(au_wait_listed(coord, "no_referent", "p-152"));
	relais_close(&coord);
	au_cli_run(b, "cite-emploi", &cli, "participants", "--with-alerts",
	    "--inactive-days", "15", NULL);
	expect_cli(&cli, 0, "--with-alerts --inactive-days 15");
	lines = au_json_lines(cli.out);
	e2e_assert_int(152, json_array_size(lines), "people with alerts");
	e2e_assert_int(1, jint(json_array_get(lines, 0), "open_alerts"),
	    "open alerts of the first");
	json_decref(lines);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "participants", "--inactive-days",
	    "17", NULL);
	expect_cli(&cli, 0, "--inactive-days 17");
	e2e_assert(cli.out[0] == '\0', "nobody is inactive for 17 days: %.200s",
	    cli.out);
	au_cli_free(&cli);

	au_cli_run(b, "cs-pasteur", &cli, "participants", NULL);
	expect_cli(&cli, 1, "relais participants as a partner");
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "participants", "--phase", "lost",
	    NULL);
	expect_cli(&cli, 2, "--phase lost");
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "participants", "--help", NULL);
	expect_cli(&cli, 0, "--help");
	e2e_assert(strstr(cli.out, "--inactive-days") != NULL, "help: %s",
	    cli.out);
	au_cli_free(&cli);
	relais_close(&ops);
	relais_close(&cs);
}

/*
 * relais inbox shows, for each agent, the referrals awaiting its answer,
 * those it sent that await one, and the open alerts naming it, from the
 * broker's state: the same before and after a `relais listen` took the
 * deliveries.
 */
static void
test_cli_inbox(void **state)
{
	struct e2e_broker *b = views_broker();
	relais_client *cs, *ml, *ops, *coord;
	struct au_cli cli;
	json_t *lines;
	int64_t now;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ml = au_connect_quiet(b, "ml-tours");
	ops = au_connect_quiet(b, "ops");
	now = au_broker_now(cs);
	au_submit_ok(cs, au_ev_identified("id-1", "p-1", "sanitas", now));
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-1", "p-1", "r-1", "ml-tours"),
	    now));
	au_submit_ok(cs, au_ev_identified("id-2", "p-2", "sanitas", now));
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-2", "p-2", "r-2", "ml-tours"),
	    now));
	au_submit_ok(ml, e2e_ev_answer("referral.accepted", "acc-2", "p-2", "r-2"));

	au_cli_run(b, "ml-tours", &cli, "listen", "--count", "2", NULL);
	expect_cli(&cli, 0, "relais listen takes the deliveries");
	au_cli_free(&cli);
	au_clock_advance(ops, 11 * AU_DAY_MS);
	coord = au_connect_quiet(b, "cite-emploi");
	json_decref(au_wait_listed(coord, "referral_unanswered", "p-1"));
	relais_close(&coord);

	au_cli_run(b, "ml-tours", &cli, "inbox", NULL);
	expect_cli(&cli, 0, "relais inbox as the target");
	lines = au_json_lines(cli.out);
	e2e_assert(json_array_size(lines) == 2, "the target's inbox: expected "
	    "2 lines, got %s", cli.out);
	e2e_assert_str("to_answer", jstr(json_array_get(lines, 0), "list"),
	    "first line");
	e2e_assert_str("r-1", jstr(json_array_get(lines, 0), "referral"),
	    "the referral to answer");
	e2e_assert_str("cs-pasteur", jstr(json_array_get(lines, 0), "from"),
	    "its sender");
	e2e_assert(jint(json_array_get(lines, 0), "age_ms") >= 11 * AU_DAY_MS,
	    "its age: %s", e2e_json_str(json_array_get(lines, 0)));
	e2e_assert_str("alert", jstr(json_array_get(lines, 1), "list"),
	    "second line");
	e2e_assert_str("referral_unanswered", jstr(json_array_get(lines, 1),
	    "rule"), "the reminder");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "cs-pasteur", &cli, "inbox", NULL);
	expect_cli(&cli, 0, "relais inbox as the sender");
	lines = au_json_lines(cli.out);
	e2e_assert(json_array_size(lines) == 1, "the sender's inbox: expected "
	    "1 line, got %s", cli.out);
	e2e_assert_str("sent", jstr(json_array_get(lines, 0), "list"), "its list");
	e2e_assert_str("ml-tours", jstr(json_array_get(lines, 0), "to"),
	    "the target");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "ops", &cli, "inbox", NULL);
	expect_cli(&cli, 1, "relais inbox as an operator");
	au_cli_free(&cli);
	au_cli_run(b, "ml-tours", &cli, "inbox", "extra", NULL);
	expect_cli(&cli, 2, "relais inbox with an argument");
	au_cli_free(&cli);
	relais_close(&ops);
	relais_close(&ml);
	relais_close(&cs);
}

/* The readable file names agents, dates and the expired referral. */
static void
test_cli_participant_file(void **state)
{
	struct e2e_broker *b = views_broker();
	relais_client *cs, *ops, *coord;
	struct au_cli cli;
	int64_t now;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	now = au_broker_now(cs);
	au_submit_ok(cs, au_ev_identified("id-1", "p-1", "sanitas", now));
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-1", "p-1", "r-1", "ml-tours"),
	    now));
	au_clock_advance(ops, 31 * AU_DAY_MS);
	coord = au_connect_quiet(b, "cite-emploi");
	json_decref(au_wait_listed(coord, "referral_expired", "p-1"));
	relais_close(&coord);
	au_cli_run(b, "cite-emploi", &cli, "participant", "p-1", NULL);
	expect_cli(&cli, 0, "relais participant");
	e2e_assert(strstr(cli.out, "Participant p-1") != NULL &&
	    strstr(cli.out, "identified") != NULL &&
	    strstr(cli.out, "by cs-pasteur") != NULL &&
	    strstr(cli.out, "cs-pasteur -> ml-tours  expired") != NULL &&
	    strstr(cli.out, "referral_expired") != NULL &&
	    strstr(cli.out, "referral.sent") != NULL, "the readable file: %s",
	    cli.out);
	e2e_assert(strstr(cli.out, "{") == NULL, "no JSON in the readable file: "
	    "%s", cli.out);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "participant", "p-1", "--json", NULL);
	expect_cli(&cli, 0, "relais participant --json");
	e2e_assert(strstr(cli.out, "\"state\": \"expired\"") != NULL,
	    "--json: %s", cli.out);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "participant", "p 1", NULL);
	expect_cli(&cli, 2, "a bad id");
	au_cli_free(&cli);
	relais_close(&ops);
	relais_close(&cs);
}

/* Submit "participant.identified" for p-0000 .. p-(n-1), in qpv. */
static void
identify_many(relais_client *c, int from, int n, const char *qpv, int64_t at)
{
	json_t *ev[RL_MAX_BATCH], *res[RL_MAX_BATCH];
	size_t k = 0;

	for (int i = from; i < from + n; i++) {
		char id[32], p[32];

		snprintf(id, sizeof(id), "id-%04d", i);
		snprintf(p, sizeof(p), "p-%04d", i);
		ev[k++] = au_ev_identified(id, p, qpv, at);
		if (k == RL_MAX_BATCH || i == from + n - 1) {
			e2e_assert(relais_submit(c, ev, k, res, 60000) == 0,
			    "submit: %s", relais_errmsg(c));
			for (size_t j = 0; j < k; j++) {
				e2e_expect_ok(res[j]);
				json_decref(res[j]);
				json_decref(ev[j]);
			}
			k = 0;
		}
	}
}

/*
 * relais alerts lists every alert, past the broker's page of 1000, and
 * filters by rule, status, QPV and age.
 */
static void
test_cli_alerts_filters_and_pages(void **state)
{
	struct e2e_broker *b = views_broker();
	relais_client *cs, *ops, *coord;
	struct au_cli cli;
	json_t *lines;
	int64_t now;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	now = au_broker_now(cs);
	identify_many(cs, 0, 1000, "sanitas", now);
	au_clock_advance(ops, 16 * AU_DAY_MS);
	json_decref(au_wait_listed(coord, "no_referent", "p-0999"));
	identify_many(cs, 1000, 5, "rochepinard", au_broker_now(cs));
	au_clock_advance(ops, 16 * AU_DAY_MS);
	json_decref(au_wait_listed(coord, "no_referent", "p-1004"));

	au_cli_run(b, "cite-emploi", &cli, "alerts", NULL);
	expect_cli(&cli, 0, "relais alerts");
	lines = au_json_lines(cli.out);
	e2e_assert_int(1005, json_array_size(lines), "every open alert");
	e2e_assert_str("p-1004", jstr(json_array_get(lines, 1004), "participant"),
	    "the last alert");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "--qpv", "rochepinard",
	    NULL);
	expect_cli(&cli, 0, "--qpv rochepinard");
	lines = au_json_lines(cli.out);
	e2e_assert_int(5, json_array_size(lines), "alerts in rochepinard");
	json_decref(lines);
	au_cli_free(&cli);

	/* Sanitas's were opened 16 days before rochepinard's. */
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--older-than-days", "2",
	    "--rule", "no_referent", NULL);
	expect_cli(&cli, 0, "--older-than-days 2");
	lines = au_json_lines(cli.out);
	e2e_assert_int(1000, json_array_size(lines), "alerts 2 days old");
	json_decref(lines);
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "ack", "al-1003", NULL);
	expect_cli(&cli, 0, "ack al-1003");
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--status", "acknowledged",
	    NULL);
	expect_cli(&cli, 0, "--status acknowledged");
	lines = au_json_lines(cli.out);
	e2e_assert_int(1, json_array_size(lines), "acknowledged alerts");
	e2e_assert_str("al-1003", jstr(json_array_get(lines, 0), "id"),
	    "the acknowledged one");
	json_decref(lines);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--rule", "no_contact",
	    NULL);
	expect_cli(&cli, 0, "--rule no_contact");
	e2e_assert(cli.out[0] == '\0', "no no_contact alert yet: %.200s",
	    cli.out);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--rule", "bogus", NULL);
	expect_cli(&cli, 1, "--rule bogus");
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--status", "closed", NULL);
	expect_cli(&cli, 2, "--status closed");
	au_cli_free(&cli);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_one_unanswered_referral, e2e_teardown),
		cmocka_unit_test_teardown(test_cli_participants, e2e_teardown),
		cmocka_unit_test_teardown(test_cli_inbox, e2e_teardown),
		cmocka_unit_test_teardown(test_cli_participant_file, e2e_teardown),
		cmocka_unit_test_teardown(test_cli_alerts_filters_and_pages,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
