/*
 * Talking to `relais dashboard` from an end-to-end test: its URL (port and
 * token) from the first line it prints, and plain HTTP/1.0 requests to it
 * over a loopback socket.
 */
#ifndef RELAIS_DASH_HTTP_H
#define RELAIS_DASH_HTTP_H

#include <stddef.h>

#include "alerts_util.h"

/* The URL the dashboard prints on its first line; fails the test after
 * E2E_WAIT_MS. */
void dash_wait_for_url(struct au_cli *dash, char *url, size_t len);

/* Start `relais dashboard` as agent id; its port, and its "token=..."
 * query string in token. */
void dash_start(struct e2e_broker *b, const char *id, struct au_cli *dash,
    int *port, char *token, size_t token_len);

/* One request; its status code, and the answer (head and body) in resp. */
int dash_http_request(int port, const char *method, const char *path,
    char *resp, size_t size);

int dash_http_get(int port, const char *path, char *resp, size_t size);

#endif
