/*
 * relais.conf loader (see config.h for the rules of the file).
 *
 * inih splits "key = value" lines, strips comments and trims blanks.  Our
 * own line reader sits in front of it and does what inih cannot:
 *   - it counts lines, so every error says "file:line" (the packaged inih
 *     does not pass line numbers to the handler);
 *   - it refuses key lines longer than inih's fixed line buffer, which inih
 *     would otherwise cut silently and read as two lines;
 *   - it reads [section] headers itself, because inih keeps at most 49
 *     bytes of a section name and "agent " plus a 48-character id is longer;
 *   - it strips leading blanks, so an indented line is an ordinary line and
 *     never an inih "continuation" of the previous value.
 * Errors are collected, sorted by line and returned all together; a config
 * is returned only when there is none.
 */
#include "config.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <zmq.h>

/* ---------------------------------------------------------------- names */

static const char *const kind_names[AK__COUNT] = {
	[AK_MEDIATOR] = "mediator",
	[AK_SOCIAL_CENTRE] = "social_centre",
	[AK_FRANCE_TRAVAIL] = "france_travail",
	[AK_MISSION_LOCALE] = "mission_locale",
	[AK_PLIE] = "plie",
	[AK_CAP_EMPLOI] = "cap_emploi",
	[AK_IAE] = "iae",
	[AK_ASSOCIATION] = "association",
	[AK_SOCIAL_LANDLORD] = "social_landlord",
	[AK_LOCAL_AUTHORITY] = "local_authority",
	[AK_COORDINATOR] = "coordinator",
	[AK_OPERATOR] = "operator",
};

const char *
agent_kind_name(enum agent_kind kind)
{
	return (unsigned)kind < AK__COUNT ? kind_names[kind] : "unknown";
}

int
agent_kind_from_name(const char *name)
{
	for (int k = 0; k < AK__COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -1;
}

/*
 * The [rules] keys: one per rule of SPEC §4, its default threshold, the
 * accepted range and what the number counts (for error messages).
 */
static const struct rule_def {
	const char *name;
	uint32_t def, min, max;
	const char *unit;
} rule_defs[RULE__COUNT] = {
	[RULE_REFERRAL_UNANSWERED] = { "referral_unanswered", 10, 1, 3650, "days" },
	[RULE_REFERRAL_EXPIRED] = { "referral_expired", 30, 1, 3650, "days" },
	[RULE_NO_REORIENTATION] = { "no_reorientation", 10, 1, 3650, "days" },
	[RULE_NO_REFERENT] = { "no_referent", 15, 1, 3650, "days" },
	[RULE_NO_CONTACT] = { "no_contact", 45, 1, 3650, "days" },
	[RULE_MISSED_APPOINTMENTS] = { "missed_appointments", 2, 1, 100,
	    "consecutive missed appointments" },
	[RULE_SUPPORT_DROPPED] = { "support_dropped", 7, 1, 3650, "days" },
	[RULE_CONTRACT_ENDING] = { "contract_ending", 30, 1, 365,
	    "days before the contract ends" },
};

const char *
rule_name(enum rule_id rule)
{
	return (unsigned)rule < RULE__COUNT ? rule_defs[rule].name : "unknown";
}

int
rule_from_name(const char *name)
{
	for (int r = 0; r < RULE__COUNT; r++)
		if (strcmp(name, rule_defs[r].name) == 0)
			return r;
	return -1;
}

/* ------------------------------------------------------- parser state */

enum section { SEC_NONE, SEC_BROKER, SEC_RULES, SEC_QPV, SEC_AGENT, SEC_IGNORED };

enum agent_key { AKEY_NAME, AKEY_KIND, AKEY_PUBLIC_KEY, AKEY_QPV, AKEY__COUNT };

/* An [agent ID] section while it is being read. */
struct draft {
	struct agent a;
	int line;                   /* of the section header */
	int set[AKEY__COUNT];       /* line where each key was first set */
	bool bad_id;                /* already reported; kept to check its keys */
	unsigned char key[32];      /* public_key, decoded */
};

struct error {
	int line;
	size_t seq;                 /* keeps errors of one line in order */
	char *text;
};

struct parser {
	const char *path;
	char dir[PATH_MAX];         /* the file's folder, for relative paths */
	bool dir_is_real;           /* dir came from realpath() */
	FILE *file;
	char *buf;                  /* getline() buffer */
	size_t bufcap;
	int lineno;

	enum section sec;
	int broker_line, rules_line, qpv_line;  /* section headers, 0 if absent */
	size_t capqpvs;
	int *opt_set;                   /* per option: line where it was set */
	int rule_set[RULE__COUNT];

	struct config *cfg;
	struct draft *drafts;
	size_t ndrafts, capdrafts;

	struct error *errors;
	size_t nerrors, caperrors;
	bool out_of_memory;
};

/* Record "file:line: message" (or "file: message" when line is 0). */
__attribute__((format(printf, 3, 4)))
static void
fail(struct parser *p, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	if (p->nerrors == p->caperrors) {
		size_t cap = p->caperrors ? 2 * p->caperrors : 16;
		struct error *e = realloc(p->errors, cap * sizeof *e);
		if (!e) {
			p->out_of_memory = true;
			return;
		}
		p->errors = e;
		p->caperrors = cap;
	}
	char *text;
	int n = line > 0 ? asprintf(&text, "%s:%d: %s", p->path, line, msg)
	    : asprintf(&text, "%s: %s", p->path, msg);
	if (n < 0) {
		p->out_of_memory = true;
		return;
	}
	p->errors[p->nerrors] = (struct error){ line, p->nerrors, text };
	p->nerrors++;
}

/* ------------------------------------------------------ value parsers */

/* A whole decimal number in [min, max]; no sign, no blanks, no suffix. */
static bool
parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool
parse_bool(const char *s, bool *out)
{
	static const struct { const char *word; bool value; } words[] = {
		{ "yes", true }, { "true", true }, { "no", false }, { "false", false },
	};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strcasecmp(s, words[i].word) == 0) {
			*out = words[i].value;
			return true;
		}
	}
	return false;
}

/* Valid UTF-8 without control characters: safe to show anywhere. */
static bool
printable_utf8(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	while (n > 0) {
		size_t len = utf8_sequence_len(s, n);
		if (len == 0 || s[0] < 0x20 || s[0] == 0x7f)
			return false;
		s += len;
		n -= len;
	}
	return true;
}

/* s matches [charset]{1,max}; charset given as a predicate. */
static bool
id_matches(const char *s, size_t len, size_t max, bool (*ok)(int c))
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ok((unsigned char)s[i]))
			return false;
	return true;
}

static bool
agent_id_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/*
 * The identifier pattern of SPEC §2.2, [A-Za-z0-9._:-], without ':': the
 * INI reader ends a key at the first ':' as at '=', so a code holding one
 * could never be listed in [qpv].
 */
static bool
qpv_id_char(int c)
{
	return c < 0x80 && (isalnum(c) || (c && strchr("._-", c)));
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* ------------------------------------------------------------ [broker] */

enum opt_type { OPT_TEXT, OPT_PATH, OPT_U32, OPT_U64, OPT_BOOL };

struct option {
	const char *name;
	enum opt_type type;
	size_t offset, size;        /* the field in struct config */
	uint64_t min, max;          /* numbers only */
	const char *def;            /* NULL: the key is required */
	const char *(*check)(const char *value);  /* NULL, or why it is wrong */
	bool reloads;               /* a SIGHUP applies it; else only a restart */
};

#define RELOADS  true
#define RESTART  false

static const char *
check_listen(const char *v)
{
	if (strncmp(v, "tcp://", 6) != 0 && strncmp(v, "ipc://", 6) != 0)
		return "expected an endpoint starting with tcp:// or ipc://, "
		    "e.g. tcp://127.0.0.1:7450";
	if (v[6] == '\0')
		return "the endpoint has no address after the scheme";
	return NULL;
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static const char *
check_durability(const char *v)
{
	if (strcmp(v, "commit") == 0 || strcmp(v, "wal") == 0)
		return NULL;
	return "expected commit (each pass is an LMDB commit with its syncs) or "
	    "wal (each pass is one synced record of a write-ahead log)";
}

static const char *
check_log_level(const char *v)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strcmp(v, level_names[i]) == 0)
			return NULL;
	return "expected one of debug, info, warn, error";
}

/* How far the map grows when the config does not say (MiB). */
#define MAP_SIZE_MAX_DEFAULT 65536

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

/* Every [broker] option, declared once: the parser, the defaults and the
 * error messages all come from this table. */
static const struct option options[] = {
	/* The socket, the store, the keys and the clock are set up once. */
	{ "listen", OPT_TEXT, FIELD(listen), 0, 0, "tcp://127.0.0.1:7450", check_listen, RESTART },
	{ "data_dir", OPT_PATH, FIELD(data_dir), 0, 0, "var/data", NULL, RESTART },
	{ "secret_key_file", OPT_PATH, FIELD(secret_key_file), 0, 0, NULL, NULL, RESTART },
	{ "public_key_file", OPT_PATH, FIELD(public_key_file), 0, 0, NULL, NULL, RESTART },
	{ "map_size_mb", OPT_U64, FIELD(map_size_mb), 16, 1048576, "1024", NULL, RESTART },
	/* 0: the larger of map_size_mb and MAP_SIZE_MAX_DEFAULT (check_broker). */
	{ "map_size_max_mb", OPT_U64, FIELD(map_size_max_mb), 0, 1048576, "0", NULL, RELOADS },
	{ "durability", OPT_TEXT, FIELD(durability), 0, 0, "wal", check_durability, RESTART },
	{ "wal_size_mb", OPT_U32, FIELD(wal_size_mb), 1, 65536, "64", NULL, RESTART },
	{ "checkpoint_ms", OPT_U32, FIELD(checkpoint_ms), 10, 600000, "1000", NULL, RELOADS },
	/* The loop reads these from the running config each time it needs them. */
	{ "max_batch", OPT_U32, FIELD(max_batch), 1, 10000, "256", NULL, RELOADS },
	{ "default_credit", OPT_U32, FIELD(default_credit), 1, 10000, "100", NULL, RELOADS },
	{ "heartbeat_ms", OPT_U32, FIELD(heartbeat_ms), 100, 60000, "2000", NULL, RELOADS },
	{ "redeliver_ms", OPT_U32, FIELD(redeliver_ms), 10, 3600000, "1000", NULL, RELOADS },
	{ "redeliver_max_ms", OPT_U32, FIELD(redeliver_max_ms), 10, 86400000, "60000", NULL, RELOADS },
	{ "max_attempts", OPT_U32, FIELD(max_attempts), 1, 1000, "10", NULL, RELOADS },
	{ "max_backlog", OPT_U32, FIELD(max_backlog), 0, 100000000, "200000", NULL, RELOADS },
	{ "max_backlog_age_days", OPT_U32, FIELD(max_backlog_age_days), 0, 3650, "0", NULL, RELOADS },
	{ "max_connections", OPT_U32, FIELD(max_connections), 1, 65536, "64", NULL, RELOADS },
	{ "max_connections_per_agent", OPT_U32, FIELD(max_connections_per_agent), 1, 65536, "4", NULL, RELOADS },
	{ "agent_silent_hours", OPT_U32, FIELD(agent_silent_hours), 1, 8760, "48", NULL, RELOADS },
	{ "retention_days", OPT_U32, FIELD(retention_days), 1, 36500, "730", NULL, RELOADS },
	{ "log_level", OPT_TEXT, FIELD(log_level), 0, 0, "info", check_log_level, RELOADS },
	{ "manual_clock", OPT_BOOL, FIELD(manual_clock), 0, 0, "no", NULL, RESTART },
};

#define NOPTIONS (sizeof options / sizeof options[0])

static const struct option *
option_find(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

/*
 * Resolve a path from the file against the file's folder.  realpath() has
 * already removed every symlink from that folder, so leading "../" can be
 * applied to it as text: logs then show /srv/relais/var/data rather than
 * /srv/relais/config/../var/data.
 */
static bool
resolve_path(const struct parser *p, const char *v, char *out, size_t size)
{
	char dir[PATH_MAX];
	int n;

	if (v[0] == '/') {
		n = snprintf(out, size, "%s", v);
		return n >= 0 && (size_t)n < size;
	}
	snprintf(dir, sizeof dir, "%s", p->dir);
	for (;;) {
		if (strncmp(v, "./", 2) == 0) {
			v += 2;
		} else if (p->dir_is_real && strncmp(v, "../", 3) == 0) {
			char *slash = strrchr(dir, '/');
			if (slash)
				*slash = '\0';     /* the parent of / is / */
			v += 3;
		} else {
			break;
		}
	}
	n = snprintf(out, size, "%s/%s", dir, v);
	return n >= 0 && (size_t)n < size;
}

static void
option_set(struct parser *p, const struct option *o,
    const char *v, int line)
{
	char *field = (char *)p->cfg + o->offset;
	const char *why;
	uint64_t n;

	switch (o->type) {
	case OPT_TEXT:
		if (!*v || strlen(v) >= o->size) {
			fail(p, line, "%s: expected a value of 1 to %zu bytes",
			    o->name, o->size - 1);
		} else if (o->check && (why = o->check(v)) != NULL) {
			fail(p, line, "%s = %s: %s", o->name, v, why);
		} else {
			memcpy(field, v, strlen(v) + 1);
		}
		break;
	case OPT_PATH:
		if (!*v)
			fail(p, line, "%s: expected a file or folder path", o->name);
		else if (!resolve_path(p, v, field, o->size))
			fail(p, line, "%s: the path is longer than %zu bytes once "
			    "resolved against %s", o->name, o->size - 1, p->dir);
		break;
	case OPT_U32:
	case OPT_U64:
		if (!parse_uint(v, o->min, o->max, &n)) {
			fail(p, line, "%s = %s: expected a whole number from %" PRIu64
			    " to %" PRIu64, o->name, v, o->min, o->max);
		} else if (o->type == OPT_U32) {
			uint32_t n32 = (uint32_t)n;
			memcpy(field, &n32, sizeof n32);
		} else {
			memcpy(field, &n, sizeof n);
		}
		break;
	case OPT_BOOL:
		if (!parse_bool(v, (bool *)field))
			fail(p, line, "%s = %s: expected yes or no", o->name, v);
		break;
	}
}

/* "a, b, c" from a table of names, for "allowed keys" messages. */
static void
list_names(char *out, size_t size, const char *(*name)(size_t), size_t n)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", name(i));
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static const char *
option_name_at(size_t i)
{
	return options[i].name;
}

static const char *
rule_name_at(size_t i)
{
	return rule_defs[i].name;
}

static const char *
kind_name_at(size_t i)
{
	return kind_names[i];
}

static void
broker_pair(struct parser *p, const char *key, const char *v, int line)
{
	const struct option *o = option_find(key);

	if (!o) {
		char names[512];
		list_names(names, sizeof names, option_name_at, NOPTIONS);
		fail(p, line, "unknown key '%s' in [broker]; the keys are: %s", key, names);
		return;
	}
	int *set = &p->opt_set[o - options];
	if (*set) {
		fail(p, line, "%s is set twice (first at line %d): keep one", key, *set);
		return;
	}
	*set = line;
	option_set(p, o, v, line);
}

/* ------------------------------------------------------------- [rules] */

static void
rules_pair(struct parser *p, const char *key, const char *v, int line)
{
	int r = rule_from_name(key);

	if (r < 0) {
		char names[512];
		list_names(names, sizeof names, rule_name_at, RULE__COUNT);
		fail(p, line, "unknown rule '%s' in [rules]; the rules are: %s "
		    "(write 'RULE = off' to switch one off)", key, names);
		return;
	}
	if (p->rule_set[r]) {
		fail(p, line, "%s is set twice (first at line %d): keep one",
		    key, p->rule_set[r]);
		return;
	}
	p->rule_set[r] = line;

	const struct rule_def *d = &rule_defs[r];
	struct rule_config *rc = &p->cfg->rules[r];
	uint64_t n;
	if (strcmp(v, "off") == 0) {
		rc->enabled = false;
	} else if (parse_uint(v, d->min, d->max, &n)) {
		rc->enabled = true;
		rc->threshold = (uint32_t)n;
	} else {
		fail(p, line, "%s = %s: expected a number of %s from %" PRIu32
		    " to %" PRIu32 ", or off", key, v, d->unit, d->min, d->max);
	}
}

/* --------------------------------------------------------------- [qpv] */

static int
qpv_cmp(const void *x, const void *y)
{
	return strcmp(((const struct qpv *)x)->code, ((const struct qpv *)y)->code);
}

/* "code = Name": one of the territory's QPVs. */
static void
qpv_pair(struct parser *p, const char *key, const char *v, int line)
{
	struct config *c = p->cfg;

	if (!id_matches(key, strlen(key), 64, qpv_id_char)) {
		fail(p, line, "[qpv] '%s' is not a QPV code (1 to 64 of "
		    "A-Z a-z 0-9 . _ -); write 'code = Name'", key);
		return;
	}
	if (!*v || strlen(v) >= sizeof c->qpvs->name || !printable_utf8(v)) {
		fail(p, line, "[qpv] %s needs a name: 1 to %zu bytes of printable "
		    "UTF-8, e.g. '%s = Sanitas'", key, sizeof c->qpvs->name - 1, key);
		return;
	}
	for (size_t i = 0; i < c->nqpvs; i++)
		if (strcmp(c->qpvs[i].code, key) == 0) {
			fail(p, line, "[qpv] %s is listed twice: keep one", key);
			return;
		}
	if (c->nqpvs == p->capqpvs) {
		size_t cap = p->capqpvs ? 2 * p->capqpvs : 16;
		struct qpv *q = realloc(c->qpvs, cap * sizeof *q);
		if (!q) {
			p->out_of_memory = true;
			return;
		}
		c->qpvs = q;
		p->capqpvs = cap;
	}
	snprintf(c->qpvs[c->nqpvs].code, sizeof c->qpvs->code, "%s", key);
	snprintf(c->qpvs[c->nqpvs].name, sizeof c->qpvs->name, "%s", v);
	c->nqpvs++;
}

bool
config_qpv_known(const struct config *cfg, const char *qpv, size_t len)
{
	struct qpv key;

	if (len >= sizeof key.code)
		return false;
	memcpy(key.code, qpv, len);
	key.code[len] = '\0';
	return bsearch(&key, cfg->qpvs, cfg->nqpvs, sizeof key, qpv_cmp) != NULL;
}

const char *
config_qpv_name(const struct config *cfg, const char *code)
{
	struct qpv key;
	const struct qpv *q;

	if (cfg->nqpvs == 0 || strlen(code) >= sizeof key.code)
		return code;
	snprintf(key.code, sizeof key.code, "%s", code);
	q = bsearch(&key, cfg->qpvs, cfg->nqpvs, sizeof key, qpv_cmp);
	return q != NULL ? q->name : code;
}

/* ------------------------------------------------------- [agent ID] */

static void
agent_set_name(struct parser *p, struct draft *d, const char *v, int line)
{
	if (!*v || strlen(v) >= sizeof d->a.name)
		fail(p, line, "name: expected a display name of 1 to %zu bytes",
		    sizeof d->a.name - 1);
	else if (!printable_utf8(v))
		fail(p, line, "name: expected UTF-8 text without control characters");
	else
		memcpy(d->a.name, v, strlen(v) + 1);
}

static void
agent_set_kind(struct parser *p, struct draft *d, const char *v, int line)
{
	int k = agent_kind_from_name(v);

	if (k < 0) {
		char names[512];
		list_names(names, sizeof names, kind_name_at, AK__COUNT);
		fail(p, line, "kind = %s: expected one of %s", v, names);
		return;
	}
	d->a.kind = (enum agent_kind)k;
}

static void
agent_set_key(struct parser *p, struct draft *d, const char *v, int line)
{
	size_t len = strlen(v);

	if (len != 40) {
		fail(p, line, "public_key: expected the 40-character Z85 key of the "
		    "agent's .pub file, got %zu characters", len);
		return;
	}
	if (!zmq_z85_decode(d->key, v)) {
		fail(p, line, "public_key: not a valid Z85 key; copy the key line "
		    "of the agent's .pub file");
		return;
	}
	/* Store the canonical encoding, so look-ups by the key a ZAP request
	 * carries (encoded by libzmq) compare equal byte for byte. */
	zmq_z85_encode(d->a.public_key, d->key, sizeof d->key);
}

static bool
agent_has_qpv(const struct agent *a, const char *qpv)
{
	for (int i = 0; i < a->nqpv; i++)
		if (strcmp(a->qpv[i], qpv) == 0)
			return true;
	return false;
}

/* "qpv" may be repeated: each line adds to the list, so long lists fit in
 * inih's line length. */
static void
agent_add_qpv(struct parser *p, struct draft *d, const char *v, int line)
{
	char list[256];
	char *save = NULL;

	if (!*v) {
		fail(p, line, "qpv: expected a comma-separated list of QPV ids; "
		    "remove the line to cover every QPV");
		return;
	}
	snprintf(list, sizeof list, "%s", v);  /* inih lines are shorter */
	for (char *item = strtok_r(list, ",", &save); item;
	    item = strtok_r(NULL, ",", &save)) {
		item = trim(item);
		if (!id_matches(item, strlen(item), 64, qpv_id_char)) {
			fail(p, line, "qpv: '%s' is not a QPV id (1 to 64 of "
			    "A-Z a-z 0-9 . _ -)", item);
		} else if (agent_has_qpv(&d->a, item)) {
			fail(p, line, "qpv: %s is listed twice", item);
		} else if (d->a.nqpv == CONFIG_MAX_QPV) {
			fail(p, line, "qpv: more than %d QPVs; leave qpv out to "
			    "cover every QPV", CONFIG_MAX_QPV);
			return;
		} else {
			strcpy(d->a.qpv[d->a.nqpv++], item);
		}
	}
	/* strtok_r skips empty items: catch "a,,b" and a trailing comma. */
	if (strstr(v, ",,") || v[0] == ',' || v[strlen(v) - 1] == ',')
		fail(p, line, "qpv: empty item in the list");
}

static const struct agent_key_def {
	const char *name;
	bool required;
	bool repeatable;
	void (*set)(struct parser *, struct draft *, const char *, int);
} agent_keys[AKEY__COUNT] = {
	[AKEY_NAME] = { "name", true, false, agent_set_name },
	[AKEY_KIND] = { "kind", true, false, agent_set_kind },
	[AKEY_PUBLIC_KEY] = { "public_key", true, false, agent_set_key },
	[AKEY_QPV] = { "qpv", false, true, agent_add_qpv },
};

static const char *
agent_key_name_at(size_t i)
{
	return agent_keys[i].name;
}

static void
agent_pair(struct parser *p, const char *key, const char *v, int line)
{
	struct draft *d = &p->drafts[p->ndrafts - 1];

	for (int k = 0; k < AKEY__COUNT; k++) {
		const struct agent_key_def *def = &agent_keys[k];
		if (strcmp(key, def->name) != 0)
			continue;
		if (d->set[k] && !def->repeatable) {
			fail(p, line, "%s is set twice (first at line %d): keep one",
			    key, d->set[k]);
			return;
		}
		if (!d->set[k])
			d->set[k] = line;
		def->set(p, d, v, line);
		return;
	}
	char names[128];
	list_names(names, sizeof names, agent_key_name_at, AKEY__COUNT);
	fail(p, line, "unknown key '%s' in [agent %s]; the keys are: %s",
	    key, d->a.id, names);
}

/* ------------------------------------------------------------ sections */

static void
open_agent(struct parser *p, const char *id, int line)
{
	bool bad = !id_matches(id, strlen(id), sizeof p->drafts->a.id - 1, agent_id_char);

	if (bad)
		fail(p, line, "[agent %s]: an agent id is 1 to 48 characters among a-z, 0-9 and -", id);
	if (p->ndrafts == p->capdrafts) {
		size_t cap = p->capdrafts ? 2 * p->capdrafts : 16;
		struct draft *d = realloc(p->drafts, cap * sizeof *d);
		if (!d) {
			p->out_of_memory = true;
			p->sec = SEC_IGNORED;
			return;
		}
		p->drafts = d;
		p->capdrafts = cap;
	}
	struct draft *d = &p->drafts[p->ndrafts++];
	memset(d, 0, sizeof *d);
	snprintf(d->a.id, sizeof d->a.id, "%s", id);
	d->line = line;
	d->bad_id = bad;
	p->sec = SEC_AGENT;
}

/* A section may appear once; *first is the line of its header. */
static void
open_single(struct parser *p, int *first, const char *name,
    enum section sec, int line)
{
	if (*first)
		fail(p, line, "[%s] appears twice (first at line %d): merge them",
		    name, *first);
	else
		*first = line;
	p->sec = sec;
}

static void
open_section(struct parser *p, char *name, int line)
{
	if (strcmp(name, "broker") == 0) {
		open_single(p, &p->broker_line, name, SEC_BROKER, line);
	} else if (strcmp(name, "rules") == 0) {
		open_single(p, &p->rules_line, name, SEC_RULES, line);
	} else if (strcmp(name, "qpv") == 0) {
		open_single(p, &p->qpv_line, name, SEC_QPV, line);
	} else if (strncmp(name, "agent", 5) == 0 &&
	    (name[5] == '\0' || isspace((unsigned char)name[5]))) {
		char *id = trim(name + 5);
		if (*id) {
			open_agent(p, id, line);
		} else {
			fail(p, line, "[agent] needs an id: write [agent ID], e.g. [agent ml-tours]");
			p->sec = SEC_IGNORED;
		}
	} else {
		fail(p, line, "unknown section [%s]; the sections are [broker], "
		    "[rules], [qpv] and one [agent ID] per agent", name);
		p->sec = SEC_IGNORED;   /* its keys cannot be checked */
	}
}

/* s starts with '['. */
static void
header_line(struct parser *p, char *s, int line)
{
	char *end = strchr(s, ']');

	if (!end) {
		fail(p, line, "section header without ']': write [broker], [rules] or [agent ID]");
		p->sec = SEC_IGNORED;
		return;
	}
	char *rest = end + 1;
	while (isspace((unsigned char)*rest))
		rest++;
	if (*rest && *rest != ';' && *rest != '#')
		fail(p, line, "unexpected text after ']'");
	*end = '\0';
	open_section(p, trim(s + 1), line);
}

/* ----------------------------------------------------- the line reader */

/* True if inih will find '=' or ':' before an inline "; comment" (this is
 * inih's own rule, so both agree on which lines are key lines). */
static bool
has_separator(const char *s)
{
	bool was_space = false;

	for (; *s; s++) {
		if (*s == '=' || *s == ':')
			return true;
		if (*s == ';' && was_space)
			return false;
		was_space = isspace((unsigned char)*s);
	}
	return false;
}

/* Reads one physical line; false at end of file. */
static bool
next_line(struct parser *p, char **line, size_t *len)
{
	ssize_t n = getline(&p->buf, &p->bufcap, p->file);

	if (n < 0) {
		/* Not the end of the file: a read error or no memory.  Stopping
		 * silently would load half a file. */
		if (!feof(p->file))
			fail(p, p->lineno + 1, "cannot read: %s", strerror(errno));
		return false;
	}
	p->lineno++;
	*line = p->buf;
	*len = (size_t)n;
	while (*len > 0 && ((*line)[*len - 1] == '\n' || (*line)[*len - 1] == '\r'))
		(*line)[--*len] = '\0';
	if (p->lineno == 1 && strncmp(*line, "\xef\xbb\xbf", 3) == 0) {
		*line += 3;             /* UTF-8 byte order mark */
		*len -= 3;
	}
	return true;
}

/*
 * inih's fgets-style reader.  Only key lines reach inih; every other line
 * is handled here and handed over as an empty line, which inih skips.
 */
static char *
read_line(char *out, int size, void *stream)
{
	struct parser *p = stream;
	char *line;
	size_t len;

	if (!next_line(p, &line, &len))
		return NULL;
	out[0] = '\0';

	if (strlen(line) != len) {
		fail(p, p->lineno, "the line contains a NUL byte; is this a text file?");
		return out;
	}
	while (isspace((unsigned char)*line)) {
		line++;
		len--;
	}
	if (*line == '\0' || *line == '#' || *line == ';')
		return out;
	if (*line == '[') {
		header_line(p, line, p->lineno);
		return out;
	}
	if (!has_separator(line)) {
		fail(p, p->lineno, "expected 'key = value', [section] or a # comment");
		return out;
	}
	if (len >= (size_t)size) {
		fail(p, p->lineno, "line too long: %zu bytes, at most %d (a long qpv "
		    "list can be split over several qpv lines)", len, size - 1);
		return out;
	}
	memcpy(out, line, len + 1);
	return out;
}

static int
on_pair(void *user, const char *section, const char *key, const char *value)
{
	struct parser *p = user;
	int line = p->lineno;
	const char *v = value;

	(void)section;              /* always "": headers never reach inih */
	if (!*key) {
		fail(p, line, "missing key before '='");
		return 1;
	}
	switch (p->sec) {
	case SEC_NONE:
		fail(p, line, "%s is outside any section: put it under [broker], "
		    "[rules], [qpv] or [agent ID]", key);
		break;
	case SEC_BROKER:
		broker_pair(p, key, v, line);
		break;
	case SEC_RULES:
		rules_pair(p, key, v, line);
		break;
	case SEC_QPV:
		qpv_pair(p, key, v, line);
		break;
	case SEC_AGENT:
		agent_pair(p, key, v, line);
		break;
	case SEC_IGNORED:
		break;                  /* the section header was reported */
	}
	return 1;                   /* keep going: we want every error */
}

/* ------------------------------------------------------ final checks */

static void
check_broker(struct parser *p)
{
	const struct config *c = p->cfg;

	if (!p->broker_line) {
		fail(p, 0, "no [broker] section; it must set secret_key_file and public_key_file");
		return;
	}
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!options[i].def && !p->opt_set[i])
			fail(p, p->broker_line, "[broker] is missing %s: add "
			    "'%s = PATH'", options[i].name, options[i].name);

	const struct option *m = option_find("map_size_max_mb");
	if (c->map_size_max_mb == 0)
		p->cfg->map_size_max_mb = c->map_size_mb > MAP_SIZE_MAX_DEFAULT ?
		    c->map_size_mb : MAP_SIZE_MAX_DEFAULT;
	else if (c->map_size_max_mb < c->map_size_mb)
		fail(p, p->opt_set[m - options] ? p->opt_set[m - options] : p->broker_line,
		    "map_size_max_mb (%" PRIu64 ") is below map_size_mb (%" PRIu64 ")",
		    c->map_size_max_mb, c->map_size_mb);

	const struct option *o = option_find("redeliver_max_ms");
	if (c->redeliver_max_ms < c->redeliver_ms)
		fail(p, p->opt_set[o - options] ? p->opt_set[o - options] : p->broker_line,
		    "redeliver_max_ms (%" PRIu32 ") is below redeliver_ms (%" PRIu32 ")",
		    c->redeliver_max_ms, c->redeliver_ms);
}

static void
check_rules(struct parser *p)
{
	const struct rule_config *u = &p->cfg->rules[RULE_REFERRAL_UNANSWERED];
	const struct rule_config *x = &p->cfg->rules[RULE_REFERRAL_EXPIRED];

	/* The reminder must come before the referral expires, or it never
	 * fires. */
	if (u->enabled && x->enabled && x->threshold <= u->threshold) {
		int line = p->rule_set[RULE_REFERRAL_EXPIRED];
		if (!line)
			line = p->rule_set[RULE_REFERRAL_UNANSWERED];
		fail(p, line, "referral_expired (%" PRIu32 " days) must be more than "
		    "referral_unanswered (%" PRIu32 " days)", x->threshold, u->threshold);
	}
}

static int
draft_cmp_id(const void *x, const void *y)
{
	const struct draft *a = x, *b = y;
	int c = strcmp(a->a.id, b->a.id);
	return c ? c : (a->line > b->line) - (a->line < b->line);
}

static int
draft_cmp_key(const void *x, const void *y)
{
	const struct draft *a = *(const struct draft *const *)x;
	const struct draft *b = *(const struct draft *const *)y;
	int c = memcmp(a->key, b->key, sizeof a->key);
	return c ? c : (a->line > b->line) - (a->line < b->line);
}

/* One key is one identity: two agents sharing it could not be told apart. */
static void
check_unique_keys(struct parser *p)
{
	const struct draft **by_key = calloc(p->ndrafts ? p->ndrafts : 1, sizeof *by_key);
	size_t n = 0;

	if (!by_key) {
		p->out_of_memory = true;
		return;
	}
	for (size_t i = 0; i < p->ndrafts; i++)
		if (p->drafts[i].set[AKEY_PUBLIC_KEY] && p->drafts[i].a.public_key[0])
			by_key[n++] = &p->drafts[i];
	qsort(by_key, n, sizeof *by_key, draft_cmp_key);
	for (size_t i = 1; i < n; i++)
		if (memcmp(by_key[i]->key, by_key[i - 1]->key, 32) == 0)
			fail(p, by_key[i]->set[AKEY_PUBLIC_KEY],
			    "[agent %s] has the same public_key as [agent %s] "
			    "(line %d): give each agent its own key pair",
			    by_key[i]->a.id, by_key[i - 1]->a.id,
			    by_key[i - 1]->set[AKEY_PUBLIC_KEY]);
	free(by_key);
}

/*
 * The territory's QPVs are required: without them a typo in an event's qpv
 * would hide that person from their coordinator.  Every QPV an agent covers
 * is one of them.
 */
static void
check_qpvs(struct parser *p)
{
	struct config *c = p->cfg;

	if (p->qpv_line == 0) {
		fail(p, 0, "no [qpv] section: list the territory's QPVs, one "
		    "'code = Name' line each (e.g. [qpv] then 'sanitas = "
		    "Sanitas'); events and agents' qpv lines may use only those codes");
		return;
	}
	if (c->nqpvs == 0) {
		fail(p, p->qpv_line, "[qpv] lists no QPV: add one 'code = Name' "
		    "line per QPV of the territory, e.g. 'sanitas = Sanitas'");
		return;
	}
	if (c->nqpvs > 1)
		qsort(c->qpvs, c->nqpvs, sizeof *c->qpvs, qpv_cmp);
	for (size_t i = 0; i < p->ndrafts; i++) {
		const struct agent *a = &p->drafts[i].a;
		for (int q = 0; q < a->nqpv; q++)
			if (!config_qpv_known(c, a->qpv[q], strlen(a->qpv[q])))
				fail(p, p->drafts[i].set[AKEY_QPV], "[agent %s] "
				    "covers qpv %s, which is not in [qpv]: fix "
				    "the code or add it to [qpv]", a->id, a->qpv[q]);
	}
}

static void
check_agents(struct parser *p)
{
	for (size_t i = 0; i < p->ndrafts; i++) {
		const struct draft *d = &p->drafts[i];
		for (int k = 0; k < AKEY__COUNT; k++)
			if (agent_keys[k].required && !d->set[k])
				fail(p, d->line, "[agent %s] is missing %s",
				    d->a.id, agent_keys[k].name);
	}
	if (p->ndrafts > 1)
		qsort(p->drafts, p->ndrafts, sizeof *p->drafts, draft_cmp_id);
	for (size_t i = 1; i < p->ndrafts; i++) {
		const struct draft *d = &p->drafts[i], *prev = &p->drafts[i - 1];
		if (!d->bad_id && !prev->bad_id && strcmp(d->a.id, prev->a.id) == 0)
			fail(p, d->line, "[agent %s] appears twice (first at line %d): "
			    "agent ids must be unique", d->a.id, prev->line);
	}
	check_unique_keys(p);
}

/* ------------------------------------------------------------ results */

static int
error_cmp(const void *x, const void *y)
{
	const struct error *a = x, *b = y;
	if (a->line != b->line)
		return (a->line > b->line) - (a->line < b->line);
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Every error, one per line, in file order; as many as fit in errbuf. */
static void
report(struct parser *p, char *errbuf, size_t errlen)
{
	size_t used = 0;

	if (!errbuf || errlen == 0)
		return;
	errbuf[0] = '\0';
	if (p->out_of_memory) {
		snprintf(errbuf, errlen, "%s: out of memory while reading the config\n", p->path);
		return;
	}
	if (p->nerrors > 1)
		qsort(p->errors, p->nerrors, sizeof *p->errors, error_cmp);
	for (size_t i = 0; i < p->nerrors; i++) {
		size_t len = strlen(p->errors[i].text);
		if (used + len + 2 > errlen) {
			if (i == 0)     /* better a cut message than none */
				snprintf(errbuf, errlen, "%s", p->errors[0].text);
			else
				snprintf(errbuf + used, errlen - used, "... %zu more errors\n",
				    p->nerrors - i);
			return;
		}
		memcpy(errbuf + used, p->errors[i].text, len);
		errbuf[used + len] = '\n';
		used += len + 1;
		errbuf[used] = '\0';
	}
}

/* The folder of the file, absolute when possible, without a trailing '/'
 * ("" for the root folder, so joining gives "/name"). */
static void
folder_of(struct parser *p)
{
	const char *slash = strrchr(p->path, '/');
	char rel[PATH_MAX];

	if (!slash)
		snprintf(rel, sizeof rel, ".");
	else if (slash == p->path)
		snprintf(rel, sizeof rel, "/");
	else
		snprintf(rel, sizeof rel, "%.*s", (int)(slash - p->path), p->path);
	p->dir_is_real = realpath(rel, p->dir) != NULL;
	if (!p->dir_is_real)
		snprintf(p->dir, sizeof p->dir, "%s", rel);
	size_t n = strlen(p->dir);
	if (n > 0 && p->dir[n - 1] == '/')
		p->dir[n - 1] = '\0';
}

static void
apply_defaults(struct parser *p)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].def)
			option_set(p, &options[i], options[i].def, 0);
	for (int r = 0; r < RULE__COUNT; r++)
		p->cfg->rules[r] = (struct rule_config){ true, rule_defs[r].def };
}

static bool
build_registry(struct parser *p)
{
	struct config *c = p->cfg;

	c->nagents = p->ndrafts;
	c->agents = calloc(p->ndrafts ? p->ndrafts : 1, sizeof *c->agents);
	if (!c->agents)
		return false;
	for (size_t i = 0; i < p->ndrafts; i++)
		c->agents[i] = p->drafts[i].a;      /* drafts are sorted by id */
	return true;
}

static void
parse(struct parser *p)
{
	apply_defaults(p);
	int rc = ini_parse_stream(read_line, p, on_pair, p);
	if (rc == -2)
		p->out_of_memory = true;
	else if (rc > 0 && p->nerrors == 0)
		fail(p, rc, "cannot read this line; expected 'key = value'");
	check_broker(p);
	check_rules(p);
	check_agents(p);
	check_qpvs(p);
}

struct config *
config_load(const char *path, char *errbuf, size_t errlen)
{
	int opt_set[NOPTIONS] = { 0 };
	struct parser p = { .path = path, .opt_set = opt_set };
	struct config *c = NULL;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	p.cfg = calloc(1, sizeof *p.cfg);
	if (!p.cfg || !(p.cfg->path = strdup(path))) {
		p.out_of_memory = true;
		goto out;
	}
	p.file = fopen(path, "re");
	if (!p.file) {
		fail(&p, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	folder_of(&p);
	parse(&p);
	if (p.nerrors == 0 && !p.out_of_memory && build_registry(&p)) {
		c = p.cfg;
		p.cfg = NULL;
	} else if (p.nerrors == 0) {
		p.out_of_memory = true;
	}
out:
	if (!c)
		report(&p, errbuf, errlen);
	if (p.file)
		fclose(p.file);
	for (size_t i = 0; i < p.nerrors; i++)
		free(p.errors[i].text);
	free(p.errors);
	free(p.drafts);
	free(p.buf);
	config_free(&p.cfg);
	return c;
}

static bool
option_differs(const struct option *o, const struct config *a,
    const struct config *b)
{
	const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;

	if (o->type == OPT_TEXT || o->type == OPT_PATH)
		return strcmp(fa, fb) != 0;
	return memcmp(fa, fb, o->size) != 0;
}

/* Append ", name" (or "name") to a list, cutting it short if it is full. */
static void
list_add(char *list, size_t size, const char *name)
{
	size_t used = strlen(list);

	if (used < size)
		snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
}

void
config_reload_changes(struct config *next, const struct config *running,
    char *applied, size_t alen, char *waiting, size_t wlen)
{
	applied[0] = waiting[0] = '\0';
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];

		if (!option_differs(o, next, running))
			continue;
		if (o->reloads) {
			list_add(applied, alen, o->name);
		} else {
			list_add(waiting, wlen, o->name);
			memcpy((char *)next + o->offset,
			    (const char *)running + o->offset, o->size);
		}
	}
}

void
config_free(struct config **cfg)
{
	if (!cfg || !*cfg)
		return;
	free((*cfg)->agents);
	free((*cfg)->qpvs);
	free((*cfg)->path);
	free(*cfg);
	*cfg = NULL;
}

/* --------------------------------------------------------- look-ups */

static int
agent_cmp_id(const void *key, const void *elem)
{
	return strcmp(key, ((const struct agent *)elem)->id);
}

const struct agent *
config_agent_by_id(const struct config *cfg, const char *id)
{
	if (!cfg || !id)
		return NULL;
	return bsearch(id, cfg->agents, cfg->nagents, sizeof *cfg->agents, agent_cmp_id);
}

/* A linear scan: it runs once per connection (ZAP), not per message. */
const struct agent *
config_agent_by_key(const struct config *cfg, const char *z85)
{
	if (!cfg || !z85)
		return NULL;
	for (size_t i = 0; i < cfg->nagents; i++)
		if (strcmp(cfg->agents[i].public_key, z85) == 0)
			return &cfg->agents[i];
	return NULL;
}

bool
agent_covers_qpv(const struct agent *a, const char *qpv, size_t len)
{
	if (a->nqpv == 0)
		return true;
	for (int i = 0; i < a->nqpv; i++)
		if (strlen(a->qpv[i]) == len && memcmp(a->qpv[i], qpv, len) == 0)
			return true;
	return false;
}
