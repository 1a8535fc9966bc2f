/*
 * What an operator does with a running broker: check a config, reload a
 * broken one (refused, the broker keeps going), take a hot backup and
 * prove the copy consistent.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"

static void
submit_contacts(struct e2e_broker *b, int n)
{
	relais_client *c = e2e_connect(b, "med");

	for (int i = 0; i < n; i++) {
		char id[32], p[32];
		json_t *r;

		snprintf(id, sizeof(id), "ops-%d", i);
		snprintf(p, sizeof(p), "p-%d", i % 7);
		r = e2e_submit1(c, e2e_ev_contact(id, p));
		e2e_expect_ok(r);
		json_decref(r);
	}
	relais_close(&c);
}

static void
test_check_config_reports_every_error_with_its_line(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	char cmd[1024], out[4096], bad[400];
	FILE *f;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_start(b);
	snprintf(cmd, sizeof(cmd), "%s/relaisd --check-config %s 2>&1", e2e_bin_dir(), b->conf);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "configuration OK"));
	/* The QPVs events and coverage are checked against, code and name. */
	assert_non_null(strstr(out, "qpv sanitas = Sanitas\n"));
	assert_non_null(strstr(out, "qpv maryse-bastie = Maryse Bastié\n"));

	snprintf(bad, sizeof(bad), "%s/bad.conf", b->dir);
	f = fopen(bad, "w");
	assert_non_null(f);
	fprintf(f, "[broker]\nlisten = tcp://127.0.0.1:*\nno_such_key = 1\n"
	    "max_batch = 0\n");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s/relaisd --check-config %s 2>&1", e2e_bin_dir(), bad);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 1);
	if (strstr(out, "bad.conf:3:") == NULL || strstr(out, "bad.conf:4:") == NULL)
		fail_msg("expected errors at lines 3 and 4, got:\n%s", out);
	/* The territory's QPVs are required, and the error says what to add. */
	if (strstr(out, "bad.conf: no [qpv] section: list the territory's "
	    "QPVs, one 'code = Name' line each") == NULL)
		fail_msg("expected the missing [qpv] reported, got:\n%s", out);

	/* The broker does not start on it either. */
	snprintf(cmd, sizeof(cmd), "%s/relaisd -c %s 2>&1", e2e_bin_dir(), bad);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no [qpv] section"));
}

static void
test_broken_reload_is_refused_and_the_broker_keeps_going(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *c;
	char saved[400], cmd[1600], out[256];

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_start(b);
	submit_contacts(b, 3);

	/* Break the file the broker was started with, then SIGHUP. */
	snprintf(saved, sizeof(saved), "%s.good", b->conf);
	snprintf(cmd, sizeof(cmd), "cp %s %s && echo 'bogus line' >> %s",
	    b->conf, saved, b->conf);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
	assert_int_equal(kill(b->pid, SIGHUP), 0);
	e2e_log_wait(b, "\"config.reload_refused\"");
	assert_true(e2e_running(b));

	/* The running config still admits the agent and records events. */
	c = e2e_connect(b, "med");
	assert_int_equal(e2e_health(c, "events"), 3);
	relais_close(&c);
	snprintf(cmd, sizeof(cmd), "mv %s %s", saved, b->conf);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
}

static void
test_hot_backup_is_a_consistent_store(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	char cmd[1200], out[4096], copy[400], conf2[400], mdb[450];
	struct stat st;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_start(b);
	submit_contacts(b, 50);

	/* While the broker runs. */
	snprintf(copy, sizeof(copy), "%s/backup", b->dir);
	snprintf(cmd, sizeof(cmd), "%s/relaisd -c %s --backup %s 2>&1", e2e_bin_dir(),
	    b->conf, copy);
	if (e2e_run(cmd, out, sizeof(out)) != 0)
		fail_msg("backup failed: %s", out);
	assert_true(e2e_running(b));
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", copy);
	assert_int_equal(stat(mdb, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A second backup into the same folder is refused, not merged. */
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 1);

	/* The copy verifies, with every event. */
	snprintf(conf2, sizeof(conf2), "%s/backup.conf", b->dir);
	snprintf(cmd, sizeof(cmd), "sed 's|^data_dir = .*|data_dir = %s|' %s > %s",
	    copy, b->conf, conf2);
	assert_int_equal(e2e_run(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd), "%s/relaisd -c %s --verify 2>&1", e2e_bin_dir(), conf2);
	if (e2e_run(cmd, out, sizeof(out)) != 0 || strstr(out, "50 log entries") == NULL ||
	    strstr(out, " 0 differences") == NULL)
		fail_msg("expected a clean verify of 50 events, got: %s", out);
}

/* The sender of a referral leaves the registry; the answer still lands. */
static void
test_answer_to_an_agent_that_left_the_registry(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *med, *ml;
	json_t *r;

	*state = b;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	r = e2e_submit1(med, e2e_ev_referral("s1", "p-1", "r-1", "ml"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&med);

	e2e_agent(b, "med")->registered = false;
	e2e_reload(b);
	ml = e2e_connect(b, "ml");
	r = e2e_submit1(ml, e2e_ev_answer("referral.accepted", "a1", "p-1", "r-1"));
	e2e_expect_ok(r);
	json_decref(r);
	e2e_log_wait(b, "\"delivery.no_recipient\"", "\"med\"");
	/* And the broker goes on accepting events. */
	r = e2e_submit1(ml, e2e_ev_contact("c1", "p-1"));
	e2e_expect_ok(r);
	json_decref(r);
	relais_close(&ml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_check_config_reports_every_error_with_its_line,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_broken_reload_is_refused_and_the_broker_keeps_going,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_hot_backup_is_a_consistent_store,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_answer_to_an_agent_that_left_the_registry,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
