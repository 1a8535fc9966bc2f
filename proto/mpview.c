/*
 * Zero-copy msgpack reader (see mpview.h).  Every read is bounds-checked
 * against the end of the buffer before it happens.
 */
#include <string.h>

#include "bigendian.h"
#include "mpview.h"

struct reader {
	const unsigned char *p, *end;
	struct mpview *v;
	size_t objs_used, kvs_used;
};

/* Take n bytes; NULL if fewer remain. */
static const unsigned char *
take(struct reader *r, size_t n)
{
	const unsigned char *p = r->p;

	if ((size_t)(r->end - r->p) < n)
		return NULL;
	r->p += n;
	return p;
}

static int
take_uint(struct reader *r, int n, uint64_t *x)
{
	const unsigned char *p = take(r, (size_t)n);

	if (p == NULL)
		return -1;
	*x = be_get(p, n);
	return 0;
}

static void
set_int(msgpack_object *o, int64_t x)
{
	if (x >= 0) {
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = (uint64_t)x;
	} else {
		o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
		o->via.i64 = x;
	}
}

static int
read_raw(struct reader *r, msgpack_object *o, msgpack_object_type type,
    uint64_t n)
{
	const unsigned char *p = take(r, (size_t)n);

	if (n > UINT32_MAX || p == NULL)
		return -1;
	o->type = type;
	/* str and bin share their layout in msgpack_object. */
	o->via.str.size = (uint32_t)n;
	o->via.str.ptr = (const char *)p;
	return 0;
}

static int read_value(struct reader *r, msgpack_object *o, int depth);

static int
read_array(struct reader *r, msgpack_object *o, uint64_t n, int depth)
{
	msgpack_object *items;

	/* Every element takes at least one byte: no promise beyond the data. */
	if (n > (uint64_t)(r->end - r->p) || n > r->v->nobjs - r->objs_used)
		return -1;
	items = r->v->objs + r->objs_used;
	r->objs_used += (size_t)n;
	o->type = MSGPACK_OBJECT_ARRAY;
	o->via.array.size = (uint32_t)n;
	o->via.array.ptr = n > 0 ? items : NULL;
	for (uint64_t i = 0; i < n; i++)
		if (read_value(r, &items[i], depth + 1) == -1)
			return -1;
	return 0;
}

static int
read_map(struct reader *r, msgpack_object *o, uint64_t n, int depth)
{
	msgpack_object_kv *kvs;

	if (n > (uint64_t)(r->end - r->p) / 2 || n > r->v->nkvs - r->kvs_used)
		return -1;
	kvs = r->v->kvs + r->kvs_used;
	r->kvs_used += (size_t)n;
	o->type = MSGPACK_OBJECT_MAP;
	o->via.map.size = (uint32_t)n;
	o->via.map.ptr = n > 0 ? kvs : NULL;
	for (uint64_t i = 0; i < n; i++)
		if (read_value(r, &kvs[i].key, depth + 1) == -1 ||
		    read_value(r, &kvs[i].val, depth + 1) == -1)
			return -1;
	return 0;
}

static int
read_float(struct reader *r, msgpack_object *o, int bytes)
{
	uint64_t bits;

	if (take_uint(r, bytes, &bits) == -1)
		return -1;
	if (bytes == 4) {
		uint32_t b32 = (uint32_t)bits;
		float f;

		memcpy(&f, &b32, sizeof(f));
		o->type = MSGPACK_OBJECT_FLOAT32;
		o->via.f64 = f;
	} else {
		o->type = MSGPACK_OBJECT_FLOAT64;
		memcpy(&o->via.f64, &bits, sizeof(bits));
	}
	return 0;
}

static int
read_value(struct reader *r, msgpack_object *o, int depth)
{
	const unsigned char *tp;
	uint64_t x;
	unsigned t;

	if (depth > MPVIEW_MAX_DEPTH || (tp = take(r, 1)) == NULL)
		return -1;
	t = *tp;
	if (t <= 0x7f) {
		set_int(o, t);
		return 0;
	}
	if (t >= 0xe0) {
		set_int(o, (int8_t)t);
		return 0;
	}
	if ((t & 0xf0) == 0x80)
		return read_map(r, o, t & 0x0f, depth);
	if ((t & 0xf0) == 0x90)
		return read_array(r, o, t & 0x0f, depth);
	if ((t & 0xe0) == 0xa0)
		return read_raw(r, o, MSGPACK_OBJECT_STR, t & 0x1f);
	switch (t) {
	case 0xc0:
		o->type = MSGPACK_OBJECT_NIL;
		return 0;
	case 0xc2:
	case 0xc3:
		o->type = MSGPACK_OBJECT_BOOLEAN;
		o->via.boolean = t == 0xc3;
		return 0;
	case 0xc4: case 0xc5: case 0xc6:
		if (take_uint(r, 1 << (t - 0xc4), &x) == -1)
			return -1;
		return read_raw(r, o, MSGPACK_OBJECT_BIN, x);
	case 0xca:
		return read_float(r, o, 4);
	case 0xcb:
		return read_float(r, o, 8);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		if (take_uint(r, 1 << (t - 0xcc), &x) == -1)
			return -1;
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		o->via.u64 = x;
		return 0;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		int n = 1 << (t - 0xd0);

		if (take_uint(r, n, &x) == -1)
			return -1;
		/* Sign-extend from n bytes. */
		if (n < 8 && (x & ((uint64_t)1 << (8 * n - 1))))
			x |= ~(uint64_t)0 << (8 * n);
		set_int(o, (int64_t)x);
		return 0;
	}
	case 0xd9: case 0xda: case 0xdb:
		if (take_uint(r, 1 << (t - 0xd9), &x) == -1)
			return -1;
		return read_raw(r, o, MSGPACK_OBJECT_STR, x);
	case 0xdc: case 0xdd:
		if (take_uint(r, t == 0xdc ? 2 : 4, &x) == -1)
			return -1;
		return read_array(r, o, x, depth);
	case 0xde: case 0xdf:
		if (take_uint(r, t == 0xde ? 2 : 4, &x) == -1)
			return -1;
		return read_map(r, o, x, depth);
	default:
		return -1;          /* extension types, and the unused 0xc1 */
	}
}

int
mpview_parse(const char *buf, size_t len, struct mpview *v, msgpack_object *out)
{
	struct reader r = { (const unsigned char *)buf,
	    (const unsigned char *)buf + len, v, 0, 0 };

	if (read_value(&r, out, 0) == -1 || r.p != r.end)
		return -1;
	return 0;
}
