/*
 * Agent requests in, broker replies out (PROTOCOL.md §2).
 *
 * Decoding goes from the cheapest check to the dearest: the frame's size,
 * its msgpack shape, then the envelope ("v", "cmd", "ref"), then the
 * fields of the command, which a table lists per command.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bigendian.h"
#include "codec.h"

#define MAX_WHAT_BYTES 32

/* ------------------------------------------------------------------ */
/* Frame shape                                                         */
/* ------------------------------------------------------------------ */

/*
 * How to find the extent of a value of msgpack format 0xc0..0xdf: the size
 * of the big-endian length that follows the format byte, extra header
 * bytes after it (the type of an ext), a fixed payload, and for arrays and
 * maps how many values each counted entry holds.
 */
struct mp_format {
	uint8_t len_bytes;
	uint8_t extra;
	uint8_t body;
	uint8_t values_per_entry;
	bool valid;
};

static const struct mp_format mp_formats[32] = {
	[0x00] = { 0, 0, 0, 0, true },   /* nil */
	[0x01] = { 0, 0, 0, 0, false },  /* never used */
	[0x02] = { 0, 0, 0, 0, true },   /* false */
	[0x03] = { 0, 0, 0, 0, true },   /* true */
	[0x04] = { 1, 0, 0, 0, true },   /* bin 8 */
	[0x05] = { 2, 0, 0, 0, true },   /* bin 16 */
	[0x06] = { 4, 0, 0, 0, true },   /* bin 32 */
	[0x07] = { 1, 1, 0, 0, true },   /* ext 8 */
	[0x08] = { 2, 1, 0, 0, true },   /* ext 16 */
	[0x09] = { 4, 1, 0, 0, true },   /* ext 32 */
	[0x0a] = { 0, 0, 4, 0, true },   /* float 32 */
	[0x0b] = { 0, 0, 8, 0, true },   /* float 64 */
	[0x0c] = { 0, 0, 1, 0, true },   /* uint 8 */
	[0x0d] = { 0, 0, 2, 0, true },   /* uint 16 */
	[0x0e] = { 0, 0, 4, 0, true },   /* uint 32 */
	[0x0f] = { 0, 0, 8, 0, true },   /* uint 64 */
	[0x10] = { 0, 0, 1, 0, true },   /* int 8 */
	[0x11] = { 0, 0, 2, 0, true },   /* int 16 */
	[0x12] = { 0, 0, 4, 0, true },   /* int 32 */
	[0x13] = { 0, 0, 8, 0, true },   /* int 64 */
	[0x14] = { 0, 1, 1, 0, true },   /* fixext 1 */
	[0x15] = { 0, 1, 2, 0, true },   /* fixext 2 */
	[0x16] = { 0, 1, 4, 0, true },   /* fixext 4 */
	[0x17] = { 0, 1, 8, 0, true },   /* fixext 8 */
	[0x18] = { 0, 1, 16, 0, true },  /* fixext 16 */
	[0x19] = { 1, 0, 0, 0, true },   /* str 8 */
	[0x1a] = { 2, 0, 0, 0, true },   /* str 16 */
	[0x1b] = { 4, 0, 0, 0, true },   /* str 32 */
	[0x1c] = { 2, 0, 0, 1, true },   /* array 16 */
	[0x1d] = { 4, 0, 0, 1, true },   /* array 32 */
	[0x1e] = { 2, 0, 0, 2, true },   /* map 16 */
	[0x1f] = { 4, 0, 0, 2, true },   /* map 32 */
};

struct mp_extent {
	size_t head;        /* format byte and the header bytes after it */
	uint64_t body;      /* payload bytes after the header */
	uint64_t values;    /* values nested in it (arrays and maps) */
};

/* The extent of the value at p[0..n), or an explanation of why there is none. */
static const char *
value_extent(const unsigned char *p, size_t n, struct mp_extent *e)
{
	const struct mp_format *fmt;
	uint64_t count;

	if (n == 0)
		return "the frame ends in the middle of a msgpack value";
	*e = (struct mp_extent){ .head = 1 };
	if (p[0] <= 0x7f || p[0] >= 0xe0)           /* fixint */
		return NULL;
	if (p[0] <= 0x8f) {                         /* fixmap */
		e->values = 2u * (p[0] & 0x0fu);
		return NULL;
	}
	if (p[0] <= 0x9f) {                         /* fixarray */
		e->values = p[0] & 0x0fu;
		return NULL;
	}
	if (p[0] <= 0xbf) {                         /* fixstr */
		e->body = p[0] & 0x1fu;
		return NULL;
	}
	fmt = &mp_formats[p[0] - 0xc0];
	if (!fmt->valid)
		return "the frame holds the byte 0xc1, which msgpack never uses";
	e->head = 1u + fmt->len_bytes + fmt->extra;
	if (n < e->head)
		return "the frame ends in the middle of a msgpack value";
	count = be_get(p + 1, fmt->len_bytes);
	if (fmt->values_per_entry > 0)
		e->values = count * fmt->values_per_entry;
	else
		e->body = count + fmt->body;
	return NULL;
}

/*
 * msgpack-c allocates room for every entry an array or map header
 * announces before it reads them, so a 5-byte frame announcing 2^32
 * entries would ask for hundreds of gigabytes.  Walking the headers first
 * refuses such a frame: every announced value takes at least one byte, so
 * more values pending than bytes left cannot be a real message.  The walk
 * also finds truncation and trailing bytes, and says which.
 *
 * It counts the values too: each becomes one msgpack_object (24 bytes)
 * when decoded, so a frame of a million nils would take 24 MiB for one
 * message.  No valid message holds more than RL_MAX_FRAME_VALUES (a full
 * submit holds about 20 000), and a frame announcing more is refused as
 * too_large before anything is allocated.  *values is the count.
 */
static int
frame_shape_problem(const unsigned char *p, size_t len, uint64_t *values,
    struct rl_error *err)
{
	uint64_t pending = 1;       /* values announced and not yet read */
	size_t pos = 0;
	struct mp_extent e;
	const char *why;

	*values = 0;
	while (pending > 0) {
		if ((why = value_extent(p + pos, len - pos, &e)) != NULL)
			break;
		if (e.body > len - pos - e.head) {
			why = "the frame ends in the middle of a msgpack value";
			break;
		}
		pos += e.head + (size_t)e.body;
		pending = pending - 1 + e.values;
		if (pending > len - pos) {
			why = "an array or map announces more entries than the "
			    "frame holds";
			break;
		}
		if (++*values + pending > RL_MAX_FRAME_VALUES)
			return rl_error_set(err, RL_E_TOO_LARGE, "",
			    "the frame holds more than %d msgpack values; "
			    "send fewer events per submit", RL_MAX_FRAME_VALUES);
	}
	if (why == NULL && pos != len)
		why = "the frame holds bytes after its first msgpack value; "
		    "send exactly one map";
	if (why != NULL)
		return rl_error_set(err, RL_E_BAD_FRAME, "", "%s", why);
	return RL_OK;
}

static int
unpack_one_map(const char *buf, size_t len, msgpack_unpacked *up,
    uint64_t *values, struct rl_error *err)
{
	size_t off = 0;
	int rc;

	if ((rc = frame_shape_problem((const unsigned char *)buf, len, values,
	    err)) != RL_OK)
		return rc;
	/* What the walk cannot see: nesting deeper than msgpack-c accepts. */
	if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len)
		return rl_error_set(err, RL_E_BAD_FRAME, "",
		    "the frame could not be decoded: containers nest too deeply");
	if (up->data.type != MSGPACK_OBJECT_MAP)
		return rl_error_set(err, RL_E_BAD_FRAME, "",
		    "a message must be one msgpack map; the frame holds something else");
	for (uint32_t i = 0; i < up->data.via.map.size; i++)
		if (up->data.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
			return rl_error_set(err, RL_E_BAD_FRAME, "",
			    "every key of a message map must be a string");
	return RL_OK;
}

/* ------------------------------------------------------------------ */
/* Request fields                                                      */
/* ------------------------------------------------------------------ */

static bool
is_uint(const msgpack_object *v)
{
	return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static int
parse_ref(const msgpack_object *v, struct rl_request *req, struct rl_error *err)
{
	if (!is_uint(v))
		return rl_error_set(err, RL_E_BAD_FIELD, "ref",
		    "ref must be an unsigned integer");
	req->has_ref = true;
	req->ref = v->via.u64;
	return RL_OK;
}

static int
parse_credit(const msgpack_object *v, struct rl_request *req,
    struct rl_error *err)
{
	if (!is_uint(v) || v->via.u64 < 1 || v->via.u64 > RL_MAX_CREDIT)
		return rl_error_set(err, RL_E_BAD_FIELD, "credit",
		    "credit must be an integer from 1 to %d", RL_MAX_CREDIT);
	req->has_credit = true;
	req->credit = (uint32_t)v->via.u64;
	return RL_OK;
}

static int
parse_upto(const msgpack_object *v, struct rl_request *req, struct rl_error *err)
{
	if (!is_uint(v))
		return rl_error_set(err, RL_E_BAD_FIELD, "upto",
		    "upto must be an unsigned integer: the last delivery seq handled");
	req->has_upto = true;
	req->upto = v->via.u64;
	return RL_OK;
}

static int
parse_events(const msgpack_object *v, struct rl_request *req,
    struct rl_error *err)
{
	if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size == 0)
		return rl_error_set(err, RL_E_BAD_FIELD, "events",
		    "events must be an array of 1 to %d event maps", RL_MAX_BATCH);
	if (v->via.array.size > RL_MAX_BATCH)
		return rl_error_set(err, RL_E_BATCH_TOO_LARGE, "events",
		    "events holds %" PRIu32 " events; the limit is %d per submit, "
		    "so split the batch", v->via.array.size, RL_MAX_BATCH);
	req->events = v->via.array.ptr;
	req->nevents = v->via.array.size;
	return RL_OK;
}

static bool
is_query_name_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

static int
parse_what(const msgpack_object *v, struct rl_request *req, struct rl_error *err)
{
	bool ok = v->type == MSGPACK_OBJECT_STR && v->via.str.size >= 1 &&
	    v->via.str.size <= MAX_WHAT_BYTES;

	for (uint32_t i = 0; ok && i < v->via.str.size; i++)
		ok = is_query_name_byte(v->via.str.ptr[i]);
	if (!ok)
		return rl_error_set(err, RL_E_BAD_FIELD, "what",
		    "what must name a query in 1 to %d characters among "
		    "A-Z a-z 0-9 . _ : -", MAX_WHAT_BYTES);
	req->what.p = v->via.str.ptr;
	req->what.len = v->via.str.size;
	return RL_OK;
}

static int
parse_args(const msgpack_object *v, struct rl_request *req, struct rl_error *err)
{
	if (v->type != MSGPACK_OBJECT_MAP)
		return rl_error_set(err, RL_E_BAD_FIELD, "args",
		    "args must be a map of query arguments");
	req->args = v;
	return RL_OK;
}

enum req_field { RQ_V, RQ_CMD, RQ_REF, RQ_CREDIT, RQ_UPTO, RQ_EVENTS, RQ_WHAT,
	RQ_ARGS, RQ__COUNT };

typedef int (*field_parser)(const msgpack_object *, struct rl_request *,
    struct rl_error *);

static const struct {
	const char *name;
	field_parser parse;         /* NULL: read with the envelope, before the rest */
} req_fields[RQ__COUNT] = {
	[RQ_V]      = { "v",      NULL },
	[RQ_CMD]    = { "cmd",    NULL },
	[RQ_REF]    = { "ref",    parse_ref },
	[RQ_CREDIT] = { "credit", parse_credit },
	[RQ_UPTO]   = { "upto",   parse_upto },
	[RQ_EVENTS] = { "events", parse_events },
	[RQ_WHAT]   = { "what",   parse_what },
	[RQ_ARGS]   = { "args",   parse_args },
};

#define RQ(x)     (1u << RQ_##x)
#define ENVELOPE  (RQ(V) | RQ(CMD))

/* Indexed by enum rl_cmd: the fields each command requires and allows. */
static const struct {
	const char *name;
	uint32_t required;
	uint32_t optional;
} cmds[] = {
	[RL_CMD_HELLO]  = { "hello",  ENVELOPE,             RQ(REF) | RQ(CREDIT) },
	[RL_CMD_SUBMIT] = { "submit", ENVELOPE | RQ(EVENTS), RQ(REF) },
	[RL_CMD_DACK]   = { "dack",   ENVELOPE | RQ(UPTO),   RQ(REF) | RQ(CREDIT) },
	[RL_CMD_PING]   = { "ping",   ENVELOPE,             RQ(REF) },
	[RL_CMD_QUERY]  = { "query",  ENVELOPE | RQ(WHAT),   RQ(REF) | RQ(ARGS) },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

const char *
codec_cmd_name(enum rl_cmd cmd)
{
	return (unsigned)cmd < NCMDS ? cmds[cmd].name : "unknown";
}

static int
req_field_from_key(const msgpack_object *k)
{
	for (int f = 0; f < RQ__COUNT; f++)
		if (codec_str_eq(k, req_fields[f].name))
			return f;
	return -1;
}

/* ------------------------------------------------------------------ */
/* The envelope                                                        */
/* ------------------------------------------------------------------ */

/*
 * An error reply carries the request's "ref" whenever it can be read, so
 * it is picked up before anything else is checked.
 */
static void
peek_ref(const msgpack_object *map, struct rl_request *req)
{
	const msgpack_object *v = codec_map_get(map, "ref");

	if (v != NULL && is_uint(v)) {
		req->has_ref = true;
		req->ref = v->via.u64;
	}
}

static int
check_version(const msgpack_object *map, struct rl_error *err)
{
	const msgpack_object *v = codec_map_get(map, "v");

	if (v == NULL)
		return rl_error_set(err, RL_E_BAD_VERSION, "v",
		    "v is required: send \"v\": %d", RL_PROTO_VERSION);
	if (!is_uint(v) || v->via.u64 != RL_PROTO_VERSION)
		return rl_error_set(err, RL_E_BAD_VERSION, "v",
		    "this broker speaks protocol version %d only; send \"v\": %d",
		    RL_PROTO_VERSION, RL_PROTO_VERSION);
	return RL_OK;
}

static int
parse_cmd(const msgpack_object *map, struct rl_request *req,
    struct rl_error *err)
{
	const msgpack_object *v = codec_map_get(map, "cmd");

	if (v == NULL)
		return rl_error_set(err, RL_E_UNKNOWN_COMMAND, "cmd",
		    "cmd is required: one of hello, submit, dack, ping, query");
	for (size_t c = 0; c < NCMDS; c++) {
		if (v->type == MSGPACK_OBJECT_STR && codec_str_eq(v, cmds[c].name)) {
			req->cmd = (enum rl_cmd)c;
			return RL_OK;
		}
	}
	return rl_error_set(err, RL_E_UNKNOWN_COMMAND, "cmd",
	    "cmd must be one of hello, submit, dack, ping, query");
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

static int
parse_fields(const msgpack_object_map *map, struct rl_request *req,
    struct rl_error *err)
{
	uint32_t allowed = cmds[req->cmd].required | cmds[req->cmd].optional;
	uint32_t seen = 0;
	char shown[sizeof(err->field)];
	int f, rc;

	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object_kv *kv = &map->ptr[i];

		f = req_field_from_key(&kv->key);
		if (f < 0 || (allowed & (1u << f)) == 0) {
			rl_printable_copy(shown, sizeof(shown), kv->key.via.str.ptr,
			    kv->key.via.str.size);
			return rl_error_set(err, RL_E_UNKNOWN_FIELD, shown,
			    "%s is not a field of %s messages; remove it or check "
			    "its spelling", shown, cmds[req->cmd].name);
		}
		if (seen & (1u << f))
			return rl_error_set(err, RL_E_BAD_FIELD, req_fields[f].name,
			    "%s appears more than once; each field may appear "
			    "only once", req_fields[f].name);
		seen |= 1u << f;
		if (req_fields[f].parse != NULL &&
		    (rc = req_fields[f].parse(&kv->val, req, err)) != RL_OK)
			return rc;
	}
	for (f = 0; f < RQ__COUNT; f++)
		if ((cmds[req->cmd].required & ~seen) & (1u << f))
			return rl_error_set(err, RL_E_MISSING_FIELD,
			    req_fields[f].name, "%s is required in %s messages",
			    req_fields[f].name, cmds[req->cmd].name);
	return RL_OK;
}

int
codec_decode_request(const char *buf, size_t len, msgpack_unpacked *up,
    struct rl_request *req, struct rl_error *err)
{
	int rc;

	memset(req, 0, sizeof(*req));
	/* Before anything else: nothing of an oversized frame is looked at. */
	if (len > RL_MAX_FRAME_BYTES)
		return rl_error_set(err, RL_E_TOO_LARGE, "",
		    "the frame is %zu bytes; the limit is %d bytes", len,
		    RL_MAX_FRAME_BYTES);
	if ((rc = unpack_one_map(buf, len, up, &req->values, err)) != RL_OK)
		return rc;
	peek_ref(&up->data, req);
	if ((rc = check_version(&up->data, err)) != RL_OK ||
	    (rc = parse_cmd(&up->data, req, err)) != RL_OK)
		return rc;
	return parse_fields(&up->data.via.map, req, err);
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

int
codec_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
	if (msgpack_pack_str(pk, n) != 0)
		return -1;
	return msgpack_pack_str_body(pk, s, n);
}

int
codec_pack_str(msgpack_packer *pk, const char *s)
{
	if (s == NULL)
		s = "";
	return codec_pack_strn(pk, s, strlen(s));
}

int
codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	if (codec_pack_str(pk, k) != 0)
		return -1;
	return codec_pack_str(pk, v);
}

int
codec_pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	if (codec_pack_str(pk, k) != 0)
		return -1;
	return msgpack_pack_uint64(pk, v);
}

int
codec_pack_kv_i64(msgpack_packer *pk, const char *k, int64_t v)
{
	if (codec_pack_str(pk, k) != 0)
		return -1;
	return msgpack_pack_int64(pk, v);
}

void
codec_begin_reply(msgpack_packer *pk, const char *cmd, uint32_t extra)
{
	msgpack_pack_map(pk, 2 + extra);
	codec_pack_kv_u64(pk, "v", RL_PROTO_VERSION);
	codec_pack_kv_str(pk, "cmd", cmd);
}

void
codec_pack_error(msgpack_packer *pk, const struct rl_error *err,
    bool has_ref, uint64_t ref)
{
	codec_begin_reply(pk, "error", 4 + (has_ref ? 1 : 0));
	codec_pack_kv_u64(pk, "code", (uint64_t)err->code);
	codec_pack_kv_str(pk, "error", rl_code_name(err->code));
	codec_pack_kv_str(pk, "field", err->field);
	codec_pack_kv_str(pk, "message", err->message);
	if (has_ref)
		codec_pack_kv_u64(pk, "ref", ref);
}

/* ------------------------------------------------------------------ */
/* Lookups                                                             */
/* ------------------------------------------------------------------ */

bool
codec_str_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	/* An empty string may come with a NULL pointer: memcmp must not see it. */
	if (o->type == MSGPACK_OBJECT_STR)
		return o->via.str.size == n &&
		    (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
	if (o->type == MSGPACK_OBJECT_BIN)
		return o->via.bin.size == n &&
		    (n == 0 || memcmp(o->via.bin.ptr, s, n) == 0);
	return false;
}

const msgpack_object *
codec_unpack_map(msgpack_unpacked *up, const char *buf, size_t len)
{
	size_t off = 0;

	msgpack_unpacked_init(up);
	if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    up->data.type != MSGPACK_OBJECT_MAP)
		return NULL;
	return &up->data;
}

const msgpack_object *
codec_map_get(const msgpack_object *obj, const char *key)
{
	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < obj->via.map.size; i++)
		if (codec_str_eq(&obj->via.map.ptr[i].key, key))
			return &obj->via.map.ptr[i].val;
	return NULL;
}
