/*
 * The indexes of the "alerts" table, written in the transactions that
 * write the alerts (through alert_index_update()), so that listing a
 * coordinator's alerts costs the page it returns and erasing a person the
 * alerts about that person, never the whole table:
 *
 *   alert_index    'S' status rule u64be seq           -> ""  (every alert)
 *                  'Q' qpv \0 status rule u64be seq    -> ""  (by QPV)
 *   alert_subject  participant \0 u64be seq            -> ""  (alerts that
 *                                                          still name one)
 *
 * status is enum alert_status, rule enum rule_id, one byte each.  Within
 * one prefix (a QPV or every alert, a status, a rule) the keys are in seq
 * order, so a listing merges a few such runs, each read from its "after".
 */
#ifndef RELAIS_ALERT_INDEX_H
#define RELAIS_ALERT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "alert.h"
#include "store.h"

/* A prefix (a QPV, a status, a rule) and its seq. */
#define ALERT_INDEX_KEY_MAX (1 + PW_ID_SIZE + 2 + 8)
/* Runs a listing may merge: every QPV of an agent, status and rule. */
#define ALERT_WALK_MAX (CONFIG_MAX_QPV * 3 * RULE__COUNT)

/*
 * Bring the index entries of alert a in line with its record: old is the
 * record as stored before (NULL for a new alert).  0 or an LMDB error.
 */
int alert_index_update(struct store *st, MDB_txn *txn,
    const struct alert *old, const struct alert *a);

/*
 * Fill both index tables, still empty, from the "alerts" table: a store
 * of the layout before gets them when it is opened for writing.
 */
int alert_index_build(struct store *st, MDB_txn *txn);

/* The keys alert a must have: one per table (subject: 0 if none). */
size_t alert_index_key_all(char *buf, const struct alert *a);
size_t alert_index_key_qpv(char *buf, const struct alert *a);
size_t alert_index_key_subject(char *buf, const struct alert *a);

/*
 * The seqs of the alerts that name participant p, in a growing array
 * (caller frees *seqs, even on error).
 */
int alert_index_about(const struct store *st, MDB_txn *txn, const char *p,
    uint64_t **seqs, size_t *n);

/*
 * A listing in seq order of the alerts of some QPVs (or of every QPV),
 * some statuses and one rule or all, after a seq.  Each run keeps the next
 * seq it holds; alert_walk_next() hands out the smallest and reads that
 * run's following key, so a page of n alerts costs n + (runs) key reads.
 */
struct alert_walk {
	size_t nruns;
	uint64_t reads;             /* index keys read, for the cost tests */
	struct alert_run {
		char key[ALERT_INDEX_KEY_MAX];
		size_t plen;            /* the prefix before the seq */
		uint64_t next;          /* 0: no more in this run */
	} runs[ALERT_WALK_MAX];
};

/* Which statuses a listing takes: a bit per enum alert_status. */
#define ALERT_WALK_STATUS(s) (1u << (s))

/*
 * Start w (caller-allocated; it is large): qpvs, nqpv the QPVs (nqpv 0:
 * every alert, whatever its QPV), statuses a mask of ALERT_WALK_STATUS,
 * rule -1 for every rule.  0 or an LMDB error.
 */
int alert_walk_begin(struct alert_walk *w, const struct store *st,
    MDB_txn *txn, const char (*qpvs)[PW_ID_SIZE], size_t nqpv,
    unsigned statuses, int rule, uint64_t after);

/* The next seq in *seq: 0, MDB_NOTFOUND at the end, or an LMDB error. */
int alert_walk_next(struct alert_walk *w, const struct store *st,
    MDB_txn *txn, uint64_t *seq);

#endif
