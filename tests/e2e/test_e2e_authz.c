/*
 * End to end, authorisation and the territory: who may be the target of a
 * referral, which QPVs exist.  Each test runs its own relaisd (harness.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/*
 * Observed: the operator could be a referral's target, and then received
 * participant data; referrals to oneself or to a coordinator were
 * accepted.  A referral goes to another partner, or is refused as
 * forbidden on "to" and records nothing.
 */
static void
test_referral_targets_are_other_partners(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	static const char *const not_targets[] = { "cs-pasteur", "coord", "ops" };
	relais_client *a;
	json_t *res;
	char id[32];

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	for (size_t i = 0; i < sizeof(not_targets) / sizeof(not_targets[0]); i++) {
		snprintf(id, sizeof(id), "ev-%zu", i);
		res = e2e_submit1(a, e2e_ev_referral(id, "p-1", id, not_targets[i]));
		e2e_expect_error(res, 202, "to");
		json_decref(res);
	}
	e2e_assert_int(0, e2e_health(a, "events"), "events recorded");
	/* The refused ids were given back: the same referral id now works. */
	res = e2e_submit1(a, e2e_ev_referral("ev-ok", "p-1", "ev-1", "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
	relais_close(&a);
}

/*
 * Observed: QPVs were free text, so "Sanitas" or "sanitaz" was accepted and
 * that person's alerts never reached the Sanitas coordinator.  A QPV not
 * in the config's [qpv] list is refused as bad_field on "qpv".
 */
static void
test_unknown_qpv_is_refused(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	static const char *const typos[] = { "Sanitas", "sanitaz" };
	relais_client *a;
	json_t *ev, *res;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	for (size_t i = 0; i < 2; i++) {
		ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "event_id",
		    typos[i], "type", "participant.identified", "occurred_at",
		    (json_int_t)rl_wall_ms(), "participant", "p-1", "qpv", typos[i],
		    "source", "outreach");
		res = e2e_submit1(a, ev);
		e2e_expect_error(res, 105, "qpv");
		json_decref(res);
		ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:i}", "event_id", "o-1",
		    "type", "outreach.intervention", "occurred_at",
		    (json_int_t)rl_wall_ms(), "place", "event", "qpv", typos[i],
		    "contacts", 3);
		res = e2e_submit1(a, ev);
		e2e_expect_error(res, 105, "qpv");
		json_decref(res);
	}
	e2e_assert_int(0, e2e_health(a, "events"), "events recorded");
	ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "event_id", "ok-1",
	    "type", "participant.identified", "occurred_at",
	    (json_int_t)rl_wall_ms(), "participant", "p-1", "qpv", "sanitas",
	    "source", "outreach");
	res = e2e_submit1(a, ev);
	e2e_expect_ok(res);
	json_decref(res);
	relais_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_referral_targets_are_other_partners,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_unknown_qpv_is_refused,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
