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
	json_t *list = relais_query(coord, "alerts",
	    json_pack("{s:s}", "status", "open"), 10000);

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

	doc = relais_query(coord, "participant", json_pack("{s:s}", "id", "p-1"),
	    10000);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_one_unanswered_referral, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
