/*
 * Unit tests of proto/codec.c (request decoding, reply encoding) and of
 * proto/codes.c (the names and texts of the error codes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

static msgpack_sbuffer frame;
static msgpack_packer pk;
static msgpack_unpacked up;

/* Start a new frame: a map of n entries, to be written with pk. */
static void
begin(uint32_t n)
{
	msgpack_sbuffer_clear(&frame);
	msgpack_pack_map(&pk, n);
}

static void
key(const char *k)
{
	msgpack_pack_str_with_body(&pk, k, strlen(k));
}

static void
kv_str(const char *k, const char *v)
{
	key(k);
	msgpack_pack_str_with_body(&pk, v, strlen(v));
}

static void
kv_uint(const char *k, uint64_t v)
{
	key(k);
	msgpack_pack_uint64(&pk, v);
}

static void
kv_int(const char *k, int64_t v)
{
	key(k);
	msgpack_pack_int64(&pk, v);
}

/* The envelope every request starts with: "v": 1 and "cmd". */
static void
begin_cmd(const char *cmd, uint32_t extra)
{
	begin(2 + extra);
	kv_uint("v", 1);
	kv_str("cmd", cmd);
}

/* Bytes written as they are. */
static void
raw(const char *bytes, size_t n)
{
	msgpack_sbuffer_write(&frame, bytes, n);
}

static void
events_array(uint32_t n)
{
	key("events");
	msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++) {
		msgpack_pack_map(&pk, 1);
		kv_str("event_id", "e");
	}
}

static struct rl_request req;
static struct rl_error err;

static int
decode_bytes(const char *buf, size_t len)
{
	msgpack_unpacked_destroy(&up);
	msgpack_unpacked_init(&up);
	memset(&err, 0, sizeof(err));
	return codec_decode_request(buf, len, &up, &req, &err);
}

static int
decode(void)
{
	return decode_bytes(frame.data, frame.size);
}

static void
check_decode(int code, const char *field, const char *file, int line)
{
	int rc = decode();

	if (rc == code && (code == RL_OK || strcmp(err.field, field) == 0))
		return;
	print_error("expected %d (%s) on field \"%s\"; got %d (%s) on field "
	    "\"%s\": %s\n", code, rl_code_name(code), field, rc, rl_code_name(rc),
	    rc == RL_OK ? "" : err.field, rc == RL_OK ? "accepted" : err.message);
	_fail(file, line);
}

#define expect_ok()                  check_decode(RL_OK, "", __FILE__, __LINE__)
#define expect_refused(code, field)  check_decode(code, field, __FILE__, __LINE__)

static int
setup(void **state)
{
	msgpack_sbuffer_init(&frame);
	msgpack_packer_init(&pk, &frame, msgpack_sbuffer_write);
	msgpack_unpacked_init(&up);
	return 0;
}

static int
teardown(void **state)
{
	msgpack_sbuffer_destroy(&frame);
	msgpack_unpacked_destroy(&up);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Each command                                                        */
/* ------------------------------------------------------------------ */

static void
test_hello(void **state)
{
	begin_cmd("hello", 0);
	expect_ok();
	assert_int_equal(req.cmd, RL_CMD_HELLO);
	assert_false(req.has_credit);
	assert_false(req.has_ref);

	begin_cmd("hello", 2);
	kv_uint("credit", 100);
	kv_uint("ref", 7);
	expect_ok();
	assert_true(req.has_credit);
	assert_int_equal(req.credit, 100);
	assert_true(req.has_ref);
	assert_int_equal(req.ref, 7);
}

static void
test_credit_bounds(void **state)
{
	static const struct {
		int64_t credit;
		int code;
	} cases[] = {
		{ 1, RL_OK }, { 10000, RL_OK }, { 0, RL_E_BAD_FIELD },
		{ 10001, RL_E_BAD_FIELD }, { -1, RL_E_BAD_FIELD },
		{ INT64_MAX, RL_E_BAD_FIELD },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		begin_cmd("hello", 1);
		kv_int("credit", cases[i].credit);
		expect_refused(cases[i].code, "credit");
		begin_cmd("dack", 2);
		kv_uint("upto", 1);
		kv_int("credit", cases[i].credit);
		expect_refused(cases[i].code, "credit");
	}
	begin_cmd("hello", 1);
	kv_str("credit", "100");
	expect_refused(RL_E_BAD_FIELD, "credit");
	assert_string_equal(err.message, "credit must be an integer from 1 to 10000");
}

static void
test_submit(void **state)
{
	begin_cmd("submit", 2);
	kv_uint("ref", 3);
	events_array(2);
	expect_ok();
	assert_int_equal(req.cmd, RL_CMD_SUBMIT);
	assert_int_equal(req.nevents, 2);
	assert_non_null(req.events);
	assert_int_equal(req.events[0].type, MSGPACK_OBJECT_MAP);
	assert_int_equal(req.ref, 3);
}

static void
test_submit_items_are_not_validated_here(void **state)
{
	/* Each event is judged on its own later, so one bad item is no reason
	 * to refuse the batch. */
	begin_cmd("submit", 1);
	key("events");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_nil(&pk);
	msgpack_pack_map(&pk, 0);
	expect_ok();
	assert_int_equal(req.nevents, 3);
	assert_int_equal(req.events[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
}

static void
test_submit_batch_limits(void **state)
{
	begin_cmd("submit", 1);
	events_array(RL_MAX_BATCH);
	expect_ok();
	assert_int_equal(req.nevents, RL_MAX_BATCH);

	begin_cmd("submit", 1);
	events_array(RL_MAX_BATCH + 1);
	expect_refused(RL_E_BATCH_TOO_LARGE, "events");
	assert_non_null(strstr(err.message, "1001"));

	begin_cmd("submit", 1);
	events_array(0);
	expect_refused(RL_E_BAD_FIELD, "events");

	begin_cmd("submit", 1);
	kv_str("events", "e1");
	expect_refused(RL_E_BAD_FIELD, "events");

	begin_cmd("submit", 1);
	key("events");
	msgpack_pack_map(&pk, 0);
	expect_refused(RL_E_BAD_FIELD, "events");

	begin_cmd("submit", 0);
	expect_refused(RL_E_MISSING_FIELD, "events");
	assert_string_equal(err.message, "events is required in submit messages");
}

static void
test_dack(void **state)
{
	begin_cmd("dack", 1);
	kv_uint("upto", 13);
	expect_ok();
	assert_int_equal(req.cmd, RL_CMD_DACK);
	assert_true(req.has_upto);
	assert_int_equal(req.upto, 13);
	assert_false(req.has_credit);

	begin_cmd("dack", 2);
	kv_uint("upto", UINT64_MAX);
	kv_uint("credit", 5);
	expect_ok();
	assert_int_equal(req.upto, UINT64_MAX);
	assert_int_equal(req.credit, 5);

	begin_cmd("dack", 1);
	kv_uint("upto", 0);
	expect_ok();

	begin_cmd("dack", 0);
	expect_refused(RL_E_MISSING_FIELD, "upto");
	begin_cmd("dack", 1);
	kv_int("upto", -1);
	expect_refused(RL_E_BAD_FIELD, "upto");
	begin_cmd("dack", 1);
	kv_str("upto", "13");
	expect_refused(RL_E_BAD_FIELD, "upto");
}

static void
test_ping(void **state)
{
	begin_cmd("ping", 0);
	expect_ok();
	assert_int_equal(req.cmd, RL_CMD_PING);
	begin_cmd("ping", 1);
	kv_uint("ref", 0);
	expect_ok();
	assert_true(req.has_ref);
	assert_int_equal(req.ref, 0);
}

static void
test_query(void **state)
{
	begin_cmd("query", 1);
	kv_str("what", "health");
	expect_ok();
	assert_int_equal(req.cmd, RL_CMD_QUERY);
	assert_int_equal(req.what.len, 6);
	assert_memory_equal(req.what.p, "health", 6);
	assert_null(req.args);

	begin_cmd("query", 2);
	kv_str("what", "participant");
	key("args");
	msgpack_pack_map(&pk, 1);
	kv_str("participant", "p-42");
	expect_ok();
	assert_non_null(req.args);
	assert_true(codec_str_eq(codec_map_get(req.args, "participant"), "p-42"));

	begin_cmd("query", 0);
	expect_refused(RL_E_MISSING_FIELD, "what");
	begin_cmd("query", 1);
	kv_str("what", "");
	expect_refused(RL_E_BAD_FIELD, "what");
	begin_cmd("query", 1);
	kv_str("what", "abcdefghijklmnopqrstuvwxyz012345");     /* 32 */
	expect_ok();
	begin_cmd("query", 1);
	kv_str("what", "abcdefghijklmnopqrstuvwxyz0123456");    /* 33 */
	expect_refused(RL_E_BAD_FIELD, "what");
	begin_cmd("query", 1);
	kv_str("what", "al\nerts");
	expect_refused(RL_E_BAD_FIELD, "what");
	begin_cmd("query", 1);
	kv_uint("what", 1);
	expect_refused(RL_E_BAD_FIELD, "what");
	begin_cmd("query", 2);
	kv_str("what", "alerts");
	kv_str("args", "open");
	expect_refused(RL_E_BAD_FIELD, "args");
}

/* ------------------------------------------------------------------ */
/* Envelope                                                            */
/* ------------------------------------------------------------------ */

static void
test_version(void **state)
{
	begin(1);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");

	begin(2);
	kv_uint("v", 2);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");
	assert_non_null(strstr(err.message, "version 1"));

	begin(2);
	kv_uint("v", 0);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");

	begin(2);
	kv_str("v", "1");
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");

	begin(2);
	kv_int("v", -1);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");

	/* Any integer encoding of 1 will do. */
	begin(1);
	kv_str("cmd", "ping");
	frame.data[0] = (char)0x82;
	key("v");
	raw("\xcf\x00\x00\x00\x00\x00\x00\x00\x01", 9);
	expect_ok();
	begin(1);
	kv_str("cmd", "ping");
	frame.data[0] = (char)0x82;
	key("v");
	raw("\xd0\x01", 2);
	expect_ok();
}

static void
test_command(void **state)
{
	begin(1);
	kv_uint("v", 1);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");

	begin_cmd("publish", 0);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
	assert_non_null(strstr(err.message, "hello, submit, dack, ping, query"));

	begin_cmd("PING", 0);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
	begin_cmd("pin", 0);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
	begin_cmd("pings", 0);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
	/* Replies are the broker's: an agent cannot send one. */
	begin_cmd("welcome", 0);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");

	begin(2);
	kv_uint("v", 1);
	kv_uint("cmd", 1);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");

	begin(2);
	kv_uint("v", 1);
	key("cmd");
	msgpack_pack_bin_with_body(&pk, "ping", 4);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
}

static void
test_ref(void **state)
{
	begin_cmd("ping", 1);
	kv_int("ref", -5);
	expect_refused(RL_E_BAD_FIELD, "ref");
	assert_false(req.has_ref);

	begin_cmd("ping", 1);
	kv_str("ref", "7");
	expect_refused(RL_E_BAD_FIELD, "ref");

	begin_cmd("ping", 1);
	kv_uint("ref", UINT64_MAX);
	expect_ok();
	assert_int_equal(req.ref, UINT64_MAX);
}

static void
test_ref_kept_for_error_replies(void **state)
{
	/* The error reply echoes ref even when the rest of the message is bad. */
	begin(3);
	kv_uint("ref", 9);
	kv_uint("v", 2);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_VERSION, "v");
	assert_true(req.has_ref);
	assert_int_equal(req.ref, 9);

	begin_cmd("hello", 2);
	kv_uint("ref", 10);
	kv_uint("credit", 0);
	expect_refused(RL_E_BAD_FIELD, "credit");
	assert_true(req.has_ref);
	assert_int_equal(req.ref, 10);

	begin_cmd("nope", 1);
	kv_uint("ref", 11);
	expect_refused(RL_E_UNKNOWN_COMMAND, "cmd");
	assert_int_equal(req.ref, 11);
}

static void
test_unknown_fields(void **state)
{
	begin_cmd("ping", 1);
	kv_uint("refs", 1);
	expect_refused(RL_E_UNKNOWN_FIELD, "refs");
	assert_string_equal(err.message,
	    "refs is not a field of ping messages; remove it or check its spelling");

	/* A field of another command is just as unknown. */
	begin_cmd("hello", 1);
	kv_uint("upto", 1);
	expect_refused(RL_E_UNKNOWN_FIELD, "upto");
	begin_cmd("ping", 1);
	kv_uint("credit", 1);
	expect_refused(RL_E_UNKNOWN_FIELD, "credit");
	begin_cmd("submit", 2);
	events_array(1);
	kv_str("what", "x");
	expect_refused(RL_E_UNKNOWN_FIELD, "what");

	/* The sender is the key's, never the payload's. */
	begin_cmd("submit", 2);
	events_array(1);
	kv_str("sender", "ml-tours");
	expect_refused(RL_E_UNKNOWN_FIELD, "sender");

	begin_cmd("ping", 1);
	kv_uint("bad\x01key\n", 1);
	expect_refused(RL_E_UNKNOWN_FIELD, "bad?key?");
}

static void
test_duplicate_fields(void **state)
{
	begin_cmd("hello", 2);
	kv_uint("credit", 5);
	kv_uint("credit", 6);
	expect_refused(RL_E_BAD_FIELD, "credit");

	begin_cmd("ping", 1);
	kv_uint("v", 1);
	expect_refused(RL_E_BAD_FIELD, "v");

	begin_cmd("ping", 1);
	kv_str("cmd", "hello");
	expect_refused(RL_E_BAD_FIELD, "cmd");
}

/* ------------------------------------------------------------------ */
/* Frames that are not one map                                         */
/* ------------------------------------------------------------------ */

static void
test_every_truncation_refused(void **state)
{
	char copy[256];
	size_t full;

	begin_cmd("submit", 2);
	kv_uint("ref", 70000);
	events_array(2);
	full = frame.size;
	assert_true(full < sizeof(copy));
	memcpy(copy, frame.data, full);
	for (size_t len = 0; len < full; len++) {
		int rc = decode_bytes(copy, len);
		if (rc != RL_E_BAD_FRAME)
			fail_msg("a frame cut to %zu of %zu bytes: expected %d, got %d "
			    "(%s)", len, full, RL_E_BAD_FRAME, rc, err.message);
	}
	assert_int_equal(decode_bytes(copy, full), RL_OK);
}

static void
test_trailing_bytes(void **state)
{
	begin_cmd("ping", 0);
	raw("\xc0", 1);
	expect_refused(RL_E_BAD_FRAME, "");
	assert_non_null(strstr(err.message, "after its first msgpack value"));

	/* Two whole messages in one frame. */
	begin_cmd("ping", 0);
	msgpack_pack_map(&pk, 2);
	kv_uint("v", 1);
	kv_str("cmd", "ping");
	expect_refused(RL_E_BAD_FRAME, "");
}

static void
test_not_a_map(void **state)
{
	msgpack_sbuffer_clear(&frame);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_str_with_body(&pk, "ping", 4);
	expect_refused(RL_E_BAD_FRAME, "");

	msgpack_sbuffer_clear(&frame);
	msgpack_pack_str_with_body(&pk, "ping", 4);
	expect_refused(RL_E_BAD_FRAME, "");

	msgpack_sbuffer_clear(&frame);
	msgpack_pack_nil(&pk);
	expect_refused(RL_E_BAD_FRAME, "");

	assert_int_equal(decode_bytes("", 0), RL_E_BAD_FRAME);
	assert_int_equal(decode_bytes("{\"v\":1}", 7), RL_E_BAD_FRAME);
}

static void
test_non_string_keys(void **state)
{
	begin(3);
	kv_uint("v", 1);
	kv_str("cmd", "ping");
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 2);
	expect_refused(RL_E_BAD_FRAME, "");

	begin(2);
	key("v");
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_bin_with_body(&pk, "cmd", 3);
	msgpack_pack_str_with_body(&pk, "ping", 4);
	expect_refused(RL_E_BAD_FRAME, "");
}

static void
test_invalid_byte(void **state)
{
	begin_cmd("ping", 1);
	key("ref");
	raw("\xc1", 1);
	expect_refused(RL_E_BAD_FRAME, "");
	assert_non_null(strstr(err.message, "0xc1"));
}

static void
test_announced_sizes_are_not_trusted(void **state)
{
	/* Each of these announces far more than it holds; decoding must refuse
	 * them without asking for the memory they announce. */
	static const struct {
		const char *bytes;
		size_t len;
	} frames[] = {
		{ "\xdd\xff\xff\xff\xff", 5 },                  /* array 32 */
		{ "\xdf\xff\xff\xff\xff", 5 },                  /* map 32 */
		{ "\x81\xa1v\xdd\x7f\xff\xff\xff", 8 },         /* nested array */
		{ "\xdb\xff\xff\xff\xff" "abc", 8 },            /* str 32 */
		{ "\xc6\xff\xff\xff\xff" "abc", 8 },            /* bin 32 */
		{ "\xc9\xff\xff\xff\xff\x01" "abc", 9 },        /* ext 32 */
		{ "\xde\x00\x03\xa1v\x01", 6 },                 /* map 16 */
		{ "\x9f\xc0\xc0", 3 },                          /* fixarray */
	};

	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		int rc = decode_bytes(frames[i].bytes, frames[i].len);
		if (rc != RL_E_BAD_FRAME)
			fail_msg("frame %zu: expected %d, got %d", i, RL_E_BAD_FRAME, rc);
		if (i < 3 && strstr(err.message, "more entries than the frame holds") == NULL)
			fail_msg("frame %zu: expected the announced size to be the "
			    "reason, got \"%s\"", i, err.message);
	}
}

static void
test_deep_nesting(void **state)
{
	begin_cmd("query", 2);
	kv_str("what", "x");
	key("args");
	for (int i = 0; i < 100; i++) {
		msgpack_pack_map(&pk, 1);
		key("a");
	}
	msgpack_pack_nil(&pk);
	expect_refused(RL_E_BAD_FRAME, "");
}

/*
 * Every msgpack format, each at the size that makes the packer choose it,
 * can travel in a query's args: the frame check must measure them all.
 */
static void
test_every_msgpack_format_in_args(void **state)
{
	static const size_t sizes[] = { 1, 2, 4, 8, 16, 3, 300, 70000 };
	static char blob[70000];
	uint32_t n = 0;

	begin_cmd("query", 2);
	kv_str("what", "x");
	key("args");
	msgpack_pack_map(&pk, 5);

	key("ints");
	msgpack_pack_array(&pk, 12);
	msgpack_pack_uint64(&pk, 5);
	msgpack_pack_uint64(&pk, 200);
	msgpack_pack_uint64(&pk, 300);
	msgpack_pack_uint64(&pk, 70000);
	msgpack_pack_uint64(&pk, UINT64_C(1) << 40);
	msgpack_pack_int64(&pk, -5);
	msgpack_pack_int64(&pk, -100);
	msgpack_pack_int64(&pk, -300);
	msgpack_pack_int64(&pk, -70000);
	msgpack_pack_int64(&pk, -(INT64_C(1) << 40));
	msgpack_pack_float(&pk, 1.5f);
	msgpack_pack_double(&pk, 2.5);

	key("ext");         /* fixext 1, 2, 4, 8, 16; ext 8, 16, 32 */
	msgpack_pack_array(&pk, 8);
	for (size_t i = 0; i < 8; i++)
		msgpack_pack_ext_with_body(&pk, blob, sizes[i], 7);

	key("bytes");       /* bin 8, 16, 32; fixstr short and long; str 8, 16, 32 */
	msgpack_pack_array(&pk, 9);
	for (size_t i = 5; i < 8; i++)
		msgpack_pack_bin_with_body(&pk, blob, sizes[i]);
	msgpack_pack_str_with_body(&pk, blob, 3);
	msgpack_pack_str_with_body(&pk, blob, 31);
	msgpack_pack_str_with_body(&pk, blob, 40);
	msgpack_pack_str_with_body(&pk, blob, 300);
	msgpack_pack_str_with_body(&pk, blob, 70000);
	msgpack_pack_nil(&pk);

	/*
	 * The 32-bit headers, written by hand: a packer uses them only for
	 * 65536 entries or more, more values than a frame may hold.
	 */
	key("array32");     /* and nil, true, false inside */
	raw("\xdd\0\0\0\3", 5);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);

	key("maps");        /* fixmap, map 16, map 32, array 16 */
	msgpack_pack_array(&pk, 4);
	msgpack_pack_map(&pk, 1);
	kv_uint("a", 1);
	msgpack_pack_map(&pk, 16);
	for (uint32_t i = 0; i < 16; i++, n++) {
		msgpack_pack_uint32(&pk, n);
		msgpack_pack_nil(&pk);
	}
	raw("\xdf\0\0\0\2", 5);
	for (uint32_t i = 0; i < 2; i++, n++) {
		msgpack_pack_uint32(&pk, n);
		msgpack_pack_int8(&pk, -1);
	}
	msgpack_pack_array(&pk, 16);
	for (uint32_t i = 0; i < 16; i++)
		msgpack_pack_uint16(&pk, 300);

	expect_ok();
	assert_int_equal(req.args->via.map.size, 5);
}

static void
test_frame_size_limit(void **state)
{
	size_t len = RL_MAX_FRAME_BYTES + 1;
	char *big = calloc(1, len);
	size_t pad;

	assert_non_null(big);
	/* Refused on its size alone, whatever it holds. */
	assert_int_equal(decode_bytes(big, len), RL_E_TOO_LARGE);
	assert_string_equal(err.field, "");
	assert_string_equal(err.message,
	    "the frame is 393217 bytes; the limit is 393216 bytes");

	/* A valid message of exactly the limit is accepted. */
	begin_cmd("query", 2);
	kv_str("what", "x");
	key("args");
	msgpack_pack_map(&pk, 1);
	key("blob");
	pad = RL_MAX_FRAME_BYTES - frame.size - 5;       /* bin 32 header */
	msgpack_pack_bin(&pk, pad);
	msgpack_pack_bin_body(&pk, big, pad);
	assert_int_equal(frame.size, RL_MAX_FRAME_BYTES);
	expect_ok();
	msgpack_pack_nil(&pk);
	expect_refused(RL_E_TOO_LARGE, "");
	free(big);
}

/*
 * A frame's values are counted before it is decoded: a small frame of
 * many nils would take 24 bytes of memory per byte sent.
 */
static void
test_frame_values_limit(void **state)
{
	uint32_t room;

	/* Exactly the limit: the map, "v", 1, "cmd", "query", "what", "x",
	 * "args", the args map, then "blob" and an array of nils. */
	begin_cmd("query", 2);
	kv_str("what", "x");
	key("args");
	msgpack_pack_map(&pk, 1);
	key("blob");
	room = RL_MAX_FRAME_VALUES - 11;
	msgpack_pack_array(&pk, room);
	for (uint32_t i = 0; i < room; i++)
		msgpack_pack_nil(&pk);
	expect_ok();
	assert_int_equal(req.values, RL_MAX_FRAME_VALUES);

	/* One more value is refused, before msgpack-c allocates anything. */
	begin_cmd("query", 2);
	kv_str("what", "x");
	key("args");
	msgpack_pack_map(&pk, 1);
	key("blob");
	msgpack_pack_array(&pk, room + 1);
	for (uint32_t i = 0; i < room + 1; i++)
		msgpack_pack_nil(&pk);
	expect_refused(RL_E_TOO_LARGE, "");
	assert_non_null(strstr(err.message, "more than 65536 msgpack values"));

	/* A frame of nils in a submit: refused on the count alone. */
	begin_cmd("submit", 1);
	key("events");
	msgpack_pack_array(&pk, RL_MAX_FRAME_BYTES - 32);
	for (uint32_t i = 0; i < RL_MAX_FRAME_BYTES - 32; i++)
		msgpack_pack_nil(&pk);
	expect_refused(RL_E_TOO_LARGE, "");
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* Unpack the frame built so far as a reply (not a request). */
static const msgpack_object *
unpack_reply(void)
{
	size_t off = 0;

	msgpack_unpacked_destroy(&up);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, frame.data, frame.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, frame.size);
	assert_int_equal(up.data.type, MSGPACK_OBJECT_MAP);
	return &up.data;
}

static void
assert_str_value(const msgpack_object *map, const char *k, const char *want)
{
	const msgpack_object *v = codec_map_get(map, k);

	assert_non_null(v);
	assert_int_equal(v->type, MSGPACK_OBJECT_STR);
	if (!codec_str_eq(v, want))
		fail_msg("%s: expected \"%s\", got \"%.*s\"", k, want,
		    (int)v->via.str.size, v->via.str.ptr);
}

static void
assert_uint_value(const msgpack_object *map, const char *k, uint64_t want)
{
	const msgpack_object *v = codec_map_get(map, k);

	assert_non_null(v);
	assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(v->via.u64, want);
}

static void
test_pack_error(void **state)
{
	struct rl_error e;
	const msgpack_object *m;

	rl_error_set(&e, RL_E_BAD_FIELD, "credit", "credit must be %s", "1 to 10000");
	msgpack_sbuffer_clear(&frame);
	codec_pack_error(&pk, &e, true, 42);
	m = unpack_reply();
	assert_int_equal(m->via.map.size, 7);
	assert_uint_value(m, "v", 1);
	assert_str_value(m, "cmd", "error");
	assert_uint_value(m, "code", 105);
	assert_str_value(m, "error", "bad_field");
	assert_str_value(m, "field", "credit");
	assert_str_value(m, "message", "credit must be 1 to 10000");
	assert_uint_value(m, "ref", 42);
	/* Key order is fixed: v, cmd, code, error, field, message, ref. */
	assert_true(codec_str_eq(&m->via.map.ptr[0].key, "v"));
	assert_true(codec_str_eq(&m->via.map.ptr[1].key, "cmd"));
	assert_true(codec_str_eq(&m->via.map.ptr[6].key, "ref"));

	rl_error_set(&e, RL_E_BAD_FRAME, NULL, "the frame is empty");
	msgpack_sbuffer_clear(&frame);
	codec_pack_error(&pk, &e, false, 42);
	m = unpack_reply();
	assert_int_equal(m->via.map.size, 6);
	assert_str_value(m, "error", "bad_frame");
	assert_str_value(m, "field", "");
	assert_null(codec_map_get(m, "ref"));
}

static void
test_reply_helpers(void **state)
{
	const msgpack_object *m;

	msgpack_sbuffer_clear(&frame);
	codec_begin_reply(&pk, "pong", 5);
	codec_pack_kv_u64(&pk, "time", UINT64_C(1796000000000));
	codec_pack_kv_i64(&pk, "delta", -3);
	codec_pack_kv_str(&pk, "name", "Mission locale de Tours");
	codec_pack_str(&pk, "raw");
	codec_pack_strn(&pk, "abcdef", 3);
	codec_pack_str(&pk, "none");
	codec_pack_str(&pk, NULL);
	m = unpack_reply();
	assert_int_equal(m->via.map.size, 7);
	assert_uint_value(m, "v", 1);
	assert_str_value(m, "cmd", "pong");
	assert_uint_value(m, "time", UINT64_C(1796000000000));
	assert_int_equal(codec_map_get(m, "delta")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	assert_int_equal(codec_map_get(m, "delta")->via.i64, -3);
	assert_str_value(m, "name", "Mission locale de Tours");
	assert_str_value(m, "raw", "abc");
	assert_str_value(m, "none", "");
}

static void
test_map_get_and_str_eq(void **state)
{
	const msgpack_object *m;
	msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };

	begin(4);
	kv_str("a", "x");
	kv_str("", "empty key");
	key("bin");
	msgpack_pack_bin_with_body(&pk, "b", 1);
	kv_str("a", "second");
	m = unpack_reply();
	assert_true(codec_str_eq(codec_map_get(m, "a"), "x"));       /* the first */
	assert_true(codec_str_eq(codec_map_get(m, ""), "empty key"));
	assert_true(codec_str_eq(codec_map_get(m, "bin"), "b"));     /* bin counts */
	assert_false(codec_str_eq(codec_map_get(m, "bin"), "bb"));
	assert_false(codec_str_eq(codec_map_get(m, "a"), "xx"));
	assert_false(codec_str_eq(codec_map_get(m, "a"), ""));
	assert_null(codec_map_get(m, "absent"));
	assert_null(codec_map_get(m, "A"));
	assert_null(codec_map_get(&nil, "a"));
	assert_null(codec_map_get(NULL, "a"));
	assert_false(codec_str_eq(&nil, ""));
}

static void
test_cmd_names(void **state)
{
	assert_string_equal(codec_cmd_name(RL_CMD_HELLO), "hello");
	assert_string_equal(codec_cmd_name(RL_CMD_SUBMIT), "submit");
	assert_string_equal(codec_cmd_name(RL_CMD_DACK), "dack");
	assert_string_equal(codec_cmd_name(RL_CMD_PING), "ping");
	assert_string_equal(codec_cmd_name(RL_CMD_QUERY), "query");
	assert_string_equal(codec_cmd_name((enum rl_cmd)99), "unknown");
}

/* ------------------------------------------------------------------ */
/* Codes                                                               */
/* ------------------------------------------------------------------ */

static void
test_code_names(void **state)
{
	static const struct {
		int code;
		const char *name;
	} table[] = {   /* PROTOCOL.md §7, verbatim */
		{ 100, "bad_frame" }, { 101, "too_large" }, { 102, "bad_version" },
		{ 103, "unknown_command" }, { 104, "missing_field" },
		{ 105, "bad_field" }, { 106, "unknown_field" },
		{ 107, "batch_too_large" }, { 108, "multipart" },
		{ 200, "unknown_type" }, { 201, "personal_data" },
		{ 202, "forbidden" }, { 203, "conflict" },
		{ 204, "unknown_referral" }, { 205, "unknown_agent" },
		{ 206, "wrong_agent" }, { 207, "bad_transition" },
		{ 208, "referral_exists" }, { 209, "unknown_participant" },
		{ 210, "unknown_alert" }, { 211, "event_too_large" },
		{ 300, "storage_full" }, { 301, "storage" },
		{ 302, "shutting_down" },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const char *text = rl_code_text(table[i].code);

		assert_string_equal(rl_code_name(table[i].code), table[i].name);
		assert_true(strlen(text) > 10);
		assert_int_equal(text[strlen(text) - 1], '.');
		assert_string_not_equal(text, rl_code_text(-1));
	}
	assert_string_equal(rl_code_name(RL_OK), "ok");
	assert_string_equal(rl_code_name(99), "unknown");
	assert_string_equal(rl_code_name(-1), "unknown");
	assert_string_equal(rl_code_name(212), "unknown");
	assert_non_null(rl_code_text(12345));
}

static void
test_error_set(void **state)
{
	struct rl_error e;
	char longer[100];

	assert_int_equal(rl_error_set(&e, RL_E_BAD_FIELD, "score", "%s %d", "got", 6),
	    RL_E_BAD_FIELD);
	assert_int_equal(e.code, RL_E_BAD_FIELD);
	assert_string_equal(e.field, "score");
	assert_string_equal(e.message, "got 6");

	/* Too long for the struct: cut, never overflowed. */
	memset(longer, 'f', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	rl_error_set(&e, RL_E_BAD_FIELD, longer, "%s%s%s", longer, longer, longer);
	assert_int_equal(strlen(e.field), sizeof(e.field) - 1);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_credit_bounds),
		cmocka_unit_test(test_submit),
		cmocka_unit_test(test_submit_items_are_not_validated_here),
		cmocka_unit_test(test_submit_batch_limits),
		cmocka_unit_test(test_dack),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_command),
		cmocka_unit_test(test_ref),
		cmocka_unit_test(test_ref_kept_for_error_replies),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_duplicate_fields),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_not_a_map),
		cmocka_unit_test(test_non_string_keys),
		cmocka_unit_test(test_invalid_byte),
		cmocka_unit_test(test_announced_sizes_are_not_trusted),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_every_msgpack_format_in_args),
		cmocka_unit_test(test_frame_size_limit),
		cmocka_unit_test(test_frame_values_limit),
		cmocka_unit_test(test_pack_error),
		cmocka_unit_test(test_reply_helpers),
		cmocka_unit_test(test_map_get_and_str_eq),
		cmocka_unit_test(test_cmd_names),
		cmocka_unit_test(test_code_names),
		cmocka_unit_test(test_error_set),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
