/*
 * relaisd --verify sees what the replay cannot: a table whose keys fell
 * out of order (lookups then miss records a walk still shows), and alert
 * bookkeeping out of step with the alert tables.  A store the broker
 * wrote itself, alerts included, is clean.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alert.h"
#include "fixture.h"

#define DAY     INT64_C(86400000)
#define T0      INT64_C(1795000000000)

/* p identified in the Sanitas at T0, then left alone until its alerts open. */
static void
identified_and_left_alone(struct fixture *fx, const char *eid, const char *p)
{
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;
	unsigned fired = 0;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 6, "event_id", eid, "type", "participant.identified",
	    "occurred_at", "1795000000000", "participant", p, "qpv", "sanitas",
	    "source", "outreach");
	assert_int_equal(ingest_at(fx, "med", &sb, T0, &r, &err), RL_OK);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(alerts_sweep(&fx->b, T0 + 60 * DAY, &fired), 0);
	assert_true(fired >= 2);    /* no_referent and no_contact */
}

static void
test_a_store_with_open_alerts_is_clean(void **state)
{
	struct fixture *fx = *state;
	char out[4096];

	identified_and_left_alone(fx, "e1", "p-1");
	identified_and_left_alone(fx, "e2", "p-2");
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "0 differences"));
}

/*
 * The way the alerts table once broke: a value of another size put through
 * a cursor with MDB_CURRENT and a key that is not the cursor's.  LMDB puts
 * that key where the cursor is, out of order.
 */
static void
test_keys_out_of_order_are_found(void **state)
{
	struct fixture *fx = *state;
	char out[4096];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;

	fixture_put_raw(fx, fx->b.st.meta, "r-a", 3, "p", 1, false);
	fixture_put_raw(fx, fx->b.st.meta, "r-b", 3, "p", 1, false);
	fixture_put_raw(fx, fx->b.st.meta, "r-c", 3, "p", 1, false);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.meta, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
	k.mv_size = 3;
	k.mv_data = "r-0";
	v.mv_size = 5;
	v.mv_data = "p-one";
	assert_int_equal(mdb_cursor_put(cur, &k, &v, MDB_CURRENT), 0);
	mdb_cursor_close(cur);
	assert_int_equal(mdb_txn_commit(txn), 0);

	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "verify: meta: 1 keys out of order"));
}

static void
test_a_lost_alert_record_is_found(void **state)
{
	struct fixture *fx = *state;
	char out[4096], key[8];

	identified_and_left_alone(fx, "e1", "p-1");
	store_put_be64(key, 1);
	fixture_put_raw(fx, fx->b.st.alerts, key, 8, NULL, 0, true);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "alert al-1 is marked open but cannot be found"));
}

static void
test_an_open_alert_without_its_index_key_is_found(void **state)
{
	struct fixture *fx = *state;
	char out[4096];
	struct alert a;
	char key[8];
	MDB_txn *txn;
	MDB_val k = { 8, key }, v;

	identified_and_left_alone(fx, "e1", "p-1");
	store_put_be64(key, 1);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, fx->b.st.alerts, &k, &v), 0);
	assert_int_equal(alert_unpack(v.mv_data, v.mv_size, &a), RL_OK);
	mdb_txn_abort(txn);

	char okey[PW_ID_SIZE + 2];
	size_t plen = strlen(a.participant);

	memcpy(okey, a.participant, plen);
	okey[plen] = '\0';
	okey[plen + 1] = (char)a.rule;
	fixture_put_raw(fx, fx->b.st.alert_open, okey, plen + 2, NULL, 0, true);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "a record marks a rule's alert open, but no "
	    "alert is open for it"));
	assert_non_null(strstr(out, "alert al-1 is unresolved but not the open "
	    "alert of its participant and rule"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_store_with_open_alerts_is_clean,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_keys_out_of_order_are_found,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_lost_alert_record_is_found,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_an_open_alert_without_its_index_key_is_found,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
