/*
 * How each event changes a pathway (SPEC §2.2, §3; PROTOCOL.md §6).
 *
 * pathway_apply() checks, in this order: the sender may send anything at
 * all (operators may not); the event is a pathway event at all (alerts,
 * erasure and outreach are the broker's); the pathway is not closed; the
 * sender's rights for this type against the state (referral target or
 * sender, referent, coordinator); then the type's own transition.  The
 * event is applied to a copy, which replaces *pw only when everything
 * succeeded, so a refused event leaves no trace.
 *
 * A participant never identified may still be the subject of any event:
 * partners meet people before anyone records participant.identified, and
 * refusing their contact.made would lose the proof of contact.  The first
 * event opens the pathway in phase "identified"; no_referent waits for a
 * real participant.identified (its rule speaks of identified participants).
 */
#include <string.h>

#include "calendar.h"
#include "pathway.h"
#include "relais_proto.h"

struct apply_ctx {
	const struct rl_event *ev;
	const struct pw_actor *actor;
	int64_t at;
	const struct rule_config *rules;    /* NULL: nothing expires */
};

typedef int (*apply_fn)(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err);

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Copy a NUL-terminated string into a zeroed fixed buffer, truncating. */
static void
set_cstr(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memset(dst, 0, size);
	memcpy(dst, src, n);
}

static bool
str_is(const char *s, struct rl_str v)
{
	return strlen(s) == v.len && (v.len == 0 || memcmp(s, v.p, v.len) == 0);
}

/* Copy an event string into a fixed buffer; too long is the event's fault. */
static int
set_str(char *dst, size_t size, struct rl_str v, enum ev_field f,
    struct rl_error *err)
{
	if (v.len == 0 || v.len >= size || memchr(v.p, '\0', v.len) != NULL)
		return rl_error_set(err, RL_E_BAD_FIELD, ev_field_name(f),
		    "%s must be 1 to %zu bytes, without NUL",
		    ev_field_name(f), size - 1);
	memset(dst, 0, size);
	memcpy(dst, v.p, v.len);
	return RL_OK;
}

/* event_parse() already requires these; checked again so that a caller
 * building events by hand cannot make us read an absent field. */
static int
need(const struct rl_event *ev, enum ev_field f, struct rl_error *err)
{
	if (event_has(ev, f))
		return RL_OK;
	return rl_error_set(err, RL_E_MISSING_FIELD, ev_field_name(f),
	    "%s requires %s", ev_type_name(ev->type), ev_field_name(f));
}

static int
too_many(struct rl_error *err, enum ev_field f, const char *what, int limit)
{
	return rl_error_set(err, RL_E_BAD_TRANSITION, ev_field_name(f),
	    "this participant already has %d %s, the most a pathway keeps",
	    limit, what);
}

struct pw_referral *
pathway_find_referral(struct pathway *pw, struct rl_str id)
{
	for (int i = 0; i < pw->nreferrals; i++)
		if (str_is(pw->referrals[i].id, id))
			return &pw->referrals[i];
	return NULL;
}

static int
find_referent(const struct pathway *pw, const char *agent)
{
	for (int i = 0; i < pw->nreferents; i++)
		if (strcmp(pw->referents[i].id, agent) == 0)
			return i;
	return -1;
}

static struct pw_barrier *
find_barrier(struct pathway *pw, struct rl_str code)
{
	for (int i = 0; i < pw->nbarriers; i++)
		if (str_is(pw->barriers[i].code, code))
			return &pw->barriers[i];
	return NULL;
}

static struct pw_appointment *
find_appointment(struct pathway *pw, struct rl_str id)
{
	for (int i = 0; i < pw->nappointments; i++)
		if (str_is(pw->appointments[i].id, id))
			return &pw->appointments[i];
	return NULL;
}

static void
advance(struct pathway *pw, enum pw_phase phase)
{
	if (pw->phase < phase)
		pw->phase = phase;
}

void
pathway_init(struct pathway *pw, const char *participant, size_t len)
{
	memset(pw, 0, sizeof(*pw));
	if (len >= sizeof(pw->participant))
		len = sizeof(pw->participant) - 1;
	memcpy(pw->participant, participant, len);
	pw->phase = PW_PHASE_NEW;
}

enum pw_referral_state
pathway_referral_state(const struct pw_referral *r,
    const struct rule_config rules[RULE__COUNT], int64_t now)
{
	const struct rule_config *rc;

	if (r->state != PW_REF_REQUESTED || rules == NULL)
		return r->state;
	rc = &rules[RULE_REFERRAL_EXPIRED];
	if (rc->enabled && now >= r->sent_at + (int64_t)rc->threshold * PW_DAY_MS)
		return PW_REF_EXPIRED;
	return PW_REF_REQUESTED;
}

/* --- who may send what, against the state (PROTOCOL.md §6) --- */

static int
check_referral_party(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, bool target, struct rl_error *err)
{
	struct pw_referral *r;
	int rc;

	if ((rc = need(ev, EF_REFERRAL, err)) != RL_OK)
		return rc;
	if ((r = pathway_find_referral(pw, ev->referral)) == NULL)
		return rl_error_set(err, RL_E_UNKNOWN_REFERRAL, "referral",
		    "no referral %.*s for this participant",
		    (int)ev->referral.len, ev->referral.p);
	if (strcmp(actor->id, target ? r->to : r->from) != 0)
		return rl_error_set(err, RL_E_WRONG_AGENT, "referral",
		    "only %s, the referral's %s, may send %s",
		    target ? r->to : r->from, target ? "target" : "sender",
		    ev_type_name(ev->type));
	return RL_OK;
}

static int
check_rights(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, struct rl_error *err)
{
	bool coordinator = actor->kind == AK_COORDINATOR;
	bool referent = find_referent(pw, actor->id) >= 0;

	switch (ev_type_sender_rule(ev->type)) {
	case EV_ANY_PARTNER:
		return RL_OK;
	case EV_REFERRAL_TARGET:
		return check_referral_party(pw, ev, actor, true, err);
	case EV_REFERRAL_SENDER:
		return check_referral_party(pw, ev, actor, false, err);
	case EV_REFERENT:
		if (referent)
			return RL_OK;
		return rl_error_set(err, RL_E_FORBIDDEN, "",
		    "only a current referent of the participant may send %s",
		    ev_type_name(ev->type));
	case EV_REFERENT_OR_COORDINATOR:
		if (referent || coordinator)
			return RL_OK;
		return rl_error_set(err, RL_E_FORBIDDEN, "",
		    "only a current referent or a coordinator may send %s",
		    ev_type_name(ev->type));
	case EV_COORDINATOR:
		if (coordinator)
			return RL_OK;
		return rl_error_set(err, RL_E_FORBIDDEN, "",
		    "only a coordinator may send %s", ev_type_name(ev->type));
	}
	return rl_error_set(err, RL_E_FORBIDDEN, "",
	    "no sender rule for %s", ev_type_name(ev->type));
}

/* --- one function per pathway event type --- */

/*
 * After an exit, participant.identified starts a new episode: what
 * described the closed one (referents, the run of misses, a drop-out) no
 * longer applies, and the rules measure from the reopening.  Referrals,
 * barriers, enrollments and the employment are facts about the person and
 * stay; a referral still requested may still be answered.
 */
static void
reopen(struct pathway *pw, int64_t at)
{
	pw->phase = PW_PHASE_IDENTIFIED;
	memset(pw->identified_by, 0, sizeof(pw->identified_by));
	pw->identified_at = at;
	pw->reopened_at = at;
	pw->nreferents = 0;
	memset(pw->referents, 0, sizeof(pw->referents));
	pw->miss_run = 0;
	memset(pw->miss_times, 0, sizeof(pw->miss_times));
	pw->last_miss_at = 0;
	pw->dropped_out_at = 0;
	memset(pw->dropped_by, 0, sizeof(pw->dropped_by));
	memset(pw->exit_reason, 0, sizeof(pw->exit_reason));
	pw->exited_at = 0;
}

static int
on_identified(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	int rc;

	if ((rc = need(c->ev, EF_QPV, err)) != RL_OK)
		return rc;
	if ((rc = set_str(pw->qpv, sizeof(pw->qpv), c->ev->qpv, EF_QPV, err)))
		return rc;
	if (pw->phase == PW_PHASE_EXITED)
		reopen(pw, c->at);
	else if (pw->identified_at == 0)
		pw->identified_at = c->at;
	/* Whoever brought the person in hears when nobody took over (§4). */
	if (pw->identified_by[0] == '\0')
		set_cstr(pw->identified_by, sizeof(pw->identified_by), c->actor->id);
	return RL_OK;
}

static int
on_contact(struct pathway *pw, const struct apply_ctx *c, struct rl_error *err)
{
	return RL_OK;               /* last_activity is all it changes */
}

/* Identifying an open barrier again is harmless: two partners may both
 * see it.  Identifying a lifted one reopens it. */
static int
on_barrier_identified(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_barrier *b;
	int rc;

	if ((rc = need(c->ev, EF_BARRIER, err)) != RL_OK)
		return rc;
	if ((b = find_barrier(pw, c->ev->barrier)) != NULL) {
		if (b->state == PW_BARRIER_LIFTED) {
			b->state = PW_BARRIER_OPEN;
			b->identified_at = c->at;
			b->lifted_at = 0;
		}
		return RL_OK;
	}
	if (pw->nbarriers == PW_MAX_BARRIERS)
		return too_many(err, EF_BARRIER, "barriers", PW_MAX_BARRIERS);
	b = &pw->barriers[pw->nbarriers];
	if ((rc = set_str(b->code, sizeof(b->code), c->ev->barrier, EF_BARRIER,
	    err)) != RL_OK)
		return rc;
	b->state = PW_BARRIER_OPEN;
	b->identified_at = c->at;
	b->lifted_at = 0;
	pw->nbarriers++;
	return RL_OK;
}

static int
on_barrier_lifted(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	const struct rl_str code = c->ev->barrier;
	struct pw_barrier *b;
	int rc;

	if ((rc = need(c->ev, EF_BARRIER, err)) != RL_OK)
		return rc;
	if ((b = find_barrier(pw, code)) == NULL)
		return rl_error_set(err, RL_E_BAD_TRANSITION, "barrier",
		    "barrier %.*s was never identified for this participant",
		    (int)code.len, code.p);
	if (b->state == PW_BARRIER_LIFTED)
		return rl_error_set(err, RL_E_BAD_TRANSITION, "barrier",
		    "barrier %.*s is already lifted", (int)code.len, code.p);
	b->state = PW_BARRIER_LIFTED;
	b->lifted_at = c->at;
	return RL_OK;
}

static int
on_referral_sent(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	const struct rl_event *ev = c->ev;
	struct pw_referral *r;
	int rc;

	if ((rc = need(ev, EF_REFERRAL, err)) != RL_OK ||
	    (rc = need(ev, EF_TO, err)) != RL_OK)
		return rc;
	if (pathway_find_referral(pw, ev->referral) != NULL)
		return rl_error_set(err, RL_E_REFERRAL_EXISTS, "referral",
		    "referral %.*s was already sent",
		    (int)ev->referral.len, ev->referral.p);
	if (pw->nreferrals == PW_MAX_REFERRALS)
		return too_many(err, EF_REFERRAL, "referrals", PW_MAX_REFERRALS);
	r = &pw->referrals[pw->nreferrals];
	memset(r, 0, sizeof(*r));
	if ((rc = set_str(r->id, sizeof(r->id), ev->referral, EF_REFERRAL,
	    err)) != RL_OK ||
	    (rc = set_str(r->to, sizeof(r->to), ev->to, EF_TO, err)) != RL_OK)
		return rc;
	set_cstr(r->from, sizeof(r->from), c->actor->id);
	r->state = PW_REF_REQUESTED;
	r->sent_at = c->at;
	pw->nreferrals++;
	advance(pw, PW_PHASE_REFERRED);
	return RL_OK;
}

/* check_rights() has found the referral and checked who answers. */
static int
answer_referral(struct pathway *pw, const struct apply_ctx *c,
    enum pw_referral_state to, struct rl_error *err)
{
	struct pw_referral *r = pathway_find_referral(pw, c->ev->referral);
	enum pw_referral_state now = pathway_referral_state(r, c->rules, c->at);

	if (now != PW_REF_REQUESTED)
		return rl_error_set(err, RL_E_BAD_TRANSITION, "referral",
		    "referral %s is %s: only a requested referral can become %s",
		    r->id, pw_referral_state_name(now),
		    pw_referral_state_name(to));
	r->state = to;
	r->answered_at = c->at;
	return RL_OK;
}

static int
on_referral_accepted(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	return answer_referral(pw, c, PW_REF_ACCEPTED, err);
}

static int
on_referral_declined(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	return answer_referral(pw, c, PW_REF_DECLINED, err);
}

static int
on_referral_cancelled(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	return answer_referral(pw, c, PW_REF_CANCELLED, err);
}

/* Make room for a new appointment by forgetting the oldest closed one. */
static bool
evict_closed_appointment(struct pathway *pw)
{
	for (int i = 0; i < pw->nappointments; i++) {
		if (pw->appointments[i].state == PW_APPT_SCHEDULED)
			continue;
		memmove(&pw->appointments[i], &pw->appointments[i + 1],
		    (size_t)(pw->nappointments - i - 1) *
		    sizeof(pw->appointments[0]));
		pw->nappointments--;
		memset(&pw->appointments[pw->nappointments], 0,
		    sizeof(pw->appointments[0]));
		return true;
	}
	return false;
}

/* Scheduling a known, still scheduled appointment moves it. */
static int
on_appointment_scheduled(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	const struct rl_event *ev = c->ev;
	struct pw_appointment *a;
	int rc;

	if ((rc = need(ev, EF_APPOINTMENT, err)) != RL_OK ||
	    (rc = need(ev, EF_AT, err)) != RL_OK)
		return rc;
	if ((a = find_appointment(pw, ev->appointment)) != NULL) {
		if (a->state != PW_APPT_SCHEDULED)
			return rl_error_set(err, RL_E_BAD_TRANSITION,
			    "appointment", "appointment %s is already %s",
			    a->id, pw_appointment_state_name(a->state));
		a->at = ev->at;
		return RL_OK;
	}
	if (pw->nappointments == PW_MAX_APPOINTMENTS &&
	    !evict_closed_appointment(pw))
		return too_many(err, EF_APPOINTMENT, "scheduled appointments",
		    PW_MAX_APPOINTMENTS);
	a = &pw->appointments[pw->nappointments];
	if ((rc = set_str(a->id, sizeof(a->id), ev->appointment, EF_APPOINTMENT,
	    err)) != RL_OK)
		return rc;
	a->at = ev->at;
	a->state = PW_APPT_SCHEDULED;
	pw->nappointments++;
	return RL_OK;
}

static struct pw_appointment *
scheduled_appointment(struct pathway *pw, const struct rl_event *ev,
    struct rl_error *err)
{
	const struct rl_str id = ev->appointment;
	struct pw_appointment *a;

	if (need(ev, EF_APPOINTMENT, err) != RL_OK)
		return NULL;
	if ((a = find_appointment(pw, id)) == NULL) {
		rl_error_set(err, RL_E_BAD_TRANSITION, "appointment",
		    "no scheduled appointment %.*s for this participant: "
		    "send appointment.scheduled first", (int)id.len, id.p);
		return NULL;
	}
	if (a->state != PW_APPT_SCHEDULED) {
		rl_error_set(err, RL_E_BAD_TRANSITION, "appointment",
		    "appointment %s is already %s", a->id,
		    pw_appointment_state_name(a->state));
		return NULL;
	}
	return a;
}

static void
end_miss_run(struct pathway *pw)
{
	pw->miss_run = 0;
	memset(pw->miss_times, 0, sizeof(pw->miss_times));
	pw->last_miss_at = 0;
}

static int
on_appointment_attended(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_appointment *a = scheduled_appointment(pw, c->ev, err);

	if (a == NULL)
		return err->code;
	a->state = PW_APPT_ATTENDED;
	end_miss_run(pw);
	return RL_OK;
}

static int
on_appointment_missed(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_appointment *a = scheduled_appointment(pw, c->ev, err);
	bool excused = event_has(c->ev, EF_EXCUSED) && c->ev->excused;

	if (a == NULL)
		return err->code;
	if (excused) {
		a->state = PW_APPT_EXCUSED;
		end_miss_run(pw);
		return RL_OK;
	}
	a->state = PW_APPT_MISSED;
	if (pw->miss_run < PW_MISS_RUN_KEEP)
		pw->miss_times[pw->miss_run] = c->at;
	if (pw->miss_run < UINT32_MAX)
		pw->miss_run++;
	pw->last_miss_at = c->at;
	return RL_OK;
}

/* support.started by a current referent renews it. */
static int
on_support_started(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	int i = find_referent(pw, c->actor->id);

	if (i < 0) {
		if (pw->nreferents == PW_MAX_REFERENTS)
			return too_many(err, EF_TYPE, "referents",
			    PW_MAX_REFERENTS);
		i = pw->nreferents++;
		set_cstr(pw->referents[i].id, sizeof(pw->referents[i].id),
		    c->actor->id);
	}
	pw->referents[i].since = c->at;
	pw->last_support_at = max64(pw->last_support_at, c->at);
	advance(pw, PW_PHASE_SUPPORTED);
	return RL_OK;
}

/* check_rights() has made sure the sender is a referent. */
static int
on_support_ended(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	int i = find_referent(pw, c->actor->id);
	int rc;

	if ((rc = need(c->ev, EF_OUTCOME, err)) != RL_OK)
		return rc;
	memmove(&pw->referents[i], &pw->referents[i + 1],
	    (size_t)(pw->nreferents - i - 1) * sizeof(pw->referents[0]));
	pw->nreferents--;
	memset(&pw->referents[pw->nreferents], 0, sizeof(pw->referents[0]));
	pw->referent_ended_at = max64(pw->referent_ended_at, c->at);
	if (str_is("dropped_out", c->ev->outcome) &&
	    c->at >= pw->dropped_out_at) {
		pw->dropped_out_at = c->at;
		set_cstr(pw->dropped_by, sizeof(pw->dropped_by), c->actor->id);
	}
	return RL_OK;
}

static int
on_enrollment_started(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_enrollment *e = NULL;
	int rc;

	if ((rc = need(c->ev, EF_SCHEME, err)) != RL_OK)
		return rc;
	for (int i = 0; i < pw->nenrollments && e == NULL; i++)
		if (str_is(pw->enrollments[i].scheme, c->ev->scheme))
			e = &pw->enrollments[i];
	if (e == NULL) {
		if (pw->nenrollments == PW_MAX_ENROLLMENTS)
			return too_many(err, EF_SCHEME, "schemes",
			    PW_MAX_ENROLLMENTS);
		e = &pw->enrollments[pw->nenrollments];
		if ((rc = set_str(e->scheme, sizeof(e->scheme), c->ev->scheme,
		    EF_SCHEME, err)) != RL_OK)
			return rc;
		e->first_at = c->at;
		pw->nenrollments++;
	}
	e->count++;
	advance(pw, PW_PHASE_ENROLLED);
	return RL_OK;
}

/* "YYYY-MM-DD" to 00:00 UTC that day, in ms.  event_parse() has checked
 * the form already; checked again because a wrong date would arm a rule
 * at a wrong time. */
static int
parse_day(struct rl_str s, int64_t *ms, struct rl_error *err)
{
	int32_t day;

	if (!cal_parse_date(s.p, s.len, &day))
		return rl_error_set(err, RL_E_BAD_FIELD, "ends_on",
		    "ends_on must be a date YYYY-MM-DD");
	*ms = (int64_t)day * PW_DAY_MS;
	return RL_OK;
}

/* Only the latest employment is kept: it is the one that can end. */
static int
on_employment_started(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_employment *e = &pw->employment;
	int64_t ends_on = 0;
	int rc;

	if ((rc = need(c->ev, EF_CONTRACT, err)) != RL_OK)
		return rc;
	if (event_has(c->ev, EF_ENDS_ON) &&
	    (rc = parse_day(c->ev->ends_on, &ends_on, err)) != RL_OK)
		return rc;
	if ((rc = set_str(e->contract, sizeof(e->contract), c->ev->contract,
	    EF_CONTRACT, err)) != RL_OK)
		return rc;
	set_cstr(e->by, sizeof(e->by), c->actor->id);
	e->started_at = c->at;
	e->ends_on = ends_on;
	advance(pw, PW_PHASE_EMPLOYED);
	return RL_OK;
}

static int
on_confidence(struct pathway *pw, const struct apply_ctx *c,
    struct rl_error *err)
{
	struct pw_confidence *k = &pw->confidence;
	int rc;

	if ((rc = need(c->ev, EF_SCORE, err)) != RL_OK)
		return rc;
	if (c->ev->score < 1 || c->ev->score > 5)
		return rl_error_set(err, RL_E_BAD_FIELD, "score",
		    "score must be 1 to 5");
	if (k->first == 0) {
		k->first = (int)c->ev->score;
		k->first_at = c->at;
	}
	k->last = (int)c->ev->score;
	k->last_at = c->at;
	return RL_OK;
}

/* The referents stay listed: they were following the person at the exit.
 * Nothing can change them until a new participant.identified. */
static int
on_exited(struct pathway *pw, const struct apply_ctx *c, struct rl_error *err)
{
	int rc;

	if ((rc = need(c->ev, EF_REASON, err)) != RL_OK ||
	    (rc = set_str(pw->exit_reason, sizeof(pw->exit_reason),
	    c->ev->reason, EF_REASON, err)) != RL_OK)
		return rc;
	pw->phase = PW_PHASE_EXITED;
	pw->exited_at = c->at;
	return RL_OK;
}

/* NULL: not a pathway event (outreach has no participant; alerts and
 * erasure act on the broker's tables, not on the pathway). */
static const apply_fn handlers[EV__COUNT] = {
	[EV_PARTICIPANT_IDENTIFIED] = on_identified,
	[EV_CONTACT_MADE] = on_contact,
	[EV_BARRIER_IDENTIFIED] = on_barrier_identified,
	[EV_BARRIER_LIFTED] = on_barrier_lifted,
	[EV_REFERRAL_SENT] = on_referral_sent,
	[EV_REFERRAL_ACCEPTED] = on_referral_accepted,
	[EV_REFERRAL_DECLINED] = on_referral_declined,
	[EV_REFERRAL_CANCELLED] = on_referral_cancelled,
	[EV_APPOINTMENT_SCHEDULED] = on_appointment_scheduled,
	[EV_APPOINTMENT_ATTENDED] = on_appointment_attended,
	[EV_APPOINTMENT_MISSED] = on_appointment_missed,
	[EV_SUPPORT_STARTED] = on_support_started,
	[EV_SUPPORT_ENDED] = on_support_ended,
	[EV_ENROLLMENT_STARTED] = on_enrollment_started,
	[EV_EMPLOYMENT_STARTED] = on_employment_started,
	[EV_CONFIDENCE_ASSESSED] = on_confidence,
	[EV_PARTICIPANT_EXITED] = on_exited,
};

/* What every pathway event does, whatever its type. */
static void
touch(struct pathway *pw, const struct rl_event *ev, int64_t at)
{
	if (pw->phase == PW_PHASE_NEW) {
		pw->phase = PW_PHASE_IDENTIFIED;
		pw->opened_at = at;
	}
	pw->last_activity = max64(pw->last_activity, at);
	if (pw->counts[ev->type] < UINT32_MAX)
		pw->counts[ev->type]++;
}

/* Referral events go to the other party; the strings live in *pw. */
static void
fill_effects(struct pathway *pw, const struct rl_event *ev,
    struct pw_effects *fx)
{
	struct pw_referral *r;

	fx->changed = true;
	switch (ev->type) {
	case EV_REFERRAL_SENT:
	case EV_REFERRAL_CANCELLED:
		r = pathway_find_referral(pw, ev->referral);
		fx->deliver_to[fx->ndeliver++] = r->to;
		break;
	case EV_REFERRAL_ACCEPTED:
	case EV_REFERRAL_DECLINED:
		r = pathway_find_referral(pw, ev->referral);
		fx->deliver_to[fx->ndeliver++] = r->from;
		break;
	default:
		break;
	}
}

static int
check_subject(const struct pathway *pw, const struct rl_event *ev,
    struct rl_error *err)
{
	int rc;

	if ((rc = need(ev, EF_PARTICIPANT, err)) != RL_OK)
		return rc;
	if (!str_is(pw->participant, ev->participant))
		return rl_error_set(err, RL_E_UNKNOWN_PARTICIPANT, "participant",
		    "the event is not about this pathway's participant");
	if (pw->phase == PW_PHASE_EXITED &&
	    ev->type != EV_PARTICIPANT_IDENTIFIED)
		return rl_error_set(err, RL_E_BAD_TRANSITION, "type",
		    "the participant has exited: only participant.identified "
		    "can reopen the pathway");
	return RL_OK;
}

/*
 * Applying to a copy keeps *pw unchanged on error; the broker, which
 * reloads a refused event's pathway from the store anyway, skips the two
 * copies of a 13 KB structure per event.
 */
static int
apply(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at,
    const struct rule_config *rules, struct pw_effects *fx,
    struct rl_error *err, bool in_place)
{
	struct pathway next, *target = pw;
	struct apply_ctx c = { ev, actor, at, rules };
	int rc;

	memset(fx, 0, sizeof(*fx));
	if ((unsigned)ev->type >= EV__COUNT)
		return rl_error_set(err, RL_E_UNKNOWN_TYPE, "type",
		    "unknown event type %d", (int)ev->type);
	if (actor->kind == AK_OPERATOR)
		return rl_error_set(err, RL_E_FORBIDDEN, "",
		    "operators may not send events");
	if (handlers[ev->type] == NULL)
		return check_rights(pw, ev, actor, err);
	if ((rc = check_subject(pw, ev, err)) != RL_OK ||
	    (rc = check_rights(pw, ev, actor, err)) != RL_OK)
		return rc;
	if (!in_place) {
		next = *pw;
		target = &next;
	}
	touch(target, ev, at);
	if ((rc = handlers[ev->type](target, &c, err)) != RL_OK)
		return rc;
	if (!in_place)
		*pw = next;
	fill_effects(pw, ev, fx);
	return RL_OK;
}

int
pathway_apply(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at,
    const struct rule_config *rules, struct pw_effects *fx,
    struct rl_error *err)
{
	return apply(pw, ev, actor, at, rules, fx, err, false);
}

int
pathway_apply_in_place(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at,
    const struct rule_config *rules, struct pw_effects *fx,
    struct rl_error *err)
{
	return apply(pw, ev, actor, at, rules, fx, err, true);
}
