/*
 * relaisd --verify, shared by its parts: verify.c replays the log against
 * the participant records and checks dedup and deadlines; verify_tables.c
 * checks each table's key order and the alert bookkeeping.
 */
#ifndef RELAIS_VERIFY_H
#define RELAIS_VERIFY_H

#include "relaisd.h"

struct verify {
	const struct config *cfg;
	struct store st;
	MDB_txn *txn;               /* one read-only snapshot for every check */
	FILE *out;
	uint64_t participants, events, differences;
	uint64_t keyed;             /* participants with a deadline key */
	struct pathway *replayed, *stored;
};

/* Count a difference and print the first ones.  Never a participant id. */
void verify_difference(struct verify *v, const char *what, const char *detail);

/*
 * Every table's keys in strictly increasing order, each found again by a
 * lookup: a B-tree whose order is broken loses records to lookups while a
 * walk still shows them.
 */
int verify_key_order(struct verify *v);

/*
 * The alert bookkeeping against the alert tables: each rule a participant
 * record marks open has its "alert_open" key (verify_record_alerts(), for
 * each record verify.c reads); each "alert_open" key names an unresolved
 * alert of that participant and rule, whose record says so; each
 * unresolved alert is the open one of its rule, and every alert has its
 * index keys and the indexes no others (verify_alerts()).
 */
void verify_record_alerts(struct verify *v, const void *p, size_t plen,
    const struct armed *armed);
int verify_alerts(struct verify *v);

#endif
