/*
 * The access decision (access.c): who may read a participant's file and
 * whose territory they are in, on pathways built by hand and a clock the
 * test sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "access.h"

#define T0      INT64_C(1800000000000)     /* 2027-01-15T08:00:00Z */
#define DAY     PW_DAY_MS

static struct rule_config R[RULE__COUNT];
static struct pathway pw;

static struct agent
agent(const char *id, enum agent_kind kind, const char *qpv)
{
	struct agent a;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	a.kind = kind;
	if (qpv != NULL) {
		snprintf(a.qpv[0], sizeof(a.qpv[0]), "%s", qpv);
		a.nqpv = 1;
	}
	return a;
}

/* p-1 of sanitas, identified by med-nord at T0, nothing else. */
static int
reset(void **state)
{
	memset(R, 0, sizeof(R));
	R[RULE_REFERRAL_EXPIRED] = (struct rule_config){ true, 30 };
	pathway_init(&pw, "p-1", 3);
	snprintf(pw.qpv, sizeof(pw.qpv), "sanitas");
	snprintf(pw.identified_by, sizeof(pw.identified_by), "med-nord");
	pw.phase = PW_PHASE_IDENTIFIED;
	pw.identified_at = pw.opened_at = T0;
	return 0;
}

static void
add_referral(const char *from, const char *to, enum pw_referral_state st,
    int64_t sent, int64_t answered)
{
	struct pw_referral *r = &pw.referrals[pw.nreferrals++];

	snprintf(r->id, sizeof(r->id), "r-%d", pw.nreferrals);
	snprintf(r->from, sizeof(r->from), "%s", from);
	snprintf(r->to, sizeof(r->to), "%s", to);
	r->state = st;
	r->sent_at = sent;
	r->answered_at = answered;
}

static enum access_reason
read_as(const struct agent *a, int64_t now)
{
	return access_read(a, &pw, R, now);
}

static void
test_operators_never_read(void **state)
{
	struct agent ops = agent("ops", AK_OPERATOR, NULL);

	/* Even named in the pathway, and with no QPV list. */
	snprintf(pw.identified_by, sizeof(pw.identified_by), "ops");
	assert_int_equal(read_as(&ops, T0), ACCESS_NONE);
	assert_int_equal(access_read(&ops, NULL, R, T0), ACCESS_NONE);
}

static void
test_coordinators_read_their_territory(void **state)
{
	struct agent all = agent("coord", AK_COORDINATOR, NULL);
	struct agent san = agent("coord-san", AK_COORDINATOR, "sanitas");
	struct agent eur = agent("coord-eur", AK_COORDINATOR, "europe");

	assert_int_equal(read_as(&all, T0), ACCESS_COORDINATOR);
	assert_int_equal(read_as(&san, T0), ACCESS_COORDINATOR);
	assert_int_equal(read_as(&eur, T0), ACCESS_NONE);
	assert_true(access_covers(&san, &pw));
	assert_false(access_covers(&eur, &pw));
	/* No pathway: only a coordinator of every QPV gets further (to be
	 * told the person is unknown). */
	assert_int_equal(access_read(&all, NULL, R, T0), ACCESS_COORDINATOR);
	assert_int_equal(access_read(&san, NULL, R, T0), ACCESS_NONE);
	/* A pathway never given a QPV (opened by contact.made). */
	pw.qpv[0] = '\0';
	assert_false(access_covers(&san, &pw));
	assert_true(access_covers(&all, &pw));
}

static void
test_referents_read(void **state)
{
	struct agent ml = agent("ml-tours", AK_MISSION_LOCALE, NULL);

	assert_int_equal(read_as(&ml, T0), ACCESS_NONE);
	snprintf(pw.referents[0].id, sizeof(pw.referents[0].id), "ml-tours");
	pw.nreferents = 1;
	assert_int_equal(read_as(&ml, T0 + 400 * DAY), ACCESS_REFERENT);
}

static void
test_referral_parties_read_until_90_days_after_closing(void **state)
{
	struct agent ml = agent("ml-tours", AK_MISSION_LOCALE, NULL);
	struct agent ft = agent("ft-tours", AK_FRANCE_TRAVAIL, NULL);
	struct agent cs = agent("cs-pasteur", AK_SOCIAL_CENTRE, NULL);

	/* Declined at T0 + 2 days: both parties read until 90 days later. */
	add_referral("ml-tours", "ft-tours", PW_REF_DECLINED, T0, T0 + 2 * DAY);
	assert_int_equal(read_as(&ml, T0), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 91 * DAY), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 92 * DAY - 1), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 92 * DAY), ACCESS_NONE);
	assert_int_equal(read_as(&ml, T0 + 92 * DAY), ACCESS_NONE);
	assert_int_equal(read_as(&cs, T0), ACCESS_NONE);
}

static void
test_open_and_expired_referrals(void **state)
{
	struct agent ft = agent("ft-tours", AK_FRANCE_TRAVAIL, NULL);

	/* Still requested: open until it expires at 30 days, then closed. */
	add_referral("ml-tours", "ft-tours", PW_REF_REQUESTED, T0, 0);
	assert_int_equal(read_as(&ft, T0 + 29 * DAY), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 120 * DAY - 1), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 120 * DAY), ACCESS_NONE);
	/* With referral_expired switched off it never closes. */
	R[RULE_REFERRAL_EXPIRED].enabled = false;
	assert_int_equal(read_as(&ft, T0 + 1000 * DAY), ACCESS_REFERRAL_PARTY);
}

static void
test_accepted_referral_closes_when_accepted(void **state)
{
	struct agent ft = agent("ft-tours", AK_FRANCE_TRAVAIL, NULL);

	add_referral("ml-tours", "ft-tours", PW_REF_ACCEPTED, T0, T0 + DAY);
	assert_int_equal(read_as(&ft, T0 + 91 * DAY - 1), ACCESS_REFERRAL_PARTY);
	assert_int_equal(read_as(&ft, T0 + 91 * DAY), ACCESS_NONE);
}

static void
test_identifier_reads_during_its_episode(void **state)
{
	struct agent med = agent("med-nord", AK_MEDIATOR, NULL);
	struct agent other = agent("med-sud", AK_MEDIATOR, NULL);

	assert_int_equal(read_as(&med, T0 + 500 * DAY), ACCESS_IDENTIFIER);
	assert_int_equal(read_as(&other, T0), ACCESS_NONE);
	/* An exit ends the episode. */
	pw.phase = PW_PHASE_EXITED;
	pw.exited_at = T0 + DAY;
	assert_int_equal(read_as(&med, T0 + DAY), ACCESS_NONE);
	/* A new episode names its own identifier. */
	pw.phase = PW_PHASE_IDENTIFIED;
	snprintf(pw.identified_by, sizeof(pw.identified_by), "med-sud");
	assert_int_equal(read_as(&med, T0 + 2 * DAY), ACCESS_NONE);
	assert_int_equal(read_as(&other, T0 + 2 * DAY), ACCESS_IDENTIFIER);
}

/* What an agent wrote is not in the decision: a pathway full of events
 * from an unrelated partner grants it nothing. */
static void
test_writing_grants_nothing(void **state)
{
	struct agent asso = agent("asso-rives", AK_ASSOCIATION, NULL);

	pw.counts[EV_CONTACT_MADE] = 12;
	pw.last_activity = T0 + DAY;
	assert_int_equal(read_as(&asso, T0 + DAY), ACCESS_NONE);
	assert_string_equal(access_reason_name(ACCESS_NONE), "none");
	assert_string_equal(access_reason_name(ACCESS_REFERRAL_PARTY),
	    "referral_party");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_operators_never_read, reset),
		cmocka_unit_test_setup(test_coordinators_read_their_territory, reset),
		cmocka_unit_test_setup(test_referents_read, reset),
		cmocka_unit_test_setup(
		    test_referral_parties_read_until_90_days_after_closing, reset),
		cmocka_unit_test_setup(test_open_and_expired_referrals, reset),
		cmocka_unit_test_setup(test_accepted_referral_closes_when_accepted,
		    reset),
		cmocka_unit_test_setup(test_identifier_reads_during_its_episode,
		    reset),
		cmocka_unit_test_setup(test_writing_grants_nothing, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
