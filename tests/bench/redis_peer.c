/*
 * redis-peer: the load of relais-bench's throughput mode, applied to a
 * Redis server, so that `make bench-peers` can compare relais with what a
 * partner could run instead.
 *
 *   redis-peer --socket PATH [--mode xadd|lua] [--connections N]
 *              [--inflight K] [--events E] [--seconds S]
 *
 * N connections (one thread each) keep exactly K commands in flight each,
 * pipelined, topping up as replies arrive: the shapes of relais-bench's
 * --senders N --inflight K.  One command carries one referral.sent event.
 *
 *   xadd  XADD of the event to one stream: the floor of what an
 *         acknowledged, durable append costs in Redis.
 *   lua   one script per event (EVALSHA) doing the work the broker does
 *         for a referral: dedup SET NX, XADD to the log, XADD to the
 *         recipient's mailbox, HSET of the participant's record, ZADD of
 *         the participant's next deadline.
 *
 * Durability is the server's: bench-peers starts it with appendonly yes and
 * appendfsync always, so a reply means the command is in a synced AOF.
 *
 * The last line of a successful run is machine-readable:
 *   result events_per_s=X ack_p50_ms=Y ack_p99_ms=Z
 * (latency: command sent -> its reply received, per event).
 *
 * Exit status: 0 when every command succeeded, 1 when the run failed, 2 on
 * a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench_args.h"

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_INFLIGHT    100
#define DEFAULT_EVENTS      200000
#define DEFAULT_SECONDS     10.0
#define MAX_CONNECTIONS     256
#define MAX_INFLIGHT        100000
#define REFERRALS_PER_PERSON 4

/*
 * The script of the lua mode.  ARGV: event_id, participant, referral, to,
 * occurred_at.  Returns 1 for a new event, 0 for a duplicate.
 */
static const char lua_script[] =
    "if not redis.call('SET', 'dedup:' .. ARGV[1], '1', 'NX') then\n"
    "  return 0\n"
    "end\n"
    "local id = redis.call('XADD', 'log', '*', 'event_id', ARGV[1],\n"
    "  'type', 'referral.sent', 'participant', ARGV[2],\n"
    "  'referral', ARGV[3], 'to', ARGV[4], 'occurred_at', ARGV[5],\n"
    "  'purpose', 'bench')\n"
    "redis.call('XADD', 'mailbox:' .. ARGV[4], '*', 'log_id', id,\n"
    "  'event_id', ARGV[1])\n"
    "redis.call('HSET', 'participant:' .. ARGV[2], 'state', 'referred',\n"
    "  'last_event', ARGV[1], 'updated_at', ARGV[5])\n"
    "redis.call('ZADD', 'deadlines', tonumber(ARGV[5]) + "
    "1296000000, ARGV[2])\n"
    "return 1\n";

enum mode { MODE_XADD, MODE_LUA };

struct peer {
	const char *socket;
	enum mode mode;
	int nconn;
	int inflight;
	uint64_t events;
	double seconds;
	char sha[41];               /* of the loaded script, lua mode */

	int64_t t_end_us;
	atomic_uint_fast64_t claimed;
	atomic_bool abort;
};

struct conn {
	struct peer *p;
	int idx;
	pthread_t th;
	uint64_t done, dups;
	int64_t t_last_us;
	uint32_t *lat_us;           /* one per event */
	size_t nlat, caplat;
	bool failed;
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
claim(struct peer *p)
{
	uint64_t n;

	if (atomic_load(&p->abort) || mono_us() >= p->t_end_us)
		return UINT64_MAX;
	n = atomic_fetch_add(&p->claimed, 1);
	return n < p->events ? n : UINT64_MAX;
}

/* Queue the command for event n (numbered per connection). */
static int
append_event(struct conn *c, redisContext *rc, uint64_t n)
{
	char eid[48], pid[48], rid[48], at[24];
	const char *argv[20];
	size_t argc = 0;

	snprintf(eid, sizeof(eid), "ev-%d-%" PRIu64, c->idx + 1, n);
	snprintf(pid, sizeof(pid), "p-%d-%" PRIu64, c->idx + 1,
	    n / REFERRALS_PER_PERSON);
	snprintf(rid, sizeof(rid), "r-%d-%" PRIu64, c->idx + 1, n);
	snprintf(at, sizeof(at), "%" PRId64, wall_ms());
	if (c->p->mode == MODE_XADD) {
		const char *xa[] = { "XADD", "log", "*", "event_id", eid,
		    "type", "referral.sent", "participant", pid, "referral", rid,
		    "to", "bench-rx", "occurred_at", at, "purpose", "bench" };

		argc = sizeof(xa) / sizeof(xa[0]);
		memcpy(argv, xa, sizeof(xa));
	} else {
		const char *ev[] = { "EVALSHA", c->p->sha, "0", eid, pid, rid,
		    "bench-rx", at };

		argc = sizeof(ev) / sizeof(ev[0]);
		memcpy(argv, ev, sizeof(ev));
	}
	return redisAppendCommandArgv(rc, (int)argc, argv, NULL) == REDIS_OK ?
	    0 : -1;
}

static int
flush(redisContext *rc)
{
	int done = 0;

	while (!done)
		if (redisBufferWrite(rc, &done) != REDIS_OK)
			return -1;
	return 0;
}

static int
lat_add(struct conn *c, int64_t us)
{
	if (c->nlat == c->caplat) {
		size_t ncap = c->caplat ? c->caplat * 2 : 4096;
		uint32_t *nv = realloc(c->lat_us, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		c->lat_us = nv;
		c->caplat = ncap;
	}
	c->lat_us[c->nlat++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)us;
	return 0;
}

/* Check one reply; -1 (reported) if the command failed. */
static int
take_reply(struct conn *c, redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis-peer: connection %d: the server refused a "
		    "command: %s\n", c->idx + 1, r->str);
		return -1;
	}
	if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
		c->dups++;
	else
		c->done++;
	return 0;
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct peer *p = c->p;
	int64_t *sent = calloc(p->inflight, sizeof(*sent));
	struct timeval tv = { 10, 0 };
	redisContext *rc = redisConnectUnixWithTimeout(p->socket, tv);
	size_t head = 0, tail = 0, inflight = 0;
	uint64_t n = 0;
	bool stop = false;

	if (sent == NULL || rc == NULL || rc->err) {
		fprintf(stderr, "redis-peer: cannot connect to %s: %s\n", p->socket,
		    rc != NULL ? rc->errstr : "out of memory");
		goto broken;
	}
	while (!(stop && inflight == 0)) {
		redisReply *r;

		while (!stop && inflight < (size_t)p->inflight) {
			uint64_t k = claim(p);

			if (k == UINT64_MAX) {
				stop = true;
				break;
			}
			if (append_event(c, rc, n++) == -1 || flush(rc) == -1)
				goto io_error;
			sent[tail] = mono_us();
			tail = (tail + 1) % (size_t)p->inflight;
			inflight++;
		}
		if (inflight == 0)
			break;
		if (redisGetReply(rc, (void **)&r) != REDIS_OK)
			goto io_error;
		c->t_last_us = mono_us();
		/* Replies come in command order: the oldest send is this one's. */
		if (lat_add(c, c->t_last_us - sent[head]) == -1) {
			freeReplyObject(r);
			goto broken;
		}
		head = (head + 1) % (size_t)p->inflight;
		inflight--;
		if (take_reply(c, r) == -1) {
			freeReplyObject(r);
			goto broken;
		}
		freeReplyObject(r);
	}
	goto out;
io_error:
	fprintf(stderr, "redis-peer: connection %d: %s\n", c->idx + 1, rc->errstr);
broken:
	c->failed = true;
	atomic_store(&p->abort, true);
out:
	if (rc != NULL)
		redisFree(rc);
	free(sent);
	return NULL;
}

/* SCRIPT LOAD once; every connection then runs it by its SHA-1. */
static int
load_script(struct peer *p)
{
	struct timeval tv = { 10, 0 };
	redisContext *rc = redisConnectUnixWithTimeout(p->socket, tv);
	redisReply *r;
	int ret = -1;

	if (rc == NULL || rc->err) {
		fprintf(stderr, "redis-peer: cannot connect to %s: %s; is "
		    "redis-server listening there?\n", p->socket,
		    rc != NULL ? rc->errstr : "out of memory");
		goto out;
	}
	r = redisCommand(rc, "SCRIPT LOAD %s", lua_script);
	if (r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40) {
		memcpy(p->sha, r->str, 41);
		ret = 0;
	} else {
		fprintf(stderr, "redis-peer: SCRIPT LOAD failed: %s\n",
		    r == NULL ? rc->errstr : r->type == REDIS_REPLY_ERROR ?
		    r->str : "unexpected reply");
	}
	freeReplyObject(r);
out:
	if (rc != NULL)
		redisFree(rc);
	return ret;
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static double
pct_ms(const uint32_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	if (n == 0)
		return 0;
	return v[i >= n ? n - 1 : i] / 1000.0;
}

static int
run(struct peer *p)
{
	struct conn *cs = calloc(p->nconn, sizeof(*cs));
	uint32_t *all = NULL;
	uint64_t done = 0, dups = 0;
	size_t nall = 0, k = 0;
	int64_t t0, t_last = 0;
	bool failed = false;
	double secs;

	if (cs == NULL)
		return -1;
	if (p->mode == MODE_LUA && load_script(p) == -1) {
		free(cs);
		return -1;
	}
	atomic_init(&p->claimed, 0);
	atomic_init(&p->abort, false);
	t0 = mono_us();
	p->t_end_us = t0 + (int64_t)(p->seconds * 1e6);
	for (int i = 0; i < p->nconn; i++) {
		cs[i].p = p;
		cs[i].idx = i;
		pthread_create(&cs[i].th, NULL, conn_main, &cs[i]);
	}
	for (int i = 0; i < p->nconn; i++) {
		pthread_join(cs[i].th, NULL);
		failed |= cs[i].failed;
		done += cs[i].done;
		dups += cs[i].dups;
		nall += cs[i].nlat;
		if (cs[i].t_last_us > t_last)
			t_last = cs[i].t_last_us;
	}
	if (!failed && (all = malloc((nall ? nall : 1) * sizeof(*all))) == NULL)
		failed = true;
	for (int i = 0; i < p->nconn; i++) {
		if (all != NULL && cs[i].nlat > 0) {
			memcpy(all + k, cs[i].lat_us, cs[i].nlat * sizeof(*all));
			k += cs[i].nlat;
		}
		free(cs[i].lat_us);
	}
	free(cs);
	secs = (t_last - t0) / 1e6;
	if (failed || secs <= 0 || dups > 0) {
		if (dups > 0)
			fprintf(stderr, "redis-peer: %" PRIu64 " events reported as "
			    "duplicates: the server was not empty\n", dups);
		free(all);
		return -1;
	}
	qsort(all, nall, sizeof(*all), u32_cmp);
	printf("load         %d connections x %d commands in flight, %s, "
	    "one referral.sent per command\n", p->nconn, p->inflight,
	    p->mode == MODE_XADD ? "XADD" : "EVALSHA (SET NX, 2 XADD, HSET, ZADD)");
	printf("events       %" PRIu64 " in %.2f s: %.0f events/s\n", done, secs,
	    done / secs);
	printf("ack latency  p50 %.2f ms   p99 %.2f ms   max %.2f ms\n",
	    pct_ms(all, nall, 0.50), pct_ms(all, nall, 0.99),
	    pct_ms(all, nall, 1.0));
	printf("result events_per_s=%.0f ack_p50_ms=%.3f ack_p99_ms=%.3f\n",
	    done / secs, pct_ms(all, nall, 0.50), pct_ms(all, nall, 0.99));
	free(all);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: redis-peer --socket PATH [--mode xadd|lua] [--connections N]\n"
	    "                  [--inflight K] [--events E] [--seconds S]\n"
	    "\n"
	    "Drives a running redis-server (started by `make bench-peers` with\n"
	    "appendfsync always) with referral.sent events.\n"
	    "\n"
	    "  --socket PATH      the server's Unix socket\n"
	    "  --mode M           xadd: one XADD per event (default); lua: one\n"
	    "                     script per event (dedup, log, mailbox,\n"
	    "                     participant, deadline)\n"
	    "  --connections N    connections, one thread each (default %d, "
	    "max %d)\n"
	    "  --inflight K       commands in flight per connection (default %d)\n"
	    "  --events E         stop after E events (default %d)\n"
	    "  --seconds S        or after S seconds (default %.0f)\n",
	    DEFAULT_CONNECTIONS, MAX_CONNECTIONS, DEFAULT_INFLIGHT,
	    DEFAULT_EVENTS, DEFAULT_SECONDS);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "mode", required_argument, NULL, 'm' },
		{ "connections", required_argument, NULL, 'c' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "events", required_argument, NULL, 'e' },
		{ "seconds", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct peer p;
	uint64_t v;
	char *end;
	int c, li = 0;

	memset(&p, 0, sizeof(p));
	p.mode = MODE_XADD;
	p.nconn = DEFAULT_CONNECTIONS;
	p.inflight = DEFAULT_INFLIGHT;
	p.events = DEFAULT_EVENTS;
	p.seconds = DEFAULT_SECONDS;
	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		switch (c) {
		case 'S':
			p.socket = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "xadd") == 0)
				p.mode = MODE_XADD;
			else if (strcmp(optarg, "lua") == 0)
				p.mode = MODE_LUA;
			else
				goto bad;
			break;
		case 'c':
			if (!parse_u64(optarg, 1, MAX_CONNECTIONS, &v))
				goto bad;
			p.nconn = (int)v;
			break;
		case 'k':
			if (!parse_u64(optarg, 1, MAX_INFLIGHT, &v))
				goto bad;
			p.inflight = (int)v;
			break;
		case 'e':
			if (!parse_u64(optarg, 1, UINT64_C(1) << 40, &p.events))
				goto bad;
			break;
		case 't':
			p.seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(p.seconds > 0) ||
			    p.seconds > 86400)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || p.socket == NULL) {
		if (p.socket == NULL)
			fprintf(stderr, "redis-peer: --socket is required\n");
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(&p) == 0 ? 0 : 1;

bad:
	fprintf(stderr, "redis-peer: bad value for --%s: %s\n", opts[li].name,
	    optarg);
	usage(stderr);
	return 2;
}
