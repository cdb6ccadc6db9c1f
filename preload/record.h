/* The core every hook calls: stamp, capture the stack, append the event. The hooks
 * (hooks_libc.c, hooks_pymem.c) are thin wrappers that call the real function and then
 * one of these, or, for a free, one of these first. Callers check mp_should_record(). */
#ifndef MEMPROF_PRELOAD_RECORD_H
#define MEMPROF_PRELOAD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "mp.h"
#include "thread.h"

#include <memprof/format.h>

extern unsigned record_max_depth;
extern bool record_native;
/* MEMPROF_SAMPLE_BYTES: 0 = every allocation; N = sampling, mean one sample per N bytes. */
extern uint64_t record_sample_bytes;
int record_sampling_init(void);

/* The calling thread's alternate signal stack as it last set it with sigaltstack
 * (hooks_libc.c; size 0: none). libunwind, memprof's fallback unwinder, needs several KiB
 * of stack besides its 4 KiB of frames: on an alternate stack smaller than
 * RECORD_ALTSTACK_UNWIND (a crash handler's SIGSTKSZ, 8 KiB) it is not run, and the
 * native frames are recorded as not recorded (the truncation marker). */
extern __thread uintptr_t record_altstack_lo MP_TLS;
extern __thread size_t record_altstack_size MP_TLS;
#define RECORD_ALTSTACK_UNWIND (64u << 10)
static inline bool record_on_small_altstack(void)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return mp_unlikely(record_altstack_size) && record_altstack_size < RECORD_ALTSTACK_UNWIND &&
	       sp - record_altstack_lo < record_altstack_size;
}

/* Sampling mode's fast paths, inlined into the hooks. */
/* The addresses of sampled live blocks: buckets of 8 slots, a bucket one cache line; a
 * block whose bucket is full spills into a hash set under a mutex (record.c). The
 * number of buckets grows with the live memory the table can hold without spilling, 4
 * GiB (2^32 / N sampled blocks), from 1,024 to 32,768 (2 MiB, touched as used). Each
 * bucket has two counts (an array of its own, which stays in cache): its live entries,
 * spilled ones included, and its spilled entries. A free whose bucket has no live entry
 * is answered without a look at the bucket; one not in its bucket's slots, from the
 * spill count. Both counts are incremented before an entry is stored and decremented
 * after it is removed, and a block's allocation happens before its free: a count of 0
 * is never wrong about the block being freed. */
#define RECORD_SAMPLE_WAYS 8u
typedef struct record_sample_count {
	_Atomic uint32_t live;
	_Atomic uint32_t spilled;
} record_sample_count_t;
extern _Atomic uint64_t *record_sample_slots;
extern record_sample_count_t *record_sample_counts;
extern unsigned record_sample_shift; /* 64 - log2(buckets) */

static inline size_t record_sample_index(const void *p)
{
	/* blocks' addresses have long runs of equal low bits and regular strides (mmap'd
	 * blocks a few pages apart): mixed before their top bits are taken */
	uint64_t h = (uint64_t)(uintptr_t)p;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)((h * 0x9E3779B97F4A7C15ull) >> record_sample_shift);
}

static inline _Atomic uint64_t *record_sample_bucket(size_t i)
{
	return &record_sample_slots[i * RECORD_SAMPLE_WAYS];
}

/* Sampling mode: the bytes the calling thread may still allocate before its next sample
 * (0: none drawn yet). A variable of its own, not a field of the thread's state, so that
 * the countdown of the hooks' fast paths is one load from the thread pointer. */
extern __thread uint64_t record_sample_left MP_TLS;

/* In sampling mode: true when the allocation is certainly not sampled (just counted
 * down). */
static inline bool record_skip_alloc_sampling(size_t size)
{
	uint64_t left = record_sample_left;
	if (mp_likely(left > size)) {
		record_sample_left = left - size;
		return true;
	}
	return false;
}

/* True when the allocation is certainly not sampled (in sampling mode, just counted
 * down). */
static inline bool record_skip_alloc(size_t size)
{
	return mp_unlikely(record_sample_bytes) && record_skip_alloc_sampling(size);
}

/* True when the block is certainly not a sampled one: its bucket has no live entry, or
 * it is not in its bucket's slots and none of the bucket's entries spilled. */
static inline bool record_skip_free(const void *p)
{
	if (mp_likely(!record_sample_bytes))
		return false;
	size_t i = record_sample_index(p);
	record_sample_count_t *c = &record_sample_counts[i];
	if (mp_likely(!atomic_load_explicit(&c->live, memory_order_relaxed)))
		return true;
	_Atomic uint64_t *b = record_sample_bucket(i);
	uint64_t a = (uint64_t)(uintptr_t)p;
	for (unsigned w = 0; w < RECORD_SAMPLE_WAYS; w++)
		if (atomic_load_explicit(&b[w], memory_order_relaxed) == a)
			return false;
	return !atomic_load_explicit(&c->spilled, memory_order_relaxed);
}

/* pymalloc's limit: larger requests of the MEM and OBJ domains go to the RAW domain. */
#define RECORD_SMALL_REQUEST 512

/* Where the hook was called from, for memprof's own unwinder in native and mixed mode
 * (unwind.h): the return address into its caller and the hook's frame address (asking
 * for it gives the hook a frame pointer: the caller's rbp at [fp], the return address at
 * [fp + 8]). Taken in the hook itself: in whatever function the two builtins end up in
 * after inlining, they describe that one frame. */
#if defined(__x86_64__)
#define RECORD_CALLER (uintptr_t) __builtin_return_address(0), (uintptr_t)__builtin_frame_address(0)
#else
#define RECORD_CALLER (uintptr_t)0, (uintptr_t)0
#endif

void record_alloc(void *p, size_t size, int allocator, uintptr_t ra, uintptr_t fp);
/* Python stacks alone (no native frames), exact mode: python_alloc_gil (python.h) takes
 * the small allocations of the domains that hold the GIL. */
extern bool record_gil_lean;
/* A free stamped at `ts` (taken before the real free ran), or RECORD_TS_GIL for a free
 * made with the GIL held (PyMem MEM/OBJ domains). */
#define RECORD_TS_GIL 0
/* A free stamped inside record_free (after the sampling check, before the real free). */
#define RECORD_TS_NOW 1
void record_free(void *p, uint64_t ts);

/* GIL events reuse the thread's newest stamp while the same thread makes them, for at
 * most RECORD_STAMP_REUSE events and until the sampler's next tick (record.c explains
 * why that is safe). */
#define RECORD_STAMP_REUSE 32
/* id of the thread that made the last GIL event; 0 after record_gil_stamp_expire */
extern _Atomic uint32_t record_gil_last;
/* The sampler's tick (every MEMPROF_INTERVAL_MS): the next GIL event takes a fresh stamp. */
void record_gil_stamp_expire(void);

/* A fresh stamp: the thread's newest from now on. */
static inline uint64_t record_fresh(mp_thread_t *t, uint64_t ts)
{
	t->stamp = ts;
	t->stamp_uses = 0;
	return ts;
}

/* Whether a GIL event of the thread may reuse its newest stamp: it made the last GIL
 * event, and has reused the stamp fewer than RECORD_STAMP_REUSE - 1 times. */
static inline bool record_gil_stamp_reusable(const mp_thread_t *t)
{
	return atomic_load_explicit(&record_gil_last, memory_order_relaxed) == t->id &&
	       t->stamp_uses + 1 < RECORD_STAMP_REUSE;
}

/* The stash appended before the thread takes a fresh stamp for the event it is about to
 * append, when a signal handler ran over memprof since the thread entered it (the
 * guard's MP_GUARD_PENDING): the handler's events happened before that stamp. Appended
 * at the guard's end instead, they went in after the event, stamped as late as it (the
 * stream's stamps never decrease): later than what other threads did meanwhile, such as
 * mapping the addresses the handler unmapped (test_signals
 * test_replayed_mapping_reused). The caller holds mp_guard and is between two events. */
void record_stash_take_early(void);

static inline void record_stash_before_stamp(void)
{
	if (mp_unlikely(mp_guard < 0))
		record_stash_take_early();
}

/* The stamp of an event made with the GIL held. */
static inline uint64_t record_gil_stamp(mp_thread_t *t)
{
	if (mp_unlikely(!record_gil_stamp_reusable(t))) {
		record_stash_before_stamp();
		atomic_store_explicit(&record_gil_last, t->id, memory_order_relaxed);
		return record_fresh(t, clock_now());
	}
	t->stamp_uses++;
	return t->stamp;
}

/* Appends one event to the thread's block and publishes it to the writer. */
static inline void record_put(mp_thread_t *t, uint64_t ts, const void *p, uint64_t size, uint32_t stack, int kind,
			      int allocator)
{
	thread_append(t, ts, (uint64_t)(uintptr_t)p, size, stack, (unsigned)kind, (unsigned)allocator);
	thread_publish(t);
}

/* record_put for an event made with the GIL held, stamped by record_gil_stamp's rule.
 * record_put_reused, when the stamp may be reused: the stamp reused is the one the
 * thread's last event carried (every stamp taken is put in the thread's stream at once:
 * record_fresh's callers append the event they took it for), so the event is appended
 * without a look at the timestamp. */
static inline void record_put_reused(mp_thread_t *t, const void *p, uint64_t size, uint32_t stack, int kind,
				     int allocator)
{
	t->stamp_uses++;
	thread_append_as(t, true, 0, (uint64_t)(uintptr_t)p, size, stack, (unsigned)kind, (unsigned)allocator);
	thread_publish(t);
}

static inline __attribute__((always_inline)) void record_put_gil(mp_thread_t *t, const void *p, uint64_t size,
								   uint32_t stack, int kind, int allocator)
{
	if (mp_likely(record_gil_stamp_reusable(t)))
		record_put_reused(t, p, size, stack, kind, allocator);
	else
		record_put(t, record_gil_stamp(t), p, size, stack, kind, allocator);
}

/* record_free(p, RECORD_TS_GIL) in exact mode, inline once the thread's state exists (a
 * free is a third of what a Python program's thread records, and a call around it cost
 * as much as the rest). The caller holds mp_guard (so does record_free_gil_quick's): a
 * signal handler's allocation must not be appended while this event is half written. */
static inline void record_free_gil(void *p)
{
	mp_thread_t *t = thread_self;
	if (mp_likely(!record_sample_bytes && t->cap)) {
		record_put_gil(t, p, 0, 0, MP_EV_FREE, 0);
		return;
	}
	record_free(p, RECORD_TS_GIL);
}
/* record_free_gil's commonest case, with no call on its path (exact mode, the thread's
 * stamp reused, room in its block; n < cap is false for a thread without state, whose
 * cap is 0): true when the free is recorded; false, and nothing done, for the rest,
 * which record_free_gil takes. `exact`: the caller runs only in exact mode (no need to
 * ask). */
static inline __attribute__((always_inline)) bool record_free_gil_quick(void *p, bool exact)
{
	mp_thread_t *t = thread_self;
	if (mp_unlikely((!exact && record_sample_bytes) || t->n >= t->cap || !record_gil_stamp_reusable(t)))
		return false;
	record_put_reused(t, p, 0, 0, MP_EV_FREE, 0);
	return true;
}
/* Sampling mode: true (and forgotten) if p is a sampled live block. */
bool record_sample_forget(const void *p);
/* A realloc, in two steps around the real one. Before it: in sampling mode, whether old
 * is a sampled block, forgotten before the real realloc releases it (after, another
 * thread may have been given the address and sampled it already: its entry was
 * forgotten in place of old's, and its free never seen). After it (p its result, `freed`
 * when it freed old without a new block, realloc(old, 0)): the free of old stamped at
 * ts_free (in sampling mode only if it was sampled, and remembered again if the realloc
 * failed), then p's allocation. */
static inline bool record_realloc_begin(void *old)
{
	return mp_unlikely(record_sample_bytes) && old && record_sample_forget(old);
}
void record_realloc_done(bool taken, void *old, uint64_t ts_free, void *p, size_t size, bool freed, int allocator,
			 uintptr_t ra, uintptr_t fp);
/* Mapped memory (hooks_mmap.c), recorded exactly in sampling mode too. The stack of a
 * mapping about to be made, or RECORD_NO_STACK when nothing can be recorded (no thread
 * state); then its allocation, stamped `ts` (taken after the system call; a signal
 * handler's mapping, replayed from the stash, at the stamp it was given there). The
 * caller holds mp_guard. */
#define RECORD_NO_STACK UINT32_MAX
uint32_t record_mapping_stack(int allocator, uintptr_t ra, uintptr_t fp);
bool record_mapping_put(void *p, size_t size, uint32_t stack, int allocator, uint64_t ts);
/* A mapping cut (munmap, mremap or mmap with MAP_FIXED over it) at `ts`, stamped before
 * the system call: the free of its block at `key`, then, if `rest` bytes are left, the
 * block at `rest_key` (format.h, MP_AL_MMAP_REST). The caller holds mp_guard. */
void record_mapping_cut(uint64_t ts, uint64_t key, uint64_t rest_key, uint64_t rest, uint32_t stack);
/* The Python main program finished ("end of program"); `restart`: Python was initialized
 * again after such an end (a program that embeds it), which is then not the end. */
void record_end(bool restart);
/* What a program's signal handler does while its thread is inside memprof (mp.h,
 * MP_GUARD_HANDLER), kept in the thread's stash until the interrupted code leaves memprof
 * (record.c). The stash is the OS thread's, mapped at its first use: a thread without
 * memprof's state (its first allocation being set up, or its state already taken down
 * at its exit) can be inside memprof too. */
enum { RECORD_STASH_ALLOC, RECORD_STASH_FREE, RECORD_STASH_MAP, RECORD_STASH_UNMAP };
/* The handler allocated, freed, mapped or unmapped (RECORD_STASH_*) at `ts`: stashed, and
 * appended once the thread leaves memprof (mp_guard_settle). */
void record_stash(unsigned what, const void *addr, uint64_t size, int allocator, uint64_t ts);
/* The thread's stash holds events. */
bool record_stash_pending(void);
/* The thread is appending its stash (no waiting for the writer meanwhile). */
bool record_stash_draining(void);
/* The stash appended while the thread waits inside memprof (thread_block_full): true if
 * anything was. Left in the stash (record_stash_pending still true) while the thread
 * holds the table of mappings' lock and the stash holds a mapping. */
bool record_stash_take(void);
/* The stash appended by a thread that holds the table of mappings' lock where the table
 * is whole (hooks_mmap.c), before it records its own mapping call: a handler that ran
 * during that system call made its mappings before it, and their addresses may be the
 * ones the call gets (or, for an unmapping, ones the kernel reuses for the handler's).
 * Replayed once the thread left memprof, they came after its own events in the stream,
 * stamped as late (the stream's stamps never decrease): an address two blocks at once. */
void record_stash_take_mapping(void);
/* At the thread's exit: its stash unmapped (events still in it, the thread ending inside
 * a handler that ran over memprof, counted as dropped). */
void record_stash_release(void);

/* The end of an allocation hook, p the real allocator's block (not NULL): recorded, or,
 * from a handler running over memprof, stashed. `ra` and `fp`: RECORD_CALLER. */
static inline __attribute__((always_inline)) void record_allocated(void *p, size_t size, int allocator, uintptr_t ra,
								   uintptr_t fp)
{
	if (mp_should_record()) {
		if (!record_skip_alloc(size))
			record_alloc(p, size, allocator, ra, fp);
	} else if (mp_in_handler()) {
		record_stash(RECORD_STASH_ALLOC, p, size, allocator, clock_after());
	}
}

/* Before a free hook's real free, when it records nothing (mp_should_record false): from a
 * handler running over memprof, the free is stashed. */
static inline void record_free_unrecorded(void *p)
{
	if (mp_in_handler() && p)
		record_stash(RECORD_STASH_FREE, p, 0, 0, clock_now());
}

/* Fork: the prepare handler takes the lock of the sampled blocks' spill set. */
void record_fork_prepare(void);
void record_fork_parent(void);
/* In a forked child: no GIL event was made yet (thread ids start again at 1); the spill
 * set's lock is free. */
void record_fork_child(void);

#endif
