/*
 * End to end, the `relais` command as a partner uses it: how `relais send`
 * types the values it is given, and how it dates events, from arguments
 * and from JSON lines, on a broker whose clock an operator moved forward.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "harness.h"

static struct e2e_broker *
cli_broker(void)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "cite-emploi", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	return b;
}

/* Write text to a file of the test's folder; its path in path. */
static void
write_file(struct e2e_broker *b, const char *name, const char *text,
    char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", b->dir, name);
	f = fopen(path, "w");
	e2e_assert(f != NULL, "cannot create %s: %s", path, strerror(errno));
	fputs(text, f);
	e2e_assert(fclose(f) == 0, "cannot write %s", path);
}

static void
expect_cli_ok(const struct au_cli *cli, const char *what)
{
	e2e_assert(cli->status == 0 && strstr(cli->out, "\"status\":\"ok\"") !=
	    NULL, "%s: expected exit status 0 and an ok result, got %d; "
	    "stdout: %.300s; stderr: %.300s", what, cli->status, cli->out,
	    cli->err);
}

/* The timeline of a participant, as the coordinator reads it. */
static json_t *
timeline_of(relais_client *coordinator, const char *participant)
{
	json_t *args = json_pack("{s:s}", "id", participant);
	json_t *doc = relais_query(coordinator, "participant", args, 10000), *t;

	json_decref(args);
	e2e_assert(doc != NULL, "participant query for %s: %s", participant,
	    relais_errmsg(coordinator));
	t = json_incref(json_object_get(doc, "timeline"));
	json_decref(doc);
	e2e_assert(json_is_array(t), "the participant query has no timeline");
	return t;
}

/*
 * Values are typed as the protocol types their field: participant=12345
 * is the pseudonym "12345" (it used to become an integer and be refused
 * with "got an integer"), while score and contacts stay integers.
 */
static void
test_digit_strings_stay_strings(void **state)
{
	struct e2e_broker *b = cli_broker();
	struct au_cli cli;
	relais_client *coord;
	json_t *timeline;

	e2e_start(b);
	au_cli_run(b, "cs-pasteur", &cli, "send", "participant.identified",
	    "participant=12345", "qpv=sanitas", "source=outreach", NULL);
	expect_cli_ok(&cli, "participant=12345");
	au_cli_free(&cli);
	au_cli_run(b, "cs-pasteur", &cli, "send", "confidence.assessed",
	    "participant=12345", "score=4", NULL);
	expect_cli_ok(&cli, "score=4 for participant 12345");
	au_cli_free(&cli);
	au_cli_run(b, "cs-pasteur", &cli, "send", "outreach.intervention",
	    "place=public_space", "qpv=sanitas", "contacts=012", NULL);
	expect_cli_ok(&cli, "contacts=012");
	au_cli_free(&cli);
	au_cli_run(b, "cs-pasteur", &cli, "send", "appointment.missed",
	    "participant=12345", "appointment=42", "excused=true", NULL);
	e2e_assert(strstr(cli.out, "unknown_participant") == NULL &&
	    strstr(cli.out, "\"field\":\"appointment\"") != NULL &&
	    strstr(cli.out, "integer") == NULL, "appointment=42 must reach the "
	    "broker as a string (refused only because no such appointment was "
	    "scheduled), got: %.300s", cli.out);
	au_cli_free(&cli);

	coord = au_connect_quiet(b, "cite-emploi");
	timeline = timeline_of(coord, "12345");
	e2e_assert_int(2, json_array_size(timeline), "events about 12345");
	e2e_assert_int(4, jint(json_array_get(timeline, 1), "score"), "score");
	json_decref(timeline);
	relais_close(&coord);
}

/*
 * On a broker whose clock is 20 days ahead, `relais send` dates events by
 * the broker's clock, from arguments ("now" or nothing) and from JSON
 * lines (which also default occurred_at now, as arguments do).  Dated by
 * this machine's clock, they would be 20 days old to the broker.
 */
static void
test_send_dates_by_the_brokers_clock(void **state)
{
	struct e2e_broker *b = cli_broker();
	struct au_cli cli;
	relais_client *ops, *coord;
	json_t *timeline, *ev;
	char path[400];
	int64_t before;
	size_t i;

	e2e_start(b);
	ops = au_connect_quiet(b, "ops");
	before = au_clock_advance(ops, 20 * AU_DAY_MS);
	au_cli_run(b, "cs-pasteur", &cli, "send", "participant.identified",
	    "participant=p-1", "qpv=sanitas", "source=outreach", NULL);
	expect_cli_ok(&cli, "occurred_at left out");
	au_cli_free(&cli);
	au_cli_run(b, "cs-pasteur", &cli, "send", "contact.made",
	    "participant=p-1", "channel=phone", "occurred_at=now", NULL);
	expect_cli_ok(&cli, "occurred_at=now");
	au_cli_free(&cli);
	write_file(b, "lines.jsonl",
	    "{\"type\":\"contact.made\",\"participant\":\"p-1\",\"channel\":\"phone\"}\n"
	    "{\"type\":\"appointment.scheduled\",\"participant\":\"p-1\","
	    "\"appointment\":\"a-1\",\"at\":\"now\",\"occurred_at\":\"now\"}\n",
	    path, sizeof(path));
	au_cli_start(b, "cs-pasteur", path, &cli, "send", NULL);
	au_cli_wait(&cli, AU_CLI_MS);
	e2e_assert(cli.status == 0, "JSON lines without occurred_at: expected "
	    "exit status 0, got %d; stdout: %.300s; stderr: %.300s", cli.status,
	    cli.out, cli.err);
	au_cli_free(&cli);

	coord = au_connect_quiet(b, "cite-emploi");
	timeline = timeline_of(coord, "p-1");
	e2e_assert_int(4, json_array_size(timeline), "events about p-1");
	json_array_foreach(timeline, i, ev) {
		e2e_assert(jint(ev, "occurred_at") >= before, "event %zu (%s) is "
		    "dated %lld, before the broker's time %lld when it was sent",
		    i, jstr(ev, "type"), jint(ev, "occurred_at"),
		    (long long)before);
	}
	e2e_assert(jint(json_array_get(timeline, 3), "at") >= before,
	    "appointment at \"now\" is %lld, before the broker's time %lld",
	    jint(json_array_get(timeline, 3), "at"), (long long)before);
	json_decref(timeline);
	relais_close(&coord);
	relais_close(&ops);
}

/*
 * Every command answers --help with its usage on stdout, and a mistake
 * with exit status 2 and one sentence on stderr that says what to do.
 */
static void
test_every_command_has_help(void **state)
{
	static const char *const commands[] = { "keygen", "send", "listen",
	    "alerts", "participant", "participants", "inbox", "dashboard",
	    "clock", "health", "report" };
	struct e2e_broker *b = cli_broker();
	struct au_cli cli;

	e2e_start(b);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char want[64];

		snprintf(want, sizeof(want), "usage: relais %s", commands[i]);
		au_cli_run(b, "cs-pasteur", &cli, commands[i], "--help", NULL);
		e2e_assert(cli.status == 0 && strstr(cli.out, want) == cli.out,
		    "relais %s --help: expected exit status 0 and \"%s\", got %d: "
		    "%.200s", commands[i], want, cli.status, cli.out);
		au_cli_free(&cli);
		au_cli_run(b, "cs-pasteur", &cli, commands[i], "--no-such-option",
		    NULL);
		e2e_assert(cli.status == 2 && strncmp(cli.err, "relais: ", 8) == 0 &&
		    strchr(cli.err, '\n') == cli.err + strlen(cli.err) - 1,
		    "relais %s --no-such-option: expected exit status 2 and one "
		    "line \"relais: ...\", got %d: %s", commands[i], cli.status,
		    cli.err);
		au_cli_free(&cli);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_digit_strings_stay_strings,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_send_dates_by_the_brokers_clock,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_every_command_has_help, e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
