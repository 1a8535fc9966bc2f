/*
 * libpowercut.so: an LD_PRELOAD shim for the power-cut test, never for
 * production.  It journals every write to the files it watches, with the
 * bytes each write replaces, and every sync of them (journal.h says how),
 * and can kill its process at a chosen write or sync, so that the test can
 * rebuild what a disk would hold after a power cut at that instant.
 *
 * Environment (read once, at the first call it intercepts):
 *   POWERCUT_JOURNAL     the journal to append to; unset: the shim only
 *                        passes calls through
 *   POWERCUT_FILES       comma-separated base names to watch (data.mdb)
 *   POWERCUT_KILL_AT     kill the process (SIGKILL) at this write or sync
 *                        of a watched file, counted from 1; unset or 0:
 *                        never
 *   POWERCUT_KILL_AFTER  1: kill just after that call returns, before its
 *                        caller sees the result; otherwise just before it
 *
 * What it intercepts is what LMDB 0.9.24 uses on Linux (liblmdb imports
 * open, pwrite, write, lseek + writev, fdatasync, fsync, msync, ftruncate):
 * the data pages go through pwrite or lseek + writev on the descriptor
 * opened read-write on data.mdb, then fdatasync; the meta page through
 * pwrite on a second descriptor opened O_WRONLY | O_DSYNC.  pwrite64,
 * pwritev, open64 and openat are covered too, for other callers.
 *
 * With MDB_WRITEMAP (durability = wal) LMDB writes its pages by storing
 * into a shared, writable map of data.mdb, invisible to a shim.  So such a
 * map of a watched file is made private here (MAP_PRIVATE): the stores stay
 * in the process, and reach the file only as journalled writes, the pages
 * that differ from the file, when msync asks for them (then a sync is
 * journalled), when the map goes, or just before the kill: there they are
 * writes not yet synced, which is what a kernel may or may not have
 * written back when the power goes.  Which pages differ is read from
 * /proc/self/pagemap (a page the process wrote is anonymous).  An msync of
 * any other map, and an ftruncate that shrinks a watched file, are
 * journalled so that the test can refuse what it cannot model; an
 * ftruncate that extends one (LMDB sizing the file to its map) adds only
 * zeros, which nothing is lost from.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdatomic.h>
#include <unistd.h>

#include "journal.h"

#define MAX_FDS     4096
#define MAX_FILES   16
#define MAX_NAMES   8
#define MAX_MAPS    8
#define PAGE_BYTES  4096u

/* The real functions, found past this library. */
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_msync)(void *, size_t, int);
static int (*real_ftruncate)(int, off_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);

/* A shared writable map of a watched file, made private (see above). */
struct map {
	char *addr;         /* NULL: slot free */
	size_t len;
	off_t off;          /* of the file, at addr */
	int file;
};

struct watched_fd {
	int file;           /* index into files[], -1: not watched */
	bool dsync;         /* opened O_DSYNC: a write is durable on return */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int journal_fd = -1;
static char names[MAX_NAMES][NAME_MAX + 1];
static int nnames;
static char files[MAX_FILES][PATH_MAX];
static int readers[MAX_FILES];      /* O_RDONLY, to save old bytes */
static int nfiles;
static struct watched_fd fds[MAX_FDS];
static uint64_t ops, kill_at, write_seq;
static bool kill_after;
static struct map maps[MAX_MAPS];
/* Set once init() is done: before, map calls come from the loader,
 * dlsym or an allocator (init's own), and go straight to the kernel. */
static atomic_bool ready;
static int writers[MAX_FILES];      /* O_RDWR, for writes through a map */

static void
die(const char *what)
{
	/* The test reads this in the broker's log, then sees it fail. */
	fprintf(stderr, "powercut shim: %s: %s\n", what, strerror(errno));
	abort();
}

static void
init(void)
{
	const char *j = getenv("POWERCUT_JOURNAL");
	const char *list = getenv("POWERCUT_FILES");
	const char *k = getenv("POWERCUT_KILL_AT");
	const char *after = getenv("POWERCUT_KILL_AFTER");

	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT,
	    "openat");
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
	    "write");
	real_pwrite = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(
	    RTLD_NEXT, "pwrite");
	real_writev = (ssize_t (*)(int, const struct iovec *, int))dlsym(
	    RTLD_NEXT, "writev");
	real_pwritev = (ssize_t (*)(int, const struct iovec *, int, off_t))dlsym(
	    RTLD_NEXT, "pwritev");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_msync = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
	real_ftruncate = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(
	    RTLD_NEXT, "mmap");
	real_munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
	for (int i = 0; i < MAX_FDS; i++)
		fds[i].file = -1;
	if (j == NULL || *j == '\0') {
		atomic_store(&ready, true);
		return;
	}
	if (list == NULL || *list == '\0')
		list = "data.mdb";
	while (*list != '\0' && nnames < MAX_NAMES) {
		size_t n = strcspn(list, ",");

		snprintf(names[nnames++], sizeof(names[0]), "%.*s", (int)n, list);
		list += n + (list[n] == ',');
	}
	kill_at = k != NULL ? strtoull(k, NULL, 10) : 0;
	kill_after = after != NULL && strcmp(after, "1") == 0;
	journal_fd = real_open(j, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (journal_fd == -1)
		die("cannot open POWERCUT_JOURNAL");
	atomic_store(&ready, true);
}

static void
journal(const struct pc_record *r, const void *a, size_t alen, const void *b,
    size_t blen)
{
	struct iovec iov[3] = {
		{ (void *)r, sizeof(*r) }, { (void *)a, alen }, { (void *)b, blen },
	};
	size_t want = sizeof(*r) + alen + blen;

	/* One writev: a record is whole or, if the kill cuts it, ignored. */
	if (real_writev(journal_fd, iov, 3) != (ssize_t)want)
		die("cannot write the journal");
}

static bool
watched_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	for (int i = 0; i < nnames; i++)
		if (strcmp(base, names[i]) == 0)
			return true;
	return false;
}

/* After a successful open: watch fd if it is one of our files. */
static void
note_open(int fd, const char *path, int flags)
{
	char full[PATH_MAX];
	int f;

	if (journal_fd == -1 || fd < 0 || fd >= MAX_FDS || !watched_name(path) ||
	    realpath(path, full) == NULL)
		return;
	pthread_mutex_lock(&lock);
	for (f = 0; f < nfiles && strcmp(files[f], full) != 0; f++)
		;
	if (f == nfiles) {
		struct pc_record r = { .magic = PC_MAGIC, .kind = PC_FILE,
		    .file = (uint32_t)f, .len = strlen(full) };

		if (nfiles == MAX_FILES)
			die("too many watched files");
		snprintf(files[f], sizeof(files[f]), "%s", full);
		if ((readers[f] = real_open(full, O_RDONLY | O_CLOEXEC)) == -1)
			die("cannot reopen a watched file");
		writers[f] = -1;
		nfiles++;
		journal(&r, full, r.len, NULL, 0);
	}
	fds[fd].file = f;
	fds[fd].dsync = (flags & O_DSYNC) != 0;
	pthread_mutex_unlock(&lock);
}

static int
watched(int fd)
{
	if (journal_fd == -1 || fd < 0 || fd >= MAX_FDS)
		return -1;
	return fds[fd].file;
}

static void flush_maps_unsynced(void);

/*
 * Count a write or sync; die here if it is the chosen one (before it),
 * what the maps hold written first, unsynced.  Called with lock held.
 */
static void
count_op(bool after)
{
	if (after == kill_after && kill_at != 0 &&
	    ops + (after ? 0 : 1) == kill_at) {
		flush_maps_unsynced();
		kill(getpid(), SIGKILL);
	}
	if (!after)
		ops++;
}

/* Journal the write r describes (file, off, len) of buf, with the bytes it
 * replaces, before it happens.  Called with lock held. */
static void
journal_write(struct pc_record *r, const void *buf)
{
	struct stat st;
	char *old = NULL;
	off_t off = (off_t)r->off;

	if (fstat(readers[r->file], &st) == -1)
		die("fstat of a watched file");
	r->seq = ++write_seq;
	r->old_size = (uint64_t)st.st_size;
	r->old_len = 0;
	if (off < st.st_size) {
		r->old_len = (uint64_t)st.st_size - r->off < r->len ?
		    (uint64_t)st.st_size - r->off : r->len;
		if ((old = malloc(r->old_len)) == NULL ||
		    pread(readers[r->file], old, r->old_len, off) !=
		    (ssize_t)r->old_len)
			die("cannot read the bytes a write replaces");
	}
	journal(r, old, r->old_len, buf, r->len);
	free(old);
}

/*
 * Journal a write of the gathered bytes at off, perform it with do_write,
 * then note it durable if the descriptor syncs every write.
 */
static ssize_t
logged_write(int fd, int f, const void *buf, size_t len, off_t off,
    ssize_t (*do_write)(void *ctx), void *ctx)
{
	struct pc_record r = { .magic = PC_MAGIC, .kind = PC_WRITE,
	    .file = (uint32_t)f, .off = (uint64_t)off, .len = len };
	ssize_t got;

	pthread_mutex_lock(&lock);
	count_op(false);
	journal_write(&r, buf);
	got = do_write(ctx);
	if (got > 0 && fds[fd].dsync) {
		struct pc_record d = { .magic = PC_MAGIC, .kind = PC_DONE_SYNCED,
		    .file = (uint32_t)f, .seq = r.seq };

		journal(&d, NULL, 0, NULL, 0);
	}
	count_op(true);
	pthread_mutex_unlock(&lock);
	return got;
}

static void
note_sync(int f)
{
	struct pc_record r = { .magic = PC_MAGIC, .kind = PC_SYNC,
	    .file = (uint32_t)f };

	journal(&r, NULL, 0, NULL, 0);
}

static int
logged_sync(int fd, int (*sync_fn)(int))
{
	int f = watched(fd), rc;

	if (f < 0)
		return sync_fn(fd);
	pthread_mutex_lock(&lock);
	count_op(false);
	if ((rc = sync_fn(fd)) == 0)
		note_sync(f);
	count_op(true);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The intercepted calls                                               */

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

static int
open_watched(const char *path, int flags, mode_t mode)
{
	int fd = real_open(path, flags, mode);

	note_open(fd, path, flags);
	return fd;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	pthread_once(&once, init);
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_watched(path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	pthread_once(&once, init);
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return open_watched(path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	int fd;

	pthread_once(&once, init);
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	fd = real_openat(dirfd, path, flags, mode);
	/* Relative to another folder: only absolute paths can be resolved. */
	if (dirfd == AT_FDCWD || path[0] == '/')
		note_open(fd, path, flags);
	return fd;
}

int
close(int fd)
{
	pthread_once(&once, init);
	if (fd >= 0 && fd < MAX_FDS) {
		pthread_mutex_lock(&lock);
		fds[fd].file = -1;
		pthread_mutex_unlock(&lock);
	}
	return real_close(fd);
}

struct plain_ctx {
	int fd;
	const void *buf;
	size_t len;
	off_t off;
	const struct iovec *iov;
	int iovcnt;
};

static ssize_t
do_write_at(void *ctx)
{
	struct plain_ctx *c = ctx;

	return real_pwrite(c->fd, c->buf, c->len, c->off);
}

static ssize_t
do_write_here(void *ctx)
{
	struct plain_ctx *c = ctx;

	return real_write(c->fd, c->buf, c->len);
}

static ssize_t
do_writev_at(void *ctx)
{
	struct plain_ctx *c = ctx;

	return real_pwritev(c->fd, c->iov, c->iovcnt, c->off);
}

static ssize_t
do_writev_here(void *ctx)
{
	struct plain_ctx *c = ctx;

	return real_writev(c->fd, c->iov, c->iovcnt);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct plain_ctx c = { fd, buf, len, off, NULL, 0 };
	int f;

	pthread_once(&once, init);
	if ((f = watched(fd)) < 0)
		return real_pwrite(fd, buf, len, off);
	return logged_write(fd, f, buf, len, off, do_write_at, &c);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	struct plain_ctx c = { fd, buf, len, 0, NULL, 0 };
	int f;

	pthread_once(&once, init);
	if ((f = watched(fd)) < 0)
		return real_write(fd, buf, len);
	c.off = lseek(fd, 0, SEEK_CUR);
	return logged_write(fd, f, buf, len, c.off, do_write_here, &c);
}

/* The iovecs gathered into one buffer, for the journal. */
static char *
gather(const struct iovec *iov, int n, size_t *len)
{
	size_t total = 0, at = 0;
	char *buf;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if ((buf = malloc(total ? total : 1)) == NULL)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	*len = total;
	return buf;
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
	struct plain_ctx c = { fd, NULL, 0, 0, iov, n };
	ssize_t got;
	char *buf;
	size_t len;
	int f;

	pthread_once(&once, init);
	if ((f = watched(fd)) < 0)
		return real_writev(fd, iov, n);
	buf = gather(iov, n, &len);
	c.off = lseek(fd, 0, SEEK_CUR);
	got = logged_write(fd, f, buf, len, c.off, do_writev_here, &c);
	free(buf);
	return got;
}

ssize_t
pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	struct plain_ctx c = { fd, NULL, 0, off, iov, n };
	ssize_t got;
	char *buf;
	size_t len;
	int f;

	pthread_once(&once, init);
	if ((f = watched(fd)) < 0)
		return real_pwritev(fd, iov, n, off);
	buf = gather(iov, n, &len);
	got = logged_write(fd, f, buf, len, off, do_writev_at, &c);
	free(buf);
	return got;
}

int
fdatasync(int fd)
{
	pthread_once(&once, init);
	return logged_sync(fd, real_fdatasync);
}

int
fsync(int fd)
{
	pthread_once(&once, init);
	return logged_sync(fd, real_fsync);
}

/* ------------------------------------------------------------------ */
/* Writes through a map                                                */

static struct map *
map_at(const void *addr)
{
	for (int i = 0; i < MAX_MAPS; i++)
		if (maps[i].addr != NULL && (const char *)addr >= maps[i].addr &&
		    (const char *)addr < maps[i].addr + maps[i].len)
			return &maps[i];
	return NULL;
}

/*
 * Write to m's file, journalled, each page of [from, to) the process
 * stored into (anonymous in the private map: /proc/self/pagemap bit 61
 * clear, present or swapped) that differs from the file.  counted: each
 * write is a cut point.  Called with lock held.
 */
static void
write_back(struct map *m, char *from, char *to, bool counted)
{
	static int pagemap = -1;
	char old[PAGE_BYTES];

	if (pagemap == -1 && (pagemap = real_open("/proc/self/pagemap",
	    O_RDONLY | O_CLOEXEC)) == -1)
		die("cannot open /proc/self/pagemap");
	if (writers[m->file] == -1 && (writers[m->file] = real_open(
	    files[m->file], O_RDWR | O_CLOEXEC)) == -1)
		die("cannot reopen a watched file for writing");
	from = m->addr + (size_t)(from - m->addr) / PAGE_BYTES * PAGE_BYTES;
	for (char *p = from; p < to && p < m->addr + m->len; p += PAGE_BYTES) {
		off_t at = (off_t)((uintptr_t)p / PAGE_BYTES * 8);
		struct pc_record r = { .magic = PC_MAGIC, .kind = PC_WRITE,
		    .file = (uint32_t)m->file, .flags = PC_MAPPED,
		    .len = PAGE_BYTES };
		uint64_t e;
		ssize_t got;

		if (pread(pagemap, &e, sizeof(e), at) != (ssize_t)sizeof(e))
			die("cannot read /proc/self/pagemap");
		if (!(e >> 62) || (e >> 61 & 1))
			continue;
		r.off = (uint64_t)(m->off + (p - m->addr));
		got = pread(readers[m->file], old, PAGE_BYTES, (off_t)r.off);
		if (got < 0)
			die("cannot read a watched file");
		if (got == PAGE_BYTES && memcmp(old, p, PAGE_BYTES) == 0)
			continue;
		if (counted)
			count_op(false);
		journal_write(&r, p);
		if (real_pwrite(writers[m->file], p, PAGE_BYTES, (off_t)r.off) !=
		    PAGE_BYTES)
			die("cannot write a page of a map back");
		if (counted)
			count_op(true);
	}
}

static void
flush_maps_unsynced(void)
{
	for (int i = 0; i < MAX_MAPS; i++)
		if (maps[i].addr != NULL)
			write_back(&maps[i], maps[i].addr, maps[i].addr + maps[i].len,
			    false);
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int f, i;
	void *p;

	if (!atomic_load(&ready))
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if ((f = watched(fd)) < 0 || !(prot & PROT_WRITE) ||
	    (flags & MAP_TYPE) != MAP_SHARED)
		return real_mmap(addr, len, prot, flags, fd, off);
	p = real_mmap(addr, len, prot, (flags & ~MAP_TYPE) | MAP_PRIVATE, fd, off);
	if (p == MAP_FAILED)
		return p;
	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_MAPS && maps[i].addr != NULL; i++)
		;
	if (i == MAX_MAPS)
		die("too many maps of watched files");
	maps[i] = (struct map){ p, len, off, f };
	pthread_mutex_unlock(&lock);
	return p;
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int
munmap(void *addr, size_t len)
{
	struct map *m;

	if (!atomic_load(&ready))
		return (int)syscall(SYS_munmap, addr, len);
	pthread_mutex_lock(&lock);
	if ((m = map_at(addr)) != NULL && m->addr == addr) {
		/* What was stored and not synced is now the kernel's to write. */
		write_back(m, m->addr, m->addr + m->len, false);
		m->addr = NULL;
	}
	pthread_mutex_unlock(&lock);
	return real_munmap(addr, len);
}

int
msync(void *addr, size_t len, int flags)
{
	struct map *m;

	pthread_once(&once, init);
	if (journal_fd == -1 || nfiles == 0)
		return real_msync(addr, len, flags);
	pthread_mutex_lock(&lock);
	if ((m = map_at(addr)) != NULL) {
		int rc;

		write_back(m, addr, (char *)addr + len, true);
		count_op(false);
		if ((rc = real_fdatasync(writers[m->file])) == 0)
			note_sync(m->file);
		count_op(true);
		pthread_mutex_unlock(&lock);
		return rc;
	}
	{
		struct pc_record r = { .magic = PC_MAGIC, .kind = PC_MSYNC };

		journal(&r, NULL, 0, NULL, 0);
	}
	pthread_mutex_unlock(&lock);
	return real_msync(addr, len, flags);
}

int
ftruncate(int fd, off_t len)
{
	struct stat st;
	int f;

	pthread_once(&once, init);
	if ((f = watched(fd)) >= 0 && (fstat(fd, &st) == -1 || len < st.st_size)) {
		struct pc_record r = { .magic = PC_MAGIC, .kind = PC_TRUNCATE,
		    .file = (uint32_t)f, .off = (uint64_t)len };

		pthread_mutex_lock(&lock);
		journal(&r, NULL, 0, NULL, 0);
		pthread_mutex_unlock(&lock);
	}
	return real_ftruncate(fd, len);
}
