/* C++'s operator new and delete, for programs whose come from an allocator library that
 * replaces libstdc++'s: jemalloc, tcmalloc and mimalloc export all twenty, and theirs
 * never call malloc, so nothing a C++ program linked with one of them allocated with
 * `new` (its containers, its strings) was recorded.
 *
 * Each symbol is a jump through a slot. A slot is found at start-up when the program
 * has a C++ runtime then, else at its first call (a C++ library that Python or ctypes
 * loads later, RTLD_LOCAL, brings its runtime in its own scope): the definition the
 * caller would get without memprof, the next one in the global scope or else the first
 * loaded object's. Where that is a C++ runtime's own (libstdc++, libc++), which calls
 * malloc (recorded there), the slot is that definition itself, so the jump leaves no
 * frame of memprof's on the stack and nothing changes; elsewhere the slot is a wrapper
 * that records the block, as the malloc hook does (an aligned new as aligned_alloc, any
 * other as malloc) and each delete as a free. A delete and an aligned new run the next
 * operator under the guard (jemalloc's call free and aligned_alloc, which are hooked:
 * recorded once); a plain new does not (none of those libraries' calls malloc, and the
 * bad_alloc it may throw is allocated inside it, a block of the program's). x86-64
 * only, like the jump (elsewhere new and delete are not wrapped: README, Limitations). */
#define _GNU_SOURCE
#include "mp.h"
#include "real.h"
#include "record.h"

#include <dlfcn.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)

typedef void *(*cxx_new_fn)(size_t, uintptr_t, uintptr_t);
typedef void (*cxx_delete_fn)(void *, uintptr_t, uintptr_t);

static void cxx_resolve(bool search);
static void cxx_missing(void) __attribute__((noreturn));

/* The guard taken around the next operator, given back however the block is left: a new
 * that throws leaves it by unwinding (this file is compiled with -fexceptions, so that
 * the cleanup runs then too). */
static inline void cxx_unguard(bool *taken)
{
	if (*taken)
		mp_unguard();
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
		cxx_resolve(true);                                                                             \
		if (cxx_slot_##name == (void *)cxx_first_##name)                                               \
			cxx_missing();                                                                         \
		return ((cxx_new_fn)cxx_slot_##name)(n, a, b);                                                 \
	}                                                                                                      \
	static __attribute__((noinline)) void *cxx_rec_##name(size_t n, uintptr_t a, uintptr_t b)             \
	{                                                                                                      \
		bool rec = mp_should_record() && !record_skip_alloc(n);                                        \
		void *p;                                                                                       \
		{                                                                                              \
			bool guard __attribute__((cleanup(cxx_unguard))) = (kind) == MP_AL_ALIGNED_ALLOC;       \
			if (guard)                                                                             \
				mp_guard_enter();                                                              \
			p = cxx_next_##name(n, a, b);                                                          \
		}                                                                                              \
		if (p && rec)                                                                                  \
			record_alloc(p, n, kind, RECORD_CALLER);                                               \
		else if (p && mp_in_handler())                                                                 \
			record_stash(RECORD_STASH_ALLOC, p, n, kind, clock_after());                           \
		return p;                                                                                      \
	}
#define CXX_DELETE(name)                                                                                       \
	static void cxx_first_##name(void *p, uintptr_t a, uintptr_t b);                                       \
	__attribute__((used, visibility("hidden"))) void *cxx_slot_##name = (void *)cxx_first_##name;           \
	static cxx_delete_fn cxx_next_##name;                                                                  \
	static void cxx_first_##name(void *p, uintptr_t a, uintptr_t b)                                        \
	{                                                                                                      \
		cxx_resolve(true);                                                                             \
		if (cxx_slot_##name == (void *)cxx_first_##name)                                               \
			cxx_missing();                                                                         \
		((cxx_delete_fn)cxx_slot_##name)(p, a, b);                                                     \
	}                                                                                                      \
	static __attribute__((noinline)) void cxx_rec_##name(void *p, uintptr_t a, uintptr_t b)               \
	{                                                                                                      \
		if (p && mp_should_record() && !record_skip_free(p))                                           \
			record_free(p, RECORD_TS_NOW);                                                         \
		else if (!mp_should_record())                                                                  \
			record_free_unrecorded(p);                                                             \
		bool guard __attribute__((cleanup(cxx_unguard))) = true;                                       \
		mp_guard_enter();                                                                              \
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

/* A symbol no loaded object defines (a program built against a newer libstdc++ than the
 * one it runs with would not have started): the loader's own answer, an abort. */
static void cxx_missing(void)
{
	static const char msg[] = "memprof: an operator new or delete the program calls is defined nowhere; aborting\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	abort();
}

typedef struct cxx_find {
	const char *name;
	void *self; /* libmemprof.so's load address: its own definitions are not the answer */
	void *found;
} cxx_find_t;

/* dl_iterate_phdr: the object's own definition of the name (its handle's look-up: the
 * object and its dependencies), unless it is memprof's. */
static int cxx_find_in(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	cxx_find_t *a = arg;
	if (!info->dlpi_name || !info->dlpi_name[0])
		return 0; /* the program: its own definition would have bound before memprof's */
	void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return 0;
	void *f = dlsym(h, a->name);
	Dl_info di;
	if (f && dladdr(f, &di) && di.dli_fbase == a->self)
		f = NULL;
	if (real.dlclose)
		real.dlclose(h);
	a->found = f;
	return f != NULL;
}

/* The definition of `name` the caller would get without memprof: the next one in the
 * global scope, else (`search`) the first loaded object's (a runtime loaded RTLD_LOCAL). */
static void *cxx_find(const char *name, bool search)
{
	void *f = dlsym(RTLD_NEXT, name);
	Dl_info self;
	if (!f && search && dladdr((void *)cxx_find, &self)) {
		cxx_find_t a = {name, self.dli_fbase, NULL};
		dl_iterate_phdr(cxx_find_in, &a);
		f = a.found;
	}
	return f;
}

/* Whether the definition at f is a C++ runtime's own, whose operator new calls malloc. */
static bool cxx_runtime_own(void *f)
{
	Dl_info info;
	if (!dladdr(f, &info) || !info.dli_fname)
		return false;
	const char *base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	return strncmp(base, "libstdc++", 9) == 0 || strncmp(base, "libc++", 6) == 0;
}

/* Sets a symbol's slot if it is still its first (found: the definition itself, or the
 * recording wrapper calling it); left as it is when no object defines it yet. */
static void cxx_pick(void **slot, void *first, const char *name, void **next, void *rec, bool search)
{
	if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) != first)
		return;
	void *f = cxx_find(name, search);
	if (!f)
		return;
	*next = f;
	__atomic_store_n(slot, cxx_runtime_own(f) ? f : rec, __ATOMIC_RELEASE);
}

/* `search`: also among the objects loaded outside the global scope (at a first call;
 * not at start-up, where there are none to find and each look-up costs). */
static void cxx_resolve(bool search)
{
	mp_guard_enter(); /* dlsym may allocate: memprof's business, not the program's */
#define CXX_PICK(name)                                                                                         \
	cxx_pick(&cxx_slot_##name, (void *)cxx_first_##name, #name, (void **)&cxx_next_##name,                 \
		 (void *)cxx_rec_##name, search);
#define CXX_PICK_NEW(name, kind) CXX_PICK(name)
	CXX_NEWS(CXX_PICK_NEW)
	CXX_DELETES(CXX_PICK)
	mp_unguard();
}

void real_cxx_init(void)
{
	cxx_resolve(false);
}

#else

void real_cxx_init(void)
{
}

#endif
