/* Native stack capture (see native.h). */
#define _GNU_SOURCE
#include "native.h"
#include "mp.h"
#include "modules.h"
#include "stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <libunwind.h>
#include <memprof/format.h>
#include <string.h>

uint64_t native_self_lo, native_self_hi;
__thread int native_in_libunwind MP_TLS;

int native_init(void)
{
	/* the object whose loaded range holds this function: all its PT_LOAD segments */
	return modules_span_of((uint64_t)(uintptr_t)&native_init, &native_self_lo, &native_self_hi) ? 0 : -1;
}

atomic_uint native_self_seen;

/* ips[0..n) innermost first -> stack frames outermost first (stack_intern's order). */
static void native_frames(uint64_t *ips, unsigned n)
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

uint32_t native_intern(stack_cache_t *c, uint32_t parent, uint64_t *ips, unsigned n, bool cut)
{
	if (cut && !(parent = stack_child(c, parent, MP_FRAME_TRUNCATED)))
		return 0;
	native_frames(ips, n);
	return stack_intern(c, parent, ips, n);
}
