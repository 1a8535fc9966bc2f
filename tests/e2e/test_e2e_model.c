/*
 * Randomized model-based test: random streams of every event type from
 * many agents, sent to the real broker, each answer compared with what
 * the rules say it must be (model.h, the judge, written from SPEC and
 * PROTOCOL.md).
 *
 * A run is seeded: MODEL_SEED=N replays one run (the same events in the
 * same order, the same clock jumps and restarts; only the alerts a
 * coordinator acts on may differ, since which alerts exist when it reads
 * them depends on when the broker's sweep ran); without it the test runs
 * a few fixed seeds.  MODEL_EVENTS sets how many events a run
 * sends.  On the first answer that differs from the judge's, the test
 * prints the seed, the event's index, the event, the expected and the
 * actual answer, and the events just before it.
 *
 * What a run does, in an order the seed decides:
 *   - batches of events from one agent at a time (librelais submits):
 *     valid ones of every type (identification and re-identification
 *     after an exit, contacts, barriers, referrals answered, declined,
 *     cancelled or left to expire, appointments, support, enrollments,
 *     employment with an end date, confidence, exits), and wrong ones
 *     whose refusal is certain (an answer from another agent, an unknown
 *     referral, a cancelled referral accepted, coordinators' types from a
 *     partner, a resent event_id with other content, ...);
 *   - coordinators' batches: exits and erasures in their territory, and
 *     acknowledging or resolving alerts they read with the alerts query
 *     (the judge knows only what that query showed);
 *   - jumps of the broker's manual clock, which fire alerts, expire
 *     referrals and erase, by retention, whoever was idle too long;
 *   - restarts, with SIGTERM or SIGKILL, each followed by a clean
 *     `relaisd --verify` of the store.
 * At the end the store verifies clean and the log holds no storage
 * failure.
 *
 * Time: every event is dated half an hour before the broker's clock at
 * the last jump, so the broker's rules use the event's own date and the
 * judge knows it (only exact resends keep an older date: they change
 * nothing).  A jump never lands within hours of a time that would
 * change an answer (an expiry, a retention deadline), so the few seconds
 * the broker's clock moves by itself never matter.  The broker forgets
 * its clock's offset when it restarts; the test moves it forward again
 * before sending anything.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alerts_util.h"
#include "harness.h"
#include "model.h"
#include "model_gen.h"

#define RETENTION_DAYS      60
#define EXPIRY_DAYS         30          /* referral_expired's default */
#define HOUR_MS             3600000LL
#define MARGIN_MS           (3 * HOUR_MS)
#define BATCH_MAX           12
#define RECENT              8           /* events shown before a mismatch */
#define DEFAULT_EVENTS      1500
#define RUN_START_MS        1894017600000LL /* 2030-01-07 12:00 UTC */

static const char *const qpvs[] = { "sanitas", "rochepinard",
	"europe-chateaubriand", "fontaines" };
#define NQPVS 4

/* The agents: indexes are the same in the harness and in the model. */
static const struct {
	const char *id, *kind, *qpvs;   /* qpvs NULL: no list */
} roster[] = {
	{ "med-nord", "mediator", NULL },
	{ "med-sud", "mediator", NULL },
	{ "cs-europe", "social_centre", NULL },
	{ "ft-tours", "france_travail", NULL },
	{ "ml-tours", "mission_locale", NULL },
	{ "plie-tours", "plie", NULL },
	{ "cap-emploi", "cap_emploi", NULL },
	{ "iae-jardins", "iae", NULL },
	{ "asso-relais", "association", NULL },
	{ "bailleur-val", "social_landlord", NULL },
	{ "ccas-tours", "local_authority", NULL },
	{ "coord-all", "coordinator", NULL },
	{ "coord-nord", "coordinator", "sanitas,rochepinard" },
	{ "coord-sud", "coordinator", "europe-chateaubriand,fontaines" },
	{ "ops", "operator", NULL },
};
#define NROSTER ((int)(sizeof(roster) / sizeof(roster[0])))
#define COORD_ALL 11
#define OPERATOR 14

struct sent {
	int agent;
	json_t *ev;
	struct model_expect expect;
};

struct run {
	struct e2e_broker *b;
	struct model m;
	struct model_gen g;
	unsigned long seed;
	long target, sent;          /* events to send, sent so far */
	relais_client *conn[MODEL_MAX_AGENTS];
	struct sent recent[RECENT];
	long nrecent;
	/* What the run exercised, checked at the end. */
	long ok_by_type[32];
	long by_code[300];
	long duplicates, jumps, stops, kills, retention_erased;
	long recorded;              /* events the log holds */
	long resolved_meanwhile;    /* see resolved_meanwhile() */
	long inflight_kills;
};

/* ---- the event types, for the coverage count ------------------------- */

static const char *const type_names[] = {
	"outreach.intervention", "participant.identified", "contact.made",
	"barrier.identified", "barrier.lifted", "referral.sent",
	"referral.accepted", "referral.declined", "referral.cancelled",
	"appointment.scheduled", "appointment.attended", "appointment.missed",
	"support.started", "support.ended", "enrollment.started",
	"employment.started", "confidence.assessed", "participant.exited",
	"alert.acknowledged", "alert.resolved", "participant.erased",
};
#define NTYPES ((int)(sizeof(type_names) / sizeof(type_names[0])))

static int
type_index(const char *name)
{
	for (int i = 0; name != NULL && i < NTYPES; i++)
		if (strcmp(type_names[i], name) == 0)
			return i;
	return -1;
}

/* ---- talking to the broker ------------------------------------------- */

static relais_client *
conn(struct run *r, int agent)
{
	if (r->conn[agent] == NULL)
		r->conn[agent] = au_connect_quiet(r->b, r->m.agents[agent].id);
	return r->conn[agent];
}

static void
close_all(struct run *r)
{
	for (int i = 0; i < MODEL_MAX_AGENTS; i++)
		relais_close(&r->conn[i]);
}

static void
remember(struct run *r, int agent, json_t *ev, const struct model_expect *x)
{
	struct sent *s = &r->recent[r->nrecent++ % RECENT];

	json_decref(s->ev);
	s->agent = agent;
	s->ev = json_incref(ev);
	s->expect = *x;
}

static void
print_recent(struct run *r)
{
	long from = r->nrecent > RECENT ? r->nrecent - RECENT : 0;

	fprintf(stderr, "the events before it, oldest first:\n");
	for (long i = from; i < r->nrecent - 1; i++) {
		const struct sent *s = &r->recent[i % RECENT];
		char *text = json_dumps(s->ev, JSON_COMPACT);

		fprintf(stderr, "  %s: %s -> %s %d (%s)\n", r->m.agents[s->agent].id,
		    text, s->expect.status, s->expect.code, s->expect.why);
		free(text);
	}
}

static void
mismatch(struct run *r, long index, int agent, const json_t *ev,
    const struct model_expect *x, const json_t *result)
{
	char *text = json_dumps(ev, JSON_COMPACT);

	print_recent(r);
	fprintf(stderr, "MODEL_SEED=%lu: event %ld, sent by %s: %s\n"
	    "  expected: %s %d (%s)\n", r->seed, index, r->m.agents[agent].id,
	    text, x->status, x->code, x->why);
	free(text);
	e2e_fail(__FILE__, __LINE__, "the broker's answer agrees with the model",
	    "MODEL_SEED=%lu, event %ld: expected %s %d, got %s", r->seed, index,
	    x->status, x->code, e2e_json_str(result));
}

/*
 * A batch of one agent's events, each judged as it is made: the next
 * event of the batch is chosen from the state after the ones before it.
 */
struct batch {
	int agent;
	size_t n;
	json_t *events[BATCH_MAX];
	struct model_expect expect[BATCH_MAX];
};

static void
batch_add(struct run *r, struct batch *bt, json_t *ev)
{
	model_event(&r->m, bt->agent, ev, &bt->expect[bt->n]);
	remember(r, bt->agent, ev, &bt->expect[bt->n]);
	bt->events[bt->n++] = ev;
}

/* The alert as the broker lists it now (new reference), or NULL. */
static json_t *
alert_now(struct run *r, const char *id)
{
	json_t *args = json_pack("{s:s}", "status", "all");
	json_t *alerts = relais_query(conn(r, COORD_ALL), "alerts", args, 20000);
	json_t *found = NULL, *a;
	size_t i;

	json_decref(args);
	json_array_foreach(alerts, i, a)
		if (strcmp(jstr(a, "id"), id) == 0)
			found = json_incref(a);
	json_decref(alerts);
	return found;
}

/*
 * The sweep runs beside the test's events and may resolve an alert by
 * itself (an alert another one makes moot) between the alerts query and
 * a coordinator's event: then that event finds it resolved.
 */
static bool
resolved_meanwhile(struct run *r, const json_t *ev, const json_t *result)
{
	const char *type = jstr(ev, "type");
	json_t *a, *by;
	bool yes;

	if (type == NULL || strncmp(type, "alert.", 6) != 0 ||
	    jint(result, "code") != MC_BAD_TRANSITION)
		return false;
	if ((a = alert_now(r, jstr(ev, "alert"))) == NULL)
		return false;
	by = json_object_get(a, "resolved");
	yes = strcmp(jstr(a, "status"), "resolved") == 0 &&
	    strcmp(jstr(by, "by"), "relais") == 0;
	json_decref(a);
	return yes;
}

/*
 * Compare every answer with the judge's.  maybe_recorded: the broker was
 * killed while the batch was in flight and it was sent again, so an event
 * the judge accepts may have been recorded the first time (duplicate).
 */
static void
compare(struct run *r, struct batch *bt, json_t **results, bool maybe_recorded)
{
	for (size_t i = 0; i < bt->n; i++) {
		const struct model_expect *x = &bt->expect[i];
		const char *status = jstr(results[i], "status");
		long long code = jint(results[i], "code");
		long index = r->sent + (long)i;
		bool same = status != NULL && strcmp(status, x->status) == 0 &&
		    (strcmp(x->status, "error") != 0 || code == x->code);

		if (!same && maybe_recorded && strcmp(x->status, "ok") == 0 &&
		    status != NULL && strcmp(status, "duplicate") == 0)
			same = true;
		if (!same && strcmp(x->status, "ok") == 0 &&
		    resolved_meanwhile(r, bt->events[i], results[i])) {
			r->resolved_meanwhile++;
			same = true;
		}
		if (!same)
			mismatch(r, index, bt->agent, bt->events[i], x, results[i]);
		if (strcmp(x->status, "ok") == 0) {
			int t = type_index(jstr(bt->events[i], "type"));

			if (t >= 0 && strcmp(status, "ok") == 0)
				r->ok_by_type[t]++;
			if (strcmp(status, "error") != 0)
				r->recorded++;
			/* Alert events depend on what the sweep had done when the
			 * alerts were read: resending them would make the run's
			 * events depend on the broker's timing. */
			if (strcmp(status, "error") != 0 && t >= 0 &&
			    strncmp(type_names[t], "alert.", 6) != 0)
				gen_keep(&r->g, bt->agent, bt->events[i]);
		} else if (strcmp(status, "duplicate") == 0) {
			r->duplicates++;
		} else if (code > 0 && code < 300) {
			r->by_code[code]++;
		}
	}
}

static void
release(struct batch *bt, json_t **results)
{
	for (size_t i = 0; i < bt->n; i++) {
		json_decref(results != NULL ? results[i] : NULL);
		json_decref(bt->events[i]);
	}
	bt->n = 0;
}

/* Submit the batch and compare every answer with the judge's. */
static void
submit(struct run *r, struct batch *bt)
{
	json_t *results[BATCH_MAX];
	relais_client *c = conn(r, bt->agent);

	e2e_assert(relais_submit(c, bt->events, bt->n, results, 60000) == 0,
	    "MODEL_SEED=%lu: the broker did not answer a submit: %s", r->seed,
	    relais_errmsg(c));
	compare(r, bt, results, false);
	r->sent += (long)bt->n;
	release(bt, results);
}

/* ---- the clock ------------------------------------------------------- */

static void check_some_participants(struct run *r, int n);

static bool
near(int64_t t, int64_t from, int64_t to)
{
	return t > from - MARGIN_MS && t < to + MARGIN_MS;
}

/* A time at or after t that no expiry or retention deadline is near. */
static int64_t
clear_of_deadlines(struct run *r, int64_t t)
{
	for (int moved = 1, rounds = 0; moved && rounds < 1000; rounds++) {
		moved = 0;
		for (int i = 0; i < r->m.nparticipants && !moved; i++) {
			int64_t from, to;

			if (model_retention_window(&r->m, i, &from, &to) &&
			    near(t, from, to)) {
				t = to + MARGIN_MS + HOUR_MS;
				moved = 1;
			}
		}
		for (int i = 0; i < r->m.nreferrals && !moved; i++) {
			const struct model_referral *x = &r->m.referrals[i];
			int64_t e = x->sent_at + r->m.expiry_ms;

			if (!x->gone && x->state == MRS_REQUESTED && near(t, e, e)) {
				t = e + MARGIN_MS + HOUR_MS;
				moved = 1;
			}
		}
	}
	return t;
}

/*
 * Move the broker's clock to t (then its own time moves on from there).
 * The run's times come from t, not from what the broker answers, so a
 * seed gives the same events whenever it runs.
 */
static void
clock_to(struct run *r, int64_t t)
{
	relais_client *ops = conn(r, OPERATOR);
	int64_t now = au_broker_now(ops);

	if (now < t)
		now = au_clock_advance(ops, t - now);
	e2e_assert(now >= t && now < t + MARGIN_MS, "MODEL_SEED=%lu: the broker's "
	    "clock is at %lld, expected %lld", r->seed, (long long)now, (long long)t);
	r->g.base = t;
	r->g.since_jump = 0;
	r->m.clock = t;
}

/* Wait until the broker has erased the participant (its sweep does). */
static void
wait_erased(struct run *r, int slot)
{
	relais_client *coord = conn(r, COORD_ALL);
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	json_t *args = json_pack("{s:s}", "id", r->m.participants[slot].id);

	for (;;) {
		json_t *found = relais_query(coord, "participant", args, 20000);

		if (found == NULL && relais_last_code(coord) == MC_UNKNOWN_PARTICIPANT)
			break;
		json_decref(found);
		if (rl_mono_ms() > deadline)
			e2e_fail(__FILE__, __LINE__, "retention",
			    "MODEL_SEED=%lu: %s, idle since %lld, was not erased "
			    "by retention at %lld", r->seed, r->m.participants[slot].id,
			    (long long)r->m.participants[slot].last_activity,
			    (long long)r->g.base);
		rl_sleep_ms(20);
	}
	json_decref(args);
}

static void
jump(struct run *r, int64_t by)
{
	int64_t from, to;

	clock_to(r, clear_of_deadlines(r, r->g.base + by));
	r->jumps++;
	for (int i = 0; i < r->m.nparticipants; i++)
		if (model_retention_window(&r->m, i, &from, &to) && to <= r->g.base) {
			wait_erased(r, i);
			model_erase(&r->m, i);
			r->retention_erased++;
		}
	check_some_participants(r, 16);
}

static int64_t
random_jump(struct run *r)
{
	int roll = gen_rnd(&r->g, 100);
	int days = roll < 70 ? 1 + gen_rnd(&r->g, 12) : roll < 95 ? 13 + gen_rnd(&r->g, 33) :
	    46 + gen_rnd(&r->g, 25);

	return days * MODEL_DAY_MS + gen_rnd(&r->g, 24) * HOUR_MS;
}

/* ---- restarts -------------------------------------------------------- */

static void
verify_clean(struct run *r, const char *when)
{
	char out[8192];

	if (e2e_verify(r->b, out, sizeof(out)) != 0)
		e2e_fail(__FILE__, __LINE__, "relaisd --verify",
		    "MODEL_SEED=%lu, after %ld events (%s): %s", r->seed, r->sent,
		    when, out);
}

static void
restart(struct run *r, bool sigkill)
{
	close_all(r);
	if (sigkill) {
		e2e_kill(r->b);
		r->kills++;
	} else {
		e2e_stop(r->b);
		r->stops++;
	}
	verify_clean(r, sigkill ? "after SIGKILL" : "after SIGTERM");
	e2e_start(r->b);
	/* The broker starts on its real clock: bring it back where it was. */
	clock_to(r, r->g.base);
}

struct killer {
	pid_t pid;
	int delay_us;
};

static void *
killer_main(void *arg)
{
	const struct killer *k = arg;

	usleep((useconds_t)k->delay_us);
	kill(k->pid, SIGKILL);
	return NULL;
}

/*
 * Send the batch while the broker is killed with SIGKILL: its answer
 * may come first, or the pass may be committed without an answer, or not
 * at all.  Sent again after the restart, every event the judge accepts
 * is then "ok" or "duplicate", and every other event gets its refusal.
 */
static void
submit_killed(struct run *r, struct batch *bt)
{
	json_t *results[BATCH_MAX];
	struct killer k = { r->b->pid, gen_rnd(&r->g, 3000) };
	relais_client *c = conn(r, bt->agent);    /* connected before the kill */
	pthread_t th;
	int rc;

	e2e_assert(pthread_create(&th, NULL, killer_main, &k) == 0,
	    "cannot start the killer thread");
	rc = relais_submit(c, bt->events, bt->n, results, 3000);
	pthread_join(th, NULL);
	if (rc == 0) {
		compare(r, bt, results, false);
		for (size_t i = 0; i < bt->n; i++)
			json_decref(results[i]);
	}
	restart(r, true);
	r->inflight_kills++;
	if (rc != 0) {
		c = conn(r, bt->agent);
		e2e_assert(relais_submit(c, bt->events, bt->n, results, 60000) == 0,
		    "MODEL_SEED=%lu: the broker did not answer a submit after "
		    "its restart: %s", r->seed, relais_errmsg(c));
		compare(r, bt, results, true);
	}
	r->sent += (long)bt->n;
	release(bt, rc != 0 ? results : NULL);
}

/* ---- the participants against the broker's pathways ----------------- */

static void
check_participant(struct run *r, int slot)
{
	const struct model_participant *p = &r->m.participants[slot];
	relais_client *coord = conn(r, COORD_ALL);
	json_t *args = json_pack("{s:s}", "id", p->id);
	json_t *found = relais_query(coord, "participant", args, 20000);
	char why[300];

	json_decref(args);
	if (!p->exists) {
		e2e_assert(found == NULL && relais_last_code(coord) ==
		    MC_UNKNOWN_PARTICIPANT, "MODEL_SEED=%lu, after %ld events: the "
		    "broker has a pathway for %s, the model none (erasures: %d)",
		    r->seed, r->sent, p->id, p->erasures);
		return;
	}
	e2e_assert(found != NULL, "MODEL_SEED=%lu, after %ld events: no pathway "
	    "for %s: %s", r->seed, r->sent, p->id, relais_errmsg(coord));
	if (!model_state_matches(&r->m, slot, json_object_get(found, "state"),
	    r->g.base, why, sizeof(why)))
		e2e_fail(__FILE__, __LINE__, "the pathway agrees with the model",
		    "MODEL_SEED=%lu, after %ld events: participant %s: %s; the "
		    "broker's pathway: %s", r->seed, r->sent, p->id, why,
		    e2e_json_str(json_object_get(found, "state")));
	json_decref(found);
}

static void
check_some_participants(struct run *r, int n)
{
	for (int i = 0; i < n; i++)
		check_participant(r, gen_slot(&r->g));
}

/* ---- one run --------------------------------------------------------- */

static void
coordinator_batch(struct run *r, int c)
{
	char why[200];
	struct batch bt = { .agent = c };
	size_t n = 1 + (size_t)gen_rnd(&r->g, 4);

	if (gen_chance(&r->g, 60)) {
		/* What the coordinators see now; nothing else happens until sent. */
		json_t *args = json_pack("{s:s}", "status", "all");
		json_t *alerts = relais_query(conn(r, COORD_ALL), "alerts", args, 20000);

		json_decref(args);
		e2e_assert(json_is_array(alerts), "MODEL_SEED=%lu: alerts query: %s",
		    r->seed, relais_errmsg(conn(r, COORD_ALL)));
		if (!model_alerts_check(&r->m, alerts, why, sizeof(why)))
			e2e_fail(__FILE__, __LINE__, "the alerts agree with SPEC",
			    "MODEL_SEED=%lu, after %ld events: %s", r->seed, r->sent, why);
		model_alerts_load(&r->m, alerts);
		json_decref(alerts);
		/* Distinct alerts: each answer then depends on its alert alone. */
		while (bt.n < n) {
			json_t *ev = gen_alert_event(&r->g, c);

			for (size_t i = 0; i < bt.n; i++)
				if (strcmp(jstr(bt.events[i], "alert"), jstr(ev, "alert")) == 0)
					json_object_set_new(ev, "alert", json_string("al-999999999"));
			batch_add(r, &bt, ev);
		}
	} else {
		while (bt.n < n)
			batch_add(r, &bt, gen_coordinator_event(&r->g, c));
	}
	submit(r, &bt);
}

static void
partner_batch(struct run *r, int s, bool kill_in_flight)
{
	struct batch bt = { .agent = s };
	size_t n = 1 + (size_t)gen_rnd(&r->g, BATCH_MAX);

	while (bt.n < n) {
		json_t *ev = gen_chance(&r->g, 12) ? gen_wrong_event(&r->g, s) : NULL;

		batch_add(r, &bt, ev != NULL ? ev : gen_partner_event(&r->g, s));
	}
	if (kill_in_flight)
		submit_killed(r, &bt);
	else
		submit(r, &bt);
}

static void
operator_batch(struct run *r)
{
	struct batch bt = { .agent = OPERATOR };

	batch_add(r, &bt, gen_partner_event(&r->g, OPERATOR));
	submit(r, &bt);
}

static void
check_coverage(struct run *r)
{
	static const int codes[] = { MC_FORBIDDEN, MC_CONFLICT, MC_UNKNOWN_REFERRAL,
		MC_UNKNOWN_AGENT, MC_WRONG_AGENT, MC_BAD_TRANSITION,
		MC_REFERRAL_EXISTS, MC_UNKNOWN_ALERT, MC_PERSONAL_DATA,
		MC_BAD_FIELD, MC_UNKNOWN_TYPE };

	fprintf(stderr, "MODEL_SEED=%lu: %ld events, %ld duplicates, %ld clock "
	    "jumps, %ld SIGTERM and %ld SIGKILL restarts (%ld during a submit), "
	    "%ld erased by retention, %ld alerts resolved by the sweep meanwhile\n",
	    r->seed, r->sent, r->duplicates, r->jumps, r->stops, r->kills,
	    r->inflight_kills, r->retention_erased, r->resolved_meanwhile);
	for (int t = 0; t < NTYPES; t++)
		fprintf(stderr, "  %-24s %ld accepted\n", type_names[t], r->ok_by_type[t]);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		fprintf(stderr, "  refused with %d: %ld\n", codes[i], r->by_code[codes[i]]);
	/* A short run may miss a rare case; a default-length one must not. */
	if (r->target < DEFAULT_EVENTS)
		return;
	for (int t = 0; t < NTYPES; t++)
		e2e_assert(r->ok_by_type[t] > 0, "MODEL_SEED=%lu: no %s was accepted: "
		    "the generator no longer covers every type", r->seed, type_names[t]);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		e2e_assert(r->by_code[codes[i]] > 0, "MODEL_SEED=%lu: no refusal "
		    "with code %d", r->seed, codes[i]);
	e2e_assert(r->duplicates > 0 && r->retention_erased > 0 && r->kills > 0 &&
	    r->stops > 0, "MODEL_SEED=%lu: the run lacked duplicates, retention, "
	    "or a restart", r->seed);
}

/* A restart every one to two fifths of a run, and at least every 1600
 * events in a long one. */
static long
restart_every(const struct run *r)
{
	return r->target / 5 < 800 ? r->target / 5 : 800;
}

static void
run_seed(unsigned long seed, long target)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n"
	    "retention_days = 60\n");
	struct run *r = calloc(1, sizeof(*r));
	char prefix[32];
	long next_restart, next_jump, forced = 0, restarts = 0;

	r->b = b;
	r->seed = seed;
	r->target = target;
	b->keep_port = true;
	snprintf(prefix, sizeof(prefix), "p%lu-", seed % 1000);
	model_init(&r->m, (int)(target / 40 > 24 ? target / 40 : 24), prefix);
	r->m.expiry_ms = EXPIRY_DAYS * MODEL_DAY_MS;
	for (int i = 0; i < NQPVS; i++)
		model_qpv_add(&r->m, qpvs[i]);      /* all in the harness's [qpv] */
	r->m.retention_ms = RETENTION_DAYS * MODEL_DAY_MS;
	gen_init(&r->g, &r->m, seed, COORD_ALL, qpvs, NQPVS);
	for (int i = 0; i < NROSTER; i++) {
		if (roster[i].qpvs != NULL)
			au_agent_add_qpv(b, roster[i].id, roster[i].kind, roster[i].qpvs);
		else
			e2e_agent_add(b, roster[i].id, roster[i].kind, true);
		model_agent_add(&r->m, roster[i].id, roster[i].kind, roster[i].qpvs);
	}
	e2e_start(b);
	clock_to(r, RUN_START_MS);

	next_jump = 100 + gen_rnd(&r->g, 200);
	next_restart = restart_every(r) + gen_rnd(&r->g, (int)restart_every(r));
	while (r->sent < target) {
		int roll = gen_rnd(&r->g, 100);

		/*
		 * Two jumps of 35 days at a quarter and at a third of the run:
		 * whoever was idle over both (70 days) is erased by retention,
		 * the others stay.
		 */
		if (forced < 2 && r->sent >= target / (4 - forced)) {
			jump(r, 35 * MODEL_DAY_MS);
			forced++;
		} else if (r->sent >= next_jump) {
			jump(r, random_jump(r));
			next_jump = r->sent + 100 + gen_rnd(&r->g, 300);
		} else if (r->sent >= next_restart) {
			/* In turn: SIGTERM, SIGKILL, SIGKILL during a submit. */
			if (restarts % 3 == 2)
				partner_batch(r, gen_rnd(&r->g, COORD_ALL), true);
			else
				restart(r, restarts % 3 == 1);
			restarts++;
			next_restart = r->sent + restart_every(r) +
			    gen_rnd(&r->g, (int)restart_every(r));
		} else if (roll < 15) {
			coordinator_batch(r, COORD_ALL + gen_rnd(&r->g, 3));
		} else if (roll < 16) {
			operator_batch(r);
		} else {
			partner_batch(r, gen_rnd(&r->g, COORD_ALL), false);
		}
	}
	for (int i = 0; i < r->m.nparticipants; i++)
		check_participant(r, i);
	e2e_assert_int(r->recorded, e2e_health(conn(r, OPERATOR), "events"),
	    "events in the broker's log (every event the broker accepted)");
	close_all(r);
	e2e_stop(b);
	verify_clean(r, "at the end");
	e2e_assert_int(0, e2e_log_count(b, "\"storage", NULL),
	    "log lines about storage failures");
	e2e_assert_int(0, e2e_log_count(b, "\"event.failed\"", NULL),
	    "event.failed lines (an event's writes failed)");
	e2e_assert_int(0, e2e_log_count(b, "\"store.write_failed\"", NULL),
	    "store.write_failed lines");
	e2e_assert_int(0, e2e_log_count(b, "\"alerts.sweep_failed\"", NULL),
	    "alerts.sweep_failed lines");
	check_coverage(r);
	gen_free(&r->g);
	for (int i = 0; i < RECENT; i++)
		json_decref(r->recent[i].ev);
	model_free(&r->m);
	free(r);
}

static long
events_per_run(void)
{
	return e2e_env_long("MODEL_EVENTS", DEFAULT_EVENTS);
}

/* MODEL_SEED=N runs that seed alone; the fixed seeds then skip. */
static bool
seed_given(unsigned long *seed)
{
	const char *s = getenv("MODEL_SEED");

	if (s == NULL || *s == '\0')
		return false;
	*seed = strtoul(s, NULL, 10);
	return true;
}

static void
test_model_seed(void **state, unsigned long seed)
{
	unsigned long given;

	if (seed_given(&given)) {
		if (seed == 1)
			run_seed(given, events_per_run());
		else
			skip();
		return;
	}
	run_seed(seed, events_per_run());
}

static void test_model_seed_1(void **state) { test_model_seed(state, 1); }
static void test_model_seed_2(void **state) { test_model_seed(state, 2); }
static void test_model_seed_3(void **state) { test_model_seed(state, 3); }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_model_seed_1, e2e_teardown),
		cmocka_unit_test_teardown(test_model_seed_2, e2e_teardown),
		cmocka_unit_test_teardown(test_model_seed_3, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
