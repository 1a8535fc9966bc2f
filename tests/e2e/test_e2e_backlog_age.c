/*
 * The mailbox age limit end to end, on the broker's manual clock: a
 * partner whose agent does not collect for longer than
 * max_backlog_age_days has its waiting items moved to the dead-letter list
 * (delivery.expired, health's dead_letters); once its agent is fixed, the
 * operator requeues them and the agent gets them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts_util.h"
#include "harness.h"

static void
test_items_too_old_for_an_absent_agent_are_dead_lettered(void **state)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n"
	    "max_backlog_age_days = 30\n");
	relais_client *med, *ops;
	struct e2e_raw *ml;
	struct au_cli cli;
	json_t *r, *d, *it;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	ops = e2e_connect(b, "ops");
	r = e2e_submit1(med, e2e_ev_referral("s-1", "p-age-1", "r-age-1", "ml"));
	e2e_expect_ok(r);
	json_decref(r);

	/* 29 days: still waiting. */
	au_clock_advance(ops, 29 * AU_DAY_MS);
	assert_int_equal(e2e_health(ops, "dead_letters"), 0);
	/* 31 days: the referral goes to the dead letters, not the fresh alerts. */
	au_clock_advance(ops, 2 * AU_DAY_MS);
	e2e_log_wait(b, "\"delivery.expired\"", "\"agent\":\"ml\"", "\"items\":1");
	assert_int_equal(e2e_health(ops, "dead_letters"), 1);

	au_cli_run(b, "ops", &cli, "deadletters", "requeue", "ml", NULL);
	e2e_assert(cli.status == 0, "relais deadletters requeue: %s", cli.err);
	au_cli_free(&cli);
	assert_int_equal(e2e_health(ops, "dead_letters"), 0);

	/* The agent comes back and gets the referral it missed. */
	ml = e2e_raw_open(b, "ml", NULL);
	json_decref(e2e_raw_hello(ml, 10));
	for (it = NULL; it == NULL;) {
		json_t *items;

		d = e2e_raw_expect(ml, "deliver", E2E_WAIT_MS);
		items = json_object_get(d, "items");
		for (size_t i = 0; i < json_array_size(items) && it == NULL; i++) {
			json_t *ev = json_object_get(json_array_get(items, i), "event");

			if (ev != NULL && jstr(ev, "referral") != NULL &&
			    strcmp(jstr(ev, "referral"), "r-age-1") == 0)
				it = json_incref(ev);
		}
		json_decref(d);
	}
	assert_string_equal(jstr(it, "participant"), "p-age-1");
	json_decref(it);
	e2e_raw_close(&ml);
	relais_close(&ops);
	relais_close(&med);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_items_too_old_for_an_absent_agent_are_dead_lettered,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
