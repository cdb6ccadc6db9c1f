/* Native stack capture with libunwind's fast path (unw_backtrace and its cached unwind
 * info). Instruction pointers are recorded raw and symbolized later by the analyzer. */
#ifndef MEMPROF_PRELOAD_NATIVE_H
#define MEMPROF_PRELOAD_NATIVE_H

#include "mp.h"
#include "stack.h"

#include <errno.h>
#include <libunwind.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* At most this many of memprof's own frames sit on top of a stack it unwinds. */
#define NATIVE_SELF_MAX 8
/* libmemprof.so's loaded range (native_init). */
extern uint64_t native_self_lo, native_self_hi;
/* The most of memprof's own frames seen on top of a stack: how many more frames a short
 * unwind asks for (learned, since LTO decides how many there are). */
extern atomic_uint native_self_seen;

int native_init(void);

/* The thread is inside libunwind for memprof: a signal handler that runs over memprof
 * does not unwind (record_stash), libunwind's per-thread cache being half updated. */
extern __thread int native_in_libunwind MP_TLS;

/* True if ip lies in libmemprof.so itself. */
static inline bool native_is_self(uint64_t ip)
{
	return ip >= native_self_lo && ip < native_self_hi;
}

/* Fills ips[] innermost first with up to max return addresses of the caller's stack,
 * memprof's own frames left out. Returns the count. With `exact`, libunwind is asked for
 * only as many frames more than max as memprof's own frames have been seen to take, so
 * fewer than max may come back although the stack goes on; *whole (if not NULL) tells
 * whether the unwind reached the end of the stack. *cut (if not NULL) tells whether frames
 * beyond max were left out (or may have been: the unwind stopped at the most it asked for).
 *
 * Always inlined, as is the capture around it, down to record_alloc: libunwind steps
 * through every frame of memprof's own on every allocation in native and mixed mode
 * (five frames became three: mixed mode 10% faster on py_alloc, 7% on py_json). */
static inline __attribute__((always_inline)) unsigned native_backtrace(uint64_t *ips, unsigned max, bool exact,
								      bool *whole, bool *cut)
{
	void *buf[STACK_MAX_FRAMES + NATIVE_SELF_MAX];
	unsigned slack = exact ? atomic_load_explicit(&native_self_seen, memory_order_relaxed) : NATIVE_SELF_MAX;
	unsigned want = max + slack;
	if (want > STACK_MAX_FRAMES + NATIVE_SELF_MAX)
		want = STACK_MAX_FRAMES + NATIVE_SELF_MAX;
	int saved = errno; /* libunwind may probe memory with system calls */
	native_in_libunwind++;
	int n = unw_backtrace(buf, (int)want);
	native_in_libunwind--;
	errno = saved;
	if (whole)
		*whole = n < (int)want;
	if (cut)
		*cut = false;
	if (n <= 0)
		return 0;
	unsigned i = 0;
	while (i < (unsigned)n && native_is_self((uint64_t)(uintptr_t)buf[i]))
		i++;
	if (cut)
		*cut = n == (int)want || (unsigned)n - i > max;
	if (mp_unlikely(i > slack && i <= NATIVE_SELF_MAX && i < (unsigned)n))
		atomic_store_explicit(&native_self_seen, i, memory_order_relaxed);
	unsigned k = 0;
	for (; i < (unsigned)n && k < max; i++)
		ips[k++] = (uint64_t)(uintptr_t)buf[i];
	return k;
}

/* Interns ips[0..n) from native_backtrace (innermost first; turned into stack frames in
 * place) below node `parent`; `cut` (native_backtrace's) hangs them from the truncation
 * marker there (format.h). Returns the node, or 0 after an internal failure. */
uint32_t native_intern(stack_cache_t *c, uint32_t parent, uint64_t *ips, unsigned n, bool cut);

#endif
