/*
 * libFuzzer target for the broker's first look at network input: the
 * request decoder, then, for a submit, every event's validation and the
 * canonical encoding of the valid ones.
 *
 *   make fuzz && build/fuzz/fuzz_decode -max_total_time=60
 *
 * Beyond the sanitizers, it checks two promises the broker relies on: a
 * refusal always carries a known code and a message, and the canonical
 * encoding of a valid event parses back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	msgpack_unpacked up;
	struct rl_request req;
	struct rl_error err;

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
