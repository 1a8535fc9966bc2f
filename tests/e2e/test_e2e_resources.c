/*
 * The broker stays up, and its log stays readable, whatever agents and
 * the machine do: the reader of its log goes away, an agent floods it with
 * refusals.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "log.h"

/*
 * relaisd's stderr is a pipe (here the harness's log path made a FIFO)
 * whose reader goes away, as when `2>&1 | tee` or a log shipper stops.
 * The next log line must fail quietly, not kill the broker with SIGPIPE.
 */
static void
test_log_reader_going_away_does_not_stop_the_broker(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *c;
	json_t *r;
	int reader;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_assert(mkfifo(b->log, 0600) == 0, "mkfifo %s: %s", b->log,
	    strerror(errno));
	/* Open the reading end first, so the broker's open does not wait. */
	reader = open(b->log, O_RDONLY | O_NONBLOCK);
	e2e_assert(reader >= 0, "open %s: %s", b->log, strerror(errno));
	e2e_start(b);
	close(reader);
	/*
	 * The broker keeps the FIFO it opened; the path becomes a plain file
	 * again for the harness, which reads the log on a failure and at
	 * teardown.
	 */
	e2e_assert(unlink(b->log) == 0, "unlink %s: %s", b->log, strerror(errno));
	close(open(b->log, O_WRONLY | O_CREAT, 0600));

	/* Each accepted event writes an info line: the first one fails. */
	c = e2e_connect(b, "med");
	r = e2e_submit1(c, e2e_ev_contact("pipe-1", "p-1"));
	e2e_expect_ok(r);
	json_decref(r);
	r = e2e_submit1(c, e2e_ev_contact("pipe-2", "p-1"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&c);
	e2e_assert(e2e_running(b), "the broker died when its log's reader "
	    "went away");
}

/*
 * One agent floods the broker with bad frames: each gets its error reply,
 * but the log keeps LOG_LIMIT_PER_SEC warnings a second and says how many
 * it left out.
 */
static void
test_a_flood_of_refusals_is_rate_limited_in_the_log(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_raw *r;
	int n = 2000, lines;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_start(b);
	r = e2e_raw_open(b, "med", NULL);
	for (int i = 0; i < n; i++)
		e2e_raw_send(r, "\xc1", 1);     /* never valid msgpack */
	for (int i = 0; i < n; i++)
		json_decref(e2e_raw_expect(r, "error", E2E_WAIT_MS));
	e2e_raw_close(&r);

	e2e_log_wait(b, "\"msg\":\"log.suppressed\"",
	    "\"what\":\"message.refused\"", "\"agent\":\"med\"");
	lines = e2e_log_count(b, "\"msg\":\"message.refused\"", NULL);
	e2e_assert(lines >= LOG_LIMIT_PER_SEC && lines < n / 2, "expected the "
	    "%d refusals logged %d a second, got %d lines", n, LOG_LIMIT_PER_SEC,
	    lines);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_log_reader_going_away_does_not_stop_the_broker,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_a_flood_of_refusals_is_rate_limited_in_the_log,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
