/* Resolution of the real allocator functions (see real.h). */
#define _GNU_SOURCE
#include "real.h"
#include "mp.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

real_fns_t real;

static _Alignas(64) unsigned char real_pool[64 * 1024];
static atomic_size_t real_pool_used;
static atomic_int real_state; /* 0 none, 1 resolving, 2 done */

void *real_bootstrap_alloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	size_t off = atomic_fetch_add(&real_pool_used, size);
	if (off + size > sizeof real_pool)
		return NULL;
	return real_pool + off; /* static storage: already zero */
}

int real_is_bootstrap(const void *p)
{
	return (const unsigned char *)p >= real_pool && (const unsigned char *)p < real_pool + sizeof real_pool;
}

size_t real_bootstrap_avail(const void *p)
{
	return (size_t)(real_pool + sizeof real_pool - (const unsigned char *)p);
}

#define REAL_SYM(name) (__typeof__(real.name))dlsym(RTLD_NEXT, #name)

void real_init(void)
{
	int expected = 0;
	if (atomic_load_explicit(&real_state, memory_order_acquire) == 2)
		return;
	if (!atomic_compare_exchange_strong(&real_state, &expected, 1)) {
		/* another thread is resolving (or this one, re-entered from dlsym) */
		return;
	}
	mp_guard_enter();
	real.malloc = REAL_SYM(malloc);
	real.free = REAL_SYM(free);
	real.calloc = REAL_SYM(calloc);
	real.realloc = REAL_SYM(realloc);
	real.reallocarray = REAL_SYM(reallocarray);
	real.posix_memalign = REAL_SYM(posix_memalign);
	real.aligned_alloc = REAL_SYM(aligned_alloc);
	real.memalign = REAL_SYM(memalign);
	real.valloc = REAL_SYM(valloc);
	real.pvalloc = REAL_SYM(pvalloc);
	real.dlclose = REAL_SYM(dlclose);
	real.execve = REAL_SYM(execve);
	real.execv = REAL_SYM(execv);
	real.execvp = REAL_SYM(execvp);
	real.execvpe = REAL_SYM(execvpe);
	real.fexecve = REAL_SYM(fexecve);
	real.kill = REAL_SYM(kill);
	real.raise = REAL_SYM(raise);
	real.close = REAL_SYM(close);
	real.close_range = REAL_SYM(close_range);
	real.closefrom = REAL_SYM(closefrom);
	real.pipe2 = REAL_SYM(pipe2);
	real.sigaction = REAL_SYM(sigaction);
	real.signal = REAL_SYM(signal);
	real.dup2 = REAL_SYM(dup2);
	real.dup3 = REAL_SYM(dup3);
	*(void **)&real.pthread_exit = dlsym(RTLD_NEXT, "pthread_exit");
	*(void **)&real.exit_ = dlsym(RTLD_NEXT, "_exit");
	*(void **)&real.Exit_ = dlsym(RTLD_NEXT, "_Exit");
	*(void **)&real.quick_exit = dlsym(RTLD_NEXT, "quick_exit");
	real.mmap = REAL_SYM(mmap);
	real.mmap64 = REAL_SYM(mmap64);
	real.munmap = REAL_SYM(munmap);
	real.mremap = REAL_SYM(mremap);
	mp_unguard();
	if (!real.malloc || !real.free || !real.calloc || !real.realloc) {
		static const char msg[] = "memprof: cannot find the real malloc; aborting\n";
		ssize_t r = write(2, msg, sizeof msg - 1);
		(void)r;
		abort();
	}
	atomic_store_explicit(&real_state, 2, memory_order_release);
}
