/*
 * The write-ahead log file (durability = wal): one file, wal.log in the
 * data_dir, of a fixed size written once with zeros when it is created, so
 * that appending a record never changes the file's size and one
 * fdatasync() makes it durable without touching the file system's
 * metadata.
 *
 * Layout: a WAL_HEADER-byte header (magic, version), then records one
 * after the other from WAL_HEADER on.  A record:
 *
 *   u64be check    keyed SipHash (libsodium crypto_shorthash) of the rest
 *   u32be len      bytes of payload
 *   u32be layout   what the payload's bytes mean (the store's format)
 *   u64be gen      the generation the record belongs to
 *   u64be seq      1, 2, 3... within its generation
 *   payload
 *
 * A generation is what was written since a checkpoint.  A checkpoint does
 * not erase the file: the next generation's records simply start again
 * from WAL_HEADER and overwrite the older ones.  Reading stops at the first
 * record that is not exactly the next one of the generation asked for: a
 * torn or zeroed tail, a record of an older generation, a bad check.
 * Whatever follows that point is ignored, so a record counts only once it
 * and every record before it are intact.
 *
 * wal.c knows nothing of what payloads mean: txn.c and redo.c do.
 */
#ifndef RELAIS_WAL_H
#define RELAIS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_FILE        "wal.log"
#define WAL_HEADER      4096u
#define WAL_RECORD_HDR  32u     /* check, len, layout, gen, seq */

struct wal {
	bool open;                  /* false: zeroed or closed */
	int fd;
	uint64_t size;              /* the file's size: records never pass it */
	uint64_t gen;               /* the generation appended to */
	uint64_t seq;               /* records of gen in the file */
	uint64_t end;               /* where the next record goes */
	uint32_t layout;            /* written into each record */
};

/*
 * Open dir/wal.log, creating it (size_mb MiB of zeros, synced, mode 0600)
 * if it does not exist and size_mb is not 0; an existing file keeps its
 * size.  Positions the
 * log at the start of generation 0 with no record: call wal_scan() to
 * find what a generation holds.  0, or -1 with a sentence in err.
 */
int wal_open(struct wal *w, const char *dir, uint64_t size_mb,
    uint32_t layout, char *err, size_t errlen);
void wal_close(struct wal *w);

/* Whether dir holds a log file at all. */
bool wal_exists(const char *dir);

/*
 * Whether dir's log holds a record of generation gen, whatever its layout:
 * changes acknowledged since the store's last checkpoint, which only the
 * relaisd that wrote them can apply.
 */
bool wal_holds(const char *dir, uint64_t gen);

/*
 * The records of generation gen, in order, each passed to fn (its payload
 * and length; the pointer is valid during the call only); fn returns 0 to
 * go on, anything else stops the scan and is returned.  Records whose
 * layout is not w->layout stop it with WAL_E_LAYOUT.  Afterwards
 * w->gen = gen and w->seq, w->end are past the last intact record, so
 * appends continue from there.  Returns 0, fn's value, WAL_E_LAYOUT, or an
 * errno.  upto, if not 0, stops after that many records.
 */
#define WAL_E_LAYOUT    (-30700)
int wal_scan(struct wal *w, uint64_t gen, uint64_t upto,
    int (*fn)(void *arg, const unsigned char *p, size_t len), void *arg);

/* Start generation gen, empty (nothing is written: see the layout above). */
void wal_restart(struct wal *w, uint64_t gen);

/*
 * Whether a record of len payload bytes fits after the current end.
 */
bool wal_fits(const struct wal *w, size_t len);

/*
 * Append one record and make it durable (fdatasync).  buf holds
 * WAL_RECORD_HDR bytes for the record's header (filled here), then len
 * bytes of payload.  0, ENOSPC if it does not fit (wal_fits), or the errno
 * of the failed write or sync: then the record may or may not be on disk,
 * and the caller must not append to this generation again.
 */
int wal_append(struct wal *w, unsigned char *buf, size_t len);

#endif
