/*
 * Helpers for the rupture-alert end-to-end tests (test_e2e_alerts.c), on
 * top of the harness (harness.h): agents that cover a list of QPVs, the
 * broker's manual clock, waiting for alerts, and running the `relais`
 * command as a child process.
 *
 * Like the harness, every function that can fail calls e2e_fail(), so it
 * must run on the test's main thread; nothing sleeps to let something
 * happen, every wait polls a condition until a deadline.
 */
#ifndef RELAIS_E2E_ALERTS_UTIL_H
#define RELAIS_E2E_ALERTS_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "harness.h"

#define AU_HOUR_MS          3600000LL
#define AU_DAY_MS           (24 * AU_HOUR_MS)
#define AU_CLI_MS           60000   /* a `relais` run, generous for sanitizers */

/* ---- agents and events --------------------------------------------- */

/*
 * An agent with its own key pair that covers only the QPVs in qpvs
 * ("rochepinard" or "a,b").  The harness writes no qpv lines, so its
 * [agent] section is appended to b->rules, which the harness writes last:
 * set any [rules] lines in b->rules before calling this.
 */
struct e2e_agent *au_agent_add_qpv(struct e2e_broker *b, const char *id,
    const char *kind, const char *qpvs);

/* Connect as id without a hello: queries and submits, takes no deliveries
 * (so a `relais alerts --follow` of the same agent keeps them). */
relais_client *au_connect_quiet(struct e2e_broker *b, const char *id);

/* ev with occurred_at set to at; returns ev. */
json_t *au_at(json_t *ev, int64_t at);

/* participant.identified in qpv, and support.started, at time at. */
json_t *au_ev_identified(const char *event_id, const char *participant,
    const char *qpv, int64_t at);
json_t *au_ev_support(const char *event_id, const char *participant,
    int64_t at);

/* Submit one event (the reference is stolen) and require status ok. */
#define au_submit_ok(c, ev) au_submit_ok_(__FILE__, __LINE__, (c), (ev))
void au_submit_ok_(const char *file, int line, relais_client *c, json_t *ev);

/* ---- the broker's clock -------------------------------------------- */

/* The broker's time, from the health query any agent may ask. */
int64_t au_broker_now(relais_client *c);

/* Move the broker's clock forward (operator, manual_clock = yes); returns
 * the broker's new time. */
int64_t au_clock_advance(relais_client *op, int64_t ms);

/* The backlog the health query reports for agent id. */
long long au_backlog(relais_client *c, const char *id);

/* Poll au_backlog until it is want; fails the test after E2E_WAIT_MS. */
#define au_wait_backlog(c, id, want) \
	au_wait_backlog_(__FILE__, __LINE__, (c), (id), (want))
void au_wait_backlog_(const char *file, int line, relais_client *c,
    const char *id, long long want);

/* ---- alerts -------------------------------------------------------- */

/* Does the JSON array hold the string s? */
bool au_array_has(const json_t *array, const char *s);

/*
 * Read deliveries until an alert with this rule, participant and change
 * ("opened", "acknowledged", "resolved"); everything read is acknowledged
 * and other deliveries are skipped.  Returns the delivery's "alert" object
 * (new reference); fails the test after timeout_ms.
 */
#define au_expect_alert(c, rule, p, change, timeout_ms) \
	au_expect_alert_(__FILE__, __LINE__, (c), (rule), (p), (change), \
	    (timeout_ms))
json_t *au_expect_alert_(const char *file, int line, relais_client *c,
    const char *rule, const char *participant, const char *change,
    int timeout_ms);

/* The alert of this rule and participant that the "alerts" query lists
 * (status "open" or "all"), or NULL.  New reference. */
json_t *au_find_alert(relais_client *coordinator, const char *status,
    const char *rule, const char *participant);

/* Poll au_find_alert(.., "open", ..) until it lists one; fails the test
 * after E2E_WAIT_MS. */
#define au_wait_listed(c, rule, p) \
	au_wait_listed_(__FILE__, __LINE__, (c), (rule), (p))
json_t *au_wait_listed_(const char *file, int line, relais_client *c,
    const char *rule, const char *participant);

/* ---- the relais command -------------------------------------------- */

struct au_cli {
	pid_t pid;                  /* 0 once reaped */
	char out_path[400];         /* its stdout and stderr, in the test folder */
	char err_path[400];
	int status;                 /* exit status, or 128 + signal */
	char *out;                  /* what it wrote, once reaped (malloc'd) */
	char *err;
};

/*
 * Start $RELAIS_BIN/relais ARGS... (NULL-terminated) as agent id: the
 * environment gives it the endpoint, the broker's key and the agent's key
 * pair (RELAIS_ENDPOINT, RELAIS_SERVER_KEY, RELAIS_KEY).  stdin_path may
 * be NULL (then /dev/null).
 */
void au_cli_start(struct e2e_broker *b, const char *id, const char *stdin_path,
    struct au_cli *r, ...) __attribute__((sentinel));

/* Wait for its end and read its output; fails the test after timeout_ms
 * (and kills it), or if its stderr holds a sanitizer report. */
void au_cli_wait(struct au_cli *r, int timeout_ms);

/* SIGKILL and reap, if still running, and read what it wrote. */
void au_cli_kill(struct au_cli *r);

/* Start, then wait up to AU_CLI_MS. */
void au_cli_run(struct e2e_broker *b, const char *id, struct au_cli *r, ...)
    __attribute__((sentinel));

void au_cli_free(struct au_cli *r);

/* Each line of text parsed as JSON, in a new array; fails the test on a
 * line that is not JSON. */
json_t *au_json_lines(const char *text);

#endif
