/*
 * Building request frames by hand, msgpack value by value, for tests that
 * send what no client library would: repeated or non-string keys, invalid
 * UTF-8, wrong types, maps in any key order.  Strings and pairs are
 * packed with proto/codec.h's codec_pack_str() and codec_pack_kv_*().
 */
#ifndef RELAIS_E2E_FRAMES_H
#define RELAIS_E2E_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "codec.h"

struct frame {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

void frame_init(struct frame *f);
void frame_free(struct frame *f);

/* {"v":1, "cmd":cmd, "ref":ref, ...}: a map of 3 + extra entries, of which
 * the caller packs the extra ones. */
void pk_head(msgpack_packer *pk, const char *cmd, uint64_t ref, size_t extra);

/* A valid contact.made event map about participant p-1. */
void pk_event(msgpack_packer *pk, const char *id);

#endif
