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
 */
#include "log.h"
#include "relaisd.h"

int
upkeep_grow(struct broker *b, bool full)
{
	uint64_t map_mb;
	int rc;

	rc = store_grow(&b->st, b->cfg->map_size_max_mb, full, &map_mb);
	if (rc == 1) {
		log_info("store.grown", "map_size_mb", LOG_U64(map_mb),
		    "map_size_max_mb", LOG_U64(b->cfg->map_size_max_mb), NULL);
		return 1;
	}
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
