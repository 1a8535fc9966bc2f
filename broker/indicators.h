/*
 * The programme's indicators (SPEC §5), kept as the events arrive, so that
 * a report over a year reads a few thousand counters and never the log.
 *
 * Table "indicators", one msgpack map {index: count} per key; every count
 * is anonymous and is never touched by erasure or anonymisation:
 *
 *   'E' u32be day, qpv \0 agent          IE_*: what the agent's events
 *                                          counted that day (réalisation,
 *                                          résultat)
 *   'F' u32be day, qpv \0 from \0 to     IF_*: referrals from -> to
 *   'A' u32be day, qpv \0 rule           IA_*: alerts of one rule
 *   'P' u8 kind, u32be period, qpv \0 agent
 *                                        IP_*: distinct people in a
 *                                          calendar year (kind 0), quarter
 *                                          (1) or month (2)
 *
 * "day" is the Paris calendar day of the event's time (calendar.h); "qpv"
 * is the participant's QPV after the event ("" when they have none yet);
 * "agent" is the sender.  In 'P' keys, "*" stands for every QPV or every
 * agent, so that a person counts once in a total however many QPVs and
 * agents they met.
 *
 * Table "ind_seen" holds what exact distinct counts need: per participant
 * and year, the (period, QPV, agent) triples they were already counted in
 * and their confidence scores there; per referral, the QPV it was counted
 * in and the day it will expire.  It is personal data: erasure removes it
 * (indicators_forget), and the counts stay.
 *
 * Writes are gathered in memory during a write transaction and each key is
 * written once, when the transaction commits (indicators_flush, from
 * txn_commit), or dropped when it aborts (indicators_clear).
 */
#ifndef RELAIS_INDICATORS_H
#define RELAIS_INDICATORS_H

#include <stdint.h>
#include <lmdb.h>

#include "config.h"
#include "event.h"
#include "pathway.h"

struct broker;
struct alert;

/*
 * Durations (time to answer a referral, to resolve an alert) are counted
 * in a log-scale histogram: bucket 0 is under a minute, bucket b >= 1
 * starts at 60 s * 2^((b-1)/4), so each bucket spans 19 % and a median
 * read from it is within 9 % of the true one.  The last bucket is open.
 */
#define IND_BUCKETS     80
int ind_bucket(int64_t ms);
int64_t ind_bucket_low_ms(int b);
/* The value reported for a bucket: the geometric middle of its bounds. */
double ind_bucket_days(int b);
/*
 * The nearest-rank quantile q (0.5, 0.9) of a histogram of n values, as
 * days; negative when n is 0.
 */
double ind_quantile_days(const int64_t hist[IND_BUCKETS], int64_t n, double q);

/* 'E' measures: one per code of each group below, then the contacts sum. */
enum ind_event_group {
	IEG_OUTREACH,           /* outreach.<place> */
	IEG_CONTACT,            /* contact.<channel> */
	IEG_IDENTIFIED,         /* identified.<source> */
	IEG_BARRIER_IDENTIFIED, /* barrier_identified.<code> */
	IEG_BARRIER_LIFTED,     /* barrier_lifted.<code> */
	IEG_ENROLLED,           /* enrolled.<scheme> */
	IEG_EMPLOYED,           /* employed.<contract> */
	IEG_EXITED,             /* exited.<reason> */
	IEG__COUNT
};
#define IE_MAX 64
int ind_event_measures(void);               /* how many, contacts included */
int ind_event_index(enum ind_event_group g, int code);
int ind_event_contacts(void);               /* outreach.contacts */
/* "outreach.public_space", ... into buf. */
void ind_event_name(int i, char *buf, size_t size);

#define IND_DECLINE_REASONS 7
enum {
	IF_SENT, IF_ACCEPTED, IF_DECLINED,
	IF_CANCELLED = IF_DECLINED + IND_DECLINE_REASONS,
	IF_EXPIRING,            /* referrals whose expiry falls on that day */
	IF_ANSWER,              /* histogram of the time to answer */
	IF__COUNT = IF_ANSWER + IND_BUCKETS
};
enum { IA_OPENED, IA_RESOLVED, IA_RESOLUTION, IA__COUNT = IA_RESOLUTION + IND_BUCKETS };
enum { IP_FOLLOWED, IP_ASSESSED_TWICE, IP_IMPROVED, IP__COUNT };
enum ind_period { IND_YEAR, IND_QUARTER, IND_MONTH };

#define IND_MAXV 96             /* the longest vector: IF__COUNT */
#define IND_ALL  "*"
#define IND_KEY_MAX (1 + 4 + PW_ID_SIZE + 2 * PW_AGENT_SIZE)

/* Key builders, for the report's reads. */
size_t ind_day_key(char *buf, char family, int32_t day);
size_t ind_people_key(char *buf, enum ind_period kind, uint32_t period,
    const char *qpv, const char *agent);
uint32_t ind_period_index(enum ind_period kind, int year, int month);

/* A stored value added into v[0..IND_MAXV); -1 if it is not one. */
int ind_value_add(const void *data, size_t len, int64_t v[IND_MAXV]);

int indicators_init(struct broker *b);
void indicators_free(struct broker *b);

/*
 * An accepted event's counts.  pw is the participant's pathway after the
 * event (NULL for outreach), at the event's time for the rules, seq its
 * log seq.  Coordinator events about alerts and erasures count nothing.
 */
int indicators_event(struct broker *b, MDB_txn *txn, const struct agent *sender,
    const struct rl_event *ev, const struct pathway *pw, int64_t at,
    uint64_t seq);
/* An alert was published with this change ("opened", "resolved", ...). */
int indicators_alert(struct broker *b, MDB_txn *txn, const struct alert *a,
    const char *change);
/* Erasure: the participant's entries in ind_seen go; the counts stay. */
int indicators_forget(struct broker *b, MDB_txn *txn, const char *participant);

int indicators_flush(struct broker *b, MDB_txn *txn);
void indicators_clear(struct broker *b);

#endif
