/* Private jemalloc arena (see mem.h). jemalloc is linked in statically with its public
 * names renamed memprof_je_* and hidden (preload/jemalloc_private.sh): the program keeps
 * its own allocator and can never reach this one. Only the *allocx functions are used. */
#include "mem.h"
#include "mp.h"

#define mallctl memprof_je_mallctl
#define mallocx memprof_je_mallocx
#define rallocx memprof_je_rallocx
#define dallocx memprof_je_dallocx
#define sallocx memprof_je_sallocx
#define malloc_conf memprof_je_malloc_conf
#include <jemalloc/jemalloc.h>
#include <string.h>

static unsigned mem_arena;
static int mem_flags;

int mem_init(void)
{
	unsigned arena;
	size_t sz = sizeof arena;
	if (mallctl("arenas.create", &arena, &sz, NULL, 0) != 0)
		return -1;
	mem_arena = arena;
	mem_flags = MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
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

/* jemalloc's own start-up settings (it reads this symbol): memprof uses only its private
 * arena, so one automatic arena, no thread caches and no background threads keep
 * jemalloc's fixed cost (metadata, per-arena extents) to a minimum. */
const char *malloc_conf = "narenas:1,tcache:false,background_thread:false";
