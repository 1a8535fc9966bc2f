/*
 * Participant records: the stored form, and the records a write
 * transaction is changing, decoded once and written back once.
 *
 * A pass often carries several events about the same person (a partner's
 * batch, a referral and its answer), and each event also moves the
 * person's rupture bookkeeping.  Reading, decoding, encoding and writing
 * the record for each of them would cost more than all the rest of an
 * event.  So a record stays here, decoded, from the first event that needs
 * it until the transaction commits (participants_flush(), called by
 * txn_commit() before the commit) or aborts (participants_clear()).  A slot
 * that must be reused before then is written back first.
 *
 * Every write transaction reads and changes participants only through
 * here, and starts with the cache empty, so the store and the cache never
 * disagree.  Read-only transactions (queries, verify) read the store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bigendian.h"
#include "relaisd.h"

#define SLOTS           16      /* a pass rarely touches more people at once */
#define FORMAT          2       /* format 1 was the bare pathway */
#define HEADER_BYTES    (1 + 8 + 8 * ARMED_SLOTS + 4)

struct slot {
	struct participant pt;      /* first: a slot is found from its record */
	bool used;
	bool dirty;                 /* changed since read: write before commit */
	bool fresh;                 /* not in the store yet: counts when written */
};

struct ptcache {
	struct slot slots[SLOTS];
	unsigned victim;            /* next slot to reuse when all are taken */
	struct slot *last;          /* the latest loaded: never the victim */
};

static struct slot *
slot_of(struct participant *pt)
{
	return (struct slot *)(void *)pt;
}

int
participants_init(struct broker *b)
{
	b->tx.ptc = calloc(1, sizeof(*b->tx.ptc));
	return b->tx.ptc == NULL ? -1 : 0;
}

void
participants_free(struct broker *b)
{
	free(b->tx.ptc);
	b->tx.ptc = NULL;
}

/* --- the stored form --- */

static void
put_header(unsigned char *d, const struct armed *a)
{
	d[0] = FORMAT;
	be_put(d + 1, (uint64_t)a->key_due, 8);
	for (int r = 0; r < ARMED_SLOTS; r++)
		be_put(d + 9 + 8 * r, (uint64_t)a->fired[r], 8);
	be_put(d + 9 + 8 * ARMED_SLOTS, a->open, 4);
}

static int
get_header(const unsigned char *d, size_t len, struct armed *a)
{
	if (len < HEADER_BYTES || d[0] != FORMAT)
		return -1;
	a->key_due = (int64_t)be_get(d + 1, 8);
	for (int r = 0; r < ARMED_SLOTS; r++)
		a->fired[r] = (int64_t)be_get(d + 9 + 8 * r, 8);
	a->open = (uint32_t)be_get(d + 9 + 8 * ARMED_SLOTS, 4);
	return 0;
}

bool
participants_is_record(const MDB_val *k)
{
	return memchr(k->mv_data, '\0', k->mv_size) == NULL;
}

uint64_t
participants_count(MDB_txn *txn, struct store *st)
{
	uint64_t n;

	return store_get_u64(txn, st->meta, "participants", 12, &n) == 0 ? n : 0;
}

int
participants_count_add(struct store *st, MDB_txn *txn, int delta)
{
	uint64_t n;
	int rc;

	if ((rc = store_get_u64(txn, st->meta, "participants", 12, &n)) != 0)
		return rc;
	return store_put_u64(st, txn, st->meta, "participants", 12,
	    delta < 0 && n < (uint64_t)-delta ? 0 : n + (uint64_t)(int64_t)delta);
}

int
participants_stored(const MDB_val *v, struct armed *a, const char **pw,
    size_t *len)
{
	struct armed tmp;

	if (get_header(v->mv_data, v->mv_size, a != NULL ? a : &tmp) == -1)
		return -1;
	*pw = (const char *)v->mv_data + HEADER_BYTES;
	*len = v->mv_size - HEADER_BYTES;
	return 0;
}

static int
write_back(struct broker *b, MDB_txn *txn, struct slot *s)
{
	const char *id = s->pt.pw.participant;
	MDB_val k = { strlen(id), (void *)id }, v;
	msgpack_sbuffer *sb = &b->pass.scratch;
	msgpack_packer pk;
	unsigned char hdr[HEADER_BYTES];
	int rc;

	put_header(hdr, &s->pt.armed);
	/* The reply buffer is free until the pass replies: no malloc here. */
	msgpack_sbuffer_clear(sb);
	if (msgpack_sbuffer_write(sb, (const char *)hdr, sizeof(hdr)) != 0)
		return ENOMEM;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (pathway_encode(&s->pt.pw, &pk) != 0)
		return ENOMEM;
	v.mv_size = sb->size;
	v.mv_data = sb->data;
	if ((rc = store_put(&b->st, txn, b->st.participants, &k, &v, 0)) != 0)
		return rc;
	if (s->fresh && (rc = participants_count_add(&b->st, txn, 1)) != 0)
		return rc;
	s->dirty = false;
	s->fresh = false;
	return 0;
}

/* --- the cache --- */

/* A free slot, writing one back if every slot is taken. */
static int
take_slot(struct broker *b, MDB_txn *txn, struct slot **out)
{
	struct ptcache *c = b->tx.ptc;
	struct slot *s;
	int rc;

	for (unsigned i = 0; i < SLOTS; i++) {
		if (!c->slots[i].used) {
			*out = &c->slots[i];
			return 0;
		}
	}
	s = &c->slots[c->victim];
	if (s == c->last) {
		c->victim = (c->victim + 1) % SLOTS;
		s = &c->slots[c->victim];
	}
	c->victim = (c->victim + 1) % SLOTS;
	if (s->dirty && (rc = write_back(b, txn, s)) != 0)
		return rc;
	s->used = false;
	*out = s;
	return 0;
}

int
participants_load(struct broker *b, MDB_txn *txn, const char *id, size_t len,
    bool create, struct participant **out)
{
	struct ptcache *c = b->tx.ptc;
	struct rl_error err;
	struct slot *s;
	MDB_val k = { len, (void *)id }, v;
	const char *pwb;
	size_t pwlen;
	int rc;

	if (len == 0 || len >= PW_ID_SIZE)
		return MDB_NOTFOUND;
	for (unsigned i = 0; i < SLOTS; i++) {
		s = &c->slots[i];
		if (s->used && memcmp(s->pt.pw.participant, id, len) == 0 &&
		    s->pt.pw.participant[len] == '\0') {
			c->last = s;
			*out = &s->pt;
			return 0;
		}
	}
	/* Before the read: writing a slot back may move the pages read. */
	if ((rc = take_slot(b, txn, &s)) != 0)
		return rc;
	rc = mdb_get(txn, b->st.participants, &k, &v);
	if (rc == MDB_NOTFOUND && !create)
		return rc;
	if (rc == MDB_NOTFOUND) {
		pathway_init(&s->pt.pw, id, len);
		memset(&s->pt.armed, 0, sizeof(s->pt.armed));
	} else if (rc != 0) {
		return rc;
	} else if (participants_stored(&v, &s->pt.armed, &pwb, &pwlen) == -1 ||
	    pathway_decode(pwb, pwlen, &s->pt.pw, &err) != RL_OK) {
		return MDB_CORRUPTED;
	}
	s->used = true;
	s->dirty = false;
	s->fresh = rc == MDB_NOTFOUND;
	c->last = s;
	*out = &s->pt;
	return 0;
}

int
participants_apply(struct broker *b, struct participant *pt,
    const struct rl_event *ev, const struct pw_actor *actor, int64_t at,
    struct pw_effects *fx, struct rl_error *err)
{
	struct slot *s = slot_of(pt);
	int code;

	/*
	 * A refusal may leave the pathway half-changed.  When the store still
	 * has it all, the slot is just forgotten; when it holds changes not
	 * yet written, they are saved in b->pass.pw and put back (only the used
	 * part of the pathway is copied: pathway_save.c).
	 */
	if (s->dirty)
		pathway_save(b->pass.pw, &pt->pw);
	code = pathway_apply_in_place(&pt->pw, ev, actor, at, b->cfg->rules,
	    fx, err);
	if (code != RL_OK && s->dirty)
		pathway_restore(&pt->pw, b->pass.pw);
	else if (code != RL_OK)
		s->used = false;
	if (code == RL_OK && fx->changed)
		s->dirty = true;
	return code;
}

void
participants_touch(struct participant *pt)
{
	slot_of(pt)->dirty = true;
}

void
participants_forget(struct participant *pt)
{
	struct slot *s = slot_of(pt);

	s->used = false;
	s->dirty = false;
}

int
participants_flush(struct broker *b, MDB_txn *txn)
{
	struct ptcache *c = b->tx.ptc;
	int rc;

	for (unsigned i = 0; c != NULL && i < SLOTS; i++) {
		struct slot *s = &c->slots[i];

		if (s->used && s->dirty && (rc = write_back(b, txn, s)) != 0)
			return rc;
		s->used = false;
	}
	return 0;
}

void
participants_clear(struct broker *b)
{
	struct ptcache *c = b->tx.ptc;

	for (unsigned i = 0; c != NULL && i < SLOTS; i++) {
		c->slots[i].used = false;
		c->slots[i].dirty = false;
	}
}
