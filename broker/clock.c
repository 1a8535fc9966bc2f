/*
 * The broker's clock.  Rules compare deadlines with clock_now(); in
 * production it is the system's real time.  With manual_clock set in the
 * config (tests and demos only), an operator may move it forward, so a
 * 45-day rule is tested in milliseconds without sleeping.
 *
 * Connections are timed with rl_mono_ms() instead: liveness and
 * redelivery must not jump when the rules' clock is moved, nor when the
 * system's time is set.
 */
#include "relaisd.h"
#include "rltime.h"

int64_t
clock_now(const struct rclock *c)
{
	return rl_wall_ms() + c->offset_ms;
}
