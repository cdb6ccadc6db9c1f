/* C++'s operator new and delete, for programs whose come from an allocator library that
 * replaces libstdc++'s: jemalloc, tcmalloc and mimalloc export all twenty, and theirs
 * never call malloc, so nothing a C++ program linked with one of them allocated with
 * `new` (its containers, its strings) was recorded.
 *
 * Each symbol is a jump through a slot. The first call finds the next definitions
 * (dlsym(RTLD_NEXT)): where they are libstdc++'s, which call malloc (recorded there),
 * the slot is the next definition itself, so the jump leaves no frame of memprof's on the
 * stack and nothing changes; elsewhere the slot is a wrapper that records the block, as
 * the malloc hook does (an aligned new as aligned_alloc, any other as malloc) and each
 * delete as a free. A delete and an aligned new run the next operator under the guard
 * (jemalloc's call free and aligned_alloc, which are hooked: recorded once); a plain new
 * does not (none of those libraries' calls malloc, and the bad_alloc it may throw is
 * allocated inside it, a block of the program's). x86-64 only, like the jump (elsewhere new and delete are not
 * wrapped: README, Limitations). */
#define _GNU_SOURCE
#include "mp.h"
#include "real.h"
#include "record.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)

typedef void *(*cxx_new_fn)(size_t, uintptr_t, uintptr_t);
typedef void (*cxx_delete_fn)(void *, uintptr_t, uintptr_t);

static void cxx_resolve(void);

/* The guard taken around the next operator, given back however the block is left: a new
 * that throws leaves it by unwinding (this file is compiled with -fexceptions, so that
 * the cleanup runs then too). */
static inline void cxx_unguard(unsigned *was)
{
	mp_guard = *was;
}

/* NAME: the mangled symbol; KIND: MP_AL_* of a new, -1 for a delete. For each: the slot
 * the exported symbol jumps through (first cxx_first_NAME, which resolves every slot
 * and calls again), the next definition, and the recording wrapper. */
#define CXX_NEW(name, kind)                                                                                    \
	static void *cxx_first_##name(size_t n, uintptr_t a, uintptr_t b);                                     \
	__attribute__((used, visibility("hidden"))) void *cxx_slot_##name = (void *)cxx_first_##name;           \
	static cxx_new_fn cxx_next_##name;                                                                     \
	static void *cxx_first_##name(size_t n, uintptr_t a, uintptr_t b)                                      \
	{                                                                                                      \
		cxx_resolve();                                                                                 \
		return ((cxx_new_fn)cxx_slot_##name)(n, a, b);                                                 \
	}                                                                                                      \
	static __attribute__((noinline)) void *cxx_rec_##name(size_t n, uintptr_t a, uintptr_t b)             \
	{                                                                                                      \
		bool rec = mp_should_record() && !record_skip_alloc(n);                                        \
		void *p;                                                                                       \
		{                                                                                              \
			unsigned guard __attribute__((cleanup(cxx_unguard))) = mp_guard;                       \
			mp_guard += (kind) == MP_AL_ALIGNED_ALLOC;                                              \
			(void)guard;                                                                           \
			p = cxx_next_##name(n, a, b);                                                          \
		}                                                                                              \
		if (p && rec)                                                                                  \
			record_alloc(p, n, kind, RECORD_CALLER);                                               \
		return p;                                                                                      \
	}
#define CXX_DELETE(name)                                                                                       \
	static void cxx_first_##name(void *p, uintptr_t a, uintptr_t b);                                       \
	__attribute__((used, visibility("hidden"))) void *cxx_slot_##name = (void *)cxx_first_##name;           \
	static cxx_delete_fn cxx_next_##name;                                                                  \
	static void cxx_first_##name(void *p, uintptr_t a, uintptr_t b)                                        \
	{                                                                                                      \
		cxx_resolve();                                                                                 \
		((cxx_delete_fn)cxx_slot_##name)(p, a, b);                                                     \
	}                                                                                                      \
	static __attribute__((noinline)) void cxx_rec_##name(void *p, uintptr_t a, uintptr_t b)               \
	{                                                                                                      \
		if (p && mp_should_record() && !record_skip_free(p))                                           \
			record_free(p, RECORD_TS_NOW);                                                         \
		unsigned guard __attribute__((cleanup(cxx_unguard))) = mp_guard++;                             \
		(void)guard;                                                                                   \
		cxx_next_##name(p, a, b);                                                                      \
	}

/* The exported symbol: a jump through its slot (the return address stays the caller's). */
#define CXX_STUB(name)                                                                                         \
	__asm__(".text\n.globl " #name "\n.type " #name ", @function\n.p2align 4\n" #name ":\n"                \
		".cfi_startproc\n\tendbr64\n\tjmp *cxx_slot_" #name "(%rip)\n.cfi_endproc\n.size " #name       \
		", .-" #name "\n");

/* every operator new and delete of the Itanium C++ ABI on a 64-bit target */
#define CXX_NEWS(X)                                                                                            \
	X(_Znwm, MP_AL_MALLOC)                                                                                 \
	X(_Znam, MP_AL_MALLOC)                                                                                 \
	X(_ZnwmRKSt9nothrow_t, MP_AL_MALLOC)                                                                   \
	X(_ZnamRKSt9nothrow_t, MP_AL_MALLOC)                                                                   \
	X(_ZnwmSt11align_val_t, MP_AL_ALIGNED_ALLOC)                                                           \
	X(_ZnamSt11align_val_t, MP_AL_ALIGNED_ALLOC)                                                           \
	X(_ZnwmSt11align_val_tRKSt9nothrow_t, MP_AL_ALIGNED_ALLOC)                                             \
	X(_ZnamSt11align_val_tRKSt9nothrow_t, MP_AL_ALIGNED_ALLOC)
#define CXX_DELETES(X)                                                                                         \
	X(_ZdlPv)                                                                                              \
	X(_ZdaPv)                                                                                              \
	X(_ZdlPvm)                                                                                             \
	X(_ZdaPvm)                                                                                             \
	X(_ZdlPvRKSt9nothrow_t)                                                                                \
	X(_ZdaPvRKSt9nothrow_t)                                                                                \
	X(_ZdlPvSt11align_val_t)                                                                               \
	X(_ZdaPvSt11align_val_t)                                                                               \
	X(_ZdlPvmSt11align_val_t)                                                                              \
	X(_ZdaPvmSt11align_val_t)                                                                              \
	X(_ZdlPvSt11align_val_tRKSt9nothrow_t)                                                                 \
	X(_ZdaPvSt11align_val_tRKSt9nothrow_t)

CXX_NEWS(CXX_NEW)
CXX_DELETES(CXX_DELETE)
#define CXX_STUB_NEW(name, kind) CXX_STUB(name)
CXX_NEWS(CXX_STUB_NEW)
CXX_DELETES(CXX_STUB)

/* A symbol no later object defines (a program built against a newer libstdc++ than the
 * one it runs with would not have started): the loader's own answer, an abort. */
static void cxx_missing(void)
{
	static const char msg[] = "memprof: an operator new or delete the program calls is defined nowhere; aborting\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	abort();
}

/* The slot of one symbol: the next definition where it is libstdc++'s (nothing to record
 * there: it calls malloc), else the recording wrapper calling it. */
static void *cxx_pick(const char *name, void **next, void *rec)
{
	void *f = dlsym(RTLD_NEXT, name);
	Dl_info info;
	if (!f)
		return (void *)cxx_missing;
	*next = f;
	if (dladdr(f, &info) && info.dli_fname && strstr(info.dli_fname, "libstdc++"))
		return f;
	return rec;
}

static void cxx_resolve(void)
{
	mp_guard++; /* dlsym may allocate: memprof's business, not the program's */
#define CXX_PICK(name)                                                                                         \
	__atomic_store_n(&cxx_slot_##name, cxx_pick(#name, (void **)&cxx_next_##name, (void *)cxx_rec_##name),  \
			 __ATOMIC_RELEASE);
#define CXX_PICK_NEW(name, kind) CXX_PICK(name)
	CXX_NEWS(CXX_PICK_NEW)
	CXX_DELETES(CXX_PICK)
	mp_guard--;
}

void real_cxx_init(void)
{
	/* not again once the program has called one: its slots are set */
	if (cxx_slot__Znwm == (void *)cxx_first__Znwm)
		cxx_resolve();
}

#else

void real_cxx_init(void)
{
}

#endif
