/*
 * relais report: the indicators (SPEC §5) for a period, as the broker's
 * "report" query computes them, printed as a table for people, CSV for a
 * spreadsheet or JSON for a program.  The CSV's columns are listed in the
 * README; the broker decides what the agent may see (SPEC §2.5).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_report.h"

const char cli_report_details[] =
    "The period is one of:\n"
    "  --year 2026  --quarter 2026-Q3  --month 2026-03\n"
    "  --from 2026-01-15 --to 2026-02-14   (dates included, Paris time)\n"
    "  --qpv Q            only this QPV\n"
    "  --by qpv|agent|month   one column (table) or row (CSV, JSON) each\n"
    "  --flows            the referral flows instead: for each sender and\n"
    "                     target, referrals sent, accepted, declined by\n"
    "                     reason, cancelled, expired, and the median and 90th\n"
    "                     percentile days to answer\n"
    "  --format table|csv|json   default: table on a terminal, else json\n"
    "Coordinators see the QPVs they cover, partners their own activity,\n"
    "operators totals only.  Distinct-person figures (followed, confidence)\n"
    "are given for calendar months, quarters and years, and left empty for\n"
    "other periods.  Exit status: 1 if the broker refuses, with its reason.\n";

enum format { FMT_TABLE, FMT_CSV, FMT_JSON };

struct report_opts {
	struct cli_conn conn;
	const char *period, *from, *to, *qpv, *by;
	bool flows;
	enum format format;
};

enum {
	OPT_SERVER_KEY = 256, OPT_KEY, OPT_YEAR, OPT_QUARTER, OPT_MONTH,
	OPT_FROM, OPT_TO, OPT_QPV, OPT_BY, OPT_FLOWS, OPT_FORMAT,
};

static const struct option report_options[] = {
	{ "endpoint", required_argument, NULL, 'e' },
	{ "server-key", required_argument, NULL, OPT_SERVER_KEY },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "year", required_argument, NULL, OPT_YEAR },
	{ "quarter", required_argument, NULL, OPT_QUARTER },
	{ "month", required_argument, NULL, OPT_MONTH },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "qpv", required_argument, NULL, OPT_QPV },
	{ "by", required_argument, NULL, OPT_BY },
	{ "flows", no_argument, NULL, OPT_FLOWS },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The period's option; -1 if a second one is given. */
static int
set_period(struct report_opts *o, const char *value)
{
	if (o->period != NULL || o->from != NULL || o->to != NULL) {
		die_msg("give one period: --year, --quarter, --month, or --from "
		    "and --to");
		return -1;
	}
	o->period = value;
	return 0;
}

static int
take(struct report_opts *o, int ch, const char *arg)
{
	switch (ch) {
	case 'e': o->conn.endpoint = arg; return 0;
	case OPT_SERVER_KEY: o->conn.server_key = arg; return 0;
	case OPT_KEY: o->conn.key = arg; return 0;
	case OPT_YEAR: case OPT_QUARTER: case OPT_MONTH:
		return set_period(o, arg);
	case OPT_FROM: case OPT_TO:
		if (o->period != NULL)
			return set_period(o, arg);
		*(ch == OPT_FROM ? &o->from : &o->to) = arg;
		return 0;
	case OPT_QPV: o->qpv = arg; return 0;
	case OPT_BY:
		if (strcmp(arg, "qpv") != 0 && strcmp(arg, "agent") != 0 &&
		    strcmp(arg, "month") != 0) {
			die_msg("--by takes qpv, agent or month, not '%s'", arg);
			return -1;
		}
		o->by = arg;
		return 0;
	case OPT_FLOWS: o->flows = true; return 0;
	case OPT_FORMAT:
		if (strcmp(arg, "table") == 0)
			o->format = FMT_TABLE;
		else if (strcmp(arg, "csv") == 0)
			o->format = FMT_CSV;
		else if (strcmp(arg, "json") == 0)
			o->format = FMT_JSON;
		else {
			die_msg("--format takes table, csv or json, not '%s'", arg);
			return -1;
		}
		return 0;
	default:
		die_msg("report takes no such option; see `relais help report`");
		return -1;
	}
}

/* Options into *o; 1 after --help, -1 after a message. */
static int
parse(int argc, char **argv, struct report_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	o->format = isatty(STDOUT_FILENO) ? FMT_TABLE : FMT_JSON;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "e:h", report_options, NULL)) != -1) {
		if (ch == 'h') {
			cli_usage("report");
			return 1;
		}
		if (ch == '?') {
			die_msg("report: %s is %s; see `relais help report`",
			    argv[optind - 1], optopt == 'e' || optopt >= 256 ?
			    "missing its value" :
			    "no option of report");
			return -1;
		}
		if (take(o, ch, optarg) < 0)
			return -1;
	}
	if (optind != argc) {
		die_msg("report takes no operand '%s'; see `relais help report`",
		    argv[optind]);
		return -1;
	}
	if (o->period == NULL && (o->from == NULL || o->to == NULL)) {
		die_msg("which period? give --year 2026, --quarter 2026-Q3, "
		    "--month 2026-03, or --from and --to (YYYY-MM-DD)");
		return -1;
	}
	if (o->flows && o->by != NULL) {
		die_msg("--flows is by sender and target already: leave out --by");
		return -1;
	}
	return 0;
}

/* ---- values ----------------------------------------------------------- */

/* A value as text: integers as they are, days with two decimals, "" null. */
static void
value_text(const json_t *v, char *buf, size_t size)
{
	if (json_is_integer(v))
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, size, "%.2f", json_real_value(v));
	else
		snprintf(buf, size, "%s", "");
}

/* One CSV field, quoted when RFC 4180 says it must be. */
static void
csv_field(FILE *out, const char *s, bool last)
{
	if (strpbrk(s, ",\"\r\n") != NULL) {
		fputc('"', out);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	} else {
		fputs(s, out);
	}
	fputs(last ? "\r\n" : ",", out);
}

static void
csv_values(FILE *out, const json_t *values)
{
	size_t n = json_array_size(values);

	for (size_t i = 0; i < n; i++) {
		char buf[32];

		value_text(json_array_get(values, i), buf, sizeof(buf));
		csv_field(out, buf, i + 1 == n);
	}
}

static const char *
str_of(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

/* ---- table cells ------------------------------------------------------ */

/* Characters, not bytes: names such as "Médiateurs" are UTF-8. */
static int
text_width(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* s cut or padded to width characters; right-aligned if right. */
static void
cell(const char *s, int width, bool right)
{
	int w = text_width(s);
	const char *p = s;

	if (w > width) {
		int kept = 0;

		while (*p != '\0' && (kept < width ||
		    ((unsigned char)*p & 0xC0) == 0x80))
			kept += ((unsigned char)*p++ & 0xC0) != 0x80;
		fwrite(s, 1, (size_t)(p - s), stdout);
		return;
	}
	if (right)
		printf("%*s%s", width - w, "", s);
	else
		printf("%s%*s", s, width - w, "");
}

/* ---- the indicators ------------------------------------------------------ */

static void
report_csv(FILE *out, const json_t *data)
{
	const json_t *columns = json_object_get(data, "columns");
	const json_t *rows = json_object_get(data, "rows"), *row;
	const char *from = str_of(data, "from"), *to = str_of(data, "to");
	size_t i;

	csv_field(out, "from", false);
	csv_field(out, "to", false);
	csv_field(out, "group", false);
	csv_field(out, "name", json_array_size(columns) == 0);
	json_array_foreach(columns, i, row)
		csv_field(out, json_string_value(row), i + 1 == json_array_size(columns));
	json_array_foreach(rows, i, row) {
		csv_field(out, from, false);
		csv_field(out, to, false);
		csv_field(out, str_of(row, "group"), false);
		csv_field(out, str_of(row, "name"), false);
		csv_values(out, json_object_get(row, "values"));
	}
	csv_field(out, from, false);
	csv_field(out, to, false);
	csv_field(out, "total", false);
	csv_field(out, "Total", false);
	csv_values(out, json_object_get(data, "total"));
}

/* "Indicators from 2026-01-01 to 2026-12-31, QPV Sanitas (sanitas)" */
static void
print_title(const char *what, const json_t *data)
{
	printf("%s from %s to %s", what, str_of(data, "from"), str_of(data, "to"));
	if (json_is_string(json_object_get(data, "qpv"))) {
		const char *code = str_of(data, "qpv");
		const char *name = str_of(data, "qpv_name");

		if (name[0] == '\0' || strcmp(name, code) == 0)
			printf(", QPV %s", code);
		else
			printf(", QPV %s (%s)", name, code);
	}
	fputs("\n\n", stdout);
}

/* A name for a column's head: "(no QPV)" for people without one yet. */
static const char *
head_name(const json_t *row)
{
	const char *name = str_of(row, "name");

	return name[0] != '\0' ? name : "(no QPV)";
}

/*
 * Measures down, groups across: a year's report is read down the page.
 * Measures that are zero or empty in every column are left out.
 */
static void
report_table(const json_t *data)
{
	const json_t *columns = json_object_get(data, "columns");
	const json_t *rows = json_object_get(data, "rows");
	size_t nrows = json_array_size(rows), ncols = nrows + 1, hidden = 0;
	int label = 6, width[64];
	const json_t *vals[64];

	if (ncols > 64)
		ncols = 64;             /* a wider table is for --format csv */
	for (size_t c = 0; c < ncols; c++) {
		const json_t *row = c < ncols - 1 ? json_array_get(rows, c) : NULL;

		vals[c] = row != NULL ? json_object_get(row, "values") :
		    json_object_get(data, "total");
		width[c] = text_width(row != NULL ? head_name(row) : "Total");
		if (width[c] < 6)
			width[c] = 6;
	}
	for (size_t i = 0; i < json_array_size(columns); i++) {
		int n = (int)strlen(json_string_value(json_array_get(columns, i)));

		label = n > label ? n : label;
	}
	print_title("Indicators", data);
	printf("%-*s", label, "");
	for (size_t c = 0; c < ncols; c++) {
		const json_t *row = c < ncols - 1 ? json_array_get(rows, c) : NULL;

		fputs("  ", stdout);
		cell(row != NULL ? head_name(row) : "Total", width[c], true);
	}
	putchar('\n');
	for (size_t i = 0; i < json_array_size(columns); i++) {
		bool shown = false;

		for (size_t c = 0; c < ncols && !shown; c++) {
			const json_t *v = json_array_get(vals[c], i);

			shown = (json_is_integer(v) && json_integer_value(v) != 0) ||
			    json_is_real(v);
		}
		if (!shown) {
			hidden++;
			continue;
		}
		printf("%-*s", label, json_string_value(json_array_get(columns, i)));
		for (size_t c = 0; c < ncols; c++) {
			char buf[32];

			value_text(json_array_get(vals[c], i), buf, sizeof(buf));
			printf("  %*s", width[c], buf[0] != '\0' ? buf : "-");
		}
		putchar('\n');
	}
	if (hidden > 0)
		printf("\n(%zu measures at zero everywhere are not shown; "
		    "--format csv gives them all)\n", hidden);
}

/* ---- the flows ------------------------------------------------------------ */

static void
flows_csv(FILE *out, const json_t *data)
{
	const json_t *columns = json_object_get(data, "columns");
	const json_t *flows = json_object_get(data, "flows"), *f;
	size_t i;

	csv_field(out, "from", false);
	csv_field(out, "to", false);
	csv_field(out, "sender", false);
	csv_field(out, "sender_name", false);
	csv_field(out, "target", false);
	csv_field(out, "target_name", false);
	json_array_foreach(columns, i, f)
		csv_field(out, json_string_value(f), i + 1 == json_array_size(columns));
	json_array_foreach(flows, i, f) {
		csv_field(out, str_of(data, "from"), false);
		csv_field(out, str_of(data, "to"), false);
		csv_field(out, str_of(f, "from"), false);
		csv_field(out, str_of(f, "from_name"), false);
		csv_field(out, str_of(f, "to"), false);
		csv_field(out, str_of(f, "to_name"), false);
		csv_values(out, json_object_get(f, "values"));
	}
}

/* The value of a named column of a flow. */
static const json_t *
flow_value(const json_t *columns, const json_t *values, const char *name)
{
	for (size_t i = 0; i < json_array_size(columns); i++)
		if (strcmp(json_string_value(json_array_get(columns, i)), name) == 0)
			return json_array_get(values, i);
	return NULL;
}

static void
flows_table(const json_t *data)
{
	static const char *const shown[] = {
		"sent", "accepted", "declined", "cancelled", "expired",
		"answer_median_days", "answer_p90_days",
	};
	const json_t *columns = json_object_get(data, "columns");
	const json_t *flows = json_object_get(data, "flows"), *f;
	size_t i;

	print_title("Referral flows", data);
	printf("%-24s  %-24s", "From", "To");
	for (size_t c = 0; c < sizeof(shown) / sizeof(shown[0]); c++)
		printf("  %s", shown[c]);
	putchar('\n');
	json_array_foreach(flows, i, f) {
		const json_t *values = json_object_get(f, "values");
		long long declined = 0;

		/* The table sums the reasons; CSV and JSON give each. */
		for (size_t c = 0; c < json_array_size(columns); c++)
			if (strncmp(json_string_value(json_array_get(columns, c)),
			    "declined.", 9) == 0)
				declined += json_integer_value(json_array_get(values, c));
		cell(str_of(f, "from_name"), 24, false);
		fputs("  ", stdout);
		cell(str_of(f, "to_name"), 24, false);
		for (size_t c = 0; c < sizeof(shown) / sizeof(shown[0]); c++) {
			char buf[32];

			if (strcmp(shown[c], "declined") == 0)
				snprintf(buf, sizeof(buf), "%lld", declined);
			else
				value_text(flow_value(columns, values, shown[c]), buf,
				    sizeof(buf));
			printf("  %*s", (int)strlen(shown[c]), buf[0] ? buf : "-");
		}
		putchar('\n');
	}
	if (json_array_size(flows) == 0)
		printf("(no referral in this period)\n");
}

/* ---- the command ------------------------------------------------------------ */

void
cli_report_csv(FILE *out, const json_t *data)
{
	if (json_object_get(data, "flows") != NULL)
		flows_csv(out, data);
	else
		report_csv(out, data);
}

static json_t *
query_args(const struct report_opts *o)
{
	json_t *args = json_object();

	if (o->period != NULL)
		json_object_set_new(args, "period", json_string(o->period));
	else {
		json_object_set_new(args, "from", json_string(o->from));
		json_object_set_new(args, "to", json_string(o->to));
	}
	if (o->qpv != NULL)
		json_object_set_new(args, "qpv", json_string(o->qpv));
	if (o->by != NULL)
		json_object_set_new(args, "by", json_string(o->by));
	if (o->flows)
		json_object_set_new(args, "flows", json_true());
	return args;
}

int
cli_report(int argc, char **argv)
{
	struct report_opts o;
	json_t *data;
	int status = parse(argc, argv, &o);

	if (status != 0)
		return status > 0 ? 0 : EXIT_USAGE;
	data = cli_ask(&o.conn, "report", query_args(&o),
	    "coordinators see their QPVs, partners their own activity, "
	    "operators totals only (no --qpv, --by qpv|agent or --flows)", &status);
	if (data == NULL)
		return status;
	if (o.format == FMT_JSON) {
		json_dumpf(data, stdout, JSON_COMPACT);
		putchar('\n');
	} else if (o.format == FMT_CSV) {
		cli_report_csv(stdout, data);
	} else {
		(o.flows ? flows_table : report_table)(data);
	}
	json_decref(data);
	return cli_stdout_done();
}
