/*
 * Unit tests of agents/contact.c: sealing contact details to a CURVE
 * public key and opening them with the matching secret key (and only with
 * it), what an altered or cut box gives, previous keys after a rotation,
 * and the JSON form of a sealed box (base64 both ways).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "contact.h"
#include "relais_json.h"
#include "relais_proto.h"

/* A CURVE key pair as `relais keygen` makes it, decoded from Z85. */
struct pair {
	unsigned char pk[32], sk[32];
};

static struct pair
curve_pair(void)
{
	char pub[41], sec[41];
	struct pair p;

	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	assert_non_null(zmq_z85_decode(p.pk, pub));
	assert_non_null(zmq_z85_decode(p.sk, sec));
	return p;
}

static json_t *
details(void)
{
	return json_pack("{s:s, s:s, s:s}", "name", "Awa D.", "phone",
	    "0612345678", "best_time", "après 17 h");
}

/* Seal d to p, and return the box's bytes (malloc'd) and length. */
static unsigned char *
seal_bytes(const json_t *d, const struct pair *p, size_t *len)
{
	char err[256];
	json_t *sealed = contact_seal(d, p->pk, err, sizeof(err));
	unsigned char *box = malloc(RL_CONTACT_MAX_BOX + 3);
	const char *b64;

	if (sealed == NULL)
		fail_msg("seal refused: %s", err);
	b64 = json_string_value(sealed);
	assert_int_equal(sodium_base642bin(box, RL_CONTACT_MAX_BOX + 3, b64,
	    strlen(b64), NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
	json_decref(sealed);
	return box;
}

static void
test_a_curve_key_pair_seals_and_opens(void **state)
{
	struct pair target = curve_pair();
	json_t *d = details(), *opened;
	size_t len;
	unsigned char *box = seal_bytes(d, &target, &len);
	char err[256];

	/* The CURVE secret key is the X25519 scalar of the CURVE public key. */
	unsigned char derived[32];
	crypto_scalarmult_base(derived, target.sk);
	assert_memory_equal(derived, target.pk, 32);

	opened = contact_open(box, len, &target.sk, 1, err, sizeof(err));
	if (opened == NULL)
		fail_msg("open refused: %s", err);
	assert_true(json_equal(opened, d));
	/* The box holds no plaintext. */
	assert_null(memmem(box, len, "0612345678", 10));
	assert_null(memmem(box, len, "Awa", 3));
	json_decref(opened);
	free(box);
	json_decref(d);
}

static void
test_two_sealings_differ(void **state)
{
	struct pair target = curve_pair();
	json_t *d = details();
	size_t la, lb;
	unsigned char *a = seal_bytes(d, &target, &la);
	unsigned char *b = seal_bytes(d, &target, &lb);

	assert_int_equal(la, lb);
	assert_true(memcmp(a, b, la) != 0);
	free(a);
	free(b);
	json_decref(d);
}

static void
test_only_the_target_opens(void **state)
{
	struct pair target = curve_pair(), sender = curve_pair(),
	    coordinator = curve_pair();
	json_t *d = details();
	size_t len;
	unsigned char *box = seal_bytes(d, &target, &len);
	unsigned char others[2][32];
	char err[400];

	memcpy(others[0], sender.sk, 32);
	memcpy(others[1], coordinator.sk, 32);
	assert_null(contact_open(box, len, (const unsigned char (*)[32])others, 2,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "cannot be opened with this agent's keys"));
	free(box);
	json_decref(d);
}

static void
test_altered_or_cut_box_refused(void **state)
{
	struct pair target = curve_pair();
	json_t *d = details();
	size_t len;
	unsigned char *box = seal_bytes(d, &target, &len);
	char err[400];

	for (size_t i = 0; i < len; i += 7) {
		box[i] ^= 0x01;
		assert_null(contact_open(box, len, &target.sk, 1, err, sizeof(err)));
		assert_non_null(strstr(err, "altered on the way"));
		box[i] ^= 0x01;
	}
	/* Cut, but still long enough to look like a box: the MAC fails. */
	assert_null(contact_open(box, len - 1, &target.sk, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot be opened"));
	/* Shorter than any box. */
	assert_null(contact_open(box, RL_CONTACT_MIN_BOX - 1, &target.sk, 1, err,
	    sizeof(err)));
	assert_string_equal(err, "the sealed contact is 48 bytes, too short to "
	    "be a sealed box (at least 49): it was cut short");
	assert_null(contact_open_base64("not base64 at all!", &target.sk, 1, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "not base64"));
	free(box);
	json_decref(d);
}

/* After a key rotation, older boxes open with a previous key. */
static void
test_previous_keys_open_older_boxes(void **state)
{
	struct pair old = curve_pair(), current = curve_pair();
	json_t *d = details(), *opened;
	size_t len;
	unsigned char *box = seal_bytes(d, &old, &len);
	unsigned char keys[2][32];
	char err[400];

	memcpy(keys[0], current.sk, 32);
	assert_null(contact_open(box, len, (const unsigned char (*)[32])keys, 1,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "old secret keys"));
	memcpy(keys[1], old.sk, 32);
	opened = contact_open(box, len, (const unsigned char (*)[32])keys, 2, err,
	    sizeof(err));
	assert_non_null(opened);
	assert_true(json_equal(opened, d));
	json_decref(opened);
	free(box);
	json_decref(d);
}

static void
expect_seal_refused(json_t *d, const char *part)
{
	struct pair target = curve_pair();
	char err[256] = "";
	json_t *sealed = contact_seal(d, target.pk, err, sizeof(err));

	if (sealed != NULL || strstr(err, part) == NULL)
		fail_msg("expected a refusal containing \"%s\", got \"%s\"", part,
		    sealed != NULL ? "sealed" : err);
	json_decref(d);
}

static void
test_details_checked_before_sealing(void **state)
{
	char big[CONTACT_MAX_VALUE_BYTES + 2];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_seal_refused(json_object(), "at least one of name, phone");
	expect_seal_refused(json_pack("{s:s}", "fax", "02"),
	    "contact.fax is not a contact detail");
	expect_seal_refused(json_pack("{s:i}", "phone", 612345678),
	    "contact.phone must be text");
	expect_seal_refused(json_pack("{s:s}", "phone", ""), "contact.phone must be text");
	expect_seal_refused(json_pack("{s:s}", "note", big), "contact.note must be text");
	big[CONTACT_MAX_VALUE_BYTES] = '\0';
	/* Four details of 280 bytes are more than 1024 once packed. */
	expect_seal_refused(json_pack("{s:s, s:s, s:s, s:s}", "name", big, "phone",
	    big, "address", big, "note", big), "at most 1024 fit");
	expect_seal_refused(json_string("0612345678"), "contact must be an object");
}

/* The plaintext is a msgpack map another-language client can read. */
static void
test_plaintext_is_a_msgpack_map(void **state)
{
	struct pair target = curve_pair();
	json_t *d = json_pack("{s:s}", "phone", "0612345678");
	size_t len;
	unsigned char *box = seal_bytes(d, &target, &len);
	unsigned char plain[64];
	static const unsigned char want[] = "\x81\xa5phone\xaa" "0612345678";

	assert_int_equal(len, crypto_box_SEALBYTES + sizeof(want) - 1);
	assert_int_equal(crypto_box_seal_open(plain, box, len, target.pk,
	    target.sk), 0);
	assert_memory_equal(plain, want, sizeof(want) - 1);
	free(box);
	json_decref(d);
}

/* A box sealed by another client with other keys still opens. */
static void
test_opens_any_map_of_text(void **state)
{
	struct pair target = curve_pair();
	static const unsigned char plain[] = "\x82\xa5phone\xa2" "06" "\xa5" "extra\xa1x";
	unsigned char box[sizeof(plain) - 1 + crypto_box_SEALBYTES];
	static const unsigned char not_map[] = "\xa5phone";
	unsigned char box2[sizeof(not_map) - 1 + crypto_box_SEALBYTES];
	char err[400];
	json_t *opened;

	assert_int_equal(crypto_box_seal(box, plain, sizeof(plain) - 1, target.pk), 0);
	opened = contact_open(box, sizeof(box), &target.sk, 1, err, sizeof(err));
	assert_non_null(opened);
	assert_string_equal(json_string_value(json_object_get(opened, "extra")), "x");
	json_decref(opened);
	assert_int_equal(crypto_box_seal(box2, not_map, sizeof(not_map) - 1,
	    target.pk), 0);
	assert_null(contact_open(box2, sizeof(box2), &target.sk, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "does not hold a msgpack map of text details"));
}

/* JSON holds a sealed box as base64; the wire as msgpack bin. */
static void
test_json_contact_is_base64_of_bin(void **state)
{
	json_t *ev = json_pack("{s:s}", "contact", "AAEC/w==");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	size_t off = 0;
	char err[256];
	json_t *back;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	assert_int_equal(json_to_msgpack(ev, &pk, err, sizeof(err)), 0);
	assert_int_equal(sb.size, 1 + 8 + 2 + 4);
	assert_memory_equal(sb.data + 9, "\xc4\x04\x00\x01\x02\xff", 6);
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
	    MSGPACK_UNPACK_SUCCESS);
	back = msgpack_to_json(&up.data);
	assert_true(json_equal(back, ev));
	json_decref(back);
	msgpack_unpacked_destroy(&up);
	json_decref(ev);

	ev = json_pack("{s:s}", "contact", "Awa D. 0612345678");
	msgpack_sbuffer_clear(&sb);
	assert_int_equal(json_to_msgpack(ev, &pk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "contact: a string here must be the base64"));
	json_decref(ev);
	msgpack_sbuffer_destroy(&sb);
}

/*
 * PROTOCOL.md §6.1's test vector, as another language's client would use
 * it: the Z85 secret key's public key is the Z85 public key, and its box
 * opens to the documented plaintext {"phone":"0612345678"}.
 */
static void
test_protocol_vector_opens(void **state)
{
	static const char pub_z85[] = "l*Hk$9(8Jg@pHZDcF&O>3Euz#MH3:fzYO{>]J6jx";
	static const char sec_z85[] = "otvVuCj&%KW:ms]u+-gZ()Ui8g0s.vB7{x6[-KdP";
	static const char box_b64[] = "O/v1zKvuronTE5yEuYQyATHX0+9v+LckdT3z6ha4"
	    "MQRyIO/UtkvmcETPOsSUFUhdkNlV3vbx1zEeZgCID48eoKUz";
	unsigned char pk[32], sk[1][32], derived[32];
	char err[256];
	json_t *opened;

	assert_non_null(zmq_z85_decode(pk, pub_z85));
	assert_non_null(zmq_z85_decode(sk[0], sec_z85));
	assert_int_equal(crypto_scalarmult_base(derived, sk[0]), 0);
	assert_memory_equal(derived, pk, 32);
	opened = contact_open_base64(box_b64, (const unsigned char (*)[32])sk, 1,
	    err, sizeof(err));
	if (opened == NULL)
		fail_msg("the vector does not open: %s", err);
	assert_int_equal(json_object_size(opened), 1);
	assert_string_equal(json_string_value(json_object_get(opened, "phone")),
	    "0612345678");
	json_decref(opened);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_curve_key_pair_seals_and_opens),
		cmocka_unit_test(test_two_sealings_differ),
		cmocka_unit_test(test_only_the_target_opens),
		cmocka_unit_test(test_altered_or_cut_box_refused),
		cmocka_unit_test(test_previous_keys_open_older_boxes),
		cmocka_unit_test(test_details_checked_before_sealing),
		cmocka_unit_test(test_plaintext_is_a_msgpack_map),
		cmocka_unit_test(test_opens_any_map_of_text),
		cmocka_unit_test(test_json_contact_is_base64_of_bin),
		cmocka_unit_test(test_protocol_vector_opens),
	};

	assert_true(sodium_init() >= 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
