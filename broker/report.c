/*
 * The "report" query: the indicators of SPEC §5 over a period, read from
 * the counts indicators.c keeps, never from the log.  Who sees what is
 * SPEC §2.5:
 *
 *   coordinators  the QPVs they cover (every QPV, and people without one,
 *                 if they have no list), by QPV, agent or month
 *   partners      their own activity: what they sent, the referrals they
 *                 made (and, in the flows, those made to them)
 *   operators     totals only, by month at most: no QPV, no agent
 *
 * A report over a year reads one key per day, QPV and agent that saw
 * activity, plus the alert keys up to the period's end (for the alerts
 * still open then): a few thousand keys, whatever the number of people.
 */
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "codec.h"
#include "indicators.h"
#include "relaisd.h"

#define MAX_DAYS        3660    /* ten years */

enum by { BY_NONE, BY_QPV, BY_AGENT, BY_MONTH };

/* One column of the answer: a total, or the rows of a breakdown. */
struct group {
	char key[PW_ID_SIZE];       /* QPV, agent, "2026-03"; "" for the total */
	int32_t first, last;        /* the days it covers */
	int64_t e[IE_MAX];
	int64_t f[IND_MAXV];
	int64_t a[RULE__COUNT][IA__COUNT];
	int64_t open[RULE__COUNT];
	int64_t p[IP__COUNT];
	bool people;                /* p is exact: the days are a calendar period */
	bool alerts;                /* alerts are counted in this group */
};

struct report {
	struct broker *b;
	MDB_txn *txn;
	const struct agent *who;
	int32_t from, to, today;
	enum by by;
	bool flows;
	char qpv[PW_ID_SIZE];       /* the --qpv filter, "" if none */
	bool has_qpv;
	struct group *groups;       /* [0] is the total */
	size_t ngroups, cap;
	bool nomem;                 /* a group could not be added: refuse */
};

/* ---- arguments ---------------------------------------------------------- */

static const msgpack_object *
arg(const struct rl_request *req, const char *key)
{
	return req->args != NULL ? codec_map_get(req->args, key) : NULL;
}

static bool
arg_text(const struct rl_request *req, const char *key, char *out, size_t size)
{
	const msgpack_object *o = arg(req, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size)
		return false;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return true;
}

/* The period, breakdown and filter; an error reply and false if wrong. */
static bool
parse_args(struct report *r, const struct rl_request *req, msgpack_packer *pk)
{
	static const char *const keys[] = { "period", "from", "to", "qpv", "by",
	    "flows", NULL };
	char s[PW_ID_SIZE];
	const msgpack_object *flows = arg(req, "flows");

	if (!query_args_known(req, pk, keys))
		return false;
	if (arg(req, "period") != NULL) {
		if (!arg_text(req, "period", s, sizeof(s)) ||
		    !cal_parse_period(s, strlen(s), &r->from, &r->to)) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "period", "period must "
			    "be a year (2026), a quarter (2026-Q3) or a month (2026-03)");
			return false;
		}
	} else if (arg(req, "from") != NULL || arg(req, "to") != NULL) {
		if (!arg_text(req, "from", s, sizeof(s)) ||
		    !cal_parse_date(s, strlen(s), &r->from) ||
		    !arg_text(req, "to", s, sizeof(s)) ||
		    !cal_parse_date(s, strlen(s), &r->to) || r->to < r->from ||
		    r->to - r->from >= MAX_DAYS) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "from", "from and to "
			    "must be dates YYYY-MM-DD, from not after to, at most "
			    "ten years apart");
			return false;
		}
	} else {
		query_refuse(pk, req, RL_E_MISSING_FIELD, "period", "give period "
		    "(2026, 2026-Q3 or 2026-03), or from and to (YYYY-MM-DD)");
		return false;
	}
	r->by = BY_NONE;
	if (arg(req, "by") != NULL) {
		if (!arg_text(req, "by", s, sizeof(s)) || (strcmp(s, "qpv") != 0 &&
		    strcmp(s, "agent") != 0 && strcmp(s, "month") != 0)) {
			query_refuse(pk, req, RL_E_BAD_FIELD, "by",
			    "by must be qpv, agent or month");
			return false;
		}
		r->by = s[0] == 'q' ? BY_QPV : s[0] == 'a' ? BY_AGENT : BY_MONTH;
	}
	if (arg(req, "qpv") != NULL) {
		if (!arg_text(req, "qpv", r->qpv, sizeof(r->qpv)) || r->qpv[0] == '\0') {
			query_refuse(pk, req, RL_E_BAD_FIELD, "qpv",
			    "qpv must be a QPV code, e.g. sanitas");
			return false;
		}
		r->has_qpv = true;
	}
	if (flows != NULL && flows->type != MSGPACK_OBJECT_BOOLEAN) {
		query_refuse(pk, req, RL_E_BAD_FIELD, "flows", "flows must be true or false");
		return false;
	}
	r->flows = flows != NULL && flows->via.boolean;
	if (r->flows && r->by != BY_NONE) {
		query_refuse(pk, req, RL_E_BAD_FIELD, "by",
		    "the flows are by sender and target already: leave out by");
		return false;
	}
	return true;
}

/* SPEC §2.5, before anything is read. */
static bool
allowed(struct report *r, const struct rl_request *req, msgpack_packer *pk)
{
	const struct agent *who = r->who;

	if (who->kind == AK_OPERATOR && (r->flows || r->has_qpv ||
	    r->by == BY_QPV || r->by == BY_AGENT)) {
		query_refuse(pk, req, RL_E_FORBIDDEN, r->flows ? "flows" :
		    r->has_qpv ? "qpv" : "by", "operators see totals only: "
		    "leave out flows, qpv and by (or use by month)");
		return false;
	}
	if (who->kind == AK_COORDINATOR && r->has_qpv &&
	    !agent_covers_qpv(who, r->qpv, strlen(r->qpv))) {
		query_refuse(pk, req, RL_E_FORBIDDEN, "qpv",
		    "this QPV is outside the territory this coordinator covers");
		return false;
	}
	return true;
}

/* ---- what a key may be read for --------------------------------------- */

static bool
is_partner(const struct agent *a)
{
	return a->kind != AK_COORDINATOR && a->kind != AK_OPERATOR;
}

static bool
qpv_visible(const struct report *r, const char *qpv)
{
	if (r->has_qpv && strcmp(qpv, r->qpv) != 0)
		return false;
	return r->who->kind != AK_COORDINATOR ||
	    agent_covers_qpv(r->who, qpv, strlen(qpv));
}

/* A key's parts after its 5-byte head: NUL-separated strings. */
static int
key_parts(const MDB_val *k, char parts[][PW_ID_SIZE], int max)
{
	const char *p = (const char *)k->mv_data + 5;
	size_t left = k->mv_size - 5;
	int n = 0;

	while (n < max) {
		const char *end = memchr(p, '\0', left);
		size_t len = end != NULL ? (size_t)(end - p) : left;

		if (len >= PW_ID_SIZE)
			return -1;
		memcpy(parts[n], p, len);
		parts[n++][len] = '\0';
		if (end == NULL)
			return n;
		p = end + 1;
		left -= len + 1;
	}
	return -1;
}

static int32_t
key_day(const MDB_val *k)
{
	const unsigned char *p = (const unsigned char *)k->mv_data + 1;

	return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}

/* ---- groups --------------------------------------------------------------- */

static struct group *
group_add(struct report *r, const char *key, int32_t first, int32_t last)
{
	struct group *g;

	if (r->ngroups == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;

		if ((g = realloc(r->groups, cap * sizeof(*g))) == NULL) {
			r->nomem = true;
			return NULL;
		}
		r->groups = g;
		r->cap = cap;
	}
	g = &r->groups[r->ngroups++];
	memset(g, 0, sizeof(*g));
	snprintf(g->key, sizeof(g->key), "%s", key);
	g->first = first;
	g->last = last;
	g->alerts = r->who->kind != AK_COORDINATOR && r->who->kind != AK_OPERATOR ?
	    false : r->by != BY_AGENT || r->ngroups == 1;
	return g;
}

/*
 * The row a key counts in, for a breakdown; NULL if none.  It may move
 * the groups: hold no group pointer across a call.
 */
static struct group *
group_of(struct report *r, int32_t day, const char *qpv, const char *agent)
{
	const char *key = r->by == BY_QPV ? qpv : agent;

	if (r->by == BY_NONE || (r->by == BY_AGENT && agent == NULL))
		return NULL;
	if (r->by == BY_MONTH) {
		for (size_t i = 1; i < r->ngroups; i++)
			if (day >= r->groups[i].first && day <= r->groups[i].last)
				return &r->groups[i];
		return NULL;
	}
	for (size_t i = 1; i < r->ngroups; i++)
		if (strcmp(r->groups[i].key, key) == 0)
			return &r->groups[i];
	return group_add(r, key, r->from, r->to);
}

static void
add_vec(int64_t *dst, const int64_t *src, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] += src[i];
}

/* Every key of a family from day "first" to "last", in order. */
typedef int (*key_fn)(struct report *r, const MDB_val *k, const int64_t *v,
    void *ctx);

static int
scan(struct report *r, char family, int32_t first, int32_t last, key_fn fn,
    void *ctx)
{
	char key[IND_KEY_MAX];
	MDB_cursor *cur;
	MDB_val k = { ind_day_key(key, family, first), key }, v;
	int rc;

	if ((rc = mdb_cursor_open(r->txn, r->b->st.indicators, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		int64_t vec[IND_MAXV] = { 0 };

		if (k.mv_size < 5 || ((char *)k.mv_data)[0] != family ||
		    key_day(&k) > last)
			break;
		if (ind_value_add(v.mv_data, v.mv_size, vec) != 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = fn(r, &k, vec, ctx)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
on_event_key(struct report *r, const MDB_val *k, const int64_t *v,
    void *ctx)
{
	char parts[2][PW_ID_SIZE];
	struct group *g;

	if (key_parts(k, parts, 2) != 2)
		return MDB_CORRUPTED;
	if (!qpv_visible(r, parts[0]) ||
	    (is_partner(r->who) && strcmp(parts[1], r->who->id) != 0))
		return 0;
	add_vec(r->groups[0].e, v, IE_MAX);
	if ((g = group_of(r, key_day(k), parts[0], parts[1])) != NULL)
		add_vec(g->e, v, IE_MAX);
	return 0;
}

/* A referral's expiry counts once its day has come. */
static void
flow_vec(const struct report *r, const MDB_val *k, const int64_t *v, int64_t *out)
{
	memcpy(out, v, IND_MAXV * sizeof(*out));
	if (key_day(k) > r->today)
		out[IF_EXPIRING] = 0;
}

static int
on_flow_key(struct report *r, const MDB_val *k, const int64_t *v,
    void *ctx)
{
	char parts[3][PW_ID_SIZE];
	int64_t vec[IND_MAXV];
	struct group *g;

	if (key_parts(k, parts, 3) != 3)
		return MDB_CORRUPTED;
	if (!qpv_visible(r, parts[0]) ||
	    (is_partner(r->who) && strcmp(parts[1], r->who->id) != 0))
		return 0;
	flow_vec(r, k, v, vec);
	add_vec(r->groups[0].f, vec, IND_MAXV);
	if ((g = group_of(r, key_day(k), parts[0], parts[1])) != NULL)
		add_vec(g->f, vec, IND_MAXV);
	return 0;
}

/* Alerts: in the period, and still open at each group's last day. */
static int
on_alert_key(struct report *r, const MDB_val *k, const int64_t *v,
    void *ctx)
{
	char parts[2][PW_ID_SIZE];
	int32_t day = key_day(k);
	int rule;

	if (key_parts(k, parts, 2) != 2 || (rule = rule_from_name(parts[1])) < 0)
		return MDB_CORRUPTED;
	if (is_partner(r->who) || !qpv_visible(r, parts[0]))
		return 0;
	if (r->by == BY_QPV && day <= r->to)
		(void)group_of(r, day, parts[0], NULL);
	for (size_t i = 0; i < r->ngroups; i++) {
		struct group *g = &r->groups[i];

		if (!g->alerts || (i > 0 && r->by == BY_QPV &&
		    strcmp(g->key, parts[0]) != 0))
			continue;
		if (day <= g->last)
			g->open[rule] += v[IA_OPENED] - v[IA_RESOLVED];
		if (day >= g->first && day <= g->last)
			add_vec(g->a[rule], v, IA__COUNT);
	}
	return 0;
}

/* ---- distinct people ---------------------------------------------------- */

/* The calendar period the days are exactly, if any. */
static bool
calendar_period(int32_t first, int32_t last, enum ind_period *kind,
    uint32_t *index)
{
	int y, m, d, qm;

	cal_civil_from_days(first, &y, &m, &d);
	qm = (m - 1) / 3 * 3 + 1;
	if (d != 1)
		return false;
	if (m == 1 && last == cal_days_from_civil(y, 12, 31))
		*kind = IND_YEAR;
	else if (m == qm && last == cal_month_end(y, m + 2))
		*kind = IND_QUARTER;
	else if (last == cal_month_end(y, m))
		*kind = IND_MONTH;
	else
		return false;
	*index = ind_period_index(*kind, y, m);
	return true;
}

static int
people_add(struct report *r, enum ind_period kind, uint32_t index,
    const char *qpv, const char *agent, int64_t p[IP__COUNT])
{
	char key[IND_KEY_MAX];
	MDB_val k = { ind_people_key(key, kind, index, qpv, agent), key }, v;
	int64_t vec[IND_MAXV] = { 0 };
	int rc = mdb_get(r->txn, r->b->st.indicators, &k, &v);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (ind_value_add(v.mv_data, v.mv_size, vec) != 0)
		return MDB_CORRUPTED;
	add_vec(p, vec, IP__COUNT);
	return 0;
}

/*
 * A group's distinct people: the count kept for its QPV and agent, or
 * for a coordinator with a QPV list, the sum of its QPVs' counts (a person
 * who moved between two of them within the period counts in both).
 */
static int
group_people(struct report *r, struct group *g)
{
	const struct agent *who = r->who;
	const char *agent = r->by == BY_AGENT && g != &r->groups[0] ? g->key :
	    is_partner(who) ? who->id : IND_ALL;
	enum ind_period kind;
	uint32_t index;

	if (!(g->people = calendar_period(g->first, g->last, &kind, &index)))
		return 0;
	if (r->by == BY_QPV && g != &r->groups[0])
		return people_add(r, kind, index, g->key, agent, g->p);
	if (r->has_qpv)
		return people_add(r, kind, index, r->qpv, agent, g->p);
	if (who->kind == AK_COORDINATOR && who->nqpv > 0) {
		for (int i = 0; i < who->nqpv; i++) {
			int rc = people_add(r, kind, index, who->qpv[i], agent, g->p);

			if (rc != 0)
				return rc;
		}
		return 0;
	}
	return people_add(r, kind, index, IND_ALL, agent, g->p);
}

/* ---- the answer ------------------------------------------------------- */

static const char *const flow_columns[] = {
	"sent", "accepted", NULL /* declined.<reason> */, "cancelled", "expired",
	"answer_median_days", "answer_p90_days",
};
#define NFLOW_COLUMNS (sizeof(flow_columns) / sizeof(flow_columns[0]) - 1 + \
    IND_DECLINE_REASONS)

static const char *const alert_columns[] = {
	"opened", "resolved", "resolution_median_days", "open_at_end",
};

static void
pack_name(msgpack_packer *pk, const char *prefix, const char *name)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%s%s", prefix, name);
	codec_pack_str(pk, buf);
}

static void
pack_flow_columns(msgpack_packer *pk, const char *prefix)
{
	const char *const *reasons = ev_code_list(EVC_DECLINE_REASON);

	for (size_t i = 0; i < sizeof(flow_columns) / sizeof(flow_columns[0]); i++) {
		char buf[64];

		if (flow_columns[i] != NULL) {
			pack_name(pk, prefix, flow_columns[i]);
			continue;
		}
		for (int j = 0; j < IND_DECLINE_REASONS; j++) {
			snprintf(buf, sizeof(buf), "declined.%s", reasons[j]);
			pack_name(pk, prefix, buf);
		}
	}
}

static void
pack_quantile(msgpack_packer *pk, const int64_t *hist, int64_t n, double q)
{
	double days = ind_quantile_days(hist, n, q);

	if (days < 0)
		msgpack_pack_nil(pk);
	else
		msgpack_pack_double(pk, days);
}

static void
pack_flow_values(msgpack_packer *pk, const int64_t *f)
{
	int64_t answered = f[IF_ACCEPTED];

	msgpack_pack_int64(pk, f[IF_SENT]);
	msgpack_pack_int64(pk, f[IF_ACCEPTED]);
	for (int j = 0; j < IND_DECLINE_REASONS; j++) {
		msgpack_pack_int64(pk, f[IF_DECLINED + j]);
		answered += f[IF_DECLINED + j];
	}
	msgpack_pack_int64(pk, f[IF_CANCELLED]);
	msgpack_pack_int64(pk, f[IF_EXPIRING]);
	pack_quantile(pk, f + IF_ANSWER, answered, 0.5);
	pack_quantile(pk, f + IF_ANSWER, answered, 0.9);
}

static uint32_t
ncolumns(void)
{
	return (uint32_t)(ind_event_measures() + IP__COUNT + NFLOW_COLUMNS +
	    RULE__COUNT * 4);
}

static void
pack_columns(msgpack_packer *pk)
{
	static const char *const people[IP__COUNT] = {
		"followed", "confidence.assessed_twice", "confidence.improved",
	};

	msgpack_pack_array(pk, ncolumns());
	for (int i = 0; i < ind_event_measures(); i++) {
		char buf[64];

		ind_event_name(i, buf, sizeof(buf));
		codec_pack_str(pk, buf);
	}
	for (int i = 0; i < IP__COUNT; i++)
		codec_pack_str(pk, people[i]);
	pack_flow_columns(pk, "referrals.");
	for (int rule = 0; rule < RULE__COUNT; rule++)
		for (int i = 0; i < 4; i++) {
			char buf[96];

			snprintf(buf, sizeof(buf), "alerts.%s.%s",
			    rule_name((enum rule_id)rule), alert_columns[i]);
			codec_pack_str(pk, buf);
		}
}

static void
pack_values(msgpack_packer *pk, const struct group *g)
{
	msgpack_pack_array(pk, ncolumns());
	for (int i = 0; i < ind_event_measures(); i++)
		msgpack_pack_int64(pk, g->e[i]);
	for (int i = 0; i < IP__COUNT; i++)
		if (g->people)
			msgpack_pack_int64(pk, g->p[i]);
		else
			msgpack_pack_nil(pk);
	pack_flow_values(pk, g->f);
	for (int rule = 0; rule < RULE__COUNT; rule++) {
		const int64_t *a = g->a[rule];

		if (!g->alerts) {
			for (int i = 0; i < 4; i++)
				msgpack_pack_nil(pk);
			continue;
		}
		msgpack_pack_int64(pk, a[IA_OPENED]);
		msgpack_pack_int64(pk, a[IA_RESOLVED]);
		pack_quantile(pk, a + IA_RESOLUTION, a[IA_RESOLVED], 0.5);
		msgpack_pack_int64(pk, g->open[rule]);
	}
}

/* An agent's display name, or its id if it left the registry. */
static const char *
agent_name(const struct report *r, const char *id)
{
	const struct agent *a = config_agent_by_id(r->b->cfg, id);

	return a != NULL ? a->name : id;
}

/* A row's display name: the QPV's or agent's name, or the month. */
static const char *
group_name(const struct report *r, const char *key)
{
	if (r->by == BY_AGENT)
		return agent_name(r, key);
	if (r->by == BY_QPV)
		return config_qpv_name(r->b->cfg, key);
	return key;
}

static void
pack_head(struct report *r, msgpack_packer *pk, uint32_t extra)
{
	char day[11];

	msgpack_pack_map(pk, 4 + extra);
	cal_format_date(r->from, day);
	codec_pack_kv_str(pk, "from", day);
	cal_format_date(r->to, day);
	codec_pack_kv_str(pk, "to", day);
	codec_pack_str(pk, "qpv");
	if (r->has_qpv)
		codec_pack_str(pk, r->qpv);
	else
		msgpack_pack_nil(pk);
	codec_pack_str(pk, "qpv_name");
	if (r->has_qpv)
		codec_pack_str(pk, config_qpv_name(r->b->cfg, r->qpv));
	else
		msgpack_pack_nil(pk);
}

static int
group_cmp(const void *a, const void *b)
{
	return strcmp(((const struct group *)a)->key, ((const struct group *)b)->key);
}

static int
indicators_report(struct report *r, msgpack_packer *pk,
    const struct rl_request *req)
{
	int rc;

	if (group_add(r, "", r->from, r->to) == NULL)
		return ENOMEM;
	if (r->by == BY_MONTH) {
		for (int32_t d = r->from; d <= r->to; ) {
			int y, m, dd;
			char name[11];
			int32_t last;

			cal_civil_from_days(d, &y, &m, &dd);
			cal_format_date(d, name);
			name[7] = '\0';                /* 2026-03 */
			last = cal_month_end(y, m);
			if (group_add(r, name, d, last < r->to ? last : r->to) == NULL)
				break;
			d = last + 1;
		}
	}
	if ((rc = scan(r, 'E', r->from, r->to, on_event_key, NULL)) != 0 ||
	    (rc = scan(r, 'F', r->from, r->to, on_flow_key, NULL)) != 0 ||
	    (rc = scan(r, 'A', 0, r->to, on_alert_key, NULL)) != 0)
		return rc;
	if (r->nomem)
		return ENOMEM;
	for (size_t i = 0; i < r->ngroups; i++)
		if ((rc = group_people(r, &r->groups[i])) != 0)
			return rc;
	if (r->ngroups > 2 && r->by != BY_MONTH)
		qsort(r->groups + 1, r->ngroups - 1, sizeof(*r->groups), group_cmp);

	query_begin_result(pk, req, "report");
	pack_head(r, pk, 4);
	codec_pack_kv_str(pk, "by", r->by == BY_QPV ? "qpv" : r->by == BY_AGENT ?
	    "agent" : r->by == BY_MONTH ? "month" : "");
	codec_pack_str(pk, "columns");
	pack_columns(pk);
	codec_pack_str(pk, "rows");
	msgpack_pack_array(pk, (uint32_t)(r->ngroups - 1));
	for (size_t i = 1; i < r->ngroups; i++) {
		const struct group *g = &r->groups[i];

		msgpack_pack_map(pk, 3);
		codec_pack_kv_str(pk, "group", g->key);
		codec_pack_kv_str(pk, "name", group_name(r, g->key));
		codec_pack_str(pk, "values");
		pack_values(pk, g);
	}
	codec_pack_str(pk, "total");
	pack_values(pk, &r->groups[0]);
	return 0;
}

/* ---- flows ---------------------------------------------------------------- */

struct flow {
	char from[PW_ID_SIZE], to[PW_ID_SIZE];
	int64_t f[IND_MAXV];
};

struct flows {
	struct flow *list;
	size_t n, cap;
};

static int
on_flow_pair(struct report *r, const MDB_val *k, const int64_t *v,
    void *ctx)
{
	struct flows *fl = ctx;
	char parts[3][PW_ID_SIZE];
	int64_t vec[IND_MAXV];
	struct flow *f = NULL;

	if (key_parts(k, parts, 3) != 3)
		return MDB_CORRUPTED;
	if (!qpv_visible(r, parts[0]) || (is_partner(r->who) &&
	    strcmp(parts[1], r->who->id) != 0 && strcmp(parts[2], r->who->id) != 0))
		return 0;
	for (size_t i = 0; i < fl->n && f == NULL; i++)
		if (strcmp(fl->list[i].from, parts[1]) == 0 &&
		    strcmp(fl->list[i].to, parts[2]) == 0)
			f = &fl->list[i];
	if (f == NULL) {
		if (fl->n == fl->cap) {
			size_t cap = fl->cap ? fl->cap * 2 : 16;
			struct flow *nl = realloc(fl->list, cap * sizeof(*nl));

			if (nl == NULL)
				return ENOMEM;
			fl->list = nl;
			fl->cap = cap;
		}
		f = &fl->list[fl->n++];
		memset(f, 0, sizeof(*f));
		snprintf(f->from, sizeof(f->from), "%s", parts[1]);
		snprintf(f->to, sizeof(f->to), "%s", parts[2]);
	}
	flow_vec(r, k, v, vec);
	add_vec(f->f, vec, IND_MAXV);
	return 0;
}

static int
flow_cmp(const void *a, const void *b)
{
	const struct flow *x = a, *y = b;
	int c = strcmp(x->from, y->from);

	return c != 0 ? c : strcmp(x->to, y->to);
}

static int
flows_report(struct report *r, msgpack_packer *pk, const struct rl_request *req)
{
	struct flows fl = { NULL, 0, 0 };
	int rc;

	rc = scan(r, 'F', r->from, r->to, on_flow_pair, &fl);
	if (rc != 0) {
		free(fl.list);
		return rc;
	}
	if (fl.n > 1)
		qsort(fl.list, fl.n, sizeof(*fl.list), flow_cmp);
	query_begin_result(pk, req, "report");
	pack_head(r, pk, 2);
	codec_pack_str(pk, "columns");
	msgpack_pack_array(pk, NFLOW_COLUMNS);
	pack_flow_columns(pk, "");
	codec_pack_str(pk, "flows");
	msgpack_pack_array(pk, (uint32_t)fl.n);
	for (size_t i = 0; i < fl.n; i++) {
		msgpack_pack_map(pk, 5);
		codec_pack_kv_str(pk, "from", fl.list[i].from);
		codec_pack_kv_str(pk, "from_name", agent_name(r, fl.list[i].from));
		codec_pack_kv_str(pk, "to", fl.list[i].to);
		codec_pack_kv_str(pk, "to_name", agent_name(r, fl.list[i].to));
		codec_pack_str(pk, "values");
		msgpack_pack_array(pk, NFLOW_COLUMNS);
		pack_flow_values(pk, fl.list[i].f);
	}
	free(fl.list);
	return 0;
}

void
report_query(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	struct report r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.b = b;
	r.txn = txn;
	r.who = who;
	r.today = cal_paris_day(clock_now(&b->clock));
	if (!parse_args(&r, req, pk) || !allowed(&r, req, pk))
		return;
	if (r.flows) {
		rc = flows_report(&r, pk, req);
	} else {
		rc = indicators_report(&r, pk, req);
	}
	free(r.groups);
	/* Both write their answer only once every read has succeeded. */
	if (rc != 0)
		query_refuse(pk, req, RL_E_STORAGE, "", "cannot read the indicators; "
		    "retry later, and tell the operator if it lasts");
}
