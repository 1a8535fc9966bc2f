/*
 * The log records the current write transaction wrote, kept in memory so
 * that the deliveries a pass causes are sent from them, not read back from
 * the log once the commit is done (mailbox.c).
 *
 * A record is kept only while it is exactly what the log holds: the copy
 * is dropped when a transaction begins or fails to commit, and when an
 * erasure rewrites log records.  Bounded: past PASSLOG_MAX_BYTES of
 * records, or PASSLOG_MAX_SEQS seqs from the first kept, a transaction's
 * further records are not kept (they are read from the log): at most
 * 1 MiB of records and 1 MiB of index.
 */
#ifndef RELAIS_PASSLOG_H
#define RELAIS_PASSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#define PASSLOG_MAX_BYTES (1u << 20)
#define PASSLOG_MAX_SEQS  (1u << 16)

struct passlog;

/* NULL if out of memory (the broker then reads every record from the log). */
struct passlog *passlog_new(void);
void passlog_free(struct passlog **pl);

/* Forget every record.  Safe on NULL. */
void passlog_clear(struct passlog *pl);

/*
 * Keep a copy of the record the log just took under seq, which is above
 * every seq kept since the last clear.  Safe on NULL.
 */
void passlog_add(struct passlog *pl, uint64_t seq, const void *data,
    size_t len);

/* The record of seq if kept (pointing into pl until it is cleared). */
bool passlog_get(const struct passlog *pl, uint64_t seq, MDB_val *out);

#endif
