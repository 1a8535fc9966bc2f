/*
 * librelais: connection, liveness, deliveries, acknowledgements and
 * queries (relais.h).  Submission lives in submit.c.
 *
 * Everything is single-threaded and driven by the caller: each public
 * function polls the socket itself, queues the deliveries that arrive
 * while it waits for its own reply, and does the heartbeat work that is
 * due.  Nothing happens between calls, which is why a listener must keep
 * calling relais_next_delivery().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "client_internal.h"
#include "keyfile.h"
#include "relais_json.h"
#include "relais_proto.h"

#define MONITOR_ENDPOINT    "inproc://relais-monitor"
#define MONITOR_EVENTS      (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | \
                             ZMQ_EVENT_DISCONNECTED | \
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
#define LINGER_MS           500   /* lets a last dack leave on close */
#define RECONNECT_IVL_MS    100
#define HELLO_RETRY_MS      1000  /* while waiting for the first welcome */
#define QUEUE_COMPACT_AT    1024  /* handed-out entries kept, then compact */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

int
client_fail(relais_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	c->last_code = code;
	return -1;
}

uint64_t
client_next_ref(relais_client *c)
{
	return c->next_ref++;
}

static uint64_t
json_u64(const json_t *obj, const char *key, uint64_t dflt)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return dflt;
	return (uint64_t)json_integer_value(v);
}

static const char *
json_str(const json_t *obj, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : dflt;
}

bool
client_msg_is(const json_t *msg, const char *cmd, uint64_t ref)
{
	json_t *r = json_object_get(msg, "ref");

	return strcmp(json_str(msg, "cmd", ""), cmd) == 0 &&
	    json_is_integer(r) && (uint64_t)json_integer_value(r) == ref;
}

int
client_fail_with_reply(relais_client *c, const json_t *err, const char *what)
{
	const char *field = json_str(err, "field", "");

	return client_fail(c, (int)json_u64(err, "code", 0),
	    "the broker refused %s: %s%s%s (%s)", what,
	    json_str(err, "message", "no reason given"),
	    field[0] != '\0' ? "; field: " : "", field,
	    json_str(err, "error", "error"));
}

/* ------------------------------------------------------------------ */
/* Packing outgoing messages                                           */

int
client_pack_head(msgpack_packer *pk, const char *cmd, size_t extra)
{
	if (msgpack_pack_map(pk, 2 + extra) != 0 ||
	    codec_pack_kv_u64(pk, "v", RL_PROTO_VERSION) != 0 ||
	    codec_pack_kv_str(pk, "cmd", cmd) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

int
client_send(relais_client *c, const void *buf, size_t len)
{
	/*
	 * Never block: with ZMQ_IMMEDIATE nothing is queued while the broker
	 * is unreachable, so EAGAIN means "not now" and the caller retries
	 * from its own loop, where it also keeps receiving.
	 */
	if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) >= 0) {
		c->last_send = rl_mono_ms();
		return 0;
	}
	if (errno == EAGAIN)
		return 1;
	return client_fail(c, 0, "cannot send to the broker: %s",
	    zmq_strerror(errno));
}

int
client_send_sbuf(relais_client *c, const msgpack_sbuffer *sb)
{
	return client_send(c, sb->data, sb->size);
}

/* Pack a command with an optional ref and credit/upto, and send it. */
static int
send_simple(relais_client *c, const char *cmd, const char *ukey,
    uint64_t uval, bool with_ref)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = -1;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (client_pack_head(&pk, cmd, (ukey != NULL) + with_ref) == 0 &&
	    (ukey == NULL || codec_pack_kv_u64(&pk, ukey, uval) == 0) &&
	    (!with_ref || codec_pack_kv_u64(&pk, "ref",
	    client_next_ref(c)) == 0))
		rc = client_send_sbuf(c, &sb);
	else
		client_fail(c, 0, "out of memory");
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int
send_hello(relais_client *c)
{
	c->last_hello = rl_mono_ms();
	return send_simple(c, "hello", c->credit > 0 ? "credit" : NULL,
	    c->credit, true);
}

static int
send_dack(relais_client *c, uint64_t upto)
{
	return send_simple(c, "dack", "upto", upto, false);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

/*
 * Socket events tell us when the connection comes back after a broker
 * restart: the new broker process knows nothing of our session, so we
 * must say hello again and resend what was in flight.
 */
static void
read_monitor_events(relais_client *c)
{
	for (;;) {
		zmq_msg_t ev, addr;
		uint16_t event;
		uint32_t value;

		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, c->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
		} else {
			event = 0;
			value = 0;
		}
		/* The second frame is the endpoint, which we already know. */
		zmq_msg_init(&addr);
		if (zmq_msg_more(&ev))
			zmq_msg_recv(&addr, c->monitor, 0);
		zmq_msg_close(&addr);
		zmq_msg_close(&ev);

		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			c->connected = true;
			c->auth_status = 0;
			if (++c->handshakes > 1)
				c->hello_due = true;
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			c->connected = false;
		} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
			c->auth_status = (int)value;
		}
	}
}

/* Decode one frame; NULL unless it is exactly one msgpack map. */
static json_t *
decode_frame(const void *data, size_t len)
{
	msgpack_unpacked up;
	size_t off = 0;
	json_t *j = NULL;

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    off == len && up.data.type == MSGPACK_OBJECT_MAP)
		j = msgpack_to_json(&up.data);
	msgpack_unpacked_destroy(&up);
	return j;
}

static void
handle_welcome(relais_client *c, const json_t *msg)
{
	uint64_t hb = json_u64(msg, "heartbeat_ms", CLIENT_DEFAULT_HEARTBEAT_MS);
	uint64_t batch = json_u64(msg, "max_events", RL_MAX_BATCH);
	uint64_t frame = json_u64(msg, "max_frame", RL_MAX_FRAME_BYTES);

	snprintf(c->agent, sizeof(c->agent), "%s", json_str(msg, "agent", ""));
	snprintf(c->kind, sizeof(c->kind), "%s", json_str(msg, "kind", ""));
	snprintf(c->name, sizeof(c->name), "%s", json_str(msg, "name", ""));
	/* Out-of-range values would stall or flood us: keep the defaults. */
	c->heartbeat_ms = hb >= 100 && hb <= 600000 ? (int)hb :
	    CLIENT_DEFAULT_HEARTBEAT_MS;
	c->max_batch = batch >= 1 && batch <= RL_MAX_BATCH ? (uint32_t)batch :
	    RL_MAX_BATCH;
	c->max_frame = frame >= 4096 && frame <= RL_MAX_FRAME_BYTES ?
	    (size_t)frame : RL_MAX_FRAME_BYTES;
}

/*
 * A pong carries the broker's clock, which runs ahead of the wall clock on
 * a broker with a manual clock: events dated "now" must use it, or a
 * broker moved days forward would see them as days old.
 */
static void
handle_pong(relais_client *c, const json_t *msg)
{
	const json_t *t = json_object_get(msg, "time");

	if (!json_is_integer(t) || json_integer_value(t) <= 0)
		return;
	c->clock_offset_ms = (int64_t)json_integer_value(t) - rl_wall_ms();
	c->clock_known = true;
}

/* Keep the items of a "deliver"; those without a usable seq are dropped. */
static void
queue_deliveries(relais_client *c, const json_t *msg)
{
	json_t *items = json_object_get(msg, "items");
	json_t *item;
	size_t i;

	json_array_foreach(items, i, item) {
		if (json_is_object(item) && json_u64(item, "seq", 0) > 0) {
			client_open_contact(c, json_object_get(item, "event"));
			json_array_append(c->queue, item);
		}
	}
}

/* Route one decoded message; returns it if the caller should see it. */
static json_t *
dispatch(relais_client *c, json_t *msg)
{
	const char *cmd = json_str(msg, "cmd", "");

	if (json_u64(msg, "v", 0) != RL_PROTO_VERSION) {
		json_decref(msg);
		return NULL;
	}
	if (strcmp(cmd, "deliver") == 0) {
		queue_deliveries(c, msg);
		json_decref(msg);
		return NULL;
	}
	if (strcmp(cmd, "welcome") == 0)
		handle_welcome(c, msg);
	else if (strcmp(cmd, "pong") == 0)
		handle_pong(c, msg);
	return msg;
}

/* Receive one message if there is one.  1: got one, 0: none, -1: error. */
static int
recv_one(relais_client *c, json_t **out)
{
	zmq_msg_t m;
	bool more;
	json_t *msg = NULL;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		if (errno == EAGAIN)
			return 0;
		return client_fail(c, 0, "cannot receive from the broker: %s",
		    zmq_strerror(errno));
	}
	more = zmq_msg_more(&m);
	if (!more)
		msg = decode_frame(zmq_msg_data(&m), zmq_msg_size(&m));
	zmq_msg_close(&m);
	/* The broker sends single frames; drop the rest of anything else. */
	while (more) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->sock, 0) < 0) {
			zmq_msg_close(&m);
			break;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
	c->last_recv = rl_mono_ms();
	if (msg != NULL)
		*out = dispatch(c, msg);
	return 1;
}

int
client_pump(relais_client *c, int timeout_ms, json_t **msg)
{
	zmq_pollitem_t items[2] = {
		{ .socket = c->sock, .events = ZMQ_POLLIN },
		{ .socket = c->monitor, .events = ZMQ_POLLIN },
	};

	*msg = NULL;
	/* Socket events first: a busy socket must not hide a reconnection. */
	read_monitor_events(c);
	/* A message may already be waiting: poll only when there is none. */
	int rc = recv_one(c, msg);
	if (rc != 0)
		return rc;
	if (zmq_poll(items, 2, timeout_ms) < 0) {
		if (errno == EINTR)
			return client_fail(c, 0, "interrupted");
		return client_fail(c, 0, "cannot poll the broker socket: %s",
		    zmq_strerror(errno));
	}
	if (items[1].revents & ZMQ_POLLIN)
		read_monitor_events(c);
	if (items[0].revents & ZMQ_POLLIN)
		return recv_one(c, msg);
	return 0;
}

void
client_keepalive(relais_client *c)
{
	int64_t now = rl_mono_ms();
	int hb = c->heartbeat_ms;

	if (!c->send_only) {
		/*
		 * A new connection, or a long silence, may mean a broker that
		 * restarted and forgot us: hello is idempotent, so say it again.
		 */
		bool silent = now - c->last_recv >= 3 * hb &&
		    now - c->last_hello >= 3 * hb;
		if ((c->hello_due || silent) && send_hello(c) == 0)
			c->hello_due = false;
	}
	if (now - c->last_send >= hb)
		send_simple(c, "ping", NULL, 0, false);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

static int
check_options(const struct relais_options *o, char *errbuf, size_t errlen)
{
	const char *what = NULL;

	if (o == NULL || o->endpoint == NULL || o->endpoint[0] == '\0')
		what = "no broker endpoint given; pass one like tcp://127.0.0.1:7450";
	else if (o->server_public_key == NULL || strlen(o->server_public_key) != 40)
		what = "the broker's public key must be 40 Z85 characters; "
		    "read it from the broker's .pub file";
	else if (o->public_key == NULL || strlen(o->public_key) != 40 ||
	    o->secret_key == NULL || strlen(o->secret_key) != 40)
		what = "this agent's key pair must be two 40-character Z85 keys; "
		    "make one with `relais keygen NAME`";
	else if (o->credit > RL_MAX_CREDIT)
		what = "credit must be between 1 and 10000 (0: the broker's default)";
	else if (strlen(o->endpoint) >= 256)
		what = "the endpoint is too long";
	if (what == NULL)
		return 0;
	snprintf(errbuf, errlen, "%s", what);
	return -1;
}

static int
set_int(void *sock, int option, int value)
{
	return zmq_setsockopt(sock, option, &value, sizeof(value));
}

/* Create the DEALER with CURVE and its monitor, and start connecting. */
static int
open_socket(relais_client *c, const struct relais_options *o)
{
	c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
	if (c->sock == NULL)
		return -1;
	if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, o->server_public_key, 41) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, o->public_key, 41) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, o->secret_key, 41) ||
	    set_int(c->sock, ZMQ_LINGER, LINGER_MS) ||
	    set_int(c->sock, ZMQ_HEARTBEAT_IVL, CLIENT_DEFAULT_HEARTBEAT_MS) ||
	    set_int(c->sock, ZMQ_HEARTBEAT_TIMEOUT, 3 * CLIENT_DEFAULT_HEARTBEAT_MS) ||
	    set_int(c->sock, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS) ||
	    set_int(c->sock, ZMQ_IMMEDIATE, 1))
		return -1;
	if (zmq_socket_monitor(c->sock, MONITOR_ENDPOINT, MONITOR_EVENTS) != 0)
		return -1;
	c->monitor = zmq_socket(c->ctx, ZMQ_PAIR);
	if (c->monitor == NULL || zmq_connect(c->monitor, MONITOR_ENDPOINT) != 0)
		return -1;
	return zmq_connect(c->sock, o->endpoint);
}

static void
explain_no_answer(relais_client *c, int timeout_ms, const char *reply)
{
	if (c->auth_status != 0)
		client_fail(c, 0, "the broker at %s refused this agent's key "
		    "(ZAP status %d); ask its operator to register the agent's "
		    "public key", c->endpoint, c->auth_status);
	else if (c->handshakes == 0)
		client_fail(c, 0, "no answer from the broker at %s within %d ms: "
		    "the broker may be down, the endpoint or the broker's public "
		    "key may be wrong, or this agent's key may not be registered "
		    "(refused keys get no answer)", c->endpoint, timeout_ms);
	else
		client_fail(c, 0, "the broker at %s accepted the connection but "
		    "sent no %s within %d ms; it may be overloaded or shutting "
		    "down: try again", c->endpoint, reply, timeout_ms);
}

/*
 * Wait for the first welcome (or pong, for a send-only client), sending
 * hello again every second: a hello sent before the broker was ready is
 * simply lost, and hello is idempotent.
 */
static int
wait_first_answer(relais_client *c)
{
	const char *want = c->send_only ? "pong" : "welcome";
	int64_t deadline = rl_mono_ms() + c->timeout_ms;
	int64_t next_try = 0;
	json_t *msg;

	for (;;) {
		int64_t now = rl_mono_ms();
		/* A ZAP refusal is final: waiting longer cannot change it. */
		if (now >= deadline || c->auth_status != 0) {
			explain_no_answer(c, c->timeout_ms, want);
			return -1;
		}
		if (now >= next_try) {
			int rc = c->send_only ? send_simple(c, "ping", NULL, 0, false) :
			    send_hello(c);
			if (rc < 0)
				return -1;
			next_try = rc == 0 ? now + HELLO_RETRY_MS : now + 50;
		}
		int wait = (int)((next_try < deadline ? next_try : deadline) - now);
		if (client_pump(c, wait > 0 ? wait : 0, &msg) < 0)
			return -1;
		if (msg == NULL)
			continue;
		const char *cmd = json_str(msg, "cmd", "");
		if (strcmp(cmd, want) == 0) {
			json_decref(msg);
			return 0;
		}
		if (strcmp(cmd, "error") == 0) {
			client_fail_with_reply(c, msg, c->send_only ? "ping" : "hello");
			json_decref(msg);
			return -1;
		}
		json_decref(msg);
	}
}

static relais_client *
client_new(const struct relais_options *o)
{
	relais_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->queue = json_array();
	c->ctx = zmq_ctx_new();
	if (c->queue == NULL || c->ctx == NULL) {
		relais_close(&c);
		return NULL;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", o->endpoint);
	c->credit = o->credit;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->send_only = o->send_only;
	c->heartbeat_ms = CLIENT_DEFAULT_HEARTBEAT_MS;
	c->max_batch = RL_MAX_BATCH;
	c->max_frame = RL_MAX_FRAME_BYTES;
	c->next_ref = 1;
	c->last_send = c->last_recv = c->last_hello = rl_mono_ms();
	return c;
}

relais_client *
relais_connect(const struct relais_options *opts, char *errbuf, size_t errlen)
{
	relais_client *c;

	if (check_options(opts, errbuf, errlen) < 0)
		return NULL;
	c = client_new(opts);
	if (c == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	if (client_keys_init(c, opts, errbuf, errlen) < 0) {
		relais_close(&c);
		return NULL;
	}
	if (open_socket(c, opts) < 0) {
		snprintf(errbuf, errlen, "cannot connect to %s: %s; check the "
		    "endpoint (tcp://HOST:PORT)", opts->endpoint,
		    zmq_strerror(errno));
		relais_close(&c);
		return NULL;
	}
	if (wait_first_answer(c) < 0) {
		snprintf(errbuf, errlen, "%s", c->errmsg);
		relais_close(&c);
		return NULL;
	}
	/* Count the first handshake now, so it never looks like a reconnection. */
	read_monitor_events(c);
	c->hello_due = false;
	return c;
}

void
relais_close(relais_client **cp)
{
	relais_client *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	if (c->sock != NULL) {
		zmq_socket_monitor(c->sock, NULL, 0);
		zmq_close(c->sock);
	}
	if (c->monitor != NULL)
		zmq_close(c->monitor);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
	json_decref(c->queue);
	client_keys_wipe(c);
	free(c);
	*cp = NULL;
}

const char *
relais_errmsg(const relais_client *c)
{
	return c != NULL ? c->errmsg : "no client";
}

int
relais_last_code(const relais_client *c)
{
	return c != NULL ? c->last_code : 0;
}

const char *
relais_agent_id(const relais_client *c)
{
	return c->agent;
}

const char *
relais_agent_kind(const relais_client *c)
{
	return c->kind;
}

/* ------------------------------------------------------------------ */
/* Deliveries                                                          */

/* Drop the handed-out head of the queue once it is worth the copy. */
static void
compact_queue(relais_client *c)
{
	size_t size = json_array_size(c->queue);

	if (c->qhead == size) {
		json_array_clear(c->queue);
		c->qhead = 0;
	} else if (c->qhead >= QUEUE_COMPACT_AT && c->qhead > size / 2) {
		json_t *rest = json_array();
		if (rest == NULL)
			return;
		for (size_t i = c->qhead; i < size; i++)
			json_array_append(rest, json_array_get(c->queue, i));
		json_decref(c->queue);
		c->queue = rest;
		c->qhead = 0;
	}
}

/*
 * Next queued delivery not handed out yet.  A seq at or below one already
 * acknowledged means the broker missed our dack (lost, or the broker
 * restarted): the dack is sent again, or the broker would redeliver it
 * until it dead-letters.
 */
static json_t *
pop_delivery(relais_client *c)
{
	bool redack = false;
	json_t *found = NULL;

	while (found == NULL && c->qhead < json_array_size(c->queue)) {
		json_t *item = json_array_get(c->queue, c->qhead++);
		uint64_t seq = json_u64(item, "seq", 0);
		if (seq > c->returned_seq) {
			c->returned_seq = seq;
			found = json_incref(item);
		} else if (seq <= c->acked_seq) {
			redack = true;
		}
	}
	compact_queue(c);
	if (redack)
		send_dack(c, c->acked_seq);
	return found;
}

json_t *
relais_next_delivery(relais_client *c, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX :
	    rl_mono_ms() + timeout_ms;
	int got = 1;

	for (;;) {
		json_t *item = pop_delivery(c), *msg;
		if (item != NULL)
			return item;
		int64_t now = rl_mono_ms();
		/* Time is up only after a poll that found nothing. */
		if (now >= deadline && got == 0) {
			client_fail(c, 0, "timeout");
			return NULL;
		}
		int64_t left = deadline - now;
		int tick = c->heartbeat_ms / 4;
		int wait = left < tick ? (int)(left > 0 ? left : 0) : tick;
		got = client_pump(c, wait, &msg);
		json_decref(msg);   /* late replies to earlier requests */
		if (got < 0)
			return NULL;
		client_keepalive(c);
	}
}

int
relais_ack(relais_client *c, uint64_t seq)
{
	int64_t deadline = rl_mono_ms() + c->timeout_ms;

	if (seq > c->acked_seq)
		c->acked_seq = seq;
	/* Wait for a connection rather than lose the dack to a short outage. */
	for (;;) {
		json_t *msg;
		int rc = send_dack(c, c->acked_seq);
		if (rc <= 0)
			return rc;
		if (rl_mono_ms() >= deadline)
			return client_fail(c, 0, "the broker is unreachable, so the "
			    "acknowledgement up to seq %llu was not sent; those "
			    "deliveries will come again", (unsigned long long)seq);
		if (client_pump(c, 50, &msg) < 0)
			return -1;
		json_decref(msg);
	}
}

int
relais_broker_now(relais_client *c, int64_t *now_ms)
{
	int64_t deadline = rl_mono_ms() + c->timeout_ms;
	int64_t next_ping = 0;

	while (!c->clock_known) {
		int64_t now = rl_mono_ms();
		json_t *msg;

		if (now >= deadline) {
			explain_no_answer(c, c->timeout_ms, "pong");
			return -1;
		}
		if (now >= next_ping) {
			int rc = send_simple(c, "ping", NULL, 0, false);
			if (rc < 0)
				return -1;
			next_ping = now + (rc == 0 ? HELLO_RETRY_MS : 50);
		}
		int64_t until = next_ping < deadline ? next_ping : deadline;
		if (client_pump(c, (int)(until - now), &msg) < 0)
			return -1;
		json_decref(msg);
	}
	*now_ms = rl_wall_ms() + c->clock_offset_ms;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */

static int
pack_query(relais_client *c, msgpack_sbuffer *sb, uint64_t ref,
    const char *what, const json_t *args)
{
	msgpack_packer pk;
	char why[256];

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (client_pack_head(&pk, "query", 2 + (args != NULL)) != 0 ||
	    codec_pack_kv_u64(&pk, "ref", ref) != 0 ||
	    codec_pack_kv_str(&pk, "what", what) != 0)
		return client_fail(c, 0, "out of memory");
	if (args == NULL)
		return 0;
	if (!json_is_object(args))
		return client_fail(c, RL_E_BAD_FIELD, "query arguments must be "
		    "a JSON object");
	if (codec_pack_str(&pk, "args") != 0 ||
	    json_to_msgpack(args, &pk, why, sizeof(why)) != 0)
		return client_fail(c, RL_E_BAD_FIELD, "query argument %s", why);
	return 0;
}

/* Wait for the reply to ref, resending the query after each time-out. */
static json_t *
await_result(relais_client *c, const msgpack_sbuffer *sb, uint64_t ref,
    const char *what, int timeout_ms)
{
	int64_t deadline = rl_mono_ms() + timeout_ms;
	int64_t resend_at = 0;
	int sent_gen = -1;
	json_t *msg;

	for (;;) {
		int64_t now = rl_mono_ms();
		if (now >= deadline) {
			explain_no_answer(c, timeout_ms, "result");
			return NULL;
		}
		/* Queries are read-only, so asking twice is harmless. */
		if (now >= resend_at || sent_gen != c->handshakes) {
			int rc = client_send_sbuf(c, sb);
			if (rc < 0)
				return NULL;
			if (rc == 0)
				sent_gen = c->handshakes;
			resend_at = now + (rc == 0 ? c->timeout_ms : 50);
		}
		int64_t until = resend_at < deadline ? resend_at : deadline;
		if (client_pump(c, (int)(until - now), &msg) < 0)
			return NULL;
		client_keepalive(c);
		if (msg == NULL)
			continue;
		if (client_msg_is(msg, "result", ref)) {
			json_t *data = json_incref(json_object_get(msg, "data"));
			json_decref(msg);
			c->last_code = 0;
			return data != NULL ? data : json_null();
		}
		if (client_msg_is(msg, "error", ref)) {
			char about[96];
			snprintf(about, sizeof(about), "the query '%.40s'", what);
			client_fail_with_reply(c, msg, about);
			json_decref(msg);
			return NULL;
		}
		json_decref(msg);
	}
}

static json_t *
query_once(relais_client *c, const char *what, json_t *args, int timeout_ms)
{
	msgpack_sbuffer sb;
	json_t *data = NULL;
	uint64_t ref = client_next_ref(c);

	msgpack_sbuffer_init(&sb);
	if (pack_query(c, &sb, ref, what, args) == 0)
		data = await_result(c, &sb, ref, what,
		    timeout_ms > 0 ? timeout_ms : c->timeout_ms);
	msgpack_sbuffer_destroy(&sb);
	return data;
}

/*
 * A participant's whole file: the broker answers a timeline in pages that
 * fit a frame ("more"), each asked after the last record's log_seq.
 * Returns the first page's data with every page's records in its
 * "timeline" and "more" false, or NULL as relais_query().
 */
static json_t *
query_whole_file(relais_client *c, json_t *args, int timeout_ms)
{
	json_t *data = query_once(c, "participant", args, timeout_ms);
	json_t *timeline = data != NULL ? json_object_get(data, "timeline") : NULL;

	while (json_is_array(timeline) && json_is_true(json_object_get(data, "more"))) {
		json_t *last = json_array_get(timeline, json_array_size(timeline) - 1);
		json_t *seq = json_object_get(last, "log_seq");
		json_t *next_args, *next;

		if (!json_is_integer(seq)) {
			client_fail(c, RL_E_BAD_FIELD, "the broker's page of a "
			    "timeline ends without a log_seq to go on from");
			json_decref(data);
			data = NULL;
			break;
		}
		next_args = json_deep_copy(args);
		json_object_set(next_args, "after", seq);
		next = query_once(c, "participant", next_args, timeout_ms);
		json_decref(next_args);
		if (next == NULL) {
			json_decref(data);
			data = NULL;
			break;
		}
		json_array_extend(timeline, json_object_get(next, "timeline"));
		json_object_set(data, "more", json_object_get(next, "more"));
		json_decref(next);
	}
	return data;
}

json_t *
relais_query(relais_client *c, const char *what, json_t *args, int timeout_ms)
{
	json_t *data;

	if (what == NULL || what[0] == '\0') {
		client_fail(c, RL_E_MISSING_FIELD, "a query needs a name, such as "
		    "\"health\"");
		return NULL;
	}
	if (strcmp(what, "participant") != 0)
		return query_once(c, what, args, timeout_ms);
	/* Without after or limit, the caller wants the whole file. */
	if (json_is_object(args) && json_object_get(args, "after") == NULL &&
	    json_object_get(args, "limit") == NULL)
		data = query_whole_file(c, args, timeout_ms);
	else
		data = query_once(c, what, args, timeout_ms);
	/* The broker gives a sealed contact to the referral's target only. */
	if (data != NULL) {
		size_t i;
		json_t *ev;

		json_array_foreach(json_object_get(data, "timeline"), i, ev)
			client_open_contact(c, ev);
	}
	return data;
}

/* ------------------------------------------------------------------ */

int
relais_read_key(const char *path, char out[41], char *errbuf, size_t errlen)
{
	return keyfile_read(path, out, errbuf, errlen);
}
