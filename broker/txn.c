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
 *
 * With durability = wal, "the transaction" is a pass within the shared
 * transaction (checkpoint.c): it commits when its changes are one synced
 * record of the write-ahead log, and aborts by going back to the last
 * checkpoint, the log replayed.
 */
#include <string.h>

#include "log.h"
#include "relaisd.h"

/* A pass in the shared transaction, its changes recorded. */
static int
begin_pass(struct broker *b, MDB_txn **txn)
{
	int rc;

	if (b->durable.wal_failed && (rc = checkpoint_now(b)) != 0)
		return rc;
	if ((rc = checkpoint_open(b)) != 0)
		return rc;
	redo_clear(&b->durable.redo);
	/* What does not fit in the log's room is saved by a checkpoint. */
	b->durable.redo.max = b->durable.wal.size - b->durable.wal.end;
	b->st.redo = &b->durable.redo;
	*txn = b->durable.shared;
	return 0;
}

int
txn_begin(struct broker *b, MDB_txn **txn)
{
	int rc;

	/*
	 * Counters that could not be reloaded (the store could not be read)
	 * would number the next event as the log's first: read them again,
	 * or write nothing.
	 */
	if (b->tx.counters_stale && (rc = broker_load_counters(b)) != 0)
		return rc;
	if (b->durable.wal.open)
		rc = begin_pass(b, txn);
	else
		rc = mdb_txn_begin(b->st.env, NULL, 0, txn);
	if (rc != 0)
		return rc;
	b->tx.at_begin.alerts_opened = b->counters.alerts_opened;
	b->tx.at_begin.alerts_resolved = b->counters.alerts_resolved;
	passlog_clear(b->tx.passlog);
	log_hold();
	return 0;
}

/* The transaction did not commit: forget what it said it did. */
static void
undo_reports(struct broker *b)
{
	log_release(false);
	passlog_clear(b->tx.passlog);
	b->counters.alerts_opened = b->tx.at_begin.alerts_opened;
	b->counters.alerts_resolved = b->tx.at_begin.alerts_resolved;
	mailbox_backlog_settle(b, false);
}

/* The mailboxes' next seqs that changed, into the transaction. */
static int
write_counters(struct broker *b, MDB_txn *txn)
{
	int rc;

	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];
		const char *id = s->agent->id;

		if (!s->next_dirty)
			continue;
		if ((rc = store_put_u64(&b->st, txn, b->st.mbox_next, id, strlen(id),
		    s->next_seq)) != 0)
			return rc;
		s->next_dirty = false;
	}
	return 0;
}

/*
 * The pass's changes made durable: one record appended to the log and
 * synced, or, when they do not fit in it, a checkpoint.  On failure the
 * shared transaction is dropped (it holds changes that are not durable).
 */
static int
commit_pass(struct broker *b)
{
	int rc;

	b->st.redo = NULL;
	if (redo_empty(&b->durable.redo))
		return 0;
	if (b->durable.redo.overflow || !wal_fits(&b->durable.wal, redo_payload_len(&b->durable.redo)))
		return checkpoint_now(b);
	if ((rc = wal_append(&b->durable.wal, b->durable.redo.buf,
	    redo_payload_len(&b->durable.redo))) != 0) {
		log_error("store.wal_append_failed", "error", LOG_STR(strerror(rc)),
		    "hint", LOG_STR("check the data_dir's disk"), NULL);
		b->durable.wal_failed = true;
		checkpoint_rollback(b);
		return rc;
	}
	b->durable.wal_full_retried = false;
	return 0;
}

int
txn_commit(struct broker *b, MDB_txn *txn)
{
	int rc;

	if ((rc = participants_flush(b, txn)) != 0 ||
	    (rc = indicators_flush(b, txn)) != 0 ||
	    (b->tx.counters_dirty && (rc = write_counters(b, txn)) != 0)) {
		txn_abort(b, txn);
		return rc;
	}
	/* mdb_txn_commit frees the transaction even when it fails. */
	rc = b->durable.wal.open ? commit_pass(b) : mdb_txn_commit(txn);
	if (rc != 0) {
		participants_clear(b);
		indicators_clear(b);
		broker_load_counters(b);
		undo_reports(b);
		return rc;
	}
	b->tx.counters_dirty = false;
	log_release(true);
	mailbox_backlog_settle(b, true);
	return 0;
}

void
txn_abort(struct broker *b, MDB_txn *txn)
{
	if (!b->durable.wal.open)
		mdb_txn_abort(txn);
	else {
		b->st.redo = NULL;
		/* Changes in the shared transaction go only with all of it. */
		if (!redo_empty(&b->durable.redo))
			checkpoint_rollback(b);
	}
	undo_reports(b);
	participants_clear(b);
	indicators_clear(b);
	if (b->tx.counters_dirty)
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

	for (size_t i = 0; i < b->peers.nsessions; i++) {
		b->peers.sessions[i].next_seq = 0;
		b->peers.sessions[i].next_dirty = false;
	}
	b->tx.counters_dirty = false;
	b->tx.counters_stale = true;
	b->tx.log_seq = 0;
	if ((rc = txn_read_begin(b, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, b->st.log, &cur)) == 0) {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == 8)
			b->tx.log_seq = store_be64(k.mv_data);
		mdb_cursor_close(cur);
	}
	txn_read_end(b, txn);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		log_error("store.read_failed", "error", LOG_STR(mdb_strerror(rc)), NULL);
		return rc;
	}
	b->tx.counters_stale = false;
	return 0;
}

int
txn_read_begin(struct broker *b, MDB_txn **txn)
{
	int rc;

	if (!b->durable.wal.open)
		return mdb_txn_begin(b->st.env, NULL, MDB_RDONLY, txn);
	if ((rc = checkpoint_open(b)) != 0)
		return rc;
	*txn = b->durable.shared;
	return 0;
}

void
txn_read_end(struct broker *b, MDB_txn *txn)
{
	if (txn != b->durable.shared)
		mdb_txn_abort(txn);
}
