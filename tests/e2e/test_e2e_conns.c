/*
 * End to end, connections: an agent with many connections, which one
 * takes its deliveries, and identity bound to the key on every message
 * (sessions.h).  Each test runs its own relaisd (harness.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>

#include "harness.h"

static struct e2e_broker *
two_agents(void)
{
	struct e2e_broker *b = e2e_broker_new(NULL);

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	return b;
}

/* Send a referral to ml-tours from a, and check it was recorded. */
static void
refer(relais_client *a, const char *id)
{
	char participant[32], referral[32];
	json_t *res;

	snprintf(participant, sizeof(participant), "p-%s", id);
	snprintf(referral, sizeof(referral), "r-%s", id);
	res = e2e_submit1(a, e2e_ev_referral(id, participant, referral,
	    "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
}

/* The next delivery to c must be the referral called r-<id>; ack it. */
static void
expect_referral(relais_client *c, const char *id, const char *who)
{
	char referral[32];
	json_t *d = relais_next_delivery(c, E2E_WAIT_MS);

	snprintf(referral, sizeof(referral), "r-%s", id);
	e2e_assert(d != NULL, "%s got no delivery of %s within %d ms: %s", who,
	    referral, E2E_WAIT_MS, relais_errmsg(c));
	e2e_assert_str(referral, jstr(json_object_get(d, "event"), "referral"),
	    who);
	e2e_assert(relais_ack(c, (uint64_t)jint(d, "seq")) == 0, "dack: %s",
	    relais_errmsg(c));
	json_decref(d);
}

static void
send_ping(struct e2e_raw *r, int ref)
{
	json_t *ping = json_pack("{s:i, s:s, s:i}", "v", 1, "cmd", "ping",
	    "ref", ref);

	e2e_raw_send_json(r, ping);
	json_decref(ping);
}

/*
 * A raw connection must receive no delivery up to the answer to a ping:
 * the broker sends deliveries at the end of the pass that recorded the
 * event, so by the time a later ping is answered, any would have come.
 */
static void
expect_no_delivery(struct e2e_raw *r, const char *who)
{
	json_t *m;

	send_ping(r, 77);
	while ((m = e2e_raw_recv(r, E2E_WAIT_MS)) != NULL) {
		const char *cmd = jstr(m, "cmd");

		e2e_assert(cmd == NULL || strcmp(cmd, "deliver") != 0,
		    "%s received a delivery: %s", who, e2e_json_str(m));
		if (cmd != NULL && strcmp(cmd, "pong") == 0 && jint(m, "ref") == 77) {
			json_decref(m);
			return;
		}
		json_decref(m);
	}
	e2e_fail(__FILE__, __LINE__, "pong", "%s got no pong within %d ms",
	    who, E2E_WAIT_MS);
}

/* A ping on r must be refused with this code, and nothing delivered. */
static void
expect_refused(struct e2e_raw *r, int code, const char *who)
{
	json_t *m;

	send_ping(r, 78);
	while ((m = e2e_raw_recv(r, E2E_WAIT_MS)) != NULL) {
		const char *cmd = jstr(m, "cmd");

		e2e_assert(cmd != NULL && strcmp(cmd, "error") == 0,
		    "%s: expected error %d, got %s", who, code, e2e_json_str(m));
		e2e_assert_int(code, jint(m, "code"), who);
		e2e_assert_int(78, jint(m, "ref"), "ref of the refusal");
		json_decref(m);
		return;
	}
	e2e_fail(__FILE__, __LINE__, "error", "%s: no answer within %d ms",
	    who, E2E_WAIT_MS);
}

/*
 * Observed: a second listener of the same agent that starts and exits
 * silently stopped delivery to the first one for good.  Now the latest
 * listener takes the deliveries while it is there, and the first resumes
 * the moment it goes.
 */
static void
test_second_listener_does_not_stop_the_first(void **state)
{
	struct e2e_broker *b = two_agents();
	relais_client *a, *first, *second;

	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	first = e2e_connect(b, "ml-tours");
	second = e2e_connect(b, "ml-tours");

	refer(a, "ev-1");
	expect_referral(second, "ev-1", "the latest listener");
	/*
	 * A reply on the same connection comes after its dack was recorded:
	 * without it, ev-1 could still be unacknowledged when second goes,
	 * and would rightly be sent again to first.
	 */
	e2e_health(second, "events");
	relais_close(&second);

	refer(a, "ev-2");
	expect_referral(first, "ev-2", "the first listener, once the second "
	    "has gone");
	e2e_assert_int(0, e2e_log_count(b, "\"msg\":\"agent.offline\"",
	    "\"agent\":\"ml-tours\"", NULL), "agent.offline lines for ml-tours");
	relais_close(&first);
	relais_close(&a);
}

/*
 * Connections that never say hello (senders, queries) take no
 * deliveries, and replies that cannot reach a one-shot connection (it
 * closed before its answer) never take the listener offline.
 */
static void
test_senders_and_one_shots_leave_the_listener_alone(void **state)
{
	struct e2e_broker *b = two_agents();
	struct e2e_conn send_only = { .send_only = true };
	relais_client *a, *listener, *sender;
	char err[256], id[16];

	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	listener = e2e_connect(b, "ml-tours");
	sender = e2e_try_connect(b, "ml-tours", &send_only, err, sizeof(err));
	e2e_assert(sender != NULL, "send-only connection: %s", err);

	for (int i = 0; i < 20; i++) {
		struct e2e_raw *once = e2e_raw_open(b, "ml-tours", NULL);

		send_ping(once, i);
		e2e_raw_close(&once);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "ev-%d", i);
		refer(a, id);
		expect_referral(listener, id, "the listener beside a sender "
		    "and one-shot connections");
	}
	json_t *h = relais_query(sender, "health", NULL, E2E_WAIT_MS);
	e2e_assert(h != NULL, "health: %s", relais_errmsg(sender));
	json_decref(h);
	relais_close(&sender);
	relais_close(&listener);
	relais_close(&a);
}

/* A consumer that crashes and reconnects gets what it had not acked. */
static void
test_consumer_crash_and_reconnect(void **state)
{
	struct e2e_broker *b = two_agents();
	relais_client *a, *c;
	struct e2e_raw *crash;
	json_t *hello, *d;

	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	crash = e2e_raw_open(b, "ml-tours", NULL);
	hello = e2e_raw_hello(crash, 10);
	/* The welcome names events per submit apart from the config's max_batch. */
	e2e_assert_int(1000, jint(hello, "max_events"), "welcome.max_events");
	e2e_assert(json_object_get(hello, "max_batch") == NULL,
	    "welcome still has max_batch: %s", e2e_json_str(hello));
	json_decref(hello);
	refer(a, "ev-1");
	d = e2e_raw_expect(crash, "deliver", E2E_WAIT_MS);
	json_decref(d);
	e2e_raw_close(&crash);          /* never acknowledged */

	c = e2e_connect(b, "ml-tours");
	expect_referral(c, "ev-1", "the reconnected consumer");
	relais_close(&c);
	relais_close(&a);
}

/*
 * Observed: after a key rotation (new public_key, SIGHUP) the connection
 * opened with the old key kept submitting, saying hello and receiving the
 * agent's deliveries.  Now its next message is refused as forbidden and
 * it receives nothing; the new key works.
 */
static void
test_key_rotation_cuts_the_old_connection(void **state)
{
	struct e2e_broker *b = two_agents();
	struct e2e_agent *ml, *fresh;
	relais_client *a, *renewed;
	struct e2e_raw *old;
	json_t *hello;

	fresh = e2e_agent_add(b, "ml-next", "mission_locale", false);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	old = e2e_raw_open(b, "ml-tours", NULL);
	hello = e2e_raw_hello(old, 10);
	json_decref(hello);

	ml = e2e_agent(b, "ml-tours");
	memcpy(ml->pub, fresh->pub, sizeof(ml->pub));
	memcpy(ml->sec, fresh->sec, sizeof(ml->sec));
	e2e_reload(b);

	refer(a, "ev-1");
	expect_refused(old, 202, "the old key's next message");
	e2e_log_wait(b, "\"msg\":\"connection.forbidden\"");
	renewed = e2e_connect(b, "ml-tours");
	expect_referral(renewed, "ev-1", "the connection with the new key");
	expect_refused(old, 202, "the old key, again");
	e2e_raw_close(&old);
	relais_close(&renewed);
	relais_close(&a);
}

/* A key removed from the registry is refused on its open connection. */
static void
test_key_removal_cuts_the_connection(void **state)
{
	struct e2e_broker *b = two_agents();
	relais_client *a;
	struct e2e_raw *ml;
	json_t *hello;

	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	ml = e2e_raw_open(b, "ml-tours", NULL);
	hello = e2e_raw_hello(ml, 10);
	json_decref(hello);
	e2e_agent(b, "ml-tours")->registered = false;
	e2e_reload(b);
	expect_refused(ml, 202, "a removed key's next message");
	e2e_raw_close(&ml);
	relais_close(&a);
}

/*
 * Observed: agent ml-tours connects with a chosen routing id, says hello
 * and closes; another agent connects with the same routing id: ml-tours's
 * deliveries went to it.  A routing id is only ever trusted on the
 * connection it was authenticated on.
 */
static void
test_routing_id_collision_captures_nothing(void **state)
{
	struct e2e_broker *b = two_agents();
	relais_client *a, *ml;
	struct e2e_raw *first, *evil;
	json_t *hello;

	e2e_agent_add(b, "evil", "association", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	first = e2e_raw_open(b, "ml-tours", "shared-rid");
	hello = e2e_raw_hello(first, 10);
	json_decref(hello);
	e2e_raw_close(&first);

	evil = e2e_raw_open(b, "evil", "shared-rid");
	expect_no_delivery(evil, "evil, before the referral");
	refer(a, "ev-1");
	expect_no_delivery(evil, "evil, on ml-tours's former routing id");

	ml = e2e_connect(b, "ml-tours");
	expect_referral(ml, "ev-1", "ml-tours, reconnected");
	expect_no_delivery(evil, "evil, at the end");
	e2e_raw_close(&evil);
	relais_close(&ml);
	relais_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_second_listener_does_not_stop_the_first, e2e_teardown),
		cmocka_unit_test_teardown(
		    test_senders_and_one_shots_leave_the_listener_alone,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_consumer_crash_and_reconnect,
		    e2e_teardown),
		cmocka_unit_test_teardown(
		    test_key_rotation_cuts_the_old_connection, e2e_teardown),
		cmocka_unit_test_teardown(test_key_removal_cuts_the_connection,
		    e2e_teardown),
		cmocka_unit_test_teardown(
		    test_routing_id_collision_captures_nothing, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
