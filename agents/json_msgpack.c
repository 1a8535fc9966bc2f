/*
 * JSON <-> msgpack conversion and RFC 3339 times (relais_json.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "calendar.h"
#include "codec.h"
#include "relais_json.h"

/* ------------------------------------------------------------------ */
/* RFC 3339                                                            */

/* Read exactly n decimal digits at *p; advance *p.  -1 if not digits. */
static int
read_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* The fraction after the seconds, in ms; 1 to 9 digits, the rest dropped. */
static int
read_fraction(const char **p, int *ms)
{
	int ndigits = 0;
	int v = 0;

	while (**p >= '0' && **p <= '9') {
		if (ndigits < 3)
			v = v * 10 + (**p - '0');
		ndigits++;
		(*p)++;
	}
	if (ndigits == 0 || ndigits > 9)
		return -1;
	for (int i = ndigits; i < 3; i++)
		v *= 10;
	*ms = v;
	return 0;
}

/* "Z", or "+HH:MM" / "-HH:MM", as minutes east of UTC. */
static int
read_offset(const char **p, int *minutes)
{
	int sign, hh, mm;

	if (**p == 'Z' || **p == 'z') {
		(*p)++;
		*minutes = 0;
		return 0;
	}
	if (**p != '+' && **p != '-')
		return -1;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (read_digits(p, 2, &hh) < 0 || **p != ':')
		return -1;
	(*p)++;
	if (read_digits(p, 2, &mm) < 0 || hh > 23 || mm > 59)
		return -1;
	*minutes = sign * (hh * 60 + mm);
	return 0;
}

int
relais_parse_time(const char *s, int64_t *ms)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, frac = 0, offset;

	if (s == NULL)
		return -1;
	if (read_digits(&p, 4, &y) < 0 || *p++ != '-' ||
	    read_digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    read_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't'))
		return -1;
	p++;
	if (read_digits(&p, 2, &h) < 0 || *p++ != ':' ||
	    read_digits(&p, 2, &mi) < 0 || *p++ != ':' ||
	    read_digits(&p, 2, &sec) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (read_fraction(&p, &frac) < 0)
			return -1;
	}
	if (read_offset(&p, &offset) < 0 || *p != '\0')
		return -1;
	/* Leap seconds (:60) are refused: the epoch-ms clock has none. */
	if (mo < 1 || mo > 12 || d < 1 || d > cal_month_length(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -1;

	int64_t secs = (int64_t)cal_days_from_civil(y, mo, d) * 86400 +
	    (int64_t)h * 3600 + mi * 60 + sec - (int64_t)offset * 60;
	*ms = secs * 1000 + frac;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON -> msgpack                                                     */

struct encoder {
	msgpack_packer *pk;
	char path[160];             /* where we are: "args.ids[2]" */
	char *field;                /* top-level member at fault, or NULL */
	size_t fieldlen;
	char *errbuf;
	size_t errlen;
};

static int
enc_fail(struct encoder *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
enc_fail(struct encoder *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->errbuf != NULL && e->errlen > 0) {
		n = snprintf(e->errbuf, e->errlen, "%s: ",
		    e->path[0] != '\0' ? e->path : "value");
		if (n >= 0 && (size_t)n < e->errlen) {
			va_start(ap, fmt);
			vsnprintf(e->errbuf + n, e->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	if (e->field != NULL && e->fieldlen > 0) {
		size_t len = strcspn(e->path, ".[");
		if (len >= e->fieldlen)
			len = e->fieldlen - 1;
		memcpy(e->field, e->path, len);
		e->field[len] = '\0';
	}
	return -1;
}

/* How a member's string value is packed, by the member's name. */
enum member_kind {
	MEMBER_PLAIN,               /* as a string */
	MEMBER_TIME,                /* "occurred_at", "at": RFC 3339 -> ms */
	MEMBER_BINARY,              /* "contact": base64 -> msgpack bin */
};

static int pack_value(struct encoder *e, const json_t *j, int depth,
    enum member_kind kind);

/* Append ".key" or "[i]" to the path; returns the length to restore. */
static size_t
path_push(struct encoder *e, const char *key, size_t index)
{
	size_t old = strlen(e->path);
	size_t room = sizeof(e->path) - old;

	if (key != NULL)
		snprintf(e->path + old, room, "%s%s", old > 0 ? "." : "", key);
	else
		snprintf(e->path + old, room, "[%zu]", index);
	return old;
}

static int
pack_time(struct encoder *e, const json_t *j)
{
	int64_t ms;

	if (relais_parse_time(json_string_value(j), &ms) < 0)
		return enc_fail(e, "\"%.40s\" is not an RFC 3339 time; write it "
		    "like 2026-11-27T09:30:00Z, or as milliseconds since the epoch",
		    json_string_value(j));
	if (msgpack_pack_int64(e->pk, ms) != 0)
		return enc_fail(e, "out of memory");
	return 0;
}

/* A sealed box travels as bin; JSON holds it as standard base64. */
static int
pack_base64(struct encoder *e, const json_t *j)
{
	const char *b64 = json_string_value(j);
	size_t len = json_string_length(j), n;
	unsigned char *bin = malloc(len / 4 * 3 + 3);
	int rc;

	if (bin == NULL)
		return enc_fail(e, "out of memory");
	if (sodium_base642bin(bin, len / 4 * 3 + 3, b64, len, NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bin);
		return enc_fail(e, "a string here must be the base64 of a sealed "
		    "box; give an object ({\"phone\":...}) to have it sealed");
	}
	rc = msgpack_pack_bin(e->pk, n) != 0 ||
	    msgpack_pack_bin_body(e->pk, bin, n) != 0;
	free(bin);
	return rc == 0 ? 0 : enc_fail(e, "out of memory");
}

static enum member_kind
member_kind(const char *key)
{
	if (strcmp(key, "occurred_at") == 0 || strcmp(key, "at") == 0)
		return MEMBER_TIME;
	if (strcmp(key, "contact") == 0)
		return MEMBER_BINARY;
	return MEMBER_PLAIN;
}

static int
pack_object(struct encoder *e, const json_t *j, int depth)
{
	const char *key;
	size_t keylen;
	json_t *value;

	if (msgpack_pack_map(e->pk, json_object_size(j)) != 0)
		return enc_fail(e, "out of memory");
	json_object_keylen_foreach((json_t *)j, key, keylen, value) {
		if (codec_pack_strn(e->pk, key, keylen) != 0)
			return enc_fail(e, "out of memory");
		size_t old = path_push(e, key, 0);
		if (pack_value(e, value, depth + 1, member_kind(key)) != 0)
			return -1;
		e->path[old] = '\0';
	}
	return 0;
}

static int
pack_array(struct encoder *e, const json_t *j, int depth)
{
	size_t i;
	json_t *value;

	if (msgpack_pack_array(e->pk, json_array_size(j)) != 0)
		return enc_fail(e, "out of memory");
	json_array_foreach(j, i, value) {
		size_t old = path_push(e, NULL, i);
		if (pack_value(e, value, depth + 1, MEMBER_PLAIN) != 0)
			return -1;
		e->path[old] = '\0';
	}
	return 0;
}

static int
refuse_real(struct encoder *e, double v)
{
	char num[40];

	/* Show 3.0 as "3.0", not "3", or the message would look absurd. */
	snprintf(num, sizeof(num), "%g", v);
	if (strspn(num, "-0123456789") == strlen(num))
		strcat(num, ".0");
	return enc_fail(e, "%s is a real number, and the relais protocol has "
	    "only integers (times in milliseconds); send an integer", num);
}

static int
pack_value(struct encoder *e, const json_t *j, int depth,
    enum member_kind kind)
{
	int rc = 0;

	if (depth > RELAIS_JSON_MAX_DEPTH)
		return enc_fail(e, "nested deeper than %d levels; flatten it",
		    RELAIS_JSON_MAX_DEPTH);
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return pack_object(e, j, depth);
	case JSON_ARRAY:
		return pack_array(e, j, depth);
	case JSON_STRING:
		if (kind == MEMBER_TIME)
			return pack_time(e, j);
		if (kind == MEMBER_BINARY)
			return pack_base64(e, j);
		rc = codec_pack_strn(e->pk, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		rc = msgpack_pack_int64(e->pk, json_integer_value(j));
		break;
	case JSON_REAL:
		return refuse_real(e, json_real_value(j));
	case JSON_TRUE:
		rc = msgpack_pack_true(e->pk);
		break;
	case JSON_FALSE:
		rc = msgpack_pack_false(e->pk);
		break;
	case JSON_NULL:
		rc = msgpack_pack_nil(e->pk);
		break;
	}
	return rc == 0 ? 0 : enc_fail(e, "out of memory");
}

int
json_to_msgpack_field(const json_t *j, msgpack_packer *pk, char *field,
    size_t fieldlen, char *errbuf, size_t errlen)
{
	struct encoder e = {
		.pk = pk, .field = field, .fieldlen = fieldlen,
		.errbuf = errbuf, .errlen = errlen,
	};

	if (field != NULL && fieldlen > 0)
		field[0] = '\0';
	if (j == NULL)
		return enc_fail(&e, "missing (NULL)");
	return pack_value(&e, j, 0, MEMBER_PLAIN);
}

int
json_to_msgpack(const json_t *j, msgpack_packer *pk, char *errbuf,
    size_t errlen)
{
	return json_to_msgpack_field(j, pk, NULL, 0, errbuf, errlen);
}

/* ------------------------------------------------------------------ */
/* msgpack -> JSON                                                     */

static json_t *to_json(const msgpack_object *o, int depth);

static json_t *
map_to_json(const msgpack_object_map *m, int depth)
{
	json_t *obj = json_object();

	if (obj == NULL)
		return NULL;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR)
			goto fail;
		json_t *v = to_json(&m->ptr[i].val, depth + 1);
		if (v == NULL ||
		    json_object_setn_new(obj, k->via.str.ptr, k->via.str.size, v) != 0)
			goto fail;
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

static json_t *
array_to_json(const msgpack_object_array *a, int depth)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	for (uint32_t i = 0; i < a->size; i++) {
		json_t *v = to_json(&a->ptr[i], depth + 1);
		if (v == NULL || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Binary data (a sealed contact) as a standard base64 string. */
static json_t *
bin_to_json(const msgpack_object_bin *b)
{
	size_t size = sodium_base64_encoded_len(b->size,
	    sodium_base64_VARIANT_ORIGINAL);
	char *text = malloc(size);
	json_t *j = NULL;

	if (text == NULL)
		return NULL;
	sodium_bin2base64(text, size, (const unsigned char *)b->ptr, b->size,
	    sodium_base64_VARIANT_ORIGINAL);
	j = json_string(text);
	free(text);
	return j;
}

static json_t *
to_json(const msgpack_object *o, int depth)
{
	if (depth > RELAIS_JSON_MAX_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		/* json_stringn() refuses invalid UTF-8, which we want. */
		return json_stringn(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		return array_to_json(&o->via.array, depth);
	case MSGPACK_OBJECT_MAP:
		return map_to_json(&o->via.map, depth);
	case MSGPACK_OBJECT_BIN:
		return bin_to_json(&o->via.bin);
	case MSGPACK_OBJECT_EXT:
	default:
		return NULL;
	}
}

json_t *
msgpack_to_json(const msgpack_object *o)
{
	return o == NULL ? NULL : to_json(o, 0);
}
