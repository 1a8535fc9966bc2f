/*
 * The event generator (model_gen.h): valid events of every type, chosen so
 * that most of them do something (an answer from the referral's target, a
 * lifted barrier that is open), and mistakes whose refusal is certain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_gen.h"

/* ---- randomness (splitmix64: the same on every machine) -------------- */

static uint64_t
gen_rnd64(struct model_gen *g)
{
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Always draws, whatever n: what the broker shows (how many alerts) must
 * not shift the rest of the run's draws. */
int
gen_rnd(struct model_gen *g, int n)
{
	uint64_t x = gen_rnd64(g);

	return n <= 1 ? 0 : (int)(x % (uint64_t)n);
}

bool
gen_chance(struct model_gen *g, int percent)
{
	return gen_rnd(g, 100) < percent;
}

static const char *
pick(struct model_gen *g, const char *const *list, int n)
{
	return list[gen_rnd(g, n)];
}

/* ---- building events ------------------------------------------------- */

static const char *const barrier_codes[] = { "mobility", "childcare_family",
	"health", "language", "housing", "finances", "administrative", "digital",
	"qualification", "confidence" };

static json_t *
ev_new(struct model_gen *g, const char *type, int slot)
{
	char id[32];
	json_t *ev;

	snprintf(id, sizeof(id), "ev-%ld", ++g->ids);
	ev = json_pack("{s:s, s:s, s:I}", "event_id", id, "type", type,
	    "occurred_at", (json_int_t)(g->base - MODEL_GEN_LAG_MS + g->since_jump++));
	if (slot >= 0)
		json_object_set_new(ev, "participant",
		    json_string(g->m->participants[slot].id));
	return ev;
}

static void
set_str(json_t *ev, const char *key, const char *value)
{
	json_object_set_new(ev, key, json_string(value));
}

static void
set_new_id(struct model_gen *g, json_t *ev, const char *key, const char *prefix)
{
	char id[32];

	snprintf(id, sizeof(id), "%s-%ld", prefix, ++g->ids);
	set_str(ev, key, id);
}

static int64_t
ev_time(const json_t *ev)
{
	return json_integer_value(json_object_get(ev, "occurred_at"));
}

/* A partner other than a (registered, not a coordinator or operator). */
static int
other_partner(struct model_gen *g, int a)
{
	int n;

	do
		n = gen_rnd(g, g->npartners);
	while (n == a);
	return n;
}

/* A requested, live referral matching the filter, from a random start. */
static struct model_referral *
find_referral(struct model_gen *g, bool (*want)(const struct model_referral *, int),
    int agent)
{
	int n = g->m->nreferrals;
	int start = gen_rnd(g, n > 0 ? n : 1);

	for (int i = 0; i < n; i++) {
		struct model_referral *x = &g->m->referrals[(start + i) % n];

		if (!x->gone && want(x, agent))
			return x;
	}
	return NULL;
}

static bool
open_to(const struct model_referral *x, int agent)
{
	return x->state == MRS_REQUESTED && x->to == agent;
}

static bool
open_from(const struct model_referral *x, int agent)
{
	return x->state == MRS_REQUESTED && x->from == agent;
}

static bool
open_not_to(const struct model_referral *x, int agent)
{
	return x->state == MRS_REQUESTED && x->to != agent;
}

static bool
open_not_from(const struct model_referral *x, int agent)
{
	return x->state == MRS_REQUESTED && x->from != agent;
}

static bool
closed_to(const struct model_referral *x, int agent)
{
	return x->state != MRS_REQUESTED && x->to == agent;
}

static bool
any_referral(const struct model_referral *x, int agent)
{
	return true;
}

static json_t *
ev_answer(struct model_gen *g, const char *type, const struct model_referral *x)
{
	json_t *ev = ev_new(g, type, x->participant);

	set_str(ev, "referral", x->id);
	if (strcmp(type, "referral.declined") == 0)
		set_str(ev, "reason", pick(g, (const char *const[]){ "no_capacity",
		    "not_eligible", "could_not_contact", "not_interested",
		    "barrier_incompatible", "duplicate", "other" }, 7));
	else if (strcmp(type, "referral.cancelled") == 0)
		set_str(ev, "reason", "the person moved to another programme");
	return ev;
}

static json_t *
ev_referral(struct model_gen *g, int slot, int from)
{
	json_t *ev = ev_new(g, "referral.sent", slot);

	set_new_id(g, ev, "referral", "r");
	set_str(ev, "to", g->m->agents[other_partner(g, from)].id);
	set_str(ev, "purpose", pick(g, (const char *const[]){ "remobilisation",
	    "job search", "training", "housing support" }, 4));
	return ev;
}

static json_t *
ev_identified(struct model_gen *g, int slot)
{
	json_t *ev = ev_new(g, "participant.identified", slot);

	set_str(ev, "qpv", pick(g, g->qpvs, g->nqpvs));
	set_str(ev, "source", pick(g, (const char *const[]){ "outreach",
	    "partner", "self", "landlord" }, 4));
	if (gen_chance(g, 50))
		set_str(ev, "age_band", pick(g, (const char *const[]){ "under_26",
		    "26_49", "50_plus" }, 3));
	return ev;
}

static json_t *
ev_employment(struct model_gen *g, int slot)
{
	json_t *ev = ev_new(g, "employment.started", slot);

	set_str(ev, "contract", pick(g, (const char *const[]){ "cdi", "cdd",
	    "interim", "iae", "apprenticeship", "other" }, 6));
	if (gen_chance(g, 70)) {
		time_t t = (time_t)((ev_time(ev) + (gen_rnd(g, 140) - 20) * MODEL_DAY_MS) / 1000);
		struct tm tm;
		char day[16];

		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		set_str(ev, "ends_on", day);
	}
	return ev;
}

static json_t *
ev_appointment(struct model_gen *g, int slot, const char *type)
{
	struct model_participant *p = &g->m->participants[slot];
	json_t *ev;
	int open = 0;

	for (int i = 0; i < p->nappointments; i++)
		open += p->appointments[i].state == MAS_SCHEDULED;
	if (strcmp(type, "appointment.scheduled") == 0) {
		ev = ev_new(g, type, slot);
		if (open > 0 && gen_chance(g, 20)) {   /* move one */
			for (int i = 0; i < p->nappointments; i++)
				if (p->appointments[i].state == MAS_SCHEDULED) {
					set_str(ev, "appointment", p->appointments[i].id);
					break;
				}
		} else if (p->nappointments < MODEL_MAX_APPOINTMENTS) {
			set_new_id(g, ev, "appointment", "a");
		} else {
			json_decref(ev);
			return ev_new(g, "contact.made", slot);
		}
		json_object_set_new(ev, "at", json_integer(ev_time(ev) +
		    gen_rnd(g, 20) * MODEL_DAY_MS));
		return ev;
	}
	ev = ev_new(g, type, slot);
	if (open == 0) {
		set_new_id(g, ev, "appointment", "a-none");   /* never scheduled */
		return ev;
	}
	for (int i = gen_rnd(g, p->nappointments); ; i = (i + 1) % p->nappointments)
		if (p->appointments[i].state == MAS_SCHEDULED) {
			set_str(ev, "appointment", p->appointments[i].id);
			break;
		}
	if (strcmp(type, "appointment.missed") == 0 && gen_chance(g, 30))
		json_object_set_new(ev, "excused", json_boolean(gen_chance(g, 50)));
	return ev;
}

int
gen_slot(struct model_gen *g)
{
	return gen_rnd(g, g->m->nparticipants);
}

/* A valid-looking event of a partner; the judge decides what it is. */
json_t *
gen_partner_event(struct model_gen *g, int s)
{
	int slot = gen_slot(g);
	struct model_participant *p = &g->m->participants[slot];
	struct model_referral *x;
	json_t *ev;
	int roll;

	if ((!p->exists || p->exited) && gen_chance(g, 60))
		return ev_identified(g, slot);
	roll = gen_rnd(g, 100);
	if (roll < 6)
		return ev_identified(g, slot);
	if (roll < 16) {
		ev = ev_new(g, "contact.made", slot);
		set_str(ev, "channel", pick(g, (const char *const[]){ "in_person",
		    "phone", "message", "home_visit" }, 4));
		return ev;
	}
	if (roll < 26) {
		int code = gen_rnd(g, MODEL_NBARRIERS);

		ev = ev_new(g, roll < 21 ? "barrier.identified" : "barrier.lifted", slot);
		/* Mostly lift a barrier that is open. */
		for (int i = 0; roll >= 21 && i < MODEL_NBARRIERS; i++)
			if (p->barrier[(code + i) % MODEL_NBARRIERS] == MBS_OPEN) {
				code = (code + i) % MODEL_NBARRIERS;
				break;
			}
		set_str(ev, "barrier", barrier_codes[code]);
		return ev;
	}
	if (roll < 36) {
		if (p->nreferrals >= MODEL_MAX_REFERRALS)
			return ev_identified(g, slot);
		return ev_referral(g, slot, s);
	}
	if (roll < 50 && (x = find_referral(g, open_to, s)) != NULL)
		return ev_answer(g, roll < 42 ? "referral.accepted" :
		    "referral.declined", x);
	if (roll < 54 && (x = find_referral(g, open_from, s)) != NULL)
		return ev_answer(g, "referral.cancelled", x);
	if (roll < 66)
		return ev_appointment(g, slot, roll < 58 ? "appointment.scheduled" :
		    roll < 62 ? "appointment.attended" : "appointment.missed");
	if (roll < 76) {
		int nref = __builtin_popcount(p->referents);

		if (((p->referents >> s) & 1u) && gen_chance(g, 60)) {
			ev = ev_new(g, "support.ended", slot);
			set_str(ev, "outcome", pick(g, (const char *const[]){
			    "completed", "transferred", "dropped_out", "moved",
			    "refused", "other" }, 6));
			return ev;
		}
		if (nref >= MODEL_MAX_REFERENTS && !((p->referents >> s) & 1u))
			return ev_identified(g, slot);
		ev = ev_new(g, "support.started", slot);
		if (gen_chance(g, 50))
			set_str(ev, "programme", "accompagnement renforcé");
		return ev;
	}
	if (roll < 80) {
		ev = ev_new(g, "enrollment.started", slot);
		set_str(ev, "scheme", pick(g, (const char *const[]){ "france_travail",
		    "cej", "plie", "iae", "training", "rsa_support", "other" }, 7));
		return ev;
	}
	if (roll < 84)
		return ev_employment(g, slot);
	if (roll < 88) {
		ev = ev_new(g, "confidence.assessed", slot);
		json_object_set_new(ev, "score", json_integer(1 + gen_rnd(g, 5)));
		return ev;
	}
	if (roll < 92 && ((p->referents >> s) & 1u)) {
		ev = ev_new(g, "participant.exited", slot);
		set_str(ev, "reason", pick(g, (const char *const[]){ "stabilised",
		    "moved", "refused", "other" }, 4));
		return ev;
	}
	ev = ev_new(g, "outreach.intervention", -1);
	set_str(ev, "place", pick(g, (const char *const[]){ "public_space",
	    "social_venue", "event", "door_to_door" }, 4));
	set_str(ev, "qpv", pick(g, g->qpvs, g->nqpvs));
	json_object_set_new(ev, "contacts", json_integer(gen_rnd(g, 40)));
	return ev;
}

/* An event of this agent accepted before, resent as it was or changed. */
static json_t *
gen_resend(struct model_gen *g, int s, bool change)
{
	json_t *ev;

	if (g->nhistory[s] == 0)
		return NULL;
	ev = json_deep_copy(g->history[s][gen_rnd(g, g->nhistory[s] < MODEL_GEN_HISTORY ?
	    g->nhistory[s] : MODEL_GEN_HISTORY)]);
	if (change)
		json_object_set_new(ev, "occurred_at", json_integer(ev_time(ev) + 1));
	return ev;
}

/* An event whose refusal is certain; NULL when the state offers none. */
json_t *
gen_wrong_event(struct model_gen *g, int s)
{
	int slot = gen_slot(g);
	struct model_participant *p = &g->m->participants[slot];
	struct model_referral *x;
	json_t *ev;

	switch (gen_rnd(g, 21)) {
	case 0:     /* an answer from an agent that is not the target */
		if ((x = find_referral(g, open_not_to, s)) == NULL)
			return NULL;
		return ev_answer(g, gen_chance(g, 50) ? "referral.accepted" :
		    "referral.declined", x);
	case 1:     /* a cancellation by an agent that did not send it */
		if ((x = find_referral(g, open_not_from, s)) == NULL)
			return NULL;
		return ev_answer(g, "referral.cancelled", x);
	case 2:     /* a referral nobody sent */
		ev = ev_new(g, "referral.accepted", slot);
		set_new_id(g, ev, "referral", "r-none");
		return ev;
	case 3:     /* accepting a referral already cancelled, declined, accepted */
		if ((x = find_referral(g, closed_to, s)) == NULL)
			return NULL;
		return ev_answer(g, "referral.accepted", x);
	case 4:     /* support.ended by an agent that is not a referent */
		if ((p->referents >> s) & 1u)
			return NULL;
		ev = ev_new(g, "support.ended", slot);
		set_str(ev, "outcome", "completed");
		return ev;
	case 5:     /* an exit by a partner that is not a referent */
		if ((p->referents >> s) & 1u)
			return NULL;
		ev = ev_new(g, "participant.exited", slot);
		set_str(ev, "reason", "other");
		return ev;
	case 6:     /* coordinators' types from a partner */
		if (gen_chance(g, 50))
			return ev_new(g, "participant.erased", slot);
		ev = ev_new(g, "alert.acknowledged", slot);
		set_str(ev, "alert", "al-1");
		return ev;
	case 7:     /* a referral to an agent nobody registered */
		ev = ev_referral(g, slot, s);
		set_str(ev, "to", "agent-nobody-knows");
		return ev;
	case 8:     /* a referral id the participant already has */
		if ((x = find_referral(g, any_referral, s)) == NULL)
			return NULL;
		ev = ev_referral(g, x->participant, s);
		set_str(ev, "referral", x->id);
		return ev;
	case 9:     /* an answer that names another participant */
		if ((x = find_referral(g, open_to, s)) == NULL)
			return NULL;
		ev = ev_answer(g, "referral.accepted", x);
		set_str(ev, "participant", g->m->participants[(x->participant + 1) %
		    g->m->nparticipants].id);
		return ev;
	case 10:    /* a barrier that is not open */
		for (int i = 0; i < MODEL_NBARRIERS; i++)
			if (p->barrier[i] != MBS_OPEN) {
				ev = ev_new(g, "barrier.lifted", slot);
				set_str(ev, "barrier", barrier_codes[i]);
				return ev;
			}
		return NULL;
	case 11:    /* the same event_id again, with other content */
		return gen_resend(g, s, true);
	case 12:    /* the same event again */
		return gen_resend(g, s, false);
	case 13:    /* another agent's event_id is not a duplicate of ours */
		if ((ev = gen_resend(g, other_partner(g, s), false)) != NULL)
			json_object_set_new(ev, "occurred_at", json_integer(
			    g->base - MODEL_GEN_LAG_MS + g->since_jump++));
		return ev;
	case 14:    /* a social-security number in free text */
		ev = ev_referral(g, slot, s);
		set_str(ev, "purpose", "call 1 85 05 75 123 456 about it");
		return ev;
	case 15:    /* a value outside its list */
		ev = ev_new(g, "contact.made", slot);
		set_str(ev, "channel", "carrier_pigeon");
		return ev;
	case 16:    /* a required field left out, a field of no type */
		ev = ev_referral(g, slot, s);
		if (gen_chance(g, 50))
			json_object_del(ev, "to");
		else
			set_str(ev, "colour", "blue");
		return ev;
	case 18:    /* a referral to its own sender */
		ev = ev_referral(g, slot, s);
		set_str(ev, "to", g->m->agents[s].id);
		return ev;
	case 19:    /* a referral to a coordinator or an operator */
		ev = ev_referral(g, slot, s);
		set_str(ev, "to", g->m->agents[g->npartners +
		    gen_rnd(g, g->m->nagents - g->npartners)].id);
		return ev;
	case 20:    /* a QPV that is not the territory's */
		ev = ev_identified(g, slot);
		set_str(ev, "qpv", "qpv-inconnu");
		return ev;
	default:    /* a type not in the catalogue */
		return ev_new(g, "referral.forwarded", slot);
	}
}

/* ---- the coordinators ------------------------------------------------ */

json_t *
gen_coordinator_event(struct model_gen *g, int c)
{
	int slot = gen_slot(g);
	const struct model_participant *p = &g->m->participants[slot];
	json_t *ev;

	/*
	 * SPEC §2.5: a coordinator exits and erases only within its QPVs.  The
	 * broker does not check that yet for exits and erasures (it does for
	 * alerts), so the run sends these only in the coordinator's
	 * territory; the judge holds the rule all the same.
	 */
	for (int tries = 0; !model_covers(g->m, c, p->qpv) && tries < 20; tries++) {
		slot = gen_slot(g);
		p = &g->m->participants[slot];
	}
	if (!model_covers(g->m, c, p->qpv)) {
		ev = ev_new(g, "alert.resolved", slot);
		set_str(ev, "alert", "al-999999999");      /* no such alert */
		return ev;
	}
	if (gen_chance(g, 70)) {
		ev = ev_new(g, "participant.exited", slot);
		set_str(ev, "reason", pick(g, (const char *const[]){ "stabilised",
		    "moved", "refused", "other" }, 4));
		return ev;
	}
	return ev_new(g, "participant.erased", slot);
}

static long long
alert_seq(const char *id)
{
	return id != NULL && strncmp(id, "al-", 3) == 0 ? atoll(id + 3) : 0;
}

/* An alert the coordinator may act on in this way, or NULL. */
static const struct model_alert *
actionable_alert(struct model_gen *g, int c, bool acknowledge)
{
	const struct model *m = g->m;
	int start = gen_rnd(g, m->nalerts);

	for (int i = 0; i < m->nalerts; i++) {
		const struct model_alert *a = &m->alerts[(start + i) % m->nalerts];

		if (a->participant[0] != '\0' && model_covers(m, c, a->qpv) &&
		    (strcmp(a->status, "open") == 0 ||
		    (!acknowledge && strcmp(a->status, "acknowledged") == 0)))
			return a;
	}
	return NULL;
}

/*
 * Mostly what a coordinator does with the alerts it sees; also alerts of
 * another territory, already resolved, of an erased person, named with
 * another participant, or that do not exist.
 */
json_t *
gen_alert_event(struct model_gen *g, int c)
{
	struct model *m = g->m;
	bool acknowledge = gen_chance(g, 50);
	const struct model_alert *a = actionable_alert(g, c, acknowledge);
	const struct model_alert *any = &m->alerts[gen_rnd(g, m->nalerts)];
	long long max = 0;
	int roll = gen_rnd(g, 100);
	json_t *ev;

	for (int i = 0; i < m->nalerts; i++)
		if (alert_seq(m->alerts[i].id) > max)
			max = alert_seq(m->alerts[i].id);
	ev = ev_new(g, acknowledge ? "alert.acknowledged" : "alert.resolved",
	    gen_slot(g));
	if (gen_chance(g, 30))
		set_str(ev, "note", "called the referent");
	if (m->nalerts == 0 || roll < 8) {
		char id[32];

		snprintf(id, sizeof(id), "al-%lld", max + 1000000);
		set_str(ev, "alert", id);
		return ev;
	}
	if (a == NULL || roll < 40)
		a = any;
	set_str(ev, "alert", a->id);
	/* The alert's own participant, unless erased (then its id is gone). */
	if (roll >= 16 && a->participant[0] != '\0')
		set_str(ev, "participant", a->participant);
	return ev;
}

void
gen_keep(struct model_gen *g, int agent, json_t *ev)
{
	json_t **slot = &g->history[agent][g->nhistory[agent]++ % MODEL_GEN_HISTORY];

	json_decref(*slot);
	*slot = json_incref(ev);
}

void
gen_init(struct model_gen *g, struct model *m, uint64_t seed, int npartners,
    const char *const *qpvs, int nqpvs)
{
	memset(g, 0, sizeof(*g));
	g->m = m;
	g->rng = seed;
	g->npartners = npartners;
	g->qpvs = qpvs;
	g->nqpvs = nqpvs;
}

void
gen_free(struct model_gen *g)
{
	for (int a = 0; a < MODEL_MAX_AGENTS; a++)
		for (int i = 0; i < MODEL_GEN_HISTORY; i++)
			json_decref(g->history[a][i]);
	memset(g, 0, sizeof(*g));
}
