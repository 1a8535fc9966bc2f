/*
 * The zero-copy msgpack reader (proto/mpview.c) against msgpack-c itself:
 * what it accepts reads the same, and what it must refuse it refuses.
 * The fuzz target makes the same comparison on arbitrary input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <string.h>
#include <cmocka.h>

#include "mpview.h"

static msgpack_object objs[256];
static msgpack_object_kv kvs[64];

static int
parse(const char *buf, size_t len, msgpack_object *root)
{
	struct mpview v = { objs, 256, kvs, 64 };

	return mpview_parse(buf, len, &v, root);
}

/* A document with every type the reader knows. */
static void
pack_everything(msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "ints", 4);
	msgpack_pack_array(&pk, 10);
	msgpack_pack_int64(&pk, 0);
	msgpack_pack_int64(&pk, 127);
	msgpack_pack_int64(&pk, -32);
	msgpack_pack_int64(&pk, -33);
	msgpack_pack_int64(&pk, 255);
	msgpack_pack_int64(&pk, -129);
	msgpack_pack_int64(&pk, 65536);
	msgpack_pack_int64(&pk, -2147483649LL);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_str_with_body(&pk, "other", 5);
	msgpack_pack_array(&pk, 6);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_float(&pk, 1.5f);
	msgpack_pack_double(&pk, -2.25);
	msgpack_pack_bin_with_body(&pk, "\0\1\2", 3);
	msgpack_pack_str_with_body(&pk, "a longer string than thirty-one bytes", 37);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "", 0);
	msgpack_pack_array(&pk, 0);
}

static bool
same_as_msgpack_c(const char *buf, size_t len, const msgpack_object *root)
{
	msgpack_unpacked up;
	msgpack_sbuffer a, b;
	msgpack_packer pa, pb;
	size_t off = 0;
	bool same;

	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, buf, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pa, &a, msgpack_sbuffer_write);
	msgpack_packer_init(&pb, &b, msgpack_sbuffer_write);
	msgpack_pack_object(&pa, *root);
	msgpack_pack_object(&pb, up.data);
	same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0 &&
	    msgpack_object_equal(*root, up.data);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	msgpack_unpacked_destroy(&up);
	return same;
}

static void
test_reads_every_type_as_msgpack_c_does(void **state)
{
	msgpack_sbuffer sb;
	msgpack_object root;

	msgpack_sbuffer_init(&sb);
	pack_everything(&sb);
	assert_int_equal(parse(sb.data, sb.size, &root), 0);
	assert_true(same_as_msgpack_c(sb.data, sb.size, &root));
	/* Zero copy: the strings point into the buffer. */
	assert_ptr_equal(root.via.map.ptr[0].key.via.str.ptr, sb.data + 2);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_refuses_every_truncation_and_trailing_bytes(void **state)
{
	msgpack_sbuffer sb;
	msgpack_object root;

	msgpack_sbuffer_init(&sb);
	pack_everything(&sb);
	for (size_t n = 0; n < sb.size; n++)
		if (parse(sb.data, n, &root) != -1)
			fail_msg("accepted the first %zu of %zu bytes", n, sb.size);
	msgpack_sbuffer_write(&sb, "\xc0", 1);
	assert_int_equal(parse(sb.data, sb.size, &root), -1);
	msgpack_sbuffer_destroy(&sb);
}

static void
test_refuses_promises_beyond_the_data(void **state)
{
	msgpack_object root;

	/* An array of 2^32-1 elements in 5 bytes; a 2 GiB string. */
	assert_int_equal(parse("\xdd\xff\xff\xff\xff", 5, &root), -1);
	assert_int_equal(parse("\xdb\x7f\xff\xff\xff", 5, &root), -1);
	assert_int_equal(parse("\xdf\x00\x00\x00\x02\x01\x01", 7, &root), -1);
}

static void
test_refuses_extensions_and_the_unused_byte(void **state)
{
	msgpack_object root;

	assert_int_equal(parse("\xd4\x01\x00", 3, &root), -1);
	assert_int_equal(parse("\xc7\x01\x01\x00", 4, &root), -1);
	assert_int_equal(parse("\xc1", 1, &root), -1);
}

static void
test_refuses_more_nodes_or_depth_than_it_has(void **state)
{
	char deep[64], wide[400];
	msgpack_object root;

	memset(deep, 0x91, sizeof(deep) - 1);       /* [[[[...]]]] */
	deep[sizeof(deep) - 1] = 0x90;
	assert_int_equal(parse(deep, sizeof(deep), &root), -1);
	assert_int_equal(parse(deep + sizeof(deep) - 8, 8, &root), 0);

	wide[0] = (char)0xdc;                       /* 300 nils: 256 nodes */
	wide[1] = 0x01;
	wide[2] = 0x2c;
	memset(wide + 3, 0xc0, 300);
	assert_int_equal(parse(wide, 303, &root), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_every_type_as_msgpack_c_does),
		cmocka_unit_test(test_refuses_every_truncation_and_trailing_bytes),
		cmocka_unit_test(test_refuses_promises_beyond_the_data),
		cmocka_unit_test(test_refuses_extensions_and_the_unused_byte),
		cmocka_unit_test(test_refuses_more_nodes_or_depth_than_it_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
