/*
 * The judge of the randomized test (model.h): SPEC's and PROTOCOL.md's
 * rules, one check after the other in the order PROTOCOL.md gives them:
 * the event's own fields (§6), who may send the type at all, the event_id
 * (§4: duplicate or conflict), then the referral checks (a referral id
 * is unique among its participant's referrals, a target must be
 * registered, an answer must name a referral of its participant), the
 * pathway (nothing but
 * a new participant.identified after an exit), the sender's rights
 * against the state, and the type's transition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ---- the event catalogue (PROTOCOL.md §6) ----------------------------- */

static const char *const places[] = { "public_space", "social_venue", "event",
	"door_to_door", NULL };
static const char *const age_bands[] = { "under_26", "26_49", "50_plus", NULL };
static const char *const sources[] = { "outreach", "partner", "self",
	"landlord", NULL };
static const char *const channels[] = { "in_person", "phone", "message",
	"home_visit", NULL };
static const char *const barriers[] = { "mobility", "childcare_family", "health",
	"language", "housing", "finances", "administrative", "digital",
	"qualification", "confidence", NULL };
static const char *const decline_reasons[] = { "no_capacity", "not_eligible",
	"could_not_contact", "not_interested", "barrier_incompatible",
	"duplicate", "other", NULL };
static const char *const outcomes[] = { "completed", "transferred",
	"dropped_out", "moved", "refused", "other", NULL };
static const char *const schemes[] = { "france_travail", "cej", "plie", "iae",
	"training", "rsa_support", "other", NULL };
static const char *const contracts[] = { "cdi", "cdd", "interim", "iae",
	"apprenticeship", "other", NULL };
static const char *const exit_reasons[] = { "stabilised", "moved", "refused",
	"other", NULL };

enum kind { K_ID, K_AGENT, K_TEXT, K_TIME, K_DATE, K_CONTACTS, K_SCORE, K_BOOL,
	K_ENUM };

struct field {
	const char *name;
	enum kind kind;
	const char *const *values;  /* K_ENUM */
};

/* Who may send a type (PROTOCOL.md §6, "Who may send what"). */
enum who { W_PARTNER, W_TARGET, W_SENDER, W_REFERENT, W_REFERENT_OR_COORD,
	W_COORDINATOR };

struct type {
	const char *name;
	enum who who;
	bool person;                /* participant required (else refused) */
	struct field fields[5];     /* besides the common ones; name NULL ends */
	const char *optional[3];    /* which of fields are optional */
};

#define E(n, v) { n, K_ENUM, v }
static const struct type types[] = {
	{ "outreach.intervention", W_PARTNER, false,
	    { E("place", places), { "qpv", K_ID, NULL }, { "contacts", K_CONTACTS, NULL } },
	    { NULL } },
	{ "participant.identified", W_PARTNER, true,
	    { { "qpv", K_ID, NULL }, E("age_band", age_bands), E("source", sources) },
	    { "age_band" } },
	{ "contact.made", W_PARTNER, true, { E("channel", channels) }, { NULL } },
	{ "barrier.identified", W_PARTNER, true, { E("barrier", barriers) }, { NULL } },
	{ "barrier.lifted", W_PARTNER, true, { E("barrier", barriers) }, { NULL } },
	{ "referral.sent", W_PARTNER, true,
	    { { "referral", K_ID, NULL }, { "to", K_AGENT, NULL },
	    { "purpose", K_TEXT, NULL } }, { NULL } },
	{ "referral.accepted", W_TARGET, true, { { "referral", K_ID, NULL } }, { NULL } },
	{ "referral.declined", W_TARGET, true,
	    { { "referral", K_ID, NULL }, E("reason", decline_reasons) }, { NULL } },
	{ "referral.cancelled", W_SENDER, true,
	    { { "referral", K_ID, NULL }, { "reason", K_TEXT, NULL } }, { NULL } },
	{ "appointment.scheduled", W_PARTNER, true,
	    { { "appointment", K_ID, NULL }, { "at", K_TIME, NULL } }, { NULL } },
	{ "appointment.attended", W_PARTNER, true,
	    { { "appointment", K_ID, NULL } }, { NULL } },
	{ "appointment.missed", W_PARTNER, true,
	    { { "appointment", K_ID, NULL }, { "excused", K_BOOL, NULL } },
	    { "excused" } },
	{ "support.started", W_PARTNER, true, { { "programme", K_TEXT, NULL } },
	    { "programme" } },
	{ "support.ended", W_REFERENT, true, { E("outcome", outcomes) }, { NULL } },
	{ "enrollment.started", W_PARTNER, true, { E("scheme", schemes) }, { NULL } },
	{ "employment.started", W_PARTNER, true,
	    { E("contract", contracts), { "ends_on", K_DATE, NULL } }, { "ends_on" } },
	{ "confidence.assessed", W_PARTNER, true, { { "score", K_SCORE, NULL } },
	    { NULL } },
	{ "participant.exited", W_REFERENT_OR_COORD, true,
	    { E("reason", exit_reasons) }, { NULL } },
	{ "alert.acknowledged", W_COORDINATOR, true,
	    { { "alert", K_ID, NULL }, { "note", K_TEXT, NULL } }, { "note" } },
	{ "alert.resolved", W_COORDINATOR, true,
	    { { "alert", K_ID, NULL }, { "note", K_TEXT, NULL } }, { "note" } },
	{ "participant.erased", W_COORDINATOR, true, { { NULL, K_ID, NULL } }, { NULL } },
};
#undef E

#define NTYPES (sizeof(types) / sizeof(types[0]))

static const struct type *
type_find(const char *name)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

static const struct field *
type_field(const struct type *t, const char *name)
{
	for (int i = 0; i < 5 && t->fields[i].name != NULL; i++)
		if (strcmp(t->fields[i].name, name) == 0)
			return &t->fields[i];
	return NULL;
}

static bool
is_optional(const struct type *t, const char *name)
{
	for (int i = 0; i < 3 && t->optional[i] != NULL; i++)
		if (strcmp(t->optional[i], name) == 0)
			return true;
	return false;
}

/* ---- values ------------------------------------------------------------ */

static bool
id_ok(const char *s, size_t max, bool agent)
{
	size_t n = strlen(s);

	if (n < 1 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';

		if (!agent)
			ok = ok || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
			    c == ':';
		if (!ok)
			return false;
	}
	return true;
}

static bool
text_ok(const char *s)
{
	if (strlen(s) > 280)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
			return false;
	return true;
}

static bool
date_ok(const char *s)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d;
	char end;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &end) != 3)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	return !(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

static bool
in_list(const char *s, const char *const *values)
{
	for (int i = 0; values[i] != NULL; i++)
		if (strcmp(values[i], s) == 0)
			return true;
	return false;
}

static bool
value_ok(const struct field *f, const json_t *v)
{
	const char *s = json_string_value(v);
	json_int_t n = json_integer_value(v);

	switch (f->kind) {
	case K_ID:
		return s != NULL && id_ok(s, 64, false);
	case K_AGENT:
		return s != NULL && id_ok(s, 48, true);
	case K_TEXT:
		return s != NULL && text_ok(s);
	case K_DATE:
		return s != NULL && date_ok(s);
	case K_ENUM:
		return s != NULL && in_list(s, f->values);
	case K_TIME:
		return json_is_integer(v) && n >= 946684800000LL && n < 4102444800000LL;
	case K_CONTACTS:
		return json_is_integer(v) && n >= 0 && n <= 100000;
	case K_SCORE:
		return json_is_integer(v) && n >= 1 && n <= 5;
	case K_BOOL:
		return json_is_boolean(v);
	}
	return false;
}

/* A run of 13 digits or more, spaces and dots inside it ignored: it looks
 * like a social-security number (PROTOCOL.md §6). */
static bool
looks_like_nir(const char *s)
{
	int run = 0;

	for (; *s; s++) {
		if (*s >= '0' && *s <= '9') {
			if (++run >= 13)
				return true;
		} else if (!(run > 0 && (*s == ' ' || *s == '.'))) {
			run = 0;
		}
	}
	return false;
}

static int
expect_error(struct model_expect *out, int code, const char *fmt, const char *arg)
{
	out->status = "error";
	out->code = code;
	snprintf(out->why, sizeof(out->why), fmt, arg != NULL ? arg : "");
	return code;
}

static const struct field common_id = { "event_id", K_ID, NULL };
static const struct field common_at = { "occurred_at", K_TIME, NULL };
static const struct field common_p = { "participant", K_ID, NULL };

/* The event's own fields; the type on success. */
static const struct type *
validate(const struct model *m, const json_t *ev, struct model_expect *out)
{
	const struct type *t;
	const char *key, *name = json_string_value(json_object_get(ev, "type"));
	const json_t *v;

	if (json_object_get(ev, "type") == NULL) {
		expect_error(out, MC_MISSING_FIELD, "no type", NULL);
		return NULL;
	}
	if (name == NULL) {
		expect_error(out, MC_BAD_FIELD, "type is not a string", NULL);
		return NULL;
	}
	if ((t = type_find(name)) == NULL) {
		expect_error(out, MC_UNKNOWN_TYPE, "no type %s in the catalogue", name);
		return NULL;
	}
	json_object_foreach((json_t *)ev, key, v) {
		const struct field *f = type_field(t, key);

		if (strcmp(key, "type") == 0)
			continue;
		if (strcmp(key, "event_id") == 0)
			f = &common_id;
		else if (strcmp(key, "occurred_at") == 0)
			f = &common_at;
		else if (strcmp(key, "participant") == 0 && t->person)
			f = &common_p;
		if (f == NULL) {
			expect_error(out, MC_UNKNOWN_FIELD, "%s is not a field of the type", key);
			return NULL;
		}
		if (!value_ok(f, v)) {
			expect_error(out, MC_BAD_FIELD, "%s has a bad value", key);
			return NULL;
		}
		/* SPEC §2.1: a QPV not in the territory's list is refused. */
		if (strcmp(key, "qpv") == 0 && !model_qpv_known(m, json_string_value(v))) {
			expect_error(out, MC_BAD_FIELD, "QPV %s is not the territory's",
			    json_string_value(v));
			return NULL;
		}
		if (json_is_string(v) && looks_like_nir(json_string_value(v))) {
			expect_error(out, MC_PERSONAL_DATA, "%s looks like a NIR", key);
			return NULL;
		}
	}
	if (json_object_get(ev, "event_id") == NULL ||
	    json_object_get(ev, "occurred_at") == NULL ||
	    (t->person && json_object_get(ev, "participant") == NULL)) {
		expect_error(out, MC_MISSING_FIELD, "a common field is missing", NULL);
		return NULL;
	}
	for (int i = 0; i < 5 && t->fields[i].name != NULL; i++)
		if (!is_optional(t, t->fields[i].name) &&
		    json_object_get(ev, t->fields[i].name) == NULL) {
			expect_error(out, MC_MISSING_FIELD, "%s is required",
			    t->fields[i].name);
			return NULL;
		}
	return t;
}

/* ---- deduplication: (agent, event_id) -> content ------------------------ */

#define DEDUP_BUCKETS 65536

struct dedup_entry {
	struct dedup_entry *next;
	char *key;                  /* agent, NUL, event_id */
	size_t keylen;
	char *content;              /* the event, keys sorted */
};

struct model_dedup {
	struct dedup_entry *bucket[DEDUP_BUCKETS];
};

static size_t
dedup_key(char *buf, size_t size, const char *agent, const char *event_id)
{
	int n = snprintf(buf, size, "%s%c%s", agent, 0, event_id);

	return n < 0 ? 0 : (size_t)n;
}

static unsigned
hash(const char *s, size_t n)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h % DEDUP_BUCKETS;
}

static struct dedup_entry *
dedup_find(struct model_dedup *d, const char *key, size_t n)
{
	for (struct dedup_entry *e = d->bucket[hash(key, n)]; e != NULL; e = e->next)
		if (e->keylen == n && memcmp(e->key, key, n) == 0)
			return e;
	return NULL;
}

static void
dedup_add(struct model_dedup *d, const char *key, size_t n, const char *content)
{
	struct dedup_entry *e = calloc(1, sizeof(*e));
	unsigned h = hash(key, n);

	e->key = malloc(n);
	memcpy(e->key, key, n);
	e->keylen = n;
	e->content = strdup(content);
	e->next = d->bucket[h];
	d->bucket[h] = e;
}

/* ---- the world ------------------------------------------------------------ */

/* A string member, or "" when absent. */
static const char *
str(const json_t *ev, const char *key)
{
	const char *s = json_string_value(json_object_get(ev, key));

	return s != NULL ? s : "";
}


void
model_init(struct model *m, int nparticipants, const char *prefix)
{
	memset(m, 0, sizeof(*m));
	m->nparticipants = nparticipants;
	m->participants = calloc((size_t)nparticipants, sizeof(*m->participants));
	for (int i = 0; i < nparticipants; i++)
		snprintf(m->participants[i].id, MODEL_ID_SIZE, "%s%d", prefix, i);
	m->dedup = calloc(1, sizeof(*m->dedup));
}

void
model_free(struct model *m)
{
	for (int i = 0; m->dedup != NULL && i < DEDUP_BUCKETS; i++)
		for (struct dedup_entry *e = m->dedup->bucket[i], *next; e != NULL;
		    e = next) {
			next = e->next;
			free(e->key);
			free(e->content);
			free(e);
		}
	free(m->dedup);
	free(m->participants);
	free(m->referrals);
	memset(m, 0, sizeof(*m));
}

int
model_agent_add(struct model *m, const char *id, const char *kind,
    const char *qpvs)
{
	struct model_agent *a = &m->agents[m->nagents];

	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	snprintf(a->qpvs, sizeof(a->qpvs), "%s", qpvs != NULL ? qpvs : "");
	a->role = strcmp(kind, "coordinator") == 0 ? MR_COORDINATOR :
	    strcmp(kind, "operator") == 0 ? MR_OPERATOR : MR_PARTNER;
	return m->nagents++;
}

void
model_qpv_add(struct model *m, const char *qpv)
{
	snprintf(m->qpvs[m->nqpvs++], MODEL_ID_SIZE, "%s", qpv);
}

bool
model_qpv_known(const struct model *m, const char *qpv)
{
	for (int i = 0; i < m->nqpvs; i++)
		if (strcmp(m->qpvs[i], qpv) == 0)
			return true;
	return false;
}

int
model_agent_find(const struct model *m, const char *id)
{
	for (int i = 0; i < m->nagents; i++)
		if (strcmp(m->agents[i].id, id) == 0)
			return i;
	return -1;
}

/* SPEC §2.1: no list covers every QPV; a person without a QPV is covered
 * only by those. */
bool
model_covers(const struct model *m, int agent, const char *qpv)
{
	const char *list = m->agents[agent].qpvs;
	size_t n = strlen(qpv);

	if (list[0] == '\0')
		return true;
	for (const char *p = list; n > 0 && *p; ) {
		size_t len = strcspn(p, ",");

		if (len == n && memcmp(p, qpv, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

int
model_participant_find(const struct model *m, const char *id)
{
	for (int i = 0; i < m->nparticipants; i++)
		if (strcmp(m->participants[i].id, id) == 0)
			return i;
	return -1;
}

struct model_referral *
model_referral_find(struct model *m, int slot, const char *id)
{
	for (int i = m->nreferrals - 1; i >= 0; i--)
		if (!m->referrals[i].gone && m->referrals[i].participant == slot &&
		    strcmp(m->referrals[i].id, id) == 0)
			return &m->referrals[i];
	return NULL;
}

bool
model_referral_expired(const struct model *m, const struct model_referral *r,
    int64_t at)
{
	return r->state == MRS_REQUESTED && m->expiry_ms > 0 &&
	    at >= r->sent_at + m->expiry_ms;
}

bool
model_retention_window(const struct model *m, int slot, int64_t *from,
    int64_t *to)
{
	const struct model_participant *p = &m->participants[slot];

	if (!p->exists)
		return false;
	*from = p->last_activity + m->retention_ms;
	*to = *from + MODEL_DAY_MS;
	return true;
}

void
model_erase(struct model *m, int slot)
{
	struct model_participant *p = &m->participants[slot];
	char id[MODEL_ID_SIZE];
	int erasures = p->erasures + 1;

	memcpy(id, p->id, sizeof(id));
	memset(p, 0, sizeof(*p));
	memcpy(p->id, id, sizeof(id));
	p->erasures = erasures;
	p->erased_before = m->clock;
	for (int i = 0; i < m->nreferrals; i++)
		if (m->referrals[i].participant == slot)
			m->referrals[i].gone = true;
}

void
model_alerts_load(struct model *m, const json_t *alerts)
{
	size_t i;
	const json_t *a;

	m->nalerts = 0;
	json_array_foreach(alerts, i, a) {
		struct model_alert *x;

		if (m->nalerts == MODEL_MAX_ALERTS)
			break;
		x = &m->alerts[m->nalerts++];
		snprintf(x->id, sizeof(x->id), "%s", str(a, "id"));
		snprintf(x->participant, sizeof(x->participant), "%s",
		    str(a, "participant"));
		snprintf(x->qpv, sizeof(x->qpv), "%s", str(a, "qpv"));
		snprintf(x->status, sizeof(x->status), "%s", str(a, "status"));
	}
}

bool
model_alerts_check(const struct model *m, const json_t *alerts, char *why,
    size_t len)
{
	size_t i, j;
	const json_t *a, *b;

	json_array_foreach(alerts, i, a) {
		const char *p = str(a, "participant"), *status = str(a, "status");
		bool resolved = strcmp(status, "resolved") == 0;
		int slot = model_participant_find(m, p);
		const struct model_participant *mp = slot >= 0 ? &m->participants[slot] : NULL;
		json_int_t opened = json_integer_value(json_object_get(a, "opened_at"));

		if (mp != NULL && (!mp->exists || opened < mp->erased_before)) {
			snprintf(why, len, "alert %s names %s, erased after it opened",
			    str(a, "id"), p);
			return false;
		}
		if (mp != NULL && mp->exited && !resolved) {
			snprintf(why, len, "alert %s is %s, about %s who exited",
			    str(a, "id"), status, p);
			return false;
		}
		json_array_foreach(alerts, j, b)
			if (j > i && !resolved && p[0] != '\0' &&
			    strcmp(str(b, "status"), "resolved") != 0 &&
			    strcmp(str(b, "participant"), p) == 0 &&
			    strcmp(str(b, "rule"), str(a, "rule")) == 0) {
				snprintf(why, len, "alerts %s and %s are both open, about "
				    "%s, rule %s", str(a, "id"), str(b, "id"), p,
				    str(a, "rule"));
				return false;
			}
	}
	return true;
}

/* ---- the judge -------------------------------------------------------------- */

static int
barrier_index(const char *code)
{
	for (int i = 0; barriers[i] != NULL; i++)
		if (strcmp(barriers[i], code) == 0)
			return i;
	return -1;
}

static struct model_appointment *
appointment_find(struct model_participant *p, const char *id)
{
	for (int i = 0; i < p->nappointments; i++)
		if (strcmp(p->appointments[i].id, id) == 0)
			return &p->appointments[i];
	return NULL;
}

static int
alert_event(struct model *m, int sender, const json_t *ev, bool acknowledge,
    struct model_expect *out, bool apply)
{
	const char *id = str(ev, "alert");
	struct model_alert *a = NULL;

	for (int i = 0; i < m->nalerts && a == NULL; i++)
		if (strcmp(m->alerts[i].id, id) == 0)
			a = &m->alerts[i];
	if (a == NULL)
		return expect_error(out, MC_UNKNOWN_ALERT, "no alert %s", id);
	if (!model_covers(m, sender, a->qpv))
		return expect_error(out, MC_FORBIDDEN, "alert in QPV \"%s\", outside "
		    "the coordinator's territory", a->qpv);
	if (strcmp(a->participant, str(ev, "participant")) != 0)
		return expect_error(out, MC_BAD_FIELD, "the alert is about \"%s\"",
		    a->participant);
	if (strcmp(a->status, "resolved") == 0 ||
	    (acknowledge && strcmp(a->status, "open") != 0))
		return expect_error(out, MC_BAD_TRANSITION, "the alert is %s", a->status);
	if (apply)
		snprintf(a->status, sizeof(a->status), "%s",
		    acknowledge ? "acknowledged" : "resolved");
	return MC_OK;
}

/* Referral checks, before the pathway's (PROTOCOL.md §6). */
static int
referral_checks(struct model *m, const struct type *t, int sender,
    const json_t *ev, int slot, struct model_expect *out)
{
	const char *id = str(ev, "referral");
	struct model_referral *r;

	if (json_object_get(ev, "referral") == NULL)
		return MC_OK;
	r = model_referral_find(m, slot, id);
	if (strcmp(t->name, "referral.sent") == 0) {
		if (r != NULL)
			return expect_error(out, MC_REFERRAL_EXISTS,
			    "referral %s exists for the participant", id);
		int to = model_agent_find(m, str(ev, "to"));

		if (to < 0)
			return expect_error(out, MC_UNKNOWN_AGENT, "no agent %s",
			    str(ev, "to"));
		if (to == sender || m->agents[to].role != MR_PARTNER)
			return expect_error(out, MC_FORBIDDEN, "referral to %s: "
			    "only another partner may be a target", str(ev, "to"));
		return MC_OK;
	}
	if (r == NULL)
		return expect_error(out, MC_UNKNOWN_REFERRAL, "the participant has "
		    "no referral %s", id);
	return MC_OK;
}

static int
rights(struct model *m, const struct type *t, int sender, const json_t *ev,
    const struct model_participant *p, struct model_expect *out)
{
	const struct model_referral *r = model_referral_find(m,
	    (int)(p - m->participants), str(ev, "referral"));
	bool referent = (p->referents >> sender) & 1u;
	bool coordinator = m->agents[sender].role == MR_COORDINATOR;

	switch (t->who) {
	case W_TARGET:
		if (r->to != sender)
			return expect_error(out, MC_WRONG_AGENT, "only the target %s "
			    "answers", m->agents[r->to].id);
		return MC_OK;
	case W_SENDER:
		if (r->from != sender)
			return expect_error(out, MC_WRONG_AGENT, "only the sender %s "
			    "cancels", m->agents[r->from].id);
		return MC_OK;
	case W_REFERENT:
		if (!referent)
			return expect_error(out, MC_FORBIDDEN, "not a referent", NULL);
		return MC_OK;
	case W_REFERENT_OR_COORD:
		/* SPEC §2.5: a coordinator acts within the QPVs it covers. */
		if (referent || (coordinator && model_covers(m, sender, p->qpv)))
			return MC_OK;
		return expect_error(out, MC_FORBIDDEN, "neither a referent nor a "
		    "coordinator of QPV \"%s\"", p->qpv);
	case W_PARTNER:
	case W_COORDINATOR:
		return MC_OK;
	}
	return MC_OK;
}

/* The type's own transition, against the state. */
static int
transition(struct model *m, const struct type *t, const json_t *ev, int64_t at,
    struct model_participant *p, struct model_expect *out)
{
	const char *name = t->name;

	if (strncmp(name, "referral.", 9) == 0 && strcmp(name, "referral.sent") != 0) {
		const struct model_referral *r = model_referral_find(m,
		    (int)(p - m->participants), str(ev, "referral"));

		if (r->state != MRS_REQUESTED)
			return expect_error(out, MC_BAD_TRANSITION,
			    "the referral was already answered or cancelled", NULL);
		if (model_referral_expired(m, r, at))
			return expect_error(out, MC_BAD_TRANSITION,
			    "the referral has expired", NULL);
	}
	if (strcmp(name, "barrier.lifted") == 0 &&
	    p->barrier[barrier_index(str(ev, "barrier"))] != MBS_OPEN)
		return expect_error(out, MC_BAD_TRANSITION, "barrier %s is not open",
		    str(ev, "barrier"));
	if (strncmp(name, "appointment.", 12) == 0) {
		const struct model_appointment *a =
		    appointment_find(p, str(ev, "appointment"));
		bool scheduling = strcmp(name, "appointment.scheduled") == 0;

		if ((a == NULL && !scheduling) ||
		    (a != NULL && a->state != MAS_SCHEDULED))
			return expect_error(out, MC_BAD_TRANSITION,
			    "appointment %s is not scheduled", str(ev, "appointment"));
	}
	return MC_OK;
}

static void
apply(struct model *m, const struct type *t, int sender, const json_t *ev,
    int64_t at, int slot)
{
	struct model_participant *p = &m->participants[slot];
	const char *name = t->name;

	if (!p->exists) {
		p->exists = true;
		p->exited = false;
	}
	if (at > p->last_activity)
		p->last_activity = at;
	if (strcmp(name, "participant.identified") == 0) {
		snprintf(p->qpv, sizeof(p->qpv), "%s", str(ev, "qpv"));
		if (p->exited) {
			p->exited = false;
			p->referents = 0;
		}
	} else if (strcmp(name, "barrier.identified") == 0) {
		p->barrier[barrier_index(str(ev, "barrier"))] = MBS_OPEN;
	} else if (strcmp(name, "barrier.lifted") == 0) {
		p->barrier[barrier_index(str(ev, "barrier"))] = MBS_LIFTED;
	} else if (strcmp(name, "referral.sent") == 0) {
		struct model_referral *r;

		if (m->nreferrals == m->capreferrals) {
			m->capreferrals = m->capreferrals ? m->capreferrals * 2 : 256;
			m->referrals = realloc(m->referrals,
			    (size_t)m->capreferrals * sizeof(*m->referrals));
		}
		r = &m->referrals[m->nreferrals++];
		memset(r, 0, sizeof(*r));
		snprintf(r->id, sizeof(r->id), "%s", str(ev, "referral"));
		r->participant = slot;
		r->from = sender;
		r->to = model_agent_find(m, str(ev, "to"));
		r->state = MRS_REQUESTED;
		r->sent_at = at;
		p->nreferrals++;
	} else if (strcmp(name, "referral.accepted") == 0) {
		model_referral_find(m, slot, str(ev, "referral"))->state =
		    MRS_ACCEPTED;
	} else if (strcmp(name, "referral.declined") == 0) {
		model_referral_find(m, slot, str(ev, "referral"))->state =
		    MRS_DECLINED;
	} else if (strcmp(name, "referral.cancelled") == 0) {
		model_referral_find(m, slot, str(ev, "referral"))->state =
		    MRS_CANCELLED;
	} else if (strcmp(name, "appointment.scheduled") == 0) {
		if (appointment_find(p, str(ev, "appointment")) == NULL) {
			struct model_appointment *a = &p->appointments[p->nappointments++];

			snprintf(a->id, sizeof(a->id), "%s", str(ev, "appointment"));
			a->state = MAS_SCHEDULED;
		}
	} else if (strcmp(name, "appointment.attended") == 0 ||
	    strcmp(name, "appointment.missed") == 0) {
		appointment_find(p, str(ev, "appointment"))->state = MAS_CLOSED;
	} else if (strcmp(name, "support.started") == 0) {
		p->referents |= 1u << sender;
	} else if (strcmp(name, "support.ended") == 0) {
		p->referents &= ~(1u << sender);
	} else if (strcmp(name, "participant.exited") == 0) {
		p->exited = true;
	}
}

/* Everything after the event_id: 0 and applied, or the refusal's code. */
static int
judge(struct model *m, const struct type *t, int sender, const json_t *ev,
    struct model_expect *out)
{
	const char *name = t->name;
	int slot = model_participant_find(m, str(ev, "participant"));
	int64_t at = json_integer_value(json_object_get(ev, "occurred_at"));
	struct model_participant *p;
	int code;

	if (strcmp(name, "outreach.intervention") == 0)
		return MC_OK;
	if (strcmp(name, "alert.acknowledged") == 0 ||
	    strcmp(name, "alert.resolved") == 0)
		return alert_event(m, sender, ev,
		    strcmp(name, "alert.acknowledged") == 0, out, true);
	if (slot < 0) {
		fprintf(stderr, "model: participant %s is not one of the model's\n",
		    str(ev, "participant"));
		abort();
	}
	p = &m->participants[slot];
	if (strcmp(name, "participant.erased") == 0) {
		if (!p->exists)
			return expect_error(out, MC_UNKNOWN_PARTICIPANT,
			    "no pathway for %s", p->id);
		/* SPEC §2.5: a coordinator erases within the QPVs it covers. */
		if (!model_covers(m, sender, p->qpv))
			return expect_error(out, MC_FORBIDDEN, "QPV \"%s\" is outside "
			    "the coordinator's territory", p->qpv);
		model_erase(m, slot);
		return MC_OK;
	}
	if ((code = referral_checks(m, t, sender, ev, slot, out)) != MC_OK)
		return code;
	if (p->exists && p->exited && strcmp(name, "participant.identified") != 0)
		return expect_error(out, MC_BAD_TRANSITION, "%s has exited", p->id);
	if ((code = rights(m, t, sender, ev, p, out)) != MC_OK ||
	    (code = transition(m, t, ev, at, p, out)) != MC_OK)
		return code;
	apply(m, t, sender, ev, at, slot);
	return MC_OK;
}

void
model_event(struct model *m, int sender, const json_t *ev,
    struct model_expect *out)
{
	const struct model_agent *a = &m->agents[sender];
	const struct type *t;
	struct dedup_entry *seen;
	char key[MODEL_ID_SIZE + 80], *content;
	size_t klen;

	memset(out, 0, sizeof(*out));
	out->status = "ok";
	if ((t = validate(m, ev, out)) == NULL)
		return;
	if (a->role == MR_OPERATOR) {
		expect_error(out, MC_FORBIDDEN, "operators send no events", NULL);
		return;
	}
	if (t->who == W_COORDINATOR && a->role != MR_COORDINATOR) {
		expect_error(out, MC_FORBIDDEN, "%s is for coordinators", t->name);
		return;
	}
	klen = dedup_key(key, sizeof(key), a->id, str(ev, "event_id"));
	content = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
	if ((seen = dedup_find(m->dedup, key, klen)) != NULL) {
		if (strcmp(seen->content, content) == 0) {
			out->status = "duplicate";
			snprintf(out->why, sizeof(out->why), "the same event again");
		} else {
			expect_error(out, MC_CONFLICT, "event_id %s was used for "
			    "another event", str(ev, "event_id"));
		}
		free(content);
		return;
	}
	if (judge(m, t, sender, ev, out) == MC_OK) {
		dedup_add(m->dedup, key, klen, content);
		snprintf(out->why, sizeof(out->why), "valid");
	}
	free(content);
}
