/*
 * Rebuilding a disk after a power cut from the shim's journal
 * (powercut_replay.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../powercut/journal.h"
#include "powercut_replay.h"

#define PAGE        4096
#define MAX_FILES   16

struct jwrite {
	struct pc_record r;         /* a copy: records in the journal are unaligned */
	const unsigned char *old, *data;
	bool durable;
};

struct journal {
	unsigned char *buf;
	size_t len;
	char *paths[MAX_FILES];
	int fds[MAX_FILES];
	size_t nfiles;
	struct jwrite *w;
	size_t nw;
	size_t syncs, msyncs, truncates;
};

/* A page's unsynced history stops at its first lost version. */
struct page {
	uint32_t file;
	uint64_t no;
};

uint64_t
powercut_draw(uint64_t *s)
{
	/* splitmix64: a fixed sequence per seed, so a failure replays. */
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static unsigned char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc(n ? n : 1)) != NULL &&
	    fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	} else {
		*len = buf != NULL ? (size_t)n : 0;
	}
	fclose(f);
	return buf;
}

static void
journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->nfiles; i++) {
		free(j->paths[i]);
		if (j->fds[i] >= 0)
			close(j->fds[i]);
	}
	free(j->w);
	free(j->buf);
}

/* Parse every whole record; a record cut short by the kill ends it. */
static int
journal_load(struct journal *j, const char *path, char *err, size_t errlen)
{
	size_t at = 0;

	memset(j, 0, sizeof(*j));
	if ((j->buf = read_all(path, &j->len)) == NULL) {
		snprintf(err, errlen, "cannot read the journal %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if ((j->w = calloc(j->len / sizeof(struct pc_record) + 1,
	    sizeof(*j->w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (at + sizeof(struct pc_record) <= j->len) {
		/* Records follow bodies of any length: copied out, not cast. */
		struct pc_record hdr;
		const struct pc_record *r = &hdr;
		const unsigned char *after = j->buf + at + sizeof(hdr);
		size_t body;

		memcpy(&hdr, j->buf + at, sizeof(hdr));
		body = r->kind == PC_WRITE ? r->old_len + r->len :
		    r->kind == PC_FILE ? r->len : 0;

		if (r->magic != PC_MAGIC) {
			snprintf(err, errlen, "journal %s: no record at byte %zu",
			    path, at);
			return -1;
		}
		if (at + sizeof(*r) + body > j->len)
			break;
		switch (r->kind) {
		case PC_FILE:
			if (r->file != j->nfiles || j->nfiles == MAX_FILES ||
			    (j->paths[j->nfiles] = strndup((const char *)after,
			    r->len)) == NULL) {
				snprintf(err, errlen, "journal %s: bad file record", path);
				return -1;
			}
			j->fds[j->nfiles++] = -1;
			break;
		case PC_WRITE:
			j->w[j->nw].r = hdr;
			j->w[j->nw].old = after;
			j->w[j->nw].data = j->w[j->nw].old + r->old_len;
			j->nw++;
			break;
		case PC_SYNC:
			/* A sync makes every earlier write to its file durable. */
			for (size_t i = 0; i < j->nw; i++)
				if (j->w[i].r.file == r->file)
					j->w[i].durable = true;
			j->syncs++;
			break;
		case PC_DONE_SYNCED:
			for (size_t i = j->nw; i-- > 0;)
				if (j->w[i].r.seq == r->seq) {
					j->w[i].durable = true;
					break;
				}
			break;
		case PC_MSYNC:
			j->msyncs++;
			break;
		case PC_TRUNCATE:
			j->truncates++;
			break;
		}
		at += sizeof(*r) + body;
	}
	return 0;
}

static int
file_fd(struct journal *j, uint32_t f, char *err, size_t errlen)
{
	if (f >= j->nfiles) {
		snprintf(err, errlen, "journal: a write to unknown file %u", f);
		return -1;
	}
	if (j->fds[f] < 0 && (j->fds[f] = open(j->paths[f], O_RDWR)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", j->paths[f],
		    strerror(errno));
		return -1;
	}
	return j->fds[f];
}

static int
put(int fd, const void *buf, size_t len, uint64_t off, const char *path,
    char *err, size_t errlen)
{
	if (len > 0 && pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Undo every journalled write, newest first: the files are back as they
 * were when the shim's process started (a clean stop left them synced).
 */
static int
undo_all(struct journal *j, char *err, size_t errlen)
{
	for (size_t i = j->nw; i-- > 0;) {
		const struct pc_record *r = &j->w[i].r;
		int fd;

		if ((fd = file_fd(j, r->file, err, errlen)) < 0 ||
		    put(fd, j->w[i].old, r->old_len, r->off, j->paths[r->file], err,
		    errlen) == -1)
			return -1;
		if (ftruncate(fd, (off_t)r->old_size) == -1) {
			snprintf(err, errlen, "cannot truncate %s: %s",
			    j->paths[r->file], strerror(errno));
			return -1;
		}
	}
	return 0;
}

static bool
page_stopped(const struct page *stopped, size_t n, uint32_t file, uint64_t no)
{
	for (size_t i = 0; i < n; i++)
		if (stopped[i].file == file && stopped[i].no == no)
			return true;
	return false;
}

/* Remember that page p of file f lost its version: its history ends. */
static int
stop_page(struct page **v, size_t *n, size_t *cap, uint32_t f, uint64_t p)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct page *nv = realloc(*v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = (struct page){ f, p };
	return 0;
}

/*
 * Replay the writes in their order: a durable one always; an unsynced one
 * page by page, each page's history ending for good at its first version
 * drawn as lost (every version, with lose_all).
 */
static int
replay(struct journal *j, uint64_t seed, bool lose_all,
    struct powercut_stats *st, char *err, size_t errlen)
{
	struct page *stopped = NULL;
	size_t nstopped = 0, cap = 0;
	int rc = -1;

	for (size_t i = 0; i < j->nw; i++) {
		const struct pc_record *r = &j->w[i].r;
		uint64_t first = r->off / PAGE, last;
		int fd;

		if (r->len == 0)
			continue;
		if ((fd = file_fd(j, r->file, err, errlen)) < 0)
			goto out;
		if (j->w[i].durable) {
			if (put(fd, j->w[i].data, r->len, r->off, j->paths[r->file],
			    err, errlen) == -1)
				goto out;
			continue;
		}
		last = (r->off + r->len - 1) / PAGE;
		for (uint64_t p = first; p <= last; p++) {
			uint64_t from = p * PAGE > r->off ? p * PAGE : r->off;
			uint64_t to = (p + 1) * PAGE < r->off + r->len ?
			    (p + 1) * PAGE : r->off + r->len;

			if (page_stopped(stopped, nstopped, r->file, p)) {
				st->pages_lost++;
				continue;
			}
			if (lose_all || (powercut_draw(&seed) & 1)) {
				if (stop_page(&stopped, &nstopped, &cap, r->file, p) == -1) {
					snprintf(err, errlen, "out of memory");
					goto out;
				}
				st->pages_lost++;
				continue;
			}
			if (put(fd, j->w[i].data + (from - r->off), to - from, from,
			    j->paths[r->file], err, errlen) == -1)
				goto out;
			st->pages_kept++;
		}
	}
	rc = 0;
out:
	free(stopped);
	return rc;
}

int
powercut_apply(const char *path, uint64_t seed, bool lose_all,
    struct powercut_stats *st, char *err, size_t errlen)
{
	struct journal j;
	int rc = -1;

	memset(st, 0, sizeof(*st));
	if (journal_load(&j, path, err, errlen) == -1)
		goto out;
	st->writes = j.nw;
	st->syncs = j.syncs;
	st->msyncs = j.msyncs;
	st->truncates = j.truncates;
	for (size_t i = 0; i < j.nw; i++) {
		bool mapped = (j.w[i].r.flags & PC_MAPPED) != 0;

		st->unsynced += !j.w[i].durable;
		st->mapped += mapped;
		st->mapped_unsynced += mapped && !j.w[i].durable;
	}
	if (j.msyncs > 0 || j.truncates > 0) {
		snprintf(err, errlen, "the store synced a map the shim did not make "
		    "private (%zu msync) or shrank its file (%zu ftruncate): the "
		    "shim cannot model a power cut then", j.msyncs, j.truncates);
		goto out;
	}
	if (undo_all(&j, err, errlen) == -1 ||
	    replay(&j, seed, lose_all, st, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	journal_free(&j);
	return rc;
}

long
powercut_ops(const char *path)
{
	struct journal j;
	char err[256];
	long n = -1;

	if (journal_load(&j, path, err, sizeof(err)) == 0)
		n = (long)(j.nw + j.syncs);
	journal_free(&j);
	return n;
}
