/*
 * relaisd internals: the broker object and the prototypes of its modules,
 * grouped by source file.
 *
 *   server.c    the libuv loop, ZeroMQ sockets, one pass = one commit
 *   txn.c       write transactions: begin, commit, abort
 *   checkpoint.c  durability = wal: the shared transaction, checkpoints,
 *               recovery from the write-ahead log (wal.c, redo.c)
 *   sessions.c  connections per agent, identity by key, all sending
 *   flow.c      replies waiting per connection, in bytes; not_reading
 *   zap.c       the ZAP handler: only registered keys get in
 *   ingest.c    one event: validate, deduplicate, apply, record, route
 *   mailbox.c   durable mailboxes: append, acknowledge, send, redeliver
 *   passlog.c   the records a transaction logged, which its deliveries send
 *   alerts.c    rupture deadlines, the sweep, alert lifecycle
 *   query.c     read-only queries: health, alerts, participant
 *   indicators.c  the indicator counts, kept with each event
 *   report.c    the report query: indicators over a period
 *   query_agent.c  the agent query: a public key and display name
 *   verify.c    replay the log and compare with the stored state
 *   backup.c    hot copy of the store
 *   clock.c     the broker's clock, which tests may drive
 */
#ifndef RELAISD_H
#define RELAISD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <lmdb.h>
#include <msgpack.h>
#include <uv.h>

#include "codec.h"
#include "config.h"
#include "crowd.h"
#include "event.h"
#include "indicators.h"
#include "passlog.h"
#include "pathway.h"
#include "sessions.h"
#include "store.h"
#include "wal.h"

#define ROUTING_ID_MAX 256
#define SWEEP_ASIDE_MAX 8          /* see alerts_sweep() */

/* clock.c */
struct rclock {
	bool manual;                /* only when the config says manual_clock */
	int64_t offset_ms;          /* added to the real time */
};
int64_t clock_now(const struct rclock *c);     /* rules, records */

/*
 * The broker, by concern.  The configuration, the store and the clock are
 * read by nearly every module and stay at the top; everything else lives
 * in the group of the one concern it serves.
 */
struct broker {
	struct config *cfg;         /* as loaded; a reload swaps it */
	struct store st;            /* the LMDB environment and its tables */
	struct rclock clock;        /* the time rules and records use */

	/* ZeroMQ (server.c, zap.c): the sockets and the broker's key. */
	struct {
		void *zctx;
		void *router;
		void *zap;
		void *monitor;          /* connections coming and going */
		struct crowd crowd;     /* those still in their handshake */
		char endpoint[256];     /* the bound endpoint, port resolved */
		unsigned char server_secret[32];
		unsigned char server_public[32];
		char server_public_z85[41];
	} net;

	/* The libuv loop (server.c): its handles, what a signal asked for. */
	struct {
		uv_loop_t *loop;
		uv_poll_t router_poll, zap_poll, monitor_poll;
		uv_idle_t idle;         /* passes go on while input waits */
		uv_timer_t tick;        /* redelivery, liveness, the sweep */
		uv_signal_t sig_term, sig_int, sig_hup;
		bool stopping;
		bool reload_requested;
		const char *ready_file; /* written once the socket is bound */
	} run;

	/* The agents' connections (sessions.c, flow.c). */
	struct {
		struct session *sessions;   /* parallel to cfg->agents */
		size_t nsessions;
		uint64_t hellos;        /* orders the hellos: the latest wins */
		struct flow_totals flow;    /* replies waiting, in bytes */
	} peers;

	/*
	 * One pass (server.c): scratch reused across passes, so a pass
	 * allocates little, and a request a pass left for the next.
	 */
	struct {
		msgpack_sbuffer scratch;    /* replies */
		msgpack_sbuffer canon;  /* an event's canonical encoding */
		msgpack_sbuffer record; /* an event's log record */
		struct pathway *pw;     /* the sweep's, the cache's undo copy */
		struct inbound *ins;    /* a pass's messages, kept: a calloc per
		                           pass grew and trimmed the heap */
		size_t ins_cap;
		zmq_msg_t carried_rid, carried_body;
		bool carried;
	} pass;

	/*
	 * The write transaction under way (txn.c): what it changes, kept in
	 * memory and written (or dropped, or reloaded) when it ends; see
	 * txn_commit() and txn_abort().
	 */
	struct {
		struct ptcache *ptc;    /* participants it is changing */
		struct indacc *ind;     /* indicator counts it adds */
		struct passlog *passlog;    /* the records it logged */
		uint64_t log_seq;       /* the log's last seq */
		bool counters_dirty;
		bool counters_stale;    /* their reload failed: not to be used */
		struct {                /* health counters as it began */
			uint64_t alerts_opened, alerts_resolved;
		} at_begin;
	} tx;

	/*
	 * durability = wal (checkpoint.c): wal.open is false otherwise.  Passes
	 * share one LMDB write transaction (shared) until the next checkpoint
	 * commits it; each pass's changes (redo) are one record of the log.
	 */
	struct {
		struct wal wal;
		struct redo redo;
		MDB_txn *shared;
		bool wal_failed;        /* an append failed: checkpoint first */
		bool wal_full_retried;  /* a full map checkpointed */
		int64_t checkpoint_mono;    /* the last one, monotonic ms */
		uint64_t checkpoints;
	} durable;

	/* Counters for health queries, since the broker started. */
	struct {
		uint64_t accepted, duplicates, refused, delivered, redelivered;
		uint64_t dead_lettered, alerts_opened, alerts_resolved;
		uint64_t auth_failures;
		uint64_t passes, commits;
	} counters;

	/* The rupture sweep (alerts.c): what it costs, whom it passes over. */
	struct {
		int64_t last_us, max_us;    /* its duration, with its commit */
		int64_t last_scan_us;   /* the same without its commit */
		int64_t started_us;
		unsigned last_due;      /* deadlines the last sweep found due */
		struct {                /* participants passed over a while */
			char participant[PW_ID_SIZE];
			int64_t until;      /* monotonic ms */
		} aside[SWEEP_ASIDE_MAX];
	} sweep;

	/* Re-arming every pathway after the rules changed (alerts.c). */
	struct {
		bool active;
		unsigned char fp[16];   /* the rules being armed */
		char after[PW_ID_SIZE]; /* the last participant re-armed */
		size_t alen;
		uint64_t count;         /* participants re-armed so far */
		uint64_t slices;
	} rearm;
};

/*
 * txn.c: every write transaction of the broker ends through these.  No
 * write transaction may begin while a read (txn_read_begin) is open.
 */
int txn_begin(struct broker *b, MDB_txn **txn);
int txn_commit(struct broker *b, MDB_txn *txn);
void txn_abort(struct broker *b, MDB_txn *txn);
int broker_load_counters(struct broker *b);
/*
 * Reads between passes (queries, sends, upkeep): what every acknowledged
 * pass wrote, checkpointed or not.  End with txn_read_end, not
 * mdb_txn_abort: with the write-ahead log, txn is the shared transaction.
 */
int txn_read_begin(struct broker *b, MDB_txn **txn);
void txn_read_end(struct broker *b, MDB_txn *txn);

/*
 * checkpoint.c (durability = wal; each does nothing when the log is off).
 * checkpoint_recover: at start-up, before anything reads the store, apply
 * the log's records past the last checkpoint and checkpoint them (also when
 * the config says commit: the log may hold acknowledged events); open the
 * log when the config says wal.  checkpoint_open: the shared transaction
 * (begun, the log replayed into it, if none is open).  checkpoint_now:
 * commit it with LMDB's syncs and start a new generation of the log.
 * checkpoint_tick: that, when checkpoint_ms have passed or the log is half
 * full.  checkpoint_rollback: drop the shared transaction, back to the last
 * checkpoint; the next checkpoint_open replays the log.  checkpoint_close:
 * checkpoint and close (at stop).
 */
int checkpoint_recover(struct broker *b);
int checkpoint_open(struct broker *b);
int checkpoint_now(struct broker *b);
void checkpoint_tick(struct broker *b);
void checkpoint_rollback(struct broker *b);
void checkpoint_close(struct broker *b);

/*
 * participants.c: one record per participant, its pathway and its rupture
 * bookkeeping, read and decoded once per write transaction and written back
 * when it commits (participants_flush, from txn_commit) or dropped when it
 * aborts (participants_clear, from txn_abort).
 *
 * Stored value: u8 format (2), i64be key_due, i64be fired[ARMED_SLOTS],
 * u32be open, then the pathway (pathway_encode).
 */
#define ARMED_SLOTS (RULE__COUNT + 1)   /* the rules, then retention */
#define RETENTION_SLOT RULE__COUNT

struct armed {
	int64_t key_due;            /* the participant's key in "deadlines"; 0: none */
	int64_t fired[ARMED_SLOTS]; /* the due time each slot last fired at, or 0 */
	uint32_t open;              /* bit (1 << rule) per open alert */
};

struct participant {
	struct pathway pw;
	struct armed armed;
};

int participants_init(struct broker *b);
void participants_free(struct broker *b);
/*
 * The participant's record: a fresh one if never seen and create is set,
 * MDB_NOTFOUND if not; MDB_CORRUPTED if the stored value cannot be read.
 * The pointer is valid until the transaction ends or two other
 * participants have been loaded since (the latest loaded is never the one
 * a load evicts, any other may be): code holding a record passes it on
 * rather than loading it again.
 */
int participants_load(struct broker *b, MDB_txn *txn, const char *id,
    size_t len, bool create, struct participant **out);
/* pathway_apply on a loaded record: a refusal leaves it as it was. */
int participants_apply(struct broker *b, struct participant *pt,
    const struct rl_event *ev, const struct pw_actor *actor, int64_t at,
    struct pw_effects *fx, struct rl_error *err);
/* The record changed outside participants_apply (its armed part). */
void participants_touch(struct participant *pt);
/* Drop a record without writing it (its participant is being erased). */
void participants_forget(struct participant *pt);
int participants_flush(struct broker *b, MDB_txn *txn);
void participants_clear(struct broker *b);
/*
 * Whether a key of the participants table is a participant's record, not
 * one of the timeline's (participant \0 seq) that follow it (store.h).
 */
bool participants_is_record(const MDB_val *k);
/* How many records there are (meta "participants"); add delta to it. */
uint64_t participants_count(MDB_txn *txn, struct store *st);
int participants_count_add(struct store *st, MDB_txn *txn, int delta);
/*
 * A stored value read in place: its bookkeeping into *a (if not NULL) and
 * where its pathway's bytes are; -1 if it is not a participant record.
 */
int participants_stored(const MDB_val *v, struct armed *a, const char **pw,
    size_t *len);

/* server.c */
int broker_init(struct broker *b, struct config *cfg, const char *ready_file);
int broker_run(struct broker *b);
void broker_free(struct broker *b);

/*
 * upkeep.c, between transactions only.  upkeep_store: clear stale reader
 * slots, grow the map ahead of need (every tick).  upkeep_grow: grow it
 * now (full: a write just met MDB_MAP_FULL); 1 if it grew, or if a
 * checkpoint of the write-ahead log made room.
 */
void upkeep_store(struct broker *b);
/*
 * Agents that have not collected (acknowledged) anything for
 * agent_silent_hours while their mailbox holds items: agent.silent at
 * error, once, and "silent" in health until they collect again.
 */
void upkeep_agents(struct broker *b);
int upkeep_grow(struct broker *b, bool full);

/* zap.c */
int zap_start(struct broker *b);
void zap_handle(struct broker *b);
/* A handshake the socket monitor saw fail (event, its value): logged. */
void zap_log_handshake_failure(struct broker *b, unsigned event,
    uint32_t value);

/* ingest.c: runs inside the pass's write transaction. */
struct ingest_result {
	int code;                   /* RL_OK, or the refusal */
	bool duplicate;
	uint64_t seq;
	int64_t recorded_at;
	bool set_aside;             /* failed inside the pass: refused alone */
};
int ingest_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const msgpack_object *obj, int64_t now, struct ingest_result *res,
    struct rl_error *err);

/*
 * mailbox.c.  An event item holds the event's log seq (the record is read
 * from the log when it is sent); an alert item holds the alert as sent.
 */
enum mbox_kind { MBOX_EVENT = 1, MBOX_ALERT = 2 };
#define MBOX_ITEM_HDR 5             /* u32be redeliveries, u8 kind */
int mailbox_append_event(struct broker *b, MDB_txn *txn, struct session *s,
    uint64_t log_seq);
/* Whether s's mailbox is below max_backlog (*room); 0 or an LMDB error. */
int mailbox_room(struct broker *b, MDB_txn *txn, struct session *s,
    bool *room);
/* At max_backlog the item is not queued (counted, logged) and 0 returned. */
int mailbox_append(struct broker *b, MDB_txn *txn, struct session *s,
    enum mbox_kind kind, const char *payload, size_t len);
int mailbox_ack(struct broker *b, MDB_txn *txn, struct session *s,
    uint64_t upto, uint64_t *acked);
void mailbox_flush(struct broker *b);
/* Dead-letter items older than max_backlog_age_days (mailbox.c); a tick. */
void mailbox_expire(struct broker *b);
void mailbox_redeliver(struct broker *b, int64_t mono);
/* The items in s's mailbox, counted from txn the first time only. */
uint64_t mailbox_backlog(struct broker *b, MDB_txn *txn, struct session *s);
/* The transaction committed (keep its changes to the backlogs) or not. */
void mailbox_backlog_settle(struct broker *b, bool committed);

/* alerts.c */
int alerts_after_event(struct broker *b, MDB_txn *txn, struct participant *pt,
    int64_t now);
int alerts_sweep(struct broker *b, int64_t now, unsigned *fired);
int alerts_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, int64_t now, struct rl_error *err);
/*
 * After the rules changed, re-arm every pathway in slices (see alerts.c):
 * alerts_rearm_start() at start-up and at each reload begins a pass if the
 * rules differ from those the deadlines were armed with (or a pass is
 * under way); alerts_rearm_step(), each tick, does one slice.  0 or an
 * LMDB error (the step is then tried again at the next tick).
 */
int alerts_rearm_start(struct broker *b);
int alerts_rearm_step(struct broker *b, int64_t now);
/* Erasure (participant.erased, retention): the deadline and alerts here, then erase.c. */
int alerts_erase_participant(struct broker *b, MDB_txn *txn,
    struct participant *pt, const char *by, int64_t now);

/*
 * queued.c: the index of queued items (mailboxes and dead letters) that
 * carry data about a participant.  Every change to mbox or dead goes
 * through queued_add / queued_remove with the item's value.
 */
int queued_add(struct broker *b, MDB_txn *txn, const char *agent,
    uint64_t seq, const MDB_val *item);
int queued_remove(struct broker *b, MDB_txn *txn, const char *agent,
    uint64_t seq, const MDB_val *item);
/* Rewrite every queued item about p without p's data; *nitems: how many. */
int queued_scrub(struct broker *b, MDB_txn *txn, const char *p,
    uint64_t *nitems);

/*
 * erase.c: remove a participant's data, keep anonymous counts; called by
 * alerts_erase_participant(), which first removes the deadline and alerts.
 */
int erase_participant(struct broker *b, MDB_txn *txn, struct participant *pt,
    const char *by, int64_t now);
int erase_record(const char *buf, size_t len, msgpack_sbuffer *sb);

/* query.c */
void query_handle(struct broker *b, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk);
/* A result's head, before its data; an error reply instead. */
void query_begin_result(msgpack_packer *pk, const struct rl_request *req,
    const char *what);
void query_refuse(msgpack_packer *pk, const struct rl_request *req, int code,
    const char *field, const char *msg);
/*
 * Every key of args is a string, one of keys (NULL-terminated, at most 64)
 * and given once; else a refusal packed and false.
 */
bool query_args_known(const struct rl_request *req, msgpack_packer *pk,
    const char *const *keys);

/*
 * deadletters.c: operators list, requeue and drop dead letters; requeue
 * and drop commit their own write transaction (call with none open).
 */
void deadletters_query(struct broker *b, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk);

/* query_agent.c: any agent may ask; needs no store transaction. */
void query_agent(struct broker *b, const struct rl_request *req,
    msgpack_packer *pk);

/* report.c: the indicators of SPEC §5, as the agent may see them. */
void report_query(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk);

/*
 * backup.c: a consistent copy of the store into a folder without one, mode
 * 0600, removed if it fails; 0 or -1 with the reason written to out.
 * backup_store copies pages, compact_store rewrites every record into a
 * new file that holds nothing else (what makes erased bytes unrecoverable).
 */
int backup_store(const struct config *cfg, const char *dir, FILE *out);
int compact_store(const struct config *cfg, const char *dir, FILE *out);

/*
 * wal_copy.c: what the write-ahead log holds past the store's last
 * checkpoint (acknowledged, not yet in the store), for --backup and
 * --compact, which apply it to their copy, and --verify, which says so.
 * wal_pending_read: 0 (records 0 when there is no log), or -1 with a
 * sentence in err.  wal_pending_apply: to the closed copy in dir, unless
 * the copy's checkpoint holds them already; 0 or -1 with err.
 */
struct wal_pending {
	uint64_t gen;               /* the store's generation of the log */
	uint64_t records;           /* records of it in the log */
	struct redo ops;            /* their operations, one after the other */
};
int wal_pending_read(struct store *st, const char *dir, struct wal_pending *wp,
    char *err, size_t errlen);
int wal_pending_apply(const struct wal_pending *wp, const char *dir,
    uint64_t map_size_mb, char *err, size_t errlen);
void wal_pending_free(struct wal_pending *wp);

/* verify.c: 0 if the store is consistent, 1 if not, -1 if unreadable. */
int verify_store(const struct config *cfg, FILE *out);

#endif
