/*
 * Log records: the event's canonical fields plus what the broker adds.
 */
#include <string.h>

#include "codec.h"
#include "record.h"

#define RECORD_EXTRA 4      /* sender, sender_kind, recorded_at, log_seq */

int
record_pack(msgpack_sbuffer *sb, const char *canon, size_t len,
    const char *sender, const char *sender_kind, int64_t recorded_at,
    uint64_t log_seq)
{
	const unsigned char *p = (const unsigned char *)canon;
	msgpack_packer pk;
	uint32_t n;
	size_t hdr;

	if (len >= 1 && (p[0] & 0xf0) == 0x80) {
		n = p[0] & 0x0f;
		hdr = 1;
	} else if (len >= 3 && p[0] == 0xde) {
		n = (uint32_t)p[1] << 8 | p[2];
		hdr = 3;
	} else {
		return -1;      /* an event has far fewer than 65536 fields */
	}
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, n + RECORD_EXTRA) != 0 ||
	    msgpack_sbuffer_write(sb, canon + hdr, len - hdr) != 0)
		return -1;
	codec_pack_kv_str(&pk, "sender", sender);
	codec_pack_kv_str(&pk, "sender_kind", sender_kind);
	codec_pack_kv_i64(&pk, "recorded_at", recorded_at);
	codec_pack_kv_u64(&pk, "log_seq", log_seq);
	return 0;
}

int
record_write_for(msgpack_sbuffer *sb, const char *buf, size_t len,
    const char *reader)
{
	msgpack_unpacked up;
	msgpack_packer pk;
	const msgpack_object *root, *to;
	int rc = 0;

	if ((root = codec_unpack_map(&up, buf, len)) == NULL)
		rc = -1;
	else if (codec_map_get(root, "contact") == NULL ||
	    ((to = codec_map_get(root, "to")) != NULL && codec_str_eq(to, reader)))
		msgpack_sbuffer_write(sb, buf, len);
	else {
		msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, root->via.map.size - 1);
		for (uint32_t i = 0; i < root->via.map.size; i++) {
			const msgpack_object_kv *kv = &root->via.map.ptr[i];

			if (codec_str_eq(&kv->key, "contact"))
				continue;
			msgpack_pack_object(&pk, kv->key);
			msgpack_pack_object(&pk, kv->val);
		}
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

static bool
is_extra(const msgpack_object *key)
{
	return codec_str_eq(key, "sender") || codec_str_eq(key, "sender_kind") ||
	    codec_str_eq(key, "recorded_at") ||
	    codec_str_eq(key, "log_seq");
}

int
record_parse(const char *buf, size_t len, msgpack_unpacked *up,
    struct rl_event *ev, struct record_meta *meta, struct rl_error *err)
{
	const msgpack_object *root, *o;
	msgpack_object view;
	msgpack_object_kv kv[EF__COUNT];
	size_t off = 0;
	uint32_t n = 0;

	memset(meta, 0, sizeof(*meta));
	if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len || up->data.type != MSGPACK_OBJECT_MAP)
		return rl_error_set(err, RL_E_STORAGE, "", "a log record is damaged");
	root = &up->data;
	if ((o = codec_map_get(root, "sender")) == NULL ||
	    o->type != MSGPACK_OBJECT_STR)
		return rl_error_set(err, RL_E_STORAGE, "sender", "a log record has no sender");
	meta->sender.p = o->via.str.ptr;
	meta->sender.len = o->via.str.size;
	/* Records written before the kind was recorded have none. */
	if ((o = codec_map_get(root, "sender_kind")) != NULL &&
	    o->type == MSGPACK_OBJECT_STR) {
		meta->sender_kind.p = o->via.str.ptr;
		meta->sender_kind.len = o->via.str.size;
	}
	if ((o = codec_map_get(root, "recorded_at")) != NULL &&
	    (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
		meta->recorded_at = o->via.i64;
	if ((o = codec_map_get(root, "log_seq")) != NULL &&
	    o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		meta->log_seq = o->via.u64;

	/* A view of the map without the broker's fields, for event_parse. */
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		if (is_extra(&root->via.map.ptr[i].key))
			continue;
		if (n == EF__COUNT)
			return rl_error_set(err, RL_E_STORAGE, "", "a log record is damaged");
		kv[n++] = root->via.map.ptr[i];
	}
	view.type = MSGPACK_OBJECT_MAP;
	view.via.map.size = n;
	view.via.map.ptr = kv;
	return event_parse(&view, ev, err);
}
