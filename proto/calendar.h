/*
 * Calendar days in the territory's time zone, Europe/Paris (SPEC §5:
 * events are counted at their date there).
 *
 * A day is numbered as the days since 1970-01-01 of the local date, so
 * that day arithmetic is integer arithmetic.  The offset follows the rule
 * France has used since 1996 (EU directive 2000/84/EC): UTC+1, and UTC+2
 * from the last Sunday of March at 01:00 UTC to the last Sunday of October
 * at 01:00 UTC.  Events are dated from 2000 on, so no older rule is needed;
 * computing the rule rather than reading the system's tz database keeps the
 * broker's figures the same on every machine.
 */
#ifndef RELAIS_CALENDAR_H
#define RELAIS_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int32_t cal_days_from_civil(int year, int month, int day);
void cal_civil_from_days(int32_t days, int *year, int *month, int *day);

/* The last day of a month; how many days it has (28 to 31). */
int32_t cal_month_end(int year, int month);
int cal_month_length(int year, int month);

/* Offset of Paris local time from UTC at that instant, in ms. */
int64_t cal_paris_offset_ms(int64_t utc_ms);

/* The Paris calendar day of an instant (ms since the epoch, UTC). */
int32_t cal_paris_day(int64_t utc_ms);

/* "2026-03-29" <-> day; parse returns false unless a real date 2000..2099. */
bool cal_parse_date(const char *s, size_t len, int32_t *day);
void cal_format_date(int32_t day, char out[11]);

/*
 * A calendar period named as "2026", "2026-Q3" or "2026-03": its first and
 * last day.  False if the text is none of these.
 */
bool cal_parse_period(const char *s, size_t len, int32_t *first,
    int32_t *last);

#endif
