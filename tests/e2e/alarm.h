/* SIGALRM every `usec` microseconds to `handler` (SA_RESTART), and off again: the timer
 * of the end-to-end tests whose signal handlers allocate while the program does (native
 * sigalloc.c, python cext.c). */
#ifndef MEMPROF_TESTS_E2E_ALARM_H
#define MEMPROF_TESTS_E2E_ALARM_H

#include <signal.h>
#include <string.h>
#include <sys/time.h>

static inline void e2e_alarm_every(void (*handler)(int), long usec)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, usec}, {0, usec}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static inline void e2e_alarm_off(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
}

#endif
