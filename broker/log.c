/*
 * JSON-lines logging (see log.h).
 *
 * Lines are built straight into one growing memory buffer and written out
 * by log_flush(), when the buffer passes LOG_FLUSH_AT, or at once for an
 * error (an error is often followed by exit, and must not be lost).  The
 * encoder is hand-written because it runs for every event: it reserves the
 * worst case (6 output bytes per input byte) once per value and then
 * copies without further checks.  Output is always valid JSON: control
 * characters are escaped and bytes that are not valid UTF-8 become U+FFFD.
 *
 * Lines at warn and error are rate limited (see log.h): each kind, keyed
 * by its msg and its first value when that is a string (usually the
 * agent), gets LOG_LIMIT_PER_SEC lines per second of the monotonic clock;
 * what goes beyond is counted, and one "log.suppressed" line reports the
 * count when the second is over.  Kinds live in a small open-addressed
 * table; when it is full, a kind shares the slot of its hash, which can
 * only make two kinds limit each other, never lose the count.
 *
 * A mutex makes log_write() safe from any thread; the broker's loop is the
 * only heavy user, so it is never contended.
 */
#include "log.h"
#include "utf8.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_FLUSH_AT  (64 * 1024)
#define LOG_KEEP_CAP  (1024 * 1024)  /* free a buffer grown past this */
#define LOG_SLOTS     128            /* kinds of warn/error lines tracked */
#define LOG_NAME_MAX  64             /* msg and first value kept for the report */

/* One kind of warn/error line and what it wrote in its current second. */
struct limit_slot {
	uint64_t hash;              /* 0: free */
	int64_t second;             /* of the monotonic clock */
	uint32_t lines;             /* written in that second */
	uint64_t suppressed;        /* not written since the last report */
	enum log_level level;
	char msg[LOG_NAME_MAX];
	char key[LOG_NAME_MAX];     /* the first value's key, "" if none */
	char value[LOG_NAME_MAX];
};

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug", [LOG_INFO] = "info",
	[LOG_WARN] = "warn", [LOG_ERROR] = "error",
};

static struct {
	pthread_mutex_t lock;
	FILE *out;                  /* NULL: stderr */
	enum log_level min;
	char *buf;
	size_t len, cap;
	bool holding;               /* lines from held_from on wait for release */
	size_t held_from;
	time_t ts_sec;              /* second ts_text was formatted for */
	char ts_text[24];           /* "2026-11-27T20:00:00" */
	int64_t (*seconds)(void);   /* the limiter's clock */
	int64_t reported_second;    /* last time the table was checked */
	uint64_t dropped;           /* lines the output refused */
	struct limit_slot slots[LOG_SLOTS];
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .min = LOG_INFO, .ts_sec = -1 };

void
log_init(FILE *out, enum log_level min)
{
	int saved = errno;

	log_flush();                /* pending lines go where they were meant to */
	pthread_mutex_lock(&L.lock);
	L.out = out;
	L.min = min;
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}

void
log_set_level(enum log_level min)
{
	pthread_mutex_lock(&L.lock);
	L.min = min;
	pthread_mutex_unlock(&L.lock);
}

static int64_t
monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec;
}

void
log_set_clock(int64_t (*seconds)(void))
{
	pthread_mutex_lock(&L.lock);
	L.seconds = seconds;
	pthread_mutex_unlock(&L.lock);
}

static int64_t
now_seconds(void)
{
	return L.seconds != NULL ? L.seconds() : monotonic_seconds();
}

int
log_level_from_name(const char *name)
{
	for (int l = LOG_DEBUG; l <= LOG_ERROR; l++)
		if (strcmp(name, level_names[l]) == 0)
			return l;
	return -1;
}

/* Room for n more bytes; false if memory is short. */
static bool
reserve(size_t n)
{
	if (L.cap - L.len >= n)
		return true;
	size_t cap = L.cap ? L.cap : 4096;
	while (cap - L.len < n) {
		if (cap > SIZE_MAX / 2)
			return false;
		cap *= 2;
	}
	char *buf = realloc(L.buf, cap);
	if (!buf)
		return false;
	L.buf = buf;
	L.cap = cap;
	return true;
}

/* Callers reserve first. */
static void
put(const char *s, size_t n)
{
	memcpy(L.buf + L.len, s, n);
	L.len += n;
}

/* A JSON string.  Each input byte gives at most 6 output bytes. */
static bool
put_string(const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;

	if (n > (SIZE_MAX - 2) / 6 || !reserve(6 * n + 2))
		return false;
	char *o = L.buf + L.len;
	*o++ = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t len = utf8_sequence_len(s + i, n - i);
			if (len) {
				memcpy(o, s + i, len);
				o += len;
				i += len;
			} else {
				memcpy(o, "\\ufffd", 6);
				o += 6;
				i++;
			}
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[c >> 4];
			o[4] = hex[c & 15];
			o += 5;
		}
		i++;
	}
	*o++ = '"';
	L.len = (size_t)(o - L.buf);
	return true;
}

static bool
put_u64(uint64_t v, bool negative)
{
	char tmp[24];
	char *p = tmp + sizeof tmp;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (negative)
		*--p = '-';
	size_t n = (size_t)(tmp + sizeof tmp - p);
	if (!reserve(n))
		return false;
	put(p, n);
	return true;
}

static bool
put_literal(const char *s)
{
	size_t n = strlen(s);
	if (!reserve(n))
		return false;
	put(s, n);
	return true;
}

static bool
put_value(const struct log_value *v)
{
	switch (v->type) {
	case LOG_T_STR:
		return v->s ? put_string(v->s, strlen(v->s)) : put_literal("null");
	case LOG_T_STRN:
		return v->s ? put_string(v->s, v->n) : put_literal("null");
	case LOG_T_I64:
		/* Negate in unsigned arithmetic: -INT64_MIN does not fit. */
		return v->i < 0 ? put_u64(0 - (uint64_t)v->i, true)
				: put_u64((uint64_t)v->i, false);
	case LOG_T_U64:
		return put_u64(v->u, false);
	case LOG_T_BOOL:
		return put_literal(v->i ? "true" : "false");
	}
	return put_literal("null");
}

/* {"ts":"2026-11-27T20:00:00.123Z" -- the date part is formatted once a
 * second, the milliseconds by hand: this runs for every line. */
static bool
put_ts(void)
{
	static const char open[] = "{\"ts\":\"";
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != L.ts_sec) {
		struct tm tm;
		gmtime_r(&now.tv_sec, &tm);
		strftime(L.ts_text, sizeof L.ts_text, "%Y-%m-%dT%H:%M:%S", &tm);
		L.ts_sec = now.tv_sec;
	}
	int ms = (int)(now.tv_nsec / 1000000);
	const char tail[6] = { '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
	    (char)('0' + ms % 10), 'Z', '"' };

	if (!reserve(sizeof open + sizeof L.ts_text + sizeof tail))
		return false;
	put(open, sizeof open - 1);
	put(L.ts_text, strlen(L.ts_text));
	put(tail, sizeof tail);
	return true;
}

/* The beginning of a line: {"ts":...,"level":...,"msg":... */
static bool
put_head(enum log_level level, const char *msg)
{
	return put_ts() && put_literal(",\"level\":\"") &&
	    put_literal(level_names[level]) && put_literal("\",\"msg\":") &&
	    put_string(msg, strlen(msg));
}

static bool
put_pair_u64(const char *key, uint64_t v)
{
	return put_literal(",") && put_string(key, strlen(key)) &&
	    put_literal(":") && put_u64(v, false);
}

/* A whole line made by the logger itself; dropped if memory is short. */
static void
put_own_line(size_t start, bool ok)
{
	ok = ok && put_literal("}\n");
	if (!ok)
		L.len = start;
}

/* Write len bytes from buf; false (and the stream reset) if that failed. */
static bool
write_bytes(FILE *out, const char *buf, size_t len)
{
	if (fwrite(buf, 1, len, out) == len && fflush(out) == 0)
		return true;
	clearerr(out);
	return false;
}

static uint64_t
count_lines(const char *buf, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n;
}

/*
 * Write the first n bytes of the buffer and take them out of it.  A failed
 * write drops the lines, and counts them: logging must never stop the
 * broker.  The next write says first how many were lost, so a gap in the
 * log is never silent.  The broker ignores SIGPIPE, so a reader that went
 * away is just a failed write.
 */
static void
write_out(size_t n)
{
	FILE *out = L.out ? L.out : stderr;
	size_t end = L.len;

	if (L.dropped) {
		/* The notice is built after the lines and written before them. */
		put_own_line(end, put_head(LOG_ERROR, "log.dropped") &&
		    put_pair_u64("lines", L.dropped));
		if (L.len > end && write_bytes(out, L.buf + end, L.len - end))
			L.dropped = 0;
		L.len = end;
	}
	if (L.dropped || !write_bytes(out, L.buf, n))
		L.dropped += count_lines(L.buf, n);
	memmove(L.buf, L.buf + n, L.len - n);
	L.len -= n;
}

/* Write what is not held; held lines move to the front of the buffer. */
static void
flush_locked(void)
{
	size_t n = L.holding ? L.held_from : L.len;

	if (n > 0)
		write_out(n);
	L.held_from = 0;
	if (L.len == 0 && L.cap > LOG_KEEP_CAP) {  /* one huge line: give the memory back */
		free(L.buf);
		L.buf = NULL;
		L.cap = 0;
	}
}

/*
 * An error is never held (it is often the last line before an exit): the
 * line just written at start moves ahead of the held lines and goes out.
 */
static void
write_error_now(size_t start)
{
	size_t n = L.len - start, held = start - L.held_from;
	char *line = malloc(n);

	if (line == NULL)
		return;                 /* it stays with the held lines */
	memcpy(line, L.buf + start, n);
	memmove(L.buf + L.held_from + n, L.buf + L.held_from, held);
	memcpy(L.buf + L.held_from, line, n);
	free(line);
	L.held_from += n;
	flush_locked();
}

/* The line saying how many lines of one kind were left out, and when. */
static void
report_suppressed(struct limit_slot *sl)
{
	size_t start = L.len;
	bool ok = put_head(sl->level, "log.suppressed") &&
	    put_literal(",\"what\":") && put_string(sl->msg, strlen(sl->msg));

	if (ok && sl->key[0])
		ok = put_literal(",") && put_string(sl->key, strlen(sl->key)) &&
		    put_literal(":") && put_string(sl->value, strlen(sl->value));
	put_own_line(start, ok && put_pair_u64("lines", sl->suppressed) &&
	    put_pair_u64("per_second", LOG_LIMIT_PER_SEC));
	sl->suppressed = 0;
}

/* Report every kind whose second is over and that left lines out. */
static void
report_all_suppressed(int64_t now)
{
	if (now == L.reported_second)
		return;
	L.reported_second = now;
	for (size_t i = 0; i < LOG_SLOTS; i++)
		if (L.slots[i].suppressed && L.slots[i].second != now)
			report_suppressed(&L.slots[i]);
}

void
log_flush(void)
{
	int saved = errno;

	pthread_mutex_lock(&L.lock);
	report_all_suppressed(now_seconds());
	flush_locked();
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}

static uint64_t
hash_bytes(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {     /* FNV-1a */
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void
copy_name(char *dst, const char *src, size_t n)
{
	if (n >= LOG_NAME_MAX)
		n = LOG_NAME_MAX - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * The slot of a line's kind: its msg, and its first value if that is a
 * string (so one agent's flood does not hide another agent's lines).
 */
static struct limit_slot *
limit_slot(enum log_level level, const char *msg,
    const char *key, const struct log_value *first)
{
	const char *v = NULL;
	size_t vlen = 0;

	if (key != NULL && first->type == LOG_T_STR && first->s != NULL) {
		v = first->s;
		vlen = strlen(v);
	} else if (key != NULL && first->type == LOG_T_STRN && first->s != NULL) {
		v = first->s;
		vlen = first->n;
	}
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, msg, strlen(msg) + 1);
	if (v != NULL)
		h = hash_bytes(hash_bytes(h, key, strlen(key) + 1), v, vlen);
	h |= 1;                     /* never 0, which marks a free slot */

	size_t home = (size_t)(h % LOG_SLOTS);
	for (size_t i = 0; i < LOG_SLOTS; i++) {
		struct limit_slot *sl = &L.slots[(home + i) % LOG_SLOTS];

		if (sl->hash == h)
			return sl;
		if (sl->hash == 0) {
			sl->hash = h;
			sl->level = level;
			copy_name(sl->msg, msg, strlen(msg));
			copy_name(sl->key, v != NULL ? key : "", v != NULL ? strlen(key) : 0);
			copy_name(sl->value, v != NULL ? v : "", vlen);
			return sl;
		}
	}
	return &L.slots[home];      /* table full: share the home slot */
}

/* True if this line may be written; counts it either way. */
static bool
limit_allows(struct limit_slot *sl, int64_t now)
{
	if (sl->second != now) {
		if (sl->suppressed)
			report_suppressed(sl);
		sl->second = now;
		sl->lines = 0;
	}
	if (sl->lines >= LOG_LIMIT_PER_SEC) {
		sl->suppressed++;
		return false;
	}
	sl->lines++;
	return true;
}

void
log_write(enum log_level level, const char *msg, ...)
{
	int saved = errno;
	va_list ap;

	if ((unsigned)level > LOG_ERROR)
		level = LOG_ERROR;
	if (msg == NULL)
		msg = "";
	pthread_mutex_lock(&L.lock);
	if (level < L.min) {
		pthread_mutex_unlock(&L.lock);
		errno = saved;
		return;
	}
	if (level >= LOG_WARN) {
		int64_t now = now_seconds();
		const char *key;
		struct log_value first = { .type = LOG_T_BOOL };

		va_start(ap, msg);
		if ((key = va_arg(ap, const char *)) != NULL)
			first = va_arg(ap, struct log_value);
		va_end(ap);
		report_all_suppressed(now);
		if (!limit_allows(limit_slot(level, msg, key, &first), now)) {
			pthread_mutex_unlock(&L.lock);
			errno = saved;
			return;
		}
	}

	size_t start = L.len;
	bool ok = put_head(level, msg);
	va_start(ap, msg);
	for (const char *key; ok && (key = va_arg(ap, const char *)) != NULL;) {
		struct log_value v = va_arg(ap, struct log_value);
		ok = put_literal(",") && put_string(key, strlen(key)) &&
		    put_literal(":") && put_value(&v);
	}
	va_end(ap);
	put_own_line(start, ok);   /* out of memory: drop the line, never half of it */

	if (level == LOG_ERROR && L.holding && L.len > start)
		write_error_now(start);
	else if (L.len >= LOG_FLUSH_AT || level == LOG_ERROR)
		flush_locked();
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}

void
log_hold(void)
{
	pthread_mutex_lock(&L.lock);
	if (!L.holding) {
		L.holding = true;
		L.held_from = L.len;
	}
	pthread_mutex_unlock(&L.lock);
}

void
log_release(bool keep)
{
	int saved = errno;

	pthread_mutex_lock(&L.lock);
	if (L.holding && !keep)
		L.len = L.held_from;
	L.holding = false;
	L.held_from = 0;
	if (L.len >= LOG_FLUSH_AT)
		flush_locked();
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}
