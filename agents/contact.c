/*
 * Sealing and opening contact details (contact.h).
 *
 * crypto_box_seal is used as libsodium gives it: an ephemeral key pair per
 * box, so two sealings of the same details differ and nothing about the
 * sender is in the box.  The plaintext lives in buffers we own and is
 * wiped with sodium_memzero() as soon as it is sealed or converted.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>
#include <sodium.h>

#include "contact.h"
#include "relais_proto.h"

const char *const contact_fields[] = {
	"name", "phone", "email", "address", "best_time", "note", NULL,
};

__attribute__((format(printf, 3, 4)))
static void *
fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static bool
is_contact_field(const char *key)
{
	for (size_t i = 0; contact_fields[i] != NULL; i++)
		if (strcmp(contact_fields[i], key) == 0)
			return true;
	return false;
}

/* Every member known, every value a short non-empty string. */
static const char *
check_details(const json_t *details, char *errbuf, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(details) || json_object_size(details) == 0)
		return fail(errbuf, errlen, "contact must be an object with at "
		    "least one of name, phone, email, address, best_time, note");
	json_object_foreach((json_t *)details, key, v) {
		size_t n = json_string_length(v);

		if (!is_contact_field(key))
			return fail(errbuf, errlen, "contact.%.40s is not a contact "
			    "detail; use name, phone, email, address, best_time "
			    "or note", key);
		if (!json_is_string(v) || n == 0 || n > CONTACT_MAX_VALUE_BYTES ||
		    memchr(json_string_value(v), '\0', n) != NULL)
			return fail(errbuf, errlen, "contact.%s must be text of 1 to "
			    "%d bytes", key, CONTACT_MAX_VALUE_BYTES);
	}
	return "";
}

/* The plaintext: the details as a msgpack map in contact_fields order. */
static int
pack_details(const json_t *details, msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, json_object_size(details)) != 0)
		return -1;
	for (size_t i = 0; contact_fields[i] != NULL; i++) {
		const json_t *v = json_object_get(details, contact_fields[i]);
		size_t klen = strlen(contact_fields[i]), vlen;

		if (v == NULL)
			continue;
		vlen = json_string_length(v);
		if (msgpack_pack_str(&pk, klen) != 0 ||
		    msgpack_pack_str_body(&pk, contact_fields[i], klen) != 0 ||
		    msgpack_pack_str(&pk, vlen) != 0 ||
		    msgpack_pack_str_body(&pk, json_string_value(v), vlen) != 0)
			return -1;
	}
	return 0;
}

static void
sbuffer_wipe(msgpack_sbuffer *sb)
{
	if (sb->data != NULL)
		sodium_memzero(sb->data, sb->alloc);
	msgpack_sbuffer_destroy(sb);
}

static json_t *
box_to_base64(const unsigned char *box, size_t len)
{
	size_t size = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *text = malloc(size);
	json_t *j;

	if (text == NULL)
		return NULL;
	sodium_bin2base64(text, size, box, len, sodium_base64_VARIANT_ORIGINAL);
	j = json_string(text);
	free(text);
	return j;
}

json_t *
contact_seal(const json_t *details, const unsigned char pk[CONTACT_KEY_BYTES],
    char *errbuf, size_t errlen)
{
	unsigned char box[RL_CONTACT_MAX_BOX];
	msgpack_sbuffer sb;
	json_t *sealed = NULL;

	if (check_details(details, errbuf, errlen) == NULL)
		return NULL;
	if (sodium_init() < 0)
		return fail(errbuf, errlen, "contact: libsodium cannot start");
	msgpack_sbuffer_init(&sb);
	if (pack_details(details, &sb) != 0)
		fail(errbuf, errlen, "contact: out of memory");
	else if (sb.size > RL_CONTACT_MAX_PLAIN)
		fail(errbuf, errlen, "contact is %zu bytes once packed; at most %d "
		    "fit in a sealed contact: shorten the details", sb.size,
		    RL_CONTACT_MAX_PLAIN);
	else if (crypto_box_seal(box, (const unsigned char *)sb.data, sb.size,
	    pk) != 0)
		fail(errbuf, errlen, "contact: the target's public key is not "
		    "usable for sealing; check its key");
	else if ((sealed = box_to_base64(box, sb.size + crypto_box_SEALBYTES)) == NULL)
		fail(errbuf, errlen, "contact: out of memory");
	sbuffer_wipe(&sb);
	return sealed;
}

/* The plaintext as JSON: a map of string keys to string values. */
static json_t *
details_to_json(const unsigned char *plain, size_t len, char *errbuf,
    size_t errlen)
{
	msgpack_unpacked up;
	size_t off = 0;
	json_t *details = json_object();
	const msgpack_object_map *m;
	bool ok;

	msgpack_unpacked_init(&up);
	ok = details != NULL &&
	    msgpack_unpack_next(&up, (const char *)plain, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == len &&
	    up.data.type == MSGPACK_OBJECT_MAP;
	m = &up.data.via.map;
	for (uint32_t i = 0; ok && i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
		char key[64];

		ok = k->type == MSGPACK_OBJECT_STR && v->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size > 0 && k->via.str.size < sizeof(key);
		if (!ok)
			break;
		memcpy(key, k->via.str.ptr, k->via.str.size);
		key[k->via.str.size] = '\0';
		/* json_stringn() refuses text that is not UTF-8. */
		ok = strlen(key) == k->via.str.size &&
		    json_object_set_new(details, key,
		    json_stringn(v->via.str.ptr, v->via.str.size)) == 0;
	}
	msgpack_unpacked_destroy(&up);
	if (!ok) {
		json_decref(details);
		return fail(errbuf, errlen, "the sealed contact opened, but it does "
		    "not hold a msgpack map of text details (PROTOCOL.md 6.1): "
		    "the sender's software wrote something else");
	}
	return details;
}

json_t *
contact_open(const unsigned char *box, size_t len,
    const unsigned char (*sks)[CONTACT_KEY_BYTES], size_t nsk,
    char *errbuf, size_t errlen)
{
	unsigned char plain[RL_CONTACT_MAX_PLAIN];
	unsigned char pk[CONTACT_KEY_BYTES];
	json_t *details;

	if (len < RL_CONTACT_MIN_BOX)
		return fail(errbuf, errlen, "the sealed contact is %zu bytes, too "
		    "short to be a sealed box (at least %d): it was cut short",
		    len, RL_CONTACT_MIN_BOX);
	if (len > RL_CONTACT_MAX_BOX)
		return fail(errbuf, errlen, "the sealed contact is %zu bytes, more "
		    "than a sealed contact may be (%d)", len, RL_CONTACT_MAX_BOX);
	if (sodium_init() < 0)
		return fail(errbuf, errlen, "libsodium cannot start");
	for (size_t i = 0; i < nsk; i++) {
		crypto_scalarmult_base(pk, sks[i]);
		if (crypto_box_seal_open(plain, box, len, pk, sks[i]) == 0) {
			details = details_to_json(plain, len - crypto_box_SEALBYTES,
			    errbuf, errlen);
			sodium_memzero(plain, sizeof(plain));
			return details;
		}
	}
	return fail(errbuf, errlen, "the sealed contact cannot be opened with "
	    "this agent's %s: it was sealed to another key, or altered on the "
	    "way; if this agent's key was replaced, give its old secret keys "
	    "(previous_secret_keys; RELAIS_PREVIOUS_KEYS for the relais "
	    "command)", nsk > 1 ? "keys" : "key");
}

json_t *
contact_open_base64(const char *b64,
    const unsigned char (*sks)[CONTACT_KEY_BYTES], size_t nsk,
    char *errbuf, size_t errlen)
{
	unsigned char box[RL_CONTACT_MAX_BOX + 3];
	size_t len;

	/* Longer than any sealed contact: the decoder says so before copying. */
	if (sodium_base642bin(box, sizeof(box), b64, strlen(b64), NULL, &len,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return fail(errbuf, errlen, "the sealed contact is not base64 of "
		    "at most %d bytes", RL_CONTACT_MAX_BOX);
	return contact_open(box, len, sks, nsk, errbuf, errlen);
}
