/* Private jemalloc arena (see mem.h). jemalloc is linked in statically with its public
 * names renamed memprof_je_* and hidden (preload/jemalloc_private.sh): the program keeps
 * its own allocator and can never reach this one. Only the *allocx functions are used. */
#include "mem.h"
#include "mp.h"

#define mallocx memprof_je_mallocx
#define rallocx memprof_je_rallocx
#define dallocx memprof_je_dallocx
#define sallocx memprof_je_sallocx
#define nallocx memprof_je_nallocx
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int mem_flags;
static bool mem_reuse_on; /* the size classes are the ones mem_reuse_class knows */
static bool mem_reuse_class_ok(void);

/* This jemalloc is memprof's alone, so its automatic arena is memprof's private arena.
 * No mallctl call: its first use sets up statistics for every arena, ~0.4 MB (python3
 * -c pass 12.4 -> 12.0 MB without it). An allocation initializes jemalloc here, during
 * memprof's start-up; then the reuse cache checks jemalloc's size classes. */
int mem_init(void)
{
	mem_flags = MALLOCX_ARENA(0) | MALLOCX_TCACHE_NONE;
	void *p = mallocx(1, mem_flags);
	if (!p)
		return -1;
	dallocx(p, mem_flags);
	mem_reuse_on = mem_reuse_class_ok();
	return 0;
}

void *memprof_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int memprof_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

void *mem_alloc(size_t size)
{
	return mallocx(size ? size : 1, mem_flags | MALLOCX_ZERO);
}

void *mem_realloc(void *p, size_t size)
{
	if (!p)
		return mem_alloc(size);
	return rallocx(p, size ? size : 1, mem_flags);
}

void mem_free(void *p)
{
	if (p)
		dallocx(p, mem_flags);
}

size_t mem_usable(void *p)
{
	return p ? sallocx(p, mem_flags) : 0;
}

char *mem_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = mem_alloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* ---- the reuse cache ---------------------------------------------------------------- */

/* Blocks of at most MEM_REUSE_MAX_BLOCK bytes freed through mem_reuse_free, by size
 * class (jemalloc's: the usable size, 4 classes per doubling), up to MEM_REUSE_BYTES in
 * all, singly linked through their first word. SQLite allocates and frees a few blocks
 * per statement (a record being built, a page being balanced, the page cache's buffers);
 * alone in its slab, such a block made jemalloc, which returns pages at once (see
 * below), call madvise on every free and fault the page in again on the next
 * allocation: ~1,300 madvise calls in py_threads' writer, each flushing the TLB of the
 * program's core as well (an interprocessor interrupt). SQLite runs on one thread at a
 * time (under the writer's lock), so the cache's lock is not contended; it is taken with
 * a trylock all the same, so that no allocation ever waits for it (the fork handler holds
 * it across a fork): a call that finds it busy goes to jemalloc directly. */
#define MEM_REUSE_MAX_BLOCK (64u << 10)
#define MEM_REUSE_BYTES (256u << 10)
#define MEM_REUSE_CLASSES 45 /* mem_reuse_class(MEM_REUSE_MAX_BLOCK) + 1 */

static pthread_mutex_t mem_reuse_lock = PTHREAD_MUTEX_INITIALIZER;
static void *mem_reuse_head[MEM_REUSE_CLASSES];
static size_t mem_reuse_bytes;

/* The list of usable size u (a jemalloc size class of at most MEM_REUSE_MAX_BLOCK): u =
 * 2^g + k 2^(g-2) with k in 1..4, or 8, 16, 32, 48, 64 below 2^6. */
static unsigned mem_reuse_class(size_t u)
{
	if (u <= 64)
		return (unsigned)(u >> 4); /* 8 -> 0, 16 -> 1, 32 -> 2, 48 -> 3, 64 -> 4 */
	unsigned g = 63u - (unsigned)__builtin_clzll((unsigned long long)(u - 1));
	return 4 * (g - 5) + 1 + (unsigned)(((u - 1) - ((size_t)1 << g)) >> (g - 2));
}

/* Whether jemalloc's size classes up to MEM_REUSE_MAX_BLOCK are the ones mem_reuse_class
 * numbers 0, 1, 2, ... (a 16-byte quantum, as on x86-64): with another quantum two
 * classes would share a list, and the cache is left off. */
static bool mem_reuse_class_ok(void)
{
	unsigned want = 0;
	for (size_t s = 1; s <= MEM_REUSE_MAX_BLOCK; want++) {
		size_t u = nallocx(s, mem_flags);
		if (!u || mem_reuse_class(u) != want || want >= MEM_REUSE_CLASSES)
			return false;
		s = u + 1;
	}
	return want == MEM_REUSE_CLASSES;
}

void *mem_reuse_alloc(size_t size)
{
	size_t u = nallocx(size ? size : 1, mem_flags);
	if (mem_reuse_on && u && u <= MEM_REUSE_MAX_BLOCK && pthread_mutex_trylock(&mem_reuse_lock) == 0) {
		unsigned c = mem_reuse_class(u);
		void *p = mem_reuse_head[c];
		if (p) {
			memcpy(&mem_reuse_head[c], p, sizeof(void *));
			mem_reuse_bytes -= u;
		}
		pthread_mutex_unlock(&mem_reuse_lock);
		if (p)
			return p;
	}
	return mallocx(size ? size : 1, mem_flags);
}

void mem_reuse_free(void *p)
{
	if (!p)
		return;
	size_t u = sallocx(p, mem_flags);
	if (mem_reuse_on && u <= MEM_REUSE_MAX_BLOCK && pthread_mutex_trylock(&mem_reuse_lock) == 0) {
		bool kept = mem_reuse_bytes + u <= MEM_REUSE_BYTES;
		if (kept) {
			unsigned c = mem_reuse_class(u);
			memcpy(p, &mem_reuse_head[c], sizeof(void *));
			mem_reuse_head[c] = p;
			mem_reuse_bytes += u;
		}
		pthread_mutex_unlock(&mem_reuse_lock);
		if (kept)
			return;
	}
	dallocx(p, mem_flags);
}

size_t mem_reuse_cached(void)
{
	pthread_mutex_lock(&mem_reuse_lock);
	size_t n = mem_reuse_bytes;
	pthread_mutex_unlock(&mem_reuse_lock);
	return n;
}

void mem_fork_prepare(void)
{
	pthread_mutex_lock(&mem_reuse_lock);
}

void mem_fork_parent(void)
{
	pthread_mutex_unlock(&mem_reuse_lock);
}

void mem_fork_child(void)
{
	pthread_mutex_init(&mem_reuse_lock, NULL);
}

/* jemalloc's own start-up settings. memprof uses only its private arena, so one
 * automatic arena, no thread caches and no background threads keep jemalloc's fixed cost
 * (metadata, per-arena extents) to a minimum. jemalloc reads malloc_conf, then
 * /etc/malloc.conf and MALLOC_CONF, which are the program's (for its own jemalloc, if
 * it has one), then malloc_conf_2_conf_harder: so the settings are given there, last,
 * with profiling and the statistics report at exit off (they would write the program's
 * jeprof files and stderr), and jemalloc's messages (an option this copy does not know,
 * say) are dropped: the program's stderr is its own. Pages memprof frees (encoder
 * buffers shrinking, a thread's state) go back to the system at once instead of after
 * jemalloc's default 10 s: peak RSS 0.3 MB lower on `python3 -c pass`, 0.7-0.8 MB on
 * py_json and py_threads, no change in time (memprof frees large blocks rarely). */
const char *memprof_je_malloc_conf_2_conf_harder =
	"narenas:1,tcache:false,background_thread:false,prof:false,stats_print:false,abort:false,abort_conf:false,"
	"dirty_decay_ms:0,muzzy_decay_ms:0";
extern void (*memprof_je_malloc_message)(void *, const char *);

static void mem_message(void *arg, const char *s)
{
}

/* Before jemalloc's own constructor can run (constructors with a priority come first). */
__attribute__((constructor(101))) static void mem_quiet(void)
{
	memprof_je_malloc_message = mem_message;
}
