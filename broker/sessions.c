/*
 * Sessions and sending: the table of connections per agent, identity by
 * key on every message, and the only code that writes to the router.
 * The rules are in sessions.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keyfile.h"
#include "log.h"
#include "relaisd.h"
#include "rltime.h"

#define MONITOR_ENDPOINT "inproc://relais.router.monitor"

/* ---- the table ---------------------------------------------------------- */

struct session *
sessions_find(struct broker *b, const char *agent_id)
{
	const struct agent *a = config_agent_by_id(b->cfg, agent_id);

	if (a == NULL)
		return NULL;
	return &b->peers.sessions[a - b->cfg->agents];
}

static bool
rid_is(const struct conn *c, const void *rid, size_t len)
{
	return c->rid_len == len && memcmp(c->rid, rid, len) == 0;
}

static struct conn *
conn_find(struct session *s, const void *rid, size_t len)
{
	for (struct conn *c = s->conns; c != NULL; c = c->next)
		if (rid_is(c, rid, len))
			return c;
	return NULL;
}

/* Free a connection and what waits for it. */
static void
conn_free(struct broker *b, struct conn *c)
{
	flow_clear(&b->peers.flow, &c->flow);
	free(c);
}

static void
conns_free(struct broker *b, struct conn *c)
{
	while (c != NULL) {
		struct conn *next = c->next;

		conn_free(b, c);
		c = next;
	}
}

/* How many connections s has, for the logs. */
static uint64_t
conn_count(const struct session *s)
{
	uint64_t n = 0;

	for (const struct conn *c = s->conns; c != NULL; c = c->next)
		n++;
	return n;
}

void
sessions_rewind(struct broker *b, struct session *s)
{
	if (s->sent > s->acked && s->sent > s->uncounted)
		s->uncounted = s->sent;
	s->sent = s->acked;
	s->inflight = 0;
	s->retry_at = 0;
	s->backoff_ms = b->cfg->redeliver_ms;
	s->pending = true;
}

/*
 * Point s's deliveries at its live consumer that said hello last, if that
 * is not where they go already; what was in flight goes again from the
 * oldest unacknowledged item.
 */
static void
retarget(struct broker *b, struct session *s, const char *why)
{
	struct conn *best = NULL;

	for (struct conn *c = s->conns; c != NULL; c = c->next)
		if (c->consumer && c->live &&
		    (best == NULL || c->hello_order > best->hello_order))
			best = c;
	if (best == s->to)
		return;
	s->to = best;
	sessions_rewind(b, s);
	if (best == NULL) {
		log_info("agent.offline", "agent", LOG_STR(s->agent->id),
		    "why", LOG_STR(why), NULL);
		return;
	}
	s->credit = best->credit;
	log_info("delivery.target", "agent", LOG_STR(s->agent->id),
	    "why", LOG_STR(why), "connections", LOG_U64(conn_count(s)), NULL);
}

/* Unlink and free c, then find s another target if c was it. */
static void
conn_forget(struct broker *b, struct session *s, struct conn *c,
    const char *why)
{
	struct conn **p = &s->conns;

	while (*p != NULL && *p != c)
		p = &(*p)->next;
	if (*p == NULL)
		return;
	*p = c->next;
	log_debug("connection.forgotten", "agent", LOG_STR(s->agent->id),
	    "why", LOG_STR(why), NULL);
	if (s->to == c) {
		s->to = NULL;
		conn_free(b, c);
		retarget(b, s, why);
		return;
	}
	conn_free(b, c);
}

/* Forget every connection on this routing id, whichever agent it was. */
static void
forget_rid(struct broker *b, const void *rid, size_t len, const char *why)
{
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct conn *c = conn_find(&b->peers.sessions[i], rid, len);

		if (c != NULL)
			conn_forget(b, &b->peers.sessions[i], c, why);
	}
}

static void
forget_fd(struct broker *b, int fd)
{
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];
		struct conn *c = s->conns;

		while (c != NULL) {
			struct conn *next = c->next;

			if (c->fd == fd)
				conn_forget(b, s, c, "connection closed");
			c = next;
		}
	}
}

struct session *
sessions_for(struct broker *b, const struct config *cfg)
{
	struct session *ss = calloc(cfg->nagents ? cfg->nagents : 1, sizeof(*ss));

	if (ss == NULL)
		return NULL;
	for (size_t i = 0; i < b->peers.nsessions; i++)
		b->peers.sessions[i].moved_to = -1;
	for (size_t i = 0; i < cfg->nagents; i++) {
		struct session *prev = b->cfg != NULL && b->peers.sessions != NULL ?
		    sessions_find(b, cfg->agents[i].id) : NULL;

		if (prev == NULL) {
			ss[i].credit = cfg->default_credit;
		} else {
			/* Its mailbox is the agent's, whatever its key. */
			ss[i] = *prev;
			ss[i].conns = NULL;
			ss[i].to = NULL;
			/*
			 * Same key: its connections go on.  Otherwise they
			 * were opened with a key that no longer names it: they
			 * stay behind and are dropped (sessions_install).
			 */
			if (strcmp(prev->agent->public_key,
			    cfg->agents[i].public_key) == 0) {
				ss[i].conns = prev->conns;
				ss[i].to = prev->to;
				prev->conns = NULL;
				prev->to = NULL;
				prev->moved_to = (int32_t)i;
			} else {
				sessions_rewind(b, &ss[i]);
				ss[i].open = ss[i].admitted = 0;
			}
		}
		ss[i].agent = &cfg->agents[i];
		if (ss[i].backoff_ms == 0)
			ss[i].backoff_ms = cfg->redeliver_ms;
	}
	return ss;
}

/*
 * The descriptors of the agents that kept their key follow them into the
 * new table; the others' are no longer any agent's.
 */
static void
remap_owners(struct broker *b)
{
	int32_t *map;

	if (b->peers.nsessions == 0 ||
	    (map = malloc(b->peers.nsessions * sizeof(*map))) == NULL)
		return;
	for (size_t i = 0; i < b->peers.nsessions; i++)
		map[i] = b->peers.sessions[i].moved_to;
	crowd_remap(&b->net.crowd, map, b->peers.nsessions);
	free(map);
}

void
sessions_install(struct broker *b, struct session *ss, size_t n)
{
	remap_owners(b);
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];

		if (s->conns != NULL)
			log_warn("connection.key_revoked", "agent",
			    LOG_STR(s->agent->id), "connections",
			    LOG_U64(conn_count(s)), "hint", LOG_STR("the key "
			    "these connections authenticated with is no longer "
			    "this agent's; their next message is refused"), NULL);
		conns_free(b, s->conns);
	}
	free(b->peers.sessions);
	b->peers.sessions = ss;
	b->peers.nsessions = n;
}

void
sessions_free(struct broker *b)
{
	for (size_t i = 0; i < b->peers.nsessions; i++)
		conns_free(b, b->peers.sessions[i].conns);
	free(b->peers.sessions);
	b->peers.sessions = NULL;
	b->peers.nsessions = 0;
}

/* ---- connections come and go -------------------------------------------- */

void
sessions_admitted(struct session *s, int64_t mono)
{
	s->admitted++;
	s->admitted_at = mono;
}

uint32_t
sessions_connections(struct broker *b, struct session *s, int64_t mono)
{
	if (s->admitted > 0 && mono - s->admitted_at >= SESSIONS_SILENT_MS) {
		size_t shed = crowd_shed_silent(&b->net.crowd, mono,
		    SESSIONS_SILENT_MS);

		/* Whatever of them has not spoken by now is being shut down. */
		s->admitted = 0;
		if (shed > 0)
			log_warn("connections.silent_closed", "count",
			    LOG_U64(shed), "hint", LOG_STR("these connections "
			    "sent nothing after their handshake; a client says "
			    "hello or sends its request as soon as it connects"),
			    NULL);
	}
	return s->open + s->admitted;
}

int
sessions_monitor_start(struct broker *b)
{
	int zero = 0;

	if (crowd_init(&b->net.crowd) == -1)
		return -1;
	if (zmq_socket_monitor(b->net.router, MONITOR_ENDPOINT,
	    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED |
	    ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == -1)
		return -1;
	if ((b->net.monitor = zmq_socket(b->net.zctx, ZMQ_PAIR)) == NULL)
		return -1;
	zmq_setsockopt(b->net.monitor, ZMQ_LINGER, &zero, sizeof(zero));
	/* Unbounded: a full pipe would block libzmq's I/O thread. */
	zmq_setsockopt(b->net.monitor, ZMQ_RCVHWM, &zero, sizeof(zero));
	return zmq_connect(b->net.monitor, MONITOR_ENDPOINT);
}

void
sessions_monitor_stop(struct broker *b)
{
	if (b->net.router != NULL)
		zmq_socket_monitor(b->net.router, NULL, 0);
	if (b->net.monitor != NULL)
		zmq_close(b->net.monitor);
	b->net.monitor = NULL;
	crowd_free(&b->net.crowd);
}

void
sessions_read_monitor(struct broker *b)
{
	if (b->net.monitor == NULL)
		return;
	for (;;) {
		zmq_msg_t ev, addr;
		uint16_t event = 0;
		uint32_t value = 0;

		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, b->net.monitor, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&ev);
			return;
		}
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
		}
		zmq_msg_init(&addr);
		if (zmq_msg_more(&ev))
			zmq_msg_recv(&addr, b->net.monitor, 0);
		zmq_msg_close(&addr);
		zmq_msg_close(&ev);
		if (event == ZMQ_EVENT_ACCEPTED) {
			crowd_accepted(&b->net.crowd, (int)value, rl_mono_ms());
		} else if (event == ZMQ_EVENT_ACCEPT_FAILED) {
			crowd_accept_failed(&b->net.crowd, (int)value, rl_mono_ms());
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			int32_t owner = crowd_closed(&b->net.crowd, (int)value);

			b->peers.flow.closed++;
			if (owner >= 0 && (size_t)owner < b->peers.nsessions &&
			    b->peers.sessions[owner].open > 0)
				b->peers.sessions[owner].open--;
			forget_fd(b, (int)value);
		} else if (event != 0) {
			b->peers.flow.failed++;
			zap_log_handshake_failure(b, event, value);
		}
	}
}

static void
log_forbidden(const char *key)
{
	unsigned char raw[32];
	char fp[17] = "";

	if (key != NULL && strlen(key) == KEY_Z85_LEN &&
	    zmq_z85_decode(raw, key) != NULL)
		keyfile_fingerprint(raw, fp);
	log_warn("connection.forbidden", "key", LOG_STR(fp),
	    "hint", LOG_STR("this key is no longer in the agent registry; "
	    "the connection's messages are refused"), NULL);
}

struct session *
sessions_identify(struct broker *b, zmq_msg_t *rid, zmq_msg_t *body,
    int64_t mono)
{
	const char *key = zmq_msg_gets(body, "User-Id");
	const struct agent *a = key != NULL ? config_agent_by_key(b->cfg, key) : NULL;
	const void *r = zmq_msg_data(rid);
	size_t len = zmq_msg_size(rid);
	int fd = zmq_msg_get(body, ZMQ_SRCFD);
	struct session *s;
	struct conn *c;

	/* A message came: its handshake is over, it is no idle newcomer. */
	crowd_heard(&b->net.crowd, fd);
	if (a == NULL) {
		forget_rid(b, r, len, "key revoked");
		log_forbidden(key);
		return NULL;
	}
	s = &b->peers.sessions[a - b->cfg->agents];
	if (fd >= 0 && crowd_owner(&b->net.crowd, fd) < 0) {
		/* Its first message: admitted, now open. */
		crowd_own(&b->net.crowd, fd, (int32_t)(a - b->cfg->agents));
		s->open++;
		if (s->admitted > 0)
			s->admitted--;
	}
	if (len > ROUTING_ID_MAX)
		return s;               /* libzmq caps them at 255 bytes */
	c = conn_find(s, r, len);
	if (c == NULL || strcmp(c->key, key) != 0) {
		/* A routing id is trusted only on the connection it was seen on. */
		forget_rid(b, r, len, "routing id reused");
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return s;       /* served, just not a delivery target */
		memcpy(c->rid, r, len);
		c->rid_len = len;
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->live = true;
		c->next = s->conns;
		s->conns = c;
	}
	c->fd = fd;
	c->last_heard = mono;
	return s;
}

void
sessions_heard(struct broker *b, struct session *s, zmq_msg_t *rid)
{
	struct conn *c = conn_find(s, zmq_msg_data(rid), zmq_msg_size(rid));

	if (c == NULL || c->live)
		return;
	c->live = true;
	if (c->consumer) {
		retarget(b, s, "heard from again");
		if (s->to == c)
			log_info("agent.back", "agent", LOG_STR(s->agent->id), NULL);
	}
}

void
sessions_credit(struct broker *b, struct session *s, zmq_msg_t *rid,
    uint32_t credit)
{
	struct conn *c = conn_find(s, zmq_msg_data(rid), zmq_msg_size(rid));

	if (c == NULL)
		return;
	c->credit = credit;
	if (s->to == c) {
		s->credit = credit;
		s->pending = true;
	}
}

void
sessions_hello(struct broker *b, struct session *s, zmq_msg_t *rid,
    uint32_t credit, int64_t mono)
{
	struct conn *c = conn_find(s, zmq_msg_data(rid), zmq_msg_size(rid));

	if (c == NULL)
		return;         /* out of memory when it was first seen */
	c->consumer = true;
	c->live = true;
	c->last_heard = mono;
	c->credit = credit;
	c->hello_order = ++b->peers.hellos;
	if (s->to == c) {
		/* hello again: start over from the oldest unacknowledged item */
		s->credit = credit;
		sessions_rewind(b, s);
	} else {
		retarget(b, s, "hello");
	}
	log_info("agent.hello", "agent", LOG_STR(s->agent->id),
	    "kind", LOG_STR(agent_kind_name(s->agent->kind)),
	    "credit", LOG_U64(credit),
	    "connections", LOG_U64(conn_count(s)), NULL);
}

void
sessions_check_liveness(struct broker *b, int64_t mono)
{
	int64_t limit = 3 * (int64_t)b->cfg->heartbeat_ms;

	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];
		struct conn *c = s->conns;

		/* Admitted connections still silent are shut down. */
		if (s->admitted > 0)
			sessions_connections(b, s, mono);

		while (c != NULL) {
			struct conn *next = c->next;

			if (c->live && mono - c->last_heard > limit) {
				/*
				 * A consumer is kept, so that any message
				 * brings it back; a silent sender is
				 * simply forgotten, unless replies wait for
				 * it: a client that has stopped reading
				 * gets them, and the refusals' notice,
				 * when it reads again (its connection
				 * closing forgets it: the monitor).
				 */
				c->live = false;
				if (!c->consumer && flow_peek(&c->flow) == NULL &&
				    !flow_refusing(&c->flow))
					conn_forget(b, s, c, "silent");
				else if (s->to == c) {
					log_info("agent.gone", "agent",
					    LOG_STR(s->agent->id), "silent_ms",
					    LOG_I64(mono - c->last_heard), NULL);
					retarget(b, s, "target silent");
				}
			}
			c = next;
		}
	}
}

/* ---- sending ------------------------------------------------------------ */

/*
 * One frame to a routing id, never blocking: 0, or -1 with zmq_errno().
 * A peer that has gone (EHOSTUNREACH, thanks to ROUTER_MANDATORY) or whose
 * queue is full (EAGAIN) does not get it.
 */
static int
send_to(struct broker *b, const void *rid, size_t rid_len, const void *buf,
    size_t len)
{
	if (zmq_send(b->net.router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
		return -1;
	if (zmq_send(b->net.router, buf, len, ZMQ_DONTWAIT) == -1)
		return -1;
	return 0;
}

/* The connection a request came on, if the broker keeps one for it. */
static struct conn *
conn_of(struct session *s, zmq_msg_t *rid)
{
	return s != NULL ? conn_find(s, zmq_msg_data(rid), zmq_msg_size(rid)) :
	    NULL;
}

static void
refuse_on(struct broker *b, struct session *s, struct conn *c, bool has_ref,
    uint64_t ref)
{
	if (!flow_refusing(&c->flow))
		log_warn("connection.not_reading", "agent", LOG_STR(s->agent->id),
		    "queued_bytes", LOG_U64(c->flow.queued),
		    "hint", LOG_STR("its requests are refused (not_reading) "
		    "until it reads the replies waiting for it"), NULL);
	flow_refuse(&b->peers.flow, &c->flow, has_ref, ref);
}

enum sessions_room
sessions_reserve(struct broker *b, struct session *s, zmq_msg_t *rid,
    size_t len)
{
	struct conn *c = conn_of(s, rid);

	/* Not in the table (out of memory, an overlong routing id): its
	 * replies go only if libzmq takes them at once. */
	if (c == NULL)
		return SESSIONS_ROOM;
	if (flow_reserve(&b->peers.flow, &c->flow, len))
		return SESSIONS_ROOM;
	/* Nothing waits for it: what is short is this pass's own reservations
	 * or the other connections' queues, not its reading. */
	if (!flow_refusing(&c->flow) && flow_peek(&c->flow) == NULL)
		return SESSIONS_NO_ROOM;
	return SESSIONS_REFUSED;
}

void
sessions_refuse(struct broker *b, struct session *s, zmq_msg_t *rid,
    bool has_ref, uint64_t ref)
{
	struct conn *c = conn_of(s, rid);

	if (c != NULL)
		refuse_on(b, s, c, has_ref, ref);
}

void
sessions_reply(struct broker *b, struct session *s, zmq_msg_t *rid,
    const void *buf, size_t len, size_t reserved)
{
	const void *r = zmq_msg_data(rid);
	size_t rlen = zmq_msg_size(rid);
	struct conn *c = conn_of(s, rid);

	if (c != NULL) {
		flow_release(&b->peers.flow, &c->flow, reserved);
		/* Behind the replies already waiting, in order. */
		if (flow_peek(&c->flow) != NULL) {
			if (flow_enqueue(&b->peers.flow, &c->flow, buf, len) == -1)
				log_error("reply.dropped", "agent",
				    LOG_STR(s->agent->id), "hint",
				    LOG_STR("the broker is out of memory"), NULL);
			return;
		}
	}
	if (send_to(b, r, rlen, buf, len) == 0) {
		b->peers.flow.sent++;
		return;
	}
	/* Agents resend what was not answered; only this connection is gone. */
	if (zmq_errno() == EHOSTUNREACH) {
		forget_rid(b, r, rlen, "reply found it gone");
		return;
	}
	/* Its room was reserved when the request was read. */
	if (c != NULL && flow_enqueue(&b->peers.flow, &c->flow, buf, len) == -1)
		log_error("reply.dropped", "agent", LOG_STR(s->agent->id),
		    "hint", LOG_STR("the broker is out of memory"), NULL);
}

/*
 * What waits for c, to libzmq in order while it takes it, then the
 * notice of c's refusals; -1 if c was found gone (and freed).
 *
 * libzmq taking a reply that waited means the client read the ones before
 * it: it is alive, as if it had sent something.  A client reading a long
 * run of replies sends nothing meanwhile, and must not be forgotten as
 * silent (sessions_check_liveness) with the rest of its replies.
 */
static int
flush_conn(struct broker *b, struct session *s, struct conn *c,
    msgpack_sbuffer *notice)
{
	const struct flow_msg *m;
	uint64_t refused = c->flow.refused;

	while ((m = flow_peek(&c->flow)) != NULL) {
		if (send_to(b, c->rid, c->rid_len, m->data, m->len) == -1)
			goto failed;
		flow_dequeue(&b->peers.flow, &c->flow);
		b->peers.flow.sent++;
		c->last_heard = rl_mono_ms();
	}
	if (!flow_refusing(&c->flow))
		return 0;
	flow_pack_notice(&c->flow, notice);
	if (send_to(b, c->rid, c->rid_len, notice->data, notice->size) == -1)
		goto failed;
	b->peers.flow.sent++;
	flow_noticed(&b->peers.flow, &c->flow);
	log_info("connection.reading", "agent", LOG_STR(s->agent->id),
	    "refused", LOG_U64(refused), NULL);
	return 0;
failed:
	if (zmq_errno() != EHOSTUNREACH)
		return 0;
	conn_forget(b, s, c, "reply found it gone");
	return -1;
}

void
sessions_flush(struct broker *b)
{
	msgpack_sbuffer notice;

	if (b->peers.flow.queued == 0 && b->peers.flow.refusing == 0)
		return;
	msgpack_sbuffer_init(&notice);
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];
		struct conn *c = s->conns;

		while (c != NULL) {
			struct conn *next = c->next;

			if (flow_peek(&c->flow) != NULL || flow_refusing(&c->flow))
				flush_conn(b, s, c, &notice);
			c = next;
		}
	}
	msgpack_sbuffer_destroy(&notice);
}

int
sessions_deliver(struct broker *b, struct session *s, const void *buf,
    size_t len)
{
	struct conn *c = s->to;

	if (c == NULL)
		return -1;
	/* Replies first; a connection that does not read them gets no more. */
	if (flow_peek(&c->flow) != NULL || flow_refusing(&c->flow))
		return -1;
	if (send_to(b, c->rid, c->rid_len, buf, len) == 0) {
		b->peers.flow.sent++;
		return 0;
	}
	if (zmq_errno() == EHOSTUNREACH) {
		log_info("agent.unreachable", "agent", LOG_STR(s->agent->id), NULL);
		conn_forget(b, s, c, "delivery found it gone");
	}
	return -1;
}
