/*
 * Dead letters for operators (query "deadletters"): list them, put them
 * back in their agent's mailbox, or drop them.
 *
 * An item goes to the dead-letter list after max_attempts sends without an
 * acknowledgement (mailbox.c).  What an operator sees of it is metadata
 * only (SPEC §2.5): agent, seq, kind, the event type or the alert's rule,
 * its age and its attempts; never a participant, a referral or any text.
 *
 *   {"action":"list", "agent"?: ID, "from_seq"?: N, "limit"?: N}
 *   {"action":"requeue" | "drop", "agent": ID, "seq"?: N}   (no seq: all)
 *
 * A requeued item goes to the end of the agent's mailbox with a new seq
 * and its attempts back at zero; requeue and drop are written in their own
 * transaction, committed before the reply.
 */
#include <string.h>

#include "bigendian.h"
#include "codec.h"
#include "log.h"
#include "relaisd.h"
#include "sessions.h"

#define LIST_DEFAULT    100
#define LIST_MAX        1000

struct dl_args {
	enum { DL_LIST, DL_REQUEUE, DL_DROP } action;
	const char *agent;          /* NULL: every agent (list only) */
	size_t alen;
	uint64_t seq;               /* requeue/drop: 0 = all; list: first seq */
	uint32_t limit;
};

static bool
is_uint(const msgpack_object *o)
{
	return o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

/* The arguments, or a refusal packed in pk and -1. */
static int
parse_args(const struct rl_request *req, struct dl_args *a, msgpack_packer *pk)
{
	const msgpack_object *args = req->args, *o;

	memset(a, 0, sizeof(*a));
	a->limit = LIST_DEFAULT;
	if ((o = args != NULL ? codec_map_get(args, "action") : NULL) != NULL) {
		if (codec_str_eq(o, "requeue"))
			a->action = DL_REQUEUE;
		else if (codec_str_eq(o, "drop"))
			a->action = DL_DROP;
		else if (!codec_str_eq(o, "list")) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "action",
			    "action must be list, requeue or drop");
			return -1;
		}
	}
	{
		static const char *const list_keys[] = { "action", "agent",
		    "from_seq", "limit", NULL };
		static const char *const change_keys[] = { "action", "agent",
		    "seq", NULL };

		if (!query_args_known(req, pk, a->action == DL_LIST ? list_keys :
		    change_keys))
			return -1;
	}
	if ((o = args != NULL ? codec_map_get(args, "agent") : NULL) != NULL) {
		if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
		    o->via.str.size > RL_MAX_AGENT_ID_BYTES) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "agent",
			    "agent must be an agent id (1 to 48 characters)");
			return -1;
		}
		a->agent = o->via.str.ptr;
		a->alen = o->via.str.size;
	}
	if (a->action != DL_LIST && a->agent == NULL) {
		query_refuse(pk, req, RL_E_MISSING_FIELD, "agent",
		    "requeue and drop need the agent whose dead letters they "
		    "change (and a seq, or none for all of them)");
		return -1;
	}
	o = args != NULL ? codec_map_get(args, a->action == DL_LIST ? "from_seq" :
	    "seq") : NULL;
	if (o != NULL && !is_uint(o)) {
		query_refuse(pk, req, RL_E_BAD_FIELD, a->action == DL_LIST ?
		    "from_seq" : "seq", "a seq is a whole number");
		return -1;
	}
	a->seq = o != NULL ? o->via.u64 : 0;
	if ((o = args != NULL ? codec_map_get(args, "limit") : NULL) != NULL) {
		if (!is_uint(o) || o->via.u64 == 0 || o->via.u64 > LIST_MAX) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "limit",
			    "limit must be from 1 to 1000");
			return -1;
		}
		a->limit = (uint32_t)o->via.u64;
	}
	return 0;
}

/* Where a key of the dead table splits: agent \0 u64be seq. */
static bool
split_key(const MDB_val *k, size_t *alen, uint64_t *seq)
{
	const char *p = k->mv_data;

	if (k->mv_size < 10 || p[k->mv_size - 9] != '\0')
		return false;
	*alen = k->mv_size - 9;
	*seq = store_be64(p + *alen + 1);
	return true;
}

static int64_t
map_i64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = codec_map_get(m, key);

	return o != NULL && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) ? o->via.i64 : 0;
}

/*
 * What an item may show an operator: its type (the event's, or the
 * alert's rule) and when it was made.  Nothing else is read out of it.
 */
static void
item_meta(struct broker *b, MDB_txn *txn, const MDB_val *v, char *type,
    size_t size, int64_t *made)
{
	const unsigned char *p = v->mv_data;
	msgpack_unpacked up;
	const msgpack_object *root, *o;
	MDB_val k, rec;

	snprintf(type, size, "unknown");
	*made = 0;
	if (v->mv_size <= MBOX_ITEM_HDR)
		return;
	if (p[4] == MBOX_EVENT) {
		if (v->mv_size != MBOX_ITEM_HDR + 8)
			return;
		k.mv_size = 8;
		k.mv_data = (char *)p + MBOX_ITEM_HDR;
		if (mdb_get(txn, b->st.log, &k, &rec) != 0)
			return;
		root = codec_unpack_map(&up, rec.mv_data, rec.mv_size);
	} else {
		root = codec_unpack_map(&up, (const char *)p + MBOX_ITEM_HDR,
		    v->mv_size - MBOX_ITEM_HDR);
	}
	if (root != NULL) {
		const char *field = p[4] == MBOX_EVENT ? "type" : "rule";

		if ((o = codec_map_get(root, field)) != NULL &&
		    o->type == MSGPACK_OBJECT_STR)
			snprintf(type, size, "%.*s", (int)o->via.str.size,
			    o->via.str.ptr);
		if (p[4] == MBOX_EVENT)
			*made = map_i64(root, "recorded_at");
		else if ((o = codec_map_get(root, "resolved")) != NULL &&
		    map_i64(o, "at") != 0)
			*made = map_i64(o, "at");
		else if ((o = codec_map_get(root, "acknowledged")) != NULL &&
		    map_i64(o, "at") != 0)
			*made = map_i64(o, "at");
		else
			*made = map_i64(root, "opened_at");
	}
	msgpack_unpacked_destroy(&up);
}

static bool
in_selection(const struct dl_args *a, const MDB_val *k, size_t alen,
    uint64_t seq)
{
	if (a->agent == NULL)
		return true;
	if (alen != a->alen || memcmp(k->mv_data, a->agent, alen) != 0)
		return false;
	return a->action == DL_LIST ? seq >= a->seq : a->seq == 0 || seq == a->seq;
}

/* The cursor on the first key of the selection (MDB_NOTFOUND if none). */
static int
seek(MDB_cursor *cur, const struct dl_args *a, MDB_val *k, MDB_val *v,
    char *key)
{
	if (a->agent == NULL)
		return mdb_cursor_get(cur, k, v, MDB_FIRST);
	memcpy(key, a->agent, a->alen);
	k->mv_size = a->alen + 1 + 8;
	k->mv_data = key;
	key[a->alen] = '\0';
	store_put_be64(key + a->alen + 1, a->seq);
	return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

static void
list(struct broker *b, MDB_txn *txn, const struct rl_request *req,
    const struct dl_args *a, msgpack_packer *pk)
{
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	int64_t now = clock_now(&b->clock);
	MDB_cursor *cur;
	MDB_val k, v;
	uint32_t n = 0;
	int rc;

	if (mdb_cursor_open(txn, b->st.dead, &cur) != 0) {
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the store; "
		    "retry later");
		return;
	}
	/* Counted first: a msgpack array says its length before its items. */
	for (rc = seek(cur, a, &k, &v, key); rc == 0 && n <= a->limit;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t alen;
		uint64_t seq;

		if (!split_key(&k, &alen, &seq) || !in_selection(a, &k, alen, seq))
			break;
		n++;
	}
	query_begin_result(pk, req, "deadletters");
	msgpack_pack_map(pk, 3);
	codec_pack_kv_u64(pk, "total", store_count(txn, b->st.dead));
	msgpack_pack_str_with_body(pk, "more", 4);
	if (n > a->limit)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (n > a->limit)
		n = a->limit;
	codec_pack_str(pk, "items");
	msgpack_pack_array(pk, n);
	rc = seek(cur, a, &k, &v, key);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		char type[64];
		int64_t made;
		size_t alen = 0;
		uint64_t seq = 0;
		const unsigned char *p = v.mv_data;

		split_key(&k, &alen, &seq);
		item_meta(b, txn, &v, type, sizeof(type), &made);
		msgpack_pack_map(pk, 6);
		codec_pack_str(pk, "agent");
		codec_pack_strn(pk, k.mv_data, alen);
		codec_pack_kv_u64(pk, "seq", seq);
		codec_pack_kv_str(pk, "kind", v.mv_size > MBOX_ITEM_HDR &&
		    p[4] == MBOX_ALERT ? "alert" : "event");
		codec_pack_kv_str(pk, "type", type);
		codec_pack_kv_i64(pk, "age_ms", made != 0 && now > made ? now - made : 0);
		codec_pack_kv_u64(pk, "attempts", v.mv_size >= 4 ? be_get(p, 4) : 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
}

/* Requeue or drop the selected dead letters in txn; how many. */
static int
change(struct broker *b, MDB_txn *txn, const struct dl_args *a,
    struct session *s, uint64_t *n)
{
	char key[RL_MAX_AGENT_ID_BYTES + 9], agent[RL_MAX_AGENT_ID_BYTES + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	memcpy(agent, a->agent, a->alen);
	agent[a->alen] = '\0';
	if ((rc = mdb_cursor_open(txn, b->st.dead, &cur)) != 0)
		return rc;
	/* After mdb_cursor_del, MDB_NEXT moves to the key that followed. */
	for (rc = seek(cur, a, &k, &v, key); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *p = v.mv_data;
		size_t alen;
		uint64_t seq;

		if (!split_key(&k, &alen, &seq) || alen != a->alen ||
		    memcmp(k.mv_data, a->agent, alen) != 0)
			break;
		if (a->seq != 0 && seq != a->seq)
			break;
		if (v.mv_size <= MBOX_ITEM_HDR) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (a->action == DL_REQUEUE) {
			bool room;

			if ((rc = mailbox_room(b, txn, s, &room)) != 0)
				break;
			if (!room)
				break;          /* the rest stay dead letters */
		}
		if (a->action == DL_REQUEUE &&
		    (rc = mailbox_append(b, txn, s, (enum mbox_kind)p[4],
		    (const char *)p + MBOX_ITEM_HDR, v.mv_size - MBOX_ITEM_HDR)) != 0)
			break;
		if ((rc = queued_remove(b, txn, agent, seq, &v)) != 0 ||
		    (rc = store_cursor_del(&b->st, cur)) != 0)
			break;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static void
requeue_or_drop(struct broker *b, const struct agent *who,
    const struct rl_request *req, const struct dl_args *a, msgpack_packer *pk)
{
	const char *what = a->action == DL_REQUEUE ? "requeued" : "dropped";
	char agent[RL_MAX_AGENT_ID_BYTES + 1];
	struct session *s;
	MDB_txn *txn;
	uint64_t n = 0;
	int rc;

	snprintf(agent, sizeof(agent), "%.*s", (int)a->alen, a->agent);
	s = sessions_find(b, agent);
	if (a->action == DL_REQUEUE && s == NULL) {
		query_refuse(pk, req, RL_E_UNKNOWN_AGENT, "agent",
		    "that agent is not in the registry: its dead letters can only "
		    "be dropped");
		return;
	}
	if ((rc = txn_begin(b, &txn)) == 0) {
		if ((rc = change(b, txn, a, s, &n)) != 0)
			txn_abort(b, txn);
		else
			rc = txn_commit(b, txn);
	}
	if (rc != 0) {
		log_error("deadletters.change_failed", "error",
		    LOG_STR(mdb_strerror(rc)), NULL);
		query_refuse(pk, req, store_code(rc), "", rl_code_text(store_code(rc)));
		return;
	}
	if (n == 0 && a->seq != 0) {
		query_refuse(pk, req, RL_E_BAD_FIELD, "seq", "that agent has no dead "
		    "letter with this seq: list them with action list");
		return;
	}
	log_info(a->action == DL_REQUEUE ? "deadletters.requeued" :
	    "deadletters.dropped", "by", LOG_STR(who->id), "agent", LOG_STR(agent),
	    "seq", LOG_U64(a->seq), "items", LOG_U64(n), NULL);
	query_begin_result(pk, req, "deadletters");
	msgpack_pack_map(pk, 1);
	codec_pack_kv_u64(pk, what, n);
}

void
deadletters_query(struct broker *b, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	struct dl_args a;
	MDB_txn *txn;

	if (who->kind != AK_OPERATOR) {
		query_refuse(pk, req, RL_E_FORBIDDEN, "what",
		    "only operators see and change dead letters");
		return;
	}
	if (parse_args(req, &a, pk) == -1)
		return;
	if (a.action != DL_LIST) {
		requeue_or_drop(b, who, req, &a, pk);
		return;
	}
	if (txn_read_begin(b, &txn) != 0) {
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the store; "
		    "retry later");
		return;
	}
	list(b, txn, req, &a, pk);
	txn_read_end(b, txn);
}
