/*
 * The pathways a write transaction is changing, decoded once and written
 * back once.
 *
 * A pass often carries several events about the same person (a partner's
 * batch, a referral and its answer); reading, decoding, encoding and
 * writing the stored pathway for each of them would cost more than all the
 * rest of an event.  So a pathway stays here, decoded, from the first event
 * that needs it until the transaction commits (pwcache_flush(), called by
 * txn_commit() before the commit) or aborts (pwcache_clear()).  A slot that
 * must be reused before then is written back first.
 *
 * Nothing outside ingest reads a participant's pathway inside a pass's
 * transaction, and every other write transaction starts with the cache
 * empty, so the store and the cache never disagree where it matters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relaisd.h"

#define PWCACHE_SLOTS 16      /* a pass rarely touches more people at once */

struct pw_slot {
	struct pathway pw;          /* first: a slot is found from its pathway */
	bool used;
	bool dirty;                 /* changed since read: write before commit */
};

struct pwcache {
	struct pw_slot slots[PWCACHE_SLOTS];
	unsigned victim;            /* next slot to reuse when all are taken */
};

static struct pw_slot *
slot_of(struct pathway *pw)
{
	return (struct pw_slot *)(void *)pw;
}

int
pwcache_init(struct broker *b)
{
	b->pwc = calloc(1, sizeof(*b->pwc));
	return b->pwc == NULL ? -1 : 0;
}

void
pwcache_free(struct broker *b)
{
	free(b->pwc);
	b->pwc = NULL;
}

static int
write_back(struct broker *b, MDB_txn *txn, struct pw_slot *s)
{
	const char *p = s->pw.participant;
	MDB_val k = { strlen(p), (void *)p }, v;
	msgpack_sbuffer *sb = &b->scratch;
	msgpack_packer pk;
	int rc;

	/* The reply buffer is free until the pass replies: no malloc here. */
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (pathway_encode(&s->pw, &pk) != 0)
		return ENOMEM;
	v.mv_size = sb->size;
	v.mv_data = sb->data;
	if ((rc = mdb_put(txn, b->st.participants, &k, &v, 0)) != 0)
		return rc;
	s->dirty = false;
	return 0;
}

/* A free slot, writing one back if every slot is taken. */
static int
take_slot(struct broker *b, MDB_txn *txn, struct pw_slot **out)
{
	struct pwcache *c = b->pwc;
	struct pw_slot *s;
	int rc;

	for (unsigned i = 0; i < PWCACHE_SLOTS; i++) {
		if (!c->slots[i].used) {
			*out = &c->slots[i];
			return 0;
		}
	}
	s = &c->slots[c->victim];
	c->victim = (c->victim + 1) % PWCACHE_SLOTS;
	if (s->dirty && (rc = write_back(b, txn, s)) != 0)
		return rc;
	s->used = false;
	*out = s;
	return 0;
}

static int
storage_error(struct rl_error *err, int rc)
{
	return rl_error_set(err, store_code(rc), "",
	    "%s (%s)", rl_code_text(store_code(rc)), mdb_strerror(rc));
}

int
pwcache_load(struct broker *b, MDB_txn *txn, const char *p, size_t plen,
    bool create, struct pathway **out, struct rl_error *err)
{
	struct pwcache *c = b->pwc;
	struct pw_slot *s;
	MDB_val k = { plen, (void *)p }, v;
	int rc, code;

	for (unsigned i = 0; i < PWCACHE_SLOTS; i++) {
		s = &c->slots[i];
		if (s->used && strncmp(s->pw.participant, p, plen) == 0 &&
		    s->pw.participant[plen] == '\0') {
			*out = &s->pw;
			return RL_OK;
		}
	}
	/* Before the read: writing a slot back may move the pages read. */
	if ((rc = take_slot(b, txn, &s)) != 0)
		return storage_error(err, rc);
	rc = mdb_get(txn, b->st.participants, &k, &v);
	if (rc == MDB_NOTFOUND && !create)
		return rl_error_set(err, RL_E_UNKNOWN_PARTICIPANT, "participant",
		    "no pathway exists for this participant (already erased?)");
	if (rc == MDB_NOTFOUND)
		pathway_init(&s->pw, p, plen);
	else if (rc != 0)
		return storage_error(err, rc);
	else if ((code = pathway_decode(v.mv_data, v.mv_size, &s->pw, err)) != RL_OK)
		return code;
	s->used = true;
	s->dirty = false;
	*out = &s->pw;
	return RL_OK;
}

int
pwcache_apply(struct broker *b, struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at, struct pw_effects *fx,
    struct rl_error *err)
{
	struct pw_slot *s = slot_of(pw);
	int code;

	/*
	 * A refusal may leave the pathway half-changed.  When the store still
	 * has it all, the slot is just forgotten; when it holds changes not
	 * yet written, they are kept in b->pw and put back.
	 */
	if (s->dirty)
		*b->pw = *pw;
	code = pathway_apply_in_place(pw, ev, actor, at, b->cfg->rules, fx, err);
	if (code != RL_OK && s->dirty)
		*pw = *b->pw;
	else if (code != RL_OK)
		s->used = false;
	if (code == RL_OK && fx->changed)
		s->dirty = true;
	return code;
}

void
pwcache_forget(struct broker *b, struct pathway *pw)
{
	struct pw_slot *s = slot_of(pw);

	(void)b;
	s->used = false;
	s->dirty = false;
}

int
pwcache_flush(struct broker *b, MDB_txn *txn)
{
	struct pwcache *c = b->pwc;
	int rc;

	for (unsigned i = 0; c != NULL && i < PWCACHE_SLOTS; i++) {
		struct pw_slot *s = &c->slots[i];

		if (s->used && s->dirty && (rc = write_back(b, txn, s)) != 0)
			return rc;
		s->used = false;
	}
	return 0;
}

void
pwcache_clear(struct broker *b)
{
	struct pwcache *c = b->pwc;

	for (unsigned i = 0; c != NULL && i < PWCACHE_SLOTS; i++) {
		c->slots[i].used = false;
		c->slots[i].dirty = false;
	}
}
