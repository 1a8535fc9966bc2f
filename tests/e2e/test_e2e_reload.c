/*
 * A reload says what it did: log_level applies at once, an option that
 * needs a restart is named in the log and keeps its running value.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void
submit_contact(relais_client *c, const char *id)
{
	json_t *r = e2e_submit1(c, e2e_ev_contact(id, "p-1"));

	e2e_expect_ok(r);
	json_decref(r);
}

/* Every line the broker had to write so far is in the log. */
static void
log_settled(struct e2e_broker *b, const char *marker)
{
	struct e2e_raw *r = e2e_raw_open(b, "med", marker);

	e2e_raw_send(r, "\xc1", 1);     /* refused: a warning, written in order */
	json_decref(e2e_raw_expect(r, "error", E2E_WAIT_MS));
	e2e_raw_close(&r);
	e2e_log_wait(b, "\"msg\":\"message.refused\"");
}

static void
test_reload_applies_log_level_and_names_what_waits(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = info\n");
	relais_client *c;
	int accepted;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_start(b);
	c = e2e_connect(b, "med");
	submit_contact(c, "before");
	log_settled(b, "one");
	accepted = e2e_log_count(b, "\"msg\":\"event.accepted\"", NULL);
	e2e_assert_int(1, accepted, "event.accepted lines at info");

	snprintf(b->extra, sizeof(b->extra), "log_level = warn\nmanual_clock = yes\n");
	e2e_reload(b);
	e2e_log_wait(b, "\"msg\":\"config.reloaded\"", "\"applied\":\"log_level\"");
	e2e_log_wait(b, "\"msg\":\"config.restart_needed\"",
	    "\"keys\":\"manual_clock\"");

	/* At warn, accepted events are no longer logged. */
	submit_contact(c, "after");
	log_settled(b, "two");
	e2e_assert_int(accepted, e2e_log_count(b, "\"msg\":\"event.accepted\"", NULL),
	    "event.accepted lines after the reload to warn");
	relais_close(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_reload_applies_log_level_and_names_what_waits,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
