/*
 * End to end, what must survive: mailboxes across a graceful restart,
 * redelivery and dead letters for an agent that never acknowledges, and
 * kill -9 in the middle of thousands of submissions.
 *
 * Sizes of the crash test (environment):
 *   E2E_CRASH_SENDERS    sender threads (3)
 *   E2E_CRASH_REFERRALS  referral.sent events per sender (3000)
 *   E2E_CRASH_CONTACTS   contact.made events per sender (1000)
 *   E2E_CRASH_KILLS      stops during the submissions (3): SIGKILL, then
 *                        SIGTERM, SIGKILL, ... each followed by a restart
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* The backlog the health query reports for one agent. */
static long long
backlog_of(relais_client *c, const char *id)
{
	json_t *h = relais_query(c, "health", NULL, 20000), *a;
	long long n = -1;
	size_t i;

	e2e_assert(h != NULL, "health query: %s", relais_errmsg(c));
	json_array_foreach(json_object_get(h, "agents"), i, a)
		if (jstr(a, "id") != NULL && strcmp(jstr(a, "id"), id) == 0)
			n = jint(a, "backlog");
	json_decref(h);
	e2e_assert(n >= 0, "health lists no backlog for %s", id);
	return n;
}

static void
wait_backlog(relais_client *c, const char *id, long long want)
{
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	long long n;

	while ((n = backlog_of(c, id)) != want) {
		e2e_assert(rl_mono_ms() < deadline, "expected a backlog of %lld for "
		    "%s within %d ms, it stays at %lld", want, id, E2E_WAIT_MS, n);
		rl_sleep_ms(20);
	}
}

static void
check_verify(struct e2e_broker *b, long long log_entries)
{
	char out[4096], want[64];
	int rc = e2e_verify(b, out, sizeof(out));

	e2e_assert(rc == 0, "relaisd --verify: expected exit status 0, got %d; "
	    "it said:\n%s", rc, out);
	e2e_assert(strstr(out, " 0 differences") != NULL,
	    "relaisd --verify: expected \"0 differences\", got:\n%s", out);
	if (log_entries >= 0) {
		snprintf(want, sizeof(want), " %lld log entries", log_entries);
		e2e_assert(strstr(out, want) != NULL,
		    "relaisd --verify: expected \"%s\", got:\n%s", want + 1, out);
	}
}

/* ------------------------------------------------------------------ */

/*
 * Deliveries waiting for an offline agent survive SIGTERM (exit 0) and a
 * restart on a new port: the agent reconnects and gets them all, in order,
 * from where its acknowledgements stopped.
 */
static void
test_sigterm_restart_keeps_mailboxes(void **state)
{
	enum { N = 60, TAKEN = 5 };
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_conn small = { .credit = 10 }, sender = { .send_only = true };
	relais_client *a, *t;
	json_t *evs[N], *res[N];
	char err[512], old[256];

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_start(b);

	a = e2e_try_connect(b, "cs-pasteur", &sender, err, sizeof(err));
	e2e_assert(a != NULL, "connect: %s", err);
	for (int i = 0; i < N; i++) {
		char id[32], p[32], r[32];
		snprintf(id, sizeof(id), "ev-%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		snprintf(r, sizeof(r), "r-%d", i);
		evs[i] = e2e_ev_referral(id, p, r, "ml-tours");
	}
	e2e_assert(relais_submit(a, evs, N, res, 30000) == 0, "submit: %s",
	    relais_errmsg(a));
	for (int i = 0; i < N; i++) {
		e2e_expect_ok(res[i]);
		json_decref(res[i]);
		json_decref(evs[i]);
	}

	/* The target takes and acknowledges the first few, then leaves. */
	t = e2e_try_connect(b, "ml-tours", &small, err, sizeof(err));
	e2e_assert(t != NULL, "connect: %s", err);
	for (int i = 0; i < TAKEN; i++) {
		json_t *d = e2e_next_delivery(t, E2E_WAIT_MS);
		e2e_assert_int(i + 1, jint(d, "seq"), "mailbox seq");
		json_decref(d);
	}
	e2e_assert(relais_ack(t, TAKEN) == 0, "dack: %s", relais_errmsg(t));
	wait_backlog(a, "ml-tours", N - TAKEN);
	relais_close(&t);
	relais_close(&a);

	e2e_stop(b);
	snprintf(old, sizeof(old), "%s", b->endpoint);
	e2e_start(b);
	print_message("  restarted: %s -> %s\n", old, b->endpoint);

	t = e2e_connect(b, "ml-tours");
	for (int i = TAKEN; i < N; i++) {
		json_t *d = e2e_next_delivery(t, E2E_WAIT_MS), *e;
		char want[32];

		e = json_object_get(d, "event");
		snprintf(want, sizeof(want), "r-%d", i);
		e2e_assert_int(i + 1, jint(d, "seq"), "mailbox seq after restart");
		e2e_assert_str(want, jstr(e, "referral"), "referral, in order");
		e2e_assert_str("cs-pasteur", jstr(e, "sender"), "sender");
		json_decref(d);
	}
	e2e_assert(relais_ack(t, N) == 0, "dack: %s", relais_errmsg(t));
	{
		json_t *d = relais_next_delivery(t, 300);
		e2e_assert(d == NULL, "a delivery after the last: %s",
		    e2e_json_str(d));
	}
	wait_backlog(t, "ml-tours", 0);
	relais_close(&t);
	e2e_stop(b);
	check_verify(b, N);
}

/*
 * An agent that receives without acknowledging gets its item again with a
 * growing attempt number; after max_attempts the item is dead-lettered
 * (logged, counted in health) and delivery goes on with the next one.
 */
static void
test_redelivery_and_dead_letter(void **state)
{
	/*
	 * Seq 1 goes out at 0, again at 200 and 600 ms, and is dead-lettered
	 * at 1400 ms.  The backoff keeps doubling up to 5 s, so seq 2 has
	 * seconds to be acknowledged before it could be dead-lettered too.
	 */
	struct e2e_broker *b = e2e_broker_new("redeliver_ms = 200\n"
	    "redeliver_max_ms = 5000\nmax_attempts = 3\n");
	struct e2e_raw *raw;
	relais_client *a, *ops;
	json_t *w, *evs[2], *res[2];
	int attempts_seen[4] = { 0 };
	int64_t deadline, next_ping = 0;
	long long last_attempt = 0;
	bool second = false;
	uint64_t ref = 1000;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	a = e2e_connect(b, "cs-pasteur");
	ops = e2e_connect(b, "ops");
	evs[0] = e2e_ev_referral("ev-1", "p-1", "r-1", "ml-tours");
	evs[1] = e2e_ev_referral("ev-2", "p-2", "r-2", "ml-tours");
	e2e_assert(relais_submit(a, evs, 2, res, 30000) == 0, "submit: %s",
	    relais_errmsg(a));
	for (int i = 0; i < 2; i++) {
		e2e_expect_ok(res[i]);
		json_decref(res[i]);
		json_decref(evs[i]);
	}

	/* A target that says hello with credit 1 and never acknowledges. */
	raw = e2e_raw_open(b, "ml-tours", NULL);
	w = e2e_raw_hello(raw, 1);
	json_decref(w);
	deadline = rl_mono_ms() + E2E_WAIT_MS;
	while (!second) {
		json_t *m, *item;
		size_t i;

		e2e_assert(rl_mono_ms() < deadline, "expected seq 1 three times "
		    "(attempts 1, 2, 3) then seq 2 within %d ms; seq 1 came with "
		    "attempts 1:%d 2:%d 3:%d", E2E_WAIT_MS, attempts_seen[1],
		    attempts_seen[2], attempts_seen[3]);
		/* Stay alive for the broker's liveness check. */
		if (rl_mono_ms() >= next_ping) {
			json_t *ping = json_pack("{s:i, s:s, s:I}", "v", 1, "cmd",
			    "ping", "ref", (json_int_t)++ref);
			e2e_raw_send_json(raw, ping);
			json_decref(ping);
			next_ping = rl_mono_ms() + 500;
		}
		if ((m = e2e_raw_recv(raw, 100)) == NULL)
			continue;
		if (jstr(m, "cmd") == NULL || strcmp(jstr(m, "cmd"), "deliver") != 0) {
			json_decref(m);
			continue;
		}
		json_array_foreach(json_object_get(m, "items"), i, item) {
			long long seq = jint(item, "seq"), att = jint(item, "attempt");

			if (seq == 1) {
				e2e_assert(att >= 1 && att <= 3, "seq 1 came with attempt "
				    "%lld; max_attempts is 3", att);
				e2e_assert(att == last_attempt + 1, "seq 1: expected "
				    "attempt %lld, got %lld", last_attempt + 1, att);
				last_attempt = att;
				attempts_seen[att]++;
			} else {
				e2e_assert_int(2, seq, "the item after the dead letter");
				e2e_assert_int(1, att, "attempt of seq 2");
				e2e_assert_int(3, last_attempt,
				    "attempts of seq 1 before it was dead-lettered");
				second = true;
				/* Acknowledge seq 2 at once. */
				json_t *dack = json_pack("{s:i, s:s, s:i}", "v", 1,
				    "cmd", "dack", "upto", 2);
				e2e_raw_send_json(raw, dack);
				json_decref(dack);
			}
		}
		json_decref(m);
	}
	e2e_log_wait(b, "\"msg\":\"delivery.dead_lettered\"",
	    "\"agent\":\"ml-tours\"", "\"seq\":1,");
	e2e_assert_int(2, e2e_log_count(b, "\"msg\":\"delivery.redelivered\"",
	    "\"agent\":\"ml-tours\"", "\"seq\":1,", NULL),
	    "delivery.redelivered lines for seq 1");
	/* The dead letter is counted, and the dack of seq 2 emptied the
	 * mailbox. */
	wait_backlog(ops, "ml-tours", 0);
	e2e_assert_int(1, e2e_health(ops, "dead_letters"), "health dead_letters");
	e2e_assert_int(2, e2e_health(ops, "events"), "events recorded");
	e2e_raw_close(&raw);
	relais_close(&ops);
	relais_close(&a);
}

/* ------------------------------------------------------------------ */
/* The crash test                                                      */

struct crash {
	struct e2e_broker *b;       /* read-only for the threads */
	size_t nsenders, nref, ncontact, nkills;
	atomic_size_t acked;        /* events acknowledged, all senders */
	atomic_size_t dup_acks;     /* acknowledged as "duplicate" */
	atomic_int kills_done;
	atomic_bool target_ready;
	atomic_bool target_stop;
	atomic_size_t target_refs;  /* distinct referral.sent received */
};

struct sender {
	struct crash *cr;
	char id[16];
	json_t **events;
	long long *seq;             /* the acknowledged seq of each event */
	size_t n;
	size_t chunks_sent;
	char err[1024];
};

struct target {
	struct crash *cr;
	json_t *seen;               /* event_id -> log_seq */
	uint64_t last_seq;          /* highest mailbox seq handed to us */
	size_t alerts;
	char err[1024];
};

#define CHUNK 100

static relais_client *
thread_connect(struct crash *cr, const char *id, bool send_only,
    uint32_t credit, char *err, size_t errlen)
{
	struct e2e_agent *a = NULL;
	struct relais_options o;

	for (size_t i = 0; i < cr->b->nagents; i++)
		if (strcmp(cr->b->agents[i].id, id) == 0)
			a = &cr->b->agents[i];
	if (a == NULL) {
		snprintf(err, errlen, "no agent %s", id);
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.endpoint = cr->b->endpoint;
	o.server_public_key = cr->b->broker_pub;
	o.public_key = a->pub;
	o.secret_key = a->sec;
	o.send_only = send_only;
	o.credit = credit;
	o.timeout_ms = 10000;
	return relais_connect(&o, err, errlen);
}

static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	struct crash *cr = s->cr;
	char err[512];
	relais_client *c = thread_connect(cr, s->id, true, 0, err, sizeof(err));
	json_t *results[CHUNK];

	if (c == NULL) {
		snprintf(s->err, sizeof(s->err), "%s: connect: %s", s->id, err);
		return NULL;
	}
	for (size_t k = 0; k < s->n; k += CHUNK) {
		size_t m = s->n - k < CHUNK ? s->n - k : CHUNK;

		/*
		 * The last chunk waits for every kill, so the kills always
		 * land in the middle of the stream.
		 */
		if (k + m == s->n) {
			int64_t until = rl_mono_ms() + 300000;
			while (atomic_load(&cr->kills_done) < (int)cr->nkills &&
			    rl_mono_ms() < until)
				rl_sleep_ms(5);
		}
		/* Through a broker restart, relais_submit resends by itself. */
		if (relais_submit(c, &s->events[k], m, results, 60000) != 0) {
			snprintf(s->err, sizeof(s->err), "%s: events %zu..%zu were "
			    "never acknowledged: %s", s->id, k, k + m - 1,
			    relais_errmsg(c));
			break;
		}
		s->chunks_sent++;
		for (size_t i = 0; i < m; i++) {
			const char *st = jstr(results[i], "status");

			if (st != NULL && (strcmp(st, "ok") == 0 ||
			    strcmp(st, "duplicate") == 0) && jint(results[i], "seq") > 0) {
				s->seq[k + i] = jint(results[i], "seq");
				atomic_fetch_add(&cr->acked, 1);
				if (strcmp(st, "duplicate") == 0)
					atomic_fetch_add(&cr->dup_acks, 1);
			} else if (s->err[0] == '\0') {
				char *ev = json_dumps(s->events[k + i], JSON_COMPACT);
				char *r = json_dumps(results[i], JSON_COMPACT);
				snprintf(s->err, sizeof(s->err), "%s: event %s was refused: "
				    "%s", s->id, ev ? ev : "?", r ? r : "?");
				free(ev);
				free(r);
			}
			json_decref(results[i]);
		}
		if (s->err[0] != '\0')
			break;
	}
	relais_close(&c);
	return NULL;
}

static void *
target_main(void *arg)
{
	struct target *t = arg;
	struct crash *cr = t->cr;
	char err[512];
	relais_client *c = thread_connect(cr, "tgt", false, 1000, err, sizeof(err));
	uint64_t acked = 0;

	if (c == NULL) {
		snprintf(t->err, sizeof(t->err), "tgt: connect: %s", err);
		atomic_store(&cr->target_ready, true);
		return NULL;
	}
	atomic_store(&cr->target_ready, true);
	while (!atomic_load(&cr->target_stop)) {
		json_t *d = relais_next_delivery(c, 200), *e;
		uint64_t seq;

		if (d == NULL) {
			/* Idle: acknowledge what was handled (a failure is only
			 * an outage; the items come again). */
			if (t->last_seq > acked && relais_ack(c, t->last_seq) == 0)
				acked = t->last_seq;
			continue;
		}
		seq = (uint64_t)jint(d, "seq");
		if (seq != t->last_seq + 1 && t->err[0] == '\0')
			snprintf(t->err, sizeof(t->err), "mailbox seq %llu came after "
			    "%llu: %s", (unsigned long long)seq,
			    (unsigned long long)t->last_seq,
			    seq > t->last_seq ? "items were lost" : "out of order");
		if (seq > t->last_seq)
			t->last_seq = seq;
		e = json_object_get(d, "event");
		if (strcmp(jstr(d, "kind") ? jstr(d, "kind") : "", "event") != 0) {
			t->alerts++;
		} else if (jstr(e, "type") != NULL &&
		    strcmp(jstr(e, "type"), "referral.sent") == 0) {
			const char *id = jstr(e, "event_id");
			char key[128];

			/* Event ids are per sender: key them by both. */
			snprintf(key, sizeof(key), "%s/%s", jstr(e, "sender") ?
			    jstr(e, "sender") : "?", id ? id : "?");
			if (json_object_get(t->seen, key) != NULL) {
				if (t->err[0] == '\0')
					snprintf(t->err, sizeof(t->err), "%s was delivered "
					    "twice, as log_seq %lld and %lld: recorded twice",
					    key, (long long)json_integer_value(
					    json_object_get(t->seen, key)),
					    jint(e, "log_seq"));
			} else {
				json_object_set_new(t->seen, key,
				    json_integer(jint(e, "log_seq")));
				atomic_fetch_add(&cr->target_refs, 1);
			}
		}
		json_decref(d);
		if (t->last_seq - acked >= 200 && relais_ack(c, t->last_seq) == 0)
			acked = t->last_seq;
	}
	if (t->last_seq > acked)
		relais_ack(c, t->last_seq);
	relais_close(&c);
	return NULL;
}

/*
 * Before failing in the middle: let every thread end (the senders stop
 * waiting for kills and finish, or give up after their max_wait; the
 * target stops), so none outlives the test.
 */
static void
crash_abort(struct crash *cr, pthread_t *sth, pthread_t *tth)
{
	atomic_store(&cr->kills_done, (int)cr->nkills);
	atomic_store(&cr->target_stop, true);
	for (size_t i = 0; i < cr->nsenders; i++)
		pthread_join(sth[i], NULL);
	pthread_join(*tth, NULL);
}

static void
make_events(struct sender *s)
{
	size_t n = 0;

	s->n = s->cr->nref + s->cr->ncontact;
	s->events = calloc(s->n, sizeof(*s->events));
	s->seq = calloc(s->n, sizeof(*s->seq));
	e2e_assert(s->events != NULL && s->seq != NULL, "out of memory");
	/* Referrals, each followed now and then by a contact about the
	 * same participant; the remaining contacts at the end. */
	for (size_t i = 0; i < s->cr->nref; i++) {
		char id[48], p[48], r[48];

		snprintf(id, sizeof(id), "%s-ref-%05zu", s->id, i);
		snprintf(p, sizeof(p), "p-%s-%05zu", s->id, i);
		snprintf(r, sizeof(r), "r-%s-%05zu", s->id, i);
		s->events[n++] = e2e_ev_referral(id, p, r, "tgt");
		if (n < s->n && i % 3 == 2 && n - (i + 1) < s->cr->ncontact) {
			snprintf(id, sizeof(id), "%s-con-%05zu", s->id, i);
			s->events[n++] = e2e_ev_contact(id, p);
		}
	}
	for (size_t i = 0; n < s->n; i++) {
		char id[48], p[48];

		snprintf(id, sizeof(id), "%s-con-x%05zu", s->id, i);
		snprintf(p, sizeof(p), "p-%s-%05zu", s->id, i % s->cr->nref);
		s->events[n++] = e2e_ev_contact(id, p);
	}
}

/*
 * kill -9 (and, every second time, SIGTERM) in the middle of thousands of
 * submissions from several agents, restart on the same port, and let the
 * clients resend what was not acknowledged.  Afterwards every acknowledged
 * event is in the log exactly once (health count, resubmission gives
 * "duplicate" with the same seq, relaisd --verify), and every acknowledged
 * referral reached the target exactly once per mailbox seq, with no gap
 * in its mailbox.  durability is the config's line (extra), if any.
 */
static void
kill9_mid_stream(const char *extra)
{
	struct crash cr;
	struct sender *senders;
	struct target tgt;
	pthread_t *sth, tth;
	relais_client *ops;
	size_t total, refs_total;
	int64_t t0 = rl_mono_ms(), deadline;
	char why[600];

	memset(&cr, 0, sizeof(cr));
	cr.nsenders = (size_t)e2e_env_long("E2E_CRASH_SENDERS", 3);
	cr.nref = (size_t)e2e_env_long("E2E_CRASH_REFERRALS", 3000);
	cr.ncontact = (size_t)e2e_env_long("E2E_CRASH_CONTACTS", 1000);
	cr.nkills = (size_t)e2e_env_long("E2E_CRASH_KILLS", 3);
	e2e_assert(cr.nsenders <= 8, "at most 8 senders");
	e2e_assert(cr.nref + cr.ncontact >= 2 * CHUNK, "at least %d events per "
	    "sender", 2 * CHUNK);
	total = cr.nsenders * (cr.nref + cr.ncontact);
	refs_total = cr.nsenders * cr.nref;

	snprintf(why, sizeof(why), "default_credit = 1000\n%s", extra);
	cr.b = e2e_broker_new(why);
	cr.b->keep_port = true;
	/* The real clock cannot reach any rule threshold during the test, but
	 * no reminder must reach the target's mailbox either way. */
	snprintf(cr.b->rules, sizeof(cr.b->rules),
	    "referral_unanswered = off\nreferral_expired = off\n");
	e2e_agent_add(cr.b, "tgt", "plie", true);
	e2e_agent_add(cr.b, "ops", "operator", true);
	senders = calloc(cr.nsenders, sizeof(*senders));
	sth = calloc(cr.nsenders, sizeof(*sth));
	e2e_assert(senders != NULL && sth != NULL, "out of memory");
	for (size_t i = 0; i < cr.nsenders; i++) {
		senders[i].cr = &cr;
		snprintf(senders[i].id, sizeof(senders[i].id), "s%u",
		    (unsigned)(i + 1) % 10u);
		e2e_agent_add(cr.b, senders[i].id, "association", true);
		make_events(&senders[i]);
	}
	e2e_start(cr.b);

	memset(&tgt, 0, sizeof(tgt));
	tgt.cr = &cr;
	tgt.seen = json_object();
	e2e_assert(pthread_create(&tth, NULL, target_main, &tgt) == 0,
	    "pthread_create");
	deadline = rl_mono_ms() + E2E_WAIT_MS;
	while (!atomic_load(&cr.target_ready)) {
		e2e_assert(rl_mono_ms() < deadline, "the target never connected");
		rl_sleep_ms(5);
	}
	e2e_assert(tgt.err[0] == '\0', "%s", tgt.err);
	for (size_t i = 0; i < cr.nsenders; i++)
		e2e_assert(pthread_create(&sth[i], NULL, sender_main, &senders[i]) == 0,
		    "pthread_create");

	/* Kill -9 at evenly spaced points of the stream, restart at once. */
	for (size_t k = 0; k < cr.nkills; k++) {
		size_t at = total * (k + 1) / (cr.nkills + 1);
		size_t before;

		if (at > total - cr.nsenders * CHUNK)
			at = total - cr.nsenders * CHUNK;
		deadline = rl_mono_ms() + 60000;
		while (atomic_load(&cr.acked) < at) {
			/* A sender that gave up stops the test at once. */
			for (size_t i = 0; i < cr.nsenders; i++)
				if (senders[i].err[0] != '\0') {
					crash_abort(&cr, sth, &tth);
					e2e_fail(__FILE__, __LINE__, "sender", "%s",
					    senders[i].err);
				}
			if (rl_mono_ms() > deadline) {
				crash_abort(&cr, sth, &tth);
				e2e_fail(__FILE__, __LINE__, "progress", "kill %zu: "
				    "expected %zu acknowledgements within 60 s, got %zu",
				    k + 1, at, atomic_load(&cr.acked));
			}
			rl_sleep_ms(1);
		}
		before = atomic_load(&cr.acked);
		/*
		 * Every second stop is a SIGTERM under load: it must finish
		 * its pass and exit 0; the clients resend what it refused.
		 */
		if (k % 2 == 1) {
			if (!e2e_try_stop(cr.b, why, sizeof(why))) {
				crash_abort(&cr, sth, &tth);
				e2e_fail(__FILE__, __LINE__, "SIGTERM under load",
				    "%s", why);
			}
		} else {
			e2e_kill(cr.b);
		}
		print_message("  %s #%zu after %zu of %zu acknowledgements "
		    "(%.1f s)\n", k % 2 == 1 ? "SIGTERM" : "kill -9", k + 1,
		    before, total, (double)(rl_mono_ms() - t0) / 1000);
		if (!e2e_try_start(cr.b, why, sizeof(why))) {
			crash_abort(&cr, sth, &tth);
			e2e_fail(__FILE__, __LINE__, "restart", "%s", why);
		}
		atomic_fetch_add(&cr.kills_done, 1);
	}

	for (size_t i = 0; i < cr.nsenders; i++)
		pthread_join(sth[i], NULL);
	print_message("  all acknowledged: %zu events, %zu as duplicates "
	    "(%.1f s)\n", atomic_load(&cr.acked), atomic_load(&cr.dup_acks),
	    (double)(rl_mono_ms() - t0) / 1000);

	/* Every event was acknowledged, sooner or later. */
	for (size_t i = 0; i < cr.nsenders; i++)
		if (senders[i].err[0] != '\0') {
			atomic_store(&cr.target_stop, true);
			pthread_join(tth, NULL);
			e2e_fail(__FILE__, __LINE__, "sender", "%s", senders[i].err);
		}
	e2e_assert_int(total, atomic_load(&cr.acked), "acknowledged events");

	/* The target gets every acknowledged referral. */
	deadline = rl_mono_ms() + 180000;
	while (atomic_load(&cr.target_refs) < refs_total &&
	    rl_mono_ms() < deadline && tgt.err[0] == '\0')
		rl_sleep_ms(10);
	atomic_store(&cr.target_stop, true);
	pthread_join(tth, NULL);
	print_message("  target: %zu referrals, mailbox seq 1..%llu, %zu alerts "
	    "(%.1f s)\n", atomic_load(&cr.target_refs),
	    (unsigned long long)tgt.last_seq, tgt.alerts,
	    (double)(rl_mono_ms() - t0) / 1000);
	e2e_assert(tgt.err[0] == '\0', "target: %s", tgt.err);
	e2e_assert_int(refs_total, atomic_load(&cr.target_refs),
	    "distinct referral.sent delivered to the target");
	e2e_assert_int(refs_total + tgt.alerts, tgt.last_seq,
	    "last mailbox seq (one item per referral, no gaps)");
	for (size_t i = 0; i < cr.nsenders; i++) {
		struct sender *s = &senders[i];

		for (size_t j = 0; j < s->n; j++) {
			const char *type = jstr(s->events[j], "type");
			char key[128];
			json_t *ls;

			if (strcmp(type, "referral.sent") != 0)
				continue;
			snprintf(key, sizeof(key), "%s/%s", s->id,
			    jstr(s->events[j], "event_id"));
			ls = json_object_get(tgt.seen, key);
			e2e_assert(ls != NULL, "acknowledged referral %s (seq %lld) "
			    "never reached the target", key, s->seq[j]);
			e2e_assert(json_integer_value(ls) == s->seq[j],
			    "referral %s was acknowledged as seq %lld but delivered "
			    "as log_seq %lld", key, s->seq[j],
			    (long long)json_integer_value(ls));
		}
	}

	/* Exactly once in the log: the count, and every event again is a
	 * duplicate of the acknowledged seq. */
	ops = e2e_connect(cr.b, "ops");
	e2e_assert_int(total, e2e_health(ops, "events"),
	    "events in the log (each acknowledged event exactly once)");
	relais_close(&ops);
	for (size_t i = 0; i < cr.nsenders; i++) {
		struct sender *s = &senders[i];
		json_t **res = calloc(s->n, sizeof(*res));
		relais_client *c = e2e_connect(cr.b, s->id);

		e2e_assert(res != NULL, "out of memory");
		e2e_assert(relais_submit(c, s->events, s->n, res, 120000) == 0,
		    "resubmission: %s", relais_errmsg(c));
		for (size_t j = 0; j < s->n; j++) {
			e2e_assert(jstr(res[j], "status") != NULL &&
			    strcmp(jstr(res[j], "status"), "duplicate") == 0 &&
			    jint(res[j], "seq") == s->seq[j],
			    "resending %s/%s: expected duplicate of seq %lld, got %s",
			    s->id, jstr(s->events[j], "event_id"), s->seq[j],
			    e2e_json_str(res[j]));
			json_decref(res[j]);
		}
		free(res);
		relais_close(&c);
	}
	e2e_assert_int(cr.nkills + 1, e2e_log_count(cr.b,
	    "\"msg\":\"broker.ready\"", NULL), "broker starts in the log");
	/* With the log, a kill -9 left passes that only its replay gave back. */
	if (strstr(extra, "wal") != NULL)
		e2e_assert(e2e_log_count(cr.b, "\"msg\":\"store.recovered\"",
		    NULL) >= 1, "no start-up replayed the write-ahead log");

	/* The stored state is the replay of the log. */
	e2e_stop(cr.b);
	check_verify(cr.b, (long long)total);
	print_message("  verified (%.1f s)\n", (double)(rl_mono_ms() - t0) / 1000);

	for (size_t i = 0; i < cr.nsenders; i++) {
		for (size_t j = 0; j < senders[i].n; j++)
			json_decref(senders[i].events[j]);
		free(senders[i].events);
		free(senders[i].seq);
	}
	json_decref(tgt.seen);
	free(senders);
	free(sth);
}

static void
test_kill9_mid_stream(void **state)
{
	kill9_mid_stream("durability = commit\n");
}

/*
 * The same with the write-ahead log: checkpoints come only when the small
 * log is half full or full, so each kill -9 leaves acknowledged passes
 * that are only in the log, and the restart replays them (store.recovered).
 */
static void
test_kill9_mid_stream_wal(void **state)
{
	kill9_mid_stream("durability = wal\nwal_size_mb = 2\n"
	    "checkpoint_ms = 600000\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sigterm_restart_keeps_mailboxes,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_redelivery_and_dead_letter,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_kill9_mid_stream, e2e_teardown),
		cmocka_unit_test_teardown(test_kill9_mid_stream_wal, e2e_teardown),
	};

	if (getenv("E2E_FILTER") != NULL)
		cmocka_set_test_filter(getenv("E2E_FILTER"));
	return cmocka_run_group_tests_name("e2e_crash", tests, NULL, NULL);
}
