/*
 * Durable mailboxes: every delivery waits in LMDB until its recipient
 * acknowledges it.
 *
 * An item is appended in the same transaction as the event that causes it,
 * sent (after that commit) while the recipient has credit, and deleted by
 * the recipient's cumulative dack.  Only counters live in memory, never the
 * items, so an absent or slow agent costs disk, not heap.
 *
 * Item value: u32be redeliveries, u8 kind, then for an event its u64be log
 * seq, for an alert the alert (msgpack).  An event is read from the log
 * when it is sent rather than copied here: the log has it already, and an
 * erased participant's queued deliveries go out as the erased record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "alert.h"
#include "bigendian.h"
#include "log.h"
#include "record.h"
#include "relaisd.h"
#include "rltime.h"

#define DELIVER_MAX_ITEMS   256
#define DELIVER_MAX_BYTES   (256u << 10)

static uint32_t
item_attempts(const unsigned char *p)
{
	return (uint32_t)be_get(p, 4);
}

static bool
key_in_mailbox(const MDB_val *k, const char *id, size_t alen)
{
	return k->mv_size == alen + 9 && memcmp(k->mv_data, id, alen + 1) == 0;
}

static uint64_t
key_seq(const MDB_val *k, size_t alen)
{
	return store_be64((const char *)k->mv_data + alen + 1);
}

/*
 * Opens *cur on agent id's mailbox at its first item from seq on and
 * returns that first read (0, or MDB_NOTFOUND when none), or the error
 * opening the cursor, with *cur NULL.  key holds k's bytes.
 */
static int
mbox_seek(struct broker *b, MDB_txn *txn, const char *id, size_t alen,
    uint64_t seq, char *key, MDB_cursor **cur, MDB_val *k, MDB_val *v)
{
	int rc;

	if ((rc = mdb_cursor_open(txn, b->st.mbox, cur)) != 0) {
		*cur = NULL;
		return rc;
	}
	k->mv_size = store_key_seq(key, id, alen, seq);
	k->mv_data = key;
	return mdb_cursor_get(*cur, k, v, MDB_SET_RANGE);
}

/* The next seq is read once, then kept in memory (txn.c). */
static int
load_next_seq(struct broker *b, MDB_txn *txn, struct session *s)
{
	const char *id = s->agent->id;
	uint64_t next;
	int rc;

	if (s->next_seq != 0)
		return 0;
	if ((rc = store_get_u64(txn, b->st.mbox_next, id, strlen(id), &next)) != 0)
		return rc;
	s->next_seq = next == 0 ? 1 : next;
	return 0;
}

/*
 * The bound on one agent's mailbox (max_backlog), so that a partner whose
 * agent never collects cannot fill the store for everyone: the backlog
 * counter (mailbox_backlog) with this transaction's own changes.
 */
int
mailbox_room(struct broker *b, MDB_txn *txn, struct session *s, bool *room)
{
	*room = b->cfg->max_backlog == 0 ||
	    (int64_t)mailbox_backlog(b, txn, s) + s->backlog_txn <
	    (int64_t)b->cfg->max_backlog;
	return 0;
}

/*
 * What happens at max_backlog (README, "A partner that does not collect"):
 * the delivery is not queued.  The event itself is accepted and recorded
 * like any other (its sender did nothing wrong, and the pathway, alerts
 * and indicators stay true); the agent that does not collect misses it,
 * which is counted (health: overflowed) and logged at error.
 */
int
mailbox_append(struct broker *b, MDB_txn *txn, struct session *s,
    enum mbox_kind kind, const char *payload, size_t len)
{
	const char *agent_id = s->agent->id;
	size_t alen = strlen(agent_id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	unsigned char item[256];
	uint64_t next;
	MDB_val k, v;
	bool room;
	int rc;

	if ((rc = mailbox_room(b, txn, s, &room)) != 0)
		return rc;
	if (!room) {
		s->overflowed++;
		log_error("delivery.overflowed", "agent", LOG_STR(agent_id),
		    "max_backlog", LOG_U64(b->cfg->max_backlog),
		    "kind", LOG_STR(kind == MBOX_ALERT ? "alert" : "event"),
		    "hint", LOG_STR("the agent's mailbox is full: it has not "
		    "collected its deliveries; this one is not queued (the event "
		    "is recorded). Fix the partner's agent, or raise max_backlog"),
		    NULL);
		return 0;
	}
	if ((rc = load_next_seq(b, txn, s)) != 0)
		return rc;
	next = s->next_seq;
	k.mv_size = store_key_seq(key, agent_id, alen, next);
	k.mv_data = key;
	v.mv_size = MBOX_ITEM_HDR + len;
	/* Most items are an event's log seq: staged on the stack. */
	v.mv_data = v.mv_size <= sizeof(item) ? item : malloc(v.mv_size);
	if (v.mv_data == NULL)
		return ENOMEM;
	memset(v.mv_data, 0, 4);
	((unsigned char *)v.mv_data)[4] = (unsigned char)kind;
	memcpy((char *)v.mv_data + MBOX_ITEM_HDR, payload, len);
	rc = store_put(&b->st, txn, b->st.mbox, &k, &v, 0);
	if (rc == 0 && kind != MBOX_EVENT)
		rc = queued_add(b, txn, agent_id, next, &v);
	if (v.mv_data != item)
		free(v.mv_data);
	if (rc != 0)
		return rc;
	s->next_seq = next + 1;
	s->next_dirty = true;
	s->backlog_txn++;
	b->tx.counters_dirty = true;
	s->pending = true;
	return 0;
}

int
mailbox_append_event(struct broker *b, MDB_txn *txn, struct session *s,
    uint64_t log_seq)
{
	char seq[8];

	store_put_be64(seq, log_seq);
	return mailbox_append(b, txn, s, MBOX_EVENT, seq, sizeof(seq));
}

/*
 * What an item delivers: an alert is in the item, an event in the log (or
 * in the copy the transaction that just committed kept of it: passlog.h).
 * -1 if the item cannot be read (a damaged store).
 */
static int
item_payload(struct broker *b, MDB_txn *txn, const MDB_val *item,
    MDB_val *payload)
{
	const char *p = item->mv_data;
	MDB_val k;

	if (item->mv_size < MBOX_ITEM_HDR)
		return -1;
	if ((unsigned char)p[4] != MBOX_EVENT) {
		payload->mv_size = item->mv_size - MBOX_ITEM_HDR;
		payload->mv_data = (char *)item->mv_data + MBOX_ITEM_HDR;
		return 0;
	}
	if (item->mv_size != MBOX_ITEM_HDR + 8)
		return -1;
	k.mv_size = 8;
	k.mv_data = (char *)item->mv_data + MBOX_ITEM_HDR;
	if (passlog_get(b->tx.passlog, store_be64(k.mv_data), payload))
		return 0;
	return mdb_get(txn, b->st.log, &k, payload) == 0 ? 0 : -1;
}

/* Delete items (acked, min(upto, sent)]; *acked is the new mark. */
int
mailbox_ack(struct broker *b, MDB_txn *txn, struct session *s, uint64_t upto,
    uint64_t *acked)
{
	const char *id = s->agent->id;
	size_t alen = strlen(id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*acked = s->acked;
	/* An agent cannot acknowledge what it was not sent. */
	if (upto > s->sent)
		upto = s->sent;
	if (upto <= s->acked)
		return 0;
	rc = mbox_seek(b, txn, id, alen, s->acked + 1, key, &cur, &k, &v);
	if (cur == NULL)
		return rc;
	/* After mdb_cursor_del, MDB_NEXT moves to the item that followed. */
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!key_in_mailbox(&k, id, alen) || key_seq(&k, alen) > upto)
			break;
		if ((rc = queued_remove(b, txn, id, key_seq(&k, alen), &v)) != 0 ||
		    (rc = store_cursor_del(&b->st, cur)) != 0)
			break;
		s->backlog_txn--;
		b->counters.delivered++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*acked = upto;
	s->last_collected = clock_now(&b->clock);
	if (s->silent) {
		s->silent = false;
		log_info("agent.collecting", "agent", LOG_STR(id), NULL);
	}
	return 0;
}

uint64_t
mailbox_backlog(struct broker *b, MDB_txn *txn, struct session *s)
{
	const char *id = s->agent->id;

	if (!s->backlog_known) {
		/* What this transaction changed is in backlog_txn already. */
		s->backlog = (uint64_t)((int64_t)store_count_prefix(txn, b->st.mbox,
		    id, strlen(id) + 1) - s->backlog_txn);
		s->backlog_known = true;
	}
	return s->backlog;
}

void
mailbox_backlog_settle(struct broker *b, bool committed)
{
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];

		if (committed && s->backlog_known)
			s->backlog = (uint64_t)((int64_t)s->backlog + s->backlog_txn);
		s->backlog_txn = 0;
	}
}

static const char *
kind_name(unsigned char kind)
{
	return kind == MBOX_ALERT ? "alert" : "event";
}

/*
 * Send what the session's credit allows, from the first unsent item.
 * Returns false when the socket would not take more.
 */
static bool
flush_session(struct broker *b, MDB_txn *txn, struct session *s, int64_t mono)
{
	const char *id = s->agent->id;
	size_t alen = strlen(id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint32_t room = s->credit > s->inflight ? s->credit - s->inflight : 0;
	bool more = true, ok = true;
	int rc;

	if (room == 0)
		return true;
	rc = mbox_seek(b, txn, id, alen, s->sent + 1, key, &cur, &k, &v);
	if (cur == NULL)
		return true;
	msgpack_sbuffer_init(&sb);
	while (room > 0 && more) {
		/* Collect up to one message's worth of items. */
		uint64_t seqs[DELIVER_MAX_ITEMS];
		const unsigned char *vals[DELIVER_MAX_ITEMS];
		MDB_val payloads[DELIVER_MAX_ITEMS];
		uint32_t n = 0;
		size_t bytes = 0;

		while (rc == 0 && n < DELIVER_MAX_ITEMS && n < room &&
		    bytes < DELIVER_MAX_BYTES) {
			if (!key_in_mailbox(&k, id, alen)) {
				rc = MDB_NOTFOUND;
				break;
			}
			if (item_payload(b, txn, &v, &payloads[n]) == -1) {
				/* Stop here: skipping would break the seq order. */
				log_error("delivery.unreadable", "agent", LOG_STR(id),
				    "seq", LOG_U64(key_seq(&k, alen)), "hint",
				    LOG_STR("the store is damaged; run relaisd "
				    "--verify and restore from a backup"), NULL);
				rc = MDB_NOTFOUND;
				break;
			}
			seqs[n] = key_seq(&k, alen);
			vals[n] = v.mv_data;
			bytes += payloads[n].mv_size;
			n++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		if (n == 0) {
			more = false;
			break;
		}
		msgpack_sbuffer_clear(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		codec_begin_reply(&pk, "deliver", 1);
		codec_pack_str(&pk, "items");
		msgpack_pack_array(&pk, n);
		for (uint32_t i = 0; i < n; i++) {
			const char *kn = kind_name(vals[i][4]);

			msgpack_pack_map(&pk, 4);
			codec_pack_kv_u64(&pk, "seq", seqs[i]);
			codec_pack_kv_str(&pk, "kind", kn);
			codec_pack_kv_u64(&pk, "attempt",
			    (uint64_t)item_attempts(vals[i]) + 1);
			codec_pack_str(&pk, kn);
			/* The payload is already msgpack: append it as is. */
			msgpack_sbuffer_write(&sb, payloads[i].mv_data,
			    payloads[i].mv_size);
		}
		if (sessions_deliver(b, s, sb.data, sb.size) == -1) {
			ok = false;
			break;
		}
		/* At info, with the event's log seq: an operator follows one
		 * referral from event.accepted to delivery.acknowledged. */
		for (uint32_t i = 0; i < n; i++)
			if (vals[i][4] == MBOX_EVENT)
				log_info("delivery.sent", "agent", LOG_STR(id),
				    "seq", LOG_U64(seqs[i]),
				    "log_seq", LOG_U64(store_be64(vals[i] + MBOX_ITEM_HDR)), NULL);
			else
				log_info("delivery.sent", "agent", LOG_STR(id),
				    "seq", LOG_U64(seqs[i]),
				    "kind", LOG_STR(kind_name(vals[i][4])), NULL);
		s->sent = seqs[n - 1];
		s->inflight += n;
		room -= n;
		if (s->retry_at == 0)
			s->retry_at = mono + s->backoff_ms;
		if (rc != 0)
			more = false;
	}
	if (!more && ok)
		s->pending = false;
	msgpack_sbuffer_destroy(&sb);
	mdb_cursor_close(cur);
	return ok;
}

static bool count_rewound(struct broker *b);

void
mailbox_flush(struct broker *b)
{
	MDB_txn *txn;
	int64_t mono = rl_mono_ms();
	bool any = false;

	if (!count_rewound(b))
		return;
	for (size_t i = 0; i < b->peers.nsessions && !any; i++)
		any = b->peers.sessions[i].to != NULL && b->peers.sessions[i].pending;
	if (!any || txn_read_begin(b, &txn) != 0)
		return;
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];

		if (s->to != NULL && s->pending)
			flush_session(b, txn, s, mono);
	}
	txn_read_end(b, txn);
}

/*
 * Move the item under cur to the dead-letter list, its attempts counted.
 * The key stays agent \0 seq: the queued index still finds it.
 */
static int
move_to_dead(struct broker *b, MDB_txn *txn, MDB_cursor *cur, MDB_val *k,
    MDB_val *v, uint32_t attempts)
{
	MDB_val dv = { v->mv_size, malloc(v->mv_size) };
	int rc;

	if (dv.mv_data == NULL)
		return ENOMEM;
	memcpy(dv.mv_data, v->mv_data, v->mv_size);
	be_put(dv.mv_data, attempts, 4);
	rc = store_put(&b->st, txn, b->st.dead, k, &dv, 0);
	free(dv.mv_data);
	if (rc != 0 || (rc = store_cursor_del(&b->st, cur)) != 0)
		return rc;
	b->counters.dead_lettered++;
	return 0;
}

/* Move an item that had its max_attempts to the dead-letter list. */
static int
dead_letter(struct broker *b, MDB_txn *txn, MDB_cursor *cur, MDB_val *k,
    MDB_val *v, const char *id, size_t alen, uint32_t attempts)
{
	uint64_t seq = key_seq(k, alen);
	int rc;

	if ((rc = move_to_dead(b, txn, cur, k, v, attempts)) != 0)
		return rc;
	log_error("delivery.dead_lettered", "agent", LOG_STR(id),
	    "seq", LOG_U64(seq), "attempts", LOG_U64(attempts),
	    "hint", LOG_STR("the agent never acknowledged this item; it is kept "
	    "in the dead-letter list: relais deadletters shows, requeues or "
	    "drops it"), NULL);
	return 0;
}

static int
bump_attempts(struct broker *b, MDB_cursor *cur, MDB_val *k, MDB_val *v, uint32_t attempts)
{
	/* LMDB's pages are read-only: write a modified copy. */
	unsigned char *copy = malloc(v->mv_size);
	MDB_val nv = { v->mv_size, copy };
	int rc;

	if (copy == NULL)
		return ENOMEM;
	memcpy(copy, v->mv_data, v->mv_size);
	be_put(copy, attempts, 4);
	rc = store_cursor_put(&b->st, cur, k, &nv, MDB_CURRENT);
	free(copy);
	return rc;
}

/*
 * Every item of s in (acked, upto] was sent and not acknowledged (its
 * acknowledgement timed out, or the agent said hello again): that send
 * counts.  An item that has now had max_attempts sends goes to the
 * dead-letter list, the others will be sent again.  Each send is counted
 * once: the caller rewinds the session (sent = acked) right after.
 */
static int
redeliver_session(struct broker *b, MDB_txn *txn, struct session *s,
    uint64_t upto)
{
	const char *id = s->agent->id;
	size_t alen = strlen(id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	rc = mbox_seek(b, txn, id, alen, s->acked + 1, key, &cur, &k, &v);
	if (cur == NULL)
		return rc;
	/* After mdb_cursor_del, MDB_NEXT moves to the item that followed. */
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t seq;
		uint32_t attempts;

		if (!key_in_mailbox(&k, id, alen) || v.mv_size < MBOX_ITEM_HDR ||
		    (seq = key_seq(&k, alen)) > upto)
			break;
		attempts = item_attempts(v.mv_data) + 1;
		if (attempts >= b->cfg->max_attempts) {
			if ((rc = dead_letter(b, txn, cur, &k, &v, id, alen,
			    attempts)) != 0)
				break;
			s->backlog_txn--;
			continue;
		}
		if ((rc = bump_attempts(b, cur, &k, &v, attempts)) != 0)
			break;
		b->counters.redelivered++;
		log_info("delivery.redelivered", "agent", LOG_STR(id),
		    "seq", LOG_U64(seq),
		    "attempt", LOG_U64((uint64_t)attempts + 1), NULL);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * The sends of sessions that started again (sessions_rewind) are
 * counted before anything is sent to them; false if that could not be
 * written (those sessions then wait for the next tick).
 */
static bool
count_rewound(struct broker *b)
{
	MDB_txn *txn;
	bool any = false;
	int rc = 0;

	for (size_t i = 0; i < b->peers.nsessions && !any; i++)
		any = b->peers.sessions[i].uncounted != 0;
	if (!any)
		return true;
	if ((rc = txn_begin(b, &txn)) != 0)
		goto fail;
	for (size_t i = 0; i < b->peers.nsessions && rc == 0; i++) {
		struct session *s = &b->peers.sessions[i];

		if (s->uncounted > s->acked)
			rc = redeliver_session(b, txn, s, s->uncounted);
	}
	if (rc != 0)
		txn_abort(b, txn);
	else
		rc = txn_commit(b, txn);
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < b->peers.nsessions; i++)
		b->peers.sessions[i].uncounted = 0;
	return true;
fail:
	log_error("delivery.redeliver_failed", "error", LOG_STR(mdb_strerror(rc)),
	    NULL);
	return false;
}

void
mailbox_redeliver(struct broker *b, int64_t mono)
{
	MDB_txn *txn;
	bool due = false;
	int rc = 0;

	for (size_t i = 0; i < b->peers.nsessions && !due; i++) {
		struct session *s = &b->peers.sessions[i];

		due = s->inflight > 0 && s->retry_at != 0 &&
		    mono >= s->retry_at;
	}
	if (!due || txn_begin(b, &txn) != 0)
		return;
	for (size_t i = 0; i < b->peers.nsessions && rc == 0; i++) {
		struct session *s = &b->peers.sessions[i];

		if (!(s->inflight > 0 && s->retry_at != 0 &&
		    mono >= s->retry_at))
			continue;
		rc = redeliver_session(b, txn, s, s->sent);
	}
	if (rc != 0)
		txn_abort(b, txn);
	else
		rc = txn_commit(b, txn);
	if (rc != 0) {
		log_error("delivery.redeliver_failed", "error",
		    LOG_STR(mdb_strerror(rc)), NULL);
		return;
	}
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];

		if (!(s->inflight > 0 && s->retry_at != 0 &&
		    mono >= s->retry_at))
			continue;
		s->sent = s->acked;
		s->inflight = 0;
		s->pending = true;
		s->backoff_ms *= 2;
		if (s->backoff_ms > b->cfg->redeliver_max_ms)
			s->backoff_ms = b->cfg->redeliver_max_ms;
		s->retry_at = 0;
	}
}

/*
 * The mailbox age limit (max_backlog_age_days; 0: none).  An item that has
 * waited that long in an agent's mailbox without being sent goes to the
 * dead-letter list, where the operator sees, requeues or drops it
 * (relais deadletters): the backlog of a partner whose agent is down for
 * weeks is bounded in time as well as in count (max_backlog), and what it
 * missed is kept for it, not lost.  Items in flight are left to
 * max_attempts.  An item's age counts from when it was queued: its
 * event's recorded_at, or its alert's latest change.  A tick moves at most
 * EXPIRE_MAX items, each agent's oldest first, in one transaction; each
 * agent's are logged once (delivery.expired, at error, with the count)
 * and counted in health's dead_letters.
 */
#define EXPIRE_MAX 1000

/* When item was queued (broker clock), or 0 if that cannot be read. */
static int64_t
item_queued_at(struct broker *b, MDB_txn *txn, const MDB_val *item)
{
	static struct alert a;      /* 4 KB: not on the stack */
	MDB_val payload;
	int64_t at = 0;

	if (item_payload(b, txn, item, &payload) == -1)
		return 0;
	if (((const unsigned char *)item->mv_data)[4] == MBOX_EVENT) {
		msgpack_unpacked up;
		struct rl_event ev;
		struct record_meta meta;
		struct rl_error err;

		msgpack_unpacked_init(&up);
		if (record_parse(payload.mv_data, payload.mv_size, &up, &ev, &meta,
		    &err) == RL_OK)
			at = meta.recorded_at;
		msgpack_unpacked_destroy(&up);
		return at;
	}
	if (alert_unpack(payload.mv_data, payload.mv_size, &a) != RL_OK)
		return 0;
	at = a.opened_at;
	if (a.acknowledged_at > at)
		at = a.acknowledged_at;
	return a.resolved_at > at ? a.resolved_at : at;
}

/* Expire s's unsent items queued before "before"; *budget counts down. */
static int
expire_session(struct broker *b, MDB_txn *txn, struct session *s,
    int64_t before, unsigned *budget, uint64_t *n)
{
	const char *id = s->agent->id;
	size_t alen = strlen(id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*n = 0;
	rc = mbox_seek(b, txn, id, alen, s->sent + 1, key, &cur, &k, &v);
	if (cur == NULL)
		return rc;
	/* After mdb_cursor_del, MDB_NEXT moves to the item that followed. */
	for (; rc == 0 && *budget > 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int64_t at;

		if (!key_in_mailbox(&k, id, alen) || v.mv_size < MBOX_ITEM_HDR ||
		    (at = item_queued_at(b, txn, &v)) == 0 || at >= before)
			break;
		if ((rc = move_to_dead(b, txn, cur, &k, &v, item_attempts(v.mv_data))) != 0)
			break;
		s->backlog_txn--;
		(*budget)--;
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == MDB_SUCCESS ? 0 : rc;
}

void
mailbox_expire(struct broker *b)
{
	int64_t limit = (int64_t)b->cfg->max_backlog_age_days * PW_DAY_MS;
	int64_t before = clock_now(&b->clock) - limit;
	unsigned budget = EXPIRE_MAX;
	uint64_t total = 0;
	MDB_txn *txn;
	int rc = 0;

	if (limit == 0 || txn_begin(b, &txn) != 0)
		return;
	for (size_t i = 0; i < b->peers.nsessions && rc == 0 && budget > 0; i++) {
		struct session *s = &b->peers.sessions[i];
		uint64_t n;

		if ((rc = expire_session(b, txn, s, before, &budget, &n)) != 0 || n == 0)
			continue;
		total += n;
		log_error("delivery.expired", "agent", LOG_STR(s->agent->id),
		    "items", LOG_U64(n), "max_backlog_age_days",
		    LOG_U64(b->cfg->max_backlog_age_days), "hint",
		    LOG_STR("these items waited longer than max_backlog_age_days "
		    "for an agent that does not collect; they are in the "
		    "dead-letter list: relais deadletters requeues them once its "
		    "agent is fixed, or drops them"), NULL);
	}
	if (rc != 0 || total == 0) {
		txn_abort(b, txn);
		if (rc != 0)
			log_error("delivery.expire_failed", "error",
			    LOG_STR(mdb_strerror(rc)), NULL);
		return;
	}
	if ((rc = txn_commit(b, txn)) != 0)
		log_error("delivery.expire_failed", "error", LOG_STR(mdb_strerror(rc)),
		    NULL);
}
