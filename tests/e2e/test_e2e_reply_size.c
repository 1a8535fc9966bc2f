/*
 * No message from the broker is larger than the frame limit (PROTOCOL §2,
 * max_frame).  A participant's file of any size is read in pages that fit
 * (`more`, `after`), and librelais puts the pages together; an inbox list
 * too long for its share of a frame is cut (`truncated`); a page of alerts
 * asked for with a limit too large to fit is refused with too_large, with
 * its ref, and the connection goes on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "harness.h"
#include "relais_proto.h"
#include "rltime.h"

#define EVENTS 1000             /* one page of a timeline at most */
#define REFERRALS 1000          /* the most an inbox list shows */

/* An id of the longest length allowed: prefix, then x up to max bytes. */
static void
long_id(char *out, size_t max, const char *prefix, int n)
{
	int len = snprintf(out, max + 1, "%s%04d-", prefix, n);

	memset(out + len, 'x', max - (size_t)len);
	out[max] = '\0';
}

static void
submit_all(relais_client *c, json_t **events, int n)
{
	json_t **results = calloc((size_t)n, sizeof(*results));

	e2e_assert(results != NULL, "out of memory");
	e2e_assert(relais_submit(c, events, (size_t)n, results, E2E_WAIT_MS * 3)
	    == 0, "submit: %s", relais_errmsg(c));
	for (int i = 0; i < n; i++) {
		e2e_expect_ok(results[i]);
		json_decref(results[i]);
		json_decref(events[i]);
	}
	free(results);
}

/* One page of the participant's timeline, as the broker sends it. */
static json_t *
page(relais_client *c, const char *participant, json_int_t after,
    json_int_t limit)
{
	json_t *args = json_pack("{s:s, s:I, s:I}", "id", participant,
	    "after", after, "limit", limit);
	json_t *r = relais_query(c, "participant", args, E2E_WAIT_MS);

	json_decref(args);
	e2e_assert(r != NULL, "participant page after %lld: %s",
	    (long long)after, relais_errmsg(c));
	return r;
}

static json_int_t
last_seq(const json_t *timeline)
{
	return jint(json_array_get(timeline, json_array_size(timeline) - 1),
	    "log_seq");
}

/*
 * A participant whose file is larger than a frame: 1000 support.started,
 * each with ids and a programme of the longest allowed, some 500 KB of
 * timeline.
 */
static void
test_a_file_larger_than_a_frame_is_read_in_pages(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = warn\n");
	json_t *events[EVENTS], *args, *r, *p1, *p2;
	char programme[RL_MAX_TEXT_BYTES + 1], participant[RL_MAX_ID_BYTES + 1];
	json_int_t prev = 0;
	relais_client *ml;
	size_t n1, i;
	json_t *x;

	*state = b;
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	ml = e2e_connect(b, "ml");
	memset(programme, 'a', RL_MAX_TEXT_BYTES);
	programme[RL_MAX_TEXT_BYTES] = '\0';
	long_id(participant, RL_MAX_ID_BYTES, "p-big-", 0);
	for (int k = 0; k < EVENTS; k++) {
		char id[RL_MAX_ID_BYTES + 1];

		long_id(id, RL_MAX_ID_BYTES, "support-", k);
		events[k] = json_pack("{s:s, s:s, s:I, s:s, s:s}", "event_id", id,
		    "type", "support.started", "occurred_at",
		    (json_int_t)rl_wall_ms(), "participant", participant,
		    "programme", programme);
	}
	submit_all(ml, events, EVENTS);

	/* The broker's first page stops where the frame is full. */
	p1 = page(ml, participant, 0, EVENTS);
	n1 = json_array_size(json_object_get(p1, "timeline"));
	e2e_assert(n1 > 0 && n1 < EVENTS, "a first page of %zu records", n1);
	e2e_assert(json_is_true(json_object_get(p1, "more")),
	    "a cut page does not say there is more: %.200s", e2e_json_str(p1));
	/* The next page starts right after the last record of the first. */
	p2 = page(ml, participant, last_seq(json_object_get(p1, "timeline")),
	    EVENTS);
	e2e_assert(jint(json_array_get(json_object_get(p2, "timeline"), 0),
	    "log_seq") > last_seq(json_object_get(p1, "timeline")),
	    "the second page does not follow the first");
	json_decref(p1);
	json_decref(p2);

	/* A limit is a page's length; after the last record, nothing more. */
	r = page(ml, participant, 0, 10);
	e2e_assert_int(10, (long long)json_array_size(json_object_get(r,
	    "timeline")), "records in a page of 10");
	e2e_assert(json_is_true(json_object_get(r, "more")), "no more after 10");
	json_decref(r);

	/* librelais asks for every page: the whole file, in order, once. */
	args = json_pack("{s:s}", "id", participant);
	r = relais_query(ml, "participant", args, E2E_WAIT_MS);
	json_decref(args);
	e2e_assert(r != NULL, "the whole file: %s", relais_errmsg(ml));
	e2e_assert_int(EVENTS, (long long)json_array_size(json_object_get(r,
	    "timeline")), "records in the whole file");
	e2e_assert(json_is_false(json_object_get(r, "more")), "more after all");
	json_array_foreach(json_object_get(r, "timeline"), i, x) {
		char id[RL_MAX_ID_BYTES + 1];

		long_id(id, RL_MAX_ID_BYTES, "support-", (int)i);
		e2e_assert(jint(x, "log_seq") > prev, "record %zu out of order", i);
		e2e_assert(strcmp(jstr(x, "event_id"), id) == 0,
		    "record %zu is %s", i, jstr(x, "event_id"));
		prev = jint(x, "log_seq");
	}
	json_decref(r);
	r = page(ml, participant, prev, EVENTS);
	e2e_assert_int(0, (long long)json_array_size(json_object_get(r,
	    "timeline")), "records after the last");
	e2e_assert(json_is_false(json_object_get(r, "more")), "more after the last");
	json_decref(r);

	/* after and limit are checked like every argument. */
	args = json_pack("{s:s, s:s}", "id", participant, "after", "x");
	e2e_assert(relais_query(ml, "participant", args, E2E_WAIT_MS) == NULL,
	    "after = \"x\" was taken");
	json_decref(args);
	e2e_assert_int(RL_E_BAD_FIELD, relais_last_code(ml), "after = \"x\"");
	e2e_assert(strstr(relais_errmsg(ml), "after") != NULL, "%s",
	    relais_errmsg(ml));
	args = json_pack("{s:s, s:i}", "id", participant, "limit", 0);
	e2e_assert(relais_query(ml, "participant", args, E2E_WAIT_MS) == NULL,
	    "limit = 0 was taken");
	json_decref(args);
	e2e_assert_int(RL_E_BAD_FIELD, relais_last_code(ml), "limit = 0");
	e2e_assert(strstr(relais_errmsg(ml), "limit") != NULL, "%s",
	    relais_errmsg(ml));
	relais_close(&ml);
}

/* The inbox's list holds some of REFERRALS items, and says it was cut. */
static void
expect_inbox_cut(relais_client *c, const char *list)
{
	json_t *r = relais_query(c, "inbox", NULL, E2E_WAIT_MS);
	size_t listed;

	e2e_assert(r != NULL, "inbox: %s", relais_errmsg(c));
	listed = json_array_size(json_object_get(r, list));
	e2e_assert(listed > 0 && listed < REFERRALS, "%zu of %d in the inbox's %s",
	    listed, REFERRALS, list);
	e2e_assert(json_is_true(json_object_get(r, "truncated")),
	    "the cut list %s is not said truncated", list);
	json_decref(r);
}

/* Every alert the coordinator sees, read in pages of 250 that fit. */
static json_t *
all_alerts(relais_client *coord)
{
	json_t *all = json_array();
	json_t *args = json_pack("{s:s, s:i}", "status", "all", "limit", 250);

	for (;;) {
		json_t *pg = relais_query(coord, "alerts", args, E2E_WAIT_MS);
		size_t n;

		e2e_assert(pg != NULL, "alerts page: %s", relais_errmsg(coord));
		n = json_array_size(pg);
		json_array_extend(all, pg);
		if (n < 250) {
			json_decref(pg);
			break;
		}
		json_object_set_new(args, "after", json_string(jstr(
		    json_array_get(pg, n - 1), "id")));
		json_decref(pg);
	}
	json_decref(args);
	return all;
}

/*
 * 1000 referrals with ids of the longest length, from one agent to
 * another: the target's inbox list is cut to fit, and says so; after ten
 * days each is an alert, and once acknowledged with long notes a page of
 * 1000 of them does not fit a frame.
 */
static void
test_long_lists_fit_a_frame_or_are_refused(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = warn\n"
	    "manual_clock = yes\n");
	json_t *events[REFERRALS], *args, *r;
	char from[RL_MAX_AGENT_ID_BYTES + 1], to[RL_MAX_AGENT_ID_BYTES + 1];
	relais_client *sender, *target, *coord, *op;
	char note[RL_MAX_TEXT_BYTES + 1];
	json_t *alerts;

	*state = b;
	long_id(from, RL_MAX_AGENT_ID_BYTES, "ml-", 0);
	long_id(to, RL_MAX_AGENT_ID_BYTES, "ft-", 0);
	e2e_agent_add(b, from, "mission_locale", true);
	e2e_agent_add(b, to, "france_travail", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	sender = e2e_connect(b, from);
	target = au_connect_quiet(b, to);
	coord = au_connect_quiet(b, "coord");
	op = e2e_connect(b, "ops");
	for (int k = 0; k < REFERRALS; k++) {
		char id[RL_MAX_ID_BYTES + 1], p[RL_MAX_ID_BYTES + 1],
		    ref[RL_MAX_ID_BYTES + 1];

		long_id(id, RL_MAX_ID_BYTES, "ev-", k);
		long_id(p, RL_MAX_ID_BYTES, "p-", k);
		long_id(ref, RL_MAX_ID_BYTES, "r-", k);
		events[k] = e2e_ev_referral(id, p, ref, to);
	}
	submit_all(sender, events, REFERRALS);

	expect_inbox_cut(target, "to_answer");

	/*
	 * Ten days on, each referral is a referral_unanswered alert; the
	 * coordinator acknowledges each with a note of the longest length.
	 */
	au_clock_advance(op, 11 * AU_DAY_MS);
	for (int tries = 0;; tries++) {
		alerts = all_alerts(coord);
		if (json_array_size(alerts) == REFERRALS)
			break;
		e2e_assert(tries < E2E_WAIT_MS / 100, "%zu alerts of %d opened",
		    json_array_size(alerts), REFERRALS);
		json_decref(alerts);
		rl_sleep_ms(100);
	}
	memset(note, 'n', RL_MAX_TEXT_BYTES);
	note[RL_MAX_TEXT_BYTES] = '\0';
	for (size_t k = 0; k < REFERRALS; k++) {
		json_t *a = json_array_get(alerts, k);
		char id[RL_MAX_ID_BYTES + 1];

		long_id(id, RL_MAX_ID_BYTES, "ack-", (int)k);
		events[k] = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}",
		    "event_id", id, "type", "alert.acknowledged",
		    "occurred_at", (json_int_t)au_broker_now(op),
		    "participant", jstr(a, "participant"), "alert", jstr(a, "id"),
		    "note", note);
	}
	json_decref(alerts);
	submit_all(coord, events, REFERRALS);
	expect_inbox_cut(target, "alerts");

	args = json_pack("{s:s, s:i}", "status", "all", "limit", 1000);
	r = relais_query(coord, "alerts", args, E2E_WAIT_MS);
	json_decref(args);
	e2e_assert(r == NULL, "a page larger than a frame was sent: %.200s",
	    e2e_json_str(r));
	e2e_assert_int(RL_E_TOO_LARGE, relais_last_code(coord),
	    "the refusal's code");
	e2e_assert(strstr(relais_errmsg(coord), "ask for less") != NULL,
	    "the refusal does not say what to do: %s", relais_errmsg(coord));

	/* The connection and the broker go on. */
	e2e_assert_int(2 * REFERRALS, e2e_health(coord, "events"),
	    "events stored");
	relais_close(&sender);
	relais_close(&target);
	relais_close(&coord);
	relais_close(&op);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_a_file_larger_than_a_frame_is_read_in_pages,
		    e2e_teardown),
		cmocka_unit_test_teardown(
		    test_long_lists_fit_a_frame_or_are_refused, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
