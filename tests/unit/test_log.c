/*
 * log.c: every line is one valid JSON object whatever the bytes logged,
 * values keep their types, lines wait for log_flush() (except errors and a
 * full buffer), levels filter, errno survives, repeated warnings and
 * errors are rate limited with a count of what was left out, and lines a
 * failing sink lost are counted.
 */
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

static FILE *out;

static int setup(void **state)
{
	out = tmpfile();
	if (!out)
		return -1;
	log_init(out, LOG_DEBUG);
	return 0;
}

static int teardown(void **state)
{
	log_flush();
	log_init(NULL, LOG_INFO);   /* back to stderr before out goes away */
	fclose(out);
	return 0;
}

/* Everything written to out so far (caller frees); out is emptied. */
static char *take(void)
{
	fflush(out);
	off_t size = lseek(fileno(out), 0, SEEK_END);
	char *text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(pread(fileno(out), text, (size_t)size, 0), size);
	assert_int_equal(ftruncate(fileno(out), 0), 0);
	rewind(out);
	return text;
}

/* Parse the single line in text; fails the test if it is not JSON. */
static json_t *parse_line(const char *text, size_t flags)
{
	json_error_t e;
	size_t len = strlen(text);

	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1));
	json_t *j = json_loads(text, flags | JSON_REJECT_DUPLICATES, &e);
	if (!j)
		fail_msg("not valid JSON (%s at column %d): %s", e.text, e.column, text);
	assert_true(json_is_object(j));
	return j;
}

/* Flush, take the one line written, parse it. */
static json_t *one_line(char **raw)
{
	log_flush();
	char *text = take();
	json_t *j = parse_line(text, JSON_ALLOW_NUL);
	if (raw)
		*raw = text;
	else
		free(text);
	return j;
}

static const char *str_of(json_t *j, const char *key)
{
	json_t *v = json_object_get(j, key);
	if (!json_is_string(v))
		fail_msg("\"%s\" is not a string", key);
	return json_string_value(v);
}

static void test_line_shape(void **state)
{
	char *raw;

	log_info("event.accepted", "agent", LOG_STR("ml-tours"), "seq", LOG_U64(42),
		 "delta", LOG_I64(-5), "durable", LOG_BOOL(7), "none", LOG_STR(NULL), NULL);
	json_t *j = one_line(&raw);

	/* ts, level and msg come first, in that order. */
	assert_int_equal(strncmp(raw, "{\"ts\":\"", 7), 0);
	assert_non_null(strstr(raw, "Z\",\"level\":\"info\",\"msg\":\"event.accepted\","));

	regex_t re;
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
				 "[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, str_of(j, "ts"), 0, NULL, 0) != 0)
		fail_msg("bad ts: %s", str_of(j, "ts"));
	regfree(&re);

	assert_string_equal(str_of(j, "level"), "info");
	assert_string_equal(str_of(j, "msg"), "event.accepted");
	assert_string_equal(str_of(j, "agent"), "ml-tours");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
	assert_int_equal(json_integer_value(json_object_get(j, "delta")), -5);
	assert_true(json_is_true(json_object_get(j, "durable")));
	assert_true(json_is_null(json_object_get(j, "none")));
	assert_int_equal(json_object_size(j), 8);
	json_decref(j);
	free(raw);
}

static void test_integer_limits(void **state)
{
	char *raw;

	log_info("limits", "min", LOG_I64(INT64_MIN), "max", LOG_I64(INT64_MAX),
		 "zero", LOG_U64(0), "umax", LOG_U64(UINT64_MAX), "no", LOG_BOOL(0), NULL);
	log_flush();
	raw = take();
	/* UINT64_MAX does not fit jansson's integers: read numbers as reals. */
	json_t *j = parse_line(raw, JSON_DECODE_INT_AS_REAL);
	assert_true(json_is_number(json_object_get(j, "umax")));
	json_decref(j);
	/* Numbers are exact in the text, whatever a reader makes of them. */
	assert_non_null(strstr(raw, "\"umax\":18446744073709551615"));
	assert_non_null(strstr(raw, "\"min\":-9223372036854775808"));
	assert_non_null(strstr(raw, "\"max\":9223372036854775807"));
	assert_non_null(strstr(raw, "\"zero\":0"));
	assert_non_null(strstr(raw, "\"no\":false"));
	free(raw);
}

/* Each input string and what a JSON reader must get back. */
static const struct {
	const char *in;
	size_t len;
	const char *want;           /* decoded */
	const char *escaped;        /* must appear in the raw line, or NULL */
} cases[] = {
#define C(in, want, esc) { in, sizeof(in) - 1, want, esc }
	C("say \"hi\"", "say \"hi\"", "say \\\"hi\\\""),
	C("back\\slash", "back\\slash", "back\\\\slash"),
	C("two\nlines\r\n", "two\nlines\r\n", "two\\nlines\\r\\n"),
	C("tab\tbs\bff\f", "tab\tbs\bff\f", "tab\\tbs\\bff\\f"),
	C("ctl\x01\x1f", "ctl\x01\x1f", "ctl\\u0001\\u001f"),
	C("del\x7f", "del\x7f", NULL),
	C("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	C("bad\xff", "bad\xef\xbf\xbd", "bad\\ufffd"),
	C("stray\x80", "stray\xef\xbf\xbd", NULL),
	C("cut\xc3", "cut\xef\xbf\xbd", NULL),                   /* truncated at the end */
	C("cut\xe2\x82x", "cut\xef\xbf\xbd\xef\xbf\xbdx", NULL), /* truncated in the middle */
	C("overlong\xc0\xaf", "overlong\xef\xbf\xbd\xef\xbf\xbd", NULL),
	C("overlong\xe0\x80\xaf", "overlong\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL),
	C("surrogate\xed\xa0\x80", "surrogate\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL),
	C("big\xf4\x90\x80\x80", "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL),
	C("f5\xf5\x80", "f5\xef\xbf\xbd\xef\xbf\xbd", NULL),
	C("max\xf4\x8f\xbf\xbf", "max\xf4\x8f\xbf\xbf", NULL),  /* U+10FFFF is valid */
	C("", "", "\"v\":\"\""),
#undef C
};

static void test_escaping(void **state)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *raw;
		log_warn(cases[i].in, "v", LOG_STRN(cases[i].in, cases[i].len),
			 "s", LOG_STR(cases[i].in), NULL);
		json_t *j = one_line(&raw);
		if (strcmp(str_of(j, "v"), cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\" from %s", i, str_of(j, "v"), raw);
		assert_string_equal(str_of(j, "s"), cases[i].want);
		assert_string_equal(str_of(j, "msg"), cases[i].want);
		if (cases[i].escaped && !strstr(raw, cases[i].escaped))
			fail_msg("case %zu: \"%s\" not in %s", i, cases[i].escaped, raw);
		json_decref(j);
		free(raw);
	}
}

static void test_strn(void **state)
{
	char *raw;

	/* LOG_STRN takes exactly n bytes: a NUL inside, nothing after. */
	log_info("strn", "nul", LOG_STRN("a\0b", 3), "prefix", LOG_STRN("abcdef", 2),
		 "null", LOG_STRN(NULL, 5), NULL);
	json_t *j = one_line(&raw);
	assert_non_null(strstr(raw, "\"nul\":\"a\\u0000b\""));
	assert_int_equal(json_string_length(json_object_get(j, "nul")), 3);
	assert_string_equal(str_of(j, "prefix"), "ab");
	assert_true(json_is_null(json_object_get(j, "null")));
	json_decref(j);
	free(raw);
}

static void test_keys_escaped(void **state)
{
	log_info("k", "we\"ird\nkey", LOG_U64(1), NULL);
	json_t *j = one_line(NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "we\"ird\nkey")), 1);
	json_decref(j);

	log_info(NULL, NULL);       /* no message: still a valid line */
	j = one_line(NULL);
	assert_string_equal(str_of(j, "msg"), "");
	json_decref(j);
}

static void test_buffered_until_flush(void **state)
{
	log_info("one", NULL);
	log_warn("two", NULL);
	char *text = take();
	assert_string_equal(text, "");     /* nothing written yet */
	free(text);

	log_flush();
	text = take();
	assert_non_null(strstr(text, "\"msg\":\"one\""));
	assert_non_null(strstr(text, "\"msg\":\"two\""));
	assert_true(strstr(text, "one") < strstr(text, "two"));
	free(text);

	log_flush();                /* nothing pending: writes nothing */
	text = take();
	assert_string_equal(text, "");
	free(text);
}

static void test_error_flushes(void **state)
{
	log_info("before", NULL);
	log_error("fatal", "why", LOG_STR("disk"), NULL);
	char *text = take();
	/* Both lines, in order, without a log_flush(). */
	char *second = strchr(text, '\n');
	assert_non_null(second);
	json_t *a, *b;
	second++;
	char *first = strndup(text, (size_t)(second - text));
	a = parse_line(first, 0);
	b = parse_line(second, 0);
	assert_string_equal(str_of(a, "msg"), "before");
	assert_string_equal(str_of(b, "level"), "error");
	assert_string_equal(str_of(b, "why"), "disk");
	json_decref(a);
	json_decref(b);
	free(first);
	free(text);
}

static void test_flush_when_full(void **state)
{
	char value[1000];
	memset(value, 'x', sizeof value - 1);
	value[sizeof value - 1] = '\0';

	/* About 1 KiB a line: by 100 lines the 64 KiB buffer has been written. */
	for (int i = 0; i < 100; i++)
		log_info("bulk", "i", LOG_I64(i), "v", LOG_STR(value), NULL);
	char *text = take();
	size_t len = strlen(text);
	assert_true(len >= 64 * 1024);
	assert_int_equal(text[len - 1], '\n');  /* whole lines only */

	/* Every line written so far is valid JSON, and none is lost. */
	int n = 0;
	for (char *line = text, *next; *line; line = next) {
		next = strchr(line, '\n') + 1;
		char save = *next;
		*next = '\0';
		json_t *j = parse_line(line, 0);
		assert_int_equal(json_integer_value(json_object_get(j, "i")), n);
		json_decref(j);
		*next = save;
		n++;
	}
	free(text);
	log_flush();
	text = take();
	for (char *p = text; *p; p++)
		n += *p == '\n';
	assert_int_equal(n, 100);
	free(text);
}

static void test_huge_value(void **state)
{
	size_t size = 3 * 1024 * 1024;
	char *big = malloc(size + 1);
	assert_non_null(big);
	for (size_t i = 0; i < size; i++)
		big[i] = (char)(i % 7 == 0 ? '"' : 'a' + i % 26);
	big[size] = '\0';

	log_info("huge", "v", LOG_STR(big), NULL);
	json_t *j = one_line(NULL);
	assert_string_equal(str_of(j, "v"), big);
	json_decref(j);
	free(big);

	log_info("after", NULL);    /* the buffer still works once shrunk */
	j = one_line(NULL);
	assert_string_equal(str_of(j, "msg"), "after");
	json_decref(j);
}

static void test_levels(void **state)
{
	log_init(out, LOG_WARN);
	log_debug("d", NULL);
	log_info("i", NULL);
	log_warn("w", NULL);
	log_error("e", NULL);
	log_flush();
	char *text = take();
	assert_null(strstr(text, "\"msg\":\"d\""));
	assert_null(strstr(text, "\"msg\":\"i\""));
	assert_non_null(strstr(text, "\"level\":\"warn\",\"msg\":\"w\""));
	assert_non_null(strstr(text, "\"level\":\"error\",\"msg\":\"e\""));
	free(text);

	log_init(out, LOG_DEBUG);
	log_debug("d", NULL);
	json_t *j = one_line(NULL);
	assert_string_equal(str_of(j, "level"), "debug");
	json_decref(j);

	assert_int_equal(log_level_from_name("debug"), LOG_DEBUG);
	assert_int_equal(log_level_from_name("info"), LOG_INFO);
	assert_int_equal(log_level_from_name("warn"), LOG_WARN);
	assert_int_equal(log_level_from_name("error"), LOG_ERROR);
	assert_int_equal(log_level_from_name("warning"), -1);
	assert_int_equal(log_level_from_name("INFO"), -1);
}

static void test_init_flushes_pending(void **state)
{
	FILE *other = tmpfile();
	assert_non_null(other);

	log_info("for-out", NULL);
	log_init(other, LOG_DEBUG);     /* the pending line still goes to out */
	log_info("for-other", NULL);
	log_flush();
	char *text = take();
	assert_non_null(strstr(text, "for-out"));
	assert_null(strstr(text, "for-other"));
	free(text);
	log_init(out, LOG_DEBUG);
	fclose(other);
}

static void test_errno_preserved(void **state)
{
	errno = EAGAIN;
	log_info("x", "v", LOG_STR("y"), NULL);
	assert_int_equal(errno, EAGAIN);
	log_debug("filtered?", NULL);
	assert_int_equal(errno, EAGAIN);
	log_flush();
	assert_int_equal(errno, EAGAIN);
	errno = ENOENT;
	log_error("e", NULL);
	assert_int_equal(errno, ENOENT);
	free(take());

	/* A failing output loses lines but keeps errno and the process. */
	FILE *full = fopen("/dev/full", "w");
	if (!full)
		skip();
	log_init(full, LOG_DEBUG);
	errno = EINTR;
	log_error("lost", NULL);
	assert_int_equal(errno, EINTR);
	log_info("lost too", NULL);
	log_flush();
	assert_int_equal(errno, EINTR);
	log_init(out, LOG_DEBUG);
	fclose(full);
}

/* Lines of text holding needle. */
static int count_lines(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static int64_t fake_second = 1000;

static int64_t fake_seconds(void)
{
	return fake_second;
}

static void test_rate_limit(void **state)
{
	log_set_clock(fake_seconds);
	for (int i = 0; i < 3 * LOG_LIMIT_PER_SEC; i++)
		log_warn("message.refused", "agent", LOG_STR("flooder"),
			 "code", LOG_U64(105), NULL);
	log_warn("message.refused", "agent", LOG_STR("quiet"), NULL);
	for (int i = 0; i < 3 * LOG_LIMIT_PER_SEC; i++)
		log_info("event.accepted", "agent", LOG_STR("flooder"), NULL);
	log_flush();
	char *text = take();
	assert_int_equal(count_lines(text, "\"agent\":\"flooder\",\"code\""),
			 LOG_LIMIT_PER_SEC);
	assert_int_equal(count_lines(text, "\"agent\":\"quiet\""), 1);
	/* Info lines are the work done, one each: never limited. */
	assert_int_equal(count_lines(text, "event.accepted"), 3 * LOG_LIMIT_PER_SEC);
	/* Within the second, nothing says yet what was left out. */
	assert_null(strstr(text, "log.suppressed"));
	free(text);

	/* The second is over: the next flush reports it. */
	fake_second++;
	log_flush();
	text = take();
	json_t *j = parse_line(text, 0);
	assert_string_equal(str_of(j, "msg"), "log.suppressed");
	assert_string_equal(str_of(j, "level"), "warn");
	assert_string_equal(str_of(j, "what"), "message.refused");
	assert_string_equal(str_of(j, "agent"), "flooder");
	assert_int_equal(json_integer_value(json_object_get(j, "lines")),
			 2 * LOG_LIMIT_PER_SEC);
	json_decref(j);
	free(text);

	/* A new second writes again, and a report is made only once. */
	log_error("store.write_failed", "error", LOG_STR("disk"), NULL);
	fake_second++;
	log_flush();
	text = take();
	assert_int_equal(count_lines(text, "store.write_failed"), 1);
	assert_null(strstr(text, "log.suppressed"));
	free(text);

	/* A flood that goes on is reported by its own next line too. */
	for (int i = 0; i < LOG_LIMIT_PER_SEC + 5; i++)
		log_error("store.write_failed", "error", LOG_STR("disk"), NULL);
	fake_second++;
	log_error("store.write_failed", "error", LOG_STR("disk"), NULL);
	text = take();
	assert_int_equal(count_lines(text, "\"msg\":\"log.suppressed\",\"what\":"
				     "\"store.write_failed\",\"error\":\"disk\",\"lines\":5,"), 1);
	assert_int_equal(count_lines(text, "\"msg\":\"store.write_failed\""),
			 LOG_LIMIT_PER_SEC + 1);
	free(text);
	log_set_clock(NULL);
}

static void test_lost_lines_are_counted(void **state)
{
	FILE *full = fopen("/dev/full", "w");
	if (!full)
		skip();
	log_init(full, LOG_DEBUG);
	log_info("lost 1", NULL);
	log_info("lost 2", NULL);
	log_flush();
	log_error("lost 3", NULL);
	log_init(out, LOG_DEBUG);
	fclose(full);

	log_info("back", NULL);
	log_flush();
	char *text = take();
	json_t *j = parse_line(strstr(text, "\n") + 1, 0);
	assert_string_equal(str_of(j, "msg"), "back");
	json_decref(j);
	*strchr(text, '\n') = '\0';
	j = parse_line(strcat(text, "\n"), 0);
	assert_string_equal(str_of(j, "msg"), "log.dropped");
	assert_int_equal(json_integer_value(json_object_get(j, "lines")), 3);
	json_decref(j);
	free(text);
}

/*
 * Lines written inside a write transaction are held: dropped if it aborts,
 * written if it commits; an error is not held, and goes out ahead of them.
 */
static void test_held_lines_follow_the_transaction(void **state)
{
	char *text;

	log_info("before", NULL);
	log_hold();
	log_info("undone", NULL);
	log_release(false);
	log_flush();
	text = take();
	assert_non_null(strstr(text, "\"before\""));
	assert_null(strstr(text, "\"undone\""));
	free(text);

	log_hold();
	log_info("done", NULL);
	log_error("trouble", NULL);
	text = take();
	assert_non_null(strstr(text, "\"trouble\""));
	assert_null(strstr(text, "\"done\""));
	free(text);
	log_flush();
	text = take();
	assert_null(strstr(text, "\"done\""));    /* still held */
	free(text);
	log_release(true);
	log_flush();
	text = take();
	assert_non_null(strstr(text, "\"done\""));
	assert_null(strstr(text, "\"trouble\""));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_integer_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_escaped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_until_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_when_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_flushes_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_lines_are_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_lines_follow_the_transaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
