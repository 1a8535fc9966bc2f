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
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"
#include "log.h"

#define ITEMS 20

/* ITEMS referrals from med to ml: ITEMS items in ml's mailbox. */
static struct session *
queue_items(struct fixture *fx)
{
	fixture_queue_referrals(fx, 0, ITEMS);
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
	assert_int_equal(fx->b.counters.dead_lettered, ITEMS);
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

/*
 * One "deadletters" query by agent who with the given arguments (a map of
 * nargs key/value pairs, values that are digits packed as integers); the
 * reply, unpacked into up.
 */
static const msgpack_object *
dl_query(struct fixture *fx, const char *who, msgpack_sbuffer *reply,
    msgpack_unpacked *up, int nargs, ...)
{
	const msgpack_object *r;
	msgpack_sbuffer args;
	msgpack_packer pk;
	va_list ap;

	msgpack_sbuffer_init(&args);
	msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)nargs);
	va_start(ap, nargs);
	for (int i = 0; i < nargs; i++) {
		const char *k = va_arg(ap, const char *), *v = va_arg(ap, const char *);

		codec_pack_str(&pk, k);
		if (v[0] >= '0' && v[0] <= '9')
			msgpack_pack_uint64(&pk, strtoull(v, NULL, 10));
		else
			codec_pack_str(&pk, v);
	}
	va_end(ap);
	r = fixture_query(fx, who, "deadletters", &args, reply, up);
	msgpack_sbuffer_destroy(&args);
	return r;
}

static const msgpack_object *
data_of(const msgpack_object *reply)
{
	const msgpack_object *d = codec_map_get(reply, "data");

	if (d == NULL)
		fail_msg("expected a result, got an error: code %lld",
		    (long long)codec_map_get(reply, "code")->via.i64);
	return d;
}

static void
dead_letter_all(struct fixture *fx)
{
	struct session *s = queue_items(fx);

	for (uint32_t cycle = 1; cycle <= fx->b.cfg->max_attempts; cycle++) {
		sent_all(s);
		mailbox_redeliver(&fx->b, 2);
	}
	assert_int_equal(count(fx, fx->b.st.dead), ITEMS);
}

/* Operators see metadata, never participant data; nobody else sees them. */
static void
test_operators_list_dead_letters(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer reply;
	msgpack_unpacked up;
	const msgpack_object *d, *items;

	dead_letter_all(fx);
	msgpack_sbuffer_init(&reply);
	msgpack_unpacked_init(&up);
	d = data_of(dl_query(fx, "ops", &reply, &up, 0));
	assert_int_equal(codec_map_get(d, "total")->via.u64, ITEMS);
	assert_false(codec_map_get(d, "more")->via.boolean);
	items = codec_map_get(d, "items");
	assert_int_equal(items->via.array.size, ITEMS);
	for (uint32_t i = 0; i < ITEMS; i++) {
		const msgpack_object *it = &items->via.array.ptr[i];

		assert_true(codec_str_eq(codec_map_get(it, "agent"), "ml"));
		assert_true(codec_str_eq(codec_map_get(it, "kind"), "event"));
		assert_true(codec_str_eq(codec_map_get(it, "type"), "referral.sent"));
		assert_int_equal(codec_map_get(it, "seq")->via.u64, i + 1);
		assert_int_equal(codec_map_get(it, "attempts")->via.u64,
		    fx->b.cfg->max_attempts);
		assert_true(codec_map_get(it, "age_ms")->via.i64 > 0);
	}
	assert_null(memmem(reply.data, reply.size, "p-1", 3));
	assert_null(memmem(reply.data, reply.size, "r-1", 3));

	/* Paging. */
	d = data_of(dl_query(fx, "ops", &reply, &up, 3, "agent", "ml",
	    "from_seq", "6", "limit", "5"));
	assert_true(codec_map_get(d, "more")->via.boolean);
	items = codec_map_get(d, "items");
	assert_int_equal(items->via.array.size, 5);
	assert_int_equal(codec_map_get(&items->via.array.ptr[0], "seq")->via.u64, 6);

	/* A coordinator, or the agent itself, is refused. */
	assert_null(codec_map_get(dl_query(fx, "coord", &reply, &up, 0), "data"));
	assert_null(codec_map_get(dl_query(fx, "ml", &reply, &up, 0), "data"));
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&reply);
}

static void
test_operators_requeue_and_drop_dead_letters(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer reply;
	msgpack_unpacked up;
	const msgpack_object *d;

	dead_letter_all(fx);
	msgpack_sbuffer_init(&reply);
	msgpack_unpacked_init(&up);
	d = data_of(dl_query(fx, "ops", &reply, &up, 3, "action", "requeue",
	    "agent", "ml", "seq", "3"));
	assert_int_equal(codec_map_get(d, "requeued")->via.u64, 1);
	assert_int_equal(mailbox_count(fx, "ml"), 1);
	assert_int_equal(count(fx, fx->b.st.dead), ITEMS - 1);
	assert_true(sessions_find(&fx->b, "ml")->pending);

	/* Once requeued it is no dead letter any more. */
	assert_null(codec_map_get(dl_query(fx, "ops", &reply, &up, 3, "action",
	    "requeue", "agent", "ml", "seq", "3"), "data"));
	/* A key the action does not take is told, not ignored. */
	assert_int_equal(codec_map_get(dl_query(fx, "ops", &reply, &up, 3, "action",
	    "drop", "agent", "ml", "limit", "5"), "code")->via.u64, RL_E_UNKNOWN_FIELD);
	/* Requeue and drop name the agent. */
	assert_null(codec_map_get(dl_query(fx, "ops", &reply, &up, 1, "action",
	    "drop"), "data"));

	d = data_of(dl_query(fx, "ops", &reply, &up, 2, "action", "drop",
	    "agent", "ml"));
	assert_int_equal(codec_map_get(d, "dropped")->via.u64, ITEMS - 1);
	assert_int_equal(count(fx, fx->b.st.dead), 0);
	assert_int_equal(mailbox_count(fx, "ml"), 1);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&reply);
}

/*
 * The observed: 110 000 items for an agent that never connects grew the
 * store until every agent got storage_full.  At max_backlog the agent's
 * mailbox stops growing; the events are still recorded.
 */
static void
test_a_mailbox_stops_at_max_backlog(void **state)
{
	struct fixture *fx = *state;
	struct session *s = sessions_find(&fx->b, "ml");
	uint64_t events = count(fx, fx->b.st.log), acked;
	MDB_txn *txn;

	fx->b.cfg->max_backlog = 5;
	fixture_queue_referrals(fx, 0, 8);
	assert_int_equal(count(fx, fx->b.st.log), events + 8);
	assert_int_equal(mailbox_count(fx, "ml"), 5);
	assert_int_equal(s->overflowed, 3);

	/* Once it collects, there is room again. */
	s->sent = 5;
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(mailbox_ack(&fx->b, txn, s, 3, &acked), 0);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	s->acked = acked;
	fixture_queue_referrals(fx, 100, 4);
	assert_int_equal(mailbox_count(fx, "ml"), 5);
	assert_int_equal(s->overflowed, 4);
}

/* The agents of a health query (valid while reply and up are). */
static const msgpack_object *
health_agents(struct fixture *fx, msgpack_sbuffer *reply, msgpack_unpacked *up)
{
	return codec_map_get(codec_map_get(fixture_query(fx, "ops", "health",
	    NULL, reply, up), "data"), "agents");
}

/* An agent that does not collect for agent_silent_hours is reported. */
static void
test_a_silent_agent_is_reported(void **state)
{
	struct fixture *fx = *state;
	struct session *s = queue_items(fx), *med = sessions_find(&fx->b, "med");
	const int64_t hour = 3600000;
	msgpack_sbuffer reply;
	msgpack_unpacked up;
	const msgpack_object *agents;
	MDB_txn *txn;
	uint64_t acked;

	upkeep_agents(&fx->b);
	assert_false(s->silent);
	fx->b.clock.offset_ms += (int64_t)fx->b.cfg->agent_silent_hours * hour - hour;
	upkeep_agents(&fx->b);
	assert_false(s->silent);
	fx->b.clock.offset_ms += 2 * hour;
	upkeep_agents(&fx->b);
	assert_true(s->silent);
	/* med has nothing to collect: not silent. */
	assert_false(med->silent);

	msgpack_sbuffer_init(&reply);
	msgpack_unpacked_init(&up);
	agents = health_agents(fx, &reply, &up);
	for (uint32_t i = 0; i < agents->via.array.size; i++) {
		const msgpack_object *a = &agents->via.array.ptr[i];

		assert_int_equal(codec_map_get(a, "silent")->via.boolean,
		    codec_str_eq(codec_map_get(a, "id"), "ml"));
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&reply);

	/* It collects: no longer silent. */
	s->sent = 1;
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(mailbox_ack(&fx->b, txn, s, 1, &acked), 0);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_false(s->silent);
	upkeep_agents(&fx->b);
	assert_false(s->silent);
}

/* The backlog health reports for agent. */
static uint64_t
health_backlog(struct fixture *fx, const char *agent)
{
	const msgpack_object *agents;
	msgpack_sbuffer reply;
	msgpack_unpacked up;
	uint64_t backlog = UINT64_MAX;

	msgpack_sbuffer_init(&reply);
	msgpack_unpacked_init(&up);
	agents = health_agents(fx, &reply, &up);
	for (uint32_t i = 0; i < agents->via.array.size; i++) {
		const msgpack_object *a = &agents->via.array.ptr[i];

		if (codec_str_eq(codec_map_get(a, "id"), agent))
			backlog = codec_map_get(a, "backlog")->via.u64;
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&reply);
	return backlog;
}

/*
 * The observed: health walked every mailbox with a cursor, 10 to 31 ms a
 * call at a 100 000-item backlog.  It reads a counter, counted once from
 * the store: an item removed behind the broker's back does not show.
 */
static void
test_health_reads_the_backlog_counter_not_the_mailbox(void **state)
{
	struct fixture *fx = *state;
	char key[128];
	MDB_val k;
	MDB_cursor *cur;
	MDB_txn *txn;

	fixture_queue_referrals(fx, 0, 3);
	assert_int_equal(health_backlog(fx, "ml"), 3);

	/* ml's first item, deleted without the broker knowing. */
	k.mv_size = store_key_seq(key, "ml", 2, 0);
	k.mv_data = key;
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.mbox, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, NULL, MDB_SET_RANGE), 0);
	assert_true(k.mv_size <= sizeof(key));
	memcpy(key, k.mv_data, k.mv_size);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	fixture_put_raw(fx, fx->b.st.mbox, key, k.mv_size, NULL, 0, true);
	assert_int_equal(mailbox_count(fx, "ml"), 2);
	assert_int_equal(health_backlog(fx, "ml"), 3);
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
		cmocka_unit_test_setup_teardown(test_operators_list_dead_letters,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_operators_requeue_and_drop_dead_letters,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_mailbox_stops_at_max_backlog,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_silent_agent_is_reported,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_health_reads_the_backlog_counter_not_the_mailbox,
		    fixture_setup, fixture_teardown),
	};
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
