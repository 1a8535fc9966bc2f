/*
 * An event as the broker records it in its log and delivers it: one flat
 * msgpack map with the event's own fields (canonical order) followed by
 * "sender", "sender_kind" (the sender's agent kind when it sent it),
 * "recorded_at" and "log_seq", which the broker adds.  The
 * payload never carries a sender the broker did not authenticate.
 */
#ifndef RELAIS_RECORD_H
#define RELAIS_RECORD_H

#include <stdint.h>
#include <msgpack.h>

#include "event.h"

/*
 * The record of an event from its canonical encoding (event_pack()), which
 * ingest has already made for deduplication: its fields are copied as they
 * are, not packed again.  -1 if canon is not a msgpack map.
 */
int record_pack(msgpack_sbuffer *sb, const char *canon, size_t len,
    const char *sender, const char *sender_kind, int64_t recorded_at,
    uint64_t log_seq);

/*
 * Write a stored record into sb for an agent that asked to read it: as it
 * is, or without its sealed contact when the reader is not the referral's
 * target, the only agent that can open it (SPEC §2.6).  -1 if the record
 * is damaged (nothing written).
 */
int record_write_for(msgpack_sbuffer *sb, const char *buf, size_t len,
    const char *reader);

/* What record_parse() finds besides the event itself. */
struct record_meta {
	struct rl_str sender;
	struct rl_str sender_kind;      /* empty in records older than it */
	int64_t recorded_at;
	uint64_t log_seq;
};

/*
 * Parse a stored record back into an event (for replay and timelines).
 * up must be initialised; the event points into it.  RL_OK or an error.
 */
int record_parse(const char *buf, size_t len, msgpack_unpacked *up,
    struct rl_event *ev, struct record_meta *meta, struct rl_error *err);

#endif
