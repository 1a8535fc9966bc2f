/*
 * The write-ahead log file: creation, append with sync, reading back (the
 * format is in wal.h).
 *
 * Why the file is written full of zeros once: a record appended into
 * allocated, already written blocks is an overwrite, so fdatasync() has
 * only the record's data to flush, never the file's size or its block map.
 * That is what makes one sync of a sequential file cheaper than LMDB's
 * commit (its data pages, then its meta page).
 *
 * Why every record carries its generation and sequence number: the file is
 * never truncated (a checkpoint just starts a new generation), so bytes of
 * older records stay behind the newest one, and a record cut short by a
 * power cut must not be taken for a whole one.  The check covers the
 * header and the payload; any difference stops the reading there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "bigendian.h"
#include "wal.h"

#define WAL_MAGIC       "relais-wal\n"
#define WAL_VERSION     1u
#define ZERO_CHUNK      (1u << 20)

/*
 * The check is an integrity check, not an authentication: the key is
 * fixed, and SipHash serves because libsodium already provides it, fast.
 */
static const unsigned char check_key[crypto_shorthash_KEYBYTES] =
    "relais-wal-check";

static uint64_t
record_check(const unsigned char *rec, size_t len)
{
	unsigned char h[crypto_shorthash_BYTES];

	crypto_shorthash(h, rec + 8, WAL_RECORD_HDR - 8 + len, check_key);
	return be_get(h, 8);
}

/* Write (or read) all of buf at off, however many calls it takes. */
static int
transfer_at(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off) :
		    pread(fd, p, len, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno;
		if (n == 0)
			return EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int
write_at(int fd, const void *buf, size_t len, uint64_t off)
{
	return transfer_at(fd, (void *)buf, len, off, true);
}

static int
read_at(int fd, void *buf, size_t len, uint64_t off)
{
	return transfer_at(fd, buf, len, off, false);
}

/* The folder's entry for a new file is durable only once the folder is synced. */
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd == -1)
		return errno;
	if (fsync(fd) == -1)
		rc = errno;
	close(fd);
	return rc;
}

/*
 * A new log: written under a temporary name (header, zeros, sync) and
 * renamed, so a log file that exists is always whole.
 */
static int
create_file(const char *dir, const char *path, uint64_t size)
{
	char tmp[1100];
	unsigned char *zeros;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		return errno;
	if ((zeros = calloc(1, ZERO_CHUNK)) == NULL) {
		close(fd);
		unlink(tmp);
		return ENOMEM;
	}
	for (uint64_t off = 0; off < size && rc == 0; off += ZERO_CHUNK)
		rc = write_at(fd, zeros, size - off < ZERO_CHUNK ?
		    (size_t)(size - off) : ZERO_CHUNK, off);
	free(zeros);
	if (rc == 0) {
		unsigned char hdr[32] = { 0 };

		memcpy(hdr, WAL_MAGIC, sizeof(WAL_MAGIC) - 1);
		be_put(hdr + 16, WAL_VERSION, 4);
		rc = write_at(fd, hdr, sizeof(hdr), 0);
	}
	if (rc == 0 && fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = errno;
	if (rc == 0)
		rc = sync_dir(dir);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static void
log_path(char *buf, size_t len, const char *dir)
{
	snprintf(buf, len, "%s/%s", dir, WAL_FILE);
}

bool
wal_exists(const char *dir)
{
	char path[1024];

	log_path(path, sizeof(path), dir);
	return access(path, F_OK) == 0;
}

bool
wal_holds(const char *dir, uint64_t gen)
{
	char path[1024];
	unsigned char hdr[WAL_RECORD_HDR];
	bool holds = false;
	int fd;

	log_path(path, sizeof(path), dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	/* The first record's header is enough: a torn one is the only one. */
	if (read_at(fd, hdr, sizeof(hdr), WAL_HEADER) == 0)
		holds = be_get(hdr + 16, 8) == gen && be_get(hdr + 24, 8) == 1;
	close(fd);
	return holds;
}

int
wal_open(struct wal *w, const char *dir, uint64_t size_mb, uint32_t layout,
    char *err, size_t errlen)
{
	char path[1024];
	unsigned char hdr[32];
	struct stat sb;
	int rc;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->layout = layout;
	log_path(path, sizeof(path), dir);
	if (access(path, F_OK) == -1 && size_mb == 0) {
		snprintf(err, errlen, "%s is gone", path);
		return -1;
	}
	if (access(path, F_OK) == -1 &&
	    (rc = create_file(dir, path, size_mb << 20)) != 0) {
		snprintf(err, errlen, "cannot create the write-ahead log %s: %s "
		    "(check the data_dir's free space and permissions)", path,
		    strerror(rc));
		return -1;
	}
	if ((w->fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open the write-ahead log %s: %s",
		    path, strerror(errno));
		return -1;
	}
	w->open = true;
	if (fstat(w->fd, &sb) == -1 || sb.st_size < (off_t)(WAL_HEADER +
	    WAL_RECORD_HDR) || read_at(w->fd, hdr, sizeof(hdr), 0) != 0 ||
	    memcmp(hdr, WAL_MAGIC, sizeof(WAL_MAGIC) - 1) != 0 ||
	    be_get(hdr + 16, 4) != WAL_VERSION) {
		snprintf(err, errlen, "%s is not a relais write-ahead log of "
		    "version %u: move it away only if you know the store does "
		    "not need it (acknowledged events may be in it)", path,
		    WAL_VERSION);
		wal_close(w);
		return -1;
	}
	w->size = (uint64_t)sb.st_size;
	wal_restart(w, 0);
	return 0;
}

void
wal_close(struct wal *w)
{
	if (w->open && w->fd != -1)
		close(w->fd);
	w->fd = -1;
	w->open = false;
}

void
wal_restart(struct wal *w, uint64_t gen)
{
	w->gen = gen;
	w->seq = 0;
	w->end = WAL_HEADER;
}

bool
wal_fits(const struct wal *w, size_t len)
{
	return w->end <= w->size && len <= w->size - w->end - WAL_RECORD_HDR &&
	    w->size - w->end >= WAL_RECORD_HDR;
}

int
wal_append(struct wal *w, unsigned char *buf, size_t len)
{
	int rc;

	if (!wal_fits(w, len))
		return ENOSPC;
	be_put(buf + 8, len, 4);
	be_put(buf + 12, w->layout, 4);
	be_put(buf + 16, w->gen, 8);
	be_put(buf + 24, w->seq + 1, 8);
	be_put(buf, record_check(buf, len), 8);
	if ((rc = write_at(w->fd, buf, WAL_RECORD_HDR + len, w->end)) != 0)
		return rc;
	if (fdatasync(w->fd) == -1)
		return errno;
	w->seq++;
	w->end += WAL_RECORD_HDR + len;
	return 0;
}

/*
 * The record at w->end if it is the next one of w->gen: 1 (payload in
 * *buf, grown as needed), 0 if not (the end of the generation), or an
 * errno.
 */
static int
read_next(struct wal *w, unsigned char **buf, size_t *cap, size_t *len)
{
	unsigned char hdr[WAL_RECORD_HDR];
	uint64_t n;
	int rc;

	if (w->size - w->end < WAL_RECORD_HDR)
		return 0;
	if ((rc = read_at(w->fd, hdr, sizeof(hdr), w->end)) != 0)
		return rc;
	n = be_get(hdr + 8, 4);
	if (be_get(hdr + 16, 8) != w->gen || be_get(hdr + 24, 8) != w->seq + 1 ||
	    n > w->size - w->end - WAL_RECORD_HDR)
		return 0;
	if (WAL_RECORD_HDR + n > *cap) {
		unsigned char *p = realloc(*buf, WAL_RECORD_HDR + n);

		if (p == NULL)
			return ENOMEM;
		*buf = p;
		*cap = WAL_RECORD_HDR + n;
	}
	memcpy(*buf, hdr, sizeof(hdr));
	if ((rc = read_at(w->fd, *buf + WAL_RECORD_HDR, n, w->end +
	    WAL_RECORD_HDR)) != 0)
		return rc;
	if (record_check(*buf, n) != be_get(hdr, 8))
		return 0;
	*len = n;
	return 1;
}

int
wal_scan(struct wal *w, uint64_t gen, uint64_t upto,
    int (*fn)(void *arg, const unsigned char *p, size_t len), void *arg)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = 0;
	int rc = 0;

	wal_restart(w, gen);
	while (upto == 0 || w->seq < upto) {
		if ((rc = read_next(w, &buf, &cap, &len)) != 1)
			break;
		if (be_get(buf + 12, 4) != w->layout) {
			rc = WAL_E_LAYOUT;
			break;
		}
		if (fn != NULL && (rc = fn(arg, buf + WAL_RECORD_HDR, len)) != 0)
			break;
		w->seq++;
		w->end += WAL_RECORD_HDR + len;
		rc = 0;
	}
	free(buf);
	return rc;
}
