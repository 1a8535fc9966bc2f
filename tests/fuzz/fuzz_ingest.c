/*
 * libFuzzer target for what the broker does with events once decoded:
 * each input is a submit frame whose events go, one transaction each,
 * through ingest (validation, deduplication, the pathway, the indexes,
 * routing to mailboxes, alerts), from senders of every kind in turn, with
 * time moving a day per event; then the rupture sweep runs a season later.
 * The store is emptied between inputs.
 *
 *   make fuzz && build/fuzz/fuzz_ingest tests/fuzz/corpus/decode
 *
 * Beyond the sanitizers it checks what the broker promises: an event is
 * accepted or refused with a known code and a message, and an accepted
 * event sent again is a duplicate that changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "indicators.h"
#include "keyfile.h"
#include "relaisd.h"
#include "sessions.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0      INT64_C(1795000000000)
#define DAY     INT64_C(86400000)

static struct broker b;
static char dir[] = "/tmp/relais-fuzz-XXXXXX";

/* The store and keys go with the process. */
static void
remove_dir(void)
{
	char cmd[64];

	store_close(&b.st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_ingest: could not remove %s\n", dir);
}

static void
agent_section(FILE *f, const char *dir, const char *id, const char *kind)
{
	char base[128], err[256], key[41];

	snprintf(base, sizeof(base), "%s/%s", dir, id);
	if (keyfile_generate(base, err, sizeof(err)) != 0)
		abort();
	snprintf(base, sizeof(base), "%s/%s.pub", dir, id);
	if (keyfile_read(base, key, err, sizeof(err)) != 0)
		abort();
	fprintf(f, "[agent %s]\nname = %s\nkind = %s\npublic_key = %s\n", id, id,
	    kind, key);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[128], err[4096];
	FILE *f;

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/broker", dir);
	if (keyfile_generate(path, err, sizeof(err)) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/relais.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "[broker]\nlisten = tcp://127.0.0.1:*\ndata_dir = data\n"
	    "secret_key_file = broker.key\npublic_key_file = broker.pub\n"
	    "map_size_mb = 256\nmax_backlog = 50\n"
	    "[qpv]\nsanitas = Sanitas\nrochepinard = Rochepinard\n"
	    "europe-chateaubriand = Europe - Chateaubriand\n");
	agent_section(f, dir, "med", "mediator");
	agent_section(f, dir, "ml", "mission_locale");
	agent_section(f, dir, "coord", "coordinator");
	agent_section(f, dir, "plie", "plie");
	agent_section(f, dir, "ops", "operator");
	fclose(f);
	if ((b.cfg = config_load(path, err, sizeof(err))) == NULL ||
	    store_open(&b.st, b.cfg->data_dir, 256, false, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_ingest: %s\n", err);
		abort();
	}
	b.peers.sessions = calloc(b.cfg->nagents, sizeof(*b.peers.sessions));
	for (size_t i = 0; i < b.cfg->nagents; i++)
		b.peers.sessions[i].agent = &b.cfg->agents[i];
	b.peers.nsessions = b.cfg->nagents;
	b.pass.pw = malloc(sizeof(*b.pass.pw));
	if (b.peers.sessions == NULL || b.pass.pw == NULL || broker_load_counters(&b) != 0 ||
	    participants_init(&b) != 0 || indicators_init(&b) != 0)
		abort();
	msgpack_sbuffer_init(&b.pass.scratch);
	msgpack_sbuffer_init(&b.pass.canon);
	msgpack_sbuffer_init(&b.pass.record);
	return 0;
}

/* One event in its own transaction; its code. */
static int
ingest_one(const struct agent *sender, const msgpack_object *ev, int64_t now,
    struct ingest_result *res)
{
	struct rl_error err;
	MDB_txn *txn;
	int code, rc;

	if (txn_begin(&b, &txn) != 0)
		abort();
	memset(&err, 0, sizeof(err));
	code = ingest_event(&b, txn, sender, ev, now, res, &err);
	if (code != RL_OK) {
		if (strcmp(rl_code_name(code), "unknown") == 0 ||
		    err.message[0] == '\0')
			abort();
		txn_abort(&b, txn);
		return code;
	}
	if ((rc = txn_commit(&b, txn)) != 0)
		return store_code(rc);
	return RL_OK;
}

/* Every table emptied, and what memory remembers of them forgotten. */
static void
empty_store(void)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi main, dbi;
	MDB_val k, v;
	char names[STORE_MAX_DBS][64];
	size_t n = 0;

	if (mdb_txn_begin(b.st.env, NULL, 0, &txn) != 0 ||
	    mdb_dbi_open(txn, NULL, 0, &main) != 0 ||
	    mdb_cursor_open(txn, main, &cur) != 0)
		abort();
	while (n < STORE_MAX_DBS && mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0 &&
	    k.mv_size < sizeof(names[0])) {
		memcpy(names[n], k.mv_data, k.mv_size);
		names[n++][k.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n; i++)
		if (mdb_dbi_open(txn, names[i], 0, &dbi) != 0 ||
		    mdb_drop(txn, dbi, 0) != 0)
			abort();
	if (mdb_txn_commit(txn) != 0)
		abort();
	for (size_t i = 0; i < b.peers.nsessions; i++) {
		struct session *s = &b.peers.sessions[i];
		const struct agent *a = s->agent;

		memset(s, 0, sizeof(*s));
		s->agent = a;
	}
	if (broker_load_counters(&b) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked up;
	struct rl_request req;
	struct rl_error err;
	int64_t now = T0;
	unsigned fired;

	msgpack_unpacked_init(&up);
	if (codec_decode_request((const char *)data, size, &up, &req, &err) != RL_OK ||
	    req.cmd != RL_CMD_SUBMIT) {
		msgpack_unpacked_destroy(&up);
		return 0;
	}
	for (uint32_t i = 0; i < req.nevents; i++) {
		const struct agent *sender = &b.cfg->agents[(i + size) % b.cfg->nagents];
		struct ingest_result first, again;

		now += DAY;
		if (ingest_one(sender, &req.events[i], now, &first) != RL_OK ||
		    first.duplicate)
			continue;
		/* The same event again: its original acknowledgement, no change. */
		if (ingest_one(sender, &req.events[i], now + 1, &again) != RL_OK ||
		    !again.duplicate || again.seq != first.seq ||
		    again.recorded_at != first.recorded_at)
			abort();
	}
	alerts_sweep(&b, now + 120 * DAY, &fired);
	msgpack_unpacked_destroy(&up);
	empty_store();
	return 0;
}
