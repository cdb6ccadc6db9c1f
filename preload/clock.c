/* Clock selection and TSC calibration against CLOCK_MONOTONIC (see clock.h). */
#include "clock.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int clock_use_tsc;
uint64_t clock_start_ticks;
static uint64_t clock_start_ns;

/* Whether the space-separated flag `name` is in the cpuinfo text s. */
static int clock_flag(const char *s, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = s; (p = strstr(p, name)); p += n)
		if (p > s && p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

int clock_choose(const char *cpuinfo)
{
#if defined(__x86_64__)
	if (!clock_flag(cpuinfo, "constant_tsc") || !clock_flag(cpuinfo, "nonstop_tsc"))
		return 0;
	return clock_flag(cpuinfo, "rdtscp") ? CLOCK_TSCP : CLOCK_TSC;
#else
	return 0;
#endif
}

/* The kernel's flags, not CPUID: valgrind's CPUID claims RDTSCP on a host without it,
 * then refuses the instruction. The first CPU's flags are well within the first 8 KiB. */
static int clock_choose_here(void)
{
	char buf[8192];
	int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return clock_choose(buf);
}

void clock_init(void)
{
	clock_use_tsc = clock_choose_here();
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
