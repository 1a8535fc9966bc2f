/*
 * librelais and not_reading (PROTOCOL §8.1): a batch the broker refused
 * with 303 was not done, so relais_submit() sends it again, with the same
 * event_ids, once it has read the error, and returns the acks of the
 * second sending.  A broker of this test's own (a CURVE ROUTER in a
 * thread) answers the first submit with not_reading, whatever the load,
 * so the client's side is checked without depending on timing (the
 * broker's side of not_reading: test_e2e_memory.c).
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
#include <msgpack.h>
#include <zmq.h>

#include "relais.h"
#include "relais_json.h"
#include "relais_proto.h"

#define NEVENTS 3

struct fake_broker {
	void *ctx, *router;
	char endpoint[128];
	char server_public[41];
	/* What it saw: the submits' refs and event_ids, in order. */
	int submits;
	uint64_t refs[4];
	char ids[4][NEVENTS][64];
	bool refused_sent;
	bool bad;                   /* a request it did not expect */
};

static void
send_json(struct fake_broker *f, zmq_msg_t *rid, json_t *j)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char err[256];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_to_msgpack(j, &pk, err, sizeof(err)) != 0)
		f->bad = true;
	zmq_send(f->router, zmq_msg_data(rid), zmq_msg_size(rid), ZMQ_SNDMORE);
	zmq_send(f->router, sb.data, sb.size, 0);
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
}

/*
 * One request: a ping gets a pong, the first submit not_reading, the next
 * acks.  No cmocka assertion here: it runs in its own thread.
 */
static bool
serve_one(struct fake_broker *f)
{
	zmq_msg_t rid, body;
	msgpack_unpacked up;
	json_t *req, *events;
	const char *cmd;
	uint64_t ref;
	size_t off = 0;

	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	if (zmq_msg_recv(&rid, f->router, 0) < 0) {
		zmq_msg_close(&rid);
		zmq_msg_close(&body);
		return false;           /* the context is ending */
	}
	zmq_msg_recv(&body, f->router, 0);
	msgpack_unpacked_init(&up);
	req = msgpack_unpack_next(&up, zmq_msg_data(&body), zmq_msg_size(&body),
	    &off) == MSGPACK_UNPACK_SUCCESS ? msgpack_to_json(&up.data) : NULL;
	msgpack_unpacked_destroy(&up);
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (cmd == NULL)
		cmd = "";
	ref = (uint64_t)json_integer_value(json_object_get(req, "ref"));
	if (strcmp(cmd, "ping") == 0) {
		send_json(f, &rid, json_pack("{s:i, s:s, s:I, s:I}", "v", 1, "cmd",
		    "pong", "ref", (json_int_t)ref, "time", (json_int_t)1800000000000));
	} else if (strcmp(cmd, "submit") == 0 && f->submits < 4) {
		int k = f->submits++;
		json_t *results = json_array();

		events = json_object_get(req, "events");
		if (json_array_size(events) != NEVENTS)
			f->bad = true;
		f->refs[k] = ref;
		for (size_t i = 0; i < json_array_size(events) && i < NEVENTS; i++) {
			const char *id = json_string_value(json_object_get(
			    json_array_get(events, i), "event_id"));

			snprintf(f->ids[k][i], sizeof(f->ids[k][i]), "%s", id);
			json_array_append_new(results, json_pack("{s:s, s:s, s:I, s:I}",
			    "event_id", id, "status", "ok", "seq", (json_int_t)(i + 1),
			    "recorded_at", (json_int_t)1800000000000));
		}
		if (!f->refused_sent) {
			f->refused_sent = true;
			json_decref(results);
			send_json(f, &rid, json_pack("{s:i, s:s, s:i, s:s, s:s, s:s, "
			    "s:I, s:I, s:i}", "v", 1, "cmd", "error", "code",
			    RL_E_NOT_READING, "error", "not_reading", "field", "",
			    "message", "this connection did not read its replies",
			    "ref", (json_int_t)ref, "last_ref", (json_int_t)ref,
			    "refused", 1));
		} else {
			send_json(f, &rid, json_pack("{s:i, s:s, s:I, s:o}", "v", 1,
			    "cmd", "acks", "ref", (json_int_t)ref, "results", results));
		}
	} else {
		f->bad = true;
	}
	json_decref(req);
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	return true;
}

static void *
serve(void *arg)
{
	struct fake_broker *f = arg;

	while (serve_one(f))
		;
	zmq_close(f->router);
	return NULL;
}

static void
test_a_batch_refused_as_not_reading_is_sent_again(void **state)
{
	struct fake_broker f = { 0 };
	char server_secret[41], pub[41], sec[41], err[256];
	size_t len = sizeof(f.endpoint);
	int one = 1, zero = 0;
	json_t *events[NEVENTS], *results[NEVENTS];
	relais_client *c;
	pthread_t th;

	(void)state;
	assert_int_equal(zmq_curve_keypair(f.server_public, server_secret), 0);
	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	f.ctx = zmq_ctx_new();
	f.router = zmq_socket(f.ctx, ZMQ_ROUTER);
	zmq_setsockopt(f.router, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(f.router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(f.router, ZMQ_CURVE_SECRETKEY, server_secret, 40);
	assert_int_equal(zmq_bind(f.router, "tcp://127.0.0.1:*"), 0);
	zmq_getsockopt(f.router, ZMQ_LAST_ENDPOINT, f.endpoint, &len);
	assert_int_equal(pthread_create(&th, NULL, serve, &f), 0);

	c = relais_connect(&(struct relais_options){ .endpoint = f.endpoint,
	    .server_public_key = f.server_public, .public_key = pub,
	    .secret_key = sec, .send_only = true, .timeout_ms = 60000 }, err,
	    sizeof(err));
	assert_non_null(c);
	for (int i = 0; i < NEVENTS; i++) {
		char id[32];

		snprintf(id, sizeof(id), "nr-%d", i);
		events[i] = json_pack("{s:s, s:s, s:s, s:I, s:s}", "event_id", id,
		    "type", "contact.made", "participant", "p-1", "occurred_at",
		    (json_int_t)1800000000000, "channel", "phone");
	}
	/*
	 * Well within the client's resend time-out (60 s): only the
	 * not_reading error can make it send the batch again in time.
	 */
	assert_int_equal(relais_submit(c, events, NEVENTS, results, 10000), 0);
	for (int i = 0; i < NEVENTS; i++) {
		assert_string_equal(json_string_value(json_object_get(results[i],
		    "status")), "ok");
		json_decref(results[i]);
		json_decref(events[i]);
	}
	relais_close(&c);
	zmq_ctx_shutdown(f.ctx);        /* ends the thread's recv */
	pthread_join(th, NULL);
	zmq_ctx_term(f.ctx);

	/* Refused once, sent again once: the same events. */
	assert_false(f.bad);
	assert_int_equal(f.submits, 2);
	for (int i = 0; i < NEVENTS; i++)
		assert_string_equal(f.ids[1][i], f.ids[0][i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_batch_refused_as_not_reading_is_sent_again),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
