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

#include <stdint.h>

struct crowd {
	int64_t *accepted_at;       /* per descriptor, monotonic ms; 0: none
	                               in its handshake there */
	int nfds;                   /* the array's length: the open-file limit */
	int64_t last_shed;          /* monotonic ms */
	uint64_t shed;              /* connections shut down since the start */
};

/* Sized for the process's open-file limit (read it after raising it). */
int crowd_init(struct crowd *c);
void crowd_free(struct crowd *c);

/* The socket monitor's news, and the first message on a descriptor. */
void crowd_accepted(struct crowd *c, int fd, int64_t mono);
void crowd_closed(struct crowd *c, int fd);
void crowd_heard(struct crowd *c, int fd);

/* An accept failed with err: shed the oldest handshakes if err says the
 * descriptors ran out. */
void crowd_accept_failed(struct crowd *c, int err, int64_t mono);

#endif
