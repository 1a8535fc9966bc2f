/*
 * crowd.c: when accepts fail for want of descriptors, the oldest
 * connections still in their handshake are shut down, never one younger
 * than 100 ms nor one that has sent a message, and not more often than
 * every 20 ms.  Connections are socket pairs: the broker's end is the
 * descriptor crowd.c knows, the peer's end reads a hang-up when shed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crowd.h"
#include "log.h"

#define N 40

struct conn {
	int broker, peer;
};

static void
open_conns(struct conn *c, int n)
{
	for (int i = 0; i < n; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK,
		    0, sv), 0);
		c[i].broker = sv[0];
		c[i].peer = sv[1];
	}
}

static void
close_conns(struct conn *c, int n)
{
	for (int i = 0; i < n; i++) {
		close(c[i].broker);
		close(c[i].peer);
	}
}

/* Did the broker's end shut down?  The peer reads end of file. */
static bool
shed(const struct conn *c)
{
	char byte;

	return recv(c->peer, &byte, 1, 0) == 0;
}

static void
test_the_oldest_handshakes_go_first(void **state)
{
	struct crowd cr;
	struct conn c[N];
	const int64_t now = 1000000;
	int gone = 0;

	(void)state;
	assert_int_equal(crowd_init(&cr), 0);
	open_conns(c, N);
	/* Connection i accepted i seconds before now, so 0 is the youngest;
	 * 0 to 2 have spoken, 3 is 50 ms old. */
	for (int i = 0; i < N; i++)
		crowd_accepted(&cr, c[i].broker, now - (int64_t)i * 1000);
	for (int i = 0; i < 3; i++)
		crowd_heard(&cr, c[i].broker);
	crowd_accepted(&cr, c[3].broker, now - 50);

	/* Another failure than running out of descriptors changes nothing. */
	crowd_accept_failed(&cr, ECONNABORTED, now);
	for (int i = 0; i < N; i++)
		assert_false(shed(&c[i]));

	/* 36 in their handshake: an eighth is 4, at least 32 go, oldest
	 * first: 39 down to 8. */
	crowd_accept_failed(&cr, EMFILE, now);
	for (int i = 0; i < N; i++) {
		bool expect = i >= N - 32;

		assert_int_equal(shed(&c[i]), expect);
		gone += expect;
	}
	assert_int_equal(cr.shed, gone);

	/* Within 20 ms nothing more, after it the rest but the young one. */
	crowd_accept_failed(&cr, EMFILE, now + 10);
	for (int i = 4; i < N - 32; i++)
		assert_false(shed(&c[i]));
	crowd_accept_failed(&cr, ENFILE, now + 20);
	for (int i = 4; i < N - 32; i++)
		assert_true(shed(&c[i]));
	for (int i = 0; i < 4; i++)
		assert_false(shed(&c[i]));
	assert_int_equal(cr.shed, N - 4);

	/* A closed connection is forgotten: its descriptor may come back. */
	crowd_closed(&cr, c[3].broker);
	crowd_accept_failed(&cr, EMFILE, now + 1000);
	assert_false(shed(&c[3]));
	close_conns(c, N);
	crowd_free(&cr);
}

/*
 * Connections admitted that never speak: shut down once silent_ms have
 * passed since they were accepted, and only those.
 */
static void
test_silent_connections_are_shut_down(void **state)
{
	struct crowd cr;
	struct conn c[3];
	const int64_t now = 1000000;

	(void)state;
	assert_int_equal(crowd_init(&cr), 0);
	open_conns(c, 3);
	crowd_accepted(&cr, c[0].broker, now - 10000);  /* silent 10 s */
	crowd_accepted(&cr, c[1].broker, now - 9999);   /* not yet */
	crowd_accepted(&cr, c[2].broker, now - 20000);
	crowd_heard(&cr, c[2].broker);                  /* spoke */
	assert_int_equal(crowd_shed_silent(&cr, now, 10000), 1);
	assert_true(shed(&c[0]));
	assert_false(shed(&c[1]));
	assert_false(shed(&c[2]));
	assert_int_equal(crowd_shed_silent(&cr, now, 10000), 0);
	close_conns(c, 3);
	crowd_free(&cr);
}

/*
 * Whose a descriptor is, for max_connections_per_agent: set by its first
 * message, given back when it closes, carried over a reload.
 */
static void
test_a_descriptor_owner_follows_its_agent(void **state)
{
	struct crowd cr;
	const int32_t map[3] = { 1, -1, 0 };   /* 0 -> 1, 1 gone, 2 -> 0 */

	(void)state;
	assert_int_equal(crowd_init(&cr), 0);
	assert_int_equal(crowd_owner(&cr, 7), -1);
	crowd_own(&cr, 7, 0);
	crowd_own(&cr, 8, 1);
	crowd_own(&cr, 9, 2);
	crowd_own(&cr, 10, 5);                  /* past the old table */
	crowd_remap(&cr, map, 3);
	assert_int_equal(crowd_owner(&cr, 7), 1);
	assert_int_equal(crowd_owner(&cr, 8), -1);
	assert_int_equal(crowd_owner(&cr, 9), 0);
	assert_int_equal(crowd_owner(&cr, 10), -1);
	assert_int_equal(crowd_closed(&cr, 7), 1);
	assert_int_equal(crowd_owner(&cr, 7), -1);
	assert_int_equal(crowd_closed(&cr, 7), -1);
	assert_int_equal(crowd_owner(&cr, -1), -1);
	crowd_free(&cr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_oldest_handshakes_go_first),
		cmocka_unit_test(test_silent_connections_are_shut_down),
		cmocka_unit_test(test_a_descriptor_owner_follows_its_agent),
	};
	FILE *devnull = fopen("/dev/null", "w");

	log_init(devnull, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
