/*
 * Re-arming after the rules changed (broker/alerts.c) goes a slice per
 * tick: one step re-arms at most a slice, the sweep meanwhile fires what
 * the re-armed participants owe under the new rules and nothing yet for
 * the others (the documented partial state), and the pass ends with every
 * participant re-armed and the rules' hash recorded.  Times are the
 * test's, as with the broker's manual clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"

#define DAY     INT64_C(86400000)
#define T0      INT64_C(1795000000000)
#define PEOPLE  1200                    /* more than two slices */

/* PEOPLE identified at T0, in one transaction. */
static void
identify_people(struct fixture *fx)
{
	msgpack_sbuffer sb;
	MDB_txn *txn;

	msgpack_sbuffer_init(&sb);
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int i = 0; i < PEOPLE; i++) {
		char eid[32], p[32];

		snprintf(eid, sizeof(eid), "e-%d", i);
		snprintf(p, sizeof(p), "p-%04d", i);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", eid, "type", "participant.identified",
		    "occurred_at", "1795000000000", "participant", p, "qpv", "sanitas",
		    "source", "outreach");
		assert_int_equal(ingest_in(fx, txn, "med", &sb), RL_OK);
	}
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	msgpack_sbuffer_destroy(&sb);
}

/* Alerts the sweeps at "at" open, until nothing is due. */
static uint64_t
sweep_all(struct fixture *fx, int64_t at)
{
	unsigned fired;
	uint64_t total = 0;

	do {
		assert_int_equal(alerts_sweep(&fx->b, at, &fired), 0);
		total += fired;
	} while (fx->b.sweep.last_due > 0);
	return total;
}

static void
test_rules_rearm_a_slice_at_a_time(void **state)
{
	struct fixture *fx = *state;
	int64_t at = T0 + 12 * DAY;     /* before 15 days, after 5 */
	uint64_t first;

	/* An empty store takes the rules' hash at once: nothing to re-arm. */
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_false(fx->b.rearm.active);
	identify_people(fx);
	assert_int_equal(sweep_all(fx, at), 0);     /* no_referent: 15 days */

	fx->b.cfg->rules[RULE_NO_REFERENT].threshold = 5;
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_true(fx->b.rearm.active);
	assert_int_equal(alerts_rearm_step(&fx->b, at), 0);
	first = fx->b.rearm.count;
	assert_true(first > 0 && first < PEOPLE / 2);
	assert_true(fx->b.rearm.active);

	/*
	 * Partly re-armed: those re-armed owe no_referent under the new rule
	 * and get it; the others' deadlines are still at 15 days.
	 */
	sweep_all(fx, at);
	assert_int_equal(count(fx, fx->b.st.alert_open), first);

	/* A reload with the same rules goes on; with others, starts again. */
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_int_equal(fx->b.rearm.count, first);
	fx->b.cfg->rules[RULE_NO_REFERENT].threshold = 6;
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_true(fx->b.rearm.active);
	assert_int_equal(fx->b.rearm.count, 0);

	while (fx->b.rearm.active)
		assert_int_equal(alerts_rearm_step(&fx->b, at), 0);
	assert_int_equal(fx->b.rearm.count, PEOPLE);
	assert_true(fx->b.rearm.slices >= 3);
	sweep_all(fx, at);
	assert_int_equal(count(fx, fx->b.st.alert_open), PEOPLE);

	/* The hash is recorded: the next start has nothing to do. */
	memset(&fx->b.rearm, 0, sizeof(fx->b.rearm));
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_false(fx->b.rearm.active);
}

/*
 * Switching a rule off resolves its open alerts as the pass reaches each
 * participant, a slice at a time.
 */
static void
test_a_rule_switched_off_resolves_a_slice_at_a_time(void **state)
{
	struct fixture *fx = *state;
	int64_t at = T0 + 16 * DAY;
	uint64_t first;

	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	identify_people(fx);
	assert_int_equal(sweep_all(fx, at), PEOPLE);
	assert_int_equal(count(fx, fx->b.st.alert_open), PEOPLE);

	fx->b.cfg->rules[RULE_NO_REFERENT].enabled = false;
	assert_int_equal(alerts_rearm_start(&fx->b), 0);
	assert_int_equal(alerts_rearm_step(&fx->b, at), 0);
	first = fx->b.rearm.count;
	assert_true(first > 0 && first < PEOPLE);
	assert_int_equal(count(fx, fx->b.st.alert_open), PEOPLE - first);
	while (fx->b.rearm.active)
		assert_int_equal(alerts_rearm_step(&fx->b, at), 0);
	assert_int_equal(count(fx, fx->b.st.alert_open), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rules_rearm_a_slice_at_a_time,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_rule_switched_off_resolves_a_slice_at_a_time,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
