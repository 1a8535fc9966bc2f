/*
 * Redo records (durability = wal): every change a write transaction makes
 * to the store, as it makes it, so that the change can be made again.
 *
 * The store's writes (store_put, store_del, store_cursor_put,
 * store_cursor_del in store.h) append one operation each to the redo
 * buffer while capture is on; at the end of a pass the buffer becomes one
 * record of the write-ahead log (wal.h), and after a crash the records are
 * applied again, in order, on the last checkpoint (redo_apply).
 *
 * What is recorded is the effect, not the cause: the bytes put and the
 * keys deleted.  Replaying them needs neither the events, nor the clock,
 * nor the rules or agents of the config in force when they were written:
 * the store after replay is the store as it was, byte for byte.
 *
 * Operation: u8 kind (1 put, 2 delete), u8 table (its LMDB handle),
 * u32be key length, key, and for a put u32be value length, value.
 */
#ifndef RELAIS_REDO_H
#define RELAIS_REDO_H

#include <stdbool.h>
#include <stddef.h>
#include <lmdb.h>

struct redo {
	unsigned char *buf;         /* WAL_RECORD_HDR bytes kept free, then ops */
	size_t len, cap;
	size_t max;                 /* beyond this many bytes, capture stops */
	bool overflow;              /* it stopped: only a checkpoint saves this pass */
};

/* Empty, with room for the record's header; keeps the buffer for reuse. */
void redo_clear(struct redo *r);
void redo_free(struct redo *r);
/* Whether the pass changed anything. */
bool redo_empty(const struct redo *r);
/* The operations' bytes (after the header room) and their length. */
size_t redo_payload_len(const struct redo *r);

/* One change (v NULL: a delete).  Never fails: past max, overflow is set. */
void redo_add(struct redo *r, MDB_dbi dbi, const MDB_val *k, const MDB_val *v);
/* Operations already encoded (a record's payload), after those there. */
bool redo_add_ops(struct redo *r, const unsigned char *p, size_t len);

/*
 * Apply a record's operations (p, len) in txn.  0, MDB_CORRUPTED if the
 * bytes are not operations or a delete finds nothing to delete (the record
 * does not continue the state it is applied to), or the LMDB error.
 */
int redo_apply(MDB_txn *txn, const unsigned char *p, size_t len);

#endif
