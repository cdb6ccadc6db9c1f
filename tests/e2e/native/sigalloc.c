/* A signal handler that allocates while the program's thread allocates at full speed
 * (test_exits test_handler_allocations): SIGALRM every argv[2] microseconds, its handler
 * mapping and unmapping MAP_BYTES (argv[3] "mmap": async-signal-safe) or allocating and
 * freeing 1,000 bytes ("malloc"); argv[1] blocks of 40 bytes allocated and freed in the
 * main loop. Prints the handler's count. Most signals land while the thread is inside
 * memprof, recording one of the loop's blocks.
 *
 * "query": installs handlers with sigaction (SA_SIGINFO and not) and signal and checks
 * that sigaction and signal tell of them, and of their flags, as without memprof. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

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
	bad |= (old.sa_handler != SIG_DFL) << 7;
	printf("query %s %d, handled %ld\n", bad ? "bad" : "ok", bad, hits);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "query") == 0)
		return query();
	long n = argc > 1 ? atol(argv[1]) : 3000000;
	long us = argc > 2 ? atol(argv[2]) : 100;
	use_mmap = argc > 3 && strcmp(argv[3], "mmap") == 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, us}, {0, us}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < n; i++) {
		volatile char *p = malloc(40);
		p[0] = 1;
		free((void *)p);
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("handled %ld\n", hits);
	return 0;
}
