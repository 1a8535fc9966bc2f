/*
 * CURVE key files (see keyfile.h).
 *
 * The secret key is handled in buffers we own, never in stdio's, so that
 * every copy of it can be wiped with sodium_memzero() once it is written
 * or read.
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#define KEY_Z85_LEN   40
#define KEYFILE_MAX   4096        /* a key file is a few lines */

static const char pub_comment[] = "# relais CURVE public key\n";
static const char sec_comment[] = "# relais CURVE secret key: keep private\n";

__attribute__((format(printf, 3, 4)))
static int
errorf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write text to path with exactly the given mode.  The mode of open() is
 * filtered by the umask and ignored for a file that already exists, so
 * fchmod() sets it explicitly.  fsync(), because a key pair that vanishes
 * in a crash right after `relais keygen` would lock the agent out.
 */
static int
write_keyfile(const char *path, mode_t mode, const char *text,
    size_t len, char *errbuf, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return errorf(errbuf, errlen, "%s: cannot create: %s", path, strerror(errno));
	if (fchmod(fd, mode) < 0 || write_all(fd, text, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return errorf(errbuf, errlen, "%s: cannot write: %s", path, strerror(e));
	}
	if (close(fd) < 0)
		return errorf(errbuf, errlen, "%s: cannot write: %s", path, strerror(errno));
	return 0;
}

static int
keyfile_path(char *out, const char *base, const char *ext,
    char *errbuf, size_t errlen)
{
	int n = snprintf(out, PATH_MAX, "%s%s", base, ext);

	if (n < 0 || n >= PATH_MAX)
		return errorf(errbuf, errlen, "%s%s: path too long", base, ext);
	return 0;
}

int
keyfile_generate(const char *base, char *errbuf, size_t errlen)
{
	char pub[KEY_Z85_LEN + 1], sec[KEY_Z85_LEN + 1];
	char pub_path[PATH_MAX], sec_path[PATH_MAX];
	char text[sizeof sec_comment + KEY_Z85_LEN + 2];
	int rc = -1;

	if (keyfile_path(pub_path, base, ".pub", errbuf, errlen) < 0 ||
	    keyfile_path(sec_path, base, ".key", errbuf, errlen) < 0)
		return -1;
	if (zmq_curve_keypair(pub, sec) != 0)
		return errorf(errbuf, errlen, "cannot make a CURVE key pair: %s "
		    "(is libzmq built with CURVE support?)", zmq_strerror(errno));

	/* The secret first: a lone .pub without its .key is useless, the
	 * reverse can be rebuilt. */
	int n = snprintf(text, sizeof text, "%s%s\n", sec_comment, sec);
	if (write_keyfile(sec_path, 0600, text, (size_t)n, errbuf, errlen) < 0)
		goto out;
	n = snprintf(text, sizeof text, "%s%s\n", pub_comment, pub);
	if (write_keyfile(pub_path, 0644, text, (size_t)n, errbuf, errlen) < 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(sec, sizeof sec);
	sodium_memzero(text, sizeof text);
	return rc;
}

/* Read the whole file into buf (at most size - 1 bytes), NUL-terminated. */
static int
read_small(const char *path, char *buf, size_t size, size_t *len,
    char *errbuf, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t used = 0;

	if (fd < 0)
		return errorf(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf + used, size - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return errorf(errbuf, errlen, "%s: cannot read: %s", path, strerror(e));
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used == size) {
			close(fd);
			return errorf(errbuf, errlen, "%s: larger than %zu bytes; "
			    "this is not a relais key file", path, size - 1);
		}
	}
	close(fd);
	buf[used] = '\0';
	*len = used;
	return 0;
}

/* Find the one key line among comments and blank lines; 0 or -1. */
static int
parse_keyfile(const char *path, char *text, size_t len, char out[41],
    char *errbuf, size_t errlen)
{
	const char *key = NULL;
	int keyline = 0, lineno = 0;

	if (strlen(text) != len)
		return errorf(errbuf, errlen, "%s: contains a NUL byte; this is not "
		    "a relais key file", path);
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		size_t n = strlen(line);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			line[--n] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		/*
		 * '#' is also a Z85 digit, so a comment is '#' followed by a
		 * blank or nothing: a key never contains a blank.
		 */
		if (*line == '\0' || (line[0] == '#' &&
		    (line[1] == '\0' || line[1] == ' ' || line[1] == '\t')))
			continue;
		if (key)
			return errorf(errbuf, errlen, "%s:%d: a second key line (the first "
			    "is line %d); a key file holds exactly one key",
			    path, lineno, keyline);
		key = line;
		keyline = lineno;
	}
	if (!key)
		return errorf(errbuf, errlen, "%s: no key found; expected a line with "
		    "a 40-character Z85 key (make one with relais keygen)", path);
	size_t n = strlen(key);
	if (n != KEY_Z85_LEN)
		return errorf(errbuf, errlen, "%s: expected a 40-character Z85 key, "
		    "got %zu characters", path, n);

	unsigned char bin[32];
	bool valid = zmq_z85_decode(bin, key) != NULL;
	sodium_memzero(bin, sizeof bin);
	if (!valid)
		return errorf(errbuf, errlen, "%s: not a valid Z85 key (a character "
		    "outside the Z85 alphabet, or a value out of range)", path);
	memcpy(out, key, KEY_Z85_LEN + 1);
	return 0;
}

int
keyfile_read(const char *path, char out[41], char *errbuf, size_t errlen)
{
	char text[KEYFILE_MAX + 1];
	size_t len = 0;
	int rc = read_small(path, text, sizeof text, &len, errbuf, errlen);

	if (rc == 0)
		rc = parse_keyfile(path, text, len, out, errbuf, errlen);
	sodium_memzero(text, sizeof text);  /* it may have held a secret key */
	return rc;
}

void
keyfile_fingerprint(const unsigned char key[32], char out[17])
{
	unsigned char hash[crypto_generichash_BYTES];

	/* libsodium's BLAKE2b gives at least 16 bytes; the fingerprint is the
	 * first 8 of the default 32-byte hash, which is plenty to tell keys
	 * apart in logs and reveals nothing about them. */
	if (sodium_init() < 0 ||
	    crypto_generichash(hash, sizeof hash, key, 32, NULL, 0) != 0) {
		memcpy(out, "0000000000000000", 17);
		return;
	}
	sodium_bin2hex(out, 17, hash, 8);
}
