/*
 * The upgrade of a store of format 6 or 7 (broker/store_upgrade.c): a
 * store is written, rewritten in the older layout (format 7: the timeline
 * in a table of its own, no count of participants in meta; format 6 also:
 * deduplication records under sender \0 event_id in "dedup", a
 * "referrals" table of referral id -> participant id), and opened again.
 * Every answer must be what it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixture.h"

/* The key format 6 gave a deduplication record. */
static size_t
format6_dedup_key(char *buf, const char *sender, size_t slen, const char *eid,
    size_t eidlen)
{
	memcpy(buf, sender, slen);
	buf[slen] = '\0';
	memcpy(buf + slen + 1, eid, eidlen);
	return slen + 1 + eidlen;
}

/* Format 7's timeline: its own table. */
static void
timeline_apart(struct fixture *fx, MDB_txn *txn)
{
	MDB_dbi timeline;
	MDB_cursor *cur;
	MDB_val k, v, mk = { 12, "participants" };

	assert_int_equal(mdb_dbi_open(txn, "timeline", MDB_CREATE, &timeline), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.participants, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		if (participants_is_record(&k))
			continue;
		assert_int_equal(mdb_put(txn, timeline, &k, &v, 0), 0);
		assert_int_equal(mdb_cursor_del(cur, 0), 0);
	}
	mdb_cursor_close(cur);
	assert_int_equal(mdb_del(txn, fx->b.st.meta, &mk, NULL), 0);
}

/* Format 6's deduplication records and referral index. */
static void
dedup_and_referrals_apart(struct fixture *fx, MDB_txn *txn)
{
	static struct pathway pw;
	MDB_dbi dedup, referrals;
	MDB_cursor *cur;
	MDB_val k, v;

	assert_int_equal(mdb_dbi_open(txn, "dedup", MDB_CREATE, &dedup), 0);
	assert_int_equal(mdb_dbi_open(txn, "referrals", MDB_CREATE, &referrals), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.dedup, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		const char *sep = memchr(k.mv_data, '\0', k.mv_size);
		size_t ilen = (size_t)(sep - (const char *)k.mv_data);
		char key[512];
		MDB_val ok;

		assert_non_null(sep);
		ok.mv_data = key;
		ok.mv_size = format6_dedup_key(key, sep + 1, k.mv_size - ilen - 1,
		    k.mv_data, ilen);
		assert_int_equal(mdb_put(txn, dedup, &ok, &v, MDB_NOOVERWRITE), 0);
	}
	mdb_cursor_close(cur);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.participants, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
		struct rl_error err;
		const char *pwb;
		size_t pwlen;

		assert_int_equal(participants_stored(&v, NULL, &pwb, &pwlen), 0);
		assert_int_equal(pathway_decode(pwb, pwlen, &pw, &err), RL_OK);
		for (int i = 0; i < pw.nreferrals; i++) {
			MDB_val rk = { strlen(pw.referrals[i].id), pw.referrals[i].id };
			MDB_val rv = { k.mv_size, k.mv_data };

			assert_int_equal(mdb_put(txn, referrals, &rk, &rv, 0), 0);
		}
	}
	mdb_cursor_close(cur);
	assert_int_equal(mdb_drop(txn, fx->b.st.dedup, 1), 0);
}

/* Rewrite the fixture's (closed afterwards) store as format 6 or 7 left it. */
static void
to_format(struct fixture *fx, uint64_t format)
{
	MDB_val k = { 6, "format" }, v;
	unsigned char num[8];
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	timeline_apart(fx, txn);
	if (format == 6)
		dedup_and_referrals_apart(fx, txn);
	store_put_be64(num, format);
	v.mv_size = 8;
	v.mv_data = num;
	assert_int_equal(mdb_put(txn, fx->b.st.meta, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	store_close(&fx->b.st);
}

static int
submit_event(struct fixture *fx, const char *sender, msgpack_sbuffer *sb,
    struct ingest_result *res)
{
	struct rl_error err;
	int code = ingest(fx, sender, sb, res, &err);

	msgpack_sbuffer_clear(sb);
	return code;
}

static void
identify(struct fixture *fx, const char *eid, const char *p)
{
	struct ingest_result r;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 6, "event_id", eid, "type", "participant.identified",
	    "occurred_at", FIXTURE_T0, "participant", p, "qpv", "sanitas",
	    "source", "outreach");
	assert_int_equal(submit_event(fx, "med", &sb, &r), RL_OK);
	msgpack_sbuffer_destroy(&sb);
}

static int
referral(struct fixture *fx, const char *sender, const char *type,
    const char *eid, const char *p, const char *r, const char *to)
{
	MDB_txn *txn;
	int code;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	code = ingest_referral_in(fx, txn, sender, type, eid, p, r, to);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	return code;
}

/* The reply to a query, as bytes: what a client would see. */
static char *
answer(struct fixture *fx, const char *who, const char *what, const char *p,
    size_t *len)
{
	msgpack_sbuffer args, out;
	msgpack_unpacked up;
	msgpack_packer pk;
	char *bytes, *now;

	msgpack_sbuffer_init(&args);
	msgpack_sbuffer_init(&out);
	msgpack_unpacked_init(&up);
	msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, p != NULL);
	if (p != NULL) {
		msgpack_pack_str_with_body(&pk, "participant", 11);
		msgpack_pack_str_with_body(&pk, p, strlen(p));
	}
	fixture_query(fx, who, what, &args, &out, &up);
	bytes = malloc(out.size);
	assert_non_null(bytes);
	memcpy(bytes, out.data, out.size);
	/* The inbox's "now" is the clock's: blank its value (9 bytes). */
	if ((now = memmem(bytes, out.size, "\xa3now", 4)) != NULL) {
		assert_true(now + 4 + 9 <= bytes + out.size);
		memset(now + 4, 0, 9);
	}
	*len = out.size;
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&out);
	msgpack_sbuffer_destroy(&args);
	return bytes;
}

#define NQUERIES 5
static const struct { const char *who, *what, *p; } queries[NQUERIES] = {
	{ "coord", "participant", "p-1" },
	{ "coord", "participant", "p-2" },
	{ "coord", "participants", NULL },
	{ "ml", "inbox", NULL },
	{ "med", "inbox", NULL },
};

static void
upgrades_and_answers_the_same(struct fixture *fx, uint64_t from)
{
	const char *dir = fx->b.cfg->data_dir;
	char *before[NQUERIES], err[512], out[4096];
	size_t blen[NQUERIES];
	struct ingest_result r;
	msgpack_sbuffer sb;
	uint64_t format, events;
	MDB_txn *txn;
	MDB_dbi gone;

	identify(fx, "e0", "p-1");
	identify(fx, "e00", "p-2");
	assert_int_equal(referral(fx, "med", "referral.sent", "e1", "p-1", "r-1",
	    "ml"), RL_OK);
	assert_int_equal(referral(fx, "ml", "referral.accepted", "e2", "p-1",
	    "r-1", NULL), RL_OK);
	assert_int_equal(referral(fx, "med", "referral.sent", "e3", "p-2", "r-2",
	    "ml"), RL_OK);
	/* ml's own e1: another event than med's. */
	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", FIXTURE_T0, "participant", "p-2", "channel", "phone");
	assert_int_equal(submit_event(fx, "ml", &sb, &r), RL_OK);
	events = count(fx, fx->b.st.log);
	for (int i = 0; i < NQUERIES; i++)
		before[i] = answer(fx, queries[i].who, queries[i].what,
		    queries[i].p, &blen[i]);

	to_format(fx, from);
	assert_int_equal(store_open(&fx->b.st, dir, 16, true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "start relaisd on it once"));
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)), 0);

	/* The new layout, and nothing of the old one. */
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "format", 6, &format), 0);
	assert_int_equal(mdb_dbi_open(txn, "dedup", 0, &gone), MDB_NOTFOUND);
	assert_int_equal(mdb_dbi_open(txn, "referrals", 0, &gone), MDB_NOTFOUND);
	assert_int_equal(mdb_dbi_open(txn, "timeline", 0, &gone), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	assert_int_equal(format, STORE_FORMAT);
	assert_int_equal(count(fx, fx->b.st.dedup), events);
	assert_int_equal(participant_records(fx), 2);

	/* The same answers, and a clean --verify. */
	for (int i = 0; i < NQUERIES; i++) {
		size_t len;
		char *after = answer(fx, queries[i].who, queries[i].what,
		    queries[i].p, &len);

		if (len != blen[i] || memcmp(after, before[i], len) != 0)
			fail_msg("query %d (%s) answers otherwise", i, queries[i].what);
		free(after);
		free(before[i]);
	}
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);

	/* Deduplication as before: duplicates keep their seq, other
	 * content is a conflict, and the two agents' e1 stay apart. */
	assert_int_equal(RL_OK, referral(fx, "med", "referral.sent", "e1", "p-1", "r-1",
	    "ml"));
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", FIXTURE_T0, "participant", "p-2", "channel", "phone");
	assert_int_equal(submit_event(fx, "ml", &sb, &r), RL_OK);
	assert_true(r.duplicate);
	assert_int_equal(r.seq, events);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", FIXTURE_T0, "participant", "p-2", "channel", "message");
	assert_int_equal(submit_event(fx, "med", &sb, &r), RL_E_CONFLICT);
	assert_int_equal(count(fx, fx->b.st.log), events);

	/* Referrals are found by their participant. */
	assert_int_equal(referral(fx, "med", "referral.sent", "e4", "p-1", "r-1",
	    "ml"), RL_E_REFERRAL_EXISTS);
	assert_int_equal(referral(fx, "ml", "referral.accepted", "e5", "p-1",
	    "r-2", NULL), RL_E_UNKNOWN_REFERRAL);
	assert_int_equal(referral(fx, "ml", "referral.accepted", "e6", "p-2",
	    "r-2", NULL), RL_OK);

	/* Erasure still takes everything about the person. */
	pack_event(&sb, 4, "event_id", "x1", "type", "participant.erased",
	    "occurred_at", FIXTURE_T0, "participant", "p-2");
	assert_int_equal(submit_event(fx, "coord", &sb, &r), RL_OK);
	assert_int_equal(referral(fx, "ml", "referral.accepted", "e7", "p-2",
	    "r-2", NULL), RL_E_UNKNOWN_REFERRAL);
	assert_int_equal(fixture_verify(fx, out, sizeof(out)), 0);
	assert_int_equal(participant_records(fx), 1);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_a_format_6_store_upgrades_and_answers_the_same(void **state)
{
	upgrades_and_answers_the_same(*state, 6);
}

static void
test_a_format_7_store_upgrades_and_answers_the_same(void **state)
{
	upgrades_and_answers_the_same(*state, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_a_format_6_store_upgrades_and_answers_the_same,
		    fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_format_7_store_upgrades_and_answers_the_same,
		    fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
