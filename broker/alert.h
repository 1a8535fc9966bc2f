/*
 * An alert record (SPEC §4): what the broker stores in its "alerts" table
 * and delivers to coordinators and to the agents concerned.
 */
#ifndef RELAIS_ALERT_H
#define RELAIS_ALERT_H

#include <stdint.h>
#include <msgpack.h>

#include "config.h"
#include "pathway.h"

enum alert_status { ALERT_OPEN, ALERT_ACKNOWLEDGED, ALERT_RESOLVED };

struct alert {
	uint64_t seq;               /* id on the wire: "al-<seq>" */
	char participant[PW_ID_SIZE];
	enum rule_id rule;
	int severity;               /* 1 warning, 2 alert */
	char qpv[PW_ID_SIZE];
	int nagents;
	char agents[4][PW_AGENT_SIZE];
	char referral[PW_ID_SIZE];
	int64_t opened_at;
	enum alert_status status;
	char acknowledged_by[PW_AGENT_SIZE];
	int64_t acknowledged_at;
	char resolved_by[PW_AGENT_SIZE];  /* "relais" when resolved automatically */
	int64_t resolved_at;
	char note[RL_MAX_TEXT_BYTES + 1];
};

const char *alert_status_name(enum alert_status s);

/* "al-12" -> 12; 0 if the id is not of that form. */
uint64_t alert_id_parse(const char *p, size_t len);

/* change: NULL for the stored record, else "opened", "resolved", ... */
void alert_pack(msgpack_packer *pk, const struct alert *a, const char *change);

/* RL_OK or RL_E_STORAGE. */
int alert_unpack(const char *buf, size_t len, struct alert *a);

#endif
