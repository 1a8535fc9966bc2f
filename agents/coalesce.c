/*
 * relais_coalescer: submits of many threads, sent as one message
 * (relais.h says what it promises).
 *
 * The threads queue their events; the first thread to find the queue ready
 * (max_events waiting, or window_us gone since the oldest arrived) and no
 * submit under way becomes the sender: it takes the whole queue, submits
 * it with relais_submit() on the one client, and hands each waiting thread
 * its own results.  Threads arriving meanwhile form the next queue, so
 * while one submit waits for its synced commit, the next one gathers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relais.h"
#include "relais_proto.h"
#include "rltime.h"

#define DEFAULT_WINDOW_US   1000
#define DEFAULT_MAX_EVENTS  100

struct waiter {
	json_t **events;
	json_t **results;
	size_t n;
	int rc;
	bool done;
	char err[256];
	struct waiter *next;
};

struct relais_coalescer {
	relais_client *c;
	int window_us;
	size_t max_events;
	int max_wait_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;          /* queue changed, or a submit finished */
	struct waiter *head, *tail;
	size_t queued;              /* events in the queue */
	int64_t first_us;           /* when the oldest queued submit arrived */
	bool sending;               /* a thread is submitting for the others */
	uint64_t submits, events;
};

relais_coalescer *
relais_coalescer_new(relais_client *c, const struct relais_coalesce_options *o,
    char *errbuf, size_t errlen)
{
	relais_coalescer *co;
	pthread_condattr_t ca;

	if (c == NULL) {
		snprintf(errbuf, errlen, "relais_coalescer_new: no client; connect "
		    "first with relais_connect()");
		return NULL;
	}
	if (o != NULL && (o->window_us < 0 || o->window_us > 1000000 ||
	    o->max_events > RL_MAX_BATCH || o->max_wait_ms < 0)) {
		snprintf(errbuf, errlen, "relais_coalescer_new: window_us must be "
		    "0..1000000, max_events 0..%d, max_wait_ms 0 or more",
		    RL_MAX_BATCH);
		return NULL;
	}
	if ((co = calloc(1, sizeof(*co))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	co->c = c;
	co->window_us = o != NULL && o->window_us > 0 ? o->window_us :
	    DEFAULT_WINDOW_US;
	co->max_events = o != NULL && o->max_events > 0 ? o->max_events :
	    DEFAULT_MAX_EVENTS;
	co->max_wait_ms = o != NULL ? o->max_wait_ms : 0;
	pthread_mutex_init(&co->mu, NULL);
	/* Waits are timed on the monotonic clock: a clock change cannot
	 * hold a submit back or send it early. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&co->cv, &ca);
	pthread_condattr_destroy(&ca);
	return co;
}

void
relais_coalescer_free(relais_coalescer **cop)
{
	relais_coalescer *co = cop != NULL ? *cop : NULL;

	if (co == NULL)
		return;
	pthread_cond_destroy(&co->cv);
	pthread_mutex_destroy(&co->mu);
	free(co);
	*cop = NULL;
}

void
relais_coalescer_stats(relais_coalescer *co, uint64_t *submits,
    uint64_t *events)
{
	pthread_mutex_lock(&co->mu);
	*submits = co->submits;
	*events = co->events;
	pthread_mutex_unlock(&co->mu);
}

static bool
queue_ready(const relais_coalescer *co, int64_t now)
{
	return co->head != NULL && (co->queued >= co->max_events ||
	    now - co->first_us >= co->window_us);
}

/* Sleep on the condition until woken or until the monotonic time at_us. */
static void
wait_until(relais_coalescer *co, int64_t at_us)
{
	struct timespec ts = {
		.tv_sec = at_us / 1000000, .tv_nsec = (at_us % 1000000) * 1000,
	};

	pthread_cond_timedwait(&co->cv, &co->mu, &ts);
}

/*
 * Submit the queue taken by this thread (the lock released meanwhile) and
 * hand out the results.  Called and returns with the lock held.
 */
static void
send_queue(relais_coalescer *co)
{
	struct waiter *batch = co->head, *w;
	size_t total = co->queued, at = 0;
	json_t **events = calloc(total, sizeof(*events));
	json_t **results = calloc(total, sizeof(*results));
	char err[256] = "";
	int rc = -1;

	co->head = co->tail = NULL;
	co->queued = 0;
	co->sending = true;
	pthread_mutex_unlock(&co->mu);

	if (events == NULL || results == NULL) {
		snprintf(err, sizeof(err), "out of memory");
	} else {
		for (w = batch; w != NULL; w = w->next) {
			memcpy(events + at, w->events, w->n * sizeof(*events));
			at += w->n;
		}
		rc = relais_submit(co->c, events, total, results, co->max_wait_ms);
		if (rc != 0)
			snprintf(err, sizeof(err), "%s", relais_errmsg(co->c));
	}

	pthread_mutex_lock(&co->mu);
	at = 0;
	for (w = batch; w != NULL; w = w->next) {
		w->rc = rc;
		if (rc == 0)
			memcpy(w->results, results + at, w->n * sizeof(*results));
		snprintf(w->err, sizeof(w->err), "%s", err);
		w->done = true;
		at += w->n;
	}
	co->submits++;
	co->events += total;
	co->sending = false;
	free(events);
	free(results);
	pthread_cond_broadcast(&co->cv);
}

int
relais_coalesced_submit(relais_coalescer *co, json_t **events, size_t n,
    json_t **results, char *errbuf, size_t errlen)
{
	struct waiter w = { .events = events, .results = results, .n = n };

	for (size_t i = 0; i < n; i++)
		results[i] = NULL;
	if (n == 0)
		return 0;
	if (n > RL_MAX_BATCH) {
		snprintf(errbuf, errlen, "relais_coalesced_submit: at most %d "
		    "events at a time", RL_MAX_BATCH);
		return -1;
	}
	pthread_mutex_lock(&co->mu);
	if (co->head == NULL) {
		co->head = &w;
		co->first_us = rl_mono_us();
	} else {
		co->tail->next = &w;
	}
	co->tail = &w;
	co->queued += n;
	pthread_cond_broadcast(&co->cv);
	while (!w.done) {
		int64_t now = rl_mono_us();

		if (!co->sending && queue_ready(co, now))
			send_queue(co);
		else if (!co->sending && co->head != NULL)
			wait_until(co, co->first_us + co->window_us);
		else
			pthread_cond_wait(&co->cv, &co->mu);
	}
	pthread_mutex_unlock(&co->mu);
	if (w.rc != 0)
		snprintf(errbuf, errlen, "%s", w.err);
	return w.rc;
}
