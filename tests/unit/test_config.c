/*
 * config.c: the example config, every kind of error with its file:line,
 * all-or-nothing loading, bounds, the rule off switch, QPV coverage and
 * which options a reload applies.
 */
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[PATH_MAX];
static char conf_path[PATH_MAX + 32];
static char err[16384];

/* Valid Z85 keys nobody holds the secret of. */
#define KEY_A "placeholder-a..........................."
#define KEY_B "placeholder-b..........................."
#define KEY_C "placeholder-c..........................."

/* The smallest valid file: two required broker keys, one agent. */
#define BROKER "[broker]\n" \
	"secret_key_file = keys/broker.key\n" \
	"public_key_file = keys/broker.pub\n"
#define AGENT_A "[agent ml-tours]\n" \
	"name = Mission locale\n" \
	"kind = mission_locale\n" \
	"public_key = " KEY_A "\n"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "%s/relais-test-config-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(conf_path, sizeof conf_path, "%s/relais.conf", dir);
	return 0;
}

static int teardown(void **state)
{
	return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/*
 * Every config lists the territory's QPVs.  A test about other sections
 * gets this list after its own text, so the line numbers it expects stay
 * those of the text it wrote; a test about [qpv] writes its own.
 */
#define TERRITORY "\n[qpv]\nsanitas = Sanitas\nrochepinard = Rochepinard\n" \
	"fontaines = Fontaines\nrives-du-cher = Rives du Cher\n" \
	"QN_37.261 = Code in another style\n"

/* Write text as the config file, as is, and load it. */
static struct config *load_exactly(const char *text)
{
	FILE *f = fopen(conf_path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	err[0] = '\0';
	return config_load(conf_path, err, sizeof err);
}

/* Write text as the config file, with TERRITORY unless it has a [qpv]. */
static struct config *load(const char *text)
{
	char *full;
	struct config *c;

	if (strstr(text, "[qpv]") != NULL)
		return load_exactly(text);
	full = malloc(strlen(text) + sizeof TERRITORY);
	assert_non_null(full);
	strcpy(full, text);
	strcat(full, TERRITORY);
	c = load_exactly(full);
	free(full);
	return c;
}

static void expect_ok(const char *text)
{
	struct config *c = load(text);
	if (!c)
		fail_msg("expected the config to load, got:\n%s", err);
	config_free(&c);
}

/* The file must be refused, with an error line that starts with
 * "relais.conf:LINE: " (or "relais.conf: " for line 0) and contains msg. */
static void expect_refused(struct config *c, int line, const char *msg)
{
	char prefix[64];

	if (line > 0)
		snprintf(prefix, sizeof prefix, "/relais.conf:%d: ", line);
	else
		snprintf(prefix, sizeof prefix, "/relais.conf: ");
	if (c) {
		config_free(&c);
		fail_msg("expected the error \"%s...%s\", but the config loaded", prefix, msg);
	}
	for (const char *l = err; *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		const char *p = strstr(l, prefix);
		const char *m = strstr(l, msg);
		if (p && m && (size_t)(p - l) < len && (size_t)(m - l) + strlen(msg) <= len)
			return;
		l += len + (end != NULL);
	}
	fail_msg("expected the error \"%s...%s\", got:\n%s", prefix, msg, err);
}

static void expect_error(const char *text, int line, const char *msg)
{
	expect_refused(load(text), line, msg);
}

/* The same, for text loaded without the TERRITORY list. */
static void expect_error_exactly(const char *text, int line, const char *msg)
{
	expect_refused(load_exactly(text), line, msg);
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ------------------------------------------------------------------- */

static void example_config_path(char *out, size_t size)
{
	/* __FILE__ is tests/unit/test_config.c, relative to the repository
	 * root or absolute; the example is config/relais.conf beside it. */
	const char *suffix = "tests/unit/test_config.c";
	size_t root = strlen(__FILE__) - strlen(suffix);
	snprintf(out, size, "%.*sconfig/relais.conf", (int)root, __FILE__);
}

static void test_example_config_loads(void **state)
{
	char path[PATH_MAX];
	example_config_path(path, sizeof path);

	struct config *c = config_load(path, err, sizeof err);
	if (!c)
		fail_msg("%s does not load:\n%s", path, err);

	assert_string_equal(c->listen, "tcp://127.0.0.1:7450");
	assert_int_equal(c->data_dir[0], '/');
	assert_non_null(strstr(c->data_dir, "/var/data"));
	assert_null(strstr(c->data_dir, ".."));
	assert_non_null(strstr(c->secret_key_file, "/var/keys/broker.key"));
	assert_non_null(strstr(c->public_key_file, "/var/keys/broker.pub"));
	assert_false(c->manual_clock);
	assert_string_equal(c->log_level, "info");

	static const uint32_t defaults[RULE__COUNT] = { 10, 30, 10, 15, 45, 2, 7, 30 };
	for (int r = 0; r < RULE__COUNT; r++) {
		assert_true(c->rules[r].enabled);
		assert_int_equal(c->rules[r].threshold, defaults[r]);
	}

	static const char *const ids[] = {
		"aci-jardins", "cite-emploi", "coord-sanitas", "cs-pasteur",
		"ft-tours-nord", "mediateurs-sanitas", "ml-tours", "ops", "plie-tours",
	};
	assert_int_equal(c->nagents, 9);
	for (size_t i = 0; i < c->nagents; i++) {
		assert_string_equal(c->agents[i].id, ids[i]);      /* sorted */
		assert_ptr_equal(config_agent_by_id(c, ids[i]), &c->agents[i]);
		assert_ptr_equal(config_agent_by_key(c, c->agents[i].public_key),
				 &c->agents[i]);
	}
	assert_null(config_agent_by_id(c, "nobody"));
	assert_null(config_agent_by_key(c, KEY_A));

	const struct agent *cite = config_agent_by_id(c, "cite-emploi");
	const struct agent *coord = config_agent_by_id(c, "coord-sanitas");
	assert_int_equal(cite->kind, AK_COORDINATOR);
	assert_int_equal(coord->kind, AK_COORDINATOR);
	assert_true(agent_covers_qpv(cite, "rochepinard", 11));
	assert_true(agent_covers_qpv(coord, "sanitas", 7));
	assert_false(agent_covers_qpv(coord, "rochepinard", 11));
	assert_int_equal(config_agent_by_id(c, "ops")->kind, AK_OPERATOR);
	assert_int_equal(config_agent_by_id(c, "aci-jardins")->kind, AK_IAE);
	assert_string_equal(config_agent_by_id(c, "mediateurs-sanitas")->qpv[0], "sanitas");

	/* The territory's QPVs, sorted by code, with their names. */
	assert_true(c->nqpvs >= 4);
	assert_true(config_qpv_known(c, "sanitas", 7));
	assert_true(config_qpv_known(c, "europe-chateaubriand", 20));
	assert_true(config_qpv_known(c, "maryse-bastie", 13));
	assert_true(config_qpv_known(c, "rives-du-cher", 13));
	for (size_t i = 1; i < c->nqpvs; i++)
		assert_true(strcmp(c->qpvs[i - 1].code, c->qpvs[i].code) < 0);
	for (size_t i = 0; i < c->nqpvs; i++)
		if (strcmp(c->qpvs[i].code, "maryse-bastie") == 0)
			assert_string_equal(c->qpvs[i].name, "Maryse Bastié");

	config_free(&c);
	assert_null(c);
	config_free(&c);            /* safe twice */
	config_free(NULL);
}

static void test_defaults(void **state)
{
	struct config *c = load(BROKER);
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->listen, "tcp://127.0.0.1:7450");
	assert_int_equal(c->map_size_mb, 1024);
	assert_int_equal(c->max_batch, 256);
	assert_int_equal(c->max_connections, 64);
	assert_int_equal(c->max_connections_per_agent, 4);
	assert_int_equal(c->default_credit, 100);
	assert_int_equal(c->heartbeat_ms, 2000);
	assert_int_equal(c->redeliver_ms, 1000);
	assert_int_equal(c->redeliver_max_ms, 60000);
	assert_int_equal(c->max_attempts, 10);
	assert_int_equal(c->retention_days, 730);
	assert_string_equal(c->log_level, "info");
	assert_false(c->manual_clock);
	assert_string_equal(c->durability, "wal");
	assert_int_equal(c->wal_size_mb, 64);
	assert_int_equal(c->checkpoint_ms, 1000);
	assert_int_equal(c->nagents, 0);
	assert_null(config_agent_by_id(c, "ml-tours"));

	char want[PATH_MAX + 32];
	char real[PATH_MAX];
	assert_non_null(realpath(dir, real));
	snprintf(want, sizeof want, "%s/var/data", real);
	assert_string_equal(c->data_dir, want);
	snprintf(want, sizeof want, "%s/keys/broker.key", real);
	assert_string_equal(c->secret_key_file, want);
	assert_string_equal(c->path, conf_path);
	config_free(&c);
}

static void test_paths(void **state)
{
	struct config *c = load("[broker]\n"
				"secret_key_file = /etc/relais/broker.key\n"
				"public_key_file = ./keys/../broker.pub\n"
				"data_dir = ../../data\n");
	if (!c)
		fail_msg("%s", err);

	char real[PATH_MAX], want[PATH_MAX + 32];
	assert_non_null(realpath(dir, real));
	assert_string_equal(c->secret_key_file, "/etc/relais/broker.key");
	snprintf(want, sizeof want, "%s/keys/../broker.pub", real);
	assert_string_equal(c->public_key_file, want);
	*strrchr(real, '/') = '\0';
	*strrchr(real, '/') = '\0';
	snprintf(want, sizeof want, "%s/data", real);
	assert_string_equal(c->data_dir, want);
	config_free(&c);
}

static void test_all_values(void **state)
{
	struct config *c = load(BROKER
				"listen = ipc:///run/relais.sock\n"
				"map_size_mb = 16\n"
				"max_batch = 10000\n"
				"default_credit = 1\n"
				"heartbeat_ms = 60000\n"
				"redeliver_ms = 10\n"
				"redeliver_max_ms = 10\n"
				"max_attempts = 1000\n"
				"retention_days = 1\n"
				"log_level = debug\n"
				"manual_clock = YES\n");
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->listen, "ipc:///run/relais.sock");
	assert_int_equal(c->map_size_mb, 16);
	assert_int_equal(c->max_batch, 10000);
	assert_int_equal(c->default_credit, 1);
	assert_int_equal(c->heartbeat_ms, 60000);
	assert_int_equal(c->redeliver_ms, 10);
	assert_int_equal(c->redeliver_max_ms, 10);
	assert_int_equal(c->max_attempts, 1000);
	assert_int_equal(c->retention_days, 1);
	assert_string_equal(c->log_level, "debug");
	assert_true(c->manual_clock);
	config_free(&c);
}

/* One bad [broker] line after the three lines of BROKER: line 4. */
static void test_bounds(void **state)
{
	static const struct { const char *line; const char *msg; } bad[] = {
		{ "map_size_mb = 15", "map_size_mb = 15: expected a whole number from 16 to 1048576" },
		{ "map_size_mb = 1048577", "expected a whole number from 16 to 1048576" },
		{ "max_batch = 0", "max_batch = 0: expected a whole number from 1 to 10000" },
		{ "max_batch = -1", "max_batch = -1: expected a whole number" },
		{ "max_batch = +5", "max_batch = +5: expected a whole number" },
		{ "max_batch = 12abc", "max_batch = 12abc: expected a whole number" },
		{ "max_batch = 1 2", "max_batch = 1 2: expected a whole number" },
		{ "max_batch =", "max_batch = : expected a whole number" },
		{ "max_batch = 99999999999999999999999", "expected a whole number from 1 to 10000" },
		{ "default_credit = 10001", "default_credit = 10001: expected a whole number from 1 to 10000" },
		{ "heartbeat_ms = 99", "heartbeat_ms = 99: expected a whole number from 100 to 60000" },
		{ "max_attempts = 1001", "expected a whole number from 1 to 1000" },
		{ "retention_days = 0", "retention_days = 0: expected a whole number from 1 to 36500" },
		{ "log_level = verbose", "log_level = verbose: expected one of debug, info, warn, error" },
		{ "listen = http://127.0.0.1:80", "listen = http://127.0.0.1:80: expected an endpoint starting with tcp:// or ipc://" },
		{ "listen = tcp://", "the endpoint has no address" },
		{ "listen =", "listen: expected a value of 1 to 255 bytes" },
		{ "manual_clock = maybe", "manual_clock = maybe: expected yes or no" },
		{ "data_dir =", "data_dir: expected a file or folder path" },
		{ "durability = fsync", "durability = fsync: expected commit (each pass is an LMDB commit" },
		{ "wal_size_mb = 0", "wal_size_mb = 0: expected a whole number from 1 to 65536" },
		{ "checkpoint_ms = 9", "checkpoint_ms = 9: expected a whole number from 10 to 600000" },
	};
	char text[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, BROKER "%s\n", bad[i].line);
		expect_error(text, 4, bad[i].msg);
	}
	expect_ok(BROKER "map_size_mb = 1048576\n");
	expect_ok(BROKER "max_batch = 1\n");
	expect_ok(BROKER "manual_clock = false\nlog_level = error\n");
	expect_ok(BROKER "durability = wal\nwal_size_mb = 1\ncheckpoint_ms = 600000\n");
	expect_ok(BROKER "durability = commit\n");
}

static void test_map_size_max_order(void **state)
{
	struct config *c;

	expect_error(BROKER "map_size_mb = 64\nmap_size_max_mb = 32\n", 5,
		     "map_size_max_mb (32) is below map_size_mb (64)");
	/* Unset, the map may grow to 64 GiB, or stays as big as it starts. */
	expect_ok(BROKER "map_size_mb = 64\n");
	c = load(BROKER "map_size_mb = 64\n");
	assert_non_null(c);
	assert_int_equal(c->map_size_max_mb, 65536);
	config_free(&c);
	c = load(BROKER "map_size_mb = 100000\n");
	assert_non_null(c);
	assert_int_equal(c->map_size_max_mb, 100000);
	config_free(&c);
}

static void test_redeliver_order(void **state)
{
	expect_error(BROKER "redeliver_ms = 5000\nredeliver_max_ms = 4000\n", 5,
		     "redeliver_max_ms (4000) is below redeliver_ms (5000)");
	/* Only redeliver_ms is set: the default maximum is below it. */
	expect_error(BROKER "redeliver_ms = 70000\n", 1,
		     "redeliver_max_ms (60000) is below redeliver_ms (70000)");
}

static void test_unknown_key_and_section(void **state)
{
	expect_error(BROKER "lisen = tcp://127.0.0.1:1\n", 4,
		     "unknown key 'lisen' in [broker]; the keys are: listen, data_dir, "
		     "secret_key_file, public_key_file, map_size_mb");
	expect_error(BROKER "[broker-extra]\nx = 1\n", 4,
		     "unknown section [broker-extra]; the sections are [broker], [rules], [qpv] "
		     "and one [agent ID] per agent");
	expect_error(BROKER AGENT_A "colour = blue\n", 8,
		     "unknown key 'colour' in [agent ml-tours]; the keys are: name, kind, "
		     "public_key, qpv");
	expect_error("listen = tcp://127.0.0.1:1\n" BROKER, 1,
		     "listen is outside any section: put it under [broker]");
	/* An unknown section's keys are not reported one by one. */
	struct config *c = load(BROKER "[nope]\na = 1\nb = 2\n");
	assert_null(c);
	assert_int_equal(count_lines(err), 1);
}

static void test_syntax_errors(void **state)
{
	expect_error(BROKER "max_batch\n", 4, "expected 'key = value', [section] or a # comment");
	expect_error(BROKER "max_batch ; = 3\n", 4, "expected 'key = value'");
	expect_error("[broker\n" BROKER, 1, "section header without ']'");
	expect_error("[broker] extra\nsecret_key_file = a\npublic_key_file = b\n", 1,
		     "unexpected text after ']'");
	expect_error(BROKER "= 3\n", 4, "missing key before '='");
	expect_error(BROKER "[broker]\n", 4, "[broker] appears twice (first at line 1): merge them");
	expect_error(BROKER "max_batch = 3\nmax_batch = 4\n", 5,
		     "max_batch is set twice (first at line 4): keep one");
}

static void test_nul_byte(void **state)
{
	FILE *f = fopen(conf_path, "w");
	assert_non_null(f);
	fwrite(BROKER "x = a\0b\n", 1, sizeof(BROKER "x = a\0b\n") - 1, f);
	fclose(f);
	struct config *c = config_load(conf_path, err, sizeof err);
	assert_null(c);
	assert_non_null(strstr(err, "/relais.conf:4: the line contains a NUL byte"));
}

static void test_tolerated_syntax(void **state)
{
	/* BOM, CRLF, indentation, blanks around '=', ':' as separator, inline
	 * and whole-line comments with both prefixes. */
	struct config *c = load("\xef\xbb\xbf# comment\r\n"
				"; another comment\r\n"
				"\r\n"
				"  [ broker ]   ; main section\r\n"
				"    secret_key_file=keys/b.key\r\n"
				"\tpublic_key_file :  keys/b.pub  ; the public half\r\n"
				"   max_batch = 7\r\n"
				"    # indented comment\r\n"
				"[agent   ml-tours]\r\n"
				"  name = Mission locale ; comment\r\n"
				"  kind = mission_locale\r\n"
				"  public_key = " KEY_A "\r\n");
	if (!c)
		fail_msg("%s", err);
	assert_int_equal(c->max_batch, 7);
	assert_non_null(strstr(c->public_key_file, "/keys/b.pub"));
	assert_string_equal(c->agents[0].name, "Mission locale");
	assert_string_equal(c->agents[0].id, "ml-tours");
	config_free(&c);

	/* An indented line is a line of its own, never a continuation. */
	expect_error(BROKER "max_batch = 3\n   4\n", 5, "expected 'key = value'");
}

static void test_line_too_long(void **state)
{
	char text[2048], qpv[400], list[1024];

	/* "qpv = " then items "q0000000," up to exactly n bytes. */
	for (int n = 199; n <= 200; n++) {
		int used = snprintf(qpv, sizeof qpv, "qpv = ");
		for (int i = 0; used < n; i++)
			used += snprintf(qpv + used, sizeof qpv - (size_t)used, "%s%08d",
					 i ? "," : "", i);
		qpv[n] = '\0';
		if (qpv[n - 1] == ',')
			qpv[n - 1] = 'x';
		/* The territory lists every item, after the agent. */
		used = snprintf(list, sizeof list, "[qpv]\n");
		char items[400];
		snprintf(items, sizeof items, "%s", qpv + strlen("qpv = "));
		for (char *item = strtok(items, ","); item; item = strtok(NULL, ","))
			used += snprintf(list + used, sizeof list - (size_t)used,
					 "%s = Q\n", item);
		snprintf(text, sizeof text, BROKER AGENT_A "%s\n%s", qpv, list);
		if (n == 199)
			expect_ok(text);
		else
			expect_error(text, 8, "line too long: 200 bytes, at most 199");
	}
	/* Long comments are fine: they never reach the INI parser. */
	memset(qpv, 'x', 300);
	qpv[300] = '\0';
	snprintf(text, sizeof text, "# %s\n" BROKER, qpv);
	expect_ok(text);
}

static void test_missing_required(void **state)
{
	expect_error("[rules]\n", 0, "no [broker] section; it must set secret_key_file "
		     "and public_key_file");
	expect_error("# x\n[broker]\nsecret_key_file = a\n", 2,
		     "[broker] is missing public_key_file: add 'public_key_file = PATH'");
	expect_error(BROKER "[agent ml-tours]\nname = ML\n", 4,
		     "[agent ml-tours] is missing kind");
	expect_error(BROKER "[agent ml-tours]\nname = ML\n", 4,
		     "[agent ml-tours] is missing public_key");
	expect_error(BROKER "[agent ml-tours]\nkind = plie\npublic_key = " KEY_A "\n", 4,
		     "[agent ml-tours] is missing name");
}

static void test_open_error(void **state)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/none.conf", dir);
	assert_null(config_load(path, err, sizeof err));
	assert_non_null(strstr(err, "/none.conf: cannot open: No such file or directory"));

	/* A folder opens but cannot be read: never taken for an empty file. */
	assert_null(config_load(dir, err, sizeof err));
	assert_non_null(strstr(err, ":1: cannot read: Is a directory"));
}

static void test_all_or_nothing(void **state)
{
	struct config *c = load(BROKER              /* lines 1-3 */
				"max_batch = 0\n"   /* 4 */
				"[rules]\n"         /* 5 */
				"no_contact = never\n"  /* 6 */
				"[agent BAD]\n"     /* 7 */
				"name = x\n"        /* 8 */
				"kind = wizard\n"   /* 9 */
				"public_key = " KEY_A "\n"
				AGENT_A);           /* 11-14, same key: line 14 */
	assert_null(c);
	const char *want[] = {
		"relais.conf:4: max_batch = 0",
		"relais.conf:6: no_contact = never: expected a number of days from 1 to 3650, or off",
		"relais.conf:7: [agent BAD]: an agent id is 1 to 48",
		"relais.conf:9: kind = wizard: expected one of mediator, social_centre",
		"relais.conf:14: [agent ml-tours] has the same public_key as [agent BAD] (line 10)",
	};
	const char *at = err;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const char *hit = strstr(at, want[i]);
		if (!hit)
			fail_msg("expected \"%s\" (in line order), got:\n%s", want[i], err);
		at = hit;
	}
	assert_int_equal(count_lines(err), 5);

	/* Errors are one per line, each "file:line: message", and errbuf is
	 * never overrun. */
	char small[64];
	memset(small, 'Z', sizeof small);
	assert_null(config_load(conf_path, small, 40));
	assert_int_equal(small[40], 'Z');
	assert_true(strlen(small) < 40);
	assert_null(config_load(conf_path, NULL, 0));
}

static void test_rules(void **state)
{
	struct config *c = load(BROKER "[rules]\n"
				"no_contact = off\n"
				"referral_unanswered = 5\n"
				"missed_appointments = 3\n"
				"contract_ending = 365\n");
	if (!c)
		fail_msg("%s", err);
	assert_false(c->rules[RULE_NO_CONTACT].enabled);
	assert_true(c->rules[RULE_REFERRAL_UNANSWERED].enabled);
	assert_int_equal(c->rules[RULE_REFERRAL_UNANSWERED].threshold, 5);
	assert_int_equal(c->rules[RULE_MISSED_APPOINTMENTS].threshold, 3);
	assert_int_equal(c->rules[RULE_CONTRACT_ENDING].threshold, 365);
	assert_true(c->rules[RULE_NO_REFERENT].enabled);
	assert_int_equal(c->rules[RULE_NO_REFERENT].threshold, 15);
	config_free(&c);

	expect_error(BROKER "[rules]\nno_contact.enabled = no\n", 5,
		     "unknown rule 'no_contact.enabled' in [rules]; the rules are: "
		     "referral_unanswered, referral_expired, no_reorientation, no_referent, "
		     "no_contact, missed_appointments, support_dropped, contract_ending "
		     "(write 'RULE = off' to switch one off)");
	expect_error(BROKER "[rules]\nno_contact = OFF\n", 5, "no_contact = OFF: expected");
	expect_error(BROKER "[rules]\nmissed_appointments = 0\n", 5,
		     "missed_appointments = 0: expected a number of consecutive missed "
		     "appointments from 1 to 100, or off");
	expect_error(BROKER "[rules]\ncontract_ending = 366\n", 5,
		     "expected a number of days before the contract ends from 1 to 365");
	expect_error(BROKER "[rules]\nno_contact = 1\nno_contact = 2\n", 6,
		     "no_contact is set twice (first at line 5)");
	expect_error(BROKER "[rules]\nreferral_unanswered = 30\n", 5,
		     "referral_expired (30 days) must be more than referral_unanswered (30 days)");
	expect_ok(BROKER "[rules]\nreferral_unanswered = 40\nreferral_expired = off\n");
	expect_ok(BROKER "[rules]\nreferral_unanswered = off\nreferral_expired = 3\n");
}

static void test_agent_errors(void **state)
{
	char text[1024];

	expect_error(BROKER "[agent Ml-Tours]\nname = x\nkind = plie\npublic_key = " KEY_A "\n",
		     4, "[agent Ml-Tours]: an agent id is 1 to 48 characters among a-z, 0-9 and -");
	expect_error(BROKER "[agent]\nname = x\n", 4, "[agent] needs an id: write [agent ID]");
	expect_error(BROKER "[agent ml tours]\n", 4, "[agent ml tours]: an agent id is");
	expect_error(BROKER AGENT_A "kind = plie\n", 8,
		     "kind is set twice (first at line 6): keep one");
	expect_error(BROKER AGENT_A AGENT_A, 8,
		     "[agent ml-tours] appears twice (first at line 4): agent ids must be unique");
	expect_error(BROKER "[agent ml-tours]\nname = x\nkind = plie\npublic_key = " KEY_A "\n"
		     "[agent plie]\nname = y\nkind = plie\npublic_key = " KEY_A "\n", 11,
		     "[agent plie] has the same public_key as [agent ml-tours] (line 7): "
		     "give each agent its own key pair");
	expect_error(BROKER "[agent a]\nname = x\nkind = plie\npublic_key = abc\n", 7,
		     "public_key: expected the 40-character Z85 key of the agent's .pub "
		     "file, got 3 characters");
	/* '~' is not in the Z85 alphabet; "#####" overflows 32 bits. */
	expect_error(BROKER "[agent a]\nname = x\nkind = plie\n"
		     "public_key = ~laceholder-a...........................\n", 7,
		     "public_key: not a valid Z85 key");
	expect_error(BROKER "[agent a]\nname = x\nkind = plie\n"
		     "public_key = #####holder-a...........................\n", 7,
		     "public_key: not a valid Z85 key");
	expect_error(BROKER "[agent a]\nname = x\nkind = wizard\npublic_key = " KEY_A "\n", 6,
		     "kind = wizard: expected one of mediator, social_centre, france_travail, "
		     "mission_locale, plie, cap_emploi, iae, association, social_landlord, "
		     "local_authority, coordinator, operator");
	expect_error(BROKER "[agent a]\nname =\nkind = plie\npublic_key = " KEY_A "\n", 5,
		     "name: expected a display name of 1 to 127 bytes");
	expect_error(BROKER "[agent a]\nname = caf\xe9\nkind = plie\npublic_key = " KEY_A "\n", 5,
		     "name: expected UTF-8 text without control characters");

	char name[140];
	memset(name, 'n', 128);
	name[128] = '\0';
	snprintf(text, sizeof text, BROKER "[agent a]\nname = %s\nkind = plie\n"
		 "public_key = " KEY_A "\n", name);
	expect_error(text, 5, "name: expected a display name of 1 to 127 bytes");
	name[127] = '\0';
	snprintf(text, sizeof text, BROKER "[agent a]\nname = %s\nkind = plie\n"
		 "public_key = " KEY_A "\n", name);
	expect_ok(text);
}

/* inih keeps 49 bytes of a section name; "agent " + 48 is longer. */
static void test_long_agent_id(void **state)
{
	char id[64], text[512];

	memset(id, 'a', 48);
	id[48] = '\0';
	snprintf(text, sizeof text, BROKER "[agent %s]\nname = x\nkind = plie\n"
		 "public_key = " KEY_A "\n", id);
	struct config *c = load(text);
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->agents[0].id, id);
	assert_non_null(config_agent_by_id(c, id));
	config_free(&c);

	strcat(id, "a");
	snprintf(text, sizeof text, BROKER "[agent %s]\nname = x\nkind = plie\n"
		 "public_key = " KEY_A "\n", id);
	expect_error(text, 4, "an agent id is 1 to 48 characters among a-z, 0-9 and -");
}

static void test_qpv(void **state)
{
	struct config *c = load(BROKER
				"[agent coord]\nname = Coord\nkind = coordinator\n"
				"public_key = " KEY_A "\n"
				"qpv = sanitas , rochepinard,QN_37.261\n"
				"qpv = fontaines\n"
				"[agent all]\nname = All\nkind = coordinator\n"
				"public_key = " KEY_B "\n"
				"[agent ml]\nname = ML\nkind = mission_locale\n"
				"public_key = " KEY_C "\n"
				"qpv = rives-du-cher\n");
	if (!c)
		fail_msg("%s", err);
	const struct agent *coord = config_agent_by_id(c, "coord");
	const struct agent *all = config_agent_by_id(c, "all");
	assert_int_equal(coord->nqpv, 4);
	assert_string_equal(coord->qpv[0], "sanitas");
	assert_string_equal(coord->qpv[1], "rochepinard");
	assert_string_equal(coord->qpv[2], "QN_37.261");
	assert_string_equal(coord->qpv[3], "fontaines");
	assert_true(agent_covers_qpv(coord, "sanitas", 7));
	assert_true(agent_covers_qpv(coord, "fontaines", 9));
	/* The length counts, not a NUL: a prefix or a longer name is no match. */
	assert_true(agent_covers_qpv(coord, "sanitas-and-more", 7));
	assert_false(agent_covers_qpv(coord, "sanitas-and-more", 16));
	assert_false(agent_covers_qpv(coord, "sanit", 5));
	assert_false(agent_covers_qpv(coord, "Sanitas", 7));
	assert_false(agent_covers_qpv(coord, "", 0));
	assert_int_equal(all->nqpv, 0);
	assert_true(agent_covers_qpv(all, "anything", 8));
	assert_true(agent_covers_qpv(config_agent_by_id(c, "ml"), "rives-du-cher", 13));
	config_free(&c);

#define QPV_AGENT BROKER "[agent a]\nname = x\nkind = plie\npublic_key = " KEY_A "\n"
	expect_error(QPV_AGENT "qpv = sanitas, sanitas\n", 8, "qpv: sanitas is listed twice");
	expect_error(QPV_AGENT "qpv = sanitas\nqpv = sanitas\n", 9, "qpv: sanitas is listed twice");
	expect_error(QPV_AGENT "qpv = sanitas, rive du cher\n", 8,
		     "qpv: 'rive du cher' is not a QPV id (1 to 64 of A-Z a-z 0-9 . _ -)");
	expect_error(QPV_AGENT "qpv = a,,b\n", 8, "qpv: empty item in the list");
	expect_error(QPV_AGENT "qpv = a,\n", 8, "qpv: empty item in the list");
	expect_error(QPV_AGENT "qpv =\n", 8, "qpv: expected a comma-separated list of QPV ids");

	char text[2048];
	int used = snprintf(text, sizeof text, QPV_AGENT);
	for (int i = 0; i < CONFIG_MAX_QPV; i++)
		used += snprintf(text + used, sizeof text - (size_t)used, "qpv = q%d\n", i);
	int agent_end = used;
	used += snprintf(text + used, sizeof text - (size_t)used, "[qpv]\n");
	for (int i = 0; i < CONFIG_MAX_QPV; i++)
		used += snprintf(text + used, sizeof text - (size_t)used, "q%d = Q%d\n", i, i);
	used += snprintf(text + used, sizeof text - (size_t)used, "one-too-many = Q\n");
	expect_ok(text);
	/* One more qpv line in the agent, before its [qpv]. */
	char more[sizeof text + 32];
	snprintf(more, sizeof more, "%.*sqpv = one-too-many\n%s", agent_end, text,
		 text + agent_end);
	expect_error(more, 8 + CONFIG_MAX_QPV, "qpv: more than 32 QPVs");
#undef QPV_AGENT
}

/* The territory's QPVs: listed once, with a name; agents cover only those. */
static void test_qpv_list(void **state)
{
#define QPVS "[qpv]\nsanitas = Sanitas\neurope-chateaubriand = Europe - Chateaubriand\n"
	struct config *c = load(BROKER QPVS AGENT_A "qpv = sanitas\n");
	if (!c)
		fail_msg("%s", err);
	assert_int_equal(c->nqpvs, 2);
	assert_string_equal(c->qpvs[0].code, "europe-chateaubriand");
	assert_string_equal(c->qpvs[0].name, "Europe - Chateaubriand");
	assert_true(config_qpv_known(c, "sanitas", 7));
	assert_true(config_qpv_known(c, "sanitas-nord", 7));
	assert_false(config_qpv_known(c, "sanitas-nord", 12));
	assert_false(config_qpv_known(c, "Sanitas", 7));
	assert_false(config_qpv_known(c, "sanitaz", 7));
	config_free(&c);

	/* The list is required, and holds at least one QPV. */
	c = load_exactly(BROKER AGENT_A);
	assert_null(c);
	assert_int_equal(count_lines(err), 1);
	expect_error_exactly(BROKER AGENT_A "qpv = sanitas\n", 0,
			     "no [qpv] section: list the territory's QPVs, one "
			     "'code = Name' line each");
	expect_error(BROKER "[qpv]\n" AGENT_A, 4,
		     "[qpv] lists no QPV: add one 'code = Name' line per QPV");

	expect_error(BROKER QPVS AGENT_A "qpv = sanitas, sanitaz\n", 11,
		     "[agent ml-tours] covers qpv sanitaz, which is not in [qpv]");
	expect_error(BROKER QPVS "sanitas = Again\n", 7,
		     "[qpv] sanitas is listed twice: keep one");
	expect_error(BROKER QPVS "rive du cher = Rives du Cher\n", 7,
		     "[qpv] 'rive du cher' is not a QPV code");
	expect_error(BROKER QPVS "rives-du-cher =\n", 7,
		     "[qpv] rives-du-cher needs a name");
	expect_error(BROKER QPVS "[qpv]\n", 7,
		     "[qpv] appears twice (first at line 4): merge them");
#undef QPVS
}

static void test_key_lookup_canonical(void **state)
{
	struct config *c = load(BROKER AGENT_A);
	if (!c)
		fail_msg("%s", err);
	assert_string_equal(c->agents[0].public_key, KEY_A);
	assert_ptr_equal(config_agent_by_key(c, KEY_A), &c->agents[0]);
	assert_null(config_agent_by_key(c, KEY_B));
	assert_null(config_agent_by_key(c, NULL));
	assert_null(config_agent_by_id(c, NULL));
	config_free(&c);
}

static void test_names(void **state)
{
	for (int k = 0; k < AK__COUNT; k++)
		assert_int_equal(agent_kind_from_name(agent_kind_name(k)), k);
	for (int r = 0; r < RULE__COUNT; r++)
		assert_int_equal(rule_from_name(rule_name(r)), r);
	assert_string_equal(agent_kind_name(AK_SOCIAL_LANDLORD), "social_landlord");
	assert_string_equal(rule_name(RULE_NO_REORIENTATION), "no_reorientation");
	assert_int_equal(agent_kind_from_name("Mediator"), -1);
	assert_int_equal(rule_from_name("no_contact.enabled"), -1);
	assert_string_equal(agent_kind_name(AK__COUNT), "unknown");
	assert_string_equal(rule_name(RULE__COUNT), "unknown");
}

/* Options that reload change; the others keep their running values. */
static void test_reload_changes(void **state)
{
	char applied[256], waiting[256];
	struct config *running = load(BROKER "log_level = info\nmax_attempts = 10\n"
				      "listen = tcp://127.0.0.1:7450\n" AGENT_A);
	assert_non_null(running);
	struct config *next = load(BROKER "log_level = warn\nmax_attempts = 3\n"
				   "listen = tcp://127.0.0.1:7451\n"
				   "map_size_mb = 2048\nmanual_clock = yes\n" AGENT_A);
	assert_non_null(next);

	config_reload_changes(next, running, applied, sizeof applied, waiting,
			      sizeof waiting);
	assert_string_equal(applied, "max_attempts, log_level");
	assert_string_equal(waiting, "listen, map_size_mb, manual_clock");
	assert_string_equal(next->log_level, "warn");
	assert_int_equal(next->max_attempts, 3);
	/* What waits for a restart keeps the running value. */
	assert_string_equal(next->listen, "tcp://127.0.0.1:7450");
	assert_int_equal(next->map_size_mb, running->map_size_mb);
	assert_false(next->manual_clock);

	/* The same file again: nothing changed. */
	config_reload_changes(next, running, applied, sizeof applied, waiting,
			      sizeof waiting);
	assert_string_equal(waiting, "");
	assert_string_equal(applied, "max_attempts, log_level");
	config_reload_changes(running, running, applied, sizeof applied, waiting,
			      sizeof waiting);
	assert_string_equal(applied, "");
	assert_string_equal(waiting, "");
	config_free(&running);
	config_free(&next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_example_config_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redeliver_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_size_max_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_and_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tolerated_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_agent_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qpv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qpv_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_lookup_canonical, setup, teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_reload_changes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
