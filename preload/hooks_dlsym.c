/* dlsym, so that the allocator functions (and mmap, mmap64, munmap, mremap) a program
 * looks up in a library's own handle are memprof's too. ctypes' CDLL("libc.so.6").free is libc's free itself, which memprof
 * never saw: a block that C code allocated (strdup, through memprof's malloc) and Python
 * freed that way stayed live in the profile for ever. Asked for one of the C allocator
 * functions memprof wraps, on a handle whose answer is the very function memprof forwards
 * to, dlsym answers memprof's wrapper, which calls that same function.
 *
 * dlsym must see its caller: with RTLD_NEXT and RTLD_DEFAULT, glibc looks from the
 * object its return address is in. So the entry point is a few instructions of assembly
 * that leave the return address alone: they ask hooks_dlsym_pick, which answers only for
 * a library's own handle (where the caller does not matter), and jump to the real dlsym
 * unless it answered. x86-64 only; elsewhere dlsym is not
 * wrapped (README, Limitations). */
#define _GNU_SOURCE
#include "mp.h"
#include "real.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)

void *hooks_dlsym_pick(void *handle, const char *name);

/* The real dlsym (libc's; GLIBC_2.34, or GLIBC_2.2.5 before libdl merged into libc). */
__attribute__((used, visibility("hidden"))) void *(*hooks_dlsym_real)(void *, const char *);

static void *hooks_dlsym_resolve(void)
{
	void *f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
	if (!f)
		f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
	if (!f) {
		static const char msg[] = "memprof: cannot find the real dlsym; aborting\n";
		ssize_t r = write(2, msg, sizeof msg - 1);
		(void)r;
		abort();
	}
	*(void **)&hooks_dlsym_real = f;
	return f;
}

/* memprof's wrappers (hooks_libc.c), by names of their own: the program's own
 * definitions of malloc and the like, if it has them, are not memprof's. */
extern __typeof__(malloc) hooks_export_malloc;
extern __typeof__(free) hooks_export_free;
extern __typeof__(calloc) hooks_export_calloc;
extern __typeof__(realloc) hooks_export_realloc;
extern __typeof__(reallocarray) hooks_export_reallocarray;
extern __typeof__(posix_memalign) hooks_export_posix_memalign;
extern __typeof__(aligned_alloc) hooks_export_aligned_alloc;
extern __typeof__(memalign) hooks_export_memalign;
extern __typeof__(valloc) hooks_export_valloc;
extern __typeof__(pvalloc) hooks_export_pvalloc;
/* (hooks_mmap.c) */
extern void *hooks_export_mmap(void *, size_t, int, int, int, off_t);
extern void *hooks_export_mmap64(void *, size_t, int, int, int, off_t);
extern int hooks_export_munmap(void *, size_t);
extern void *hooks_export_mremap(void *, size_t, size_t, int, ...);

/* memprof's wrapper for `name`, if the handle is a library's own (not RTLD_DEFAULT or
 * RTLD_NEXT, whose answer depends on the caller) and its answer is the function memprof
 * forwards that name to; else NULL (the real dlsym answers). Resolves the real dlsym
 * first: the stub jumps to it then. */
__attribute__((used, visibility("hidden"))) void *hooks_dlsym_pick(void *handle, const char *name)
{
	if (mp_unlikely(!hooks_dlsym_real))
		hooks_dlsym_resolve();
	if (handle == RTLD_DEFAULT || handle == RTLD_NEXT || !name || !name[0] || !strchr("acfmprv", name[0]))
		return NULL;
	if (mp_unlikely(!real.malloc))
		real_init();
	const struct {
		const char *name;
		void *wrapper, *real;
	} fns[] = {
		{"malloc", (void *)hooks_export_malloc, (void *)real.malloc},
		{"free", (void *)hooks_export_free, (void *)real.free},
		{"calloc", (void *)hooks_export_calloc, (void *)real.calloc},
		{"realloc", (void *)hooks_export_realloc, (void *)real.realloc},
		{"reallocarray", (void *)hooks_export_reallocarray, (void *)real.reallocarray},
		{"posix_memalign", (void *)hooks_export_posix_memalign, (void *)real.posix_memalign},
		{"aligned_alloc", (void *)hooks_export_aligned_alloc, (void *)real.aligned_alloc},
		{"memalign", (void *)hooks_export_memalign, (void *)real.memalign},
		{"valloc", (void *)hooks_export_valloc, (void *)real.valloc},
		{"pvalloc", (void *)hooks_export_pvalloc, (void *)real.pvalloc},
		{"mmap", (void *)hooks_export_mmap, (void *)real.mmap},
		{"mmap64", (void *)hooks_export_mmap64, (void *)real.mmap64},
		{"munmap", (void *)hooks_export_munmap, (void *)real.munmap},
		{"mremap", (void *)hooks_export_mremap, (void *)real.mremap},
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		if (strcmp(name, fns[i].name) != 0)
			continue;
		void *found = fns[i].real ? hooks_dlsym_real(handle, name) : NULL;
		return found && found == fns[i].real ? fns[i].wrapper : NULL;
	}
	return NULL;
}

/* dlsym(handle, name): rdi, rsi, kept across the call of hooks_dlsym_pick; its answer,
 * or a jump to the real dlsym with the caller's return address in place. The stack is
 * 16-byte aligned at the call (8 on entry, two pushes and 8 more). */
__asm__(".text\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	".p2align 4\n"
	"dlsym:\n"
	".cfi_startproc\n"
	"	endbr64\n"
	"	pushq %rdi\n"
	".cfi_adjust_cfa_offset 8\n"
	"	pushq %rsi\n"
	".cfi_adjust_cfa_offset 8\n"
	"	subq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"	call hooks_dlsym_pick\n"
	"	addq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"	popq %rsi\n"
	".cfi_adjust_cfa_offset -8\n"
	"	popq %rdi\n"
	".cfi_adjust_cfa_offset -8\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"
	"1:	jmp *hooks_dlsym_real(%rip)\n"
	".cfi_endproc\n"
	".size dlsym, .-dlsym\n");

#endif
