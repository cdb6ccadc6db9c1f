/* Checks the choice of the event clock (preload/clock.c) from /proc/cpuinfo texts: RDTSCP
 * only where the kernel lists the rdtscp flag (a CPU with an invariant TSC but without
 * RDTSCP, as some hypervisors present, gets LFENCE + RDTSC: RDTSCP there is an illegal
 * instruction, which valgrind raised on such a host and a real CPU would too), whole
 * flags only (cpu_flag, which also finds PREFETCHW's flag for thread.c); then that this
 * machine's choice gives a clock that moves forward. */
#include "clock.h"
#include "cpu.h"

#include <stdio.h>
#include <string.h>

static int test_clock_failures;

static void test_clock_case(const char *name, const char *cpuinfo, int want)
{
	int got = clock_choose(cpuinfo);
	if (got != want) {
		fprintf(stderr, "%s: clock %d, want %d\n", name, got, want);
		test_clock_failures++;
	}
}

#define TEST_CLOCK_HEAD "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme tsc msr "

int main(void)
{
#if defined(__x86_64__)
	test_clock_case("invariant TSC and RDTSCP",
			TEST_CLOCK_HEAD "rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid\nbugs\t\t:\n",
			CLOCK_TSCP);
	test_clock_case("invariant TSC without RDTSCP (this project's VM)",
			TEST_CLOCK_HEAD "syscall nx mmxext lm constant_tsc rep_good nopl xtopology tsc_reliable "
					"nonstop_tsc cpuid\nbugs\t\t:\n",
			CLOCK_TSC);
	test_clock_case("rdtscp last on the line",
			TEST_CLOCK_HEAD "constant_tsc nonstop_tsc rdtscp\nbugs\t\t:\n", CLOCK_TSCP);
	test_clock_case("rdtscp last in the text", TEST_CLOCK_HEAD "constant_tsc nonstop_tsc rdtscp", CLOCK_TSCP);
	test_clock_case("rdtscp only inside other words",
			TEST_CLOCK_HEAD "constant_tsc nonstop_tsc xrdtscp rdtscp_x\n", CLOCK_TSC);
	test_clock_case("no nonstop_tsc", TEST_CLOCK_HEAD "rdtscp constant_tsc nonstop_tsc_x\n", 0);
	test_clock_case("no constant_tsc", TEST_CLOCK_HEAD "rdtscp nonstop_tsc\n", 0);
	test_clock_case("empty", "", 0);
	/* the flag thread.c asks for PREFETCHW */
	if (!cpu_flag(TEST_CLOCK_HEAD "3dnowprefetch osvw\n", "3dnowprefetch") ||
	    cpu_flag(TEST_CLOCK_HEAD "x3dnowprefetch osvw\n", "3dnowprefetch")) {
		fprintf(stderr, "cpu_flag: 3dnowprefetch not told apart\n");
		test_clock_failures++;
	}
#else
	test_clock_case("not x86-64", TEST_CLOCK_HEAD "constant_tsc nonstop_tsc rdtscp\n", 0);
#endif
	clock_init();
	uint64_t a = clock_after(), b = clock_now(), c = clock_after();
	if (!(a <= b && b <= c)) {
		fprintf(stderr, "clock %d went back: %llu %llu %llu\n", clock_use_tsc, (unsigned long long)a,
			(unsigned long long)b, (unsigned long long)c);
		test_clock_failures++;
	}
	printf("test_clock: this machine's clock %d; %s\n", clock_use_tsc, test_clock_failures ? "FAILED" : "ok");
	return test_clock_failures != 0;
}
