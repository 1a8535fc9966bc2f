/* Connections still in their handshake (crowd.h). */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "crowd.h"
#include "log.h"

/*
 * A connection younger than this is left alone: an agent's handshake takes
 * a few round trips, and the newest connections are the likeliest to be
 * agents that just arrived.
 */
#define SHED_MIN_AGE_MS     100
/* At most one shedding per interval: a failing accept is reported many
 * times before the first shed connections close. */
#define SHED_INTERVAL_MS    20
/* Each time, an eighth of those in their handshake, at least this many:
 * enough to empty a listen queue (libzmq's backlog is 100) in a few. */
#define SHED_AT_LEAST       32

int
crowd_init(struct crowd *c)
{
	struct rlimit rl;

	c->nfds = getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20) ?
	    (int)rl.rlim_cur : 1 << 20;
	c->accepted_at = calloc((size_t)c->nfds, sizeof(*c->accepted_at));
	c->owner = malloc((size_t)c->nfds * sizeof(*c->owner));
	c->last_shed = 0;
	c->shed = 0;
	if (c->accepted_at == NULL || c->owner == NULL)
		return -1;
	for (int fd = 0; fd < c->nfds; fd++)
		c->owner[fd] = -1;
	return 0;
}

void
crowd_free(struct crowd *c)
{
	free(c->accepted_at);
	free(c->owner);
	c->accepted_at = NULL;
	c->owner = NULL;
	c->nfds = 0;
}

void
crowd_accepted(struct crowd *c, int fd, int64_t mono)
{
	if (fd >= 0 && fd < c->nfds)
		c->accepted_at[fd] = mono > 0 ? mono : 1;
}

int32_t
crowd_closed(struct crowd *c, int fd)
{
	int32_t owner;

	if (fd < 0 || fd >= c->nfds)
		return -1;
	c->accepted_at[fd] = 0;
	owner = c->owner[fd];
	c->owner[fd] = -1;
	return owner;
}

void
crowd_heard(struct crowd *c, int fd)
{
	if (fd >= 0 && fd < c->nfds)
		c->accepted_at[fd] = 0;
}

int32_t
crowd_owner(const struct crowd *c, int fd)
{
	return fd >= 0 && fd < c->nfds ? c->owner[fd] : -1;
}

void
crowd_own(struct crowd *c, int fd, int32_t agent)
{
	if (fd >= 0 && fd < c->nfds)
		c->owner[fd] = agent;
}

void
crowd_remap(struct crowd *c, const int32_t *map, size_t n)
{
	for (int fd = 0; fd < c->nfds; fd++)
		if (c->owner[fd] >= 0)
			c->owner[fd] = (size_t)c->owner[fd] < n ?
			    map[c->owner[fd]] : -1;
}

size_t
crowd_shed_silent(struct crowd *c, int64_t mono, int64_t silent_ms)
{
	size_t shed = 0;

	for (int fd = 0; fd < c->nfds; fd++) {
		if (c->accepted_at[fd] == 0 ||
		    mono - c->accepted_at[fd] < silent_ms)
			continue;
		/* libzmq reads a hang-up, closes, and the monitor says so. */
		shutdown(fd, SHUT_RDWR);
		c->accepted_at[fd] = 0;
		shed++;
	}
	c->shed += shed;
	return shed;
}

struct waiting {
	int64_t since;
	int fd;
};

static int
oldest_first(const void *x, const void *y)
{
	const struct waiting *a = x, *b = y;

	return (a->since > b->since) - (a->since < b->since);
}

void
crowd_accept_failed(struct crowd *c, int err, int64_t mono)
{
	struct waiting *w;
	size_t n = 0, total = 0, shed;

	if ((err != EMFILE && err != ENFILE) || c->accepted_at == NULL ||
	    mono - c->last_shed < SHED_INTERVAL_MS)
		return;
	c->last_shed = mono;
	if ((w = malloc((size_t)c->nfds * sizeof(*w))) == NULL)
		return;
	for (int fd = 0; fd < c->nfds; fd++) {
		if (c->accepted_at[fd] == 0)
			continue;
		total++;
		if (mono - c->accepted_at[fd] >= SHED_MIN_AGE_MS)
			w[n++] = (struct waiting){ c->accepted_at[fd], fd };
	}
	qsort(w, n, sizeof(*w), oldest_first);
	shed = total / 8 > SHED_AT_LEAST ? total / 8 : SHED_AT_LEAST;
	if (shed > n)
		shed = n;
	for (size_t i = 0; i < shed; i++) {
		/* libzmq reads a hang-up, closes, and the monitor says so. */
		shutdown(w[i].fd, SHUT_RDWR);
		c->accepted_at[w[i].fd] = 0;
	}
	free(w);
	if (shed == 0)
		return;
	c->shed += shed;
	log_warn("connections.shed", "count", LOG_U64(shed),
	    "in_handshake", LOG_U64(total), "errno", LOG_U64((uint64_t)err),
	    "hint", LOG_STR("the open-file limit is reached and connections "
	    "that never finished their handshake hold it: the oldest were "
	    "closed; raise the hard limit (LimitNOFILE=) if agents need more "
	    "connections"), NULL);
}
