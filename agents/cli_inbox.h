/* relais inbox: what awaits this agent (cli_inbox.c). */
#ifndef RELAIS_CLI_INBOX_H
#define RELAIS_CLI_INBOX_H

#define CLI_INBOX_SYNOPSIS "[OPTIONS] [--json]"
#define CLI_INBOX_SUMMARY \
	"referrals awaiting an answer and open alerts naming you"

extern const char cli_inbox_details[];
int cli_inbox(int argc, char **argv);

#endif
