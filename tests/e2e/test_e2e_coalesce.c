/*
 * End to end, librelais's opt-in coalescing (relais_coalescer, relais.h):
 * the submits of many threads of one agent leave as one message, and each
 * thread gets the results of its own events, refusals included.
 *
 * The tests never depend on timing: a queue that must leave whole is given
 * a window far longer than any test and leaves because max_events events
 * are waiting.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

#define NTHREADS        8
#define LONG_WINDOW_US  1000000     /* never reached: the queue fills */

struct worker {
	relais_coalescer *co;
	pthread_t th;
	json_t *events[2];
	size_t n;
	json_t *results[2];
	int rc;
	char err[256];
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	w->rc = relais_coalesced_submit(w->co, w->events, w->n, w->results,
	    w->err, sizeof(w->err));
	return NULL;
}

static relais_client *
sender(struct e2e_broker *b)
{
	struct e2e_conn o = { .send_only = true };
	char err[512];
	relais_client *c = e2e_try_connect(b, "snd", &o, err, sizeof(err));

	e2e_assert(c != NULL, "snd: connect: %s", err);
	return c;
}

/* A broker with a sender and a receiver, and a coalescer on the sender. */
static relais_coalescer *
start(struct e2e_broker **bp, relais_client **cp,
    const struct relais_coalesce_options *o)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_coalescer *co;
	char err[256];

	e2e_agent_add(b, "snd", "mediator", true);
	e2e_agent_add(b, "rx", "mission_locale", true);
	e2e_start(b);
	*cp = sender(b);
	co = relais_coalescer_new(*cp, o, err, sizeof(err));
	e2e_assert(co != NULL, "relais_coalescer_new: %s", err);
	*bp = b;
	return co;
}

static void
run_workers(struct worker *ws, size_t n)
{
	for (size_t i = 0; i < n; i++)
		e2e_assert(pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) == 0,
		    "pthread_create");
	for (size_t i = 0; i < n; i++)
		pthread_join(ws[i].th, NULL);
}

static void
free_workers(struct worker *ws, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ws[i].n; k++) {
			json_decref(ws[i].events[k]);
			json_decref(ws[i].results[k]);
		}
}

/*
 * Eight threads submit one event each (one of them two): one message
 * carries all nine, each thread gets its own results in its order, and
 * the receiver gets every event once.
 */
static void
test_submits_of_many_threads_leave_as_one_message(void **state)
{
	struct relais_coalesce_options o = {
		.window_us = LONG_WINDOW_US, .max_events = NTHREADS + 1,
	};
	struct worker ws[NTHREADS];
	struct e2e_broker *b;
	relais_client *c, *rx;
	relais_coalescer *co = start(&b, &c, &o);
	uint64_t submits, events;
	int seen = 0;

	memset(ws, 0, sizeof(ws));
	for (size_t i = 0; i < NTHREADS; i++) {
		char eid[32], pid[32], rid[32];

		ws[i].co = co;
		ws[i].n = i == 3 ? 2 : 1;
		for (size_t k = 0; k < ws[i].n; k++) {
			snprintf(eid, sizeof(eid), "ev-co-%c%c", (char)('a' + i),
			    (char)('a' + k));
			snprintf(pid, sizeof(pid), "p-co-%c", (char)('a' + i));
			snprintf(rid, sizeof(rid), "r-co-%c%c", (char)('a' + i),
			    (char)('a' + k));
			ws[i].events[k] = e2e_ev_referral(eid, pid, rid, "rx");
		}
	}
	run_workers(ws, NTHREADS);
	for (size_t i = 0; i < NTHREADS; i++) {
		e2e_assert(ws[i].rc == 0, "thread %zu: %s", i, ws[i].err);
		for (size_t k = 0; k < ws[i].n; k++) {
			e2e_expect_ok(ws[i].results[k]);
			e2e_assert_str(jstr(ws[i].events[k], "event_id"),
			    jstr(ws[i].results[k], "event_id"),
			    "the event_id of a thread's own result");
		}
	}
	relais_coalescer_stats(co, &submits, &events);
	e2e_assert_int(1, submits, "submit messages for 8 threads");
	e2e_assert_int(NTHREADS + 1, events, "events they carried");
	/* All nine are in the store. */
	e2e_assert_int(NTHREADS + 1, e2e_health(c, "events"), "events recorded");

	rx = e2e_connect(b, "rx");
	while (seen < NTHREADS + 1) {
		json_t *d = e2e_next_delivery(rx, E2E_WAIT_MS);

		seen++;
		json_decref(d);
	}
	relais_close(&rx);
	relais_coalescer_free(&co);
	e2e_assert(co == NULL, "relais_coalescer_free sets the pointer to NULL");
	relais_close(&c);
	free_workers(ws, NTHREADS);
}

/*
 * A refused event in a coalesced message is refused for its own caller
 * only; the others' events are accepted.
 */
static void
test_a_refusal_reaches_only_its_caller(void **state)
{
	struct relais_coalesce_options o = {
		.window_us = LONG_WINDOW_US, .max_events = 3,
	};
	struct worker ws[3];
	struct e2e_broker *b;
	relais_client *c;
	relais_coalescer *co = start(&b, &c, &o);
	uint64_t submits, events;

	memset(ws, 0, sizeof(ws));
	for (size_t i = 0; i < 3; i++) {
		ws[i].co = co;
		ws[i].n = 1;
	}
	ws[0].events[0] = e2e_ev_referral("ev-ok-a", "p-ok-a", "r-ok-a", "rx");
	/* Sent to an agent the broker does not know. */
	ws[1].events[0] = e2e_ev_referral("ev-bad-b", "p-ok-b", "r-ok-b",
	    "nobody-here");
	ws[2].events[0] = e2e_ev_referral("ev-ok-c", "p-ok-c", "r-ok-c", "rx");
	run_workers(ws, 3);
	for (size_t i = 0; i < 3; i++)
		e2e_assert(ws[i].rc == 0, "thread %zu: %s", i, ws[i].err);
	e2e_expect_ok(ws[0].results[0]);
	e2e_expect_ok(ws[2].results[0]);
	e2e_assert_str("error", jstr(ws[1].results[0], "status"),
	    "status of the refused event");
	e2e_assert_str("ev-bad-b", jstr(ws[1].results[0], "event_id"),
	    "event_id of the refused event's result");
	relais_coalescer_stats(co, &submits, &events);
	e2e_assert_int(1, submits, "submit messages");
	relais_coalescer_free(&co);
	relais_close(&c);
	free_workers(ws, 3);
}

/*
 * A lone submit does not wait for company beyond its window; a second one
 * then forms a new message.  Bad arguments are refused with a sentence.
 */
static void
test_a_lone_submit_leaves_after_its_window(void **state)
{
	struct relais_coalesce_options o = { .window_us = 2000 };
	struct relais_coalesce_options bad = { .window_us = -1 };
	struct e2e_broker *b;
	relais_client *c;
	relais_coalescer *co = start(&b, &c, &o);
	json_t *ev[1], *res[1];
	uint64_t submits, events;
	char err[256];

	e2e_assert(relais_coalescer_new(NULL, NULL, err, sizeof(err)) == NULL,
	    "a coalescer without a client");
	e2e_assert(strstr(err, "relais_connect") != NULL, "message: %s", err);
	e2e_assert(relais_coalescer_new(c, &bad, err, sizeof(err)) == NULL,
	    "a negative window");
	e2e_assert(strstr(err, "window_us must be 0..1000000") != NULL,
	    "message: %s", err);
	for (int i = 0; i < 2; i++) {
		char eid[32];

		snprintf(eid, sizeof(eid), "ev-lone-%c", (char)('a' + i));
		ev[0] = e2e_ev_referral(eid, "p-lone", eid, "rx");
		e2e_assert(relais_coalesced_submit(co, ev, 1, res, err,
		    sizeof(err)) == 0, "submit: %s", err);
		e2e_expect_ok(res[0]);
		json_decref(res[0]);
		json_decref(ev[0]);
	}
	e2e_assert(relais_coalesced_submit(co, ev, 0, res, err, sizeof(err)) == 0,
	    "an empty submit");
	relais_coalescer_stats(co, &submits, &events);
	e2e_assert_int(2, submits, "submit messages for two submits in turn");
	e2e_assert_int(2, events, "events they carried");
	relais_coalescer_free(&co);
	relais_coalescer_free(&co);     /* safe on NULL */
	relais_close(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
		    test_submits_of_many_threads_leave_as_one_message, e2e_teardown),
		cmocka_unit_test_teardown(test_a_refusal_reaches_only_its_caller,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_a_lone_submit_leaves_after_its_window,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
