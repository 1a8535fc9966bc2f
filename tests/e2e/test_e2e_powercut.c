/*
 * End to end, a power cut: SIGKILL keeps the page cache, so it cannot show
 * what a disk loses.  Here relaisd runs under the power-cut shim
 * (tests/powercut/, LD_PRELOAD in this test only), which journals every
 * write and sync of data.mdb (also the pages stored through its map, with
 * durability = wal) and wal.log, and kills the broker at a chosen write or
 * sync.  The test then rebuilds the disk as a power cut at that instant
 * could leave it (powercut_replay.h: every unsynced write lost, or each
 * page keeping a random part of its unsynced history), restarts the broker
 * on it and checks the guarantee: every acknowledged event is there exactly
 * once (delivered once, deduplicated on a resend) and `relaisd --verify`
 * finds nothing wrong.
 *
 * Each run is drawn from a seed: where the cut falls (which write or sync,
 * before or after it) and how the disk loses its writes.  Every run prints
 * its seed first; POWERCUT_REPLAY=SEED runs that one again.
 *
 * Environment:
 *   POWERCUT_RUNS    cuts to simulate (10; `make powercut` runs 200)
 *   POWERCUT_SEED    seed of the first run (default: from the clock)
 *   POWERCUT_REPLAY  run only the cut of this seed
 *   POWERCUT_EVENTS  events submitted per run (40)
 *   POWERCUT_PAUSE_MS pause after each submit (0; 10 with wal, so that a
 *                    run spans ticks of the broker, which checkpoint)
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "harness.h"
#include "powercut_replay.h"

#define MAX_EVENTS      1000
#define SUBMIT_WAIT_MS  2000    /* a submit unanswered: the broker is gone */

static long pause_ms;           /* after each submit: POWERCUT_PAUSE_MS */

struct cut {
	uint64_t seed;
	long kill_at;               /* write or sync to die at; 0: none */
	bool kill_after;
	bool lose_all;
};

struct workload {
	size_t n;
	json_t *events[MAX_EVENTS];
	bool acked[MAX_EVENTS];
	size_t nacked;
};

/* "pc" and the number in letters: a run of digits could look like a
 * social-security number, which the broker refuses. */
static void
letters(char *out, size_t len, const char *prefix, uint64_t seed, size_t n)
{
	char s[32];
	int k = 0;

	for (uint64_t x = seed % 100000 * 10000 + n; k < 30; x /= 26) {
		s[k++] = (char)('a' + x % 26);
		if (x < 26)
			break;
	}
	s[k] = '\0';
	snprintf(out, len, "%s-%s", prefix, s);
}

static void
make_events(struct workload *w, uint64_t seed, size_t n)
{
	memset(w, 0, sizeof(*w));
	w->n = n;
	for (size_t i = 0; i < n; i++) {
		char eid[48], pid[48], rid[48];

		letters(eid, sizeof(eid), "ev", seed, i);
		letters(pid, sizeof(pid), "person", seed, i / 3);
		letters(rid, sizeof(rid), "ref", seed, i);
		w->events[i] = e2e_ev_referral(eid, pid, rid, "rx");
	}
}

static void
free_events(struct workload *w)
{
	for (size_t i = 0; i < w->n; i++)
		json_decref(w->events[i]);
}

static const char *
shim_path(void)
{
	static char path[512];
	const char *bin = getenv("RELAIS_BIN");

	snprintf(path, sizeof(path), "%s/tests/libpowercut.so",
	    bin != NULL && *bin != '\0' ? bin : "bin");
	return path;
}

/* Start the broker under the shim; false if the cut came before ready. */
static bool
start_shimmed(struct e2e_broker *b, const char *journal, const struct cut *c)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char kill_at[32], asan_opts[512], why[600];
	bool ok;

	snprintf(kill_at, sizeof(kill_at), "%ld", c->kill_at);
	/* A sanitized relaisd accepts a library loaded before its runtime. */
	snprintf(asan_opts, sizeof(asan_opts), "%s%sverify_asan_link_order=0",
	    asan != NULL ? asan : "", asan != NULL && *asan != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", asan_opts, 1);
	setenv("LD_PRELOAD", shim_path(), 1);
	setenv("POWERCUT_JOURNAL", journal, 1);
	/* The write-ahead log too, when there is one (durability = wal). */
	setenv("POWERCUT_FILES", "data.mdb,wal.log", 1);
	setenv("POWERCUT_KILL_AT", kill_at, 1);
	setenv("POWERCUT_KILL_AFTER", c->kill_after ? "1" : "0", 1);
	ok = e2e_try_start(b, why, sizeof(why));
	unsetenv("LD_PRELOAD");
	unsetenv("POWERCUT_JOURNAL");
	unsetenv("POWERCUT_KILL_AT");
	unsetenv("POWERCUT_KILL_AFTER");
	if (asan != NULL)
		setenv("ASAN_OPTIONS", asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	return ok;
}

/* True while the broker lives (reaps it, quietly, once it has died). */
static bool
alive(struct e2e_broker *b)
{
	int status;

	if (b->pid == 0)
		return false;
	if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
		b->pid = 0;
		return false;
	}
	return true;
}

/*
 * Submit the events in small batches, one at a time, recording which were
 * acknowledged, until they are all in or the broker is gone.
 */
static void
submit_until_cut(struct e2e_broker *b, struct workload *w, uint64_t *rnd)
{
	struct e2e_conn o = { .send_only = true, .timeout_ms = 500 };
	char err[512];
	relais_client *c;
	size_t i = 0;

	if (!alive(b) || (c = e2e_try_connect(b, "snd", &o, err, sizeof(err))) ==
	    NULL)
		return;
	while (i < w->n && alive(b)) {
		size_t m = 1 + powercut_draw(rnd) % 4;
		json_t *results[4];

		if (m > w->n - i)
			m = w->n - i;
		if (relais_submit(c, &w->events[i], m, results, SUBMIT_WAIT_MS) != 0)
			break;
		for (size_t k = 0; k < m; k++) {
			const char *st = jstr(results[k], "status");

			/* A resend after a slow answer says "duplicate". */
			e2e_assert(st != NULL && (strcmp(st, "ok") == 0 ||
			    strcmp(st, "duplicate") == 0) && jint(results[k], "seq") > 0,
			    "event %zu: expected status ok, got %s", i + k,
			    e2e_json_str(results[k]));
			w->acked[i + k] = true;
			w->nacked++;
			json_decref(results[k]);
		}
		i += m;
		if (pause_ms > 0)
			rl_sleep_ms((int)pause_ms);
	}
	relais_close(&c);
}

static bool
is_ours(const struct workload *w, const char *id, size_t *idx)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(jstr(w->events[i], "event_id"), id) == 0) {
			*idx = i;
			return true;
		}
	return false;
}

/* The receiver's backlog, from the health query. */
static long long
backlog(relais_client *c)
{
	json_t *h = relais_query(c, "health", NULL, 20000), *a;
	long long n = -1;
	size_t i;

	e2e_assert(h != NULL, "health query: %s", relais_errmsg(c));
	json_array_foreach(json_object_get(h, "agents"), i, a)
		if (jstr(a, "id") != NULL && strcmp(jstr(a, "id"), "rx") == 0)
			n = jint(a, "backlog");
	json_decref(h);
	e2e_assert(n >= 0, "health lists no backlog for rx");
	return n;
}

/*
 * Take every delivery the restarted broker has for rx: each acknowledged
 * event exactly once, nothing twice, nothing that was not sent.
 */
static void
check_deliveries(struct e2e_broker *b, const struct workload *w)
{
	struct e2e_conn o = { .credit = 1000 };
	char err[512];
	relais_client *rx = e2e_try_connect(b, "rx", &o, err, sizeof(err));
	int seen[MAX_EVENTS] = { 0 };
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	uint64_t last = 0;

	e2e_assert(rx != NULL, "rx: connect: %s", err);
	for (;;) {
		json_t *d = relais_next_delivery(rx, 100), *e;
		size_t idx;

		if (d == NULL) {
			if (last > 0)
				e2e_assert(relais_ack(rx, last) == 0, "ack: %s",
				    relais_errmsg(rx));
			if (backlog(rx) == 0)
				break;
			e2e_assert(rl_mono_ms() < deadline, "rx: deliveries still "
			    "waiting after %d ms", E2E_WAIT_MS);
			continue;
		}
		last = (uint64_t)jint(d, "seq");
		e = json_object_get(d, "event");
		if (jstr(d, "kind") != NULL && strcmp(jstr(d, "kind"), "event") == 0) {
			const char *id = jstr(e, "event_id");

			e2e_assert(id != NULL && is_ours(w, id, &idx), "a delivery of "
			    "an event never sent: %s", e2e_json_str(d));
			e2e_assert(seen[idx] == 0, "event %s delivered twice (seq %llu "
			    "now): stored twice", id, (unsigned long long)last);
			seen[idx]++;
		}
		json_decref(d);
	}
	for (size_t i = 0; i < w->n; i++)
		e2e_assert(!w->acked[i] || seen[i] == 1, "event %s was acknowledged "
		    "before the power cut and is not in rx's mailbox after it",
		    jstr(w->events[i], "event_id"));
	relais_close(&rx);
}

/* Every acknowledged event, sent again, is a duplicate: it is recorded. */
static void
check_dedup(struct e2e_broker *b, const struct workload *w)
{
	relais_client *c = e2e_connect(b, "snd");

	for (size_t i = 0; i < w->n; i++) {
		json_t *r;

		if (!w->acked[i])
			continue;
		r = e2e_submit1(c, json_incref(w->events[i]));
		e2e_expect_dup(r);
		json_decref(r);
	}
	relais_close(&c);
}

static void
check_verify(struct e2e_broker *b)
{
	char out[4096];
	int rc = e2e_verify(b, out, sizeof(out));

	e2e_assert(rc == 0, "relaisd --verify after the power cut: expected exit "
	    "status 0, got %d; it said:\n%s", rc, out);
	e2e_assert(strstr(out, " 0 differences") != NULL, "relaisd --verify: "
	    "expected \"0 differences\", got:\n%s", out);
}

/*
 * One power cut.  Returns the writes and syncs the shim counted (all of
 * them when the run had no cut point); adds its writes of pages stored
 * through a map to *mapped, and those not synced at the cut to *unsynced.
 */
static long
one_cut(const struct cut *c, size_t nevents, const char *extra,
    size_t *mapped, size_t *unsynced)
{
	struct e2e_broker *b = e2e_broker_new(extra);
	struct workload *w = calloc(1, sizeof(*w));
	struct powercut_stats st;
	char journal[400], err[512];
	uint64_t rnd = c->seed;
	long ops;

	e2e_assert(w != NULL, "out of memory");
	e2e_agent_add(b, "snd", "mediator", true);
	e2e_agent_add(b, "rx", "mission_locale", true);
	/* The store is created by a clean start and stop, without the shim:
	 * the cut falls in the life of a store, not in its creation. */
	e2e_start(b);
	e2e_stop(b);
	snprintf(journal, sizeof(journal), "%s/powercut.journal", b->dir);
	make_events(w, c->seed, nevents);
	if (start_shimmed(b, journal, c))
		submit_until_cut(b, w, &rnd);
	/* Past the last write with no cut yet: cut now, everything synced. */
	if (alive(b))
		e2e_kill(b);
	ops = powercut_ops(journal);
	e2e_assert(powercut_apply(journal, c->seed, c->lose_all, &st, err,
	    sizeof(err)) == 0, "%s", err);
	if (c->kill_at > 0)
		printf("  cut %s write-or-sync %ld (%ld journalled), %s; ",
		    c->kill_after ? "just after" : "just before", c->kill_at, ops,
		    c->lose_all ? "every unsynced write lost" :
		    "pages keep part of their unsynced history");
	else
		printf("  no cut point: killed after the last ack (%ld writes and "
		    "syncs); ", ops);
	printf("%zu of %zu events acknowledged; %zu writes, %zu unsynced: %zu "
	    "page versions kept, %zu lost; %zu pages written through the map, "
	    "%zu of them unsynced\n", w->nacked, w->n, st.writes, st.unsynced,
	    st.pages_kept, st.pages_lost, st.mapped, st.mapped_unsynced);
	*mapped += st.mapped;
	*unsynced += st.mapped_unsynced;
	check_verify(b);
	e2e_start(b);
	check_deliveries(b, w);
	check_dedup(b, w);
	e2e_stop(b);
	check_verify(b);
	free_events(w);
	free(w);
	e2e_assert(e2e_teardown(NULL) == 0, "teardown of the run with seed %"
	    PRIu64, c->seed);
	return ops;
}

/* Draw run seed's cut among ops writes and syncs. */
static struct cut
cut_of(uint64_t seed, long ops)
{
	struct cut c = { .seed = seed };
	uint64_t rnd = seed;

	c.kill_at = 1 + (long)(powercut_draw(&rnd) % (uint64_t)ops);
	c.kill_after = powercut_draw(&rnd) & 1;
	c.lose_all = powercut_draw(&rnd) % 3 == 0;
	return c;
}

/*
 * POWERCUT_RUNS cuts of brokers whose config has the lines extra.
 * through_map: the store writes its pages through a map of data.mdb
 * (MDB_WRITEMAP, durability = wal), so the pages of the transaction not
 * yet checkpointed may reach the disk before any sync, in any order: the
 * runs must have cut some of them (the shim writes them back, unsynced,
 * at the cut), and the store restarted on what was left must hold its
 * last checkpoint whole all the same.
 */
static void
power_cuts(const char *extra, bool through_map)
{
	size_t mapped = 0, unsynced = 0;
	long runs = e2e_env_long("POWERCUT_RUNS", 10);
	long nevents = e2e_env_long("POWERCUT_EVENTS", 40);
	long replay = e2e_env_long("POWERCUT_REPLAY", -1);
	uint64_t seed = (uint64_t)e2e_env_long("POWERCUT_SEED",
	    (long)(rl_wall_ms() % 1000000));
	struct cut none = { .seed = seed };
	long ops;

	pause_ms = e2e_env_long("POWERCUT_PAUSE_MS", through_map ? 10 : 0);
	e2e_assert(nevents >= 1 && nevents <= MAX_EVENTS, "POWERCUT_EVENTS "
	    "must be 1..%d", MAX_EVENTS);
	/* A first run without a cut point counts the writes and syncs of a
	 * whole run; the cut points are drawn among them. */
	printf("power cuts: a run without a cut, to count the writes and syncs\n");
	ops = one_cut(&none, (size_t)nevents, extra, &mapped, &unsynced);
	e2e_assert(ops > 0, "the shim journalled no write of data.mdb: is %s "
	    "built and loaded?", shim_path());
	if (replay >= 0) {
		struct cut c = cut_of((uint64_t)replay, ops);

		printf("power cut of seed %ld\n", replay);
		one_cut(&c, (size_t)nevents, extra, &mapped, &unsynced);
		return;
	}
	printf("power cuts: %ld runs, seeds %" PRIu64 "..%" PRIu64 " (replay one "
	    "with POWERCUT_REPLAY=SEED)\n", runs, seed + 1, seed + (uint64_t)runs);
	for (long i = 1; i <= runs; i++) {
		struct cut c = cut_of(seed + (uint64_t)i, ops);

		printf("run %ld: seed %" PRIu64 "\n", i, c.seed);
		one_cut(&c, (size_t)nevents, extra, &mapped, &unsynced);
	}
	if (through_map) {
		e2e_assert(unsynced > 0, "no run cut a page of the transaction not "
		    "yet checkpointed (%zu pages written through the map, all "
		    "synced): durability = wal must write through the map", mapped);
		e2e_assert(mapped > unsynced, "no checkpoint synced a page written "
		    "through the map in %ld runs (a run spans ticks of the broker: "
		    "POWERCUT_PAUSE_MS)", runs + 1);
	} else
		e2e_assert(mapped == 0, "durability = commit wrote %zu pages "
		    "through a map", mapped);
}

static void
test_power_cuts(void **state)
{
	power_cuts("durability = commit\n", false);
}

/*
 * With the write-ahead log: a pass is acknowledged once its record is
 * synced, LMDB syncs only at checkpoints, so the cut falls among writes of
 * both files.  A small log and frequent checkpoints put checkpoints among
 * the cut points too.  LMDB writes its pages through the map there, so
 * each cut also finds pages of the transaction since the last checkpoint
 * stored but not synced, some of which reach the disk (power_cuts()).
 */
static void
test_power_cuts_wal(void **state)
{
	power_cuts("durability = wal\nwal_size_mb = 1\ncheckpoint_ms = 10\n",
	    true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_power_cuts, e2e_teardown),
		cmocka_unit_test_teardown(test_power_cuts_wal, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
