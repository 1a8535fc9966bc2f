/* relais alerts, the listing (cli_alerts.c); following and answering are
 * in relais_cli.c. */
#ifndef RELAIS_CLI_ALERTS_H
#define RELAIS_CLI_ALERTS_H

#include <stdbool.h>

#include "relais.h"

/* True if argv (after "alerts") asks for a listing: no subcommand, no
 * --follow. */
bool cli_alerts_is_listing(int argc, char **argv);

/* relais alerts [filters]: every matching alert, page after page. */
int cli_alerts_list(int argc, char **argv);

/*
 * The participant of alert id as the alerts query shows it to this
 * coordinator (caller frees), or NULL after a message with *status set.
 */
char *cli_alerts_participant(relais_client *c, const char *id, int *status);

#endif
