/*
 * The ZAP handler (ZeroMQ RFC 27): libzmq asks it about every CURVE
 * handshake, and only public keys in the agent registry are admitted.
 *
 * It is bound before the router, so no connection is ever accepted without
 * it: with no handler, libzmq would let every CURVE client in.  Anything
 * unexpected (wrong domain, wrong mechanism, malformed request, unknown key)
 * is refused.  The admitted key itself (Z85) becomes the connection's
 * User-Id, which the broker maps to an agent on every message through the
 * config in force (sessions.c): identity comes from the key, so a key a
 * reload removes stops working on the connections already open with it.
 */
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "keyfile.h"
#include "log.h"
#include "relaisd.h"
#include "rltime.h"

#define ZAP_FRAMES 7    /* version, id, domain, address, identity, mechanism, key */

int
zap_start(struct broker *b)
{
	int zero = 0;

	b->net.zap = zmq_socket(b->net.zctx, ZMQ_REP);
	if (b->net.zap == NULL)
		return -1;
	zmq_setsockopt(b->net.zap, ZMQ_LINGER, &zero, sizeof(zero));
	return zmq_bind(b->net.zap, "inproc://zeromq.zap.01");
}

static void
zap_reply(struct broker *b, const zmq_msg_t *reqid, const char *status,
    const char *text, const char *user)
{
	zmq_send(b->net.zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(b->net.zap, zmq_msg_data((zmq_msg_t *)reqid),
	    zmq_msg_size((zmq_msg_t *)reqid), ZMQ_SNDMORE);
	zmq_send(b->net.zap, status, strlen(status), ZMQ_SNDMORE);
	zmq_send(b->net.zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(b->net.zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(b->net.zap, "", 0, 0);
}

static bool
frame_is(zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);

	return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/*
 * Whether the connections past their handshake reach max_connections,
 * which bounds the memory libzmq holds for them (flow.h).  The socket
 * monitor is read first: connections that closed free their place.
 */
static bool
connections_full(struct broker *b)
{
	sessions_read_monitor(b);
	return flow_connections(&b->peers.flow) >= b->cfg->max_connections;
}

/* Handle one request; returns 0 if none was waiting. */
static int
zap_one(struct broker *b)
{
	zmq_msg_t f[ZAP_FRAMES + 8];
	int n = 0, more = 1;
	size_t ml = sizeof(more);
	const struct agent *a = NULL;
	char z85[41] = "", fp[17] = "", addr[64] = "";
	const char *why = NULL;
	int64_t mono = rl_mono_ms();

	zmq_msg_init(&f[0]);
	if (zmq_msg_recv(&f[0], b->net.zap, ZMQ_DONTWAIT) == -1) {
		zmq_msg_close(&f[0]);
		return 0;
	}
	n = 1;
	zmq_getsockopt(b->net.zap, ZMQ_RCVMORE, &more, &ml);
	while (more && n < (int)(sizeof(f) / sizeof(f[0]))) {
		zmq_msg_init(&f[n]);
		zmq_msg_recv(&f[n], b->net.zap, 0);
		n++;
		zmq_getsockopt(b->net.zap, ZMQ_RCVMORE, &more, &ml);
	}
	while (more) {                  /* never from libzmq; be safe anyway */
		zmq_msg_t extra;

		zmq_msg_init(&extra);
		zmq_msg_recv(&extra, b->net.zap, 0);
		zmq_msg_close(&extra);
		zmq_getsockopt(b->net.zap, ZMQ_RCVMORE, &more, &ml);
	}

	if (n < ZAP_FRAMES || !frame_is(&f[0], "1.0"))
		why = "malformed ZAP request";
	else if (!frame_is(&f[2], RL_ZAP_DOMAIN))
		why = "wrong ZAP domain";
	else if (!frame_is(&f[5], "CURVE") || zmq_msg_size(&f[6]) != 32)
		why = "not a CURVE handshake";
	if (n >= 4 && zmq_msg_size(&f[3]) < sizeof(addr))
		memcpy(addr, zmq_msg_data(&f[3]), zmq_msg_size(&f[3]));
	if (why == NULL) {
		zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
		keyfile_fingerprint(zmq_msg_data(&f[6]), fp);
		if ((a = config_agent_by_key(b->cfg, z85)) == NULL)
			why = "key not in the agent registry";
	}

	if (n >= 2) {
		struct session *s = a != NULL ?
		    &b->peers.sessions[a - b->cfg->agents] : NULL;

		if (a != NULL && connections_full(b)) {
			/* 300: a temporary refusal; the agent's socket retries. */
			zap_reply(b, &f[1], "300", "too many connections", "");
			log_warn("connection.refused", "agent", LOG_STR(a->id),
			    "reason", LOG_STR("max_connections"),
			    "connections", LOG_U64(flow_connections(&b->peers.flow)),
			    "hint", LOG_STR("the broker holds max_connections "
			    "connections; close idle ones, or raise max_connections "
			    "(each may hold up to 2.3 MiB: README, "
			    "Memory)"), NULL);
		} else if (a != NULL && sessions_connections(b, s, mono) >=
		    b->cfg->max_connections_per_agent) {
			/* Temporary too: one of its own must close first. */
			zap_reply(b, &f[1], "300", "too many connections for this "
			    "agent", "");
			log_warn("connection.refused", "agent", LOG_STR(a->id),
			    "reason", LOG_STR("max_connections_per_agent"),
			    "connections", LOG_U64(sessions_connections(b, s, mono)),
			    "hint", LOG_STR("this agent holds "
			    "max_connections_per_agent connections; close the ones "
			    "it no longer uses (one client, one connection), or "
			    "raise max_connections_per_agent"), NULL);
		} else if (a != NULL) {
			b->peers.flow.admitted++;
			sessions_admitted(s, mono);
			zap_reply(b, &f[1], "200", "OK", z85);
			log_info("auth.accepted", "agent", LOG_STR(a->id),
			    "key", LOG_STR(fp), "address", LOG_STR(addr), NULL);
		} else {
			zap_reply(b, &f[1], "400", why, "");
			b->counters.auth_failures++;
			log_warn("auth.refused", "reason", LOG_STR(why),
			    "key", LOG_STR(fp), "address", LOG_STR(addr),
			    "hint", LOG_STR("register the agent's public key in "
			    "the config, then send SIGHUP"), NULL);
		}
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return 1;
}

void
zap_handle(struct broker *b)
{
	uint32_t events = 0;
	size_t len = sizeof(events);

	do {
		while (zap_one(b))
			;
		/* Edge-triggered: re-read the state after our own sends. */
		if (zmq_getsockopt(b->net.zap, ZMQ_EVENTS, &events, &len) == -1)
			return;
	} while (events & ZMQ_POLLIN);
}

void
zap_log_handshake_failure(struct broker *b, unsigned event, uint32_t value)
{
	const char *why;

	/* A key the registry refused was logged by the ZAP handler. */
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		return;
	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
	    value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
		why = "mechanism refused: the peer did not use CURVE";
	else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
	    value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
		why = "CURVE handshake failed: a wrong server key, or a public "
		    "key used without its secret key";
	else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
		why = "protocol error during the handshake";
	else
		why = "handshake not completed: timed out, or closed by the "
		    "peer (which may have found the mechanism or the keys wrong)";
	/*
	 * libzmq's event names the broker's endpoint, not the peer, and no
	 * key was read: the reason is all there is to log.  log.c limits
	 * these lines per reason, so a flood costs little.
	 */
	b->counters.auth_failures++;
	log_warn("auth.failed", "reason", LOG_STR(why),
	    "detail", LOG_U64(value),
	    "hint", LOG_STR("check the agent's keys and that it connects "
	    "with CURVE to this broker's public key"), NULL);
}
