/* The PyMem allocator wrappers, installed around the allocators in place (as
 * tracemalloc does), so that memory allocated before attach is still freed by the
 * allocator that owns it. Each Python allocation is recorded here once, with the size
 * Python asked for; the guard is held around the wrapped allocator, so pymalloc's own
 * calls into malloc are not recorded again. */
#define Py_BUILD_CORE 1
#include "hooks_pymem.h"
#include "clock.h"
#include "config.h"
#include "mp.h"
#include "python.h"
#include "record.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <memprof/format.h>

typedef struct hooks_pymem_domain {
	PyMemAllocatorEx orig;
	PyMemAllocatorDomain domain;
	int allocator;
} hooks_pymem_domain_t;

static const hooks_pymem_domain_t hooks_pymem_domains[3] = {
	{.domain = PYMEM_DOMAIN_RAW, .allocator = MP_AL_PYMEM_RAW},
	{.domain = PYMEM_DOMAIN_MEM, .allocator = MP_AL_PYMEM_MEM},
	{.domain = PYMEM_DOMAIN_OBJ, .allocator = MP_AL_PYMEM_OBJ},
};
/* Each wrapping of a domain has its own record of what it wraps: a wrapper that another
 * allocator wrapped in turn (tracemalloc started during start-up, debug hooks set up at
 * run time) keeps calling what it wrapped, whatever is wrapped later. */
#define HOOKS_PYMEM_WRAPS 8
static hooks_pymem_domain_t hooks_pymem_wraps[3][HOOKS_PYMEM_WRAPS];
static unsigned hooks_pymem_nwraps[3];
static hooks_pymem_get_t hooks_pymem_get;
static hooks_pymem_set_t hooks_pymem_set;
static const char *(*hooks_pymem_name)(void); /* python_variant_t.allocator_name, if any */
static int (*hooks_pymem_gil)(void);           /* PyGILState_Check, if any */

/* A request no allocator can satisfy. memprof's wrappers answer it with NULL at once and
 * note the domain they serve: so a probe tells whether a domain's allocator still
 * reaches a wrapper of memprof's (another allocator wrapped it) or replaced it. */
#define HOOKS_PYMEM_PROBE ((size_t)-1 - 4093)
static atomic_int hooks_pymem_probe_seen; /* domain + 1 */

static __attribute__((noinline)) void *hooks_pymem_malloc(void *ctx, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	if (mp_unlikely(size == HOOKS_PYMEM_PROBE)) {
		atomic_store(&hooks_pymem_probe_seen, (int)d->domain + 1);
		return NULL;
	}
	mp_guard_enter();
	void *p = d->orig.malloc(d->orig.ctx, size);
	mp_unguard();
	if (p && mp_should_record() && !record_skip_alloc(size))
		record_alloc(p, size, d->allocator, RECORD_CALLER);
	return p;
}

static void *hooks_pymem_calloc(void *ctx, size_t n, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	mp_guard_enter();
	void *p = d->orig.calloc(d->orig.ctx, n, size);
	mp_unguard();
	if (p && mp_should_record() && !record_skip_alloc(n * size))
		record_alloc(p, n * size, d->allocator, RECORD_CALLER);
	return p;
}

/* The malloc and calloc of the MEM and OBJ domains (GIL held) in exact mode: a request
 * of at most RECORD_SMALL_REQUEST bytes, with Python stacks alone (record_gil_lean, set
 * once recording starts), goes to python_alloc_gil in a tail call, which calls the real
 * allocator itself; the rest (the probe among them) to the general wrappers.
 * hooks_pymem_wrap installs them wherever record_gil_lean can be true for a MEM or OBJ
 * domain, so the general wrappers never have a request for python_alloc_gil. */
static void *hooks_pymem_malloc_gil(void *ctx, size_t size)
{
	if (mp_unlikely(size > RECORD_SMALL_REQUEST || !record_gil_lean))
		return hooks_pymem_malloc(ctx, size);
	hooks_pymem_domain_t *d = ctx;
	return python_alloc_gil(d->orig.ctx, d->orig.malloc, NULL, 0, size, d->allocator);
}

static void *hooks_pymem_calloc_gil(void *ctx, size_t n, size_t size)
{
	if (mp_unlikely(!n || size > RECORD_SMALL_REQUEST / n || !record_gil_lean))
		return hooks_pymem_calloc(ctx, n, size);
	hooks_pymem_domain_t *d = ctx;
	return python_alloc_gil(d->orig.ctx, NULL, d->orig.calloc, n, size, d->allocator);
}

static void *hooks_pymem_realloc(void *ctx, void *old, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	uint64_t ts = d->allocator == MP_AL_PYMEM_RAW ? clock_now() : RECORD_TS_GIL;
	bool rec = mp_should_record();
	bool taken = rec && record_realloc_begin(old);
	mp_guard_enter(); /* (until both events are in, as in the realloc hook) */
	void *p = d->orig.realloc(d->orig.ctx, old, size);
	if (rec || taken)
		record_realloc_done(taken, old, ts, p, size, false, d->allocator, RECORD_CALLER);
	mp_unguard();
	return p;
}

static __attribute__((noinline)) void hooks_pymem_free_any(void *ctx, void *p)
{
	hooks_pymem_domain_t *d = ctx;
	if (p && mp_should_record() && !record_skip_free(p)) {
		if (d->allocator == MP_AL_PYMEM_RAW) {
			record_free(p, RECORD_TS_NOW);
		} else {
			mp_guard_enter();
			record_free_gil(p);
			mp_unguard();
		}
	}
	mp_guard_enter();
	d->orig.free(d->orig.ctx, p);
	mp_unguard();
}

/* A free made with the GIL held, recorded with no call but the real free's (so the
 * function saves no registers); the rest takes hooks_pymem_free_any. A free is half of
 * what a Python program records. `gil_exact`: the wrapper serves only the MEM and OBJ
 * domains, in exact mode. */
static inline __attribute__((always_inline)) void hooks_pymem_free_as(void *ctx, void *p, bool gil_exact)
{
	hooks_pymem_domain_t *d = ctx;
	if (mp_likely(p) && (gil_exact || d->allocator != MP_AL_PYMEM_RAW) && mp_should_record()) {
		/* (the guard before the event: a signal handler that allocates must not append to
		 * the block while this event is half written) */
		mp_guard_enter();
		if (mp_likely(record_free_gil_quick(p, gil_exact))) {
			d->orig.free(d->orig.ctx, p);
			mp_unguard();
			return;
		}
		mp_unguard();
	}
	hooks_pymem_free_any(ctx, p);
}

static void hooks_pymem_free(void *ctx, void *p)
{
	hooks_pymem_free_as(ctx, p, false);
}

/* The MEM and OBJ domains' free in exact mode. */
static void hooks_pymem_free_gil(void *ctx, void *p)
{
	hooks_pymem_free_as(ctx, p, true);
}

/* Sampling mode's wrappers for the MEM and OBJ domains (GIL held) when they are
 * pymalloc's own (the default), where most calls are only counted down: a request of at
 * most 512 bytes is served by pymalloc, which calls no other hooked allocator for it
 * (its arenas come from mmap; only the rare growth of its arena table goes through
 * PyMem_RawRealloc, which may then be sampled as the memory it is), so the fast paths
 * skip the guard; larger requests take the guarded wrappers, so that pymalloc's
 * fallback to the RAW domain is not counted down twice.
 *
 * pymalloc's free is not wrapped at all (half of a Python program's calls): a block
 * that is sampled never lives in pymalloc's pools. A small one is asked of pymalloc as
 * a block of HOOKS_PYMEM_OUT_OF_POOLS bytes, more than it serves from its pools, so it
 * takes it from the RAW domain (and counts it, as sys.getallocatedblocks() shows); its
 * free, which pymalloc hands to PyMem_RawFree, reaches the RAW domain's wrapper, which
 * records it. A large block goes that way by itself. A realloc that is sampled and stays
 * small is moved out of the pools the same way. (Code objects' deaths, which the caches
 * must see, come from their tp_dealloc: python.c.) pymalloc's functions ignore their
 * context, which is memprof's in the table installed.
 *
 * The *_sampled functions take what the fast paths below leave: a request counted down
 * to its sample, or one larger than pymalloc's limit. */
#define HOOKS_PYMEM_OUT_OF_POOLS (RECORD_SMALL_REQUEST + 1)

static __attribute__((noinline)) void *hooks_pymem_malloc_sampled(void *ctx, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	if (size > RECORD_SMALL_REQUEST)
		return hooks_pymem_malloc(ctx, size);
	mp_guard_enter();
	void *p = d->orig.malloc(d->orig.ctx, HOOKS_PYMEM_OUT_OF_POOLS);
	mp_unguard();
	if (p && mp_should_record())
		record_alloc(p, size, d->allocator, RECORD_CALLER);
	return p;
}

static __attribute__((noinline)) void *hooks_pymem_calloc_sampled(void *ctx, size_t n, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	if (size && n > RECORD_SMALL_REQUEST / size)
		return hooks_pymem_calloc(ctx, n, size);
	mp_guard_enter();
	void *p = d->orig.calloc(d->orig.ctx, 1, HOOKS_PYMEM_OUT_OF_POOLS);
	mp_unguard();
	if (p && mp_should_record())
		record_alloc(p, n * size, d->allocator, RECORD_CALLER);
	return p;
}

/* The common case counts down and tail-calls the real allocator: no frame of memprof's
 * stays on the stack around it. */
static void *hooks_pymem_malloc_sampling(void *ctx, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	if (mp_likely(size <= RECORD_SMALL_REQUEST) && record_skip_alloc_sampling(size))
		return d->orig.malloc(d->orig.ctx, size);
	return hooks_pymem_malloc_sampled(ctx, size);
}

static void *hooks_pymem_calloc_sampling(void *ctx, size_t n, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	if (mp_likely(!size || n <= RECORD_SMALL_REQUEST / size) && record_skip_alloc_sampling(n * size))
		return d->orig.calloc(d->orig.ctx, n, size);
	return hooks_pymem_calloc_sampled(ctx, n, size);
}

static void *hooks_pymem_realloc_sampling(void *ctx, void *old, size_t size)
{
	hooks_pymem_domain_t *d = ctx;
	mp_guard_enter();
	void *p = d->orig.realloc(d->orig.ctx, old, size);
	mp_unguard();
	if (!p || !mp_should_record())
		return p;
	if (old)
		record_free(old, RECORD_TS_GIL); /* recorded only if it was sampled */
	if (record_skip_alloc(size))
		return p;
	if (size <= RECORD_SMALL_REQUEST) {
		/* to be sampled: out of pymalloc's pools (its free will not be seen there) */
		mp_guard_enter();
		void *q = d->orig.malloc(d->orig.ctx, HOOKS_PYMEM_OUT_OF_POOLS);
		if (q) {
			memcpy(q, p, size);
			d->orig.free(d->orig.ctx, p);
		}
		mp_unguard();
		if (!q)
			return p; /* left unsampled: its free could not be seen */
		p = q;
	}
	record_alloc(p, size, d->allocator, RECORD_CALLER);
	return p;
}

/* True if the allocator `cur` of domain i still calls a wrapper of memprof's. The MEM
 * and OBJ domains are asked only by a thread that may call them (PyGILState_Check): the
 * debug hooks end the program otherwise (3.12 during pre-initialization, whose
 * allocations memprof's recheck follows on any thread), and a debug hook put in place then
 * is CPython's own allocator again, not a wrapping of memprof's. */
static bool hooks_pymem_reaches_wrapper(int i, const PyMemAllocatorEx *cur)
{
	if (hooks_pymem_domains[i].domain != PYMEM_DOMAIN_RAW && hooks_pymem_gil && !hooks_pymem_gil())
		return false;
	int saved = errno;
	atomic_store(&hooks_pymem_probe_seen, 0);
	void *p = cur->malloc(cur->ctx, HOOKS_PYMEM_PROBE);
	if (p) /* no allocator grants it; were one to, give it back */
		cur->free(cur->ctx, p);
	errno = saved;
	return atomic_load(&hooks_pymem_probe_seen) == (int)hooks_pymem_domains[i].domain + 1;
}

static void hooks_pymem_wrap(int i, bool pymalloc)
{
	PyMemAllocatorEx cur;
	PyMemAllocatorDomain domain = hooks_pymem_domains[i].domain;
	hooks_pymem_get(domain, &cur);
	if (cur.malloc == hooks_pymem_malloc || cur.malloc == hooks_pymem_malloc_gil ||
	    cur.malloc == hooks_pymem_malloc_sampling)
		return;
	/* wrapped by another allocator since (tracemalloc started during start-up): every
	 * call still reaches memprof's wrapper, and wrapping again would record twice */
	if (hooks_pymem_nwraps[i] && hooks_pymem_reaches_wrapper(i, &cur))
		return;
	/* the allocator a wrapping of memprof's already wraps (CPython puts its default back
	 * for a moment during start-up, allocates, and restores the one it had: wrapped in
	 * between, python_hooks_recheck): that wrapping again, no new one */
	hooks_pymem_domain_t *d = NULL;
	for (unsigned k = 0; k < hooks_pymem_nwraps[i] && !d; k++)
		if (!memcmp(&hooks_pymem_wraps[i][k].orig, &cur, sizeof cur))
			d = &hooks_pymem_wraps[i][k];
	if (!d) {
		if (hooks_pymem_nwraps[i] == HOOKS_PYMEM_WRAPS) {
			mp_log("Python's allocators were replaced %d times; not wrapping them again", HOOKS_PYMEM_WRAPS);
			return;
		}
		d = &hooks_pymem_wraps[i][hooks_pymem_nwraps[i]++];
		*d = hooks_pymem_domains[i];
		d->orig = cur;
	}
	PyMemAllocatorEx w = {d, hooks_pymem_malloc, hooks_pymem_calloc, hooks_pymem_realloc, hooks_pymem_free};
	if (!record_sample_bytes && domain != PYMEM_DOMAIN_RAW) {
		w.free = hooks_pymem_free_gil;
		if (config.native != 1) { /* Python stacks alone (record_gil_lean) */
			w.malloc = hooks_pymem_malloc_gil;
			w.calloc = hooks_pymem_calloc_gil;
		}
	}
	if (record_sample_bytes && pymalloc && domain != PYMEM_DOMAIN_RAW) {
		w.malloc = hooks_pymem_malloc_sampling;
		w.calloc = hooks_pymem_calloc_sampling;
		w.realloc = hooks_pymem_realloc_sampling;
		w.free = cur.free; /* pymalloc's own (hooks_pymem_malloc_sampled explains) */
	}
	hooks_pymem_set(domain, &w);
}

/* Python's arena allocator (pymalloc's arenas; from 3.11 the chunks of each thread's
 * frame stack too) maps memory with mmap: called inside a wrapped allocator, or from the
 * interpreter's frame stack, which no tool counts. The wrapper marks the call memprof's
 * own (mp_guard), so its mappings are not recorded as the program's (hooks_mmap.c). */
static PyObjectArenaAllocator hooks_arena_orig;
static void (*hooks_arena_get)(PyObjectArenaAllocator *);
static void (*hooks_arena_set)(PyObjectArenaAllocator *);

static void *hooks_arena_alloc(void *ctx, size_t size)
{
	(void)ctx;
	mp_guard_enter();
	void *p = hooks_arena_orig.alloc(hooks_arena_orig.ctx, size);
	mp_unguard();
	return p;
}

static void hooks_arena_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	mp_guard_enter();
	hooks_arena_orig.free(hooks_arena_orig.ctx, p, size);
	mp_unguard();
}

/* Wraps the arena allocator unless it is wrapped: at attach, and again wherever the
 * domains are looked at again (an interpreter initialized again after Py_Finalize, 3.12
 * and later, has the default one back). */
static void hooks_arena_wrap(void)
{
	if (!hooks_arena_get || !hooks_arena_set)
		return;
	PyObjectArenaAllocator cur;
	hooks_arena_get(&cur);
	if (cur.alloc == hooks_arena_alloc || !cur.alloc || !cur.free)
		return;
	hooks_arena_orig = cur;
	PyObjectArenaAllocator w = {NULL, hooks_arena_alloc, hooks_arena_free};
	hooks_arena_set(&w);
}

void python_hooks_arena(void (*get)(PyObjectArenaAllocator *), void (*set)(PyObjectArenaAllocator *))
{
	hooks_arena_get = get;
	hooks_arena_set = set;
	hooks_arena_wrap();
}

/* Wraps every domain that is not wrapped. Asked before any is wrapped, CPython names
 * the allocators in place ("pymalloc" by default; "malloc", "pymalloc_debug", ... after
 * PYTHONMALLOC; NULL once any is custom): the lean sampling wrappers are for pymalloc
 * only. */
static void hooks_pymem_wrap_all(void)
{
	const char *name = hooks_pymem_name ? hooks_pymem_name() : NULL;
	bool pymalloc = name && !strcmp(name, "pymalloc");
	for (int i = 0; i < 3; i++)
		hooks_pymem_wrap(i, pymalloc);
	hooks_arena_wrap();
}

void python_hooks_install(hooks_pymem_get_t get, hooks_pymem_set_t set, const char *(*name)(void),
			  int (*gil)(void))
{
	hooks_pymem_get = get;
	hooks_pymem_set = set;
	hooks_pymem_name = name;
	hooks_pymem_gil = gil;
	hooks_pymem_wrap_all();
}

void python_hooks_ensure(void)
{
	hooks_pymem_wrap_all();
}

/* During start-up (until the interpreter is initialized): CPython's pre-initialization
 * replaces the allocators in place when PYTHONMALLOC, PYTHONDEVMODE or -X dev ask for
 * others (the debug hooks), and memprof's wrappers with them; every allocation it
 * records until then (the RAW domain's reach malloc's hook) asks whether a domain's
 * allocator changed since it last looked, and wraps it again at once. Before, that
 * waited for the first pending call, after start-up: its allocations were missed, and
 * the debug hooks' blocks of the time read as leaks (the malloc of a block recorded, its
 * free, under memprof's wrapper installed since, not). */
void python_hooks_recheck(void)
{
	/* every 16th allocation (an embedding program may allocate a lot before it
	 * initializes Python, or never do), one thread at a time */
	static atomic_uint calls;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static PyMemAllocatorEx seen[3];
	if (!hooks_pymem_get || atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) % 16 ||
	    pthread_mutex_trylock(&lock))
		return;
	bool changed = false;
	for (int i = 0; i < 3; i++) {
		PyMemAllocatorEx cur;
		hooks_pymem_get(hooks_pymem_domains[i].domain, &cur);
		if (memcmp(&cur, &seen[i], sizeof cur)) {
			changed = true;
			seen[i] = cur;
		}
	}
	if (changed) {
		hooks_pymem_wrap_all();
		for (int i = 0; i < 3; i++)
			hooks_pymem_get(hooks_pymem_domains[i].domain, &seen[i]);
	}
	pthread_mutex_unlock(&lock);
}
