/*
 * Sealed contact details (SPEC §2.6, PROTOCOL.md §6.1): the person's
 * contact details, encrypted by the sender's agent to the referral
 * target's X25519 public key with libsodium's crypto_box_seal, so that the
 * broker stores and forwards bytes it cannot read.
 *
 * The plaintext is a msgpack map of string keys to non-empty string values:
 * name, phone, email, address, best_time, note, all optional.  These
 * functions know nothing of the network: the client (client_contact.c)
 * finds the keys and applies them to events.
 */
#ifndef RELAIS_CONTACT_H
#define RELAIS_CONTACT_H

#include <stddef.h>
#include <jansson.h>

#define CONTACT_KEY_BYTES       32      /* X25519 public and secret keys */
#define CONTACT_MAX_VALUE_BYTES 280     /* one detail */

/* The details a sender may seal, in the order they are packed. */
extern const char *const contact_fields[];

/*
 * Seal details (a JSON object whose members are among contact_fields, each
 * a non-empty string of at most CONTACT_MAX_VALUE_BYTES) to the public key
 * pk.  Returns the sealed box as a new standard base64 JSON string (what
 * the "contact" member of an event holds in JSON), or NULL with a sentence
 * in errbuf that starts with "contact".  The plaintext is wiped.
 */
json_t *contact_seal(const json_t *details,
    const unsigned char pk[CONTACT_KEY_BYTES], char *errbuf, size_t errlen);

/*
 * Open a sealed box with each of the nsk secret keys in turn (the current
 * one first, then older ones).  Returns the details as a new JSON object,
 * or NULL with a sentence in errbuf saying why: too short to be a sealed
 * box, sealed to another key or altered, or not a map of text details.
 */
json_t *contact_open(const unsigned char *box, size_t len,
    const unsigned char (*sks)[CONTACT_KEY_BYTES], size_t nsk,
    char *errbuf, size_t errlen);

/* The same for the base64 string a JSON event carries. */
json_t *contact_open_base64(const char *b64,
    const unsigned char (*sks)[CONTACT_KEY_BYTES], size_t nsk,
    char *errbuf, size_t errlen);

#endif
