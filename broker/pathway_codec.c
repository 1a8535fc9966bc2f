/*
 * The stored form of a pathway: a msgpack map with string keys, "v": 1.
 *
 *   scalars      "participant", "qpv", "phase" (a name), the times ("..._at",
 *                "last_activity"), "identified_by", "dropped_by",
 *                "exit_reason", "miss_run"
 *   "miss_times" [at, ...]                       min(miss_run, 16) items
 *   "referrals"  [[id, from, to, state, sent_at, answered_at], ...]
 *   "referents"  [[id, since], ...]
 *   "barriers"   [[code, state, identified_at, lifted_at], ...]
 *   "appointments" [[id, at, state], ...]
 *   "enrollments"  [[scheme, first_at, count], ...]
 *   "employment" [contract, by, started_at, ends_on]
 *   "confidence" [first, first_at, last, last_at]
 *   "counts"     {"contact.made": 3, ...}        non-zero counts only
 *
 * Enumerations are stored by name, so reordering an enum never changes the
 * meaning of stored data.  One table lists every key with how to write and
 * read it, so the encoder and the decoder cannot drift apart.
 *
 * The decoder reads what we wrote ourselves, but from disk: every key must
 * be there exactly once, every value is checked for type, length and range,
 * and the whole is checked for consistency.  Anything else is a storage
 * error, never a crash.
 */
#include <stddef.h>
#include <string.h>

#include "codec.h"
#include "mpview.h"
#include "pathway.h"
#include "relais_proto.h"

#define PW_FORMAT_VERSION 1

/*
 * Nodes for reading the largest pathway the limits allow: each list and
 * each tuple in it, twice over so that the bound is never the tight one.
 */
#define PW_DECODE_OBJS (2 * (PW_MISS_RUN_KEEP + 7 * PW_MAX_REFERRALS + \
    3 * PW_MAX_REFERENTS + 5 * PW_MAX_BARRIERS + 4 * PW_MAX_APPOINTMENTS + \
    4 * PW_MAX_ENROLLMENTS + 16))
#define PW_DECODE_KVS (64 + 2 * EV__COUNT)

static const char *const phase_names[PW_PHASE__COUNT] = {
	"new", "identified", "referred", "supported", "enrolled", "employed",
	"exited",
};
static const char *const referral_names[PW_REF__COUNT] = {
	"requested", "accepted", "declined", "cancelled", "expired",
};
static const char *const barrier_names[PW_BARRIER__COUNT] = {
	"open", "lifted",
};
static const char *const appointment_names[PW_APPT__COUNT] = {
	"scheduled", "attended", "missed", "excused",
};

const char *
pw_phase_name(enum pw_phase phase)
{
	return (unsigned)phase < PW_PHASE__COUNT ? phase_names[phase] : "unknown";
}

const char *
pw_referral_state_name(enum pw_referral_state state)
{
	return (unsigned)state < PW_REF__COUNT ? referral_names[state] : "unknown";
}

const char *
pw_barrier_state_name(enum pw_barrier_state state)
{
	return (unsigned)state < PW_BARRIER__COUNT ? barrier_names[state] :
	    "unknown";
}

const char *
pw_appointment_state_name(enum pw_appointment_state state)
{
	return (unsigned)state < PW_APPT__COUNT ? appointment_names[state] :
	    "unknown";
}

/* --- writing: each helper returns 0, or non-zero if the packer failed --- */

static int
put_i64(msgpack_packer *pk, int64_t v)
{
	return msgpack_pack_int64(pk, v);
}

static int
enc_version(const struct pathway *pw, msgpack_packer *pk)
{
	return msgpack_pack_uint32(pk, PW_FORMAT_VERSION);
}

static int
enc_phase(const struct pathway *pw, msgpack_packer *pk)
{
	return codec_pack_str(pk, pw_phase_name(pw->phase));
}

static uint32_t
kept_misses(const struct pathway *pw)
{
	return pw->miss_run < PW_MISS_RUN_KEEP ? pw->miss_run : PW_MISS_RUN_KEEP;
}

static int
enc_miss_times(const struct pathway *pw, msgpack_packer *pk)
{
	uint32_t n = kept_misses(pw);
	int rc = msgpack_pack_array(pk, n);

	for (uint32_t i = 0; i < n; i++)
		rc |= put_i64(pk, pw->miss_times[i]);
	return rc;
}

static int
enc_referrals(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, (size_t)pw->nreferrals);

	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];

		rc |= msgpack_pack_array(pk, 6);
		rc |= codec_pack_str(pk, r->id) | codec_pack_str(pk, r->from) |
		    codec_pack_str(pk, r->to) |
		    codec_pack_str(pk, pw_referral_state_name(r->state)) |
		    put_i64(pk, r->sent_at) | put_i64(pk, r->answered_at);
	}
	return rc;
}

static int
enc_referents(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, (size_t)pw->nreferents);

	for (int i = 0; i < pw->nreferents; i++) {
		rc |= msgpack_pack_array(pk, 2);
		rc |= codec_pack_str(pk, pw->referents[i].id) |
		    put_i64(pk, pw->referents[i].since);
	}
	return rc;
}

static int
enc_barriers(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, (size_t)pw->nbarriers);

	for (int i = 0; i < pw->nbarriers; i++) {
		const struct pw_barrier *b = &pw->barriers[i];

		rc |= msgpack_pack_array(pk, 4);
		rc |= codec_pack_str(pk, b->code) |
		    codec_pack_str(pk, pw_barrier_state_name(b->state)) |
		    put_i64(pk, b->identified_at) | put_i64(pk, b->lifted_at);
	}
	return rc;
}

static int
enc_appointments(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, (size_t)pw->nappointments);

	for (int i = 0; i < pw->nappointments; i++) {
		const struct pw_appointment *a = &pw->appointments[i];

		rc |= msgpack_pack_array(pk, 3);
		rc |= codec_pack_str(pk, a->id) | put_i64(pk, a->at) |
		    codec_pack_str(pk, pw_appointment_state_name(a->state));
	}
	return rc;
}

static int
enc_enrollments(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, (size_t)pw->nenrollments);

	for (int i = 0; i < pw->nenrollments; i++) {
		const struct pw_enrollment *e = &pw->enrollments[i];

		rc |= msgpack_pack_array(pk, 3);
		rc |= codec_pack_str(pk, e->scheme) | put_i64(pk, e->first_at) |
		    msgpack_pack_uint32(pk, e->count);
	}
	return rc;
}

static int
enc_employment(const struct pathway *pw, msgpack_packer *pk)
{
	const struct pw_employment *e = &pw->employment;

	return msgpack_pack_array(pk, 4) | codec_pack_str(pk, e->contract) |
	    codec_pack_str(pk, e->by) | put_i64(pk, e->started_at) |
	    put_i64(pk, e->ends_on);
}

static int
enc_confidence(const struct pathway *pw, msgpack_packer *pk)
{
	const struct pw_confidence *k = &pw->confidence;

	return msgpack_pack_array(pk, 4) | msgpack_pack_int(pk, k->first) |
	    put_i64(pk, k->first_at) | msgpack_pack_int(pk, k->last) |
	    put_i64(pk, k->last_at);
}

static int
enc_counts(const struct pathway *pw, msgpack_packer *pk)
{
	size_t n = 0;
	int rc;

	for (int t = 0; t < EV__COUNT; t++)
		n += pw->counts[t] != 0;
	rc = msgpack_pack_map(pk, n);
	for (int t = 0; t < EV__COUNT; t++)
		if (pw->counts[t] != 0)
			rc |= codec_pack_str(pk, ev_type_name((enum ev_type)t)) |
			    msgpack_pack_uint32(pk, pw->counts[t]);
	return rc;
}

/* --- reading: each helper returns false if the value is not acceptable --- */

static bool
get_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= (uint64_t)INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

static bool
get_u32(const msgpack_object *o, uint32_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->via.u64 > UINT32_MAX)
		return false;
	*v = (uint32_t)o->via.u64;
	return true;
}

/* A string that fits dst with its NUL and holds no NUL itself. */
static bool
get_str(const msgpack_object *o, char *dst, size_t size)
{
	uint32_t n;

	if (o->type != MSGPACK_OBJECT_STR)
		return false;
	n = o->via.str.size;
	if (n >= size || (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL))
		return false;
	memset(dst, 0, size);
	if (n > 0)
		memcpy(dst, o->via.str.ptr, n);
	return true;
}

static bool
get_id(const msgpack_object *o, char *dst, size_t size)
{
	return get_str(o, dst, size) && dst[0] != '\0';
}

/* The index of the name o holds in names[], or -1. */
static int
get_name(const msgpack_object *o, const char *const *names, int count)
{
	for (int i = 0; o->type == MSGPACK_OBJECT_STR && i < count; i++)
		if (strlen(names[i]) == o->via.str.size &&
		    memcmp(names[i], o->via.str.ptr, o->via.str.size) == 0)
			return i;
	return -1;
}

static const msgpack_object *
get_tuple(const msgpack_object *o, uint32_t n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n)
		return NULL;
	return o->via.array.ptr;
}

/* An array of at most max items (an empty one may have no item pointer). */
static bool
get_list(const msgpack_object *o, int max, int *n,
    const msgpack_object **items)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > (uint32_t)max)
		return false;
	*n = (int)o->via.array.size;
	*items = o->via.array.ptr;
	return true;
}

static bool
dec_version(const msgpack_object *o, struct pathway *pw)
{
	uint32_t v;

	return get_u32(o, &v) && v == PW_FORMAT_VERSION;
}

static bool
dec_phase(const msgpack_object *o, struct pathway *pw)
{
	int i = get_name(o, phase_names, PW_PHASE__COUNT);

	if (i < 0)
		return false;
	pw->phase = (enum pw_phase)i;
	return true;
}

/* Its length is checked against miss_run once both are read. */
static bool
dec_miss_times(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;
	int n;

	if (!get_list(o, PW_MISS_RUN_KEEP, &n, &it))
		return false;
	for (int i = 0; i < n; i++)
		if (!get_i64(&it[i], &pw->miss_times[i]))
			return false;
	return true;
}

static bool
dec_referral(const msgpack_object *o, struct pw_referral *r)
{
	const msgpack_object *f = get_tuple(o, 6);
	int state;

	if (f == NULL || !get_id(&f[0], r->id, sizeof(r->id)) ||
	    !get_id(&f[1], r->from, sizeof(r->from)) ||
	    !get_id(&f[2], r->to, sizeof(r->to)) ||
	    !get_i64(&f[4], &r->sent_at) || !get_i64(&f[5], &r->answered_at))
		return false;
	state = get_name(&f[3], referral_names, PW_REF__COUNT);
	/* expired is derived, never stored; requested is not answered yet */
	if (state < 0 || state == PW_REF_EXPIRED ||
	    (state == PW_REF_REQUESTED && r->answered_at != 0))
		return false;
	r->state = (enum pw_referral_state)state;
	return true;
}

static bool
dec_referrals(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;

	if (!get_list(o, PW_MAX_REFERRALS, &pw->nreferrals, &it))
		return false;
	for (int i = 0; i < pw->nreferrals; i++) {
		if (!dec_referral(&it[i], &pw->referrals[i]))
			return false;
		for (int j = 0; j < i; j++)
			if (strcmp(pw->referrals[j].id, pw->referrals[i].id) == 0)
				return false;
	}
	return true;
}

static bool
dec_referents(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;

	if (!get_list(o, PW_MAX_REFERENTS, &pw->nreferents, &it))
		return false;
	for (int i = 0; i < pw->nreferents; i++) {
		struct pw_referent *r = &pw->referents[i];
		const msgpack_object *f = get_tuple(&it[i], 2);

		if (f == NULL || !get_id(&f[0], r->id, sizeof(r->id)) ||
		    !get_i64(&f[1], &r->since))
			return false;
		for (int j = 0; j < i; j++)
			if (strcmp(pw->referents[j].id, r->id) == 0)
				return false;
	}
	return true;
}

static bool
dec_barriers(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;

	if (!get_list(o, PW_MAX_BARRIERS, &pw->nbarriers, &it))
		return false;
	for (int i = 0; i < pw->nbarriers; i++) {
		struct pw_barrier *b = &pw->barriers[i];
		const msgpack_object *f = get_tuple(&it[i], 4);
		int state;

		if (f == NULL || !get_id(&f[0], b->code, sizeof(b->code)) ||
		    (state = get_name(&f[1], barrier_names,
		    PW_BARRIER__COUNT)) < 0 ||
		    !get_i64(&f[2], &b->identified_at) ||
		    !get_i64(&f[3], &b->lifted_at))
			return false;
		b->state = (enum pw_barrier_state)state;
		for (int j = 0; j < i; j++)
			if (strcmp(pw->barriers[j].code, b->code) == 0)
				return false;
	}
	return true;
}

static bool
dec_appointments(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;

	if (!get_list(o, PW_MAX_APPOINTMENTS, &pw->nappointments, &it))
		return false;
	for (int i = 0; i < pw->nappointments; i++) {
		struct pw_appointment *a = &pw->appointments[i];
		const msgpack_object *f = get_tuple(&it[i], 3);
		int state;

		if (f == NULL || !get_id(&f[0], a->id, sizeof(a->id)) ||
		    !get_i64(&f[1], &a->at) ||
		    (state = get_name(&f[2], appointment_names,
		    PW_APPT__COUNT)) < 0)
			return false;
		a->state = (enum pw_appointment_state)state;
		for (int j = 0; j < i; j++)
			if (strcmp(pw->appointments[j].id, a->id) == 0)
				return false;
	}
	return true;
}

static bool
dec_enrollments(const msgpack_object *o, struct pathway *pw)
{
	const msgpack_object *it;

	if (!get_list(o, PW_MAX_ENROLLMENTS, &pw->nenrollments, &it))
		return false;
	for (int i = 0; i < pw->nenrollments; i++) {
		struct pw_enrollment *e = &pw->enrollments[i];
		const msgpack_object *f = get_tuple(&it[i], 3);

		if (f == NULL || !get_id(&f[0], e->scheme, sizeof(e->scheme)) ||
		    !get_i64(&f[1], &e->first_at) || !get_u32(&f[2], &e->count) ||
		    e->count == 0)
			return false;
		for (int j = 0; j < i; j++)
			if (strcmp(pw->enrollments[j].scheme, e->scheme) == 0)
				return false;
	}
	return true;
}

static bool
dec_employment(const msgpack_object *o, struct pathway *pw)
{
	struct pw_employment *e = &pw->employment;
	const msgpack_object *f = get_tuple(o, 4);

	return f != NULL && get_str(&f[0], e->contract, sizeof(e->contract)) &&
	    get_str(&f[1], e->by, sizeof(e->by)) &&
	    get_i64(&f[2], &e->started_at) && get_i64(&f[3], &e->ends_on);
}

static bool
get_score(const msgpack_object *o, int *v)
{
	uint32_t u;

	if (!get_u32(o, &u) || u > 5)
		return false;
	*v = (int)u;
	return true;
}

static bool
dec_confidence(const msgpack_object *o, struct pathway *pw)
{
	struct pw_confidence *k = &pw->confidence;
	const msgpack_object *f = get_tuple(o, 4);

	return f != NULL && get_score(&f[0], &k->first) &&
	    get_i64(&f[1], &k->first_at) && get_score(&f[2], &k->last) &&
	    get_i64(&f[3], &k->last_at) && (k->first == 0) == (k->last == 0);
}

static bool
dec_counts(const msgpack_object *o, struct pathway *pw)
{
	bool seen[EV__COUNT] = { false };

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > EV__COUNT)
		return false;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		int t;

		if (kv->key.type != MSGPACK_OBJECT_STR)
			return false;
		t = ev_type_from_name(kv->key.via.str.ptr, kv->key.via.str.size);
		if (t < 0 || t >= EV__COUNT || seen[t] ||
		    !get_u32(&kv->val, &pw->counts[t]) || pw->counts[t] == 0)
			return false;
		seen[t] = true;
	}
	return true;
}

/* --- the table of keys --- */

enum pw_kind { K_I64, K_U32, K_STR, K_FN };

struct pw_key {
	const char *name;
	enum pw_kind kind;
	size_t off;                 /* K_I64, K_U32, K_STR: member offset */
	size_t size;                /* K_STR: buffer size */
	int (*enc)(const struct pathway *pw, msgpack_packer *pk);
	bool (*dec)(const msgpack_object *o, struct pathway *pw);
};

#define MEMBER_SIZE(m) sizeof(((struct pathway *)0)->m)
#define KI64(k, m) { k, K_I64, offsetof(struct pathway, m), 0, NULL, NULL }
#define KU32(k, m) { k, K_U32, offsetof(struct pathway, m), 0, NULL, NULL }
#define KSTR(k, m) { k, K_STR, offsetof(struct pathway, m), MEMBER_SIZE(m), \
	NULL, NULL }
#define KFN(k, e, d) { k, K_FN, 0, 0, e, d }

static const struct pw_key keys[] = {
	KFN("v", enc_version, dec_version),
	KSTR("participant", participant),
	KSTR("qpv", qpv),
	KFN("phase", enc_phase, dec_phase),
	KI64("opened_at", opened_at),
	KI64("identified_at", identified_at),
	KSTR("identified_by", identified_by),
	KI64("reopened_at", reopened_at),
	KI64("last_activity", last_activity),
	KI64("last_support_at", last_support_at),
	KI64("referent_ended_at", referent_ended_at),
	KI64("dropped_out_at", dropped_out_at),
	KSTR("dropped_by", dropped_by),
	KSTR("exit_reason", exit_reason),
	KI64("exited_at", exited_at),
	KU32("miss_run", miss_run),
	KFN("miss_times", enc_miss_times, dec_miss_times),
	KI64("last_miss_at", last_miss_at),
	KFN("referrals", enc_referrals, dec_referrals),
	KFN("referents", enc_referents, dec_referents),
	KFN("barriers", enc_barriers, dec_barriers),
	KFN("appointments", enc_appointments, dec_appointments),
	KFN("enrollments", enc_enrollments, dec_enrollments),
	KFN("employment", enc_employment, dec_employment),
	KFN("confidence", enc_confidence, dec_confidence),
	KFN("counts", enc_counts, dec_counts),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
enc_key(const struct pw_key *k, const struct pathway *pw, msgpack_packer *pk)
{
	const char *m = (const char *)pw + k->off;
	int64_t i64;
	uint32_t u32;

	switch (k->kind) {
	case K_I64:
		memcpy(&i64, m, sizeof(i64));
		return put_i64(pk, i64);
	case K_U32:
		memcpy(&u32, m, sizeof(u32));
		return msgpack_pack_uint32(pk, u32);
	case K_STR:
		return codec_pack_str(pk, m);
	case K_FN:
		return k->enc(pw, pk);
	}
	return -1;
}

int
pathway_encode(const struct pathway *pw, msgpack_packer *pk)
{
	int rc = msgpack_pack_map(pk, NKEYS);

	for (size_t i = 0; i < NKEYS; i++)
		rc |= codec_pack_str(pk, keys[i].name) | enc_key(&keys[i], pw, pk);
	return rc == 0 ? RL_OK : RL_E_STORAGE;
}

static bool
dec_key(const struct pw_key *k, const msgpack_object *o, struct pathway *pw)
{
	char *m = (char *)pw + k->off;
	int64_t i64;
	uint32_t u32;

	switch (k->kind) {
	case K_I64:
		if (!get_i64(o, &i64))
			return false;
		memcpy(m, &i64, sizeof(i64));
		return true;
	case K_U32:
		if (!get_u32(o, &u32))
			return false;
		memcpy(m, &u32, sizeof(u32));
		return true;
	case K_STR:
		return get_str(o, m, k->size);
	case K_FN:
		return k->dec(o, pw);
	}
	return false;
}

static bool
key_is(const msgpack_object *o, size_t i)
{
	return o->type == MSGPACK_OBJECT_STR &&
	    strlen(keys[i].name) == o->via.str.size &&
	    memcmp(keys[i].name, o->via.str.ptr, o->via.str.size) == 0;
}

/*
 * pathway_encode() writes the keys in table order, so the key at position
 * "hint" is tried first: decoding a stored pathway is one comparison per
 * key, not a scan of the table (this runs for every event).
 */
static const struct pw_key *
find_key(const msgpack_object *o, size_t hint, size_t *index)
{
	if (hint < NKEYS && key_is(o, hint)) {
		*index = hint;
		return &keys[hint];
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (key_is(o, i)) {
			*index = i;
			return &keys[i];
		}
	return NULL;
}

/* What the keys cannot check one by one. */
static const char *
check_consistency(const struct pathway *pw, uint32_t nmiss_times)
{
	if (pw->participant[0] == '\0')
		return "participant is empty";
	if ((pw->phase == PW_PHASE_EXITED) != (pw->exit_reason[0] != '\0'))
		return "exit_reason does not match the phase";
	if (nmiss_times != kept_misses(pw))
		return "miss_times does not match miss_run";
	if ((pw->employment.contract[0] == '\0') !=
	    (pw->employment.by[0] == '\0'))
		return "employment is half filled";
	return NULL;
}

static int
decode_map(const msgpack_object *o, struct pathway *pw, struct rl_error *err)
{
	bool seen[NKEYS] = { false };
	uint32_t nmiss_times = 0;
	const char *why;

	if (o->type != MSGPACK_OBJECT_MAP)
		return rl_error_set(err, RL_E_STORAGE, "",
		    "stored pathway is not a map");
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		size_t at = 0;
		const struct pw_key *k = find_key(&kv->key, i, &at);

		if (k == NULL)
			return rl_error_set(err, RL_E_STORAGE, "",
			    "stored pathway has an unknown key");
		if (seen[at] || !dec_key(k, &kv->val, pw))
			return rl_error_set(err, RL_E_STORAGE, "",
			    "stored pathway has a bad or repeated \"%s\"",
			    k->name);
		seen[at] = true;
		if (k->dec == dec_miss_times)
			nmiss_times = kv->val.via.array.size;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (!seen[i])
			return rl_error_set(err, RL_E_STORAGE, "",
			    "stored pathway lacks \"%s\"", keys[i].name);
	if ((why = check_consistency(pw, nmiss_times)) != NULL)
		return rl_error_set(err, RL_E_STORAGE, "",
		    "stored pathway is inconsistent: %s", why);
	return RL_OK;
}

int
pathway_decode(const char *buf, size_t len, struct pathway *pw,
    struct rl_error *err)
{
	/*
	 * Read without msgpack-c's allocations: this runs for every event.
	 * The node arrays hold the largest pathway the limits allow; anything
	 * that does not fit them is not a pathway this code wrote.
	 */
	msgpack_object objs[PW_DECODE_OBJS], root;
	msgpack_object_kv kvs[PW_DECODE_KVS];
	struct mpview view = { objs, PW_DECODE_OBJS, kvs, PW_DECODE_KVS };
	int rc;

	memset(pw, 0, sizeof(*pw));
	if (mpview_parse(buf, len, &view, &root) == -1)
		rc = rl_error_set(err, RL_E_STORAGE, "",
		    "stored pathway is not one msgpack value");
	else
		rc = decode_map(&root, pw, err);
	if (rc != RL_OK)
		memset(pw, 0, sizeof(*pw));
	return rc;
}

/* --- equality, for verify --- */

static bool
referral_eq(const struct pw_referral *a, const struct pw_referral *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->from, b->from) == 0 &&
	    strcmp(a->to, b->to) == 0 && a->state == b->state &&
	    a->sent_at == b->sent_at && a->answered_at == b->answered_at;
}

static bool
referent_eq(const struct pw_referent *a, const struct pw_referent *b)
{
	return strcmp(a->id, b->id) == 0 && a->since == b->since;
}

static bool
barrier_eq(const struct pw_barrier *a, const struct pw_barrier *b)
{
	return strcmp(a->code, b->code) == 0 && a->state == b->state &&
	    a->identified_at == b->identified_at && a->lifted_at == b->lifted_at;
}

static bool
appointment_eq(const struct pw_appointment *a, const struct pw_appointment *b)
{
	return strcmp(a->id, b->id) == 0 && a->at == b->at &&
	    a->state == b->state;
}

static bool
enrollment_eq(const struct pw_enrollment *a, const struct pw_enrollment *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && a->first_at == b->first_at &&
	    a->count == b->count;
}

static bool
collections_eq(const struct pathway *a, const struct pathway *b)
{
	if (a->nreferrals != b->nreferrals || a->nreferents != b->nreferents ||
	    a->nbarriers != b->nbarriers ||
	    a->nappointments != b->nappointments ||
	    a->nenrollments != b->nenrollments)
		return false;
	for (int i = 0; i < a->nreferrals; i++)
		if (!referral_eq(&a->referrals[i], &b->referrals[i]))
			return false;
	for (int i = 0; i < a->nreferents; i++)
		if (!referent_eq(&a->referents[i], &b->referents[i]))
			return false;
	for (int i = 0; i < a->nbarriers; i++)
		if (!barrier_eq(&a->barriers[i], &b->barriers[i]))
			return false;
	for (int i = 0; i < a->nappointments; i++)
		if (!appointment_eq(&a->appointments[i], &b->appointments[i]))
			return false;
	for (int i = 0; i < a->nenrollments; i++)
		if (!enrollment_eq(&a->enrollments[i], &b->enrollments[i]))
			return false;
	return true;
}

static bool
scalars_eq(const struct pathway *a, const struct pathway *b)
{
	const struct pw_employment *ea = &a->employment, *eb = &b->employment;
	const struct pw_confidence *ka = &a->confidence, *kb = &b->confidence;

	return strcmp(a->participant, b->participant) == 0 &&
	    strcmp(a->qpv, b->qpv) == 0 && a->phase == b->phase &&
	    a->opened_at == b->opened_at &&
	    a->identified_at == b->identified_at &&
	    strcmp(a->identified_by, b->identified_by) == 0 &&
	    a->reopened_at == b->reopened_at &&
	    a->last_activity == b->last_activity &&
	    a->last_support_at == b->last_support_at &&
	    a->referent_ended_at == b->referent_ended_at &&
	    a->dropped_out_at == b->dropped_out_at &&
	    strcmp(a->dropped_by, b->dropped_by) == 0 &&
	    strcmp(a->exit_reason, b->exit_reason) == 0 &&
	    a->exited_at == b->exited_at && a->miss_run == b->miss_run &&
	    a->last_miss_at == b->last_miss_at &&
	    strcmp(ea->contract, eb->contract) == 0 &&
	    strcmp(ea->by, eb->by) == 0 && ea->started_at == eb->started_at &&
	    ea->ends_on == eb->ends_on && ka->first == kb->first &&
	    ka->first_at == kb->first_at && ka->last == kb->last &&
	    ka->last_at == kb->last_at;
}

bool
pathway_equal(const struct pathway *a, const struct pathway *b)
{
	uint32_t nmiss = kept_misses(a);

	if (!scalars_eq(a, b) || !collections_eq(a, b))
		return false;
	for (uint32_t i = 0; i < nmiss; i++)
		if (a->miss_times[i] != b->miss_times[i])
			return false;
	return memcmp(a->counts, b->counts, sizeof(a->counts)) == 0;
}
