/* Native stack capture (see native.h). */
#define _GNU_SOURCE
#include "native.h"
#include "mp.h"
#include "modules.h"
#include "stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <libunwind.h>
#include <memprof/format.h>
#include <string.h>

#define NATIVE_SELF_MAX 8

static uint64_t native_self_lo, native_self_hi;

static int native_find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	/* the object whose loaded range holds this function: all its PT_LOAD segments */
	uint64_t me = (uint64_t)(uintptr_t)arg, lo, hi;
	modules_span(info, &lo, &hi);
	if (me < lo || me >= hi)
		return 0;
	native_self_lo = lo;
	native_self_hi = hi;
	return 1;
}

int native_init(void)
{
	dl_iterate_phdr(native_find_self, (void *)(uintptr_t)&native_find_self);
	return native_self_hi ? 0 : -1;
}

int native_is_self(uint64_t ip)
{
	return ip >= native_self_lo && ip < native_self_hi;
}

/* The most of memprof's own frames seen on top of a stack: how many more frames a short
 * unwind asks for (learned, since LTO decides how many there are). */
static atomic_uint native_self_seen;

unsigned native_backtrace(uint64_t *ips, unsigned max, bool exact, bool *whole)
{
	void *buf[STACK_MAX_FRAMES + NATIVE_SELF_MAX];
	unsigned slack = exact ? atomic_load_explicit(&native_self_seen, memory_order_relaxed) : NATIVE_SELF_MAX;
	unsigned want = max + slack;
	if (want > STACK_MAX_FRAMES + NATIVE_SELF_MAX)
		want = STACK_MAX_FRAMES + NATIVE_SELF_MAX;
	int saved = errno; /* libunwind may probe memory with system calls */
	int n = unw_backtrace(buf, (int)want);
	errno = saved;
	if (whole)
		*whole = n < (int)want;
	if (n <= 0)
		return 0;
	unsigned i = 0;
	while (i < (unsigned)n && native_is_self((uint64_t)(uintptr_t)buf[i]))
		i++;
	if (mp_unlikely(i > slack && i <= NATIVE_SELF_MAX && i < (unsigned)n))
		atomic_store_explicit(&native_self_seen, i, memory_order_relaxed);
	unsigned k = 0;
	for (; i < (unsigned)n && k < max; i++)
		ips[k++] = (uint64_t)(uintptr_t)buf[i];
	return k;
}

void native_frames(uint64_t *ips, unsigned n)
{
	unsigned gen = modules_generation();
	for (unsigned i = 0; i < n / 2; i++) {
		uint64_t x = ips[i];
		ips[i] = mp_frame_native(ips[n - 1 - i], gen);
		ips[n - 1 - i] = mp_frame_native(x, gen);
	}
	if (n & 1)
		ips[n / 2] = mp_frame_native(ips[n / 2], gen);
}
