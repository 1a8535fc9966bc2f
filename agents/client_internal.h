/*
 * librelais internals shared by client.c (connection, deliveries, queries)
 * and submit.c (pipelined event submission).  Not installed, not stable.
 */
#ifndef RELAIS_CLIENT_INTERNAL_H
#define RELAIS_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <msgpack.h>

#include "codec.h"
#include "contact.h"
#include "relais.h"
#include "relais_proto.h"
#include "rltime.h"

#define CLIENT_DEFAULT_TIMEOUT_MS   5000
#define CLIENT_DEFAULT_HEARTBEAT_MS 2000

struct relais_client {
	void *ctx;
	void *sock;                 /* DEALER to the broker */
	void *monitor;              /* PAIR receiving the DEALER's socket events */
	char endpoint[256];

	char errmsg[512];
	int last_code;              /* broker error code of the last failure, or 0 */

	/* From the welcome. */
	char agent[64];
	char kind[32];
	char name[128];
	uint32_t max_batch;         /* events per submit */
	size_t max_frame;           /* bytes per message */
	int heartbeat_ms;

	/* Settings. */
	uint32_t credit;            /* 0: the broker's default */
	int timeout_ms;             /* before a request is sent again */
	bool send_only;             /* never says hello: takes no deliveries */

	uint64_t next_ref;          /* correlation numbers, never reused */

	/* Liveness, monotonic ms. */
	int64_t last_send;
	int64_t last_recv;
	int64_t last_hello;
	bool connected;             /* the CURVE handshake is complete */
	bool hello_due;             /* reconnected: the broker may have forgotten us */
	int handshakes;             /* completed CURVE handshakes so far; a
	                             * request sent under an older count may
	                             * have died with its connection */
	int auth_status;            /* ZAP status of a refused handshake, or 0 */

	/* The broker's clock as the last pong told it: broker - wall, in ms. */
	int64_t clock_offset_ms;
	bool clock_known;

	/* Deliveries received but not yet handed out: a FIFO. */
	json_t *queue;
	size_t qhead;
	uint64_t returned_seq;      /* highest seq handed out */
	uint64_t acked_seq;         /* highest seq the application acknowledged */

	/*
	 * Sealed contacts (client_contact.c): this agent's secret keys, the
	 * current one first, wiped at relais_close(); other agents' public
	 * keys, pinned or learnt from the broker.
	 */
	unsigned char box_keys[1 + RELAIS_MAX_PREVIOUS_KEYS][CONTACT_KEY_BYTES];
	size_t nbox_keys;
	struct agent_key *agent_keys;
	size_t nagent_keys;
};

/* A public key of another agent, for sealing contacts to it. */
struct agent_key {
	char id[RL_MAX_AGENT_ID_BYTES + 1];
	char z85[41];
	unsigned char key[CONTACT_KEY_BYTES];
	int64_t learnt_at;          /* monotonic ms */
	bool pinned;                /* never asked of the broker, never expires */
};

/* client_contact.c */

/* Read this agent's secret keys from the options.  0, or -1 with errbuf. */
int client_keys_init(relais_client *c, const struct relais_options *o,
    char *errbuf, size_t errlen);
void client_keys_wipe(relais_client *c);

/*
 * Seal the plaintext contact of one event (see relais.h).  0: nothing to
 * do or sealed; 1: the event is refused here, with code, field and a
 * message; -1: the broker could not be asked (errmsg set).
 */
int client_seal_contact(relais_client *c, json_t *ev, int *code,
    char *field, size_t fieldlen, char *msg, size_t msglen);

/* Open the sealed contact of an event object in place (see relais.h). */
void client_open_contact(relais_client *c, json_t *ev);

/* relais_new_event_id() for a given time and random bytes (tests). */
#define EVENT_ID_TIME       9     /* 5 bits each: milliseconds for 1100 years */
#define EVENT_ID_RANDOM     13    /* 5 bits each: 65 random bits */
void client_format_event_id(char id[RELAIS_EVENT_ID_SIZE], uint64_t ms,
    const unsigned char rnd[EVENT_ID_RANDOM]);

/* Set errmsg (printf-style) and last_code; always returns -1. */
int client_fail(relais_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint64_t client_next_ref(relais_client *c);

/*
 * Send one frame without blocking.  Returns 0 if sent, 1 if it cannot go
 * now (no connection yet, or the queue to the broker is full: try again
 * later), -1 on a socket failure (errmsg set).
 */
int client_send(relais_client *c, const void *buf, size_t len);

/* Same, for a frame packed in an sbuffer. */
int client_send_sbuf(relais_client *c, const msgpack_sbuffer *sb);

/*
 * Wait up to timeout_ms for traffic.  Deliveries are queued, welcomes and
 * socket events are recorded.  Returns 1 with *msg set to a reply the
 * caller may want ("acks", "result", "error", "welcome", "pong"; a new
 * reference) or NULL, 0 if nothing arrived, -1 on failure (errmsg set;
 * "interrupted" with errno EINTR when a signal arrived).
 */
int client_pump(relais_client *c, int timeout_ms, json_t **msg);

/* Ping when idle, say hello again after a silence or a reconnection. */
void client_keepalive(relais_client *c);

/* True if msg is a reply of this cmd carrying this ref. */
bool client_msg_is(const json_t *msg, const char *cmd, uint64_t ref);

/* The broker's error reply as errmsg and last_code; returns -1. */
int client_fail_with_reply(relais_client *c, const json_t *err,
    const char *what);

/* Start a message map {"v":1, "cmd":cmd, ...} with extra entries to come. */
int client_pack_head(msgpack_packer *pk, const char *cmd, size_t extra);

#endif
