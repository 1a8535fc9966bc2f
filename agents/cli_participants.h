/* relais participants: the coordinator's people (cli_participants.c). */
#ifndef RELAIS_CLI_PARTICIPANTS_H
#define RELAIS_CLI_PARTICIPANTS_H

#define CLI_PARTICIPANTS_SYNOPSIS \
	"[OPTIONS] [--phase P] [--qpv Q] [--with-alerts] [--inactive-days N] [--json]"
#define CLI_PARTICIPANTS_SUMMARY \
	"list the people of your QPVs (coordinators)"

extern const char cli_participants_details[];
int cli_participants(int argc, char **argv);

#endif
