/*
 * durability = wal: a pass is durable once its record is in the
 * write-ahead log, and LMDB commits (with both of its syncs) only at a
 * checkpoint.
 *
 * How it stays true:
 *   1. Passes share one LMDB write transaction (b->durable.shared), begun after a
 *      checkpoint and committed by the next.  A pass writes into it; what
 *      it changes is recorded as it changes (store_put...: redo.h).
 *   2. At the end of the pass its changes are one record of the log,
 *      appended and synced (fdatasync) before any acknowledgement leaves
 *      (txn.c).  A pass that changed nothing writes nothing.
 *   3. A checkpoint writes "wal_gen" = the next generation into the shared
 *      transaction and commits it: LMDB returns after its data and meta
 *      pages are on disk.  Only then does the log start that generation,
 *      overwriting the older records.  LMDB on disk is thus always the last
 *      checkpoint, whole: the shared transaction writes only pages that
 *      checkpoint does not use (LMDB's copy on write), so whatever of them
 *      reaches the disk early changes nothing a restart reads.  One
 *      unsynced LMDB commit per pass (MDB_NOSYNC) would not do: a commit
 *      reuses pages the synced snapshot still needs two commits later, and
 *      rewrites both meta pages, so a power cut could leave a file that is
 *      no commit.
 *   4. Recovery (start-up): the records of generation "wal_gen", in order,
 *      applied to the last checkpoint, give every acknowledged pass back,
 *      byte for byte; a crash between the checkpoint's commit and the
 *      log's new generation leaves records of the older generation, which
 *      are ignored: they are in the checkpoint.
 *   5. A pass that fails after writing into the shared transaction cannot
 *      be taken out of it: the transaction is dropped (back to the last
 *      checkpoint) and the log is replayed into a new one, the same way as
 *      recovery, before the pass is tried again (txn_abort).
 *   6. Reads between passes go through the shared transaction, so queries
 *      and deliveries see every acknowledged pass (txn_read_begin).
 *   7. A failed append may have left a record on disk: the next write
 *      first checkpoints what the log held before it, so that record's
 *      generation is never read again.
 *   8. The pages the shared transaction changed stay out of the heap:
 *      with durability = wal the store is opened with MDB_WRITEMAP
 *      (store_open, server.c), so LMDB changes them in place in its map of
 *      data.mdb, page cache that the kernel may write back (point 3 says
 *      why that is harmless) and reclaim.  Copied into the heap, as LMDB
 *      does without it, they would grow with every page changed until the
 *      checkpoint, up to LMDB's limit of 512 MiB, past the broker's memory
 *      bound (flow.h).  The map's size is reserved on the disk (store.c),
 *      so that a full disk is a map that cannot grow, not a SIGBUS.
 */
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "relaisd.h"
#include "rltime.h"

#define WAL_GEN_KEY "wal_gen"

static bool
wal_on(const struct broker *b)
{
	return b->durable.wal.open;
}

static int
apply_record(void *arg, const unsigned char *p, size_t len)
{
	return redo_apply(arg, p, len);
}

int
checkpoint_open(struct broker *b)
{
	uint64_t seq = b->durable.wal.seq;
	int rc;

	if (!wal_on(b) || b->durable.shared != NULL)
		return 0;
	if ((rc = mdb_txn_begin(b->st.env, NULL, 0, &b->durable.shared)) != 0) {
		b->durable.shared = NULL;
		return rc;
	}
	if (seq == 0)
		return 0;
	rc = wal_scan(&b->durable.wal, b->durable.wal.gen, seq, apply_record, b->durable.shared);
	if (rc == 0 && b->durable.wal.seq != seq)
		rc = MDB_CORRUPTED;     /* the log lost records it had synced */
	if (rc != 0) {
		log_error("store.replay_failed", "records", LOG_U64(seq),
		    "error", LOG_STR(rc > 0 ? strerror(rc) : mdb_strerror(rc)),
		    NULL);
		mdb_txn_abort(b->durable.shared);
		b->durable.shared = NULL;
		b->durable.wal.seq = seq;
		return rc;
	}
	return 0;
}

void
checkpoint_rollback(struct broker *b)
{
	if (b->durable.shared == NULL)
		return;
	mdb_txn_abort(b->durable.shared);
	b->durable.shared = NULL;
}

int
checkpoint_now(struct broker *b)
{
	uint64_t gen = b->durable.wal.gen + 1, records = b->durable.wal.seq;
	uint64_t bytes = b->durable.wal.end - WAL_HEADER;
	int64_t t0 = rl_mono_us();
	int rc;

	if (!wal_on(b) || (b->durable.shared == NULL && records == 0 && !b->durable.wal_failed))
		return 0;
	if ((rc = checkpoint_open(b)) != 0)
		return rc;
	/* b->st.redo is NULL between passes: this write is not logged. */
	if ((rc = store_put_u64(&b->st, b->durable.shared, b->st.meta, WAL_GEN_KEY,
	    strlen(WAL_GEN_KEY), gen)) != 0) {
		checkpoint_rollback(b);
		return rc;
	}
	rc = mdb_txn_commit(b->durable.shared);
	b->durable.shared = NULL;
	if (rc != 0) {
		/* Back to the last checkpoint; the log still holds the rest. */
		log_error("store.checkpoint_failed", "records", LOG_U64(records),
		    "error", LOG_STR(mdb_strerror(rc)), NULL);
		return rc;
	}
	/* Debug: one line a second, what each checkpoint cost. */
	log_debug("store.checkpointed", "records", LOG_U64(records),
	    "bytes", LOG_U64(bytes), "us", LOG_U64((uint64_t)(rl_mono_us() - t0)),
	    NULL);
	wal_restart(&b->durable.wal, gen);
	b->durable.wal_failed = false;
	b->durable.checkpoint_mono = rl_mono_ms();
	b->durable.checkpoints++;
	return 0;
}

void
checkpoint_tick(struct broker *b)
{
	if (!wal_on(b) || (b->durable.shared == NULL && b->durable.wal.seq == 0))
		return;
	if (rl_mono_ms() - b->durable.checkpoint_mono >= b->cfg->checkpoint_ms ||
	    b->durable.wal.end - WAL_HEADER >= (b->durable.wal.size - WAL_HEADER) / 2)
		checkpoint_now(b);
}

/* The generation of the log the store's last checkpoint expects. */
static int
stored_gen(struct broker *b, uint64_t *gen)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(b->st.env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = store_get_u64(txn, b->st.meta, WAL_GEN_KEY, strlen(WAL_GEN_KEY), gen);
	mdb_txn_abort(txn);
	return rc;
}

int
checkpoint_recover(struct broker *b)
{
	const struct config *cfg = b->cfg;
	bool want = strcmp(cfg->durability, "wal") == 0;
	char err[1200];
	uint64_t gen;
	int rc;

	if (!want && !wal_exists(cfg->data_dir))
		return 0;
	if (wal_open(&b->durable.wal, cfg->data_dir, cfg->wal_size_mb, b->st.layout, err,
	    sizeof(err)) == -1) {
		log_error("store.wal_open_failed", "error", LOG_STR(err), NULL);
		return -1;
	}
	if ((rc = stored_gen(b, &gen)) != 0 ||
	    (rc = wal_scan(&b->durable.wal, gen, 0, NULL, NULL)) != 0) {
		log_error("store.wal_unreadable", "error", LOG_STR(rc ==
		    WAL_E_LAYOUT ? "the write-ahead log was written by another "
		    "version of relaisd" : rc > 0 ? strerror(rc) : mdb_strerror(rc)),
		    "hint", LOG_STR(rc == WAL_E_LAYOUT ? "start the relaisd that "
		    "wrote it once, and stop it: it applies the log" :
		    "check the data_dir's disk"), NULL);
		wal_close(&b->durable.wal);
		return -1;
	}
	if (b->durable.wal.seq > 0) {
		uint64_t records = b->durable.wal.seq;

		if ((rc = checkpoint_now(b)) != 0) {
			log_error("store.recovery_failed", "records", LOG_U64(records),
			    "error", LOG_STR(mdb_strerror(rc)),
			    "hint", LOG_STR("nothing was lost: the log is kept; "
			    "check the data_dir's disk and free space, and start "
			    "again"), NULL);
			wal_close(&b->durable.wal);
			return -1;
		}
		log_info("store.recovered", "records", LOG_U64(records),
		    "generation", LOG_U64(gen), NULL);
	}
	b->durable.checkpoint_mono = rl_mono_ms();
	if (!want) {
		/* Everything it held is checkpointed: the file is of no more use. */
		char path[1100];

		wal_close(&b->durable.wal);
		snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, WAL_FILE);
		unlink(path);
	}
	return 0;
}

void
checkpoint_close(struct broker *b)
{
	if (!wal_on(b))
		return;
	if (checkpoint_now(b) != 0)
		log_error("store.checkpoint_failed", "hint", LOG_STR("the log "
		    "keeps what was acknowledged: the next start applies it"),
		    NULL);
	checkpoint_rollback(b);
	wal_close(&b->durable.wal);
	redo_free(&b->durable.redo);
}
