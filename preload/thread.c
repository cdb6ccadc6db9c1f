/* Per-thread state, block pool and the thread registry (see thread.h). */
#define _GNU_SOURCE
#include "thread.h"
#include "record.h"
#include "clock.h"
#include "cpu.h"
#include "unwind.h"
#include "mem.h"
#include "writer.h"

#include <errno.h>
#include <string.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREAD_WAKE_AT 4
#define THREAD_MAX_OUTSTANDING 8 /* 512 KiB (about 40,000 events) unconsumed per thread */
/* And across threads: a thread with a block queued already waits while all threads
 * together have more than THREAD_MAX_QUEUED queued, so that the queue holds about
 * THREAD_MAX_QUEUED blocks plus two a thread (a thread's second block is queued before it
 * waits), not THREAD_MAX_OUTSTANDING + 1 a thread. py_threads (4 threads taking turns
 * under the GIL) queued up to 20-21 blocks at once, now 11: 0.4 MB less peak RSS, no change
 * in time (medians of 7; a cap of 6 took 0.55 MB off but cost 5% of time); 8 threads
 * allocating at once (test_threads' stress run) 68-69 blocks, now 22 (peak RSS 89 -> 85
 * MB). */
#define THREAD_MAX_QUEUED 10
/* A thread that waits for the writer sleeps on its count of queued blocks (a futex),
 * which the writer wakes as it takes each of them (thread_block_release), for at most
 * THREAD_WAIT_MS at a time; after THREAD_STALL_MS without the writer consuming a single
 * block it stops waiting (a deadline, not a count of waits: a signal cuts a wait short). (Until session 17 waiting
 * threads polled: 50 us sleeps, each followed by a wake of the writer; 64 threads
 * allocating at once on 2 cores made 4 million context switches and starved the
 * writer, 0.2 s plain against 16-34 s. And they stopped waiting after 100 ms: on a
 * loaded machine the scheduler's period among 70 runnable threads is about that long,
 * and 64 threads then queued 28 MB.) */
#define THREAD_WAIT_MS 10
#define THREAD_STALL_MS 500

static mp_thread_t thread_empty; /* cap 0: every first event goes to thread_attach */
__thread mp_thread_t *thread_self MP_TLS = &thread_empty;

static pthread_mutex_t thread_lock = PTHREAD_MUTEX_INITIALIZER; /* registry */
static pthread_mutex_t thread_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static mp_thread_t *thread_all;
static thread_block_t *thread_pool;
/* The caches of ended threads, kept for new threads (pool lock): a thread that starts
 * takes one rather than allocating its stack cache (16 KiB and more) and, in native and
 * mixed mode, its unwinder's chain cache (~105 KiB) again. memprof's allocator gives freed
 * pages back at once, so each new thread faulted them in again; and with more than
 * UNWIND_MAX_CACHES threads ended but not yet reaped by the writer, a new thread got no
 * chain cache and libunwind unwound its stacks, mapping and filling a trace cache of 256
 * KiB of its own for each thread: 5,000 short threads took 0.26 s plain and 4.15 s
 * profiled (38 page faults a thread). A thread's caches are its own alone, so they are
 * handed over when it ends (thread_exit), not when the writer reaps its state. */
#define THREAD_SPARES 16
typedef struct thread_caches {
	stack_cache_t *cache;
	struct unwind_cache *unwind;
	void *py;
} thread_caches_t;
static thread_caches_t thread_spares[THREAD_SPARES];
static unsigned thread_n_spares;
static uint32_t thread_next_id = 1;
static pthread_key_t thread_key;
atomic_ulong thread_dropped;
static atomic_ulong thread_released; /* blocks the writer has consumed: its progress */
static atomic_uint thread_queued, thread_queued_peak; /* sealed blocks of all threads not consumed */

static thread_block_t *thread_block_new(void)
{
	thread_block_t *b = NULL;
	pthread_mutex_lock(&thread_pool_lock);
	if (thread_pool) {
		b = thread_pool;
		thread_pool = atomic_load_explicit(&b->next, memory_order_relaxed);
	}
	pthread_mutex_unlock(&thread_pool_lock);
	if (!b)
		b = mem_alloc(sizeof *b);
	if (b) {
		atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
		atomic_store_explicit(&b->count, 0, memory_order_relaxed);
	}
	return b;
}

void thread_block_release(mp_thread_t *t, thread_block_t *b)
{
	pthread_mutex_lock(&thread_pool_lock);
	atomic_store_explicit(&b->next, thread_pool, memory_order_relaxed);
	thread_pool = b;
	pthread_mutex_unlock(&thread_pool_lock);
	atomic_fetch_add_explicit(&thread_released, 1, memory_order_relaxed);
	if (t) {
		atomic_fetch_sub_explicit(&thread_queued, 1, memory_order_relaxed);
		atomic_fetch_sub(&t->outstanding, 1);
		/* outstanding is decremented before waiting is read, and a waiting thread sets
		 * waiting before it reads outstanding: one of the two sees the other */
		if (atomic_load(&t->waiting))
			syscall(SYS_futex, &t->outstanding, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

/* Takes the caches of an ended thread for t (false: none kept). */
static bool thread_spare_take(mp_thread_t *t)
{
	thread_caches_t k = {0};
	pthread_mutex_lock(&thread_pool_lock);
	if (thread_n_spares)
		k = thread_spares[--thread_n_spares];
	pthread_mutex_unlock(&thread_pool_lock);
	if (!k.cache)
		return false;
	/* (all three are keyed by what they describe, not by the thread: a chain by the
	 * stack words it read, the previous Python stack by its frames' positions, checked
	 * before use) */
	t->cache = k.cache;
	t->unwind = k.unwind;
	t->py = k.py;
	return true;
}

/* Hands an ending thread's caches over to the threads that start later (or frees them). */
static void thread_spare_put(mp_thread_t *t)
{
	thread_caches_t k = {t->cache, t->unwind, t->py};
	t->cache = NULL;
	t->unwind = NULL;
	t->py = NULL;
	pthread_mutex_lock(&thread_pool_lock);
	bool kept = k.cache && thread_n_spares < THREAD_SPARES;
	if (kept)
		thread_spares[thread_n_spares++] = k;
	pthread_mutex_unlock(&thread_pool_lock);
	if (!kept) {
		stack_cache_free(k.cache);
		mem_free(k.py);
		unwind_cache_free(k.unwind);
	}
}

/* pthread key destructor: the thread is exiting. Its events stay queued; the writer
 * frees the state once they are consumed. Allocations the thread still makes
 * afterwards (other keys' destructors) start a fresh state, and the key's destructor
 * runs again for it. */
static void thread_exit(void *arg)
{
	mp_thread_t *t = arg;
	if (!t || t == &thread_empty)
		return;
	/* (a signal handler's allocation meanwhile is stashed: recorded at the unguard, on a
	 * fresh state, rather than take the pool's lock this thread may hold) */
	mp_guard_enter();
	thread_self = &thread_empty;
	thread_spare_put(t);
	atomic_store_explicit(&t->exited, 1, memory_order_release);
	thread_wake_writer();
	mp_unguard();
	record_stash_release();
}

mp_thread_t *thread_attach(void)
{
	int saved = errno;
	mp_thread_t *t = mem_alloc(sizeof *t);
	if (t && !thread_spare_take(t)) {
		t->cache = stack_cache_new();
		t->unwind = unwind_cache_new();
	}
	thread_block_t *b = t && t->cache ? thread_block_new() : NULL;
	if (!b) {
		if (t) {
			stack_cache_free(t->cache);
			unwind_cache_free(t->unwind);
			mem_free(t->py);
		}
		mem_free(t);
		mp_fail("out of memory for a thread buffer");
		errno = saved;
		return &thread_empty;
	}
	t->cur = b;
	t->rd = b;
	t->cap = THREAD_BLOCK_WORDS - THREAD_EVENT_MAX_WORDS;
	t->stuck_at = ~0ul;
	t->tid = (pid_t)syscall(SYS_gettid);
	pthread_mutex_lock(&thread_lock);
	t->id = thread_next_id++;
	t->next_all = thread_all;
	thread_all = t;
	pthread_mutex_unlock(&thread_lock);
	thread_self = t;
	pthread_setspecific(thread_key, t);
	errno = saved;
	return t;
}

void thread_wake_writer(void)
{
	writer_wake();
}

/* Whether a thread with `out` blocks queued waits, all threads having `all` queued. */
static inline bool thread_queue_full(unsigned out, unsigned all)
{
	return out > THREAD_MAX_OUTSTANDING || (out > 1 && all > THREAD_MAX_QUEUED);
}

size_t thread_queued_peak_bytes(void)
{
	return (size_t)atomic_load_explicit(&thread_queued_peak, memory_order_relaxed) * sizeof(thread_block_t);
}

bool thread_block_full(mp_thread_t *t)
{
	int saved = errno;
	bool took = false;
	mp_guard_enter();
	thread_block_t *nb = thread_block_new();
	if (!nb) {
		/* keep going in the same block: count the overwritten events as dropped */
		atomic_fetch_add(&thread_dropped, t->n);
		t->n = 0;
		mp_fail("out of memory for event buffers");
		errno = saved;
		mp_unguard();
		return false;
	}
	atomic_store_explicit(&t->cur->count, t->n, memory_order_relaxed);
	unsigned out = atomic_fetch_add_explicit(&t->outstanding, 1, memory_order_relaxed) + 1;
	unsigned all = atomic_fetch_add_explicit(&thread_queued, 1, memory_order_relaxed) + 1;
	for (unsigned peak = atomic_load_explicit(&thread_queued_peak, memory_order_relaxed); all > peak;)
		if (atomic_compare_exchange_weak_explicit(&thread_queued_peak, &peak, all, memory_order_relaxed,
							  memory_order_relaxed))
			break;
	atomic_store_explicit(&t->cur->next, nb, memory_order_release);
	t->cur = nb;
	t->n = 0;
	/* Waking the writer is a system call that costs the program more than the writer
	 * needs: let a few blocks gather first (the writer's timer takes the rest). */
	if (out >= THREAD_WAKE_AT)
		writer_wake();
	/* Back-pressure: let the writer catch up rather than drop or grow without bound.
	 * But the writer may be waiting for something this thread holds (the loader's lock,
	 * while the program allocates inside a dl_iterate_phdr callback): when it consumes
	 * nothing for about 500 ms, stop waiting and queue more blocks, and wait again only
	 * once it has made progress. Nothing is dropped either way. */
	unsigned long progress = atomic_load_explicit(&thread_released, memory_order_relaxed);
	if (thread_queue_full(out, all) && progress != t->stuck_at && !record_stash_draining()) {
		uint64_t stall_at = clock_mono_ns() + THREAD_STALL_MS * 1000000ull;
		atomic_store(&t->waiting, 1); /* before outstanding is read again (thread_block_release) */
		if (out < THREAD_WAKE_AT)
			writer_wake();
		for (;;) {
			/* (a signal handler's events, stashed meanwhile: a signal also ends the wait).
			 * A mapping it made waits for the table of mappings' lock, which this thread
			 * may hold (it records one of its own): then it stops waiting, rather than
			 * let handlers fill the stash. (Until session 32 it waited on: with the
			 * writer at nice 19 beside a busy process on one CPU, a loop of mmap calls
			 * under a handler that maps memory 40 times a millisecond lost 2,896 to
			 * 29,616 events in 3 runs of 4, 0 in 8 runs since. Not a test: such
			 * starvation also loses events in other ways, now and then; record.c.) */
			if (mp_unlikely(record_stash_pending())) {
				took |= record_stash_take();
				if (record_stash_pending())
					break;
			}
			out = atomic_load(&t->outstanding);
			all = atomic_load_explicit(&thread_queued, memory_order_relaxed);
			if (!thread_queue_full(out, all) || !writer_alive())
				break;
			struct timespec ts = {0, THREAD_WAIT_MS * 1000000L};
			syscall(SYS_futex, &t->outstanding, FUTEX_WAIT_PRIVATE, out, &ts, NULL, 0);
			unsigned long now = atomic_load_explicit(&thread_released, memory_order_relaxed);
			if (now != progress) {
				progress = now;
				stall_at = clock_mono_ns() + THREAD_STALL_MS * 1000000ull;
			} else if (clock_mono_ns() >= stall_at) {
				t->stuck_at = now;
				break;
			}
		}
		atomic_store(&t->waiting, 0);
	}
	errno = saved;
	mp_unguard();
	return took;
}

bool thread_prefetchw;

int thread_init(void)
{
#if defined(__x86_64__)
	thread_prefetchw = cpu_flag(cpu_info(), "3dnowprefetch"); /* the kernel's name for PRFCHW */
#endif
	return pthread_key_create(&thread_key, thread_exit) ? -1 : 0;
}

void thread_foreach(void (*fn)(mp_thread_t *, void *), void *arg)
{
	pthread_mutex_lock(&thread_lock);
	for (mp_thread_t *t = thread_all; t; t = t->next_all)
		fn(t, arg);
	pthread_mutex_unlock(&thread_lock);
}

void thread_reap(void (*before_free)(mp_thread_t *))
{
	pthread_mutex_lock(&thread_lock);
	mp_thread_t **pp = &thread_all;
	while (*pp) {
		mp_thread_t *t = *pp;
		if (atomic_load_explicit(&t->exited, memory_order_acquire) &&
		    !atomic_load_explicit(&t->rd->next, memory_order_acquire) &&
		    t->rd_pos == atomic_load_explicit(&t->rd->count, memory_order_acquire)) {
			*pp = t->next_all;
			before_free(t);
			thread_block_release(NULL, t->rd);
			stack_cache_free(t->cache);
			mem_free(t->py);
			unwind_cache_free(t->unwind);
			mem_free(t);
			continue;
		}
		pp = &t->next_all;
	}
	pthread_mutex_unlock(&thread_lock);
}

void thread_fork_prepare(void)
{
	pthread_mutex_lock(&thread_lock);
	pthread_mutex_lock(&thread_pool_lock);
}

void thread_fork_parent(void)
{
	pthread_mutex_unlock(&thread_pool_lock);
	pthread_mutex_unlock(&thread_lock);
}

bool thread_none(void)
{
	pthread_mutex_lock(&thread_lock);
	bool none = thread_next_id == 1;
	pthread_mutex_unlock(&thread_lock);
	return none;
}

void thread_fork_child(void)
{
	pthread_mutex_init(&thread_pool_lock, NULL);
	pthread_mutex_init(&thread_lock, NULL);
	/* The parent's states and blocks are the parent's to write. Their memory is
	 * left alone (a few blocks); the child starts with no thread state at all. */
	thread_all = NULL;
	thread_n_spares = 0; /* the caches kept name the parent's stack nodes */
	thread_next_id = 1;
	atomic_store(&thread_queued, 0);
	atomic_store(&thread_queued_peak, 0);
	thread_self = &thread_empty;
	pthread_setspecific(thread_key, NULL);
}
