/* The recording core (see record.h). Runs on the program's threads: no locks on the
 * common path, no allocation from the hooked allocator, errno preserved (the common path
 * cannot change it; each slow path that calls into libc saves and restores it). */
#include "record.h"
#include "clock.h"
#include "mp.h"
#include "native.h"
#include "python.h"
#include "thread.h"
#include "unwind.h"
#include "u64set.h"
#include "hooks_mmap.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <math.h>
#include "mem.h"

#include <pthread.h>
#include <memprof/format.h>

unsigned record_max_depth = 64;
uint64_t record_sample_bytes;

/* Sampling mode (MEMPROF_SAMPLE_BYTES=N), as jemalloc and tcmalloc do it: each thread
 * counts down the bytes it allocates from an exponentially distributed start (mean N);
 * the allocation that reaches zero is recorded and the countdown drawn again. So an
 * allocation of s bytes is recorded with probability 1 - exp(-s/N), which the analyzer
 * divides by to get unbiased estimates. Frees are recorded only for sampled live blocks,
 * kept in a table of 8-way buckets (record.h), a hash set under a mutex for those whose
 * bucket is full. The common path is a subtraction and a branch for an allocation, a
 * look at one count for a free. */
_Atomic uint64_t *record_sample_slots; /* a sampled live block's address, or 0 */
record_sample_count_t *record_sample_counts;
unsigned record_sample_shift = 64;

/* The spilled blocks' addresses, under the lock. */
static pthread_mutex_t record_sample_lock = PTHREAD_MUTEX_INITIALIZER;
static u64set_t record_spill;

static void record_sample_remember(const void *p)
{
	uint64_t a = (uint64_t)(uintptr_t)p;
	size_t bi = record_sample_index(p);
	_Atomic uint64_t *b = record_sample_bucket(bi);
	record_sample_count_t *c = &record_sample_counts[bi];
	for (unsigned i = 0; i < RECORD_SAMPLE_WAYS; i++)
		if (atomic_load_explicit(&b[i], memory_order_relaxed) == a)
			return; /* already known (its free was not seen) */
	if (atomic_load_explicit(&c->spilled, memory_order_relaxed)) {
		/* known among the spilled ones: not again in a slot freed since (its bucket's
		 * spill count would never come back to 0) */
		pthread_mutex_lock(&record_sample_lock);
		bool known = u64set_has(&record_spill, a);
		pthread_mutex_unlock(&record_sample_lock);
		if (known)
			return;
	}
	atomic_fetch_add(&c->live, 1);
	for (unsigned i = 0; i < RECORD_SAMPLE_WAYS; i++) {
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong(&b[i], &expected, a))
			return;
	}
	pthread_mutex_lock(&record_sample_lock);
	atomic_fetch_add(&c->spilled, 1);
	if (u64set_add(&record_spill, a) != 1) { /* known already, or no memory: that free is not seen */
		atomic_fetch_sub(&c->spilled, 1);
		atomic_fetch_sub(&c->live, 1);
	}
	pthread_mutex_unlock(&record_sample_lock);
}

/* True (and forgotten) if p is a sampled live block. */
bool record_sample_forget(const void *p)
{
	uint64_t a = (uint64_t)(uintptr_t)p;
	size_t bi = record_sample_index(p);
	_Atomic uint64_t *b = record_sample_bucket(bi);
	record_sample_count_t *c = &record_sample_counts[bi];
	for (unsigned i = 0; i < RECORD_SAMPLE_WAYS; i++) {
		uint64_t expected = a;
		if (atomic_load_explicit(&b[i], memory_order_relaxed) == a &&
		    atomic_compare_exchange_strong(&b[i], &expected, 0)) {
			atomic_fetch_sub(&c->live, 1);
			return true;
		}
	}
	if (mp_likely(!atomic_load_explicit(&c->spilled, memory_order_relaxed)))
		return false;
	pthread_mutex_lock(&record_sample_lock);
	bool found = u64set_remove(&record_spill, a);
	if (found) {
		atomic_fetch_sub(&c->spilled, 1);
		atomic_fetch_sub(&c->live, 1);
	}
	pthread_mutex_unlock(&record_sample_lock);
	return found;
}

void record_fork_prepare(void)
{
	pthread_mutex_lock(&record_sample_lock);
}

void record_fork_parent(void)
{
	pthread_mutex_unlock(&record_sample_lock);
}

__thread uint64_t record_sample_left MP_TLS;

static uint64_t record_sample_draw(mp_thread_t *t)
{
	int saved = errno; /* log() may set it */
	if (!t->rng)
		t->rng = (clock_now() ^ ((uint64_t)t->tid << 32)) | 1;
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	double u = ((double)(t->rng >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	double d = -log(u) * (double)record_sample_bytes;
	errno = saved;
	return d > 9e18 ? UINT64_MAX : (uint64_t)d + 1;
}

int record_sampling_init(void)
{
	if (!record_sample_bytes)
		return 0;
	/* room for 4 GiB of live sampled memory before a bucket spills: 2^32 / N blocks,
	 * a bucket for each 4 of them */
	size_t want = (size_t)((1ull << 32) / record_sample_bytes / 4), n = 1024;
	while (n < want && n < 32768)
		n *= 2;
	unsigned bits = 0;
	while ((1ull << bits) < n)
		bits++;
	record_sample_shift = 64 - bits;
	record_sample_slots = mem_alloc(n * RECORD_SAMPLE_WAYS * sizeof *record_sample_slots);
	record_sample_counts = mem_alloc(n * sizeof *record_sample_counts);
	if (!record_sample_slots || !record_sample_counts)
		return -1;
	return 0;
}

/* True if this allocation is to be recorded (always, outside sampling mode). */
static inline bool record_sample_alloc(mp_thread_t *t, const void *p, size_t size)
{
	if (!record_sample_bytes)
		return true;
	uint64_t left = record_sample_left ? record_sample_left : record_sample_draw(t);
	if (left > size) {
		record_sample_left = left - size;
		return false;
	}
	record_sample_left = record_sample_draw(t);
	record_sample_remember(p);
	return true;
}

static inline bool record_sample_free(const void *p)
{
	if (!record_sample_bytes)
		return true;
	return record_sample_forget(p);
}

/* Timestamps. Reading the TSC costs 10-20 ns here, as much as the rest of the hook, so
 * events made with the GIL held (PyMem MEM/OBJ) reuse the thread's newest stamp: the GIL
 * orders them, and a thread takes a fresh stamp whenever another thread made the
 * previous GIL event (so a thread that takes the GIL over always stamps later than the
 * one it took it from), at least every RECORD_STAMP_REUSE events, and at the first GIL
 * event after each tick of the sampler (record_gil_stamp_expire): a program that sleeps
 * or computes without allocating would otherwise stamp its next events (the free of a
 * 64 MiB buffer after a second's sleep) with the time of its last one. So a reused stamp
 * is early by at most one sampler interval, and never crosses an RSS sample taken since
 * it was made. Blocks over 512 bytes come from malloc, which threads without the GIL
 * share, so their allocations are always stamped fresh; an early stamp is always safe
 * for a free's pairing. Every fresh stamp updates the thread's newest stamp, so each
 * thread's stamps never decrease. */
_Atomic uint32_t record_gil_last;

void record_gil_stamp_expire(void)
{
	atomic_store_explicit(&record_gil_last, 0, memory_order_relaxed);
}

static inline bool record_holds_gil(int allocator)
{
	return allocator == MP_AL_PYMEM_MEM || allocator == MP_AL_PYMEM_OBJ;
}
bool record_native = true;

/* libunwind's answer, where memprof's unwinder gave none: its array of frames (2 KiB) in a
 * frame of its own, so that the common path's stays small. A signal handler on an
 * alternate stack of 8 KiB (SIGSTKSZ) that allocates runs through it: with the array in
 * record_alloc's frame (4 KiB in all), memprof's unwinder overflowed such a stack. */
static __attribute__((noinline)) uint32_t record_stack_libunwind(mp_thread_t *t, const unwind_chain_t *ch,
								  uintptr_t ra)
{
	uint64_t ips[STACK_MAX_FRAMES];
	bool cut;
	unsigned n = native_backtrace(ips, record_max_depth, false, NULL, &cut);
	if (mp_unlikely(unwind_check) && ra)
		unwind_check_chain(ch, ips, n, cut);
	return native_intern(t->cache, 0, ips, n, cut);
}

/* Inlined: see native_backtrace. */
static inline __attribute__((always_inline)) uint32_t record_stack(mp_thread_t *t, int allocator, uintptr_t ra,
								 uintptr_t fp)
{
	if (python_active) {
		if (mp_unlikely(!python_scheduled))
			python_maybe_schedule(true);
		return python_stack(t, allocator == MP_AL_PYMEM_MEM || allocator == MP_AL_PYMEM_OBJ, record_native, ra,
				    fp);
	}
	if (!record_native)
		return 0;
	/* memprof's unwinder from its chain cache (unwind.h), else libunwind */
	const unwind_chain_t *ch = NULL;
	if (ra) {
		ch = unwind_chain(t->unwind, ra, fp, 0, 0, record_max_depth);
		if (ch && mp_likely(!unwind_check))
			return unwind_chain_node(ch, t->cache, 0);
	}
	if (record_on_small_altstack())
		return native_intern(t->cache, 0, NULL, 0, true);
	return record_stack_libunwind(t, ch, ra);
}

void record_alloc(void *p, size_t size, int allocator, uintptr_t ra, uintptr_t fp)
{
	mp_guard_enter();
	mp_thread_t *t = thread_get();
	if (mp_likely(t->cap) && record_sample_alloc(t, p, size)) {
		uint32_t stack = record_stack(t, allocator, ra, fp);
		uint64_t ts;
		if (record_holds_gil(allocator) && size <= RECORD_SMALL_REQUEST) {
			ts = record_gil_stamp(t);
		} else {
			record_stash_before_stamp();
			ts = record_fresh(t, clock_after());
		}
		record_put(t, ts, p, size, stack, MP_EV_ALLOC, allocator);
	}
	mp_unguard();
}

bool record_gil_lean;

static void record_free_event(void *p, uint64_t ts)
{
	if (ts == RECORD_TS_NOW)
		ts = clock_now();
	mp_guard_enter();
	mp_thread_t *t = thread_get();
	if (mp_likely(t->cap)) {
		ts = ts == RECORD_TS_GIL ? record_gil_stamp(t) : record_fresh(t, ts);
		record_put(t, ts, p, 0, 0, MP_EV_FREE, 0);
	}
	mp_unguard();
}

void record_free(void *p, uint64_t ts)
{
	if (record_sample_free(p))
		record_free_event(p, ts);
}

void record_realloc_done(bool taken, void *old, uint64_t ts_free, void *p, size_t size, bool freed, int allocator,
			 uintptr_t ra, uintptr_t fp)
{
	if (!p && !freed) { /* failed: old is as it was */
		if (taken)
			record_sample_remember(old);
		return;
	}
	if (old && (taken || !record_sample_bytes))
		record_free_event(old, ts_free);
	if (p)
		record_alloc(p, size, allocator, ra, fp);
}

uint32_t record_mapping_stack(int allocator, uintptr_t ra, uintptr_t fp)
{
	mp_thread_t *t = thread_get();
	return t->cap ? record_stack(t, allocator, ra, fp) : RECORD_NO_STACK;
}

bool record_mapping_put(void *p, size_t size, uint32_t stack, int allocator, uint64_t ts)
{
	mp_thread_t *t = thread_get();
	if (!t->cap)
		return false;
	record_put(t, record_fresh(t, ts), p, size, stack, MP_EV_ALLOC, allocator);
	return true;
}

void record_mapping_cut(uint64_t ts, uint64_t key, uint64_t rest_key, uint64_t rest, uint32_t stack)
{
	mp_thread_t *t = thread_get();
	if (!t->cap)
		return;
	record_put(t, record_fresh(t, ts), (void *)(uintptr_t)key, 0, 0, MP_EV_FREE, 0);
	if (rest)
		record_put(t, ts, (void *)(uintptr_t)rest_key, rest, stack, MP_EV_ALLOC, MP_AL_MMAP_REST);
}

/* ---- a program's signal handlers that run while the thread is inside memprof -------------- */

/* The stash: a ring written by the handlers, which may themselves be interrupted by
 * other (nested) ones, each taking its slot with one atomic increment of the tail; read
 * by the interrupted thread once it leaves memprof, which no handler of its own
 * interrupts half-way (a handler runs to its end before the code under it goes on): so
 * every slot between the head and the tail is whole when the thread reads it. Head and
 * tail share one word, so that the reader, having emptied the ring, puts both back to 0
 * in one compare-and-swap (a handler that ran meanwhile makes it fail, and its event is
 * read next): the slots are taken from the first again, and only the pages of the
 * deepest the ring has been are ever touched. Mapped by the first handler that needs it
 * (a system call, safe in a handler), given back at the thread's exit. A ring full
 * (RECORD_STASH events while the thread stays inside memprof) loses the event: counted
 * as dropped.
 *
 * RECORD_STASH was 64 until session 31. A handler every 100 us that maps and unmaps
 * filled it while its thread stayed inside memprof (test_signals test_handler_allocations
 * under UBSan on a loaded machine: 25 and 42 events dropped), and a handler that makes 40
 * mappings at once has 80 events. Session 32 found why a thread stays inside memprof
 * that long (diagnostic builds with the writer at nice 19 beside a busy process on one
 * CPU): waiting for the writer while it held the table of mappings' lock, where it cannot
 * take the stash (mended: thread_block_full stops waiting then); waiting for a lock of
 * memprof's that the writer held while it was not running; and running nothing but
 * handlers: a handler that takes longer than its timer's period runs again as soon as it
 * returns, before one instruction of the code it interrupted (33 handlers in 63 ms over
 * one futex wait, whose return to the loop that takes the stash never came between them:
 * perf's trace showed the next SIGALRM delivered at each rt_sigreturn, the thread
 * preempted by the busy process at each tick of the 100 us timer). 1,024 slots until
 * session 33, when a fresh clone's test run (tests in parallel) dropped 432 events of the
 * "burst" handler, 80 events every millisecond: 18 ms inside memprof. 16,384 slots hold
 * 200 such handlers; they are 1.7 MiB of address space a thread that ran a handler over
 * memprof, resident only as deep as the ring went (the slots are taken from the first
 * again each time it empties). */
#define RECORD_STASH 16384 /* a power of 2 */
#define RECORD_STASH_FRAMES 8
typedef struct record_stashed {
	uint64_t ts, addr, size;
	uint32_t what; /* RECORD_STASH_* */
	uint32_t allocator;
	uint32_t nips; /* native mode: the handler's frames, innermost first */
	uint64_t ips[RECORD_STASH_FRAMES];
} record_stashed_t;
typedef struct record_stash {
	_Atomic uint64_t ends; /* the tail in the low 32 bits, the head in the high 32 */
	bool draining; /* appending the stash: no waiting for the writer meanwhile */
	record_stashed_t e[RECORD_STASH];
} record_stash_t;
static __thread record_stash_t *record_stash_area MP_TLS;

/* The handler's own frames in native mode, innermost first: up to RECORD_STASH_FRAMES, as
 * far as the signal frame and the frames under it down to memprof's (the code the signal
 * interrupted). libunwind is safe to run in a signal handler but for its per-thread
 * cache of frames: not while the thread was inside libunwind, nor on a small alternate
 * stack (record_on_small_altstack). Under the guard: libunwind's own first mapping on a
 * thread is not the program's. */
static unsigned record_stash_frames(uint64_t *ips)
{
	if (native_in_libunwind || record_on_small_altstack())
		return 0;
	mp_guard_enter();
	unsigned n = native_backtrace(ips, RECORD_STASH_FRAMES, false, NULL, NULL);
	mp_unguard();
	unsigned k = 0;
	while (k < n && !native_is_self(ips[k]))
		k++;
	return k;
}

/* Whether the handler that set MP_GUARD_HANDLER was left by a jump (siglongjmp) rather
 * than by returning to its trampoline: the calling hook is not inside it. The trampoline's
 * frame is on the alternate stack when the handler ran there. */
static bool record_handler_left(void)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0), f = init_handler_frame;
	size_t alt = record_altstack_size;
	bool f_alt = alt && f - record_altstack_lo < alt;
	bool sp_alt = alt && sp - record_altstack_lo < alt;
	return f_alt ? !sp_alt : sp > f;
}

#define RECORD_STASH_HEAD (UINT64_C(1) << 32)

static inline unsigned record_stash_tail(uint64_t ends)
{
	return (uint32_t)ends;
}

static inline unsigned record_stash_head(uint64_t ends)
{
	return (uint32_t)(ends >> 32);
}

/* The events in the stash. */
static inline unsigned record_stash_depth(uint64_t ends)
{
	return record_stash_tail(ends) - record_stash_head(ends);
}

bool record_stash_pending(void)
{
	record_stash_t *s = record_stash_area;
	if (!s)
		return false;
	return record_stash_depth(atomic_load_explicit(&s->ends, memory_order_relaxed)) != 0;
}

bool record_stash_draining(void)
{
	return record_stash_area && record_stash_area->draining;
}

static record_stash_t *record_stash_get(void)
{
	if (mp_likely(record_stash_area))
		return record_stash_area;
	/* (the system call: the mmap hook would stash this mapping) */
	void *p = (void *)syscall(SYS_mmap, NULL, sizeof(record_stash_t), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* (a handler nested in this one may have mapped one meanwhile: the first kept) */
	record_stash_t *none = NULL;
	if (__atomic_compare_exchange_n(&record_stash_area, &none, p, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return p;
	syscall(SYS_munmap, p, sizeof(record_stash_t));
	return none;
}

/* The stash emptied: its events counted as dropped when `lost` (not when recording is
 * off, or they are the parent's in a fork child). */
static void record_stash_discard(record_stash_t *s, bool lost)
{
	uint64_t v = atomic_load(&s->ends);
	while (!atomic_compare_exchange_weak(&s->ends, &v, 0))
		;
	if (lost)
		atomic_fetch_add(&thread_dropped, record_stash_depth(v));
}

/* (record.h; also for a thread without state once recording is off: the caller holds the
 * guard, or the thread is leaving memprof behind at its exit) */
void record_stash_release(void)
{
	record_stash_t *s = record_stash_area;
	if (!s)
		return;
	record_stash_discard(s, true);
	record_stash_area = NULL;
	atomic_signal_fence(memory_order_seq_cst);
	syscall(SYS_munmap, s, sizeof *s);
}

void record_stash(unsigned what, const void *addr, uint64_t size, int allocator, uint64_t ts)
{
	bool left = record_handler_left();
	if (mp_unlikely(left)) {
		/* the thread is neither in the handler nor inside memprof any more: what is
		 * stashed is recorded now, and this event as the thread's own */
		init_handler_frame = 0;
		mp_guard = MP_GUARD_PENDING;
		mp_guard_settle();
		if (what == RECORD_STASH_ALLOC) {
			if (!record_skip_alloc(size))
				record_alloc((void *)addr, size, allocator, 0, 0);
			return;
		}
		if (what == RECORD_STASH_FREE) {
			if (!record_skip_free(addr))
				record_free((void *)addr, ts);
			return;
		}
		mp_guard_enter(); /* (a mapping: into the stash, recorded at once) */
	}
	int saved = errno;
	record_stash_t *s = record_stash_get();
	uint64_t v = s ? atomic_fetch_add_explicit(&s->ends, 1, memory_order_relaxed) : 0;
	if (mp_unlikely(!s || record_stash_depth(v) >= RECORD_STASH)) {
		if (s)
			atomic_fetch_sub_explicit(&s->ends, 1, memory_order_relaxed);
		atomic_fetch_add(&thread_dropped, 1);
	} else {
		record_stashed_t *e = &s->e[record_stash_tail(v) % RECORD_STASH];
		*e = (record_stashed_t){ts, (uint64_t)(uintptr_t)addr, size, what, (uint32_t)allocator, 0, {0}};
		if ((what == RECORD_STASH_ALLOC || what == RECORD_STASH_MAP) && !python_active && record_native && !left)
			e->nips = record_stash_frames(e->ips);
		atomic_signal_fence(memory_order_seq_cst);
	}
	errno = saved;
	if (mp_unlikely(left)) {
		mp_guard |= MP_GUARD_PENDING;
		mp_unguard();
	}
}

/* The stack of a handler's allocation, made once the handler has returned: the Python
 * stack it interrupted (as a handler's allocation made outside memprof gets in Python
 * mode, here without native frames); in native mode the handler's frames it took
 * (record_stash_frames), hung from the truncation marker (the rest not recorded). */
static uint32_t record_stash_stack(mp_thread_t *t, record_stashed_t *e)
{
	if (python_active)
		return python_stack(t, false, false, 0, 0);
	return record_native ? native_intern(t->cache, 0, e->ips, e->nips, true) : 0;
}

/* A stamp for an event that happened at `ts` but goes into the thread's stream now, after
 * events stamped later may have: not earlier than the thread's newest (its stamps never
 * decrease). A free stamped late pairs wrongly only if another thread got the same
 * address within that time (a few hundred nanoseconds, the rest of the hook the handler
 * interrupted). */
static uint64_t record_stash_stamp(mp_thread_t *t, uint64_t ts)
{
	return record_fresh(t, ts > t->stamp ? ts : t->stamp);
}

/* Appends the stash in order, one event at a time, the head moved past each before it
 * is appended (a handler that runs meanwhile may reuse its slot), with the thread's
 * state (made now if the thread has none: a handler's events on a thread that had not
 * allocated yet, or whose state its exit took down, as an allocation of the thread's
 * then makes one). Meanwhile a full block does not wait for the writer
 * (thread_block_full): the stash is at most RECORD_STASH events, and a wait would let
 * handlers fill it. The caller holds the guard. */
static void record_stash_drain(void)
{
	record_stash_t *s = record_stash_area;
	if (!record_stash_pending())
		return;
	mp_thread_t *t = thread_get();
	if (!t->cap) { /* (no memory for a state) */
		record_stash_discard(s, true);
		return;
	}
	s->draining = true;
	for (;;) {
		uint64_t v = atomic_load_explicit(&s->ends, memory_order_relaxed);
		if (!record_stash_depth(v)) {
			/* emptied: the slots from the first again, unless a handler ran meanwhile */
			if (atomic_compare_exchange_strong_explicit(&s->ends, &v, 0, memory_order_relaxed,
								    memory_order_relaxed))
				break;
			continue;
		}
		record_stashed_t e = s->e[record_stash_head(v) % RECORD_STASH];
		atomic_signal_fence(memory_order_seq_cst);
		atomic_fetch_add_explicit(&s->ends, RECORD_STASH_HEAD, memory_order_relaxed);
		void *p = (void *)(uintptr_t)e.addr;
		switch (e.what) {
		case RECORD_STASH_ALLOC:
			if (record_sample_alloc(t, p, e.size))
				record_put(t, record_stash_stamp(t, e.ts), p, e.size, record_stash_stack(t, &e), MP_EV_ALLOC,
					   (int)e.allocator);
			break;
		case RECORD_STASH_FREE:
			if (record_sample_free(p))
				record_put(t, record_stash_stamp(t, e.ts), p, 0, 0, MP_EV_FREE, 0);
			break;
		case RECORD_STASH_MAP: {
			uint32_t stack = record_stash_stack(t, &e);
			maps_replay(p, e.size, e.ts, record_stash_stamp(t, e.ts), stack);
			break;
		}
		default:
			maps_replay(p, e.size, e.ts, record_stash_stamp(t, e.ts), RECORD_NO_STACK);
			break;
		}
	}
	s->draining = false;
}

/* The stash taken while the thread waits for the writer inside thread_block_full (a
 * signal ends the wait early): it may wait that long with a handler stashing events
 * meanwhile. The event the thread is appending is stamped no earlier than these
 * (thread_append_as): an allocation's stamp may be later than the allocation, and a
 * free's real free runs after its event (the free of realloc's old block too: the real
 * realloc and its events are under the guard). Not while the thread holds the table of
 * mappings' lock (it appends a mapping's cut) and the stash holds a mapping: that waits
 * for mp_guard_settle. True if anything was appended. */
bool record_stash_take(void)
{
	record_stash_t *s = record_stash_area;
	if (!record_stash_pending() || !atomic_load_explicit(&mp_recording, memory_order_relaxed))
		return false;
	atomic_signal_fence(memory_order_seq_cst);
	if (maps_held_here())
		for (unsigned h = record_stash_head(atomic_load(&s->ends));
		     h != record_stash_tail(atomic_load(&s->ends)); h++) {
			unsigned what = s->e[h % RECORD_STASH].what;
			if (what == RECORD_STASH_MAP || what == RECORD_STASH_UNMAP)
				return false;
		}
	record_stash_drain();
	return true;
}

/* (record.h) */
void record_stash_take_early(void)
{
	if (!maps_held_here())
		record_stash_take_mapping();
}

/* (record.h) */
void record_stash_take_mapping(void)
{
	if (mp_likely(!record_stash_pending()) || record_stash_area->draining ||
	    !atomic_load_explicit(&mp_recording, memory_order_relaxed))
		return;
	int saved = errno;
	record_stash_drain();
	errno = saved;
}

/* The guard came back to 0 with MP_GUARD_PENDING set: the stash goes into the stream,
 * under the guard (a handler that runs meanwhile stashes again and sets the bit again). */
void mp_guard_settle(void)
{
	while (mp_guard == MP_GUARD_PENDING) {
		int saved = errno;
		mp_guard = 1;
		record_stash_t *s = record_stash_area;
		if (s && atomic_load_explicit(&mp_recording, memory_order_relaxed))
			record_stash_drain();
		else if (s) {
			record_stash_discard(s, false); /* (not recording) */
			if (!thread_self->cap)
				record_stash_release(); /* (no state of the thread's, whose exit would) */
		}
		errno = saved;
		mp_unguard();
	}
}

void record_end(bool restart)
{
	int saved = errno;
	mp_guard_enter();
	mp_thread_t *t = thread_get();
	if (t->cap) {
		record_put(t, record_fresh(t, clock_after()), restart ? (void *)MP_END_RESTART : NULL, 0, 0, MP_EV_END,
			   0);
	}
	mp_unguard();
	errno = saved;
}

void record_fork_child(void)
{
	if (record_stash_area) /* (the parent's handlers') */
		record_stash_discard(record_stash_area, false);
	mp_guard &= INT_MAX; /* (nothing pending: no state made for an empty stash) */
	pthread_mutex_init(&record_sample_lock, NULL);
	record_gil_stamp_expire();
}
