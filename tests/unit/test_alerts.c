/*
 * The rupture rules inside the broker (broker/alerts.c): the deadline
 * index, the sweep, and the alert lifecycle, for every rule of SPEC §4.
 *
 * Time is the test's: events and sweeps are given their "now", so a 45-day
 * rule is tested in microseconds.  The rules' own arithmetic is tested in
 * test_pathway.c; here each rule runs through the real index and store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "alert.h"
#include "fixture.h"
#include "log.h"

#define T0      INT64_C(1795000000000)
#define DAY     INT64_C(86400000)
#define P       "p-1"

struct scenario {
	enum rule_id rule;
	int64_t due;                /* when the rule should fire */
	/* The events that arm the rule, and the one that resolves it. */
	void (*arm)(struct fixture *fx);
	void (*resolve)(struct fixture *fx, int64_t at);
};

static void
submit(struct fixture *fx, const char *sender, int64_t at, int n, ...)
{
	static unsigned counter;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct ingest_result r;
	struct rl_error err;
	char id[32];
	va_list ap;
	int code;

	snprintf(id, sizeof(id), "e-%u", ++counter);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)n + 3);
	msgpack_pack_str_with_body(&pk, "event_id", 8);
	msgpack_pack_str_with_body(&pk, id, strlen(id));
	msgpack_pack_str_with_body(&pk, "occurred_at", 11);
	msgpack_pack_int64(&pk, at);
	msgpack_pack_str_with_body(&pk, "participant", 11);
	msgpack_pack_str_with_body(&pk, P, strlen(P));
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v = va_arg(ap, const char *);

		msgpack_pack_str_with_body(&pk, k, strlen(k));
		if (strcmp(k, "at") == 0)
			msgpack_pack_int64(&pk, at + DAY);
		else
			msgpack_pack_str_with_body(&pk, v, strlen(v));
	}
	va_end(ap);
	code = ingest_at(fx, sender, &sb, at, &r, &err);
	if (code != RL_OK)
		fail_msg("event %s refused: %d %s", id, code, err.message);
	msgpack_sbuffer_destroy(&sb);
}

static void
identify(struct fixture *fx)
{
	submit(fx, "med", T0, 3, "type", "participant.identified", "qpv", "sanitas",
	    "source", "outreach");
}

static void
refer(struct fixture *fx, const char *ref, int64_t at)
{
	submit(fx, "med", at, 4, "type", "referral.sent", "referral", ref,
	    "to", "ml", "purpose", "cv");
}

static void
arm_referral(struct fixture *fx)
{
	identify(fx);
	refer(fx, "r-1", T0);
}

static void
resolve_by_accepting(struct fixture *fx, int64_t at)
{
	submit(fx, "ml", at, 2, "type", "referral.accepted", "referral", "r-1");
}

static void
arm_decline(struct fixture *fx)
{
	arm_referral(fx);
	submit(fx, "ml", T0, 3, "type", "referral.declined", "referral", "r-1",
	    "reason", "no_capacity");
}

static void
resolve_by_new_referral(struct fixture *fx, int64_t at)
{
	refer(fx, "r-2", at);
}

static void
resolve_by_support(struct fixture *fx, int64_t at)
{
	submit(fx, "med", at, 1, "type", "support.started");
}

static void
resolve_by_contact(struct fixture *fx, int64_t at)
{
	submit(fx, "med", at, 2, "type", "contact.made", "channel", "phone");
}

static void
arm_misses(struct fixture *fx)
{
	identify(fx);
	submit(fx, "med", T0, 3, "type", "appointment.scheduled", "appointment", "a1",
	    "at", "");
	submit(fx, "med", T0, 3, "type", "appointment.scheduled", "appointment", "a2",
	    "at", "");
	submit(fx, "med", T0, 2, "type", "appointment.missed", "appointment", "a1");
	submit(fx, "med", T0, 2, "type", "appointment.missed", "appointment", "a2");
}

static void
resolve_by_attending(struct fixture *fx, int64_t at)
{
	submit(fx, "med", at, 3, "type", "appointment.scheduled", "appointment", "a3",
	    "at", "");
	submit(fx, "med", at, 2, "type", "appointment.attended", "appointment", "a3");
}

static void
arm_drop_out(struct fixture *fx)
{
	identify(fx);
	submit(fx, "med", T0, 1, "type", "support.started");
	submit(fx, "med", T0, 2, "type", "support.ended", "outcome", "dropped_out");
}

static void
resolve_by_other_support(struct fixture *fx, int64_t at)
{
	submit(fx, "ml", at, 1, "type", "support.started");
}

static void
arm_contract(struct fixture *fx)
{
	char day[16];
	time_t t = (time_t)((T0 + 40 * DAY) / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	identify(fx);
	submit(fx, "med", T0, 3, "type", "employment.started", "contract", "cdd",
	    "ends_on", day);
}

/* ends_on is at 00:00 UTC of its day. */
#define CONTRACT_DUE (((T0 + 40 * DAY) / DAY) * DAY - 30 * DAY)

static const struct scenario scenarios[] = {
	{ RULE_REFERRAL_UNANSWERED, T0 + 10 * DAY, arm_referral, resolve_by_accepting },
	{ RULE_REFERRAL_EXPIRED, T0 + 30 * DAY, arm_referral, NULL },
	{ RULE_NO_REORIENTATION, T0 + 10 * DAY, arm_decline, resolve_by_new_referral },
	{ RULE_NO_REFERENT, T0 + 15 * DAY, identify, resolve_by_support },
	{ RULE_NO_CONTACT, T0 + 45 * DAY, identify, resolve_by_contact },
	{ RULE_MISSED_APPOINTMENTS, T0, arm_misses, resolve_by_attending },
	{ RULE_SUPPORT_DROPPED, T0 + 7 * DAY, arm_drop_out, resolve_by_other_support },
	{ RULE_CONTRACT_ENDING, CONTRACT_DUE, arm_contract, resolve_by_support },
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void
sweep(struct fixture *fx, int64_t now)
{
	unsigned fired;

	assert_int_equal(alerts_sweep(&fx->b, now, &fired), 0);
}

/* The open alert of the participant for this rule, or 0. */
static uint64_t
open_alert(struct fixture *fx, enum rule_id rule, struct alert *a)
{
	char key[PW_ID_SIZE + 2];
	MDB_txn *txn;
	uint64_t seq;

	memcpy(key, P, sizeof(P));
	key[sizeof(P)] = (char)rule;
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.alert_open, key,
	    sizeof(P) + 1, &seq), 0);
	if (seq != 0 && a != NULL) {
		char k8[8];
		MDB_val k = { 8, k8 }, v;

		store_put_be64(k8, seq);
		assert_int_equal(mdb_get(txn, fx->b.st.alerts, &k, &v), 0);
		assert_int_equal(alert_unpack(v.mv_data, v.mv_size, a), RL_OK);
	}
	mdb_txn_abort(txn);
	return seq;
}

/* How many alerts, open or not, exist for this rule. */
static unsigned
alerts_for(struct fixture *fx, enum rule_id rule)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned n = 0;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.alerts, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		struct alert a;

		assert_int_equal(alert_unpack(v.mv_data, v.mv_size, &a), RL_OK);
		n += a.rule == rule;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return n;
}

static void
test_each_rule_fires_at_its_deadline_and_not_before(void **state)
{
	for (size_t i = 0; i < NSCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		struct fixture *fx = fixture_new(16);
		uint64_t coord_before;

		s->arm(fx);
		coord_before = mailbox_count(fx, "coord");
		sweep(fx, s->due - 1);
		if (open_alert(fx, s->rule, NULL) != 0)
			fail_msg("%s fired 1 ms before its deadline", rule_name(s->rule));
		sweep(fx, s->due);
		if (open_alert(fx, s->rule, NULL) == 0)
			fail_msg("%s did not fire at its deadline", rule_name(s->rule));
		/* Delivered to the coordinator covering every QPV. */
		assert_true(mailbox_count(fx, "coord") > coord_before);
		/* Never twice: later sweeps and events keep one alert. */
		sweep(fx, s->due + 1);
		sweep(fx, s->due + 20 * DAY);
		if (alerts_for(fx, s->rule) != 1)
			fail_msg("%s: expected 1 alert, got %u", rule_name(s->rule),
			    alerts_for(fx, s->rule));
		fixture_free(fx);
	}
}

static void
test_each_rule_resolves_itself_when_the_missing_thing_happens(void **state)
{
	for (size_t i = 0; i < NSCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		struct fixture *fx;
		struct alert a;
		uint64_t seq;

		if (s->resolve == NULL)
			continue;
		fx = fixture_new(16);
		s->arm(fx);
		sweep(fx, s->due);
		seq = open_alert(fx, s->rule, NULL);
		assert_true(seq != 0);
		s->resolve(fx, s->due + 1);
		if (open_alert(fx, s->rule, NULL) != 0)
			fail_msg("%s stayed open after the missing event",
			    rule_name(s->rule));
		/* The record says who resolved it: the broker itself. */
		char k8[8];
		MDB_txn *txn;
		MDB_val k = { 8, k8 }, v;
		store_put_be64(k8, seq);
		assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
		assert_int_equal(mdb_get(txn, fx->b.st.alerts, &k, &v), 0);
		assert_int_equal(alert_unpack(v.mv_data, v.mv_size, &a), RL_OK);
		mdb_txn_abort(txn);
		assert_int_equal(a.status, ALERT_RESOLVED);
		assert_string_equal(a.resolved_by, "relais");
		fixture_free(fx);
	}
}

static void
test_each_rule_stays_quiet_when_the_event_comes_in_time(void **state)
{
	for (size_t i = 0; i < NSCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		struct fixture *fx;

		/* A count rule has no "in time"; its deadline is the miss. */
		if (s->resolve == NULL || s->due == T0)
			continue;
		fx = fixture_new(16);
		s->arm(fx);
		s->resolve(fx, s->due - DAY);
		sweep(fx, s->due);
		if (open_alert(fx, s->rule, NULL) != 0)
			fail_msg("%s fired although the event came in time",
			    rule_name(s->rule));
		fixture_free(fx);
	}
}

static void
test_each_rule_is_caught_up_after_a_restart(void **state)
{
	for (size_t i = 0; i < NSCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		struct fixture *fx = fixture_new(16);
		char err[256];

		s->arm(fx);
		/* The broker stops; its deadline passes while it is down. */
		store_close(&fx->b.st);
		assert_int_equal(store_open(&fx->b.st, fx->b.cfg->data_dir, 16, false,
		    err, sizeof(err)), 0);
		assert_int_equal(broker_load_counters(&fx->b), 0);
		sweep(fx, s->due + 3 * DAY);
		if (open_alert(fx, s->rule, NULL) == 0)
			fail_msg("%s was not caught up at start-up", rule_name(s->rule));
		fixture_free(fx);
	}
}

static void
test_a_switched_off_rule_stays_silent(void **state)
{
	for (size_t i = 0; i < NSCENARIOS; i++) {
		const struct scenario *s = &scenarios[i];
		struct fixture *fx = fixture_new(16);

		fx->b.cfg->rules[s->rule].enabled = false;
		s->arm(fx);
		sweep(fx, s->due + 400 * DAY);
		if (alerts_for(fx, s->rule) != 0)
			fail_msg("%s fired while switched off", rule_name(s->rule));
		fixture_free(fx);
	}
}

static void
test_the_target_of_an_unanswered_referral_gets_a_reminder(void **state)
{
	struct fixture *fx = *state;
	uint64_t before;

	arm_referral(fx);
	before = mailbox_count(fx, "ml");    /* the referral itself */
	sweep(fx, T0 + 10 * DAY);
	assert_int_equal(mailbox_count(fx, "ml"), before + 1);
}

static uint64_t
open_alert_count(struct fixture *fx)
{
	MDB_txn *txn;
	uint64_t n;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	n = store_count(txn, fx->b.st.alert_open);
	mdb_txn_abort(txn);
	return n;
}

static bool
alert_names(const struct alert *a, const char *agent)
{
	for (int i = 0; i < a->nagents; i++)
		if (strcmp(a->agents[i], agent) == 0)
			return true;
	return false;
}

/*
 * SPEC §4, one referral nobody answers: the unanswered warning is
 * superseded when the referral expires (it could never resolve itself),
 * so by day 46 four alerts are open, not five, and each of them resolves
 * when the person is re-oriented.  The mediator that identified the
 * person is concerned by no_referent and no_contact.
 */
static void
test_an_expired_referral_supersedes_its_warning(void **state)
{
	struct fixture *fx = *state;
	uint64_t unanswered;
	struct alert a;

	arm_referral(fx);
	sweep(fx, T0 + 10 * DAY);
	unanswered = open_alert(fx, RULE_REFERRAL_UNANSWERED, NULL);
	assert_true(unanswered != 0);
	sweep(fx, T0 + 30 * DAY);
	assert_true(open_alert(fx, RULE_REFERRAL_EXPIRED, NULL) != 0);
	assert_int_equal(open_alert(fx, RULE_REFERRAL_UNANSWERED, NULL), 0);
	{
		char k8[8];
		MDB_txn *txn;
		MDB_val k = { 8, k8 }, v;

		store_put_be64(k8, unanswered);
		assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(mdb_get(txn, fx->b.st.alerts, &k, &v), 0);
		assert_int_equal(alert_unpack(v.mv_data, v.mv_size, &a), RL_OK);
		mdb_txn_abort(txn);
	}
	assert_int_equal(a.status, ALERT_RESOLVED);
	assert_string_equal(a.resolved_by, "relais");
	assert_string_equal(a.note, "superseded");
	assert_true(a.resolved_at == T0 + 30 * DAY);

	sweep(fx, T0 + 46 * DAY);
	assert_int_equal(open_alert_count(fx), 4);
	assert_int_equal(alerts_for(fx, RULE_REFERRAL_UNANSWERED), 1);
	assert_true(open_alert(fx, RULE_NO_REORIENTATION, NULL) != 0);
	assert_true(open_alert(fx, RULE_NO_REFERENT, &a) != 0);
	assert_true(alert_names(&a, "med"));
	assert_true(open_alert(fx, RULE_NO_CONTACT, &a) != 0);
	assert_true(alert_names(&a, "med"));

	/* Re-oriented: every one of them resolves itself. */
	refer(fx, "r-2", T0 + 46 * DAY);
	assert_int_equal(open_alert_count(fx), 0);
}

/* alert.acknowledged / alert.resolved: coordinators only, in order. */
static void
send_alert_event(struct fixture *fx, const char *sender, const char *type,
    uint64_t seq, int expect)
{
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;
	char id[32], ev[32];
	static unsigned counter;

	snprintf(id, sizeof(id), "al-%llu", (unsigned long long)seq);
	snprintf(ev, sizeof(ev), "x-%u", ++counter);
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", ev, "type", type, "occurred_at",
	    "1795000000000", "participant", P, "alert", id);
	assert_int_equal(ingest_at(fx, sender, &sb, T0 + 11 * DAY, &r, &err), expect);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_coordinators_acknowledge_then_resolve(void **state)
{
	struct fixture *fx = *state;
	struct alert a;
	uint64_t seq;

	arm_referral(fx);
	sweep(fx, T0 + 10 * DAY);
	seq = open_alert(fx, RULE_REFERRAL_UNANSWERED, NULL);
	assert_true(seq != 0);
	send_alert_event(fx, "med", "alert.acknowledged", seq, RL_E_FORBIDDEN);
	send_alert_event(fx, "coord", "alert.acknowledged", seq + 100, RL_E_UNKNOWN_ALERT);
	send_alert_event(fx, "coord", "alert.acknowledged", seq, RL_OK);
	assert_int_equal(open_alert(fx, RULE_REFERRAL_UNANSWERED, &a), seq);
	assert_int_equal(a.status, ALERT_ACKNOWLEDGED);
	assert_string_equal(a.acknowledged_by, "coord");
	send_alert_event(fx, "coord", "alert.acknowledged", seq, RL_E_BAD_TRANSITION);
	send_alert_event(fx, "coord", "alert.resolved", seq, RL_OK);
	assert_int_equal(open_alert(fx, RULE_REFERRAL_UNANSWERED, NULL), 0);
	send_alert_event(fx, "coord", "alert.resolved", seq, RL_E_BAD_TRANSITION);
}

/* The due time of the first key in the deadline index, or 0. */
static int64_t
first_deadline(struct fixture *fx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t due = 0;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.deadlines, &cur), 0);
	if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0)
		due = (int64_t)store_be64(k.mv_data);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return due;
}

/*
 * Activity pushes no_contact later without touching the index; the early
 * key, when it comes up, moves to the true time instead of firing.  A
 * participant has one key, at the earliest due time not yet fired.
 */
static void
test_a_deadline_pushed_later_fires_at_its_true_time(void **state)
{
	struct fixture *fx = *state;
	int64_t key;

	identify(fx);
	assert_int_equal(count(fx, fx->b.st.deadlines), 1);
	key = first_deadline(fx);
	resolve_by_contact(fx, T0 + 20 * DAY);
	assert_int_equal(first_deadline(fx), key);
	sweep(fx, T0 + 45 * DAY);
	assert_int_equal(open_alert(fx, RULE_NO_CONTACT, NULL), 0);
	/* no_referent fired; the key moved on to no_contact's true time. */
	assert_true(open_alert(fx, RULE_NO_REFERENT, NULL) != 0);
	assert_int_equal(count(fx, fx->b.st.deadlines), 1);
	assert_int_equal(first_deadline(fx), T0 + 65 * DAY);
	sweep(fx, T0 + 65 * DAY - 1);
	assert_int_equal(open_alert(fx, RULE_NO_CONTACT, NULL), 0);
	sweep(fx, T0 + 65 * DAY);
	assert_true(open_alert(fx, RULE_NO_CONTACT, NULL) != 0);
}

/* The sweep visits what is due, not every participant. */
static void
test_sweep_reads_only_due_deadlines(void **state)
{
	struct fixture *fx = *state;
	msgpack_sbuffer sb;
	struct ingest_result r;
	struct rl_error err;
	char id[32], p[32];

	msgpack_sbuffer_init(&sb);
	for (int i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", id, "type", "participant.identified",
		    "occurred_at", i < 3 ? "1790000000000" : "1795000000000",
		    "participant", p, "qpv", "sanitas", "source", "outreach");
		assert_int_equal(ingest_at(fx, "med", &sb, T0, &r, &err), RL_OK);
	}
	msgpack_sbuffer_destroy(&sb);
	/*
	 * 500 participants, one key each (the earliest of no_referent,
	 * no_contact and retention); only 3 are old enough.
	 */
	assert_int_equal(count(fx, fx->b.st.deadlines), 500);
	sweep(fx, 1790000000000 + 15 * DAY);
	assert_int_equal(fx->b.sweep.last_due, 3);
	sweep(fx, 1790000000000 + 15 * DAY);
	assert_int_equal(fx->b.sweep.last_due, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_rule_fires_at_its_deadline_and_not_before),
		cmocka_unit_test(test_each_rule_resolves_itself_when_the_missing_thing_happens),
		cmocka_unit_test(test_each_rule_stays_quiet_when_the_event_comes_in_time),
		cmocka_unit_test(test_each_rule_is_caught_up_after_a_restart),
		cmocka_unit_test(test_a_switched_off_rule_stays_silent),
		cmocka_unit_test_setup_teardown(test_the_target_of_an_unanswered_referral_gets_a_reminder,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_an_expired_referral_supersedes_its_warning,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_coordinators_acknowledge_then_resolve,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_deadline_pushed_later_fires_at_its_true_time,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_reads_only_due_deadlines,
		    fixture_setup, fixture_teardown),
	};
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
