/*
 * No message from the broker is larger than the frame limit (PROTOCOL §2,
 * max_frame): a query whose answer would be is refused with too_large,
 * with its ref, instead of being sent, dropped or crashing the broker;
 * the connection goes on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "relais_proto.h"
#include "rltime.h"

#define EVENTS 1000             /* the most a participant's timeline shows */

/* An id of the longest length allowed: prefix, then x up to 64 bytes. */
static void
long_id(char *out, const char *prefix, int n)
{
	int len = snprintf(out, RL_MAX_ID_BYTES + 1, "%s%04d-", prefix, n);

	memset(out + len, 'x', (size_t)(RL_MAX_ID_BYTES - len));
	out[RL_MAX_ID_BYTES] = '\0';
}

/*
 * A participant whose file is larger than a frame: 1000 support.started,
 * each with ids and a programme of the longest allowed, some 500 KB of
 * timeline.
 */
static void
test_an_answer_over_the_frame_limit_is_refused_as_too_large(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = warn\n");
	json_t *events[EVENTS], *results[EVENTS], *args, *r;
	char programme[RL_MAX_TEXT_BYTES + 1], participant[RL_MAX_ID_BYTES + 1];
	relais_client *ml;

	*state = b;
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	ml = e2e_connect(b, "ml");
	memset(programme, 'a', RL_MAX_TEXT_BYTES);
	programme[RL_MAX_TEXT_BYTES] = '\0';
	long_id(participant, "p-big-", 0);
	for (int i = 0; i < EVENTS; i++) {
		char id[RL_MAX_ID_BYTES + 1];

		long_id(id, "support-", i);
		events[i] = json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", id,
		    "type", "support.started", "occurred_at",
		    (json_int_t)rl_wall_ms(), "participant", participant,
		    "programme", programme);
	}
	e2e_assert(relais_submit(ml, events, EVENTS, results, E2E_WAIT_MS * 3)
	    == 0, "submit: %s", relais_errmsg(ml));
	for (int i = 0; i < EVENTS; i++) {
		e2e_expect_ok(results[i]);
		json_decref(results[i]);
		json_decref(events[i]);
	}

	args = json_pack("{s:s}", "id", participant);
	r = relais_query(ml, "participant", args, E2E_WAIT_MS);
	json_decref(args);
	e2e_assert(r == NULL, "a file larger than a frame was sent: %.200s",
	    e2e_json_str(r));
	e2e_assert_int(RL_E_TOO_LARGE, relais_last_code(ml), "the refusal's code");
	e2e_assert(strstr(relais_errmsg(ml), "ask for less") != NULL,
	    "the refusal does not say what to do: %s", relais_errmsg(ml));

	/* The connection and the broker go on. */
	e2e_assert_int(EVENTS, e2e_health(ml, "events"), "events stored");
	relais_close(&ml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_an_answer_over_the_frame_limit_is_refused_as_too_large,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
