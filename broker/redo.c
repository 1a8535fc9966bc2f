/*
 * Redo records: capture and replay (redo.h says what they are).
 */
#include <stdlib.h>
#include <string.h>

#include "bigendian.h"
#include "redo.h"
#include "wal.h"

enum { REDO_PUT = 1, REDO_DEL = 2 };

void
redo_clear(struct redo *r)
{
	r->len = WAL_RECORD_HDR;
	r->overflow = false;
}

void
redo_free(struct redo *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

bool
redo_empty(const struct redo *r)
{
	return r->len <= WAL_RECORD_HDR && !r->overflow;
}

size_t
redo_payload_len(const struct redo *r)
{
	return r->len - WAL_RECORD_HDR;
}

/* Room for n more bytes, unless that passes max or memory is short. */
static bool
reserve(struct redo *r, size_t n)
{
	size_t cap;
	unsigned char *p;

	if (r->len < WAL_RECORD_HDR)
		r->len = WAL_RECORD_HDR;
	if (r->len + n > r->max)
		return false;
	if (r->len + n <= r->cap)
		return true;
	cap = r->cap == 0 ? 64 * 1024 : r->cap;
	while (cap < r->len + n)
		cap *= 2;
	if ((p = realloc(r->buf, cap)) == NULL)
		return false;
	r->buf = p;
	r->cap = cap;
	return true;
}

void
redo_add(struct redo *r, MDB_dbi dbi, const MDB_val *k, const MDB_val *v)
{
	size_t n = 2 + 4 + k->mv_size + (v != NULL ? 4 + v->mv_size : 0);
	unsigned char *p;

	if (r->overflow)
		return;
	if (!reserve(r, n)) {
		/* The pass is made durable by a checkpoint instead (txn.c). */
		r->overflow = true;
		return;
	}
	p = r->buf + r->len;
	p[0] = v != NULL ? REDO_PUT : REDO_DEL;
	p[1] = (unsigned char)dbi;
	be_put(p + 2, k->mv_size, 4);
	memcpy(p + 6, k->mv_data, k->mv_size);
	p += 6 + k->mv_size;
	if (v != NULL) {
		be_put(p, v->mv_size, 4);
		memcpy(p + 4, v->mv_data, v->mv_size);
	}
	r->len += n;
}

bool
redo_add_ops(struct redo *r, const unsigned char *p, size_t len)
{
	if (r->overflow || !reserve(r, len)) {
		r->overflow = true;
		return false;
	}
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	return true;
}

/* A length-prefixed field at *p, within end; false if it does not fit. */
static bool
take(const unsigned char **p, const unsigned char *end, MDB_val *out)
{
	uint64_t n;

	if (end - *p < 4)
		return false;
	n = be_get(*p, 4);
	if ((uint64_t)(end - *p - 4) < n)
		return false;
	out->mv_size = n;
	out->mv_data = (void *)(*p + 4);
	*p += 4 + n;
	return true;
}

int
redo_apply(MDB_txn *txn, const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	MDB_val k, v;
	int rc;

	while (p < end) {
		unsigned kind, dbi;

		if (end - p < 2)
			return MDB_CORRUPTED;
		kind = p[0];
		dbi = p[1];
		p += 2;
		if (!take(&p, end, &k))
			return MDB_CORRUPTED;
		if (kind == REDO_PUT) {
			if (!take(&p, end, &v))
				return MDB_CORRUPTED;
			rc = mdb_put(txn, dbi, &k, &v, 0);
		} else if (kind == REDO_DEL) {
			rc = mdb_del(txn, dbi, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = MDB_CORRUPTED;
		} else {
			return MDB_CORRUPTED;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}
