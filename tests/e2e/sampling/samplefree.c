/* Sampled blocks' frees, where the table of sampled live blocks is crowded.
 *   samplefree many    200,000 blocks of 256 bytes live at once, then all freed
 *   samplefree spaced  500 blocks of 400,000 bytes (mmap'd, a few pages apart) live at
 *                      once, then all freed
 *   samplefree fork    two threads keep 100,000 blocks of 256 bytes live and replace
 *                      them at random while the main thread forks 10 children that each
 *                      allocate and free 200 blocks; a child not done in 5 s is killed
 *                      and counted as hung
 * Nothing is live at the end of any of them. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void keep_all_then_free(size_t n, size_t size)
{
	void **v = calloc(n, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = malloc(size); /* @MANY */
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

#define LIVE 100000
static volatile int stop;

static void *churn(void *arg)
{
	void **v = calloc(LIVE, sizeof *v);
	unsigned r = (unsigned)(size_t)arg;
	for (int i = 0; i < LIVE; i++)
		v[i] = malloc(256);
	while (!stop) {
		r = r * 1103515245u + 12345u;
		unsigned k = (r >> 8) % LIVE;
		free(v[k]);
		v[k] = malloc(256);
	}
	for (int i = 0; i < LIVE; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static int fork_while_churning(void)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, (void *)(size_t)(i + 1));
	usleep(300000);
	int hung = 0;
	for (int i = 0; i < 10; i++) {
		pid_t p = fork();
		if (p == 0) {
			for (int j = 0; j < 200; j++) {
				void *q = malloc(256);
				__asm__ volatile("" : : "r"(q) : "memory");
				free(q);
			}
			_exit(0);
		}
		int st, waited = 0;
		while (waitpid(p, &st, WNOHANG) == 0) {
			usleep(10000);
			if (++waited > 500) {
				hung++;
				kill(p, SIGKILL);
				waitpid(p, &st, 0);
				break;
			}
		}
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("children hung: %d\n", hung);
	return hung ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "many"))
		keep_all_then_free(200000, 256);
	else if (!strcmp(mode, "spaced"))
		keep_all_then_free(500, 400000);
	else if (!strcmp(mode, "fork"))
		return fork_while_churning();
	else {
		fprintf(stderr, "usage: samplefree many|spaced|fork\n");
		return 2;
	}
	return 0;
}
