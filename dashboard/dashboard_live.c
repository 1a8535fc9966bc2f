/*
 * What the dashboard's pages show live: a coordinator's open alerts, or a
 * partner's inbox.  A poller thread asks the broker twice a second and
 * keeps the answer; when it changes, every open /api/events stream sends
 * it as a server-sent event.
 *
 * Why poll instead of taking the agent's deliveries: deliveries go to one
 * reader, which acknowledges them; a dashboard that took them would draw
 * the alerts away from the coordinator's `relais alerts --follow` or
 * listener.  A read-only query takes nothing from anyone, and the page
 * still changes within half a second of the broker's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_view.h"
#include "dashboard.h"

#define POLL_MS         500
#define KEEPALIVE_S     15

/* The broker's answer as a compact JSON string, or NULL if it failed. */
static char *
ask_broker(struct dashboard *d)
{
	json_t *data;
	char *s;
	int status = 0;

	pthread_mutex_lock(&d->broker_mu);
	if (d->coordinator)
		data = cli_view_all_pages(d->broker, "alerts", json_pack("{s:s}",
		    "status", "open"), "id", CLI_ALERTS_PAGE, NULL, &status);
	else
		data = relais_query(d->broker, "inbox", NULL, 15000);
	pthread_mutex_unlock(&d->broker_mu);
	if (data == NULL)
		return NULL;
	s = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	return s;
}

static void *
poll_loop(void *arg)
{
	struct dashboard *d = arg;

	pthread_mutex_lock(&d->live_mu);
	while (!d->stopping) {
		struct timespec until;
		char *s;

		pthread_mutex_unlock(&d->live_mu);
		s = ask_broker(d);
		pthread_mutex_lock(&d->live_mu);
		if (s != NULL && (d->live_json == NULL ||
		    strcmp(s, d->live_json) != 0)) {
			free(d->live_json);
			d->live_json = s;
			d->live_version++;
			pthread_cond_broadcast(&d->live_cv);
		} else {
			free(s);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += POLL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!d->stopping &&
		    pthread_cond_timedwait(&d->live_cv, &d->live_mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&d->live_mu);
	return NULL;
}

int
dash_live_start(struct dashboard *d)
{
	if (pthread_create(&d->poller, NULL, poll_loop, d) != 0)
		return -1;
	d->poller_started = true;
	return 0;
}

void
dash_live_stop(struct dashboard *d)
{
	pthread_mutex_lock(&d->live_mu);
	d->stopping = true;
	pthread_cond_broadcast(&d->live_cv);
	pthread_mutex_unlock(&d->live_mu);
	if (d->poller_started)
		pthread_join(d->poller, NULL);
	d->poller_started = false;
}

char *
dash_live_get(struct dashboard *d, uint64_t *version)
{
	char *s;

	pthread_mutex_lock(&d->live_mu);
	s = d->live_json != NULL ? strdup(d->live_json) : NULL;
	*version = d->live_version;
	pthread_mutex_unlock(&d->live_mu);
	return s;
}

/* One open /api/events stream: what is left to send of the last event. */
struct stream {
	struct dashboard *d;
	uint64_t sent_version;
	char *pending;
	size_t len, off;
};

static void
stream_set(struct stream *st, char *text)
{
	free(st->pending);
	st->pending = text;
	st->len = text != NULL ? strlen(text) : 0;
	st->off = 0;
}

/* "data: JSON\n\n" for the current state, if it changed; NULL if not. */
static char *
next_event(struct stream *st, bool *stop)
{
	struct dashboard *d = st->d;
	struct timespec until;
	char *ev = NULL;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += KEEPALIVE_S;
	pthread_mutex_lock(&d->live_mu);
	while (!d->stopping && (d->live_version == st->sent_version ||
	    d->live_json == NULL))
		if (pthread_cond_timedwait(&d->live_cv, &d->live_mu,
		    &until) == ETIMEDOUT)
			break;
	*stop = d->stopping;
	if (!d->stopping && d->live_json != NULL &&
	    d->live_version != st->sent_version) {
		size_t n = strlen(d->live_json) + 16;

		if ((ev = malloc(n)) != NULL) {
			snprintf(ev, n, "data: %s\n\n", d->live_json);
			st->sent_version = d->live_version;
		}
	}
	pthread_mutex_unlock(&d->live_mu);
	return ev;
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t n;

	if (st->off == st->len) {
		bool stop = false;
		char *ev = next_event(st, &stop);

		if (stop) {
			free(ev);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		/* A comment line keeps proxies and the browser from giving up. */
		stream_set(st, ev != NULL ? ev : strdup(": keepalive\n\n"));
		if (st->pending == NULL)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = st->len - st->off < max ? st->len - st->off : max;
	memcpy(buf, st->pending + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

static void
stream_free(void *cls)
{
	struct stream *st = cls;

	stream_set(st, NULL);
	free(st);
}

enum MHD_Result
dash_live_stream(struct dashboard *d, struct MHD_Connection *conn)
{
	struct stream *st = calloc(1, sizeof(*st));
	struct MHD_Response *r;

	if (st == NULL)
		return dash_send_text(conn, 500, "out of memory");
	st->d = d;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
	    stream_read, st, stream_free);
	if (r == NULL) {
		free(st);
		return MHD_NO;
	}
	return dash_send(conn, 200, r, "text/event-stream");
}
