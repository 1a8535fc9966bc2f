/*
 * proto/PROTOCOL.md read as an independent client reads it: raw CURVE
 * DEALER sockets and msgpack built by hand, every reply checked for the
 * code, the field and the types the document gives.  Covers what the
 * document says about health's fields, query arguments, the refusals of
 * who may send what, and which check wins when an event or a query breaks
 * several rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "frames.h"
#include "harness.h"

static uint64_t next_ref = 1000;

/* Send f (a whole message) and return the reply whose cmd is cmd. */
static json_t *
exchange(struct e2e_raw *r, struct frame *f, const char *cmd)
{
	e2e_raw_send(r, f->sb.data, f->sb.size);
	frame_free(f);
	return e2e_raw_expect(r, cmd, E2E_WAIT_MS);
}

/* Submit the one event packed in ev; its result (a new reference). */
static json_t *
submit_frame(struct e2e_raw *r, struct frame *ev)
{
	struct frame f;
	json_t *acks, *res;

	frame_init(&f);
	pk_head(&f.pk, "submit", ++next_ref, 1);
	codec_pack_str(&f.pk, "events");
	msgpack_pack_array(&f.pk, 1);
	msgpack_sbuffer_write(&f.sb, ev->sb.data, ev->sb.size);
	frame_free(ev);
	acks = exchange(r, &f, "acks");
	res = json_array_get(json_object_get(acks, "results"), 0);
	e2e_assert(res != NULL, "acks without a result: %s", e2e_json_str(acks));
	json_incref(res);
	json_decref(acks);
	return res;
}

/* Submit one event given as JSON (stolen). */
static json_t *
submit_json(struct e2e_raw *r, json_t *ev)
{
	json_t *msg = json_pack("{s:i, s:s, s:I, s:[o]}", "v", 1, "cmd", "submit",
	    "ref", (json_int_t)++next_ref, "events", ev);
	json_t *acks, *res;

	e2e_raw_send_json(r, msg);
	json_decref(msg);
	acks = e2e_raw_expect(r, "acks", E2E_WAIT_MS);
	res = json_array_get(json_object_get(acks, "results"), 0);
	e2e_assert(res != NULL, "acks without a result: %s", e2e_json_str(acks));
	json_incref(res);
	json_decref(acks);
	return res;
}

static void
expect_event_refused(struct e2e_raw *r, json_t *ev, int code, const char *field,
    const char *what)
{
	json_t *res = submit_json(r, ev);

	print_message("  %-48s -> %d %s\n", what, code, field);
	e2e_expect_error(res, code, field);
	json_decref(res);
}

static void
expect_frame_refused(struct e2e_raw *r, struct frame *ev, int code,
    const char *field, const char *what)
{
	json_t *res = submit_frame(r, ev);

	print_message("  %-48s -> %d %s\n", what, code, field);
	e2e_expect_error(res, code, field);
	json_decref(res);
}

static void
expect_accepted(struct e2e_raw *r, json_t *ev)
{
	json_t *res = submit_json(r, ev);

	e2e_expect_ok(res);
	json_decref(res);
}

/* An event with the common fields; more are added by the caller. */
static json_t *
event(const char *id, const char *type, const char *participant)
{
	json_t *ev = json_pack("{s:s, s:s, s:I}", "event_id", id, "type", type,
	    "occurred_at", (json_int_t)rl_wall_ms());

	if (participant != NULL)
		json_object_set_new(ev, "participant", json_string(participant));
	return ev;
}

static json_t *
with(json_t *ev, const char *key, const char *value)
{
	json_object_set_new(ev, key, json_string(value));
	return ev;
}

/* ---- health ---------------------------------------------------------- */

static void
expect_type(const json_t *o, const char *key, json_type type, const char *where)
{
	const json_t *v = json_object_get(o, key);

	e2e_assert(v != NULL, "%s: no %s in %s", where, key, e2e_json_str(o));
	e2e_assert(json_typeof(v) == type || (type == JSON_TRUE &&
	    json_is_boolean(v)), "%s: %s has the wrong type in %s", where, key,
	    e2e_json_str(o));
}

/*
 * Every field health documents, with the documented type.  Observed:
 * online was the string "yes" or "no"; it is a bool.
 */
static void
test_health_fields_have_their_documented_types(void **state)
{
	static const char *const counts[] = { "time", "events", "participants",
	    "open_alerts", "deadlines", "dead_letters", "accepted", "refused",
	    "last_sweep_us", "max_sweep_us", "last_sweep_scan_us",
	    "last_sweep_due", NULL };
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_raw *ops, *listener;
	struct frame f;
	json_t *res, *data, *agents, *w;
	size_t i;

	*state = b;
	e2e_agent_add(b, "ops", "operator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "cs", "social_centre", true);
	e2e_start(b);
	listener = e2e_raw_open(b, "ml", NULL);
	w = e2e_raw_hello(listener, 10);
	json_decref(w);
	ops = e2e_raw_open(b, "ops", NULL);

	frame_init(&f);
	pk_head(&f.pk, "query", 5, 1);
	codec_pack_kv_str(&f.pk, "what", "health");
	res = exchange(ops, &f, "result");
	data = json_object_get(res, "data");
	e2e_assert_str("ok", jstr(data, "status"), "health status");
	for (i = 0; counts[i] != NULL; i++)
		expect_type(data, counts[i], JSON_INTEGER, "health");
	agents = json_object_get(data, "agents");
	e2e_assert(json_array_size(agents) == 3, "three agents in %s",
	    e2e_json_str(data));
	for (i = 0; i < json_array_size(agents); i++) {
		json_t *a = json_array_get(agents, i);
		const char *id = jstr(a, "id");

		e2e_assert(id != NULL, "agent without id: %s", e2e_json_str(a));
		expect_type(a, "online", JSON_TRUE, id);
		expect_type(a, "backlog", JSON_INTEGER, id);
		expect_type(a, "inflight", JSON_INTEGER, id);
		expect_type(a, "silent", JSON_TRUE, id);
		expect_type(a, "overflowed", JSON_INTEGER, id);
		/* Only a connection that said hello takes deliveries. */
		e2e_assert(json_is_true(json_object_get(a, "online")) ==
		    (strcmp(id, "ml") == 0), "%s online: %s", id, e2e_json_str(a));
	}
	json_decref(res);
	e2e_raw_close(&ops);
	e2e_raw_close(&listener);
}

/* ---- query arguments ------------------------------------------------- */

/*
 * One query whose args break a rule: each arg is "key=text", "key#number"
 * (an unsigned integer) or "#=text" (the integer 7 as the key).
 */
struct args_case {
	const char *who, *what;
	const char *args[3];
	int code;
	const char *field;
	const char *name;
};

static const struct args_case args_cases[] = {
	{ "coord", "alerts", { "status=open", "status=all" }, 105, "status",
	    "alerts, status twice" },
	{ "coord", "participant", { "id=p-1", "id=p-2" }, 105, "id",
	    "participant, id twice" },
	{ "coord", "participants", { "#=x" }, 105, "args",
	    "participants, integer key" },
	{ "coord", "report", { "perod=2026" }, 106, "perod", "report, perod" },
	{ "coord", "report", { "period=2026", "bi=qpv" }, 106, "bi",
	    "report, bi" },
	{ "coord", "report", { "period=2026", "period=2025" }, 105, "period",
	    "report, period twice" },
	{ "ops", "clock", { "advance#1000" }, 106, "advance", "clock, advance" },
	{ "ml", "inbox", { "status=all" }, 106, "status", "inbox, any arg" },
	{ "ops", "deadletters", { "agent=ml", "agent=coord" }, 105, "agent",
	    "deadletters, agent twice" },
	/* Keys before values: an unknown key after a bad value still wins. */
	{ "coord", "alerts", { "status=every", "stauts=all" }, 106, "stauts",
	    "alerts, bad value then unknown key" },
	/* Who may ask at all comes before the args. */
	{ "ml", "alerts", { "stauts=all" }, 202, "what",
	    "alerts from a partner, unknown key" },
	/* Args before the rights they decide: a report's qpv. */
	{ "ops", "report", { "qpv=sanitas", "perod=2026" }, 106, "perod",
	    "report from an operator, qpv and perod" },
};

static void
pk_arg(msgpack_packer *pk, const char *arg)
{
	size_t key = strcspn(arg, "=#");

	if (arg[0] == '#') {
		msgpack_pack_int(pk, 7);
		codec_pack_str(pk, arg + 2);
		return;
	}
	codec_pack_strn(pk, arg, key);
	if (arg[key] == '#')
		msgpack_pack_uint64(pk, strtoull(arg + key + 1, NULL, 10));
	else
		codec_pack_str(pk, arg + key + 1);
}

/*
 * Every query checks its args like every other map.  Observed: a key given
 * twice was read once and the other ignored; report and clock took any
 * key (report {"perod": ...} was missing_field period, a misspelt "bi"
 * was ignored).
 */
static void
test_query_args_are_checked_key_by_key(void **state)
{
	static const char *const ids[] = { "coord", "ops", "ml" };
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");
	struct e2e_raw *raw[3];

	*state = b;
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	for (int i = 0; i < 3; i++)
		raw[i] = e2e_raw_open(b, ids[i], NULL);
	for (size_t c = 0; c < sizeof(args_cases) / sizeof(args_cases[0]); c++) {
		const struct args_case *t = &args_cases[c];
		struct frame f;
		uint32_t n = 0;
		int who = 0;
		json_t *res;

		while (strcmp(ids[who], t->who) != 0)
			who++;
		while (n < 3 && t->args[n] != NULL)
			n++;
		frame_init(&f);
		pk_head(&f.pk, "query", ++next_ref, 2);
		codec_pack_kv_str(&f.pk, "what", t->what);
		codec_pack_str(&f.pk, "args");
		msgpack_pack_map(&f.pk, n);
		for (uint32_t i = 0; i < n; i++)
			pk_arg(&f.pk, t->args[i]);
		print_message("  %-48s -> %d %s\n", t->name, t->code, t->field);
		res = exchange(raw[who], &f, "error");
		e2e_expect_error(res, t->code, t->field);
		json_decref(res);
	}
	for (int i = 0; i < 3; i++)
		e2e_raw_close(&raw[i]);
}

/* ---- who may send what ----------------------------------------------- */

/*
 * A code for every refusal: each one here was returned without PROTOCOL.md
 * naming it for that case.
 */
static void
test_every_refusal_has_its_documented_code(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_raw *med, *ml, *cs;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "cs", "social_centre", true);
	e2e_start(b);
	med = e2e_raw_open(b, "med", NULL);
	ml = e2e_raw_open(b, "ml", NULL);
	cs = e2e_raw_open(b, "cs", NULL);

	expect_accepted(med, with(with(event("id-1", "participant.identified",
	    "p-1"), "qpv", "sanitas"), "source", "outreach"));
	expect_accepted(med, with(with(event("id-2", "participant.identified",
	    "p-2"), "qpv", "sanitas"), "source", "outreach"));
	expect_accepted(med, e2e_ev_referral("ref-1", "p-1", "r-1", "ml"));

	/* participant on outreach.intervention: not a field of that type. */
	json_t *ev = with(with(event("out-1", "outreach.intervention", "p-1"),
	    "place", "public_space"), "qpv", "sanitas");
	json_object_set_new(ev, "contacts", json_integer(3));
	expect_event_refused(med, ev, 106, "participant",
	    "outreach.intervention with a participant");

	/* An answer naming another participant than the referral's. */
	expect_event_refused(ml, e2e_ev_answer("referral.accepted", "acc-1",
	    "p-2", "r-1"), 204, "referral", "acceptance naming another person");
	/* Answering or cancelling someone else's referral. */
	expect_event_refused(cs, e2e_ev_answer("referral.accepted", "acc-2",
	    "p-1", "r-1"), 206, "referral", "acceptance by a non-target");
	expect_event_refused(ml, e2e_ev_answer("referral.cancelled", "can-1",
	    "p-1", "r-1"), 206, "referral", "cancel by a non-sender");
	/* Referent-only events from an agent that is no referent. */
	expect_event_refused(cs, with(event("exit-1", "participant.exited",
	    "p-1"), "reason", "moved"), 202, "", "exit by a non-referent");
	expect_event_refused(cs, with(event("end-1", "support.ended", "p-1"),
	    "outcome", "completed"), 202, "", "support.ended by a non-referent");

	/* Free text: 1 to 280 bytes; tab, line feed and carriage return are
	 * text, other control characters are not. */
	expect_event_refused(med, with(with(with(event("ref-2", "referral.sent",
	    "p-1"), "referral", "r-2"), "to", "cs"), "purpose", ""), 105,
	    "purpose", "empty purpose");
	expect_event_refused(med, with(with(with(event("ref-3", "referral.sent",
	    "p-1"), "referral", "r-3"), "to", "cs"), "purpose", "a\x01z"), 105,
	    "purpose", "purpose with a control character");
	expect_accepted(med, with(with(with(event("ref-4", "referral.sent",
	    "p-1"), "referral", "r-4"), "to", "cs"), "purpose", "cv\r\n\tlettre"));

	e2e_raw_close(&cs);
	e2e_raw_close(&ml);
	e2e_raw_close(&med);
}

/* ---- which check wins ------------------------------------------------ */

/*
 * One event breaking several rules, its keys in the order given, as
 * query args are ("occurred_at=now" is the current time as an integer).
 */
struct event_case {
	const char *who;
	const char *keys[7];
	int code;
	const char *field;
	const char *name;
};

#define NOW "occurred_at=now"

static const struct event_case event_cases[] = {
	/* In map order: the first key at fault names the refusal. */
	{ "med", { "event_id=w-1", "type=contact.made", NOW, "colour=red",
	    "participant=p-1", "channel=fax" }, 106, "colour",
	    "unknown key, then bad value" },
	{ "med", { "event_id=w-2", "type=contact.made", NOW, "channel=fax",
	    "participant=p-1", "colour=red" }, 105, "channel",
	    "bad value, then unknown key" },
	/* type is read first, wherever it is. */
	{ "med", { "colour=red", "event_id=w-3", NOW, "participant=p-1",
	    "type=contact.sent" }, 200, "type", "unknown key, unknown type" },
	/* A value that looks like a NIR is personal_data, whatever its field
	 * expected. */
	{ "med", { "event_id=w-4", "type=contact.made", NOW, "participant=p-1",
	    "channel=1 85 05 78 006 084" }, 201, "channel",
	    "NIR in a choice field" },
	/* A bad value wins over a missing field, wherever it is. */
	{ "med", { "event_id=w-5", "type=contact.made", NOW, "channel=fax" },
	    105, "channel", "bad value, no participant" },
	/* A repeated key is bad_field on that key; a key that is no string
	 * is bad_field with no field. */
	{ "med", { "event_id=w-6", "type=contact.made", NOW, "participant=p-1",
	    "channel=phone", "channel=phone" }, 105, "channel",
	    "channel twice" },
	{ "med", { "type=contact.made", "#=x" }, 105, "",
	    "integer key in an event" },
	/* The event's fields before who may send it. */
	{ "ops", { "event_id=w-7", "type=contact.made", NOW, "participant=p-1",
	    "channel=fax" }, 105, "channel", "bad value from an operator" },
	{ "ops", { "event_id=w-8", "type=contact.made", NOW, "participant=p-1",
	    "channel=phone" }, 202, "type", "good event from an operator" },
};

/*
 * The order PROTOCOL.md gives for an event: size, then its type, then its
 * keys in the order sent (each key: unknown, repeated, a value that looks
 * like a NIR, a bad value), then a missing field, then who may send it,
 * then deduplication, then the QPV list, the referral and the state.
 */
static void
test_which_check_wins(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_raw *med, *ops;
	struct frame f;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	med = e2e_raw_open(b, "med", NULL);
	ops = e2e_raw_open(b, "ops", NULL);

	for (size_t c = 0; c < sizeof(event_cases) / sizeof(event_cases[0]); c++) {
		const struct event_case *t = &event_cases[c];
		uint32_t n = 0;

		while (n < 7 && t->keys[n] != NULL)
			n++;
		frame_init(&f);
		msgpack_pack_map(&f.pk, n);
		for (uint32_t i = 0; i < n; i++) {
			if (strcmp(t->keys[i], NOW) != 0) {
				pk_arg(&f.pk, t->keys[i]);
				continue;
			}
			codec_pack_str(&f.pk, "occurred_at");
			msgpack_pack_int64(&f.pk, rl_wall_ms());
		}
		expect_frame_refused(strcmp(t->who, "ops") == 0 ? ops : med, &f,
		    t->code, t->field, t->name);
	}

	/* Deduplication before the referral and the state: the same event_id
	 * with other content is a conflict, even when that content would be
	 * refused on its own. */
	expect_accepted(med, e2e_ev_contact("w-9", "p-1"));
	expect_event_refused(med, e2e_ev_referral("w-9", "p-1", "r-9", "nobody"),
	    203, "event_id", "reused id, unknown target");

	e2e_raw_close(&ops);
	e2e_raw_close(&med);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_health_fields_have_their_documented_types, e2e_teardown),
		cmocka_unit_test_teardown(test_query_args_are_checked_key_by_key,
		    e2e_teardown),
		cmocka_unit_test_teardown(
		    test_every_refusal_has_its_documented_code, e2e_teardown),
		cmocka_unit_test_teardown(test_which_check_wins, e2e_teardown),
	};

	if (getenv("E2E_FILTER") != NULL)
		cmocka_set_test_filter(getenv("E2E_FILTER"));
	return cmocka_run_group_tests_name("e2e_protocol", tests, NULL, NULL);
}
