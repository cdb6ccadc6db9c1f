/* Exit paths: exits MODE allocates at known lines, writes to stdout and stderr, then ends by
 *   return3     returning 3 from main
 *   thread4     exit(4) called by a second thread (main waits in pthread_join)
 *   _exit5      _exit(5)
 *   _Exit6      _Exit(6)
 *   abort       abort()
 *   segv        a write through a null pointer
 *   term        raise(SIGTERM)
 *   killusr1    kill(getpid(), SIGUSR1) (a signal memprof has no handler for)
 *   raiseusr2   raise(SIGUSR2) (likewise)
 *   quick7      quick_exit(7)
 *   mainexit    the main thread ends by pthread_exit; a second thread allocates 0.2 s
 *               later and returns: the process ends with status 0 (atexit handlers run)
 *   sleep       sleeping (the test kills it with SIGKILL)
 *   abort_busy  abort() while three other threads allocate and free without pause
 *   handler     the program's own SIGSEGV handler prints and calls _exit(7)
 *   dispositions  prints what sigaction and signal say of the fatal signals' handlers
 *               (SIG_DFL, without memprof and with it), then installs its own SIGTERM
 *               handler only where it found SIG_DFL, raises SIGTERM, puts back the
 *               disposition it was told of and raises SIGTERM again, which ends it
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static char outbuf[1 << 16];
static void *volatile sink;
static void *blocks[8];

static void before(void)
{
	for (int i = 0; i < 5; i++) {
		blocks[i] = malloc(MiB); /* @BEFORE */
		memset(blocks[i], 1, MiB);
	}
	void *t = malloc(4096); /* @FREED */
	sink = t;
	free(t);
}

static void last(void)
{
	sink = malloc(123); /* @LAST */
}

static void *thread_main(void *arg)
{
	(void)arg;
	sink = malloc(777); /* @THREAD */
	printf("thread exits\n");
	fprintf(stderr, "stderr from thread\n");
	last();
	exit(4);
}

static void *late(void *arg)
{
	(void)arg;
	usleep(200000);
	last();
	printf("late thread done\n");
	return NULL;
}

static void at_end(void)
{
	printf("atexit handler\n");
}

static void *spin(void *arg)
{
	(void)arg;
	for (;;) {
		void *p = malloc(48); /* @SPIN */
		sink = p;
		free(p);
	}
	return NULL;
}

static void on_term(int sig)
{
	static const char msg[] = "handled SIGTERM\n";
	(void)sig;
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(8);
}

static void on_segv(int sig)
{
	static const char msg[] = "handled SIGSEGV\n";
	(void)sig;
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(8);
	_exit(7);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	before();
	printf("mode %s\n", mode);
	fprintf(stderr, "stderr %s\n", mode);
	if (!strcmp(mode, "return3")) {
		last();
		return 3;
	}
	if (!strcmp(mode, "thread4")) {
		pthread_t th;
		pthread_create(&th, NULL, thread_main, NULL);
		pthread_join(th, NULL);
		return 99; /* not reached */
	}
	if (!strcmp(mode, "_exit5")) {
		fflush(stdout);
		last();
		_exit(5);
	}
	if (!strcmp(mode, "_Exit6")) {
		fflush(stdout);
		last();
		_Exit(6);
	}
	if (!strcmp(mode, "abort")) {
		fflush(stdout);
		last();
		abort();
	}
	if (!strcmp(mode, "segv")) {
		fflush(stdout);
		last();
		volatile int *np = NULL;
		*np = 1;
		return 98;
	}
	if (!strcmp(mode, "term")) {
		fflush(stdout);
		last();
		raise(SIGTERM);
		return 97;
	}
	if (!strcmp(mode, "quick7")) {
		fflush(stdout);
		last();
		quick_exit(7);
	}
	if (!strcmp(mode, "mainexit")) {
		pthread_t th;
		atexit(at_end);
		fflush(stdout);
		pthread_create(&th, NULL, late, NULL);
		pthread_exit(NULL);
	}
	if (!strcmp(mode, "killusr1")) {
		fflush(stdout);
		last();
		kill(getpid(), SIGUSR1);
		return 96;
	}
	if (!strcmp(mode, "raiseusr2")) {
		fflush(stdout);
		last();
		raise(SIGUSR2);
		return 95;
	}
	if (!strcmp(mode, "sleep")) {
		last();
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	if (!strcmp(mode, "abort_busy")) {
		pthread_t th[3];
		for (int i = 0; i < 3; i++)
			pthread_create(&th[i], NULL, spin, NULL);
		usleep(200000);
		fflush(stdout);
		last();
		abort();
	}
	if (!strcmp(mode, "dispositions")) {
		static const int sigs[] = {SIGINT, SIGTERM, SIGSEGV, SIGHUP, SIGPIPE, SIGABRT};
		for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
			struct sigaction o;
			sigaction(sigs[i], NULL, &o);
			printf("%d:%s ", sigs[i], o.sa_handler == SIG_DFL ? "default" : "other");
		}
		void (*was)(int) = signal(SIGHUP, SIG_DFL);
		printf("signal:%s\n", was == SIG_DFL ? "default" : "other");
		struct sigaction o;
		fflush(stdout);
		if (sigaction(SIGTERM, NULL, &o) == 0 && o.sa_handler == SIG_DFL)
			signal(SIGTERM, on_term);
		raise(SIGTERM);
		last();
		/* the disposition put back as it was told of: SIGTERM ends the program as the
		 * default action does (and memprof writes its file first) */
		fflush(stdout);
		sigaction(SIGTERM, &o, NULL);
		raise(SIGTERM);
		return 0;
	}
	if (!strcmp(mode, "handler")) {
		fflush(stdout);
		signal(SIGSEGV, on_segv);
		last();
		volatile int *np = NULL;
		*np = 1;
		return 96;
	}
	fprintf(stderr, "unknown mode\n");
	return 2;
}
