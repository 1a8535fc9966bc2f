/*
 * relais_submit(): pipelined, resending event submission.
 *
 * Each event is encoded once.  The events are cut into batches (at most
 * max_batch events and max_frame bytes each), every batch is sent under
 * its own ref without waiting, up to SUBMIT_WINDOW batches in flight, and
 * the "acks" are matched back by ref.  A batch without an answer is sent
 * again, with the same event_ids, after timeout_ms without progress: the
 * broker deduplicates by event_id, so a resend can only ever produce
 * "duplicate" results carrying the original seq.  That is what makes a
 * broker restart in the middle of a submit harmless.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client_internal.h"
#include "relais_json.h"
#include "relais_proto.h"

#define SUBMIT_WINDOW       64    /* batches sent and not yet answered */
#define FRAME_HEAD_BYTES    64    /* v, cmd, ref and the events array header */
#define RETRY_STOPPING_MS   500   /* after "shutting_down", before resending */
#define IDLE_WAIT_MS        100   /* longest sleep between bookkeeping rounds */

struct batch {
	uint64_t ref;
	size_t start, n;            /* its events: s->members[start .. start+n) */
	bool sent, done;
	int gen;                    /* c->handshakes when last sent */
	int64_t sent_at;
	int64_t not_before;         /* a retried batch waits for the broker */
};

struct submission {
	relais_client *c;
	json_t **events;
	json_t **results;
	size_t n;
	size_t remaining;           /* events without a result yet */

	msgpack_sbuffer store;      /* every event's encoding, back to back */
	size_t *off, *len;          /* where each event's encoding is */

	size_t *members;            /* event indices, grouped by batch */
	size_t nmembers, capmembers;
	struct batch *batches;      /* in send order; refs increase */
	size_t nbatches, capbatches;
	size_t first_open;          /* batches before it are all done */
	size_t inflight;
	int64_t last_progress;      /* last time the broker answered us */
};

/* ------------------------------------------------------------------ */
/* Results                                                             */

static void
set_result(struct submission *s, size_t i, json_t *result)
{
	json_decref(s->results[i]);
	s->results[i] = result;
	s->remaining--;
}

/* An error result made here or from a message-level "error" reply. */
static json_t *
error_result(const json_t *event, int code, const char *name,
    const char *field, const char *message)
{
	json_t *r = json_object();
	json_t *id = json_object_get(event, "event_id");

	if (r == NULL)
		return NULL;
	if (json_is_string(id))
		json_object_set(r, "event_id", id);
	json_object_set_new(r, "status", json_string("error"));
	json_object_set_new(r, "code", json_integer(code));
	json_object_set_new(r, "error", json_string(name));
	json_object_set_new(r, "field", json_string(field));
	json_object_set_new(r, "message", json_string(message));
	return r;
}

/* ------------------------------------------------------------------ */
/* Preparing: ids, encoding, batches                                   */

void
client_format_event_id(char id[RELAIS_EVENT_ID_SIZE], uint64_t ms,
    const unsigned char rnd[EVENT_ID_RANDOM])
{
	/* ASCII order, so that the ids sort as their times do. */
	static const char alphabet[32] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";

	memcpy(id, "ev-", 3);
	for (int k = 0; k < EVENT_ID_TIME; k++)
		id[3 + k] = alphabet[(ms >> (5 * (EVENT_ID_TIME - 1 - k))) & 31];
	for (int k = 0; k < EVENT_ID_RANDOM; k++)
		id[3 + EVENT_ID_TIME + k] = alphabet[rnd[k] & 31];
	id[RELAIS_EVENT_ID_SIZE - 1] = '\0';
}

int
relais_new_event_id(char id[RELAIS_EVENT_ID_SIZE])
{
	unsigned char rnd[EVENT_ID_RANDOM];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	client_format_event_id(id, (uint64_t)rl_wall_ms(), rnd);
	return 0;
}

/* Give a new event_id to every object that has none. */
static int
assign_event_ids(struct submission *s)
{
	char id[RELAIS_EVENT_ID_SIZE];

	for (size_t i = 0; i < s->n; i++) {
		json_t *ev = s->events[i];
		if (!json_is_object(ev) || json_object_get(ev, "event_id") != NULL)
			continue;
		if (relais_new_event_id(id) == -1)
			return client_fail(s->c, 0, "cannot draw a random event_id: %s",
			    strerror(errno));
		if (json_object_set_new(ev, "event_id", json_string(id)) != 0)
			return client_fail(s->c, 0, "out of memory");
	}
	return 0;
}

/*
 * Encode event i into the store.  An event that cannot be encoded gets its
 * error result now and is never sent.
 */
static void
encode_event(struct submission *s, size_t i)
{
	msgpack_packer pk;
	char field[64], why[256];
	json_t *ev = s->events[i];
	size_t before = s->store.size;

	s->off[i] = before;
	s->len[i] = 0;
	if (!json_is_object(ev)) {
		set_result(s, i, error_result(ev, RL_E_BAD_FIELD, "bad_field", "",
		    "an event must be a JSON object"));
		return;
	}
	msgpack_packer_init(&pk, &s->store, msgpack_sbuffer_write);
	if (json_to_msgpack_field(ev, &pk, field, sizeof(field), why,
	    sizeof(why)) != 0) {
		s->store.size = before;
		set_result(s, i, error_result(ev, RL_E_BAD_FIELD, "bad_field",
		    field, why));
		return;
	}
	s->len[i] = s->store.size - before;
	if (s->len[i] + FRAME_HEAD_BYTES > s->c->max_frame) {
		s->store.size = before;
		s->len[i] = 0;
		set_result(s, i, error_result(ev, RL_E_EVENT_TOO_LARGE,
		    "event_too_large", "", "the event is too large to send; "
		    "events are limited to 4096 bytes"));
	}
}

/*
 * Seal event i's contact details, if it has some, before it is encoded:
 * an event that cannot be sealed gets its error result now.  -1 if the
 * broker could not be asked for the target's key.
 */
static int
seal_contact(struct submission *s, size_t i)
{
	char field[64], why[400];
	int code, rc;

	s->off[i] = s->store.size;
	s->len[i] = 0;
	rc = client_seal_contact(s->c, s->events[i], &code, field, sizeof(field),
	    why, sizeof(why));
	if (rc == 1)
		set_result(s, i, error_result(s->events[i], code,
		    rl_code_name(code), field, why));
	return rc < 0 ? -1 : 0;
}

static int
add_member(struct submission *s, size_t i)
{
	if (s->nmembers == s->capmembers) {
		size_t cap = s->capmembers ? 2 * s->capmembers : 256;
		size_t *m = realloc(s->members, cap * sizeof(*m));
		if (m == NULL)
			return -1;
		s->members = m;
		s->capmembers = cap;
	}
	s->members[s->nmembers++] = i;
	return 0;
}

/* Open a new, empty batch at the end of the members list. */
static struct batch *
add_batch(struct submission *s, int64_t not_before)
{
	struct batch *b;

	if (s->nbatches == s->capbatches) {
		size_t cap = s->capbatches ? 2 * s->capbatches : 16;
		b = realloc(s->batches, cap * sizeof(*b));
		if (b == NULL)
			return NULL;
		s->batches = b;
		s->capbatches = cap;
	}
	b = &s->batches[s->nbatches++];
	memset(b, 0, sizeof(*b));
	b->ref = client_next_ref(s->c);
	b->start = s->nmembers;
	b->not_before = not_before;
	return b;
}

/* Cut the given events into batches that respect max_batch and max_frame. */
static int
make_batches(struct submission *s, const size_t *idx, size_t count,
    int64_t not_before)
{
	struct batch *b = NULL;
	size_t bytes = 0;

	for (size_t k = 0; k < count; k++) {
		size_t i = idx[k];
		if (b == NULL || b->n == s->c->max_batch ||
		    bytes + s->len[i] > s->c->max_frame) {
			b = add_batch(s, not_before);
			if (b == NULL)
				return -1;
			bytes = FRAME_HEAD_BYTES;
		}
		if (add_member(s, i) != 0)
			return -1;
		b->n++;
		bytes += s->len[i];
	}
	return 0;
}

static int
prepare(struct submission *s)
{
	size_t *todo, ntodo = 0;
	int rc;

	if (assign_event_ids(s) < 0)
		return -1;
	todo = malloc(s->n * sizeof(*todo));
	if (todo == NULL)
		return client_fail(s->c, 0, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		if (seal_contact(s, i) < 0) {
			free(todo);
			return -1;
		}
		if (s->results[i] == NULL)
			encode_event(s, i);
		if (s->results[i] == NULL)
			todo[ntodo++] = i;
	}
	rc = make_batches(s, todo, ntodo, 0);
	free(todo);
	return rc < 0 ? client_fail(s->c, 0, "out of memory") : 0;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

/* Build the batch's frame from the stored encodings and send it. */
static int
send_batch(struct submission *s, struct batch *b)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = -1;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (client_pack_head(&pk, "submit", 2) == 0 &&
	    codec_pack_kv_u64(&pk, "ref", b->ref) == 0 &&
	    codec_pack_str(&pk, "events") == 0 &&
	    msgpack_pack_array(&pk, b->n) == 0) {
		rc = 0;
		for (size_t k = 0; k < b->n && rc == 0; k++) {
			size_t i = s->members[b->start + k];
			rc = msgpack_sbuffer_write(&sb, s->store.data + s->off[i],
			    s->len[i]);
		}
	}
	if (rc == 0)
		rc = client_send_sbuf(s->c, &sb);
	else
		client_fail(s->c, 0, "out of memory");
	msgpack_sbuffer_destroy(&sb);
	if (rc == 0) {
		if (!b->sent)
			s->inflight++;
		b->sent = true;
		b->sent_at = rl_mono_ms();
		b->gen = s->c->handshakes;
	}
	return rc;
}

/*
 * A sent batch is due again when its connection went away, or when the
 * broker has been silent towards us for timeout_ms since it was sent.
 * Measuring from the last answer, not from the send, keeps a long
 * pipeline that the broker is working through from being resent.
 */
static bool
resend_due(const struct submission *s, const struct batch *b, int64_t now)
{
	int64_t since = b->sent_at > s->last_progress ? b->sent_at :
	    s->last_progress;

	return b->gen != s->c->handshakes || now - since >= s->c->timeout_ms;
}

/* Send what is due.  0, or 1 if the socket cannot take more now, -1. */
static int
send_due(struct submission *s)
{
	int64_t now = rl_mono_ms();

	for (size_t k = s->first_open; k < s->nbatches; k++) {
		struct batch *b = &s->batches[k];
		bool go;
		if (b->done)
			continue;
		if (b->sent)
			go = resend_due(s, b, now);
		else
			go = s->inflight < SUBMIT_WINDOW && now >= b->not_before;
		if (!go)
			continue;
		int rc = send_batch(s, b);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */

static struct batch *
find_batch(struct submission *s, uint64_t ref)
{
	size_t lo = s->first_open, hi = s->nbatches;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->batches[mid].ref < ref)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nbatches && s->batches[lo].ref == ref && !s->batches[lo].done)
		return &s->batches[lo];
	return NULL;
}

static void
close_batch(struct submission *s, struct batch *b)
{
	b->done = true;
	if (b->sent)
		s->inflight--;
	while (s->first_open < s->nbatches && s->batches[s->first_open].done)
		s->first_open++;
}

static bool
is_shutting_down(const json_t *r)
{
	json_t *code = json_object_get(r, "code");

	return json_is_integer(code) && json_integer_value(code) == RL_E_SHUTTING_DOWN;
}

/*
 * The broker is stopping: those events were not recorded.  Put them in a
 * new batch (new ref) that waits a little, then goes to the broker again.
 */
static int
retry_later(struct submission *s, const size_t *idx, size_t count)
{
	if (count == 0)
		return 0;
	return make_batches(s, idx, count, rl_mono_ms() + RETRY_STOPPING_MS);
}

/* One result per event, in order; anything else is a broker bug. */
static int
take_acks(struct submission *s, struct batch *b, const json_t *msg)
{
	json_t *res = json_object_get(msg, "results");
	size_t *retry = malloc(b->n * sizeof(*retry)), nretry = 0;
	size_t start = b->start, n = b->n;
	int rc;

	if (retry == NULL)
		return client_fail(s->c, 0, "out of memory");
	close_batch(s, b);
	for (size_t k = 0; k < n; k++) {
		size_t i = s->members[start + k];
		json_t *r = json_array_get(res, k);
		if (json_array_size(res) != n || !json_is_object(r)) {
			set_result(s, i, error_result(s->events[i], 0, "bad_reply", "",
			    "the broker's acks do not match the batch; this event may "
			    "or may not be recorded: send it again"));
		} else if (is_shutting_down(r)) {
			retry[nretry++] = i;
		} else {
			/* "i" is the index within our batch: meaningless to callers. */
			json_object_del(r, "i");
			set_result(s, i, json_incref(r));
		}
	}
	rc = retry_later(s, retry, nretry);
	free(retry);
	return rc;
}

/* A message-level refusal: it applies to every event of the batch. */
static int
take_error(struct submission *s, struct batch *b, const json_t *msg)
{
	size_t start = b->start, n = b->n;
	const char *name, *field, *message;
	int code;

	close_batch(s, b);
	if (is_shutting_down(msg)) {
		/* Copied: retry_later() may move s->members. */
		size_t *idx = malloc(n * sizeof(*idx));
		if (idx == NULL)
			return client_fail(s->c, 0, "out of memory");
		memcpy(idx, s->members + start, n * sizeof(*idx));
		int rc = retry_later(s, idx, n);
		free(idx);
		return rc;
	}
	code = (int)json_integer_value(json_object_get(msg, "code"));
	name = json_string_value(json_object_get(msg, "error"));
	field = json_string_value(json_object_get(msg, "field"));
	message = json_string_value(json_object_get(msg, "message"));
	for (size_t k = 0; k < n; k++) {
		size_t i = s->members[start + k];
		set_result(s, i, error_result(s->events[i], code,
		    name ? name : "error", field ? field : "",
		    message ? message : "the broker refused the batch"));
	}
	return 0;
}

/*
 * not_reading (PROTOCOL §8.1): the batches sent from ref to last_ref that
 * have had no answer were refused and not done; they go again at once.
 */
static void
take_not_reading(struct submission *s, const json_t *msg)
{
	json_t *last = json_object_get(msg, "last_ref");
	uint64_t lo = (uint64_t)json_integer_value(json_object_get(msg, "ref"));
	uint64_t hi = json_is_integer(last) ? (uint64_t)json_integer_value(last) : lo;

	s->last_progress = rl_mono_ms();
	for (size_t k = s->first_open; k < s->nbatches; k++) {
		struct batch *b = &s->batches[k];

		if (!b->done && b->sent && b->ref >= lo && b->ref <= hi) {
			b->sent = false;
			s->inflight--;
		}
	}
}

static int
handle_reply(struct submission *s, const json_t *msg)
{
	const char *cmd = json_string_value(json_object_get(msg, "cmd"));
	json_t *ref = json_object_get(msg, "ref");
	struct batch *b;

	if (cmd == NULL || !json_is_integer(ref))
		return 0;
	if (strcmp(cmd, "error") == 0 && json_integer_value(json_object_get(msg,
	    "code")) == RL_E_NOT_READING) {
		take_not_reading(s, msg);
		return 0;
	}
	b = find_batch(s, (uint64_t)json_integer_value(ref));
	if (b == NULL)
		return 0;   /* a late answer to a batch already settled */
	s->last_progress = rl_mono_ms();
	if (strcmp(cmd, "acks") == 0)
		return take_acks(s, b, msg);
	if (strcmp(cmd, "error") == 0)
		return take_error(s, b, msg);
	return 0;
}

/* ------------------------------------------------------------------ */

static int
run(struct submission *s, int max_wait_ms)
{
	int64_t deadline = max_wait_ms > 0 ? rl_mono_ms() + max_wait_ms :
	    INT64_MAX;

	while (s->remaining > 0) {
		json_t *msg;
		int64_t now = rl_mono_ms();
		if (now >= deadline)
			return client_fail(s->c, 0, "%zu of %zu events were not "
			    "acknowledged within %d ms: the broker at %s may be down "
			    "or overloaded; send them again (the same event_ids make "
			    "that safe)", s->remaining, s->n, max_wait_ms,
			    s->c->endpoint);
		if (send_due(s) < 0)
			return -1;
		int64_t left = deadline - now;
		int wait = left < IDLE_WAIT_MS ? (int)left : IDLE_WAIT_MS;
		if (client_pump(s->c, wait, &msg) < 0)
			return -1;
		int rc = msg != NULL ? handle_reply(s, msg) : 0;
		json_decref(msg);
		if (rc < 0)
			return -1;
		client_keepalive(s->c);
	}
	return 0;
}

static void
submission_free(struct submission *s)
{
	msgpack_sbuffer_destroy(&s->store);
	free(s->off);
	free(s->len);
	free(s->members);
	free(s->batches);
}

int
relais_submit(relais_client *c, json_t **events, size_t n, json_t **results,
    int max_wait_ms)
{
	struct submission s = {
		.c = c, .events = events, .results = results, .n = n,
		.remaining = n, .last_progress = rl_mono_ms(),
	};
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		results[i] = NULL;
	if (n == 0)
		return 0;
	msgpack_sbuffer_init(&s.store);
	s.off = calloc(n, sizeof(*s.off));
	s.len = calloc(n, sizeof(*s.len));
	if (s.off == NULL || s.len == NULL)
		client_fail(c, 0, "out of memory");
	else if (prepare(&s) == 0)
		rc = run(&s, max_wait_ms);
	submission_free(&s);
	if (rc < 0) {
		/* All or nothing, as relais.h promises. */
		for (size_t i = 0; i < n; i++) {
			json_decref(results[i]);
			results[i] = NULL;
		}
	}
	return rc;
}
