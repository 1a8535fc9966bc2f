/*
 * A model of the bus's rules (SPEC §2.2, §3, §6; PROTOCOL.md §4, §6, §7,
 * §8), written from the documents and not from the broker's code, for the
 * randomized test (test_e2e_model.c).
 *
 * model_event() is the judge: given who sends an event (a JSON object as
 * it goes on the wire), it says what the broker must answer (ok,
 * duplicate, or refused with this code) and, when the answer is ok,
 * applies the event to the model's state.  The generator reads that state
 * to choose events worth sending, and the test compares every answer of
 * the real broker with the judge's.
 *
 * What the model holds: for each participant slot, whether the broker has
 * a pathway for them, their QPV, exit, referents, barriers, appointments,
 * last activity; every referral with its parties, state and time; every
 * accepted event_id per agent with its content (deduplication lasts as
 * long as the broker runs); the alerts the test last read from the broker
 * (the model does not predict alerts, it judges what coordinators do with
 * them).  Time is the event's occurred_at: the test always sends events
 * dated before the broker's clock, so that is the time the rules use.
 *
 * The model stays below the sizes a pathway keeps (broker/pathway_state.h:
 * referrals, referents, appointments per person), which SPEC does not
 * fix: the generator never goes there, and the judge does not model them.
 */
#ifndef RELAIS_E2E_MODEL_H
#define RELAIS_E2E_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define MODEL_DAY_MS            86400000LL
#define MODEL_MAX_AGENTS        16
#define MODEL_ID_SIZE           48
#define MODEL_NBARRIERS         10
#define MODEL_MAX_APPOINTMENTS  24      /* per person; the broker keeps 32 */
#define MODEL_MAX_REFERRALS     24      /* per pathway; the broker keeps 32 */
#define MODEL_MAX_REFERENTS     6       /* at once; the broker keeps 8 */
#define MODEL_MAX_ALERTS        1000    /* what one alerts query lists */

/* Protocol codes (PROTOCOL.md §8) the model predicts. */
enum model_code {
	MC_OK = 0,
	MC_MISSING_FIELD = 104,
	MC_BAD_FIELD = 105,
	MC_UNKNOWN_FIELD = 106,
	MC_UNKNOWN_TYPE = 200,
	MC_PERSONAL_DATA = 201,
	MC_FORBIDDEN = 202,
	MC_CONFLICT = 203,
	MC_UNKNOWN_REFERRAL = 204,
	MC_UNKNOWN_AGENT = 205,
	MC_WRONG_AGENT = 206,
	MC_BAD_TRANSITION = 207,
	MC_REFERRAL_EXISTS = 208,
	MC_UNKNOWN_PARTICIPANT = 209,
	MC_UNKNOWN_ALERT = 210,
};

enum model_role { MR_PARTNER, MR_COORDINATOR, MR_OPERATOR };

struct model_agent {
	char id[MODEL_ID_SIZE];
	char kind[32];
	enum model_role role;
	char qpvs[128];             /* "a,b"; "" covers every QPV */
};

enum model_referral_state {
	MRS_REQUESTED, MRS_ACCEPTED, MRS_DECLINED, MRS_CANCELLED,
};

struct model_referral {
	char id[MODEL_ID_SIZE];
	int participant;            /* slot */
	int from, to;               /* agents; to is -1 for an unregistered id */
	enum model_referral_state state;
	int64_t sent_at;
	bool gone;                  /* its participant was erased */
};

enum model_appt_state { MAS_SCHEDULED, MAS_CLOSED };

struct model_appointment {
	char id[MODEL_ID_SIZE];
	enum model_appt_state state;
};

enum model_barrier_state { MBS_NONE, MBS_OPEN, MBS_LIFTED };

struct model_participant {
	char id[MODEL_ID_SIZE];
	bool exists;                /* the broker holds a pathway */
	bool exited;
	char qpv[MODEL_ID_SIZE];    /* from the latest participant.identified */
	int64_t last_activity;
	uint32_t referents;         /* bit per agent */
	enum model_barrier_state barrier[MODEL_NBARRIERS];
	int nappointments;
	struct model_appointment appointments[MODEL_MAX_APPOINTMENTS];
	int nreferrals;             /* referrals of this pathway */
	int erasures;               /* times erased (by a coordinator or retention) */
	int64_t erased_before;      /* the last erasure came after this time */
};

/* An alert as the alerts query showed it. */
struct model_alert {
	char id[32];
	char participant[MODEL_ID_SIZE];
	char qpv[MODEL_ID_SIZE];
	char status[16];            /* open, acknowledged, resolved */
};

/* What the broker must answer. */
struct model_expect {
	const char *status;         /* "ok", "duplicate", "error" */
	int code;                   /* when "error" */
	char why[160];              /* the rule that decides, for messages */
};

struct model_dedup;

struct model {
	int nagents;
	struct model_agent agents[MODEL_MAX_AGENTS];
	int nqpvs;
	char qpvs[8][MODEL_ID_SIZE];    /* the territory's QPVs */
	int64_t clock;              /* the broker's clock is at least this */
	int64_t expiry_ms;          /* referral_expired threshold; 0: off */
	int64_t retention_ms;

	int nparticipants;
	struct model_participant *participants;

	int nreferrals, capreferrals;
	struct model_referral *referrals;

	int nalerts;
	struct model_alert alerts[MODEL_MAX_ALERTS];

	struct model_dedup *dedup;
};

/* An empty model with nparticipants slots named "<prefix><n>". */
void model_init(struct model *m, int nparticipants, const char *prefix);
void model_free(struct model *m);

/* Declare an agent (registered at the broker); returns its index. */
int model_agent_add(struct model *m, const char *id, const char *kind,
    const char *qpvs);
int model_agent_find(const struct model *m, const char *id);

/* Declare one of the territory's QPVs (the broker's [qpv] must hold it);
 * an event naming another is refused. */
void model_qpv_add(struct model *m, const char *qpv);
bool model_qpv_known(const struct model *m, const char *qpv);
bool model_covers(const struct model *m, int agent, const char *qpv);

/*
 * The judge.  sender is an agent index; ev is the event as sent.  Fills
 * *out with the expected answer and, for "ok", applies the event.
 */
void model_event(struct model *m, int sender, const json_t *ev,
    struct model_expect *out);

/* The participant slot of an id, or -1. */
int model_participant_find(const struct model *m, const char *id);
/* The referral of an id among the participant's (a slot), or NULL. */
struct model_referral *model_referral_find(struct model *m, int slot,
    const char *id);

/* Has the referral expired at time at (SPEC §4, referral_expired)? */
bool model_referral_expired(const struct model *m,
    const struct model_referral *r, int64_t at);

/*
 * When retention may erase the participant: not before *from (no activity
 * for retention_days), surely by *to (the broker may count whole days).
 * False if the broker holds no pathway for them.
 */
bool model_retention_window(const struct model *m, int slot, int64_t *from,
    int64_t *to);

/* The broker erased the participant by itself (retention). */
void model_erase(struct model *m, int slot);

/*
 * Does the broker's pathway of the participant (the "state" of the
 * participant query) agree with the model?  now decides which referrals
 * may show as expired.  If not, why says what differs.
 */
bool model_state_matches(const struct model *m, int slot, const json_t *state,
    int64_t now, char *why, size_t len);

/* Replace the known alerts with the alerts query's answer (an array). */
void model_alerts_load(struct model *m, const json_t *alerts);

/*
 * What SPEC says of every alert the alerts query lists, whatever the
 * rules fired: one open alert per participant and rule (§4), none open
 * about a person who exited (§2.2), none naming a person erased since it
 * opened (§6).  If one breaks that, why says which.
 */
bool model_alerts_check(const struct model *m, const json_t *alerts,
    char *why, size_t len);

#endif
