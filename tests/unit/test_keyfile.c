/*
 * keyfile.c: generate then read back, file modes whatever the umask, the
 * two keys belong together, bad files are refused with precise messages,
 * fingerprints.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "keyfile.h"

static char dir[PATH_MAX];
static char base[PATH_MAX + 16], pub_path[PATH_MAX + 32], key_path[PATH_MAX + 32];
static char err[1024];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	snprintf(dir, sizeof dir, "%s/relais-test-keyfile-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(base, sizeof base, "%s/agent", dir);
	snprintf(pub_path, sizeof pub_path, "%s.pub", base);
	snprintf(key_path, sizeof key_path, "%s.key", base);
	return 0;
}

static int teardown(void **state)
{
	return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
	static char text[4096];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_round_trip(void **state)
{
	char pub[41], sec[41], derived[41];

	/* umask 0 must not make the secret key world-readable. */
	mode_t old = umask(0);
	int rc = keyfile_generate(base, err, sizeof err);
	umask(old);
	if (rc != 0)
		fail_msg("keyfile_generate: %s", err);

	assert_int_equal(mode_of(key_path), 0600);
	assert_int_equal(mode_of(pub_path), 0644);
	assert_non_null(strstr(read_text(pub_path), "# relais CURVE public key\n"));
	assert_non_null(strstr(read_text(key_path), "# relais CURVE secret key: keep private\n"));

	assert_int_equal(keyfile_read(pub_path, pub, err, sizeof err), 0);
	assert_int_equal(keyfile_read(key_path, sec, err, sizeof err), 0);
	assert_int_equal(strlen(pub), 40);
	assert_int_equal(strlen(sec), 40);
	assert_string_not_equal(pub, sec);

	/* The .pub holds the public half of the .key. */
	assert_int_equal(zmq_curve_public(derived, sec), 0);
	assert_string_equal(derived, pub);
}

static void test_regenerate_fixes_mode(void **state)
{
	char first[41], second[41];

	assert_int_equal(keyfile_generate(base, err, sizeof err), 0);
	assert_int_equal(keyfile_read(pub_path, first, err, sizeof err), 0);
	/* A loose mode on the old file must not survive the new key. */
	assert_int_equal(chmod(key_path, 0666), 0);
	assert_int_equal(keyfile_generate(base, err, sizeof err), 0);
	assert_int_equal(mode_of(key_path), 0600);
	assert_int_equal(keyfile_read(pub_path, second, err, sizeof err), 0);
	assert_string_not_equal(first, second);
}

static void test_generate_errors(void **state)
{
	char bad[PATH_MAX + 32];

	snprintf(bad, sizeof bad, "%s/missing-folder/agent", dir);
	assert_int_equal(keyfile_generate(bad, err, sizeof err), -1);
	assert_non_null(strstr(err, "missing-folder/agent.key: cannot create: No such file or directory"));

	/* The secret key is never written through a symlink. */
	char target[PATH_MAX + 32];
	snprintf(target, sizeof target, "%s/elsewhere", dir);
	assert_int_equal(symlink(target, key_path), 0);
	assert_int_equal(keyfile_generate(base, err, sizeof err), -1);
	assert_non_null(strstr(err, "agent.key: cannot create"));
	assert_int_equal(access(target, F_OK), -1);
}

static void expect_refused(const char *text, size_t len, const char *msg)
{
	char out[41];

	write_file(pub_path, text, len);
	memset(out, 'Q', sizeof out);
	assert_int_equal(keyfile_read(pub_path, out, err, sizeof err), -1);
	if (!strstr(err, msg))
		fail_msg("expected \"%s\", got \"%s\"", msg, err);
	assert_int_equal(strncmp(err, pub_path, strlen(pub_path)), 0);
	assert_int_equal(out[0], 'Q');      /* out untouched on failure */
}

#define KEY "placeholder-a..........................."
#define REFUSE(text, msg) expect_refused(text, sizeof(text) - 1, msg)

static void test_read_refuses_bad_files(void **state)
{
	REFUSE("", "no key found; expected a line with a 40-character Z85 key");
	REFUSE("# only a comment\n\n   \n", "no key found");
	REFUSE("# c\nabc\n", "expected a 40-character Z85 key, got 3 characters");
	REFUSE(KEY "x\n", "expected a 40-character Z85 key, got 41 characters");
	REFUSE("~laceholder-a...........................\n", "not a valid Z85 key");
	REFUSE("#####holder-a...........................\n", "not a valid Z85 key");
	REFUSE("placeholder a...........................\n", "not a valid Z85 key");
	REFUSE("# c\n" KEY "\n" KEY "\n", ":3: a second key line (the first is line 2)");
	REFUSE(KEY "\0\n", "contains a NUL byte");

	char big[5000];
	memset(big, '#', sizeof big);
	expect_refused(big, sizeof big, "larger than 4096 bytes");

	char missing[PATH_MAX + 32], out[41];
	snprintf(missing, sizeof missing, "%s/none.pub", dir);
	assert_int_equal(keyfile_read(missing, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "none.pub: cannot open: No such file or directory"));
	assert_int_equal(keyfile_read(dir, out, err, sizeof err), -1);   /* a folder */
	assert_int_equal(keyfile_read(missing, out, NULL, 0), -1);      /* no errbuf */
}

static void test_read_tolerates_layout(void **state)
{
	static const char text[] =
		"# relais CURVE public key\r\n"
		"\r\n"
		"   # indented comment\n"
		"\t" KEY "  \r\n"
		"\n";
	char out[41];

	write_file(pub_path, text, sizeof text - 1);
	assert_int_equal(keyfile_read(pub_path, out, err, sizeof err), 0);
	assert_string_equal(out, KEY);

	write_file(pub_path, KEY, 40);      /* no final newline */
	assert_int_equal(keyfile_read(pub_path, out, err, sizeof err), 0);
	assert_string_equal(out, KEY);
}

static void test_fingerprint(void **state)
{
	unsigned char key[32], hash[32];
	char fp[17], again[17], want[17];

	assert_int_equal(sodium_init() >= 0, 1);
	assert_non_null(zmq_z85_decode(key, KEY));
	keyfile_fingerprint(key, fp);
	assert_int_equal(strlen(fp), 16);
	assert_int_equal(strspn(fp, "0123456789abcdef"), 16);

	/* The first 8 bytes of the default-size BLAKE2b hash, in hex. */
	crypto_generichash(hash, sizeof hash, key, sizeof key, NULL, 0);
	sodium_bin2hex(want, sizeof want, hash, 8);
	assert_string_equal(fp, want);

	keyfile_fingerprint(key, again);
	assert_string_equal(fp, again);
	key[31] ^= 1;
	keyfile_fingerprint(key, again);
	assert_string_not_equal(fp, again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regenerate_fixes_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_refuses_bad_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_tolerates_layout, setup, teardown),
		cmocka_unit_test(test_fingerprint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
