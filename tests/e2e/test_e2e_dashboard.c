/*
 * End to end, the dashboard as a coordinator uses it: a broker, a partner
 * that refers a person, `relais dashboard` as the coordinator, and
 * headless Chromium driven by tests/e2e/dashboard_browser.py (Selenium):
 *
 *   - every request without the token, or with another, is refused (403),
 *     whatever the page or action;
 *   - an alert opened by moving the broker's manual clock appears on the
 *     open page without a reload (server-sent events);
 *   - acknowledging it from the page, with a note, reaches the broker;
 *   - clicking the person in the alert's row opens their file, with the
 *     phase and referrals `relais participant --json` gives;
 *   - the indicator page shows the same figures as `relais report --format
 *     json` for the same period, and by QPV the QPVs' names;
 *   - its CSV link downloads what `relais report --format csv` prints;
 *   - the referral-flow map draws one arrow per sender and target of
 *     `relais report --flows --format json`, each saying its figures.
 *
 * The page's screenshot is kept in the test's folder as dashboard.png, and
 * copied to $RELAIS_SCREENSHOT when that is set (how the README's picture
 * is made).  Chromium runs with --no-sandbox: the tests run as root in CI.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "alerts_util.h"
#include "calendar.h"
#include "dash_http.h"
#include "harness.h"

#define BROWSER_SCRIPT  "tests/e2e/dashboard_browser.py"
#define BROWSER_MS      120000  /* Chromium's start-up is slow under load */
#define NOTE            "appel de la Mission locale prevu"

static int
http_status(int port, const char *path)
{
	char resp[256];

	return dash_http_get(port, path, resp, sizeof(resp));
}

/*
 * Every page and action, without the token and with another one: 403,
 * and an answer that carries nothing but the refusal.
 */
static void
check_token_required(int port, const char *year)
{
	static const char *const wrong[] = {
		"", "token=", "token=00000000000000000000000000000000",
		"tok=1&x=",
	};
	const char *routes[][2] = {
		{ "GET", "/" }, { "GET", "/index.html" }, { "GET", "/app.js" },
		{ "GET", "/style.css" }, { "GET", "/no-such-page" },
		{ "GET", "/api/role" }, { "GET", "/api/live" },
		{ "GET", "/api/events" }, { "GET", "/api/participant?id=p-1" },
		{ "GET", "/api/report?period=%s" },
		{ "GET", "/api/report?flows=1&period=%s" },
		{ "GET", "/api/report.csv?period=%s" },
		{ "POST", "/api/alerts/ack?id=al-1" },
		{ "POST", "/api/alerts/resolve?id=al-1" },
		{ "PUT", "/api/role" },
	};

	for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++)
		for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
			char path[256], full[320], resp[2048];
			const char *body;

			snprintf(path, sizeof(path), routes[r][1], year);
			snprintf(full, sizeof(full), "%s%s%s", path,
			    wrong[w][0] == '\0' ? "" : strchr(path, '?') ? "&" : "?",
			    wrong[w]);
			e2e_assert_int(403, dash_http_request(port, routes[r][0], full, resp,
			    sizeof(resp)), full);
			body = strstr(resp, "\r\n\r\n");
			e2e_assert(body != NULL && strncmp(body + 4, "forbidden:", 10) == 0,
			    "%s %s: the refusal only, got: %s", routes[r][0], full, resp);
		}
}

/* A partner's dashboard shows its inbox: the referral it must answer. */
static void
check_partner_dashboard(struct e2e_broker *b)
{
	struct au_cli dash;
	char url[256], path[320], resp[8192];
	const char *token;
	int port = 0;

	au_cli_start(b, "ml-tours", NULL, &dash, "dashboard", NULL);
	dash_wait_for_url(&dash, url, sizeof(url));
	sscanf(url, "http://127.0.0.1:%d/", &port);
	token = strstr(url, "token=");
	e2e_assert(port > 0 && token != NULL, "the URL: %s", url);
	snprintf(path, sizeof(path), "/api/role?%s", token);
	e2e_assert_int(200, dash_http_get(port, path, resp, sizeof(resp)), "role");
	e2e_assert(strstr(resp, "\"coordinator\":false") != NULL, "a partner's "
	    "role: %s", resp);
	snprintf(path, sizeof(path), "/api/live?%s", token);
	for (int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	    dash_http_get(port, path, resp, sizeof(resp)) != 200;) {
		e2e_assert(rl_mono_ms() < deadline, "the partner's inbox: %s", resp);
		rl_sleep_ms(50);
	}
	e2e_assert(strstr(resp, "\"to_answer\":[{") != NULL &&
	    strstr(resp, "\"referral\":\"r-1\"") != NULL, "the partner's inbox "
	    "holds r-1: %s", resp);
	kill(dash.pid, SIGTERM);
	au_cli_wait(&dash, AU_CLI_MS);
	e2e_assert_int(0, dash.status, "the partner's dashboard after SIGTERM");
	au_cli_free(&dash);
}

struct browser {
	pid_t pid;
	int out;                    /* its stdout */
	char buf[4096];
	size_t len;
};

static void
browser_start(struct browser *br, const char *url, const char *shot,
    const char *figures, const char *period)
{
	int fds[2];

	e2e_assert(access(BROWSER_SCRIPT, R_OK) == 0, "%s not found: run the "
	    "tests from the repository's top folder", BROWSER_SCRIPT);
	e2e_assert(pipe(fds) == 0, "pipe: %s", strerror(errno));
	br->pid = fork();
	e2e_assert(br->pid >= 0, "fork: %s", strerror(errno));
	if (br->pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", BROWSER_SCRIPT, url, shot,
		    figures, period, (char *)NULL);
		dprintf(1, "error: cannot run /usr/bin/python3: %s (make deps "
		    "installs python3-selenium, chromium, chromium-driver)\n",
		    strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	br->out = fds[0];
	br->len = 0;
}

/* The browser's next line, which must start with want; fails otherwise. */
static void
browser_expect(struct browser *br, const char *want, char *line, size_t len)
{
	int64_t deadline = rl_mono_ms() + BROWSER_MS;

	for (;;) {
		char *nl = memchr(br->buf, '\n', br->len);

		if (nl != NULL) {
			size_t n = (size_t)(nl - br->buf);

			snprintf(line, len, "%.*s", (int)n, br->buf);
			memmove(br->buf, nl + 1, br->len - n - 1);
			br->len -= n + 1;
			e2e_assert(strncmp(line, want, strlen(want)) == 0, "the browser: "
			    "expected \"%s\", got \"%s\"", want, line);
			return;
		}
		int64_t left = deadline - rl_mono_ms();
		struct pollfd p = { .fd = br->out, .events = POLLIN };
		e2e_assert(left > 0, "the browser said nothing for %d ms while the "
		    "test waited for \"%s\"", BROWSER_MS, want);
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(br->out, br->buf + br->len,
		    sizeof(br->buf) - 1 - br->len);
		e2e_assert(n > 0, "the browser ended while the test waited for "
		    "\"%s\" (%.*s)", want, (int)br->len, br->buf);
		br->len += (size_t)n;
	}
}

static void
browser_end(struct browser *br)
{
	int status = 0;

	if (br->pid > 0) {
		int64_t deadline = rl_mono_ms() + 30000;

		while (waitpid(br->pid, &status, WNOHANG) == 0) {
			if (rl_mono_ms() > deadline) {
				kill(br->pid, SIGKILL);
				waitpid(br->pid, &status, 0);
				break;
			}
			rl_sleep_ms(50);
		}
		br->pid = 0;
	}
	if (br->out >= 0)
		close(br->out);
	br->out = -1;
}

/* A figure as the page writes it (app.js figure()). */
static void
figure_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.2f", json_real_value(v));
	else
		snprintf(buf, len, "—");
}

/*
 * What `relais ARGS` prints as the coordinator, which must succeed; args
 * is NULL-terminated, at most 8 long.
 */
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static char *
coordinator_says(struct e2e_broker *b, const char *const *args)
{
	const char *a[8] = { NULL };
	struct au_cli cli;
	char *out;

	for (int i = 0; i < 8 && args[i] != NULL; i++)
		a[i] = args[i];
	au_cli_run(b, "cite-emploi", &cli, a[0], a[1], a[2], a[3], a[4], a[5],
	    a[6], a[7], NULL);
	e2e_assert(cli.status == 0, "relais %s: exit status %d: %s", a[0],
	    cli.status, cli.err);
	out = strdup(cli.out);
	au_cli_free(&cli);
	return out;
}

static json_t *
coordinator_json(struct e2e_broker *b, const char *const *args)
{
	char *out = coordinator_says(b, args);
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);

	e2e_assert(j != NULL, "relais %s printed no JSON: %s: %s", args[0],
	    jerr.text, out);
	free(out);
	return j;
}

/* Every column's total of `relais report --format json` equals the page's. */
static void
check_figures(struct e2e_broker *b, const char *year, const json_t *page)
{
	json_t *report, *col;
	const json_t *shown;
	size_t i;

	report = coordinator_json(b, ARGS("report", "--year", year, "--format", "json"));
	shown = json_object_get(page, "figures");
	e2e_assert_int(json_array_size(json_object_get(report, "columns")),
	    json_object_size(shown), "figures on the page");
	e2e_assert(json_integer_value(json_object_get(page, "charts")) > 0,
	    "the indicator page drew no chart");
	json_array_foreach(json_object_get(report, "columns"), i, col) {
		char want[64];
		const char *name = json_string_value(col);

		figure_text(json_array_get(json_object_get(report, "total"), i), want,
		    sizeof(want));
		e2e_assert_str(want, jstr(shown, name), name);
	}
	/* The period must hold something, or equality proves little. */
	e2e_assert(strstr(e2e_json_str(json_object_get(report, "total")), "1") !=
	    NULL, "the report is all zeros: %s",
	    e2e_json_str(json_object_get(report, "total")));
	json_decref(report);
}

/*
 * By QPV, the page heads each column with the QPV's name, as the report
 * names it; its CSV link gives what `relais report --format csv` prints.
 */
static void
check_groups_and_csv(struct e2e_broker *b, const char *year,
    const json_t *page)
{
	const json_t *groups = json_object_get(page, "groups");
	const json_t *csv = json_object_get(page, "csv"), *row;
	json_t *report = coordinator_json(b, ARGS("report", "--year", year,
	    "--by", "qpv", "--format", "json"));
	char *want;
	size_t i;

	e2e_assert_str("Sanitas", jstr(groups, "sanitas"), "the head of the "
	    "sanitas column: the QPV's name in the config");
	e2e_assert_int(json_array_size(json_object_get(report, "rows")),
	    json_object_size(groups), "columns by QPV on the page");
	json_array_foreach(json_object_get(report, "rows"), i, row)
		e2e_assert_str(jstr(row, "name"), jstr(groups, jstr(row, "group")),
		    jstr(row, "group"));
	json_decref(report);

	want = coordinator_says(b, ARGS("report", "--year", year, "--by", "qpv",
	    "--format", "csv"));
	e2e_assert_int(200, json_integer_value(json_object_get(csv, "status")),
	    "the CSV link's status");
	e2e_assert(strncmp(jstr(csv, "type"), "text/csv", 8) == 0 &&
	    strstr(jstr(csv, "disposition"), "attachment") != NULL,
	    "the CSV link downloads a CSV file: %s, %s", jstr(csv, "type"),
	    jstr(csv, "disposition"));
	e2e_assert(strncmp(jstr(csv, "text"), "from,to,group,name,"
	    "outreach.public_space,", 41) == 0, "the CSV's header row, as the "
	    "README documents it: %.80s", jstr(csv, "text"));
	e2e_assert_str(want, jstr(csv, "text"), "the CSV behind the page's link");
	free(want);
}

/* The person opened from the alert's row shows what the broker holds. */
static void
check_participant(struct e2e_broker *b, const json_t *page)
{
	const json_t *seen = json_object_get(page, "participant"), *r;
	json_t *file = coordinator_json(b, ARGS("participant", "p-1",
	    "--json"));
	const json_t *state = json_object_get(file, "state");
	const json_t *rows = json_object_get(seen, "referrals");
	size_t i;

	e2e_assert_str("p-1", jstr(seen, "id"), "the person clicked");
	e2e_assert_str(jstr(state, "phase"), jstr(seen, "phase"), "the phase "
	    "on the participant's page");
	e2e_assert_int(json_array_size(json_object_get(state, "referrals")),
	    json_array_size(rows), "referral rows on the participant's page");
	e2e_assert(json_array_size(rows) > 0, "the participant has a referral");
	json_array_foreach(json_object_get(state, "referrals"), i, r) {
		const json_t *shown = json_array_get(rows, i);
		const char *keys[] = { "id", "from", "to", "state" };

		for (size_t k = 0; k < 4; k++)
			e2e_assert_str(jstr(r, keys[k]), json_string_value(
			    json_array_get(shown, k)), keys[k]);
	}
	json_decref(file);
}

/* A flow's value by column name, 0 if it has none. */
static long long
flow_value(const json_t *columns, const json_t *flow, const char *name)
{
	const json_t *col;
	size_t i;
	long long declined = 0;

	json_array_foreach(columns, i, col) {
		const json_t *v = json_array_get(json_object_get(flow, "values"), i);

		if (strcmp(json_string_value(col), name) == 0)
			return json_integer_value(v);
		if (strcmp(name, "declined") == 0 &&
		    strncmp(json_string_value(col), "declined.", 9) == 0)
			declined += json_integer_value(v);
	}
	return declined;
}

/* One arrow per flow of `relais report --flows`, saying its figures. */
static void
check_flows(struct e2e_broker *b, const char *year, const json_t *page)
{
	const json_t *map = json_object_get(page, "flows");
	const json_t *edges = json_object_get(map, "edges"), *f;
	json_t *report = coordinator_json(b, ARGS("report", "--year", year,
	    "--flows", "--format", "json"));
	const json_t *columns = json_object_get(report, "columns");
	size_t i;

	e2e_assert(json_array_size(json_object_get(report, "flows")) > 0,
	    "the period has a referral flow");
	e2e_assert_int(json_array_size(json_object_get(report, "flows")),
	    json_array_size(edges), "arrows on the flow map");
	json_array_foreach(json_object_get(report, "flows"), i, f) {
		const json_t *edge = NULL, *e;
		char want[512];
		size_t k;

		json_array_foreach(edges, k, e)
			if (strcmp(jstr(e, "from"), jstr(f, "from")) == 0 &&
			    strcmp(jstr(e, "to"), jstr(f, "to")) == 0)
				edge = e;
		e2e_assert(edge != NULL, "no arrow from %s to %s on the map",
		    jstr(f, "from"), jstr(f, "to"));
		snprintf(want, sizeof(want), "%s → %s : %lld envoyées, %lld "
		    "acceptées, %lld refusées, %lld expirées", jstr(f, "from_name"),
		    jstr(f, "to_name"), flow_value(columns, f, "sent"),
		    flow_value(columns, f, "accepted"),
		    flow_value(columns, f, "declined"),
		    flow_value(columns, f, "expired"));
		e2e_assert_str(want, jstr(edge, "label"), "the arrow's label");
		e2e_assert_str(jstr(f, "from_name"), jstr(json_object_get(map,
		    "nodes"), jstr(f, "from")), "the sender's node");
		e2e_assert_str(jstr(f, "to_name"), jstr(json_object_get(map,
		    "nodes"), jstr(f, "to")), "the target's node");
	}
	json_decref(report);
}

static void
test_dashboard_in_chromium(void **state)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n");
	struct au_cli dash;
	struct browser br = { .out = -1 };
	relais_client *cs, *ops, *coord;
	char url[256], path[512], shot[400], figures[400], line[512], year[8];
	const char *token;
	int64_t now;
	int port = 0, y, mo, d;
	json_t *a, *seen;
	json_error_t jerr;

	e2e_agent_add(b, "cs-pasteur", "social_centre", true);
	e2e_agent_add(b, "ml-tours", "mission_locale", true);
	e2e_agent_add(b, "cite-emploi", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	cs = au_connect_quiet(b, "cs-pasteur");
	ops = au_connect_quiet(b, "ops");
	coord = au_connect_quiet(b, "cite-emploi");
	now = au_broker_now(cs);
	au_submit_ok(cs, au_ev_identified("id-1", "p-1", "sanitas", now));
	au_submit_ok(cs, au_at(e2e_ev_referral("ref-1", "p-1", "r-1", "ml-tours"),
	    now));
	cal_civil_from_days(cal_paris_day(now), &y, &mo, &d);
	snprintf(year, sizeof(year), "%04d", y);

	au_cli_start(b, "cite-emploi", NULL, &dash, "dashboard", NULL);
	dash_wait_for_url(&dash, url, sizeof(url));
	sscanf(url, "http://127.0.0.1:%d/", &port);
	token = strstr(url, "token=");
	e2e_assert(port > 0 && token != NULL, "the URL names a port and a "
	    "token: %s", url);
	check_token_required(port, year);
	snprintf(path, sizeof(path), "/app.js?%s", token);
	e2e_assert_int(200, http_status(port, path), "GET /app.js with the token");

	snprintf(shot, sizeof(shot), "%s/dashboard.png", b->dir);
	snprintf(figures, sizeof(figures), "%s/figures.json", b->dir);
	browser_start(&br, url, shot, figures, year);
	browser_expect(&br, "ready", line, sizeof(line));
	au_clock_advance(ops, 11 * AU_DAY_MS);
	browser_expect(&br, "alert ", line, sizeof(line));
	browser_expect(&br, "done", line, sizeof(line));
	browser_end(&br);

	a = au_find_alert(coord, "all", "referral_unanswered", "p-1");
	e2e_assert(a != NULL, "the broker has the alert");
	e2e_assert_str("acknowledged", jstr(a, "status"), "the alert's status "
	    "after the page acknowledged it");
	e2e_assert_str("cite-emploi", jstr(json_object_get(a, "acknowledged"),
	    "by"), "who acknowledged it");
	e2e_assert_str(NOTE, jstr(a, "note"), "the note typed in the page");
	json_decref(a);
	seen = json_load_file(figures, 0, &jerr);
	e2e_assert(seen != NULL, "the browser wrote nothing: %s", jerr.text);
	check_participant(b, seen);
	check_figures(b, year, seen);
	check_groups_and_csv(b, year, seen);
	check_flows(b, year, seen);
	json_decref(seen);
	check_partner_dashboard(b);

	if (getenv("RELAIS_SCREENSHOT") != NULL) {
		char cmd[1024];

		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", shot,
		    getenv("RELAIS_SCREENSHOT"));
		e2e_assert(system(cmd) == 0, "cannot copy the screenshot");
	}
	kill(dash.pid, SIGTERM);
	au_cli_wait(&dash, AU_CLI_MS);
	e2e_assert_int(0, dash.status, "relais dashboard's exit status after "
	    "SIGTERM");
	au_cli_free(&dash);
	relais_close(&coord);
	relais_close(&ops);
	relais_close(&cs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_dashboard_in_chromium, e2e_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
