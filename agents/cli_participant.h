/* relais participant: one person's file (cli_participant.c). */
#ifndef RELAIS_CLI_PARTICIPANT_H
#define RELAIS_CLI_PARTICIPANT_H

#define CLI_PARTICIPANT_SYNOPSIS "[OPTIONS] ID [--json]"
#define CLI_PARTICIPANT_SUMMARY "print a participant's file: pathway and timeline"

extern const char cli_participant_details[];
int cli_participant(int argc, char **argv);

#endif
