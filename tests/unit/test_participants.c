/*
 * Participant records (broker/participants.c): several events of one pass
 * share a decoded record, and what reaches the store at the commit is
 * exactly what applying the accepted events one by one gives, whatever
 * was refused in between, however many participants the pass touched, and
 * nothing at all when the transaction is aborted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "log.h"

#define T0      FIXTURE_T0
#define T0_MS   INT64_C(1795000000000)

/* The stored pathway of p; false if there is none. */
static bool
stored(struct fixture *fx, const char *p, struct pathway *pw)
{
	MDB_txn *txn;
	MDB_val k = { strlen(p), (void *)p }, v;
	struct rl_error err;
	bool found;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	found = mdb_get(txn, fx->b.st.participants, &k, &v) == 0;
	if (found) {
		const char *pwb;
		size_t pwlen;

		assert_int_equal(participants_stored(&v, NULL, &pwb, &pwlen), 0);
		assert_int_equal(pathway_decode(pwb, pwlen, pw, &err), RL_OK);
	}
	mdb_txn_abort(txn);
	return found;
}

static void
test_events_of_one_pass_all_reach_the_store(void **state)
{
	struct fixture *fx = *state;
	struct pathway pw;
	MDB_txn *txn;
	char eid[16], rid[16];

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(eid, sizeof(eid), "e%d", i);
		snprintf(rid, sizeof(rid), "r-%d", i);
		assert_int_equal(ingest_referral_in(fx, txn, "med",
		    "referral.sent", eid, "p-1", rid, "ml"), RL_OK);
	}
	/* Nothing is written before the commit... */
	assert_false(stored(fx, "p-1", &pw));
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	/* ...and everything after it. */
	assert_true(stored(fx, "p-1", &pw));
	assert_int_equal(pw.nreferrals, 4);
	assert_int_equal(pw.counts[EV_REFERRAL_SENT], 4);
}

static void
test_a_refusal_keeps_earlier_changes_of_the_pass(void **state)
{
	struct fixture *fx = *state;
	struct pathway pw, want;
	struct pw_actor med = { "med", AK_MEDIATOR }, ml = { "ml", AK_MISSION_LOCALE };
	struct pw_effects fxs;
	struct rl_error err;
	struct rl_event ev;
	MDB_txn *txn;
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	size_t off;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med",
	    "referral.sent", "e1", "p-1", "r-1", "ml"), RL_OK);
	/* The sender may not accept its own referral: refused mid-pass. */
	assert_int_equal(ingest_referral_in(fx, txn, "med",
	    "referral.accepted", "e2", "p-1", "r-1", "ml"), RL_E_WRONG_AGENT);
	assert_int_equal(ingest_referral_in(fx, txn, "ml",
	    "referral.accepted", "e3", "p-1", "r-1", "ml"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);

	/* The same two accepted events applied one by one, without a store. */
	pathway_init(&want, "p-1", 3);
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);
	pack_event(&sb, 7, "event_id", "e1", "type", "referral.sent",
	    "occurred_at", T0, "participant", "p-1", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	off = 0;
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(event_parse(&up.data, &ev, &err), RL_OK);
	assert_int_equal(pathway_apply(&want, &ev, &med, T0_MS, fx->b.cfg->rules,
	    &fxs, &err), RL_OK);
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 5, "event_id", "e3", "type", "referral.accepted",
	    "occurred_at", T0, "participant", "p-1", "referral", "r-1");
	off = 0;
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(event_parse(&up.data, &ev, &err), RL_OK);
	assert_int_equal(pathway_apply(&want, &ev, &ml, T0_MS, fx->b.cfg->rules,
	    &fxs, &err), RL_OK);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);

	assert_true(stored(fx, "p-1", &pw));
	assert_true(pathway_equal(&pw, &want));
	assert_int_equal(pw.referrals[0].state, PW_REF_ACCEPTED);
	assert_int_equal(pw.counts[EV_REFERRAL_ACCEPTED], 1);
}

static void
test_a_refusal_on_a_fresh_read_changes_nothing(void **state)
{
	struct fixture *fx = *state;
	struct pathway before, after;
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med",
	    "referral.sent", "e1", "p-1", "r-1", "ml"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_true(stored(fx, "p-1", &before));

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med",
	    "referral.accepted", "e2", "p-1", "r-1", "ml"), RL_E_WRONG_AGENT);
	assert_int_equal(ingest_contact_in(fx, txn, "e3", "p-1"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_true(stored(fx, "p-1", &after));
	assert_int_equal(after.counts[EV_REFERRAL_ACCEPTED], 0);
	assert_int_equal(after.counts[EV_CONTACT_MADE], 1);
	assert_int_equal(after.referrals[0].state, PW_REF_REQUESTED);
	after.counts[EV_CONTACT_MADE] = 0;
	assert_true(pathway_equal(&before, &after));
}

static void
test_more_participants_than_slots(void **state)
{
	struct fixture *fx = *state;
	struct pathway pw;
	MDB_txn *txn;
	char eid[16], p[16];

	/* Twice round 40 people: every slot is reused, dirty, many times. */
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 40; i++) {
			snprintf(eid, sizeof(eid), "e%d-%d", round, i);
			snprintf(p, sizeof(p), "p-%d", i);
			assert_int_equal(ingest_contact_in(fx, txn, eid, p), RL_OK);
		}
	}
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(participant_records(fx), 40);
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "p-%d", i);
		assert_true(stored(fx, p, &pw));
		assert_int_equal(pw.counts[EV_CONTACT_MADE], 2);
	}
}

static void
test_an_aborted_pass_leaves_nothing_behind(void **state)
{
	struct fixture *fx = *state;
	struct pathway pw;
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_contact_in(fx, txn, "e1", "p-1"), RL_OK);
	assert_int_equal(ingest_contact_in(fx, txn, "e2", "p-1"), RL_OK);
	txn_abort(&fx->b, txn);
	assert_false(stored(fx, "p-1", &pw));

	/* The next pass starts from the store, not from the forgotten state. */
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_contact_in(fx, txn, "e3", "p-1"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_true(stored(fx, "p-1", &pw));
	assert_int_equal(pw.counts[EV_CONTACT_MADE], 1);
}

static void
test_erasure_in_the_same_pass_wins(void **state)
{
	struct fixture *fx = *state;
	struct pathway pw;
	msgpack_sbuffer sb;
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_contact_in(fx, txn, "e1", "p-1"), RL_OK);
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", T0, "participant", "p-1");
	assert_int_equal(ingest_in(fx, txn, "coord", &sb), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	/* The pathway is gone for the rest of the pass too. */
	assert_int_equal(ingest_referral_in(fx, txn, "med",
	    "referral.sent", "e2", "p-2", "r-1", "ml"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_false(stored(fx, "p-1", &pw));
	assert_true(stored(fx, "p-2", &pw));
	assert_int_equal(participant_records(fx), 1);
}

/*
 * A damaged record refuses its participant's events with a storage error
 * and records nothing; other participants go on.
 */
static void
test_a_damaged_record_is_refused_not_fatal(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;
	MDB_txn *txn;
	MDB_val k = { 3, "p-1" }, v = { 5, "\x02junk" };

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_contact_in(fx, txn, "e1", "p-1"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, fx->b.st.participants, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e2", "type", "contact.made",
	    "occurred_at", T0, "participant", "p-1", "channel", "phone");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_E_STORAGE);
	assert_int_equal(count(fx, fx->b.st.log), 1);
	assert_int_equal(count(fx, fx->b.st.dedup), 1);
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 5, "event_id", "e3", "type", "contact.made",
	    "occurred_at", T0, "participant", "p-2", "channel", "phone");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_OK);
	assert_int_equal(count(fx, fx->b.st.log), 2);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * A damaged record whose deadline comes up does not stop the sweep: that
 * participant is set aside, the others' alerts fire, and the deadline
 * stays for a later try.
 */
static void
test_a_damaged_record_does_not_stop_the_sweep(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;
	MDB_txn *txn;
	MDB_val k = { 3, "p-1" }, v = { 5, "\x02junk" };
	const char *ids[] = { "p-1", "p-2" };
	unsigned fired = 0;
	uint64_t keys;

	msgpack_sbuffer_init(&sb);
	for (int i = 0; i < 2; i++) {
		char eid[8];

		snprintf(eid, sizeof(eid), "e%d", i);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", eid, "type", "participant.identified",
		    "occurred_at", T0, "participant", ids[i], "qpv", "sanitas",
		    "source", "outreach");
		assert_int_equal(ingest_at(fx, "med", &sb, T0_MS, &r, &err), RL_OK);
	}
	msgpack_sbuffer_destroy(&sb);
	keys = count(fx, fx->b.st.deadlines);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, fx->b.st.participants, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);

	assert_int_equal(alerts_sweep(&fx->b, T0_MS + 60 * 86400000LL, &fired), 0);
	assert_true(fired >= 2);                    /* p-2's alerts */
	assert_int_equal(count(fx, fx->b.st.alert_open), fired);
	assert_int_equal(count(fx, fx->b.st.deadlines), keys);  /* p-1's stays */
	/* Set aside: the next sweeps pass it over without failing. */
	assert_int_equal(alerts_sweep(&fx->b, T0_MS + 61 * 86400000LL, &fired), 0);
}

/* The deadline index and the records that name their key agree. */
static void
test_verify_checks_the_deadline_index(void **state)
{
	struct fixture *fx = *state;
	char out[2048], key[64];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v = { 0, "" };
	size_t klen;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_contact_in(fx, txn, "e1", "p-1"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(count(fx, fx->b.st.deadlines), 1);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, " 0 differences"));

	/* The key gone: the person's rules would never fire. */
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.deadlines, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
	klen = k.mv_size;
	memcpy(key, k.mv_data, klen);
	assert_int_equal(mdb_cursor_del(cur, 0), 0);
	mdb_cursor_close(cur);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "deadline key is missing"));

	/* Back, plus a key nobody names. */
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	k.mv_size = klen;
	k.mv_data = key;
	v.mv_size = 0;
	v.mv_data = "";
	assert_int_equal(mdb_put(txn, fx->b.st.deadlines, &k, &v, 0), 0);
	key[7]++;
	assert_int_equal(mdb_put(txn, fx->b.st.deadlines, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 1);
	assert_null(strstr(out, "deadline key is missing"));
	assert_non_null(strstr(out, "2 deadline keys for 1 participants"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_events_of_one_pass_all_reach_the_store, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_refusal_keeps_earlier_changes_of_the_pass, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_refusal_on_a_fresh_read_changes_nothing, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_more_participants_than_slots, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_an_aborted_pass_leaves_nothing_behind, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_erasure_in_the_same_pass_wins, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_damaged_record_is_refused_not_fatal, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_damaged_record_does_not_stop_the_sweep, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_verify_checks_the_deadline_index, fixture_setup, fixture_teardown),
	};

	/* Refusals log nothing above info; storage errors would show. */
	log_init(stderr, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
