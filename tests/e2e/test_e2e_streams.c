/*
 * Realistic streams through the real broker, and one event's trouble
 * kept to itself.
 *
 * tests/fixtures/streams/ holds what eight partner agents send over
 * several months (README there).  Every event is valid: sent one file
 * after the other to one broker, every one must be accepted, while the
 * sweep fires alerts about the months-old events between the passes.
 *
 * An event whose writes fail inside a pass (here: its participant's
 * record is damaged on disk) is refused alone; the other events of the
 * same submit, hence of the same pass, are accepted and recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lmdb.h>

#include "alerts_util.h"
#include "harness.h"

#define BATCH_MAX 100           /* events of one agent per submit */

static const char *
fixtures_dir(void)
{
	const char *d = getenv("RELAIS_FIXTURES");

	return d != NULL ? d : "tests/fixtures/streams";
}

/* The agents of the fixtures' README. */
static void
add_stream_agents(struct e2e_broker *b)
{
	au_agent_add_qpv(b, "med-sanitas", "mediator", "sanitas,rochepinard");
	au_agent_add_qpv(b, "cs-europe", "social_centre", "europe-chateaubriand");
	e2e_agent_add(b, "ft-nord", "france_travail", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "plie-tours", "plie", true);
	e2e_agent_add(b, "iae-jardins", "iae", true);
	e2e_agent_add(b, "asso-x", "association", true);
	e2e_agent_add(b, "coord-all", "coordinator", true);
}

struct feeder {
	struct e2e_broker *b;
	relais_client *conn[E2E_MAX_AGENTS];
	long sent, accepted;
};

static relais_client *
feeder_conn(struct feeder *f, const char *agent)
{
	for (size_t i = 0; i < f->b->nagents; i++)
		if (strcmp(f->b->agents[i].id, agent) == 0) {
			if (f->conn[i] == NULL)
				f->conn[i] = au_connect_quiet(f->b, agent);
			return f->conn[i];
		}
	e2e_fail(__FILE__, __LINE__, "agent", "the stream names agent %s, "
	    "which is not in the fixtures' registry", agent);
}

/* Submit events[0..n) as agent; every one must be accepted. */
static void
feed_batch(struct feeder *f, const char *agent, json_t **events, size_t n,
    const char *file)
{
	json_t *results[BATCH_MAX];
	relais_client *c = feeder_conn(f, agent);

	e2e_assert(relais_submit(c, events, n, results, 60000) == 0,
	    "%s: the broker did not answer a submit of %zu events: %s", file, n,
	    relais_errmsg(c));
	for (size_t i = 0; i < n; i++) {
		const char *status = jstr(results[i], "status");

		e2e_assert(status != NULL && strcmp(status, "error") != 0,
		    "%s: event %s of %s was refused: %s", file,
		    jstr(events[i], "event_id"), agent, e2e_json_str(results[i]));
		f->accepted++;
		json_decref(results[i]);
		json_decref(events[i]);
	}
	f->sent += (long)n;
}

/* Each run of consecutive lines of one agent goes in submits of BATCH_MAX. */
static void
feed_file(struct feeder *f, const char *name)
{
	char path[512], *line = NULL;
	char agent[64] = "";
	json_t *batch[BATCH_MAX];
	size_t n = 0, cap = 0;
	FILE *in;

	snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
	in = fopen(path, "r");
	e2e_assert(in != NULL, "cannot read %s (set RELAIS_FIXTURES to the "
	    "streams folder)", path);
	while (getline(&line, &cap, in) > 0) {
		json_error_t jerr;
		json_t *o = json_loads(line, 0, &jerr);
		const char *who = o != NULL ? jstr(o, "agent") : NULL;
		json_t *ev = o != NULL ? json_object_get(o, "event") : NULL;

		e2e_assert(who != NULL && json_is_object(ev), "%s: a line is not "
		    "{\"agent\":..., \"event\":{...}}: %s", path, line);
		if (n > 0 && (n == BATCH_MAX || strcmp(who, agent) != 0)) {
			feed_batch(f, agent, batch, n, name);
			n = 0;
		}
		snprintf(agent, sizeof(agent), "%s", who);
		batch[n++] = json_incref(ev);
		json_decref(o);
	}
	if (n > 0)
		feed_batch(f, agent, batch, n, name);
	free(line);
	fclose(in);
}

static void
test_both_streams_one_after_the_other_are_accepted(void **state)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");
	struct feeder f = { .b = b };
	char out[4096];

	add_stream_agents(b);
	e2e_start(b);
	feed_file(&f, "first.jsonl");
	e2e_assert_int(1060, f.accepted, "events of first.jsonl accepted");
	feed_file(&f, "second.jsonl");
	e2e_assert_int(1060 + 8581, f.accepted, "events of both files accepted");
	e2e_assert_int(0, e2e_log_count(b, "\"storage", NULL),
	    "log lines about storage failures");
	for (size_t i = 0; i < E2E_MAX_AGENTS; i++)
		relais_close(&f.conn[i]);
	e2e_stop(b);
	e2e_assert_int(0, e2e_verify(b, out, sizeof(out)),
	    "relaisd --verify after both streams");
}

/* Replace a participant's stored record with bytes that are not one. */
static void
damage_record(struct e2e_broker *b, const char *participant)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { strlen(participant), (void *)participant };
	MDB_val v = { 3, "bad" };

	e2e_assert(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 32) == 0 &&
	    mdb_env_open(env, b->data, 0, 0600) == 0, "cannot open %s", b->data);
	e2e_assert(mdb_txn_begin(env, NULL, 0, &txn) == 0 &&
	    mdb_dbi_open(txn, "participants", 0, &dbi) == 0 &&
	    mdb_get(txn, dbi, &k, &v) == 0, "no record for %s", participant);
	v.mv_size = 3;
	v.mv_data = "bad";
	e2e_assert(mdb_put(txn, dbi, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0,
	    "cannot damage the record of %s", participant);
	mdb_env_close(env);
}

static void
test_a_failing_event_refuses_itself_alone(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *c;
	json_t *events[3], *results[3];

	b->keep_port = true;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	c = au_connect_quiet(b, "med");
	au_submit_ok(c, e2e_ev_contact("first-bad", "p-bad"));
	relais_close(&c);
	e2e_stop(b);
	damage_record(b, "p-bad");
	e2e_start(b);

	/* One submit is read whole in one pass: the three share its transaction. */
	c = au_connect_quiet(b, "med");
	events[0] = e2e_ev_contact("before", "p-one");
	events[1] = e2e_ev_contact("broken", "p-bad");
	events[2] = e2e_ev_contact("after", "p-two");
	e2e_assert(relais_submit(c, events, 3, results, 20000) == 0,
	    "submit: %s", relais_errmsg(c));
	e2e_expect_ok(results[0]);
	e2e_expect_error(results[1], 301, "");
	e2e_expect_ok(results[2]);
	e2e_assert(strstr(jstr(results[1], "message"), "MDB_CORRUPTED") != NULL,
	    "the refusal names the cause: %s", e2e_json_str(results[1]));
	e2e_assert_int(1, e2e_log_count(b, "\"event.failed\"", "\"agent\":\"med\"",
	    "\"index\":1", "MDB_CORRUPTED", NULL), "event.failed lines naming the cause");
	e2e_assert_int(0, e2e_log_count(b, "\"store.write_failed\"", NULL),
	    "store.write_failed lines (the pass itself did not fail)");
	/* The replayed pass logs what it did once, not once per attempt. */
	e2e_log_wait(b, "\"event.accepted\"", "\"seq\":3}");
	e2e_assert_int(1, e2e_log_count(b, "\"event.accepted\"", "\"seq\":2}", NULL),
	    "event.accepted lines for seq 2");
	e2e_assert_int(1, e2e_log_count(b, "\"event.accepted\"", "\"seq\":3}", NULL),
	    "event.accepted lines for seq 3");
	for (int i = 0; i < 3; i++) {
		json_decref(results[i]);
		json_decref(events[i]);
	}
	e2e_assert_int(3, e2e_health(c, "events"), "events in the log");
	e2e_assert_int(2, e2e_health(c, "accepted"), "events counted as accepted");
	e2e_assert_int(1, e2e_health(c, "refused"), "events counted as refused");
	relais_close(&c);

	/* Recorded, not just acknowledged: the files survive a restart. */
	e2e_stop(b);
	e2e_start(b);
	c = au_connect_quiet(b, "ops");
	e2e_assert_int(3, e2e_health(c, "events"), "events in the log after a restart");
	relais_close(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_both_streams_one_after_the_other_are_accepted, e2e_teardown),
		cmocka_unit_test_teardown(test_a_failing_event_refuses_itself_alone, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
