/*
 * Copies of the store: relaisd --backup DIR and relaisd --compact DIR.
 *
 * --backup: mdb_env_copyfd2() copies from one read transaction, so the
 * copy is the state of one commit even while a broker keeps writing;
 * MDB_CP_COMPACT leaves free pages out.  It copies pages as they are, so
 * the unused bytes inside a page that once held a deleted record go too.
 *
 * --compact: every table is read in one read transaction and written,
 * record by record in key order, into a new environment.  The new file
 * holds the live records and nothing else: no free page, no leftover byte
 * of an erased person.  That is the way to make erased data unrecoverable
 * (README, "Compacting").  It too can run beside a live broker.
 *
 * With durability = wal, the store is the last checkpoint: either way the
 * write-ahead log's records past it are applied to the copy (wal_copy.c),
 * which then holds every pass acknowledged before the command started.
 *
 * Either way the copy is created mode 0600 (never readable by others, not
 * even while it is written), opens like any store (point a config's
 * data_dir at it), and is removed if the copy fails: a partial file is
 * never left to look like a backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relaisd.h"

#define COMPACT_TXN_RECORDS 50000   /* records per write transaction */

/* The destination folder: created if absent, refused if it holds a store. */
static int
prepare_dir(const char *dir, const char *what, FILE *out)
{
	char path[1024];

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(out, "%s: cannot create %s: %s\n", what, dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (access(path, F_OK) == 0) {
		fprintf(out, "%s: %s holds a store already; give an empty or new "
		    "folder\n", what, dir);
		return -1;
	}
	return 0;
}

static void
remove_copy(const char *dir)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
}

/* The end of a copy's line: the write-ahead log's records it applied. */
static void
report_log_applied(const struct wal_pending *wp, FILE *out)
{
	if (wp->records > 0)
		fprintf(out, ", with the %llu records of its write-ahead log",
		    (unsigned long long)wp->records);
	fputc('\n', out);
}

int
backup_store(const struct config *cfg, const char *dir, FILE *out)
{
	struct store st;
	struct wal_pending wp;
	MDB_envinfo info;
	char path[1024], err[1200];
	int fd, rc;

	if (prepare_dir(dir, "backup", out) == -1)
		return -1;
	if (store_open(&st, cfg->data_dir, cfg->map_size_mb, true, err,
	    sizeof(err)) == -1) {
		fprintf(out, "backup: %s\n", err);
		return -1;
	}
	if (wal_pending_read(&st, cfg->data_dir, &wp, err, sizeof(err)) == -1) {
		fprintf(out, "backup: %s\n", err);
		store_close(&st);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	/* O_EXCL: never write into a file someone else made; 0600 from the start. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		fprintf(out, "backup: cannot create %s: %s\n", path, strerror(errno));
		wal_pending_free(&wp);
		store_close(&st);
		return -1;
	}
	if ((rc = mdb_env_info(st.env, &info)) == 0)
		rc = mdb_env_copyfd2(st.env, fd, MDB_CP_COMPACT);
	if (rc == 0 && fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	store_close(&st);
	if (rc != 0) {
		unlink(path);
		wal_pending_free(&wp);
		fprintf(out, "backup: cannot copy the store to %s: %s (nothing was "
		    "left there; check the free space and try again)\n", dir,
		    mdb_strerror(rc));
		return -1;
	}
	/* Acknowledged passes not yet checkpointed: into the copy. */
	rc = wal_pending_apply(&wp, dir, info.me_mapsize >> 20, err, sizeof(err));
	if (rc == -1) {
		remove_copy(dir);
		wal_pending_free(&wp);
		fprintf(out, "backup: %s (nothing was left there)\n", err);
		return -1;
	}
	fprintf(out, "backup: the store of %s is copied to %s", cfg->data_dir, dir);
	report_log_applied(&wp, out);
	wal_pending_free(&wp);
	return 0;
}

/* One table, record by record, from src into a new table of dst. */
static int
copy_table(MDB_env *dst, MDB_txn *src, const char *name, uint64_t *records)
{
	MDB_dbi sdbi, ddbi;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned flags;
	uint64_t in_txn = 0;
	int rc;

	if ((rc = mdb_dbi_open(src, name, 0, &sdbi)) != 0 ||
	    (rc = mdb_dbi_flags(src, sdbi, &flags)) != 0)
		return rc;
	if ((rc = mdb_txn_begin(dst, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, &ddbi)) != 0 ||
	    (rc = mdb_cursor_open(src, sdbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		/* In key order: MDB_APPEND fills each page before the next. */
		if ((rc = mdb_put(txn, ddbi, &k, &v, MDB_APPEND)) != 0)
			break;
		(*records)++;
		if (++in_txn == COMPACT_TXN_RECORDS) {
			in_txn = 0;
			if ((rc = mdb_txn_commit(txn)) != 0 ||
			    (rc = mdb_txn_begin(dst, NULL, 0, &txn)) != 0) {
				txn = NULL;
				break;
			}
		}
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		if (txn != NULL)
			mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/*
 * Every named table of src into dst.  The main table of an environment
 * lists the names of the others.
 */
static int
copy_tables(MDB_env *dst, MDB_txn *src, uint64_t *records)
{
	char names[STORE_MAX_DBS][64];
	size_t n = 0;
	MDB_dbi main;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_dbi_open(src, NULL, 0, &main)) != 0 ||
	    (rc = mdb_cursor_open(src, main, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (n == STORE_MAX_DBS || k.mv_size >= sizeof(names[0])) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(names[n], k.mv_data, k.mv_size);
		names[n++][k.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = copy_table(dst, src, names[i], records);
	return rc;
}

int
compact_store(const struct config *cfg, const char *dir, FILE *out)
{
	struct store st;
	struct wal_pending wp;
	MDB_env *dst = NULL;
	MDB_txn *src = NULL;
	MDB_envinfo info;
	char err[1200];
	uint64_t records = 0;
	int rc;

	if (prepare_dir(dir, "compact", out) == -1)
		return -1;
	if (store_open(&st, cfg->data_dir, cfg->map_size_mb, true, err,
	    sizeof(err)) == -1) {
		fprintf(out, "compact: %s\n", err);
		return -1;
	}
	if (wal_pending_read(&st, cfg->data_dir, &wp, err, sizeof(err)) == -1) {
		fprintf(out, "compact: %s\n", err);
		store_close(&st);
		return -1;
	}
	/* The copy can hold what the store holds: the same map size. */
	if ((rc = mdb_env_info(st.env, &info)) != 0 ||
	    (rc = mdb_env_create(&dst)) != 0 ||
	    (rc = mdb_env_set_maxdbs(dst, STORE_MAX_DBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(dst, info.me_mapsize)) != 0 ||
	    (rc = mdb_env_open(dst, dir, MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(st.env, NULL, MDB_RDONLY, &src)) != 0)
		goto out;
	rc = copy_tables(dst, src, &records);
	if (rc == 0)
		rc = mdb_env_sync(dst, 1);
out:
	if (src != NULL)
		mdb_txn_abort(src);
	if (dst != NULL)
		mdb_env_close(dst);
	store_close(&st);
	/* Acknowledged passes not yet checkpointed: into the copy. */
	if (rc == 0 && wal_pending_apply(&wp, dir, info.me_mapsize >> 20, err,
	    sizeof(err)) == -1) {
		remove_copy(dir);
		wal_pending_free(&wp);
		fprintf(out, "compact: %s (nothing was left there)\n", err);
		return -1;
	}
	if (rc != 0) {
		wal_pending_free(&wp);
		remove_copy(dir);
		fprintf(out, "compact: cannot write the compacted store to %s: %s "
		    "(nothing was left there; check the free space and try "
		    "again)\n", dir, mdb_strerror(rc));
		return -1;
	}
	/* The lock file belongs to a running environment; this one is closed. */
	snprintf(err, sizeof(err), "%s/lock.mdb", dir);
	unlink(err);
	fprintf(out, "compact: the store of %s is rewritten in %s (%llu records, "
	    "no free pages)", cfg->data_dir, dir, (unsigned long long)records);
	report_log_applied(&wp, out);
	wal_pending_free(&wp);
	return 0;
}
