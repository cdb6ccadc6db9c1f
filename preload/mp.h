/* Internal definitions shared by the files of libmemprof.so: the re-entrancy guard,
 * the global on/off switch, branch hints and diagnostics.
 *
 * The guard is one initial-exec TLS int: when set, the current thread is inside memprof
 * (or inside an allocator that a memprof hook is wrapping), and every allocation it makes
 * goes straight to the real allocator without being recorded. */
#ifndef MEMPROF_PRELOAD_MP_H
#define MEMPROF_PRELOAD_MP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define MP_EXPORT __attribute__((visibility("default")))
#define MP_TLS __attribute__((tls_model("initial-exec")))
/* An exported wrapper by a hidden name of its own, hooks_export_NAME, for dlsym
 * (hooks_dlsym.c): the program's own definitions of malloc and the like, if it has them,
 * are not memprof's. */
#if defined(__clang__)
#define MP_COPY_ATTRIBUTES(name)
#else
#define MP_COPY_ATTRIBUTES(name) copy(name), /* the target's attributes (malloc, nothrow...) */
#endif
#define MP_EXPORT_ALIAS(name)                                                                       \
	extern __typeof__(name) hooks_export_##name                                                 \
		__attribute__((alias(#name), MP_COPY_ATTRIBUTES(name) visibility("hidden")))
#define mp_likely(x) __builtin_expect(!!(x), 1)
#define mp_unlikely(x) __builtin_expect(!!(x), 0)

/* Debug checks compile in every build and switch on this constant. */
static const bool mp_config_debug = false;

extern __thread int mp_guard MP_TLS;

/* A program's signal handler that runs while its thread is inside memprof (or inside an
 * allocator a hook wraps) does so with mp_guard == MP_GUARD_HANDLER (init.c's trampoline,
 * installed in place of the program's handlers): its allocations, frees and mappings go
 * to the thread's stash (record.c) instead of its block of events, which the code it
 * interrupted may be writing. The trampoline then gives the interrupted code its guard
 * back with MP_GUARD_PENDING set when the stash holds events, and the mp_unguard that
 * takes the guard to 0 appends them (mp_guard_settle). So the guard is only ever changed
 * by single instructions (mp_guard_enter, mp_unguard), which a signal cannot split. */
#define MP_GUARD_HANDLER (1 << 24)
#define MP_GUARD_PENDING INT_MIN
void mp_guard_settle(void);
/* The innermost trampoline's frame while a handler runs over memprof (init.c). */
extern __thread uintptr_t init_handler_frame MP_TLS;

static inline void mp_guard_enter(void)
{
#if defined(__x86_64__)
	__asm__ volatile("addl $1, %0" : "+m"(mp_guard) : : "cc", "memory");
#else
	/* (an atomic read-modify-write: a signal cannot split it, an LL/SC pair retries) */
	__atomic_add_fetch(&mp_guard, 1, __ATOMIC_RELAXED);
#endif
}

static inline void mp_unguard(void)
{
#if defined(__x86_64__)
	bool negative;
	__asm__ volatile("subl $1, %0" : "+m"(mp_guard), "=@ccs"(negative) : : "memory");
	if (mp_unlikely(negative))
		mp_guard_settle();
#else
	if (mp_unlikely(__atomic_sub_fetch(&mp_guard, 1, __ATOMIC_RELAXED) < 0))
		mp_guard_settle();
#endif
}

/* A program's signal handler runs over memprof on this thread (not inside a wrapper of
 * its own). */
static inline bool mp_in_handler(void)
{
	return mp_unlikely(mp_guard == MP_GUARD_HANDLER);
}

/* Recording is on: set once the library is initialized and the process is followed;
 * cleared on internal failure and at the final flush. */
extern atomic_int mp_recording;

static inline bool mp_should_record(void)
{
	return mp_likely(atomic_load_explicit(&mp_recording, memory_order_relaxed)) && !mp_guard;
}

/* One line on stderr with write(2): never allocates. */
void mp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports an internal failure once and stops recording; the program runs on. */
void mp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The reason and the time (clock ticks) of the failure that stopped recording, once one
 * did (mp_fail); NULL before. The writer puts them in the file. */
const char *mp_stopped(uint64_t *ticks);
/* Installs memprof's handlers of the signals that end the process, where the program
 * has none (init.c): everything recorded is written before the process ends. */
void init_signals(void);
/* A forked child that execs before it recorded anything (init.c): writes
 * MP_EXEC_EMPTY "<pid>:<its file's absolute path>" at out and returns true, so that the
 * image it execs removes that file (named as if the child's image had made none). */
#define MP_EXEC_EMPTY "MEMPROF_EXEC_EMPTY="
bool init_exec_empty(char *out, size_t cap);

#endif
