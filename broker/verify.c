/*
 * relaisd --verify: prove that the stored state is what the log says.
 *
 * For every participant, replay their timeline (their events, in log
 * order) through pathway_apply(), the same code that built the stored
 * pathway, and compare.  Then check the log and the dedup table against
 * each other: every recorded event has exactly one dedup record, which
 * points back at it; the deadline index against the participant records:
 * one key for each record that names one, no other; every table's key
 * order, and the alert bookkeeping (verify_tables.c).  Runs on a
 * read-only snapshot, beside a running broker if need be.
 */
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "verify.h"

void
verify_difference(struct verify *v, const char *what, const char *detail)
{
	v->differences++;
	if (v->differences <= 50)
		fprintf(v->out, "verify: %s: %s\n", what, detail);
}

static int
replay_one(struct verify *v, const char *p, size_t plen)
{
	char key[RL_MAX_ID_BYTES + 9], detail[200];
	MDB_cursor *cur;
	MDB_val k, val;
	int rc;

	pathway_init(v->replayed, p, plen);
	if ((rc = mdb_cursor_open(v->txn, v->st.participants, &cur)) != 0)
		return rc;
	k.mv_size = store_key_seq(key, p, plen, 0);
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		MDB_val lk, lv;
		msgpack_unpacked up;
		struct rl_event ev;
		struct record_meta meta;
		struct rl_error err;
		struct pw_effects fx;
		char sender[RL_MAX_AGENT_ID_BYTES + 1], kind[32];
		const struct agent *a;
		uint64_t seq;

		if (k.mv_size != plen + 9 || memcmp(k.mv_data, key, plen + 1) != 0)
			break;
		seq = store_be64((char *)k.mv_data + plen + 1);
		lk.mv_size = 8;
		lk.mv_data = (char *)k.mv_data + plen + 1;
		if (mdb_get(v->txn, v->st.log, &lk, &lv) != 0) {
			snprintf(detail, sizeof(detail), "timeline names log entry %llu, "
			    "which does not exist", (unsigned long long)seq);
			verify_difference(v, "timeline", detail);
			continue;
		}
		msgpack_unpacked_init(&up);
		if (record_parse(lv.mv_data, lv.mv_size, &up, &ev, &meta, &err) != RL_OK ||
		    meta.sender.len > RL_MAX_AGENT_ID_BYTES) {
			snprintf(detail, sizeof(detail), "log entry %llu cannot be read: %s",
			    (unsigned long long)seq, err.message);
			verify_difference(v, "log", detail);
			msgpack_unpacked_destroy(&up);
			continue;
		}
		memcpy(sender, meta.sender.p, meta.sender.len);
		sender[meta.sender.len] = '\0';
		/*
		 * The rights the sender had when it sent the event, as its
		 * record says, not the registry's today: an agent whose kind
		 * changed or that left must not make old events look wrong.
		 * Records older than sender_kind fall back to the registry.
		 */
		a = config_agent_by_id(v->cfg, sender);
		struct pw_actor actor = { sender, a != NULL ? a->kind : AK_ASSOCIATION };
		if (meta.sender_kind.len > 0 && meta.sender_kind.len < sizeof(kind)) {
			int recorded;

			memcpy(kind, meta.sender_kind.p, meta.sender_kind.len);
			kind[meta.sender_kind.len] = '\0';
			if ((recorded = agent_kind_from_name(kind)) >= 0)
				actor.kind = (enum agent_kind)recorded;
		}
		int64_t at = ev.occurred_at < meta.recorded_at ?
		    ev.occurred_at : meta.recorded_at;

		v->events++;
		if (ev.type != EV_ALERT_ACKNOWLEDGED && ev.type != EV_ALERT_RESOLVED &&
		    pathway_apply(v->replayed, &ev, &actor, at, NULL, &fx, &err) != RL_OK) {
			snprintf(detail, sizeof(detail), "log entry %llu does not replay: %s",
			    (unsigned long long)seq, err.message);
			verify_difference(v, "replay", detail);
		}
		msgpack_unpacked_destroy(&up);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static bool
has_deadline(struct verify *v, int64_t due, const void *p, size_t plen)
{
	char key[8 + PW_ID_SIZE];
	MDB_val k = { 8 + plen, key }, val;

	store_put_be64(key, (uint64_t)due);
	memcpy(key + 8, p, plen);
	return mdb_get(v->txn, v->st.deadlines, &k, &val) == 0;
}

static int
verify_participants(struct verify *v)
{
	MDB_cursor *cur;
	MDB_val k, val;
	int rc;

	if ((rc = mdb_cursor_open(v->txn, v->st.participants, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		struct rl_error err;
		char p[PW_ID_SIZE];
		const char *pwb;
		size_t pwlen;
		struct armed armed;

		if (!participants_is_record(&k))
			continue;       /* a timeline's key: replay_one reads them */
		if (k.mv_size == 0 || k.mv_size >= sizeof(p)) {
			verify_difference(v, "participants", "a key has an impossible length");
			continue;
		}
		memcpy(p, k.mv_data, k.mv_size);
		p[k.mv_size] = '\0';
		v->participants++;
		if (participants_stored(&val, &armed, &pwb, &pwlen) == -1 ||
		    pathway_decode(pwb, pwlen, v->stored, &err) != RL_OK) {
			verify_difference(v, "participants", "a stored pathway cannot be read");
			continue;
		}
		if ((rc = replay_one(v, p, k.mv_size)) != 0)
			break;
		if (!pathway_equal(v->stored, v->replayed))
			verify_difference(v, "pathway", "a stored pathway differs from the "
			    "replay of its events (participant ids are not printed)");
		verify_record_alerts(v, k.mv_data, k.mv_size, &armed);
		if (armed.key_due != 0) {
			v->keyed++;
			if (!has_deadline(v, armed.key_due, k.mv_data, k.mv_size))
				verify_difference(v, "deadlines", "a participant's deadline "
				    "key is missing: its rules would never fire");
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Every log entry has exactly one dedup record, and it points back. */
static int
verify_dedup(struct verify *v)
{
	MDB_cursor *cur;
	MDB_val k, val;
	uint64_t dedups = store_count(v->txn, v->st.dedup);
	uint64_t logs = store_count(v->txn, v->st.log);
	char detail[200];
	int rc;

	if (dedups != logs) {
		snprintf(detail, sizeof(detail), "%llu log entries but %llu dedup records",
		    (unsigned long long)logs, (unsigned long long)dedups);
		verify_difference(v, "dedup", detail);
	}
	if ((rc = mdb_cursor_open(v->txn, v->st.dedup, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
		struct dedup_rec dr;
		char lkey[8];
		MDB_val lk = { 8, lkey }, lv;

		if (val.mv_size != sizeof(dr)) {
			verify_difference(v, "dedup", "a record has the wrong size");
			continue;
		}
		memcpy(&dr, val.mv_data, sizeof(dr));
		store_put_be64(lkey, dr.seq);
		if (mdb_get(v->txn, v->st.log, &lk, &lv) != 0) {
			snprintf(detail, sizeof(detail), "a dedup record names log entry "
			    "%llu, which does not exist", (unsigned long long)dr.seq);
			verify_difference(v, "dedup", detail);
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * What was verified is the store's last checkpoint: with durability = wal,
 * passes acknowledged since are in the write-ahead log only (wal_copy.c).
 */
static void
report_pending(struct verify *v, FILE *out)
{
	struct wal_pending wp;
	char err[1200];

	if (wal_pending_read(&v->st, v->cfg->data_dir, &wp, err,
	    sizeof(err)) == -1) {
		fprintf(out, "verify: %s\n", err);
		return;
	}
	if (wp.records > 0)
		fprintf(out, "verify: the write-ahead log holds %llu records "
		    "acknowledged since the store's last checkpoint, not in what "
		    "was verified: relaisd --backup DIR applies them to its copy, "
		    "verify that copy (or stop the broker, which checkpoints)\n",
		    (unsigned long long)wp.records);
	wal_pending_free(&wp);
}

int
verify_store(const struct config *cfg, FILE *out)
{
	struct verify v;
	char err[512];
	int rc;

	memset(&v, 0, sizeof(v));
	v.cfg = cfg;
	v.out = out;
	if (store_open(&v.st, cfg->data_dir, cfg->map_size_mb, true, err,
	    sizeof(err)) == -1) {
		fprintf(out, "verify: %s\n", err);
		return -1;
	}
	v.replayed = malloc(sizeof(*v.replayed));
	v.stored = malloc(sizeof(*v.stored));
	if (v.replayed == NULL || v.stored == NULL ||
	    mdb_txn_begin(v.st.env, NULL, MDB_RDONLY, &v.txn) != 0) {
		fprintf(out, "verify: cannot read the store\n");
		rc = -1;
		goto out;
	}
	if ((rc = verify_key_order(&v)) == 0 &&
	    (rc = verify_participants(&v)) == 0 &&
	    (rc = verify_dedup(&v)) == 0)
		rc = verify_alerts(&v);
	/* Every key belongs to the one participant record that names it. */
	if (rc == 0 && store_count(v.txn, v.st.deadlines) != v.keyed) {
		char detail[200];

		snprintf(detail, sizeof(detail), "%llu deadline keys for %llu "
		    "participants that have one", (unsigned long long)
		    store_count(v.txn, v.st.deadlines), (unsigned long long)v.keyed);
		verify_difference(&v, "deadlines", detail);
	}
	/* What health reports, against the records counted. */
	if (rc == 0 && participants_count(v.txn, &v.st) != v.participants) {
		char detail[200];

		snprintf(detail, sizeof(detail), "meta counts %llu participants, "
		    "the table holds %llu", (unsigned long long)
		    participants_count(v.txn, &v.st),
		    (unsigned long long)v.participants);
		verify_difference(&v, "participants", detail);
	}
	if (rc != 0) {
		fprintf(out, "verify: storage error: %s\n", mdb_strerror(rc));
		rc = -1;
		goto out;
	}
	fprintf(out, "verify: %llu events, %llu participants, %llu log entries, "
	    "%llu differences\n", (unsigned long long)v.events,
	    (unsigned long long)v.participants,
	    (unsigned long long)store_count(v.txn, v.st.log),
	    (unsigned long long)v.differences);
	report_pending(&v, out);
	rc = v.differences == 0 ? 0 : 1;
out:
	if (v.txn != NULL)
		mdb_txn_abort(v.txn);
	free(v.replayed);
	free(v.stored);
	store_close(&v.st);
	return rc;
}
