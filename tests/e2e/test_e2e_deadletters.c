/*
 * Dead letters end to end: an agent that never acknowledges gets an item
 * max_attempts times, then it is dead-lettered (logged at error, counted in
 * health); `relais deadletters` shows operators its metadata only, requeues
 * it (the agent gets it again) and drops it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts_util.h"
#include "harness.h"

/* `relais deadletters ARGS` as id: its one JSON line. */
static json_t *
deadletters(struct e2e_broker *b, const char *id, int status, const char *a1,
    const char *a2, const char *a3)
{
	struct au_cli cli;
	json_t *lines, *data = NULL;

	au_cli_run(b, id, &cli, "deadletters", a1, a2, a3, NULL);
	e2e_assert(cli.status == status, "relais deadletters as %s: exit %d, "
	    "expected %d, stderr: %s", id, cli.status, status, cli.err);
	if (status == 0) {
		lines = au_json_lines(cli.out);
		e2e_assert(json_array_size(lines) == 1, "expected one JSON line, "
		    "got: %s", cli.out);
		data = json_incref(json_array_get(lines, 0));
		json_decref(lines);
	}
	au_cli_free(&cli);
	return data;
}

/* Deliveries to the raw agent until one with this attempt arrives. */
static json_t *
item_with_attempt(struct e2e_raw *ml, long long attempt)
{
	for (;;) {
		json_t *d = e2e_raw_expect(ml, "deliver", E2E_WAIT_MS);
		json_t *it = json_array_get(json_object_get(d, "items"), 0);

		if (jint(it, "attempt") == attempt) {
			json_incref(it);
			json_decref(d);
			return it;
		}
		json_decref(d);
	}
}

static void
test_dead_letters_for_operators(void **state)
{
	struct e2e_broker *b = e2e_broker_new("max_attempts = 3\nredeliver_ms = 50\n"
	    "redeliver_max_ms = 50\n");
	relais_client *med, *ops;
	struct e2e_raw *ml;
	json_t *r, *d, *it;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	ml = e2e_raw_open(b, "ml", NULL);
	json_decref(e2e_raw_hello(ml, 10));
	med = e2e_connect(b, "med");
	r = e2e_submit1(med, e2e_ev_referral("s-1", "p-dl-1", "r-dl-1", "ml"));
	e2e_expect_ok(r);
	json_decref(r);

	/* ml takes the item three times and never acknowledges it. */
	json_decref(item_with_attempt(ml, 3));
	e2e_log_wait(b, "\"delivery.dead_lettered\"", "\"agent\":\"ml\"",
	    "\"attempts\":3");
	ops = e2e_connect(b, "ops");
	assert_int_equal(e2e_health(ops, "dead_letters"), 1);
	relais_close(&ops);

	d = deadletters(b, "ops", 0, NULL, NULL, NULL);
	assert_int_equal(jint(d, "total"), 1);
	it = json_array_get(json_object_get(d, "items"), 0);
	assert_string_equal(jstr(it, "agent"), "ml");
	assert_string_equal(jstr(it, "kind"), "event");
	assert_string_equal(jstr(it, "type"), "referral.sent");
	assert_int_equal(jint(it, "attempts"), 3);
	assert_true(jint(it, "age_ms") >= 0);
	/* Metadata only: no participant, no referral. */
	char *text = json_dumps(d, JSON_COMPACT);
	assert_null(strstr(text, "p-dl-1"));
	assert_null(strstr(text, "r-dl-1"));
	free(text);
	json_decref(d);

	/* Partners do not see them. */
	assert_null(deadletters(b, "med", 1, NULL, NULL, NULL));

	/* Requeued, it goes to ml again as a first attempt. */
	d = deadletters(b, "ops", 0, "requeue", "ml", "1");
	assert_int_equal(jint(d, "requeued"), 1);
	json_decref(d);
	it = item_with_attempt(ml, 1);
	assert_int_equal(jint(it, "seq"), 2);
	assert_string_equal(jstr(json_object_get(it, "event"), "participant"), "p-dl-1");
	json_decref(it);

	/* Not acknowledged again: dead again, then dropped. */
	e2e_log_wait(b, "\"delivery.dead_lettered\"", "\"seq\":2");
	d = deadletters(b, "ops", 0, "drop", "ml", NULL);
	assert_int_equal(jint(d, "dropped"), 1);
	json_decref(d);
	d = deadletters(b, "ops", 0, NULL, NULL, NULL);
	assert_int_equal(jint(d, "total"), 0);
	json_decref(d);
	e2e_log_wait(b, "\"deadletters.dropped\"", "\"by\":\"ops\"");
	relais_close(&med);
	e2e_raw_close(&ml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_dead_letters_for_operators, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
