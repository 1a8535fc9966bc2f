/*
 * Connections still in their handshake, and what the broker does when
 * they hold every file descriptor it may open.
 *
 * libzmq accepts connections in its I/O thread.  When accept() fails for
 * want of a descriptor (EMFILE, ENFILE) it tries again at once, for as long
 * as a connection waits in the listen queue: one core busy, and every new
 * connection, a registered agent's too, waits behind idle unauthenticated
 * ones until their handshakes time out.  The socket monitor reports each
 * accepted connection with its descriptor, and each failed accept with its
 * errno.  On a failure for want of descriptors the broker shuts down the
 * oldest connections still in their handshake: shutdown(), not close(), so
 * that libzmq sees a peer hanging up and closes them itself (the
 * descriptors stay libzmq's).  That makes room for the queue to drain.  A
 * connection the broker has had a message from is never one of them.
 */
#ifndef RELAIS_CROWD_H
#define RELAIS_CROWD_H

#include <stddef.h>
#include <stdint.h>

struct crowd {
	int64_t *accepted_at;       /* per descriptor, monotonic ms; 0: none
	                               in its handshake there */
	/*
	 * Per descriptor, the agent whose messages come on it (its index in
	 * the config in force), from its first message to its closing; -1:
	 * none.  What counts an agent's connections (max_connections_per_agent).
	 */
	int32_t *owner;
	int nfds;                   /* the array's length: the open-file limit */
	int64_t last_shed;          /* monotonic ms */
	uint64_t shed;              /* connections shut down since the start */
};

/* Sized for the process's open-file limit (read it after raising it). */
int crowd_init(struct crowd *c);
void crowd_free(struct crowd *c);

/*
 * The socket monitor's news, and the first message on a descriptor.
 * crowd_closed returns the descriptor's owner (-1: none) and forgets it.
 */
void crowd_accepted(struct crowd *c, int fd, int64_t mono);
int32_t crowd_closed(struct crowd *c, int fd);
void crowd_heard(struct crowd *c, int fd);

/* The agent a descriptor's messages come from, or -1; set it once. */
int32_t crowd_owner(const struct crowd *c, int fd);
void crowd_own(struct crowd *c, int fd, int32_t agent);
/* After a reload: every owner i becomes map[i] (-1: none), i < n. */
void crowd_remap(struct crowd *c, const int32_t *map, size_t n);

/*
 * Shut down the connections accepted at least silent_ms ago that never
 * sent a message (past the handshake's own limit, they were admitted and
 * stayed silent); how many.
 */
size_t crowd_shed_silent(struct crowd *c, int64_t mono, int64_t silent_ms);

/* An accept failed with err: shed the oldest handshakes if err says the
 * descriptors ran out. */
void crowd_accept_failed(struct crowd *c, int err, int64_t mono);

#endif
