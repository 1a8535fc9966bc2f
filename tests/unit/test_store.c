/*
 * Unit tests of the store (broker/store.c) and of one event's path through
 * it (broker/ingest.c, broker/mailbox.c): deduplication, conflicts, the
 * referral index, mailboxes, and a full map refused without damage.
 * No sockets: the broker object is built by hand around a temp store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>
#include <sodium.h>

#include "fixture.h"
#include "log.h"
#include "record.h"

static void
test_be64_orders_keys(void **state)
{
	char a[8], b[8];

	store_put_be64(a, 255);
	store_put_be64(b, 256);
	assert_true(memcmp(a, b, 8) < 0);
	assert_int_equal(store_be64(a), 255);
	assert_int_equal(store_be64(b), 256);
}

static void
test_counters_and_prefix_counts(void **state)
{
	struct fixture *fx = *state;
	MDB_txn *txn;
	char key[32];
	MDB_val k, v = { 0, "" };
	uint64_t val;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "x", 1, &val), 0);
	assert_int_equal(val, 0);
	assert_int_equal(store_put_u64(&fx->b.st, txn, fx->b.st.meta, "x", 1, 42), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "x", 1, &val), 0);
	assert_int_equal(val, 42);
	for (uint64_t s = 1; s <= 3; s++) {
		k.mv_size = store_key_seq(key, "ab", 2, s);
		k.mv_data = key;
		assert_int_equal(mdb_put(txn, fx->b.st.mbox, &k, &v, 0), 0);
	}
	k.mv_size = store_key_seq(key, "abc", 3, 1);
	k.mv_data = key;
	assert_int_equal(mdb_put(txn, fx->b.st.mbox, &k, &v, 0), 0);
	/* "ab\0" must not count "abc\0...": the NUL ends the agent id. */
	assert_int_equal(store_count_prefix(txn, fx->b.st.mbox, "ab", 3), 3);
	assert_int_equal(store_count_prefix(txn, fx->b.st.mbox, "abc", 4), 1);
	mdb_txn_abort(txn);
}

/* Write meta "format" into the closed store in dir, bypassing store_open. */
static void
set_format(const char *dir, uint64_t format)
{
	struct store unrecorded = { 0 };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	assert_int_equal(store_put_u64(&unrecorded, txn, meta, "format", 6,
	    format), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A store of another layout is refused when opened, with what to do. */
static void
test_store_of_another_format_is_refused(void **state)
{
	struct fixture *fx = *state;
	const char *dir = fx->b.cfg->data_dir;
	char err[512], key[8];
	MDB_txn *txn;
	MDB_val k = { 8, key }, v = { 1, "x" }, fk = { 6, "format" };
	uint64_t format;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "format", 6, &format), 0);
	assert_int_equal(format, STORE_FORMAT);
	mdb_txn_abort(txn);

	/* A log written before the store had a format number. */
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	store_put_be64(key, 1);
	assert_int_equal(mdb_put(txn, fx->b.st.log, &k, &v, 0), 0);
	assert_int_equal(mdb_del(txn, fx->b.st.meta, &fk, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	store_close(&fx->b.st);
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store format 1"));
	assert_non_null(strstr(err, "empty folder"));
	assert_int_equal(store_open(&fx->b.st, dir, 16, true, err, sizeof(err)), -1);

	/* A later format is refused too; this one opens again. */
	set_format(dir, 99);
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "store format 99"));
	set_format(dir, STORE_FORMAT);
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)), 0);
}

/* The blocks data.mdb holds on its disk, in MiB. */
static uint64_t
disk_mib(const char *dir)
{
	char path[600];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_blocks * 512 >> 20;
}

/*
 * With the map written in place (durability = wal), the map's whole size
 * is reserved on the disk when the store opens and before it grows: a
 * page stored into a hole of a full disk would be a SIGBUS, not an error.
 * Without it, data.mdb holds only the pages written.
 */
static void
test_a_map_written_in_place_is_reserved_on_disk(void **state)
{
	struct fixture *fx = *state;
	char err[256];
	uint64_t mb;

	store_close(&fx->b.st);
	assert_int_equal(store_open(&fx->b.st, fx->dir, 16, 0, err, sizeof(err)), 0);
	assert_true(disk_mib(fx->dir) < 16);
	store_close(&fx->b.st);
	assert_int_equal(store_open(&fx->b.st, fx->dir, 16, STORE_WRITE_MAP, err,
	    sizeof(err)), 0);
	assert_true(disk_mib(fx->dir) >= 16);
	assert_int_equal(store_grow(&fx->b.st, 64, true, &mb), 1);
	assert_int_equal(mb, 32);
	assert_true(disk_mib(fx->dir) >= 32);
}

static void
test_read_only_open_of_missing_store_fails_clearly(void **state)
{
	struct store st;
	char err[256];

	assert_int_equal(store_open(&st, "/tmp/relais-no-such-store", 16, true,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/tmp/relais-no-such-store"));
}

/* A record is the canonical event plus the broker's three fields. */
static void
test_record_from_canonical_encoding(void **state)
{
	msgpack_sbuffer in, canon, rec, want;
	msgpack_unpacked up, up2;
	msgpack_packer pk;
	struct rl_event ev, back;
	struct record_meta meta;
	struct rl_error err;
	size_t off = 0;

	msgpack_sbuffer_init(&in);
	msgpack_sbuffer_init(&canon);
	msgpack_sbuffer_init(&rec);
	msgpack_sbuffer_init(&want);
	pack_event(&in, 7, "event_id", "e1", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-1", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, in.data, in.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(event_parse(&up.data, &ev, &err), RL_OK);
	msgpack_packer_init(&pk, &canon, msgpack_sbuffer_write);
	assert_int_equal(event_pack(&ev, &pk), 0);
	assert_int_equal(record_pack(&rec, canon.data, canon.size, "med", "mediator",
	    1796000000000, 42), 0);

	/* The same bytes as packing every field again. */
	msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, event_field_count(&ev) + 4);
	event_pack_fields(&ev, &pk);
	codec_pack_kv_str(&pk, "sender", "med");
	codec_pack_kv_str(&pk, "sender_kind", "mediator");
	codec_pack_kv_i64(&pk, "recorded_at", 1796000000000);
	codec_pack_kv_u64(&pk, "log_seq", 42);
	assert_int_equal(rec.size, want.size);
	assert_memory_equal(rec.data, want.data, want.size);

	msgpack_unpacked_init(&up2);
	assert_int_equal(record_parse(rec.data, rec.size, &up2, &back, &meta, &err),
	    RL_OK);
	assert_int_equal(meta.log_seq, 42);
	assert_int_equal(meta.recorded_at, 1796000000000);
	assert_int_equal(meta.sender_kind.len, 8);
	assert_memory_equal(meta.sender_kind.p, "mediator", 8);
	assert_int_equal(back.type, EV_REFERRAL_SENT);
	/* Not a map: refused, nothing written. */
	msgpack_sbuffer_clear(&rec);
	assert_int_equal(record_pack(&rec, "\x93\x01\x02\x03", 4, "med", "mediator", 0, 1), -1);
	assert_int_equal(record_pack(&rec, "", 0, "med", "mediator", 0, 1), -1);
	msgpack_unpacked_destroy(&up2);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&in);
	msgpack_sbuffer_destroy(&canon);
	msgpack_sbuffer_destroy(&rec);
	msgpack_sbuffer_destroy(&want);
}

static void
test_event_recorded_once_and_duplicate_returns_original(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r1, r2;
	struct rl_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 6, "event_id", "e1", "type", "participant.identified",
	    "occurred_at", "1795000000000", "participant", "p-1", "qpv", "sanitas",
	    "source", "outreach");
	assert_int_equal(ingest(fx, "med", &sb, &r1, &err), RL_OK);
	assert_false(r1.duplicate);
	assert_int_equal(r1.seq, 1);
	assert_int_equal(ingest(fx, "med", &sb, &r2, &err), RL_OK);
	assert_true(r2.duplicate);
	assert_int_equal(r2.seq, r1.seq);
	assert_int_equal(r2.recorded_at, r1.recorded_at);
	assert_int_equal(count(fx, fx->b.st.log), 1);
	assert_int_equal(count(fx, fx->b.st.dedup), 1);

	/* Same id from another agent is another event. */
	assert_int_equal(ingest(fx, "ml", &sb, &r2, &err), RL_OK);
	assert_false(r2.duplicate);
	assert_int_equal(r2.seq, 2);
	msgpack_sbuffer_destroy(&sb);
}

/* med's e1 (a contact by phone) is recorded: e1 by message is a conflict. */
static void
assert_other_content_conflicts(struct fixture *fx)
{
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", "1795000000000", "participant", "p-1", "channel", "message");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_E_CONFLICT);
	assert_string_equal(err.field, "event_id");
	assert_int_equal(count(fx, fx->b.st.log), 1);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_same_id_other_content_is_a_conflict(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", "1795000000000", "participant", "p-1", "channel", "phone");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_OK);
	assert_other_content_conflicts(fx);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * A dedup record written by an earlier version holds BLAKE2b-128 of the
 * canonical event, not today's fingerprint: the same event sent again is
 * still a duplicate, other content under its id still a conflict.
 */
static void
test_dedup_records_of_earlier_versions_keep_their_meaning(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r1, r2;
	struct rl_error err;
	struct dedup_rec dr;
	msgpack_sbuffer sb;
	MDB_txn *txn;
	MDB_val k = { 6, "e1\0med" }, v;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", "1795000000000", "participant", "p-1", "channel", "phone");
	assert_int_equal(ingest(fx, "med", &sb, &r1, &err), RL_OK);
	/* The record as an earlier version wrote it; ingest left the event's
	 * canonical encoding in b.canon. */
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_get(txn, fx->b.st.dedup, &k, &v), 0);
	assert_int_equal(v.mv_size, sizeof(dr));
	memcpy(&dr, v.mv_data, sizeof(dr));
	{
		unsigned char today[16];

		memcpy(today, dr.hash, sizeof(today));
		crypto_generichash(dr.hash, sizeof(dr.hash),
		    (const unsigned char *)fx->b.pass.canon.data, fx->b.pass.canon.size,
		    NULL, 0);
		assert_memory_not_equal(today, dr.hash, sizeof(today));
	}
	v.mv_size = sizeof(dr);
	v.mv_data = &dr;
	assert_int_equal(mdb_put(txn, fx->b.st.dedup, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);

	assert_int_equal(ingest(fx, "med", &sb, &r2, &err), RL_OK);
	assert_true(r2.duplicate);
	assert_int_equal(r2.seq, r1.seq);
	assert_int_equal(r2.recorded_at, r1.recorded_at);
	assert_other_content_conflicts(fx);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_referral_goes_to_target_mailbox(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;
	MDB_txn *txn;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 7, "event_id", "e1", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-1", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_OK);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_count_prefix(txn, fx->b.st.mbox, "ml", 3), 1);
	assert_int_equal(store_count_prefix(txn, fx->b.st.mbox, "med", 4), 0);
	mdb_txn_abort(txn);

	/* The same referral id again for the person is refused; a referral
	 * id is the participant's, so another person's r-1 is another. */
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 7, "event_id", "e2", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-1", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_E_REFERRAL_EXISTS);
	assert_string_equal(err.field, "referral");
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 7, "event_id", "e2", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-3", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_OK);

	/* An unregistered target is refused and nothing is recorded. */
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 7, "event_id", "e3", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-2", "referral", "r-2",
	    "to", "nobody", "purpose", "cv");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_E_UNKNOWN_AGENT);
	assert_string_equal(err.field, "to");
	assert_int_equal(count(fx, fx->b.st.log), 2);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * The event_id and the referral id are claimed before the checks that may
 * still refuse the event: a refusal must give both back, even when the
 * pass it was in commits.
 */
static void
test_refused_event_claims_nothing(void **state)
{
	struct fixture *fx = *state;
	MDB_txn *txn;

	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent",
	    "e1", "p-1", "r-1", "nobody"), RL_E_UNKNOWN_AGENT);
	assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent",
	    "e2", "p-1", "r-2", "ml"), RL_OK);
	/* Refused by the pathway: a referral's sender may not accept it. */
	assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.accepted",
	    "e3", "p-1", "r-2", NULL), RL_E_WRONG_AGENT);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(count(fx, fx->b.st.dedup), 1);

	/* The refused ids, now in valid events, are new: no conflict, no "exists". */
	assert_int_equal(txn_begin(&fx->b, &txn), 0);
	assert_int_equal(ingest_referral_in(fx, txn, "med", "referral.sent",
	    "e1", "p-1", "r-1", "ml"), RL_OK);
	assert_int_equal(ingest_contact_in(fx, txn, "e3", "p-1"), RL_OK);
	assert_int_equal(txn_commit(&fx->b, txn), 0);
	assert_int_equal(count(fx, fx->b.st.dedup), 3);
	assert_int_equal(count(fx, fx->b.st.log), 3);
}

static void
test_answer_must_name_the_referrals_participant(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 7, "event_id", "e1", "type", "referral.sent",
	    "occurred_at", "1795000000000", "participant", "p-1", "referral", "r-1",
	    "to", "ml", "purpose", "cv");
	assert_int_equal(ingest(fx, "med", &sb, &r, &err), RL_OK);
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 5, "event_id", "a1", "type", "referral.accepted",
	    "occurred_at", "1795000000000", "participant", "p-9", "referral", "r-1");
	assert_int_equal(ingest(fx, "ml", &sb, &r, &err), RL_E_UNKNOWN_REFERRAL);
	msgpack_sbuffer_clear(&sb);
	pack_event(&sb, 5, "event_id", "a2", "type", "referral.accepted",
	    "occurred_at", "1795000000000", "participant", "p-1", "referral", "r-1");
	assert_int_equal(ingest(fx, "ml", &sb, &r, &err), RL_OK);
	/* The acceptance is routed back to the referral's sender. */
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_count_prefix(txn, fx->b.st.mbox, "med", 4), 1);
	mdb_txn_abort(txn);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_operators_may_not_send_events(void **state)
{
	struct fixture *fx = *state;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	pack_event(&sb, 5, "event_id", "e1", "type", "contact.made",
	    "occurred_at", "1795000000000", "participant", "p-1", "channel", "phone");
	assert_int_equal(ingest(fx, "ops", &sb, &r, &err), RL_E_FORBIDDEN);
	assert_int_equal(count(fx, fx->b.st.log), 0);
	msgpack_sbuffer_destroy(&sb);
}

/* A full map is refused with storage_full, and what was there survives. */
static void
test_full_map_is_refused_not_fatal(void **state)
{
	struct fixture *fx = fixture_new(1);
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;
	char id[32], p[32];
	int code = RL_OK, i;
	uint64_t before;

	(void)state;
	msgpack_sbuffer_init(&sb);
	for (i = 0; i < 100000 && code == RL_OK; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(p, sizeof(p), "p-%d", i);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", id, "type", "participant.identified",
		    "occurred_at", "1795000000000", "participant", p, "qpv", "sanitas",
		    "source", "outreach");
		code = ingest(fx, "med", &sb, &r, &err);
	}
	assert_int_equal(code, RL_E_STORAGE_FULL);
	assert_true(i > 10);
	before = count(fx, fx->b.st.log);
	assert_int_equal(before, (uint64_t)(i - 1));
	/* The store still reads and still refuses cleanly. */
	code = ingest(fx, "med", &sb, &r, &err);
	assert_int_equal(code, RL_E_STORAGE_FULL);
	/* The refusal keeps its cause, for the log. */
	assert_int_equal(err.cause, MDB_MAP_FULL);
	assert_non_null(strstr(err.message, "MDB_MAP_FULL"));
	assert_int_equal(count(fx, fx->b.st.log), before);
	msgpack_sbuffer_destroy(&sb);
	fixture_free(fx);
}

/* One convention: the cause in, the protocol code out, the cause kept. */
static void
test_storage_errors_keep_their_cause(void **state)
{
	struct fixture *fx = *state;
	struct rl_error err;

	assert_int_equal(store_error(&fx->b.st, &err, ENOSPC), RL_E_STORAGE_FULL);
	assert_int_equal(err.cause, ENOSPC);
	assert_non_null(strstr(err.message, strerror(ENOSPC)));
	assert_int_equal(store_error(&fx->b.st, &err, EDQUOT), RL_E_STORAGE_FULL);
	assert_int_equal(store_error(&fx->b.st, &err, MDB_MAP_FULL), RL_E_STORAGE_FULL);
	assert_int_equal(store_error(&fx->b.st, &err, MDB_CORRUPTED), RL_E_STORAGE);
	assert_int_equal(err.cause, MDB_CORRUPTED);
	/* An I/O error on a file system with room is not a full disk. */
	assert_int_equal(store_cause(&fx->b.st, EIO), EIO);
	assert_int_equal(store_error(&fx->b.st, &err, EIO), RL_E_STORAGE);
	assert_int_equal(err.cause, EIO);
	/* Any other refusal has no cause. */
	rl_error_set(&err, RL_E_CONFLICT, "event_id", "x");
	assert_int_equal(err.cause, 0);
}

int
main(void)
{
	static FILE *devnull;

	devnull = fopen("/dev/null", "w");
	log_init(devnull, LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_be64_orders_keys),
		cmocka_unit_test_setup_teardown(test_counters_and_prefix_counts, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_store_of_another_format_is_refused, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_a_map_written_in_place_is_reserved_on_disk, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_read_only_open_of_missing_store_fails_clearly),
		cmocka_unit_test(test_record_from_canonical_encoding),
		cmocka_unit_test_setup_teardown(test_event_recorded_once_and_duplicate_returns_original, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_same_id_other_content_is_a_conflict, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_dedup_records_of_earlier_versions_keep_their_meaning, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_referral_goes_to_target_mailbox, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refused_event_claims_nothing, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_answer_must_name_the_referrals_participant, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_operators_may_not_send_events, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_full_map_is_refused_not_fatal),
		cmocka_unit_test_setup_teardown(test_storage_errors_keep_their_cause, fixture_setup, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
