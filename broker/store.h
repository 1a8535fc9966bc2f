/*
 * The broker's durable state in one LMDB environment.
 *
 * Tables (named databases) and their keys:
 *   meta          "format" -> u64 STORE_FORMAT; "alert_seq" -> u64;
 *                 "rules_fp" -> hash of the rules the deadline index was
 *                 built with; "participants" -> u64 records in participants
 *   log           u64be log seq                 -> event record (msgpack)
 *   event_ids     event_id \0 sender            -> struct dedup_rec
 *   participants  participant id                -> rupture bookkeeping, pathway
 *                                                  (participants.c), which
 *                                                  holds the person's referrals
 *                 participant \0 u64be log seq  -> ""  (the timeline: right
 *                                                  after the person's record)
 *   deadlines     u64be due, participant         -> ""  (one per participant)
 *   alerts        u64be alert seq               -> alert record (msgpack)
 *   alert_open    participant \0 rule           -> u64 alert seq
 *   alert_index   status, rule, seq; QPV too     -> ""  (alert_index.h)
 *   alert_subject participant \0 u64be seq      -> ""  (alert_index.h)
 *   mbox          agent \0 u64be seq            -> u32be redeliveries, u8 kind, then
 *                                                  u64be log seq (event) or alert
 *   mbox_next     agent                         -> u64 next mailbox seq
 *   dead          agent \0 u64be seq            -> as mbox
 *   queued        participant \0 agent \0 u64be seq -> ""  (items in mbox or
 *                                                  dead that carry data about
 *                                                  the participant: queued.c)
 *   indicators    anonymous counts, by day, QPV, agent (indicators.h)
 *   ind_seen      participant \0 ...             -> what exact distinct
 *                                                  counts need (indicators.h)
 *
 * Big-endian integers in keys make LMDB's byte order the numeric order, so
 * the log, mailboxes and deadlines are read in order with a cursor.
 *
 * Keys are also chosen so that a commit writes few pages: the pages a
 * commit changes are copied and written whole, and they are what a commit
 * costs.  Deduplication records start with the event_id, which agents make
 * grow with time (PROTOCOL.md), so a pass's new ones land together on the
 * table's last pages whichever agents sent them; keyed by sender first,
 * they fell on one page per sender.  A referral is kept in its
 * participant's record, which its events rewrite anyway, rather than in a
 * table of its own indexed by referral id, which cost a page per referral;
 * and a person's timeline follows their record in the same table, on the
 * page the event rewrites anyway, where a table of its own cost another
 * page per person.  Code that reads participants' records with a cursor
 * skips the timeline's keys (participants_is_record()).
 *
 * The environment is opened without MDB_NOSYNC: mdb_txn_commit() returns
 * only after the data and the meta page are on disk.  That is what lets the
 * broker acknowledge right after a commit (durability = commit), or after
 * the pass's record is in the write-ahead log (durability = wal: txn.c),
 * whose checkpoints are such commits.
 *
 * Every change to a table goes through store_put, store_del,
 * store_cursor_put or store_cursor_del, never straight to LMDB: with the
 * write-ahead log on, they are what records the change (redo.h).
 */
#ifndef RELAIS_STORE_H
#define RELAIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "event.h"
#include "redo.h"

/*
 * The layout described above.  store_open() upgrades a store of the
 * layouts before when it opens it for writing (store_upgrade.c: format 5
 * lacked the alert indexes; format 6 kept deduplication records under
 * sender \0 event_id in a table "dedup", and a table "referrals" of
 * referral id -> participant id; format 7 kept the timeline in a table
 * "timeline"), and refuses any other.
 */
#define STORE_FORMAT 8

/* Named tables an environment may hold (those above, and room to grow). */
#define STORE_MAX_DBS 24

struct store {
	MDB_env *env;
	MDB_dbi meta, log, dedup, participants;
	MDB_dbi deadlines, alerts, alert_open, mbox, mbox_next, dead, queued;
	MDB_dbi indicators, ind_seen, alert_index, alert_subject;
	/*
	 * The tables' names and handles, hashed: redo records name tables by
	 * handle, so one is applied only by a store whose handles mean the
	 * same (wal.h: layout).
	 */
	uint32_t layout;
	struct redo *redo;          /* not NULL: changes are recorded there */
};

struct dedup_rec {
	uint64_t seq;
	int64_t recorded_at;
	unsigned char hash[16];     /* SipHash-128 of the canonical event
	                               (BLAKE2b-128 in older records): ingest.c */
};

/*
 * Whether store_upgrade() knows the layout "format"; bring the store to
 * this layout within txn (the store's tables of this layout are open).
 * 0 or an LMDB error.
 */
bool store_upgradable(uint64_t format);
int store_upgrade(struct store *st, MDB_txn *txn, uint64_t format);

/*
 * Open (creating if needed) the store in dir with the given map size, clear
 * stale reader slots left by a crashed process (mdb_reader_check).
 * how: 0 (read-write), STORE_READ_ONLY, or STORE_WRITE_MAP: read-write,
 * LMDB's pages changed in place in the file's map (MDB_WRITEMAP), not
 * copied into the heap (durability = wal: checkpoint.c says why).
 * Returns 0, or -1 with a sentence in errbuf.
 */
#define STORE_READ_ONLY 1u
#define STORE_WRITE_MAP 2u
int store_open(struct store *st, const char *dir, uint64_t map_size_mb,
    unsigned how, char *errbuf, size_t errlen);
void store_close(struct store *st);

/*
 * Room before the map is full: when a quarter of the map or less is left
 * (or full is set: a write just met MDB_MAP_FULL), double it, up to max_mb.
 * LMDB allows this only while this process has no transaction open.
 * 1 if it grew, 0 if not (no need, or at max_mb), else an LMDB error;
 * *map_mb is the map's size after.
 */
int store_grow(struct store *st, uint64_t max_mb, bool full, uint64_t *map_mb);
/* Whether store_grow would grow it now. */
bool store_grow_due(struct store *st, uint64_t max_mb, bool full);

/*
 * Storage errors.  Inside the broker a storage failure is the LMDB or
 * system error that caused it (an int: MDB_MAP_FULL, ENOSPC, EIO...); it
 * becomes a protocol refusal once, through store_error(), which keeps that
 * cause in the rl_error for the log.  Nothing maps it back.
 */

/* storage_full (map full, disk full, quota) or storage. */
int store_code(int mdb_rc);

/*
 * The cause to report for rc: LMDB reports a write cut short by a full
 * file system as EIO, so an EIO while the data_dir's file system has less
 * than STORE_FULL_BELOW bytes free is taken for ENOSPC.
 */
#define STORE_FULL_BELOW (16u << 20)
int store_cause(const struct store *st, int rc);

/* Fill *err for rc (code, cause, a sentence naming the cause); the code. */
int store_error(const struct store *st, struct rl_error *err, int rc);

/* Keys with a big-endian number; buf must hold prefix + 1 + 8 bytes. */
size_t store_key_seq(char *buf, const char *prefix, size_t plen, uint64_t seq);
uint64_t store_be64(const void *p);
void store_put_be64(void *p, uint64_t v);

/*
 * The only ways to change a table (see above); as mdb_put, mdb_del,
 * mdb_cursor_put and mdb_cursor_del, never with MDB_RESERVE (the bytes
 * written after the call could not be recorded).
 */
int store_put(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k,
    MDB_val *v, unsigned flags);
int store_del(struct store *st, MDB_txn *txn, MDB_dbi dbi, MDB_val *k);
int store_cursor_put(struct store *st, MDB_cursor *cur, MDB_val *k,
    MDB_val *v, unsigned flags);
int store_cursor_del(struct store *st, MDB_cursor *cur);

/* meta counters. */
int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    uint64_t *out);
int store_put_u64(struct store *st, MDB_txn *txn, MDB_dbi dbi,
    const void *key, size_t klen, uint64_t v);

/* Total entries of a table, for health and backlog queries. */
uint64_t store_count(MDB_txn *txn, MDB_dbi dbi);

/* Entries whose key starts with prefix (a mailbox's backlog). */
uint64_t store_count_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
    size_t plen);

#endif
