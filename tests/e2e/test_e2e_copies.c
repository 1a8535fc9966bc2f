/*
 * Copies of the store (broker/backup.c): a compacted copy holds no byte of
 * an erased person, every copy is its owner's only, and a copy that fails
 * leaves nothing behind that could pass for a backup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define ERASED "p-erasable-4821"

/* How many times needle occurs in the file at path (binary). */
static int
occurrences(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf;
	size_t len = strlen(needle);
	int n = 0;

	if (f == NULL || fstat(fileno(f), &st) == -1)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	for (const char *p = buf; (p = memmem(p, (size_t)st.st_size - (size_t)(p - buf),
	    needle, len)) != NULL; p += len)
		n++;
	free(buf);
	return n;
}

/* A person with a history, then erased by a coordinator. */
static void
history_then_erasure(struct e2e_broker *b)
{
	relais_client *med = e2e_connect(b, "med"), *coord;
	json_t *r;

	for (int i = 0; i < 40; i++) {
		char id[32];

		snprintf(id, sizeof(id), "c-%d", i);
		r = e2e_submit1(med, e2e_ev_contact(id, ERASED));
		e2e_expect_ok(r);
		json_decref(r);
	}
	r = e2e_submit1(med, e2e_ev_referral("s-1", ERASED, "r-erasable", "ml"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&med);
	coord = e2e_connect(b, "coord");
	r = e2e_submit1(coord, json_pack("{s:s, s:s, s:I, s:s}", "event_id", "x-1",
	    "type", "participant.erased", "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", ERASED));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&coord);
}

static struct e2e_broker *
broker(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_start(b);
	return b;
}

static void
test_compacted_store_holds_no_erased_byte(void **state)
{
	struct e2e_broker *b = broker(state);
	char cmd[1400], out[4096], copy[400], path[450], conf2[400];
	struct stat st;

	history_then_erasure(b);
	e2e_stop(b);

	snprintf(copy, sizeof(copy), "%s/compacted", b->dir);
	snprintf(cmd, sizeof(cmd), "umask 0; %s/relaisd -c %s --compact %s 2>&1",
	    e2e_bin_dir(), b->conf, copy);
	if (e2e_run(cmd, out, sizeof(out)) != 0)
		fail_msg("compact failed: %s", out);
	snprintf(path, sizeof(path), "%s/data.mdb", copy);
	assert_int_equal(occurrences(path, ERASED), 0);
	assert_int_equal(occurrences(path, "r-erasable"), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/lock.mdb", copy);
	assert_int_equal(access(path, F_OK), -1);

	/* A second compaction into the same folder is refused. */
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "holds a store already"));

	/* The compacted store is the same store: it verifies, every event in it. */
	snprintf(conf2, sizeof(conf2), "%s/compacted.conf", b->dir);
	snprintf(cmd, sizeof(cmd), "sed 's|^data_dir = .*|data_dir = %s|' %s > %s",
	    copy, b->conf, conf2);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd), "%s/relaisd -c %s --verify 2>&1", e2e_bin_dir(), conf2);
	if (e2e_run(cmd, out, sizeof(out)) != 0 || strstr(out, "42 log entries") == NULL ||
	    strstr(out, " 0 differences") == NULL)
		fail_msg("expected a clean verify of 42 events, got: %s", out);
}

/*
 * A copy that cannot be finished (here the file size limit stops it,
 * as a full disk would) leaves no partial store behind.
 */
static void
test_failed_copies_leave_nothing(void **state)
{
	static const char *const modes[] = { "--backup", "--compact" };
	struct e2e_broker *b = broker(state);
	char cmd[1400], out[4096], copy[400], path[450];

	history_then_erasure(b);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(copy, sizeof(copy), "%s/copy%zu", b->dir, i);
		snprintf(cmd, sizeof(cmd), "umask 0; trap '' XFSZ; ulimit -f 8; "
		    "%s/relaisd -c %s %s %s 2>&1", e2e_bin_dir(), b->conf, modes[i], copy);
		if (e2e_run(cmd, out, sizeof(out)) != 1)
			fail_msg("%s past the size limit should fail, said: %s",
			    modes[i], out);
		assert_non_null(strstr(out, "nothing was left there"));
		snprintf(path, sizeof(path), "%s/data.mdb", copy);
		if (access(path, F_OK) == 0)
			fail_msg("%s left a partial %s", modes[i], path);
	}
	assert_true(e2e_running(b));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_compacted_store_holds_no_erased_byte,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_failed_copies_leave_nothing,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
