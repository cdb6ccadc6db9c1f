/* SIGALRM every `usec` microseconds to `handler` (SA_RESTART), and off again: the timer
 * of the end-to-end tests whose signal handlers allocate while the program does (native
 * sigalloc.c, python cext.c). */
#ifndef MEMPROF_TESTS_E2E_ALARM_H
#define MEMPROF_TESTS_E2E_ALARM_H

#include <signal.h>
#include <string.h>
#include <sys/time.h>

/* `handler` for `sig` (SA_RESTART); 0 or -1 as sigaction. */
static inline int e2e_handle(int sig, void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	return sigaction(sig, &sa, NULL);
}

static inline void e2e_alarm_every(void (*handler)(int), long usec)
{
	e2e_handle(SIGALRM, handler);
	struct itimerval it = {{0, usec}, {0, usec}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static inline void e2e_alarm_off(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
}

#endif
