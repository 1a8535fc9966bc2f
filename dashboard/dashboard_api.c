/*
 * The dashboard's /api/ routes (dashboard.h).  Each turns one request of
 * the page into one broker query or event, as the agent whose key the
 * dashboard holds: the broker decides what that agent may see and do, so
 * these routes add no rights of their own.  Arguments come in the query
 * string (request bodies are never read).
 *
 *   GET  /api/role                  {"coordinator": bool}
 *   GET  /api/live                  the open alerts, or the inbox
 *   GET  /api/events                the same as server-sent events
 *   POST /api/alerts/ack?id=&note=  alert.acknowledged
 *   POST /api/alerts/resolve?id=&note=
 *   GET  /api/participant?id=       the participant query
 *   GET  /api/report?period=|from=&to=[&qpv=][&by=][&flows=1]
 *   GET  /api/report.csv?...        the same as a CSV download
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_alerts.h"
#include "cli_report.h"
#include "dashboard.h"

#define SUBMIT_WAIT_MS 15000

static const char *
arg(struct MHD_Connection *conn, const char *key)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
	    key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The broker's refusal as an HTTP answer: 403 forbidden, else 400/502. */
static enum MHD_Result
send_refusal(struct MHD_Connection *conn, int code, const char *msg)
{
	unsigned status = code == 202 ? 403 : code != 0 ? 400 : 502;

	return dash_send_json(conn, status, json_pack("{s:s, s:i}", "error",
	    msg, "code", code));
}

/* One query; the answer, or the broker's refusal, to the page. */
static enum MHD_Result
send_query(struct dashboard *d, struct MHD_Connection *conn, const char *what,
    json_t *args)
{
	json_t *data;
	char msg[512];
	int code;

	pthread_mutex_lock(&d->broker_mu);
	data = relais_query(d->broker, what, args, 15000);
	snprintf(msg, sizeof(msg), "%s", relais_errmsg(d->broker));
	code = relais_last_code(d->broker);
	pthread_mutex_unlock(&d->broker_mu);
	json_decref(args);
	if (data == NULL)
		return send_refusal(conn, code, msg);
	return dash_send_json(conn, 200, data);
}

static json_t *
report_args(struct MHD_Connection *conn)
{
	static const char *const keys[] = { "period", "from", "to", "qpv", "by" };
	json_t *args = json_object();

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (arg(conn, keys[i]) != NULL)
			json_object_set_new(args, keys[i], json_string(arg(conn,
			    keys[i])));
	if (arg(conn, "flows") != NULL)
		json_object_set_new(args, "flows", json_true());
	return args;
}

static enum MHD_Result
send_csv(struct dashboard *d, struct MHD_Connection *conn)
{
	json_t *args = report_args(conn), *data;
	struct MHD_Response *r;
	char msg[512], *buf = NULL;
	size_t len = 0;
	FILE *out;
	int code;

	pthread_mutex_lock(&d->broker_mu);
	data = relais_query(d->broker, "report", args, 15000);
	snprintf(msg, sizeof(msg), "%s", relais_errmsg(d->broker));
	code = relais_last_code(d->broker);
	pthread_mutex_unlock(&d->broker_mu);
	json_decref(args);
	if (data == NULL)
		return send_refusal(conn, code, msg);
	if ((out = open_memstream(&buf, &len)) == NULL) {
		json_decref(data);
		return dash_send_text(conn, 500, "out of memory");
	}
	cli_report_csv(out, data);
	fclose(out);
	json_decref(data);
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (r != NULL)
		MHD_add_response_header(r, "Content-Disposition",
		    "attachment; filename=\"relais-report.csv\"");
	return dash_send(conn, 200, r, "text/csv; charset=utf-8");
}

/* alert.acknowledged or alert.resolved, dated by the broker's clock. */
static enum MHD_Result
answer_alert(struct dashboard *d, struct MHD_Connection *conn, const char *type)
{
	const char *id = arg(conn, "id"), *note = arg(conn, "note");
	json_t *ev, *result = NULL;
	char *participant = NULL;
	int64_t now;
	int status = 0;
	enum MHD_Result rc;

	if (id == NULL || strncmp(id, "al-", 3) != 0 || strlen(id) > 23)
		return dash_send_json(conn, 400, json_pack("{s:s}", "error",
		    "give the alert's id, e.g. id=al-3"));
	pthread_mutex_lock(&d->broker_mu);
	participant = cli_alerts_participant(d->broker, id, &status);
	if (participant == NULL || relais_broker_now(d->broker, &now) < 0) {
		pthread_mutex_unlock(&d->broker_mu);
		free(participant);
		return dash_send_json(conn, 404, json_pack("{s:s}", "error",
		    "no such alert among the alerts of your territory"));
	}
	ev = json_pack("{s:s, s:I, s:s, s:s}", "type", type, "occurred_at",
	    (json_int_t)now, "participant", participant, "alert", id);
	if (note != NULL)
		json_object_set_new(ev, "note", json_string(note));
	if (relais_submit(d->broker, &ev, 1, &result, SUBMIT_WAIT_MS) < 0)
		result = json_pack("{s:s, s:s}", "status", "error", "message",
		    relais_errmsg(d->broker));
	pthread_mutex_unlock(&d->broker_mu);
	free(participant);
	json_decref(ev);
	rc = dash_send_json(conn, strcmp(json_string_value(json_object_get(result,
	    "status")) != NULL ? json_string_value(json_object_get(result,
	    "status")) : "", "ok") == 0 ? 200 : 409, result);
	return rc;
}

static enum MHD_Result
send_live(struct dashboard *d, struct MHD_Connection *conn)
{
	uint64_t version;
	char *s = dash_live_get(d, &version);

	if (s == NULL)
		return dash_send_json(conn, 503, json_pack("{s:s}", "error",
		    "the broker has not answered yet; try again in a second"));
	return dash_send(conn, 200, MHD_create_response_from_buffer(strlen(s), s,
	    MHD_RESPMEM_MUST_FREE), "application/json");
}

enum MHD_Result
dash_api(struct dashboard *d, struct MHD_Connection *conn, const char *url,
    const char *method)
{
	bool post = strcmp(method, "POST") == 0;

	if (!post && strcmp(method, "GET") != 0)
		return dash_send_text(conn, 405, "use GET, or POST to act");
	if (post) {
		if (strcmp(url, "/api/alerts/ack") == 0)
			return answer_alert(d, conn, "alert.acknowledged");
		if (strcmp(url, "/api/alerts/resolve") == 0)
			return answer_alert(d, conn, "alert.resolved");
		return dash_send_text(conn, 404, "no such action");
	}
	if (strcmp(url, "/api/role") == 0)
		return dash_send_json(conn, 200, json_pack("{s:b}", "coordinator",
		    d->coordinator));
	if (strcmp(url, "/api/live") == 0)
		return send_live(d, conn);
	if (strcmp(url, "/api/events") == 0)
		return dash_live_stream(d, conn);
	if (strcmp(url, "/api/participant") == 0)
		return send_query(d, conn, "participant", json_pack("{s:s}", "id",
		    arg(conn, "id") != NULL ? arg(conn, "id") : ""));
	if (strcmp(url, "/api/report") == 0)
		return send_query(d, conn, "report", report_args(conn));
	if (strcmp(url, "/api/report.csv") == 0)
		return send_csv(d, conn);
	return dash_send_text(conn, 404, "no such page");
}
