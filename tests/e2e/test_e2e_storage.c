/*
 * The store copes by itself (broker/upkeep.c): the map grows up to
 * map_size_max_mb without a restart, a store at its ceiling refuses with
 * storage_full and keeps serving, and the reader slot of a killed reader
 * is freed while the broker runs.
 */
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

enum { BATCH = 1000 };

/*
 * One submit of BATCH referrals (the events that cost the store the
 * most); how many of them were refused with code.
 */
static int
submit_batch(relais_client *c, int batch, int code)
{
	json_t *evs[BATCH], *res[BATCH];
	int refused = 0;

	for (int i = 0; i < BATCH; i++) {
		char id[32], ref[32], p[32];

		snprintf(id, sizeof(id), "g-%d-%d", batch, i);
		snprintf(ref, sizeof(ref), "r-%d-%d", batch, i);
		snprintf(p, sizeof(p), "p-%d-%d", batch, i);
		evs[i] = e2e_ev_referral(id, p, ref, "ml");
	}
	e2e_assert(relais_submit(c, evs, BATCH, res, E2E_WAIT_MS) == 0,
	    "submit: %s", relais_errmsg(c));
	for (int i = 0; i < BATCH; i++) {
		if (jint(res[i], "code") == code)
			refused++;
		else
			e2e_expect_ok(res[i]);
		json_decref(res[i]);
		json_decref(evs[i]);
	}
	return refused;
}

static struct e2e_broker *
broker(void **state, const char *extra)
{
	struct e2e_broker *b = e2e_broker_new(extra);

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	return b;
}

/* The observed: a full map needed a restart with a bigger map_size_mb. */
static void
test_the_map_grows_by_itself(void **state)
{
	struct e2e_broker *b = broker(state, "map_size_mb = 16\nmap_size_max_mb = 128\n");
	relais_client *c = e2e_connect(b, "med");

	/* Well past 16 MiB of events, pathways, mailboxes and indexes. */
	for (int i = 0; i < 30; i++)
		assert_int_equal(submit_batch(c, i, 300), 0);
	e2e_log_wait(b, "\"store.grown\"");
	assert_int_equal(e2e_log_count(b, "\"storage_full\"", NULL), 0);
	assert_int_equal(e2e_health(c, "events"), 30 * BATCH);
	relais_close(&c);
}

/* At map_size_max_mb: storage_full, and the broker goes on serving. */
static void
test_a_store_at_its_ceiling_refuses_and_serves(void **state)
{
	struct e2e_broker *b = broker(state, "map_size_mb = 16\nmap_size_max_mb = 16\n");
	relais_client *c = e2e_connect(b, "med");
	int refused = 0;

	for (int i = 0; i < 60 && refused == 0; i++)
		refused = submit_batch(c, i, 300);
	assert_true(refused > 0);
	e2e_log_wait(b, "\"store.full\"");
	assert_true(e2e_health(c, "events") > 0);
	relais_close(&c);
}

/*
 * A process killed inside a read transaction (a --verify or --backup
 * stopped with kill -9) leaves its reader slot: the broker frees it
 * while it runs, not only at its next start.
 */
static void
test_a_killed_readers_slot_is_freed(void **state)
{
	struct e2e_broker *b = broker(state, NULL);
	int ready[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;

		close(ready[0]);
		if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
		    mdb_env_open(env, b->data, MDB_RDONLY | MDB_NOTLS, 0600) != 0 ||
		    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	e2e_log_wait(b, "\"store.stale_readers\"", "\"cleared\":1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_the_map_grows_by_itself, e2e_teardown),
		cmocka_unit_test_teardown(test_a_store_at_its_ceiling_refuses_and_serves,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_a_killed_readers_slot_is_freed,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
