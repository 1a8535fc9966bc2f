/*
 * A participant as the queries show it (participant_view.h).  The stored
 * form (pathway_codec.c) is compact and positional, and keeps a referral
 * "requested" past its expiry, since expiry is derived from the time; a
 * person reading a file needs names, and the state as it is now.
 */
#include <string.h>

#include "codec.h"
#include "participant_view.h"
#include "relaisd.h"

int
participant_open_alerts(struct broker *b, MDB_txn *txn, const char *p,
    struct alert out[RULE__COUNT])
{
	size_t plen = strlen(p);
	char key[PW_ID_SIZE + 2], k8[8];
	int n = 0;

	if (plen == 0 || plen >= PW_ID_SIZE)
		return 0;
	memcpy(key, p, plen);
	key[plen] = '\0';
	for (int r = 0; r < RULE__COUNT; r++) {
		MDB_val k = { 8, k8 }, v;
		uint64_t seq;

		key[plen + 1] = (char)r;
		if (store_get_u64(txn, b->st.alert_open, key, plen + 2, &seq) != 0)
			return -1;
		if (seq == 0)
			continue;
		store_put_be64(k8, seq);
		if (mdb_get(txn, b->st.alerts, &k, &v) != 0 ||
		    alert_unpack(v.mv_data, v.mv_size, &out[n]) != RL_OK)
			return -1;
		n++;
	}
	return n;
}

static void
pack_referrals(const struct pathway *pw, const struct rule_config *rules,
    int64_t now, msgpack_packer *pk)
{
	const struct rule_config *exp = &rules[RULE_REFERRAL_EXPIRED];

	codec_pack_str(pk, "referrals");
	msgpack_pack_array(pk, (size_t)pw->nreferrals);
	for (int i = 0; i < pw->nreferrals; i++) {
		const struct pw_referral *r = &pw->referrals[i];
		bool waits = r->state == PW_REF_REQUESTED && exp->enabled;

		msgpack_pack_map(pk, 7);
		codec_pack_kv_str(pk, "id", r->id);
		codec_pack_kv_str(pk, "from", r->from);
		codec_pack_kv_str(pk, "to", r->to);
		codec_pack_kv_str(pk, "state", pw_referral_state_name(
		    pathway_referral_state(r, rules, now)));
		codec_pack_kv_i64(pk, "sent_at", r->sent_at);
		codec_pack_kv_i64(pk, "answered_at", r->answered_at);
		/* When an unanswered referral expires (or expired); else 0. */
		codec_pack_kv_i64(pk, "expires_at", waits ? r->sent_at +
		    (int64_t)exp->threshold * PW_DAY_MS : 0);
	}
}

static void
pack_people(const struct pathway *pw, msgpack_packer *pk)
{
	codec_pack_str(pk, "referents");
	msgpack_pack_array(pk, (size_t)pw->nreferents);
	for (int i = 0; i < pw->nreferents; i++) {
		msgpack_pack_map(pk, 2);
		codec_pack_kv_str(pk, "agent", pw->referents[i].id);
		codec_pack_kv_i64(pk, "since", pw->referents[i].since);
	}
	codec_pack_str(pk, "barriers");
	msgpack_pack_array(pk, (size_t)pw->nbarriers);
	for (int i = 0; i < pw->nbarriers; i++) {
		const struct pw_barrier *br = &pw->barriers[i];

		msgpack_pack_map(pk, 4);
		codec_pack_kv_str(pk, "code", br->code);
		codec_pack_kv_str(pk, "state", pw_barrier_state_name(br->state));
		codec_pack_kv_i64(pk, "identified_at", br->identified_at);
		codec_pack_kv_i64(pk, "lifted_at", br->lifted_at);
	}
	codec_pack_str(pk, "appointments");
	msgpack_pack_array(pk, (size_t)pw->nappointments);
	for (int i = 0; i < pw->nappointments; i++) {
		const struct pw_appointment *ap = &pw->appointments[i];

		msgpack_pack_map(pk, 3);
		codec_pack_kv_str(pk, "id", ap->id);
		codec_pack_kv_i64(pk, "at", ap->at);
		codec_pack_kv_str(pk, "state", pw_appointment_state_name(ap->state));
	}
}

static void
pack_outcomes(const struct pathway *pw, msgpack_packer *pk)
{
	const struct pw_employment *e = &pw->employment;
	const struct pw_confidence *k = &pw->confidence;

	codec_pack_str(pk, "enrollments");
	msgpack_pack_array(pk, (size_t)pw->nenrollments);
	for (int i = 0; i < pw->nenrollments; i++) {
		msgpack_pack_map(pk, 3);
		codec_pack_kv_str(pk, "scheme", pw->enrollments[i].scheme);
		codec_pack_kv_i64(pk, "first_at", pw->enrollments[i].first_at);
		codec_pack_kv_u64(pk, "count", pw->enrollments[i].count);
	}
	codec_pack_str(pk, "employment");
	if (e->contract[0] == '\0') {
		msgpack_pack_nil(pk);
	} else {
		msgpack_pack_map(pk, 4);
		codec_pack_kv_str(pk, "contract", e->contract);
		codec_pack_kv_str(pk, "by", e->by);
		codec_pack_kv_i64(pk, "started_at", e->started_at);
		codec_pack_kv_i64(pk, "ends_on", e->ends_on);
	}
	codec_pack_str(pk, "confidence");
	if (k->first == 0) {
		msgpack_pack_nil(pk);
	} else {
		msgpack_pack_map(pk, 4);
		codec_pack_kv_i64(pk, "first", k->first);
		codec_pack_kv_i64(pk, "first_at", k->first_at);
		codec_pack_kv_i64(pk, "last", k->last);
		codec_pack_kv_i64(pk, "last_at", k->last_at);
	}
}

void
participant_view_pack(struct broker *b, MDB_txn *txn, const struct pathway *pw,
    int64_t now, msgpack_packer *pk)
{
	struct alert open[RULE__COUNT];
	int nopen = participant_open_alerts(b, txn, pw->participant, open);

	msgpack_pack_map(pk, 17);
	codec_pack_kv_str(pk, "participant", pw->participant);
	codec_pack_kv_str(pk, "qpv", pw->qpv);
	codec_pack_kv_str(pk, "phase", pw_phase_name(pw->phase));
	codec_pack_kv_i64(pk, "opened_at", pw->opened_at);
	codec_pack_kv_i64(pk, "identified_at", pw->identified_at);
	codec_pack_kv_str(pk, "identified_by", pw->identified_by);
	codec_pack_kv_i64(pk, "last_activity", pw->last_activity);
	codec_pack_kv_i64(pk, "exited_at", pw->exited_at);
	codec_pack_kv_str(pk, "exit_reason", pw->exit_reason);
	pack_referrals(pw, b->cfg->rules, now, pk);
	pack_people(pw, pk);
	pack_outcomes(pw, pk);
	codec_pack_str(pk, "open_alerts");
	msgpack_pack_array(pk, nopen > 0 ? (size_t)nopen : 0);
	for (int i = 0; i < nopen; i++)
		alert_pack(pk, &open[i], NULL);
}
