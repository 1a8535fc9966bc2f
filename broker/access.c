/*
 * The access decision of access.h: a participant's file is read by the
 * coordinators of their QPV, their current referents, the parties of
 * their referrals (open, and for 90 days after closing), and the agent
 * that identified them, while the episode it opened lasts.
 */
#include <string.h>

#include "access.h"

bool
access_covers(const struct agent *who, const struct pathway *pw)
{
	if (who->nqpv == 0)
		return true;
	if (pw == NULL || pw->qpv[0] == '\0')
		return false;
	return agent_covers_qpv(who, pw->qpv, strlen(pw->qpv));
}

/*
 * When a referral closed (answered, cancelled or expired), or 0 while it
 * is still requested.  An expiry is not stored but derived from the sent
 * time, like the state the participant query shows.
 */
static int64_t
referral_closed_at(const struct pw_referral *r,
    const struct rule_config rules[RULE__COUNT], int64_t now)
{
	switch (pathway_referral_state(r, rules, now)) {
	case PW_REF_REQUESTED:
		return 0;
	case PW_REF_EXPIRED:
		return r->sent_at +
		    (int64_t)rules[RULE_REFERRAL_EXPIRED].threshold * PW_DAY_MS;
	default:
		return r->answered_at;
	}
}

static bool
referral_party(const char *id, const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now)
{
	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];
		int64_t closed;

		if (strcmp(r->from, id) != 0 && strcmp(r->to, id) != 0)
			continue;
		closed = referral_closed_at(r, rules, now);
		if (closed == 0 || now < closed + ACCESS_REFERRAL_AFTER_CLOSE_MS)
			return true;
	}
	return false;
}

static bool
referent(const char *id, const struct pathway *pw)
{
	for (int i = 0; i < pw->nreferents; i++)
		if (strcmp(pw->referents[i].id, id) == 0)
			return true;
	return false;
}

enum access_reason
access_read(const struct agent *who, const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now)
{
	if (who->kind == AK_OPERATOR)
		return ACCESS_NONE;
	if (who->kind == AK_COORDINATOR)
		return access_covers(who, pw) ? ACCESS_COORDINATOR : ACCESS_NONE;
	if (pw == NULL)
		return ACCESS_NONE;
	if (referent(who->id, pw))
		return ACCESS_REFERENT;
	if (referral_party(who->id, pw, rules, now))
		return ACCESS_REFERRAL_PARTY;
	/* An exit ends the episode, and with it the identifier's reading;
	 * a new participant.identified names the next episode's. */
	if (pw->phase != PW_PHASE_EXITED && strcmp(pw->identified_by, who->id) == 0)
		return ACCESS_IDENTIFIER;
	return ACCESS_NONE;
}

const char *
access_reason_name(enum access_reason reason)
{
	static const char *const names[] = {
		[ACCESS_NONE] = "none",
		[ACCESS_COORDINATOR] = "coordinator",
		[ACCESS_REFERENT] = "referent",
		[ACCESS_REFERRAL_PARTY] = "referral_party",
		[ACCESS_IDENTIFIER] = "identifier",
	};

	if ((unsigned)reason >= sizeof(names) / sizeof(names[0]))
		return "none";
	return names[reason];
}
