/*
 * Names and explanations of the stable error codes (PROTOCOL.md §7), and
 * the helper that fills a struct rl_error.
 *
 * The names are part of the wire contract: agents match on them, so they
 * never change.  The texts are for people reading a log or a CLI error and
 * say what to do about the failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "relais_proto.h"

struct code_desc {
	int code;
	const char *name;
	const char *text;
};

static const struct code_desc codes[] = {
	{ RL_OK, "ok",
	  "The request succeeded." },
	{ RL_E_BAD_FRAME, "bad_frame",
	  "The frame is not exactly one msgpack map with string keys; send one map per frame." },
	{ RL_E_TOO_LARGE, "too_large",
	  "The frame is larger than 384 KiB or holds more than 65536 msgpack values; split the events over several submits." },
	{ RL_E_BAD_VERSION, "bad_version",
	  "The message has no \"v\" or a version this broker does not speak; send \"v\": 1." },
	{ RL_E_UNKNOWN_COMMAND, "unknown_command",
	  "\"cmd\" is missing or unknown; use hello, submit, dack, ping or query." },
	{ RL_E_MISSING_FIELD, "missing_field",
	  "A required field is absent; add the field the error names." },
	{ RL_E_BAD_FIELD, "bad_field",
	  "A field has the wrong type, length, pattern or value; fix it as the message says." },
	{ RL_E_UNKNOWN_FIELD, "unknown_field",
	  "The message or event carries a field it does not define; remove it or fix its spelling." },
	{ RL_E_BATCH_TOO_LARGE, "batch_too_large",
	  "A submit holds more than 1000 events; split it into several submits." },
	{ RL_E_MULTIPART, "multipart",
	  "The message has more than one frame; send each message as a single frame." },
	{ RL_E_UNKNOWN_TYPE, "unknown_type",
	  "The event type is not in the catalogue; use one of the types in PROTOCOL.md section 6." },
	{ RL_E_PERSONAL_DATA, "personal_data",
	  "A value looks like a social-security number; send pseudonyms and non-identifying text only." },
	{ RL_E_FORBIDDEN, "forbidden",
	  "This agent may not send this event or query; check the authorisation table." },
	{ RL_E_CONFLICT, "conflict",
	  "This event_id was already used with other content; choose a new event_id." },
	{ RL_E_UNKNOWN_REFERRAL, "unknown_referral",
	  "No referral has this id; send referral.sent first or check the id." },
	{ RL_E_UNKNOWN_AGENT, "unknown_agent",
	  "The target agent is not registered with the broker; check the agent id." },
	{ RL_E_WRONG_AGENT, "wrong_agent",
	  "Only the agent the referral names may send this answer." },
	{ RL_E_BAD_TRANSITION, "bad_transition",
	  "The referral's current state does not allow this event; query its state before retrying." },
	{ RL_E_REFERRAL_EXISTS, "referral_exists",
	  "A referral with this id already exists; choose a new referral id." },
	{ RL_E_UNKNOWN_PARTICIPANT, "unknown_participant",
	  "No pathway exists for this participant; send participant.identified first." },
	{ RL_E_UNKNOWN_ALERT, "unknown_alert",
	  "No alert has this id; check the id in the alert you received." },
	{ RL_E_EVENT_TOO_LARGE, "event_too_large",
	  "One event is larger than 4096 bytes; shorten its text fields." },
	{ RL_E_STORAGE_FULL, "storage_full",
	  "The broker's storage is full and nothing was recorded; retry later." },
	{ RL_E_STORAGE, "storage",
	  "A storage failure occurred and nothing was recorded; retry later." },
	{ RL_E_SHUTTING_DOWN, "shutting_down",
	  "The broker is stopping; retry after it restarts." },
	{ RL_E_NOT_READING, "not_reading",
	  "This connection did not read its replies, so the broker refused requests without doing them; read the replies, then send the refused requests again." },
};

static const struct code_desc *
code_find(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return &codes[i];
	return NULL;
}

const char *
rl_code_name(int code)
{
	const struct code_desc *d = code_find(code);

	return d != NULL ? d->name : "unknown";
}

const char *
rl_code_text(int code)
{
	const struct code_desc *d = code_find(code);

	return d != NULL ? d->text : "An unknown error code; upgrade the agent or report it.";
}

int
rl_error_set(struct rl_error *err, int code, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->cause = 0;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}
