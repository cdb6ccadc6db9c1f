/* Private jemalloc arena (see mem.h). jemalloc is linked in statically with its public
 * names renamed memprof_je_* and hidden (preload/jemalloc_private.sh): the program keeps
 * its own allocator and can never reach this one. Only the *allocx functions are used. */
#include "mem.h"
#include "mp.h"

#define mallocx memprof_je_mallocx
#define rallocx memprof_je_rallocx
#define dallocx memprof_je_dallocx
#define sallocx memprof_je_sallocx
#include <jemalloc/jemalloc.h>
#include <string.h>

static int mem_flags;

/* This jemalloc is memprof's alone, so its automatic arena is memprof's private arena.
 * No mallctl call: its first use sets up statistics for every arena, ~0.4 MB (python3
 * -c pass 12.4 -> 12.0 MB without it). An allocation initializes jemalloc here, during
 * memprof's start-up. */
int mem_init(void)
{
	mem_flags = MALLOCX_ARENA(0) | MALLOCX_TCACHE_NONE;
	void *p = mallocx(1, mem_flags);
	if (!p)
		return -1;
	dallocx(p, mem_flags);
	return 0;
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
