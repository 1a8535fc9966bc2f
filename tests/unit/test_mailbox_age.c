/*
 * The mailbox age limit (broker/mailbox.c, max_backlog_age_days): items
 * that waited longer than the limit for an agent that does not collect go
 * to the dead-letter list, oldest first, counted and logged; items in
 * flight and younger items stay; 0 turns the limit off.  The broker's
 * clock is moved as manual_clock moves it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "rltime.h"

#define DAY     INT64_C(86400000)

/* One referral to ml recorded at FIXTURE_NOW + days. */
static void
queue_referral_at(struct fixture *fx, const char *eid, int64_t days)
{
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 7, "event_id", eid, "type", "referral.sent",
	    "occurred_at", FIXTURE_T0, "participant", eid, "referral", eid,
	    "to", "ml", "purpose", "cv");
	assert_int_equal(ingest_at(fx, "med", &sb, FIXTURE_NOW + days * DAY, &r,
	    &err), RL_OK);
	msgpack_sbuffer_destroy(&sb);
}

/* The broker's clock at FIXTURE_NOW + days. */
static void
clock_at(struct fixture *fx, int64_t days)
{
	fx->b.clock.offset_ms = FIXTURE_NOW + days * DAY - rl_wall_ms();
}

static void
test_items_older_than_the_limit_are_dead_lettered(void **state)
{
	struct fixture *fx = *state;
	uint64_t dead = fx->b.counters.dead_lettered;

	fx->b.cfg->max_backlog_age_days = 30;
	fixture_queue_referrals(fx, 0, 5);
	assert_int_equal(mailbox_count(fx, "ml"), 5);

	clock_at(fx, 29);
	mailbox_expire(&fx->b);
	assert_int_equal(mailbox_count(fx, "ml"), 5);
	assert_int_equal(count(fx, fx->b.st.dead), 0);

	/* Younger items, queued later, stay when the old ones go. */
	queue_referral_at(fx, "y-1", 20);
	queue_referral_at(fx, "y-2", 25);
	queue_referral_at(fx, "y-3", 25);
	assert_int_equal(mailbox_count(fx, "ml"), 8);
	clock_at(fx, 31);
	mailbox_expire(&fx->b);
	assert_int_equal(mailbox_count(fx, "ml"), 3);
	assert_int_equal(count(fx, fx->b.st.dead), 5);
	assert_int_equal(fx->b.counters.dead_lettered, dead + 5);
	/* The others' mailboxes are untouched: med got nothing. */
	assert_int_equal(mailbox_count(fx, "med"), 0);
}

static void
test_items_in_flight_stay(void **state)
{
	struct fixture *fx = *state;
	struct session *s = sessions_find(&fx->b, "ml");

	fx->b.cfg->max_backlog_age_days = 30;
	fixture_queue_referrals(fx, 0, 4);
	s->sent = 2;                /* items 1 and 2 were sent */
	s->inflight = 2;
	clock_at(fx, 40);
	mailbox_expire(&fx->b);
	assert_int_equal(mailbox_count(fx, "ml"), 2);
	assert_int_equal(count(fx, fx->b.st.dead), 2);
}

static void
test_no_limit_keeps_every_item(void **state)
{
	struct fixture *fx = *state;

	fx->b.cfg->max_backlog_age_days = 0;
	fixture_queue_referrals(fx, 0, 4);
	clock_at(fx, 3650);
	mailbox_expire(&fx->b);
	assert_int_equal(mailbox_count(fx, "ml"), 4);
	assert_int_equal(count(fx, fx->b.st.dead), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_items_older_than_the_limit_are_dead_lettered,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_items_in_flight_stay,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_no_limit_keeps_every_item,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
