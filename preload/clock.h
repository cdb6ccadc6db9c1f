/* The event clock: the TSC where it is invariant (constant_tsc), CLOCK_MONOTONIC in
 * nanoseconds elsewhere. Allocations are stamped with clock_after (waits for earlier
 * instructions, so the stamp is later than the allocation it follows), frees with
 * clock_now before the real free runs: an address reused across threads then always
 * orders free before the next allocation. */
#ifndef MEMPROF_PRELOAD_CLOCK_H
#define MEMPROF_PRELOAD_CLOCK_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

extern int clock_use_tsc;

static inline uint64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now(void)
{
#if defined(__x86_64__)
	if (clock_use_tsc)
		return __rdtsc();
#endif
	return clock_mono_ns();
}

static inline uint64_t clock_after(void)
{
#if defined(__x86_64__)
	if (clock_use_tsc) {
		unsigned aux;
		return __rdtscp(&aux);
	}
#endif
	return clock_mono_ns();
}

/* Chooses the clock; records the start point for calibration. */
void clock_init(void);
/* Ticks per second measured from the start point until now. */
double clock_ticks_per_sec(void);
extern uint64_t clock_start_ticks;

#endif
