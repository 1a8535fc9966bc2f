/*
 * Helpers for the rupture-alert end-to-end tests (alerts_util.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alerts_util.h"

#define POLL_MS     20

static bool
str_is(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

/* ------------------------------------------------------------------ */
/* Agents and events                                                   */

struct e2e_agent *
au_agent_add_qpv(struct e2e_broker *b, const char *id, const char *kind,
    const char *qpvs)
{
	struct e2e_agent *a = e2e_agent_add(b, id, kind, false);
	size_t used = strlen(b->rules);
	int n;

	n = snprintf(b->rules + used, sizeof(b->rules) - used,
	    "\n[agent %s]\nname = Test agent %s\nkind = %s\npublic_key = %s\n"
	    "qpv = %s\n", id, id, kind, a->pub, qpvs);
	e2e_assert(n > 0 && (size_t)n < sizeof(b->rules) - used,
	    "no room left in the harness's rules buffer (%zu bytes) for agent %s",
	    sizeof(b->rules), id);
	return a;
}

relais_client *
au_connect_quiet(struct e2e_broker *b, const char *id)
{
	struct e2e_conn quiet = { .send_only = true };
	char err[512];
	relais_client *c = e2e_try_connect(b, id, &quiet, err, sizeof(err));

	if (c == NULL)
		e2e_fail(__FILE__, __LINE__, "relais_connect (send_only)",
		    "agent %s could not connect to %s: %s", id, b->endpoint, err);
	return c;
}

json_t *
au_at(json_t *ev, int64_t at)
{
	json_object_set_new(ev, "occurred_at", json_integer(at));
	return ev;
}

json_t *
au_ev_identified(const char *event_id, const char *participant,
    const char *qpv, int64_t at)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "event_id", event_id,
	    "type", "participant.identified", "occurred_at", (json_int_t)at,
	    "participant", participant, "qpv", qpv, "source", "outreach");
}

json_t *
au_ev_support(const char *event_id, const char *participant, int64_t at)
{
	return json_pack("{s:s, s:s, s:I, s:s}", "event_id", event_id,
	    "type", "support.started", "occurred_at", (json_int_t)at,
	    "participant", participant);
}

void
au_submit_ok_(const char *file, int line, relais_client *c, json_t *ev)
{
	char what[256];
	json_t *r;

	snprintf(what, sizeof(what), "%s", e2e_json_str(ev));
	r = e2e_submit1(c, ev);
	if (!str_is(jstr(r, "status"), "ok")) {
		char got[1024];

		snprintf(got, sizeof(got), "%s", e2e_json_str(r));
		json_decref(r);
		e2e_fail(file, line, "submit", "expected status ok for %s, got %s",
		    what, got);
	}
	json_decref(r);
}

/* ------------------------------------------------------------------ */
/* The broker's clock                                                  */

int64_t
au_broker_now(relais_client *c)
{
	return (int64_t)e2e_health(c, "time");
}

int64_t
au_clock_advance(relais_client *op, int64_t ms)
{
	json_t *args = json_pack("{s:I}", "advance_ms", (json_int_t)ms);
	json_t *r = relais_query(op, "clock", args, 20000);
	json_t *now;
	int64_t t;

	json_decref(args);
	if (r == NULL)
		e2e_fail(__FILE__, __LINE__, "clock query",
		    "expected the clock to move by %lld ms, got: %s",
		    (long long)ms, relais_errmsg(op));
	now = json_object_get(r, "now");
	e2e_assert(json_is_integer(now), "the clock query gave no \"now\": %s",
	    e2e_json_str(r));
	t = json_integer_value(now);
	json_decref(r);
	return t;
}

long long
au_backlog(relais_client *c, const char *id)
{
	json_t *h = relais_query(c, "health", NULL, 20000), *a;
	long long n = -1;
	size_t i;

	if (h == NULL)
		e2e_fail(__FILE__, __LINE__, "health query", "expected a result, "
		    "got: %s", relais_errmsg(c));
	json_array_foreach(json_object_get(h, "agents"), i, a)
		if (str_is(jstr(a, "id"), id) &&
		    json_is_integer(json_object_get(a, "backlog")))
			n = json_integer_value(json_object_get(a, "backlog"));
	json_decref(h);
	e2e_assert(n >= 0, "the health query lists no backlog for %s", id);
	return n;
}

void
au_wait_backlog_(const char *file, int line, relais_client *c,
    const char *id, long long want)
{
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	long long n;

	while ((n = au_backlog(c, id)) != want) {
		if (rl_mono_ms() > deadline)
			e2e_fail(file, line, "backlog", "expected a backlog of %lld for "
			    "%s within %d ms; it stays at %lld", want, id, E2E_WAIT_MS,
			    n);
		rl_sleep_ms(POLL_MS);
	}
}

/* ------------------------------------------------------------------ */
/* Alerts                                                              */

bool
au_array_has(const json_t *array, const char *s)
{
	const json_t *v;
	size_t i;

	json_array_foreach(array, i, v)
		if (str_is(json_string_value(v), s))
			return true;
	return false;
}

static bool
alert_matches(const json_t *a, const char *rule, const char *participant)
{
	return str_is(jstr(a, "rule"), rule) &&
	    str_is(jstr(a, "participant"), participant);
}

json_t *
au_expect_alert_(const char *file, int line, relais_client *c,
    const char *rule, const char *participant, const char *change,
    int timeout_ms)
{
	int64_t deadline = rl_mono_ms() + timeout_ms;
	char seen[1024] = "nothing";

	for (;;) {
		int64_t left = deadline - rl_mono_ms();
		json_t *d, *a;

		if (left <= 0)
			e2e_fail(file, line, "alert delivery",
			    "expected a \"%s\" %s alert for %s within %d ms; the last "
			    "delivery was %s", change, rule, participant, timeout_ms,
			    seen);
		d = relais_next_delivery(c, (int)left);
		if (d == NULL) {
			if (strcmp(relais_errmsg(c), "timeout") == 0)
				continue;
			e2e_fail(file, line, "alert delivery",
			    "expected a \"%s\" %s alert for %s; the client failed: %s",
			    change, rule, participant, relais_errmsg(c));
		}
		relais_ack(c, (uint64_t)json_integer_value(json_object_get(d, "seq")));
		a = json_object_get(d, "alert");
		if (str_is(jstr(d, "kind"), "alert") && alert_matches(a, rule,
		    participant) && str_is(jstr(a, "change"), change)) {
			json_incref(a);
			json_decref(d);
			return a;
		}
		snprintf(seen, sizeof(seen), "%s", e2e_json_str(d));
		json_decref(d);
	}
}

json_t *
au_find_alert(relais_client *coordinator, const char *status,
    const char *rule, const char *participant)
{
	json_t *found = NULL;
	char after[32] = "";

	/* Page after page (1000 each) until the last. */
	for (;;) {
		json_t *args = json_pack("{s:s, s:s}", "status", status, "rule", rule);
		json_t *list, *a;
		size_t i, n;

		if (after[0] != '\0')
			json_object_set_new(args, "after", json_string(after));
		list = relais_query(coordinator, "alerts", args, 20000);
		json_decref(args);
		if (list == NULL)
			e2e_fail(__FILE__, __LINE__, "alerts query", "expected a list "
			    "of alerts, got: %s", relais_errmsg(coordinator));
		e2e_assert(json_is_array(list), "the alerts query gave %s, not a "
		    "list", e2e_json_str(list));
		json_array_foreach(list, i, a)
			if (alert_matches(a, rule, participant)) {
				json_decref(found);
				found = json_incref(a);
			}
		n = json_array_size(list);
		if (n == 1000)
			snprintf(after, sizeof(after), "%s",
			    jstr(json_array_get(list, n - 1), "id"));
		json_decref(list);
		if (n < 1000)
			return found;
	}
}

json_t *
au_wait_listed_(const char *file, int line, relais_client *c,
    const char *rule, const char *participant)
{
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;
	json_t *a;

	while ((a = au_find_alert(c, "open", rule, participant)) == NULL) {
		if (rl_mono_ms() > deadline)
			e2e_fail(file, line, "alerts query",
			    "expected an open %s alert for %s within %d ms; none is "
			    "listed", rule, participant, E2E_WAIT_MS);
		rl_sleep_ms(POLL_MS);
	}
	return a;
}

/* ------------------------------------------------------------------ */
/* The relais command                                                  */

static const char *
relais_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/relais", e2e_bin_dir());
	return buf;
}

static char *
slurp(const char *path)
{
	char *text = e2e_read_file(path);

	return text != NULL ? text : strdup("");
}

/* In the child: redirect, set the agent's environment, exec. */
static void
exec_relais(struct e2e_broker *b, const char *id, const char *stdin_path,
    const struct au_cli *r, char **argv)
{
	char key[400], server[400];
	int in = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
	int out = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int err = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	/* Never outlive the test program, whatever happens to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (in < 0 || out < 0 || err < 0)
		_exit(126);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	snprintf(key, sizeof(key), "%s/agent-%s", b->dir, id);
	snprintf(server, sizeof(server), "%s/broker.pub", b->dir);
	setenv("RELAIS_ENDPOINT", b->endpoint, 1);
	setenv("RELAIS_SERVER_KEY", server, 1);
	setenv("RELAIS_KEY", key, 1);
	execv(argv[0], argv);
	dprintf(2, "e2e: cannot run %s: %s (set RELAIS_BIN)\n", argv[0],
	    strerror(errno));
	_exit(127);
}

static void
cli_start_v(struct e2e_broker *b, const char *id, const char *stdin_path,
    struct au_cli *r, va_list ap)
{
	static unsigned runs;
	char path[512];
	char *argv[32];
	const char *arg;
	size_t n = 0;
	unsigned run = ++runs;

	memset(r, 0, sizeof(*r));
	argv[n++] = (char *)relais_path(path, sizeof(path));
	while ((arg = va_arg(ap, const char *)) != NULL) {
		e2e_assert(n < sizeof(argv) / sizeof(argv[0]) - 1,
		    "too many arguments for relais");
		argv[n++] = (char *)arg;
	}
	argv[n] = NULL;
	snprintf(r->out_path, sizeof(r->out_path), "%s/cli-%u.out", b->dir, run);
	snprintf(r->err_path, sizeof(r->err_path), "%s/cli-%u.err", b->dir, run);
	r->pid = fork();
	e2e_assert(r->pid >= 0, "fork: %s", strerror(errno));
	if (r->pid == 0)
		exec_relais(b, id, stdin_path, r, argv);
}

void
au_cli_start(struct e2e_broker *b, const char *id, const char *stdin_path,
    struct au_cli *r, ...)
{
	va_list ap;

	va_start(ap, r);
	cli_start_v(b, id, stdin_path, r, ap);
	va_end(ap);
}

static void
check_cli_sanitizers(const struct au_cli *r)
{
	static const char *const bad[] = {
		"ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *hit = strstr(r->err, bad[i]);

		if (hit != NULL)
			e2e_fail(__FILE__, __LINE__, "no sanitizer report from relais",
			    "found \"%s\" in %s: %.900s", bad[i], r->err_path, hit);
	}
}

/* After the child's end: its status and what it wrote. */
static void
cli_collect(struct au_cli *r, int status)
{
	r->pid = 0;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
	    128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	free(r->out);
	free(r->err);
	r->out = slurp(r->out_path);
	r->err = slurp(r->err_path);
	check_cli_sanitizers(r);
}

void
au_cli_wait(struct au_cli *r, int timeout_ms)
{
	int64_t deadline = rl_mono_ms() + timeout_ms;
	int status;
	pid_t got;

	e2e_assert(r->pid > 0, "no relais command is running");
	while ((got = waitpid(r->pid, &status, WNOHANG)) == 0) {
		if (rl_mono_ms() > deadline) {
			au_cli_kill(r);
			e2e_fail(__FILE__, __LINE__, "relais command",
			    "expected it to end within %d ms; it was killed (output in "
			    "%s)", timeout_ms, r->out_path);
		}
		rl_sleep_ms(10);
	}
	e2e_assert(got == r->pid, "waitpid: %s", strerror(errno));
	cli_collect(r, status);
}

void
au_cli_kill(struct au_cli *r)
{
	int status;

	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, &status, 0) == -1 && errno == EINTR)
		;
	cli_collect(r, status);
}

void
au_cli_run(struct e2e_broker *b, const char *id, struct au_cli *r, ...)
{
	va_list ap;

	va_start(ap, r);
	cli_start_v(b, id, NULL, r, ap);
	va_end(ap);
	au_cli_wait(r, AU_CLI_MS);
}

void
au_cli_free(struct au_cli *r)
{
	au_cli_kill(r);
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

json_t *
au_json_lines(const char *text)
{
	json_t *lines = json_array();
	const char *p = text;

	while (p != NULL && *p != '\0') {
		size_t len = strcspn(p, "\n");
		json_error_t jerr;
		json_t *j = json_loadb(p, len, 0, &jerr);

		if (j == NULL) {
			json_decref(lines);
			e2e_fail(__FILE__, __LINE__, "JSON line",
			    "expected one JSON value per line, got \"%.*s\": %s",
			    (int)(len < 300 ? len : 300), p, jerr.text);
		}
		json_array_append_new(lines, j);
		p += len;
		if (*p == '\n')
			p++;
	}
	return lines;
}
