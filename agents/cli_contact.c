/*
 * Sealed contacts on the relais command line (cli_contact.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_contact.h"

static void
say(const char *what, const char *detail)
{
	fprintf(stderr, "relais: %s%s\n", what, detail != NULL ? detail : "");
}

static bool
is_pair(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return arg[0] != '-' && eq != NULL && eq != arg;
}

/* The key=value arguments after --contact, into details. */
static int
take_pairs(int argc, char **argv, int from, json_t *details, int *end)
{
	int j;

	for (j = from; j < argc && is_pair(argv[j]); j++) {
		const char *eq = strchr(argv[j], '=');
		char *key = strndup(argv[j], (size_t)(eq - argv[j]));
		bool dup = key == NULL || json_object_get(details, key) != NULL;

		if (!dup)
			json_object_set_new(details, key, json_string(eq + 1));
		free(key);
		if (dup) {
			say("--contact gives a detail twice: ", argv[j]);
			return -1;
		}
	}
	if (j == from) {
		say("--contact takes key=value details, e.g. --contact "
		    "name='Awa D.' phone=0612345678", NULL);
		return -1;
	}
	*end = j;
	return 0;
}

int
cli_contact_take(int *argc, char **argv, struct cli_contact *cc)
{
	int i = 1;

	cc->details = NULL;
	cc->key_file = NULL;
	while (i < *argc && strcmp(argv[i], "--") != 0) {
		int end;

		if (strcmp(argv[i], "--contact") == 0) {
			if (cc->details != NULL) {
				say("give --contact once, with every detail after it", NULL);
				return -1;
			}
			cc->details = json_object();
			if (take_pairs(*argc, argv, i + 1, cc->details, &end) < 0)
				return -1;
		} else if (strcmp(argv[i], "--contact-key") == 0 && i + 1 < *argc) {
			cc->key_file = argv[i + 1];
			end = i + 2;
		} else if (strncmp(argv[i], "--contact-key=", 14) == 0) {
			cc->key_file = argv[i] + 14;
			end = i + 1;
		} else if (strcmp(argv[i], "--contact-key") == 0) {
			say("--contact-key needs the target's .pub file", NULL);
			return -1;
		} else {
			i++;
			continue;
		}
		memmove(&argv[i], &argv[end], (size_t)(*argc - end + 1) * sizeof(*argv));
		*argc -= end - i;
	}
	if (cc->key_file != NULL && cc->details == NULL) {
		say("--contact-key goes with --contact details", NULL);
		return -1;
	}
	return 0;
}

int
cli_contact_attach(relais_client *c, json_t *ev, const struct cli_contact *cc)
{
	const char *to = json_string_value(json_object_get(ev, "to"));
	char key[41], err[512];

	if (cc->details == NULL)
		return 0;
	if (cc->key_file != NULL) {
		if (relais_read_key(cc->key_file, key, err, sizeof(err)) < 0) {
			say(err, "; --contact-key names the target's .pub file");
			return -1;
		}
		if (to == NULL || relais_pin_agent_key(c, to, key) < 0) {
			say("--contact-key needs to=AGENT: ", to == NULL ?
			    "the key is the target's" : relais_errmsg(c));
			return -1;
		}
	}
	json_object_set(ev, "contact", cc->details);
	return 0;
}

void
cli_contact_free(struct cli_contact *cc)
{
	json_decref(cc->details);
	cc->details = NULL;
}

int
cli_previous_keys(char keys[RELAIS_MAX_PREVIOUS_KEYS][41],
    const char *list[RELAIS_MAX_PREVIOUS_KEYS + 1])
{
	const char *env = getenv("RELAIS_PREVIOUS_KEYS");
	char path[PATH_MAX], err[512];
	size_t n = 0;

	list[0] = NULL;
	while (env != NULL && *env != '\0') {
		size_t len = strcspn(env, ":");

		if (len > 0) {
			if (n == RELAIS_MAX_PREVIOUS_KEYS || len >= sizeof(path)) {
				say("RELAIS_PREVIOUS_KEYS lists too many keys or too long "
				    "a path; keep the 8 most recent", NULL);
				return -1;
			}
			memcpy(path, env, len);
			path[len] = '\0';
			if (relais_read_key(path, keys[n], err, sizeof(err)) < 0) {
				say(err, "; RELAIS_PREVIOUS_KEYS lists old .key files, "
				    "separated by ':'");
				return -1;
			}
			list[n] = keys[n];
			list[++n] = NULL;
		}
		env += len + (env[len] == ':');
	}
	return 0;
}

void
cli_contact_report(const json_t *delivery)
{
	const json_t *ev = json_object_get(delivery, "event");
	const char *why = json_string_value(json_object_get(ev, "contact_error"));

	if (why == NULL)
		return;
	fprintf(stderr, "relais: delivery %lld (referral %s): %s; the rest of "
	    "the referral is delivered and acknowledged: ask the sender for the "
	    "contact\n",
	    (long long)json_integer_value(json_object_get(delivery, "seq")),
	    json_string_value(json_object_get(ev, "referral")) ?
	    json_string_value(json_object_get(ev, "referral")) : "?", why);
}
