/*
 * Queued items about a person: the index that lets erasure reach them.
 *
 * A mailbox item that delivers an event only names the event's log seq,
 * and erasure rewrites the log record itself, so those items need nothing
 * more.  An item that carries its own copy of data about a person (today
 * an alert: participant id, referral id, the coordinator's note) would
 * keep it until it is acknowledged, and a dead letter for ever.  Each such
 * item has a key in "queued":
 *
 *     participant \0 agent \0 u64be seq  -> ""
 *
 * written when the item is appended, deleted when it leaves the mailbox
 * and the dead-letter list, and used by erasure to rewrite exactly the
 * items about the person, wherever they wait (mailbox or dead letters
 * share the key agent \0 seq), without reading any other item.
 *
 * Which items are about whom, and how an item is scrubbed, is decided per
 * item kind in item_about() and scrub_item(): a new kind that carries
 * personal data adds its case there.
 */
#include <string.h>

#include "codec.h"
#include "relaisd.h"

#define QUEUED_KEY_MAX  (RL_MAX_ID_BYTES + 1 + RL_MAX_AGENT_ID_BYTES + 1 + 8)

/* Fields of a queued alert that tie it to a person. */
static const char *const alert_personal[] = { "participant", "referral", "note" };

/*
 * The participant an item is about, copied into p (size PW_ID_SIZE);
 * false if it is about no one the index needs to know of.
 */
static bool
item_about(const MDB_val *item, char *p, size_t size)
{
	const char *buf = item->mv_data;
	msgpack_unpacked up;
	const msgpack_object *root, *o;
	bool found = false;

	if (item->mv_size <= MBOX_ITEM_HDR || (unsigned char)buf[4] != MBOX_ALERT)
		return false;
	if ((root = codec_unpack_map(&up, buf + MBOX_ITEM_HDR,
	    item->mv_size - MBOX_ITEM_HDR)) != NULL &&
	    (o = codec_map_get(root, "participant")) != NULL &&
	    o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 &&
	    o->via.str.size < size) {
		memcpy(p, o->via.str.ptr, o->via.str.size);
		p[o->via.str.size] = '\0';
		found = true;
	}
	msgpack_unpacked_destroy(&up);
	return found;
}

static size_t
queued_key(char *buf, const char *p, const char *agent, uint64_t seq)
{
	size_t plen = strlen(p);

	memcpy(buf, p, plen + 1);
	return plen + 1 + store_key_seq(buf + plen + 1, agent, strlen(agent), seq);
}

int
queued_add(struct broker *b, MDB_txn *txn, const char *agent, uint64_t seq,
    const MDB_val *item)
{
	char p[PW_ID_SIZE], key[QUEUED_KEY_MAX];
	MDB_val k, v = { 0, "" };

	if (!item_about(item, p, sizeof(p)))
		return 0;
	k.mv_size = queued_key(key, p, agent, seq);
	k.mv_data = key;
	return store_put(&b->st, txn, b->st.queued, &k, &v, 0);
}

int
queued_remove(struct broker *b, MDB_txn *txn, const char *agent, uint64_t seq,
    const MDB_val *item)
{
	char p[PW_ID_SIZE], key[QUEUED_KEY_MAX];
	MDB_val k;
	int rc;

	if (!item_about(item, p, sizeof(p)))
		return 0;
	k.mv_size = queued_key(key, p, agent, seq);
	k.mv_data = key;
	rc = store_del(&b->st, txn, b->st.queued, &k);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * A copy of a msgpack map with the values of the named string fields
 * emptied; -1 if buf is not a map.
 */
static int
blank_fields(const char *buf, size_t len, const char *const *names,
    size_t nnames, msgpack_sbuffer *sb)
{
	msgpack_unpacked up;
	msgpack_packer pk;
	const msgpack_object *root;

	if ((root = codec_unpack_map(&up, buf, len)) == NULL) {
		msgpack_unpacked_destroy(&up);
		return -1;
	}
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, root->via.map.size);
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];
		bool blank = false;

		for (size_t j = 0; j < nnames && !blank; j++)
			blank = codec_str_eq(&kv->key, names[j]);
		msgpack_pack_object(&pk, kv->key);
		if (blank)
			codec_pack_str(&pk, "");
		else
			msgpack_pack_object(&pk, kv->val);
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

/* Rewrite one stored item (in mbox or dead) without the person's data. */
static int
scrub_item(struct broker *b, MDB_txn *txn, MDB_dbi dbi, const MDB_val *k,
    const MDB_val *item, msgpack_sbuffer *sb)
{
	const char *buf = item->mv_data;
	MDB_val nv;

	msgpack_sbuffer_clear(sb);
	/* The header (attempts, kind) is kept as it is. */
	msgpack_sbuffer_write(sb, buf, MBOX_ITEM_HDR);
	if (blank_fields(buf + MBOX_ITEM_HDR, item->mv_size - MBOX_ITEM_HDR, alert_personal,
	    sizeof(alert_personal) / sizeof(alert_personal[0]), sb) == -1)
		return MDB_CORRUPTED;
	nv.mv_size = sb->size;
	nv.mv_data = sb->data;
	return store_put(&b->st, txn, dbi, (MDB_val *)k, &nv, 0);
}

/*
 * The item an index key points to, in the mailboxes or the dead letters:
 * scrub it where it is.  The index key is deleted by the caller's cursor.
 */
static int
scrub_one(struct broker *b, MDB_txn *txn, const MDB_val *qk, size_t plen,
    msgpack_sbuffer *sb)
{
	MDB_dbi tables[] = { b->st.mbox, b->st.dead };
	/* The item's key (agent \0 seq) is the tail of the index key. */
	MDB_val k = { qk->mv_size - plen - 1, (char *)qk->mv_data + plen + 1 }, v;
	char key[QUEUED_KEY_MAX];
	int rc;

	/* mdb_put may move the pages qk points into: keep a copy. */
	memcpy(key, k.mv_data, k.mv_size);
	k.mv_data = key;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		rc = mdb_get(txn, tables[i], &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (v.mv_size <= MBOX_ITEM_HDR)
			return MDB_CORRUPTED;
		return scrub_item(b, txn, tables[i], &k, &v, sb);
	}
	return 0;                   /* gone already: only the index key was left */
}

int
queued_scrub(struct broker *b, MDB_txn *txn, const char *p, uint64_t *nitems)
{
	size_t plen = strlen(p);
	char key[QUEUED_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k = { plen + 1, key }, v;
	msgpack_sbuffer sb;
	int rc;

	*nitems = 0;
	memcpy(key, p, plen + 1);
	if ((rc = mdb_cursor_open(txn, b->st.queued, &cur)) != 0)
		return rc;
	msgpack_sbuffer_init(&sb);
	/*
	 * Deleting the index key first and then rewriting the item, which
	 * lives in another table, leaves this cursor where it was; MDB_SET_RANGE
	 * on the same prefix then finds the next key.
	 */
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0) {
		MDB_val qk;
		char qkey[QUEUED_KEY_MAX];

		if (k.mv_size <= plen + 1 || memcmp(k.mv_data, p, plen + 1) != 0)
			break;
		memcpy(qkey, k.mv_data, k.mv_size);
		qk.mv_size = k.mv_size;
		qk.mv_data = qkey;
		if ((rc = store_cursor_del(&b->st, cur)) != 0 ||
		    (rc = scrub_one(b, txn, &qk, plen, &sb)) != 0)
			break;
		(*nitems)++;
		k.mv_size = plen + 1;
		k.mv_data = key;
	}
	msgpack_sbuffer_destroy(&sb);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
