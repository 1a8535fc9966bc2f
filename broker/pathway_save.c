/*
 * Saving and restoring a pathway around an in-place apply (pathway.h).
 *
 * A pathway is mostly fixed-capacity arrays, nearly empty for most people:
 * the undo copy the participant cache takes before each event of a person
 * already changed in the pass (participants.c) copied all of it, the
 * largest single cost of an event's CPU in a profile.  Here only the
 * scalars and the used elements are copied; restoring zeroes the rest of
 * each array, which is what every pathway holds there (pathway_init() and
 * pathway_decode() start from zero, and removals zero what they vacate),
 * and which a failed apply may have written (an element half-filled
 * before a refusal).
 */
#include <stddef.h>
#include <string.h>

#include "pathway.h"

#define AT(field) offsetof(struct pathway, field)
#define END_OF(arr) (AT(arr) + sizeof(((struct pathway *)0)->arr))

/* Bytes [from, to) of the structure, padding included. */
static void
copy_range(struct pathway *dst, const struct pathway *src, size_t from,
    size_t to)
{
	memcpy((char *)dst + from, (const char *)src + from, to - from);
}

/* Copy n (clamped to the capacity) elements of array arr; zero the rest. */
#define COPY_USED(dst, src, arr, n, zero_rest) do { \
	size_t cap_ = sizeof((src)->arr) / sizeof((src)->arr[0]); \
	size_t n_ = (n) < 0 ? 0 : (size_t)(n) > cap_ ? cap_ : (size_t)(n); \
	memcpy((dst)->arr, (src)->arr, n_ * sizeof((src)->arr[0])); \
	if (zero_rest) \
		memset(&(dst)->arr[n_], 0, (cap_ - n_) * sizeof((src)->arr[0])); \
} while (0)

/*
 * Everything but the unused elements of the five collections, in the
 * order of the structure: a field added between them is copied too.
 */
static void
copy(struct pathway *dst, const struct pathway *src, bool zero_rest)
{
	copy_range(dst, src, 0, AT(referrals));
	COPY_USED(dst, src, referrals, src->nreferrals, zero_rest);
	copy_range(dst, src, END_OF(referrals), AT(referents));
	COPY_USED(dst, src, referents, src->nreferents, zero_rest);
	copy_range(dst, src, END_OF(referents), AT(barriers));
	COPY_USED(dst, src, barriers, src->nbarriers, zero_rest);
	copy_range(dst, src, END_OF(barriers), AT(appointments));
	COPY_USED(dst, src, appointments, src->nappointments, zero_rest);
	copy_range(dst, src, END_OF(appointments), AT(enrollments));
	COPY_USED(dst, src, enrollments, src->nenrollments, zero_rest);
	copy_range(dst, src, END_OF(enrollments), sizeof(*dst));
}

void
pathway_save(struct pathway *save, const struct pathway *pw)
{
	copy(save, pw, false);
}

void
pathway_restore(struct pathway *pw, const struct pathway *save)
{
	copy(pw, save, true);
}
