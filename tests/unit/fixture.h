/*
 * Test fixture: a broker object with a config of four agents (med: a
 * mediator, ml: the Mission locale, ops: an operator, coord: a coordinator
 * of every QPV) and a fresh store, but no sockets and no loop.
 */
#ifndef RELAIS_TEST_FIXTURE_H
#define RELAIS_TEST_FIXTURE_H

#include "relaisd.h"

#define FIXTURE_NOW INT64_C(1796000000000)

struct fixture {
	char dir[64];
	struct broker b;
};

/* map_size_mb may be below what a config allows, to fill the store. */
struct fixture *fixture_new(uint64_t map_size_mb);
void fixture_free(struct fixture *fx);

/* cmocka setup/teardown making a 16 MiB fixture in *state. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* Pack a map of n string pairs; "occurred_at" and "at" become integers. */
void pack_event(msgpack_sbuffer *sb, int n, ...);

/* Ingest one event at time "now" in its own transaction; its code. */
int ingest_at(struct fixture *fx, const char *sender, msgpack_sbuffer *sb,
    int64_t now, struct ingest_result *res, struct rl_error *err);
int ingest(struct fixture *fx, const char *sender, msgpack_sbuffer *sb,
    struct ingest_result *res, struct rl_error *err);

/*
 * One event into an open transaction, which stays open whatever happens,
 * as in a pass where other events commit beside a refused one.
 */
int ingest_in(struct fixture *fx, MDB_txn *txn, const char *sender,
    msgpack_sbuffer *sb);

/*
 * The same for common events at FIXTURE_T0: contact.made by "med"; a
 * referral event of any type (referral.sent goes to "to", purpose "cv").
 */
#define FIXTURE_T0 "1795000000000"
int ingest_contact_in(struct fixture *fx, MDB_txn *txn, const char *eid,
    const char *p);
int ingest_referral_in(struct fixture *fx, MDB_txn *txn, const char *sender,
    const char *type, const char *eid, const char *p, const char *r,
    const char *to);
/*
 * Referrals from med to ml numbered from .. from + n - 1 (events e-N,
 * participants p-N, referrals r-N), committed: n items for ml.
 */
void fixture_queue_referrals(struct fixture *fx, int from, int n);

/* relaisd --verify on the fixture's store, closed meanwhile: its status,
 * its output in out. */
int fixture_verify(struct fixture *fx, char *out, size_t outlen);

/*
 * The query "what" as agent who, with args (a packed msgpack map, or
 * NULL); its reply, packed in out and unpacked into up (both initialised
 * by the caller, who destroys them).
 */
const msgpack_object *fixture_query(struct fixture *fx, const char *who,
    const char *what, const msgpack_sbuffer *args, msgpack_sbuffer *out,
    msgpack_unpacked *up);

/*
 * Put key -> val into a table (or delete key), bypassing the broker: the
 * damage --verify must find.
 */
void fixture_put_raw(struct fixture *fx, MDB_dbi dbi, const void *key,
    size_t klen, const void *val, size_t vlen, bool del);

/* Entries in a table; entries of one agent's mailbox. */
uint64_t count(struct fixture *fx, MDB_dbi dbi);
/* Participants' records (not their timelines' keys), checked against the
 * count health reports. */
uint64_t participant_records(struct fixture *fx);
uint64_t mailbox_count(struct fixture *fx, const char *agent);

#endif
