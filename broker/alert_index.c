/*
 * The indexes of the alerts (alert_index.h): kept with every write of an
 * alert, built once for a store of an older layout, read by listings and
 * erasure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alert_index.h"

size_t
alert_index_key_all(char *buf, const struct alert *a)
{
	buf[0] = 'S';
	buf[1] = (char)a->status;
	buf[2] = (char)a->rule;
	store_put_be64(buf + 3, a->seq);
	return 3 + 8;
}

/* The prefix of the 'Q' keys of a QPV, status and rule. */
static size_t
qpv_prefix(char *buf, const char *qpv, enum alert_status status,
    enum rule_id rule)
{
	size_t qlen = strlen(qpv);

	buf[0] = 'Q';
	memcpy(buf + 1, qpv, qlen);
	buf[1 + qlen] = '\0';
	buf[2 + qlen] = (char)status;
	buf[3 + qlen] = (char)rule;
	return 4 + qlen;
}

size_t
alert_index_key_qpv(char *buf, const struct alert *a)
{
	size_t n = qpv_prefix(buf, a->qpv, a->status, a->rule);

	store_put_be64(buf + n, a->seq);
	return n + 8;
}

size_t
alert_index_key_subject(char *buf, const struct alert *a)
{
	size_t plen = strlen(a->participant);

	if (plen == 0)
		return 0;               /* erased: the alert names nobody */
	return store_key_seq(buf, a->participant, plen, a->seq);
}

/* Put (put) or delete the keys of a; a missing key is not an error. */
static int
set_keys(struct store *st, MDB_txn *txn, const struct alert *a, bool put)
{
	char key[ALERT_INDEX_KEY_MAX];
	MDB_val k, v = { 0, "" };
	MDB_dbi dbi[3] = { st->alert_index, st->alert_index, st->alert_subject };
	int rc;

	for (int i = 0; i < 3; i++) {
		k.mv_data = key;
		k.mv_size = i == 0 ? alert_index_key_all(key, a) :
		    i == 1 ? alert_index_key_qpv(key, a) :
		    alert_index_key_subject(key, a);
		if (k.mv_size == 0)
			continue;
		rc = put ? store_put(st, txn, dbi[i], &k, &v, 0) :
		    store_del(st, txn, dbi[i], &k);
		if (rc != 0 && (put || rc != MDB_NOTFOUND))
			return rc;
	}
	return 0;
}

int
alert_index_update(struct store *st, MDB_txn *txn,
    const struct alert *old, const struct alert *a)
{
	int rc;

	/* Only the status and, at erasure, the participant ever change. */
	if (old != NULL && old->status == a->status &&
	    strcmp(old->participant, a->participant) == 0)
		return 0;
	if (old != NULL && (rc = set_keys(st, txn, old, false)) != 0)
		return rc;
	return set_keys(st, txn, a, true);
}

int
alert_index_build(struct store *st, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	/* Both tables are new, created by the transaction that opens the store. */
	if ((rc = mdb_cursor_open(txn, st->alerts, &cur)) != 0)
		return rc;
	/* Only the index tables are written: the cursor's pages stay put. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct alert a;

		if (k.mv_size != 8 || alert_unpack(v.mv_data, v.mv_size, &a) != RL_OK) {
			rc = MDB_CORRUPTED;
			break;
		}
		if ((rc = set_keys(st, txn, &a, true)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
alert_index_about(const struct store *st, MDB_txn *txn, const char *p,
    uint64_t **seqs, size_t *n)
{
	char prefix[PW_ID_SIZE + 1];
	size_t plen = strlen(p) + 1, cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*seqs = NULL;
	*n = 0;
	if (plen > PW_ID_SIZE)
		return 0;               /* no such id is stored */
	memcpy(prefix, p, plen);    /* the id and its '\0' */
	if ((rc = mdb_cursor_open(txn, st->alert_subject, &cur)) != 0)
		return rc;
	k.mv_size = plen;
	k.mv_data = prefix;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
	    k.mv_size == plen + 8 && memcmp(k.mv_data, prefix, plen) == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (*n == cap) {
			uint64_t *more = realloc(*seqs, (cap = cap ? 2 * cap : 16) *
			    sizeof(**seqs));

			if (more == NULL) {
				rc = ENOMEM;
				break;
			}
			*seqs = more;
		}
		(*seqs)[(*n)++] = store_be64((char *)k.mv_data + plen);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* Read run r's first key with a seq of at least from into r->next. */
static int
run_seek(struct alert_walk *w, struct alert_run *r, const struct store *st,
    MDB_txn *txn, uint64_t from)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	r->next = 0;
	if (from == 0)
		return 0;               /* past the last seq there can be */
	store_put_be64(r->key + r->plen, from);
	k.mv_size = r->plen + 8;
	k.mv_data = r->key;
	if ((rc = mdb_cursor_open(txn, st->alert_index, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	w->reads++;
	if (rc == 0 && k.mv_size == r->plen + 8 &&
	    memcmp(k.mv_data, r->key, r->plen) == 0)
		r->next = store_be64((char *)k.mv_data + r->plen);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int
alert_walk_begin(struct alert_walk *w, const struct store *st, MDB_txn *txn,
    const char (*qpvs)[PW_ID_SIZE], size_t nqpv, unsigned statuses,
    int rule, uint64_t after)
{
	size_t places = nqpv == 0 ? 1 : nqpv;
	int rc;

	w->nruns = 0;
	w->reads = 0;
	for (size_t q = 0; q < places && q < CONFIG_MAX_QPV; q++)
		for (int s = ALERT_OPEN; s <= ALERT_RESOLVED; s++) {
			if (!(statuses & ALERT_WALK_STATUS(s)))
				continue;
			for (int r = 0; r < RULE__COUNT; r++) {
				struct alert_run *run = &w->runs[w->nruns];

				if (rule >= 0 && r != rule)
					continue;
				if (nqpv == 0) {
					run->key[0] = 'S';
					run->key[1] = (char)s;
					run->key[2] = (char)r;
					run->plen = 3;
				} else {
					run->plen = qpv_prefix(run->key, qpvs[q],
					    (enum alert_status)s, (enum rule_id)r);
				}
				if ((rc = run_seek(w, run, st, txn, after + 1)) != 0)
					return rc;
				w->nruns++;
			}
		}
	return 0;
}

int
alert_walk_next(struct alert_walk *w, const struct store *st, MDB_txn *txn,
    uint64_t *seq)
{
	struct alert_run *best = NULL;

	for (size_t i = 0; i < w->nruns; i++)
		if (w->runs[i].next != 0 &&
		    (best == NULL || w->runs[i].next < best->next))
			best = &w->runs[i];
	if (best == NULL)
		return MDB_NOTFOUND;
	*seq = best->next;
	return run_seek(w, best, st, txn, best->next + 1);
}
