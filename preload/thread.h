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

/* Events cross to the writer as 8-byte words, 1-5 per event (8 bytes for a free and 16
 * for an allocation that reuse the thread's previous timestamp, which most Python events
 * do): fewer bytes crossing between cores than a fixed 32-byte record, which costs the
 * program's thread more than the encoding does.
 *   word A: bits 0-55 address; 56-57 kind (MP_EV_*); 58 a timestamp word follows;
 *           59 wide; 60-63 allocator (ALLOC).
 *   [timestamp]  when it differs from the thread's previous event's
 *   [address]    wide only (an address of 2^56 or more; A's address bits are 0)
 *   ALLOC: word B: bits 0-31 stack, 32-63 size; wide: size 0 there and [size] follows. */
#define THREAD_BLOCK_WORDS 8192 /* 64 KiB */
#define THREAD_EVENT_MAX_WORDS 5
#define THREAD_W_ADDR_MASK ((1ull << 56) - 1)
#define THREAD_W_KIND_SHIFT 56
#define THREAD_W_TS (1ull << 58)
#define THREAD_W_WIDE (1ull << 59)
#define THREAD_W_ALLOC_SHIFT 60

/* Each event asks for the cache line THREAD_PREFETCH_WORDS words ahead of it with
 * PREFETCHW (where the CPU has it: thread_prefetchw). A block comes back to the pool
 * after the writer has read it, so its lines are in the writer's core's cache, and the
 * program's first store to each line had to take it back from there: on this project's
 * 2-core VM that cost py_threads (4 threads, 53 million events) about 0.8 s of its 2 s,
 * and asking for the lines ahead in the state a write needs took it off the program's
 * path (2.10 -> 1.32 s, medians of 6; a prefetch for reading, PREFETCHT0, gained
 * nothing: the store still had to take the line from the writer's core). */
#define THREAD_PREFETCH_WORDS 64
extern bool thread_prefetchw;

typedef struct thread_block {
	_Atomic(struct thread_block *) next;
	atomic_uint count; /* words published */
	_Alignas(64) uint64_t w[THREAD_BLOCK_WORDS];
	uint64_t prefetched_past_end[THREAD_PREFETCH_WORDS]; /* never written or read */
} thread_block_t;

typedef struct mp_thread {
	/* producer side: touched by the owning thread on every event */
	thread_block_t *cur;
	uint32_t n;   /* words used in cur */
	uint32_t cap; /* last word index an event may start at; 0 in the static empty state:
		       * the first event takes the slow path */
	uint64_t wts; /* timestamp of the thread's last event in the word stream */
	stack_cache_t *cache;
	void *py; /* python.c's per-thread cache, created on first use */
	struct unwind_cache *unwind; /* unwind.c's chain cache (native and mixed mode), or NULL */
	uint32_t id;
	pid_t tid;
	uint64_t stamp;       /* the thread's newest timestamp (record.c) */
	uint32_t stamp_uses;
	unsigned long stuck_at; /* the writer's progress when this thread last gave up waiting */
	uint64_t rng;
	_Alignas(64) atomic_uint outstanding; /* sealed blocks not yet consumed (a futex word) */
	atomic_int waiting;                   /* the thread waits for outstanding to drop */
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

/* Seals the full block and starts a new one; may wait for the writer. True when events
 * of the thread's signal handlers went into the stream meanwhile (record.h,
 * record_stash_take): the event being appended is then stamped no earlier than them. */
bool thread_block_full(mp_thread_t *t);

/* Appends one event to the calling thread's buffer (publish it with thread_publish).
 * `same`: the caller knows that ts is the timestamp of the thread's last event (so none
 * is written, and ts is not read). */
static inline void thread_append_as(mp_thread_t *t, bool same, uint64_t ts, uint64_t addr, uint64_t size,
				    uint32_t stack, unsigned kind, unsigned allocator)
{
	if (mp_unlikely(t->n > t->cap) && thread_block_full(t) && ts < t->wts)
		ts = t->wts;
	uint64_t *w = &t->cur->w[t->n];
#if defined(__x86_64__)
	if (mp_likely(thread_prefetchw))
		__asm__ volatile("prefetchw %0" : : "m"(w[THREAD_PREFETCH_WORDS]));
#endif
	bool wide = (addr & ~THREAD_W_ADDR_MASK) || (size >> 32);
	uint64_t a = (wide ? THREAD_W_WIDE : addr) | (uint64_t)kind << THREAD_W_KIND_SHIFT |
		     (uint64_t)allocator << THREAD_W_ALLOC_SHIFT;
	unsigned k = 1;
	if (!same && ts != t->wts) {
		a |= THREAD_W_TS;
		w[k++] = ts;
		t->wts = ts;
	}
	w[0] = a;
	if (mp_unlikely(wide))
		w[k++] = addr;
	if (kind == MP_EV_ALLOC) {
		w[k++] = stack | (wide ? 0 : size << 32);
		if (mp_unlikely(wide))
			w[k++] = size;
	}
	t->n += k;
}

static inline void thread_append(mp_thread_t *t, uint64_t ts, uint64_t addr, uint64_t size, uint32_t stack,
				 unsigned kind, unsigned allocator)
{
	thread_append_as(t, false, ts, addr, size, stack, kind, allocator);
}

/* Reads the event at w (the writer); *ts carries the thread's timestamp from event to
 * event. Returns the number of words it took. */
static inline unsigned thread_decode(const uint64_t *w, uint64_t *ts, mp_event_t *e)
{
	uint64_t a = w[0];
	unsigned k = 1;
	if (a & THREAD_W_TS)
		*ts = w[k++];
	e->ts = *ts;
	e->kind = (uint8_t)((a >> THREAD_W_KIND_SHIFT) & 3);
	e->allocator = (uint8_t)(a >> THREAD_W_ALLOC_SHIFT);
	e->pad = 0;
	e->addr = a & THREAD_W_ADDR_MASK;
	if (a & THREAD_W_WIDE)
		e->addr = w[k++];
	e->size = 0;
	e->stack = 0;
	if (e->kind == MP_EV_ALLOC) {
		uint64_t b = w[k++];
		e->stack = (uint32_t)b;
		e->size = (a & THREAD_W_WIDE) ? w[k++] : b >> 32;
	} else {
		e->allocator = 0;
	}
	return k;
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
/* Returns a consumed block to the pool (and wakes its thread if it waits). */
void thread_block_release(mp_thread_t *t, thread_block_t *b);
/* The most memory the blocks queued for the writer (sealed, not yet consumed) held at
 * once, all threads together. */
size_t thread_queued_peak_bytes(void);
/* Events dropped because recording could not go on (writer gone). */
extern atomic_ulong thread_dropped;
/* Wakes the writer. */
void thread_wake_writer(void);
/* Fork: the prepare handler takes the registry and pool locks (in that order). */
void thread_fork_prepare(void);
void thread_fork_parent(void);
/* In the child: forget every state of the parent (their events are the parent's). */
void thread_fork_child(void);
/* Whether no thread has had a state since the process started (or forked): nothing was
 * recorded. (The states of threads that ended are reaped, so the registry alone does
 * not tell.) */
bool thread_none(void);

#endif
