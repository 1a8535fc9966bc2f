/*
 * The pathway state machine and the rupture rules, driven by events built
 * by hand (not through event_parse) and a fake clock: every time below is
 * an offset from T0, and "now" is whatever the test says it is.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pathway.h"
#include "relais_proto.h"

#define T0      INT64_C(1800000000000)     /* 2027-01-15T08:00:00Z */
#define HOUR    INT64_C(3600000)
#define DAY     PW_DAY_MS

static const struct pw_actor MED = { "med-nord", AK_MEDIATOR };
static const struct pw_actor ML = { "ml-tours", AK_MISSION_LOCALE };
static const struct pw_actor FT = { "ft-tours", AK_FRANCE_TRAVAIL };
static const struct pw_actor CS = { "cs-sanitas", AK_SOCIAL_CENTRE };
static const struct pw_actor COORD = { "cite-emploi", AK_COORDINATOR };
static const struct pw_actor OPS = { "ops", AK_OPERATOR };

static struct rule_config R[RULE__COUNT];
static struct pw_effects fx;
static struct rl_error err;

static int
reset_rules(void **state)
{
	static const uint32_t thresholds[RULE__COUNT] = {
		[RULE_REFERRAL_UNANSWERED] = 10, [RULE_REFERRAL_EXPIRED] = 30,
		[RULE_NO_REORIENTATION] = 10, [RULE_NO_REFERENT] = 15,
		[RULE_NO_CONTACT] = 45, [RULE_MISSED_APPOINTMENTS] = 2,
		[RULE_SUPPORT_DROPPED] = 7, [RULE_CONTRACT_ENDING] = 30,
	};

	for (int r = 0; r < RULE__COUNT; r++)
		R[r] = (struct rule_config){ true, thresholds[r] };
	memset(&fx, 0, sizeof(fx));
	memset(&err, 0, sizeof(err));
	return 0;
}

/* --- building events --- */

static struct rl_str
S(const char *s)
{
	return (struct rl_str){ s, (uint32_t)strlen(s) };
}

static struct rl_str *
str_field(struct rl_event *e, enum ev_field f)
{
	switch (f) {
	case EF_QPV: return &e->qpv;
	case EF_SOURCE: return &e->source;
	case EF_CHANNEL: return &e->channel;
	case EF_BARRIER: return &e->barrier;
	case EF_REFERRAL: return &e->referral;
	case EF_TO: return &e->to;
	case EF_PURPOSE: return &e->purpose;
	case EF_REASON: return &e->reason;
	case EF_APPOINTMENT: return &e->appointment;
	case EF_OUTCOME: return &e->outcome;
	case EF_SCHEME: return &e->scheme;
	case EF_CONTRACT: return &e->contract;
	case EF_ENDS_ON: return &e->ends_on;
	case EF_ALERT: return &e->alert;
	case EF_PARTICIPANT: return &e->participant;
	default: return NULL;
	}
}

static struct rl_event
with(struct rl_event e, enum ev_field f, const char *v)
{
	*str_field(&e, f) = S(v);
	e.present |= 1u << f;
	return e;
}

static struct rl_event
mk(enum ev_type t)
{
	struct rl_event e;

	memset(&e, 0, sizeof(e));
	e.type = t;
	e.event_id = S("e-1");
	e.occurred_at = T0;
	e.present = 1u << EF_EVENT_ID | 1u << EF_TYPE | 1u << EF_OCCURRED_AT;
	if (t != EV_OUTREACH_INTERVENTION)
		e = with(e, EF_PARTICIPANT, "p-1");
	return e;
}

static struct rl_event
identified(void)
{
	return with(with(mk(EV_PARTICIPANT_IDENTIFIED), EF_QPV, "sanitas"),
	    EF_SOURCE, "outreach");
}

static struct rl_event
contact(void)
{
	return with(mk(EV_CONTACT_MADE), EF_CHANNEL, "phone");
}

static struct rl_event
barrier(enum ev_type t, const char *code)
{
	return with(mk(t), EF_BARRIER, code);
}

static struct rl_event
sent(const char *id, const char *to)
{
	return with(with(with(mk(EV_REFERRAL_SENT), EF_REFERRAL, id), EF_TO, to),
	    EF_PURPOSE, "job search");
}

static struct rl_event
answer(enum ev_type t, const char *id)
{
	struct rl_event e = with(mk(t), EF_REFERRAL, id);

	if (t == EV_REFERRAL_DECLINED)
		e = with(e, EF_REASON, "no_capacity");
	if (t == EV_REFERRAL_CANCELLED)
		e = with(e, EF_REASON, "sent twice");
	return e;
}

static struct rl_event
scheduled(const char *id, int64_t at)
{
	struct rl_event e = with(mk(EV_APPOINTMENT_SCHEDULED), EF_APPOINTMENT, id);

	e.at = at;
	e.present |= 1u << EF_AT;
	return e;
}

static struct rl_event
attended(const char *id)
{
	return with(mk(EV_APPOINTMENT_ATTENDED), EF_APPOINTMENT, id);
}

static struct rl_event
missed(const char *id, bool excused)
{
	struct rl_event e = with(mk(EV_APPOINTMENT_MISSED), EF_APPOINTMENT, id);

	if (excused) {
		e.excused = true;
		e.present |= 1u << EF_EXCUSED;
	}
	return e;
}

static struct rl_event
support_started(void)
{
	return mk(EV_SUPPORT_STARTED);
}

static struct rl_event
support_ended(const char *outcome)
{
	return with(mk(EV_SUPPORT_ENDED), EF_OUTCOME, outcome);
}

static struct rl_event
employment(const char *ends_on)
{
	struct rl_event e = with(mk(EV_EMPLOYMENT_STARTED), EF_CONTRACT, "cdd");

	return ends_on != NULL ? with(e, EF_ENDS_ON, ends_on) : e;
}

static struct rl_event
confidence(int64_t score)
{
	struct rl_event e = mk(EV_CONFIDENCE_ASSESSED);

	e.score = score;
	e.present |= 1u << EF_SCORE;
	return e;
}

static struct rl_event
exited(void)
{
	return with(mk(EV_PARTICIPANT_EXITED), EF_REASON, "stabilised");
}

/* --- applying them --- */

static int
apply(struct pathway *pw, struct rl_event e, const struct pw_actor *a,
    int64_t at)
{
	return pathway_apply(pw, &e, a, at, R, &fx, &err);
}

static void
apply_ok(struct pathway *pw, struct rl_event e, const struct pw_actor *a,
    int64_t at, const char *file, int line)
{
	int rc = apply(pw, e, a, at);

	if (rc != RL_OK)
		print_error("%s refused: %s: %s\n", ev_type_name(e.type),
		    rl_code_name(rc), err.message);
	_assert_int_equal(rc, RL_OK, file, line);
	_assert_true(fx.changed, "fx.changed", file, line);
}
#define OK(pw, e, a, at) apply_ok(pw, e, a, at, __FILE__, __LINE__)

/* A refused event returns the code and leaves every byte of *pw as it was. */
static void
apply_refused(struct pathway *pw, struct rl_event e, const struct pw_actor *a,
    int64_t at, int code, const char *file, int line)
{
	static struct pathway before;
	int rc;

	memcpy(&before, pw, sizeof(before));
	rc = apply(pw, e, a, at);
	if (rc != code)
		print_error("%s: expected %s, got %s (%s)\n", ev_type_name(e.type),
		    rl_code_name(code), rl_code_name(rc), err.message);
	_assert_int_equal(rc, code, file, line);
	_assert_true(err.message[0] != '\0', "err.message", file, line);
	_assert_true(memcmp(&before, pw, sizeof(before)) == 0,
	    "pathway unchanged", file, line);
	_assert_true(!fx.changed && fx.ndeliver == 0, "no effects", file, line);
}
#define REFUSED(pw, e, a, at, code) \
	apply_refused(pw, e, a, at, code, __FILE__, __LINE__)

/* p-1, identified by the street mediator at T0. */
static void
start(struct pathway *pw)
{
	pathway_init(pw, "p-1", 3);
	OK(pw, identified(), &MED, T0);
}

static int64_t
due_of(const struct pathway *pw, enum rule_id rule)
{
	int64_t due[RULE__COUNT];

	pathway_due(pw, R, pw->last_activity, due);
	return due[rule];
}

static bool
holds(const struct pathway *pw, enum rule_id rule, int64_t now)
{
	struct pw_alert_info info;

	return pathway_rule_holds(pw, rule, R, now, &info);
}

/* Due exactly at t: holds at t, not 1 ms before. */
static void
fires_at(const struct pathway *pw, enum rule_id rule, int64_t t,
    const char *file, int line)
{
	int64_t due = due_of(pw, rule);

	if (due != t)
		print_error("%s: due %+" PRId64 " ms from T0, expected %+" PRId64
		    "\n", rule_name(rule), due - T0, t - T0);
	_assert_int_equal((uint64_t)due, (uint64_t)t, file, line);
	_assert_true(!holds(pw, rule, t - 1), "not 1 ms before", file, line);
	_assert_true(holds(pw, rule, t), "holds at the threshold", file, line);
}
#define FIRES_AT(pw, rule, t) fires_at(pw, rule, t, __FILE__, __LINE__)

static void
disarmed(const struct pathway *pw, enum rule_id rule, const char *file,
    int line)
{
	_assert_int_equal((uint64_t)due_of(pw, rule), 0, file, line);
	_assert_true(!holds(pw, rule, T0 + 3650 * DAY), "never holds", file,
	    line);
}
#define DISARMED(pw, rule) disarmed(pw, rule, __FILE__, __LINE__)

/* ===================== transitions ===================== */

static void
test_identified_opens(void **state)
{
	struct pathway pw;

	pathway_init(&pw, "p-1", 3);
	assert_int_equal(pw.phase, PW_PHASE_NEW);
	OK(&pw, identified(), &MED, T0);
	assert_int_equal(pw.phase, PW_PHASE_IDENTIFIED);
	assert_string_equal(pw.qpv, "sanitas");
	assert_true(pw.identified_at == T0 && pw.opened_at == T0);
	assert_true(pw.last_activity == T0);
	assert_int_equal(pw.counts[EV_PARTICIPANT_IDENTIFIED], 1);
	assert_int_equal(fx.ndeliver, 0);
}

static void
test_implicit_open(void **state)
{
	struct pathway pw;

	pathway_init(&pw, "p-1", 3);
	OK(&pw, contact(), &CS, T0);
	assert_int_equal(pw.phase, PW_PHASE_IDENTIFIED);
	assert_true(pw.opened_at == T0 && pw.identified_at == 0);
	/* a later identification records when and where */
	OK(&pw, identified(), &MED, T0 + DAY);
	assert_true(pw.identified_at == T0 + DAY && pw.opened_at == T0);
	assert_string_equal(pw.qpv, "sanitas");
}

static void
test_phases_only_move_forward(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0 + 1);
	assert_int_equal(pw.phase, PW_PHASE_REFERRED);
	OK(&pw, support_started(), &ML, T0 + 2);
	assert_int_equal(pw.phase, PW_PHASE_SUPPORTED);
	OK(&pw, with(mk(EV_ENROLLMENT_STARTED), EF_SCHEME, "cej"), &ML, T0 + 3);
	assert_int_equal(pw.phase, PW_PHASE_ENROLLED);
	OK(&pw, employment(NULL), &ML, T0 + 4);
	assert_int_equal(pw.phase, PW_PHASE_EMPLOYED);
	OK(&pw, support_ended("completed"), &ML, T0 + 5);
	OK(&pw, sent("r2", "ft-tours"), &MED, T0 + 6);
	assert_int_equal(pw.phase, PW_PHASE_EMPLOYED);
}

static void
test_phase_can_skip_steps(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, employment(NULL), &CS, T0 + 1);
	assert_int_equal(pw.phase, PW_PHASE_EMPLOYED);
}

static void
test_referral_sent_goes_to_target(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0 + HOUR);
	assert_int_equal(fx.ndeliver, 1);
	assert_string_equal(fx.deliver_to[0], "ml-tours");
	assert_int_equal(pw.nreferrals, 1);
	assert_string_equal(pw.referrals[0].from, "med-nord");
	assert_string_equal(pw.referrals[0].to, "ml-tours");
	assert_int_equal(pw.referrals[0].state, PW_REF_REQUESTED);
	assert_true(pw.referrals[0].sent_at == T0 + HOUR);
}

static void
test_referral_answers_go_to_the_other_party(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, sent("r2", "ft-tours"), &MED, T0);
	OK(&pw, sent("r3", "cs-sanitas"), &MED, T0);

	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &ML, T0 + DAY);
	assert_int_equal(fx.ndeliver, 1);
	assert_string_equal(fx.deliver_to[0], "med-nord");
	assert_int_equal(pw.referrals[0].state, PW_REF_ACCEPTED);
	assert_true(pw.referrals[0].answered_at == T0 + DAY);

	OK(&pw, answer(EV_REFERRAL_DECLINED, "r2"), &FT, T0 + DAY);
	assert_string_equal(fx.deliver_to[0], "med-nord");
	assert_int_equal(pw.referrals[1].state, PW_REF_DECLINED);

	OK(&pw, answer(EV_REFERRAL_CANCELLED, "r3"), &MED, T0 + DAY);
	assert_string_equal(fx.deliver_to[0], "cs-sanitas");
	assert_int_equal(pw.referrals[2].state, PW_REF_CANCELLED);
}

static void
test_referral_refusals(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	REFUSED(&pw, sent("r1", "ft-tours"), &CS, T0, RL_E_REFERRAL_EXISTS);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r9"), &ML, T0,
	    RL_E_UNKNOWN_REFERRAL);
	REFUSED(&pw, answer(EV_REFERRAL_CANCELLED, "r9"), &MED, T0,
	    RL_E_UNKNOWN_REFERRAL);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &FT, T0,
	    RL_E_WRONG_AGENT);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &MED, T0,
	    RL_E_WRONG_AGENT);
	REFUSED(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &COORD, T0,
	    RL_E_WRONG_AGENT);
	REFUSED(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &ML, T0,
	    RL_E_WRONG_AGENT);

	OK(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &MED, T0 + 1);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &ML, T0 + 2,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &MED, T0 + 2,
	    RL_E_BAD_TRANSITION);

	OK(&pw, sent("r2", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r2"), &ML, T0 + 1);
	REFUSED(&pw, answer(EV_REFERRAL_DECLINED, "r2"), &ML, T0 + 2,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r2"), &ML, T0 + 2,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, answer(EV_REFERRAL_CANCELLED, "r2"), &MED, T0 + 2,
	    RL_E_BAD_TRANSITION);
}

static void
test_expired_referral_cannot_be_answered(void **state)
{
	struct pathway pw, replay;
	struct rl_event acc = answer(EV_REFERRAL_ACCEPTED, "r1");

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	replay = pw;
	REFUSED(&pw, acc, &ML, T0 + 30 * DAY, RL_E_BAD_TRANSITION);
	REFUSED(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &MED, T0 + 30 * DAY,
	    RL_E_BAD_TRANSITION);
	OK(&pw, acc, &ML, T0 + 30 * DAY - 1);

	/* verify replays without rules: what was recorded is accepted */
	assert_int_equal(pathway_apply(&replay, &acc, &ML, T0 + 99 * DAY, NULL,
	    &fx, &err), RL_OK);

	/* with the rule switched off, referrals never expire */
	R[RULE_REFERRAL_EXPIRED].enabled = false;
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, acc, &ML, T0 + 99 * DAY);
}

static void
test_referral_state_is_derived(void **state)
{
	struct pw_referral r = { .id = "r1", .from = "med-nord",
		.to = "ml-tours", .state = PW_REF_REQUESTED, .sent_at = T0 };

	assert_int_equal(pathway_referral_state(&r, R, T0 + 30 * DAY - 1),
	    PW_REF_REQUESTED);
	assert_int_equal(pathway_referral_state(&r, R, T0 + 30 * DAY),
	    PW_REF_EXPIRED);
	assert_int_equal(pathway_referral_state(&r, NULL, T0 + 99 * DAY),
	    PW_REF_REQUESTED);
	R[RULE_REFERRAL_EXPIRED].enabled = false;
	assert_int_equal(pathway_referral_state(&r, R, T0 + 99 * DAY),
	    PW_REF_REQUESTED);
	R[RULE_REFERRAL_EXPIRED] = (struct rule_config){ true, 5 };
	assert_int_equal(pathway_referral_state(&r, R, T0 + 5 * DAY),
	    PW_REF_EXPIRED);
	r.state = PW_REF_DECLINED;
	assert_int_equal(pathway_referral_state(&r, R, T0 + 99 * DAY),
	    PW_REF_DECLINED);
}

static void
test_barriers(void **state)
{
	struct pathway pw;

	start(&pw);
	REFUSED(&pw, barrier(EV_BARRIER_LIFTED, "housing"), &CS, T0,
	    RL_E_BAD_TRANSITION);
	OK(&pw, barrier(EV_BARRIER_IDENTIFIED, "housing"), &CS, T0 + 1);
	OK(&pw, barrier(EV_BARRIER_IDENTIFIED, "mobility"), &CS, T0 + 1);
	assert_int_equal(pw.nbarriers, 2);
	assert_int_equal(pw.barriers[0].state, PW_BARRIER_OPEN);
	OK(&pw, barrier(EV_BARRIER_LIFTED, "housing"), &CS, T0 + 2);
	assert_int_equal(pw.barriers[0].state, PW_BARRIER_LIFTED);
	assert_true(pw.barriers[0].lifted_at == T0 + 2);
	REFUSED(&pw, barrier(EV_BARRIER_LIFTED, "housing"), &CS, T0 + 3,
	    RL_E_BAD_TRANSITION);
	/* identified again: open again, still one entry per code */
	OK(&pw, barrier(EV_BARRIER_IDENTIFIED, "housing"), &FT, T0 + 4);
	assert_int_equal(pw.nbarriers, 2);
	assert_int_equal(pw.barriers[0].state, PW_BARRIER_OPEN);
	assert_true(pw.barriers[0].identified_at == T0 + 4);
	OK(&pw, barrier(EV_BARRIER_IDENTIFIED, "mobility"), &FT, T0 + 5);
	assert_true(pw.barriers[1].identified_at == T0 + 1);
}

static void
test_appointments(void **state)
{
	struct pathway pw;

	start(&pw);
	REFUSED(&pw, attended("a1"), &CS, T0, RL_E_BAD_TRANSITION);
	REFUSED(&pw, missed("a1", false), &CS, T0, RL_E_BAD_TRANSITION);
	OK(&pw, scheduled("a1", T0 + DAY), &CS, T0);
	OK(&pw, scheduled("a1", T0 + 2 * DAY), &CS, T0 + 1);   /* moved */
	assert_int_equal(pw.nappointments, 1);
	assert_true(pw.appointments[0].at == T0 + 2 * DAY);
	OK(&pw, attended("a1"), &CS, T0 + 2 * DAY);
	assert_int_equal(pw.appointments[0].state, PW_APPT_ATTENDED);
	REFUSED(&pw, attended("a1"), &CS, T0 + 3 * DAY, RL_E_BAD_TRANSITION);
	REFUSED(&pw, missed("a1", false), &CS, T0 + 3 * DAY,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, scheduled("a1", T0 + 9 * DAY), &CS, T0 + 3 * DAY,
	    RL_E_BAD_TRANSITION);
}

static void
test_missed_run(void **state)
{
	struct pathway pw;

	start(&pw);
	for (int i = 0; i < 5; i++) {
		char id[8];

		snprintf(id, sizeof(id), "a%d", i);
		OK(&pw, scheduled(id, T0 + i * DAY), &CS, T0);
	}
	OK(&pw, missed("a0", false), &CS, T0 + 1);
	OK(&pw, missed("a1", false), &CS, T0 + 2);
	assert_int_equal(pw.miss_run, 2);
	assert_true(pw.miss_times[0] == T0 + 1 && pw.miss_times[1] == T0 + 2);
	OK(&pw, missed("a2", true), &CS, T0 + 3);     /* excused: in touch */
	assert_int_equal(pw.miss_run, 0);
	assert_int_equal(pw.appointments[2].state, PW_APPT_EXCUSED);
	OK(&pw, missed("a3", false), &CS, T0 + 4);
	assert_int_equal(pw.miss_run, 1);
	OK(&pw, attended("a4"), &CS, T0 + 5);
	assert_int_equal(pw.miss_run, 0);
	assert_true(pw.miss_times[0] == 0 && pw.last_miss_at == 0);
}

static void
test_closed_appointments_make_room(void **state)
{
	struct pathway pw;
	char id[16];

	start(&pw);
	for (int i = 0; i < PW_MAX_APPOINTMENTS; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		OK(&pw, scheduled(id, T0 + i), &CS, T0);
	}
	REFUSED(&pw, scheduled("one-too-many", T0), &CS, T0,
	    RL_E_BAD_TRANSITION);
	OK(&pw, attended("a5"), &CS, T0 + 1);
	OK(&pw, scheduled("one-more", T0), &CS, T0 + 2);
	assert_int_equal(pw.nappointments, PW_MAX_APPOINTMENTS);
	assert_string_equal(pw.appointments[5].id, "a6");
	assert_string_equal(pw.appointments[PW_MAX_APPOINTMENTS - 1].id,
	    "one-more");
}

static void
test_support(void **state)
{
	struct pathway pw;

	start(&pw);
	REFUSED(&pw, support_ended("completed"), &ML, T0, RL_E_FORBIDDEN);
	OK(&pw, support_started(), &ML, T0 + 1);
	OK(&pw, support_started(), &CS, T0 + 2);
	OK(&pw, support_started(), &ML, T0 + 3);   /* renewal, not a duplicate */
	assert_int_equal(pw.nreferents, 2);
	assert_true(pw.referents[0].since == T0 + 3);
	REFUSED(&pw, support_ended("completed"), &FT, T0 + 4, RL_E_FORBIDDEN);
	REFUSED(&pw, support_ended("completed"), &COORD, T0 + 4,
	    RL_E_FORBIDDEN);
	OK(&pw, support_ended("dropped_out"), &ML, T0 + 5);
	assert_int_equal(pw.nreferents, 1);
	assert_string_equal(pw.referents[0].id, "cs-sanitas");
	assert_true(pw.dropped_out_at == T0 + 5 && pw.referent_ended_at == T0 + 5);
	assert_string_equal(pw.dropped_by, "ml-tours");
	OK(&pw, support_ended("completed"), &CS, T0 + 6);
	assert_int_equal(pw.nreferents, 0);
	assert_true(pw.dropped_out_at == T0 + 5 && pw.referent_ended_at == T0 + 6);
	assert_int_equal(pw.phase, PW_PHASE_SUPPORTED);
}

static void
test_exit_and_reopen(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, support_started(), &ML, T0 + 1);
	OK(&pw, sent("r1", "ft-tours"), &ML, T0 + 1);
	REFUSED(&pw, exited(), &CS, T0 + 2, RL_E_FORBIDDEN);
	REFUSED(&pw, exited(), &FT, T0 + 2, RL_E_FORBIDDEN);
	OK(&pw, exited(), &ML, T0 + 2);
	assert_int_equal(pw.phase, PW_PHASE_EXITED);
	assert_string_equal(pw.exit_reason, "stabilised");
	assert_true(pw.exited_at == T0 + 2);

	REFUSED(&pw, contact(), &CS, T0 + 3, RL_E_BAD_TRANSITION);
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &FT, T0 + 3,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, support_ended("completed"), &ML, T0 + 3,
	    RL_E_BAD_TRANSITION);
	REFUSED(&pw, exited(), &COORD, T0 + 3, RL_E_BAD_TRANSITION);

	OK(&pw, identified(), &CS, T0 + 10 * DAY);
	assert_int_equal(pw.phase, PW_PHASE_IDENTIFIED);
	assert_true(pw.identified_at == T0 + 10 * DAY);
	assert_true(pw.reopened_at == T0 + 10 * DAY);
	assert_int_equal(pw.nreferents, 0);
	assert_string_equal(pw.exit_reason, "");
	/* the pending referral survived and can still be answered */
	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &FT, T0 + 11 * DAY);
}

static void
test_coordinator_may_exit(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, exited(), &COORD, T0 + 1);
	assert_int_equal(pw.phase, PW_PHASE_EXITED);
}

static void
test_operator_may_send_nothing(void **state)
{
	struct pathway pw;

	start(&pw);
	REFUSED(&pw, contact(), &OPS, T0, RL_E_FORBIDDEN);
	REFUSED(&pw, identified(), &OPS, T0, RL_E_FORBIDDEN);
	REFUSED(&pw, with(mk(EV_ALERT_RESOLVED), EF_ALERT, "al-1"), &OPS, T0,
	    RL_E_FORBIDDEN);
}

static void
test_non_pathway_events(void **state)
{
	struct pathway pw;
	static struct pathway before;
	struct rl_event outreach = mk(EV_OUTREACH_INTERVENTION);

	start(&pw);
	memcpy(&before, &pw, sizeof(pw));
	assert_int_equal(apply(&pw, with(mk(EV_ALERT_ACKNOWLEDGED), EF_ALERT,
	    "al-1"), &COORD, T0), RL_OK);
	assert_false(fx.changed);
	assert_int_equal(apply(&pw, mk(EV_PARTICIPANT_ERASED), &COORD, T0),
	    RL_OK);
	assert_false(fx.changed);
	assert_int_equal(apply(&pw, outreach, &MED, T0), RL_OK);
	assert_false(fx.changed);
	assert_memory_equal(&before, &pw, sizeof(pw));
	REFUSED(&pw, with(mk(EV_ALERT_RESOLVED), EF_ALERT, "al-1"), &ML, T0,
	    RL_E_FORBIDDEN);
	REFUSED(&pw, mk(EV_PARTICIPANT_ERASED), &ML, T0, RL_E_FORBIDDEN);
}

static void
test_event_for_another_participant(void **state)
{
	struct pathway pw;

	start(&pw);
	REFUSED(&pw, with(contact(), EF_PARTICIPANT, "p-2"), &CS, T0,
	    RL_E_UNKNOWN_PARTICIPANT);
}

static void
test_missing_field_is_refused(void **state)
{
	struct pathway pw;
	struct rl_event e = sent("r1", "ml-tours");

	start(&pw);
	e.present &= ~(1u << EF_TO);
	REFUSED(&pw, e, &MED, T0, RL_E_MISSING_FIELD);
	assert_string_equal(err.field, "to");
}

static void
test_enrollment_employment_confidence(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, with(mk(EV_ENROLLMENT_STARTED), EF_SCHEME, "cej"), &ML, T0 + 1);
	OK(&pw, with(mk(EV_ENROLLMENT_STARTED), EF_SCHEME, "plie"), &ML, T0 + 2);
	OK(&pw, with(mk(EV_ENROLLMENT_STARTED), EF_SCHEME, "cej"), &ML, T0 + 3);
	assert_int_equal(pw.nenrollments, 2);
	assert_int_equal(pw.enrollments[0].count, 2);
	assert_true(pw.enrollments[0].first_at == T0 + 1);

	OK(&pw, employment("2000-03-01"), &CS, T0 + 4);
	assert_true(pw.employment.ends_on == INT64_C(951868800000));
	OK(&pw, employment("2024-02-29"), &CS, T0 + 5);
	assert_true(pw.employment.ends_on == INT64_C(1709164800000));
	assert_string_equal(pw.employment.contract, "cdd");
	assert_string_equal(pw.employment.by, "cs-sanitas");
	OK(&pw, employment(NULL), &CS, T0 + 6);
	assert_true(pw.employment.ends_on == 0);
	REFUSED(&pw, employment("2023-02-29"), &CS, T0, RL_E_BAD_FIELD);
	REFUSED(&pw, employment("2023-13-01"), &CS, T0, RL_E_BAD_FIELD);
	REFUSED(&pw, employment("2023/01/01"), &CS, T0, RL_E_BAD_FIELD);

	REFUSED(&pw, confidence(0), &CS, T0, RL_E_BAD_FIELD);
	REFUSED(&pw, confidence(6), &CS, T0, RL_E_BAD_FIELD);
	OK(&pw, confidence(2), &CS, T0 + 7);
	OK(&pw, confidence(4), &CS, T0 + 8);
	OK(&pw, confidence(3), &CS, T0 + 9);
	assert_true(pw.confidence.first == 2 && pw.confidence.first_at == T0 + 7);
	assert_true(pw.confidence.last == 3 && pw.confidence.last_at == T0 + 9);
}

static void
test_activity_and_counts(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, contact(), &CS, T0 + 5 * DAY);
	OK(&pw, contact(), &CS, T0 + 2 * DAY);     /* reported late */
	assert_true(pw.last_activity == T0 + 5 * DAY);
	assert_int_equal(pw.counts[EV_CONTACT_MADE], 2);
	assert_int_equal(pw.counts[EV_PARTICIPANT_IDENTIFIED], 1);
}

static void
test_limits_are_clear_errors(void **state)
{
	struct pathway pw;
	char id[16];
	static const struct pw_actor many[PW_MAX_REFERENTS + 1] = {
		{ "a0", AK_IAE }, { "a1", AK_IAE }, { "a2", AK_IAE },
		{ "a3", AK_IAE }, { "a4", AK_IAE }, { "a5", AK_IAE },
		{ "a6", AK_IAE }, { "a7", AK_IAE }, { "a8", AK_IAE },
	};

	start(&pw);
	REFUSED(&pw, sent("this-referral-id-is-far-too-long-to-fit-in-a-pathway"
	    "-entry-of-65-bytes", "ml-tours"), &MED, T0, RL_E_BAD_FIELD);
	for (int i = 0; i < PW_MAX_REFERRALS; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		OK(&pw, sent(id, "ml-tours"), &MED, T0);
	}
	REFUSED(&pw, sent("r-last", "ml-tours"), &MED, T0, RL_E_BAD_TRANSITION);
	for (int i = 0; i < PW_MAX_REFERENTS; i++)
		OK(&pw, support_started(), &many[i], T0);
	REFUSED(&pw, support_started(), &many[PW_MAX_REFERENTS], T0,
	    RL_E_BAD_TRANSITION);
	for (int i = 0; i < PW_MAX_BARRIERS; i++) {
		snprintf(id, sizeof(id), "b%d", i);
		OK(&pw, barrier(EV_BARRIER_IDENTIFIED, id), &CS, T0);
	}
	REFUSED(&pw, barrier(EV_BARRIER_IDENTIFIED, "b-last"), &CS, T0,
	    RL_E_BAD_TRANSITION);
}

/* ===================== stored form ===================== */

/* A pathway with something in every field. */
static void
rich(struct pathway *pw)
{
	start(pw);
	OK(pw, sent("r1", "ml-tours"), &MED, T0 + 1);
	OK(pw, sent("r2", "ft-tours"), &MED, T0 + 2);
	OK(pw, answer(EV_REFERRAL_DECLINED, "r2"), &FT, T0 + 3);
	OK(pw, support_started(), &ML, T0 + 4);
	OK(pw, support_started(), &CS, T0 + 4);
	OK(pw, support_ended("dropped_out"), &CS, T0 + 5);
	OK(pw, barrier(EV_BARRIER_IDENTIFIED, "housing"), &CS, T0 + 6);
	OK(pw, barrier(EV_BARRIER_IDENTIFIED, "digital"), &CS, T0 + 6);
	OK(pw, barrier(EV_BARRIER_LIFTED, "digital"), &CS, T0 + 7);
	OK(pw, scheduled("a1", T0 + DAY), &ML, T0 + 8);
	OK(pw, scheduled("a2", T0 + 2 * DAY), &ML, T0 + 8);
	OK(pw, scheduled("a3", T0 + 3 * DAY), &ML, T0 + 8);
	OK(pw, missed("a1", false), &ML, T0 + DAY);
	OK(pw, missed("a2", false), &ML, T0 + 2 * DAY);
	OK(pw, with(mk(EV_ENROLLMENT_STARTED), EF_SCHEME, "cej"), &ML, T0 + 9);
	OK(pw, employment("2027-06-30"), &CS, T0 + 10);
	OK(pw, confidence(2), &ML, T0 + 11);
	OK(pw, confidence(4), &ML, T0 + 12);
}

static size_t
encode(const struct pathway *pw, msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	assert_int_equal(pathway_encode(pw, &pk), RL_OK);
	return sb->size;
}

static void
roundtrip(const struct pathway *pw)
{
	static struct pathway back;
	msgpack_sbuffer a, b;

	encode(pw, &a);
	if (pathway_decode(a.data, a.size, &back, &err) != RL_OK)
		fail_msg("decode: %s", err.message);
	assert_true(pathway_equal(pw, &back));
	assert_true(pathway_equal(&back, pw));
	encode(&back, &b);
	assert_int_equal(a.size, b.size);
	assert_memory_equal(a.data, b.data, a.size);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
}

static void
test_roundtrip(void **state)
{
	static struct pathway pw;

	rich(&pw);
	roundtrip(&pw);
	OK(&pw, exited(), &ML, T0 + 13);
	roundtrip(&pw);
	OK(&pw, identified(), &ML, T0 + 14);
	roundtrip(&pw);
	pathway_init(&pw, "p-1", 3);
	roundtrip(&pw);
}

static void
test_roundtrip_long_miss_run(void **state)
{
	static struct pathway pw;
	char id[16];

	start(&pw);
	for (int i = 0; i < PW_MISS_RUN_KEEP + 4; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		OK(&pw, scheduled(id, T0), &CS, T0);
		OK(&pw, missed(id, false), &CS, T0 + i);
	}
	assert_int_equal(pw.miss_run, PW_MISS_RUN_KEEP + 4);
	roundtrip(&pw);
}

static void
test_equal_sees_differences(void **state)
{
	static struct pathway a, b;

	rich(&a);
	b = a;
	assert_true(pathway_equal(&a, &b));
	b.referrals[1].answered_at++;
	assert_false(pathway_equal(&a, &b));
	b = a;
	b.counts[EV_CONTACT_MADE]++;
	assert_false(pathway_equal(&a, &b));
	b = a;
	b.miss_times[1]++;
	assert_false(pathway_equal(&a, &b));
	b = a;
	strcpy(b.referents[0].id, "ml-tourz");
	assert_false(pathway_equal(&a, &b));
	b = a;
	b.confidence.last = 5;
	assert_false(pathway_equal(&a, &b));
	b = a;
	b.phase = PW_PHASE_REFERRED;
	assert_false(pathway_equal(&a, &b));
}

/*
 * Re-pack a stored pathway with one key changed: its value replaced by
 * what put() writes, or dropped (put NULL), or a new key added.
 */
static void
repack(const struct pathway *pw, const char *key,
    void (*put)(msgpack_packer *pk), msgpack_sbuffer *out)
{
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	msgpack_packer pk;
	const msgpack_object_map *m;
	uint32_t n;
	bool found = false;

	encode(pw, &sb);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, NULL),
	    MSGPACK_UNPACK_SUCCESS);
	m = &up.data.via.map;
	for (uint32_t i = 0; i < m->size; i++)
		found |= strlen(key) == m->ptr[i].key.via.str.size &&
		    memcmp(key, m->ptr[i].key.via.str.ptr, strlen(key)) == 0;
	n = m->size;
	if (!found)
		n++;
	else if (put == NULL)
		n--;
	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object_kv *kv = &m->ptr[i];
		bool hit = strlen(key) == kv->key.via.str.size &&
		    memcmp(key, kv->key.via.str.ptr, strlen(key)) == 0;

		if (hit && put == NULL)
			continue;
		msgpack_pack_object(&pk, kv->key);
		if (hit)
			put(&pk);
		else
			msgpack_pack_object(&pk, kv->val);
	}
	if (!found) {
		msgpack_pack_str(&pk, strlen(key));
		msgpack_pack_str_body(&pk, key, strlen(key));
		put(&pk);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

static void put_v2(msgpack_packer *pk) { msgpack_pack_uint32(pk, 2); }
static void put_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void put_phase(msgpack_packer *pk)
{
	msgpack_pack_str(pk, 7);
	msgpack_pack_str_body(pk, "retired", 7);
}
static void put_long_str(msgpack_packer *pk)
{
	static const char s[100] = "x";

	msgpack_pack_str(pk, sizeof(s));
	msgpack_pack_str_body(pk, s, sizeof(s));
}
static void put_expired_referral(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 6);
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "r1", 2);
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "ab", 2);
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "cd", 2);
	msgpack_pack_str(pk, 7);
	msgpack_pack_str_body(pk, "expired", 7);
	msgpack_pack_int64(pk, T0);
	msgpack_pack_int64(pk, 0);
}
static void put_too_many(msgpack_packer *pk)
{
	msgpack_pack_array(pk, PW_MAX_REFERENTS + 1);
	for (int i = 0; i < PW_MAX_REFERENTS + 1; i++) {
		char id[4] = { 'a', (char)('a' + i), 0, 0 };

		msgpack_pack_array(pk, 2);
		msgpack_pack_str(pk, 2);
		msgpack_pack_str_body(pk, id, 2);
		msgpack_pack_int64(pk, T0);
	}
}
static void put_dup_referents(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	for (int i = 0; i < 2; i++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_str(pk, 2);
		msgpack_pack_str_body(pk, "aa", 2);
		msgpack_pack_int64(pk, T0);
	}
}
static void put_big_run(msgpack_packer *pk) { msgpack_pack_uint32(pk, 7); }
static void put_bad_count(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str(pk, 8);
	msgpack_pack_str_body(pk, "no.event", 8);
	msgpack_pack_uint32(pk, 1);
}
static void put_score(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, 9);
	msgpack_pack_int64(pk, T0);
	msgpack_pack_int(pk, 9);
	msgpack_pack_int64(pk, T0);
}

static void
expect_storage_error(const struct pathway *pw, const char *key,
    void (*put)(msgpack_packer *pk), const char *file, int line)
{
	static struct pathway out;
	msgpack_sbuffer sb;
	int rc;

	repack(pw, key, put, &sb);
	rc = pathway_decode(sb.data, sb.size, &out, &err);
	msgpack_sbuffer_destroy(&sb);
	if (rc != RL_E_STORAGE)
		print_error("key %s: decoded with %d\n", key, rc);
	_assert_int_equal(rc, RL_E_STORAGE, file, line);
}
#define BAD(pw, key, put) expect_storage_error(pw, key, put, __FILE__, __LINE__)

static void
test_decode_refuses_bad_content(void **state)
{
	static struct pathway pw;

	rich(&pw);
	BAD(&pw, "v", put_v2);
	BAD(&pw, "v", NULL);
	BAD(&pw, "phase", put_phase);
	BAD(&pw, "phase", NULL);
	BAD(&pw, "qpv", put_nil);
	BAD(&pw, "qpv", put_long_str);
	BAD(&pw, "referrals", put_expired_referral);
	BAD(&pw, "referents", put_too_many);
	BAD(&pw, "referents", put_dup_referents);
	BAD(&pw, "miss_run", put_big_run);
	BAD(&pw, "counts", put_bad_count);
	BAD(&pw, "confidence", put_score);
	BAD(&pw, "exit_reason", put_phase);   /* exit reason while not exited */
	BAD(&pw, "no_such_key", put_nil);
}

static void
test_decode_survives_damage(void **state)
{
	static struct pathway pw, out;
	msgpack_sbuffer sb;
	char *copy;

	rich(&pw);
	encode(&pw, &sb);
	copy = malloc(sb.size + 1);
	assert_non_null(copy);

	/* every truncation, and one byte too many */
	for (size_t n = 0; n < sb.size; n++)
		assert_int_equal(pathway_decode(sb.data, n, &out, &err),
		    RL_E_STORAGE);
	memcpy(copy, sb.data, sb.size);
	copy[sb.size] = (char)0xc0;
	assert_int_equal(pathway_decode(copy, sb.size + 1, &out, &err),
	    RL_E_STORAGE);
	assert_int_equal(pathway_decode("\x93\x01\x02\x03", 4, &out, &err),
	    RL_E_STORAGE);

	/* every byte flipped in a few ways: an error or a valid pathway,
	 * never a crash or a sanitizer report */
	for (size_t i = 0; i < sb.size; i++) {
		static const unsigned char flips[] = { 0x01, 0x80, 0xff, 0x20 };

		for (size_t f = 0; f < sizeof(flips); f++) {
			int rc;

			memcpy(copy, sb.data, sb.size);
			copy[i] = (char)(copy[i] ^ flips[f]);
			rc = pathway_decode(copy, sb.size, &out, &err);
			assert_true(rc == RL_OK || rc == RL_E_STORAGE);
		}
	}
	free(copy);
	msgpack_sbuffer_destroy(&sb);
}

/* ===================== rules ===================== */

static void
test_referral_unanswered(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;
	const int64_t s = T0 + HOUR, due = s + 10 * DAY;

	start(&pw);
	DISARMED(&pw, RULE_REFERRAL_UNANSWERED);
	OK(&pw, sent("r1", "ml-tours"), &MED, s);
	OK(&pw, sent("r2", "ft-tours"), &MED, s + DAY);
	FIRES_AT(&pw, RULE_REFERRAL_UNANSWERED, due);   /* the oldest */
	assert_true(pathway_rule_holds(&pw, RULE_REFERRAL_UNANSWERED, R, due,
	    &info));
	assert_int_equal(info.severity, 1);
	assert_int_equal(info.nagents, 1);
	assert_string_equal(info.agents[0], "ml-tours");
	assert_string_equal(info.referral, "r1");

	/* answered after firing: resolved, and r2 takes over */
	OK(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, due + 1);
	FIRES_AT(&pw, RULE_REFERRAL_UNANSWERED, s + DAY + 10 * DAY);
	assert_false(holds(&pw, RULE_REFERRAL_UNANSWERED, due + 1));
	/* answered in time: never fires */
	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r2"), &FT, s + 2 * DAY);
	DISARMED(&pw, RULE_REFERRAL_UNANSWERED);
}

static void
test_referral_unanswered_cancel_resolves(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	assert_true(holds(&pw, RULE_REFERRAL_UNANSWERED, T0 + 12 * DAY));
	OK(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &MED, T0 + 12 * DAY);
	DISARMED(&pw, RULE_REFERRAL_UNANSWERED);
}

static void
test_referral_expired(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;
	const int64_t due = T0 + 30 * DAY;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	FIRES_AT(&pw, RULE_REFERRAL_EXPIRED, due);
	assert_true(pathway_rule_holds(&pw, RULE_REFERRAL_EXPIRED, R, due,
	    &info));
	assert_int_equal(info.severity, 2);
	assert_int_equal(info.nagents, 2);
	assert_string_equal(info.agents[0], "ml-tours");
	assert_string_equal(info.agents[1], "med-nord");
	/* past expiry nothing can answer it, so the unanswered warning is
	 * superseded: it holds until the expiry and no longer */
	REFUSED(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &ML, due,
	    RL_E_BAD_TRANSITION);
	assert_true(holds(&pw, RULE_REFERRAL_UNANSWERED, due - 1));
	assert_false(holds(&pw, RULE_REFERRAL_UNANSWERED, due));
	/* a new referral after the expiry re-orients the person: it
	 * resolves, and the new referral is the one watched */
	OK(&pw, sent("r2", "ft-tours"), &MED, due + DAY);
	assert_false(holds(&pw, RULE_REFERRAL_EXPIRED, due + DAY));
	assert_true(pathway_rule_holds(&pw, RULE_REFERRAL_UNANSWERED, R,
	    due + 11 * DAY, &info));
	assert_string_equal(info.referral, "r2");

	/* so does a support starting after the expiry */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	assert_true(holds(&pw, RULE_REFERRAL_EXPIRED, due));
	OK(&pw, support_started(), &CS, due + DAY);
	assert_false(holds(&pw, RULE_REFERRAL_EXPIRED, due + DAY));

	/* a referral sent before the expiry does not follow it */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, sent("r2", "ft-tours"), &MED, T0 + 25 * DAY);
	assert_true(pathway_rule_holds(&pw, RULE_REFERRAL_EXPIRED, R, due,
	    &info));
	assert_string_equal(info.referral, "r1");
	/* and r2 is then the unanswered one, from its own tenth day */
	assert_false(holds(&pw, RULE_REFERRAL_UNANSWERED, due));
	assert_true(pathway_rule_holds(&pw, RULE_REFERRAL_UNANSWERED, R,
	    T0 + 35 * DAY, &info));
	assert_string_equal(info.referral, "r2");

	/* answered in time */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r1"), &ML, due - 1);
	DISARMED(&pw, RULE_REFERRAL_EXPIRED);

	/* threshold from the config */
	R[RULE_REFERRAL_EXPIRED].threshold = 20;
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	FIRES_AT(&pw, RULE_REFERRAL_EXPIRED, T0 + 20 * DAY);
}

/* SPEC §4: whoever identified a person without referent is among the
 * agents concerned by no_referent and no_contact. */
static void
test_identifying_agent_is_concerned(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;

	start(&pw);
	assert_string_equal(pw.identified_by, "med-nord");
	assert_true(pathway_rule_holds(&pw, RULE_NO_REFERENT, R, T0 + 15 * DAY,
	    &info));
	assert_int_equal(info.nagents, 1);
	assert_string_equal(info.agents[0], "med-nord");
	assert_true(pathway_rule_holds(&pw, RULE_NO_CONTACT, R, T0 + 45 * DAY,
	    &info));
	assert_int_equal(info.nagents, 1);
	assert_string_equal(info.agents[0], "med-nord");
	/* a second identification by another agent changes nothing */
	OK(&pw, identified(), &CS, T0 + DAY);
	assert_string_equal(pw.identified_by, "med-nord");
	/* with a referent, the referent is the one concerned */
	OK(&pw, support_started(), &CS, T0 + 2 * DAY);
	assert_true(pathway_rule_holds(&pw, RULE_NO_CONTACT, R, T0 + 47 * DAY,
	    &info));
	assert_int_equal(info.nagents, 1);
	assert_string_equal(info.agents[0], "cs-sanitas");
	/* a new episode is brought in by whoever reopens it */
	OK(&pw, exited(), &COORD, T0 + 3 * DAY);
	OK(&pw, identified(), &ML, T0 + 4 * DAY);
	assert_string_equal(pw.identified_by, "ml-tours");
}

static void
test_no_reorientation_after_decline(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;
	const int64_t d = T0 + 3 * DAY, due = d + 10 * DAY;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, d);
	FIRES_AT(&pw, RULE_NO_REORIENTATION, due);
	assert_true(pathway_rule_holds(&pw, RULE_NO_REORIENTATION, R, due,
	    &info));
	assert_int_equal(info.severity, 2);
	assert_string_equal(info.agents[0], "med-nord");
	assert_string_equal(info.referral, "r1");

	/* a support after firing resolves it */
	OK(&pw, support_started(), &CS, due + 1);
	DISARMED(&pw, RULE_NO_REORIENTATION);

	/* a new referral in time: never fires */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, d);
	OK(&pw, sent("r2", "ft-tours"), &MED, due - 1);
	assert_false(holds(&pw, RULE_NO_REORIENTATION, due));
	/* only r2's own expiry could arm it again */
	FIRES_AT(&pw, RULE_NO_REORIENTATION, due - 1 + 30 * DAY + 10 * DAY);

	/* a referral dated before the decline does not follow it */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, d);
	OK(&pw, sent("r2", "ft-tours"), &MED, d - 1);
	FIRES_AT(&pw, RULE_NO_REORIENTATION, due);
}

static void
test_no_reorientation_after_cancel(void **state)
{
	struct pathway pw;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	OK(&pw, answer(EV_REFERRAL_CANCELLED, "r1"), &MED, T0 + DAY);
	FIRES_AT(&pw, RULE_NO_REORIENTATION, T0 + 11 * DAY);
	OK(&pw, sent("r2", "ft-tours"), &MED, T0 + 12 * DAY);
	assert_false(holds(&pw, RULE_NO_REORIENTATION, T0 + 12 * DAY));
}

static void
test_no_reorientation_after_expiry(void **state)
{
	struct pathway pw;
	const int64_t due = T0 + 30 * DAY + 10 * DAY;

	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	FIRES_AT(&pw, RULE_NO_REORIENTATION, due);
	OK(&pw, support_started(), &CS, due);
	DISARMED(&pw, RULE_NO_REORIENTATION);

	/* without expiry an unanswered referral is never closed */
	R[RULE_REFERRAL_EXPIRED].enabled = false;
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	DISARMED(&pw, RULE_NO_REORIENTATION);
}

static void
test_no_referent(void **state)
{
	struct pathway pw;
	const int64_t due = T0 + 15 * DAY;

	start(&pw);
	FIRES_AT(&pw, RULE_NO_REFERENT, due);
	/* a support after firing resolves it */
	OK(&pw, support_started(), &ML, due + 1);
	DISARMED(&pw, RULE_NO_REFERENT);
	/* the last referent leaving restarts the clock */
	OK(&pw, support_ended("completed"), &ML, T0 + 40 * DAY);
	FIRES_AT(&pw, RULE_NO_REFERENT, T0 + 55 * DAY);

	/* a support in time: never fires */
	start(&pw);
	OK(&pw, support_started(), &ML, due - 1);
	DISARMED(&pw, RULE_NO_REFERENT);
}

static void
test_no_referent_and_referrals(void **state)
{
	struct pathway pw;

	/* an open referral in time moves the deadline past its expiry */
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0 + DAY);
	assert_false(holds(&pw, RULE_NO_REFERENT, T0 + 15 * DAY));
	FIRES_AT(&pw, RULE_NO_REFERENT, T0 + DAY + 30 * DAY + 15 * DAY);
	/* declined: from the decline */
	OK(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, T0 + 5 * DAY);
	FIRES_AT(&pw, RULE_NO_REFERENT, T0 + 20 * DAY);
	/* an accepted referral is open until a support starts after it */
	OK(&pw, sent("r2", "ft-tours"), &MED, T0 + 21 * DAY);
	OK(&pw, answer(EV_REFERRAL_ACCEPTED, "r2"), &FT, T0 + 22 * DAY);
	DISARMED(&pw, RULE_NO_REFERENT);
	OK(&pw, support_started(), &FT, T0 + 23 * DAY);
	OK(&pw, support_ended("completed"), &FT, T0 + 60 * DAY);
	FIRES_AT(&pw, RULE_NO_REFERENT, T0 + 75 * DAY);

	/* never expiring, a requested referral keeps it off */
	R[RULE_REFERRAL_EXPIRED].enabled = false;
	start(&pw);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	DISARMED(&pw, RULE_NO_REFERENT);
}

static void
test_no_referent_needs_identification(void **state)
{
	struct pathway pw;

	pathway_init(&pw, "p-1", 3);
	OK(&pw, contact(), &CS, T0);
	DISARMED(&pw, RULE_NO_REFERENT);
	OK(&pw, identified(), &CS, T0 + DAY);
	FIRES_AT(&pw, RULE_NO_REFERENT, T0 + 16 * DAY);
}

static void
test_no_contact(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;

	start(&pw);
	OK(&pw, support_started(), &ML, T0 + DAY);
	FIRES_AT(&pw, RULE_NO_CONTACT, T0 + 46 * DAY);
	assert_true(pathway_rule_holds(&pw, RULE_NO_CONTACT, R, T0 + 46 * DAY,
	    &info));
	assert_int_equal(info.severity, 2);
	assert_string_equal(info.agents[0], "ml-tours");
	/* a contact in time moves it; one after firing resolves it */
	OK(&pw, contact(), &ML, T0 + 40 * DAY);
	FIRES_AT(&pw, RULE_NO_CONTACT, T0 + 85 * DAY);
	OK(&pw, contact(), &CS, T0 + 90 * DAY);
	assert_false(holds(&pw, RULE_NO_CONTACT, T0 + 90 * DAY));
	/* any event is a sign of life, not only contact.made */
	OK(&pw, confidence(3), &CS, T0 + 100 * DAY);
	FIRES_AT(&pw, RULE_NO_CONTACT, T0 + 145 * DAY);
}

static void
test_missed_appointments(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;

	start(&pw);
	OK(&pw, support_started(), &CS, T0);
	OK(&pw, scheduled("a1", T0 + DAY), &CS, T0);
	OK(&pw, scheduled("a2", T0 + 8 * DAY), &CS, T0);
	OK(&pw, scheduled("a3", T0 + 15 * DAY), &CS, T0);
	OK(&pw, missed("a1", false), &CS, T0 + DAY);
	DISARMED(&pw, RULE_MISSED_APPOINTMENTS);
	OK(&pw, missed("a2", false), &CS, T0 + 8 * DAY);
	FIRES_AT(&pw, RULE_MISSED_APPOINTMENTS, T0 + 8 * DAY);
	assert_true(pathway_rule_holds(&pw, RULE_MISSED_APPOINTMENTS, R,
	    T0 + 8 * DAY, &info));
	assert_string_equal(info.agents[0], "cs-sanitas");
	/* the person comes back: resolved */
	OK(&pw, attended("a3"), &CS, T0 + 15 * DAY);
	DISARMED(&pw, RULE_MISSED_APPOINTMENTS);

	/* attending in between: never fires */
	start(&pw);
	OK(&pw, scheduled("a1", T0), &CS, T0);
	OK(&pw, scheduled("a2", T0), &CS, T0);
	OK(&pw, scheduled("a3", T0), &CS, T0);
	OK(&pw, missed("a1", false), &CS, T0 + 1);
	OK(&pw, attended("a2"), &CS, T0 + 2);
	OK(&pw, missed("a3", false), &CS, T0 + 3);
	DISARMED(&pw, RULE_MISSED_APPOINTMENTS);
	/* excused misses do not count */
	OK(&pw, scheduled("a4", T0), &CS, T0);
	OK(&pw, missed("a4", true), &CS, T0 + 4);
	DISARMED(&pw, RULE_MISSED_APPOINTMENTS);
}

static void
test_missed_appointments_threshold(void **state)
{
	struct pathway pw;
	char id[16];
	const int n = PW_MISS_RUN_KEEP + 4;

	start(&pw);
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "a%d", i);
		OK(&pw, scheduled(id, T0), &CS, T0);
		OK(&pw, missed(id, false), &CS, T0 + i * DAY);
	}
	R[RULE_MISSED_APPOINTMENTS].threshold = 3;
	FIRES_AT(&pw, RULE_MISSED_APPOINTMENTS, T0 + 2 * DAY);
	R[RULE_MISSED_APPOINTMENTS].threshold = PW_MISS_RUN_KEEP;
	FIRES_AT(&pw, RULE_MISSED_APPOINTMENTS,
	    T0 + (PW_MISS_RUN_KEEP - 1) * DAY);
	/* beyond the kept times, the latest miss stands in */
	R[RULE_MISSED_APPOINTMENTS].threshold = (uint32_t)n;
	FIRES_AT(&pw, RULE_MISSED_APPOINTMENTS, T0 + (n - 1) * DAY);
	R[RULE_MISSED_APPOINTMENTS].threshold = (uint32_t)n + 1;
	DISARMED(&pw, RULE_MISSED_APPOINTMENTS);
}

static void
test_support_dropped(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;
	const int64_t d = T0 + 20 * DAY, due = d + 7 * DAY;

	start(&pw);
	OK(&pw, support_started(), &ML, T0 + DAY);
	DISARMED(&pw, RULE_SUPPORT_DROPPED);
	OK(&pw, support_ended("dropped_out"), &ML, d);
	FIRES_AT(&pw, RULE_SUPPORT_DROPPED, due);
	assert_true(pathway_rule_holds(&pw, RULE_SUPPORT_DROPPED, R, due,
	    &info));
	assert_int_equal(info.severity, 2);
	assert_string_equal(info.agents[0], "ml-tours");
	/* a referral after firing resolves it */
	OK(&pw, sent("r1", "ft-tours"), &ML, due + 1);
	DISARMED(&pw, RULE_SUPPORT_DROPPED);

	/* another support in time: never fires */
	start(&pw);
	OK(&pw, support_started(), &ML, T0 + DAY);
	OK(&pw, support_ended("dropped_out"), &ML, d);
	OK(&pw, support_started(), &CS, due - 1);
	DISARMED(&pw, RULE_SUPPORT_DROPPED);

	/* other outcomes are not a drop-out */
	start(&pw);
	OK(&pw, support_started(), &ML, T0 + DAY);
	OK(&pw, support_ended("completed"), &ML, d);
	DISARMED(&pw, RULE_SUPPORT_DROPPED);
}

static void
test_contract_ending(void **state)
{
	struct pathway pw;
	struct pw_alert_info info;
	const int64_t ends = INT64_C(1814313600000);   /* 2027-06-30 */
	const int64_t due = ends - 30 * DAY;

	start(&pw);
	OK(&pw, employment("2027-06-30"), &CS, T0 + DAY);
	assert_true(pw.employment.ends_on == ends);
	FIRES_AT(&pw, RULE_CONTRACT_ENDING, due);
	assert_true(pathway_rule_holds(&pw, RULE_CONTRACT_ENDING, R, due,
	    &info));
	assert_int_equal(info.severity, 1);
	assert_string_equal(info.agents[0], "cs-sanitas");
	/* a referent after firing resolves it */
	OK(&pw, support_started(), &ML, due + 1);
	DISARMED(&pw, RULE_CONTRACT_ENDING);

	/* a referent in time: never fires */
	start(&pw);
	OK(&pw, employment("2027-06-30"), &CS, T0 + DAY);
	OK(&pw, support_started(), &ML, due - 1);
	DISARMED(&pw, RULE_CONTRACT_ENDING);

	/* open-ended contracts do not end */
	start(&pw);
	OK(&pw, employment(NULL), &CS, T0 + DAY);
	DISARMED(&pw, RULE_CONTRACT_ENDING);
}

/* A pathway where every rule is armed. */
static void
all_armed(struct pathway *pw)
{
	start(pw);
	OK(pw, sent("r1", "ml-tours"), &MED, T0);
	OK(pw, sent("r2", "ft-tours"), &MED, T0);
	OK(pw, answer(EV_REFERRAL_DECLINED, "r2"), &FT, T0 + DAY);
	OK(pw, support_started(), &CS, T0);
	OK(pw, support_ended("dropped_out"), &CS, T0 + DAY);
	OK(pw, scheduled("a1", T0), &CS, T0);
	OK(pw, scheduled("a2", T0), &CS, T0);
	OK(pw, missed("a1", false), &CS, T0 + DAY);
	OK(pw, missed("a2", false), &CS, T0 + DAY);
	OK(pw, employment("2027-06-30"), &CS, T0 + DAY);
}

static void
test_every_rule_armed(void **state)
{
	struct pathway pw;
	int64_t due[RULE__COUNT];

	all_armed(&pw);
	pathway_due(&pw, R, pw.last_activity, due);
	for (int r = 0; r < RULE__COUNT; r++) {
		/* no_referent waits for r1 to expire: still armed */
		if (due[r] == 0)
			print_error("%s not armed\n", rule_name((enum rule_id)r));
		assert_true(due[r] != 0);
	}
}

static void
test_disabled_rules_give_zero(void **state)
{
	struct pathway pw;
	int64_t due[RULE__COUNT];

	all_armed(&pw);
	for (int r = 0; r < RULE__COUNT; r++) {
		reset_rules(NULL);
		R[r].enabled = false;
		pathway_due(&pw, R, pw.last_activity, due);
		assert_true(due[r] == 0);
		assert_false(holds(&pw, (enum rule_id)r, T0 + 3650 * DAY));
	}
}

static void
test_exited_gives_zero(void **state)
{
	struct pathway pw;
	int64_t due[RULE__COUNT];

	all_armed(&pw);
	OK(&pw, exited(), &COORD, T0 + 2 * DAY);
	pathway_due(&pw, R, pw.last_activity, due);
	for (int r = 0; r < RULE__COUNT; r++) {
		assert_true(due[r] == 0);
		assert_false(holds(&pw, (enum rule_id)r, T0 + 3650 * DAY));
	}
}

static void
test_new_pathway_gives_zero(void **state)
{
	struct pathway pw;
	int64_t due[RULE__COUNT];

	pathway_init(&pw, "p-1", 3);
	pathway_due(&pw, R, pw.last_activity, due);
	for (int r = 0; r < RULE__COUNT; r++)
		assert_true(due[r] == 0);
}

/* After a reopening, nothing from the closed episode fires into the new
 * one; the new episode is watched like a new pathway. */
static void
test_reopened_pathway_starts_afresh(void **state)
{
	struct pathway pw;
	const int64_t back = T0 + 200 * DAY;
	int64_t due[RULE__COUNT];

	all_armed(&pw);
	OK(&pw, exited(), &COORD, T0 + 2 * DAY);
	OK(&pw, identified(), &ML, back);
	pathway_due(&pw, R, pw.last_activity, due);
	for (int r = 0; r < RULE__COUNT; r++)
		if (r != RULE_NO_REFERENT && r != RULE_NO_CONTACT)
			assert_true(due[r] == 0);
	FIRES_AT(&pw, RULE_NO_REFERENT, back + 15 * DAY);
	FIRES_AT(&pw, RULE_NO_CONTACT, back + 45 * DAY);
	/* the old referral expired long ago */
	REFUSED(&pw, answer(EV_REFERRAL_DECLINED, "r1"), &ML, back + DAY,
	    RL_E_BAD_TRANSITION);
	/* new referrals are watched again */
	OK(&pw, sent("r3", "ft-tours"), &ML, back + DAY);
	FIRES_AT(&pw, RULE_REFERRAL_UNANSWERED, back + 11 * DAY);
}

/* Bytes from a fixed sequence (xorshift), none of them zero. */
static void
scribble(void *p, size_t n, uint32_t *x)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		*x ^= *x << 13;
		*x ^= *x >> 17;
		*x ^= *x << 5;
		b[i] = (unsigned char)(*x | 1);
	}
}

/* A pathway with every byte set except the unused part of each array. */
static void
random_pathway(struct pathway *pw, uint32_t *x)
{
	scribble(pw, sizeof(*pw), x);
	pw->nreferrals = 3;
	memset(&pw->referrals[3], 0, sizeof(pw->referrals) - 3 * sizeof(pw->referrals[0]));
	pw->nreferents = 1;
	memset(&pw->referents[1], 0, sizeof(pw->referents) - sizeof(pw->referents[0]));
	pw->nbarriers = 0;
	memset(pw->barriers, 0, sizeof(pw->barriers));
	pw->nappointments = PW_MAX_APPOINTMENTS;
	pw->nenrollments = 2;
	memset(&pw->enrollments[2], 0, sizeof(pw->enrollments) - 2 * sizeof(pw->enrollments[0]));
}

/*
 * Whatever a failed apply wrote anywhere in the pathway, and however the
 * scratch it was saved in looked before, restoring gives back every byte:
 * a field the save misses would differ here.
 */
static void
test_save_and_restore_give_back_every_byte(void **state)
{
	static struct pathway orig, pw, save;
	uint32_t x = 2463534242u;

	for (int round = 0; round < 20; round++) {
		random_pathway(&orig, &x);
		pw = orig;
		scribble(&save, sizeof(save), &x);
		pathway_save(&save, &pw);
		scribble(&pw, sizeof(pw), &x);
		pw.nreferrals = round % 5 == 0 ? -7 : round;    /* any count at all */
		pathway_restore(&pw, &save);
		assert_memory_equal(&pw, &orig, sizeof(pw));
	}
}

/* A refusal after a change in place: the pathway as it was. */
static void
test_restore_undoes_a_refused_apply(void **state)
{
	static struct pathway pw, before, save;
	struct rl_event again = sent("r1", "ml-tours");

	pathway_init(&pw, "p-1", 3);
	OK(&pw, identified(), &MED, T0);
	OK(&pw, sent("r1", "ml-tours"), &MED, T0);
	before = pw;
	pathway_save(&save, &pw);
	/* The same referral again: refused after touch() moved the pathway. */
	assert_int_equal(pathway_apply_in_place(&pw, &again, &MED, T0 + DAY, R,
	    &fx, &err), RL_E_REFERRAL_EXISTS);
	assert_memory_not_equal(&pw, &before, sizeof(pw));
	pathway_restore(&pw, &save);
	assert_memory_equal(&pw, &before, sizeof(pw));
}

#define T(f) cmocka_unit_test_setup(f, reset_rules)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identified_opens),
		T(test_implicit_open),
		T(test_phases_only_move_forward),
		T(test_phase_can_skip_steps),
		T(test_referral_sent_goes_to_target),
		T(test_referral_answers_go_to_the_other_party),
		T(test_referral_refusals),
		T(test_expired_referral_cannot_be_answered),
		T(test_referral_state_is_derived),
		T(test_barriers),
		T(test_appointments),
		T(test_missed_run),
		T(test_closed_appointments_make_room),
		T(test_support),
		T(test_exit_and_reopen),
		T(test_coordinator_may_exit),
		T(test_operator_may_send_nothing),
		T(test_non_pathway_events),
		T(test_event_for_another_participant),
		T(test_missing_field_is_refused),
		T(test_enrollment_employment_confidence),
		T(test_activity_and_counts),
		T(test_limits_are_clear_errors),
		T(test_roundtrip),
		T(test_roundtrip_long_miss_run),
		T(test_equal_sees_differences),
		T(test_decode_refuses_bad_content),
		T(test_decode_survives_damage),
		T(test_referral_unanswered),
		T(test_referral_unanswered_cancel_resolves),
		T(test_referral_expired),
		T(test_identifying_agent_is_concerned),
		T(test_no_reorientation_after_decline),
		T(test_no_reorientation_after_cancel),
		T(test_no_reorientation_after_expiry),
		T(test_no_referent),
		T(test_no_referent_and_referrals),
		T(test_no_referent_needs_identification),
		T(test_no_contact),
		T(test_missed_appointments),
		T(test_missed_appointments_threshold),
		T(test_support_dropped),
		T(test_contract_ending),
		T(test_every_rule_armed),
		T(test_disabled_rules_give_zero),
		T(test_exited_gives_zero),
		T(test_new_pathway_gives_zero),
		T(test_reopened_pathway_starts_afresh),
		T(test_save_and_restore_give_back_every_byte),
		T(test_restore_undoes_a_refused_apply),
	};

	return cmocka_run_group_tests_name("pathway", tests, NULL, NULL);
}
