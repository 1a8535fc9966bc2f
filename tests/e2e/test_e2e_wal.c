/*
 * End to end, durability = wal: what is acknowledged before any checkpoint
 * is seen by queries and deliveries, copied by --backup and --compact,
 * named by --verify, and given back by the replay after kill -9, also
 * when the restart says durability = commit.
 *
 * checkpoint_ms is at its maximum so that no checkpoint comes by itself
 * during a test: everything acknowledged stays in the log only, until a
 * stop (SIGTERM checkpoints) or a restart (the replay checkpoints).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define WAL_EXTRA "durability = wal\ncheckpoint_ms = 600000\n"
#define NEVENTS 40

/* The test's referrals from med to ml, made once: resent as they were. */
static json_t *events[NEVENTS];

static void
make_events(void)
{
	for (int i = 0; i < NEVENTS; i++) {
		char id[32], p[32], r[32];

		snprintf(id, sizeof(id), "w-%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		snprintf(r, sizeof(r), "r-%d", i);
		json_decref(events[i]);
		events[i] = e2e_ev_referral(id, p, r, "ml");
	}
}

/* Each referral, acknowledged one by one; their seqs. */
static void
submit_referrals(struct e2e_broker *b, long long *seqs)
{
	relais_client *med = e2e_connect(b, "med");

	make_events();
	for (int i = 0; i < NEVENTS; i++) {
		json_t *res;

		res = e2e_submit1(med, json_incref(events[i]));
		e2e_expect_ok(res);
		seqs[i] = jint(res, "seq");
		json_decref(res);
	}
	relais_close(&med);
}

/* Every referral again: a duplicate of the seq it was acknowledged with. */
static void
expect_all_duplicates(struct e2e_broker *b, const long long *seqs)
{
	relais_client *med = e2e_connect(b, "med");

	for (int i = 0; i < NEVENTS; i++) {
		json_t *res = e2e_submit1(med, json_incref(events[i]));

		e2e_assert(jstr(res, "status") != NULL &&
		    strcmp(jstr(res, "status"), "duplicate") == 0 &&
		    jint(res, "seq") == seqs[i], "resending w-%d: expected a "
		    "duplicate of seq %lld, got %s", i, seqs[i], e2e_json_str(res));
		json_decref(res);
	}
	relais_close(&med);
}

/* relaisd -c conf COMMAND, which must succeed; its output in out. */
static void
run_relaisd(const char *conf, const char *command, char *out, size_t len)
{
	char cmd[1400];

	snprintf(cmd, sizeof(cmd), "%s/relaisd -c %s %s 2>&1", e2e_bin_dir(),
	    conf, command);
	if (e2e_run(cmd, out, len) != 0)
		fail_msg("relaisd %s failed: %s", command, out);
}

/* A copy in dir, made by --backup or --compact, verifies with every event. */
static void
expect_copy_complete(struct e2e_broker *b, const char *command,
    const char *dir)
{
	char cmd[1400], out[4096], conf[400], want[64];

	snprintf(cmd, sizeof(cmd), "%s %s", command, dir);
	run_relaisd(b->conf, cmd, out, sizeof(out));
	e2e_assert(strstr(out, "records of its write-ahead log") != NULL, "%s "
	    "does not say it applied the log: %s", command, out);
	snprintf(conf, sizeof(conf), "%s.conf", dir);
	snprintf(cmd, sizeof(cmd), "sed 's|^data_dir = .*|data_dir = %s|' %s > %s",
	    dir, b->conf, conf);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
	run_relaisd(conf, "--verify", out, sizeof(out));
	snprintf(want, sizeof(want), " %d log entries", NEVENTS);
	e2e_assert(strstr(out, want) != NULL && strstr(out, " 0 differences") !=
	    NULL && strstr(out, "write-ahead log") == NULL, "the copy made by %s "
	    "should verify with %d events and nothing pending, got: %s",
	    command, NEVENTS, out);
}

/*
 * Acknowledged, never checkpointed: queries and deliveries see it, the
 * copies hold it, --verify says it did not see it, kill -9 and a restart
 * give it back exactly once.
 */
static void
test_acknowledged_before_any_checkpoint(void **state)
{
	struct e2e_broker *b = e2e_broker_new(WAL_EXTRA);
	relais_client *ops, *ml;
	long long seqs[NEVENTS];
	char out[4096], dir[400];
	json_t *d;
	struct stat sb;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	submit_referrals(b, seqs);

	ops = e2e_connect(b, "ops");
	e2e_assert_int(NEVENTS, e2e_health(ops, "events"), "events in health");
	relais_close(&ops);
	ml = e2e_connect(b, "ml");
	d = e2e_next_delivery(ml, E2E_WAIT_MS);
	e2e_assert(d != NULL && jint(json_object_get(d, "event"), "log_seq") ==
	    seqs[0], "the first referral is delivered: %s", e2e_json_str(d));
	json_decref(d);
	relais_close(&ml);

	run_relaisd(b->conf, "--verify", out, sizeof(out));
	e2e_assert(strstr(out, "0 log entries") != NULL &&
	    strstr(out, "write-ahead log holds") != NULL, "verify of the live "
	    "store sees the last checkpoint and names the log: %s", out);
	snprintf(dir, sizeof(dir), "%s/backup", b->dir);
	expect_copy_complete(b, "--backup", dir);
	snprintf(dir, sizeof(dir), "%s/compact", b->dir);
	expect_copy_complete(b, "--compact", dir);

	e2e_kill(b);
	snprintf(dir, sizeof(dir), "%s/wal.log", b->data);
	e2e_assert(stat(dir, &sb) == 0, "no write-ahead log in %s", b->data);
	e2e_start(b);
	e2e_assert_int(1, e2e_log_count(b, "\"msg\":\"store.recovered\"",
	    NULL), "store.recovered lines");
	ops = e2e_connect(b, "ops");
	e2e_assert_int(NEVENTS, e2e_health(ops, "events"), "events after replay");
	relais_close(&ops);
	expect_all_duplicates(b, seqs);

	/* SIGTERM checkpoints: the store alone then holds everything. */
	e2e_stop(b);
	e2e_assert(e2e_verify(b, out, sizeof(out)) == 0 &&
	    strstr(out, "40 log entries") != NULL &&
	    strstr(out, "write-ahead log") == NULL, "verify after a stop: %s", out);
}

/* The log is applied even by a broker now configured without it. */
static void
test_restart_with_commit_applies_the_log(void **state)
{
	struct e2e_broker *b = e2e_broker_new(WAL_EXTRA);
	relais_client *ops;
	long long seqs[NEVENTS];
	char out[4096], path[400];

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	submit_referrals(b, seqs);
	e2e_kill(b);

	snprintf(b->extra, sizeof(b->extra), "durability = commit\n");
	e2e_start(b);
	e2e_log_wait(b, "\"msg\":\"store.recovered\"", NULL);
	ops = e2e_connect(b, "ops");
	e2e_assert_int(NEVENTS, e2e_health(ops, "events"), "events after replay");
	relais_close(&ops);
	expect_all_duplicates(b, seqs);
	snprintf(path, sizeof(path), "%s/wal.log", b->data);
	e2e_assert(access(path, F_OK) == -1, "%s is still there: everything it "
	    "held is checkpointed", path);
	e2e_stop(b);
	e2e_assert(e2e_verify(b, out, sizeof(out)) == 0, "verify: %s", out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_acknowledged_before_any_checkpoint,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_restart_with_commit_applies_the_log,
		    e2e_teardown),
	};

	int rc = cmocka_run_group_tests_name("e2e_wal", tests, NULL, NULL);

	for (int i = 0; i < NEVENTS; i++)
		json_decref(events[i]);
	return rc;
}
