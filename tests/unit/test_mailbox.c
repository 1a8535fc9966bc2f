/*
 * Redelivery and dead letters (broker/mailbox.c): every send that is not
 * acknowledged counts, whether its acknowledgement timed out or the agent
 * said hello again, and every item that has had max_attempts sends goes
 * to the dead-letter list, not one per redelivery cycle.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "log.h"

#define ITEMS 20

/* ITEMS referrals from med to ml: ITEMS items in ml's mailbox. */
static struct session *
queue_items(struct fixture *fx)
{
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int i = 0; i < ITEMS; i++) {
		char eid[16], p[16], r[16];

		snprintf(eid, sizeof(eid), "e-%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		snprintf(r, sizeof(r), "r-%d", i);
		assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent",
		    eid, p, r, "ml"), RL_OK);
	}
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(mailbox_count(fx, "ml"), ITEMS);
	return sessions_find(&fx->b, "ml");
}

/* The session has been sent all ITEMS items (credit ITEMS). */
static void
sent_all(struct session *s)
{
	s->sent = ITEMS;
	s->inflight = ITEMS;
	s->retry_at = 1;
}

/*
 * The observed: with credit 20 and max_attempts 5, items were sent up to
 * 24 times, one item dead-lettered per cycle.
 */
static void
test_every_item_is_dead_lettered_after_max_attempts_timeouts(void **state)
{
	struct fixture *fx = *state;
	struct session *s = queue_items(fx);
	uint32_t max = fx->b.cfg->max_attempts;

	for (uint32_t cycle = 1; cycle < max; cycle++) {
		sent_all(s);
		mailbox_redeliver(&fx->b, 2);
		assert_int_equal(count(fx, fx->b.st.dead), 0);
		assert_int_equal(s->sent, 0);
	}
	sent_all(s);
	mailbox_redeliver(&fx->b, 2);
	assert_int_equal(count(fx, fx->b.st.dead), ITEMS);
	assert_int_equal(mailbox_count(fx, "ml"), 0);
	assert_int_equal(fx->b.dead_lettered, ITEMS);
}

/*
 * The observed: a delivery that makes its client crash was sent again
 * after each hello, for ever.  A hello now counts the sends in flight.
 */
static void
test_sends_before_a_hello_count(void **state)
{
	struct fixture *fx = *state;
	struct session *s = queue_items(fx);
	uint32_t max = fx->b.cfg->max_attempts;

	for (uint32_t hello = 1; hello < max; hello++) {
		sent_all(s);
		sessions_rewind(&fx->b, s);    /* the agent says hello again */
		mailbox_flush(&fx->b);
		assert_int_equal(count(fx, fx->b.st.dead), 0);
	}
	sent_all(s);
	sessions_rewind(&fx->b, s);
	mailbox_flush(&fx->b);
	assert_int_equal(count(fx, fx->b.st.dead), ITEMS);
	assert_int_equal(s->uncounted, 0);
}

/* Acknowledged items are not counted: only what is still in flight. */
static void
test_acknowledged_items_do_not_count(void **state)
{
	struct fixture *fx = *state;
	struct session *s = queue_items(fx);
	uint32_t max = fx->b.cfg->max_attempts;
	MDB_txn *txn;
	uint64_t acked;

	for (uint32_t cycle = 1; cycle <= max; cycle++) {
		sent_all(s);
		if (cycle == 1) {
			assert_int_equal(txn_begin(&fx->b, &txn), 0);
			assert_int_equal(mailbox_ack(&fx->b, txn, s, ITEMS / 2,
			    &acked), 0);
			assert_int_equal(txn_commit(&fx->b, txn), 0);
			s->acked = acked;
		}
		mailbox_redeliver(&fx->b, 2);
	}
	assert_int_equal(count(fx, fx->b.st.dead), ITEMS / 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_item_is_dead_lettered_after_max_attempts_timeouts,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_sends_before_a_hello_count,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_acknowledged_items_do_not_count,
		    fixture_setup, fixture_teardown),
	};
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
