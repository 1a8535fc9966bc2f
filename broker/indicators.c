/*
 * Indicator counters (indicators.h): kept in the event's own transaction,
 * gathered in memory and written once per key when it commits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "calendar.h"
#include "codec.h"
#include "mpview.h"
#include "indicators.h"
#include "relaisd.h"

#define ACC_SLOTS 1024          /* keys gathered before an early flush */

/* ---- durations -------------------------------------------------------- */

int64_t
ind_bucket_low_ms(int b)
{
	if (b <= 0)
		return 0;
	return llround(60000.0 * pow(2.0, (b - 1) / 4.0));
}

int
ind_bucket(int64_t ms)
{
	int lo = 0, hi = IND_BUCKETS - 1;

	/* The last bucket whose low bound is <= ms. */
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;

		if (ind_bucket_low_ms(mid) <= ms)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

double
ind_bucket_days(int b)
{
	double low = b == 0 ? 30000.0 : (double)ind_bucket_low_ms(b);
	double high = b == 0 ? 30000.0 : (double)ind_bucket_low_ms(b + 1);

	return sqrt(low * high) / 86400000.0;
}

double
ind_quantile_days(const int64_t hist[IND_BUCKETS], int64_t n, double q)
{
	int64_t rank = (int64_t)ceil(q * (double)n), seen = 0;

	if (n <= 0)
		return -1;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < IND_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank)
			return ind_bucket_days(b);
	}
	return ind_bucket_days(IND_BUCKETS - 1);
}

/* ---- the 'E' measures ------------------------------------------------- */

static const struct {
	const char *prefix;
	enum ev_codes codes;
} event_groups[IEG__COUNT] = {
	[IEG_OUTREACH] = { "outreach", EVC_PLACE },
	[IEG_CONTACT] = { "contact", EVC_CHANNEL },
	[IEG_IDENTIFIED] = { "identified", EVC_SOURCE },
	[IEG_BARRIER_IDENTIFIED] = { "barrier_identified", EVC_BARRIER },
	[IEG_BARRIER_LIFTED] = { "barrier_lifted", EVC_BARRIER },
	[IEG_ENROLLED] = { "enrolled", EVC_SCHEME },
	[IEG_EMPLOYED] = { "employed", EVC_CONTRACT },
	[IEG_EXITED] = { "exited", EVC_EXIT_REASON },
};

static int
codes_in(enum ev_codes c)
{
	const char *const *list = ev_code_list(c);
	int n = 0;

	while (list[n] != NULL)
		n++;
	return n;
}

int
ind_event_index(enum ind_event_group g, int code)
{
	int i = 0;

	for (int k = 0; k < (int)g; k++)
		i += codes_in(event_groups[k].codes);
	return i + code;
}

int
ind_event_contacts(void)
{
	return ind_event_index(IEG__COUNT, 0);
}

int
ind_event_measures(void)
{
	return ind_event_contacts() + 1;
}

void
ind_event_name(int i, char *buf, size_t size)
{
	for (int g = 0; g < IEG__COUNT; g++) {
		int n = codes_in(event_groups[g].codes);

		if (i < n) {
			snprintf(buf, size, "%s.%s", event_groups[g].prefix,
			    ev_code_list(event_groups[g].codes)[i]);
			return;
		}
		i -= n;
	}
	snprintf(buf, size, "outreach.contacts");
}

/* ---- keys and values -------------------------------------------------- */

static size_t
put_be32(char *buf, uint32_t v)
{
	buf[0] = (char)(v >> 24);
	buf[1] = (char)(v >> 16);
	buf[2] = (char)(v >> 8);
	buf[3] = (char)v;
	return 4;
}

size_t
ind_day_key(char *buf, char family, int32_t day)
{
	buf[0] = family;
	return 1 + put_be32(buf + 1, (uint32_t)day);
}

/* Append s and, unless it is the last part, its NUL separator. */
static size_t
put_part(char *buf, size_t off, const char *s, bool last)
{
	size_t n = strlen(s);

	memcpy(buf + off, s, n);
	if (!last)
		buf[off + n++] = '\0';
	return off + n;
}

uint32_t
ind_period_index(enum ind_period kind, int year, int month)
{
	switch (kind) {
	case IND_YEAR:
		return (uint32_t)year;
	case IND_QUARTER:
		return (uint32_t)(year * 4 + (month - 1) / 3);
	default:
		return (uint32_t)(year * 12 + month - 1);
	}
}

size_t
ind_people_key(char *buf, enum ind_period kind, uint32_t period,
    const char *qpv, const char *agent)
{
	buf[0] = 'P';
	buf[1] = (char)kind;
	put_be32(buf + 2, period);
	return put_part(buf, put_part(buf, 6, qpv, false), agent, true);
}

int
ind_value_add(const void *data, size_t len, int64_t v[IND_MAXV])
{
	msgpack_object objs[4], root;
	msgpack_object_kv kvs[IND_MAXV];
	struct mpview mv = { objs, 4, kvs, IND_MAXV };

	if (mpview_parse(data, len, &mv, &root) != 0 ||
	    root.type != MSGPACK_OBJECT_MAP)
		return -1;
	for (uint32_t i = 0; i < root.via.map.size; i++) {
		const msgpack_object *k = &root.via.map.ptr[i].key;
		const msgpack_object *x = &root.via.map.ptr[i].val;

		if (k->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    k->via.u64 >= IND_MAXV)
			return -1;
		if (x->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			v[k->via.u64] += (int64_t)x->via.u64;
		else if (x->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			v[k->via.u64] += x->via.i64;
		else
			return -1;
	}
	return 0;
}

/* ---- the write-back cache -------------------------------------------- */

struct acc_entry {
	bool used;
	uint16_t klen;
	char key[IND_KEY_MAX];
	int64_t v[IND_MAXV];
};

/* A participant's counted (period, QPV, agent) triple in one year. */
struct seen {
	uint8_t period;             /* 0 the year, 1..4 a quarter, 5..16 a month */
	char qpv[PW_ID_SIZE];
	char agent[PW_AGENT_SIZE];
	uint32_t n;                 /* confidence assessments */
	int64_t first_at, last_at;
	uint64_t first_seq, last_seq;
	int first, last;            /* scores */
};

struct indacc {
	struct acc_entry *slots;    /* ACC_SLOTS, open addressing */
	size_t n;
	struct seen *seen;          /* one record being updated */
	size_t nseen, seencap;
	msgpack_sbuffer sb;
};

int
indicators_init(struct broker *b)
{
	struct indacc *acc = calloc(1, sizeof(*acc));

	if (acc == NULL || (acc->slots = calloc(ACC_SLOTS, sizeof(*acc->slots))) == NULL) {
		free(acc);
		return -1;
	}
	msgpack_sbuffer_init(&acc->sb);
	b->tx.ind = acc;
	return 0;
}

void
indicators_free(struct broker *b)
{
	struct indacc *acc = b->tx.ind;

	if (acc == NULL)
		return;
	free(acc->slots);
	free(acc->seen);
	msgpack_sbuffer_destroy(&acc->sb);
	free(acc);
	b->tx.ind = NULL;
}

void
indicators_clear(struct broker *b)
{
	struct indacc *acc = b->tx.ind;

	if (acc == NULL || acc->n == 0)
		return;
	for (size_t i = 0; i < ACC_SLOTS; i++)
		acc->slots[i].used = false;
	acc->n = 0;
}

static uint32_t
key_hash(const char *k, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)k[i]) * 16777619u;
	return h;
}

/* Write one gathered key: the stored counts plus the gathered ones. */
static int
flush_entry(struct broker *b, MDB_txn *txn, const struct acc_entry *e)
{
	msgpack_sbuffer *sb = &b->tx.ind->sb;
	msgpack_packer pk;
	int64_t v[IND_MAXV];
	MDB_val k = { e->klen, (void *)e->key }, val;
	uint32_t n = 0;
	int rc;

	memcpy(v, e->v, sizeof(v));
	rc = mdb_get(txn, b->st.indicators, &k, &val);
	if (rc == 0 && ind_value_add(val.mv_data, val.mv_size, v) != 0)
		return MDB_CORRUPTED;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	for (int i = 0; i < IND_MAXV; i++)
		n += v[i] != 0;
	if (n == 0)
		return rc == 0 ? store_del(&b->st, txn, b->st.indicators, &k) : 0;
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (int i = 0; i < IND_MAXV; i++) {
		if (v[i] == 0)
			continue;
		msgpack_pack_uint32(&pk, (uint32_t)i);
		msgpack_pack_int64(&pk, v[i]);
	}
	val.mv_size = sb->size;
	val.mv_data = sb->data;
	return store_put(&b->st, txn, b->st.indicators, &k, &val, 0);
}

int
indicators_flush(struct broker *b, MDB_txn *txn)
{
	struct indacc *acc = b->tx.ind;
	int rc = 0;

	for (size_t i = 0; acc != NULL && acc->n > 0 && i < ACC_SLOTS && rc == 0; i++)
		if (acc->slots[i].used)
			rc = flush_entry(b, txn, &acc->slots[i]);
	indicators_clear(b);
	return rc;
}

/* Add delta to measure idx of key; a full cache is written first. */
static int
acc_add(struct broker *b, MDB_txn *txn, const char *key, size_t klen, int idx,
    int64_t delta)
{
	struct indacc *acc = b->tx.ind;
	size_t i = key_hash(key, klen) & (ACC_SLOTS - 1);
	int rc;

	for (;;) {
		struct acc_entry *e = &acc->slots[i];

		if (e->used && e->klen == klen && memcmp(e->key, key, klen) == 0) {
			e->v[idx] += delta;
			return 0;
		}
		if (!e->used)
			break;
		i = (i + 1) & (ACC_SLOTS - 1);
	}
	if (acc->n >= ACC_SLOTS / 2) {
		if ((rc = indicators_flush(b, txn)) != 0)
			return rc;
		return acc_add(b, txn, key, klen, idx, delta);
	}
	acc->slots[i].used = true;
	acc->slots[i].klen = (uint16_t)klen;
	memcpy(acc->slots[i].key, key, klen);
	memset(acc->slots[i].v, 0, sizeof(acc->slots[i].v));
	acc->slots[i].v[idx] = delta;
	acc->n++;
	return 0;
}

static int
add_event(struct broker *b, MDB_txn *txn, int32_t day, const char *qpv,
    const char *agent, int idx, int64_t delta)
{
	char key[IND_KEY_MAX];
	size_t n = ind_day_key(key, 'E', day);

	n = put_part(key, put_part(key, n, qpv, false), agent, true);
	return acc_add(b, txn, key, n, idx, delta);
}

static int
add_flow(struct broker *b, MDB_txn *txn, int32_t day, const char *qpv,
    const struct pw_referral *r, int idx, int64_t delta)
{
	char key[IND_KEY_MAX];
	size_t n = ind_day_key(key, 'F', day);

	n = put_part(key, put_part(key, put_part(key, n, qpv, false), r->from,
	    false), r->to, true);
	return acc_add(b, txn, key, n, idx, delta);
}

/* ---- ind_seen records ------------------------------------------------- */

/* participant \0 kind, then the kind's own part. */
static size_t
seen_key(char *buf, const char *participant, char kind)
{
	size_t n = put_part(buf, 0, participant, false);

	buf[n] = kind;
	return n + 1;
}

static int
seen_put(struct broker *b, MDB_txn *txn, const char *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };
	MDB_val v = { b->tx.ind->sb.size, b->tx.ind->sb.data };

	return store_put(&b->st, txn, b->st.ind_seen, &k, &v, 0);
}

static int
seen_grow(struct indacc *acc)
{
	size_t cap = acc->seencap ? acc->seencap * 2 : 32;
	struct seen *s = realloc(acc->seen, cap * sizeof(*s));

	if (s == NULL)
		return ENOMEM;
	acc->seen = s;
	acc->seencap = cap;
	return 0;
}

static void
copy_str(char *dst, size_t size, const msgpack_object *o)
{
	size_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : 0;

	if (n >= size)
		n = size - 1;
	memcpy(dst, n ? o->via.str.ptr : "", n);
	dst[n] = '\0';
}

static int64_t
int_of(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : 0;
}

/* A participant's year record into acc->seen; none is an empty one. */
static int
seen_load_year(struct broker *b, MDB_txn *txn, const char *key, size_t klen)
{
	struct indacc *acc = b->tx.ind;
	MDB_val k = { klen, (void *)key }, v;
	msgpack_unpacked up;
	size_t off = 0;
	int rc;

	acc->nseen = 0;
	if ((rc = mdb_get(txn, b->st.ind_seen, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, v.mv_data, v.mv_size, &off) !=
	    MSGPACK_UNPACK_SUCCESS || up.data.type != MSGPACK_OBJECT_ARRAY) {
		msgpack_unpacked_destroy(&up);
		return MDB_CORRUPTED;
	}
	for (uint32_t i = 0; rc == 0 && i < up.data.via.array.size; i++) {
		const msgpack_object *e = &up.data.via.array.ptr[i];
		const msgpack_object *f = e->via.array.ptr;
		struct seen *s;

		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 10) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (acc->nseen == acc->seencap && (rc = seen_grow(acc)) != 0)
			break;
		s = &acc->seen[acc->nseen++];
		s->period = (uint8_t)int_of(&f[0]);
		copy_str(s->qpv, sizeof(s->qpv), &f[1]);
		copy_str(s->agent, sizeof(s->agent), &f[2]);
		s->n = (uint32_t)int_of(&f[3]);
		s->first_at = int_of(&f[4]);
		s->first_seq = (uint64_t)int_of(&f[5]);
		s->first = (int)int_of(&f[6]);
		s->last_at = int_of(&f[7]);
		s->last_seq = (uint64_t)int_of(&f[8]);
		s->last = (int)int_of(&f[9]);
	}
	msgpack_unpacked_destroy(&up);
	return rc;
}

static int
seen_save_year(struct broker *b, MDB_txn *txn, const char *key, size_t klen)
{
	struct indacc *acc = b->tx.ind;
	msgpack_packer pk;

	msgpack_sbuffer_clear(&acc->sb);
	msgpack_packer_init(&pk, &acc->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, (uint32_t)acc->nseen);
	for (size_t i = 0; i < acc->nseen; i++) {
		const struct seen *s = &acc->seen[i];

		msgpack_pack_array(&pk, 10);
		msgpack_pack_uint8(&pk, s->period);
		codec_pack_str(&pk, s->qpv);
		codec_pack_str(&pk, s->agent);
		msgpack_pack_uint32(&pk, s->n);
		msgpack_pack_int64(&pk, s->first_at);
		msgpack_pack_uint64(&pk, s->first_seq);
		msgpack_pack_int(&pk, s->first);
		msgpack_pack_int64(&pk, s->last_at);
		msgpack_pack_uint64(&pk, s->last_seq);
		msgpack_pack_int(&pk, s->last);
	}
	return seen_put(b, txn, key, klen);
}

/* ---- distinct people --------------------------------------------------- */

struct people {
	int v[IP__COUNT];
};

static bool
earlier(int64_t at1, uint64_t seq1, int64_t at2, uint64_t seq2)
{
	return at1 < at2 || (at1 == at2 && seq1 < seq2);
}

/*
 * What one person counts for in a period, over the triples that match a
 * QPV and an agent (NULL: any): followed if any; assessed twice if two or
 * more scores; improved if the latest is above the first.
 */
static struct people
people_of(const struct indacc *acc, uint8_t period, const char *qpv,
    const char *agent)
{
	struct people p = { { 0 } };
	const struct seen *first = NULL, *last = NULL;
	uint32_t n = 0;

	for (size_t i = 0; i < acc->nseen; i++) {
		const struct seen *s = &acc->seen[i];

		if (s->period != period || (qpv != NULL && strcmp(s->qpv, qpv) != 0) ||
		    (agent != NULL && strcmp(s->agent, agent) != 0))
			continue;
		p.v[IP_FOLLOWED] = 1;
		if (s->n == 0)
			continue;
		n += s->n;
		if (first == NULL || earlier(s->first_at, s->first_seq,
		    first->first_at, first->first_seq))
			first = s;
		if (last == NULL || earlier(last->last_at, last->last_seq,
		    s->last_at, s->last_seq))
			last = s;
	}
	p.v[IP_ASSESSED_TWICE] = n >= 2;
	p.v[IP_IMPROVED] = n >= 2 && last->last > first->first;
	return p;
}

/* The triple for (period, qpv, agent), or NULL if the person has none. */
static struct seen *
seen_find(struct indacc *acc, uint8_t period, const char *qpv,
    const char *agent)
{
	for (size_t i = 0; i < acc->nseen; i++) {
		struct seen *s = &acc->seen[i];

		if (s->period == period && strcmp(s->qpv, qpv) == 0 &&
		    strcmp(s->agent, agent) == 0)
			return s;
	}
	return NULL;
}

/* A new triple for (period, qpv, agent); NULL if out of memory. */
static struct seen *
seen_add(struct indacc *acc, uint8_t period, const char *qpv,
    const char *agent)
{
	struct seen *s;

	if (acc->nseen == acc->seencap && seen_grow(acc) != 0)
		return NULL;
	s = &acc->seen[acc->nseen++];
	memset(s, 0, sizeof(*s));
	s->period = period;
	snprintf(s->qpv, sizeof(s->qpv), "%s", qpv);
	snprintf(s->agent, sizeof(s->agent), "%s", agent);
	return s;
}

static void
add_score(struct seen *s, int score, int64_t at, uint64_t seq)
{
	if (s->n == 0 || earlier(at, seq, s->first_at, s->first_seq)) {
		s->first = score;
		s->first_at = at;
		s->first_seq = seq;
	}
	if (s->n == 0 || earlier(s->last_at, s->last_seq, at, seq)) {
		s->last = score;
		s->last_at = at;
		s->last_seq = seq;
	}
	s->n++;
}

/*
 * One event about a person, in one period: the four levels a person is
 * counted at (everyone, the QPV, the agent, both) change by what the
 * event changed in the person's triples.
 */
static int
count_person_in(struct broker *b, MDB_txn *txn, enum ind_period kind,
    uint32_t period, uint8_t code, const char *qpv, const char *agent,
    const struct rl_event *ev, int64_t at, uint64_t seq, bool *changed)
{
	const char *lq[4] = { NULL, qpv, NULL, qpv };
	const char *la[4] = { NULL, NULL, agent, agent };
	struct people before[4], after[4];
	struct seen *s = seen_find(b->tx.ind, code, qpv, agent);
	int rc;

	/*
	 * The counts depend only on the person's triples: a known triple and
	 * no score leave them as they are, which is most events (the same
	 * agent again in the same month), so they are not recomputed.
	 */
	if (s != NULL && ev->type != EV_CONFIDENCE_ASSESSED)
		return 0;
	for (int l = 0; l < 4; l++)
		before[l] = people_of(b->tx.ind, code, lq[l], la[l]);
	if (s == NULL) {
		if ((s = seen_add(b->tx.ind, code, qpv, agent)) == NULL)
			return ENOMEM;
		*changed = true;
	}
	if (ev->type == EV_CONFIDENCE_ASSESSED) {
		add_score(s, (int)ev->score, at, seq);
		*changed = true;
	}
	for (int l = 0; l < 4; l++) {
		char key[IND_KEY_MAX];
		size_t klen;

		after[l] = people_of(b->tx.ind, code, lq[l], la[l]);
		klen = ind_people_key(key, kind, period, lq[l] ? lq[l] : IND_ALL,
		    la[l] ? la[l] : IND_ALL);
		for (int m = 0; m < IP__COUNT; m++) {
			int d = after[l].v[m] - before[l].v[m];

			if (d != 0 && (rc = acc_add(b, txn, key, klen, m, d)) != 0)
				return rc;
		}
	}
	return 0;
}

static int
count_person(struct broker *b, MDB_txn *txn, int32_t day, const char *qpv,
    const char *agent, const struct pathway *pw, const struct rl_event *ev,
    int64_t at, uint64_t seq)
{
	char key[PW_ID_SIZE + 3];
	size_t klen = seen_key(key, pw->participant, 'y');
	int year, month, mday, rc;
	bool changed = false;

	cal_civil_from_days(day, &year, &month, &mday);
	key[klen++] = (char)(year >> 8);
	key[klen++] = (char)year;
	if ((rc = seen_load_year(b, txn, key, klen)) != 0)
		return rc;
	if ((rc = count_person_in(b, txn, IND_YEAR, ind_period_index(IND_YEAR,
	    year, month), 0, qpv, agent, ev, at, seq, &changed)) != 0 ||
	    (rc = count_person_in(b, txn, IND_QUARTER, ind_period_index(IND_QUARTER,
	    year, month), (uint8_t)(1 + (month - 1) / 3), qpv, agent, ev, at, seq,
	    &changed)) != 0 ||
	    (rc = count_person_in(b, txn, IND_MONTH, ind_period_index(IND_MONTH,
	    year, month), (uint8_t)(4 + month), qpv, agent, ev, at, seq,
	    &changed)) != 0)
		return rc;
	return changed ? seen_save_year(b, txn, key, klen) : 0;
}

/* ---- referrals ---------------------------------------------------------- */

static const struct pw_referral *
find_referral(const struct pathway *pw, const struct rl_str *id)
{
	for (int i = 0; i < pw->nreferrals; i++)
		if (strlen(pw->referrals[i].id) == id->len &&
		    memcmp(pw->referrals[i].id, id->p, id->len) == 0)
			return &pw->referrals[i];
	return NULL;
}

static size_t
referral_key(char *buf, const struct pathway *pw, const struct pw_referral *r)
{
	size_t n = seen_key(buf, pw->participant, 'r');

	return put_part(buf, n, r->id, true);
}

/*
 * A referral counts where it was sent from: its QPV then, kept with the
 * day it will expire on (0: never, the rule being off), so that its
 * answer and its expiry count in the same place whatever happens to the
 * person or the rules since.
 */
static int
count_referral_sent(struct broker *b, MDB_txn *txn, int32_t day,
    const char *qpv, const struct pathway *pw, const struct pw_referral *r)
{
	const struct rule_config *rule = &b->cfg->rules[RULE_REFERRAL_EXPIRED];
	char key[2 * PW_ID_SIZE + 2];
	int32_t expires = 0;
	msgpack_packer pk;
	int rc;

	if (rule->enabled)
		expires = cal_paris_day(r->sent_at + (int64_t)rule->threshold * PW_DAY_MS);
	msgpack_sbuffer_clear(&b->tx.ind->sb);
	msgpack_packer_init(&pk, &b->tx.ind->sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	codec_pack_str(&pk, qpv);
	msgpack_pack_int32(&pk, expires);
	if ((rc = seen_put(b, txn, key, referral_key(key, pw, r))) != 0 ||
	    (rc = add_flow(b, txn, day, qpv, r, IF_SENT, 1)) != 0)
		return rc;
	return expires ? add_flow(b, txn, expires, qpv, r, IF_EXPIRING, 1) : 0;
}

static int
count_referral_answer(struct broker *b, MDB_txn *txn, int32_t day,
    const char *qpv, const struct pathway *pw, const struct pw_referral *r,
    const struct rl_event *ev, int64_t at)
{
	char key[2 * PW_ID_SIZE + 2], sent_qpv[PW_ID_SIZE];
	MDB_val k, v;
	msgpack_unpacked up;
	size_t off = 0;
	int32_t expires = 0;
	int idx, rc;

	k.mv_size = referral_key(key, pw, r);
	k.mv_data = key;
	snprintf(sent_qpv, sizeof(sent_qpv), "%s", qpv);
	rc = mdb_get(txn, b->st.ind_seen, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (rc == 0) {
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, v.mv_data, v.mv_size, &off) ==
		    MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_ARRAY &&
		    up.data.via.array.size == 2) {
			copy_str(sent_qpv, sizeof(sent_qpv), &up.data.via.array.ptr[0]);
			expires = (int32_t)int_of(&up.data.via.array.ptr[1]);
		}
		msgpack_unpacked_destroy(&up);
		if ((rc = store_del(&b->st, txn, b->st.ind_seen, &k)) != 0)
			return rc;
	}
	if (expires != 0 &&
	    (rc = add_flow(b, txn, expires, sent_qpv, r, IF_EXPIRING, -1)) != 0)
		return rc;
	switch (ev->type) {
	case EV_REFERRAL_ACCEPTED:
		idx = IF_ACCEPTED;
		break;
	case EV_REFERRAL_DECLINED:
		idx = IF_DECLINED + ev_code_index(EVC_DECLINE_REASON, ev->reason.p,
		    ev->reason.len);
		break;
	default:
		return add_flow(b, txn, day, sent_qpv, r, IF_CANCELLED, 1);
	}
	if ((rc = add_flow(b, txn, day, sent_qpv, r, idx, 1)) != 0)
		return rc;
	return add_flow(b, txn, day, sent_qpv, r, IF_ANSWER + ind_bucket(at - r->sent_at), 1);
}

/* ---- events and alerts -------------------------------------------------- */

/* The 'E' measure an event counts for, or -1. */
static int
event_measure(const struct rl_event *ev)
{
	static const struct {
		enum ev_type type;
		enum ind_event_group group;
		enum ev_codes codes;
		size_t field;
	} map[] = {
		{ EV_OUTREACH_INTERVENTION, IEG_OUTREACH, EVC_PLACE,
		  offsetof(struct rl_event, place) },
		{ EV_CONTACT_MADE, IEG_CONTACT, EVC_CHANNEL,
		  offsetof(struct rl_event, channel) },
		{ EV_PARTICIPANT_IDENTIFIED, IEG_IDENTIFIED, EVC_SOURCE,
		  offsetof(struct rl_event, source) },
		{ EV_BARRIER_IDENTIFIED, IEG_BARRIER_IDENTIFIED, EVC_BARRIER,
		  offsetof(struct rl_event, barrier) },
		{ EV_BARRIER_LIFTED, IEG_BARRIER_LIFTED, EVC_BARRIER,
		  offsetof(struct rl_event, barrier) },
		{ EV_ENROLLMENT_STARTED, IEG_ENROLLED, EVC_SCHEME,
		  offsetof(struct rl_event, scheme) },
		{ EV_EMPLOYMENT_STARTED, IEG_EMPLOYED, EVC_CONTRACT,
		  offsetof(struct rl_event, contract) },
		{ EV_PARTICIPANT_EXITED, IEG_EXITED, EVC_EXIT_REASON,
		  offsetof(struct rl_event, reason) },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const struct rl_str *s;
		int code;

		if (map[i].type != ev->type)
			continue;
		s = (const struct rl_str *)((const char *)ev + map[i].field);
		code = ev_code_index(map[i].codes, s->p, s->len);
		return code < 0 ? -1 : ind_event_index(map[i].group, code);
	}
	return -1;
}

int
indicators_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, const struct pathway *pw, int64_t at,
    uint64_t seq)
{
	int32_t day = cal_paris_day(at);
	char qpv[PW_ID_SIZE];
	const struct pw_referral *r = NULL;
	int measure = event_measure(ev), rc;

	if (ev->type == EV_ALERT_ACKNOWLEDGED || ev->type == EV_ALERT_RESOLVED ||
	    ev->type == EV_PARTICIPANT_ERASED)
		return 0;
	if (pw != NULL)
		snprintf(qpv, sizeof(qpv), "%s", pw->qpv);
	else
		snprintf(qpv, sizeof(qpv), "%.*s", (int)ev->qpv.len, ev->qpv.p);
	if (measure >= 0 &&
	    (rc = add_event(b, txn, day, qpv, sender->id, measure, 1)) != 0)
		return rc;
	if (ev->type == EV_OUTREACH_INTERVENTION)
		return add_event(b, txn, day, qpv, sender->id, ind_event_contacts(),
		    ev->contacts);
	if (pw == NULL)
		return 0;
	if (event_has(ev, EF_REFERRAL) && (r = find_referral(pw, &ev->referral)) != NULL) {
		rc = ev->type == EV_REFERRAL_SENT ?
		    count_referral_sent(b, txn, day, qpv, pw, r) :
		    count_referral_answer(b, txn, day, qpv, pw, r, ev, at);
		if (rc != 0)
			return rc;
	}
	return count_person(b, txn, day, qpv, sender->id, pw, ev, at, seq);
}

int
indicators_alert(struct broker *b, MDB_txn *txn, const struct alert *a,
    const char *change)
{
	char key[IND_KEY_MAX];
	bool opened = strcmp(change, "opened") == 0;
	size_t n;
	int rc;

	if (!opened && strcmp(change, "resolved") != 0)
		return 0;
	n = ind_day_key(key, 'A', cal_paris_day(opened ? a->opened_at : a->resolved_at));
	n = put_part(key, put_part(key, n, a->qpv, false), rule_name(a->rule), true);
	if (opened)
		return acc_add(b, txn, key, n, IA_OPENED, 1);
	if ((rc = acc_add(b, txn, key, n, IA_RESOLVED, 1)) != 0)
		return rc;
	return acc_add(b, txn, key, n, IA_RESOLUTION +
	    ind_bucket(a->resolved_at - a->opened_at), 1);
}

int
indicators_forget(struct broker *b, MDB_txn *txn, const char *participant)
{
	char key[PW_ID_SIZE + 1];
	size_t plen = put_part(key, 0, participant, false);
	MDB_cursor *cur;
	MDB_val k = { plen, key }, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, b->st.ind_seen, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0)
			break;
		if ((rc = store_cursor_del(&b->st, cur)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}
