/*
 * Rupture rules (SPEC §4): when each one falls due for a pathway.
 *
 * Each rule is one function that returns the time its condition becomes
 * (or became) true if nothing else happens, or 0 if it cannot become true
 * in the current state.  The condition holds at "now" exactly when that
 * time is set and not after now, so pathway_due() and pathway_rule_holds()
 * share the same code and can never disagree: the broker arms the deadline
 * from one and checks it, and resolves alerts, with the other.
 *
 * "Followed" (no_reorientation, support_dropped) compares times, not log
 * positions: a referral or support that happened after the closure or the
 * drop-out follows it, even when it was recorded first.
 *
 * A reopening participant.identified starts a new episode, and nothing from
 * the closed one fires into it: referrals sent, closures, drop-outs, misses
 * and employments before the reopening arm no rule.  Only what is still
 * true of the person counts: a referral still pending is still open.
 */
#include <string.h>

#include "pathway.h"

typedef int64_t (*rule_fn)(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info);

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int64_t
days(const struct rule_config *rc)
{
	return (int64_t)rc->threshold * PW_DAY_MS;
}

static void
add_agent(struct pw_alert_info *info, const char *id)
{
	size_t n = strnlen(id, sizeof(info->agents[0]) - 1);

	if (n == 0 || info->nagents == 4)
		return;
	for (int i = 0; i < info->nagents; i++)
		if (strcmp(info->agents[i], id) == 0)
			return;
	memcpy(info->agents[info->nagents], id, n);
	info->agents[info->nagents][n] = '\0';
	info->nagents++;
}

static void
add_referents(struct pw_alert_info *info, const struct pathway *pw)
{
	for (int i = 0; i < pw->nreferents; i++)
		add_agent(info, pw->referents[i].id);
}

static void
set_referral(struct pw_alert_info *info, const struct pw_referral *r)
{
	size_t n = strnlen(r->id, sizeof(info->referral) - 1);

	memcpy(info->referral, r->id, n);
	info->referral[n] = '\0';
}

/* When a still requested referral expires, or 0 if it never will. */
static int64_t
expiry(const struct pw_referral *r, const struct rule_config rules[RULE__COUNT])
{
	const struct rule_config *rc = &rules[RULE_REFERRAL_EXPIRED];

	if (r->state != PW_REF_REQUESTED || !rc->enabled)
		return 0;
	return r->sent_at + days(rc);
}

/* Still requested at "now": sent, neither answered nor expired. */
static bool
pending(const struct pw_referral *r, const struct rule_config rules[RULE__COUNT],
    int64_t now)
{
	int64_t e = expiry(r, rules);

	return r->state == PW_REF_REQUESTED && (e == 0 || e > now);
}

/* The pending referral of this episode sent first: the one waiting
 * longest. */
static const struct pw_referral *
oldest_pending(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now)
{
	const struct pw_referral *best = NULL;

	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];

		if (pending(r, rules, now) && r->sent_at >= pw->reopened_at &&
		    (best == NULL || r->sent_at < best->sent_at))
			best = r;
	}
	return best;
}

/*
 * A warning, and a reminder to the target, while the referral can still
 * be answered.  Once it expires, referral_expired takes over and this
 * alert is superseded: it could never resolve itself, since an expired
 * referral can no longer be accepted or declined.  A later referral still
 * pending is then the one watched.
 */
static int64_t
referral_unanswered(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	const struct pw_referral *r = oldest_pending(pw, rules, now);

	if (r == NULL)
		return 0;
	add_agent(info, r->to);
	set_referral(info, r);
	return r->sent_at + days(&rules[RULE_REFERRAL_UNANSWERED]);
}

/*
 * The latest referral, support or reopening: what "follows" a closure.
 * "except" is the closed referral itself, which cannot follow its own
 * closure even when both carry the same time (NULL: none excluded).
 */
static int64_t
last_fresh_start_except(const struct pathway *pw, const struct pw_referral *except)
{
	int64_t t = max64(pw->last_support_at, pw->reopened_at);

	for (int i = 0; i < pw->nreferrals; i++)
		if (&pw->referrals[i] != except)
			t = max64(t, pw->referrals[i].sent_at);
	return t;
}

static int64_t
last_fresh_start(const struct pathway *pw)
{
	return last_fresh_start_except(pw, NULL);
}

/*
 * Due when the first referral of this episode expires that nothing
 * followed; like no_reorientation, it resolves when the person is
 * re-oriented after the expiry (a new referral, a support starting).
 */
static int64_t
referral_expired(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	const struct pw_referral *fault = NULL;
	int64_t due = 0;

	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];
		int64_t e = expiry(r, rules);

		if (e == 0 || r->sent_at < pw->reopened_at ||
		    e <= last_fresh_start_except(pw, r) || (due != 0 && e >= due))
			continue;
		due = e;
		fault = r;
	}
	if (fault == NULL)
		return 0;
	add_agent(info, fault->to);
	add_agent(info, fault->from);
	set_referral(info, fault);
	return due;
}

/* When a referral was closed without being accepted, or 0. */
static int64_t
closure(const struct pw_referral *r, const struct rule_config rules[RULE__COUNT])
{
	if (r->state == PW_REF_DECLINED || r->state == PW_REF_CANCELLED)
		return r->answered_at;
	return expiry(r, rules);
}

/*
 * Each closure (decline, cancellation, expiry) that nothing followed arms
 * the rule; it falls due for the earliest one, and only a new referral or
 * support after all of them disarms it.
 */
static int64_t
no_reorientation(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	int64_t n = days(&rules[RULE_NO_REORIENTATION]);
	const struct pw_referral *fault = NULL;
	int64_t due = 0;

	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];
		int64_t c = closure(r, rules);

		if (c == 0 || c <= last_fresh_start_except(pw, r) ||
		    (due != 0 && c + n >= due))
			continue;
		due = c + n;
		fault = r;
	}
	if (fault == NULL)
		return 0;
	add_agent(info, fault->from);
	add_referents(info, pw);
	set_referral(info, fault);
	return due;
}

/*
 * An accepted referral stands for a referent about to start: it counts as
 * open until a support starts after it, from then on the referents tell.
 * One accepted in a closed episode does not count.
 */
static bool
accepted_still_open(const struct pathway *pw, const struct pw_referral *r)
{
	return r->state == PW_REF_ACCEPTED && r->answered_at >= pw->reopened_at &&
	    r->answered_at > pw->last_support_at;
}

/*
 * Due when the participant stopped having a referent or an open referral
 * (whichever ended last: identification, the last support, a decline or
 * cancellation, an expiry), plus the threshold.
 */
static int64_t
no_referent(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	int64_t since = max64(pw->identified_at, pw->referent_ended_at);

	if (pw->identified_at == 0 || pw->nreferents > 0)
		return 0;
	add_agent(info, pw->identified_by);
	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];

		if (accepted_still_open(pw, r))
			return 0;
		if (r->state == PW_REF_REQUESTED && expiry(r, rules) == 0)
			return 0;   /* open for as long as nothing expires */
		if (r->state != PW_REF_ACCEPTED)
			since = max64(since, closure(r, rules));
	}
	return since + days(&rules[RULE_NO_REFERENT]);
}

static int64_t
no_contact(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	add_referents(info, pw);
	/* Nobody took over: whoever brought the person in is concerned. */
	if (pw->nreferents == 0)
		add_agent(info, pw->identified_by);
	return pw->last_activity + days(&rules[RULE_NO_CONTACT]);
}

/*
 * Due at the miss that made the run reach the threshold (a count; below 1
 * means 1).  Past PW_MISS_RUN_KEEP only the latest miss is known, which is
 * also past the threshold, so the rule holds all the same.
 */
static int64_t
missed_appointments(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	uint32_t n = rules[RULE_MISSED_APPOINTMENTS].threshold;

	if (n < 1)
		n = 1;
	if (pw->miss_run < n)
		return 0;
	add_referents(info, pw);
	return n <= PW_MISS_RUN_KEEP ? pw->miss_times[n - 1] : pw->last_miss_at;
}

/* A support or referral after the drop-out follows it; the support that
 * ended may have started in the same millisecond, so "after" is strict. */
static int64_t
support_dropped(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	if (pw->dropped_out_at == 0 || last_fresh_start(pw) > pw->dropped_out_at)
		return 0;
	add_agent(info, pw->dropped_by);
	add_referents(info, pw);
	return pw->dropped_out_at + days(&rules[RULE_SUPPORT_DROPPED]);
}

/* Goes on holding after the end day: the person is then out of work
 * with nobody following them, which is worse, not better. */
static int64_t
contract_ending(const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	if (pw->employment.ends_on == 0 || pw->nreferents > 0 ||
	    pw->employment.started_at < pw->reopened_at)
		return 0;
	add_agent(info, pw->employment.by);
	return pw->employment.ends_on - days(&rules[RULE_CONTRACT_ENDING]);
}

static const rule_fn rule_fns[RULE__COUNT] = {
	[RULE_REFERRAL_UNANSWERED] = referral_unanswered,
	[RULE_REFERRAL_EXPIRED] = referral_expired,
	[RULE_NO_REORIENTATION] = no_reorientation,
	[RULE_NO_REFERENT] = no_referent,
	[RULE_NO_CONTACT] = no_contact,
	[RULE_MISSED_APPOINTMENTS] = missed_appointments,
	[RULE_SUPPORT_DROPPED] = support_dropped,
	[RULE_CONTRACT_ENDING] = contract_ending,
};

static int64_t
rule_due(const struct pathway *pw, enum rule_id rule,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	int64_t due;

	memset(info, 0, sizeof(*info));
	if ((unsigned)rule >= RULE__COUNT || !rules[rule].enabled ||
	    pw->phase == PW_PHASE_NEW || pw->phase == PW_PHASE_EXITED)
		return 0;
	due = rule_fns[rule](pw, rules, now, info);
	/* 0 means "not armed"; an armed rule due before the epoch (a
	 * contract ending in 1970) is simply overdue. */
	return due < 0 ? 1 : due;
}

void
pathway_due(const struct pathway *pw, const struct rule_config rules[RULE__COUNT],
    int64_t now, int64_t due[RULE__COUNT])
{
	struct pw_alert_info scratch;

	for (int r = 0; r < RULE__COUNT; r++)
		due[r] = rule_due(pw, (enum rule_id)r, rules, now, &scratch);
}

bool
pathway_rule_holds(const struct pathway *pw, enum rule_id rule,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info)
{
	struct pw_alert_info scratch;
	struct pw_alert_info *out = info != NULL ? info : &scratch;
	int64_t due = rule_due(pw, rule, rules, now, out);

	if (due == 0 || due > now) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	out->severity = rule == RULE_REFERRAL_UNANSWERED ||
	    rule == RULE_CONTRACT_ENDING ? 1 : 2;
	return true;
}
