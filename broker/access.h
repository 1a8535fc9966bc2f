/*
 * Who may read a participant's file and who may act on it (SPEC §2.5):
 * one decision, made from the agent's registry entry and the person's
 * pathway, for every query and event that touches a person.
 *
 * Reading follows relationships the pathway records, never what an agent
 * wrote: sending an event about someone gives no right to read them.
 * Pure functions (no storage, no clock): the caller passes the pathway it
 * loaded and the broker's time.
 */
#ifndef RELAIS_ACCESS_H
#define RELAIS_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pathway.h"

/* A referral's parties keep reading this long after it closes. */
#define ACCESS_REFERRAL_AFTER_CLOSE_MS  (90 * PW_DAY_MS)

/* Why an agent may read a file; ACCESS_NONE when it may not. */
enum access_reason {
	ACCESS_NONE,
	ACCESS_COORDINATOR,         /* covers the person's QPV */
	ACCESS_REFERENT,            /* one of the current referents */
	ACCESS_REFERRAL_PARTY,      /* sender or target, open or closed < 90 d */
	ACCESS_IDENTIFIER,          /* identified them, episode not exited */
};

/*
 * May agent "who" read the pathway and timeline of pw at "now"?  rules
 * decide when a still requested referral expired (and so closed).
 * Operators never may.  pw NULL (no pathway exists) grants nothing but
 * to a coordinator that covers every QPV.
 */
enum access_reason access_read(const struct agent *who, const struct pathway *pw,
    const struct rule_config rules[RULE__COUNT], int64_t now);

/*
 * Is the person within the territory of coordinator "who": does its QPV
 * list cover the person's QPV (or has it no list)?  A pathway that was
 * never given a QPV is covered only by a coordinator without a list.
 * Coordinators exit, erase, acknowledge and resolve only there.
 */
bool access_covers(const struct agent *who, const struct pathway *pw);

/* A stable name for a reason, for logs and tests. */
const char *access_reason_name(enum access_reason reason);

#endif
