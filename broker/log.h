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
 */
#ifndef RELAIS_LOG_H
#define RELAIS_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

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

/* Key/value pairs: const char *key, struct log_value value, ..., NULL. */
void log_write(enum log_level level, const char *msg, ...);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* Write out buffered lines. */
void log_flush(void);

#endif
