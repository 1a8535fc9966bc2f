/*
 * JSON <-> msgpack for relais messages, shared by the client library, the
 * `relais` command, the benchmark and the tests.
 *
 * The mapping is the obvious one: objects <-> maps with string keys,
 * arrays, strings, integers, booleans, null.  The protocol has no real
 * numbers, so json_to_msgpack() refuses them rather than rounding silently.
 *
 * One convenience makes hand-written events readable: an object member
 * named "occurred_at" or "at" whose value is a string is read as an
 * RFC 3339 time ("2026-11-27T09:30:00Z", "2026-11-27T09:30:00.250Z",
 * "2026-11-27T10:30:00+01:00") and packed as integer milliseconds since the
 * Unix epoch, UTC, which is what the wire carries.  A member named
 * "contact" whose value is a string is read as standard base64 (RFC 4648,
 * with padding) and packed as msgpack bin: a sealed contact (PROTOCOL.md
 * §6.1).  Both ways, msgpack bin is standard base64 in JSON.  Everything
 * else is packed as it is: validating events is the broker's job.
 */
#ifndef RELAIS_JSON_H
#define RELAIS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <msgpack.h>

/* Nesting deeper than this is refused both ways; relais messages need 4. */
#define RELAIS_JSON_MAX_DEPTH 32

/*
 * Pack j into pk.  Returns 0, or -1 with a sentence in errbuf that starts
 * with the path of the offending value ("occurred_at: ...",
 * "args.ids[2]: ...").  On failure pk has received part of the object:
 * discard the buffer behind it.
 */
int json_to_msgpack(const json_t *j, msgpack_packer *pk, char *errbuf,
    size_t errlen);

/*
 * The same, also naming the top-level member at fault in field (for
 * "occurred_at" or "args.ids[2]", field is "occurred_at"; "" when the whole
 * value is at fault).  field may be NULL.
 */
int json_to_msgpack_field(const json_t *j, msgpack_packer *pk, char *field,
    size_t fieldlen, char *errbuf, size_t errlen);

/*
 * Convert a msgpack object to a new JSON value the caller decrefs.
 * Bin becomes a base64 string.
 * Returns NULL for what JSON cannot hold: map keys that are not strings,
 * integers above INT64_MAX, strings that are not UTF-8, ext types, nesting
 * deeper than RELAIS_JSON_MAX_DEPTH, or lack of memory.  Floats become
 * JSON reals.
 */
json_t *msgpack_to_json(const msgpack_object *o);

/*
 * Parse an RFC 3339 date-time into milliseconds since the Unix epoch.
 * Accepts "YYYY-MM-DDTHH:MM:SS", an optional fraction of 1 to 9 digits
 * (truncated to milliseconds), then "Z" or an offset "+HH:MM" / "-HH:MM".
 * "T" and "Z" may be lower case.  Returns 0, or -1 if s is not such a
 * time or names an impossible date (2026-02-30, 25:00, second 60).
 */
int relais_parse_time(const char *s, int64_t *ms);

#endif
