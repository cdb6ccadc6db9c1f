/* Per-thread state and the event hand-off to the writer.
 *
 * Each thread appends events to its current block; a full block is sealed (linked to
 * the next with a release store) and the writer is woken. The writer also reads a
 * thread's current block up to its published count on its timer, so idle threads'
 * events reach the file within a flush interval. This is a single-producer,
 * single-consumer queue of blocks per thread: no lock on the fast path. Blocks come
 * from a global free pool (mutex, once per block). A thread with too many unconsumed
 * blocks waits for the writer (back-pressure: exact mode never drops). */
#ifndef MEMPROF_PRELOAD_THREAD_H
#define MEMPROF_PRELOAD_THREAD_H

#include "mp.h"
#include "stack.h"

#include <memprof/format.h>
#include <sys/types.h>

#define THREAD_BLOCK_EVENTS 2048

typedef struct thread_block {
	_Atomic(struct thread_block *) next;
	atomic_uint count;
	mp_event_t ev[THREAD_BLOCK_EVENTS];
} thread_block_t;

typedef struct mp_thread {
	/* producer side: touched by the owning thread on every event */
	thread_block_t *cur;
	uint32_t n;
	uint32_t cap; /* 0 in the static empty state: the first event takes the slow path */
	stack_cache_t *cache;
	void *py; /* python.c's per-thread cache, created on first use */
	uint32_t id;
	pid_t tid;
	uint64_t stamp;       /* the thread's newest timestamp (record.c) */
	uint32_t stamp_uses;
	int64_t sample_left; /* sampling mode: bytes until the next sample (0: not drawn) */
	uint64_t rng;
	_Alignas(64) atomic_uint outstanding; /* sealed blocks not yet consumed */
	atomic_int exited;
	/* consumer side: the writer only */
	_Alignas(64) thread_block_t *rd;
	uint32_t rd_pos;
	void *writer_data;
	struct mp_thread *next_all;
} mp_thread_t;

extern __thread mp_thread_t *thread_self MP_TLS;

/* Creates the calling thread's state (first event, or first after its exit handler). */
mp_thread_t *thread_attach(void);

static inline mp_thread_t *thread_get(void)
{
	mp_thread_t *t = thread_self;
	if (mp_unlikely(t->cap == 0))
		t = thread_attach();
	return t;
}

/* Seals the full block and starts a new one; may wait for the writer. */
void thread_block_full(mp_thread_t *t);

/* Appends an event to the calling thread's buffer. */
static inline mp_event_t *thread_append(mp_thread_t *t)
{
	if (mp_unlikely(t->n == t->cap))
		thread_block_full(t);
	return &t->cur->ev[t->n++];
}

static inline void thread_publish(mp_thread_t *t)
{
	atomic_store_explicit(&t->cur->count, t->n, memory_order_release);
}

int thread_init(void);
/* Registry walk for the writer: calls fn for every thread state (lock held). */
void thread_foreach(void (*fn)(mp_thread_t *, void *), void *arg);
/* Unlinks and frees states of exited threads whose events are all consumed. */
void thread_reap(void (*before_free)(mp_thread_t *));
/* Returns a consumed block to the pool. */
void thread_block_release(mp_thread_t *t, thread_block_t *b);
/* Events dropped because recording could not go on (writer gone). */
extern atomic_ulong thread_dropped;
/* Wakes the writer. */
void thread_wake_writer(void);
/* Fork: the prepare handler takes the registry and pool locks (in that order). */
void thread_fork_prepare(void);
void thread_fork_parent(void);
/* In the child: forget every state of the parent (their events are the parent's). */
void thread_fork_child(void);

#endif
