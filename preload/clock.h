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

/* 0: CLOCK_MONOTONIC; else the TSC, and CLOCK_TSCP where the kernel lists rdtscp among
 * the CPU's flags: not every CPU with an invariant TSC has it (a hypervisor may hide it;
 * the instruction is then illegal, as under valgrind on such a host), so clock_after
 * falls back to LFENCE then RDTSC, which waits for the earlier instructions as RDTSCP
 * does. */
#define CLOCK_TSC 1
#define CLOCK_TSCP 2
extern int clock_use_tsc;

static inline uint64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_MONOTONIC time `ns` nanoseconds from now: a deadline for sem_clockwait. */
static inline struct timespec clock_deadline(uint64_t ns)
{
	uint64_t t = clock_mono_ns() + ns;
	return (struct timespec){(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
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
	if (clock_use_tsc == CLOCK_TSCP) {
		unsigned aux;
		return __rdtscp(&aux);
	}
	if (clock_use_tsc) {
		_mm_lfence();
		return __rdtsc();
	}
#endif
	return clock_mono_ns();
}

/* The clock for a CPU whose /proc/cpuinfo text is `cpuinfo`: the TSC (CLOCK_TSC) when
 * its flags include constant_tsc and nonstop_tsc (it then ticks at one rate on every
 * core, which ordering events across threads needs), CLOCK_TSCP when also rdtscp; else
 * 0, CLOCK_MONOTONIC. */
int clock_choose(const char *cpuinfo);
/* Chooses the clock; records the start point for calibration. */
void clock_init(void);
/* Ticks per second measured from the start point until now. */
double clock_ticks_per_sec(void);
/* The process's time 0 (meta clock_start_ticks). */
extern uint64_t clock_start_ticks;
/* The wall-clock time (seconds since the epoch) taken with clock_start_ticks, at start-up
 * or at the fork: meta start_time_unix, which places the process among others (the
 * analyzer's merge.c). */
extern double clock_start_unix;
double clock_unix_now(void);
/* In a forked child: its time 0 is now (the calibration keeps the parent's start). */
void clock_fork_child(void);

#endif
