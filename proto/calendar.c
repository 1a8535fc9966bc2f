/*
 * Calendar arithmetic after Howard Hinnant's "chrono-compatible low-level
 * date algorithms" (days_from_civil, civil_from_days), and the Paris offset
 * rule described in calendar.h.
 */
#include <stdio.h>

#include "calendar.h"

#define DAY_MS  INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)

int32_t
cal_days_from_civil(int year, int month, int day)
{
	int y = month <= 2 ? year - 1 : year;
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153u * (unsigned)(month > 2 ? month - 3 : month + 9) + 2) / 5 +
	    (unsigned)day - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int32_t)doe - 719468;
}

void
cal_civil_from_days(int32_t days, int *year, int *month, int *day)
{
	int32_t z = days + 719468;
	int32_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;

	*year = (int)yoe + era * 400 + (m <= 2);
	*month = (int)m;
	*day = (int)d;
}

/* The last Sunday of a 31-day month, as a day number. */
static int32_t
last_sunday(int year, int month)
{
	int32_t last = cal_days_from_civil(year, month, 31);
	/* 1970-01-01 was a Thursday: (days + 4) % 7 is 0 on Sundays. */
	int32_t weekday = ((last + 4) % 7 + 7) % 7;

	return last - weekday;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t
cal_paris_offset_ms(int64_t utc_ms)
{
	int year, month, day;
	int64_t summer_from, summer_to;

	cal_civil_from_days((int32_t)floor_div(utc_ms, DAY_MS), &year, &month, &day);
	summer_from = (int64_t)last_sunday(year, 3) * DAY_MS + HOUR_MS;
	summer_to = (int64_t)last_sunday(year, 10) * DAY_MS + HOUR_MS;
	return utc_ms >= summer_from && utc_ms < summer_to ? 2 * HOUR_MS : HOUR_MS;
}

int32_t
cal_paris_day(int64_t utc_ms)
{
	return (int32_t)floor_div(utc_ms + cal_paris_offset_ms(utc_ms), DAY_MS);
}

static int
digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int32_t
cal_month_end(int year, int month)
{
	return cal_days_from_civil(month == 12 ? year + 1 : year,
	    month == 12 ? 1 : month + 1, 1) - 1;
}

int
cal_month_length(int year, int month)
{
	return cal_month_end(year, month) - cal_days_from_civil(year, month, 1) + 1;
}

bool
cal_parse_date(const char *s, size_t len, int32_t *day)
{
	int y, m, d;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return false;
	y = digits(s, 4);
	m = digits(s + 5, 2);
	d = digits(s + 8, 2);
	if (y < 2000 || y > 2099 || m < 1 || m > 12 || d < 1 ||
	    d > cal_month_length(y, m))
		return false;
	*day = cal_days_from_civil(y, m, d);
	return true;
}

void
cal_format_date(int32_t day, char out[11])
{
	int y, m, d;

	cal_civil_from_days(day, &y, &m, &d);
	snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000u,
	    (unsigned)m % 100u, (unsigned)d % 100u);
}

bool
cal_parse_period(const char *s, size_t len, int32_t *first, int32_t *last)
{
	int y = len >= 4 ? digits(s, 4) : -1, m;

	if (y < 2000 || y > 2099)
		return false;
	if (len == 4) {
		*first = cal_days_from_civil(y, 1, 1);
		*last = cal_days_from_civil(y, 12, 31);
		return true;
	}
	if (len == 7 && s[4] == '-' && s[5] == 'Q' && s[6] >= '1' && s[6] <= '4') {
		m = (s[6] - '1') * 3 + 1;
		*first = cal_days_from_civil(y, m, 1);
		*last = cal_month_end(y, m + 2);
		return true;
	}
	if (len == 7 && s[4] == '-' && (m = digits(s + 5, 2)) >= 1 && m <= 12) {
		*first = cal_days_from_civil(y, m, 1);
		*last = cal_month_end(y, m);
		return true;
	}
	return false;
}
