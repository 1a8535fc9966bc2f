/*
 * The relais command's side of sealed contacts (PROTOCOL.md §6.1):
 *
 *   relais send referral.sent ... --contact name='Awa D.' phone=0612345678
 *       [--contact-key ml-tours.pub]
 *   RELAIS_PREVIOUS_KEYS=old.key:older.key relais listen
 *
 * librelais does the sealing and the opening; this reads the command line
 * and the environment, and tells the person at the terminal when a
 * delivered contact cannot be opened.
 */
#ifndef RELAIS_CLI_CONTACT_H
#define RELAIS_CLI_CONTACT_H

#include <stddef.h>
#include <jansson.h>

#include "relais.h"

struct cli_contact {
	json_t *details;            /* NULL: no --contact */
	const char *key_file;       /* --contact-key: the target's .pub */
};

/*
 * Take "--contact key=value ..." (the key=value arguments that follow it)
 * and "--contact-key FILE" out of argv, shifting the rest down.  Values
 * stay strings: 0612345678 is a phone number, not an integer.  0, or -1
 * after a message on stderr.
 */
int cli_contact_take(int *argc, char **argv, struct cli_contact *cc);

/*
 * Give the event its contact details (librelais seals them), and pin the
 * key of --contact-key as the key of the event's "to".  0, or -1 after a
 * message.
 */
int cli_contact_attach(relais_client *c, json_t *ev, const struct cli_contact *cc);

void cli_contact_free(struct cli_contact *cc);

/*
 * The secret keys of RELAIS_PREVIOUS_KEYS (.key files separated by ':')
 * into keys[], listed NULL-terminated in list[] for relais_options.
 * 0, or -1 after a message.  The caller wipes keys[].
 */
int cli_previous_keys(char keys[RELAIS_MAX_PREVIOUS_KEYS][41],
    const char *list[RELAIS_MAX_PREVIOUS_KEYS + 1]);

/* On stderr, if the delivery's contact could not be opened: why. */
void cli_contact_report(const json_t *delivery);

#endif
