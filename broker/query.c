/*
 * Read-only queries (cmd "query"), each with its own authorisation:
 *
 *   health       anyone: counters and backlogs, never participant data
 *   alerts       coordinators: alerts of their territory (query_views.c)
 *   participants coordinators: the people of their QPVs (query_views.c)
 *   inbox        partners: what awaits them (query_views.c)
 *   participant  whoever access_read() lets read the person's file
 *                (SPEC 2.5): the pathway and its timeline
 *   clock        operators, only with manual_clock: move the clock forward
 *   report       the indicators (report.c)
 *   deadletters  operators: list, requeue, drop dead letters (deadletters.c)
 *   agent        anyone: an agent's public key and name (query_agent.c)
 */
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "alert.h"
#include "flow.h"
#include "log.h"
#include "participant_view.h"
#include "query_views.h"
#include "record.h"
#include "relaisd.h"

#define TIMELINE_MAX 1000          /* records in one page of a timeline */
/* A result's envelope (ref, what, data) and the participant's keys. */
#define REPLY_HEAD_MAX 128

static void
begin_result(msgpack_packer *pk, const struct rl_request *req, const char *what)
{
	codec_begin_reply(pk, "result", 2 + req->has_ref);
	if (req->has_ref)
		codec_pack_kv_u64(pk, "ref", req->ref);
	codec_pack_kv_str(pk, "what", what);
	codec_pack_str(pk, "data");
}

static void
refuse(msgpack_packer *pk, const struct rl_request *req, int code,
    const char *field, const char *msg)
{
	struct rl_error err;

	rl_error_set(&err, code, field, "%s", msg);
	codec_pack_error(pk, &err, req->has_ref, req->ref);
}

static void
query_health(struct broker *b, MDB_txn *txn, const struct rl_request *req,
    msgpack_packer *pk)
{
	begin_result(pk, req, "health");
	msgpack_pack_map(pk, 17);
	codec_pack_kv_str(pk, "status", "ok");
	codec_pack_kv_i64(pk, "time", clock_now(&b->clock));
	codec_pack_kv_u64(pk, "events", store_count(txn, b->st.log));
	codec_pack_kv_u64(pk, "participants", participants_count(txn, &b->st));
	codec_pack_kv_u64(pk, "open_alerts", store_count(txn, b->st.alert_open));
	codec_pack_kv_u64(pk, "deadlines", store_count(txn, b->st.deadlines));
	codec_pack_kv_u64(pk, "dead_letters", store_count(txn, b->st.dead));
	codec_pack_kv_u64(pk, "accepted", b->counters.accepted);
	codec_pack_kv_u64(pk, "refused", b->counters.refused);
	/* What connections cost the broker's memory (flow.h). */
	codec_pack_kv_u64(pk, "connections", flow_connections(&b->peers.flow));
	codec_pack_kv_u64(pk, "replies_waiting", b->peers.flow.queued);
	codec_pack_kv_u64(pk, "not_reading", b->peers.flow.refused);
	codec_pack_kv_i64(pk, "last_sweep_us", b->sweep.last_us);
	codec_pack_kv_i64(pk, "max_sweep_us", b->sweep.max_us);
	codec_pack_kv_i64(pk, "last_sweep_scan_us", b->sweep.last_scan_us);
	codec_pack_kv_u64(pk, "last_sweep_due", b->sweep.last_due);
	codec_pack_str(pk, "agents");
	msgpack_pack_array(pk, b->peers.nsessions);
	for (size_t i = 0; i < b->peers.nsessions; i++) {
		struct session *s = &b->peers.sessions[i];
		const char *id = s->agent->id;

		msgpack_pack_map(pk, 6);
		codec_pack_kv_str(pk, "id", id);
		/* Deliveries can go: a connection that said hello is live. */
		codec_pack_str(pk, "online");
		if (s->to != NULL)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		codec_pack_kv_u64(pk, "backlog", mailbox_backlog(b, txn, s));
		codec_pack_kv_u64(pk, "inflight", s->inflight);
		codec_pack_str(pk, "silent");
		if (s->silent)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		codec_pack_kv_u64(pk, "overflowed", s->overflowed);
	}
}

/* Is the string key k one of names (NULL-ended)?  Its index, or -1. */
static int
key_index(const msgpack_object *k, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strlen(names[i]) == k->via.str.size &&
		    memcmp(names[i], k->via.str.ptr, k->via.str.size) == 0)
			return i;
	return -1;
}

/*
 * Query args are checked like every other map, key by key in the order
 * sent: a key that is not a string is bad_field on "args", a key the query
 * does not define is unknown_field, so "stauts" is told, not ignored, and
 * a key given twice is bad_field (which one would count?).  false, with
 * the refusal packed, if one is.
 */
static bool
args_known(const struct rl_request *req, msgpack_packer *pk,
    const char *const *keys)
{
	const msgpack_object *a = req->args;
	uint64_t seen = 0;
	char msg[160];

	if (a == NULL)
		return true;
	for (uint32_t i = 0; i < a->via.map.size; i++) {
		const msgpack_object *k = &a->via.map.ptr[i].key;
		int known;

		if (k->type != MSGPACK_OBJECT_STR) {
			refuse(pk, req, RL_E_BAD_FIELD, "args",
			    "args keys are strings");
			return false;
		}
		known = key_index(k, keys);
		if (known >= 0 && (seen & (UINT64_C(1) << known))) {
			snprintf(msg, sizeof(msg), "args.%s appears more than "
			    "once; give each argument once", keys[known]);
			refuse(pk, req, RL_E_BAD_FIELD, keys[known], msg);
			return false;
		}
		if (known >= 0)
			seen |= UINT64_C(1) << known;
		if (known < 0) {
			char field[65];

			snprintf(field, sizeof(field), "%.*s",
			    (int)(k->via.str.size < 64 ? k->via.str.size : 64),
			    k->via.str.ptr);
			snprintf(msg, sizeof(msg), "this query takes no args.%s%s%s",
			    field, *keys != NULL ? "; it takes: " : "",
			    *keys != NULL ? keys[0] : "");
			refuse(pk, req, RL_E_UNKNOWN_FIELD, field, msg);
			return false;
		}
	}
	return true;
}

static bool
arg_str(const struct rl_request *req, const char *key, struct rl_str *out)
{
	const msgpack_object *o = req->args != NULL ?
	    codec_map_get(req->args, key) : NULL;

	if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > RL_MAX_ID_BYTES)
		return false;
	out->p = o->via.str.ptr;
	out->len = o->via.str.size;
	return true;
}

/* An optional uint argument; false (and *out untouched) if absent. */
static bool
arg_uint(const struct rl_request *req, const char *key, uint64_t *out,
    bool *bad)
{
	const msgpack_object *o = req->args != NULL ?
	    codec_map_get(req->args, key) : NULL;

	*bad = o != NULL && o->type != MSGPACK_OBJECT_POSITIVE_INTEGER;
	if (o == NULL || *bad)
		return false;
	*out = o->via.u64;
	return true;
}

/*
 * One page of a person's timeline into sb, as msgpack records (a damaged
 * one as nil): those after log seq `after`, at most `limit`, and no more
 * than fit in `budget` bytes.  *n is how many; *more whether the timeline
 * goes on after them.
 */
static int
timeline_page(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_str *p, uint64_t after, uint64_t limit, size_t budget,
    msgpack_sbuffer *sb, uint32_t *n, bool *more)
{
	char key[RL_MAX_ID_BYTES + 9];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*n = 0;
	*more = false;
	if (after == UINT64_MAX)
		return 0;
	if ((rc = mdb_cursor_open(txn, b->st.participants, &cur)) != 0)
		return rc;
	k.mv_size = store_key_seq(key, p->p, p->len, after + 1);
	k.mv_data = key;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		MDB_val lk = { 8, (char *)k.mv_data + p->len + 1 }, lv;
		size_t before = sb->size;

		if (k.mv_size != p->len + 9 || memcmp(k.mv_data, p->p, p->len) != 0 ||
		    ((char *)k.mv_data)[p->len] != '\0')
			break;
		if (*n == limit) {
			*more = true;
			break;
		}
		/* A sealed contact goes to the referral's target only. */
		if (mdb_get(txn, b->st.log, &lk, &lv) != 0 ||
		    record_write_for(sb, lv.mv_data, lv.mv_size, who->id) != 0)
			msgpack_sbuffer_write(sb, "\xc0", 1);     /* nil */
		if (sb->size > budget && *n > 0) {
			sb->size = before;
			*more = true;
			break;
		}
		(*n)++;
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc;
}

static void
query_participant(struct broker *b, MDB_txn *txn, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	msgpack_sbuffer state, page;
	msgpack_packer sp;
	struct rl_str p;
	MDB_val k, v;
	const char *pwb;
	size_t pwlen;
	uint64_t after = 0, limit = TIMELINE_MAX;
	uint32_t n;
	bool found, bad, more;
	static struct pathway pw;   /* large: not on the loop's stack */
	struct rl_error err;

	if (!args_known(req, pk, (const char *const[]){ "id", "after", "limit",
	    NULL }))
		return;
	if (req->args == NULL || codec_map_get(req->args, "id") == NULL) {
		refuse(pk, req, RL_E_MISSING_FIELD, "id",
		    "give the participant's id in args.id");
		return;
	}
	if (!arg_str(req, "id", &p)) {
		refuse(pk, req, RL_E_BAD_FIELD, "id", "args.id is a participant "
		    "id: a string of 1 to 64 bytes");
		return;
	}
	if (!arg_uint(req, "after", &after, &bad) && bad) {
		refuse(pk, req, RL_E_BAD_FIELD, "after", "args.after is the "
		    "log_seq of the last timeline record you have: a whole number");
		return;
	}
	if ((arg_uint(req, "limit", &limit, &bad) &&
	    (limit < 1 || limit > TIMELINE_MAX)) || bad) {
		refuse(pk, req, RL_E_BAD_FIELD, "limit",
		    "limit must be from 1 to 1000");
		return;
	}
	k.mv_size = p.len;
	k.mv_data = (void *)p.p;
	found = mdb_get(txn, b->st.participants, &k, &v) == 0 &&
	    participants_stored(&v, NULL, &pwb, &pwlen) == 0;
	if (found && pathway_decode(pwb, pwlen, &pw, &err) != RL_OK) {
		refuse(pk, req, RL_E_STORAGE, "id", "this participant's record "
		    "cannot be read; ask the operator to run relaisd --verify");
		return;
	}
	/*
	 * Access before existence: to anyone who could not read the file,
	 * a person unknown to the bus and one they have no link with look
	 * the same, so guessing pseudonyms tells nothing.
	 */
	if (access_read(who, found ? &pw : NULL, b->cfg->rules,
	    clock_now(&b->clock)) == ACCESS_NONE) {
		refuse(pk, req, RL_E_FORBIDDEN, "id", "you have no link with this "
		    "participant: their file is read by the coordinators of "
		    "their QPV, their referents, the parties of their referrals "
		    "and the agent that identified them (SPEC 2.5)");
		return;
	}
	if (!found) {
		refuse(pk, req, RL_E_UNKNOWN_PARTICIPANT, "id",
		    "no pathway exists for this participant");
		return;
	}
	/*
	 * The page fills what the frame leaves after the state (less room for
	 * the reply's envelope, the array's head and "more"), so a file of
	 * any size is read, page by page.
	 */
	msgpack_sbuffer_init(&state);
	msgpack_sbuffer_init(&page);
	msgpack_packer_init(&sp, &state, msgpack_sbuffer_write);
	participant_view_pack(b, txn, &pw, clock_now(&b->clock), &sp);
	if (timeline_page(b, txn, who, &p, after, limit,
	    state.size + REPLY_HEAD_MAX < FLOW_OUT_MAX ?
	    FLOW_OUT_MAX - state.size - REPLY_HEAD_MAX : 0,
	    &page, &n, &more) != 0) {
		refuse(pk, req, RL_E_STORAGE, "id", "this participant's timeline "
		    "cannot be read; retry later, or ask the operator to run "
		    "relaisd --verify");
	} else {
		begin_result(pk, req, "participant");
		msgpack_pack_map(pk, 3);
		codec_pack_str(pk, "state");
		msgpack_sbuffer_write(pk->data, state.data, state.size);
		codec_pack_str(pk, "timeline");
		msgpack_pack_array(pk, n);
		msgpack_sbuffer_write(pk->data, page.data, page.size);
		codec_pack_str(pk, "more");
		if (more)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
	}
	msgpack_sbuffer_destroy(&state);
	msgpack_sbuffer_destroy(&page);
}

static void
query_clock(struct broker *b, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	const msgpack_object *o = req->args != NULL ?
	    codec_map_get(req->args, "advance_ms") : NULL;

	if (!b->clock.manual) {
		refuse(pk, req, RL_E_FORBIDDEN, "what", "the clock is the system's: "
		    "only a broker started with manual_clock = yes lets it move");
		return;
	}
	if (who->kind != AK_OPERATOR) {
		refuse(pk, req, RL_E_FORBIDDEN, "what", "only operators may move the clock");
		return;
	}
	if (!args_known(req, pk, (const char *const[]){ "advance_ms", NULL }))
		return;
	if (o != NULL && (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->via.u64 > (uint64_t)3650 * 86400000)) {
		refuse(pk, req, RL_E_BAD_FIELD, "advance_ms",
		    "advance_ms must be a whole number of ms, at most ten years");
		return;
	}
	if (o != NULL) {
		b->clock.offset_ms += (int64_t)o->via.u64;
		log_info("clock.advanced", "by", LOG_STR(who->id),
		    "advance_ms", LOG_U64(o->via.u64),
		    "offset_ms", LOG_I64(b->clock.offset_ms), NULL);
	}
	begin_result(pk, req, "clock");
	msgpack_pack_map(pk, 2);
	codec_pack_kv_i64(pk, "now", clock_now(&b->clock));
	codec_pack_kv_i64(pk, "offset_ms", b->clock.offset_ms);
}

/* For the queries that have a file of their own (report.c). */
void
query_begin_result(msgpack_packer *pk, const struct rl_request *req,
    const char *what)
{
	begin_result(pk, req, what);
}

bool
query_args_known(const struct rl_request *req, msgpack_packer *pk,
    const char *const *keys)
{
	return args_known(req, pk, keys);
}

void
query_refuse(msgpack_packer *pk, const struct rl_request *req, int code,
    const char *field, const char *msg)
{
	refuse(pk, req, code, field, msg);
}

void
query_handle(struct broker *b, const struct agent *who,
    const struct rl_request *req, msgpack_packer *pk)
{
	MDB_txn *txn;
	const struct rl_str *w = &req->what;

	if (w->len == 5 && memcmp(w->p, "clock", 5) == 0) {
		query_clock(b, who, req, pk);
		return;
	}
	if (w->len == 11 && memcmp(w->p, "deadletters", 11) == 0) {
		deadletters_query(b, who, req, pk);
		return;
	}
	if (w->len == 5 && memcmp(w->p, "agent", 5) == 0) {
		query_agent(b, req, pk);
		return;
	}
	if (txn_read_begin(b, &txn) != 0) {
		refuse(pk, req, RL_E_STORAGE, "", "cannot read the store; retry later");
		return;
	}
	if (w->len == 6 && memcmp(w->p, "health", 6) == 0) {
		if (args_known(req, pk, (const char *const[]){ NULL }))
			query_health(b, txn, req, pk);
	}
	else if (w->len == 6 && memcmp(w->p, "alerts", 6) == 0)
		query_alerts_page(b, txn, who, req, pk);
	else if (w->len == 12 && memcmp(w->p, "participants", 12) == 0)
		query_participants(b, txn, who, req, pk);
	else if (w->len == 5 && memcmp(w->p, "inbox", 5) == 0)
		query_inbox(b, txn, who, req, pk);
	else if (w->len == 11 && memcmp(w->p, "participant", 11) == 0)
		query_participant(b, txn, who, req, pk);
	else if (w->len == 6 && memcmp(w->p, "report", 6) == 0)
		report_query(b, txn, who, req, pk);
	else
		refuse(pk, req, RL_E_BAD_FIELD, "what",
		    "what must be one of health, alerts, participant, participants, "
		    "inbox, report, deadletters, clock, agent");
	txn_read_end(b, txn);
}
