/*
 * The state kept per participant (SPEC §3), included by pathway.h.
 *
 * Every collection is a fixed-capacity array, so a pathway has a known size,
 * is copied by assignment and needs no freeing.  The limits are far above a
 * real person's pathway; an event that would exceed one is refused with
 * bad_transition and a sentence naming the limit, never truncated silently.
 *
 * Strings are NUL-terminated copies; unused bytes are zero, so two pathways
 * built by the same events are identical byte for byte in their strings.
 * Times are milliseconds since the Unix epoch, UTC, taken from the "at" of
 * the event that set them; 0 means "never".
 */
#ifndef RELAIS_PATHWAY_STATE_H
#define RELAIS_PATHWAY_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"

#define PW_DAY_MS               INT64_C(86400000)

#define PW_ID_SIZE              65  /* participant, referral, appointment, qpv */
#define PW_AGENT_SIZE           49  /* agent ids */
#define PW_CODE_SIZE            24  /* barrier, scheme, contract, reason codes */

#define PW_MAX_REFERRALS        32  /* referrals ever sent for the person */
#define PW_MAX_REFERENTS        8   /* agents supporting the person at once */
#define PW_MAX_BARRIERS         16  /* distinct barrier codes (SPEC has 10) */
#define PW_MAX_APPOINTMENTS     32  /* kept appointments, see below */
#define PW_MAX_ENROLLMENTS      8   /* distinct schemes (SPEC has 7) */
#define PW_MISS_RUN_KEEP        16  /* miss times kept per run, see below */

/*
 * Phase: the furthest step the person has reached in the current episode.
 * It only moves forward, and only by the event that defines each step:
 *
 *   new         pathway_init(), before any event: never stored
 *   identified  the first pathway event of any type (a pathway opened by
 *               contact.made is "identified" too: the bus knows the person),
 *               or participant.identified after an exit (a new episode)
 *   referred    referral.sent
 *   supported   support.started
 *   enrolled    enrollment.started
 *   employed    employment.started
 *   exited      participant.exited; only participant.identified leaves it
 *
 * A step can be skipped (employment.started on an identified person goes
 * straight to employed) and is never undone (support.ended keeps
 * "supported"): the referents and referrals say what is current.
 */
enum pw_phase {
	PW_PHASE_NEW,
	PW_PHASE_IDENTIFIED,
	PW_PHASE_REFERRED,
	PW_PHASE_SUPPORTED,
	PW_PHASE_ENROLLED,
	PW_PHASE_EMPLOYED,
	PW_PHASE_EXITED,
	PW_PHASE__COUNT
};

/*
 * Only requested, accepted, declined and cancelled are ever stored; expired
 * is derived by pathway_referral_state() from the sent time and the
 * referral_expired threshold.  Expired is final, like the answered states.
 */
enum pw_referral_state {
	PW_REF_REQUESTED,
	PW_REF_ACCEPTED,
	PW_REF_DECLINED,
	PW_REF_CANCELLED,
	PW_REF_EXPIRED,
	PW_REF__COUNT
};

enum pw_barrier_state { PW_BARRIER_OPEN, PW_BARRIER_LIFTED, PW_BARRIER__COUNT };

enum pw_appointment_state {
	PW_APPT_SCHEDULED,
	PW_APPT_ATTENDED,
	PW_APPT_MISSED,             /* unexcused */
	PW_APPT_EXCUSED,            /* missed, excused */
	PW_APPT__COUNT
};

struct pw_referral {
	char id[PW_ID_SIZE];
	char from[PW_AGENT_SIZE];   /* the authenticated sender of referral.sent */
	char to[PW_AGENT_SIZE];
	enum pw_referral_state state;
	int64_t sent_at;
	int64_t answered_at;        /* accepted, declined or cancelled; else 0 */
};

struct pw_referent {
	char id[PW_AGENT_SIZE];
	int64_t since;              /* its latest support.started */
};

struct pw_barrier {
	char code[PW_CODE_SIZE];
	enum pw_barrier_state state;
	int64_t identified_at;      /* when it was last opened */
	int64_t lifted_at;          /* 0 while open */
};

/*
 * Appointments are kept while scheduled.  When the array is full, the
 * oldest closed one (attended or missed) makes room: a closed appointment
 * can no longer change, and the run of misses is kept separately.
 */
struct pw_appointment {
	char id[PW_ID_SIZE];
	int64_t at;                 /* when it is (or was) to take place */
	enum pw_appointment_state state;
};

struct pw_enrollment {
	char scheme[PW_CODE_SIZE];
	int64_t first_at;
	uint32_t count;
};

/* The latest employment.started; contract is "" when there was none. */
struct pw_employment {
	char contract[PW_CODE_SIZE];
	char by[PW_AGENT_SIZE];     /* the agent that reported it */
	int64_t started_at;
	int64_t ends_on;            /* 00:00 UTC of the end day; 0 if open-ended */
};

/* Scores 1..5; 0 when never assessed. */
struct pw_confidence {
	int first;
	int last;
	int64_t first_at;
	int64_t last_at;
};

struct pathway {
	char participant[PW_ID_SIZE];
	char qpv[PW_ID_SIZE];       /* from the latest participant.identified */
	enum pw_phase phase;

	int64_t opened_at;          /* first pathway event */
	int64_t identified_at;      /* participant.identified opening the episode */
	char identified_by[PW_AGENT_SIZE];  /* the agent that sent it */
	int64_t reopened_at;        /* participant.identified after an exit */
	int64_t last_activity;      /* latest "at" of any pathway event */

	int64_t last_support_at;    /* latest support.started */
	int64_t referent_ended_at;  /* latest support.ended */
	int64_t dropped_out_at;     /* latest support.ended "dropped_out" */
	char dropped_by[PW_AGENT_SIZE];

	char exit_reason[PW_CODE_SIZE];  /* "" unless exited */
	int64_t exited_at;

	/*
	 * The current run of unexcused misses (log order): attended and
	 * excused misses end it, the latter because a person who excuses
	 * themselves is still in touch.  The times of its first
	 * PW_MISS_RUN_KEEP misses are kept, so missed_appointments can fire
	 * at the miss that made the run reach its threshold.
	 */
	uint32_t miss_run;
	int64_t miss_times[PW_MISS_RUN_KEEP];
	int64_t last_miss_at;

	int nreferrals;
	struct pw_referral referrals[PW_MAX_REFERRALS];
	int nreferents;
	struct pw_referent referents[PW_MAX_REFERENTS];
	int nbarriers;
	struct pw_barrier barriers[PW_MAX_BARRIERS];
	int nappointments;
	struct pw_appointment appointments[PW_MAX_APPOINTMENTS];
	int nenrollments;
	struct pw_enrollment enrollments[PW_MAX_ENROLLMENTS];
	struct pw_employment employment;
	struct pw_confidence confidence;

	uint32_t counts[EV__COUNT]; /* pathway events applied, by type */
};

/* Stable names used in the stored form and in query answers. */
const char *pw_phase_name(enum pw_phase phase);
const char *pw_referral_state_name(enum pw_referral_state state);
const char *pw_barrier_state_name(enum pw_barrier_state state);
const char *pw_appointment_state_name(enum pw_appointment_state state);

#endif
