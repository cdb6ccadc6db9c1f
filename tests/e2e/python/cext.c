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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Maps and unmaps CEXT_MAP_BYTES: where they were, or NULL. */
static void *cext_map_unmap(void)
{
	void *p = mmap(NULL, CEXT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	munmap(p, CEXT_MAP_BYTES);
	return p;
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

/* test_signals test_replayed_mapping_reused: a handler on the calling (main) thread, sent
 * SIGUSR1 by a thread of this file `delay_ms` later, maps and unmaps CEXT_MAP_BYTES, then
 * waits (up to 2 s) while another thread of this file maps the same size, which the
 * kernel places where the handler's was, and keeps it to the end. Python's imports keep
 * the main thread inside memprof meanwhile (MEMPROF_TEST_SLOW_CODE_US), so the handler's
 * calls are stashed and replayed after the other thread's mapping. */
int cext_reuse_start(int delay_ms);
int cext_reuse_join(void);
static pthread_t cext_usr1_main, cext_usr1_threads[2]; /* the killer, another or 0 */
static void *cext_reuse_mine, *cext_reuse_theirs;
static atomic_int cext_reuse_state; /* 1: the handler unmapped; 2: the thread mapped */
static int cext_usr1_delay_ms;

static void cext_nap(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
	nanosleep(&ts, NULL);
}

static void cext_reuse_on_usr1(int sig)
{
	(void)sig;
	void *p = cext_map_unmap();
	if (!p)
		return;
	cext_reuse_mine = p;
	atomic_store(&cext_reuse_state, 1);
	for (int i = 0; i < 20000 && atomic_load(&cext_reuse_state) != 2; i++)
		cext_nap(100000);
}

static void *cext_reuse_mapper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000 && atomic_load(&cext_reuse_state) != 1; i++)
		cext_nap(100000);
	void *p = mmap(NULL, CEXT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cext_reuse_theirs = p == MAP_FAILED ? NULL : p;
	atomic_store(&cext_reuse_state, 2);
	return NULL;
}

static void *cext_usr1_killer(void *arg)
{
	(void)arg;
	cext_nap(cext_usr1_delay_ms * 1000000L);
	pthread_kill(cext_usr1_main, SIGUSR1);
	return NULL;
}

/* `handler` for SIGUSR1, which a thread of this file sends the calling thread `delay_ms`
 * later; `also`: a second thread to start (or NULL). The threads block every signal. */
static int cext_usr1_later(void (*handler)(int), int delay_ms, void *(*also)(void *))
{
	if (e2e_handle(SIGUSR1, handler))
		return -1;
	cext_usr1_main = pthread_self();
	cext_usr1_delay_ms = delay_ms;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* (the threads' mask: SIGUSR1 only for this one) */
	int r = pthread_create(&cext_usr1_threads[0], NULL, cext_usr1_killer, NULL) ||
		(also && pthread_create(&cext_usr1_threads[1], NULL, also, NULL));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r ? -1 : 0;
}

int cext_reuse_start(int delay_ms)
{
	return cext_usr1_later(cext_reuse_on_usr1, delay_ms, cext_reuse_mapper);
}

/* 1 if the other thread got the handler's addresses (what the test is about), 0 if not,
 * -1 if the handler did not run. */
int cext_reuse_join(void)
{
	pthread_join(cext_usr1_threads[0], NULL);
	pthread_join(cext_usr1_threads[1], NULL);
	if (atomic_load(&cext_reuse_state) != 2 || !cext_reuse_mine)
		return -1;
	return cext_reuse_mine == cext_reuse_theirs;
}

/* test_signals test_stash_holds_many: a handler on the calling (main) thread, sent
 * SIGUSR1 `delay_ms` later, maps and unmaps CEXT_MAP_BYTES `n` times in a row (2n events,
 * more than the 1,024 that memprof kept aside until session 33) while Python's imports
 * keep the main thread inside memprof. cext_many_join: the mappings the handler made, or
 * -1 if it did not run. */
int cext_many_start(int delay_ms, int n);
long cext_many_join(void);
static int cext_many_n;
static atomic_long cext_many_done = -1;

static void cext_many_on_usr1(int sig)
{
	(void)sig;
	long k = 0;
	for (int i = 0; i < cext_many_n; i++)
		k += cext_map_unmap() != NULL;
	atomic_store(&cext_many_done, k);
}

int cext_many_start(int delay_ms, int n)
{
	cext_many_n = n;
	return cext_usr1_later(cext_many_on_usr1, delay_ms, NULL);
}

long cext_many_join(void)
{
	pthread_join(cext_usr1_threads[0], NULL);
	return atomic_load(&cext_many_done);
}
