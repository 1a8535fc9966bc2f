/*
 * flow.c: how much the broker holds for each connection, in bytes, and the
 * not_reading refusal (PROTOCOL.md §8, README "Memory").
 *
 * What libzmq holds is bounded by its queue lengths (ZMQ_RCVHWM and
 * ZMQ_SNDHWM count messages) times the largest message each way.  Those
 * lengths are kept small; a burst of replies libzmq does not take at once
 * waits in the connection's send queue here, counted in bytes, per
 * connection and in total.
 *
 * A request is done only if its reply has room:
 *   - a submit reserves room for its acks (flow_acks_max) when it is read,
 *     before anything is written, so the acks of a recorded event are
 *     never dropped;
 *   - any other reply is measured once built (queries, pings and refusals
 *     change nothing, and a hello is checked before it is applied).
 * A request without room is refused, not done: the connection then stops
 * reading (its client is not reading its replies), every later request
 * on it is refused too (except dack, which has no reply and is always
 * done), and the refusals are counted, not queued one by one.  When
 * everything queued has gone to libzmq, ONE error not_reading (303) tells
 * the client which requests were refused (the first and last refs and how
 * many), and the connection is served again.
 */
#ifndef RELAIS_FLOW_H
#define RELAIS_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "relais_proto.h"

/*
 * The limits the memory bound follows from.  libzmq holds per connection
 * at most FLOW_RCVHWM requests read ahead, one being received and one the
 * router has taken, each at most FLOW_FRAME_IN_MAX bytes; and
 * FLOW_SNDHWM messages plus the one being written, each at most
 * FLOW_OUT_MAX bytes: 2.31 MiB, so that max_connections (64 by default)
 * fit the bound.  The queues are as short as libzmq allows (with a
 * receive queue of one message, libzmq 4.3's router never hands over a
 * new connection's first request): a client keeps requests in flight all
 * the same, the deeper ones wait in TCP on its side, and replies libzmq
 * cannot take at once wait here, counted.
 */
#define FLOW_RCVHWM         2
#define FLOW_SNDHWM         1
/* Frames up to this reach the decoder and get a precise too_large. */
#define FLOW_FRAME_IN_MAX   (RL_MAX_FRAME_BYTES + (16 << 10))
/* No message the broker sends is larger: a bigger reply is refused. */
#define FLOW_OUT_MAX        RL_MAX_FRAME_BYTES
#define FLOW_CONN_QUEUE_MAX (4u << 20)      /* replies waiting, per connection */
#define FLOW_QUEUE_MAX      (24u << 20)     /* replies waiting, all connections */
/* The most libzmq holds for one connection, both ways. */
#define FLOW_CONN_ZMQ_MAX \
	((size_t)(FLOW_RCVHWM + 2) * FLOW_FRAME_IN_MAX + \
	 (size_t)(FLOW_SNDHWM + 1) * FLOW_OUT_MAX)
/*
 * The broker's anonymous memory with the default max_connections, which
 * the README states and the memory tests check (see README "Memory" for
 * the sum).
 */
#define FLOW_MEMORY_BOUND_MIB 256

/* A reply waiting for libzmq to take it. */
struct flow_msg {
	struct flow_msg *next;
	size_t len;
	unsigned char data[];
};

/* One connection's replies waiting, and its refusals. */
struct conn_flow {
	struct flow_msg *head, *tail;
	size_t queued;              /* bytes in the queue */
	size_t reserved;            /* bytes promised to acks of submits being done */
	uint64_t refused;           /* requests refused since it stopped reading */
	bool first_has_ref, last_has_ref;
	uint64_t first_ref, last_ref;
};

/* All connections' together. */
struct flow_totals {
	/*
	 * Connections past their handshake, for max_connections (zap.c):
	 * admitted by the ZAP handler, minus those closed that were not
	 * handshakes failing (the socket monitor reports each failed
	 * handshake, then its closing).
	 */
	uint64_t admitted, closed, failed;
	size_t queued, reserved;
	size_t refusing;            /* connections refusing now */
	uint64_t refused;           /* requests refused as not_reading, ever */
	uint64_t sent;              /* messages libzmq took: progress */
};

/* Connections open past their handshake (see struct flow_totals). */
uint64_t flow_connections(const struct flow_totals *t);

/* The largest acks a submit of n events can get. */
size_t flow_acks_max(uint32_t nevents);

/* Whether n more bytes may wait for f (not counting what f reserved). */
bool flow_room(const struct flow_totals *t, const struct conn_flow *f,
    size_t n);
/* Reserve n bytes for a reply to come; false (nothing reserved) if no room. */
bool flow_reserve(struct flow_totals *t, struct conn_flow *f, size_t n);
void flow_release(struct flow_totals *t, struct conn_flow *f, size_t n);

/* A request refused, not done; has_ref/ref: its ref, if it had one. */
void flow_refuse(struct flow_totals *t, struct conn_flow *f, bool has_ref,
    uint64_t ref);
/* Whether f refuses requests (it stopped reading). */
bool flow_refusing(const struct conn_flow *f);

/* Append a copy of a reply; 0, or -1 if out of memory. */
int flow_enqueue(struct flow_totals *t, struct conn_flow *f, const void *buf,
    size_t len);
/* The first waiting reply, or NULL; flow_dequeue() frees it. */
const struct flow_msg *flow_peek(const struct conn_flow *f);
void flow_dequeue(struct flow_totals *t, struct conn_flow *f);

/* The not_reading error for f's refusals, into sb (cleared first). */
void flow_pack_notice(const struct conn_flow *f, msgpack_sbuffer *sb);
/* The notice went: f is served again. */
void flow_noticed(struct flow_totals *t, struct conn_flow *f);

/* Everything f holds, freed and taken off the totals. */
void flow_clear(struct flow_totals *t, struct conn_flow *f);

#endif
