/*
 * Rupture detection: deadlines, the sweep, and the alert lifecycle.
 *
 * After every event, pathway_due() says when each rule next falls due for
 * the participant, and retention_due() when the person's data expires.
 * "deadlines" holds at most one key per participant: u64be due, then the
 * participant, at the earliest of those times that has not fired yet.  The
 * participant's record (participants.c) remembers where that key is, the
 * time each rule last fired at, and which rules have an alert open.
 *
 * Deadlines are lazy: the key may be earlier than the earliest true due
 * time, never later.  When activity pushes due times later (no_contact and
 * retention move with every event), the key stays where it is, so most
 * events write nothing here; the key only moves, in the event's own
 * transaction, when a due time comes earlier or every one goes away.  When
 * an early key comes up, the sweep finds nothing due and puts the key at
 * the true time.
 *
 * The sweep reads "deadlines" from the start and stops at the first key in
 * the future, so it costs the number of participants due, not the number
 * of participants.  For each, it re-checks every rule due against the
 * stored pathway and opens an alert if none is open for that participant
 * and rule.
 *
 * An open alert is resolved automatically by the first event after which
 * its rule no longer holds, or by a coordinator.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "alert.h"
#include "alert_index.h"
#include "log.h"
#include "relaisd.h"
#include "rltime.h"

#define SWEEP_MAX           2000    /* deadlines per sweep transaction */
/*
 * A sweep stops taking deadlines after this much work and leaves the rest
 * to the next tick, so that a burst (a clock jump, retention erasing many
 * people at once, each a scan of their alerts) never keeps the loop from
 * answering agents for long.
 */
#define SWEEP_BUDGET_US     (50 * 1000)
#define DEADLINE_KEY_MAX    (8 + PW_ID_SIZE)
#define AUTO_RESOLVER       "relais"
#define SWEEP_RETRY_MS      (60 * 1000)

/* The note of an alert resolved because a later one makes it moot. */
static const struct rl_str superseded = { "superseded", 10 };

static size_t
deadline_key(char *buf, int64_t due, const char *p, size_t plen)
{
	store_put_be64(buf, (uint64_t)due);
	memcpy(buf + 8, p, plen);
	return 8 + plen;
}

static size_t
open_key(char *buf, const char *p, size_t plen, enum rule_id rule)
{
	memcpy(buf, p, plen);
	buf[plen] = '\0';
	buf[plen + 1] = (char)rule;
	return plen + 2;
}

/*
 * Record that a rule's alert opened (open) or closed for a participant:
 * pt when the caller holds the record, else the record of participant p.
 * Holding callers pass it rather than load it again, so no other
 * participant's load can reuse its slot meanwhile (participants.c).
 */
static int
mark_open(struct broker *b, MDB_txn *txn, struct participant *pt,
    const char *p, enum rule_id rule, bool open)
{
	int rc;

	if (pt == NULL) {
		rc = participants_load(b, txn, p, strlen(p), false, &pt);
		if (rc == MDB_NOTFOUND)
			return 0;       /* erased: nothing left to mark */
		if (rc != 0)
			return rc;
	}
	if (open)
		pt->armed.open |= 1u << rule;
	else
		pt->armed.open &= ~(1u << rule);
	participants_touch(pt);
	return 0;
}

/*
 * Retention is counted in whole days, rounded up: its deadline then moves
 * once a day at most, not with every event.
 */
static int64_t
retention_due(const struct broker *b, const struct pathway *pw)
{
	const int64_t day = 86400000;
	int64_t due;

	if (pw->last_activity == 0)
		return 0;
	due = pw->last_activity + (int64_t)b->cfg->retention_days * day;
	return (due + day - 1) / day * day;
}

/* When each slot (each rule, then retention) falls due for pw. */
static void
due_times(const struct broker *b, const struct pathway *pw, int64_t now,
    int64_t due[ARMED_SLOTS])
{
	pathway_due(pw, b->cfg->rules, now, due);
	due[RETENTION_SLOT] = retention_due(b, pw);
}

static int
index_del(struct broker *b, MDB_txn *txn, struct armed *a, const char *p,
    size_t plen)
{
	char key[DEADLINE_KEY_MAX];
	MDB_val k;
	int rc;

	if (a->key_due == 0)
		return 0;
	k.mv_size = deadline_key(key, a->key_due, p, plen);
	k.mv_data = key;
	rc = store_del(&b->st, txn, b->st.deadlines, &k);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	a->key_due = 0;
	return 0;
}

/*
 * Bring the participant's key in line with its due times (due_times(); see
 * the lazy rule at the top of this file): at the earliest due time that
 * has not fired yet.
 */
static int
rearm(struct broker *b, MDB_txn *txn, struct participant *pt,
    const int64_t due[ARMED_SLOTS])
{
	struct armed *a = &pt->armed;
	const char *p = pt->pw.participant;
	size_t plen = strlen(p);
	int64_t next = 0;
	char key[DEADLINE_KEY_MAX];
	MDB_val k, v = { 0, "" };
	int rc;

	for (int r = 0; r < ARMED_SLOTS; r++)
		if (due[r] != 0 && due[r] != a->fired[r] && (next == 0 || due[r] < next))
			next = due[r];
	if (next == a->key_due || (a->key_due != 0 && next > a->key_due))
		return 0;               /* the key is right, or early: keep it */
	if ((rc = index_del(b, txn, a, p, plen)) != 0)
		return rc;
	participants_touch(pt);
	if (next == 0)
		return 0;
	k.mv_size = deadline_key(key, next, p, plen);
	k.mv_data = key;
	if ((rc = store_put(&b->st, txn, b->st.deadlines, &k, &v, 0)) != 0)
		return rc;
	a->key_due = next;
	return 0;
}

static int
get_alert(struct broker *b, MDB_txn *txn, uint64_t seq, struct alert *a)
{
	char key[8];
	MDB_val k = { 8, key }, v;
	int rc;

	store_put_be64(key, seq);
	if ((rc = mdb_get(txn, b->st.alerts, &k, &v)) != 0)
		return rc;
	return alert_unpack(v.mv_data, v.mv_size, a) == RL_OK ? 0 : MDB_CORRUPTED;
}

/*
 * Store an alert as it is, delivering nothing; its index entries follow
 * the stored record's (alert_index.h), in the same transaction.
 */
static int
put_alert(struct broker *b, MDB_txn *txn, const struct alert *a)
{
	static struct alert old;    /* 4 KB: not on the stack */
	char key[8];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	MDB_val k = { 8, key }, v;
	int rc;

	store_put_be64(key, a->seq);
	rc = mdb_get(txn, b->st.alerts, &k, &v);
	if (rc == 0 && alert_unpack(v.mv_data, v.mv_size, &old) != RL_OK)
		rc = MDB_CORRUPTED;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = alert_index_update(&b->st, txn, rc == 0 ? &old : NULL, a)) != 0)
		return rc;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	alert_pack(&pk, a, NULL);
	v.mv_size = sb.size;
	v.mv_data = sb.data;
	rc = store_put(&b->st, txn, b->st.alerts, &k, &v, 0);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Store the alert and deliver its change to everyone it concerns. */
static int
publish(struct broker *b, MDB_txn *txn, const struct alert *a, const char *change)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	const char *sent[64];
	int nsent = 0, rc;

	if ((rc = put_alert(b, txn, a)) != 0 ||
	    (rc = indicators_alert(b, txn, a, change)) != 0)
		return rc;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	alert_pack(&pk, a, change);
	/* Every coordinator covering the participant's QPV... */
	for (size_t i = 0; rc == 0 && i < b->cfg->nagents; i++) {
		const struct agent *ag = &b->cfg->agents[i];

		if (ag->kind != AK_COORDINATOR ||
		    !agent_covers_qpv(ag, a->qpv, strlen(a->qpv)))
			continue;
		/* Sessions are parallel to the registry's agents. */
		rc = mailbox_append(b, txn, &b->peers.sessions[i], MBOX_ALERT, sb.data,
		    sb.size);
		if (nsent < 64)
			sent[nsent++] = ag->id;
	}
	/* ...and the agents concerned, once each. */
	for (int i = 0; rc == 0 && i < a->nagents; i++) {
		struct session *s = sessions_find(b, a->agents[i]);
		bool dup = false;

		for (int j = 0; j < nsent && !dup; j++)
			dup = strcmp(sent[j], a->agents[i]) == 0;
		if (!dup && s != NULL)
			rc = mailbox_append(b, txn, s, MBOX_ALERT, sb.data, sb.size);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int
open_alert(struct broker *b, MDB_txn *txn, struct participant *pt,
    enum rule_id rule, const struct pw_alert_info *info, int64_t now)
{
	const struct pathway *pw = &pt->pw;
	struct alert a;
	char key[PW_ID_SIZE + 2];
	MDB_val k, v;
	uint64_t seq;
	size_t plen = strlen(pw->participant);
	int rc;

	k.mv_size = open_key(key, pw->participant, plen, rule);
	k.mv_data = key;
	rc = mdb_get(txn, b->st.alert_open, &k, &v);
	if (rc == 0)
		return 0;               /* one open alert per participant and rule */
	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = store_get_u64(txn, b->st.meta, "alert_seq", 9, &seq)) != 0 ||
	    (rc = store_put_u64(&b->st, txn, b->st.meta, "alert_seq", 9, seq + 1)) != 0 ||
	    (rc = store_put_u64(&b->st, txn, b->st.alert_open, key, k.mv_size, seq + 1)) != 0 ||
	    (rc = mark_open(b, txn, pt, NULL, rule, true)) != 0)
		return rc;

	memset(&a, 0, sizeof(a));
	a.seq = seq + 1;
	snprintf(a.participant, sizeof(a.participant), "%s", pw->participant);
	snprintf(a.qpv, sizeof(a.qpv), "%s", pw->qpv);
	a.rule = rule;
	a.severity = info->severity;
	a.nagents = info->nagents > 4 ? 4 : info->nagents;
	for (int i = 0; i < a.nagents; i++)
		snprintf(a.agents[i], sizeof(a.agents[i]), "%s", info->agents[i]);
	snprintf(a.referral, sizeof(a.referral), "%s", info->referral);
	a.opened_at = now;
	a.status = ALERT_OPEN;
	if ((rc = publish(b, txn, &a, "opened")) != 0)
		return rc;
	b->counters.alerts_opened++;
	log_info("alert.opened", "alert", LOG_U64(a.seq),
	    "rule", LOG_STR(rule_name(rule)), "qpv", LOG_STR(a.qpv),
	    "severity", LOG_STR(a.severity >= 2 ? "alert" : "warning"), NULL);
	return 0;
}

static int
resolve_alert(struct broker *b, MDB_txn *txn, struct participant *pt,
    struct alert *a, const char *by,
    const struct rl_str *note, int64_t now)
{
	char key[PW_ID_SIZE + 2];
	MDB_val k;
	int rc;

	a->status = ALERT_RESOLVED;
	snprintf(a->resolved_by, sizeof(a->resolved_by), "%s", by);
	a->resolved_at = now;
	if (note != NULL && note->len > 0)
		snprintf(a->note, sizeof(a->note), "%.*s", (int)note->len, note->p);
	k.mv_size = open_key(key, a->participant, strlen(a->participant), a->rule);
	k.mv_data = key;
	rc = store_del(&b->st, txn, b->st.alert_open, &k);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mark_open(b, txn, pt, a->participant, a->rule, false)) != 0 ||
	    (rc = publish(b, txn, a, "resolved")) != 0)
		return rc;
	b->counters.alerts_resolved++;
	log_info("alert.resolved", "alert", LOG_U64(a->seq),
	    "rule", LOG_STR(rule_name(a->rule)), "by", LOG_STR(by),
	    "automatic", LOG_BOOL(strcmp(by, AUTO_RESOLVER) == 0), NULL);
	return 0;
}

/*
 * Resolve the participant's open alerts whose rule no longer holds at now,
 * with note (NULL for none).
 */
static int
resolve_moot(struct broker *b, MDB_txn *txn, struct participant *pt,
    int64_t now, const struct rl_str *note)
{
	const char *p = pt->pw.participant;
	size_t plen = strlen(p);
	char key[PW_ID_SIZE + 2];
	int rc;

	for (int r = 0; r < RULE__COUNT && pt->armed.open != 0; r++) {
		struct alert a;
		uint64_t seq;

		if (!(pt->armed.open & (1u << r)))
			continue;
		open_key(key, p, plen, (enum rule_id)r);
		if ((rc = store_get_u64(txn, b->st.alert_open, key, plen + 2, &seq)) != 0)
			return rc;
		if (seq == 0 || pathway_rule_holds(&pt->pw, (enum rule_id)r,
		    b->cfg->rules, now, NULL))
			continue;
		if ((rc = get_alert(b, txn, seq, &a)) != 0)
			return rc;
		if (strcmp(a.participant, p) != 0 || a.rule != (enum rule_id)r)
			return MDB_CORRUPTED;   /* the index names another's alert */
		if ((rc = resolve_alert(b, txn, pt, &a, AUTO_RESOLVER, note, now)) != 0)
			return rc;
	}
	return 0;
}

int
alerts_after_event(struct broker *b, MDB_txn *txn, struct participant *pt,
    int64_t now)
{
	int64_t due[ARMED_SLOTS];
	int rc;

	due_times(b, &pt->pw, now, due);
	if ((rc = rearm(b, txn, pt, due)) != 0)
		return rc;
	return resolve_moot(b, txn, pt, now, NULL);
}

/*
 * A participant's deadline key came up (the sweep has deleted it).  It may
 * be early (activity pushed the due times later): then nothing is due and
 * the key goes to the true time.  Otherwise every slot due and not yet
 * fired fires: retention erases the person, a rule opens an alert if it
 * holds.
 */
static int
fire(struct broker *b, MDB_txn *txn, int64_t at, const char *p, size_t plen,
    int64_t now, unsigned *fired)
{
	struct participant *pt;
	struct pw_alert_info info;
	int64_t due[ARMED_SLOTS];
	int rc;

	rc = participants_load(b, txn, p, plen, false, &pt);
	if (rc == MDB_NOTFOUND)
		return 0;               /* erased since */
	if (rc != 0)
		return rc;
	if (pt->armed.key_due != at)
		return 0;               /* not this participant's key any more */
	pt->armed.key_due = 0;
	participants_touch(pt);
	due_times(b, &pt->pw, now, due);
	if (due[RETENTION_SLOT] != 0 && due[RETENTION_SLOT] <= now) {
		rc = alerts_erase_participant(b, txn, pt, AUTO_RESOLVER, now);
		participants_forget(pt);
		return rc;
	}
	for (int r = 0; r < RULE__COUNT; r++) {
		if (due[r] == 0 || due[r] > now || due[r] == pt->armed.fired[r])
			continue;
		pt->armed.fired[r] = due[r];
		memset(&info, 0, sizeof(info));
		if (!pathway_rule_holds(&pt->pw, (enum rule_id)r, b->cfg->rules,
		    now, &info))
			continue;
		(*fired)++;
		if ((rc = open_alert(b, txn, pt, (enum rule_id)r, &info, now)) != 0)
			return rc;
	}
	/*
	 * No event happened, so an alert whose rule stopped holding was made
	 * moot by time itself: a referral_unanswered alert whose referral just
	 * expired, now that referral_expired speaks for it (SPEC §4).
	 */
	if ((rc = resolve_moot(b, txn, pt, now, &superseded)) != 0)
		return rc;
	return rearm(b, txn, pt, due);
}

/*
 * A participant whose deadline cannot be handled (its record or alerts are
 * damaged) is set aside for a while instead of failing every sweep and so
 * every other participant's alerts: the sweep starts again without it, and
 * tries it again SWEEP_RETRY_MS later, logging the cause each time.
 */
static bool
set_aside(const struct broker *b, const char *p, int64_t mono)
{
	for (int i = 0; i < SWEEP_ASIDE_MAX; i++)
		if (b->sweep.aside[i].until > mono &&
		    strcmp(b->sweep.aside[i].participant, p) == 0)
			return true;
	return false;
}

static void
put_aside(struct broker *b, const char *p, int64_t mono)
{
	int slot = 0;

	for (int i = 1; i < SWEEP_ASIDE_MAX; i++)
		if (b->sweep.aside[i].until < b->sweep.aside[slot].until)
			slot = i;
	snprintf(b->sweep.aside[slot].participant,
	    sizeof(b->sweep.aside[slot].participant), "%s", p);
	b->sweep.aside[slot].until = mono + SWEEP_RETRY_MS;
}

static int sweep(struct broker *b, int64_t now, unsigned *fired, unsigned *n,
    char *failed);

/* Runs every tick; its cost is measured and kept for health queries. */
int
alerts_sweep(struct broker *b, int64_t now, unsigned *fired)
{
	int64_t t0 = rl_mono_us();
	char failed[PW_ID_SIZE];
	unsigned n = 0;
	int rc;

	b->sweep.started_us = t0;
	for (int attempt = 0;; attempt++) {
		failed[0] = '\0';
		rc = sweep(b, now, fired, &n, failed);
		if (rc == 0 || failed[0] == '\0' || attempt == SWEEP_ASIDE_MAX)
			break;
		put_aside(b, failed, rl_mono_ms());
		log_error("alerts.deadline_failed", "error", LOG_STR(mdb_strerror(rc)),
		    "retry_s", LOG_I64(SWEEP_RETRY_MS / 1000), "hint",
		    LOG_STR("one participant's deadline could not be handled and "
		    "is set aside; run relaisd --verify on a backup"), NULL);
	}

	b->sweep.last_us = rl_mono_us() - t0;
	b->sweep.last_due = n;
	if (b->sweep.last_us > b->sweep.max_us)
		b->sweep.max_us = b->sweep.last_us;
	if (n > 0)
		log_debug("alerts.swept", "deadlines", LOG_U64(n),
		    "fired", LOG_U64(*fired), "sweep_us", LOG_I64(b->sweep.last_us),
		    "scan_us", LOG_I64(b->sweep.last_scan_us), NULL);
	return rc;
}

/* failed: the participant whose deadline made the sweep fail, or "". */
static int
sweep(struct broker *b, int64_t now, unsigned *fired, unsigned *np,
    char *failed)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t mono = rl_mono_ms();
	unsigned n = 0;
	int rc;

	*fired = 0;
	if ((rc = txn_begin(b, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, b->st.deadlines, &cur)) != 0) {
		txn_abort(b, txn);
		return rc;
	}
	/* After mdb_cursor_del, MDB_NEXT moves to the following key. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < SWEEP_MAX &&
	    (n == 0 || rl_mono_us() - b->sweep.started_us < SWEEP_BUDGET_US);
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char p[PW_ID_SIZE];
		size_t plen;
		int64_t at;

		if (k.mv_size < 9 || k.mv_size > DEADLINE_KEY_MAX - 1) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((at = (int64_t)store_be64(k.mv_data)) > now)
			break;
		plen = k.mv_size - 8;
		memcpy(p, (char *)k.mv_data + 8, plen);
		p[plen] = '\0';
		if (set_aside(b, p, mono))
			continue;
		if ((rc = store_cursor_del(&b->st, cur)) != 0)
			break;
		n++;
		if ((rc = fire(b, txn, at, p, plen, now, fired)) != 0) {
			memcpy(failed, p, plen + 1);
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		txn_abort(b, txn);
		if (failed[0] == '\0')
			log_error("alerts.sweep_failed", "error", LOG_STR(mdb_strerror(rc)), NULL);
		return rc;
	}
	*np = n;
	/* The index work alone, before the commit's fsync. */
	b->sweep.last_scan_us = rl_mono_us() - b->sweep.started_us;
	if (n == 0) {
		txn_abort(b, txn);
		return 0;
	}
	if ((rc = txn_commit(b, txn)) != 0) {
		log_error("alerts.sweep_failed", "error", LOG_STR(mdb_strerror(rc)), NULL);
		return rc;
	}
	b->counters.commits++;
	return 0;
}

/* alert.acknowledged / alert.resolved from a coordinator. */
int
alerts_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, int64_t now, struct rl_error *err)
{
	struct alert a;
	uint64_t seq = alert_id_parse(ev->alert.p, ev->alert.len);
	int rc;

	if (seq == 0 || (rc = get_alert(b, txn, seq, &a)) == MDB_NOTFOUND)
		return rl_error_set(err, RL_E_UNKNOWN_ALERT, "alert",
		    "no alert %.*s exists", (int)ev->alert.len, ev->alert.p);
	if (rc != 0)
		return store_error(&b->st, err, rc);
	if (!agent_covers_qpv(sender, a.qpv, strlen(a.qpv)))
		return rl_error_set(err, RL_E_FORBIDDEN, "alert",
		    "alert %.*s is outside your territory", (int)ev->alert.len,
		    ev->alert.p);
	/* The event joins the participant's timeline: it must be theirs. */
	if (strlen(a.participant) != ev->participant.len ||
	    memcmp(a.participant, ev->participant.p, ev->participant.len) != 0)
		return rl_error_set(err, RL_E_BAD_FIELD, "participant",
		    "alert %.*s is not about this participant", (int)ev->alert.len,
		    ev->alert.p);
	if (a.status == ALERT_RESOLVED ||
	    (ev->type == EV_ALERT_ACKNOWLEDGED && a.status != ALERT_OPEN))
		return rl_error_set(err, RL_E_BAD_TRANSITION, "alert",
		    "alert %.*s is already %s", (int)ev->alert.len, ev->alert.p,
		    alert_status_name(a.status));
	if (ev->type == EV_ALERT_RESOLVED) {
		rc = resolve_alert(b, txn, NULL, &a, sender->id, &ev->note, now);
	} else {
		a.status = ALERT_ACKNOWLEDGED;
		snprintf(a.acknowledged_by, sizeof(a.acknowledged_by), "%s", sender->id);
		a.acknowledged_at = now;
		if (ev->note.len > 0)
			snprintf(a.note, sizeof(a.note), "%.*s", (int)ev->note.len,
			    ev->note.p);
		rc = publish(b, txn, &a, "acknowledged");
		log_info("alert.acknowledged", "alert", LOG_U64(a.seq),
		    "by", LOG_STR(sender->id), NULL);
	}
	if (rc != 0)
		return store_error(&b->st, err, rc);
	return RL_OK;
}


/*
 * Erasure: every alert about the participant loses the participant and
 * referral ids; open ones are resolved by whoever erased, and that
 * resolution is delivered without the id.  The alerts come from their
 * index by participant, whose entries go with the id.
 */
static int
forget_participant(struct broker *b, MDB_txn *txn, const char *p,
    const char *by, int64_t now)
{
	char key[PW_ID_SIZE + 2];
	size_t plen = strlen(p), n;
	uint64_t *seqs;
	int rc;

	for (int r = 0; r < RULE__COUNT; r++) {
		MDB_val ok;

		ok.mv_size = open_key(key, p, plen, (enum rule_id)r);
		ok.mv_data = key;
		rc = store_del(&b->st, txn, b->st.alert_open, &ok);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	if ((rc = alert_index_about(&b->st, txn, p, &seqs, &n)) != 0) {
		free(seqs);
		return rc;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct alert a;

		if ((rc = get_alert(b, txn, seqs[i], &a)) != 0)
			break;
		a.participant[0] = '\0';
		a.referral[0] = '\0';
		if (a.status != ALERT_RESOLVED) {
			a.status = ALERT_RESOLVED;
			snprintf(a.resolved_by, sizeof(a.resolved_by), "%s", by);
			a.resolved_at = now;
			snprintf(a.note, sizeof(a.note), "participant erased");
			rc = publish(b, txn, &a, "resolved");
		} else {
			rc = put_alert(b, txn, &a);
		}
	}
	free(seqs);
	return rc;
}

/*
 * Erase a person: their deadline and the ids in their alerts here, then
 * the rest (erase.c).  The one way in for erasure, from an event
 * (ingest.c) or from retention (fire()), so the calls go one way only.
 */
int
alerts_erase_participant(struct broker *b, MDB_txn *txn, struct participant *pt,
    const char *by, int64_t now)
{
	const char *p = pt->pw.participant;
	int rc;

	if ((rc = index_del(b, txn, &pt->armed, p, strlen(p))) != 0 ||
	    (rc = forget_participant(b, txn, p, by, now)) != 0)
		return rc;
	return erase_participant(b, txn, pt, by, now);
}

/*
 * The deadline index holds due times computed with the rules in force when
 * each participant last changed.  When the rules change (a threshold, a rule
 * switched on or off, retention_days), every pathway is re-armed, and alerts
 * whose rule no longer holds are resolved.  That is one pass over the
 * participants, done only when the rules differ from those the index was
 * built with (their hash is kept in "meta"), and done in slices: at most
 * REARM_SLICE participants or REARM_BUDGET_US of work per tick, each slice
 * its own transaction, so that a reload never keeps the loop from
 * answering agents.  The hash is written with the last slice; a broker
 * stopped before starts the pass again at its next start.
 *
 * While a pass is under way, every decision already uses the new rules:
 * the sweep re-checks a rule against them before opening an alert (an
 * early key finds nothing due and moves), and an event re-arms its
 * participant at once and resolves what no longer holds.  Only two things
 * wait for the pass to reach a participant who has had no event: an alert
 * that the new rules bring earlier than the participant's key opens when
 * the pass re-arms it (or at the old key, if that comes first), and an
 * open alert whose rule the new rules no longer hold is resolved then.  A
 * reload during a pass starts it again from the first participant.
 */
static void
rules_fingerprint(const struct config *cfg, unsigned char fp[16])
{
	crypto_generichash_state st;
	uint32_t retention = cfg->retention_days;

	crypto_generichash_init(&st, NULL, 0, 16);
	for (int r = 0; r < RULE__COUNT; r++) {
		unsigned char on = cfg->rules[r].enabled;
		uint32_t th = cfg->rules[r].threshold;

		crypto_generichash_update(&st, &on, 1);
		crypto_generichash_update(&st, (const unsigned char *)&th, sizeof(th));
	}
	crypto_generichash_update(&st, (const unsigned char *)&retention,
	    sizeof(retention));
	crypto_generichash_final(&st, fp, 16);
}

#define REARM_SLICE         500     /* participants per tick */
#define REARM_BUDGET_US     (20 * 1000)

/*
 * Re-arm the next slice of participants, after b->rearm.after (a key, or
 * "" at the start).  The ids are read first, then each record is changed
 * through the cache, so that no write moves the cursor's pages under it.
 * The last slice also records the rules' hash.
 */
static int
rearm_slice(struct broker *b, int64_t now, bool *done)
{
	static char ids[REARM_SLICE][PW_ID_SIZE];     /* 32 KB: not on the stack */
	int64_t t0 = rl_mono_us();
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned n = 0, i;
	int rc;

	if ((rc = txn_begin(b, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, b->st.participants, &cur)) != 0) {
		txn_abort(b, txn);
		return rc;
	}
	k.mv_size = b->rearm.alen;
	k.mv_data = b->rearm.after;
	rc = b->rearm.alen == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) :
	    mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && b->rearm.alen != 0 && k.mv_size == b->rearm.alen &&
	    memcmp(k.mv_data, b->rearm.after, b->rearm.alen) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	for (; rc == 0 && n < REARM_SLICE; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!participants_is_record(&k))
			continue;
		if (k.mv_size == 0 || k.mv_size >= PW_ID_SIZE) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(ids[n], k.mv_data, k.mv_size);
		ids[n++][k.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	*done = rc == MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND)
		rc = 0;
	/* The budget: the slice ends early, and the rest waits a tick. */
	for (i = 0; rc == 0 && i < n; i++) {
		struct participant *pt;

		if (i > 0 && rl_mono_us() - t0 >= REARM_BUDGET_US) {
			*done = false;
			break;
		}
		if ((rc = participants_load(b, txn, ids[i], strlen(ids[i]), false,
		    &pt)) == 0)
			rc = alerts_after_event(b, txn, pt, now);
	}
	if (rc == 0 && *done) {
		MDB_val fk = { 8, "rules_fp" }, fv = { sizeof(b->rearm.fp), b->rearm.fp };

		rc = store_put(&b->st, txn, b->st.meta, &fk, &fv, 0);
	}
	if (rc != 0) {
		txn_abort(b, txn);
		return rc;
	}
	if ((rc = txn_commit(b, txn)) != 0)
		return rc;
	if (i > 0) {
		b->rearm.alen = strlen(ids[i - 1]);
		memcpy(b->rearm.after, ids[i - 1], b->rearm.alen);
	}
	b->rearm.count += i;
	b->rearm.slices++;
	b->counters.commits++;
	return 0;
}

int
alerts_rearm_start(struct broker *b)
{
	unsigned char fp[16];
	MDB_txn *txn;
	MDB_val k = { 8, "rules_fp" }, v;
	bool same, empty;
	int rc;

	rules_fingerprint(b->cfg, fp);
	if ((rc = txn_read_begin(b, &txn)) != 0)
		return rc;
	rc = mdb_get(txn, b->st.meta, &k, &v);
	same = rc == 0 && v.mv_size == sizeof(fp) && memcmp(v.mv_data, fp, sizeof(fp)) == 0;
	/* A store with no fingerprint yet only needs one if it has pathways. */
	empty = store_count(txn, b->st.participants) == 0;
	txn_read_end(b, txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	/*
	 * A pass under way for these rules goes on; one for other rules has
	 * armed some people with those: start again.
	 */
	if (b->rearm.active ? memcmp(fp, b->rearm.fp, sizeof(fp)) == 0 : same)
		return 0;
	memset(&b->rearm, 0, sizeof(b->rearm));
	memcpy(b->rearm.fp, fp, sizeof(fp));
	if (empty) {
		if ((rc = txn_begin(b, &txn)) != 0)
			return rc;
		v.mv_size = sizeof(fp);
		v.mv_data = fp;
		if ((rc = store_put(&b->st, txn, b->st.meta, &k, &v, 0)) != 0) {
			txn_abort(b, txn);
			return rc;
		}
		return txn_commit(b, txn);
	}
	b->rearm.active = true;
	log_info("rules.rearming", "hint", LOG_STR("the rules changed: every "
	    "pathway is re-armed, a slice per tick"), NULL);
	return 0;
}

int
alerts_rearm_step(struct broker *b, int64_t now)
{
	bool done = false;
	int rc;

	if (!b->rearm.active)
		return 0;
	if ((rc = rearm_slice(b, now, &done)) != 0) {
		log_error("rules.rearm_failed", "error", LOG_STR(mdb_strerror(rc)),
		    "hint", LOG_STR("the re-arming is tried again at the next "
		    "tick; if this lasts, run relaisd --verify on a backup"), NULL);
		return rc;
	}
	if (done) {
		b->rearm.active = false;
		log_info("rules.rearmed", "participants", LOG_U64(b->rearm.count),
		    "slices", LOG_U64(b->rearm.slices), NULL);
	}
	return 0;
}
