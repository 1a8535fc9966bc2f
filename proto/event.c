/*
 * The event catalogue (PROTOCOL.md §6) and its validation.
 *
 * Three tables say everything about events: value rules (what a value may
 * look like), fields (name, where the value lives in struct rl_event, its
 * rule) and types (name, who may send it, which fields it requires and
 * allows).  event_parse() and event_pack() only walk those tables, so
 * adding a field or a type is a table edit, not new code.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "codec.h"
#include "event.h"
#include "utf8.h"

/* occurred_at and at: from 2000-01-01 (included) to 2100-01-01 (excluded), UTC. */
#define TIME_MIN_MS INT64_C(946684800000)
#define TIME_END_MS INT64_C(4102444800000)

/* A run of this many digits looks like a NIR (13 digits plus a 2-digit key). */
#define NIR_MIN_DIGITS 13

/* ------------------------------------------------------------------ */
/* Value rules                                                         */
/* ------------------------------------------------------------------ */

enum value_type { VT_STR, VT_INT, VT_BOOL, VT_BIN };

struct value_rule {
	enum value_type type;
	uint32_t min_len, max_len;                 /* strings, bins: bytes, inclusive */
	bool (*byte_ok)(unsigned char c);          /* strings: allowed bytes */
	bool (*value_ok)(const char *p, size_t n); /* strings: whole-value check */
	const char *const *choices;                /* strings: allowed values, NULL-ended */
	int64_t min, max;                          /* integers: inclusive bounds */
	const char *allowed;                       /* "<field> must be <allowed>" */
};

static bool
id_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
}

static bool
agent_id_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/*
 * Free text is stored, delivered and logged: it must be valid UTF-8 and
 * hold no control characters that could break a log line or a terminal;
 * tabs and line breaks are ordinary text.
 */
static bool
is_plain_text(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t step = utf8_sequence_len(p + i, n - i);

		if (step == 0)
			return false;
		if (step == 1 && (p[i] == 0x7f ||
		    (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')))
			return false;
		i += step;
	}
	return true;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A real day of the Gregorian calendar written YYYY-MM-DD.  Years are kept
 * to the same window as event times, so a typo like 0226 is caught.
 */
static bool
is_calendar_date(const char *p, size_t n)
{
	int32_t day;

	return cal_parse_date(p, n, &day);
}

static const char *const places[] = {
	"public_space", "social_venue", "event", "door_to_door", NULL
};
static const char *const age_bands[] = { "under_26", "26_49", "50_plus", NULL };
static const char *const sources[] = {
	"outreach", "partner", "self", "landlord", NULL
};
static const char *const channels[] = {
	"in_person", "phone", "message", "home_visit", NULL
};
static const char *const barriers[] = {
	"mobility", "childcare_family", "health", "language", "housing",
	"finances", "administrative", "digital", "qualification", "confidence",
	NULL
};
static const char *const decline_reasons[] = {
	"no_capacity", "not_eligible", "could_not_contact", "not_interested",
	"barrier_incompatible", "duplicate", "other", NULL
};
static const char *const outcomes[] = {
	"completed", "transferred", "dropped_out", "moved", "refused", "other",
	NULL
};
static const char *const schemes[] = {
	"france_travail", "cej", "plie", "iae", "training", "rsa_support",
	"other", NULL
};
static const char *const contracts[] = {
	"cdi", "cdd", "interim", "iae", "apprenticeship", "other", NULL
};
static const char *const exit_reasons[] = {
	"stabilised", "moved", "refused", "other", NULL
};

static const char *const *const code_lists[EVC__COUNT] = {
	[EVC_PLACE] = places, [EVC_SOURCE] = sources, [EVC_CHANNEL] = channels,
	[EVC_BARRIER] = barriers, [EVC_DECLINE_REASON] = decline_reasons,
	[EVC_SCHEME] = schemes, [EVC_CONTRACT] = contracts,
	[EVC_EXIT_REASON] = exit_reasons,
};

const char *const *
ev_code_list(enum ev_codes which)
{
	return code_lists[which];
}

int
ev_code_index(enum ev_codes which, const char *p, size_t len)
{
	const char *const *list = code_lists[which];

	for (int i = 0; list[i] != NULL; i++)
		if (strlen(list[i]) == len && memcmp(list[i], p, len) == 0)
			return i;
	return -1;
}

static const struct value_rule id_rule = {
	.type = VT_STR, .min_len = 1, .max_len = RL_MAX_ID_BYTES,
	.byte_ok = id_byte,
	.allowed = "1 to 64 characters among A-Z a-z 0-9 . _ : -",
};
static const struct value_rule agent_id_rule = {
	.type = VT_STR, .min_len = 1, .max_len = RL_MAX_AGENT_ID_BYTES,
	.byte_ok = agent_id_byte,
	.allowed = "an agent id: 1 to 48 characters among a-z 0-9 -",
};
static const struct value_rule text_rule = {
	.type = VT_STR, .min_len = 1, .max_len = RL_MAX_TEXT_BYTES,
	.value_ok = is_plain_text,
	.allowed = "1 to 280 bytes of UTF-8 text without control characters",
};
static const struct value_rule date_rule = {
	.type = VT_STR, .min_len = 10, .max_len = 10,
	.value_ok = is_calendar_date,
	.allowed = "a real calendar date YYYY-MM-DD from 2000-01-01 to 2099-12-31",
};
static const struct value_rule time_rule = {
	.type = VT_INT, .min = TIME_MIN_MS, .max = TIME_END_MS - 1,
	.allowed = "an integer of milliseconds since the Unix epoch, "
	    "from 2000-01-01 (included) to 2100-01-01 (excluded)",
};
static const struct value_rule contacts_rule = {
	.type = VT_INT, .min = 0, .max = 100000,
	.allowed = "an integer from 0 to 100000",
};
static const struct value_rule score_rule = {
	.type = VT_INT, .min = 1, .max = 5,
	.allowed = "an integer from 1 to 5",
};
/*
 * A sealed contact (SPEC §2.6): libsodium's crypto_box_seal of at most
 * RL_CONTACT_MAX_PLAIN bytes, so RL_CONTACT_MIN_BOX to RL_CONTACT_MAX_BOX
 * bytes.  The broker cannot read it and checks nothing else: it is not
 * text, so the NIR check does not apply to it.
 */
static const struct value_rule contact_rule = {
	.type = VT_BIN, .min_len = RL_CONTACT_MIN_BOX, .max_len = RL_CONTACT_MAX_BOX,
	.allowed = "a sealed box (msgpack bin) of 49 to 1072 bytes: "
	    "crypto_box_seal of at most 1024 bytes to the target's key",
};
static const struct value_rule bool_rule = {
	.type = VT_BOOL,
	.allowed = "true or false",
};

#define CHOICE_RULE(name, list) \
	static const struct value_rule name = { \
		.type = VT_STR, .min_len = 1, .max_len = RL_MAX_ID_BYTES, \
		.choices = list, \
	}

CHOICE_RULE(place_rule, places);
CHOICE_RULE(age_band_rule, age_bands);
CHOICE_RULE(source_rule, sources);
CHOICE_RULE(channel_rule, channels);
CHOICE_RULE(barrier_rule, barriers);
CHOICE_RULE(decline_reason_rule, decline_reasons);
CHOICE_RULE(outcome_rule, outcomes);
CHOICE_RULE(scheme_rule, schemes);
CHOICE_RULE(contract_rule, contracts);
CHOICE_RULE(exit_reason_rule, exit_reasons);

/* ------------------------------------------------------------------ */
/* Fields                                                              */
/* ------------------------------------------------------------------ */

struct field_def {
	const char *name;
	size_t offset;                  /* where the value lives in struct rl_event */
	const struct value_rule *rule;  /* NULL for "type", which the catalogue reads */
};

#define AT(member) offsetof(struct rl_event, member)

/* Indexed by enum ev_field: that order is also the canonical packing order. */
static const struct field_def fields[EF__COUNT] = {
	[EF_EVENT_ID]    = { "event_id",    AT(event_id),    &id_rule },
	[EF_TYPE]        = { "type",        AT(type),        NULL },
	[EF_OCCURRED_AT] = { "occurred_at", AT(occurred_at), &time_rule },
	[EF_PARTICIPANT] = { "participant", AT(participant), &id_rule },
	[EF_PLACE]       = { "place",       AT(place),       &place_rule },
	[EF_QPV]         = { "qpv",         AT(qpv),         &id_rule },
	[EF_CONTACTS]    = { "contacts",    AT(contacts),    &contacts_rule },
	[EF_AGE_BAND]    = { "age_band",    AT(age_band),    &age_band_rule },
	[EF_SOURCE]      = { "source",      AT(source),      &source_rule },
	[EF_CHANNEL]     = { "channel",     AT(channel),     &channel_rule },
	[EF_BARRIER]     = { "barrier",     AT(barrier),     &barrier_rule },
	[EF_REFERRAL]    = { "referral",    AT(referral),    &id_rule },
	[EF_TO]          = { "to",          AT(to),          &agent_id_rule },
	[EF_PURPOSE]     = { "purpose",     AT(purpose),     &text_rule },
	/* Free text by default; types whose reason is a code say so below. */
	[EF_REASON]      = { "reason",      AT(reason),      &text_rule },
	[EF_APPOINTMENT] = { "appointment", AT(appointment), &id_rule },
	[EF_AT]          = { "at",          AT(at),          &time_rule },
	[EF_EXCUSED]     = { "excused",     AT(excused),     &bool_rule },
	[EF_PROGRAMME]   = { "programme",   AT(programme),   &text_rule },
	[EF_OUTCOME]     = { "outcome",     AT(outcome),     &outcome_rule },
	[EF_SCHEME]      = { "scheme",      AT(scheme),      &scheme_rule },
	[EF_CONTRACT]    = { "contract",    AT(contract),    &contract_rule },
	[EF_ENDS_ON]     = { "ends_on",     AT(ends_on),     &date_rule },
	[EF_SCORE]       = { "score",       AT(score),       &score_rule },
	[EF_ALERT]       = { "alert",       AT(alert),       &id_rule },
	[EF_NOTE]        = { "note",        AT(note),        &text_rule },
	[EF_CONTACT]     = { "contact",     AT(contact),     &contact_rule },
};

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

struct type_def {
	const char *name;
	enum ev_sender_rule sender;
	uint32_t required;                 /* bits (1u << EF_x) */
	uint32_t optional;
	const struct value_rule *reason;   /* overrides the rule of "reason" */
};

#define F(x)    (1u << EF_##x)
#define BASE    (F(EVENT_ID) | F(TYPE) | F(OCCURRED_AT))
#define PERSON  (BASE | F(PARTICIPANT))

/* Indexed by enum ev_type. */
static const struct type_def types[EV__COUNT] = {
	/* Counts street work without naming anyone: no participant at all. */
	[EV_OUTREACH_INTERVENTION] = { "outreach.intervention", EV_ANY_PARTNER,
	    BASE | F(PLACE) | F(QPV) | F(CONTACTS), 0, NULL },
	[EV_PARTICIPANT_IDENTIFIED] = { "participant.identified", EV_ANY_PARTNER,
	    PERSON | F(QPV) | F(SOURCE), F(AGE_BAND), NULL },
	[EV_CONTACT_MADE] = { "contact.made", EV_ANY_PARTNER,
	    PERSON | F(CHANNEL), 0, NULL },
	[EV_BARRIER_IDENTIFIED] = { "barrier.identified", EV_ANY_PARTNER,
	    PERSON | F(BARRIER), 0, NULL },
	[EV_BARRIER_LIFTED] = { "barrier.lifted", EV_ANY_PARTNER,
	    PERSON | F(BARRIER), 0, NULL },
	[EV_REFERRAL_SENT] = { "referral.sent", EV_ANY_PARTNER,
	    PERSON | F(REFERRAL) | F(TO) | F(PURPOSE), F(CONTACT), NULL },
	[EV_REFERRAL_ACCEPTED] = { "referral.accepted", EV_REFERRAL_TARGET,
	    PERSON | F(REFERRAL), 0, NULL },
	[EV_REFERRAL_DECLINED] = { "referral.declined", EV_REFERRAL_TARGET,
	    PERSON | F(REFERRAL) | F(REASON), 0, &decline_reason_rule },
	[EV_REFERRAL_CANCELLED] = { "referral.cancelled", EV_REFERRAL_SENDER,
	    PERSON | F(REFERRAL) | F(REASON), 0, &text_rule },
	[EV_APPOINTMENT_SCHEDULED] = { "appointment.scheduled", EV_ANY_PARTNER,
	    PERSON | F(APPOINTMENT) | F(AT), 0, NULL },
	[EV_APPOINTMENT_ATTENDED] = { "appointment.attended", EV_ANY_PARTNER,
	    PERSON | F(APPOINTMENT), 0, NULL },
	[EV_APPOINTMENT_MISSED] = { "appointment.missed", EV_ANY_PARTNER,
	    PERSON | F(APPOINTMENT), F(EXCUSED), NULL },
	[EV_SUPPORT_STARTED] = { "support.started", EV_ANY_PARTNER,
	    PERSON, F(PROGRAMME), NULL },
	[EV_SUPPORT_ENDED] = { "support.ended", EV_REFERENT,
	    PERSON | F(OUTCOME), 0, NULL },
	[EV_ENROLLMENT_STARTED] = { "enrollment.started", EV_ANY_PARTNER,
	    PERSON | F(SCHEME), 0, NULL },
	[EV_EMPLOYMENT_STARTED] = { "employment.started", EV_ANY_PARTNER,
	    PERSON | F(CONTRACT), F(ENDS_ON), NULL },
	[EV_CONFIDENCE_ASSESSED] = { "confidence.assessed", EV_ANY_PARTNER,
	    PERSON | F(SCORE), 0, NULL },
	[EV_PARTICIPANT_EXITED] = { "participant.exited", EV_REFERENT_OR_COORDINATOR,
	    PERSON | F(REASON), 0, &exit_reason_rule },
	[EV_ALERT_ACKNOWLEDGED] = { "alert.acknowledged", EV_COORDINATOR,
	    PERSON | F(ALERT), F(NOTE), NULL },
	[EV_ALERT_RESOLVED] = { "alert.resolved", EV_COORDINATOR,
	    PERSON | F(ALERT), F(NOTE), NULL },
	[EV_PARTICIPANT_ERASED] = { "participant.erased", EV_COORDINATOR,
	    PERSON, 0, NULL },
};

int
ev_type_from_name(const char *name, size_t len)
{
	for (int t = 0; t < EV__COUNT; t++)
		if (strlen(types[t].name) == len && memcmp(types[t].name, name, len) == 0)
			return t;
	return -1;
}

const char *
ev_type_name(enum ev_type type)
{
	return (unsigned)type < EV__COUNT ? types[type].name : "unknown";
}

enum ev_sender_rule
ev_type_sender_rule(enum ev_type type)
{
	/* An unknown type is held to the strictest rule rather than the loosest. */
	return (unsigned)type < EV__COUNT ? types[type].sender : EV_COORDINATOR;
}

const char *
ev_field_name(enum ev_field f)
{
	return (unsigned)f < EF__COUNT ? fields[f].name : "unknown";
}

static int
field_from_name(const char *name, size_t len)
{
	/* Most names differ at the first byte: no strlen of every name. */
	for (int f = 0; f < EF__COUNT; f++)
		if (len > 0 && fields[f].name[0] == name[0] &&
		    strnlen(fields[f].name, len + 1) == len &&
		    memcmp(fields[f].name, name, len) == 0)
			return f;
	return -1;
}

enum ev_value_kind
ev_field_value_kind(const char *name)
{
	int f = field_from_name(name, strlen(name));

	if (f < 0)
		return EV_VALUE_UNKNOWN;
	if (fields[f].rule == NULL)         /* "type" */
		return EV_VALUE_STR;
	switch (fields[f].rule->type) {
	case VT_INT:
		return EV_VALUE_INT;
	case VT_BOOL:
		return EV_VALUE_BOOL;
	default:
		return EV_VALUE_STR;
	}
}

static const struct value_rule *
field_rule(const struct type_def *td, enum ev_field f)
{
	if (f == EF_REASON && td->reason != NULL)
		return td->reason;
	return fields[f].rule;
}

/* ------------------------------------------------------------------ */
/* NIR detection                                                       */
/* ------------------------------------------------------------------ */

/*
 * A NIR is 13 digits plus a 2-digit key, written in groups in every way
 * people write numbers ("1 85 05 78 006 084 36", "1-85-05-78-006-084-36",
 * "1.85/05_78"), so no punctuation or white space between digits ends a
 * run: only a letter (or any other byte) does.  A run longer than 15
 * digits holds a 13-to-15-digit one and is refused too: a NIR followed by
 * a house number must not slip through.
 */
static bool
is_separator(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    (c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
	    (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

bool
looks_like_nir(const char *p, size_t len)
{
	size_t digits = 0;

	for (size_t i = 0; i < len; i++) {
		if (is_digit(p[i])) {
			if (++digits >= NIR_MIN_DIGITS)
				return true;
		} else if (!is_separator(p[i])) {
			digits = 0;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Error messages                                                      */
/* ------------------------------------------------------------------ */

/*
 * A name from the network, made safe to echo in an error reply and a log:
 * printable ASCII only, cut to fit rl_error.field.
 */
void
rl_printable_copy(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[n] = '\0';
}

static const char *
object_kind(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:              return "nil";
	case MSGPACK_OBJECT_BOOLEAN:          return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:          return "a float";
	case MSGPACK_OBJECT_STR:              return "a string";
	case MSGPACK_OBJECT_BIN:              return "binary data";
	case MSGPACK_OBJECT_ARRAY:            return "an array";
	case MSGPACK_OBJECT_MAP:              return "a map";
	case MSGPACK_OBJECT_EXT:              return "an extension value";
	}
	return "an unknown value";
}

/* "one of a, b, c" for a choice rule, the rule's own words otherwise. */
static const char *
describe_allowed(const struct value_rule *rule, char *buf, size_t size)
{
	size_t used;

	if (rule->choices == NULL)
		return rule->allowed;
	used = (size_t)snprintf(buf, size, "one of");
	for (size_t i = 0; rule->choices[i] != NULL && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s %s",
		    i == 0 ? "" : ",", rule->choices[i]);
	return buf;
}

/*
 * "<field> must be <what is allowed>[; got <what came>]".  A list of
 * choices says it all and can be long, so it goes without the "got".
 */
static int
bad_value(struct rl_error *err, const char *name, const struct value_rule *rule,
    const char *got)
{
	char allowed[sizeof(err->message)];

	if (rule->choices != NULL)
		got = NULL;
	return rl_error_set(err, RL_E_BAD_FIELD, name, "%s must be %s%s%s", name,
	    describe_allowed(rule, allowed, sizeof(allowed)),
	    got != NULL ? "; got " : "", got != NULL ? got : "");
}

/* ------------------------------------------------------------------ */
/* Value checks                                                        */
/* ------------------------------------------------------------------ */

static bool
in_choices(const char *const *choices, const char *p, size_t n)
{
	for (size_t i = 0; choices[i] != NULL; i++)
		if (strlen(choices[i]) == n && memcmp(choices[i], p, n) == 0)
			return true;
	return false;
}

static int
check_string(const msgpack_object *v, const struct value_rule *rule,
    const char *name, struct rl_str *out, struct rl_error *err)
{
	const char *p;
	uint32_t n;
	char got[32];

	if (v->type != MSGPACK_OBJECT_STR)
		return bad_value(err, name, rule, object_kind(v));
	p = v->via.str.ptr;
	n = v->via.str.size;
	if (n < rule->min_len || n > rule->max_len) {
		snprintf(got, sizeof(got), "%" PRIu32 " bytes", n);
		return bad_value(err, name, rule, got);
	}
	for (uint32_t i = 0; rule->byte_ok != NULL && i < n; i++)
		if (!rule->byte_ok((unsigned char)p[i]))
			return bad_value(err, name, rule, NULL);
	if (rule->value_ok != NULL && !rule->value_ok(p, n))
		return bad_value(err, name, rule, NULL);
	if (rule->choices != NULL && !in_choices(rule->choices, p, n))
		return bad_value(err, name, rule, NULL);
	out->p = p;
	out->len = n;
	return RL_OK;
}

static int
check_int(const msgpack_object *v, const struct value_rule *rule,
    const char *name, int64_t *out, struct rl_error *err)
{
	char got[32];
	int64_t x;

	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (v->via.u64 > (uint64_t)INT64_MAX) {
			snprintf(got, sizeof(got), "%" PRIu64, v->via.u64);
			return bad_value(err, name, rule, got);
		}
		x = (int64_t)v->via.u64;
	} else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		x = v->via.i64;
	} else {
		return bad_value(err, name, rule, object_kind(v));
	}
	if (x < rule->min || x > rule->max) {
		snprintf(got, sizeof(got), "%" PRId64, x);
		return bad_value(err, name, rule, got);
	}
	*out = x;
	return RL_OK;
}

static int
check_bin(const msgpack_object *v, const struct value_rule *rule,
    const char *name, struct rl_str *out, struct rl_error *err)
{
	char got[32];

	if (v->type != MSGPACK_OBJECT_BIN)
		return bad_value(err, name, rule, object_kind(v));
	if (v->via.bin.size < rule->min_len || v->via.bin.size > rule->max_len) {
		snprintf(got, sizeof(got), "%" PRIu32 " bytes", v->via.bin.size);
		return bad_value(err, name, rule, got);
	}
	out->p = v->via.bin.ptr;
	out->len = v->via.bin.size;
	return RL_OK;
}

static int
check_bool(const msgpack_object *v, const struct value_rule *rule,
    const char *name, bool *out, struct rl_error *err)
{
	if (v->type != MSGPACK_OBJECT_BOOLEAN)
		return bad_value(err, name, rule, object_kind(v));
	*out = v->via.boolean;
	return RL_OK;
}

/* Check one value against its rule and store it at its place in *ev. */
static int
check_value(const msgpack_object *v, const struct value_rule *rule,
    const char *name, void *dest, struct rl_error *err)
{
	/* Personal data is refused whatever the field expected. */
	if (v->type == MSGPACK_OBJECT_STR &&
	    looks_like_nir(v->via.str.ptr, v->via.str.size))
		return rl_error_set(err, RL_E_PERSONAL_DATA, name,
		    "%s holds a run of 13 or more digits, which looks like a "
		    "social-security number; send pseudonyms and non-identifying "
		    "text only", name);
	switch (rule->type) {
	case VT_STR:
		return check_string(v, rule, name, dest, err);
	case VT_INT:
		return check_int(v, rule, name, dest, err);
	case VT_BOOL:
		return check_bool(v, rule, name, dest, err);
	case VT_BIN:
		return check_bin(v, rule, name, dest, err);
	}
	return rl_error_set(err, RL_E_BAD_FIELD, name, "%s has no known rule", name);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static const msgpack_object *
find_key(const msgpack_object_map *map, const char *key)
{
	size_t n = strlen(key);

	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object *k = &map->ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &map->ptr[i].val;
	}
	return NULL;
}

/* The type comes first: it decides which fields the event may carry. */
static int
parse_type(const msgpack_object_map *map, struct rl_event *ev,
    struct rl_error *err)
{
	const msgpack_object *v = find_key(map, "type");
	char shown[48];
	int t;

	if (v == NULL)
		return rl_error_set(err, RL_E_MISSING_FIELD, "type",
		    "type is required: every event names its type, "
		    "such as \"contact.made\"");
	if (v->type != MSGPACK_OBJECT_STR)
		return rl_error_set(err, RL_E_BAD_FIELD, "type",
		    "type must be a string naming an event type; got %s",
		    object_kind(v));
	t = ev_type_from_name(v->via.str.ptr, v->via.str.size);
	if (t < 0) {
		rl_printable_copy(shown, sizeof(shown), v->via.str.ptr, v->via.str.size);
		return rl_error_set(err, RL_E_UNKNOWN_TYPE, "type",
		    "\"%s\" is not an event type; see PROTOCOL.md section 6 "
		    "for the catalogue", shown);
	}
	ev->type = (enum ev_type)t;
	return RL_OK;
}

/* One key/value pair of the event map, checked against its type's fields. */
static int
parse_entry(const msgpack_object_kv *kv, const struct type_def *td,
    struct rl_event *ev, struct rl_error *err)
{
	const msgpack_object *k = &kv->key;
	char shown[sizeof(err->field)];
	int f;

	if (k->type != MSGPACK_OBJECT_STR)
		return rl_error_set(err, RL_E_BAD_FIELD, "",
		    "event keys must be strings; got %s", object_kind(k));
	f = field_from_name(k->via.str.ptr, k->via.str.size);
	if (f < 0 || ((td->required | td->optional) & (1u << f)) == 0) {
		rl_printable_copy(shown, sizeof(shown), k->via.str.ptr, k->via.str.size);
		return rl_error_set(err, RL_E_UNKNOWN_FIELD, shown,
		    "%s is not a field of %s events; remove it or check its "
		    "spelling", shown, td->name);
	}
	if (event_has(ev, (enum ev_field)f))
		return rl_error_set(err, RL_E_BAD_FIELD, fields[f].name,
		    "%s appears more than once; each field may appear only once",
		    fields[f].name);
	ev->present |= 1u << f;
	if (f == EF_TYPE)
		return RL_OK;               /* already read by parse_type() */
	return check_value(&kv->val, field_rule(td, (enum ev_field)f),
	    fields[f].name, (char *)ev + fields[f].offset, err);
}

static int
check_required(const struct type_def *td, const struct rl_event *ev,
    struct rl_error *err)
{
	uint32_t missing = td->required & ~ev->present;

	for (int f = 0; f < EF__COUNT; f++)
		if (missing & (1u << f))
			return rl_error_set(err, RL_E_MISSING_FIELD, fields[f].name,
			    "%s is required in %s events", fields[f].name,
			    td->name);
	return RL_OK;
}

int
event_parse(const msgpack_object *obj, struct rl_event *ev,
    struct rl_error *err)
{
	const msgpack_object_map *map;
	const struct type_def *td;
	int rc;

	memset(ev, 0, sizeof(*ev));
	if (obj->type != MSGPACK_OBJECT_MAP)
		return rl_error_set(err, RL_E_BAD_FIELD, "",
		    "an event must be a msgpack map with string keys; got %s",
		    object_kind(obj));
	map = &obj->via.map;
	if ((rc = parse_type(map, ev, err)) != RL_OK)
		return rc;
	td = &types[ev->type];
	/*
	 * The loop stops at the first key that is unknown or repeated, so a
	 * huge map costs no more than a well-formed event.
	 */
	for (uint32_t i = 0; i < map->size; i++)
		if ((rc = parse_entry(&map->ptr[i], td, ev, err)) != RL_OK)
			return rc;
	return check_required(td, ev, err);
}

/* ------------------------------------------------------------------ */
/* Canonical encoding                                                  */
/* ------------------------------------------------------------------ */

uint32_t
event_field_count(const struct rl_event *ev)
{
	uint32_t n = 0;

	for (int f = 0; f < EF__COUNT; f++)
		n += event_has(ev, (enum ev_field)f);
	return n;
}

static int
pack_field_value(msgpack_packer *pk, const struct rl_event *ev, enum ev_field f)
{
	const void *at = (const char *)ev + fields[f].offset;
	const char *type_name;

	if (f == EF_TYPE) {
		type_name = ev_type_name(ev->type);
		return codec_pack_strn(pk, type_name, strlen(type_name));
	}
	/* Every rule a field may take has the storage type of its default. */
	switch (fields[f].rule->type) {
	case VT_STR:
		return codec_pack_strn(pk, ((const struct rl_str *)at)->p,
		    ((const struct rl_str *)at)->len);
	case VT_INT:
		/* msgpack-c picks the shortest encoding of the value: canonical. */
		return msgpack_pack_int64(pk, *(const int64_t *)at);
	case VT_BOOL:
		return *(const bool *)at ? msgpack_pack_true(pk) :
		    msgpack_pack_false(pk);
	case VT_BIN:
		if (msgpack_pack_bin(pk, ((const struct rl_str *)at)->len) != 0)
			return -1;
		return msgpack_pack_bin_body(pk, ((const struct rl_str *)at)->p,
		    ((const struct rl_str *)at)->len);
	}
	return -1;
}

int
event_pack(const struct rl_event *ev, msgpack_packer *pk)
{
	if (msgpack_pack_map(pk, event_field_count(ev)) != 0)
		return -1;
	return event_pack_fields(ev, pk);
}

int
event_pack_fields(const struct rl_event *ev, msgpack_packer *pk)
{
	for (int f = 0; f < EF__COUNT; f++) {
		if (!event_has(ev, (enum ev_field)f))
			continue;
		if (codec_pack_strn(pk, fields[f].name, strlen(fields[f].name)) != 0 ||
		    pack_field_value(pk, ev, (enum ev_field)f) != 0)
			return -1;
	}
	return 0;
}

size_t
event_dedup_len(const struct rl_event *ev, size_t canon_len)
{
	uint32_t n = ev->contact.len;
	/* msgpack-c writes bin 8, 16 or 32 by size: the header it used. */
	size_t header = n < 256 ? 2 : n < 65536 ? 3 : 5;

	if (!event_has(ev, EF_CONTACT) || canon_len < header + n)
		return canon_len;
	return canon_len - header - n;
}
