/*
 * A participant as the queries show it (participant_view.c): the stored
 * pathway with names instead of positions, the states as of now (a
 * referral past its expiry is "expired"), and the open alerts about them.
 */
#ifndef RELAIS_PARTICIPANT_VIEW_H
#define RELAIS_PARTICIPANT_VIEW_H

#include <stdint.h>
#include <lmdb.h>
#include <msgpack.h>

#include "alert.h"

struct broker;

/*
 * The unresolved alerts about participant p, one per rule at most, in
 * rule order, into out (room for RULE__COUNT).  Returns how many, or -1
 * if the store could not be read.
 */
int participant_open_alerts(struct broker *b, MDB_txn *txn, const char *p,
    struct alert out[RULE__COUNT]);

/*
 * Pack pw as a map (the "state" of the participant query, PROTOCOL §7):
 * participant, qpv, phase, opened_at, identified_at, identified_by,
 * last_activity, exited_at, exit_reason, referrals (id, from, to, state,
 * sent_at, answered_at, expires_at), referents (agent, since), barriers
 * (code, state, identified_at, lifted_at), appointments (id, at, state),
 * enrollments (scheme, first_at, count), employment, confidence, and
 * open_alerts (id, rule, severity, status, opened_at, agents).
 */
void participant_view_pack(struct broker *b, MDB_txn *txn,
    const struct pathway *pw, int64_t now, msgpack_packer *pk);

#endif
