/*
 * Sealed contacts in librelais: the keys, sealing before a submit, opening
 * after a delivery (relais.h, PROTOCOL.md §6.1).
 *
 * A CURVE key pair is a Curve25519 (X25519) key pair, the very keys
 * crypto_box_seal and crypto_box_seal_open take: the Z85 keys an agent
 * connects with are decoded and used as they are, and the registry's
 * public keys, which the broker's "agent" query gives, are the keys to
 * seal to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <zmq.h>

#include "client_internal.h"

#define AGENT_KEYS_MAX 64           /* a partner refers to a few dozen agents */
#define KEY_QUERY_WAIT_MS 15000

static int
decode_key(const char *z85, unsigned char out[CONTACT_KEY_BYTES])
{
	if (z85 == NULL || strlen(z85) != 40 ||
	    zmq_z85_decode(out, z85) == NULL)
		return -1;
	return 0;
}

int
client_keys_init(relais_client *c, const struct relais_options *o,
    char *errbuf, size_t errlen)
{
	const char *const *prev = o->previous_secret_keys;

	c->nbox_keys = 0;
	if (decode_key(o->secret_key, c->box_keys[c->nbox_keys++]) != 0) {
		snprintf(errbuf, errlen, "this agent's secret key is not a Z85 key");
		return -1;
	}
	for (size_t i = 0; prev != NULL && prev[i] != NULL; i++) {
		if (i == RELAIS_MAX_PREVIOUS_KEYS) {
			snprintf(errbuf, errlen, "at most %d previous secret keys; "
			    "drop the oldest", RELAIS_MAX_PREVIOUS_KEYS);
			return -1;
		}
		if (decode_key(prev[i], c->box_keys[c->nbox_keys++]) != 0) {
			snprintf(errbuf, errlen, "previous secret key %zu is not a "
			    "40-character Z85 key", i + 1);
			return -1;
		}
	}
	return 0;
}

void
client_keys_wipe(relais_client *c)
{
	sodium_memzero(c->box_keys, sizeof(c->box_keys));
	c->nbox_keys = 0;
	free(c->agent_keys);
	c->agent_keys = NULL;
	c->nagent_keys = 0;
}

static struct agent_key *
find_key(relais_client *c, const char *id)
{
	for (size_t i = 0; i < c->nagent_keys; i++)
		if (strcmp(c->agent_keys[i].id, id) == 0)
			return &c->agent_keys[i];
	return NULL;
}

/* The entry for id: its own, a free one, or the stalest learnt one. */
static struct agent_key *
key_slot(relais_client *c, const char *id)
{
	struct agent_key *k = find_key(c, id), *oldest = NULL;

	if (k != NULL)
		return k;
	if (c->agent_keys == NULL &&
	    (c->agent_keys = calloc(AGENT_KEYS_MAX, sizeof(*k))) == NULL)
		return NULL;
	if (c->nagent_keys < AGENT_KEYS_MAX)
		return &c->agent_keys[c->nagent_keys++];
	for (size_t i = 0; i < c->nagent_keys; i++) {
		k = &c->agent_keys[i];
		if (!k->pinned && (oldest == NULL || k->learnt_at < oldest->learnt_at))
			oldest = k;
	}
	return oldest;
}

static int
remember_key(relais_client *c, const char *id, const char *z85, bool pinned)
{
	unsigned char key[CONTACT_KEY_BYTES];
	struct agent_key *k;

	if (strlen(id) > RL_MAX_AGENT_ID_BYTES || decode_key(z85, key) != 0)
		return client_fail(c, RL_E_BAD_FIELD, "the public key of %.48s must "
		    "be 40 Z85 characters, as in its .pub file", id);
	if ((k = key_slot(c, id)) == NULL)
		return client_fail(c, 0, "no room for another pinned key");
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->z85, sizeof(k->z85), "%s", z85);
	memcpy(k->key, key, sizeof(key));
	k->learnt_at = rl_mono_ms();
	k->pinned = pinned;
	return 0;
}

int
relais_pin_agent_key(relais_client *c, const char *agent_id,
    const char *public_key)
{
	if (agent_id == NULL || public_key == NULL)
		return client_fail(c, RL_E_MISSING_FIELD, "pinning a key needs an "
		    "agent id and a public key");
	return remember_key(c, agent_id, public_key, true);
}

/* Pinned, or learnt less than RELAIS_AGENT_KEY_TTL_MS ago, or asked now. */
static struct agent_key *
agent_key(relais_client *c, const char *id)
{
	struct agent_key *k = find_key(c, id);
	json_t *args, *data;
	const char *z85;
	int rc;

	if (k != NULL && (k->pinned ||
	    rl_mono_ms() - k->learnt_at < RELAIS_AGENT_KEY_TTL_MS))
		return k;
	args = json_pack("{s:s}", "id", id);
	data = relais_query(c, "agent", args, KEY_QUERY_WAIT_MS);
	json_decref(args);
	if (data == NULL)
		return NULL;
	z85 = json_string_value(json_object_get(data, "public_key"));
	rc = z85 != NULL ? remember_key(c, id, z85, false) :
	    client_fail(c, 0, "the broker's answer about %.48s has no public_key", id);
	json_decref(data);
	return rc == 0 ? find_key(c, id) : NULL;
}

int
relais_agent_public_key(relais_client *c, const char *agent_id, char out[41])
{
	struct agent_key *k;

	if (agent_id == NULL || agent_id[0] == '\0')
		return client_fail(c, RL_E_MISSING_FIELD, "which agent? give its id");
	if ((k = agent_key(c, agent_id)) == NULL)
		return -1;
	memcpy(out, k->z85, 41);
	return 0;
}

static int
refuse(int *code, char *field, size_t fieldlen, const char *name,
    int c, char *msg, size_t msglen, const char *text)
{
	*code = c;
	snprintf(field, fieldlen, "%s", name);
	if (text != msg)
		snprintf(msg, msglen, "%s", text);
	return 1;
}

int
client_seal_contact(relais_client *c, json_t *ev, int *code,
    char *field, size_t fieldlen, char *msg, size_t msglen)
{
	json_t *details = json_object_get(ev, "contact"), *sealed;
	const char *to = json_string_value(json_object_get(ev, "to"));
	struct agent_key *k;

	if (!json_is_object(details))
		return 0;               /* none, or already sealed */
	if (to == NULL)
		return refuse(code, field, fieldlen, "to", RL_E_MISSING_FIELD,
		    msg, msglen, "a contact is sealed to the agent in \"to\": "
		    "give \"to\"");
	if ((k = agent_key(c, to)) == NULL) {
		if (c->last_code == 0)
			return -1;      /* the broker did not answer */
		return refuse(code, field, fieldlen, "to", c->last_code, msg, msglen,
		    c->errmsg);
	}
	sealed = contact_seal(details, k->key, msg, msglen);
	if (sealed == NULL)
		return refuse(code, field, fieldlen, "contact", RL_E_BAD_FIELD,
		    msg, msglen, msg);
	/* The caller's object now holds the box: a resend sends these bytes. */
	json_object_set_new(ev, "contact", sealed);
	return 0;
}

void
client_open_contact(relais_client *c, json_t *ev)
{
	const char *b64 = json_string_value(json_object_get(ev, "contact"));
	json_t *details;
	char why[400];

	if (b64 == NULL)
		return;
	details = contact_open_base64(b64,
	    (const unsigned char (*)[CONTACT_KEY_BYTES])c->box_keys,
	    c->nbox_keys, why, sizeof(why));
	if (details != NULL) {
		json_object_set_new(ev, "contact", details);
		return;
	}
	json_object_del(ev, "contact");
	json_object_set_new(ev, "contact_error", json_string(why));
}
