/*
 * Bringing a store of an older layout to this one (store.h), inside the
 * transaction that opens it for writing: a crash leaves the old store or
 * the upgraded one, never a mix.
 *
 *   5 -> 6  the alert indexes, built from the alerts (alert_index.c)
 *   6 -> 7  deduplication records move from "dedup" (sender \0 event_id)
 *           to "event_ids" (event_id \0 sender); the table "referrals"
 *           (referral id -> participant id) goes: each referral is in its
 *           participant's pathway already
 *   7 -> 8  the timeline's keys (participant \0 seq) move from the table
 *           "timeline" into "participants", after each person's record,
 *           and meta "participants" counts the records
 *
 * The moves rewrite up to two records per event in the log, in one
 * transaction however large the store: LMDB writes the pages of a large
 * transaction to the map before the commit when they exceed what it keeps
 * in memory (2^17 pages, 512 MiB), so memory stays bounded, by that; the
 * map needs room for the old and the new tables together until the commit
 * frees the old ones' pages.  A store of a million events took 3.6 s and
 * reached that bound (README, Performance).
 *
 * No write-ahead log is open yet (check_format() refuses a store whose log
 * holds records of the older layout), so nothing here is recorded; the
 * tables of the old layout are dropped straight through LMDB.
 */
#include <string.h>

#include "alert_index.h"
#include "log.h"
#include "store.h"

bool
store_upgradable(uint64_t format)
{
	return format >= 5 && format < STORE_FORMAT;
}

/* The old table "name", if the store has it: 0, MDB_NOTFOUND or an error. */
static int
old_table(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
	return mdb_dbi_open(txn, name, 0, dbi);
}

/* sender \0 event_id -> event_id \0 sender, for every record. */
static int
move_dedup(struct store *st, MDB_txn *txn, uint64_t *moved)
{
	char key[512];
	MDB_cursor *cur;
	MDB_val k, v, nk;
	MDB_dbi old;
	int rc;

	*moved = 0;
	if ((rc = old_table(txn, "dedup", &old)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if ((rc = mdb_cursor_open(txn, old, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *sep = memchr(k.mv_data, '\0', k.mv_size);
		size_t slen, ilen;

		if (sep == NULL || k.mv_size >= sizeof(key)) {
			rc = MDB_CORRUPTED;
			break;
		}
		slen = (size_t)(sep - (const char *)k.mv_data);
		ilen = k.mv_size - slen - 1;
		memcpy(key, sep + 1, ilen);
		key[ilen] = '\0';
		memcpy(key + ilen + 1, k.mv_data, slen);
		nk.mv_size = k.mv_size;
		nk.mv_data = key;
		if ((rc = store_put(st, txn, st->dedup, &nk, &v,
		    MDB_NOOVERWRITE)) != 0)
			break;
		(*moved)++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	return mdb_drop(txn, old, 1);
}

/* The participants' records (keys without \0: participants.c). */
static int
count_records(struct store *st, MDB_txn *txn, uint64_t *records)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*records = 0;
	if ((rc = mdb_cursor_open(txn, st->participants, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		*records += memchr(k.mv_data, '\0', k.mv_size) == NULL;
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	return store_put_u64(st, txn, st->meta, "participants", 12, *records);
}

/* Count the participants' records, then add the timeline among them. */
static int
move_timeline(struct store *st, MDB_txn *txn, uint64_t *records)
{
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_dbi old;
	int rc;

	if ((rc = count_records(st, txn, records)) != 0)
		return rc;
	if ((rc = old_table(txn, "timeline", &old)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if ((rc = mdb_cursor_open(txn, old, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (memchr(k.mv_data, '\0', k.mv_size) == NULL) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = store_put(st, txn, st->participants, &k, &v,
		    MDB_NOOVERWRITE)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	return mdb_drop(txn, old, 1);
}

static int
drop_referrals(MDB_txn *txn)
{
	MDB_dbi old;
	int rc;

	if ((rc = old_table(txn, "referrals", &old)) != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	return mdb_drop(txn, old, 1);
}

int
store_upgrade(struct store *st, MDB_txn *txn, uint64_t format)
{
	uint64_t moved = 0, records = 0;
	int rc;

	if (format == 5 && (rc = alert_index_build(st, txn)) != 0)
		return rc;
	if (format <= 6 && ((rc = move_dedup(st, txn, &moved)) != 0 ||
	    (rc = drop_referrals(txn)) != 0))
		return rc;
	if ((rc = move_timeline(st, txn, &records)) != 0 ||
	    (rc = store_put_u64(st, txn, st->meta, "format", 6,
	    STORE_FORMAT)) != 0)
		return rc;
	log_info("store.upgraded", "from_format", LOG_U64(format),
	    "to_format", LOG_U64(STORE_FORMAT), "dedup_records", LOG_U64(moved),
	    "participants", LOG_U64(records), NULL);
	return 0;
}
