/*
 * Write transactions.  A few counters (the log's last seq, each mailbox's
 * next seq) are kept in memory so that an event costs no read of them; they
 * are written in the transaction just before it commits, and reloaded from
 * the store when a transaction is aborted, so memory never runs ahead of
 * what is durable.  The participant records a transaction changed are
 * written back the same way (participants.c), and so are the indicator
 * counts (indicators.c).
 *
 * What the transaction reports follows its fate too: the log lines written
 * while it is open (event.accepted, alert.opened...) are held and written
 * only if it commits, and the alert counters it moved are put back if it
 * does not.
 */
#include "log.h"
#include "relaisd.h"

int
txn_begin(struct broker *b, MDB_txn **txn)
{
	int rc;

	if ((rc = mdb_txn_begin(b->st.env, NULL, 0, txn)) != 0)
		return rc;
	b->txn_start.alerts_opened = b->alerts_opened;
	b->txn_start.alerts_resolved = b->alerts_resolved;
	log_hold();
	return 0;
}

/* The transaction did not commit: forget what it said it did. */
static void
undo_reports(struct broker *b)
{
	log_release(false);
	b->alerts_opened = b->txn_start.alerts_opened;
	b->alerts_resolved = b->txn_start.alerts_resolved;
	mailbox_backlog_settle(b, false);
}

/* The mailboxes' next seqs that changed, into the transaction. */
static int
write_counters(struct broker *b, MDB_txn *txn)
{
	int rc;

	for (size_t i = 0; i < b->nsessions; i++) {
		struct session *s = &b->sessions[i];
		const char *id = s->agent->id;

		if (!s->next_dirty)
			continue;
		if ((rc = store_put_u64(txn, b->st.mbox_next, id, strlen(id),
		    s->next_seq)) != 0)
			return rc;
		s->next_dirty = false;
	}
	return 0;
}

int
txn_commit(struct broker *b, MDB_txn *txn)
{
	int rc;

	if ((rc = participants_flush(b, txn)) != 0 ||
	    (rc = indicators_flush(b, txn)) != 0 ||
	    (b->counters_dirty && (rc = write_counters(b, txn)) != 0)) {
		txn_abort(b, txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		/* mdb_txn_commit frees the transaction even when it fails. */
		participants_clear(b);
		indicators_clear(b);
		broker_load_counters(b);
		undo_reports(b);
		return rc;
	}
	b->counters_dirty = false;
	log_release(true);
	mailbox_backlog_settle(b, true);
	return 0;
}

void
txn_abort(struct broker *b, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	undo_reports(b);
	participants_clear(b);
	indicators_clear(b);
	if (b->counters_dirty)
		broker_load_counters(b);
}

/* From the store: the log's last key, and "unknown" for mailboxes. */
int
broker_load_counters(struct broker *b)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	for (size_t i = 0; i < b->nsessions; i++) {
		b->sessions[i].next_seq = 0;
		b->sessions[i].next_dirty = false;
	}
	b->counters_dirty = false;
	b->log_seq = 0;
	if ((rc = mdb_txn_begin(b->st.env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, b->st.log, &cur)) == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8)
			b->log_seq = store_be64(k.mv_data);
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		log_error("store.read_failed", "error", LOG_STR(mdb_strerror(rc)), NULL);
		return rc;
	}
	return 0;
}
