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
	time_t ts_sec;              /* second ts_text was formatted for */
	char ts_text[24];           /* "2026-11-27T20:00:00" */
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .min = LOG_INFO, .ts_sec = -1 };

void log_init(FILE *out, enum log_level min)
{
	int saved = errno;

	log_flush();                /* pending lines go where they were meant to */
	pthread_mutex_lock(&L.lock);
	L.out = out;
	L.min = min;
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}

int log_level_from_name(const char *name)
{
	for (int l = LOG_DEBUG; l <= LOG_ERROR; l++)
		if (strcmp(name, level_names[l]) == 0)
			return l;
	return -1;
}

/* Room for n more bytes; false if memory is short. */
static bool reserve(size_t n)
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
static void put(const char *s, size_t n)
{
	memcpy(L.buf + L.len, s, n);
	L.len += n;
}

/* A JSON string.  Each input byte gives at most 6 output bytes. */
static bool put_string(const char *str, size_t n)
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

static bool put_u64(uint64_t v, bool negative)
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

static bool put_literal(const char *s)
{
	size_t n = strlen(s);
	if (!reserve(n))
		return false;
	put(s, n);
	return true;
}

static bool put_value(const struct log_value *v)
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
static bool put_ts(void)
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

static void flush_locked(void)
{
	FILE *out = L.out ? L.out : stderr;

	if (L.len) {
		/* A failed write drops the lines: logging must never stop the
		 * broker, and there is nowhere else to report it. */
		if (fwrite(L.buf, 1, L.len, out) != L.len || fflush(out) != 0)
			clearerr(out);
		L.len = 0;
	}
	if (L.cap > LOG_KEEP_CAP) {     /* one huge line: give the memory back */
		free(L.buf);
		L.buf = NULL;
		L.cap = 0;
	}
}

void log_flush(void)
{
	int saved = errno;

	pthread_mutex_lock(&L.lock);
	flush_locked();
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}

void log_write(enum log_level level, const char *msg, ...)
{
	int saved = errno;
	va_list ap;

	if ((unsigned)level > LOG_ERROR)
		level = LOG_ERROR;
	pthread_mutex_lock(&L.lock);
	if (level < L.min) {
		pthread_mutex_unlock(&L.lock);
		errno = saved;
		return;
	}

	size_t start = L.len;
	bool ok = put_ts() && put_literal(",\"level\":\"") &&
		  put_literal(level_names[level]) && put_literal("\",\"msg\":") &&
		  put_string(msg ? msg : "", msg ? strlen(msg) : 0);
	va_start(ap, msg);
	for (const char *key; ok && (key = va_arg(ap, const char *)) != NULL;) {
		struct log_value v = va_arg(ap, struct log_value);
		ok = put_literal(",") && put_string(key, strlen(key)) &&
		     put_literal(":") && put_value(&v);
	}
	va_end(ap);
	ok = ok && put_literal("}\n");
	if (!ok)
		L.len = start;          /* out of memory: drop the line, never half of it */

	if (L.len >= LOG_FLUSH_AT || level == LOG_ERROR)
		flush_locked();
	pthread_mutex_unlock(&L.lock);
	errno = saved;
}
