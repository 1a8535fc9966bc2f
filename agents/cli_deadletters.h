/* relais deadletters: list, requeue and drop dead letters (cli_deadletters.c). */
#ifndef RELAIS_CLI_DEADLETTERS_H
#define RELAIS_CLI_DEADLETTERS_H

#define CLI_DEADLETTERS_SYNOPSIS \
	"[OPTIONS] [--agent ID] [--from-seq N] [--limit N]\n" \
	"       relais deadletters [OPTIONS] (requeue | drop) AGENT [SEQ]"
#define CLI_DEADLETTERS_SUMMARY "list, requeue or drop dead letters (operators)"

extern const char cli_deadletters_details[];
int cli_deadletters(int argc, char **argv);

#endif
