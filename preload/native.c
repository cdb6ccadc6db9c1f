/* Native stack capture (see native.h). */
#define _GNU_SOURCE
#include "native.h"
#include "mp.h"
#include "stack.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <libunwind.h>
#include <string.h>

#define NATIVE_SELF_MAX 8

static uint64_t native_self_lo, native_self_hi;

static int native_find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	uint64_t me = (uint64_t)(uintptr_t)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (me >= lo && me < hi) {
			/* the whole object: all its PT_LOAD segments */
			uint64_t olo = UINT64_MAX, ohi = 0;
			for (int j = 0; j < info->dlpi_phnum; j++) {
				const ElfW(Phdr) *q = &info->dlpi_phdr[j];
				if (q->p_type != PT_LOAD)
					continue;
				uint64_t a = info->dlpi_addr + q->p_vaddr;
				if (a < olo)
					olo = a;
				if (a + q->p_memsz > ohi)
					ohi = a + q->p_memsz;
			}
			native_self_lo = olo;
			native_self_hi = ohi;
			return 1;
		}
	}
	return 0;
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
