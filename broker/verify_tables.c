/*
 * relaisd --verify: table order and the alert bookkeeping (verify.h).
 * Every check reads the snapshot verify.c opened; alert and participant
 * ids are never printed, only alert seqs and counts.
 */
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "alert_index.h"
#include "verify.h"

static int
compare_keys(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int c = memcmp(a->mv_data, b->mv_data, n);

	if (c != 0)
		return c;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static int
check_order(struct verify *v, const char *name, MDB_dbi dbi)
{
	MDB_cursor *cur;
	MDB_val k, val, prev = { 0, NULL };
	uint64_t disorder = 0, lost = 0;
	char detail[200];
	int rc;

	if ((rc = mdb_cursor_open(v->txn, dbi, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		MDB_val found;

		/* A read-only snapshot's pages stay put: prev remains valid. */
		if (prev.mv_data != NULL && compare_keys(&prev, &k) >= 0)
			disorder++;
		if (mdb_get(v->txn, dbi, &k, &found) != 0)
			lost++;
		prev = k;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (disorder > 0 || lost > 0) {
		snprintf(detail, sizeof(detail), "%llu keys out of order, %llu "
		    "records a lookup cannot find: restore the last backup",
		    (unsigned long long)disorder, (unsigned long long)lost);
		verify_difference(v, name, detail);
	}
	return 0;
}

int
verify_key_order(struct verify *v)
{
	MDB_dbi main;
	MDB_cursor *cur;
	MDB_val k, val;
	int rc;

	/* The main database's keys name every table, whatever the layout. */
	if ((rc = mdb_dbi_open(v->txn, NULL, 0, &main)) != 0 ||
	    (rc = check_order(v, "(table names)", main)) != 0 ||
	    (rc = mdb_cursor_open(v->txn, main, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		char name[64];
		MDB_dbi dbi;

		if (k.mv_size == 0 || k.mv_size >= sizeof(name)) {
			verify_difference(v, "(table names)", "a table has an "
			    "impossible name");
			continue;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if ((rc = mdb_dbi_open(v->txn, name, 0, &dbi)) != 0 ||
		    (rc = check_order(v, name, dbi)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The alert stored under seq, or false (with a difference) if there is none. */
static bool
stored_alert(struct verify *v, uint64_t seq, struct alert *a)
{
	char key[8], detail[160];
	MDB_val k = { 8, key }, val;

	store_put_be64(key, seq);
	if (mdb_get(v->txn, v->st.alerts, &k, &val) == 0 &&
	    alert_unpack(val.mv_data, val.mv_size, a) == RL_OK)
		return true;
	snprintf(detail, sizeof(detail), "alert al-%llu is marked open but "
	    "cannot be found or read", (unsigned long long)seq);
	verify_difference(v, "alerts", detail);
	return false;
}

/* Each "alert_open" key: participant\0rule -> seq of an unresolved alert. */
static int
check_open_keys(struct verify *v)
{
	MDB_cursor *cur;
	MDB_val k, val;
	char detail[200];
	int rc;

	if ((rc = mdb_cursor_open(v->txn, v->st.alert_open, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		const char *p = k.mv_data;
		size_t plen = k.mv_size - 2;
		MDB_val pk = { plen, k.mv_data }, pv;
		struct armed armed;
		const char *pwb;
		size_t pwlen;
		struct alert a;
		int rule;
		uint64_t seq;

		if (k.mv_size < 3 || p[plen] != '\0' || val.mv_size != 8) {
			verify_difference(v, "alert_open", "a key or value has an "
			    "impossible shape");
			continue;
		}
		rule = (unsigned char)p[plen + 1];
		seq = store_be64(val.mv_data);
		if (!stored_alert(v, seq, &a))
			continue;
		if (a.status == ALERT_RESOLVED || (int)a.rule != rule ||
		    strlen(a.participant) != plen || memcmp(a.participant, p, plen) != 0) {
			snprintf(detail, sizeof(detail), "alert al-%llu is marked "
			    "open for another participant or rule, or is resolved",
			    (unsigned long long)seq);
			verify_difference(v, "alert_open", detail);
		}
		if (mdb_get(v->txn, v->st.participants, &pk, &pv) != 0 ||
		    participants_stored(&pv, &armed, &pwb, &pwlen) == -1 ||
		    !(armed.open & (1u << rule))) {
			snprintf(detail, sizeof(detail), "alert al-%llu is open, but "
			    "its participant's record does not say so",
			    (unsigned long long)seq);
			verify_difference(v, "alert_open", detail);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Each rule participant p's record marks open has its "alert_open" key. */
void
verify_record_alerts(struct verify *v, const void *p, size_t plen,
    const struct armed *armed)
{
	char key[PW_ID_SIZE + 2];

	if (plen == 0 || plen >= PW_ID_SIZE)
		return;
	memcpy(key, p, plen);
	key[plen] = '\0';
	for (int r = 0; r < RULE__COUNT; r++) {
		MDB_val ok = { plen + 2, key }, ov;

		if (!(armed->open & (1u << r)))
			continue;
		key[plen + 1] = (char)r;
		if (mdb_get(v->txn, v->st.alert_open, &ok, &ov) != 0)
			verify_difference(v, "participants", "a record marks a "
			    "rule's alert open, but no alert is open for it");
	}
}

/* Each unresolved alert is the one "alert_open" names for its rule. */
static void
check_unresolved(struct verify *v, const struct alert *a)
{
	char key[PW_ID_SIZE + 2], detail[200];
	size_t plen = strlen(a->participant);
	MDB_val ok = { plen + 2, key }, ov;

	if (a->status == ALERT_RESOLVED)
		return;
	memcpy(key, a->participant, plen);
	key[plen] = '\0';
	key[plen + 1] = (char)a->rule;
	if (plen == 0 || mdb_get(v->txn, v->st.alert_open, &ok, &ov) != 0 ||
	    ov.mv_size != 8 || store_be64(ov.mv_data) != a->seq) {
		snprintf(detail, sizeof(detail), "alert al-%llu is unresolved "
		    "but not the open alert of its participant and rule",
		    (unsigned long long)a->seq);
		verify_difference(v, "alerts", detail);
	}
}

/*
 * Each alert has its index keys (alert_index.h); *nall, *nsubject count
 * the keys there must be, so that any other key shows in the totals.
 */
static void
check_indexed(struct verify *v, const struct alert *a, uint64_t *nall,
    uint64_t *nsubject)
{
	char key[ALERT_INDEX_KEY_MAX], detail[200];
	MDB_val k = { 0, key }, val;
	bool missing = false;

	k.mv_size = alert_index_key_all(key, a);
	missing |= mdb_get(v->txn, v->st.alert_index, &k, &val) != 0;
	k.mv_size = alert_index_key_qpv(key, a);
	missing |= mdb_get(v->txn, v->st.alert_index, &k, &val) != 0;
	*nall += 2;
	if ((k.mv_size = alert_index_key_subject(key, a)) != 0) {
		missing |= mdb_get(v->txn, v->st.alert_subject, &k, &val) != 0;
		(*nsubject)++;
	}
	if (missing) {
		snprintf(detail, sizeof(detail), "alert al-%llu is missing from "
		    "the alert indexes: listings skip it; restore the last backup",
		    (unsigned long long)a->seq);
		verify_difference(v, "alert_index", detail);
	}
}

/* Every alert record: readable, open bookkeeping, index keys. */
static int
check_alert_records(struct verify *v)
{
	MDB_cursor *cur;
	MDB_val k, val;
	uint64_t nall = 0, nsubject = 0;
	char detail[200];
	int rc;

	if ((rc = mdb_cursor_open(v->txn, v->st.alerts, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		static struct alert a;  /* 4 KB: not on the stack */

		if (k.mv_size != 8 || alert_unpack(val.mv_data, val.mv_size, &a) != RL_OK) {
			verify_difference(v, "alerts", "a record cannot be read");
			continue;
		}
		check_unresolved(v, &a);
		check_indexed(v, &a, &nall, &nsubject);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (store_count(v->txn, v->st.alert_index) != nall ||
	    store_count(v->txn, v->st.alert_subject) != nsubject) {
		snprintf(detail, sizeof(detail), "the alert indexes hold %llu and "
		    "%llu keys where the alerts need %llu and %llu, so listings "
		    "may be wrong; restore the last backup",
		    (unsigned long long)store_count(v->txn, v->st.alert_index),
		    (unsigned long long)store_count(v->txn, v->st.alert_subject),
		    (unsigned long long)nall, (unsigned long long)nsubject);
		verify_difference(v, "alert_index", detail);
	}
	return 0;
}

int
verify_alerts(struct verify *v)
{
	int rc;

	if ((rc = check_open_keys(v)) != 0)
		return rc;
	return check_alert_records(v);
}
