/*
 * Decoding of agent requests and encoding of broker replies (PROTOCOL.md).
 *
 * codec_decode_request() is the broker's first look at a network message:
 * it checks the frame size, that the frame is exactly one msgpack map, the
 * version, the command and every field of the command.  Events inside a
 * submit are left as msgpack objects: each is validated on its own by
 * event_parse(), so one bad event does not refuse its whole batch.
 *
 * The decoded request points into *up's zone; it lives until the caller
 * calls msgpack_unpacked_destroy(up).
 */
#ifndef RELAIS_CODEC_H
#define RELAIS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "event.h"

enum rl_cmd {
	RL_CMD_HELLO,       /* agent introduces itself, sets its credit */
	RL_CMD_SUBMIT,      /* a batch of events */
	RL_CMD_DACK,        /* cumulative acknowledgement of deliveries */
	RL_CMD_PING,        /* heartbeat */
	RL_CMD_QUERY,       /* read-only request: alerts, participant, health */
};

struct rl_request {
	enum rl_cmd cmd;
	bool has_ref;
	uint64_t ref;               /* "ref": client's correlation number, echoed */
	bool has_credit;
	uint32_t credit;            /* hello, dack: deliveries it can take in flight */
	bool has_upto;
	uint64_t upto;              /* dack: every delivery with seq <= upto is done */
	const msgpack_object *events; /* submit: array items, each a map */
	uint32_t nevents;
	struct rl_str what;         /* query: "alerts", "participant", "health", ... */
	const msgpack_object *args; /* query: map of arguments, or NULL */
	uint64_t values;            /* msgpack values in the frame: decoded, each
	                               is one msgpack_object (CODEC_DECODED_BYTES) */
};

/* Memory the decoded tree of a frame of n values takes, about. */
#define CODEC_DECODED_BYTES(n) ((n) * sizeof(msgpack_object))

/*
 * Decode one frame.  Returns RL_OK with *req filled, or an error code with
 * *err filled; in both cases the caller destroys *up afterwards (it must
 * have been initialised with msgpack_unpacked_init()).  On error,
 * req->has_ref and req->ref are still set when the frame was a map with a
 * readable "ref", so the error reply can echo it.
 */
int codec_decode_request(const char *buf, size_t len, msgpack_unpacked *up,
    struct rl_request *req, struct rl_error *err);

/* Name of a command as it appears on the wire ("submit"). */
const char *codec_cmd_name(enum rl_cmd cmd);

/*
 * Reply builders.  Each starts a reply map in *pk with "v" and "cmd" and the
 * given number of extra entries still to be written by the caller
 * (codec_begin_reply), or writes a whole small reply.
 */
void codec_begin_reply(msgpack_packer *pk, const char *cmd, uint32_t extra);
/*
 * A string (NULL packs as ""), or n bytes of one, and key-value pairs:
 * the one set of pack helpers of the broker, the codec and the client.
 * 0, or non-zero if the packer failed (its buffer could not grow).
 */
int codec_pack_str(msgpack_packer *pk, const char *s);
int codec_pack_strn(msgpack_packer *pk, const char *s, size_t n);
int codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *v);
int codec_pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v);
int codec_pack_kv_i64(msgpack_packer *pk, const char *k, int64_t v);

/* A whole "error" reply for a message-level failure. */
void codec_pack_error(msgpack_packer *pk, const struct rl_error *err,
    bool has_ref, uint64_t ref);

/*
 * The msgpack map at the start of buf, unpacked into up, which this
 * initialises and the caller always destroys; NULL if buf holds no map.
 */
const msgpack_object *codec_unpack_map(msgpack_unpacked *up, const char *buf,
    size_t len);

/* Find key in a msgpack map; NULL if absent or obj is not a map. */
const msgpack_object *codec_map_get(const msgpack_object *obj, const char *key);

/* Equality of a msgpack string (or bin) object with a C string. */
bool codec_str_eq(const msgpack_object *o, const char *s);

#endif
