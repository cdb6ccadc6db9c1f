/* A signal handler that allocates while the program's thread allocates at full speed
 * (test_exits test_handler_allocations): SIGALRM every argv[2] microseconds, its handler
 * mapping and unmapping MAP_BYTES (argv[3] "mmap": async-signal-safe) or allocating and
 * freeing 1,000 bytes ("malloc"); argv[1] blocks of 40 bytes allocated and freed in the
 * main loop. Prints the handler's count. Most signals land while the thread is inside
 * memprof, recording one of the loop's blocks.
 *
 * argv[4] "sigset": the handler installed with System V's sigset instead of sigaction.
 *
 * "query": installs handlers with sigaction (SA_SIGINFO and not) and signal and checks
 * that sigaction and signal tell of them, and of their flags, as without memprof.
 * "legacy": the same of the other names: sysv_signal (a strict ISO C program's `signal`),
 * sigset (SIG_HOLD too), bsd_signal, ssignal, on signals whose default action ends the
 * process (memprof's stand-in must not show). */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "../alarm.h"

#define MAP_BYTES (((size_t)128 << 20) + 4096)
static volatile long hits;
static int use_mmap;

static void handler(int sig)
{
	(void)sig;
	if (use_mmap) {
		void *p = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @MAP */
		if (p != MAP_FAILED)
			munmap(p, MAP_BYTES);
	} else {
		free(malloc(1000)); /* @MALLOC */
	}
	hits++;
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	handler(sig);
}

static int query(void)
{
	int bad = 0;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGUSR1, NULL, &old))
		return 10;
	bad |= old.sa_sigaction != info_handler || !(old.sa_flags & SA_SIGINFO) || !(old.sa_flags & SA_RESTART) ||
	       !sigismember(&old.sa_mask, SIGUSR2);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	if (sigaction(SIGUSR1, &sa, &old))
		return 11;
	bad |= (old.sa_sigaction != info_handler || !(old.sa_flags & SA_SIGINFO)) << 1;
	if (sigaction(SIGUSR1, NULL, &old))
		return 12;
	bad |= (old.sa_handler != handler || (old.sa_flags & SA_SIGINFO) || (old.sa_flags & SA_RESTART)) << 2;
	bad |= (signal(SIGUSR1, SIG_IGN) != handler) << 3;
	bad |= (signal(SIGUSR1, handler) != SIG_IGN) << 4;
	bad |= (signal(SIGUSR1, SIG_DFL) != handler) << 5;
	if (signal(SIGUSR2, handler) == SIG_ERR || raise(SIGUSR2))
		return 15;
	if (sigaction(SIGUSR2, NULL, &old))
		return 13;
	bad |= (old.sa_handler != handler || (old.sa_flags & SA_SIGINFO)) << 6;
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	if (sigaction(SIGUSR1, NULL, &old))
		return 14;
	bad |= (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) << 7;
	printf("query %s %d, handled %ld\n", bad ? "bad" : "ok", bad, hits);
	return 0;
}

sighandler_t bsd_signal(int sig, sighandler_t handler);
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* (sigset: what is tested) */

static int legacy(void)
{
	int bad = 0;
	struct sigaction old;
	bad |= (sysv_signal(SIGTERM, handler) != SIG_DFL) << 0;
	if (sigaction(SIGTERM, NULL, &old))
		return 10;
	bad |= (old.sa_handler != handler || !(old.sa_flags & SA_RESETHAND) || !(old.sa_flags & SA_NODEFER) ||
		(old.sa_flags & SA_RESTART))
	       << 1;
	raise(SIGTERM); /* handled once, then the default again */
	bad |= (sysv_signal(SIGTERM, SIG_DFL) != SIG_DFL) << 2;
	bad |= (sigset(SIGHUP, handler) != SIG_DFL) << 3;
	bad |= (sigset(SIGHUP, SIG_HOLD) != handler) << 4;
	sigset_t mask;
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	bad |= !sigismember(&mask, SIGHUP) << 5;
	raise(SIGHUP); /* held */
	bad |= (sigset(SIGHUP, handler) != SIG_HOLD) << 6; /* and delivered now */
	bad |= (sigset(SIGHUP, SIG_DFL) != handler) << 7;
	bad |= (bsd_signal(SIGQUIT, handler) != SIG_DFL) << 8;
	bad |= (ssignal(SIGQUIT, SIG_DFL) != handler) << 9;
	bad |= (ssignal(SIGQUIT, SIG_IGN) != SIG_DFL) << 10;
	bad |= (sigset(0, handler) != SIG_ERR) << 11;
	printf("legacy %s %d, handled %ld\n", bad ? "bad" : "ok", bad, hits);
	return 0;
}

/* "oneshot": a SIGTERM handler installed with SA_RESETHAND runs once; 1,001 blocks kept;
 * then SIGTERM again, now the default action (the profile complete, as for any signal
 * that ends the program). */
static int oneshot(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	raise(SIGTERM);
	for (int i = 0; i < 1001; i++)
		if (!malloc(64)) /* @ONESHOT */
			return 1;
	printf("handled %ld\n", hits);
	fflush(stdout);
	raise(SIGTERM);
	return 0;
}

/* "longjmp": a SIGALRM handler leaves by siglongjmp out of a loop allocating at full
 * speed (most often out of memprof's recording); then 1,000,000 blocks of 48 bytes. */
static sigjmp_buf jump;
static void jump_handler(int sig)
{
	(void)sig;
	hits++;
	siglongjmp(jump, 1);
}

static int longjmps(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = jump_handler;
	sigaction(SIGALRM, &sa, NULL);
	if (!sigsetjmp(jump, 1)) {
		struct itimerval it = {{0, 0}, {0, 20000}};
		setitimer(ITIMER_REAL, &it, NULL);
		for (;;)
			free(malloc(40));
	}
	for (int i = 0; i < 1000000; i++)
		free(malloc(48)); /* @AFTER_JUMP */
	printf("handled %ld\n", hits);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "query") == 0)
		return query();
	if (argc > 1 && strcmp(argv[1], "legacy") == 0)
		return legacy();
	if (argc > 1 && strcmp(argv[1], "oneshot") == 0)
		return oneshot();
	if (argc > 1 && strcmp(argv[1], "longjmp") == 0)
		return longjmps();
	long n = argc > 1 ? atol(argv[1]) : 3000000;
	long us = argc > 2 ? atol(argv[2]) : 100;
	use_mmap = argc > 3 && strcmp(argv[3], "mmap") == 0;
	e2e_alarm_every(handler, us);
	if (argc > 4 && strcmp(argv[4], "sigset") == 0)
		sigset(SIGALRM, handler);
	for (long i = 0; i < n; i++) {
		volatile char *p = malloc(40);
		p[0] = 1;
		free((void *)p);
	}
	e2e_alarm_off();
	printf("handled %ld\n", hits);
	return 0;
}
