/*
 * Time for every part of relais: the wall clock (event times, ids), the
 * monotonic clock (time-outs, latencies: it never jumps when the system's
 * time is set), and a sleep that a signal does not cut short.
 */
#ifndef RELAIS_RLTIME_H
#define RELAIS_RLTIME_H

#include <stdint.h>

int64_t rl_wall_ms(void);       /* ms since the Unix epoch, UTC */
int64_t rl_mono_ms(void);
int64_t rl_mono_us(void);
void rl_sleep_ms(int ms);

#endif
