/*
 * End to end, `relais report` (SPEC §5, §2.5) through the real broker and
 * the real command: the figures of a month with known events, what each
 * kind of agent may see, the table, the CSV (RFC 4180) and the JSON.
 * The events are dated in March 2026, in the past, so the broker's clock
 * does not matter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "harness.h"

/* 2026-03-10T09:00:00Z, a Tuesday. */
#define MAR10   INT64_C(1773133200000)
#define DAY     INT64_C(86400000)

static json_t *
outreach(const char *id, const char *qpv, int contacts, int64_t at)
{
	return au_at(json_pack("{s:s, s:s, s:s, s:s, s:i}", "event_id", id,
	    "type", "outreach.intervention", "place", "public_space", "qpv", qpv,
	    "contacts", contacts), at);
}

static json_t *
identified(const char *id, const char *p, const char *qpv, int64_t at)
{
	return au_ev_identified(id, p, qpv, at);
}

/*
 * Two QPVs; the mediator meets one person in each and refers both to the
 * Mission locale, which accepts one after two days and declines the other.
 * The association, whose display name has a comma and quotes, sends one
 * outreach.
 */
static struct e2e_broker *
report_broker(void)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_agent *asso;
	relais_client *med, *ml, *asso_c;
	size_t used;

	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	au_agent_add_qpv(b, "coord-sanitas", "coordinator", "sanitas");
	asso = e2e_agent_add(b, "asso", "association", false);
	used = strlen(b->rules);
	snprintf(b->rules + used, sizeof(b->rules) - used,
	    "\n[agent asso]\nname = Centre \"Sud\", Tours\nkind = association\n"
	    "public_key = %s\n", asso->pub);
	e2e_start(b);

	med = au_connect_quiet(b, "med");
	ml = au_connect_quiet(b, "ml");
	asso_c = au_connect_quiet(b, "asso");
	au_submit_ok(med, outreach("o1", "sanitas", 12, MAR10));
	au_submit_ok(med, outreach("o2", "europe", 3, MAR10 + DAY));
	au_submit_ok(asso_c, outreach("o3", "europe", 5, MAR10 + DAY));
	au_submit_ok(med, identified("i1", "p-1", "sanitas", MAR10));
	au_submit_ok(med, identified("i2", "p-2", "europe", MAR10));
	au_submit_ok(med, au_at(e2e_ev_referral("r1", "p-1", "ref-1", "ml"), MAR10));
	au_submit_ok(med, au_at(e2e_ev_referral("r2", "p-2", "ref-2", "ml"), MAR10));
	au_submit_ok(ml, au_at(e2e_ev_answer("referral.accepted", "a1", "p-1",
	    "ref-1"), MAR10 + 2 * DAY));
	au_submit_ok(ml, au_at(json_pack("{s:s, s:s, s:s, s:s, s:s}", "event_id",
	    "d2", "type", "referral.declined", "participant", "p-2", "referral",
	    "ref-2", "reason", "no_capacity"), MAR10 + 3 * DAY));
	relais_close(&med);
	relais_close(&ml);
	relais_close(&asso_c);
	return b;
}

/* The value of a column in a values array. */
static const json_t *
column(const json_t *data, const json_t *values, const char *name)
{
	const json_t *columns = json_object_get(data, "columns");

	for (size_t i = 0; i < json_array_size(columns); i++)
		if (strcmp(json_string_value(json_array_get(columns, i)), name) == 0)
			return json_array_get(values, i);
	e2e_fail(__FILE__, __LINE__, "report columns", "no column %s", name);
	return NULL;
}

static long long
total(const json_t *data, const char *name)
{
	return json_integer_value(column(data, json_object_get(data, "total"), name));
}

/* `relais report ARGS --format json` as id: its one JSON document. */
static json_t *
report_json(struct e2e_broker *b, const char *id, const char *a1,
    const char *a2, const char *a3, const char *a4)
{
	struct au_cli cli;
	json_t *lines, *data;

	au_cli_run(b, id, &cli, "report", "--format", "json", a1, a2, a3, a4, NULL);
	e2e_assert(cli.status == 0, "relais report as %s: exit %d, stderr: %s", id,
	    cli.status, cli.err);
	lines = au_json_lines(cli.out);
	e2e_assert(json_array_size(lines) == 1, "relais report --format json "
	    "printed %zu lines, expected 1", json_array_size(lines));
	data = json_incref(json_array_get(lines, 0));
	json_decref(lines);
	au_cli_free(&cli);
	return data;
}

static void
test_report_figures_and_visibility(void **state)
{
	struct e2e_broker *b = report_broker();
	json_t *d;
	double median;

	(void)state;
	/* The coordinator of the whole territory: every figure of the month. */
	d = report_json(b, "coord", "--month", "2026-03", NULL, NULL);
	e2e_assert_str("2026-03-01", jstr(d, "from"), "from");
	e2e_assert_str("2026-03-31", jstr(d, "to"), "to");
	e2e_assert_int(3, total(d, "outreach.public_space"), "outreach");
	e2e_assert_int(20, total(d, "outreach.contacts"), "contacts");
	e2e_assert_int(2, total(d, "identified.outreach"), "identified");
	e2e_assert_int(2, total(d, "followed"), "followed");
	e2e_assert_int(2, total(d, "referrals.sent"), "sent");
	e2e_assert_int(1, total(d, "referrals.accepted"), "accepted");
	e2e_assert_int(1, total(d, "referrals.declined.no_capacity"), "declined");
	median = json_real_value(column(d, json_object_get(d, "total"),
	    "referrals.answer_median_days"));
	e2e_assert(median > 2 * 0.91 && median < 2 * 1.09,
	    "median time to answer: %.3f days, expected 2 within 9 %%", median);
	json_decref(d);

	/* Not a calendar period: distinct people are not given. */
	d = report_json(b, "coord", "--from", "2026-03-05", "--to", "2026-03-20");
	e2e_assert(json_is_null(column(d, json_object_get(d, "total"), "followed")),
	    "followed over 05..20 March should be null");
	e2e_assert_int(2, total(d, "referrals.sent"), "sent over 05..20 March");
	json_decref(d);

	/* A coordinator of one QPV sees that QPV only. */
	d = report_json(b, "coord-sanitas", "--month", "2026-03", NULL, NULL);
	e2e_assert_int(1, total(d, "outreach.public_space"), "sanitas outreach");
	e2e_assert_int(1, total(d, "followed"), "sanitas followed");
	e2e_assert_int(1, total(d, "referrals.sent"), "sanitas referrals");
	json_decref(d);

	/* A partner sees its own activity: the Mission locale sent nothing. */
	d = report_json(b, "ml", "--month", "2026-03", "--by", "qpv");
	e2e_assert_int(0, total(d, "outreach.public_space"), "ml outreach");
	e2e_assert_int(0, total(d, "referrals.sent"), "ml referrals sent");
	e2e_assert_int(2, total(d, "followed"), "ml followed (it answered both)");
	json_decref(d);

	/* The operator: totals, by month at most. */
	d = report_json(b, "ops", "--year", "2026", "--by", "month");
	e2e_assert_int(12, (long long)json_array_size(json_object_get(d, "rows")),
	    "months in 2026");
	e2e_assert_int(2, total(d, "followed"), "followed in 2026");
	json_decref(d);
	{
		struct au_cli cli;

		au_cli_run(b, "ops", &cli, "report", "--year", "2026", "--by",
		    "qpv", NULL);
		e2e_assert(cli.status == 1 && strstr(cli.err, "operators") != NULL,
		    "report --by qpv as an operator: expected exit 1 and a sentence "
		    "about operators, got %d: %s", cli.status, cli.err);
		au_cli_free(&cli);
		au_cli_run(b, "coord-sanitas", &cli, "report", "--year", "2026",
		    "--qpv", "europe", NULL);
		e2e_assert(cli.status == 1 && strstr(cli.err, "territory") != NULL,
		    "a QPV outside the coordinator's territory: expected exit 1, "
		    "got %d: %s", cli.status, cli.err);
		au_cli_free(&cli);
		au_cli_run(b, "coord", &cli, "report", "--by", "qpv", NULL);
		e2e_assert(cli.status == 2 && strstr(cli.err, "period") != NULL,
		    "report without a period: expected exit 2, got %d: %s",
		    cli.status, cli.err);
		au_cli_free(&cli);
	}
}

static void
test_report_csv_table_and_flows(void **state)
{
	struct e2e_broker *b = report_broker();
	struct au_cli cli;
	json_t *d;
	const json_t *flows;
	const char *title = "Indicators from 2026-03-01 to 2026-03-31, "
	    "QPV Sanitas (sanitas)\n";

	(void)state;
	au_cli_run(b, "coord", &cli, "report", "--month", "2026-03", "--by",
	    "agent", "--format", "csv", NULL);
	e2e_assert(cli.status == 0, "report --format csv: exit %d: %s",
	    cli.status, cli.err);
	e2e_assert(strncmp(cli.out, "from,to,group,name,outreach.public_space,",
	    41) == 0, "CSV header: %.80s", cli.out);
	e2e_assert(strstr(cli.out, "\r\n2026-03-01,2026-03-31,asso,"
	    "\"Centre \"\"Sud\"\", Tours\",1,") != NULL,
	    "the association's row, its name quoted as RFC 4180 says: %s", cli.out);
	e2e_assert(strstr(cli.out, "\r\n2026-03-01,2026-03-31,total,Total,3,") != NULL,
	    "the total row: %s", cli.out);
	au_cli_free(&cli);

	/* QPVs are named as the config's [qpv] list names them, not by code. */
	au_cli_run(b, "coord", &cli, "report", "--month", "2026-03", "--by", "qpv",
	    "--format", "table", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out, "referrals.sent") != NULL &&
	    strstr(cli.out, "  Europe  ") != NULL &&
	    strstr(cli.out, "  Sanitas  ") != NULL &&
	    strstr(cli.out, "Total") != NULL, "report --format table: %s", cli.out);
	e2e_assert(strstr(cli.out, "sanitas") == NULL &&
	    strstr(cli.out, "europe") == NULL, "the table shows QPV codes, not "
	    "their names: %s", cli.out);
	au_cli_free(&cli);
	au_cli_run(b, "coord", &cli, "report", "--month", "2026-03", "--qpv",
	    "sanitas", "--format", "table", NULL);
	e2e_assert(cli.status == 0 && strncmp(cli.out, title, strlen(title)) == 0,
	    "the title names the QPV: %s", cli.out);
	au_cli_free(&cli);
	au_cli_run(b, "coord", &cli, "report", "--month", "2026-03", "--by", "qpv",
	    "--format", "csv", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out,
	    "\r\n2026-03-01,2026-03-31,sanitas,Sanitas,1,") != NULL &&
	    strstr(cli.out, "\r\n2026-03-01,2026-03-31,europe,Europe,2,") != NULL,
	    "the CSV gives each QPV's code and name: %s", cli.out);
	au_cli_free(&cli);
	d = report_json(b, "coord", "--month", "2026-03", "--qpv", "sanitas");
	e2e_assert_str("Sanitas", jstr(d, "qpv_name"), "qpv_name in the JSON");
	json_decref(d);

	d = report_json(b, "coord", "--month", "2026-03", "--flows", NULL);
	flows = json_object_get(d, "flows");
	e2e_assert_int(1, (long long)json_array_size(flows), "flows");
	e2e_assert_str("med", jstr(json_array_get(flows, 0), "from"), "flow from");
	e2e_assert_str("ml", jstr(json_array_get(flows, 0), "to"), "flow to");
	e2e_assert_int(2, json_integer_value(column(d, json_object_get(
	    json_array_get(flows, 0), "values"), "sent")), "flow sent");
	json_decref(d);

	au_cli_run(b, "ml", &cli, "report", "--month", "2026-03", "--flows",
	    "--format", "csv", NULL);
	e2e_assert(cli.status == 0 && strstr(cli.out, "\r\n2026-03-01,2026-03-31,"
	    "med,Test agent med,ml,Test agent ml,2,1,1,0,0,0,0,0,0,0,0,") != NULL,
	    "the target sees the flow to it: %s", cli.out);
	au_cli_free(&cli);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_report_figures_and_visibility,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_report_csv_table_and_flows,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
