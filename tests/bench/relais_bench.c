/*
 * relais-bench: how fast the relais broker acknowledges and routes events,
 * and what a million participants cost it.
 *
 *   relais-bench [--senders N] [--inflight K] [--events E] [--seconds S]
 *   relais-bench --participants M [--senders N] [--due D]
 *   relais-bench --participants M --report [--per-person K] [--senders N]
 *
 * Both modes build a throw-away world in a temporary folder: CURVE keys
 * for every agent, a configuration listening on tcp://127.0.0.1:* (never a
 * fixed port), and a fresh LMDB store.  They start the real relaisd from
 * $RELAIS_BIN (default: the folder of this program) and drive it over the
 * wire, as agents do (proto/PROTOCOL.md): raw DEALER sockets with CURVE,
 * messages packed straight into msgpack.
 *
 * Throughput mode: N sender agents (threads) keep exactly K referral.sent
 * events in flight each, in small submits topped up as their acks arrive;
 * one receiving agent takes every referral and acknowledges cumulatively.
 * The broker syncs every commit, so an ack means the event is on disk.
 *
 * Participants mode: M participant.identified events (submits of 1000,
 * several senders) each put one key in the broker's deadline index (at
 * no_referent's due time, the earliest of their rules).  A few "probe" participants are identified earlier than the
 * rest, so that moving the broker's manual clock (the operator's "clock"
 * query) makes only them due.  The broker times each sweep itself and logs
 * it at debug level ("alerts.swept", with sweep_us), so after the load it
 * is restarted at that level and its log is read back.  The broker's
 * resident memory comes from /proc/PID/status, the store's size from
 * data.mdb.
 *
 * Report mode (--report): M participants with K events each (a first
 * participant.identified, then contacts, barriers, confidence scores,
 * enrollments, employment, referrals to the receiving agent, which does
 * not collect them), dated over last calendar year and its six
 * QPVs, with the rupture rules off so that old dates open no alerts; then
 * the "report" query of that year is timed as a coordinator (totals, by
 * QPV, by month, the flows) and as an operator.
 *
 * Throughput mode ends its figures with one machine-readable line,
 *   result events_per_s=X ack_p50_ms=Y ack_p99_ms=Z cpu_us_per_event=C
 * which tests/bench/bench_peers.sh and bench_ab.sh read (C: the broker's
 * CPU time, user and system, from the first submit to the last delivery,
 * per acknowledged event).
 *
 * Exit status: 0 when every event was acknowledged (and, in throughput
 * mode, delivered), 1 when the run failed, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>
#include <zmq.h>

#include "bench_args.h"
#include "calendar.h"
#include "codec.h"
#include "keyfile.h"
#include "relais.h"
#include "relais_proto.h"
#include "rltime.h"

#define DEFAULT_SENDERS         4
#define DEFAULT_INFLIGHT        100
#define DEFAULT_EVENTS          200000
#define DEFAULT_SECONDS         10.0
#define DEFAULT_DUE             10      /* probe participants per clock step */

#define REFERRALS_PER_PERSON    4       /* referral.sent per participant */
#define RECEIVER_CREDIT         1000
#define LOAD_BATCH              RL_MAX_BATCH
#define LOAD_INFLIGHT           2       /* submits of LOAD_BATCH per sender */
#define PROBE_GROUPS            10      /* clock steps, one group due each */
#define QUERY_TIMEOUT_MS        10000
#define ACK_TIMEOUT_MS          60000   /* a submit unanswered: failure */
#define READY_TIMEOUT_MS        30000
#define STOP_TIMEOUT_MS         30000
#define SWEEP_WAIT_MS           5000
#define DRAIN_IDLE_MS           10000   /* receiver gives up after this */
#define PING_IDLE_MS            1000

#define DAY_MS                  INT64_C(86400000)
#define HOUR_MS                 INT64_C(3600000)

/* The QPVs of the demo territory, cycled through by the load. */
static const char *const qpvs[] = {
	"sanitas", "rochepinard", "europe-chateaubriand", "fontaines",
	"rives-du-cher", "maryse-bastie",
};
#define NQPVS (sizeof(qpvs) / sizeof(qpvs[0]))

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("relais-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* ------------------------------------------------------------------ */
/* The machine                                                         */

static void
cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(out, len, "unknown CPU");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) != 0 || colon == NULL)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(out, len, "%s", colon);
		break;
	}
	fclose(f);
}

/*
 * The cost of one synced write in dir, for context: every commit of the
 * broker waits for the disk at least this long.
 */
static double
fsync_ms(const char *dir)
{
	char path[PATH_MAX + 16], block[4096];
	int64_t t[15];
	int fd, n = 0;

	snprintf(path, sizeof(path), "%s/fsync-probe", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		return -1;
	memset(block, 'x', sizeof(block));
	for (int i = 0; i < 15; i++) {
		int64_t t0 = rl_mono_us();

		if (pwrite(fd, block, sizeof(block), (off_t)i * 4096) !=
		    (ssize_t)sizeof(block) || fdatasync(fd) == -1)
			break;
		t[n++] = rl_mono_us() - t0;
	}
	close(fd);
	unlink(path);
	if (n == 0)
		return -1;
	/* Median, by insertion sort: 15 numbers. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
			int64_t x = t[j];

			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return t[n / 2] / 1000.0;
}

static void
print_machine(const char *dir)
{
	char model[256];
	struct utsname u;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double fs = fsync_ms(dir);

	cpu_model(model, sizeof(model));
	if (uname(&u) == -1)
		snprintf(u.release, sizeof(u.release), "?");
	printf("machine      %ld CPUs (nproc), %s, Linux %s\n", ncpu, model,
	    u.release);
	if (fs >= 0)
		printf("disk         fdatasync of a 4 KiB write in %s: %.2f ms "
		    "(median of 15)\n", dir, fs);
}

/* ------------------------------------------------------------------ */
/* The world: keys, configuration, the broker process                  */

enum agent_role { ROLE_SENDER, ROLE_RECEIVER, ROLE_OPERATOR, ROLE_COORDINATOR };

struct agent_keys {
	char id[RL_MAX_AGENT_ID_BYTES + 1];
	char pub[41];
	char sec[41];
};

struct bench {
	/* Options. */
	int nsenders;
	int inflight;
	uint64_t events;
	double seconds;
	uint64_t participants;
	int due;
	bool keep;
	bool report;                /* report mode */
	int per_person;             /* events per participant loaded */
	const char *durability;     /* the broker's durability option */

	/* The world; dir is short enough for any file name under it. */
	char dir[1024];
	char relaisd[PATH_MAX];
	char conf[PATH_MAX];
	char log[PATH_MAX];
	char ready[PATH_MAX];
	char server_pub[41];
	struct agent_keys *senders;
	struct agent_keys receiver, operator, coordinator;
	char endpoint[256];
	pid_t pid;
	off_t log_seen;             /* bytes of the log already read */
	void *zctx;
};

static int
make_keys(struct bench *b, const char *id, struct agent_keys *k)
{
	char base[PATH_MAX], path[PATH_MAX + 8], err[256];

	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(base, sizeof(base), "%s/keys/%s", b->dir, id);
	if (keyfile_generate(base, err, sizeof(err)) == -1) {
		fail("%s", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s.pub", base);
	if (keyfile_read(path, k->pub, err, sizeof(err)) == -1) {
		fail("%s", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s.key", base);
	if (keyfile_read(path, k->sec, err, sizeof(err)) == -1) {
		fail("%s", err);
		return -1;
	}
	return 0;
}

static void
conf_agent(FILE *f, const struct agent_keys *k, const char *name,
    const char *kind)
{
	fprintf(f, "\n[agent %s]\nname = %s\nkind = %s\npublic_key = %s\n",
	    k->id, name, kind, k->pub);
}

static int
write_config(struct bench *b, const char *log_level, bool manual_clock)
{
	FILE *f = fopen(b->conf, "w");
	/* 1M participants take a few GiB; the map is only address space. */
	unsigned map_mb = b->participants > 0 ? 32768 : 8192;

	if (f == NULL) {
		fail("cannot write %s: %s", b->conf, strerror(errno));
		return -1;
	}
	fprintf(f, "# Written by relais-bench for one run; thrown away after it.\n"
	    "[broker]\n"
	    "listen = tcp://127.0.0.1:*\n"
	    "data_dir = data\n"
	    "secret_key_file = keys/broker.key\n"
	    "public_key_file = keys/broker.pub\n"
	    "map_size_mb = %u\n"
	    "log_level = %s\n"
	    "manual_clock = %s\n"
	    "durability = %s\n"
	    /* Every sender holds a connection, plus the listener and probes. */
	    "max_connections = %d\n",
	    map_mb, log_level, manual_clock ? "yes" : "no", b->durability,
	    b->nsenders + 8);
	fprintf(f, "\n[qpv]\n");
	for (size_t i = 0; i < NQPVS; i++)
		fprintf(f, "%s = QPV %s\n", qpvs[i], qpvs[i]);
	/* Report mode dates events a year back: no rule may fire on them. */
	if (b->report)
		fprintf(f, "\n[rules]\nreferral_unanswered = off\n"
		    "referral_expired = off\nno_reorientation = off\n"
		    "no_referent = off\nno_contact = off\n"
		    "missed_appointments = off\nsupport_dropped = off\n"
		    "contract_ending = off\n");
	for (int i = 0; i < b->nsenders; i++) {
		char name[64];

		snprintf(name, sizeof(name), "Bench sender %d", i + 1);
		conf_agent(f, &b->senders[i], name, "mediator");
	}
	conf_agent(f, &b->receiver, "Bench receiver", "mission_locale");
	conf_agent(f, &b->operator, "Bench operator", "operator");
	conf_agent(f, &b->coordinator, "Bench coordinator", "coordinator");
	if (fclose(f) != 0) {
		fail("cannot write %s: %s", b->conf, strerror(errno));
		return -1;
	}
	return 0;
}

static int
make_world(struct bench *b)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX + 16], err[256];

	snprintf(b->dir, sizeof(b->dir), "%s/relais-bench.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(b->dir) == NULL) {
		fail("cannot create a folder in %s: %s; set TMPDIR",
		    tmp != NULL ? tmp : "/tmp", strerror(errno));
		b->dir[0] = '\0';
		return -1;
	}
	snprintf(b->conf, sizeof(b->conf), "%s/relais.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/relaisd.log", b->dir);
	snprintf(b->ready, sizeof(b->ready), "%s/ready", b->dir);
	snprintf(path, sizeof(path), "%s/keys", b->dir);
	if (mkdir(path, 0700) == -1) {
		fail("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/keys/broker", b->dir);
	if (keyfile_generate(path, err, sizeof(err)) == -1) {
		fail("%s", err);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/keys/broker.pub", b->dir);
	if (keyfile_read(path, b->server_pub, err, sizeof(err)) == -1) {
		fail("%s", err);
		return -1;
	}
	if ((b->senders = calloc(b->nsenders, sizeof(*b->senders))) == NULL)
		return -1;
	for (int i = 0; i < b->nsenders; i++) {
		char id[32];

		snprintf(id, sizeof(id), "bench-s%d", i + 1);
		if (make_keys(b, id, &b->senders[i]) == -1)
			return -1;
	}
	if (make_keys(b, "bench-rx", &b->receiver) == -1 ||
	    make_keys(b, "bench-ops", &b->operator) == -1 ||
	    make_keys(b, "bench-coord", &b->coordinator) == -1)
		return -1;
	return 0;
}

static void
remove_world(struct bench *b)
{
	if (b->dir[0] == '\0')
		return;
	if (b->keep) {
		printf("kept         %s (config, keys, store, broker log)\n", b->dir);
		return;
	}
	nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Print the last lines of the broker's log, to explain a failure. */
static void
show_log_tail(const struct bench *b, int nlines)
{
	FILE *f = fopen(b->log, "r");
	char line[2048];
	char (*ring)[2048];
	int n = 0;

	if (f == NULL || (ring = calloc(nlines, sizeof(*ring))) == NULL) {
		if (f != NULL)
			fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		memcpy(ring[n++ % nlines], line, sizeof(line));
	fclose(f);
	fprintf(stderr, "relais-bench: last lines of %s:\n", b->log);
	for (int i = n > nlines ? n - nlines : 0; i < n; i++)
		fprintf(stderr, "  %s", ring[i % nlines]);
	free(ring);
}

static bool
broker_alive(struct bench *b)
{
	int status;

	if (b->pid <= 0)
		return false;
	if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
		b->pid = 0;
		return false;
	}
	return true;
}

/* Start relaisd with stderr appended to the log; wait for its ready file. */
static int
broker_start(struct bench *b)
{
	int64_t t0 = rl_mono_us();
	pid_t pid;

	unlink(b->ready);
	fflush(NULL);
	if ((pid = fork()) == -1) {
		fail("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd == -1 || dup2(fd, STDERR_FILENO) == -1 ||
		    dup2(fd, STDOUT_FILENO) == -1)
			_exit(127);
		execl(b->relaisd, "relaisd", "-c", b->conf, "--ready-file", b->ready,
		    (char *)NULL);
		fprintf(stderr, "relais-bench: cannot run %s: %s\n", b->relaisd,
		    strerror(errno));
		_exit(127);
	}
	b->pid = pid;
	while (rl_mono_us() - t0 < (int64_t)READY_TIMEOUT_MS * 1000) {
		FILE *f = fopen(b->ready, "r");

		if (f != NULL) {
			bool ok = fgets(b->endpoint, sizeof(b->endpoint), f) != NULL;

			fclose(f);
			b->endpoint[strcspn(b->endpoint, "\r\n")] = '\0';
			if (ok && b->endpoint[0] != '\0')
				return 0;
		}
		if (!broker_alive(b)) {
			fail("relaisd exited before it was ready");
			show_log_tail(b, 10);
			return -1;
		}
		rl_sleep_ms(10);
	}
	fail("relaisd was not ready after %d ms", READY_TIMEOUT_MS);
	show_log_tail(b, 10);
	return -1;
}

/* SIGTERM, then wait; SIGKILL if it does not stop in time.  Returns ms. */
static double
broker_stop(struct bench *b, int *status_out)
{
	int64_t t0 = rl_mono_us();
	int status = 0;

	if (b->pid <= 0)
		return 0;
	kill(b->pid, SIGTERM);
	while (waitpid(b->pid, &status, WNOHANG) == 0) {
		if (rl_mono_us() - t0 > (int64_t)STOP_TIMEOUT_MS * 1000) {
			fail("relaisd did not stop within %d ms of SIGTERM; killing it",
			    STOP_TIMEOUT_MS);
			kill(b->pid, SIGKILL);
			waitpid(b->pid, &status, 0);
			break;
		}
		rl_sleep_ms(5);
	}
	b->pid = 0;
	if (status_out != NULL)
		*status_out = status;
	return (rl_mono_us() - t0) / 1000.0;
}

/* Resident memory of the broker from /proc/PID/status, in KiB. */
struct rss {
	long total, anon, file;
};

static struct rss
broker_rss(const struct bench *b)
{
	struct rss r = { -1, -1, -1 };
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
	if ((f = fopen(path, "r")) == NULL)
		return r;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "VmRSS: %ld", &r.total);
		sscanf(line, "RssAnon: %ld", &r.anon);
		sscanf(line, "RssFile: %ld", &r.file);
	}
	fclose(f);
	return r;
}

static void
print_rss(const char *label, struct rss r)
{
	printf("  %-34s VmRSS %7.1f MiB  (RssAnon %.1f MiB: heap and stacks; "
	    "RssFile %.1f MiB: mapped LMDB pages and libraries)\n", label,
	    r.total / 1024.0, r.anon / 1024.0, r.file / 1024.0);
}

/* CPU time the broker has used, in seconds (user + system). */
static double
broker_cpu(const struct bench *b)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)b->pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command name, which may hold spaces: 3 is state. */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * Read the broker's log lines written since the last call and hand each
 * JSON object to fn; stops early when fn returns true.  A line still being
 * written (no newline yet) is left for the next call.
 */
static bool
scan_log(struct bench *b, bool (*fn)(json_t *line, void *arg), void *arg)
{
	FILE *f = fopen(b->log, "r");
	char line[8192];
	bool done = false;

	if (f == NULL || fseeko(f, b->log_seen, SEEK_SET) != 0) {
		if (f != NULL)
			fclose(f);
		return false;
	}
	while (!done && fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);
		json_t *j;

		if (len == 0 || line[len - 1] != '\n')
			break;
		b->log_seen += (off_t)len;
		if ((j = json_loads(line, 0, NULL)) == NULL)
			continue;
		done = fn(j, arg);
		json_decref(j);
	}
	fclose(f);
	return done;
}

/* ------------------------------------------------------------------ */
/* The wire                                                            */

/* One agent's DEALER socket and its buffers; one thread uses it. */
struct conn {
	void *sock;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	zmq_msg_t msg;              /* the last frame received */
	bool has_msg;
	msgpack_unpacked up;        /* points into msg */
	uint64_t next_ref;
	int64_t last_send_us;
};

static int
set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

static int
conn_open(struct conn *c, struct bench *b, const struct agent_keys *k)
{
	memset(c, 0, sizeof(*c));
	msgpack_sbuffer_init(&c->sb);
	msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&c->up);
	c->next_ref = 1;
	if ((c->sock = zmq_socket(b->zctx, ZMQ_DEALER)) == NULL ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, b->server_pub, 41) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, k->pub, 41) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, k->sec, 41) ||
	    set_int(c->sock, ZMQ_LINGER, 0) ||
	    set_int(c->sock, ZMQ_HEARTBEAT_IVL, 2000) ||
	    set_int(c->sock, ZMQ_HEARTBEAT_TIMEOUT, 6000) ||
	    set_int(c->sock, ZMQ_RECONNECT_IVL, 100) ||
	    set_int(c->sock, ZMQ_SNDHWM, 0) ||
	    set_int(c->sock, ZMQ_RCVHWM, 0) ||
	    zmq_connect(c->sock, b->endpoint) != 0) {
		fail("%s: cannot connect to %s: %s", k->id, b->endpoint,
		    zmq_strerror(errno));
		return -1;
	}
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->has_msg)
		zmq_msg_close(&c->msg);
	c->has_msg = false;
	msgpack_unpacked_destroy(&c->up);
	msgpack_sbuffer_destroy(&c->sb);
	if (c->sock != NULL)
		zmq_close(c->sock);
	c->sock = NULL;
}

/* Start a request map: "v", "cmd", "ref" and extra more entries. */
static uint64_t
conn_begin(struct conn *c, const char *cmd, uint32_t extra)
{
	uint64_t ref = c->next_ref++;

	msgpack_sbuffer_clear(&c->sb);
	msgpack_pack_map(&c->pk, 3 + extra);
	codec_pack_kv_u64(&c->pk, "v", RL_PROTO_VERSION);
	codec_pack_kv_str(&c->pk, "cmd", cmd);
	codec_pack_kv_u64(&c->pk, "ref", ref);
	return ref;
}

static int
conn_send(struct conn *c)
{
	while (zmq_send(c->sock, c->sb.data, c->sb.size, 0) == -1) {
		if (errno != EINTR) {
			fail("send: %s", zmq_strerror(errno));
			return -1;
		}
	}
	c->last_send_us = rl_mono_us();
	return 0;
}

/*
 * Wait up to timeout_ms for one message.  Returns the reply map (valid
 * until the next conn_recv), or NULL on time-out or a frame that is not a
 * map.
 */
static const msgpack_object *
conn_recv(struct conn *c, int timeout_ms)
{
	zmq_pollitem_t it = { c->sock, 0, ZMQ_POLLIN, 0 };
	size_t off = 0;

	if (zmq_poll(&it, 1, timeout_ms) <= 0 || !(it.revents & ZMQ_POLLIN))
		return NULL;
	if (c->has_msg)
		zmq_msg_close(&c->msg);
	zmq_msg_init(&c->msg);
	c->has_msg = true;
	if (zmq_msg_recv(&c->msg, c->sock, 0) == -1)
		return NULL;
	if (msgpack_unpack_next(&c->up, zmq_msg_data(&c->msg),
	    zmq_msg_size(&c->msg), &off) != MSGPACK_UNPACK_SUCCESS ||
	    c->up.data.type != MSGPACK_OBJECT_MAP)
		return NULL;
	return &c->up.data;
}

/*
 * Wait for the next message like conn_recv, but in short slices, so that
 * a run aborted elsewhere (a dead broker, another agent failing) stops
 * this thread too.  NULL on abort or after timeout_ms, which is reported.
 */
static const msgpack_object *
conn_wait(struct conn *c, atomic_bool *abort_flag, int timeout_ms,
    const char *who)
{
	int64_t end = rl_mono_us() + (int64_t)timeout_ms * 1000;

	while (!atomic_load(abort_flag)) {
		const msgpack_object *m = conn_recv(c, 200);

		if (m != NULL)
			return m;
		if (rl_mono_us() >= end) {
			fail("%s: no answer from the broker within %d ms", who,
			    timeout_ms);
			return NULL;
		}
	}
	return NULL;
}

static bool
is_cmd(const msgpack_object *m, const char *cmd)
{
	const msgpack_object *o = codec_map_get(m, "cmd");

	return o != NULL && codec_str_eq(o, cmd);
}

static uint64_t
get_u64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = codec_map_get(m, key);

	return o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ?
	    o->via.u64 : 0;
}

static int64_t
get_i64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = codec_map_get(m, key);

	if (o == NULL)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return 0;
}

static void
get_str(const msgpack_object *m, const char *key, char *out, size_t len)
{
	const msgpack_object *o = codec_map_get(m, key);

	if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
		snprintf(out, len, "?");
		return;
	}
	snprintf(out, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}

/* Describe an "error" reply or an error result in one line. */
static void
describe_error(const msgpack_object *m, char *out, size_t len)
{
	char name[64], field[64], msg[300];

	get_str(m, "error", name, sizeof(name));
	get_str(m, "field", field, sizeof(field));
	get_str(m, "message", msg, sizeof(msg));
	snprintf(out, len, "%" PRIu64 " %s (field \"%s\"): %s",
	    get_u64(m, "code"), name, field, msg);
}

/*
 * Send the request in c->sb and wait for the reply carrying ref, skipping
 * deliveries and stale replies.  NULL on time-out.
 */
static const msgpack_object *
conn_call(struct conn *c, uint64_t ref, int timeout_ms)
{
	int64_t end = rl_mono_us() + (int64_t)timeout_ms * 1000;

	if (conn_send(c) == -1)
		return NULL;
	for (;;) {
		int64_t left = (end - rl_mono_us()) / 1000;
		const msgpack_object *m;

		if (left <= 0)
			return NULL;
		if ((m = conn_recv(c, (int)left)) != NULL && get_u64(m, "ref") == ref)
			return m;
	}
}

/* Ping until the broker answers: the CURVE handshake has completed. */
static int
conn_ready(struct conn *c, const char *who)
{
	uint64_t ref = conn_begin(c, "ping", 0);

	if (conn_call(c, ref, QUERY_TIMEOUT_MS) == NULL) {
		fail("%s: no pong from the broker within %d ms (CURVE handshake or "
		    "key refused?)", who, QUERY_TIMEOUT_MS);
		return -1;
	}
	return 0;
}

/* A query; returns its "data", or NULL with the reason printed. */
/* Send the query packed in c and return its data, or NULL after a message. */
static const msgpack_object *
query_data(struct conn *c, uint64_t ref, const char *what)
{
	const msgpack_object *m;
	char err[512];

	if ((m = conn_call(c, ref, QUERY_TIMEOUT_MS)) == NULL) {
		fail("query %s: no answer within %d ms", what, QUERY_TIMEOUT_MS);
		return NULL;
	}
	if (is_cmd(m, "error")) {
		describe_error(m, err, sizeof(err));
		fail("query %s refused: %s", what, err);
		return NULL;
	}
	return codec_map_get(m, "data");
}

static const msgpack_object *
conn_query(struct conn *c, const char *what, const char *argkey, int64_t argval)
{
	uint64_t ref = conn_begin(c, "query", argkey != NULL ? 2 : 1);

	codec_pack_kv_str(&c->pk, "what", what);
	if (argkey != NULL) {
		codec_pack_str(&c->pk, "args");
		msgpack_pack_map(&c->pk, 1);
		codec_pack_kv_i64(&c->pk, argkey, argval);
	}
	return query_data(c, ref, what);
}

/* The "report" query of a period, by a breakdown (or NULL), or its flows. */
static const msgpack_object *
conn_report(struct conn *c, const char *period, const char *by, bool flows)
{
	uint64_t ref = conn_begin(c, "query", 2);

	codec_pack_kv_str(&c->pk, "what", "report");
	codec_pack_str(&c->pk, "args");
	msgpack_pack_map(&c->pk, 1 + (by != NULL) + flows);
	codec_pack_kv_str(&c->pk, "period", period);
	if (by != NULL)
		codec_pack_kv_str(&c->pk, "by", by);
	if (flows) {
		codec_pack_str(&c->pk, "flows");
		msgpack_pack_true(&c->pk);
	}
	return query_data(c, ref, "report");
}

/* ------------------------------------------------------------------ */
/* Throughput mode                                                     */

/* One acknowledged submit: its latency counts once per event in it. */
struct lat {
	uint32_t us;
	uint32_t n;
};

struct lats {
	struct lat *v;
	size_t n, cap;
};

static int
lats_add(struct lats *l, int64_t us, uint32_t n)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		struct lat *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n].us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)(us < 0 ? 0 : us);
	l->v[l->n].n = n;
	l->n++;
	return 0;
}

static int
lat_cmp(const void *a, const void *b)
{
	const struct lat *x = a, *y = b;

	return (x->us > y->us) - (x->us < y->us);
}

/* Weighted percentile, q in [0,1], of sorted samples; in ms. */
static double
lats_pct(const struct lats *l, uint64_t total, double q)
{
	uint64_t rank = (uint64_t)(q * (double)total), seen = 0;

	if (rank >= total && total > 0)
		rank = total - 1;

	for (size_t i = 0; i < l->n; i++) {
		seen += l->v[i].n;
		if (seen > rank)
			return l->v[i].us / 1000.0;
	}
	return l->n > 0 ? l->v[l->n - 1].us / 1000.0 : 0;
}

struct run {
	struct bench *b;
	pthread_barrier_t start;
	int64_t t0_us;
	int64_t t_end_us;           /* no new submit after this */
	atomic_uint_fast64_t claimed;   /* events handed to senders */
	atomic_uint_fast64_t acked_ok;  /* acknowledged ok: to be delivered */
	atomic_int running;             /* sender threads not finished */
	atomic_bool senders_done;
	atomic_bool abort;
};

struct sender {
	struct run *r;
	int idx;
	pthread_t th;
	uint64_t acked, dups, errors, submits;
	int64_t t_last_us;
	struct lats lat;
	bool failed;
};

struct receiver {
	struct run *r;
	pthread_t th;
	uint64_t delivered, redelivered, dacks;
	int64_t t_last_us;
	uint64_t lat_ms[60001];     /* histogram: occurred_at -> received */
	bool failed;
};

/* Events per submit: a quarter of those in flight, so acks top them up. */
static uint32_t
submit_size(const struct bench *b)
{
	uint32_t n = (uint32_t)b->inflight / 4;

	return n < 1 ? 1 : n > RL_MAX_BATCH ? RL_MAX_BATCH : n;
}

/* Claim up to want events for a submit; 0 when the run is over. */
static uint32_t
claim(struct run *r, uint32_t want)
{
	uint64_t prev;

	if (atomic_load(&r->abort) || rl_mono_us() >= r->t_end_us)
		return 0;
	prev = atomic_fetch_add(&r->claimed, want);
	if (prev >= r->b->events)
		return 0;
	return r->b->events - prev < want ? (uint32_t)(r->b->events - prev) : want;
}

static void
pack_referral(struct conn *c, int sender, uint64_t n, int64_t now,
    const char *to)
{
	char eid[RELAIS_EVENT_ID_SIZE], pid[48], rid[48];

	/* The ids librelais gives: their order decides how the broker's
	 * deduplication table grows (random ids would halve throughput). */
	if (relais_new_event_id(eid) == -1)
		snprintf(eid, sizeof(eid), "e-%" PRIu64, n);
	snprintf(pid, sizeof(pid), "p-%d-%" PRIu64, sender,
	    n / REFERRALS_PER_PERSON);
	snprintf(rid, sizeof(rid), "r-%d-%" PRIu64, sender, n);
	msgpack_pack_map(&c->pk, 7);
	codec_pack_kv_str(&c->pk, "event_id", eid);
	codec_pack_kv_str(&c->pk, "type", "referral.sent");
	codec_pack_kv_i64(&c->pk, "occurred_at", now);
	codec_pack_kv_str(&c->pk, "participant", pid);
	codec_pack_kv_str(&c->pk, "referral", rid);
	codec_pack_kv_str(&c->pk, "to", to);
	codec_pack_kv_str(&c->pk, "purpose", "bench");
}

/* A submit in flight. */
struct slot {
	uint64_t ref;
	uint32_t n;
	int64_t t_us;
};

/* Count one acks reply; -1 if an event was refused. */
static int
count_acks(struct sender *s, const msgpack_object *m, const char *who)
{
	const msgpack_object *res = codec_map_get(m, "results");
	char err[512];

	if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	for (uint32_t i = 0; i < res->via.array.size; i++) {
		const msgpack_object *x = &res->via.array.ptr[i];
		const msgpack_object *st = codec_map_get(x, "status");

		if (st != NULL && codec_str_eq(st, "ok")) {
			s->acked++;
		} else if (st != NULL && codec_str_eq(st, "duplicate")) {
			s->dups++;
		} else {
			if (s->errors++ == 0) {
				describe_error(x, err, sizeof(err));
				fail("%s: event refused: %s", who, err);
			}
		}
	}
	return s->errors > 0 ? -1 : 0;
}

static void *
sender_main(void *arg)
{
	struct sender *s = arg;
	struct run *r = s->r;
	struct bench *b = r->b;
	const char *who = b->senders[s->idx].id;
	uint32_t chunk = submit_size(b);
	struct slot *slots = calloc(b->inflight, sizeof(*slots));
	uint32_t inflight = 0;
	uint64_t n = 0;
	bool stop = false;
	struct conn c;

	memset(&c, 0, sizeof(c));
	if (slots == NULL || conn_open(&c, b, &b->senders[s->idx]) == -1 ||
	    conn_ready(&c, who) == -1) {
		s->failed = true;
		atomic_store(&r->abort, true);
	}
	pthread_barrier_wait(&r->start);
	if (s->failed)
		goto out;

	while (!(stop && inflight == 0)) {
		const msgpack_object *m;
		uint64_t before;
		size_t k;

		/* Top up to exactly K events in flight. */
		while (!stop && inflight < (uint32_t)b->inflight) {
			uint32_t want = (uint32_t)b->inflight - inflight;
			uint32_t got = claim(r, want < chunk ? want : chunk);
			int64_t now = rl_wall_ms();
			uint64_t ref;

			if (got == 0) {
				stop = true;
				break;
			}
			ref = conn_begin(&c, "submit", 1);
			codec_pack_str(&c.pk, "events");
			msgpack_pack_array(&c.pk, got);
			for (uint32_t i = 0; i < got; i++)
				pack_referral(&c, s->idx + 1, n++, now, b->receiver.id);
			for (k = 0; k < (size_t)b->inflight && slots[k].n != 0; k++)
				;
			slots[k].ref = ref;
			slots[k].n = got;
			slots[k].t_us = rl_mono_us();
			if (conn_send(&c) == -1)
				goto broken;
			inflight += got;
			s->submits++;
		}
		if (inflight == 0)
			continue;
		if ((m = conn_wait(&c, &r->abort, ACK_TIMEOUT_MS, who)) == NULL)
			goto broken;
		if (is_cmd(m, "error")) {
			char err[512];

			describe_error(m, err, sizeof(err));
			fail("%s: submit refused: %s", who, err);
			goto broken;
		}
		if (!is_cmd(m, "acks"))
			continue;
		for (k = 0; k < (size_t)b->inflight; k++)
			if (slots[k].n != 0 && slots[k].ref == get_u64(m, "ref"))
				break;
		if (k == (size_t)b->inflight)
			continue;       /* not ours: cannot happen, ignore */
		s->t_last_us = rl_mono_us();
		lats_add(&s->lat, s->t_last_us - slots[k].t_us, slots[k].n);
		inflight -= slots[k].n;
		slots[k].n = 0;
		before = s->acked;
		if (count_acks(s, m, who) == -1)
			goto broken;
		atomic_fetch_add(&r->acked_ok, s->acked - before);
	}
	goto out;
broken:
	s->failed = true;
	atomic_store(&r->abort, true);
out:
	conn_close(&c);
	free(slots);
	atomic_fetch_sub(&r->running, 1);
	return NULL;
}

static int
send_dack(struct conn *c, uint64_t upto)
{
	msgpack_sbuffer_clear(&c->sb);
	msgpack_pack_map(&c->pk, 3);
	codec_pack_kv_u64(&c->pk, "v", RL_PROTO_VERSION);
	codec_pack_kv_str(&c->pk, "cmd", "dack");
	codec_pack_kv_u64(&c->pk, "upto", upto);
	return conn_send(c);
}

static void
receive_items(struct receiver *rx, const msgpack_object *m, uint64_t *upto)
{
	const msgpack_object *items = codec_map_get(m, "items");
	int64_t now = rl_wall_ms();

	if (items == NULL || items->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < items->via.array.size; i++) {
		const msgpack_object *it = &items->via.array.ptr[i];
		uint64_t seq = get_u64(it, "seq");
		int64_t lat;

		if (seq <= *upto) {
			rx->redelivered++;
			continue;
		}
		*upto = seq;
		rx->delivered++;
		lat = now - get_i64(codec_map_get(it, "event"), "occurred_at");
		if (lat < 0)
			lat = 0;
		rx->lat_ms[lat > 60000 ? 60000 : lat]++;
	}
}

static void *
receiver_main(void *arg)
{
	struct receiver *rx = arg;
	struct run *r = rx->r;
	struct bench *b = r->b;
	uint64_t upto = 0, ref;
	int64_t idle_since = 0;
	struct conn c;

	if (conn_open(&c, b, &b->receiver) == -1) {
		rx->failed = true;
		atomic_store(&r->abort, true);
		pthread_barrier_wait(&r->start);
		return NULL;
	}
	ref = conn_begin(&c, "hello", 1);
	codec_pack_kv_u64(&c.pk, "credit", RECEIVER_CREDIT);
	if (conn_call(&c, ref, QUERY_TIMEOUT_MS) == NULL) {
		fail("%s: no welcome from the broker within %d ms", b->receiver.id,
		    QUERY_TIMEOUT_MS);
		rx->failed = true;
		atomic_store(&r->abort, true);
	}
	pthread_barrier_wait(&r->start);
	while (!rx->failed && !atomic_load(&r->abort)) {
		const msgpack_object *m = conn_recv(&c, 100);
		int64_t now = rl_mono_us();

		if (m != NULL && is_cmd(m, "deliver")) {
			uint64_t before = upto;

			receive_items(rx, m, &upto);
			if (upto > before)
				rx->t_last_us = now;
			/* Cumulative: one dack covers the whole message. */
			if (send_dack(&c, upto) == -1)
				break;
			rx->dacks++;
			idle_since = 0;
			continue;
		}
		if (now - c.last_send_us > PING_IDLE_MS * 1000) {
			conn_begin(&c, "ping", 0);
			conn_send(&c);
		}
		if (!atomic_load(&r->senders_done))
			continue;
		if (rx->delivered >= atomic_load(&r->acked_ok))
			break;
		if (idle_since == 0)
			idle_since = now;
		else if (now - idle_since > (int64_t)DRAIN_IDLE_MS * 1000) {
			fail("%s: %" PRIu64 " deliveries missing after %d ms without any",
			    b->receiver.id, atomic_load(&r->acked_ok) - rx->delivered,
			    DRAIN_IDLE_MS);
			rx->failed = true;
		}
	}
	conn_close(&c);
	return NULL;
}

static double
hist_pct(const uint64_t *h, size_t n, uint64_t total, double q)
{
	uint64_t rank = (uint64_t)(q * (double)total), seen = 0;

	if (rank >= total)
		rank = total - 1;

	for (size_t i = 0; i < n; i++) {
		seen += h[i];
		if (seen > rank)
			return (double)i;
	}
	return (double)(n - 1);
}

/* Count warnings and errors the broker logged, show the first few. */
static bool
note_problem(json_t *line, void *arg)
{
	int *n = arg;
	const char *level = json_string_value(json_object_get(line, "level"));

	if (level != NULL && (strcmp(level, "warn") == 0 ||
	    strcmp(level, "error") == 0)) {
		if ((*n)++ < 3) {
			char *s = json_dumps(line, JSON_COMPACT);

			printf("  broker log: %s\n", s != NULL ? s : "?");
			free(s);
		}
	}
	return false;
}

static int
run_throughput(struct bench *b)
{
	struct run r;
	struct sender *ss = calloc(b->nsenders, sizeof(*ss));
	struct receiver *rx = calloc(1, sizeof(*rx));
	struct lats all = { 0 };
	uint64_t acked = 0, dups = 0, errors = 0, submits = 0;
	int64_t t_last = 0;
	double cpu0, cpu1, secs, dsecs;
	struct rss rss0, rss1;
	int problems = 0, rc = 0, status = 0;
	bool failed = false;

	if (ss == NULL || rx == NULL)
		return -1;
	if (write_config(b, "warn", false) == -1 || broker_start(b) == -1) {
		free(ss);
		free(rx);
		return -1;
	}
	rss0 = broker_rss(b);
	memset(&r, 0, sizeof(r));
	r.b = b;
	atomic_init(&r.claimed, 0);
	atomic_init(&r.acked_ok, 0);
	atomic_init(&r.senders_done, false);
	atomic_init(&r.abort, false);
	atomic_init(&r.running, b->nsenders);
	pthread_barrier_init(&r.start, NULL, (unsigned)b->nsenders + 2);
	rx->r = &r;
	/* The run's clock starts when every agent is connected. */
	r.t0_us = INT64_MAX;
	r.t_end_us = INT64_MAX;
	pthread_create(&rx->th, NULL, receiver_main, rx);
	for (int i = 0; i < b->nsenders; i++) {
		ss[i].r = &r;
		ss[i].idx = i;
		pthread_create(&ss[i].th, NULL, sender_main, &ss[i]);
	}
	cpu0 = broker_cpu(b);
	r.t0_us = rl_mono_us();
	r.t_end_us = r.t0_us + (int64_t)(b->seconds * 1e6);
	pthread_barrier_wait(&r.start);
	while (atomic_load(&r.running) > 0) {
		if (!atomic_load(&r.abort) && !broker_alive(b)) {
			fail("relaisd died during the run");
			atomic_store(&r.abort, true);
			failed = true;
		}
		rl_sleep_ms(50);
	}
	for (int i = 0; i < b->nsenders; i++) {
		pthread_join(ss[i].th, NULL);
		acked += ss[i].acked;
		dups += ss[i].dups;
		errors += ss[i].errors;
		submits += ss[i].submits;
		failed |= ss[i].failed;
		if (ss[i].t_last_us > t_last)
			t_last = ss[i].t_last_us;
		for (size_t k = 0; k < ss[i].lat.n; k++)
			lats_add(&all, ss[i].lat.v[k].us, ss[i].lat.v[k].n);
		free(ss[i].lat.v);
	}
	atomic_store(&r.senders_done, true);
	pthread_join(rx->th, NULL);
	failed |= rx->failed;
	cpu1 = broker_cpu(b);
	rss1 = broker_rss(b);
	pthread_barrier_destroy(&r.start);

	qsort(all.v, all.n, sizeof(*all.v), lat_cmp);
	secs = (t_last - r.t0_us) / 1e6;
	dsecs = (rx->t_last_us - r.t0_us) / 1e6;
	printf("\nload         %d senders x %d events in flight each (submits of "
	    "%d, topped up as acks arrive),\n"
	    "             referral.sent to 1 receiving agent (credit %d, "
	    "cumulative dack per deliver message),\n"
	    "             %d referrals per participant; CURVE on; durability = %s "
	    "(every ack synced); log_level = warn\n",
	    b->nsenders, b->inflight, submit_size(b), RECEIVER_CREDIT,
	    REFERRALS_PER_PERSON, b->durability);
	printf("limits       %" PRIu64 " events or %.1f s, whichever comes first\n",
	    b->events, b->seconds);
	if (secs > 0)
		printf("events       %" PRIu64 " acknowledged ok in %.2f s: "
		    "%.0f events/s (%" PRIu64 " submits, %" PRIu64 " duplicate, %"
		    PRIu64 " refused)\n", acked, secs, acked / secs, submits, dups,
		    errors);
	if (all.n > 0)
		printf("ack latency  p50 %.2f ms   p99 %.2f ms   max %.2f ms   "
		    "(submit sent -> its acks received; counted per event)\n",
		    lats_pct(&all, acked + dups + errors, 0.50),
		    lats_pct(&all, acked + dups + errors, 0.99),
		    all.v[all.n - 1].us / 1000.0);
	/*
	 * For `make bench-peers`, which compares this with Redis peers, and
	 * tests/bench/bench_ab.sh: the broker's CPU per event (delivering
	 * them included) moves less with a shared machine's load than the
	 * rates do.
	 */
	if (secs > 0 && all.n > 0)
		printf("result events_per_s=%.0f ack_p50_ms=%.3f ack_p99_ms=%.3f "
		    "cpu_us_per_event=%.2f\n",
		    acked / secs, lats_pct(&all, acked + dups + errors, 0.50),
		    lats_pct(&all, acked + dups + errors, 0.99),
		    cpu0 >= 0 && cpu1 >= 0 && acked > 0 ?
		    (cpu1 - cpu0) * 1e6 / (double)acked : 0.0);
	if (dsecs > 0)
		printf("delivered    %" PRIu64 " in %.2f s: %.0f deliveries/s; "
		    "%" PRIu64 " redelivered; %" PRIu64 " dacks\n",
		    rx->delivered, dsecs, rx->delivered / dsecs, rx->redelivered,
		    rx->dacks);
	if (rx->delivered > 0)
		printf("delivery     p50 %.0f ms   p99 %.0f ms   max %.0f ms   "
		    "(occurred_at -> deliver received; 1 ms resolution)\n",
		    hist_pct(rx->lat_ms, 60001, rx->delivered, 0.50),
		    hist_pct(rx->lat_ms, 60001, rx->delivered, 0.99),
		    hist_pct(rx->lat_ms, 60001, rx->delivered, 1.0));
	if (cpu0 >= 0 && cpu1 >= 0 && dsecs > 0)
		printf("broker CPU   %.2f s in %.2f s: %.2f cores busy\n",
		    cpu1 - cpu0, dsecs > secs ? dsecs : secs,
		    (cpu1 - cpu0) / (dsecs > secs ? dsecs : secs));
	printf("broker RSS\n");
	print_rss("at start", rss0);
	print_rss("after the run", rss1);
	broker_stop(b, &status);
	scan_log(b, note_problem, &problems);
	if (problems > 0)
		printf("  broker logged %d warnings or errors (first ones above)\n",
		    problems);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fail("relaisd did not exit cleanly (status %d)", status);
		rc = -1;
	}
	if (failed || errors > 0 || rx->delivered < acked) {
		fail("the run failed: %" PRIu64 " refused, %" PRIu64 " of %" PRIu64
		    " delivered", errors, rx->delivered, acked);
		show_log_tail(b, 5);
		rc = -1;
	}
	free(all.v);
	free(ss);
	free(rx);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Participants mode                                                   */

struct loader {
	struct bench *b;
	int idx;
	pthread_t th;
	uint64_t first, count;      /* participant numbers first..first+count-1 */
	int64_t occurred_at;        /* of every event, or (report mode) the year's start */
	atomic_uint_fast64_t *done;
	atomic_bool *abort;
	bool failed;
};

static void
pack_identified(struct conn *c, const char *eid, const char *pid,
    const char *qpv, int64_t at)
{
	msgpack_pack_map(&c->pk, 6);
	codec_pack_kv_str(&c->pk, "event_id", eid);
	codec_pack_kv_str(&c->pk, "type", "participant.identified");
	codec_pack_kv_i64(&c->pk, "occurred_at", at);
	codec_pack_kv_str(&c->pk, "participant", pid);
	codec_pack_kv_str(&c->pk, "qpv", qpv);
	codec_pack_kv_str(&c->pk, "source", "outreach");
}

/*
 * Report mode: the j-th event of participant p (j > 0), on a day of the
 * year that starts at year0 that depends on p and j.
 */
static void
pack_activity(struct conn *c, const char *pid, uint64_t p, int j,
    int64_t year0, const char *receiver)
{
	static const char *const barriers[] = { "mobility", "housing", "digital" };
	static const char *const schemes[] = { "cej", "plie", "training" };
	char eid[64];
	int64_t at = year0 + (int64_t)((p * 31 + (uint64_t)j * 17) % 365) * DAY_MS +
	    (int64_t)(p % 12) * HOUR_MS;

	snprintf(eid, sizeof(eid), "e-%s-%d", pid, j);
	msgpack_pack_map(&c->pk, j % 6 == 5 ? 7 : 5);
	codec_pack_kv_str(&c->pk, "event_id", eid);
	codec_pack_kv_i64(&c->pk, "occurred_at", at);
	codec_pack_kv_str(&c->pk, "participant", pid);
	switch (j % 6) {
	case 0:
		codec_pack_kv_str(&c->pk, "type", "contact.made");
		codec_pack_kv_str(&c->pk, "channel", "phone");
		break;
	case 1:
		codec_pack_kv_str(&c->pk, "type", "barrier.identified");
		codec_pack_kv_str(&c->pk, "barrier", barriers[p % 3]);
		break;
	case 2:
		codec_pack_kv_str(&c->pk, "type", "confidence.assessed");
		codec_pack_kv_i64(&c->pk, "score", (int64_t)(1 + (p + (uint64_t)j) % 5));
		break;
	case 3:
		codec_pack_kv_str(&c->pk, "type", "enrollment.started");
		codec_pack_kv_str(&c->pk, "scheme", schemes[p % 3]);
		break;
	case 4:
		codec_pack_kv_str(&c->pk, "type", "employment.started");
		codec_pack_kv_str(&c->pk, "contract", "cdd");
		break;
	default:
		/* The referral's id is the event's: unique across the bus too. */
		codec_pack_kv_str(&c->pk, "type", "referral.sent");
		codec_pack_kv_str(&c->pk, "referral", eid);
		codec_pack_kv_str(&c->pk, "to", receiver);
		codec_pack_kv_str(&c->pk, "purpose", "accompagnement");
		break;
	}
}

/* Check one acks reply: every result ok or duplicate.  Returns its count. */
static int64_t
acks_all_ok(const msgpack_object *m, const char *who)
{
	const msgpack_object *res = codec_map_get(m, "results");
	char err[512];

	if (is_cmd(m, "error")) {
		describe_error(m, err, sizeof(err));
		fail("%s: submit refused: %s", who, err);
		return -1;
	}
	if (!is_cmd(m, "acks") || res == NULL || res->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	for (uint32_t i = 0; i < res->via.array.size; i++) {
		const msgpack_object *x = &res->via.array.ptr[i];
		const msgpack_object *st = codec_map_get(x, "status");

		if (st == NULL || !(codec_str_eq(st, "ok") ||
		    codec_str_eq(st, "duplicate"))) {
			describe_error(x, err, sizeof(err));
			fail("%s: event refused: %s", who, err);
			return -1;
		}
	}
	return res->via.array.size;
}

static void *
loader_main(void *arg)
{
	struct loader *l = arg;
	struct bench *b = l->b;
	const char *who = b->senders[l->idx].id;
	uint64_t next = 0, acked = 0, per = (uint64_t)b->per_person;
	uint64_t items = l->count * per;
	struct slot slots[LOAD_INFLIGHT];
	int nslots = 0;
	struct conn c;

	memset(slots, 0, sizeof(slots));
	memset(&c, 0, sizeof(c));
	if (conn_open(&c, b, &b->senders[l->idx]) == -1 ||
	    conn_ready(&c, who) == -1)
		goto broken;
	while (acked < items && !atomic_load(l->abort)) {
		const msgpack_object *m;
		int64_t got;

		while (next < items && nslots < LOAD_INFLIGHT) {
			uint64_t n = items - next < LOAD_BATCH ?
			    items - next : LOAD_BATCH;

			slots[nslots].ref = conn_begin(&c, "submit", 1);
			slots[nslots].n = (uint32_t)n;
			codec_pack_str(&c.pk, "events");
			msgpack_pack_array(&c.pk, (uint32_t)n);
			for (uint64_t i = 0; i < n; i++) {
				uint64_t p = l->first + (next + i) / per;
				int j = (int)((next + i) % per);
				char eid[32], pid[48];

				snprintf(eid, sizeof(eid), "i-%" PRIu64, p);
				snprintf(pid, sizeof(pid), "p-%d-%" PRIu64, l->idx + 1, p);
				if (j == 0)
					pack_identified(&c, eid, pid, qpvs[p % NQPVS],
					    l->occurred_at + (int64_t)(p % 365) * DAY_MS *
					    b->report);
				else
					pack_activity(&c, pid, p, j, l->occurred_at,
					    b->receiver.id);
			}
			if (conn_send(&c) == -1)
				goto broken;
			next += n;
			nslots++;
		}
		if ((m = conn_wait(&c, l->abort, ACK_TIMEOUT_MS, who)) == NULL)
			goto broken;
		if (is_cmd(m, "pong"))
			continue;
		if ((got = acks_all_ok(m, who)) < 0)
			goto broken;
		for (int k = 0; k < nslots; k++)
			if (slots[k].ref == get_u64(m, "ref")) {
				slots[k] = slots[--nslots];
				break;
			}
		acked += (uint64_t)got;
		atomic_fetch_add(l->done, (uint64_t)got);
	}
	conn_close(&c);
	return NULL;
broken:
	l->failed = true;
	atomic_store(l->abort, true);
	conn_close(&c);
	return NULL;
}

/* The probes: G groups of D participants identified a day early. */
static int
send_probes(struct bench *b, int64_t t0)
{
	struct conn c;
	const msgpack_object *m;
	uint64_t ref;
	int rc = -1;

	if (conn_open(&c, b, &b->senders[0]) == -1 ||
	    conn_ready(&c, b->senders[0].id) == -1)
		goto out;
	ref = conn_begin(&c, "submit", 1);
	codec_pack_str(&c.pk, "events");
	msgpack_pack_array(&c.pk, (uint32_t)(PROBE_GROUPS * b->due));
	for (int g = 0; g < PROBE_GROUPS; g++)
		for (int j = 0; j < b->due; j++) {
			char id[48];

			snprintf(id, sizeof(id), "probe-%d-%d", g, j);
			pack_identified(&c, id, id, qpvs[j % NQPVS],
			    t0 - DAY_MS + g * HOUR_MS);
		}
	if ((m = conn_call(&c, ref, ACK_TIMEOUT_MS)) == NULL)
		fail("%s: no acks for the probes", b->senders[0].id);
	else if (acks_all_ok(m, b->senders[0].id) >= 0)
		rc = 0;
out:
	conn_close(&c);
	return rc;
}

static int
load_participants(struct bench *b, int64_t t0)
{
	struct loader *ls = calloc(b->nsenders, sizeof(*ls));
	atomic_uint_fast64_t done;
	atomic_bool abort_flag;
	uint64_t per = b->participants / (uint64_t)b->nsenders, last = 0;
	uint64_t total = b->participants * (uint64_t)b->per_person;
	int64_t start = rl_mono_us(), last_print = start;
	bool failed = false;
	double secs;

	if (ls == NULL)
		return -1;
	atomic_init(&done, 0);
	atomic_init(&abort_flag, false);
	for (int i = 0; i < b->nsenders; i++) {
		ls[i].b = b;
		ls[i].idx = i;
		ls[i].first = per * (uint64_t)i;
		ls[i].count = i == b->nsenders - 1 ?
		    b->participants - per * (uint64_t)i : per;
		ls[i].occurred_at = t0;
		ls[i].done = &done;
		ls[i].abort = &abort_flag;
		pthread_create(&ls[i].th, NULL, loader_main, &ls[i]);
	}
	for (;;) {
		uint64_t n = atomic_load(&done);
		int64_t now = rl_mono_us();

		if (n >= total || atomic_load(&abort_flag))
			break;
		if (!broker_alive(b)) {
			fail("relaisd died during the load");
			atomic_store(&abort_flag, true);
			break;
		}
		if (now - last_print >= 10000000) {
			printf("  loaded %9" PRIu64 " / %" PRIu64 "   %6.0f events/s "
			    "now, broker VmRSS %.1f MiB\n", n, total,
			    (n - last) / ((now - last_print) / 1e6),
			    broker_rss(b).total / 1024.0);
			fflush(stdout);
			last = n;
			last_print = now;
		}
		rl_sleep_ms(100);
	}
	for (int i = 0; i < b->nsenders; i++) {
		pthread_join(ls[i].th, NULL);
		failed |= ls[i].failed;
	}
	secs = (rl_mono_us() - start) / 1e6;
	if (!failed)
		printf("  loaded %" PRIu64 " participants, %" PRIu64 " events, in "
		    "%.1f s: %.0f events/s (%d senders, submits of %d, %d submits "
		    "in flight each)\n", b->participants, total, secs, total / secs,
		    b->nsenders,
		    LOAD_BATCH, LOAD_INFLIGHT);
	free(ls);
	return failed ? -1 : 0;
}

static void
print_store_size(const struct bench *b)
{
	char path[PATH_MAX + 16];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data/data.mdb", b->dir);
	if (stat(path, &st) == -1) {
		printf("  LMDB         %s: %s\n", path, strerror(errno));
		return;
	}
	printf("  LMDB         data.mdb %.1f MiB on disk (file size %.1f MiB)\n",
	    st.st_blocks * 512.0 / 1048576.0, st.st_size / 1048576.0);
}

/* Print the broker's counters; returns its count of armed deadlines. */
static uint64_t
print_health(struct conn *ops)
{
	const msgpack_object *h = conn_query(ops, "health", NULL, 0);

	if (h == NULL)
		return 0;
	printf("  health       participants %" PRIu64 ", deadlines %" PRIu64
	    ", events %" PRIu64 ", open alerts %" PRIu64 "\n",
	    get_u64(h, "participants"), get_u64(h, "deadlines"),
	    get_u64(h, "events"), get_u64(h, "open_alerts"));
	return get_u64(h, "deadlines");
}

/* What the broker logged about its sweeps since the last look. */
struct sweep_seen {
	bool swept;                 /* an "alerts.swept" line */
	int64_t deadlines, fired, sweep_us, scan_us;
	int64_t periodic[4096];     /* sweep_us of "alerts.sweep" lines */
	size_t nperiodic;
};

static bool
note_sweep(json_t *line, void *arg)
{
	struct sweep_seen *s = arg;
	const char *msg = json_string_value(json_object_get(line, "msg"));
	json_t *us = json_object_get(line, "sweep_us");

	if (msg == NULL)
		return false;
	if (strcmp(msg, "alerts.sweep") == 0 && json_is_integer(us) &&
	    s->nperiodic < sizeof(s->periodic) / sizeof(s->periodic[0]))
		s->periodic[s->nperiodic++] = json_integer_value(us);
	if (strcmp(msg, "alerts.swept") != 0)
		return false;
	s->swept = true;
	s->deadlines = json_integer_value(json_object_get(line, "deadlines"));
	s->fired = json_integer_value(json_object_get(line, "fired"));
	s->sweep_us = json_is_integer(us) ? json_integer_value(us) : -1;
	us = json_object_get(line, "scan_us");
	s->scan_us = json_is_integer(us) ? json_integer_value(us) : -1;
	return true;
}

static int
i64_cmp(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

/*
 * Move the broker's clock to target (broker time, ms) and wait for the
 * sweep that follows.  Returns 0 and fills *s, -1 on failure.
 */
static int
clock_step(struct bench *b, struct conn *ops, int64_t target,
    struct sweep_seen *s)
{
	const msgpack_object *d = conn_query(ops, "clock", NULL, 0);
	int64_t now, t0;

	if (d == NULL)
		return -1;
	now = get_i64(d, "now");
	if (target > now && conn_query(ops, "clock", "advance_ms",
	    target - now) == NULL)
		return -1;
	s->swept = false;
	t0 = rl_mono_us();
	while (!scan_log(b, note_sweep, s) &&
	    rl_mono_us() - t0 < (int64_t)SWEEP_WAIT_MS * 1000)
		rl_sleep_ms(20);
	return 0;
}

/*
 * One outreach.intervention (it touches no participant, so no deadline):
 * the time to its ack is one synced commit plus a round trip.  Returns
 * microseconds, or -1.
 */
static int64_t
submit_one(struct conn *c, const char *who, int n)
{
	uint64_t ref = conn_begin(c, "submit", 1);
	const msgpack_object *m;
	char eid[32];
	int64_t t0;

	snprintf(eid, sizeof(eid), "o-%d", n);
	codec_pack_str(&c->pk, "events");
	msgpack_pack_array(&c->pk, 1);
	msgpack_pack_map(&c->pk, 6);
	codec_pack_kv_str(&c->pk, "event_id", eid);
	codec_pack_kv_str(&c->pk, "type", "outreach.intervention");
	codec_pack_kv_i64(&c->pk, "occurred_at", rl_wall_ms());
	codec_pack_kv_str(&c->pk, "place", "public_space");
	codec_pack_kv_str(&c->pk, "qpv", "sanitas");
	codec_pack_kv_u64(&c->pk, "contacts", 1);
	t0 = rl_mono_us();
	if ((m = conn_call(c, ref, QUERY_TIMEOUT_MS)) == NULL) {
		fail("%s: no acks for an outreach.intervention", who);
		return -1;
	}
	if (acks_all_ok(m, who) < 0)
		return -1;
	return rl_mono_us() - t0;
}

static int
run_participants(struct bench *b)
{
	int64_t t0 = rl_wall_ms();
	struct rss fresh, loaded, restarted, swept;
	struct sweep_seen *seen = calloc(1, sizeof(*seen));
	int64_t sweeps[PROBE_GROUPS], scans[PROBE_GROUPS], commits[PROBE_GROUPS + 1];
	int nsweeps = 0, nscans = 0, ncommits = 0, status = 0, rc = -1;
	double stop_ms, start_ms, sync_ms;
	uint64_t armed = 0;
	int64_t ts;
	struct conn ops, snd;
	bool have_ops = false, have_snd = false;

	if (seen == NULL)
		return -1;
	printf("\nparticipants %" PRIu64 " participant.identified events (each "
	    "arms one deadline: no_referent at +15 d, the earliest rule),\n"
	    "             at t0, plus %d groups of %d probe participants "
	    "identified 24 h, 23 h, ... earlier\n", b->participants,
	    PROBE_GROUPS, b->due);

	/* Phase 1: load, with the broker at log_level = warn. */
	printf("\nphase 1      load (broker at log_level = warn, so the load is "
	    "not slowed by one log line per event)\n");
	if (write_config(b, "warn", true) == -1 || broker_start(b) == -1)
		goto out;
	fresh = broker_rss(b);
	if (send_probes(b, t0) == -1 || load_participants(b, t0) == -1)
		goto out;
	loaded = broker_rss(b);
	if (conn_open(&ops, b, &b->operator) == -1)
		goto out;
	have_ops = true;
	armed = print_health(&ops);
	conn_close(&ops);
	have_ops = false;
	print_store_size(b);
	printf("  broker RSS\n");
	print_rss("fresh broker, empty store", fresh);
	print_rss("same process after the load", loaded);

	/*
	 * Phase 2: restart at debug level, since log_level is read at start
	 * only and the sweep reports its cost at debug level.
	 */
	printf("\nphase 2      restart the broker with log_level = debug (the "
	    "level is not reloaded on SIGHUP)\n");
	stop_ms = broker_stop(b, &status);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fail("relaisd did not exit cleanly (status %d)", status);
		show_log_tail(b, 5);
		goto out;
	}
	if (write_config(b, "debug", true) == -1)
		goto out;
	{
		struct stat st;

		b->log_seen = stat(b->log, &st) == 0 ? st.st_size : 0;
	}
	/*
	 * The load leaves the store's pages dirty in the page cache; their
	 * write-back would slow every synced commit of phase 3.  Flush first.
	 */
	ts = rl_mono_us();
	sync();
	sync_ms = (rl_mono_us() - ts) / 1000.0;
	ts = rl_mono_us();
	if (broker_start(b) == -1)
		goto out;
	start_ms = (rl_mono_us() - ts) / 1000.0;
	restarted = broker_rss(b);
	printf("  stopped in %.0f ms (SIGTERM); sync(2) of the load's dirty pages "
	    "took %.0f ms;\n  ready again in %.0f ms with %" PRIu64
	    " participants in the store\n", stop_ms, sync_ms, start_ms,
	    b->participants + (uint64_t)(PROBE_GROUPS * b->due));
	print_rss("restarted broker", restarted);

	/* Phase 3: move the clock so that one probe group falls due at a time. */
	printf("\nphase 3      sweeps: the operator agent moves the broker's "
	    "manual clock (query what=clock,\n"
	    "             args.advance_ms) to 30 min past one probe group's "
	    "no_referent deadline; the bulk\n"
	    "             of the deadlines stays in the future.  The broker times "
	    "each sweep itself\n"
	    "             (sweep_us: the whole sweep transaction, its synced "
	    "commit included) and logs it\n"
	    "             as {\"msg\":\"alerts.swept\",...} when something was "
	    "due; read back from its log.\n"
	    "             For scale, just before each step a sender submits one "
	    "outreach.intervention:\n"
	    "             its ack time is one synced commit plus a round trip.\n");
	if (conn_open(&ops, b, &b->operator) == -1 ||
	    conn_ready(&ops, b->operator.id) == -1)
		goto out;
	have_ops = true;
	if (conn_open(&snd, b, &b->senders[0]) == -1 ||
	    conn_ready(&snd, b->senders[0].id) == -1)
		goto out;
	have_snd = true;
	for (int g = 0; g <= PROBE_GROUPS; g++) {
		/* Step PROBE_GROUPS has nothing due: the sweep reads one key. */
		int64_t target = t0 + 14 * DAY_MS + g * HOUR_MS + HOUR_MS / 2;
		int64_t commit_us = submit_one(&snd, b->senders[0].id, g);

		if (commit_us < 0 || clock_step(b, &ops, target, seen) == -1)
			goto out;
		commits[ncommits++] = commit_us;
		printf("  step %-2d     clock -> t0 + 14 d %02d:30: ", g + 1, g);
		if (g == PROBE_GROUPS) {
			printf("nothing due: %s\n", seen->swept ?
			    "alerts.swept logged (unexpected)" :
			    "no alerts.swept line, as expected (logged only when "
			    "something is due)");
			break;
		}
		if (!seen->swept) {
			printf("no alerts.swept line within %d ms\n", SWEEP_WAIT_MS);
			continue;
		}
		printf("due %" PRId64 ", fired %" PRId64 ", sweep_us %6" PRId64
		    ", scan_us %5" PRId64 "   (1-event submit ack %.3f ms)\n",
		    seen->deadlines, seen->fired, seen->sweep_us, seen->scan_us,
		    commit_us / 1000.0);
		if (seen->sweep_us >= 0)
			sweeps[nsweeps++] = seen->sweep_us;
		if (seen->scan_us >= 0)
			scans[nscans++] = seen->scan_us;
	}
	swept = broker_rss(b);
	print_health(&ops);
	print_rss("after the sweeps", swept);

	printf("\nsweep cost   ");
	if (nsweeps > 0) {
		qsort(sweeps, nsweeps, sizeof(sweeps[0]), i64_cmp);
		qsort(commits, ncommits, sizeof(commits[0]), i64_cmp);
		printf("%d sweeps of %d due deadlines among %" PRIu64 " armed: "
		    "min %.3f ms, median %.3f ms, max %.3f ms\n", nsweeps, b->due,
		    armed,
		    sweeps[0] / 1000.0, sweeps[nsweeps / 2] / 1000.0,
		    sweeps[nsweeps - 1] / 1000.0);
		printf("             for scale, one synced 1-event submit: min %.3f "
		    "ms, median %.3f ms, max %.3f ms\n", commits[0] / 1000.0,
		    commits[ncommits / 2] / 1000.0, commits[ncommits - 1] / 1000.0);
		printf("             median sweep %s a millisecond, synced commit "
		    "included\n", sweeps[nsweeps / 2] < 1000 ? "under" : "NOT under");
		if (nscans > 0) {
			qsort(scans, nscans, sizeof(scans[0]), i64_cmp);
			printf("             without the commit (index scan, pathway "
			    "reads, alerts written): min %.3f ms, median %.3f ms, "
			    "max %.3f ms\n", scans[0] / 1000.0,
			    scans[nscans / 2] / 1000.0, scans[nscans - 1] / 1000.0);
		}
	} else {
		printf("not measured: the broker logged no alerts.swept line\n");
	}
	if (seen->nperiodic > 0) {
		qsort(seen->periodic, seen->nperiodic, sizeof(seen->periodic[0]),
		    i64_cmp);
		printf("idle sweeps  %zu \"alerts.sweep\" lines: median %" PRId64
		    " us, max %" PRId64 " us\n", seen->nperiodic,
		    seen->periodic[seen->nperiodic / 2],
		    seen->periodic[seen->nperiodic - 1]);
	}
	rc = nsweeps == PROBE_GROUPS ? 0 : -1;
out:
	if (have_ops)
		conn_close(&ops);
	if (have_snd)
		conn_close(&snd);
	if (b->pid > 0) {
		broker_stop(b, &status);
		if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
			fail("relaisd did not exit cleanly (status %d)", status);
			rc = -1;
		}
	}
	if (rc != 0)
		show_log_tail(b, 5);
	free(seen);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Report mode                                                         */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

#define REPORT_RUNS 5

/* Time one kind of report REPORT_RUNS times; -1 if it failed. */
static int
time_report(struct bench *b, const struct agent_keys *who, const char *label,
    const char *period, const char *by, bool flows)
{
	int64_t us[REPORT_RUNS];
	uint32_t rows = 0;
	struct conn c;

	if (conn_open(&c, b, who) == -1)
		return -1;
	for (int i = 0; i < REPORT_RUNS; i++) {
		int64_t t = rl_mono_us();
		const msgpack_object *d = conn_report(&c, period, by, flows);
		const msgpack_object *list;

		us[i] = rl_mono_us() - t;
		if (d == NULL) {
			conn_close(&c);
			return -1;
		}
		list = codec_map_get(d, flows ? "flows" : "rows");
		rows = list != NULL && list->type == MSGPACK_OBJECT_ARRAY ?
		    list->via.array.size : 0;
	}
	conn_close(&c);
	qsort(us, REPORT_RUNS, sizeof(us[0]), cmp_i64);
	printf("  %-34s %4u rows   min %7.1f ms  median %7.1f ms  max %7.1f ms\n",
	    label, rows, us[0] / 1000.0, us[REPORT_RUNS / 2] / 1000.0,
	    us[REPORT_RUNS - 1] / 1000.0);
	return 0;
}

static int
run_report(struct bench *b)
{
	time_t now = time(NULL);
	struct tm tm;
	int year;
	int64_t year0;
	char period[8];

	gmtime_r(&now, &tm);
	year = tm.tm_year + 1900 - 1;
	year0 = (int64_t)cal_days_from_civil(year, 1, 1) * DAY_MS + 8 * HOUR_MS;
	snprintf(period, sizeof(period), "%04d", year % 10000);
	printf("\nreport       %" PRIu64 " participants, %d events each "
	    "(participant.identified, then contacts,\n"
	    "             barriers, confidence scores, enrollments, employment, "
	    "referrals), "
	    "dated over %s in %zu QPVs,\n"
	    "             rupture rules off; then the report of %s, each asked "
	    "%d times\n", b->participants, b->per_person, period, NQPVS,
	    period, REPORT_RUNS);
	if (write_config(b, "warn", false) == -1 || broker_start(b) == -1 ||
	    load_participants(b, year0) == -1)
		return -1;
	print_store_size(b);
	if (time_report(b, &b->coordinator, "coordinator, totals", period, NULL,
	    false) == -1 ||
	    time_report(b, &b->coordinator, "coordinator, by QPV", period, "qpv",
	    false) == -1 ||
	    time_report(b, &b->coordinator, "coordinator, by month", period,
	    "month", false) == -1 ||
	    time_report(b, &b->coordinator, "coordinator, by agent", period,
	    "agent", false) == -1 ||
	    time_report(b, &b->coordinator, "coordinator, flows", period, NULL,
	    true) == -1 ||
	    time_report(b, &b->operator, "operator, totals", period, NULL,
	    false) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Main                                                                */

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: relais-bench [--senders N] [--inflight K] [--events E] "
	    "[--seconds S] [--durability D] [--keep]\n"
	    "       relais-bench --participants M [--senders N] [--due D] [--keep]\n"
	    "       relais-bench --participants M --report [--per-person K] "
	    "[--senders N] [--keep]\n"
	    "\n"
	    "Starts $RELAIS_BIN/relaisd (default: this program's folder) on a "
	    "throw-away store\nand measures it.\n"
	    "\n"
	    "  --senders N       sender agents, one thread each (default %d)\n"
	    "  --inflight K      events in flight per sender (default %d)\n"
	    "  --events E        stop after E events (default %d)\n"
	    "  --seconds S       or after S seconds (default %.0f)\n"
	    "  --participants M  load M participants, then time the deadline "
	    "sweep\n"
	    "  --due D           probe participants due per clock step "
	    "(default %d)\n"
	    "  --report          load M participants' activity over last year, "
	    "then time\n"
	    "                    the report query of that year\n"
	    "  --per-person K    with --report: events per participant "
	    "(default 20)\n"
	    "  --durability D    the broker's durability: wal (default) or commit\n"
	    "  --keep            keep the temporary folder (config, keys, store, "
	    "log)\n",
	    DEFAULT_SENDERS, DEFAULT_INFLIGHT, DEFAULT_EVENTS, DEFAULT_SECONDS,
	    DEFAULT_DUE);
}

static int
find_relaisd(struct bench *b, const char *argv0)
{
	const char *bin = getenv("RELAIS_BIN");
	char self[PATH_MAX];

	if (bin != NULL && *bin != '\0') {
		if (snprintf(b->relaisd, sizeof(b->relaisd), "%s/relaisd", bin) >=
		    (int)sizeof(b->relaisd)) {
			fail("RELAIS_BIN is too long");
			return -1;
		}
	} else {
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *slash;

		if (n <= 0)
			snprintf(self, sizeof(self), "%s", argv0);
		else
			self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		else
			snprintf(self, sizeof(self), ".");
		if (snprintf(b->relaisd, sizeof(b->relaisd), "%s/relaisd", self) >=
		    (int)sizeof(b->relaisd)) {
			fail("the path of this program is too long");
			return -1;
		}
	}
	if (access(b->relaisd, X_OK) != 0) {
		fail("cannot run %s: %s; build it (make) or set RELAIS_BIN to its "
		    "folder", b->relaisd, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "senders", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "events", required_argument, NULL, 'e' },
		{ "seconds", required_argument, NULL, 't' },
		{ "participants", required_argument, NULL, 'p' },
		{ "due", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'K' },
		{ "report", no_argument, NULL, 'r' },
		{ "per-person", required_argument, NULL, 'P' },
		{ "durability", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b;
	uint64_t v;
	char *end;
	int c, rc, li = 0;

	memset(&b, 0, sizeof(b));
	b.nsenders = DEFAULT_SENDERS;
	b.inflight = DEFAULT_INFLIGHT;
	b.events = DEFAULT_EVENTS;
	b.seconds = DEFAULT_SECONDS;
	b.due = DEFAULT_DUE;
	b.durability = "wal";
	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		switch (c) {
		case 's':
			if (!parse_u64(optarg, 1, 64, &v))
				goto bad;
			b.nsenders = (int)v;
			break;
		case 'k':
			if (!parse_u64(optarg, 1, 100000, &v))
				goto bad;
			b.inflight = (int)v;
			break;
		case 'e':
			if (!parse_u64(optarg, 1, UINT64_C(1) << 40, &b.events))
				goto bad;
			break;
		case 't':
			b.seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(b.seconds > 0) ||
			    b.seconds > 86400)
				goto bad;
			break;
		case 'p':
			if (!parse_u64(optarg, 1, UINT64_C(100000000), &b.participants))
				goto bad;
			break;
		case 'd':
			if (!parse_u64(optarg, 1, RL_MAX_BATCH / PROBE_GROUPS, &v))
				goto bad;
			b.due = (int)v;
			break;
		case 'K':
			b.keep = true;
			break;
		case 'r':
			b.report = true;
			break;
		case 'P':
			if (!parse_u64(optarg, 1, 1000, &v))
				goto bad;
			b.per_person = (int)v;
			break;
		case 'D':
			if (strcmp(optarg, "commit") != 0 && strcmp(optarg, "wal") != 0)
				goto bad;
			b.durability = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (b.report && b.participants == 0) ||
	    (!b.report && b.per_person > 1)) {
		usage(stderr);
		return 2;
	}
	if (b.per_person == 0)
		b.per_person = b.report ? 20 : 1;
	if (find_relaisd(&b, argv[0]) == -1)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((b.zctx = zmq_ctx_new()) == NULL) {
		fail("zmq_ctx_new: %s", zmq_strerror(errno));
		return 1;
	}
	/* CURVE costs CPU on both sides; let libzmq use two I/O threads. */
	zmq_ctx_set(b.zctx, ZMQ_IO_THREADS, 2);
	printf("relais-bench: %s\n", b.report ? "a year's report" :
	    b.participants > 0 ?
	    "a million-participant store and the deadline sweep" :
	    "event throughput and acknowledgement latency");
	printf("broker       %s\n", b.relaisd);
	if (make_world(&b) == -1) {
		rc = -1;
	} else {
		print_machine(b.dir);
		rc = b.report ? run_report(&b) : b.participants > 0 ?
		    run_participants(&b) : run_throughput(&b);
	}
	if (b.pid > 0)
		broker_stop(&b, NULL);
	remove_world(&b);
	zmq_ctx_term(b.zctx);
	free(b.senders);
	return rc == 0 ? 0 : 1;

bad:
	fail("bad value for --%s: %s", opts[li].name, optarg);
	usage(stderr);
	return 2;
}
