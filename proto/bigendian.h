/*
 * Big-endian integers of 1 to 8 bytes, as msgpack headers and the store's
 * keys and records hold them (most significant byte first, so that byte
 * order is numeric order).
 */
#ifndef RELAIS_BIGENDIAN_H
#define RELAIS_BIGENDIAN_H

#include <stdint.h>

static inline uint64_t
be_get(const void *p, unsigned n)
{
	const unsigned char *b = p;
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | b[i];
	return v;
}

static inline void
be_put(void *p, uint64_t v, unsigned n)
{
	unsigned char *b = p;

	for (unsigned i = n; i > 0; i--) {
		b[i - 1] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

#endif
