/*
 * The byte accounting of replies waiting per connection (broker/flow.c):
 * room and reservations against the per-connection and total limits, the
 * queue in order, the refusals counted into one not_reading error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "codec.h"
#include "flow.h"

/* A reply of n bytes, as the queue counts it (its header included). */
#define COST(n) (sizeof(struct flow_msg) + (n))

static void
test_reservations_stop_at_the_connection_share(void **state)
{
	struct flow_totals t = { 0 };
	struct conn_flow f = { 0 };
	size_t big = flow_acks_max(RL_MAX_BATCH);
	int n = 0;

	/* A full submit's acks fit a few times in one connection's share. */
	assert_true(big < FLOW_CONN_QUEUE_MAX / 4);
	while (flow_reserve(&t, &f, big))
		n++;
	assert_int_equal(n, FLOW_CONN_QUEUE_MAX / big);
	assert_int_equal(f.reserved, n * big);
	assert_int_equal(t.reserved, n * big);
	/* Given back, room again. */
	flow_release(&t, &f, big);
	assert_true(flow_reserve(&t, &f, big));
	flow_clear(&t, &f);
	assert_int_equal(t.reserved, 0);
	assert_int_equal(t.queued, 0);
}

static void
test_the_total_limit_is_shared_by_every_connection(void **state)
{
	struct flow_totals t = { 0 };
	struct conn_flow f[FLOW_QUEUE_MAX / FLOW_CONN_QUEUE_MAX + 1];
	size_t n = sizeof(f) / sizeof(f[0]);

	memset(f, 0, sizeof(f));
	for (size_t i = 0; i + 1 < n; i++)
		assert_true(flow_reserve(&t, &f[i], FLOW_CONN_QUEUE_MAX));
	/* The last connection has its own share, but the total is used up. */
	assert_false(flow_room(&t, &f[n - 1], 1));
	assert_false(flow_reserve(&t, &f[n - 1], 1));
	for (size_t i = 0; i < n; i++)
		flow_clear(&t, &f[i]);
	assert_int_equal(t.reserved, 0);
}

static void
test_the_queue_keeps_order_and_counts_bytes(void **state)
{
	struct flow_totals t = { 0 };
	struct conn_flow f = { 0 };

	assert_int_equal(flow_enqueue(&t, &f, "one", 3), 0);
	assert_int_equal(flow_enqueue(&t, &f, "three", 5), 0);
	assert_int_equal(f.queued, COST(3) + COST(5));
	assert_int_equal(t.queued, f.queued);
	assert_memory_equal(flow_peek(&f)->data, "one", 3);
	flow_dequeue(&t, &f);
	assert_memory_equal(flow_peek(&f)->data, "three", 5);
	assert_int_equal(f.queued, COST(5));
	flow_dequeue(&t, &f);
	assert_null(flow_peek(&f));
	assert_int_equal(t.queued, 0);
	/* Queued replies count against the room. */
	assert_int_equal(flow_enqueue(&t, &f, "x", 1), 0);
	assert_false(flow_room(&t, &f, FLOW_CONN_QUEUE_MAX));
	flow_clear(&t, &f);
	assert_int_equal(t.queued, 0);
}

/* The notice's map, decoded: an integer field, or -1 if absent. */
static long long
notice_int(const msgpack_object *m, const char *key)
{
	const msgpack_object *v = codec_map_get(m, key);

	return v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
	    (long long)v->via.u64 : -1;
}

static void
test_refusals_make_one_notice(void **state)
{
	struct flow_totals t = { 0 };
	struct conn_flow f = { 0 };
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	const msgpack_object *m;

	assert_false(flow_refusing(&f));
	flow_refuse(&t, &f, true, 7);
	flow_refuse(&t, &f, false, 0);     /* a request without ref */
	flow_refuse(&t, &f, true, 9);
	assert_true(flow_refusing(&f));
	/* A refusing connection reserves nothing. */
	assert_false(flow_reserve(&t, &f, 1));
	assert_int_equal(t.refusing, 1);
	assert_int_equal(t.refused, 3);

	msgpack_sbuffer_init(&sb);
	flow_pack_notice(&f, &sb);
	m = codec_unpack_map(&up, sb.data, sb.size);
	assert_non_null(m);
	assert_true(codec_str_eq(codec_map_get(m, "cmd"), "error"));
	assert_true(codec_str_eq(codec_map_get(m, "error"), "not_reading"));
	assert_int_equal(notice_int(m, "code"), RL_E_NOT_READING);
	assert_int_equal(notice_int(m, "ref"), 7);
	assert_int_equal(notice_int(m, "last_ref"), 9);
	assert_int_equal(notice_int(m, "refused"), 3);
	msgpack_unpacked_destroy(&up);

	flow_noticed(&t, &f);
	assert_false(flow_refusing(&f));
	assert_int_equal(t.refusing, 0);
	/* A run whose last request had no ref names only the first. */
	flow_refuse(&t, &f, true, 12);
	flow_refuse(&t, &f, false, 0);
	flow_pack_notice(&f, &sb);
	m = codec_unpack_map(&up, sb.data, sb.size);
	assert_int_equal(notice_int(m, "ref"), 12);
	assert_int_equal(notice_int(m, "last_ref"), -1);
	assert_int_equal(notice_int(m, "refused"), 2);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	flow_clear(&t, &f);
	assert_int_equal(t.refusing, 0);
}

static void
test_connections_count_what_was_admitted_and_not_closed(void **state)
{
	struct flow_totals t = { 0 };

	t.admitted = 3;
	assert_int_equal(flow_connections(&t), 3);
	/* A refused handshake: failed, then closed; nothing changes. */
	t.failed++;
	t.closed++;
	assert_int_equal(flow_connections(&t), 3);
	/* An admitted connection closes. */
	t.closed++;
	assert_int_equal(flow_connections(&t), 2);
	t.closed += 5;
	assert_int_equal(flow_connections(&t), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reservations_stop_at_the_connection_share),
		cmocka_unit_test(test_the_total_limit_is_shared_by_every_connection),
		cmocka_unit_test(test_the_queue_keeps_order_and_counts_bytes),
		cmocka_unit_test(test_refusals_make_one_notice),
		cmocka_unit_test(test_connections_count_what_was_admitted_and_not_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
