/* Request frames built by hand (frames.h). */
#include <string.h>

#include "codec.h"
#include "frames.h"
#include "rltime.h"

void
frame_init(struct frame *f)
{
	msgpack_sbuffer_init(&f->sb);
	msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
}

void
frame_free(struct frame *f)
{
	msgpack_sbuffer_destroy(&f->sb);
}

void
pk_head(msgpack_packer *pk, const char *cmd, uint64_t ref, size_t extra)
{
	msgpack_pack_map(pk, 3 + extra);
	codec_pack_kv_u64(pk, "v", 1);
	codec_pack_kv_str(pk, "cmd", cmd);
	codec_pack_kv_u64(pk, "ref", ref);
}

void
pk_event(msgpack_packer *pk, const char *id)
{
	msgpack_pack_map(pk, 5);
	codec_pack_kv_str(pk, "event_id", id);
	codec_pack_kv_str(pk, "type", "contact.made");
	codec_pack_str(pk, "occurred_at");
	msgpack_pack_int64(pk, rl_wall_ms());
	codec_pack_kv_str(pk, "participant", "p-1");
	codec_pack_kv_str(pk, "channel", "phone");
}
