/*
 * What the commands in agents/cli_*.c share with relais_cli.c, which holds
 * the command table, the connection options and the messages.
 */
#ifndef RELAIS_CLI_H
#define RELAIS_CLI_H

#include <stdbool.h>
#include <jansson.h>

#include "relais.h"

#define EXIT_REFUSED        1
#define EXIT_USAGE          2

/* "relais: what went wrong; what to do" on stderr. */
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The connection options as given (NULL: from the environment or default). */
struct cli_conn {
	const char *endpoint;
	const char *server_key;
	const char *key;
};

/*
 * Connect without taking deliveries, ask one query, disconnect.  Takes
 * args (may be NULL).  Returns the answer's data, owned by the caller, or
 * NULL after a message on stderr with *status set (1 refused, 2 usage or
 * connection).  forbidden_hint, if not NULL, follows a forbidden refusal.
 */
json_t *cli_ask(const struct cli_conn *conn, const char *what, json_t *args,
    const char *forbidden_hint, int *status);

/*
 * Connect for several queries (send_only: without taking deliveries).
 * NULL after a message on stderr.  Close with relais_close().
 */
relais_client *cli_connect(const struct cli_conn *conn, bool send_only);

/* One query on a connection, as cli_ask() (args is consumed). */
json_t *cli_query(relais_client *c, const char *what, json_t *args,
    const char *forbidden_hint, int *status);

/* `relais help NAME` on stdout. */
void cli_usage(const char *name);

/* Flush stdout; EXIT_REFUSED with a message if the output failed, else 0. */
int cli_stdout_done(void);

#endif
