/*
 * Right to erasure and retention (broker/erase.c): after a coordinator's
 * participant.erased, or after retention_days without activity, nothing in
 * the store ties any data to the participant, the anonymous counts remain,
 * and resending an old event cannot bring the data back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "log.h"

#define T0      "1795000000000"
#define T0_MS   INT64_C(1795000000000)
#define DAY     INT64_C(86400000)
#define P       "p-4821"

static int
submit(struct fixture *fx, const char *sender, int64_t now, msgpack_sbuffer *sb)
{
	struct ingest_result r;
	struct rl_error err;

	return ingest_at(fx, sender, sb, now, &r, &err);
}

/* Sets up a participant with a referral, a barrier and an open alert. */
static void
build_history(struct fixture *fx, msgpack_sbuffer *identified)
{
	msgpack_sbuffer sb;
	unsigned fired;

	pack_event(identified, 6, "event_id", "e1", "type", "participant.identified",
	    "occurred_at", T0, "participant", P, "qpv", "sanitas", "source", "outreach");
	assert_int_equal(submit(fx, "med", T0_MS, identified), RL_OK);
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 7, "event_id", "e2", "type", "referral.sent", "occurred_at", T0,
	    "participant", P, "referral", "r-secret", "to", "ml",
	    "purpose", "free text about the person");
	assert_int_equal(submit(fx, "med", T0_MS, &sb), RL_OK);
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 5, "event_id", "e3", "type", "barrier.identified",
	    "occurred_at", T0, "participant", P, "barrier", "mobility");
	assert_int_equal(submit(fx, "med", T0_MS, &sb), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(alerts_sweep(&fx->b, T0_MS + 11 * DAY, &fired), 0);
	assert_true(count(fx, fx->b.st.alert_open) > 0);
}

/* No key or value anywhere in these tables contains the needle. */
static void
assert_absent(struct fixture *fx, const char *needle)
{
	MDB_dbi dbis[] = { fx->b.st.log, fx->b.st.participants,
	    fx->b.st.deadlines, fx->b.st.alerts,
	    fx->b.st.alert_open, fx->b.st.mbox, fx->b.st.dead, fx->b.st.queued,
	    fx->b.st.alert_index, fx->b.st.alert_subject };
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
		MDB_cursor *cur;
		MDB_val k, v;

		assert_int_equal(mdb_cursor_open(txn, dbis[i], &cur), 0);
		while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
			if (memmem(k.mv_data, k.mv_size, needle, strlen(needle)) ||
			    memmem(v.mv_data, v.mv_size, needle, strlen(needle)))
				fail_msg("\"%s\" is still in table %zu", needle, i);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
}

/*
 * The referral waiting in the target's mailbox names the log record it
 * delivers; after the erasure that record no longer names the person.
 */
static void
assert_queued_event_erased(struct fixture *fx, const char *agent)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, lk, lv;
	char key[64];
	size_t alen = strlen(agent);
	int items = 0;

	memcpy(key, agent, alen + 1);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.mbox, &cur), 0);
	k.mv_size = alen + 1;
	k.mv_data = key;
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    memcmp(k.mv_data, key, alen + 1) == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (((unsigned char *)v.mv_data)[4] != MBOX_EVENT)
			continue;
		assert_int_equal(v.mv_size, 5 + 8);
		lk.mv_size = 8;
		lk.mv_data = (char *)v.mv_data + 5;
		assert_int_equal(mdb_get(txn, fx->b.st.log, &lk, &lv), 0);
		assert_null(memmem(lv.mv_data, lv.mv_size, P, strlen(P)));
		assert_null(memmem(lv.mv_data, lv.mv_size, "free text", 9));
		items++;
	}
	assert_true(items > 0);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
}

static void
test_coordinator_erasure_removes_the_person_keeps_counts(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer identified, sb;
	uint64_t events;

	msgpack_sbuffer_init(&identified);
	build_history(fx, &identified);
	events = count(fx, fx->b.st.log);

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", T0, "participant", P);
	assert_int_equal(submit(fx, "med", T0_MS + 12 * DAY, &sb), RL_E_FORBIDDEN);
	assert_int_equal(submit(fx, "coord", T0_MS + 12 * DAY, &sb), RL_OK);

	assert_absent(fx, P);
	assert_absent(fx, "r-secret");
	assert_absent(fx, "free text");
	assert_queued_event_erased(fx, "ml");
	assert_int_equal(participant_records(fx), 0);
	assert_int_equal(count(fx, fx->b.st.deadlines), 0);
	assert_int_equal(count(fx, fx->b.st.alert_open), 0);
	/* The anonymous counts stay: every event, plus the erasure. */
	assert_int_equal(count(fx, fx->b.st.log), events + 1);

	/* A partner resending the old event cannot bring the person back. */
	struct ingest_result r;
	struct rl_error err;
	assert_int_equal(ingest_at(fx, "med", &identified, T0_MS + 13 * DAY, &r, &err),
	    RL_OK);
	assert_true(r.duplicate);
	assert_int_equal(participant_records(fx), 0);

	/* Erasing again: nothing left to erase. */
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 4, "event_id", "x2", "type", "participant.erased",
	    "occurred_at", T0, "participant", P);
	assert_int_equal(submit(fx, "coord", T0_MS + 12 * DAY, &sb),
	    RL_E_UNKNOWN_PARTICIPANT);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&identified);
}

/*
 * The oldest item of an agent's mailbox goes to the dead-letter list, as
 * redelivery does when the agent never acknowledges it.
 */
static void
dead_letter_oldest(struct fixture *fx, const char *agent)
{
	struct session *s = sessions_find(&fx->b, agent);
	uint64_t before = count(fx, fx->b.st.dead);

	for (uint32_t i = 0; i < fx->b.cfg->max_attempts &&
	    count(fx, fx->b.st.dead) == before; i++) {
		s->sent = s->acked + 1;
		s->inflight = 1;
		s->retry_at = 1;
		mailbox_redeliver(&fx->b, 2);
	}
	assert_int_equal(count(fx, fx->b.st.dead), before + 1);
}

/*
 * An alert waiting in a mailbox, or dead-lettered, carries the participant
 * id, the referral id and the coordinator's note: erasure rewrites those
 * copies too, and they stay deliverable.
 */
static void
test_erasure_scrubs_queued_alerts_and_dead_letters(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer identified, sb;
	uint64_t queued, dead;

	msgpack_sbuffer_init(&identified);
	build_history(fx, &identified);
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 6, "event_id", "a1", "type", "alert.acknowledged",
	    "occurred_at", T0, "participant", P, "alert", "al-1",
	    "note", "called her sister at home");
	assert_int_equal(submit(fx, "coord", T0_MS + 11 * DAY, &sb), RL_OK);
	dead_letter_oldest(fx, "coord");
	assert_true(count(fx, fx->b.st.queued) > 0);
	queued = count(fx, fx->b.st.mbox);
	dead = count(fx, fx->b.st.dead);

	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", T0, "participant", P);
	assert_int_equal(submit(fx, "coord", T0_MS + 12 * DAY, &sb), RL_OK);
	assert_absent(fx, P);
	assert_absent(fx, "r-secret");
	assert_absent(fx, "her sister");
	/* Nothing was dropped: the erasure's own resolution was added. */
	assert_true(count(fx, fx->b.st.mbox) > queued);
	assert_int_equal(count(fx, fx->b.st.dead), dead);
	assert_int_equal(count(fx, fx->b.st.queued), 0);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&identified);
}

/* An acknowledged item leaves the index with it. */
static void
test_acknowledged_alerts_leave_the_index(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer identified;
	struct session *s = sessions_find(&fx->b, "coord");
	MDB_txn *txn;
	uint64_t acked;

	msgpack_sbuffer_init(&identified);
	build_history(fx, &identified);
	assert_true(count(fx, fx->b.st.queued) > 0);
	s->sent = UINT64_MAX;
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(mailbox_ack(&fx->b, txn, s, UINT64_MAX - 1, &acked), 0);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(mailbox_count(fx, "coord"), 0);
	/* What is left in the index is ml's copy of the alert. */
	assert_int_equal(count(fx, fx->b.st.queued), mailbox_count(fx, "ml") - 1);
	msgpack_sbuffer_destroy(&identified);
}

static void
test_inactive_participants_are_anonymised_after_retention(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer identified;
	unsigned fired;
	int64_t retention = (int64_t)fx->b.cfg->retention_days * DAY;

	msgpack_sbuffer_init(&identified);
	build_history(fx, &identified);
	assert_int_equal(alerts_sweep(&fx->b, T0_MS + retention - 1, &fired), 0);
	assert_int_equal(participant_records(fx), 1);
	/* Retention is counted in whole days: done within a day after. */
	assert_int_equal(alerts_sweep(&fx->b, T0_MS + retention + DAY, &fired), 0);
	assert_int_equal(participant_records(fx), 0);
	assert_absent(fx, P);
	msgpack_sbuffer_destroy(&identified);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coordinator_erasure_removes_the_person_keeps_counts,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_inactive_participants_are_anonymised_after_retention,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_erasure_scrubs_queued_alerts_and_dead_letters,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_acknowledged_alerts_leave_the_index,
		    fixture_setup, fixture_teardown),
	};
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
