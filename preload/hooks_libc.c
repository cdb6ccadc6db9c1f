/* The exported C allocator entry points. Each calls the real function and then the
 * recording core; a free is recorded first, so that the address cannot be handed out
 * again before its free is stamped. Nothing here but thin wrappers. */
#define _GNU_SOURCE
#include "clock.h"
#include "modules.h"
#include "mp.h"
#include "real.h"
#include "record.h"
#include "sampler.h"
#include "writer.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <memprof/format.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline void hooks_ensure_real(void)
{
	if (mp_unlikely(!real.malloc))
		real_init();
}

/* malloc, free and calloc first ask whether the call is to be recorded at all: when it
 * is not (memprof's own calls, calls inside a wrapped allocator, and most calls in
 * sampling mode, which are only counted down) they tail-call the real function, and no
 * frame of memprof's stays on the stack around it. */
static __attribute__((noinline)) void *hooks_malloc(size_t size)
{
	hooks_ensure_real();
	if (mp_unlikely(!real.malloc))
		return real_bootstrap_alloc(size);
	void *p = real.malloc(size);
	if (p)
		record_allocated(p, size, MP_AL_MALLOC, RECORD_CALLER);
	return p;
}

__thread uintptr_t record_altstack_lo MP_TLS;
__thread size_t record_altstack_size MP_TLS;

/* Notes the thread's alternate signal stack (record_on_small_altstack). */
MP_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	int rc = (int)syscall(SYS_sigaltstack, ss, old);
	if (rc == 0 && ss) {
		record_altstack_lo = (uintptr_t)ss->ss_sp;
		record_altstack_size = ss->ss_flags & SS_DISABLE ? 0 : ss->ss_size;
	}
	return rc;
}

MP_EXPORT void *malloc(size_t size)
{
	if (mp_likely(real.malloc) && (!mp_should_record() ? !mp_in_handler() : record_skip_alloc(size)))
		return real.malloc(size);
	return hooks_malloc(size);
}

static __attribute__((noinline)) void hooks_free(void *p)
{
	if (!p || mp_unlikely(real_is_bootstrap(p)))
		return;
	hooks_ensure_real();
	if (!mp_should_record())
		record_free_unrecorded(p);
	else if (!record_skip_free(p))
		record_free(p, RECORD_TS_NOW);
	real.free(p);
}

MP_EXPORT void free(void *p)
{
	if (mp_likely(p && real.free && !real_is_bootstrap(p)) &&
	    (!mp_should_record() ? !mp_in_handler() : record_skip_free(p)))
		return real.free(p);
	hooks_free(p);
}

static __attribute__((noinline)) void *hooks_calloc(size_t n, size_t size)
{
	hooks_ensure_real();
	if (mp_unlikely(!real.calloc)) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total))
			return NULL;
		return real_bootstrap_alloc(total);
	}
	void *p = real.calloc(n, size);
	if (p)
		record_allocated(p, n * size, MP_AL_CALLOC, RECORD_CALLER);
	return p;
}

MP_EXPORT void *calloc(size_t n, size_t size)
{
	if (mp_likely(real.calloc) && (!mp_should_record() ? !mp_in_handler() : record_skip_alloc(n * size)))
		return real.calloc(n, size);
	return hooks_calloc(n, size);
}

MP_EXPORT void *realloc(void *old, size_t size)
{
	hooks_ensure_real();
	if (mp_unlikely(old && real_is_bootstrap(old))) {
		/* a block from the dlsym bootstrap pool: move it to the real heap */
		void *p = malloc(size);
		size_t n = real_bootstrap_avail(old);
		if (p)
			__builtin_memcpy(p, old, n < size ? n : size);
		return p;
	}
	if (!mp_should_record()) {
		if (!mp_in_handler())
			return real.realloc(old, size);
		uint64_t ts = clock_now();
		void *p = real.realloc(old, size);
		if (old && (p || size == 0))
			record_stash(RECORD_STASH_FREE, old, 0, 0, ts);
		if (p)
			record_allocated(p, size, MP_AL_REALLOC, RECORD_CALLER);
		return p;
	}
	uint64_t ts = clock_now();
	bool taken = record_realloc_begin(old);
	/* (under the guard until both events are in: a signal handler's allocation at old's
	 * address, made meanwhile, goes into the stream after old's free) */
	mp_guard_enter();
	void *p = real.realloc(old, size);
	/* (realloc(p, 0) freed p) */
	record_realloc_done(taken, old, ts, p, size, !p && old && size == 0, MP_AL_REALLOC, RECORD_CALLER);
	mp_unguard();
	return p;
}

MP_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	hooks_ensure_real();
	if (!mp_should_record() || !real.reallocarray)
		return real.reallocarray ? real.reallocarray(old, n, size) : NULL;
	uint64_t ts = clock_now();
	/* glibc's reallocarray calls realloc through the PLT, that is our realloc hook:
	 * guard it so that the call is recorded once, as reallocarray */
	bool taken = record_realloc_begin(old);
	mp_guard_enter();
	void *p = real.reallocarray(old, n, size);
	bool freed = !p && old && n * size == 0 && errno != ENOMEM;
	record_realloc_done(taken, old, ts, p, n * size, freed, MP_AL_REALLOCARRAY, RECORD_CALLER);
	mp_unguard();
	return p;
}

MP_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	hooks_ensure_real();
	int r = real.posix_memalign(out, align, size);
	if (r == 0 && *out)
		record_allocated(*out, size, MP_AL_POSIX_MEMALIGN, RECORD_CALLER);
	return r;
}

MP_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	hooks_ensure_real();
	void *p = real.aligned_alloc(align, size);
	if (p)
		record_allocated(p, size, MP_AL_ALIGNED_ALLOC, RECORD_CALLER);
	return p;
}

MP_EXPORT void *memalign(size_t align, size_t size)
{
	hooks_ensure_real();
	void *p = real.memalign(align, size);
	if (p)
		record_allocated(p, size, MP_AL_MEMALIGN, RECORD_CALLER);
	return p;
}

MP_EXPORT void *valloc(size_t size)
{
	hooks_ensure_real();
	void *p = real.valloc(size);
	if (p)
		record_allocated(p, size, MP_AL_VALLOC, RECORD_CALLER);
	return p;
}

MP_EXPORT void *pvalloc(size_t size)
{
	hooks_ensure_real();
	void *p = real.pvalloc(size);
	if (p)
		record_allocated(p, size, MP_AL_PVALLOC, RECORD_CALLER);
	return p;
}

/* Before an object is unloaded, make sure the module map has it; once something was
 * unloaded, a new module generation (modules.h): what is loaded at its address next is
 * told apart from it. */
MP_EXPORT int dlclose(void *handle)
{
	hooks_ensure_real();
	writer_before_dlclose();
	unsigned long long unloads = modules_unloads();
	int r = real.dlclose(handle);
	if (r == 0)
		modules_after_dlclose(unloads);
	return r;
}

/* _exit skips destructors: write everything recorded first. */
MP_EXPORT void _exit(int status)
{
	hooks_ensure_real();
	writer_final_flush();
	real.exit_(status);
}

MP_EXPORT void _Exit(int status)
{
	hooks_ensure_real();
	writer_final_flush();
	real.Exit_(status);
}

/* quick_exit runs the at_quick_exit handlers and ends by _exit inside libc, past the
 * _exit hook: write everything first. */
MP_EXPORT void quick_exit(int status)
{
	hooks_ensure_real();
	writer_final_flush();
	real.quick_exit(status);
}

/* Whether `sig`, sent to this thread's process now, ends it: its default action is to
 * end the process, that action is in force, and this thread does not block it. Not from
 * inside memprof (a program's handler that interrupted memprof: the writer may need a
 * lock that thread holds). */
static bool hooks_signal_ends(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGCONT: case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU: case SIGURG:
	case SIGWINCH:
		return false;
	}
	struct sigaction sa;
	sigset_t mask;
	return sig > 0 && sig < NSIG && !mp_guard && (sig == SIGKILL || (sigaction(sig, NULL, &sa) == 0 &&
		!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL && pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 &&
		!sigismember(&mask, sig)));
}

/* A program that ends itself with a signal skips exit handlers, like _exit: everything
 * recorded is written first. CPython does so after an uncaught KeyboardInterrupt (it
 * finalizes, then kill(getpid(), SIGINT)). */
MP_EXPORT int kill(pid_t pid, int sig)
{
	hooks_ensure_real();
	if ((pid == 0 || pid == getpid()) && hooks_signal_ends(sig))
		writer_final_flush();
	return real.kill(pid, sig);
}

MP_EXPORT int raise(int sig)
{
	hooks_ensure_real();
	if (hooks_signal_ends(sig))
		writer_final_flush();
	return real.raise(sig);
}

/* The main thread ending by pthread_exit leaves the process to its other threads, which
 * end it (exit(0), as glibc's last thread does) when the last of them ends; memprof's own
 * threads would keep it alive forever: the sampler ends it instead (sampler.c). */
MP_EXPORT void pthread_exit(void *retval)
{
	hooks_ensure_real();
	if ((pid_t)syscall(SYS_gettid) == getpid())
		sampler_main_exited();
	real.pthread_exit(retval);
}

/* The wrappers above by names of their own, for dlsym (hooks_dlsym.c). */
MP_EXPORT_ALIAS(malloc);
MP_EXPORT_ALIAS(free);
MP_EXPORT_ALIAS(calloc);
MP_EXPORT_ALIAS(realloc);
MP_EXPORT_ALIAS(reallocarray);
MP_EXPORT_ALIAS(posix_memalign);
MP_EXPORT_ALIAS(aligned_alloc);
MP_EXPORT_ALIAS(memalign);
MP_EXPORT_ALIAS(valloc);
MP_EXPORT_ALIAS(pvalloc);
