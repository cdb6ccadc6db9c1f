/* A tiny C "extension" for the Python end-to-end tests, loaded with ctypes:
 * - cext_alloc / cext_free: malloc/free from C, called at a known Python line;
 * - cext_alloc_many: many of those, without the GIL, for the threads test;
 * - cext_run_thread: starts a pthread (created in C, unknown to Python) that calls a
 *   Python callback n times (ctypes callbacks take the GIL with PyGILState_Ensure),
 *   and joins it. ctypes releases the GIL around the call, so the callback can run. */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "../alarm.h"
#include <stdlib.h>
#include <string.h>

typedef void (*cext_cb_t)(int);

/* what ctypes calls (exported, so declared: the build warns about definitions without
 * a prototype) */
void *cext_alloc(size_t n);
void cext_free(void *p);
void cext_alloc_many(int n, size_t size);
int cext_run_thread(cext_cb_t cb, int n);

__attribute__((noinline)) void *cext_alloc(size_t n)
{
	void *p = malloc(n);
	if (p)
		memset(p, 1, n);
	return p;
}

void cext_free(void *p)
{
	free(p);
}

/* n blocks of `size` bytes, each allocated, touched and freed: called through ctypes,
 * so without the GIL, while other threads run Python code holding it. */
void cext_alloc_many(int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		volatile char *p = cext_alloc(size);
		if (p)
			p[size / 2] = 1;
		free((void *)p);
	}
}

struct cext_job {
	cext_cb_t cb;
	int n;
};

static void *cext_thread(void *arg)
{
	struct cext_job *job = arg;
	for (int i = 0; i < job->n; i++)
		job->cb(i);
	return NULL;
}

int cext_run_thread(cext_cb_t cb, int n)
{
	struct cext_job job = {cb, n};
	pthread_t t;
	if (pthread_create(&t, NULL, cext_thread, &job))
		return -1;
	return pthread_join(t, NULL);
}

/* A signal handler that maps and unmaps MAP_BYTES (async-signal-safe; `how` 0), does
 * that CEXT_BURST times in a row (`how` 2: more events than memprof's stash held until
 * session 31), or mallocs and frees 1,000 bytes (`how` 1), on SIGALRM every `usec`
 * microseconds while Python runs (test_signals test_handler_allocations): most land while
 * the thread is inside memprof, recording one of Python's allocations or frees. */
#define CEXT_MAP_BYTES (((size_t)128 << 20) + 4096)
#define CEXT_BURST 40
static volatile long cext_hits;
static int cext_how;

static void cext_map_unmap(void)
{
	void *p = mmap(NULL, CEXT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		munmap(p, CEXT_MAP_BYTES);
}

static void cext_on_alarm(int sig)
{
	(void)sig;
	if (cext_how == 1) {
		free(malloc(1000));
		cext_hits++;
		return;
	}
	for (int i = 0; i < (cext_how == 2 ? CEXT_BURST : 1); i++) {
		cext_map_unmap();
		cext_hits++;
	}
}

void cext_alarm_start(int usec, int how);
long cext_alarm_stop(void);

void cext_alarm_start(int usec, int how)
{
	cext_how = how;
	e2e_alarm_every(cext_on_alarm, usec);
}

long cext_alarm_stop(void)
{
	e2e_alarm_off();
	signal(SIGALRM, SIG_IGN);
	return cext_hits;
}
