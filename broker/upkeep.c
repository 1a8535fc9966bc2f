/*
 * Upkeep of the store, between transactions: what keeps it usable without
 * an operator.
 *
 * The map grows by itself.  LMDB refuses writes beyond the map's size
 * (MDB_MAP_FULL), and the size can only change while this process has no
 * transaction open; the tick runs between passes, so it doubles the map
 * when a quarter or less is left, up to map_size_max_mb.  A pass that
 * meets a full map anyway grows it at once and is applied again (server.c).
 * Only at map_size_max_mb does a write get storage_full.
 *
 * Stale reader slots are cleared.  A reader killed in the middle of a read
 * transaction (relaisd --verify or --backup stopped with SIGKILL) leaves
 * its slot in lock.mdb, and LMDB keeps every page that reader could see
 * from being reused: the file grows until someone calls mdb_reader_check.
 *
 * Agents that stop collecting are reported.  An agent that has not
 * acknowledged anything for agent_silent_hours while its mailbox holds
 * items is logged (agent.silent, at error, once) and shown "silent" in
 * health, before its mailbox reaches max_backlog (mailbox.c).  The time is
 * the broker's clock, counted from the broker's start for an agent that
 * has not collected since.
 */
#include <string.h>

#include "log.h"
#include "relaisd.h"

int
upkeep_grow(struct broker *b, bool full)
{
	uint64_t map_mb;
	bool freed = false;
	int rc;

	/*
	 * With the write-ahead log, LMDB resizes only between checkpoints (no
	 * transaction open).  And a full map may only need checkpoints: the
	 * shared transaction cannot reuse the pages it frees, nor those the
	 * commit just before it freed (LMDB reuses a commit's freed pages from
	 * the second commit after it on).  So, once until a pass commits
	 * again, a full map gets a checkpoint of what is pending, then one of
	 * nothing, and the pass is tried again.
	 */
	if (b->durable.wal.open && full && !b->durable.wal_full_retried) {
		b->durable.wal_full_retried = true;
		freed = checkpoint_now(b) == 0 && checkpoint_open(b) == 0 &&
		    checkpoint_now(b) == 0;
		checkpoint_rollback(b);
	} else if (b->durable.shared != NULL || b->durable.wal.seq > 0) {
		if (!full && !store_grow_due(&b->st, b->cfg->map_size_max_mb, false))
			return 0;
		/* Afterwards no transaction is open, even if it failed. */
		checkpoint_now(b);
		checkpoint_rollback(b);
	}
	rc = store_grow(&b->st, b->cfg->map_size_max_mb, full, &map_mb);
	if (rc == 1) {
		log_info("store.grown", "map_size_mb", LOG_U64(map_mb),
		    "map_size_max_mb", LOG_U64(b->cfg->map_size_max_mb), NULL);
		return 1;
	}
	if (rc == 0 && freed)
		return 1;
	if (rc != 0)
		log_error("store.grow_failed", "error", LOG_STR(mdb_strerror(rc)),
		    "hint", LOG_STR("check the free space of the data_dir's disk"),
		    NULL);
	else if (full)
		log_error("store.full", "map_size_mb", LOG_U64(map_mb),
		    "hint", LOG_STR("the store reached map_size_max_mb: raise it "
		    "(reload), or look at relais health for a backlog that "
		    "nobody collects"), NULL);
	return 0;
}

void
upkeep_store(struct broker *b)
{
	int dead = 0;

	if (mdb_reader_check(b->st.env, &dead) == 0 && dead > 0)
		log_warn("store.stale_readers", "cleared", LOG_U64((uint64_t)dead),
		    "hint", LOG_STR("a process reading the store was killed; its "
		    "reader slots are freed"), NULL);
	upkeep_grow(b, false);
}

/* Whether s's mailbox holds an item; false too if it cannot be read. */
static bool
mailbox_holds(struct broker *b, const struct session *s)
{
	const char *id = s->agent->id;
	size_t alen = strlen(id);
	char key[RL_MAX_AGENT_ID_BYTES + 9];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bool holds = false;

	if (txn_read_begin(b, &txn) != 0)
		return false;
	if (mdb_cursor_open(txn, b->st.mbox, &cur) == 0) {
		k.mv_size = store_key_seq(key, id, alen, 0);
		k.mv_data = key;
		holds = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 &&
		    k.mv_size == alen + 9 && memcmp(k.mv_data, id, alen + 1) == 0;
		mdb_cursor_close(cur);
	}
	txn_read_end(b, txn);
	return holds;
}

void
upkeep_agents(struct broker *b)
{
	int64_t now = clock_now(&b->clock);
	int64_t limit = (int64_t)b->cfg->agent_silent_hours * 3600000;

	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];

		if (s->last_collected == 0)
			s->last_collected = now;
		if (s->silent || now - s->last_collected < limit)
			continue;
		/* Nothing to collect is not silence: start counting again. */
		if (!mailbox_holds(b, s)) {
			s->last_collected = now;
			continue;
		}
		s->silent = true;
		log_error("agent.silent", "agent", LOG_STR(s->agent->id),
		    "hours", LOG_I64((now - s->last_collected) / 3600000),
		    "hint", LOG_STR("the agent has not acknowledged a delivery for "
		    "agent_silent_hours while its mailbox holds items; check the "
		    "partner's agent. At max_backlog, deliveries to it are no "
		    "longer queued"), NULL);
	}
}
