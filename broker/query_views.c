/*
 * Queries for the people who work with participants (query_views.h): a
 * coordinator's alerts and participants, filtered and paged, and a
 * partner's inbox.  Who may read what follows SPEC §2.5: coordinators see
 * their QPVs, a partner the referrals it is a party to and the alerts
 * that name it, operators none of it.
 *
 * Paging: a page is up to "limit" items in key order after "after" (an
 * alert id or a participant id); the client asks again after the last
 * item it got until a page comes back short.  Alerts are read through
 * their indexes, so a page costs about the alerts it returns; participants
 * are scanned from "after", so a page costs the people it passes over.
 * The inbox reads every participant's record and every open alert: its
 * cost grows with the people the bus holds.
 */
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "alert_index.h"
#include "flow.h"
#include "participant_view.h"
#include "query_views.h"
#include "relaisd.h"

#define PAGE_MAX            1000
#define PARTICIPANTS_PAGE   100

/* The filters and paging of one query, read from its args. */
struct view_args {
	char status[16];
	int rule;                   /* -1: any */
	char qpv[PW_ID_SIZE];
	char phase[16];
	char after[PW_ID_SIZE];
	bool with_alerts;
	uint64_t older_than_days;   /* 0: any */
	uint64_t inactive_days;     /* 0: any */
	uint64_t limit;
};

/* A string argument into out; false (after a refusal) if it is not one. */
static bool
arg_text(const struct rl_request *req, const msgpack_object *o, const char *key,
    char *out, size_t size, msgpack_packer *pk)
{
	char msg[96];

	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 &&
	    o->via.str.size < size) {
		memcpy(out, o->via.str.ptr, o->via.str.size);
		out[o->via.str.size] = '\0';
		return true;
	}
	snprintf(msg, sizeof(msg), "%s must be a string of 1 to %zu bytes", key,
	    size - 1);
	query_refuse(pk, req, RL_E_BAD_FIELD, key, msg);
	return false;
}

static bool
arg_count(const struct rl_request *req, const msgpack_object *o, const char *key,
    uint64_t max, uint64_t *out, msgpack_packer *pk)
{
	char msg[96];

	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= max) {
		*out = o->via.u64;
		return true;
	}
	snprintf(msg, sizeof(msg), "%s must be a whole number from 0 to %llu", key,
	    (unsigned long long)max);
	query_refuse(pk, req, RL_E_BAD_FIELD, key, msg);
	return false;
}

static bool
one_of(const char *s, const char *const *names)
{
	for (; *names != NULL; names++)
		if (strcmp(s, *names) == 0)
			return true;
	return false;
}

/*
 * Read the args this query takes ("allowed", NULL-ended); any other is
 * refused as unknown_field, so a typo never widens a filter.  false after
 * a refusal.
 */
static bool
read_args(const struct rl_request *req, const char *const *allowed,
    uint64_t default_limit, struct view_args *a, msgpack_packer *pk)
{
	static const char *const statuses[] = { "open", "all", "acknowledged",
	    "resolved", NULL };
	const msgpack_object *m = req->args;

	memset(a, 0, sizeof(*a));
	a->rule = -1;
	a->limit = default_limit;
	snprintf(a->status, sizeof(a->status), "open");
	/* Keys first (unknown or repeated ones), then values in order. */
	if (m == NULL || !query_args_known(req, pk, allowed))
		return m == NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const msgpack_object *v = &m->via.map.ptr[i].val;
		char key[24];
		bool ok = true;

		/* One of allowed, all shorter than key[]. */
		snprintf(key, sizeof(key), "%.*s", (int)k->via.str.size,
		    k->via.str.ptr);
		if (strcmp(key, "status") == 0) {
			ok = arg_text(req, v, key, a->status, sizeof(a->status), pk);
			if (ok && !one_of(a->status, statuses)) {
				query_refuse(pk, req, RL_E_BAD_FIELD, key, "status must be "
				    "open, acknowledged, resolved or all");
				return false;
			}
		} else if (strcmp(key, "rule") == 0) {
			char name[32];

			ok = arg_text(req, v, key, name, sizeof(name), pk);
			if (ok && (a->rule = rule_from_name(name)) < 0) {
				query_refuse(pk, req, RL_E_BAD_FIELD, key, "rule must be "
				    "the name of a rupture rule, e.g. no_contact");
				return false;
			}
		} else if (strcmp(key, "qpv") == 0) {
			ok = arg_text(req, v, key, a->qpv, sizeof(a->qpv), pk);
		} else if (strcmp(key, "phase") == 0) {
			ok = arg_text(req, v, key, a->phase, sizeof(a->phase), pk);
		} else if (strcmp(key, "after") == 0) {
			ok = arg_text(req, v, key, a->after, sizeof(a->after), pk);
		} else if (strcmp(key, "with_alerts") == 0) {
			ok = v->type == MSGPACK_OBJECT_BOOLEAN;
			if (ok)
				a->with_alerts = v->via.boolean;
			else
				query_refuse(pk, req, RL_E_BAD_FIELD, key,
				    "with_alerts must be true or false");
		} else if (strcmp(key, "older_than_days") == 0) {
			ok = arg_count(req, v, key, 36500, &a->older_than_days, pk);
		} else if (strcmp(key, "inactive_days") == 0) {
			ok = arg_count(req, v, key, 36500, &a->inactive_days, pk);
		} else if (strcmp(key, "limit") == 0) {
			ok = arg_count(req, v, key, PAGE_MAX, &a->limit, pk);
			if (ok && a->limit == 0) {
				query_refuse(pk, req, RL_E_BAD_FIELD, key,
				    "limit must be from 1 to 1000");
				return false;
			}
		}
		if (!ok)
			return false;
	}
	return true;
}

/* ---- alerts --------------------------------------------------------- */

static bool
alert_matches(const struct alert *al, const struct view_args *a,
    const struct agent *who, int64_t now)
{
	if (!agent_covers_qpv(who, al->qpv, strlen(al->qpv)))
		return false;
	if (strcmp(a->status, "open") == 0 ? al->status == ALERT_RESOLVED :
	    strcmp(a->status, "all") != 0 &&
	    strcmp(a->status, alert_status_name(al->status)) != 0)
		return false;
	if (a->rule >= 0 && al->rule != (enum rule_id)a->rule)
		return false;
	if (a->qpv[0] != '\0' && strcmp(a->qpv, al->qpv) != 0)
		return false;
	return a->older_than_days == 0 ||
	    al->opened_at <= now - (int64_t)a->older_than_days * PW_DAY_MS;
}

/*
 * The QPVs whose alerts a listing reads: the one asked for if who covers
 * it, else who's; *nqpv 0 for every QPV.  false if who covers none asked.
 */
static bool
walk_places(const struct agent *who, const struct view_args *a,
    char (*qpvs)[PW_ID_SIZE], size_t *nqpv)
{
	*nqpv = 0;
	if (a->qpv[0] != '\0') {
		if (!agent_covers_qpv(who, a->qpv, strlen(a->qpv)))
			return false;
		snprintf(qpvs[(*nqpv)++], PW_ID_SIZE, "%s", a->qpv);
		return true;
	}
	for (int i = 0; i < who->nqpv; i++)
		snprintf(qpvs[(*nqpv)++], PW_ID_SIZE, "%s", who->qpv[i]);
	return true;
}

static unsigned
walk_statuses(const char *status)
{
	if (strcmp(status, "open") == 0)
		return ALERT_WALK_STATUS(ALERT_OPEN) |
		    ALERT_WALK_STATUS(ALERT_ACKNOWLEDGED);
	if (strcmp(status, "acknowledged") == 0)
		return ALERT_WALK_STATUS(ALERT_ACKNOWLEDGED);
	if (strcmp(status, "resolved") == 0)
		return ALERT_WALK_STATUS(ALERT_RESOLVED);
	return ALERT_WALK_STATUS(ALERT_OPEN) |
	    ALERT_WALK_STATUS(ALERT_ACKNOWLEDGED) |
	    ALERT_WALK_STATUS(ALERT_RESOLVED);
}

/*
 * Through the alert indexes (alert_index.h): a page reads the keys of the
 * alerts it returns, plus one per run merged (QPV x status x rule), and
 * with older_than_days also those of the younger alerts it passes over.
 */
void
query_alerts_page(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	static const char *const allowed[] = { "status", "rule", "qpv",
	    "older_than_days", "after", "limit", NULL };
	static struct alert page[PAGE_MAX];     /* 1000 records: not on the stack */
	static struct alert_walk walk;          /* 600 KB: not on the stack */
	static char qpvs[CONFIG_MAX_QPV][PW_ID_SIZE];
	struct view_args a;
	int64_t now = clock_now(&b->clock);
	uint64_t after = 0, seq;
	size_t n = 0, nqpv;
	int rc = MDB_NOTFOUND;

	if (who->kind != AK_COORDINATOR) {
		query_refuse(pk, req, RL_E_FORBIDDEN, "what",
		    "only coordinators may list alerts");
		return;
	}
	if (!read_args(req, allowed, PAGE_MAX, &a, pk))
		return;
	if (a.after[0] != '\0' &&
	    (after = alert_id_parse(a.after, strlen(a.after))) == 0) {
		query_refuse(pk, req, RL_E_BAD_FIELD, "after",
		    "after must be an alert id such as al-12");
		return;
	}
	if (walk_places(who, &a, qpvs, &nqpv))
		rc = alert_walk_begin(&walk, &b->st, txn, (const char (*)[PW_ID_SIZE])qpvs,
		    nqpv, walk_statuses(a.status), a.rule, after);
	while (rc == 0 && n < a.limit &&
	    (rc = alert_walk_next(&walk, &b->st, txn, &seq)) == 0) {
		char key[8];
		MDB_val k = { 8, key }, v;

		store_put_be64(key, seq);
		if ((rc = mdb_get(txn, b->st.alerts, &k, &v)) != 0)
			break;
		if (alert_unpack(v.mv_data, v.mv_size, &page[n]) == RL_OK &&
		    alert_matches(&page[n], &a, who, now))
			n++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the alerts; "
		    "retry later, and run relaisd --verify on a backup if it lasts");
		return;
	}
	query_begin_result(pk, req, "alerts");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		alert_pack(pk, &page[i], NULL);
}

/* ---- participants --------------------------------------------------- */

static bool
participant_matches(const struct pathway *pw, const struct armed *armed,
    const struct view_args *a, const struct agent *who, int64_t now)
{
	if (!agent_covers_qpv(who, pw->qpv, strlen(pw->qpv)))
		return false;
	if (a->phase[0] != '\0' && strcmp(a->phase, pw_phase_name(pw->phase)) != 0)
		return false;
	if (a->qpv[0] != '\0' && strcmp(a->qpv, pw->qpv) != 0)
		return false;
	if (a->with_alerts && armed->open == 0)
		return false;
	return a->inactive_days == 0 ||
	    pw->last_activity <= now - (int64_t)a->inactive_days * PW_DAY_MS;
}

static void
pack_participant_row(const struct pathway *pw, const struct armed *armed,
    msgpack_packer *pk)
{
	int nopen = 0;

	for (int r = 0; r < RULE__COUNT; r++)
		nopen += (armed->open >> r) & 1;
	msgpack_pack_map(pk, 7);
	codec_pack_kv_str(pk, "participant", pw->participant);
	codec_pack_kv_str(pk, "qpv", pw->qpv);
	codec_pack_kv_str(pk, "phase", pw_phase_name(pw->phase));
	codec_pack_str(pk, "referents");
	msgpack_pack_array(pk, (size_t)pw->nreferents);
	for (int i = 0; i < pw->nreferents; i++)
		codec_pack_str(pk, pw->referents[i].id);
	codec_pack_kv_i64(pk, "last_activity", pw->last_activity);
	codec_pack_kv_u64(pk, "open_alerts", (uint64_t)nopen);
	codec_pack_str(pk, "alert_rules");
	msgpack_pack_array(pk, (size_t)nopen);
	for (int r = 0; r < RULE__COUNT; r++)
		if ((armed->open >> r) & 1)
			codec_pack_str(pk, rule_name((enum rule_id)r));
}

void
query_participants(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	static const char *const allowed[] = { "phase", "qpv", "with_alerts",
	    "inactive_days", "after", "limit", NULL };
	static struct pathway pw;               /* large: not on the stack */
	static char ids[PAGE_MAX][PW_ID_SIZE];
	struct view_args a;
	int64_t now = clock_now(&b->clock);
	size_t n = 0, alen;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (who->kind != AK_COORDINATOR) {
		query_refuse(pk, req, RL_E_FORBIDDEN, "what", "only coordinators "
		    "list participants; partners see theirs with the inbox query");
		return;
	}
	if (!read_args(req, allowed, PARTICIPANTS_PAGE, &a, pk))
		return;
	if (mdb_cursor_open(txn, b->st.participants, &cur) != 0) {
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the "
		    "participants; retry later");
		return;
	}
	/* First pass: which ids match, so the array's length is known. */
	alen = strlen(a.after);
	k.mv_size = alen;
	k.mv_data = a.after;
	rc = alen == 0 ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) :
	    mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && alen != 0 && k.mv_size == alen &&
	    memcmp(k.mv_data, a.after, alen) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	for (; rc == 0 && n < a.limit; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct armed armed;
		const char *pwb;
		size_t pwlen;
		struct rl_error err;

		if (!participants_is_record(&k) ||
		    k.mv_size == 0 || k.mv_size >= PW_ID_SIZE ||
		    participants_stored(&v, &armed, &pwb, &pwlen) == -1 ||
		    pathway_decode(pwb, pwlen, &pw, &err) != RL_OK)
			continue;
		if (!participant_matches(&pw, &armed, &a, who, now))
			continue;
		memcpy(ids[n], k.mv_data, k.mv_size);
		ids[n++][k.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	query_begin_result(pk, req, "participants");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++) {
		struct armed armed;
		const char *pwb;
		size_t pwlen;
		struct rl_error err;

		k.mv_size = strlen(ids[i]);
		k.mv_data = ids[i];
		if (mdb_get(txn, b->st.participants, &k, &v) != 0 ||
		    participants_stored(&v, &armed, &pwb, &pwlen) == -1 ||
		    pathway_decode(pwb, pwlen, &pw, &err) != RL_OK) {
			msgpack_pack_nil(pk);   /* read a moment ago: cannot happen */
			continue;
		}
		pack_participant_row(&pw, &armed, pk);
	}
}

/* ---- inbox ---------------------------------------------------------- */

/* A referral of the inbox, found in its participant's pathway. */
struct inbox_item {
	char referral[PW_ID_SIZE];
	char participant[PW_ID_SIZE];
	char other[PW_AGENT_SIZE];  /* the sender, or the target */
	int64_t sent_at;
	int64_t expires_at;
};

struct inbox {
	struct inbox_item to_answer[PAGE_MAX], sent[PAGE_MAX];
	size_t nto_answer, nsent;
	bool truncated;
};

static void
inbox_add(struct inbox *in, bool to_me, const struct pw_referral *r,
    const char *participant, int64_t expires_at)
{
	struct inbox_item *list = to_me ? in->to_answer : in->sent;
	size_t *n = to_me ? &in->nto_answer : &in->nsent;
	struct inbox_item *it;

	if (*n == PAGE_MAX) {
		in->truncated = true;
		return;
	}
	it = &list[(*n)++];
	snprintf(it->referral, sizeof(it->referral), "%s", r->id);
	snprintf(it->participant, sizeof(it->participant), "%s", participant);
	snprintf(it->other, sizeof(it->other), "%s", to_me ? r->from : r->to);
	it->sent_at = r->sent_at;
	it->expires_at = expires_at;
}

/*
 * The referrals still awaiting an answer that this agent is a party to.
 * They are in their participants' pathways: every record is read, and
 * only those whose bytes hold the agent's id are decoded.
 */
static int
inbox_referrals(struct broker *b, MDB_txn *txn, const struct agent *who,
    int64_t now, struct inbox *in)
{
	static struct pathway pw;
	const struct rule_config *rules = b->cfg->rules;
	const struct rule_config *exp = &rules[RULE_REFERRAL_EXPIRED];
	size_t wlen = strlen(who->id);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, b->st.participants, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *pwb;
		size_t pwlen;
		struct rl_error err;

		if (!participants_is_record(&k) ||
		    memmem(v.mv_data, v.mv_size, who->id, wlen) == NULL ||
		    participants_stored(&v, NULL, &pwb, &pwlen) == -1 ||
		    pathway_decode(pwb, pwlen, &pw, &err) != RL_OK)
			continue;
		for (int i = 0; i < pw.nreferrals; i++) {
			const struct pw_referral *r = &pw.referrals[i];
			bool to_me = strcmp(r->to, who->id) == 0;

			if ((to_me || strcmp(r->from, who->id) == 0) &&
			    pathway_referral_state(r, rules, now) == PW_REF_REQUESTED)
				inbox_add(in, to_me, r, pw.participant, exp->enabled ?
				    r->sent_at + (int64_t)exp->threshold * PW_DAY_MS : 0);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static void
pack_inbox_item(msgpack_packer *pk, const struct inbox_item *it,
    const char *other)
{
	msgpack_pack_map(pk, 5);
	codec_pack_kv_str(pk, "referral", it->referral);
	codec_pack_kv_str(pk, "participant", it->participant);
	codec_pack_kv_str(pk, other, it->other);
	codec_pack_kv_i64(pk, "sent_at", it->sent_at);
	codec_pack_kv_i64(pk, "expires_at", it->expires_at);
}

/*
 * The inbox answers in one frame: each of its three lists may fill a third
 * of it.  A list cut there sets "truncated", as one cut at PAGE_MAX does.
 */
#define INBOX_LIST_BYTES ((FLOW_OUT_MAX - 1024) / 3)

/* Pack item i of a list (pack_referral, pack_alert). */
typedef void pack_nth(msgpack_packer *pk, const void *list, size_t i,
    const char *other);

static void
pack_referral(msgpack_packer *pk, const void *list, size_t i, const char *other)
{
	pack_inbox_item(pk, &((const struct inbox_item *)list)[i], other);
}

static void
pack_alert(msgpack_packer *pk, const void *list, size_t i, const char *other)
{
	alert_pack(pk, &((const struct alert *)list)[i], NULL);
}

/* How many of a list's first n items fit in INBOX_LIST_BYTES once packed. */
static size_t
inbox_fit(const void *list, size_t n, pack_nth *pack, const char *other,
    msgpack_sbuffer *scratch)
{
	msgpack_packer pk;
	size_t i;

	msgpack_packer_init(&pk, scratch, msgpack_sbuffer_write);
	scratch->size = 0;
	for (i = 0; i < n; i++) {
		pack(&pk, list, i, other);
		if (scratch->size > INBOX_LIST_BYTES)
			break;
	}
	return i;
}

static void
pack_inbox_items(msgpack_packer *pk, const char *name,
    const struct inbox_item *list, size_t n, const char *other)
{
	codec_pack_str(pk, name);
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		pack_inbox_item(pk, &list[i], other);
}

static bool
names_agent(const struct alert *al, const char *id)
{
	for (int i = 0; i < al->nagents; i++)
		if (strcmp(al->agents[i], id) == 0)
			return true;
	return false;
}

void
query_inbox(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	static const char *const allowed[] = { NULL };
	static struct inbox in;
	static struct alert alerts[PAGE_MAX];
	struct view_args a;
	int64_t now = clock_now(&b->clock);
	size_t nalerts = 0, nto_answer, nsent, nfit;
	msgpack_sbuffer scratch;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (who->kind == AK_OPERATOR) {
		query_refuse(pk, req, RL_E_FORBIDDEN, "what", "operators have no "
		    "inbox: they see no participant data");
		return;
	}
	if (!read_args(req, allowed, 0, &a, pk))
		return;
	memset(&in, 0, sizeof(in));
	if ((rc = inbox_referrals(b, txn, who, now, &in)) != 0 ||
	    (rc = mdb_cursor_open(txn, b->st.alert_open, &cur)) != 0) {
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the store; "
		    "retry later");
		return;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	    rc == 0 && nalerts < PAGE_MAX; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		/* alert_open's value is the alert's key: its seq, big-endian. */
		MDB_val ak = v, av;

		if (v.mv_size != 8)
			continue;
		if (mdb_get(txn, b->st.alerts, &ak, &av) == 0 &&
		    alert_unpack(av.mv_data, av.mv_size, &alerts[nalerts]) == RL_OK &&
		    names_agent(&alerts[nalerts], who->id))
			nalerts++;
	}
	mdb_cursor_close(cur);
	if (nalerts == PAGE_MAX)
		in.truncated = true;
	msgpack_sbuffer_init(&scratch);
	nto_answer = inbox_fit(in.to_answer, in.nto_answer, pack_referral, "from",
	    &scratch);
	nsent = inbox_fit(in.sent, in.nsent, pack_referral, "to", &scratch);
	nfit = inbox_fit(alerts, nalerts, pack_alert, NULL, &scratch);
	msgpack_sbuffer_destroy(&scratch);
	if (nto_answer < in.nto_answer || nsent < in.nsent || nfit < nalerts)
		in.truncated = true;
	query_begin_result(pk, req, "inbox");
	msgpack_pack_map(pk, 5);
	codec_pack_kv_i64(pk, "now", now);
	pack_inbox_items(pk, "to_answer", in.to_answer, nto_answer, "from");
	pack_inbox_items(pk, "sent", in.sent, nsent, "to");
	codec_pack_str(pk, "alerts");
	msgpack_pack_array(pk, nfit);
	for (size_t i = 0; i < nfit; i++)
		alert_pack(pk, &alerts[i], NULL);
	codec_pack_str(pk, "truncated");
	if (in.truncated)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}
