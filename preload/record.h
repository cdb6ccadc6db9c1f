/* The core every hook calls: stamp, capture the stack, append the event. The hooks
 * (hooks_libc.c, hooks_pymem.c) are thin wrappers that call the real function and then
 * one of these, or, for a free, one of these first. Callers check mp_should_record(). */
#ifndef MEMPROF_PRELOAD_RECORD_H
#define MEMPROF_PRELOAD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"
#include "thread.h"

extern unsigned record_max_depth;
extern bool record_native;
/* MEMPROF_SAMPLE_BYTES: 0 = every allocation; N = sampling, mean one sample per N bytes. */
extern uint64_t record_sample_bytes;
int record_sampling_init(void);

/* Sampling mode's fast paths, inlined into the hooks. */
#define RECORD_SAMPLE_SLOTS (1u << 13) /* 64 KiB: stays in cache */
extern _Atomic uint64_t *record_sample_slots;
extern atomic_size_t record_sample_overflow_n;

static inline size_t record_sample_slot(const void *p)
{
	return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 51) & (RECORD_SAMPLE_SLOTS - 1);
}

/* True when the allocation is certainly not sampled (just counted down). */
static inline bool record_skip_alloc(size_t size)
{
	if (mp_likely(!record_sample_bytes))
		return false;
	mp_thread_t *t = thread_self;
	if (mp_likely(t->cap) && t->sample_left > (int64_t)size) {
		t->sample_left -= (int64_t)size;
		return true;
	}
	return false;
}

/* True when the block is certainly not a sampled one. */
static inline bool record_skip_free(const void *p)
{
	if (mp_likely(!record_sample_bytes))
		return false;
	return atomic_load_explicit(&record_sample_slots[record_sample_slot(p)], memory_order_relaxed) !=
		       (uint64_t)(uintptr_t)p &&
	       !atomic_load_explicit(&record_sample_overflow_n, memory_order_relaxed);
}

void record_alloc(void *p, size_t size, int allocator);
/* A free stamped at `ts` (taken before the real free ran), or RECORD_TS_GIL for a free
 * made with the GIL held (PyMem MEM/OBJ domains). */
#define RECORD_TS_GIL 0
/* A free stamped inside record_free (after the sampling check, before the real free). */
#define RECORD_TS_NOW 1
void record_free(void *p, uint64_t ts);
/* A successful realloc: the free of `old` stamped at ts_free, then the new block. */
void record_realloc(void *old, uint64_t ts_free, void *p, size_t size, int allocator);
/* The Python main program finished ("end of program"). */
void record_end(void);

#endif
