/* Clock selection and TSC calibration against CLOCK_MONOTONIC (see clock.h). */
#include "clock.h"
#include "cpu.h"

int clock_use_tsc;
uint64_t clock_start_ticks;
double clock_start_unix;
static uint64_t clock_cal_ns, clock_cal_ticks; /* the calibration's start point */

int clock_choose(const char *cpuinfo)
{
#if defined(__x86_64__)
	if (!cpu_flag(cpuinfo, "constant_tsc") || !cpu_flag(cpuinfo, "nonstop_tsc"))
		return 0;
	return cpu_flag(cpuinfo, "rdtscp") ? CLOCK_TSCP : CLOCK_TSC;
#else
	return 0;
#endif
}

void clock_init(void)
{
	clock_use_tsc = clock_choose(cpu_info());
	clock_cal_ns = clock_mono_ns();
	clock_cal_ticks = clock_start_ticks = clock_now();
	clock_start_unix = clock_unix_now();
}

void clock_fork_child(void)
{
	clock_start_ticks = clock_now();
	clock_start_unix = clock_unix_now();
}

double clock_unix_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double clock_ticks_per_sec(void)
{
	if (!clock_use_tsc)
		return 1e9;
	uint64_t ns = clock_mono_ns();
	uint64_t t = clock_now();
	if (ns <= clock_cal_ns + 1000 || t <= clock_cal_ticks)
		return 1e9;
	return (double)(t - clock_cal_ticks) * 1e9 / (double)(ns - clock_cal_ns);
}
