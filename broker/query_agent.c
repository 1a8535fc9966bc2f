/*
 * The "agent" query: an agent's public key and display name, so that a
 * partner can seal a contact to the target of its referral (SPEC §2.6).
 * Both are public information: any registered agent may ask about any
 * registered agent.  The key is the CURVE public key of the registry, as
 * Z85: an X25519 key that crypto_box_seal takes as it is.
 */
#include <stdio.h>
#include <string.h>

#include "relaisd.h"

void
query_agent(struct broker *b, const struct rl_request *req, msgpack_packer *pk)
{
	const msgpack_object *o = req->args != NULL ?
	    codec_map_get(req->args, "id") : NULL;
	char id[RL_MAX_AGENT_ID_BYTES + 1], msg[96];
	const struct agent *a = NULL;

	if (!query_args_known(req, pk, (const char *const[]){ "id", NULL }))
		return;
	if (o == NULL) {
		query_refuse(pk, req, RL_E_MISSING_FIELD, "id",
		    "give the agent's id in args.id");
		return;
	}
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
	    o->via.str.size > RL_MAX_AGENT_ID_BYTES) {
		query_refuse(pk, req, RL_E_BAD_FIELD, "id", "args.id is an agent "
		    "id: a string of 1 to 48 bytes");
		return;
	}
	memcpy(id, o->via.str.ptr, o->via.str.size);
	id[o->via.str.size] = '\0';
	if (strlen(id) == o->via.str.size)
		a = config_agent_by_id(b->cfg, id);
	if (a == NULL) {
		rl_printable_copy(id, sizeof(id), o->via.str.ptr, o->via.str.size);
		snprintf(msg, sizeof(msg), "no agent %s is registered", id);
		query_refuse(pk, req, RL_E_UNKNOWN_AGENT, "id", msg);
		return;
	}
	query_begin_result(pk, req, "agent");
	msgpack_pack_map(pk, 4);
	codec_pack_kv_str(pk, "id", a->id);
	codec_pack_kv_str(pk, "name", a->name);
	codec_pack_kv_str(pk, "kind", agent_kind_name(a->kind));
	codec_pack_kv_str(pk, "public_key", a->public_key);
}
