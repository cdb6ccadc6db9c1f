/* The recording core (see record.h). Runs on the program's threads: no locks on the
 * common path, no allocation from the hooked allocator, errno preserved. */
#include "record.h"
#include "clock.h"
#include "mp.h"
#include "native.h"
#include "python.h"
#include "thread.h"

#include <errno.h>
#include <memprof/format.h>

unsigned record_max_depth = 64;

/* Timestamps. Reading the TSC costs 10-20 ns here, as much as the rest of the hook, so
 * events made with the GIL held (PyMem MEM/OBJ) reuse the thread's newest stamp: the GIL
 * orders them, and a thread takes a fresh stamp whenever another thread made the
 * previous GIL event (so a thread that takes the GIL over always stamps later than the
 * one it took it from) and at least every RECORD_STAMP_REUSE events (the time axis stays
 * within microseconds). Blocks over 512 bytes come from malloc, which threads without
 * the GIL share, so their allocations are always stamped fresh; an early stamp is
 * always safe for a free. Every fresh stamp updates the thread's newest stamp, so each
 * thread's stamps never decrease. */
#define RECORD_STAMP_REUSE 32
#define RECORD_SMALL_REQUEST 512
static uint32_t record_gil_last; /* id of the thread that made the last GIL event */

static inline uint64_t record_fresh(mp_thread_t *t, uint64_t ts)
{
	t->stamp = ts;
	t->stamp_uses = 0;
	return ts;
}

static inline uint64_t record_gil_stamp(mp_thread_t *t)
{
	if (mp_unlikely(record_gil_last != t->id || ++t->stamp_uses >= RECORD_STAMP_REUSE)) {
		record_gil_last = t->id;
		return record_fresh(t, clock_now());
	}
	return t->stamp;
}

static inline bool record_holds_gil(int allocator)
{
	return allocator == MP_AL_PYMEM_MEM || allocator == MP_AL_PYMEM_OBJ;
}
bool record_native = true;

static uint32_t record_stack(mp_thread_t *t, int allocator)
{
	if (python_active) {
		if (mp_unlikely(!python_scheduled))
			python_maybe_schedule();
		return python_stack(t, allocator == MP_AL_PYMEM_MEM || allocator == MP_AL_PYMEM_OBJ, record_native);
	}
	if (!record_native)
		return 0;
	uint64_t ips[STACK_MAX_FRAMES];
	unsigned n = native_backtrace(ips, record_max_depth);
	for (unsigned i = 0; i < n / 2; i++) {
		uint64_t x = ips[i];
		ips[i] = ips[n - 1 - i];
		ips[n - 1 - i] = x;
	}
	return stack_intern(t->cache, ips, n);
}

void record_alloc(void *p, size_t size, int allocator)
{
	int saved = errno;
	mp_guard++;
	mp_thread_t *t = thread_get();
	if (mp_likely(t->cap)) {
		uint32_t stack = record_stack(t, allocator);
		uint64_t ts = record_holds_gil(allocator) && size <= RECORD_SMALL_REQUEST ? record_gil_stamp(t)
											    : record_fresh(t, clock_after());
		mp_event_t *e = thread_append(t);
		e->ts = ts;
		e->addr = (uint64_t)(uintptr_t)p;
		e->size = size;
		e->stack = stack;
		e->kind = MP_EV_ALLOC;
		e->allocator = (uint8_t)allocator;
		thread_publish(t);
	}
	mp_guard--;
	errno = saved;
}

void record_free(void *p, uint64_t ts)
{
	int saved = errno;
	mp_guard++;
	mp_thread_t *t = thread_get();
	if (mp_likely(t->cap)) {
		ts = ts == RECORD_TS_GIL ? record_gil_stamp(t) : record_fresh(t, ts);
		mp_event_t *e = thread_append(t);
		e->ts = ts;
		e->addr = (uint64_t)(uintptr_t)p;
		e->size = 0;
		e->stack = 0;
		e->kind = MP_EV_FREE;
		e->allocator = 0;
		thread_publish(t);
	}
	mp_guard--;
	errno = saved;
}

void record_realloc(void *old, uint64_t ts_free, void *p, size_t size, int allocator)
{
	if (old)
		record_free(old, ts_free);
	record_alloc(p, size, allocator);
}

void record_end(void)
{
	int saved = errno;
	mp_guard++;
	mp_thread_t *t = thread_get();
	if (t->cap) {
		mp_event_t *e = thread_append(t);
		e->ts = record_fresh(t, clock_after());
		e->addr = 0;
		e->size = 0;
		e->stack = 0;
		e->kind = MP_EV_END;
		e->allocator = 0;
		thread_publish(t);
	}
	mp_guard--;
	errno = saved;
}
