/* Memory the program maps itself: mmap and mmap64 of anonymous memory, mremap, munmap.
 *
 * A mapping is one block for the analyzer (allocator MP_AL_MMAP, MP_AL_MREMAP), sized in
 * whole pages, with the stack of the call that made it. munmap may take any part of it
 * (the head and tail of an over-sized mapping cut to an alignment, a page in the
 * middle): the block then holds what is left, at the lowest address left (format.h,
 * MP_AL_MMAP_REST), until its last page is unmapped. So the table below keeps, for each
 * mapping recorded, its pieces still mapped, sorted by address (the highest first),
 * under a mutex: mapping calls are system calls that take the kernel's own lock of the
 * address space, and the program makes few of them.
 *
 * Not recorded: mappings of files (their pages are the file's), PROT_NONE reservations
 * of address space, the mappings of the allocator that serves malloc (an mmap called
 * from its library: its blocks are recorded as malloc's), those of Python's arenas
 * (hooks_pymem.c wraps the arena allocator), memprof's own, and any made while recording
 * is off. Only mappings recorded are looked at when memory is unmapped. */
#define _GNU_SOURCE
/* mmap and mmap64 are both defined here: with 64-bit file offsets asked for (meson's
 * default), glibc's header would name mmap mmap64. off_t is 64-bit on LP64 anyway. */
#undef _FILE_OFFSET_BITS
#include "hooks_mmap.h"
#include "mem.h"
#include "modules.h"
#include "mp.h"
#include "real.h"
#include "record.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct maps_piece {
	uint64_t lo, hi; /* [lo, hi), whole pages */
	uint32_t map;    /* index in maps_maps */
} maps_piece_t;

typedef struct maps_map {
	uint64_t key;    /* the block's address: the mapping's lowest byte still mapped */
	uint64_t bytes;  /* still mapped */
	uint64_t placed; /* in place by then: a stamp taken after the call that made it */
	uint32_t stack;
	uint32_t next_free; /* free list: index + 1 */
} maps_map_t;

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
/* Disjoint, the highest first: the kernel places a new mapping below the ones it placed
 * before, where it has room, so a mapping made or unmapped is most often at the end of
 * the array (100,000 live: a mmap and munmap pair 19 us, 185 us in ascending order,
 * 14 us without memprof). */
static maps_piece_t *maps_pieces;
static size_t maps_n, maps_cap;
static maps_map_t *maps_maps;
static uint32_t maps_nmaps, maps_mcap, maps_free_head;
static uint64_t maps_page;
/* The loaded span of the library whose malloc the program uses (jemalloc, tcmalloc, ...; libc,
 * whose malloc never calls the hook): its own mmap calls are the pages its blocks are
 * cut from. */
static uint64_t maps_alloc_lo, maps_alloc_hi;
static unsigned maps_lost;

/* The first piece that starts below addr (maps_n if none): with those before it, the
 * pieces at addr and above. */
static size_t maps_find(uint64_t addr)
{
	size_t lo = 0, hi = maps_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (maps_pieces[mid].lo >= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one piece more. */
static bool maps_room(void)
{
	if (maps_n < maps_cap)
		return true;
	size_t ncap = maps_cap ? maps_cap * 2 : 64;
	maps_piece_t *np = mem_realloc(maps_pieces, ncap * sizeof *np);
	if (!np)
		return false;
	maps_pieces = np;
	maps_cap = ncap;
	return true;
}

/* The lowest piece of mapping m at index i or before (none of it after i). */
static uint64_t maps_lowest_upto(size_t i, uint32_t m)
{
	for (i = i < maps_n ? i + 1 : maps_n; i-- > 0;)
		if (maps_pieces[i].map == m)
			return maps_pieces[i].lo;
	return 0;
}

static void maps_release(uint32_t m)
{
	maps_maps[m].next_free = maps_free_head;
	maps_free_head = m + 1;
}

/* [lo, hi) was unmapped at `when` (MAPS_NOW: by the thread that holds the lock now):
 * every mapping recorded there before then loses its pages there, each piece cut
 * recorded at ts (the free of the block, and what is left of it). A mapping placed after
 * `when` is the kernel's later use of those addresses, kept: `when` is earlier than now
 * for a signal handler's call, replayed from the stash once its thread left memprof,
 * after other threads may have mapped what it unmapped. With no room to split a piece in
 * two, its part above lo is taken as unmapped. */
#define MAPS_NOW UINT64_MAX

static void maps_cut(uint64_t lo, uint64_t hi, uint64_t when, uint64_t ts)
{
	size_t i = maps_find(hi);
	while (i < maps_n && maps_pieces[i].hi > lo) {
		maps_piece_t *p = &maps_pieces[i];
		uint32_t m = p->map;
		maps_map_t *mp = &maps_maps[m];
		if (mp->placed > when) {
			i++;
			continue;
		}
		uint64_t a = p->lo, b = p->hi;
		uint64_t cut_lo = a > lo ? a : lo, cut_hi = b < hi ? b : hi;
		uint64_t key = mp->key;
		size_t next;
		if (a < lo && b > hi && maps_room()) {
			p = &maps_pieces[i]; /* (moved) */
			memmove(p + 2, p + 1, (maps_n - i - 1) * sizeof *p);
			maps_n++;
			p[1] = (maps_piece_t){a, lo, m};
			p->lo = hi;
			next = i + 2;
		} else if (a < lo) {
			p->hi = lo;
			cut_hi = b;
			next = i + 1;
		} else if (b > hi) {
			p->lo = hi;
			next = i + 1;
		} else {
			memmove(p, p + 1, (maps_n - i - 1) * sizeof *p);
			maps_n--;
			next = i;
		}
		mp->bytes -= cut_hi - cut_lo;
		/* (the key was the lowest piece's, now gone or moved up: the rest is above) */
		if (mp->bytes && key >= cut_lo && key < cut_hi)
			mp->key = maps_lowest_upto(i, m);
		record_mapping_cut(ts, key, mp->key, mp->bytes, mp->stack);
		if (!mp->bytes)
			maps_release(m);
		i = next;
	}
}

/* A mapping recorded at [lo, hi) with its stack, in place at `placed` (a stamp taken
 * after the system call that made it). */
static void maps_add(uint64_t lo, uint64_t hi, uint32_t stack, uint64_t placed)
{
	uint32_t m;
	if (maps_free_head) {
		m = maps_free_head - 1;
		maps_free_head = maps_maps[m].next_free;
	} else {
		if (maps_nmaps == maps_mcap) {
			uint32_t ncap = maps_mcap ? maps_mcap * 2 : 64;
			maps_map_t *nm = mem_realloc(maps_maps, ncap * sizeof *nm);
			if (!nm)
				goto lost;
			maps_maps = nm;
			maps_mcap = ncap;
		}
		m = maps_nmaps++;
	}
	if (!maps_room()) {
		maps_release(m);
		goto lost;
	}
	maps_maps[m] = (maps_map_t){lo, hi - lo, placed, stack, 0};
	size_t i = maps_find(hi);
	memmove(&maps_pieces[i + 1], &maps_pieces[i], (maps_n - i) * sizeof *maps_pieces);
	maps_pieces[i] = (maps_piece_t){lo, hi, m};
	maps_n++;
	return;
lost:
	/* no memory for the table: the block stays live in the profile (its unmapping unseen) */
	if (!maps_lost++)
		mp_log("out of memory for the table of mappings: the unmapping of %p will not be seen", (void *)lo);
}

void maps_init(void)
{
	maps_page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (real.malloc)
		modules_span_of((uint64_t)(uintptr_t)real.malloc, &maps_alloc_lo, &maps_alloc_hi);
}

static inline uint64_t maps_round(uint64_t n)
{
	return (n + maps_page - 1) & ~(maps_page - 1);
}

/* Takes maps_lock, the thread marked as inside memprof (mp_guard) first: a signal handler
 * that maps or unmaps memory while the thread holds the lock goes straight to the system
 * instead of waiting for the lock for ever, its call stashed (record.c) and put in the
 * table once the thread has let the lock go. The caller raised mp_guard. */
static __thread bool maps_held MP_TLS;

static void maps_lock_take(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	pthread_mutex_lock(&maps_lock);
	maps_held = true;
}

static void maps_lock_drop(void)
{
	maps_held = false;
	pthread_mutex_unlock(&maps_lock);
	atomic_signal_fence(memory_order_seq_cst);
}

bool maps_held_here(void)
{
	return maps_held;
}

static inline bool maps_anon(int prot, int flags)
{
	return (flags & MAP_ANONYMOUS) && prot != PROT_NONE;
}

/* A call from the library that serves malloc: its own pages. */
static inline bool maps_from_allocator(uint64_t ra)
{
	return ra >= maps_alloc_lo && ra < maps_alloc_hi;
}

/* Whether a mapping placed after `when` has pages in [lo, hi). */
static bool maps_newer(uint64_t lo, uint64_t hi, uint64_t when)
{
	for (size_t i = maps_find(hi); i < maps_n && maps_pieces[i].hi > lo; i++)
		if (maps_maps[maps_pieces[i].map].placed > when)
			return true;
	return false;
}

/* len bytes were mapped at p, at `when` (MAPS_NOW: by the thread that holds the lock,
 * now): what was there is gone (MAP_FIXED, MREMAP_FIXED replace it; a mapping the kernel
 * placed where a recorded one was means that one was unmapped unseen), each cut stamped
 * ts; and, with an `allocator` (not -1) and a stack, the mapping is recorded, stamped ts
 * too when replayed, else (MAPS_NOW) after the stash of the thread's handlers, stamped
 * then. A signal handler's mapping replayed after another thread got some of its
 * addresses was unmapped before that: recorded with its free at once (its unmapping,
 * replayed next, finds nothing of it). */
static void maps_placed(void *p, size_t len, uint64_t when, uint64_t ts, int allocator, uint32_t stack)
{
	uint64_t lo = (uint64_t)(uintptr_t)p, hi = lo + maps_round(len);
	maps_cut(lo, hi, when, ts);
	if (when == MAPS_NOW) {
		record_stash_take_mapping();
		ts = clock_after();
	}
	if (allocator < 0 || stack == RECORD_NO_STACK)
		return;
	if (!record_mapping_put(p, hi - lo, stack, allocator, ts))
		return;
	if (mp_unlikely(when != MAPS_NOW && maps_newer(lo, hi, when)))
		record_mapping_cut(ts, lo, 0, 0, stack);
	else
		maps_add(lo, hi, stack, when == MAPS_NOW ? ts : when);
}

/* mmap and mmap64. The stack is taken before the lock (capturing it may call libunwind,
 * whose own locks a thread of the program may hold while it maps memory). A mapping over
 * recorded ones (MAP_FIXED) cuts them: the lock is held across the system call, so that
 * no other thread's mapping at the same addresses can be recorded between the call and
 * the cut. */
static void *maps_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, uintptr_t ra, uintptr_t fp,
		       bool is64)
{
	void *(*fn)(void *, size_t, int, int, int, off_t) = is64 ? real.mmap64 : real.mmap;
	if (mp_unlikely(!fn)) {
		real_init();
		fn = is64 ? real.mmap64 : real.mmap;
		if (!fn)
			return memprof_sys_mmap(addr, len, prot, flags, fd, (long)off);
	}
	bool anon = maps_anon(prot, flags);
	if (mp_in_handler() && anon && !maps_from_allocator(ra)) {
		void *p = fn(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED)
			record_stash(RECORD_STASH_MAP, p, len, MP_AL_MMAP, clock_after());
		return p;
	}
	if (!mp_should_record() || (!anon && !(flags & MAP_FIXED)) || maps_from_allocator(ra))
		return fn(addr, len, prot, flags, fd, off);
	mp_guard_enter();
	uint32_t stack = anon ? record_mapping_stack(MP_AL_MMAP, ra, fp) : RECORD_NO_STACK;
	maps_lock_take();
	uint64_t ts = clock_now();
	void *p = fn(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED) {
		int saved = errno;
		maps_placed(p, len, MAPS_NOW, ts, anon ? MP_AL_MMAP : -1, stack);
		errno = saved;
	}
	maps_lock_drop();
	mp_unguard();
	return p;
}

void maps_replay(void *p, size_t len, uint64_t when, uint64_t ts, uint32_t stack)
{
	bool held = maps_held; /* (record_stash_take_mapping) */
	if (!held)
		maps_lock_take();
	uint64_t lo = (uint64_t)(uintptr_t)p;
	if (stack == RECORD_NO_STACK)
		maps_cut(lo, lo + maps_round(len), when, ts);
	else
		maps_placed(p, len, when, ts, MP_AL_MMAP, stack);
	if (!held)
		maps_lock_drop();
}

MP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return maps_mmap(addr, len, prot, flags, fd, off, RECORD_CALLER, false);
}

MP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return maps_mmap(addr, len, prot, flags, fd, off, RECORD_CALLER, true);
}

MP_EXPORT int munmap(void *addr, size_t len)
{
	if (mp_unlikely(!real.munmap)) {
		real_init();
		if (!real.munmap)
			return memprof_sys_munmap(addr, len);
	}
	if (mp_in_handler() && !maps_from_allocator((uintptr_t)__builtin_return_address(0))) {
		uint64_t ts = clock_now();
		int r = real.munmap(addr, len);
		if (r == 0)
			record_stash(RECORD_STASH_UNMAP, addr, len, 0, ts);
		return r;
	}
	if (!mp_should_record() || maps_from_allocator((uintptr_t)__builtin_return_address(0)))
		return real.munmap(addr, len);
	mp_guard_enter();
	maps_lock_take();
	uint64_t ts = clock_now();
	int r = real.munmap(addr, len);
	if (r == 0 && maps_n) {
		int saved = errno;
		uint64_t lo = (uint64_t)(uintptr_t)addr;
		maps_cut(lo, lo + maps_round(len), MAPS_NOW, ts);
		errno = saved;
	}
	record_stash_take_mapping();
	maps_lock_drop();
	mp_unguard();
	return r;
}

/* As realloc: the old range, if recorded, is cut; the new mapping is recorded (at this
 * call's stack) when the old one was. */
MP_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (mp_unlikely(!real.mremap))
		real_init();
	if (mp_unlikely(!real.mremap))
		return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
	if (!mp_should_record() || maps_from_allocator((uintptr_t)__builtin_return_address(0)))
		return real.mremap(old, old_len, new_len, flags, new_addr);
	mp_guard_enter();
	uint32_t stack = record_mapping_stack(MP_AL_MREMAP, RECORD_CALLER);
	maps_lock_take();
	uint64_t lo = (uint64_t)(uintptr_t)old, hi = lo + maps_round(old_len);
	size_t i = maps_find(hi);
	bool recorded = i < maps_n && maps_pieces[i].hi > lo;
	uint64_t ts = clock_now();
	void *p = real.mremap(old, old_len, new_len, flags, new_addr);
	if (p != MAP_FAILED && (recorded || (flags & MREMAP_FIXED))) {
		int saved = errno;
		if (!(flags & MREMAP_DONTUNMAP))
			maps_cut(lo, hi, MAPS_NOW, ts);
		maps_placed(p, new_len, MAPS_NOW, ts, recorded ? MP_AL_MREMAP : -1, stack);
		errno = saved;
	}
	maps_lock_drop();
	mp_unguard();
	return p;
}

/* The wrappers above by names of their own, for dlsym (hooks_dlsym.c). */
MP_EXPORT_ALIAS(mmap);
MP_EXPORT_ALIAS(mmap64);
MP_EXPORT_ALIAS(munmap);
MP_EXPORT_ALIAS(mremap);

/* Fork: the child's profile starts empty, so the mappings it inherits are not its blocks
 * (as the blocks malloc gave the parent). */
void maps_fork_prepare(void)
{
	pthread_mutex_lock(&maps_lock);
}

void maps_fork_parent(void)
{
	pthread_mutex_unlock(&maps_lock);
}

void maps_fork_child(void)
{
	pthread_mutex_init(&maps_lock, NULL);
	maps_n = 0;
	maps_nmaps = 0;
	maps_free_head = 0;
}
