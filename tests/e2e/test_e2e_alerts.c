/*
 * End to end, rupture detection (SPEC §4) through the real broker: alerts
 * open when the broker's clock passes a deadline, reach the coordinators
 * of the participant's QPV and the agents concerned, resolve themselves
 * when the missing thing happens, fire at start-up for deadlines passed
 * while the broker was down, and are acknowledged and resolved by
 * coordinators through the `relais` command.
 *
 * The brokers run with manual_clock = yes: an operator moves their clock
 * forward by days, and the sweep (every 100 ms) fires what falls due, so
 * no test waits for a rule's duration.
 *
 * Absence is proven by order, never by waiting a while: the sweep takes
 * deadlines in time order in one transaction, so once an alert whose
 * deadline is later than another's is visible, the earlier one has been
 * decided.  Tests that check "no alert yet" add a sentinel participant
 * whose deadline falls just before the clock's new time, and look only
 * after the sentinel's alert is there.
 *
 * Size of the kill -9 test (environment):
 *   E2E_ALERTS_BURST     participants in the burst, 3 events each (1500)
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "harness.h"

#define RULE_UNANSWERED     "referral_unanswered"
#define CATCHUP_MARGIN_MS   3000

/* A member of a member: "resolved"."by". */
static const char *
jstr2(const json_t *o, const char *key, const char *sub)
{
	return jstr(json_object_get(o, key), sub);
}

/*
 * A broker with a manual clock and the agents every test uses: two
 * partners and a target, a coordinator of the whole territory, an
 * operator.  rules: [rules] lines, or NULL.
 */
static struct e2e_broker *
alerts_broker(const char *rules)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");

	if (rules != NULL)
		snprintf(b->rules, sizeof(b->rules), "%s", rules);
	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "ft-nord", "france_travail", true);
	e2e_agent_add(b, "cite-emploi", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	return b;
}

/* participant.identified in qpv, then a referral to `to`, both at `at`. */
static void
refer(relais_client *c, const char *participant, const char *qpv,
    const char *referral, const char *to, int64_t at)
{
	char id[96];

	snprintf(id, sizeof(id), "%s-identified", participant);
	au_submit_ok(c, au_ev_identified(id, participant, qpv, at));
	snprintf(id, sizeof(id), "%s-sent", referral);
	au_submit_ok(c, au_at(e2e_ev_referral(id, participant, referral, to), at));
}

/* The id of the alert ("al-N") the alerts query lists, failing if none. */
static char *
listed_alert_id(relais_client *coordinator, const char *rule,
    const char *participant)
{
	json_t *a = au_wait_listed(coordinator, rule, participant);
	char *id = strdup(jstr(a, "id"));

	json_decref(a);
	e2e_assert(id != NULL, "out of memory");
	return id;
}

static json_t *
alert_event(const char *type, const char *event_id, const char *participant,
    const char *alert)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", event_id,
	    "type", type, "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", participant, "alert", alert);
}

/* Index of the first line of a follower's output that is this change of
 * an alert of rule and participant; -1 if none. */
static long
find_change(const json_t *lines, const char *rule, const char *participant,
    const char *change)
{
	const json_t *a;
	size_t i;

	json_array_foreach(lines, i, a) {
		const char *r = jstr(a, "rule"), *p = jstr(a, "participant");
		const char *ch = jstr(a, "change");

		if (r != NULL && p != NULL && ch != NULL && strcmp(r, rule) == 0 &&
		    strcmp(p, participant) == 0 && strcmp(ch, change) == 0)
			return (long)i;
	}
	return -1;
}

/* ------------------------------------------------------------------ */

/*
 * referral_unanswered: nothing at 10 days less an hour; at 10 days and an
 * hour the coordinator's `relais alerts --follow` prints the opened
 * warning and the target gets its reminder; the target's acceptance
 * resolves the alert automatically (resolved.by "relais"), and the
 * follower prints that too.
 */
static void
test_referral_unanswered_opens_then_resolves(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ml, *ops, *coord;
	struct au_cli follow;
	json_t *a, *lines;
	long opened, resolved;
	int64_t t0;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	ml = e2e_connect(b, "ml-tours");

	/* The sentinel's referral is two hours older than p-1's. */
	t0 = rl_wall_ms();
	refer(cs, "p-sentinel", "sanitas", "r-sentinel", "ft-nord",
	    t0 - 2 * AU_HOUR_MS);
	refer(cs, "p-1", "sanitas", "r-1", "ml-tours", t0);
	au_cli_start(b, "cite-emploi", NULL, &follow, "alerts", "--follow",
	    "--count", "3", "--timeout-ms", "30000", NULL);

	au_clock_advance(ops, 10 * AU_DAY_MS - AU_HOUR_MS);
	json_decref(au_wait_listed(coord, RULE_UNANSWERED, "p-sentinel"));
	a = au_find_alert(coord, "all", RULE_UNANSWERED, "p-1");
	e2e_assert(a == NULL, "expected no alert for p-1 an hour before its "
	    "referral is 10 days old, got %s", e2e_json_str(a));

	au_clock_advance(ops, 2 * AU_HOUR_MS);
	/* The reminder to the target is the alert itself, naming it. */
	a = au_expect_alert(ml, RULE_UNANSWERED, "p-1", "opened", E2E_WAIT_MS);
	e2e_assert_str("warning", jstr(a, "severity"), "severity");
	e2e_assert_str("r-1", jstr(a, "referral"), "the alert's referral");
	e2e_assert_str("sanitas", jstr(a, "qpv"), "the alert's qpv");
	e2e_assert_str("open", jstr(a, "status"), "the alert's status");
	e2e_assert(au_array_has(json_object_get(a, "agents"), "ml-tours"),
	    "expected the target ml-tours among the agents concerned: %s",
	    e2e_json_str(a));
	json_decref(a);

	au_submit_ok(ml, au_at(e2e_ev_answer("referral.accepted", "ml-accept-1",
	    "p-1", "r-1"), au_broker_now(ml)));
	a = au_expect_alert(ml, RULE_UNANSWERED, "p-1", "resolved", E2E_WAIT_MS);
	e2e_assert_str("relais", jstr2(a, "resolved", "by"), "resolved.by");
	json_decref(a);
	a = au_find_alert(coord, "open", RULE_UNANSWERED, "p-1");
	e2e_assert(a == NULL, "the answered referral's alert is still listed "
	    "as open: %s", e2e_json_str(a));

	au_cli_wait(&follow, E2E_WAIT_MS);
	e2e_assert(follow.status == 0, "relais alerts --follow: expected exit "
	    "status 0 after 3 deliveries, got %d; stderr: %s", follow.status,
	    follow.err);
	lines = au_json_lines(follow.out);
	e2e_assert(find_change(lines, RULE_UNANSWERED, "p-sentinel", "opened") >= 0,
	    "the follower did not print the sentinel's alert:\n%s", follow.out);
	opened = find_change(lines, RULE_UNANSWERED, "p-1", "opened");
	resolved = find_change(lines, RULE_UNANSWERED, "p-1", "resolved");
	e2e_assert(opened >= 0 && resolved > opened, "expected the follower to "
	    "print p-1's alert opened, then resolved; it printed:\n%s",
	    follow.out);
	e2e_assert_str("relais", jstr2(json_array_get(lines, (size_t)resolved),
	    "resolved", "by"), "resolved.by printed by the follower");
	json_decref(lines);
	au_cli_free(&follow);
	relais_close(&ml);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

/*
 * no_contact: a followed participant with no event for 45 days raises an
 * alert (not before), to the coordinator and the referent; a contact.made
 * resolves it.
 */
static void
test_no_contact_after_45_days(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ops, *coord;
	json_t *a;
	int64_t t0;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = e2e_connect(b, "cite-emploi");

	/* A referent from the start, so that no_referent stays quiet. */
	t0 = rl_wall_ms();
	au_submit_ok(cs, au_ev_identified("s-id", "p-sentinel", "sanitas",
	    t0 - 2 * AU_HOUR_MS));
	au_submit_ok(cs, au_ev_support("s-sup", "p-sentinel", t0 - 2 * AU_HOUR_MS));
	au_submit_ok(cs, au_ev_identified("p2-id", "p-2", "sanitas", t0));
	au_submit_ok(cs, au_ev_support("p2-sup", "p-2", t0));

	au_clock_advance(ops, 45 * AU_DAY_MS - AU_HOUR_MS);
	json_decref(au_expect_alert(coord, "no_contact", "p-sentinel", "opened",
	    E2E_WAIT_MS));
	a = au_find_alert(coord, "all", "no_contact", "p-2");
	e2e_assert(a == NULL, "expected no no_contact alert an hour before 45 "
	    "days, got %s", e2e_json_str(a));

	au_clock_advance(ops, 2 * AU_HOUR_MS);
	a = au_expect_alert(coord, "no_contact", "p-2", "opened", E2E_WAIT_MS);
	e2e_assert_str("alert", jstr(a, "severity"), "severity");
	e2e_assert(au_array_has(json_object_get(a, "agents"), "cs-pasteur"),
	    "expected the referent cs-pasteur among the agents concerned: %s",
	    e2e_json_str(a));
	json_decref(a);

	au_submit_ok(cs, au_at(e2e_ev_contact("p2-contact", "p-2"),
	    au_broker_now(cs)));
	a = au_expect_alert(coord, "no_contact", "p-2", "resolved", E2E_WAIT_MS);
	e2e_assert_str("relais", jstr2(a, "resolved", "by"), "resolved.by");
	e2e_assert_str("resolved", jstr(a, "status"), "status");
	json_decref(a);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

/* Byte offset of the nth (1-based) line holding needle, or -1. */
static long
nth_line_at(const char *text, const char *needle, int nth)
{
	const char *p = text;

	while ((p = strstr(p, needle)) != NULL) {
		if (--nth == 0)
			return (long)(p - text);
		p += strlen(needle);
	}
	return -1;
}

/*
 * Catch-up: a deadline that passes while the broker is down fires as the
 * broker starts, before it reports ready.
 *
 * The manual clock cannot make this happen: its offset lives in the
 * broker's memory, so a restarted broker is back on real time, behind any
 * deadline the advanced clock passed.  A deadline already past when the
 * event is recorded does not work either: the running broker's sweep
 * fires it within 100 ms.  So the referral is dated 10 days minus
 * CATCHUP_MARGIN_MS ago (rules are anchored at the earlier of occurred_at
 * and recorded_at): its deadline comes a few real seconds after it is
 * sent.  The broker is stopped before that (checked: no alert in its
 * first run), the test waits for the wall clock to pass the deadline, and
 * the restarted broker must open the alert between its start and its
 * broker.ready line.
 */
static void
test_catch_up_at_start(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *coord;
	int64_t due;
	long stopped, opened, ready2;
	char *log;
	json_t *a;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	due = rl_wall_ms() + CATCHUP_MARGIN_MS;
	refer(cs, "p-3", "sanitas", "r-3", "ml-tours", due - 10 * AU_DAY_MS);
	relais_close(&cs);
	e2e_stop(b);
	e2e_assert(e2e_log_count(b, "\"alert.opened\"", NULL) == 0,
	    "the alert opened before the broker stopped: submitting and "
	    "stopping took more than %d ms on this machine; raise "
	    "CATCHUP_MARGIN_MS", CATCHUP_MARGIN_MS);

	/* Waiting for the wall clock, not for the broker: it is not running. */
	while (rl_wall_ms() <= due + 50)
		usleep(20000);
	e2e_start(b);

	log = e2e_log_read(b);
	e2e_assert(log != NULL, "cannot read the broker log %s", b->log);
	stopped = nth_line_at(log, "\"msg\":\"broker.stopped\"", 1);
	opened = nth_line_at(log, "\"msg\":\"alert.opened\"", 1);
	ready2 = nth_line_at(log, "\"msg\":\"broker.ready\"", 2);
	free(log);
	e2e_assert(stopped >= 0 && ready2 > stopped, "expected a broker.stopped "
	    "then a second broker.ready in the log");
	e2e_assert(opened > stopped && opened < ready2, "expected alert.opened "
	    "in the restarted broker's log before its broker.ready (start-up "
	    "sweep); alert.opened at byte %ld, broker.stopped at %ld, second "
	    "broker.ready at %ld", opened, stopped, ready2);

	coord = e2e_connect(b, "cite-emploi");
	a = au_expect_alert(coord, RULE_UNANSWERED, "p-3", "opened", E2E_WAIT_MS);
	e2e_assert_str("r-3", jstr(a, "referral"), "the alert's referral");
	json_decref(a);
	relais_close(&coord);
}

/*
 * Territory: a coordinator covering only rochepinard gets the alerts of a
 * rochepinard participant and nothing of a sanitas one, whose alert it can
 * neither list nor acknowledge (forbidden, also through the command); the
 * coordinator of every QPV gets both and acknowledges.
 */
static void
test_alerts_follow_the_territory(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ops, *all, *roche;
	struct au_cli cli;
	json_t *a, *d, *r;
	char *san_id;
	int64_t t0;

	au_agent_add_qpv(b, "coord-roche", "coordinator", "rochepinard");
	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	all = e2e_connect(b, "cite-emploi");
	roche = e2e_connect(b, "coord-roche");

	/* The sanitas deadline comes first: swept before the rochepinard one. */
	t0 = rl_wall_ms();
	refer(cs, "p-san", "sanitas", "r-san", "ml-tours", t0 - 1000);
	refer(cs, "p-roche", "rochepinard", "r-roche", "ml-tours", t0);
	au_clock_advance(ops, 10 * AU_DAY_MS + AU_HOUR_MS);

	json_decref(au_expect_alert(all, RULE_UNANSWERED, "p-san", "opened",
	    E2E_WAIT_MS));
	json_decref(au_expect_alert(all, RULE_UNANSWERED, "p-roche", "opened",
	    E2E_WAIT_MS));
	/* Its very first delivery: a sanitas one would have come before. */
	d = e2e_next_delivery(roche, E2E_WAIT_MS);
	a = json_object_get(d, "alert");
	e2e_assert(jstr(a, "participant") != NULL &&
	    strcmp(jstr(a, "participant"), "p-roche") == 0,
	    "expected coord-roche's first delivery to be p-roche's alert, got %s",
	    e2e_json_str(d));
	relais_ack(roche, (uint64_t)jint(d, "seq"));
	json_decref(d);
	au_wait_backlog(ops, "coord-roche", 0);
	a = au_find_alert(roche, "all", RULE_UNANSWERED, "p-san");
	e2e_assert(a == NULL, "coord-roche lists a sanitas alert: %s",
	    e2e_json_str(a));

	san_id = listed_alert_id(all, RULE_UNANSWERED, "p-san");
	r = e2e_submit1(roche, alert_event("alert.acknowledged", "roche-ack",
	    "p-san", san_id));
	e2e_expect_error(r, 202, "alert");
	json_decref(r);
	au_cli_run(b, "coord-roche", &cli, "alerts", "ack", san_id, NULL);
	e2e_assert(cli.status == 1 && strstr(cli.err, san_id) != NULL,
	    "relais alerts ack %s as coord-roche: expected exit status 1 and a "
	    "message naming the alert, got %d, stderr: %s", san_id, cli.status,
	    cli.err);
	au_cli_free(&cli);

	r = e2e_submit1(all, alert_event("alert.acknowledged", "all-ack", "p-san",
	    san_id));
	e2e_expect_ok(r);
	json_decref(r);
	a = au_expect_alert(all, RULE_UNANSWERED, "p-san", "acknowledged",
	    E2E_WAIT_MS);
	e2e_assert_str("cite-emploi", jstr2(a, "acknowledged", "by"),
	    "acknowledged.by");
	json_decref(a);
	/* The change was queued with the event, so it is there already. */
	e2e_assert_int(0, au_backlog(ops, "coord-roche"),
	    "coord-roche's backlog after the sanitas alert changed");
	free(san_id);
	relais_close(&roche);
	relais_close(&all);
	relais_close(&ops);
	relais_close(&cs);
}

/* One JSON line on stdout, with status ok. */
static void
expect_cli_ok_line(const struct au_cli *cli, const char *what)
{
	json_t *lines = au_json_lines(cli->out);

	e2e_assert(cli->status == 0, "%s: expected exit status 0, got %d; "
	    "stderr: %s", what, cli->status, cli->err);
	e2e_assert(json_array_size(lines) == 1 &&
	    strcmp(jstr(json_array_get(lines, 0), "status"), "ok") == 0,
	    "%s: expected one result line with status ok, got: %s", what,
	    cli->out);
	json_decref(lines);
}

static void
expect_cli_refused(const struct au_cli *cli, const char *what,
    const char *needle)
{
	e2e_assert(cli->status == 1, "%s: expected exit status 1, got %d; "
	    "stdout: %s; stderr: %s", what, cli->status, cli->out, cli->err);
	e2e_assert(strncmp(cli->err, "relais: ", 8) == 0 &&
	    strstr(cli->err, needle) != NULL, "%s: expected \"relais: ...%s...\" "
	    "on stderr, got: %s", what, needle, cli->err);
}

/*
 * `relais alerts ack` and `relais alerts resolve` as a coordinator change
 * the alert (with the note) and print the result line; as a partner they
 * are refused with exit status 1; a second resolve is refused too.
 * `relais alerts` lists open alerts only, `--all` the resolved ones too.
 */
static void
test_cli_ack_and_resolve(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ops, *coord;
	struct au_cli cli;
	json_t *a, *lines;
	char *id;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	refer(cs, "p-7", "sanitas", "r-7", "ml-tours", rl_wall_ms());
	au_clock_advance(ops, 10 * AU_DAY_MS + AU_HOUR_MS);
	id = listed_alert_id(coord, RULE_UNANSWERED, "p-7");

	au_cli_run(b, "cs-pasteur", &cli, "alerts", "ack", id, NULL);
	expect_cli_refused(&cli, "relais alerts ack as a partner",
	    "only coordinators");
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "ack", id, "--note",
	    "partenaire relancé", NULL);
	expect_cli_ok_line(&cli, "relais alerts ack as the coordinator");
	au_cli_free(&cli);
	a = au_find_alert(coord, "open", RULE_UNANSWERED, "p-7");
	e2e_assert(a != NULL, "the acknowledged alert is no longer listed");
	e2e_assert_str("acknowledged", jstr(a, "status"), "status after ack");
	e2e_assert_str("cite-emploi", jstr2(a, "acknowledged", "by"),
	    "acknowledged.by");
	e2e_assert_str("partenaire relancé", jstr(a, "note"), "note");
	json_decref(a);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "ack", id, NULL);
	expect_cli_refused(&cli, "a second relais alerts ack",
	    "already acknowledged");
	au_cli_free(&cli);
	au_cli_run(b, "ml-tours", &cli, "alerts", "resolve", id, NULL);
	expect_cli_refused(&cli, "relais alerts resolve as a partner",
	    "only coordinators");
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "resolve", id, "--note",
	    "réorientation faite", NULL);
	expect_cli_ok_line(&cli, "relais alerts resolve as the coordinator");
	au_cli_free(&cli);
	a = au_find_alert(coord, "all", RULE_UNANSWERED, "p-7");
	e2e_assert(a != NULL, "the resolved alert is not in the alerts query "
	    "with status all");
	e2e_assert_str("resolved", jstr(a, "status"), "status after resolve");
	e2e_assert_str("cite-emploi", jstr2(a, "resolved", "by"), "resolved.by");
	e2e_assert_str("réorientation faite", jstr(a, "note"), "note");
	json_decref(a);

	au_cli_run(b, "cite-emploi", &cli, "alerts", "resolve", id, NULL);
	expect_cli_refused(&cli, "a second relais alerts resolve",
	    "already resolved");
	au_cli_free(&cli);

	au_cli_run(b, "cite-emploi", &cli, "alerts", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out, id) == NULL,
	    "relais alerts: expected exit status 0 and no line for the resolved "
	    "%s, got %d: %s%s", id, cli.status, cli.out, cli.err);
	au_cli_free(&cli);
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--all", NULL);
	lines = au_json_lines(cli.out);
	e2e_assert(cli.status == 0 && json_array_size(lines) == 1 &&
	    strcmp(jstr(json_array_get(lines, 0), "id"), id) == 0 &&
	    strcmp(jstr(json_array_get(lines, 0), "status"), "resolved") == 0,
	    "relais alerts --all: expected exit status 0 and one line for the "
	    "resolved %s, got %d: %s%s", id, cli.status, cli.out, cli.err);
	json_decref(lines);
	au_cli_free(&cli);
	free(id);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

/*
 * An alert event must name the alert's own participant: one naming another
 * participant, or one with no pathway at all, would file the coordinator's
 * answer in the wrong timeline (or in the timeline of nobody), where
 * `relais participant` shows it and an erasure of the real participant
 * would not reach it.
 */
static void
test_alert_event_names_its_participant(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ops, *coord;
	json_t *other, *nobody;
	char *id, shown[1024];
	bool refused;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	refer(cs, "p-10", "sanitas", "r-10", "ml-tours", rl_wall_ms());
	au_submit_ok(cs, au_ev_identified("p-11-id", "p-11", "sanitas",
	    rl_wall_ms()));
	au_clock_advance(ops, 10 * AU_DAY_MS + AU_HOUR_MS);
	id = listed_alert_id(coord, RULE_UNANSWERED, "p-10");

	/* Two transitions the alert allows in this order, whatever happens. */
	nobody = e2e_submit1(coord, alert_event("alert.acknowledged",
	    "ack-nobody", "p-nobody", id));
	other = e2e_submit1(coord, alert_event("alert.resolved", "resolve-other",
	    "p-11", id));
	refused = strcmp(jstr(other, "status"), "error") == 0 &&
	    strcmp(jstr(nobody, "status"), "error") == 0 &&
	    jstr(other, "field") != NULL && jstr(nobody, "field") != NULL &&
	    strcmp(jstr(other, "field"), "participant") == 0 &&
	    strcmp(jstr(nobody, "field"), "participant") == 0;
	/* e2e_json_str() has one buffer: one call per snprintf. */
	snprintf(shown, sizeof(shown), "%s and ", e2e_json_str(other));
	snprintf(shown + strlen(shown), sizeof(shown) - strlen(shown), "%s",
	    e2e_json_str(nobody));
	json_decref(other);
	json_decref(nobody);
	free(id);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
	e2e_assert(refused, "alert events about the alert of p-10: expected an "
	    "error on field \"participant\" for alert.resolved naming p-11 "
	    "(another participant) and for alert.acknowledged naming p-nobody "
	    "(no pathway); got %s", shown);
}

/*
 * `relais participant ID` prints the state and the timeline as one
 * indented document for a coordinator and for the parties of the person's
 * referral (its target as soon as it is sent, SPEC 2.5); another partner
 * and an operator are refused with exit status 1.
 */
static void
test_cli_participant(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs, *ml;
	struct au_cli cli;
	json_error_t jerr;
	json_t *doc, *timeline;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	refer(cs, "p-8", "sanitas", "r-8", "ml-tours", rl_wall_ms());

	au_cli_run(b, "cite-emploi", &cli, "participant", "p-8", "--json", NULL);
	e2e_assert(cli.status == 0, "relais participant as the coordinator: "
	    "expected exit status 0, got %d; stderr: %s", cli.status, cli.err);
	e2e_assert(strncmp(cli.out, "{\n  \"", 5) == 0, "expected an indented "
	    "JSON document, got: %.300s", cli.out);
	doc = json_loads(cli.out, 0, &jerr);
	e2e_assert(doc != NULL, "relais participant printed no JSON document "
	    "(%s): %.300s", jerr.text, cli.out);
	timeline = json_object_get(doc, "timeline");
	e2e_assert_str("p-8", jstr2(doc, "state", "participant"),
	    "state.participant");
	e2e_assert_int(2, json_array_size(timeline), "timeline entries");
	e2e_assert_str("participant.identified",
	    jstr(json_array_get(timeline, 0), "type"), "first timeline entry");
	e2e_assert_str("referral.sent", jstr(json_array_get(timeline, 1), "type"),
	    "second timeline entry");
	json_decref(doc);
	au_cli_free(&cli);

	au_cli_run(b, "cs-pasteur", &cli, "participant", "p-8", "--json", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out, "\"r-8\"") != NULL,
	    "relais participant as the sender: expected exit status 0 and the "
	    "pathway, got %d; stderr: %s", cli.status, cli.err);
	au_cli_free(&cli);

	au_cli_run(b, "ft-nord", &cli, "participant", "p-8", NULL);
	expect_cli_refused(&cli, "relais participant as another partner",
	    "forbidden");
	au_cli_free(&cli);
	au_cli_run(b, "ml-tours", &cli, "participant", "p-8", NULL);
	e2e_assert(cli.status == 0, "relais participant as the target before "
	    "it answers: expected exit status 0, got %d; stderr: %s", cli.status,
	    cli.err);
	au_cli_free(&cli);
	au_cli_run(b, "ops", &cli, "participant", "p-8", NULL);
	expect_cli_refused(&cli, "relais participant as an operator",
	    "forbidden");
	au_cli_free(&cli);

	ml = au_connect_quiet(b, "ml-tours");
	au_submit_ok(ml, e2e_ev_answer("referral.accepted", "ml-acc-8", "p-8",
	    "r-8"));
	au_cli_run(b, "ml-tours", &cli, "participant", "p-8", NULL);
	e2e_assert(cli.status == 0, "relais participant as the target once it "
	    "answered: expected exit status 0, got %d; stderr: %s", cli.status,
	    cli.err);
	au_cli_free(&cli);
	relais_close(&ml);
	relais_close(&cs);
}

/*
 * `relais clock advance` moves the clock for an operator only, and
 * `relais clock` shows it to anyone.
 */
static void
test_cli_clock(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	relais_client *cs;
	struct au_cli cli;
	json_t *lines;
	int64_t before;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	before = au_broker_now(cs);

	au_cli_run(b, "ops", &cli, "clock", "advance", "11d", NULL);
	lines = au_json_lines(cli.out);
	e2e_assert(cli.status == 0 && json_array_size(lines) == 1,
	    "relais clock advance 11d as the operator: expected exit status 0 "
	    "and one line, got %d: %s%s", cli.status, cli.out, cli.err);
	e2e_assert_int(11 * AU_DAY_MS, jint(json_array_get(lines, 0), "offset_ms"),
	    "offset_ms after advancing 11d");
	json_decref(lines);
	au_cli_free(&cli);
	e2e_assert(au_broker_now(cs) >= before + 11 * AU_DAY_MS,
	    "the broker's clock did not move 11 days forward");

	au_cli_run(b, "cs-pasteur", &cli, "clock", "advance", "36h", NULL);
	expect_cli_refused(&cli, "relais clock advance as a partner",
	    "only operators");
	au_cli_free(&cli);
	au_cli_run(b, "ops", &cli, "clock", "advance", "11 days", NULL);
	e2e_assert(cli.status == 2 && strstr(cli.err, "DURATION") != NULL,
	    "relais clock advance '11 days': expected exit status 2 and a "
	    "message about DURATION, got %d: %s", cli.status, cli.err);
	au_cli_free(&cli);

	au_cli_run(b, "cs-pasteur", &cli, "clock", NULL);
	lines = au_json_lines(cli.out);
	e2e_assert(cli.status == 0 && jint(json_array_get(lines, 0), "now") >=
	    before + 11 * AU_DAY_MS, "relais clock: expected exit status 0 and "
	    "the advanced time, got %d: %s%s", cli.status, cli.out, cli.err);
	json_decref(lines);
	au_cli_free(&cli);
	relais_close(&cs);
}

/*
 * A rule switched off in the config (referral_unanswered = off) stays
 * silent 40 days on, while the rules still on fire: referral_expired, due
 * 20 days after referral_unanswered would have been, is the proof that the
 * sweep got that far.
 */
static void
test_switched_off_rule_is_silent(void **state)
{
	struct e2e_broker *b = alerts_broker("referral_unanswered = off\n");
	relais_client *cs, *ops, *coord, *ml;
	struct au_cli cli;
	json_t *a;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	ml = e2e_connect(b, "ml-tours");
	refer(cs, "p-9", "sanitas", "r-9", "ml-tours", rl_wall_ms());
	au_clock_advance(ops, 40 * AU_DAY_MS);

	json_decref(au_wait_listed(coord, "referral_expired", "p-9"));
	a = au_find_alert(coord, "all", RULE_UNANSWERED, "p-9");
	e2e_assert(a == NULL, "referral_unanswered is off, yet it raised %s",
	    e2e_json_str(a));
	/* The target got the expiry, and no reminder before it. */
	for (;;) {
		json_t *d = e2e_next_delivery(ml, E2E_WAIT_MS);
		const json_t *al = json_object_get(d, "alert");
		bool expired = jstr(al, "rule") != NULL &&
		    strcmp(jstr(al, "rule"), "referral_expired") == 0;

		e2e_assert(jstr(al, "rule") == NULL ||
		    strcmp(jstr(al, "rule"), RULE_UNANSWERED) != 0,
		    "referral_unanswered is off, yet the target got %s",
		    e2e_json_str(d));
		relais_ack(ml, (uint64_t)jint(d, "seq"));
		json_decref(d);
		if (expired)
			break;
	}
	au_cli_run(b, "cite-emploi", &cli, "alerts", "--all", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out, "referral_expired") != NULL &&
	    strstr(cli.out, RULE_UNANSWERED) == NULL, "relais alerts --all: "
	    "expected referral_expired and no referral_unanswered, got %d: %s%s",
	    cli.status, cli.out, cli.err);
	au_cli_free(&cli);
	relais_close(&ml);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

/*
 * A rule switched on in the config applies to the pathways already
 * stored, not only to those that get a new event: restarted with
 * referral_unanswered = 2, a broker must raise the alert for a referral
 * sent while the rule was off and unanswered for 3 days since.  p-13 gets
 * a new event after the restart and is the control: its deadline comes
 * after p-12's would, so once p-13's alert is listed, p-12's is decided.
 */
static void
test_rule_switched_on_applies_to_existing_pathways(void **state)
{
	struct e2e_broker *b = alerts_broker("referral_unanswered = off\n");
	relais_client *cs, *ops, *coord;
	json_t *a;
	bool raised;

	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	refer(cs, "p-12", "sanitas", "r-12", "ml-tours", rl_wall_ms());
	refer(cs, "p-13", "sanitas", "r-13", "ml-tours", rl_wall_ms() + 1);
	relais_close(&cs);
	e2e_stop(b);

	snprintf(b->rules, sizeof(b->rules), "referral_unanswered = 2\n");
	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	au_submit_ok(cs, e2e_ev_contact("p-13-contact", "p-13"));
	au_clock_advance(ops, 3 * AU_DAY_MS);

	json_decref(au_wait_listed(coord, RULE_UNANSWERED, "p-13"));
	a = au_find_alert(coord, "all", RULE_UNANSWERED, "p-12");
	raised = a != NULL;
	json_decref(a);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
	e2e_assert(raised, "referral_unanswered was switched on (2 days) and "
	    "r-12 has waited 3 days, yet p-12 has no alert, while p-13, whose "
	    "referral is as old but which got a new event after the restart, "
	    "has one: the deadlines of stored pathways are not re-armed when "
	    "the rules change");
}

/* ---- kill -9 during a burst ---------------------------------------- */

/*
 * Per participant: identified 50 days ago, a referral 11 days ago (so its
 * referral_unanswered alert opens in the middle of the burst), a contact
 * now (which resolves the no_contact alert the first event may open).
 */
static char *
burst_lines(size_t participants, int64_t now, size_t *len)
{
	size_t cap = participants * 3 * 256, used = 0;
	char *buf = malloc(cap);

	e2e_assert(buf != NULL, "out of memory");
	for (size_t i = 0; i < participants; i++) {
		used += (size_t)snprintf(buf + used, cap - used,
		    "{\"event_id\":\"b-%zu-id\",\"type\":\"participant.identified\","
		    "\"occurred_at\":%lld,\"participant\":\"pb-%zu\",\"qpv\":"
		    "\"sanitas\",\"source\":\"outreach\"}\n"
		    "{\"event_id\":\"b-%zu-ref\",\"type\":\"referral.sent\","
		    "\"occurred_at\":%lld,\"participant\":\"pb-%zu\",\"referral\":"
		    "\"rb-%zu\",\"to\":\"ml-tours\",\"purpose\":\"emploi\"}\n"
		    "{\"event_id\":\"b-%zu-con\",\"type\":\"contact.made\","
		    "\"occurred_at\":%lld,\"participant\":\"pb-%zu\",\"channel\":"
		    "\"phone\"}\n",
		    i, (long long)(now - 50 * AU_DAY_MS), i,
		    i, (long long)(now - 11 * AU_DAY_MS), i, i,
		    i, (long long)now, i);
	}
	*len = used;
	return buf;
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		e2e_assert(n > 0, "write to the sender: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* Occurrences of needle in text. */
static long
count_needle(const char *text, const char *needle)
{
	long n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/*
 * SIGKILL while `relais send` streams a burst (alerts opening and resolving
 * as it goes), restart: every acknowledged event is there, sending the
 * whole burst again records each event exactly once, and relaisd --verify
 * finds the state equal to the replay of the log.
 */
static void
test_kill9_during_burst_then_verify(void **state)
{
	struct e2e_broker *b = alerts_broker(NULL);
	size_t participants = (size_t)e2e_env_long("E2E_ALERTS_BURST", 1500);
	long long total = (long long)participants * 3, acked;
	struct au_cli sender;
	relais_client *ops;
	char fifo[400], file[400], out[4096];
	size_t len, off = 0, chunk;
	char *text;
	int fd, rc;

	e2e_start(b);
	text = burst_lines(participants, rl_wall_ms(), &len);
	chunk = len / 40;
	snprintf(file, sizeof(file), "%s/burst.jsonl", b->dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	e2e_assert(fd >= 0, "cannot create %s: %s", file, strerror(errno));
	write_all(fd, text, len);
	close(fd);

	/* Through a pipe, so the broker dies while events are still coming. */
	snprintf(fifo, sizeof(fifo), "%s/burst.fifo", b->dir);
	e2e_assert(mkfifo(fifo, 0600) == 0, "mkfifo %s: %s", fifo,
	    strerror(errno));
	au_cli_start(b, "cs-pasteur", fifo, &sender, "send", NULL);
	fd = open(fifo, O_WRONLY);
	e2e_assert(fd >= 0, "cannot open %s: %s", fifo, strerror(errno));
	ops = au_connect_quiet(b, "ops");
	while (off < len && e2e_health(ops, "events") < total / 3) {
		size_t n = len - off < chunk ? len - off : chunk;

		write_all(fd, text + off, n);
		off += n;
	}
	write_all(fd, text + off, len - off < chunk ? len - off : chunk);
	e2e_kill(b);
	close(fd);
	au_cli_kill(&sender);
	relais_close(&ops);
	free(text);
	/* It prints each result once the broker has acknowledged it. */
	acked = count_needle(sender.out, "\"status\":\"ok\"");
	au_cli_free(&sender);
	e2e_assert(acked > 0 && acked < total, "expected the kill to fall inside "
	    "the burst, with some of its %lld events acknowledged, got %lld",
	    total, acked);

	e2e_start(b);
	ops = au_connect_quiet(b, "ops");
	e2e_assert(e2e_health(ops, "events") >= acked, "after the restart the "
	    "log holds %lld events; %lld were acknowledged before the kill",
	    e2e_health(ops, "events"), acked);
	au_cli_start(b, "cs-pasteur", file, &sender, "send", NULL);
	au_cli_wait(&sender, 120000);
	e2e_assert(sender.status == 0, "sending the burst again: expected exit "
	    "status 0 (every event ok or duplicate), got %d; stderr: %s",
	    sender.status, sender.err);
	e2e_assert(count_needle(sender.out, "\"status\":\"duplicate\"") >= acked,
	    "sending the burst again: expected at least %lld duplicates, got %ld",
	    acked, count_needle(sender.out, "\"status\":\"duplicate\""));
	au_cli_free(&sender);
	e2e_assert_int(total, e2e_health(ops, "events"),
	    "events in the log after sending the burst twice");
	e2e_assert(e2e_health(ops, "open_alerts") > 0, "expected the burst's "
	    "referral_unanswered alerts to be open");

	rc = e2e_verify(b, out, sizeof(out));
	e2e_assert(rc == 0 && strstr(out, " 0 differences") != NULL,
	    "relaisd --verify: expected exit status 0 and \"0 differences\", got "
	    "%d:\n%s", rc, out);
	relais_close(&ops);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_referral_unanswered_opens_then_resolves,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_no_contact_after_45_days, e2e_teardown),
		cmocka_unit_test_teardown(test_catch_up_at_start, e2e_teardown),
		cmocka_unit_test_teardown(test_alerts_follow_the_territory,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_cli_ack_and_resolve, e2e_teardown),
		cmocka_unit_test_teardown(test_alert_event_names_its_participant,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_cli_participant, e2e_teardown),
		cmocka_unit_test_teardown(test_cli_clock, e2e_teardown),
		cmocka_unit_test_teardown(test_switched_off_rule_is_silent,
		    e2e_teardown),
		cmocka_unit_test_teardown(
		    test_rule_switched_on_applies_to_existing_pathways, e2e_teardown),
		cmocka_unit_test_teardown(test_kill9_during_burst_then_verify,
		    e2e_teardown),
	};

	/* A sender killed while we write to its pipe must fail a check, not
	 * end the program. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
