/*
 * Unit tests of the write-ahead log file (broker/wal.c) and of redo
 * records (broker/redo.c, store_put...): what is read back after a torn
 * tail, a damaged record, a truncated file, an older generation, and that
 * replaying the recorded changes rebuilds a store byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"

#define LAYOUT 7u

struct wal_dir {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct wal_dir *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	snprintf(d->dir, sizeof(d->dir), "/tmp/relais-wal-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/%s", d->dir, WAL_FILE);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct wal_dir *d = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", d->dir);
	assert_int_equal(system(cmd), 0);
	free(d);
	return 0;
}

static void
open_log(struct wal_dir *d, struct wal *w, uint32_t layout)
{
	char err[512];

	if (wal_open(w, d->dir, 1, layout, err, sizeof(err)) != 0)
		fail_msg("wal_open: %s", err);
}

/* Append a record whose payload is n bytes of value c. */
static void
append(struct wal *w, size_t n, int c)
{
	unsigned char *buf = malloc(WAL_RECORD_HDR + n);

	assert_non_null(buf);
	memset(buf + WAL_RECORD_HDR, c, n);
	assert_int_equal(wal_append(w, buf, n), 0);
	free(buf);
}

/* What a scan saw: each payload's length and first byte. */
struct seen {
	size_t n;
	size_t len[16];
	int first[16];
};

static int
collect(void *arg, const unsigned char *p, size_t len)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	for (size_t i = 1; i < len; i++)
		assert_int_equal(p[i], p[0]);
	s->len[s->n] = len;
	s->first[s->n++] = len > 0 ? p[0] : -1;
	return 0;
}

/* Reopen the file and read generation gen; the records found. */
static size_t
reread(struct wal_dir *d, uint64_t gen, struct seen *s)
{
	struct wal w;

	memset(s, 0, sizeof(*s));
	open_log(d, &w, LAYOUT);
	assert_int_equal(wal_scan(&w, gen, 0, collect, s), 0);
	assert_int_equal(w.seq, s->n);
	wal_close(&w);
	return s->n;
}

/*
 * A new log with n records of generation gen, of size bytes each, filled
 * with 'a', 'b', 'c'...; where each record starts, in at (if not NULL).
 */
static void
write_records(struct wal_dir *d, uint64_t gen, int n, size_t size,
    uint64_t *at)
{
	struct wal w;

	open_log(d, &w, LAYOUT);
	assert_int_equal(wal_scan(&w, gen, 0, NULL, NULL), 0);
	for (int i = 0; i < n; i++) {
		if (at != NULL)
			at[i] = w.end;
		append(&w, size, 'a' + i);
	}
	wal_close(&w);
}

/* Overwrite one byte of the file at off. */
static void
poke(struct wal_dir *d, uint64_t off, unsigned char c)
{
	int fd = open(d->path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void
test_records_read_back_in_order(void **state)
{
	struct wal_dir *d = *state;
	struct wal w;
	struct seen s;

	open_log(d, &w, LAYOUT);
	assert_int_equal(wal_scan(&w, 0, 0, NULL, NULL), 0);
	assert_int_equal(w.seq, 0);
	append(&w, 10, 'a');
	append(&w, 0, 0);
	append(&w, 3000, 'c');
	wal_close(&w);
	assert_int_equal(reread(d, 0, &s), 3);
	assert_int_equal(s.len[0], 10);
	assert_int_equal(s.first[0], 'a');
	assert_int_equal(s.len[1], 0);
	assert_int_equal(s.len[2], 3000);
	assert_int_equal(s.first[2], 'c');
}

/* A record cut short by a power cut is not read, nor anything after. */
static void
test_torn_tail_is_dropped_and_appends_continue(void **state)
{
	struct wal_dir *d = *state;
	uint64_t at[3], third;
	struct wal w;
	struct seen s;

	write_records(d, 0, 3, 100, at);
	third = at[2];
	/* The last bytes of the third record never reached the disk. */
	poke(d, third + WAL_RECORD_HDR + 99, 0);
	assert_int_equal(reread(d, 0, &s), 2);

	/* The next record takes the torn one's place, as seq 3. */
	open_log(d, &w, LAYOUT);
	assert_int_equal(wal_scan(&w, 0, 0, NULL, NULL), 0);
	assert_int_equal(w.end, third);
	append(&w, 5, 'd');
	wal_close(&w);
	assert_int_equal(reread(d, 0, &s), 3);
	assert_int_equal(s.first[2], 'd');
}

/* Each record has its own check: a damaged one ends the log there. */
static void
test_damaged_record_stops_the_log(void **state)
{
	struct wal_dir *d = *state;
	uint64_t at[3], second;
	struct seen s;

	write_records(d, 0, 3, 50, at);
	second = at[1];
	poke(d, second + WAL_RECORD_HDR + 10, 'x');
	assert_int_equal(reread(d, 0, &s), 1);
	/* The header's length field is checked too. */
	poke(d, second + WAL_RECORD_HDR + 10, 'b');
	assert_int_equal(reread(d, 0, &s), 3);
	poke(d, second + 11, 49);
	assert_int_equal(reread(d, 0, &s), 1);
}

/* A file cut short keeps the records that are whole. */
static void
test_truncated_file(void **state)
{
	struct wal_dir *d = *state;
	uint64_t at[3], third;
	struct wal w;
	struct seen s;
	char err[512];

	write_records(d, 0, 3, 100, at);
	third = at[2];
	assert_int_equal(truncate(d->path, (off_t)(third + 40)), 0);
	assert_int_equal(reread(d, 0, &s), 2);
	assert_int_equal(truncate(d->path, (off_t)third), 0);
	assert_int_equal(reread(d, 0, &s), 2);

	/* Cut within its header, the file is not taken for a log. */
	assert_int_equal(truncate(d->path, 100), 0);
	assert_int_equal(wal_open(&w, d->dir, 1, LAYOUT, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a relais write-ahead log"));
	assert_false(w.open);
}

/* A new generation overwrites the old one; old records are never read. */
static void
test_older_generation_is_ignored(void **state)
{
	struct wal_dir *d = *state;
	struct wal w;
	struct seen s;

	write_records(d, 4, 3, 100, NULL);
	open_log(d, &w, LAYOUT);
	assert_int_equal(wal_scan(&w, 4, 0, NULL, NULL), 0);
	assert_int_equal(w.seq, 3);
	wal_restart(&w, 5);
	append(&w, 10, 'x');
	wal_close(&w);
	assert_int_equal(reread(d, 5, &s), 1);
	assert_int_equal(s.first[0], 'x');
	/* Generation 4's first record is gone; its others are not read. */
	assert_int_equal(reread(d, 4, &s), 0);
	assert_int_equal(reread(d, 6, &s), 0);
}

/* Records of another store layout are refused, not misread. */
static void
test_other_layout_is_refused(void **state)
{
	struct wal_dir *d = *state;
	struct wal w;

	write_records(d, 0, 1, 10, NULL);
	open_log(d, &w, LAYOUT + 1);
	assert_int_equal(wal_scan(&w, 0, 0, NULL, NULL), WAL_E_LAYOUT);
	assert_int_equal(w.seq, 0);
	wal_close(&w);
}

/* A record larger than the room left is refused before anything is written. */
static void
test_full_log_refuses_append(void **state)
{
	struct wal_dir *d = *state;
	struct wal w;
	unsigned char *buf;
	size_t room;

	open_log(d, &w, LAYOUT);
	wal_scan(&w, 0, 0, NULL, NULL);
	room = w.size - w.end - WAL_RECORD_HDR;
	assert_true(wal_fits(&w, room));
	assert_false(wal_fits(&w, room + 1));
	buf = calloc(1, WAL_RECORD_HDR + room + 1);
	assert_non_null(buf);
	assert_int_equal(wal_append(&w, buf, room + 1), ENOSPC);
	assert_int_equal(w.seq, 0);
	assert_int_equal(wal_append(&w, buf, room), 0);
	assert_false(wal_fits(&w, 0));
	free(buf);
	wal_close(&w);
}

static void
print_bytes(FILE *f, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	for (size_t i = 0; i < v->mv_size; i++)
		fprintf(f, p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x", p[i]);
}

/* Every key and value of the tables, in order, as one text, read in txn. */
static char *
dump_in(struct store *st, MDB_txn *txn)
{
	MDB_dbi tables[] = { st->meta, st->log, st->dedup, st->mbox, st->queued,
	    st->participants, st->deadlines, st->indicators,
	    st->ind_seen };
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		MDB_cursor *cur;
		MDB_val k, v;

		assert_int_equal(mdb_cursor_open(txn, tables[t], &cur), 0);
		while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
			fprintf(f, "%zu:", t);
			print_bytes(f, &k);
			fputc('=', f);
			print_bytes(f, &v);
			fputc('\n', f);
		}
		mdb_cursor_close(cur);
	}
	fclose(f);
	return text;
}

static char *
dump_tables(struct store *st)
{
	MDB_txn *txn;
	char *text;

	assert_int_equal(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn), 0);
	text = dump_in(st, txn);
	mdb_txn_abort(txn);
	return text;
}

/* The store as the broker reads it between passes, without "wal_gen". */
static char *
dump_broker(struct broker *b)
{
	MDB_txn *txn;
	char *text, *gen, *end;

	assert_int_equal(txn_read_begin(b, &txn), 0);
	text = dump_in(&b->st, txn);
	txn_read_end(b, txn);
	/* The generation's line differs after a checkpoint: left out. */
	if ((gen = strstr(text, "0:wal_gen=")) != NULL &&
	    (end = strchr(gen, '\n')) != NULL)
		memmove(gen, end + 1, strlen(end + 1) + 1);
	return text;
}

/*
 * A broker with the log, its passes never checkpointed, "crashes" (the
 * shared transaction dropped, nothing committed): the next start replays
 * the passes and the store is the one the broker was reading, byte for
 * byte.  The tick's upkeep keeps the shared transaction (it used to drop
 * it, making every next pass replay the log).
 */
static void
test_passes_replayed_after_a_crash(void **state)
{
	struct fixture *fx = fixture_new(16);
	struct broker *b = &fx->b;
	struct ingest_result r;
	struct rl_error err;
	msgpack_sbuffer sb;
	char *before, *after, *disk, id[16], p[16];

	snprintf(b->cfg->durability, sizeof(b->cfg->durability), "wal");
	b->cfg->wal_size_mb = 1;
	b->cfg->checkpoint_ms = 600000;
	assert_int_equal(checkpoint_recover(b), 0);
	assert_true(b->durable.wal.open);
	msgpack_sbuffer_init(&sb);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "e%d", i);
		snprintf(p, sizeof(p), "p-%d", i % 2);
		msgpack_sbuffer_clear(&sb);
		pack_event(&sb, 6, "event_id", id, "type", "participant.identified",
		    "occurred_at", "1795000000000", "participant", p, "qpv",
		    "sanitas", "source", "outreach");
		ingest(fx, "med", &sb, &r, &err);
	}
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(b->durable.wal.seq, 5);
	assert_non_null(b->durable.shared);
	upkeep_store(b);
	checkpoint_tick(b);
	assert_non_null(b->durable.shared);
	assert_int_equal(b->durable.wal.seq, 5);
	before = dump_broker(b);
	assert_non_null(strstr(before, "p-1"));

	/* The crash: nothing of the shared transaction reaches the file. */
	checkpoint_rollback(b);
	wal_close(&b->durable.wal);
	participants_clear(b);
	indicators_clear(b);
	disk = dump_tables(&b->st);
	assert_null(strstr(disk, "p-1"));
	free(disk);
	assert_int_equal(checkpoint_recover(b), 0);
	assert_int_equal(b->durable.wal.seq, 0);
	assert_int_equal(b->durable.wal.gen, 1);
	assert_int_equal(b->durable.checkpoints, 1);
	after = dump_broker(b);
	assert_string_equal(before, after);
	free(before);
	free(after);
	checkpoint_close(b);
	fixture_free(fx);
}

static void
put(struct store *st, MDB_txn *txn, MDB_dbi dbi, const char *k,
    const char *v, unsigned flags, int want)
{
	MDB_val kv = { strlen(k), (void *)k }, vv = { strlen(v), (void *)v };

	assert_int_equal(store_put(st, txn, dbi, &kv, &vv, flags), want);
}

/*
 * The changes recorded while writing one store, applied to a copy of its
 * earlier state, give the same store: puts, overwrites, deletes, cursor
 * writes; a put refused with MDB_KEYEXIST is not recorded.
 */
static void
test_redo_rebuilds_the_store(void **state)
{
	struct fixture *a = fixture_new(16), *b = fixture_new(16);
	struct redo r = { .max = 1 << 20 };
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	char *da, *db;

	redo_clear(&r);
	a->b.st.redo = &r;
	assert_int_equal(mdb_txn_begin(a->b.st.env, NULL, 0, &txn), 0);
	put(&a->b.st, txn, a->b.st.meta, "k1", "one", 0, 0);
	put(&a->b.st, txn, a->b.st.meta, "k2", "two", 0, 0);
	put(&a->b.st, txn, a->b.st.meta, "k1", "uno", 0, 0);
	put(&a->b.st, txn, a->b.st.meta, "k2", "dos", MDB_NOOVERWRITE, MDB_KEYEXIST);
	put(&a->b.st, txn, a->b.st.log, "a", "x", MDB_APPEND, 0);
	put(&a->b.st, txn, a->b.st.log, "b", "y", MDB_APPEND, 0);
	put(&a->b.st, txn, a->b.st.mbox, "m1", "i1", 0, 0);
	put(&a->b.st, txn, a->b.st.mbox, "m2", "i2", 0, 0);
	k.mv_size = 2;
	k.mv_data = "k2";
	assert_int_equal(store_del(&a->b.st, txn, a->b.st.meta, &k), 0);
	assert_int_equal(store_del(&a->b.st, txn, a->b.st.meta, &k), MDB_NOTFOUND);
	assert_int_equal(mdb_cursor_open(txn, a->b.st.mbox, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
	assert_int_equal(store_cursor_del(&a->b.st, cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT), 0);
	v.mv_size = 3;
	v.mv_data = "new";
	assert_int_equal(store_cursor_put(&a->b.st, cur, &k, &v, MDB_CURRENT), 0);
	mdb_cursor_close(cur);
	assert_int_equal(mdb_txn_commit(txn), 0);
	a->b.st.redo = NULL;
	assert_false(redo_empty(&r));
	assert_false(r.overflow);

	/* Applied to b, which began as a did (two fresh fixtures). */
	assert_int_equal(mdb_txn_begin(b->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(redo_apply(txn, r.buf + WAL_RECORD_HDR,
	    redo_payload_len(&r)), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	da = dump_tables(&a->b.st);
	db = dump_tables(&b->b.st);
	assert_string_equal(da, db);
	assert_non_null(strstr(da, "uno"));
	assert_null(strstr(da, "dos"));
	assert_non_null(strstr(da, "m2=new"));

	/* A delete that finds nothing: not the state the record follows. */
	redo_clear(&r);
	k.mv_size = 7;
	k.mv_data = "missing";
	redo_add(&r, a->b.st.meta, &k, NULL);
	assert_int_equal(mdb_txn_begin(b->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(redo_apply(txn, r.buf + WAL_RECORD_HDR,
	    redo_payload_len(&r)), MDB_CORRUPTED);
	/* Bytes that are not operations are refused. */
	assert_int_equal(redo_apply(txn, (const unsigned char *)"\x01\x02\x00",
	    3), MDB_CORRUPTED);
	assert_int_equal(redo_apply(txn, (const unsigned char *)"\x09\x02\x00\x00"
	    "\x00\x00", 6), MDB_CORRUPTED);
	mdb_txn_abort(txn);
	free(da);
	free(db);
	redo_free(&r);
	fixture_free(a);
	fixture_free(b);
}

/*
 * A relaisd of the next store format does not upgrade a store whose log
 * holds records of the older one: only the older relaisd can apply them.
 */
static void
test_upgrade_waits_for_the_older_log(void **state)
{
	struct fixture *fx = fixture_new(16);
	const char *dir = fx->b.cfg->data_dir;
	char err[1200], path[600];
	uint64_t format;
	MDB_txn *txn;
	struct wal w;

	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, 0, &txn), 0);
	assert_int_equal(store_put_u64(&fx->b.st, txn, fx->b.st.meta, "format",
	    6, STORE_FORMAT - 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	store_close(&fx->b.st);
	/* What the older relaisd acknowledged: generation 0, its layout. */
	assert_int_equal(wal_open(&w, dir, 1, LAYOUT, err, sizeof(err)), 0);
	assert_int_equal(wal_scan(&w, 0, 0, NULL, NULL), 0);
	append(&w, 10, 'a');
	wal_close(&w);
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "start that relaisd once and stop it"));

	/* Its log applied and gone, the upgrade goes on. */
	snprintf(path, sizeof(path), "%s/%s", dir, WAL_FILE);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_open(&fx->b.st, dir, 16, false, err, sizeof(err)),
	    0);
	assert_int_equal(mdb_txn_begin(fx->b.st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_get_u64(txn, fx->b.st.meta, "format", 6, &format),
	    0);
	mdb_txn_abort(txn);
	assert_int_equal(format, STORE_FORMAT);
	fixture_free(fx);
}

/* Past its bound the buffer stops growing and says so. */
static void
test_redo_overflow(void **state)
{
	struct redo r = { .max = WAL_RECORD_HDR + 30 };
	MDB_val k = { 4, "abcd" }, v = { 8, "12345678" };

	redo_clear(&r);
	assert_true(redo_empty(&r));
	redo_add(&r, 3, &k, &v);
	assert_int_equal(redo_payload_len(&r), 2 + 4 + 4 + 4 + 8);
	redo_add(&r, 3, &k, &v);
	assert_true(r.overflow);
	assert_false(redo_empty(&r));
	redo_clear(&r);
	assert_true(redo_empty(&r));
	redo_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_records_read_back_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_is_dropped_and_appends_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_record_stops_the_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_generation_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_layout_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_log_refuses_append, setup, teardown),
		cmocka_unit_test(test_redo_rebuilds_the_store),
		cmocka_unit_test(test_passes_replayed_after_a_crash),
		cmocka_unit_test(test_upgrade_waits_for_the_older_log),
		cmocka_unit_test(test_redo_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
