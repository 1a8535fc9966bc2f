/*
 * Helpers of the coordinator's and partner's views (cli_view.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calendar.h"
#include "cli_view.h"

int
cli_view_option(struct cli_view *v, const char *command, int ch,
    const char *arg)
{
	switch (ch) {
	case 'e':
		v->conn.endpoint = arg;
		return 1;
	case CLI_OPT_SERVER_KEY:
		v->conn.server_key = arg;
		return 1;
	case CLI_OPT_KEY:
		v->conn.key = arg;
		return 1;
	case CLI_OPT_JSON:
		v->json = true;
		return 1;
	case 'h':
		cli_usage(command);
		return -1;
	default:
		return 0;
	}
}

void
cli_view_done(struct cli_view *v)
{
	if (!isatty(STDOUT_FILENO))
		v->json = true;
}

int
cli_view_parse(struct cli_view *v, const char *command, int argc, char **argv,
    const char *shortopts, const struct option *options, cli_view_take take,
    void *ctx, bool operands)
{
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shortopts, options, NULL)) != -1) {
		int rc = cli_view_option(v, command, ch, optarg);

		if (rc < 0)
			return 1;
		if (rc > 0)
			continue;
		if (ch == '?' || take == NULL) {
			die_msg("%s takes no option %s, or it lacks its value; see "
			    "`relais help %s`", command, argv[optind - 1], command);
			return -1;
		}
		if (take(ch, optarg, ctx) < 0)
			return -1;
	}
	if (!operands && optind < argc) {
		die_msg("%s takes options only, not '%s'; see `relais help %s`",
		    command, argv[optind], command);
		return -1;
	}
	return 0;
}

static const char *
last_key(const json_t *page, const char *key)
{
	size_t n = json_array_size(page);

	return n == 0 ? NULL :
	    json_string_value(json_object_get(json_array_get(page, n - 1), key));
}

json_t *
cli_view_all_pages(relais_client *c, const char *what, json_t *args,
    const char *key, size_t limit, const char *forbidden_hint, int *status)
{
	json_t *all = json_array();
	char after[128] = "";

	if (args == NULL)
		args = json_object();
	json_object_set_new(args, "limit", json_integer((json_int_t)limit));
	for (;;) {
		json_t *a = json_deep_copy(args), *page;
		const char *last;

		if (after[0] != '\0')
			json_object_set_new(a, "after", json_string(after));
		page = cli_query(c, what, a, forbidden_hint, status);
		if (page == NULL) {
			json_decref(all);
			all = NULL;
			break;
		}
		if (!json_is_array(page)) {
			die_msg("the broker's answer to %s is not a list; is it the "
			    "same relais version as this command?", what);
			*status = EXIT_USAGE;
			json_decref(page);
			json_decref(all);
			all = NULL;
			break;
		}
		json_array_extend(all, page);
		last = last_key(page, key);
		if (json_array_size(page) < limit || last == NULL) {
			json_decref(page);
			break;
		}
		snprintf(after, sizeof(after), "%s", last);
		json_decref(page);
	}
	json_decref(args);
	return all;
}

void
cli_view_time(int64_t ms, char out[24])
{
	int64_t local;
	int32_t day;
	int y, mo, d, minutes;

	if (ms <= 0) {
		snprintf(out, 24, "-");
		return;
	}
	local = ms + cal_paris_offset_ms(ms);
	day = (int32_t)(local / 86400000);
	minutes = (int)(local % 86400000 / 60000);
	cal_civil_from_days(day, &y, &mo, &d);
	snprintf(out, 24, "%04d-%02d-%02d %02d:%02d", y, mo, d, minutes / 60,
	    minutes % 60);
}

void
cli_view_age(int64_t now, int64_t then, char out[16])
{
	int64_t s = (now - then) / 1000;

	if (then <= 0)
		snprintf(out, 16, "-");
	else if (s >= 86400)
		snprintf(out, 16, "%lldd", (long long)(s / 86400));
	else if (s >= 3600)
		snprintf(out, 16, "%lldh", (long long)(s / 3600));
	else
		snprintf(out, 16, "%lldm", (long long)(s > 0 ? s / 60 : 0));
}

int
cli_view_lines(const json_t *list)
{
	const json_t *item;
	size_t i;

	json_array_foreach(list, i, item)
		if (json_dumpf(item, stdout, JSON_COMPACT) != 0 ||
		    fputc('\n', stdout) == EOF)
			break;
	return cli_stdout_done();
}

int
cli_view_number(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		die_msg("%s takes a whole number from %ld to %ld, not '%s'", opt,
		    min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}
