/*
 * LMDB environment and the small helpers every table uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sodium.h>

#include "bigendian.h"
#include "relais_proto.h"
#include "store.h"
#include "wal.h"

static int
open_db(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
	return mdb_dbi_open(txn, name, flags, dbi);
}

/*
 * The layout of the tables (store.h) has a number, kept in meta "format".
 * A store without one is either new (no log yet: it gets this number) or
 * was written before the number existed, by a layout this relaisd cannot
 * read; so is one with another number.  Refusing to open it is better than
 * refusing every event about its participants later.  The two layouts
 * before this one are upgraded when the store is opened for writing, in
 * the opening transaction, so that a crash leaves either the old store or
 * the upgraded one (store_upgrade.c).
 */
static int
check_format(struct store *st, MDB_txn *txn, const char *dir, bool read_only,
    char *errbuf, size_t errlen)
{
	uint64_t format, gen;
	int rc;

	if ((rc = store_get_u64(txn, st->meta, "format", 6, &format)) != 0 ||
	    (rc = store_get_u64(txn, st->meta, "wal_gen", 7, &gen)) != 0)
		return rc;
	if (format == STORE_FORMAT)
		return 0;
	/* Records of the older layout must go in before the upgrade. */
	if (store_upgradable(format) && !read_only && wal_holds(dir, gen)) {
		snprintf(errbuf, errlen, "the write-ahead log holds changes the "
		    "relaisd of store format %llu acknowledged and did not "
		    "checkpoint: start that relaisd once and stop it (it applies "
		    "them), then this one", (unsigned long long)format);
		return -1;
	}
	if (store_upgradable(format) && !read_only)
		return store_upgrade(st, txn, format);
	if (format == 0 && store_count(txn, st->log) == 0)
		return read_only ? 0 : store_put_u64(st, txn, st->meta, "format",
		    6, STORE_FORMAT);
	if (store_upgradable(format))
		snprintf(errbuf, errlen, "the store has a layout before this "
		    "relaisd's (store format %llu; this one reads format %d): start "
		    "relaisd on it once, which upgrades it, then retry",
		    (unsigned long long)format, STORE_FORMAT);
	else
		snprintf(errbuf, errlen, "the store was written by another version "
		    "of relaisd (store format %llu; this one reads format %d): point "
		    "data_dir at an empty folder, or run the relaisd that wrote it",
		    (unsigned long long)(format == 0 ? 1 : format), STORE_FORMAT);
	return -1;
}

/*
 * The store's format and each table's name with its handle (the main table
 * lists the names in order), hashed: what a redo record's table numbers
 * mean.
 */
static int
layout_of(struct store *st, MDB_txn *txn)
{
	static const unsigned char key[crypto_shorthash_KEYBYTES] =
	    "relais-layout-v1";
	unsigned char text[2048], h[crypto_shorthash_BYTES];
	size_t n;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_dbi dbi;
	int rc;

	n = (size_t)snprintf((char *)text, sizeof(text), "%d", STORE_FORMAT);
	if ((rc = mdb_cursor_open(txn, 1, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char name[64];

		if (k.mv_size >= sizeof(name) || n + k.mv_size + 8 > sizeof(text))
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (mdb_dbi_open(txn, name, 0, &dbi) != 0)
			continue;
		n += (size_t)snprintf((char *)text + n, sizeof(text) - n, " %s=%u",
		    name, dbi);
	}
	mdb_cursor_close(cur);
	crypto_shorthash(h, text, n, key);
	st->layout = (uint32_t)be_get(h, 4);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * With MDB_WRITEMAP, LMDB writes a page by storing into its map of
 * data.mdb, a file it extends to the map's size with ftruncate (holes, no
 * disk blocks).  Storing into a hole when the disk is full kills the
 * process (SIGBUS), where pwrite() would have returned ENOSPC.  So the
 * map's whole size is reserved on the disk (fallocate) when the store
 * opens and before the map grows: a full disk is then a map that cannot
 * grow, refused with storage_full as without the map.  A file system that
 * cannot reserve (EOPNOTSUPP) is used as it is.
 */
static int
reserve(struct store *st, uint64_t size)
{
	unsigned flags;
	int fd;

	if (mdb_env_get_flags(st->env, &flags) != 0 || !(flags & MDB_WRITEMAP))
		return 0;
	if (mdb_env_get_fd(st->env, &fd) != 0)
		return EINVAL;
	if (fallocate(fd, 0, 0, (off_t)size) == 0 || errno == EOPNOTSUPP)
		return 0;
	return errno;
}

int
store_open(struct store *st, const char *dir, uint64_t map_size_mb,
    unsigned how, char *errbuf, size_t errlen)
{
	bool read_only = how == STORE_READ_ONLY;
	MDB_txn *txn = NULL;
	int rc, dead = 0, missing;
	unsigned dbflags = read_only ? 0 : MDB_CREATE;

	memset(st, 0, sizeof(*st));
	if (!read_only && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(errbuf, errlen, "cannot create data_dir %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((rc = mdb_env_create(&st->env)) != 0)
		goto fail;
	if ((rc = mdb_env_set_maxdbs(st->env, STORE_MAX_DBS)) != 0)
		goto fail;
	if ((rc = mdb_env_set_mapsize(st->env, map_size_mb << 20)) != 0)
		goto fail;
	/*
	 * MDB_NOTLS: the read transactions of queries are short and never
	 * cross threads, but this keeps reader slots tied to transactions,
	 * not threads.  No MDB_NOSYNC / MDB_NOMETASYNC: durability first.
	 */
	if ((rc = mdb_env_open(st->env, dir,
	    MDB_NOTLS | (read_only ? MDB_RDONLY : 0) |
	    (how == STORE_WRITE_MAP ? MDB_WRITEMAP : 0), 0600)) != 0)
		goto fail;
	/* A crashed broker or tool may have left reader slots behind. */
	mdb_reader_check(st->env, &dead);
	if (how == STORE_WRITE_MAP) {
		MDB_envinfo info = { 0 };

		if ((rc = mdb_env_info(st->env, &info)) != 0 ||
		    (rc = reserve(st, info.me_mapsize)) != 0) {
			snprintf(errbuf, errlen, "cannot reserve the map's %llu MiB on "
			    "the disk of %s: %s (free some space, or lower "
			    "map_size_mb)", (unsigned long long)(info.me_mapsize >> 20),
			    dir, rc > 0 ? strerror(rc) : mdb_strerror(rc));
			mdb_env_close(st->env);
			st->env = NULL;
			return -1;
		}
	}

	if ((rc = mdb_txn_begin(st->env, NULL, read_only ? MDB_RDONLY : 0, &txn)) != 0)
		goto fail;
	if ((rc = open_db(txn, "meta", dbflags, &st->meta)) != 0 ||
	    (rc = open_db(txn, "log", dbflags, &st->log)) != 0 ||
	    (rc = open_db(txn, "participants", dbflags, &st->participants)) != 0 ||
	    (rc = open_db(txn, "deadlines", dbflags, &st->deadlines)) != 0 ||
	    (rc = open_db(txn, "alerts", dbflags, &st->alerts)) != 0 ||
	    (rc = open_db(txn, "alert_open", dbflags, &st->alert_open)) != 0 ||
	    (rc = open_db(txn, "mbox", dbflags, &st->mbox)) != 0 ||
	    (rc = open_db(txn, "mbox_next", dbflags, &st->mbox_next)) != 0 ||
	    (rc = open_db(txn, "dead", dbflags, &st->dead)) != 0 ||
	    (rc = open_db(txn, "queued", dbflags, &st->queued)) != 0 ||
	    (rc = open_db(txn, "indicators", dbflags, &st->indicators)) != 0 ||
	    (rc = open_db(txn, "ind_seen", dbflags, &st->ind_seen)) != 0)
		goto fail;
	/* Tables a store of a layout before lacks (check_format()). */
	rc = open_db(txn, "alert_index", dbflags, &st->alert_index);
	if (rc == 0)
		rc = open_db(txn, "alert_subject", dbflags, &st->alert_subject);
	if (rc == 0)
		rc = open_db(txn, "event_ids", dbflags, &st->dedup);
	if (rc != 0 && !(rc == MDB_NOTFOUND && read_only))
		goto fail;
	missing = rc;
	if ((rc = check_format(st, txn, dir, read_only, errbuf, errlen)) == -1) {
		mdb_txn_abort(txn);
		mdb_env_close(st->env);
		st->env = NULL;
		return -1;
	}
	if (rc == 0)
		rc = missing;
	if (rc != 0 || (rc = layout_of(st, txn)) != 0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	return 0;

fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	snprintf(errbuf, errlen, "cannot open the store in %s: %s%s", dir,
	    mdb_strerror(rc), rc == MDB_NOTFOUND && read_only ?
	    " (no store there yet: start the broker once)" : "");
	if (st->env != NULL)
		mdb_env_close(st->env);
	st->env = NULL;
	return -1;
}

void
store_close(struct store *st)
{
	if (st->env != NULL)
		mdb_env_close(st->env);
	st->env = NULL;
}

/* Whether store_grow would grow the map (see store.h); *size: its size. */
static bool
grow_due(struct store *st, uint64_t max, bool full, uint64_t *size)
{
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t used;

	if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &ms) != 0)
		return false;
	*size = info.me_mapsize;
	used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	return *size < max && (full || used >= *size - *size / 4);
}

bool
store_grow_due(struct store *st, uint64_t max_mb, bool full)
{
	uint64_t size;

	return grow_due(st, max_mb << 20, full, &size);
}

int
store_grow(struct store *st, uint64_t max_mb, bool full, uint64_t *map_mb)
{
	uint64_t size = 0, max = max_mb << 20;
	int rc;

	*map_mb = 0;
	if (!grow_due(st, max, full, &size)) {
		*map_mb = size >> 20;
		return 0;
	}
	size = size * 2 > max ? max : size * 2;
	if ((rc = reserve(st, size)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, size)) != 0)
		return rc;
	*map_mb = size >> 20;
	return 1;
}

int
store_code(int mdb_rc)
{
	return mdb_rc == MDB_MAP_FULL || mdb_rc == ENOSPC || mdb_rc == EDQUOT ?
	    RL_E_STORAGE_FULL : RL_E_STORAGE;
}

int
store_cause(const struct store *st, int rc)
{
	const char *path;
	struct statvfs fs;

	if (rc != EIO || st->env == NULL || mdb_env_get_path(st->env, &path) != 0 ||
	    statvfs(path, &fs) != 0)
		return rc;
	return (uint64_t)fs.f_bavail * fs.f_frsize < STORE_FULL_BELOW ? ENOSPC : rc;
}

int
store_error(const struct store *st, struct rl_error *err, int rc)
{
	int cause = store_cause(st, rc), code = store_code(cause);

	rl_error_set(err, code, "", "%s (%s)", rl_code_text(code),
	    mdb_strerror(cause));
	err->cause = cause;
	return code;
}

void
store_put_be64(void *p, uint64_t v)
{
	be_put(p, v, 8);
}

uint64_t
store_be64(const void *p)
{
	return be_get(p, 8);
}

size_t
store_key_seq(char *buf, const char *prefix, size_t plen, uint64_t seq)
{
	memcpy(buf, prefix, plen);
	buf[plen] = '\0';
	store_put_be64(buf + plen + 1, seq);
	return plen + 1 + 8;
}

int
store_get_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    uint64_t *out)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc;

	*out = 0;
	if ((rc = mdb_get(txn, dbi, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*out = store_be64(v.mv_data);
	return 0;
}

int
store_put_u64(struct store *st, MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t klen, uint64_t val)
{
	unsigned char b[8];
	MDB_val k = { klen, (void *)key }, v = { 8, b };

	store_put_be64(b, val);
	return store_put(st, txn, dbi, &k, &v, 0);
}

/*
 * The change is recorded before it is made: the key and value may point
 * into a page the write itself moves.  A refused write (MDB_KEYEXIST of
 * MDB_NOOVERWRITE...) takes its record back.
 */
static void
record(struct store *st, MDB_dbi dbi, const MDB_val *k, const MDB_val *v,
    struct redo *saved)
{
	if (st->redo == NULL)
		return;
	*saved = *st->redo;
	redo_add(st->redo, dbi, k, v);
}

static int
settle(struct store *st, int rc, const struct redo *saved)
{
	if (rc != 0 && st->redo != NULL) {
		st->redo->len = saved->len;
		st->redo->overflow = saved->overflow;
	}
	return rc;
}

int
store_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v,
    unsigned flags)
{
	struct redo saved = { 0 };

	record(st, dbi, k, v, &saved);
	return settle(st, mdb_put(txn, dbi, k, v, flags), &saved);
}

int
store_del(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
	struct redo saved = { 0 };

	record(st, dbi, k, NULL, &saved);
	return settle(st, mdb_del(txn, dbi, k, NULL), &saved);
}

int
store_cursor_put(struct store *st, MDB_cursor *cur, MDB_val *k, MDB_val *v,
    unsigned flags)
{
	struct redo saved = { 0 };

	record(st, mdb_cursor_dbi(cur), k, v, &saved);
	return settle(st, mdb_cursor_put(cur, k, v, flags), &saved);
}

int
store_cursor_del(struct store *st, MDB_cursor *cur)
{
	struct redo saved = { 0 };
	MDB_val k = { 0, NULL }, v;
	int rc;

	if (st->redo != NULL &&
	    (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT)) != 0)
		return rc;
	record(st, mdb_cursor_dbi(cur), &k, NULL, &saved);
	return settle(st, mdb_cursor_del(cur, 0), &saved);
}

uint64_t
store_count(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_stat ms;

	if (mdb_stat(txn, dbi, &ms) != 0)
		return 0;
	return ms.ms_entries;
}

uint64_t
store_count_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen)
{
	MDB_cursor *cur;
	MDB_val k = { plen, (void *)prefix }, v;
	uint64_t n = 0;
	int rc;

	if (mdb_cursor_open(txn, dbi, &cur) != 0)
		return 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	return n;
}
