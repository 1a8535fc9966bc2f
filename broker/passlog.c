/*
 * The records a write transaction put in the log (passlog.h).  Log seqs
 * grow by one per event, so the entries are a run of seqs from first:
 * the record of seq is entry seq - first, found without a search.  Seqs
 * in the run whose records were not kept (events that deliver nothing)
 * have an entry marked NOT_KEPT.
 */
#include <stdlib.h>
#include <string.h>

#include "passlog.h"

#define NOT_KEPT SIZE_MAX
#define MAX_GAP 4096                /* entries a gap may take before a new run */

struct passlog_entry {
	size_t off, len;            /* in bytes */
};

struct passlog {
	uint64_t first;             /* seq of entries[0] */
	struct passlog_entry *entries;
	size_t n, cap;
	unsigned char *bytes;
	size_t used, size;
};

struct passlog *
passlog_new(void)
{
	return calloc(1, sizeof(struct passlog));
}

void
passlog_free(struct passlog **pl)
{
	if (*pl == NULL)
		return;
	free((*pl)->entries);
	free((*pl)->bytes);
	free(*pl);
	*pl = NULL;
}

void
passlog_clear(struct passlog *pl)
{
	if (pl == NULL)
		return;
	pl->n = 0;
	pl->used = 0;
}

/* Room for entries up to index i and len more bytes; false if not. */
static bool
reserve(struct passlog *pl, size_t i, size_t len)
{
	if (len > PASSLOG_MAX_BYTES - pl->used || i >= PASSLOG_MAX_SEQS)
		return false;
	if (i >= pl->cap) {
		size_t cap = pl->cap ? pl->cap : 64;
		struct passlog_entry *e;

		while (cap <= i)
			cap *= 2;
		if ((e = realloc(pl->entries, cap * sizeof(*e))) == NULL)
			return false;
		pl->entries = e;
		pl->cap = cap;
	}
	if (pl->used + len > pl->size) {
		size_t size = pl->size ? pl->size : 16384;
		unsigned char *p;

		while (size < pl->used + len)
			size *= 2;
		if (size > PASSLOG_MAX_BYTES)
			size = PASSLOG_MAX_BYTES;
		if ((p = realloc(pl->bytes, size)) == NULL)
			return false;
		pl->bytes = p;
		pl->size = size;
	}
	return true;
}

void
passlog_add(struct passlog *pl, uint64_t seq, const void *data, size_t len)
{
	size_t i;

	if (pl == NULL)
		return;
	/* Not after the run, or far after it: a new run (the old one is
	 * never needed again: seqs only grow). */
	if (pl->n > 0 && (seq < pl->first + pl->n ||
	    seq - (pl->first + pl->n) > MAX_GAP))
		passlog_clear(pl);
	if (pl->n == 0)
		pl->first = seq;
	i = (size_t)(seq - pl->first);
	if (!reserve(pl, i, len))
		return;
	for (; pl->n < i; pl->n++)
		pl->entries[pl->n].off = NOT_KEPT;
	memcpy(pl->bytes + pl->used, data, len);
	pl->entries[i].off = pl->used;
	pl->entries[i].len = len;
	pl->used += len;
	pl->n = i + 1;
}

bool
passlog_get(const struct passlog *pl, uint64_t seq, MDB_val *out)
{
	const struct passlog_entry *e;

	if (pl == NULL || seq < pl->first || seq - pl->first >= pl->n)
		return false;
	e = &pl->entries[seq - pl->first];
	if (e->off == NOT_KEPT)
		return false;
	out->mv_data = pl->bytes + e->off;
	out->mv_size = e->len;
	return true;
}
