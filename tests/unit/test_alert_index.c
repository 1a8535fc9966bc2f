/*
 * The alert indexes (broker/alert_index.c): a listing pages through every
 * alert exactly once, a page reads the keys of what it returns rather than
 * the table, erasure finds a person's alerts through the index, --verify
 * sees an index out of step, and a store of the layout before gets its
 * indexes when it is opened for writing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alert_index.h"
#include "fixture.h"

#define DAY     INT64_C(86400000)
#define T0      INT64_C(1795000000000)
#define MANY    1500                    /* more than a page of 1000 */

/* n people identified at T0 (qpv by turn), left alone until no_referent. */
static void
many_alerts(struct fixture *fx, int n)
{
	msgpack_sbuffer sb;
	MDB_txn *txn;
	unsigned fired = 0;
	uint64_t total = 0;

	msgpack_sbuffer_init(&sb);
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int i = 0; i < n; i++) {
		char eid[32], p[32];

		snprintf(eid, sizeof(eid), "e-%d", i);
		snprintf(p, sizeof(p), "p-%04d", i);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", eid, "type", "participant.identified",
		    "occurred_at", "1795000000000", "participant", p,
		    "qpv", i % 3 == 0 ? "rochepinard" : "sanitas", "source",
		    "outreach");
		assert_int_equal(ingest_in(fx, txn, "med", &sb), RL_OK);
	}
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	msgpack_sbuffer_destroy(&sb);
	/* A sweep stops after its budget: sweep until nothing is due. */
	do {
		assert_int_equal(alerts_sweep(&fx->b, T0 + 16 * DAY, &fired), 0);
		total += fired;
	} while (fx->b.sweep.last_due > 0);
	assert_int_equal(total, (uint64_t)n);     /* no_referent each */
}

/* The value of key in map m, or NULL. */
static const msgpack_object *
map_get(const msgpack_object *m, const char *key)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* One page of the alerts query as "coord"; the ids in ids, their count. */
static size_t
query_page(struct fixture *fx, const char *after, int limit, const char *qpv,
    uint64_t *ids)
{
	msgpack_sbuffer args, out;
	msgpack_packer pk;
	msgpack_unpacked up;
	const msgpack_object *data;
	size_t n;

	msgpack_sbuffer_init(&args);
	msgpack_sbuffer_init(&out);
	msgpack_unpacked_init(&up);
	msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1 + (after != NULL) + (qpv != NULL));
	msgpack_pack_str_with_body(&pk, "limit", 5);
	msgpack_pack_int(&pk, limit);
	if (after != NULL) {
		msgpack_pack_str_with_body(&pk, "after", 5);
		msgpack_pack_str_with_body(&pk, after, strlen(after));
	}
	if (qpv != NULL) {
		msgpack_pack_str_with_body(&pk, "qpv", 3);
		msgpack_pack_str_with_body(&pk, qpv, strlen(qpv));
	}
	data = map_get(fixture_query(fx, "coord", "alerts", &args, &out, &up),
	    "data");
	assert_non_null(data);
	assert_int_equal(data->type, MSGPACK_OBJECT_ARRAY);
	n = data->via.array.size;
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *m = &data->via.array.ptr[i];

		const msgpack_object *id = map_get(m, "id");

		assert_non_null(id);
		ids[i] = alert_id_parse(id->via.str.ptr, id->via.str.size);
		assert_true(ids[i] != 0);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&args);
	return n;
}

/* Every page after the last id until a short one: each alert once. */
static uint64_t
page_through(struct fixture *fx, int limit, const char *qpv)
{
	static uint64_t ids[1000];
	char after[32] = "";
	uint64_t total = 0, last = 0;
	size_t n;

	do {
		n = query_page(fx, after[0] ? after : NULL, limit, qpv, ids);
		for (size_t i = 0; i < n; i++) {
			assert_true(ids[i] > last);         /* in order, never twice */
			last = ids[i];
		}
		total += n;
		snprintf(after, sizeof(after), "al-%llu", (unsigned long long)last);
	} while (n == (size_t)limit);
	return total;
}

static void
test_paging_returns_every_alert_once(void **state)
{
	struct fixture *fx = *state;

	many_alerts(fx, MANY);
	assert_int_equal(count(fx, fx->b.st.alerts), MANY);
	assert_int_equal(page_through(fx, 1000, NULL), MANY);
	assert_int_equal(page_through(fx, 7, NULL), MANY);
	assert_int_equal(page_through(fx, 1000, "rochepinard"), MANY / 3);
	assert_int_equal(page_through(fx, 33, "sanitas"), MANY - MANY / 3);
}

/* Keys a walk reads for one page of "limit" after "after". */
static uint64_t
page_reads(struct fixture *fx, const char (*qpvs)[PW_ID_SIZE], size_t nqpv,
    uint64_t after, int limit, size_t *runs)
{
	static struct alert_walk w;
	MDB_txn *txn;
	uint64_t seq, prev = after;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(alert_walk_begin(&w, &fx->b.st, txn, qpvs, nqpv,
	    ALERT_WALK_STATUS(ALERT_OPEN) | ALERT_WALK_STATUS(ALERT_ACKNOWLEDGED),
	    -1, after), 0);
	for (int i = 0; i < limit; i++) {
		assert_int_equal(alert_walk_next(&w, &fx->b.st, txn, &seq), 0);
		assert_true(seq > prev);
		prev = seq;
	}
	mdb_txn_abort(txn);
	*runs = w.nruns;
	return w.reads;
}

/*
 * A page costs the keys of the alerts it returns plus one per run merged,
 * the same near the end of 1500 alerts as at their start: the listing no
 * longer reads past the alerts before "after".
 */
static void
test_a_page_reads_what_it_returns(void **state)
{
	struct fixture *fx = *state;
	const char one[1][PW_ID_SIZE] = { "sanitas" };
	size_t runs;
	uint64_t reads;

	many_alerts(fx, MANY);
	/* Every QPV: 2 statuses x 8 rules. */
	reads = page_reads(fx, NULL, 0, 0, 10, &runs);
	assert_int_equal(runs, 2 * RULE__COUNT);
	assert_int_equal(reads, runs + 10);
	assert_int_equal(page_reads(fx, NULL, 0, MANY - 20, 10, &runs), runs + 10);
	/* One QPV, whose alerts are two in three of all. */
	reads = page_reads(fx, one, 1, MANY - 30, 10, &runs);
	assert_int_equal(runs, 2 * RULE__COUNT);
	assert_int_equal(reads, runs + 10);
}

/* How many alerts the index by participant finds about p. */
static size_t
alerts_about(struct fixture *fx, const char *p)
{
	MDB_txn *txn;
	uint64_t *seqs;
	size_t n;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(alert_index_about(&fx->b.st, txn, p, &seqs, &n), 0);
	free(seqs);
	mdb_txn_abort(txn);
	return n;
}

/* The participant's key goes at erasure; the alerts stay, nameless. */
static void
test_erasure_finds_alerts_through_the_index(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;
	char out[4096];

	many_alerts(fx, 30);
	assert_int_equal(count(fx, fx->b.st.alert_subject), 30);
	assert_int_equal(alerts_about(fx, "p-0007"), 1);

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", "1795000000000", "participant", "p-0007");
	assert_int_equal(ingest_at(fx, "coord", &sb, T0 + 17 * DAY, &r, &err), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(count(fx, fx->b.st.alerts), 30);
	assert_int_equal(count(fx, fx->b.st.alert_subject), 29);
	assert_int_equal(alerts_about(fx, "p-0007"), 0);
	/* Resolved by the erasure, it leaves the open listing. */
	assert_int_equal(page_through(fx, 1000, NULL), 29);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);
}

static void
test_verify_sees_an_index_out_of_step(void **state)
{
	struct fixture *fx = *state;
	struct alert a;
	char key[ALERT_INDEX_KEY_MAX], out[4096];
	size_t klen;

	many_alerts(fx, 5);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);

	/* A key missing: the alert would never be listed. */
	memset(&a, 0, sizeof(a));
	a.seq = 3;
	a.rule = RULE_NO_REFERENT;
	a.status = ALERT_OPEN;
	snprintf(a.qpv, sizeof(a.qpv), "sanitas");
	klen = alert_index_key_qpv(key, &a);
	fixture_put_raw(fx, fx->b.st.alert_index, key, klen, "", 0, true);
	assert_int_not_equal(fixture_verify(fx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "al-3 is missing from the alert indexes"));
	fixture_put_raw(fx, fx->b.st.alert_index, key, klen, "", 0, false);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);

	/* A key too many: a listing would show an alert as it is not. */
	a.status = ALERT_RESOLVED;
	klen = alert_index_key_all(key, &a);
	fixture_put_raw(fx, fx->b.st.alert_index, key, klen, "", 0, false);
	assert_int_not_equal(fixture_verify(fx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "the alert indexes hold 11 and 5 keys "
	    "where the alerts need 10 and 5"));
}

/*
 * A store of format 5 has no alert indexes: read-only tools are told to
 * start relaisd on it; relaisd builds them when it opens it.
 */
static void
test_a_store_of_the_layout_before_gets_its_indexes(void **state)
{
	struct fixture *fx = *state;
	const char *dir = fx->b.cfg->data_dir;
	char err[512], out[4096];
	MDB_txn *txn;
	uint64_t format;

	many_alerts(fx, 40);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_drop(txn, fx->b.st.alert_index, 1), 0);
	assert_int_equal(mdb_drop(txn, fx->b.st.alert_subject, 1), 0);
	assert_int_equal(store_put_u64(&fx->b.st, txn, fx->b.st.meta, "format", 6,
	    5), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	store_close(&fx->b.st);

	assert_int_equal(store_open(&fx->b.st, dir, 16, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "start relaisd on it once"));
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)), 0);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "format", 6, &format), 0);
	mdb_txn_abort(txn);
	assert_int_equal(format, STORE_FORMAT);
	assert_int_equal(count(fx, fx->b.st.alert_index), 2 * 40);
	assert_int_equal(count(fx, fx->b.st.alert_subject), 40);
	assert_int_equal(page_through(fx, 9, NULL), 40);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_paging_returns_every_alert_once,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_page_reads_what_it_returns,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_erasure_finds_alerts_through_the_index,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_verify_sees_an_index_out_of_step,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_store_of_the_layout_before_gets_its_indexes,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
