/*
 * sessions.c: who is connected, as which agent, and where each agent's
 * deliveries go.  It sits below the loop (server.c) and the modules that
 * queue deliveries (ingest.c, alerts.c, mailbox.c): they all send through
 * it, and it calls none of them.
 *
 * Identity is the key, on every message: the ZAP handler puts the peer's
 * Z85 public key in the connection's User-Id, and each message is mapped
 * key -> agent through the config in force.  A key a reload removed or gave
 * to nobody is refused from its next message, and the connections opened
 * with an agent's former key are dropped from the table at the reload, so
 * no delivery reaches them.
 *
 * An agent may have many connections.  Each one that says `hello` becomes a
 * consumer; the agent's deliveries go to ONE of them, its target: the live
 * consumer that said hello last.  When the target ends (its TCP connection
 * closes, a send finds it gone, or it is silent for three heartbeats) the
 * previous live consumer takes over at once, from the oldest
 * unacknowledged item.  Connections that never say hello (senders,
 * queries) never receive a delivery, and a reply that cannot be sent to
 * one connection only ever forgets that connection.
 *
 * Routing ids: libzmq gives a peer that sets none a fresh one; a peer may
 * choose its own, and may then take over the routing id of a connection
 * that has ended.  So a connection is forgotten the moment its socket
 * closes (socket monitor, matched by file descriptor, read before every
 * pass and every flush; the failed handshakes it reports go to zap.c to
 * be logged), and a message whose key differs from the one the
 * routing id was seen with replaces the entry: a routing id is never
 * trusted beyond the connection it was authenticated on.
 */
#ifndef RELAIS_SESSIONS_H
#define RELAIS_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "flow.h"

#define ROUTING_ID_MAX 256
#define KEY_Z85_LEN    40

struct broker;
struct config;

/* One ZeroMQ connection, as authenticated. */
struct conn {
	struct conn *next;          /* the agent's other connections */
	unsigned char rid[ROUTING_ID_MAX];
	size_t rid_len;
	int fd;                     /* ties the socket monitor's events to it */
	char key[KEY_Z85_LEN + 1];  /* the key it authenticated with */
	bool consumer;              /* said hello: may take deliveries */
	bool live;                  /* heard from within three heartbeats */
	uint32_t credit;            /* asked for in its last hello */
	uint64_t hello_order;       /* the latest hello wins */
	int64_t last_heard;         /* monotonic ms */
	struct conn_flow flow;      /* replies waiting for it, its refusals */
};

/* What the broker knows of one registered agent. */
struct session {
	const struct agent *agent;  /* in the current config */
	struct conn *conns;         /* its open connections */
	struct conn *to;            /* where deliveries go; NULL: offline */
	uint32_t credit;            /* the target's */
	uint64_t sent;              /* highest mailbox seq sent to the target */
	uint64_t acked;             /* highest mailbox seq acknowledged */
	uint64_t uncounted;         /* sent up to here, rewound, attempts not yet
	                               counted (sessions_rewind); 0: none */
	uint32_t inflight;          /* items sent and not yet acknowledged */
	int64_t retry_at;           /* monotonic ms when in-flight items go again, 0: none */
	uint32_t backoff_ms;
	bool pending;               /* its mailbox may hold unsent items */
	uint64_t next_seq;          /* next mailbox seq; 0: read it from the store */
	bool next_dirty;            /* next_seq must be written before the commit */
	/*
	 * Items in its mailbox, so that health costs O(agents), not a walk of
	 * every mailbox: counted once from the store when first asked
	 * (mailbox_backlog), then kept by the transactions that add or
	 * remove items, their changes applied when they commit.
	 */
	uint64_t backlog;
	bool backlog_known;
	int64_t backlog_txn;        /* change made by the open transaction */
	/* The silent-agent alert and the backlog bound (mailbox.c, upkeep.c). */
	uint64_t overflowed;        /* deliveries not queued: mailbox at max_backlog */
	int64_t last_collected;     /* broker clock: last acknowledgement (or start) */
	bool silent;                /* agent.silent logged, until it collects again */
	/*
	 * Its connections, for max_connections_per_agent (zap.c): open, those
	 * its messages came on (crowd.h's owner), until they close; admitted,
	 * those the ZAP handler let in since that have sent nothing yet, the
	 * latest at admitted_at (monotonic ms).  See sessions_connections().
	 */
	uint32_t open;
	uint32_t admitted;
	int64_t admitted_at;
	int32_t moved_to;           /* sessions_for: its index in the new table */
};

/*
 * The sessions of cfg's agents, carrying over from b's current ones the
 * state of every agent whose key did not change; NULL if out of memory.
 * sessions_install() then frees the old table (dropping the connections of
 * changed or removed keys) and puts the new one in place.
 */
struct session *sessions_for(struct broker *b, const struct config *cfg);
void sessions_install(struct broker *b, struct session *ss, size_t n);
void sessions_free(struct broker *b);

struct session *sessions_find(struct broker *b, const char *agent_id);

/*
 * A client says hello or sends its request as soon as it connects
 * (PROTOCOL §1): once this long has passed since an agent's latest
 * admission, its admitted connections that have sent nothing (all
 * accepted at least this long ago) are shut down and no longer count.
 */
#define SESSIONS_SILENT_MS 10000
/* s's connections: open, plus admitted and not yet heard from. */
uint32_t sessions_connections(struct broker *b, struct session *s,
    int64_t mono);
/* The ZAP handler let one of s's connections in. */
void sessions_admitted(struct session *s, int64_t mono);

/* Watch the router's connections (after it is bound); 0 or -1. */
int sessions_monitor_start(struct broker *b);
void sessions_monitor_stop(struct broker *b);
/* Forget the connections that have closed since the last call. */
void sessions_read_monitor(struct broker *b);

/*
 * The session a message comes from, from the key behind it; NULL if that
 * key is not (or no longer) registered, with the connection forgotten and
 * the refusal logged.  Notes when the connection was last heard from.
 */
struct session *sessions_identify(struct broker *b, zmq_msg_t *rid,
    zmq_msg_t *body, int64_t mono);
/*
 * After the pass's commit: a consumer taken for gone that speaks again is
 * live again, and the target if it said hello last.
 */
void sessions_heard(struct broker *b, struct session *s, zmq_msg_t *rid);
/* A dack's new credit, for the connection it came on. */
void sessions_credit(struct broker *b, struct session *s, zmq_msg_t *rid,
    uint32_t credit);

/* The connection on rid says hello: it becomes its agent's target. */
void sessions_hello(struct broker *b, struct session *s, zmq_msg_t *rid,
    uint32_t credit, int64_t mono);

/*
 * Room for the reply to a request read from rid (flow.h), taken before
 * the request is done.  SESSIONS_ROOM: reserved, pass it to
 * sessions_reply(); SESSIONS_NO_ROOM: the connection is reading but its
 * replies already take its share of the queue, or all connections' take
 * theirs, so try again in a later pass; SESSIONS_REFUSED: the connection
 * does not read its replies: the request is counted among the refused
 * (has_ref, ref: its own) and must not be done, nor answered.
 */
enum sessions_room { SESSIONS_ROOM, SESSIONS_NO_ROOM, SESSIONS_REFUSED };
enum sessions_room sessions_reserve(struct broker *b, struct session *s,
    zmq_msg_t *rid, size_t len);
/* Refuse the request read from rid as not_reading (counted, not answered). */
void sessions_refuse(struct broker *b, struct session *s, zmq_msg_t *rid,
    bool has_ref, uint64_t ref);

/*
 * The reply to a request from rid, for which sessions_reserve() reserved
 * `reserved` bytes (s NULL: a connection the broker does not know, sent if
 * libzmq takes it now).  It goes to libzmq now, or waits in the
 * connection's queue behind the replies before it.  A connection found
 * gone is forgotten, and only it.
 */
void sessions_reply(struct broker *b, struct session *s, zmq_msg_t *rid,
    const void *buf, size_t len, size_t reserved);

/*
 * Hand waiting replies to libzmq, in order, and to each connection whose
 * queue is empty again after refusals the not_reading error that lists
 * them.  b->peers.flow.sent counts what libzmq took.
 */
void sessions_flush(struct broker *b);

/*
 * One message to s's target: 0, or -1 if it could not take it now (the
 * target was found gone and another may have taken over, its queue is
 * full, or replies wait for it: they go first); the mailbox then stays
 * pending.
 */
int sessions_deliver(struct broker *b, struct session *s, const void *buf,
    size_t len);

/*
 * Send again from the oldest unacknowledged item.  Whatever was in flight
 * was sent and not acknowledged: those sends count as attempts (uncounted
 * marks them until mailbox.c counts them), so that an item whose delivery
 * makes its agent crash and say hello again still reaches the dead-letter
 * list after max_attempts sends.
 */
void sessions_rewind(struct broker *b, struct session *s);

/* Connections silent for three heartbeats stop being targets. */
void sessions_check_liveness(struct broker *b, int64_t mono);

#endif
