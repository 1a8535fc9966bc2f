/*
 * Structured logs: one JSON object per line on stderr, for operators and jq.
 *
 *   log_info("event.accepted", "agent", LOG_STR(id), "seq", LOG_U64(seq), NULL);
 *
 * Each line has "ts" (RFC 3339 UTC, milliseconds), "level", "msg", then the
 * key/value pairs given.  Values are typed so strings are always escaped.
 * Lines are buffered and written by log_flush(), which the broker calls once
 * per loop pass, so logging never costs a write(2) per event.  Never pass
 * personal data (participant ids, free text) as a value.
 * log_*() preserve errno.
 *
 * Lines at warn and error are rate limited, so that a flood of refusals
 * or a failing disk cannot fill the operator's disk with the same line:
 * each kind (the msg, and the first value when it is a string, usually the
 * agent) gets LOG_LIMIT_PER_SEC lines a second; the rest are counted, and
 * a "log.suppressed" line at the same level gives "what" (the msg), that
 * first value and "lines" (how many were left out) once the second is
 * over.  Info and debug lines are one per lifecycle step of the work
 * actually done and are never limited.
 *
 * A sink that fails (a full disk, a reader that went away) loses lines
 * and never stops the caller; the next line that can be written is
 * preceded by "log.dropped" with the number of lines lost.
 */
#ifndef RELAIS_LOG_H
#define RELAIS_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

#define LOG_LIMIT_PER_SEC 20    /* warn/error lines of one kind per second */

enum log_vtype { LOG_T_STR, LOG_T_STRN, LOG_T_I64, LOG_T_U64, LOG_T_BOOL };

struct log_value {
	enum log_vtype type;
	const char *s;
	size_t n;
	int64_t i;
	uint64_t u;
};

#define LOG_STR(x)     (struct log_value){ .type = LOG_T_STR, .s = (x) }
#define LOG_STRN(x, l) (struct log_value){ .type = LOG_T_STRN, .s = (x), .n = (l) }
#define LOG_I64(x)     (struct log_value){ .type = LOG_T_I64, .i = (x) }
#define LOG_U64(x)     (struct log_value){ .type = LOG_T_U64, .u = (x) }
#define LOG_BOOL(x)    (struct log_value){ .type = LOG_T_BOOL, .i = !!(x) }

/* Where lines go (default stderr) and the lowest level written. */
void log_init(FILE *out, enum log_level min);
int log_level_from_name(const char *name);     /* -1 if unknown */
/* Change the lowest level written, keeping the output (config reload). */
void log_set_level(enum log_level min);
/* The rate limiter's clock, in whole seconds; NULL: the monotonic clock.
 * Tests drive it to cross seconds without sleeping. */
void log_set_clock(int64_t (*seconds)(void));

/* Key/value pairs: const char *key, struct log_value value, ..., NULL. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* Write out buffered lines. */
void log_flush(void);

/*
 * Lines that report what a write transaction did are true only if it
 * commits: log_hold() keeps the lines written from then on (errors
 * excepted: they go out at once), and log_release() keeps them for the
 * next flush (true) or drops them (false).  txn.c calls both.
 */
void log_hold(void);
void log_release(bool keep);

#endif
