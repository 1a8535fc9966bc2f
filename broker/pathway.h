/*
 * A participant's pathway (SPEC §3): the state the broker keeps per person,
 * how each event changes it, and when each rupture rule (SPEC §4) next falls
 * due.  Pure functions: no storage, no clock, no I/O, so the state machine
 * and the rules are tested on their own, and `verify` can replay a log
 * through exactly the code that built the stored state.
 *
 * The broker loads a pathway from LMDB, calls pathway_apply(), and writes it
 * back in the same transaction as the event.  Alerts are not part of it:
 * they are opened by the clock, not by events, and live in their own table.
 */
#ifndef RELAIS_PATHWAY_H
#define RELAIS_PATHWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <msgpack.h>

#include "config.h"
#include "event.h"

/* The agent that sent the event, as authenticated by its key. */
struct pw_actor {
	const char *id;
	enum agent_kind kind;
};

/* struct pathway, its limits and its phases are defined below. */
#include "pathway_state.h"

/* What applying an event did, for the broker to act on. */
struct pw_effects {
	/*
	 * Agents the event must be delivered to (referral target/sender).
	 * The strings live in *pw: valid until *pw next changes.
	 */
	int ndeliver;
	const char *deliver_to[2];
	/* The pathway changed (false only for events that change nothing). */
	bool changed;
};

/* An empty pathway for a participant seen for the first time. */
void pathway_init(struct pathway *pw, const char *participant, size_t len);

/* Stored form.  decode returns RL_OK or RL_E_STORAGE with err filled. */
int pathway_encode(const struct pathway *pw, msgpack_packer *pk);
int pathway_decode(const char *buf, size_t len, struct pathway *pw,
    struct rl_error *err);

/*
 * Check ev against the state and the sender's rights, then apply it.
 * "at" is the event's time for the rules: min(occurred_at, recorded_at).
 * "rules" decides whether a referral has expired at "at" (an expired
 * referral can no longer be answered); verify passes NULL, so that replaying
 * the log accepts what was accepted whatever the thresholds are now.
 * Returns RL_OK, or an error code (bad_transition, wrong_agent, forbidden,
 * unknown_referral, ...) with *err filled and *pw unchanged.
 * Registry checks (is "to" a registered agent?) and bus-wide uniqueness
 * (is the referral id already used?) are the caller's.
 */
int pathway_apply(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at,
    const struct rule_config *rules, struct pw_effects *fx,
    struct rl_error *err);

/*
 * The same, except that on error *pw is left half-changed: for a caller
 * that throws the pathway away on error (the broker reloads it).
 */
int pathway_apply_in_place(struct pathway *pw, const struct rl_event *ev,
    const struct pw_actor *actor, int64_t at,
    const struct rule_config *rules, struct pw_effects *fx,
    struct rl_error *err);

/*
 * Undoing a pathway_apply_in_place() that failed, without copying the
 * whole (13 KB) structure for every event: pathway_save() keeps what
 * pathway_restore() needs, the scalars and the used part of each
 * collection (a few hundred bytes for most people), in *save;
 * pathway_restore() then makes *pw byte for byte what it was when saved
 * (the unused part of each collection is zero in every pathway).
 * *save is scratch: only pathway_restore() reads it.  pathway_save.c.
 */
void pathway_save(struct pathway *save, const struct pathway *pw);
void pathway_restore(struct pathway *pw, const struct pathway *save);

/*
 * When each rule next falls due for this pathway (ms since epoch), or 0
 * when it is not armed (condition impossible, rule switched off, pathway
 * exited).  A rule whose condition already holds is due at the time it
 * became true.  "now" matters only to referral_unanswered, which watches
 * the referrals not yet expired at now: a due time computed earlier is
 * never later than one computed now.
 */
void pathway_due(const struct pathway *pw, const struct rule_config rules[RULE__COUNT],
    int64_t now, int64_t due[RULE__COUNT]);

/* Why an alert for this rule would fire now. */
struct pw_alert_info {
	int severity;               /* 1 warning, 2 alert */
	int nagents;
	char agents[4][49];         /* agents concerned, e.g. a referral's target */
	char referral[65];          /* the referral at fault, if any */
};

/*
 * Does the rule's condition hold at "now"?  Called when its deadline is
 * reached (to open an alert) and after every event (to resolve one).
 */
bool pathway_rule_holds(const struct pathway *pw, enum rule_id rule,
    const struct rule_config rules[RULE__COUNT], int64_t now,
    struct pw_alert_info *info);

/* The participant's referral with this id, or NULL (ids are unique per
 * participant: PROTOCOL.md). */
struct pw_referral *pathway_find_referral(struct pathway *pw, struct rl_str id);

/*
 * A referral's state as of "now": "expired" is not stored but derived from
 * its sent time and referral_expired's threshold, so that the stored state
 * is always exactly what replaying the event log gives.
 */
enum pw_referral_state pathway_referral_state(const struct pw_referral *r,
    const struct rule_config rules[RULE__COUNT], int64_t now);

/* Field-by-field equality, for verify. */
bool pathway_equal(const struct pathway *a, const struct pathway *b);

#endif
