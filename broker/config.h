/*
 * relais.conf: broker settings, rupture rules and the agent registry.
 *
 * The file is INI (parsed by inih).  Loading is all or nothing: every error
 * is collected as "file:line: message", and any error rejects the whole file.
 * Unknown sections and keys are errors.  Every option is declared once in a
 * table with its type, bounds and default (config.c).
 */
#ifndef RELAIS_CONFIG_H
#define RELAIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum agent_kind {
	AK_MEDIATOR, AK_SOCIAL_CENTRE, AK_FRANCE_TRAVAIL, AK_MISSION_LOCALE,
	AK_PLIE, AK_CAP_EMPLOI, AK_IAE, AK_ASSOCIATION, AK_SOCIAL_LANDLORD,
	AK_LOCAL_AUTHORITY, AK_COORDINATOR, AK_OPERATOR,
	AK__COUNT
};

const char *agent_kind_name(enum agent_kind kind);
int agent_kind_from_name(const char *name);   /* -1 if unknown */

#define CONFIG_MAX_QPV 32

struct agent {
	char id[49];                /* [a-z0-9-]{1,48} */
	char name[128];
	enum agent_kind kind;
	char public_key[41];        /* Z85, 40 characters */
	int nqpv;                   /* 0: covers every QPV */
	char qpv[CONFIG_MAX_QPV][65];
};

/* One of the territory's QPVs, from the [qpv] section. */
struct qpv {
	char code[65];              /* [A-Za-z0-9._:-]{1,64} */
	char name[128];
};

/* The rupture rules of SPEC §4. */
enum rule_id {
	RULE_REFERRAL_UNANSWERED, RULE_REFERRAL_EXPIRED, RULE_NO_REORIENTATION,
	RULE_NO_REFERENT, RULE_NO_CONTACT, RULE_MISSED_APPOINTMENTS,
	RULE_SUPPORT_DROPPED, RULE_CONTRACT_ENDING,
	RULE__COUNT
};

const char *rule_name(enum rule_id rule);
int rule_from_name(const char *name);         /* -1 if unknown */

struct rule_config {
	bool enabled;
	/* Days for time rules; a count for missed_appointments. */
	uint32_t threshold;
};

struct config {
	char *path;                 /* the file it came from */

	/* [broker] */
	char listen[256];           /* e.g. tcp://127.0.0.1:7450, port may be * */
	char data_dir[512];
	char secret_key_file[512];  /* the broker's CURVE key pair, */
	char public_key_file[512];  /* as written by relais keygen */
	uint64_t map_size_mb;       /* the map at start-up... */
	uint64_t map_size_max_mb;   /* ...which grows by itself up to this */
	char durability[8];         /* "commit" or "wal" (txn.c) */
	uint32_t wal_size_mb;       /* the write-ahead log file's size */
	uint32_t checkpoint_ms;     /* the longest a change stays only in the log */
	uint32_t max_batch;         /* messages read per loop pass (group commit) */
	uint32_t default_credit;
	uint32_t heartbeat_ms;
	uint32_t redeliver_ms;      /* first redelivery delay; doubles each try */
	uint32_t redeliver_max_ms;
	uint32_t max_attempts;      /* then dead-letter */
	uint32_t max_backlog;       /* items one agent's mailbox may hold; 0: no bound */
	uint32_t max_backlog_age_days; /* older unsent items are dead-lettered; 0: none */
	uint32_t max_connections;   /* past their handshake; bounds memory (flow.h) */
	uint32_t max_connections_per_agent; /* of those, one agent's (zap.c) */
	uint32_t agent_silent_hours; /* an agent not collecting this long: alert */
	uint32_t retention_days;    /* inactivity before anonymisation */
	char log_level[8];          /* debug, info, warn, error */
	bool manual_clock;          /* tests and demos only: clock driven by operators */

	/* [rules] */
	struct rule_config rules[RULE__COUNT];

	/* [qpv]: the territory's QPVs, sorted by code; at least one. */
	struct qpv *qpvs;
	size_t nqpvs;

	/* [agent ID] sections */
	struct agent *agents;       /* sorted by id */
	size_t nagents;
};

/*
 * Parse a config file.  On success returns a config the caller frees with
 * config_free().  On failure returns NULL and writes every error, one per
 * line as "file:line: message", into errbuf (truncated to errlen).
 * Relative paths inside the file are resolved against the file's folder.
 */
struct config *config_load(const char *path, char *errbuf, size_t errlen);

/*
 * A reload: next is the file just loaded, running the config in force.
 * Each [broker] option either reloads (a SIGHUP applies it) or waits for a
 * restart (the socket, the store, the keys, the clock: set up once).  The
 * options of the second kind keep their running values in next, so the
 * config in force always says what the broker does.  applied and waiting
 * receive the names of the options that changed, of each kind, as
 * "a, b" ("" if none).  The registry and the rules always reload.
 */
void config_reload_changes(struct config *next, const struct config *running,
    char *applied, size_t alen, char *waiting, size_t wlen);

/* Safe on NULL; sets *cfg to NULL. */
void config_free(struct config **cfg);

/* Registry look-ups; the returned pointer lives as long as the config. */
const struct agent *config_agent_by_id(const struct config *cfg, const char *id);
const struct agent *config_agent_by_key(const struct config *cfg, const char *z85);

/* True if qpv (len bytes) is one of the territory's QPVs. */
bool config_qpv_known(const struct config *cfg, const char *qpv, size_t len);

/*
 * The QPV's name from the [qpv] list, or code itself when the list does
 * not have it; lives as long as the config (or as code).
 */
const char *config_qpv_name(const struct config *cfg, const char *code);

/* True if the agent's QPV list covers qpv (or the agent has no list). */
bool agent_covers_qpv(const struct agent *a, const char *qpv, size_t len);

#endif
