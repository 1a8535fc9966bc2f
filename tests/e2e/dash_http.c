/* Talking to `relais dashboard` from an end-to-end test (dash_http.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "dash_http.h"
#include "harness.h"

void
dash_wait_for_url(struct au_cli *dash, char *url, size_t len)
{
	int64_t deadline = rl_mono_ms() + E2E_WAIT_MS;

	for (;;) {
		char *text = e2e_read_file(dash->out_path);
		char *nl = text != NULL ? strchr(text, '\n') : NULL;

		if (nl != NULL && strncmp(text, "http://127.0.0.1:", 17) == 0) {
			snprintf(url, len, "%.*s", (int)(nl - text), text);
			free(text);
			return;
		}
		free(text);
		e2e_assert(rl_mono_ms() < deadline, "relais dashboard printed no URL "
		    "within %d ms", E2E_WAIT_MS);
		rl_sleep_ms(20);
	}
}

void
dash_start(struct e2e_broker *b, const char *id, struct au_cli *dash,
    int *port, char *token, size_t token_len)
{
	char url[256];
	const char *t;

	au_cli_start(b, id, NULL, dash, "dashboard", NULL);
	dash_wait_for_url(dash, url, sizeof(url));
	*port = 0;
	sscanf(url, "http://127.0.0.1:%d/", port);
	t = strstr(url, "token=");
	e2e_assert(*port > 0 && t != NULL, "the URL names a port and a token: "
	    "%s", url);
	snprintf(token, token_len, "%s", t);
}

int
dash_http_request(int port, const char *method, const char *path, char *resp,
    size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	char req[512];
	int fd = socket(AF_INET, SOCK_STREAM, 0), code = -1;
	size_t got = 0;

	e2e_assert(fd >= 0, "socket: %s", strerror(errno));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	e2e_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
	    "connect to the dashboard: %s", strerror(errno));
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
	    method, path);
	e2e_assert(write(fd, req, strlen(req)) == (ssize_t)strlen(req),
	    "write to the dashboard");
	while (got < size - 1) {
		ssize_t n = read(fd, resp + got, size - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	resp[got] = '\0';
	close(fd);
	sscanf(resp, "HTTP/1.%*d %d", &code);
	return code;
}

int
dash_http_get(int port, const char *path, char *resp, size_t size)
{
	return dash_http_request(port, "GET", path, resp, size);
}
