/*
 * The write-ahead log seen from relaisd --backup, --compact and --verify,
 * beside a running broker or after a crash: the store alone is the last
 * checkpoint, and acknowledged passes since are only in the log.
 *
 * A copy must hold them.  The log's records of the store's generation are
 * read first, then the generation is read again: if a checkpoint came in
 * between, the records read may be torn by the next generation, so it
 * starts over (a checkpoint is rare next to a read of the log).  Then the
 * store is copied, from its own read transaction: if that copy's
 * generation is still the one read, the records are applied to it; if it
 * is newer, the copy's checkpoint already holds them.  Either way the copy
 * holds every pass acknowledged before the command started.
 *
 * The records are applied through store_open on the copy, whose tables get
 * the handles the broker's have (the layout check makes sure).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relaisd.h"

#define COLLECT_TRIES 50

static int
read_gen(struct store *st, uint64_t *gen)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = store_get_u64(txn, st->meta, "wal_gen", 7, gen);
	mdb_txn_abort(txn);
	return rc;
}

/* A record's operations, after those already kept (they chain as one). */
static int
keep_record(void *arg, const unsigned char *p, size_t len)
{
	struct wal_pending *wp = arg;

	if (!redo_add_ops(&wp->ops, p, len))
		return ENOMEM;
	wp->records++;
	return 0;
}

int
wal_pending_read(struct store *st, const char *dir, struct wal_pending *wp,
    char *err, size_t errlen)
{
	struct wal w;
	uint64_t again;
	int rc = 0;

	memset(wp, 0, sizeof(*wp));
	wp->ops.max = SIZE_MAX;
	for (int i = 0; i < COLLECT_TRIES; i++) {
		redo_clear(&wp->ops);
		wp->records = 0;
		if ((rc = read_gen(st, &wp->gen)) != 0)
			break;
		if (!wal_exists(dir))
			return 0;
		if (wal_open(&w, dir, 0, st->layout, err, errlen) == -1)
			return -1;
		rc = wal_scan(&w, wp->gen, 0, keep_record, wp);
		wal_close(&w);
		if (rc != 0 || (rc = read_gen(st, &again)) != 0)
			break;
		if (again == wp->gen)
			return 0;
	}
	snprintf(err, errlen, "cannot read the write-ahead log in %s: %s", dir,
	    rc == 0 ? "the broker checkpoints faster than it can be read; "
	    "try again" : rc == WAL_E_LAYOUT ? "it was written by another "
	    "version of relaisd" : rc > 0 ? strerror(rc) : mdb_strerror(rc));
	wal_pending_free(wp);
	return -1;
}

void
wal_pending_free(struct wal_pending *wp)
{
	redo_free(&wp->ops);
	memset(wp, 0, sizeof(*wp));
}

int
wal_pending_apply(const struct wal_pending *wp, const char *dir,
    uint64_t map_size_mb, char *err, size_t errlen)
{
	struct store copy;
	char lock[1100];
	uint64_t gen;
	MDB_txn *txn;
	int rc;

	if (wp->records == 0)
		return 0;
	if (store_open(&copy, dir, map_size_mb, false, err, errlen) == -1)
		return -1;
	if ((rc = read_gen(&copy, &gen)) == 0 && gen == wp->gen) {
		if ((rc = mdb_txn_begin(copy.env, NULL, 0, &txn)) == 0) {
			/* As a checkpoint would: the records are in, their
			 * generation is over. */
			if ((rc = redo_apply(txn, wp->ops.buf + WAL_RECORD_HDR,
			    redo_payload_len(&wp->ops))) == 0 &&
			    (rc = store_put_u64(&copy, txn, copy.meta, "wal_gen", 7,
			    wp->gen + 1)) == 0)
				rc = mdb_txn_commit(txn);
			else
				mdb_txn_abort(txn);
		}
	}
	store_close(&copy);
	/* The lock file belongs to a running environment; this one is closed. */
	snprintf(lock, sizeof(lock), "%s/lock.mdb", dir);
	unlink(lock);
	if (rc != 0) {
		snprintf(err, errlen, "cannot apply the write-ahead log's %llu "
		    "records to the copy: %s", (unsigned long long)wp->records,
		    mdb_strerror(rc));
		return -1;
	}
	return 0;
}
