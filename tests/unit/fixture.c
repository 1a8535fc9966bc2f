/*
 * A broker without sockets, around a fresh store in a temp folder, for unit
 * tests of ingest, mailboxes and alerts.  Events go in one per transaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"
#include "keyfile.h"

static void
agent_section(FILE *f, const char *dir, const char *id, const char *kind)
{
	char base[128], err[256], key[41];

	snprintf(base, sizeof(base), "%s/%s", dir, id);
	assert_int_equal(keyfile_generate(base, err, sizeof(err)), 0);
	snprintf(base, sizeof(base), "%s/%s.pub", dir, id);
	assert_int_equal(keyfile_read(base, key, err, sizeof(err)), 0);
	fprintf(f, "[agent %s]\nname = %s\nkind = %s\npublic_key = %s\n", id, id,
	    kind, key);
}

struct fixture *
fixture_new(uint64_t map_size_mb)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char path[128], err[4096];
	FILE *f;
	struct config *cfg;

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/relais-store-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(path, sizeof(path), "%s/broker", fx->dir);
	assert_int_equal(keyfile_generate(path, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/relais.conf", fx->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[broker]\nlisten = tcp://127.0.0.1:*\ndata_dir = data\n"
	    "secret_key_file = broker.key\npublic_key_file = broker.pub\n"
	    /* The QPVs the unit tests use. */
	    "[qpv]\nsanitas = Sanitas\neurope = Europe\nrives = Rives du Cher\n"
	    "rochepinard = Rochepinard\n");
	agent_section(f, fx->dir, "med", "mediator");
	agent_section(f, fx->dir, "ml", "mission_locale");
	agent_section(f, fx->dir, "ops", "operator");
	agent_section(f, fx->dir, "coord", "coordinator");
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config: %s", err);

	fx->b.cfg = cfg;
	/* The map size is the test's, below what a config may set. */
	assert_int_equal(store_open(&fx->b.st, cfg->data_dir, map_size_mb,
	    false, err, sizeof(err)), 0);
	fx->b.peers.sessions = calloc(cfg->nagents, sizeof(*fx->b.peers.sessions));
	for (size_t i = 0; i < cfg->nagents; i++)
		fx->b.peers.sessions[i].agent = &cfg->agents[i];
	fx->b.peers.nsessions = cfg->nagents;
	assert_int_equal(broker_load_counters(&fx->b), 0);
	fx->b.pass.pw = malloc(sizeof(*fx->b.pass.pw));
	assert_int_equal(participants_init(&fx->b), 0);
	assert_int_equal(indicators_init(&fx->b), 0);
	msgpack_sbuffer_init(&fx->b.pass.scratch);
	msgpack_sbuffer_init(&fx->b.pass.canon);
	msgpack_sbuffer_init(&fx->b.pass.record);
	assert_non_null(fx->b.tx.passlog = passlog_new());
	return fx;
}

void
fixture_free(struct fixture *fx)
{
	char cmd[128];

	store_close(&fx->b.st);
	msgpack_sbuffer_destroy(&fx->b.pass.scratch);
	msgpack_sbuffer_destroy(&fx->b.pass.canon);
	msgpack_sbuffer_destroy(&fx->b.pass.record);
	free(fx->b.pass.pw);
	passlog_free(&fx->b.tx.passlog);
	participants_free(&fx->b);
	indicators_free(&fx->b);
	free(fx->b.peers.sessions);
	config_free(&fx->b.cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
}

int
fixture_setup(void **state)
{
	*state = fixture_new(16);
	return 0;
}

int
fixture_teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

/* Pack a JSON-like event from key/value string pairs (ints if all digits). */
void
pack_event(msgpack_sbuffer *sb, int n, ...)
{
	msgpack_packer pk;
	va_list ap;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)n);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v = va_arg(ap, const char *);

		msgpack_pack_str(&pk, strlen(k));
		msgpack_pack_str_body(&pk, k, strlen(k));
		if (strcmp(k, "occurred_at") == 0 || strcmp(k, "at") == 0) {
			msgpack_pack_int64(&pk, atoll(v));
		} else {
			msgpack_pack_str(&pk, strlen(v));
			msgpack_pack_str_body(&pk, v, strlen(v));
		}
	}
	va_end(ap);
}

int
ingest(struct fixture *fx, const char *sender, msgpack_sbuffer *sb,
    struct ingest_result *res, struct rl_error *err)
{
	return ingest_at(fx, sender, sb, FIXTURE_NOW, res, err);
}

int
ingest_at(struct fixture *fx, const char *sender, msgpack_sbuffer *sb,
    int64_t now, struct ingest_result *res, struct rl_error *err)
{
	msgpack_unpacked up;
	MDB_txn *txn;
	size_t off = 0;
	int code, rc;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb->data, sb->size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	code = ingest_event(&fx->b, txn, config_agent_by_id(fx->b.cfg, sender),
	    &up.data, now, res, err);
	if (code != RL_OK)
		txn_abort(&fx->b, txn);
	else if ((rc = txn_commit(&fx->b, txn)) != 0)
		code = store_error(&fx->b.st, err, rc);
	msgpack_unpacked_destroy(&up);
	return code;
}

int
ingest_in(struct fixture *fx, MDB_txn *txn, const char *sender,
    msgpack_sbuffer *sb)
{
	struct ingest_result r;
	struct rl_error err;
	msgpack_unpacked up;
	size_t off = 0;
	int code;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb->data, sb->size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	code = ingest_event(&fx->b, txn, config_agent_by_id(fx->b.cfg, sender),
	    &up.data, FIXTURE_NOW, &r, &err);
	msgpack_unpacked_destroy(&up);
	return code;
}

int
ingest_contact_in(struct fixture *fx, MDB_txn *txn, const char *eid,
    const char *p)
{
	msgpack_sbuffer sb;
	int code;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", eid, "type", "contact.made",
	    "occurred_at", FIXTURE_T0, "participant", p, "channel", "phone");
	code = ingest_in(fx, txn, "med", &sb);
	msgpack_sbuffer_destroy(&sb);
	return code;
}

int
ingest_referral_in(struct fixture *fx, MDB_txn *txn, const char *sender,
    const char *type, const char *eid, const char *p, const char *r,
    const char *to)
{
	msgpack_sbuffer sb;
	int code;

	msgpack_sbuffer_init(&sb);
	if (strcmp(type, "referral.sent") == 0)
		pack_event(&sb, 7, "event_id", eid, "type", type,
		    "occurred_at", FIXTURE_T0, "participant", p, "referral", r,
		    "to", to, "purpose", "cv");
	else
		pack_event(&sb, 5, "event_id", eid, "type", type,
		    "occurred_at", FIXTURE_T0, "participant", p, "referral", r);
	code = ingest_in(fx, txn, sender, &sb);
	msgpack_sbuffer_destroy(&sb);
	return code;
}

const msgpack_object *
fixture_query(struct fixture *fx, const char *who, const char *what,
    const msgpack_sbuffer *args, msgpack_sbuffer *out, msgpack_unpacked *up)
{
	msgpack_unpacked aup;
	msgpack_packer pk;
	struct rl_request req;
	size_t off = 0;

	memset(&req, 0, sizeof(req));
	msgpack_unpacked_init(&aup);
	if (args != NULL) {
		assert_int_equal(msgpack_unpack_next(&aup, args->data, args->size,
		    &off), MSGPACK_UNPACK_SUCCESS);
		req.args = &aup.data;
	}
	req.cmd = RL_CMD_QUERY;
	req.what.p = what;
	req.what.len = (uint32_t)strlen(what);
	msgpack_sbuffer_clear(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	query_handle(&fx->b, config_agent_by_id(fx->b.cfg, who), &req, &pk);
	msgpack_unpacked_destroy(&aup);
	off = 0;
	assert_int_equal(msgpack_unpack_next(up, out->data, out->size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	return &up->data;
}

uint64_t
count(struct fixture *fx, MDB_dbi dbi)
{
	MDB_txn *txn;
	uint64_t n;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	n = store_count(txn, dbi);
	mdb_txn_abort(txn);
	return n;
}

uint64_t
participant_records(struct fixture *fx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, fx->b.st.participants, &cur), 0);
	while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
		n += participants_is_record(&k);
	mdb_cursor_close(cur);
	assert_int_equal(participants_count(txn, &fx->b.st), n);
	mdb_txn_abort(txn);
	return n;
}


uint64_t
mailbox_count(struct fixture *fx, const char *agent)
{
	MDB_txn *txn;
	uint64_t n;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	n = store_count_prefix(txn, fx->b.st.mbox, agent, strlen(agent) + 1);
	mdb_txn_abort(txn);
	return n;
}

int
fixture_verify(struct fixture *fx, char *out, size_t outlen)
{
	char err[256];
	FILE *f = fmemopen(out, outlen, "w");
	int rc;

	assert_non_null(f);
	store_close(&fx->b.st);
	rc = verify_store(fx->b.cfg, f);
	fclose(f);
	assert_int_equal(store_open(&fx->b.st, fx->b.cfg->data_dir, 16, false,
	    err, sizeof(err)), 0);
	return rc;
}

void
fixture_put_raw(struct fixture *fx, MDB_dbi dbi, const void *key, size_t klen,
    const void *val, size_t vlen, bool del)
{
	MDB_txn *txn;
	MDB_val k = { klen, (void *)key }, v = { vlen, (void *)val };

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	if (del)
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	else
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

void
fixture_queue_referrals(struct fixture *fx, int from, int n)
{
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	for (int i = from; i < from + n; i++) {
		char eid[16], p[16], r[16];

		snprintf(eid, sizeof(eid), "e-%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		snprintf(r, sizeof(r), "r-%d", i);
		assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent",
		    eid, p, r, "ml"), RL_OK);
	}
	assert_int_equal(txn_commit(&fx->b, txn), 0);
}
