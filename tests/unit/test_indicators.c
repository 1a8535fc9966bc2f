/*
 * The indicators (broker/indicators.c, broker/report.c) against a
 * computation from scratch.
 *
 * A seeded random stream of events of every type, from two partners about
 * a dozen people in three QPVs, with late-reported events, alert sweeps,
 * coordinator resolutions, erasures and retention, goes through the real
 * ingest.  The test keeps the events the broker accepted and recomputes
 * every column of every report from them: Paris days through the system's
 * tz database (not the broker's calendar code), distinct people from sets,
 * medians from sorted lists.  Then it erases everyone and checks that no
 * figure moved.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "alert.h"
#include "calendar.h"
#include "fixture.h"

#define DAY     INT64_C(86400000)
#define HOUR    INT64_C(3600000)
/* 2025-12-20T00:00:00Z: the stream crosses a year, quarters, and DST. */
#define T0      INT64_C(1766188800000)
#define NPEOPLE 12
#define NQPV    3
#define MAXEV   4000
#define MAXREF  400

static const char *const qpvs[NQPV] = { "sanitas", "europe", "rives" };
static const char *const partners[2] = { "med", "ml" };

/* ---- Paris days, independently of proto/calendar.c ---------------------- */

static int32_t
tz_day(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	return cal_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static void
use_paris_tz(void)
{
	setenv("TZ", "Europe/Paris", 1);
	tzset();
}

static void
test_paris_days(void **state)
{
	/* Winter: UTC+1.  2026-01-15T22:59:59Z is still the 15th in Paris. */
	int64_t jan15 = (int64_t)cal_days_from_civil(2026, 1, 15) * DAY;
	/* DST starts 2026-03-29 at 01:00 UTC, ends 2026-10-25 at 01:00 UTC. */
	int64_t mar29 = (int64_t)cal_days_from_civil(2026, 3, 29) * DAY;
	int64_t oct25 = (int64_t)cal_days_from_civil(2026, 10, 25) * DAY;
	int32_t first, last;

	(void)state;
	assert_int_equal(cal_paris_day(jan15 + 23 * HOUR - 1), cal_days_from_civil(2026, 1, 15));
	assert_int_equal(cal_paris_day(jan15 + 23 * HOUR), cal_days_from_civil(2026, 1, 16));
	assert_int_equal(cal_paris_offset_ms(mar29 + HOUR - 1), HOUR);
	assert_int_equal(cal_paris_offset_ms(mar29 + HOUR), 2 * HOUR);
	assert_int_equal(cal_paris_offset_ms(oct25 + HOUR - 1), 2 * HOUR);
	assert_int_equal(cal_paris_offset_ms(oct25 + HOUR), HOUR);
	/* Summer: midnight in Paris is 22:00 UTC the day before. */
	assert_int_equal(cal_paris_day(oct25 - 2 * HOUR - 1), cal_days_from_civil(2026, 10, 24));
	assert_int_equal(cal_paris_day(oct25 - 2 * HOUR), cal_days_from_civil(2026, 10, 25));
	/* Every quarter hour of 2025 to 2027 against the tz database. */
	use_paris_tz();
	for (int64_t t = (int64_t)cal_days_from_civil(2025, 1, 1) * DAY;
	    t < (int64_t)cal_days_from_civil(2028, 1, 1) * DAY; t += 15 * 60000)
		if (cal_paris_day(t) != tz_day(t))
			fail_msg("Paris day of %lld: %d, the tz database says %d",
			    (long long)t, cal_paris_day(t), tz_day(t));
	assert_true(cal_parse_period("2026-Q3", 7, &first, &last));
	assert_int_equal(first, cal_days_from_civil(2026, 7, 1));
	assert_int_equal(last, cal_days_from_civil(2026, 9, 30));
	assert_true(cal_parse_period("2024-02", 7, &first, &last));
	assert_int_equal(last, cal_days_from_civil(2024, 2, 29));
	assert_false(cal_parse_period("2026-13", 7, &first, &last));
	assert_false(cal_parse_period("2026-Q5", 7, &first, &last));
	assert_false(cal_parse_date("2026-02-29", 10, &first));
}

/* ---- the stream and what the test keeps of it ------------------------- */

struct mev {
	enum ev_type type;
	int32_t day;
	int64_t at;
	uint64_t seq;
	char qpv[PW_ID_SIZE];       /* the person's QPV after the event */
	const char *agent;
	int person;                 /* id * 1000 + erasures so far, or -1 */
	char code[PW_CODE_SIZE];
	int64_t contacts;
	int score;
	int ref;                    /* index in refs, or -1 */
};

struct mref {
	char id[16];
	int pid;
	const char *from, *to;
	char qpv[PW_ID_SIZE];
	int64_t sent_at;
	int32_t expires;
	bool answered;
};

struct model {
	struct fixture *fx;
	unsigned stream;            /* the seed the stream started from */
	unsigned seed;
	struct mev ev[MAXEV];
	int nev;
	struct mref refs[MAXREF];
	int nref;
	int epoch[NPEOPLE];
	char qpv[NPEOPLE][PW_ID_SIZE];
	bool exists[NPEOPLE];
	int nsent;
};

static unsigned
rnd(struct model *m, unsigned n)
{
	m->seed = m->seed * 1103515245u + 12345u;
	return (m->seed >> 8) % n;
}

static const char *
pick(struct model *m, enum ev_codes codes)
{
	const char *const *list = ev_code_list(codes);
	unsigned n = 0;

	while (list[n] != NULL)
		n++;
	return list[rnd(m, n)];
}

/* Submit one event (key/value strings) at "now"; true if accepted. */
static bool
submit(struct model *m, const char *sender, int64_t now, uint64_t *seq,
    int n, ...)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct ingest_result res;
	struct rl_error err;
	va_list ap;
	char eid[32];
	int code;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)n + 1);
	snprintf(eid, sizeof(eid), "e-%d", ++m->nsent);
	codec_pack_kv_str(&pk, "event_id", eid);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v = va_arg(ap, const char *);

		codec_pack_str(&pk, k);
		if (strcmp(k, "occurred_at") == 0 || strcmp(k, "contacts") == 0 ||
		    strcmp(k, "score") == 0 || strcmp(k, "at") == 0)
			msgpack_pack_int64(&pk, atoll(v));
		else
			codec_pack_str(&pk, v);
	}
	va_end(ap);
	code = ingest_at(m->fx, sender, &sb, now, &res, &err);
	msgpack_sbuffer_destroy(&sb);
	if (code == RL_E_STORAGE || code == RL_E_STORAGE_FULL)
		fail_msg("stream %u: storage error: %s", m->stream, err.message);
	*seq = res.seq;
	return code == RL_OK;
}

static void
keep(struct model *m, struct mev *e, int p, int64_t now, uint64_t seq)
{
	if (m->nev == MAXEV)
		fail_msg("stream %u: more than %d events", m->stream, MAXEV);
	if (p >= 0) {
		if (e->type == EV_PARTICIPANT_IDENTIFIED)
			snprintf(m->qpv[p], sizeof(m->qpv[p]), "%s", e->qpv);
		m->exists[p] = true;
		snprintf(e->qpv, sizeof(e->qpv), "%s", m->qpv[p]);
		e->person = p * 64 + m->epoch[p];
	}
	e->day = tz_day(e->at < now ? e->at : now);
	e->seq = seq;
	m->ev[m->nev++] = *e;
}

/* A random referral of the stream, or -1. */
static int
some_referral(struct model *m)
{
	return m->nref == 0 ? -1 : (int)rnd(m, (unsigned)m->nref);
}

/* One random event at "now", perhaps reported late. */
static void
one_event(struct model *m, int64_t now)
{
	int64_t at = now - (rnd(m, 5) == 0 ? (int64_t)rnd(m, 240) * HOUR : 0);
	char ats[24], num[16], pid[16], id[16];
	int p = (int)rnd(m, NPEOPLE), r;
	const char *agent = partners[rnd(m, 2)], *q = qpvs[rnd(m, NQPV)];
	const char *c = "";
	struct mev e;
	uint64_t seq = 0;
	bool ok = false;

	memset(&e, 0, sizeof(e));
	e.at = at;
	e.agent = agent;
	e.person = -1;
	e.ref = -1;
	snprintf(ats, sizeof(ats), "%lld", (long long)at);
	snprintf(pid, sizeof(pid), "p%d", p);
	switch (rnd(m, 22)) {
	case 0:
		e.type = EV_OUTREACH_INTERVENTION;
		c = pick(m, EVC_PLACE);
		e.contacts = rnd(m, 20);
		snprintf(num, sizeof(num), "%lld", (long long)e.contacts);
		snprintf(e.qpv, sizeof(e.qpv), "%s", q);
		snprintf(e.code, sizeof(e.code), "%s", c);
		if (submit(m, agent, now, &seq, 5, "type", "outreach.intervention",
		    "occurred_at", ats, "place", c, "qpv", q, "contacts", num))
			keep(m, &e, -1, now, seq);
		return;
	case 1: case 2:
		e.type = EV_PARTICIPANT_IDENTIFIED;
		c = pick(m, EVC_SOURCE);
		snprintf(e.qpv, sizeof(e.qpv), "%s", q);
		ok = submit(m, agent, now, &seq, 5, "type", "participant.identified",
		    "occurred_at", ats, "participant", pid, "qpv", q, "source", c);
		break;
	case 3:
		e.type = EV_CONTACT_MADE;
		c = pick(m, EVC_CHANNEL);
		ok = submit(m, agent, now, &seq, 4, "type", "contact.made",
		    "occurred_at", ats, "participant", pid, "channel", c);
		break;
	case 4: case 5:
		e.type = rnd(m, 2) ? EV_BARRIER_IDENTIFIED : EV_BARRIER_LIFTED;
		c = pick(m, EVC_BARRIER);
		ok = submit(m, agent, now, &seq, 4, "type", ev_type_name(e.type),
		    "occurred_at", ats, "participant", pid, "barrier", c);
		break;
	case 6: case 7:
		if (m->nref == MAXREF)
			return;
		e.type = EV_REFERRAL_SENT;
		snprintf(id, sizeof(id), "r%d", m->nref);
		ok = submit(m, agent, now, &seq, 6, "type", "referral.sent",
		    "occurred_at", ats, "participant", pid, "referral", id,
		    "to", partners[agent == partners[0]], "purpose", "cv");
		if (ok) {
			struct mref *mr = &m->refs[m->nref];

			memset(mr, 0, sizeof(*mr));
			snprintf(mr->id, sizeof(mr->id), "%s", id);
			mr->pid = p;
			mr->from = agent;
			mr->to = partners[agent == partners[0]];
			memcpy(mr->qpv, m->qpv[p], sizeof(mr->qpv));
			mr->sent_at = at < now ? at : now;
			mr->expires = tz_day(mr->sent_at + (int64_t)m->fx->b.cfg->
			    rules[RULE_REFERRAL_EXPIRED].threshold * DAY);
			e.ref = m->nref++;
		}
		break;
	case 8: case 9: case 10:
		if ((r = some_referral(m)) < 0)
			return;
		p = m->refs[r].pid;
		snprintf(pid, sizeof(pid), "p%d", p);
		e.ref = r;
		if (rnd(m, 3) == 0) {
			e.type = EV_REFERRAL_CANCELLED;
			e.agent = m->refs[r].from;
			ok = submit(m, e.agent, now, &seq, 5, "type", "referral.cancelled",
			    "occurred_at", ats, "participant", pid, "referral",
			    m->refs[r].id, "reason", "the person moved away");
		} else if (rnd(m, 2) == 0) {
			e.type = EV_REFERRAL_DECLINED;
			e.agent = m->refs[r].to;
			c = pick(m, EVC_DECLINE_REASON);
			ok = submit(m, e.agent, now, &seq, 5, "type", "referral.declined",
			    "occurred_at", ats, "participant", pid, "referral",
			    m->refs[r].id, "reason", c);
		} else {
			e.type = EV_REFERRAL_ACCEPTED;
			e.agent = m->refs[r].to;
			ok = submit(m, e.agent, now, &seq, 4, "type", "referral.accepted",
			    "occurred_at", ats, "participant", pid, "referral",
			    m->refs[r].id);
		}
		if (ok)
			m->refs[r].answered = true;
		break;
	case 11: case 12:
		e.type = rnd(m, 2) ? EV_APPOINTMENT_SCHEDULED : EV_APPOINTMENT_MISSED;
		snprintf(id, sizeof(id), "a%d", (int)rnd(m, 8));
		ok = e.type == EV_APPOINTMENT_SCHEDULED ?
		    submit(m, agent, now, &seq, 5, "type", "appointment.scheduled",
		    "occurred_at", ats, "participant", pid, "appointment", id, "at", ats) :
		    submit(m, agent, now, &seq, 4, "type", "appointment.missed",
		    "occurred_at", ats, "participant", pid, "appointment", id);
		break;
	case 13: case 14:
		e.type = rnd(m, 2) ? EV_SUPPORT_STARTED : EV_SUPPORT_ENDED;
		ok = e.type == EV_SUPPORT_STARTED ?
		    submit(m, agent, now, &seq, 3, "type", "support.started",
		    "occurred_at", ats, "participant", pid) :
		    submit(m, agent, now, &seq, 4, "type", "support.ended",
		    "occurred_at", ats, "participant", pid, "outcome", "dropped_out");
		break;
	case 15:
		e.type = EV_ENROLLMENT_STARTED;
		c = pick(m, EVC_SCHEME);
		ok = submit(m, agent, now, &seq, 4, "type", "enrollment.started",
		    "occurred_at", ats, "participant", pid, "scheme", c);
		break;
	case 16:
		e.type = EV_EMPLOYMENT_STARTED;
		c = pick(m, EVC_CONTRACT);
		ok = submit(m, agent, now, &seq, 4, "type", "employment.started",
		    "occurred_at", ats, "participant", pid, "contract", c);
		break;
	case 17: case 18: case 19:
		e.type = EV_CONFIDENCE_ASSESSED;
		e.score = 1 + (int)rnd(m, 5);
		snprintf(num, sizeof(num), "%d", e.score);
		ok = submit(m, agent, now, &seq, 4, "type", "confidence.assessed",
		    "occurred_at", ats, "participant", pid, "score", num);
		break;
	case 20:
		e.type = EV_PARTICIPANT_EXITED;
		e.agent = "coord";
		c = pick(m, EVC_EXIT_REASON);
		ok = submit(m, "coord", now, &seq, 4, "type", "participant.exited",
		    "occurred_at", ats, "participant", pid, "reason", c);
		break;
	default:
		if (rnd(m, 3) != 0)
			return;
		/* An erasure: the person is new if the id comes back. */
		if (submit(m, "coord", now, &seq, 3, "type", "participant.erased",
		    "occurred_at", ats, "participant", pid)) {
			m->epoch[p]++;
			m->qpv[p][0] = '\0';
			m->exists[p] = false;
		}
		return;
	}
	snprintf(e.code, sizeof(e.code), "%s", c);
	if (ok)
		keep(m, &e, p, now, seq);
}

/* Retention erased whoever the model thinks exists and the store lacks. */
static void
notice_retention(struct model *m)
{
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(m->fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	for (int p = 0; p < NPEOPLE; p++) {
		char pid[16];
		MDB_val k, v;

		if (!m->exists[p])
			continue;
		snprintf(pid, sizeof(pid), "p%d", p);
		k.mv_size = strlen(pid);
		k.mv_data = pid;
		if (mdb_get(txn, m->fx->b.st.participants, &k, &v) == MDB_NOTFOUND) {
			m->epoch[p]++;
			m->qpv[p][0] = '\0';
			m->exists[p] = false;
		}
	}
	mdb_txn_abort(txn);
}

/* A coordinator resolves the first open alert it finds. */
static void
resolve_one_alert(struct model *m, int64_t now)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct alert a;
	bool found = false;
	char id[32], ats[24];
	uint64_t seq;

	assert_int_equal(mdb_txn_begin(m->fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, m->fx->b.st.alerts, &cur), 0);
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !found;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		found = alert_unpack(v.mv_data, v.mv_size, &a) == RL_OK &&
		    a.status != ALERT_RESOLVED && a.participant[0] != '\0';
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (!found)
		return;
	snprintf(id, sizeof(id), "al-%llu", (unsigned long long)a.seq);
	snprintf(ats, sizeof(ats), "%lld", (long long)now);
	(void)submit(m, "coord", now, &seq, 4, "type", "alert.resolved",
	    "occurred_at", ats, "participant", a.participant, "alert", id);
}

static void
run_stream(struct model *m, unsigned seed)
{
	int64_t t = T0, next_sweep = T0 + DAY;

	m->stream = m->seed = seed;
	m->fx->b.cfg->retention_days = 40;
	while (t < T0 + 130 * DAY) {
		t += (int64_t)rnd(m, 8 * 60) * 60000;
		one_event(m, t);
		if (t >= next_sweep) {
			unsigned fired;

			assert_int_equal(alerts_sweep(&m->fx->b, t, &fired), 0);
			notice_retention(m);
			if (rnd(m, 4) == 0)
				resolve_one_alert(m, t);
			next_sweep += DAY;
		}
	}
}

/* ---- the figures, from scratch --------------------------------------- */

struct filt {
	int32_t from, to, today;
	const char *qpv;            /* NULL: any (within qset if nq > 0) */
	const char *const *qset;
	int nq;
	const char *agent;          /* the sender, or the referral's sender */
	const char *flow_from, *flow_to;
	bool alerts, people;
};

struct val {
	int kind;                   /* 0 nil, 1 integer, 2 days */
	int64_t i;
	double d;
};

static const struct val NIL = { 0, 0, 0 };

static struct val
ival(int64_t i)
{
	struct val v = { 1, i, 0 };

	return v;
}

static bool
qmatch(const struct filt *f, const char *q)
{
	if (f->qpv != NULL)
		return strcmp(f->qpv, q) == 0;
	for (int i = 0; i < f->nq; i++)
		if (strcmp(f->qset[i], q) == 0)
			return true;
	return f->nq == 0;
}

static bool
in(const struct filt *f, int32_t day)
{
	return day >= f->from && day <= f->to;
}

static bool
counts_person(const struct mev *e)
{
	return e->person >= 0 && e->type != EV_PARTICIPANT_ERASED &&
	    e->type != EV_ALERT_ACKNOWLEDGED && e->type != EV_ALERT_RESOLVED;
}

/* Nearest-rank quantile of durations, as the broker reports it. */
static struct val
quantile(int64_t *d, int n, double q)
{
	struct val v = { 2, 0, 0 };
	int rank = (int)ceil(q * n);

	if (n == 0)
		return NIL;
	for (int i = 1; i < n; i++)          /* insertion sort: n is small */
		for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
			int64_t t = d[j];

			d[j] = d[j - 1];
			d[j - 1] = t;
		}
	v.d = ind_bucket_days(ind_bucket(d[(rank < 1 ? 1 : rank) - 1]));
	return v;
}

/* followed (0), assessed twice (1), improved (2) */
static int64_t
people(const struct model *m, const struct filt *f, int what)
{
	static int64_t n[NPEOPLE * 64], first_at[NPEOPLE * 64], last_at[NPEOPLE * 64];
	static uint64_t first_seq[NPEOPLE * 64], last_seq[NPEOPLE * 64];
	static int first[NPEOPLE * 64], last[NPEOPLE * 64];
	static bool seen[NPEOPLE * 64];
	int64_t total = 0;

	memset(seen, 0, sizeof(seen));
	memset(n, 0, sizeof(n));
	for (int i = 0; i < m->nev; i++) {
		const struct mev *e = &m->ev[i];
		int p = e->person;

		if (!counts_person(e) || !in(f, e->day) || !qmatch(f, e->qpv) ||
		    (f->agent != NULL && strcmp(e->agent, f->agent) != 0))
			continue;
		seen[p] = true;
		if (e->type != EV_CONFIDENCE_ASSESSED)
			continue;
		if (n[p] == 0 || e->at < first_at[p] ||
		    (e->at == first_at[p] && e->seq < first_seq[p])) {
			first_at[p] = e->at;
			first_seq[p] = e->seq;
			first[p] = e->score;
		}
		if (n[p] == 0 || e->at > last_at[p] ||
		    (e->at == last_at[p] && e->seq > last_seq[p])) {
			last_at[p] = e->at;
			last_seq[p] = e->seq;
			last[p] = e->score;
		}
		n[p]++;
	}
	for (int p = 0; p < NPEOPLE * 64; p++)
		total += what == 0 ? seen[p] : what == 1 ? n[p] >= 2 :
		    n[p] >= 2 && last[p] > first[p];
	return total;
}

static struct val
people_val(const struct model *m, const struct filt *f, int what)
{
	int64_t total = 0;

	if (!f->people)
		return NIL;
	if (f->qpv != NULL || f->nq == 0)
		return ival(people(m, f, what));
	/* A coordinator's QPV list: the sum over its QPVs. */
	for (int i = 0; i < f->nq; i++) {
		struct filt one = *f;

		one.qpv = f->qset[i];
		total += people(m, &one, what);
	}
	return ival(total);
}

static bool
ref_match(const struct filt *f, const struct mref *r)
{
	return qmatch(f, r->qpv) &&
	    (f->agent == NULL || strcmp(r->from, f->agent) == 0) &&
	    (f->flow_from == NULL || (strcmp(r->from, f->flow_from) == 0 &&
	    strcmp(r->to, f->flow_to) == 0));
}

/* A referral column: sent, accepted, declined.<reason>, ... */
static struct val
referral_val(const struct model *m, const struct filt *f, const char *name)
{
	static int64_t d[MAXEV];
	int64_t count = 0;
	int n = 0;

	if (strcmp(name, "expired") == 0) {
		for (int i = 0; i < m->nref; i++)
			count += !m->refs[i].answered && in(f, m->refs[i].expires) &&
			    m->refs[i].expires <= f->today && ref_match(f, &m->refs[i]);
		return ival(count);
	}
	for (int i = 0; i < m->nev; i++) {
		const struct mev *e = &m->ev[i];
		const struct mref *r = e->ref >= 0 ? &m->refs[e->ref] : NULL;

		if (r == NULL || !in(f, e->day) || !ref_match(f, r))
			continue;
		if ((strcmp(name, "sent") == 0 && e->type == EV_REFERRAL_SENT) ||
		    (strcmp(name, "accepted") == 0 && e->type == EV_REFERRAL_ACCEPTED) ||
		    (strcmp(name, "cancelled") == 0 && e->type == EV_REFERRAL_CANCELLED) ||
		    (strncmp(name, "declined.", 9) == 0 && e->type == EV_REFERRAL_DECLINED &&
		    strcmp(name + 9, e->code) == 0))
			count++;
		if (e->type == EV_REFERRAL_ACCEPTED || e->type == EV_REFERRAL_DECLINED)
			d[n++] = e->at - r->sent_at;
	}
	if (strcmp(name, "answer_median_days") == 0)
		return quantile(d, n, 0.5);
	if (strcmp(name, "answer_p90_days") == 0)
		return quantile(d, n, 0.9);
	return ival(count);
}

/* The alerts as stored: rule, QPV, when opened and resolved. */
struct malert {
	enum rule_id rule;
	char qpv[PW_ID_SIZE];
	int32_t opened, resolved;   /* resolved: INT32_MAX while not */
	int64_t took;
};

static struct malert alerts[4096];
static int nalerts;

static void
load_alerts(struct model *m)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;

	nalerts = 0;
	assert_int_equal(mdb_txn_begin(m->fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, m->fx->b.st.alerts, &cur), 0);
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct alert a;
		struct malert *ma = &alerts[nalerts++];

		assert_true(nalerts < 4096);
		assert_int_equal(alert_unpack(v.mv_data, v.mv_size, &a), RL_OK);
		ma->rule = a.rule;
		snprintf(ma->qpv, sizeof(ma->qpv), "%s", a.qpv);
		ma->opened = tz_day(a.opened_at);
		ma->resolved = a.status == ALERT_RESOLVED ? tz_day(a.resolved_at) : INT32_MAX;
		ma->took = a.resolved_at - a.opened_at;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
}

static struct val
alert_val(const struct filt *f, const char *name)
{
	static int64_t d[4096];
	char rule[32];
	const char *what = strrchr(name, '.');
	int64_t count = 0;
	int n = 0, r;

	snprintf(rule, sizeof(rule), "%.*s", (int)(what - name), name);
	r = rule_from_name(rule);
	assert_true(r >= 0);
	if (!f->alerts)
		return NIL;
	what++;
	for (int i = 0; i < nalerts; i++) {
		const struct malert *a = &alerts[i];

		if (a->rule != (enum rule_id)r || !qmatch(f, a->qpv))
			continue;
		if (strcmp(what, "opened") == 0)
			count += in(f, a->opened);
		else if (strcmp(what, "resolved") == 0)
			count += in(f, a->resolved);
		else if (strcmp(what, "open_at_end") == 0)
			count += a->opened <= f->to && a->resolved > f->to;
		else if (in(f, a->resolved))
			d[n++] = a->took;
	}
	return strcmp(what, "resolution_median_days") == 0 ? quantile(d, n, 0.5) :
	    ival(count);
}

/* Any column of the report or the flows, by its name. */
static struct val
column_val(const struct model *m, const struct filt *f, const char *name)
{
	static const struct {
		const char *prefix;
		enum ev_type type;
	} counted[] = {
		{ "outreach.", EV_OUTREACH_INTERVENTION },
		{ "contact.", EV_CONTACT_MADE },
		{ "identified.", EV_PARTICIPANT_IDENTIFIED },
		{ "barrier_identified.", EV_BARRIER_IDENTIFIED },
		{ "barrier_lifted.", EV_BARRIER_LIFTED },
		{ "enrolled.", EV_ENROLLMENT_STARTED },
		{ "employed.", EV_EMPLOYMENT_STARTED },
		{ "exited.", EV_PARTICIPANT_EXITED },
	};

	if (strcmp(name, "followed") == 0)
		return people_val(m, f, 0);
	if (strcmp(name, "confidence.assessed_twice") == 0)
		return people_val(m, f, 1);
	if (strcmp(name, "confidence.improved") == 0)
		return people_val(m, f, 2);
	if (strncmp(name, "referrals.", 10) == 0)
		return referral_val(m, f, name + 10);
	if (strncmp(name, "alerts.", 7) == 0)
		return alert_val(f, name + 7);
	for (size_t c = 0; c < sizeof(counted) / sizeof(counted[0]); c++) {
		size_t plen = strlen(counted[c].prefix);
		bool contacts = strcmp(name, "outreach.contacts") == 0;
		int64_t count = 0;

		if (strncmp(name, counted[c].prefix, plen) != 0)
			continue;
		for (int i = 0; i < m->nev; i++) {
			const struct mev *e = &m->ev[i];

			if (e->type != counted[c].type || !in(f, e->day) ||
			    !qmatch(f, e->qpv) ||
			    (f->agent != NULL && strcmp(e->agent, f->agent) != 0))
				continue;
			if (contacts)
				count += e->contacts;
			else if (strcmp(e->code, name + plen) == 0)
				count++;
		}
		return ival(count);
	}
	return referral_val(m, f, name);   /* a flow's column */
}

/* ---- asking the broker ----------------------------------------------- */

struct spec {
	const char *who;
	const char *period;         /* or from and to */
	const char *from, *to;
	const char *by, *qpv;
	bool flows;
};

/* The report query as "who"; *code is RL_OK or the refusal. */
static const msgpack_object *
ask(struct model *m, const struct spec *s, msgpack_sbuffer *out,
    msgpack_unpacked *up, int *code)
{
	const char *kv[12];
	msgpack_sbuffer in;
	msgpack_packer pk;
	const msgpack_object *err;
	int n = 0;

	if (s->period != NULL) { kv[n++] = "period"; kv[n++] = s->period; }
	if (s->from != NULL) { kv[n++] = "from"; kv[n++] = s->from; }
	if (s->to != NULL) { kv[n++] = "to"; kv[n++] = s->to; }
	if (s->by != NULL) { kv[n++] = "by"; kv[n++] = s->by; }
	if (s->qpv != NULL) { kv[n++] = "qpv"; kv[n++] = s->qpv; }
	msgpack_sbuffer_init(&in);
	msgpack_packer_init(&pk, &in, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)(n / 2 + s->flows));
	for (int i = 0; i < n; i += 2)
		codec_pack_kv_str(&pk, kv[i], kv[i + 1]);
	if (s->flows) {
		codec_pack_str(&pk, "flows");
		msgpack_pack_true(&pk);
	}
	fixture_query(m->fx, s->who, "report", &in, out, up);
	msgpack_sbuffer_destroy(&in);
	*code = RL_OK;
	if ((err = codec_map_get(&up->data, "code")) != NULL) {
		*code = (int)err->via.u64;
		return NULL;
	}
	return codec_map_get(&up->data, "data");
}

static const msgpack_object *
ask_ok(struct model *m, const struct spec *s, msgpack_sbuffer *out,
    msgpack_unpacked *up)
{
	int code;
	const msgpack_object *data = ask(m, s, out, up, &code);

	if (data == NULL)
		fail_msg("report as %s refused with code %d", s->who, code);
	return data;
}

static void
str_of(const msgpack_object *map, const char *key, char *buf, size_t size)
{
	const msgpack_object *o = codec_map_get(map, key);

	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_STR);
	snprintf(buf, size, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}

/* Are these days a calendar year, quarter or month? */
static bool
calendar_exact(int32_t from, int32_t to)
{
	int y, mo, d;

	cal_civil_from_days(from, &y, &mo, &d);
	return d == 1 && (to == cal_month_end(y, mo) ||
	    ((mo - 1) % 3 == 0 && to == cal_month_end(y, mo + 2)) ||
	    (mo == 1 && to == cal_month_end(y, 12)));
}

/* What the agent sees, before any breakdown. */
static struct filt
base_filter(struct model *m, const struct spec *s)
{
	const struct agent *who = config_agent_by_id(m->fx->b.cfg, s->who);
	static const char *qset[CONFIG_MAX_QPV];
	struct filt f;

	memset(&f, 0, sizeof(f));
	if (s->period != NULL)
		assert_true(cal_parse_period(s->period, strlen(s->period), &f.from, &f.to));
	else
		assert_true(cal_parse_date(s->from, 10, &f.from) &&
		    cal_parse_date(s->to, 10, &f.to));
	f.today = cal_paris_day(clock_now(&m->fx->b.clock));
	f.qpv = s->qpv;
	if (who->kind == AK_COORDINATOR) {
		for (int i = 0; i < who->nqpv; i++)
			qset[i] = who->qpv[i];
		f.qset = qset;
		f.nq = who->nqpv;
	}
	if (who->kind != AK_COORDINATOR && who->kind != AK_OPERATOR && !s->flows)
		f.agent = who->id;
	f.alerts = who->kind == AK_COORDINATOR || who->kind == AK_OPERATOR;
	f.people = calendar_exact(f.from, f.to);
	return f;
}

static void
expect(const struct model *m, const struct spec *s, const char *group,
    const char *column, const msgpack_object *got, struct val want)
{
	bool same;

	switch (want.kind) {
	case 0:
		same = got->type == MSGPACK_OBJECT_NIL;
		break;
	case 1:
		same = (got->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    (int64_t)got->via.u64 == want.i) ||
		    (got->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && got->via.i64 == want.i);
		break;
	default:
		same = got->type == MSGPACK_OBJECT_FLOAT64 &&
		    fabs(got->via.f64 - want.d) < 1e-9;
		break;
	}
	if (!same) {
		char buf[64];


		msgpack_object_print_buffer(buf, sizeof(buf), *got);
		char wbuf[32];

		if (want.kind == 0)
			snprintf(wbuf, sizeof(wbuf), "nil");
		else if (want.kind == 1)
			snprintf(wbuf, sizeof(wbuf), "%lld", (long long)want.i);
		else
			snprintf(wbuf, sizeof(wbuf), "%.4f days", want.d);
		fail_msg("stream %u, %s, %s%s%s by %s, row '%s', %s: the broker says %s, "
		    "the events give %s", m->stream, s->who,
		    s->period ? s->period : s->from, s->period ? "" : "..",
		    s->period ? "" : s->to, s->by ? s->by : "-", group, column, buf,
		    wbuf);
	}
}

static void
check_values(const struct model *m, const struct spec *s, const char *group,
    const msgpack_object *columns, const msgpack_object *values,
    const struct filt *f)
{
	assert_int_equal(values->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(values->via.array.size, columns->via.array.size);
	for (uint32_t i = 0; i < columns->via.array.size; i++) {
		char name[96];
		const msgpack_object *c = &columns->via.array.ptr[i];

		snprintf(name, sizeof(name), "%.*s", (int)c->via.str.size, c->via.str.ptr);
		expect(m, s, group, name, &values->via.array.ptr[i],
		    column_val(m, f, name));
	}
}

static void
check_report(struct model *m, const struct spec *s)
{
	msgpack_sbuffer out;
	msgpack_unpacked up;
	const msgpack_object *data, *columns, *rows;
	struct filt base = base_filter(m, s);

	msgpack_sbuffer_init(&out);
	msgpack_unpacked_init(&up);
	data = ask_ok(m, s, &out, &up);
	columns = codec_map_get(data, "columns");
	rows = codec_map_get(data, s->flows ? "flows" : "rows");
	assert_non_null(columns);
	assert_non_null(rows);
	for (uint32_t i = 0; i < rows->via.array.size; i++) {
		const msgpack_object *row = &rows->via.array.ptr[i];
		struct filt f = base;
		char group[PW_ID_SIZE], to[PW_ID_SIZE];

		if (s->flows) {
			str_of(row, "from", group, sizeof(group));
			str_of(row, "to", to, sizeof(to));
			f.flow_from = group;
			f.flow_to = to;
		} else {
			str_of(row, "group", group, sizeof(group));
			if (strcmp(s->by, "qpv") == 0) {
				f.qpv = group;
			} else if (strcmp(s->by, "agent") == 0) {
				f.agent = group;
				f.alerts = false;
			} else {
				int32_t first, last;

				assert_true(cal_parse_period(group, 7, &first, &last));
				f.from = first > base.from ? first : base.from;
				f.to = last < base.to ? last : base.to;
				f.people = calendar_exact(f.from, f.to);
			}
		}
		check_values(m, s, group, columns, codec_map_get(row, "values"), &f);
	}
	if (!s->flows)
		check_values(m, s, "total", columns, codec_map_get(data, "total"), &base);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
}

static const struct spec specs[] = {
	{ "coord", "2026", NULL, NULL, NULL, NULL, false },
	{ "coord", "2026", NULL, NULL, "qpv", NULL, false },
	{ "coord", "2026", NULL, NULL, "agent", NULL, false },
	{ "coord", "2026", NULL, NULL, "month", NULL, false },
	{ "coord", "2025", NULL, NULL, "month", NULL, false },
	{ "coord", "2025-Q4", NULL, NULL, "qpv", NULL, false },
	{ "coord", "2026-Q1", NULL, NULL, "agent", NULL, false },
	{ "coord", "2026-03", NULL, NULL, "qpv", NULL, false },
	{ "coord", NULL, "2026-01-10", "2026-02-20", "month", NULL, false },
	{ "coord", NULL, "2025-12-01", "2026-06-30", "qpv", NULL, false },
	{ "coord", "2026", NULL, NULL, "agent", "sanitas", false },
	{ "coord", "2026", NULL, NULL, NULL, NULL, true },
	{ "coord", NULL, "2026-02-01", "2026-03-31", NULL, "europe", true },
	{ "med", "2026", NULL, NULL, NULL, NULL, false },
	{ "med", "2026", NULL, NULL, "qpv", NULL, false },
	{ "med", "2026-Q1", NULL, NULL, "month", NULL, false },
	{ "ml", "2026", NULL, NULL, "agent", "rives", false },
	{ "ml", "2026", NULL, NULL, NULL, NULL, true },
	{ "ops", "2026", NULL, NULL, NULL, NULL, false },
	{ "ops", "2026", NULL, NULL, "month", NULL, false },
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* Every flow with any referral in the period is listed. */
static void
check_flows_complete(struct model *m, const struct spec *s)
{
	msgpack_sbuffer out;
	msgpack_unpacked up;
	const msgpack_object *flows;
	struct filt f = base_filter(m, s);
	const struct agent *who = config_agent_by_id(m->fx->b.cfg, s->who);

	msgpack_sbuffer_init(&out);
	msgpack_unpacked_init(&up);
	flows = codec_map_get(ask_ok(m, s, &out, &up), "flows");
	for (int a = 0; a < 2; a++) {
		bool listed = false;

		f.flow_from = partners[a];
		f.flow_to = partners[!a];
		for (uint32_t i = 0; i < flows->via.array.size; i++) {
			char from[PW_ID_SIZE];

			str_of(&flows->via.array.ptr[i], "from", from, sizeof(from));
			listed |= strcmp(from, partners[a]) == 0;
		}
		if (who->kind == AK_COORDINATOR || strcmp(who->id, partners[0]) == 0 ||
		    strcmp(who->id, partners[1]) == 0)
			assert_true(listed || column_val(m, &f, "sent").i == 0);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
}

/*
 * The streams must exercise what they check: in 2026, as the coordinator
 * sees it, every kind of figure is above zero somewhere.
 */
static void
check_coverage(struct model *m)
{
	static const char *const nonzero[] = {
		"outreach.contacts", "followed", "confidence.assessed_twice",
		"confidence.improved", "referrals.sent", "referrals.accepted",
		"referrals.cancelled", "referrals.expired", "identified.outreach",
		"exited.moved", "alerts.referral_unanswered.opened",
		"alerts.no_referent.resolved",
	};
	struct filt f = base_filter(m, &specs[0]);
	struct filt q1 = base_filter(m, &specs[6]);
	int64_t open = 0;

	for (size_t i = 0; i < sizeof(nonzero) / sizeof(nonzero[0]); i++) {
		struct val v = column_val(m, &f, nonzero[i]);

		if (v.kind != 1 || v.i <= 0)
			fail_msg("stream %u: %s is %lld in 2026: the stream does not "
			    "exercise it", m->stream, nonzero[i], (long long)v.i);
	}
	if (referral_val(m, &f, "answer_median_days").kind != 2)
		fail_msg("stream %u: no answered referral", m->stream);
	/* Alerts still open at some day of the stream, before the erasures. */
	for (q1.to = q1.from; q1.to < q1.from + 110; q1.to++)
		for (int r = 0; r < RULE__COUNT; r++) {
			char name[64];

			snprintf(name, sizeof(name), "alerts.%s.open_at_end",
			    rule_name((enum rule_id)r));
			open += column_val(m, &q1, name).i;
		}
	if (open == 0)
		fail_msg("stream %u: no alert is ever open at a day's end", m->stream);
}

static void
check_everything(struct model *m)
{
	load_alerts(m);
	check_coverage(m);
	for (size_t i = 0; i < NSPECS; i++) {
		check_report(m, &specs[i]);
		if (specs[i].flows)
			check_flows_complete(m, &specs[i]);
	}
}

/* ---- the tests ----------------------------------------------------------- */

static void
property(unsigned seed)
{
	struct model *m = calloc(1, sizeof(*m));
	msgpack_sbuffer before[NSPECS];
	int64_t erase_at = T0 + 131 * DAY;
	char ats[24];
	uint64_t seq;

	assert_non_null(m);
	use_paris_tz();
	m->fx = fixture_new(64);
	run_stream(m, seed);
	check_everything(m);

	/* A coordinator covering two QPVs sees those and sums their people. */
	{
		struct agent *coord = (struct agent *)config_agent_by_id(
		    m->fx->b.cfg, "coord");

		coord->nqpv = 2;
		snprintf(coord->qpv[0], sizeof(coord->qpv[0]), "rives");
		snprintf(coord->qpv[1], sizeof(coord->qpv[1]), "sanitas");
		check_report(m, &specs[0]);
		check_report(m, &specs[2]);
		check_report(m, &specs[11]);
		coord->nqpv = 0;
	}

	/* Erase everyone: no figure moves, but alerts then closed. */
	for (size_t i = 0; i < NSPECS; i++) {
		msgpack_unpacked up;

		msgpack_sbuffer_init(&before[i]);
		msgpack_unpacked_init(&up);
		(void)ask_ok(m, &specs[i], &before[i], &up);
		msgpack_unpacked_destroy(&up);
	}
	snprintf(ats, sizeof(ats), "%lld", (long long)erase_at);
	for (int p = 0; p < NPEOPLE; p++) {
		char pid[16];

		snprintf(pid, sizeof(pid), "p%d", p);
		if (m->exists[p])
			assert_true(submit(m, "coord", erase_at, &seq, 3, "type",
			    "participant.erased", "occurred_at", ats, "participant", pid));
	}
	for (size_t i = 0; i < NSPECS; i++) {
		msgpack_sbuffer now;
		msgpack_unpacked a, b;
		size_t off = 0;
		const msgpack_object *da, *db, *cols;
		struct filt f = base_filter(m, &specs[i]);
		bool alerts_may_move = f.to >= tz_day(erase_at);

		msgpack_sbuffer_init(&now);
		msgpack_unpacked_init(&a);
		msgpack_unpacked_init(&b);
		db = ask_ok(m, &specs[i], &now, &b);
		assert_int_equal(msgpack_unpack_next(&a, before[i].data, before[i].size,
		    &off), MSGPACK_UNPACK_SUCCESS);
		da = codec_map_get(&a.data, "data");
		cols = codec_map_get(da, "columns");
		if (!alerts_may_move) {
			assert_int_equal(before[i].size, now.size);
			assert_memory_equal(before[i].data, now.data, now.size);
		} else {
			/* Only the alert columns may differ. */
			const msgpack_object *ra = codec_map_get(da, "total");
			const msgpack_object *rb = codec_map_get(db, "total");

			for (uint32_t c = 0; ra != NULL && c < cols->via.array.size; c++) {
				const msgpack_object *name = &cols->via.array.ptr[c];

				if (name->via.str.size > 7 &&
				    memcmp(name->via.str.ptr, "alerts.", 7) == 0)
					continue;
				if (!msgpack_object_equal(ra->via.array.ptr[c],
				    rb->via.array.ptr[c]))
					fail_msg("seed %u: erasure changed %.*s in spec %zu",
					    seed, (int)name->via.str.size,
					    name->via.str.ptr, i);
			}
		}
		msgpack_unpacked_destroy(&a);
		msgpack_unpacked_destroy(&b);
		msgpack_sbuffer_destroy(&now);
		msgpack_sbuffer_destroy(&before[i]);
	}
	/* And the figures still equal the events, alerts included. */
	check_everything(m);
	fixture_free(m->fx);
	free(m);
}

static void
test_property_seed_1(void **state)
{
	(void)state;
	property(1);
}

static void
test_property_seed_2(void **state)
{
	(void)state;
	property(20261204);
}

/* RELAIS_TEST_SEED=N runs the stream of seed N instead. */
static void
test_property_seed_3(void **state)
{
	const char *seed = getenv("RELAIS_TEST_SEED");

	(void)state;
	property(seed != NULL ? (unsigned)strtoul(seed, NULL, 10) : 99);
}

/* SPEC §2.5 and bad arguments: refused, with the code PROTOCOL.md says. */
static void
test_refusals(void **state)
{
	static const struct {
		struct spec s;
		int code;
	} cases[] = {
		{ { "ops", "2026", NULL, NULL, "qpv", NULL, false }, RL_E_FORBIDDEN },
		{ { "ops", "2026", NULL, NULL, "agent", NULL, false }, RL_E_FORBIDDEN },
		{ { "ops", "2026", NULL, NULL, NULL, "sanitas", false }, RL_E_FORBIDDEN },
		{ { "ops", "2026", NULL, NULL, NULL, NULL, true }, RL_E_FORBIDDEN },
		{ { "coord", NULL, NULL, NULL, NULL, NULL, false }, RL_E_MISSING_FIELD },
		{ { "coord", "2026-Q5", NULL, NULL, NULL, NULL, false }, RL_E_BAD_FIELD },
		{ { "coord", NULL, "2026-02-01", NULL, NULL, NULL, false }, RL_E_BAD_FIELD },
		{ { "coord", NULL, "2026-03-01", "2026-02-01", NULL, NULL, false }, RL_E_BAD_FIELD },
		{ { "coord", NULL, "2000-01-01", "2026-02-01", NULL, NULL, false }, RL_E_BAD_FIELD },
		{ { "coord", "2026", NULL, NULL, "week", NULL, false }, RL_E_BAD_FIELD },
		{ { "coord", "2026", NULL, NULL, "qpv", NULL, true }, RL_E_BAD_FIELD },
	};
	struct model *m = calloc(1, sizeof(*m));

	(void)state;
	m->fx = fixture_new(16);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msgpack_sbuffer out;
		msgpack_unpacked up;
		int code;

		msgpack_sbuffer_init(&out);
		msgpack_unpacked_init(&up);
		assert_null(ask(m, &cases[i].s, &out, &up, &code));
		if (code != cases[i].code)
			fail_msg("case %zu: code %d, expected %d", i, code, cases[i].code);
		msgpack_unpacked_destroy(&up);
		msgpack_sbuffer_destroy(&out);
	}
	/* A coordinator asking for a QPV outside its territory. */
	{
		struct agent *coord = (struct agent *)config_agent_by_id(
		    m->fx->b.cfg, "coord");
		struct spec s = { "coord", "2026", NULL, NULL, NULL, "europe", false };
		msgpack_sbuffer out;
		msgpack_unpacked up;
		int code;

		coord->nqpv = 1;
		snprintf(coord->qpv[0], sizeof(coord->qpv[0]), "sanitas");
		msgpack_sbuffer_init(&out);
		msgpack_unpacked_init(&up);
		assert_null(ask(m, &s, &out, &up, &code));
		assert_int_equal(code, RL_E_FORBIDDEN);
		msgpack_unpacked_destroy(&up);
		msgpack_sbuffer_destroy(&out);
	}
	fixture_free(m->fx);
	free(m);
}

/* Durations: the buckets cover everything, in order, 19 % wide. */
static void
test_buckets(void **state)
{
	(void)state;
	assert_int_equal(ind_bucket(0), 0);
	assert_int_equal(ind_bucket(59999), 0);
	assert_int_equal(ind_bucket(60000), 1);
	for (int b = 1; b < IND_BUCKETS - 1; b++) {
		assert_true(ind_bucket_low_ms(b + 1) > ind_bucket_low_ms(b));
		assert_int_equal(ind_bucket(ind_bucket_low_ms(b)), b);
		assert_int_equal(ind_bucket(ind_bucket_low_ms(b + 1) - 1), b);
	}
	assert_int_equal(ind_bucket(INT64_C(10) * 365 * DAY), IND_BUCKETS - 1);
	/* 30 days sits within 9 % of its bucket's reported value. */
	assert_true(fabs(ind_bucket_days(ind_bucket(30 * DAY)) - 30) < 30 * 0.09);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paris_days),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_property_seed_1),
		cmocka_unit_test(test_property_seed_2),
		cmocka_unit_test(test_property_seed_3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
