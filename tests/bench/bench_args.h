/*
 * Option parsing shared by the benchmark programs (relais-bench,
 * redis-peer): each is one file, so this is a header of static helpers.
 */
#ifndef RELAIS_BENCH_ARGS_H
#define RELAIS_BENCH_ARGS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* A decimal integer in [min, max], the whole of s; false otherwise. */
static inline bool
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < min || v > max)
		return false;
	*out = v;
	return true;
}

#endif
