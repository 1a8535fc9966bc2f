/*
 * relais wire protocol: constants shared by the broker and the agents.
 *
 * proto/PROTOCOL.md is the normative description; this header only names
 * what it defines.  Every protocol message is one ZeroMQ frame holding one
 * msgpack map with string keys, at least "v" (protocol version) and "cmd".
 */
#ifndef RELAIS_PROTO_H
#define RELAIS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RL_PROTO_VERSION        1
#define RL_ZAP_DOMAIN           "relais"

/* Limits the broker enforces before it looks at a message's content. */
#define RL_MAX_FRAME_BYTES      (384 * 1024)    /* one message */
#define RL_MAX_FRAME_VALUES     65536           /* msgpack values in one message */
#define RL_MAX_BATCH            1000            /* events in one submit */
#define RL_MAX_EVENT_BYTES      4096            /* one encoded event */
#define RL_MAX_TEXT_BYTES       280             /* free-text fields */
#define RL_MAX_ID_BYTES         64              /* event, participant, referral ids */
#define RL_MAX_AGENT_ID_BYTES   48
#define RL_MAX_CREDIT           10000           /* deliveries in flight per agent */

/*
 * A sealed contact (PROTOCOL.md §6.1): crypto_box_seal adds 48 bytes (an
 * ephemeral X25519 public key and a MAC) to a plaintext of 1 to 1024 bytes.
 */
#define RL_CONTACT_MAX_PLAIN    1024
#define RL_CONTACT_SEAL_BYTES   48              /* crypto_box_SEALBYTES */
#define RL_CONTACT_MIN_BOX      (RL_CONTACT_SEAL_BYTES + 1)
#define RL_CONTACT_MAX_BOX      (RL_CONTACT_SEAL_BYTES + RL_CONTACT_MAX_PLAIN)

/*
 * Stable error codes.  The numbers never change meaning; new codes are only
 * ever added.  1xx: the message itself; 2xx: one event; 3xx: the broker.
 */
enum rl_code {
	RL_OK = 0,

	RL_E_BAD_FRAME = 100,       /* not a msgpack map, or trailing bytes */
	RL_E_TOO_LARGE = 101,       /* frame larger than RL_MAX_FRAME_BYTES or RL_MAX_FRAME_VALUES */
	RL_E_BAD_VERSION = 102,     /* "v" missing or not supported */
	RL_E_UNKNOWN_COMMAND = 103, /* "cmd" missing or unknown */
	RL_E_MISSING_FIELD = 104,   /* a required field is absent */
	RL_E_BAD_FIELD = 105,       /* wrong type, out of range, bad pattern */
	RL_E_UNKNOWN_FIELD = 106,   /* a field this message does not define */
	RL_E_BATCH_TOO_LARGE = 107, /* more than RL_MAX_BATCH events */
	RL_E_MULTIPART = 108,       /* more than one frame */

	RL_E_UNKNOWN_TYPE = 200,    /* event "type" not in the catalogue */
	RL_E_PERSONAL_DATA = 201,   /* a value looks like a NIR */
	RL_E_FORBIDDEN = 202,       /* this agent may not send this */
	RL_E_CONFLICT = 203,        /* event_id reused with other content */
	RL_E_UNKNOWN_REFERRAL = 204,
	RL_E_UNKNOWN_AGENT = 205,   /* "to" is not a registered agent */
	RL_E_WRONG_AGENT = 206,     /* answer from an agent the referral does not name */
	RL_E_BAD_TRANSITION = 207,  /* the state does not allow this event */
	RL_E_REFERRAL_EXISTS = 208, /* referral id already used */
	RL_E_UNKNOWN_PARTICIPANT = 209,
	RL_E_UNKNOWN_ALERT = 210,
	RL_E_EVENT_TOO_LARGE = 211,

	RL_E_STORAGE_FULL = 300,    /* the LMDB map is full: nothing was written */
	RL_E_STORAGE = 301,         /* any other storage failure */
	RL_E_SHUTTING_DOWN = 302,
	RL_E_NOT_READING = 303,     /* the connection does not read its replies */
};

/* Stable lower-case name of a code ("bad_field"), "unknown" if none. */
const char *rl_code_name(int code);

/* One sentence explaining a code to a person. */
const char *rl_code_text(int code);

#endif
