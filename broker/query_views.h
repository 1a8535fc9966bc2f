/*
 * The queries that show people and alerts to the agents who work with them
 * (query_views.c), dispatched by query_handle():
 *
 *   alerts        coordinators: their territory's alerts, filtered, paged
 *   participants  coordinators: the people of their QPVs, filtered, paged
 *   inbox         partners: referrals awaiting an answer from or to this
 *                 agent, and the open alerts that name it
 *
 * Each reads one snapshot (txn) and packs its whole reply into pk.
 */
#ifndef RELAIS_QUERY_VIEWS_H
#define RELAIS_QUERY_VIEWS_H

#include <lmdb.h>
#include <msgpack.h>

#include "codec.h"

struct broker;
struct agent;

void query_alerts_page(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk);
void query_participants(struct broker *b, MDB_txn *txn,
    const struct agent *who, const struct rl_request *req, msgpack_packer *pk);
void query_inbox(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk);

#endif
