/*
 * End to end, who may read a participant's file and who may act on it
 * (SPEC §2.5): reading follows the relationships the pathway records,
 * never what an agent wrote, and coordinators act only within their QPVs.
 * Each test runs its own relaisd (harness.h) with manual_clock = yes, so
 * "90 days after a referral closed" is an operator moving the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "harness.h"

/* The participant query as agent c: true if it answered with a file,
 * false if it was refused with forbidden; anything else fails the test. */
static bool
can_read(relais_client *c, const char *agent, const char *participant)
{
	json_t *args = json_pack("{s:s}", "id", participant);
	json_t *r = relais_query(c, "participant", args, E2E_WAIT_MS);
	bool ok = r != NULL;

	json_decref(args);
	if (ok)
		e2e_assert(json_is_object(json_object_get(r, "state")) &&
		    json_is_array(json_object_get(r, "timeline")),
		    "%s reading %s: a result without state and timeline: %s",
		    agent, participant, e2e_json_str(r));
	else
		e2e_assert_int(202, relais_last_code(c), "code of a refused read");
	json_decref(r);
	return ok;
}

static json_t *
ev_exit(const char *event_id, const char *participant, int64_t at)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", event_id,
	    "type", "participant.exited", "occurred_at", (json_int_t)at,
	    "participant", participant, "reason", "moved");
}

static json_t *
ev_erase(const char *event_id, const char *participant, int64_t at)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "event_id", event_id,
	    "type", "participant.erased", "occurred_at", (json_int_t)at,
	    "participant", participant);
}

static json_t *
ev_alert(const char *type, const char *event_id, const char *participant,
    const char *alert, int64_t at)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", event_id,
	    "type", type, "occurred_at", (json_int_t)at,
	    "participant", participant, "alert", alert);
}

/* The phase the pathway of participant has, as coordinator c reads it. */
static const char *
phase_of(relais_client *c, const char *participant, char *buf, size_t len)
{
	json_t *args = json_pack("{s:s}", "id", participant);
	json_t *r = relais_query(c, "participant", args, E2E_WAIT_MS);

	json_decref(args);
	e2e_assert(r != NULL, "reading %s: %s", participant, relais_errmsg(c));
	snprintf(buf, len, "%s", jstr(json_object_get(r, "state"), "phase"));
	json_decref(r);
	return buf;
}

/*
 * Observed: an association with no link to p-4821 was refused its file,
 * sent one contact.made about p-4821 (any partner may) and could then read
 * the whole pathway and timeline.  Writing gives no right to read: it is
 * still refused, exactly as for a pseudonym nobody used.
 */
static void
test_writing_never_grants_reading(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *ml, *assoc;
	json_t *ev;

	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "asso-rives", "association", true);
	e2e_start(b);
	ml = au_connect_quiet(b, "ml-tours");
	assoc = au_connect_quiet(b, "asso-rives");
	au_submit_ok(ml, au_ev_identified("e-1", "p-4821", "sanitas",
	    (int64_t)rl_wall_ms()));
	ev = json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", "e-2", "type",
	    "support.started", "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", "p-4821", "programme", "accompagnement renforcé");
	au_submit_ok(ml, ev);

	e2e_assert(!can_read(assoc, "asso-rives", "p-4821"),
	    "an unrelated association read p-4821");
	e2e_assert(!can_read(assoc, "asso-rives", "p-9999"),
	    "an unknown pseudonym must look like an unrelated person");
	au_submit_ok(assoc, e2e_ev_contact("c-1", "p-4821"));
	e2e_assert(!can_read(assoc, "asso-rives", "p-4821"),
	    "one contact.made gave asso-rives p-4821's file");
	/* The identifying referent still reads it. */
	e2e_assert(can_read(ml, "ml-tours", "p-4821"), "the referent was refused");
	relais_close(&assoc);
	relais_close(&ml);
}

/*
 * Observed: a coordinator covering sanitas read, exited and erased a
 * participant of europe-chateaubriand.  Each is now forbidden (the exit
 * and the erasure on "participant") and records nothing; the person's own
 * coordinator still finds the file whole, and may act on it.
 */
static void
test_coordinators_act_within_their_territory(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *cs, *san, *ec;
	json_t *res;
	long long events;
	char phase[32];
	int64_t now = (int64_t)rl_wall_ms();

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	au_agent_add_qpv(b, "coord-sanitas", "coordinator", "sanitas");
	au_agent_add_qpv(b, "coord-europe", "coordinator", "europe-chateaubriand");
	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	san = au_connect_quiet(b, "coord-sanitas");
	ec = au_connect_quiet(b, "coord-europe");
	au_submit_ok(cs, au_ev_identified("e-1", "p-7", "europe-chateaubriand", now));
	au_submit_ok(cs, au_ev_support("e-2", "p-7", now));
	events = e2e_health(cs, "events");

	e2e_assert(!can_read(san, "coord-sanitas", "p-7"),
	    "a sanitas coordinator read a europe-chateaubriand participant");
	res = e2e_submit1(san, ev_exit("x-1", "p-7", now));
	e2e_expect_error(res, 202, "participant");
	json_decref(res);
	res = e2e_submit1(san, ev_erase("x-2", "p-7", now));
	e2e_expect_error(res, 202, "participant");
	json_decref(res);
	e2e_assert_int(events, e2e_health(cs, "events"), "events after refusals");

	e2e_assert_str("supported", phase_of(ec, "p-7", phase, sizeof(phase)),
	    "p-7's phase after the refusals");
	au_submit_ok(ec, ev_exit("x-1", "p-7", now));
	au_submit_ok(ec, ev_erase("x-2", "p-7", now));
	relais_close(&ec);
	relais_close(&san);
	relais_close(&cs);
}

/* ---- the authorisation matrix ---------------------------------------- */

enum action { READ, EXIT, ERASE, ACK, RESOLVE, ACTIONS };

static const char *const action_names[ACTIONS] = {
	"read", "exit", "erase", "acknowledge", "resolve",
};

/* One kind of agent, by its relationship with the person. */
struct row {
	const char *agent;
	const char *kind;
	const char *qpvs;           /* coordinators with a QPV list; else NULL */
	const char *relationship;
	bool allow[ACTIONS];
};

#define QPV "europe-chateaubriand"

/*
 * Every person of the test is built the same way (build_people):
 *   day 0    ident-before identifies them; old-from refers them to
 *            old-to, who declines at once.
 *   day 60   recent-from refers them to recent-to, who declines; recent-from
 *            refers them to expiring-to (left unanswered: it expires on
 *            day 90); coord-all exits them; ident-now identifies them
 *            again (a new episode); referent starts supporting them; writer
 *            makes a contact.
 *   day 100  open-from refers them to open-to (still requested).
 *   day 111  the check: old-*'s referral closed 111 days ago, recent-*'s
 *            51, expiring-to's 21; open-*'s referral_unanswered alert is
 *            open (the one acknowledged and resolved).
 */
static const struct row matrix[] = {
	{ "coord-all", "coordinator", NULL, "coordinator without a QPV list",
	    { true, true, true, true, true } },
	{ "coord-europe", "coordinator", QPV, "coordinator covering the QPV",
	    { true, true, true, true, true } },
	{ "coord-sanitas", "coordinator", "sanitas,rochepinard",
	    "coordinator not covering the QPV",
	    { false, false, false, false, false } },
	{ "referent", "plie", NULL, "current referent",
	    { true, true, false, false, false } },
	{ "open-from", "mission_locale", NULL, "sender of an open referral",
	    { true, false, false, false, false } },
	{ "open-to", "cap_emploi", NULL, "target of an open referral",
	    { true, false, false, false, false } },
	{ "recent-from", "france_travail", NULL,
	    "sender of referrals closed 51 and 21 days ago",
	    { true, false, false, false, false } },
	{ "recent-to", "iae", NULL, "target of a referral declined 51 days ago",
	    { true, false, false, false, false } },
	{ "expiring-to", "iae", NULL,
	    "target of a referral expired 21 days ago",
	    { true, false, false, false, false } },
	{ "old-from", "social_centre", NULL,
	    "sender of a referral closed 111 days ago",
	    { false, false, false, false, false } },
	{ "old-to", "social_landlord", NULL,
	    "target of a referral closed 111 days ago",
	    { false, false, false, false, false } },
	{ "ident-now", "mediator", NULL, "identified them, current episode",
	    { true, false, false, false, false } },
	{ "ident-before", "mediator", NULL, "identified them, previous episode",
	    { false, false, false, false, false } },
	{ "writer", "association", NULL, "unrelated partner that wrote an event",
	    { false, false, false, false, false } },
	{ "ops", "operator", NULL, "operator",
	    { false, false, false, false, false } },
};

#define NROWS       (sizeof(matrix) / sizeof(matrix[0]))
#define MAX_PEOPLE  16

struct world {
	struct e2e_broker *b;
	relais_client *c[NROWS];
	int npeople;
	char people[MAX_PEOPLE][16];
	char alerts[MAX_PEOPLE][32];  /* each person's referral_unanswered */
	int next_copy;              /* people[1..] go to allowed acts */
	unsigned seq;               /* event ids */
};

static relais_client *
conn_of(struct world *w, const char *agent)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(matrix[i].agent, agent) == 0)
			return w->c[i];
	e2e_fail(__FILE__, __LINE__, "conn_of", "no agent %s in the matrix", agent);
}

static const char *
next_id(struct world *w, char *buf, size_t len)
{
	snprintf(buf, len, "m-%u", ++w->seq);
	return buf;
}

/* Submit ev (stolen), dated at, as agent; require ok. */
static void
as(struct world *w, const char *agent, json_t *ev, int64_t at)
{
	au_submit_ok(conn_of(w, agent), au_at(ev, at));
}

static void
refer(struct world *w, const char *from, const char *to, const char *p,
    const char *tag, bool decline, int64_t at)
{
	char ev[24], ref[40];

	snprintf(ref, sizeof(ref), "r-%s-%s", tag, p);
	as(w, from, e2e_ev_referral(next_id(w, ev, sizeof(ev)), p, ref, to), at);
	if (decline)
		as(w, to, e2e_ev_answer("referral.declined",
		    next_id(w, ev, sizeof(ev)), p, ref), at);
}

static void
build_people(struct world *w)
{
	relais_client *ops = conn_of(w, "ops");
	int64_t now = au_broker_now(ops);
	char ev[24];
	int i;

	for (i = 0; i < w->npeople; i++) {
		const char *p = w->people[i];

		as(w, "ident-before", au_ev_identified(next_id(w, ev, sizeof(ev)),
		    p, QPV, now), now);
		refer(w, "old-from", "old-to", p, "old", true, now);
	}
	now = au_clock_advance(ops, 60 * AU_DAY_MS);
	for (i = 0; i < w->npeople; i++) {
		const char *p = w->people[i];

		refer(w, "recent-from", "recent-to", p, "recent", true, now);
		refer(w, "recent-from", "expiring-to", p, "exp", false, now);
		as(w, "coord-all", ev_exit(next_id(w, ev, sizeof(ev)), p, now), now);
		as(w, "ident-now", au_ev_identified(next_id(w, ev, sizeof(ev)), p,
		    QPV, now), now);
		as(w, "referent", au_ev_support(next_id(w, ev, sizeof(ev)), p, now),
		    now);
		as(w, "writer", e2e_ev_contact(next_id(w, ev, sizeof(ev)), p), now);
	}
	now = au_clock_advance(ops, 40 * AU_DAY_MS);
	for (i = 0; i < w->npeople; i++)
		refer(w, "open-from", "open-to", w->people[i], "open", false, now);
	au_clock_advance(ops, 11 * AU_DAY_MS);
	for (i = 0; i < w->npeople; i++) {
		json_t *a = au_wait_listed(conn_of(w, "coord-all"),
		    "referral_unanswered", w->people[i]);

		snprintf(w->alerts[i], sizeof(w->alerts[i]), "%s", jstr(a, "id"));
		json_decref(a);
	}
}

/*
 * One cell: agent row tries action on person i.  Returns the reply's
 * status: true when accepted, false when refused as forbidden.
 */
static bool
try_cell(struct world *w, const struct row *r, size_t ri, enum action act, int i)
{
	relais_client *c = w->c[ri];
	const char *p = w->people[i];
	int64_t now = au_broker_now(c);
	char id[24];
	json_t *ev = NULL, *res;
	bool ok;

	next_id(w, id, sizeof(id));
	switch (act) {
	case READ:
		return can_read(c, r->agent, p);
	case EXIT:
		ev = ev_exit(id, p, now);
		break;
	case ERASE:
		ev = ev_erase(id, p, now);
		break;
	case ACK:
		ev = ev_alert("alert.acknowledged", id, p, w->alerts[i], now);
		break;
	case RESOLVE:
		ev = ev_alert("alert.resolved", id, p, w->alerts[i], now);
		break;
	case ACTIONS:
		break;
	}
	res = e2e_submit1(c, ev);
	ok = strcmp(jstr(res, "status") ? jstr(res, "status") : "", "ok") == 0;
	if (!ok)
		e2e_assert(jint(res, "code") == 202, "%s (%s), %s on %s: expected "
		    "ok or forbidden, got %s", r->agent, r->relationship,
		    action_names[act], p, e2e_json_str(res));
	json_decref(res);
	return ok;
}

/*
 * Agent kinds by relationship x actions, each cell checked against the
 * table above.  Refusals are all tried on the first person (a refusal
 * changes nothing, which the event count and a final reading confirm);
 * each allowed exit, erasure, acknowledgement or resolution gets a person
 * of its own, built the same way, so no cell depends on another.
 */
static void
test_authorisation_matrix(void **state)
{
	static struct world w;
	char phase[32];
	long long events;

	memset(&w, 0, sizeof(w));
	w.b = e2e_broker_new("manual_clock = yes\n");
	for (size_t ri = 0; ri < NROWS; ri++) {
		if (matrix[ri].qpvs != NULL)
			au_agent_add_qpv(w.b, matrix[ri].agent, matrix[ri].kind,
			    matrix[ri].qpvs);
		else
			e2e_agent_add(w.b, matrix[ri].agent, matrix[ri].kind, true);
		for (int act = EXIT; act < ACTIONS; act++)
			w.npeople += matrix[ri].allow[act];
	}
	w.npeople++;                /* people[0]: reads and refusals */
	e2e_assert(w.npeople <= MAX_PEOPLE, "%d people, room for %d",
	    w.npeople, MAX_PEOPLE);
	for (int i = 0; i < w.npeople; i++)
		snprintf(w.people[i], sizeof(w.people[i]), "p-%d", 100 + i);
	e2e_start(w.b);
	for (size_t ri = 0; ri < NROWS; ri++)
		w.c[ri] = au_connect_quiet(w.b, matrix[ri].agent);
	build_people(&w);

	w.next_copy = 1;
	events = e2e_health(w.c[0], "events");
	for (size_t ri = 0; ri < NROWS; ri++) {
		const struct row *r = &matrix[ri];

		for (int act = READ; act < ACTIONS; act++) {
			bool own = act != READ && r->allow[act];
			int i = own ? w.next_copy++ : 0;
			bool got = try_cell(&w, r, ri, (enum action)act, i);

			e2e_assert(got == r->allow[act], "%s (%s), %s: expected %s, "
			    "got %s", r->agent, r->relationship, action_names[act],
			    r->allow[act] ? "allowed" : "refused",
			    got ? "allowed" : "refused (forbidden)");
			if (own)
				events++;
			e2e_assert_int(events, e2e_health(w.c[0], "events"),
			    "events recorded so far (refusals record nothing)");
		}
	}
	/* The refusals left the first person as built. */
	e2e_assert_str("supported", phase_of(conn_of(&w, "coord-all"),
	    w.people[0], phase, sizeof(phase)), "phase of the first person");
	for (size_t ri = 0; ri < NROWS; ri++)
		relais_close(&w.c[ri]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_writing_never_grants_reading,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_coordinators_act_within_their_territory,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_authorisation_matrix, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
