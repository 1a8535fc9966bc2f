/*
 * Right to erasure and retention (SPEC §6, RGPD): remove everything that
 * ties data to a person, keep only anonymous counts.
 *
 * A coordinator's participant.erased, or the retention deadline (no
 * activity for retention_days), erases a participant in one transaction:
 *   - every log record of theirs is rewritten without the participant id,
 *     ids, free text and dates: what remains (type, times, sender, codes
 *     such as barrier or scheme, QPV) still counts for the indicators;
 *   - the pathway (with their referrals), the timeline, the deadlines and
 *     what the indicators kept to count the person once go (the counts
 *     themselves stay as they are);
 *   - their alerts are resolved if open, and lose the participant id.
 *     That, and their deadline, is alerts.c's part: it removes them, then
 *     calls erase_participant() (alerts_erase_participant()), so that this
 *     file needs nothing from alerts.c.
 * Deduplication records stay, so a partner resending an old event gets
 * its original acknowledgement and cannot bring the data back.
 *   - queued deliveries and dead letters that carry their own copy of
 *     data about the person (alerts) are rewritten without it (queued.c);
 *     those that deliver an event deliver the rewritten log record.
 */
#include <string.h>

#include "alert.h"
#include "codec.h"
#include "log.h"
#include "relaisd.h"

/* Fields of a log record that identify no one. */
static const char *const kept_fields[] = {
	"type", "occurred_at", "sender", "sender_kind", "recorded_at", "log_seq",
	"qpv",
	"place", "contacts", "age_band", "source", "channel", "barrier", "to",
	"outcome", "scheme", "contract", "score", "excused",
};

static bool
kept(const msgpack_object *key, const msgpack_object *type)
{
	for (size_t i = 0; i < sizeof(kept_fields) / sizeof(kept_fields[0]); i++)
		if (codec_str_eq(key, kept_fields[i]))
			return true;
	/* A decline's or an exit's reason is a code; a cancellation's is text. */
	return codec_str_eq(key, "reason") && type != NULL &&
	    (codec_str_eq(type, "referral.declined") ||
	    codec_str_eq(type, "participant.exited"));
}

/* Pack an anonymous copy of a record (a msgpack map) into sb. */
int
erase_record(const char *buf, size_t len, msgpack_sbuffer *sb)
{
	msgpack_unpacked up;
	msgpack_packer pk;
	const msgpack_object *root, *type;
	uint32_t n = 0;

	if ((root = codec_unpack_map(&up, buf, len)) == NULL) {
		msgpack_unpacked_destroy(&up);
		return -1;
	}
	type = codec_map_get(root, "type");
	for (uint32_t i = 0; i < root->via.map.size; i++)
		n += kept(&root->via.map.ptr[i].key, type);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n + 1);
	for (uint32_t i = 0; i < root->via.map.size; i++) {
		const msgpack_object_kv *kv = &root->via.map.ptr[i];

		if (kept(&kv->key, type)) {
			msgpack_pack_object(&pk, kv->key);
			msgpack_pack_object(&pk, kv->val);
		}
	}
	codec_pack_str(&pk, "erased");
	msgpack_pack_true(&pk);
	msgpack_unpacked_destroy(&up);
	return 0;
}

static int
erase_log(struct broker *b, MDB_txn *txn, const char *p, size_t plen,
    uint64_t *nevents)
{
	char key[RL_MAX_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	msgpack_sbuffer sb;
	int rc;

	if ((rc = mdb_cursor_open(txn, b->st.participants, &cur)) != 0)
		return rc;
	msgpack_sbuffer_init(&sb);
	k.mv_size = store_key_seq(key, p, plen, 0);
	k.mv_data = key;
	/* After mdb_cursor_del, MDB_NEXT moves to the key that followed. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char lkey[8];
		MDB_val lk = { 8, lkey }, lv;

		if (k.mv_size != plen + 9 || memcmp(k.mv_data, key, plen + 1) != 0)
			break;
		memcpy(lkey, (char *)k.mv_data + plen + 1, 8);
		if ((rc = store_cursor_del(&b->st, cur)) != 0)
			break;
		if ((rc = mdb_get(txn, b->st.log, &lk, &lv)) == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			break;
		msgpack_sbuffer_clear(&sb);
		if (erase_record(lv.mv_data, lv.mv_size, &sb) == -1) {
			rc = MDB_CORRUPTED;
			break;
		}
		lv.mv_size = sb.size;
		lv.mv_data = sb.data;
		if ((rc = store_put(&b->st, txn, b->st.log, &lk, &lv, 0)) != 0)
			break;
		/* A copy of the record as it was must not be delivered. */
		passlog_clear(b->tx.passlog);
		(*nevents)++;
	}
	msgpack_sbuffer_destroy(&sb);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
erase_pathway(struct broker *b, MDB_txn *txn, struct participant *pt)
{
	const char *p = pt->pw.participant;
	MDB_val k = { strlen(p), (void *)p };
	int rc;

	rc = store_del(&b->st, txn, b->st.participants, &k);
	if (rc == 0)
		rc = participants_count_add(&b->st, txn, -1);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
erase_participant(struct broker *b, MDB_txn *txn, struct participant *pt,
    const char *by, int64_t now)
{
	const struct pathway *pw = &pt->pw;
	uint64_t nevents = 0, nitems = 0;
	int rc;

	if ((rc = erase_log(b, txn, pw->participant, strlen(pw->participant),
	    &nevents)) != 0 ||
	    (rc = erase_pathway(b, txn, pt)) != 0 ||
	    (rc = indicators_forget(b, txn, pw->participant)) != 0 ||
	    (rc = queued_scrub(b, txn, pw->participant, &nitems)) != 0)
		return rc;
	log_info("participant.erased", "by", LOG_STR(by),
	    "events", LOG_U64(nevents), "queued", LOG_U64(nitems), NULL);
	return 0;
}
