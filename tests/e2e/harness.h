/*
 * End-to-end test harness: runs the real relaisd binary on an ephemeral
 * loopback port in a temporary folder, and drives it through librelais or
 * through a raw CURVE DEALER socket.
 *
 * One broker per test.  e2e_broker_new() makes a temporary folder (under
 * $TMPDIR or /tmp) and the broker's key pair; e2e_agent_add() registers
 * agents (each with a fresh key pair); e2e_start() writes the config,
 * spawns $RELAIS_BIN/relaisd with its stderr appended to broker.log, and
 * waits for the ready file.  e2e_teardown() is a cmocka teardown: it stops
 * the broker with SIGTERM (and requires exit status 0), fails the test if
 * the log holds a sanitizer report, and removes the folder (kept, and
 * named, when the test failed or E2E_KEEP is set in the environment).
 * E2E_FILTER=PATTERN runs only the matching tests of a program.
 *
 * Nothing here sleeps to let something happen: every wait polls for a
 * condition until a generous deadline, and a failed wait says what it was
 * waiting for.  Failures go through e2e_fail(), which prints the expected
 * and the actual value, then the tail of the broker's log.
 *
 * The harness functions that can fail call e2e_fail() themselves, so they
 * must run on the test's main thread (cmocka's failure jumps out of the
 * test).  Worker threads use only librelais and report back.
 */
#ifndef RELAIS_E2E_HARNESS_H
#define RELAIS_E2E_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <jansson.h>
#include <cmocka.h>

#include "relais.h"
#include "rltime.h"

#define E2E_MAX_AGENTS      16
#define E2E_READY_MS        30000   /* start-up, generous for sanitizers */
#define E2E_STOP_MS         30000   /* SIGTERM to exit */
#define E2E_WAIT_MS         20000   /* default deadline for a condition */

struct e2e_agent {
	char id[49];
	char kind[32];
	char pub[41];
	char sec[41];
	bool registered;            /* listed in the broker's config */
};

struct e2e_broker {
	char dir[256];              /* the test's temporary folder */
	char conf[320];
	char log[320];              /* the broker's stderr, all runs appended */
	char ready[320];
	char data[320];
	char broker_pub[41];
	char endpoint[256];         /* of the running broker */
	char extra[2048];           /* more [broker] lines, "key = value\n";
	                               map_size_mb here replaces the harness's 256 */
	char rules[1024];           /* [rules] lines */
	/*
	 * Restart on the port the first start was given (by the system, from
	 * port *), so connected clients find the broker again by themselves.
	 */
	bool keep_port;
	/* The open-file limits relaisd starts with (0, 0: the test's own). */
	unsigned long files_soft, files_hard;
	pid_t pid;                  /* 0 when not running */
	int starts;
	size_t nagents;
	struct e2e_agent agents[E2E_MAX_AGENTS];
};

/* ---- failing with a message ---------------------------------------- */

/* Print file:line, what was checked and the message, the broker log's
 * tail, then fail the current cmocka test (does not return). */
void e2e_fail(const char *file, int line, const char *what,
    const char *fmt, ...) __attribute__((format(printf, 4, 5), noreturn));

#define e2e_assert(cond, ...) do { \
	if (!(cond)) \
		e2e_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
} while (0)

#define e2e_assert_int(expected, actual, what) do { \
	long long e2e_e_ = (long long)(expected), e2e_a_ = (long long)(actual); \
	if (e2e_e_ != e2e_a_) \
		e2e_fail(__FILE__, __LINE__, what, "expected %lld, got %lld", \
		    e2e_e_, e2e_a_); \
} while (0)

#define e2e_assert_str(expected, actual, what) do { \
	const char *e2e_e_ = (expected), *e2e_a_ = (actual); \
	if (e2e_a_ == NULL || strcmp(e2e_e_, e2e_a_) != 0) \
		e2e_fail(__FILE__, __LINE__, what, "expected \"%s\", got %s%s%s", \
		    e2e_e_, e2e_a_ ? "\"" : "", e2e_a_ ? e2e_a_ : "(null)", \
		    e2e_a_ ? "\"" : ""); \
} while (0)

/* A JSON value as a compact string, for messages (static buffer). */
const char *e2e_json_str(const json_t *j);

/* A member of a JSON object: its string (NULL if not a string), or its
 * integer (-1 if not an integer). */
const char *jstr(const json_t *o, const char *key);
long long jint(const json_t *o, const char *key);

/* The folder of relaisd and relais: $RELAIS_BIN, or "bin". */
const char *e2e_bin_dir(void);

/* Run a shell command; its exit status, its output (cut to outlen) in out. */
int e2e_run(const char *cmd, char *out, size_t outlen);

/* Environment integer, or dflt. */
long e2e_env_long(const char *name, long dflt);

/* ---- the broker ---------------------------------------------------- */

/*
 * A new broker in a fresh temporary folder, with its key pair.  extra are
 * more [broker] lines (may be NULL).  The broker becomes the "current"
 * one that e2e_fail() and e2e_teardown() look at.
 */
struct e2e_broker *e2e_broker_new(const char *extra);

/* Register (or, if !registered, only create keys for) an agent. */
struct e2e_agent *e2e_agent_add(struct e2e_broker *b, const char *id,
    const char *kind, bool registered);
struct e2e_agent *e2e_agent(struct e2e_broker *b, const char *id);

/* Write the config, spawn relaisd, wait for readiness; fails the test. */
void e2e_start(struct e2e_broker *b);

/* The same, returning false with the reason instead of failing (for a
 * test that must first stop its threads). */
bool e2e_try_start(struct e2e_broker *b, char *why, size_t whylen);

/* Rewrite the config (agents added since), send SIGHUP and wait for the
 * broker's "config.reloaded" line. */
void e2e_reload(struct e2e_broker *b);

/* SIGTERM, wait for the exit, require status 0. */
void e2e_stop(struct e2e_broker *b);
bool e2e_try_stop(struct e2e_broker *b, char *why, size_t whylen);

/* SIGKILL and reap. */
void e2e_kill(struct e2e_broker *b);

/* True if the broker process is still running. */
bool e2e_running(struct e2e_broker *b);

/* cmocka teardown for every test: stop, scan the log, remove the folder. */
int e2e_teardown(void **state);

/* Run `relaisd -c CONF --verify`; returns its exit status, output in out. */
int e2e_verify(struct e2e_broker *b, char *out, size_t outlen);

/* A whole file (malloc'd, caller frees), or NULL if it cannot be read. */
char *e2e_read_file(const char *path);

/* ---- the broker's log ---------------------------------------------- */

/* The whole log (malloc'd, caller frees). */
char *e2e_log_read(struct e2e_broker *b);

/* Number of log lines that contain every one of the NULL-terminated
 * needles. */
int e2e_log_count(struct e2e_broker *b, ...) __attribute__((sentinel));

/* Wait until e2e_log_count(b, needles...) > 0; fails the test on time-out. */
#define e2e_log_wait(b, ...) \
	e2e_log_wait_(__FILE__, __LINE__, (b), __VA_ARGS__, (const char *)NULL)
void e2e_log_wait_(const char *file, int line, struct e2e_broker *b, ...);

/* Fail if the log holds a sanitizer report. */
void e2e_log_check_sanitizers(struct e2e_broker *b);

/* ---- agents through librelais -------------------------------------- */

struct e2e_conn {
	uint32_t credit;            /* 0: broker default */
	bool send_only;
	int timeout_ms;             /* 0: 5000 */
};

/* Connect as agent id; NULL with errbuf on failure (does not fail). */
relais_client *e2e_try_connect(struct e2e_broker *b, const char *id,
    const struct e2e_conn *opts, char *errbuf, size_t errlen);

/* Connect as agent id, failing the test if it does not work. */
relais_client *e2e_connect(struct e2e_broker *b, const char *id);

/* Submit one event (the reference is stolen); returns its result. */
json_t *e2e_submit1(relais_client *c, json_t *ev);

/* Fail unless r is status ok (or duplicate if dup). */
#define e2e_expect_ok(r) e2e_expect_ok_(__FILE__, __LINE__, (r), "ok")
#define e2e_expect_dup(r) e2e_expect_ok_(__FILE__, __LINE__, (r), "duplicate")
void e2e_expect_ok_(const char *file, int line, const json_t *r,
    const char *status);

/* Fail unless r is an error result (or reply) with this code and field
 * (field NULL: any). */
#define e2e_expect_error(r, code, field) \
	e2e_expect_error_(__FILE__, __LINE__, (r), (code), (field))
void e2e_expect_error_(const char *file, int line, const json_t *r,
    int code, const char *field);

/* An integer field of the "health" query. */
long long e2e_health(relais_client *c, const char *key);

/* The next delivery, failing the test after timeout_ms. */
json_t *e2e_next_delivery(relais_client *c, int timeout_ms);

/* Events, with occurred_at = now.  New references. */
json_t *e2e_ev_referral(const char *event_id, const char *participant,
    const char *referral, const char *to);
json_t *e2e_ev_answer(const char *type, const char *event_id,
    const char *participant, const char *referral);
json_t *e2e_ev_contact(const char *event_id, const char *participant);

/* ---- a raw CURVE DEALER, for hostile input ------------------------- */

struct e2e_raw {
	void *ctx;
	void *sock;
};

/* Connect a DEALER with agent id's keys (routing_id may be NULL). */
struct e2e_raw *e2e_raw_open(struct e2e_broker *b, const char *id,
    const char *routing_id);
void e2e_raw_close(struct e2e_raw **r);

/* Send one frame / several frames / a JSON object packed as msgpack. */
void e2e_raw_send(struct e2e_raw *r, const void *buf, size_t len);
void e2e_raw_send_frames(struct e2e_raw *r, const void *const *bufs,
    const size_t *lens, size_t n);
void e2e_raw_send_json(struct e2e_raw *r, const json_t *msg);

/* The next message decoded, or NULL after timeout_ms. */
json_t *e2e_raw_recv(struct e2e_raw *r, int timeout_ms);

/* The next message whose cmd is cmd (others are dropped); fails the test
 * after timeout_ms. */
json_t *e2e_raw_expect(struct e2e_raw *r, const char *cmd, int timeout_ms);

/* Say hello and wait for the welcome. */
json_t *e2e_raw_hello(struct e2e_raw *r, uint32_t credit);

#endif
