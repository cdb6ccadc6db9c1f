/* A signal handler that allocates, running on an alternate signal stack of argv[1]
 * bytes (test_exits test_small_signal_stack): SIGUSR1 raised 1,000 times, each handler
 * call a malloc(300) and its free. Below the stack a page without access, so that an
 * overflow is a SIGSEGV and not a write into other memory. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static volatile long hits;

static void handler(int sig)
{
	(void)sig;
	void *p = malloc(300); /* @HANDLER */
	free(p);
	hits++;
}

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 10) : 8192;
	char *guard = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED || mprotect(guard, 4096, PROT_NONE) != 0)
		return 2;
	stack_t ss = {.ss_sp = guard + 4096, .ss_size = size};
	if (sigaltstack(&ss, NULL) != 0)
		return 3;
	struct sigaction sa = {0};
	sa.sa_handler = handler;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	for (int i = 0; i < 1000; i++)
		raise(SIGUSR1);
	printf("handled %ld\n", hits);
	return 0;
}
