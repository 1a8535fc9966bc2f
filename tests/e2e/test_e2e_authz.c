/*
 * End to end, authentication and authorisation: failed handshakes are
 * logged, who may be the target of a referral, which QPVs exist.  Each
 * test runs its own relaisd (harness.h).
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

/*
 * Observed: the operator could be a referral's target, and then received
 * participant data; referrals to oneself or to a coordinator were
 * accepted.  A referral goes to another partner, or is refused as
 * forbidden on "to" and records nothing.
 */
static void
test_referral_targets_are_other_partners(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	static const char *const not_targets[] = { "cs-pasteur", "coord", "ops" };
	relais_client *a;
	json_t *res;
	char id[32];

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	for (size_t i = 0; i < sizeof(not_targets) / sizeof(not_targets[0]); i++) {
		snprintf(id, sizeof(id), "ev-%zu", i);
		res = e2e_submit1(a, e2e_ev_referral(id, "p-1", id, not_targets[i]));
		e2e_expect_error(res, 202, "to");
		json_decref(res);
	}
	e2e_assert_int(0, e2e_health(a, "events"), "events recorded");
	/* The refused ids were given back: the same referral id now works. */
	res = e2e_submit1(a, e2e_ev_referral("ev-ok", "p-1", "ev-1", "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
	relais_close(&a);
}

/*
 * Observed: QPVs were free text, so "Sanitas" or "sanitaz" was accepted and
 * that person's alerts never reached the Sanitas coordinator.  A QPV not
 * in the config's [qpv] list is refused as bad_field on "qpv".
 */
static void
test_unknown_qpv_is_refused(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	static const char *const typos[] = { "Sanitas", "sanitaz" };
	relais_client *a;
	json_t *ev, *res;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	for (size_t i = 0; i < 2; i++) {
		ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "event_id",
		    typos[i], "type", "participant.identified", "occurred_at",
		    (json_int_t)rl_wall_ms(), "participant", "p-1", "qpv", typos[i],
		    "source", "outreach");
		res = e2e_submit1(a, ev);
		e2e_expect_error(res, 105, "qpv");
		json_decref(res);
		ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:i}", "event_id", "o-1",
		    "type", "outreach.intervention", "occurred_at",
		    (json_int_t)rl_wall_ms(), "place", "event", "qpv", typos[i],
		    "contacts", 3);
		res = e2e_submit1(a, ev);
		e2e_expect_error(res, 105, "qpv");
		json_decref(res);
	}
	e2e_assert_int(0, e2e_health(a, "events"), "events recorded");
	ev = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "event_id", "ok-1",
	    "type", "participant.identified", "occurred_at",
	    (json_int_t)rl_wall_ms(), "participant", "p-1", "qpv", "sanitas",
	    "source", "outreach");
	res = e2e_submit1(a, ev);
	e2e_expect_ok(res);
	json_decref(res);
	relais_close(&a);
}

/*
 * A DEALER that sends one frame with whatever security it was given, kept
 * until the broker logs one more auth.failed line with why in it.  Which
 * side sees a mechanism mismatch first is a race, so the broker's reason
 * may be the mismatch itself or a handshake the peer closed.
 */
static void
knock(void *ctx, struct e2e_broker *b, void (*secure)(void *, void *),
    void *arg, const char *why)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, before = e2e_log_count(b, "\"auth.failed\"", why, NULL);
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (secure != NULL)
		secure(s, arg);
	e2e_assert(zmq_connect(s, b->endpoint) == 0, "connect: %s",
	    zmq_strerror(zmq_errno()));
	zmq_send(s, "x", 1, ZMQ_DONTWAIT);
	/* Kept open: the broker judges the handshake, not a closed socket. */
	while (e2e_log_count(b, "\"auth.failed\"", why, NULL) <= before) {
		e2e_assert(rl_mono_ms() < deadline, "no new auth.failed line "
		    "saying \"%s\" within %d ms", why, E2E_WAIT_MS);
		rl_sleep_ms(20);
	}
	zmq_close(s);
}

static void
use_plain(void *s, void *arg)
{
	zmq_setsockopt(s, ZMQ_PLAIN_USERNAME, "ml-tours", 8);
	zmq_setsockopt(s, ZMQ_PLAIN_PASSWORD, "secret", 6);
}

/* CURVE with keys[0] as server key, keys[1] public, keys[2] secret. */
static void
use_curve(void *s, void *arg)
{
	const char *const *keys = arg;

	zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, keys[0], 40);
	zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, keys[1], 40);
	zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, keys[2], 40);
}

/*
 * Observed: only an unregistered key was logged; NULL or PLAIN, a
 * registered public key without its secret, or a wrong server key left no
 * line.  Each is now one auth.failed line, and registered agents still
 * get in.
 */
static void
test_every_failed_handshake_is_logged(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_agent *ml, *other;
	void *ctx = zmq_ctx_new();
	relais_client *c;

	ml = e2e_agent_add(b, "ml-tours", "mission_locale", true);
	other = e2e_agent_add(b, "stranger", "association", false);
	e2e_start(b);

	knock(ctx, b, NULL, NULL, "\"reason\"");
	knock(ctx, b, use_plain, NULL, "\"reason\"");

	const char *wrong_server[] = { ml->pub, ml->pub, ml->sec };
	knock(ctx, b, use_curve, wrong_server, "\"reason\"");
	const char *stolen_public[] = { b->broker_pub, ml->pub, other->sec };
	knock(ctx, b, use_curve, stolen_public, "\"reason\"");
	e2e_assert_int(0, e2e_log_count(b, ml->sec, NULL), "secret keys in the log");

	c = e2e_connect(b, "ml-tours");
	relais_close(&c);
	zmq_ctx_term(ctx);
}

/* A query (args are consumed) must be refused with this code. */
static void
expect_query_refused(relais_client *c, const char *what, json_t *args,
    int code, const char *why)
{
	json_t *r = relais_query(c, what, args, E2E_WAIT_MS);

	json_decref(args);
	e2e_assert(r == NULL, "%s: expected error %d, got %s", why, code,
	    e2e_json_str(r));
	e2e_assert_int(code, relais_last_code(c), why);
}

/*
 * Observed: query args were not validated: a coordinator typing
 * "stauts=all" was silently given the open alerts, and a 10 KB args.id was
 * missing_field.  Unknown keys are unknown_field, bad values bad_field.
 */
static void
test_query_args_are_validated(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *coord;
	json_t *r;
	char *big = malloc(10001);

	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_start(b);
	coord = e2e_connect(b, "coord");
	expect_query_refused(coord, "alerts", json_pack("{s:s}", "stauts", "all"),
	    106, "alerts with args.stauts");
	expect_query_refused(coord, "alerts", json_pack("{s:s}", "status", "every"),
	    105, "alerts with status every");
	expect_query_refused(coord, "alerts", json_pack("{s:i}", "status", 1),
	    105, "alerts with a numeric status");
	expect_query_refused(coord, "health", json_pack("{s:b}", "verbose", 1),
	    106, "health with args");
	expect_query_refused(coord, "participant", json_object(), 104,
	    "participant without id");
	e2e_assert(big != NULL, "out of memory");
	memset(big, 'p', 10000);
	big[10000] = '\0';
	expect_query_refused(coord, "participant", json_pack("{s:s}", "id", big),
	    105, "participant with a 10 KB id");
	free(big);
	expect_query_refused(coord, "participant", json_pack("{s:s, s:s}", "id",
	    "p-1", "with", "timeline"), 106, "participant with an extra key");
	json_t *all = json_pack("{s:s}", "status", "all");
	r = relais_query(coord, "alerts", all, E2E_WAIT_MS);
	json_decref(all);
	e2e_assert(r != NULL, "alerts with status all: %s", relais_errmsg(coord));
	json_decref(r);
	relais_close(&coord);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_referral_targets_are_other_partners,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_unknown_qpv_is_refused,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_every_failed_handshake_is_logged,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_query_args_are_validated,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
