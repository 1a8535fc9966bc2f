/*
 * Clocks and sleep (see rltime.h).
 */
#include <errno.h>
#include <time.h>

#include "rltime.h"

static int64_t
read_clock(clockid_t id, int64_t per_second)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * per_second +
	    ts.tv_nsec / (1000000000 / per_second);
}

int64_t
rl_wall_ms(void)
{
	return read_clock(CLOCK_REALTIME, 1000);
}

int64_t
rl_mono_ms(void)
{
	return read_clock(CLOCK_MONOTONIC, 1000);
}

int64_t
rl_mono_us(void)
{
	return read_clock(CLOCK_MONOTONIC, 1000000);
}

void
rl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
