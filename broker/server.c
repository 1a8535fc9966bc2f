/*
 * The broker's loop: one libuv loop drives the ROUTER socket, the ZAP
 * handler, a tick timer and the signals.
 *
 * Ordering rules of a pass (pass()), which the durability guarantee rests on:
 *   1. read up to max_batch messages without blocking;
 *   2. apply every event of all of them in ONE write transaction;
 *   3. commit it: mdb_txn_commit() returns after fsync;
 *   4. only then send the acknowledgements;
 *   5. then send mailbox items, which are durable since step 3.
 * So no acknowledgement ever leaves before its event is on disk, and many
 * events share one fsync (group commit).
 *
 * Before a request is done, its reply has room (flow.h): a request read
 * from a connection that does not read its replies is refused, not done,
 * so no acknowledgement of a recorded event is ever dropped.
 *
 * ZMQ_FD is edge-triggered: it signals only when the socket's state changes,
 * and every zmq_send/zmq_recv may consume that edge.  So after any send or
 * receive we re-read ZMQ_EVENTS (router_rearm()); while messages are still
 * waiting, an idle handle runs more passes, letting timers and signals in
 * between.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "flow.h"
#include "keyfile.h"
#include "log.h"
#include "relaisd.h"
#include "rltime.h"
#include "utf8.h"

#define TICK_MS         100
#define HANDSHAKE_MS    5000        /* to finish the CURVE handshake */
#define PASS_MAX_BYTES  (16u << 20)  /* frames and their decoded trees in a pass */
#define PASS_ATTEMPTS_MAX 8         /* a pass that fails more often is refused whole */
#define SMALL_REPLY_MAX 1024        /* welcome, pong, error */
#define REARM_ROUNDS_MAX 64         /* flushes in a row while libzmq takes them */

/* One message read in a pass, kept until its reply is sent. */
struct inbound {
	zmq_msg_t rid;
	zmq_msg_t body;             /* msgpack objects point into it */
	msgpack_unpacked up;
	struct rl_request req;
	int code;                   /* decode result */
	struct rl_error err;
	struct session *s;
	struct ingest_result *results;  /* submit: one per event */
	struct rl_error *errors;        /* submit: one per event, if refused */
	uint64_t upto;              /* dack: acknowledged up to, after commit */
	size_t reserved;            /* room its reply has (sessions_reserve) */
	bool refused;               /* not_reading: counted, not done, not answered */
};

static void router_rearm(struct broker *b);

/*
 * No message out is larger than FLOW_OUT_MAX, so libzmq's queues stay
 * bounded in bytes: a larger reply (a query's) is refused as too_large.
 */
static void
reply(struct broker *b, struct inbound *in, msgpack_sbuffer *sb)
{
	if (sb->size > FLOW_OUT_MAX) {
		struct rl_error e;
		msgpack_packer pk;

		rl_error_set(&e, RL_E_TOO_LARGE, "", "the reply would be %zu "
		    "bytes, more than the %d a message may hold; ask for less "
		    "(a smaller limit)", sb->size, FLOW_OUT_MAX);
		msgpack_sbuffer_clear(sb);
		msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
		codec_pack_error(&pk, &e, in->req.has_ref, in->req.ref);
	}
	sessions_reply(b, in->s, &in->rid, sb->data, sb->size, in->reserved);
	in->reserved = 0;
}

/* ---- requests ---------------------------------------------------------- */

static uint32_t
hello_credit(const struct broker *b, const struct inbound *in)
{
	return in->req.has_credit ? in->req.credit : b->cfg->default_credit;
}

static void
pack_welcome(struct broker *b, struct inbound *in, msgpack_packer *pk)
{
	const struct agent *a = in->s->agent;

	codec_begin_reply(pk, "welcome", 7 + in->req.has_ref);
	if (in->req.has_ref)
		codec_pack_kv_u64(pk, "ref", in->req.ref);
	codec_pack_kv_str(pk, "agent", a->id);
	codec_pack_kv_str(pk, "kind", agent_kind_name(a->kind));
	codec_pack_kv_str(pk, "name", a->name);
	codec_pack_kv_u64(pk, "credit", hello_credit(b, in));
	codec_pack_kv_u64(pk, "heartbeat_ms", b->cfg->heartbeat_ms);
	/* Events per submit: not the config's max_batch (messages per pass). */
	codec_pack_kv_u64(pk, "max_events", RL_MAX_BATCH);
	codec_pack_kv_u64(pk, "max_frame", RL_MAX_FRAME_BYTES);
}

/*
 * What went wrong inside a pass's transaction, and whose it was: an event
 * of a submit (event >= 0) or a dack (event < 0).  See write_pass().
 */
struct pass_failure {
	int rc;                     /* the LMDB or system error; 0: none */
	struct inbound *in;
	int64_t event;
};

static void
fail_at(struct pass_failure *f, int rc, struct inbound *in, int64_t event)
{
	f->rc = rc;
	f->in = in;
	f->event = event;
}

/*
 * Apply a submit's events, except those a previous attempt of the pass set
 * aside.  Stops at the first event whose writes failed: the transaction
 * is then unusable (a failed put cannot be undone inside LMDB's
 * transaction) and write_pass() starts it again without that event.
 */
static void
handle_submit(struct broker *b, MDB_txn *txn, struct inbound *in, int64_t now,
    struct pass_failure *f)
{
	uint32_t n = in->req.nevents;

	if (in->results == NULL) {
		in->results = calloc(n, sizeof(*in->results));
		in->errors = calloc(n, sizeof(*in->errors));
	}
	if (in->results == NULL || in->errors == NULL) {
		rl_error_set(&in->err, RL_E_STORAGE, "", "the broker is out of memory; retry later");
		in->code = RL_E_STORAGE;
		return;
	}
	for (uint32_t i = 0; i < n && f->rc == 0; i++) {
		struct ingest_result *r = &in->results[i];

		if (r->set_aside)
			continue;
		r->code = ingest_event(b, txn, in->s->agent, &in->req.events[i],
		    now, r, &in->errors[i]);
		/* A damaged record our own checks found has no LMDB cause. */
		if (r->code == RL_E_STORAGE || r->code == RL_E_STORAGE_FULL)
			fail_at(f, in->errors[i].cause != 0 ? in->errors[i].cause :
			    MDB_CORRUPTED, in, i);
	}
}

/* The health counters of a submit, once the pass's fate is known. */
static void
count_results(struct broker *b, const struct inbound *in,
    const struct rl_error *commit)
{
	for (uint32_t i = 0; i < in->req.nevents; i++) {
		const struct ingest_result *r = &in->results[i];

		if (r->code == RL_OK && commit->code == RL_OK)
			r->duplicate ? b->counters.duplicates++ : b->counters.accepted++;
		else
			b->counters.refused++;
	}
}

/* The event's id as the agent sent it, if it is one we can echo. */
static const msgpack_object *
echoable_event_id(const msgpack_object *ev)
{
	const msgpack_object *id = codec_map_get(ev, "event_id");
	const unsigned char *p;
	size_t n;

	if (id == NULL || id->type != MSGPACK_OBJECT_STR ||
	    id->via.str.size > RL_MAX_ID_BYTES)
		return NULL;
	/* Not UTF-8: echoed as a str, it would break strict decoders. */
	p = (const unsigned char *)id->via.str.ptr;
	n = id->via.str.size;
	while (n > 0) {
		size_t len = utf8_sequence_len(p, n);

		if (len == 0)
			return NULL;
		p += len;
		n -= len;
	}
	return id;
}

static void
pack_event_id(msgpack_packer *pk, const msgpack_object *id)
{
	if (id != NULL) {
		codec_pack_str(pk, "event_id");
		codec_pack_strn(pk, id->via.str.ptr, id->via.str.size);
	}
}

/*
 * The refusal of event i, if it has one: its own, or the pass's failure
 * (commit) for an event that was applied but never committed.
 */
static const struct rl_error *
event_refusal(const struct inbound *in, uint32_t i,
    const struct rl_error *commit)
{
	if (in->results[i].code != RL_OK)
		return &in->errors[i];
	return commit->code != RL_OK ? commit : NULL;
}

/* The acks of a submit, after the commit (or its failure). */
static void
pack_acks(struct inbound *in, const struct rl_error *commit, msgpack_packer *pk)
{
	uint32_t n = in->req.nevents;

	codec_begin_reply(pk, "acks", 1 + in->req.has_ref);
	if (in->req.has_ref)
		codec_pack_kv_u64(pk, "ref", in->req.ref);
	codec_pack_str(pk, "results");
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct ingest_result *r = &in->results[i];
		const msgpack_object *ev = &in->req.events[i];
		const struct rl_error *e = event_refusal(in, i, commit);
		const msgpack_object *id = echoable_event_id(ev);
		bool idp = id != NULL;

		if (e == NULL) {
			msgpack_pack_map(pk, 4 + idp);
			codec_pack_kv_u64(pk, "i", i);
			pack_event_id(pk, id);
			codec_pack_kv_str(pk, "status", r->duplicate ? "duplicate" : "ok");
			codec_pack_kv_u64(pk, "seq", r->seq);
			codec_pack_kv_i64(pk, "recorded_at", r->recorded_at);
		} else {
			msgpack_pack_map(pk, 6 + idp);
			codec_pack_kv_u64(pk, "i", i);
			pack_event_id(pk, id);
			codec_pack_kv_str(pk, "status", "error");
			codec_pack_kv_u64(pk, "code", (uint64_t)e->code);
			codec_pack_kv_str(pk, "error", rl_code_name(e->code));
			codec_pack_kv_str(pk, "field", e->field);
			codec_pack_kv_str(pk, "message", e->message);
		}
	}
}

/*
 * One line per refused event, with the refusal the agent got: an event
 * refused at the commit is logged as refused too, with the storage error
 * that caused it.
 */
static void
log_refusals(struct inbound *in, const struct rl_error *commit)
{
	for (uint32_t i = 0; i < in->req.nevents; i++) {
		const struct rl_error *e = event_refusal(in, i, commit);

		if (e == NULL)
			continue;
		if (e->cause != 0)
			log_info("event.refused", "agent", LOG_STR(in->s->agent->id),
			    "index", LOG_U64(i), "code", LOG_U64((uint64_t)e->code),
			    "error", LOG_STR(rl_code_name(e->code)),
			    "cause", LOG_STR(mdb_strerror(e->cause)), NULL);
		else
			log_info("event.refused", "agent", LOG_STR(in->s->agent->id),
			    "index", LOG_U64(i), "code", LOG_U64((uint64_t)e->code),
			    "error", LOG_STR(rl_code_name(e->code)),
			    "field", LOG_STR(e->field), NULL);
	}
}

static void inbound_free(struct inbound *in);

/* The room a request's reply needs; 0 for a dack, which has none. */
static size_t
reply_room(const struct inbound *in)
{
	if (in->code != RL_OK)
		return SMALL_REPLY_MAX;
	switch (in->req.cmd) {
	case RL_CMD_SUBMIT:
		return flow_acks_max(in->req.nevents);
	case RL_CMD_QUERY:
		return FLOW_OUT_MAX;
	case RL_CMD_DACK:
		return 0;
	case RL_CMD_HELLO:
	case RL_CMD_PING:
		break;
	}
	return SMALL_REPLY_MAX;
}

/*
 * Room for the reply before the request is done (flow.h); 1 to go on with
 * it (done, or refused as not_reading), 0 if it was set aside for the
 * next pass, which takes it first.  The first request of a pass is never
 * set aside, so every pass moves on.
 */
static int
admit(struct broker *b, struct inbound *in, bool first)
{
	size_t need = reply_room(in);

	if (need == 0)
		return 1;
	switch (sessions_reserve(b, in->s, &in->rid, need)) {
	case SESSIONS_ROOM:
		in->reserved = need;
		return 1;
	case SESSIONS_NO_ROOM:
		if (first || in->code != RL_OK)
			break;
		zmq_msg_init(&b->pass.carried_rid);
		zmq_msg_move(&b->pass.carried_rid, &in->rid);
		zmq_msg_init(&b->pass.carried_body);
		zmq_msg_move(&b->pass.carried_body, &in->body);
		b->pass.carried = true;
		inbound_free(in);
		return 0;
	case SESSIONS_REFUSED:
		break;
	}
	sessions_refuse(b, in->s, &in->rid, in->req.has_ref, in->req.ref);
	in->refused = true;
	in->code = RL_E_NOT_READING;
	return 1;
}

/* The next message: the one the last pass set aside, or the router's. */
static int
receive(struct broker *b, struct inbound *in, int *more)
{
	size_t ml = sizeof(*more);

	zmq_msg_init(&in->rid);
	zmq_msg_init(&in->body);
	if (b->pass.carried) {
		zmq_msg_move(&in->rid, &b->pass.carried_rid);
		zmq_msg_move(&in->body, &b->pass.carried_body);
		zmq_msg_close(&b->pass.carried_rid);
		zmq_msg_close(&b->pass.carried_body);
		b->pass.carried = false;
		*more = 0;
		return 0;
	}
	if (zmq_msg_recv(&in->rid, b->net.router, ZMQ_DONTWAIT) == -1 ||
	    zmq_msg_recv(&in->body, b->net.router, 0) == -1) {
		zmq_msg_close(&in->body);
		zmq_msg_close(&in->rid);
		return -1;
	}
	zmq_getsockopt(b->net.router, ZMQ_RCVMORE, more, &ml);
	return 0;
}

/*
 * Read one message; 1 if read, 0 if none waiting or it was set aside
 * (admit()).  first: the pass has read nothing yet.
 */
static int
read_one(struct broker *b, struct inbound *in, size_t *bytes, int64_t mono,
    bool first)
{
	zmq_msg_t *body = &in->body;
	int more = 0;
	size_t ml = sizeof(more);

	if (receive(b, in, &more) == -1)
		return 0;
	msgpack_unpacked_init(&in->up);
	*bytes += zmq_msg_size(body);

	/* Identity comes from the CURVE key, on every message. */
	in->s = sessions_identify(b, &in->rid, body, mono);

	if (more) {
		/* Drain the rest: a relais message is exactly one frame. */
		while (more) {
			zmq_msg_t extra;

			zmq_msg_init(&extra);
			zmq_msg_recv(&extra, b->net.router, 0);
			zmq_msg_close(&extra);
			zmq_getsockopt(b->net.router, ZMQ_RCVMORE, &more, &ml);
		}
		in->code = rl_error_set(&in->err, RL_E_MULTIPART, "",
		    "a relais message is exactly one frame");
	} else {
		in->code = codec_decode_request(zmq_msg_data(body),
		    zmq_msg_size(body), &in->up, &in->req, &in->err);
		/* The pass's budget counts the decoded tree, not only the
		 * frame, and a submit's results. */
		*bytes += CODEC_DECODED_BYTES(in->req.values);
		if (in->code == RL_OK && in->req.cmd == RL_CMD_SUBMIT)
			*bytes += (size_t)in->req.nevents *
			    (sizeof(*in->results) + sizeof(*in->errors));
		/* Decoded first, so that the refusal carries the request's ref. */
		if (in->s == NULL)
			in->code = rl_error_set(&in->err, RL_E_FORBIDDEN, "",
			    "this connection's key is no longer in the agent "
			    "registry; reconnect with the agent's registered key");
	}
	/*
	 * The frame stays open until inbound_free(): msgpack_unpack_next does
	 * not copy strings, the decoded request points into the frame.
	 */
	if (in->code != RL_OK) {
		log_warn("message.refused",
		    "agent", LOG_STR(in->s != NULL ? in->s->agent->id : "?"),
		    "code", LOG_U64((uint64_t)in->code),
		    "error", LOG_STR(rl_code_name(in->code)),
		    "field", LOG_STR(in->err.field), NULL);
		b->counters.refused++;
	}
	/* A connection that does not read: only its dacks are still done. */
	if (in->s != NULL && (in->code != RL_OK || in->req.cmd != RL_CMD_DACK))
		return admit(b, in, first);
	return 1;
}

/* Work done inside the pass's transaction, before the commit. */
static void
handle_in_txn(struct broker *b, MDB_txn *txn, struct inbound *in, int64_t now,
    struct pass_failure *f)
{
	int rc;

	if (in->code != RL_OK || f->rc != 0)
		return;
	switch (in->req.cmd) {
	case RL_CMD_SUBMIT:
		handle_submit(b, txn, in, now, f);
		break;
	case RL_CMD_DACK:
		if ((rc = mailbox_ack(b, txn, in->s, in->req.upto, &in->upto)) != 0)
			fail_at(f, rc, in, -1);
		break;
	case RL_CMD_HELLO:
	case RL_CMD_PING:
	case RL_CMD_QUERY:
		break;
	}
}

/*
 * The pass goes on without what failed: an event is refused alone with its
 * storage error, a dack is answered with one.  The real cause is logged.
 */
static void
set_aside(struct broker *b, struct pass_failure *f)
{
	struct inbound *in = f->in;
	const char *agent = in->s->agent->id;

	if (f->event < 0) {
		in->code = store_error(&b->st, &in->err, f->rc);
		log_error("dack.failed", "agent", LOG_STR(agent),
		    "error", LOG_STR(mdb_strerror(f->rc)), NULL);
		return;
	}
	in->results[f->event].set_aside = true;
	log_error("event.failed", "agent", LOG_STR(agent),
	    "index", LOG_U64((uint64_t)f->event),
	    "code", LOG_U64((uint64_t)in->results[f->event].code),
	    "cause", LOG_STR(in->errors[f->event].message),
	    "hint", LOG_STR("this event alone was refused; run relaisd "
	    "--verify on a copy of the store (relaisd --backup) to find what "
	    "is inconsistent"), NULL);
}

/* Every submit of the pass refused with the store's error. */
static void
refuse_writes(struct broker *b, struct inbound *ins, size_t n, int rc)
{
	for (size_t i = 0; i < n; i++)
		if (ins[i].code == RL_OK && ins[i].req.cmd == RL_CMD_SUBMIT)
			ins[i].code = store_error(&b->st, &ins[i].err, rc);
}

/*
 * Apply the pass in one write transaction and commit it; 0, or the LMDB or
 * system error that refuses the whole pass.  An event whose writes fail says nothing
 * about the others: the transaction is aborted and the pass applied again
 * from the start without that event, which alone is refused.  Errors are
 * rare, so this costs nothing on the way that matters, and a replay sees
 * exactly what the first attempt saw (same events, same clock).  A full
 * map is the store's trouble, not the event's, and refuses the whole
 * pass, as a failed commit does; so does a pass that keeps failing.
 */
static int
write_pass(struct broker *b, struct inbound *ins, size_t n, int64_t now,
    bool writes)
{
	for (int attempt = 0;; attempt++) {
		struct pass_failure f = { 0, NULL, 0 };
		MDB_txn *txn;
		int rc;

		if ((rc = txn_begin(b, &txn)) != 0) {
			log_error("store.txn_failed", "error", LOG_STR(mdb_strerror(rc)), NULL);
			refuse_writes(b, ins, n, rc);
			return 0;
		}
		for (size_t i = 0; i < n; i++)
			handle_in_txn(b, txn, &ins[i], now, &f);
		if (f.rc == 0 && !writes) {
			txn_abort(b, txn);
			return 0;
		}
		if (f.rc == 0) {
			if ((rc = txn_commit(b, txn)) == 0) {
				b->counters.commits++;
				return 0;
			}
			/* Nothing was written: with a bigger map, the pass again. */
			if (rc == MDB_MAP_FULL && upkeep_grow(b, true) == 1)
				continue;
			log_error("store.commit_failed",
			    "error", LOG_STR(mdb_strerror(rc)), NULL);
			return rc;
		}
		txn_abort(b, txn);
		if (f.rc == MDB_MAP_FULL && upkeep_grow(b, true) == 1)
			continue;
		if (f.rc == MDB_MAP_FULL || attempt == PASS_ATTEMPTS_MAX - 1) {
			log_error("store.write_failed",
			    "error", LOG_STR(mdb_strerror(f.rc)),
			    "hint", LOG_STR(f.rc == MDB_MAP_FULL ?
			    "the store reached map_size_max_mb: raise it (reload)" :
			    "check the data_dir's disk"), NULL);
			return f.rc;
		}
		set_aside(b, &f);
	}
}

/* Work done after the commit: state changes that must not precede it. */
static void
handle_after_commit(struct broker *b, struct inbound *in,
    const struct rl_error *commit, int64_t now, int64_t mono)
{
	msgpack_packer pk;

	if (in->refused)
		return;
	msgpack_sbuffer_clear(&b->pass.scratch);
	msgpack_packer_init(&pk, &b->pass.scratch, msgpack_sbuffer_write);

	if (in->code != RL_OK) {
		codec_pack_error(&pk, &in->err, in->req.has_ref, in->req.ref);
		reply(b, in, &b->pass.scratch);
		return;
	}
	sessions_heard(b, in->s, &in->rid);
	switch (in->req.cmd) {
	case RL_CMD_HELLO:
		sessions_hello(b, in->s, &in->rid, hello_credit(b, in), mono);
		pack_welcome(b, in, &pk);
		reply(b, in, &b->pass.scratch);
		break;
	case RL_CMD_SUBMIT:
		if (in->results == NULL) {
			codec_pack_error(&pk, &in->err, in->req.has_ref, in->req.ref);
		} else {
			pack_acks(in, commit, &pk);
			count_results(b, in, commit);
			log_refusals(in, commit);
		}
		reply(b, in, &b->pass.scratch);
		break;
	case RL_CMD_DACK:
		if (commit->code == RL_OK && in->upto > in->s->acked) {
			uint64_t n = in->upto - in->s->acked;

			in->s->inflight = n >= in->s->inflight ? 0 :
			    in->s->inflight - (uint32_t)n;
			in->s->acked = in->upto;
			in->s->pending = true;
			in->s->backoff_ms = b->cfg->redeliver_ms;
			in->s->retry_at = in->s->inflight > 0 ?
			    mono + b->cfg->redeliver_ms : 0;
			log_info("delivery.acknowledged",
			    "agent", LOG_STR(in->s->agent->id),
			    "upto", LOG_U64(in->upto), NULL);
		}
		if (in->req.has_credit)
			sessions_credit(b, in->s, &in->rid, in->req.credit);
		break;
	case RL_CMD_PING:
		codec_begin_reply(&pk, "pong", 1 + in->req.has_ref);
		if (in->req.has_ref)
			codec_pack_kv_u64(&pk, "ref", in->req.ref);
		codec_pack_kv_i64(&pk, "time", now);
		reply(b, in, &b->pass.scratch);
		break;
	case RL_CMD_QUERY:
		query_handle(b, in->s->agent, &in->req, &pk);
		reply(b, in, &b->pass.scratch);
		break;
	}
}

static void
inbound_free(struct inbound *in)
{
	zmq_msg_close(&in->rid);
	zmq_msg_close(&in->body);
	msgpack_unpacked_destroy(&in->up);
	free(in->results);
	free(in->errors);
}

/*
 * The pass's array of messages: kept from pass to pass (every pass used to
 * allocate and free max_batch of them), grown when a reload raises
 * max_batch.  NULL if the host is out of memory.
 */
static struct inbound *
pass_inbound(struct broker *b)
{
	struct inbound *ins;

	if (b->pass.ins_cap < b->cfg->max_batch) {
		if ((ins = realloc(b->pass.ins, b->cfg->max_batch * sizeof(*ins))) == NULL)
			return NULL;
		b->pass.ins = ins;
		b->pass.ins_cap = b->cfg->max_batch;
	}
	return b->pass.ins;
}

/*
 * One pass: read, apply in one transaction, commit with sync, reply.
 * See the ordering rules at the top of this file.
 */
static void
pass(struct broker *b)
{
	struct inbound *ins;
	size_t n = 0, bytes = 0;
	int64_t now = clock_now(&b->clock), mono = rl_mono_ms();
	struct rl_error commit = { .code = RL_OK };
	int rc;
	bool writes = false;

	if (b->run.stopping || (ins = pass_inbound(b)) == NULL)
		return;
	/* Closed connections first: their routing ids may come back as others'. */
	sessions_read_monitor(b);
	while (n < b->cfg->max_batch && bytes < PASS_MAX_BYTES) {
		/* Only the slots a pass uses are cleared, not all max_batch. */
		memset(&ins[n], 0, sizeof(ins[n]));
		if (!read_one(b, &ins[n], &bytes, mono, n == 0))
			break;
		if (ins[n].code == RL_OK && (ins[n].req.cmd == RL_CMD_SUBMIT ||
		    ins[n].req.cmd == RL_CMD_DACK))
			writes = true;
		n++;
	}
	b->counters.passes++;
	if (n > 0 && (rc = write_pass(b, ins, n, now, writes)) != 0)
		store_error(&b->st, &commit, rc);
	for (size_t i = 0; i < n; i++) {
		handle_after_commit(b, &ins[i], &commit, now, mono);
		inbound_free(&ins[i]);
	}
	/* Even after reading nothing: the wake-up may be a queue with room. */
	mailbox_flush(b);
	log_flush();
	router_rearm(b);
}

/* ---- the loop ---------------------------------------------------------- */

static void
on_idle(uv_idle_t *h)
{
	pass(h->data);
}

/*
 * Reading ZMQ_EVENTS processes libzmq's pending commands, among them "a
 * connection's queue has room again", and consumes the edge of ZMQ_FD
 * that announced them: so replies and deliveries that wait are offered to
 * libzmq again after each read, for as long as it takes them.  What it
 * does not take waits for the next wake-up or tick.
 */
static void
router_rearm(struct broker *b)
{
	uint32_t events = 0;
	size_t len = sizeof(events);
	uint64_t sent;
	int rounds = 0;

	if (b->run.stopping)
		return;
	do {
		sent = b->peers.flow.sent;
		zmq_getsockopt(b->net.router, ZMQ_EVENTS, &events, &len);
		sessions_flush(b);
		mailbox_flush(b);
	} while (b->peers.flow.sent != sent && ++rounds < REARM_ROUNDS_MAX);
	len = sizeof(events);
	if (zmq_getsockopt(b->net.router, ZMQ_EVENTS, &events, &len) != 0)
		events = 0;
	if (b->pass.carried || (events & ZMQ_POLLIN) || rounds == REARM_ROUNDS_MAX)
		uv_idle_start(&b->run.idle, on_idle);
	else
		uv_idle_stop(&b->run.idle);
}

static void
on_router(uv_poll_t *h, int status, int events)
{
	pass(h->data);
}

static void
on_zap(uv_poll_t *h, int status, int events)
{
	struct broker *b = h->data;

	zap_handle(b);
	/* Accepting a peer may have queued messages on the router. */
	router_rearm(b);
}

static void
on_monitor(uv_poll_t *h, int status, int events)
{
	struct broker *b = h->data;

	sessions_read_monitor(b);
	mailbox_flush(b);
	log_flush();
	router_rearm(b);
}

static void reload_config(struct broker *b);

static void
on_tick(uv_timer_t *h)
{
	struct broker *b = h->data;
	int64_t mono = rl_mono_ms();
	unsigned fired = 0;

	if (b->run.stopping)
		return;
	if (b->run.reload_requested)
		reload_config(b);
	sessions_read_monitor(b);
	sessions_check_liveness(b, mono);
	checkpoint_tick(b);
	upkeep_store(b);
	upkeep_agents(b);
	mailbox_redeliver(b, mono);
	mailbox_expire(b);
	alerts_sweep(b, clock_now(&b->clock), &fired);
	alerts_rearm_step(b, clock_now(&b->clock));
	mailbox_flush(b);
	log_flush();
	router_rearm(b);
	zap_handle(b);
}

static void
close_all(struct broker *b)
{
	uv_poll_stop(&b->run.router_poll);
	uv_poll_stop(&b->run.zap_poll);
	uv_poll_stop(&b->run.monitor_poll);
	uv_idle_stop(&b->run.idle);
	uv_timer_stop(&b->run.tick);
	uv_signal_stop(&b->run.sig_term);
	uv_signal_stop(&b->run.sig_int);
	uv_signal_stop(&b->run.sig_hup);
	uv_close((uv_handle_t *)&b->run.router_poll, NULL);
	uv_close((uv_handle_t *)&b->run.zap_poll, NULL);
	uv_close((uv_handle_t *)&b->run.monitor_poll, NULL);
	uv_close((uv_handle_t *)&b->run.idle, NULL);
	uv_close((uv_handle_t *)&b->run.tick, NULL);
	uv_close((uv_handle_t *)&b->run.sig_term, NULL);
	uv_close((uv_handle_t *)&b->run.sig_int, NULL);
	uv_close((uv_handle_t *)&b->run.sig_hup, NULL);
}

/*
 * Signals only set flags or stop the loop: the callback runs from the loop,
 * between passes, so the pass in progress has committed and replied.
 */
static void
on_stop_signal(uv_signal_t *h, int signum)
{
	struct broker *b = h->data;

	log_info("broker.stopping", "signal", LOG_STR(strsignal(signum)), NULL);
	b->run.stopping = true;
	close_all(b);
}

static void
on_hup(uv_signal_t *h, int signum)
{
	struct broker *b = h->data;

	b->run.reload_requested = true;
}

/* ---- sessions and config ----------------------------------------------- */

static void
reload_config(struct broker *b)
{
	char errs[4096], applied[512], waiting[512];
	struct config *cfg;
	struct session *ss;
	int old_level, new_level;

	b->run.reload_requested = false;
	cfg = config_load(b->cfg->path, errs, sizeof(errs));
	if (cfg == NULL) {
		log_error("config.reload_refused", "file", LOG_STR(b->cfg->path),
		    "errors", LOG_STR(errs),
		    "hint", LOG_STR("fix the file; the running config is kept"), NULL);
		return;
	}
	if ((ss = sessions_for(b, cfg)) == NULL) {
		config_free(&cfg);
		return;
	}
	config_reload_changes(cfg, b->cfg, applied, sizeof(applied), waiting,
	    sizeof(waiting));
	old_level = log_level_from_name(b->cfg->log_level);
	new_level = log_level_from_name(cfg->log_level);
	sessions_install(b, ss, cfg->nagents);
	config_free(&b->cfg);
	b->cfg = cfg;
	/* The reload's own lines are written at the lower of both levels. */
	log_set_level((enum log_level)(old_level < new_level ? old_level : new_level));
	log_info("config.reloaded", "file", LOG_STR(cfg->path),
	    "agents", LOG_U64(cfg->nagents), "applied", LOG_STR(applied), NULL);
	if (waiting[0] != '\0')
		log_warn("config.restart_needed", "keys", LOG_STR(waiting),
		    "hint", LOG_STR("these keys keep their running values "
		    "until relaisd is restarted"), NULL);
	log_set_level((enum log_level)new_level);
	if (alerts_rearm_start(b) != 0)
		log_error("rules.rearm_failed", "hint", LOG_STR("the store could "
		    "not be read; the deadlines keep the rules they were armed "
		    "with until the next reload"), NULL);
}

/* ---- set-up ------------------------------------------------------------ */

static int
load_server_keys(struct broker *b, char *err, size_t errlen)
{
	char secret[41], public[41];

	if (keyfile_read(b->cfg->secret_key_file, secret, err, errlen) == -1 ||
	    keyfile_read(b->cfg->public_key_file, public, err, errlen) == -1)
		return -1;
	zmq_z85_decode(b->net.server_secret, secret);
	zmq_z85_decode(b->net.server_public, public);
	memcpy(b->net.server_public_z85, public, sizeof(public));
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

static int
open_router(struct broker *b)
{
	int one = 1, zero = 0, sndhwm = FLOW_SNDHWM, rcvhwm = FLOW_RCVHWM;
	size_t len = sizeof(b->net.endpoint);

	b->net.router = zmq_socket(b->net.zctx, ZMQ_ROUTER);
	if (b->net.router == NULL)
		return -1;
	zmq_setsockopt(b->net.router, ZMQ_LINGER, &zero, sizeof(zero));
	/* Nothing is dropped silently: sending to a gone peer is an error. */
	zmq_setsockopt(b->net.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	/*
	 * Queues counted in messages, kept short: with the largest message
	 * each way they bound what libzmq holds per connection in bytes
	 * (flow.h).  Replies beyond wait in the broker's own queue, counted
	 * in bytes; requests beyond wait in TCP.
	 */
	zmq_setsockopt(b->net.router, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
	zmq_setsockopt(b->net.router, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	zmq_setsockopt(b->net.router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(b->net.router, ZMQ_CURVE_SECRETKEY, b->net.server_secret, 32);
	zmq_setsockopt(b->net.router, ZMQ_ZAP_DOMAIN, RL_ZAP_DOMAIN,
	    strlen(RL_ZAP_DOMAIN));
	/*
	 * No ZMTP heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT) on the router: in
	 * libzmq 4.3.4 (and master) their timer writes on a connection that
	 * failed while its input was stopped by a full queue, and asserts,
	 * which any agent could cause by pipelining requests and resetting
	 * its socket.  Liveness is the protocol's: ping/pong and
	 * check_liveness().  Agents may still set heartbeats on their side.
	 */
	/*
	 * Frames a little over the limit reach the decoder and get a precise
	 * too_large; beyond that libzmq drops the connection before buffering.
	 */
	int64_t maxmsg = FLOW_FRAME_IN_MAX;
	zmq_setsockopt(b->net.router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	/*
	 * A peer that does not finish its handshake in time is dropped
	 * (libzmq's default waits 30 s), so idle unauthenticated connections
	 * cannot hold the broker's descriptors for long.
	 */
	int handshake_ms = HANDSHAKE_MS;
	zmq_setsockopt(b->net.router, ZMQ_HANDSHAKE_IVL, &handshake_ms,
	    sizeof(handshake_ms));
	if (zmq_bind(b->net.router, b->cfg->listen) == -1)
		return -1;
	if (zmq_getsockopt(b->net.router, ZMQ_LAST_ENDPOINT, b->net.endpoint, &len) == -1)
		return -1;
	return 0;
}

static int
write_ready_file(struct broker *b)
{
	char tmp[1024];
	FILE *f;

	if (b->run.ready_file == NULL)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->run.ready_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "%s\n", b->net.endpoint);
	if (fclose(f) != 0)
		return -1;
	/* rename: a reader never sees a half-written file. */
	return rename(tmp, b->run.ready_file);
}

int
broker_init(struct broker *b, struct config *cfg, const char *ready_file)
{
	char err[512];
	int fd;
	size_t fdlen = sizeof(fd);

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->run.ready_file = ready_file;
	b->clock.manual = cfg->manual_clock;
	msgpack_sbuffer_init(&b->pass.scratch);
	msgpack_sbuffer_init(&b->pass.canon);
	msgpack_sbuffer_init(&b->pass.record);
	/* Without it (out of memory), deliveries are read from the log. */
	b->tx.passlog = passlog_new();
	if (participants_init(b) == -1 || indicators_init(b) == -1) {
		log_error("broker.out_of_memory", "hint",
		    LOG_STR("the host is out of memory; free some and restart"), NULL);
		return -1;
	}

	if (load_server_keys(b, err, sizeof(err)) == -1) {
		log_error("broker.keys", "error", LOG_STR(err),
		    "hint", LOG_STR("create them with: relais keygen PATH"), NULL);
		return -1;
	}
	/* wal: the shared transaction's pages in the map, not the heap. */
	if (store_open(&b->st, cfg->data_dir, cfg->map_size_mb,
	    strcmp(cfg->durability, "wal") == 0 ? STORE_WRITE_MAP : 0, err,
	    sizeof(err)) == -1) {
		log_error("store.open_failed", "error", LOG_STR(err), NULL);
		return -1;
	}
	if ((b->peers.sessions = sessions_for(b, cfg)) == NULL)
		return -1;
	b->peers.nsessions = cfg->nagents;
	if (checkpoint_recover(b) != 0 || broker_load_counters(b) != 0)
		return -1;

	b->net.zctx = zmq_ctx_new();
	/* The ZAP handler must be bound before the router accepts anyone. */
	if (zap_start(b) == -1) {
		log_error("zap.start_failed", "error", LOG_STR(zmq_strerror(errno)), NULL);
		return -1;
	}
	if (open_router(b) == -1) {
		log_error("broker.bind_failed", "endpoint", LOG_STR(cfg->listen),
		    "error", LOG_STR(zmq_strerror(errno)),
		    "hint", LOG_STR("is another broker using this address? "
		    "use port * for any free port"), NULL);
		return -1;
	}
	if (sessions_monitor_start(b) == -1) {
		log_error("broker.monitor_failed", "error",
		    LOG_STR(zmq_strerror(errno)), NULL);
		return -1;
	}

	b->run.loop = uv_default_loop();
	zmq_getsockopt(b->net.router, ZMQ_FD, &fd, &fdlen);
	uv_poll_init(b->run.loop, &b->run.router_poll, fd);
	b->run.router_poll.data = b;
	uv_poll_start(&b->run.router_poll, UV_READABLE, on_router);
	fdlen = sizeof(fd);
	zmq_getsockopt(b->net.zap, ZMQ_FD, &fd, &fdlen);
	uv_poll_init(b->run.loop, &b->run.zap_poll, fd);
	b->run.zap_poll.data = b;
	uv_poll_start(&b->run.zap_poll, UV_READABLE, on_zap);
	fdlen = sizeof(fd);
	zmq_getsockopt(b->net.monitor, ZMQ_FD, &fd, &fdlen);
	uv_poll_init(b->run.loop, &b->run.monitor_poll, fd);
	b->run.monitor_poll.data = b;
	uv_poll_start(&b->run.monitor_poll, UV_READABLE, on_monitor);
	uv_idle_init(b->run.loop, &b->run.idle);
	b->run.idle.data = b;
	uv_timer_init(b->run.loop, &b->run.tick);
	b->run.tick.data = b;
	uv_timer_start(&b->run.tick, on_tick, TICK_MS, TICK_MS);
	uv_signal_init(b->run.loop, &b->run.sig_term);
	uv_signal_init(b->run.loop, &b->run.sig_int);
	uv_signal_init(b->run.loop, &b->run.sig_hup);
	b->run.sig_term.data = b->run.sig_int.data = b->run.sig_hup.data = b;
	uv_signal_start(&b->run.sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&b->run.sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&b->run.sig_hup, on_hup, SIGHUP);
	return 0;
}

int
broker_run(struct broker *b)
{
	unsigned fired = 0;

	/*
	 * Rules changed since the last run start re-arming every pathway (a
	 * slice per tick); deadlines that passed while the broker was down
	 * fire now, with the rules of this config.
	 */
	if (alerts_rearm_start(b) != 0)
		return -1;
	alerts_sweep(b, clock_now(&b->clock), &fired);
	if (write_ready_file(b) == -1) {
		log_error("broker.ready_file", "file", LOG_STR(b->run.ready_file),
		    "error", LOG_STR(strerror(errno)), NULL);
		return -1;
	}
	log_info("broker.ready", "endpoint", LOG_STR(b->net.endpoint),
	    "agents", LOG_U64(b->cfg->nagents),
	    "public_key", LOG_STR(b->net.server_public_z85),
	    "manual_clock", LOG_BOOL(b->clock.manual), NULL);
	log_flush();
	router_rearm(b);
	uv_run(b->run.loop, UV_RUN_DEFAULT);
	log_info("broker.stopped", "accepted", LOG_U64(b->counters.accepted),
	    "commits", LOG_U64(b->counters.commits), NULL);
	log_flush();
	return 0;
}

void
broker_free(struct broker *b)
{
	if (b->run.loop != NULL && !b->run.stopping) {
		close_all(b);
		uv_run(b->run.loop, UV_RUN_DEFAULT);
	} else if (b->run.loop != NULL) {
		uv_run(b->run.loop, UV_RUN_NOWAIT);
	}
	if (b->run.loop != NULL)
		uv_loop_close(b->run.loop);
	sessions_monitor_stop(b);
	if (b->pass.carried) {
		zmq_msg_close(&b->pass.carried_rid);
		zmq_msg_close(&b->pass.carried_body);
	}
	if (b->net.router != NULL)
		zmq_close(b->net.router);
	if (b->net.zap != NULL)
		zmq_close(b->net.zap);
	if (b->net.zctx != NULL)
		zmq_ctx_term(b->net.zctx);
	checkpoint_close(b);
	store_close(&b->st);
	sessions_free(b);
	msgpack_sbuffer_destroy(&b->pass.scratch);
	msgpack_sbuffer_destroy(&b->pass.canon);
	msgpack_sbuffer_destroy(&b->pass.record);
	free(b->pass.ins);
	passlog_free(&b->tx.passlog);
	participants_free(b);
	indicators_free(b);
	/* A plain memset before the end of the object's life may be optimised away. */
	sodium_memzero(b->net.server_secret, sizeof(b->net.server_secret));
}
