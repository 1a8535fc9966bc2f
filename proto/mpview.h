/*
 * A zero-copy msgpack reader into caller-provided nodes.
 *
 * msgpack-c's msgpack_unpack_next() allocates a zone and copies the object
 * tree into it; for the small documents the broker reads on every event
 * (a participant's stored pathway) that costs more than the rest of the
 * decoding.  mpview_parse() builds the same msgpack_object tree from two
 * arrays the caller owns, with strings pointing into the buffer, so the
 * tree lives exactly as long as the buffer and the arrays.
 *
 * It refuses what it does not need (extension types), anything truncated
 * or trailing, containers announcing more entries than bytes remain, and
 * trees deeper than MPVIEW_MAX_DEPTH or larger than the arrays: the caller
 * then falls back to msgpack-c, or reports the document as damaged.
 */
#ifndef RELAIS_MPVIEW_H
#define RELAIS_MPVIEW_H

#include <stddef.h>
#include <msgpack.h>

#define MPVIEW_MAX_DEPTH 16     /* below msgpack-c's own limit of 32 */

struct mpview {
	msgpack_object *objs;       /* array elements */
	size_t nobjs;
	msgpack_object_kv *kvs;     /* map entries */
	size_t nkvs;
};

/* Parse exactly one value filling len bytes.  0, or -1 if refused. */
int mpview_parse(const char *buf, size_t len, struct mpview *v,
    msgpack_object *out);

#endif
