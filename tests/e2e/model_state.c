/*
 * The model's participant against the pathway the broker shows (the
 * "state" of the participant query, SPEC §3): QPV, exit, referents,
 * referrals and their states, barriers, scheduled appointments, last
 * activity.  Only what SPEC says a pathway holds is compared.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

static bool
differs(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return false;
}

static const char *
item_str(const json_t *item, const char *key)
{
	const char *s = json_string_value(json_object_get(item, key));

	return s != NULL ? s : "";
}

static const char *const referral_states[] = { "requested", "accepted",
	"declined", "cancelled" };

static bool
referrals_match(const struct model *m, int slot, const json_t *list,
    int64_t now, char *why, size_t len)
{
	size_t i;
	const json_t *item;
	int n = 0;

	json_array_foreach(list, i, item) {
		const char *id = item_str(item, "id"), *state = item_str(item, "state");
		const struct model_referral *r = NULL;

		for (int k = 0; k < m->nreferrals && r == NULL; k++)
			if (!m->referrals[k].gone && m->referrals[k].participant == slot &&
			    strcmp(m->referrals[k].id, id) == 0)
				r = &m->referrals[k];
		if (r == NULL)
			return differs(why, len, "referral %s is not in the model", id);
		/* SPEC §3: an expired referral shows as expired (or as still
		 * requested, the state it was left in). */
		if (strcmp(state, referral_states[r->state]) != 0 &&
		    !(strcmp(state, "expired") == 0 && model_referral_expired(m, r, now)))
			return differs(why, len, "referral %s is %s, the model says %s",
			    id, state, referral_states[r->state]);
		if (strcmp(item_str(item, "from"), m->agents[r->from].id) != 0 ||
		    strcmp(item_str(item, "to"), m->agents[r->to].id) != 0)
			return differs(why, len, "referral %s goes from %s to %s, the "
			    "model says from %s to %s", id, item_str(item, "from"),
			    item_str(item, "to"), m->agents[r->from].id, m->agents[r->to].id);
		n++;
	}
	if (n != m->participants[slot].nreferrals)
		return differs(why, len, "%d referrals, the model has %d", n,
		    m->participants[slot].nreferrals);
	return true;
}

static bool
referents_match(const struct model *m, const struct model_participant *p,
    const json_t *list, char *why, size_t len)
{
	uint32_t seen = 0;
	size_t i;
	const json_t *item;

	json_array_foreach(list, i, item) {
		int a = model_agent_find(m, item_str(item, "agent"));

		if (a < 0 || !((p->referents >> a) & 1u))
			return differs(why, len, "%s is a referent, not in the model",
			    item_str(item, "agent"));
		seen |= 1u << a;
	}
	if (seen != p->referents)
		return differs(why, len, "referents %#x, the model has %#x", seen,
		    p->referents);
	return true;
}

static bool
barriers_match(const struct model_participant *p, const json_t *list,
    char *why, size_t len)
{
	static const char *const codes[MODEL_NBARRIERS] = { "mobility",
		"childcare_family", "health", "language", "housing", "finances",
		"administrative", "digital", "qualification", "confidence" };
	static const char *const states[] = { "", "open", "lifted" };

	for (int b = 0; b < MODEL_NBARRIERS; b++) {
		const char *state = "";
		size_t i;
		const json_t *item;

		json_array_foreach(list, i, item)
			if (strcmp(item_str(item, "code"), codes[b]) == 0)
				state = item_str(item, "state");
		if (strcmp(state, states[p->barrier[b]]) != 0)
			return differs(why, len, "barrier %s is \"%s\", the model says "
			    "\"%s\"", codes[b], state, states[p->barrier[b]]);
	}
	return true;
}

static bool
appointments_match(const struct model_participant *p, const json_t *list,
    char *why, size_t len)
{
	int scheduled = 0, listed = 0;
	size_t i;
	const json_t *item;

	for (int a = 0; a < p->nappointments; a++)
		scheduled += p->appointments[a].state == MAS_SCHEDULED;
	json_array_foreach(list, i, item) {
		const char *id = item_str(item, "id");
		bool in_model = false;

		if (strcmp(item_str(item, "state"), "scheduled") != 0)
			continue;
		listed++;
		for (int a = 0; a < p->nappointments; a++)
			in_model |= strcmp(p->appointments[a].id, id) == 0 &&
			    p->appointments[a].state == MAS_SCHEDULED;
		if (!in_model)
			return differs(why, len, "appointment %s is scheduled, not in "
			    "the model", id);
	}
	if (listed != scheduled)
		return differs(why, len, "%d appointments scheduled, the model has %d",
		    listed, scheduled);
	return true;
}

bool
model_state_matches(const struct model *m, int slot, const json_t *state,
    int64_t now, char *why, size_t len)
{
	const struct model_participant *p = &m->participants[slot];
	const char *phase = json_string_value(json_object_get(state, "phase"));
	const char *qpv = json_string_value(json_object_get(state, "qpv"));
	json_int_t last = json_integer_value(json_object_get(state, "last_activity"));

	if (phase == NULL || qpv == NULL)
		return differs(why, len, "the pathway has no phase or qpv");
	if (strcmp(qpv, p->qpv) != 0)
		return differs(why, len, "qpv \"%s\", the model says \"%s\"", qpv, p->qpv);
	if ((strcmp(phase, "exited") == 0) != p->exited)
		return differs(why, len, "phase %s, the model says %s", phase,
		    p->exited ? "exited" : "not exited");
	if (last != p->last_activity)
		return differs(why, len, "last activity %lld, the model says %lld",
		    (long long)last, (long long)p->last_activity);
	return referents_match(m, p, json_object_get(state, "referents"), why, len) &&
	    referrals_match(m, slot, json_object_get(state, "referrals"), now, why, len) &&
	    barriers_match(p, json_object_get(state, "barriers"), why, len) &&
	    appointments_match(p, json_object_get(state, "appointments"), why, len);
}
