/* Clock selection and TSC calibration against CLOCK_MONOTONIC (see clock.h). */
#include "clock.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int clock_use_tsc;
uint64_t clock_start_ticks;
static uint64_t clock_start_ns;

/* True when /proc/cpuinfo lists constant_tsc and nonstop_tsc: the TSC then ticks at one
 * rate on every core, which is what ordering events across threads needs. */
static int clock_tsc_invariant(void)
{
#if defined(__x86_64__)
	char buf[8192];
	int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, " constant_tsc") && strstr(buf, " nonstop_tsc");
#else
	return 0;
#endif
}

void clock_init(void)
{
	clock_use_tsc = clock_tsc_invariant();
	clock_start_ns = clock_mono_ns();
	clock_start_ticks = clock_now();
}

double clock_ticks_per_sec(void)
{
	if (!clock_use_tsc)
		return 1e9;
	uint64_t ns = clock_mono_ns();
	uint64_t t = clock_now();
	if (ns <= clock_start_ns + 1000 || t <= clock_start_ticks)
		return 1e9;
	return (double)(t - clock_start_ticks) * 1e9 / (double)(ns - clock_start_ns);
}
