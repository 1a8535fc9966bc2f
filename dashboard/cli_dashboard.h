/* relais dashboard, as the command table sees it (dashboard.c). */
#ifndef RELAIS_CLI_DASHBOARD_H
#define RELAIS_CLI_DASHBOARD_H

#define CLI_DASHBOARD_SYNOPSIS "[OPTIONS] [--port N]"
#define CLI_DASHBOARD_SUMMARY \
	"serve the alerts, files and indicators as a web page on this machine"

extern const char cli_dashboard_details[];
int cli_dashboard(int argc, char **argv);

#endif
