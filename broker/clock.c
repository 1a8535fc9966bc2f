/*
 * The broker's clock.  Rules compare deadlines with clock_now(); in
 * production it is the system's real time.  With manual_clock set in the
 * config (tests and demos only), an operator may move it forward, so a
 * 45-day rule is tested in milliseconds without sleeping.
 *
 * Connections are timed with clock_monotonic_ms() instead: liveness and
 * redelivery must not jump when the rules' clock is moved, nor when the
 * system's time is set.
 */
#include <time.h>

#include "relaisd.h"

int64_t
clock_now(const struct rclock *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + c->offset_ms;
}

int64_t
clock_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
