/*
 * Unit tests of proto/event.c: the catalogue, event_parse() field by field,
 * and the canonical encoding.
 *
 * Events are written as small tables of key/value pairs (struct spec) so a
 * test reads as "this valid event, with this field changed, is refused with
 * this code on this field".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

#define T0 INT64_C(1796000000000)   /* 2026-11-29, a plausible occurred_at */

/* ------------------------------------------------------------------ */
/* Building events                                                     */
/* ------------------------------------------------------------------ */

enum val_kind { V_STR, V_INT, V_UINT, V_BOOL, V_FLOAT, V_NIL, V_BIN, V_ARRAY, V_RAW };

struct val {
	enum val_kind kind;
	const char *s;
	size_t len;                 /* for V_STR/V_BIN with NUL bytes, and V_RAW */
	int64_t i;
	uint64_t u;
};

#define S(x)      ((struct val){ .kind = V_STR, .s = (x) })
#define SN(x, n)  ((struct val){ .kind = V_STR, .s = (x), .len = (n) })
#define I(x)      ((struct val){ .kind = V_INT, .i = (x) })
#define U(x)      ((struct val){ .kind = V_UINT, .u = (x) })
#define B(x)      ((struct val){ .kind = V_BOOL, .i = (x) })
#define FLOAT(x)  ((struct val){ .kind = V_FLOAT, .i = (x) })
#define NIL       ((struct val){ .kind = V_NIL })
#define BIN(x)    ((struct val){ .kind = V_BIN, .s = (x) })
#define BINN(x, n) ((struct val){ .kind = V_BIN, .s = (x), .len = (n) })
#define ARRAY     ((struct val){ .kind = V_ARRAY })
/* Bytes written as they are: a value in an encoding the packer would not choose. */
#define RAW(x)    ((struct val){ .kind = V_RAW, .s = (x), .len = sizeof(x) - 1 })

struct kv {
	const char *key;
	struct val v;
	bool optional;              /* the event stays valid without it */
};

#define MAX_KV 16

struct spec {
	int n;
	struct kv kv[MAX_KV];
};

#define COMMON(type) \
	{ "event_id", S("e-1"), false }, { "type", S(type), false }, \
	{ "occurred_at", I(T0), false }, { "participant", S("p-42"), false }

/* One valid event of every type, with every optional field set. */
static const struct spec examples[] = {
	{ 6, { { "event_id", S("e-1"), false }, { "type", S("outreach.intervention"), false },
	       { "occurred_at", I(T0), false }, { "place", S("public_space"), false },
	       { "qpv", S("QN03701M"), false }, { "contacts", I(12), false } } },
	{ 7, { COMMON("participant.identified"), { "qpv", S("QN03701M"), false },
	       { "age_band", S("under_26"), true }, { "source", S("outreach"), false } } },
	{ 5, { COMMON("contact.made"), { "channel", S("phone"), false } } },
	{ 5, { COMMON("barrier.identified"), { "barrier", S("mobility"), false } } },
	{ 5, { COMMON("barrier.lifted"), { "barrier", S("childcare_family"), false } } },
	{ 7, { COMMON("referral.sent"), { "referral", S("r-7"), false },
	       { "to", S("ml-tours"), false },
	       { "purpose", S("Accompagnement CEJ, mobilité"), false } } },
	{ 5, { COMMON("referral.accepted"), { "referral", S("r-7"), false } } },
	{ 6, { COMMON("referral.declined"), { "referral", S("r-7"), false },
	       { "reason", S("no_capacity"), false } } },
	{ 6, { COMMON("referral.cancelled"), { "referral", S("r-7"), false },
	       { "reason", S("the person moved to another city"), false } } },
	{ 6, { COMMON("appointment.scheduled"), { "appointment", S("a-1"), false },
	       { "at", I(T0 + 86400000), false } } },
	{ 5, { COMMON("appointment.attended"), { "appointment", S("a-1"), false } } },
	{ 6, { COMMON("appointment.missed"), { "appointment", S("a-1"), false },
	       { "excused", B(true), true } } },
	{ 5, { COMMON("support.started"), { "programme", S("PLIE parcours"), true } } },
	{ 5, { COMMON("support.ended"), { "outcome", S("dropped_out"), false } } },
	{ 5, { COMMON("enrollment.started"), { "scheme", S("cej"), false } } },
	{ 6, { COMMON("employment.started"), { "contract", S("cdd"), false },
	       { "ends_on", S("2027-06-30"), true } } },
	{ 5, { COMMON("confidence.assessed"), { "score", I(4), false } } },
	{ 5, { COMMON("participant.exited"), { "reason", S("stabilised"), false } } },
	{ 6, { COMMON("alert.acknowledged"), { "alert", S("al-3"), false },
	       { "note", S("called the mediator"), true } } },
	{ 6, { COMMON("alert.resolved"), { "alert", S("al-3"), false },
	       { "note", S("new referent"), true } } },
	{ 4, { COMMON("participant.erased") } },
};

#define NEXAMPLES (sizeof(examples) / sizeof(examples[0]))

static struct spec
example(const char *type)
{
	for (size_t i = 0; i < NEXAMPLES; i++)
		if (strcmp(examples[i].kv[1].v.s, type) == 0)
			return examples[i];
	fail_msg("no example of type %s", type);
	return examples[0];
}

/* The spec with key set to v: replaced where it is, appended otherwise. */
static struct spec
with(struct spec e, const char *key, struct val v)
{
	for (int i = 0; i < e.n; i++) {
		if (strcmp(e.kv[i].key, key) == 0) {
			e.kv[i].v = v;
			return e;
		}
	}
	assert_true(e.n < MAX_KV);
	e.kv[e.n++] = (struct kv){ key, v, false };
	return e;
}

static struct spec
without(struct spec e, const char *key)
{
	for (int i = 0; i < e.n; i++) {
		if (strcmp(e.kv[i].key, key) == 0) {
			memmove(&e.kv[i], &e.kv[i + 1], sizeof(e.kv[0]) * (size_t)(e.n - i - 1));
			e.n--;
			return e;
		}
	}
	return e;
}

static struct spec
reversed(struct spec e)
{
	struct spec r = { .n = e.n };

	for (int i = 0; i < e.n; i++)
		r.kv[i] = e.kv[e.n - 1 - i];
	return r;
}

static void
pack_val(msgpack_packer *pk, const struct val *v)
{
	size_t n = v->len != 0 ? v->len : (v->s != NULL ? strlen(v->s) : 0);

	switch (v->kind) {
	case V_STR:   msgpack_pack_str_with_body(pk, v->s, n); break;
	case V_BIN:   msgpack_pack_bin_with_body(pk, v->s, n); break;
	case V_INT:   msgpack_pack_int64(pk, v->i); break;
	case V_UINT:  msgpack_pack_uint64(pk, v->u); break;
	case V_BOOL:  v->i ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case V_FLOAT: msgpack_pack_double(pk, (double)v->i); break;
	case V_NIL:   msgpack_pack_nil(pk); break;
	case V_ARRAY: msgpack_pack_array(pk, 0); break;
	case V_RAW:   pk->callback(pk->data, v->s, v->len); break;
	}
}

static void
pack_spec(msgpack_packer *pk, const struct spec *e)
{
	msgpack_pack_map(pk, (size_t)e->n);
	for (int i = 0; i < e->n; i++) {
		msgpack_pack_str_with_body(pk, e->kv[i].key, strlen(e->kv[i].key));
		pack_val(pk, &e->kv[i].v);
	}
}

/*
 * The msgpack bytes and object of the last parse stay alive until the next
 * one, because a parsed event points into them.
 */
static msgpack_sbuffer wire;
static msgpack_unpacked unpacked;

static void
release_last(void)
{
	msgpack_sbuffer_destroy(&wire);
	msgpack_unpacked_destroy(&unpacked);
	msgpack_sbuffer_init(&wire);
	msgpack_unpacked_init(&unpacked);
}

static const msgpack_object *
unpack_bytes(void)
{
	size_t off = 0;

	assert_int_equal(msgpack_unpack_next(&unpacked, wire.data, wire.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	return &unpacked.data;
}

static int
parse(const struct spec *e, struct rl_event *ev, struct rl_error *err)
{
	msgpack_packer pk;

	release_last();
	msgpack_packer_init(&pk, &wire, msgpack_sbuffer_write);
	pack_spec(&pk, e);
	memset(err, 0, sizeof(*err));
	return event_parse(unpack_bytes(), ev, err);
}

static int
group_setup(void **state)
{
	msgpack_sbuffer_init(&wire);
	msgpack_unpacked_init(&unpacked);
	return 0;
}

static int
group_teardown(void **state)
{
	msgpack_sbuffer_destroy(&wire);
	msgpack_unpacked_destroy(&unpacked);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checks that say what they expected and what they got                */
/* ------------------------------------------------------------------ */

static void
check_parse(const struct spec *e, int code, const char *field,
    const char *file, int line)
{
	struct rl_event ev;
	struct rl_error err;
	int rc = parse(e, &ev, &err);

	if (rc == code && (code == RL_OK || strcmp(err.field, field) == 0))
		return;
	print_error("expected %d (%s) on field \"%s\"; got %d (%s) on field "
	    "\"%s\": %s\n", code, rl_code_name(code), field ? field : "", rc,
	    rl_code_name(rc), rc == RL_OK ? "" : err.field,
	    rc == RL_OK ? "accepted" : err.message);
	_fail(file, line);
}

#define expect_ok(e)                  check_parse(&(e), RL_OK, "", __FILE__, __LINE__)
#define expect_refused(e, code, field) check_parse(&(e), code, field, __FILE__, __LINE__)

static void
check_message(const struct spec *e, const char *wanted, const char *file,
    int line)
{
	struct rl_event ev;
	struct rl_error err;

	if (parse(e, &ev, &err) != RL_OK && strcmp(err.message, wanted) == 0)
		return;
	print_error("expected message \"%s\"\n     got message \"%s\"\n", wanted,
	    err.message);
	_fail(file, line);
}

#define expect_message(e, wanted) check_message(&(e), wanted, __FILE__, __LINE__)

static void
check_message_has(const struct spec *e, const char *part, const char *file,
    int line)
{
	struct rl_event ev;
	struct rl_error err;

	if (parse(e, &ev, &err) != RL_OK && strstr(err.message, part) != NULL)
		return;
	print_error("expected a message containing \"%s\"\n     got \"%s\"\n",
	    part, err.message);
	_fail(file, line);
}

#define expect_message_has(e, part) check_message_has(&(e), part, __FILE__, __LINE__)

static char *
repeat(char c, size_t n)
{
	static char buf[2][1024];
	static int which;
	char *b = buf[which ^= 1];

	assert_true(n < sizeof(buf[0]));
	memset(b, c, n);
	b[n] = '\0';
	return b;
}

/* ------------------------------------------------------------------ */
/* The catalogue                                                       */
/* ------------------------------------------------------------------ */

static void
test_type_names_round_trip(void **state)
{
	for (int t = 0; t < EV__COUNT; t++) {
		const char *name = ev_type_name((enum ev_type)t);
		assert_int_equal(ev_type_from_name(name, strlen(name)), t);
	}
	assert_string_equal(ev_type_name(EV_REFERRAL_SENT), "referral.sent");
	assert_string_equal(ev_type_name(EV_OUTREACH_INTERVENTION), "outreach.intervention");
	assert_string_equal(ev_type_name(EV_PARTICIPANT_ERASED), "participant.erased");
	assert_int_equal(ev_type_from_name("referral.sen", 12), -1);
	assert_int_equal(ev_type_from_name("referral.sent.", 14), -1);
	assert_int_equal(ev_type_from_name("Referral.sent", 13), -1);
	assert_int_equal(ev_type_from_name("", 0), -1);
	/* The length decides, not a NUL. */
	assert_int_equal(ev_type_from_name("contact.made-and-more", 12), EV_CONTACT_MADE);
}

static void
test_every_type_has_an_example(void **state)
{
	assert_int_equal(NEXAMPLES, EV__COUNT);
	for (int t = 0; t < EV__COUNT; t++)
		(void)example(ev_type_name((enum ev_type)t));
}

static void
test_field_names(void **state)
{
	static const char *const names[EF__COUNT] = {
		"event_id", "type", "occurred_at", "participant", "place", "qpv",
		"contacts", "age_band", "source", "channel", "barrier", "referral",
		"to", "purpose", "reason", "appointment", "at", "excused",
		"programme", "outcome", "scheme", "contract", "ends_on", "score",
		"alert", "note", "contact",
	};

	for (int f = 0; f < EF__COUNT; f++)
		assert_string_equal(ev_field_name((enum ev_field)f), names[f]);
}

static void
test_sender_rules(void **state)
{
	for (int t = 0; t < EV__COUNT; t++) {
		enum ev_sender_rule want = EV_ANY_PARTNER;

		switch ((enum ev_type)t) {
		case EV_REFERRAL_ACCEPTED:
		case EV_REFERRAL_DECLINED:  want = EV_REFERRAL_TARGET; break;
		case EV_REFERRAL_CANCELLED: want = EV_REFERRAL_SENDER; break;
		case EV_SUPPORT_ENDED:      want = EV_REFERENT; break;
		case EV_PARTICIPANT_EXITED: want = EV_REFERENT_OR_COORDINATOR; break;
		case EV_ALERT_ACKNOWLEDGED:
		case EV_ALERT_RESOLVED:
		case EV_PARTICIPANT_ERASED: want = EV_COORDINATOR; break;
		default: break;
		}
		if (ev_type_sender_rule((enum ev_type)t) != want)
			fail_msg("%s: expected sender rule %d, got %d",
			    ev_type_name((enum ev_type)t), want,
			    ev_type_sender_rule((enum ev_type)t));
	}
}

/* ------------------------------------------------------------------ */
/* Accepted events                                                     */
/* ------------------------------------------------------------------ */

static void
test_every_type_accepted(void **state)
{
	for (size_t i = 0; i < NEXAMPLES; i++) {
		struct rl_event ev;
		struct rl_error err;
		int rc = parse(&examples[i], &ev, &err);

		if (rc != RL_OK)
			fail_msg("%s refused: %d %s: %s", examples[i].kv[1].v.s, rc,
			    err.field, err.message);
		assert_string_equal(ev_type_name(ev.type), examples[i].kv[1].v.s);
		assert_int_equal(event_field_count(&ev), examples[i].n);
	}
}

static void
test_optional_fields_may_be_left_out(void **state)
{
	for (size_t i = 0; i < NEXAMPLES; i++)
		for (int k = 0; k < examples[i].n; k++)
			if (examples[i].kv[k].optional) {
				struct spec e = without(examples[i], examples[i].kv[k].key);
				expect_ok(e);
			}
}

static void
test_values_are_stored(void **state)
{
	struct spec e = example("referral.sent");
	struct rl_event ev;
	struct rl_error err;

	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_int_equal(ev.type, EV_REFERRAL_SENT);
	assert_int_equal(ev.occurred_at, T0);
	assert_int_equal(ev.to.len, 8);
	assert_memory_equal(ev.to.p, "ml-tours", 8);
	assert_int_equal(ev.participant.len, 4);
	assert_memory_equal(ev.participant.p, "p-42", 4);
	assert_true(event_has(&ev, EF_PURPOSE));
	assert_false(event_has(&ev, EF_NOTE));
	/* The strings point into the message: nothing was copied. */
	assert_true(ev.to.p > wire.data && ev.to.p < wire.data + wire.size);

	e = example("outreach.intervention");
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_int_equal(ev.contacts, 12);
	assert_false(event_has(&ev, EF_PARTICIPANT));

	e = example("confidence.assessed");
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_int_equal(ev.score, 4);

	e = example("appointment.scheduled");
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_int_equal(ev.at, T0 + 86400000);
}

static void
test_excused_present_only_when_sent(void **state)
{
	struct spec e = example("appointment.missed");
	struct rl_event ev;
	struct rl_error err;

	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_true(event_has(&ev, EF_EXCUSED));
	assert_true(ev.excused);

	e = with(e, "excused", B(false));
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_true(event_has(&ev, EF_EXCUSED));
	assert_false(ev.excused);

	e = without(e, "excused");
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_false(event_has(&ev, EF_EXCUSED));
	assert_false(ev.excused);
}

/* T0 as a signed 64-bit integer, the encoding a packer picks for int64_t. */
#define T0_AS_INT64 "\xd3\x00\x00\x01\xa2\x29\xf1\x28\x00"

static void
test_any_integer_encoding(void **state)
{
	struct spec e = example("outreach.intervention");

	e = with(e, "occurred_at", RAW(T0_AS_INT64));
	e = with(e, "contacts", RAW("\xcd\x00\x0c"));        /* 12 as uint 16 */
	expect_ok(e);
	e = with(example("confidence.assessed"), "score", RAW("\xd0\x04")); /* int 8 */
	expect_ok(e);
	e = with(e, "score", RAW("\xcf\x00\x00\x00\x00\x00\x00\x00\x05"));
	expect_ok(e);
	e = with(e, "score", RAW("\xd0\xfc"));                /* -4 */
	expect_refused(e, RL_E_BAD_FIELD, "score");
}

/* ------------------------------------------------------------------ */
/* Missing, unknown, duplicate                                          */
/* ------------------------------------------------------------------ */

static void
test_every_required_field_missing(void **state)
{
	for (size_t i = 0; i < NEXAMPLES; i++) {
		for (int k = 0; k < examples[i].n; k++) {
			const char *key = examples[i].kv[k].key;
			struct spec e = without(examples[i], key);

			if (examples[i].kv[k].optional)
				continue;
			expect_refused(e, RL_E_MISSING_FIELD, key);
		}
	}
}

static void
test_missing_messages(void **state)
{
	struct spec e = without(example("referral.sent"), "to");

	expect_message(e, "to is required in referral.sent events");
	e = without(example("contact.made"), "type");
	expect_message_has(e, "type is required");
}

static void
test_unknown_field(void **state)
{
	struct spec e = with(example("contact.made"), "name", S("Dupont"));

	expect_refused(e, RL_E_UNKNOWN_FIELD, "name");
	expect_message(e, "name is not a field of contact.made events; "
	    "remove it or check its spelling");

	/* A field of another type is just as unknown here. */
	e = with(example("contact.made"), "score", I(3));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "score");
	e = with(example("referral.accepted"), "reason", S("other"));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "reason");
	e = with(example("appointment.attended"), "excused", B(true));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "excused");

	/* The broker adds sender; it is never trusted from the payload. */
	e = with(example("contact.made"), "sender", S("ml-tours"));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "sender");
	e = with(example("contact.made"), "recorded_at", I(T0));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "recorded_at");
}

static void
test_unknown_field_name_made_printable(void **state)
{
	struct rl_event ev;
	struct rl_error err;
	struct spec e = with(example("contact.made"), "a\nb\x01", I(1));

	assert_int_equal(parse(&e, &ev, &err), RL_E_UNKNOWN_FIELD);
	assert_string_equal(err.field, "a?b?");

	e = with(example("contact.made"), repeat('k', 100), I(1));
	assert_int_equal(parse(&e, &ev, &err), RL_E_UNKNOWN_FIELD);
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
}

static void
test_participant_refused_on_outreach(void **state)
{
	struct spec e = with(example("outreach.intervention"), "participant", S("p-42"));

	expect_refused(e, RL_E_UNKNOWN_FIELD, "participant");
	expect_message_has(e, "outreach.intervention");
}

static void
test_duplicate_keys(void **state)
{
	struct spec e = example("contact.made");

	e.kv[e.n++] = (struct kv){ "channel", S("phone"), false };
	expect_refused(e, RL_E_BAD_FIELD, "channel");
	expect_message_has(e, "more than once");

	e = example("contact.made");
	e.kv[e.n++] = (struct kv){ "type", S("contact.made"), false };
	expect_refused(e, RL_E_BAD_FIELD, "type");

	e = example("contact.made");
	e.kv[e.n++] = (struct kv){ "participant", S("p-43"), false };
	expect_refused(e, RL_E_BAD_FIELD, "participant");
}

static void
test_not_a_map(void **state)
{
	struct rl_event ev;
	struct rl_error err;
	msgpack_packer pk;

	release_last();
	msgpack_packer_init(&pk, &wire, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, 1);
	assert_int_equal(event_parse(unpack_bytes(), &ev, &err), RL_E_BAD_FIELD);
	assert_string_equal(err.field, "");

	release_last();
	msgpack_packer_init(&pk, &wire, msgpack_sbuffer_write);
	msgpack_pack_str_with_body(&pk, "event", 5);
	assert_int_equal(event_parse(unpack_bytes(), &ev, &err), RL_E_BAD_FIELD);
	assert_string_equal(err.field, "");
}

static void
test_non_string_key(void **state)
{
	struct rl_event ev;
	struct rl_error err;
	struct spec e = example("contact.made");
	msgpack_packer pk;

	/* The valid event, then one more entry whose key is the integer 7. */
	release_last();
	msgpack_packer_init(&pk, &wire, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)e.n + 1);
	for (int i = 0; i < e.n; i++) {
		msgpack_pack_str_with_body(&pk, e.kv[i].key, strlen(e.kv[i].key));
		pack_val(&pk, &e.kv[i].v);
	}
	msgpack_pack_int(&pk, 7);
	msgpack_pack_str_with_body(&pk, "phone", 5);
	assert_int_equal(event_parse(unpack_bytes(), &ev, &err), RL_E_BAD_FIELD);
	assert_string_equal(err.field, "");
	assert_non_null(strstr(err.message, "keys must be strings"));
}

/* ------------------------------------------------------------------ */
/* The type                                                            */
/* ------------------------------------------------------------------ */

static void
test_type_field(void **state)
{
	struct spec e = with(example("contact.made"), "type", S("contact.lost"));

	expect_refused(e, RL_E_UNKNOWN_TYPE, "type");
	expect_message_has(e, "\"contact.lost\" is not an event type");
	e = with(e, "type", I(3));
	expect_refused(e, RL_E_BAD_FIELD, "type");
	e = with(e, "type", BIN("contact.made"));
	expect_refused(e, RL_E_BAD_FIELD, "type");
	e = without(e, "type");
	expect_refused(e, RL_E_MISSING_FIELD, "type");
}

/* ------------------------------------------------------------------ */
/* Wrong types, enums, lengths, patterns                               */
/* ------------------------------------------------------------------ */

static void
test_wrong_value_types(void **state)
{
	struct spec e;

	e = with(example("contact.made"), "event_id", I(1));
	expect_refused(e, RL_E_BAD_FIELD, "event_id");
	e = with(example("contact.made"), "occurred_at", S("2026-01-01"));
	expect_refused(e, RL_E_BAD_FIELD, "occurred_at");
	e = with(example("contact.made"), "occurred_at", FLOAT(T0));
	expect_refused(e, RL_E_BAD_FIELD, "occurred_at");
	e = with(example("contact.made"), "participant", NIL);
	expect_refused(e, RL_E_BAD_FIELD, "participant");
	e = with(example("contact.made"), "participant", BIN("p-42"));
	expect_refused(e, RL_E_BAD_FIELD, "participant");
	e = with(example("contact.made"), "channel", ARRAY);
	expect_refused(e, RL_E_BAD_FIELD, "channel");
	e = with(example("outreach.intervention"), "contacts", S("12"));
	expect_refused(e, RL_E_BAD_FIELD, "contacts");
	expect_message(e, "contacts must be an integer from 0 to 100000; got a string");
	e = with(example("confidence.assessed"), "score", FLOAT(4));
	expect_refused(e, RL_E_BAD_FIELD, "score");
	e = with(example("appointment.missed"), "excused", I(1));
	expect_refused(e, RL_E_BAD_FIELD, "excused");
	expect_message(e, "excused must be true or false; got an integer");
	e = with(example("appointment.missed"), "excused", S("yes"));
	expect_refused(e, RL_E_BAD_FIELD, "excused");
	e = with(example("employment.started"), "ends_on", I(20270630));
	expect_refused(e, RL_E_BAD_FIELD, "ends_on");
	e = with(example("support.started"), "programme", B(true));
	expect_refused(e, RL_E_BAD_FIELD, "programme");
}

static void
test_bad_enums(void **state)
{
	struct {
		const char *type, *field, *value, *message;
	} cases[] = {
		{ "outreach.intervention", "place", "street",
		  "place must be one of public_space, social_venue, event, door_to_door" },
		{ "participant.identified", "age_band", "18_25",
		  "age_band must be one of under_26, 26_49, 50_plus" },
		{ "participant.identified", "source", "police",
		  "source must be one of outreach, partner, self, landlord" },
		{ "contact.made", "channel", "email",
		  "channel must be one of in_person, phone, message, home_visit" },
		{ "barrier.identified", "barrier", "transport",
		  "barrier must be one of mobility, childcare_family, health, language, "
		  "housing, finances, administrative, digital, qualification, confidence" },
		{ "barrier.lifted", "barrier", "Mobility", NULL },
		{ "support.ended", "outcome", "finished",
		  "outcome must be one of completed, transferred, dropped_out, moved, "
		  "refused, other" },
		{ "enrollment.started", "scheme", "rsa",
		  "scheme must be one of france_travail, cej, plie, iae, training, "
		  "rsa_support, other" },
		{ "employment.started", "contract", "CDI",
		  "contract must be one of cdi, cdd, interim, iae, apprenticeship, other" },
		{ "referral.declined", "reason", "busy",
		  "reason must be one of no_capacity, not_eligible, could_not_contact, "
		  "not_interested, barrier_incompatible, duplicate, other" },
		{ "participant.exited", "reason", "no_capacity",
		  "reason must be one of stabilised, moved, refused, other" },
		{ "contact.made", "channel", "", NULL },
		{ "contact.made", "channel", "phone ", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spec e = with(example(cases[i].type), cases[i].field, S(cases[i].value));

		expect_refused(e, RL_E_BAD_FIELD, cases[i].field);
		if (cases[i].message != NULL)
			expect_message(e, cases[i].message);
	}
}

static void
test_every_enum_value_accepted(void **state)
{
	static const struct {
		const char *type, *field, *values[11];
	} cases[] = {
		{ "outreach.intervention", "place",
		  { "public_space", "social_venue", "event", "door_to_door" } },
		{ "participant.identified", "age_band", { "under_26", "26_49", "50_plus" } },
		{ "participant.identified", "source", { "outreach", "partner", "self", "landlord" } },
		{ "contact.made", "channel", { "in_person", "phone", "message", "home_visit" } },
		{ "barrier.identified", "barrier",
		  { "mobility", "childcare_family", "health", "language", "housing",
		    "finances", "administrative", "digital", "qualification", "confidence" } },
		{ "referral.declined", "reason",
		  { "no_capacity", "not_eligible", "could_not_contact", "not_interested",
		    "barrier_incompatible", "duplicate", "other" } },
		{ "support.ended", "outcome",
		  { "completed", "transferred", "dropped_out", "moved", "refused", "other" } },
		{ "enrollment.started", "scheme",
		  { "france_travail", "cej", "plie", "iae", "training", "rsa_support", "other" } },
		{ "employment.started", "contract",
		  { "cdi", "cdd", "interim", "iae", "apprenticeship", "other" } },
		{ "participant.exited", "reason", { "stabilised", "moved", "refused", "other" } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t v = 0; cases[i].values[v] != NULL; v++) {
			struct spec e = with(example(cases[i].type), cases[i].field,
			    S(cases[i].values[v]));
			expect_ok(e);
		}
	}
}

static void
test_reason_depends_on_type(void **state)
{
	struct spec e;

	/* A cancellation explains itself in free text... */
	e = with(example("referral.cancelled"), "reason", S("busy"));
	expect_ok(e);
	e = with(example("referral.cancelled"), "reason", S(repeat('x', 280)));
	expect_ok(e);
	e = with(example("referral.cancelled"), "reason", S(repeat('x', 281)));
	expect_refused(e, RL_E_BAD_FIELD, "reason");
	e = with(example("referral.cancelled"), "reason", S(""));
	expect_refused(e, RL_E_BAD_FIELD, "reason");
	/* ...a decline and an exit pick from their own lists. */
	e = with(example("referral.declined"), "reason", S("the person moved"));
	expect_refused(e, RL_E_BAD_FIELD, "reason");
	e = with(example("referral.declined"), "reason", S("stabilised"));
	expect_refused(e, RL_E_BAD_FIELD, "reason");
	e = with(example("participant.exited"), "reason", S("not_interested"));
	expect_refused(e, RL_E_BAD_FIELD, "reason");
}

static void
test_id_lengths(void **state)
{
	static const char *const id_fields[][2] = {
		{ "contact.made", "event_id" },
		{ "contact.made", "participant" },
		{ "referral.accepted", "referral" },
		{ "appointment.attended", "appointment" },
		{ "alert.resolved", "alert" },
		{ "participant.identified", "qpv" },
	};

	for (size_t i = 0; i < sizeof(id_fields) / sizeof(id_fields[0]); i++) {
		struct spec e = example(id_fields[i][0]);
		const char *field = id_fields[i][1];

		e = with(e, field, S(repeat('a', 64)));
		expect_ok(e);
		e = with(e, field, S(repeat('a', 65)));
		expect_refused(e, RL_E_BAD_FIELD, field);
		e = with(e, field, S(""));
		expect_refused(e, RL_E_BAD_FIELD, field);
	}
}

static void
test_id_patterns(void **state)
{
	static const char *const good[] = { "p-42", "A.b_c:D-9", "0", ":" };
	static const char *const bad[] = {
		"p 42", "p/42", "p@42", "pé", "p\n", "p,42", "p\"42",
	};
	struct spec e;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		e = with(example("contact.made"), "participant", S(good[i]));
		expect_ok(e);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = with(example("contact.made"), "participant", S(bad[i]));
		expect_refused(e, RL_E_BAD_FIELD, "participant");
		e = with(example("contact.made"), "event_id", S(bad[i]));
		expect_refused(e, RL_E_BAD_FIELD, "event_id");
	}
	e = with(example("contact.made"), "participant", SN("p\0q", 3));
	expect_refused(e, RL_E_BAD_FIELD, "participant");
	e = with(example("contact.made"), "participant", S("p 42"));
	expect_message(e, "participant must be 1 to 64 characters among "
	    "A-Z a-z 0-9 . _ : -");
}

static void
test_agent_id(void **state)
{
	struct spec e = example("referral.sent");

	e = with(e, "to", S(repeat('a', 48)));
	expect_ok(e);
	e = with(e, "to", S(repeat('a', 49)));
	expect_refused(e, RL_E_BAD_FIELD, "to");
	e = with(e, "to", S("ML-tours"));
	expect_refused(e, RL_E_BAD_FIELD, "to");
	e = with(e, "to", S("ml_tours"));
	expect_refused(e, RL_E_BAD_FIELD, "to");
	e = with(e, "to", S("ml.tours"));
	expect_refused(e, RL_E_BAD_FIELD, "to");
	e = with(e, "to", S(""));
	expect_refused(e, RL_E_BAD_FIELD, "to");
	e = with(e, "to", S("cd37-insertion-2"));
	expect_ok(e);
}

static void
test_free_text(void **state)
{
	static const struct {
		const char *type, *field;
	} texts[] = {
		{ "referral.sent", "purpose" },
		{ "referral.cancelled", "reason" },
		{ "support.started", "programme" },
		{ "alert.acknowledged", "note" },
		{ "alert.resolved", "note" },
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct spec e = example(texts[i].type);
		const char *f = texts[i].field;

		e = with(e, f, S(repeat('x', 280)));
		expect_ok(e);
		e = with(e, f, S(repeat('x', 281)));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S(""));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("Ligne 1\nligne 2\tfin, « mobilité » ✓ 🚲"));
		expect_ok(e);
		/* Not UTF-8: a lone continuation byte, a truncated sequence, an overlong '/'. */
		e = with(e, f, S("caf\xe9"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("x\x80y"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("\xe2\x82"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("\xc0\xaf"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("\xe0\x80\xaf"));     /* overlong in 3 bytes */
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("\xf4\x90\x80\x80"));  /* past U+10FFFF */
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("\xed\xa0\x80"));     /* a UTF-16 surrogate */
		expect_refused(e, RL_E_BAD_FIELD, f);
		/* Control characters would break logs and terminals. */
		e = with(e, f, S("bell\x07"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, S("esc\x1b[31m"));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, SN("nul\0byte", 8));
		expect_refused(e, RL_E_BAD_FIELD, f);
	}
}

static void
test_text_length_counts_bytes(void **state)
{
	char text[300];
	struct spec e;

	/* 140 two-byte characters are 280 bytes: the limit exactly. */
	for (int i = 0; i < 140; i++)
		memcpy(text + 2 * i, "\xc3\xa9", 2);
	text[280] = '\0';
	e = with(example("referral.sent"), "purpose", S(text));
	expect_ok(e);
	memcpy(text + 280, "\xc3\xa9", 3);
	e = with(example("referral.sent"), "purpose", S(text));
	expect_refused(e, RL_E_BAD_FIELD, "purpose");
	expect_message(e, "purpose must be 1 to 280 bytes of UTF-8 text without "
	    "control characters; got 282 bytes");
}

/* ------------------------------------------------------------------ */
/* Numbers, times and dates                                            */
/* ------------------------------------------------------------------ */

static void
test_time_bounds(void **state)
{
	static const char *const fields[][2] = {
		{ "contact.made", "occurred_at" },
		{ "appointment.scheduled", "at" },
	};

	for (size_t i = 0; i < 2; i++) {
		struct spec e = example(fields[i][0]);
		const char *f = fields[i][1];

		e = with(e, f, I(INT64_C(946684800000)));       /* 2000-01-01 */
		expect_ok(e);
		e = with(e, f, I(INT64_C(946684799999)));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, I(INT64_C(4102444799999)));      /* last ms of 2099 */
		expect_ok(e);
		e = with(e, f, I(INT64_C(4102444800000)));      /* 2100-01-01 */
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, I(1796000000));                  /* seconds, not ms */
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, I(-1));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, I(INT64_MIN));
		expect_refused(e, RL_E_BAD_FIELD, f);
		e = with(e, f, U(UINT64_MAX));
		expect_refused(e, RL_E_BAD_FIELD, f);
	}
	struct spec e = with(example("contact.made"), "occurred_at", I(1796000000));
	expect_message(e, "occurred_at must be an integer of milliseconds since the "
	    "Unix epoch, from 2000-01-01 (included) to 2100-01-01 (excluded); "
	    "got 1796000000");
}

static void
test_contacts_and_score(void **state)
{
	struct spec e = example("outreach.intervention");

	e = with(e, "contacts", I(0));
	expect_ok(e);
	e = with(e, "contacts", I(100000));
	expect_ok(e);
	e = with(e, "contacts", I(100001));
	expect_refused(e, RL_E_BAD_FIELD, "contacts");
	expect_message(e, "contacts must be an integer from 0 to 100000; got 100001");
	e = with(e, "contacts", I(-1));
	expect_refused(e, RL_E_BAD_FIELD, "contacts");

	e = example("confidence.assessed");
	for (int s = 1; s <= 5; s++) {
		e = with(e, "score", I(s));
		expect_ok(e);
	}
	e = with(e, "score", I(0));
	expect_refused(e, RL_E_BAD_FIELD, "score");
	e = with(e, "score", I(6));
	expect_refused(e, RL_E_BAD_FIELD, "score");
	expect_message(e, "score must be an integer from 1 to 5; got 6");
	e = with(e, "score", U(UINT64_MAX));
	expect_refused(e, RL_E_BAD_FIELD, "score");
	expect_message_has(e, "got 18446744073709551615");
}

static void
test_ends_on_is_a_real_date(void **state)
{
	static const char *const good[] = {
		"2027-06-30", "2028-02-29", "2000-02-29", "2026-12-31", "2026-01-01",
		"2099-12-31",
	};
	static const char *const bad[] = {
		"2026-02-30", "2026-02-29", "2100-02-29", "2026-13-01", "2026-00-10",
		"2026-04-31", "2026-01-00", "2026-01-32", "2026-1-01", "26-01-2026",
		"2026/01/01", "2026-01-01T00:00", "20260101", "", "abcd-ef-gh",
		"1999-12-31", "2100-01-01", "2026-0a-01", "+026-01-01",
	};
	struct spec e;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		e = with(example("employment.started"), "ends_on", S(good[i]));
		expect_ok(e);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = with(example("employment.started"), "ends_on", S(bad[i]));
		expect_refused(e, RL_E_BAD_FIELD, "ends_on");
	}
	e = with(example("employment.started"), "ends_on", S("2026-02-30"));
	expect_message(e, "ends_on must be a real calendar date YYYY-MM-DD from "
	    "2000-01-01 to 2099-12-31");
}

/* ------------------------------------------------------------------ */
/* Personal data                                                       */
/* ------------------------------------------------------------------ */

static void
test_looks_like_nir(void **state)
{
	static const char *const nir[] = {
		"1850578006084",                /* 13 digits */
		"185057800608436",              /* 15 digits: NIR and key */
		"1 85 05 78 006 084 36",        /* as printed on a carte Vitale */
		"1.85.05.78.006.084.36",
		"nir: 1 85 05 78 006 084 36, ok",
		"p-1850578006084",
		"1850578006084x",
		"x 2 91 12 75 123 456 78",
		"12 34 56 78 90 12 3",          /* 13 digits in groups */
		"1 85 05 78 006 084 36 12",     /* a NIR followed by a house number */
		"12345678901234567890",         /* longer runs hold a NIR-sized one */
		"1.  85. 05 78 006 084 36",
		"1-85-05-78-006-084-36",        /* any separator, as people write */
		"123456-7890123",
		"1/85/05/78/006/084/36",
		"1_85_05_78_006_084_36",
		"1\t85\t05\t78\t006\t084\t36",
		"(1) 85-05:78;006,084+36",
	};
	static const char *const not_nir[] = {
		"", "p-42", "123456789012",     /* 12 digits */
		"06 12 34 56 78",               /* a phone number: not this check's job */
		"12345678901a23",
		"2026-06-30", "r:2026:0001:17",
		". 123456789012",               /* separators before a run do not count */
		"123456789012 .",
		"12345 678 90 12 a 3",
		"2026-06-30 au 2026-07-30",     /* letters, not separators, end runs */
		"p-1-20-300-4000 e",
		"1234567\xc3\xa9" "890123",      /* and so does any byte that is not ASCII */
	};

	for (size_t i = 0; i < sizeof(nir) / sizeof(nir[0]); i++)
		if (!looks_like_nir(nir[i], strlen(nir[i])))
			fail_msg("expected \"%s\" to look like a NIR", nir[i]);
	for (size_t i = 0; i < sizeof(not_nir) / sizeof(not_nir[0]); i++)
		if (looks_like_nir(not_nir[i], strlen(not_nir[i])))
			fail_msg("expected \"%s\" not to look like a NIR", not_nir[i]);
	/* Only the given length is read. */
	assert_false(looks_like_nir("1850578006084", 12));
}

static void
test_nir_refused_everywhere(void **state)
{
	static const struct {
		const char *type, *field, *value;
	} cases[] = {
		{ "contact.made", "participant", "1850578006084" },
		{ "contact.made", "participant", "185057800608436" },
		{ "contact.made", "participant", "p.1.85.05.78.006.084.36" },
		{ "contact.made", "event_id", "e-1796000000000" },
		{ "referral.sent", "referral", "r-185057800608436" },
		{ "referral.sent", "purpose", "NIR 1 85 05 78 006 084 36 pour inscription" },
		{ "referral.cancelled", "reason", "duplicate of 2 91 12 75 123 456 78" },
		{ "support.started", "programme", "1850578006084" },
		{ "alert.acknowledged", "note", "sécu 1.85.05.78.006.084.36" },
		{ "participant.identified", "qpv", "1850578006084" },
		{ "appointment.attended", "appointment", "1850578006084" },
		{ "alert.resolved", "alert", "1850578006084" },
		/* Even where a string is not expected at all. */
		{ "outreach.intervention", "contacts", "1850578006084" },
		{ "employment.started", "ends_on", "1850578006084" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spec e = with(example(cases[i].type), cases[i].field,
		    S(cases[i].value));
		expect_refused(e, RL_E_PERSONAL_DATA, cases[i].field);
	}
	struct spec e = with(example("contact.made"), "participant", S("1850578006084"));
	expect_message_has(e, "participant holds a run of 13 or more digits");
}

static void
test_short_numbers_allowed(void **state)
{
	struct spec e;

	e = with(example("contact.made"), "participant", S("123456789012"));
	expect_ok(e);
	e = with(example("referral.sent"), "purpose",
	    S("RDV le 12.03 à 14 h, tél. agence 02 47 00 00 00"));
	expect_ok(e);
}

/* ------------------------------------------------------------------ */
/* Sealed contacts                                                     */
/* ------------------------------------------------------------------ */

static void canonical(const struct spec *e, msgpack_sbuffer *out);

/* A stand-in for a sealed box: the broker never looks inside. */
static char box[RL_CONTACT_MAX_BOX + 1];

static struct spec
with_box(size_t n)
{
	return with(example("referral.sent"), "contact", BINN(box, n));
}

static void
test_contact_is_a_bin_of_plausible_size(void **state)
{
	struct rl_event ev;
	struct rl_error err;
	struct spec e;

	memset(box, 'x', sizeof(box));
	e = with_box(RL_CONTACT_MIN_BOX);
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_true(event_has(&ev, EF_CONTACT));
	assert_int_equal(ev.contact.len, RL_CONTACT_MIN_BOX);
	assert_memory_equal(ev.contact.p, box, RL_CONTACT_MIN_BOX);
	e = with_box(RL_CONTACT_MAX_BOX);
	expect_ok(e);
	e = with_box(RL_CONTACT_MIN_BOX - 1);
	expect_refused(e, RL_E_BAD_FIELD, "contact");
	expect_message_has(e, "contact must be a sealed box");
	e = with_box(RL_CONTACT_MAX_BOX + 1);
	expect_refused(e, RL_E_BAD_FIELD, "contact");
	/* Details in clear are refused: a string is not a sealed box. */
	e = with(example("referral.sent"), "contact", S("Awa D. 06 12 34 56 78"));
	expect_refused(e, RL_E_BAD_FIELD, "contact");
	e = with(example("referral.sent"), "contact", S("Awa D. 1 85 05 78 006 084 36"));
	expect_refused(e, RL_E_PERSONAL_DATA, "contact");
	/* Only a referral carries one. */
	e = with(example("contact.made"), "contact", BINN(box, 60));
	expect_refused(e, RL_E_UNKNOWN_FIELD, "contact");
}

static void
test_nir_check_skips_sealed_bytes_only(void **state)
{
	struct spec e;

	/* Sealed bytes may hold any run of digits: nobody can read them. */
	memset(box, '7', sizeof(box));
	e = with_box(200);
	expect_ok(e);
	/* Every clear field of the same event is still checked. */
	e = with(with_box(200), "purpose", S("NIR 1 85 05 78 006 084 36"));
	expect_refused(e, RL_E_PERSONAL_DATA, "purpose");
	e = with(with_box(200), "participant", S("1850578006084"));
	expect_refused(e, RL_E_PERSONAL_DATA, "participant");
}

static void
test_dedup_ignores_the_box_bytes_only(void **state)
{
	struct rl_event ev;
	struct rl_error err;
	msgpack_sbuffer a, b, plain;
	struct spec e;
	size_t la, lb;

	memset(box, 'a', sizeof(box));
	e = with_box(80);
	canonical(&e, &a);
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	la = event_dedup_len(&ev, a.size);
	/* The contact is the last entry: the hashed part stops at its value. */
	assert_int_equal(la, a.size - 2 - 80);
	assert_memory_equal(a.data + la - 8, "\xa7" "contact", 8);

	memset(box, 'b', sizeof(box));
	e = with_box(90);
	canonical(&e, &b);
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	lb = event_dedup_len(&ev, b.size);
	assert_int_equal(la, lb);
	assert_memory_equal(a.data, b.data, la);

	/* Without a contact everything counts, and the hashed bytes differ. */
	e = example("referral.sent");
	canonical(&e, &plain);
	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	assert_int_equal(event_dedup_len(&ev, plain.size), plain.size);
	assert_true(plain.size != la || memcmp(plain.data, a.data, la) != 0);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	msgpack_sbuffer_destroy(&plain);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* The longest value descriptions fit in rl_error.message, whatever the field. */
static void
test_messages_are_never_cut(void **state)
{
	const struct val wrong[] = {
		NIL, ARRAY, BIN("x"), FLOAT(1), B(true), I(INT64_MIN), U(UINT64_MAX),
		RAW("\xd4\x01\x00"), S(repeat('x', 300)), S("not a valid value"),
	};

	for (size_t i = 0; i < NEXAMPLES; i++) {
		for (int k = 0; k < examples[i].n; k++) {
			for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
				struct spec e = with(examples[i], examples[i].kv[k].key, wrong[w]);
				struct rl_event ev;
				struct rl_error err;

				if (parse(&e, &ev, &err) == RL_OK)
					continue;
				if (strlen(err.message) >= sizeof(err.message) - 1)
					fail_msg("%s.%s: message cut: \"%s\"",
					    examples[i].kv[1].v.s, examples[i].kv[k].key,
					    err.message);
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* Canonical encoding                                                  */
/* ------------------------------------------------------------------ */

/* Parse e and return its canonical bytes in *out (to be destroyed). */
static void
canonical(const struct spec *e, msgpack_sbuffer *out)
{
	struct rl_event ev;
	struct rl_error err;
	msgpack_packer pk;
	int rc = parse(e, &ev, &err);

	if (rc != RL_OK)
		fail_msg("refused: %d %s: %s", rc, err.field, err.message);
	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	assert_int_equal(event_pack(&ev, &pk), 0);
}

static bool
same_bytes(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
	return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

static void
test_canonical_ignores_key_order(void **state)
{
	for (size_t i = 0; i < NEXAMPLES; i++) {
		msgpack_sbuffer a, b;
		struct spec r = reversed(examples[i]);

		canonical(&examples[i], &a);
		canonical(&r, &b);
		if (!same_bytes(&a, &b))
			fail_msg("%s: canonical bytes differ with the key order",
			    examples[i].kv[1].v.s);
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
	}
}

static void
test_canonical_ignores_integer_encoding(void **state)
{
	msgpack_sbuffer a, b;
	struct spec e = example("outreach.intervention");
	struct spec f = with(with(e, "contacts", RAW("\xd2\x00\x00\x00\x0c")),
	    "occurred_at", RAW(T0_AS_INT64));

	canonical(&e, &a);
	canonical(&f, &b);
	assert_true(same_bytes(&a, &b));
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
}

static void
test_canonical_differs_with_content(void **state)
{
	static const struct {
		const char *type, *field;
		struct val v;
	} changes[] = {
		{ "contact.made", "channel", { .kind = V_STR, .s = "in_person" } },
		{ "contact.made", "participant", { .kind = V_STR, .s = "p-43" } },
		{ "contact.made", "occurred_at", { .kind = V_INT, .i = T0 + 1 } },
		{ "contact.made", "event_id", { .kind = V_STR, .s = "e-2" } },
		{ "appointment.missed", "excused", { .kind = V_BOOL, .i = 0 } },
		{ "outreach.intervention", "contacts", { .kind = V_INT, .i = 13 } },
		{ "referral.sent", "purpose", { .kind = V_STR, .s = "Accompagnement CEJ" } },
	};

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		msgpack_sbuffer a, b;
		struct spec e = example(changes[i].type);
		struct spec f = with(e, changes[i].field, changes[i].v);

		canonical(&e, &a);
		canonical(&f, &b);
		if (same_bytes(&a, &b))
			fail_msg("changing %s of %s left the canonical bytes equal",
			    changes[i].field, changes[i].type);
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&b);
	}
}

static void
test_canonical_excused_only_when_present(void **state)
{
	msgpack_sbuffer absent, no;
	struct spec e = without(example("appointment.missed"), "excused");
	struct spec f = with(e, "excused", B(false));

	canonical(&e, &absent);
	canonical(&f, &no);
	assert_false(same_bytes(&absent, &no));
	assert_true(absent.size < no.size);
	msgpack_sbuffer_destroy(&absent);
	msgpack_sbuffer_destroy(&no);
}

/* The canonical map lists fields in enum ev_field order and parses back. */
static void
test_canonical_layout_and_round_trip(void **state)
{
	for (size_t i = 0; i < NEXAMPLES; i++) {
		msgpack_sbuffer bytes;
		msgpack_unpacked up;
		struct rl_event ev;
		struct rl_error err;
		size_t off = 0;
		int last = -1;

		canonical(&examples[i], &bytes);
		msgpack_unpacked_init(&up);
		assert_int_equal(msgpack_unpack_next(&up, bytes.data, bytes.size, &off),
		    MSGPACK_UNPACK_SUCCESS);
		assert_int_equal(off, bytes.size);
		assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
		assert_int_equal(up.data.via.map.size, examples[i].n);
		for (uint32_t k = 0; k < up.data.via.map.size; k++) {
			const msgpack_object *key = &up.data.via.map.ptr[k].key;
			int f;

			for (f = 0; f < EF__COUNT; f++)
				if (strlen(ev_field_name((enum ev_field)f)) == key->via.str.size &&
				    memcmp(ev_field_name((enum ev_field)f), key->via.str.ptr,
				    key->via.str.size) == 0)
					break;
			assert_true(f < EF__COUNT);
			assert_true(f > last);
			last = f;
		}
		assert_int_equal(event_parse(&up.data, &ev, &err), RL_OK);
		assert_string_equal(ev_type_name(ev.type), examples[i].kv[1].v.s);
		msgpack_unpacked_destroy(&up);
		msgpack_sbuffer_destroy(&bytes);
	}
}

static void
test_pack_exact_bytes(void **state)
{
	static const unsigned char want[] = {
		0x85,
		0xa8, 'e', 'v', 'e', 'n', 't', '_', 'i', 'd', 0xa3, 'e', '-', '1',
		0xa4, 't', 'y', 'p', 'e',
		0xac, 'c', 'o', 'n', 't', 'a', 'c', 't', '.', 'm', 'a', 'd', 'e',
		0xab, 'o', 'c', 'c', 'u', 'r', 'r', 'e', 'd', '_', 'a', 't',
		0xcf, 0x00, 0x00, 0x01, 0xa2, 0x29, 0xf1, 0x28, 0x00,
		0xab, 'p', 'a', 'r', 't', 'i', 'c', 'i', 'p', 'a', 'n', 't',
		0xa4, 'p', '-', '4', '2',
		0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0xa5, 'p', 'h', 'o', 'n', 'e',
	};
	msgpack_sbuffer out;
	struct spec e = reversed(example("contact.made"));

	canonical(&e, &out);
	assert_int_equal(out.size, sizeof(want));
	assert_memory_equal(out.data, want, sizeof(want));
	msgpack_sbuffer_destroy(&out);
}

/* The entries alone, for a record that embeds them in a larger map. */
static void
test_pack_fields_without_header(void **state)
{
	msgpack_sbuffer whole, entries;
	msgpack_packer pk;
	struct rl_event ev;
	struct rl_error err;
	struct spec e = example("referral.sent");

	assert_int_equal(parse(&e, &ev, &err), RL_OK);
	msgpack_sbuffer_init(&whole);
	msgpack_packer_init(&pk, &whole, msgpack_sbuffer_write);
	assert_int_equal(event_pack(&ev, &pk), 0);
	msgpack_sbuffer_init(&entries);
	msgpack_packer_init(&pk, &entries, msgpack_sbuffer_write);
	assert_int_equal(event_pack_fields(&ev, &pk), 0);

	/* 7 entries: a fixmap header of one byte is all that differs. */
	assert_int_equal(event_field_count(&ev), 7);
	assert_int_equal((unsigned char)whole.data[0], 0x87);
	assert_int_equal(entries.size + 1, whole.size);
	assert_memory_equal(entries.data, whole.data + 1, entries.size);
	msgpack_sbuffer_destroy(&whole);
	msgpack_sbuffer_destroy(&entries);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names_round_trip),
		cmocka_unit_test(test_every_type_has_an_example),
		cmocka_unit_test(test_field_names),
		cmocka_unit_test(test_sender_rules),
		cmocka_unit_test(test_every_type_accepted),
		cmocka_unit_test(test_optional_fields_may_be_left_out),
		cmocka_unit_test(test_values_are_stored),
		cmocka_unit_test(test_excused_present_only_when_sent),
		cmocka_unit_test(test_any_integer_encoding),
		cmocka_unit_test(test_every_required_field_missing),
		cmocka_unit_test(test_missing_messages),
		cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_unknown_field_name_made_printable),
		cmocka_unit_test(test_participant_refused_on_outreach),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_not_a_map),
		cmocka_unit_test(test_non_string_key),
		cmocka_unit_test(test_type_field),
		cmocka_unit_test(test_wrong_value_types),
		cmocka_unit_test(test_bad_enums),
		cmocka_unit_test(test_every_enum_value_accepted),
		cmocka_unit_test(test_reason_depends_on_type),
		cmocka_unit_test(test_id_lengths),
		cmocka_unit_test(test_id_patterns),
		cmocka_unit_test(test_agent_id),
		cmocka_unit_test(test_free_text),
		cmocka_unit_test(test_text_length_counts_bytes),
		cmocka_unit_test(test_time_bounds),
		cmocka_unit_test(test_contacts_and_score),
		cmocka_unit_test(test_ends_on_is_a_real_date),
		cmocka_unit_test(test_looks_like_nir),
		cmocka_unit_test(test_nir_refused_everywhere),
		cmocka_unit_test(test_short_numbers_allowed),
		cmocka_unit_test(test_contact_is_a_bin_of_plausible_size),
		cmocka_unit_test(test_nir_check_skips_sealed_bytes_only),
		cmocka_unit_test(test_dedup_ignores_the_box_bytes_only),
		cmocka_unit_test(test_messages_are_never_cut),
		cmocka_unit_test(test_canonical_ignores_key_order),
		cmocka_unit_test(test_canonical_ignores_integer_encoding),
		cmocka_unit_test(test_canonical_differs_with_content),
		cmocka_unit_test(test_canonical_excused_only_when_present),
		cmocka_unit_test(test_canonical_layout_and_round_trip),
		cmocka_unit_test(test_pack_exact_bytes),
		cmocka_unit_test(test_pack_fields_without_header),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
