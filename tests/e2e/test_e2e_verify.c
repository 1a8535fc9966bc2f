/*
 * relaisd --verify replays each event with the rights its sender had when
 * it sent it (the kind recorded in the log), not with today's registry:
 * the observed false differences after any registry change.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void
test_verify_is_clean_after_a_senders_kind_changes(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *med, *coord;
	char out[4096];
	json_t *r;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	r = e2e_submit1(med, e2e_ev_contact("c-1", "p-1"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&med);
	/* Only a referent or a coordinator may close a pathway. */
	coord = e2e_connect(b, "coord");
	r = e2e_submit1(coord, json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id",
	    "x-1", "type", "participant.exited", "occurred_at",
	    (json_int_t)rl_wall_ms(), "participant", "p-1", "reason", "moved"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&coord);

	/* The coordinator's agent becomes an association's. */
	snprintf(e2e_agent(b, "coord")->kind, sizeof(e2e_agent(b, "coord")->kind),
	    "association");
	e2e_reload(b);
	if (e2e_verify(b, out, sizeof(out)) != 0 || strstr(out, " 0 differences") == NULL)
		fail_msg("expected a clean verify after the registry changed, got:\n%s",
		    out);

	/* It leaves the registry altogether: the same. */
	e2e_agent(b, "coord")->registered = false;
	e2e_reload(b);
	if (e2e_verify(b, out, sizeof(out)) != 0 || strstr(out, " 0 differences") == NULL)
		fail_msg("expected a clean verify after the sender left, got:\n%s", out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_verify_is_clean_after_a_senders_kind_changes,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
