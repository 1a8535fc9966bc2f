/* relais report: the indicators over a period (cli_report.c). */
#ifndef RELAIS_CLI_REPORT_H
#define RELAIS_CLI_REPORT_H

#include <stdio.h>
#include <jansson.h>

#define CLI_REPORT_SYNOPSIS \
	"[OPTIONS] (--year Y | --quarter Y-QN | --month Y-MM | --from D --to D)\n" \
	"       [--qpv Q] [--by qpv|agent|month | --flows] [--format table|csv|json]"
#define CLI_REPORT_SUMMARY "print the programme's indicators for a period"

extern const char cli_report_details[];

/* The report query's answer (indicators or flows) as CSV, RFC 4180. */
void cli_report_csv(FILE *out, const json_t *data);
int cli_report(int argc, char **argv);

#endif
