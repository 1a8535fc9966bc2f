/*
 * relais dashboard: the command, the HTTP server and what every answer
 * carries (dashboard.h).
 *
 * Security: the server listens on 127.0.0.1 only; a random token, printed
 * in the URL at start-up, must come with every request (query parameter
 * "token"), or the answer is 403 and nothing else; every answer carries a
 * strict Content-Security-Policy (only this server's own script and style,
 * no inline code, no external anything), and the page's files are
 * compiled in, so it works offline.
 */
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sodium.h>

#include "cli_view.h"
#include "dashboard.h"

const char cli_dashboard_details[] =
    "Serves a web page on 127.0.0.1 (never another address) and prints its\n"
    "URL, which carries a random token that every request must bring:\n"
    "  http://127.0.0.1:PORT/?token=...\n"
    "Open it in a browser on this machine.  For a coordinator: the open\n"
    "alerts of your QPVs, updated as they change, to acknowledge (with a\n"
    "note) or resolve; a participant's file; the indicators of a period\n"
    "with charts, the referral-flow map and a CSV download.  For a partner:\n"
    "its inbox.  The page talks to the broker through this command, as the\n"
    "agent whose key it was given.  Stops on SIGINT or SIGTERM.\n"
    "  --port N     the port, 1..65535 (default: any free one)\n";

enum { OPT_PORT = CLI_OPT_OWN };

static const struct option options[] = {
	CLI_VIEW_OPTIONS,
	{ "port", required_argument, NULL, OPT_PORT },
	{ NULL, 0, NULL, 0 },
};

static const char csp[] = "default-src 'none'; script-src 'self'; "
    "style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

enum MHD_Result
dash_send(struct MHD_Connection *conn, unsigned status, struct MHD_Response *r,
    const char *type)
{
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

enum MHD_Result
dash_send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return dash_send(conn, status, MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY),
	    "text/plain; charset=utf-8");
}

enum MHD_Result
dash_send_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	enum MHD_Result rc;

	json_decref(j);
	if (s == NULL)
		return dash_send_text(conn, 500, "out of memory");
	rc = dash_send(conn, status, MHD_create_response_from_buffer(strlen(s),
	    s, MHD_RESPMEM_MUST_FREE), "application/json");
	return rc;
}

static bool
token_ok(const struct dashboard *d, struct MHD_Connection *conn)
{
	const char *t = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
	    "token");

	return t != NULL && strlen(t) == DASH_TOKEN_HEX &&
	    sodium_memcmp(t, d->token, DASH_TOKEN_HEX) == 0;
}

static const struct dash_asset *
find_asset(const char *url)
{
	for (size_t i = 0; i < dash_nassets; i++)
		if (strcmp(dash_assets[i].path, url) == 0)
			return &dash_assets[i];
	return NULL;
}

/* index.html with every {{TOKEN}} replaced, so its links carry it. */
static enum MHD_Result
send_index(const struct dashboard *d, struct MHD_Connection *conn)
{
	const struct dash_asset *a = find_asset("/index.html");
	const char *mark = "{{TOKEN}}";
	size_t cap = a->len * 2 + 256, n = 0;
	char *out = malloc(cap);
	const char *p = (const char *)a->data, *end = p + a->len;

	if (out == NULL)
		return dash_send_text(conn, 500, "out of memory");
	while (p < end) {
		const char *m = memmem(p, (size_t)(end - p), mark, strlen(mark));
		size_t chunk = (size_t)((m != NULL ? m : end) - p);

		memcpy(out + n, p, chunk);
		n += chunk;
		if (m == NULL)
			break;
		memcpy(out + n, d->token, DASH_TOKEN_HEX);
		n += DASH_TOKEN_HEX;
		p = m + strlen(mark);
	}
	return dash_send(conn, 200, MHD_create_response_from_buffer(n, out,
	    MHD_RESPMEM_MUST_FREE), "text/html; charset=utf-8");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct dashboard *d = cls;
	static int first_call;
	const struct dash_asset *a;

	/* The first call only says a request began; bodies are not read. */
	if (*con_cls == NULL) {
		*con_cls = &first_call;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!token_ok(d, conn))
		return dash_send_text(conn, 403, "forbidden: open the URL that "
		    "`relais dashboard` printed, with its token");
	if (strncmp(url, "/api/", 5) == 0)
		return dash_api(d, conn, url, method);
	if (strcmp(method, "GET") != 0)
		return dash_send_text(conn, 405, "pages are read with GET");
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return send_index(d, conn);
	if ((a = find_asset(url)) != NULL)
		return dash_send(conn, 200, MHD_create_response_from_buffer(a->len,
		    (void *)a->data, MHD_RESPMEM_PERSISTENT), a->type);
	return dash_send_text(conn, 404, "no such page");
}

static int
take_port(int ch, const char *arg, void *ctx)
{
	return cli_view_number("--port", arg, 1, 65535, ctx);
}

static int
parse(int argc, char **argv, struct cli_view *v, long *port)
{
	return cli_view_parse(v, "dashboard", argc, argv, "e:h", options,
	    take_port, port, false);
}

/* Coordinators list alerts; anyone else is refused and sees an inbox. */
static int
find_role(struct dashboard *d)
{
	json_t *probe = json_pack("{s:i}", "limit", 1);
	json_t *r = relais_query(d->broker, "alerts", probe, 15000);

	json_decref(probe);
	if (r != NULL) {
		json_decref(r);
		d->coordinator = true;
		return 0;
	}
	if (relais_last_code(d->broker) != 0)
		return 0;       /* refused: a partner */
	die_msg("%s", relais_errmsg(d->broker));
	return -1;
}

static struct MHD_Daemon *
start_server(struct dashboard *d, long port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/*
	 * A thread per connection: the live stream's callback waits for
	 * changes without holding up the other requests.
	 */
	return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
	    (uint16_t)port, NULL, NULL, on_request, d,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_END);
}

static void
wait_for_stop(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
}

int
cli_dashboard(int argc, char **argv)
{
	static struct dashboard d;
	struct cli_view v = { 0 };
	struct MHD_Daemon *daemon = NULL;
	const union MHD_DaemonInfo *info;
	unsigned char raw[DASH_TOKEN_HEX / 2];
	long port = 0;
	sigset_t set;
	int rc, status = EXIT_USAGE;

	if ((rc = parse(argc, argv, &v, &port)) != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (sodium_init() < 0) {
		die_msg("libsodium cannot start; check the system's randomness");
		return EXIT_USAGE;
	}
	/* Blocked here, so every thread started below inherits it. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d.conn = v.conn;
	pthread_mutex_init(&d.broker_mu, NULL);
	pthread_mutex_init(&d.live_mu, NULL);
	pthread_cond_init(&d.live_cv, NULL);
	if ((d.broker = cli_connect(&d.conn, true)) == NULL || find_role(&d) < 0)
		goto out;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(d.token, sizeof(d.token), raw, sizeof(raw));
	if (dash_live_start(&d) < 0) {
		die_msg("cannot start the dashboard's poller thread");
		goto out;
	}
	if ((daemon = start_server(&d, port)) == NULL) {
		die_msg("cannot listen on 127.0.0.1:%ld; choose another --port or "
		    "leave it out to take any free one", port);
		goto out;
	}
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	printf("http://127.0.0.1:%u/?token=%s\n", info != NULL ?
	    (unsigned)info->port : (unsigned)port, d.token);
	fflush(stdout);
	fprintf(stderr, "relais: dashboard for a %s; open the URL above, stop "
	    "with Ctrl-C\n", d.coordinator ? "coordinator" : "partner");
	wait_for_stop();
	status = 0;
out:
	dash_live_stop(&d);
	if (daemon != NULL)
		MHD_stop_daemon(daemon);
	relais_close(&d.broker);
	free(d.live_json);
	sodium_memzero(d.token, sizeof(d.token));
	return status;
}
