/*
 * Alert records: packing for storage and delivery, and reading back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "codec.h"

static const char *status_names[] = { "open", "acknowledged", "resolved" };

const char *
alert_status_name(enum alert_status s)
{
	return (unsigned)s < 3 ? status_names[s] : "unknown";
}

uint64_t
alert_id_parse(const char *p, size_t len)
{
	uint64_t v = 0;

	if (len < 4 || len > 23 || memcmp(p, "al-", 3) != 0)
		return 0;
	for (size_t i = 3; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v;
}

void
alert_pack(msgpack_packer *pk, const struct alert *a, const char *change)
{
	char id[32];
	uint32_t n = 12 + (change != NULL);

	snprintf(id, sizeof(id), "al-%llu", (unsigned long long)a->seq);
	msgpack_pack_map(pk, n);
	codec_pack_kv_str(pk, "id", id);
	if (change != NULL)
		codec_pack_kv_str(pk, "change", change);
	codec_pack_kv_str(pk, "participant", a->participant);
	codec_pack_kv_str(pk, "rule", rule_name(a->rule));
	codec_pack_kv_str(pk, "severity", a->severity >= 2 ? "alert" : "warning");
	codec_pack_kv_str(pk, "qpv", a->qpv);
	codec_pack_str(pk, "agents");
	msgpack_pack_array(pk, (size_t)a->nagents);
	for (int i = 0; i < a->nagents; i++)
		codec_pack_str(pk, a->agents[i]);
	codec_pack_kv_str(pk, "referral", a->referral);
	codec_pack_kv_i64(pk, "opened_at", a->opened_at);
	codec_pack_kv_str(pk, "status", alert_status_name(a->status));
	codec_pack_str(pk, "acknowledged");
	msgpack_pack_map(pk, 2);
	codec_pack_kv_str(pk, "by", a->acknowledged_by);
	codec_pack_kv_i64(pk, "at", a->acknowledged_at);
	codec_pack_str(pk, "resolved");
	msgpack_pack_map(pk, 2);
	codec_pack_kv_str(pk, "by", a->resolved_by);
	codec_pack_kv_i64(pk, "at", a->resolved_at);
	codec_pack_kv_str(pk, "note", a->note);
}

static int
copy_str(const msgpack_object *o, char *dst, size_t size)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size)
		return -1;
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;
}

static int
get_i64(const msgpack_object *o, int64_t *out)
{
	if (o == NULL || (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return -1;
	*out = o->via.i64;
	return 0;
}

static int
unpack_who(const msgpack_object *o, char *by, size_t size, int64_t *at)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
		return -1;
	if (copy_str(codec_map_get(o, "by"), by, size) == -1 ||
	    get_i64(codec_map_get(o, "at"), at) == -1)
		return -1;
	return 0;
}

int
alert_unpack(const char *buf, size_t len, struct alert *a)
{
	msgpack_unpacked up;
	const msgpack_object *root, *o;
	char id[32], tmp[32];
	int rc = RL_E_STORAGE, r;

	memset(a, 0, sizeof(*a));
	if ((root = codec_unpack_map(&up, buf, len)) == NULL)
		goto out;
	if (copy_str(codec_map_get(root, "id"), id, sizeof(id)) == -1 ||
	    (a->seq = alert_id_parse(id, strlen(id))) == 0)
		goto out;
	if (copy_str(codec_map_get(root, "participant"), a->participant,
	    sizeof(a->participant)) == -1 ||
	    copy_str(codec_map_get(root, "rule"), tmp, sizeof(tmp)) == -1 ||
	    (r = rule_from_name(tmp)) < 0)
		goto out;
	a->rule = (enum rule_id)r;
	if (copy_str(codec_map_get(root, "severity"), tmp, sizeof(tmp)) == -1)
		goto out;
	a->severity = strcmp(tmp, "alert") == 0 ? 2 : 1;
	if (copy_str(codec_map_get(root, "qpv"), a->qpv, sizeof(a->qpv)) == -1 ||
	    copy_str(codec_map_get(root, "referral"), a->referral,
	    sizeof(a->referral)) == -1 ||
	    get_i64(codec_map_get(root, "opened_at"), &a->opened_at) == -1 ||
	    copy_str(codec_map_get(root, "status"), tmp, sizeof(tmp)) == -1 ||
	    copy_str(codec_map_get(root, "note"), a->note, sizeof(a->note)) == -1)
		goto out;
	for (r = 0; r < 3 && strcmp(tmp, status_names[r]) != 0; r++)
		;
	if (r == 3)
		goto out;
	a->status = (enum alert_status)r;
	o = codec_map_get(root, "agents");
	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > 4)
		goto out;
	for (uint32_t i = 0; i < o->via.array.size; i++)
		if (copy_str(&o->via.array.ptr[i], a->agents[i],
		    sizeof(a->agents[i])) == -1)
			goto out;
	a->nagents = (int)o->via.array.size;
	if (unpack_who(codec_map_get(root, "acknowledged"), a->acknowledged_by,
	    sizeof(a->acknowledged_by), &a->acknowledged_at) == -1 ||
	    unpack_who(codec_map_get(root, "resolved"), a->resolved_by,
	    sizeof(a->resolved_by), &a->resolved_at) == -1)
		goto out;
	rc = RL_OK;
out:
	msgpack_unpacked_destroy(&up);
	return rc;
}
