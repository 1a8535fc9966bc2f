/*
 * The records a transaction logged, kept for its deliveries
 * (broker/passlog.c): found by seq, gaps and bounds respected, and never a
 * copy that differs from the log: not after an abort, not after an erasure
 * rewrote the record in the same transaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "log.h"

#define P "p-7731"

static void
assert_kept(struct passlog *pl, uint64_t seq, const char *want)
{
	MDB_val v;

	assert_true(passlog_get(pl, seq, &v));
	assert_int_equal(v.mv_size, strlen(want));
	assert_memory_equal(v.mv_data, want, v.mv_size);
}

static void
test_records_are_found_by_seq(void **state)
{
	struct passlog *pl = passlog_new();
	MDB_val v;
	char *big;

	assert_non_null(pl);
	passlog_add(pl, 5, "five", 4);
	passlog_add(pl, 6, "six", 3);
	/* 7 and 8 delivered nothing: not kept. */
	passlog_add(pl, 9, "nine", 4);
	assert_kept(pl, 5, "five");
	assert_kept(pl, 6, "six");
	assert_kept(pl, 9, "nine");
	for (uint64_t seq = 0; seq < 20; seq++)
		if (seq != 5 && seq != 6 && seq != 9)
			assert_false(passlog_get(pl, seq, &v));

	/* A seq not after the run starts another. */
	passlog_add(pl, 3, "three", 5);
	assert_kept(pl, 3, "three");
	assert_false(passlog_get(pl, 5, &v));

	/* Past the bound, records are not kept: the log has them. */
	big = calloc(1, PASSLOG_MAX_BYTES);
	assert_non_null(big);
	passlog_add(pl, 4, big, PASSLOG_MAX_BYTES);
	assert_false(passlog_get(pl, 4, &v));
	assert_kept(pl, 3, "three");
	free(big);

	/* As far from the first as the index allows, and no further. */
	for (uint64_t seq = 4000; seq < PASSLOG_MAX_SEQS - 1000; seq += 4000)
		passlog_add(pl, seq, "step", 4);
	passlog_add(pl, 3 + PASSLOG_MAX_SEQS - 1, "last", 4);
	passlog_add(pl, 3 + PASSLOG_MAX_SEQS, "past", 4);
	assert_kept(pl, 3 + PASSLOG_MAX_SEQS - 1, "last");
	assert_false(passlog_get(pl, 3 + PASSLOG_MAX_SEQS, &v));
	assert_kept(pl, 3, "three");

	passlog_clear(pl);
	assert_false(passlog_get(pl, 3, &v));
	passlog_free(&pl);
	assert_null(pl);
	/* Without one (out of memory), nothing is kept, nothing breaks. */
	passlog_add(NULL, 1, "x", 1);
	assert_false(passlog_get(NULL, 1, &v));
}

/* The kept copy of seq, if any, is byte for byte the log's record. */
static void
assert_same_as_log(struct fixture *fx, uint64_t seq, bool must_be_kept)
{
	MDB_txn *txn;
	MDB_val k, v, kept;
	char key[8];

	store_put_be64(key, seq);
	k.mv_size = 8;
	k.mv_data = key;
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, fx->b.st.log, &k, &v), 0);
	if (passlog_get(fx->b.tx.passlog, seq, &kept)) {
		assert_int_equal(kept.mv_size, v.mv_size);
		assert_memory_equal(kept.mv_data, v.mv_data, v.mv_size);
	} else {
		assert_false(must_be_kept);
	}
	mdb_txn_abort(txn);
}

/* A transaction that identified P and sent a referral to ml: its seq. */
static uint64_t
begin_with_referral(struct fixture *fx, MDB_txn **txn)
{
	msgpack_sbuffer sb;

	assert_int_equal(txn_begin(&fx->b, txn), 0);
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 6, "event_id", "e1", "type", "participant.identified",
	    "occurred_at", FIXTURE_T0, "participant", P, "qpv", "sanitas",
	    "source", "outreach");
	assert_int_equal(ingest_in(fx, *txn, "med", &sb), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(ingest_referral_in(fx, *txn, "med", "referral.sent", "e2",
	    P, "r-1", "ml"), RL_OK);
	return fx->b.tx.log_seq;
}

/* A referral's record is kept through the commit; an abort drops it. */
static void
test_a_committed_referral_is_kept_as_logged(void **state)
{
	struct fixture *fx = *state;
	MDB_txn *txn;
	MDB_val v;
	uint64_t seq;

	seq = begin_with_referral(fx, &txn);
	/* participant.identified delivers nothing: not kept. */
	assert_false(passlog_get(fx->b.tx.passlog, seq - 1, &v));
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_same_as_log(fx, seq, true);

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent", "e3",
	    P, "r-2", "ml"), RL_OK);
	assert_true(passlog_get(fx->b.tx.passlog, seq + 1, &v));
	txn_abort(&fx->b, txn);
	assert_false(passlog_get(fx->b.tx.passlog, seq + 1, &v));
}

/*
 * An erasure in the same transaction rewrites the referral's record: the
 * copy taken before it must not be what the mailbox delivers.
 */
static void
test_an_erasure_drops_what_it_rewrote(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer sb;
	MDB_txn *txn;
	MDB_val v;
	uint64_t seq;

	seq = begin_with_referral(fx, &txn);
	assert_true(passlog_get(fx->b.tx.passlog, seq, &v));
	assert_non_null(memmem(v.mv_data, v.mv_size, P, strlen(P)));
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", FIXTURE_T0, "participant", P);
	assert_int_equal(ingest_in(fx, txn, "coord", &sb), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	if (passlog_get(fx->b.tx.passlog, seq, &v))
		assert_null(memmem(v.mv_data, v.mv_size, P, strlen(P)));
	assert_same_as_log(fx, seq, false);
}

int
main(void)
{
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_are_found_by_seq),
		cmocka_unit_test_setup_teardown(test_a_committed_referral_is_kept_as_logged, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_an_erasure_drops_what_it_rewrote, fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
