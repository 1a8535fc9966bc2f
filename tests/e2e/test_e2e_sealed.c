/*
 * End to end, sealed contact details (SPEC §2.6): a mediator seals a
 * person's phone number to the Mission locale's key; the Mission locale,
 * and only it, reads it; the broker's store, log, backup and every query
 * reply never hold it in clear; an altered box is reported and the
 * listener goes on; the contact survives SIGKILL and redelivery; erasure
 * and retention take the sealed bytes away, queued and dead-lettered
 * deliveries included; the person's file on the target's dashboard, and
 * only there, shows the contact opened (in headless Chromium too); after
 * the target's key is replaced, its old key still opens older contacts.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "alerts_util.h"
#include "contact.h"
#include "dash_http.h"
#include "harness.h"
#include "relais_proto.h"

#define PHONE "0033612345678"   /* 13 digits: a NIR in clear, fine sealed */
#define NAME  "Awa Diallo"
#define CONTACT_SCRIPT "tests/e2e/dashboard_contact.py"
#define BROWSER_S      180     /* Chromium's start-up is slow under load */

/* ------------------------------------------------------------------ */
/* Looking for the plaintext                                           */

/* Everything a shell command prints, stderr included (malloc'd). */
static char *
shell(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
shell(int *status, const char *fmt, ...)
{
	char cmd[2048], *out = NULL;
	size_t len = 0, n;
	char chunk[65536];
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	e2e_assert(p != NULL, "cannot run %s: %s", cmd, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		char *grown = realloc(out, len + n + 1);

		e2e_assert(grown != NULL, "out of memory");
		out = grown;
		memcpy(out + len, chunk, n);
		len += n;
	}
	st = pclose(p);
	if (out == NULL)
		out = calloc(1, 1);
	out[len] = '\0';
	if (status != NULL)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

static const char *
bin(void)
{
	const char *d = getenv("RELAIS_BIN");

	return d != NULL && *d != '\0' ? d : "bin";
}

/* The whole file's bytes; *len its size. */
static char *
file_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long size;

	e2e_assert(f != NULL, "cannot open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size + 1);
	e2e_assert(buf != NULL && fread(buf, 1, (size_t)size, f) == (size_t)size,
	    "cannot read %s", path);
	fclose(f);
	*len = (size_t)size;
	return buf;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, p, n);
}

/*
 * The needle is not in the store at dir: not in mdb_dump of every table,
 * printable or hex, nor anywhere in the raw bytes of data.mdb or wal.log.
 */
static void
store_lacks(const char *dir, const char *needle)
{
	char path[600], needle_hex[256];
	char *dump_p, *dump_x, *raw;
	size_t len;
	int st;

	hex((const unsigned char *)needle, strlen(needle), needle_hex);
	dump_p = shell(&st, "mdb_dump -a -p %s 2>&1", dir);
	e2e_assert(st == 0, "mdb_dump -p %s failed: %s", dir, dump_p);
	dump_x = shell(&st, "mdb_dump -a %s 2>&1", dir);
	e2e_assert(st == 0, "mdb_dump %s failed: %s", dir, dump_x);
	e2e_assert(strstr(dump_x, "log") != NULL, "mdb_dump shows no log table");
	e2e_assert(strstr(dump_p, needle) == NULL, "mdb_dump -p of %s holds %s",
	    dir, needle);
	e2e_assert(strstr(dump_x, needle_hex) == NULL, "mdb_dump of %s holds %s",
	    dir, needle);
	for (int i = 0; i < 2; i++) {
		/* wal.log: what a broker with durability = wal has not checkpointed. */
		snprintf(path, sizeof(path), "%s/%s", dir, i == 0 ? "data.mdb" :
		    "wal.log");
		if (i == 1 && access(path, F_OK) != 0)
			break;
		raw = file_bytes(path, &len);
		e2e_assert(memmem(raw, len, needle, strlen(needle)) == NULL,
		    "the bytes of %s hold %s", path, needle);
		free(raw);
	}
	free(dump_p);
	free(dump_x);
}

/*
 * The store at dir holds these bytes (the sealed box), in its raw bytes or
 * as mdb_dump shows it: the search can see.  dir is a copy made by
 * relaisd --backup (take_backup), which holds every acknowledged change
 * whatever the durability (a running broker's data.mdb lacks the latest
 * with durability = wal until a checkpoint), and, being rewritten, none of
 * the freed pages where a live data.mdb keeps old bytes.
 */
static bool
store_holds(const char *dir, const unsigned char *p, size_t n)
{
	char path[600], *raw, *dump, want[2 * RL_CONTACT_MAX_BOX + 1];
	size_t len;
	bool in_raw, in_dump;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	raw = file_bytes(path, &len);
	in_raw = memmem(raw, len, p, n) != NULL;
	free(raw);
	hex(p, n, want);
	dump = shell(NULL, "mdb_dump -a %s 2>&1", dir);
	in_dump = strstr(dump, want) != NULL;
	free(dump);
	e2e_assert(in_raw || !in_dump, "mdb_dump shows bytes data.mdb lacks");
	return in_raw || in_dump;
}

/* relaisd --backup of the running broker into DIR/name (its path in dir). */
static void
take_backup(struct e2e_broker *b, const char *name, char dir[600])
{
	char *out;
	int st;

	snprintf(dir, 600, "%s/%s", b->dir, name);
	out = shell(&st, "%s/relaisd -c %s --backup %s 2>&1", bin(), b->conf, dir);
	e2e_assert(st == 0, "relaisd --backup: %s", out);
	free(out);
}

/*
 * What the operator of the demo checks: a backup of the running broker is
 * taken into DIR/name (its path in backup), then none of the needles is
 * in the store, the backup or the broker's log.
 */
static void
nowhere_in_broker(struct e2e_broker *b, const char *name,
    const char *const *needles, char backup[600])
{
	char *log;

	take_backup(b, name, backup);
	log = e2e_log_read(b);
	for (int i = 0; needles[i] != NULL; i++) {
		store_lacks(b->data, needles[i]);
		store_lacks(backup, needles[i]);
		e2e_assert(strstr(log, needles[i]) == NULL, "the log holds %s",
		    needles[i]);
	}
	free(log);
}

/*
 * The box is in the store as the broker acknowledged it: looked for in a
 * fresh backup named name, which also holds what a broker with durability
 * = wal has not checkpointed into data.mdb yet.
 */
static bool
copy_holds(struct e2e_broker *b, const char *name, const unsigned char *p,
    size_t n)
{
	char dir[600];

	take_backup(b, name, dir);
	return store_holds(dir, p, n);
}

/* The box a JSON event carries after relais_submit() sealed it. */
static size_t
box_of(const json_t *ev, unsigned char box[RL_CONTACT_MAX_BOX + 3])
{
	const char *b64 = jstr(ev, "contact");
	size_t len;

	e2e_assert(b64 != NULL, "the event's contact was not sealed: %s",
	    e2e_json_str(ev));
	e2e_assert(sodium_base642bin(box, RL_CONTACT_MAX_BOX + 3, b64, strlen(b64),
	    NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0,
	    "contact is not base64: %s", b64);
	return len;
}

static json_t *
details(const char *phone)
{
	return json_pack("{s:s, s:s, s:s}", "name", NAME, "phone", phone,
	    "best_time", "après 17 h");
}

static json_t *
sealed_referral(const char *event_id, const char *participant,
    const char *referral, const char *to, const char *phone)
{
	json_t *ev = e2e_ev_referral(event_id, participant, referral, to);

	json_object_set_new(ev, "contact", details(phone));
	return ev;
}

/* Submit ev (kept: the caller reads its sealed contact); the result. */
static json_t *
submit_kept(relais_client *c, json_t *ev)
{
	json_t *r = NULL;

	e2e_assert(relais_submit(c, &ev, 1, &r, 30000) == 0, "submit: %s",
	    relais_errmsg(c));
	return r;
}

static void
expect_opened(const json_t *delivery, const char *phone)
{
	const json_t *ev = json_object_get(delivery, "event");
	const json_t *contact = json_object_get(ev, "contact");

	e2e_assert(json_is_object(contact), "no opened contact in %s%s%s",
	    e2e_json_str(delivery), jstr(ev, "contact_error") ? ": " : "",
	    jstr(ev, "contact_error") ? jstr(ev, "contact_error") : "");
	e2e_assert_str(phone, jstr(contact, "phone"), "opened phone");
	e2e_assert_str(NAME, jstr(contact, "name"), "opened name");
}

/* A delivery of an erased referral: no box, nothing to open. */
static void
expect_no_contact(const json_t *delivery, const char *what)
{
	const json_t *ev = json_object_get(delivery, "event");

	e2e_assert(json_object_get(ev, "contact") == NULL &&
	    json_object_get(ev, "contact_error") == NULL,
	    "%s is delivered with its contact: %s", what, e2e_json_str(delivery));
}

/* A secret key of the test's agents, decoded. */
static void
secret_of(struct e2e_broker *b, const char *id, unsigned char sk[32])
{
	e2e_assert(zmq_z85_decode(sk, e2e_agent(b, id)->sec) != NULL,
	    "bad key of %s", id);
}

/* A query with one string argument; its data, or NULL (errmsg set). */
static json_t *
ask(relais_client *c, const char *what, const char *key, const char *value)
{
	json_t *args = json_pack("{s:s}", key, value);
	json_t *data = relais_query(c, what, args, 20000);

	json_decref(args);
	return data;
}

/* ------------------------------------------------------------------ */

/*
 * The mediator seals, the Mission locale opens; the sender, a coordinator
 * and a third partner cannot; the store, the debug log, a backup, the
 * verify output and every query reply never hold the plaintext.
 */
static void
test_only_the_target_reads_the_contact(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = debug\n");
	relais_client *med, *ml, *coord, *plie;
	unsigned char box[RL_CONTACT_MAX_BOX + 3], sk[32];
	const char *others[] = { "med", "coord", "plie" };
	json_t *ev, *r, *d, *a, *pq, *h, *al, *opened;
	char why[400], out[8192], backup[600], *log;
	size_t boxlen;

	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "plie", "plie", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	plie = e2e_connect(b, "plie");

	/* Any agent learns any agent's public key and name. */
	a = ask(plie, "agent", "id", "ml");
	e2e_assert(a != NULL, "agent query: %s", relais_errmsg(plie));
	e2e_assert_str(e2e_agent(b, "ml")->pub, jstr(a, "public_key"), "ml's key");
	e2e_assert_str("Test agent ml", jstr(a, "name"), "ml's name");
	e2e_assert_str("mission_locale", jstr(a, "kind"), "ml's kind");
	json_decref(a);
	a = ask(plie, "agent", "id", "nobody");
	e2e_assert(a == NULL, "an unknown agent was described: %s", e2e_json_str(a));
	e2e_assert_int(205, relais_last_code(plie), "unknown agent's code");
	/* Its args: id, required, a string of 1 to 48 bytes, and no other. */
	{
		json_t *bad[] = { NULL, json_pack("{s:i}", "id", 7),
		    json_pack("{s:s}", "id", ""), json_pack("{s:s, s:s}", "id",
		    "ml", "ids", "ml") };
		const int code[] = { 104, 105, 105, 106 };

		for (int i = 0; i < 4; i++) {
			a = relais_query(plie, "agent", bad[i], 20000);
			e2e_assert(a == NULL, "bad agent query %d answered: %s", i,
			    e2e_json_str(a));
			e2e_assert_int(code[i], relais_last_code(plie),
			    "bad agent query's code");
			json_decref(bad[i]);
		}
	}

	ev = sealed_referral("ev-1", "p-1", "r-1", "ml", PHONE);
	r = submit_kept(med, ev);
	e2e_expect_ok(r);
	json_decref(r);
	boxlen = box_of(ev, box);

	/* The target opens it, in its delivery and in the timeline. */
	ml = e2e_connect(b, "ml");
	d = e2e_next_delivery(ml, E2E_WAIT_MS);
	expect_opened(d, PHONE);
	e2e_assert(relais_ack(ml, (uint64_t)jint(d, "seq")) == 0, "ack");
	json_decref(d);
	r = e2e_submit1(ml, e2e_ev_answer("referral.accepted", "ev-2", "p-1", "r-1"));
	e2e_expect_ok(r);
	json_decref(r);
	pq = ask(ml, "participant", "id", "p-1");
	e2e_assert(pq != NULL, "ml's participant query: %s", relais_errmsg(ml));
	e2e_assert_str(PHONE, jstr(json_object_get(json_array_get(
	    json_object_get(pq, "timeline"), 0), "contact"), "phone"),
	    "the target's timeline opens the contact");
	json_decref(pq);

	/* Nobody else gets the box from a query, or could open it. */
	coord = e2e_connect(b, "coord");
	for (int i = 0; i < 2; i++) {
		relais_client *c = i == 0 ? med : coord;
		const json_t *first;

		pq = ask(c, "participant", "id", "p-1");
		e2e_assert(pq != NULL, "participant query: %s", relais_errmsg(c));
		first = json_array_get(json_object_get(pq, "timeline"), 0);
		e2e_assert_str("referral.sent", jstr(first, "type"), "timeline[0]");
		e2e_assert(json_object_get(first, "contact") == NULL &&
		    json_object_get(first, "contact_error") == NULL,
		    "%s's timeline carries the contact: %s", i == 0 ? "med" : "coord",
		    e2e_json_str(first));
		json_decref(pq);
	}
	for (size_t i = 0; i < 3; i++) {
		secret_of(b, others[i], sk);
		opened = contact_open(box, boxlen, (const unsigned char (*)[32])&sk, 1,
		    why, sizeof(why));
		e2e_assert(opened == NULL, "%s opened the contact", others[i]);
	}
	secret_of(b, "ml", sk);
	opened = contact_open(box, boxlen, (const unsigned char (*)[32])&sk, 1,
	    why, sizeof(why));
	e2e_assert(opened != NULL, "ml cannot open the box: %s", why);
	json_decref(opened);

	/* Query replies hold no plaintext. */
	h = relais_query(coord, "health", NULL, 20000);
	al = ask(coord, "alerts", "status", "all");
	e2e_assert(h != NULL && al != NULL, "coordinator's queries");
	e2e_assert(strstr(e2e_json_str(h), PHONE) == NULL, "health holds the phone");
	e2e_assert(strstr(e2e_json_str(al), PHONE) == NULL, "alerts hold the phone");
	json_decref(h);
	json_decref(al);

	/*
	 * The debug log, the store and a backup have no plaintext; the box is
	 * in the store and the backup (the search sees it), not in the log.
	 */
	log = e2e_log_read(b);
	e2e_assert(strstr(log, "delivery.sent") != NULL, "the log is not at debug");
	e2e_assert(strstr(log, jstr(ev, "contact")) == NULL, "the log holds the box");
	free(log);
	nowhere_in_broker(b, "backup", (const char *const[]){ PHONE, NAME, NULL },
	    backup);
	e2e_assert(store_holds(backup, box, boxlen), "the box is not in the backup");
	e2e_assert_int(0, e2e_verify(b, out, sizeof(out)), "verify");
	e2e_assert(strstr(out, PHONE) == NULL, "verify prints the phone");

	json_decref(ev);
	relais_close(&med);
	relais_close(&ml);
	relais_close(&coord);
	relais_close(&plie);
}

/* A copy of a freshly sealed box with one byte changed, as base64. */
static char *
altered_box(const char *pub_z85, size_t cut)
{
	unsigned char pk[32], box[RL_CONTACT_MAX_BOX + 3];
	json_t *sealed, *d = details(PHONE);
	char err[256], *b64;
	size_t len, size;

	e2e_assert(zmq_z85_decode(pk, pub_z85) != NULL, "bad key");
	sealed = contact_seal(d, pk, err, sizeof(err));
	e2e_assert(sealed != NULL, "seal: %s", err);
	e2e_assert(sodium_base642bin(box, sizeof(box), json_string_value(sealed),
	    json_string_length(sealed), NULL, &len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0, "base64");
	if (cut > 0)
		len = cut;
	else
		box[len / 2] ^= 0x20;
	size = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(size);
	sodium_bin2base64(b64, size, box, len, sodium_base64_VARIANT_ORIGINAL);
	json_decref(sealed);
	json_decref(d);
	return b64;
}

/*
 * The relais command: --contact on the command line and a "contact"
 * object on stdin are sealed; `relais listen` prints them opened, reports
 * an altered box and one cut short on stderr, acknowledges all of them
 * and goes on.  The NIR check still applies to every clear field.
 */
static void
test_cli_seals_and_listen_opens(void **state)
{
	struct e2e_broker *b = e2e_broker_new("log_level = debug\n");
	static const char *const clear[] = {
		"event_id", "participant", "referral", "to", "purpose",
	};
	char env[2048], lines[600], *altered, *cut, *out, *err, errpath[600],
	    backup[600];
	relais_client *med, *ops;
	json_t *ev, *r;
	int st;

	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	snprintf(env, sizeof(env), "RELAIS_ENDPOINT=%s RELAIS_SERVER_KEY=%s/broker.pub",
	    b->endpoint, b->dir);

	out = shell(&st, "%s RELAIS_KEY=%s/agent-med %s/relais send referral.sent "
	    "participant=p-1 referral=r-1 to=ml purpose=cej --contact name='%s' "
	    "phone=0612345678 2>&1", env, b->dir, bin(), NAME);
	e2e_assert(st == 0 && strstr(out, "\"ok\"") != NULL, "send --contact: %s", out);
	free(out);
	/* A detail that is not one, refused before anything is sent. */
	out = shell(&st, "%s RELAIS_KEY=%s/agent-med %s/relais send referral.sent "
	    "participant=p-9 referral=r-9 to=ml purpose=cej --contact fax=0247 2>&1",
	    env, b->dir, bin());
	e2e_assert(st == 1 && strstr(out, "contact.fax is not a contact detail"),
	    "an unknown detail: %s", out);
	free(out);

	altered = altered_box(e2e_agent(b, "ml")->pub, 0);
	cut = altered_box(e2e_agent(b, "ml")->pub, 60);
	snprintf(lines, sizeof(lines), "%s/lines.jsonl", b->dir);
	{
		FILE *f = fopen(lines, "w");

		e2e_assert(f != NULL, "cannot write %s", lines);
		fprintf(f, "{\"type\":\"referral.sent\",\"occurred_at\":\"2026-11-27T09:30:00Z\","
		    "\"participant\":\"p-2\",\"referral\":\"r-2\",\"to\":\"ml\","
		    "\"purpose\":\"cej\",\"contact\":{\"name\":\"%s\",\"phone\":\"%s\"}}\n",
		    NAME, PHONE);
		fprintf(f, "{\"type\":\"referral.sent\",\"occurred_at\":\"2026-11-27T09:30:00Z\","
		    "\"participant\":\"p-3\",\"referral\":\"r-3\",\"to\":\"ml\","
		    "\"purpose\":\"cej\",\"contact\":\"%s\"}\n", altered);
		fprintf(f, "{\"type\":\"referral.sent\",\"occurred_at\":\"2026-11-27T09:30:00Z\","
		    "\"participant\":\"p-4\",\"referral\":\"r-4\",\"to\":\"ml\","
		    "\"purpose\":\"cej\",\"contact\":\"%s\"}\n", cut);
		fclose(f);
	}
	out = shell(&st, "%s RELAIS_KEY=%s/agent-med %s/relais send < %s 2>&1", env,
	    b->dir, bin(), lines);
	e2e_assert(st == 0, "send from stdin: %s", out);
	free(out);

	/*
	 * The NIR check: not inside the box (PHONE has 13 digits, and the
	 * referrals above were recorded), but in every clear field.
	 */
	med = e2e_connect(b, "med");
	/* Sealed to ml's key: the library cannot ask the broker for its key. */
	e2e_assert(relais_pin_agent_key(med, "1850578006084",
	    e2e_agent(b, "ml")->pub) == 0, "pin: %s", relais_errmsg(med));
	for (size_t i = 0; i < sizeof(clear) / sizeof(clear[0]); i++) {
		ev = sealed_referral("ev-5", "p-5", "r-5", "ml", PHONE);
		json_object_set_new(ev, clear[i], json_string(
		    strcmp(clear[i], "purpose") == 0 ? "NIR 1 85 05 78 006 084 36" :
		    "1850578006084"));
		r = submit_kept(med, ev);
		e2e_expect_error(r, 201, clear[i]);
		json_decref(r);
		json_decref(ev);
	}
	/* A box shorter than any sealed box is refused by the broker. */
	ev = e2e_ev_referral("ev-6", "p-6", "r-6", "ml");
	json_object_set_new(ev, "contact", json_string("AAECAwQFBgcICQ=="));
	r = submit_kept(med, ev);
	e2e_expect_error(r, 105, "contact");
	json_decref(r);
	json_decref(ev);
	relais_close(&med);

	snprintf(errpath, sizeof(errpath), "%s/listen.err", b->dir);
	out = shell(&st, "%s RELAIS_KEY=%s/agent-ml %s/relais listen --count 4 "
	    "--timeout-ms 20000 2> %s", env, b->dir, bin(), errpath);
	err = e2e_read_file(errpath);
	e2e_assert(st == 0, "listen exited %d: %s", st, err);
	e2e_assert(strstr(out, "\"phone\":\"0612345678\"") != NULL,
	    "listen does not show the --contact phone: %s", out);
	e2e_assert(strstr(out, "\"phone\":\"" PHONE "\"") != NULL,
	    "listen does not show the stdin contact's phone: %s", out);
	e2e_assert(strstr(out, "\"contact_error\"") != NULL, "no contact_error: %s", out);
	e2e_assert(strstr(err, "delivery 3 (referral r-3): the sealed contact "
	    "cannot be opened") != NULL, "no report of the altered box: %s", err);
	e2e_assert(strstr(err, "delivery 4 (referral r-4)") != NULL,
	    "no report of the box cut short: %s", err);
	ops = e2e_connect(b, "ops");
	au_wait_backlog(ops, "ml", 0);
	relais_close(&ops);

	/* The demo's check: the terminal showed them, the broker holds none. */
	nowhere_in_broker(b, "backup", (const char *const[]){ "0612345678",
	    PHONE, NAME, NULL }, backup);
	free(out);
	free(err);
	free(altered);
	free(cut);
}

/*
 * A sealed contact survives SIGKILL and is delivered again, still
 * openable; sealing the same details again under the same event_id is a
 * duplicate, not a conflict.
 */
static void
test_contact_survives_kill_and_redelivery(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	relais_client *med, *ml;
	json_t *ev, *again, *r, *d;
	long long seq;

	b->keep_port = true;
	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	ev = sealed_referral("ev-1", "p-1", "r-1", "ml", PHONE);
	r = submit_kept(med, ev);
	e2e_expect_ok(r);
	seq = jint(r, "seq");
	json_decref(r);

	/* Received, not acknowledged, then the broker dies. */
	ml = e2e_connect(b, "ml");
	d = e2e_next_delivery(ml, E2E_WAIT_MS);
	expect_opened(d, PHONE);
	json_decref(d);
	relais_close(&ml);
	e2e_kill(b);
	e2e_start(b);

	ml = e2e_connect(b, "ml");
	d = e2e_next_delivery(ml, E2E_WAIT_MS);
	expect_opened(d, PHONE);
	e2e_assert_int(seq, jint(json_object_get(d, "event"), "log_seq"), "log_seq");
	e2e_assert(relais_ack(ml, (uint64_t)jint(d, "seq")) == 0, "ack");
	json_decref(d);

	/* Sealed again: other bytes, the same event. */
	again = sealed_referral("ev-1", "p-1", "r-1", "ml", PHONE);
	json_object_set(again, "occurred_at", json_object_get(ev, "occurred_at"));
	r = submit_kept(med, again);
	e2e_expect_dup(r);
	e2e_assert_int(seq, jint(r, "seq"), "the duplicate's seq");
	e2e_assert(strcmp(jstr(ev, "contact"), jstr(again, "contact")) != 0,
	    "two sealings gave the same box");
	json_decref(r);
	json_decref(again);
	json_decref(ev);
	relais_close(&med);
	relais_close(&ml);
}

/*
 * Erasure removes the sealed bytes from the log record, which queued and
 * dead-lettered deliveries name: the dead letter and the delivery still
 * waiting carry no contact, and the store no longer holds either box.
 * Retention does the same by itself.
 */
static void
test_erasure_and_retention_remove_the_contact(void **state)
{
	struct e2e_broker *b = e2e_broker_new("manual_clock = yes\n"
	    "redeliver_ms = 100\nredeliver_max_ms = 100\nmax_attempts = 2\n");
	unsigned char box1[RL_CONTACT_MAX_BOX + 3], box2[RL_CONTACT_MAX_BOX + 3],
	    box3[RL_CONTACT_MAX_BOX + 3];
	size_t len1, len2, len3;
	relais_client *med, *coord, *plie, *ops, *ml;
	struct e2e_raw *raw;
	json_t *ev[3], *r, *w, *d;

	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "plie", "plie", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	med = e2e_connect(b, "med");
	ev[0] = sealed_referral("ev-1", "p-1", "r-1", "ml", PHONE);
	ev[1] = sealed_referral("ev-2", "p-1", "r-2", "plie", PHONE);
	ev[2] = sealed_referral("ev-3", "p-2", "r-3", "plie", "0699999999");
	for (int i = 0; i < 3; i++) {
		r = submit_kept(med, ev[i]);
		e2e_expect_ok(r);
		json_decref(r);
	}
	len1 = box_of(ev[0], box1);
	len2 = box_of(ev[1], box2);
	len3 = box_of(ev[2], box3);

	/* ml never acknowledges: its delivery goes to the dead letters. */
	raw = e2e_raw_open(b, "ml", NULL);
	w = e2e_raw_hello(raw, 1);
	json_decref(w);
	e2e_log_wait(b, "delivery.dead_lettered", "\"ml\"");
	e2e_raw_close(&raw);
	e2e_assert(copy_holds(b, "copy-1", box1, len1), "box 1 is not in the store");

	coord = e2e_connect(b, "coord");
	r = e2e_submit1(coord, json_pack("{s:s, s:s, s:I, s:s}", "event_id", "er-1",
	    "type", "participant.erased", "occurred_at", (json_int_t)rl_wall_ms(),
	    "participant", "p-1"));
	e2e_expect_ok(r);
	json_decref(r);
	e2e_assert(!copy_holds(b, "copy-2", box1, len1), "erasure left the "
	    "dead-lettered referral's box in the store");
	e2e_assert(!copy_holds(b, "copy-3", box2, len2), "erasure left the queued "
	    "referral's box in the store");
	e2e_assert(copy_holds(b, "copy-4", box3, len3), "erasure took another "
	    "person's box");

	/* The queued delivery goes out without its contact. */
	plie = e2e_connect(b, "plie");
	d = e2e_next_delivery(plie, E2E_WAIT_MS);
	expect_no_contact(d, "an erased referral");
	e2e_assert(relais_ack(plie, (uint64_t)jint(d, "seq")) == 0, "ack");
	json_decref(d);
	d = e2e_next_delivery(plie, E2E_WAIT_MS);
	expect_opened(d, "0699999999");
	e2e_assert(relais_ack(plie, (uint64_t)jint(d, "seq")) == 0, "ack");
	json_decref(d);

	/* The dead letter, requeued, goes out without its contact too. */
	ops = e2e_connect(b, "ops");
	w = json_pack("{s:s, s:s}", "action", "requeue", "agent", "ml");
	r = relais_query(ops, "deadletters", w, 20000);
	json_decref(w);
	e2e_assert(r != NULL, "requeue: %s", relais_errmsg(ops));
	e2e_assert_int(1, jint(r, "requeued"), "dead letters requeued");
	json_decref(r);
	ml = e2e_connect(b, "ml");
	d = e2e_next_delivery(ml, E2E_WAIT_MS);
	e2e_assert_str("referral.sent", jstr(json_object_get(d, "event"), "type"),
	    "the requeued dead letter");
	expect_no_contact(d, "an erased dead letter");
	e2e_assert(relais_ack(ml, (uint64_t)jint(d, "seq")) == 0, "ack");
	json_decref(d);
	relais_close(&ml);

	/* Retention: two years without activity erase p-2 and its box. */
	au_clock_advance(ops, 731LL * 86400000);
	e2e_log_wait(b, "participant.erased", "\"relais\"");
	e2e_assert(!copy_holds(b, "copy-5", box3, len3), "retention left the box");

	for (int i = 0; i < 3; i++)
		json_decref(ev[i]);
	relais_close(&med);
	relais_close(&coord);
	relais_close(&plie);
	relais_close(&ops);
}

/*
 * Key rotation (PROTOCOL §6.1): a contact sealed to the Mission locale's
 * old key (the sender pinned it with --contact-key) waits while the key
 * is replaced; the broker refuses nothing; `relais listen` with the new
 * key opens it with RELAIS_PREVIOUS_KEYS, and one sealed after the
 * rotation with the new key the broker gives; without the old key, an
 * old box is reported unopenable and acknowledged.
 */
static void
test_rotated_key_opens_older_contacts(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	struct e2e_agent *ml, *fresh;
	char env[2048], *out, *err, errpath[600];
	relais_client *ops;
	int st;

	e2e_agent_add(b, "med", "mediator", true);
	ml = e2e_agent_add(b, "ml", "mission_locale", true);
	fresh = e2e_agent_add(b, "ml-next", "mission_locale", false);
	e2e_agent_add(b, "ops", "operator", true);
	e2e_start(b);
	snprintf(env, sizeof(env), "RELAIS_ENDPOINT=%s RELAIS_SERVER_KEY=%s/broker.pub",
	    b->endpoint, b->dir);

	out = shell(&st, "%s RELAIS_KEY=%s/agent-med %s/relais send referral.sent "
	    "participant=p-1 referral=r-1 to=ml purpose=cej --contact name='%s' "
	    "phone=0611111111 --contact-key %s/agent-ml.pub 2>&1", env, b->dir,
	    bin(), NAME, b->dir);
	e2e_assert(st == 0 && strstr(out, "\"ok\"") != NULL, "sealed to the "
	    "pinned key: %s", out);
	free(out);

	memcpy(ml->pub, fresh->pub, sizeof(ml->pub));
	memcpy(ml->sec, fresh->sec, sizeof(ml->sec));
	e2e_reload(b);
	for (int i = 2; i <= 3; i++) {
		/* r-2 sealed to the key the broker now gives, r-3 to the old one. */
		out = shell(&st, "%s RELAIS_KEY=%s/agent-med %s/relais send "
		    "referral.sent participant=p-%d referral=r-%d to=ml purpose=cej "
		    "--contact phone=06%08d %s%s%s 2>&1", env, b->dir, bin(), i, i,
		    i * 11111111, i == 3 ? "--contact-key " : "", i == 3 ? b->dir : "",
		    i == 3 ? "/agent-ml.pub" : "");
		e2e_assert(st == 0 && strstr(out, "\"ok\"") != NULL, "r-%d: %s",
		    i, out);
		free(out);
	}

	snprintf(errpath, sizeof(errpath), "%s/listen.err", b->dir);
	out = shell(&st, "%s RELAIS_KEY=%s/agent-ml-next RELAIS_PREVIOUS_KEYS=%s/"
	    "agent-ml.key %s/relais listen --count 2 --timeout-ms 20000 2> %s",
	    env, b->dir, b->dir, bin(), errpath);
	err = e2e_read_file(errpath);
	e2e_assert(st == 0 && strstr(out, "\"phone\":\"0611111111\"") != NULL &&
	    strstr(out, "\"phone\":\"0622222222\"") != NULL, "listen with the "
	    "previous key: %s%s", out, err);
	free(out);
	free(err);
	out = shell(&st, "%s RELAIS_KEY=%s/agent-ml-next %s/relais listen --count 1 "
	    "--timeout-ms 20000 2> %s", env, b->dir, bin(), errpath);
	err = e2e_read_file(errpath);
	e2e_assert(st == 0 && strstr(out, "\"contact_error\"") != NULL &&
	    strstr(out, "0633333333") == NULL && strstr(err, "delivery 3 "
	    "(referral r-3): the sealed contact cannot be opened") != NULL,
	    "listen without the previous key: %s%s", out, err);
	free(out);
	free(err);
	ops = e2e_connect(b, "ops");
	au_wait_backlog(ops, "ml", 0);
	relais_close(&ops);
}

/*
 * The person's file p-1 as headless Chromium shows it on the dashboard at
 * port (tests/e2e/dashboard_contact.py): the opened contact of referral
 * r-1 on the target's dashboard, no contact table on another's.
 */
static void
browser_check(int port, const char *token, bool target)
{
	char *out, *line;
	const char *text;
	json_t *seen, *contacts;
	int st;

	e2e_assert(access(CONTACT_SCRIPT, R_OK) == 0, "%s not found: run the "
	    "tests from the repository's top folder", CONTACT_SCRIPT);
	out = shell(&st, "timeout %d /usr/bin/python3 %s "
	    "'http://127.0.0.1:%d/?%s' p-1 2>&1", BROWSER_S, CONTACT_SCRIPT,
	    port, token);
	line = strstr(out, "{\"referrals\"");
	e2e_assert(st == 0 && line != NULL, "Chromium on the dashboard (exit "
	    "%d; make deps installs python3-selenium, chromium, "
	    "chromium-driver): %s", st, out);
	seen = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
	e2e_assert(seen != NULL, "not JSON: %s", line);
	e2e_assert_int(1, jint(seen, "referrals"), "referral rows on the page");
	contacts = json_object_get(seen, "contacts");
	text = json_string_value(json_object_get(contacts, "r-1"));
	if (target)
		e2e_assert(text != NULL && strstr(text, PHONE) != NULL &&
		    strstr(text, NAME) != NULL, "the target's page does not "
		    "show the contact: %s", out);
	else
		e2e_assert(json_object_size(contacts) == 0, "another agent's "
		    "page shows a contact: %s", out);
	json_decref(seen);
	free(out);
}

/*
 * `relais dashboard` runs with its agent's key: the person's file it
 * serves holds the opened contact on the target's dashboard only, not on
 * the sender's or a coordinator's (the broker gives them no box); so
 * does `relais participant`.
 */
static void
test_only_the_targets_dashboard_shows_the_contact(void **state)
{
	struct e2e_broker *b = e2e_broker_new(NULL);
	static const char *const readers[] = { "ml", "med", "coord" };
	relais_client *med, *ml;
	char token[128], path[256], resp[32768];
	struct au_cli dash, cli;
	int port, code;

	e2e_agent_add(b, "med", "mediator", true);
	e2e_agent_add(b, "ml", "mission_locale", true);
	e2e_agent_add(b, "coord", "coordinator", true);
	e2e_start(b);
	med = au_connect_quiet(b, "med");
	ml = au_connect_quiet(b, "ml");
	au_submit_ok(med, au_ev_identified("id-1", "p-1", "sanitas",
	    au_broker_now(med)));
	au_submit_ok(med, sealed_referral("ev-1", "p-1", "r-1", "ml", PHONE));
	au_submit_ok(ml, e2e_ev_answer("referral.accepted", "ev-2", "p-1", "r-1"));

	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		bool target = strcmp(readers[i], "ml") == 0;

		dash_start(b, readers[i], &dash, &port, token, sizeof(token));
		snprintf(path, sizeof(path), "/api/participant?id=p-1&%s", token);
		code = dash_http_get(port, path, resp, sizeof(resp));
		e2e_assert(code == 200, "%s's dashboard, the person's file: %s",
		    readers[i], resp);
		e2e_assert(strstr(resp, "\"referral.sent\"") != NULL, "%s's "
		    "dashboard: no referral in the file: %s", readers[i], resp);
		if (target)
			e2e_assert(strstr(resp, PHONE) != NULL &&
			    strstr(resp, NAME) != NULL, "the target's dashboard "
			    "does not show the opened contact: %s", resp);
		else
			e2e_assert(strstr(resp, PHONE) == NULL &&
			    strstr(resp, "\"contact") == NULL, "%s's dashboard "
			    "shows the contact: %s", readers[i], resp);
		if (i < 2)
			browser_check(port, token, target);
		/* And `relais participant`, the same file on a terminal. */
		au_cli_run(b, readers[i], &cli, "participant", "p-1", NULL);
		e2e_assert(cli.status == 0, "relais participant: %s", cli.err);
		e2e_assert(target == (strstr(cli.out, "phone=" PHONE) != NULL),
		    "%s's relais participant: %s", readers[i], cli.out);
		au_cli_free(&cli);
		kill(dash.pid, SIGTERM);
		au_cli_wait(&dash, AU_CLI_MS);
		e2e_assert(dash.status == 0, "%s's dashboard exited %d after "
		    "SIGTERM", readers[i], dash.status);
		au_cli_free(&dash);
	}
	relais_close(&med);
	relais_close(&ml);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_only_the_target_reads_the_contact,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_cli_seals_and_listen_opens,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_contact_survives_kill_and_redelivery,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_erasure_and_retention_remove_the_contact,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_only_the_targets_dashboard_shows_the_contact,
		    e2e_teardown),
		cmocka_unit_test_teardown(test_rotated_key_opens_older_contacts,
		    e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
