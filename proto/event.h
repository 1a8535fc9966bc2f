/*
 * Referral events: the catalogue of SPEC §2.2, field-by-field validation of
 * an event received from the network, and its canonical encoding.
 *
 * event_parse() never trusts its input: every field is checked for type,
 * length, pattern and allowed values, unknown fields are refused, and every
 * string is checked for values that look like a NIR.  It never allocates:
 * the strings of a parsed event point into the msgpack object it was parsed
 * from, so the event lives exactly as long as that object's zone.
 */
#ifndef RELAIS_EVENT_H
#define RELAIS_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

#include "relais_proto.h"

enum ev_type {
	EV_OUTREACH_INTERVENTION,
	EV_PARTICIPANT_IDENTIFIED,
	EV_CONTACT_MADE,
	EV_BARRIER_IDENTIFIED,
	EV_BARRIER_LIFTED,
	EV_REFERRAL_SENT,
	EV_REFERRAL_ACCEPTED,
	EV_REFERRAL_DECLINED,
	EV_REFERRAL_CANCELLED,
	EV_APPOINTMENT_SCHEDULED,
	EV_APPOINTMENT_ATTENDED,
	EV_APPOINTMENT_MISSED,
	EV_SUPPORT_STARTED,
	EV_SUPPORT_ENDED,
	EV_ENROLLMENT_STARTED,
	EV_EMPLOYMENT_STARTED,
	EV_CONFIDENCE_ASSESSED,
	EV_PARTICIPANT_EXITED,
	EV_ALERT_ACKNOWLEDGED,
	EV_ALERT_RESOLVED,
	EV_PARTICIPANT_ERASED,
	EV__COUNT
};

/* A string that points into someone else's buffer; not NUL-terminated. */
struct rl_str {
	const char *p;
	uint32_t len;
};

/*
 * Every field any event type may carry.  Which ones a given event has is
 * in "present" (one bit per enum ev_field).  Strings point into the
 * msgpack object the event was parsed from.
 */
enum ev_field {
	EF_EVENT_ID, EF_TYPE, EF_OCCURRED_AT, EF_PARTICIPANT,
	EF_PLACE, EF_QPV, EF_CONTACTS, EF_AGE_BAND, EF_SOURCE, EF_CHANNEL,
	EF_BARRIER, EF_REFERRAL, EF_TO, EF_PURPOSE, EF_REASON, EF_APPOINTMENT,
	EF_AT, EF_EXCUSED, EF_PROGRAMME, EF_OUTCOME, EF_SCHEME, EF_CONTRACT,
	EF_ENDS_ON, EF_SCORE, EF_ALERT, EF_NOTE,
	/*
	 * Last, so that it is the last entry of the canonical encoding:
	 * deduplication hashes the encoding up to its value (event.c).
	 */
	EF_CONTACT,
	EF__COUNT
};

struct rl_event {
	enum ev_type type;
	uint32_t present;           /* bit (1u << EF_x) per field present */
	struct rl_str event_id;
	int64_t occurred_at;        /* milliseconds since the Unix epoch, UTC */
	struct rl_str participant;
	struct rl_str place, qpv, age_band, source, channel, barrier;
	struct rl_str referral, to, purpose, reason, appointment;
	struct rl_str programme, outcome, scheme, contract, ends_on;
	struct rl_str alert, note;
	struct rl_str contact;      /* a sealed box (msgpack bin), never read */
	int64_t at;                 /* appointment time, ms since epoch */
	int64_t contacts;
	int64_t score;
	bool excused;
};

static inline bool
event_has(const struct rl_event *ev, enum ev_field f)
{
	return (ev->present & (1u << f)) != 0;
}

/* Who may send an event type, before any state is looked at (SPEC §2.2). */
enum ev_sender_rule {
	EV_ANY_PARTNER,             /* any agent except operators */
	EV_REFERRAL_TARGET,         /* the agent the referral was sent to */
	EV_REFERRAL_SENDER,         /* the agent that sent the referral */
	EV_REFERENT,                /* a current referent of the participant */
	EV_REFERENT_OR_COORDINATOR,
	EV_COORDINATOR,
};

/* The code lists of SPEC §2.2-2.4, which the indicators count by. */
enum ev_codes {
	EVC_PLACE, EVC_SOURCE, EVC_CHANNEL, EVC_BARRIER, EVC_DECLINE_REASON,
	EVC_SCHEME, EVC_CONTRACT, EVC_EXIT_REASON,
	EVC__COUNT
};

/* The codes, NULL-terminated, in a fixed order. */
const char *const *ev_code_list(enum ev_codes which);
/* A code's position in its list, or -1. */
int ev_code_index(enum ev_codes which, const char *p, size_t len);

/* "referral.sent" -> EV_REFERRAL_SENT; returns -1 for unknown names. */
int ev_type_from_name(const char *name, size_t len);
const char *ev_type_name(enum ev_type type);
enum ev_sender_rule ev_type_sender_rule(enum ev_type type);
const char *ev_field_name(enum ev_field f);

/* How the catalogue types a field on the wire, found by its name. */
enum ev_value_kind { EV_VALUE_UNKNOWN, EV_VALUE_STR, EV_VALUE_INT, EV_VALUE_BOOL };
enum ev_value_kind ev_field_value_kind(const char *name);

/* What went wrong, for the error reply: a code, the field, a sentence. */
struct rl_error {
	int code;                   /* enum rl_code */
	int cause;                  /* storage codes: the LMDB or system error
	                               behind it, for the log; else 0 */
	char field[32];             /* "" when the whole message is at fault */
	char message[160];
};

/*
 * A name or value from the network made safe to echo in an error reply and
 * a log: printable ASCII only ('?' for anything else), cut to fit size.
 */
void rl_printable_copy(char *dst, size_t size, const char *src, size_t len);

/* Fill *err and return err->code.  printf-style message. */
int rl_error_set(struct rl_error *err, int code, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Validate one event (a msgpack map) field by field and fill *ev.
 * Returns RL_OK, or an error code with *err filled.  On error *ev is
 * unspecified.  Checks only what the event says about itself: whether a
 * referral exists or who may answer it is the broker's business.
 */
int event_parse(const msgpack_object *obj, struct rl_event *ev,
    struct rl_error *err);

/*
 * Write the canonical encoding of the event's own fields (a map in the
 * fixed order of enum ev_field, only present fields).  Two events with the
 * same content have byte-identical encodings, which is what deduplication
 * compares.
 */
int event_pack(const struct rl_event *ev, msgpack_packer *pk);

/*
 * The same entries without the map header, for a record that embeds them
 * in a larger map (the broker's log record): event_field_count() of them.
 */
int event_pack_fields(const struct rl_event *ev, msgpack_packer *pk);

/* Number of fields event_pack() writes (the map size). */
uint32_t event_field_count(const struct rl_event *ev);

/*
 * How many leading bytes of the event's canonical encoding (canon_len
 * bytes, from event_pack()) deduplication compares: all of them but the
 * sealed contact's value.  A sealed box is random: sealing the same
 * details twice gives other bytes, so an agent that resends an event after
 * sealing its contact again gets "duplicate", not "conflict".  Whether
 * there is a contact still counts (its key is hashed).
 */
size_t event_dedup_len(const struct rl_event *ev, size_t canon_len);

/*
 * True if the bytes look like a NIR: a run of 13 or more digits (so one
 * that holds 13 to 15), spaces and dots inside the run ignored.
 */
bool looks_like_nir(const char *p, size_t len);

#endif
