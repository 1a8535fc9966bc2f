/*
 * End to end, the bus as partners use it: who gets in, who the broker says
 * sent an event, the referral lifecycle across an offline target, and
 * deduplication.  Each test runs its own relaisd (harness.h).
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
#include "keyfile.h"

/* The "agents" entry of the health query for one agent. */
static json_t *
health_agent(relais_client *c, const char *id)
{
	json_t *h = relais_query(c, "health", NULL, 20000), *a, *found = NULL;
	size_t i;

	e2e_assert(h != NULL, "health query: %s", relais_errmsg(c));
	json_array_foreach(json_object_get(h, "agents"), i, a)
		if (jstr(a, "id") != NULL && strcmp(jstr(a, "id"), id) == 0)
			found = json_incref(a);
	json_decref(h);
	e2e_assert(found != NULL, "health lists no agent %s", id);
	return found;
}

/* ------------------------------------------------------------------ */

/*
 * A key that is not in the registry never gets an answer (relais_connect
 * times out), the broker logs auth.refused with the key's fingerprint, and
 * nothing it sends is recorded; a registered key gets in.
 */
static void
test_auth_unknown_key_refused(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_agent *intruder;
	unsigned char raw[32];
	char fp[17], err[512];
	struct e2e_conn quick = { .timeout_ms = 1500 };
	relais_client *c;
	struct e2e_raw *r;
	json_t *sub;

	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	intruder = e2e_agent_add(b, "intruder", "association", false);
	e2e_start(b);

	c = e2e_try_connect(b, "intruder", &quick, err, sizeof(err));
	e2e_assert(c == NULL, "an unregistered key was let in as %s",
	    relais_agent_id(c));
	e2e_assert(err[0] != '\0', "relais_connect failed without a reason");

	e2e_assert(zmq_z85_decode(raw, intruder->pub) != NULL, "bad Z85 key");
	keyfile_fingerprint(raw, fp);
	e2e_log_wait(b, "\"msg\":\"auth.refused\"", fp);
	e2e_assert_int(0, e2e_log_count(b, "auth.accepted", fp, NULL),
	    "auth.accepted lines for the refused key");

	/* Its messages go nowhere: a raw submit gets no reply at all. */
	r = e2e_raw_open(b, "intruder", NULL);
	sub = json_pack("{s:i, s:s, s:i, s:[o]}", "v", 1, "cmd", "submit",
	    "ref", 9, "events", e2e_ev_contact("x-1", "p-1"));
	e2e_raw_send_json(r, sub);
	json_decref(sub);
	{
		json_t *reply = e2e_raw_recv(r, 1500);
		e2e_assert(reply == NULL, "an unregistered key got a reply: %s",
		    e2e_json_str(reply));
	}
	e2e_raw_close(&r);

	c = e2e_connect(b, "ml-tours");
	e2e_assert_str("mission_locale", relais_agent_kind(c), "welcome kind");
	e2e_log_wait(b, "\"msg\":\"auth.accepted\"", "\"agent\":\"ml-tours\"");
	e2e_assert_int(0, e2e_health(c, "events"), "events recorded");
	relais_close(&c);

	/* Registered, then SIGHUP: the same key gets in. */
	intruder->registered = true;
	e2e_reload(b);
	c = e2e_connect(b, "intruder");
	e2e_log_wait(b, "\"msg\":\"auth.accepted\"", "\"agent\":\"intruder\"",
	    fp);
	relais_close(&c);
}

/*
 * Flow control: with credit 2 the broker never has more than two
 * unacknowledged deliveries in flight; each dack lets more go, and a dack
 * can raise the credit.
 */
static void
test_credit_flow_control(void **state)
{
	/* No redelivery during the test: only dacks make items move. */
	struct e2e_broker *b = e2e_broker_new("redeliver_ms = 600000\n"
	    "redeliver_max_ms = 600000\n");
	relais_client *a;
	struct e2e_raw *r;
	json_t *evs[5], *res[5], *w, *h, *dack;
	long long next = 1;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	for (int i = 0; i < 5; i++) {
		char id[16], p[16], ref[16];
		snprintf(id, sizeof(id), "ev-%d", i + 1);
		snprintf(p, sizeof(p), "p-%d", i + 1);
		snprintf(ref, sizeof(ref), "r-%d", i + 1);
		evs[i] = e2e_ev_referral(id, p, ref, "ml-tours");
	}
	e2e_assert(relais_submit(a, evs, 5, res, 30000) == 0, "submit: %s",
	    relais_errmsg(a));
	for (int i = 0; i < 5; i++) {
		e2e_expect_ok(res[i]);
		json_decref(res[i]);
		json_decref(evs[i]);
	}

	r = e2e_raw_open(b, "ml-tours", NULL);
	w = e2e_raw_hello(r, 2);
	e2e_assert_int(2, jint(w, "credit"), "credit in the welcome");
	json_decref(w);
	for (int round = 0; round < 3; round++) {
		/* Items up to the credit: 1-2, then 3-4, then 5. */
		long long last = round < 2 ? next + 1 : 5;

		while (next <= last) {
			json_t *m = e2e_raw_expect(r, "deliver", E2E_WAIT_MS), *item;
			size_t i;

			json_array_foreach(json_object_get(m, "items"), i, item) {
				e2e_assert_int(next, jint(item, "seq"), "delivered seq");
				e2e_assert_int(1, jint(item, "attempt"), "attempt");
				next++;
			}
			json_decref(m);
		}
		e2e_assert_int(last + 1, next, "next seq after the credit is used");
		/* Nothing more may come while the credit is used up. */
		{
			json_t *m = e2e_raw_recv(r, 300);
			e2e_assert(m == NULL, "a message beyond the credit: %s",
			    e2e_json_str(m));
		}
		h = health_agent(a, "ml-tours");
		e2e_assert_int(round < 2 ? 2 : 1, jint(h, "inflight"),
		    "deliveries in flight");
		e2e_assert_int(5 - (round < 2 ? 2 * round : 4), jint(h, "backlog"),
		    "backlog before the dack");
		json_decref(h);
		dack = json_pack("{s:i, s:s, s:I}", "v", 1, "cmd", "dack", "upto",
		    (json_int_t)last);
		if (round == 1)
			json_object_set_new(dack, "credit", json_integer(10));
		e2e_raw_send_json(r, dack);
		json_decref(dack);
	}
	{
		int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
		long long backlog;

		for (;;) {
			h = health_agent(a, "ml-tours");
			backlog = jint(h, "backlog");
			json_decref(h);
			if (backlog == 0)
				break;
			e2e_assert(rl_mono_ms() < deadline, "expected an empty "
			    "mailbox after the last dack, backlog is %lld", backlog);
		}
	}
	e2e_raw_close(&r);
	relais_close(&a);
}

/*
 * The sender of an event is the authenticated agent.  A "sender" (or
 * "recorded_at") in the payload is refused as unknown_field and records
 * nothing; a ZeroMQ routing id naming another agent changes nothing; the
 * delivery to the target names the real sender.
 */
static void
test_sender_is_authenticated_agent(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *a, *target;
	struct e2e_raw *r;
	json_t *ev, *res, *msg, *acks, *d, *e;
	long long seq;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "ft-nord", "france_travail", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");

	ev = e2e_ev_referral("spoof-1", "p-7", "r-spoof", "ml-tours");
	json_object_set_new(ev, "sender", json_string("ft-nord"));
	res = e2e_submit1(a, ev);
	e2e_expect_error(res, 106, "sender");
	json_decref(res);

	ev = e2e_ev_referral("spoof-2", "p-7", "r-spoof", "ml-tours");
	json_object_set_new(ev, "recorded_at", json_integer(946684800000LL));
	res = e2e_submit1(a, ev);
	e2e_expect_error(res, 106, "recorded_at");
	json_decref(res);
	e2e_assert_int(0, e2e_health(a, "events"), "events after spoofed sends");

	/* A routing id that names another agent is not an identity. */
	r = e2e_raw_open(b, "cs-pasteur", "ft-nord");
	msg = json_pack("{s:i, s:s, s:i, s:[o]}", "v", 1, "cmd", "submit",
	    "ref", 3, "events", e2e_ev_referral("real-1", "p-7", "r-real",
	    "ml-tours"));
	e2e_raw_send_json(r, msg);
	json_decref(msg);
	acks = e2e_raw_expect(r, "acks", E2E_WAIT_MS);
	e2e_assert_int(3, jint(acks, "ref"), "ref echoed in acks");
	res = json_array_get(json_object_get(acks, "results"), 0);
	e2e_expect_ok(res);
	seq = jint(res, "seq");

	target = e2e_connect(b, "ml-tours");
	d = e2e_next_delivery(target, E2E_WAIT_MS);
	e = json_object_get(d, "event");
	e2e_assert_str("event", jstr(d, "kind"), "delivery kind");
	e2e_assert_str("real-1", jstr(e, "event_id"), "delivered event_id");
	e2e_assert_str("cs-pasteur", jstr(e, "sender"),
	    "the sender the broker recorded (the key's agent, not the routing "
	    "id's)");
	e2e_assert_int(seq, jint(e, "log_seq"), "log_seq of the delivery");
	e2e_assert_int(jint(res, "recorded_at"), jint(e, "recorded_at"),
	    "recorded_at of the delivery");
	relais_ack(target, (uint64_t)jint(d, "seq"));
	json_decref(d);
	json_decref(acks);
	e2e_assert_int(1, e2e_health(a, "events"), "events recorded");
	e2e_raw_close(&r);
	relais_close(&target);
	relais_close(&a);
}

/*
 * An agent that stops calling the library for longer than three
 * heartbeats (a slow handler, a paused process) is marked gone by the
 * broker.  When it comes back and goes on receiving, its deliveries must
 * resume: PROTOCOL.md section 8 says the next hello resumes them, so the
 * client must say hello again, or the broker must take the agent back.
 */
static void
test_paused_agent_gets_deliveries_again(void **state)
{
	struct e2e_broker *b = e2e_broker_new("heartbeat_ms = 200\n"
	    "redeliver_ms = 100\nredeliver_max_ms = 100\nmax_attempts = 1000\n");
	relais_client *a, *t;
	json_t *res, *d;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	t = e2e_connect(b, "ml-tours");

	res = e2e_submit1(a, e2e_ev_referral("ev-1", "p-1", "r-1", "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
	d = e2e_next_delivery(t, E2E_WAIT_MS);
	e2e_assert_str("r-1", jstr(json_object_get(d, "event"), "referral"),
	    "first delivery");
	json_decref(d);

	/*
	 * The target's program is busy: it does not call the library until
	 * the broker has declared it gone (three heartbeats of silence).
	 * Meanwhile the unacknowledged item is redelivered into its queue.
	 */
	e2e_log_wait(b, "\"msg\":\"agent.gone\"", "\"agent\":\"ml-tours\"");

	/* It comes back, acknowledges, and a new referral is sent to it. */
	e2e_assert(relais_ack(t, 1) == 0, "dack: %s", relais_errmsg(t));
	res = e2e_submit1(a, e2e_ev_referral("ev-2", "p-2", "r-2", "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
	d = relais_next_delivery(t, E2E_WAIT_MS);
	e2e_assert(d != NULL, "the target, back after a pause, got no delivery "
	    "within %d ms (%s): the broker marked it gone and neither took it "
	    "back nor got a new hello", E2E_WAIT_MS, relais_errmsg(t));
	e2e_assert_str("r-2", jstr(json_object_get(d, "event"), "referral"),
	    "delivery after the pause");
	relais_ack(t, (uint64_t)jint(d, "seq"));
	json_decref(d);
	relais_close(&t);
	relais_close(&a);
}

/*
 * The referral lifecycle: referral.sent waits for a target that has never
 * connected, is delivered when it does, the acceptance goes back to the
 * sender; wrong agents, double answers, unknown referrals and unknown
 * targets are refused with their codes and record nothing.
 */
static void
test_referral_lifecycle(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *a, *t, *w;
	json_t *res, *d, *e, *h;
	long long events;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "ft-nord", "france_travail", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");

	res = e2e_submit1(a, e2e_ev_referral("ev-1", "p-1", "r-1", "ml-tours"));
	e2e_expect_ok(res);
	json_decref(res);
	h = health_agent(a, "ml-tours");
	e2e_assert(json_is_false(json_object_get(h, "online")),
	    "target online before it connects: %s", e2e_json_str(h));
	e2e_assert_int(1, jint(h, "backlog"), "target's backlog while offline");
	json_decref(h);

	/* The target connects later and gets it. */
	t = e2e_connect(b, "ml-tours");
	d = e2e_next_delivery(t, E2E_WAIT_MS);
	e = json_object_get(d, "event");
	e2e_assert_int(1, jint(d, "seq"), "first mailbox seq");
	e2e_assert_str("referral.sent", jstr(e, "type"), "delivered type");
	e2e_assert_str("r-1", jstr(e, "referral"), "delivered referral");
	e2e_assert_str("cs-pasteur", jstr(e, "sender"), "delivered sender");
	e2e_assert(relais_ack(t, 1) == 0, "dack: %s", relais_errmsg(t));
	json_decref(d);
	events = e2e_health(a, "events");
	e2e_assert_int(1, events, "events after the referral");

	/* A third agent may not answer. */
	w = e2e_connect(b, "ft-nord");
	res = e2e_submit1(w, e2e_ev_answer("referral.accepted", "w-1", "p-1", "r-1"));
	e2e_expect_error(res, 206, "referral");
	json_decref(res);
	/* Nor may the sender answer its own referral. */
	res = e2e_submit1(a, e2e_ev_answer("referral.accepted", "a-1", "p-1", "r-1"));
	e2e_expect_error(res, 206, "referral");
	json_decref(res);
	/* Nor may the target cancel it: only the sender can. */
	res = e2e_submit1(t, e2e_ev_answer("referral.cancelled", "t-0", "p-1", "r-1"));
	e2e_expect_error(res, 206, "referral");
	json_decref(res);
	e2e_assert_int(events, e2e_health(a, "events"), "events after refusals");

	/* The target accepts: the sender receives the acceptance. */
	res = e2e_submit1(t, e2e_ev_answer("referral.accepted", "t-1", "p-1", "r-1"));
	e2e_expect_ok(res);
	json_decref(res);
	d = e2e_next_delivery(a, E2E_WAIT_MS);
	e = json_object_get(d, "event");
	e2e_assert_str("referral.accepted", jstr(e, "type"),
	    "the sender's first delivery");
	e2e_assert_str("r-1", jstr(e, "referral"), "accepted referral");
	e2e_assert_str("ml-tours", jstr(e, "sender"), "acceptance sender");
	relais_ack(a, (uint64_t)jint(d, "seq"));
	json_decref(d);
	events = e2e_health(a, "events");
	e2e_assert_int(2, events, "events after the acceptance");

	/* Answering again is an impossible transition. */
	res = e2e_submit1(t, e2e_ev_answer("referral.accepted", "t-2", "p-1", "r-1"));
	e2e_expect_error(res, 207, NULL);
	json_decref(res);
	res = e2e_submit1(t, e2e_ev_answer("referral.declined", "t-3", "p-1", "r-1"));
	e2e_expect_error(res, 207, NULL);
	json_decref(res);
	res = e2e_submit1(a, e2e_ev_answer("referral.cancelled", "a-2", "p-1", "r-1"));
	e2e_expect_error(res, 207, NULL);
	json_decref(res);

	/* Unknown referral, unknown target, reused referral id, another
	 * participant's referral. */
	res = e2e_submit1(t, e2e_ev_answer("referral.accepted", "t-4", "p-1",
	    "r-404"));
	e2e_expect_error(res, 204, "referral");
	json_decref(res);
	res = e2e_submit1(a, e2e_ev_referral("ev-2", "p-1", "r-2", "nobody"));
	e2e_expect_error(res, 205, "to");
	json_decref(res);
	res = e2e_submit1(a, e2e_ev_referral("ev-3", "p-1", "r-1", "ml-tours"));
	e2e_expect_error(res, 208, "referral");
	json_decref(res);
	/* A referral is found among its participant's: r-1 is p-1's. */
	res = e2e_submit1(t, e2e_ev_answer("referral.accepted", "t-5", "p-2",
	    "r-1"));
	e2e_expect_error(res, 204, "referral");
	json_decref(res);
	e2e_assert_int(events, e2e_health(a, "events"), "events after refusals");

	/* Operators see counts, never a participant. */
	{
		relais_client *ops = e2e_connect(b, "ops");
		json_t *args = json_pack("{s:s}", "id", "p-1");
		json_t *data = relais_query(ops, "participant", args, 20000);

		e2e_assert(data == NULL, "an operator read a participant: %s",
		    e2e_json_str(data));
		e2e_assert_int(202, relais_last_code(ops),
		    "code of the refused participant query");
		json_decref(args);
		relais_close(&ops);
	}

	/* The refusals queued nothing: no more deliveries for anyone. */
	d = relais_next_delivery(t, 500);
	e2e_assert(d == NULL, "unexpected delivery to the target: %s",
	    e2e_json_str(d));
	d = relais_next_delivery(a, 500);
	e2e_assert(d == NULL, "unexpected delivery to the sender: %s",
	    e2e_json_str(d));
	relais_close(&w);
	relais_close(&t);
	relais_close(&a);
}

/*
 * The same event_id again gets "duplicate" with the original seq and
 * recorded_at; with other content it is a conflict; event_ids are per
 * agent; deduplication outlives a restart.
 */
static void
test_duplicates_and_conflicts(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *a, *o;
	json_t *res, *ev, *evs[2], *rs[2];
	long long seq, at;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");

	ev = e2e_ev_contact("c-1", "p-9");
	json_object_set_new(ev, "occurred_at", json_integer(1795000000000LL));
	res = e2e_submit1(a, json_deep_copy(ev));
	e2e_expect_ok(res);
	seq = jint(res, "seq");
	at = jint(res, "recorded_at");
	json_decref(res);

	res = e2e_submit1(a, json_deep_copy(ev));
	e2e_expect_dup(res);
	e2e_assert_int(seq, jint(res, "seq"), "seq of the duplicate");
	e2e_assert_int(at, jint(res, "recorded_at"), "recorded_at of the duplicate");
	e2e_assert_str("c-1", jstr(res, "event_id"), "event_id of the duplicate");
	json_decref(res);

	/* Same id, other content. */
	json_object_set_new(ev, "channel", json_string("in_person"));
	res = e2e_submit1(a, json_deep_copy(ev));
	e2e_expect_error(res, 203, "event_id");
	json_decref(res);
	e2e_assert_int(1, e2e_health(a, "events"), "events after dup and conflict");

	/* Twice in one batch: recorded once, the second is its duplicate. */
	evs[0] = e2e_ev_contact("c-2", "p-9");
	evs[1] = json_deep_copy(evs[0]);
	e2e_assert(relais_submit(a, evs, 2, rs, 30000) == 0, "submit: %s",
	    relais_errmsg(a));
	e2e_expect_ok(rs[0]);
	e2e_expect_dup(rs[1]);
	e2e_assert_int(jint(rs[0], "seq"), jint(rs[1], "seq"),
	    "seq of the in-batch duplicate");
	for (int i = 0; i < 2; i++) {
		json_decref(rs[i]);
		json_decref(evs[i]);
	}
	e2e_assert_int(2, e2e_health(a, "events"), "events after in-batch dup");

	/* Event ids are per agent: another agent may use c-1. */
	o = e2e_connect(b, "ml-tours");
	res = e2e_submit1(o, e2e_ev_contact("c-1", "p-9"));
	e2e_expect_ok(res);
	e2e_assert(jint(res, "seq") != seq, "another agent's c-1 got seq %lld, "
	    "the same as cs-pasteur's", seq);
	json_decref(res);
	relais_close(&o);
	relais_close(&a);

	/* Deduplication has no window: it survives a restart. */
	e2e_stop(b);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	json_object_set_new(ev, "channel", json_string("phone"));
	res = e2e_submit1(a, json_deep_copy(ev));
	e2e_expect_dup(res);
	e2e_assert_int(seq, jint(res, "seq"), "seq of the duplicate after restart");
	json_decref(res);
	e2e_assert_int(3, e2e_health(a, "events"), "events after restart");
	json_decref(ev);
	relais_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_auth_unknown_key_refused, e2e_teardown),
		cmocka_unit_test_teardown(test_sender_is_authenticated_agent,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_credit_flow_control, e2e_teardown),
		cmocka_unit_test_teardown(test_paused_agent_gets_deliveries_again,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_referral_lifecycle, e2e_teardown),
		cmocka_unit_test_teardown(test_duplicates_and_conflicts,
		    e2e_teardown),
	};

	if (getenv("E2E_FILTER") != NULL)
		cmocka_set_test_filter(getenv("E2E_FILTER"));
	return cmocka_run_group_tests_name("e2e_bus", tests, NULL, NULL);
}
