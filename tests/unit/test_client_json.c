/*
 * Unit tests of the client's JSON <-> msgpack conversion and RFC 3339
 * parsing (agents/relais_json.h), and of the event_ids it makes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client_internal.h"
#include "event.h"
#include "relais_json.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* Pack j; returns 0 or -1 with the message in err. */
static int
pack(const json_t *j, msgpack_sbuffer *sb, char *field, char *err)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	return json_to_msgpack_field(j, &pk, field, 64, err, 256);
}

/* JSON text -> msgpack -> JSON, checking every step succeeds. */
static json_t *
round_trip(const char *text)
{
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	char field[64], err[256];
	size_t off = 0;
	json_t *in = json_loads(text, JSON_DECODE_ANY, NULL), *out;

	assert_non_null(in);
	if (pack(in, &sb, field, err) != 0)
		fail_msg("packing %s failed: %s", text, err);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, sb.size);
	out = msgpack_to_json(&up.data);
	assert_non_null(out);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	json_decref(in);
	return out;
}

/* Packing text must fail, naming field, with a message containing what. */
static void
expect_refused(const char *text, const char *field, const char *what)
{
	msgpack_sbuffer sb;
	char f[64], err[256];
	json_t *in = json_loads(text, JSON_DECODE_ANY, NULL);

	assert_non_null(in);
	if (pack(in, &sb, f, err) == 0)
		fail_msg("expected %s to be refused", text);
	if (strcmp(f, field) != 0)
		fail_msg("field: expected \"%s\", got \"%s\" (%s)", field, f, err);
	if (strstr(err, what) == NULL)
		fail_msg("message: expected it to contain \"%s\", got \"%s\"",
		    what, err);
	msgpack_sbuffer_destroy(&sb);
	json_decref(in);
}

static void
expect_time(const char *s, int64_t want)
{
	int64_t got = 0;

	if (relais_parse_time(s, &got) != 0)
		fail_msg("%s: refused, expected %lld", s, (long long)want);
	if (got != want)
		fail_msg("%s: expected %lld, got %lld", s, (long long)want,
		    (long long)got);
}

static void
expect_bad_time(const char *s)
{
	int64_t got = 0;

	if (relais_parse_time(s, &got) == 0)
		fail_msg("%s: expected refusal, got %lld", s ? s : "NULL",
		    (long long)got);
}

/* Unpack raw msgpack bytes and convert them. */
static json_t *
from_bytes(const char *bytes, size_t len)
{
	msgpack_unpacked up;
	size_t off = 0;
	json_t *j;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, bytes, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	j = msgpack_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	return j;
}

/* ------------------------------------------------------------------ */
/* RFC 3339                                                            */

static void
test_time_valid(void **state)
{
	(void)state;
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("2026-11-27T09:30:00Z", 1795771800000);
	expect_time("2026-11-27T09:30:00.250Z", 1795771800250);
	expect_time("2026-11-27T09:30:00.25Z", 1795771800250);
	expect_time("2026-11-27T09:30:00.2Z", 1795771800200);
	/* Digits beyond milliseconds are dropped, not rounded. */
	expect_time("2026-11-27T09:30:00.123999999Z", 1795771800123);
	expect_time("2026-11-27t09:30:00z", 1795771800000);
	expect_time("2026-11-27T10:30:00+01:00", 1795771800000);
	expect_time("2026-11-27T09:30:00+00:00", 1795771800000);
	expect_time("2026-03-01T04:15:00-05:30", 1772358300000);
	expect_time("2024-02-29T23:59:59Z", 1709251199000);
	expect_time("2000-02-29T00:00:00Z", 951782400000);
	expect_time("1969-12-31T23:59:59Z", -1000);
	expect_time("2099-12-31T23:59:59.999Z", 4102444799999);
	expect_time("0001-01-01T00:00:00Z", -62135596800000);
	expect_time("9999-12-31T23:59:59Z", 253402300799000);
}

static void
test_time_invalid(void **state)
{
	(void)state;
	expect_bad_time(NULL);
	expect_bad_time("");
	expect_bad_time("now");
	expect_bad_time("2026-11-27");
	expect_bad_time("2026-11-27T09:30Z");
	expect_bad_time("2026-11-27T09:30:00");         /* no zone */
	expect_bad_time("2026-11-27 09:30:00Z");        /* space for T */
	expect_bad_time("2026-11-27T09:30:00ZZ");       /* trailing junk */
	expect_bad_time("2026-11-27T09:30:00Z ");
	expect_bad_time(" 2026-11-27T09:30:00Z");
	expect_bad_time("26-11-27T09:30:00Z");
	expect_bad_time("2026-1-27T09:30:00Z");
	expect_bad_time("2026-13-01T00:00:00Z");        /* month 13 */
	expect_bad_time("2026-00-10T00:00:00Z");        /* month 0 */
	expect_bad_time("2026-11-00T00:00:00Z");        /* day 0 */
	expect_bad_time("2026-11-31T00:00:00Z");        /* November has 30 */
	expect_bad_time("2026-02-29T00:00:00Z");        /* not a leap year */
	expect_bad_time("1900-02-29T00:00:00Z");        /* century, not leap */
	expect_bad_time("2026-11-27T24:00:00Z");
	expect_bad_time("2026-11-27T23:60:00Z");
	expect_bad_time("2026-11-27T23:59:60Z");        /* leap second */
	expect_bad_time("2026-11-27T09:30:00.Z");       /* empty fraction */
	expect_bad_time("2026-11-27T09:30:00.1234567890Z");
	expect_bad_time("2026-11-27T09:30:00+0100");
	expect_bad_time("2026-11-27T09:30:00+24:00");
	expect_bad_time("2026-11-27T09:30:00+01:60");
	expect_bad_time("2026-11-27T09:30:00+1:00");
	expect_bad_time("2026-11-2xT09:30:00Z");
}

/* ------------------------------------------------------------------ */
/* JSON -> msgpack                                                     */

static void
test_scalars_round_trip(void **state)
{
	const char *text = "{\"s\":\"h\\u00e9llo\",\"zero\":0,\"neg\":-42,"
	    "\"big\":9223372036854775807,\"min\":-9223372036854775808,"
	    "\"t\":true,\"f\":false,\"n\":null,\"empty\":\"\"}";
	json_t *want = json_loads(text, 0, NULL);
	json_t *got = round_trip(text);

	(void)state;
	assert_true(json_equal(want, got));
	json_decref(want);
	json_decref(got);
}

static void
test_nested_round_trip(void **state)
{
	const char *text = "{\"a\":{\"b\":{\"c\":[1,[2,[3,{\"d\":\"e\"}]],{}]}},"
	    "\"list\":[],\"obj\":{}}";
	json_t *want = json_loads(text, 0, NULL);
	json_t *got = round_trip(text);

	(void)state;
	assert_true(json_equal(want, got));
	json_decref(want);
	json_decref(got);
}

/* Key order matters to nothing on the wire, but should survive anyway. */
static void
test_key_order_kept(void **state)
{
	json_t *got = round_trip("{\"z\":1,\"a\":2,\"m\":3}");
	char *text = json_dumps(got, JSON_COMPACT);

	(void)state;
	assert_string_equal(text, "{\"z\":1,\"a\":2,\"m\":3}");
	free(text);
	json_decref(got);
}

/* Strings with a NUL inside keep their length both ways. */
static void
test_embedded_nul(void **state)
{
	json_t *in = json_object(), *out;
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	char field[64], err[256];
	size_t off = 0;

	(void)state;
	json_object_set_new(in, "k", json_stringn("a\0b", 3));
	assert_int_equal(pack(in, &sb, field, err), 0);
	msgpack_unpacked_init(&up);
	msgpack_unpack_next(&up, sb.data, sb.size, &off);
	out = msgpack_to_json(&up.data);
	assert_non_null(out);
	assert_int_equal(json_string_length(json_object_get(out, "k")), 3);
	assert_memory_equal(json_string_value(json_object_get(out, "k")), "a\0b", 3);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	json_decref(in);
	json_decref(out);
}

static void
test_integers_packed_compactly(void **state)
{
	msgpack_sbuffer sb;
	char field[64], err[256];
	json_t *j = json_integer(5);

	(void)state;
	assert_int_equal(pack(j, &sb, field, err), 0);
	/* A positive fixint: one byte, which any msgpack reader takes as uint. */
	assert_int_equal(sb.size, 1);
	assert_int_equal((unsigned char)sb.data[0], 5);
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
}

static void
test_times_converted(void **state)
{
	json_t *got = round_trip("{\"type\":\"appointment.scheduled\","
	    "\"occurred_at\":\"2026-11-27T09:30:00Z\","
	    "\"at\":\"2026-11-27T10:30:00.500+01:00\","
	    "\"nested\":{\"at\":\"1970-01-01T00:00:01Z\"},"
	    "\"list\":[\"2026-11-27T09:30:00Z\"],"
	    "\"ends_on\":\"2026-12-31\"}");

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(got, "occurred_at")),
	    1795771800000);
	assert_int_equal(json_integer_value(json_object_get(got, "at")),
	    1795771800500);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(got, "nested"), "at")), 1000);
	/* Only members named occurred_at or at are times; the rest is data. */
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(got, "list"), 0)), "2026-11-27T09:30:00Z");
	assert_string_equal(json_string_value(json_object_get(got, "ends_on")),
	    "2026-12-31");
	json_decref(got);
}

/* Times already in milliseconds, or of a wrong type, pass untouched. */
static void
test_times_other_types_untouched(void **state)
{
	json_t *got = round_trip("{\"occurred_at\":1795771800000,\"at\":null}");

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(got, "occurred_at")),
	    1795771800000);
	assert_true(json_is_null(json_object_get(got, "at")));
	json_decref(got);
}

static void
test_bad_time_refused(void **state)
{
	(void)state;
	expect_refused("{\"type\":\"contact.made\","
	    "\"occurred_at\":\"2026-02-30T00:00:00Z\"}",
	    "occurred_at", "is not an RFC 3339 time");
	expect_refused("{\"at\":\"tomorrow\"}", "at", "2026-11-27T09:30:00Z");
	expect_refused("{\"x\":{\"at\":\"2026-11-27\"}}", "x", "x.at:");
}

static void
test_reals_refused(void **state)
{
	(void)state;
	expect_refused("{\"score\":3.5}", "score", "real number");
	expect_refused("{\"score\":3.0}", "score", "score: 3.0 is a real number");
	expect_refused("{\"a\":{\"b\":[1,2.5]}}", "a", "a.b[1]:");
	expect_refused("[1,{\"x\":0.1}]", "", "[1].x:");
	expect_refused("1e3", "", "value: 1000.0 is a real number");
}

static void
test_depth_limit(void **state)
{
	char text[256] = "";
	json_t *deep;
	msgpack_sbuffer sb;
	char field[64], err[256];

	(void)state;
	/* 40 nested arrays: more than RELAIS_JSON_MAX_DEPTH. */
	for (int i = 0; i < 40; i++)
		strcat(text, "[");
	for (int i = 0; i < 40; i++)
		strcat(text, "]");
	deep = json_loads(text, 0, NULL);
	assert_non_null(deep);
	assert_int_equal(pack(deep, &sb, field, err), -1);
	assert_non_null(strstr(err, "nested deeper"));
	msgpack_sbuffer_destroy(&sb);
	json_decref(deep);
}

/* The errbuf-only variant behaves the same, and a NULL value is refused. */
static void
test_plain_variant(void **state)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char err[256];
	json_t *j = json_loads("{\"x\":1.5}", 0, NULL);

	(void)state;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(json_to_msgpack(j, &pk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "x: 1.5 is a real number"));
	assert_int_equal(json_to_msgpack(NULL, &pk, err, sizeof(err)), -1);
	/* A tiny errbuf truncates the message but never overflows. */
	assert_int_equal(json_to_msgpack(j, &pk, err, 4), -1);
	assert_int_equal(strlen(err), 3);
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
}

/* ------------------------------------------------------------------ */
/* msgpack -> JSON                                                     */

static void
test_msgpack_non_string_key(void **state)
{
	/* {1: 2} */
	static const char bytes[] = { (char)0x81, 0x01, 0x02 };

	(void)state;
	assert_null(from_bytes(bytes, sizeof(bytes)));
}

static void
test_msgpack_uint64_too_big(void **state)
{
	/* uint64 0xffffffffffffffff, then INT64_MAX which fits */
	static const char huge[] = { (char)0xcf, -1, -1, -1, -1, -1, -1, -1, -1 };
	static const char max[] = { (char)0xcf, 0x7f, -1, -1, -1, -1, -1, -1, -1 };
	json_t *j;

	(void)state;
	assert_null(from_bytes(huge, sizeof(huge)));
	j = from_bytes(max, sizeof(max));
	assert_non_null(j);
	assert_true(json_integer_value(j) == INT64_MAX);
	json_decref(j);
}

static void
test_msgpack_float_and_negative(void **state)
{
	/* [1.5 as float64, -1 as int8, -200 as int16] */
	static const char bytes[] = { (char)0x93,
	    (char)0xcb, 0x3f, (char)0xf8, 0, 0, 0, 0, 0, 0,
	    (char)0xd0, -1, (char)0xd1, (char)0xff, 0x38 };
	json_t *j;

	(void)state;
	j = from_bytes(bytes, sizeof(bytes));
	assert_non_null(j);
	assert_true(json_is_real(json_array_get(j, 0)));
	assert_true(json_real_value(json_array_get(j, 0)) == 1.5);
	assert_int_equal(json_integer_value(json_array_get(j, 1)), -1);
	assert_int_equal(json_integer_value(json_array_get(j, 2)), -200);
	json_decref(j);
}

static void
test_msgpack_bad_utf8_and_ext(void **state)
{
	static const char bad_str[] = { (char)0xa2, (char)0xc3, 0x28 };
	static const char ext[] = { (char)0xd4, 0x01, 0x00 };

	(void)state;
	assert_null(from_bytes(bad_str, sizeof(bad_str)));
	assert_null(from_bytes(ext, sizeof(ext)));
	assert_null(msgpack_to_json(NULL));
}

/* Binary data (a sealed contact) becomes standard base64. */
static void
test_msgpack_bin_is_base64(void **state)
{
	static const char bin[] = { (char)0xc4, 0x04, 0x00, 0x01, 0x02, (char)0xff };
	json_t *j;

	(void)state;
	j = from_bytes(bin, sizeof(bin));
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "AAEC/w==");
	json_decref(j);
}

/* A bad value deep inside a map frees everything built so far. */
static void
test_msgpack_bad_value_nested(void **state)
{
	/* {"a": [1, {"b": <ext>}]} */
	static const char bytes[] = { (char)0x81, (char)0xa1, 'a',
	    (char)0x92, 0x01, (char)0x81, (char)0xa1, 'b', (char)0xd4, 0x01, 0x00 };

	(void)state;
	assert_null(from_bytes(bytes, sizeof(bytes)));
}

/*
 * Nesting past RELAIS_JSON_MAX_DEPTH is refused.  The tree is built by
 * hand: msgpack's own unpacker may stop at a smaller depth first.
 */
static void
test_msgpack_depth_limit(void **state)
{
	enum { DEPTH = RELAIS_JSON_MAX_DEPTH + 8 };
	msgpack_object nodes[DEPTH + 1];
	json_t *j;

	(void)state;
	nodes[DEPTH].type = MSGPACK_OBJECT_NIL;
	for (int i = DEPTH - 1; i >= 0; i--) {
		nodes[i].type = MSGPACK_OBJECT_ARRAY;
		nodes[i].via.array.size = 1;
		nodes[i].via.array.ptr = &nodes[i + 1];
	}
	assert_null(msgpack_to_json(&nodes[0]));
	/* Just inside the limit is fine. */
	j = msgpack_to_json(&nodes[DEPTH - RELAIS_JSON_MAX_DEPTH]);
	assert_non_null(j);
	json_decref(j);
}

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* event_ids                                                           */

/* An id is valid in an event, whatever its random part. */
static void
assert_valid_in_event(const char *id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	struct rl_event ev;
	struct rl_error err;
	size_t off = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "event_id", 8);
	msgpack_pack_str_with_body(&pk, id, strlen(id));
	msgpack_pack_str_with_body(&pk, "type", 4);
	msgpack_pack_str_with_body(&pk, "contact.made", 12);
	msgpack_pack_str_with_body(&pk, "occurred_at", 11);
	msgpack_pack_int64(&pk, 1796000000000);
	msgpack_pack_str_with_body(&pk, "participant", 11);
	msgpack_pack_str_with_body(&pk, "p-1", 3);
	msgpack_pack_str_with_body(&pk, "channel", 7);
	msgpack_pack_str_with_body(&pk, "phone", 5);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(event_parse(&up.data, &ev, &err), RL_OK);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_event_ids_sort_by_time(void **state)
{
	unsigned char low[EVENT_ID_RANDOM], high[EVENT_ID_RANDOM];
	char a[RELAIS_EVENT_ID_SIZE], b[RELAIS_EVENT_ID_SIZE];
	const uint64_t times[] = { 0, 1, 31, 32, 1796000000000, 1796000000001,
	    1796000000999, 1796000001000, (UINT64_C(1) << 45) - 1 };

	memset(low, 0, sizeof(low));
	memset(high, 0xff, sizeof(high));
	/* Later sorts after, even a later time with the smallest randomness. */
	for (size_t i = 0; i + 1 < sizeof(times) / sizeof(times[0]); i++) {
		client_format_event_id(a, times[i], high);
		client_format_event_id(b, times[i + 1], low);
		assert_true(strcmp(a, b) < 0);
		assert_int_equal(strlen(a), RELAIS_EVENT_ID_SIZE - 1);
		assert_valid_in_event(a);
	}
	/* The same millisecond: the random part tells ids apart. */
	client_format_event_id(a, 1796000000000, low);
	client_format_event_id(b, 1796000000000, high);
	assert_true(strcmp(a, b) != 0);
	/* Only letters after "ev-": no run of digits for the NIR check. */
	assert_int_equal(relais_new_event_id(a), 0);
	assert_int_equal(strncmp(a, "ev-", 3), 0);
	for (const char *p = a + 3; *p != '\0'; p++)
		assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'f'));
	assert_valid_in_event(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_valid),
		cmocka_unit_test(test_time_invalid),
		cmocka_unit_test(test_scalars_round_trip),
		cmocka_unit_test(test_nested_round_trip),
		cmocka_unit_test(test_key_order_kept),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_integers_packed_compactly),
		cmocka_unit_test(test_times_converted),
		cmocka_unit_test(test_times_other_types_untouched),
		cmocka_unit_test(test_bad_time_refused),
		cmocka_unit_test(test_reals_refused),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_plain_variant),
		cmocka_unit_test(test_msgpack_non_string_key),
		cmocka_unit_test(test_msgpack_uint64_too_big),
		cmocka_unit_test(test_msgpack_float_and_negative),
		cmocka_unit_test(test_msgpack_bad_utf8_and_ext),
		cmocka_unit_test(test_msgpack_bin_is_base64),
		cmocka_unit_test(test_msgpack_bad_value_nested),
		cmocka_unit_test(test_msgpack_depth_limit),
		cmocka_unit_test(test_event_ids_sort_by_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
