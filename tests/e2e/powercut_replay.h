/*
 * What a disk holds after a power cut, rebuilt from the journal of the
 * power-cut shim (tests/powercut/journal.h) once the broker is dead.
 *
 * Every journalled write is first undone, newest first, by putting back
 * the bytes it replaced and the file's earlier size; then the writes are
 * replayed in their order: a durable one (a sync followed it) always; one
 * that no sync covered, page by page: unless every such write is to be
 * lost, each 4 KiB page keeps a random prefix of its own unsynced history.
 * A disk writes back pages in any order and may stop anywhere, but a page
 * it writes holds a version the page really had; so some pages of a
 * commit survive and others do not, in no particular order.
 */
#ifndef RELAIS_E2E_POWERCUT_REPLAY_H
#define RELAIS_E2E_POWERCUT_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct powercut_stats {
	size_t writes;          /* journalled writes */
	size_t unsynced;        /* of which not durable at the cut */
	size_t pages_kept;      /* unsynced page versions put back */
	size_t pages_lost;      /* unsynced page versions lost */
	size_t mapped;          /* writes of pages stored through a map */
	size_t mapped_unsynced; /* of which not durable at the cut */
	size_t syncs;
	size_t msyncs;          /* msync of a map the shim does not model */
	size_t truncates;       /* ftruncate shrinking a file: not modelled */
};

/*
 * Apply the power cut described by the journal to the files it names.
 * lose_all: every unsynced write is lost; otherwise pages keep a random
 * part of their history, drawn from seed.  0, or -1 with a sentence in err.
 */
int powercut_apply(const char *journal, uint64_t seed, bool lose_all,
    struct powercut_stats *st, char *err, size_t errlen);

/* The next number of the sequence *state started from a seed (the same
 * sequence on every machine, so a seed replays a run). */
uint64_t powercut_draw(uint64_t *state);

/* Writes and syncs of watched files in the journal: the shim's count. */
long powercut_ops(const char *journal);

#endif
