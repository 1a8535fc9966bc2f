/*
 * librelais: the client side of the relais protocol, for partner agents.
 *
 * A relais_client owns one ZeroMQ DEALER socket connected to the broker
 * with CURVE.  It is not thread-safe: use one client per thread.
 *
 * Events and deliveries are jansson objects (json_t), the same shape as
 * the JSON lines of the `relais` command.  Times ("occurred_at", "at") may
 * be given as milliseconds since the epoch or as RFC 3339 UTC strings
 * ("2026-11-27T09:30:00Z"); the library sends milliseconds.
 *
 * Functions returning int return 0 on success and -1 on failure, with a
 * sentence in relais_errmsg(client).
 */
#ifndef RELAIS_H
#define RELAIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct relais_client relais_client;

struct relais_options {
	const char *endpoint;           /* "tcp://127.0.0.1:7450" */
	const char *server_public_key;  /* broker's Z85 public key (40 chars) */
	const char *public_key;         /* this agent's Z85 key pair */
	const char *secret_key;
	uint32_t credit;                /* deliveries in flight; 0: broker default */
	int timeout_ms;                 /* per request before a resend; 0: 5000 */
	/*
	 * true: never say hello, so this connection submits and queries but
	 * takes no deliveries.  Tools that only send (`relais send`) use it so
	 * they never draw the agent's deliveries away from its listener.
	 * relais_connect() then waits for a pong instead of a welcome, and
	 * relais_agent_id() and relais_agent_kind() return "".
	 */
	bool send_only;
};

/*
 * Connect and say hello.  Returns NULL on failure with a sentence in errbuf.
 * Nothing is received until the broker welcomes the agent, so a refused
 * key shows here as a time-out (CURVE refusals are silent by design).
 */
relais_client *relais_connect(const struct relais_options *opts,
    char *errbuf, size_t errlen);

/* Close the socket and free everything.  Safe on NULL; sets *c to NULL. */
void relais_close(relais_client **c);

const char *relais_errmsg(const relais_client *c);

/* The id and kind the broker knows this agent by (from its key). */
const char *relais_agent_id(const relais_client *c);
const char *relais_agent_kind(const relais_client *c);

/*
 * A new event_id: "ev-", the time in milliseconds, then 65 random bits,
 * all as letters (a run of digits could look like a social-security
 * number, which the broker refuses).  Ids made later sort later, so the
 * broker's deduplication table grows at its end instead of everywhere at
 * once, which keeps its commits small.  0, or -1 if no randomness.
 */
#define RELAIS_EVENT_ID_SIZE 26     /* "ev-", 9 + 13 letters, NUL */
int relais_new_event_id(char id[RELAIS_EVENT_ID_SIZE]);

/*
 * Submit events and wait for every result.  Events without "event_id" get
 * a new one (relais_new_event_id(), written into the object, so the caller
 * can see it).
 * Unacknowledged events are resent with the same event_id until acked, so
 * a broker restart in between is harmless.  On return, results[i] is the
 * broker's result for events[i] (a new reference the caller decrefs):
 *   {"event_id":..., "status":"ok"|"duplicate", "seq":N, "recorded_at":ms}
 *   {"event_id":..., "status":"error", "code":N, "error":"name",
 *    "field":"...", "message":"..."}
 * Returns -1 only if the broker could not be reached within
 * max_wait_ms (0: wait forever); the results then are NULL.
 */
int relais_submit(relais_client *c, json_t **events, size_t n,
    json_t **results, int max_wait_ms);

/*
 * Wait up to timeout_ms (-1: forever) for the next delivery:
 *   {"seq":N, "kind":"event"|"alert", "event":{...}} or {..., "alert":{...}}
 * Returns a new reference, or NULL on time-out (errmsg says "timeout") or
 * failure.  Deliveries with a seq already returned are skipped: each seq
 * is handed out once per client.
 */
json_t *relais_next_delivery(relais_client *c, int timeout_ms);

/*
 * Tell the broker that every delivery up to seq is handled; it will not
 * send them again.  Cheap: call it after each batch, not each delivery.
 */
int relais_ack(relais_client *c, uint64_t seq);

/*
 * Read-only query ("alerts", "participant", "health", ...).  Returns the
 * "data" of the broker's result as a new reference, or NULL with errmsg
 * set (for a refused query, errmsg holds the broker's message and
 * relais_last_code() its code).
 */
json_t *relais_query(relais_client *c, const char *what, json_t *args,
    int timeout_ms);

int relais_last_code(const relais_client *c);

/*
 * The broker's current time in ms, which is what "now" means for an event:
 * on a broker with a manual clock (tests, demos) it runs ahead of this
 * machine's.  Read from the broker's last pong (a send-only connection has
 * one from relais_connect()); otherwise it pings and waits up to the
 * client's time-out.  0, or -1 with errmsg set.
 */
int relais_broker_now(relais_client *c, int64_t *now_ms);

/* Z85 key files as written by `relais keygen`: NAME.pub and NAME.key. */
int relais_read_key(const char *path, char out[41], char *errbuf, size_t errlen);

#endif
