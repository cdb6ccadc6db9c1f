/* What the kernel says of the CPU: /proc/cpuinfo's flags, for the instructions memprof
 * uses beyond x86-64's base set (RDTSCP, PREFETCHW) and the TSC's properties. The
 * kernel's flags rather than CPUID: valgrind's CPUID claims instructions (RDTSCP) that
 * it then refuses on a host without them. */
#ifndef MEMPROF_PRELOAD_CPU_H
#define MEMPROF_PRELOAD_CPU_H

/* Whether the space-separated flag `name` is in the cpuinfo text (whole words only). */
int cpu_flag(const char *cpuinfo, const char *name);
/* The start of /proc/cpuinfo (the first CPU's flags are well within it), read on the
 * first call (memprof's start-up, one thread); "" when it cannot be read. */
const char *cpu_info(void);

#endif
