/*
 * libFuzzer target for the broker's first look at network input: the
 * request decoder, then, for a submit, every event's validation and the
 * canonical encoding of the valid ones.
 *
 *   make fuzz && build/fuzz/fuzz_decode -max_total_time=60
 *
 * Beyond the sanitizers, it checks three promises the broker relies on: a
 * refusal always carries a known code and a message, the canonical
 * encoding of a valid event parses back to the same bytes, and the
 * zero-copy reader (mpview) never accepts what msgpack-c would read
 * differently.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "mpview.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_refusal(const struct rl_error *err)
{
	if (strcmp(rl_code_name(err->code), "unknown") == 0 ||
	    err->message[0] == '\0')
		abort();
}

/* Pack ev canonically, parse the result, pack again: same bytes. */
static void
check_canonical(const struct rl_event *ev)
{
	msgpack_sbuffer first, second;
	msgpack_packer pk;
	msgpack_unpacked up;
	struct rl_event again;
	struct rl_error err;
	size_t off = 0;

	msgpack_sbuffer_init(&first);
	msgpack_packer_init(&pk, &first, msgpack_sbuffer_write);
	if (event_pack(ev, &pk) != 0 || first.size > RL_MAX_EVENT_BYTES)
		abort();

	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, first.data, first.size, &off) !=
	    MSGPACK_UNPACK_SUCCESS || off != first.size ||
	    event_parse(&up.data, &again, &err) != RL_OK)
		abort();

	msgpack_sbuffer_init(&second);
	msgpack_packer_init(&pk, &second, msgpack_sbuffer_write);
	if (event_pack(&again, &pk) != 0 || second.size != first.size ||
	    memcmp(first.data, second.data, first.size) != 0)
		abort();

	msgpack_sbuffer_destroy(&second);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&first);
}

/* Equal trees pack to equal bytes (msgpack_object_equal says NaN != NaN). */
static bool
same_packing(const msgpack_object *a, const msgpack_object *b)
{
	msgpack_sbuffer sa, sb;
	msgpack_packer pa, pb;
	bool same;

	msgpack_sbuffer_init(&sa);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pa, &sa, msgpack_sbuffer_write);
	msgpack_packer_init(&pb, &sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pa, *a);
	msgpack_pack_object(&pb, *b);
	same = sa.size == sb.size && memcmp(sa.data, sb.data, sa.size) == 0;
	msgpack_sbuffer_destroy(&sa);
	msgpack_sbuffer_destroy(&sb);
	return same;
}

/* What mpview accepts, msgpack-c reads as the same one value. */
static void
check_mpview(const char *data, size_t size)
{
	static msgpack_object objs[4096];
	static msgpack_object_kv kvs[1024];
	struct mpview view = { objs, 4096, kvs, 1024 };
	msgpack_object root;
	msgpack_unpacked up;
	size_t off = 0;

	if (mpview_parse(data, size, &view, &root) == -1)
		return;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != size || !same_packing(&root, &up.data))
		abort();
	msgpack_unpacked_destroy(&up);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked up;
	struct rl_request req;
	struct rl_error err;

	check_mpview((const char *)data, size);
	msgpack_unpacked_init(&up);
	if (codec_decode_request((const char *)data, size, &up, &req, &err) != RL_OK) {
		check_refusal(&err);
	} else if (req.cmd == RL_CMD_SUBMIT) {
		for (uint32_t i = 0; i < req.nevents; i++) {
			struct rl_event ev;

			if (event_parse(&req.events[i], &ev, &err) == RL_OK)
				check_canonical(&ev);
			else
				check_refusal(&err);
		}
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}
