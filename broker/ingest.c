/*
 * One event, inside the pass's write transaction: validate it field by
 * field, check who sent it, deduplicate, apply it to the participant's
 * pathway, record it in the log and put the deliveries it causes in the
 * recipients' mailboxes.  All of it commits together or not at all.
 *
 * The order matters: the event_id is claimed first, in the lookup that
 * checks it (one B-tree descent instead of a read and a write), and given
 * back if the event is refused; every other check comes before the first
 * write.  So a refused event changes nothing even though it shares its
 * transaction with accepted ones.
 */
#include <string.h>
#include <sodium.h>

#include "access.h"
#include "log.h"
#include "pathway.h"
#include "record.h"
#include "relaisd.h"

static int
refuse_sender(const struct agent *sender, const struct rl_event *ev,
    struct rl_error *err)
{
	enum ev_sender_rule rule = ev_type_sender_rule(ev->type);

	if (sender->kind == AK_OPERATOR)
		return rl_error_set(err, RL_E_FORBIDDEN, "type",
		    "operators see counts only and may not send events");
	if (rule == EV_COORDINATOR && sender->kind != AK_COORDINATOR)
		return rl_error_set(err, RL_E_FORBIDDEN, "type",
		    "only coordinators may send %s", ev_type_name(ev->type));
	return RL_OK;
}

/*
 * event_id \0 sender: ids that grow with time put a pass's records on the
 * table's last pages (store.h).  An event_id has no \0, so the same id
 * from two agents makes two keys.
 */
static size_t
dedup_key(char *buf, const struct agent *sender, const struct rl_event *ev)
{
	size_t alen = strlen(sender->id);

	memcpy(buf, ev->event_id.p, ev->event_id.len);
	buf[ev->event_id.len] = '\0';
	memcpy(buf + ev->event_id.len + 1, sender->id, alen);
	return alen + 1 + ev->event_id.len;
}

/*
 * The fingerprint of an event's canonical encoding in its dedup record:
 * SipHash-128 (libsodium's siphashx24), about three times cheaper than
 * BLAKE2b-128 on an event, and it runs for every event.  The key is fixed:
 * the fingerprint tells two contents apart, it authenticates nothing (and
 * only a sender could try to make two of its own events collide, to lose
 * the second).
 */
static const unsigned char fingerprint_key[crypto_shorthash_siphashx24_KEYBYTES] =
    "relais dedup v1";

static void
fingerprint(const char *canon, size_t len, unsigned char out[16])
{
	crypto_shorthash_siphashx24(out, (const unsigned char *)canon, len,
	    fingerprint_key);
}

/*
 * Whether a dedup record was made from this content.  Records written by
 * earlier versions hold BLAKE2b-128 instead: on the rare mismatch that one
 * is computed too, so an old event sent again is still a duplicate, and
 * other content under its id still a conflict.
 */
static bool
same_content(const struct dedup_rec *dr, const unsigned char hash[16],
    const char *canon, size_t len)
{
	unsigned char old[16];

	if (memcmp(dr->hash, hash, 16) == 0)
		return true;
	crypto_generichash(old, sizeof(old), (const unsigned char *)canon, len,
	    NULL, 0);
	return memcmp(dr->hash, old, sizeof(old)) == 0;
}


/*
 * A referral goes to a registered partner other than its sender: never to
 * a coordinator or an operator, who take no referrals (SPEC 2.2).
 */
static int
check_target(struct broker *b, const struct agent *sender,
    const struct rl_event *ev, struct rl_error *err)
{
	char to[RL_MAX_AGENT_ID_BYTES + 1];
	const struct agent *a;

	memcpy(to, ev->to.p, ev->to.len);
	to[ev->to.len] = '\0';
	if ((a = config_agent_by_id(b->cfg, to)) == NULL)
		return rl_error_set(err, RL_E_UNKNOWN_AGENT, "to",
		    "no agent %s is registered", to);
	if (a == sender)
		return rl_error_set(err, RL_E_FORBIDDEN, "to",
		    "a referral goes to another partner, not to its sender");
	if (a->kind == AK_COORDINATOR || a->kind == AK_OPERATOR)
		return rl_error_set(err, RL_E_FORBIDDEN, "to",
		    "%s is a %s: referrals go to partners, never to a "
		    "coordinator or an operator", to, agent_kind_name(a->kind));
	return RL_OK;
}

/*
 * The referral, checked before the participant (PROTOCOL.md's order): a
 * referral id is used once among its participant's referrals, and an
 * answer must name a referral of the participant it names.  The referrals
 * are in the participant's pathway, which the event loads anyway (and
 * keeps, for change_state, in the pass's cache); the target of a new
 * referral must be a registered partner, which a pathway cannot check.
 */
static int
check_referral(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, struct rl_error *err)
{
	struct participant *pt = NULL;
	bool known;
	int rc;

	if (!event_has(ev, EF_REFERRAL))
		return RL_OK;
	rc = participants_load(b, txn, ev->participant.p, ev->participant.len,
	    false, &pt);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_error(&b->st, err, rc);
	known = pt != NULL &&
	    pathway_find_referral(&pt->pw, ev->referral) != NULL;
	if (ev->type == EV_REFERRAL_SENT && known)
		return rl_error_set(err, RL_E_REFERRAL_EXISTS, "referral",
		    "referral %.*s already exists for this participant; choose "
		    "a new id", (int)ev->referral.len, ev->referral.p);
	if (ev->type == EV_REFERRAL_SENT)
		return check_target(b, sender, ev, err);
	if (!known)
		return rl_error_set(err, RL_E_UNKNOWN_REFERRAL, "referral",
		    "no referral %.*s exists for this participant",
		    (int)ev->referral.len, ev->referral.p);
	return RL_OK;
}

/* The writes, once every check has passed. */
static int
record_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, const struct pw_effects *fx, int64_t now,
    uint64_t *seq)
{
	char key[RL_MAX_AGENT_ID_BYTES + 1 + RL_MAX_ID_BYTES + 9];
	msgpack_sbuffer *sb = &b->pass.record;
	MDB_val k, v;
	int rc;

	/*
	 * The log's next seq comes from memory (loaded from the log's last
	 * key at start-up and after an aborted transaction): no read here.
	 */
	*seq = ++b->tx.log_seq;
	b->tx.counters_dirty = true;
	msgpack_sbuffer_clear(sb);
	/* b->pass.canon still holds this event's canonical encoding (ingest_event). */
	if (record_pack(sb, b->pass.canon.data, b->pass.canon.size, sender->id,
	    agent_kind_name(sender->kind), now,
	    *seq) != 0)
		return ENOMEM;
	if (ev->type == EV_PARTICIPANT_ERASED) {
		/* The erasure itself must not keep the id it erases. */
		msgpack_sbuffer_clear(&b->pass.scratch);
		if (erase_record(sb->data, sb->size, &b->pass.scratch) == -1)
			return MDB_CORRUPTED;
		msgpack_sbuffer_clear(sb);
		msgpack_sbuffer_write(sb, b->pass.scratch.data, b->pass.scratch.size);
	}

	store_put_be64(key, *seq);
	k.mv_size = 8;
	k.mv_data = key;
	v.mv_size = sb->size;
	v.mv_data = sb->data;
	/* Log keys only grow: MDB_APPEND keeps the log's pages packed. */
	if ((rc = store_put(&b->st, txn, b->st.log, &k, &v, MDB_APPEND)) != 0)
		return rc;
	/* What it delivers is sent from this copy after the commit. */
	if (fx != NULL && fx->ndeliver > 0)
		passlog_add(b->tx.passlog, *seq, sb->data, sb->size);

	if (event_has(ev, EF_PARTICIPANT) && ev->type != EV_PARTICIPANT_ERASED) {
		k.mv_size = store_key_seq(key, ev->participant.p,
		    ev->participant.len, *seq);
		k.mv_data = key;
		v.mv_size = 0;
		v.mv_data = "";
		if ((rc = store_put(&b->st, txn, b->st.participants, &k, &v, 0)) != 0)
			return rc;
	}
	for (int i = 0; fx != NULL && i < fx->ndeliver; i++) {
		struct session *to = sessions_find(b, fx->deliver_to[i]);

		/*
		 * A referral's other party may have left the registry since;
		 * the event stands, there is just nobody to deliver it to.
		 */
		if (to == NULL) {
			log_warn("delivery.no_recipient", "agent",
			    LOG_STR(fx->deliver_to[i]), "log_seq", LOG_U64(*seq),
			    "hint", LOG_STR("the agent is no longer in the "
			    "registry; its mailbox keeps nothing new"), NULL);
			continue;
		}
		if ((rc = mailbox_append_event(b, txn, to, *seq)) != 0)
			return rc;
	}
	return 0;
}

/*
 * A coordinator exits or erases only a person of its territory (SPEC 2.5;
 * alerts_event checks acknowledgements and resolutions the same way).
 * Checked here, not in pathway_apply: the territory is the registry's of
 * today, and --verify must replay what was accepted whatever it is now.
 */
static int
check_territory(const struct agent *sender, const struct rl_event *ev,
    const struct pathway *pw, struct rl_error *err)
{
	if (sender->kind != AK_COORDINATOR ||
	    (ev->type != EV_PARTICIPANT_EXITED && ev->type != EV_PARTICIPANT_ERASED) ||
	    access_covers(sender, pw))
		return RL_OK;
	return rl_error_set(err, RL_E_FORBIDDEN, "participant",
	    "this participant is outside your territory: their QPV is not "
	    "among the QPVs your [agent] section covers");
}

/* The event's effects, once the bus-wide checks have passed. */
static int
change_state(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, int64_t now, struct ingest_result *res,
    struct rl_error *err)
{
	struct pw_effects fx;
	struct pw_actor actor = { sender->id, sender->kind };
	struct participant *pt = NULL;
	int64_t at = ev->occurred_at < now ? ev->occurred_at : now;
	int code, rc;

	memset(&fx, 0, sizeof(fx));
	switch (ev->type) {
	case EV_ALERT_ACKNOWLEDGED:
	case EV_ALERT_RESOLVED:
		if ((code = alerts_event(b, txn, sender, ev, now, err)) != RL_OK)
			return code;
		break;
	case EV_OUTREACH_INTERVENTION:
		break;
	case EV_PARTICIPANT_ERASED:
		rc = participants_load(b, txn, ev->participant.p,
		    ev->participant.len, false, &pt);
		if (rc == MDB_NOTFOUND)
			return rl_error_set(err, RL_E_UNKNOWN_PARTICIPANT,
			    "participant", "no pathway exists for this "
			    "participant (already erased?)");
		if (rc != 0)
			return store_error(&b->st, err, rc);
		if ((code = check_territory(sender, ev, &pt->pw, err)) != RL_OK)
			return code;
		rc = alerts_erase_participant(b, txn, pt, sender->id, now);
		participants_forget(pt);
		pt = NULL;
		if (rc != 0)
			return store_error(&b->st, err, rc);
		break;
	default:
		if ((rc = participants_load(b, txn, ev->participant.p,
		    ev->participant.len, true, &pt)) != 0)
			return store_error(&b->st, err, rc);
		if ((code = check_territory(sender, ev, &pt->pw, err)) != RL_OK ||
		    (code = participants_apply(b, pt, ev, &actor, at, &fx, err)) != RL_OK)
			return code;
		break;
	}

	if ((rc = record_event(b, txn, sender, ev, &fx, now, &res->seq)) != 0)
		return store_error(&b->st, err, rc);
	if (pt != NULL && (rc = alerts_after_event(b, txn, pt, now)) != 0)
		return store_error(&b->st, err, rc);
	if ((rc = indicators_event(b, txn, sender, ev, pt != NULL ? &pt->pw : NULL,
	    at, res->seq)) != 0)
		return store_error(&b->st, err, rc);
	res->recorded_at = now;
	log_info("event.accepted", "agent", LOG_STR(sender->id),
	    "type", LOG_STR(ev_type_name(ev->type)), "seq", LOG_U64(res->seq), NULL);
	for (int i = 0; i < fx.ndeliver; i++)
		log_info("delivery.queued", "agent", LOG_STR(fx.deliver_to[i]),
		    "log_seq", LOG_U64(res->seq), NULL);
	return RL_OK;
}

static bool
is_refusal(int code)
{
	return code != RL_OK && code != RL_E_STORAGE && code != RL_E_STORAGE_FULL;
}

/* Everything after the claim of the event_id: check, apply, record, route. */
static int
apply_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, int64_t now, struct ingest_result *res,
    struct rl_error *err)
{
	int code;

	/* A typo in a QPV would hide the person from their coordinator. */
	if (event_has(ev, EF_QPV) &&
	    !config_qpv_known(b->cfg, ev->qpv.p, ev->qpv.len))
		return rl_error_set(err, RL_E_BAD_FIELD, "qpv",
		    "%.*s is not one of the territory's QPVs (the [qpv] list "
		    "of the broker's config)", (int)ev->qpv.len, ev->qpv.p);
	if ((code = check_referral(b, txn, sender, ev, err)) != RL_OK)
		return code;
	return change_state(b, txn, sender, ev, now, res, err);
}

int
ingest_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const msgpack_object *obj, int64_t now, struct ingest_result *res,
    struct rl_error *err)
{
	struct rl_event ev;
	struct dedup_rec dr;
	char key[RL_MAX_ID_BYTES + 1 + RL_MAX_AGENT_ID_BYTES];
	unsigned char hash[16];
	size_t dedup_len;
	msgpack_sbuffer *canon = &b->pass.canon;
	msgpack_packer pk;
	MDB_val k, v;
	int code, rc = 0;

	memset(res, 0, sizeof(*res));
	/*
	 * Size first, on the event as sent: an oversized event is
	 * event_too_large whatever else is wrong with it.
	 */
	msgpack_sbuffer_clear(canon);
	msgpack_packer_init(&pk, canon, msgpack_sbuffer_write);
	if (msgpack_pack_object(&pk, *obj) != 0 || canon->size > RL_MAX_EVENT_BYTES)
		return rl_error_set(err, RL_E_EVENT_TOO_LARGE, "",
		    "the event is %zu bytes; at most %d are allowed",
		    canon->size, RL_MAX_EVENT_BYTES);
	if ((code = event_parse(obj, &ev, err)) != RL_OK)
		return code;
	if ((code = refuse_sender(sender, &ev, err)) != RL_OK)
		return code;

	/* Deduplication compares the canonical encoding's fingerprint. */
	msgpack_sbuffer_clear(canon);
	msgpack_packer_init(&pk, canon, msgpack_sbuffer_write);
	event_pack(&ev, &pk);
	if (canon->size > RL_MAX_EVENT_BYTES)
		return rl_error_set(err, RL_E_EVENT_TOO_LARGE, "",
		    "the event is %zu bytes; at most %d are allowed",
		    canon->size, RL_MAX_EVENT_BYTES);
	/* Without the sealed contact's bytes, which differ at each sealing. */
	dedup_len = event_dedup_len(&ev, canon->size);
	fingerprint(canon->data, dedup_len, hash);

	/*
	 * Claim the event_id with the record it will have: one lookup that
	 * inserts when the id is new and returns the original otherwise.  The
	 * seq is the log's next, which only record_event() takes.  A refusal
	 * from here on gives the claim back, at the end of this function.
	 */
	memset(&dr, 0, sizeof(dr));
	dr.seq = b->tx.log_seq + 1;
	dr.recorded_at = now;
	memcpy(dr.hash, hash, sizeof(dr.hash));
	k.mv_size = dedup_key(key, sender, &ev);
	k.mv_data = key;
	v.mv_size = sizeof(dr);
	v.mv_data = &dr;
	rc = store_put(&b->st, txn, b->st.dedup, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		if (v.mv_size != sizeof(dr))
			return store_error(&b->st, err, MDB_CORRUPTED);
		memcpy(&dr, v.mv_data, sizeof(dr));
		if (!same_content(&dr, hash, canon->data, dedup_len))
			return rl_error_set(err, RL_E_CONFLICT, "event_id",
			    "event_id %.*s was already used for another event; "
			    "use a new event_id", (int)ev.event_id.len,
			    ev.event_id.p);
		res->duplicate = true;
		res->seq = dr.seq;
		res->recorded_at = dr.recorded_at;
		log_info("event.duplicate", "agent", LOG_STR(sender->id),
		    "seq", LOG_U64(dr.seq), NULL);
		return RL_OK;
	}
	if (rc != 0)
		return store_error(&b->st, err, rc);

	code = apply_event(b, txn, sender, &ev, now, res, err);
	if (code == RL_OK && res->seq != dr.seq)
		return store_error(&b->st, err, MDB_CORRUPTED);  /* the claim named another seq */
	/* k still names the claim: key[] has not changed since. */
	if (is_refusal(code) && (rc = store_del(&b->st, txn, b->st.dedup, &k)) != 0)
		return store_error(&b->st, err, rc);
	return code;
}

