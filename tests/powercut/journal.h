/*
 * The journal the power-cut shim (powercut_shim.c) writes and the power-cut
 * test (tests/e2e/powercut_replay.c) reads back.
 *
 * The shim sits under relaisd (LD_PRELOAD, in the test only) and, for every
 * write to a watched file, appends a record holding the bytes the write
 * replaces and the bytes it writes, BEFORE the write happens; for every
 * successful sync of a watched file it appends a record AFTER the sync
 * returns.  A write is durable once a sync of its file follows it, or, on
 * a descriptor opened with O_DSYNC (LMDB's meta page), once it returned.
 * Whatever is not durable when the process dies is what a power cut may
 * lose; the test decides, page by page, what survives.
 *
 * Records are written with one write(2) each and are never synced: the
 * broker is killed (SIGKILL), not the machine, so the page cache keeps
 * them.  A record cut short by the kill is ignored: its write had not
 * started.  Host byte order: written and read on the same machine.
 */
#ifndef RELAIS_POWERCUT_JOURNAL_H
#define RELAIS_POWERCUT_JOURNAL_H

#include <stdint.h>

#define PC_MAGIC        0x50435554u     /* "PCUT" */

enum pc_kind {
	PC_FILE = 'F',      /* a watched file: path (len bytes) follows */
	PC_WRITE = 'W',     /* old bytes (old_len), then new bytes (len) */
	PC_SYNC = 'S',      /* fsync/fdatasync of file returned 0 */
	PC_DONE_SYNCED = 'D', /* write seq, on an O_DSYNC descriptor, returned */
	PC_MSYNC = 'M',     /* msync of a map the shim does not model */
	PC_TRUNCATE = 'T',  /* ftruncate shrinking a watched file: not modelled */
};

/* A write of a page stored through a map (the shim's write-back). */
#define PC_MAPPED       1u

struct pc_record {
	uint32_t magic;
	uint32_t kind;
	uint32_t file;      /* index of the PC_FILE record */
	uint32_t flags;     /* PC_WRITE: PC_MAPPED */
	uint64_t seq;       /* PC_WRITE: its number; PC_DONE_SYNCED: which */
	uint64_t off;       /* where the write starts */
	uint64_t len;       /* bytes written (PC_FILE: path length) */
	uint64_t old_size;  /* file size before the write */
	uint64_t old_len;   /* bytes of old content saved (within old_size) */
};

#endif
