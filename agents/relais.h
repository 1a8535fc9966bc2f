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
	/*
	 * This agent's earlier secret keys (Z85, NULL-terminated list, may be
	 * NULL), at most RELAIS_MAX_PREVIOUS_KEYS.  A contact sealed to the
	 * agent before its key was replaced in the registry opens with one of
	 * them; without them it is reported as unopenable.
	 */
	const char *const *previous_secret_keys;
};

#define RELAIS_MAX_PREVIOUS_KEYS 8

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
 * a broker restart in between is harmless.  A batch the broker refused
 * with not_reading (303: this client had not read its replies, PROTOCOL
 * §8.1) was not done: it is sent again as soon as the error is read.  On return, results[i] is the
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
 * Sealed contacts (PROTOCOL.md section 6.1).  A "referral.sent" event
 * whose "contact" is a JSON object of details (name, phone, email,
 * address, best_time, note: non-empty strings) is sealed by
 * relais_submit() to the public key of the agent in "to", and its
 * "contact" replaced in the caller's object by the sealed box (a base64
 * string), so that a retry with the same object sends the same bytes.  A
 * string "contact" is taken as a box already sealed.  Details that cannot
 * be sealed give that event an error result (field "contact"; "to" if no
 * such agent is registered) and it is not sent.
 *
 * The target's key comes from a key pinned with relais_pin_agent_key(),
 * or else from the broker's "agent" query, kept for
 * RELAIS_AGENT_KEY_TTL_MS: a target whose key was replaced in the
 * registry is sealed to with the new key at most that long after.
 */
#define RELAIS_AGENT_KEY_TTL_MS (10 * 60 * 1000)

/*
 * Use this Z85 public key for agent_id (e.g. read from the target's .pub
 * file, exchanged beside the bus) instead of asking the broker: the broker
 * then cannot substitute a key of its own.  Lasts as long as the client.
 */
int relais_pin_agent_key(relais_client *c, const char *agent_id,
    const char *public_key);

/*
 * The Z85 public key of a registered agent: pinned, cached, or asked of
 * the broker (then cached).  0, or -1 with errmsg (relais_last_code() is
 * 205, unknown_agent, when no such agent is registered).
 */
int relais_agent_public_key(relais_client *c, const char *agent_id,
    char out[41]);

/*
 * Wait up to timeout_ms (-1: forever) for the next delivery:
 *   {"seq":N, "kind":"event"|"alert", "event":{...}} or {..., "alert":{...}}
 * Returns a new reference, or NULL on time-out (errmsg says "timeout") or
 * failure.  Deliveries with a seq already returned are skipped: each seq
 * is handed out once per client.
 */
json_t *relais_next_delivery(relais_client *c, int timeout_ms);

/*
 * A delivered "referral.sent" with a sealed contact comes with "contact"
 * opened into an object of details.  If it cannot be opened (sealed to
 * another key, altered, cut short), "contact" is removed and
 * "contact_error" says why in a sentence; the delivery is otherwise
 * whole, and is acknowledged like any other.  The timeline of a
 * "participant" query is opened the same way.
 */

/*
 * Tell the broker that every delivery up to seq is handled; it will not
 * send them again.  Cheap: call it after each batch, not each delivery.
 */
int relais_ack(relais_client *c, uint64_t seq);

/*
 * Read-only query ("alerts", "participant", "health", ...).  Returns the
 * "data" of the broker's result as a new reference, or NULL with errmsg
 * set (for a refused query, errmsg holds the broker's message and
 * relais_last_code() its code).  A "participant" query without "after" or
 * "limit" returns the person's whole file: the broker answers a long
 * timeline in pages that fit a frame, and this asks for each in turn;
 * with either, it returns the one page the broker sent ("more" says
 * whether the timeline goes on).
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

/*
 * Coalescing (opt-in): many threads of one agent, each submitting a few
 * events and waiting, share one client; the submits that arrive within a
 * short window travel as ONE submit message.  The broker then pays its
 * per-message costs (decryption, routing, a loop pass, a synced commit)
 * once for all of them instead of once each: this is for an agent whose
 * users each send one event and wait (a web form, a worker pool), not for
 * a batch import, which should pass its events to relais_submit() at once.
 *
 * relais_coalesced_submit() is relais_submit() for one thread among many:
 * it queues the events and waits.  The first submit of a queue waits up
 * to window_us for others; the queue leaves at once when max_events
 * events are waiting.  While one queue is being submitted (until its
 * synced acks), the next one gathers.  One of the waiting threads does
 * the submit on the client, with relais_submit() (so resends and their
 * "duplicate" results are as there); each caller gets the results of its
 * own events, in its order.  A refused event is refused for its caller
 * only; if the broker cannot be reached within max_wait_ms (0: forever)
 * every caller of that submit gets -1 and the reason in errbuf.
 *
 * The client belongs to the coalescer until relais_coalescer_free(),
 * which does not close it: use it for nothing else meanwhile (a client
 * with send_only set is the usual choice).  Coalescing adds up to
 * window_us to each submit's latency when the agent is quiet.
 */
typedef struct relais_coalescer relais_coalescer;

struct relais_coalesce_options {
	int window_us;          /* 0..1000000; 0: 1000 (1 ms) */
	size_t max_events;      /* 0..1000 (RL_MAX_BATCH); 0: 100 */
	int max_wait_ms;        /* as relais_submit()'s; 0: wait forever */
};

/* NULL with a sentence in errbuf if c is NULL or an option is out of
 * range.  o may be NULL: every default. */
relais_coalescer *relais_coalescer_new(relais_client *c,
    const struct relais_coalesce_options *o, char *errbuf, size_t errlen);

/* Thread-safe.  At most 1000 events per call; 0 or -1 as relais_submit(). */
int relais_coalesced_submit(relais_coalescer *co, json_t **events, size_t n,
    json_t **results, char *errbuf, size_t errlen);

/* Submit messages sent and events they carried, since creation. */
void relais_coalescer_stats(relais_coalescer *co, uint64_t *submits,
    uint64_t *events);

/* Free the coalescer (not its client); no call may be under way.  Safe on
 * NULL; sets *co to NULL. */
void relais_coalescer_free(relais_coalescer **co);

/* Z85 key files as written by `relais keygen`: NAME.pub and NAME.key. */
int relais_read_key(const char *path, char out[41], char *errbuf, size_t errlen);

#endif
